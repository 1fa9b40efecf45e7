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
//! inputs are copied.
//!
//! With `partial=true` (the paper's partial partitioning), relations that break locality are
//! replicated, and a replicated relation written from a partitioned body by an `@next` rule
//! is written by a broadcast to every partition of the node. The inputs whose same-tick
//! consequences write replicated state are then *sequenced*: senders send them to the node's
//! coordinator (`X/coordinator`, a new role), which gives each tick's batch the next index and
//! runs a 2PC-like round — vote request, every partition freezes and votes, commit in index
//! order, which delivers the batch to the partitions (replicated inputs to all, keyed ones to
//! their partition) and unfreezes them. Partitions hold every other inbound channel while
//! frozen. So every partition applies the same replicated updates in the same order, and an
//! input waits for the replicated updates that preceded it. Each batch is processed as the
//! original processed that tick's inputs, three ticks later; outputs compare `eventual`.
//!
//! Cost: each partition handles a 1/n share of the keyed work; messages are the same, except
//! that messages into replicated relations are sent to all n partitions, and a sequenced
//! batch costs 3n round messages and three ticks of latency.
//!
//! Transformation: node `X` becomes `X/0` .. `X/n-1`. Senders route a message for `X` to
//! `X/k` with `k = key mod n` through the generated input table `R_route(at, dest, slot,
//! part)`; replicated messages go to every partition via `R_replicas(at, dest, part)`. Rules
//! of the role read their own original address from `R_self(at, orig)`, so that messages
//! carry `X`, not `X/k`. Facts of the role's relations are moved to the partition of their
//! key (or copied to all partitions when replicated). See [`Coordinator`] for the round.

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
    /// Inbound relations (written by messages) that go through the coordinator round:
    /// those whose same-tick consequences write replicated state, and those read together
    /// with them. Empty unless the case is `partial` and replicated state is written.
    sequenced: BTreeSet<String>,
    /// The other inbound channels: buffered by each partition while a round is pending.
    buffered: BTreeSet<String>,
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
    // The round is needed only where partitions hold replicated state that a partitioned
    // input, or a relation demoted for partial partitioning, makes them write.
    let (sequenced, buffered) = if partial && (!demoted.is_empty() || !broadcasts.is_empty()) {
        sequenced_inputs(&analysis, &keys, &broadcasts)
    } else {
        (BTreeSet::new(), BTreeSet::new())
    };
    if !sequenced.is_empty() {
        let names = |rels: &BTreeSet<RelId>| {
            rels.iter()
                .map(|rel| format!("`{}`", context.relation(*rel).name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        preconditions.push(discharged(
            "coordinator-round",
            format!(
                "{} write replicated state (directly or through same-tick rules), or are read together with such inputs: each node's coordinator gives every tick's batch of them one increasing index and commits it to every partition after all partitions voted, in index order, so replicated state is updated in the same order everywhere; {}",
                names(&sequenced),
                if buffered.is_empty() {
                    "no other input reaches the role".to_owned()
                } else {
                    format!(
                        "{} are buffered by a partition while a round it voted in is not committed",
                        names(&buffered)
                    )
                }
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
        sequenced: sequenced
            .iter()
            .map(|rel| context.relation(*rel).name.clone())
            .collect(),
        buffered: buffered
            .iter()
            .map(|rel| context.relation(*rel).name.clone())
            .collect(),
        case: case.to_owned(),
        preconditions,
    })
}

/// Splits the role's inbound relations (heads of `@async` rules) into those that go through
/// the coordinator round and the channels that partitions buffer during a round.
///
/// A rule's *inputs* are the inbound relations it reads, directly or through relations
/// derived from them in the same tick. The inputs of every rule that writes replicated state
/// (an `@next` or `delete` rule with a replicated head, or a broadcast) are sequenced; then,
/// to a fixpoint, so are all inputs of any rule whose inputs include a sequenced one (they
/// were processed in the same tick in the original, so they must be committed together).
/// Inbound relations that are not channels (tables written by messages) are sequenced too:
/// a partition could not hold their insertion back.
fn sequenced_inputs(
    analysis: &Analysis<'_, '_>,
    keys: &BTreeMap<RelId, Option<usize>>,
    broadcasts: &BTreeSet<u32>,
) -> (BTreeSet<RelId>, BTreeSet<RelId>) {
    let context = analysis.context;
    let inbound: BTreeSet<RelId> = context
        .protocol_rules()
        .filter(|rule| rule.kind == RuleKind::Async && analysis.at_role.contains(&rule.head.rel))
        .map(|rule| rule.head.rel)
        .collect();
    let rules = analysis.local_rules();
    // Same-tick sources of every relation at the role.
    let mut sources: BTreeMap<RelId, BTreeSet<RelId>> = BTreeMap::new();
    let inputs_of = |rule: &ir::Rule, sources: &BTreeMap<RelId, BTreeSet<RelId>>| {
        let mut inputs = BTreeSet::new();
        for (_, atom) in rule.atoms() {
            if inbound.contains(&atom.rel) {
                inputs.insert(atom.rel);
            }
            if let Some(from) = sources.get(&atom.rel) {
                inputs.extend(from.iter().copied());
            }
        }
        inputs
    };
    loop {
        let mut changed = false;
        for rule in rules.iter().filter(|rule| rule.kind == RuleKind::Deductive) {
            let inputs = inputs_of(rule, &sources);
            let entry = sources.entry(rule.head.rel).or_default();
            let before = entry.len();
            entry.extend(inputs);
            changed |= entry.len() != before;
        }
        if !changed {
            break;
        }
    }
    let mut sequenced: BTreeSet<RelId> = BTreeSet::new();
    for rule in &rules {
        let replicated_head = analysis.at_role.contains(&rule.head.rel)
            && keys.get(&rule.head.rel) == Some(&None)
            && matches!(rule.kind, RuleKind::Next | RuleKind::Delete);
        if replicated_head || broadcasts.contains(&rule.id.0) {
            sequenced.extend(inputs_of(rule, &sources));
        }
    }
    if sequenced.is_empty() {
        return (BTreeSet::new(), BTreeSet::new());
    }
    sequenced.extend(
        inbound
            .iter()
            .filter(|rel| context.relation(**rel).persistence != Persistence::Channel),
    );
    loop {
        let before = sequenced.len();
        for rule in &rules {
            let inputs = inputs_of(rule, &sources);
            if !inputs.is_disjoint(&sequenced) {
                sequenced.extend(inputs);
            }
        }
        if sequenced.len() == before {
            break;
        }
    }
    let buffered = inbound.difference(&sequenced).copied().collect();
    (sequenced, buffered)
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
    let mut coordinator_types: BTreeSet<String> = BTreeSet::new();
    for (index, rule) in draft.rules.iter().enumerate() {
        let Some(body_type) = location_type(draft, rule) else {
            continue;
        };
        if plan
            .broadcasts
            .contains(&u32::try_from(index).unwrap_or(u32::MAX))
        {
            replica_types.insert(body_type);
        } else if rule.kind == RuleKind::Async && plan.sequenced.contains(&rule.head_rel) {
            coordinator_types.insert(body_type);
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
    let coordinator = (!plan.sequenced.is_empty()).then(|| Coordinator::new(draft, plan));
    let coordinator_tables: BTreeMap<String, String> = coordinator_types
        .iter()
        .map(|t| {
            (
                t.clone(),
                table_name(draft, "coordinator_of", &coordinator_types, t),
            )
        })
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
        } else if let (true, Some(coordinator)) = (
            rule.kind == RuleKind::Async && plan.sequenced.contains(&rule.head_rel),
            &coordinator,
        ) {
            // A sender of a sequenced input: send it to the node's coordinator instead.
            let sender = location.clone().unwrap_or_else(|| "S".to_owned());
            let destination = match rule.head_args.first() {
                Some(DHeadArg::Term(term)) => term.clone(),
                _ => DTerm::var("D"),
            };
            let target = rule.fresh_var("Coord");
            let table = body_type
                .as_ref()
                .and_then(|t| coordinator_tables.get(t))
                .cloned()
                .unwrap_or_default();
            rule.body.push(DLiteral::atom(
                &table,
                vec![DTerm::var(&sender), destination, DTerm::var(&target)],
            ));
            if let Some(DHeadArg::Term(head_location)) = rule.head_args.first_mut() {
                *head_location = DTerm::var(&target);
            }
            let request = coordinator
                .requests
                .get(&rule.head_rel)
                .cloned()
                .unwrap_or_default();
            notes.push(format!(
                "partition({role}): sent to the node's coordinator, which commits it to the partitions in order (`{request}`)"
            ));
            rule.head_rel = request;
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
    let mut round_relations = Vec::new();
    if let Some(coordinator) = &coordinator {
        for (ty, name) in &coordinator_tables {
            generated_relations.push(table(
                name,
                vec![
                    column("at", ty),
                    column("dest", &role),
                    column("coord", &coordinator.role),
                ],
                format!("partition({role}): generated topology; the coordinator of `dest`"),
            ));
        }
        round_relations = coordinator.generate(draft, plan, &mut generated_relations);
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
    added.extend(round_relations);
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
    let coordinator_senders: Vec<(String, BTreeSet<String>)> = coordinator_tables
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
    for (route, sender, node) in per_sender_and_node(&route_senders, &role_nodes) {
        for slot in -span..=span {
            let k = partition_of(&Value::Int(slot), n);
            let destination = Value::str(&partition_node(node, k));
            let values = vec![
                Value::str(sender),
                Value::str(node),
                Value::Int(slot),
                destination,
            ];
            generated.push(fact(route, values));
        }
    }
    for (replicas, sender, node) in per_sender_and_node(&replica_senders, &role_nodes) {
        for k in 0..n {
            let values = vec![
                Value::str(sender),
                Value::str(node),
                Value::str(&partition_node(node, k)),
            ];
            generated.push(fact(replicas, values));
        }
    }
    for (table, sender, node) in per_sender_and_node(&coordinator_senders, &role_nodes) {
        let values = vec![
            Value::str(sender),
            Value::str(node),
            Value::str(&Coordinator::node(node)),
        ];
        generated.push(fact(table, values));
    }
    if let Some(coordinator) = &coordinator {
        generated.extend(coordinator.facts(plan, &role_nodes));
    }
    if used_self {
        for (partition, node) in &nodes {
            generated.push(fact(
                &self_rel,
                vec![Value::str(partition), Value::str(node)],
            ));
        }
    }
    if coordinator.is_some() {
        for node in &role_nodes {
            nodes.insert(Coordinator::node(node), node.clone());
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
        .map(|mut map| {
            if let Some(coordinator) = &coordinator {
                if let (Some(request), Some(pending)) = (
                    coordinator.requests.get(&map.old),
                    coordinator.pending.get(&map.old),
                ) {
                    map.new.push(request.clone());
                    map.new.push(pending.clone());
                    map.how.push_str("; sent through the coordinator round");
                }
                if let (Some(ready), Some(held)) = (
                    coordinator.ready.get(&map.old),
                    coordinator.held.get(&map.old),
                ) {
                    map.new.push(ready.clone());
                    map.new.push(held.clone());
                    map.how
                        .push_str("; held by a partition while a coordinator round is pending");
                }
            }
            map
        })
        .collect();
    Outcome {
        case: Some(plan.case.clone()),
        roles: vec![NameMap {
            old: role.clone(),
            new: coordinator.as_ref().map_or_else(
                || vec![role.clone()],
                |coordinator| vec![role.clone(), coordinator.role.clone()],
            ),
            how: match &coordinator {
                None => format!("every node X runs as {n} partitions X/0 .. X/{}", n - 1),
                Some(coordinator) => format!(
                    "every node X runs as {n} partitions X/0 .. X/{} and a coordinator X/coordinator (role `{}`) that orders the inputs writing replicated state",
                    n - 1,
                    coordinator.role
                ),
            },
        }],
        relations,
        constants: Vec::new(),
        added,
        nodes,
        comparison: if coordinator.is_some() {
            Comparison::Eventual
        } else {
            Comparison::PerTick
        },
    }
}

/// The coordinator round of partial partitioning: names of the generated role and relations.
///
/// Per original node `X`, the coordinator `X/coordinator` receives the sequenced inputs
/// (`m_request`), gives each tick's batch the next index (`_index`, remembered in
/// `_assigned`), keeps it (`m_pending`) and asks every partition to vote (`vote_request`).
/// A partition freezes (`frozen`) and votes; when all partitions voted for an index and the
/// previous index is committed, the coordinator commits it: it sends the batch's inputs to
/// the partitions (replicated inputs to all, keyed ones to their key's partition) together
/// with `commit`, which unfreezes them. Partitions hold other inbound channels (`d_held`)
/// while frozen and read them through `d_ready` once no round is pending.
struct Coordinator {
    role: String,
    requests: BTreeMap<String, String>,
    pending: BTreeMap<String, String>,
    ready: BTreeMap<String, String>,
    held: BTreeMap<String, String>,
    partitions: String,
    route: String,
    batch: String,
    assigned: String,
    started: String,
    last: String,
    index: String,
    vote_request: String,
    frozen: String,
    busy: String,
    vote: String,
    votes: String,
    vote_count: String,
    commit_now: String,
    committed: String,
    commit: String,
}

impl Coordinator {
    fn new(draft: &Draft, plan: &PartitionPlan) -> Coordinator {
        let role = &plan.role;
        let coordinator = draft.fresh_role(&format!("{role}_coordinator"));
        let mut taken: BTreeSet<String> = BTreeSet::new();
        let mut fresh = |base: String| {
            let mut name = draft.fresh_relation(&base);
            let mut suffix = 2;
            while taken.contains(&name) {
                name = draft.fresh_relation(&format!("{base}_{suffix}"));
                suffix += 1;
            }
            taken.insert(name.clone());
            name
        };
        let mut requests = BTreeMap::new();
        let mut pending = BTreeMap::new();
        for input in &plan.sequenced {
            requests.insert(input.clone(), fresh(format!("{input}_request")));
            pending.insert(input.clone(), fresh(format!("{input}_pending")));
        }
        let mut ready = BTreeMap::new();
        let mut held = BTreeMap::new();
        for input in &plan.buffered {
            ready.insert(input.clone(), fresh(format!("{input}_ready")));
            held.insert(input.clone(), fresh(format!("{input}_held")));
        }
        Coordinator {
            requests,
            pending,
            ready,
            held,
            partitions: fresh(format!("{coordinator}_partitions")),
            route: fresh(format!("{coordinator}_route")),
            batch: fresh(format!("{coordinator}_batch")),
            assigned: fresh(format!("{coordinator}_assigned")),
            started: fresh(format!("{coordinator}_started")),
            last: fresh(format!("{coordinator}_last")),
            index: fresh(format!("{coordinator}_index")),
            vote_request: fresh(format!("{role}_vote_request")),
            frozen: fresh(format!("{role}_frozen")),
            busy: fresh(format!("{role}_busy")),
            vote: fresh(format!("{coordinator}_vote")),
            votes: fresh(format!("{coordinator}_votes")),
            vote_count: fresh(format!("{coordinator}_vote_count")),
            commit_now: fresh(format!("{coordinator}_commit_now")),
            committed: fresh(format!("{coordinator}_committed")),
            commit: fresh(format!("{role}_commit")),
            role: coordinator,
        }
    }

    fn node(node: &str) -> String {
        format!("{node}/coordinator")
    }

    /// Whether some sequenced input is routed by a key (needs the route table).
    fn routes(&self, plan: &PartitionPlan) -> bool {
        plan.sequenced
            .iter()
            .any(|input| plan.keys.get(input).copied().flatten().is_some())
    }

    /// Adds the round's relations (the input tables go to `inputs`, the rest to the end of
    /// the draft's relations) and rules, and renames buffered channels in the role's rules.
    fn generate(
        &self,
        draft: &mut Draft,
        plan: &PartitionPlan,
        inputs: &mut Vec<DRelation>,
    ) -> Vec<String> {
        let role = plan.role.as_str();
        let coordinator = self.role.as_str();
        let n = i64::from(plan.n);
        draft.roles.push(self.role.clone());
        let note = |text: &str| Some(format!("partition({role}): coordinator round; {text}"));
        let column = |name: &str, ty: &str| DColumn {
            name: name.to_owned(),
            ty: ty.to_owned(),
        };
        let relation =
            |name: &str, persistence: Persistence, columns: Vec<DColumn>, text: &str| DRelation {
                name: name.to_owned(),
                input: false,
                output: false,
                persistence,
                columns,
                key: None,
                declared: true,
                note: note(text),
            };
        let input = |name: &str, columns: Vec<DColumn>, text: &str| DRelation {
            input: true,
            ..relation(name, Persistence::Table, columns, text)
        };
        inputs.push(input(
            &self.partitions,
            vec![column("at", coordinator), column("part", role)],
            "generated topology; the partitions of the coordinator's node",
        ));
        if self.routes(plan) {
            inputs.push(input(
                &self.route,
                vec![
                    column("at", coordinator),
                    column("slot", "int"),
                    column("part", role),
                ],
                &format!("generated topology; an input whose key is `slot` mod {n} goes to `part`"),
            ));
        }
        let mut relations = Vec::new();
        let mut rules = Vec::new();
        let var = DTerm::var;
        let int = |value: i64| DTerm::Const(Value::Int(value));
        let atom = |rel: &str, args: Vec<DTerm>| DLiteral::atom(rel, args);
        let not = |rel: &str, args: Vec<DTerm>| {
            let mut literal = DLiteral::atom(rel, args);
            if let DLiteral::Atom(atom) = &mut literal {
                atom.negated = true;
            }
            literal
        };
        let rule = |kind: RuleKind, head: &str, args: Vec<DTerm>, body: Vec<DLiteral>| DRule {
            kind,
            head_rel: head.to_owned(),
            head_args: args.into_iter().map(DHeadArg::Term).collect(),
            body,
            origin: None,
            note: None,
        };
        let c = || var("Coord");
        let i = || var("Index");
        let p = || var("Part");
        // Sequenced inputs: the request channel and the pending batch.
        for (input, request) in &self.requests {
            let Some(original) = draft.relation(input).cloned() else {
                continue;
            };
            let pending = self.pending.get(input).cloned().unwrap_or_default();
            let payload: Vec<DColumn> = original.columns.iter().skip(1).cloned().collect();
            let mut request_columns = vec![column("at", coordinator)];
            request_columns.extend(payload.iter().cloned());
            relations.push(relation(
                request,
                Persistence::Channel,
                request_columns,
                &format!("`{input}` sent to the coordinator"),
            ));
            let mut pending_columns = vec![column("at", coordinator), column("index", "int")];
            pending_columns.extend(payload.iter().cloned());
            relations.push(relation(
                &pending,
                Persistence::Table,
                pending_columns,
                &format!("`{input}` inputs waiting for their round to commit"),
            ));
            let vars = payload_vars(&payload);
            let values: Vec<DTerm> = vars.iter().map(|v| var(v)).collect();
            let with = |first: Vec<DTerm>| {
                let mut args = first;
                args.extend(values.iter().cloned());
                args
            };
            let mut any = vec![c()];
            any.extend(values.iter().map(|_| DTerm::Wildcard));
            rules.push(rule(
                RuleKind::Deductive,
                &self.batch,
                vec![c()],
                vec![atom(request, any)],
            ));
            rules.push(rule(
                RuleKind::Deductive,
                &pending,
                with(vec![c(), i()]),
                vec![
                    atom(request, with(vec![c()])),
                    atom(&self.index, vec![c(), i()]),
                ],
            ));
            // Commit: replicated inputs to every partition, keyed ones to their partition.
            let mut body = vec![
                atom(&pending, with(vec![c(), i()])),
                atom(&self.commit_now, vec![c(), i()]),
            ];
            match plan.keys.get(input).copied().flatten() {
                Some(column) => {
                    let key = vars
                        .get(column.saturating_sub(1))
                        .map_or_else(|| int(0), |v| var(v));
                    body.push(atom(&self.route, vec![c(), var("Slot"), p()]));
                    body.push(DLiteral::Compare(
                        CompareOp::Eq,
                        var("Slot"),
                        modulo(key, n),
                    ));
                }
                None => body.push(atom(&self.partitions, vec![c(), p()])),
            }
            rules.push(rule(RuleKind::Async, input, with(vec![p()]), body));
            rules.push(rule(
                RuleKind::Delete,
                &pending,
                with(vec![c(), i()]),
                vec![
                    atom(&pending, with(vec![c(), i()])),
                    atom(&self.commit_now, vec![c(), i()]),
                ],
            ));
        }
        let scratch = |name: &str, columns: Vec<DColumn>, text: &str| {
            relation(name, Persistence::Scratch, columns, text)
        };
        let table = |name: &str, columns: Vec<DColumn>, text: &str| {
            relation(name, Persistence::Table, columns, text)
        };
        let channel = |name: &str, columns: Vec<DColumn>, text: &str| {
            relation(name, Persistence::Channel, columns, text)
        };
        let at_c = || column("at", coordinator);
        let at_r = || column("at", role);
        let index = || column("index", "int");
        relations.push(scratch(
            &self.batch,
            vec![at_c()],
            "sequenced inputs arrived this tick",
        ));
        relations.push(table(
            &self.assigned,
            vec![at_c(), index()],
            "indexes given so far",
        ));
        relations.push(scratch(&self.started, vec![at_c()], "some index was given"));
        relations.push(scratch(
            &self.last,
            vec![at_c(), index()],
            "the last index given",
        ));
        relations.push(scratch(
            &self.index,
            vec![at_c(), index()],
            "this tick's batch's index",
        ));
        relations.push(channel(
            &self.vote_request,
            vec![at_r(), column("coord", coordinator), index()],
            "vote request: freeze for this index",
        ));
        relations.push(table(
            &self.frozen,
            vec![at_r(), index()],
            "rounds voted in and not committed",
        ));
        relations.push(channel(
            &self.vote,
            vec![at_c(), column("part", role), index()],
            "a partition's vote",
        ));
        relations.push(table(
            &self.votes,
            vec![at_c(), index(), column("part", role)],
            "votes received",
        ));
        relations.push(scratch(
            &self.vote_count,
            vec![at_c(), index(), column("votes", "int")],
            "votes per index",
        ));
        relations.push(scratch(
            &self.commit_now,
            vec![at_c(), index()],
            "every partition voted and the previous index is committed",
        ));
        relations.push(table(
            &self.committed,
            vec![at_c(), index()],
            "committed indexes",
        ));
        relations.push(channel(
            &self.commit,
            vec![at_r(), index()],
            "commit: unfreeze",
        ));
        rules.push(rule(
            RuleKind::Deductive,
            &self.started,
            vec![c()],
            vec![atom(&self.assigned, vec![c(), DTerm::Wildcard])],
        ));
        rules.push(DRule {
            head_args: vec![
                DHeadArg::Term(c()),
                DHeadArg::Aggregate(ir::AggFunc::Max, "Index".to_owned()),
            ],
            ..rule(
                RuleKind::Deductive,
                &self.last,
                Vec::new(),
                vec![atom(&self.assigned, vec![c(), i()])],
            )
        });
        rules.push(rule(
            RuleKind::Deductive,
            &self.index,
            vec![c(), int(1)],
            vec![atom(&self.batch, vec![c()]), not(&self.started, vec![c()])],
        ));
        rules.push(rule(
            RuleKind::Deductive,
            &self.index,
            vec![
                c(),
                DTerm::Arith(ArithOp::Add, Box::new(var("Last")), Box::new(int(1))),
            ],
            vec![
                atom(&self.batch, vec![c()]),
                atom(&self.last, vec![c(), var("Last")]),
            ],
        ));
        rules.push(rule(
            RuleKind::Next,
            &self.assigned,
            vec![c(), i()],
            vec![atom(&self.index, vec![c(), i()])],
        ));
        rules.push(rule(
            RuleKind::Async,
            &self.vote_request,
            vec![p(), c(), i()],
            vec![
                atom(&self.index, vec![c(), i()]),
                atom(&self.partitions, vec![c(), p()]),
            ],
        ));
        rules.push(rule(
            RuleKind::Deductive,
            &self.frozen,
            vec![p(), i()],
            vec![atom(&self.vote_request, vec![p(), DTerm::Wildcard, i()])],
        ));
        rules.push(rule(
            RuleKind::Async,
            &self.vote,
            vec![c(), p(), i()],
            vec![atom(&self.vote_request, vec![p(), c(), i()])],
        ));
        rules.push(rule(
            RuleKind::Deductive,
            &self.votes,
            vec![c(), i(), p()],
            vec![atom(&self.vote, vec![c(), p(), i()])],
        ));
        rules.push(DRule {
            head_args: vec![
                DHeadArg::Term(c()),
                DHeadArg::Term(i()),
                DHeadArg::Aggregate(ir::AggFunc::Count, "Part".to_owned()),
            ],
            ..rule(
                RuleKind::Deductive,
                &self.vote_count,
                Vec::new(),
                vec![atom(&self.votes, vec![c(), i(), p()])],
            )
        });
        rules.push(rule(
            RuleKind::Deductive,
            &self.commit_now,
            vec![c(), int(1)],
            vec![
                atom(&self.vote_count, vec![c(), int(1), int(n)]),
                not(&self.committed, vec![c(), int(1)]),
            ],
        ));
        rules.push(rule(
            RuleKind::Deductive,
            &self.commit_now,
            vec![c(), i()],
            vec![
                atom(&self.vote_count, vec![c(), i(), int(n)]),
                not(&self.committed, vec![c(), i()]),
                atom(&self.committed, vec![c(), var("Previous")]),
                DLiteral::Compare(
                    CompareOp::Eq,
                    i(),
                    DTerm::Arith(ArithOp::Add, Box::new(var("Previous")), Box::new(int(1))),
                ),
            ],
        ));
        rules.push(rule(
            RuleKind::Next,
            &self.committed,
            vec![c(), i()],
            vec![atom(&self.commit_now, vec![c(), i()])],
        ));
        rules.push(rule(
            RuleKind::Async,
            &self.commit,
            vec![p(), i()],
            vec![
                atom(&self.commit_now, vec![c(), i()]),
                atom(&self.partitions, vec![c(), p()]),
            ],
        ));
        rules.push(rule(
            RuleKind::Delete,
            &self.frozen,
            vec![p(), i()],
            vec![atom(&self.commit, vec![p(), i()])],
        ));
        // Buffered channels: the role's rules read `d_ready` instead of `d`.
        if !self.ready.is_empty() {
            relations.push(scratch(
                &self.busy,
                vec![at_r()],
                "a round this partition voted in is pending",
            ));
            rules.push(rule(
                RuleKind::Deductive,
                &self.busy,
                vec![p()],
                vec![atom(&self.frozen, vec![p(), DTerm::Wildcard])],
            ));
        }
        for (input, ready) in &self.ready {
            let Some(original) = draft.relation(input).cloned() else {
                continue;
            };
            let held = self.held.get(input).cloned().unwrap_or_default();
            for rule in &mut draft.rules {
                let at_role = rule
                    .atoms()
                    .next()
                    .and_then(|first| draft_location_type(&draft.relations, &first.rel))
                    .is_some_and(|ty| ty == role);
                if !at_role {
                    continue;
                }
                for literal in &mut rule.body {
                    if let DLiteral::Atom(atom) = literal
                        && atom.rel == *input
                    {
                        atom.rel.clone_from(ready);
                    }
                }
            }
            let payload: Vec<DColumn> = original.columns.iter().skip(1).cloned().collect();
            let mut columns = vec![at_r()];
            columns.extend(payload.iter().cloned());
            relations.push(scratch(
                ready,
                columns.clone(),
                &format!("`{input}` once no round is pending (the role's rules read this)"),
            ));
            relations.push(table(
                &held,
                columns,
                &format!("`{input}` held while a round is pending"),
            ));
            let values: Vec<DTerm> = payload_vars(&payload).iter().map(|v| var(v)).collect();
            let args = {
                let mut args = vec![p()];
                args.extend(values.iter().cloned());
                args
            };
            rules.push(rule(
                RuleKind::Deductive,
                ready,
                args.clone(),
                vec![atom(input, args.clone()), not(&self.busy, vec![p()])],
            ));
            rules.push(rule(
                RuleKind::Deductive,
                &held,
                args.clone(),
                vec![atom(input, args.clone()), atom(&self.busy, vec![p()])],
            ));
            rules.push(rule(
                RuleKind::Deductive,
                ready,
                args.clone(),
                vec![atom(&held, args.clone()), not(&self.busy, vec![p()])],
            ));
            rules.push(rule(
                RuleKind::Delete,
                &held,
                args.clone(),
                vec![atom(&held, args), not(&self.busy, vec![p()])],
            ));
        }
        for rule in &mut rules {
            rule.note = Some(format!("partition({role}): coordinator round"));
        }
        let names = relations.iter().map(|r| r.name.clone()).collect();
        draft.relations.extend(relations);
        draft.rules.extend(rules);
        names
    }

    /// The generated topology facts: partitions and routes of every coordinator.
    fn facts(&self, plan: &PartitionPlan, role_nodes: &BTreeSet<String>) -> Vec<crate::DFact> {
        let fact = |rel: &str, values: Vec<Value>| crate::DFact {
            rel: rel.to_owned(),
            values,
            tick: 1,
        };
        let mut facts = Vec::new();
        for node in role_nodes {
            for k in 0..plan.n {
                facts.push(fact(
                    &self.partitions,
                    vec![
                        Value::str(&Coordinator::node(node)),
                        Value::str(&partition_node(node, k)),
                    ],
                ));
            }
        }
        if self.routes(plan) {
            let span = i64::from(plan.n) - 1;
            for node in role_nodes {
                for slot in -span..=span {
                    facts.push(fact(
                        &self.route,
                        vec![
                            Value::str(&Coordinator::node(node)),
                            Value::Int(slot),
                            Value::str(&partition_node(
                                node,
                                partition_of(&Value::Int(slot), plan.n),
                            )),
                        ],
                    ));
                }
            }
        }
        facts
    }
}

/// Variables for payload columns: the column names capitalised, made distinct from each
/// other and from the round's own variables.
fn payload_vars(columns: &[DColumn]) -> Vec<String> {
    let reserved = ["Coord", "Index", "Part", "Slot", "Last", "Previous"];
    let mut used: BTreeSet<String> = reserved.iter().map(|v| (*v).to_owned()).collect();
    let mut vars = Vec::new();
    for column in columns {
        let mut chars = column.name.chars();
        let base = match chars.next() {
            Some(first) if first.is_ascii_alphabetic() => {
                format!("{}{}", first.to_ascii_uppercase(), chars.as_str())
            }
            _ => "X".to_owned(),
        };
        let mut name = base.clone();
        let mut suffix = 2;
        while used.contains(&name) {
            name = format!("{base}{suffix}");
            suffix += 1;
        }
        used.insert(name.clone());
        vars.push(name);
    }
    vars
}

/// `key - key / n * n`: the slot a sender compares with its route table.
fn modulo(key: DTerm, n: i64) -> DTerm {
    DTerm::Arith(
        ArithOp::Sub,
        Box::new(key.clone()),
        Box::new(DTerm::Arith(
            ArithOp::Mul,
            Box::new(DTerm::Arith(
                ArithOp::Div,
                Box::new(key),
                Box::new(DTerm::Const(Value::Int(n))),
            )),
            Box::new(DTerm::Const(Value::Int(n))),
        )),
    )
}

fn draft_location_type(relations: &[DRelation], name: &str) -> Option<String> {
    relations
        .iter()
        .find(|relation| relation.name == name)
        .map(|relation| relation.location_type().to_owned())
}

/// The rows of generated routing tables: one per table, sender and node of the partitioned role.
fn per_sender_and_node<'a>(
    tables: &'a [(String, BTreeSet<String>)],
    role_nodes: &'a BTreeSet<String>,
) -> impl Iterator<Item = (&'a str, &'a str, &'a str)> + 'a {
    tables.iter().flat_map(move |(table, senders)| {
        senders.iter().flat_map(move |sender| {
            role_nodes
                .iter()
                .map(move |node| (table.as_str(), sender.as_str(), node.as_str()))
        })
    })
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
