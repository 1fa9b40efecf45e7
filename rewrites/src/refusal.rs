//! Refusals: every precondition a requested pass failed, with where and what to do instead.
//!
//! Each failed precondition has a stable kebab-case name (the same in refusal output, tests and
//! docs) and maps to a diagnostic code `R0xxx` so that the command-line tool renders refusals
//! like any other diagnostic.

use graft_language::diagnostic::Diagnostic;
use graft_language::span::Span;

/// One precondition that does not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedPrecondition {
    /// Stable kebab-case name, e.g. `join-splits-partition-key`.
    pub name: &'static str,
    pub message: String,
    pub span: Span,
    /// Secondary locations.
    pub labels: Vec<(Span, String)>,
    /// What the user can do instead.
    pub suggestion: String,
}

impl FailedPrecondition {
    pub fn new(
        name: &'static str,
        message: impl Into<String>,
        span: Span,
        suggestion: impl Into<String>,
    ) -> FailedPrecondition {
        FailedPrecondition {
            name,
            message: message.into(),
            span,
            labels: Vec::new(),
            suggestion: suggestion.into(),
        }
    }

    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> FailedPrecondition {
        self.labels.push((span, message.into()));
        self
    }

    /// The diagnostic the command-line tool renders.
    pub fn to_diagnostic(&self, pass: &str) -> Diagnostic {
        let mut diagnostic = Diagnostic::error(
            code(self.name),
            format!("{pass}: {} [{}]", self.message, self.name),
            self.span,
        )
        .with_help(self.suggestion.clone());
        for (span, message) in &self.labels {
            diagnostic = diagnostic.with_label(*span, message.clone());
        }
        diagnostic
    }
}

/// A pass that does not apply, with every reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The pass as requested.
    pub pass: String,
    /// Sorted by span, then name.
    pub failures: Vec<FailedPrecondition>,
}

impl Refusal {
    pub fn new(pass: impl Into<String>, mut failures: Vec<FailedPrecondition>) -> Refusal {
        failures.sort_by(|a, b| (a.span, a.name, &a.message).cmp(&(b.span, b.name, &b.message)));
        failures.dedup();
        Refusal {
            pass: pass.into(),
            failures,
        }
    }

    pub fn single(pass: impl Into<String>, failure: FailedPrecondition) -> Refusal {
        Refusal::new(pass, vec![failure])
    }

    /// The failed preconditions' names, sorted and without duplicates.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.failures.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    pub fn to_diagnostics(&self) -> Vec<Diagnostic> {
        self.failures
            .iter()
            .map(|failure| failure.to_diagnostic(&self.pass))
            .collect()
    }
}

/// Every precondition name with its diagnostic code (documented in `docs/rewrites.md`).
pub const PRECONDITIONS: &[(&str, &str)] = &[
    ("program-has-errors", "R0001"),
    ("no-pass", "R0002"),
    ("unknown-role", "R0003"),
    ("unknown-relation", "R0004"),
    ("unknown-constant", "R0005"),
    ("constant-not-int", "R0006"),
    ("requirement-violated", "R0010"),
    ("unknown-member", "R0011"),
    ("not-a-quorum", "R0012"),
    ("not-verified", "R0013"),
    ("not-a-channel", "R0020"),
    ("consumer-not-monotone", "R0021"),
    ("consumer-joins-ephemeral", "R0022"),
    ("consumer-not-confluent", "R0023"),
    ("senders-differ", "R0024"),
    ("key-column-missing", "R0030"),
    ("key-not-int", "R0031"),
    ("join-splits-partition-key", "R0032"),
    ("negation-splits-partition-key", "R0033"),
    ("group-splits-partition-key", "R0034"),
    ("head-not-co-located", "R0035"),
    ("replicated-state-written", "R0036"),
    ("replicated-write-same-tick", "R0037"),
    ("nothing-partitioned", "R0038"),
    ("key-not-variable", "R0039"),
    ("sender-lacks-key", "R0050"),
    ("dependency-key-sequenced", "R0051"),
    ("not-movable", "R0040"),
    ("stayer-reads-moved", "R0041"),
    ("moved-half-negates", "R0042"),
    ("moved-half-aggregates", "R0043"),
    ("moved-half-reads-ephemeral", "R0044"),
    ("moved-half-not-functional", "R0045"),
    ("moved-half-retracts", "R0046"),
    ("nothing-stays", "R0047"),
    ("channel-shared", "R0048"),
    ("spec-reads-both-halves", "R0049"),
];

/// The diagnostic code of a precondition name (`R0000` for an unlisted name, which a test
/// forbids).
pub fn code(name: &str) -> &'static str {
    PRECONDITIONS
        .iter()
        .find(|(known, _)| *known == name)
        .map_or("R0000", |(_, code)| code)
}
