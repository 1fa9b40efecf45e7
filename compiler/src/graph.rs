//! The dependency graph between relations, and stratification.
//!
//! One node per relation (node index = [`RelId`]); one edge per body atom of each rule, from
//! the body relation to the head relation, labelled with its polarity (positive, negated, or
//! aggregated when the head aggregates) and its time (same tick, `@next`, `@async`). Strata
//! come from the strongly connected components of the same-tick subgraph: a cycle through a
//! negated or aggregated same-tick edge cannot be stratified (E0601, E0602); cycles through
//! `@next` and `@async` are fine (Dedalus's temporal stratification).

use std::collections::VecDeque;

use graft_language::diagnostic::Diagnostic;
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;
use serde::Serialize;

use crate::codes;
use crate::ir::{self, RelId, RuleId, RuleKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Polarity {
    Positive,
    /// Under `notin`.
    Negated,
    /// A positive atom of a rule whose head aggregates.
    Aggregated,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeTime {
    /// A deductive rule: the head holds in the same tick.
    SameTick,
    /// An `@next` or `delete` rule.
    Next,
    /// An `@async` rule.
    Async,
}

/// One body atom of one rule: `from` is read, `to` is derived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DepEdge {
    pub from: RelId,
    pub to: RelId,
    pub rule: RuleId,
    /// The atom's index in the rule's body.
    pub literal: usize,
    pub polarity: Polarity,
    pub time: EdgeTime,
    /// The rule is a `delete` (retraction) rule.
    pub delete: bool,
}

impl DepEdge {
    /// Negated, aggregated or a retraction: the head can lose facts when the body grows.
    pub fn is_non_monotone(&self) -> bool {
        self.polarity != Polarity::Positive || self.delete
    }
}

/// The dependency graph. Node `i` is relation `RelId(i)`.
#[derive(Clone, Debug, Default)]
pub struct DependencyGraph {
    pub graph: DiGraph<RelId, DepEdge>,
}

impl DependencyGraph {
    pub fn build(program: &ir::Program) -> DependencyGraph {
        let mut graph = DiGraph::with_capacity(program.relations.len(), program.rules.len() * 2);
        for relation in &program.relations {
            graph.add_node(relation.id);
        }
        for rule in &program.rules {
            let time = match rule.kind {
                RuleKind::Deductive => EdgeTime::SameTick,
                RuleKind::Next | RuleKind::Delete => EdgeTime::Next,
                RuleKind::Async => EdgeTime::Async,
            };
            for (literal, atom) in rule.atoms() {
                let polarity = if atom.negated {
                    Polarity::Negated
                } else if rule.head.aggregate.is_some() {
                    Polarity::Aggregated
                } else {
                    Polarity::Positive
                };
                graph.add_edge(
                    NodeIndex::new(atom.rel.index()),
                    NodeIndex::new(rule.head.rel.index()),
                    DepEdge {
                        from: atom.rel,
                        to: rule.head.rel,
                        rule: rule.id,
                        literal,
                        polarity,
                        time,
                        delete: rule.kind == RuleKind::Delete,
                    },
                );
            }
        }
        DependencyGraph { graph }
    }

    /// Every edge, in insertion order (rules in order, atoms in body order).
    pub fn edges(&self) -> impl Iterator<Item = &DepEdge> {
        self.graph.edge_weights()
    }

    /// The edges leaving `rel`.
    pub fn outgoing(&self, rel: RelId) -> impl Iterator<Item = &DepEdge> {
        self.graph
            .edges(NodeIndex::new(rel.index()))
            .map(|edge| edge.weight())
    }
}

/// The evaluation order within a tick.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Strata {
    /// Stratum of each relation, by [`RelId`]. Relations of one same-tick cycle share one.
    pub relation: Vec<u32>,
    /// Stratum of each rule, by [`RuleId`]: a deductive rule runs in its head's stratum; an
    /// `@next`, `@async` or `delete` rule reads the final state of the tick, so it gets the
    /// highest stratum among its body relations (it may run once that stratum is done).
    pub rule: Vec<u32>,
    /// Number of strata (at least 1).
    pub count: u32,
}

impl Strata {
    /// Relations grouped by stratum, in id order within each.
    pub fn groups(&self) -> Vec<Vec<RelId>> {
        let mut groups = vec![Vec::new(); self.count as usize];
        for (index, stratum) in self.relation.iter().enumerate() {
            if let Some(group) = groups.get_mut(*stratum as usize) {
                group.push(RelId::from_index(index));
            }
        }
        groups
    }
}

