//! The backward step of LDFI: from a run's provenance, the minimal fault sets that break every
//! derivation of a fact.
//!
//! A fact holds if any of its derivations holds (an OR over derivations); a derivation holds if
//! all its body facts hold, its message (if any) was delivered and its negated atoms stay absent
//! (an AND). "Broken" is the dual: an AND over derivations of an OR over the parts. Fault
//! variables are omissions `O(from, to, t)` for `t < EFF` and crashes `C(node, t)`; a message
//! sent by `from` at tick `t` is lost under `O(from, to, t)` or under `C(from, t')` for any
//! `t'` from `from`'s first send up to `t` (Molly's encoding). When the program never reads a
//! crash tick, `C(n, t)` means "crashed at or before `t`" instead: the message is lost under
//! `C(from, t)` alone, and a set implied by another is not minimal
//! ([`AtomTable::minimise`]). Only nodes crash or lose messages.
//!
//! Instead of handing the formula to a SAT solver and filtering all models down to the minimal
//! ones, the minimal solutions are computed directly, bottom-up over the provenance DAG: the
//! solutions of an OR are the union of its parts' solutions, those of an AND are the pairwise
//! unions, and after each step only subset-minimal sets within the bounds are kept (at most
//! one crash tick per node, at most `crashes` crashed nodes, omissions covered by a crash of
//! their sender dropped). Results are memoised per fact.
//!
//! Negated body atoms (`notin q(..)`) are supported by the absence of `q`; faults that make a
//! matching `q` fact appear break the derivation (why-not provenance, [`Lineage::appear`]):
//! - `notin crash(O, N, T)`: broken by `C(N, T)` (every node or tick for a wildcard): exact.
//! - `notin q(..)` where `q` cannot gain facts under faults (no path into `q` from a lost
//!   message through negation, aggregation or retraction, and none from `crash`): unbreakable,
//!   exact (faults only remove messages, and without non-monotone steps that only removes facts).
//! - otherwise the rules deriving `q` are chased in this run: a new fact needs a new positive
//!   body fact (a request on that atom, with the head's bindings and `!=` exclusions), or a
//!   binding of the body here whose head is missing because a negated atom is blocked, whose
//!   blocking facts must then all be broken; an aggregate group also changes when a binding
//!   is lost. Relations with `delete` rules, and requests past a cap, fall back to "any single
//!   fault losing a delivered message, sent before the atom's tick, of a relation with a
//!   non-monotone path into `q` (and any crash when `crash` reaches `q`)".
//!
//! Every case is a necessary condition: a fault set that makes such a fact appear contains one
//! of the returned sets. Candidates may turn out harmless when run; none is hidden.
//!
//! Aggregate facts break when their group gains or loses a member; a `max`/`min` over one
//! atom only when every member with the extreme value is lost, and a firing that only tests a
//! `count` against constant lower bounds only when the count falls below them. A new firing
//! of such a test needs a group that rises to the bound: as many new members as it lacks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use graft_compiler::ir::{self, RelId, RuleKind, Term, Value};

use crate::matcher::{self, Slots};
use graft_eval::hash::{FastMap, FastSet};
use graft_eval::{Absent, Derivation, FactRef, Message, Run};

use crate::faults::{Bounds, Delay, Drop, FaultSet};

/// A fault variable.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultAtom {
    Omission {
        from: String,
        to: String,
        tick: u64,
    },
    Crash {
        node: String,
        tick: u64,
    },
    /// The messages from `from` to `to` sent at `tick` arrive `by` ticks late.
    Delay {
        from: String,
        to: String,
        tick: u64,
        by: u64,
    },
}

/// Fault variables interned to small ids, stable for one verification.
#[derive(Clone, Debug, Default)]
pub struct AtomTable {
    atoms: Vec<FaultAtom>,
    ids: FastMap<FaultAtom, u32>,
}

impl AtomTable {
    pub fn intern(&mut self, atom: FaultAtom) -> u32 {
        if let Some(id) = self.ids.get(&atom) {
            return *id;
        }
        let id = u32::try_from(self.atoms.len()).unwrap_or(u32::MAX);
        self.ids.insert(atom.clone(), id);
        self.atoms.push(atom);
        id
    }

    pub fn get(&self, id: u32) -> Option<&FaultAtom> {
        self.atoms.get(id as usize)
    }

    /// The fault set of a solution.
    pub fn fault_set(&self, solution: &[u32]) -> FaultSet {
        let mut faults = FaultSet::default();
        for id in solution {
            match self.get(*id) {
                Some(FaultAtom::Omission { from, to, tick }) => {
                    faults.drops.insert(Drop {
                        from: from.clone(),
                        to: to.clone(),
                        tick: *tick,
                    });
                }
                Some(FaultAtom::Crash { node, tick }) => {
                    let entry = faults.crashes.entry(node.clone()).or_insert(*tick);
                    *entry = (*entry).min(*tick);
                }
                Some(FaultAtom::Delay { from, to, tick, by }) => {
                    faults.delays.insert(Delay {
                        from: from.clone(),
                        to: to.clone(),
                        tick: *tick,
                        by: *by,
                    });
                }
                None => {}
            }
        }
        faults.normalise();
        faults
    }
}

/// Minimal solutions: each a sorted list of atom ids. Empty list: cannot be broken; a list
/// holding the empty solution: broken without any fault.
pub type Solutions = Vec<Vec<u32>>;

/// Which relations can gain facts when messages are lost or nodes crash.
#[derive(Clone, Debug)]
pub struct Growth {
    /// Per relation q: the relations r such that losing r facts can add q facts (a path from r
    /// to q through a negated atom, an aggregate or a retraction).
    sources: Vec<BTreeSet<RelId>>,
    /// Per relation: whether `crash` reaches it by any path.
    from_crash: Vec<bool>,
    /// Per relation q: the relations r with any path from r to q (r itself included). A late
    /// message of r can add q facts at the ticks it now arrives at.
    reached_from: Vec<BTreeSet<RelId>>,
    /// Per relation: whether a relation derived by an `@async` rule reaches it, so that a
    /// late message can add facts to it.
    from_async: Vec<bool>,
    crash: Option<RelId>,
    /// Per relation: whether a `delete` rule retracts its facts.
    deleted: Vec<bool>,
    /// Per relation: whether an aggregate rule derives it.
    aggregate: Vec<bool>,
    /// Per relation derived only by local `@async` rules that all put their location (the
    /// sender) in one head column: that column. A fact of such a relation at tick t is a
    /// message from the node named there, sent at t − 1, in every run.
    sender_column: Vec<Option<usize>>,
    /// The (relation, column) pairs a `count` over one positive atom counts (the rules
    /// [`Lineage::rising_members`] chases), sorted.
    counted: Vec<(RelId, usize)>,
    /// Per relation and column: every value a fact of the relation can hold there, in any
    /// run under any faults (`None`: not bounded). See [`Growth::bound_values`].
    values: Vec<Vec<Option<BTreeSet<Value>>>>,
    /// Whether a rule or an invariant reads `crash` (then every crash changes the run).
    pub crash_read: bool,
    /// Whether one of those reads uses the crash tick (a constant, or a variable used
    /// elsewhere in the rule); otherwise crash ticks matter only through lost messages.
    pub crash_tick_read: bool,
}

impl Growth {
    /// The analysis of `program` run on its own facts and the workload `facts`.
    pub fn new(program: &ir::Program, facts: &[ir::Fact]) -> Growth {
        let count = program.relations.len();
        // Edges body relation -> head relation, with "non-monotone" flags.
        let mut edges: Vec<Vec<(usize, bool)>> = vec![Vec::new(); count];
        for rule in &program.rules {
            let head = rule.head.rel.index();
            for (_, atom) in rule.atoms() {
                let non_monotone =
                    atom.negated || rule.head.aggregate.is_some() || rule.kind == RuleKind::Delete;
                if let Some(list) = edges.get_mut(atom.rel.index()) {
                    list.push((head, non_monotone));
                }
            }
        }
        let mut sources = vec![BTreeSet::new(); count];
        let mut reach_any = vec![vec![false; count]; count];
        for (start, reach) in reach_any.iter_mut().enumerate() {
            // States: (relation, passed a non-monotone edge).
            let mut seen = vec![[false; 2]; count];
            let mut stack = vec![(start, false)];
            while let Some((rel, flag)) = stack.pop() {
                for (next, non_monotone) in &edges[rel] {
                    let next_flag = flag || *non_monotone;
                    if !seen[*next][usize::from(next_flag)] {
                        seen[*next][usize::from(next_flag)] = true;
                        stack.push((*next, next_flag));
                    }
                }
            }
            for (rel, flags) in seen.iter().enumerate() {
                reach[rel] = flags[0] || flags[1];
                if flags[1] {
                    sources[rel].insert(RelId::from_index(start));
                }
            }
        }
        let crash = program
            .relation_by_name(graft_compiler::CRASH)
            .filter(|rel| program.relation(*rel).origin == ir::RelationOrigin::Builtin);
        let from_crash = match crash {
            Some(crash) => reach_any[crash.index()].clone(),
            None => vec![false; count],
        };
        let mut reached_from = vec![BTreeSet::new(); count];
        for (start, reach) in reach_any.iter().enumerate() {
            for (rel, reached) in reach.iter().enumerate() {
                if *reached || rel == start {
                    reached_from[rel].insert(RelId::from_index(start));
                }
            }
        }
        let mut from_async = vec![false; count];
        for rule in program
            .rules
            .iter()
            .filter(|rule| rule.kind == RuleKind::Async)
        {
            let head = rule.head.rel.index();
            from_async[head] = true;
            for (rel, reached) in reach_any[head].iter().enumerate() {
                from_async[rel] |= *reached;
            }
        }
        let mut deleted = vec![false; count];
        for rule in &program.rules {
            if rule.kind == RuleKind::Delete
                && let Some(flag) = deleted.get_mut(rule.head.rel.index())
            {
                *flag = true;
            }
        }
        let mut aggregate = vec![false; count];
        for rule in &program.rules {
            if rule.head.aggregate.is_some()
                && let Some(flag) = aggregate.get_mut(rule.head.rel.index())
            {
                *flag = true;
            }
        }
        let mut sender_column: Vec<Option<usize>> = vec![None; count];
        for (index, column) in sender_column.iter_mut().enumerate() {
            let rel = RelId::from_index(index);
            let mut found: Option<usize> = None;
            let mut consistent = true;
            for rule in program.rules_deriving(rel) {
                let sender = rule.location.filter(|location| {
                    rule.kind == RuleKind::Async
                        && rule.atoms().all(|(_, atom)| {
                            atom.args.first().and_then(Term::as_var) == Some(*location)
                        })
                });
                let at = sender.and_then(|location| {
                    rule.head
                        .args
                        .iter()
                        .position(|term| term.as_var() == Some(location))
                });
                match (at, found) {
                    (Some(at), None) => found = Some(at),
                    (Some(at), Some(previous)) if at == previous => {}
                    _ => consistent = false,
                }
            }
            if consistent {
                *column = found;
            }
        }
        let crash_read = crash.is_some_and(|crash| {
            program
                .rules
                .iter()
                .any(|rule| rule.atoms().any(|(_, atom)| atom.rel == crash))
                || program.nevers.iter().any(|never| {
                    never
                        .body
                        .iter()
                        .filter_map(ir::Literal::as_atom)
                        .any(|atom| atom.rel == crash)
                })
        });
        let tick_read =
            |atom: &ir::Atom, all: &mut dyn Iterator<Item = &Term>| match atom.args.get(2) {
                None | Some(Term::Wildcard) => false,
                Some(Term::Var(var)) => all.filter(|term| mentions(term, *var)).count() > 1,
                Some(_) => true,
            };
        let crash_tick_read = crash.is_some_and(|crash| {
            program.rules.iter().any(|rule| {
                rule.atoms()
                    .any(|(_, atom)| atom.rel == crash && tick_read(atom, &mut rule_terms(rule)))
            }) || program.nevers.iter().any(|never| {
                never
                    .body
                    .iter()
                    .filter_map(ir::Literal::as_atom)
                    .any(|atom| atom.rel == crash && tick_read(atom, &mut body_terms(&never.body)))
            })
        });
        let mut counted: Vec<(RelId, usize)> = program
            .rules
            .iter()
            .filter_map(|rule| {
                let aggregate = rule.head.aggregate.as_ref()?;
                if aggregate.func != ir::AggFunc::Count || rule.body.len() != 1 {
                    return None;
                }
                let (_, atom) = rule.atoms().next()?;
                let column = atom
                    .args
                    .iter()
                    .position(|term| term.as_var() == Some(aggregate.var))?;
                Some((atom.rel, column))
            })
            .collect();
        counted.sort();
        counted.dedup();
        let values = Growth::bound_values(program, facts, crash);
        Growth {
            values,
            sources,
            from_crash,
            reached_from,
            from_async,
            crash,
            deleted,
            aggregate,
            sender_column,
            counted,
            crash_read,
            crash_tick_read,
        }
    }
}

