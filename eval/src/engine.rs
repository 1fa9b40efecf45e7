//! The evaluator: rules compiled once per program, then the tick loop of each run.
//!
//! All nodes of a tick are evaluated together. Every body atom of a rule is at the body's
//! location (column 0 holds the shared location variable), so one join over all nodes' facts
//! gives exactly the union of the per-node joins, and an aggregate's group always includes
//! the location. A tick:
//!
//! 1. **base(t)**: crash facts, facts given for t, table facts of t−1 not retracted at t−1,
//!    `@next` heads of t−1, messages sent at t−1 and delivered (in this order, which fixes
//!    fact ids);
//! 2. **strata** in order: aggregate rules once (their bodies are complete lower strata), then
//!    the other deductive rules semi-naively (or naively) to a fixpoint;
//! 3. **temporal rules** (`@next`, `@async`, `delete`) over the complete tick, giving base(t+1).
//!
//! See `docs/semantics.md` for the definition this implements.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use graft_compiler::Checked;
use graft_compiler::ir::{
    self, AggFunc, HeadAggregate, Persistence, RelId, RuleId, RuleKind, Term, Type, Value, VarId,
};
use graft_language::span::Span;

use crate::EvalError;
use crate::config::{CrashModel, EvalStrategy, Record, RunConfig};
use crate::exec::{self, Binding, Source, eval_term};
use crate::hash::{FastMap, FastSet};
use crate::naive::{self, View};
use crate::plan::{self, BodyInfo, IndexRegistry, Plan, Range, Step};
use crate::result::{
    Derivation, FactRef, Fate, Message, Provenance, RuleFiring, Run, Stats, TickFacts,
};
use crate::store::{Store, Tuple};

/// A rule ready to run.
#[derive(Clone, Debug)]
struct CompiledRule {
    id: RuleId,
    kind: RuleKind,
    head_rel: RelId,
    head: Vec<Term>,
    aggregate: Option<HeadAggregate>,
    location: Option<VarId>,
    /// Every atom over whole relations.
    full: Plan,
    /// Semi-naive plans, one per positive atom over a relation of the rule's own stratum:
    /// (the atom's ordinal, the plan reading it from the delta).
    deltas: Vec<(usize, Plan)>,
    /// Per positive atom (by ordinal): its relation and pinned tick.
    positives: Vec<(RelId, Option<u64>)>,
    negated: usize,
}

/// The deductive rules of one stratum.
#[derive(Clone, Debug, Default)]
struct StratumRules {
    /// Aggregate rules (indexes into `Evaluator::rules`).
    aggregates: Vec<usize>,
    /// The other deductive rules.
    rules: Vec<usize>,
}

/// A program compiled for evaluation. Build it once with [`Evaluator::new`]; each
/// [`Evaluator::run`] only allocates the run's own data.
#[derive(Clone, Debug)]
pub struct Evaluator {
    program: ir::Program,
    rules: Vec<CompiledRule>,
    strata: Vec<StratumRules>,
    /// `@next`, `@async` and `delete` rules, in rule order.
    temporal: Vec<usize>,
    indexes: IndexRegistry,
    /// Relations and ticks read by pinned atoms: their contents are kept as history.
    pinned: BTreeSet<(RelId, u64)>,
    /// The relation `crash`, when the program mentions it.
    crash_rel: Option<RelId>,
    tables: Vec<RelId>,
    /// Per relation: the columns holding nodes (column 0 and node- or role-typed columns).
    node_columns: Vec<Vec<usize>>,
    /// The program's own facts.
    program_facts: Vec<GivenFact>,
}

#[derive(Clone, Debug)]
struct GivenFact {
    rel: RelId,
    tuple: Tuple,
    tick: u64,
    span: Span,
}

/// A head derived by one firing (or one aggregate group).
struct Derived {
    rel: RelId,
    tuple: Tuple,
    location: Option<Value>,
    firing: Option<RuleFiring>,
}

/// A fact of a tick's base, with its derivation when provenance is on.
struct BaseFact {
    rel: RelId,
    tuple: Tuple,
    derivation: Option<Derivation>,
}

