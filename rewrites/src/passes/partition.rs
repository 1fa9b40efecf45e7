//! `partition`: run every node of a role as `n` partitions.
//!
//! Correctness (Chu et al., partitioning with co-hashing / with dependencies / partial): each
//! relation of the role gets one distribution key — the column named by `by`, or a column
//! that inherits the key through the rules that derive the relation (the head column that
//! holds the body's key variable: a functional dependency carried by a shared variable), or
//! none (replicated). Every rule of the role must then be local to a partition: all keyed
//! positive atoms share one key variable (joins), keyed negated atoms use it (anti-joins),
//! aggregates group by it, and keyed heads hold it. Then every fact in a proof tree lives on
//! one partition, and each partition derives exactly the original node's facts for its keys,
//! at the same ticks. Replicated relations hold the same facts on every partition: read-only
//! inputs are copied; with `partial=true`, a replicated relation written from a partitioned
//! body by an `@next` rule is written by a broadcast to every partition of the node, which
//! arrives at the next tick, exactly when the `@next` fact would have held. (The paper's
//! coordinator round orders such updates under asynchronous delivery; in graft's synchronous
//! reference semantics fault-free broadcasts arrive together, so the round is not generated.
//! Under message loss partitions may diverge: verification re-checks the invariants.)
//!
//! Cost: each partition handles a 1/n share of the keyed work; messages are the same, except
//! that messages into replicated relations are sent to all n partitions.
//!
//! Transformation: node `X` becomes `X/0` .. `X/n-1`. Senders route a message for `X` to
//! `X/k` with `k = key mod n` through the generated input table `R_route(at, dest, slot,
//! part)`; replicated messages go to every partition via `R_replicas(at, dest, part)`. Rules
//! of the role read their own original address from `R_self(at, orig)`, so that messages
//! carry `X`, not `X/k`. Facts of the role's relations are moved to the partition of their
//! key (or copied to all partitions when replicated).

use std::collections::{BTreeMap, BTreeSet};

use graft_compiler::ir::{self, ArithOp, CompareOp, Persistence, RelId, RuleKind, Type, Value};

use super::{Context, Outcome, discharged};
use crate::draft::{DColumn, DHeadArg, DLiteral, DRelation, DRule, DTerm, Draft};
use crate::justification::{Comparison, Discharged, NameMap};
use crate::refusal::{FailedPrecondition, Refusal};
use crate::spec::PassSpec;
use crate::{FactsFile, topology};

#[derive(Clone, Debug)]
pub(super) struct PartitionPlan {
    role: String,
    n: u32,
    /// Relation name -> key column (None: replicated).
    keys: BTreeMap<String, Option<usize>>,
    /// Rules (by id) at the role whose `@next` heads write replicated state from a
    /// partitioned body: turned into broadcasts.
    broadcasts: BTreeSet<u32>,
    case: String,
    pub(super) preconditions: Vec<Discharged>,
}

/// A problem with a key assignment, and which relations replicating would remove it.
struct Problem {
    failure: FailedPrecondition,
    demote: Vec<RelId>,
}

struct Analysis<'c, 'a> {
    context: &'c Context<'a>,
    role: String,
    partial: bool,
    at_role: BTreeSet<RelId>,
}

impl Analysis<'_, '_> {
    fn name(&self, rel: RelId) -> &str {
        &self.context.relation(rel).name
    }

    /// Rules whose body is at the role (specification rules excluded).
    fn local_rules(&self) -> Vec<&ir::Rule> {
        self.context
            .protocol_rules()
            .filter(|rule| {
                self.context.rule_location_type(rule).as_deref() == Some(self.role.as_str())
            })
            .collect()
    }

    /// The key variables of a rule's positive keyed atoms.
    fn key_vars(
        &self,
        rule: &ir::Rule,
        keys: &BTreeMap<RelId, Option<usize>>,
    ) -> Vec<(ir::VarId, RelId)> {
        let mut vars = Vec::new();
        for (_, atom) in rule.atoms() {
            if atom.negated {
                continue;
            }
            if let Some(Some(column)) = keys.get(&atom.rel)
                && let Some(var) = atom.args.get(*column).and_then(ir::Term::as_var)
            {
                vars.push((var, atom.rel));
            }
        }
        vars
    }

