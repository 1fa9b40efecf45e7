//! One small program per diagnostic code, asserting that the code is reported; and a test that
//! every code the compiler defines is covered here.

mod common;

use std::collections::BTreeSet;

use common::*;
use graft_compiler::codes;

/// (code, program that must produce it).
const CASES: &[(&str, &str)] = &[
    (
        codes::UNKNOWN_RELATION,
        "p(X) :- q(X); q(X)@next :- q(X); r(X) :- p(X), qq(X);",
    ),
    (codes::ARITY_MISMATCH, "q(\"a\", 1); p(X) :- q(X);"),
    (
        codes::ARITY_MISMATCH,
        "input q(at: node); p(X, Y) :- q(X), crash(X, Y);",
    ),
    (
        codes::DUPLICATE_RELATION,
        "input q(at: node); table q(at: node); p(X) :- q(X);",
    ),
    (
        codes::DUPLICATE_RELATION,
        "input crash(at: node, who: node, t: int);",
    ),
    (codes::UNKNOWN_TYPE, "input q(at: node, n: itn);"),
    (codes::DUPLICATE_ROLE, "role a; role a;"),
    (
        codes::UNKNOWN_AGGREGATE,
        "input q(at: node, n: int); p(L, avg<N>) :- q(L, N);",
    ),
    (
        codes::UNKNOWN_KEY_COLUMN,
        "input q(at: node, n: int) key(m);",
    ),
    (codes::DUPLICATE_CONST, "const N = 1; const N = 2;"),
    (codes::UNKNOWN_CONST, "const N = 3; require N > Q;"),
    (
        codes::DUPLICATE_COLUMN,
        "input q(at: node, n: int, n: int);",
    ),
    (codes::NO_LOCATION_COLUMN, "input q(at: node); p() :- q(L);"),
    (
        codes::MISPLACED_AGGREGATE,
        "input q(at: node, n: int); p(L, count<N>, max<N>) :- q(L, N);",
    ),
    (
        codes::MISPLACED_AGGREGATE,
        "input q(at: node, n: int); p(count<L>, N) :- q(L, N);",
    ),
    (
        codes::REQUIRE_FAILED,
        "const Q1 = 1; const Q2 = 1; const N = 3; require Q1 + Q2 > N;",
    ),
    (
        codes::TYPE_CONFLICT,
        "input q(at: node, n: int); p(L, N) :- q(L, N); p(\"a\", \"b\");",
    ),
    (
        codes::SUM_NOT_INT,
        "input q(at: node, s: string); p(L, sum<S>) :- q(L, S);",
    ),
    (
        codes::COMPARE_MISMATCH,
        "input q(at: node, n: int, s: string); p(L) :- q(L, N, S), N < S;",
    ),
    (
        codes::ARITH_NOT_INT,
        "input q(at: node, s: string); p(L, T) :- q(L, S), T == 1, p(L, S + 1);",
    ),
    (codes::ARITH_NOT_INT, "const S = \"x\"; require S + 1 > 0;"),
    (codes::CONST_EVAL, "const N = 0; require 1 / N > 0;"),
    (
        codes::UNBOUND_HEAD_VAR,
        "input q(at: node); p(L, X) :- q(L);",
    ),
    (
        codes::UNBOUND_NEGATED_VAR,
        "input q(at: node); input r(at: node, n: int); p(L) :- q(L), notin r(L, X);",
    ),
    (
        codes::UNBOUND_EXPR_VAR,
        "input q(at: node, n: int); p(L) :- q(L, N), M > N;",
    ),
    (
        codes::UNBOUND_AGGREGATE_VAR,
        "input q(at: node, n: int); p(L, count<M>) :- q(L, N), N > 0;",
    ),
    (codes::FACT_WITH_VAR, "q(\"a\", X);"),
    (
        codes::MISPLACED_WILDCARD,
        "input q(at: node); p(L, _) :- q(L);",
    ),
    (
        codes::NO_POSITIVE_ATOM,
        "input q(at: node); p(\"a\") :- notin q(\"a\");",
    ),
    (
        codes::BODY_LOCATIONS_DIFFER,
        "input q(at: node, n: int); input r(at: node, n: int); p(L, N) :- q(L, N), r(M, N);",
    ),
    (
        codes::HEAD_LOCATION_DIFFERS,
        "input q(at: node, other: node); p(O) :- q(L, O);",
    ),
    (
        codes::HEAD_LOCATION_DIFFERS,
        "input q(at: node, other: node); p(O)@next :- q(L, O);",
    ),
    (
        codes::CHANNEL_NOT_ASYNC,
        "input q(at: node); channel m(at: node); m(L) :- q(L);",
    ),
    (
        codes::DERIVES_INPUT,
        "input q(at: node); input r(at: node); r(L) :- q(L);",
    ),
    (
        codes::BAD_DELETE,
        "input q(at: node); p(L) :- q(L); delete p(L)@next :- q(L);",
    ),
    (
        codes::BAD_DELETE,
        "input q(at: node); table p(at: node); delete p(L) :- q(L);",
    ),
    (
        codes::TICK_ON_RULE_HEAD,
        "input q(at: node); p(L)@3 :- q(L);",
    ),
    (
        codes::PINNED_TICK_ZERO,
        "input q(at: node); p(L) :- q(L)@0;",
    ),
    (codes::FACT_TICK_ZERO, "q(\"a\")@0;"),
    (codes::TEMPORAL_FACT, "q(\"a\")@next;"),
    (
        codes::LOCATION_NOT_VAR,
        "input q(at: node, n: int); p(L) :- q(\"a\", L);",
    ),
    (
        codes::NEGATION_CYCLE,
        "input e(at: node, n: int); p(L, N) :- e(L, N), notin p(L, N);",
    ),
    (
        codes::AGGREGATION_CYCLE,
        "input e(at: node, n: int); s(L, N) :- e(L, N); s(L, count<N>) :- s(L, N);",
    ),
    (
        codes::SINGLETON_VAR,
        "input q(at: node, n: int); p(L) :- q(L, N);",
    ),
    (codes::UNUSED_RELATION, "table t(at: node);"),
];

