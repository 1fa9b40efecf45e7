//! An editable, name-based copy of a checked program, and its "unlowering" back to surface
//! syntax.
//!
//! The IR ([`graft_compiler::ir::Program`]) is built by the compiler only: its name indexes are
//! private to it. Rewrites therefore copy the IR into a [`Draft`] — the same program with names
//! instead of ids — edit the draft, and print it as an [`ast::SourceFile`] in `graft fmt`'s
//! layout. The printed program is checked again by whoever applies the rewrite; that re-check
//! gives the new version its own IR.
//!
//! Printed order: roles, constants, requirements, relation declarations, rules (in draft order,
//! each new rule preceded by its note as a comment), facts, then invariants. Section comments
//! separate the groups, so the output is stable and diffable.

use graft_compiler::ir::{self, AggFunc, ArithOp, CompareOp, Persistence, RuleKind, Value};
use graft_language::ast;
use graft_language::format;
use graft_language::span::Span;

/// A term with variables and constants by name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DTerm {
    Var(String),
    Wildcard,
    Const(Value),
    /// A `const` by name.
    Named(String),
    Arith(ArithOp, Box<DTerm>, Box<DTerm>),
}

impl DTerm {
    pub fn var(name: &str) -> DTerm {
        DTerm::Var(name.to_owned())
    }

    pub fn as_var(&self) -> Option<&str> {
        match self {
            DTerm::Var(name) => Some(name),
            _ => None,
        }
    }

