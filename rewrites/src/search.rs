//! The planner behind `graft optimize`: a deterministic beam search over sequences of passes,
//! scored by the cost model ([`crate::cost`]).
//!
//! From the source version, every step enumerates the pass requests that the program's
//! structure suggests ([`candidates`]): for each role, `decouple` of every group of its
//! relations that shares no dataflow with the rest and of every downstream closure (the
//! relations computed from one relation), onto new machines; `partition` by every column name
//! of the role's relations into 2..8 partitions, co-hashed or, where that is refused,
//! partial; `batch` of every channel. Each request goes through the pass's own [`check`]: a
//! refusal is recorded (what `--explain` lists) and the request is dropped, so the planner can
//! only ever apply what `graft rewrite` would. A plan that checks is applied to the whole
//! chain with [`crate::rewrite`], then the caller's evaluator runs the new version on the
//! workload: it returns its cost and whether its outputs agree with the source's (through the
//! justification's maps, as `graft test` compares them). A version over the machine budget, or
//! whose outputs differ, is dropped and recorded.
//!
//! The next beam is the best `beam` new versions by score (bottleneck load, or network
//! exchanges for the `messages` objective), then machines, then number of steps, then the
//! requests' text; identical programs reached by different orders are kept once. The best
//! version seen at any depth wins under the same order.
//!
//! Quorum changes are searched under the rule `graft rewrite` applies to them: only constants
//! a count is compared against (the pass's `check`), and only a version that passes `graft
//! verify` is kept. A quorum change alters what the protocol decides, so its outputs are not
//! compared with the source's; instead, a quorum step that lowers the score of the version it
//! is applied to is handed to the caller's `confirm`, which verifies the invariants under the
//! protocol's bounds (LDFI). A step that does not lower the score is dropped unverified
//! (`no-gain`), so the expensive verification runs only for changes that could be chosen.
//!
//! Pure and deterministic: the evaluator is the only way out, and every collection that
//! reaches the result is ordered.

use std::collections::{BTreeMap, BTreeSet};

use graft_compiler::Checked;
use graft_compiler::analysis::specification_relations;
use graft_compiler::ir::{self, Persistence, RelationOrigin, RuleKind, Type};

use crate::cost::Cost;
use crate::spec::{PassSpec, Placement};
use crate::{FactsFile, PipelineError, Rewritten, SourceRef, check, rewrite};

/// What the search minimises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Objective {
    /// The bottleneck's load (facts derived, messages sent and received by the busiest node).
    Throughput,
    /// Network exchanges over all nodes (a batch counts once), then tuples sent.
    Messages,
}

impl Objective {
    pub fn as_str(self) -> &'static str {
        match self {
            Objective::Throughput => "throughput",
            Objective::Messages => "messages",
        }
    }

    /// What the score measures, in words.
    pub fn measure(self) -> &'static str {
        match self {
            Objective::Throughput => "bottleneck's load",
            Objective::Messages => "network exchanges",
        }
    }

    /// The score of a cost under this objective: lower is better.
    pub fn score(self, cost: &Cost) -> (u64, u64) {
        match self {
            Objective::Throughput => (cost.bottleneck_load(), 0),
            Objective::Messages => (cost.exchanges(), cost.messages()),
        }
    }
}

/// The search's limits.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Machines the best version may use at most.
    pub machines: usize,
    /// Passes in a sequence at most.
    pub max_steps: usize,
    /// Versions kept from one depth to the next.
    pub beam: usize,
}

/// What the caller's evaluator says about one version on the workload.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub cost: Cost,
    /// `Some(reason)` when the version's outputs differ from the source's.
    pub divergence: Option<String>,
}

/// One step of the plan, with the cost model's figures before and after it.
#[derive(Clone, Debug)]
pub struct Step {
    pub pass: PassSpec,
    /// The safe case the pass reported (e.g. `mutually-independent`, `co-hashing`).
    pub case: Option<String>,
    pub before: Cost,
    pub after: Cost,
}

/// A pass request the search tried and did not keep.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dropped {
    /// The request, in canonical form.
    pub request: String,
    /// The passes applied before it (empty: on the source).
    pub after: Vec<String>,
    /// `refused`, `over-budget`, `outputs-differ`, `no-gain` (a quorum change that does not
    /// lower the score), `not-verified` (a quorum change `confirm` refused) or
    /// `internal-error`.
    pub kind: &'static str,
    /// The failed preconditions' names, or the reason.
    pub reason: String,
}

