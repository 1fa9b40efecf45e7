//! The lowering: one differential dataflow whose timestamp is the tick.
//!
//! A relation's collection at time t holds its contents at tick t. Per relation:
//!
//! - **base**: the given facts (`+f` at their tick, `−f` at the next), the `crash` facts
//!   (from tick 1 on), and a feedback variable with a step of one tick that carries the
//!   `@next` heads, the delivered messages and, for tables, the contents less the
//!   retractions; `distinct`, and (strict crash model) less the facts at crashed nodes;
//! - **contents**: the base plus the heads of the deductive rules, `distinct`; relations of a
//!   recursive component are variables of one `iterate` scope.
//!
//! Time-varying conditions are collections too, never filters on the update stream (an
//! update at t says a fact holds from t on): `down` holds a node from its crash tick on,
//! `dropped` holds `(from, to)` at exactly the ticks of scheduled omissions, and a pinned
//! atom `p@k` reads a collection holding p's contents at k from tick k on.
//!
//! The feedback is cut at the run's horizon, so runs that never quiesce still end: nothing
//! at a time after the horizon is fed back.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use differential_dataflow::VecCollection;
use differential_dataflow::collection::AsCollection;
use differential_dataflow::lattice::Lattice;
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::operators::iterate::Variable;
use differential_dataflow::trace::implementations::{KeySpine, ValSpine};
use graft_compiler::ir::{RelId, RuleKind};
use timely::dataflow::Scope;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::operator::{Operator, empty};
use timely::dataflow::operators::vec::{Filter, Map as _};
use timely::order::Product;
use timely::progress::Timestamp;

use crate::plan::{AtomPlan, Component, RulePlan, Step};
use crate::value::{Expr, Row, Val, compare};

/// A timestamp whose outermost coordinate is the tick.
pub(crate) trait TickTime: Timestamp + Lattice + Ord + Clone {
    fn tick(&self) -> u64;
    /// The same time at another tick (inner coordinates kept).
    fn at_tick(&self, tick: u64) -> Self;
}

impl TickTime for u64 {
    fn tick(&self) -> u64 {
        *self
    }

    fn at_tick(&self, tick: u64) -> u64 {
        tick
    }
}

impl TickTime for Product<u64, u64> {
    fn tick(&self) -> u64 {
        self.outer
    }

    fn at_tick(&self, tick: u64) -> Self {
        Product::new(tick, self.inner)
    }
}

type Coll<'s, T> = VecCollection<'s, T, Row, isize>;
type Arr<'s, T> = Arranged<'s, TraceAgent<ValSpine<Row, Row, T, isize>>>;
type KeyArr<'s, T> = Arranged<'s, TraceAgent<KeySpine<Row, T, isize>>>;

/// Everything one run's dataflow is built from; the same on every worker.
#[derive(Clone, Debug)]
pub(crate) struct RunPlan {
    pub relations: usize,
    pub rules: Vec<RulePlan>,
    pub components: Vec<Component>,
    /// Per relation: it has a feedback variable (a table, or the head of `@next` or `@async`
    /// rules).
    pub feedback: Vec<bool>,
    pub tables: Vec<bool>,
    /// Given facts: relation, row, tick (ticks within `1..=horizon`).
    pub given: Vec<(RelId, Row, u64)>,
    /// `crash` facts, holding from tick 1 on.
    pub crash_facts: Vec<(RelId, Row)>,
    /// Crashed nodes (`[node]`) and their crash ticks.
    pub down: Vec<(Row, u64)>,
    /// Omissions: `[from, to]` and the send tick (never `from == to`).
    pub drops: Vec<(Row, u64)>,
    /// Delays: `[from, to]`, the send tick and how many ticks late (never `from == to`,
    /// never 0).
    pub delays: Vec<(Row, u64, u64)>,
    pub strict: bool,
    /// The last tick computed: `eot`, or `max_ticks + 1` (quiescence at `max_ticks` needs the
    /// base of the tick after it).
    pub horizon: u64,
    /// Relations whose contents are gathered for output, by [`RelId`] index.
    pub shown: Vec<RelId>,
    /// A traced run: worker 0 also gathers every rule's bindings (the rules are compiled with
    /// witnesses, see [`crate::plan::compile_rules_traced`]), from which the run's provenance
    /// and message log are built (`trace.rs`).
    pub trace: bool,
    /// A batch of executions in one dataflow: every row carries the execution's index in an
    /// extra first column (the rules are [`RulePlan::batched`]); nodes are (execution, node)
    /// pairs, and worker 0 gathers change ticks per execution.
    pub batched: bool,
}

