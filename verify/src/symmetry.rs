//! Symmetry (Molly's `--use-symmetry`): nodes that the program cannot tell apart make fault
//! schedules equivalent up to renaming them.
//!
//! Two nodes are interchangeable when no rule, invariant or `require` names either as a
//! constant, swapping them maps the given facts (program and workload, ticks included) onto
//! themselves, and the program never orders values that may be nodes (an order comparison or
//! a `min`/`max` whose operands are not known integers disables symmetry altogether). Then a
//! run under a renamed schedule is the renamed run: it violates the specification exactly
//! when the original does, and the lineage of its good runs is the renamed lineage. Swaps
//! compose, so interchangeability is an equivalence; within each class every permutation is
//! a symmetry, and a schedule's canonical form is the least renaming of it. LDFI runs one
//! schedule per canonical form: the schedules it skips are renamings of schedules it runs
//! and extends, so a falsifier containing a skipped one is the renaming of a falsifier
//! containing a run one.

use std::collections::{BTreeMap, BTreeSet};

use graft_compiler::ir::{self, AggFunc, CompareOp, Term, Value};

use crate::faults::{Delay, Drop, FaultSet};
use crate::lineage::body_terms;

/// Past this many renamings of one schedule, classes are left out from the largest down.
const PERMUTATION_CAP: usize = 720;

/// The classes of interchangeable nodes (each of two nodes or more, sorted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Symmetry {
    pub classes: Vec<Vec<String>>,
}

impl Symmetry {
    /// The classes of `nodes` that `program` with the workload `facts` cannot tell apart.
    pub fn new(program: &ir::Program, facts: &[ir::Fact], nodes: &[String]) -> Symmetry {
        if orders_values(program) {
            return Symmetry::default();
        }
        let named = constants(program);
        let candidates: Vec<&String> = nodes
            .iter()
            .filter(|node| !named.contains(node.as_str()))
            .collect();
        let given: BTreeSet<(ir::RelId, Vec<Value>, u64)> = program
            .facts
            .iter()
            .chain(facts)
            .map(|fact| (fact.rel, fact.values.clone(), fact.tick))
            .collect();
        // Union-find over the candidates by valid swaps.
        let mut parent: Vec<usize> = (0..candidates.len()).collect();
        fn root(parent: &mut [usize], mut at: usize) -> usize {
            while parent[at] != at {
                parent[at] = parent[parent[at]];
                at = parent[at];
            }
            at
        }
        for first in 0..candidates.len() {
            for second in first + 1..candidates.len() {
                if root(&mut parent, first) == root(&mut parent, second) {
                    continue;
                }
                let (x, y) = (candidates[first].as_str(), candidates[second].as_str());
                let swapped: BTreeSet<(ir::RelId, Vec<Value>, u64)> = given
                    .iter()
                    .map(|(rel, values, tick)| {
                        let values = values.iter().map(|value| swap(value, x, y)).collect();
                        (*rel, values, *tick)
                    })
                    .collect();
                if swapped == given {
                    let (a, b) = (root(&mut parent, first), root(&mut parent, second));
                    parent[b] = a;
                }
            }
        }
        let mut classes: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for (index, node) in candidates.iter().enumerate() {
            let at = root(&mut parent, index);
            classes.entry(at).or_default().push((*node).clone());
        }
        let mut classes: Vec<Vec<String>> = classes
            .into_values()
            .filter(|class| class.len() > 1)
            .collect();
        for class in &mut classes {
            class.sort();
        }
        classes.sort();
        // Keep the number of renamings bounded.
        classes.sort_by_key(Vec::len);
        let mut kept = Vec::new();
        let mut product: usize = 1;
        for class in classes {
            let count = (1..=class.len()).fold(1_usize, usize::saturating_mul);
            if product.saturating_mul(count) <= PERMUTATION_CAP {
                product = product.saturating_mul(count);
                kept.push(class);
            }
        }
        kept.sort();
        Symmetry { classes: kept }
    }

    pub fn is_trivial(&self) -> bool {
        self.classes.is_empty()
    }

    /// The least renaming of `faults` under the permutations of each class.
    pub fn canonical(&self, faults: &FaultSet) -> FaultSet {
        let mut best = faults.clone();
        let mut renamings: Vec<BTreeMap<&str, &str>> = vec![BTreeMap::new()];
        for class in &self.classes {
            let mut next = Vec::new();
            for order in permutations(class.len()) {
                for renaming in &renamings {
                    let mut renaming = renaming.clone();
                    for (from, to) in class.iter().zip(&order) {
                        renaming.insert(from.as_str(), class[*to].as_str());
                    }
                    next.push(renaming);
                }
            }
            renamings = next;
        }
        for renaming in &renamings {
            let name = |node: &String| {
                renaming
                    .get(node.as_str())
                    .map_or_else(|| node.clone(), |to| (*to).to_string())
            };
            let renamed = FaultSet {
                drops: faults
                    .drops
                    .iter()
                    .map(|drop| Drop {
                        from: name(&drop.from),
                        to: name(&drop.to),
                        tick: drop.tick,
                    })
                    .collect(),
                crashes: faults
                    .crashes
                    .iter()
                    .map(|(node, tick)| (name(node), *tick))
                    .collect(),
                delays: faults
                    .delays
                    .iter()
                    .map(|delay| Delay {
                        from: name(&delay.from),
                        to: name(&delay.to),
                        tick: delay.tick,
                        by: delay.by,
                    })
                    .collect(),
            };
            if renamed < best {
                best = renamed;
            }
        }
        best
    }
}

