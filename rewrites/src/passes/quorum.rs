//! `quorum`: change integer constants (quorum sizes, N) and the membership of a role, under
//! the requirements the program declares (`require Q1 + Q2 > N;`), checked arithmetically.
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

pub(super) fn check(
    context: &Context<'_>,
    spec: &PassSpec,
    constants: &[(String, i64)],
    membership: &[Membership],
) -> Result<QuorumPlan, Refusal> {
    let program = context.program;
    let mut failures = Vec::new();
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
                } else {
                    new_values.insert(id, Value::Int(*value));
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
    let mut preconditions = Vec::new();
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
    }
}
