//! `decouple`: move part of a role — chosen relations and the rules that derive them — to a
//! new role, one new node `X/NEWROLE` per node `X`.
//!
//! Correctness (Chu et al., §3): the moved half M and the staying half K must be in one of
//! three safe cases, checked in order:
//! - **mutually-independent**: no rule of K reads a relation of M and no rule of M reads a
//!   relation of K (read-only inputs are copied to both halves). Messages into M are
//!   readdressed to the new nodes; no message is added. Same outputs at the same ticks.
//! - **monotonic**: K does not read M; M has no negation, aggregation or retraction; every
//!   relation of K that M reads is persisted, and M joins it only with persisted relations.
//!   K forwards those relations to M, where they are persisted again. Outputs are the same
//!   eventually (one hop later).
//! - **functional**: K does not read M; M has no negation, aggregation or retraction, and
//!   every rule of M reads at most one relation that is not a read-only input (a stateless
//!   per-fact map). K forwards what M reads; nothing is persisted. One hop later.
//!
//! Anything else is refused with every reason.
//!
//! Cost: mutually independent decoupling adds nothing; the other cases add one forwarding
//! message per forwarded fact and one hop of latency, in exchange for moving M's work off
//! the old nodes.
//!
//! Transformation: M's relations are declared at the new role; senders of M's channels (and
//! K's forwarding rules) address `X/NEWROLE` through the generated input table
//! `NEWROLE_at(at, orig, moved)`; M's rules read their original address from
//! `NEWROLE_self(at, orig)` so that messages still carry `X`. Specification rules that read
//! the moved half move with it; invariants that use a moved relation's location as a value
//! read it through `NEWROLE_self` (see [`readdress_never`]).

use std::collections::{BTreeMap, BTreeSet};

use graft_compiler::ir::{self, Persistence, RelId, RuleKind, Type, Value};

use super::{Context, Outcome, discharged};
use crate::draft::{DColumn, DHeadArg, DLiteral, DRelation, DRule, DTerm, Draft};
use crate::justification::{Comparison, Discharged, NameMap};
use crate::refusal::{FailedPrecondition, Refusal};
use crate::spec::{PassSpec, Placement};
use crate::{FactsFile, topology};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Case {
    MutuallyIndependent,
    Monotonic,
    Functional,
}

