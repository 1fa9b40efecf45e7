//! Rewrites stay honest under late messages: `graft test --max-delay D` and `graft verify
//! --refines --max-delay D` compare a version with its source under every message late by
//! 1..=D (and every hop only the version has late by 1..=D), report a divergence as a recorded
//! synchronous-delivery assumption failing where the justification records one, and fail a
//! version that diverges without one.

mod common;

use std::path::{Path, PathBuf};

use common::{exit_code, graft, root, transcript};

/// A fresh directory under `target/tmp/late-tests`.
fn scratch(name: &str) -> PathBuf {
    let directory = root()
        .join("target")
        .join("tmp")
        .join("late-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).expect("scratch directory");
    directory
}

fn text(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A receiver joins `data` with the keys another sender tells it: a race that the source wins
/// only when `key` arrives by the tick `data` does.
const RACE: &str = "role sender;
role receiver;
input table peer(at: sender, r: receiver);
input go(at: sender, x: int);
input tell(at: sender, x: int);
channel data(at: receiver, x: int);
channel key(at: receiver, x: int);
table keys(at: receiver, x: int);
output table got(at: receiver, x: int);
data(R, X)@async :- go(S, X), peer(S, R);
key(R, X)@async :- tell(S, X), peer(S, R);
keys(R, X) :- key(R, X);
got(R, X) :- data(R, X), keys(R, X);
never got(R, X), notin keys(R, X);
";

/// A server whose replicated `version` is written by partitioned `write`s and read by `read`s
/// of another key: partial partitioning puts the writes through a coordinator round.
const REPLICATED: &str = "role client;
role server;
input table server_of(at: client, s: server);
input put(at: client, key: int, v: int);
input get(at: client, key: int);
channel write(at: server, key: int, v: int);
channel read(at: server, from: client, key: int);
table version(at: server, v: int);
channel reply(at: client, key: int, v: int);
output table seen(at: client, key: int, v: int);
write(S, K, V)@async :- put(C, K, V), server_of(C, S);
read(S, C, K)@async :- get(C, K), server_of(C, S);
version(S, V)@next :- write(S, K, V), K > 0;
reply(C, K, V)@async :- read(S, C, K), version(S, V);
seen(C, K, V) :- reply(C, K, V);
";

/// A protocol directory `name` holding `program` with its facts, and its version made by
/// `graft rewrite --pass PASS` in `versions/v`, with snapshots accepted.
fn protocol(
    scratch_name: &str,
    name: &str,
    program: &str,
    topology: &str,
    workload: &str,
    pass: &str,
) -> PathBuf {
    let directory = scratch(scratch_name).join(name);
    std::fs::create_dir_all(directory.join("versions/v")).expect("version directory");
    std::fs::write(directory.join(format!("{name}.graft")), program).expect("program");
    std::fs::write(directory.join("topology.facts"), topology).expect("topology");
    std::fs::write(directory.join("workload.facts"), workload).expect("workload");
    let path = |file: &str| directory.join(file).to_string_lossy().into_owned();
    let output = graft(&[
        "rewrite",
        &path(&format!("{name}.graft")),
        "--pass",
        pass,
        "--facts",
        &path("topology.facts"),
        "--facts",
        &path("workload.facts"),
        "--facts-out",
        &path("versions/v"),
        "-o",
        &path(&format!("versions/v/{name}.graft")),
        "--justification",
        &path("versions/v/justification.json"),
    ]);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    let accepted = graft(&["test", &path(""), "--accept"]);
    assert_eq!(exit_code(&accepted), 0, "{}", transcript(&accepted));
    directory
}

fn race() -> impl Fn(&str) -> PathBuf {
    |scratch_name: &str| {
        protocol(
            scratch_name,
            "race",
            RACE,
            "peer(\"s\", \"r\")@1;\npeer(\"k\", \"r\")@1;\n",
            "go(\"s\", 1)@1;\ntell(\"k\", 1)@1;\n",
            "batch(data, ticks=2)",
        )
    }
}

fn replicated(scratch_name: &str) -> PathBuf {
    protocol(
        scratch_name,
        "kv",
        REPLICATED,
        "server_of(\"c\", \"s\")@1;\n",
        "put(\"c\", 1, 10)@1;\nget(\"c\", 2)@2;\n",
        "partition(server, by=key, n=2, partial=true)",
    )
}

/// Removes every assumption from a version's justification (as a pass that did not record
/// one would have written it).
fn forget_assumptions(version: &Path) {
    let path = version.join("justification.json");
    let mut record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("record")).expect("json");
    for pass in record["passes"].as_array_mut().expect("passes") {
        pass.as_object_mut()
            .expect("pass")
            .remove("assumptions")
            .expect("the pass recorded an assumption");
    }
    std::fs::write(&path, serde_json::to_string_pretty(&record).expect("json")).expect("write");
}

#[test]
fn a_batch_records_the_channels_its_consumers_joins_rely_on() {
    let directory = race()("race-record");
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(directory.join("versions/v/justification.json")).expect("record"),
    )
    .expect("json");
    let assumption = &record["passes"][0]["assumptions"][0];
    assert_eq!(assumption["kind"], "synchronous-delivery");
    assert_eq!(assumption["channels"], serde_json::json!(["key"]));
    // The bundled batch joins with nothing: its record has no assumption at all.
    let bundled = std::fs::read_to_string(
        root().join("examples/broadcast-best-effort/versions/batch-deliver/justification.json"),
    )
    .expect("bundled record");
    assert!(!bundled.contains("assumptions"), "{bundled}");
}

