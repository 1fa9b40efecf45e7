//! Rendering a run's facts: the text form `rel(args)@tick;` (one fact per line) and a
//! serialisable list for JSON, both sorted by tick, relation name, then values.

use std::collections::BTreeSet;

use graft_compiler::ir::{self, RelId, Value};
use serde::Serialize;

use crate::result::Run;

/// Which relations a rendering shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ShowSet {
    /// The relations declared `output`; without any, every relation but the built-in `crash`.
    #[default]
    Default,
    /// Every relation, `crash` included.
    All,
    /// Exactly these relations.
    Relations(BTreeSet<RelId>),
}

impl ShowSet {
    /// The relations shown for `program`.
    pub fn relations(&self, program: &ir::Program) -> BTreeSet<RelId> {
        match self {
            ShowSet::All => program
                .relations
                .iter()
                .map(|relation| relation.id)
                .collect(),
            ShowSet::Relations(relations) => relations.clone(),
            ShowSet::Default => {
                let outputs: BTreeSet<RelId> = program
                    .relations
                    .iter()
                    .filter(|relation| relation.output)
                    .map(|relation| relation.id)
                    .collect();
                if outputs.is_empty() {
                    program
                        .relations
                        .iter()
                        .filter(|relation| relation.origin != ir::RelationOrigin::Builtin)
                        .map(|relation| relation.id)
                        .collect()
                } else {
                    outputs
                }
            }
        }
    }
}

/// One fact as shown: serialises to `{"relation": "...", "tick": N, "values": [...]}`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ShownFact {
    pub tick: u64,
    pub relation: String,
    pub values: Vec<Value>,
}

/// The shown facts of a run (of the relations it recorded), sorted by tick, relation name,
/// then values.
pub fn shown_facts(program: &ir::Program, run: &Run, show: &ShowSet) -> Vec<ShownFact> {
    let relations = show.relations(program);
    let mut facts = Vec::new();
    for tick_facts in &run.ticks {
        for rel in &relations {
            let Some(relation) = program.relations.get(rel.index()) else {
                continue;
            };
            for tuple in run.facts(tick_facts.tick, *rel) {
                facts.push(ShownFact {
                    tick: tick_facts.tick,
                    relation: relation.name.clone(),
                    values: tuple.to_vec(),
                });
            }
        }
    }
    facts.sort();
    facts
}

/// The shown facts as text, one `rel(args)@tick;` line each.
pub fn render_text(program: &ir::Program, run: &Run, show: &ShowSet) -> String {
    let mut out = String::new();
    for fact in shown_facts(program, run, show) {
        out.push_str(&render_fact(&fact.relation, &fact.values, fact.tick));
        out.push('\n');
    }
    out
}

/// `rel(v1, v2)@tick;`
pub fn render_fact(relation: &str, values: &[Value], tick: u64) -> String {
    let arguments: Vec<String> = values.iter().map(ToString::to_string).collect();
    format!("{relation}({})@{tick};", arguments.join(", "))
}
