//! The result of a run: facts per tick, the message log, provenance, counters.
//!
//! Facts are identified by [`FactRef`]: a tick, a relation and the fact's id at that tick (its
//! position in [`Run::facts`] for that tick and relation). Provenance refers to body facts by
//! `FactRef`, so walking a derivation tree is a chain of indexed look-ups.

use graft_compiler::ir::{RelId, RuleId, Value};
use graft_language::span::Span;
use serde::Serialize;

use crate::hash::FastMap;
use crate::store::Tuple;

/// One fact at one tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct FactRef {
    pub tick: u64,
    pub rel: RelId,
    /// The fact's id: its index in [`Run::facts`]`(tick, rel)`.
    pub tuple: u32,
}

/// A negated body atom that held: no fact of `rel` at `tick` matched `pattern`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Absent {
    pub tick: u64,
    pub rel: RelId,
    /// The atom's arguments as instantiated by the firing; `None` for a wildcard.
    pub pattern: Vec<Option<Value>>,
}

/// One firing of a rule: the positive body facts in body order, and the negated atoms (in
/// body order) that held.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RuleFiring {
    pub rule: RuleId,
    pub body: Vec<FactRef>,
    pub absent: Vec<Absent>,
}

/// One reason a fact holds at a tick.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Derivation {
    /// The `crash(Observer, Crashed, Tick)` fact of the fault schedule.
    Crash,
    /// A fact given in the program or a workload for this tick.
    Given { span: Span },
    /// A `table` fact carried over from the previous tick (not retracted there).
    Persisted { from: FactRef },
    /// A deductive rule fired at this tick.
    Rule(RuleFiring),
    /// An aggregate rule: `firing.body` and `firing.absent` gather every binding of the group.
    Aggregate(RuleFiring),
    /// An `@next` rule fired at the previous tick (its body facts are at that tick).
    Next(RuleFiring),
    /// A message: an `@async` rule fired at `sender` at `send_tick`, and the message arrived.
    Message {
        sender: Value,
        send_tick: u64,
        firing: RuleFiring,
    },
}

/// What became of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fate {
    /// Delivered at `send_tick + 1` plus its delay (which may be after the run's last tick).
    Delivered,
    /// Lost by an omission in the fault schedule.
    Omitted,
    /// Lost because the sender had crashed.
    SenderCrashed,
    /// Lost because the receiver had crashed (strict crash model only).
    ReceiverCrashed,
}

impl Fate {
    pub fn is_delivered(self) -> bool {
        self == Fate::Delivered
    }
}

/// One message: a fact an `@async` rule derived at `sender` for `dest` (the fact's location).
/// Several firings deriving the same fact at the same sender and tick are one message.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Message {
    pub send_tick: u64,
    pub sender: Value,
    pub dest: Value,
    pub rel: RelId,
    #[serde(serialize_with = "serialize_tuple")]
    pub tuple: Tuple,
    pub fate: Fate,
    /// Ticks late: a delivered message arrives at `send_tick + 1 + delay` (0 unless the
    /// schedule delays its channel at its send tick).
    #[serde(skip_serializing_if = "is_zero")]
    pub delay: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl Message {
    /// The tick a delivered message arrives at (possibly after the run's last tick).
    pub fn arrival(&self) -> u64 {
        self.send_tick + 1 + self.delay
    }
}

/// Serialises a tuple as an array of plain values (serde's `rc` feature is not enabled).
fn serialize_tuple<S: serde::Serializer>(tuple: &Tuple, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(tuple.iter())
}

/// Work counters, for benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Rule firings (every binding of a rule body that produced a head, every kind of rule).
    pub rule_firings: u64,
    /// Facts new at their tick that a deductive rule derived.
    pub facts_derived: u64,
    /// Facts held, summed over ticks (base and derived).
    pub facts_held: u64,
}

/// The facts of one tick.
#[derive(Clone, Debug, Default)]
pub struct TickFacts {
    pub tick: u64,
    /// By [`RelId`]: the facts of each recorded relation in id order; empty for relations
    /// not recorded.
    pub relations: Vec<Vec<Tuple>>,
    /// Fact ids by value, kept when provenance is recorded.
    pub(crate) ids: Option<Vec<FastMap<Tuple, u32>>>,
}

/// Derivations of every fact, by tick, relation and fact id; each list sorted.
#[derive(Clone, Debug, Default)]
pub struct Provenance {
    pub(crate) ticks: Vec<Vec<Vec<Vec<Derivation>>>>,
}

impl Provenance {
    /// Every derivation of `fact`, sorted; empty when the fact does not exist.
    pub fn derivations(&self, fact: FactRef) -> &[Derivation] {
        let Some(index) = fact.tick.checked_sub(1) else {
            return &[];
        };
        usize::try_from(index)
            .ok()
            .and_then(|index| self.ticks.get(index))
            .and_then(|relations| relations.get(fact.rel.index()))
            .and_then(|facts| facts.get(fact.tuple as usize))
            .map_or(&[], Vec::as_slice)
    }
}