/// `value` with the node names `x` and `y` swapped.
fn swap(value: &Value, x: &str, y: &str) -> Value {
    match value.as_str() {
        Some(text) if text == x => Value::str(y),
        Some(text) if text == y => Value::str(x),
        _ => value.clone(),
    }
}

/// Every permutation of `0..n`, as the image of each position.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    let mut all = Vec::new();
    let mut current: Vec<usize> = Vec::with_capacity(n);
    let mut used = vec![false; n];
    fn extend(n: usize, current: &mut Vec<usize>, used: &mut [bool], all: &mut Vec<Vec<usize>>) {
        if current.len() == n {
            all.push(current.clone());
            return;
        }
        for index in 0..n {
            if !used[index] {
                used[index] = true;
                current.push(index);
                extend(n, current, used, all);
                current.pop();
                used[index] = false;
            }
        }
    }
    extend(n, &mut current, &mut used, &mut all);
    all
}

/// The string constants of the rules, invariants and `require`s.
fn constants(program: &ir::Program) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut add = |term: &Term| collect(term, &mut found);
    for rule in &program.rules {
        rule.head.args.iter().for_each(&mut add);
        body_terms(&rule.body).for_each(&mut add);
    }
    for never in &program.nevers {
        body_terms(&never.body).for_each(&mut add);
    }
    for require in &program.requires {
        add(&require.lhs);
        add(&require.rhs);
    }
    found
}

fn collect(term: &Term, found: &mut BTreeSet<String>) {
    match term {
        Term::Const(value) | Term::NamedConst(_, value) => {
            if let Some(text) = value.as_str() {
                found.insert(text.to_string());
            }
        }
        Term::Arith(_, lhs, rhs) => {
            collect(lhs, found);
            collect(rhs, found);
        }
        Term::Var(_) | Term::Wildcard => {}
    }
}

/// Whether some rule or invariant may order values that are nodes: an order comparison, or a
/// `min`/`max`, over a term not known to be an integer (an integer constant, arithmetic, or a
/// variable that some positive atom holds in an `int` column).
fn orders_values(program: &ir::Program) -> bool {
    let integer = |body: &[ir::Literal], term: &Term| match term {
        Term::Const(value) | Term::NamedConst(_, value) => matches!(value, Value::Int(_)),
        Term::Arith(..) => true,
        Term::Wildcard => false,
        Term::Var(var) => body.iter().filter_map(ir::Literal::as_atom).any(|atom| {
            !atom.negated
                && atom.args.iter().enumerate().any(|(column, arg)| {
                    arg.as_var() == Some(*var)
                        && program
                            .relation(atom.rel)
                            .columns
                            .get(column)
                            .is_some_and(|column| column.ty == ir::Type::Int)
                })
        }),
    };
    let orders = |body: &[ir::Literal]| {
        body.iter().any(|literal| match literal {
            ir::Literal::Compare(comparison) => {
                let equality = matches!(comparison.op, CompareOp::Eq | CompareOp::Ne);
                let on_integers = integer(body, &comparison.lhs) || integer(body, &comparison.rhs);
                !(equality || on_integers)
            }
            ir::Literal::Atom(_) => false,
        })
    };
    program.rules.iter().any(|rule| {
        orders(&rule.body)
            || rule.head.aggregate.as_ref().is_some_and(|aggregate| {
                matches!(aggregate.func, AggFunc::Min | AggFunc::Max)
                    && !integer(&rule.body, &Term::Var(aggregate.var))
            })
    }) || program.nevers.iter().any(|never| orders(&never.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_rename_within_classes() {
        let symmetry = Symmetry {
            classes: vec![vec!["b".into(), "c".into(), "d".into()]],
        };
        let mut faults = FaultSet::default();
        faults.drops.insert(Drop {
            from: "a".into(),
            to: "d".into(),
            tick: 1,
        });
        faults.crashes.insert("c".into(), 2);
        let canonical = symmetry.canonical(&faults);
        assert_eq!(canonical.to_string(), "drop a->b@1, crash c@2");
        // Every renaming has the same canonical form.
        let mut renamed = FaultSet::default();
        renamed.drops.insert(Drop {
            from: "a".into(),
            to: "c".into(),
            tick: 1,
        });
        renamed.crashes.insert("b".into(), 2);
        assert_eq!(symmetry.canonical(&renamed), canonical);
        assert_eq!(permutations(3).len(), 6);
    }
}
