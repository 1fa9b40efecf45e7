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
//! Rules are evaluated with the dataflow lowering's plans (`plan.rs`): each binding extended
//! atom by atom, depth first, through hash indexes built per evaluation, filters and antijoins
//! as soon as ready, recursive components iterated to a fixpoint.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::sync::Arc;

use graft_compiler::ir::{self, CompareOp, RelId, RuleKind, Term};
use graft_eval::hash::{FastBuild, FastHasher, FastMap, FastSet};
use hashbrown::hash_table::{Entry, HashTable};
use indexmap::{Equivalent, IndexSet};
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

/// Emptied sets kept for reuse: a tick builds and drops sets of similar sizes over and over,
/// and reusing their allocations saves the allocator returning the memory to the system and
/// the system zeroing it again on the next use.
#[derive(Default)]
struct Pool {
    sets: Vec<Set>,
}

/// How many emptied sets a worker keeps.
const POOL_SETS: usize = 64;

impl Pool {
    /// An empty set, reusing a kept allocation when there is one.
    fn take(&mut self) -> Set {
        self.sets.pop().unwrap_or_default()
    }

    /// A copy of `set` in a reused allocation.
    fn copy(&mut self, set: &Set) -> Set {
        let mut copy = self.take();
        copy.clone_from(set);
        copy
    }

    /// Keeps `set`'s allocation for reuse.
    fn give(&mut self, mut set: Set) {
        if set.capacity() > 0 && self.sets.len() < POOL_SETS {
            set.clear();
            self.sets.push(set);
        }
    }
}

/// A borrowed (relation, fact) pair, hashing and comparing as the owned one.
#[derive(Clone, Copy)]
struct FactRef<'a>(u32, &'a Full);

impl Hash for FactRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
        self.1.hash(state);
    }
}

impl Equivalent<(u32, Full)> for FactRef<'_> {
    fn equivalent(&self, key: &(u32, Full)) -> bool {
        self.0 == key.0 && *self.1 == key.1
    }
}

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

/// A relation's index as it crosses the dataflow.
fn rel_index(rel: RelId) -> u32 {
    u32::try_from(rel.index()).unwrap_or(u32::MAX)
}

/// The relations that more than one `@async` rule derives.
fn shared_sends(rules: &[RulePlan]) -> Vec<u32> {
    let mut count: BTreeMap<u32, usize> = BTreeMap::new();
    for rule in rules.iter().filter(|rule| rule.kind == RuleKind::Async) {
        *count.entry(rel_index(rule.head_rel)).or_default() += 1;
    }
    count
        .into_iter()
        .filter(|(_, count)| *count > 1)
        .map(|(rel, _)| rel)
        .collect()
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
    /// How `carried` changed at that evaluation, per relation that changed: either it was
    /// replaced (`carried_before` holds what it carried before), or it only grew, its old facts
    /// first, by the facts at these positions (`carried_grown`). No relation is in both.
    carried_before: Vec<(u32, Set)>,
    carried_grown: Vec<(u32, std::ops::Range<usize>)>,
    /// Messages delivered from the current tick on, per relation.
    inbox: Vec<Inbox>,
    /// The inbox entries (relation, position) whose sender count changed at the current tick.
    touched: Vec<(u32, usize)>,
    /// The shown relations' contents at the last evaluation, by position in the shown list.
    shown: Vec<Set>,
    /// What the node sends.
    out: Outbox,
    /// Pinned relations' contents at their tick.
    pinned: FastMap<(u32, u64), Set>,
    /// Down in the strict crash model at the last tick looked at: its base was empty.
    was_down: bool,
    /// Some message arrived at the tick being delivered (set only while delivering).
    arrived: bool,
    /// Evaluated at least once: `contents` and `temporal` hold that evaluation's results.
    evaluated: bool,
    /// Every relation's contents at the last evaluation.
    contents: Vec<Set>,
    /// The heads each `@next` and `delete` rule (by index) derived when it last fired.
    temporal: FastMap<usize, Vec<Row>>,
}

/// What a node's `@async` rules derive, and what its faults withheld.
#[derive(Default)]
struct Outbox {
    /// What each `@async` rule (by index) derived when it last fired (before faults).
    sends: FastMap<usize, Set>,
    /// For a relation that several `@async` rules derive: how many derive each message.
    shared: FastMap<u32, FastMap<Full, u32>>,
    /// How the messages derived (before faults) changed at the last evaluation: true for a
    /// message now derived, false for one no longer derived.
    changes: Vec<(u32, Full, bool)>,
    /// What faults withheld at the last tick something was sent.
    withheld: Withheld,
}

impl Outbox {
    /// Records what an `@async` rule (by index, deriving `rel`) now derives, noting in
    /// `changes` the messages that are now derived or no longer derived by any rule.
    /// Returns the rule's previous set.
    fn derive(&mut self, rel: u32, index: usize, new: Set) -> Set {
        let old = self.sends.remove(&index).unwrap_or_default();
        if same(&old, &new) {
            self.sends.insert(index, new);
            return old;
        }
        let added = new.iter().filter(|full| !old.contains(*full));
        let removed = old.iter().filter(|full| !new.contains(*full));
        match self.shared.get_mut(&rel) {
            // Another rule may derive the same message: count the rules deriving each.
            Some(counts) => {
                for full in added {
                    let count = counts.entry(full.clone()).or_insert(0);
                    *count += 1;
                    if *count == 1 {
                        self.changes.push((rel, full.clone(), true));
                    }
                }
                for full in removed {
                    if let Some(count) = counts.get_mut(full) {
                        *count -= 1;
                        if *count == 0 {
                            counts.remove(full);
                            self.changes.push((rel, full.clone(), false));
                        }
                    }
                }
            }
            None => {
                self.changes
                    .extend(added.map(|full| (rel, full.clone(), true)));
                self.changes
                    .extend(removed.map(|full| (rel, full.clone(), false)));
            }
        }
        self.sends.insert(index, new);
        old
    }

