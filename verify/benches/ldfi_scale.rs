//! Benchmark: LDFI at protocol scale. Certifies `examples/paxos/paxos.graft` (its topology and
//! workload) at EOT 8 / EFF 4 without symmetry, and prints the executions, the least wall time
//! and the least CPU time (all threads) over `GRAFT_BENCH_REPEATS` runs (default 3), on the
//! reference engine with each worker count of `GRAFT_BENCH_WORKERS` (default `1,2`; with two,
//! runs and their lineage are computed two at a time, and the search is the same). With
//! `GRAFT_MOLLY_CORPUS=DIR` (see `docs/verification.md`) it then prints the LDFI executions on
//! Molly's corpus next to Molly's published figures, and fails if a verdict differs from
//! Molly's or an execution count exceeds Molly's.
//! Run with `cargo bench -p graft-verify --bench ldfi_scale`.

mod common;

use std::collections::BTreeSet;
use std::time::Instant;

use common::{MOLLY, bounds, load_from, root};
use graft_verify::{SearchOptions, Verdict};

/// The `graft` binary's allocator (see src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn variable(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
        .max(1)
}

/// The CPU time of this process so far (every thread), in seconds, from `/proc/self/stat`
/// (Linux; `None` elsewhere). On a machine shared with other work, wall times vary widely and
/// CPU time is the steadier figure.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name (in parentheses): utime and stime are the 12th and
    // 13th, in clock ticks of 1/100 s (USER_HZ).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / 100.0)
}

fn main() {
    let repeats = variable("GRAFT_BENCH_REPEATS", 3);
    let options = SearchOptions::default();
    let mut failed = false;
    let workers: Vec<usize> = std::env::var("GRAFT_BENCH_WORKERS")
        .unwrap_or_else(|_| "1,2".to_string())
        .split(',')
        .filter_map(|count| count.trim().parse().ok())
        .filter(|count| *count > 0)
        .collect();
    println!(
        "{:<36} {:>8} {:>11} {:>14} {:>10} {:>10}",
        "protocol", "bounds", "executions", "verdict", "best s", "CPU s"
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
            let mut verifier = Some(verifier);
            for workers in workers {
                let Some(current) = verifier.take() else {
                    break;
                };
                let current = current.with_workers(workers);
                let mut best = f64::INFINITY;
                let mut best_cpu = f64::INFINITY;
                let mut outcome = None;
                for _ in 0..repeats {
                    let start = Instant::now();
                    let cpu = cpu_seconds();
                    let search = current.ldfi(&options, &mut |_| {});
                    best = best.min(start.elapsed().as_secs_f64());
                    if let (Some(before), Some(after)) = (cpu, cpu_seconds()) {
                        best_cpu = best_cpu.min(after - before);
                    }
                    outcome = Some(search.map(|search| (search.executions, search.verdict)));
                }
                match outcome {
                    Some(Ok((executions, verdict))) => {
                        println!(
                            "{:<36} {:>8} {:>11} {:>14?} {:>10.3} {:>10.2}",
                            format!("paxos ({workers} worker(s), best of {repeats})"),
                            "8/4/0",
                            executions,
                            verdict,
                            best,
                            best_cpu
                        );
                        failed |= verdict != Verdict::Certified;
                    }
                    Some(Err(error)) => {
                        println!("paxos: {error}");
                        failed = true;
                    }
                    None => {}
                }
                verifier = Some(current);
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
