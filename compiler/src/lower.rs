//! Lowering from the AST to the IR: name resolution, declarations, constants, variable
//! numbering, and the checks that need only names (unknown relation, arity, duplicates,
//! unknown types and aggregates, fact shapes and ticks).
//!
//! Relations get ids in order of first mention. A name is a relation when it is declared,
//! built in (`crash`), the head of a rule or given a fact in one of the program's files; any
//! other name in a body is an unknown relation (E0201), which still gets an id, marked
//! [`ir::RelationOrigin::Unknown`], so the rest of the program can be built and checked.

use std::collections::HashMap;

use graft_language::ast;
use graft_language::diagnostic::Diagnostic;
use graft_language::span::Span;
use indexmap::{IndexMap, IndexSet};

use crate::codes;
use crate::ir::{self, ConstId, RelId, RoleId, Term, Type, Value, VarId};
use crate::suggest::did_you_mean;

/// The built-in relation `crash(Observer, Crashed, Time)`.
pub const CRASH: &str = "crash";

const BUILTIN_TYPES: [&str; 4] = ["int", "string", "bool", "node"];

/// Lowers all files into one program, collecting every name-level diagnostic.
pub(crate) fn lower(files: &[ast::SourceFile]) -> (ir::Program, Vec<Diagnostic>) {
    let mut lowerer = Lowerer::default();
    lowerer.collect_roles(files);
    lowerer.collect_consts(files);
    let declarations = lowerer.collect_declarations(files);
    lowerer.collect_known_names(files, &declarations);
    for file in files {
        for item in &file.items {
            lowerer.lower_item(item, &declarations);
        }
    }
    (lowerer.program, lowerer.diagnostics)
}

#[derive(Default)]
struct Lowerer {
    program: ir::Program,
    diagnostics: Vec<Diagnostic>,
    /// Names that are relations: declared, built in, derived, or given facts (in first-seen
    /// order, so that "did you mean" is deterministic).
    known: IndexSet<String>,
    /// Cached "did you mean" answers for unknown relation names.
    suggestions: HashMap<String, Option<String>>,
}

/// The variables of one rule or invariant, numbered in order of first occurrence.
#[derive(Default)]
struct Scope {
    names: Vec<String>,
    index: HashMap<String, VarId>,
}

impl Scope {
    fn var(&mut self, name: &str) -> VarId {
        if let Some(id) = self.index.get(name) {
            return *id;
        }
        let id = VarId::from_index(self.names.len());
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), id);
        id
    }
}

impl Lowerer {
    fn collect_roles(&mut self, files: &[ast::SourceFile]) {
        for item in files.iter().flat_map(|file| &file.items) {
            let ast::Item::Role(role) = item else {
                continue;
            };
            if let Some(existing) = self.program.role_index.get(&role.name.name) {
                let first = self.program.roles[existing.index()].span;
                self.diagnostics.push(
                    Diagnostic::error(
                        codes::DUPLICATE_ROLE,
                        format!("role `{}` is declared twice", role.name.name),
                        role.name.span,
                    )
                    .with_primary_message("declared again here")
                    .with_label(first, "first declared here")
                    .with_help("remove one of the declarations"),
                );
                continue;
            }
            let id = RoleId::from_index(self.program.roles.len());
            self.program.roles.push(ir::Role {
                id,
                name: role.name.name.clone(),
                span: role.span,
            });
            self.program.role_index.insert(role.name.name.clone(), id);
        }
    }

