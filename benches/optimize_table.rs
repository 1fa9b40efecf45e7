//! The table of issue 13: for the paper's three protocols, the throughput gain the SIGMOD'24
//! evaluation measured and the machines it used, next to what `graft optimize` finds by
//! itself under the same machine budget, the gain its cost model predicts, and the gain
//! `graft bench` measures on the timely runtime with 2 workers.
//!
//! `cargo bench --bench optimize_table` builds `graft` and, for each protocol, as a user
//! would:
//!
//! 1. copies the protocol directory (without its versions) to `target/optimize-table/NAME`;
//! 2. runs `graft optimize` on its scale workload (`workload-scale.facts`) with the paper's
//!    machines as the budget and `--jobs 2`, writing the version to `versions/optimized`;
//! 3. rewrites the protocol's other workloads for the version with the same passes
//!    (`graft rewrite --facts-out`), so that every check of the protocol applies to it;
//! 4. `graft test` (after `--accept` for the new snapshots): the version against its source;
//! 5. `graft verify`: the protocol's configurations, and the version refining its source;
//! 6. `graft bench` on the protocol's `bench.template` at its default scale (10^5 requests
//!    for voting and 2PC, 10^4 commands for Paxos), source and version, `--workers 2
//!    --repeat 3`: the measured speed-up in committed requests per second, the ratio of the
//!    busiest workers' loads (the speed-up two workers can show when time follows load) and
//!    the measured ratio of the busiest nodes' loads.
//!
//! Words after `--` pick protocols by name; `--scale=N` benches at another scale.

use std::path::Path;
use std::process::{Command, Output};
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

fn graft(directory: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_graft"))
        .current_dir(directory)
        .args(args)
        .output()
        .expect("graft runs")
}

