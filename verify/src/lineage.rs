//! The backward step of LDFI: from a run's provenance, the minimal fault sets that break every
//! derivation of a fact.
//!
//! A fact holds if any of its derivations holds (an OR over derivations); a derivation holds if
//! all its body facts hold, its message (if any) was delivered and its negated atoms stay absent
//! (an AND). "Broken" is the dual: an AND over derivations of an OR over the parts. Fault
//! variables are omissions `O(from, to, t)` for `t < EFF` and crashes `C(node, t)`; a message
//! sent by `from` at tick `t` is lost under `O(from, to, t)` or under `C(from, t')` for any
//! `t'` from `from`'s first send up to `t` (Molly's encoding).
//!
//! Instead of handing the formula to a SAT solver and filtering all models down to the minimal
//! ones, the minimal solutions are computed directly, bottom-up over the provenance DAG: the
//! solutions of an OR are the union of its parts' solutions, those of an AND are the pairwise
//! unions, and after each step only subset-minimal sets within the bounds are kept (at most
//! one crash tick per node, at most `crashes` crashed nodes, omissions covered by a crash of
//! their sender dropped). Results are memoised per fact.
//!
//! Negated body atoms (`notin q(..)`) are supported by the absence of `q`; faults that make a
//! matching `q` fact appear break the derivation (why-not provenance). What is done exactly:
//! - `notin crash(O, N, T)`: broken by `C(N, T)` (every node or tick for a wildcard): exact.
//! - `notin q(..)` where `q` cannot gain facts under faults (no path into `q` from a lost
//!   message through negation, aggregation or retraction, and none from `crash`): unbreakable,
//!   exact (faults only remove messages, and without non-monotone steps that only removes facts).
//! - otherwise, over-approximated: every single fault that loses a delivered message, sent
//!   before the atom's tick, of a relation with a non-monotone path into `q` (and, when `crash`
//!   reaches `q`, every crash) is taken to break the absence. This may add candidates that turn
//!   out harmless when run, never hides one.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::rc::Rc;

use graft_compiler::ir::{self, RelId, RuleKind, Value};
use graft_eval::{Absent, Derivation, FactRef, Run};

use crate::faults::{Bounds, Drop, FaultSet};

/// A fault variable.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultAtom {
    Omission { from: String, to: String, tick: u64 },
    Crash { node: String, tick: u64 },
}

/// Fault variables interned to small ids, stable for one verification.
#[derive(Clone, Debug, Default)]
pub struct AtomTable {
    atoms: Vec<FaultAtom>,
    ids: HashMap<FaultAtom, u32>,
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
    crash: Option<RelId>,
}

impl Growth {
    pub fn new(program: &ir::Program) -> Growth {
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
        Growth {
            sources,
            from_crash,
            crash,
        }
    }
}

/// The cap on the number of solutions kept for one sub-formula; past it the smallest are kept
/// and the result is marked truncated (a certificate is then impossible).
const SOLUTION_CAP: usize = 20_000;

/// Keeps the subset-minimal sets, sorted by size then content.
pub fn minimise(mut sets: Solutions) -> Solutions {
    sets.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    sets.dedup();
    let mut kept: Solutions = Vec::with_capacity(sets.len());
    for set in sets {
        if !kept.iter().any(|small| is_subset(small, &set)) {
            kept.push(set);
        }
    }
    kept
}

