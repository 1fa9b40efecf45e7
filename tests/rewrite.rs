//! End-to-end tests of `graft rewrite` and `graft test`: the example versions are reproducible
//! and pass `graft test`, every unsafe request is refused with the right reasons, a divergence
//! fails with both outputs shown, and a refusal writes nothing.

mod common;

use std::path::{Path, PathBuf};

use common::{exit_code, graft, root, transcript};

/// The version directories kept under `examples/*/versions/`, with the pass that made them.
const VERSIONS: &[(&str, &str, &str)] = &[
    (
        "2pc",
        "partition-participant",
        "partition(participant, by=tx, n=2)",
    ),
    (
        "2pc",
        "decouple-outcome",
        "decouple(participant, rels=[outcome], to=learner)",
    ),
    (
        "voting",
        "partition-leader",
        "partition(leader, by=id, n=2)",
    ),
    (
        "paxos",
        "partition-acceptor",
        "partition(acceptor, by=ballot, n=2, partial=true)",
    ),
    ("paxos", "quorum-flexible", "quorum(Q1=3, Q2=1)"),
    (
        "broadcast-best-effort",
        "batch-deliver",
        "batch(deliver, ticks=2)",
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
    for (directory, version, pass) in VERSIONS {
        let out = scratch(&format!("{directory}-{version}"));
        let program = out.join(format!("{directory}.graft"));
        let justification = out.join("justification.json");
        let mut args = vec![
            "rewrite".to_owned(),
            format!("examples/{directory}/{directory}.graft"),
            "--pass".to_owned(),
            (*pass).to_owned(),
            "-o".to_owned(),
            program.to_string_lossy().into_owned(),
            "--justification".to_owned(),
            justification.to_string_lossy().into_owned(),
            "--facts-out".to_owned(),
            out.to_string_lossy().into_owned(),
        ];
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
    for directory in ["2pc", "voting", "paxos", "broadcast-best-effort"] {
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
        "partition(participant, by=tx, n=2)".to_owned(),
        "--pass".to_owned(),
        "quorum(TIMEOUT=4)".to_owned(),
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
    assert_eq!(record["passes"][0]["case"], "co-hashing");
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

#[test]
fn partial_partitioning_runs_the_coordinator_round_and_compares_eventually() {
    let directory = scratch("partial-coordinator").join("kv");
    let version = directory.join("versions/partition-server");
    std::fs::create_dir_all(&version).expect("version directory");
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