    /// Calls `visit` on every variable name in the term.
    pub fn for_each_var(&self, visit: &mut impl FnMut(&str)) {
        match self {
            DTerm::Var(name) => visit(name),
            DTerm::Arith(_, lhs, rhs) => {
                lhs.for_each_var(visit);
                rhs.for_each_var(visit);
            }
            DTerm::Wildcard | DTerm::Const(_) | DTerm::Named(_) => {}
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DHeadArg {
    Term(DTerm),
    Aggregate(AggFunc, String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DAtom {
    pub rel: String,
    pub args: Vec<DTerm>,
    pub negated: bool,
    pub tick: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DLiteral {
    Atom(DAtom),
    Compare(CompareOp, DTerm, DTerm),
}

impl DLiteral {
    pub fn atom(rel: &str, args: Vec<DTerm>) -> DLiteral {
        DLiteral::Atom(DAtom {
            rel: rel.to_owned(),
            args,
            negated: false,
            tick: None,
        })
    }

    pub fn as_atom(&self) -> Option<&DAtom> {
        match self {
            DLiteral::Atom(atom) => Some(atom),
            DLiteral::Compare(..) => None,
        }
    }
}

/// A rule, with the id of the rule of the source program it comes from (if any) and an
/// optional note printed as a comment above it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DRule {
    pub kind: RuleKind,
    pub head_rel: String,
    pub head_args: Vec<DHeadArg>,
    pub body: Vec<DLiteral>,
    pub origin: Option<ir::RuleId>,
    pub note: Option<String>,
}

impl DRule {
    pub fn atoms(&self) -> impl Iterator<Item = &DAtom> {
        self.body.iter().filter_map(DLiteral::as_atom)
    }

    /// The body's location variable: the first argument of the first atom.
    pub fn location(&self) -> Option<&str> {
        self.atoms().next()?.args.first()?.as_var()
    }

    /// A variable name of the form `{base}{n}` that the rule does not use yet.
    pub fn fresh_var(&self, base: &str) -> String {
        let mut used = Vec::new();
        let mut collect = |name: &str| used.push(name.to_owned());
        for arg in &self.head_args {
            match arg {
                DHeadArg::Term(term) => term.for_each_var(&mut collect),
                DHeadArg::Aggregate(_, var) => collect(var),
            }
        }
        for literal in &self.body {
            match literal {
                DLiteral::Atom(atom) => atom.args.iter().for_each(|t| t.for_each_var(&mut collect)),
                DLiteral::Compare(_, lhs, rhs) => {
                    lhs.for_each_var(&mut collect);
                    rhs.for_each_var(&mut collect);
                }
            }
        }
        if !used.iter().any(|name| name == base) {
            return base.to_owned();
        }
        (2..)
            .map(|n| format!("{base}{n}"))
            .find(|candidate| !used.contains(candidate))
            .unwrap_or_else(|| base.to_owned())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DColumn {
    pub name: String,
    /// The type as written: `int`, `string`, `bool`, `node` or a role name.
    pub ty: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DRelation {
    pub name: String,
    pub input: bool,
    pub output: bool,
    pub persistence: Persistence,
    pub columns: Vec<DColumn>,
    pub key: Option<Vec<String>>,
    /// Printed as a declaration (undeclared Molly relations stay undeclared).
    pub declared: bool,
    /// A comment printed above the declaration.
    pub note: Option<String>,
}

impl DRelation {
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|column| column.name == name)
    }

    /// The type of the location column.
    pub fn location_type(&self) -> &str {
        self.columns
            .first()
            .map_or("node", |column| column.ty.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DFact {
    pub rel: String,
    pub values: Vec<Value>,
    pub tick: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DRequire {
    pub op: CompareOp,
    pub lhs: DTerm,
    pub rhs: DTerm,
}

/// The editable program.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Draft {
    pub roles: Vec<String>,
    pub consts: Vec<(String, Value)>,
    pub requires: Vec<DRequire>,
    pub relations: Vec<DRelation>,
    pub rules: Vec<DRule>,
    pub facts: Vec<DFact>,
    pub nevers: Vec<Vec<DLiteral>>,
}

impl Draft {
    /// Copies a checked program. Constants without a value (errors) keep the value 0; the
    /// passes refuse programs with errors before this is called.
    pub fn from_ir(program: &ir::Program) -> Draft {
        let const_name = |id: ir::ConstId| {
            program
                .consts
                .get(id.index())
                .map_or_else(|| "?".to_owned(), |c| c.name.clone())
        };
        let term = |t: &ir::Term, names: &[String]| unlower_term(t, names, &const_name);
        let relations = program
            .relations
            .iter()
            .filter(|relation| relation.origin != ir::RelationOrigin::Builtin)
            .map(|relation| DRelation {
                name: relation.name.clone(),
                input: relation.input,
                output: relation.output,
                persistence: relation.persistence,
                columns: relation
                    .columns
                    .iter()
                    .map(|column| DColumn {
                        name: column.name.clone(),
                        ty: program.type_name(column.ty),
                    })
                    .collect(),
                key: relation.key.as_ref().map(|key| {
                    key.iter()
                        .filter_map(|index| relation.columns.get(*index))
                        .map(|column| column.name.clone())
                        .collect()
                }),
                declared: relation.is_declared(),
                note: None,
            })
            .collect();
        let literal = |l: &ir::Literal, names: &[String]| match l {
            ir::Literal::Atom(atom) => DLiteral::Atom(DAtom {
                rel: program.relation(atom.rel).name.clone(),
                args: atom.args.iter().map(|arg| term(arg, names)).collect(),
                negated: atom.negated,
                tick: atom.tick,
            }),
            ir::Literal::Compare(comparison) => DLiteral::Compare(
                comparison.op,
                term(&comparison.lhs, names),
                term(&comparison.rhs, names),
            ),
        };
        let rules = program
            .rules
            .iter()
            .map(|rule| {
                let head_args = rule
                    .head
                    .args
                    .iter()
                    .enumerate()
                    .map(|(column, arg)| match &rule.head.aggregate {
                        Some(aggregate) if aggregate.column == column => DHeadArg::Aggregate(
                            aggregate.func,
                            rule.var_name(aggregate.var).to_owned(),
                        ),
                        _ => DHeadArg::Term(term(arg, &rule.var_names)),
                    })
                    .collect();
                DRule {
                    kind: rule.kind,
                    head_rel: program.relation(rule.head.rel).name.clone(),
                    head_args,
                    body: rule
                        .body
                        .iter()
                        .map(|l| literal(l, &rule.var_names))
                        .collect(),
                    origin: Some(rule.id),
                    note: None,
                }
            })
            .collect();
        Draft {
            roles: program.roles.iter().map(|role| role.name.clone()).collect(),
            consts: program
                .consts
                .iter()
                .map(|c| (c.name.clone(), c.value.clone().unwrap_or(Value::Int(0))))
                .collect(),
            requires: program
                .requires
                .iter()
                .map(|require| DRequire {
                    op: require.op,
                    lhs: term(&require.lhs, &[]),
                    rhs: term(&require.rhs, &[]),
                })
                .collect(),
            relations,
            rules,
            facts: program.facts.iter().map(|f| fact_of(program, f)).collect(),
            nevers: program
                .nevers
                .iter()
                .map(|never| {
                    never
                        .body
                        .iter()
                        .map(|l| literal(l, &never.var_names))
                        .collect()
                })
                .collect(),
        }
    }

    pub fn relation(&self, name: &str) -> Option<&DRelation> {
        self.relations.iter().find(|relation| relation.name == name)
    }

    pub fn relation_mut(&mut self, name: &str) -> Option<&mut DRelation> {
        self.relations
            .iter_mut()
            .find(|relation| relation.name == name)
    }

    /// A relation name starting with `base` that the draft does not use yet.
    pub fn fresh_relation(&self, base: &str) -> String {
        if self.relation(base).is_none() {
            return base.to_owned();
        }
        (2..)
            .map(|n| format!("{base}_{n}"))
            .find(|candidate| self.relation(candidate).is_none())
            .unwrap_or_else(|| base.to_owned())
    }

    /// A role name starting with `base` that the draft does not use yet.
    pub fn fresh_role(&self, base: &str) -> String {
        if !self.roles.iter().any(|role| role == base) {
            return base.to_owned();
        }
        (2..)
            .map(|n| format!("{base}_{n}"))
            .find(|candidate| !self.roles.contains(candidate))
            .unwrap_or_else(|| base.to_owned())
    }

    /// Prints the draft in the canonical layout with `header` lines (each printed as a `//`
    /// comment) on top. The result is a fixed point of `graft fmt`.
    pub fn print(&self, header: &[String]) -> String {
        let mut sections: Vec<Vec<String>> = Vec::new();
        let mut top: Vec<String> = header.iter().map(|line| comment(line)).collect();
        if !top.is_empty() {
            sections.push(std::mem::take(&mut top));
        }
        let mut declarations: Vec<String> = self
            .roles
            .iter()
            .map(|role| {
                item_text(&ast::Item::Role(ast::RoleDecl {
                    name: ident(role),
                    span: SPAN,
                }))
            })
            .collect();
        declarations.extend(self.consts.iter().map(|(name, value)| {
            item_text(&ast::Item::Const(ast::ConstDecl {
                name: ident(name),
                value: value_expr(value),
                span: SPAN,
            }))
        }));
        declarations.extend(self.requires.iter().map(|require| {
            item_text(&ast::Item::Require(ast::Require {
                condition: comparison(require.op, &require.lhs, &require.rhs),
                span: SPAN,
            }))
        }));
        push_nonempty(&mut sections, declarations);
        let mut relations = Vec::new();
        for relation in self.relations.iter().filter(|relation| relation.declared) {
            if let Some(note) = &relation.note {
                relations.push(comment(note));
            }
            relations.push(item_text(&ast::Item::Relation(relation_decl(relation))));
        }
        push_nonempty(&mut sections, relations);
        let mut rules = Vec::new();
        for rule in &self.rules {
            if let Some(note) = &rule.note {
                rules.push(comment(note));
            }
            rules.push(item_text(&ast::Item::Rule(rule_ast(rule))));
        }
        push_nonempty(&mut sections, rules);
        let facts = self
            .facts
            .iter()
            .map(|fact| item_text(&ast::Item::Rule(fact_ast(fact))))
            .collect();
        push_nonempty(&mut sections, facts);
        let nevers = self
            .nevers
            .iter()
            .map(|body| {
                item_text(&ast::Item::Never(ast::Never {
                    body: body.iter().map(body_item).collect(),
                    span: SPAN,
                }))
            })
            .collect();
        push_nonempty(&mut sections, nevers);
        let mut out = String::new();
        for (index, section) in sections.iter().enumerate() {
            if index > 0 {
                out.push('\n');
            }
            for line in section {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

fn push_nonempty(sections: &mut Vec<Vec<String>>, section: Vec<String>) {
    if !section.is_empty() {
        sections.push(section);
    }
}

fn comment(text: &str) -> String {
    if text.is_empty() {
        "//".to_owned()
    } else {
        format!("// {text}")
    }
}

fn item_text(item: &ast::Item) -> String {
    format::format_item(item, "").trim_end().to_owned()
}

/// The facts of a facts file, one per line, as `graft fmt` prints them.
pub fn print_facts(header: &[String], facts: &[DFact]) -> String {
    let mut out = String::new();
    for line in header {
        out.push_str(&comment(line));
        out.push('\n');
    }
    for fact in facts {
        out.push_str(&item_text(&ast::Item::Rule(fact_ast(fact))));
        out.push('\n');
    }
    out
}

/// A checked fact, by relation name.
pub fn fact_of(program: &ir::Program, fact: &ir::Fact) -> DFact {
    DFact {
        rel: program.relation(fact.rel).name.clone(),
        values: fact.values.clone(),
        tick: fact.tick,
    }
}

fn unlower_term(
    term: &ir::Term,
    names: &[String],
    const_name: &dyn Fn(ir::ConstId) -> String,
) -> DTerm {
    match term {
        ir::Term::Var(var) => DTerm::Var(
            names
                .get(var.index())
                .cloned()
                .unwrap_or_else(|| format!("V{}", var.0)),
        ),
        ir::Term::Wildcard => DTerm::Wildcard,
        ir::Term::Const(value) => DTerm::Const(value.clone()),
        ir::Term::NamedConst(id, _) => DTerm::Named(const_name(*id)),
        ir::Term::Arith(op, lhs, rhs) => DTerm::Arith(
            *op,
            Box::new(unlower_term(lhs, names, const_name)),
            Box::new(unlower_term(rhs, names, const_name)),
        ),
    }
}

const SPAN: Span = Span {
    file: graft_language::span::FileId(0),
    start: 0,
    end: 0,
};

fn ident(name: &str) -> ast::Ident {
    ast::Ident {
        name: name.to_owned(),
        span: SPAN,
    }
}

fn value_expr(value: &Value) -> ast::Expr {
    match value {
        Value::Int(n) => ast::Expr::Int(*n, SPAN),
        Value::Str(text) => ast::Expr::Str(text.to_string(), SPAN),
        Value::Bool(b) => ast::Expr::Bool(*b, SPAN),
    }
}

fn expr(term: &DTerm) -> ast::Expr {
    match term {
        DTerm::Var(name) | DTerm::Named(name) => ast::Expr::Var(ident(name)),
        DTerm::Wildcard => ast::Expr::Wildcard(SPAN),
        DTerm::Const(value) => value_expr(value),
        DTerm::Arith(op, lhs, rhs) => ast::Expr::Binary {
            op: *op,
            lhs: Box::new(expr(lhs)),
            rhs: Box::new(expr(rhs)),
            span: SPAN,
        },
    }
}

fn comparison(op: CompareOp, lhs: &DTerm, rhs: &DTerm) -> ast::Comparison {
    ast::Comparison {
        lhs: expr(lhs),
        op,
        op_span: SPAN,
        rhs: expr(rhs),
        span: SPAN,
    }
}

fn body_item(literal: &DLiteral) -> ast::BodyItem {
    match literal {
        DLiteral::Atom(atom) => ast::BodyItem::Atom(ast::BodyAtom {
            negated: atom.negated.then_some(SPAN),
            relation: ident(&atom.rel),
            args: atom.args.iter().map(expr).collect(),
            tick: atom.tick.map(|tick| (tick, SPAN)),
            span: SPAN,
        }),
        DLiteral::Compare(op, lhs, rhs) => ast::BodyItem::Compare(comparison(*op, lhs, rhs)),
    }
}

fn rule_ast(rule: &DRule) -> ast::Rule {
    let time = match rule.kind {
        RuleKind::Deductive => ast::HeadTime::Now,
        RuleKind::Next | RuleKind::Delete => ast::HeadTime::Next,
        RuleKind::Async => ast::HeadTime::Async,
    };
    ast::Rule {
        delete: (rule.kind == RuleKind::Delete).then_some(SPAN),
        head: ast::Head {
            relation: ident(&rule.head_rel),
            args: rule
                .head_args
                .iter()
                .map(|arg| match arg {
                    DHeadArg::Term(term) => ast::HeadArg::Expr(expr(term)),
                    DHeadArg::Aggregate(func, var) => ast::HeadArg::Aggregate(ast::Aggregate {
                        function: ident(func.name()),
                        variable: ident(var),
                        span: SPAN,
                    }),
                })
                .collect(),
            time,
            time_span: (time != ast::HeadTime::Now).then_some(SPAN),
            span: SPAN,
        },
        body: rule.body.iter().map(body_item).collect(),
        span: SPAN,
    }
}

fn fact_ast(fact: &DFact) -> ast::Rule {
    ast::Rule {
        delete: None,
        head: ast::Head {
            relation: ident(&fact.rel),
            args: fact
                .values
                .iter()
                .map(|value| ast::HeadArg::Expr(value_expr(value)))
                .collect(),
            time: ast::HeadTime::Tick(fact.tick),
            time_span: Some(SPAN),
            span: SPAN,
        },
        body: Vec::new(),
        span: SPAN,
    }
}

fn relation_decl(relation: &DRelation) -> ast::RelationDecl {
    let persistence = match relation.persistence {
        Persistence::Table => Some((ast::Persistence::Table, SPAN)),
        Persistence::Channel => Some((ast::Persistence::Channel, SPAN)),
        Persistence::Scratch if relation.input || relation.output => None,
        Persistence::Scratch => Some((ast::Persistence::Scratch, SPAN)),
    };
    ast::RelationDecl {
        input: relation.input.then_some(SPAN),
        output: relation.output.then_some(SPAN),
        persistence,
        name: ident(&relation.name),
        columns: relation
            .columns
            .iter()
            .map(|column| ast::ColumnDecl {
                name: ident(&column.name),
                ty: ident(&column.ty),
                span: SPAN,
            })
            .collect(),
        key: relation.key.as_ref().map(|key| ast::KeyDecl {
            columns: key.iter().map(|name| ident(name)).collect(),
            span: SPAN,
        }),
        span: SPAN,
    }
}

/// The text of a rule of the draft, one line, for justification records.
pub fn rule_text(rule: &DRule) -> String {
    let text = item_text(&ast::Item::Rule(rule_ast(rule)));
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
