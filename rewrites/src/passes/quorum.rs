//! `quorum`: change integer constants (quorum sizes, N) and the membership of a role, under
//! the requirements the program declares (`require Q1 + Q2 > N;`), checked arithmetically.
//!
//! Only quorums: a constant may be changed only when a count is compared against it (a
//! comparison in a rule body between a `count<>` or `sum<>` result, or a value copied from one,
//! and a term naming the constant, or the constant in an atom's column that holds a count), or
//! when a `require` relates it to such a constant (`N` in `require Q1 + Q2 > N`). A timer, a
//! ballot or any other constant is refused (`not-a-quorum`). The command-line tool then
//! verifies the new version's invariants before writing it (see `docs/rewrites.md`).
//!
//! Correctness: the program's safety argument is stated by its `require` conditions (for
//! Paxos-like protocols, quorum intersection: any phase-1 quorum meets any phase-2 quorum).
//! Every requirement is re-evaluated with the new values; a change that falsifies one is
//! refused, naming it. Behaviour may change (a smaller quorum decides sooner), so the new
//! version is not compared with the old one's outputs, only with its own snapshots and
//! invariants (`graft verify`).
//!
//! Cost: none in messages; smaller quorums decide after fewer replies.
//!
//! Transformation: the `const` declarations get their new values; an added member's facts
//! are copies of the role's first member's facts with the new name substituted; a removed
//! member's facts are dropped.

use std::collections::BTreeMap;

use graft_compiler::ir::{self, Value};

use super::{Context, Outcome, discharged};
use crate::draft::{DFact, Draft};
use crate::justification::{Comparison, Discharged, NameMap};
use crate::refusal::{FailedPrecondition, Refusal};
use crate::spec::{Membership, PassSpec};
use crate::{FactsFile, topology};

#[derive(Clone, Debug)]
pub(super) struct QuorumPlan {
    constants: Vec<(String, i64)>,
    membership: Vec<Membership>,
    pub(super) preconditions: Vec<Discharged>,
}

fn require_text(program: &ir::Program, require: &ir::Require) -> String {
    let draft_term = |term: &ir::Term| term_text(program, term);
    format!(
        "require {} {} {}",
        draft_term(&require.lhs),
        require.op.as_str(),
        draft_term(&require.rhs)
    )
}

fn term_text(program: &ir::Program, term: &ir::Term) -> String {
    match term {
        ir::Term::NamedConst(id, _) => program
            .consts
            .get(id.index())
            .map_or_else(|| "?".to_owned(), |c| c.name.clone()),
        ir::Term::Const(value) => value.to_string(),
        ir::Term::Arith(op, lhs, rhs) => format!(
            "{} {} {}",
            term_text(program, lhs),
            op.as_str(),
            term_text(program, rhs)
        ),
        ir::Term::Var(_) | ir::Term::Wildcard => "_".to_owned(),
    }
}

fn value_text(
    program: &ir::Program,
    term: &ir::Term,
    values: &dyn Fn(ir::ConstId) -> Option<Value>,
) -> String {
    let lookup = |id: ir::ConstId| {
        values(id).or_else(|| program.consts.get(id.index()).and_then(|c| c.value.clone()))
    };
    term.eval(&|_| None, &lookup)
        .map_or_else(|error| error.to_string(), |value| value.to_string())
}

/// A term as written in a rule: variables by name, constants by name.
fn rule_term_text(program: &ir::Program, rule_vars: &[String], term: &ir::Term) -> String {
    match term {
        ir::Term::Var(var) => rule_vars
            .get(var.index())
            .cloned()
            .unwrap_or_else(|| "_".to_owned()),
        ir::Term::Arith(op, lhs, rhs) => format!(
            "{} {} {}",
            rule_term_text(program, rule_vars, lhs),
            op.as_str(),
            rule_term_text(program, rule_vars, rhs)
        ),
        other => term_text(program, other),
    }
}

/// Every named constant in a term.
fn constants_in(term: &ir::Term, into: &mut Vec<ir::ConstId>) {
    match term {
        ir::Term::NamedConst(id, _) => into.push(*id),
        ir::Term::Arith(_, lhs, rhs) => {
            constants_in(lhs, into);
            constants_in(rhs, into);
        }
        ir::Term::Var(_) | ir::Term::Wildcard | ir::Term::Const(_) => {}
    }
}

