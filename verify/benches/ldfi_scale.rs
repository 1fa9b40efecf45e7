//! Benchmark: LDFI at protocol scale. Certifies `examples/paxos/paxos.graft` (its topology and
//! workload) at EOT 8 / EFF 4 without symmetry, and prints the executions and the least wall
//! time over `GRAFT_BENCH_REPEATS` runs (default 3), on the reference engine. With `GRAFT_MOLLY_CORPUS=DIR` (see `docs/verification.md`) it then prints
//! the LDFI executions on Molly's corpus next to Molly's published figures, and fails if a
//! verdict differs from Molly's or an execution count exceeds Molly's.
//! Run with `cargo bench -p graft-verify --bench ldfi_scale`.

mod common;

use std::collections::BTreeSet;
use std::time::Instant;

use common::{MOLLY, bounds, load_from, root};
use graft_verify::{SearchOptions, Verdict};

fn variable(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
        .max(1)
}

fn main() {
    let repeats = variable("GRAFT_BENCH_REPEATS", 3);
    let options = SearchOptions::default();
    let mut failed = false;
    println!(
        "{:<36} {:>8} {:>11} {:>14} {:>10}",
        "protocol", "bounds", "executions", "verdict", "best s"
    );
    let verifier = load_from(
        &root(),
        &["examples/paxos/paxos.graft"],
        &[
            "examples/paxos/topology.facts",
            "examples/paxos/workload.facts",
        ],
        BTreeSet::new(),
        bounds(8, 4, 0),
    );
    match verifier {
        Ok(verifier) => {
            let mut best = f64::INFINITY;
            let mut outcome = None;
            for _ in 0..repeats {
                let start = Instant::now();
                let search = verifier.ldfi(&options, &mut |_| {});
                best = best.min(start.elapsed().as_secs_f64());
                outcome = Some(search.map(|search| (search.executions, search.verdict)));
            }
            match outcome {
                Some(Ok((executions, verdict))) => {
                    println!(
                        "{:<36} {:>8} {:>11} {:>14?} {:>10.3}",
                        format!("paxos (best of {repeats})"),
                        "8/4/0",
                        executions,
                        verdict,
                        best
                    );
                    failed |= verdict != Verdict::Certified;
                }
                Some(Err(error)) => {
                    println!("paxos: {error}");
                    failed = true;
                }
                None => {}
            }
        }
        Err(error) => {
            println!("paxos: {error}");
            failed = true;
        }
    }
    println!();
    let Some(directory) = std::env::var_os("GRAFT_MOLLY_CORPUS") else {
        println!(
            "Molly's corpus: skipped; set GRAFT_MOLLY_CORPUS to a copy of Molly's \
             src/test/resources/examples_ft (see docs/verification.md)"
        );
        std::process::exit(i32::from(failed));
    };
    let base = std::path::PathBuf::from(directory);
    println!(
        "{:<24} {:>8} {:>13} {:>8} {:>7}",
        "Molly's corpus", "bounds", "LDFI execs", "LDFI s", "Molly"
    );
    for case in MOLLY {
        let nodes = case.nodes.iter().map(|node| (*node).to_string()).collect();
        let verifier = match load_from(&base, case.files, &[], nodes, case.bounds) {
            Ok(verifier) => verifier,
            Err(error) => {
                println!("{:<24} skipped: {error}", case.name);
                failed = true;
                continue;
            }
        };
        let start = Instant::now();
        let (executions, verdict) = match verifier.ldfi(&options, &mut |_| {}) {
            Ok(search) => (search.executions, search.verdict),
            Err(_) => (0, Verdict::Inconclusive),
        };
        let seconds = start.elapsed().as_secs_f64();
        let expected = if case.buggy {
            Verdict::Counterexample
        } else {
            Verdict::Certified
        };
        // Molly's figure, where the paper gives one for these bounds.
        let molly: Option<u64> = case.molly.trim_end_matches('*').parse().ok();
        let more = molly.is_some_and(|molly| executions > molly);
        failed |= verdict != expected || more;
        let bounds = case.bounds;
        println!(
            "{:<24} {:>8} {:>13} {:>8.3} {:>7}{}{}",
            case.name,
            format!("{}/{}/{}", bounds.eot, bounds.eff, bounds.crashes),
            format!(
                "{executions} {}",
                match verdict {
                    Verdict::Counterexample => "bug",
                    Verdict::Certified => "ok",
                    Verdict::Inconclusive => "?",
                }
            ),
            seconds,
            case.molly,
            if verdict == expected {
                ""
            } else {
                "  (verdict differs from Molly's!)"
            },
            if more {
                "  (more executions than Molly!)"
            } else {
                ""
            }
        );
    }
    println!("(bounds EOT/EFF/crashes; * the paper's figure for its `good` specification)");
    std::process::exit(i32::from(failed));
}
