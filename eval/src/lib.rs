//! graft's reference evaluator: the definition of what a graft program means.
//!
//! [`Evaluator::new`] compiles a checked program once (join plans, indexes, strata);
//! [`Evaluator::run`] evaluates it under a [`RunConfig`] (end of time, fault schedule, crash
//! model, provenance) on a workload, and returns a [`Run`]: the facts of every tick, every
//! message with its fate, optional why-provenance, and work counters. [`render_text`] and
//! [`shown_facts`] present a run the way `graft run` prints it. The semantics is written down
//! in `docs/semantics.md`; this crate implements it directly.
//!
//! Architecture invariant: the evaluator is deterministic. Hash maps serve only look-ups;
//! fact ids follow insertion order, which follows rule order and join order; derivation lists,
//! messages and rendered facts are sorted.

mod config;
mod engine;
mod exec;
pub mod hash;
mod naive;
mod plan;
mod render;
mod result;
mod store;

use std::fmt;

use graft_compiler::ir::{self, RelId, RuleId};

pub use config::{CrashModel, EvalStrategy, Record, RunConfig};
pub use engine::Evaluator;
pub use render::{ShowSet, ShownFact, render_fact, render_text, shown_facts};
pub use result::{
    Absent, Derivation, FactRef, Fate, Message, Provenance, RuleFiring, Run, RunParts, Stats,
    TickFacts,
};
pub use store::Tuple;

/// Why a program or a workload cannot be evaluated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EvalError {
    /// The check reported errors; a program is run only when it checks cleanly.
    ProgramHasErrors { errors: usize },
    /// A rule uses a variable that no positive body atom binds (the checker reports these).
    UnboundVariable { rule: RuleId },
    /// A fact names a relation id the program does not have.
    UnknownRelation { rel: RelId },
    /// A fact has the wrong number of values.
    ArityMismatch {
        relation: String,
        expected: usize,
        found: usize,
    },
    /// An inconsistency between the checker's results and the program (a bug).
    Internal(&'static str),
}

impl fmt::Display for EvalError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::ProgramHasErrors { errors } => write!(
                formatter,
                "the program has {errors} error(s); fix them before running it"
            ),
            EvalError::UnboundVariable { rule } => write!(
                formatter,
                "rule {} uses a variable that no positive body atom binds",
                rule.0
            ),
            EvalError::UnknownRelation { rel } => {
                write!(
                    formatter,
                    "a fact names relation id {}, which the program does not have",
                    rel.0
                )
            }
            EvalError::ArityMismatch {
                relation,
                expected,
                found,
            } => write!(
                formatter,
                "a fact of `{relation}` has {found} values, but the relation has {expected} columns"
            ),
            EvalError::Internal(what) => {
                write!(formatter, "internal error in the evaluator: {what}")
            }
        }
    }
}

impl std::error::Error for EvalError {}

impl From<ir::FactMismatch> for EvalError {
    fn from(mismatch: ir::FactMismatch) -> EvalError {
        match mismatch {
            ir::FactMismatch::UnknownRelation { rel } => EvalError::UnknownRelation { rel },
            ir::FactMismatch::Arity {
                relation,
                expected,
                found,
            } => EvalError::ArityMismatch {
                relation,
                expected,
                found,
            },
        }
    }
}
