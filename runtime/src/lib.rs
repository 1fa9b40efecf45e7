//! graft's timely dataflow runtime: a checked program run on timely workers, from one thread
//! to a cluster of processes, with exactly the reference evaluator's semantics.
//!
//! The IR is interpreted, not compiled to Rust per protocol: [`Runtime::new`] takes a checked
//! program; [`Runtime::run`] builds one timely dataflow whose timestamp is the tick — the
//! node-local engine when every rule the run needs is local (`local.rs`: each worker
//! evaluates its own nodes, and only changes cross the dataflow), else one differential
//! dataflow with an operator per rule step (`lower.rs`) — runs it to completion under a [`graft_eval::RunConfig`] (end of time,
//! tick cap, fault schedule, crash model) on an [`Execution`] (threads, processes), and
//! returns on process 0 the shown facts of every tick in the order `graft run` prints them,
//! with the number of ticks run and whether the tick cap cut the run — the same
//! [`graft_eval::ShownFact`]s the reference evaluator's [`graft_eval::shown_facts`] gives.
//!
//! Architecture invariant: the runtime sees only the IR (and the strata-free dependency
//! structure it derives from it), never surface syntax or rewrite internals. It prints
//! nothing and reads no files: hostfiles are parsed from text the caller read.

mod cluster;
mod local;
mod lower;
mod peers;
mod plan;
mod trace;
mod value;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use graft_compiler::Checked;
use graft_compiler::ir::{self, Persistence, RelId, RuleId, RuleKind, Type, Value};
use graft_eval::{CrashModel, RunConfig, ShowSet, ShownFact};

pub use cluster::{Cluster, DEFAULT_BASE_PORT, Execution, default_addresses, parse_hostfile};
pub use local::NodeLoad;

use crate::lower::{Gathered, RunPlan};
use crate::plan::RulePlan;
use crate::value::{Interner, Row, Val, collect_string, collect_term_strings};

/// Why a program cannot be run, or a run failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    #[error("the program has {errors} error(s); fix them before running it")]
    ProgramHasErrors { errors: usize },
    #[error("rule {} uses a variable that no positive body atom binds", rule.0)]
    UnboundVariable { rule: RuleId },
    #[error("a fact names relation id {}, which the program does not have", rel.0)]
    UnknownRelation { rel: RelId },
    #[error("a fact of `{relation}` has {found} values, but the relation has {expected} columns")]
    ArityMismatch {
        relation: String,
        expected: usize,
        found: usize,
    },
    #[error("hostfile line {line}: `{text}`: {reason}")]
    Hostfile {
        line: usize,
        text: String,
        reason: String,
    },
    #[error(
        "process index {process} is out of range: the cluster has {processes} process(es), numbered from 0"
    )]
    ProcessOutOfRange { process: usize, processes: usize },
    #[error("cannot listen on `{address}`: {reason}; is another run using this port?")]
    Listen { address: String, reason: String },
    #[error(
        "process {peer} (`{address}`) did not connect within {timeout:?}; start every process of the cluster with the same hostfile, or raise --connect-timeout"
    )]
    PeerTimeout {
        peer: usize,
        address: String,
        timeout: Duration,
    },
    #[error("process {process} (`{address}`) was lost mid-run: {reason}")]
    PeerLost {
        process: usize,
        address: String,
        reason: String,
    },
    #[error("cluster networking failed: {0}")]
    Network(String),
    #[error("a timely worker failed: {0}")]
    Timely(String),
    #[error("the executions of one batch must share their end of time, tick cap and crash model")]
    MixedBatch,
    #[error(
        "per-node loads are counted by the node-local engine, and this run needs the dataflow lowering (some rule reads another node's facts in the same tick)"
    )]
    LoadsNeedLocalEngine,
}

