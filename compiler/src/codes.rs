//! The diagnostic codes the compiler emits, each with its one-line meaning.
//!
//! `docs/diagnostics.md` documents the same list; a test checks that every code here is
//! produced by some test program.

/// Unknown relation (with a "did you mean").
pub const UNKNOWN_RELATION: &str = "E0201";
/// An atom's number of arguments differs from the relation's arity.
pub const ARITY_MISMATCH: &str = "E0202";
/// A relation declared twice (or the built-in `crash` declared).
pub const DUPLICATE_RELATION: &str = "E0203";
/// A column type that is neither a built-in type nor a declared role.
pub const UNKNOWN_TYPE: &str = "E0204";
/// A role declared twice.
pub const DUPLICATE_ROLE: &str = "E0205";
/// An aggregate function other than count, sum, min, max.
pub const UNKNOWN_AGGREGATE: &str = "E0206";
/// `key(...)` names a column the relation does not have.
pub const UNKNOWN_KEY_COLUMN: &str = "E0207";
/// A const declared twice.
pub const DUPLICATE_CONST: &str = "E0208";
/// A name in a `require` or `const` value that is not a declared const.
pub const UNKNOWN_CONST: &str = "E0209";
/// Two columns of one declaration with the same name.
pub const DUPLICATE_COLUMN: &str = "E0210";
/// A relation without columns (it has no location).
pub const NO_LOCATION_COLUMN: &str = "E0211";
/// An aggregate where none is allowed (a second one, the location column, a fact).
pub const MISPLACED_AGGREGATE: &str = "E0212";
/// A `require` condition is false for the declared constants.
pub const REQUIRE_FAILED: &str = "E0213";
/// A facts file holds something other than facts.
pub const NOT_A_FACT: &str = "E0214";

/// Two uses of one column or variable need different types.
pub const TYPE_CONFLICT: &str = "E0301";
/// `sum<X>` over a variable that is not an int.
pub const SUM_NOT_INT: &str = "E0302";
/// A comparison between values of different types.
pub const COMPARE_MISMATCH: &str = "E0303";
/// Arithmetic on a value that is not an int.
pub const ARITH_NOT_INT: &str = "E0304";
/// A fact value that does not fit its column's type.
pub const FACT_TYPE: &str = "E0305";
/// A constant expression that cannot be evaluated (division by zero, overflow).
pub const CONST_EVAL: &str = "E0306";

/// A head variable not bound by a positive body atom.
pub const UNBOUND_HEAD_VAR: &str = "E0401";
/// A variable under `notin` not bound by a positive body atom.
pub const UNBOUND_NEGATED_VAR: &str = "E0402";
/// A variable in a comparison or arithmetic not bound by a positive body atom.
pub const UNBOUND_EXPR_VAR: &str = "E0403";
/// An aggregated variable not bound by a positive body atom.
pub const UNBOUND_AGGREGATE_VAR: &str = "E0404";
/// A fact with a variable.
pub const FACT_WITH_VAR: &str = "E0405";
/// `_` where a value is needed (a head, a comparison, arithmetic, a fact).
pub const MISPLACED_WILDCARD: &str = "E0406";
/// A rule body without a positive atom.
pub const NO_POSITIVE_ATOM: &str = "E0407";

/// Body atoms at different locations.
pub const BODY_LOCATIONS_DIFFER: &str = "E0501";
/// A deductive, `@next` or `delete` rule whose head location differs from its body's.
pub const HEAD_LOCATION_DIFFERS: &str = "E0502";
/// A `channel` written by a rule that is not `@async`.
pub const CHANNEL_NOT_ASYNC: &str = "E0503";
/// A rule deriving an `input` relation.
pub const DERIVES_INPUT: &str = "E0504";
/// `delete` on a relation that is not a `table`, or without `@next`.
pub const BAD_DELETE: &str = "E0505";
/// `@N` on the head of a rule with a body.
pub const TICK_ON_RULE_HEAD: &str = "E0506";
/// A body atom pinned to a tick below 1.
pub const PINNED_TICK_ZERO: &str = "E0507";
/// A fact at a tick below 1.
pub const FACT_TICK_ZERO: &str = "E0508";
/// `@next` or `@async` on a fact (a head without a body).
pub const TEMPORAL_FACT: &str = "E0509";
/// A body atom whose location (first argument) is not a variable.
pub const LOCATION_NOT_VAR: &str = "E0510";

/// A cycle through negation within one tick.
pub const NEGATION_CYCLE: &str = "E0601";
/// A cycle through aggregation within one tick.
pub const AGGREGATION_CYCLE: &str = "E0602";