#[test]
fn a_batch_checked_under_late_messages_reports_its_broken_assumption() {
    let directory = race()("race-verify");
    let version = directory.join("versions/v");
    let path = |file: &str| version.join(file).to_string_lossy().into_owned();
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "verify".to_owned(),
            path("race.graft"),
            "--facts".to_owned(),
            path("topology.facts"),
            "--facts".to_owned(),
            path("workload.facts"),
            "--eot".to_owned(),
            "6".to_owned(),
            "--eff".to_owned(),
            "3".to_owned(),
            "--refines".to_owned(),
            "--no-cache".to_owned(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        graft(&args)
    };
    // Synchronous delivery: the version refines its source.
    let on_time = verify(&[]);
    assert_eq!(exit_code(&on_time), 0, "{}", transcript(&on_time));
    assert!(
        !text(&on_time).contains("late messages"),
        "{}",
        transcript(&on_time)
    );
    // One tick late: the key the source's `data` misses is found by the later batch.
    let late = verify(&["--max-delay", "1"]);
    assert_eq!(exit_code(&late), 1, "{}", transcript(&late));
    let out = text(&late);
    for expected in [
        "under late messages: `delay k->r@1+1` in the source, `delay k->r@1+1` in the version",
        "late: key(\"r\", 1) k->r@1",
        "this is the recorded assumption failing: `batch(data, ticks=2)` assumes synchronous delivery of `key`",
        "only in this version (mapped back): got(\"r\", 1);",
    ] {
        assert!(out.contains(expected), "missing `{expected}`:\n{out}");
    }
    // JSON says the same.
    let json = verify(&["--max-delay", "1", "--format", "json"]);
    assert_eq!(exit_code(&json), 1, "{}", transcript(&json));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let divergence = &report["refines"]["late"]["divergence"];
    assert_eq!(divergence["recorded_assumption"], true, "{report:#}");
    assert_eq!(
        divergence["source_delay"],
        serde_json::json!({"from": "k", "to": "r", "tick": 1, "by": 1})
    );
    // Without the recorded assumption the same divergence is the rewrite's fault.
    forget_assumptions(&version);
    let unrecorded = verify(&["--max-delay", "1"]);
    assert_eq!(exit_code(&unrecorded), 1, "{}", transcript(&unrecorded));
    assert!(
        text(&unrecorded).contains("the justification records no synchronous-delivery assumption for these messages: the rewrite is not correct under late messages"),
        "{}",
        transcript(&unrecorded)
    );
}

