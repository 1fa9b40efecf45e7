//! Type inference and type checking over the IR, by union-find.
//!
//! Every relation column and every rule variable is a slot; an argument unifies its variable's
//! slot with its column's slot, constants and declarations fix a slot's type, arithmetic
//! forces ints. A conflict is reported with labels at the uses that fixed each side, and the
//! two slots stay apart so that one mistake is reported once.
//!
//! String literals (and Molly's bare symbols) are "text": they fit `string`, `node` and role
//! columns, so a Molly program that writes node names as strings types without declarations.
//! After inference, an undecided column becomes `string`, except a first column, which is a
//! `node` (see [`ir::Type`]).

use graft_language::diagnostic::Diagnostic;
use graft_language::span::{FileId, Span};

use crate::codes;
use crate::ir::{self, AggFunc, RelId, RoleId, Term, Type, Value, VarId};

/// A type during inference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Infer {
    Unknown,
    /// A string literal: fits `string`, `node` or a role.
    Text,
    Int,
    Bool,
    Str,
    Node,
    Role(RoleId),
    /// The location of a relation first met in a Molly file: a node, unless its uses make it
    /// an `int` (Molly's Chord locates facts at ring positions).
    Location,
}

impl Infer {
    fn from_type(ty: Type) -> Infer {
        match ty {
            Type::Int => Infer::Int,
            Type::String => Infer::Str,
            Type::Bool => Infer::Bool,
            Type::Node => Infer::Node,
            Type::Role(role) => Infer::Role(role),
            Type::Unknown => Infer::Unknown,
        }
    }

    fn of_value(value: &Value) -> Infer {
        match value {
            Value::Int(_) => Infer::Int,
            Value::Str(_) => Infer::Text,
            Value::Bool(_) => Infer::Bool,
        }
    }

    /// The least type fitting both, or `None` when they conflict. With `widen_roles`, two
    /// different roles meet at `node` instead of conflicting: that is how a `node` column, or a
    /// column of an undeclared relation (Molly's `pre`, `post`), holds nodes of several roles.
    fn join(self, other: Infer, widen_roles: bool) -> Option<Infer> {
        use Infer::{Bool, Int, Location, Node, Role, Str, Text, Unknown};
        match (self, other) {
            (Role(a), Role(b)) if a != b && widen_roles => Some(Node),
            (Unknown, x) | (x, Unknown) => Some(x),
            (Location, Location) => Some(Location),
            (Location, Int) | (Int, Location) => Some(Int),
            (Location, Text | Str | Node) | (Text | Str | Node, Location) => Some(Node),
            (Location, Role(role)) | (Role(role), Location) => Some(Role(role)),
            (Text, x @ (Text | Str | Node | Role(_))) | (x @ (Str | Node | Role(_)), Text) => {
                Some(x)
            }
            (Node, Role(role)) | (Role(role), Node) => Some(Role(role)),
            (Role(a), Role(b)) => (a == b).then_some(Role(a)),
            (Int, Int) => Some(Int),
            (Bool, Bool) => Some(Bool),
            (Str, Str) => Some(Str),
            (Node, Node) => Some(Node),
            _ => None,
        }
    }

    fn name(self, program: &ir::Program) -> String {
        match self {
            Infer::Unknown => "unknown".to_owned(),
            Infer::Text | Infer::Str => "string".to_owned(),
            Infer::Int => "int".to_owned(),
            Infer::Bool => "bool".to_owned(),
            Infer::Node | Infer::Location => "node".to_owned(),
            Infer::Role(role) => program.type_name(Type::Role(role)),
        }
    }
}

#[derive(Clone, Debug)]
struct Slot {
    parent: u32,
    ty: Infer,
    /// Where the type came from, and why.
    origin: Option<(Span, String)>,
}

/// The two sides of a failed unification.
struct Conflict {
    left: (Infer, Option<(Span, String)>),
    right: (Infer, Option<(Span, String)>),
}

