//! graft's compiler: lowers parsed files to an IR with stable ids, checks names, types, range
//! restriction, locality and stratification, and runs Bloom-style analyses (persistence,
//! CALM path labels, points of order).
//!
//! Entry points: [`check`] for a program's files, [`check_facts`] for workload files against a
//! checked program, [`summary`] / [`render_summary_text`] for `graft check`, and
//! [`graph_dot`] / [`graph_mermaid`] for `graft graph`.
//!
//! Architecture invariant: this crate is pure and deterministic. It does no I/O, never stops
//! at the first problem (every check runs and reports into one list of diagnostics), never
//! panics on user input, and always returns the best program it could build.

pub mod analysis;
mod checks;
pub mod codes;
pub mod graph;
pub mod ir;
mod lower;
mod render;
pub mod suggest;
mod summary;
mod types;

use graft_language::ast;
use graft_language::diagnostic::{Diagnostic, sort_diagnostics};
use graft_language::span::{SourceMap, Span};

pub use analysis::Analysis;
pub use lower::CRASH;
pub use render::{graph_dot, graph_mermaid};
pub use summary::{
    Summary, SummaryColumn, SummaryConst, SummaryPath, SummaryPointOfOrder, SummaryRelation,
    render_summary_text, summary,
};

/// The result of checking a program.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The best program that could be built; run it only if `diagnostics` has no error.
    pub program: ir::Program,
    pub analysis: Analysis,
    /// Every problem found, sorted by [`sort_diagnostics`].
    pub diagnostics: Vec<Diagnostic>,
    /// File names and line starts, to show locations in summaries.
    lines: LineIndex,
}

impl Checked {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// `file:line` of a span, for summaries and reports.
    pub fn location(&self, span: Span) -> String {
        self.lines.location(span)
    }
}

/// Checks a program made of `files` (a protocol, its includes, its Molly specification...),
/// whose texts are in `sources`.
pub fn check(sources: &SourceMap, files: &[ast::SourceFile]) -> Checked {
    let (mut program, mut diagnostics) = lower::lower(files);
    let molly_files: Vec<graft_language::span::FileId> = sources
        .files()
        .filter(|(_, file)| file.name.ends_with(".ded"))
        .map(|(id, _)| id)
        .collect();
    relax_molly_undefined_negations(&program, &molly_files, &mut diagnostics);
    diagnostics.extend(relax_molly_negated_free_variables(
        &mut program,
        &molly_files,
    ));
    diagnostics.extend(types::infer(&mut program, &molly_files));
    // Molly's dialect (`.ded` files) evaluates every body over all nodes at once, so its
    // programs may break locality; graft files may not.
    diagnostics.extend(checks::check(&program, &molly_files));
    diagnostics.extend(check_requires(&program));
    analysis::detect_persistence_rules(&mut program);
    let graph = graph::DependencyGraph::build(&program);
    let (strata, stratification) = graph::stratify(&program, &graph);
    diagnostics.extend(stratification);
    let analysis = analysis::analyse(&program, graph, strata);
    sort_diagnostics(&mut diagnostics);
    Checked {
        program,
        analysis,
        diagnostics,
        lines: LineIndex::new(sources),
    }
}

/// In Molly's dialect a relation that nothing defines is simply empty (Molly's timeout service
/// reads `notin timer_cancel(..)` and leaves `timer_cancel` to its users). When every use of
/// such a relation in a Molly file is under `notin`, its "unknown relation" errors become
/// warnings ([`codes::MOLLY_UNDEFINED_NEGATED`]) and the relation is empty at every tick.
fn relax_molly_undefined_negations(
    program: &ir::Program,
    molly_files: &[graft_language::span::FileId],
    diagnostics: &mut [Diagnostic],
) {
    if molly_files.is_empty() {
        return;
    }
    let mut only_negated_in_molly = vec![true; program.relations.len()];
    let mut literals = program
        .rules
        .iter()
        .flat_map(|rule| rule.body.iter())
        .chain(program.nevers.iter().flat_map(|never| never.body.iter()));
    for literal in literals.by_ref() {
        if let ir::Literal::Atom(atom) = literal
            && (!atom.negated || !molly_files.contains(&atom.span.file))
            && let Some(flag) = only_negated_in_molly.get_mut(atom.rel.index())
        {
            *flag = false;
        }
    }
    for diagnostic in diagnostics.iter_mut() {
        if diagnostic.code != codes::UNKNOWN_RELATION {
            continue;
        }
        let span = diagnostic.primary.span;
        let relaxed = program.relations.iter().any(|relation| {
            relation.origin == ir::RelationOrigin::Unknown
                && only_negated_in_molly[relation.id.index()]
                && relation.span.file == span.file
                && program
                    .rules
                    .iter()
                    .flat_map(|rule| rule.body.iter())
                    .any(|literal| {
                        matches!(literal, ir::Literal::Atom(atom)
                        if atom.rel == relation.id
                            && atom.span.start <= span.start
                            && span.end <= atom.span.end)
                    })
        });
        if relaxed {
            diagnostic.code = codes::MOLLY_UNDEFINED_NEGATED;
            diagnostic.severity = graft_language::diagnostic::Severity::Warning;
            diagnostic.message =
                format!("{}: nothing defines it, so it is empty", diagnostic.message);
            diagnostic.help = Some(
                "Molly's dialect reads an undefined relation as empty; give it facts or rules if it should hold".to_owned(),
            );
            diagnostic.suggestion = None;
        }
    }
}