#[test]
fn graft_test_passes_a_recorded_assumption_and_fails_an_unrecorded_one() {
    let directory = replicated("replicated");
    let dir = directory.to_string_lossy().into_owned();
    // The coordinator round records which of its channels must not be late.
    let channels = |directory: &Path| -> serde_json::Value {
        let record: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(directory.join("versions/v/justification.json"))
                .expect("record"),
        )
        .expect("json");
        record["passes"][0]["assumptions"][0]["channels"].clone()
    };
    assert_eq!(
        channels(&directory),
        serde_json::json!([
            "server_vote_request",
            "server_commit",
            "write_commit",
            "version"
        ])
    );
    // Without late messages nothing changes.
    let plain = graft(&["test", &dir]);
    assert_eq!(exit_code(&plain), 0, "{}", transcript(&plain));
    assert!(
        !text(&plain).contains("late messages"),
        "{}",
        transcript(&plain)
    );
    // A late broadcast of the write's update (or a late vote request, or a late commit)
    // lets a partition answer a read on stale state: the recorded assumption fails, as the
    // justification says; the version still passes.
    let late = graft(&["test", &dir, "--max-delay", "1"]);
    assert_eq!(exit_code(&late), 0, "{}", transcript(&late));
    let out = text(&late);
    assert!(
        out.contains("the outputs diverge from")
            && out.contains("only where a recorded assumption fails")
            && out.contains("(a hop the source does not have; the source on time)")
            && out.contains("this is the recorded assumption failing: `partition(server, by=key, n=2, partial=true)` assumes synchronous delivery of"),
        "{out}"
    );
    // Each part of the assumption is needed: recording only some channels leaves a
    // divergence under a late one of the others unexplained.
    for (recorded, late_message) in [
        (
            serde_json::json!(["server_vote_request"]),
            "late: version(\"s/0\", 10) s/1->s/0@5",
        ),
        (
            serde_json::json!(["server_vote_request", "version"]),
            "late: server_commit(\"s/1\", \"s/coordinator\", 1) s/coordinator->s/1@4",
        ),
        (
            serde_json::json!(["server_commit", "version"]),
            "late: server_vote_request(\"s/0\", \"s/coordinator\", 1) s/coordinator->s/0@2",
        ),
    ] {
        let path = directory.join("versions/v/justification.json");
        let mut record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("record")).expect("json");
        let original = record.clone();
        record["passes"][0]["assumptions"][0]["channels"] = recorded.clone();
        std::fs::write(&path, serde_json::to_string_pretty(&record).expect("json")).expect("write");
        let partly = graft(&["test", &dir, "--max-delay", "1"]);
        assert_eq!(exit_code(&partly), 1, "{recorded}: {}", transcript(&partly));
        assert!(
            text(&partly).contains(late_message),
            "{recorded}: {}",
            transcript(&partly)
        );
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&original).expect("json"),
        )
        .expect("write");
    }
    // Without the record, the same run fails the version.
    forget_assumptions(&directory.join("versions/v"));
    let unrecorded = graft(&["test", &dir, "--max-delay", "1"]);
    assert_eq!(exit_code(&unrecorded), 1, "{}", transcript(&unrecorded));
    let out = text(&unrecorded);
    assert!(
        out.contains("FAIL ")
            && out.contains("late: version(\"s/0\", 10) s/1->s/0@5")
            && out.contains("the justification records no synchronous-delivery assumption"),
        "{out}"
    );
}

#[test]
fn delay_robust_versions_refine_their_sources_under_late_messages() {
    // Every bundled version that is compared with its source agrees with it under every
    // message late by one or two ticks (Paxos, whose runs are longest, by one here).
    for (protocol, bound) in [
        ("broadcast-best-effort", "2"),
        ("2pc", "2"),
        ("voting", "2"),
        ("kvs", "2"),
        ("paxos", "1"),
    ] {
        let output = graft(&[
            "test",
            &format!("examples/{protocol}"),
            "--max-delay",
            bound,
        ]);
        assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
        let out = text(&output);
        let late: Vec<&str> = out
            .lines()
            .filter(|line| line.contains("late messages"))
            .collect();
        assert!(!late.is_empty(), "{out}");
        assert!(
            late.iter()
                .all(|line| line.starts_with("ok   ") && line.contains("same outputs as")),
            "{out}"
        );
    }
    // The batch of best-effort broadcast: `verify --refines` under late messages too.
    let version = "examples/broadcast-best-effort/versions/batch-deliver";
    let output = graft(&[
        "verify",
        &format!("{version}/broadcast-best-effort.graft"),
        "--facts",
        &format!("{version}/topology.facts"),
        "--facts",
        &format!("{version}/workload.facts"),
        "--eot",
        "4",
        "--eff",
        "2",
        "--max-delay",
        "1",
        "--refines",
        "--no-cache",
    ]);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    assert!(
        text(&output).contains(
            "under late messages (every message late by 1..=1 tick(s), as in `graft test --max-delay`): 2 schedule(s)\n  same outputs eventually"
        ),
        "{}",
        transcript(&output)
    );
}

