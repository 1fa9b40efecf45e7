//! Per-rule static checks on the IR: range restriction (safety), locality, rule kinds, and the
//! warnings about singleton variables and unused declarations.
//!
//! A variable is *bound* when it is a whole argument of a positive body atom. Every other use —
//! head arguments, arguments under `notin`, comparisons, arithmetic, aggregates — needs a bound
//! variable. Locality: all body atoms share one location variable (their first argument), and
//! only `@async` rules may put the head somewhere else. `never` invariants and specification
//! rules (deriving `pre`, `post`, or relations that feed only them) are exempt: they observe the
//! whole system, as Molly's specifications do.

use graft_language::diagnostic::Diagnostic;
use graft_language::span::{FileId, Span};

use crate::codes;
use crate::ir::{self, Literal, Persistence, RelationOrigin, RuleKind, Term, VarId};

/// `molly_files`: files in Molly's dialect, where locality violations are warnings
/// ([`codes::MOLLY_NON_LOCAL`]) because Molly evaluates bodies over every node at once.
pub(crate) fn check(program: &ir::Program, molly_files: &[FileId]) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let specification = crate::analysis::specification_relations(program);
    for rule in &program.rules {
        range_restriction(
            &rule.body,
            &rule.var_names,
            Some(&rule.head),
            rule.span,
            &mut diagnostics,
        );
        // Specification rules (`pre`, `post` and their helpers) observe every node at once.
        if !specification
            .get(rule.head.rel.index())
            .copied()
            .unwrap_or(false)
        {
            if molly_files.contains(&rule.span.file) {
                let mut found = Vec::new();
                locality(program, rule, &mut found);
                diagnostics.extend(found.into_iter().map(molly_locality_warning));
            } else {
                locality(program, rule, &mut diagnostics);
            }
        }
        kinds(program, rule, &mut diagnostics);
        singletons(
            &rule.body,
            &rule.var_names,
            Some(&rule.head),
            &mut diagnostics,
        );
    }
    for never in &program.nevers {
        range_restriction(
            &never.body,
            &never.var_names,
            None,
            never.span,
            &mut diagnostics,
        );
        singletons(&never.body, &never.var_names, None, &mut diagnostics);
    }
    unused_declarations(program, &mut diagnostics);
    diagnostics
}

/// Reports each variable of `term` that is not bound, once per variable and code.
struct Unbound<'a> {
    bound: Vec<bool>,
    reported: Vec<bool>,
    var_names: &'a [String],
}

impl Unbound<'_> {
    fn check(
        &mut self,
        term: &Term,
        span: Span,
        code: &'static str,
        what: &str,
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        term.for_each_var(&mut |var: VarId| {
            let index = var.index();
            if self.bound.get(index).copied().unwrap_or(true) || self.reported[index] {
                return;
            }
            self.reported[index] = true;
            let name = self.var_names.get(index).map_or("?", String::as_str);
            diagnostics.push(
                Diagnostic::error(code, format!("variable `{name}` {what} is not bound"), span)
                    .with_primary_message(format!("`{name}` appears in no positive body atom"))
                    .with_help(format!(
                        "add a positive body atom that binds `{name}` (as a whole argument), or replace it with a value"
                    )),
            );
        });
    }
}

fn range_restriction(
    body: &[Literal],
    var_names: &[String],
    head: Option<&ir::HeadAtom>,
    span: Span,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let mut bound = vec![false; var_names.len()];
    let mut has_positive = false;
    for atom in body
        .iter()
        .filter_map(Literal::as_atom)
        .filter(|atom| !atom.negated)
    {
        has_positive = true;
        for arg in &atom.args {
            if let Term::Var(var) = arg
                && let Some(slot) = bound.get_mut(var.index())
            {
                *slot = true;
            }
        }
    }
    if !has_positive {
        diagnostics.push(
            Diagnostic::error(
                codes::NO_POSITIVE_ATOM,
                "this body has no positive atom",
                span,
            )
            .with_primary_message("nothing here says where and when it holds")
            .with_help("add a positive atom (e.g. the relation that triggers it) to the body"),
        );
    }
    let mut unbound = Unbound {
        bound,
        reported: vec![false; var_names.len()],
        var_names,
    };
    if let Some(head) = head {
        for (index, (term, span)) in head.args.iter().zip(&head.arg_spans).enumerate() {
            if term.has_wildcard() {
                diagnostics.push(
                    Diagnostic::error(codes::MISPLACED_WILDCARD, "`_` in a rule head", *span)
                        .with_primary_message("a head must give every column a value")
                        .with_help("write a variable bound by the body, or a value"),
                );
                continue;
            }
            let (code, what) = match &head.aggregate {
                Some(aggregate) if aggregate.column == index => {
                    (codes::UNBOUND_AGGREGATE_VAR, "under the aggregate")
                }
                _ => (codes::UNBOUND_HEAD_VAR, "in the head"),
            };
            unbound.check(term, *span, code, what, diagnostics);
        }
    }
    for literal in body {
        match literal {
            Literal::Atom(atom) => {
                for (term, span) in atom.args.iter().zip(&atom.arg_spans) {
                    if atom.negated {
                        unbound.check(
                            term,
                            *span,
                            codes::UNBOUND_NEGATED_VAR,
                            "under `notin`",
                            diagnostics,
                        );
                    } else if let Term::Arith(..) = term {
                        if term.has_wildcard() {
                            diagnostics.push(wildcard_in_expression(*span));
                        }
                        unbound.check(
                            term,
                            *span,
                            codes::UNBOUND_EXPR_VAR,
                            "in arithmetic",
                            diagnostics,
                        );
                    }
                }
            }
            Literal::Compare(comparison) => {
                if comparison.lhs.has_wildcard() || comparison.rhs.has_wildcard() {
                    diagnostics.push(wildcard_in_expression(comparison.span));
                }
                for term in [&comparison.lhs, &comparison.rhs] {
                    unbound.check(
                        term,
                        comparison.span,
                        codes::UNBOUND_EXPR_VAR,
                        "in a comparison",
                        diagnostics,
                    );
                }
            }
        }
    }
}

