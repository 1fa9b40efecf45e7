//! The intermediate representation: a checked program with stable ids.
//!
//! Everything after checking — the reference evaluator, the timely runtime, the rewrites, LDFI —
//! reads this form, never the surface syntax. Names are resolved to ids, constants are folded to
//! [`Value`]s (remembering which `const` they came from), variables are numbered per rule, and
//! every part keeps its source span for diagnostics.
//!
//! Ids are stable for a given set of input files:
//! - [`RelId`] indexes [`Program::relations`], in order of first mention (declaration, head,
//!   body atom, fact or `never` atom) walking the files and their items in order;
//! - [`RuleId`] indexes [`Program::rules`], rules (not facts) in source order across files;
//! - [`VarId`] indexes a rule's (or invariant's) `var_names`, in order of first occurrence;
//! - [`RoleId`], [`ConstId`], [`NeverId`] index their tables in declaration order.
//!
//! A program built from files with errors is still a complete value: unknown relations get a
//! relation with [`RelationOrigin::Unknown`], constants that failed to evaluate have no value,
//! and so on. Consumers must refuse to *run* a program whose check reported errors.

use std::fmt;
use std::sync::Arc;

use graft_language::span::Span;
use indexmap::IndexMap;
use serde::{Serialize, Serializer};

pub use graft_language::ast::{ArithOp, CompareOp};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub u32);

        impl $name {
            /// The id as an index into its table.
            pub fn index(self) -> usize {
                self.0 as usize
            }

            /// The id of the `index`-th entry of its table.
            pub fn from_index(index: usize) -> $name {
                $name(u32::try_from(index).unwrap_or(u32::MAX))
            }
        }
    };
}

id_type!(
    /// Index into [`Program::relations`].
    RelId
);
id_type!(
    /// Index into [`Program::rules`].
    RuleId
);
id_type!(
    /// Index into a rule's or invariant's `var_names`.
    VarId
);
id_type!(
    /// Index into [`Program::roles`].
    RoleId
);
id_type!(
    /// Index into [`Program::consts`].
    ConstId
);
id_type!(
    /// Index into [`Program::nevers`].
    NeverId
);

/// A run-time value: a constant in a program, or a field of a fact.
///
/// Node names are strings. The order is total (`Int < Str < Bool` across kinds, which a
/// well-typed program never compares), so values can key ordered maps.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    Int(i64),
    Str(Arc<str>),
    Bool(bool),
}

impl Value {
    /// A string value.
    pub fn str(text: &str) -> Value {
        Value::Str(Arc::from(text))
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(value) => Some(*value),
            Value::Str(_) | Value::Bool(_) => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(text) => Some(text),
            Value::Int(_) | Value::Bool(_) => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(value) => Some(*value),
            Value::Int(_) | Value::Str(_) => None,
        }
    }

    /// The name of this value's kind, for messages: `int`, `string` or `bool`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Str(_) => "string",
            Value::Bool(_) => "bool",
        }
    }

    /// Whether the value may stand in a column of type `ty` (strings fit `string`, `node` and
    /// role columns).
    pub fn fits(&self, ty: Type) -> bool {
        matches!(
            (self, ty),
            (Value::Int(_), Type::Int | Type::Unknown)
                | (
                    Value::Str(_),
                    Type::String | Type::Node | Type::Role(_) | Type::Unknown
                )
                | (Value::Bool(_), Type::Bool | Type::Unknown)
        )
    }
}

/// Values print as they are written in the surface language (strings quoted and escaped).
impl fmt::Display for Value {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(value) => write!(formatter, "{value}"),
            Value::Bool(value) => write!(formatter, "{value}"),
            Value::Str(text) => {
                formatter.write_str("\"")?;
                for character in text.chars() {
                    match character {
                        '"' => formatter.write_str("\\\"")?,
                        '\\' => formatter.write_str("\\\\")?,
                        other => write!(formatter, "{other}")?,
                    }
                }
                formatter.write_str("\"")
            }
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, formatter)
    }
}

/// Serialised as the plain JSON value (number, string or boolean).
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Int(value) => serializer.serialize_i64(*value),
            Value::Str(text) => serializer.serialize_str(text),
            Value::Bool(value) => serializer.serialize_bool(*value),
        }
    }
}