impl Evaluator {
    /// Compiles a checked program. Refuses a program whose check reported errors.
    pub fn new(checked: &Checked) -> Result<Evaluator, EvalError> {
        let errors = checked
            .diagnostics
            .iter()
            .filter(|diagnostic| diagnostic.is_error())
            .count();
        if errors > 0 {
            return Err(EvalError::ProgramHasErrors { errors });
        }
        let program = &checked.program;
        let strata = &checked.analysis.strata;
        let relation_stratum = |rel: RelId| strata.relation.get(rel.index()).copied().unwrap_or(0);
        let mut indexes = IndexRegistry::new(program.relations.len());
        let mut rules = Vec::with_capacity(program.rules.len());
        let mut stratum_rules = vec![StratumRules::default(); strata.count.max(1) as usize];
        let mut temporal = Vec::new();
        let mut pinned = BTreeSet::new();
        for rule in &program.rules {
            let stratum = match rule.kind {
                RuleKind::Deductive => relation_stratum(rule.head.rel),
                RuleKind::Next | RuleKind::Async | RuleKind::Delete => u32::MAX,
            };
            let positives: Vec<(RelId, Option<u64>)> = rule
                .atoms()
                .filter(|(_, atom)| !atom.negated)
                .map(|(_, atom)| (atom.rel, atom.tick))
                .collect();
            for (_, atom) in rule.atoms() {
                if let Some(tick) = atom.tick {
                    pinned.insert((atom.rel, tick));
                }
            }
            let info = BodyInfo {
                rule,
                same_stratum: positives
                    .iter()
                    .map(|(rel, _)| relation_stratum(*rel) == stratum)
                    .collect(),
            };
            let full = plan::compile(&info, None, &mut indexes)?;
            let mut deltas = Vec::new();
            if rule.kind == RuleKind::Deductive && rule.head.aggregate.is_none() {
                for (ordinal, same) in info.same_stratum.iter().enumerate() {
                    if *same {
                        deltas.push((ordinal, plan::compile(&info, Some(ordinal), &mut indexes)?));
                    }
                }
            }
            let index = rules.len();
            rules.push(CompiledRule {
                id: rule.id,
                kind: rule.kind,
                head_rel: rule.head.rel,
                head: rule.head.args.clone(),
                aggregate: rule.head.aggregate.clone(),
                location: rule.location,
                full,
                deltas,
                positives,
                negated: rule.atoms().filter(|(_, atom)| atom.negated).count(),
            });
            if rule.kind == RuleKind::Deductive {
                let Some(group) = stratum_rules.get_mut(stratum as usize) else {
                    return Err(EvalError::Internal("a rule's stratum is out of range"));
                };
                if rule.head.aggregate.is_some() {
                    group.aggregates.push(index);
                } else {
                    group.rules.push(index);
                }
            } else {
                temporal.push(index);
            }
        }
        let crash_rel = program
            .relation_by_name(graft_compiler::CRASH)
            .filter(|rel| program.relation(*rel).origin == ir::RelationOrigin::Builtin);
        let tables = program
            .relations
            .iter()
            .filter(|relation| relation.persistence == Persistence::Table)
            .map(|relation| relation.id)
            .collect();
        let node_columns = program
            .relations
            .iter()
            .map(|relation| {
                relation
                    .columns
                    .iter()
                    .enumerate()
                    .filter(|(index, column)| {
                        *index == 0 || matches!(column.ty, Type::Node | Type::Role(_))
                    })
                    .map(|(index, _)| index)
                    .collect()
            })
            .collect();
        let mut evaluator = Evaluator {
            program: program.clone(),
            rules,
            strata: stratum_rules,
            temporal,
            indexes,
            pinned,
            crash_rel,
            tables,
            node_columns,
            program_facts: Vec::new(),
        };
        evaluator.program_facts = evaluator.given_facts(&program.facts)?;
        Ok(evaluator)
    }

    /// The program being evaluated.
    pub fn program(&self) -> &ir::Program {
        &self.program
    }

    fn given_facts(&self, facts: &[ir::Fact]) -> Result<Vec<GivenFact>, EvalError> {
        facts
            .iter()
            .map(|fact| {
                self.program.fact_relation(fact).map_err(EvalError::from)?;
                Ok(GivenFact {
                    rel: fact.rel,
                    tuple: Arc::from(fact.values.as_slice()),
                    tick: fact.tick,
                    span: fact.span,
                })
            })
            .collect()
    }

    fn new_db(&self) -> Vec<Store> {
        self.indexes
            .per_relation
            .iter()
            .map(|columns| Store::new(columns))
            .collect()
    }

    /// The nodes of a run on `facts` under `config`, sorted: the values in location, `node`
    /// and role columns of the program's and the workload's facts (unless
    /// `config.exact_nodes`), and `config.extra_nodes`.
    /// (A run also counts its crashed nodes as nodes; front ends check fault schedules
    /// against this list first, so that a misspelt node is an error, not a new node.)
    pub fn nodes(&self, config: &RunConfig, facts: &[ir::Fact]) -> Result<Vec<Value>, EvalError> {
        let workload = self.given_facts(facts)?;
        Ok(self.nodes_of(config, &workload).into_iter().collect())
    }