/// The search's result.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub objective: Objective,
    pub source_cost: Cost,
    /// The best version's steps and program, when one beats the source.
    pub best: Option<(Vec<Step>, Rewritten)>,
    /// Every request tried and dropped, sorted, each once.
    pub dropped: Vec<Dropped>,
    /// Versions run on the workload.
    pub evaluated: usize,
    /// Requests that checked and fitted the budget but were never better than the source.
    pub applicable: usize,
}

/// Why the search could not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchError {
    /// The program declares no role: nothing names a kind of node to scale.
    NoRole,
    /// The workload sends no message: the model has nothing to balance.
    NoTraffic,
    /// The budget is below what the source already uses, or allows no step.
    BudgetTooSmall(String),
    /// The evaluator failed on a version (a bug, or a run that cannot be evaluated).
    Evaluation(String),
}

impl std::fmt::Display for SearchError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SearchError::NoRole => formatter.write_str(
                "the program declares no role, so there is no kind of node to decouple or partition; declare roles (`role name;`) and type the relations' locations with them",
            ),
            SearchError::NoTraffic => formatter.write_str(
                "the workload sends no message in a fault-free run, so the cost model has no load to balance; give a workload that exercises the protocol (--facts)",
            ),
            SearchError::BudgetTooSmall(reason) | SearchError::Evaluation(reason) => {
                formatter.write_str(reason)
            }
        }
    }
}

impl std::error::Error for SearchError {}

/// A version in the beam.
#[derive(Clone)]
struct State {
    passes: Vec<PassSpec>,
    /// `None` for the source.
    rewritten: Option<Rewritten>,
    /// The cost after each step (index 0: the source).
    costs: Vec<Cost>,
    cases: Vec<Option<String>>,
}

impl State {
    fn cost(&self) -> &Cost {
        self.costs
            .last()
            .unwrap_or_else(|| unreachable!("a state has the source's cost"))
    }

    fn texts(&self) -> Vec<String> {
        self.passes.iter().map(PassSpec::text).collect()
    }

    /// `request`, tried after this state's passes, dropped as `kind` for `reason`.
    fn dropped(&self, request: &PassSpec, kind: &'static str, reason: String) -> Dropped {
        Dropped {
            request: request.text(),
            after: self.texts(),
            kind,
            reason,
        }
    }

    fn order_key(&self, objective: Objective) -> ((u64, u64), usize, usize, Vec<String>) {
        (
            objective.score(self.cost()),
            self.cost().machines(),
            self.passes.len(),
            self.texts(),
        )
    }
}