/// The type of a column, variable or constant.
///
/// Types of undeclared relations are inferred from constants, declarations and shared
/// variables. A column whose type inference could not decide becomes `String` (the type of
/// Molly's bare symbols), except the first column of a relation, which is always a `Node`.
/// `Unknown` appears only while inference runs, and in relations that could not be resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Type {
    Int,
    String,
    Bool,
    /// Any node.
    Node,
    /// A node of a declared role.
    Role(RoleId),
    Unknown,
}

/// How a relation's facts live from one tick to the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Persistence {
    /// `table`: persists until retracted by a `delete` rule.
    Table,
    /// `scratch` (and every undeclared relation): holds for one tick. A Dedalus persistence
    /// rule may still carry it forward; see [`Relation::persistence_rules`].
    Scratch,
    /// `channel`: asynchronous messages, written only by `@async` rules; holds for the tick
    /// it arrives at.
    Channel,
}

/// Where a relation came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RelationOrigin {
    /// Declared with `input`/`output`/`table`/`scratch`/`channel`.
    Declared,
    /// Not declared; derived by a rule or given facts, with inferred column types.
    Inferred,
    /// Built into the language (`crash`).
    Builtin,
    /// Mentioned only in rule bodies or invariants: an error (E0201) was reported.
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Column {
    /// The declared name, or `c0`, `c1`, ... for undeclared relations.
    pub name: String,
    pub ty: Type,
    /// Where the type comes from: the declared type, or the use that fixed the inferred one.
    pub ty_span: Option<Span>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Relation {
    pub id: RelId,
    pub name: String,
    /// Column 0 is the location (the node holding the fact).
    pub columns: Vec<Column>,
    /// Fed from outside (declared `input`, or the built-in `crash`); no rule derives it.
    pub input: bool,
    /// Declared `output`: what runs show and what versions are compared on.
    pub output: bool,
    pub persistence: Persistence,
    /// Dedalus persistence rules `p(..)@next :- p(..), [notin guards];` that carry this
    /// relation forward (found by the analysis; they are ordinary rules for evaluation).
    pub persistence_rules: Vec<RuleId>,
    /// `key(...)`: indices of the columns that determine the others.
    pub key: Option<Vec<usize>>,
    pub origin: RelationOrigin,
    /// The declaration, or the first mention of an undeclared relation.
    pub span: Span,
}

impl Relation {
    pub fn arity(&self) -> usize {
        self.columns.len()
    }

    pub fn is_declared(&self) -> bool {
        self.origin == RelationOrigin::Declared
    }

    /// Persists across ticks: a `table`, or carried forward by a Dedalus persistence rule.
    pub fn is_persisted(&self) -> bool {
        self.persistence == Persistence::Table || !self.persistence_rules.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Role {
    pub id: RoleId,
    pub name: String,
    pub span: Span,
}

/// `const NAME = value;`
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Const {
    pub id: ConstId,
    pub name: String,
    /// The folded value; `None` when evaluating the declaration failed (an error was reported).
    pub value: Option<Value>,
    /// The value expression as written, over earlier constants (rewrites may re-evaluate it).
    pub expr: Term,
    pub span: Span,
}

/// An argument or operand.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Term {
    Var(VarId),
    /// `_`: matches anything and binds nothing (only in body atoms).
    Wildcard,
    /// A literal (`3`, `"a"`, `true`, or a bare lower-case symbol, which is a string).
    Const(Value),
    /// A reference to a `const`, with the value it had when the program was checked.
    NamedConst(ConstId, Value),
    Arith(ArithOp, Box<Term>, Box<Term>),
}

impl Term {
    /// The constant value of this term, when it is a literal or a named constant.
    pub fn as_const(&self) -> Option<&Value> {
        match self {
            Term::Const(value) | Term::NamedConst(_, value) => Some(value),
            Term::Var(_) | Term::Wildcard | Term::Arith(..) => None,
        }
    }

    pub fn as_var(&self) -> Option<VarId> {
        match self {
            Term::Var(var) => Some(*var),
            Term::Wildcard | Term::Const(_) | Term::NamedConst(..) | Term::Arith(..) => None,
        }
    }

    /// Calls `visit` on every variable in the term, left to right.
    pub fn for_each_var(&self, visit: &mut impl FnMut(VarId)) {
        match self {
            Term::Var(var) => visit(*var),
            Term::Arith(_, lhs, rhs) => {
                lhs.for_each_var(visit);
                rhs.for_each_var(visit);
            }
            Term::Wildcard | Term::Const(_) | Term::NamedConst(..) => {}
        }
    }

    /// Whether every variable of the term is marked in `bound` (indexed by [`VarId`]); a
    /// wildcard binds nothing and needs nothing, so it counts as bound. Join planners use it.
    pub fn is_bound(&self, bound: &[bool]) -> bool {
        let mut all = true;
        self.for_each_var(&mut |var| {
            if !bound.get(var.index()).copied().unwrap_or(false) {
                all = false;
            }
        });
        all
    }

    /// Whether a `_` occurs anywhere in the term.
    pub fn has_wildcard(&self) -> bool {
        match self {
            Term::Wildcard => true,
            Term::Arith(_, lhs, rhs) => lhs.has_wildcard() || rhs.has_wildcard(),
            Term::Var(_) | Term::Const(_) | Term::NamedConst(..) => false,
        }
    }

    /// Evaluates the term, reading variables through `var` and constants through `constant`.
    pub fn eval(
        &self,
        var: &dyn Fn(VarId) -> Option<Value>,
        constant: &dyn Fn(ConstId) -> Option<Value>,
    ) -> Result<Value, EvalError> {
        match self {
            Term::Var(id) => var(*id).ok_or(EvalError::Unbound),
            Term::Wildcard => Err(EvalError::Unbound),
            Term::Const(value) => Ok(value.clone()),
            Term::NamedConst(id, _) => constant(*id).ok_or(EvalError::Unbound),
            Term::Arith(op, lhs, rhs) => {
                let lhs = lhs.eval(var, constant)?;
                let rhs = rhs.eval(var, constant)?;
                eval_arith(*op, &lhs, &rhs)
            }
        }
    }
}

/// Why evaluating a term failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum EvalError {
    /// A variable or constant had no value.
    Unbound,
    /// Arithmetic on a non-integer.
    NotAnInt,
    DivisionByZero,
    Overflow,
}

impl fmt::Display for EvalError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            EvalError::Unbound => "a value is missing",
            EvalError::NotAnInt => "arithmetic on a value that is not an int",
            EvalError::DivisionByZero => "division by zero",
            EvalError::Overflow => "integer overflow",
        })
    }
}