/// What [`Runtime::run_counting_loads`] measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountedRun {
    /// Ticks evaluated: `1..=ticks_run`.
    pub ticks_run: u64,
    /// The run stopped at `max_ticks` before reaching quiescence (only without `eot`).
    pub capped: bool,
    /// Every fact of the shown relations that held at some tick, once, as (relation name,
    /// values), sorted: no per-tick copies, which a long run of a large workload cannot afford.
    pub held: Vec<(String, Vec<Value>)>,
    /// Every node that did some work, by name (a node that only held given facts and never
    /// derived, sent or received anything may be absent).
    pub loads: BTreeMap<String, NodeLoad>,
}

/// What a run shows: on process 0 the facts, else nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOutput {
    /// Ticks evaluated: `1..=ticks_run`.
    pub ticks_run: u64,
    /// The run stopped at `max_ticks` before reaching quiescence (only without `eot`).
    pub capped: bool,
    /// The shown facts of every tick, sorted by tick, relation name, then values.
    pub facts: Vec<ShownFact>,
}

/// A program ready to run on timely workers.
#[derive(Clone, Debug)]
pub struct Runtime {
    program: ir::Program,
    lowering: Lowering,
}

/// How a run becomes a dataflow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lowering {
    /// The node-local engine when every rule the run needs is local (`local.rs`), else the
    /// dataflow lowering.
    #[default]
    Auto,
    /// Always the differential dataflow lowering (`lower.rs`), every rule an operator.
    Dataflow,
}

/// A given fact, checked.
struct GivenFact<'a> {
    rel: RelId,
    values: &'a [Value],
    tick: u64,
    span: graft_language::span::Span,
}

/// A run ready to execute: its plan, the interner its rows use, and what the results are
/// read with.
struct Prepared<'a> {
    given: Vec<GivenFact<'a>>,
    interner: Interner,
    plan: Arc<RunPlan>,
}

impl Runtime {
    /// Takes a checked program; refuses one whose check reported errors or whose rules cannot
    /// be planned.
    pub fn new(checked: &Checked) -> Result<Runtime, RuntimeError> {
        let errors = checked
            .diagnostics
            .iter()
            .filter(|diagnostic| diagnostic.is_error())
            .count();
        if errors > 0 {
            return Err(RuntimeError::ProgramHasErrors { errors });
        }
        let runtime = Runtime {
            program: checked.program.clone(),
            lowering: Lowering::Auto,
        };
        let mut strings = BTreeSet::new();
        runtime.rule_strings(&mut strings);
        plan::compile_rules(&runtime.program, &Interner::new(strings))?;
        Ok(runtime)
    }

    /// The same runtime, lowering runs as `lowering` says.
    #[must_use]
    pub fn with_lowering(mut self, lowering: Lowering) -> Runtime {
        self.lowering = lowering;
        self
    }

    /// Whether a run showing `show` uses the node-local engine.
    pub fn is_local(&self, show: &ShowSet) -> bool {
        if self.lowering == Lowering::Dataflow {
            return false;
        }
        let interner = Interner::new(BTreeSet::new());
        let Ok(rules) = plan::compile_rules(&self.program, &interner) else {
            return false;
        };
        let relations = self.program.relations.len();
        let mut tables = vec![false; relations];
        for relation in &self.program.relations {
            tables[relation.id.index()] = relation.persistence == Persistence::Table;
        }
        let shown: Vec<RelId> = show.relations(&self.program).into_iter().collect();
        let keep = local::needed_rules(&rules, &tables, &shown, relations);
        local::all_local(&self.program, &keep)
    }

    /// The program being run.
    pub fn program(&self) -> &ir::Program {
        &self.program
    }

    fn rule_strings(&self, strings: &mut BTreeSet<Arc<str>>) {
        for rule in &self.program.rules {
            for term in &rule.head.args {
                collect_term_strings(term, strings);
            }
            for literal in &rule.body {
                match literal {
                    ir::Literal::Atom(atom) => {
                        for term in &atom.args {
                            collect_term_strings(term, strings);
                        }
                    }
                    ir::Literal::Compare(comparison) => {
                        collect_term_strings(&comparison.lhs, strings);
                        collect_term_strings(&comparison.rhs, strings);
                    }
                }
            }
        }
    }