    fn nodes_of(&self, config: &RunConfig, workload: &[GivenFact]) -> BTreeSet<Value> {
        let mut nodes: BTreeSet<Value> = BTreeSet::new();
        let named = self.program_facts.iter().chain(workload);
        for fact in named.filter(|_| !config.exact_nodes) {
            for column in self
                .node_columns
                .get(fact.rel.index())
                .into_iter()
                .flatten()
            {
                // Nodes are named by strings (a Molly program may locate facts at integers,
                // which are never crashed and never lose messages).
                if let Some(value) = fact
                    .tuple
                    .get(*column)
                    .filter(|value| value.as_str().is_some())
                {
                    nodes.insert(value.clone());
                }
            }
        }
        nodes.extend(config.extra_nodes.iter().map(|name| Value::str(name)));
        nodes
    }

    /// Runs the program on the program's facts plus `facts` (a workload).
    pub fn run(&self, config: &RunConfig, facts: &[ir::Fact]) -> Result<Run, EvalError> {
        let workload = self.given_facts(facts)?;
        let mut given: BTreeMap<u64, Vec<&GivenFact>> = BTreeMap::new();
        for fact in self.program_facts.iter().chain(&workload) {
            given.entry(fact.tick).or_default().push(fact);
        }
        let mut nodes = self.nodes_of(config, &workload);
        nodes.extend(config.crashes.keys().map(|name| Value::str(name)));
        let crashes: HashMap<Value, u64> = config
            .crashes
            .iter()
            .map(|(name, tick)| (Value::str(name), *tick))
            .collect();
        let drops: HashSet<(Value, Value, u64)> = config
            .drops
            .iter()
            .map(|(from, to, tick)| (Value::str(from), Value::str(to), *tick))
            .collect();
        let delays: HashMap<(Value, Value, u64), u64> = config
            .delays
            .iter()
            .map(|((from, to, tick), by)| ((Value::str(from), Value::str(to), *tick), *by))
            .collect();
        let mut crash_facts = Vec::new();
        if let Some(crash_rel) = self.crash_rel {
            for node in &nodes {
                for (crashed, tick) in &config.crashes {
                    let tick = Value::Int(i64::try_from(*tick).unwrap_or(i64::MAX));
                    crash_facts.push((
                        crash_rel,
                        Arc::from([node.clone(), Value::str(crashed), tick]),
                    ));
                }
            }
        }
        let last_given = given.keys().next_back().copied().unwrap_or(0);
        // A crash at c holds from c on, so tick c already shows the crashed regime; a drop at
        // t affects only tick t's sends, so the regime changes again after t.
        let last_crash = config.crashes.values().copied().max().unwrap_or(0);
        let last_drop = config
            .drops
            .iter()
            .map(|(_, _, tick)| *tick)
            .max()
            .unwrap_or(0);
        let last_pinned = self.pinned.iter().map(|(_, tick)| *tick).max().unwrap_or(0);

        let context = RunContext {
            config,
            crashes: &crashes,
            drops: &drops,
            delays: &delays,
            crash_facts: &crash_facts,
            given: &given,
        };
        let mut run = Run {
            ticks_run: 0,
            capped: false,
            nodes: nodes.into_iter().collect(),
            ticks: Vec::new(),
            messages: Vec::new(),
            provenance: config.provenance.then(Provenance::default),
            stats: Stats::default(),
        };
        let mut history: HashMap<(RelId, u64), Store> = HashMap::new();
        // Delayed messages, by the tick they arrive at.
        let mut pending: BTreeMap<u64, Vec<Carried>> = BTreeMap::new();
        let last_arrival = config.last_delayed_arrival();
        let mut base = self.base(&context, 1, None, Vec::new());
        let mut tick = 1_u64;
        loop {
            match config.eot {
                Some(eot) if tick > eot => break,
                None if tick > config.max_ticks => {
                    run.capped = true;
                    break;
                }
                _ => {}
            }
            let mut state = TickState::new(self, tick, &history, config.provenance);
            let mut base_lengths = vec![0_u32; self.program.relations.len()];
            for fact in base {
                state.insert(fact.rel, fact.tuple, fact.derivation);
            }
            for (rel, store) in state.db.iter().enumerate() {
                base_lengths[rel] = u32::try_from(store.len()).unwrap_or(u32::MAX);
            }
            for stratum in &self.strata {
                match config.strategy {
                    EvalStrategy::SemiNaive => self.semi_naive(stratum, &mut state, &context),
                    EvalStrategy::Naive => self.naive(stratum, &mut state, &context),
                }
            }
            let (next, messages) = self.temporal(&mut state, &context, &mut run.messages);
            let mut arriving = pending.remove(&(tick + 1)).unwrap_or_default();
            for (arrival, message) in messages {
                if arrival == tick + 1 {
                    arriving.push(message);
                } else {
                    pending.entry(arrival).or_default().push(message);
                }
            }
            run.ticks_run = tick;
            let last = config.eot == Some(tick);
            let next_base = if last {
                Vec::new()
            } else {
                self.base(
                    &context,
                    tick + 1,
                    Some(&state.db),
                    next.into_iter().chain(arriving).collect(),
                )
            };
            let quiescent = config.eot.is_none()
                && tick >= last_given
                && tick >= last_crash
                && tick > last_drop
                && tick >= last_arrival
                && tick > last_pinned
                && same_base(&next_base, &state.db, &base_lengths);
            let snapshots = self.record(state, &config.record, config.strategy, &mut run);
            history.extend(snapshots);
            if last || quiescent {
                break;
            }
            base = next_base;
            tick += 1;
        }
        run.messages.sort();
        if config.provenance {
            // Fact ids in value order: what is read from the run does not depend on the order
            // in which this evaluator found its facts, so every engine gives the same run.
            run = run.into_canonical();
        }
        Ok(run)
    }