    /// Every locality problem of `keys`; `broadcasts` collects the rules that write
    /// replicated state from a partitioned body by `@next` (allowed with `partial`).
    fn problems(
        &self,
        keys: &BTreeMap<RelId, Option<usize>>,
        broadcasts: &mut BTreeSet<u32>,
    ) -> Vec<Problem> {
        let mut problems = Vec::new();
        broadcasts.clear();
        let by_suggestion = |rel: &str| {
            format!(
                "partition by a column that this rule's atoms share, or pass partial=true to replicate `{rel}` on every partition"
            )
        };
        for rule in self.local_rules() {
            // Keyed atoms whose key column is not a variable.
            for (_, atom) in rule.atoms() {
                if let Some(Some(column)) = keys.get(&atom.rel)
                    && atom.args.get(*column).and_then(ir::Term::as_var).is_none()
                {
                    let name = self.name(atom.rel).to_owned();
                    problems.push(Problem {
                        failure: FailedPrecondition::new(
                            "key-not-variable",
                            format!("`{name}`'s distribution key is not a variable here, so the partition holding the fact is not the rule's"),
                            atom.arg_spans.get(*column).copied().unwrap_or(atom.span),
                            by_suggestion(&name),
                        ).with_label(rule.span, "in this rule"),
                        demote: vec![atom.rel],
                    });
                }
            }
            let vars = self.key_vars(rule, keys);
            let head_key_var = match keys.get(&rule.head.rel) {
                Some(Some(column)) if rule.kind != RuleKind::Async => {
                    rule.head.args.get(*column).and_then(ir::Term::as_var)
                }
                _ => None,
            };
            let distinct: BTreeSet<ir::VarId> = vars.iter().map(|(var, _)| *var).collect();
            let key = head_key_var
                .filter(|var| distinct.contains(var))
                .or_else(|| vars.first().map(|(var, _)| *var));
            if distinct.len() > 1 {
                let key = key.unwrap_or(ir::VarId(0));
                let splitting: Vec<RelId> = vars
                    .iter()
                    .filter(|(var, _)| *var != key)
                    .map(|(_, rel)| *rel)
                    .collect();
                for (index, atom) in rule.atoms() {
                    if splitting.contains(&atom.rel) && !atom.negated {
                        let name = self.name(atom.rel).to_owned();
                        let _ = index;
                        problems.push(Problem {
                            failure: FailedPrecondition::new(
                                "join-splits-partition-key",
                                format!(
                                    "this join matches `{name}` on `{}` but the rule's partition key is `{}`: the facts it joins may live on different partitions",
                                    rule.var_name(vars.iter().find(|(_, r)| *r == atom.rel).map_or(key, |(v, _)| *v)),
                                    rule.var_name(key)
                                ),
                                atom.span,
                                by_suggestion(&name),
                            ).with_label(rule.span, "in this rule"),
                            demote: vec![atom.rel],
                        });
                    }
                }
            }
            for (_, atom) in rule.atoms() {
                if !atom.negated {
                    continue;
                }
                if let Some(Some(column)) = keys.get(&atom.rel) {
                    let var = atom.args.get(*column).and_then(ir::Term::as_var);
                    if key.is_none() || var != key {
                        let name = self.name(atom.rel).to_owned();
                        problems.push(Problem {
                            failure: FailedPrecondition::new(
                                "negation-splits-partition-key",
                                format!("`notin {name}` must see every fact of `{name}`, but they are spread over the partitions"),
                                atom.span,
                                by_suggestion(&name),
                            ).with_label(rule.span, "in this rule"),
                            demote: vec![atom.rel],
                        });
                    }
                }
            }
            if let (Some(aggregate), Some(key)) = (&rule.head.aggregate, key) {
                let grouped =
                    rule.head.args.iter().enumerate().any(|(column, term)| {
                        column != aggregate.column && term.as_var() == Some(key)
                    });
                if !grouped {
                    problems.push(Problem {
                        failure: FailedPrecondition::new(
                            "group-splits-partition-key",
                            format!(
                                "`{}<...>` groups without the partition key `{}`: a group's facts are spread over the partitions",
                                aggregate.func.name(),
                                rule.var_name(key)
                            ),
                            aggregate.span,
                            format!(
                                "group by the key, or pass partial=true to replicate {}",
                                vars.iter().map(|(_, rel)| format!("`{}`", self.name(*rel))).collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>().join(", ")
                            ),
                        ).with_label(rule.span, "in this rule"),
                        demote: vars.iter().map(|(_, rel)| *rel).collect(),
                    });
                }
            }
            // The head, when it stays at the role.
            let head_at_role =
                self.at_role.contains(&rule.head.rel) && rule.kind != RuleKind::Async;
            if !head_at_role {
                continue;
            }
            let head_name = self.name(rule.head.rel).to_owned();
            match keys.get(&rule.head.rel) {
                Some(Some(column)) => {
                    let var = rule.head.args.get(*column).and_then(ir::Term::as_var);
                    if key.is_none() || var != key {
                        problems.push(Problem {
                            failure: FailedPrecondition::new(
                                "head-not-co-located",
                                if key.is_none() {
                                    format!("`{head_name}` is partitioned, but this rule reads only replicated relations: every partition would derive it")
                                } else {
                                    format!("`{head_name}`'s key column does not hold the rule's partition key, so the fact would be derived on the wrong partition")
                                },
                                rule.head.span,
                                format!("pass partial=true to replicate `{head_name}`, or partition by another column"),
                            ),
                            demote: vec![rule.head.rel],
                        });
                    }
                }
                _ => {
                    if key.is_some() {
                        let body: Vec<RelId> = vars.iter().map(|(_, rel)| *rel).collect();
                        match rule.kind {
                            RuleKind::Next if self.partial => {
                                broadcasts.insert(rule.id.0);
                            }
                            RuleKind::Next => problems.push(Problem {
                                failure: FailedPrecondition::new(
                                    "replicated-state-written",
                                    format!("`{head_name}` cannot be partitioned, and this rule updates it from partitioned state"),
                                    rule.head.span,
                                    format!("pass partial=true: `{head_name}` is then replicated and its updates are broadcast to every partition"),
                                ),
                                demote: body,
                            }),
                            _ => problems.push(Problem {
                                failure: FailedPrecondition::new(
                                    "replicated-write-same-tick",
                                    format!("`{head_name}` is replicated, but this rule derives it from partitioned state in the same tick: other partitions cannot see it in time"),
                                    rule.head.span,
                                    format!("partition `{head_name}` by the key, or derive it with `@next`"),
                                ),
                                demote: body,
                            }),
                        }
                    }
                }
            }
        }
        problems
    }
}