    fn collect_consts(&mut self, files: &[ast::SourceFile]) {
        for item in files.iter().flat_map(|file| &file.items) {
            let ast::Item::Const(constant) = item else {
                continue;
            };
            if let Some(existing) = self.program.const_index.get(&constant.name.name) {
                let first = self.program.consts[existing.index()].span;
                self.diagnostics.push(
                    Diagnostic::error(
                        codes::DUPLICATE_CONST,
                        format!("const `{}` is defined twice", constant.name.name),
                        constant.name.span,
                    )
                    .with_primary_message("defined again here")
                    .with_label(first, "first defined here")
                    .with_help("remove one of the definitions, or give this one another name"),
                );
                continue;
            }
            let expr = self.lower_const_expr(&constant.value);
            let value = expr
                .as_ref()
                .and_then(|expr| self.eval_const(expr, constant.value.span()));
            let id = ConstId::from_index(self.program.consts.len());
            self.program.consts.push(ir::Const {
                id,
                name: constant.name.name.clone(),
                value,
                expr: expr.unwrap_or(Term::Wildcard),
                span: constant.span,
            });
            self.program
                .const_index
                .insert(constant.name.name.clone(), id);
        }
    }

    /// Lowers an expression over constants (a `const` value or a `require` side). Names must
    /// be consts defined so far.
    fn lower_const_expr(&mut self, expr: &ast::Expr) -> Option<Term> {
        match expr {
            ast::Expr::Var(ident) => match self.program.const_index.get(&ident.name) {
                Some(id) => {
                    let value = self.program.consts[id.index()].value.clone();
                    value.map(|value| Term::NamedConst(*id, value))
                }
                None => {
                    let candidates = self.program.consts.iter().map(|c| c.name.as_str());
                    let mut diagnostic = Diagnostic::error(
                        codes::UNKNOWN_CONST,
                        format!("unknown const `{}`", ident.name),
                        ident.span,
                    )
                    .with_primary_message("not a const defined before this point")
                    .with_help("only constants may appear here: define it with `const NAME = value;` before this line");
                    if let Some(name) = did_you_mean(&ident.name, candidates) {
                        diagnostic = diagnostic.with_suggestion(
                            ident.span,
                            name,
                            format!("did you mean `{name}`?"),
                        );
                    }
                    self.diagnostics.push(diagnostic);
                    None
                }
            },
            ast::Expr::Wildcard(span) => {
                self.diagnostics.push(
                    Diagnostic::error(
                        codes::MISPLACED_WILDCARD,
                        "`_` cannot be used in a constant expression",
                        *span,
                    )
                    .with_help("write a value or the name of a const"),
                );
                None
            }
            ast::Expr::Int(..)
            | ast::Expr::Str(..)
            | ast::Expr::Bool(..)
            | ast::Expr::Symbol(_) => Some(literal(expr)),
            ast::Expr::Binary { op, lhs, rhs, .. } => {
                let lhs = self.lower_const_expr(lhs);
                let rhs = self.lower_const_expr(rhs);
                Some(Term::Arith(*op, Box::new(lhs?), Box::new(rhs?)))
            }
            ast::Expr::Paren(inner, _) => self.lower_const_expr(inner),
        }
    }

    fn eval_const(&mut self, term: &Term, span: Span) -> Option<Value> {
        let consts = &self.program.consts;
        let lookup = |id: ConstId| consts.get(id.index()).and_then(|c| c.value.clone());
        match term.eval(&|_| None, &lookup) {
            Ok(value) => Some(value),
            Err(error) => {
                self.diagnostics.push(const_eval_error(error, span));
                None
            }
        }
    }