/// The result of [`crate::Evaluator::run`].
#[derive(Clone, Debug)]
pub struct Run {
    /// Ticks evaluated: `1..=ticks_run`.
    pub ticks_run: u64,
    /// The run stopped at `max_ticks` before reaching quiescence (only without `eot`).
    pub capped: bool,
    /// The run's nodes, sorted.
    pub nodes: Vec<Value>,
    /// One entry per tick, `ticks[t - 1]` for tick t.
    pub ticks: Vec<TickFacts>,
    /// Every message sent, sorted by send tick, sender, destination, relation, values.
    pub messages: Vec<Message>,
    pub provenance: Option<Provenance>,
    pub stats: Stats,
}

impl Run {
    fn tick(&self, tick: u64) -> Option<&TickFacts> {
        let index = usize::try_from(tick.checked_sub(1)?).ok()?;
        self.ticks.get(index)
    }

    /// The recorded facts of `rel` at `tick`, in id order (empty when not recorded).
    pub fn facts(&self, tick: u64, rel: RelId) -> &[Tuple] {
        self.tick(tick)
            .and_then(|facts| facts.relations.get(rel.index()))
            .map_or(&[], Vec::as_slice)
    }

    /// The values of a fact.
    pub fn fact(&self, fact: FactRef) -> Option<&Tuple> {
        self.facts(fact.tick, fact.rel).get(fact.tuple as usize)
    }

    /// The fact `rel(values)` at `tick`, if it holds (and its relation was recorded).
    pub fn find(&self, tick: u64, rel: RelId, values: &[Value]) -> Option<FactRef> {
        let facts = self.tick(tick)?;
        let id = match &facts.ids {
            Some(ids) => ids.get(rel.index())?.get(values).copied()?,
            None => {
                let list = facts.relations.get(rel.index())?;
                let position = list.iter().position(|tuple| tuple.as_ref() == values)?;
                u32::try_from(position).ok()?
            }
        };
        Some(FactRef {
            tick,
            rel,
            tuple: id,
        })
    }

    /// Whether `rel(values)` holds at `tick` (among recorded relations).
    pub fn holds(&self, tick: u64, rel: RelId, values: &[Value]) -> bool {
        self.find(tick, rel, values).is_some()
    }

    /// The derivations of a fact; empty without provenance.
    pub fn derivations(&self, fact: FactRef) -> &[Derivation] {
        self.provenance
            .as_ref()
            .map_or(&[], |provenance| provenance.derivations(fact))
    }
}

impl Derivation {
    /// The same derivation with every fact it names renamed by `rename`.
    fn renamed(self, rename: &impl Fn(FactRef) -> FactRef) -> Derivation {
        let firing = |firing: RuleFiring| RuleFiring {
            rule: firing.rule,
            body: firing.body.into_iter().map(rename).collect(),
            absent: firing.absent,
        };
        match self {
            Derivation::Crash | Derivation::Given { .. } => self,
            Derivation::Persisted { from } => Derivation::Persisted { from: rename(from) },
            Derivation::Rule(rule) => Derivation::Rule(firing(rule)),
            Derivation::Aggregate(rule) => {
                // A group's facts are a set, kept sorted.
                let mut renamed = firing(rule);
                renamed.body.sort();
                renamed.body.dedup();
                Derivation::Aggregate(renamed)
            }
            Derivation::Next(rule) => Derivation::Next(firing(rule)),
            Derivation::Message {
                sender,
                send_tick,
                firing: rule,
            } => Derivation::Message {
                sender,
                send_tick,
                firing: firing(rule),
            },
        }
    }
}

/// What [`Run::assemble`] builds a run from: the parts an engine other than the evaluator
/// (the timely runtime) computes.
#[derive(Clone, Debug, Default)]
pub struct RunParts {
    pub ticks_run: u64,
    pub capped: bool,
    /// The run's nodes, in any order.
    pub nodes: Vec<Value>,
    /// `facts[t - 1][rel]`: the distinct facts of `rel` at tick t, in any order.
    pub facts: Vec<Vec<Vec<Tuple>>>,
    /// Every message sent, in any order.
    pub messages: Vec<Message>,
    /// Record provenance: [`Run::set_derivations`] then fills it.
    pub provenance: bool,
    pub stats: Stats,
}

