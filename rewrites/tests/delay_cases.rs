//! Which late messages a version is compared with its source under (`compare::delay_cases`):
//! a source message's counterpart is the version's message that maps back to it, sent at the
//! same tick or the first one after; a hop only the version has is delayed on its own.

use std::collections::BTreeSet;

use graft_compiler::ir::Value;
use graft_rewrites::compare::{ChannelTick, SentMessage, delay_cases, message_back};
use graft_rewrites::{DFact, FactsFile, SourceRef, check_text, parse_pass, rewrite};

const PROGRAM: &str = "role client;\nrole server;\ninput table server_of(at: client, s: server);\ninput req(at: client, id: int);\nchannel ask(at: server, from: client, id: int);\noutput table got(at: server, id: int);\nask(S, C, Id)@async :- req(C, Id), server_of(C, S);\ngot(S, Id) :- ask(S, _, Id);\n";

/// A case as (source channel, version channels, ticks late).
type Summary = (Option<ChannelTick>, BTreeSet<ChannelTick>, u64);

fn message(relation: &str, values: &[Value], from: &str, to: &str, tick: u64) -> SentMessage {
    SentMessage {
        relation: relation.to_owned(),
        values: values.to_vec(),
        from: from.to_owned(),
        to: to.to_owned(),
        tick,
    }
}

fn justification(pass: &str) -> graft_rewrites::Justification {
    let (checked, _) = check_text("p.graft", PROGRAM);
    assert!(!checked.has_errors());
    let source = SourceRef {
        files: vec!["p.graft".to_owned()],
        hash: graft_rewrites::content_hash(PROGRAM.as_bytes()),
    };
    let files = vec![FactsFile {
        name: "topology.facts".to_owned(),
        facts: vec![DFact {
            rel: "server_of".to_owned(),
            values: vec![Value::str("c"), Value::str("s")],
            tick: 1,
        }],
        generated: Vec::new(),
    }];
    let spec = parse_pass(pass).expect("pass");
    rewrite(&checked, &source, files, &[spec])
        .expect("applies")
        .justification
}

#[test]
fn a_late_source_message_makes_its_partition_copy_late_at_the_same_tick() {
    let record = justification("partition(server, by=id, n=2)");
    let (one, two) = (Value::Int(1), Value::Int(2));
    let c = Value::str("c");
    let source = vec![
        message(
            "ask",
            &[Value::str("s"), c.clone(), one.clone()],
            "c",
            "s",
            1,
        ),
        message(
            "ask",
            &[Value::str("s"), c.clone(), two.clone()],
            "c",
            "s",
            2,
        ),
    ];
    let version = vec![
        message(
            "ask",
            &[Value::str("s/1"), c.clone(), one.clone()],
            "c",
            "s/1",
            1,
        ),
        message(
            "ask",
            &[Value::str("s/0"), c.clone(), two.clone()],
            "c",
            "s/0",
            2,
        ),
    ];
    assert_eq!(
        message_back(&record, &version[0]),
        Some(source[0].clone()),
        "a partition's message maps back to the original's"
    );
    let cases = delay_cases(&record, &source, &version, 2);
    let summary: Vec<Summary> = cases
        .iter()
        .map(|case| (case.source.clone(), case.version.clone(), case.by))
        .collect();
    let channel = |from: &str, to: &str, tick: u64| (from.to_owned(), to.to_owned(), tick);
    assert_eq!(
        summary,
        vec![
            (
                Some(channel("c", "s", 1)),
                BTreeSet::from([channel("c", "s/1", 1)]),
                1
            ),
            (
                Some(channel("c", "s", 1)),
                BTreeSet::from([channel("c", "s/1", 1)]),
                2
            ),
            (
                Some(channel("c", "s", 2)),
                BTreeSet::from([channel("c", "s/0", 2)]),
                1
            ),
            (
                Some(channel("c", "s", 2)),
                BTreeSet::from([channel("c", "s/0", 2)]),
                2
            ),
        ]
    );
    assert_eq!(cases[0].messages, vec!["ask(\"s/1\", \"c\", 1) c->s/1@1"]);
    assert!(delay_cases(&record, &source, &version, 0).is_empty());
}

#[test]
fn a_hop_inside_one_source_node_is_delayed_on_its_own() {
    let record = justification("partition(server, by=id, n=2)");
    // A message between two partitions of one node has no counterpart in the source.
    let hop = message("got", &[Value::str("s/0"), Value::Int(1)], "s/1", "s/0", 3);
    assert_eq!(message_back(&record, &hop), None);
    let cases = delay_cases(&record, &[], std::slice::from_ref(&hop), 1);
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].source, None);
    assert_eq!(
        cases[0].version,
        BTreeSet::from([("s/1".to_owned(), "s/0".to_owned(), 3)])
    );
}

#[test]
fn a_batched_message_is_the_counterpart_of_the_earlier_source_message() {
    let record = justification("batch(ask, ticks=2)");
    let c = Value::str("c");
    let sent = |tick| {
        message(
            "ask",
            &[Value::str("s"), c.clone(), Value::Int(1)],
            "c",
            "s",
            tick,
        )
    };
    // The source sends at 1; the batch leaves at 2.
    let cases = delay_cases(&record, &[sent(1)], &[sent(2)], 1);
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].source, Some(("c".to_owned(), "s".to_owned(), 1)));
    assert_eq!(
        cases[0].version,
        BTreeSet::from([("c".to_owned(), "s".to_owned(), 2)])
    );
    // A message the version sends before the source's has no later counterpart: skipped.
    assert!(delay_cases(&record, &[sent(3)], &[sent(2)], 1).is_empty());
}
