//! `graft explain` and `graft verify` on the timely engine, end to end: they print exactly
//! what they print on the reference evaluator — the same derivation trees, and on every
//! verification configuration of every bundled protocol (`examples/*/protocol.json`) the
//! same verdicts, counterexamples and execution counts — on one timely worker and on two (and
//! the reference on two threads as on one).

mod common;

use common::{exit_code, graft};

/// `graft verify examples` (every protocol's configurations) on each engine.
#[test]
fn verify_on_timely_prints_what_the_reference_prints_on_every_protocol() {
    let run = |extra: &[&str]| {
        let mut args = vec!["verify", "examples", "--no-cache"];
        args.extend_from_slice(extra);
        let output = graft(&args);
        assert_eq!(
            exit_code(&output),
            0,
            "graft {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let reference = run(&["--engine", "reference"]);
    assert!(
        reference.contains("executions") && reference.lines().count() > 20,
        "the reference verified too little:\n{reference}"
    );
    assert_eq!(
        run(&["--engine", "timely"]),
        reference,
        "timely on one worker"
    );
    assert_eq!(
        run(&["--engine", "timely", "--workers", "2"]),
        reference,
        "timely on two workers"
    );
    // Two threads that also extract the lineage of the runs they make.
    assert_eq!(
        run(&["--engine", "reference", "--workers", "2"]),
        reference,
        "the reference on two threads"
    );
}

/// A counterexample's JSON report (faults, violations, executions) on each engine, with the
/// reference run on two threads too.
#[test]
fn a_counterexample_is_the_same_on_every_engine() {
    let base = [
        "verify",
        "examples/2pc/buggy/2pc-blocking.graft",
        "--facts",
        "examples/2pc/topology.facts",
        "--facts",
        "examples/2pc/workload.facts",
        "--eot",
        "5",
        "--crashes",
        "1",
        "--all",
        "--no-cache",
        "--format",
        "json",
    ];
    let run = |extra: &[&str]| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        let output = graft(&args);
        assert_eq!(exit_code(&output), 1, "{output:?}");
        let mut report: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("the report is JSON");
        // The only field that may differ.
        report.as_object_mut().expect("an object").remove("seconds");
        report
    };
    let reference = run(&["--engine", "reference"]);
    assert_eq!(reference["verdict"], "counterexample");
    for extra in [
        &["--engine", "timely"][..],
        &["--engine", "timely", "--workers", "2"],
        &["--engine", "reference", "--workers", "2"],
    ] {
        assert_eq!(run(extra), reference, "{extra:?}");
    }
}

/// `graft explain` of facts of several protocols, on each engine, under faults too.
#[test]
fn explain_on_timely_prints_the_reference_derivation_trees() {
    let cases: &[&[&str]] = &[
        &[
            "examples/2pc/2pc.graft",
            "--facts",
            "examples/2pc/topology.facts",
            "--facts",
            "examples/2pc/workload.facts",
            "outcome(\"p1\", 1, true)@4",
        ],
        &[
            "examples/2pc/2pc.graft",
            "--facts",
            "examples/2pc/topology.facts",
            "--facts",
            "examples/2pc/workload.facts",
            "--crash",
            "p2@2",
            "--eot",
            "8",
            "--format",
            "dot",
            "outcome(\"p1\", 1, false)@8",
        ],
        &[
            "examples/paxos/paxos.graft",
            "--facts",
            "examples/paxos/topology.facts",
            "--facts",
            "examples/paxos/workload.facts",
            "--drop",
            "p1,a1,1",
            "chosen(\"p1\", \"y\")@7",
        ],
        &[
            "examples/broadcast-relay/relay.ded",
            "log(\"c\", \"a\", \"hello\")@4",
        ],
    ];
    for case in cases {
        let run = |engine: &str| {
            let mut args = vec!["explain", "--engine", engine];
            args.extend_from_slice(case);
            let output = graft(&args);
            assert_eq!(
                exit_code(&output),
                0,
                "graft {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout).into_owned()
        };
        let reference = run("reference");
        assert!(reference.lines().count() > 3, "{reference}");
        assert_eq!(run("timely"), reference, "{case:?}");
    }
}
