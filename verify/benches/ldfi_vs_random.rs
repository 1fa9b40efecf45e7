//! Benchmark: executions to the first counterexample and wall time for each buggy example,
//! LDFI against random fault injection (mean of 25 seeds), and the certification of the
//! correct versions. Run with `cargo bench -p graft-verify`.
//!
//! With `GRAFT_MOLLY_CORPUS=DIR` (a copy of Molly's `src/test/resources/examples_ft`, kept
//! outside this repository; see `docs/verification.md`), it also runs Molly's own programs at
//! the bounds of the LDFI paper and prints them next to Molly's published figures.

mod common;

use std::collections::BTreeSet;
use std::time::Instant;

use common::{MOLLY, bounds, load_from, root};
use graft_verify::{Bounds, SearchOptions, Verdict, Verifier};

struct Case {
    name: &'static str,
    files: &'static [&'static str],
    facts: &'static [&'static str],
    bounds: Bounds,
}

/// Bounds with late messages (`--max-delay`).
const fn late(eot: u64, eff: u64, crashes: usize, max_delay: u64) -> Bounds {
    Bounds {
        eot,
        eff,
        crashes,
        max_delay,
    }
}

const BUGGY: &[Case] = &[
    Case {
        name: "naive broadcast",
        files: &["examples/broadcast-retry/buggy/broadcast-naive.graft"],
        facts: &[
            "examples/broadcast-retry/topology.facts",
            "examples/broadcast-retry/workload.facts",
        ],
        bounds: bounds(4, 2, 0),
    },
    Case {
        name: "2pc, coordinator crash",
        files: &["examples/2pc/buggy/2pc-blocking.graft"],
        facts: &["examples/2pc/topology.facts", "examples/2pc/workload.facts"],
        bounds: bounds(5, 0, 1),
    },
    Case {
        name: "paxos, quorum 1 of 3",
        files: &["examples/paxos/buggy/paxos-small-quorum.graft"],
        facts: &[
            "examples/paxos/topology.facts",
            "examples/paxos/workload.facts",
        ],
        bounds: bounds(8, 5, 0),
    },
    Case {
        name: "kvs, ack before replicating",
        files: &["examples/kvs/buggy/kvs-ack-early.graft"],
        facts: &["examples/kvs/topology.facts", "examples/kvs/workload.facts"],
        bounds: bounds(7, 3, 0),
    },
    Case {
        name: "register, arrival order",
        files: &["examples/register/buggy/register-arrival-order.graft"],
        facts: &[
            "examples/register/topology.facts",
            "examples/register/workload.facts",
        ],
        bounds: late(6, 4, 1, 2),
    },
    Case {
        name: "late retry, latest message",
        files: &["examples/late-retry/buggy/late-retry-latest-message.graft"],
        facts: &[
            "examples/late-retry/topology.facts",
            "examples/late-retry/workload.facts",
        ],
        bounds: late(6, 4, 1, 2),
    },
    Case {
        name: "ack window, latest ack",
        files: &["examples/ack-window/buggy/ack-window-latest-ack.graft"],
        facts: &[
            "examples/ack-window/topology.facts",
            "examples/ack-window/workload.facts",
        ],
        bounds: late(6, 4, 1, 2),
    },
];