/// Codes only produced when checking fact files against a program (see `facts.rs`), or only in
/// Molly files (see `molly_files_may_break_locality_with_a_warning`).
const FACT_FILE_CODES: &[&str] = &[
    codes::NOT_A_FACT,
    codes::FACT_TYPE,
    codes::MOLLY_NON_LOCAL,
    codes::MOLLY_UNDEFINED_NEGATED,
    codes::MOLLY_NEGATED_FREE_VAR,
];

#[test]
fn molly_files_read_variables_only_under_notin_as_wildcards() {
    let source = "t(\"a\", 1)@1;\nend(\"a\", 7)@1;\nlive(N, X) :- t(N, X), notin end(N, Id);\n";
    let molly = common::check_files(&[("gc.ded", source)]);
    assert!(
        codes(&molly).contains(&codes::MOLLY_NEGATED_FREE_VAR),
        "{}",
        describe(&molly)
    );
    assert!(!molly.has_errors(), "{}", describe(&molly));
    let negated = molly.program.rules[0]
        .atoms()
        .find(|(_, atom)| atom.negated)
        .map(|(_, atom)| atom.args.clone());
    assert_eq!(
        negated,
        Some(vec![
            graft_compiler::ir::Term::Var(graft_compiler::ir::VarId::from_index(0)),
            graft_compiler::ir::Term::Wildcard
        ]),
        "the variable becomes a wildcard"
    );
    let graft = common::check_files(&[("gc.graft", source)]);
    assert!(
        codes(&graft).contains(&codes::UNBOUND_NEGATED_VAR),
        "{}",
        describe(&graft)
    );
}

#[test]
fn molly_files_may_locate_facts_at_integers() {
    let source = "succ(1, 2)@1;\nsucc(2, 3)@1;\nreach(N, M) :- succ(N, M);\nreach(N, K) :- reach(N, M), succ(M, K);\n";
    let molly = common::check_files(&[("ring.ded", source)]);
    assert!(!molly.has_errors(), "{}", describe(&molly));
    let succ = molly
        .program
        .relation_by_name("succ")
        .map(|rel| molly.program.relation(rel).columns[0].ty);
    assert_eq!(succ, Some(graft_compiler::ir::Type::Int));
    let graft = common::check_files(&[("ring.graft", source)]);
    assert!(
        codes(&graft).contains(&codes::TYPE_CONFLICT),
        "{}",
        describe(&graft)
    );
}

#[test]
fn molly_files_may_break_locality_with_a_warning() {
    let source = "client(\"c\")@1;\nregistry(\"m\", \"z\")@1;\nknown(Z, C)@async :- client(C), registry(M, Z);\nknown(Z, C)@next :- known(Z, C);\nseen(M) :- registry(M, _), known(\"z\", _);\n";
    let molly = common::check_files(&[("zk.ded", source)]);
    let found = codes(&molly);
    assert!(
        found.contains(&codes::MOLLY_NON_LOCAL),
        "{}",
        describe(&molly)
    );
    assert!(!molly.has_errors(), "{}", describe(&molly));
    let graft = common::check_files(&[("zk.graft", source)]);
    let found = codes(&graft);
    assert!(
        found.contains(&codes::BODY_LOCATIONS_DIFFER),
        "{}",
        describe(&graft)
    );
    assert!(
        found.contains(&codes::LOCATION_NOT_VAR),
        "{}",
        describe(&graft)
    );
    assert!(!found.contains(&codes::MOLLY_NON_LOCAL));
}

