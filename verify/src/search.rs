//! The LDFI loop (Molly's `Verifier.doVerify`): candidates smallest first, each run and
//! checked; good runs extend the search with the minimal fault sets that break their own
//! lineage, seeded with the faults that changed the run ([`Verifier::effective`]).

use std::collections::{BTreeMap, BTreeSet};

use graft_compiler::ir::Value;
use graft_eval::hash::{FastMap, FastSet};
use graft_eval::{FactRef, Run};
use serde::{Deserialize, Serialize};

use crate::coverage::Coverage;
use crate::faults::{Crash, Delay, Drop, FaultSet};
use crate::lineage::{AtomTable, Lineage, LineageCache, Solutions};
use crate::spec::{Violation, render};
use crate::{Execution, Verifier, VerifyError};

/// How a search ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// A run violated the specification.
    Counterexample,
    /// Every candidate was explored without a violation: no counterexample exists for these
    /// bounds and inputs.
    Certified,
    /// A limit (`--max-executions`, or the cap on formula size) stopped the search first.
    Inconclusive,
}

/// Whether a run was good.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Good,
    Counterexample,
}

/// One line of the run log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// 1 for the failure-free run.
    pub iteration: u64,
    pub status: Status,
    pub drops: Vec<Drop>,
    pub crashes: Vec<Crash>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delays: Vec<Delay>,
    pub violations: Vec<Violation>,
    /// The `post` facts at EOT.
    pub post: Vec<String>,
    /// Messages sent, and lost (by omission or a crashed sender).
    pub messages_sent: usize,
    pub messages_lost: usize,
}

/// A counterexample: the faults and the run they produced.
#[derive(Clone, Debug)]
pub struct Counterexample {
    /// The execution number (1 is the failure-free run).
    pub iteration: u64,
    pub execution: Execution,
}

/// What a search found.
#[derive(Clone, Debug)]
pub struct Search {
    pub verdict: Verdict,
    /// Runs performed, the failure-free run included.
    pub executions: u64,
    pub counterexamples: Vec<Counterexample>,
    pub log: Vec<RunRecord>,
    /// The fault sets of good runs, in the order run (for refinement replays and the cache).
    pub explored: Vec<FaultSet>,
    /// Why the search is inconclusive, when it is.
    pub limit: Option<String>,
}

/// Search limits and seeds.
#[derive(Clone, Debug)]
pub struct SearchOptions {
    /// Keep going after the first counterexample.
    pub all: bool,
    /// Stop (inconclusive) after this many runs.
    pub max_executions: u64,
    /// Fault sets to run first, in order (earlier counterexamples, minimal fault sets).
    pub replay: Vec<FaultSet>,
    /// Run one fault set per class of schedules equal up to renaming nodes the program and
    /// its facts cannot tell apart ([`crate::symmetry`]).
    pub symmetry: bool,
    /// Leave out the candidates an earlier run covers ([`crate::coverage`]): the verdict is
    /// the same, with fewer runs, but fewer schedules are explored — so fewer on which
    /// `never` invariants without negated atoms are checked, and fewer for `--refines` to
    /// compare versions on.
    pub skip_covered: bool,
}

impl Default for SearchOptions {
    fn default() -> SearchOptions {
        SearchOptions {
            all: false,
            max_executions: 10_000,
            replay: Vec::new(),
            symmetry: false,
            skip_covered: true,
        }
    }
}

/// Reported after every run.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub executions: u64,
    pub queued: usize,
    pub counterexamples: usize,
}

/// A record of one execution.
pub fn record(verifier: &Verifier, iteration: u64, execution: &Execution) -> RunRecord {
    let program = verifier.program();
    let post = match verifier.spec.post {
        Some(post) => {
            let name = &program.relation(post).name;
            verifier
                .spec
                .post_at(&execution.run, verifier.bounds.eot)
                .iter()
                .map(|tuple| render(name, tuple))
                .collect()
        }
        None => Vec::new(),
    };
    RunRecord {
        iteration,
        status: if execution.violations.is_empty() {
            Status::Good
        } else {
            Status::Counterexample
        },
        drops: execution.faults.drops.iter().cloned().collect(),
        crashes: execution.faults.crash_list(),
        delays: execution.faults.delays.iter().cloned().collect(),
        violations: execution.violations.clone(),
        post,
        messages_sent: execution.run.messages.len(),
        messages_lost: execution
            .run
            .messages
            .iter()
            .filter(|message| !message.fate.is_delivered())
            .count(),
    }
}

