//! Bloom-style analyses over the dependency graph: persistence, CALM labels of input-to-output
//! paths, and points of order.
//!
//! - **Persistence.** A relation persists if it is a declared `table`, or if a Dedalus
//!   persistence rule `p(X..)@next :- p(X..), [notin guard(..), ...];` carries it forward.
//! - **Path labels** (Bud's `budlabel`): every path from an input interface to an output
//!   interface gets a label: `Bot` (monotone, order-insensitive), `A` (passes an `@async`
//!   edge: non-deterministic order), `N` (passes a non-monotone edge: negation, aggregation or
//!   retraction), `D` (a non-monotone edge *downstream* of an `@async` edge: non-deterministic
//!   contents). `D` absorbs everything; an async edge after a non-monotone one leaves `N`.
//!   For each input/output pair the analysis reports the set of labels over all paths.
//! - **Points of order** (CALM): a non-monotone operator (a `notin`, an aggregate, a `delete`)
//!   in a rule that reads a relation reachable from an `@async` edge. That is where
//!   coordination or sealing is needed for the outcome not to depend on message order.
//!
//! Interfaces: inputs are the relations declared `input` (and `crash`, when used); a program
//! without `input` declarations (plain Dedalus) uses its EDB, the relations no rule derives.
//! Outputs are those declared `output`; without any, the derived relations no rule reads,
//! plus Molly's `pre` and `post`.

use std::collections::VecDeque;

use serde::Serialize;

use crate::graph::{DepEdge, DependencyGraph, EdgeTime, Strata};
use crate::ir::{self, Literal, RelId, RuleId, RuleKind, Term};

/// Bloom's CALM labels for a dataflow path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum CalmLabel {
    /// Monotone, order-insensitive, retraction-free.
    Bot,
    /// Asynchronous: non-deterministic output order.
    A,
    /// Non-monotone: contents sensitive to input order.
    N,
    /// Diffluent: non-deterministic contents.
    D,
}

impl CalmLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            CalmLabel::Bot => "Bot",
            CalmLabel::A => "A",
            CalmLabel::N => "N",
            CalmLabel::D => "D",
        }
    }

    /// `Bot` and `A` paths are monotone (confluent under CALM).
    pub fn is_monotone(self) -> bool {
        matches!(self, CalmLabel::Bot | CalmLabel::A)
    }
}

/// The labels of every path from one input to one output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PathLabels {
    pub input: RelId,
    pub output: RelId,
    /// Sorted, without duplicates.
    pub labels: Vec<CalmLabel>,
}

impl PathLabels {
    /// Every path from the input to the output is monotone.
    pub fn is_monotone(&self) -> bool {
        self.labels.iter().all(|label| label.is_monotone())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderKind {
    Negation,
    Aggregation,
    Deletion,
}

/// A non-monotone operator downstream of an `@async` edge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PointOfOrder {
    pub rule: RuleId,
    pub kind: OrderKind,
    /// The negated atom's index in the body, for a negation.
    pub literal: Option<usize>,
    /// The negated relation, or the head for an aggregation or deletion.
    pub relation: RelId,
    /// The nearest relations written by `@async` rules upstream of this operator (reaching
    /// its body without crossing another `@async` edge), sorted.
    pub channels: Vec<RelId>,
    pub span: graft_language::span::Span,
}

/// How a relation persists across ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PersistenceKind {
    /// A declared `table`.
    Table,
    /// Carried forward by Dedalus persistence rules.
    Dedalus,
    /// A `channel`: lives for the tick it arrives at.
    Channel,
    /// Lives for one tick.
    Scratch,
}