    /// Drops the changes that undo each other: a message of a relation several `@async` rules
    /// derive that one rule stopped deriving and another started deriving at the same
    /// evaluation is still derived, so nothing about it changed (it is not sent again).
    fn settle(&mut self) {
        if self.shared.is_empty() || self.changes.len() < 2 {
            return;
        }
        let mut net: FastMap<(u32, Full), i32> = FastMap::default();
        for (rel, full, added) in &self.changes {
            *net.entry((*rel, full.clone())).or_insert(0) += if *added { 1 } else { -1 };
        }
        if net.values().all(|diff| *diff != 0) {
            return;
        }
        self.changes.retain(|(rel, full, _)| {
            net.get(&(*rel, full.clone()))
                .is_some_and(|diff| *diff != 0)
        });
    }
}

/// The messages a node's faults withhold at a tick.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum Withheld {
    /// Nothing: every derived message is sent.
    #[default]
    Nothing,
    /// Those to these destinations (scheduled omissions), sorted.
    To(Vec<Val>),
    /// Everything: the node is down.
    All,
}

impl Withheld {
    fn withholds(&self, message: &Row) -> bool {
        match self {
            Withheld::Nothing => false,
            Withheld::All => true,
            Withheld::To(destinations) => message
                .get(0)
                .is_some_and(|to| destinations.binary_search(&to).is_ok()),
        }
    }
}

impl NodeState {
    /// A node's state before its first tick; `shared` are the relations that several
    /// `@async` rules derive.
    fn new(relations: usize, shown: usize, shared: &[u32]) -> NodeState {
        NodeState {
            carried: vec![Set::default(); relations],
            inbox: (0..relations).map(|_| Inbox::default()).collect(),
            shown: vec![Set::default(); shown],
            out: Outbox {
                shared: shared
                    .iter()
                    .map(|rel| (*rel, FastMap::default()))
                    .collect(),
                ..Outbox::default()
            },
            ..NodeState::default()
        }
    }

    /// Adds `diff` senders to a delivered message at `tick`, noting what it was before.
    fn deliver(&mut self, rel: u32, row: Row, diff: i32, tick: u64) {
        let Some(inbox) = self.inbox.get_mut(rel as usize) else {
            return;
        };
        let (position, added) = inbox.set.insert_full(Full::new(row));
        if added {
            inbox.meta.push(Delivery::default());
        }
        let Some(delivery) = inbox.meta.get_mut(position) else {
            return;
        };
        if delivery.touched != tick {
            delivery.touched = tick;
            delivery.before = delivery.senders > 0;
            self.touched.push((rel, position));
        }
        delivery.senders += diff;
    }

    /// The delivered messages that started (true) or stopped (false) being delivered at the
    /// current tick.
    fn inbox_changes(&self) -> impl Iterator<Item = (u32, &Full, bool)> {
        self.touched.iter().filter_map(|(rel, position)| {
            let inbox = self.inbox.get(*rel as usize)?;
            let delivery = inbox.meta.get(*position)?;
            let now = delivery.senders > 0;
            (now != delivery.before)
                .then(|| inbox.set.get_index(*position).map(|key| (*rel, key, now)))?
        })
    }

    /// A message's entry in the inbox, if some sender sends it or stopped at this tick.
    fn delivery(&self, rel: u32, key: &Full) -> Option<&Delivery> {
        let inbox = self.inbox.get(rel as usize)?;
        inbox.meta.get(inbox.set.get_index_of(key)?)
    }

    /// Whether a message is delivered at the current tick.
    fn delivered(&self, rel: u32, key: &Full) -> bool {
        self.delivery(rel, key)
            .is_some_and(|delivery| delivery.senders > 0)
    }

    /// Whether a message was delivered at the tick before the current one.
    fn delivered_before(&self, rel: u32, key: &Full, tick: u64) -> bool {
        self.delivery(rel, key).is_some_and(|delivery| {
            if delivery.touched == tick {
                delivery.before
            } else {
                delivery.senders > 0
            }
        })
    }

    /// Whether `carried[rel]`'s fact at `position` was added at the last evaluation as part
    /// of a grown range.
    fn grown(&self, rel: u32, position: usize) -> bool {
        self.carried_grown
            .iter()
            .any(|(grown, range)| *grown == rel && range.contains(&position))
    }

    /// Forgets how `carried` changed at the last evaluation (keeping the old sets for reuse).
    fn forget_carried_changes(&mut self, pool: &mut Pool) {
        for (_, set) in self.carried_before.drain(..) {
            pool.give(set);
        }
        self.carried_grown.clear();
    }

    /// Forgets the messages no sender sends any more, once the tick is evaluated.
    fn sweep(&mut self) {
        if self.touched.is_empty() {
            return;
        }
        let mut touched = std::mem::take(&mut self.touched);
        // A relation losing a quarter of its messages or more is filtered in one pass (and its
        // index rebuilt once); the others lose theirs one by one.
        let mut stopped = vec![0usize; self.inbox.len()];
        for (rel, position) in &touched {
            if let Some(inbox) = self.inbox.get(*rel as usize)
                && inbox.meta.get(*position).is_some_and(|d| d.senders == 0)
            {
                stopped[*rel as usize] += 1;
            }
        }
        let mut filtered = vec![false; self.inbox.len()];
        for (rel, inbox) in self.inbox.iter_mut().enumerate() {
            if stopped[rel] > 0 && stopped[rel] * 4 >= inbox.set.len() {
                let mut live = inbox.meta.iter().map(|d| d.senders > 0);
                // `retain` visits the entries in order.
                inbox.set.retain(|_| live.next().unwrap_or(true));
                inbox.meta.retain(|d| d.senders > 0);
                filtered[rel] = true;
            }
        }
        // Descending positions: a swap-remove moves the last entry, which is then live.
        touched.retain(|(rel, _)| !filtered[*rel as usize]);
        touched.sort_unstable_by(|a, b| b.cmp(a));
        for (rel, position) in touched.drain(..) {
            let Some(inbox) = self.inbox.get_mut(rel as usize) else {
                continue;
            };
            if inbox.meta.get(position).is_some_and(|d| d.senders == 0) {
                inbox.set.swap_remove_index(position);
                inbox.meta.swap_remove(position);
            }
        }
        self.touched = touched;
    }
}

