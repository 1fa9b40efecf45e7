//! `check_facts`: workload and topology files checked against a program.

mod common;

use common::*;
use graft_compiler::{check_facts, codes, ir};
use graft_language::span::FileId;

const PROGRAM: &str = "role server;\n\
    input request(at: server, id: int, body: string);\n\
    const BASE = 100;\n\
    output reply(at: server, id: int);\n\
    reply(S, I) :- request(S, I, _);\n";

fn facts(text: &str) -> (Vec<ir::Fact>, Vec<&'static str>) {
    let checked = check_source(PROGRAM);
    assert!(!checked.has_errors(), "{}", describe(&checked));
    let parsed = graft_language::parse(FileId(1), text);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    let (facts, diagnostics) = check_facts(&checked.program, &[parsed.file]);
    (facts, diagnostics.iter().map(|d| d.code).collect())
}

#[test]
fn good_facts_become_ir_facts() {
    let (facts, found) = facts(
        "request(\"s1\", 1, \"hello\")@1;\nrequest(\"s1\", BASE + 2, \"x\")@3;\nrequest(s2, 7, \"y\");",
    );
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(facts.len(), 3);
    assert_eq!(facts[1].values[1], ir::Value::Int(102));
    assert_eq!(facts[1].tick, 3);
    assert_eq!(facts[2].values[0], ir::Value::str("s2"));
    assert_eq!(facts[2].tick, 1);
}

#[test]
fn bad_facts_are_all_reported() {
    let (facts, found) = facts(
        "requst(\"s1\", 1, \"a\")@1;\n\
         request(\"s1\", 1)@1;\n\
         request(\"s1\", \"one\", \"a\")@1;\n\
         request(\"s1\", 1, \"a\")@0;\n\
         request(\"s1\", X, \"a\")@1;\n\
         reply(S, I) :- request(S, I, _);\n",
    );
    assert!(facts.is_empty());
    assert_eq!(
        found,
        [
            codes::UNKNOWN_RELATION,
            codes::ARITY_MISMATCH,
            codes::FACT_TYPE,
            codes::FACT_TICK_ZERO,
            codes::FACT_WITH_VAR,
            codes::NOT_A_FACT,
        ]
    );
}
