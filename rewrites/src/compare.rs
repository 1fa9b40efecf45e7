//! Comparing a rewritten version's outputs with its source version's, through a
//! justification's node and relation maps (what `graft test` checks).

use std::collections::{BTreeMap, BTreeSet};

use graft_compiler::ir::Value;

use crate::justification::{Comparison, Justification};

/// One output fact of a run: relation name, values, tick.
pub type OutputFact = (String, Vec<Value>, u64);

/// Maps a rewritten version's output facts back to the source version's names: every string
/// value that is a new node becomes the node it replaces, and renamed relations get their
/// source names. The result is sorted and without duplicates.
pub fn map_back(justification: &Justification, facts: &[OutputFact]) -> Vec<OutputFact> {
    let mut mapped: BTreeSet<(u64, String, Vec<Value>)> = BTreeSet::new();
    for (relation, values, tick) in facts {
        let relation = justification
            .relation_map
            .get(relation)
            .cloned()
            .unwrap_or_else(|| relation.clone());
        let values = values
            .iter()
            .map(|value| match value {
                Value::Str(text) => match justification.node_map.get(text.as_ref()) {
                    Some(old) => Value::str(old),
                    None => value.clone(),
                },
                other => other.clone(),
            })
            .collect();
        mapped.insert((*tick, relation, values));
    }
    mapped
        .into_iter()
        .map(|(tick, relation, values)| (relation, values, tick))
        .collect()
}

/// The one rule for which facts feed which version: the source version runs on the
/// rewritten version's facts *mapped back*. A fact of a relation that maps back to a relation
/// a pass added rather than to a source relation (a routing table, a sibling list: facts the
/// rewrite generated) is dropped; every other fact gets its relation's source name (`relation_map`) and every value
/// that is a new node becomes the node it replaces (`node_map`), so copies of one source fact
/// (an input copied to a new role, a fact copied to every partition) become that fact again.
/// The result is sorted and without duplicates. `graft test` and `graft verify --refines` both
/// feed the source with it, so the version's own facts files are all a user needs.
pub fn source_facts(justification: &Justification, facts: &[OutputFact]) -> Vec<OutputFact> {
    let added: BTreeSet<&str> = justification
        .passes
        .iter()
        .flat_map(|pass| pass.added_relations.iter().map(String::as_str))
        .collect();
    // Generated: its relation, mapped back, is one a pass added (not a source relation).
    let kept: Vec<OutputFact> = facts
        .iter()
        .filter(|(relation, _, _)| {
            let source = justification
                .relation_map
                .get(relation)
                .map_or(relation.as_str(), String::as_str);
            !added.contains(source)
        })
        .cloned()
        .collect();
    map_back(justification, &kept)
}

/// What differs between two runs' outputs, as lines `rel(values)@tick;` (or without the tick
/// for an eventual comparison): those only the source has, and those only the new version has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Divergence {
    pub only_source: Vec<String>,
    pub only_new: Vec<String>,
}

impl Divergence {
    pub fn is_empty(&self) -> bool {
        self.only_source.is_empty() && self.only_new.is_empty()
    }
}

fn render(relation: &str, values: &[Value], tick: Option<u64>) -> String {
    let args: Vec<String> = values.iter().map(ToString::to_string).collect();
    match tick {
        Some(tick) => format!("{relation}({})@{tick};", args.join(", ")),
        None => format!("{relation}({});", args.join(", ")),
    }
}

fn difference(source: &BTreeSet<String>, new: &BTreeSet<String>, into: &mut Divergence) {
    into.only_source.extend(source.difference(new).cloned());
    into.only_new.extend(new.difference(source).cloned());
}