    /// The base facts of tick `tick`. `previous` is the database of tick − 1 (for tables),
    /// `carried` the `@next` heads, retractions and delivered messages of tick − 1.
    fn base(
        &self,
        context: &RunContext<'_>,
        tick: u64,
        previous: Option<&[Store]>,
        carried: Vec<Carried>,
    ) -> Vec<BaseFact> {
        let provenance = context.config.provenance;
        let mut facts = Vec::new();
        for (rel, tuple) in context.crash_facts {
            facts.push(BaseFact {
                rel: *rel,
                tuple: tuple.clone(),
                derivation: provenance.then_some(Derivation::Crash),
            });
        }
        for fact in context.given.get(&tick).into_iter().flatten() {
            facts.push(BaseFact {
                rel: fact.rel,
                tuple: fact.tuple.clone(),
                derivation: provenance.then_some(Derivation::Given { span: fact.span }),
            });
        }
        let mut deletes: FastSet<(RelId, &Tuple)> = FastSet::default();
        for item in &carried {
            if let Carried::Delete(rel, tuple) = item {
                deletes.insert((*rel, tuple));
            }
        }
        if let Some(previous) = previous {
            for rel in &self.tables {
                let Some(store) = previous.get(rel.index()) else {
                    continue;
                };
                for (id, tuple) in store.list.iter().enumerate() {
                    if deletes.contains(&(*rel, tuple)) {
                        continue;
                    }
                    facts.push(BaseFact {
                        rel: *rel,
                        tuple: tuple.clone(),
                        derivation: provenance.then(|| Derivation::Persisted {
                            from: FactRef {
                                tick: tick - 1,
                                rel: *rel,
                                tuple: u32::try_from(id).unwrap_or(u32::MAX),
                            },
                        }),
                    });
                }
            }
        }
        drop(deletes);
        for item in carried {
            match item {
                Carried::Delete(..) => {}
                Carried::Fact(fact) => facts.push(fact),
            }
        }
        if context.config.crash_model == CrashModel::Strict {
            // As `RunConfig::drops_base` says, looked up in this run's hash map.
            facts.retain(|fact| !context.crashed_at(fact.tuple.first(), tick));
        }
        facts
    }

    fn fire(
        &self,
        rule: &CompiledRule,
        plan: &Plan,
        state: &TickState<'_>,
        marks: &[u32],
        context: &RunContext<'_>,
        out: &mut Vec<Derived>,
    ) -> u64 {
        let sources: Vec<Source<'_>> = plan
            .steps
            .iter()
            .map(|step| match step {
                Step::Atom(atom) => state.source(atom.rel, atom.pinned, atom.range, marks),
                Step::Negated(negated) => {
                    state.source(negated.rel, negated.pinned, Range::Full, marks)
                }
                Step::Compare { .. } => Source::EMPTY,
            })
            .collect();
        let mut firings = 0;
        let provenance = context.config.provenance;
        exec::execute(
            plan,
            &sources,
            rule.positives.len(),
            rule.negated,
            provenance,
            &mut |binding| {
                if let Some(derived) = derive(rule, binding, state.tick, context, provenance) {
                    firings += 1;
                    out.push(derived);
                }
            },
        );
        firings
    }

