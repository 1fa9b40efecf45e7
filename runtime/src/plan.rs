//! Rules compiled into dataflow plans, and the order in which relations are built.
//!
//! A rule's body becomes a pipeline over *bindings* (one slot per variable, plus hidden slots
//! for arithmetic arguments of atoms): a scan of its first atom, then joins with the other
//! positive atoms (keyed by their bound columns, the location always first), comparisons and
//! antijoins with negated atoms, each placed as soon as its variables are bound. The order
//! is chosen greedily as the reference evaluator does: the positive atom with the most bound
//! columns next (ties to the earlier atom), every ready filter right after each atom.
//!
//! Relations are built in the topological order of the strongly connected components of the
//! same-tick dependency graph; a component whose rules read the component itself is
//! recursive and becomes an `iterate` scope.

use graft_compiler::ir::{self, AggFunc, CompareOp, RelId, RuleKind, Term};
use petgraph::graph::{DiGraph, NodeIndex};

use crate::RuntimeError;
use crate::value::{Expr, Interner, Packed, Row, Val};

/// A positive atom: its relation (pinned to a tick or not) and what it does to a binding.
#[derive(Clone, Debug)]
pub(crate) struct AtomPlan {
    pub rel: RelId,
    pub pinned: Option<u64>,
    /// Columns whose value is known before the atom (constants, bound variables, arithmetic
    /// over bound variables), ascending: the join key. For the first atom, filters.
    pub key_columns: Vec<usize>,
    /// The key's values over the binding, one per key column.
    pub key: Vec<Expr>,
    /// Columns that bind a slot.
    pub bind: Vec<(usize, usize)>,
    /// Columns that must equal a slot bound by an earlier column of the same atom.
    pub check: Vec<(usize, usize)>,
}

/// A step after the first atom.
#[derive(Clone, Debug)]
pub(crate) enum Step {
    Join(AtomPlan),
    Compare {
        op: CompareOp,
        lhs: Expr,
        rhs: Expr,
    },
    /// `notin rel(pattern)`: no fact of `rel` has these values in these columns.
    Antijoin {
        rel: RelId,
        pinned: Option<u64>,
        columns: Vec<usize>,
        key: Vec<Expr>,
        /// No wildcard: the columns are all of the relation's, in order.
        whole: bool,
    },
}

/// `count<X>` and friends: the head column it fills, the function, the slot of X.
#[derive(Clone, Debug)]
pub(crate) struct AggregatePlan {
    pub column: usize,
    pub func: AggFunc,
    pub slot: usize,
}

impl AtomPlan {
    /// The values the atom's key columns must hold when it is a body's first atom (its key
    /// is then constant); `None` for a string constant no fact holds.
    pub fn constants(&self) -> Vec<Option<Val>> {
        self.key
            .iter()
            .map(|expr| expr.eval(&Row::default()))
            .collect()
    }

    /// The binding a fact starts as the body's first atom: its key columns equal to
    /// `constants`, its columns written to `slots` fresh slots.
    pub fn start(&self, constants: &[Option<Val>], row: &Row, slots: usize) -> Option<Row> {
        for (column, value) in self.key_columns.iter().zip(constants) {
            if value.is_none() || row.packed(*column) != value.map(Packed::of) {
                return None;
            }
        }
        self.extend(&Row::zeros(slots), row)
    }

    /// Extends `slots` in place by a fact of the atom, as [`extend`](AtomPlan::extend) does;
    /// whether the fact matches. The atom writes only the slots it binds first, so a walk
    /// over a body can reuse one binding: a later fact overwrites what an earlier one wrote.
    pub fn extend_into(&self, slots: &mut Row, row: &Row) -> bool {
        for (column, slot) in &self.bind {
            let Some(value) = row.packed(*column) else {
                return false;
            };
            if slots.set_packed(*slot, value).is_none() {
                return false;
            }
        }
        self.check.iter().all(|(column, slot)| {
            row.packed(*column)
                .is_some_and(|v| slots.packed(*slot) == Some(v))
        })
    }

