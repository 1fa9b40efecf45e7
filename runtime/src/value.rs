//! Rows as the dataflow carries them: small copyable values, strings interned per run.
//!
//! Every string a run can ever see is known before it starts: the program's constants, the
//! facts of the program and the workloads, and the node names of the configuration. Rules
//! never build new strings (arithmetic works on integers; aggregates return integers or
//! existing values). So each run interns all of them up front, sorted by their bytes, and a
//! string becomes its index: comparing two indexes compares the strings, and [`Val`] orders
//! exactly as [`ir::Value`] does (integers before strings before booleans). Every process of a
//! cluster builds the same table from the same inputs, so indexes agree across processes.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use graft_compiler::ir::{self, ArithOp, CompareOp, Value};
use serde::{Deserialize, Serialize};

/// One value of a row. The variant order matches [`ir::Value`]'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum Val {
    Int(i64),
    /// An index into the run's [`Interner`].
    Str(u32),
    Bool(bool),
}

impl Val {
    fn as_int(self) -> Option<i64> {
        match self {
            Val::Int(value) => Some(value),
            Val::Str(_) | Val::Bool(_) => None,
        }
    }
}

/// A fact's values (column 0 is its location), a join key (the location first), or a rule's
/// binding.
///
/// Hashing a row hashes only its first value, which for facts and keys is the location:
/// timely exchanges data by this hash, so all facts and all work of one node stay on one
/// worker, and only messages between nodes cross workers.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct Row(pub(crate) Vec<Val>);

impl Hash for Row {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.first().hash(state);
    }
}

impl Row {
    pub(crate) fn get(&self, index: usize) -> Option<Val> {
        self.0.get(index).copied()
    }
}

/// The strings of one run, sorted by their bytes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Interner {
    strings: Vec<Arc<str>>,
}

impl Interner {
    /// A table of exactly these strings.
    pub(crate) fn new(strings: BTreeSet<Arc<str>>) -> Interner {
        Interner {
            strings: strings.into_iter().collect(),
        }
    }

    /// The value of `value`; `None` for a string the run did not intern (it cannot occur in
    /// any fact, so whatever looks for it finds nothing).
    pub(crate) fn val(&self, value: &Value) -> Option<Val> {
        match value {
            Value::Int(number) => Some(Val::Int(*number)),
            Value::Bool(flag) => Some(Val::Bool(*flag)),
            Value::Str(text) => self.string(text).map(Val::Str),
        }
    }

    pub(crate) fn string(&self, text: &str) -> Option<u32> {
        self.strings
            .binary_search_by(|probe| probe.as_ref().cmp(text))
            .ok()
            .and_then(|index| u32::try_from(index).ok())
    }

    /// The value a [`Val`] stands for.
    pub(crate) fn value(&self, val: Val) -> Value {
        match val {
            Val::Int(number) => Value::Int(number),
            Val::Bool(flag) => Value::Bool(flag),
            Val::Str(index) => self
                .strings
                .get(index as usize)
                .map_or_else(|| Value::str(""), |text| Value::Str(text.clone())),
        }
    }

    /// The row of a fact's values; `None` if some string was not interned.
    pub(crate) fn row(&self, values: &[Value]) -> Option<Row> {
        values
            .iter()
            .map(|value| self.val(value))
            .collect::<Option<Vec<Val>>>()
            .map(Row)
    }
}

/// Adds every string in `value` to `strings`.
pub(crate) fn collect_string(value: &Value, strings: &mut BTreeSet<Arc<str>>) {
    if let Value::Str(text) = value {
        strings.insert(text.clone());
    }
}

/// Adds every string constant of `term` to `strings`.
pub(crate) fn collect_term_strings(term: &ir::Term, strings: &mut BTreeSet<Arc<str>>) {
    match term {
        ir::Term::Const(value) | ir::Term::NamedConst(_, value) => collect_string(value, strings),
        ir::Term::Arith(_, lhs, rhs) => {
            collect_term_strings(lhs, strings);
            collect_term_strings(rhs, strings);
        }
        ir::Term::Var(_) | ir::Term::Wildcard => {}
    }
}

/// A term over a binding's slots, with its constants interned.
#[derive(Clone, Debug)]
pub(crate) enum Expr {
    Slot(usize),
    Const(Val),
    /// A string constant that no fact of the run contains: nothing equals it.
    Missing,
    Arith(ArithOp, Box<Expr>, Box<Expr>),
}

impl Expr {
    /// The term as an expression over slots (variables are slots by their id).
    pub(crate) fn of(term: &ir::Term, interner: &Interner) -> Expr {
        match term {
            ir::Term::Var(var) => Expr::Slot(var.index()),
            ir::Term::Wildcard => Expr::Missing,
            ir::Term::Const(value) | ir::Term::NamedConst(_, value) => {
                interner.val(value).map_or(Expr::Missing, Expr::Const)
            }
            ir::Term::Arith(op, lhs, rhs) => Expr::Arith(
                *op,
                Box::new(Expr::of(lhs, interner)),
                Box::new(Expr::of(rhs, interner)),
            ),
        }
    }

    /// The value over `slots`; `None` when arithmetic fails (non-integer, division by zero,
    /// overflow) or a string constant is missing: the rule then does not fire.
    pub(crate) fn eval(&self, slots: &[Val]) -> Option<Val> {
        match self {
            Expr::Slot(slot) => slots.get(*slot).copied(),
            Expr::Const(value) => Some(*value),
            Expr::Missing => None,
            Expr::Arith(op, lhs, rhs) => {
                let lhs = lhs.eval(slots)?.as_int()?;
                let rhs = rhs.eval(slots)?.as_int()?;
                let result = match op {
                    ArithOp::Add => lhs.checked_add(rhs),
                    ArithOp::Sub => lhs.checked_sub(rhs),
                    ArithOp::Mul => lhs.checked_mul(rhs),
                    ArithOp::Div => {
                        if rhs == 0 {
                            None
                        } else {
                            lhs.checked_div(rhs)
                        }
                    }
                };
                result.map(Val::Int)
            }
        }
    }
}

/// A comparison as the language defines it (values of different kinds compare by the total
/// order of values, which a well-typed program never does).
pub(crate) fn compare(op: CompareOp, lhs: Val, rhs: Val) -> bool {
    match op {
        CompareOp::Eq => lhs == rhs,
        CompareOp::Ne => lhs != rhs,
        CompareOp::Lt => lhs < rhs,
        CompareOp::Gt => lhs > rhs,
        CompareOp::Le => lhs <= rhs,
        CompareOp::Ge => lhs >= rhs,
    }
}
