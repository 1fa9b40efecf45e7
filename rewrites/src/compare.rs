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
