//! Benchmark: executions to the first counterexample and wall time for each buggy example,
//! LDFI against random fault injection (mean of 25 seeds), and the certification of the
//! correct versions. Run with `cargo bench -p graft-verify`.

use std::collections::BTreeSet;
use std::time::Instant;

use graft_verify::{Bounds, SearchOptions, Verdict, Verifier};

struct Case {
    name: &'static str,
    files: &'static [&'static str],
    facts: &'static [&'static str],
    bounds: Bounds,
}

const fn bounds(eot: u64, eff: u64, crashes: usize) -> Bounds {
    Bounds { eot, eff, crashes }
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
];

const CORRECT: &[Case] = &[
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

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default()
}

fn load(case: &Case) -> Result<Verifier, String> {
    let base = root();
    let roots: Vec<String> = case
        .files
        .iter()
        .map(|file| base.join(file).to_string_lossy().into_owned())
        .collect();
    let mut read = |path: &str| std::fs::read_to_string(path).map_err(|error| error.to_string());
    let mut loaded = graft_language::loader::load_program(&roots, &mut read);
    let checked = graft_compiler::check(&loaded.sources, &loaded.files);
    if checked.has_errors() || !loaded.diagnostics.is_empty() {
        return Err(format!("{} does not check", case.name));
    }
    let mut files = Vec::new();
    for path in case.facts {
        let text = std::fs::read_to_string(base.join(path)).map_err(|error| error.to_string())?;
        let id = loaded.sources.add((*path).to_string(), text.clone());
        files.push(graft_language::parse(id, &text).file);
    }
    let (facts, diagnostics) = graft_compiler::check_facts(&checked.program, &files);
    if !diagnostics.is_empty() {
        return Err(format!("{}: workload does not check", case.name));
    }
    Verifier::new(&checked, facts, BTreeSet::new(), case.bounds).map_err(|error| error.to_string())
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
        let mut total = 0_u64;
        let mut found = 0_u64;
        let start = Instant::now();
        for seed in 0..seeds {
            if let Ok(search) = verifier.random(&options, seed, &mut |_| {})
                && search.verdict == Verdict::Counterexample
            {
                found += 1;
                total += search.executions;
            }
        }
        let random_seconds = start.elapsed().as_secs_f64() / seeds as f64;
        let mean = if found > 0 {
            format!("{:.2} ({found}/{seeds})", total as f64 / found as f64)
        } else {
            format!("- (0/{seeds})")
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
        "{:<30} {:>12} {:>10} {:>14}",
        "correct example", "executions", "seconds", "verdict"
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
        println!(
            "{:<30} {:>12} {:>10.3} {:>14?}",
            case.name,
            search.executions,
            start.elapsed().as_secs_f64(),
            search.verdict
        );
    }
}