/// The columns that hold counts: the result column of every `count<>` and `sum<>` aggregate,
/// and, to a fixpoint, every head column that copies a count column of a positive body atom.
fn count_columns(program: &ir::Program) -> BTreeMap<(ir::RelId, usize), String> {
    let mut columns: BTreeMap<(ir::RelId, usize), String> = BTreeMap::new();
    for rule in &program.rules {
        if let Some(aggregate) = &rule.head.aggregate
            && matches!(aggregate.func, ir::AggFunc::Count | ir::AggFunc::Sum)
        {
            columns.insert(
                (rule.head.rel, aggregate.column),
                format!(
                    "the {} `{}`",
                    aggregate.func.name(),
                    program.relation(rule.head.rel).name
                ),
            );
        }
    }
    loop {
        let mut added = Vec::new();
        for rule in &program.rules {
            for (column, arg) in rule.head.args.iter().enumerate() {
                let Some(var) = arg.as_var() else { continue };
                if columns.contains_key(&(rule.head.rel, column))
                    || rule
                        .head
                        .aggregate
                        .as_ref()
                        .is_some_and(|a| a.column == column)
                {
                    continue;
                }
                let source = rule.atoms().find_map(|(_, atom)| {
                    (!atom.negated)
                        .then(|| {
                            atom.args.iter().enumerate().find_map(|(index, term)| {
                                (term.as_var() == Some(var))
                                    .then(|| columns.get(&(atom.rel, index)))
                                    .flatten()
                            })
                        })
                        .flatten()
                });
                if let Some(source) = source {
                    added.push(((rule.head.rel, column), source.clone()));
                }
            }
        }
        let before = columns.len();
        for (key, source) in added {
            columns.entry(key).or_insert(source);
        }
        if columns.len() == before {
            return columns;
        }
    }
}

/// The constants a count or a threshold is compared against, each with the evidence: where a
/// rule compares it with a count, or which `require` relates it to such a constant.
pub fn quorum_constants(program: &ir::Program) -> BTreeMap<ir::ConstId, String> {
    let columns = count_columns(program);
    let mut found: BTreeMap<ir::ConstId, String> = BTreeMap::new();
    for rule in &program.rules {
        // Variables bound to a count in this rule, with what they count.
        let mut counts: BTreeMap<ir::VarId, String> = BTreeMap::new();
        for (_, atom) in rule.atoms() {
            if atom.negated {
                continue;
            }
            for (index, term) in atom.args.iter().enumerate() {
                let Some(what) = columns.get(&(atom.rel, index)) else {
                    continue;
                };
                match term {
                    ir::Term::Var(var) => {
                        counts.entry(*var).or_insert_with(|| what.clone());
                    }
                    ir::Term::NamedConst(id, _) => {
                        let relation = &program.relation(atom.rel).name;
                        found.entry(*id).or_insert_with(|| {
                            format!(
                                "{what} must equal it in `{relation}(..)` (column {})",
                                index + 1
                            )
                        });
                    }
                    _ => {}
                }
            }
        }
        for literal in &rule.body {
            let ir::Literal::Compare(comparison) = literal else {
                continue;
            };
            let mut named = Vec::new();
            constants_in(&comparison.lhs, &mut named);
            constants_in(&comparison.rhs, &mut named);
            let mut counted = None;
            let mut visit = |var: ir::VarId| {
                if counted.is_none() {
                    counted = counts.get(&var).map(|what| (var, what.clone()));
                }
            };
            comparison.lhs.for_each_var(&mut visit);
            comparison.rhs.for_each_var(&mut visit);
            let Some((var, what)) = counted else { continue };
            let text = format!(
                "{} {} {}",
                rule_term_text(program, &rule.var_names, &comparison.lhs),
                comparison.op.as_str(),
                rule_term_text(program, &rule.var_names, &comparison.rhs)
            );
            for id in named {
                found.entry(id).or_insert_with(|| {
                    format!(
                        "compared with a count in `{text}` (`{}` is {what}) in a rule deriving `{}`",
                        rule.var_name(var),
                        program.relation(rule.head.rel).name
                    )
                });
            }
        }
    }
    // A constant that a `require` relates to a quorum is a threshold too (N in Q1 + Q2 > N).
    loop {
        let mut added = Vec::new();
        for require in &program.requires {
            let mut named = Vec::new();
            constants_in(&require.lhs, &mut named);
            constants_in(&require.rhs, &mut named);
            let Some(quorum) = named.iter().find(|id| found.contains_key(id)) else {
                continue;
            };
            let quorum_name = &program.consts[quorum.index()].name;
            for id in &named {
                if !found.contains_key(id) {
                    added.push((
                        *id,
                        format!(
                            "related to the quorum `{quorum_name}` by `{}`",
                            require_text(program, require)
                        ),
                    ));
                }
            }
        }
        if added.is_empty() {
            return found;
        }
        for (id, evidence) in added {
            found.entry(id).or_insert(evidence);
        }
    }
}