struct Inference<'p> {
    program: &'p ir::Program,
    slots: Vec<Slot>,
    /// First slot of each relation's columns.
    column_base: Vec<u32>,
    diagnostics: Vec<Diagnostic>,
}

/// Infers column types, writes them into the program, and returns the type errors.
///
/// The first column of a relation is its location, a node — except for a relation first met
/// in a Molly file (`molly_files`), whose location may hold any value, as in Molly (Chord
/// locates facts at integer ring positions): it is a node unless its uses make it an `int`.
pub(crate) fn infer(program: &mut ir::Program, molly_files: &[FileId]) -> Vec<Diagnostic> {
    let (types, origins, diagnostics) = {
        let mut inference = Inference::new(program, molly_files);
        for rule in &program.rules {
            inference.rule(rule);
        }
        for fact in &program.facts {
            inference.fact(fact);
        }
        for never in &program.nevers {
            let base = inference.fresh_vars(never.var_names.len());
            inference.body(&never.body, base);
        }
        inference.column_types()
    };
    for (relation, (types, origins)) in program
        .relations
        .iter_mut()
        .zip(types.into_iter().zip(origins))
    {
        for ((column, ty), origin) in relation.columns.iter_mut().zip(types).zip(origins) {
            column.ty = ty;
            if column.ty_span.is_none() {
                column.ty_span = origin;
            }
        }
    }
    diagnostics
}

