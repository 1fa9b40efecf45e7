//! Join plans, compiled once per program.
//!
//! A plan is the body of one rule as a sequence of steps over a binding of the rule's
//! variables: look up a positive atom (through a hash index on its bound columns, or by a
//! scan), test a comparison, or check that a negated atom has no match. The order is chosen
//! greedily: the semi-naive delta atom first (when there is one), then repeatedly every
//! comparison and negated atom whose variables are all bound, then the positive atom with the
//! most bound columns (ties go to the earlier atom in the body).
//!
//! An argument of a positive atom that is arithmetic over variables not yet bound gets a
//! hidden variable (numbered after the rule's own) that the atom binds, plus the comparison
//! `hidden == expression`, scheduled like any other comparison.

use graft_compiler::ir::{self, CompareOp, Literal, RelId, Term, VarId};

use crate::EvalError;

/// Which of a relation's facts an atom reads during a semi-naive round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Range {
    /// Every fact present at the start of the round.
    Full,
    /// Facts older than the round's delta.
    Old,
    /// Facts new in the previous round.
    Delta,
}

/// A positive body atom.
#[derive(Clone, Debug)]
pub(crate) struct AtomStep {
    /// Position among the body's positive atoms (body order): the slot of its fact in a
    /// firing's provenance.
    pub ordinal: usize,
    pub rel: RelId,
    /// `@k`: read the relation's contents at tick k.
    pub pinned: Option<u64>,
    pub range: Range,
    /// Index number in the relation's stores, when some column is bound before the atom.
    pub index: Option<usize>,
    /// The key's values, in the order of the index's columns.
    pub key: Vec<Term>,
    /// Columns that bind a variable.
    pub bind: Vec<(usize, VarId)>,
    /// Columns that must equal a variable bound by an earlier column of this same atom.
    pub check: Vec<(usize, VarId)>,
}

/// A negated body atom: succeeds when no fact matches the pattern.
#[derive(Clone, Debug)]
pub(crate) struct NegatedStep {
    /// Position among the body's negated atoms (body order).
    pub ordinal: usize,
    pub rel: RelId,
    pub pinned: Option<u64>,
    /// One entry per column; `None` for a wildcard.
    pub pattern: Vec<Option<Term>>,
    /// Index on the non-wildcard columns; `None` when every column is given (a set lookup).
    pub index: Option<usize>,
}

#[derive(Clone, Debug)]
pub(crate) enum Step {
    Atom(AtomStep),
    Compare { op: CompareOp, lhs: Term, rhs: Term },
    Negated(NegatedStep),
}

#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub steps: Vec<Step>,
    /// Number of variable slots (the rule's variables and the hidden ones).
    pub slots: usize,
}

/// The column sets each relation is indexed on, by [`RelId`].
#[derive(Clone, Debug, Default)]
pub(crate) struct IndexRegistry {
    pub per_relation: Vec<Vec<Vec<usize>>>,
}

impl IndexRegistry {
    pub(crate) fn new(relations: usize) -> IndexRegistry {
        IndexRegistry {
            per_relation: vec![Vec::new(); relations],
        }
    }

    fn number(&mut self, rel: RelId, columns: Vec<usize>) -> usize {
        let list = &mut self.per_relation[rel.index()];
        if let Some(position) = list.iter().position(|existing| *existing == columns) {
            return position;
        }
        list.push(columns);
        list.len() - 1
    }
}

/// Facts about the body needed to plan it.
pub(crate) struct BodyInfo<'a> {
    pub rule: &'a ir::Rule,
    /// For each positive atom (by ordinal): its relation is in the stratum the rule runs in.
    pub same_stratum: Vec<bool>,
}

