//! Functional dependencies for partitioning (Chu et al.'s partitioning with dependencies, P2).
//!
//! A *dependency* comes from a declared key: in a table of the partitioned role declared
//! `key(c)` (one column) that also has the partition column `by`, and that no rule retracts
//! from, `c` determines `by`, so there is a function `f` with `by = f(c)` at each node. The
//! function never changes while a run goes on: facts of the table persist and, by the key,
//! no second fact with the same `c` can appear. That the key holds is an *assumption* about
//! the program and its workloads (graft's evaluator does not enforce keys): the pass records
//! it in the justification, and `graft test` checks it on every run of the source and the
//! new version.
//!
//! An *image* says that a relation's facts carry a dependency: `rel[to] = f(rel[from])`, with
//! `f` evaluated at the node in column `at` (the location, or a column holding a node, as
//! when a message carries its sender's key). Images are inferred to a least fixpoint:
//! - the dependency's own table has one (`at` = the location);
//! - *inheritance*: a relation has an image when every rule deriving it has one for the head's
//!   columns, i.e. the body equates the head's `to` variable with `f` of its `from` variable at
//!   its `at` variable (variable sharing with a body atom's image; a least fixpoint, so
//!   recursion through the relation itself never assumes what it proves);
//! - *containment*: a relation `s` whose every fact is copied, in the same tick, into a
//!   relation with an image (`h(..) :- s(..);` with nothing else in the body) carries the
//!   image on the copied columns.
//!
//! Within one rule, [`Equalities`] joins terms that must be equal: a variable, a wildcard
//! position, or `f(x)` at node `l` for body variables `x` and `l`.

use std::collections::{BTreeMap, BTreeSet};

use graft_compiler::ir::{self, Persistence, RelId, RuleKind};

use super::Context;

/// `by = f(from)` in `table`, from its declared `key(from)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Dependency {
    pub table: RelId,
    pub from: usize,
    pub to: usize,
}

/// A relation's facts satisfy `rel[to] = f_dep(rel[from])` at the node `rel[at]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Image {
    pub dep: usize,
    pub at: usize,
    pub from: usize,
    pub to: usize,
}

/// A term of a rule that equalities relate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Node {
    Var(ir::VarId),
    /// A wildcard at (body literal index, argument index).
    Wild(usize, usize),
    /// `f_dep(from)` evaluated at node `at` (both variables).
    Image(usize, ir::VarId, ir::VarId),
}

/// Classes of a rule's terms that its body makes equal (a union-find over [`Node`]s).
#[derive(Default)]
pub(super) struct Equalities {
    parent: BTreeMap<Node, Node>,
}

impl Equalities {
    pub fn find(&self, node: Node) -> Node {
        let mut current = node;
        while let Some(next) = self.parent.get(&current) {
            if *next == current {
                break;
            }
            current = *next;
        }
        current
    }

    fn union(&mut self, a: Node, b: Node) {
        self.parent.entry(a).or_insert(a);
        self.parent.entry(b).or_insert(b);
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (low, high) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent.insert(high, low);
        }
    }

    /// Every node known to be in `node`'s class (itself included), sorted.
    pub fn members(&self, node: Node) -> Vec<Node> {
        let class = self.find(node);
        let mut members: BTreeSet<Node> = self
            .parent
            .keys()
            .copied()
            .filter(|other| self.find(*other) == class)
            .collect();
        members.insert(node);
        members.into_iter().collect()
    }

    /// Whether `node` is equal to anything but itself (a wildcard alone names nothing).
    pub fn is_alone(&self, node: Node) -> bool {
        self.members(node).len() <= 1
    }
}

/// The equalities a rule's positive atoms' images imply.
pub(super) fn equalities(rule: &ir::Rule, images: &BTreeMap<RelId, BTreeSet<Image>>) -> Equalities {
    let mut equalities = Equalities::default();
    for (index, atom) in rule.atoms() {
        if atom.negated {
            continue;
        }
        for image in images.get(&atom.rel).into_iter().flatten() {
            let var = |column: usize| atom.args.get(column).and_then(ir::Term::as_var);
            let (Some(at), Some(from)) = (var(image.at), var(image.from)) else {
                continue;
            };
            let target = match atom.args.get(image.to) {
                Some(ir::Term::Var(var)) => Node::Var(*var),
                Some(ir::Term::Wildcard) => Node::Wild(index, image.to),
                _ => continue,
            };
            equalities.union(Node::Image(image.dep, at, from), target);
        }
    }
    equalities
}