impl Verifier {
    /// The minimal fault sets that would break `run`'s lineage: for every `post` fact at EOT
    /// that the failure-free run has and whose `pre` holds, the sets breaking it; and for
    /// every fact guarding a `never` invariant, the sets breaking it. Each set comes with
    /// whether it looks vacuous: for every target it breaks, the lineage says it also breaks
    /// the target's `pre`. The lineage of negated atoms over-approximates, so such a set (and
    /// its extensions) may still falsify `post`: it is explored last, not dropped. Returns the
    /// sets (useful first, then smallest first) and whether a formula was truncated.
    /// `cache` keeps results for the next runs of the same search ([`LineageCache`]).
    pub fn minimal_fault_sets(
        &self,
        run: &Run,
        atoms: &mut AtomTable,
        cache: &mut LineageCache,
    ) -> (Vec<(FaultSet, bool)>, bool) {
        let eot = self.bounds.eot;
        let program = self.program();
        let mut targets: Vec<(Vec<FactRef>, Option<FactRef>)> = Vec::new();
        if let Some(post) = self.spec.post {
            for tuple in self.spec.post_at(run, eot) {
                if !self.expected_post.contains(&tuple) {
                    continue;
                }
                let pre = self.spec.pre.and_then(|pre| run.find(eot, pre, &tuple));
                if self.spec.pre.is_some() && pre.is_none() {
                    continue;
                }
                if let Some(fact) = run.find(eot, post, &tuple) {
                    targets.push((vec![fact], pre));
                }
            }
        }
        for guard in self.spec.never_guards(program, run) {
            targets.push((guard, None));
        }
        let nodes = self.nodes.clone();
        let mut lineage = Lineage::new(
            run,
            self.program(),
            atoms,
            &self.growth,
            self.bounds,
            &nodes,
            cache,
        );
        let mut all: Solutions = Vec::new();
        let mut useful: BTreeSet<Vec<u32>> = BTreeSet::new();
        let mut checks: Vec<(Solutions, Solutions)> = Vec::new();
        for (facts, pre) in targets {
            let solutions = lineage.broken_all(&facts);
            let vacuous = match pre {
                Some(pre) => (*lineage.broken(pre)).clone(),
                None => Vec::new(),
            };
            checks.push((solutions, vacuous));
        }
        let truncated = lineage.truncated;
        drop(lineage);
        let crash_by = !self.growth.crash_tick_read;
        for (solutions, vacuous) in checks {
            for solution in solutions {
                if !atoms.implies_any(&solution, &vacuous, crash_by) {
                    useful.insert(solution.clone());
                }
                all.push(solution);
            }
        }
        let all = atoms.minimise(all, !self.growth.crash_tick_read);
        let mut sets: Vec<(FaultSet, bool)> = all
            .iter()
            .map(|solution| (atoms.fault_set(solution), !useful.contains(solution)))
            .filter(|(faults, _)| !faults.is_empty())
            .collect();
        sets.sort_by(|a, b| {
            a.1.cmp(&b.1)
                .then_with(|| a.0.size().cmp(&b.0.size()))
                .then_with(|| a.0.cmp(&b.0))
        });
        sets.dedup_by(|a, b| a.0 == b.0);
        (sets, truncated)
    }

