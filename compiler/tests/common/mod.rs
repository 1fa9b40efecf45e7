//! Helpers shared by the compiler's tests: parse source text and check it.

#![allow(
    dead_code,
    reason = "each test file uses a different subset of the helpers"
)]

use graft_compiler::{Checked, check};
use graft_language::span::SourceMap;

/// Parses `source` as one file (asserting it has no syntax errors) and checks it.
#[track_caller]
pub fn check_source(source: &str) -> Checked {
    check_files(&[("test.graft", source)])
}

/// Parses several files (asserting no syntax errors) and checks them as one program.
#[track_caller]
pub fn check_files(files: &[(&str, &str)]) -> Checked {
    let mut sources = SourceMap::new();
    let mut parsed_files = Vec::new();
    for (name, text) in files {
        let id = sources.add(*name, *text);
        let parsed = graft_language::parse(id, text);
        assert!(
            parsed.diagnostics.is_empty(),
            "syntax errors in {name}: {:#?}",
            parsed.diagnostics
        );
        parsed_files.push(parsed.file);
    }
    check(&sources, &parsed_files)
}

/// The codes of every diagnostic, in the checker's order.
pub fn codes(checked: &Checked) -> Vec<&'static str> {
    checked
        .diagnostics
        .iter()
        .map(|diagnostic| diagnostic.code)
        .collect()
}

/// Asserts the program checks without any diagnostic.
#[track_caller]
pub fn assert_clean(source: &str) -> Checked {
    let checked = check_source(source);
    assert!(
        checked.diagnostics.is_empty(),
        "expected no diagnostics, got:\n{}",
        describe(&checked)
    );
    checked
}

/// A two-phase-commit protocol with declarations, used by several tests.
pub const TWO_PC: &str = r#"
role coordinator;
role participant;
input begin(at: coordinator, tx: int);
table members(at: coordinator, p: participant);
channel prepare(at: participant, tx: int, coord: coordinator);
channel vote(at: coordinator, tx: int, voter: participant, yes: bool);
table votes(at: coordinator, tx: int, voter: participant, yes: bool) key(tx, voter);
output table decision(at: coordinator, tx: int, commit: bool) key(tx);
table started(at: coordinator, tx: int);
input table willing(at: participant, tx: int);
const QUORUM = 2;

started(C, T) :- begin(C, T);
prepare(P, T, C)@async :- begin(C, T), members(C, P);
vote(C, T, P, true)@async :- prepare(P, T, C), willing(P, T);
vote(C, T, P, false)@async :- prepare(P, T, C), notin willing(P, T);
votes(C, T, P, Y) :- vote(C, T, P, Y);
yes_count(C, T, count<P>) :- votes(C, T, P, true);
no_vote(C, T) :- votes(C, T, _, false);
decision(C, T, true) :- started(C, T), yes_count(C, T, N), N >= QUORUM, notin no_vote(C, T);
decision(C, T, false) :- started(C, T), no_vote(C, T);
never decision(A, T, true), decision(B, T, false);
"#;

/// One line per diagnostic: code, location and message.
pub fn describe(checked: &Checked) -> String {
    checked
        .diagnostics
        .iter()
        .map(|diagnostic| {
            format!(
                "{} {} {}\n",
                diagnostic.code,
                checked.location(diagnostic.primary.span),
                diagnostic.message
            )
        })
        .collect()
}