/// Everything the analyses found, in a serialisable form (the graph itself is skipped).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Analysis {
    #[serde(skip)]
    pub graph: DependencyGraph,
    pub strata: Strata,
    /// Persistence of each relation, by [`RelId`].
    pub persistence: Vec<PersistenceKind>,
    /// The interfaces the path labels are computed between.
    pub inputs: Vec<RelId>,
    pub outputs: Vec<RelId>,
    /// Labels for each input/output pair connected by some path, sorted by (input, output).
    pub paths: Vec<PathLabels>,
    /// Sorted by (rule, literal).
    pub points_of_order: Vec<PointOfOrder>,
    /// Relations reachable from an `@async` edge (their contents depend on message timing).
    pub async_downstream: Vec<RelId>,
}

/// The names of Molly's specification relations: at the end of time every `pre` fact must
/// have a matching `post` fact.
pub const SPECIFICATION_ROOTS: [&str; 2] = ["pre", "post"];

/// Which relations belong to the specification rather than to the protocol, by [`RelId`]:
/// `pre`, `post`, and every derived relation that feeds only specification relations
/// (Molly's `missing_log` helpers).
///
/// Specifications observe the whole system at once, so rules deriving these relations are
/// exempt from locality: their bodies may read several nodes, and their heads need not be at
/// the body's location. The protocol never reads them, so this does not change what it does.
pub fn specification_relations(program: &ir::Program) -> Vec<bool> {
    let count = program.relations.len();
    let mut spec = vec![false; count];
    let mut derived = vec![false; count];
    // readers[r]: the heads of rules that read r.
    let mut readers: Vec<Vec<RelId>> = vec![Vec::new(); count];
    for rule in &program.rules {
        if let Some(slot) = derived.get_mut(rule.head.rel.index()) {
            *slot = true;
        }
        for (_, atom) in rule.atoms() {
            if let Some(list) = readers.get_mut(atom.rel.index())
                && !list.contains(&rule.head.rel)
            {
                list.push(rule.head.rel);
            }
        }
    }
    for relation in &program.relations {
        if SPECIFICATION_ROOTS.contains(&relation.name.as_str()) {
            spec[relation.id.index()] = true;
        }
    }
    // Relations read by `never` invariants are observed by the protocol's user, not by the
    // specification alone; they stay protocol relations unless they qualify below.
    loop {
        let mut changed = false;
        for relation in &program.relations {
            let index = relation.id.index();
            if spec[index] || !derived[index] || relation.input || relation.output {
                continue;
            }
            let feeds = &readers[index];
            if !feeds.is_empty() && feeds.iter().all(|reader| spec[reader.index()]) {
                spec[index] = true;
                changed = true;
            }
        }
        if !changed {
            return spec;
        }
    }
}

/// Finds Dedalus persistence rules and records them on their relations.
pub(crate) fn detect_persistence_rules(program: &mut ir::Program) {
    let found: Vec<(RelId, RuleId)> = program
        .rules
        .iter()
        .filter(|rule| is_persistence_rule(rule))
        .map(|rule| (rule.head.rel, rule.id))
        .collect();
    for (rel, rule) in found {
        if let Some(relation) = program.relations.get_mut(rel.index()) {
            relation.persistence_rules.push(rule);
        }
    }
}

/// `p(X1..Xn)@next :- p(X1..Xn), notin g1(..), ...;` with distinct variables.
pub fn is_persistence_rule(rule: &ir::Rule) -> bool {
    if rule.kind != RuleKind::Next || rule.head.aggregate.is_some() {
        return false;
    }
    let mut vars: Vec<_> = Vec::with_capacity(rule.head.args.len());
    for arg in &rule.head.args {
        match arg {
            Term::Var(var) if !vars.contains(var) => vars.push(*var),
            _ => return false,
        }
    }
    let mut carried = false;
    for literal in &rule.body {
        match literal {
            Literal::Atom(atom) if atom.negated => {}
            Literal::Atom(atom)
                if !carried
                    && atom.rel == rule.head.rel
                    && atom.tick.is_none()
                    && atom.args == rule.head.args =>
            {
                carried = true;
            }
            Literal::Atom(_) | Literal::Compare(_) => return false,
        }
    }
    carried
}