fn wildcard_in_expression(span: Span) -> Diagnostic {
    Diagnostic::error(
        codes::MISPLACED_WILDCARD,
        "`_` in a comparison or arithmetic",
        span,
    )
    .with_help("compare or compute with a bound variable or a value")
}

/// Turns a locality error in a Molly file into a warning that says how the rule is evaluated.
fn molly_locality_warning(error: Diagnostic) -> Diagnostic {
    let mut warning = Diagnostic::warning(codes::MOLLY_NON_LOCAL, error.message, error.primary.span)
        .with_primary_message(error.primary.message)
        .with_note("Molly's dialect allows this: the rule is evaluated over every node's facts at once, as Molly does")
        .with_help("in a `.graft` program this is an error: move remote facts with an `@async` rule first");
    warning.labels = error.labels;
    warning
}

fn locality(program: &ir::Program, rule: &ir::Rule, diagnostics: &mut Vec<Diagnostic>) {
    let mut body_location: Option<(VarId, Span)> = None;
    for (_, atom) in rule.atoms() {
        let (Some(first), Some(first_span)) = (atom.args.first(), atom.arg_spans.first()) else {
            continue;
        };
        let Term::Var(var) = first else {
            diagnostics.push(
                Diagnostic::error(
                    codes::LOCATION_NOT_VAR,
                    "the location of a body atom must be a variable",
                    *first_span,
                )
                .with_primary_message("the first argument names the node that evaluates the body")
                .with_help("use the body's location variable here and test its value with a comparison if needed"),
            );
            continue;
        };
        match body_location {
            None => body_location = Some((*var, *first_span)),
            Some((location, location_span)) if location != *var => {
                diagnostics.push(
                    Diagnostic::error(
                        codes::BODY_LOCATIONS_DIFFER,
                        format!(
                            "body atoms at different locations: `{}` and `{}`",
                            rule.var_name(location),
                            rule.var_name(*var)
                        ),
                        *first_span,
                    )
                    .with_primary_message(format!("this atom is at `{}`", rule.var_name(*var)))
                    .with_label(
                        location_span,
                        format!("the body is at `{}`", rule.var_name(location)),
                    )
                    .with_help("a body is evaluated at one node: send the remote facts there with an `@async` rule first"),
                );
            }
            Some(_) => {}
        }
    }
    if !matches!(
        rule.kind,
        RuleKind::Deductive | RuleKind::Next | RuleKind::Delete
    ) {
        return;
    }
    let Some((location, location_span)) = body_location else {
        return;
    };
    let (Some(head_location), Some(head_span)) =
        (rule.head.args.first(), rule.head.arg_spans.first())
    else {
        return;
    };
    if head_location.as_var() != Some(location) {
        let kind = match rule.kind {
            RuleKind::Deductive => "deductive",
            RuleKind::Next => "`@next`",
            RuleKind::Async | RuleKind::Delete => "`delete`",
        };
        let name = &program.relation(rule.head.rel).name;
        diagnostics.push(
            Diagnostic::error(
                codes::HEAD_LOCATION_DIFFERS,
                format!("the head of a {kind} rule must be at the body's location"),
                *head_span,
            )
            .with_primary_message(format!("`{name}` would be held at another node"))
            .with_label(location_span, format!("the body is at `{}`", rule.var_name(location)))
            .with_help(format!(
                "to send the fact to another node write `{name}(...)@async`; otherwise use `{}` as the head's first argument",
                rule.var_name(location)
            )),
        );
    }
}

