//! The abstract syntax tree of one source file, with byte spans on every node.
//!
//! The tree is close to the surface syntax (it is what `graft fmt` prints back), so it keeps
//! things the compiler does not care about, such as comments and the order of items. Meaning —
//! which relation an atom names, which variable is which, what type a column has — is decided
//! later, by the `compiler` crate's IR.
//!
//! Equality ignores nothing: to compare two trees "up to spans", compare their
//! [`SourceFile::without_spans`] forms.

use serde::Serialize;

use crate::span::{FileId, Span};

/// One parsed file: its items in source order, and its comments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceFile {
    pub file: FileId,
    pub items: Vec<Item>,
    /// Every comment in the file, in source order (the formatter puts them back).
    pub comments: Vec<Comment>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum CommentKind {
    /// `// ...` (also `/// ...`), up to the end of the line.
    Line,
    /// `/* ... */`.
    Block,
}

/// A comment, with its full text including the `//` or `/* */` delimiters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Comment {
    pub kind: CommentKind,
    pub text: String,
    pub span: Span,
}

/// A top-level statement. Every item ends with `;`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Item {
    /// `include "path";`
    Include(Include),
    /// A fact `rel(args)@N;` or a rule `head :- body;` (a fact is a rule with an empty body).
    Rule(Rule),
    /// `role coordinator;`
    Role(RoleDecl),
    /// `input`, `output`, `table`, `scratch` or `channel` relation declaration.
    Relation(RelationDecl),
    /// `const QUORUM = 2;`
    Const(ConstDecl),
    /// `never body;` a safety invariant.
    Never(Never),
    /// `require Q1 + Q2 > N;` an arithmetic requirement on constants.
    Require(Require),
    /// A statement that did not parse; its diagnostics were reported by the parser.
    Error(Span),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::Include(include) => include.span,
            Item::Rule(rule) => rule.span,
            Item::Role(role) => role.span,
            Item::Relation(relation) => relation.span,
            Item::Const(constant) => constant.span,
            Item::Never(never) => never.span,
            Item::Require(require) => require.span,
            Item::Error(span) => *span,
        }
    }
}

/// A name as written, with its span: a relation, role, column, constant or aggregate name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Include {
    /// The path as written, without quotes, escapes resolved.
    pub path: String,
    pub path_span: Span,
    pub span: Span,
}

/// `head :- body;`, `head@next :- body;`, `head@async :- body;`, a fact `head@N;`, or a
/// retraction `delete head@next :- body;`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Written with the `delete` keyword: the head is retracted from a `table` at the next tick.
    pub delete: Option<Span>,
    pub head: Head,
    /// Empty for a fact.
    pub body: Vec<BodyItem>,
    pub span: Span,
}

impl Rule {
    pub fn is_fact(&self) -> bool {
        self.body.is_empty()
    }
}