    /// Whether a fact starts a binding as the body's first atom (its key columns equal to
    /// `constants`), written into `slots` in place.
    pub fn start_into(&self, constants: &[Option<Val>], row: &Row, slots: &mut Row) -> bool {
        self.key_columns
            .iter()
            .zip(constants)
            .all(|(column, value)| value.is_some() && row.packed(*column) == value.map(Packed::of))
            && self.extend_into(slots, row)
    }

    /// A binding extended by a fact of the atom: its bound columns written to their slots,
    /// its repeated variables checked. (This and [`start`](AtomPlan::start) serve the dataflow
    /// lowering; they do not call the in-place forms, which then stop being inlined into the
    /// node-local engine's walk: 3% more instructions there, measured.)
    pub fn extend(&self, binding: &Row, row: &Row) -> Option<Row> {
        let mut slots = binding.clone();
        for (column, slot) in &self.bind {
            slots.set_packed(*slot, row.packed(*column)?)?;
        }
        for (column, slot) in &self.check {
            if row.packed(*column)? != slots.packed(*slot)? {
                return None;
            }
        }
        Some(slots)
    }
}

impl AggregatePlan {
    /// The aggregate of a group's distinct values (sorted); `None` for a sum that overflows
    /// or is over non-integers.
    pub fn value<'v>(
        &self,
        mut values: impl ExactSizeIterator<Item = &'v Val> + DoubleEndedIterator,
    ) -> Option<Val> {
        match self.func {
            AggFunc::Count => Some(Val::Int(i64::try_from(values.len()).unwrap_or(i64::MAX))),
            AggFunc::Sum => {
                let mut total: i64 = 0;
                for value in values {
                    let Val::Int(number) = value else {
                        return None;
                    };
                    total = total.checked_add(*number)?;
                }
                Some(Val::Int(total))
            }
            AggFunc::Min => values.next().copied(),
            AggFunc::Max => values.next_back().copied(),
        }
    }

    /// The group's key (the head's other columns) over a binding.
    pub fn key(&self, head: &[Expr], binding: &Row) -> Option<Row> {
        Row::try_build(head.len().saturating_sub(1), |index| {
            let column = if index < self.column {
                index
            } else {
                index + 1
            };
            head.get(column)?.eval(binding)
        })
    }

    /// The head fact of a group: its key with the aggregate's value in its column.
    pub fn head(&self, key: &Row, value: Val) -> Row {
        let column = self.column.min(key.len());
        Row::try_build(key.len() + 1, |index| match index.cmp(&column) {
            std::cmp::Ordering::Less => key.get(index),
            std::cmp::Ordering::Equal => Some(value),
            std::cmp::Ordering::Greater => key.get(index - 1),
        })
        .unwrap_or_default()
    }
}

#[derive(Clone, Debug)]
pub(crate) struct RulePlan {
    pub kind: RuleKind,
    pub head_rel: RelId,
    pub slots: usize,
    /// The slot of the body's location variable; `None` when the body's atoms share no
    /// location variable (Molly's dialect allows such rules in `.ded` files). Such a rule is
    /// evaluated over every node's facts at once, never suppressed by a crash, and its
    /// `@async` heads have no sender, so they are never sent (as in the reference).
    pub location: Option<usize>,
    pub first: AtomPlan,
    pub steps: Vec<Step>,
    pub head: Vec<Expr>,
    pub aggregate: Option<AggregatePlan>,
    /// How to name a binding's body facts, for traced runs (compiled with witnesses only).
    pub firing: Option<FiringPlan>,
    /// In a plan over a batch of executions ([`RulePlan::batched`]), the slot holding the
    /// execution's index.
    pub exec: Option<usize>,
}