/// Searches for the best sequence of passes from `checked` (built from `source`, with its
/// facts files `facts`) under `budget`. `evaluate` runs versions on the workload and answers
/// for each in order: `None` stands for the source (`checked` on `facts`), `Some` for a
/// rewritten version with its justification. It is given the source alone, then every new
/// version of one depth at once, so that it may run them in parallel; the search reads the
/// answers in order, so its outcome does not depend on how they were computed.
/// `confirm` verifies a version whose last step changes a quorum and lowers the score: its
/// passes, and the version; `Ok(Ok(()))` keeps it, `Ok(Err(reason))` drops it as
/// `not-verified`, `Err` stops the search.
pub fn search<E, C>(
    checked: &Checked,
    source: &SourceRef,
    facts: &[FactsFile],
    objective: Objective,
    budget: Budget,
    mut evaluate: E,
    mut confirm: C,
) -> Result<Outcome, SearchError>
where
    E: FnMut(&[Option<&Rewritten>]) -> Vec<Result<Evaluation, String>>,
    C: FnMut(&[PassSpec], &mut Rewritten) -> Result<Result<(), String>, String>,
{
    if checked.program.roles.is_empty() {
        return Err(SearchError::NoRole);
    }
    let source_cost = evaluate(&[None])
        .into_iter()
        .next()
        .unwrap_or_else(|| Err("the evaluator gave no answer for the source".to_owned()))
        .map_err(SearchError::Evaluation)?
        .cost;
    if !source_cost.has_traffic() {
        return Err(SearchError::NoTraffic);
    }
    let machines = source_cost.machines();
    if budget.machines < machines {
        return Err(SearchError::BudgetTooSmall(format!(
            "--machines {} is below the {machines} machines the source already uses; give at least {}",
            budget.machines,
            machines + 1
        )));
    }
    if budget.max_steps == 0 {
        return Err(SearchError::BudgetTooSmall(
            "--max-steps 0 allows no rewrite; give at least 1".to_owned(),
        ));
    }
    let root = State {
        passes: Vec::new(),
        rewritten: None,
        costs: vec![source_cost.clone()],
        cases: Vec::new(),
    };
    let mut dropped: BTreeSet<Dropped> = BTreeSet::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut beam = vec![root.clone()];
    let mut best = root;
    let mut evaluated = 1;
    let mut applicable = 0;
    let mut smallest_over_budget: Option<usize> = None;
    // A quorum change that lowers the score was tried: the budget did not stop the search.
    let mut quorum_tried = false;
    for _depth in 0..budget.max_steps {
        let mut children: Vec<State> = Vec::new();
        // The new versions of this depth, with the state and request each extends, evaluated
        // together below.
        let mut versions: Vec<(&State, PassSpec, Vec<PassSpec>, Rewritten)> = Vec::new();
        for state in &beam {
            let program = state
                .rewritten
                .as_ref()
                .map_or(checked, |rewritten| &rewritten.checked);
            let (requests, skipped) = candidates(program, state.cost(), budget.machines);
            if let Some(needed) = skipped {
                smallest_over_budget =
                    Some(smallest_over_budget.map_or(needed, |m: usize| m.min(needed)));
            }
            for request in requests {
                // One partition per role: a larger `n` does what partitioning twice would.
                if let PassSpec::Partition { role, .. } = &request
                    && state.passes.iter().any(|pass| {
                        matches!(pass, PassSpec::Partition { role: done, .. } if done == role)
                    })
                {
                    continue;
                }
                // One change per quorum constant: a second would undo or redo the first.
                if let PassSpec::Quorum { constants, .. } = &request
                    && state.passes.iter().any(|pass| match pass {
                        PassSpec::Quorum {
                            constants: done, ..
                        } => done
                            .iter()
                            .any(|(name, _)| constants.iter().any(|(other, _)| other == name)),
                        _ => false,
                    })
                {
                    continue;
                }
                let drop = |kind, reason| state.dropped(&request, kind, reason);
                if let Err(refusal) = check(program, &request) {
                    dropped.insert(drop("refused", refusal.names().join(", ")));
                    continue;
                }
                let mut passes = state.passes.clone();
                passes.push(request.clone());
                let rewritten = match rewrite(checked, source, facts.to_vec(), &passes) {
                    Ok(rewritten) => rewritten,
                    Err(PipelineError::Refused { refusal, .. }) => {
                        dropped.insert(drop("refused", refusal.names().join(", ")));
                        continue;
                    }
                    Err(PipelineError::Internal { .. }) => {
                        dropped.insert(drop(
                            "internal-error",
                            "the pass produced a program that does not check (a bug in graft)"
                                .to_owned(),
                        ));
                        continue;
                    }
                };
                let key = format!(
                    "{}\n{}",
                    crate::content_hash(rewritten.text.as_bytes()),
                    rewritten
                        .facts
                        .iter()
                        .map(FactsFile::print)
                        .collect::<String>()
                );
                if !seen.insert(key) {
                    continue;
                }
                versions.push((state, request, passes, rewritten));
            }
        }
        evaluated += versions.len();
        let batch: Vec<Option<&Rewritten>> = versions
            .iter()
            .map(|(_, _, _, rewritten)| Some(rewritten))
            .collect();
        let mut evaluations = evaluate(&batch).into_iter();
        for (state, request, passes, mut rewritten) in versions {
            let drop = |kind, reason| state.dropped(&request, kind, reason);
            let evaluation = evaluations
                .next()
                .unwrap_or_else(|| Err("the evaluator gave fewer answers than versions".to_owned()))
                .map_err(SearchError::Evaluation)?;
            if let Some(reason) = evaluation.divergence {
                dropped.insert(drop("outputs-differ", reason));
                continue;
            }
            let used = evaluation.cost.machines();
            if used > budget.machines {
                smallest_over_budget = Some(smallest_over_budget.map_or(used, |m| m.min(used)));
                dropped.insert(drop(
                    "over-budget",
                    format!("needs {used} machines (budget {})", budget.machines),
                ));
                continue;
            }
            if matches!(request, PassSpec::Quorum { .. }) {
                let (before, after) = (
                    objective.score(state.cost()),
                    objective.score(&evaluation.cost),
                );
                if after >= before {
                    dropped.insert(drop(
                        "no-gain",
                        format!(
                            "does not lower the {} ({} -> {}), so it was not verified",
                            objective.measure(),
                            before.0,
                            after.0
                        ),
                    ));
                    continue;
                }
                quorum_tried = true;
                if let Err(reason) =
                    confirm(&passes, &mut rewritten).map_err(SearchError::Evaluation)?
                {
                    dropped.insert(drop("not-verified", reason));
                    continue;
                }
            }
            applicable += 1;
            let case = rewritten
                .justification
                .passes
                .last()
                .and_then(|record| record.case.clone());
            let mut costs = state.costs.clone();
            costs.push(evaluation.cost);
            let mut cases = state.cases.clone();
            cases.push(case);
            children.push(State {
                passes,
                rewritten: Some(rewritten),
                costs,
                cases,
            });
        }
        if children.is_empty() {
            break;
        }
        children.sort_by_cached_key(|state| state.order_key(objective));
        if let Some(first) = children.first()
            && first.order_key(objective) < best.order_key(objective)
        {
            best = first.clone();
        }
        beam = diverse(children, budget.beam.max(1));
    }
    if applicable == 0
        && !quorum_tried
        && let Some(needed) = smallest_over_budget
    {
        return Err(SearchError::BudgetTooSmall(format!(
            "--machines {} is too small for any rewrite: every decoupling or partition the search would try needs more (the smallest candidate, {needed} machines); raise --machines",
            budget.machines
        )));
    }
    let source_score = objective.score(&source_cost);
    let improved = objective.score(best.cost()) < source_score;
    let best = match (improved, best.rewritten.clone()) {
        (true, Some(rewritten)) => {
            let steps = best
                .passes
                .iter()
                .enumerate()
                .map(|(index, pass)| Step {
                    pass: pass.clone(),
                    case: best.cases.get(index).cloned().flatten(),
                    before: best.costs[index].clone(),
                    after: best.costs[index + 1].clone(),
                })
                .collect();
            Some((steps, rewritten))
        }
        _ => None,
    };
    Ok(Outcome {
        objective,
        source_cost,
        best,
        dropped: dropped.into_iter().collect(),
        evaluated,
        applicable,
    })
}