fn kinds(program: &ir::Program, rule: &ir::Rule, diagnostics: &mut Vec<Diagnostic>) {
    let relation = program.relation(rule.head.rel);
    let head_span = rule.head.span;
    if relation.persistence == Persistence::Channel && rule.kind != RuleKind::Async {
        diagnostics.push(
            Diagnostic::error(
                codes::CHANNEL_NOT_ASYNC,
                format!(
                    "channel `{}` is written by a rule that is not `@async`",
                    relation.name
                ),
                head_span,
            )
            .with_label(relation.span, "declared as a channel here")
            .with_help(format!(
                "write `{}(...)@async :- ...;`, or declare `{}` as a `scratch` or `table`",
                relation.name, relation.name
            )),
        );
    }
    if relation.input && rule.kind != RuleKind::Delete {
        let mut diagnostic = Diagnostic::error(
            codes::DERIVES_INPUT,
            format!("rule derives the input relation `{}`", relation.name),
            head_span,
        )
        .with_primary_message("inputs are fed from outside")
        .with_help(format!(
            "remove `input` from the declaration of `{}`, or derive another relation",
            relation.name
        ));
        if relation.origin == RelationOrigin::Declared {
            diagnostic = diagnostic.with_label(relation.span, "declared `input` here");
        }
        diagnostics.push(diagnostic);
    }
    if rule.kind == RuleKind::Delete && relation.persistence != Persistence::Table {
        diagnostics.push(
            Diagnostic::error(
                codes::BAD_DELETE,
                format!("`delete` on `{}`, which is not a table", relation.name),
                head_span,
            )
            .with_primary_message("only tables persist, so only tables can be retracted")
            .with_help(format!(
                "declare `table {}(...)`, or stop carrying the fact forward with a `notin` guard on its persistence rule",
                relation.name
            )),
        );
    }
}

fn singletons(
    body: &[Literal],
    var_names: &[String],
    head: Option<&ir::HeadAtom>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let mut counts = vec![0_u32; var_names.len()];
    let mut count = |var: VarId| {
        if let Some(slot) = counts.get_mut(var.index()) {
            *slot += 1;
        }
    };
    if let Some(head) = head {
        for term in &head.args {
            term.for_each_var(&mut count);
        }
    }
    for literal in body {
        match literal {
            Literal::Atom(atom) => atom
                .args
                .iter()
                .for_each(|term| term.for_each_var(&mut count)),
            Literal::Compare(comparison) => {
                comparison.lhs.for_each_var(&mut count);
                comparison.rhs.for_each_var(&mut count);
            }
        }
    }
    for atom in body
        .iter()
        .filter_map(Literal::as_atom)
        .filter(|atom| !atom.negated)
    {
        // The location (first argument) is exempt: naming the node is documentation.
        for (term, span) in atom.args.iter().zip(&atom.arg_spans).skip(1) {
            let Term::Var(var) = term else {
                continue;
            };
            let name = var_names.get(var.index()).map_or("", String::as_str);
            if counts.get(var.index()) == Some(&1) && !name.starts_with('_') {
                diagnostics.push(
                    Diagnostic::warning(
                        codes::SINGLETON_VAR,
                        format!("variable `{name}` is used only once"),
                        *span,
                    )
                    .with_help(format!(
                        "write `_` if any value will do, or `_{name}` to keep the name"
                    ))
                    .with_suggestion(*span, "_", "replace with `_`"),
                );
            }
        }
    }
}

fn unused_declarations(program: &ir::Program, diagnostics: &mut Vec<Diagnostic>) {
    let mut used = vec![false; program.relations.len()];
    let mut mark = |rel: ir::RelId| {
        if let Some(slot) = used.get_mut(rel.index()) {
            *slot = true;
        }
    };
    for rule in &program.rules {
        mark(rule.head.rel);
        rule.atoms().for_each(|(_, atom)| mark(atom.rel));
    }
    for never in &program.nevers {
        never
            .body
            .iter()
            .filter_map(Literal::as_atom)
            .for_each(|atom| mark(atom.rel));
    }
    for fact in &program.facts {
        mark(fact.rel);
    }
    for relation in &program.relations {
        if relation.is_declared()
            && !relation.input
            && !relation.output
            && !used[relation.id.index()]
        {
            diagnostics.push(
                Diagnostic::warning(
                    codes::UNUSED_RELATION,
                    format!("relation `{}` is declared but never used", relation.name),
                    relation.span,
                )
                .with_help(
                    "remove the declaration, or mark it `input` or `output` if it is an interface",
                ),
            );
        }
    }
}