/// Integer arithmetic as the language defines it: checked, `/` truncates toward zero.
pub fn eval_arith(op: ArithOp, lhs: &Value, rhs: &Value) -> Result<Value, EvalError> {
    let (Some(lhs), Some(rhs)) = (lhs.as_int(), rhs.as_int()) else {
        return Err(EvalError::NotAnInt);
    };
    let result = match op {
        ArithOp::Add => lhs.checked_add(rhs),
        ArithOp::Sub => lhs.checked_sub(rhs),
        ArithOp::Mul => lhs.checked_mul(rhs),
        ArithOp::Div => {
            if rhs == 0 {
                return Err(EvalError::DivisionByZero);
            }
            lhs.checked_div(rhs)
        }
    };
    result.map(Value::Int).ok_or(EvalError::Overflow)
}

/// Compares two values with a comparison operator (values of different kinds compare by the
/// total order of [`Value`]; a well-typed program never does that). Generic so that engines
/// with their own value representation (the timely runtime's interned values) share it.
pub fn eval_compare<T: Ord + ?Sized>(op: CompareOp, lhs: &T, rhs: &T) -> bool {
    match op {
        CompareOp::Eq => lhs == rhs,
        CompareOp::Ne => lhs != rhs,
        CompareOp::Lt => lhs < rhs,
        CompareOp::Gt => lhs > rhs,
        CompareOp::Le => lhs <= rhs,
        CompareOp::Ge => lhs >= rhs,
    }
}