/// A variable that occurs only once in a rule.
pub const SINGLETON_VAR: &str = "W0701";
/// A declared relation that no rule, fact or invariant mentions.
pub const UNUSED_RELATION: &str = "W0702";
/// A non-local rule in a Molly (`.ded`) file: allowed there, evaluated over every node at once.
pub const MOLLY_NON_LOCAL: &str = "W0703";
/// A relation that nothing defines, read only under `notin` in a Molly file: empty, as in Molly.
pub const MOLLY_UNDEFINED_NEGATED: &str = "W0704";
/// A variable that occurs only under `notin` in a Molly file: it matches any value.
pub const MOLLY_NEGATED_FREE_VAR: &str = "W0705";

/// Every code the compiler can emit, with its one-line meaning, in code order.
pub const ALL: &[(&str, &str)] = &[
    (UNKNOWN_RELATION, "unknown relation"),
    (ARITY_MISMATCH, "wrong number of arguments for a relation"),
    (DUPLICATE_RELATION, "relation declared twice"),
    (UNKNOWN_TYPE, "unknown column type"),
    (DUPLICATE_ROLE, "role declared twice"),
    (UNKNOWN_AGGREGATE, "unknown aggregate function"),
    (UNKNOWN_KEY_COLUMN, "key names an unknown column"),
    (DUPLICATE_CONST, "const declared twice"),
    (UNKNOWN_CONST, "unknown const"),
    (DUPLICATE_COLUMN, "column declared twice"),
    (NO_LOCATION_COLUMN, "relation without a location column"),
    (MISPLACED_AGGREGATE, "aggregate not allowed here"),
    (REQUIRE_FAILED, "require condition does not hold"),
    (NOT_A_FACT, "only facts are allowed in a facts file"),
    (TYPE_CONFLICT, "conflicting types"),
    (SUM_NOT_INT, "sum over a value that is not an int"),
    (COMPARE_MISMATCH, "comparison of values of different types"),
    (ARITH_NOT_INT, "arithmetic on a value that is not an int"),
    (FACT_TYPE, "fact value of the wrong type"),
    (CONST_EVAL, "constant expression cannot be evaluated"),
    (UNBOUND_HEAD_VAR, "head variable not bound by the body"),
    (UNBOUND_NEGATED_VAR, "variable under notin not bound"),
    (
        UNBOUND_EXPR_VAR,
        "variable in a comparison or arithmetic not bound",
    ),
    (UNBOUND_AGGREGATE_VAR, "aggregated variable not bound"),
    (FACT_WITH_VAR, "fact with a variable"),
    (MISPLACED_WILDCARD, "wildcard where a value is needed"),
    (NO_POSITIVE_ATOM, "rule body without a positive atom"),
    (BODY_LOCATIONS_DIFFER, "body atoms at different locations"),
    (
        HEAD_LOCATION_DIFFERS,
        "head location differs from the body's",
    ),
    (
        CHANNEL_NOT_ASYNC,
        "channel written by a rule that is not @async",
    ),
    (DERIVES_INPUT, "rule derives an input relation"),
    (BAD_DELETE, "delete on a non-table or without @next"),
    (TICK_ON_RULE_HEAD, "@N on the head of a rule with a body"),
    (PINNED_TICK_ZERO, "body atom pinned to a tick below 1"),
    (FACT_TICK_ZERO, "fact at a tick below 1"),
    (TEMPORAL_FACT, "@next or @async on a fact"),
    (LOCATION_NOT_VAR, "body atom location is not a variable"),
    (NEGATION_CYCLE, "cycle through negation within a tick"),
    (AGGREGATION_CYCLE, "cycle through aggregation within a tick"),
    (SINGLETON_VAR, "variable used only once"),
    (UNUSED_RELATION, "declared relation never used"),
    (
        MOLLY_NON_LOCAL,
        "non-local rule in a Molly file, evaluated globally",
    ),
    (
        MOLLY_UNDEFINED_NEGATED,
        "undefined relation under notin in a Molly file, empty",
    ),
    (
        MOLLY_NEGATED_FREE_VAR,
        "variable only under notin in a Molly file, matches anything",
    ),
];

/// "1 argument", "3 arguments".
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The message of [`ARITY_MISMATCH`]: "relation `p` takes 2 arguments, but 1 was given".
pub fn arity_message(relation: &str, expected: usize, given: usize) -> String {
    format!(
        "relation `{relation}` takes {}, but {given} {} given",
        count(expected, "argument"),
        if given == 1 { "was" } else { "were" }
    )
}
