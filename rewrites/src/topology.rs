//! The nodes a program's facts name, by role: what the passes need to generate routing and
//! sibling facts for new nodes.

use std::collections::{BTreeMap, BTreeSet};

use graft_compiler::ir::Value;

use crate::FactsFile;
use crate::draft::Draft;

/// Role name (or `node` for untyped columns) -> the node names in columns of that type, over
/// the program's facts and every facts file, without the names of partitioned nodes (see
/// [`is_partitioned`]).
pub fn nodes_by_type(draft: &Draft, files: &[FactsFile]) -> BTreeMap<String, BTreeSet<String>> {
    let mut nodes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let facts = draft.facts.iter().chain(
        files
            .iter()
            .flat_map(|file| file.facts.iter().chain(&file.generated)),
    );
    for fact in facts {
        let Some(relation) = draft.relation(&fact.rel) else {
            continue;
        };
        for (column, value) in relation.columns.iter().zip(&fact.values) {
            let is_node = column.ty == "node" || draft.roles.contains(&column.ty);
            if let (true, Value::Str(name)) = (is_node, value) {
                nodes
                    .entry(column.ty.clone())
                    .or_default()
                    .insert(name.to_string());
            }
        }
    }
    for names in nodes.values_mut() {
        let retired: Vec<String> = names
            .iter()
            .filter(|name| is_partitioned(name, names))
            .cloned()
            .collect();
        for name in retired {
            names.remove(&name);
        }
    }
    nodes
}

/// Whether `name` was partitioned: the same type has nodes `name/0`, `name/1`, .. (a
/// partition's names), and `name` is kept only to address them (routing tables map it to its
/// partitions). Such a name is not a node: no pass generates facts for it.
fn is_partitioned(name: &str, names: &BTreeSet<String>) -> bool {
    let prefix = format!("{name}/");
    names
        .range(prefix.clone()..)
        .take_while(|other| other.starts_with(&prefix))
        .any(|other| {
            let rest = &other[prefix.len()..];
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
        })
}

/// The nodes of `role`.
pub fn nodes_of(draft: &Draft, files: &[FactsFile], role: &str) -> BTreeSet<String> {
    nodes_by_type(draft, files).remove(role).unwrap_or_default()
}

/// Every node named anywhere.
pub fn all_nodes(draft: &Draft, files: &[FactsFile]) -> BTreeSet<String> {
    nodes_by_type(draft, files)
        .into_values()
        .flatten()
        .collect()
}