/// What a traced run needs to name the facts of one firing from its binding: every column of
/// every positive atom is an expression over the binding (a wildcard reads the hidden slot
/// that the atom binds in a traced compilation), and every negated atom's pattern too.
#[derive(Clone, Debug)]
pub(crate) struct FiringPlan {
    /// The positive atoms in body order: relation, pinned tick, one expression per column.
    pub positives: Vec<(RelId, Option<u64>, Vec<Expr>)>,
    /// The negated atoms in body order: relation, pinned tick, and per column an expression
    /// (`None` for a wildcard).
    pub negated: Vec<(RelId, Option<u64>, Vec<Option<Expr>>)>,
}

impl RulePlan {
    /// The plan over rows that carry an execution's index in an extra first column, so that
    /// one dataflow runs a batch of executions: the first atom reads the index into a new
    /// last slot (`exec`), every other atom and every negated atom matches it, and the head
    /// writes it first. Every other slot keeps its number, so the unbatched plan's heads and
    /// [`FiringPlan`] still read a batched binding.
    pub fn batched(&self) -> RulePlan {
        let exec = self.slots;
        let shift = |atom: &AtomPlan, first: bool| -> AtomPlan {
            let mut key_columns = Vec::with_capacity(atom.key_columns.len() + 1);
            let mut key = Vec::with_capacity(atom.key.len() + 1);
            let mut bind = Vec::with_capacity(atom.bind.len() + 1);
            if first {
                bind.push((0, exec));
            } else {
                key_columns.push(0);
                key.push(Expr::Slot(exec));
            }
            key_columns.extend(atom.key_columns.iter().map(|column| column + 1));
            key.extend(atom.key.iter().cloned());
            bind.extend(atom.bind.iter().map(|(column, slot)| (column + 1, *slot)));
            AtomPlan {
                rel: atom.rel,
                pinned: atom.pinned,
                key_columns,
                key,
                bind,
                check: atom
                    .check
                    .iter()
                    .map(|(column, slot)| (column + 1, *slot))
                    .collect(),
            }
        };
        let steps = self
            .steps
            .iter()
            .map(|step| match step {
                Step::Join(atom) => Step::Join(shift(atom, false)),
                Step::Compare { .. } => step.clone(),
                Step::Antijoin {
                    rel,
                    pinned,
                    columns,
                    key,
                    whole,
                } => Step::Antijoin {
                    rel: *rel,
                    pinned: *pinned,
                    columns: std::iter::once(0)
                        .chain(columns.iter().map(|column| column + 1))
                        .collect(),
                    key: std::iter::once(Expr::Slot(exec))
                        .chain(key.iter().cloned())
                        .collect(),
                    whole: *whole,
                },
            })
            .collect();
        RulePlan {
            kind: self.kind,
            head_rel: self.head_rel,
            slots: self.slots + 1,
            location: self.location,
            first: shift(&self.first, true),
            steps,
            head: std::iter::once(Expr::Slot(exec))
                .chain(self.head.iter().cloned())
                .collect(),
            aggregate: self.aggregate.as_ref().map(|aggregate| AggregatePlan {
                column: aggregate.column + 1,
                func: aggregate.func,
                slot: aggregate.slot,
            }),
            firing: self.firing.clone(),
            exec: Some(exec),
        }
    }

    /// The relations the body reads (positive or negated), with their pinned ticks.
    pub fn reads(&self) -> impl Iterator<Item = (RelId, Option<u64>)> + '_ {
        std::iter::once((self.first.rel, self.first.pinned)).chain(self.steps.iter().filter_map(
            |step| match step {
                Step::Join(atom) => Some((atom.rel, atom.pinned)),
                Step::Antijoin { rel, pinned, .. } => Some((*rel, *pinned)),
                Step::Compare { .. } => None,
            },
        ))
    }
}

/// A group of relations built together: one strongly connected component of the same-tick
/// graph, with the deductive rules deriving its relations.
#[derive(Clone, Debug)]
pub(crate) struct Component {
    pub relations: Vec<RelId>,
    /// Indexes into [`compile_rules`]' result: aggregate rules (their bodies are complete
    /// lower relations).
    pub aggregates: Vec<usize>,
    /// The other deductive rules.
    pub rules: Vec<usize>,
    /// Some rule reads a relation of the component itself.
    pub recursive: bool,
}

