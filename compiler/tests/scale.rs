//! A generated 10,000-rule program checks cleanly (its time is measured by running this test in
//! release mode, not asserted), and arbitrary programs assembled from fragments never panic.

mod common;

use std::fmt::Write as _;

use common::*;
use proptest::prelude::*;

/// Rule `i` derives `r{i}` from `r{i-1}` and the input, with negation, aggregation, `@next`
/// and `@async` rules mixed in, all stratifiable.
fn generated_program(rules: usize) -> String {
    let mut text = String::from(
        "input e(at: node, n: int);\ntable peer(at: node, other: node);\nr0(L, N) :- e(L, N);\n",
    );
    for index in 1..rules {
        let previous = index - 1;
        let _ = match index % 5 {
            0 => writeln!(text, "r{index}(L, N) :- r{previous}(L, N), notin e(L, N);"),
            1 => writeln!(
                text,
                "r{index}(L, N) :- r{previous}(L, N), e(L, M), N < M + 1;"
            ),
            2 => writeln!(
                text,
                "r{index}(O, N)@async :- r{previous}(L, N), peer(L, O);"
            ),
            3 => writeln!(
                text,
                "r{index}(L, N)@next :- r{previous}(L, N);\nr{index}(L, N)@next :- r{index}(L, N);"
            ),
            _ => writeln!(text, "r{index}(L, N) :- r{previous}(L, N), N > {index};"),
        };
    }
    text
}

#[test]
fn ten_thousand_rules_check_cleanly() {
    let checked = check_source(&generated_program(10_000));
    assert!(!checked.has_errors(), "{}", describe(&checked));
    assert!(checked.program.rules.len() >= 10_000);
    assert!(checked.analysis.strata.count >= 2);
    assert!(!checked.analysis.points_of_order.is_empty());
}

const FRAGMENTS: &[&str] = &[
    "input e(at: node, n: int);",
    "table t(at: node, n: int) key(n);",
    "channel c(at: node, n: int);",
    "role r;",
    "const K = 2;",
    "require K > 1;",
    "p(L, N) :- e(L, N);",
    "p(L, N) :- e(L, N), notin p(L, N);",
    "t(L, count<N>) :- p(L, N);",
    "c(O, N)@async :- t(L, N), e(O, N);",
    "c(L, N) :- e(L, N);",
    "q(L, X) :- e(M, N), X > N;",
    "e(\"a\", 1)@1;",
    "p(\"a\", \"b\");",
    "never p(A, N), t(B, N);",
    "delete t(L, N)@next :- c(L, N);",
    "u(L, N)@next :- u(L, N), notin c(L, N);",
    "u(L, N) :- zz(L, N), N == \"x\";",
    "w(L, sum<S>) :- e(L, S), S + K > 1;",
];

proptest! {
    #[test]
    fn fragments_never_panic(picks in proptest::collection::vec(0..FRAGMENTS.len(), 0..12)) {
        let text: String = picks.iter().map(|index| FRAGMENTS[*index]).collect::<Vec<_>>().join("\n");
        let checked = check_source(&text);
        let mut sorted = checked.diagnostics.clone();
        graft_language::diagnostic::sort_diagnostics(&mut sorted);
        prop_assert_eq!(&sorted, &checked.diagnostics);
        let summary = graft_compiler::summary(&checked);
        prop_assert!(!graft_compiler::render_summary_text(&summary).is_empty());
        let dot = graft_compiler::graph_dot(&checked);
        let closing = "}\n";
        prop_assert!(dot.ends_with(closing), "unterminated dot output: {}", dot);
        prop_assert!(graft_compiler::graph_mermaid(&checked).starts_with("flowchart"));
    }
}
