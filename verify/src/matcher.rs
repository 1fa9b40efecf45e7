//! Matching a rule-like body (a `never` invariant's literals) against the facts of one tick of
//! a run: positive atoms join in body order, comparisons and negated atoms are tested once
//! their variables are bound. Atoms may sit at different nodes (invariants are global).

use graft_compiler::ir::{self, Literal, Term, Value};
use graft_eval::{FactRef, Run};

/// Variable values during a match, by `VarId`.
pub type Slots = Vec<Option<Value>>;

pub(crate) fn eval(term: &Term, slots: &Slots) -> Option<Value> {
    match term {
        Term::Var(var) => slots.get(var.index()).cloned().flatten(),
        Term::Wildcard => None,
        Term::Const(value) | Term::NamedConst(_, value) => Some(value.clone()),
        Term::Arith(op, lhs, rhs) => {
            ir::eval_arith(*op, &eval(lhs, slots)?, &eval(rhs, slots)?).ok()
        }
    }
}

/// The tick an atom reads when evaluated at `tick`; `None` when it reads nothing (pinned to a
/// later tick).
pub(crate) fn atom_tick(atom: &ir::Atom, tick: u64) -> Option<u64> {
    match atom.tick {
        Some(pinned) if pinned > tick => None,
        Some(pinned) => Some(pinned),
        None => Some(tick),
    }
}

/// Unifies an atom's arguments with a tuple, binding unbound variables; returns the variables
/// it bound (to undo), or `None` on a mismatch (with nothing left bound).
fn unify(args: &[Term], tuple: &[Value], slots: &mut Slots) -> Option<Vec<usize>> {
    let mut bound = Vec::new();
    for (term, value) in args.iter().zip(tuple) {
        let ok = match term {
            Term::Wildcard => true,
            Term::Var(var) => match slots.get(var.index()) {
                Some(Some(current)) => current == value,
                Some(None) => {
                    slots[var.index()] = Some(value.clone());
                    bound.push(var.index());
                    true
                }
                None => false,
            },
            other => eval(other, slots).as_ref() == Some(value),
        };
        if !ok {
            for index in bound {
                slots[index] = None;
            }
            return None;
        }
    }
    Some(bound)
}

/// The facts matching a (negated) atom under the current bindings; unbound variables and
/// wildcards match anything.
pub fn matching_facts(run: &Run, tick: u64, atom: &ir::Atom, slots: &Slots) -> Vec<FactRef> {
    let Some(at) = atom_tick(atom, tick) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut scratch = slots.clone();
    for (id, tuple) in run.facts(at, atom.rel).iter().enumerate() {
        if tuple.len() == atom.args.len()
            && let Some(bound) = unify(&atom.args, tuple, &mut scratch)
        {
            for index in bound {
                scratch[index] = None;
            }
            found.push(FactRef {
                tick: at,
                rel: atom.rel,
                tuple: u32::try_from(id).unwrap_or(u32::MAX),
            });
        }
    }
    found
}

/// Whether a comparison holds; `None` while a side is unbound. `X == e` with `X` unbound binds.
pub(crate) fn compare(comparison: &ir::Comparison, slots: &mut Slots) -> Option<bool> {
    let lhs = eval(&comparison.lhs, slots);
    let rhs = eval(&comparison.rhs, slots);
    match (lhs, rhs) {
        (Some(lhs), Some(rhs)) => Some(ir::eval_compare(comparison.op, &lhs, &rhs)),
        (None, Some(value)) if comparison.op == ir::CompareOp::Eq => {
            let var = comparison.lhs.as_var()?;
            *slots.get_mut(var.index())? = Some(value);
            Some(true)
        }
        (Some(value), None) if comparison.op == ir::CompareOp::Eq => {
            let var = comparison.rhs.as_var()?;
            *slots.get_mut(var.index())? = Some(value);
            Some(true)
        }
        _ => None,
    }
}

/// Whether every comparison of `body` holds under `slots` (a comparison whose sides are not
/// both bound counts as failing).
pub fn comparisons_hold(body: &[Literal], slots: &Slots) -> bool {
    let mut slots = slots.clone();
    body.iter().all(|literal| match literal {
        Literal::Compare(comparison) => compare(comparison, &mut slots) == Some(true),
        Literal::Atom(_) => true,
    })
}