impl Growth {
    /// Per relation and column, the values its facts can hold in any run: a fixpoint over the
    /// rules, from the program's and the workload's facts. A head column holds a constant,
    /// or the value of a variable, which a positive body atom binds to a value of its
    /// column (when several do, the value is in each of their sets); anything else (an
    /// arithmetic term, an aggregate, a variable only a comparison binds, the `crash`
    /// relation) is not bounded. Faults only change which rules fire, never which values a
    /// firing can produce, so the sets hold under every schedule.
    fn bound_values(
        program: &ir::Program,
        facts: &[ir::Fact],
        crash: Option<RelId>,
    ) -> Vec<Vec<Option<BTreeSet<Value>>>> {
        let mut values: Vec<Vec<Option<BTreeSet<Value>>>> = program
            .relations
            .iter()
            .map(|relation| vec![Some(BTreeSet::new()); relation.arity()])
            .collect();
        if let Some(columns) = crash.and_then(|crash| values.get_mut(crash.index())) {
            columns.iter_mut().for_each(|column| *column = None);
        }
        for fact in program.facts.iter().chain(facts) {
            let Some(columns) = values.get_mut(fact.rel.index()) else {
                continue;
            };
            for (column, value) in columns.iter_mut().zip(&fact.values) {
                if let Some(set) = column {
                    set.insert(value.clone());
                }
            }
        }
        loop {
            let mut changed = false;
            for rule in &program.rules {
                if rule.kind == RuleKind::Delete {
                    continue;
                }
                let aggregate = rule
                    .head
                    .aggregate
                    .as_ref()
                    .map(|aggregate| aggregate.column);
                for (column, term) in rule.head.args.iter().enumerate() {
                    let produced: Option<BTreeSet<Value>> = match term {
                        _ if Some(column) == aggregate => None,
                        Term::Const(value) | Term::NamedConst(_, value) => {
                            Some(BTreeSet::from([value.clone()]))
                        }
                        Term::Var(var) => {
                            let mut bound: Option<BTreeSet<Value>> = None;
                            for (_, atom) in rule.atoms().filter(|(_, atom)| !atom.negated) {
                                for (at, arg) in atom.args.iter().enumerate() {
                                    if arg.as_var() != Some(*var) {
                                        continue;
                                    }
                                    let Some(Some(set)) = values
                                        .get(atom.rel.index())
                                        .and_then(|columns| columns.get(at))
                                    else {
                                        continue;
                                    };
                                    bound = Some(match bound {
                                        None => set.clone(),
                                        Some(bound) => bound.intersection(set).cloned().collect(),
                                    });
                                }
                            }
                            let in_atom = rule.atoms().any(|(_, atom)| {
                                !atom.negated
                                    && atom.args.iter().any(|arg| arg.as_var() == Some(*var))
                            });
                            // A variable bound by an atom whose column is not bounded.
                            if in_atom { bound } else { None }
                        }
                        Term::Wildcard | Term::Arith(..) => None,
                    };
                    let Some(target) = values
                        .get_mut(rule.head.rel.index())
                        .and_then(|columns| columns.get_mut(column))
                    else {
                        continue;
                    };
                    match (target.as_mut(), produced) {
                        (None, _) => {}
                        (Some(_), None) => {
                            *target = None;
                            changed = true;
                        }
                        (Some(set), Some(produced)) => {
                            for value in produced {
                                changed |= set.insert(value);
                            }
                        }
                    }
                }
            }
            if !changed {
                break;
            }
        }
        values
    }

    /// Whether some value that a fact of `rel` can hold in `column` is admitted by `cell`.
    fn admits_some(&self, rel: RelId, column: usize, cell: &Cell) -> bool {
        match self
            .values
            .get(rel.index())
            .and_then(|columns| columns.get(column))
        {
            Some(Some(set)) => match cell {
                Cell::Is(value) => set.contains(value),
                Cell::Any => !set.is_empty(),
                Cell::Not(_) | Cell::Rising(_) => set.iter().any(|value| cell.admits(value)),
            },
            _ => true,
        }
    }

    /// Whether a fact of `rel` matching `pattern` can exist in some run.
    fn possible(&self, rel: RelId, pattern: &[Cell]) -> bool {
        pattern
            .iter()
            .enumerate()
            .all(|(column, cell)| self.admits_some(rel, column, cell))
    }
}

/// The cap on the number of solutions kept for one sub-formula; past it the smallest are kept
/// and the result is marked truncated (a certificate is then impossible).
const SOLUTION_CAP: usize = 20_000;

/// Keeps the subset-minimal sets, sorted by size then content.
pub fn minimise(mut sets: Solutions) -> Solutions {
    sets.sort_unstable_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    sets.dedup();
    // Each kept set with a 64-bit signature of its atoms: a subset's signature has no bit
    // outside the superset's, which rules most pairs out without comparing them.
    let signature = |set: &[u32]| set.iter().fold(0u64, |bits, id| bits | 1 << (id % 64));
    let mut kept: Vec<(u64, Vec<u32>)> = Vec::with_capacity(sets.len());
    for set in sets {
        let bits = signature(&set);
        if !kept
            .iter()
            .any(|(small_bits, small)| small_bits & !bits == 0 && is_subset(small, &set))
        {
            kept.push((bits, set));
        }
    }
    kept.into_iter().map(|(_, set)| set).collect()
}

impl AtomTable {
    /// [`minimise`], then, when crash atoms mean "crashed at or before" (`crash_by`), also
    /// without the sets another set is implied by: `{C(n, 4), x}` goes when `{C(n, 6)}` is
    /// kept, since crashing `n` by tick 4 crashes it by tick 6.
    pub fn minimise(&self, sets: Solutions, crash_by: bool) -> Solutions {
        let sets = minimise(sets);
        if !crash_by || sets.len() < 2 {
            return sets;
        }
        if !sets.iter().flatten().any(|id| self.crash(*id).is_some()) {
            return sets;
        }
        let mut kept: Solutions = Vec::with_capacity(sets.len());
        for (index, set) in sets.iter().enumerate() {
            // Sets that imply each other are equal (one crash tick per node).
            let redundant = sets.iter().enumerate().any(|(other, weak)| {
                other != index && weak != set && self.implies(set, weak, true)
            });
            if !redundant {
                kept.push(set.clone());
            }
        }
        kept
    }

    fn crash(&self, id: u32) -> Option<(&str, u64)> {
        match self.get(id) {
            Some(FaultAtom::Crash { node, tick }) => Some((node.as_str(), *tick)),
            _ => None,
        }
    }

    /// Whether the fault set `strong` (sorted) implies `weak`: contains it, or with
    /// `crash_by`, contains its omissions and crashes every node it crashes by its tick.
    pub fn implies(&self, strong: &[u32], weak: &[u32], crash_by: bool) -> bool {
        if !crash_by {
            return is_subset(weak, strong);
        }
        weak.iter().all(|atom| match self.crash(*atom) {
            None => strong.binary_search(atom).is_ok(),
            Some((node, tick)) => strong.iter().any(|other| {
                self.crash(*other)
                    .is_some_and(|(n, t)| n == node && t <= tick)
            }),
        })
    }

    /// Whether the fault set `solution` implies some set in `others`.
    pub fn implies_any(&self, solution: &[u32], others: &Solutions, crash_by: bool) -> bool {
        others
            .iter()
            .any(|other| self.implies(solution, other, crash_by))
    }
}

/// Whether `solutions` holds only the empty set (broken without any fault).
fn is_trivial(solutions: &Solutions) -> bool {
    matches!(solutions.as_slice(), [only] if only.is_empty())
}

/// The union of two sorted lists without duplicates, sorted and without duplicates.
fn sorted_union(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut union = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                union.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                union.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                union.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    union.extend_from_slice(&a[i..]);
    union.extend_from_slice(&b[j..]);
    union
}

/// Whether sorted `small` is a subset of sorted `large`.
pub(crate) fn is_subset(small: &[u32], large: &[u32]) -> bool {
    if small.len() > large.len() {
        return false;
    }
    let mut index = 0;
    for item in small {
        while index < large.len() && large[index] < *item {
            index += 1;
        }
        if index == large.len() || large[index] != *item {
            return false;
        }
        index += 1;
    }
    true
}

