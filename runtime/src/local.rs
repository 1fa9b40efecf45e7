//! The node-local engine: each worker evaluates its own nodes tick by tick inside one timely
//! operator, and only *changes* cross the dataflow.
//!
//! When every rule the run needs is local (its body atoms all sit at the body's location, and
//! a same-tick or `@next` head at that location too), a node's tick depends only on the
//! node's base: its given facts, what it carried from the previous tick and the messages
//! delivered to it. So a worker keeps, per node, the base and contents of its last evaluated
//! tick and re-evaluates a node only when its base may change: a message arrived or was
//! withdrawn, its own carried state changed, or the tick is *special* (given facts start or
//! end, a crash, a scheduled omission, a pinned tick). Everything else holds as before.
//!
//! The dataflow is one operator in a loop with a step of one tick. What crosses it are diffs:
//! a node's sent messages at tick t compared with those at t − 1, exchanged to the worker of
//! each destination, where they are delivered at t + 1 (a destination counts its senders, so
//! a message two nodes send stays delivered while either sends it); and, to worker 0, the
//! ticks at which some base changed and the changes of the shown relations. A protocol that
//! resends the same messages every tick therefore costs nothing once it settles, and the
//! dataflow goes idle, ending the run, exactly when no base changes any more (the run length
//! is then computed as for the dataflow lowering, from the change ticks).
//!
//! Rules are evaluated with the dataflow lowering's plans (`plan.rs`): bindings extended atom
//! by atom through hash indexes built per evaluation, filters and antijoins as soon as ready,
//! recursive components iterated to a fixpoint.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::sync::Arc;

use graft_compiler::ir::{self, RelId, RuleKind, Term};
use graft_eval::hash::{FastBuild, FastHasher, FastMap, FastSet};
use indexmap::IndexSet;
use serde::{Deserialize, Serialize};
use timely::dataflow::Scope;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::{Capability, ConnectLoop, Feedback};

use crate::lower::{Gathered, RunPlan};
use crate::plan::{AtomPlan, RulePlan, Step};
use crate::value::{Expr, Row, Val, compare};

/// A row with the hash of all of its values, computed once (a [`Row`] hashes only its
/// location, for exchange; here every row of a node has the same location).
#[derive(Clone, Debug)]
struct Full {
    hash: u64,
    row: Row,
}

impl Full {
    fn new(row: Row) -> Full {
        Full {
            hash: row.full_hash(),
            row,
        }
    }
}

impl PartialEq for Full {
    fn eq(&self, other: &Full) -> bool {
        self.hash == other.hash && self.row == other.row
    }
}

impl Eq for Full {}

impl Hash for Full {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

type Set = IndexSet<Full, FastBuild>;

/// What crosses the dataflow.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Item {
    /// A message (relation index, fact with its destination first) that its sender started
    /// (+1) or stopped (−1) sending at the stamp's tick; delivered from the next tick on.
    Message(u32, Row, i32),
    /// To worker 0: a shown relation's fact appeared (+1) or disappeared (−1) at a tick.
    Shown(u32, Row, u64, i32),
    /// To worker 0: some node's base changed at this tick.
    Changed(u64),
}

/// The worker that owns a node: a deterministic hash of its value, the same on every
/// process.
fn route(node: Option<Val>) -> u64 {
    let mut hasher = FastHasher::default();
    node.hash(&mut hasher);
    hasher.finish()
}

/// The rules a run must evaluate: the temporal ones and the deductive rules whose heads are
/// shown or (transitively) read by a needed rule or carried (tables).
pub(crate) fn needed_rules(
    rules: &[RulePlan],
    tables: &[bool],
    shown: &[RelId],
    relations: usize,
) -> Vec<bool> {
    let mut needed_rel = vec![false; relations];
    for rel in shown {
        needed_rel[rel.index()] = true;
    }
    for (index, table) in tables.iter().enumerate() {
        needed_rel[index] |= *table;
    }
    let mut keep = vec![false; rules.len()];
    loop {
        let mut grew = false;
        for (index, rule) in rules.iter().enumerate() {
            if keep[index]
                || (rule.kind == RuleKind::Deductive && !needed_rel[rule.head_rel.index()])
            {
                continue;
            }
            keep[index] = true;
            grew = true;
            for (rel, _) in rule.reads() {
                needed_rel[rel.index()] = true;
            }
        }
        if !grew {
            return keep;
        }
    }
}

/// Whether every needed rule is local: its atoms' locations are the body's location
/// variable, and so is the head's unless the rule sends (`@async`).
pub(crate) fn all_local(program: &ir::Program, keep: &[bool]) -> bool {
    program
        .rules
        .iter()
        .zip(keep)
        .filter(|(_, keep)| **keep)
        .all(|(rule, _)| {
            let Some(location) = rule.location else {
                return false;
            };
            let at =
                |args: &[Term]| matches!(args.first(), Some(Term::Var(var)) if *var == location);
            rule.atoms().all(|(_, atom)| at(&atom.args))
                && (rule.kind == RuleKind::Async || at(&rule.head.args))
        })
}