/// The dependencies of the role's declared keys (see the module docs), in relation order.
pub(super) fn dependencies(
    context: &Context<'_>,
    at_role: &BTreeSet<RelId>,
    by: &str,
) -> Vec<Dependency> {
    let program = context.program;
    let retracted: BTreeSet<RelId> = program
        .rules
        .iter()
        .filter(|rule| rule.kind == RuleKind::Delete)
        .map(|rule| rule.head.rel)
        .collect();
    let mut found = Vec::new();
    for rel in at_role {
        let relation = context.relation(*rel);
        if relation.persistence != Persistence::Table || retracted.contains(rel) {
            continue;
        }
        let Some([from]) = relation.key.as_deref() else {
            continue;
        };
        let Some(to) = relation.columns.iter().position(|c| c.name == by) else {
            continue;
        };
        if *from > 0 && to > 0 && *from != to {
            found.push(Dependency {
                table: *rel,
                from: *from,
                to,
            });
        }
    }
    found
}

/// Images of every relation of the program (see the module docs), to a least fixpoint.
pub(super) fn images(
    context: &Context<'_>,
    dependencies: &[Dependency],
) -> BTreeMap<RelId, BTreeSet<Image>> {
    let program = context.program;
    let mut images: BTreeMap<RelId, BTreeSet<Image>> = BTreeMap::new();
    for (dep, dependency) in dependencies.iter().enumerate() {
        images.entry(dependency.table).or_default().insert(Image {
            dep,
            at: 0,
            from: dependency.from,
            to: dependency.to,
        });
    }
    let with_facts: BTreeSet<RelId> = program.facts.iter().map(|fact| fact.rel).collect();
    let mut heads: BTreeMap<RelId, Vec<&ir::Rule>> = BTreeMap::new();
    for rule in context.protocol_rules() {
        if rule.kind != RuleKind::Delete {
            heads.entry(rule.head.rel).or_default().push(rule);
        }
    }
    loop {
        let mut changed = false;
        // Inheritance: every deriving rule equates the head's columns.
        for (rel, rules) in &heads {
            let relation = context.relation(*rel);
            if relation.input || with_facts.contains(rel) {
                continue;
            }
            let mut common: Option<BTreeSet<Image>> = None;
            for rule in rules {
                let found = head_images(rule, &images, dependencies.len());
                common = Some(match common {
                    None => found,
                    Some(before) => before.intersection(&found).copied().collect(),
                });
            }
            for image in common.unwrap_or_default() {
                changed |= images.entry(*rel).or_default().insert(image);
            }
        }
        // Containment: `h(..) :- s(..);` copies every fact of `s` into `h` in the same tick.
        for rule in context.protocol_rules() {
            let [ir::Literal::Atom(atom)] = rule.body.as_slice() else {
                continue;
            };
            if rule.kind != RuleKind::Deductive
                || atom.negated
                || atom.tick.is_some()
                || atom.rel == rule.head.rel
                || rule.head.aggregate.is_some()
            {
                continue;
            }
            let position = |column: usize| {
                let var = rule.head.args.get(column).and_then(ir::Term::as_var)?;
                atom.args.iter().position(|arg| arg.as_var() == Some(var))
            };
            let head: Vec<Image> = images
                .get(&rule.head.rel)
                .into_iter()
                .flatten()
                .copied()
                .collect();
            for image in head {
                if let (Some(at), Some(from), Some(to)) =
                    (position(image.at), position(image.from), position(image.to))
                {
                    changed |= images.entry(atom.rel).or_default().insert(Image {
                        dep: image.dep,
                        at,
                        from,
                        to,
                    });
                }
            }
        }
        if !changed {
            break;
        }
    }
    images
}

/// The images a rule gives its head: head columns `(at, from, to)` holding variables `l`,
/// `x`, `y` with `y = f(x)` at `l` by the body's equalities.
fn head_images(
    rule: &ir::Rule,
    images: &BTreeMap<RelId, BTreeSet<Image>>,
    dependencies: usize,
) -> BTreeSet<Image> {
    let equalities = equalities(rule, images);
    let args = &rule.head.args;
    let aggregate = rule.head.aggregate.as_ref().map(|a| a.column);
    let var = |column: usize| {
        (Some(column) != aggregate)
            .then(|| args.get(column).and_then(ir::Term::as_var))
            .flatten()
    };
    let mut found = BTreeSet::new();
    for dep in 0..dependencies {
        for at in 0..args.len() {
            let Some(location) = var(at) else { continue };
            for from in 1..args.len() {
                let Some(x) = var(from) else { continue };
                let image = equalities.find(Node::Image(dep, location, x));
                for to in 1..args.len() {
                    if to == from {
                        continue;
                    }
                    if let Some(y) = var(to)
                        && equalities.find(Node::Var(y)) == image
                    {
                        found.insert(Image { dep, at, from, to });
                    }
                }
            }
        }
    }
    found
}
