//! What a run is asked to do: its length, its fault schedule, what to record.

use std::collections::{BTreeMap, BTreeSet};

use graft_compiler::ir::{RelId, Value};
use serde::Serialize;

use crate::result::Fate;

/// The fate of a message sent at `tick` and due at `arrival`, from the crash ticks of its
/// sender and destination and whether an omission of this (different-node) channel is
/// scheduled at `tick`: lost when the sender has crashed by `tick`, else when omitted, else
/// (strict model) when the destination has crashed by `arrival`.
pub(crate) fn decide_fate(
    sender_crash: Option<u64>,
    dest_crash: Option<u64>,
    omitted: bool,
    crash_model: CrashModel,
    tick: u64,
    arrival: u64,
) -> Fate {
    if sender_crash.is_some_and(|crash| crash <= tick) {
        Fate::SenderCrashed
    } else if omitted {
        Fate::Omitted
    } else if crash_model == CrashModel::Strict && dest_crash.is_some_and(|crash| crash <= arrival)
    {
        Fate::ReceiverCrashed
    } else {
        Fate::Delivered
    }
}

/// How crashed nodes behave.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CrashModel {
    /// Molly's model: a node crashed at tick c sends nothing at ticks ≥ c but still derives
    /// facts locally.
    #[default]
    Molly,
    /// A node crashed at tick c holds and derives nothing at ticks ≥ c, and messages to it
    /// from then on are not delivered.
    Strict,
}

/// How deductive rules are evaluated within a tick. Both give the same facts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvalStrategy {
    /// Semi-naive evaluation over precompiled, indexed join plans.
    #[default]
    SemiNaive,
    /// Every rule recomputed over whole relations by nested loops until nothing changes: slow,
    /// simple, the oracle the semi-naive evaluator is tested against.
    Naive,
}

/// Which relations' facts a run keeps for every tick.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub enum Record {
    /// Every relation (including the built-in `crash`).
    #[default]
    All,
    /// Only these relations. Provenance, when enabled, still records every relation.
    Relations(BTreeSet<RelId>),
}

impl Record {
    pub fn includes(&self, rel: RelId) -> bool {
        match self {
            Record::All => true,
            Record::Relations(relations) => relations.contains(&rel),
        }
    }
}

/// The parameters of one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunConfig {
    /// Run ticks `1..=eot`; `None` runs until quiescence or `max_ticks`.
    pub eot: Option<u64>,
    /// The cap on the number of ticks when `eot` is `None` (the CLI's default is 1000).
    pub max_ticks: u64,
    /// Nodes in addition to those named by facts (`--nodes`).
    pub extra_nodes: BTreeSet<String>,
    /// `extra_nodes` is the complete set of nodes (with the crashed ones): values in the
    /// location and node columns of facts are not nodes unless listed (Molly's `-N`).
    pub exact_nodes: bool,
    /// Message omissions: the messages from `.0` to `.1` sent at tick `.2` are lost.
    pub drops: BTreeSet<(String, String, u64)>,
    /// Crashes: node to the tick it crashes at.
    pub crashes: BTreeMap<String, u64>,
    /// Message delays: the messages from `.0` to `.1` sent at tick `.2` arrive the given
    /// number of ticks late (at `.2 + 1 + delay` instead of `.2 + 1`); never between a node
    /// and itself. Empty by default.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub delays: BTreeMap<(String, String, u64), u64>,
    pub crash_model: CrashModel,
    /// Record why-provenance for every fact at every tick.
    pub provenance: bool,
    pub record: Record,
    pub strategy: EvalStrategy,
}

impl Default for RunConfig {
    fn default() -> RunConfig {
        RunConfig {
            eot: None,
            max_ticks: 1000,
            extra_nodes: BTreeSet::new(),
            exact_nodes: false,
            drops: BTreeSet::new(),
            crashes: BTreeMap::new(),
            delays: BTreeMap::new(),
            crash_model: CrashModel::Molly,
            provenance: false,
            record: Record::All,
            strategy: EvalStrategy::SemiNaive,
        }
    }
}

impl RunConfig {
    /// What becomes of a message that `sender` sends to `dest` at `tick` under this
    /// configuration's faults: the one definition every engine uses (`docs/semantics.md`).
    /// Nodes are named by their location values; a value that is not a string is never
    /// crashed and never loses messages by omission.
    pub fn fate(&self, sender: &Value, dest: &Value, tick: u64) -> Fate {
        let crash_of = |node: &Value| {
            node.as_str()
                .and_then(|name| self.crashes.get(name).copied())
        };
        let omitted = match (sender.as_str(), dest.as_str()) {
            (Some(from), Some(to)) => self.drops.contains(&(from.to_owned(), to.to_owned(), tick)),
            _ => false,
        };
        decide_fate(
            crash_of(sender),
            crash_of(dest),
            sender != dest && omitted,
            self.crash_model,
            tick,
            tick + 1 + self.delay(sender, dest, tick),
        )
    }

    /// How many ticks late a message from `sender` to `dest` sent at `tick` arrives: the
    /// scheduled delay of that channel at that tick, or 0 (always 0 between a node and
    /// itself).
    pub fn delay(&self, sender: &Value, dest: &Value, tick: u64) -> u64 {
        if self.delays.is_empty() || sender == dest {
            return 0;
        }
        match (sender.as_str(), dest.as_str()) {
            (Some(from), Some(to)) => self
                .delays
                .get(&(from.to_owned(), to.to_owned(), tick))
                .copied()
                .unwrap_or(0),
            _ => 0,
        }
    }

    /// The last tick at which a scheduled delay changes what arrives: the latest arrival of a
    /// delayed message (0 without delays).
    pub fn last_delayed_arrival(&self) -> u64 {
        self.delays
            .iter()
            .filter(|((from, to, _), by)| from != to && **by > 0)
            .map(|((_, _, tick), by)| tick.saturating_add(1).saturating_add(*by))
            .max()
            .unwrap_or(0)
    }

    /// Whether a node's base facts at `tick` are dropped: in the strict crash model a node
    /// crashed at or before `tick` holds no base facts (given, carried, persisted, delivered,
    /// `crash`); in Molly's model nothing is dropped.
    pub fn drops_base(&self, location: Option<&Value>, tick: u64) -> bool {
        self.crash_model == CrashModel::Strict
            && location
                .and_then(Value::as_str)
                .and_then(|name| self.crashes.get(name))
                .is_some_and(|crash| *crash <= tick)
    }

    /// A fault-free run of ticks `1..=eot`.
    pub fn with_eot(eot: u64) -> RunConfig {
        RunConfig {
            eot: Some(eot),
            ..RunConfig::default()
        }
    }
}