    /// Molly's LDFI loop.
    pub fn ldfi(
        &self,
        options: &SearchOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Search, VerifyError> {
        // Per worker: its fault variables and lineage results (see `analysed_batch`); the
        // first also serves the runs analysed here.
        let mut states: Vec<WorkerState> = (0..self.workers.max(1))
            .map(|_| WorkerState::default())
            .collect();
        let mut search = Search {
            verdict: Verdict::Certified,
            executions: 0,
            counterexamples: Vec::new(),
            log: Vec::new(),
            explored: Vec::new(),
            limit: None,
        };
        // Fault sets run or queued (with symmetry, their canonical forms).
        let symmetric = options.symmetry && !self.symmetry.is_trivial();
        let key = |faults: &FaultSet| self.search_key(faults, symmetric);
        // (Hashed: only looked up, never iterated.)
        let mut seen: FastSet<FaultSet> = FastSet::default();
        // Replayed sets first (in the given order), then candidates smallest first.
        let mut replay: Vec<FaultSet> = Vec::new();
        for faults in &options.replay {
            let mut faults = faults.clone();
            faults.normalise();
            if faults.within(&self.bounds) && !faults.is_empty() && seen.insert(key(&faults)) {
                replay.push(faults);
            }
        }
        replay.reverse();
        // Sets that do not look vacuous first, then extensions of runs whose `post` already
        // differs from the failure-free run's (their faults broke lineage), then smallest
        // first (then in a fixed order).
        let mut queue: BTreeSet<(Priority, FaultSet)> = BTreeSet::new();
        // The key each queued set waits under (a set met again under a better key moves
        // forward).
        let mut waiting: FastMap<FaultSet, Priority> = FastMap::default();
        let mut truncated = false;
        // The effective fault sets of the good runs whose lineage was extended.
        let mut extended: FastSet<FaultSet> = FastSet::default();
        // The extended runs with their candidates, which show some queued candidates to be
        // redundant (see `crate::coverage`).
        let mut coverage = Coverage::new(!self.growth.crash_tick_read);

        let failure_free = Execution {
            faults: FaultSet::default(),
            run: self.failure_free.clone(),
            violations: self.spec.check(
                self.program(),
                &self.failure_free,
                Some(&self.failure_free),
                &self.expected_post,
                self.bounds.eot,
            ),
        };
        seen.insert(FaultSet::default());
        // Runs made ahead of the loop with more than one worker, by fault set.
        let mut prefetched: BTreeMap<FaultSet, Result<Analysed, VerifyError>> = BTreeMap::new();
        let mut next = Some((failure_free, None));
        loop {
            let (execution, analysis) = match next.take() {
                Some(execution) => execution,
                None => {
                    let faults = match replay.pop() {
                        Some(faults) => faults,
                        None => match queue.pop_first() {
                            Some((_, faults)) => {
                                waiting.remove(&faults);
                                let faults_key = key(&faults);
                                if coverage.covered(&faults, &faults_key) {
                                    coverage.leave_out(faults_key);
                                    prefetched.remove(&faults);
                                    continue;
                                }
                                faults
                            }
                            None => break,
                        },
                    };
                    if search.executions >= options.max_executions {
                        search.limit = Some(format!(
                            "stopped after --max-executions {} runs with {} candidate(s) left",
                            options.max_executions,
                            queue.len() + replay.len() + 1
                        ));
                        break;
                    }
                    match prefetched.remove(&faults) {
                        Some(result) => result?,
                        None => {
                            let upcoming = replay
                                .iter()
                                .rev()
                                .chain(queue.iter().map(|(_, faults)| faults));
                            let ahead = Ahead {
                                extended: &extended,
                                coverage: &coverage,
                                symmetric,
                            };
                            self.execute_ahead(
                                faults,
                                upcoming,
                                &mut prefetched,
                                &mut states,
                                &ahead,
                            )?
                        }
                    }
                }
            };
            search.executions += 1;
            let iteration = search.executions;
            search.log.push(record(self, iteration, &execution));
            if execution.violations.is_empty() {
                // The faults that changed the run: the run is that of `base` as well, so
                // extending `base` covers every falsifier containing these faults, with
                // smaller candidates. A base already extended has nothing to add (and a
                // candidate equal to it would repeat its run).
                let base = match &analysis {
                    Some(analysis) => analysis.base.clone(),
                    None => self.effective(&execution.faults, &execution.run),
                };
                seen.insert(key(&base));
                if !extended.insert(key(&base)) {
                    search.explored.push(execution.faults);
                    progress(Progress {
                        executions: search.executions,
                        queued: queue.len() + replay.len(),
                        counterexamples: search.counterexamples.len(),
                    });
                    continue;
                }
                let (sets, cut) = match analysis.and_then(|analysis| analysis.sets) {
                    Some(analysed) => analysed,
                    None => {
                        let state = &mut states[0];
                        self.minimal_fault_sets(&execution.run, &mut state.atoms, &mut state.cache)
                    }
                };
                truncated |= cut;
                // The candidates within the bounds, with their keys, for `coverage`.
                let mut recorded: Vec<(FaultSet, FaultSet)> = Vec::new();
                let unchanged = self.spec.post.is_some()
                    && self.spec.post_at(&execution.run, self.bounds.eot) == self.expected_post;
                for (extra, vacuous) in sets {
                    let mut candidate = base.clone();
                    candidate.drops.extend(extra.drops);
                    candidate.delays.extend(extra.delays);
                    for (node, tick) in extra.crashes {
                        let entry = candidate.crashes.entry(node).or_insert(tick);
                        *entry = (*entry).min(tick);
                    }
                    candidate.normalise();
                    if !candidate.within(&self.bounds) {
                        continue;
                    }
                    let priority = Priority {
                        vacuous,
                        unchanged,
                        size: candidate.size(),
                    };
                    let candidate_key = key(&candidate);
                    recorded.push((candidate.clone(), candidate_key.clone()));
                    if seen.insert(candidate_key) {
                        waiting.insert(candidate.clone(), priority);
                        queue.insert((priority, candidate));
                    } else if let Some(old) = waiting.get(&candidate).copied()
                        && priority < old
                    {
                        queue.remove(&(old, candidate.clone()));
                        waiting.insert(candidate.clone(), priority);
                        queue.insert((priority, candidate));
                    }
                }
                // Without skipping, no run covers anything.
                if !cut && options.skip_covered {
                    coverage.record(&base, &recorded);
                }
                search.explored.push(execution.faults);
            } else {
                search.counterexamples.push(Counterexample {
                    iteration,
                    execution,
                });
                if !options.all {
                    progress(Progress {
                        executions: search.executions,
                        queued: queue.len() + replay.len(),
                        counterexamples: search.counterexamples.len(),
                    });
                    break;
                }
            }
            progress(Progress {
                executions: search.executions,
                queued: queue.len() + replay.len(),
                counterexamples: search.counterexamples.len(),
            });
        }
        search.verdict = if !search.counterexamples.is_empty() {
            Verdict::Counterexample
        } else if search.limit.is_some() {
            Verdict::Inconclusive
        } else if truncated {
            search.limit = Some(
                "a lineage formula had more minimal fault sets than the verifier keeps; lower the bounds"
                    .to_string(),
            );
            Verdict::Inconclusive
        } else {
            Verdict::Certified
        };
        Ok(search)
    }
}

/// A run, with what a worker thread found of its lineage (see [`Verifier::analysed_batch`]).
type Analysed = (Execution, Option<Analysis>);

/// What a worker found of a good run: its effective faults ([`Verifier::effective`]), and the
/// minimal fault sets breaking its lineage with whether a formula was truncated
/// ([`Verifier::minimal_fault_sets`]) unless those faults were already extended when it ran.
#[derive(Debug)]
struct Analysis {
    base: FaultSet,
    sets: Option<(Vec<(FaultSet, bool)>, bool)>,
}

/// The fault variables and kept lineage results of one worker thread.
#[derive(Debug, Default)]
struct WorkerState {
    atoms: AtomTable,
    cache: LineageCache,
}

/// What workers read of the search while they run candidates ahead of the loop.
struct Ahead<'a> {
    /// The effective faults already extended (keys), whose lineage is not needed again.
    extended: &'a FastSet<FaultSet>,
    /// Candidates covered now are likely to be left out when the loop reaches them: they
    /// are not run ahead.
    coverage: &'a Coverage,
    symmetric: bool,
}