/// The source keeps the value it last received; the "version" keeps the largest. They agree
/// at every tick while messages arrive in order.
const LAST_RECEIVED: &str = "input table link(at: node, p: node);
input put(at: node, v: int);
channel w(at: node, v: int);
output scratch last(at: node, v: int);
scratch pre(at: node);
scratch post(at: node);
w(P, V)@async :- put(N, V), link(N, P);
last(N, V)@next :- w(N, V);
last(N, V)@next :- last(N, V), notin w(N, _);
pre(N) :- link(_, N);
post(N) :- last(N, 2);
";

const LARGEST: &str = "input table link(at: node, p: node);
input put(at: node, v: int);
channel w(at: node, v: int);
output scratch last(at: node, v: int);
table got(at: node, v: int);
scratch best(at: node, v: int);
scratch pre(at: node);
scratch post(at: node);
w(P, V)@async :- put(N, V), link(N, P);
got(N, V)@next :- w(N, V);
best(N, max<V>) :- got(N, V);
last(N, V) :- best(N, V);
pre(N) :- link(_, N);
post(N) :- last(N, 2);
";

#[test]
fn a_per_tick_divergence_that_needs_a_late_message_names_it() {
    let directory = scratch("per-tick");
    std::fs::write(directory.join("old.graft"), LAST_RECEIVED).expect("old");
    std::fs::write(directory.join("new.graft"), LARGEST).expect("new");
    std::fs::write(
        directory.join("w.facts"),
        "link(\"a\", \"b\")@1;\nput(\"a\", 1)@1;\nput(\"a\", 2)@2;\n",
    )
    .expect("facts");
    let path = |file: &str| directory.join(file).to_string_lossy().into_owned();
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "verify".to_owned(),
            path("new.graft"),
            "--facts".to_owned(),
            path("w.facts"),
            "--eot".to_owned(),
            "6".to_owned(),
            "--eff".to_owned(),
            "3".to_owned(),
            "--refines".to_owned(),
            path("old.graft"),
            "--no-cache".to_owned(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        graft(&args)
    };
    let on_time = verify(&[]);
    assert!(
        text(&on_time).contains("same outputs at every tick"),
        "{}",
        transcript(&on_time)
    );
    let late = verify(&["--max-delay", "2"]);
    assert_eq!(exit_code(&late), 1, "{}", transcript(&late));
    let out = text(&late);
    for expected in [
        "first divergence under delay a->b@1+2: `last` at tick 5",
        "the divergence is the late messages' doing (without them the schedule gives the same outputs); there is no justification record",
        "late: w(\"b\", 1) a->b@1 (+2 late)",
    ] {
        assert!(out.contains(expected), "missing `{expected}`:\n{out}");
    }
}

#[test]
fn graft_test_takes_the_bound_from_protocol_json_unless_told() {
    let directory = race()("race-protocol-json");
    let dir = directory.to_string_lossy().into_owned();
    std::fs::write(
        directory.join("protocol.json"),
        r#"{"format": "graft-protocol/1", "verify": [{"workload": "workload.facts", "eot": 6, "eff": 3, "max_delay": 1}]}"#,
    )
    .expect("protocol.json");
    let from_file = graft(&["test", &dir]);
    assert_eq!(exit_code(&from_file), 0, "{}", transcript(&from_file));
    assert!(
        text(&from_file)
            .contains("2 schedule(s) of late messages (up to 1 tick(s)); the outputs diverge from"),
        "{}",
        transcript(&from_file)
    );
    let told = graft(&["test", &dir, "--max-delay", "0"]);
    assert_eq!(exit_code(&told), 0, "{}", transcript(&told));
    assert!(
        !text(&told).contains("late messages"),
        "{}",
        transcript(&told)
    );
}
