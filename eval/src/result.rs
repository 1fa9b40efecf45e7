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
    /// Delivered at `send_tick + 1` (which may be after the run's last tick).
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
