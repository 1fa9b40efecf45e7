//! The random fault-injection baseline: fault schedules drawn under the same bounds, with a
//! small seeded generator (SplitMix64), so that runs are reproducible.

use crate::faults::{Delay, Drop, FaultSet};
use crate::search::{Counterexample, Progress, Search, SearchOptions, Verdict, record};
use crate::{Execution, Verifier, VerifyError};

/// SplitMix64: a tiny, fast, well-mixed 64-bit generator; deterministic for a seed.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (`bound > 0`), by rejection so that it is unbiased.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound <= 1 {
            return 0;
        }
        let zone = u64::MAX - (u64::MAX % bound);
        loop {
            let value = self.next_u64();
            if value < zone {
                return value % bound;
            }
        }
    }
}

impl Verifier {
    /// One fault schedule drawn uniformly in the shape of Molly's fault space: `crashes`
    /// distinct nodes each crash at a tick in `1..=EOT+1` (EOT+1: not at all), and every
    /// message channel between distinct nodes loses its messages of each tick before EFF with
    /// probability 1/2. Under `--max-delay D`, each channel and tick before EFF that is not
    /// lost then delays its messages with probability 1/2, by 1..=D ticks uniformly (drawn
    /// after the omissions, so that D = 0 draws exactly the schedules it always drew).
    pub fn draw(&self, rng: &mut SplitMix64) -> FaultSet {
        let mut faults = FaultSet::default();
        let nodes = self.nodes();
        let mut pool: Vec<&String> = nodes.iter().collect();
        for _ in 0..self.bounds.crashes.min(nodes.len()) {
            let index = rng.below(pool.len() as u64) as usize;
            let node = pool.swap_remove(index);
            let tick = 1 + rng.below(self.bounds.eot + 1);
            if tick <= self.bounds.eot {
                faults.crashes.insert(node.clone(), tick);
            }
        }
        for tick in 1..self.bounds.eff {
            for from in nodes {
                for to in nodes {
                    if from != to && rng.next_u64() & 1 == 1 {
                        faults.drops.insert(Drop {
                            from: from.clone(),
                            to: to.clone(),
                            tick,
                        });
                    }
                }
            }
        }
        if self.bounds.max_delay > 0 {
            for tick in 1..self.bounds.eff {
                for from in nodes {
                    for to in nodes {
                        let lost = faults.drops.contains(&Drop {
                            from: from.clone(),
                            to: to.clone(),
                            tick,
                        });
                        if from != to && !lost && rng.next_u64() & 1 == 1 {
                            faults.delays.insert(Delay {
                                from: from.clone(),
                                to: to.clone(),
                                tick,
                                by: 1 + rng.below(self.bounds.max_delay),
                            });
                        }
                    }
                }
            }
        }
        faults.normalise();
        faults
    }

    /// Random fault injection: the failure-free run, then drawn schedules until a
    /// counterexample (all of them up to the limit with `options.all`) or
    /// `options.max_executions` runs. It never certifies.
    pub fn random(
        &self,
        options: &SearchOptions,
        seed: u64,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Search, VerifyError> {
        let mut rng = SplitMix64::new(seed);
        let mut search = Search {
            verdict: Verdict::Inconclusive,
            executions: 0,
            counterexamples: Vec::new(),
            log: Vec::new(),
            explored: Vec::new(),
            limit: None,
        };
        let mut replay: Vec<FaultSet> = options.replay.clone();
        replay.reverse();
        while search.executions < options.max_executions {
            let faults = if search.executions == 0 {
                FaultSet::default()
            } else {
                match replay.pop() {
                    Some(faults) => faults,
                    None => self.draw(&mut rng),
                }
            };
            let execution: Execution = self.execute(&faults)?;
            search.executions += 1;
            search.log.push(record(self, search.executions, &execution));
            let bad = !execution.violations.is_empty();
            if bad {
                let duplicate = search
                    .counterexamples
                    .iter()
                    .any(|found| found.execution.faults == execution.faults);
                if !duplicate {
                    search.counterexamples.push(Counterexample {
                        iteration: search.executions,
                        execution,
                    });
                }
            } else {
                search.explored.push(execution.faults);
            }
            progress(Progress {
                executions: search.executions,
                queued: 0,
                counterexamples: search.counterexamples.len(),
            });
            if bad && !options.all {
                break;
            }
        }
        if search.counterexamples.is_empty() {
            search.limit = Some(format!(
                "random search stopped after --max-executions {} runs (it never certifies)",
                options.max_executions
            ));
        } else {
            search.verdict = Verdict::Counterexample;
        }
        Ok(search)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_deterministic_and_bounded() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        let first: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let second: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(first, second);
        assert_ne!(first[0], first[1]);
        let mut c = SplitMix64::new(1);
        assert!((0..1000).all(|_| c.below(6) < 6));
    }
}