/// Compares the source run's outputs with the new run's, mapped back, under `comparison`.
/// `last_tick_*` are the runs' last ticks (for the eventual comparison's final state).
pub fn compare(
    comparison: Comparison,
    source: &[OutputFact],
    new_mapped: &[OutputFact],
    last_tick_source: u64,
    last_tick_new: u64,
) -> Divergence {
    let mut divergence = Divergence::default();
    match comparison {
        Comparison::None => {}
        Comparison::PerTick => {
            let a: BTreeSet<String> = source
                .iter()
                .map(|(r, v, t)| render(r, v, Some(*t)))
                .collect();
            let b: BTreeSet<String> = new_mapped
                .iter()
                .map(|(r, v, t)| render(r, v, Some(*t)))
                .collect();
            difference(&a, &b, &mut divergence);
        }
        Comparison::Eventual => {
            let ever = |facts: &[OutputFact]| -> BTreeSet<String> {
                facts.iter().map(|(r, v, _)| render(r, v, None)).collect()
            };
            let last = |facts: &[OutputFact], tick: u64| -> BTreeSet<String> {
                facts
                    .iter()
                    .filter(|(_, _, t)| *t == tick)
                    .map(|(r, v, _)| format!("{} (at the last tick)", render(r, v, None)))
                    .collect()
            };
            difference(&ever(source), &ever(new_mapped), &mut divergence);
            difference(
                &last(source, last_tick_source),
                &last(new_mapped, last_tick_new),
                &mut divergence,
            );
        }
    }
    divergence
}

/// Facts as lines `rel(values)@tick;`.
pub fn render_facts(facts: &[OutputFact]) -> String {
    facts
        .iter()
        .map(|(relation, values, tick)| format!("{}\n", render(relation, values, Some(*tick))))
        .collect()
}

/// Groups facts by relation, for messages.
pub fn count_by_relation(facts: &[OutputFact]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (relation, _, _) in facts {
        *counts.entry(relation.clone()).or_insert(0) += 1;
    }
    counts
}

/// A message a run sent: its relation and values, sender, destination and send tick.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SentMessage {
    pub relation: String,
    pub values: Vec<Value>,
    pub from: String,
    pub to: String,
    pub tick: u64,
}

impl SentMessage {
    /// `rel(values) from->to@tick`.
    pub fn render(&self) -> String {
        let args: Vec<String> = self.values.iter().map(ToString::to_string).collect();
        format!(
            "{}({}) {}->{}@{}",
            self.relation,
            args.join(", "),
            self.from,
            self.to,
            self.tick
        )
    }
}

/// A channel at one send tick: sender, destination, tick (what `--delay` names).
pub type ChannelTick = (String, String, u64);

/// One schedule of late messages to compare a version with its source under: a channel of
/// the source delayed and the version's channels that carry the same messages delayed by the
/// same amount, or (`source` = `None`) a channel only the version has (a hop a pass added:
/// a forward, a coordinator round, a broadcast between partitions), delayed in the version
/// while the source runs on time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelayCase {
    pub source: Option<ChannelTick>,
    pub version: BTreeSet<ChannelTick>,
    /// Ticks late.
    pub by: u64,
    /// The version's messages that the case makes late, rendered (`rel(values) from->to@tick`).
    pub messages: Vec<String>,
    /// Their relations, in the version's names.
    pub relations: BTreeSet<String>,
}

/// The cap on [`delay_cases`]' schedules (per version and workload); the rest are not run.
pub const DELAY_CASE_CAP: usize = 5_000;

/// A version's message mapped back to the source's names, or `None` when it has no
/// counterpart there: its relation is one a pass added, or it goes between two nodes that
/// replace the same source node (a hop inside what was one node).
pub fn message_back(justification: &Justification, message: &SentMessage) -> Option<SentMessage> {
    let added: BTreeSet<&str> = justification
        .passes
        .iter()
        .flat_map(|pass| pass.added_relations.iter().map(String::as_str))
        .collect();
    let relation = justification
        .relation_map
        .get(&message.relation)
        .cloned()
        .unwrap_or_else(|| message.relation.clone());
    if added.contains(relation.as_str()) {
        return None;
    }
    let node = |name: &str| {
        justification
            .node_map
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_owned())
    };
    let (from, to) = (node(&message.from), node(&message.to));
    if from == to {
        return None;
    }
    let values = map_back(
        justification,
        &[(relation.clone(), message.values.clone(), 0)],
    )
    .into_iter()
    .next()
    .map(|(_, values, _)| values)
    .unwrap_or_default();
    Some(SentMessage {
        relation,
        values,
        from,
        to,
        tick: message.tick,
    })
}