pub(super) fn check(
    context: &Context<'_>,
    spec: &PassSpec,
    role: &str,
    by: &str,
    n: u32,
    partial: bool,
) -> Result<PartitionPlan, Refusal> {
    let refuse = |failures| Refusal::new(spec.text(), failures);
    let program = context.program;
    let Some(role_id) = program.role_by_name(role) else {
        return Err(refuse(vec![context.unknown_role(role)]));
    };
    let at_role: BTreeSet<RelId> = program
        .relations
        .iter()
        .filter(|relation| {
            relation.origin != ir::RelationOrigin::Builtin && !context.is_spec(relation.id)
        })
        .filter(|relation| relation.columns.first().map(|c| c.ty) == Some(Type::Role(role_id)))
        .map(|relation| relation.id)
        .collect();
    let analysis = Analysis {
        context,
        role: role.to_owned(),
        partial,
        at_role: at_role.clone(),
    };
    // Aggregate result columns are never keys.
    let aggregate_columns: BTreeSet<(RelId, usize)> = program
        .rules
        .iter()
        .filter_map(|rule| {
            rule.head
                .aggregate
                .as_ref()
                .map(|a| (rule.head.rel, a.column))
        })
        .collect();
    let mut failures = Vec::new();
    let mut keys: BTreeMap<RelId, Option<usize>> = BTreeMap::new();
    let mut evidence: BTreeMap<RelId, String> = BTreeMap::new();
    for rel in &at_role {
        let relation = context.relation(*rel);
        let column = relation
            .columns
            .iter()
            .position(|column| column.name == by)
            .filter(|column| *column > 0 && !aggregate_columns.contains(&(*rel, *column)));
        if let Some(column) = column {
            if relation.columns[column].ty != Type::Int {
                failures.push(FailedPrecondition::new(
                    "key-not-int",
                    format!("column `{by}` of `{}` is a `{}`; senders route by the key modulo n, which needs an int", relation.name, program.type_name(relation.columns[column].ty)),
                    relation.columns[column].ty_span.unwrap_or(relation.span),
                    "partition by an int column",
                ));
            }
            keys.insert(*rel, Some(column));
            evidence.insert(*rel, format!("column `{by}` (named by `by`)"));
        } else {
            keys.insert(*rel, None);
        }
    }
    if !keys.values().any(Option::is_some) {
        let names: Vec<&str> = at_role
            .iter()
            .map(|rel| context.relation(*rel).name.as_str())
            .collect();
        return Err(refuse(vec![FailedPrecondition::new(
            "key-column-missing",
            format!("no relation of role `{role}` has a column `{by}`"),
            program.roles[role_id.index()].span,
            format!(
                "name a column of {} with `by=`",
                if names.is_empty() {
                    "the role's relations".to_owned()
                } else {
                    names.join(", ")
                }
            ),
        )]));
    }
    if !failures.is_empty() {
        return Err(refuse(failures));
    }
    // Keys inherited through the rules that derive a relation (dependencies).
    let mut inherited = false;
    loop {
        let mut changed = false;
        for rel in &at_role {
            if keys.get(rel) != Some(&None) || context.relation(*rel).input {
                continue;
            }
            let deriving: Vec<&ir::Rule> = analysis
                .local_rules()
                .into_iter()
                .filter(|rule| rule.head.rel == *rel && rule.kind != RuleKind::Delete)
                .collect();
            if deriving.is_empty() {
                continue;
            }
            let mut column_found: Option<usize> = None;
            let mut consistent = true;
            let mut witness = String::new();
            for rule in &deriving {
                let vars: BTreeSet<ir::VarId> = analysis
                    .key_vars(rule, &keys)
                    .into_iter()
                    .map(|(v, _)| v)
                    .collect();
                let [var] = vars.into_iter().collect::<Vec<_>>()[..] else {
                    consistent = false;
                    break;
                };
                let position = rule
                    .head
                    .args
                    .iter()
                    .enumerate()
                    .position(|(column, term)| {
                        column > 0
                            && term.as_var() == Some(var)
                            && rule
                                .head
                                .aggregate
                                .as_ref()
                                .is_none_or(|a| a.column != column)
                    });
                match (position, column_found) {
                    (Some(p), None) => {
                        column_found = Some(p);
                        witness = format!(
                            "column `{}` holds key variable `{}` in the rule deriving it at {}",
                            context.relation(*rel).columns[p].name,
                            rule.var_name(var),
                            context.checked.location(rule.span)
                        );
                    }
                    (Some(p), Some(q)) if p == q => {}
                    _ => {
                        consistent = false;
                        break;
                    }
                }
            }
            if let (true, Some(column)) = (consistent, column_found) {
                keys.insert(*rel, Some(column));
                evidence.insert(*rel, format!("inherited: {witness}"));
                inherited = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut broadcasts = BTreeSet::new();
    let mut demoted: BTreeSet<RelId> = BTreeSet::new();
    let mut problems = analysis.problems(&keys, &mut broadcasts);
    if partial {
        while !problems.is_empty() {
            let mut progress = false;
            for problem in &problems {
                for rel in &problem.demote {
                    if keys.get(rel).is_some_and(Option::is_some) {
                        keys.insert(*rel, None);
                        demoted.insert(*rel);
                        evidence.insert(
                            *rel,
                            format!(
                                "replicated (partial partitioning): {} [{}]",
                                problem.failure.message, problem.failure.name
                            ),
                        );
                        progress = true;
                    }
                }
            }
            if !progress {
                break;
            }
            problems = analysis.problems(&keys, &mut broadcasts);
        }
    }
    if !problems.is_empty() {
        return Err(refuse(problems.into_iter().map(|p| p.failure).collect()));
    }
    if !keys.values().any(Option::is_some) {
        return Err(refuse(vec![FailedPrecondition::new(
            "nothing-partitioned",
            format!(
                "every relation of `{role}` would have to be replicated: partitioning gains nothing"
            ),
            program.roles[role_id.index()].span,
            "partition by a column that the role's joins, groups and negations share",
        )]));
    }
    let mut preconditions = Vec::new();
    for (rel, key) in &keys {
        let relation = context.relation(*rel);
        let text = match key {
            Some(column) => format!(
                "`{}` partitioned on `{}`: {}",
                relation.name,
                relation.columns[*column].name,
                evidence.get(rel).cloned().unwrap_or_default()
            ),
            None if demoted.contains(rel) => format!(
                "`{}` {}",
                relation.name,
                evidence.get(rel).cloned().unwrap_or_default()
            ),
            None if relation.input => format!(
                "`{}` replicated: a read-only input without the key, copied to every partition",
                relation.name
            ),
            None => format!(
                "`{}` replicated: it has no key column and every rule deriving it reads only replicated relations",
                relation.name
            ),
        };
        preconditions.push(discharged("distribution-key", text));
    }
    preconditions.push(discharged(
        "rules-local",
        format!(
            "every join, negation and group-by of the {} rule(s) at `{role}` is on the partition key or over replicated relations",
            analysis.local_rules().len()
        ),
    ));
    for rule in &broadcasts {
        let rule = program.rule(ir::RuleId(*rule));
        preconditions.push(discharged(
            "replicated-update",
            format!(
                "the `@next` update of `{}` at {} is broadcast to every partition; it arrives at the next tick, when the original update holds",
                context.relation(rule.head.rel).name,
                context.checked.location(rule.span)
            ),
        ));
    }
    let case = if !demoted.is_empty() || !broadcasts.is_empty() {
        "partial"
    } else if inherited {
        "dependencies"
    } else {
        "co-hashing"
    };
    Ok(PartitionPlan {
        role: role.to_owned(),
        n,
        keys: keys
            .into_iter()
            .map(|(rel, key)| (context.relation(rel).name.clone(), key))
            .collect(),
        broadcasts,
        case: case.to_owned(),
        preconditions,
    })
}

/// `k = ((v mod n) + n) mod n`, as routing computes it.
fn partition_of(value: &Value, n: u32) -> u32 {
    let n = i64::from(n);
    let v = value.as_int().unwrap_or(0);
    u32::try_from(((v % n) + n) % n).unwrap_or(0)
}

fn partition_node(node: &str, k: u32) -> String {
    format!("{node}/{k}")
}

/// Replaces the body location variable `from` by `to` everywhere except body atoms'
/// locations and (when `keep_head_location`) the head's location.
fn substitute_location(rule: &mut DRule, from: &str, to: &str, keep_head_location: bool) {
    fn term(t: &mut DTerm, from: &str, to: &str) {
        match t {
            DTerm::Var(name) if name == from => *name = to.to_owned(),
            DTerm::Arith(_, lhs, rhs) => {
                term(lhs, from, to);
                term(rhs, from, to);
            }
            _ => {}
        }
    }
    for (index, arg) in rule.head_args.iter_mut().enumerate() {
        if index == 0 && keep_head_location {
            continue;
        }
        if let DHeadArg::Term(t) = arg {
            term(t, from, to);
        }
    }
    for literal in &mut rule.body {
        match literal {
            DLiteral::Atom(atom) => {
                for arg in atom.args.iter_mut().skip(1) {
                    term(arg, from, to);
                }
            }
            DLiteral::Compare(_, lhs, rhs) => {
                term(lhs, from, to);
                term(rhs, from, to);
            }
        }
    }
}

fn uses_var_beyond_location(rule: &DRule, var: &str, keep_head_location: bool) -> bool {
    let mut found = false;
    let mut check = |name: &str| found |= name == var;
    for (index, arg) in rule.head_args.iter().enumerate() {
        if index == 0 && keep_head_location {
            continue;
        }
        if let DHeadArg::Term(t) = arg {
            t.for_each_var(&mut check);
        }
    }
    for literal in &rule.body {
        match literal {
            DLiteral::Atom(atom) => atom
                .args
                .iter()
                .skip(1)
                .for_each(|t| t.for_each_var(&mut check)),
            DLiteral::Compare(_, lhs, rhs) => {
                lhs.for_each_var(&mut check);
                rhs.for_each_var(&mut check);
            }
        }
    }
    found
}

pub(super) fn apply(plan: &PartitionPlan, draft: &mut Draft, files: &mut [FactsFile]) -> Outcome {
    let role = plan.role.clone();
    let n = plan.n;
    let self_rel = draft.fresh_relation(&format!("{role}_self"));
    let at_role: BTreeSet<String> = draft
        .relations
        .iter()
        .filter(|r| plan.keys.contains_key(&r.name))
        .map(|r| r.name.clone())
        .collect();
    let location_type = |draft: &Draft, rule: &DRule| -> Option<String> {
        let first = rule.atoms().next()?;
        draft
            .relation(&first.rel)
            .map(|r| r.location_type().to_owned())
    };
    // Which sender types route (keyed) or broadcast (replicated): one table per type, typed
    // by it, so that a table's location column has one role.
    let mut route_types: BTreeSet<String> = BTreeSet::new();
    let mut replica_types: BTreeSet<String> = BTreeSet::new();
    for (index, rule) in draft.rules.iter().enumerate() {
        let Some(body_type) = location_type(draft, rule) else {
            continue;
        };
        if plan
            .broadcasts
            .contains(&u32::try_from(index).unwrap_or(u32::MAX))
        {
            replica_types.insert(body_type);
        } else if rule.kind == RuleKind::Async && at_role.contains(&rule.head_rel) {
            match plan.keys.get(&rule.head_rel).copied().flatten() {
                Some(_) => route_types.insert(body_type),
                None => replica_types.insert(body_type),
            };
        }
    }
    let table_name = |draft: &Draft, base: &str, types: &BTreeSet<String>, ty: &str| {
        if types.len() <= 1 {
            draft.fresh_relation(&format!("{role}_{base}"))
        } else {
            draft.fresh_relation(&format!("{role}_{base}_from_{ty}"))
        }
    };
    let routes: BTreeMap<String, String> = route_types
        .iter()
        .map(|t| (t.clone(), table_name(draft, "route", &route_types, t)))
        .collect();
    let replica_tables: BTreeMap<String, String> = replica_types
        .iter()
        .map(|t| (t.clone(), table_name(draft, "replicas", &replica_types, t)))
        .collect();
    let mut used_self = false;
    let spec_heads: BTreeSet<String> = draft
        .relations
        .iter()
        .filter(|r| !r.declared || r.name == "pre" || r.name == "post")
        .map(|r| r.name.clone())
        .collect();
    let _ = spec_heads;
    let rules = std::mem::take(&mut draft.rules);
    let mut new_rules = Vec::with_capacity(rules.len());
    for (index, mut rule) in rules.into_iter().enumerate() {
        let body_type = location_type(draft, &rule);
        let is_local = body_type.as_deref() == Some(role.as_str())
            && (at_role.contains(&rule.head_rel) || rule.kind == RuleKind::Async);
        let broadcast = plan
            .broadcasts
            .contains(&u32::try_from(index).unwrap_or(u32::MAX));
        let location = rule.location().map(str::to_owned);
        let mut notes: Vec<String> = Vec::new();
        // Rules at the role see their original address through R_self.
        let mut original = None;
        if is_local && let Some(location) = &location {
            let keep_head = rule.kind != RuleKind::Async && !broadcast;
            let needs_self = uses_var_beyond_location(&rule, location, keep_head) || broadcast;
            if needs_self {
                let original_var = rule.fresh_var(&format!("{location}0"));
                substitute_location(&mut rule, location, &original_var, keep_head);
                rule.body.push(DLiteral::atom(
                    &self_rel,
                    vec![DTerm::var(location), DTerm::var(&original_var)],
                ));
                used_self = true;
                notes.push(format!(
                    "partition({role}): `{original_var}` is this partition's original node"
                ));
                original = Some(original_var);
            }
        }
        if broadcast && let Some(location) = &location {
            let target = rule.fresh_var("Part");
            let original_var = original.clone().unwrap_or_else(|| location.clone());
            rule.kind = RuleKind::Async;
            if let Some(DHeadArg::Term(head_location)) = rule.head_args.first_mut() {
                *head_location = DTerm::var(&target);
            }
            let replicas = body_type
                .as_ref()
                .and_then(|t| replica_tables.get(t))
                .cloned()
                .unwrap_or_default();
            rule.body.push(DLiteral::atom(
                &replicas,
                vec![
                    DTerm::var(location),
                    DTerm::var(&original_var),
                    DTerm::var(&target),
                ],
            ));
            notes.push(format!(
                "partition({role}): replicated update, broadcast to every partition (was `@next`)"
            ));
        } else if rule.kind == RuleKind::Async && at_role.contains(&rule.head_rel) {
            // A sender: route the message to the partition of its key.
            let sender = location.clone().unwrap_or_else(|| "S".to_owned());
            let destination = match rule.head_args.first() {
                Some(DHeadArg::Term(term)) => term.clone(),
                _ => DTerm::var("D"),
            };
            let target = rule.fresh_var("Part");
            match plan.keys.get(&rule.head_rel).copied().flatten() {
                Some(column) => {
                    let key_term = match rule.head_args.get(column) {
                        Some(DHeadArg::Term(term)) => term.clone(),
                        _ => DTerm::Const(Value::Int(0)),
                    };
                    let slot = rule.fresh_var("Slot");
                    let modulo = DTerm::Arith(
                        ArithOp::Sub,
                        Box::new(key_term.clone()),
                        Box::new(DTerm::Arith(
                            ArithOp::Mul,
                            Box::new(DTerm::Arith(
                                ArithOp::Div,
                                Box::new(key_term),
                                Box::new(DTerm::Const(Value::Int(i64::from(n)))),
                            )),
                            Box::new(DTerm::Const(Value::Int(i64::from(n)))),
                        )),
                    );
                    let route = body_type
                        .as_ref()
                        .and_then(|t| routes.get(t))
                        .cloned()
                        .unwrap_or_default();
                    rule.body.push(DLiteral::atom(
                        &route,
                        vec![
                            DTerm::var(&sender),
                            destination,
                            DTerm::var(&slot),
                            DTerm::var(&target),
                        ],
                    ));
                    rule.body
                        .push(DLiteral::Compare(CompareOp::Eq, DTerm::var(&slot), modulo));
                    notes.push(format!(
                        "partition({role}): routed to the partition of its key ({} mod {n})",
                        draft
                            .relation(&rule.head_rel)
                            .and_then(|r| r.columns.get(column))
                            .map_or("key", |c| c.name.as_str())
                    ));
                }
                None => {
                    let replicas = body_type
                        .as_ref()
                        .and_then(|t| replica_tables.get(t))
                        .cloned()
                        .unwrap_or_default();
                    rule.body.push(DLiteral::atom(
                        &replicas,
                        vec![DTerm::var(&sender), destination, DTerm::var(&target)],
                    ));
                    notes.push(format!(
                        "partition({role}): sent to every partition (replicated relation)"
                    ));
                }
            }
            if let Some(DHeadArg::Term(head_location)) = rule.head_args.first_mut() {
                *head_location = DTerm::var(&target);
            }
        }
        if !notes.is_empty() {
            rule.note = Some(notes.join("; "));
        }
        new_rules.push(rule);
    }
    draft.rules = new_rules;
    // Generated topology relations.
    let mut added = Vec::new();
    let position = draft
        .relations
        .iter()
        .rposition(|r| r.input)
        .map_or(0, |p| p + 1);
    let mut generated_relations = Vec::new();
    let column = |name: &str, ty: &str| DColumn {
        name: name.to_owned(),
        ty: ty.to_owned(),
    };
    let table = |name: &str, columns: Vec<DColumn>, note: String| DRelation {
        name: name.to_owned(),
        input: true,
        output: false,
        persistence: Persistence::Table,
        columns,
        key: None,
        declared: true,
        note: Some(note),
    };
    for (ty, route) in &routes {
        generated_relations.push(table(route, vec![column("at", ty), column("dest", &role), column("slot", "int"), column("part", &role)], format!("partition({role}): generated topology; a message for `dest` whose key is `slot` mod {n} goes to `part`")));
    }
    for (ty, replicas) in &replica_tables {
        generated_relations.push(table(
            replicas,
            vec![
                column("at", ty),
                column("dest", &role),
                column("part", &role),
            ],
            format!("partition({role}): generated topology; the partitions of `dest`"),
        ));
    }
    if used_self {
        generated_relations.push(table(
            &self_rel,
            vec![column("at", &role), column("orig", &role)],
            format!("partition({role}): generated topology; the node a partition replaces"),
        ));
    }
    for (offset, relation) in generated_relations.into_iter().enumerate() {
        added.push(relation.name.clone());
        draft.relations.insert(position + offset, relation);
    }
    // Nodes.
    let role_nodes = topology::nodes_of(draft, files, &role);
    let all_nodes = topology::all_nodes(draft, files);
    let mut nodes = BTreeMap::new();
    for node in &role_nodes {
        for k in 0..n {
            nodes.insert(partition_node(node, k), node.clone());
        }
    }
    let senders_of = |draft: &Draft, files: &[FactsFile], sender_type: &str| -> BTreeSet<String> {
        let mut senders = BTreeSet::new();
        if sender_type == role {
            senders.extend(nodes.keys().cloned());
        } else if sender_type == "node" {
            senders.extend(
                all_nodes
                    .iter()
                    .filter(|node| !role_nodes.contains(*node))
                    .cloned(),
            );
            senders.extend(nodes.keys().cloned());
        } else {
            senders.extend(topology::nodes_of(draft, files, sender_type));
        }
        senders
    };
    let route_senders: Vec<(String, BTreeSet<String>)> = routes
        .iter()
        .map(|(t, name)| (name.clone(), senders_of(draft, files, t)))
        .collect();
    let replica_senders: Vec<(String, BTreeSet<String>)> = replica_tables
        .iter()
        .map(|(t, name)| (name.clone(), senders_of(draft, files, t)))
        .collect();
    // Facts of the role's relations move to their partitions.
    let relocate = |facts: &mut Vec<crate::DFact>| {
        let mut moved = Vec::new();
        for fact in facts.drain(..) {
            let key = if at_role.contains(&fact.rel) {
                plan.keys.get(&fact.rel).copied()
            } else {
                None
            };
            let location = fact
                .values
                .first()
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            match (key, location) {
                (Some(Some(column)), Some(location)) => {
                    let k = fact
                        .values
                        .get(column)
                        .map_or(0, |value| partition_of(value, n));
                    let mut values = fact.values.clone();
                    values[0] = Value::str(&partition_node(&location, k));
                    moved.push(crate::DFact { values, ..fact });
                }
                (Some(None), Some(location)) => {
                    for k in 0..n {
                        let mut values = fact.values.clone();
                        values[0] = Value::str(&partition_node(&location, k));
                        moved.push(crate::DFact {
                            values,
                            ..fact.clone()
                        });
                    }
                }
                _ => moved.push(fact),
            }
        }
        *facts = moved;
    };
    relocate(&mut draft.facts);
    for file in files.iter_mut() {
        relocate(&mut file.facts);
        relocate(&mut file.generated);
    }
    let mut generated = Vec::new();
    let fact = |rel: &str, values: Vec<Value>| crate::DFact {
        rel: rel.to_owned(),
        values,
        tick: 1,
    };
    let span = i64::from(n) - 1;
    for (route, senders) in &route_senders {
        for sender in senders {
            for node in &role_nodes {
                for slot in -span..=span {
                    let k = partition_of(&Value::Int(slot), n);
                    generated.push(fact(
                        route,
                        vec![
                            Value::str(sender),
                            Value::str(node),
                            Value::Int(slot),
                            Value::str(&partition_node(node, k)),
                        ],
                    ));
                }
            }
        }
    }
    for (replicas, senders) in &replica_senders {
        for sender in senders {
            for node in &role_nodes {
                for k in 0..n {
                    generated.push(fact(
                        replicas,
                        vec![
                            Value::str(sender),
                            Value::str(node),
                            Value::str(&partition_node(node, k)),
                        ],
                    ));
                }
            }
        }
    }
    if used_self {
        for (partition, node) in &nodes {
            generated.push(fact(
                &self_rel,
                vec![Value::str(partition), Value::str(node)],
            ));
        }
    }
    match files.iter_mut().find(|file| !file.is_workload()) {
        Some(file) => file.generated.extend(generated),
        None => match files.first_mut() {
            Some(file) => file.generated.extend(generated),
            None => draft.facts.extend(generated),
        },
    }
    let relations = plan
        .keys
        .iter()
        .map(|(name, key)| NameMap {
            old: name.clone(),
            new: vec![name.clone()],
            how: match key {
                Some(column) => format!(
                    "partitioned on `{}`",
                    draft
                        .relation(name)
                        .and_then(|r| r.columns.get(*column))
                        .map_or("?", |c| c.name.as_str())
                ),
                None => "replicated on every partition".to_owned(),
            },
        })
        .collect();
    Outcome {
        case: Some(plan.case.clone()),
        roles: vec![NameMap {
            old: role.clone(),
            new: vec![role.clone()],
            how: format!("every node X runs as {n} partitions X/0 .. X/{}", n - 1),
        }],
        relations,
        constants: Vec::new(),
        added,
        nodes,
        comparison: Comparison::PerTick,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_of_is_a_non_negative_remainder() {
        assert_eq!(partition_of(&Value::Int(5), 4), 1);
        assert_eq!(partition_of(&Value::Int(-5), 4), 3);
        assert_eq!(partition_of(&Value::Int(0), 2), 0);
    }
}