/// The messages delivered to a node in one relation: each with its senders.
#[derive(Default)]
struct Inbox {
    /// Every message some sender sends (after a sweep; during a tick, also those whose last
    /// sender stopped at this tick).
    set: Set,
    /// By position in `set`.
    meta: Vec<Delivery>,
}

#[derive(Clone, Copy, Default)]
struct Delivery {
    /// How many senders send the message.
    senders: i32,
    /// The tick at which `senders` last changed, and whether it was delivered before.
    touched: u64,
    before: bool,
}

/// An index of one source (a relation, or a pinned snapshot) by some columns, built up to
/// `built` rows (sources only grow while a tick is evaluated).
///
/// Keys are never stored: the table holds a key's hash and a position, and a key is compared
/// with the columns of the row at that position. An entry takes 12 bytes, not the 70-odd of
/// a stored key, and building one builds no row.
#[derive(Default)]
struct Index {
    built: usize,
    /// Per key, its hash and the last position holding it; earlier ones are chained through
    /// `next`.
    table: HashTable<(u64, u32)>,
    /// Per position, the previous position with the same key (`NONE` for the first).
    next: Vec<u32>,
}

/// Where a worker's items go: gathered, and handed to the dataflow in batches.
struct Emit<'a> {
    items: Vec<Item>,
    flush: &'a mut dyn FnMut(&mut Vec<Item>),
}

impl Emit<'_> {
    fn push(&mut self, item: Item) {
        self.items.push(item);
        if self.items.len() >= FLUSH_ITEMS {
            (self.flush)(&mut self.items);
        }
    }
}

/// How many items a worker gathers before handing them to the dataflow.
const FLUSH_ITEMS: usize = 4096;

/// No position.
const NONE: u32 = u32::MAX;

impl Index {
    /// The positions of `rows` (the source indexed) whose `columns` hold `key`.
    fn positions<'a>(
        &'a self,
        rows: &Set,
        columns: &[usize],
        key: &Row,
    ) -> impl Iterator<Item = u32> + 'a {
        let mut at = find(&self.table, rows, columns, key).unwrap_or(NONE);
        std::iter::from_fn(move || {
            let position = at;
            if position == NONE {
                return None;
            }
            at = self.next.get(position as usize).copied().unwrap_or(NONE);
            Some(position)
        })
    }
}

/// The distinct projections of one source on some columns, built up to `built` rows: per
/// projection, its hash and the first position holding it (stored as in [`Index`]).
#[derive(Default)]
struct Projection {
    built: usize,
    table: HashTable<(u64, u32)>,
}

/// The position a table of (hash, position) entries over `rows` holds for `key`, the values
/// of `columns`.
fn find(table: &HashTable<(u64, u32)>, rows: &Set, columns: &[usize], key: &Row) -> Option<u32> {
    let hash = key.full_hash();
    table
        .find(hash, |(other, at)| {
            *other == hash
                && rows
                    .get_index(*at as usize)
                    .is_some_and(|full| full.row.columns_are(columns, key))
        })
        .map(|(_, at)| *at)
}

