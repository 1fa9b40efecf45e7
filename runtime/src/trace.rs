//! A traced run: the facts of every tick, the message log with each message's fate, and
//! why-provenance, as [`graft_eval::Run`] holds them for the reference evaluator — built from
//! what worker 0 gathered while the dataflow ran.
//!
//! A traced dataflow is the ordinary dataflow lowering over rules compiled with *witnesses*
//! (every wildcard of a positive atom binds a hidden slot, see
//! [`crate::plan::compile_rules_traced`]), with every relation's contents and every rule's
//! bindings gathered. A binding then names the facts of one firing: each positive atom's
//! columns and each negated atom's pattern are expressions over it ([`FiringPlan`]). So the
//! derivations are read off the dataflow's own results, tick by tick:
//!
//! - a deductive rule's binding at t: a rule firing of its head at t; an aggregate rule's
//!   bindings at t, grouped by the head's other columns: one aggregate derivation per group;
//! - an `@next` rule's binding at t: a carry of its head into t + 1;
//! - an `@async` rule's binding at t: a message from the binding's location, logged with the
//!   fate [`RunConfig::fate`] gives it, and a message derivation at t + 1 (plus its scheduled
//!   delay) when delivered;
//! - a `table` fact held at t − 1 and not retracted there (by a `delete` rule's binding): a
//!   persisted derivation; given facts and `crash` facts: theirs.
//!
//! Architecture invariant: nothing here decides what holds: every fact and binding comes from
//! the dataflow; this module only names them, as the reference names its own.

use std::collections::{BTreeMap, BTreeSet};

use graft_compiler::ir::{self, Persistence, RelId, RuleKind, Value};
use graft_eval::{
    Absent, Derivation, FactRef, Message, RuleFiring, Run, RunConfig, RunParts, Stats, Tuple,
};
use graft_language::span::Span;

use crate::plan::{FiringPlan, RulePlan};
use crate::value::{Expr, Interner, Row, Val};

/// Updates gathered from the dataflow: ((relation or rule index, row), tick, diff).
pub(crate) type Updates = Vec<((u32, Row), u64, isize)>;

/// What a traced run's result is built from, besides the gathered updates.
pub(crate) struct TraceInputs<'a> {
    pub program: &'a ir::Program,
    pub rules: &'a [RulePlan],
    pub interner: &'a Interner,
    pub config: &'a RunConfig,
    /// Given facts: relation, values, tick, source span.
    pub given: Vec<(RelId, Tuple, u64, Span)>,
    /// The `crash` facts, which hold at every tick.
    pub crash_facts: Vec<(RelId, Tuple)>,
    pub nodes: Vec<Value>,
    pub ticks_run: u64,
    pub capped: bool,
}

/// The contents of each key at every tick `1..=ticks`, from its updates: `out[t - 1]` lists
/// the (key, row) pairs holding at t, sorted.
fn replay(mut updates: Updates, ticks: u64) -> Vec<Vec<(u32, Row)>> {
    updates.sort_by_key(|(_, time, _)| *time);
    let mut counts: BTreeMap<(u32, Row), isize> = BTreeMap::new();
    let mut pending = updates.into_iter().peekable();
    let mut out = Vec::new();
    for tick in 1..=ticks {
        while let Some((key, _, diff)) = pending.next_if(|(_, time, _)| *time <= tick) {
            let count = counts.get(&key).copied().unwrap_or(0) + diff;
            if count == 0 {
                counts.remove(&key);
            } else {
                counts.insert(key, count);
            }
        }
        out.push(
            counts
                .iter()
                .filter(|(_, count)| **count > 0)
                .map(|(key, _)| key.clone())
                .collect(),
        );
    }
    out
}