/// Whether a run exited 0; prints its output when not.
fn passed(what: &str, output: &Output) -> bool {
    if output.status.success() {
        return true;
    }
    eprintln!(
        "{what}: exit {:?}\n{}{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    false
}

/// Copies the protocol directory (program, facts, protocol.json, bench template, snapshots,
/// buggy variants), without its versions.
fn copy_protocol(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).expect("scratch directory");
    for entry in std::fs::read_dir(from).expect("protocol directory") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name");
        if path.is_file() {
            std::fs::copy(&path, to.join(name)).expect("copy");
        } else if path.is_dir() && name != "versions" {
            copy_protocol(&path, &to.join(name));
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let picked: Vec<&String> = args.iter().filter(|arg| !arg.starts_with('-')).collect();
    let scale = args
        .iter()
        .find_map(|arg| arg.strip_prefix("--scale="))
        .map(str::to_owned);
    let mut rows = Vec::new();
    for (name, program, facts, paper_factor, paper_machines) in PROTOCOLS {
        if !picked.is_empty() && !picked.iter().any(|p| p == name) {
            continue;
        }
        let source = root.join(Path::new(program).parent().expect("directory"));
        let program = Path::new(program)
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let directory = root.join("target/optimize-table").join(name);
        copy_protocol(&source, &directory);
        // 2. The search.
        let mut search: Vec<String> = vec!["optimize".into(), program.clone()];
        for file in *facts {
            search.push("--facts".into());
            search.push(
                Path::new(file)
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        let budget = paper_machines.to_string();
        search.extend(
            [
                "--machines",
                &budget,
                "--max-steps",
                "4",
                "--jobs",
                "2",
                "-o",
                "versions/optimized",
            ]
            .map(String::from),
        );
        let started = Instant::now();
        let output = graft(
            &directory,
            &search.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let seconds = started.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let Some((factor, machines)) = predicted(&stdout) else {
            passed(&format!("{name}: graft optimize"), &output);
            rows.push(format!(
                "{name:<8} {:>6} {paper_machines:>9} {:>10}",
                format!("{paper_factor:.1}x"),
                "none"
            ));
            continue;
        };
        let plan: Vec<String> = stdout
            .lines()
            .skip_while(|line| !line.starts_with("step"))
            .skip(1)
            .take_while(|line| !line.is_empty())
            .filter_map(|line| line.split_whitespace().nth(1).map(|_| line.to_owned()))
            .collect();
        let justification: serde_json::Value = serde_json::from_slice(
            &std::fs::read(directory.join("versions/optimized/justification.json"))
                .expect("justification"),
        )
        .expect("JSON");
        let passes: Vec<String> = justification["passes"]
            .as_array()
            .expect("passes")
            .iter()
            .map(|pass| pass["request"].as_str().expect("request").to_owned())
            .collect();
        // 3. The other workloads, rewritten by the same passes.
        let mut rewrite: Vec<String> = vec!["rewrite".into(), program.clone()];
        for entry in std::fs::read_dir(&directory).expect("list") {
            let file = entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            if file.ends_with(".facts") && file != "workload-scale.facts" {
                rewrite.extend(["--facts".into(), file]);
            }
        }
        for pass in &passes {
            rewrite.extend(["--pass".into(), pass.clone()]);
        }
        rewrite.extend(
            [
                "-o",
                "target-program.graft",
                "--facts-out",
                "versions/optimized",
            ]
            .map(String::from),
        );
        let rewritten = graft(
            &directory,
            &rewrite.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let same_program = passed(&format!("{name}: graft rewrite"), &rewritten)
            && std::fs::read(directory.join("target-program.graft")).ok()
                == std::fs::read(directory.join("versions/optimized").join(&program)).ok();
        let _ = std::fs::remove_file(directory.join("target-program.graft"));
        // 4 and 5. The checks a user runs on a protocol directory.
        let accepted = graft(&directory, &["test", ".", "--accept"]);
        let tested = passed(&format!("{name}: graft test --accept"), &accepted)
            && passed(
                &format!("{name}: graft test"),
                &graft(&directory, &["test", "."]),
            );
        let verified = graft(&directory, &["verify", "."]);
        let refines = passed(&format!("{name}: graft verify"), &verified)
            && String::from_utf8_lossy(&verified.stdout).contains("versions/optimized");
        // 6. Measured on the timely runtime.
        let mut bench = vec![
            "bench",
            &program,
            "versions/optimized",
            "--workers",
            "2",
            "--repeat",
            "3",
            "--format",
            "json",
        ];
        if let Some(scale) = &scale {
            bench.extend(["--scale", scale]);
        }
        let benched = graft(&directory, &bench);
        let (speed_up, load_ratio, worker_ratio, requests) =
            if passed(&format!("{name}: graft bench"), &benched) {
                let report: serde_json::Value =
                    serde_json::from_slice(&benched.stdout).expect("bench JSON");
                let protocol = &report["protocols"][0];
                let version = &protocol["versions"][1];
                (
                    format!(
                        "{:.2}x",
                        version["timing"]["throughput_ratio"]
                            .as_f64()
                            .unwrap_or(0.0)
                    ),
                    format!(
                        "{:.2}x",
                        version["measured_load_ratio"].as_f64().unwrap_or(0.0)
                    ),
                    format!(
                        "{:.2}x",
                        version["worker_load_ratio"].as_f64().unwrap_or(0.0)
                    ),
                    protocol["requests"].as_u64().unwrap_or(0),
                )
            } else {
                let failed = || "failed".to_owned();
                (failed(), failed(), failed(), 0)
            };
        let verdict = |ok: bool| if ok { "yes" } else { "NO" };
        rows.push(format!(
            "{name:<8} {:>6} {paper_machines:>9} {:>10} {machines:>9} {speed_up:>12} {worker_ratio:>12} {load_ratio:>12} {requests:>9} {:>5} {:>8} {:>9} {seconds:>9.1}",
            format!("{paper_factor:.1}x"),
            format!("{factor}x"),
            verdict(tested),
            verdict(refines),
            verdict(same_program),
        ));
        for line in plan {
            rows.push(format!("         {line}"));
        }
    }
    println!(
        "{:<8} {:>6} {:>9} {:>10} {:>9} {:>12} {:>12} {:>12} {:>9} {:>5} {:>8} {:>9} {:>9}",
        "protocol",
        "paper",
        "machines",
        "predicted",
        "machines",
        "measured 2wk",
        "worker ratio",
        "load ratio",
        "requests",
        "test",
        "refines",
        "rewrite=",
        "search s"
    );
    for row in rows {
        println!("{row}");
    }
}
