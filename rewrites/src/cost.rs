//! graft's cost model, as data: the work each node did in one run of a workload, and the
//! bottleneck that bounds throughput.
//!
//! The model is the one `graft rewrite --cost`, `graft report` and `graft optimize` share. A
//! node's *load* is the work it does for the workload: the facts it derives, the messages it
//! sends and the messages it receives, counted over a fault-free run until quiescence the way
//! an incremental engine does that work:
//!
//! - **facts**: within a tick a node derives its relations one same-tick component (a
//!   strongly connected group of relations of the deductive rules) at a time. A component
//!   whose inputs — the facts of its own relations at the start of the tick (carried,
//!   delivered or given) and the relations its rules read — are the same as at the previous
//!   tick derives the same facts again, so an engine keeps them and does no work; one whose
//!   inputs changed is derived again, and every fact of its derived relations counts (a
//!   persisted table counts again only at the ticks its component is re-derived). In a run,
//!   a component's inputs changed exactly when the facts of its relations, or of a relation
//!   its rules read, at that node differ from the previous tick's (or its rules read `p@k`
//!   at k or k + 1).
//! - **messages**: a message costs its sender and its receiver when it starts: a fact the
//!   sender sends to the same destination at consecutive ticks is one message (an engine
//!   sends changes, so a message resent unchanged is no work).
//!
//! At saturation every node processes requests as fast as its own work allows, so the node
//! with the most load (the *bottleneck*) bounds the protocol's throughput, and the ratio of
//! two versions' bottleneck loads on the same workload is their predicted throughput ratio.
//! The run's length in ticks is reported beside it (`per tick` figures) but does not enter the
//! comparison: a rewrite that adds a hop lengthens a small run without slowing a saturated one.
//!
//! Counting a run is the command-line tool's job (it owns the evaluator); this module only
//! holds the counts and what is derived from them, so that the planner in [`crate::search`]
//! stays pure.

use std::collections::BTreeMap;

use serde::Serialize;

/// Work of one node in one run.
#[derive(Default, Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeCost {
    /// The node's role (`node` when no typed column names it).
    pub role: String,
    /// Messages (tuples) the node started sending (a tuple resent unchanged at consecutive
    /// ticks is one message).
    pub messages: u64,
    /// Messages (tuples) delivered to the node, counted when they start.
    pub received: u64,
    /// Distinct (destination, tick) pairs the node started messages to: network exchanges (a
    /// batch of tuples sent together is one exchange).
    pub exchanges: u64,
    /// Facts the node (re)derived: the facts of every same-tick component it derived again
    /// because its inputs changed (input facts excluded).
    pub facts: u64,
    /// Input facts (topology, workload) located at the node, summed over the ticks they hold.
    pub inputs: u64,
}

impl NodeCost {
    /// The node's work: facts derived, messages sent and messages received.
    pub fn load(&self) -> u64 {
        self.facts + self.messages + self.received
    }

    /// Whether the node does anything or holds input: a machine the version needs. Names
    /// that only address other nodes (a partitioned node's old name, used for routing) are
    /// not machines.
    pub fn is_machine(&self) -> bool {
        self.load() > 0 || self.inputs > 0
    }
}

/// Per node (by name), and the run's length.
#[derive(Default, Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cost {
    pub nodes: BTreeMap<String, NodeCost>,
    pub ticks: u64,
}

impl Cost {
    /// The node with the most load; ties go to the first node by name. `None` when no node
    /// does any work.
    pub fn bottleneck(&self) -> Option<(&str, &NodeCost)> {
        let mut best: Option<(&str, &NodeCost)> = None;
        for (name, node) in &self.nodes {
            if node.load() == 0 {
                continue;
            }
            if best.is_none_or(|(_, current)| node.load() > current.load()) {
                best = Some((name.as_str(), node));
            }
        }
        best
    }

    /// The bottleneck's load (0 when nothing works).
    pub fn bottleneck_load(&self) -> u64 {
        self.bottleneck().map_or(0, |(_, node)| node.load())
    }

    /// The machines the version needs: nodes that work or hold input.
    pub fn machines(&self) -> usize {
        self.nodes.values().filter(|node| node.is_machine()).count()
    }

    /// The machines of one role.
    pub fn machines_of(&self, role: &str) -> usize {
        self.nodes
            .values()
            .filter(|node| node.role == role && node.is_machine())
            .count()
    }

    /// Messages (tuples) sent by every node.
    pub fn messages(&self) -> u64 {
        self.nodes.values().map(|node| node.messages).sum()
    }

    /// Network exchanges of every node.
    pub fn exchanges(&self) -> u64 {
        self.nodes.values().map(|node| node.exchanges).sum()
    }

    /// Whether any message was sent: a workload with no traffic gives the model nothing to
    /// balance.
    pub fn has_traffic(&self) -> bool {
        self.messages() > 0
    }

    /// `value` per tick of this run, two decimals.
    pub fn per_tick(&self, value: u64) -> String {
        if self.ticks == 0 {
            return "0".to_owned();
        }
        #[allow(clippy::cast_precision_loss, reason = "counts are far below 2^52")]
        let ratio = value as f64 / self.ticks as f64;
        format!("{ratio:.2}")
    }
}

/// `before / after` as a factor, two decimals (`inf` when `after` is 0).
pub fn factor(before: u64, after: u64) -> String {
    if after == 0 {
        return "inf".to_owned();
    }
    #[allow(clippy::cast_precision_loss, reason = "loads are far below 2^52")]
    let ratio = before as f64 / after as f64;
    format!("{ratio:.2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(role: &str, facts: u64, messages: u64, received: u64, inputs: u64) -> NodeCost {
        NodeCost {
            role: role.to_owned(),
            messages,
            received,
            exchanges: messages,
            facts,
            inputs,
        }
    }

    #[test]
    fn the_bottleneck_is_the_node_with_the_most_work_and_ties_go_to_the_first_name() {
        let mut cost = Cost::default();
        cost.nodes.insert("b".into(), node("r", 5, 3, 2, 0));
        cost.nodes.insert("a".into(), node("r", 4, 4, 2, 0));
        cost.nodes.insert("c".into(), node("s", 1, 0, 0, 0));
        cost.nodes.insert("old".into(), node("r", 0, 0, 0, 0));
        cost.nodes.insert("in".into(), node("s", 0, 0, 0, 3));
        let (name, busiest) = cost.bottleneck().expect("a bottleneck");
        assert_eq!((name, busiest.load()), ("a", 10));
        assert_eq!(cost.machines(), 4, "`old` only addresses others");
        assert_eq!(cost.machines_of("r"), 2);
        assert_eq!(cost.messages(), 7);
        assert!(cost.has_traffic());
        assert_eq!(factor(25, 10), "2.50");
        assert_eq!(factor(1, 0), "inf");
    }
}
