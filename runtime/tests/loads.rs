//! Per-node load counters (`Runtime::run_counting_loads`): the same counts on one and two
//! workers, every message counted once by its sender and once by its receiver, the facts held
//! equal to what a plain run shows, and a run that needs the dataflow lowering refused.

mod common;

use std::collections::BTreeSet;

use graft_eval::{RunConfig, ShowSet};
use graft_runtime::{Execution, Runtime, RuntimeError};

fn example(name: &str, files: &[&str]) -> common::Loaded {
    let directory = common::root().join("examples").join(name);
    let path = |file: &str| directory.join(file).to_string_lossy().into_owned();
    common::load(
        &[path(&format!("{name}.graft"))],
        &files.iter().map(|file| path(file)).collect::<Vec<_>>(),
    )
    .expect("the example loads")
}

#[test]
fn loads_do_not_depend_on_the_workers_and_messages_balance() {
    let loaded = example("voting", &["topology.facts", "workload.facts"]);
    let runtime = Runtime::new(&loaded.checked).expect("a runtime");
    let config = RunConfig::default();
    let one = runtime
        .run_counting_loads(&config, &loaded.facts, &ShowSet::Default, 1)
        .expect("a counted run");
    let two = runtime
        .run_counting_loads(&config, &loaded.facts, &ShowSet::Default, 2)
        .expect("a counted run");
    let without_workers = |run: &graft_runtime::CountedRun| {
        run.loads
            .iter()
            .map(|(node, load)| {
                (
                    node.clone(),
                    load.facts_derived,
                    load.messages_sent,
                    load.messages_received,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(without_workers(&one), without_workers(&two));
    assert_eq!(one.held, two.held);
    assert!(one.loads.values().all(|load| load.worker == 0));
    let nodes: Vec<&str> = one.loads.keys().map(String::as_str).collect();
    assert_eq!(nodes, ["L", "v1", "v2", "v3"]);
    let sent: u64 = one.loads.values().map(|load| load.messages_sent).sum();
    let received: u64 = one.loads.values().map(|load| load.messages_received).sum();
    assert!(sent > 0);
    assert_eq!(sent, received);
    assert!(one.loads["L"].facts_derived > one.loads["v1"].facts_derived);

    // The facts held are those a plain run shows, each once.
    let plain = runtime
        .run(
            &config,
            &loaded.facts,
            &ShowSet::Default,
            &Execution::default(),
        )
        .expect("a run")
        .expect("process 0's output");
    let shown: BTreeSet<(String, Vec<graft_compiler::ir::Value>)> = plain
        .facts
        .into_iter()
        .map(|fact| (fact.relation, fact.values))
        .collect();
    assert_eq!(one.held, shown.into_iter().collect::<Vec<_>>());
    assert_eq!(one.ticks_run, plain.ticks_run);
}

#[test]
fn a_run_needing_the_dataflow_lowering_is_refused() {
    // A Molly rule whose body sits at a constant node: the node-local engine does not run it.
    let loaded = common::load_inline_as(
        "link(\"a\", \"b\")@1;\nseen(\"a\", B) :- link(\"a\", B);\n",
        "",
        "ded",
    )
    .expect("the program loads");
    let runtime = Runtime::new(&loaded.checked).expect("a runtime");
    assert!(!runtime.is_local(&ShowSet::All));
    let result = runtime.run_counting_loads(&RunConfig::default(), &loaded.facts, &ShowSet::All, 1);
    assert_eq!(result, Err(RuntimeError::LoadsNeedLocalEngine));
}