/// When the head of a rule holds, relative to the tick of the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum HeadTime {
    /// No suffix: deductive, same node and same tick.
    Now,
    /// `@next`: inductive, same node, next tick.
    Next,
    /// `@async`: sent to the node in the head's first column, arriving at a later tick.
    Async,
    /// `@N` on a fact: holds at tick N.
    Tick(u64),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Head {
    pub relation: Ident,
    pub args: Vec<HeadArg>,
    pub time: HeadTime,
    /// The span of the `@...` suffix, when there is one.
    pub time_span: Option<Span>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum HeadArg {
    Expr(Expr),
    /// `count<X>`, `sum<X>`, `min<X>`, `max<X>`: the other head columns are the group.
    Aggregate(Aggregate),
}

impl HeadArg {
    pub fn span(&self) -> Span {
        match self {
            HeadArg::Expr(expr) => expr.span(),
            HeadArg::Aggregate(aggregate) => aggregate.span,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Aggregate {
    /// The aggregate function's name as written (`count`, `max`, ...); checked by the compiler.
    pub function: Ident,
    /// The aggregated variable.
    pub variable: Ident,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum BodyItem {
    Atom(BodyAtom),
    /// `X != Y`, `Cnt2 > Cnt1 / 2`, ...
    Compare(Comparison),
}

impl BodyItem {
    pub fn span(&self) -> Span {
        match self {
            BodyItem::Atom(atom) => atom.span,
            BodyItem::Compare(comparison) => comparison.span,
        }
    }
}

/// `rel(args)`, `notin rel(args)`, or either pinned to a tick: `notin bcast(X, P)@1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BodyAtom {
    /// The span of the `notin` keyword when the atom is negated.
    pub negated: Option<Span>,
    pub relation: Ident,
    pub args: Vec<Expr>,
    /// `@N`: the atom reads the relation's contents at tick N rather than the current tick.
    pub tick: Option<(u64, Span)>,
    pub span: Span,
}

impl BodyAtom {
    pub fn is_negated(&self) -> bool {
        self.negated.is_some()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl CompareOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Gt => ">",
            CompareOp::Le => "<=",
            CompareOp::Ge => ">=",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Comparison {
    pub lhs: Expr,
    pub op: CompareOp,
    pub op_span: Span,
    pub rhs: Expr,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl ArithOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
        }
    }

    /// Binding strength: `*` and `/` bind tighter than `+` and `-`; all are left-associative.
    pub fn precedence(self) -> u8 {
        match self {
            ArithOp::Add | ArithOp::Sub => 1,
            ArithOp::Mul | ArithOp::Div => 2,
        }
    }
}

/// An argument or operand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Expr {
    /// A variable: starts with an upper-case letter, or with `_` followed by more characters.
    /// An upper-case name that matches a `const` declaration is that constant; the compiler
    /// decides which.
    Var(Ident),
    /// `_` on its own: matches anything, binds nothing.
    Wildcard(Span),
    Int(i64, Span),
    Str(String, Span),
    Bool(bool, Span),
    /// A bare lower-case identifier used as a value, as Molly allows; means the string of
    /// the same text.
    Symbol(Ident),
    Binary {
        op: ArithOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        span: Span,
    },
    /// `( expr )`, kept so that the formatter prints what was written.
    Paren(Box<Expr>, Span),
}

impl Expr {
    pub fn span(&self) -> Span {
        match self {
            Expr::Var(ident) | Expr::Symbol(ident) => ident.span,
            Expr::Wildcard(span)
            | Expr::Int(_, span)
            | Expr::Str(_, span)
            | Expr::Bool(_, span)
            | Expr::Binary { span, .. }
            | Expr::Paren(_, span) => *span,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RoleDecl {
    pub name: Ident,
    pub span: Span,
}

/// How a declared relation's facts live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Persistence {
    /// `table`: persists until retracted.
    Table,
    /// `scratch`: holds for one tick (the default for `input` and `output`).
    Scratch,
    /// `channel`: asynchronous messages, written only by `@async` rules; holds for the tick it
    /// arrives at.
    Channel,
}

/// `[input | output] [table | scratch | channel] name(col: type, ...) [key(col, ...)];`
/// At least one keyword is present; `input` and `output` alone mean a scratch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RelationDecl {
    /// `input`: fed from outside (workloads, topology); no rule derives it.
    pub input: Option<Span>,
    /// `output`: observable; what `graft run` shows and what versions are compared on.
    pub output: Option<Span>,
    /// The written persistence keyword, if any.
    pub persistence: Option<(Persistence, Span)>,
    pub name: Ident,
    pub columns: Vec<ColumnDecl>,
    /// `key(a, b)`: the named columns determine the others (a functional dependency).
    pub key: Option<KeyDecl>,
    pub span: Span,
}

impl RelationDecl {
    /// The persistence in force: the written one, or scratch.
    pub fn effective_persistence(&self) -> Persistence {
        self.persistence
            .map_or(Persistence::Scratch, |(persistence, _)| persistence)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ColumnDecl {
    pub name: Ident,
    /// `int`, `string`, `bool`, `node`, or a role name; resolved by the compiler.
    pub ty: Ident,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyDecl {
    pub columns: Vec<Ident>,
    pub span: Span,
}

/// `const NAME = value;` with an integer, string or boolean literal value (negative integers
/// allowed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConstDecl {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

/// `never body;`: the body must not hold at any tick. Its atoms may sit at different nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Never {
    pub body: Vec<BodyItem>,
    pub span: Span,
}

/// `require lhs op rhs;` over constants, e.g. `require Q1 + Q2 > N;`
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Require {
    pub condition: Comparison,
    pub span: Span,
}
