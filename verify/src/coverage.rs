//! Candidates that the lineage of an earlier run shows to be redundant (see
//! `docs/verification.md`, "Candidates covered by an earlier run").
//!
//! When a good run with effective faults `B` is extended, its lineage says: every fault set
//! containing `B` that breaks a target contains `B ∪ S` for one of the minimal sets `S` it
//! returned. So a queued candidate `C` that contains `B` (strictly) but none of the
//! candidates `B ∪ S` cannot break a target, and every falsifier containing `C` contains one
//! of the `B ∪ S`, which the search explores in any case: running `C` would only repeat what
//! those candidates cover. [`Coverage::redundant`] leaves such a `C` out, provided none of
//! `B`'s candidates was itself left out (or is `C`): a candidate left out relies on
//! candidates that are run or still queued, so what it relies on is eventually run, never a
//! chain of candidates that all rely on each other.
//!
//! "Contains" is the order of the fault variables: the omissions and delays of one set among
//! the other's, and every crash of one at a tick the other crashes the node at (or before,
//! when the program never reads crash ticks and `C(n, t)` means "crashed by `t`").

use graft_eval::hash::{FastMap, FastSet};

use crate::faults::FaultSet;
use crate::lineage::is_subset;

/// A fault set in interned form: its omissions and delays as sorted ids, its crashes as
/// (node id, tick) sorted by node.
#[derive(Clone, Debug, Default)]
struct Compact {
    events: Vec<u32>,
    crashes: Vec<(u32, u64)>,
}

impl Compact {
    fn size(&self) -> usize {
        self.events.len() + self.crashes.len()
    }
}

/// An extended good run: its effective faults and its candidates (within the bounds), each
/// with the key the search records it under.
#[derive(Debug)]
struct Extended {
    base: Compact,
    candidates: Vec<(Compact, FaultSet)>,
}

/// The extended runs of one search and the candidates left out so far.
#[derive(Debug, Default)]
pub(crate) struct Coverage {
    /// Whether a crash atom means "crashed at or before its tick" (crash ticks unread).
    crash_by: bool,
    /// (from, to, tick, ticks late; 0 for an omission) → id.
    events: FastMap<(String, String, u64, u64), u32>,
    nodes: FastMap<String, u32>,
    extended: Vec<Extended>,
    /// The keys of the candidates left out.
    left_out: FastSet<FaultSet>,
    /// How many candidates were left out.
    pub(crate) count: u64,
}

impl Coverage {
    pub(crate) fn new(crash_by: bool) -> Coverage {
        Coverage {
            crash_by,
            ..Coverage::default()
        }
    }

    fn compact(&mut self, faults: &FaultSet) -> Compact {
        let mut events: Vec<u32> = Vec::with_capacity(faults.drops.len() + faults.delays.len());
        for (from, to, tick, by) in channel_events(faults) {
            let next = u32::try_from(self.events.len()).unwrap_or(u32::MAX);
            let id = *self
                .events
                .entry((from.clone(), to.clone(), tick, by))
                .or_insert(next);
            events.push(id);
        }
        events.sort_unstable();
        let mut crashes: Vec<(u32, u64)> = Vec::with_capacity(faults.crashes.len());
        for (node, tick) in &faults.crashes {
            let next = u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
            let id = *self.nodes.entry(node.clone()).or_insert(next);
            crashes.push((id, *tick));
        }
        crashes.sort_unstable();
        Compact { events, crashes }
    }

    /// Whether every run under `strong` is also under `weak`: `strong` holds `weak`'s
    /// omissions and delays and crashes each of `weak`'s crashed nodes at its tick (by it,
    /// with `crash_by`).
    fn implies(&self, strong: &Compact, weak: &Compact) -> bool {
        is_subset(&weak.events, &strong.events)
            && weak.crashes.iter().all(|(node, tick)| {
                strong.crashes.iter().any(|(other, at)| {
                    other == node && (at == tick || (self.crash_by && at < tick))
                })
            })
    }

    /// Records a good run whose effective faults `base` were extended with `candidates`
    /// (each with its search key), the complete list of the candidates its lineage gives
    /// (a truncated lineage must not be recorded).
    pub(crate) fn record(&mut self, base: &FaultSet, candidates: &[(FaultSet, FaultSet)]) {
        let base = self.compact(base);
        let candidates = candidates
            .iter()
            .map(|(candidate, key)| (self.compact(candidate), key.clone()))
            .collect();
        self.extended.push(Extended { base, candidates });
    }

    /// `faults` in the ids of the recorded sets, without interning: omissions, delays and
    /// crashed nodes no recorded set names are left out, and counted.
    fn lookup(&self, faults: &FaultSet) -> (Compact, usize) {
        let mut unknown = 0;
        let mut events: Vec<u32> = Vec::with_capacity(faults.drops.len() + faults.delays.len());
        for (from, to, tick, by) in channel_events(faults) {
            match self.events.get(&(from.clone(), to.clone(), tick, by)) {
                Some(id) => events.push(*id),
                None => unknown += 1,
            }
        }
        events.sort_unstable();
        let mut crashes: Vec<(u32, u64)> = Vec::with_capacity(faults.crashes.len());
        for (node, tick) in &faults.crashes {
            match self.nodes.get(node) {
                Some(id) => crashes.push((*id, *tick)),
                None => unknown += 1,
            }
        }
        crashes.sort_unstable();
        (Compact { events, crashes }, unknown)
    }