/// In Molly's dialect a variable that occurs nowhere but as whole arguments of negated atoms
/// (at most once per atom) is existential inside its negation: `notin end_delete(L, Id)` holds
/// when no `end_delete(L, _)` fact exists, as Molly (through C4) reads it. Such variables
/// become wildcards, with a warning ([`codes::MOLLY_NEGATED_FREE_VAR`]); in a `.graft` file
/// they stay errors (E0402).
fn relax_molly_negated_free_variables(
    program: &mut ir::Program,
    molly_files: &[graft_language::span::FileId],
) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    for rule in program
        .rules
        .iter_mut()
        .filter(|rule| molly_files.contains(&rule.span.file))
    {
        let count = rule.var_names.len();
        // Per variable: used outside negated atoms (or inside arithmetic there), and its
        // whole-argument uses under `notin` as (literal, column).
        let mut elsewhere = vec![false; count];
        let mut negated: Vec<Vec<(usize, usize)>> = vec![Vec::new(); count];
        let mark = |term: &ir::Term, flags: &mut Vec<bool>| {
            term.for_each_var(&mut |var| {
                if let Some(flag) = flags.get_mut(var.index()) {
                    *flag = true;
                }
            });
        };
        for term in &rule.head.args {
            mark(term, &mut elsewhere);
        }
        if let Some(aggregate) = &rule.head.aggregate
            && let Some(flag) = elsewhere.get_mut(aggregate.var.index())
        {
            *flag = true;
        }
        for (position, literal) in rule.body.iter().enumerate() {
            match literal {
                ir::Literal::Atom(atom) if atom.negated => {
                    for (column, term) in atom.args.iter().enumerate() {
                        match term {
                            ir::Term::Var(var) => {
                                if let Some(uses) = negated.get_mut(var.index()) {
                                    uses.push((position, column));
                                }
                            }
                            other => mark(other, &mut elsewhere),
                        }
                    }
                }
                ir::Literal::Atom(atom) => {
                    for term in &atom.args {
                        mark(term, &mut elsewhere);
                    }
                }
                ir::Literal::Compare(comparison) => {
                    mark(&comparison.lhs, &mut elsewhere);
                    mark(&comparison.rhs, &mut elsewhere);
                }
            }
        }
        for (var, uses) in negated.iter().enumerate() {
            let repeated = uses.windows(2).any(|pair| pair[0].0 == pair[1].0);
            if elsewhere[var] || uses.is_empty() || repeated {
                continue;
            }
            let name = rule.var_names.get(var).cloned().unwrap_or_default();
            let mut first = None;
            for (position, column) in uses {
                if let Some(ir::Literal::Atom(atom)) = rule.body.get_mut(*position) {
                    first = first.or_else(|| atom.arg_spans.get(*column).copied());
                    if let Some(term) = atom.args.get_mut(*column) {
                        *term = ir::Term::Wildcard;
                    }
                }
            }
            if let Some(span) = first {
                diagnostics.push(
                    Diagnostic::warning(
                        codes::MOLLY_NEGATED_FREE_VAR,
                        format!("variable `{name}` occurs only under `notin`"),
                        span,
                    )
                    .with_primary_message("it matches any value here, as `_` would")
                    .with_note("Molly's dialect reads it as existential inside the negation")
                    .with_help(format!(
                        "write `_` instead of `{name}`; in a `.graft` file this is an error (E0402)"
                    )),
                );
            }
        }
    }
    diagnostics
}

fn check_requires(program: &ir::Program) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    for require in &program.requires {
        match require.eval(program, &|_| None) {
            Ok(true) | Err(ir::EvalError::Unbound) => {}
            Ok(false) => {
                let lhs = require.lhs.eval(&|_| None, &|id| {
                    program.consts.get(id.index()).and_then(|c| c.value.clone())
                });
                let rhs = require.rhs.eval(&|_| None, &|id| {
                    program.consts.get(id.index()).and_then(|c| c.value.clone())
                });
                let mut diagnostic = Diagnostic::error(
                    codes::REQUIRE_FAILED,
                    "this requirement does not hold for the declared constants",
                    require.span,
                );
                if let (Ok(lhs), Ok(rhs)) = (lhs, rhs) {
                    diagnostic = diagnostic.with_primary_message(format!(
                        "{lhs} {} {rhs} is false",
                        require.op.as_str()
                    ));
                }
                diagnostics
                    .push(diagnostic.with_help("change the constants so that the condition holds"));
            }
            Err(ir::EvalError::NotAnInt) => diagnostics.push(
                Diagnostic::error(
                    codes::ARITH_NOT_INT,
                    "arithmetic on a value that is not an int",
                    require.span,
                )
                .with_help("`+ - * /` apply only to ints"),
            ),
            Err(error @ (ir::EvalError::DivisionByZero | ir::EvalError::Overflow)) => diagnostics
                .push(
                    Diagnostic::error(
                        codes::CONST_EVAL,
                        format!("this requirement cannot be evaluated: {error}"),
                        require.span,
                    )
                    .with_help("change the expression so that it has a value"),
                ),
        }
    }
    diagnostics
}