const CORRECT: &[Case] = &[
    Case {
        name: "late retry, late messages",
        files: &["examples/late-retry/late-retry.graft"],
        facts: &[
            "examples/late-retry/topology.facts",
            "examples/late-retry/workload.facts",
        ],
        bounds: late(6, 4, 1, 2),
    },
    Case {
        name: "ack window, late messages",
        files: &["examples/ack-window/ack-window.graft"],
        facts: &[
            "examples/ack-window/topology.facts",
            "examples/ack-window/workload.facts",
        ],
        bounds: late(6, 4, 1, 2),
    },
    Case {
        name: "register, late messages",
        files: &["examples/register/register.graft"],
        facts: &[
            "examples/register/topology.facts",
            "examples/register/workload.facts",
        ],
        bounds: late(6, 4, 1, 2),
    },
    Case {
        name: "retry broadcast",
        files: &["examples/broadcast-retry/broadcast-retry.graft"],
        facts: &[
            "examples/broadcast-retry/topology.facts",
            "examples/broadcast-retry/workload.facts",
        ],
        bounds: bounds(4, 2, 0),
    },
    Case {
        name: "relay broadcast",
        files: &["examples/broadcast-relay/broadcast-relay.graft"],
        facts: &[
            "examples/broadcast-relay/topology.facts",
            "examples/broadcast-relay/workload.facts",
        ],
        bounds: bounds(4, 0, 1),
    },
    Case {
        name: "kvs",
        files: &["examples/kvs/kvs.graft"],
        facts: &["examples/kvs/topology.facts", "examples/kvs/workload.facts"],
        bounds: bounds(7, 3, 0),
    },
    Case {
        name: "paxos, concurrent proposers",
        files: &["examples/paxos/paxos.graft"],
        facts: &[
            "examples/paxos/topology.facts",
            "examples/paxos/buggy/workload-concurrent.facts",
        ],
        bounds: bounds(6, 2, 0),
    },
    Case {
        name: "ack broadcast",
        files: &["examples/broadcast-ack/broadcast-ack.graft"],
        facts: &[
            "examples/broadcast-ack/topology.facts",
            "examples/broadcast-ack/workload.facts",
        ],
        bounds: bounds(4, 2, 0),
    },
];

fn load(case: &Case) -> Result<Verifier, String> {
    load_from(
        &root(),
        case.files,
        case.facts,
        BTreeSet::new(),
        case.bounds,
    )
    .map_err(|error| format!("{}: {error}", case.name))
}

/// Executions to the first counterexample of the random strategy, over `seeds` seeds: the
/// mean over the seeds that found one, and how many did.
fn random_mean(verifier: &Verifier, options: &SearchOptions, seeds: u64) -> (Option<f64>, u64) {
    let mut total = 0_u64;
    let mut found = 0_u64;
    for seed in 0..seeds {
        if let Ok(search) = verifier.random(options, seed, &mut |_| {})
            && search.verdict == Verdict::Counterexample
        {
            found += 1;
            total += search.executions;
        }
    }
    let mean = (found > 0).then(|| total as f64 / found as f64);
    (mean, found)
}

/// Molly's corpus side by side with Molly's published figures.
fn molly_corpus(options: &SearchOptions, seeds: u64) {
    println!();
    let Some(directory) = std::env::var_os("GRAFT_MOLLY_CORPUS") else {
        println!(
            "Molly's corpus: skipped; set GRAFT_MOLLY_CORPUS to a copy of Molly's \
             src/test/resources/examples_ft (see docs/verification.md)"
        );
        return;
    };
    let base = std::path::PathBuf::from(directory);
    println!(
        "{:<24} {:>8} {:>13} {:>8} {:>9} {:>14} {:>7} {:>13}",
        "Molly's corpus",
        "bounds",
        "LDFI execs",
        "LDFI s",
        "symmetry",
        "random execs",
        "Molly",
        "Molly random"
    );
    for case in MOLLY {
        let nodes = case.nodes.iter().map(|node| (*node).to_string()).collect();
        let verifier = match load_from(&base, case.files, &[], nodes, case.bounds) {
            Ok(verifier) => verifier,
            Err(error) => {
                println!("{:<24} skipped: {error}", case.name);
                continue;
            }
        };
        let start = Instant::now();
        let ldfi = verifier.ldfi(options, &mut |_| {});
        let seconds = start.elapsed().as_secs_f64();
        let (executions, verdict) = match &ldfi {
            Ok(search) => (search.executions, search.verdict),
            Err(_) => (0, Verdict::Inconclusive),
        };
        let symmetric = SearchOptions {
            symmetry: true,
            ..options.clone()
        };
        let with_symmetry = match verifier.ldfi(&symmetric, &mut |_| {}) {
            Ok(search) if search.verdict == verdict => search.executions.to_string(),
            Ok(search) => format!("{} ({:?}!)", search.executions, search.verdict),
            Err(_) => "-".to_string(),
        };
        let verdict_text = match verdict {
            Verdict::Counterexample => "bug",
            Verdict::Certified => "ok",
            Verdict::Inconclusive => "?",
        };
        let random = if case.buggy {
            match random_mean(&verifier, options, seeds) {
                (Some(mean), found) => format!("{mean:.2} ({found}/{seeds})"),
                (None, _) => format!("- (0/{seeds})"),
            }
        } else {
            String::new()
        };
        let expected = if case.buggy {
            Verdict::Counterexample
        } else {
            Verdict::Certified
        };
        let bounds = case.bounds;
        println!(
            "{:<24} {:>8} {:>13} {:>8.3} {:>9} {:>14} {:>7} {:>13}{}",
            case.name,
            format!("{}/{}/{}", bounds.eot, bounds.eff, bounds.crashes),
            format!("{executions} {verdict_text}"),
            seconds,
            with_symmetry,
            random,
            case.molly,
            case.molly_random,
            if verdict == expected {
                ""
            } else {
                "  (verdict differs from Molly's!)"
            }
        );
    }
    println!(
        "(bounds EOT/EFF/crashes; symmetry: LDFI executions with --use-symmetry; \
         * the paper's figure for its `good` specification)"
    );
}

