//! The specification a run is checked against: Molly's `pre`/`post` at EOT and graft's `never`
//! invariants at every tick.

use std::collections::BTreeSet;

use graft_compiler::Checked;
use graft_compiler::ir::{self, RelId, Value};
use graft_eval::{FactRef, Run};
use serde::{Deserialize, Serialize};

use crate::matcher;

/// What a violation breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ViolationKind {
    /// A `post` fact of the failure-free run is missing at EOT while the same `pre` fact holds.
    Post,
    /// A `never` invariant's body holds at some tick.
    Never,
}

/// One broken part of the specification.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Violation {
    pub kind: ViolationKind,
    /// The tick it was seen at (EOT for `post`).
    pub tick: u64,
    /// `post("a", 1)` for a missing post fact; for an invariant, `file:line: body` with the
    /// body instantiated.
    pub text: String,
    /// The facts to draw the lineage of: for `post`, the missing fact in the failure-free run;
    /// for `never`, the positive facts of the body in the violating run.
    #[serde(skip)]
    pub facts: Vec<FactRef>,
}

/// The specification of a program.
#[derive(Clone, Debug)]
pub struct Spec {
    pub pre: Option<RelId>,
    pub post: Option<RelId>,
    /// `file:line` of every `never`, by index.
    pub never_locations: Vec<String>,
}

impl Spec {
    pub fn new(checked: &Checked) -> Spec {
        let program = &checked.program;
        let find = |name: &str| {
            program
                .relation_by_name(name)
                .filter(|rel| program.relation(*rel).origin != ir::RelationOrigin::Unknown)
        };
        Spec {
            pre: find("pre"),
            post: find("post"),
            never_locations: program
                .nevers
                .iter()
                .map(|never| checked.location(never.span))
                .collect(),
        }
    }

    /// Whether there is anything to check.
    pub fn is_empty(&self, program: &ir::Program) -> bool {
        self.post.is_none() && program.nevers.is_empty()
    }

    /// The `post` tuples at `tick`.
    pub fn post_at(&self, run: &Run, tick: u64) -> BTreeSet<Vec<Value>> {
        facts_of(run, self.post, tick)
    }

    /// The `pre` tuples at `tick`.
    pub fn pre_at(&self, run: &Run, tick: u64) -> BTreeSet<Vec<Value>> {
        facts_of(run, self.pre, tick)
    }

    /// Every violation in `run`: missing `post` facts (against `expected_post`, the failure-free
    /// run's) whose `pre` holds at EOT, then for each invariant its first violation.
    pub fn check(
        &self,
        program: &ir::Program,
        run: &Run,
        failure_free: Option<&Run>,
        expected_post: &BTreeSet<Vec<Value>>,
        eot: u64,
    ) -> Vec<Violation> {
        let mut violations = Vec::new();
        if let Some(post) = self.post {
            let have = self.post_at(run, eot);
            let pre = self.pre_at(run, eot);
            let name = &program.relation(post).name;
            for tuple in expected_post {
                if !have.contains(tuple) && pre.contains(tuple) {
                    let facts = failure_free
                        .and_then(|ff| ff.find(eot, post, tuple))
                        .into_iter()
                        .collect();
                    violations.push(Violation {
                        kind: ViolationKind::Post,
                        tick: eot,
                        text: render(name, tuple),
                        facts,
                    });
                }
            }
        }
        for (index, never) in program.nevers.iter().enumerate() {
            if let Some(violation) = self.first_never_violation(program, run, index, never) {
                violations.push(violation);
            }
        }
        violations
    }

    fn first_never_violation(
        &self,
        program: &ir::Program,
        run: &Run,
        index: usize,
        never: &ir::Never,
    ) -> Option<Violation> {
        let negated: Vec<&ir::Atom> = never
            .body
            .iter()
            .filter_map(ir::Literal::as_atom)
            .filter(|atom| atom.negated)
            .collect();
        for tick in 1..=run.ticks_run {
            let mut found: Option<Violation> = None;
            matcher::positive_bindings(
                run,
                tick,
                &never.body,
                never.var_names.len(),
                &mut |slots, used| {
                    if found.is_some() {
                        return;
                    }
                    if negated
                        .iter()
                        .all(|atom| matcher::matching_facts(run, tick, atom, slots).is_empty())
                    {
                        let location = self.never_locations.get(index).cloned().unwrap_or_default();
                        found = Some(Violation {
                            kind: ViolationKind::Never,
                            tick,
                            text: format!(
                                "{location}: never {}",
                                matcher::render_body(program, &never.body, slots)
                            ),
                            facts: used.to_vec(),
                        });
                    }
                },
            );
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// For every invariant, tick and binding of its positive atoms (and comparisons) whose
    /// negated atoms are blocked by facts of this run: those blocking facts. Breaking all of
    /// them (while the positives stay) would violate the invariant, so LDFI targets them.
    pub fn never_guards(&self, program: &ir::Program, run: &Run) -> BTreeSet<Vec<FactRef>> {
        let mut guards = BTreeSet::new();
        for never in &program.nevers {
            near_violations(never, run, &mut guards);
            let negated: Vec<&ir::Atom> = never
                .body
                .iter()
                .filter_map(ir::Literal::as_atom)
                .filter(|atom| atom.negated)
                .collect();
            if negated.is_empty() {
                continue;
            }
            for tick in 1..=run.ticks_run {
                matcher::positive_bindings(
                    run,
                    tick,
                    &never.body,
                    never.var_names.len(),
                    &mut |slots, _| {
                        let mut blocking = Vec::new();
                        for atom in &negated {
                            blocking.extend(matcher::matching_facts(run, tick, atom, slots));
                        }
                        if !blocking.is_empty() {
                            blocking.sort();
                            blocking.dedup();
                            guards.insert(blocking);
                        }
                    },
                );
            }
        }
        guards
    }
}

/// Targets for an invariant whose positive atoms all hold but whose comparisons fail: in
/// `never chosen(P, V), chosen(Q, W), V != W` the run where both proposers chose the same value
/// is one comparison away from a violation. The support of each fact in such a binding is what
/// makes the values agree (Paxos: the promise that carried the accepted value to the second
/// proposer), so breaking it may let another value in. Each fact is a target on its own.
fn near_violations(never: &ir::Never, run: &Run, targets: &mut BTreeSet<Vec<FactRef>>) {
    let has_comparison = never
        .body
        .iter()
        .any(|literal| matches!(literal, ir::Literal::Compare(_)));
    if !has_comparison {
        return;
    }
    let positives: Vec<ir::Literal> = never
        .body
        .iter()
        .filter(|literal| matches!(literal, ir::Literal::Atom(atom) if !atom.negated))
        .cloned()
        .collect();
    for tick in 1..=run.ticks_run {
        matcher::positive_bindings(
            run,
            tick,
            &positives,
            never.var_names.len(),
            &mut |slots, used| {
                if !matcher::comparisons_hold(&never.body, slots) {
                    for fact in used {
                        targets.insert(vec![*fact]);
                    }
                }
            },
        );
    }
}

fn facts_of(run: &Run, rel: Option<RelId>, tick: u64) -> BTreeSet<Vec<Value>> {
    rel.map(|rel| {
        run.facts(tick, rel)
            .iter()
            .map(|tuple| tuple.to_vec())
            .collect()
    })
    .unwrap_or_default()
}

/// `rel(v1, v2)`.
pub fn render(relation: &str, values: &[Value]) -> String {
    let values: Vec<String> = values.iter().map(Value::to_string).collect();
    format!("{relation}({})", values.join(", "))
}
