//! End-to-end tests of `graft rewrite` and `graft test`: the example versions are reproducible
//! and pass `graft test`, every unsafe request is refused with the right reasons, a divergence
//! fails with both outputs shown, and a refusal writes nothing.

mod common;

use std::path::{Path, PathBuf};

use common::{exit_code, graft, root, transcript};

/// The version directories kept under `examples/*/versions/`, with the passes that made them
/// (in order).
const VERSIONS: &[(&str, &str, &[&str])] = &[
    (
        "2pc",
        "partition-participant",
        &["partition(participant, by=tx, n=2)"],
    ),
    (
        "2pc",
        "decouple-outcome",
        &["decouple(participant, rels=[outcome], to=learner)"],
    ),
    (
        "voting",
        "partition-leader",
        &["partition(leader, by=id, n=2)"],
    ),
    (
        "voting",
        "decouple-collector",
        &[
            "decouple(leader, rels=[requested, votes, yes_votes, no_votes, decided, vote], to=collector)",
        ],
    ),
    (
        "voting",
        "decouple-partition-collector",
        &[
            "decouple(leader, rels=[requested, votes, yes_votes, no_votes, decided, vote], to=collector)",
            "partition(collector, by=id, n=2)",
        ],
    ),
    (
        "paxos",
        "partition-acceptor",
        &["partition(acceptor, by=ballot, n=2, partial=true)"],
    ),
    ("paxos", "quorum-flexible", &["quorum(Q1=3, Q2=1)"]),
    (
        "broadcast-best-effort",
        "batch-deliver",
        &["batch(deliver, ticks=2)"],
    ),
    (
        "kvs",
        "partition-primary",
        &["partition(primary, by=key, n=2)"],
    ),
];

fn facts_args(directory: &str) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples").join(directory))
        .expect("example directory")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "facts"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|path| {
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            ["--facts".to_owned(), format!("examples/{directory}/{name}")]
        })
        .collect()
}

fn scratch(name: &str) -> PathBuf {
    let directory = root()
        .join("target")
        .join("tmp")
        .join("rewrite-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).expect("scratch directory");
    directory
}

#[test]
fn example_versions_are_reproduced_exactly() {
    for (directory, version, passes) in VERSIONS {
        let out = scratch(&format!("{directory}-{version}"));
        let program = out.join(format!("{directory}.graft"));
        let justification = out.join("justification.json");
        let pass = passes.join("' --pass '");
        let mut args = vec![
            "rewrite".to_owned(),
            format!("examples/{directory}/{directory}.graft"),
        ];
        for pass in *passes {
            args.push("--pass".to_owned());
            args.push((*pass).to_owned());
        }
        args.extend([
            "-o".to_owned(),
            program.to_string_lossy().into_owned(),
            "--justification".to_owned(),
            justification.to_string_lossy().into_owned(),
            "--facts-out".to_owned(),
            out.to_string_lossy().into_owned(),
        ]);
        args.extend(facts_args(directory));
        let output = graft(&args);
        assert_eq!(exit_code(&output), 0, "{pass}:\n{}", transcript(&output));
        let stored = root()
            .join("examples")
            .join(directory)
            .join("versions")
            .join(version);
        for entry in std::fs::read_dir(&out).expect("output") {
            let path = entry.expect("entry").path();
            let name = path.file_name().expect("name").to_owned();
            let expected = std::fs::read_to_string(stored.join(&name))
                .unwrap_or_else(|_| panic!("{} has no {:?}", stored.display(), name));
            let actual = std::fs::read_to_string(&path).expect("written file");
            assert_eq!(
                expected,
                actual,
                "{} differs from a fresh `graft rewrite --pass '{pass}'`; regenerate the version",
                stored.join(&name).display()
            );
        }
        // The output is in `graft fmt`'s layout and checks.
        let fmt = graft(&["fmt", "--check", &program.to_string_lossy()]);
        assert_eq!(exit_code(&fmt), 0, "{}", transcript(&fmt));
        let check = graft(&["check", &program.to_string_lossy()]);
        assert_eq!(exit_code(&check), 0, "{}", transcript(&check));
    }
}

#[test]
fn graft_test_passes_on_the_examples() {
    for directory in ["2pc", "voting", "paxos", "broadcast-best-effort", "kvs"] {
        let output = graft(&["test", &format!("examples/{directory}")]);
        assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("run(s) passed"), "{stdout}");
        assert!(!stdout.contains("FAIL"), "{stdout}");
    }
}