/// Builds the run from the gathered contents and bindings.
pub(crate) fn assemble(inputs: &TraceInputs<'_>, contents: Updates, bindings: Updates) -> Run {
    let ticks = inputs.ticks_run;
    let relations = inputs.program.relations.len();
    let tuple = |row: &Row| -> Tuple {
        row.iter()
            .map(|val| inputs.interner.value(val))
            .collect::<Vec<Value>>()
            .into()
    };
    let contents = replay(contents, ticks);
    let bindings = replay(bindings, ticks);

    let mut facts: Vec<Vec<Vec<Tuple>>> = Vec::with_capacity(contents.len());
    let mut held = 0_u64;
    for at_tick in &contents {
        let mut per_relation = vec![Vec::new(); relations];
        for (rel, row) in at_tick {
            if let Some(list) = per_relation.get_mut(*rel as usize) {
                list.push(tuple(row));
                held += 1;
            }
        }
        facts.push(per_relation);
    }

    // The message log: one message per sender, fact and send tick.
    let mut messages: BTreeSet<Message> = BTreeSet::new();
    for (index, at_tick) in bindings.iter().enumerate() {
        let send_tick = index as u64 + 1;
        for (rule, binding) in at_tick {
            let Some(plan) = inputs.rules.get(*rule as usize) else {
                continue;
            };
            if plan.kind != RuleKind::Async {
                continue;
            }
            let (Some(sender), Some(head)) = (sender(plan, binding), head(plan, binding)) else {
                continue;
            };
            let (sender, fact) = (inputs.interner.value(sender), tuple(&head));
            let Some(dest) = fact.first().cloned() else {
                continue;
            };
            let fate = inputs.config.fate(&sender, &dest, send_tick);
            let delay = inputs.config.delay(&sender, &dest, send_tick);
            messages.insert(Message {
                send_tick,
                sender,
                dest,
                rel: plan.head_rel,
                tuple: fact,
                fate,
                delay,
            });
        }
    }

    let firings = bindings.iter().map(Vec::len).sum::<usize>() as u64;
    let mut run = Run::assemble(RunParts {
        ticks_run: ticks,
        capped: inputs.capped,
        nodes: inputs.nodes.clone(),
        facts,
        messages: messages.into_iter().collect(),
        provenance: true,
        stats: Stats {
            rule_firings: firings,
            facts_derived: 0,
            facts_held: held,
        },
    });

    let mut derivations: BTreeMap<FactRef, Vec<Derivation>> = BTreeMap::new();
    let mut add = |run: &Run, tick: u64, rel: RelId, values: &[Value], derivation: Derivation| {
        // A base fact (given, carried, persisted, delivered, `crash`) of a node that the
        // strict model has crashed is not held; the fact may still hold by a rule of
        // another node.
        let base = !matches!(derivation, Derivation::Rule(_) | Derivation::Aggregate(_));
        if base && inputs.config.drops_base(values.first(), tick) {
            return;
        }
        if let Some(fact) = run.find(tick, rel, values) {
            derivations.entry(fact).or_default().push(derivation);
        }
    };
    for tick in 1..=ticks {
        for (rel, values) in &inputs.crash_facts {
            add(&run, tick, *rel, values, Derivation::Crash);
        }
    }
    for (rel, values, tick, span) in &inputs.given {
        if (1..=ticks).contains(tick) {
            add(&run, *tick, *rel, values, Derivation::Given { span: *span });
        }
    }
    // Retractions made at each tick, by relation.
    let mut retracted: Vec<BTreeSet<(RelId, Tuple)>> = vec![BTreeSet::new(); bindings.len()];
    for (index, at_tick) in bindings.iter().enumerate() {
        for (rule, binding) in at_tick {
            let Some(plan) = inputs.rules.get(*rule as usize) else {
                continue;
            };
            if plan.kind == RuleKind::Delete
                && let Some(head) = head(plan, binding)
            {
                retracted[index].insert((plan.head_rel, tuple(&head)));
            }
        }
    }
    for relation in &inputs.program.relations {
        if relation.persistence != Persistence::Table {
            continue;
        }
        for tick in 2..=ticks {
            let previous: Vec<(FactRef, Tuple)> = run
                .facts(tick - 1, relation.id)
                .iter()
                .enumerate()
                .map(|(id, values)| {
                    let fact = FactRef {
                        tick: tick - 1,
                        rel: relation.id,
                        tuple: u32::try_from(id).unwrap_or(u32::MAX),
                    };
                    (fact, values.clone())
                })
                .collect();
            for (from, values) in previous {
                let gone = retracted
                    .get(usize::try_from(tick - 2).unwrap_or(usize::MAX))
                    .is_some_and(|set| set.contains(&(relation.id, values.clone())));
                if !gone {
                    add(
                        &run,
                        tick,
                        relation.id,
                        &values,
                        Derivation::Persisted { from },
                    );
                }
            }
        }
    }
    for (index, at_tick) in bindings.iter().enumerate() {
        let tick = index as u64 + 1;
        // Aggregate groups: (rule, group key) -> values and the group's facts.
        let mut groups: BTreeMap<(u32, Row), Group> = BTreeMap::new();
        for (rule, binding) in at_tick {
            let Some(plan) = inputs.rules.get(*rule as usize) else {
                continue;
            };
            let Some(firing) = firing(&run, inputs, *rule, plan, binding, tick) else {
                continue;
            };
            if let Some(aggregate) = &plan.aggregate {
                let (Some(key), Some(value)) = (
                    aggregate.key(&plan.head, binding),
                    binding.get(aggregate.slot),
                ) else {
                    continue;
                };
                let group = groups.entry((*rule, key)).or_default();
                group.values.insert(value);
                group.body.extend(firing.body);
                group.absent.extend(firing.absent);
                continue;
            }
            let Some(head) = head(plan, binding) else {
                continue;
            };
            let head = tuple(&head);
            match plan.kind {
                RuleKind::Deductive => {
                    add(&run, tick, plan.head_rel, &head, Derivation::Rule(firing))
                }
                RuleKind::Next => {
                    add(
                        &run,
                        tick + 1,
                        plan.head_rel,
                        &head,
                        Derivation::Next(firing),
                    );
                }
                RuleKind::Async => {
                    let Some(sender) = sender(plan, binding) else {
                        continue;
                    };
                    let sender = inputs.interner.value(sender);
                    let Some(dest) = head.first() else {
                        continue;
                    };
                    if inputs.config.fate(&sender, dest, tick).is_delivered() {
                        let arrival = tick + 1 + inputs.config.delay(&sender, dest, tick);
                        let derivation = Derivation::Message {
                            sender,
                            send_tick: tick,
                            firing,
                        };
                        add(&run, arrival, plan.head_rel, &head, derivation);
                    }
                }
                RuleKind::Delete => {}
            }
        }
        for ((rule, key), group) in groups {
            let Some(plan) = inputs.rules.get(rule as usize) else {
                continue;
            };
            let Some(aggregate) = &plan.aggregate else {
                continue;
            };
            let Some(value) = aggregate.value(group.values.iter()) else {
                continue;
            };
            let head = tuple(&aggregate.head(&key, value));
            let firing = RuleFiring {
                rule: inputs.program.rules[rule as usize].id,
                body: group.body.into_iter().collect(),
                absent: group.absent.into_iter().collect(),
            };
            add(
                &run,
                tick,
                plan.head_rel,
                &head,
                Derivation::Aggregate(firing),
            );
        }
    }
    let mut derived = 0_u64;
    for (fact, list) in derivations {
        let base = list.iter().any(|derivation| {
            !matches!(derivation, Derivation::Rule(_) | Derivation::Aggregate(_))
        });
        derived += u64::from(!base);
        run.set_derivations(fact, list);
    }
    run.stats.facts_derived = derived;
    run
}