/// What worker 0 gathers while the dataflow runs.
#[derive(Debug, Default)]
pub(crate) struct Gathered {
    /// Ticks at which some relation's base changed.
    pub changes: BTreeSet<u64>,
    /// Updates of the shown relations: ((relation index, row), tick, diff).
    pub updates: Vec<((u32, Row), u64, isize)>,
    /// In a traced run, updates of every rule's bindings: ((rule index, binding), tick, diff).
    pub bindings: Vec<((u32, Row), u64, isize)>,
    /// In a batched run, the (execution, tick) pairs at which some base changed.
    pub exec_changes: BTreeSet<(u64, u64)>,
}

/// The key of a node's condition (crashed, or an omission's endpoints) for a row: `[node]`,
/// or `[execution, node]` in a batched run (where `exec` holds the execution's index).
fn node_key(row: &Row, exec: Option<usize>, node: usize) -> Option<Row> {
    let node = row.get(node)?;
    match exec {
        None => Some(Row::from_vals(&[node])),
        Some(exec) => Some(Row::from_vals(&[row.get(exec)?, node])),
    }
}

/// The collections of one scope: relations, and caches of what rules read from them.
struct Env<'s, T: TickTime> {
    scope: Scope<'s, T>,
    rels: Vec<Option<Coll<'s, T>>>,
    arranged: HashMap<(RelId, Option<u64>, Vec<usize>), Arr<'s, T>>,
    projected: HashMap<(RelId, Option<u64>, Vec<usize>), KeyArr<'s, T>>,
    pinned: HashMap<(RelId, u64), Coll<'s, T>>,
    /// Nodes from their crash tick on, when rules must not fire at crashed nodes (strict).
    down: Option<Coll<'s, T>>,
    /// In a traced run, every rule's bindings built so far, each tagged with its rule index.
    traced: Option<Vec<Coll<'s, T>>>,
}

fn empty_collection<'s, T: TickTime>(scope: Scope<'s, T>) -> Coll<'s, T> {
    empty(scope).as_collection()
}

fn project(row: &Row, columns: &[usize]) -> Row {
    columns
        .iter()
        .filter_map(|column| row.get(*column))
        .collect()
}

impl<'s, T: TickTime> Env<'s, T> {
    fn new(scope: Scope<'s, T>, relations: usize) -> Env<'s, T> {
        Env {
            scope,
            rels: vec![None; relations],
            arranged: HashMap::new(),
            projected: HashMap::new(),
            pinned: HashMap::new(),
            down: None,
            traced: None,
        }
    }

    fn relation(&self, rel: RelId) -> Coll<'s, T> {
        self.rels
            .get(rel.index())
            .cloned()
            .flatten()
            .unwrap_or_else(|| empty_collection(self.scope))
    }

