//! The naive body evaluator: nested loops over whole relations, in body order, with no
//! indexes and no planning. Positive atoms are matched left to right (a variable binds at its
//! first occurrence and must be equal at later ones); arithmetic arguments, comparisons and
//! negated atoms are checked once every positive atom has matched. It is the oracle the
//! semi-naive evaluator is tested against, so it shares nothing with [`crate::plan`] and
//! [`crate::exec`] but the term evaluator.

use std::collections::HashMap;

use graft_compiler::ir::{self, Literal, RelId, Term, Value, eval_compare};

use crate::exec::{Binding, eval_term};
use crate::result::{Absent, FactRef};
use crate::store::{Store, Tuple};

/// The facts a body reads at tick `tick`: the tick's stores, and the recorded history for
/// atoms pinned to earlier ticks.
pub(crate) struct View<'a> {
    pub db: &'a [Store],
    pub history: &'a HashMap<(RelId, u64), Store>,
    pub tick: u64,
}

impl View<'_> {
    /// The facts of `rel` an atom pinned to `pinned` reads, and their tick.
    pub(crate) fn relation(&self, rel: RelId, pinned: Option<u64>) -> (&[Tuple], u64) {
        match pinned {
            Some(at) if at > self.tick => (&[], at),
            Some(at) if at < self.tick => (
                self.history
                    .get(&(rel, at))
                    .map_or(&[], |store| store.list.as_slice()),
                at,
            ),
            _ => (
                self.db
                    .get(rel.index())
                    .map_or(&[], |store| store.list.as_slice()),
                self.tick,
            ),
        }
    }
}

/// Calls `emit` for every binding of `rule`'s body over `view`.
pub(crate) fn enumerate(
    rule: &ir::Rule,
    view: &View<'_>,
    provenance: bool,
    emit: &mut dyn FnMut(&Binding<'_>),
) {
    let positives: Vec<&ir::Atom> = rule
        .atoms()
        .map(|(_, atom)| atom)
        .filter(|atom| !atom.negated)
        .collect();
    let mut state = State {
        rule,
        view,
        positives,
        matched: Vec::new(),
        body: Vec::new(),
        provenance,
        emit,
    };
    let slots = vec![None; rule.var_names.len()];
    state.positive(0, &slots);
}

struct State<'r, 'v, 'e> {
    rule: &'r ir::Rule,
    view: &'v View<'v>,
    positives: Vec<&'r ir::Atom>,
    matched: Vec<Tuple>,
    body: Vec<FactRef>,
    provenance: bool,
    emit: &'e mut dyn FnMut(&Binding<'_>),
}

impl State<'_, '_, '_> {
    fn positive(&mut self, position: usize, slots: &[Option<Value>]) {
        let Some(atom) = self.positives.get(position).copied() else {
            self.finish(slots);
            return;
        };
        let (facts, tick) = self.view.relation(atom.rel, atom.tick);
        for (id, tuple) in facts.iter().enumerate() {
            let mut local = slots.to_vec();
            if !match_atom(atom, tuple, &mut local) {
                continue;
            }
            self.matched.push(tuple.clone());
            self.body.push(FactRef {
                tick,
                rel: atom.rel,
                tuple: u32::try_from(id).unwrap_or(u32::MAX),
            });
            self.positive(position + 1, &local);
            self.matched.pop();
            self.body.pop();
        }
    }

    fn finish(&mut self, slots: &[Option<Value>]) {
        // Arithmetic arguments of positive atoms.
        for (atom, tuple) in self.positives.iter().zip(&self.matched) {
            for (term, value) in atom.args.iter().zip(tuple.iter()) {
                if let Term::Arith(..) = term {
                    match eval_term(term, slots) {
                        Ok(computed) if computed == *value => {}
                        _ => return,
                    }
                }
            }
        }
        let mut absent = Vec::new();
        for literal in &self.rule.body {
            match literal {
                Literal::Compare(comparison) => {
                    let (Ok(lhs), Ok(rhs)) = (
                        eval_term(&comparison.lhs, slots),
                        eval_term(&comparison.rhs, slots),
                    ) else {
                        return;
                    };
                    if !eval_compare(comparison.op, &lhs, &rhs) {
                        return;
                    }
                }
                Literal::Atom(atom) if atom.negated => {
                    let mut pattern = Vec::with_capacity(atom.args.len());
                    for term in &atom.args {
                        match term {
                            Term::Wildcard => pattern.push(None),
                            other => match eval_term(other, slots) {
                                Ok(value) => pattern.push(Some(value)),
                                Err(_) => return,
                            },
                        }
                    }
                    let (facts, tick) = self.view.relation(atom.rel, atom.tick);
                    let present = facts.iter().any(|tuple| {
                        tuple.len() == pattern.len()
                            && pattern.iter().zip(tuple.iter()).all(|(wanted, value)| {
                                wanted.as_ref().is_none_or(|wanted| wanted == value)
                            })
                    });
                    if present {
                        return;
                    }
                    if self.provenance {
                        absent.push(Absent {
                            tick,
                            rel: atom.rel,
                            pattern,
                        });
                    }
                }
                Literal::Atom(_) => {}
            }
        }
        let no_body: &[FactRef] = &[];
        (self.emit)(&Binding {
            slots,
            body: if self.provenance { &self.body } else { no_body },
            absent: &absent,
        });
    }
}

/// Matches a positive atom against a fact, binding variables at their first occurrence.
/// Arithmetic arguments are left for [`State::finish`].
fn match_atom(atom: &ir::Atom, tuple: &[Value], slots: &mut [Option<Value>]) -> bool {
    if atom.args.len() != tuple.len() {
        return false;
    }
    for (term, value) in atom.args.iter().zip(tuple) {
        match term {
            Term::Wildcard | Term::Arith(..) => {}
            Term::Const(constant) | Term::NamedConst(_, constant) => {
                if constant != value {
                    return false;
                }
            }
            Term::Var(var) => match slots.get_mut(var.index()) {
                Some(slot @ None) => *slot = Some(value.clone()),
                Some(Some(bound)) => {
                    if bound != value {
                        return false;
                    }
                }
                None => return false,
            },
        }
    }
    true
}
