//! The summary `graft check` shows: roles, constants, relations with their kind, persistence,
//! columns and stratum, the strata, the persistence analysis, points of order and the CALM
//! labels of input-to-output paths. Serialisable for `--format json`, and rendered as text.

use std::fmt::Write as _;

use serde::Serialize;

use crate::Checked;
use crate::analysis::{CalmLabel, OrderKind, PersistenceKind};
use crate::ir::{self, RelationOrigin};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub roles: Vec<String>,
    pub consts: Vec<SummaryConst>,
    pub relations: Vec<SummaryRelation>,
    pub rules: usize,
    pub facts: usize,
    pub invariants: usize,
    pub requirements: usize,
    /// Relation names per stratum.
    pub strata: Vec<Vec<String>>,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub points_of_order: Vec<SummaryPointOfOrder>,
    pub paths: Vec<SummaryPath>,
    pub errors: usize,
    pub warnings: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SummaryConst {
    pub name: String,
    pub value: Option<ir::Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SummaryRelation {
    pub name: String,
    pub input: bool,
    pub output: bool,
    pub origin: RelationOrigin,
    /// The declared storage: `table`, `scratch` or `channel`.
    pub storage: ir::Persistence,
    /// How it persists across ticks, after the analysis.
    pub persistence: PersistenceKind,
    /// `file:line` of each Dedalus persistence rule.
    pub persisted_by: Vec<String>,
    pub columns: Vec<SummaryColumn>,
    pub key: Option<Vec<String>>,
    pub stratum: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SummaryColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SummaryPointOfOrder {
    /// `file:line` of the operator.
    pub location: String,
    pub rule: u32,
    pub kind: OrderKind,
    /// The negated relation, or the aggregated / retracted head.
    pub relation: String,
    /// The relation the rule derives.
    pub head: String,
    /// Async-written relations upstream.
    pub channels: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SummaryPath {
    pub input: String,
    pub output: String,
    pub labels: Vec<CalmLabel>,
    pub monotone: bool,
}

/// Summarises a checked program (unknown relations are left out).
pub fn summary(checked: &Checked) -> Summary {
    let program = &checked.program;
    let analysis = &checked.analysis;
    let name = |rel: ir::RelId| program.relation(rel).name.clone();
    let relations = program
        .relations
        .iter()
        .filter(|relation| relation.origin != RelationOrigin::Unknown)
        .map(|relation| SummaryRelation {
            name: relation.name.clone(),
            input: relation.input,
            output: relation.output,
            origin: relation.origin,
            storage: relation.persistence,
            persistence: analysis
                .persistence
                .get(relation.id.index())
                .copied()
                .unwrap_or(PersistenceKind::Scratch),
            persisted_by: relation
                .persistence_rules
                .iter()
                .map(|rule| checked.location(program.rule(*rule).span))
                .collect(),
            columns: relation
                .columns
                .iter()
                .map(|column| SummaryColumn {
                    name: column.name.clone(),
                    ty: program.type_name(column.ty),
                })
                .collect(),
            key: relation.key.as_ref().map(|key| {
                key.iter()
                    .filter_map(|index| relation.columns.get(*index).map(|c| c.name.clone()))
                    .collect()
            }),
            stratum: analysis
                .strata
                .relation
                .get(relation.id.index())
                .copied()
                .unwrap_or(0),
        })
        .collect();
    let strata = analysis
        .strata
        .groups()
        .into_iter()
        .map(|group| {
            group
                .into_iter()
                .filter(|rel| program.relation(*rel).origin != RelationOrigin::Unknown)
                .map(name)
                .collect()
        })
        .collect();
    Summary {
        roles: program.roles.iter().map(|role| role.name.clone()).collect(),
        consts: program
            .consts
            .iter()
            .map(|constant| SummaryConst {
                name: constant.name.clone(),
                value: constant.value.clone(),
            })
            .collect(),
        relations,
        rules: program.rules.len(),
        facts: program.facts.len(),
        invariants: program.nevers.len(),
        requirements: program.requires.len(),
        strata,
        inputs: analysis.inputs.iter().map(|rel| name(*rel)).collect(),
        outputs: analysis.outputs.iter().map(|rel| name(*rel)).collect(),
        points_of_order: analysis
            .points_of_order
            .iter()
            .map(|point| SummaryPointOfOrder {
                location: checked.location(point.span),
                rule: point.rule.0,
                kind: point.kind,
                relation: name(point.relation),
                head: name(program.rule(point.rule).head.rel),
                channels: point.channels.iter().map(|rel| name(*rel)).collect(),
            })
            .collect(),
        paths: analysis
            .paths
            .iter()
            .map(|path| SummaryPath {
                input: name(path.input),
                output: name(path.output),
                labels: path.labels.clone(),
                monotone: path.is_monotone(),
            })
            .collect(),
        errors: checked.diagnostics.iter().filter(|d| d.is_error()).count(),
        warnings: checked.diagnostics.iter().filter(|d| !d.is_error()).count(),
    }
}

fn persistence_name(kind: PersistenceKind) -> &'static str {
    match kind {
        PersistenceKind::Table => "table",
        PersistenceKind::Dedalus => "dedalus",
        PersistenceKind::Channel => "channel",
        PersistenceKind::Scratch => "scratch",
    }
}

fn order_name(kind: OrderKind) -> &'static str {
    match kind {
        OrderKind::Negation => "negation",
        OrderKind::Aggregation => "aggregation",
        OrderKind::Deletion => "deletion",
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}

/// The plain-text form `graft check` prints.
pub fn render_summary_text(summary: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "roles: {}", list(&summary.roles));
    let consts: Vec<String> = summary
        .consts
        .iter()
        .map(|constant| match &constant.value {
            Some(value) => format!("{} = {value}", constant.name),
            None => format!("{} = ?", constant.name),
        })
        .collect();
    let _ = writeln!(out, "consts: {}", list(&consts));
    let _ = writeln!(
        out,
        "rules: {}, facts: {}, invariants: {}, requirements: {}",
        summary.rules, summary.facts, summary.invariants, summary.requirements
    );
    let _ = writeln!(out, "relations:");
    for relation in &summary.relations {
        let mut kind = Vec::new();
        if relation.input {
            kind.push("input");
        }
        if relation.output {
            kind.push("output");
        }
        kind.push(match relation.storage {
            ir::Persistence::Table => "table",
            ir::Persistence::Scratch => "scratch",
            ir::Persistence::Channel => "channel",
        });
        if relation.origin == RelationOrigin::Builtin {
            kind.push("builtin");
        } else if relation.origin == RelationOrigin::Inferred {
            kind.push("inferred");
        }
        let columns: Vec<String> = relation
            .columns
            .iter()
            .map(|column| format!("{}: {}", column.name, column.ty))
            .collect();
        let key = relation
            .key
            .as_ref()
            .map(|key| format!(" key({})", key.join(", ")))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}({}){key}  [{}]  stratum {}",
            relation.name,
            columns.join(", "),
            kind.join(" "),
            relation.stratum
        );
    }
    let _ = writeln!(out, "strata:");
    for (index, stratum) in summary.strata.iter().enumerate() {
        let _ = writeln!(out, "  {index}: {}", list(stratum));
    }
    let _ = writeln!(out, "persistence:");
    let mut any_persisted = false;
    for relation in &summary.relations {
        match relation.persistence {
            PersistenceKind::Table => {
                any_persisted = true;
                let _ = writeln!(
                    out,
                    "  {}: {}",
                    relation.name,
                    persistence_name(relation.persistence)
                );
            }
            PersistenceKind::Dedalus => {
                any_persisted = true;
                let _ = writeln!(
                    out,
                    "  {}: dedalus persistence rule at {}",
                    relation.name,
                    relation.persisted_by.join(", ")
                );
            }
            PersistenceKind::Channel | PersistenceKind::Scratch => {}
        }
    }
    if !any_persisted {
        let _ = writeln!(out, "  (nothing persists)");
    }
    let _ = writeln!(out, "points of order:");
    if summary.points_of_order.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    // Two negations of one relation in one rule read the same on a line: print it once.
    let mut printed = std::collections::BTreeSet::new();
    for point in &summary.points_of_order {
        // A negation names what it negates; an aggregation or deletion is about the head.
        let operator = if point.relation == point.head {
            format!(
                "{} in the rule for `{}`",
                order_name(point.kind),
                point.head
            )
        } else {
            format!(
                "{} of `{}` in a rule for `{}`",
                order_name(point.kind),
                point.relation,
                point.head
            )
        };
        let line = format!(
            "  {}: {operator}, downstream of async {}",
            point.location,
            point
                .channels
                .iter()
                .map(|channel| format!("`{channel}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if printed.insert(line.clone()) {
            let _ = writeln!(out, "{line}");
        }
    }
    let _ = writeln!(
        out,
        "paths (inputs: {}; outputs: {}):",
        list(&summary.inputs),
        list(&summary.outputs)
    );
    if summary.paths.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for path in &summary.paths {
        let labels: Vec<&str> = path.labels.iter().map(|label| label.as_str()).collect();
        let _ = writeln!(
            out,
            "  {} -> {}: {}{}",
            path.input,
            path.output,
            labels.join(", "),
            if path.monotone { "  (monotone)" } else { "" }
        );
    }
    out
}