/// Past this many ways to choose the lost members of a `count` group, the count is treated
/// like any other fact (broken when any member is).
const COMBINATION_CAP: usize = 256;

fn binomial(n: usize, k: usize) -> usize {
    let mut result: usize = 1;
    for step in 0..k.min(n) {
        result = result.saturating_mul(n - step) / (step + 1);
    }
    result
}

/// Every `k`-subset of `0..n`, as sorted index lists.
fn combinations(n: usize, k: usize) -> Vec<Vec<usize>> {
    let mut all = Vec::new();
    let mut current: Vec<usize> = Vec::with_capacity(k);
    fn extend(
        start: usize,
        n: usize,
        k: usize,
        current: &mut Vec<usize>,
        all: &mut Vec<Vec<usize>>,
    ) {
        if current.len() == k {
            all.push(current.clone());
            return;
        }
        for index in start..n {
            current.push(index);
            extend(index + 1, n, k, current, all);
            current.pop();
        }
    }
    extend(0, n, k, &mut current, &mut all);
    all
}

/// When `atom` (a positive atom of `rule`) reads a `count` aggregate whose value the rule only
/// tests against constant lower bounds (`K >= c`, `K > c`, or not at all), the least count
/// that keeps the firing: losing members below it breaks the firing, any other change keeps
/// it. `None` otherwise.
fn count_threshold(program: &ir::Program, rule: &ir::Rule, atom: &ir::Atom) -> Option<i64> {
    count_test(program, rule, atom).and_then(|(_, threshold)| threshold)
}

/// When `atom` (a positive atom of `rule`) reads a `count` aggregate whose value `K` the rule
/// uses only as the larger side of comparisons (`K >= e`, `K > e`, `e <= K`, `e < K`, with
/// `e` not mentioning `K`; or not at all): the count column, and the least count that passes
/// them when every bound is a constant. A lower count then passes fewer tests, and since `K`
/// is not in the head, a firing with a lower count derives a head that the firing with the
/// higher count derived already.
fn count_test(
    program: &ir::Program,
    rule: &ir::Rule,
    atom: &ir::Atom,
) -> Option<(usize, Option<i64>)> {
    if atom.negated || rule.head.aggregate.is_some() {
        return None;
    }
    // The column every rule deriving the atom's relation counts into.
    let mut column: Option<usize> = None;
    for deriving in program.rules_deriving(atom.rel) {
        let aggregate = deriving.head.aggregate.as_ref()?;
        if aggregate.func != ir::AggFunc::Count || column.is_some_and(|c| c != aggregate.column) {
            return None;
        }
        column = Some(aggregate.column);
    }
    let column = column?;
    let var = atom.args.get(column)?.as_var()?;
    let used_elsewhere = rule.atoms().any(|(_, other)| {
        !std::ptr::eq(other, atom) && other.args.iter().any(|arg| mentions(arg, var))
    }) || atom.args.iter().filter(|arg| mentions(arg, var)).count() > 1
        || rule.head.args.iter().any(|arg| mentions(arg, var));
    if used_elsewhere {
        return None;
    }
    let mut bound: Option<i64> = Some(1);
    for literal in &rule.body {
        let ir::Literal::Compare(comparison) = literal else {
            continue;
        };
        let (lhs, rhs) = (&comparison.lhs, &comparison.rhs);
        if !mentions(lhs, var) && !mentions(rhs, var) {
            continue;
        }
        let constant = |term: &Term| match term.as_const() {
            Some(Value::Int(value)) => Some(*value),
            _ => None,
        };
        // (the other side, and whether the test is strict)
        let (other, strict) = match (lhs.as_var() == Some(var), rhs.as_var() == Some(var)) {
            (true, false) if !mentions(rhs, var) => match comparison.op {
                ir::CompareOp::Ge => (rhs, false),
                ir::CompareOp::Gt => (rhs, true),
                _ => return None,
            },
            (false, true) if !mentions(lhs, var) => match comparison.op {
                ir::CompareOp::Le => (lhs, false),
                ir::CompareOp::Lt => (lhs, true),
                _ => return None,
            },
            _ => return None,
        };
        let limit = constant(other).and_then(|value| {
            if strict {
                value.checked_add(1)
            } else {
                Some(value)
            }
        });
        bound = match (bound, limit) {
            (Some(bound), Some(limit)) => Some(bound.max(limit)),
            _ => None,
        };
    }
    Some((column, bound))
}

/// Every term of a rule: its head's arguments and [`body_terms`].
fn rule_terms(rule: &ir::Rule) -> impl Iterator<Item = &Term> {
    rule.head.args.iter().chain(body_terms(&rule.body))
}

/// Every term of a body: atom arguments and both sides of comparisons.
pub(crate) fn body_terms(body: &[ir::Literal]) -> impl Iterator<Item = &Term> {
    body.iter()
        .flat_map(|literal| -> Box<dyn Iterator<Item = &Term> + '_> {
            match literal {
                ir::Literal::Atom(atom) => Box::new(atom.args.iter()),
                ir::Literal::Compare(comparison) => {
                    Box::new([&comparison.lhs, &comparison.rhs].into_iter())
                }
            }
        })
}

/// Whether `term` uses `var`.
fn mentions(term: &Term, var: ir::VarId) -> bool {
    match term {
        Term::Var(other) => *other == var,
        Term::Arith(_, lhs, rhs) => mentions(lhs, var) || mentions(rhs, var),
        Term::Wildcard | Term::Const(_) | Term::NamedConst(..) => false,
    }
}

/// One column of a why-not request: which values a new fact may have there.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cell {
    Any,
    Is(Value),
    /// Any value but these (sorted, without duplicates).
    Not(Vec<Value>),
    /// The count column of a request made by a rule that only tests the count against the
    /// constant lower bound `t` (and uses it nowhere else): a new firing of that rule needs a
    /// group that is new or rises to `t` with new members. A group of this run that loses
    /// members only lowers its count, which can only remove firings.
    Rising(i64),
}

impl Cell {
    fn admits(&self, value: &Value) -> bool {
        match self {
            Cell::Any => true,
            Cell::Is(wanted) => wanted == value,
            Cell::Not(excluded) => !excluded.contains(value),
            Cell::Rising(threshold) => matches!(value, Value::Int(count) if count >= threshold),
        }
    }
}

/// A why-not request: a fact of the relation at the tick, matching the cells, that the run
/// does not have.
/// With the run's prefix id at the tick (see [`LineageCache`]).
type AppearKey = (u32, RelId, u64, Vec<Cell>);

/// Past this many why-not requests in one run, the remaining ones are answered by the coarse
/// over-approximation (any lost message of a relation that can grow the negated one).
const APPEAR_CAP: usize = 20_000;

/// Whether `tuple` matches `pattern` column by column.
fn admits_all(pattern: &[Cell], tuple: &[Value]) -> bool {
    pattern.len() == tuple.len()
        && pattern
            .iter()
            .zip(tuple)
            .all(|(cell, value)| cell.admits(value))
}

/// The variable bindings a rule's head imposes when it must derive a fact matching
/// `pattern`: bound variables, and per variable the values it must not take (from the
/// pattern's `Not` cells and from `!=` comparisons against bound terms). `None` when no fact
/// matching the pattern can come from this rule (a constant or a fully bound comparison
/// disagrees). The aggregate column binds nothing.
fn head_bindings(rule: &ir::Rule, pattern: &[Cell]) -> Option<(Slots, Vec<Vec<Value>>)> {
    let count = rule.var_names.len();
    let mut slots: Slots = vec![None; count];
    let mut not: Vec<Vec<Value>> = vec![Vec::new(); count];
    let aggregate = rule
        .head
        .aggregate
        .as_ref()
        .map(|aggregate| aggregate.column);
    for (column, term) in rule.head.args.iter().enumerate() {
        if Some(column) == aggregate {
            continue;
        }
        let cell = pattern.get(column).unwrap_or(&Cell::Any);
        match term {
            Term::Var(var) => {
                let index = var.index();
                match cell {
                    Cell::Is(value) => match slots.get(index)? {
                        Some(current) if current != value => return None,
                        _ => slots[index] = Some(value.clone()),
                    },
                    Cell::Not(values) => not.get_mut(index)?.extend(values.iter().cloned()),
                    Cell::Any | Cell::Rising(_) => {}
                }
            }
            Term::Const(value) | Term::NamedConst(_, value) => {
                if !cell.admits(value) {
                    return None;
                }
            }
            Term::Wildcard | Term::Arith(..) => {}
        }
    }
    let comparisons: Vec<&ir::Comparison> = rule
        .body
        .iter()
        .filter_map(|literal| match literal {
            ir::Literal::Compare(comparison) => Some(comparison),
            ir::Literal::Atom(_) => None,
        })
        .collect();
    // `==` binds; repeat until nothing changes. A comparison with both sides bound must hold.
    loop {
        let before = slots.iter().filter(|slot| slot.is_some()).count();
        for comparison in &comparisons {
            if matcher::compare(comparison, &mut slots) == Some(false) {
                return None;
            }
        }
        if slots.iter().filter(|slot| slot.is_some()).count() == before {
            break;
        }
    }
    for comparison in &comparisons {
        if comparison.op != ir::CompareOp::Ne {
            continue;
        }
        let sides = [
            (&comparison.lhs, &comparison.rhs),
            (&comparison.rhs, &comparison.lhs),
        ];
        for (free, other) in sides {
            if let (Some(var), Some(value)) = (free.as_var(), matcher::eval(other, &slots))
                && slots.get(var.index()).is_some_and(Option::is_none)
                && let Some(list) = not.get_mut(var.index())
            {
                list.push(value);
            }
        }
    }
    for (slot, excluded) in slots.iter().zip(&mut not) {
        if let Some(value) = slot
            && excluded.contains(value)
        {
            return None;
        }
        excluded.sort();
        excluded.dedup();
    }
    Some((slots, not))
}

/// The request a body atom makes under the head's bindings.
fn atom_pattern(atom: &ir::Atom, slots: &Slots, not: &[Vec<Value>]) -> Vec<Cell> {
    atom.args
        .iter()
        .map(|term| match term {
            Term::Var(var) => match slots.get(var.index()).cloned().flatten() {
                Some(value) => Cell::Is(value),
                None => match not.get(var.index()) {
                    Some(values) if !values.is_empty() => Cell::Not(values.clone()),
                    _ => Cell::Any,
                },
            },
            Term::Wildcard => Cell::Any,
            other => matcher::eval(other, slots).map_or(Cell::Any, Cell::Is),
        })
        .collect()
}