    fn collect_declarations<'a>(
        &mut self,
        files: &'a [ast::SourceFile],
    ) -> IndexMap<String, &'a ast::RelationDecl> {
        let mut declarations: IndexMap<String, &ast::RelationDecl> = IndexMap::new();
        for item in files.iter().flat_map(|file| &file.items) {
            let ast::Item::Relation(declaration) = item else {
                continue;
            };
            let name = &declaration.name.name;
            if name == CRASH {
                self.diagnostics.push(
                    Diagnostic::error(
                        codes::DUPLICATE_RELATION,
                        "`crash` is a built-in relation and cannot be declared",
                        declaration.name.span,
                    )
                    .with_note("`crash(Observer, Crashed, Time)` holds the crashes the fault injector chooses")
                    .with_help("remove this declaration, or rename the relation"),
                );
                continue;
            }
            if let Some(first) = declarations.get(name) {
                self.diagnostics.push(
                    Diagnostic::error(
                        codes::DUPLICATE_RELATION,
                        format!("relation `{name}` is declared twice"),
                        declaration.name.span,
                    )
                    .with_primary_message("declared again here")
                    .with_label(first.name.span, "first declared here")
                    .with_help("remove one of the declarations"),
                );
                continue;
            }
            declarations.insert(name.clone(), declaration);
        }
        declarations
    }

    fn collect_known_names(
        &mut self,
        files: &[ast::SourceFile],
        declarations: &IndexMap<String, &ast::RelationDecl>,
    ) {
        for item in files.iter().flat_map(|file| &file.items) {
            match item {
                ast::Item::Relation(declaration)
                    if declarations.contains_key(&declaration.name.name) =>
                {
                    self.known.insert(declaration.name.name.clone());
                }
                ast::Item::Rule(rule) => {
                    self.known.insert(rule.head.relation.name.clone());
                }
                _ => {}
            }
        }
        self.known.insert(CRASH.to_owned());
    }

    fn lower_item(
        &mut self,
        item: &ast::Item,
        declarations: &IndexMap<String, &ast::RelationDecl>,
    ) {
        match item {
            ast::Item::Relation(declaration) => {
                if declarations
                    .get(&declaration.name.name)
                    .is_some_and(|first| std::ptr::eq(*first, declaration))
                {
                    self.relation(&declaration.name, declaration.columns.len(), declarations);
                }
            }
            ast::Item::Rule(rule) => {
                if rule.is_fact() {
                    self.lower_fact(rule, declarations);
                } else {
                    self.lower_rule(rule, declarations);
                }
            }
            ast::Item::Never(never) => {
                let mut scope = Scope::default();
                let body = self.lower_body(&never.body, &mut scope, declarations);
                let id = ir::NeverId::from_index(self.program.nevers.len());
                self.program.nevers.push(ir::Never {
                    id,
                    body,
                    var_names: scope.names,
                    span: never.span,
                });
            }
            ast::Item::Require(require) => {
                let lhs = self.lower_const_expr(&require.condition.lhs);
                let rhs = self.lower_const_expr(&require.condition.rhs);
                if let (Some(lhs), Some(rhs)) = (lhs, rhs) {
                    self.program.requires.push(ir::Require {
                        op: require.condition.op,
                        lhs,
                        rhs,
                        span: require.span,
                    });
                }
            }
            ast::Item::Include(_)
            | ast::Item::Role(_)
            | ast::Item::Const(_)
            | ast::Item::Error(_) => {}
        }
    }

    /// The id of the relation `name`, creating it at its first mention. `arity` is the number
    /// of arguments at this mention (used for undeclared relations).
    fn relation(
        &mut self,
        name: &ast::Ident,
        arity: usize,
        declarations: &IndexMap<String, &ast::RelationDecl>,
    ) -> RelId {
        if let Some(id) = self.program.relation_index.get(&name.name) {
            return *id;
        }
        let id = RelId::from_index(self.program.relations.len());
        let relation = if let Some(declaration) = declarations.get(&name.name) {
            self.declared_relation(id, declaration)
        } else if name.name == CRASH {
            builtin_crash(id)
        } else {
            let origin = if self.known.contains(&name.name) {
                ir::RelationOrigin::Inferred
            } else {
                ir::RelationOrigin::Unknown
            };
            if arity == 0 && origin == ir::RelationOrigin::Inferred {
                self.diagnostics.push(no_location(name));
            }
            ir::Relation {
                id,
                name: name.name.clone(),
                columns: (0..arity)
                    .map(|index| ir::Column {
                        name: format!("c{index}"),
                        ty: Type::Unknown,
                        ty_span: None,
                    })
                    .collect(),
                input: false,
                output: false,
                persistence: ir::Persistence::Scratch,
                persistence_rules: Vec::new(),
                key: None,
                origin,
                span: name.span,
            }
        };
        self.program.relations.push(relation);
        self.program.relation_index.insert(name.name.clone(), id);
        id
    }

    fn declared_relation(&mut self, id: RelId, declaration: &ast::RelationDecl) -> ir::Relation {
        if declaration.columns.is_empty() {
            self.diagnostics.push(no_location(&declaration.name));
        }
        let mut columns: Vec<ir::Column> = Vec::with_capacity(declaration.columns.len());
        for column in &declaration.columns {
            if let Some(first) = declaration
                .columns
                .iter()
                .find(|other| other.name.name == column.name.name)
                .filter(|first| !std::ptr::eq(*first, column))
            {
                self.diagnostics.push(
                    Diagnostic::error(
                        codes::DUPLICATE_COLUMN,
                        format!(
                            "relation `{}` has two columns named `{}`",
                            declaration.name.name, column.name.name
                        ),
                        column.name.span,
                    )
                    .with_primary_message("declared again here")
                    .with_label(first.name.span, "first declared here")
                    .with_help("give every column a distinct name"),
                );
            }
            let ty = self.resolve_type(&column.ty);
            columns.push(ir::Column {
                name: column.name.name.clone(),
                ty,
                ty_span: Some(column.ty.span),
            });
        }
        let key = declaration.key.as_ref().map(|key| {
            key.columns
                .iter()
                .filter_map(|name| {
                    let index = columns.iter().position(|column| column.name == name.name);
                    if index.is_none() {
                        let mut diagnostic = Diagnostic::error(
                            codes::UNKNOWN_KEY_COLUMN,
                            format!(
                                "relation `{}` has no column `{}`",
                                declaration.name.name, name.name
                            ),
                            name.span,
                        )
                        .with_primary_message("not a column of this relation")
                        .with_help("a key lists column names from the declaration");
                        if let Some(candidate) =
                            did_you_mean(&name.name, columns.iter().map(|c| c.name.as_str()))
                        {
                            diagnostic = diagnostic.with_suggestion(
                                name.span,
                                candidate,
                                format!("did you mean `{candidate}`?"),
                            );
                        }
                        self.diagnostics.push(diagnostic);
                    }
                    index
                })
                .collect()
        });
        ir::Relation {
            id,
            name: declaration.name.name.clone(),
            columns,
            input: declaration.input.is_some(),
            output: declaration.output.is_some(),
            persistence: match declaration.effective_persistence() {
                ast::Persistence::Table => ir::Persistence::Table,
                ast::Persistence::Scratch => ir::Persistence::Scratch,
                ast::Persistence::Channel => ir::Persistence::Channel,
            },
            persistence_rules: Vec::new(),
            key,
            origin: ir::RelationOrigin::Declared,
            span: declaration.span,
        }
    }

    fn resolve_type(&mut self, ty: &ast::Ident) -> Type {
        match ty.name.as_str() {
            "int" => return Type::Int,
            "string" => return Type::String,
            "bool" => return Type::Bool,
            "node" => return Type::Node,
            _ => {}
        }
        if let Some(role) = self.program.role_index.get(&ty.name) {
            return Type::Role(*role);
        }
        let candidates = BUILTIN_TYPES
            .into_iter()
            .chain(self.program.roles.iter().map(|role| role.name.as_str()));
        let mut diagnostic = Diagnostic::error(
            codes::UNKNOWN_TYPE,
            format!("unknown type `{}`", ty.name),
            ty.span,
        )
        .with_primary_message("neither a built-in type nor a declared role")
        .with_help(format!(
            "use `int`, `string`, `bool`, `node`, or declare the role with `role {};`",
            ty.name
        ));
        if let Some(name) = did_you_mean(&ty.name, candidates) {
            diagnostic =
                diagnostic.with_suggestion(ty.span, name, format!("did you mean `{name}`?"));
        }
        self.diagnostics.push(diagnostic);
        Type::Unknown
    }

    /// Resolves an atom's relation: reports unknown relations and arity mismatches.
    fn atom_relation(
        &mut self,
        name: &ast::Ident,
        arity: usize,
        span: Span,
        declarations: &IndexMap<String, &ast::RelationDecl>,
    ) -> RelId {
        let id = self.relation(name, arity, declarations);
        let relation = &self.program.relations[id.index()];
        if relation.origin == ir::RelationOrigin::Unknown {
            let suggestion = match self.suggestions.get(&name.name) {
                Some(cached) => cached.clone(),
                None => {
                    let found = did_you_mean(&name.name, self.known.iter().map(String::as_str))
                        .map(str::to_owned);
                    self.suggestions.insert(name.name.clone(), found.clone());
                    found
                }
            };
            let mut diagnostic = Diagnostic::error(
                codes::UNKNOWN_RELATION,
                format!("unknown relation `{}`", name.name),
                name.span,
            )
            .with_primary_message("no rule derives it, no fact gives it, and it is not declared")
            .with_help(format!(
                "declare it (e.g. `input {}(at: node, ...);`), derive it with a rule, or give it facts",
                name.name
            ));
            if let Some(candidate) = suggestion {
                diagnostic = diagnostic.with_suggestion(
                    name.span,
                    candidate.clone(),
                    format!("did you mean `{candidate}`?"),
                );
            }
            self.diagnostics.push(diagnostic);
        } else if relation.arity() != arity {
            let what = if relation.origin == ir::RelationOrigin::Builtin {
                "the built-in `crash(Observer, Crashed, Time)` has 3 columns".to_owned()
            } else if relation.is_declared() {
                format!("declared with {} columns here", relation.arity())
            } else {
                format!("first used with {} arguments here", relation.arity())
            };
            let mut diagnostic = Diagnostic::error(
                codes::ARITY_MISMATCH,
                codes::arity_message(&name.name, relation.arity(), arity),
                span,
            )
            .with_primary_message(codes::count(arity, "argument"))
            .with_help(format!(
                "give `{}` exactly {} arguments",
                name.name,
                relation.arity()
            ));
            if relation.origin != ir::RelationOrigin::Builtin {
                diagnostic = diagnostic.with_label(relation.span, what);
            } else {
                diagnostic = diagnostic.with_note(what);
            }
            self.diagnostics.push(diagnostic);
        }
        id
    }

    fn lower_expr(&mut self, expr: &ast::Expr, scope: &mut Scope) -> Term {
        match expr {
            ast::Expr::Var(ident) => match self.program.const_index.get(&ident.name) {
                Some(id) => {
                    // A const whose value failed to evaluate (already reported) reads as 0.
                    let value = self.program.consts[id.index()]
                        .value
                        .clone()
                        .unwrap_or(Value::Int(0));
                    Term::NamedConst(*id, value)
                }
                None => Term::Var(scope.var(&ident.name)),
            },
            ast::Expr::Wildcard(_) => Term::Wildcard,
            ast::Expr::Int(..)
            | ast::Expr::Str(..)
            | ast::Expr::Bool(..)
            | ast::Expr::Symbol(_) => literal(expr),
            ast::Expr::Binary { op, lhs, rhs, .. } => {
                let lhs = self.lower_expr(lhs, scope);
                let rhs = self.lower_expr(rhs, scope);
                Term::Arith(*op, Box::new(lhs), Box::new(rhs))
            }
            ast::Expr::Paren(inner, _) => self.lower_expr(inner, scope),
        }
    }

    fn lower_body(
        &mut self,
        body: &[ast::BodyItem],
        scope: &mut Scope,
        declarations: &IndexMap<String, &ast::RelationDecl>,
    ) -> Vec<ir::Literal> {
        body.iter()
            .map(|item| match item {
                ast::BodyItem::Atom(atom) => {
                    let rel = self.atom_relation(
                        &atom.relation,
                        atom.args.len(),
                        atom.span,
                        declarations,
                    );
                    let args = atom
                        .args
                        .iter()
                        .map(|arg| self.lower_expr(arg, scope))
                        .collect();
                    let tick = atom.tick.map(|(tick, span)| {
                        if tick < 1 {
                            self.diagnostics.push(
                                Diagnostic::error(
                                    codes::PINNED_TICK_ZERO,
                                    format!("atom pinned to tick {tick}; ticks start at 1"),
                                    span,
                                )
                                .with_help("pin the atom to tick 1 or later"),
                            );
                        }
                        tick
                    });
                    ir::Literal::Atom(ir::Atom {
                        rel,
                        args,
                        arg_spans: atom.args.iter().map(ast::Expr::span).collect(),
                        negated: atom.is_negated(),
                        tick,
                        span: atom.span,
                    })
                }
                ast::BodyItem::Compare(comparison) => ir::Literal::Compare(ir::Comparison {
                    op: comparison.op,
                    lhs: self.lower_expr(&comparison.lhs, scope),
                    rhs: self.lower_expr(&comparison.rhs, scope),
                    span: comparison.span,
                }),
            })
            .collect()
    }

    fn lower_rule(
        &mut self,
        rule: &ast::Rule,
        declarations: &IndexMap<String, &ast::RelationDecl>,
    ) {
        let head = &rule.head;
        let time_span = head.time_span.unwrap_or(head.span);
        let kind = if let Some(delete_span) = rule.delete {
            if head.time != ast::HeadTime::Next {
                self.diagnostics.push(
                    Diagnostic::error(
                        codes::BAD_DELETE,
                        "a `delete` rule must be `@next`",
                        head.time_span.unwrap_or(delete_span),
                    )
                    .with_label(delete_span, "retraction declared here")
                    .with_help("write `delete rel(...)@next :- body;`: deletions take effect at the next tick"),
                );
            }
            ir::RuleKind::Delete
        } else {
            match head.time {
                ast::HeadTime::Now => ir::RuleKind::Deductive,
                ast::HeadTime::Next => ir::RuleKind::Next,
                ast::HeadTime::Async => ir::RuleKind::Async,
                ast::HeadTime::Tick(tick) => {
                    self.diagnostics.push(
                        Diagnostic::error(
                            codes::TICK_ON_RULE_HEAD,
                            format!("`@{tick}` on the head of a rule with a body"),
                            time_span,
                        )
                        .with_help("only facts take `@N`; for a rule write no suffix, `@next` or `@async`, and test the time in the body"),
                    );
                    ir::RuleKind::Deductive
                }
            }
        };
        let mut scope = Scope::default();
        let rel = self.atom_relation(&head.relation, head.args.len(), head.span, declarations);
        let mut args = Vec::with_capacity(head.args.len());
        let mut aggregate: Option<ir::HeadAggregate> = None;
        for (column, arg) in head.args.iter().enumerate() {
            match arg {
                ast::HeadArg::Expr(expr) => args.push(self.lower_expr(expr, &mut scope)),
                ast::HeadArg::Aggregate(written) => {
                    let var = scope.var(&written.variable.name);
                    args.push(Term::Var(var));
                    let func = ir::AggFunc::parse(&written.function.name);
                    if func.is_none() {
                        let mut diagnostic = Diagnostic::error(
                            codes::UNKNOWN_AGGREGATE,
                            format!("unknown aggregate function `{}`", written.function.name),
                            written.function.span,
                        )
                        .with_help("use one of `count`, `sum`, `min`, `max`");
                        if let Some(name) =
                            did_you_mean(&written.function.name, ["count", "sum", "min", "max"])
                        {
                            diagnostic = diagnostic.with_suggestion(
                                written.function.span,
                                name,
                                format!("did you mean `{name}`?"),
                            );
                        }
                        self.diagnostics.push(diagnostic);
                    }
                    if column == 0 {
                        self.diagnostics.push(
                            Diagnostic::error(
                                codes::MISPLACED_AGGREGATE,
                                "an aggregate cannot be the location column",
                                written.span,
                            )
                            .with_help("the first column names the node that holds the fact; aggregate a later column"),
                        );
                    } else if let Some(first) = &aggregate {
                        self.diagnostics.push(
                            Diagnostic::error(
                                codes::MISPLACED_AGGREGATE,
                                "a rule head may have only one aggregate",
                                written.span,
                            )
                            .with_label(first.span, "first aggregate here")
                            .with_help(
                                "split the rule into one rule per aggregate and join their results",
                            ),
                        );
                    } else if let Some(func) = func {
                        aggregate = Some(ir::HeadAggregate {
                            column,
                            func,
                            var,
                            span: written.span,
                        });
                    }
                }
            }
        }
        let body = self.lower_body(&rule.body, &mut scope, declarations);
        let location = body
            .iter()
            .filter_map(ir::Literal::as_atom)
            .find(|atom| !atom.negated)
            .and_then(|atom| atom.args.first())
            .and_then(Term::as_var);
        let id = ir::RuleId::from_index(self.program.rules.len());
        self.program.rules.push(ir::Rule {
            id,
            kind,
            head: ir::HeadAtom {
                rel,
                args,
                arg_spans: head.args.iter().map(ast::HeadArg::span).collect(),
                aggregate,
                time_span: head.time_span,
                span: head.span,
            },
            body,
            var_names: scope.names,
            location,
            span: rule.span,
        });
    }

    fn lower_fact(
        &mut self,
        rule: &ast::Rule,
        declarations: &IndexMap<String, &ast::RelationDecl>,
    ) {
        let head = &rule.head;
        let rel = self.atom_relation(&head.relation, head.args.len(), head.span, declarations);
        let arity_ok = self.program.relations[rel.index()].arity() == head.args.len();
        if let Some(fact) = lower_fact_values(
            rule,
            rel,
            &self.program.consts,
            &self.program.const_index,
            &mut self.diagnostics,
        ) && arity_ok
        {
            self.program.facts.push(fact);
        }
    }
}