    /// The relation as an atom reads it: its contents, or its contents at tick k from tick k
    /// on (nothing before) when pinned to k.
    fn read(&mut self, rel: RelId, pinned: Option<u64>) -> Coll<'s, T> {
        let contents = self.relation(rel);
        match pinned {
            None => contents,
            Some(at) => self
                .pinned
                .entry((rel, at))
                .or_insert_with(|| {
                    contents
                        .inner
                        .filter(move |(_, time, _)| time.tick() <= at)
                        .as_collection()
                        // Only times up to `at` move (to `at`); later ones, which can still
                        // be in a batch's stamp after the filter, stay: `delay` must advance.
                        .delay(move |time| {
                            if time.tick() <= at {
                                time.at_tick(at)
                            } else {
                                time.clone()
                            }
                        })
                })
                .clone(),
        }
    }

    /// The relation arranged by the values of `columns`.
    fn arranged(&mut self, rel: RelId, pinned: Option<u64>, columns: &[usize]) -> Arr<'s, T> {
        let key = (rel, pinned, columns.to_vec());
        if let Some(found) = self.arranged.get(&key) {
            return found.clone();
        }
        let owned = columns.to_vec();
        let arranged = self
            .read(rel, pinned)
            .map(move |row| (project(&row, &owned), row))
            .arrange_by_key();
        self.arranged.insert(key, arranged.clone());
        arranged
    }

    /// The distinct projections of the relation on `columns`, arranged (for negation).
    ///
    /// A relation's contents are a set (every relation is built by `distinct`), so when the
    /// columns are all of the relation's (`whole`), the projection is the row itself and
    /// needs no `distinct`.
    fn projected(
        &mut self,
        rel: RelId,
        pinned: Option<u64>,
        columns: &[usize],
        whole: bool,
    ) -> KeyArr<'s, T> {
        let key = (rel, pinned, columns.to_vec());
        if let Some(found) = self.projected.get(&key) {
            return found.clone();
        }
        let owned = columns.to_vec();
        let contents = self.read(rel, pinned);
        let projected = if whole {
            contents.arrange_by_self()
        } else {
            contents
                .map(move |row| project(&row, &owned))
                .distinct()
                .arrange_by_self()
        };
        self.projected.insert(key, projected.clone());
        projected
    }

    /// Every binding of the rule's body (one row of slots each).
    fn bindings(&mut self, rule: &RulePlan) -> Coll<'s, T> {
        let mut bindings = self.scan(&rule.first, rule.slots);
        for step in &rule.steps {
            bindings = match step {
                Step::Join(atom) => {
                    let arranged = self.arranged(atom.rel, atom.pinned, &atom.key_columns);
                    let atom = atom.clone();
                    let key = atom.key.clone();
                    bindings
                        .flat_map(move |binding| {
                            Expr::eval_all(&key, &binding).map(|values| (values, binding))
                        })
                        .join_core(arranged, move |_key, binding, row| {
                            atom.extend(binding, row)
                        })
                }
                Step::Compare { op, lhs, rhs } => {
                    let (op, lhs, rhs) = (*op, lhs.clone(), rhs.clone());
                    bindings.filter(
                        move |binding| match (lhs.eval(binding), rhs.eval(binding)) {
                            (Some(lhs), Some(rhs)) => compare(op, lhs, rhs),
                            _ => false,
                        },
                    )
                }
                Step::Antijoin {
                    rel,
                    pinned,
                    columns,
                    key,
                    whole,
                } => {
                    let present = self.projected(*rel, *pinned, columns, *whole);
                    let key = key.clone();
                    let keyed = bindings.flat_map(move |binding| {
                        Expr::eval_all(&key, &binding).map(|values| (values, binding))
                    });
                    let matched = keyed
                        .clone()
                        .join_core(present, |_key, binding, ()| Some(binding.clone()))
                        .negate();
                    keyed.map(|(_, binding)| binding).concat(matched)
                }
            };
        }
        if let (Some(down), Some(location)) = (self.down.clone(), rule.location) {
            let exec = rule.exec;
            bindings = bindings
                .flat_map(move |binding| {
                    node_key(&binding, exec, location).map(|node| (node, binding))
                })
                .antijoin(down)
                .map(|(_, binding)| binding);
        }
        bindings
    }

    /// The bindings of a body's first atom.
    fn scan(&mut self, atom: &AtomPlan, slots: usize) -> Coll<'s, T> {
        let atom = atom.clone();
        let constants = atom.constants();
        self.read(atom.rel, atom.pinned)
            .flat_map(move |row| atom.start(&constants, &row, slots))
    }

    /// The bindings of the rule at `index` of the plan; in a traced run also kept, tagged
    /// with the index, for worker 0.
    fn traced_bindings(&mut self, index: usize, rule: &RulePlan) -> Coll<'s, T> {
        let bindings = self.bindings(rule);
        if let Some(traced) = self.traced.as_mut() {
            let tag = Val::Int(i64::try_from(index).unwrap_or(i64::MAX));
            traced.push(
                bindings
                    .clone()
                    .map(move |binding| std::iter::once(tag).chain(binding.iter()).collect()),
            );
        }
        bindings
    }

    /// The heads the rule at `index` derives: one per binding, or one per group for an
    /// aggregate.
    fn heads(&mut self, index: usize, rule: &RulePlan) -> Coll<'s, T> {
        let bindings = self.traced_bindings(index, rule);
        let head = rule.head.clone();
        let Some(aggregate) = rule.aggregate.clone() else {
            return bindings.flat_map(move |binding| Expr::eval_all(&head, &binding));
        };
        let grouping = aggregate.clone();
        let heading = aggregate.clone();
        bindings
            .flat_map(move |binding| {
                let value = binding.get(grouping.slot)?;
                Some((grouping.key(&head, &binding)?, value))
            })
            .reduce(move |_key, values: &[(&Val, isize)], output| {
                if let Some(result) = aggregate.value(values.iter().map(|(value, _)| *value)) {
                    output.push((result, 1));
                }
            })
            .map(move |(key, value)| heading.head(&key, value))
    }
}

