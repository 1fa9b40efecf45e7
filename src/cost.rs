//! The cost model's measuring side: runs a program on a workload with the reference evaluator
//! and counts each node's work ([`graft_rewrites::cost`] holds the counts and the bottleneck),
//! and the before/after table of `graft rewrite --cost` and `graft report`.
//!
//! [`cost_of`] is the one implementation of the model that `graft rewrite --cost`, `graft
//! report`, `graft optimize` and the benchmarks call.

use std::collections::{BTreeMap, BTreeSet};

use graft_compiler::Checked;
use graft_compiler::ir::{self, Type, Value};
use graft_eval::{Evaluator, Run, RunConfig};
pub use graft_rewrites::cost::{Cost, NodeCost, factor};

/// Runs a program on facts (fault-free, until quiescence) and counts, per node, the facts it
/// derives, the messages it sends and receives and its network exchanges.
pub fn cost_of(checked: &Checked, facts: &[ir::Fact]) -> anyhow::Result<Cost> {
    let evaluator = Evaluator::new(checked)?;
    let run = evaluator.run(&RunConfig::default(), facts)?;
    Ok(count(&checked.program, &run))
}

/// Counts one run.
pub fn count(program: &ir::Program, run: &Run) -> Cost {
    let mut roles: BTreeMap<String, String> = BTreeMap::new();
    let mut nodes: BTreeMap<String, NodeCost> = BTreeMap::new();
    for tick in &run.ticks {
        for relation in &program.relations {
            if relation.origin == ir::RelationOrigin::Builtin {
                continue;
            }
            for tuple in run.facts(tick.tick, relation.id) {
                for (column, value) in relation.columns.iter().zip(tuple.iter()) {
                    if let (Type::Role(role), Value::Str(name)) = (column.ty, value) {
                        roles
                            .entry(name.to_string())
                            .or_insert_with(|| program.type_name(Type::Role(role)));
                    }
                }
                if let Some(Value::Str(node)) = tuple.first() {
                    let node = nodes.entry(node.to_string()).or_default();
                    if relation.input {
                        node.inputs += 1;
                    } else {
                        node.facts += 1;
                    }
                }
            }
        }
    }
    let mut exchanges: BTreeSet<(String, String, u64)> = BTreeSet::new();
    for message in &run.messages {
        if let Value::Str(sender) = &message.sender {
            nodes.entry(sender.to_string()).or_default().messages += 1;
            exchanges.insert((
                sender.to_string(),
                message.dest.to_string(),
                message.send_tick,
            ));
        }
        if let (true, Value::Str(dest)) = (message.fate.is_delivered(), &message.dest) {
            nodes.entry(dest.to_string()).or_default().received += 1;
        }
    }
    for (sender, _, _) in exchanges {
        nodes.entry(sender).or_default().exchanges += 1;
    }
    for node in &run.nodes {
        if let Value::Str(name) = node {
            nodes.entry(name.to_string()).or_default();
        }
    }
    for (name, cost) in &mut nodes {
        cost.role = roles
            .get(name)
            .cloned()
            .unwrap_or_else(|| "node".to_owned());
    }
    Cost {
        nodes,
        ticks: run.ticks_run,
    }
}

/// The before/after table: per role, per node (new nodes with the node they replace), totals
/// and the bottleneck.
pub fn render_cost(before: &Cost, after: &Cost, node_map: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "cost on the workload: before {} tick(s), after {} tick(s) (until quiescence); load = facts + sent + received\n\n",
        before.ticks, after.ticks
    ));
    out.push_str(
        "per role               nodes  messages  received  exchanges  facts   load  load/tick\n",
    );
    let roles = |cost: &Cost| {
        let mut roles: BTreeMap<String, (u64, NodeCost)> = BTreeMap::new();
        for node in cost.nodes.values().filter(|node| node.is_machine()) {
            let entry = roles.entry(node.role.clone()).or_default();
            entry.0 += 1;
            entry.1.messages += node.messages;
            entry.1.received += node.received;
            entry.1.exchanges += node.exchanges;
            entry.1.facts += node.facts;
        }
        roles
    };
    let (roles_before, roles_after) = (roles(before), roles(after));
    let names: BTreeSet<&String> = roles_before.keys().chain(roles_after.keys()).collect();
    for name in names {
        for (label, roles, cost) in [
            ("before", &roles_before, before),
            ("after", &roles_after, after),
        ] {
            let (nodes, total) = roles.get(name).cloned().unwrap_or_default();
            out.push_str(&format!(
                "{:<22} {nodes:>5}  {:>8}  {:>8}  {:>9}  {:>5}  {:>5}  {:>9}\n",
                format!("{name} ({label})"),
                total.messages,
                total.received,
                total.exchanges,
                total.facts,
                total.load(),
                cost.per_tick(total.load()),
            ));
        }
    }
    out.push_str("\nper node (new nodes with the node they replace; nodes that only address others are left out)\n");
    out.push_str(
        "node                   version  messages  received  exchanges  facts   load  load/tick\n",
    );
    for (label, cost) in [("before", before), ("after", after)] {
        for (name, node) in cost.nodes.iter().filter(|(_, node)| node.is_machine()) {
            let shown = match node_map.get(name) {
                Some(old) if label == "after" => format!("{name} <- {old}"),
                _ => name.clone(),
            };
            out.push_str(&format!(
                "{shown:<22} {label:<7}  {:>8}  {:>8}  {:>9}  {:>5}  {:>5}  {:>9}\n",
                node.messages,
                node.received,
                node.exchanges,
                node.facts,
                node.load(),
                cost.per_tick(node.load()),
            ));
        }
    }
    let total = |cost: &Cost| {
        cost.nodes
            .values()
            .map(|n| (n.messages, n.exchanges, n.facts))
            .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2))
    };
    let (b, a) = (total(before), total(after));
    out.push_str(&format!(
        "\ntotal: messages {} -> {}, exchanges {} -> {}, facts {} -> {}; machines {} -> {}\n",
        b.0,
        a.0,
        b.1,
        a.1,
        b.2,
        a.2,
        before.machines(),
        after.machines(),
    ));
    let describe = |cost: &Cost| match cost.bottleneck() {
        Some((name, node)) => format!("{name} ({}) load {}", node.role, node.load()),
        None => "none (no work)".to_owned(),
    };
    out.push_str(&format!(
        "bottleneck: {} -> {}: predicted throughput {}x\n",
        describe(before),
        describe(after),
        factor(before.bottleneck_load(), after.bottleneck_load()),
    ));
    out
}