/// Runs every analysis. `strata` comes from [`crate::graph::stratify`].
pub(crate) fn analyse(program: &ir::Program, graph: DependencyGraph, strata: Strata) -> Analysis {
    let persistence = program
        .relations
        .iter()
        .map(|relation| match relation.persistence {
            ir::Persistence::Table => PersistenceKind::Table,
            _ if !relation.persistence_rules.is_empty() => PersistenceKind::Dedalus,
            ir::Persistence::Channel => PersistenceKind::Channel,
            ir::Persistence::Scratch => PersistenceKind::Scratch,
        })
        .collect();
    let (inputs, outputs) = interfaces(program, &graph);
    let paths = path_labels(program, &graph, &inputs, &outputs);
    let (points_of_order, async_downstream) = points_of_order(program, &graph);
    Analysis {
        graph,
        strata,
        persistence,
        inputs,
        outputs,
        paths,
        points_of_order,
        async_downstream,
    }
}

fn interfaces(program: &ir::Program, graph: &DependencyGraph) -> (Vec<RelId>, Vec<RelId>) {
    let count = program.relations.len();
    let mut derived = vec![false; count];
    let mut read = vec![false; count];
    for edge in graph.edges() {
        read[edge.from.index()] = true;
    }
    for rule in &program.rules {
        derived[rule.head.rel.index()] = true;
    }
    let resolved = |relation: &&ir::Relation| relation.origin != ir::RelationOrigin::Unknown;
    let mut inputs: Vec<RelId> = program
        .relations
        .iter()
        .filter(resolved)
        .filter(|relation| relation.input)
        .map(|relation| relation.id)
        .collect();
    let declared_inputs = program
        .relations
        .iter()
        .any(|relation| relation.input && relation.is_declared());
    if !declared_inputs {
        inputs = program
            .relations
            .iter()
            .filter(resolved)
            .filter(|relation| !derived[relation.id.index()])
            .map(|relation| relation.id)
            .collect();
    }
    let mut outputs: Vec<RelId> = program
        .relations
        .iter()
        .filter(|relation| relation.output)
        .map(|relation| relation.id)
        .collect();
    if outputs.is_empty() {
        outputs = program
            .relations
            .iter()
            .filter(resolved)
            .filter(|relation| {
                let id = relation.id.index();
                (derived[id] && !read[id]) || relation.name == "pre" || relation.name == "post"
            })
            .map(|relation| relation.id)
            .collect();
    }
    (inputs, outputs)
}

/// The path-label automaton: `NA` is "non-monotone, then async" (shown as `N`), which turns
/// into `D` if another non-monotone edge follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PathState {
    Bot,
    A,
    N,
    NA,
    D,
}

impl PathState {
    const ALL: [PathState; 5] = [
        PathState::Bot,
        PathState::A,
        PathState::N,
        PathState::NA,
        PathState::D,
    ];

    fn index(self) -> usize {
        self as usize
    }

    fn after(self, edge: &DepEdge) -> PathState {
        let mut state = self;
        if edge.is_non_monotone() {
            state = match state {
                PathState::Bot | PathState::N => PathState::N,
                PathState::A | PathState::NA | PathState::D => PathState::D,
            };
        }
        if edge.time == EdgeTime::Async {
            state = match state {
                PathState::Bot | PathState::A => PathState::A,
                PathState::N | PathState::NA => PathState::NA,
                PathState::D => PathState::D,
            };
        }
        state
    }

    fn label(self) -> CalmLabel {
        match self {
            PathState::Bot => CalmLabel::Bot,
            PathState::A => CalmLabel::A,
            PathState::N | PathState::NA => CalmLabel::N,
            PathState::D => CalmLabel::D,
        }
    }
}