    /// Calls `emit` for every binding of `rule`'s body over the whole tick.
    fn bindings(
        &self,
        rule: &CompiledRule,
        state: &TickState<'_>,
        context: &RunContext<'_>,
        emit: &mut dyn FnMut(&Binding<'_>),
    ) {
        let provenance = context.config.provenance;
        match context.config.strategy {
            EvalStrategy::SemiNaive => {
                let sources: Vec<Source<'_>> = rule
                    .full
                    .steps
                    .iter()
                    .map(|step| match step {
                        Step::Atom(atom) => state.source(atom.rel, atom.pinned, Range::Full, &[]),
                        Step::Negated(negated) => {
                            state.source(negated.rel, negated.pinned, Range::Full, &[])
                        }
                        Step::Compare { .. } => Source::EMPTY,
                    })
                    .collect();
                exec::execute(
                    &rule.full,
                    &sources,
                    rule.positives.len(),
                    rule.negated,
                    provenance,
                    emit,
                );
            }
            EvalStrategy::Naive => {
                let view = View {
                    db: &state.db,
                    history: state.history,
                    tick: state.tick,
                };
                naive::enumerate(self.program.rule(rule.id), &view, provenance, emit);
            }
        }
    }

    /// Every head of a non-aggregate rule over the whole tick.
    fn fire_all(
        &self,
        rule: &CompiledRule,
        state: &TickState<'_>,
        context: &RunContext<'_>,
    ) -> (Vec<Derived>, u64) {
        let provenance = context.config.provenance;
        let mut out = Vec::new();
        let mut firings = 0;
        self.bindings(rule, state, context, &mut |binding| {
            if let Some(derived) = derive(rule, binding, state.tick, context, provenance) {
                firings += 1;
                out.push(derived);
            }
        });
        (out, firings)
    }

    /// The groups of an aggregate rule over the whole tick.
    fn aggregate(
        &self,
        rule: &CompiledRule,
        state: &TickState<'_>,
        context: &RunContext<'_>,
    ) -> (Vec<Derived>, u64) {
        let Some(aggregate) = &rule.aggregate else {
            return (Vec::new(), 0);
        };
        let provenance = context.config.provenance;
        let mut groups: BTreeMap<Vec<Value>, Group> = BTreeMap::new();
        let mut firings = 0;
        self.bindings(rule, state, context, &mut |binding| {
            let Some(Some(value)) = binding.slots.get(aggregate.var.index()) else {
                return;
            };
            let mut key = Vec::with_capacity(rule.head.len());
            for (column, term) in rule.head.iter().enumerate() {
                if column == aggregate.column {
                    continue;
                }
                match eval_term(term, binding.slots) {
                    Ok(value) => key.push(value),
                    Err(_) => return,
                }
            }
            let location = rule
                .location
                .and_then(|var| binding.slots.get(var.index()).cloned().flatten());
            if context.config.crash_model == CrashModel::Strict
                && context.crashed_at(location.as_ref(), state.tick)
            {
                return;
            }
            firings += 1;
            let group = groups.entry(key).or_insert_with(|| Group {
                location,
                values: BTreeSet::new(),
                body: BTreeSet::new(),
                absent: BTreeSet::new(),
            });
            group.values.insert(value.clone());
            if provenance {
                group.body.extend(binding.body.iter().copied());
                group.absent.extend(binding.absent.iter().cloned());
            }
        });
        let mut out = Vec::new();
        for (key, group) in groups {
            let Some(result) = aggregate_value(aggregate.func, &group.values) else {
                continue;
            };
            let mut values = key;
            values.insert(aggregate.column.min(values.len()), result);
            out.push(Derived {
                rel: rule.head_rel,
                tuple: Arc::from(values),
                location: group.location,
                firing: provenance.then(|| RuleFiring {
                    rule: rule.id,
                    body: group.body.into_iter().collect(),
                    absent: group.absent.into_iter().collect(),
                }),
            });
        }
        (out, firings)
    }

    fn semi_naive(
        &self,
        stratum: &StratumRules,
        state: &mut TickState<'_>,
        context: &RunContext<'_>,
    ) {
        for index in &stratum.aggregates {
            let rule = &self.rules[*index];
            let (derived, firings) = self.aggregate(rule, state, context);
            state.stats.rule_firings += firings;
            state.insert_derived(derived, true);
        }
        // Round 1: every rule over every fact present.
        let mut derived = Vec::new();
        for index in &stratum.rules {
            let rule = &self.rules[*index];
            state.stats.rule_firings +=
                self.fire(rule, &rule.full, state, &[], context, &mut derived);
        }
        let mut marks = state.lengths();
        let mut changed = state.insert_derived(std::mem::take(&mut derived), false);
        // Later rounds: at least one atom from the facts new in the previous round.
        while changed {
            for index in &stratum.rules {
                let rule = &self.rules[*index];
                for (ordinal, plan) in &rule.deltas {
                    let Some((rel, pinned)) = rule.positives.get(*ordinal) else {
                        continue;
                    };
                    if pinned.is_some_and(|at| at != state.tick) {
                        continue;
                    }
                    if marks.get(rel.index()).copied() == Some(state.length(*rel)) {
                        continue;
                    }
                    state.stats.rule_firings +=
                        self.fire(rule, plan, state, &marks, context, &mut derived);
                }
            }
            marks = state.lengths();
            changed = state.insert_derived(std::mem::take(&mut derived), false);
        }
    }

    fn naive(&self, stratum: &StratumRules, state: &mut TickState<'_>, context: &RunContext<'_>) {
        loop {
            let mut derived = Vec::new();
            for index in &stratum.aggregates {
                let (found, firings) = self.aggregate(&self.rules[*index], state, context);
                state.stats.rule_firings += firings;
                derived.extend(found.into_iter().map(|item| (item, true)));
            }
            for index in &stratum.rules {
                let (found, firings) = self.fire_all(&self.rules[*index], state, context);
                state.stats.rule_firings += firings;
                derived.extend(found.into_iter().map(|item| (item, false)));
            }
            let mut changed = false;
            for (item, aggregate) in derived {
                changed |= state.insert_derived(vec![item], aggregate);
            }
            if !changed {
                break;
            }
        }
    }

    /// Evaluates the temporal rules over the complete tick: the `@next` heads and retractions
    /// for the next tick, and the messages (logged in `log`; the delivered ones returned with
    /// the tick they arrive at).
    fn temporal(
        &self,
        state: &mut TickState<'_>,
        context: &RunContext<'_>,
        log: &mut Vec<Message>,
    ) -> (Vec<Carried>, Vec<(u64, Carried)>) {
        let provenance = context.config.provenance;
        let tick = state.tick;
        let mut carried = Vec::new();
        let mut delivered = Vec::new();
        let mut sent: FastMap<(Value, RelId, Tuple), Fate> = FastMap::default();
        for index in &self.temporal {
            let rule = &self.rules[*index];
            let (derived, firings) = self.fire_all(rule, state, context);
            state.stats.rule_firings += firings;
            for item in derived {
                match rule.kind {
                    RuleKind::Deductive => {}
                    RuleKind::Delete => carried.push(Carried::Delete(item.rel, item.tuple)),
                    RuleKind::Next => carried.push(Carried::Fact(BaseFact {
                        rel: item.rel,
                        tuple: item.tuple,
                        derivation: item.firing.map(Derivation::Next),
                    })),
                    RuleKind::Async => {
                        let Some(sender) = item.location else {
                            continue;
                        };
                        let Some(dest) = item.tuple.first().cloned() else {
                            continue;
                        };
                        let key = (sender.clone(), item.rel, item.tuple.clone());
                        let delay = context.delay(&sender, &dest, tick);
                        let fate = match sent.get(&key) {
                            Some(fate) => *fate,
                            None => {
                                let fate = context.fate(&sender, &dest, tick);
                                sent.insert(key, fate);
                                log.push(Message {
                                    send_tick: tick,
                                    sender: sender.clone(),
                                    dest,
                                    rel: item.rel,
                                    tuple: item.tuple.clone(),
                                    fate,
                                    delay,
                                });
                                fate
                            }
                        };
                        if fate.is_delivered() {
                            let arrival = tick + 1 + delay;
                            delivered.push((
                                arrival,
                                Carried::Fact(BaseFact {
                                    rel: item.rel,
                                    tuple: item.tuple,
                                    derivation: provenance.then(|| Derivation::Message {
                                        sender,
                                        send_tick: tick,
                                        firing: item.firing.unwrap_or(RuleFiring {
                                            rule: rule.id,
                                            body: Vec::new(),
                                            absent: Vec::new(),
                                        }),
                                    }),
                                }),
                            ));
                        }
                    }
                }
            }
        }
        (carried, delivered)
    }

    /// Moves a finished tick into the run; returns copies of the relations that pinned atoms
    /// read at this tick, for the history.
    fn record(
        &self,
        state: TickState<'_>,
        record: &Record,
        strategy: EvalStrategy,
        run: &mut Run,
    ) -> Vec<((RelId, u64), Store)> {
        let tick = state.tick;
        let provenance = run.provenance.is_some();
        let mut snapshots = Vec::new();
        for (rel, store) in state.db.iter().enumerate() {
            let rel = RelId::from_index(rel);
            if self.pinned.contains(&(rel, tick)) {
                snapshots.push(((rel, tick), store.clone()));
            }
        }
        let mut stats = state.stats;
        let mut relations = Vec::with_capacity(state.db.len());
        let mut ids = provenance.then(Vec::new);
        for (rel, store) in state.db.into_iter().enumerate() {
            stats.facts_held += store.len() as u64;
            let keep = provenance || record.includes(RelId::from_index(rel));
            let (list, set) = store.into_parts(provenance);
            relations.push(if keep { list } else { Vec::new() });
            if let (Some(ids), Some(set)) = (ids.as_mut(), set) {
                ids.push(set);
            }
        }
        if let (Some(provenance), Some(mut derivations)) =
            (run.provenance.as_mut(), state.derivations)
        {
            // The semi-naive strategy enumerates every firing exactly once; the naive one
            // re-derives facts every round, so only its lists need duplicates removed.
            let naive = strategy == EvalStrategy::Naive;
            for per_relation in &mut derivations {
                for list in per_relation.iter_mut() {
                    list.sort();
                    if naive {
                        list.dedup();
                    }
                }
            }
            provenance.ticks.push(derivations);
        }
        run.stats.rule_firings += stats.rule_firings;
        run.stats.facts_derived += stats.facts_derived;
        run.stats.facts_held += stats.facts_held;
        run.ticks.push(TickFacts {
            tick,
            relations,
            ids,
        });
        snapshots
    }
}

struct Group {
    location: Option<Value>,
    values: BTreeSet<Value>,
    body: BTreeSet<FactRef>,
    absent: BTreeSet<crate::result::Absent>,
}

/// The aggregate of a group's distinct values; `None` when it has none or the sum overflows
/// or is over non-integers.
fn aggregate_value(func: AggFunc, values: &BTreeSet<Value>) -> Option<Value> {
    match func {
        AggFunc::Count => Some(Value::Int(i64::try_from(values.len()).unwrap_or(i64::MAX))),
        AggFunc::Sum => {
            let mut total: i64 = 0;
            for value in values {
                total = total.checked_add(value.as_int()?)?;
            }
            Some(Value::Int(total))
        }
        AggFunc::Min => values.first().cloned(),
        AggFunc::Max => values.last().cloned(),
    }
}

/// The head of a non-aggregate rule for one binding; `None` when a head term fails or (strict
/// crash model) the body's node has crashed.
fn derive(
    rule: &CompiledRule,
    binding: &Binding<'_>,
    tick: u64,
    context: &RunContext<'_>,
    provenance: bool,
) -> Option<Derived> {
    let mut values = Vec::with_capacity(rule.head.len());
    for term in &rule.head {
        values.push(eval_term(term, binding.slots).ok()?);
    }
    let location = rule
        .location
        .and_then(|var| binding.slots.get(var.index()).cloned().flatten());
    if context.config.crash_model == CrashModel::Strict
        && context.crashed_at(location.as_ref(), tick)
    {
        return None;
    }
    Some(Derived {
        rel: rule.head_rel,
        tuple: Arc::from(values),
        location,
        firing: provenance.then(|| RuleFiring {
            rule: rule.id,
            body: binding.body.to_vec(),
            absent: binding.absent.to_vec(),
        }),
    })
}

/// Whether the base about to be used for the next tick equals the base of this tick.
fn same_base(next: &[BaseFact], db: &[Store], base_lengths: &[u32]) -> bool {
    let mut distinct: Vec<FastSet<&Tuple>> = vec![FastSet::default(); db.len()];
    for fact in next {
        let Some(store) = db.get(fact.rel.index()) else {
            return false;
        };
        match store.id_of(&fact.tuple) {
            Some(id) if id < base_lengths[fact.rel.index()] => {
                distinct[fact.rel.index()].insert(&fact.tuple);
            }
            _ => return false,
        }
    }
    distinct
        .iter()
        .zip(base_lengths)
        .all(|(set, length)| set.len() == *length as usize)
}

/// What a tick hands to the next.
enum Carried {
    Fact(BaseFact),
    Delete(RelId, Tuple),
}

/// Per-run data shared by every tick.
struct RunContext<'a> {
    config: &'a RunConfig,
    crashes: &'a HashMap<Value, u64>,
    drops: &'a HashSet<(Value, Value, u64)>,
    delays: &'a HashMap<(Value, Value, u64), u64>,
    crash_facts: &'a [(RelId, Tuple)],
    given: &'a BTreeMap<u64, Vec<&'a GivenFact>>,
}