/// A set of (relation, fact) pairs.
type Facts = IndexSet<(u32, Full), FastBuild>;

/// One node's state between ticks. Its base is never stored: it is the union of what it
/// carries, what is given at the tick, the messages delivered to it and the `crash` facts,
/// and whether it changed is decided from how those parts changed.
#[derive(Default)]
struct NodeState {
    /// What the node carries into the tick after its last evaluation, per relation.
    carried: Vec<Set>,
    /// How `carried` changed at that evaluation: true for an added fact, false for a removed.
    carried_delta: FastMap<(u32, Full), bool>,
    /// Messages delivered from the current tick on, with the number of senders sending each.
    inbox: Vec<FastMap<Full, i32>>,
    /// How the delivered messages changed at the current tick (true: now delivered).
    inbox_delta: FastMap<(u32, Full), bool>,
    /// The shown relations' contents at the last evaluation, by position in the shown list.
    shown: Vec<Set>,
    /// What the `@async` rules derived at the last evaluation (before faults).
    heads: Vec<(u32, Row)>,
    /// What was sent at the last tick (after faults).
    sent: FastSet<(u32, Full)>,
    /// Pinned relations' contents at their tick.
    pinned: FastMap<(u32, u64), Set>,
    /// Down in the strict crash model at the last tick looked at: its base was empty.
    was_down: bool,
    /// Evaluated at least once: `contents` and `temporal` hold that evaluation's results.
    evaluated: bool,
    /// Every relation's contents at the last evaluation.
    contents: Vec<Set>,
    /// The heads each temporal rule (by index) derived when it last fired.
    temporal: FastMap<usize, Vec<Row>>,
    /// The `@async` heads changed at the last evaluation.
    heads_changed: bool,
}

impl NodeState {
    fn new(relations: usize, shown: usize) -> NodeState {
        NodeState {
            carried: vec![Set::default(); relations],
            inbox: vec![FastMap::default(); relations],
            shown: vec![Set::default(); shown],
            ..NodeState::default()
        }
    }

    /// Adds `diff` senders to a delivered message, noting whether it became delivered or
    /// stopped being so.
    fn deliver(&mut self, rel: u32, row: Row, diff: i32) {
        let Some(inbox) = self.inbox.get_mut(rel as usize) else {
            return;
        };
        let key = Full::new(row);
        let before = inbox.get(&key).copied().unwrap_or(0);
        let after = before + diff;
        if after == 0 {
            inbox.remove(&key);
        } else {
            inbox.insert(key.clone(), after);
        }
        if (before > 0) != (after > 0) {
            // A second toggle within the tick restores the fact: no change after all.
            match self.inbox_delta.entry((rel, key)) {
                std::collections::hash_map::Entry::Occupied(entry) => {
                    entry.remove();
                }
                std::collections::hash_map::Entry::Vacant(entry) => {
                    entry.insert(after > 0);
                }
            }
        }
    }
}

/// An index of one source (a relation, or a pinned snapshot) by some columns, built up to
/// `built` rows (sources only grow while a tick is evaluated).
#[derive(Default)]
struct Index {
    built: usize,
    map: FastMap<Full, Vec<u32>>,
}

/// The distinct projections of one source on some columns, built up to `built` rows.
#[derive(Default)]
struct Projection {
    built: usize,
    set: FastSet<Full>,
}

/// Where an atom reads from at the tick being evaluated.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Source {
    Current(u32),
    Snapshot(u32, u64),
    Empty,
}

/// A node's tick being evaluated: the relations' contents so far, and indexes over them.
struct Db<'a> {
    rels: Vec<Set>,
    pinned: &'a FastMap<(u32, u64), Set>,
    tick: u64,
    indexes: FastMap<(Source, Vec<usize>), Index>,
    projections: FastMap<(Source, Vec<usize>), Projection>,
    empty: Set,
}

