//! Helpers shared by the evaluator's tests: parse and check inline programs and workloads,
//! run them, and render facts as `rel(args)@tick;` lines.

#![allow(
    dead_code,
    reason = "each test file uses a different subset of the helpers"
)]

use graft_compiler::ir::{self, RelId, Value};
use graft_compiler::{Checked, check, check_facts};
use graft_eval::{Evaluator, Run, RunConfig, ShowSet, render_fact};
use graft_language::span::{FileId, SourceMap};

/// A checked, compiled program.
pub struct Compiled {
    pub checked: Checked,
    pub evaluator: Evaluator,
}

/// Parses and checks `source` (asserting it has no error) and compiles it.
#[track_caller]
pub fn compile(source: &str) -> Compiled {
    let mut sources = SourceMap::new();
    let id = sources.add("test.graft", source);
    let parsed = graft_language::parse(id, source);
    assert!(
        parsed.diagnostics.is_empty(),
        "syntax errors: {:#?}",
        parsed.diagnostics
    );
    let checked = check(&sources, &[parsed.file]);
    let errors: Vec<String> = checked
        .diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.is_error())
        .map(|diagnostic| format!("{} {}", diagnostic.code, diagnostic.message))
        .collect();
    assert!(errors.is_empty(), "check errors: {errors:#?}");
    let evaluator = match Evaluator::new(&checked) {
        Ok(evaluator) => evaluator,
        Err(error) => panic!("evaluator refused the program: {error}"),
    };
    Compiled { checked, evaluator }
}

impl Compiled {
    pub fn program(&self) -> &ir::Program {
        &self.checked.program
    }

    pub fn rel(&self, name: &str) -> RelId {
        match self.program().relation_by_name(name) {
            Some(rel) => rel,
            None => panic!("no relation `{name}`"),
        }
    }

    /// Parses a workload (facts only) against the program.
    #[track_caller]
    pub fn workload(&self, text: &str) -> Vec<ir::Fact> {
        let parsed = graft_language::parse(FileId(1), text);
        assert!(
            parsed.diagnostics.is_empty(),
            "syntax errors: {:#?}",
            parsed.diagnostics
        );
        let (facts, diagnostics) = check_facts(self.program(), &[parsed.file]);
        assert!(diagnostics.is_empty(), "workload errors: {diagnostics:#?}");
        facts
    }

    #[track_caller]
    pub fn run(&self, config: &RunConfig, workload: &str) -> Run {
        let facts = self.workload(workload);
        match self.evaluator.run(config, &facts) {
            Ok(run) => run,
            Err(error) => panic!("run failed: {error}"),
        }
    }

    /// Every fact of the named relations, rendered and sorted by tick, relation, values.
    pub fn lines(&self, run: &Run, relations: &[&str]) -> Vec<String> {
        let show = ShowSet::Relations(relations.iter().map(|name| self.rel(name)).collect());
        graft_eval::shown_facts(self.program(), run, &show)
            .iter()
            .map(|fact| render_fact(&fact.relation, &fact.values, fact.tick))
            .collect()
    }
}

/// A string value.
pub fn s(text: &str) -> Value {
    Value::str(text)
}

/// An integer value.
pub fn i(value: i64) -> Value {
    Value::Int(value)
}

/// Lines from string literals.
pub fn expect(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|line| (*line).to_owned()).collect()
}