impl RunContext<'_> {
    /// Whether `node` has crashed at or before `tick`.
    fn crashed_at(&self, node: Option<&Value>, tick: u64) -> bool {
        node.and_then(|node| self.crashes.get(node))
            .is_some_and(|crash| *crash <= tick)
    }

    /// [`RunConfig::fate`], with the schedule looked up in this run's hash maps.
    fn fate(&self, sender: &Value, dest: &Value, tick: u64) -> Fate {
        crate::config::decide_fate(
            self.crashes.get(sender).copied(),
            self.crashes.get(dest).copied(),
            sender != dest && self.drops.contains(&(sender.clone(), dest.clone(), tick)),
            self.config.crash_model,
            tick,
            tick + 1 + self.delay(sender, dest, tick),
        )
    }

    /// [`RunConfig::delay`], looked up in this run's hash map.
    fn delay(&self, sender: &Value, dest: &Value, tick: u64) -> u64 {
        if self.delays.is_empty() || sender == dest {
            return 0;
        }
        self.delays
            .get(&(sender.clone(), dest.clone(), tick))
            .copied()
            .unwrap_or(0)
    }
}

/// The database of the tick being evaluated.
struct TickState<'h> {
    tick: u64,
    db: Vec<Store>,
    history: &'h HashMap<(RelId, u64), Store>,
    /// Derivations by relation and fact id, with provenance.
    derivations: Option<Vec<Vec<Vec<Derivation>>>>,
    stats: Stats,
}