/// Calls `emit` with every binding of the body's positive atoms at `tick` that satisfies its
/// comparisons, and the positive facts used (in body order). Negated atoms are not tested:
/// callers look at them with [`matching_facts`].
pub fn positive_bindings(
    run: &Run,
    tick: u64,
    body: &[Literal],
    var_count: usize,
    emit: &mut dyn FnMut(&Slots, &[FactRef]),
) {
    positive_bindings_from(run, tick, body, vec![None; var_count], emit);
}

/// [`positive_bindings`] starting from `slots` (variables already bound keep their values).
pub fn positive_bindings_from(
    run: &Run,
    tick: u64,
    body: &[Literal],
    mut slots: Slots,
    emit: &mut dyn FnMut(&Slots, &[FactRef]),
) {
    let positives: Vec<&ir::Atom> = body
        .iter()
        .filter_map(Literal::as_atom)
        .filter(|atom| !atom.negated)
        .collect();
    let comparisons: Vec<&ir::Comparison> = body
        .iter()
        .filter_map(|literal| match literal {
            Literal::Compare(comparison) => Some(comparison),
            Literal::Atom(_) => None,
        })
        .collect();
    let mut used = Vec::new();
    join(
        run,
        tick,
        &positives,
        &comparisons,
        &mut slots,
        &mut used,
        emit,
    );
}

fn join(
    run: &Run,
    tick: u64,
    positives: &[&ir::Atom],
    comparisons: &[&ir::Comparison],
    slots: &mut Slots,
    used: &mut Vec<FactRef>,
    emit: &mut dyn FnMut(&Slots, &[FactRef]),
) {
    let Some((atom, rest)) = positives.split_first() else {
        let mut checked = slots.clone();
        // Comparisons may bind through `==`; test them until none makes progress.
        let mut pending: Vec<&ir::Comparison> = comparisons.to_vec();
        loop {
            let before = pending.len();
            let mut still = Vec::new();
            for comparison in pending {
                match compare(comparison, &mut checked) {
                    Some(true) => {}
                    Some(false) => return,
                    None => still.push(comparison),
                }
            }
            pending = still;
            if pending.is_empty() {
                break;
            }
            if pending.len() == before {
                return;
            }
        }
        emit(&checked, used);
        return;
    };
    let Some(at) = atom_tick(atom, tick) else {
        return;
    };
    for (id, tuple) in run.facts(at, atom.rel).iter().enumerate() {
        if tuple.len() != atom.args.len() {
            continue;
        }
        let Some(bound) = unify(&atom.args, tuple, slots) else {
            continue;
        };
        used.push(FactRef {
            tick: at,
            rel: atom.rel,
            tuple: u32::try_from(id).unwrap_or(u32::MAX),
        });
        join(run, tick, rest, comparisons, slots, used, emit);
        used.pop();
        for index in bound {
            slots[index] = None;
        }
    }
}

/// Renders a body instantiated with `slots`: `outcome("p1", 1, true), notin decision("C", 1, true)`.
pub fn render_body(program: &ir::Program, body: &[Literal], slots: &Slots) -> String {
    let term = |term: &Term| match eval(term, slots) {
        Some(value) => value.to_string(),
        None => "_".to_string(),
    };
    let parts: Vec<String> = body
        .iter()
        .map(|literal| match literal {
            Literal::Atom(atom) => {
                let args: Vec<String> = atom.args.iter().map(term).collect();
                format!(
                    "{}{}({}){}",
                    if atom.negated { "notin " } else { "" },
                    program.relation(atom.rel).name,
                    args.join(", "),
                    atom.tick.map(|tick| format!("@{tick}")).unwrap_or_default()
                )
            }
            Literal::Compare(comparison) => format!(
                "{} {} {}",
                term(&comparison.lhs),
                comparison.op.as_str(),
                term(&comparison.rhs)
            ),
        })
        .collect();
    parts.join(", ")
}