/// What the backward step reads of a run beyond the facts up to a tick: the values each
/// counted column takes at any tick ([`Lineage::rising_members`]), the first send tick of
/// every node (read when crash atoms mean "crashed at exactly"), and the `crash` facts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Context {
    ticks_run: u64,
    domains: Vec<Vec<Value>>,
    first_send: Vec<(Value, u64)>,
    crash_facts: Vec<(u64, Vec<Value>)>,
}

/// Past this many memoised results, the cache is emptied before the next run.
const CACHE_CAP: usize = 4_000_000;

/// A message channel of a run at a send tick whose messages were lost or arrived late:
/// (send tick, sender, destination, ticks late; 0 when lost).
type Fault = (u64, Value, Value, u64);

/// Results of the backward step kept across the runs of one search.
///
/// A run's facts, derivations and messages up to tick `t` are determined by the messages it
/// lost or delayed among those sent before `t` (a message sent at `s` arrives at `s + 1`
/// unless it is late; a crashed node still derives under Molly's model, and its `crash`
/// facts are in the [`Context`]). Under Molly's crash model a channel's messages at one send
/// tick share their fate, so the channels (sender, destination, send tick) whose messages
/// were lost, and those that were late with their delay, determine them: two runs with the
/// same such channels before `t` (the run's *prefix* at `t`) agree up to `t` on every fact,
/// fact id and derivation (runs are canonical: a tick's facts in value order). Every result
/// of [`Lineage::broken`] and [`Lineage::appear`] for a fact or request at tick `t` reads
/// only the run up to `t` and its [`Context`], so results are keyed by the prefix at their
/// tick and serve every later run with that prefix: the failure-free run's up to a run's
/// first fault, and the runs extending the same early faults beyond it. Results of a prefix
/// that no earlier run had live as long as their run ([`Lineage::shared`]): most runs have
/// prefixes of their own at their last ticks, and keeping every result cost more memory
/// traffic than their reuse saved. Results that met a recursive request on the stack are not
/// memoised (as within one run).
#[derive(Debug, Default)]
pub struct LineageCache {
    contexts: BTreeMap<Context, u32>,
    /// Prefix ids, by context id and the faulty channels of the prefix (sorted).
    prefixes: BTreeMap<(u32, Vec<Fault>), u32>,
    /// Per prefix id: how many runs had it.
    prefix_runs: Vec<u32>,
    memo: FastMap<(u32, FactRef), Arc<Solutions>>,
    appear_memo: FastMap<AppearKey, Arc<Solutions>>,
}

impl LineageCache {
    fn context(&mut self, context: Context) -> u32 {
        let next = u32::try_from(self.contexts.len()).unwrap_or(u32::MAX);
        *self.contexts.entry(context).or_insert(next)
    }

    /// The prefix ids of a run under `context` whose faulty channels are `faults` (sorted by
    /// send tick), for ticks `0..=last`; each distinct prefix counts the run once.
    fn prefixes(&mut self, context: u32, faults: &[Fault], last: u64) -> Vec<u32> {
        let mut ids = Vec::new();
        let mut seen: Option<u32> = None;
        let mut taken = 0;
        for tick in 0..=last {
            let before = faults.partition_point(|fault| fault.0 < tick);
            if seen.is_none() || before != taken {
                taken = before;
                let key = (context, faults[..before].to_vec());
                let next = u32::try_from(self.prefix_runs.len()).unwrap_or(u32::MAX);
                let id = *self.prefixes.entry(key).or_insert(next);
                if id == next {
                    self.prefix_runs.push(0);
                }
                if let Some(runs) = self.prefix_runs.get_mut(id as usize) {
                    *runs = runs.saturating_add(1);
                }
                seen = Some(id);
            }
            ids.extend(seen);
        }
        ids
    }

    /// Whether results under prefix `id` are kept for later runs: a run before this one had
    /// the prefix too, or it has no fault (every run starts with the failure-free run's).
    fn popular(&self, id: u32) -> bool {
        self.prefix_runs
            .get(id as usize)
            .is_some_and(|runs| *runs >= 2)
    }

    /// Memoised results held.
    pub fn len(&self) -> usize {
        self.memo.len() + self.appear_memo.len()
    }

    /// Whether no result is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The backward step over one run.
pub struct Lineage<'a> {
    run: &'a Run,
    program: &'a ir::Program,
    atoms: &'a mut AtomTable,
    growth: &'a Growth,
    bounds: Bounds,
    nodes: &'a [String],
    first_send: FastMap<Value, u64>,
    /// The values of each [`Growth::counted`] column at any tick, sorted, without duplicates.
    domains: Vec<Vec<Value>>,
    cache: &'a mut LineageCache,
    /// The run's prefix id at each tick (see [`LineageCache`]).
    prefixes: Vec<u32>,
    /// Whether the results under each prefix id of `prefixes` are kept for later runs.
    kept: Vec<bool>,
    /// Results of this run at ticks that are not [`shared`](Lineage::shared).
    memo: FastMap<FactRef, Arc<Solutions>>,
    appear_memo: FastMap<AppearKey, Arc<Solutions>>,
    stack: FastSet<FactRef>,
    /// The why-not requests being answered (a short stack: searched linearly).
    appear_stack: Vec<AppearKey>,
    /// Why-not requests answered so far (see [`APPEAR_CAP`]).
    requests: usize,
    cycle_hits: u64,
    /// Some sub-formula had more than [`SOLUTION_CAP`] minimal solutions.
    pub truncated: bool,
}