/// Compiles every rule of the program.
pub(crate) fn compile_rules(
    program: &ir::Program,
    interner: &Interner,
) -> Result<Vec<RulePlan>, RuntimeError> {
    program
        .rules
        .iter()
        .map(|rule| compile_rule(rule, interner, false))
        .collect()
}

/// Compiles every rule for a traced run: each wildcard of a positive atom binds a hidden slot
/// (a *witness*), so that a binding names every body fact, and each plan has its
/// [`FiringPlan`]. The bindings are then one per set of body facts; the heads are the same.
pub(crate) fn compile_rules_traced(
    program: &ir::Program,
    interner: &Interner,
) -> Result<Vec<RulePlan>, RuntimeError> {
    program
        .rules
        .iter()
        .map(|rule| compile_rule(rule, interner, true))
        .collect()
}

enum Pending<'a> {
    Compare(CompareOp, Term, Term),
    Negated(&'a ir::Atom),
}

impl Pending<'_> {
    fn ready(&self, bound: &[bool]) -> bool {
        match self {
            Pending::Compare(_, lhs, rhs) => lhs.is_bound(bound) && rhs.is_bound(bound),
            Pending::Negated(atom) => atom.args.iter().all(|arg| arg.is_bound(bound)),
        }
    }

    fn into_step(self, interner: &Interner) -> Step {
        match self {
            Pending::Compare(op, lhs, rhs) => Step::Compare {
                op,
                lhs: Expr::of(&lhs, interner),
                rhs: Expr::of(&rhs, interner),
            },
            Pending::Negated(atom) => {
                let mut columns = Vec::new();
                let mut key = Vec::new();
                for (column, arg) in atom.args.iter().enumerate() {
                    if !matches!(arg, Term::Wildcard) {
                        columns.push(column);
                        key.push(Expr::of(arg, interner));
                    }
                }
                Step::Antijoin {
                    rel: atom.rel,
                    pinned: atom.tick,
                    whole: columns.len() == atom.args.len(),
                    columns,
                    key,
                }
            }
        }
    }
}