/// Where a constant is used in the rules (for a refusal's labels and message).
fn uses_of(program: &ir::Program, id: ir::ConstId) -> Vec<(graft_language::span::Span, String)> {
    let mut uses = Vec::new();
    for rule in &program.rules {
        for literal in &rule.body {
            match literal {
                ir::Literal::Compare(comparison) => {
                    let mut named = Vec::new();
                    constants_in(&comparison.lhs, &mut named);
                    constants_in(&comparison.rhs, &mut named);
                    if named.contains(&id) {
                        uses.push((
                            comparison.span,
                            format!(
                                "used in `{} {} {}`, which compares no count",
                                rule_term_text(program, &rule.var_names, &comparison.lhs),
                                comparison.op.as_str(),
                                rule_term_text(program, &rule.var_names, &comparison.rhs)
                            ),
                        ));
                    }
                }
                ir::Literal::Atom(atom) => {
                    let mut named = Vec::new();
                    for term in &atom.args {
                        constants_in(term, &mut named);
                    }
                    if named.contains(&id) {
                        uses.push((
                            atom.span,
                            format!(
                                "used in `{}(..)`, in no column that holds a count",
                                program.relation(atom.rel).name
                            ),
                        ));
                    }
                }
            }
        }
        let mut named = Vec::new();
        for term in &rule.head.args {
            constants_in(term, &mut named);
        }
        if named.contains(&id) {
            uses.push((
                rule.head.span,
                format!(
                    "used as a value of `{}`",
                    program.relation(rule.head.rel).name
                ),
            ));
        }
    }
    uses
}