/// Builds a fact from a bodiless rule, reporting its shape errors (temporal suffix, tick below
/// 1, variables, wildcards, aggregates, values that do not evaluate). Shared by program files
/// and workload files.
pub(crate) fn lower_fact_values(
    rule: &ast::Rule,
    rel: RelId,
    consts: &[ir::Const],
    const_index: &IndexMap<String, ConstId>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<ir::Fact> {
    let head = &rule.head;
    let mut ok = true;
    if let Some(delete_span) = rule.delete {
        diagnostics.push(
            Diagnostic::error(codes::BAD_DELETE, "`delete` needs a rule body", delete_span)
                .with_help(
                    "write `delete rel(...)@next :- condition;`, or remove the fact instead",
                ),
        );
        ok = false;
    }
    let tick = match head.time {
        ast::HeadTime::Now => 1,
        ast::HeadTime::Tick(tick) => {
            if tick < 1 {
                diagnostics.push(
                    Diagnostic::error(
                        codes::FACT_TICK_ZERO,
                        format!("fact at tick {tick}; ticks start at 1"),
                        head.time_span.unwrap_or(head.span),
                    )
                    .with_help("give the fact a tick of 1 or later"),
                );
                ok = false;
            }
            tick
        }
        ast::HeadTime::Next | ast::HeadTime::Async => {
            diagnostics.push(
                Diagnostic::error(
                    codes::TEMPORAL_FACT,
                    "a fact cannot be `@next` or `@async`",
                    head.time_span.unwrap_or(head.span),
                )
                .with_help("write the tick it holds at (`@1`), or add a body to make it a rule"),
            );
            ok = false;
            1
        }
    };
    let mut values = Vec::with_capacity(head.args.len());
    for arg in &head.args {
        match arg {
            ast::HeadArg::Aggregate(aggregate) => {
                diagnostics.push(
                    Diagnostic::error(
                        codes::MISPLACED_AGGREGATE,
                        "a fact cannot contain an aggregate",
                        aggregate.span,
                    )
                    .with_help("aggregates need a rule body to aggregate over"),
                );
                ok = false;
            }
            ast::HeadArg::Expr(expr) => match fact_value(expr, consts, const_index, diagnostics) {
                Some(value) => values.push(value),
                None => ok = false,
            },
        }
    }
    ok.then_some(ir::Fact {
        rel,
        values,
        tick,
        span: rule.span,
    })
}

/// Evaluates one fact argument (literals, consts and arithmetic over them).
fn fact_value(
    expr: &ast::Expr,
    consts: &[ir::Const],
    const_index: &IndexMap<String, ConstId>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Value> {
    match expr {
        ast::Expr::Var(ident) => match const_index.get(&ident.name) {
            Some(id) => consts.get(id.index()).and_then(|c| c.value.clone()),
            None => {
                diagnostics.push(
                    Diagnostic::error(
                        codes::FACT_WITH_VAR,
                        format!("fact with a variable `{}`", ident.name),
                        ident.span,
                    )
                    .with_primary_message("facts hold values, not variables")
                    .with_help("write a value here, or add a body that binds the variable to make it a rule"),
                );
                None
            }
        },
        ast::Expr::Wildcard(span) => {
            diagnostics.push(
                Diagnostic::error(codes::MISPLACED_WILDCARD, "fact with a wildcard `_`", *span)
                    .with_help("a fact must give a value for every column"),
            );
            None
        }
        ast::Expr::Int(..) | ast::Expr::Str(..) | ast::Expr::Bool(..) | ast::Expr::Symbol(_) => {
            literal(expr).as_const().cloned()
        }
        ast::Expr::Binary { op, lhs, rhs, span } => {
            let lhs = fact_value(lhs, consts, const_index, diagnostics);
            let rhs = fact_value(rhs, consts, const_index, diagnostics);
            match ir::eval_arith(*op, &lhs?, &rhs?) {
                Ok(value) => Some(value),
                Err(error) => {
                    diagnostics.push(const_eval_error(error, *span));
                    None
                }
            }
        }
        ast::Expr::Paren(inner, _) => fact_value(inner, consts, const_index, diagnostics),
    }
}

/// The term of a literal expression (`Int`, `Str`, `Bool`, `Symbol`); other expressions are
/// never passed here.
fn literal(expr: &ast::Expr) -> Term {
    match expr {
        ast::Expr::Int(value, _) => Term::Const(Value::Int(*value)),
        ast::Expr::Str(text, _) => Term::Const(Value::str(text)),
        ast::Expr::Bool(value, _) => Term::Const(Value::Bool(*value)),
        ast::Expr::Symbol(ident) => Term::Const(Value::str(&ident.name)),
        ast::Expr::Var(_)
        | ast::Expr::Wildcard(_)
        | ast::Expr::Binary { .. }
        | ast::Expr::Paren(..) => Term::Wildcard,
    }
}

fn const_eval_error(error: ir::EvalError, span: Span) -> Diagnostic {
    match error {
        ir::EvalError::NotAnInt => Diagnostic::error(
            codes::ARITH_NOT_INT,
            "arithmetic on a value that is not an int",
            span,
        )
        .with_help("`+ - * /` apply only to ints"),
        ir::EvalError::DivisionByZero | ir::EvalError::Overflow | ir::EvalError::Unbound => {
            Diagnostic::error(
                codes::CONST_EVAL,
                format!("this constant expression cannot be evaluated: {error}"),
                span,
            )
            .with_help("change the expression so that it has a value")
        }
    }
}

fn no_location(name: &ast::Ident) -> Diagnostic {
    Diagnostic::error(
        codes::NO_LOCATION_COLUMN,
        format!("relation `{}` has no columns", name.name),
        name.span,
    )
    .with_primary_message("every relation needs a location column")
    .with_help("add a first column naming the node that holds each fact, e.g. `at: node`")
}

fn builtin_crash(id: RelId) -> ir::Relation {
    let column = |name: &str, ty| ir::Column {
        name: name.to_owned(),
        ty,
        ty_span: None,
    };
    ir::Relation {
        id,
        name: CRASH.to_owned(),
        columns: vec![
            column("observer", Type::Node),
            column("crashed", Type::Node),
            column("time", Type::Int),
        ],
        input: true,
        output: false,
        persistence: ir::Persistence::Scratch,
        persistence_rules: Vec::new(),
        key: None,
        origin: ir::RelationOrigin::Builtin,
        span: Span::default(),
    }
}