/// The kind of a rule, from its head's time suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// `head :- body;` same node, same tick, evaluated to fixpoint.
    Deductive,
    /// `head@next :- body;` same node, next tick.
    Next,
    /// `head@async :- body;` sent to the head's location, arriving at a later tick.
    Async,
    /// `delete head@next :- body;` removes the head fact from a `table` from the next tick on
    /// (an insert at the same tick wins).
    Delete,
}

impl RuleKind {
    /// Whether the head holds at a later tick than the body (not evaluated to fixpoint).
    pub fn is_temporal(self) -> bool {
        !matches!(self, RuleKind::Deductive)
    }
}

/// `count`, `sum`, `min`, `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AggFunc {
    Count,
    Sum,
    Min,
    Max,
}

impl AggFunc {
    pub fn parse(name: &str) -> Option<AggFunc> {
        match name {
            "count" => Some(AggFunc::Count),
            "sum" => Some(AggFunc::Sum),
            "min" => Some(AggFunc::Min),
            "max" => Some(AggFunc::Max),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AggFunc::Count => "count",
            AggFunc::Sum => "sum",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
        }
    }
}

/// `count<X>` in head column `column`; the other head columns are the group.
/// In [`HeadAtom::args`] that column holds `Term::Var(var)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeadAggregate {
    pub column: usize,
    pub func: AggFunc,
    pub var: VarId,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeadAtom {
    pub rel: RelId,
    pub args: Vec<Term>,
    /// The span of each argument as written.
    pub arg_spans: Vec<Span>,
    pub aggregate: Option<HeadAggregate>,
    /// The span of the `@next`/`@async` suffix, when written.
    pub time_span: Option<Span>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Atom {
    pub rel: RelId,
    pub args: Vec<Term>,
    pub arg_spans: Vec<Span>,
    /// `notin`.
    pub negated: bool,
    /// `@N`: reads the relation's contents at tick N instead of the current tick.
    pub tick: Option<u64>,
    pub span: Span,
}

impl Atom {
    /// How many arguments are known before the atom is joined, given the bound variables:
    /// constants and fully bound variables or expressions (not wildcards). Join planners pick
    /// the atom with the most.
    pub fn bound_columns(&self, bound: &[bool]) -> usize {
        self.args
            .iter()
            .filter(|arg| match arg {
                Term::Wildcard => false,
                Term::Const(_) | Term::NamedConst(..) => true,
                Term::Var(_) | Term::Arith(..) => arg.is_bound(bound),
            })
            .count()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Comparison {
    pub op: CompareOp,
    pub lhs: Term,
    pub rhs: Term,
    pub span: Span,
}

/// A body element.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Literal {
    Atom(Atom),
    Compare(Comparison),
}

impl Literal {
    pub fn span(&self) -> Span {
        match self {
            Literal::Atom(atom) => atom.span,
            Literal::Compare(comparison) => comparison.span,
        }
    }

    pub fn as_atom(&self) -> Option<&Atom> {
        match self {
            Literal::Atom(atom) => Some(atom),
            Literal::Compare(_) => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub id: RuleId,
    pub kind: RuleKind,
    pub head: HeadAtom,
    pub body: Vec<Literal>,
    /// Variable names by [`VarId`].
    pub var_names: Vec<String>,
    /// The body's location variable: the first argument of its atoms (`None` when the body
    /// has no atom or its first atom's location is not a variable, both errors).
    pub location: Option<VarId>,
    pub span: Span,
}

impl Rule {
    /// The body's atoms, with their positions in [`Rule::body`].
    pub fn atoms(&self) -> impl Iterator<Item = (usize, &Atom)> {
        self.body
            .iter()
            .enumerate()
            .filter_map(|(index, literal)| literal.as_atom().map(|atom| (index, atom)))
    }

    pub fn var_name(&self, var: VarId) -> &str {
        self.var_names.get(var.index()).map_or("?", String::as_str)
    }
}

/// A fact `rel(values)@tick;` from a program or workload file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fact {
    pub rel: RelId,
    pub values: Vec<Value>,
    /// The tick it holds at (1 when not written).
    pub tick: u64,
    pub span: Span,
}

/// `never body;`: a safety invariant; its atoms may sit at different nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Never {
    pub id: NeverId,
    pub body: Vec<Literal>,
    pub var_names: Vec<String>,
    pub span: Span,
}

/// `require lhs op rhs;` over constants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Require {
    pub op: CompareOp,
    /// Built only from [`Term::Const`], [`Term::NamedConst`] and [`Term::Arith`].
    pub lhs: Term,
    pub rhs: Term,
    pub span: Span,
}

impl Require {
    /// Evaluates the condition with the constants given by `constant` (e.g. a rewrite's new
    /// quorum sizes); `None` for a constant means "use the declared value".
    pub fn eval(
        &self,
        program: &Program,
        constant: &dyn Fn(ConstId) -> Option<Value>,
    ) -> Result<bool, EvalError> {
        let lookup = |id: ConstId| {
            constant(id).or_else(|| program.consts.get(id.index()).and_then(|c| c.value.clone()))
        };
        let no_vars = |_: VarId| None;
        let lhs = self.lhs.eval(&no_vars, &lookup)?;
        let rhs = self.rhs.eval(&no_vars, &lookup)?;
        Ok(eval_compare(self.op, &lhs, &rhs))
    }
}

/// A whole program: every file given to the checker, merged.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Program {
    pub roles: Vec<Role>,
    pub consts: Vec<Const>,
    pub relations: Vec<Relation>,
    pub rules: Vec<Rule>,
    pub facts: Vec<Fact>,
    pub nevers: Vec<Never>,
    pub requires: Vec<Require>,
    #[serde(skip)]
    pub(crate) relation_index: IndexMap<String, RelId>,
    #[serde(skip)]
    pub(crate) role_index: IndexMap<String, RoleId>,
    #[serde(skip)]
    pub(crate) const_index: IndexMap<String, ConstId>,
}

