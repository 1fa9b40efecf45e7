//! `graft graph`: the dependency graph rendered as Graphviz dot or Mermaid, with relations
//! grouped by stratum, edges labelled by kind (`notin`, aggregate, `@next`, `@async`,
//! `delete`), and points of order drawn in red.
//!
//! Parallel edges of the same kind between two relations are drawn once.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::Checked;
use crate::analysis::{OrderKind, PersistenceKind};
use crate::graph::{DepEdge, EdgeTime, Polarity};
use crate::ir::RelId;

/// One drawn edge: endpoints, kind, and whether it feeds a point of order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct DrawnEdge {
    from: RelId,
    to: RelId,
    polarity: Polarity,
    time: EdgeTime,
    delete: bool,
    point_of_order: bool,
}

impl DrawnEdge {
    fn label(&self) -> String {
        let mut parts = Vec::new();
        if self.delete {
            parts.push("delete");
        }
        match self.polarity {
            Polarity::Positive => {}
            Polarity::Negated => parts.push("notin"),
            Polarity::Aggregated => parts.push("aggregate"),
        }
        match self.time {
            EdgeTime::SameTick => {}
            EdgeTime::Next => parts.push("@next"),
            EdgeTime::Async => parts.push("@async"),
        }
        if self.point_of_order {
            parts.push("point of order");
        }
        parts.join(" ")
    }
}

fn drawn_edges(checked: &Checked) -> BTreeSet<DrawnEdge> {
    let points: BTreeSet<(u32, Option<usize>)> = checked
        .analysis
        .points_of_order
        .iter()
        .map(|point| (point.rule.0, point.literal))
        .collect();
    let whole_rule: BTreeSet<u32> = checked
        .analysis
        .points_of_order
        .iter()
        .filter(|point| point.kind != OrderKind::Negation)
        .map(|point| point.rule.0)
        .collect();
    checked
        .analysis
        .graph
        .edges()
        .map(|edge: &DepEdge| DrawnEdge {
            from: edge.from,
            to: edge.to,
            polarity: edge.polarity,
            time: edge.time,
            delete: edge.delete,
            point_of_order: whole_rule.contains(&edge.rule.0)
                || points.contains(&(edge.rule.0, Some(edge.literal))),
        })
        .collect()
}

fn node_note(checked: &Checked, rel: RelId) -> String {
    let relation = checked.program.relation(rel);
    let mut notes = Vec::new();
    if relation.input {
        notes.push("input");
    }
    if relation.output {
        notes.push("output");
    }
    match checked.analysis.persistence.get(rel.index()) {
        Some(PersistenceKind::Table) => notes.push("table"),
        Some(PersistenceKind::Dedalus) => notes.push("persisted"),
        Some(PersistenceKind::Channel) => notes.push("channel"),
        Some(PersistenceKind::Scratch) | None => {}
    }
    notes.join(", ")
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The dependency graph in Graphviz dot.
pub fn graph_dot(checked: &Checked) -> String {
    let mut out = String::new();
    out.push_str("digraph program {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n");
    for (stratum, group) in checked.analysis.strata.groups().iter().enumerate() {
        let _ = writeln!(out, "  subgraph cluster_stratum_{stratum} {{");
        let _ = writeln!(out, "    label=\"stratum {stratum}\";");
        for rel in group {
            let relation = checked.program.relation(*rel);
            let note = node_note(checked, *rel);
            let label = if note.is_empty() {
                escape(&relation.name)
            } else {
                format!("{}\\n{}", escape(&relation.name), escape(&note))
            };
            let _ = writeln!(out, "    r{} [label=\"{label}\"];", rel.0);
        }
        out.push_str("  }\n");
    }
    for edge in drawn_edges(checked) {
        let mut attributes = Vec::new();
        let label = edge.label();
        if !label.is_empty() {
            attributes.push(format!("label=\"{}\"", escape(&label)));
        }
        if edge.polarity == Polarity::Negated {
            attributes.push("arrowhead=odot".to_owned());
        }
        match edge.time {
            EdgeTime::SameTick => {}
            EdgeTime::Next => attributes.push("style=dashed".to_owned()),
            EdgeTime::Async => attributes.push("style=dotted".to_owned()),
        }
        if edge.point_of_order {
            attributes.push("color=red".to_owned());
            attributes.push("penwidth=2".to_owned());
        }
        let attributes = if attributes.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attributes.join(", "))
        };
        let _ = writeln!(out, "  r{} -> r{}{attributes};", edge.from.0, edge.to.0);
    }
    out.push_str("}\n");
    out
}

/// The dependency graph as a Mermaid flowchart.
pub fn graph_mermaid(checked: &Checked) -> String {
    let mut out = String::from("flowchart LR\n");
    for (stratum, group) in checked.analysis.strata.groups().iter().enumerate() {
        let _ = writeln!(out, "  subgraph stratum_{stratum} [\"stratum {stratum}\"]");
        for rel in group {
            let relation = checked.program.relation(*rel);
            let note = node_note(checked, *rel);
            let label = if note.is_empty() {
                relation.name.clone()
            } else {
                format!("{}<br/>{note}", relation.name)
            };
            let _ = writeln!(out, "    r{}[\"{}\"]", rel.0, label.replace('"', "#quot;"));
        }
        out.push_str("  end\n");
    }
    let mut red = Vec::new();
    for (index, edge) in drawn_edges(checked).into_iter().enumerate() {
        let arrow = match edge.time {
            EdgeTime::SameTick | EdgeTime::Next => "-->",
            EdgeTime::Async => "-.->",
        };
        let label = edge.label();
        if label.is_empty() {
            let _ = writeln!(out, "  r{} {arrow} r{}", edge.from.0, edge.to.0);
        } else {
            let _ = writeln!(
                out,
                "  r{} {arrow}|\"{label}\"| r{}",
                edge.from.0, edge.to.0
            );
        }
        if edge.point_of_order {
            red.push(index.to_string());
        }
    }
    if !red.is_empty() {
        let _ = writeln!(
            out,
            "  linkStyle {} stroke:red,stroke-width:3px",
            red.join(",")
        );
    }
    out
}