    /// Whether `candidate` (with search key `key`) is covered by a recorded run (see the
    /// module documentation): it strictly contains the run's effective faults and none of
    /// the run's candidates, none of which was left out or has the key `key`.
    pub(crate) fn covered(&self, candidate: &FaultSet, key: &FaultSet) -> bool {
        if self.extended.is_empty() {
            return false;
        }
        let (compact, unknown) = self.lookup(candidate);
        self.extended.iter().any(|extended| {
            extended.base.size() <= compact.size()
                && self.implies(&compact, &extended.base)
                && (unknown > 0 || !self.implies(&extended.base, &compact))
                && extended.candidates.iter().all(|(other, other_key)| {
                    !self.implies(&compact, other)
                        && other_key != key
                        && !self.left_out.contains(other_key)
                })
        })
    }

    /// Records that the candidate with search key `key` was left out: no candidate left out
    /// later relies on it.
    pub(crate) fn leave_out(&mut self, key: FaultSet) {
        self.left_out.insert(key);
        self.count += 1;
    }
}

/// A fault set's omissions and delays as `(from, to, tick, by)`, an omission with `by` 0.
fn channel_events(faults: &FaultSet) -> impl Iterator<Item = (&String, &String, u64, u64)> {
    faults
        .drops
        .iter()
        .map(|drop| (&drop.from, &drop.to, drop.tick, 0))
        .chain(
            faults
                .delays
                .iter()
                .map(|delay| (&delay.from, &delay.to, delay.tick, delay.by)),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::Drop;

    fn drops(list: &[(&str, &str, u64)]) -> FaultSet {
        let mut faults = FaultSet::default();
        for (from, to, tick) in list {
            faults.drops.insert(Drop {
                from: (*from).into(),
                to: (*to).into(),
                tick: *tick,
            });
        }
        faults
    }

    fn crash(faults: FaultSet, node: &str, tick: u64) -> FaultSet {
        let mut faults = faults;
        faults.crashes.insert(node.into(), tick);
        faults
    }

    fn with_keys(sets: &[FaultSet]) -> Vec<(FaultSet, FaultSet)> {
        sets.iter().map(|set| (set.clone(), set.clone())).collect()
    }

    #[test]
    fn a_candidate_holding_a_run_but_none_of_its_candidates_is_covered() {
        let mut coverage = Coverage::new(true);
        let base = drops(&[("a", "b", 1)]);
        let first = drops(&[("a", "b", 1), ("a", "c", 1)]);
        let second = drops(&[("a", "b", 1), ("c", "b", 2)]);
        coverage.record(&base, &with_keys(&[first.clone(), second.clone()]));
        // Holds the run's faults and neither candidate: covered.
        let other = drops(&[("a", "b", 1), ("b", "a", 2)]);
        assert!(coverage.covered(&other, &other));
        // Holds one of the candidates: it may break a target.
        let larger = drops(&[("a", "b", 1), ("a", "c", 1), ("b", "a", 2)]);
        assert!(!coverage.covered(&larger, &larger));
        // Does not hold the run's faults: the run says nothing about it.
        let apart = drops(&[("b", "a", 2)]);
        assert!(!coverage.covered(&apart, &apart));
        // The run itself, and its candidates, are not covered.
        assert!(!coverage.covered(&base, &base));
        assert!(!coverage.covered(&first, &first));
        // Once a candidate of the run is left out, the run covers nothing more: what a
        // candidate left out relies on is always run or still queued.
        coverage.leave_out(second);
        assert!(!coverage.covered(&other, &other));
        assert_eq!(coverage.count, 1);
    }

    #[test]
    fn a_candidate_does_not_rely_on_itself_under_another_name() {
        let mut coverage = Coverage::new(true);
        let base = FaultSet::default();
        let candidate = drops(&[("a", "b", 1)]);
        coverage.record(&base, &[(candidate.clone(), drops(&[("a", "c", 1)]))]);
        // Its key is the key of one of the run's candidates (a renaming of it, with symmetry).
        let renamed = drops(&[("a", "c", 1), ("b", "c", 2)]);
        let key = drops(&[("a", "c", 1)]);
        assert!(!coverage.covered(&renamed, &key));
        assert!(coverage.covered(&renamed, &renamed));
    }

    #[test]
    fn crashes_by_a_tick_hold_later_crashes() {
        let base = crash(FaultSet::default(), "a", 5);
        let candidate = crash(drops(&[("b", "c", 1)]), "a", 5);
        let earlier = crash(drops(&[("b", "c", 2)]), "a", 3);
        for crash_by in [true, false] {
            let mut coverage = Coverage::new(crash_by);
            coverage.record(&base, &with_keys(std::slice::from_ref(&candidate)));
            // Crashing `a` at 3 crashes it by 5 (when crash ticks are not read): the run's
            // faults are held, its candidate (which also needs `b->c@1` lost) is not.
            assert_eq!(coverage.covered(&earlier, &earlier), crash_by);
            // An earlier crash alone, without other faults, strictly holds the run's crash.
            let alone = crash(FaultSet::default(), "a", 3);
            assert_eq!(coverage.covered(&alone, &alone), crash_by);
        }
    }
}