impl Run {
    /// A run from parts computed elsewhere, in canonical form (see [`Run::into_canonical`]):
    /// each tick's facts of a relation in value order, messages sorted. With provenance,
    /// every fact starts with no derivation; [`Run::set_derivations`] gives them.
    pub fn assemble(parts: RunParts) -> Run {
        let mut nodes = parts.nodes;
        nodes.sort();
        nodes.dedup();
        let mut messages = parts.messages;
        messages.sort();
        messages.dedup();
        let mut ticks = Vec::with_capacity(parts.facts.len());
        let mut derivations = Vec::with_capacity(parts.facts.len());
        for (index, mut relations) in parts.facts.into_iter().enumerate() {
            for list in &mut relations {
                list.sort();
                list.dedup();
            }
            let ids = parts.provenance.then(|| id_maps(&relations));
            if parts.provenance {
                derivations.push(
                    relations
                        .iter()
                        .map(|list| vec![Vec::new(); list.len()])
                        .collect(),
                );
            }
            ticks.push(TickFacts {
                tick: index as u64 + 1,
                relations,
                ids,
            });
        }
        Run {
            ticks_run: parts.ticks_run,
            capped: parts.capped,
            nodes,
            ticks,
            messages,
            provenance: parts
                .provenance
                .then_some(Provenance { ticks: derivations }),
            stats: parts.stats,
        }
    }

    /// Gives `fact` its derivations (sorted, each once); ignored without provenance or for a
    /// fact the run does not hold.
    pub fn set_derivations(&mut self, fact: FactRef, mut derivations: Vec<Derivation>) {
        derivations.sort();
        derivations.dedup();
        let Some(provenance) = self.provenance.as_mut() else {
            return;
        };
        let slot = usize::try_from(fact.tick.saturating_sub(1))
            .ok()
            .filter(|_| fact.tick > 0)
            .and_then(|index| provenance.ticks.get_mut(index))
            .and_then(|relations| relations.get_mut(fact.rel.index()))
            .and_then(|facts| facts.get_mut(fact.tuple as usize));
        if let Some(slot) = slot {
            *slot = derivations;
        }
    }

    /// The same run in canonical form: every tick's facts of each relation in value order
    /// (ids renumbered accordingly, in every derivation too) and every derivation list
    /// sorted. Two engines that compute the same run give equal canonical runs, so that what
    /// is read from a run (lineage, verdicts, derivation trees) does not depend on the order
    /// in which an engine found its facts.
    #[must_use]
    pub fn into_canonical(mut self) -> Run {
        // renames[t - 1][rel][old id] = new id.
        let mut renames: Vec<Vec<Vec<u32>>> = Vec::with_capacity(self.ticks.len());
        for tick in &mut self.ticks {
            let mut per_relation = Vec::with_capacity(tick.relations.len());
            for list in &mut tick.relations {
                let mut order: Vec<u32> = (0..list.len())
                    .map(|id| u32::try_from(id).unwrap_or(u32::MAX))
                    .collect();
                order.sort_by(|left, right| list[*left as usize].cmp(&list[*right as usize]));
                let mut rename = vec![0_u32; list.len()];
                for (new, old) in order.iter().enumerate() {
                    rename[*old as usize] = u32::try_from(new).unwrap_or(u32::MAX);
                }
                let sorted: Vec<Tuple> = order
                    .iter()
                    .map(|old| list[*old as usize].clone())
                    .collect();
                *list = sorted;
                per_relation.push(rename);
            }
            if tick.ids.is_some() {
                tick.ids = Some(id_maps(&tick.relations));
            }
            renames.push(per_relation);
        }
        let rename = |fact: FactRef| -> FactRef {
            let renamed = usize::try_from(fact.tick.saturating_sub(1))
                .ok()
                .filter(|_| fact.tick > 0)
                .and_then(|index| renames.get(index))
                .and_then(|relations| relations.get(fact.rel.index()))
                .and_then(|ids| ids.get(fact.tuple as usize));
            FactRef {
                tuple: renamed.copied().unwrap_or(fact.tuple),
                ..fact
            }
        };
        if let Some(provenance) = self.provenance.as_mut() {
            for (index, relations) in provenance.ticks.iter_mut().enumerate() {
                for (rel, facts) in relations.iter_mut().enumerate() {
                    let ids = renames.get(index).and_then(|relations| relations.get(rel));
                    let mut renamed: Vec<Vec<Derivation>> = vec![Vec::new(); facts.len()];
                    for (old, list) in std::mem::take(facts).into_iter().enumerate() {
                        let new = ids
                            .and_then(|ids| ids.get(old))
                            .map_or(old, |new| *new as usize);
                        let mut list: Vec<Derivation> =
                            list.into_iter().map(|d| d.renamed(&rename)).collect();
                        list.sort();
                        list.dedup();
                        if let Some(slot) = renamed.get_mut(new) {
                            *slot = list;
                        }
                    }
                    *facts = renamed;
                }
            }
        }
        self
    }
}

/// Fact ids by value, for [`Run::find`].
fn id_maps(relations: &[Vec<Tuple>]) -> Vec<FastMap<Tuple, u32>> {
    relations
        .iter()
        .map(|list| {
            list.iter()
                .enumerate()
                .map(|(id, tuple)| (tuple.clone(), u32::try_from(id).unwrap_or(u32::MAX)))
                .collect()
        })
        .collect()
}