impl Db<'_> {
    fn source(&self, rel: RelId, pinned: Option<u64>) -> Source {
        let rel = u32::try_from(rel.index()).unwrap_or(u32::MAX);
        match pinned {
            Some(at) if at > self.tick => Source::Empty,
            Some(at) if at < self.tick => Source::Snapshot(rel, at),
            _ => Source::Current(rel),
        }
    }

    fn rows(&self, source: Source) -> &Set {
        rows_of(&self.rels, self.pinned, &self.empty, source)
    }

    /// Brings the index of `source` by `columns` up to date.
    fn index(&mut self, source: Source, columns: &[usize]) {
        let rows = rows_of(&self.rels, self.pinned, &self.empty, source);
        let index = self.indexes.entry((source, columns.to_vec())).or_default();
        for position in index.built..rows.len() {
            if let Some(Full { row, .. }) = rows.get_index(position) {
                let key = Full::new(project(row, columns));
                index
                    .map
                    .entry(key)
                    .or_default()
                    .push(u32::try_from(position).unwrap_or(u32::MAX));
            }
        }
        index.built = rows.len();
    }

    fn projection(&mut self, source: Source, columns: &[usize]) {
        let rows = rows_of(&self.rels, self.pinned, &self.empty, source);
        let projection = self
            .projections
            .entry((source, columns.to_vec()))
            .or_default();
        for position in projection.built..rows.len() {
            if let Some(Full { row, .. }) = rows.get_index(position) {
                projection.set.insert(Full::new(project(row, columns)));
            }
        }
        projection.built = rows.len();
    }

    /// Every binding of a rule's body.
    fn bindings(&mut self, rule: &RulePlan) -> Vec<Row> {
        let mut bindings = self.scan(&rule.first, rule.slots);
        for step in &rule.steps {
            if bindings.is_empty() {
                break;
            }
            bindings = match step {
                Step::Join(atom) => self.join(bindings, atom),
                Step::Compare { op, lhs, rhs } => {
                    bindings.retain(|binding| match (lhs.eval(binding), rhs.eval(binding)) {
                        (Some(lhs), Some(rhs)) => compare(*op, lhs, rhs),
                        _ => false,
                    });
                    bindings
                }
                Step::Antijoin {
                    rel,
                    pinned,
                    columns,
                    key,
                    ..
                } => {
                    let source = self.source(*rel, *pinned);
                    self.projection(source, columns);
                    let Some(projection) = self.projections.get(&(source, columns.clone())) else {
                        return Vec::new();
                    };
                    bindings.retain(|binding| {
                        Expr::eval_all(key, binding)
                            .is_some_and(|values| !projection.set.contains(&Full::new(values)))
                    });
                    bindings
                }
            };
        }
        bindings
    }

    fn scan(&self, atom: &AtomPlan, slots: usize) -> Vec<Row> {
        let constants = atom.constants();
        let source = self.source(atom.rel, atom.pinned);
        self.rows(source)
            .iter()
            .filter_map(|Full { row, .. }| atom.start(&constants, row, slots))
            .collect()
    }

    fn join(&mut self, bindings: Vec<Row>, atom: &AtomPlan) -> Vec<Row> {
        let source = self.source(atom.rel, atom.pinned);
        self.index(source, &atom.key_columns);
        let rows = self.rows(source);
        let Some(index) = self.indexes.get(&(source, atom.key_columns.clone())) else {
            return Vec::new();
        };
        let mut joined = Vec::new();
        for binding in &bindings {
            let Some(key) = Expr::eval_all(&atom.key, binding) else {
                continue;
            };
            let Some(positions) = index.map.get(&Full::new(key)) else {
                continue;
            };
            for position in positions {
                if let Some(Full { row, .. }) = rows.get_index(*position as usize)
                    && let Some(extended) = atom.extend(binding, row)
                {
                    joined.push(extended);
                }
            }
        }
        joined
    }

    /// The heads a rule derives: one per binding, or one per group for an aggregate.
    fn heads(&mut self, rule: &RulePlan) -> Vec<Row> {
        let bindings = self.bindings(rule);
        let Some(aggregate) = &rule.aggregate else {
            return bindings
                .iter()
                .filter_map(|binding| Expr::eval_all(&rule.head, binding))
                .collect();
        };
        // (group, value) pairs, sorted: each group's distinct values are then consecutive and
        // ascending, as the aggregate functions expect.
        let mut pairs: Vec<(Row, Val)> = Vec::with_capacity(bindings.len());
        for binding in &bindings {
            let Some(value) = binding.get(aggregate.slot) else {
                continue;
            };
            if let Some(key) = aggregate.key(&rule.head, binding) {
                pairs.push((key, value));
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        let mut heads = Vec::new();
        let mut values: Vec<(&Val, isize)> = Vec::new();
        let mut start = 0;
        while start < pairs.len() {
            let key = &pairs[start].0;
            let end = start
                + pairs[start..]
                    .iter()
                    .take_while(|(other, _)| other == key)
                    .count();
            values.clear();
            values.extend(pairs[start..end].iter().map(|(_, value)| (value, 1)));
            if let Some(result) = aggregate.value(&values) {
                heads.push(aggregate.head(key, result));
            }
            start = end;
        }
        heads
    }

    /// Adds rows to a relation; whether any was new.
    fn insert(&mut self, rel: RelId, rows: Vec<Row>) -> bool {
        let Some(set) = self.rels.get_mut(rel.index()) else {
            return false;
        };
        let before = set.len();
        set.extend(rows.into_iter().map(Full::new));
        set.len() > before
    }
}

/// The rows a source holds.
fn rows_of<'a>(
    rels: &'a [Set],
    pinned: &'a FastMap<(u32, u64), Set>,
    empty: &'a Set,
    source: Source,
) -> &'a Set {
    match source {
        Source::Current(rel) => rels.get(rel as usize).unwrap_or(empty),
        Source::Snapshot(rel, at) => pinned.get(&(rel, at)).unwrap_or(empty),
        Source::Empty => empty,
    }
}