impl Verifier {
    /// The key under which a search records `faults`: with symmetry, the least renaming.
    fn search_key(&self, faults: &FaultSet, symmetric: bool) -> FaultSet {
        if symmetric {
            self.symmetry.canonical(faults)
        } else {
            faults.clone()
        }
    }

    /// Runs `faults`, and with more than one worker also the candidates the loop will run
    /// next (`upcoming`, in order, less those already run ahead), all at once; keeps their
    /// results in `prefetched` for when the loop reaches them (a candidate's run does not
    /// depend on when it is made, so the search is the same on any number of workers). On
    /// the reference engine each worker also extracts the lineage of the good runs it made
    /// (with its own `states` entry): a run's minimal fault sets depend only on the run.
    fn execute_ahead<'a>(
        &self,
        faults: FaultSet,
        upcoming: impl Iterator<Item = &'a FaultSet>,
        prefetched: &mut BTreeMap<FaultSet, Result<Analysed, VerifyError>>,
        states: &mut [WorkerState],
        ahead: &Ahead<'_>,
    ) -> Result<Analysed, VerifyError> {
        // Results kept ahead are bounded: a queue that keeps reordering does not pile them up.
        let room = (self.batch_size() * 32).saturating_sub(prefetched.len());
        let ahead_count = (self.batch_size() - 1).min(room);
        if ahead_count == 0 {
            return self.execute(&faults).map(|execution| (execution, None));
        }
        let mut batch = vec![faults];
        batch.extend(
            upcoming
                .filter(|candidate| !prefetched.contains_key(*candidate))
                .filter(|candidate| {
                    !ahead
                        .coverage
                        .covered(candidate, &self.search_key(candidate, ahead.symmetric))
                })
                .take(ahead_count)
                .cloned(),
        );
        let mut results = if self.runtime.is_some() {
            self.execute_batch(&batch)
                .into_iter()
                .map(|result| result.map(|execution| (execution, None)))
                .collect::<Vec<_>>()
                .into_iter()
        } else {
            self.analysed_batch(&batch, states, ahead).into_iter()
        };
        let first = match results.next() {
            Some(result) => result,
            None => self.execute(&batch[0]).map(|execution| (execution, None)),
        };
        for (candidate, result) in batch.into_iter().skip(1).zip(results) {
            prefetched.insert(candidate, result);
        }
        first
    }

    /// Runs every fault set of `batch` on the reference engine, up to
    /// [`workers`](Verifier::workers) at once on threads (thread `k` runs every `k`-th with
    /// `states[k]`), and extracts the lineage of each good run whose effective faults are not
    /// extended yet; the results in the batch's order.
    fn analysed_batch(
        &self,
        batch: &[FaultSet],
        states: &mut [WorkerState],
        ahead: &Ahead<'_>,
    ) -> Vec<Result<Analysed, VerifyError>> {
        let analyse = |faults: &FaultSet, state: &mut WorkerState| {
            let execution = self.execute(faults)?;
            if !execution.violations.is_empty() {
                return Ok((execution, None));
            }
            let base = self.effective(&execution.faults, &execution.run);
            let sets = if ahead
                .extended
                .contains(&self.search_key(&base, ahead.symmetric))
            {
                None
            } else {
                Some(self.minimal_fault_sets(&execution.run, &mut state.atoms, &mut state.cache))
            };
            Ok((execution, Some(Analysis { base, sets })))
        };
        let results = crate::striped(batch, states, |faults, state| analyse(faults, state));
        results
            .into_iter()
            .zip(batch)
            .map(|(result, faults)| {
                result.unwrap_or_else(|| self.execute(faults).map(|execution| (execution, None)))
            })
            .collect()
    }
}

/// The order of queued candidates (smallest first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Priority {
    /// The lineage says it breaks the `pre` of every target it breaks (false first).
    vacuous: bool,
    /// The run it extends had the failure-free run's `post` (false first).
    unchanged: bool,
    /// Faults in the set.
    size: usize,
}

/// The values of a post fact, for reports.
pub fn values_text(values: &[Value]) -> String {
    let parts: Vec<String> = values.iter().map(Value::to_string).collect();
    parts.join(", ")
}