/// The next beam: the best `width` children, taking first the best child of each family
/// (pass and role or channel of its last step), so that one pass with many parameters does not
/// crowd out the others; then the rest in order.
fn diverse(children: Vec<State>, width: usize) -> Vec<State> {
    let family = |state: &State| match state.passes.last() {
        Some(PassSpec::Decouple { role, .. }) => format!("decouple {role}"),
        Some(PassSpec::Partition { role, .. }) => format!("partition {role}"),
        Some(PassSpec::Batch { channel, .. }) => format!("batch {channel}"),
        Some(PassSpec::Quorum { .. }) => "quorum".to_owned(),
        None => String::new(),
    };
    let mut families = BTreeSet::new();
    let (mut first, mut rest) = (Vec::new(), Vec::new());
    for child in children {
        if families.insert(family(&child)) {
            first.push(child);
        } else {
            rest.push(child);
        }
    }
    first.truncate(width);
    let missing = width - first.len();
    first.extend(rest.into_iter().take(missing));
    first
}

/// Partition counts the search tries.
const PARTITIONS: [u32; 7] = [2, 3, 4, 5, 6, 7, 8];

/// The pass requests the program's structure suggests, in a fixed order, and the fewest
/// machines a request left out for the budget would have needed (`None` if none was). `cost`
/// is the program's cost (for the machines a decoupling or partition adds); `machines` the
/// budget.
pub fn candidates(
    checked: &Checked,
    cost: &Cost,
    machines: usize,
) -> (Vec<PassSpec>, Option<usize>) {
    let mut skipped: Option<usize> = None;
    let mut skip = |needed: usize| {
        skipped = Some(skipped.map_or(needed, |m| m.min(needed)));
    };
    let program = &checked.program;
    let spec = specification_relations(program);
    let is_spec = |rel: ir::RelId| spec.get(rel.index()).copied().unwrap_or(false);
    let location_of = |relation: &ir::Relation| {
        relation
            .columns
            .first()
            .map(|column| program.type_name(column.ty))
    };
    let mut requests = Vec::new();
    let role_names: BTreeSet<&str> = program
        .roles
        .iter()
        .map(|role| role.name.as_str())
        .collect();
    for role in &program.roles {
        // The relations located at the role that rules derive or messages deliver.
        let located: Vec<&ir::Relation> = program
            .relations
            .iter()
            .filter(|relation| {
                relation.origin != RelationOrigin::Builtin
                    && relation.origin != RelationOrigin::Unknown
                    && !relation.input
                    && !is_spec(relation.id)
                    && location_of(relation).as_deref() == Some(role.name.as_str())
            })
            .collect();
        if located.is_empty() {
            continue;
        }
        let located_ids: BTreeSet<ir::RelId> = located.iter().map(|r| r.id).collect();
        // Edges between located relations through the role's rules (head <- body).
        let mut reads: BTreeMap<ir::RelId, BTreeSet<ir::RelId>> = BTreeMap::new();
        for rule in &program.rules {
            if is_spec(rule.head.rel) || !located_ids.contains(&rule.head.rel) {
                continue;
            }
            if rule.kind == RuleKind::Async {
                // A message to the role: its sender's rules are not the role's.
                let sender_at_role = rule
                    .atoms()
                    .next()
                    .is_some_and(|(_, atom)| located_ids.contains(&atom.rel));
                if !sender_at_role {
                    continue;
                }
            }
            for (_, atom) in rule.atoms() {
                if located_ids.contains(&atom.rel) && atom.rel != rule.head.rel {
                    reads.entry(rule.head.rel).or_default().insert(atom.rel);
                }
            }
        }
        let mut groups: BTreeSet<Vec<ir::RelId>> = BTreeSet::new();
        // Connected components: groups with no dataflow to the rest.
        let mut component_of: BTreeMap<ir::RelId, usize> = BTreeMap::new();
        for (index, relation) in located.iter().enumerate() {
            component_of.insert(relation.id, index);
        }
        loop {
            let mut changed = false;
            for (head, body) in &reads {
                for read in body {
                    let (a, b) = (component_of[head], component_of[read]);
                    if a != b {
                        let (low, high) = (a.min(b), a.max(b));
                        for value in component_of.values_mut() {
                            if *value == high {
                                *value = low;
                            }
                        }
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let mut components: BTreeMap<usize, Vec<ir::RelId>> = BTreeMap::new();
        for (rel, component) in &component_of {
            components.entry(*component).or_default().push(*rel);
        }
        if components.len() > 1 {
            groups.extend(components.into_values());
        }
        // Downstream closures: a relation and everything the role computes from it.
        for relation in &located {
            let mut closure: BTreeSet<ir::RelId> = BTreeSet::from([relation.id]);
            loop {
                let before = closure.len();
                for (head, body) in &reads {
                    if body.iter().any(|read| closure.contains(read)) {
                        closure.insert(*head);
                    }
                }
                if closure.len() == before {
                    break;
                }
            }
            if closure.len() < located.len() {
                groups.insert(closure.into_iter().collect());
            }
        }
        let role_machines = cost.machines_of(&role.name);
        let used = cost.machines();
        if used + role_machines.max(1) > machines && !groups.is_empty() {
            skip(used + role_machines.max(1));
        } else {
            for group in groups {
                let relations: Vec<String> = group
                    .iter()
                    .map(|rel| program.relation(*rel).name.clone())
                    .collect();
                let mut to = format!("{}_{}", role.name, relations[0]);
                while role_names.contains(to.as_str()) {
                    to.push('2');
                }
                requests.push(PassSpec::Decouple {
                    role: role.name.clone(),
                    relations,
                    to,
                    placement: Placement::New,
                });
            }
        }
        // Partition keys: every column name of the role's relations but the location.
        let keys: BTreeSet<&str> = located
            .iter()
            .flat_map(|relation| relation.columns.iter().skip(1))
            .filter(|column| column.ty != Type::Bool)
            .map(|column| column.name.as_str())
            .collect();
        for key in keys {
            let co_hashed = PassSpec::Partition {
                role: role.name.clone(),
                by: key.to_owned(),
                n: 2,
                partial: false,
            };
            let partial = check(checked, &co_hashed).is_err();
            let partial_request = PassSpec::Partition {
                role: role.name.clone(),
                by: key.to_owned(),
                n: 2,
                partial: true,
            };
            if partial && check(checked, &partial_request).is_err() {
                // Refused either way: tried once, so that the refusal is recorded.
                requests.push(co_hashed);
                continue;
            }
            for n in PARTITIONS {
                let extra = role_machines.max(1) * (n as usize - 1);
                if used + extra > machines {
                    skip(used + extra);
                    break;
                }
                requests.push(PassSpec::Partition {
                    role: role.name.clone(),
                    by: key.to_owned(),
                    n,
                    partial,
                });
            }
        }
    }
    // Quorums: one step down and one up for every constant a count is compared against (the
    // pass's check refuses values a `require` forbids).
    for (id, _) in crate::quorum_constants(program) {
        let constant = &program.consts[id.index()];
        let Some(value) = constant.value.as_ref().and_then(ir::Value::as_int) else {
            continue;
        };
        for new in [value - 1, value + 1] {
            if new >= 1 {
                requests.push(PassSpec::Quorum {
                    constants: vec![(constant.name.clone(), new)],
                    membership: Vec::new(),
                });
            }
        }
    }
    // Batching: every channel.
    for relation in &program.relations {
        if relation.persistence == Persistence::Channel
            && relation.origin == RelationOrigin::Declared
            && !is_spec(relation.id)
        {
            requests.push(PassSpec::Batch {
                channel: relation.name.clone(),
                ticks: 2,
                size: None,
            });
        }
    }
    (requests, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::NodeCost;

    fn voting() -> Checked {
        let (checked, _) = crate::check_text(
            "voting.graft",
            include_str!("../../examples/voting/voting.graft"),
        );
        assert!(!checked.has_errors());
        checked
    }

    /// The source's cost: one leader and three voters, all working.
    fn cost() -> Cost {
        let mut cost = Cost::default();
        for (name, role) in [
            ("L", "leader"),
            ("v1", "voter"),
            ("v2", "voter"),
            ("v3", "voter"),
        ] {
            cost.nodes.insert(
                name.to_owned(),
                NodeCost {
                    role: role.to_owned(),
                    facts: 1,
                    ..NodeCost::default()
                },
            );
        }
        cost
    }

    #[test]
    fn candidates_follow_the_program_structure_and_the_budget() {
        let checked = voting();
        let (requests, skipped) = candidates(&checked, &cost(), 8);
        let texts: Vec<String> = requests.iter().map(PassSpec::text).collect();
        // The collector half of the leader shares no dataflow with the broadcaster half.
        assert!(texts.contains(
            &"decouple(leader, rels=[vote, requested, votes, yes_votes, no_votes, decided], to=leader_vote, on=new)"
                .to_owned()
        ), "{texts:#?}");
        // One leader: partitions up to 4 + (n - 1) <= 8; three voters: 4 + 3 (n - 1) <= 8.
        assert!(texts.contains(&"partition(leader, by=id, n=5)".to_owned()));
        assert!(!texts.contains(&"partition(leader, by=id, n=6)".to_owned()));
        assert!(texts.contains(&"partition(voter, by=id, n=2)".to_owned()));
        assert!(!texts.contains(&"partition(voter, by=id, n=3)".to_owned()));
        assert!(texts.contains(&"batch(vote, ticks=2)".to_owned()));
        // QUORUM is compared with a count: one step down and one up (the check refuses 1,
        // which breaks `2 * QUORUM > N`).
        assert!(texts.contains(&"quorum(QUORUM=1)".to_owned()));
        assert!(texts.contains(&"quorum(QUORUM=3)".to_owned()));

        assert_eq!(
            skipped,
            Some(9),
            "partition(leader, n=6) and (voter, n=3) were left out"
        );
        // The same requests, in the same order, every time.
        let (again, _) = candidates(&checked, &cost(), 8);
        assert_eq!(requests, again);
        // With no machine to spare, no decoupling or partition that could apply is left (the
        // partitions refused whatever `n` stay, so that their refusals are reported).
        let (requests, skipped) = candidates(&checked, &cost(), 4);
        for request in &requests {
            match request {
                PassSpec::Decouple { .. } => panic!("{}", request.text()),
                PassSpec::Partition { .. } => assert!(check(&checked, request).is_err()),
                PassSpec::Batch { .. } | PassSpec::Quorum { .. } => {}
            }
        }
        assert_eq!(skipped, Some(5));
    }

    /// A batch evaluator that answers each version of a batch with `answer`, in order.
    fn each(
        answer: impl Fn(Option<&Rewritten>) -> Result<Evaluation, String>,
    ) -> impl FnMut(&[Option<&Rewritten>]) -> Vec<Result<Evaluation, String>> {
        move |batch| batch.iter().map(|version| answer(*version)).collect()
    }

    #[test]
    fn the_search_refuses_what_it_cannot_start_from() {
        let checked = voting();
        let source = SourceRef {
            files: vec!["voting.graft".to_owned()],
            hash: String::new(),
        };
        let budget = Budget {
            machines: 8,
            max_steps: 2,
            beam: 2,
        };
        let keep = |_: &[PassSpec], _: &mut Rewritten| Ok(Ok(()));
        let quiet = |_: Option<&Rewritten>| {
            Ok(Evaluation {
                cost: cost(),
                divergence: None,
            })
        };
        let error = search(
            &checked,
            &source,
            &[],
            Objective::Throughput,
            budget,
            each(quiet),
            keep,
        )
        .expect_err("no traffic");
        assert_eq!(error, SearchError::NoTraffic);
        let small = Budget {
            machines: 3,
            ..budget
        };
        let busy = |_: Option<&Rewritten>| {
            let mut cost = cost();
            cost.nodes.get_mut("L").expect("L").messages = 3;
            Ok(Evaluation {
                cost,
                divergence: None,
            })
        };
        let error = search(
            &checked,
            &source,
            &[],
            Objective::Throughput,
            small,
            each(busy),
            keep,
        )
        .expect_err("budget");
        assert!(matches!(error, SearchError::BudgetTooSmall(_)), "{error}");
    }

    /// A quorum step is kept only when it lowers the score and `confirm` verified it; one that
    /// does not lower the score is never handed to `confirm`.
    #[test]
    fn quorum_steps_are_kept_only_when_they_help_and_are_verified() {
        let checked = voting();
        let source = SourceRef {
            files: vec!["voting.graft".to_owned()],
            hash: String::new(),
        };
        let budget = Budget {
            machines: 8,
            max_steps: 1,
            beam: 2,
        };
        // Messages make the workload a real one; QUORUM=3 halves the leader's load (a stand-in
        // for a protocol whose leader stops earlier), QUORUM's other changes do not help.
        let evaluate = |rewritten: Option<&Rewritten>| {
            let mut cost = cost();
            let leader = cost.nodes.get_mut("L").expect("L");
            leader.messages = 10;
            let quorum_3 = rewritten.is_some_and(|rewritten| {
                rewritten
                    .justification
                    .passes
                    .iter()
                    .any(|pass| pass.request == "quorum(QUORUM=3)")
            });
            if quorum_3 {
                leader.messages = 4;
            }
            Ok(Evaluation {
                cost,
                divergence: None,
            })
        };
        let run = |verdict: Result<(), String>| {
            let mut asked = Vec::new();
            let confirm = |passes: &[PassSpec], _: &mut Rewritten| {
                asked.push(passes.iter().map(PassSpec::text).collect::<Vec<_>>());
                Ok(verdict.clone())
            };
            let outcome = search(
                &checked,
                &source,
                &[],
                Objective::Throughput,
                budget,
                each(evaluate),
                confirm,
            )
            .expect("search");
            (outcome, asked)
        };
        let (verified, asked) = run(Ok(()));
        assert_eq!(asked, vec![vec!["quorum(QUORUM=3)".to_owned()]]);
        let (steps, _) = verified.best.expect("the verified change helps");
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].pass.text(), "quorum(QUORUM=3)");
        assert!(
            verified
                .dropped
                .iter()
                .any(|d| d.kind == "no-gain" && d.request == "quorum(N=2)")
        );
        let (refused, asked) = run(Err("counterexample: crash v1@2".to_owned()));
        assert_eq!(asked.len(), 1);
        assert!(
            refused.best.is_none(),
            "an unverified change is never chosen"
        );
        assert!(refused.dropped.iter().any(|d| d.kind == "not-verified"
            && d.request == "quorum(QUORUM=3)"
            && d.reason == "counterexample: crash v1@2"));
    }
}