pub(super) fn check(
    context: &Context<'_>,
    spec: &PassSpec,
    constants: &[(String, i64)],
    membership: &[Membership],
) -> Result<QuorumPlan, Refusal> {
    let program = context.program;
    let mut failures = Vec::new();
    let mut preconditions = Vec::new();
    let quorums = quorum_constants(program);
    let mut new_values: BTreeMap<ir::ConstId, Value> = BTreeMap::new();
    for (name, value) in constants {
        match program.const_by_name(name) {
            None => {
                let names = program.consts.iter().map(|c| c.name.as_str());
                let suggestion = match graft_compiler::suggest::did_you_mean(name, names) {
                    Some(candidate) => format!("did you mean `{candidate}`?"),
                    None => "name a constant declared with `const`".to_owned(),
                };
                failures.push(FailedPrecondition::new(
                    "unknown-constant",
                    format!("the program declares no constant `{name}`"),
                    context.fallback_span(),
                    suggestion,
                ));
            }
            Some(id) => {
                let declared = &program.consts[id.index()];
                if declared.value.as_ref().and_then(Value::as_int).is_none() {
                    failures.push(FailedPrecondition::new(
                        "constant-not-int",
                        format!("`{name}` is not an integer constant"),
                        declared.span,
                        "quorum changes apply to integer constants",
                    ));
                } else if let Some(evidence) = quorums.get(&id) {
                    preconditions.push(discharged(
                        "quorum-constant",
                        format!("`{name}` is a quorum or threshold: {evidence}"),
                    ));
                    new_values.insert(id, Value::Int(*value));
                } else {
                    let uses = uses_of(program, id);
                    let used = if uses.is_empty() {
                        "no rule uses it".to_owned()
                    } else {
                        uses.iter()
                            .map(|(_, text)| text.clone())
                            .collect::<Vec<_>>()
                            .join("; ")
                    };
                    let mut names: Vec<&str> = quorums
                        .keys()
                        .filter_map(|q| program.consts.get(q.index()))
                        .map(|c| c.name.as_str())
                        .collect();
                    names.sort_unstable();
                    let suggestion = if names.is_empty() {
                        "this program compares no constant with a count, so it has no quorum to change; change the constant by editing the program (and verify it with `graft verify`)".to_owned()
                    } else {
                        format!(
                            "quorum changes apply to constants a count or threshold is compared against; here: {}",
                            names.join(", ")
                        )
                    };
                    let mut failure = FailedPrecondition::new(
                        "not-a-quorum",
                        format!(
                            "`{name}` is not a quorum: no count or threshold is compared against it ({used})"
                        ),
                        declared.span,
                        suggestion,
                    );
                    for (span, text) in uses {
                        failure = failure.with_label(span, text);
                    }
                    failures.push(failure);
                }
            }
        }
    }
    for change in membership {
        let (Membership::Add { role, node } | Membership::Remove { role, node }) = change;
        if program.role_by_name(role).is_none() {
            failures.push(context.unknown_role(role));
        } else if let Membership::Remove { .. } = change {
            let draft = Draft::from_ir(program);
            let members = topology::nodes_of(&draft, &[], role);
            if !members.is_empty() && !members.contains(node) {
                failures.push(FailedPrecondition::new(
                    "unknown-member",
                    format!("`{node}` is not a member of role `{role}` in the program's facts"),
                    context.fallback_span(),
                    format!(
                        "name one of: {}",
                        members.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
    }
    let lookup = |id: ir::ConstId| new_values.get(&id).cloned();
    for require in &program.requires {
        let text = require_text(program, require);
        let evaluated = format!(
            "{} {} {}",
            value_text(program, &require.lhs, &lookup),
            require.op.as_str(),
            value_text(program, &require.rhs, &lookup)
        );
        match require.eval(program, &lookup) {
            Ok(true) => preconditions.push(discharged(
                "requirement-holds",
                format!("`{text}`: {evaluated} holds with the new values"),
            )),
            Ok(false) => failures.push(FailedPrecondition::new(
                "requirement-violated",
                format!("`{text}` would not hold: {evaluated} is false"),
                require.span,
                "choose values for which every `require` holds (for quorums: any two quorums that must meet still intersect)",
            )),
            Err(error) => failures.push(FailedPrecondition::new(
                "requirement-violated",
                format!("`{text}` cannot be evaluated with the new values: {error}"),
                require.span,
                "choose values for which every `require` can be evaluated and holds",
            )),
        }
    }
    if program.requires.is_empty() {
        preconditions.push(discharged(
            "requirement-holds",
            "the program declares no `require`: nothing constrains the constants",
        ));
    }
    if !failures.is_empty() {
        return Err(Refusal::new(spec.text(), failures));
    }
    Ok(QuorumPlan {
        constants: constants.to_vec(),
        membership: membership.to_vec(),
        preconditions,
    })
}

pub(super) fn apply(plan: &QuorumPlan, draft: &mut Draft, files: &mut [FactsFile]) -> Outcome {
    let mut constants = Vec::new();
    for (name, value) in &plan.constants {
        if let Some(slot) = draft.consts.iter_mut().find(|(n, _)| n == name) {
            constants.push(NameMap {
                old: format!("const {name} = {}", slot.1),
                new: vec![format!("const {name} = {value}")],
                how: "constant changed".to_owned(),
            });
            slot.1 = Value::Int(*value);
        }
    }
    for change in &plan.membership {
        match change {
            Membership::Add { role, node } => {
                let members = topology::nodes_of(draft, files, role);
                let Some(template) = members.iter().next().cloned() else {
                    continue;
                };
                let copy = |facts: &[DFact]| -> Vec<DFact> {
                    facts
                        .iter()
                        .filter(|fact| fact.values.iter().any(|v| v.as_str() == Some(&template)))
                        .map(|fact| DFact {
                            rel: fact.rel.clone(),
                            values: fact
                                .values
                                .iter()
                                .map(|v| {
                                    if v.as_str() == Some(&template) {
                                        Value::str(node)
                                    } else {
                                        v.clone()
                                    }
                                })
                                .collect(),
                            tick: fact.tick,
                        })
                        .collect()
                };
                let added = copy(&draft.facts);
                draft.facts.extend(added);
                for file in files.iter_mut() {
                    let added = copy(&file.facts);
                    file.facts.extend(added);
                }
            }
            Membership::Remove { node, .. } => {
                let keep = |fact: &DFact| !fact.values.iter().any(|v| v.as_str() == Some(node));
                draft.facts.retain(keep);
                for file in files.iter_mut() {
                    file.facts.retain(keep);
                }
            }
        }
    }
    Outcome {
        case: None,
        roles: Vec::new(),
        relations: Vec::new(),
        constants,
        added: Vec::new(),
        nodes: BTreeMap::new(),
        comparison: Comparison::None,
        assumptions: Vec::new(),
    }
}