    fn given<'a>(&'a self, facts: &'a [ir::Fact]) -> Result<Vec<GivenFact<'a>>, RuntimeError> {
        self.program
            .facts
            .iter()
            .chain(facts)
            .map(|fact| {
                self.program
                    .fact_relation(fact)
                    .map_err(|mismatch| match mismatch {
                        ir::FactMismatch::UnknownRelation { rel } => {
                            RuntimeError::UnknownRelation { rel }
                        }
                        ir::FactMismatch::Arity {
                            relation,
                            expected,
                            found,
                        } => RuntimeError::ArityMismatch {
                            relation,
                            expected,
                            found,
                        },
                    })?;
                Ok(GivenFact {
                    rel: fact.rel,
                    values: &fact.values,
                    tick: fact.tick,
                    span: fact.span,
                })
            })
            .collect()
    }

    /// The run's nodes: the values in location, `node` and role columns of the given facts
    /// (unless `exact_nodes`), the extra nodes and the crashed nodes (as the reference
    /// evaluator counts them).
    fn nodes(&self, config: &RunConfig, given: &[GivenFact<'_>]) -> BTreeSet<Value> {
        let mut nodes = BTreeSet::new();
        for fact in given.iter().filter(|_| !config.exact_nodes) {
            let relation = self.program.relation(fact.rel);
            for (column, value) in fact.values.iter().enumerate() {
                let is_node = column == 0
                    || relation
                        .columns
                        .get(column)
                        .is_some_and(|column| matches!(column.ty, Type::Node | Type::Role(_)));
                // Nodes are named by strings, as in the reference.
                if is_node && value.as_str().is_some() {
                    nodes.insert(value.clone());
                }
            }
        }
        nodes.extend(config.extra_nodes.iter().map(|name| Value::str(name)));
        nodes.extend(config.crashes.keys().map(|name| Value::str(name)));
        nodes
    }

    /// Runs the program on its own facts plus `facts` under `config`, showing `show`.
    /// Returns the output on process 0 and `None` on the other processes of a cluster.
    ///
    /// When a process of a cluster is lost mid-run (it crashed, was killed, or sent nothing
    /// for the connect timeout), every other process returns [`RuntimeError::PeerLost`]
    /// naming it, within the connect timeout; the run's timely threads are then left blocked
    /// (they never panic), and the caller is expected to report the error and exit.
    pub fn run(
        &self,
        config: &RunConfig,
        facts: &[ir::Fact],
        show: &ShowSet,
        execution: &Execution,
    ) -> Result<Option<RunOutput>, RuntimeError> {
        let shown: Vec<RelId> = show.relations(&self.program).into_iter().collect();
        let prepared = self.prepare(config, facts, shown.clone(), false)?;
        // The node-local engine delivers every message at the next tick: runs with delays use
        // the dataflow lowering.
        let use_local = self.is_local(show) && config.delays.is_empty();
        let Some(gathered) = self.execute(&prepared, use_local, execution)? else {
            return Ok(None);
        };
        let (ticks_run, capped) = self.ticks_run(config, &prepared.given, &gathered.changes);
        let facts = self.shown_facts(&prepared.interner, &shown, gathered.updates, ticks_run);
        Ok(Some(RunOutput {
            ticks_run,
            capped,
            facts,
        }))
    }

    /// Runs the program as [`run`](Runtime::run) does, in this process only, and counts each
    /// node's load on the way ([`NodeLoad`]): the facts its evaluations derived and the
    /// messages it sent and received. The counters live in the node-local engine, off in every
    /// other run; a run that needs the dataflow lowering is refused
    /// ([`RuntimeError::LoadsNeedLocalEngine`]).
    pub fn run_counting_loads(
        &self,
        config: &RunConfig,
        facts: &[ir::Fact],
        show: &ShowSet,
        workers: usize,
    ) -> Result<CountedRun, RuntimeError> {
        if !self.is_local(show) {
            return Err(RuntimeError::LoadsNeedLocalEngine);
        }
        let shown: Vec<RelId> = show.relations(&self.program).into_iter().collect();
        let prepared = self.prepare(config, facts, shown, false)?;
        let run_plan = Arc::clone(&prepared.plan);
        let execution = Execution {
            workers: workers.max(1),
            cluster: None,
        };
        let results = cluster::execute(&execution, move |worker| {
            let gathered = Rc::new(RefCell::new(Gathered::default()));
            let loads = Rc::new(RefCell::new(local::Loads::new()));
            let plan = Arc::clone(&run_plan);
            worker.dataflow::<u64, _, _>(|scope| {
                local::build_counting(scope, &plan, &gathered, Some(Rc::clone(&loads)));
            });
            while worker.has_dataflows() {
                worker.step_or_park(None);
            }
            let index = worker.index();
            ((index == 0).then(|| gathered.take()), index, loads.take())
        })?;
        let mut gathered = None;
        let mut loads: BTreeMap<String, NodeLoad> = BTreeMap::new();
        for (worker_gathered, index, worker_loads) in results {
            gathered = gathered.or(worker_gathered);
            for (node, load) in worker_loads {
                let name = match prepared.interner.value(node) {
                    Value::Str(name) => name.to_string(),
                    other => other.to_string(),
                };
                let entry = loads.entry(name).or_default();
                entry.worker = index;
                entry.facts_derived += load.facts_derived;
                entry.messages_sent += load.messages_sent;
                entry.messages_received += load.messages_received;
            }
        }
        let gathered = gathered
            .ok_or_else(|| RuntimeError::Timely("worker 0 returned no results".to_owned()))?;
        let (ticks_run, capped) = self.ticks_run(config, &prepared.given, &gathered.changes);
        let mut held = BTreeSet::new();
        for ((rel, row), tick, diff) in &gathered.updates {
            if *diff > 0 && *tick <= ticks_run {
                held.insert((*rel, row.clone()));
            }
        }
        let held = held
            .into_iter()
            .map(|(rel, row)| {
                let name = self.program.relations[rel as usize].name.clone();
                let values = row
                    .iter()
                    .map(|val| prepared.interner.value(val))
                    .collect::<Vec<_>>();
                (name, values)
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        Ok(CountedRun {
            ticks_run,
            capped,
            held,
            loads,
        })
    }

    /// Runs the program as [`run`](Runtime::run) does, recording what the reference
    /// evaluator records with provenance: every relation's facts at every tick, every message
    /// with its fate, and every derivation of every fact. The result is the canonical
    /// [`graft_eval::Run`] (facts of a tick in value order), equal to the reference's for the
    /// same program, facts and configuration, so that `graft explain` and `graft verify` read
    /// it as they read the reference's. Traced runs use the dataflow lowering. `None` on the
    /// processes of a cluster other than process 0.
    pub fn run_traced(
        &self,
        config: &RunConfig,
        facts: &[ir::Fact],
        execution: &Execution,
    ) -> Result<Option<graft_eval::Run>, RuntimeError> {
        let runs = self.run_traced_batch(std::slice::from_ref(config), facts, execution)?;
        Ok(runs.and_then(|runs| runs.into_iter().next()))
    }

    /// [`run_traced`](Runtime::run_traced) for a batch of executions at once: one dataflow
    /// runs them all, every row carrying its execution's index (spread over the workers by
    /// that index), so that the dataflow's per-tick costs are paid once for the batch. The
    /// configurations may differ in their faults and nodes only: the same end of time, tick
    /// cap and crash model. The runs come back in the order of `configs`.
    pub fn run_traced_batch(
        &self,
        configs: &[RunConfig],
        facts: &[ir::Fact],
        execution: &Execution,
    ) -> Result<Option<Vec<graft_eval::Run>>, RuntimeError> {
        let Some(first) = configs.first() else {
            return Ok(Some(Vec::new()));
        };
        if configs.iter().any(|config| {
            (config.eot, config.max_ticks, config.crash_model)
                != (first.eot, first.max_ticks, first.crash_model)
        }) {
            return Err(RuntimeError::MixedBatch);
        }
        let given = self.given(facts)?;
        let nodes: Vec<BTreeSet<Value>> = configs
            .iter()
            .map(|config| self.nodes(config, &given))
            .collect();
        let mut strings = BTreeSet::new();
        self.rule_strings(&mut strings);
        for fact in &given {
            for value in fact.values {
                collect_string(value, &mut strings);
            }
        }
        for node in nodes.iter().flatten() {
            collect_string(node, &mut strings);
        }
        for config in configs {
            for (from, to, _) in config.drops.iter().chain(config.delays.keys()) {
                strings.insert(Arc::from(from.as_str()));
                strings.insert(Arc::from(to.as_str()));
            }
        }
        let interner = Interner::new(strings);
        // The unbatched plans name the facts of a binding; the batched ones run.
        let naming = plan::compile_rules_traced(&self.program, &interner)?;
        let rules: Vec<RulePlan> = naming.iter().map(RulePlan::batched).collect();
        let components = plan::components(&self.program, &rules);
        let (tables, feedback) = self.tables_and_feedback(&rules);
        let horizon = horizon(first);
        let index = |exec: usize| Val::Int(i64::try_from(exec).unwrap_or(i64::MAX));
        let prefixed = |exec: usize, row: &Row| -> Row {
            std::iter::once(index(exec)).chain(row.iter()).collect()
        };
        let mut given_rows = Vec::new();
        let mut crash_facts = Vec::new();
        let mut down = Vec::new();
        let mut drops = Vec::new();
        let mut delays = Vec::new();
        for (exec, config) in configs.iter().enumerate() {
            for (rel, row, tick) in self.given_rows(&given, &interner, horizon) {
                given_rows.push((rel, prefixed(exec, &row), tick));
            }
            for (rel, row) in self.crash_facts(config, &nodes[exec], &interner) {
                crash_facts.push((rel, prefixed(exec, &row)));
            }
            for (row, tick) in down_rows(config, &interner, horizon) {
                down.push((prefixed(exec, &row), tick));
            }
            for (row, tick) in drop_rows(config, &interner, horizon) {
                drops.push((prefixed(exec, &row), tick));
            }
            for (row, tick, by) in delay_rows(config, &interner, horizon) {
                delays.push((prefixed(exec, &row), tick, by));
            }
        }
        let plan = Arc::new(RunPlan {
            relations: self.program.relations.len(),
            rules,
            components,
            feedback,
            tables,
            given: given_rows,
            crash_facts,
            down,
            drops,
            delays,
            strict: first.crash_model == CrashModel::Strict,
            horizon,
            shown: self
                .program
                .relations
                .iter()
                .map(|relation| relation.id)
                .collect(),
            trace: true,
            batched: true,
        });
        let prepared = Prepared {
            given,
            interner,
            plan,
        };
        let Some(gathered) = self.execute(&prepared, false, execution)? else {
            return Ok(None);
        };
        // Each execution's share of what worker 0 gathered, without the execution's index.
        let count = configs.len();
        let exec_of = |val: Option<Val>| match val {
            Some(Val::Int(exec)) => usize::try_from(exec).ok().filter(|exec| *exec < count),
            _ => None,
        };
        let mut contents: Vec<trace::Updates> = vec![Vec::new(); count];
        for ((rel, row), time, diff) in gathered.updates {
            if let Some(exec) = exec_of(row.get(0)) {
                contents[exec].push(((rel, row.iter().skip(1).collect()), time, diff));
            }
        }
        let mut bindings: Vec<trace::Updates> = vec![Vec::new(); count];
        for ((rule, binding), time, diff) in gathered.bindings {
            let slot = prepared
                .plan
                .rules
                .get(rule as usize)
                .and_then(|plan| plan.exec);
            if let Some(exec) = exec_of(slot.and_then(|slot| binding.get(slot))) {
                bindings[exec].push(((rule, binding), time, diff));
            }
        }
        let value_tuple = |values: &[Value]| -> graft_eval::Tuple { values.to_vec().into() };
        let mut runs = Vec::with_capacity(count);
        for (exec, ((config, contents), bindings)) in
            configs.iter().zip(contents).zip(bindings).enumerate()
        {
            let changes: BTreeSet<u64> = gathered
                .exec_changes
                .range((exec as u64, 0)..=(exec as u64, u64::MAX))
                .map(|(_, tick)| *tick)
                .collect();
            let (ticks_run, capped) = self.ticks_run(config, &prepared.given, &changes);
            let inputs = trace::TraceInputs {
                program: &self.program,
                rules: &naming,
                interner: &prepared.interner,
                config,
                given: prepared
                    .given
                    .iter()
                    .map(|fact| (fact.rel, value_tuple(fact.values), fact.tick, fact.span))
                    .collect(),
                crash_facts: self
                    .crash_facts(config, &nodes[exec], &prepared.interner)
                    .iter()
                    .map(|(rel, row)| {
                        let values: Vec<Value> =
                            row.iter().map(|val| prepared.interner.value(val)).collect();
                        (*rel, values.into())
                    })
                    .collect(),
                nodes: nodes[exec].iter().cloned().collect(),
                ticks_run,
                capped,
            };
            runs.push(trace::assemble(&inputs, contents, bindings));
        }
        Ok(Some(runs))
    }

    /// Per relation: whether it is a `table`, and whether it has a feedback variable (a
    /// table, or the head of `@next` or `@async` rules).
    fn tables_and_feedback(&self, rules: &[RulePlan]) -> (Vec<bool>, Vec<bool>) {
        let tables: Vec<bool> = self
            .program
            .relations
            .iter()
            .map(|relation| relation.persistence == Persistence::Table)
            .collect();
        let mut feedback = tables.clone();
        for rule in rules {
            if matches!(rule.kind, RuleKind::Next | RuleKind::Async) {
                feedback[rule.head_rel.index()] = true;
            }
        }
        (tables, feedback)
    }

    /// The given facts within `1..=horizon` as rows.
    fn given_rows(
        &self,
        given: &[GivenFact<'_>],
        interner: &Interner,
        horizon: u64,
    ) -> Vec<(RelId, Row, u64)> {
        given
            .iter()
            .filter(|fact| (1..=horizon).contains(&fact.tick))
            .filter_map(|fact| {
                interner
                    .row(fact.values)
                    .map(|row| (fact.rel, row, fact.tick))
            })
            .collect()
    }

    /// The `crash(Observer, Crashed, Tick)` facts of a configuration: every node observes
    /// every crash.
    fn crash_facts(
        &self,
        config: &RunConfig,
        nodes: &BTreeSet<Value>,
        interner: &Interner,
    ) -> Vec<(RelId, Row)> {
        let crash_rel = self
            .program
            .relation_by_name(graft_compiler::CRASH)
            .filter(|rel| self.program.relation(*rel).origin == ir::RelationOrigin::Builtin);
        let mut crash_facts = Vec::new();
        if let Some(crash_rel) = crash_rel {
            for node in nodes {
                for (crashed, tick) in &config.crashes {
                    let values = [
                        node.clone(),
                        Value::str(crashed),
                        Value::Int(i64::try_from(*tick).unwrap_or(i64::MAX)),
                    ];
                    if let Some(row) = interner.row(&values) {
                        crash_facts.push((crash_rel, row));
                    }
                }
            }
        }
        crash_facts
    }

    /// The plan of a run showing `shown`; `trace` compiles the rules with witnesses.
    fn prepare<'a>(
        &'a self,
        config: &RunConfig,
        facts: &'a [ir::Fact],
        shown: Vec<RelId>,
        trace: bool,
    ) -> Result<Prepared<'a>, RuntimeError> {
        let given = self.given(facts)?;
        let nodes = self.nodes(config, &given);
        let mut strings = BTreeSet::new();
        self.rule_strings(&mut strings);
        for fact in &given {
            for value in fact.values {
                collect_string(value, &mut strings);
            }
        }
        for node in &nodes {
            collect_string(node, &mut strings);
        }
        for (from, to, _) in config.drops.iter().chain(config.delays.keys()) {
            strings.insert(Arc::from(from.as_str()));
            strings.insert(Arc::from(to.as_str()));
        }
        let interner = Interner::new(strings);
        let rules = if trace {
            plan::compile_rules_traced(&self.program, &interner)?
        } else {
            plan::compile_rules(&self.program, &interner)?
        };
        let components = plan::components(&self.program, &rules);
        let relations = self.program.relations.len();
        let (tables, feedback) = self.tables_and_feedback(&rules);
        let horizon = horizon(config);
        let given_rows = self.given_rows(&given, &interner, horizon);
        let crash_facts = self.crash_facts(config, &nodes, &interner);
        let down = down_rows(config, &interner, horizon);
        let drops = drop_rows(config, &interner, horizon);
        let delays = delay_rows(config, &interner, horizon);
        let plan = Arc::new(RunPlan {
            relations,
            rules,
            components,
            feedback,
            tables,
            given: given_rows,
            crash_facts,
            down,
            drops,
            delays,
            strict: config.crash_model == CrashModel::Strict,
            horizon,
            shown,
            trace,
            batched: false,
        });
        Ok(Prepared {
            given,
            interner,
            plan,
        })
    }

    /// Runs a prepared plan on the workers (the node-local engine when `use_local`); what
    /// worker 0 gathered, on process 0.
    fn execute(
        &self,
        prepared: &Prepared<'_>,
        use_local: bool,
        execution: &Execution,
    ) -> Result<Option<Gathered>, RuntimeError> {
        let run_plan = Arc::clone(&prepared.plan);
        let results = cluster::execute(execution, move |worker| {
            let gathered = Rc::new(RefCell::new(Gathered::default()));
            let plan = Arc::clone(&run_plan);
            if use_local {
                worker.dataflow::<u64, _, _>(|scope| local::build(scope, &plan, &gathered));
            } else {
                worker.dataflow::<u64, _, _>(|scope| lower::build(scope, &plan, &gathered));
            }
            while worker.has_dataflows() {
                worker.step_or_park(None);
            }
            (worker.index() == 0).then(|| gathered.take())
        })?;
        Ok(results.into_iter().flatten().next())
    }

    /// The run's length, by the reference's rule: with `eot`, `eot`; otherwise the first tick
    /// t after every given fact, fault and pinned tick at which base(t+1) equals base(t)
    /// (no base changed at t+1), or `max_ticks` (capped) if there is none.
    fn ticks_run(
        &self,
        config: &RunConfig,
        given: &[GivenFact<'_>],
        changes: &BTreeSet<u64>,
    ) -> (u64, bool) {
        if let Some(eot) = config.eot {
            return (eot, false);
        }
        let last_given = given.iter().map(|fact| fact.tick).max().unwrap_or(0);
        // As in the reference: a crash's regime starts at its tick, a drop's ends after it.
        let last_crash = config.crashes.values().copied().max().unwrap_or(0);
        let last_drop = config
            .drops
            .iter()
            .map(|(_, _, tick)| *tick)
            .max()
            .unwrap_or(0);
        let last_pinned = self
            .program
            .rules
            .iter()
            .flat_map(|rule| rule.atoms().filter_map(|(_, atom)| atom.tick))
            .max()
            .unwrap_or(0);
        // A delayed message changes what arrives up to its arrival tick.
        let first = last_given
            .max(last_crash)
            .max(last_drop.saturating_add(1))
            .max(config.last_delayed_arrival())
            .max(last_pinned.saturating_add(1))
            .max(1);
        let mut tick = first;
        while tick <= config.max_ticks {
            if !changes.contains(&(tick + 1)) {
                return (tick, false);
            }
            tick += 1;
        }
        (config.max_ticks, true)
    }

    /// The contents of the shown relations at every tick `1..=ticks_run`, from their updates.
    fn shown_facts(
        &self,
        interner: &Interner,
        shown: &[RelId],
        mut updates: Vec<((u32, Row), u64, isize)>,
        ticks_run: u64,
    ) -> Vec<ShownFact> {
        // Relations in name order, so that iterating the contents gives the printed order.
        let mut by_name: Vec<(&str, RelId)> = shown
            .iter()
            .map(|rel| (self.program.relation(*rel).name.as_str(), *rel))
            .collect();
        by_name.sort();
        let rank: BTreeMap<u32, usize> = by_name
            .iter()
            .enumerate()
            .map(|(rank, (_, rel))| (u32::try_from(rel.index()).unwrap_or(u32::MAX), rank))
            .collect();
        updates.sort_by_key(|(_, time, _)| *time);
        let mut contents: BTreeMap<(usize, Row), isize> = BTreeMap::new();
        let mut facts = Vec::new();
        let mut pending = updates.into_iter().peekable();
        for tick in 1..=ticks_run {
            while let Some(((rel, row), _, diff)) = pending.next_if(|(_, time, _)| *time <= tick) {
                let Some(rank) = rank.get(&rel) else {
                    continue;
                };
                let key = (*rank, row);
                let count = contents.get(&key).copied().unwrap_or(0) + diff;
                if count == 0 {
                    contents.remove(&key);
                } else {
                    contents.insert(key, count);
                }
            }
            for ((rank, row), count) in &contents {
                if *count <= 0 {
                    continue;
                }
                let Some((name, _)) = by_name.get(*rank) else {
                    continue;
                };
                facts.push(ShownFact {
                    tick,
                    relation: (*name).to_owned(),
                    values: row.iter().map(|val| interner.value(val)).collect(),
                });
            }
        }
        facts
    }
}

/// The last tick a run computes: its end of time, or the tick cap + 1 (quiescence at the cap
/// needs the base of the tick after it).
fn horizon(config: &RunConfig) -> u64 {
    match config.eot {
        Some(eot) => eot,
        None => config.max_ticks.saturating_add(1),
    }
}

/// Crashed nodes (`[node]`) and their crash ticks.
fn down_rows(config: &RunConfig, interner: &Interner, horizon: u64) -> Vec<(Row, u64)> {
    config
        .crashes
        .iter()
        .filter(|(_, tick)| **tick <= horizon)
        .filter_map(|(node, tick)| {
            interner
                .string(node)
                .map(|id| (Row::from_vals(&[Val::Str(id)]), (*tick).max(1)))
        })
        .collect()
}

/// Delays: `[from, to]`, the send tick and the ticks late (never `from == to`, never 0).
fn delay_rows(config: &RunConfig, interner: &Interner, horizon: u64) -> Vec<(Row, u64, u64)> {
    config
        .delays
        .iter()
        .filter(|((from, to, tick), by)| from != to && **by > 0 && (1..=horizon).contains(tick))
        .filter_map(|((from, to, tick), by)| {
            let from = interner.string(from)?;
            let to = interner.string(to)?;
            Some((Row::from_vals(&[Val::Str(from), Val::Str(to)]), *tick, *by))
        })
        .collect()
}

/// Omissions: `[from, to]` and the send tick (never `from == to`).
fn drop_rows(config: &RunConfig, interner: &Interner, horizon: u64) -> Vec<(Row, u64)> {
    config
        .drops
        .iter()
        .filter(|(from, to, tick)| from != to && (1..=horizon).contains(tick))
        .filter_map(|(from, to, tick)| {
            let from = interner.string(from)?;
            let to = interner.string(to)?;
            Some((Row::from_vals(&[Val::Str(from), Val::Str(to)]), *tick))
        })
        .collect()
}
