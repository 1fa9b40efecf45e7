//! Dependency graph, stratification and the Bloom-style analyses.

mod common;

use common::*;
use graft_compiler::analysis::{CalmLabel, OrderKind, PersistenceKind};
use graft_compiler::codes;
use graft_compiler::graph::{EdgeTime, Polarity};

#[test]
fn edges_are_labelled() {
    let checked = assert_clean(
        "input e(at: node, n: int);\n\
         table seen(at: node, n: int);\n\
         a(L, N) :- e(L, N), notin seen(L, N);\n\
         c(L, count<N>) :- a(L, N);\n\
         seen(L, N)@next :- a(L, N);\n\
         m(O, N)@async :- a(L, N), peer(L, O);\n\
         peer(\"x\", \"y\");\n",
    );
    let program = &checked.program;
    let name = |rel: graft_compiler::ir::RelId| program.relation(rel).name.as_str();
    let edges: Vec<(&str, &str, Polarity, EdgeTime)> = checked
        .analysis
        .graph
        .edges()
        .map(|edge| (name(edge.from), name(edge.to), edge.polarity, edge.time))
        .collect();
    assert_eq!(
        edges,
        [
            ("e", "a", Polarity::Positive, EdgeTime::SameTick),
            ("seen", "a", Polarity::Negated, EdgeTime::SameTick),
            ("a", "c", Polarity::Aggregated, EdgeTime::SameTick),
            ("a", "seen", Polarity::Positive, EdgeTime::Next),
            ("a", "m", Polarity::Positive, EdgeTime::Async),
            ("peer", "m", Polarity::Positive, EdgeTime::Async),
        ]
    );
}

#[test]
fn strata_order_negation_and_aggregation() {
    let checked = assert_clean(
        "input e(at: node, n: int);\n\
         input f(at: node, n: int);\n\
         b(L, N) :- f(L, N);\n\
         a(L, N) :- e(L, N), notin b(L, N);\n\
         c(L, count<N>) :- a(L, N);\n\
         d(L, N) :- c(L, N);\n\
         g(L, N)@next :- d(L, N);\n",
    );
    let program = &checked.program;
    let stratum = |name: &str| {
        let rel = program.relation_by_name(name).expect(name);
        checked.analysis.strata.relation[rel.index()]
    };
    assert_eq!(stratum("e"), 0);
    assert_eq!(stratum("b"), 0);
    assert_eq!(stratum("a"), 1);
    assert_eq!(stratum("c"), 2);
    assert_eq!(stratum("d"), 2);
    assert_eq!(checked.analysis.strata.count, 3);
    // The @next rule reads `d`, so it runs after stratum 2.
    assert_eq!(checked.analysis.strata.rule[4], 2);
    assert_eq!(checked.analysis.strata.rule[1], 1);
}

#[test]
fn negation_cycle_within_a_tick_shows_the_cycle() {
    let source = "input e(at: node, n: int);\n\
                  p(L, N) :- e(L, N), notin q(L, N);\n\
                  q(L, N) :- r(L, N);\n\
                  r(L, N) :- p(L, N);\n";
    let checked = check_source(source);
    assert_eq!(
        codes(&checked),
        [codes::NEGATION_CYCLE],
        "{}",
        describe(&checked)
    );
    let diagnostic = &checked.diagnostics[0];
    assert!(
        diagnostic.message.contains("q -> p -> r -> q"),
        "{}",
        diagnostic.message
    );
    assert_eq!(&source[diagnostic.primary.span.range()], "notin q(L, N)");
    let labelled: Vec<&str> = diagnostic
        .labels
        .iter()
        .map(|l| &source[l.span.range()])
        .collect();
    assert_eq!(labelled, ["p(L, N)", "r(L, N)"]);
}

#[test]
fn cycles_through_next_and_async_are_fine() {
    assert_clean(
        "input e(at: node, n: int);\n\
         p(L, N) :- e(L, N), notin q(L, N);\n\
         q(L, N)@next :- p(L, N);\n\
         c(L, count<N>) :- e(L, N), notin d(L, N);\n\
         d(L, M)@async :- c(L, M);\n",
    );
}

#[test]
fn aggregation_cycle_is_reported_once_per_component() {
    let checked = check_source(
        "input e(at: node, n: int);\n\
         s(L, N) :- e(L, N);\n\
         s(L, count<N>) :- s(L, N);\n\
         s(L, max<N>) :- s(L, N);\n",
    );
    assert_eq!(
        codes(&checked),
        [codes::AGGREGATION_CYCLE],
        "{}",
        describe(&checked)
    );
}

