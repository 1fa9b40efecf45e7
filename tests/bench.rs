//! End-to-end tests of `graft bench` on small scales: the report's structure in text and JSON,
//! the per-node load chart, determinism of everything but the timing figures, how versions
//! are named, and bad input (an unknown version, a workload at a node the topology does not
//! name, a scale of 0, a workload without traffic), each with a clear message and a non-zero
//! exit status.

mod common;

use std::path::{Path, PathBuf};

use common::{exit_code, graft, transcript};
use serde_json::Value;

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let directory = std::env::temp_dir().join(format!("graft-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).expect("scratch directory");
    directory
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Runs a bench with `--format json -o DIR`; the report parsed, and the chart's text.
#[track_caller]
fn bench_json(args: &[&str], directory: &Path) -> (Value, String) {
    let mut all: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    all.extend([
        "--format".to_owned(),
        "json".to_owned(),
        "-o".to_owned(),
        path_arg(directory),
    ]);
    let output = graft(&all);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    let printed: Value = serde_json::from_slice(&output.stdout).expect("the report is JSON");
    let written = std::fs::read_to_string(directory.join("bench.json")).expect("bench.json");
    let written: Value = serde_json::from_str(&written).expect("bench.json is JSON");
    assert_eq!(
        printed, written,
        "the report printed and the one written differ"
    );
    let svg = std::fs::read_to_string(directory.join("loads.svg")).expect("loads.svg");
    (printed, svg)
}

/// The report without its timing figures.
fn without_timing(mut report: Value) -> Value {
    for protocol in report["protocols"].as_array_mut().expect("protocols") {
        for version in protocol["versions"].as_array_mut().expect("versions") {
            let timing = version
                .as_object_mut()
                .expect("a version is an object")
                .remove("timing")
                .expect("every version has its timing");
            assert!(timing["wall_seconds"].as_f64().expect("wall time") >= 0.0);
            assert!(timing["committed_per_second"].as_f64().expect("rate") >= 0.0);
        }
    }
    report
}

#[test]
fn voting_versions_report_loads_and_are_deterministic_but_for_timing() {
    let first_dir = scratch("voting-1");
    let second_dir = scratch("voting-2");
    let args = [
        "bench",
        "examples/voting",
        "--scale",
        "40",
        "--workers",
        "2",
    ];
    let (first, first_svg) = bench_json(&args, &first_dir);
    let (second, second_svg) = bench_json(&args, &second_dir);
    assert_eq!(first_svg, second_svg, "the chart differs between two runs");
    assert_eq!(without_timing(first.clone()), without_timing(second));

    assert_eq!(first["format"], "graft-bench/1");
    assert_eq!(first["workers"], 2);
    let protocol = &first["protocols"][0];
    assert_eq!(protocol["protocol"], "examples/voting");
    assert_eq!(protocol["scale"], 40);
    assert_eq!(protocol["committed_relation"], "decided");
    // 40 requests and, for every tenth, a rejection by each of the three voters.
    assert_eq!(protocol["requests"], 40 + 4 * 3);
    let versions = protocol["versions"].as_array().expect("versions");
    let names: Vec<&str> = versions
        .iter()
        .map(|version| version["version"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "voting.graft",
            "decouple-collector",
            "decouple-partition-collector",
            "partition-leader"
        ]
    );
    for version in versions {
        let name = version["version"].as_str().expect("name");
        // Every request is decided by every version.
        assert_eq!(version["committed"], 40, "{name}");
        let nodes = version["nodes"].as_array().expect("nodes");
        let mut busiest = ("", 0);
        let mut total = 0;
        for node in nodes {
            let load = node["load"].as_u64().expect("load");
            let parts = node["facts_derived"].as_u64().expect("facts")
                + node["messages_sent"].as_u64().expect("sent")
                + node["messages_received"].as_u64().expect("received");
            assert_eq!(load, parts, "{name}: a node's load is the sum of its parts");
            total += load;
            if load > busiest.1 {
                busiest = (node["node"].as_str().expect("node"), load);
            }
            // Each node is drawn, with its load printed after its bar.
            assert!(
                first_svg.contains(&format!(">{}</text>", node["node"].as_str().expect("node"))),
                "{name}: the chart has no label for {node}"
            );
        }
        assert_eq!(version["busiest_node"], busiest.0, "{name}");
        assert_eq!(version["busiest_load"], busiest.1, "{name}");
        assert_eq!(version["total_load"], total, "{name}");
        // Messages sent are messages received: nothing is lost without faults.
        let sent: u64 = nodes
            .iter()
            .map(|n| n["messages_sent"].as_u64().unwrap())
            .sum();
        let received: u64 = nodes
            .iter()
            .map(|n| n["messages_received"].as_u64().unwrap())
            .sum();
        assert_eq!(sent, received, "{name}");
        assert!(sent > 0, "{name}");
    }
    // The original's only leader does all the leader's work; every version splits it.
    assert_eq!(versions[0]["busiest_node"], "L");
    assert!(versions[0].get("compared_with").is_none());
    for version in &versions[1..] {
        assert_eq!(version["compared_with"], "voting.graft");
        let ratio = version["measured_load_ratio"]
            .as_f64()
            .expect("a load ratio");
        assert!(ratio > 1.5, "{}: load ratio {ratio}", version["version"]);
        // The worker ratio compares the busiest workers' loads per tick the same way.
        let busiest_worker_per_tick = |version: &Value| {
            let loads = version["worker_loads"].as_array().expect("worker loads");
            assert_eq!(loads.len(), 2);
            let busiest = loads
                .iter()
                .filter_map(Value::as_u64)
                .max()
                .expect("a load");
            busiest as f64 / version["ticks"].as_u64().expect("ticks") as f64
        };
        // Rounded to three decimals, as every ratio in the report.
        let expected = (busiest_worker_per_tick(&versions[0]) / busiest_worker_per_tick(version)
            * 1000.0)
            .round()
            / 1000.0;
        let worker_ratio = version["worker_load_ratio"]
            .as_f64()
            .expect("a worker ratio");
        assert!(
            (worker_ratio - expected).abs() < 1e-9,
            "{}: worker ratio {worker_ratio}, expected {expected}",
            version["version"]
        );
    }
    assert!(first_svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(first_svg.trim_end().ends_with("</svg>"));
    assert_eq!(
        first_svg.matches("<svg").count(),
        first_svg.matches("</svg>").count()
    );
    for legend in ["facts derived", "messages sent", "messages received"] {
        assert!(
            first_svg.contains(legend),
            "the chart's legend lacks {legend}"
        );
    }
}

#[test]
fn text_report_names_every_column_and_node() {
    let output = graft(&[
        "bench",
        "examples/2pc/versions/partition-participant",
        "examples/2pc/2pc.graft",
        "--scale",
        "20",
    ]);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "graft bench examples/2pc: workload examples/2pc/bench.template at scale 20 (20 workload facts), 1 worker(s); committed = rows of `decision`"
    );
    assert!(lines[2].starts_with("version "), "{text}");
    for column in [
        "ticks",
        "committed",
        "wall (s)",
        "committed/s",
        "speed-up",
        "busiest node",
        "its load",
        "load ratio",
        "worker ratio",
    ] {
        assert!(
            lines[2].contains(column),
            "the table lacks `{column}`: {}",
            lines[2]
        );
    }
    // Named in that order: the version first, then its source.
    assert!(lines[3].starts_with("partition-participant "), "{text}");
    assert!(lines[4].starts_with("2pc.graft "), "{text}");
    assert!(
        text.contains("per-node load of partition-participant"),
        "{text}"
    );
    for node in ["C", "p1/0", "p1/1", "p3/1"] {
        assert!(
            text.lines()
                .any(|line| line.split_whitespace().next() == Some(node)),
            "no row for node {node}: {text}"
        );
    }
}

#[test]
fn model_column_compares_the_cost_model_with_the_runtime() {
    let directory = scratch("model");
    let (report, _) = bench_json(
        &["bench", "examples/voting", "--scale", "20", "--model"],
        &directory,
    );
    let versions = report["protocols"][0]["versions"]
        .as_array()
        .expect("versions");
    let original = &versions[0]["model"];
    assert_eq!(original["busiest_node"], "L");
    assert!(original.get("predicted_load_ratio").is_none());
    for version in &versions[1..] {
        let model = &version["model"];
        let predicted = model["predicted_load_ratio"].as_f64().expect("predicted");
        let measured = version["measured_load_ratio"].as_f64().expect("measured");
        assert!(predicted > 0.0 && measured > 0.0);
        assert_eq!(
            model["within_25_percent"].as_bool().expect("verdict"),
            (predicted / measured - 1.0).abs() <= 0.25
        );
    }
}

/// The cost model counts each node's work as the runtime's node-local engine does it: on every
/// bundled protocol with versions and a bench template, every node's facts derived, messages
/// sent and messages received are the runtime's counts exactly.
#[test]
fn the_model_counts_every_nodes_work_as_the_runtime_does() {
    let directory = scratch("model-nodes");
    let (report, _) = bench_json(
        &[
            "bench",
            "examples/voting",
            "examples/2pc",
            "examples/paxos",
            "examples/kvs",
            "examples/broadcast-best-effort",
            "--scale",
            "20",
            "--model",
        ],
        &directory,
    );
    let protocols = report["protocols"].as_array().expect("protocols");
    assert_eq!(protocols.len(), 5);
    let mut versions_seen = 0;
    for protocol in protocols {
        for version in protocol["versions"].as_array().expect("versions") {
            versions_seen += 1;
            let name = format!("{} {}", protocol["protocol"], version["version"]);
            let counts = |nodes: &Value| -> std::collections::BTreeMap<String, [u64; 3]> {
                nodes
                    .as_array()
                    .expect("nodes")
                    .iter()
                    .filter(|node| node["load"].as_u64() != Some(0))
                    .map(|node| {
                        let count = |field: &str| node[field].as_u64().expect("a count");
                        (
                            node["node"].as_str().expect("a name").to_owned(),
                            [
                                count("facts_derived"),
                                count("messages_sent"),
                                count("messages_received"),
                            ],
                        )
                    })
                    .collect()
            };
            let measured = counts(&version["nodes"]);
            let modelled = counts(&version["model"]["nodes"]);
            assert!(!measured.is_empty(), "{name}: no node worked");
            assert_eq!(modelled, measured, "{name}: the model's counts differ");
            assert_eq!(
                version["model"]["busiest_load"], version["busiest_load"],
                "{name}"
            );
        }
    }
    assert_eq!(versions_seen, 14);
}

#[test]
fn paxos_runs_a_template_that_generates_its_topology() {
    let directory = scratch("paxos");
    let (report, _) = bench_json(
        &["bench", "examples/paxos/paxos.graft", "--scale", "12"],
        &directory,
    );
    let protocol = &report["protocols"][0];
    assert_eq!(protocol["committed_relation"], "chosen");
    let version = &protocol["versions"][0];
    // Every proposer learns the chosen value.
    assert_eq!(version["committed"], 12);
    assert_eq!(version["nodes"].as_array().expect("nodes").len(), 12 + 3);
}

#[test]
fn unknown_versions_are_refused() {
    let output = graft(&["bench", "examples/voting/versions/no-such-version"]);
    assert_eq!(exit_code(&output), 2, "{}", transcript(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`examples/voting/versions/no-such-version` does not exist"),
        "{stderr}"
    );
    let output = graft(&["bench", "examples/voting/README.md"]);
    assert_eq!(exit_code(&output), 2, "{}", transcript(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("is neither a directory nor a .graft program"),
        "{}",
        transcript(&output)
    );
    let output = graft(&["bench", "docs"]);
    assert_eq!(exit_code(&output), 2, "{}", transcript(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("`docs` holds no .graft program"),
        "{}",
        transcript(&output)
    );
}

/// Writes a template into a scratch directory; its path.
fn template(name: &str, text: &str) -> String {
    let directory = scratch(name);
    let path = directory.join("bench.template");
    std::fs::write(&path, text).expect("write the template");
    std::fs::copy(
        common::root().join("examples/voting/topology.facts"),
        directory.join("topology.facts"),
    )
    .expect("copy the topology");
    path_arg(&path)
}

#[test]
fn a_workload_at_a_node_the_topology_does_not_name_is_refused() {
    let path = template(
        "missing-node",
        "committed decided;\ninclude \"topology.facts\";\nfor I in 1..=N: request(\"L\", I)@1;\nrequest(\"M\", 7)@2;\n",
    );
    let output = graft(&["bench", "examples/voting", "--facts", &path, "--scale", "3"]);
    assert_eq!(exit_code(&output), 2, "{}", transcript(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: the workload fact request(\"M\", 7)@2 (template line 4) is located at `M`, which no topology fact names (nodes: L, v1, v2, v3); fix the template or add the node to the topology\n"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn a_scale_of_zero_is_a_usage_error() {
    let output = graft(&["bench", "examples/voting", "--scale", "0"]);
    assert_eq!(exit_code(&output), 2, "{}", transcript(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("invalid value '0' for '--scale <N>'"),
        "{}",
        transcript(&output)
    );
}

#[test]
fn a_workload_without_traffic_is_refused_and_nothing_is_written() {
    let out = scratch("no-traffic-out").join("report");
    // No request at all at this scale.
    let path = template(
        "no-requests",
        "committed decided;\ninclude \"topology.facts\";\nfor I in 1..=N - 1: request(\"L\", I)@1;\n",
    );
    let output = graft(&[
        "bench",
        "examples/voting",
        "--facts",
        &path,
        "--scale",
        "1",
        "-o",
        &path_arg(&out),
    ]);
    assert_eq!(exit_code(&output), 2, "{}", transcript(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("error: the workload has no traffic: at scale 1 it gives no workload fact"),
        "{}",
        transcript(&output)
    );
    assert!(!out.exists(), "a report was written");
    // Workload facts that make no node send anything.
    let path = template(
        "no-messages",
        "committed decided;\ninclude \"topology.facts\";\nfor I in 1..=N: reject(\"v1\", I)@1;\n",
    );
    let output = graft(&[
        "bench",
        "examples/voting",
        "--facts",
        &path,
        "--scale",
        "2",
        "-o",
        &path_arg(&out),
    ]);
    assert_eq!(exit_code(&output), 2, "{}", transcript(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(
            "error: the workload has no traffic: running `voting.graft` on it sent no message"
        ),
        "{}",
        transcript(&output)
    );
    assert!(!out.exists(), "a report was written");
}

#[test]
fn template_errors_name_the_line_and_program_errors_render_as_diagnostics() {
    let path = template(
        "bad-template",
        "committed decided;\ninclude \"topology.facts\";\nfor I in 1..=N: request(\"L\", J)@1;\n",
    );
    let output = graft(&["bench", "examples/voting", "--facts", &path, "--scale", "2"]);
    assert_eq!(exit_code(&output), 2, "{}", transcript(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bench.template`, line 3: `J` is not defined here"),
        "{stderr}"
    );
    // A fact of a relation the program does not have: a diagnostic, exit status 1.
    let path = template(
        "bad-relation",
        "committed decided;\ninclude \"topology.facts\";\nfor I in 1..=N: requests(\"L\", I)@1;\n",
    );
    let output = graft(&["bench", "examples/voting", "--facts", &path, "--scale", "2"]);
    assert_eq!(exit_code(&output), 1, "{}", transcript(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("requests"), "{stderr}");
    assert!(stderr.contains("nothing was run"), "{stderr}");
}

/// Versions named relative to the protocol directory, as a user inside it names them
/// (`versions/NAME`, whose protocol is `.`).
#[test]
fn versions_named_from_inside_the_protocol_directory() {
    let output = common::graft_in(
        &common::root().join("examples/voting"),
        &[
            "bench",
            "voting.graft",
            "versions/decouple-collector",
            "--scale",
            "20",
            "--format",
            "json",
        ],
    );
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let versions = report["protocols"][0]["versions"]
        .as_array()
        .expect("versions");
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1]["compared_with"], "voting.graft");
    assert_eq!(versions[1]["committed"], 20);
}

#[test]
fn multipaxos_commits_every_command_of_its_template() {
    let directory = scratch("multipaxos");
    let (report, _) = bench_json(
        &["bench", "examples/multipaxos", "--scale", "30"],
        &directory,
    );
    let protocol = &report["protocols"][0];
    assert_eq!(protocol["committed_relation"], "committed");
    for version in protocol["versions"].as_array().expect("versions") {
        assert_eq!(version["committed"], 30, "{version:#}");
    }
}