fn project(row: &Row, columns: &[usize]) -> Row {
    Row::try_build(columns.len(), |index| row.get(columns[index])).unwrap_or_default()
}

/// One worker's share of the run.
struct Local {
    plan: Arc<RunPlan>,
    keep: Vec<bool>,
    nodes: BTreeMap<Val, NodeState>,
    /// Given facts by node, then tick.
    given: FastMap<Val, BTreeMap<u64, Facts>>,
    /// `crash` facts by node (holding at every tick).
    crash_facts: FastMap<Val, Facts>,
    /// Crash ticks of every crashed node.
    down: FastMap<Val, u64>,
    /// Omissions: (from, to, send tick).
    drops: FastSet<(Val, Val, u64)>,
    /// The ticks of some omission.
    drop_ticks: BTreeSet<u64>,
    /// Ticks at which every node is looked at.
    special: BTreeSet<u64>,
    /// Pinned reads: (relation, tick).
    pinned: Vec<(u32, u64)>,
    /// Message diffs by the tick they are delivered at.
    pending: BTreeMap<u64, Vec<(u32, Row, i32)>>,
    /// Nodes whose carried state changed at the last evaluated tick.
    dirty_next: BTreeSet<Val>,
    /// Relations shown, by index.
    shown: Vec<u32>,
    /// Per relation: read by some needed rule or shown (others need no contents).
    async_rules: Vec<usize>,
    next_rules: Vec<usize>,
    delete_rules: Vec<usize>,
}

impl Local {
    fn new(plan: Arc<RunPlan>, index: usize, peers: usize) -> Local {
        let peers = u64::try_from(peers.max(1)).unwrap_or(1);
        let index = u64::try_from(index).unwrap_or(0);
        let keep = needed_rules(&plan.rules, &plan.tables, &plan.shown, plan.relations);
        let owns = |node: Option<Val>| route(node) % peers == index;
        let relations = plan.relations;
        let mut nodes = BTreeMap::new();
        let shown = plan.shown.len();
        let mut given: FastMap<Val, BTreeMap<u64, Facts>> = FastMap::default();
        let mut special: BTreeSet<u64> = BTreeSet::new();
        special.insert(1);
        for (rel, row, tick) in &plan.given {
            special.insert(*tick);
            if *tick < plan.horizon {
                special.insert(tick + 1);
            }
            let Some(node) = row.get(0) else { continue };
            if !owns(Some(node)) {
                continue;
            }
            nodes
                .entry(node)
                .or_insert_with(|| NodeState::new(relations, shown));
            given
                .entry(node)
                .or_default()
                .entry(*tick)
                .or_default()
                .insert((
                    u32::try_from(rel.index()).unwrap_or(u32::MAX),
                    Full::new(row.clone()),
                ));
        }
        let mut crash_facts: FastMap<Val, Facts> = FastMap::default();
        for (rel, row) in &plan.crash_facts {
            let Some(node) = row.get(0) else { continue };
            if !owns(Some(node)) {
                continue;
            }
            nodes
                .entry(node)
                .or_insert_with(|| NodeState::new(relations, shown));
            crash_facts.entry(node).or_default().insert((
                u32::try_from(rel.index()).unwrap_or(u32::MAX),
                Full::new(row.clone()),
            ));
        }
        let mut down = FastMap::default();
        for (row, tick) in &plan.down {
            if let Some(node) = row.get(0) {
                down.insert(node, *tick);
                special.insert(*tick);
            }
        }
        let mut drops = FastSet::default();
        for (row, tick) in &plan.drops {
            if let (Some(from), Some(to)) = (row.get(0), row.get(1)) {
                drops.insert((from, to, *tick));
                special.insert(*tick);
                special.insert(tick + 1);
            }
        }
        let mut pinned = BTreeSet::new();
        for (rule, kept) in plan.rules.iter().zip(&keep) {
            if !kept {
                continue;
            }
            for (rel, at) in rule.reads() {
                if let Some(at) = at {
                    pinned.insert((u32::try_from(rel.index()).unwrap_or(u32::MAX), at));
                    special.insert(at);
                    special.insert(at + 1);
                }
            }
        }
        special.retain(|tick| *tick <= plan.horizon);
        let by_kind = |kind: RuleKind| -> Vec<usize> {
            plan.rules
                .iter()
                .enumerate()
                .filter(|(_, rule)| rule.kind == kind)
                .map(|(index, _)| index)
                .collect()
        };
        let drop_ticks = drops.iter().map(|(_, _, tick)| *tick).collect();
        Local {
            keep,
            drop_ticks,
            nodes,
            given,
            crash_facts,
            down,
            drops,
            special,
            pinned: pinned.into_iter().collect(),
            pending: BTreeMap::new(),
            dirty_next: BTreeSet::new(),
            shown: plan
                .shown
                .iter()
                .map(|rel| u32::try_from(rel.index()).unwrap_or(u32::MAX))
                .collect(),
            async_rules: by_kind(RuleKind::Async),
            next_rules: by_kind(RuleKind::Next),
            delete_rules: by_kind(RuleKind::Delete),
            plan,
        }
    }