fn main() {
    let seeds = 25_u64;
    let options = SearchOptions {
        max_executions: 5_000,
        ..SearchOptions::default()
    };
    println!(
        "{:<30} {:>12} {:>10} {:>16} {:>12}",
        "buggy example", "LDFI execs", "LDFI s", "random execs", "random s"
    );
    for case in BUGGY {
        let verifier = match load(case) {
            Ok(verifier) => verifier,
            Err(error) => {
                println!("{:<30} skipped: {error}", case.name);
                continue;
            }
        };
        let start = Instant::now();
        let ldfi = verifier.ldfi(&options, &mut |_| {});
        let ldfi_seconds = start.elapsed().as_secs_f64();
        let (ldfi_execs, ldfi_verdict) = match &ldfi {
            Ok(search) => (search.executions, search.verdict),
            Err(_) => (0, Verdict::Inconclusive),
        };
        let start = Instant::now();
        let (mean, found) = random_mean(&verifier, &options, seeds);
        let random_seconds = start.elapsed().as_secs_f64() / seeds as f64;
        let mean = match mean {
            Some(mean) => format!("{mean:.2} ({found}/{seeds})"),
            None => format!("- (0/{seeds})"),
        };
        println!(
            "{:<30} {:>12} {:>10.3} {:>16} {:>12.3}{}",
            case.name,
            ldfi_execs,
            ldfi_seconds,
            mean,
            random_seconds,
            if ldfi_verdict == Verdict::Counterexample {
                ""
            } else {
                "  (LDFI found no counterexample!)"
            }
        );
    }
    println!();
    println!(
        "{:<30} {:>12} {:>10} {:>14} {:>9}",
        "correct example", "executions", "seconds", "verdict", "symmetry"
    );
    for case in CORRECT {
        let Ok(verifier) = load(case) else {
            println!("{:<30} skipped", case.name);
            continue;
        };
        let start = Instant::now();
        let Ok(search) = verifier.ldfi(&options, &mut |_| {}) else {
            continue;
        };
        let seconds = start.elapsed().as_secs_f64();
        let symmetric = SearchOptions {
            symmetry: true,
            ..options.clone()
        };
        let with_symmetry = match verifier.ldfi(&symmetric, &mut |_| {}) {
            Ok(found) if found.verdict == search.verdict => found.executions.to_string(),
            Ok(found) => format!("{} ({:?}!)", found.executions, found.verdict),
            Err(_) => "-".to_string(),
        };
        println!(
            "{:<30} {:>12} {:>10.3} {:>14?} {:>9}",
            case.name, search.executions, seconds, search.verdict, with_symmetry
        );
    }
    molly_corpus(&options, seeds);
}