/// The raw updates of a worker's share of `items` (every `peers`-th, from `index`).
fn share<I: Clone>(items: &[I], index: usize, peers: usize) -> impl Iterator<Item = I> + '_ {
    items
        .iter()
        .enumerate()
        .filter(move |(position, _)| position % peers.max(1) == index)
        .map(|(_, item)| item.clone())
}

fn raw_input<'s>(scope: Scope<'s, u64>, updates: Vec<(Row, u64, isize)>) -> Coll<'s, u64> {
    use differential_dataflow::input::Input;
    let (_handle, collection) = scope.new_collection_from_raw(updates);
    collection
}

/// Builds the run's dataflow in `scope`; worker 0 gathers into `gathered`.
pub(crate) fn build<'s>(scope: Scope<'s, u64>, plan: &RunPlan, gathered: &Rc<RefCell<Gathered>>) {
    let index = scope.index();
    let peers = scope.peers();
    let horizon = plan.horizon;
    let mut env: Env<'s, u64> = Env::new(scope, plan.relations);
    if plan.trace {
        env.traced = Some(Vec::new());
    }

    // Time-varying conditions.
    let down = (!plan.down.is_empty()).then(|| {
        let updates = share(&plan.down, index, peers)
            .map(|(row, tick)| (row, tick, 1))
            .collect();
        raw_input(scope, updates)
    });
    let dropped = (!plan.drops.is_empty()).then(|| {
        let mut updates = Vec::new();
        for (row, tick) in share(&plan.drops, index, peers) {
            updates.push((row.clone(), tick, 1));
            updates.push((row, tick + 1, -1));
        }
        raw_input(scope, updates)
    });
    // `(from, to) -> [ticks late]` at exactly the ticks of scheduled delays.
    let delaying = (!plan.delays.is_empty()).then(|| {
        let mut updates = Vec::new();
        for (row, tick, by) in share(&plan.delays, index, peers) {
            let by = Val::Int(i64::try_from(by).unwrap_or(i64::MAX));
            let entry: Row = row.iter().chain(std::iter::once(by)).collect();
            updates.push((entry.clone(), tick, 1));
            updates.push((entry, tick + 1, -1));
        }
        raw_input(scope, updates).map(|entry| {
            let route: Row = entry.iter().take(entry.len().saturating_sub(1)).collect();
            let by: Row = entry.iter().skip(entry.len().saturating_sub(1)).collect();
            (route, by)
        })
    });
    if plan.strict {
        env.down = down.clone();
    }

    // Base collections.
    let mut given: Vec<Vec<(Row, u64, isize)>> = vec![Vec::new(); plan.relations];
    let mut has_given = vec![false; plan.relations];
    for (rel, _, _) in &plan.given {
        has_given[rel.index()] = true;
    }
    for (rel, _) in &plan.crash_facts {
        has_given[rel.index()] = true;
    }
    for (rel, row, tick) in share(&plan.given, index, peers) {
        if let Some(list) = given.get_mut(rel.index()) {
            list.push((row.clone(), tick, 1));
            if tick < horizon {
                list.push((row, tick + 1, -1));
            }
        }
    }
    for (rel, row) in share(&plan.crash_facts, index, peers) {
        if let Some(list) = given.get_mut(rel.index()) {
            list.push((row, 1, 1));
        }
    }
    let mut variables = Vec::new();
    let mut bases: Vec<Coll<'s, u64>> = Vec::new();
    for (rel_index, updates) in given.into_iter().enumerate() {
        let mut sources = Vec::new();
        if has_given[rel_index] {
            sources.push(raw_input(scope, updates));
        }
        if plan.feedback[rel_index] {
            let (variable, carried) = Variable::new(scope, 1_u64);
            variables.push((rel_index, variable));
            sources.push(carried);
        }
        if sources.is_empty() {
            continue;
        }
        let mut base = differential_dataflow::collection::concatenate(scope, sources);
        if let Some(down) = env.down.clone() {
            // The location is column 0, after the execution's index in a batched run.
            let (exec, location) = if plan.batched {
                (Some(0), 1)
            } else {
                (None, 0)
            };
            base = base
                .flat_map(move |row| node_key(&row, exec, location).map(|node| (node, row)))
                .antijoin(down)
                .map(|(_, row)| row);
        }
        let base = base.distinct();
        bases.push(base.clone());
        env.rels[rel_index] = Some(base);
    }

    // Deductive rules, component by component.
    for component in &plan.components {
        build_component(&mut env, plan, component);
    }

    // Temporal rules: what each relation's variable carries into the next tick.
    let mut carried: Vec<Vec<Coll<'s, u64>>> = vec![Vec::new(); plan.relations];
    let mut deleted: Vec<Vec<Coll<'s, u64>>> = vec![Vec::new(); plan.relations];
    for (index, rule) in plan.rules.iter().enumerate() {
        let target = rule.head_rel.index();
        match rule.kind {
            RuleKind::Deductive => {}
            RuleKind::Next => {
                let heads = env.heads(index, rule);
                carried[target].push(heads);
            }
            RuleKind::Delete => {
                let heads = env.heads(index, rule);
                deleted[target].push(heads);
            }
            RuleKind::Async => {
                let messages = messages(
                    &mut env,
                    index,
                    rule,
                    down.clone(),
                    dropped.clone(),
                    delaying.clone(),
                );
                carried[target].push(messages);
            }
        }
    }
    for (rel_index, variable) in variables {
        let mut parts = std::mem::take(&mut carried[rel_index]);
        if plan.tables[rel_index] {
            let contents = env.relation(RelId::from_index(rel_index));
            let retractions = std::mem::take(&mut deleted[rel_index]);
            let kept = if retractions.is_empty() {
                contents
            } else {
                let retracted =
                    differential_dataflow::collection::concatenate(scope, retractions).distinct();
                contents
                    .map(|row| (row, ()))
                    .antijoin(retracted)
                    .map(|(row, ())| row)
            };
            parts.push(kept);
        }
        let next = differential_dataflow::collection::concatenate(scope, parts);
        let bounded = next
            .inner
            .filter(move |(_, time, _)| *time < horizon)
            .as_collection();
        variable.set(bounded);
    }

    // What worker 0 gathers: the ticks at which bases changed, and the shown relations.
    // A base is the output of `distinct`: every update it emits is a net change of its
    // contents, so its times are the ticks of changes. Each batch sends its distinct times.
    let exec_bases = if plan.batched {
        bases.clone()
    } else {
        Vec::new()
    };
    let changes = differential_dataflow::collection::concatenate(scope, bases)
        .inner
        .unary(Pipeline, "ChangeTimes", |_capability, _info| {
            let mut times: Vec<u64> = Vec::new();
            move |input, output| {
                input.for_each_stamp(|capability, data| {
                    times.clear();
                    for batch in data {
                        times.extend(batch.iter().map(|(_, time, _)| *time));
                    }
                    times.sort_unstable();
                    times.dedup();
                    let mut session = output.session(&capability);
                    for time in times.drain(..) {
                        session.give(time);
                    }
                });
            }
        });
    let sink = Rc::clone(gathered);
    changes.sink(
        Exchange::new(|_: &u64| 0_u64),
        "GatherChanges",
        move |(input, _frontier)| {
            input.for_each(|_capability, data| {
                sink.borrow_mut().changes.extend(data.drain(..));
            });
        },
    );
    if plan.batched {
        // Per execution: the index in column 0 of every base row.
        let sink = Rc::clone(gathered);
        differential_dataflow::collection::concatenate(scope, exec_bases)
            .inner
            .flat_map(|(row, time, _)| match row.get(0) {
                Some(Val::Int(exec)) => Some((u64::try_from(exec).unwrap_or(u64::MAX), time)),
                _ => None,
            })
            .sink(
                Exchange::new(|_: &(u64, u64)| 0_u64),
                "GatherExecutionChanges",
                move |(input, _frontier)| {
                    input.for_each(|_capability, data| {
                        sink.borrow_mut().exec_changes.extend(data.drain(..));
                    });
                },
            );
    }
    if let Some(traced) = env.traced.take().filter(|traced| !traced.is_empty()) {
        let sink = Rc::clone(gathered);
        differential_dataflow::collection::concatenate(scope, traced)
            .inner
            .sink(
                Exchange::new(|_: &(Row, u64, isize)| 0_u64),
                "GatherBindings",
                move |(input, _frontier)| {
                    input.for_each(|_capability, data| {
                        let mut gathered = sink.borrow_mut();
                        for (tagged, time, diff) in data.drain(..) {
                            let Some(Val::Int(tag)) = tagged.get(0) else {
                                continue;
                            };
                            let binding: Row = tagged.iter().skip(1).collect();
                            let tag = u32::try_from(tag).unwrap_or(u32::MAX);
                            gathered.bindings.push(((tag, binding), time, diff));
                        }
                    });
                },
            );
    }
    if plan.shown.is_empty() {
        return;
    }
    let shown: Vec<Coll<'s, u64>> = plan
        .shown
        .iter()
        .map(|rel| {
            let tag = u32::try_from(rel.index()).unwrap_or(u32::MAX);
            env.relation(*rel).map(move |row| {
                std::iter::once(Val::Int(i64::from(tag)))
                    .chain(row.iter())
                    .collect::<Row>()
            })
        })
        .collect();
    let sink = Rc::clone(gathered);
    differential_dataflow::collection::concatenate(scope, shown)
        .inner
        .sink(
            Exchange::new(|_: &(Row, u64, isize)| 0_u64),
            "GatherShown",
            move |(input, _frontier)| {
                input.for_each(|_capability, data| {
                    let mut gathered = sink.borrow_mut();
                    for (tagged, time, diff) in data.drain(..) {
                        let Some(Val::Int(tag)) = tagged.get(0) else {
                            continue;
                        };
                        let row: Row = tagged.iter().skip(1).collect();
                        let tag = u32::try_from(tag).unwrap_or(u32::MAX);
                        gathered.updates.push(((tag, row), time, diff));
                    }
                });
            },
        );
}