    /// The next tick this worker must look at by itself after `tick`: the next tick when
    /// some node's carried state changed, else the next special tick.
    fn next_tick(&self, tick: u64) -> Option<u64> {
        let next = if self.dirty_next.is_empty() {
            self.special.range(tick + 1..).next().copied()
        } else {
            Some(tick + 1)
        };
        next.filter(|next| *next <= self.plan.horizon)
    }

    /// Evaluates `tick` at every node that may have changed; the items to send.
    fn tick(&mut self, tick: u64) -> Vec<Item> {
        let relations = self.plan.relations;
        let shown = self.shown.len();
        let mut dirty = std::mem::take(&mut self.dirty_next);
        if let Some(diffs) = self.pending.remove(&tick) {
            for (rel, row, diff) in diffs {
                let Some(node) = row.get(0) else { continue };
                self.nodes
                    .entry(node)
                    .or_insert_with(|| NodeState::new(relations, shown))
                    .deliver(rel, row, diff);
                dirty.insert(node);
            }
        }
        let special = self.special.contains(&tick);
        if special {
            dirty.extend(self.nodes.keys().copied());
        }
        let mut items = Vec::new();
        let mut changed = false;
        let mut nodes = std::mem::take(&mut self.nodes);
        for node in dirty {
            let Some(state) = nodes.get_mut(&node) else {
                continue;
            };
            changed |= self.node_tick(node, state, tick, special, &mut items);
        }
        self.nodes = nodes;
        if changed {
            items.push(Item::Changed(tick));
        }
        items
    }

    /// Looks at one node at `tick`; whether its base changed.
    fn node_tick(
        &mut self,
        node: Val,
        state: &mut NodeState,
        tick: u64,
        special: bool,
        items: &mut Vec<Item>,
    ) -> bool {
        let crashed = self.down.get(&node).is_some_and(|at| *at <= tick);
        let strict_down = self.plan.strict && crashed;
        let changed = match (state.was_down, strict_down) {
            (true, true) => false,
            (false, true) => self.had_base(node, state, tick),
            _ => self.base_changed(node, state, tick),
        };
        state.was_down = strict_down;
        let pinned_tick = self.pinned.iter().any(|(_, at)| *at == tick);
        let evaluated = changed || pinned_tick;
        state.heads_changed = false;
        if evaluated {
            self.evaluate(node, state, tick, strict_down, items);
        }
        state.inbox_delta.clear();
        if !evaluated {
            state.carried_delta.clear();
        }
        if tick < self.plan.horizon && (state.heads_changed || special) {
            self.send(node, state, tick, crashed, items);
        }
        changed
    }

    /// Whether the node's base at `tick − 1` held anything (it is empty at `tick`).
    fn had_base(&self, node: Val, state: &NodeState, tick: u64) -> bool {
        if tick <= 1 {
            return false;
        }
        let added =
            |delta: &FastMap<(u32, Full), bool>| delta.values().filter(|added| **added).count();
        let removed =
            |delta: &FastMap<(u32, Full), bool>| delta.values().filter(|added| !**added).count();
        let carried: usize = state.carried.iter().map(IndexSet::len).sum();
        let inbox: usize = state.inbox.iter().map(FastMap::len).sum();
        carried + removed(&state.carried_delta) > added(&state.carried_delta)
            || inbox + removed(&state.inbox_delta) > added(&state.inbox_delta)
            || self
                .given_at(node, tick - 1)
                .is_some_and(|facts| !facts.is_empty())
            || self
                .crash_facts
                .get(&node)
                .is_some_and(|facts| !facts.is_empty())
    }

    fn given_at(&self, node: Val, tick: u64) -> Option<&Facts> {
        self.given.get(&node).and_then(|ticks| ticks.get(&tick))
    }

