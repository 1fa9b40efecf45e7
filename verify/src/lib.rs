//! graft's verifier: lineage-driven fault injection (LDFI, as in Molly), a random
//! fault-injection baseline, refinement checks between versions, and the artifacts people read
//! (Lamport diagrams, lineage graphs, run logs).
//!
//! [`Verifier::new`] prepares a checked program, its workload facts and the bounds
//! ([`Bounds`]: EOT, EFF, crashes). [`Verifier::ldfi`] runs Molly's loop: the failure-free run,
//! the lineage of its `post` facts (and of the facts guarding `never` invariants), the minimal
//! fault sets that break it ([`lineage`]), each run in turn, re-extracting lineage from good
//! runs, until a counterexample or an empty queue (a certificate for these bounds and inputs).
//! [`Verifier::random`] draws fault schedules under the same bounds. [`diagram`] draws runs;
//! [`refine`] compares two versions.
//!
//! Architecture invariant: this crate is deterministic and does no I/O and reads no clock;
//! the command-line tool times searches, prints, and writes artifacts and caches.

mod coverage;
pub mod diagram;
pub mod faults;
pub mod lineage;
mod matcher;
pub mod random;
pub mod refine;
pub mod report;
pub mod search;
pub mod spec;
pub mod symmetry;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use graft_compiler::Checked;
use graft_compiler::ir::{self, Value};
use graft_eval::{CrashModel, EvalError, Evaluator, Run, RunConfig};
use graft_runtime::{Runtime, RuntimeError};

pub use faults::{BigCount, Bounds, Crash, Delay, Drop, FaultSet, fault_space};
pub use search::{Counterexample, Progress, RunRecord, Search, SearchOptions, Status, Verdict};
pub use spec::{Spec, Violation, ViolationKind};

/// Why verification could not run.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}")]
    Eval(#[from] EvalError),
    #[error("timely: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("EFF ({eff}) must not exceed EOT ({eot})")]
    EffAfterEot { eff: u64, eot: u64 },
    #[error(
        "the program has no `post` relation and no `never` invariant: there is nothing to verify"
    )]
    NothingToVerify,
    #[error(
        "`pre` has {pre} columns but `post` has {post}: Molly's specification compares them fact by fact"
    )]
    SpecArity { pre: usize, post: usize },
}

/// One run under a fault schedule, with what it violated.
#[derive(Clone, Debug)]
pub struct Execution {
    pub faults: FaultSet,
    pub run: Run,
    pub violations: Vec<Violation>,
}

/// Executions per timely worker in one batch of a search on the timely engine.
const TIMELY_BATCH_PER_WORKER: usize = 8;

/// Executions per thread in one batch of a search on the reference engine with more than one
/// worker. A batch waits for its slowest thread, and runs differ widely in cost (a run whose
/// lineage is already known costs far less than one whose lineage is extracted): with several
/// runs per thread the costs even out. On Paxos at EOT 8 / EFF 4 with 2 workers, 4 took
/// 2.15 s (median of 5) against 2.48 s for 1, on a shared machine where runs vary by ±0.3 s,
/// and ran 4 executions ahead that the search then left out (1185 against 1181).
const REFERENCE_BATCH_PER_WORKER: usize = 4;

/// Which engine runs a verification's executions. Both give the same canonical runs, so the
/// same verdicts, counterexamples and execution counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Engine {
    /// The reference evaluator.
    #[default]
    Reference,
    /// The timely runtime's traced runs ([`Runtime::run_traced`]), each on one timely worker.
    Timely,
}

/// A program prepared for verification under fixed bounds and inputs.
pub struct Verifier {
    evaluator: Evaluator,
    /// The runtime, when the engine is timely.
    runtime: Option<Runtime>,
    /// Executions run at once (each on a thread of its own).
    workers: usize,
    facts: Vec<ir::Fact>,
    extra_nodes: BTreeSet<String>,
    exact_nodes: bool,
    pub bounds: Bounds,
    nodes: Vec<String>,
    pub spec: Spec,
    growth: lineage::Growth,
    symmetry: symmetry::Symmetry,
    failure_free: Run,
    expected_post: BTreeSet<Vec<Value>>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Verifier")
            .field("bounds", &self.bounds)
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Prepares `checked` (a program without errors) with workload `facts`, nodes beyond those
    /// the facts name (`extra_nodes`), and the bounds. Runs the failure-free execution.
    pub fn new(
        checked: &Checked,
        facts: Vec<ir::Fact>,
        extra_nodes: BTreeSet<String>,
        bounds: Bounds,
    ) -> Result<Verifier, VerifyError> {
        Verifier::prepare(checked, facts, extra_nodes, false, bounds)
    }