impl<'p> Inference<'p> {
    fn new(program: &'p ir::Program, molly_files: &[FileId]) -> Inference<'p> {
        let mut inference = Inference {
            program,
            slots: Vec::new(),
            column_base: Vec::with_capacity(program.relations.len()),
            diagnostics: Vec::new(),
        };
        for relation in &program.relations {
            inference.column_base.push(inference.slots.len() as u32);
            for (index, column) in relation.columns.iter().enumerate() {
                let (ty, origin) = match relation.origin {
                    ir::RelationOrigin::Declared => (
                        Infer::from_type(column.ty),
                        column.ty_span.map(|span| {
                            (
                                span,
                                format!("declared `{}` here", program.type_name(column.ty)),
                            )
                        }),
                    ),
                    ir::RelationOrigin::Builtin => (Infer::from_type(column.ty), None),
                    ir::RelationOrigin::Inferred
                        if index == 0 && molly_files.contains(&relation.span.file) =>
                    {
                        (
                            Infer::Location,
                            Some((
                                relation.span,
                                format!(
                                    "the first column of `{}` is its location, a node or (in Molly's dialect) an int",
                                    relation.name
                                ),
                            )),
                        )
                    }
                    ir::RelationOrigin::Inferred if index == 0 => (
                        Infer::Node,
                        Some((
                            relation.span,
                            format!(
                                "the first column of `{}` is its location, a node",
                                relation.name
                            ),
                        )),
                    ),
                    ir::RelationOrigin::Inferred | ir::RelationOrigin::Unknown => {
                        (Infer::Unknown, None)
                    }
                };
                inference.push(ty, origin);
            }
        }
        inference
    }

    fn push(&mut self, ty: Infer, origin: Option<(Span, String)>) -> u32 {
        let id = self.slots.len() as u32;
        self.slots.push(Slot {
            parent: id,
            ty,
            origin,
        });
        id
    }

    fn fresh_vars(&mut self, count: usize) -> u32 {
        let base = self.slots.len() as u32;
        for _ in 0..count {
            self.push(Infer::Unknown, None);
        }
        base
    }

    fn find(&mut self, mut slot: u32) -> u32 {
        while self.slots[slot as usize].parent != slot {
            let grandparent = self.slots[self.slots[slot as usize].parent as usize].parent;
            self.slots[slot as usize].parent = grandparent;
            slot = grandparent;
        }
        slot
    }

    fn unify(&mut self, a: u32, b: u32) -> Result<(), Conflict> {
        self.unify_with(a, b, false)
    }

    /// Unifies two slots; `widen_roles` lets different roles meet at `node` (see
    /// [`Infer::join`]).
    fn unify_with(&mut self, a: u32, b: u32, widen_roles: bool) -> Result<(), Conflict> {
        let (a, b) = (self.find(a), self.find(b));
        if a == b {
            return Ok(());
        }
        let (left, right) = (&self.slots[a as usize], &self.slots[b as usize]);
        let Some(joined) = left.ty.join(right.ty, widen_roles) else {
            return Err(Conflict {
                left: (left.ty, left.origin.clone()),
                right: (right.ty, right.origin.clone()),
            });
        };
        // The origin of the more specific side explains the joined type.
        let origin = if joined == left.ty && left.origin.is_some() {
            left.origin.clone()
        } else if right.origin.is_some() {
            right.origin.clone()
        } else {
            left.origin.clone()
        };
        self.slots[a as usize].parent = b;
        let root = &mut self.slots[b as usize];
        root.ty = joined;
        root.origin = origin;
        Ok(())
    }

    fn column(&self, rel: RelId, index: usize) -> Option<u32> {
        let relation = self.program.relations.get(rel.index())?;
        if relation.origin == ir::RelationOrigin::Unknown || index >= relation.arity() {
            return None;
        }
        Some(self.column_base[rel.index()] + index as u32)
    }

    fn conflict(&mut self, code: &'static str, span: Span, conflict: Conflict, what: &str) {
        let left = conflict.left.0.name(self.program);
        let right = conflict.right.0.name(self.program);
        let mut diagnostic = Diagnostic::error(
            code,
            format!("type mismatch: {what} is used both as `{left}` and as `{right}`"),
            span,
        )
        .with_primary_message(format!("`{left}` meets `{right}` here"));
        for (_, origin) in [conflict.left, conflict.right] {
            if let Some((origin_span, message)) = origin
                && origin_span != span
            {
                diagnostic = diagnostic.with_label(origin_span, message);
            }
        }
        self.diagnostics.push(diagnostic.with_help(
            "make both uses agree: change the declaration, the constant, or use a different variable",
        ));
    }

    /// The slot of a term (a fresh one for constants and arithmetic), or `None` for `_`.
    fn term(&mut self, term: &Term, var_base: u32, span: Span) -> Option<u32> {
        match term {
            Term::Var(var) => Some(var_base + var.0),
            Term::Wildcard => None,
            Term::Const(value) | Term::NamedConst(_, value) => Some(self.push(
                Infer::of_value(value),
                Some((span, format!("this is a `{}`", value.kind_name()))),
            )),
            Term::Arith(_, lhs, rhs) => {
                for operand in [lhs, rhs] {
                    if let Some(slot) = self.term(operand, var_base, span) {
                        let int =
                            self.push(Infer::Int, Some((span, "arithmetic needs ints".to_owned())));
                        if let Err(conflict) = self.unify(slot, int) {
                            self.arith_error(span, conflict);
                        }
                    }
                }
                Some(self.push(
                    Infer::Int,
                    Some((span, "arithmetic gives an int".to_owned())),
                ))
            }
        }
    }

    fn arith_error(&mut self, span: Span, conflict: Conflict) {
        let found = conflict.left.0.name(self.program);
        let mut diagnostic = Diagnostic::error(
            codes::ARITH_NOT_INT,
            format!("arithmetic on a `{found}`"),
            span,
        )
        .with_primary_message("`+ - * /` need ints");
        if let Some((origin_span, message)) = conflict.left.1 {
            diagnostic = diagnostic.with_label(origin_span, message);
        }
        self.diagnostics
            .push(diagnostic.with_help("use arithmetic only on int columns and constants"));
    }

    fn argument(&mut self, rel: RelId, index: usize, term: &Term, var_base: u32, span: Span) {
        let Some(column) = self.column(rel, index) else {
            return;
        };
        let Some(slot) = self.term(term, var_base, span) else {
            return;
        };
        // Columns of undeclared relations, and columns declared `node`, hold nodes of any role.
        let relation = self.program.relation(rel);
        let declared_node = matches!(
            relation.origin,
            ir::RelationOrigin::Declared | ir::RelationOrigin::Builtin
        ) && relation
            .columns
            .get(index)
            .is_some_and(|column| column.ty == Type::Node);
        if declared_node {
            // A declared `node` column accepts a node of any role without tying the role of
            // one use to another's: the term's class is checked (and, when nothing is known
            // of it yet, typed as a node), not merged with the column's.
            let root = self.find(slot);
            let column_root = self.find(column);
            let (ty, origin) = {
                let slot = &self.slots[root as usize];
                (slot.ty, slot.origin.clone())
            };
            match ty.join(Infer::Node, true) {
                Some(joined) => {
                    if joined != ty {
                        let column_origin = self.slots[column_root as usize].origin.clone();
                        let slot = &mut self.slots[root as usize];
                        slot.ty = joined;
                        slot.origin = column_origin.or(origin);
                    }
                }
                None => {
                    let conflict = Conflict {
                        left: (ty, origin),
                        right: (Infer::Node, self.slots[column_root as usize].origin.clone()),
                    };
                    let name = &self.program.relation(rel).name;
                    let column_name = &self.program.relation(rel).columns[index].name;
                    let what = format!("column `{column_name}` of `{name}`");
                    self.conflict(codes::TYPE_CONFLICT, span, conflict, &what);
                }
            }
            return;
        }
        let widen_roles = !relation.is_declared();
        if let Err(conflict) = self.unify_with(slot, column, widen_roles) {
            let name = &self.program.relation(rel).name;
            let column_name = &self.program.relation(rel).columns[index].name;
            let what = format!("column `{column_name}` of `{name}`");
            self.conflict(codes::TYPE_CONFLICT, span, conflict, &what);
        }
    }

    fn body(&mut self, body: &[ir::Literal], var_base: u32) {
        for literal in body {
            match literal {
                ir::Literal::Atom(atom) => {
                    for (index, (term, span)) in atom.args.iter().zip(&atom.arg_spans).enumerate() {
                        self.argument(atom.rel, index, term, var_base, *span);
                    }
                }
                ir::Literal::Compare(comparison) => {
                    let lhs = self.term(&comparison.lhs, var_base, comparison.span);
                    let rhs = self.term(&comparison.rhs, var_base, comparison.span);
                    if let (Some(lhs), Some(rhs)) = (lhs, rhs)
                        && let Err(conflict) = self.unify(lhs, rhs)
                    {
                        self.conflict(
                            codes::COMPARE_MISMATCH,
                            comparison.span,
                            conflict,
                            "this comparison",
                        );
                    }
                }
            }
        }
    }

    fn rule(&mut self, rule: &ir::Rule) {
        let base = self.fresh_vars(rule.var_names.len());
        self.body(&rule.body, base);
        let head = &rule.head;
        for (index, (term, span)) in head.args.iter().zip(&head.arg_spans).enumerate() {
            match &head.aggregate {
                Some(aggregate) if aggregate.column == index => {
                    self.aggregate(rule, aggregate, base);
                }
                _ => self.argument(head.rel, index, term, base, *span),
            }
        }
    }

    fn aggregate(&mut self, rule: &ir::Rule, aggregate: &ir::HeadAggregate, base: u32) {
        let var: VarId = aggregate.var;
        let var_slot = base + var.0;
        let column = self.column(rule.head.rel, aggregate.column);
        match aggregate.func {
            AggFunc::Count | AggFunc::Sum => {
                if aggregate.func == AggFunc::Sum {
                    let int = self.push(Infer::Int, None);
                    if let Err(conflict) = self.unify(var_slot, int) {
                        let found = conflict.left.0.name(self.program);
                        let mut diagnostic = Diagnostic::error(
                            codes::SUM_NOT_INT,
                            format!("`sum` over `{}`, which is a `{found}`", rule.var_name(var)),
                            aggregate.span,
                        )
                        .with_primary_message("sum needs ints");
                        if let Some((span, message)) = conflict.left.1 {
                            diagnostic = diagnostic.with_label(span, message);
                        }
                        self.diagnostics.push(
                            diagnostic
                                .with_help("sum an int variable, or use `count`, `min` or `max`"),
                        );
                    }
                }
                if let Some(column) = column {
                    let int = self.push(
                        Infer::Int,
                        Some((
                            aggregate.span,
                            format!("`{}` gives an int", aggregate.func.name()),
                        )),
                    );
                    if let Err(conflict) = self.unify(int, column) {
                        self.conflict(
                            codes::TYPE_CONFLICT,
                            aggregate.span,
                            conflict,
                            "this aggregate's column",
                        );
                    }
                }
            }
            AggFunc::Min | AggFunc::Max => {
                if let Some(column) = column
                    && let Err(conflict) = self.unify(var_slot, column)
                {
                    self.conflict(
                        codes::TYPE_CONFLICT,
                        aggregate.span,
                        conflict,
                        "this aggregate's column",
                    );
                }
            }
        }
    }

    fn fact(&mut self, fact: &ir::Fact) {
        for (index, value) in fact.values.iter().enumerate() {
            let Some(column) = self.column(fact.rel, index) else {
                continue;
            };
            let slot = self.push(
                Infer::of_value(value),
                Some((
                    fact.span,
                    format!("a `{}` value in this fact", value.kind_name()),
                )),
            );
            if let Err(conflict) = self.unify(slot, column) {
                let relation = self.program.relation(fact.rel);
                let what = format!(
                    "column `{}` of `{}`",
                    relation.columns[index].name, relation.name
                );
                self.conflict(codes::TYPE_CONFLICT, fact.span, conflict, &what);
            }
        }
    }

    /// Final column types and the spans that fixed them, and the diagnostics.
    #[expect(
        clippy::type_complexity,
        reason = "a private helper's tuple of parallel tables"
    )]
    fn column_types(mut self) -> (Vec<Vec<Type>>, Vec<Vec<Option<Span>>>, Vec<Diagnostic>) {
        let mut types = Vec::with_capacity(self.program.relations.len());
        let mut origins = Vec::with_capacity(self.program.relations.len());
        for relation in &self.program.relations {
            let base = self.column_base[relation.id.index()];
            let mut relation_types = Vec::with_capacity(relation.arity());
            let mut relation_origins = Vec::with_capacity(relation.arity());
            for index in 0..relation.arity() {
                let root = self.find(base + index as u32);
                let slot = &self.slots[root as usize];
                let ty = match (slot.ty, relation.origin) {
                    (_, ir::RelationOrigin::Unknown) => Type::Unknown,
                    // A declared column keeps its declared type even when a use conflicts.
                    (_, ir::RelationOrigin::Declared | ir::RelationOrigin::Builtin) => {
                        relation.columns[index].ty
                    }
                    (Infer::Int, _) => Type::Int,
                    (Infer::Bool, _) => Type::Bool,
                    (Infer::Node | Infer::Location, _) => Type::Node,
                    (Infer::Role(role), _) => Type::Role(role),
                    (Infer::Unknown | Infer::Text, _) if index == 0 => Type::Node,
                    (Infer::Str | Infer::Unknown | Infer::Text, _) => Type::String,
                };
                relation_types.push(ty);
                relation_origins.push(slot.origin.as_ref().map(|(span, _)| *span));
            }
            types.push(relation_types);
            origins.push(relation_origins);
        }
        (types, origins, self.diagnostics)
    }
}