fn compile_rule(
    rule: &ir::Rule,
    interner: &Interner,
    witness: bool,
) -> Result<RulePlan, RuntimeError> {
    let unbound = RuntimeError::UnboundVariable { rule: rule.id };
    // A traced run keeps the rule as written: its firings name every variable's value.
    let substituted = (!witness).then(|| equalities_substituted(rule)).flatten();
    let rule = substituted.as_ref().unwrap_or(rule);
    let var_count = rule.var_names.len();
    let mut bound = vec![false; var_count];
    let mut hidden = 0_usize;
    let mut remaining: Vec<(usize, &ir::Atom)> = Vec::new();
    let mut pending: Vec<Pending<'_>> = Vec::new();
    // Per positive atom (body order): the witness slot of each wildcard column.
    let mut witnesses: Vec<Vec<(usize, usize)>> = Vec::new();
    for literal in &rule.body {
        match literal {
            ir::Literal::Atom(atom) if atom.negated => pending.push(Pending::Negated(atom)),
            ir::Literal::Atom(atom) => {
                remaining.push((witnesses.len(), atom));
                witnesses.push(Vec::new());
            }
            ir::Literal::Compare(comparison) => pending.push(Pending::Compare(
                comparison.op,
                comparison.lhs.clone(),
                comparison.rhs.clone(),
            )),
        }
    }
    let mut first: Option<AtomPlan> = None;
    let mut steps = Vec::new();
    loop {
        if first.is_some() {
            let mut index = 0;
            while index < pending.len() {
                if pending[index].ready(&bound) {
                    steps.push(pending.remove(index).into_step(interner));
                } else {
                    index += 1;
                }
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
        let (placed, witnessed) = place_atom(
            atom,
            &mut bound,
            &mut hidden,
            var_count,
            &mut pending,
            interner,
            witness,
        );
        witnesses[ordinal] = witnessed;
        match first {
            None => first = Some(placed),
            Some(_) => steps.push(Step::Join(placed)),
        }
    }
    let Some(first) = first else {
        return Err(unbound);
    };
    if !pending.is_empty() {
        return Err(unbound);
    }
    let location = rule.location.map(ir::VarId::index);
    let aggregate = rule.head.aggregate.as_ref().map(|aggregate| AggregatePlan {
        column: aggregate.column,
        func: aggregate.func,
        slot: aggregate.var.index(),
    });
    let mut head_slots_bound = true;
    for (column, term) in rule.head.args.iter().enumerate() {
        if aggregate.as_ref().is_some_and(|plan| plan.column == column) {
            continue;
        }
        head_slots_bound &= term.is_bound(&bound) && !term.has_wildcard();
    }
    if !head_slots_bound
        || aggregate
            .as_ref()
            .is_some_and(|plan| !bound.get(plan.slot).copied().unwrap_or(false))
    {
        return Err(unbound);
    }
    let firing = witness.then(|| firing_plan(rule, &witnesses, interner));
    Ok(RulePlan {
        kind: rule.kind,
        head_rel: rule.head.rel,
        slots: var_count + hidden,
        location,
        first,
        steps,
        head: rule
            .head
            .args
            .iter()
            .map(|term| Expr::of(term, interner))
            .collect(),
        aggregate,
        firing,
        exec: None,
    })
}

/// The rule with each equality `X == E` (or `E == X`) whose variable `X` is neither the
/// body's location nor an aggregate's argument, and does not occur in `E`, folded away: `E`
/// stands for `X` everywhere and the comparison is dropped. The rule derives the same facts,
/// since `X == E` holds in every binding; but an atom that read `X` now reads `E`, so once
/// `E`'s variables are bound the column joins on its value instead of scanning every row and
/// filtering. A partitioned sender's `route(A, P, Slot, Part), Slot == S - S / 8 * 8` becomes
/// a lookup of one route. `None` when there is nothing to fold.
fn equalities_substituted(rule: &ir::Rule) -> Option<ir::Rule> {
    let mut rule = rule.clone();
    let mut folded = false;
    loop {
        let aggregate = rule.head.aggregate.as_ref().map(|aggregate| aggregate.var);
        let foldable = |var: ir::VarId, term: &Term| {
            Some(var) != rule.location
                && Some(var) != aggregate
                && !term.has_wildcard()
                && !mentions(term, var)
        };
        let found = rule.body.iter().enumerate().find_map(|(index, literal)| {
            let ir::Literal::Compare(comparison) = literal else {
                return None;
            };
            if comparison.op != CompareOp::Eq {
                return None;
            }
            match (&comparison.lhs, &comparison.rhs) {
                (Term::Var(var), term) if foldable(*var, term) => Some((index, *var, term.clone())),
                (term, Term::Var(var)) if foldable(*var, term) => Some((index, *var, term.clone())),
                _ => None,
            }
        });
        let Some((index, var, term)) = found else {
            break;
        };
        rule.body.remove(index);
        for literal in &mut rule.body {
            match literal {
                ir::Literal::Atom(atom) => {
                    for arg in &mut atom.args {
                        substitute(arg, var, &term);
                    }
                }
                ir::Literal::Compare(comparison) => {
                    substitute(&mut comparison.lhs, var, &term);
                    substitute(&mut comparison.rhs, var, &term);
                }
            }
        }
        for arg in &mut rule.head.args {
            substitute(arg, var, &term);
        }
        folded = true;
    }
    folded.then_some(rule)
}

fn mentions(term: &Term, var: ir::VarId) -> bool {
    let mut found = false;
    term.for_each_var(&mut |seen| found |= seen == var);
    found
}

/// Replaces every occurrence of `var` in `term` by `by`.
fn substitute(term: &mut Term, var: ir::VarId, by: &Term) {
    match term {
        Term::Var(seen) if *seen == var => *term = by.clone(),
        Term::Arith(_, lhs, rhs) => {
            substitute(lhs, var, by);
            substitute(rhs, var, by);
        }
        Term::Var(_) | Term::Wildcard | Term::Const(_) | Term::NamedConst(..) => {}
    }
}

/// The [`FiringPlan`] of a rule compiled with `witnesses` (per positive atom in body order,
/// the slot of each wildcard column).
fn firing_plan(
    rule: &ir::Rule,
    witnesses: &[Vec<(usize, usize)>],
    interner: &Interner,
) -> FiringPlan {
    let mut positives = Vec::new();
    let mut negated = Vec::new();
    for (_, atom) in rule.atoms() {
        if atom.negated {
            let pattern = atom
                .args
                .iter()
                .map(|arg| (!matches!(arg, Term::Wildcard)).then(|| Expr::of(arg, interner)))
                .collect();
            negated.push((atom.rel, atom.tick, pattern));
            continue;
        }
        let witnessed = witnesses
            .get(positives.len())
            .map_or(&[][..], Vec::as_slice);
        let columns = atom
            .args
            .iter()
            .enumerate()
            .map(
                |(column, arg)| match witnessed.iter().find(|(at, _)| *at == column) {
                    Some((_, slot)) => Expr::Slot(*slot),
                    None => Expr::of(arg, interner),
                },
            )
            .collect();
        positives.push((atom.rel, atom.tick, columns));
    }
    FiringPlan { positives, negated }
}

/// Places a positive atom after the steps so far. With `witness`, each wildcard column binds
/// a fresh hidden slot; those (column, slot) pairs are returned with the plan.
fn place_atom<'a>(
    atom: &'a ir::Atom,
    bound: &mut Vec<bool>,
    hidden: &mut usize,
    var_count: usize,
    pending: &mut Vec<Pending<'a>>,
    interner: &Interner,
    witness: bool,
) -> (AtomPlan, Vec<(usize, usize)>) {
    let mut key_columns = Vec::new();
    let mut key = Vec::new();
    let mut bind: Vec<(usize, usize)> = Vec::new();
    let mut check = Vec::new();
    let mut witnessed = Vec::new();
    for (column, arg) in atom.args.iter().enumerate() {
        match arg {
            Term::Wildcard if witness => {
                let slot = var_count + *hidden;
                *hidden += 1;
                bind.push((column, slot));
                witnessed.push((column, slot));
            }
            Term::Wildcard => {}
            Term::Var(var) if !bound.get(var.index()).copied().unwrap_or(false) => {
                if let Some((_, slot)) = bind.iter().find(|(_, slot)| *slot == var.index()) {
                    check.push((column, *slot));
                } else {
                    bind.push((column, var.index()));
                }
            }
            Term::Arith(..) if !arg.is_bound(bound) => {
                let slot = var_count + *hidden;
                *hidden += 1;
                bind.push((column, slot));
                let hidden_var = ir::VarId::from_index(slot);
                pending.push(Pending::Compare(
                    CompareOp::Eq,
                    Term::Var(hidden_var),
                    arg.clone(),
                ));
            }
            Term::Var(_) | Term::Arith(..) | Term::Const(_) | Term::NamedConst(..) => {
                key_columns.push(column);
                key.push(Expr::of(arg, interner));
            }
        }
    }
    for (_, slot) in &bind {
        if bound.len() <= *slot {
            bound.resize(*slot + 1, false);
        }
        bound[*slot] = true;
    }
    let plan = AtomPlan {
        rel: atom.rel,
        pinned: atom.tick,
        key_columns,
        key,
        bind,
        check,
    };
    (plan, witnessed)
}

/// The components of the same-tick graph in topological order (every relation a component
/// reads comes from an earlier component or the component itself).
pub(crate) fn components(program: &ir::Program, rules: &[RulePlan]) -> Vec<Component> {
    let count = program.relations.len();
    let mut graph: DiGraph<(), ()> = DiGraph::with_capacity(count, rules.len());
    for _ in 0..count {
        graph.add_node(());
    }
    for rule in rules.iter().filter(|rule| rule.kind == RuleKind::Deductive) {
        for (rel, _) in rule.reads() {
            if rel.index() < count && rule.head_rel.index() < count {
                graph.add_edge(
                    NodeIndex::new(rel.index()),
                    NodeIndex::new(rule.head_rel.index()),
                    (),
                );
            }
        }
    }
    let mut sccs = petgraph::algo::tarjan_scc(&graph);
    sccs.reverse();
    let mut component_of = vec![0_usize; count];
    for (index, scc) in sccs.iter().enumerate() {
        for node in scc {
            component_of[node.index()] = index;
        }
    }
    let mut components: Vec<Component> = sccs
        .iter()
        .map(|scc| {
            let mut relations: Vec<RelId> = scc
                .iter()
                .map(|node| RelId::from_index(node.index()))
                .collect();
            relations.sort();
            Component {
                relations,
                aggregates: Vec::new(),
                rules: Vec::new(),
                recursive: false,
            }
        })
        .collect();
    for (index, rule) in rules.iter().enumerate() {
        if rule.kind != RuleKind::Deductive {
            continue;
        }
        let Some(&component) = component_of.get(rule.head_rel.index()) else {
            continue;
        };
        let recursive = rule
            .reads()
            .any(|(rel, _)| component_of.get(rel.index()) == Some(&component));
        let entry = &mut components[component];
        if rule.aggregate.is_some() {
            entry.aggregates.push(index);
        } else {
            entry.rules.push(index);
        }
        entry.recursive |= recursive;
    }
    components
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The rules of a program written inline (it must check without errors).
    fn rules(text: &str) -> ir::Program {
        let mut reader = |_: &str| Ok::<String, String>(text.to_owned());
        let loaded =
            graft_language::loader::load_program(&["inline.graft".to_owned()], &mut reader);
        let checked = graft_compiler::check(&loaded.sources, &loaded.files);
        let errors: Vec<_> = loaded
            .diagnostics
            .iter()
            .chain(&checked.diagnostics)
            .filter(|diagnostic| diagnostic.is_error())
            .map(|diagnostic| diagnostic.message.clone())
            .collect();
        assert!(errors.is_empty(), "the program checks: {errors:?}");
        checked.program
    }

    const ROUTED: &str = "role a;
        input table route(at: a, slot: int, part: a);
        input req(at: a, s: int);
        table out(at: a, s: int, part: a);
        out(A, S, P) :- req(A, S), route(A, Slot, P), Slot == S - S / 8 * 8;";

    #[test]
    fn an_equality_on_a_variable_becomes_the_join_key_of_the_atom_reading_it() {
        let program = rules(ROUTED);
        let plans = compile_rules(&program, &Interner::new(BTreeSet::new())).expect("compiles");
        let rule = &plans[0];
        assert_eq!(
            rule.first.rel,
            program.rules[0].atoms().next().expect("req").1.rel
        );
        let [Step::Join(route)] = rule.steps.as_slice() else {
            panic!("one join and no comparison: {:?}", rule.steps);
        };
        // The location and the slot `S - S / 8 * 8`: one route per request, not a scan of all.
        assert_eq!(route.key_columns, vec![0, 1]);
        assert_eq!(route.bind.len(), 1, "only `P` is bound by the route");
    }

    #[test]
    fn a_traced_plan_keeps_the_comparison_and_its_variable() {
        let program = rules(ROUTED);
        let plans =
            compile_rules_traced(&program, &Interner::new(BTreeSet::new())).expect("compiles");
        let steps = &plans[0].steps;
        assert!(
            steps
                .iter()
                .any(|step| matches!(step, Step::Compare { .. })),
            "{steps:?}"
        );
    }

    #[test]
    fn an_aggregated_variable_is_not_folded() {
        let program = rules(
            "role a;
            input req(at: a, s: int, m: int);
            input table weight(at: a, n: int);
            table total(at: a, s: int, n: int);
            total(A, S, sum<N>) :- req(A, S, M), weight(A, N), N == M * 2;",
        );
        assert!(equalities_substituted(&program.rules[0]).is_none());
    }
}