impl<'h> TickState<'h> {
    fn new(
        evaluator: &Evaluator,
        tick: u64,
        history: &'h HashMap<(RelId, u64), Store>,
        provenance: bool,
    ) -> TickState<'h> {
        let db = evaluator.new_db();
        let derivations = provenance.then(|| vec![Vec::new(); db.len()]);
        TickState {
            tick,
            db,
            history,
            derivations,
            stats: Stats::default(),
        }
    }

    fn length(&self, rel: RelId) -> u32 {
        self.db
            .get(rel.index())
            .map_or(0, |store| u32::try_from(store.len()).unwrap_or(u32::MAX))
    }

    fn lengths(&self) -> Vec<u32> {
        self.db
            .iter()
            .map(|store| u32::try_from(store.len()).unwrap_or(u32::MAX))
            .collect()
    }

    /// Inserts a fact; returns whether it is new.
    fn insert(&mut self, rel: RelId, tuple: Tuple, derivation: Option<Derivation>) -> bool {
        let Some(store) = self.db.get_mut(rel.index()) else {
            return false;
        };
        let (id, new) = store.insert(tuple);
        if let (Some(derivations), Some(derivation)) = (self.derivations.as_mut(), derivation) {
            let list = &mut derivations[rel.index()];
            if list.len() <= id as usize {
                list.resize(id as usize + 1, Vec::new());
            }
            // Duplicates (the naive strategy re-derives facts every round) are removed when
            // the tick is recorded.
            list[id as usize].push(derivation);
        }
        new
    }

    /// Inserts rule heads; returns whether any is new.
    fn insert_derived(&mut self, derived: Vec<Derived>, aggregate: bool) -> bool {
        let mut changed = false;
        for item in derived {
            let derivation = item.firing.map(|firing| {
                if aggregate {
                    Derivation::Aggregate(firing)
                } else {
                    Derivation::Rule(firing)
                }
            });
            if self.insert(item.rel, item.tuple, derivation) {
                self.stats.facts_derived += 1;
                changed = true;
            }
        }
        changed
    }

    /// What an atom over `rel` pinned to `pinned` reads in `range`; `marks` gives each
    /// relation's delta start (unused for `Range::Full`).
    fn source(&self, rel: RelId, pinned: Option<u64>, range: Range, marks: &[u32]) -> Source<'_> {
        match pinned {
            Some(at) if at > self.tick => Source {
                store: None,
                lo: 0,
                hi: 0,
                tick: at,
            },
            Some(at) if at < self.tick => match self.history.get(&(rel, at)) {
                Some(store) => Source {
                    store: Some(store),
                    lo: 0,
                    hi: u32::try_from(store.len()).unwrap_or(u32::MAX),
                    tick: at,
                },
                None => Source {
                    store: None,
                    lo: 0,
                    hi: 0,
                    tick: at,
                },
            },
            _ => {
                let store = self.db.get(rel.index());
                let length =
                    store.map_or(0, |store| u32::try_from(store.len()).unwrap_or(u32::MAX));
                let mark = marks
                    .get(rel.index())
                    .copied()
                    .unwrap_or(length)
                    .min(length);
                let (lo, hi) = match range {
                    Range::Full => (0, length),
                    Range::Old => (0, mark),
                    Range::Delta => (mark, length),
                };
                Source {
                    store,
                    lo,
                    hi,
                    tick: self.tick,
                }
            }
        }
    }
}