/// The facts and values of one aggregate group.
#[derive(Default)]
struct Group {
    values: BTreeSet<Val>,
    body: BTreeSet<FactRef>,
    absent: BTreeSet<Absent>,
}

/// The head a binding derives.
fn head(plan: &RulePlan, binding: &Row) -> Option<Row> {
    Expr::eval_all(&plan.head, binding)
}

/// The node a binding of an `@async` rule sends from (none for a body without a location
/// variable: such a rule sends nothing, as in the reference).
fn sender(plan: &RulePlan, binding: &Row) -> Option<Val> {
    binding.get(plan.location?)
}

/// The firing a binding at `tick` is: its positive body facts (each at its tick: a pinned
/// atom's, else `tick`) and its negated atoms' patterns.
fn firing(
    run: &Run,
    inputs: &TraceInputs<'_>,
    rule: u32,
    plan: &RulePlan,
    binding: &Row,
    tick: u64,
) -> Option<RuleFiring> {
    let FiringPlan { positives, negated } = plan.firing.as_ref()?;
    let value = |expr: &Expr| expr.eval(binding).map(|val| inputs.interner.value(val));
    let mut body = Vec::with_capacity(positives.len());
    for (rel, pinned, columns) in positives {
        let values: Vec<Value> = columns.iter().map(value).collect::<Option<_>>()?;
        body.push(run.find(pinned.unwrap_or(tick), *rel, &values)?);
    }
    let mut absent = Vec::with_capacity(negated.len());
    for (rel, pinned, pattern) in negated {
        let pattern = pattern
            .iter()
            .map(|column| match column {
                Some(expr) => value(expr).map(Some),
                None => Some(None),
            })
            .collect::<Option<Vec<Option<Value>>>>()?;
        absent.push(Absent {
            tick: pinned.unwrap_or(tick),
            rel: *rel,
            pattern,
        });
    }
    Some(RuleFiring {
        rule: inputs.program.rules.get(rule as usize)?.id,
        body,
        absent,
    })
}
