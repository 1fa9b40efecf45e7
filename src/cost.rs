//! The cost model's measuring side: runs a program on a workload with the reference evaluator
//! and counts each node's work ([`graft_rewrites::cost`] holds the counts and the bottleneck),
//! and the before/after table of `graft rewrite --cost` and `graft report`.
//!
//! [`cost_of`] is the one implementation of the model that `graft rewrite --cost`, `graft
//! report`, `graft optimize` and the benchmarks call.

use std::collections::{BTreeMap, BTreeSet};

use graft_compiler::Checked;
use graft_compiler::ir::{self, RelId, Type, Value};
use graft_eval::{Evaluator, Run, RunConfig};
pub use graft_rewrites::cost::{Cost, NodeCost, factor};

/// Runs a program on facts (fault-free, until quiescence) and counts, per node, the facts it
/// (re)derives, the messages it starts sending and receiving and its network exchanges
/// ([`count`]).
pub fn cost_of(checked: &Checked, facts: &[ir::Fact]) -> anyhow::Result<Cost> {
    let evaluator = Evaluator::new(checked)?;
    let run = evaluator.run(&RunConfig::default(), facts)?;
    Ok(count(&checked.program, &run))
}

/// Counts one run the way an incremental engine works through it (see
/// [`graft_rewrites::cost`] for the rule): at each tick and node, a same-tick component of the
/// program is re-derived when the contents of one of its relations, or of a relation its rules
/// read, differ from the previous tick's, and then every fact of its derived relations counts;
/// a message counts at its sender and its receiver when it starts (it was not sent by the same
/// sender at the previous tick).
pub fn count(program: &ir::Program, run: &Run) -> Cost {
    let components = Components::of(program);
    let mut roles: BTreeMap<String, String> = BTreeMap::new();
    let mut nodes: BTreeMap<String, NodeCost> = BTreeMap::new();
    let mut previous: NodeContents<'_> = BTreeMap::new();
    for tick in &run.ticks {
        let current = contents_at(program, run, tick.tick, &mut roles);
        let empty: Vec<Vec<&[Value]>> = vec![Vec::new(); program.relations.len()];
        let names: BTreeSet<&Value> = previous.keys().chain(current.keys()).copied().collect();
        for name in names {
            let now = current.get(name).unwrap_or(&empty);
            let before = previous.get(name).unwrap_or(&empty);
            let changed: Vec<bool> = now.iter().zip(before).map(|(a, b)| a != b).collect();
            let derived = components.rederived(&changed, tick.tick, now);
            let inputs = program
                .relations
                .iter()
                .filter(|relation| relation.input && relation.origin != ir::RelationOrigin::Builtin)
                .map(|relation| now[relation.id.index()].len() as u64)
                .sum::<u64>();
            if derived == 0 && inputs == 0 {
                continue;
            }
            if let Value::Str(name) = name {
                let node = nodes.entry(name.to_string()).or_default();
                node.facts += derived;
                node.inputs += inputs;
            }
        }
        previous = current;
    }
    let mut exchanges: BTreeSet<(String, String, u64)> = BTreeSet::new();
    let mut sent_before: BTreeSet<(&Value, RelId, &[Value])> = BTreeSet::new();
    let mut before_tick = 0;
    for batch in run.messages.chunk_by(|a, b| a.send_tick == b.send_tick) {
        let Some(first) = batch.first() else { continue };
        if first.send_tick != before_tick + 1 {
            sent_before.clear();
        }
        let mut sent_now = BTreeSet::new();
        for message in batch {
            let key = (&message.sender, message.rel, message.tuple.as_ref());
            sent_now.insert(key);
            if sent_before.contains(&key) {
                continue;
            }
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
        sent_before = sent_now;
        before_tick = first.send_tick;
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

/// Per node (its location value), per relation (by [`RelId`] index): the facts at one tick,
/// sorted.
type NodeContents<'run> = BTreeMap<&'run Value, Vec<Vec<&'run [Value]>>>;

/// The facts of every relation at `tick`, by node, sorted; records the role of every value in
/// a role-typed column on the way.
fn contents_at<'run>(
    program: &ir::Program,
    run: &'run Run,
    tick: u64,
    roles: &mut BTreeMap<String, String>,
) -> NodeContents<'run> {
    let mut contents: NodeContents<'run> = BTreeMap::new();
    for relation in &program.relations {
        if relation.origin == ir::RelationOrigin::Builtin {
            continue;
        }
        for tuple in run.facts(tick, relation.id) {
            for (column, value) in relation.columns.iter().zip(tuple.iter()) {
                if let (Type::Role(role), Value::Str(name)) = (column.ty, value)
                    && !roles.contains_key(name.as_ref())
                {
                    roles.insert(name.to_string(), program.type_name(Type::Role(role)));
                }
            }
            if let Some(node) = tuple.first() {
                let relations = contents
                    .entry(node)
                    .or_insert_with(|| vec![Vec::new(); program.relations.len()]);
                relations[relation.id.index()].push(tuple.as_ref());
            }
        }
    }
    for relations in contents.values_mut() {
        for facts in relations {
            facts.sort_unstable();
        }
    }
    contents
}

/// The rules an engine evaluates, by [`ir::RuleId`] index: every `@next`, `@async` and
/// `delete` rule, and the deductive rules whose heads are outputs, tables, or (transitively)
/// read by a needed rule.
fn needed_rules(program: &ir::Program) -> Vec<bool> {
    let mut needed_relation: Vec<bool> = program
        .relations
        .iter()
        .map(|relation| relation.output || relation.persistence == ir::Persistence::Table)
        .collect();
    let mut needed = vec![false; program.rules.len()];
    loop {
        let mut grew = false;
        for (rule, flag) in program.rules.iter().zip(needed.iter_mut()) {
            let head_needed = needed_relation.get(rule.head.rel.index()) == Some(&true);
            if *flag || (rule.kind == ir::RuleKind::Deductive && !head_needed) {
                continue;
            }
            *flag = true;
            grew = true;
            for (_, atom) in rule.atoms() {
                if let Some(relation) = needed_relation.get_mut(atom.rel.index()) {
                    *relation = true;
                }
            }
        }
        if !grew {
            return needed;
        }
    }
}

/// The program's same-tick components (the strongly connected components of the graph from
/// each deductive rule's body relations to its head): the unit an engine re-derives.
///
/// Only needed work counts: an engine derives a relation by its deductive rules only when
/// something needs it — it is an output, a table (state carried to the next tick), or a
/// needed rule reads it, every `@next`, `@async` and `delete` rule being needed (they make
/// the state and the messages). A relation nothing needs (a specification's `pre` and `post`,
/// say) is not derived and costs nothing.
struct Components {
    groups: Vec<Component>,
}

struct Component {
    /// Its relations that some rule (of any kind) derives: the facts counted when it is
    /// re-derived (input relations and relations only given are not derived).
    counted: Vec<usize>,
    /// The relations whose change re-derives it: its own and those its deductive rules read.
    inputs: BTreeSet<usize>,
    /// Ticks at which a pinned read `p@k` of its rules changes (k, and k + 1 where it stops
    /// being the current tick's contents).
    pinned: BTreeSet<u64>,
}

impl Components {
    fn of(program: &ir::Program) -> Components {
        let count = program.relations.len();
        let mut edges: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); count];
        let mut derived = vec![false; count];
        let mut deduced = vec![false; count];
        let mut any_deductive = vec![false; count];
        let needed = needed_rules(program);
        for (rule, needed) in program.rules.iter().zip(&needed) {
            if let Some(flag) = derived.get_mut(rule.head.rel.index()) {
                *flag = true;
            }
            if let (ir::RuleKind::Deductive, Some(flag)) =
                (rule.kind, any_deductive.get_mut(rule.head.rel.index()))
            {
                *flag = true;
            }
            if rule.kind != ir::RuleKind::Deductive || !needed {
                continue;
            }
            if let Some(flag) = deduced.get_mut(rule.head.rel.index()) {
                *flag = true;
            }
            for (_, atom) in rule.atoms() {
                if atom.rel.index() < count && rule.head.rel.index() < count {
                    edges[atom.rel.index()].insert(rule.head.rel.index());
                }
            }
        }
        // Which relations each relation reaches (itself included): two relations share a
        // component when each reaches the other.
        let reach: Vec<Vec<bool>> = (0..count)
            .map(|start| {
                let mut seen = vec![false; count];
                seen[start] = true;
                let mut stack = vec![start];
                while let Some(rel) = stack.pop() {
                    for next in &edges[rel] {
                        if !seen[*next] {
                            seen[*next] = true;
                            stack.push(*next);
                        }
                    }
                }
                seen
            })
            .collect();
        let mut component_of: Vec<Option<usize>> = vec![None; count];
        let mut groups: Vec<Component> = Vec::new();
        for rel in 0..count {
            if component_of[rel].is_some() {
                continue;
            }
            let members: Vec<usize> = (rel..count)
                .filter(|other| reach[rel][*other] && reach[*other][rel])
                .collect();
            for member in &members {
                component_of[*member] = Some(groups.len());
            }
            // A relation some rule derives counts: by needed deductive rules, or with no
            // deductive rule at all (its facts are then what it carries, receives or is
            // given). One whose deductive rules are not needed is not derived.
            let counted = members
                .iter()
                .copied()
                .filter(|member| derived[*member] && (deduced[*member] || !any_deductive[*member]))
                .collect();
            groups.push(Component {
                counted,
                inputs: members.iter().copied().collect(),
                pinned: BTreeSet::new(),
            });
        }
        let rules = program.rules.iter().zip(&needed);
        for (rule, _) in
            rules.filter(|(rule, needed)| **needed && rule.kind == ir::RuleKind::Deductive)
        {
            let Some(Some(component)) = component_of.get(rule.head.rel.index()) else {
                continue;
            };
            let group = &mut groups[*component];
            for (_, atom) in rule.atoms() {
                group.inputs.insert(atom.rel.index());
                if let Some(at) = atom.tick {
                    group.pinned.extend([at, at + 1]);
                }
            }
        }
        groups.retain(|group| !group.counted.is_empty());
        Components { groups }
    }

    /// The facts one node re-derives at `tick`: the contents of every component whose inputs
    /// `changed` since the previous tick (`now`: the node's facts at `tick`).
    fn rederived(&self, changed: &[bool], tick: u64, now: &[Vec<&[Value]>]) -> u64 {
        self.groups
            .iter()
            .filter(|group| {
                group.pinned.contains(&tick)
                    || group
                        .inputs
                        .iter()
                        .any(|rel| changed.get(*rel) == Some(&true))
            })
            .flat_map(|group| &group.counted)
            .map(|rel| now.get(*rel).map_or(0, Vec::len) as u64)
            .sum()
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
