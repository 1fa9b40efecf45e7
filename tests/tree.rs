//! End-to-end tests of `graft test` and `graft verify` on a tree of protocol directories: one
//! line per protocol version (and verification configuration), failures named, the exit
//! status, `--jobs`, and no progress output when standard error is not a terminal.

mod common;

use std::path::{Path, PathBuf};

use common::{exit_code, graft, transcript};

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let directory = std::env::temp_dir().join(format!("graft-tree-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).expect("scratch directory");
    directory
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create directory");
    for entry in std::fs::read_dir(from).expect("list directory") {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            if entry.file_name() == ".graft" {
                continue;
            }
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// The number of program versions under `examples/` (originals and `versions/*`).
fn example_versions() -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir(common::root().join("examples")).expect("examples") {
        let path = entry.expect("entry").path();
        if !path.is_dir() {
            continue;
        }
        count += 1;
        if let Ok(versions) = std::fs::read_dir(path.join("versions")) {
            count += versions.count();
        }
    }
    count
}

#[test]
fn graft_test_on_the_examples_tree_prints_one_line_per_version() {
    let output = graft(&["test", "examples", "--jobs", "2"]);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), example_versions() + 1, "{stdout}");
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|line| line.starts_with("ok   examples/")),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "ok   examples/2pc/versions/partition-participant/2pc.graft: 3 workload(s), snapshots match, same outputs as examples/2pc/2pc.graft (per-tick)"
        ),
        "{stdout}"
    );
    let last = lines.last().copied().unwrap_or_default();
    let protocols = std::fs::read_dir(common::root().join("examples"))
        .expect("examples")
        .filter(|entry| entry.as_ref().is_ok_and(|entry| entry.path().is_dir()))
        .count();
    assert!(
        last.starts_with(&format!("{protocols} protocol(s), ")),
        "{last}"
    );
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
    // Not a terminal: no progress line.
    assert!(output.stderr.is_empty(), "{}", transcript(&output));
    // The same lines with one job.
    let serial = graft(&["test", "examples"]);
    assert_eq!(serial.stdout, output.stdout);
}