    /// [`Verifier::new`] with `nodes` as the complete set of nodes (Molly's `-N`): only they
    /// crash, lose messages and observe crashes, even when facts are located at other values.
    pub fn with_exact_nodes(
        checked: &Checked,
        facts: Vec<ir::Fact>,
        nodes: BTreeSet<String>,
        bounds: Bounds,
    ) -> Result<Verifier, VerifyError> {
        Verifier::prepare(checked, facts, nodes, true, bounds)
    }

    fn prepare(
        checked: &Checked,
        facts: Vec<ir::Fact>,
        extra_nodes: BTreeSet<String>,
        exact_nodes: bool,
        bounds: Bounds,
    ) -> Result<Verifier, VerifyError> {
        if bounds.eff > bounds.eot {
            return Err(VerifyError::EffAfterEot {
                eff: bounds.eff,
                eot: bounds.eot,
            });
        }
        let evaluator = Evaluator::new(checked)?;
        let spec = Spec::new(checked);
        let program = evaluator.program();
        if spec.is_empty(program) {
            return Err(VerifyError::NothingToVerify);
        }
        if let (Some(pre), Some(post)) = (spec.pre, spec.post) {
            let (pre, post) = (
                program.relation(pre).arity(),
                program.relation(post).arity(),
            );
            if pre != post {
                return Err(VerifyError::SpecArity { pre, post });
            }
        }
        let growth = lineage::Growth::new(program, &facts);
        let config = RunConfig {
            extra_nodes: extra_nodes.clone(),
            exact_nodes,
            ..RunConfig::with_eot(bounds.eot)
        };
        let mut nodes: Vec<String> = evaluator
            .nodes(&config, &facts)?
            .iter()
            .map(lineage::node_name)
            .collect();
        nodes.sort();
        nodes.dedup();
        let symmetry = symmetry::Symmetry::new(program, &facts, &nodes);
        let mut verifier = Verifier {
            evaluator,
            runtime: None,
            workers: 1,
            facts,
            extra_nodes,
            exact_nodes,
            bounds,
            nodes,
            spec,
            growth,
            symmetry,
            failure_free: Run {
                ticks_run: 0,
                capped: false,
                nodes: Vec::new(),
                ticks: Vec::new(),
                messages: Vec::new(),
                provenance: None,
                stats: graft_eval::Stats::default(),
            },
            expected_post: BTreeSet::new(),
        };
        verifier.failure_free = verifier.run(&FaultSet::default())?;
        verifier.expected_post = verifier.spec.post_at(&verifier.failure_free, bounds.eot);
        Ok(verifier)
    }

    pub fn program(&self) -> &ir::Program {
        self.evaluator.program()
    }

    /// The same verifier with its executions run by `engine` (`checked` is the program it was
    /// prepared with), up to `workers` at once: a search runs the candidates it is about to
    /// run together, on `workers` threads, and uses each result when the loop reaches it, so
    /// verdicts, counterexamples and execution counts do not depend on `workers`. The
    /// failure-free run is run again by the engine.
    pub fn using(
        mut self,
        checked: &Checked,
        engine: Engine,
        workers: usize,
    ) -> Result<Verifier, VerifyError> {
        self.runtime = match engine {
            Engine::Reference => None,
            Engine::Timely => Some(Runtime::new(checked)?),
        };
        self.workers = workers.max(1);
        self.failure_free = self.run(&FaultSet::default())?;
        self.expected_post = self.spec.post_at(&self.failure_free, self.bounds.eot);
        Ok(self)
    }

    /// The same verifier, on its engine, with up to `workers` executions run at once (see
    /// [`Verifier::using`]; the failure-free run is kept).
    pub fn with_workers(mut self, workers: usize) -> Verifier {
        self.workers = workers.max(1);
        self
    }

    /// The engine that runs the executions.
    pub fn engine(&self) -> Engine {
        if self.runtime.is_some() {
            Engine::Timely
        } else {
            Engine::Reference
        }
    }