impl Case {
    fn as_str(&self) -> &'static str {
        match self {
            Case::MutuallyIndependent => "mutually-independent",
            Case::Monotonic => "monotonic",
            Case::Functional => "functional",
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct DecouplePlan {
    role: String,
    to: String,
    placement: Placement,
    case: Case,
    /// Relations of M (by name).
    moved: BTreeSet<String>,
    /// Rules of M (ids).
    moved_rules: BTreeSet<u32>,
    /// Relations of K that M reads (forwarded in the monotonic and functional cases).
    forwarded: BTreeSet<String>,
    /// Read-only inputs M reads (copied to the new nodes).
    copied_inputs: BTreeSet<String>,
    /// Specification rules (ids) whose body reads the moved half: they follow it to the new
    /// nodes (and read the copies of read-only inputs).
    spec_rules: BTreeSet<u32>,
    /// Specification relations at the role whose rules move: their new location type (the
    /// new role when every deriving rule moves, `node` when only some do).
    spec_types: BTreeMap<String, String>,
    pub(super) preconditions: Vec<Discharged>,
}

pub(super) fn check(
    context: &Context<'_>,
    spec: &PassSpec,
    role: &str,
    relations: &[String],
    to: &str,
    placement: Placement,
) -> Result<DecouplePlan, Refusal> {
    let refuse = |failures| Refusal::new(spec.text(), failures);
    let program = context.program;
    let Some(role_id) = program.role_by_name(role) else {
        return Err(refuse(vec![context.unknown_role(role)]));
    };
    let mut failures = Vec::new();
    let mut moved: BTreeSet<RelId> = BTreeSet::new();
    for name in relations {
        match context.relation_by_name(name) {
            None => failures.push(context.unknown_relation(name)),
            Some(rel) => {
                let relation = context.relation(rel);
                if relation.columns.first().map(|c| c.ty) != Some(Type::Role(role_id))
                    || relation.input
                    || context.is_spec(rel)
                {
                    failures.push(FailedPrecondition::new(
                        "not-movable",
                        format!("`{name}` is not a derived relation located at `{role}`"),
                        relation.span,
                        format!("move relations of `{role}` that its rules derive"),
                    ));
                } else {
                    moved.insert(rel);
                }
            }
        }
    }
    if program.role_by_name(to).is_some() {
        failures.push(FailedPrecondition::new(
            "not-movable",
            format!("the program already has a role `{to}`"),
            context.fallback_span(),
            "name a new role with `to=`",
        ));
    }
    if !failures.is_empty() {
        return Err(refuse(failures));
    }
    let at_role = |rule: &ir::Rule| context.rule_location_type(rule).as_deref() == Some(role);
    // M's rules: rules at the role deriving a moved relation, and async rules at the role
    // that read a moved relation and no other derived relation of the role.
    let mut moved_rules: BTreeSet<u32> = BTreeSet::new();
    for rule in context.protocol_rules().filter(|rule| at_role(rule)) {
        let derives_moved = moved.contains(&rule.head.rel);
        let head_at_role = context
            .relation(rule.head.rel)
            .columns
            .first()
            .map(|c| c.ty)
            == Some(Type::Role(role_id));
        let reads_moved = rule.atoms().any(|(_, a)| moved.contains(&a.rel));
        let reads_kept = rule.atoms().any(|(_, a)| {
            !moved.contains(&a.rel)
                && !context.relation(a.rel).input
                && context.relation(a.rel).persistence != Persistence::Channel
        });
        if derives_moved
            || (rule.kind == RuleKind::Async && !head_at_role && reads_moved && !reads_kept)
        {
            moved_rules.insert(rule.id.0);
        }
    }
    // Channels of the role read only by rules of the moved half move too: their
    // messages are readdressed to the new nodes.
    for relation in &program.relations {
        if relation.persistence != Persistence::Channel
            || relation.columns.first().map(|c| c.ty) != Some(Type::Role(role_id))
        {
            continue;
        }
        let readers: Vec<&ir::Rule> = context
            .protocol_rules()
            .filter(|rule| rule.atoms().any(|(_, a)| a.rel == relation.id))
            .collect();
        if !readers.is_empty() && readers.iter().all(|rule| moved_rules.contains(&rule.id.0)) {
            moved.insert(relation.id);
        }
    }
    let in_m = |rule: &ir::Rule| moved_rules.contains(&rule.id.0);
    // Specification rules (`pre`, `post` and helpers) follow their body: one that reads the
    // moved half runs at the new nodes, so it must not read the staying half too.
    let mut spec_rules: BTreeSet<u32> = BTreeSet::new();
    let mut spec_split = Vec::new();
    let mut spec_inputs: BTreeSet<RelId> = BTreeSet::new();
    for rule in program
        .rules
        .iter()
        .filter(|rule| context.is_spec(rule.head.rel) && at_role(rule))
    {
        let reads_moved = rule.atoms().any(|(_, a)| moved.contains(&a.rel));
        if !reads_moved {
            continue;
        }
        spec_rules.insert(rule.id.0);
        for (_, atom) in rule.atoms() {
            let relation = context.relation(atom.rel);
            let of_role = relation.columns.first().map(|c| c.ty) == Some(Type::Role(role_id));
            if !of_role || moved.contains(&atom.rel) {
                continue;
            }
            if relation.input {
                spec_inputs.insert(atom.rel);
            } else {
                spec_split.push(
                    FailedPrecondition::new(
                        "spec-reads-both-halves",
                        format!(
                            "this specification rule reads `{}`, which stays at `{role}`, together with relations that move",
                            relation.name
                        ),
                        atom.span,
                        format!(
                            "move `{}` too, or state the specification over one half",
                            relation.name
                        ),
                    )
                    .with_label(rule.span, "in this specification rule"),
                );
            }
        }
    }
    let mut spec_types: BTreeMap<String, String> = BTreeMap::new();
    for relation in program.relations.iter().filter(|relation| {
        context.is_spec(relation.id)
            && relation.columns.first().map(|c| c.ty) == Some(Type::Role(role_id))
    }) {
        let deriving: Vec<&ir::Rule> = program
            .rules
            .iter()
            .filter(|rule| rule.head.rel == relation.id)
            .collect();
        let moving = deriving
            .iter()
            .filter(|rule| spec_rules.contains(&rule.id.0))
            .count();
        if moving == 0 {
            continue;
        }
        let ty = if moving == deriving.len() {
            to.to_owned()
        } else {
            "node".to_owned()
        };
        spec_types.insert(relation.name.clone(), ty);
    }
    let stays = context
        .protocol_rules()
        .filter(|rule| at_role(rule) && !in_m(rule))
        .count();
    if stays == 0 {
        return Err(refuse(vec![FailedPrecondition::new(
            "nothing-stays",
            format!(
                "every rule of `{role}` would move: that renames the role, it does not decouple it"
            ),
            program.roles[role_id.index()].span,
            "move a part of the role, not all of it",
        )]));
    }
    // Dataflow between the halves.
    let mut stayer_reads_moved = Vec::new();
    for rule in context
        .protocol_rules()
        .filter(|rule| at_role(rule) && !in_m(rule))
    {
        for (_, atom) in rule.atoms() {
            if moved.contains(&atom.rel) {
                stayer_reads_moved.push(
                    FailedPrecondition::new(
                        "stayer-reads-moved",
                        format!(
                            "a rule that stays at `{role}` reads `{}`, which would move",
                            context.relation(atom.rel).name
                        ),
                        atom.span,
                        format!(
                            "move this rule's head too (add `{}` to rels), or move less",
                            context.relation(rule.head.rel).name
                        ),
                    )
                    .with_label(rule.span, "this rule stays"),
                );
            }
        }
    }
    let mut forwarded: BTreeSet<RelId> = BTreeSet::new();
    let mut copied_inputs: BTreeSet<RelId> = BTreeSet::new();
    let mut negations = Vec::new();
    let mut aggregates = Vec::new();
    let mut retractions = Vec::new();
    let mut ephemeral = Vec::new();
    let mut not_functional = Vec::new();
    let mut shared_channels = Vec::new();
    for rule in context.protocol_rules().filter(|rule| in_m(rule)) {
        let mut stateful = 0;
        for (_, atom) in rule.atoms() {
            let relation = context.relation(atom.rel);
            let of_role = relation.columns.first().map(|c| c.ty) == Some(Type::Role(role_id));
            if atom.negated {
                negations.push(
                    FailedPrecondition::new(
                        "moved-half-negates",
                        format!(
                            "the moved half negates `{}`: it is not monotonic",
                            relation.name
                        ),
                        atom.span,
                        "move only rules without `notin`, or keep this relation at the role",
                    )
                    .with_label(rule.span, "in this moved rule"),
                );
            }
            if of_role && relation.persistence == Persistence::Channel && !moved.contains(&atom.rel)
            {
                shared_channels.push(FailedPrecondition::new(
                    "channel-shared",
                    format!("`{}` is read by rules of both halves: each message would have to reach both nodes", relation.name),
                    atom.span,
                    format!("move every rule that reads `{}` (their heads), or none", relation.name),
                ).with_label(rule.span, "in this moved rule"));
            }
            if relation.input && relation.persistence == Persistence::Table {
                copied_inputs.insert(atom.rel);
                continue;
            }
            if relation.input {
                stateful += 1;
                copied_inputs.insert(atom.rel);
                continue;
            }
            if !moved.contains(&atom.rel) {
                stateful += 1;
                if of_role && relation.persistence != Persistence::Channel {
                    forwarded.insert(atom.rel);
                    if !relation.is_persisted() {
                        ephemeral.push(FailedPrecondition::new(
                            "moved-half-reads-ephemeral",
                            format!("the moved half reads `{}`, which holds for one tick only: forwarded, it would arrive a tick late and miss its partners", relation.name),
                            atom.span,
                            format!("make `{}` a table, or move it too", relation.name),
                        ).with_label(rule.span, "in this moved rule"));
                    }
                }
            } else {
                stateful += 1;
            }
        }
        if let Some(aggregate) = &rule.head.aggregate {
            aggregates.push(FailedPrecondition::new(
                "moved-half-aggregates",
                format!(
                    "the moved half aggregates (`{}`): it is not monotonic",
                    aggregate.func.name()
                ),
                aggregate.span,
                "keep aggregates at the role",
            ));
        }
        if rule.kind == RuleKind::Delete {
            retractions.push(FailedPrecondition::new(
                "moved-half-retracts",
                "the moved half retracts facts: it is not monotonic",
                rule.head.span,
                "keep `delete` rules at the role",
            ));
        }
        if stateful > 1 {
            not_functional.push(FailedPrecondition::new(
                "moved-half-not-functional",
                format!("this moved rule reads {stateful} relations that are not read-only inputs: it is not a per-fact map"),
                rule.span,
                "move rules that read one relation each, or make the moved half monotonic",
            ));
        }
    }
    if !shared_channels.is_empty() || !spec_split.is_empty() {
        let mut all = shared_channels;
        all.extend(stayer_reads_moved);
        all.extend(spec_split);
        return Err(refuse(all));
    }
    copied_inputs.extend(spec_inputs);
    // Case analysis.
    let m_reads_k = !forwarded.is_empty();
    let case = if stayer_reads_moved.is_empty() && !m_reads_k {
        Case::MutuallyIndependent
    } else if stayer_reads_moved.is_empty()
        && negations.is_empty()
        && aggregates.is_empty()
        && retractions.is_empty()
        && ephemeral.is_empty()
    {
        Case::Monotonic
    } else if stayer_reads_moved.is_empty()
        && negations.is_empty()
        && aggregates.is_empty()
        && retractions.is_empty()
        && not_functional.is_empty()
    {
        Case::Functional
    } else {
        let mut all = stayer_reads_moved;
        all.extend(negations);
        all.extend(aggregates);
        all.extend(retractions);
        if m_reads_k {
            all.extend(ephemeral);
            all.extend(not_functional);
        }
        return Err(refuse(all));
    };
    let names = |set: &BTreeSet<RelId>| -> Vec<String> {
        set.iter()
            .map(|r| context.relation(*r).name.clone())
            .collect()
    };
    let mut preconditions = vec![discharged(
        "stayer-independent",
        format!(
            "no rule that stays at `{role}` reads {}",
            names(&moved).join(", ")
        ),
    )];
    match case {
        Case::MutuallyIndependent => preconditions.push(discharged(
            "moved-independent",
            format!("the moved rules read no relation derived at `{role}`; read-only inputs copied: {}", if copied_inputs.is_empty() { "none".to_owned() } else { names(&copied_inputs).join(", ") }),
        )),
        Case::Monotonic => preconditions.push(discharged(
            "moved-half-monotonic",
            format!("the moved rules have no negation, aggregation or retraction and read persisted state forwarded from `{role}`: {}", names(&forwarded).join(", ")),
        )),
        Case::Functional => preconditions.push(discharged(
            "moved-half-functional",
            format!("every moved rule reads at most one relation besides read-only inputs, with no negation or aggregation; forwarded: {}", names(&forwarded).join(", ")),
        )),
    }
    if !spec_types.is_empty() {
        preconditions.push(discharged(
            "specification-follows",
            format!(
                "the specification rules for {} read only the moved half (and read-only inputs): they run at the `{to}` nodes",
                spec_types.keys().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    Ok(DecouplePlan {
        role: role.to_owned(),
        to: to.to_owned(),
        placement,
        case,
        moved: moved
            .iter()
            .map(|r| context.relation(*r).name.clone())
            .collect(),
        moved_rules,
        forwarded: forwarded
            .iter()
            .map(|r| context.relation(*r).name.clone())
            .collect(),
        copied_inputs: copied_inputs
            .iter()
            .map(|r| context.relation(*r).name.clone())
            .collect(),
        spec_rules,
        spec_types,
        preconditions,
    })
}

fn new_node(node: &str, to: &str) -> String {
    format!("{node}/{to}")
}

pub(super) fn apply(plan: &DecouplePlan, draft: &mut Draft, files: &mut [FactsFile]) -> Outcome {
    let role = plan.role.clone();
    let to = plan.to.clone();
    let at_rel = draft.fresh_relation(&format!("{to}_at"));
    let self_rel = draft.fresh_relation(&format!("{to}_self"));
    draft.roles.push(to.clone());
    // Copies of read-only inputs for the new role, and forwarded copies of K's relations.
    let mut renamed: BTreeMap<String, String> = BTreeMap::new();
    let mut added = Vec::new();
    let mut new_relations = Vec::new();
    for name in plan.copied_inputs.iter().chain(&plan.forwarded) {
        let Some(relation) = draft.relation(name).cloned() else {
            continue;
        };
        let copy = draft.fresh_relation(&format!("{name}_{to}"));
        let forwarded = plan.forwarded.contains(name);
        let mut columns = relation.columns.clone();
        if let Some(first) = columns.first_mut() {
            first.ty = to.clone();
        }
        new_relations.push(DRelation {
            name: copy.clone(),
            input: !forwarded,
            output: false,
            persistence: if forwarded && plan.case == Case::Monotonic {
                Persistence::Table
            } else if forwarded {
                Persistence::Channel
            } else {
                relation.persistence
            },
            columns,
            key: relation.key.clone(),
            declared: true,
            note: Some(if forwarded {
                format!("decouple({role}): `{name}` forwarded from `{role}` to `{to}`")
            } else {
                format!("decouple({role}): a copy of the input `{name}` at `{to}`")
            }),
        });
        renamed.insert(name.clone(), copy.clone());
        added.push(copy);
    }
    for relation in &mut draft.relations {
        if plan.moved.contains(&relation.name)
            && let Some(first) = relation.columns.first_mut()
        {
            first.ty = to.clone();
        }
        if let Some(ty) = plan.spec_types.get(&relation.name)
            && let Some(first) = relation.columns.first_mut()
        {
            first.ty.clone_from(ty);
        }
    }
    let column = |name: &str, ty: &str| DColumn {
        name: name.to_owned(),
        ty: ty.to_owned(),
    };
    new_relations.push(DRelation {
        name: at_rel.clone(),
        input: true,
        output: false,
        persistence: Persistence::Table,
        columns: vec![
            column("at", "node"),
            column("orig", &role),
            column("moved", &to),
        ],
        key: None,
        declared: true,
        note: Some(format!(
            "decouple({role}): generated topology; the `{to}` node that took over part of `orig`"
        )),
    });
    new_relations.push(DRelation {
        name: self_rel.clone(),
        input: true,
        output: false,
        persistence: Persistence::Table,
        columns: vec![column("at", &to), column("orig", &role)],
        key: None,
        declared: true,
        note: Some(format!(
            "decouple({role}): generated topology; the node a `{to}` node serves"
        )),
    });
    added.push(at_rel.clone());
    added.push(self_rel.clone());
    let position = draft.relations.len();
    for (offset, relation) in new_relations.into_iter().enumerate() {
        draft.relations.insert(position + offset, relation);
    }
    let location_type = |draft: &Draft, rule: &DRule| -> Option<String> {
        let first = rule.atoms().next()?;
        draft
            .relation(&first.rel)
            .map(|r| r.location_type().to_owned())
    };
    let mut sender_types: BTreeSet<String> = BTreeSet::new();
    let rules = std::mem::take(&mut draft.rules);
    let mut new_rules = Vec::new();
    for (index, mut rule) in rules.into_iter().enumerate() {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let body_type = location_type(draft, &rule);
        if plan.moved_rules.contains(&index) {
            // M's rules read the copies, and their original address through NEWROLE_self.
            for literal in &mut rule.body {
                if let DLiteral::Atom(atom) = literal
                    && let Some(copy) = renamed.get(&atom.rel)
                {
                    atom.rel = copy.clone();
                }
            }
            if let Some(location) = rule.location().map(str::to_owned) {
                let keep_head = rule.kind != RuleKind::Async;
                let original = rule.fresh_var(&format!("{location}0"));
                let mut uses = false;
                replace_location(&mut rule, &location, &original, keep_head, &mut uses);
                if uses {
                    rule.body.push(DLiteral::atom(
                        &self_rel,
                        vec![DTerm::var(&location), DTerm::var(&original)],
                    ));
                }
            }
            rule.note = Some(format!("decouple({role}): moved to `{to}`"));
        }
        if plan.spec_rules.contains(&index) {
            // Specification rules over the moved half run at the new nodes too.
            for literal in &mut rule.body {
                if let DLiteral::Atom(atom) = literal
                    && let Some(copy) = renamed.get(&atom.rel)
                    && plan.copied_inputs.contains(&atom.rel)
                {
                    atom.rel = copy.clone();
                }
            }
            same_fault_domain(&mut rule, &self_rel);
        }
        // Messages into M are readdressed to the new nodes.
        let into_moved = rule.kind == RuleKind::Async && plan.moved.contains(&rule.head_rel);
        if into_moved {
            let sender = rule
                .location()
                .map_or_else(|| "S".to_owned(), str::to_owned);
            let target = rule.fresh_var("Moved");
            let destination = match rule.head_args.first() {
                Some(DHeadArg::Term(term)) => term.clone(),
                _ => DTerm::var("D"),
            };
            rule.body.push(DLiteral::atom(
                &at_rel,
                vec![DTerm::var(&sender), destination, DTerm::var(&target)],
            ));
            if let Some(DHeadArg::Term(head)) = rule.head_args.first_mut() {
                *head = DTerm::var(&target);
            }
            if let Some(t) = &body_type {
                sender_types.insert(t.clone());
            }
            let note = format!("decouple({role}): readdressed to `{to}`");
            rule.note = Some(match rule.note.take() {
                Some(existing) => format!("{existing}; {note}"),
                None => note,
            });
        }
        new_rules.push(rule);
    }
    // K forwards what M reads.
    for name in &plan.forwarded {
        let (Some(relation), Some(copy)) = (draft.relation(name).cloned(), renamed.get(name))
        else {
            continue;
        };
        let vars: Vec<DTerm> = (0..relation.columns.len())
            .map(|i| {
                DTerm::Var(if i == 0 {
                    "X".to_owned()
                } else {
                    format!("C{i}")
                })
            })
            .collect();
        let mut head: Vec<DHeadArg> = vars.iter().cloned().map(DHeadArg::Term).collect();
        head[0] = DHeadArg::Term(DTerm::var("Moved"));
        new_rules.push(DRule {
            kind: RuleKind::Async,
            head_rel: copy.clone(),
            head_args: head,
            body: vec![
                DLiteral::atom(name, vars.clone()),
                DLiteral::atom(
                    &at_rel,
                    vec![DTerm::var("X"), DTerm::var("X"), DTerm::var("Moved")],
                ),
            ],
            origin: None,
            note: Some(format!("decouple({role}): forward `{name}` to `{to}`")),
        });
        sender_types.insert(role.clone());
    }
    draft.rules = new_rules;
    // Invariants speak of the original nodes: a moved atom whose location is also used as a
    // value (or by an atom that stays) is read at the new node that serves it.
    for never in &mut draft.nevers {
        readdress_never(never, &plan.moved, &self_rel, &to);
    }
    // Facts: moved relations' facts go to the new nodes; copied inputs are duplicated.
    let role_nodes = topology::nodes_of(draft, files, &role);
    let all_nodes = topology::all_nodes(draft, files);
    let mut nodes = BTreeMap::new();
    for node in &role_nodes {
        nodes.insert(new_node(node, &to), node.clone());
    }
    let relocate = |facts: &mut Vec<crate::DFact>| {
        let mut out = Vec::new();
        for fact in facts.drain(..) {
            let location = fact
                .values
                .first()
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let Some(location) = location {
                if plan.moved.contains(&fact.rel) {
                    let mut values = fact.values.clone();
                    values[0] = Value::str(&new_node(&location, &to));
                    out.push(crate::DFact { values, ..fact });
                    continue;
                }
                if let Some(copy) = renamed
                    .get(&fact.rel)
                    .filter(|_| plan.copied_inputs.contains(&fact.rel))
                {
                    let mut values = fact.values.clone();
                    values[0] = Value::str(&new_node(&location, &to));
                    out.push(crate::DFact {
                        rel: copy.clone(),
                        values,
                        tick: fact.tick,
                    });
                }
            }
            out.push(fact);
        }
        *facts = out;
    };
    relocate(&mut draft.facts);
    for file in files.iter_mut() {
        relocate(&mut file.facts);
        // Facts an earlier pass generated (a partition's `R_self`, say) are inputs like any
        // other: a moved rule that reads one reads its copy at the new node.
        relocate(&mut file.generated);
    }
    let mut senders: BTreeSet<String> = BTreeSet::new();
    for sender_type in &sender_types {
        if sender_type == "node" {
            senders.extend(all_nodes.iter().cloned());
        } else {
            senders.extend(topology::nodes_of(draft, files, sender_type));
        }
    }
    let mut generated = Vec::new();
    for sender in &senders {
        for node in &role_nodes {
            generated.push(crate::DFact {
                rel: at_rel.clone(),
                values: vec![
                    Value::str(sender),
                    Value::str(node),
                    Value::str(&new_node(node, &to)),
                ],
                tick: 1,
            });
        }
    }
    for (new, old) in &nodes {
        generated.push(crate::DFact {
            rel: self_rel.clone(),
            values: vec![Value::str(new), Value::str(old)],
            tick: 1,
        });
    }
    match files.iter_mut().find(|file| !file.is_workload()) {
        Some(file) => file.generated.extend(generated),
        None => match files.first_mut() {
            Some(file) => file.generated.extend(generated),
            None => draft.facts.extend(generated),
        },
    }
    let mut relations: Vec<NameMap> = plan
        .moved
        .iter()
        .map(|name| NameMap {
            old: name.clone(),
            new: vec![name.clone()],
            how: format!("moved from `{role}` to `{to}`"),
        })
        .collect();
    for (old, copy) in &renamed {
        relations.push(NameMap {
            old: old.clone(),
            new: vec![old.clone(), copy.clone()],
            how: if plan.forwarded.contains(old) {
                format!("forwarded to `{to}`")
            } else {
                format!("input copied to `{to}`")
            },
        });
    }
    let comparison = match plan.case {
        Case::MutuallyIndependent => Comparison::PerTick,
        Case::Monotonic | Case::Functional => Comparison::Eventual,
    };
    Outcome {
        case: Some(plan.case.as_str().to_owned()),
        roles: vec![NameMap {
            old: role.clone(),
            new: vec![role.clone(), to.clone()],
            how: format!(
                "{} moved to `{to}` ({} nodes X/{to})",
                plan.moved.iter().cloned().collect::<Vec<_>>().join(", "),
                plan.placement.as_str()
            ),
        }],
        relations,
        constants: Vec::new(),
        added,
        nodes,
        comparison,
        assumptions: Vec::new(),
    }
}

/// Replaces `from` by `to` everywhere except body atoms' locations (and the head's location
/// when `keep_head`); `uses` says whether anything was replaced.
fn replace_location(rule: &mut DRule, from: &str, to: &str, keep_head: bool, uses: &mut bool) {
    fn term(t: &mut DTerm, from: &str, to: &str, uses: &mut bool) {
        match t {
            DTerm::Var(name) if name == from => {
                *name = to.to_owned();
                *uses = true;
            }
            DTerm::Arith(_, lhs, rhs) => {
                term(lhs, from, to, uses);
                term(rhs, from, to, uses);
            }
            _ => {}
        }
    }
    for (index, arg) in rule.head_args.iter_mut().enumerate() {
        if index == 0 && keep_head {
            continue;
        }
        if let DHeadArg::Term(t) = arg {
            term(t, from, to, uses);
        }
    }
    for literal in &mut rule.body {
        match literal {
            DLiteral::Atom(atom) => atom
                .args
                .iter_mut()
                .skip(1)
                .for_each(|a| term(a, from, to, uses)),
            DLiteral::Compare(_, lhs, rhs) => {
                term(lhs, from, to, uses);
                term(rhs, from, to, uses);
            }
        }
    }
}

/// Rewrites an invariant so that it still speaks of the original nodes once the relations in
/// `moved` live at the new nodes `X/to`: every location variable `X` of a moved atom that the
/// invariant also uses elsewhere (as a value, or as the location of an atom that did not
/// move) is replaced, in the moved atoms, by a fresh variable bound through
/// `self_rel(Fresh, X)` (one new node per original node, so one fresh variable per `X`).
/// Constant locations of moved atoms become the new node's name.
fn readdress_never(never: &mut Vec<DLiteral>, moved: &BTreeSet<String>, self_rel: &str, to: &str) {
    let mut locations: Vec<String> = Vec::new();
    for literal in never.iter_mut() {
        if let DLiteral::Atom(atom) = literal
            && moved.contains(&atom.rel)
        {
            match atom.args.first_mut() {
                Some(DTerm::Var(name)) if !locations.contains(name) => {
                    locations.push(name.clone());
                }
                Some(DTerm::Const(Value::Str(node))) => {
                    let renamed = new_node(node, to);
                    *node = renamed.into();
                }
                _ => {}
            }
        }
    }
    let mut used: BTreeSet<String> = BTreeSet::new();
    for literal in never.iter() {
        literal_vars(literal, &mut |name| {
            used.insert(name.to_owned());
        });
    }
    for location in locations {
        let mut elsewhere = false;
        for literal in never.iter() {
            match literal {
                DLiteral::Atom(atom) => {
                    let skip = usize::from(moved.contains(&atom.rel));
                    for term in atom.args.iter().skip(skip) {
                        term.for_each_var(&mut |name| elsewhere |= name == location);
                    }
                }
                DLiteral::Compare(_, lhs, rhs) => {
                    lhs.for_each_var(&mut |name| elsewhere |= name == location);
                    rhs.for_each_var(&mut |name| elsewhere |= name == location);
                }
            }
        }
        if !elsewhere {
            continue;
        }
        let fresh = fresh_name(&used, &format!("{location}_{to}"));
        used.insert(fresh.clone());
        for literal in never.iter_mut() {
            if let DLiteral::Atom(atom) = literal
                && moved.contains(&atom.rel)
                && let Some(first) = atom.args.first_mut()
                && first.as_var() == Some(location.as_str())
            {
                *first = DTerm::var(&fresh);
            }
        }
        let position = never
            .iter()
            .rposition(|literal| {
                literal.as_atom().is_some_and(|atom| {
                    !atom.negated && atom.args.first().and_then(DTerm::as_var) == Some(&fresh)
                })
            })
            .map_or(0, |p| p + 1);
        never.insert(
            position,
            DLiteral::atom(self_rel, vec![DTerm::var(&fresh), DTerm::var(&location)]),
        );
    }
}

/// Calls `visit` on every variable of a literal.
pub(super) fn literal_vars(literal: &DLiteral, visit: &mut impl FnMut(&str)) {
    match literal {
        DLiteral::Atom(atom) => atom.args.iter().for_each(|t| t.for_each_var(visit)),
        DLiteral::Compare(_, lhs, rhs) => {
            lhs.for_each_var(visit);
            rhs.for_each_var(visit);
        }
    }
}

/// `base`, or `base2`, `base3`, ... whichever `used` does not hold; upper-cased first letter.
pub(super) fn fresh_name(used: &BTreeSet<String>, base: &str) -> String {
    let mut chars = base.chars();
    let base = match chars.next() {
        Some(first) => format!("{}{}", first.to_ascii_uppercase(), chars.as_str()),
        None => "X".to_owned(),
    };
    let base: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !used.contains(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}{n}"))
        .find(|candidate| !used.contains(candidate))
        .unwrap_or(base)
}

/// A specification rule that moved to the new node `X/to` and excludes its own node's crash
/// (`notin crash(O, X, T)`) also excludes the crash of the original node `X0` it was split
/// from: both nodes replace one original node, so they form one fault domain (Chu et al.:
/// a partial failure of a split node is a failure of the original node). The rule gets
/// `self_rel(X, X0), notin crash(O, X0, T)`.
fn same_fault_domain(rule: &mut DRule, self_rel: &str) {
    let Some(location) = rule.location().map(str::to_owned) else {
        return;
    };
    let crashes: Vec<crate::draft::DAtom> = rule
        .atoms()
        .filter(|atom| {
            atom.negated
                && atom.rel == "crash"
                && atom.args.get(1).and_then(DTerm::as_var) == Some(location.as_str())
        })
        .cloned()
        .collect();
    if crashes.is_empty() {
        return;
    }
    let original = rule.fresh_var(&format!("{location}0"));
    rule.body.push(DLiteral::atom(
        self_rel,
        vec![DTerm::var(&location), DTerm::var(&original)],
    ));
    for mut atom in crashes {
        atom.args[1] = DTerm::var(&original);
        rule.body.push(DLiteral::Atom(atom));
    }
    let note = "decouple: the node this one was split from is in its fault domain".to_owned();
    rule.note = Some(match rule.note.take() {
        Some(existing) => format!("{existing}; {note}"),
        None => note,
    });
}