#[test]
fn molly_files_read_undefined_negated_relations_as_empty() {
    let source = "t(\"a\", 1)@1;\nlive(N, X) :- t(N, X), notin cancelled(N, X);\n";
    let molly = common::check_files(&[("svc.ded", source)]);
    assert!(
        codes(&molly).contains(&codes::MOLLY_UNDEFINED_NEGATED),
        "{}",
        describe(&molly)
    );
    assert!(!molly.has_errors(), "{}", describe(&molly));
    let graft = common::check_files(&[("svc.graft", source)]);
    assert!(
        codes(&graft).contains(&codes::UNKNOWN_RELATION),
        "{}",
        describe(&graft)
    );
}

#[test]
fn each_case_reports_its_code() {
    let mut failures = String::new();
    for (code, source) in CASES {
        let checked = check_source(source);
        if !codes(&checked).contains(code) {
            failures.push_str(&format!(
                "expected {code} for `{source}`, got:\n{}\n",
                describe(&checked)
            ));
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

#[test]
fn every_code_is_covered() {
    let covered: BTreeSet<&str> = CASES
        .iter()
        .map(|(code, _)| *code)
        .chain(FACT_FILE_CODES.iter().copied())
        .collect();
    let missing: Vec<&str> = codes::ALL
        .iter()
        .map(|(code, _)| *code)
        .filter(|code| !covered.contains(code))
        .collect();
    assert!(missing.is_empty(), "codes without a test: {missing:?}");
}

#[test]
fn codes_are_unique_and_documented() {
    let mut seen = BTreeSet::new();
    let docs = include_str!("../../docs/diagnostics.md");
    for (code, meaning) in codes::ALL {
        assert!(seen.insert(*code), "{code} listed twice");
        assert!(!meaning.is_empty());
        assert!(docs.contains(code), "{code} is not in docs/diagnostics.md");
    }
}

#[test]
fn all_problems_are_reported_in_one_run() {
    let checked = check_source(
        "input q(at: node, n: int);\n\
         p(L, X) :- q(L, N);\n\
         r(L) :- q(L, N), notin s(L, M);\n\
         t(L) :- qq(L, 1);\n\
         const K = 1; const K = 2;\n",
    );
    let found = codes(&checked);
    for code in [
        codes::UNBOUND_HEAD_VAR,
        codes::UNBOUND_NEGATED_VAR,
        codes::UNKNOWN_RELATION,
        codes::DUPLICATE_CONST,
    ] {
        assert!(
            found.contains(&code),
            "missing {code}:\n{}",
            describe(&checked)
        );
    }
    let mut sorted = checked.diagnostics.clone();
    graft_language::diagnostic::sort_diagnostics(&mut sorted);
    assert_eq!(sorted, checked.diagnostics, "diagnostics are sorted");
}

#[test]
fn unknown_relation_suggests_a_close_name() {
    let checked = check_source("input votes(at: node, n: int); p(L, N) :- vots(L, N);");
    let diagnostic = checked
        .diagnostics
        .iter()
        .find(|diagnostic| diagnostic.code == codes::UNKNOWN_RELATION)
        .expect("an unknown relation diagnostic");
    let suggestion = diagnostic.suggestion.as_ref().expect("a suggestion");
    assert_eq!(suggestion.replacement, "votes");
    assert!(diagnostic.help.is_some());
}

#[test]
fn type_conflict_labels_both_uses() {
    let source = "input q(at: node, n: int); p(L, N) :- q(L, N); p(\"a\", \"b\");";
    let checked = check_source(source);
    let diagnostic = checked
        .diagnostics
        .iter()
        .find(|diagnostic| diagnostic.code == codes::TYPE_CONFLICT)
        .expect("a type conflict");
    let labelled: Vec<&str> = diagnostic
        .labels
        .iter()
        .map(|label| &source[label.span.range()])
        .collect();
    assert!(labelled.contains(&"int"), "labels: {labelled:?}");
    assert!(diagnostic.help.is_some());
}

#[test]
fn every_diagnostic_has_help() {
    for (_, source) in CASES {
        for diagnostic in check_source(source).diagnostics {
            assert!(
                diagnostic.help.is_some(),
                "{} has no help ({source})",
                diagnostic.code
            );
        }
    }
}

#[test]
fn molly_edb_relations_given_as_facts_elsewhere_are_known() {
    let program = "log(N, P)@next :- log(N, P);\n\
                   log(N, P) :- bcast(N, P);\n\
                   ack(S, N, P)@async :- log(N, P), node(N, S);\n";
    let facts = "node(\"a\", \"b\")@1;\nbcast(\"a\", \"hello\")@1;\n";
    let checked = check_files(&[("simple.ded", program), ("topology.ded", facts)]);
    assert!(checked.diagnostics.is_empty(), "{}", describe(&checked));
    let node = checked.program.relation_by_name("node").expect("node");
    let types: Vec<_> = checked
        .program
        .relation(node)
        .columns
        .iter()
        .map(|c| c.ty)
        .collect();
    assert_eq!(
        types,
        [
            graft_compiler::ir::Type::Node,
            graft_compiler::ir::Type::Node
        ]
    );
}