    /// Whether the base at `tick` differs from the base at `tick − 1`, from how its parts
    /// changed: only the facts that entered or left some part can make a difference.
    fn base_changed(&self, node: Val, state: &NodeState, tick: u64) -> bool {
        let empty = Facts::default();
        let given_now = self.given_at(node, tick).unwrap_or(&empty);
        let given_before = if tick > 1 {
            self.given_at(node, tick - 1).unwrap_or(&empty)
        } else {
            &empty
        };
        let crash = self.crash_facts.get(&node).unwrap_or(&empty);
        let now = |key: &(u32, Full)| {
            let rel = key.0 as usize;
            state
                .carried
                .get(rel)
                .is_some_and(|set| set.contains(&key.1))
                || state
                    .inbox
                    .get(rel)
                    .is_some_and(|inbox| inbox.contains_key(&key.1))
                || given_now.contains(key)
                || crash.contains(key)
        };
        let before = |key: &(u32, Full)| {
            let rel = key.0 as usize;
            let carried = match state.carried_delta.get(key) {
                Some(added) => !added,
                None => state
                    .carried
                    .get(rel)
                    .is_some_and(|set| set.contains(&key.1)),
            };
            let delivered = match state.inbox_delta.get(key) {
                Some(added) => !added,
                None => state
                    .inbox
                    .get(rel)
                    .is_some_and(|inbox| inbox.contains_key(&key.1)),
            };
            carried || delivered || given_before.contains(key) || (tick > 1 && crash.contains(key))
        };
        let crash_new = if tick == 1 { crash } else { &empty };
        state
            .carried_delta
            .keys()
            .chain(state.inbox_delta.keys())
            .chain(given_now)
            .chain(given_before)
            .chain(crash_new)
            .any(|key| now(key) != before(key))
    }

    /// Which relations' bases differ from the last evaluation's, from how their parts changed.
    fn base_changes(
        &self,
        node: Val,
        state: &NodeState,
        tick: u64,
        strict_down: bool,
    ) -> Vec<bool> {
        let relations = self.plan.relations;
        if !state.evaluated || strict_down {
            return vec![true; relations];
        }
        let mut changed = vec![false; relations];
        let mut mark = |rel: u32| {
            if let Some(flag) = changed.get_mut(rel as usize) {
                *flag = true;
            }
        };
        for (rel, _) in state.carried_delta.keys().chain(state.inbox_delta.keys()) {
            mark(*rel);
        }
        let ticks = [Some(tick), tick.checked_sub(1)];
        for at in ticks.into_iter().flatten() {
            for (rel, _) in self.given_at(node, at).into_iter().flatten() {
                mark(*rel);
            }
        }
        if tick == 1 {
            for (rel, _) in self.crash_facts.get(&node).into_iter().flatten() {
                mark(*rel);
            }
        }
        changed
    }

    /// A relation's base: what it carries first (so that a table's contents start with
    /// exactly what it carried), then `extra` (its given and `crash` facts) and delivered
    /// messages.
    fn base(state: &NodeState, rel: usize, extra: &[&Full]) -> Set {
        let mut set = state.carried.get(rel).cloned().unwrap_or_default();
        set.extend(extra.iter().map(|full| (*full).clone()));
        if let Some(inbox) = state.inbox.get(rel) {
            set.extend(inbox.keys().cloned());
        }
        set
    }