/// Whether sorted `small` is a subset of sorted `large`.
fn is_subset(small: &[u32], large: &[u32]) -> bool {
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

/// A negated atom's relation, tick and instantiated pattern.
type AbsentKey = (RelId, u64, Vec<Option<Value>>);

/// The backward step over one run.
pub struct Lineage<'a> {
    run: &'a Run,
    atoms: &'a mut AtomTable,
    growth: &'a Growth,
    bounds: Bounds,
    nodes: &'a [String],
    first_send: HashMap<Value, u64>,
    memo: HashMap<FactRef, Rc<Solutions>>,
    absent_memo: HashMap<AbsentKey, Rc<Solutions>>,
    stack: HashSet<FactRef>,
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
        atoms: &'a mut AtomTable,
        growth: &'a Growth,
        bounds: Bounds,
        nodes: &'a [String],
    ) -> Lineage<'a> {
        let mut first_send: HashMap<Value, u64> = HashMap::new();
        for message in &run.messages {
            let entry = first_send
                .entry(message.sender.clone())
                .or_insert(message.send_tick);
            *entry = (*entry).min(message.send_tick);
        }
        Lineage {
            run,
            atoms,
            growth,
            bounds,
            nodes,
            first_send,
            memo: HashMap::new(),
            absent_memo: HashMap::new(),
            stack: HashSet::new(),
            cycle_hits: 0,
            truncated: false,
        }
    }

    /// Atom id facts: (is crash, node, tick).
    fn describe(&self, id: u32) -> Option<(bool, &str, u64)> {
        match self.atoms.get(id)? {
            FaultAtom::Omission { from, tick, .. } => Some((false, from.as_str(), *tick)),
            FaultAtom::Crash { node, tick } => Some((true, node.as_str(), *tick)),
        }
    }

    /// Normalises a union of atoms; `None` when it exceeds the crash bound.
    fn normalise(&self, mut set: Vec<u32>) -> Option<Vec<u32>> {
        set.sort_unstable();
        set.dedup();
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

    fn cap(&mut self, mut solutions: Solutions) -> Solutions {
        if solutions.len() > SOLUTION_CAP {
            solutions.truncate(SOLUTION_CAP);
            self.truncated = true;
        }
        solutions
    }

    fn and(&mut self, left: &Solutions, right: &Solutions) -> Solutions {
        if left.is_empty() || right.is_empty() {
            return Vec::new();
        }
        let mut product = Vec::with_capacity(left.len() * right.len());
        for a in left {
            for b in right {
                let mut union = a.clone();
                union.extend_from_slice(b);
                if let Some(set) = self.normalise(union) {
                    product.push(set);
                }
            }
        }
        let product = minimise(product);
        self.cap(product)
    }

    fn or(&mut self, parts: Vec<Rc<Solutions>>) -> Solutions {
        if parts.iter().any(|part| part.iter().any(Vec::is_empty)) {
            return vec![Vec::new()];
        }
        let all: Solutions = parts.iter().flat_map(|part| part.iter().cloned()).collect();
        let all = minimise(all);
        self.cap(all)
    }

    /// The atoms that lose a message from `sender` to `dest` sent at `tick`, each alone.
    fn kill_message(&mut self, sender: &Value, dest: &Value, tick: u64) -> Solutions {
        let mut solutions = Vec::new();
        let from = node_name(sender);
        let to = node_name(dest);
        if sender != dest && tick >= 1 && tick < self.bounds.eff {
            solutions.push(vec![self.atoms.intern(FaultAtom::Omission {
                from: from.clone(),
                to,
                tick,
            })]);
        }
        if self.bounds.crashes > 0 {
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

    /// The faults that could make a fact matching `absent` appear.
    fn break_absence(&mut self, absent: &Absent) -> Rc<Solutions> {
        let key = (absent.rel, absent.tick, absent.pattern.clone());
        if let Some(found) = self.absent_memo.get(&key) {
            return found.clone();
        }
        let mut solutions: Solutions = Vec::new();
        if Some(absent.rel) == self.growth.crash {
            if self.bounds.crashes > 0 {
                let crashed: Vec<String> = match absent.pattern.get(1) {
                    Some(Some(node)) => vec![node_name(node)],
                    _ => self.nodes.to_vec(),
                };
                let ticks: Vec<u64> = match absent.pattern.get(2) {
                    Some(Some(Value::Int(tick))) => u64::try_from(*tick)
                        .ok()
                        .filter(|tick| *tick >= 1 && *tick <= self.bounds.eot)
                        .into_iter()
                        .collect(),
                    Some(Some(_)) => Vec::new(),
                    _ => (1..=self.bounds.eot).collect(),
                };
                for node in &crashed {
                    for tick in &ticks {
                        solutions.push(vec![self.atoms.intern(FaultAtom::Crash {
                            node: node.clone(),
                            tick: *tick,
                        })]);
                    }
                }
            }
        } else {
            let sources = self
                .growth
                .sources
                .get(absent.rel.index())
                .cloned()
                .unwrap_or_default();
            let run = self.run;
            for message in &run.messages {
                if message.send_tick < absent.tick
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
            if self
                .growth
                .from_crash
                .get(absent.rel.index())
                .copied()
                .unwrap_or(false)
                && self.bounds.crashes > 0
            {
                for node in self.nodes {
                    for tick in 1..=self.bounds.eot {
                        solutions.push(vec![self.atoms.intern(FaultAtom::Crash {
                            node: node.clone(),
                            tick,
                        })]);
                    }
                }
            }
        }
        let solutions = Rc::new(minimise(solutions));
        self.absent_memo.insert(key, solutions.clone());
        solutions
    }

    fn break_firing(
        &mut self,
        firing: &graft_eval::RuleFiring,
        message: Option<(&Value, &Value, u64)>,
    ) -> Solutions {
        let mut parts: Vec<Rc<Solutions>> = Vec::new();
        if let Some((sender, dest, tick)) = message {
            parts.push(Rc::new(self.kill_message(sender, dest, tick)));
        }
        for body in &firing.body {
            let part = self.broken(*body);
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

    /// The minimal fault sets that break every derivation of `fact` in this run.
    pub fn broken(&mut self, fact: FactRef) -> Rc<Solutions> {
        if let Some(found) = self.memo.get(&fact) {
            return found.clone();
        }
        if self.stack.contains(&fact) {
            // A derivation through the fact itself gives it no well-founded support.
            self.cycle_hits += 1;
            return Rc::new(vec![Vec::new()]);
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
                Derivation::Rule(firing)
                | Derivation::Aggregate(firing)
                | Derivation::Next(firing) => self.break_firing(firing, None),
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
        let result = Rc::new(result);
        if self.cycle_hits == hits_before {
            self.memo.insert(fact, result.clone());
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

    /// Whether the fault set `solution` breaks some solution in `others` (contains it).
    pub fn implies_any(solution: &[u32], others: &Solutions) -> bool {
        others.iter().any(|other| is_subset(other, solution))
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
    }
}
