//! The table of issue 13: for the paper's three protocols, the throughput gain the SIGMOD'24
//! evaluation measured and the machines it used, next to what `graft optimize` finds by
//! itself under the same machine budget and the gain its cost model predicts.
//!
//! `cargo bench --bench optimize_table` builds `graft` and runs `graft optimize` on each
//! protocol's scale workload (`examples/*/workload-scale.facts`), then prints one row per
//! protocol. The measured column stays empty here: `graft bench` fills it from timely runs.
//! Words after `--` pick protocols by name.

use std::process::Command;
use std::time::Instant;

/// (name, program, facts, paper's factor, paper's machines).
const PROTOCOLS: &[(&str, &str, &[&str], f64, usize)] = &[
    (
        "voting",
        "examples/voting/voting.graft",
        &[
            "examples/voting/topology.facts",
            "examples/voting/workload-scale.facts",
        ],
        2.5,
        26,
    ),
    (
        "2pc",
        "examples/2pc/2pc.graft",
        &[
            "examples/2pc/topology.facts",
            "examples/2pc/workload-scale.facts",
        ],
        5.3,
        46,
    ),
    (
        "paxos",
        "examples/multipaxos/multipaxos.graft",
        &[
            "examples/multipaxos/topology.facts",
            "examples/multipaxos/workload-scale.facts",
        ],
        3.0,
        29,
    ),
];

/// From `predicted: bottleneck load X -> Y (Fx throughput), exchanges .., machines A -> B`:
/// (F, B).
fn predicted(stdout: &str) -> Option<(String, String)> {
    let line = stdout.lines().find(|line| line.starts_with("predicted:"))?;
    let factor = line.split('(').nth(1)?.split('x').next()?.to_owned();
    let machines = line.rsplit("-> ").next()?.trim().to_owned();
    Some((factor, machines))
}

fn main() {
    let root = env!("CARGO_MANIFEST_DIR");
    let picked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    println!(
        "{:<8} {:>12} {:>14} {:>16} {:>14} {:>22} {:>9}",
        "protocol",
        "paper gain",
        "paper machines",
        "graft predicted",
        "graft machines",
        "graft measured (2 wk)",
        "search s"
    );
    for (name, program, facts, paper_factor, paper_machines) in PROTOCOLS {
        if !picked.is_empty() && !picked.iter().any(|p| p == name) {
            continue;
        }
        let mut command = Command::new(env!("CARGO_BIN_EXE_graft"));
        command.current_dir(root).arg("optimize").arg(program);
        for file in *facts {
            command.arg("--facts").arg(file);
        }
        command
            .arg("--machines")
            .arg(paper_machines.to_string())
            .arg("--max-steps")
            .arg("4");
        let started = Instant::now();
        let output = command.output().expect("graft runs");
        let seconds = started.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let (factor, machines) = predicted(&stdout).unwrap_or_else(|| {
            (
                format!("none (exit {})", output.status.code().unwrap_or(-1)),
                "-".to_owned(),
            )
        });
        println!(
            "{name:<8} {:>12} {paper_machines:>14} {:>16} {machines:>14} {:>22} {seconds:>9.1}",
            format!("{paper_factor:.1}x"),
            format!("{factor}x"),
            "(graft bench)",
        );
    }
}