    /// Derives the node's contents at `tick` from its base, and what it carries and sends.
    ///
    /// Work is skipped where nothing changed since the node's last evaluation: a component
    /// whose bases and inputs are unchanged keeps its contents, a temporal rule whose inputs
    /// are unchanged derives the same heads, and what is carried or sent is recomputed only
    /// where those changed.
    fn evaluate(
        &mut self,
        node: Val,
        state: &mut NodeState,
        tick: u64,
        strict_down: bool,
        items: &mut Vec<Item>,
    ) {
        let plan = Arc::clone(&self.plan);
        let relations = plan.relations;
        let base_changed = self.base_changes(node, state, tick, strict_down);
        let fresh = !state.evaluated;
        // Given and `crash` facts, by relation.
        let mut extra: Vec<Vec<&Full>> = vec![Vec::new(); relations];
        let given = self.given_at(node, tick);
        let crash = self.crash_facts.get(&node);
        for (rel, full) in given
            .into_iter()
            .flatten()
            .chain(crash.into_iter().flatten())
        {
            if let Some(list) = extra.get_mut(*rel as usize) {
                list.push(full);
            }
        }
        let mut rebuilt = vec![false; relations];
        let mut previous = std::mem::take(&mut state.contents);
        previous.resize_with(relations, Set::default);
        // Per relation: its contents may differ from the previous evaluation's.
        let mut changed = base_changed.clone();
        let reads_changed = |rule: &RulePlan, changed: &[bool]| {
            fresh
                || rule.reads().any(|(rel, at)| {
                    changed[rel.index()] || at.is_some_and(|at| tick == at || tick == at + 1)
                })
        };
        let mut db = Db {
            rels: vec![Set::default(); relations],
            pinned: &state.pinned,
            tick,
            indexes: FastMap::default(),
            projections: FastMap::default(),
            empty: Set::default(),
        };
        // Heads of the temporal rules that fired anew (the others keep theirs).
        let mut fired: Vec<usize> = Vec::new();
        if !strict_down {
            for component in &plan.components {
                let kept = |index: &&usize| self.keep[**index];
                let dirty = component
                    .relations
                    .iter()
                    .any(|rel| base_changed[rel.index()])
                    || component
                        .aggregates
                        .iter()
                        .chain(&component.rules)
                        .filter(kept)
                        .any(|index| reads_changed(&plan.rules[*index], &changed));
                if !dirty {
                    for rel in &component.relations {
                        db.rels[rel.index()] = std::mem::take(&mut previous[rel.index()]);
                    }
                    continue;
                }
                for rel in &component.relations {
                    db.rels[rel.index()] = Self::base(state, rel.index(), &extra[rel.index()]);
                    rebuilt[rel.index()] = true;
                }
                for index in component.aggregates.iter().filter(kept) {
                    let rule = &plan.rules[*index];
                    let derived = db.heads(rule);
                    db.insert(rule.head_rel, derived);
                }
                loop {
                    let mut grew = false;
                    for index in component.rules.iter().filter(kept) {
                        let rule = &plan.rules[*index];
                        let derived = db.heads(rule);
                        grew |= db.insert(rule.head_rel, derived);
                    }
                    if !component.recursive || !grew {
                        break;
                    }
                }
                for rel in &component.relations {
                    changed[rel.index()] = db.rels[rel.index()] != previous[rel.index()];
                }
            }
            for index in self
                .delete_rules
                .iter()
                .chain(&self.next_rules)
                .chain(&self.async_rules)
            {
                let rule = &plan.rules[*index];
                if reads_changed(rule, &changed) {
                    let derived = db.heads(rule);
                    state.temporal.insert(*index, derived);
                    fired.push(*index);
                }
            }
        } else {
            for (rel, flag) in changed.iter_mut().enumerate() {
                *flag = !previous[rel].is_empty();
            }
            state.temporal.clear();
            fired.extend(
                self.delete_rules
                    .iter()
                    .chain(&self.next_rules)
                    .chain(&self.async_rules),
            );
        }
        drop(db.indexes);
        drop(db.projections);
        let contents = db.rels;
        // What is carried, and how it changed: only relations whose contents changed (tables)
        // or whose `@next`/`delete` rules fired anew can carry something else.
        let mut recarry = vec![false; relations];
        for (rel, table) in plan.tables.iter().enumerate() {
            recarry[rel] = *table && changed[rel];
        }
        for index in &fired {
            let rule = &plan.rules[*index];
            if rule.kind != RuleKind::Async {
                recarry[rule.head_rel.index()] = true;
            }
        }
        let mut next: Vec<Vec<&Row>> = vec![Vec::new(); relations];
        let mut retracted: Vec<Set> = vec![Set::default(); relations];
        for index in &self.next_rules {
            let rel = plan.rules[*index].head_rel.index();
            if recarry[rel] {
                next[rel].extend(state.temporal.get(index).into_iter().flatten());
            }
        }
        for index in &self.delete_rules {
            let rel = plan.rules[*index].head_rel.index();
            if recarry[rel] {
                retracted[rel].extend(
                    state
                        .temporal
                        .get(index)
                        .into_iter()
                        .flatten()
                        .map(|row| Full::new(row.clone())),
                );
            }
        }
        state.carried_delta.clear();
        for rel in (0..relations).filter(|rel| recarry[*rel]) {
            let table = plan.tables[rel];
            let rel_id = u32::try_from(rel).unwrap_or(u32::MAX);
            let old = std::mem::take(&mut state.carried[rel]);
            // A table's contents rebuilt at this evaluation start with the old carried facts.
            let prefix = table && retracted[rel].is_empty() && rebuilt[rel];
            let mut new = if table && retracted[rel].is_empty() {
                contents[rel].clone()
            } else if table {
                contents[rel]
                    .iter()
                    .filter(|full| !retracted[rel].contains(*full))
                    .cloned()
                    .collect()
            } else {
                Set::default()
            };
            let before_next = new.len();
            new.extend(next[rel].iter().map(|row| Full::new((*row).clone())));
            if prefix {
                // Everything old is kept: only facts after it are new.
                for full in new.iter().skip(old.len().min(before_next)) {
                    if !old.contains(full) {
                        state.carried_delta.insert((rel_id, full.clone()), true);
                    }
                }
            } else {
                for full in new.iter().filter(|full| !old.contains(*full)) {
                    state.carried_delta.insert((rel_id, full.clone()), true);
                }
                for full in old.iter().filter(|full| !new.contains(*full)) {
                    state.carried_delta.insert((rel_id, full.clone()), false);
                }
            }
            state.carried[rel] = new;
        }
        if !state.carried_delta.is_empty() {
            self.dirty_next.insert(node);
        }
        for (position, rel) in self.shown.iter().enumerate() {
            if !changed[*rel as usize] {
                continue;
            }
            let new = &contents[*rel as usize];
            let old = &state.shown[position];
            for Full { row, .. } in new.iter().filter(|row| !old.contains(*row)) {
                items.push(Item::Shown(*rel, row.clone(), tick, 1));
            }
            for Full { row, .. } in old.iter().filter(|row| !new.contains(*row)) {
                items.push(Item::Shown(*rel, row.clone(), tick, -1));
            }
            state.shown[position] = new.clone();
        }
        for (rel, at) in &self.pinned {
            if *at == tick {
                state
                    .pinned
                    .insert((*rel, *at), contents[*rel as usize].clone());
            }
        }
        state.heads_changed = fired
            .iter()
            .any(|index| plan.rules[*index].kind == RuleKind::Async);
        if state.heads_changed {
            state.heads.clear();
            for index in &self.async_rules {
                let rel = u32::try_from(plan.rules[*index].head_rel.index()).unwrap_or(u32::MAX);
                for row in state.temporal.get(index).into_iter().flatten() {
                    state.heads.push((rel, row.clone()));
                }
            }
        }
        state.contents = contents;
        state.evaluated = true;
    }

