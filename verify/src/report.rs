//! The report of a verification: a serialisable summary (the JSON output of `graft verify`) and
//! its text rendering.

use std::fmt::Write as _;

use serde::Serialize;

use crate::faults::{Bounds, Crash, Delay, Drop, FaultSet};
use crate::search::{Search, Verdict};
use crate::spec::{Violation, ViolationKind};

/// One counterexample in a report.
#[derive(Clone, Debug, Serialize)]
pub struct CounterexampleReport {
    /// The execution that found it (1 is the failure-free run).
    pub execution: u64,
    pub drops: Vec<Drop>,
    pub crashes: Vec<Crash>,
    /// Late messages (only with `--max-delay`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delays: Vec<Delay>,
    pub violations: Vec<Violation>,
}

impl CounterexampleReport {
    /// Its faults on one line: `drop a->b@1, crash c@2, delay a->c@1+2`, or `no faults`.
    pub fn faults_text(&self) -> String {
        FaultSet {
            drops: self.drops.iter().cloned().collect(),
            crashes: self
                .crashes
                .iter()
                .map(|crash| (crash.node.clone(), crash.tick))
                .collect(),
            delays: self.delays.iter().cloned().collect(),
        }
        .to_string()
    }
}

/// The random strategy over several seeds (`--runs N`).
#[derive(Clone, Debug, Serialize)]
pub struct RandomSummary {
    pub runs: u64,
    pub first_seed: u64,
    /// Runs that found a counterexample within the execution limit.
    pub found: u64,
    /// Mean executions to the first counterexample over the runs that found one.
    pub mean_executions: Option<f64>,
    /// Executions of each run, in seed order.
    pub executions: Vec<u64>,
}

/// What `graft verify` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub verdict: Verdict,
    pub strategy: String,
    /// Runs performed, the failure-free run included (summed over seeds with `--runs`).
    pub executions: u64,
    /// Wall time of the search (filled in by the front end).
    pub seconds: f64,
    /// Fault schedules under the bounds, by Molly's formula, as a decimal string (it may not
    /// fit any fixed-size integer).
    pub fault_space: String,
    pub bounds: Bounds,
    pub nodes: Vec<String>,
    pub counterexamples: Vec<CounterexampleReport>,
    /// Why the search is inconclusive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub random: Option<RandomSummary>,
}

impl Report {
    pub fn new(
        strategy: &str,
        search: &Search,
        fault_space: String,
        bounds: Bounds,
        nodes: Vec<String>,
    ) -> Report {
        Report {
            verdict: search.verdict,
            strategy: strategy.to_string(),
            executions: search.executions,
            seconds: 0.0,
            fault_space,
            bounds,
            nodes,
            counterexamples: search
                .counterexamples
                .iter()
                .map(|found| CounterexampleReport {
                    execution: found.iteration,
                    drops: found.execution.faults.drops.iter().cloned().collect(),
                    crashes: found.execution.faults.crash_list(),
                    delays: found.execution.faults.delays.iter().cloned().collect(),
                    violations: found.execution.violations.clone(),
                })
                .collect(),
            limit: search.limit.clone(),
            random: None,
        }
    }

    /// The text form (no timing, so that it is reproducible byte for byte).
    pub fn text(&self) -> String {
        let mut out = String::new();
        let verdict = match self.verdict {
            Verdict::Counterexample => "counterexample",
            Verdict::Certified => "certified",
            Verdict::Inconclusive => "inconclusive",
        };
        let _ = writeln!(
            out,
            "verdict: {verdict} ({} strategy, {} execution{})",
            self.strategy,
            self.executions,
            if self.executions == 1 { "" } else { "s" }
        );
        let delay = if self.bounds.max_delay > 0 {
            format!(", max delay {}", self.bounds.max_delay)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "bounds: EOT {}, EFF {}, crashes {}{delay}; nodes: {}; fault space: {} schedules",
            self.bounds.eot,
            self.bounds.eff,
            self.bounds.crashes,
            self.nodes.join(", "),
            self.fault_space
        );
        if let Some(random) = &self.random {
            let mean = random
                .mean_executions
                .map_or_else(|| "-".to_string(), |mean| format!("{mean:.2}"));
            let _ = writeln!(
                out,
                "random: {} runs from seed {}, {} found a counterexample, mean executions to the first: {mean}",
                random.runs, random.first_seed, random.found
            );
        }
        for (index, found) in self.counterexamples.iter().enumerate() {
            let faults = found.faults_text();
            let _ = writeln!(
                out,
                "counterexample {} (execution {}): {faults}",
                index + 1,
                found.execution
            );
            for violation in &found.violations {
                match violation.kind {
                    ViolationKind::Post => {
                        let _ = writeln!(
                            out,
                            "  violates {} at EOT {}: missing, while its pre holds",
                            violation.text, violation.tick
                        );
                    }
                    ViolationKind::Never => {
                        let _ = writeln!(
                            out,
                            "  violates {} at tick {}",
                            violation.text, violation.tick
                        );
                    }
                }
            }
        }
        match self.verdict {
            Verdict::Certified => {
                let _ = writeln!(
                    out,
                    "no counterexample exists for these bounds, nodes and inputs"
                );
            }
            Verdict::Inconclusive => {
                if let Some(limit) = &self.limit {
                    let _ = writeln!(out, "inconclusive: {limit}");
                }
            }
            Verdict::Counterexample => {}
        }
        out
    }
}