#[test]
fn graft_test_on_a_tree_names_the_failing_snapshot_and_exits_1() {
    let directory = scratch("snapshot");
    copy_dir(
        &common::root().join("examples/voting"),
        &directory.join("voting"),
    );
    copy_dir(
        &common::root().join("examples/2pc"),
        &directory.join("nested/2pc"),
    );
    let snapshot =
        directory.join("nested/2pc/versions/decouple-outcome/snapshots/2pc__workload.snap");
    let text = std::fs::read_to_string(&snapshot).expect("snapshot");
    std::fs::write(&snapshot, text.replace("true", "false")).expect("edit snapshot");
    let output = graft(&["test", &directory.to_string_lossy()]);
    assert_eq!(exit_code(&output), 1, "{}", transcript(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let failing: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("FAIL"))
        .collect();
    assert_eq!(failing.len(), 1, "{stdout}");
    assert!(
        failing[0].contains(
            "nested/2pc/versions/decouple-outcome/2pc.graft: workload: outputs differ from"
        ),
        "{stdout}"
    );
    assert!(failing[0].contains("2pc__workload.snap"), "{stdout}");
    assert!(stdout.contains("ok   "), "{stdout}");
    assert!(
        stdout
            .lines()
            .last()
            .unwrap_or_default()
            .ends_with(" passed, 1 failed"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&directory);
}

#[test]
fn a_directory_without_protocols_is_a_clear_error() {
    let directory = scratch("empty");
    std::fs::create_dir_all(directory.join("notes")).expect("directory");
    for command in ["test", "verify"] {
        let output = graft(&[command, &directory.to_string_lossy()]);
        assert_eq!(exit_code(&output), 2, "{}", transcript(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("holds no .graft program and no protocol directory below it"),
            "{stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&directory);
}

#[test]
fn graft_verify_on_the_examples_tree_meets_every_expectation() {
    let output = graft(&["verify", "examples", "--no-cache", "--jobs", "2"]);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.stderr.is_empty(), "{}", transcript(&output));
    for expected in [
        "ok   examples/2pc/buggy/2pc-blocking.graft on workload.facts (EOT 5, EFF 0, crashes 1): counterexample, as expected (2 executions): crash C@3 violates post(\"p1\", 1), post(\"p2\", 1), post(\"p3\", 1)",
        "ok   examples/paxos/paxos.graft on workload.facts (EOT 7, EFF 3, crashes 0, symmetry): certified (",
        "ok   examples/voting/versions/partition-leader/voting.graft on workload.facts (EOT 5, EFF 2, crashes 1): certified (",
    ] {
        assert!(stdout.contains(expected), "missing {expected}\n{stdout}");
    }
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.ends_with("of 9 protocol(s): ") || last.contains(" passed, 0 failed"),
        "{last}"
    );
    // Every version of every protocol with configurations is verified.
    assert!(
        stdout.contains("examples/kvs/versions/partition-primary/kvs.graft on workload.facts"),
        "{stdout}"
    );
}

#[test]
fn graft_verify_on_a_tree_fails_when_an_expectation_is_not_met() {
    let directory = scratch("expect");
    copy_dir(
        &common::root().join("examples/broadcast-retry"),
        &directory.join("broadcast-retry"),
    );
    copy_dir(
        &common::root().join("examples/broadcast-relay"),
        &directory.join("broadcast-relay"),
    );
    // The naive broadcast is recorded as correct: its counterexample now fails the tree.
    let record = directory.join("broadcast-retry/protocol.json");
    let text = std::fs::read_to_string(&record).expect("protocol.json");
    let edited = text.replace(
        "\"program\": \"buggy/broadcast-naive.graft\", \"workload\": \"workload.facts\", \"eot\": 4, \"eff\": 2, \"expect\": \"counterexample\"",
        "\"program\": \"buggy/broadcast-naive.graft\", \"workload\": \"workload.facts\", \"eot\": 4, \"eff\": 2",
    );
    assert_ne!(
        edited, text,
        "the test edits the naive broadcast's configuration"
    );
    std::fs::write(&record, edited).expect("edit protocol.json");
    let output = graft(&[
        "verify",
        &directory.to_string_lossy(),
        "--no-cache",
        "--jobs",
        "2",
    ]);
    assert_eq!(exit_code(&output), 1, "{}", transcript(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let failing: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("FAIL"))
        .collect();
    assert_eq!(failing.len(), 1, "{stdout}");
    assert!(
        failing[0].ends_with("broadcast-retry/buggy/broadcast-naive.graft on workload.facts (EOT 4, EFF 2, crashes 0): counterexample (2 executions): drop a->b@1 violates post(\"a\", \"b\", \"a\", \"hello\"), post(\"c\", \"b\", \"a\", \"hello\")"),
        "{stdout}"
    );
    // The report of the failing verification follows, indented.
    assert!(
        stdout.contains("     verdict: counterexample (ldfi strategy, 2 executions)"),
        "{stdout}"
    );
    // One job and two give the same lines.
    let serial = graft(&["verify", &directory.to_string_lossy(), "--no-cache"]);
    assert_eq!(serial.stdout, output.stdout);
    // A malformed record fails its protocol, with the reason; the others are still verified.
    std::fs::write(
        &record,
        "{\"format\": \"graft-protocol/1\", \"verify\": [{\"eot\": 3}]}",
    )
    .expect("write");
    let output = graft(&["verify", &directory.to_string_lossy(), "--no-cache"]);
    assert_eq!(exit_code(&output), 1, "{}", transcript(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let failing: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("FAIL"))
        .collect();
    assert_eq!(failing.len(), 1, "{stdout}");
    assert!(
        failing[0].contains("protocol.json` is not a protocol record"),
        "{stdout}"
    );
    assert!(failing[0].contains("missing field `workload`"), "{stdout}");
    assert!(stdout.contains("ok   "), "{stdout}");
    let _ = std::fs::remove_dir_all(&directory);
}

#[test]
fn bounds_on_the_command_line_are_refused_with_a_directory() {
    let output = graft(&["verify", "examples/2pc", "--eot", "3"]);
    assert_eq!(exit_code(&output), 2, "{}", transcript(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("come from each protocol's protocol.json"),
        "{}",
        transcript(&output)
    );
    let output = graft(&["verify", "examples/2pc/2pc.graft"]);
    assert_eq!(exit_code(&output), 2, "{}", transcript(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--eot N is required"),
        "{}",
        transcript(&output)
    );
}

/// Runs `command` under `script`, which gives it a terminal; `None` where `script` is missing.
fn on_a_terminal(command: &str) -> Option<String> {
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|path| Path::new(path).is_file())?;
    // One typescript per call: the tests of this file run in parallel threads.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let log = std::env::temp_dir().join(format!(
        "graft-tree-{}-{call}-terminal.log",
        std::process::id()
    ));
    let status = std::process::Command::new(script)
        .args(["-qec", command])
        .arg(&log)
        .current_dir(common::root())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("script runs");
    assert!(status.success(), "{command}: {status}");
    let text = std::fs::read_to_string(&log).expect("typescript");
    let _ = std::fs::remove_file(&log);
    Some(text)
}

#[test]
fn progress_is_drawn_on_a_terminal_cleared_at_the_end_and_never_with_json() {
    let graft_binary = env!("CARGO_BIN_EXE_graft");
    // Verifying 2PC and its versions takes seconds in a debug build: long enough to draw.
    let Some(text) = on_a_terminal(&format!(
        "{graft_binary} --color=never verify examples --no-cache > /dev/null"
    )) else {
        println!("skipped: no `script` to give graft a terminal");
        return;
    };
    let drawn: Vec<&str> = text
        .split('\r')
        .filter(|part| part.starts_with("verify: "))
        .collect();
    assert!(!drawn.is_empty(), "no progress line on a terminal:\n{text}");
    assert!(
        drawn
            .iter()
            .all(|line| line.contains(" executions, ") && line.contains("/s, now EOT ")),
        "{drawn:?}"
    );
    // The last thing drawn blanks the line.
    let last = text.rsplit("verify: ").next().unwrap_or_default();
    assert!(
        last.contains("\r          "),
        "the line is not cleared:\n{last}"
    );
    let json = on_a_terminal(&format!(
        "{graft_binary} --color=never verify examples --no-cache --format json > /dev/null"
    ))
    .unwrap_or_default();
    assert!(
        !json.contains("verify: "),
        "progress with --format json:\n{json}"
    );
}

#[test]
fn optimize_shows_progress_on_a_terminal_only() {
    let graft_binary = env!("CARGO_BIN_EXE_graft");
    let command = format!(
        "{graft_binary} --color=never optimize examples/voting/voting.graft \
         --facts examples/voting/topology.facts --facts examples/voting/workload-scale.facts \
         --machines 26 --max-steps 2"
    );
    let Some(text) = on_a_terminal(&format!("{command} > /dev/null")) else {
        println!("skipped: no `script` to give graft a terminal");
        return;
    };
    let drawn: Vec<&str> = text
        .split('\r')
        .filter(|part| part.starts_with("optimize: "))
        .collect();
    assert!(!drawn.is_empty(), "no progress line on a terminal:\n{text}");
    assert!(
        drawn
            .iter()
            .all(|line| line.contains(" versions, ") && line.contains(" step(s): ")),
        "{drawn:?}"
    );
    // Not a terminal: nothing on standard error.
    let output = graft(&[
        "optimize",
        "examples/voting/voting.graft",
        "--facts",
        "examples/voting/topology.facts",
        "--facts",
        "examples/voting/workload-scale.facts",
        "--machines",
        "26",
        "--max-steps",
        "2",
    ]);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    assert!(output.stderr.is_empty(), "{}", transcript(&output));
}

#[test]
fn bench_shows_progress_on_a_terminal_only() {
    let graft_binary = env!("CARGO_BIN_EXE_graft");
    // Seconds per version in a debug build: long enough to draw.
    let command =
        format!("{graft_binary} --color=never bench examples/voting --scale 20000 --workers 2");
    let Some(text) = on_a_terminal(&format!("{command} > /dev/null")) else {
        println!("skipped: no `script` to give graft a terminal");
        return;
    };
    let drawn: Vec<&str> = text
        .split('\r')
        .filter(|part| part.starts_with("bench: "))
        .collect();
    assert!(!drawn.is_empty(), "no progress line on a terminal:\n{text}");
    assert!(
        drawn.iter().all(|line| line.contains(" versions, ")),
        "{drawn:?}"
    );
    assert!(
        drawn
            .iter()
            .any(|line| line.contains("now decouple-collector of examples/voting")),
        "{drawn:?}"
    );
    let json = on_a_terminal(&format!("{command} --format json > /dev/null")).unwrap_or_default();
    assert!(
        !json.contains("bench: "),
        "progress with --format json:\n{json}"
    );
}