/// Checks fact-only files (workloads, topologies) against a checked program: every item must
/// be a fact `rel(values)@N;` of a relation of the program, with the right arity and types
/// and a tick of at least 1. Returns the facts that passed and the diagnostics (sorted).
pub fn check_facts(
    program: &ir::Program,
    files: &[ast::SourceFile],
) -> (Vec<ir::Fact>, Vec<Diagnostic>) {
    let mut facts = Vec::new();
    let mut diagnostics = Vec::new();
    for item in files.iter().flat_map(|file| &file.items) {
        let rule = match item {
            ast::Item::Rule(rule) if rule.is_fact() => rule,
            ast::Item::Include(_) | ast::Item::Error(_) => continue,
            other => {
                diagnostics.push(
                    Diagnostic::error(codes::NOT_A_FACT, "only facts are allowed in a facts file", other.span())
                        .with_help("move rules and declarations into the program; a facts file holds lines like `rel(\"a\", 1)@1;`"),
                );
                continue;
            }
        };
        let name = &rule.head.relation;
        let Some(rel) = program
            .relation_by_name(&name.name)
            .filter(|rel| program.relation(*rel).origin != ir::RelationOrigin::Unknown)
        else {
            let mut diagnostic = Diagnostic::error(
                codes::UNKNOWN_RELATION,
                format!("unknown relation `{}`", name.name),
                name.span,
            )
            .with_primary_message("the program has no relation of this name")
            .with_help("give facts only for relations of the program (declare it `input` there)");
            let candidates = program
                .relations
                .iter()
                .map(|relation| relation.name.as_str());
            if let Some(candidate) = suggest::did_you_mean(&name.name, candidates) {
                diagnostic = diagnostic.with_suggestion(
                    name.span,
                    candidate,
                    format!("did you mean `{candidate}`?"),
                );
            }
            diagnostics.push(diagnostic);
            continue;
        };
        let relation = program.relation(rel);
        if relation.arity() != rule.head.args.len() {
            diagnostics.push(
                Diagnostic::error(
                    codes::ARITY_MISMATCH,
                    codes::arity_message(&relation.name, relation.arity(), rule.head.args.len()),
                    rule.head.span,
                )
                .with_help(format!(
                    "give `{}` exactly {} arguments",
                    relation.name,
                    relation.arity()
                )),
            );
            continue;
        }
        let Some(fact) = lower::lower_fact_values(
            rule,
            rel,
            &program.consts,
            &program.const_index,
            &mut diagnostics,
        ) else {
            continue;
        };
        let mut ok = true;
        for ((value, column), arg) in fact
            .values
            .iter()
            .zip(&relation.columns)
            .zip(&rule.head.args)
        {
            if !value.fits(column.ty) {
                ok = false;
                let mut diagnostic = Diagnostic::error(
                    codes::FACT_TYPE,
                    format!(
                        "column `{}` of `{}` holds `{}` values, but this is a `{}` value",
                        column.name,
                        relation.name,
                        program.type_name(column.ty),
                        value.kind_name()
                    ),
                    arg.span(),
                )
                .with_help(format!(
                    "write a `{}` value here",
                    program.type_name(column.ty)
                ));
                if let Some(span) = column.ty_span {
                    diagnostic = diagnostic.with_label(span, "the column's type comes from here");
                }
                diagnostics.push(diagnostic);
            }
        }
        if ok {
            facts.push(fact);
        }
    }
    sort_diagnostics(&mut diagnostics);
    (facts, diagnostics)
}

/// Line starts of every file, to turn spans into `file:line`.
#[derive(Clone, Debug, Default)]
struct LineIndex {
    files: Vec<(String, Vec<u32>)>,
}

impl LineIndex {
    fn new(sources: &SourceMap) -> LineIndex {
        let files = sources
            .files()
            .map(|(_, file)| {
                let mut starts = vec![0_u32];
                starts.extend(
                    file.text
                        .match_indices('\n')
                        .map(|(index, _)| u32::try_from(index + 1).unwrap_or(u32::MAX)),
                );
                (file.name.clone(), starts)
            })
            .collect();
        LineIndex { files }
    }

    fn location(&self, span: Span) -> String {
        match self.files.get(span.file.0 as usize) {
            Some((name, starts)) => {
                let line = starts.partition_point(|start| *start <= span.start);
                format!("{name}:{line}")
            }
            None => format!("file {}:{}", span.file.0, span.start),
        }
    }
}
