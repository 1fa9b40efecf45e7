//! Executes a join plan over the stores of a tick, calling back for every binding of the body.
//!
//! Each step reads one [`Source`]: a store and the id range the step may use (the semi-naive
//! old, delta or full range), or nothing (an atom pinned to a later tick). The executor keeps
//! the binding in slots; a plan guarantees a slot is written before it is read. With
//! provenance on, it also fills the body facts and absent patterns of the current firing.

use graft_compiler::ir::{self, Term, Value, eval_arith, eval_compare};

use crate::plan::{AtomStep, NegatedStep, Plan, Step};
use crate::result::{Absent, FactRef};
use crate::store::Store;

/// What one step of a plan reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Source<'a> {
    /// `None`: the relation is empty for this step.
    pub store: Option<&'a Store>,
    pub lo: u32,
    pub hi: u32,
    /// The tick the store holds (for provenance).
    pub tick: u64,
}

impl Source<'_> {
    pub(crate) const EMPTY: Source<'static> = Source {
        store: None,
        lo: 0,
        hi: 0,
        tick: 0,
    };
}

/// Evaluates a term over a binding. Unbound variables and wildcards are errors (a plan never
/// evaluates one); arithmetic errors make the caller drop the binding.
pub(crate) fn eval_term(term: &Term, slots: &[Option<Value>]) -> Result<Value, ir::EvalError> {
    match term {
        Term::Var(var) => slots
            .get(var.index())
            .and_then(Clone::clone)
            .ok_or(ir::EvalError::Unbound),
        Term::Const(value) | Term::NamedConst(_, value) => Ok(value.clone()),
        Term::Wildcard => Err(ir::EvalError::Unbound),
        Term::Arith(op, lhs, rhs) => {
            let lhs = eval_term(lhs, slots)?;
            let rhs = eval_term(rhs, slots)?;
            eval_arith(*op, &lhs, &rhs)
        }
    }
}

/// A binding of a body: the slots, and (with provenance) the facts and absences it used.
pub(crate) struct Binding<'b> {
    pub slots: &'b [Option<Value>],
    pub body: &'b [FactRef],
    pub absent: &'b [Absent],
}

/// Runs `plan` with `sources[i]` feeding step `i`, calling `emit` for every binding.
pub(crate) fn execute<'a>(
    plan: &Plan,
    sources: &[Source<'a>],
    positives: usize,
    negated: usize,
    provenance: bool,
    emit: &mut dyn FnMut(&Binding<'_>),
) {
    let placeholder = FactRef {
        tick: 0,
        rel: ir::RelId(0),
        tuple: 0,
    };
    let mut executor = Executor {
        plan,
        sources,
        slots: vec![None; plan.slots],
        body: if provenance {
            vec![placeholder; positives]
        } else {
            Vec::new()
        },
        absent: if provenance {
            vec![
                Absent {
                    tick: 0,
                    rel: ir::RelId(0),
                    pattern: Vec::new(),
                };
                negated
            ]
        } else {
            Vec::new()
        },
        keys: vec![Vec::new(); plan.steps.len()],
        provenance,
        emit,
    };
    executor.step(0);
}

struct Executor<'p, 'a, 'e> {
    plan: &'p Plan,
    sources: &'p [Source<'a>],
    slots: Vec<Option<Value>>,
    body: Vec<FactRef>,
    absent: Vec<Absent>,
    /// A reusable key buffer per step.
    keys: Vec<Vec<Value>>,
    provenance: bool,
    emit: &'e mut dyn FnMut(&Binding<'_>),
}

impl<'a> Executor<'_, 'a, '_> {
    fn step(&mut self, index: usize) {
        let plan = self.plan;
        let Some(step) = plan.steps.get(index) else {
            (self.emit)(&Binding {
                slots: &self.slots,
                body: &self.body,
                absent: &self.absent,
            });
            return;
        };
        let source = self.sources.get(index).copied().unwrap_or(Source::EMPTY);
        match step {
            Step::Atom(atom) => self.atom(index, atom, source),
            Step::Compare { op, lhs, rhs } => {
                let (Ok(lhs), Ok(rhs)) = (eval_term(lhs, &self.slots), eval_term(rhs, &self.slots))
                else {
                    return;
                };
                if eval_compare(*op, &lhs, &rhs) {
                    self.step(index + 1);
                }
            }
            Step::Negated(negated) => self.negated(index, negated, source),
        }
    }

    fn atom(&mut self, index: usize, atom: &AtomStep, source: Source<'a>) {
        let Some(store) = source.store else {
            return;
        };
        match atom.index {
            Some(number) => {
                let mut key = std::mem::take(&mut self.keys[index]);
                key.clear();
                for term in &atom.key {
                    match eval_term(term, &self.slots) {
                        Ok(value) => key.push(value),
                        Err(_) => {
                            self.keys[index] = key;
                            return;
                        }
                    }
                }
                let ids: &'a [u32] = store.index(number).map_or(&[], |found| found.get(&key));
                self.keys[index] = key;
                let start = ids.partition_point(|id| *id < source.lo);
                let end = ids.partition_point(|id| *id < source.hi);
                for id in &ids[start..end.max(start)] {
                    self.try_fact(index, atom, store, *id, source.tick);
                }
            }
            None => {
                let hi = source
                    .hi
                    .min(u32::try_from(store.len()).unwrap_or(u32::MAX));
                for id in source.lo..hi {
                    self.try_fact(index, atom, store, id, source.tick);
                }
            }
        }
    }

    fn try_fact(&mut self, index: usize, atom: &AtomStep, store: &'a Store, id: u32, tick: u64) {
        let Some(tuple) = store.get(id) else {
            return;
        };
        for (column, var) in &atom.bind {
            let Some(value) = tuple.get(*column) else {
                return;
            };
            self.slots[var.index()] = Some(value.clone());
        }
        for (column, var) in &atom.check {
            if tuple.get(*column) != self.slots[var.index()].as_ref() {
                return;
            }
        }
        if self.provenance {
            self.body[atom.ordinal] = FactRef {
                tick,
                rel: atom.rel,
                tuple: id,
            };
        }
        self.step(index + 1);
    }

    fn negated(&mut self, index: usize, negated: &NegatedStep, source: Source<'a>) {
        let mut key = std::mem::take(&mut self.keys[index]);
        key.clear();
        for term in negated.pattern.iter().flatten() {
            match eval_term(term, &self.slots) {
                Ok(value) => key.push(value),
                Err(_) => {
                    self.keys[index] = key;
                    return;
                }
            }
        }
        let present = match source.store {
            None => false,
            Some(store) => match negated.index {
                None => store.id_of(&key).is_some(),
                Some(number) => store
                    .index(number)
                    .is_some_and(|found| !found.get(&key).is_empty()),
            },
        };
        if !present {
            if self.provenance {
                let mut values = key.iter();
                let pattern = negated
                    .pattern
                    .iter()
                    .map(|term| term.as_ref().and_then(|_| values.next().cloned()))
                    .collect();
                self.absent[negated.ordinal] = Absent {
                    tick: source.tick,
                    rel: negated.rel,
                    pattern,
                };
            }
            self.keys[index] = key;
            self.step(index + 1);
        } else {
            self.keys[index] = key;
        }
    }
}
