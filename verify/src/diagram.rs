//! Artifacts people read: a Lamport (spacetime) diagram of a run as SVG, and the lineage graph
//! of some facts as DOT and as SVG. Both SVGs are laid out here, by hand, so that no Graphviz
//! installation is needed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use graft_compiler::ir;
use graft_eval::{Derivation, FactRef, Fate, Run};

use crate::faults::FaultSet;
use crate::lineage::node_name;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const COLUMN: i64 = 170;
const ROW: i64 = 60;
const LEFT: i64 = 90;
const TOP: i64 = 70;

/// A Lamport diagram of `run`: a vertical timeline per node (time going down), a dot per tick,
/// every message between distinct nodes as an arrow from its send tick to its delivery tick,
/// labelled by relation; lost messages dashed red and marked `LOST` (or `sender crashed`);
/// crashed nodes marked with a red `CRASHED` box from their crash tick on.
pub fn spacetime_svg(program: &ir::Program, run: &Run, faults: &FaultSet, title: &str) -> String {
    let nodes: Vec<String> = run.nodes.iter().map(node_name).collect();
    let column: BTreeMap<&str, i64> = nodes
        .iter()
        .enumerate()
        .map(|(index, node)| (node.as_str(), LEFT + COLUMN * index as i64))
        .collect();
    let last = run.ticks_run + 1;
    let y = |tick: u64| TOP + ROW * (tick as i64);
    let width = LEFT + COLUMN * nodes.len().max(1) as i64;
    let height = y(last) + 40;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"monospace\" font-size=\"11\">"
    );
    out.push_str(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"black\"/></marker>\
<marker id=\"lost\" viewBox=\"0 0 10 10\" refX=\"5\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\"><path d=\"M 0 0 L 10 10 M 10 0 L 0 10\" stroke=\"red\" stroke-width=\"2\"/></marker></defs>\n",
    );
    let _ = writeln!(
        out,
        "<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n<text x=\"10\" y=\"20\" font-size=\"13\">{}</text>",
        escape(title)
    );
    for tick in 1..=last {
        let label = if tick > run.ticks_run {
            "after EOT".to_string()
        } else {
            format!("t={tick}")
        };
        let _ = writeln!(
            out,
            "<text x=\"8\" y=\"{}\" fill=\"#666\">{label}</text>",
            y(tick) + 4
        );
    }
    for node in &nodes {
        let x = column[node.as_str()];
        let _ = writeln!(
            out,
            "<text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>",
            TOP + 20,
            escape(node)
        );
        let crash = faults.crashes.get(node).copied();
        let alive_until = crash.map_or(last, |tick| tick.min(last));
        let _ = writeln!(
            out,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"black\"/>",
            y(1),
            y(alive_until)
        );
        if let Some(tick) = crash {
            let _ = writeln!(
                out,
                "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"red\" stroke-width=\"3\" stroke-dasharray=\"2,3\"/>",
                y(alive_until),
                y(last)
            );
            let _ = writeln!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"110\" height=\"18\" fill=\"#fdd\" stroke=\"red\"/><text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" fill=\"red\">CRASHED @{tick}</text>",
                x - 55,
                y(tick) - 9,
                y(tick) + 4
            );
        }
        for tick in 1..=run.ticks_run {
            let _ = writeln!(
                out,
                "<circle cx=\"{x}\" cy=\"{}\" r=\"3\" fill=\"black\"/>",
                y(tick)
            );
        }
    }
    // Messages grouped by (tick, sender, destination, fate): one arrow, relations listed.
    let mut arrows: BTreeMap<(u64, String, String, bool, Fate), BTreeSet<String>> = BTreeMap::new();
    for message in &run.messages {
        let sender = node_name(&message.sender);
        let dest = node_name(&message.dest);
        let relation = program.relation(message.rel).name.clone();
        let is_self = sender == dest;
        arrows
            .entry((message.send_tick, sender, dest, is_self, message.fate))
            .or_default()
            .insert(relation);
    }
    for ((tick, sender, dest, is_self, fate), relations) in &arrows {
        let (Some(x1), Some(x2)) = (column.get(sender.as_str()), column.get(dest.as_str())) else {
            continue;
        };
        let (y1, y2) = (y(*tick), y(tick + 1));
        let lost = !fate.is_delivered();
        let mut label = relations.iter().cloned().collect::<Vec<_>>().join(", ");
        match fate {
            Fate::Omitted => label.push_str(" (LOST)"),
            Fate::SenderCrashed => label.push_str(" (LOST: sender crashed)"),
            Fate::ReceiverCrashed => label.push_str(" (LOST: receiver crashed)"),
            Fate::Delivered => {}
        }
        let style = if lost {
            "stroke=\"red\" stroke-dasharray=\"6,4\" marker-end=\"url(#lost)\""
        } else {
            "stroke=\"black\" marker-end=\"url(#arrow)\""
        };
        if *is_self {
            let _ = writeln!(
                out,
                "<path d=\"M {x1} {y1} C {} {y1}, {} {y2}, {x1} {y2}\" fill=\"none\" {style}/><text x=\"{}\" y=\"{}\" fill=\"{}\">{}</text>",
                x1 + 30,
                x1 + 30,
                x1 + 24,
                (y1 + y2) / 2,
                if lost { "red" } else { "#333" },
                escape(&label)
            );
            continue;
        }
        let _ = writeln!(
            out,
            "<line x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\" {style}/>"
        );
        // Label a third of the way along, so that crossing arrows' labels do not coincide.
        let lx = x1 + (x2 - x1) / 3;
        let ly = y1 + (y2 - y1) / 3;
        let _ = writeln!(
            out,
            "<text x=\"{lx}\" y=\"{ly}\" fill=\"{}\" text-anchor=\"middle\">{}</text>",
            if lost { "red" } else { "#333" },
            escape(&label)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// One edge of a lineage graph: `child` supports `parent`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    child: FactRef,
    parent: FactRef,
    label: String,
    message: bool,
    lost: bool,
}

/// The lineage graph of some facts (goals only, as in the LDFI paper's figures): each fact
/// linked to the facts its derivations used, messages dashed; messages that `faults` loses
/// drawn red. Chains of table carries are collapsed. At most `limit` facts are drawn.
pub struct LineageGraph {
    facts: Vec<(FactRef, String)>,
    edges: Vec<Edge>,
    roots: BTreeSet<FactRef>,
    truncated: bool,
}

impl LineageGraph {
    pub fn new(
        program: &ir::Program,
        run: &Run,
        roots: &[FactRef],
        faults: &FaultSet,
        limit: usize,
    ) -> LineageGraph {
        let label = |fact: FactRef| {
            let relation = &program.relation(fact.rel).name;
            match run.fact(fact) {
                Some(tuple) => {
                    let values: Vec<String> = tuple.iter().map(ToString::to_string).collect();
                    format!("{relation}({})@{}", values.join(", "), fact.tick)
                }
                None => format!("{relation}(?)@{}", fact.tick),
            }
        };
        let skip = |mut fact: FactRef| loop {
            match run.derivations(fact) {
                [Derivation::Persisted { from }] => fact = *from,
                _ => return fact,
            }
        };
        let mut seen: BTreeSet<FactRef> = BTreeSet::new();
        let mut order: Vec<FactRef> = Vec::new();
        let mut queue: std::collections::VecDeque<FactRef> = roots.iter().copied().collect();
        let mut edges = BTreeSet::new();
        let mut truncated = false;
        while let Some(fact) = queue.pop_front() {
            if !seen.insert(fact) {
                continue;
            }
            if order.len() >= limit {
                truncated = true;
                continue;
            }
            order.push(fact);
            for derivation in run.derivations(fact) {
                let (children, text, message, lost): (Vec<FactRef>, String, bool, bool) =
                    match derivation {
                        Derivation::Crash | Derivation::Given { .. } => continue,
                        Derivation::Persisted { from } => {
                            (vec![skip(*from)], "carried".to_string(), false, false)
                        }
                        Derivation::Rule(firing) | Derivation::Aggregate(firing) => (
                            firing.body.clone(),
                            format!("rule {}", firing.rule.0),
                            false,
                            false,
                        ),
                        Derivation::Next(firing) => (
                            firing.body.clone(),
                            format!("@next rule {}", firing.rule.0),
                            false,
                            false,
                        ),
                        Derivation::Message {
                            sender,
                            send_tick,
                            firing,
                        } => {
                            let from = node_name(sender);
                            let to = run
                                .fact(fact)
                                .and_then(|tuple| tuple.first())
                                .map(node_name)
                                .unwrap_or_default();
                            let lost = faults
                                .crashes
                                .get(&from)
                                .is_some_and(|tick| *tick <= *send_tick)
                                || faults.drops.iter().any(|drop| {
                                    drop.from == from && drop.to == to && drop.tick == *send_tick
                                });
                            (
                                firing.body.clone(),
                                format!("msg {from}->{to}@{send_tick}"),
                                true,
                                lost,
                            )
                        }
                    };
                for child in children {
                    edges.insert(Edge {
                        child,
                        parent: fact,
                        label: text.clone(),
                        message,
                        lost,
                    });
                    queue.push_back(child);
                }
            }
        }
        let drawn: BTreeSet<FactRef> = order.iter().copied().collect();
        LineageGraph {
            facts: order.iter().map(|fact| (*fact, label(*fact))).collect(),
            edges: edges
                .into_iter()
                .filter(|edge| drawn.contains(&edge.child) && drawn.contains(&edge.parent))
                .collect(),
            roots: roots.iter().copied().collect(),
            truncated,
        }
    }

    fn index(&self) -> BTreeMap<FactRef, usize> {
        self.facts
            .iter()
            .enumerate()
            .map(|(index, (fact, _))| (*fact, index))
            .collect()
    }

    /// The graph in Graphviz DOT (time going up).
    pub fn dot(&self, title: &str) -> String {
        let dot_escape = |text: &str| text.replace('\\', "\\\\").replace('"', "\\\"");
        let mut out = format!(
            "digraph lineage {{\n  label=\"{}\";\n  rankdir=BT;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n",
            dot_escape(title)
        );
        let index = self.index();
        for (id, (fact, label)) in self.facts.iter().enumerate() {
            let style = if self.roots.contains(fact) {
                ", penwidth=2"
            } else {
                ""
            };
            let _ = writeln!(out, "  f{id} [label=\"{}\"{style}];", dot_escape(label));
        }
        for edge in &self.edges {
            let (Some(child), Some(parent)) = (index.get(&edge.child), index.get(&edge.parent))
            else {
                continue;
            };
            let mut attributes = vec![format!("label=\"{}\"", dot_escape(&edge.label))];
            if edge.message {
                attributes.push("style=dashed".to_string());
            }
            if edge.lost {
                attributes.push("color=red".to_string());
                attributes.push("fontcolor=red".to_string());
            }
            let _ = writeln!(out, "  f{child} -> f{parent} [{}];", attributes.join(", "));
        }
        if self.truncated {
            out.push_str("  truncated [shape=plaintext, label=\"(graph truncated)\"];\n");
        }
        out.push_str("}\n");
        out
    }

    /// The graph as SVG, layered by tick (time going up) and, within a tick, by derivation
    /// depth.
    pub fn svg(&self, title: &str) -> String {
        let index = self.index();
        // Depth within a tick: one more than the deepest same-tick fact it was derived from.
        let mut depth = vec![0_usize; self.facts.len()];
        for _ in 0..self.facts.len() {
            let mut changed = false;
            for edge in &self.edges {
                let (Some(child), Some(parent)) = (index.get(&edge.child), index.get(&edge.parent))
                else {
                    continue;
                };
                if edge.child.tick == edge.parent.tick && depth[*parent] < depth[*child] + 1 {
                    depth[*parent] = (depth[*child] + 1).min(self.facts.len());
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let mut rows: BTreeMap<(u64, usize), Vec<usize>> = BTreeMap::new();
        for (id, (fact, _)) in self.facts.iter().enumerate() {
            rows.entry((fact.tick, depth[id])).or_default().push(id);
        }
        let row_count = rows.len() as i64;
        let mut position: Vec<(i64, i64, i64)> = vec![(0, 0, 0); self.facts.len()];
        let mut width = 400_i64;
        for (row, ids) in rows.values().enumerate() {
            let y = 50 + (row_count - 1 - row as i64) * 70;
            let mut x = 20_i64;
            for id in ids {
                let box_width = 7 * self.facts[*id].1.chars().count() as i64 + 16;
                position[*id] = (x, y, box_width);
                x += box_width + 20;
            }
            width = width.max(x);
        }
        let height = 50 + row_count.max(1) * 70 + 20;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"monospace\" font-size=\"11\">"
        );
        out.push_str("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#333\"/></marker></defs>\n");
        let _ = writeln!(
            out,
            "<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n<text x=\"10\" y=\"20\" font-size=\"13\">{}{}</text>",
            escape(title),
            if self.truncated { " (truncated)" } else { "" }
        );
        for edge in &self.edges {
            let (Some(child), Some(parent)) = (index.get(&edge.child), index.get(&edge.parent))
            else {
                continue;
            };
            let (cx, cy, cw) = position[*child];
            let (px, py, pw) = position[*parent];
            let (x1, y1) = (cx + cw / 2, cy);
            let (x2, y2) = (px + pw / 2, py + 22);
            let colour = if edge.lost { "red" } else { "#333" };
            let dash = if edge.message {
                " stroke-dasharray=\"6,4\""
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "<line x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\" stroke=\"{colour}\"{dash} marker-end=\"url(#arrow)\"><title>{}</title></line>",
                escape(&edge.label)
            );
            if edge.message {
                let _ = writeln!(
                    out,
                    "<text x=\"{}\" y=\"{}\" fill=\"{colour}\" font-size=\"9\">{}{}</text>",
                    (x1 + x2) / 2 + 4,
                    (y1 + y2) / 2,
                    escape(&edge.label),
                    if edge.lost { " LOST" } else { "" }
                );
            }
        }
        for (id, (fact, label)) in self.facts.iter().enumerate() {
            let (x, y, w) = position[id];
            let stroke = if self.roots.contains(fact) { "2" } else { "1" };
            let _ = writeln!(
                out,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"22\" rx=\"10\" fill=\"#eef\" stroke=\"#333\" stroke-width=\"{stroke}\"/><text x=\"{}\" y=\"{}\">{}</text>",
                x + 8,
                y + 15,
                escape(label)
            );
        }
        out.push_str("</svg>\n");
        out
    }
}