/// Why a fact does not fit its program (the checker prevents both for checked facts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FactMismatch {
    /// The fact names a relation id the program does not have.
    UnknownRelation { rel: RelId },
    /// The fact has the wrong number of values.
    Arity {
        relation: String,
        expected: usize,
        found: usize,
    },
}

impl Program {
    /// The relation of `fact`, when the fact fits it (known relation, right arity). Engines
    /// call this on workload facts before running them.
    pub fn fact_relation(&self, fact: &Fact) -> Result<&Relation, FactMismatch> {
        let relation = self
            .relations
            .get(fact.rel.index())
            .ok_or(FactMismatch::UnknownRelation { rel: fact.rel })?;
        if relation.arity() != fact.values.len() {
            return Err(FactMismatch::Arity {
                relation: relation.name.clone(),
                expected: relation.arity(),
                found: fact.values.len(),
            });
        }
        Ok(relation)
    }

    pub fn relation(&self, id: RelId) -> &Relation {
        &self.relations[id.index()]
    }

    pub fn rule(&self, id: RuleId) -> &Rule {
        &self.rules[id.index()]
    }

    pub fn relation_by_name(&self, name: &str) -> Option<RelId> {
        self.relation_index.get(name).copied()
    }

    pub fn role_by_name(&self, name: &str) -> Option<RoleId> {
        self.role_index.get(name).copied()
    }

    pub fn const_by_name(&self, name: &str) -> Option<ConstId> {
        self.const_index.get(name).copied()
    }

    /// The rules whose head is `rel`, in source order.
    pub fn rules_deriving(&self, rel: RelId) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(move |rule| rule.head.rel == rel)
    }

    /// A type as written in the surface language (`int`, `node`, a role name, ...).
    pub fn type_name(&self, ty: Type) -> String {
        match ty {
            Type::Int => "int".to_owned(),
            Type::String => "string".to_owned(),
            Type::Bool => "bool".to_owned(),
            Type::Node => "node".to_owned(),
            Type::Role(role) => self
                .roles
                .get(role.index())
                .map_or_else(|| "?".to_owned(), |role| role.name.clone()),
            Type::Unknown => "unknown".to_owned(),
        }
    }

    /// Evaluates every `require` with the given constant assignment (missing entries use the
    /// declared values): for each condition, whether it holds.
    pub fn eval_requires(
        &self,
        constant: &dyn Fn(ConstId) -> Option<Value>,
    ) -> Vec<Result<bool, EvalError>> {
        self.requires
            .iter()
            .map(|require| require.eval(self, constant))
            .collect()
    }
}