    /// How many executions run at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The facts every run starts from.
    pub fn facts(&self) -> &[ir::Fact] {
        &self.facts
    }

    /// The run's nodes, sorted.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// The classes of nodes the program and its facts cannot tell apart (`--use-symmetry`).
    pub fn symmetry(&self) -> &symmetry::Symmetry {
        &self.symmetry
    }

    /// The failure-free run (with provenance).
    pub fn failure_free(&self) -> &Run {
        &self.failure_free
    }

    /// The `post` facts of the failure-free run at EOT.
    pub fn expected_post(&self) -> &BTreeSet<Vec<Value>> {
        &self.expected_post
    }

    /// The size of the fault space under the bounds, by Molly's formula.
    pub fn fault_space(&self) -> BigCount {
        fault_space(self.nodes.len(), &self.bounds)
    }

    /// Runs the program under `faults` with provenance (ticks `1..=EOT`, Molly's crash model).
    pub fn run(&self, faults: &FaultSet) -> Result<Run, VerifyError> {
        let config = self.config(faults);
        match &self.runtime {
            None => Ok(self.evaluator.run(&config, &self.facts)?),
            Some(runtime) => runtime
                .run_traced(&config, &self.facts, &graft_runtime::Execution::default())?
                .ok_or(VerifyError::Runtime(RuntimeError::Timely(
                    "a traced run on one worker returned no run".to_owned(),
                ))),
        }
    }

    /// The run configuration of `faults` (ticks `1..=EOT`, Molly's crash model, provenance).
    fn config(&self, faults: &FaultSet) -> RunConfig {
        RunConfig {
            extra_nodes: self.extra_nodes.clone(),
            exact_nodes: self.exact_nodes,
            drops: faults
                .drops
                .iter()
                .map(|drop| (drop.from.clone(), drop.to.clone(), drop.tick))
                .collect(),
            crashes: faults
                .crashes
                .clone()
                .into_iter()
                .collect::<BTreeMap<_, _>>(),
            delays: faults.delay_map(),
            crash_model: CrashModel::Molly,
            provenance: true,
            ..RunConfig::with_eot(self.bounds.eot)
        }
    }

    /// How many executions a search runs together: with the reference, one on a single
    /// worker, else a few per worker thread; with timely, a batch of several per worker, since
    /// one dataflow runs the whole batch and pays its per-tick costs once.
    pub fn batch_size(&self) -> usize {
        match self.runtime {
            None if self.workers > 1 => self.workers * REFERENCE_BATCH_PER_WORKER,
            None => 1,
            Some(_) => self.workers * TIMELY_BATCH_PER_WORKER,
        }
    }

    /// The faults of `faults` that changed `run` (its run): omissions of messages the run
    /// lost by omission, and crashes of nodes that lost a message to the crash (every crash
    /// when the program reads `crash`). Running the result gives the same run: the other
    /// faults concern messages that were never sent.
    pub fn effective(&self, faults: &FaultSet, run: &Run) -> FaultSet {
        let mut omitted: BTreeSet<(String, String, u64)> = BTreeSet::new();
        // (sender, destination, send tick, ticks late) of every late message that arrived.
        let mut late: BTreeSet<(String, String, u64, u64)> = BTreeSet::new();
        // (sender, tick) of every message lost to a crashed sender.
        let mut lost_sends: BTreeSet<(String, u64)> = BTreeSet::new();
        for message in &run.messages {
            let sender = lineage::node_name(&message.sender);
            match message.fate {
                graft_eval::Fate::Omitted => {
                    omitted.insert((sender, lineage::node_name(&message.dest), message.send_tick));
                }
                graft_eval::Fate::SenderCrashed => {
                    lost_sends.insert((sender, message.send_tick));
                }
                graft_eval::Fate::Delivered | graft_eval::Fate::ReceiverCrashed => {
                    if message.delay > 0 {
                        late.insert((
                            sender,
                            lineage::node_name(&message.dest),
                            message.send_tick,
                            message.delay,
                        ));
                    }
                }
            }
        }
        let mut kept = FaultSet {
            drops: faults
                .drops
                .iter()
                .filter(|drop| omitted.contains(&(drop.from.clone(), drop.to.clone(), drop.tick)))
                .cloned()
                .collect(),
            crashes: BTreeMap::new(),
            delays: faults
                .delays
                .iter()
                .filter(|delay| {
                    late.contains(&(delay.from.clone(), delay.to.clone(), delay.tick, delay.by))
                })
                .cloned()
                .collect(),
        };
        for (node, tick) in &faults.crashes {
            if self.growth.crash_tick_read {
                kept.crashes.insert(node.clone(), *tick);
                continue;
            }
            // The crash tick is not read: a crash at `tick` is the crash at the first tick
            // from `tick` on at which the node lost a message to it (none: the program sees
            // only that it crashed, at EOT; or nothing at all when `crash` is not read).
            let first = lost_sends
                .range((node.clone(), *tick)..)
                .next()
                .filter(|(sender, _)| sender == node)
                .map(|(_, at)| *at);
            match first {
                Some(at) => {
                    kept.crashes.insert(node.clone(), at);
                }
                None if self.growth.crash_read => {
                    kept.crashes
                        .insert(node.clone(), self.bounds.eot.max(*tick));
                }
                None => {}
            }
        }
        kept.normalise();
        kept
    }