/// Computes strata and reports every same-tick cycle through negation or aggregation.
pub fn stratify(program: &ir::Program, graph: &DependencyGraph) -> (Strata, Vec<Diagnostic>) {
    let node_count = program.relations.len();
    let mut same_tick: DiGraph<(), EdgeIndex> =
        DiGraph::with_capacity(node_count, graph.graph.edge_count());
    for _ in 0..node_count {
        same_tick.add_node(());
    }
    for edge in graph.graph.edge_references() {
        if edge.weight().time == EdgeTime::SameTick {
            same_tick.add_edge(edge.source(), edge.target(), edge.id());
        }
    }
    // Tarjan returns components in reverse topological order.
    let mut components = petgraph::algo::tarjan_scc(&same_tick);
    components.reverse();
    let mut component_of = vec![0_usize; node_count];
    for (index, component) in components.iter().enumerate() {
        for node in component {
            component_of[node.index()] = index;
        }
    }
    let mut diagnostics = Vec::new();
    let mut reported = vec![false; components.len()];
    let mut component_stratum = vec![0_u32; components.len()];
    for (index, component) in components.iter().enumerate() {
        let mut stratum = 0;
        for node in component {
            for edge in same_tick.edges_directed(*node, petgraph::Direction::Incoming) {
                let source_component = component_of[edge.source().index()];
                let dep = &graph.graph[*edge.weight()];
                if source_component == index {
                    if dep.is_non_monotone() && !reported[index] {
                        reported[index] = true;
                        diagnostics.push(cycle_diagnostic(
                            program,
                            graph,
                            &same_tick,
                            &component_of,
                            *edge.weight(),
                        ));
                    }
                    continue;
                }
                let step = u32::from(dep.is_non_monotone());
                stratum = stratum.max(component_stratum[source_component] + step);
            }
        }
        component_stratum[index] = stratum;
    }
    let relation: Vec<u32> = (0..node_count)
        .map(|node| component_stratum[component_of[node]])
        .collect();
    let rule = program
        .rules
        .iter()
        .map(|rule| match rule.kind {
            RuleKind::Deductive => relation.get(rule.head.rel.index()).copied().unwrap_or(0),
            RuleKind::Next | RuleKind::Async | RuleKind::Delete => rule
                .atoms()
                .filter_map(|(_, atom)| relation.get(atom.rel.index()).copied())
                .max()
                .unwrap_or(0),
        })
        .collect();
    let count = relation.iter().copied().max().map_or(1, |max| max + 1);
    // Report in source order of the offending literal, whatever the component order was.
    diagnostics.sort_by_key(|diagnostic| diagnostic.primary.span);
    (
        Strata {
            relation,
            rule,
            count,
        },
        diagnostics,
    )
}

/// The diagnostic for a same-tick cycle through the non-monotone edge `bad`: the cycle is the
/// edge followed by a shortest same-tick path from its head back to its body relation.
fn cycle_diagnostic(
    program: &ir::Program,
    graph: &DependencyGraph,
    same_tick: &DiGraph<(), EdgeIndex>,
    component_of: &[usize],
    bad: EdgeIndex,
) -> Diagnostic {
    let bad_edge = graph.graph[bad];
    let component = component_of[bad_edge.from.index()];
    // Breadth-first search from the head back to the body relation, inside the component.
    let start = NodeIndex::new(bad_edge.to.index());
    let goal = NodeIndex::new(bad_edge.from.index());
    let mut previous: Vec<Option<EdgeIndex>> = vec![None; same_tick.node_count()];
    let mut seen = vec![false; same_tick.node_count()];
    seen[start.index()] = true;
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        if node == goal {
            break;
        }
        for edge in same_tick.edges(node) {
            let target = edge.target();
            if component_of[target.index()] == component && !seen[target.index()] {
                seen[target.index()] = true;
                previous[target.index()] = Some(edge.id());
                queue.push_back(target);
            }
        }
    }
    let mut path = vec![bad];
    let mut node = goal;
    let mut back = Vec::new();
    while node != start {
        let Some(edge) = previous[node.index()] else {
            break;
        };
        back.push(same_tick[edge]);
        node = match same_tick.edge_endpoints(edge) {
            Some((source, _)) => source,
            None => break,
        };
    }
    back.reverse();
    path.extend(back);

    let name = |rel: RelId| program.relation(rel).name.as_str();
    let mut cycle_text = String::from(name(bad_edge.from));
    for edge in &path {
        cycle_text.push_str(" -> ");
        cycle_text.push_str(name(graph.graph[*edge].to));
    }
    let negation = bad_edge.polarity == crate::graph::Polarity::Negated;
    let (code, through) = if negation {
        (codes::NEGATION_CYCLE, "negation")
    } else {
        (codes::AGGREGATION_CYCLE, "aggregation")
    };
    let rule = program.rule(bad_edge.rule);
    let primary_span = if negation {
        rule.body
            .get(bad_edge.literal)
            .map_or(rule.span, ir::Literal::span)
    } else {
        rule.head
            .aggregate
            .as_ref()
            .map_or(rule.head.span, |aggregate| aggregate.span)
    };
    let mut diagnostic = Diagnostic::error(
        code,
        format!("cycle through {through} within one tick: {cycle_text}"),
        primary_span,
    )
    .with_primary_message(format!(
        "`{}` depends on {} `{}` in the same tick",
        name(bad_edge.to),
        if negation {
            "the absence of"
        } else {
            "an aggregate over"
        },
        name(bad_edge.from)
    ));
    for edge in path.iter().skip(1) {
        let dep = graph.graph[*edge];
        let rule = program.rule(dep.rule);
        let span = rule
            .body
            .get(dep.literal)
            .map_or(rule.span, ir::Literal::span);
        diagnostic = diagnostic.with_label(
            span,
            format!("`{}` depends on `{}` here", name(dep.to), name(dep.from)),
        );
    }
    diagnostic
        .with_note("within a tick, a relation cannot depend on its own absence or on an aggregate over itself")
        .with_help("break the cycle across ticks: make one rule in the cycle `@next` (or `@async`), or remove the negation or aggregation from the cycle")
}
