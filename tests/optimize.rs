//! `graft optimize` as a user runs it: the plan it prints, the protocol directory it writes
//! (which `graft test` accepts against its source), determinism, and every kind of input it
//! refuses (no role, no traffic, a budget too small, an existing output) with nothing written.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{exit_code, graft, graft_in, root, transcript};

fn scratch(name: &str) -> PathBuf {
    let directory = root().join("target").join("optimize-tests").join(name);
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).expect("scratch directory");
    directory
}

/// Every file under `directory`, by relative path, with its bytes.
fn tree(directory: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).expect("list") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path
                    .strip_prefix(directory)
                    .expect("inside")
                    .to_string_lossy()
                    .into_owned();
                files.insert(relative, std::fs::read(&path).expect("read"));
            }
        }
    }
    files
}

const VOTING: &str = "examples/voting/voting.graft";
const TOPOLOGY: &str = "examples/voting/topology.facts";
const WORKLOAD: &str = "examples/voting/workload.facts";

fn voting_args(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["optimize", VOTING, "--facts", TOPOLOGY, "--facts", WORKLOAD]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

#[test]
fn the_plan_lists_each_step_with_the_bottleneck_before_and_after() {
    let output = graft(&voting_args(&[
        "--machines",
        "8",
        "--max-steps",
        "2",
        "--beam",
        "2",
    ]));
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    insta::assert_snapshot!(
        "plan_voting_8_machines",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn the_written_version_passes_graft_test_against_its_source() {
    let protocol = scratch("voting-protocol");
    for file in [VOTING, TOPOLOGY, WORKLOAD] {
        let name = Path::new(file).file_name().expect("name");
        std::fs::copy(root().join(file), protocol.join(name)).expect("copy");
    }
    let output = graft_in(
        &protocol,
        &[
            "optimize",
            "voting.graft",
            "--facts",
            "topology.facts",
            "--facts",
            "workload.facts",
            "--machines",
            "8",
            "--max-steps",
            "2",
            "--beam",
            "2",
            "-o",
            "versions/optimized",
        ],
    );
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    let version = protocol.join("versions/optimized");
    for file in [
        "voting.graft",
        "topology.facts",
        "workload.facts",
        "justification.json",
        "snapshots/voting__workload.snap",
    ] {
        assert!(version.join(file).is_file(), "no {file} in the version");
    }
    // The justification records every step, why it is safe and what the model predicted.
    let justification: serde_json::Value = serde_json::from_slice(
        &std::fs::read(version.join("justification.json")).expect("justification"),
    )
    .expect("JSON");
    let passes = justification["passes"].as_array().expect("passes");
    // One pass per step of the printed plan (its rows start with the step's number).
    let steps = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.starts_with(|c: char| c.is_ascii_digit()))
        .count();
    assert!(steps >= 1, "{}", transcript(&output));
    assert_eq!(passes.len(), steps, "{justification:#}");
    for pass in passes {
        assert!(
            !pass["preconditions"]
                .as_array()
                .expect("preconditions")
                .is_empty()
        );
        let predicted = &pass["predicted"];
        assert_eq!(predicted["objective"], "throughput");
        assert!(
            predicted["load_after"].as_u64().expect("load")
                <= predicted["load_before"].as_u64().expect("load")
        );
    }
    // The source's own snapshot, then the whole protocol passes, the version compared with its
    // source.
    let accept = graft(&["test", &protocol.to_string_lossy(), "--accept"]);
    assert_eq!(exit_code(&accept), 0, "{}", transcript(&accept));
    let test = graft(&["test", &protocol.to_string_lossy()]);
    assert_eq!(exit_code(&test), 0, "{}", transcript(&test));
    let stdout = String::from_utf8_lossy(&test.stdout);
    assert!(
        stdout.contains("versions/optimized/voting.graft on workload: same outputs as"),
        "{stdout}"
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
    // And it refines its source under LDFI's fault schedules (the source's bounds).
    let refines = graft(&[
        "verify",
        &version.join("voting.graft").to_string_lossy(),
        "--facts",
        &version.join("topology.facts").to_string_lossy(),
        "--facts",
        &version.join("workload.facts").to_string_lossy(),
        "--refines",
        "--eot",
        "5",
        "--eff",
        "2",
        "--crashes",
        "1",
        "--no-cache",
    ]);
    assert_eq!(exit_code(&refines), 0, "{}", transcript(&refines));
}

/// Two runs, one evaluating a version at a time and one two at a time, write the same bytes
/// and print the same plan and refusals.
#[test]
fn two_runs_write_byte_identical_directories_on_any_number_of_jobs() {
    let program = root().join(VOTING);
    let topology = root().join(TOPOLOGY);
    let workload = root().join(WORKLOAD);
    let mut trees = Vec::new();
    let mut outputs = Vec::new();
    for (run, jobs) in [("first", "1"), ("second", "2")] {
        let directory = scratch(&format!("determinism-{run}"));
        let output = graft_in(
            &directory,
            &[
                "optimize".as_ref(),
                program.as_os_str(),
                "--facts".as_ref(),
                topology.as_os_str(),
                "--facts".as_ref(),
                workload.as_os_str(),
                "--machines".as_ref(),
                "8".as_ref(),
                "--max-steps".as_ref(),
                "2".as_ref(),
                "--beam".as_ref(),
                "2".as_ref(),
                "--jobs".as_ref(),
                jobs.as_ref(),
                "--explain".as_ref(),
                "-o".as_ref(),
                "out".as_ref(),
            ],
        );
        assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
        outputs.push(output.stdout);
        trees.push(tree(&directory.join("out")));
    }
    assert!(!trees[0].is_empty());
    assert_eq!(
        trees[0].keys().collect::<Vec<_>>(),
        trees[1].keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &trees[0] {
        assert!(trees[1][name] == *bytes, "{name} differs between two runs");
    }
    assert_eq!(outputs[0], outputs[1], "the printed plan differs");
    let printed = String::from_utf8_lossy(&outputs[0]);
    assert!(
        printed.contains("  refused "),
        "--explain lists the refusals met:\n{printed}"
    );
}

#[test]
fn explain_lists_the_refusals_met() {
    let output = graft(&voting_args(&[
        "--machines",
        "6",
        "--max-steps",
        "1",
        "--explain",
    ]));
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("refusals and rejections met"), "{stdout}");
    assert!(
        stdout
            .contains("refused        batch(vote, ticks=2): consumer-not-confluent; on the source"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "decouple(leader, rels=[acked], to=leader_acked, on=new): stayer-reads-moved"
        ),
        "{stdout}"
    );
}

#[test]
fn no_step_helps_exits_4_and_writes_nothing() {
    let out = scratch("no-step-helps").join("out");
    let output = graft(&voting_args(&[
        "--machines",
        "6",
        "--max-steps",
        "1",
        "--objective",
        "messages",
        "-o",
        &out.to_string_lossy(),
    ]));
    assert_eq!(exit_code(&output), 4, "{}", transcript(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("no step helps"),
        "{}",
        transcript(&output)
    );
    assert!(!out.exists());
}

/// Runs a refused invocation: exit status 1, the message on standard error, nothing written.
#[track_caller]
fn check_refused(name: &str, args: &[String], message: &str) {
    let out = scratch(name).join("out");
    let mut args = args.to_vec();
    args.extend(["-o".to_owned(), out.to_string_lossy().into_owned()]);
    let output = graft(&args);
    assert_eq!(exit_code(&output), 1, "{}", transcript(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(message), "{}", transcript(&output));
    assert!(stderr.contains("nothing was written"), "{stderr}");
    assert!(!out.exists(), "something was written");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_budget_too_small_for_any_rewrite_is_refused() {
    check_refused(
        "budget-4",
        &voting_args(&["--machines", "4"]),
        "--machines 4 is too small for any rewrite: every decoupling or partition the search would try needs more (the smallest candidate, 5 machines)",
    );
    check_refused(
        "budget-3",
        &voting_args(&["--machines", "3"]),
        "--machines 3 is below the 4 machines the source already uses",
    );
    check_refused(
        "steps-0",
        &voting_args(&["--machines", "8", "--max-steps", "0"]),
        "--max-steps 0 allows no rewrite",
    );
}

#[test]
fn a_workload_with_no_traffic_is_refused() {
    let args: Vec<String> = ["optimize", VOTING, "--facts", TOPOLOGY, "--machines", "8"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    check_refused(
        "no-traffic",
        &args,
        "the workload sends no message in a fault-free run",
    );
}

#[test]
fn a_program_with_no_role_is_refused() {
    let args: Vec<String> = [
        "optimize",
        "tests/optimize/no-role.graft",
        "--facts",
        "tests/optimize/no-role.facts",
        "--machines",
        "8",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    check_refused("no-role", &args, "the program declares no role");
}

#[test]
fn an_existing_output_directory_is_left_alone() {
    let out = scratch("existing");
    std::fs::write(out.join("keep.txt"), "mine").expect("write");
    let output = graft(&voting_args(&[
        "--machines",
        "8",
        "-o",
        &out.to_string_lossy(),
    ]));
    assert_eq!(exit_code(&output), 2, "{}", transcript(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists"));
    assert_eq!(
        std::fs::read_to_string(out.join("keep.txt")).expect("kept"),
        "mine"
    );
    assert_eq!(std::fs::read_dir(&out).expect("list").count(), 1);
}

/// Chains of passes the search met whose outputs differed from the source's before the
/// passes were fixed: each pass's facts must follow what an earlier pass generated. A
/// partition after a decoupling moved the voters but left the routing table that the
/// decoupling gives every sender (`leader_vote_at`, located `at: node`) at the old voter
/// names, so no vote reached the collector; a decoupling after a partition copied the
/// inputs the moved rules read from the given facts but not from the partition's generated
/// ones (`leader_self`), so no vote was acknowledged. Each chain is written as a version of a
/// copy of the protocol, and `graft test` compares it with its source.
#[test]
fn chains_of_decouple_and_partition_keep_the_outputs() {
    let protocol = scratch("chains");
    for file in [VOTING, TOPOLOGY, WORKLOAD] {
        let name = Path::new(file).file_name().expect("name");
        std::fs::copy(root().join(file), protocol.join(name)).expect("copy");
    }
    let decouple = "decouple(leader, rels=[vote, requested, votes, yes_votes, no_votes, decided], to=leader_vote, on=new)";
    let chains = [
        (
            "decouple-then-partition",
            [decouple, "partition(voter, by=id, n=2)"],
        ),
        (
            "partition-then-decouple",
            ["partition(leader, by=id, n=2)", decouple],
        ),
    ];
    for (name, passes) in chains {
        let version = format!("versions/{name}");
        let mut args: Vec<String> = [
            "rewrite",
            "voting.graft",
            "--facts",
            "topology.facts",
            "--facts",
            "workload.facts",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for pass in passes {
            args.extend(["--pass".to_owned(), pass.to_owned()]);
        }
        args.extend([
            "-o".to_owned(),
            format!("{version}/voting.graft"),
            "--facts-out".to_owned(),
            version.clone(),
            "--justification".to_owned(),
            format!("{version}/justification.json"),
        ]);
        let output = graft_in(&protocol, &args);
        assert_eq!(exit_code(&output), 0, "{name}: {}", transcript(&output));
    }
    let accept = graft(&["test", &protocol.to_string_lossy(), "--accept"]);
    assert_eq!(exit_code(&accept), 0, "{}", transcript(&accept));
    let test = graft(&["test", &protocol.to_string_lossy()]);
    let stdout = String::from_utf8_lossy(&test.stdout);
    assert_eq!(exit_code(&test), 0, "{}", transcript(&test));
    for (name, _) in chains {
        assert!(
            stdout.contains(&format!(
                "versions/{name}/voting.graft on workload: same outputs as"
            )),
            "{stdout}"
        );
    }
}

/// Copies `tests/optimize/quorum-retry` (a leader that resends, round by round, until a quorum
/// acknowledged; a smaller quorum stops it a round earlier) into a scratch directory, with `extra` appended to the
/// program.
fn quorum_protocol(name: &str, extra: &str) -> PathBuf {
    let protocol = scratch(name);
    let from = root().join("tests/optimize/quorum-retry");
    for file in [
        "quorum-retry.graft",
        "topology.facts",
        "workload.facts",
        "protocol.json",
    ] {
        std::fs::copy(from.join(file), protocol.join(file)).expect("copy");
    }
    if !extra.is_empty() {
        let program = protocol.join("quorum-retry.graft");
        let mut text = std::fs::read_to_string(&program).expect("read");
        text.push_str(extra);
        std::fs::write(&program, text).expect("write");
    }
    protocol
}

fn optimize_quorum(protocol: &Path, out: Option<&str>) -> std::process::Output {
    let mut args = vec![
        "optimize",
        "quorum-retry.graft",
        "--facts",
        "topology.facts",
        "--facts",
        "workload.facts",
        "--machines",
        "5",
        "--max-steps",
        "2",
        "--explain",
    ];
    if let Some(out) = out {
        args.extend(["-o", out]);
    }
    graft_in(protocol, &args)
}

/// A quorum change that lowers the load is searched, verified under the protocol's bounds
/// before it is kept, and recorded as verified in the version's justification.
#[test]
fn a_quorum_change_that_helps_is_verified_and_kept() {
    let protocol = quorum_protocol("quorum-kept", "");
    let output = optimize_quorum(&protocol, Some("versions/optimized"));
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(
            "1     quorum(QUORUM=2)  L (leader)           76  L (leader)          70  5 -> 5"
        ),
        "{stdout}"
    );
    // A change that does not lower the load is never verified.
    assert!(
        stdout.contains("no-gain        quorum(N=4): does not lower the bottleneck's load (76 -> 76), so it was not verified; on the source"),
        "{stdout}"
    );
    let justification: serde_json::Value = serde_json::from_slice(
        &std::fs::read(protocol.join("versions/optimized/justification.json"))
            .expect("justification"),
    )
    .expect("JSON");
    let pass = &justification["passes"][0];
    assert_eq!(pass["request"], "quorum(QUORUM=2)");
    assert_eq!(pass["verified"][0]["eot"], 6, "{justification:#}");
    assert!(
        pass["preconditions"]
            .as_array()
            .expect("preconditions")
            .iter()
            .any(|p| p["name"] == "verified"),
        "{justification:#}"
    );
    // The protocol, its new version included, verifies under its bounds.
    let verify = graft(&["verify", &protocol.to_string_lossy()]);
    assert_eq!(exit_code(&verify), 0, "{}", transcript(&verify));
    assert!(
        String::from_utf8_lossy(&verify.stdout).contains("versions/optimized/quorum-retry.graft"),
        "{}",
        transcript(&verify)
    );
}

/// A quorum change that would help but breaks an invariant under the protocol's bounds is
/// never chosen: the search says no step helps, and --explain shows the counterexample.
#[test]
fn a_quorum_change_that_breaks_an_invariant_is_not_kept() {
    let protocol = quorum_protocol(
        "quorum-refused",
        "\n// Every acceptor acknowledged a decided request.\nnever decided(L, Id), acceptor_of(L, A), notin acks(L, Id, A), notin crash(L, A, _);\n",
    );
    let output = optimize_quorum(&protocol, Some("out"));
    assert_eq!(exit_code(&output), 4, "{}", transcript(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("no step helps"), "{stdout}");
    assert!(
        stdout.contains("not-verified   quorum(QUORUM=2): the new version does not pass `graft verify` on ./topology.facts, ./workload.facts under EOT 6, EFF 1, crashes 0"),
        "{stdout}"
    );
    assert!(stdout.contains("notin acks(\"L\", 1, \"a3\")"), "{stdout}");
    assert!(!protocol.join("out").exists());
}

/// The factor and final machine count of the `predicted:` line of optimize's plan.
fn predicted_gain(stdout: &str) -> Option<(f64, usize)> {
    let line = stdout.lines().find(|line| line.starts_with("predicted:"))?;
    let factor = line.split('(').nth(1)?.split('x').next()?.parse().ok()?;
    let machines = line.rsplit("-> ").next()?.trim().parse().ok()?;
    Some((factor, machines))
}

/// Issue 13's part 4 on the paper's three protocols, as `cargo bench --bench optimize_table`
/// runs it but without the full-scale measurement: `graft optimize` alone, with the paper's
/// machines as the budget, finds a version whose predicted gain is at least the paper's
/// measured one, and the version passes `graft test` against its source.
#[test]
fn optimize_alone_reaches_the_papers_gains_within_the_papers_machines() {
    // (protocol, program, paper's gain, paper's machines, steps searched)
    let protocols = [
        ("voting", "voting.graft", 2.5, 26, "4"),
        ("2pc", "2pc.graft", 5.3, 46, "3"),
        ("multipaxos", "multipaxos.graft", 3.0, 29, "4"),
    ];
    for (name, program, paper_gain, paper_machines, steps) in protocols {
        let protocol = scratch(&format!("paper-{name}"));
        for file in [program, "topology.facts", "workload-scale.facts"] {
            std::fs::copy(
                root().join("examples").join(name).join(file),
                protocol.join(file),
            )
            .expect("copy");
        }
        let budget = paper_machines.to_string();
        let output = graft_in(
            &protocol,
            &[
                "optimize",
                program,
                "--facts",
                "topology.facts",
                "--facts",
                "workload-scale.facts",
                "--machines",
                &budget,
                "--max-steps",
                steps,
                "-o",
                "versions/optimized",
            ],
        );
        assert_eq!(exit_code(&output), 0, "{name}: {}", transcript(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let (gain, machines) =
            predicted_gain(&stdout).unwrap_or_else(|| panic!("{name}: no prediction: {stdout}"));
        assert!(
            gain >= paper_gain,
            "{name}: predicted {gain}x, the paper measured {paper_gain}x: {stdout}"
        );
        assert!(
            machines <= paper_machines,
            "{name}: {machines} machines, the paper used {paper_machines}: {stdout}"
        );
        let accept = graft(&["test", &protocol.to_string_lossy(), "--accept"]);
        assert_eq!(exit_code(&accept), 0, "{name}: {}", transcript(&accept));
        let test = graft(&["test", &protocol.to_string_lossy()]);
        assert_eq!(exit_code(&test), 0, "{name}: {}", transcript(&test));
        let report = String::from_utf8_lossy(&test.stdout);
        assert!(
            report.contains(&format!(
                "versions/optimized/{program} on workload-scale: same outputs as"
            )),
            "{name}: {report}"
        );
    }
}