#[test]
fn graft_test_2pc_compares_the_partitioned_version_per_tick() {
    let output = graft(&["test", "examples/2pc"]);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    insta::assert_snapshot!("test_2pc", String::from_utf8_lossy(&output.stdout));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create");
    for entry in std::fs::read_dir(from).expect("read") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

#[test]
fn a_divergent_version_fails_with_both_outputs() {
    let directory = scratch("divergence").join("2pc");
    copy_dir(&root().join("examples/2pc"), &directory);
    let version = directory.join("versions/partition-participant/2pc.graft");
    let text = std::fs::read_to_string(&version).expect("version");
    assert!(text.contains("const TIMEOUT = 3;"));
    // Time out at once: every transaction aborts, unlike in the source version.
    std::fs::write(
        &version,
        text.replace("const TIMEOUT = 3;", "const TIMEOUT = 0;"),
    )
    .expect("write");
    let output = graft(&["test", &directory.to_string_lossy()]);
    assert_eq!(exit_code(&output), 1, "{}", transcript(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("the outputs diverge from"), "{stdout}");
    assert!(stdout.contains("--- source version's outputs"), "{stdout}");
    assert!(
        stdout.contains("--- this version's outputs, mapped back"),
        "{stdout}"
    );
    assert!(stdout.contains("only in the source version:"), "{stdout}");
    assert!(stdout.contains("decision(\"C\", 1, true)@"), "{stdout}");
    assert!(stdout.contains("decision(\"C\", 1, false)@"), "{stdout}");
}

/// Unsafe requests: each is refused, and the transcript (every reason) is snapshotted.
const REFUSALS: &[(&str, &str, &str, &[&str])] = &[
    (
        "partition-splits-join",
        "examples/paxos/paxos.graft",
        "partition(acceptor, by=ballot, n=2)",
        &["join-splits-partition-key", "group-splits-partition-key"],
    ),
    (
        "decouple-across-negation",
        "examples/kvs/kvs.graft",
        "decouple(primary, rels=[store, latest, has_key], to=reader)",
        &["moved-half-negates", "moved-half-aggregates"],
    ),
    (
        "decouple-feedback",
        "examples/voting/voting.graft",
        "decouple(leader, rels=[votes, yes_votes, no_votes], to=tally)",
        &["stayer-reads-moved"],
    ),
    (
        "batch-non-confluent",
        "examples/2pc/2pc.graft",
        "batch(vote, ticks=2)",
        &["consumer-not-confluent"],
    ),
    (
        "quorum-below-intersection",
        "examples/paxos/paxos.graft",
        "quorum(Q2=1)",
        &["requirement-violated"],
    ),
    (
        "quorum-not-a-quorum",
        "examples/2pc/2pc.graft",
        "quorum(TIMEOUT=1)",
        &["not-a-quorum"],
    ),
    (
        "quorum-unknown-constant",
        "examples/paxos/paxos.graft",
        "quorum(Q3=1)",
        &["unknown-constant"],
    ),
    (
        "batch-not-a-channel",
        "examples/2pc/2pc.graft",
        "batch(votes)",
        &["not-a-channel"],
    ),
    (
        "partition-unknown-role",
        "examples/2pc/2pc.graft",
        "partition(participants, by=tx)",
        &["unknown-role"],
    ),
    (
        "partition-key-missing",
        "examples/2pc/2pc.graft",
        "partition(participant, by=slot)",
        &["key-column-missing"],
    ),
];

#[test]
fn unsafe_requests_are_refused_with_every_reason() {
    for (name, program, pass, expected) in REFUSALS {
        let output = graft(&["rewrite", program, "--pass", pass]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(exit_code(&output), 1, "{pass}:\n{}", transcript(&output));
        assert!(output.stdout.is_empty(), "a refusal prints no program");
        for reason in *expected {
            assert!(
                stderr.contains(&format!("[{reason}]")),
                "{pass} should fail `{reason}`:\n{stderr}"
            );
        }
        insta::assert_snapshot!(format!("refused_{name}"), transcript(&output));
    }
}

#[test]
fn a_refusal_leaves_an_existing_output_untouched() {
    let directory = scratch("untouched");
    let out = directory.join("out.graft");
    let justification = directory.join("out.json");
    std::fs::write(&out, "keep me\n").expect("write");
    let output = graft(&[
        "rewrite",
        "examples/paxos/paxos.graft",
        "--pass",
        "quorum(Q1=3, Q2=1)",
        "--pass",
        "quorum(Q2=0)",
        "-o",
        &out.to_string_lossy(),
        "--justification",
        &justification.to_string_lossy(),
    ]);
    assert_eq!(exit_code(&output), 1, "{}", transcript(&output));
    assert_eq!(std::fs::read_to_string(&out).expect("read"), "keep me\n");
    assert!(!justification.exists());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("pass 2 of 2"), "{stderr}");
}

#[test]
fn passes_compose_and_the_justification_composes_node_maps() {
    let directory = scratch("compose");
    let justification = directory.join("j.json");
    let mut args = vec![
        "rewrite".to_owned(),
        "examples/2pc/2pc.graft".to_owned(),
        "--pass".to_owned(),
        "quorum(add=participant:p4)".to_owned(),
        "--pass".to_owned(),
        "partition(participant, by=tx, n=2)".to_owned(),
        "-o".to_owned(),
        directory.join("2pc.graft").to_string_lossy().into_owned(),
        "--justification".to_owned(),
        justification.to_string_lossy().into_owned(),
        "--facts-out".to_owned(),
        directory.to_string_lossy().into_owned(),
    ];
    args.extend(facts_args("2pc"));
    let output = graft(&args);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&justification).expect("json"))
            .expect("valid");
    assert_eq!(record["format"], "graft-justification/1");
    assert_eq!(record["passes"].as_array().map(Vec::len), Some(2));
    assert_eq!(record["node_map"]["p1/1"], "p1");
    assert_eq!(record["node_map"]["p4/1"], "p4");
    assert_eq!(record["passes"][1]["case"], "co-hashing");
    assert_eq!(
        record["comparison"], "none",
        "a quorum change weakens the comparison"
    );
    let check = graft(&["check", &directory.join("2pc.graft").to_string_lossy()]);
    assert_eq!(exit_code(&check), 0, "{}", transcript(&check));
}

