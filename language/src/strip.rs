//! Comparing trees "up to spans": [`ast::SourceFile::without_spans`] resets every [`Span`] to
//! `Span::default()` and drops the comments, so that `parse(format(p))` can be compared with `p`
//! by plain equality.

use crate::ast::{
    Aggregate, BodyAtom, BodyItem, ColumnDecl, Comparison, ConstDecl, Expr, Head, HeadArg, Ident,
    Include, Item, KeyDecl, Never, RelationDecl, Require, RoleDecl, Rule, SourceFile,
};
use crate::span::{FileId, Span};

impl SourceFile {
    /// This tree with every span (and the file id) reset to the default and no comments.
    pub fn without_spans(&self) -> SourceFile {
        SourceFile {
            file: FileId::default(),
            items: self.items.iter().map(item).collect(),
            comments: Vec::new(),
        }
    }
}

const NO_SPAN: Span = Span {
    file: FileId(0),
    start: 0,
    end: 0,
};

fn item(item: &Item) -> Item {
    match item {
        Item::Include(include) => Item::Include(Include {
            path: include.path.clone(),
            path_span: NO_SPAN,
            span: NO_SPAN,
        }),
        Item::Rule(rule_item) => Item::Rule(rule(rule_item)),
        Item::Role(role) => Item::Role(RoleDecl {
            name: ident(&role.name),
            span: NO_SPAN,
        }),
        Item::Relation(relation) => Item::Relation(relation_decl(relation)),
        Item::Const(constant) => Item::Const(ConstDecl {
            name: ident(&constant.name),
            value: expr(&constant.value),
            span: NO_SPAN,
        }),
        Item::Never(never) => Item::Never(Never {
            body: never.body.iter().map(body_item).collect(),
            span: NO_SPAN,
        }),
        Item::Require(require) => Item::Require(Require {
            condition: comparison(&require.condition),
            span: NO_SPAN,
        }),
        Item::Error(_) => Item::Error(NO_SPAN),
    }
}

fn ident(ident: &Ident) -> Ident {
    Ident {
        name: ident.name.clone(),
        span: NO_SPAN,
    }
}

fn no_span(span: Option<Span>) -> Option<Span> {
    span.map(|_| NO_SPAN)
}

fn rule(rule: &Rule) -> Rule {
    Rule {
        delete: no_span(rule.delete),
        head: head(&rule.head),
        body: rule.body.iter().map(body_item).collect(),
        span: NO_SPAN,
    }
}

fn head(head: &Head) -> Head {
    Head {
        relation: ident(&head.relation),
        args: head.args.iter().map(head_arg).collect(),
        time: head.time,
        time_span: no_span(head.time_span),
        span: NO_SPAN,
    }
}

fn head_arg(arg: &HeadArg) -> HeadArg {
    match arg {
        HeadArg::Expr(value) => HeadArg::Expr(expr(value)),
        HeadArg::Aggregate(aggregate) => HeadArg::Aggregate(Aggregate {
            function: ident(&aggregate.function),
            variable: ident(&aggregate.variable),
            span: NO_SPAN,
        }),
    }
}

fn body_item(item: &BodyItem) -> BodyItem {
    match item {
        BodyItem::Atom(atom) => BodyItem::Atom(BodyAtom {
            negated: no_span(atom.negated),
            relation: ident(&atom.relation),
            args: atom.args.iter().map(expr).collect(),
            tick: atom.tick.map(|(tick, _)| (tick, NO_SPAN)),
            span: NO_SPAN,
        }),
        BodyItem::Compare(compare) => BodyItem::Compare(comparison(compare)),
    }
}

fn comparison(comparison: &Comparison) -> Comparison {
    Comparison {
        lhs: expr(&comparison.lhs),
        op: comparison.op,
        op_span: NO_SPAN,
        rhs: expr(&comparison.rhs),
        span: NO_SPAN,
    }
}

fn expr(value: &Expr) -> Expr {
    match value {
        Expr::Var(name) => Expr::Var(ident(name)),
        Expr::Wildcard(_) => Expr::Wildcard(NO_SPAN),
        Expr::Int(number, _) => Expr::Int(*number, NO_SPAN),
        Expr::Str(text, _) => Expr::Str(text.clone(), NO_SPAN),
        Expr::Bool(truth, _) => Expr::Bool(*truth, NO_SPAN),
        Expr::Symbol(name) => Expr::Symbol(ident(name)),
        Expr::Binary { op, lhs, rhs, .. } => Expr::Binary {
            op: *op,
            lhs: Box::new(expr(lhs)),
            rhs: Box::new(expr(rhs)),
            span: NO_SPAN,
        },
        Expr::Paren(inner, _) => Expr::Paren(Box::new(expr(inner)), NO_SPAN),
    }
}

fn relation_decl(relation: &RelationDecl) -> RelationDecl {
    RelationDecl {
        input: no_span(relation.input),
        output: no_span(relation.output),
        persistence: relation
            .persistence
            .map(|(persistence, _)| (persistence, NO_SPAN)),
        name: ident(&relation.name),
        columns: relation
            .columns
            .iter()
            .map(|column| ColumnDecl {
                name: ident(&column.name),
                ty: ident(&column.ty),
                span: NO_SPAN,
            })
            .collect(),
        key: relation.key.as_ref().map(|key| KeyDecl {
            columns: key.columns.iter().map(ident).collect(),
            span: NO_SPAN,
        }),
        span: NO_SPAN,
    }
}