    /// Runs every fault set of `batch` and checks the specification, the results in the
    /// batch's order: with timely, all in one dataflow on [`workers`](Verifier::workers)
    /// timely workers; with the reference, up to that many at once on threads.
    pub fn execute_batch(&self, batch: &[FaultSet]) -> Vec<Result<Execution, VerifyError>> {
        if let Some(runtime) = &self.runtime
            && batch.len() > 1
        {
            let configs: Vec<RunConfig> = batch.iter().map(|faults| self.config(faults)).collect();
            let execution = graft_runtime::Execution {
                workers: self.workers,
                cluster: None,
            };
            return match runtime.run_traced_batch(&configs, &self.facts, &execution) {
                Ok(Some(runs)) if runs.len() == batch.len() => batch
                    .iter()
                    .zip(runs)
                    .map(|(faults, run)| Ok(self.checked(faults, run)))
                    .collect(),
                Ok(_) => batch
                    .iter()
                    .map(|_| {
                        Err(VerifyError::Runtime(RuntimeError::Timely(
                            "a batch of traced runs returned no runs".to_owned(),
                        )))
                    })
                    .collect(),
                Err(error) => batch.iter().map(|_| Err(error.clone().into())).collect(),
            };
        }
        let threads = self.workers.min(batch.len());
        if threads <= 1 {
            return batch.iter().map(|faults| self.execute(faults)).collect();
        }
        let mut states = vec![(); threads];
        let results = striped(batch, &mut states, |faults, ()| self.execute(faults));
        results
            .into_iter()
            .zip(batch)
            .map(|(result, faults)| result.unwrap_or_else(|| self.execute(faults)))
            .collect()
    }

    /// Runs under `faults` and checks the specification.
    pub fn execute(&self, faults: &FaultSet) -> Result<Execution, VerifyError> {
        let run = self.run(faults)?;
        Ok(self.checked(faults, run))
    }

    /// The execution of `faults` that gave `run`, with the specification checked.
    fn checked(&self, faults: &FaultSet, run: Run) -> Execution {
        let violations = self.spec.check(
            self.program(),
            &run,
            Some(&self.failure_free),
            &self.expected_post,
            self.bounds.eot,
        );
        Execution {
            faults: faults.clone(),
            run,
            violations,
        }
    }
}

/// Runs `work` on every item on as many threads as `states` has (item `i` on thread
/// `i % threads`, with that thread's state), in the items' order. A thread that panicked
/// leaves its items `None`, for the caller to run again.
pub(crate) fn striped<I, S, T, W>(items: &[I], states: &mut [S], work: W) -> Vec<Option<T>>
where
    I: Sync,
    S: Send,
    T: Send,
    W: Fn(&I, &mut S) -> T + Sync,
{
    let threads = states.len().min(items.len()).max(1);
    let mut results: Vec<Option<T>> = (0..items.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = states
            .iter_mut()
            .take(threads)
            .enumerate()
            .map(|(thread, state)| {
                scope.spawn(move || {
                    items
                        .iter()
                        .enumerate()
                        .skip(thread)
                        .step_by(threads)
                        .map(|(index, item)| (index, work(item, state)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            if let Ok(done) = handle.join() {
                for (index, result) in done {
                    results[index] = Some(result);
                }
            }
        }
    });
    results
}