#[test]
fn cost_shows_before_and_after() {
    let output = graft(&[
        "rewrite",
        "examples/2pc/2pc.graft",
        "--pass",
        "partition(participant, by=tx, n=2)",
        "--cost",
        "--facts",
        "examples/2pc/topology.facts",
        "--facts",
        "examples/2pc/workload.facts",
    ]);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    insta::assert_snapshot!(
        "cost_2pc_partition",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn list_describes_every_pass() {
    let output = graft(&["rewrite", "--list"]);
    assert_eq!(exit_code(&output), 0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    for pass in ["decouple(", "partition(", "batch(", "quorum("] {
        assert!(stdout.contains(pass), "{stdout}");
    }
}

/// A store whose `writers` (no key) is replicated and written from keyed `write`s: `write` is
/// sequenced through the coordinator round, `read` is buffered while a round is pending.
const PARTIAL_KV: &str = "role client;
role server;

input table server_of(at: client, s: server);
input put(at: client, id: int, v: string);
input get(at: client, id: int);
channel write(at: server, from: client, id: int, v: string);
channel read(at: server, from: client, id: int);
channel reply(at: client, id: int, v: string);
table store(at: server, id: int, v: string);
table writers(at: server, c: client);
output table got(at: client, id: int, v: string);

store(S, I, V)@next :- write(S, _, I, V);
writers(S, C)@next :- write(S, C, I, _), I > 0;
reply(C, I, V)@async :- read(S, C, I), store(S, I, V);
write(S, C, I, V)@async :- put(C, I, V), server_of(C, S);
read(S, C, I)@async :- get(C, I), server_of(C, S);
got(C, I, V) :- reply(C, I, V);
";

/// Writes `PARTIAL_KV` with a topology and a workload into a scratch directory.
fn partial_kv(name: &str) -> PathBuf {
    let directory = scratch(name).join("kv");
    std::fs::create_dir_all(directory.join("versions/partition-server"))
        .expect("version directory");
    std::fs::write(directory.join("kv.graft"), PARTIAL_KV).expect("program");
    std::fs::write(
        directory.join("topology.facts"),
        "server_of(\"c\", \"s\")@1;\n",
    )
    .expect("topology");
    // `get(1)` is sent one tick after `put(1)`: it must wait for that write's round.
    std::fs::write(
        directory.join("workload.facts"),
        "put(\"c\", 1, \"a\")@1;\nput(\"c\", 2, \"b\")@2;\nget(\"c\", 1)@2;\nget(\"c\", 2)@3;\n",
    )
    .expect("workload");
    directory
}

/// `graft rewrite` of `PARTIAL_KV` into `versions/partition-server`.
fn rewrite_partial_kv(directory: &Path) {
    let path = |name: &str| directory.join(name).to_string_lossy().into_owned();
    let output = graft(&[
        "rewrite",
        &path("kv.graft"),
        "--pass",
        "partition(server, by=id, n=2, partial=true)",
        "--facts",
        &path("topology.facts"),
        "--facts",
        &path("workload.facts"),
        "--facts-out",
        &path("versions/partition-server"),
        "-o",
        &path("versions/partition-server/kv.graft"),
        "--justification",
        &path("versions/partition-server/justification.json"),
    ]);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
}

#[test]
fn partial_partitioning_runs_the_coordinator_round_and_compares_eventually() {
    let directory = partial_kv("partial-coordinator");
    let version = directory.join("versions/partition-server");
    let path = |name: &str| directory.join(name).to_string_lossy().into_owned();
    rewrite_partial_kv(&directory);
    let text = std::fs::read_to_string(version.join("kv.graft")).expect("rewritten program");
    assert!(text.contains("role server_coordinator;"), "{text}");
    assert!(
        text.contains("write_request(Coord, C, I, V)@async"),
        "{text}"
    );
    assert!(
        text.contains("reply(C, I, V)@async :- read_ready(S, C, I), store(S, I, V);"),
        "{text}"
    );
    // Partitions read the committed batch, applied once, in index order.
    assert!(
        text.contains("store(S, I, V)@next :- write_apply(S, _, I, V);"),
        "{text}"
    );
    let justification =
        std::fs::read_to_string(version.join("justification.json")).expect("justification");
    assert!(justification.contains("\"comparison\": \"eventual\""));
    assert!(justification.contains("\"s/coordinator\": \"s\""));
    assert!(justification.contains("coordinator-round"));
    let topology = std::fs::read_to_string(version.join("topology.facts")).expect("facts");
    assert!(
        topology.contains("server_coordinator_of(\"c\", \"s\", \"s/coordinator\")@1;"),
        "{topology}"
    );
    // The reads wait for the writes' rounds, so `got` appears later, but the same facts do.
    let source = graft(&[
        "run",
        &path("kv.graft"),
        "--facts",
        &path("topology.facts"),
        "--facts",
        &path("workload.facts"),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&source.stdout).lines().next(),
        Some("got(\"c\", 1, \"a\")@4;")
    );
    let new = graft(&[
        "run",
        &path("versions/partition-server/kv.graft"),
        "--facts",
        &path("versions/partition-server/topology.facts"),
        "--facts",
        &path("versions/partition-server/workload.facts"),
    ]);
    let new_stdout = String::from_utf8_lossy(&new.stdout);
    assert!(
        new_stdout.starts_with("got(\"c\", 1, \"a\")@8;\ngot(\"c\", 2, \"b\")@8;\n"),
        "{new_stdout}"
    );
    let accepted = graft(&["test", &directory.to_string_lossy(), "--accept"]);
    assert_eq!(exit_code(&accepted), 0, "{}", transcript(&accepted));
    let output = graft(&["test", &directory.to_string_lossy()]);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("(eventual)"), "{stdout}");
}

/// A store partitioned by a string key: senders look the key's slot up in a generated table
/// (a stable hash of the value), and a key the table does not list goes to partition 0.
const STRING_KV: &str = "role client;
role server;

input table server_of(at: client, s: server);
input put(at: client, k: string, v: int);
channel write(at: server, from: client, k: string, v: int);
channel ack(at: client, k: string, v: int);
table store(at: server, k: string, v: int);
output table acked(at: client, k: string, v: int);

write(S, C, K, V)@async :- put(C, K, V), server_of(C, S);
store(S, K, V) :- write(S, _, K, V);
ack(C, K, V)@async :- write(S, C, K, _), store(S, K, V);
acked(C, K, V) :- ack(C, K, V);
";

#[test]
fn partition_keys_of_any_type_route_by_a_stable_hash() {
    let directory = scratch("string-key").join("kv");
    let version = directory.join("versions/partition-server");
    std::fs::create_dir_all(&version).expect("version directory");
    std::fs::write(directory.join("kv.graft"), STRING_KV).expect("program");
    std::fs::write(
        directory.join("topology.facts"),
        "server_of(\"c\", \"s\")@1;\n",
    )
    .expect("topology");
    std::fs::write(
        directory.join("workload.facts"),
        "put(\"c\", \"apple\", 1)@1;\nput(\"c\", \"pear\", 2)@1;\nput(\"c\", \"fig\", 3)@2;\n",
    )
    .expect("workload");
    let path = |name: &str| directory.join(name).to_string_lossy().into_owned();
    let output = graft(&[
        "rewrite",
        &path("kv.graft"),
        "--pass",
        "partition(server, by=k, n=2)",
        "--facts",
        &path("topology.facts"),
        "--facts",
        &path("workload.facts"),
        "--facts-out",
        &path("versions/partition-server"),
        "-o",
        &path("versions/partition-server/kv.graft"),
        "--justification",
        &path("versions/partition-server/justification.json"),
    ]);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    let text = std::fs::read_to_string(version.join("kv.graft")).expect("rewritten program");
    assert!(
        text.contains("input table server_slot(at: client, value: string, slot: int);"),
        "{text}"
    );
    assert!(text.contains("server_slot(C, K, Slot),"), "{text}");
    assert!(
        text.contains("notin server_slot(C, K, _),\n    server_route(C, S, 0, Part);"),
        "{text}"
    );
    let topology = std::fs::read_to_string(version.join("topology.facts")).expect("facts");
    // The hash is pinned: "apple" lands on partition 0 and "pear" on partition 1.
    assert!(
        topology.contains("server_slot(\"c\", \"apple\", 0)@1;"),
        "{topology}"
    );
    assert!(
        topology.contains("server_slot(\"c\", \"pear\", 1)@1;"),
        "{topology}"
    );
    let accepted = graft(&["test", &directory.to_string_lossy(), "--accept"]);
    assert_eq!(exit_code(&accepted), 0, "{}", transcript(&accepted));
    let tested = graft(&["test", &directory.to_string_lossy()]);
    assert_eq!(exit_code(&tested), 0, "{}", transcript(&tested));
    assert!(String::from_utf8_lossy(&tested.stdout).contains("(per-tick)"));
}

#[test]
fn decouple_then_partition_of_either_role_checks() {
    for second in [
        "partition(participant, by=tx, n=2)",
        "partition(learner, by=tx, n=2)",
    ] {
        let directory = scratch(&format!("decouple-then-{}", &second[10..20]));
        let mut args = vec![
            "rewrite".to_owned(),
            "examples/2pc/2pc.graft".to_owned(),
            "--pass".to_owned(),
            "decouple(participant, rels=[outcome], to=learner)".to_owned(),
            "--pass".to_owned(),
            second.to_owned(),
            "-o".to_owned(),
            directory.join("2pc.graft").to_string_lossy().into_owned(),
            "--facts-out".to_owned(),
            directory.to_string_lossy().into_owned(),
        ];
        args.extend(facts_args("2pc"));
        let output = graft(&args);
        assert_eq!(exit_code(&output), 0, "{second}: {}", transcript(&output));
        let text = std::fs::read_to_string(directory.join("2pc.graft")).expect("program");
        // The invariant about a participant's outcome still names the participant's node.
        assert!(
            text.contains("learner_self(P_learner, P),"),
            "{second}: {text}"
        );
        let check = graft(&["check", &directory.join("2pc.graft").to_string_lossy()]);
        assert_eq!(exit_code(&check), 0, "{}", transcript(&check));
    }
}

/// What the `eventual` comparison of `graft test` compares, from `graft run`'s printed output
/// facts: every fact that ever held, and the facts at the last tick printed.
fn eventual_outputs(
    stdout: &str,
) -> (
    std::collections::BTreeSet<String>,
    std::collections::BTreeSet<String>,
) {
    let facts: Vec<(String, u64)> = stdout
        .lines()
        .filter_map(|line| {
            let (fact, tick) = line.trim_end_matches(';').rsplit_once('@')?;
            Some((fact.to_owned(), tick.parse().ok()?))
        })
        .collect();
    let last = facts.iter().map(|(_, tick)| *tick).max().unwrap_or(0);
    let ever = facts.iter().map(|(fact, _)| fact.clone()).collect();
    let at_last = facts
        .iter()
        .filter(|(_, tick)| *tick == last)
        .map(|(fact, _)| fact.clone())
        .collect();
    (ever, at_last)
}

/// Runs `graft run PROGRAM --facts F... --drop D...` and returns its standard output.
#[track_caller]
fn run_with_drops(program: &str, facts: &[String], drops: &[&str]) -> String {
    let mut args = vec!["run".to_owned(), program.to_owned()];
    for file in facts {
        args.push("--facts".to_owned());
        args.push(file.clone());
    }
    for drop in drops {
        args.push("--drop".to_owned());
        args.push((*drop).to_owned());
    }
    let output = graft(&args);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_coordinator_round_resends_lost_votes_and_commits() {
    let directory = partial_kv("partial-drops");
    rewrite_partial_kv(&directory);
    let path = |name: &str| directory.join(name).to_string_lossy().into_owned();
    let source = run_with_drops(
        &path("kv.graft"),
        &[path("topology.facts"), path("workload.facts")],
        &[],
    );
    let expected = eventual_outputs(&source);
    assert_eq!(expected.0.len(), 2, "{source}");
    let version = "versions/partition-server";
    // Fault-free: `put(1)`'s request reaches the coordinator at tick 2 (vote requests sent),
    // the votes arrive at tick 4 (commit sent), and the commits at tick 5.
    let faults: &[&[&str]] = &[
        // A lost vote request: the coordinator asks again.
        &["s/coordinator,s/0,2"],
        // A lost vote: the coordinator asks again, the partition votes again.
        &["s/0,s/coordinator,3"],
        // A lost commit (with its batch): sent again until acknowledged; meanwhile the
        // second batch's commit reaches the partition first and waits for the first.
        &["s/coordinator,s/1,4"],
        // A lost acknowledgement: the commit is sent again and applied only once.
        &["s/1,s/coordinator,5"],
        // All of them at once, and a second loss of the resent vote request.
        &[
            "s/coordinator,s/0,2",
            "s/coordinator,s/0,4",
            "s/0,s/coordinator,3",
            "s/coordinator,s/1,4",
            "s/1,s/coordinator,6",
        ],
    ];
    for drops in faults {
        let new = run_with_drops(
            &path(&format!("{version}/kv.graft")),
            &[
                path(&format!("{version}/topology.facts")),
                path(&format!("{version}/workload.facts")),
            ],
            drops,
        );
        assert_eq!(
            eventual_outputs(&new),
            expected,
            "with --drop {drops:?} the partitioned version's outputs differ from the source's\n--- source\n{source}--- partitioned\n{new}"
        );
    }
}

#[test]
fn the_paxos_partial_version_survives_lost_round_messages() {
    let source = run_with_drops(
        "examples/paxos/paxos.graft",
        &[
            "examples/paxos/topology.facts".to_owned(),
            "examples/paxos/workload.facts".to_owned(),
        ],
        &[],
    );
    let expected = eventual_outputs(&source);
    let version = "examples/paxos/versions/partition-acceptor";
    // Two of three acceptors lose round messages: without resends, a stalled or diverged
    // acceptor pair would leave no quorum.
    let drops = [
        "a1/coordinator,a1/0,2",
        "a1/coordinator,a1/1,3",
        "a1/0,a1/coordinator,4",
        "a2/coordinator,a2/0,2",
        "a2/coordinator,a2/1,4",
        "a2/1,a2/coordinator,5",
    ];
    let new = run_with_drops(
        &format!("{version}/paxos.graft"),
        &[
            format!("{version}/topology.facts"),
            format!("{version}/workload.facts"),
        ],
        &drops,
    );
    assert_eq!(
        eventual_outputs(&new),
        expected,
        "--- source\n{source}--- partitioned, with drops\n{new}"
    );
}

/// The KVS with `inflight`'s declared key removed: nothing says that a request id determines
/// its key, so `committed` (which has only the request id) cannot be placed.
fn kvs_without_key(name: &str) -> String {
    let directory = scratch(name);
    let text = std::fs::read_to_string(root().join("examples/kvs/kvs.graft")).expect("kvs");
    let declaration =
        "table inflight(at: primary, client: client, req: int, key: string, value: string)";
    assert!(text.contains(&format!("{declaration} key(req);")));
    let program = directory.join("kvs.graft");
    std::fs::write(
        &program,
        text.replace(
            &format!("{declaration} key(req);"),
            &format!("{declaration};"),
        ),
    )
    .expect("write");
    program
        .strip_prefix(root())
        .expect("under the root")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn a_declared_key_lets_relations_without_the_key_column_be_partitioned() {
    // With `inflight ... key(req)`: `acks`, `ack_count` and `committed` (request ids only) are
    // placed on the partition of their request's key; the backups route `rep_ack` by the key
    // their `replicate` message carries.
    let output = graft(&[
        "rewrite",
        "examples/kvs/kvs.graft",
        "--pass",
        "partition(primary, by=key, n=2)",
    ]);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("rep_ack(Part, B, R)@async :-\n    replicate(B, P, R, Key, _),"),
        "{text}"
    );
    let justification = std::fs::read_to_string(
        root().join("examples/kvs/versions/partition-primary/justification.json"),
    )
    .expect("justification");
    let record: serde_json::Value = serde_json::from_str(&justification).expect("json");
    assert_eq!(record["passes"][0]["case"], "dependencies");
    assert_eq!(
        record["passes"][0]["assumptions"][0]["relation"],
        "inflight"
    );
    assert_eq!(record["passes"][0]["assumptions"][0]["key"][0], "req");
    // Without the declaration the same request is refused.
    let program = kvs_without_key("kvs-no-key");
    let refused = graft(&[
        "rewrite",
        &program,
        "--pass",
        "partition(primary, by=key, n=2)",
    ]);
    assert_eq!(exit_code(&refused), 1, "{}", transcript(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("[key-not-variable]"), "{stderr}");
    assert!(
        stderr.contains("committed(P, C, R) :- inflight(P, C, R, _, _)"),
        "{stderr}"
    );
    insta::assert_snapshot!(
        "refused_partition-without-declared-key",
        transcript(&refused)
    );
}

#[test]
fn graft_test_checks_the_assumed_key_on_every_run() {
    let directory = scratch("kvs-assumed-key").join("kvs");
    copy_dir(&root().join("examples/kvs"), &directory);
    // Two clients use the same request id for different keys: `inflight`'s key(req) breaks.
    let workload = "put(\"c1\", 1, \"x\", \"1\")@1;\nput(\"c2\", 1, \"y\", \"2\")@1;\n";
    std::fs::write(directory.join("workload-clash.facts"), workload).expect("write");
    std::fs::write(
        directory.join("versions/partition-primary/workload-clash.facts"),
        workload,
    )
    .expect("write");
    let output = graft(&["test", &directory.to_string_lossy(), "--accept"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(exit_code(&output), 1, "{}", transcript(&output));
    assert!(
        stdout.contains("the rewrite assumed key(req) of `inflight`, but at tick 2 a node holds both inflight(\"P\", \"c1\", 1, \"x\", \"1\")@2 and inflight(\"P\", \"c2\", 1, \"y\", \"2\")@2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the rewrite's precondition does not hold on this workload"),
        "{stdout}"
    );
    // The workloads that respect the key still pass.
    assert!(
        stdout.contains("kvs.graft on workload: same outputs as"),
        "{stdout}"
    );
}

#[test]
fn graft_test_feeds_the_source_the_versions_facts_mapped_back() {
    let directory = scratch("voting-mapped-facts").join("voting");
    copy_dir(&root().join("examples/voting"), &directory);
    let output = graft(&["test", &directory.to_string_lossy()]);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    // A version's workload that drifted from the source's: request 2 asked at tick 3.
    let version = directory.join("versions/decouple-collector/workload.facts");
    let text = std::fs::read_to_string(&version).expect("workload");
    assert!(text.contains("request(\"L\", 2)@2;"), "{text}");
    std::fs::write(
        &version,
        text.replace("request(\"L\", 2)@2;", "request(\"L\", 2)@3;"),
    )
    .expect("write");
    let output = graft(&["test", &directory.to_string_lossy()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(exit_code(&output), 1, "{}", transcript(&output));
    assert!(
        stdout.contains("its facts, mapped back through the justification, are not the source's"),
        "{stdout}"
    );
    // `request_collector`'s copy still says tick 2: it maps back to the source's fact.
    assert!(
        stdout.contains("  only in the source's files:\n    (none)\n  only in this version's, mapped back:\n    request(\"L\", 2)@3;\n"),
        "{stdout}"
    );
}

#[test]
fn a_quorum_change_is_verified_before_it_is_written() {
    let directory = scratch("quorum-verified");
    let out = directory.join("voting.graft");
    let justification = directory.join("justification.json");
    // QUORUM=3 keeps every `require`, but one crashed voter now blocks a decision: LDFI
    // finds it under the bounds of examples/voting/protocol.json, and nothing is written.
    let refused = graft(&[
        "rewrite",
        "examples/voting/voting.graft",
        "--pass",
        "quorum(QUORUM=3)",
        "-o",
        &out.to_string_lossy(),
        "--justification",
        &justification.to_string_lossy(),
    ]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(exit_code(&refused), 1, "{}", transcript(&refused));
    assert!(
        stderr.contains("error[R0013]: quorum(QUORUM=3): the new version does not pass `graft verify` on examples/voting/topology.facts, examples/voting/workload.facts under EOT 5, EFF 2, crashes 1 (bounds from examples/voting/protocol.json): crash v1@2 violates post(\"L\", 1)"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was written"), "{stderr}");
    assert!(!out.exists() && !justification.exists());
    insta::assert_snapshot!(
        "refused_quorum-fails-verification",
        transcript(&refused).replace(&directory.to_string_lossy().into_owned(), "SCRATCH")
    );
    // An accepted change records where it was verified.
    let accepted = graft(&[
        "rewrite",
        "examples/paxos/paxos.graft",
        "--pass",
        "quorum(Q1=3, Q2=1)",
        "-o",
        &directory.join("paxos.graft").to_string_lossy(),
        "--justification",
        &justification.to_string_lossy(),
    ]);
    assert_eq!(exit_code(&accepted), 0, "{}", transcript(&accepted));
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&justification).expect("json"))
            .expect("valid");
    let verified = record["passes"][0]["verified"]
        .as_array()
        .expect("verified");
    assert_eq!(verified.len(), 2, "{record}");
    assert_eq!(verified[0]["eot"], 7);
    assert_eq!(verified[0]["eff"], 3);
    assert_eq!(verified[0]["symmetry"], true);
    assert_eq!(verified[0]["bounds_from"], "examples/paxos/protocol.json");
    assert_eq!(
        verified[1]["facts"][1],
        "examples/paxos/buggy/workload-concurrent.facts"
    );
    let names: Vec<&str> = record["passes"][0]["preconditions"]
        .as_array()
        .expect("preconditions")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"quorum-constant") && names.contains(&"verified"),
        "{names:?}"
    );
}

#[test]
fn a_quorum_change_without_known_bounds_needs_them() {
    let directory = scratch("quorum-no-bounds");
    let program = directory.join("paxos.graft");
    std::fs::copy(root().join("examples/paxos/paxos.graft"), &program).expect("copy");
    let program = program.to_string_lossy().into_owned();
    let refused = graft(&["rewrite", &program, "--pass", "quorum(Q1=3, Q2=1)"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(exit_code(&refused), 1, "{}", transcript(&refused));
    assert!(refused.stdout.is_empty(), "nothing is printed");
    assert!(
        stderr.contains(
            "a quorum change must pass `graft verify` before it is written, but no bounds are known"
        ),
        "{stderr}"
    );
    let accepted = graft(&[
        "rewrite",
        &program,
        "--pass",
        "quorum(Q1=3, Q2=1)",
        "--facts",
        "examples/paxos/topology.facts",
        "--facts",
        "examples/paxos/workload.facts",
        "--eot",
        "7",
        "--eff",
        "3",
    ]);
    assert_eq!(exit_code(&accepted), 0, "{}", transcript(&accepted));
    assert!(String::from_utf8_lossy(&accepted.stdout).contains("const Q1 = 3;"));
}

/// An invariant that reads a keyed relation of the partitioned role next to a replicated one
/// (2PC's "participants only learn the coordinator's decision": `member(C, P)` is copied to
/// every partition, `decision(C, Tx, B)` lives on `Tx`'s) reads the keyed relation on its
/// key's home partition. Before, it read it on whichever partition the replicated atom bound,
/// and the partitioned coordinator failed its own invariant in a fault-free run.
#[test]
fn a_negated_keyed_atom_next_to_a_replicated_one_is_read_on_its_home_partition() {
    let directory = scratch("partition-coordinator-invariant");
    let mut args = vec![
        "rewrite".to_owned(),
        "examples/2pc/2pc.graft".to_owned(),
        "--pass".to_owned(),
        "partition(coordinator, by=tx, n=2)".to_owned(),
        "-o".to_owned(),
        directory.join("2pc.graft").to_string_lossy().into_owned(),
        "--facts-out".to_owned(),
        directory.to_string_lossy().into_owned(),
    ];
    args.extend(facts_args("2pc"));
    let output = graft(&args);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    let text = std::fs::read_to_string(directory.join("2pc.graft")).expect("program");
    assert!(
        text.contains("coordinator_home_int(C_any, C_slot, C_coordinator),"),
        "{text}"
    );
    let verify = graft(&[
        "verify",
        &directory.join("2pc.graft").to_string_lossy(),
        "--facts",
        &directory.join("topology.facts").to_string_lossy(),
        "--facts",
        &directory.join("workload.facts").to_string_lossy(),
        "--eot",
        "6",
        "--eff",
        "1",
        "--no-cache",
    ]);
    assert_eq!(exit_code(&verify), 0, "{}", transcript(&verify));
    assert!(
        String::from_utf8_lossy(&verify.stdout).contains("certified"),
        "{}",
        transcript(&verify)
    );
}