/// The messages an `@async` rule sends that arrive, as facts at their destination at the
/// tick before they arrive (the feedback adds one tick): lost when the sender is down at the
/// send tick, or when an omission from the sender to the destination is scheduled at the send
/// tick; later by its delay when one is scheduled for the channel at the send tick.
fn messages<'s>(
    env: &mut Env<'s, u64>,
    index: usize,
    rule: &RulePlan,
    down: Option<Coll<'s, u64>>,
    dropped: Option<Coll<'s, u64>>,
    delaying: Option<VecCollection<'s, u64, (Row, Row), isize>>,
) -> Coll<'s, u64> {
    let bindings = env.traced_bindings(index, rule);
    let head = rule.head.clone();
    let location = rule.location;
    let exec = rule.exec;
    // The destination is the fact's location: column 0, or 1 after a batch's execution index.
    let destination = usize::from(exec.is_some());
    let mut sent = bindings.flat_map(move |binding| {
        let sender = node_key(&binding, exec, location?)?;
        Expr::eval_all(&head, &binding).map(|values| (sender, values))
    });
    if let Some(down) = down {
        sent = sent.antijoin(down);
    }
    let mut delivered = sent.map(move |(sender, fact)| {
        let route: Row = sender.iter().chain(fact.get(destination)).collect();
        (route, fact)
    });
    if let Some(dropped) = dropped {
        delivered = delivered.antijoin(dropped);
    }
    let Some(delaying) = delaying else {
        return delivered.map(|(_, fact)| fact);
    };
    // The messages of a delayed channel at its delay's send tick (they hold there only, as
    // the delay does), moved that many ticks later; the others as they are.
    let late = delivered
        .clone()
        .join_map(delaying.clone(), |_route, fact, by| {
            (fact.clone(), by.clone())
        })
        .inner
        .map(|((fact, by), time, diff)| {
            let by = match by.get(0) {
                Some(Val::Int(by)) => u64::try_from(by).unwrap_or(0),
                _ => 0,
            };
            (fact, time.saturating_add(by), diff)
        })
        .as_collection();
    let on_time = delivered
        .antijoin(delaying.map(|(route, _)| route).distinct())
        .map(|(_, fact)| fact);
    on_time.concat(late)
}