/// The late-message schedules `graft test --max-delay D` and `graft verify --refines
/// --max-delay D` compare a version with its source under, from both versions' fault-free
/// runs (`source` and `version`: every message sent, between distinct nodes):
///
/// 1. every channel and send tick of the source, late by 1..=D; in the version, the
///    channels that carry the *corresponding* messages, late by the same amount. A source
///    message's counterpart is the version's message that maps back to it (relation, values,
///    sender and destination through the justification) sent at the same tick or, for passes
///    that add latency, the first one sent after it. A source channel none of whose messages
///    has a counterpart is skipped.
/// 2. every channel and send tick of the version that carries a message without a
///    counterpart (a hop a pass added), late by 1..=D, with the source on time: the source
///    has no such message, so the version must give the source's outputs without it.
///
/// At most [`DELAY_CASE_CAP`] cases, in this order.
pub fn delay_cases(
    justification: &Justification,
    source: &[SentMessage],
    version: &[SentMessage],
    max_delay: u64,
) -> Vec<DelayCase> {
    let mut cases = Vec::new();
    if max_delay == 0 {
        return cases;
    }
    // The version's messages by what they are in the source (without the tick), sorted by
    // send tick; and the channels of those without a counterpart.
    type Content = (String, Vec<Value>, String, String);
    let mut counterparts: BTreeMap<Content, Vec<&SentMessage>> = BTreeMap::new();
    let mut version_only: BTreeMap<ChannelTick, Vec<&SentMessage>> = BTreeMap::new();
    for message in version.iter().filter(|m| m.from != m.to) {
        match message_back(justification, message) {
            Some(back) => counterparts
                .entry((back.relation, back.values, back.from, back.to))
                .or_default()
                .push(message),
            None => version_only
                .entry((message.from.clone(), message.to.clone(), message.tick))
                .or_default()
                .push(message),
        }
    }
    for list in counterparts.values_mut() {
        list.sort_by_key(|message| message.tick);
    }
    let mut by_channel: BTreeMap<ChannelTick, Vec<&SentMessage>> = BTreeMap::new();
    for message in source.iter().filter(|m| m.from != m.to) {
        by_channel
            .entry((message.from.clone(), message.to.clone(), message.tick))
            .or_default()
            .push(message);
    }
    for (channel, messages) in &by_channel {
        let mut delayed: BTreeSet<ChannelTick> = BTreeSet::new();
        let mut rendered: BTreeSet<String> = BTreeSet::new();
        let mut relations = BTreeSet::new();
        for message in messages {
            let content = (
                message.relation.clone(),
                message.values.clone(),
                message.from.clone(),
                message.to.clone(),
            );
            let Some(candidates) = counterparts.get(&content) else {
                continue;
            };
            let Some(found) = candidates.iter().find(|m| m.tick >= message.tick) else {
                continue;
            };
            delayed.insert((found.from.clone(), found.to.clone(), found.tick));
        }
        if delayed.is_empty() {
            continue;
        }
        // Everything those channels carry at those ticks is late.
        for message in version.iter() {
            if delayed.contains(&(message.from.clone(), message.to.clone(), message.tick)) {
                rendered.insert(message.render());
                relations.insert(message.relation.clone());
            }
        }
        for by in 1..=max_delay {
            cases.push(DelayCase {
                source: Some(channel.clone()),
                version: delayed.clone(),
                by,
                messages: rendered.iter().cloned().collect(),
                relations: relations.clone(),
            });
        }
    }
    for channel in version_only.keys() {
        let on_channel: Vec<&SentMessage> = version
            .iter()
            .filter(|m| m.from == channel.0 && m.to == channel.1 && m.tick == channel.2)
            .collect();
        let rendered: BTreeSet<String> = on_channel.iter().map(|m| m.render()).collect();
        let relations: BTreeSet<String> = on_channel.iter().map(|m| m.relation.clone()).collect();
        for by in 1..=max_delay {
            cases.push(DelayCase {
                source: None,
                version: BTreeSet::from([channel.clone()]),
                by,
                messages: rendered.iter().cloned().collect(),
                relations: relations.clone(),
            });
        }
    }
    cases.truncate(DELAY_CASE_CAP);
    cases
}