/// The name of a node value (node names are strings).
pub fn node_name(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

impl<'a> Lineage<'a> {
    pub fn new(
        run: &'a Run,
        program: &'a ir::Program,
        atoms: &'a mut AtomTable,
        growth: &'a Growth,
        bounds: Bounds,
        nodes: &'a [String],
        cache: &'a mut LineageCache,
    ) -> Lineage<'a> {
        let mut first_send: FastMap<Value, u64> = FastMap::default();
        for message in &run.messages {
            let entry = first_send
                .entry(message.sender.clone())
                .or_insert(message.send_tick);
            *entry = (*entry).min(message.send_tick);
        }
        let domains: Vec<Vec<Value>> = growth
            .counted
            .iter()
            .map(|(rel, column)| {
                let mut values: Vec<Value> = (1..=run.ticks_run)
                    .flat_map(|tick| run.facts(tick, *rel))
                    .filter_map(|tuple| tuple.get(*column).cloned())
                    .collect();
                values.sort();
                values.dedup();
                values
            })
            .collect();
        // First send ticks matter only to crashes at exact ticks.
        let exact_crashes = bounds.crashes > 0 && growth.crash_tick_read;
        let mut first_sends: Vec<(Value, u64)> = if exact_crashes {
            first_send
                .iter()
                .map(|(node, tick)| (node.clone(), *tick))
                .collect()
        } else {
            Vec::new()
        };
        first_sends.sort();
        let crash_facts: Vec<(u64, Vec<Value>)> = match growth.crash {
            Some(crash) => (1..=run.ticks_run)
                .flat_map(|tick| {
                    run.facts(tick, crash)
                        .iter()
                        .map(move |tuple| (tick, tuple.to_vec()))
                })
                .collect(),
            None => Vec::new(),
        };
        if cache.len() > CACHE_CAP {
            cache.memo.clear();
            cache.appear_memo.clear();
        }
        let context = cache.context(Context {
            ticks_run: run.ticks_run,
            domains: domains.clone(),
            first_send: first_sends,
            crash_facts,
        });
        // A late message changes the run from its on-time arrival on, as a lost one does.
        let mut faults: Vec<Fault> = run
            .messages
            .iter()
            .filter(|message| !message.fate.is_delivered() || message.delay > 0)
            .map(|message| {
                let delay = if message.fate.is_delivered() {
                    message.delay
                } else {
                    0
                };
                (
                    message.send_tick,
                    message.sender.clone(),
                    message.dest.clone(),
                    delay,
                )
            })
            .collect();
        faults.sort();
        faults.dedup();
        let prefixes = cache.prefixes(context, &faults, run.ticks_run.saturating_add(1));
        let kept = prefixes
            .iter()
            .enumerate()
            .map(|(tick, id)| {
                let unfaulty = faults.first().is_none_or(|first| first.0 >= tick as u64);
                unfaulty || cache.popular(*id)
            })
            .collect();
        Lineage {
            run,
            program,
            atoms,
            growth,
            bounds,
            nodes,
            first_send,
            domains,
            cache,
            prefixes,
            kept,
            memo: FastMap::default(),
            appear_memo: FastMap::default(),
            stack: FastSet::default(),
            appear_stack: Vec::new(),
            requests: 0,
            cycle_hits: 0,
            truncated: false,
        }
    }

    /// Whether every run under faults containing `solution` loses `fact`: a message (of a
    /// relation whose sender a head column names, see [`Growth`]) that this run received
    /// only as a message, whose sending the solution omits or whose sender it crashes at or
    /// before the send tick.
    fn loses(&self, solution: &[u32], fact: FactRef) -> bool {
        let Some(column) = self
            .growth
            .sender_column
            .get(fact.rel.index())
            .copied()
            .flatten()
        else {
            return false;
        };
        let Some(tuple) = self.run.fact(fact) else {
            return false;
        };
        let derivations = self.run.derivations(fact);
        let only_messages = derivations
            .iter()
            .all(|derivation| matches!(derivation, Derivation::Message { .. }));
        let (Some(sender), Some(dest)) = (tuple.get(column), tuple.first()) else {
            return false;
        };
        if !only_messages || fact.tick < 2 {
            return false;
        }
        // One send tick (messages sent at different ticks may arrive together when some are
        // late: losing one of them does not surely lose the fact).
        let mut sends = derivations
            .iter()
            .filter_map(|derivation| match derivation {
                Derivation::Message { send_tick, .. } => Some(*send_tick),
                _ => None,
            });
        let sent = sends.next().unwrap_or(fact.tick - 1);
        if sends.any(|other| other != sent) {
            return false;
        }
        let (sender, dest) = (node_name(sender), node_name(dest));
        solution.iter().any(|id| match self.atoms.get(*id) {
            Some(FaultAtom::Omission { from, to, tick })
            | Some(FaultAtom::Delay { from, to, tick, .. }) => {
                *from == sender && *to == dest && *tick == sent
            }
            Some(FaultAtom::Crash { node, tick }) => *node == sender && *tick <= sent,
            None => false,
        })
    }

    /// Whether a crash atom `C(n, t)` means "`n` crashed at or before `t`" (the program
    /// never reads crash ticks, so an earlier crash loses a superset of the messages and
    /// shows the same `crash` facts) rather than "`n` crashed at exactly `t`".
    fn crash_by(&self) -> bool {
        !self.growth.crash_tick_read
    }

    /// The run's prefix id at `tick` (see [`LineageCache`]).
    fn prefix(&self, tick: u64) -> u32 {
        let index = usize::try_from(tick).unwrap_or(usize::MAX);
        self.prefixes
            .get(index)
            .or(self.prefixes.last())
            .copied()
            .unwrap_or(0)
    }

    /// Whether results at `tick` are kept for later runs: the run's prefix at `tick` is the
    /// failure-free run's, or an earlier run had it too (see [`LineageCache`]).
    fn shared(&self, tick: u64) -> bool {
        let index = usize::try_from(tick).unwrap_or(usize::MAX);
        self.kept
            .get(index)
            .or(self.kept.last())
            .copied()
            .unwrap_or(false)
    }

    /// Atom id facts: (is crash, node, tick).
    fn describe(&self, id: u32) -> Option<(bool, &str, u64)> {
        match self.atoms.get(id)? {
            FaultAtom::Omission { from, tick, .. } | FaultAtom::Delay { from, tick, .. } => {
                Some((false, from.as_str(), *tick))
            }
            FaultAtom::Crash { node, tick } => Some((true, node.as_str(), *tick)),
        }
    }

    /// Normalises a union of atoms; `None` when it exceeds the crash bound, or when it holds
    /// two faults of one channel and send tick of which one is a delay (two delays, or a delay
    /// and an omission: no schedule has both).
    fn normalise(&self, mut set: Vec<u32>) -> Option<Vec<u32>> {
        set.sort_unstable();
        set.dedup();
        if self.bounds.max_delay > 0 {
            let mut channels: BTreeMap<(&str, &str, u64), bool> = BTreeMap::new();
            for id in &set {
                let (from, to, tick, late) = match self.atoms.get(*id) {
                    Some(FaultAtom::Omission { from, to, tick }) => (from, to, *tick, false),
                    Some(FaultAtom::Delay { from, to, tick, .. }) => (from, to, *tick, true),
                    _ => continue,
                };
                if let Some(other_late) = channels.insert((from, to, tick), late)
                    && (late || other_late)
                {
                    return None;
                }
            }
        }
        let mut crash_of: BTreeMap<&str, (u64, u32)> = BTreeMap::new();
        for id in &set {
            if let Some((true, node, tick)) = self.describe(*id) {
                let entry = crash_of.entry(node).or_insert((tick, *id));
                if tick < entry.0 {
                    *entry = (tick, *id);
                }
            }
        }
        if crash_of.len() > self.bounds.crashes {
            return None;
        }
        set.retain(|id| match self.describe(*id) {
            Some((true, node, _)) => crash_of.get(node).is_some_and(|(_, kept)| kept == id),
            Some((false, from, tick)) => crash_of.get(from).is_none_or(|(crash, _)| *crash > tick),
            None => false,
        });
        Some(set)
    }

    /// Keeps at most [`SOLUTION_CAP`] of the (minimal) `solutions`: the smallest, then the
    /// least by their fault variables (not by atom ids, which depend on the order in which a
    /// worker met the variables), so that the sets kept do not depend on the worker.
    fn cap(&mut self, mut solutions: Solutions) -> Solutions {
        if solutions.len() > SOLUTION_CAP {
            let atoms = &*self.atoms;
            solutions.sort_by_cached_key(|solution| {
                let mut faults: Vec<Option<&FaultAtom>> =
                    solution.iter().map(|id| atoms.get(*id)).collect();
                faults.sort();
                (solution.len(), faults)
            });
            solutions.truncate(SOLUTION_CAP);
            self.truncated = true;
        }
        solutions
    }

    /// The minimal unions of one set of `left` and one of `right`. Every list of solutions
    /// the backward step makes is a [`AtomTable::minimise`] of normalised sets (or holds only
    /// the empty set), so a side holding only the empty set leaves the other as it is.
    fn and(&mut self, left: &Solutions, right: &Solutions) -> Solutions {
        if left.is_empty() || right.is_empty() {
            return Vec::new();
        }
        if is_trivial(left) {
            return right.clone();
        }
        if is_trivial(right) {
            return left.clone();
        }
        // Without crashes and delays every atom is an omission, and a union of sorted sets
        // needs no normalising.
        let omissions_only = self.bounds.crashes == 0 && self.bounds.max_delay == 0;
        let mut product = Vec::with_capacity(left.len() * right.len());
        for a in left {
            for b in right {
                let union = sorted_union(a, b);
                if omissions_only {
                    product.push(union);
                } else if let Some(set) = self.normalise(union) {
                    product.push(set);
                }
            }
        }
        let product = self.atoms.minimise(product, self.crash_by());
        self.cap(product)
    }

    /// The minimal sets among those of `parts` (each already minimal: see [`Lineage::and`]).
    fn or(&mut self, parts: Vec<Arc<Solutions>>) -> Solutions {
        if parts.iter().any(|part| part.iter().any(Vec::is_empty)) {
            return vec![Vec::new()];
        }
        let mut non_empty = parts.iter().filter(|part| !part.is_empty());
        match (non_empty.next(), non_empty.next()) {
            (None, _) => return Vec::new(),
            (Some(only), None) => return (**only).clone(),
            _ => {}
        }
        let all: Solutions = parts.iter().flat_map(|part| part.iter().cloned()).collect();
        let all = self.atoms.minimise(all, self.crash_by());
        self.cap(all)
    }

    /// The atoms that lose a message from `sender` to `dest` sent at `tick`, each alone.
    fn kill_message(&mut self, sender: &Value, dest: &Value, tick: u64) -> Solutions {
        let mut solutions = Vec::new();
        let from = node_name(sender);
        let to = node_name(dest);
        // Only nodes crash or lose messages.
        if self.nodes.binary_search(&from).is_err() {
            return solutions;
        }
        if sender != dest
            && tick >= 1
            && tick < self.bounds.eff
            && self.nodes.binary_search(&to).is_ok()
        {
            solutions.push(vec![self.atoms.intern(FaultAtom::Omission {
                from: from.clone(),
                to: to.clone(),
                tick,
            })]);
            // Late by `by`, the message is not there at its arrival either (only delays that
            // still arrive by EOT: a later one is an omission within the run).
            for by in 1..=self.bounds.max_delay {
                if tick.saturating_add(1).saturating_add(by) > self.bounds.eot {
                    break;
                }
                solutions.push(vec![self.atoms.intern(FaultAtom::Delay {
                    from: from.clone(),
                    to: to.clone(),
                    tick,
                    by,
                })]);
            }
        }
        if self.bounds.crashes > 0 && self.crash_by() && tick >= 1 && tick <= self.bounds.eot {
            // "Crashed at or before `tick`".
            solutions.push(vec![self.atoms.intern(FaultAtom::Crash {
                node: from.clone(),
                tick,
            })]);
        } else if self.bounds.crashes > 0 {
            let first = self.first_send.get(sender).copied().unwrap_or(tick).max(1);
            for crash_tick in first..=tick.min(self.bounds.eot) {
                solutions.push(vec![self.atoms.intern(FaultAtom::Crash {
                    node: from.clone(),
                    tick: crash_tick,
                })]);
            }
        }
        solutions
    }

    /// The faults that could make a fact matching `absent` appear (why-not provenance).
    fn break_absence(&mut self, absent: &Absent) -> Arc<Solutions> {
        let pattern = absent
            .pattern
            .iter()
            .map(|value| value.clone().map_or(Cell::Any, Cell::Is))
            .collect();
        self.appear(absent.rel, absent.tick, pattern)
    }

    /// The crashes that make a `crash(Observer, Crashed, Tick)` fact matching `pattern` hold.
    fn crash_appears(&mut self, pattern: &[Cell]) -> Solutions {
        let mut solutions = Vec::new();
        if self.bounds.crashes == 0 {
            return solutions;
        }
        let any = Cell::Any;
        let node_cell = pattern.get(1).unwrap_or(&any);
        let crashed: Vec<String> = self
            .nodes
            .iter()
            .filter(|node| node_cell.admits(&Value::Str(node.as_str().into())))
            .cloned()
            .collect();
        let tick_cell = pattern.get(2).unwrap_or(&any);
        if self.crash_by() {
            // The crash tick is read nowhere: any crash of the node makes the fact hold, and
            // every crash is at or before EOT.
            for node in &crashed {
                solutions.push(vec![self.atoms.intern(FaultAtom::Crash {
                    node: node.clone(),
                    tick: self.bounds.eot,
                })]);
            }
            return solutions;
        }
        let ticks: Vec<u64> = (1..=self.bounds.eot)
            .filter(|tick| {
                i64::try_from(*tick).is_ok_and(|value| tick_cell.admits(&Value::Int(value)))
            })
            .collect();
        for node in &crashed {
            for tick in &ticks {
                solutions.push(vec![self.atoms.intern(FaultAtom::Crash {
                    node: node.clone(),
                    tick: *tick,
                })]);
            }
        }
        solutions
    }

    /// The minimal fault sets under which a fact of `rel` matching `pattern`, which this run
    /// does not have at `tick`, could hold there (a necessary condition: every fault set that
    /// makes such a fact appear contains one of them).
    ///
    /// Faults only remove messages, so a new fact needs a new firing of a rule deriving it
    /// (or, for a `table`, a new fact the tick before). Take such a firing under the larger
    /// fault set: either one of its positive body facts is itself new (a request on that
    /// atom, with the head's bindings and `!=` exclusions), or all its positive facts are in
    /// this run — it is then a binding of the body here whose head is not in this run, so
    /// one of its negated atoms is blocked here, and every blocking fact must be broken
    /// (positive lineage). For an aggregate, a group's value also changes when one of its
    /// bindings here is lost (a body fact broken, or a negated atom newly blocked). A new
    /// fact derived through recursion within a tick has a first such fact, whose firing has
    /// no new fact of the cycle, so a request met again on the stack contributes nothing.
    fn appear(&mut self, rel: RelId, tick: u64, pattern: Vec<Cell>) -> Arc<Solutions> {
        if tick == 0 {
            return Arc::new(Vec::new());
        }
        if Some(rel) == self.growth.crash {
            let solutions = self.crash_appears(&pattern);
            return Arc::new(self.atoms.minimise(solutions, self.crash_by()));
        }
        let index = rel.index();
        if !self.can_grow(rel) || !self.growth.possible(rel, &pattern) {
            return Arc::new(Vec::new());
        }
        if pattern.iter().all(|cell| matches!(cell, Cell::Is(_))) {
            let values: Vec<Value> = pattern
                .iter()
                .filter_map(|cell| match cell {
                    Cell::Is(value) => Some(value.clone()),
                    _ => None,
                })
                .collect();
            if self.run.holds(tick, rel, &values) {
                return Arc::new(Vec::new());
            }
        }
        let pattern = self.exclude_existing(rel, tick, pattern);
        let mut key: AppearKey = (self.prefix(tick), rel, tick, pattern);
        let found = if self.shared(tick) {
            self.cache.appear_memo.get(&key)
        } else {
            self.appear_memo.get(&key)
        };
        if let Some(found) = found {
            return found.clone();
        }
        if self.appear_stack.contains(&key) {
            self.cycle_hits += 1;
            return Arc::new(Vec::new());
        }
        self.requests += 1;
        let hits_before = self.cycle_hits;

        let solutions = if self.requests > APPEAR_CAP
            || self.growth.deleted.get(index).copied().unwrap_or(true)
        {
            self.appear_coarse(rel, tick)
        } else {
            let pattern = key.3.clone();
            self.appear_stack.push(key);
            let solutions = self.appear_exact(rel, tick, &pattern);
            key = self.appear_stack.pop().unwrap_or((0, rel, tick, pattern));
            solutions
        };
        let solutions = Arc::new(solutions);
        if self.cycle_hits == hits_before {
            if self.shared(tick) {
                self.cache.appear_memo.insert(key, solutions.clone());
            } else {
                self.appear_memo.insert(key, solutions.clone());
            }
        }
        solutions
    }

    /// A request asks for a fact the run does not have. When every column but one is fixed
    /// (and `rel` is not an aggregate), that column cannot take the value of any fact of this
    /// run matching the fixed columns: those values join its exclusions. `log(_, "m")` with
    /// `log("a", "m")` and `log("b", "m")` in the run asks for `log(N, "m")` with `N` neither
    /// `"a"` nor `"b"`.
    fn exclude_existing(&self, rel: RelId, tick: u64, mut pattern: Vec<Cell>) -> Vec<Cell> {
        let aggregate = self
            .growth
            .aggregate
            .get(rel.index())
            .copied()
            .unwrap_or(true);
        let mut free = pattern
            .iter()
            .enumerate()
            .filter(|(_, cell)| !matches!(cell, Cell::Is(_)));
        let (Some((column, _)), None) = (free.next(), free.next()) else {
            return pattern;
        };
        let mut excluded = match pattern.get(column) {
            Some(Cell::Any) => Vec::new(),
            Some(Cell::Not(values)) => values.clone(),
            _ => return pattern,
        };
        if aggregate {
            return pattern;
        }
        for tuple in self.run.facts(tick, rel) {
            let others_match = tuple.len() == pattern.len()
                && pattern
                    .iter()
                    .zip(tuple.iter())
                    .enumerate()
                    .all(|(at, (cell, value))| at == column || cell.admits(value));
            if others_match && let Some(value) = tuple.get(column) {
                excluded.push(value.clone());
            }
        }
        excluded.sort();
        excluded.dedup();
        if !excluded.is_empty() {
            pattern[column] = Cell::Not(excluded);
        }
        pattern
    }

    /// Whether faults can add facts to `rel` (relative to this run): `crash` when crashes are
    /// allowed, and relations with a non-monotone path from a relation, or a path from `crash`.
    /// The facts of any other relation in a run with more faults are a subset of this run's.
    fn can_grow(&self, rel: RelId) -> bool {
        if Some(rel) == self.growth.crash {
            return self.bounds.crashes > 0;
        }
        let index = rel.index();
        self.growth
            .sources
            .get(index)
            .is_some_and(|sources| !sources.is_empty())
            || self.growth.from_crash.get(index).copied().unwrap_or(false)
            || (self.bounds.max_delay > 0
                && self.growth.from_async.get(index).copied().unwrap_or(false))
    }

    /// The delays that make a message of `rel` matching `pattern` arrive at `tick`: a message
    /// of this run delivered at another tick, sent at most `max_delay` ticks before `tick - 1`
    /// (and before EFF), made exactly that late.
    fn appear_late(&mut self, rel: RelId, tick: u64, pattern: &[Cell]) -> Solutions {
        let mut solutions = Vec::new();
        if self.bounds.max_delay == 0 || tick < 3 {
            return solutions;
        }
        let run = self.run;
        for message in &run.messages {
            let by = (tick - 1).saturating_sub(message.send_tick);
            if message.rel != rel
                || by == 0
                || by > self.bounds.max_delay
                || message.arrival() == tick
                || !admits_all(pattern, &message.tuple)
            {
                continue;
            }
            let Some((from, to)) = self.delayable(message) else {
                continue;
            };
            solutions.push(vec![self.atoms.intern(FaultAtom::Delay {
                from,
                to,
                tick: message.send_tick,
                by,
            })]);
        }
        solutions
    }

    /// The sender and destination of a message of this run that a delay may hold back: one
    /// delivered between two nodes, sent before EFF.
    fn delayable(&self, message: &Message) -> Option<(String, String)> {
        if !message.fate.is_delivered()
            || message.sender == message.dest
            || message.send_tick >= self.bounds.eff
        {
            return None;
        }
        let (from, to) = (node_name(&message.sender), node_name(&message.dest));
        let known = |node: &String| self.nodes.binary_search(node).is_ok();
        (known(&from) && known(&to)).then_some((from, to))
    }

    /// Whether a new firing of `rule` under the head's bindings (`slots`, `not`) is possible
    /// at `body_tick`: every positive atom of a relation that cannot gain facts must match a
    /// fact this run has (a run with more faults has no others).
    fn firing_possible(
        &self,
        rule: &ir::Rule,
        body_tick: u64,
        slots: &Slots,
        not: &[Vec<Value>],
    ) -> bool {
        rule.atoms().all(|(_, atom)| {
            if atom.negated || self.can_grow(atom.rel) {
                return true;
            }
            let Some(at) = matcher::atom_tick(atom, body_tick) else {
                return false;
            };
            let request = atom_pattern(atom, slots, not);
            self.run
                .facts(at, atom.rel)
                .iter()
                .any(|tuple| admits_all(&request, tuple))
        })
    }

    /// [`Lineage::appear`] by chasing the rules deriving `rel`.
    fn appear_exact(&mut self, rel: RelId, tick: u64, pattern: &[Cell]) -> Solutions {
        let program = self.program;
        let run = self.run;
        let mut parts: Vec<Arc<Solutions>> = Vec::new();
        if program.relation(rel).persistence == ir::Persistence::Table && tick > 1 {
            parts.push(self.appear(rel, tick - 1, pattern.to_vec()));
        }
        if self.bounds.max_delay > 0
            && program
                .rules_deriving(rel)
                .any(|rule| rule.kind == RuleKind::Async)
        {
            let late = self.appear_late(rel, tick, pattern);
            parts.push(Arc::new(self.atoms.minimise(late, self.crash_by())));
        }
        for rule in program.rules_deriving(rel) {
            if rule.kind == RuleKind::Delete {
                continue;
            }
            let body_tick = if rule.kind == RuleKind::Deductive {
                tick
            } else {
                tick - 1
            };
            if body_tick == 0 {
                continue;
            }
            let Some((slots, not)) = head_bindings(rule, pattern) else {
                continue;
            };
            if !self.firing_possible(rule, body_tick, &slots, &not) {
                continue;
            }
            // A new positive body fact (for a count that must reach a constant bound, as
            // many new members as it lacks).
            let members = self.rising_members(rule, rel, tick, body_tick, pattern, &slots, &not);
            let generic = members.is_none();
            if let Some(members) = members {
                parts.push(Arc::new(members));
            }
            // Some new positive fact is needed; and an atom that no fact of this run matches
            // needs a new fact in any case, so when there are such atoms, all of them must
            // appear (and no binding of this run exists for the blocked case below).
            let mut some_new: Vec<Arc<Solutions>> = Vec::new();
            let mut all_missing: Option<Solutions> = None;
            for (_, atom) in rule.atoms().filter(|_| generic) {
                if atom.negated {
                    continue;
                }
                if let Some(at) = matcher::atom_tick(atom, body_tick) {
                    let mut request = atom_pattern(atom, &slots, &not);
                    if let Some((column, threshold)) = count_test(program, rule, atom)
                        && let Some(cell) = request.get_mut(column)
                        && *cell == Cell::Any
                    {
                        *cell = Cell::Rising(threshold.unwrap_or(i64::MIN));
                    }
                    let missing = !run
                        .facts(at, atom.rel)
                        .iter()
                        .any(|tuple| admits_all(&request, tuple));
                    let solutions = self.appear(atom.rel, at, request);
                    if missing {
                        let so_far = all_missing.take().unwrap_or_else(|| vec![Vec::new()]);
                        all_missing = Some(self.and(&so_far, &solutions));
                    }
                    some_new.push(solutions);
                }
            }
            if let Some(missing) = all_missing {
                parts.push(Arc::new(missing));
                continue;
            }
            parts.extend(some_new);
            // A binding of this run blocked by a negated atom.
            let mut bindings: Vec<(Slots, Vec<FactRef>)> = Vec::new();
            matcher::positive_bindings_from(
                run,
                body_tick,
                &rule.body,
                slots,
                &mut |theta, used| {
                    let allowed = theta.iter().zip(&not).all(|(value, excluded)| {
                        value.as_ref().is_none_or(|value| !excluded.contains(value))
                    });
                    if allowed {
                        bindings.push((theta.clone(), used.to_vec()));
                    }
                },
            );
            for (theta, used) in bindings {
                if rule.head.aggregate.is_none() {
                    let head: Option<Vec<Value>> = rule
                        .head
                        .args
                        .iter()
                        .map(|term| matcher::eval(term, &theta))
                        .collect();
                    if let Some(head) = head
                        && (!admits_all(pattern, &head) || run.holds(tick, rel, &head))
                    {
                        continue;
                    }
                }
                for (_, atom) in rule.atoms() {
                    if !atom.negated {
                        continue;
                    }
                    let blockers = matcher::matching_facts(run, body_tick, atom, &theta);
                    if blockers.is_empty() {
                        continue;
                    }
                    let mut part: Solutions = vec![Vec::new()];
                    for blocker in blockers {
                        let broken = self.broken(blocker);
                        part = self.and(&part, &broken);
                        if part.is_empty() {
                            break;
                        }
                    }
                    // Faults that surely lose one of the binding's own messages unblock it
                    // in vain: the binding is gone with them.
                    part.retain(|solution| !used.iter().any(|fact| self.loses(solution, *fact)));
                    parts.push(Arc::new(part));
                }
            }
            // An aggregate group of this run whose value changes (a lowered count read only
            // against a lower bound cannot add a firing).
            let rising = rule.head.aggregate.as_ref().is_some_and(|aggregate| {
                aggregate.func == ir::AggFunc::Count
                    && matches!(pattern.get(aggregate.column), Some(Cell::Rising(_)))
            });
            if let Some(aggregate) = rule.head.aggregate.as_ref().filter(|_| !rising) {
                let groups: Vec<FactRef> = run
                    .facts(tick, rel)
                    .iter()
                    .enumerate()
                    .filter(|(_, tuple)| {
                        tuple.len() == pattern.len()
                            && pattern.iter().zip(tuple.iter()).enumerate().all(
                                |(column, (cell, value))| {
                                    column == aggregate.column || cell.admits(value)
                                },
                            )
                    })
                    .map(|(id, _)| FactRef {
                        tick,
                        rel,
                        tuple: u32::try_from(id).unwrap_or(u32::MAX),
                    })
                    .collect();
                for group in groups {
                    for derivation in run.derivations(group) {
                        if let Derivation::Aggregate(firing) = derivation
                            && firing.rule == rule.id
                        {
                            let loss = self.aggregate_loss(group, firing);
                            parts.push(Arc::new(loss));
                        }
                    }
                }
            }
        }
        self.or(parts)
    }

    /// For a request on a `count` whose count cell is `Rising(t)` (a firing needs a group
    /// that reaches `t`, see [`Cell::Rising`]), derived by `rule` with one positive atom and
    /// nothing else in its body: the fault sets that add as many members as the group lacks.
    /// A group of this run with `c < t` members needs `t − c` new ones, a new group `t`; so
    /// every such change adds `k = t − (the largest c < t)` (or `t`) members with distinct
    /// counted values, each a fact this run does not have. Each is asked for by value: a value
    /// this run counts somewhere (`D`), or any other value (which may stand for several). The
    /// group columns are left as the request has them. `None` when the rule or the request
    /// has another shape, `k < 2`, or there are too many ways to choose the values.
    #[allow(
        clippy::too_many_arguments,
        reason = "the state of one rule of a why-not chase"
    )]
    fn rising_members(
        &mut self,
        rule: &ir::Rule,
        rel: RelId,
        tick: u64,
        body_tick: u64,
        pattern: &[Cell],
        slots: &Slots,
        not: &[Vec<Value>],
    ) -> Option<Solutions> {
        let aggregate = rule.head.aggregate.as_ref()?;
        if aggregate.func != ir::AggFunc::Count {
            return None;
        }
        let Some(Cell::Rising(threshold)) = pattern.get(aggregate.column) else {
            return None;
        };
        let threshold = usize::try_from(*threshold).ok()?;
        if rule.body.len() != 1 {
            return None;
        }
        let (_, atom) = rule.atoms().next()?;
        if atom.negated {
            return None;
        }
        let at = matcher::atom_tick(atom, body_tick)?;
        let column = atom
            .args
            .iter()
            .position(|term| term.as_var() == Some(aggregate.var))?;
        let base = atom_pattern(atom, slots, not);
        let mut excluded = match base.get(column)? {
            Cell::Any => Vec::new(),
            Cell::Not(values) => values.clone(),
            _ => return None,
        };
        // The largest group of this run (matching the request) still below the bound.
        let run = self.run;
        let largest = run
            .facts(tick, rel)
            .iter()
            .filter(|tuple| {
                tuple.len() == pattern.len()
                    && pattern
                        .iter()
                        .zip(tuple.iter())
                        .enumerate()
                        .all(|(at, (cell, value))| at == aggregate.column || cell.admits(value))
            })
            .filter_map(|tuple| match tuple.get(aggregate.column) {
                Some(Value::Int(count)) => usize::try_from(*count).ok(),
                _ => None,
            })
            .filter(|count| *count < threshold)
            .max()
            .unwrap_or(0);
        let need = threshold.saturating_sub(largest);
        if need < 2 {
            return None;
        }
        // The values this run counts in that column (at any tick), and the nodes for a
        // node column: any set will do (other values are asked for as such), but the more
        // of the actual members it names, the more precise the result.
        let mut domain: Vec<Value> = self
            .growth
            .counted
            .binary_search(&(atom.rel, column))
            .ok()
            .and_then(|index| self.domains.get(index))
            .cloned()
            .unwrap_or_default();
        let node_column = self
            .program
            .relation(atom.rel)
            .columns
            .get(column)
            .is_some_and(|column| matches!(column.ty, ir::Type::Node | ir::Type::Role(_)));
        if node_column {
            // Only the nodes that can hold that column in some run.
            domain.extend(
                self.nodes
                    .iter()
                    .map(|node| Value::str(node))
                    .filter(|node| {
                        self.growth
                            .admits_some(atom.rel, column, &Cell::Is(node.clone()))
                    }),
            );
        }
        domain.retain(|value| !excluded.contains(value));
        domain.sort();
        domain.dedup();
        let ways: usize = (0..=need.min(domain.len()))
            .map(|chosen| binomial(domain.len(), chosen))
            .fold(0, usize::saturating_add);
        if ways > COMBINATION_CAP {
            return None;
        }
        let member = |cell: Cell, this: &mut Lineage<'_>| {
            let mut request = base.clone();
            request[column] = cell;
            this.appear(atom.rel, at, request)
        };
        let named: Vec<Arc<Solutions>> = domain
            .iter()
            .map(|value| member(Cell::Is(value.clone()), self))
            .collect();
        excluded.extend(domain.iter().cloned());
        excluded.sort();
        excluded.dedup();
        let other = if excluded.is_empty() {
            member(Cell::Any, self)
        } else {
            member(Cell::Not(excluded), self)
        };
        let mut alternatives: Vec<Arc<Solutions>> = Vec::new();
        for chosen in 0..=need.min(named.len()) {
            for indices in combinations(named.len(), chosen) {
                let mut part: Solutions = vec![Vec::new()];
                for index in indices {
                    part = self.and(&part, &named[index]);
                    if part.is_empty() {
                        break;
                    }
                }
                // The members beyond the named values are other values.
                if chosen < need && !part.is_empty() {
                    part = self.and(&part, &other);
                }
                alternatives.push(Arc::new(part));
            }
        }
        Some(self.or(alternatives))
    }

    /// [`Lineage::appear`] over-approximated: any single fault that loses a delivered message,
    /// sent before `tick`, of a relation with a non-monotone path into `rel` (and, when
    /// `crash` reaches `rel`, any crash).
    fn appear_coarse(&mut self, rel: RelId, tick: u64) -> Solutions {
        let mut solutions: Solutions = Vec::new();
        let sources = self
            .growth
            .sources
            .get(rel.index())
            .cloned()
            .unwrap_or_default();
        let run = self.run;
        for message in &run.messages {
            if message.send_tick < tick
                && message.fate.is_delivered()
                && sources.contains(&message.rel)
            {
                solutions.extend(self.kill_message(
                    &message.sender,
                    &message.dest,
                    message.send_tick,
                ));
            }
        }
        if self.bounds.max_delay > 0 {
            // Any message of a relation reaching `rel`, made to arrive at or before `tick`.
            let reached = self
                .growth
                .reached_from
                .get(rel.index())
                .cloned()
                .unwrap_or_default();
            for message in &run.messages {
                if !reached.contains(&message.rel) {
                    continue;
                }
                let Some((from, to)) = self.delayable(message) else {
                    continue;
                };
                for by in 1..=self.bounds.max_delay {
                    if message.send_tick.saturating_add(1).saturating_add(by) > tick {
                        break;
                    }
                    solutions.push(vec![self.atoms.intern(FaultAtom::Delay {
                        from: from.clone(),
                        to: to.clone(),
                        tick: message.send_tick,
                        by,
                    })]);
                }
            }
        }
        if self
            .growth
            .from_crash
            .get(rel.index())
            .copied()
            .unwrap_or(false)
        {
            solutions.extend(self.crash_appears(&[]));
        }
        self.atoms.minimise(solutions, self.crash_by())
    }

    fn break_firing(
        &mut self,
        firing: &graft_eval::RuleFiring,
        message: Option<(&Value, &Value, u64)>,
    ) -> Solutions {
        let mut parts: Vec<Arc<Solutions>> = Vec::new();
        if let Some((sender, dest, tick)) = message {
            parts.push(Arc::new(self.kill_message(sender, dest, tick)));
        }
        let positions: Vec<&ir::Atom> = self
            .program
            .rule(firing.rule)
            .atoms()
            .map(|(_, atom)| atom)
            .filter(|atom| !atom.negated)
            .collect();
        for (position, body) in firing.body.iter().enumerate() {
            let threshold = positions.get(position).and_then(|atom| {
                count_threshold(self.program, self.program.rule(firing.rule), atom)
            });
            let part = match threshold {
                Some(threshold) => self.break_count(*body, threshold),
                None => self.broken(*body),
            };
            let trivially = part.iter().any(Vec::is_empty);
            parts.push(part);
            if trivially {
                break;
            }
        }
        for absent in &firing.absent {
            parts.push(self.break_absence(absent));
        }
        self.or(parts)
    }

    /// The minimal fault sets that change the value of the aggregate `fact` (derived by
    /// `firing`, which gathers its group): a new member of the group (a why-not request on the
    /// body atoms with the group's values), or, for `max`/`min` over one atom without
    /// negation, the loss of every member holding the extreme value; otherwise the loss of
    /// any member.
    fn break_aggregate(&mut self, fact: FactRef, firing: &graft_eval::RuleFiring) -> Solutions {
        let program = self.program;
        let run = self.run;
        let rule = program.rule(firing.rule);
        let Some(aggregate) = &rule.head.aggregate else {
            return self.break_firing(firing, None);
        };
        let Some(tuple) = run.fact(fact) else {
            return Vec::new();
        };
        let group: Vec<Cell> = tuple
            .iter()
            .enumerate()
            .map(|(column, value)| {
                if column == aggregate.column {
                    Cell::Any
                } else {
                    Cell::Is(value.clone())
                }
            })
            .collect();
        let mut parts: Vec<Arc<Solutions>> = Vec::new();
        if let Some((slots, not)) = head_bindings(rule, &group) {
            for (_, atom) in rule.atoms() {
                if !atom.negated
                    && let Some(at) = matcher::atom_tick(atom, fact.tick)
                {
                    let request = atom_pattern(atom, &slots, &not);
                    parts.push(self.appear(atom.rel, at, request));
                }
            }
        }
        parts.push(Arc::new(self.aggregate_loss(fact, firing)));
        self.or(parts)
    }

    /// The minimal fault sets under which the aggregate `fact` (derived by `firing`) changes
    /// value by losing members of its group: for `max`/`min` over one atom without negation,
    /// the loss of every member holding the extreme value; otherwise the loss of any member
    /// (or a negated atom of a member becoming blocked).
    fn aggregate_loss(&mut self, fact: FactRef, firing: &graft_eval::RuleFiring) -> Solutions {
        let program = self.program;
        let run = self.run;
        let rule = program.rule(firing.rule);
        let Some(aggregate) = &rule.head.aggregate else {
            return self.break_firing(firing, None);
        };
        let Some(tuple) = run.fact(fact) else {
            return Vec::new();
        };
        let atoms: Vec<&ir::Atom> = rule.atoms().map(|(_, atom)| atom).collect();
        let extreme = matches!(aggregate.func, ir::AggFunc::Max | ir::AggFunc::Min);
        let column = atoms.first().and_then(|atom| {
            atom.args
                .iter()
                .position(|term| term.as_var() == Some(aggregate.var))
        });
        match (extreme, atoms.len(), firing.absent.is_empty(), column) {
            (true, 1, true, Some(column)) => {
                let value = tuple.get(aggregate.column);
                let mut part: Solutions = vec![Vec::new()];
                for member in &firing.body {
                    if run.fact(*member).and_then(|member| member.get(column)) != value {
                        continue;
                    }
                    let broken = self.broken(*member);
                    part = self.and(&part, &broken);
                    if part.is_empty() {
                        break;
                    }
                }
                part
            }
            _ => self.break_firing(firing, None),
        }
    }

    /// The minimal fault sets under which the `count` aggregate `fact` falls below
    /// `threshold` (its group's members can only be lost: a new member raises the count),
    /// or `broken(fact)` when the fact is not a single-atom count without negation.
    fn break_count(&mut self, fact: FactRef, threshold: i64) -> Arc<Solutions> {
        let run = self.run;
        let program = self.program;
        let derivations = run.derivations(fact);
        let [Derivation::Aggregate(firing)] = derivations else {
            return self.broken(fact);
        };
        let rule = program.rule(firing.rule);
        let Some(aggregate) = rule
            .head
            .aggregate
            .as_ref()
            .filter(|aggregate| aggregate.func == ir::AggFunc::Count)
        else {
            return self.broken(fact);
        };
        let atoms: Vec<&ir::Atom> = rule.atoms().map(|(_, atom)| atom).collect();
        let ([atom], true) = (atoms.as_slice(), firing.absent.is_empty()) else {
            return self.broken(fact);
        };
        let Some(column) = atom
            .args
            .iter()
            .position(|term| term.as_var() == Some(aggregate.var))
        else {
            return self.broken(fact);
        };
        // Members by counted value: a value stays counted while one of its facts holds.
        let mut members: BTreeMap<Value, Vec<FactRef>> = BTreeMap::new();
        for body in &firing.body {
            if let Some(value) = run.fact(*body).and_then(|tuple| tuple.get(column)) {
                members.entry(value.clone()).or_default().push(*body);
            }
        }
        let count = i64::try_from(members.len()).unwrap_or(i64::MAX);
        // Losing `count - threshold + 1` counted values breaks the firing.
        let need = usize::try_from(count.saturating_sub(threshold).saturating_add(1)).unwrap_or(0);
        if need == 0 {
            return Arc::new(vec![Vec::new()]);
        }
        if need > members.len() || binomial(members.len(), need) > COMBINATION_CAP {
            return self.broken(fact);
        }
        let mut lost: Vec<Arc<Solutions>> = Vec::new();
        for facts in members.values() {
            let mut part: Solutions = vec![Vec::new()];
            for member in facts {
                let broken = self.broken(*member);
                part = self.and(&part, &broken);
                if part.is_empty() {
                    break;
                }
            }
            lost.push(Arc::new(part));
        }
        let mut alternatives: Vec<Arc<Solutions>> = Vec::new();
        for chosen in combinations(lost.len(), need) {
            let mut part: Solutions = vec![Vec::new()];
            for index in chosen {
                part = self.and(&part, &lost[index]);
                if part.is_empty() {
                    break;
                }
            }
            alternatives.push(Arc::new(part));
        }
        Arc::new(self.or(alternatives))
    }

    /// The minimal fault sets that break every derivation of `fact` in this run.
    pub fn broken(&mut self, fact: FactRef) -> Arc<Solutions> {
        let prefix = self.prefix(fact.tick);
        let found = if self.shared(fact.tick) {
            self.cache.memo.get(&(prefix, fact))
        } else {
            self.memo.get(&fact)
        };
        if let Some(found) = found {
            return found.clone();
        }
        if self.stack.contains(&fact) {
            // A derivation through the fact itself gives it no well-founded support.
            self.cycle_hits += 1;
            return Arc::new(vec![Vec::new()]);
        }
        let hits_before = self.cycle_hits;
        self.stack.insert(fact);
        let run = self.run;
        let derivations = run.derivations(fact);
        let mut result: Solutions = if derivations.is_empty() {
            Vec::new()
        } else {
            vec![Vec::new()]
        };
        let dest = run.fact(fact).and_then(|tuple| tuple.first().cloned());
        for derivation in derivations {
            let part = match derivation {
                Derivation::Crash | Derivation::Given { .. } => Vec::new(),
                Derivation::Persisted { from } => (*self.broken(*from)).clone(),
                Derivation::Aggregate(firing) => self.break_aggregate(fact, firing),
                Derivation::Rule(firing) | Derivation::Next(firing) => {
                    self.break_firing(firing, None)
                }
                Derivation::Message {
                    sender,
                    send_tick,
                    firing,
                } => match &dest {
                    Some(dest) => self.break_firing(firing, Some((sender, dest, *send_tick))),
                    None => Vec::new(),
                },
            };
            result = self.and(&result, &part);
            if result.is_empty() {
                break;
            }
        }
        self.stack.remove(&fact);
        let result = Arc::new(result);
        if self.cycle_hits == hits_before {
            if self.shared(fact.tick) {
                self.cache.memo.insert((prefix, fact), result.clone());
            } else {
                self.memo.insert(fact, result.clone());
            }
        }
        result
    }

    /// The minimal fault sets that break every fact in `facts` together.
    pub fn broken_all(&mut self, facts: &[FactRef]) -> Solutions {
        let mut result: Solutions = vec![Vec::new()];
        for fact in facts {
            let part = self.broken(*fact);
            result = self.and(&result, &part);
            if result.is_empty() {
                break;
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimise_keeps_only_minimal_sets() {
        let sets = vec![
            vec![1, 2],
            vec![1],
            vec![2, 3],
            vec![1, 3],
            vec![2, 3],
            vec![4],
        ];
        assert_eq!(minimise(sets), vec![vec![1], vec![4], vec![2, 3]]);
        assert!(is_subset(&[1, 3], &[0, 1, 2, 3]));
        assert!(!is_subset(&[1, 4], &[0, 1, 2, 3]));
        assert_eq!(sorted_union(&[1, 3, 5], &[2, 3, 6]), vec![1, 2, 3, 5, 6]);
        assert_eq!(sorted_union(&[], &[4]), vec![4]);
    }

    #[test]
    fn values_follow_the_rules_from_the_facts() {
        let text = r#"
link("p", "a")@1;
link("p", "b")@1;
link(X, Y)@next :- link(X, Y);
ask(A, P)@async :- link(P, A);
answer(P, A, "yes")@async :- ask(A, P);
tally(P, count<A>) :- answer(P, A, _);
later(P, N + 1) :- tally(P, N);
"#;
        let mut read = |_: &str| Ok::<String, String>(text.to_string());
        let loaded = graft_language::loader::load_program(&["test.ded".to_string()], &mut read);
        assert!(
            loaded.diagnostics.is_empty(),
            "the test program does not load"
        );
        let checked = graft_compiler::check(&loaded.sources, &loaded.files);
        assert!(!checked.has_errors(), "the test program does not check");
        let program = &checked.program;
        let growth = Growth::new(program, &[]);
        let rel = |name: &str| program.relation_by_name(name).expect(name);
        let set = |values: &[&str]| Some(values.iter().map(|value| Value::str(value)).collect());
        let values = |name: &str| growth.values[rel(name).index()].clone();
        assert_eq!(values("ask"), vec![set(&["a", "b"]), set(&["p"])]);
        assert_eq!(
            values("answer"),
            vec![set(&["p"]), set(&["a", "b"]), set(&["yes"])]
        );
        // A count and an arithmetic term are not bounded.
        assert_eq!(values("tally"), vec![set(&["p"]), None]);
        assert_eq!(values("later"), vec![set(&["p"]), None]);
        // Requests for facts no run can hold.
        let answer = rel("answer");
        assert!(!growth.possible(answer, &[Cell::Is(Value::str("a")), Cell::Any, Cell::Any]));
        assert!(!growth.possible(
            answer,
            &[
                Cell::Any,
                Cell::Not(vec![Value::str("a"), Value::str("b")]),
                Cell::Any
            ]
        ));
        assert!(growth.possible(
            answer,
            &[
                Cell::Is(Value::str("p")),
                Cell::Not(vec![Value::str("a")]),
                Cell::Any
            ]
        ));
    }

    #[test]
    fn combinations_choose_every_subset_once() {
        assert_eq!(
            combinations(4, 2),
            vec![
                vec![0, 1],
                vec![0, 2],
                vec![0, 3],
                vec![1, 2],
                vec![1, 3],
                vec![2, 3]
            ]
        );
        assert_eq!(combinations(3, 3), vec![vec![0, 1, 2]]);
        assert_eq!(binomial(4, 2), 6);
        assert_eq!(binomial(30, 15), 155_117_520);
    }

    #[test]
    fn cells_admit_what_they_describe() {
        let x = Value::Str("x".into());
        let y = Value::Str("y".into());
        assert!(Cell::Any.admits(&x));
        assert!(Cell::Is(x.clone()).admits(&x) && !Cell::Is(x.clone()).admits(&y));
        assert!(!Cell::Not(vec![y.clone()]).admits(&y) && Cell::Not(vec![y.clone()]).admits(&x));
        assert!(admits_all(
            &[Cell::Any, Cell::Not(vec![y.clone()])],
            &[y.clone(), x.clone()]
        ));
        assert!(!admits_all(&[Cell::Any], &[x.clone(), y]));
        assert!(Cell::Rising(2).admits(&Value::Int(2)) && Cell::Rising(2).admits(&Value::Int(5)));
        assert!(!Cell::Rising(2).admits(&Value::Int(1)) && !Cell::Rising(2).admits(&x));
    }
}