    /// Sends the difference between what the node sends at `tick` (its `@async` heads, less
    /// everything when it is down and the scheduled omissions) and what it sent before.
    fn send(
        &mut self,
        node: Val,
        state: &mut NodeState,
        tick: u64,
        crashed: bool,
        items: &mut Vec<Item>,
    ) {
        let mut sent: FastSet<(u32, Full)> = FastSet::default();
        sent.reserve(state.heads.len());
        let drops_now = self.drop_ticks.contains(&tick);
        if !crashed {
            for (rel, row) in &state.heads {
                let Some(to) = row.get(0) else { continue };
                if drops_now && to != node && self.drops.contains(&(node, to, tick)) {
                    continue;
                }
                sent.insert((*rel, Full::new(row.clone())));
            }
        }
        for (rel, Full { row, .. }) in sent.iter().filter(|message| !state.sent.contains(*message))
        {
            items.push(Item::Message(*rel, row.clone(), 1));
        }
        for (rel, Full { row, .. }) in state.sent.iter().filter(|message| !sent.contains(*message))
        {
            items.push(Item::Message(*rel, row.clone(), -1));
        }
        state.sent = sent;
    }
}

/// Builds the run's dataflow in `scope`: one operator per worker in a loop of one tick;
/// worker 0 gathers into `gathered`.
pub(crate) fn build(scope: Scope<'_, u64>, plan: &Arc<RunPlan>, gathered: &Rc<RefCell<Gathered>>) {
    let mut local = Local::new(Arc::clone(plan), scope.index(), scope.peers());
    let sink = Rc::clone(gathered);
    let (handle, cycle) = scope.feedback::<Vec<Item>>(1);
    cycle
        .unary_frontier(
            Exchange::new(|item: &Item| match item {
                Item::Message(_, row, _) => route(row.get(0)),
                Item::Shown(..) | Item::Changed(_) => 0,
            }),
            "LocalTicks",
            move |initial: Capability<u64>, _info| {
                let mut capabilities: BTreeMap<u64, Capability<u64>> = BTreeMap::new();
                capabilities.insert(1, initial.delayed(&1));
                move |(input, frontier), output| {
                    input.for_each(|capability, data| {
                        let Some(time) = capability.least().copied() else {
                            return;
                        };
                        for item in data.drain(..) {
                            match item {
                                Item::Message(rel, row, diff) => {
                                    local
                                        .pending
                                        .entry(time)
                                        .or_default()
                                        .push((rel, row, diff));
                                }
                                Item::Shown(rel, row, tick, diff) => sink
                                    .borrow_mut()
                                    .updates
                                    .push(((rel, row), tick, isize::try_from(diff).unwrap_or(0))),
                                Item::Changed(tick) => {
                                    sink.borrow_mut().changes.insert(tick);
                                }
                            }
                        }
                        if time <= local.plan.horizon
                            && local.pending.contains_key(&time)
                            && !capabilities.contains_key(&time)
                            && let Some(retained) = capability.retain_least(0)
                        {
                            capabilities.insert(time, retained);
                        }
                    });
                    while let Some((&tick, _)) = capabilities.iter().next() {
                        if frontier.frontier().less_equal(&tick) {
                            break;
                        }
                        let Some(capability) = capabilities.remove(&tick) else {
                            break;
                        };
                        let items = local.tick(tick);
                        if !items.is_empty() {
                            output.session(&capability).give_iterator(items.into_iter());
                        }
                        if let Some(next) = local.next_tick(tick)
                            && !capabilities.contains_key(&next)
                        {
                            capabilities.insert(next, capability.delayed(&next));
                        }
                    }
                }
            },
        )
        .connect_loop(handle);
}