#[test]
fn persistence_is_detected() {
    let checked = assert_clean(
        "input e(at: node, n: int);\n\
         table t(at: node, n: int);\n\
         t(L, N) :- e(L, N);\n\
         log(L, N) :- e(L, N);\n\
         log(L, N)@next :- log(L, N);\n\
         cur(L, N) :- e(L, N);\n\
         cur(L, N)@next :- cur(L, N), notin del(L, N);\n\
         del(L, N) :- e(L, N), N > 10;\n\
         moved(L, M)@next :- log(L, M), M > 0;\n\
         shifted(L, M)@next :- log(L, M), e(L, M);\n",
    );
    let program = &checked.program;
    let kind = |name: &str| {
        let rel = program.relation_by_name(name).expect(name);
        checked.analysis.persistence[rel.index()]
    };
    assert_eq!(kind("t"), PersistenceKind::Table);
    assert_eq!(kind("log"), PersistenceKind::Dedalus);
    assert_eq!(kind("cur"), PersistenceKind::Dedalus);
    assert_eq!(kind("del"), PersistenceKind::Scratch);
    assert_eq!(kind("moved"), PersistenceKind::Scratch);
    assert_eq!(kind("shifted"), PersistenceKind::Scratch);
    let log = program.relation_by_name("log").expect("log");
    assert_eq!(program.relation(log).persistence_rules.len(), 1);
    assert!(program.relation(log).is_persisted());
}

#[test]
fn points_of_order_are_non_monotone_operators_after_async() {
    let checked = assert_clean(TWO_PC);
    let program = &checked.program;
    let points: Vec<(OrderKind, &str, Vec<&str>)> = checked
        .analysis
        .points_of_order
        .iter()
        .map(|point| {
            (
                point.kind,
                program.relation(point.relation).name.as_str(),
                point
                    .channels
                    .iter()
                    .map(|c| program.relation(*c).name.as_str())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        points,
        [
            (OrderKind::Negation, "willing", vec!["prepare"]),
            (OrderKind::Aggregation, "yes_count", vec!["vote"]),
            (OrderKind::Negation, "no_vote", vec!["vote"]),
        ]
    );
}

#[test]
fn no_points_of_order_without_async() {
    let checked = assert_clean(
        "input e(at: node, n: int);\n\
         output a(at: node, n: int);\n\
         table b(at: node, n: int);\n\
         a(L, N) :- e(L, N), notin b(L, N);\n\
         b(L, N) :- e(L, N), N > 3;\n",
    );
    assert!(checked.analysis.points_of_order.is_empty());
}

#[test]
fn path_labels_follow_calm() {
    let checked = assert_clean(
        "input e(at: node, n: int);\n\
         output mono(at: node, n: int);\n\
         output sent(at: node, n: int);\n\
         output nonmono(at: node, n: int);\n\
         output diffluent(at: node, n: int);\n\
         table peer(at: node, other: node);\n\
         mono(L, N) :- e(L, N);\n\
         sent(O, N)@async :- e(L, N), peer(L, O);\n\
         nonmono(L, N) :- e(L, N), notin mono(L, N);\n\
         diffluent(L, N) :- e(L, N), notin sent(L, N);\n",
    );
    let program = &checked.program;
    let labels = |output: &str| -> Vec<CalmLabel> {
        let input = program.relation_by_name("e").expect("e");
        let output = program.relation_by_name(output).expect(output);
        checked
            .analysis
            .paths
            .iter()
            .find(|path| path.input == input && path.output == output)
            .map(|path| path.labels.clone())
            .unwrap_or_default()
    };
    assert_eq!(labels("mono"), [CalmLabel::Bot]);
    assert_eq!(labels("sent"), [CalmLabel::A]);
    // Monotone in `e` directly, anti-monotone through the negated `mono`.
    assert_eq!(labels("nonmono"), [CalmLabel::Bot, CalmLabel::N]);
    // Negating an async-fed relation: a non-monotone edge after an async one.
    assert_eq!(labels("diffluent"), [CalmLabel::Bot, CalmLabel::D]);
    let summary = graft_compiler::summary(&checked);
    let monotone: Vec<&str> = summary
        .paths
        .iter()
        .filter(|path| path.monotone)
        .map(|path| path.output.as_str())
        .collect();
    assert_eq!(monotone, ["mono", "sent"]);
}

#[test]
fn renderers_mark_strata_and_points_of_order() {
    let checked = assert_clean(TWO_PC);
    let dot = graft_compiler::graph_dot(&checked);
    assert!(dot.starts_with("digraph program {"));
    assert!(dot.contains("subgraph cluster_stratum_1"));
    assert!(dot.contains("label=\"notin point of order\""));
    assert!(dot.contains("style=dotted"));
    let mermaid = graft_compiler::graph_mermaid(&checked);
    assert!(mermaid.starts_with("flowchart LR\n"));
    assert!(mermaid.contains("subgraph stratum_0 [\"stratum 0\"]"));
    assert!(mermaid.contains("linkStyle "));
    insta::assert_snapshot!(
        "two_pc_summary",
        graft_compiler::render_summary_text(&graft_compiler::summary(&checked))
    );
    insta::assert_snapshot!("two_pc_dot", dot);
    insta::assert_snapshot!("two_pc_mermaid", mermaid);
}