/// Adds the row at `position` of `rows` to a table of (hash, position) entries by `columns`;
/// the position already held for the same values, if any (`replace` says whether the new
/// position then takes its place).
fn enter(
    table: &mut HashTable<(u64, u32)>,
    rows: &Set,
    columns: &[usize],
    position: usize,
    replace: bool,
) -> Option<u32> {
    let row = &rows.get_index(position)?.row;
    let hash = row.columns_hash(columns)?;
    let position = u32::try_from(position).ok()?;
    let same = |(other, at): &(u64, u32)| {
        *other == hash
            && rows
                .get_index(*at as usize)
                .is_some_and(|full| full.row.same_columns(row, columns))
    };
    match table.entry(hash, same, |(hash, _)| *hash) {
        Entry::Occupied(mut entry) => {
            let held = entry.get().1;
            if replace {
                entry.get_mut().1 = position;
            }
            Some(held)
        }
        Entry::Vacant(entry) => {
            entry.insert((hash, position));
            None
        }
    }
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
        let rel = rel_index(rel);
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
        index.next.reserve(rows.len().saturating_sub(index.built));
        for position in index.built..rows.len() {
            let previous = enter(&mut index.table, rows, columns, position, true);
            index.next.push(previous.unwrap_or(NONE));
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
            enter(&mut projection.table, rows, columns, position, false);
        }
        projection.built = rows.len();
    }

    /// Calls `emit` with every binding of a rule's body, extending each atom by atom (depth
    /// first: no step's bindings are ever collected).
    fn each_binding(&mut self, rule: &RulePlan, emit: &mut dyn FnMut(&Row)) {
        // No binding when the first atom or a joined one has no fact: then no index is built.
        let empty = |atom: &AtomPlan| self.rows(self.source(atom.rel, atom.pinned)).is_empty();
        if empty(&rule.first)
            || rule
                .steps
                .iter()
                .any(|step| matches!(step, Step::Join(atom) if empty(atom)))
        {
            return;
        }
        // An antijoin with a relation that has no fact removes nothing: it is left out.
        let steps: Vec<&Step> = rule
            .steps
            .iter()
            .filter(|step| {
                !matches!(step, Step::Antijoin { rel, pinned, .. }
                    if self.rows(self.source(*rel, *pinned)).is_empty())
            })
            .collect();
        // The indexes and projections the steps read, brought up to date first.
        for step in &steps {
            match step {
                Step::Join(atom) => {
                    let source = self.source(atom.rel, atom.pinned);
                    self.index(source, &atom.key_columns);
                }
                Step::Antijoin {
                    rel,
                    pinned,
                    columns,
                    ..
                } => {
                    let source = self.source(*rel, *pinned);
                    self.projection(source, columns);
                }
                Step::Compare { .. } => {}
            }
        }
        let mut ready = Vec::with_capacity(steps.len());
        for step in steps {
            ready.push(match step {
                Step::Join(atom) => {
                    let source = self.source(atom.rel, atom.pinned);
                    let Some(index) = self.indexes.get(&(source, atom.key_columns.clone())) else {
                        return;
                    };
                    Ready::Join(atom, index, self.rows(source))
                }
                Step::Antijoin {
                    rel,
                    pinned,
                    columns,
                    key,
                    ..
                } => {
                    let source = self.source(*rel, *pinned);
                    let Some(projection) = self.projections.get(&(source, columns.clone())) else {
                        return;
                    };
                    Ready::Antijoin(key, projection, self.rows(source), columns)
                }
                Step::Compare { op, lhs, rhs } => Ready::Compare(*op, lhs, rhs),
            });
        }
        let constants = rule.first.constants();
        let source = self.source(rule.first.rel, rule.first.pinned);
        // One binding for the whole walk, extended in place.
        let mut binding = Row::zeros(rule.slots);
        for Full { row, .. } in self.rows(source) {
            if rule.first.start_into(&constants, row, &mut binding) {
                walk(&ready, &mut binding, emit);
            }
        }
    }

    /// The heads a rule derives: one per binding, or one per group for an aggregate.
    fn heads(&mut self, rule: &RulePlan) -> Vec<Row> {
        let Some(aggregate) = &rule.aggregate else {
            let mut heads = Vec::new();
            self.each_binding(rule, &mut |binding| {
                if let Some(head) = Expr::eval_all(&rule.head, binding) {
                    heads.push(head);
                }
            });
            return heads;
        };
        // Groups in the order they first appear, found by their hash; each group's values
        // chained through `values` (the last one first), as in a join index.
        let mut table: HashTable<(u64, u32)> = HashTable::new();
        let mut groups: Vec<(Row, u32)> = Vec::new();
        let mut values: Vec<(Val, u32)> = Vec::new();
        self.each_binding(rule, &mut |binding| {
            let (Some(value), Some(key)) = (
                binding.get(aggregate.slot),
                aggregate.key(&rule.head, binding),
            ) else {
                return;
            };
            let hash = key.full_hash();
            let same = |(other, group): &(u64, u32)| {
                *other == hash && groups.get(*group as usize).is_some_and(|(k, _)| *k == key)
            };
            let group = match table.entry(hash, same, |(hash, _)| *hash) {
                Entry::Occupied(entry) => entry.get().1,
                Entry::Vacant(entry) => {
                    let group = u32::try_from(groups.len()).unwrap_or(NONE);
                    entry.insert((hash, group));
                    groups.push((key, NONE));
                    group
                }
            };
            if let Some((_, last)) = groups.get_mut(group as usize) {
                values.push((value, *last));
                *last = u32::try_from(values.len() - 1).unwrap_or(NONE);
            }
        });
        // Each group's distinct values, ascending, as the aggregate functions expect.
        let mut heads = Vec::with_capacity(groups.len());
        let mut distinct: Vec<Val> = Vec::new();
        for (key, last) in &groups {
            distinct.clear();
            let mut at = *last;
            while let Some((value, previous)) = values.get(at as usize) {
                distinct.push(*value);
                at = *previous;
            }
            distinct.sort_unstable();
            distinct.dedup();
            if let Some(result) = aggregate.value(distinct.iter()) {
                heads.push(aggregate.head(key, result));
            }
        }
        heads
    }

    /// Adds the heads of a rule without an aggregate to `target`.
    fn heads_into(&mut self, rule: &RulePlan, target: &mut Set) {
        if rule.aggregate.is_some() {
            target.extend(self.heads(rule).into_iter().map(Full::new));
            return;
        }
        if rule.steps.is_empty() {
            // One head per fact of the only atom, at most: room for them all at once, rather
            // than growing (rehashing and copying) the set as they come.
            let first = self
                .rows(self.source(rule.first.rel, rule.first.pinned))
                .len();
            target.reserve(first);
        }
        self.each_binding(rule, &mut |binding| {
            if let Some(head) = Expr::eval_all(&rule.head, binding) {
                target.insert(Full::new(head));
            }
        });
    }

    /// Adds a deductive rule's heads to its relation; whether any was new. A rule that does
    /// not read its own head relation inserts them as they are derived.
    fn derive(&mut self, rule: &RulePlan) -> bool {
        let head = rule.head_rel.index();
        if rule.reads().any(|(rel, _)| rel == rule.head_rel) || head >= self.rels.len() {
            let derived = self.heads(rule);
            return self.insert(rule.head_rel, derived);
        }
        let mut target = std::mem::take(&mut self.rels[head]);
        let before = target.len();
        self.heads_into(rule, &mut target);
        let grew = target.len() > before;
        self.rels[head] = target;
        grew
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

/// Whether two sets hold the same facts: compared in order first (a set rebuilt from the same
/// inputs usually has the same order), then as sets.
fn same(a: &Set, b: &Set) -> bool {
    a.len() == b.len() && (a.iter().zip(b).all(|(x, y)| x == y) || a == b)
}

/// A body step with what it reads resolved.
enum Ready<'a> {
    Join(&'a AtomPlan, &'a Index, &'a Set),
    Antijoin(&'a [Expr], &'a Projection, &'a Set, &'a [usize]),
    Compare(CompareOp, &'a Expr, &'a Expr),
}

/// Extends `binding` through the remaining steps, calling `emit` with each complete one.
fn walk(steps: &[Ready<'_>], binding: &mut Row, emit: &mut dyn FnMut(&Row)) {
    let Some((step, rest)) = steps.split_first() else {
        emit(binding);
        return;
    };
    match step {
        Ready::Join(atom, index, rows) => {
            let Some(key) = Expr::eval_all(&atom.key, binding) else {
                return;
            };
            for position in index.positions(rows, &atom.key_columns, &key) {
                if let Some(Full { row, .. }) = rows.get_index(position as usize)
                    && atom.extend_into(binding, row)
                {
                    walk(rest, binding, emit);
                }
            }
        }
        Ready::Antijoin(key, projection, rows, columns) => {
            if Expr::eval_all(key, binding)
                .is_some_and(|values| find(&projection.table, rows, columns, &values).is_none())
            {
                walk(rest, binding, emit);
            }
        }
        Ready::Compare(op, lhs, rhs) => {
            if let (Some(lhs), Some(rhs)) = (lhs.eval(binding), rhs.eval(binding))
                && compare(*op, lhs, rhs)
            {
                walk(rest, binding, emit);
            }
        }
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
    pending: BTreeMap<u64, Vec<Vec<Item>>>,
    /// Nodes whose carried state changed at the last evaluated tick.
    dirty_next: BTreeSet<Val>,
    /// Relations shown, by index.
    shown: Vec<u32>,
    /// Per relation: read by some needed rule or shown (others need no contents).
    async_rules: Vec<usize>,
    /// Relations that several `@async` rules derive.
    shared: Vec<u32>,
    next_rules: Vec<usize>,
    delete_rules: Vec<usize>,
    pool: Pool,
    /// Per-node load counters, only when the run counts them (`None`: nothing is counted).
    loads: Option<Counting>,
}

/// The work one node did in a run: the facts its evaluations derived (the contents of every
/// relation some rule derives, per component it re-evaluated), and the messages it sent and
/// received (the local engine's message diffs: a message resent unchanged tick after tick
/// counts once, when it starts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeLoad {
    /// The worker that evaluated the node (a node's work stays on one worker).
    pub worker: usize,
    pub facts_derived: u64,
    pub messages_sent: u64,
    pub messages_received: u64,
}

/// Each node's load, as one worker counted it.
pub(crate) type Loads = BTreeMap<Val, NodeLoad>;

/// A worker's counters and which relations count as derived.
struct Counting {
    loads: Rc<RefCell<Loads>>,
    /// Per relation: the head of some rule.
    derived: Vec<bool>,
}

impl Local {
    fn new(
        plan: Arc<RunPlan>,
        index: usize,
        peers: usize,
        loads: Option<Rc<RefCell<Loads>>>,
    ) -> Local {
        let peers = u64::try_from(peers.max(1)).unwrap_or(1);
        let index = u64::try_from(index).unwrap_or(0);
        let keep = needed_rules(&plan.rules, &plan.tables, &plan.shown, plan.relations);
        let owns = |node: Option<Val>| route(node) % peers == index;
        let relations = plan.relations;
        let mut nodes = BTreeMap::new();
        let shown = plan.shown.len();
        let shared = shared_sends(&plan.rules);
        let mut given: FastMap<Val, BTreeMap<u64, Facts>> = FastMap::default();
        let mut special: BTreeSet<u64> = BTreeSet::new();
        special.insert(1);
        // The node a fact is at, when this worker owns it (its state is then created).
        let mut claim = |row: &Row| -> Option<Val> {
            let node = row.get(0).filter(|node| owns(Some(*node)))?;
            nodes
                .entry(node)
                .or_insert_with(|| NodeState::new(relations, shown, &shared));
            Some(node)
        };
        for (rel, row, tick) in &plan.given {
            special.insert(*tick);
            if *tick < plan.horizon {
                special.insert(tick + 1);
            }
            let Some(node) = claim(row) else { continue };
            given
                .entry(node)
                .or_default()
                .entry(*tick)
                .or_default()
                .insert((rel_index(*rel), Full::new(row.clone())));
        }
        let mut crash_facts: FastMap<Val, Facts> = FastMap::default();
        for (rel, row) in &plan.crash_facts {
            let Some(node) = claim(row) else { continue };
            crash_facts
                .entry(node)
                .or_default()
                .insert((rel_index(*rel), Full::new(row.clone())));
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
                    pinned.insert((rel_index(rel), at));
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
        let loads = loads.map(|loads| {
            let mut derived = vec![false; relations];
            for rule in &plan.rules {
                if let Some(flag) = derived.get_mut(rule.head_rel.index()) {
                    *flag = true;
                }
            }
            Counting { loads, derived }
        });
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
            shown: plan.shown.iter().map(|rel| rel_index(*rel)).collect(),
            async_rules: by_kind(RuleKind::Async),
            shared,
            next_rules: by_kind(RuleKind::Next),
            delete_rules: by_kind(RuleKind::Delete),
            pool: Pool::default(),
            loads,
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
    fn tick(&mut self, tick: u64, items: &mut Emit<'_>) {
        let relations = self.plan.relations;
        let shown = self.shown.len();
        let shared = &self.shared;
        let mut dirty = std::mem::take(&mut self.dirty_next);
        // The destinations, each once.
        let mut arrived = Vec::new();
        for item in self.pending.remove(&tick).into_iter().flatten().flatten() {
            let Item::Message(rel, row, diff) = item else {
                continue;
            };
            let Some(node) = row.get(0) else { continue };
            let state = self
                .nodes
                .entry(node)
                .or_insert_with(|| NodeState::new(relations, shown, shared));
            state.deliver(rel, row, diff, tick);
            if diff > 0
                && let Some(counting) = &self.loads
            {
                counting
                    .loads
                    .borrow_mut()
                    .entry(node)
                    .or_default()
                    .messages_received += 1;
            }
            if !state.arrived {
                state.arrived = true;
                arrived.push(node);
            }
        }
        for node in &arrived {
            if let Some(state) = self.nodes.get_mut(node) {
                state.arrived = false;
            }
        }
        dirty.extend(arrived);
        let special = self.special.contains(&tick);
        if special {
            dirty.extend(self.nodes.keys().copied());
        }
        let mut changed = false;
        let mut nodes = std::mem::take(&mut self.nodes);
        for node in dirty {
            let Some(state) = nodes.get_mut(&node) else {
                continue;
            };
            changed |= self.node_tick(node, state, tick, special, items);
        }
        self.nodes = nodes;
        if changed {
            items.push(Item::Changed(tick));
        }
    }

    /// Looks at one node at `tick`; whether its base changed.
    fn node_tick(
        &mut self,
        node: Val,
        state: &mut NodeState,
        tick: u64,
        special: bool,
        items: &mut Emit<'_>,
    ) -> bool {
        let crashed = self.down.get(&node).is_some_and(|at| *at <= tick);
        let strict_down = self.plan.strict && crashed;
        let (changed, matters) = match (state.was_down, strict_down) {
            (true, true) => (false, None),
            (false, true) => (self.had_base(node, state, tick), None),
            _ => {
                let (changed, matters) = self.base_changes(node, state, tick);
                (changed, Some(matters))
            }
        };
        state.was_down = strict_down;
        let pinned_tick = self.pinned.iter().any(|(_, at)| *at == tick);
        let evaluated = changed || pinned_tick;
        state.out.changes.clear();
        if evaluated {
            self.evaluate(node, state, tick, matters, items);
        }
        state.sweep();
        if !evaluated {
            state.forget_carried_changes(&mut self.pool);
        }
        if tick < self.plan.horizon && (!state.out.changes.is_empty() || special) {
            self.send(node, state, tick, crashed, items);
        }
        changed
    }

    /// Whether the node's base at `tick − 1` held anything (it is empty at `tick`).
    fn had_base(&self, node: Val, state: &NodeState, tick: u64) -> bool {
        if tick <= 1 {
            return false;
        }
        // What it carried at tick − 1: what it carries now, less the grown ranges, and the old
        // sets of those replaced instead of theirs.
        let replaced = state.carried_before.iter().map(|(rel, old)| {
            let now = state.carried.get(*rel as usize).map_or(0, IndexSet::len);
            (old.len(), now)
        });
        let (old, new) = replaced.fold((0, 0), |(old, new), (a, b)| (old + a, new + b));
        let carried: usize = state.carried.iter().map(IndexSet::len).sum::<usize>() + old;
        // Messages delivered at tick − 1: in the inbox (some stopped at this tick, none
        // started, since the node's base is empty).
        let inbox = state
            .inbox
            .iter()
            .flat_map(|inbox| &inbox.meta)
            .any(|d| d.senders > 0 || (d.touched == tick && d.before));
        let grown: usize = state
            .carried_grown
            .iter()
            .map(|(_, range)| range.len())
            .sum();
        carried > new + grown
            || inbox
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

    /// How the base at `tick` differs from the base at `tick − 1`, from how its parts changed
    /// (only the facts that entered or left some part can make a difference): whether it
    /// differs at all, and per relation whether it differs by more than facts the node's last
    /// evaluation derived anyway.
    ///
    /// The base at `tick − 1` is the base of the node's last evaluation (a node is evaluated
    /// whenever its base changes). A component whose bases only gained facts that its
    /// contents already held, and whose other inputs are unchanged, has the same contents: its
    /// rules are monotone in its own relations. A table that carried its contents forward is
    /// the common case, and those facts are then at the same positions.
    fn base_changes(&self, node: Val, state: &NodeState, tick: u64) -> (bool, Vec<bool>) {
        let empty = Facts::default();
        let given_now = self.given_at(node, tick).unwrap_or(&empty);
        let given_before = if tick > 1 {
            self.given_at(node, tick - 1).unwrap_or(&empty)
        } else {
            &empty
        };
        let crash = self.crash_facts.get(&node).unwrap_or(&empty);
        let now = |rel: u32, full: &Full| {
            let key = FactRef(rel, full);
            state
                .carried
                .get(rel as usize)
                .is_some_and(|set| set.contains(full))
                || state.delivered(rel, full)
                || given_now.contains(&key)
                || crash.contains(&key)
        };
        let before = |rel: u32, full: &Full| {
            let key = FactRef(rel, full);
            let replaced = state.carried_before.iter().find(|(other, _)| *other == rel);
            let carried = match replaced {
                Some((_, old)) => old.contains(full),
                None => state
                    .carried
                    .get(rel as usize)
                    .and_then(|set| set.get_index_of(full))
                    .is_some_and(|position| !state.grown(rel, position)),
            };
            carried
                || state.delivered_before(rel, full, tick)
                || given_before.contains(&key)
                || (tick > 1 && crash.contains(&key))
        };
        // Whether the last evaluation's contents hold a fact (looked for at `position` first).
        let derived = |rel: u32, full: &Full, position: Option<usize>| {
            state.contents.get(rel as usize).is_some_and(|contents| {
                position.is_some_and(|position| contents.get_index(position) == Some(full))
                    || contents.contains(full)
            })
        };
        let mut changed = false;
        let mut matters = vec![false; self.plan.relations];
        // One fact that entered or left some part (`is`: whether it is in the base, if known);
        // whether the relation's change now matters.
        let mut look = |rel: u32, full: &Full, position: Option<usize>, is: Option<bool>| {
            let Some(flag) = matters.get_mut(rel as usize) else {
                return true;
            };
            if *flag {
                return true;
            }
            let is = is.unwrap_or_else(|| now(rel, full));
            if is && derived(rel, full, position) {
                // Harmless whether or not it is new: only whether the base differs is left.
                changed = changed || !before(rel, full);
            } else if is != before(rel, full) {
                changed = true;
                *flag = true;
            }
            *flag
        };
        for (rel, old) in &state.carried_before {
            let Some(new) = state.carried.get(*rel as usize) else {
                continue;
            };
            let added = new.iter().filter(|full| !old.contains(*full));
            let removed = old.iter().filter(|full| !new.contains(*full));
            for (full, is) in added
                .map(|full| (full, true))
                .chain(removed.map(|f| (f, false)))
            {
                // A removed fact may still be in the base as a message or a given fact.
                if look(*rel, full, None, is.then_some(true)) {
                    break;
                }
            }
        }
        for (rel, range) in &state.carried_grown {
            let Some(set) = state.carried.get(*rel as usize) else {
                continue;
            };
            for position in range.clone() {
                if let Some(full) = set.get_index(position) {
                    look(*rel, full, Some(position), Some(true));
                }
            }
        }
        for (rel, full, _) in state.inbox_changes() {
            look(rel, full, None, None);
        }
        let crash_new = if tick == 1 { crash } else { &empty };
        for (rel, full) in given_now.iter().chain(given_before).chain(crash_new) {
            look(*rel, full, None, None);
        }
        // Before its first evaluation, every relation of a node counts as changed.
        if !state.evaluated {
            matters.fill(true);
        }
        (changed, matters)
    }

    /// A relation's base: what it carries first (so that a table's contents start with
    /// exactly what it carried), then `extra` (its given and `crash` facts) and delivered
    /// messages.
    fn base(pool: &mut Pool, state: &NodeState, rel: usize, extra: &[&Full]) -> Set {
        let carried = state.carried.get(rel);
        let Some(inbox) = state.inbox.get(rel) else {
            return Set::default();
        };
        // Only messages, all delivered: the inbox's set as it is.
        if carried.is_none_or(IndexSet::is_empty)
            && extra.is_empty()
            && inbox.meta.iter().all(|delivery| delivery.senders > 0)
        {
            return pool.copy(&inbox.set);
        }
        let mut set = match carried {
            Some(carried) => pool.copy(carried),
            None => pool.take(),
        };
        set.extend(extra.iter().map(|full| (*full).clone()));
        set.extend(
            inbox
                .set
                .iter()
                .zip(&inbox.meta)
                .filter(|(_, delivery)| delivery.senders > 0)
                .map(|(full, _)| full.clone()),
        );
        set
    }

    /// Derives the node's contents at `tick` from its base, and what it carries and sends.
    ///
    /// Work is skipped where nothing changed since the node's last evaluation: a component
    /// whose inputs are unchanged, and whose bases are unchanged or only gained facts it held
    /// (`base_changes`, per relation; `None` for a node down in the strict model), keeps its
    /// contents, a temporal rule whose inputs are unchanged derives the same heads, and what is
    /// carried or sent is recomputed only where those changed.
    fn evaluate(
        &mut self,
        node: Val,
        state: &mut NodeState,
        tick: u64,
        base_changes: Option<Vec<bool>>,
        items: &mut Emit<'_>,
    ) {
        let plan = Arc::clone(&self.plan);
        let mut pool = std::mem::take(&mut self.pool);
        let relations = plan.relations;
        // A node down in the strict model (its base and contents are empty) comes without.
        let strict_down = base_changes.is_none();
        let base_changed = base_changes.unwrap_or_else(|| vec![true; relations]);
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
                    db.rels[rel.index()] =
                        Self::base(&mut pool, state, rel.index(), &extra[rel.index()]);
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
                        grew |= db.derive(rule);
                    }
                    if !component.recursive || !grew {
                        break;
                    }
                }
                for rel in &component.relations {
                    changed[rel.index()] = !same(&db.rels[rel.index()], &previous[rel.index()]);
                }
                if let Some(counting) = &self.loads {
                    let derived: usize = component
                        .relations
                        .iter()
                        .filter(|rel| counting.derived[rel.index()])
                        .map(|rel| db.rels[rel.index()].len())
                        .sum();
                    counting
                        .loads
                        .borrow_mut()
                        .entry(node)
                        .or_default()
                        .facts_derived += derived as u64;
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
                    if rule.kind == RuleKind::Async {
                        let mut set = pool.take();
                        db.heads_into(rule, &mut set);
                        let old = state.out.derive(rel_index(rule.head_rel), *index, set);
                        pool.give(old);
                    } else {
                        state.temporal.insert(*index, db.heads(rule));
                    }
                    fired.push(*index);
                }
            }
            state.out.settle();
        } else {
            for (rel, flag) in changed.iter_mut().enumerate() {
                *flag = !previous[rel].is_empty();
            }
            state.temporal.clear();
            for index in &self.async_rules {
                let rel = rel_index(plan.rules[*index].head_rel);
                let old = state.out.derive(rel, *index, Set::default());
                pool.give(old);
            }
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
        state.forget_carried_changes(&mut pool);
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
        for rel in (0..relations).filter(|rel| recarry[*rel]) {
            let table = plan.tables[rel];
            let rel_id = u32::try_from(rel).unwrap_or(u32::MAX);
            let old = std::mem::take(&mut state.carried[rel]);
            // A table's contents rebuilt at this evaluation start with the old carried facts.
            let prefix = table && retracted[rel].is_empty() && rebuilt[rel];
            let mut new = if table && retracted[rel].is_empty() {
                pool.copy(&contents[rel])
            } else if table {
                let mut new = pool.take();
                new.extend(
                    contents[rel]
                        .iter()
                        .filter(|full| !retracted[rel].contains(*full))
                        .cloned(),
                );
                new
            } else {
                pool.take()
            };
            new.extend(next[rel].iter().map(|row| Full::new((*row).clone())));
            if prefix {
                // Everything old is kept, first: only the facts after it are new (and none of
                // them is old, as the set holds each fact once).
                debug_assert!(old.iter().zip(&new).all(|(a, b)| a == b));
                if new.len() > old.len() {
                    state.carried_grown.push((rel_id, old.len()..new.len()));
                }
            } else if !same(&old, &new) {
                state.carried[rel] = new;
                state.carried_before.push((rel_id, old));
                continue;
            }
            state.carried[rel] = new;
            pool.give(old);
        }
        if !state.carried_before.is_empty() || !state.carried_grown.is_empty() {
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
            let new = pool.copy(new);
            let old = std::mem::replace(&mut state.shown[position], new);
            pool.give(old);
        }
        for (rel, at) in &self.pinned {
            if *at == tick {
                state
                    .pinned
                    .insert((*rel, *at), contents[*rel as usize].clone());
            }
        }
        for set in previous {
            pool.give(set);
        }
        state.contents = contents;
        state.evaluated = true;
        self.pool = pool;
    }

    /// What the node's faults withhold at `tick`.
    fn withheld(&self, node: Val, tick: u64, crashed: bool) -> Withheld {
        if crashed {
            return Withheld::All;
        }
        if !self.drop_ticks.contains(&tick) {
            return Withheld::Nothing;
        }
        let mut destinations: Vec<Val> = self
            .drops
            .iter()
            .filter(|(from, to, at)| *from == node && *at == tick && *to != node)
            .map(|(_, to, _)| *to)
            .collect();
        if destinations.is_empty() {
            return Withheld::Nothing;
        }
        destinations.sort_unstable();
        Withheld::To(destinations)
    }

    /// Sends the difference between what the node sends at `tick` (its `@async` heads, less
    /// what faults withhold) and what it sent before.
    fn send(
        &mut self,
        node: Val,
        state: &mut NodeState,
        tick: u64,
        crashed: bool,
        items: &mut Emit<'_>,
    ) {
        let withheld = self.withheld(node, tick, crashed);
        let before = std::mem::replace(&mut state.out.withheld, withheld);
        let now = &state.out.withheld;
        let mut sent: u64 = 0;
        if *now == before {
            // Only the derived messages changed.
            for (rel, Full { row, .. }, added) in state.out.changes.drain(..) {
                if !now.withholds(&row) {
                    sent += u64::from(added);
                    items.push(Item::Message(rel, row, if added { 1 } else { -1 }));
                }
            }
            self.count_sent(node, sent);
            return;
        }
        // Faults changed: compare what was sent with what is sent, message by message. The
        // messages derived before are those derived now, less those newly derived, plus those
        // no longer derived.
        let changes: FastMap<(u32, &Full), bool> = state
            .out
            .changes
            .iter()
            .map(|(rel, full, added)| ((*rel, full), *added))
            .collect();
        let mut derived: Vec<(u32, &Full)> = Vec::new();
        for (index, set) in &state.out.sends {
            let rel = self
                .plan
                .rules
                .get(*index)
                .map_or(u32::MAX, |rule| rel_index(rule.head_rel));
            derived.extend(set.iter().map(|full| (rel, full)));
        }
        derived.extend(
            state
                .out
                .changes
                .iter()
                .filter(|(_, _, added)| !added)
                .map(|(rel, full, _)| (*rel, full)),
        );
        let mut seen: FastSet<(u32, &Full)> = FastSet::default();
        for (rel, full) in derived {
            if !seen.insert((rel, full)) {
                continue;
            }
            let (was, is) = match changes.get(&(rel, full)) {
                Some(true) => (false, true),
                Some(false) => (true, false),
                None => (true, true),
            };
            let sent_before = was && !before.withholds(&full.row);
            let sent_now = is && !now.withholds(&full.row);
            if sent_before != sent_now {
                sent += u64::from(sent_now);
                items.push(Item::Message(
                    rel,
                    full.row.clone(),
                    if sent_now { 1 } else { -1 },
                ));
            }
        }
        self.count_sent(node, sent);
    }

    /// Adds `sent` messages to the node's load, when the run counts loads.
    fn count_sent(&self, node: Val, sent: u64) {
        if let Some(counting) = &self.loads
            && sent > 0
        {
            counting
                .loads
                .borrow_mut()
                .entry(node)
                .or_default()
                .messages_sent += sent;
        }
    }
}

/// Builds the run's dataflow in `scope`: one operator per worker in a loop of one tick;
/// worker 0 gathers into `gathered`.
pub(crate) fn build(scope: Scope<'_, u64>, plan: &Arc<RunPlan>, gathered: &Rc<RefCell<Gathered>>) {
    build_counting(scope, plan, gathered, None);
}

/// [`build`], each worker also counting its nodes' loads into `loads` when given (the
/// counters cost nothing when not).
pub(crate) fn build_counting(
    scope: Scope<'_, u64>,
    plan: &Arc<RunPlan>,
    gathered: &Rc<RefCell<Gathered>>,
    loads: Option<Rc<RefCell<Loads>>>,
) {
    let mut local = Local::new(Arc::clone(plan), scope.index(), scope.peers(), loads);
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
                let mut buffer: Vec<Item> = Vec::new();
                capabilities.insert(1, initial.delayed(&1));
                move |(input, frontier), output| {
                    input.for_each(|capability, data| {
                        let Some(time) = capability.least().copied() else {
                            return;
                        };
                        // Messages stay in their batch until their tick.
                        let batch = std::mem::take(data);
                        let mut messages = false;
                        for item in &batch {
                            match item {
                                Item::Message(..) => messages = true,
                                Item::Shown(rel, row, tick, diff) => {
                                    sink.borrow_mut().updates.push((
                                        (*rel, row.clone()),
                                        *tick,
                                        isize::try_from(*diff).unwrap_or(0),
                                    ));
                                }
                                Item::Changed(tick) => {
                                    sink.borrow_mut().changes.insert(*tick);
                                }
                            }
                        }
                        if messages && time <= local.plan.horizon {
                            local.pending.entry(time).or_default().push(batch);
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
                        let mut session = output.session(&capability);
                        let mut send = |items: &mut Vec<Item>| {
                            session.give_container(items);
                            items.clear();
                        };
                        let mut emit = Emit {
                            items: std::mem::take(&mut buffer),
                            flush: &mut send,
                        };
                        local.tick(tick, &mut emit);
                        buffer = emit.items;
                        if !buffer.is_empty() {
                            send(&mut buffer);
                        }
                        drop(session);
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