fn path_labels(
    program: &ir::Program,
    graph: &DependencyGraph,
    inputs: &[RelId],
    outputs: &[RelId],
) -> Vec<PathLabels> {
    let count = program.relations.len();
    let states = PathState::ALL.len();
    let mut paths = Vec::new();
    for input in inputs {
        // Breadth-first search over (relation, state) pairs; paths of length at least one.
        let mut seen = vec![false; count * states];
        let mut queue = VecDeque::new();
        for edge in graph.outgoing(*input) {
            let state = PathState::Bot.after(edge);
            let key = edge.to.index() * states + state.index();
            if !seen[key] {
                seen[key] = true;
                queue.push_back((edge.to, state));
            }
        }
        while let Some((rel, state)) = queue.pop_front() {
            for edge in graph.outgoing(rel) {
                let next = state.after(edge);
                let key = edge.to.index() * states + next.index();
                if !seen[key] {
                    seen[key] = true;
                    queue.push_back((edge.to, next));
                }
            }
        }
        for output in outputs {
            let mut labels: Vec<CalmLabel> = PathState::ALL
                .iter()
                .filter(|state| seen[output.index() * states + state.index()])
                .map(|state| state.label())
                .collect();
            labels.sort();
            labels.dedup();
            if !labels.is_empty() {
                paths.push(PathLabels {
                    input: *input,
                    output: *output,
                    labels,
                });
            }
        }
    }
    paths
}

fn points_of_order(
    program: &ir::Program,
    graph: &DependencyGraph,
) -> (Vec<PointOfOrder>, Vec<RelId>) {
    let count = program.relations.len();
    // The relations async edges write, and for every relation the *nearest* of them upstream:
    // those reaching it without crossing another async edge. A relation is downstream of some
    // async edge exactly when it has a nearest one, and each search stays inside the region
    // between async edges, so this is linear for programs whose regions are small.
    let mut channels: Vec<RelId> = graph
        .edges()
        .filter(|edge| edge.time == EdgeTime::Async)
        .map(|edge| edge.to)
        .collect();
    channels.sort();
    channels.dedup();
    let mut upstream: Vec<Vec<RelId>> = vec![Vec::new(); count];
    let mut seen = vec![usize::MAX; count];
    for (search, channel) in channels.iter().enumerate() {
        seen[channel.index()] = search;
        let mut queue = VecDeque::from([*channel]);
        while let Some(rel) = queue.pop_front() {
            upstream[rel.index()].push(*channel);
            for edge in graph.outgoing(rel) {
                if edge.time != EdgeTime::Async && seen[edge.to.index()] != search {
                    seen[edge.to.index()] = search;
                    queue.push_back(edge.to);
                }
            }
        }
    }
    let mut points = Vec::new();
    for rule in &program.rules {
        let mut rule_channels: Vec<RelId> = rule
            .atoms()
            .flat_map(|(_, atom)| upstream[atom.rel.index()].iter().copied())
            .collect();
        if rule_channels.is_empty() {
            continue;
        }
        rule_channels.sort();
        rule_channels.dedup();
        for (index, atom) in rule.atoms() {
            if atom.negated {
                points.push(PointOfOrder {
                    rule: rule.id,
                    kind: OrderKind::Negation,
                    literal: Some(index),
                    relation: atom.rel,
                    channels: rule_channels.clone(),
                    span: atom.span,
                });
            }
        }
        if let Some(aggregate) = &rule.head.aggregate {
            points.push(PointOfOrder {
                rule: rule.id,
                kind: OrderKind::Aggregation,
                literal: None,
                relation: rule.head.rel,
                channels: rule_channels.clone(),
                span: aggregate.span,
            });
        }
        if rule.kind == RuleKind::Delete {
            points.push(PointOfOrder {
                rule: rule.id,
                kind: OrderKind::Deletion,
                literal: None,
                relation: rule.head.rel,
                channels: rule_channels,
                span: rule.head.span,
            });
        }
    }
    let async_downstream = (0..count)
        .filter(|index| !upstream[*index].is_empty())
        .map(RelId::from_index)
        .collect();
    (points, async_downstream)
}