/// Compiles the body of `info.rule` with the positive atom `delta` (an ordinal) reading the
/// delta, or with every atom reading full relations when `delta` is `None`.
pub(crate) fn compile(
    info: &BodyInfo<'_>,
    delta: Option<usize>,
    indexes: &mut IndexRegistry,
) -> Result<Plan, EvalError> {
    let rule = info.rule;
    let mut bound = vec![false; rule.var_names.len()];
    let mut hidden_count = 0;
    let mut positives: Vec<(usize, &ir::Atom)> = Vec::new();
    let mut pending_filters: Vec<Filter> = Vec::new();
    let mut negated_ordinal = 0;
    for literal in &rule.body {
        match literal {
            Literal::Atom(atom) if atom.negated => {
                pending_filters.push(Filter::Negated(negated_ordinal, atom));
                negated_ordinal += 1;
            }
            Literal::Atom(atom) => positives.push((positives.len(), atom)),
            Literal::Compare(comparison) => pending_filters.push(Filter::Compare(
                comparison.op,
                comparison.lhs.clone(),
                comparison.rhs.clone(),
            )),
        }
    }
    let mut steps = Vec::new();
    let mut remaining = positives.clone();
    if let Some(delta) = delta
        && let Some(position) = remaining.iter().position(|(ordinal, _)| *ordinal == delta)
    {
        let (ordinal, atom) = remaining.remove(position);
        steps.push(place_atom(
            ordinal,
            atom,
            Range::Delta,
            &mut bound,
            &mut hidden_count,
            rule.var_names.len(),
            &mut pending_filters,
            indexes,
        ));
    }
    loop {
        // Every filter whose variables are bound, in body order.
        let mut index = 0;
        while index < pending_filters.len() {
            if pending_filters[index].ready(&bound) {
                let filter = pending_filters.remove(index);
                steps.push(filter.into_step(indexes));
            } else {
                index += 1;
            }
        }
        if remaining.is_empty() {
            break;
        }
        let best = remaining
            .iter()
            .enumerate()
            .max_by_key(|(position, (_, atom))| {
                (atom.bound_columns(&bound), std::cmp::Reverse(*position))
            })
            .map_or(0, |(position, _)| position);
        let (ordinal, atom) = remaining.remove(best);
        let range = match delta {
            Some(delta) if info.same_stratum.get(ordinal).copied().unwrap_or(false) => {
                if ordinal < delta {
                    Range::Old
                } else {
                    Range::Full
                }
            }
            _ => Range::Full,
        };
        steps.push(place_atom(
            ordinal,
            atom,
            range,
            &mut bound,
            &mut hidden_count,
            rule.var_names.len(),
            &mut pending_filters,
            indexes,
        ));
    }
    if !pending_filters.is_empty() {
        return Err(EvalError::UnboundVariable { rule: rule.id });
    }
    Ok(Plan {
        steps,
        slots: rule.var_names.len() + hidden_count,
    })
}

enum Filter<'a> {
    Compare(CompareOp, Term, Term),
    Negated(usize, &'a ir::Atom),
}

impl Filter<'_> {
    fn ready(&self, bound: &[bool]) -> bool {
        match self {
            Filter::Compare(_, lhs, rhs) => lhs.is_bound(bound) && rhs.is_bound(bound),
            Filter::Negated(_, atom) => atom.args.iter().all(|arg| arg.is_bound(bound)),
        }
    }

    fn into_step(self, indexes: &mut IndexRegistry) -> Step {
        match self {
            Filter::Compare(op, lhs, rhs) => Step::Compare { op, lhs, rhs },
            Filter::Negated(ordinal, atom) => {
                let pattern: Vec<Option<Term>> = atom
                    .args
                    .iter()
                    .map(|arg| match arg {
                        Term::Wildcard => None,
                        other => Some(other.clone()),
                    })
                    .collect();
                let given: Vec<usize> = pattern
                    .iter()
                    .enumerate()
                    .filter(|(_, term)| term.is_some())
                    .map(|(column, _)| column)
                    .collect();
                let index = (given.len() < pattern.len()).then(|| indexes.number(atom.rel, given));
                Step::Negated(NegatedStep {
                    ordinal,
                    rel: atom.rel,
                    pinned: atom.tick,
                    pattern,
                    index,
                })
            }
        }
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "one planning step over the planner's state"
)]
fn place_atom(
    ordinal: usize,
    atom: &ir::Atom,
    range: Range,
    bound: &mut Vec<bool>,
    hidden_count: &mut usize,
    var_count: usize,
    pending_filters: &mut Vec<Filter<'_>>,
    indexes: &mut IndexRegistry,
) -> Step {
    let mut key_columns = Vec::new();
    let mut key = Vec::new();
    let mut bind: Vec<(usize, VarId)> = Vec::new();
    let mut check = Vec::new();
    for (column, arg) in atom.args.iter().enumerate() {
        match arg {
            Term::Wildcard => {}
            Term::Const(_) | Term::NamedConst(..) => {
                key_columns.push(column);
                key.push(arg.clone());
            }
            Term::Var(var) => {
                if bound.get(var.index()).copied().unwrap_or(false) {
                    key_columns.push(column);
                    key.push(arg.clone());
                } else if bind.iter().any(|(_, earlier)| earlier == var) {
                    check.push((column, *var));
                } else {
                    bind.push((column, *var));
                }
            }
            Term::Arith(..) => {
                if arg.is_bound(bound) {
                    key_columns.push(column);
                    key.push(arg.clone());
                } else {
                    let hidden = VarId::from_index(var_count + *hidden_count);
                    *hidden_count += 1;
                    bind.push((column, hidden));
                    pending_filters.push(Filter::Compare(
                        CompareOp::Eq,
                        Term::Var(hidden),
                        arg.clone(),
                    ));
                }
            }
        }
    }
    for (_, var) in &bind {
        if bound.len() <= var.index() {
            bound.resize(var.index() + 1, false);
        }
        bound[var.index()] = true;
    }
    let index = (!key_columns.is_empty()).then(|| indexes.number(atom.rel, key_columns));
    Step::Atom(AtomStep {
        ordinal,
        rel: atom.rel,
        pinned: atom.tick,
        range,
        index,
        key,
        bind,
        check,
    })
}