/// Builds the contents of one component's relations into `env`.
fn build_component<'s>(env: &mut Env<'s, u64>, plan: &RunPlan, component: &Component) {
    // Aggregates read complete lower relations: they join the base as seeds.
    let mut seeds: HashMap<RelId, Vec<Coll<'s, u64>>> = HashMap::new();
    for rel in &component.relations {
        if let Some(base) = env.rels[rel.index()].clone() {
            seeds.entry(*rel).or_default().push(base);
        }
    }
    let mut any_rule = false;
    for index in &component.aggregates {
        let rule = &plan.rules[*index];
        let heads = env.heads(*index, rule);
        seeds.entry(rule.head_rel).or_default().push(heads);
        any_rule = true;
    }
    if component.rules.is_empty() && !any_rule {
        return;
    }
    let scope = env.scope;
    if !component.recursive {
        let mut parts = seeds;
        for index in &component.rules {
            let rule = &plan.rules[*index];
            let heads = env.heads(*index, rule);
            parts.entry(rule.head_rel).or_default().push(heads);
        }
        for (rel, list) in parts {
            let contents = differential_dataflow::collection::concatenate(scope, list).distinct();
            env.rels[rel.index()] = Some(contents);
        }
        return;
    }
    // A recursive component: one iterate scope, a variable per relation.
    let members: BTreeSet<RelId> = component.relations.iter().copied().collect();
    let mut reads: BTreeSet<RelId> = BTreeSet::new();
    for index in &component.rules {
        for (rel, _) in plan.rules[*index].reads() {
            if !members.contains(&rel) {
                reads.insert(rel);
            }
        }
    }
    let outer_rels: Vec<(RelId, Coll<'s, u64>)> =
        reads.iter().map(|rel| (*rel, env.relation(*rel))).collect();
    let outer_down = env.down.clone();
    let traced = env.traced.is_some();
    let seed_list: Vec<(RelId, Coll<'s, u64>)> = members
        .iter()
        .map(|rel| {
            let list = seeds.remove(rel).unwrap_or_default();
            let seed = if list.is_empty() {
                empty_collection(scope)
            } else {
                differential_dataflow::collection::concatenate(scope, list)
            };
            (*rel, seed)
        })
        .collect();
    let (results, inner_traced) = scope.iterative::<u64, _, _>(|inner| {
        let mut inner_env: Env<'_, Product<u64, u64>> = Env::new(inner, plan.relations);
        if traced {
            inner_env.traced = Some(Vec::new());
        }
        for (rel, collection) in outer_rels {
            inner_env.rels[rel.index()] = Some(collection.enter(inner));
        }
        inner_env.down = outer_down.map(|down| down.enter(inner));
        let mut variables = Vec::new();
        let mut entered_seeds = Vec::new();
        for (rel, seed) in seed_list {
            let entered = seed.enter(inner);
            let (variable, current) = Variable::new_from(entered.clone(), Product::new(0, 1));
            inner_env.rels[rel.index()] = Some(current);
            variables.push((rel, variable));
            entered_seeds.push((rel, entered));
        }
        let mut parts: HashMap<RelId, Vec<Coll<'_, Product<u64, u64>>>> = HashMap::new();
        for (rel, seed) in entered_seeds {
            parts.entry(rel).or_default().push(seed);
        }
        for index in &component.rules {
            let rule = &plan.rules[*index];
            let heads = inner_env.heads(*index, rule);
            parts.entry(rule.head_rel).or_default().push(heads);
        }
        let mut results = Vec::new();
        for (rel, variable) in variables {
            let list = parts.remove(&rel).unwrap_or_default();
            let next = differential_dataflow::collection::concatenate(inner, list).distinct();
            variable.set(next.clone());
            results.push((rel, next.leave(scope)));
        }
        // The bindings at a tick are those of the iteration's fixpoint: leaving the scope
        // sums their changes over the iterations.
        let inner_traced: Vec<Coll<'s, u64>> = inner_env
            .traced
            .take()
            .unwrap_or_default()
            .into_iter()
            .map(|bindings| bindings.leave(scope))
            .collect();
        (results, inner_traced)
    });
    if let Some(traced) = env.traced.as_mut() {
        traced.extend(inner_traced);
    }
    for (rel, contents) in results {
        env.rels[rel.index()] = Some(contents);
    }
}
