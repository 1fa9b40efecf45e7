//! Throughput of the reference evaluator on generated workloads: facts derived per second
//! (recursive joins), ticks per second (many nodes exchanging messages), and runs per second
//! on a Molly-sized broadcast with EOT 6 (what LDFI repeats thousands of times).
//!
//! Run with `cargo bench -p graft-eval`; it prints one line per figure.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use graft_compiler::ir;
use graft_eval::{EvalStrategy, Evaluator, RunConfig};
use graft_language::span::{FileId, SourceMap};

fn compile(source: &str) -> Result<(graft_compiler::Checked, Evaluator), String> {
    let mut sources = SourceMap::new();
    let id = sources.add("bench.graft", source);
    let parsed = graft_language::parse(id, source);
    if !parsed.diagnostics.is_empty() {
        return Err(format!("syntax errors: {:?}", parsed.diagnostics));
    }
    let checked = graft_compiler::check(&sources, &[parsed.file]);
    let evaluator = Evaluator::new(&checked).map_err(|error| error.to_string())?;
    Ok((checked, evaluator))
}

fn workload(checked: &graft_compiler::Checked, text: &str) -> Result<Vec<ir::Fact>, String> {
    let parsed = graft_language::parse(FileId(1), text);
    let (facts, diagnostics) = graft_compiler::check_facts(&checked.program, &[parsed.file]);
    if diagnostics.is_empty() {
        Ok(facts)
    } else {
        Err(format!("workload errors: {diagnostics:?}"))
    }
}

/// Repeats `body` until `budget` has passed; returns the number of repetitions and the time.
fn repeat(budget: Duration, mut body: impl FnMut()) -> (u64, Duration) {
    let start = Instant::now();
    let mut count = 0;
    while count == 0 || start.elapsed() < budget {
        body();
        count += 1;
    }
    (count, start.elapsed())
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

const CLOSURE: &str = r#"
    table edge(at: node, src: int, dst: int);
    scratch path(at: node, src: int, dst: int);
    path(N, X, Y) :- edge(N, X, Y);
    path(N, X, Z) :- path(N, X, Y), edge(N, Y, Z);
"#;

/// Transitive closure of a chain of `length` edges at each of `nodes` nodes.
fn closure(strategy: EvalStrategy, nodes: usize, length: usize) -> Result<(), String> {
    let (checked, evaluator) = compile(CLOSURE)?;
    let mut text = String::new();
    for node in 0..nodes {
        for step in 0..length {
            let _ = writeln!(text, "edge(\"n{node}\", {step}, {})@1;", step + 1);
        }
    }
    let facts = workload(&checked, &text)?;
    let config = RunConfig {
        strategy,
        ..RunConfig::with_eot(3)
    };
    let mut derived = 0;
    let mut firings = 0;
    let (runs, elapsed) = repeat(Duration::from_secs(2), || {
        if let Ok(run) = evaluator.run(&config, &facts) {
            derived += run.stats.facts_derived;
            firings += run.stats.rule_firings;
        }
    });
    println!(
        "closure {strategy:?} ({nodes} nodes x chain {length}, EOT 3): {:.0} facts derived/s, {:.0} firings/s ({runs} runs)",
        per_second(derived, elapsed),
        per_second(firings, elapsed),
    );
    Ok(())
}

const RETRY: &str = r#"
    input bcast(at: node, msg: int);
    input table neighbor(at: node, peer: node);
    table outbox(at: node, msg: int);
    channel deliver(at: node, origin: node, msg: int);
    output table log(at: node, origin: node, msg: int);
    outbox(N, M) :- bcast(N, M);
    log(N, N, M) :- bcast(N, M);
    deliver(P, N, M)@async :- outbox(N, M), neighbor(N, P);
    log(N, O, M) :- deliver(N, O, M);
    count_log(N, count<M>) :- log(N, _, M);
"#;

/// A retrying broadcast on a full mesh: every tick every origin resends every message.
fn mesh(nodes: usize, messages: usize, eot: u64) -> Result<(), String> {
    let (checked, evaluator) = compile(RETRY)?;
    let mut text = String::new();
    for from in 0..nodes {
        for to in 0..nodes {
            if from != to {
                let _ = writeln!(text, "neighbor(\"n{from}\", \"n{to}\")@1;");
            }
        }
    }
    for message in 0..messages {
        let _ = writeln!(
            text,
            "bcast(\"n{}\", {message})@{};",
            message % nodes,
            1 + message % 5
        );
    }
    let facts = workload(&checked, &text)?;
    let config = RunConfig::with_eot(eot);
    let mut ticks = 0;
    let mut held = 0;
    let (runs, elapsed) = repeat(Duration::from_secs(2), || {
        if let Ok(run) = evaluator.run(&config, &facts) {
            ticks += run.ticks_run;
            held += run.stats.facts_held;
        }
    });
    println!(
        "mesh retry broadcast ({nodes} nodes, {messages} messages, EOT {eot}): {:.1} ticks/s, {:.0} facts held/s ({runs} runs)",
        per_second(ticks, elapsed),
        per_second(held, elapsed),
    );
    Ok(())
}

const RELAY: &str = r#"
    node("a", "b")@1;
    node("a", "c")@1;
    node("b", "a")@1;
    node("b", "c")@1;
    node("c", "a")@1;
    node("c", "b")@1;
    bcast("a", "hello")@1;
    node(N, P)@next :- node(N, P);
    log(N, O, M)@next :- log(N, O, M);
    relayed(N, O, M)@next :- relayed(N, O, M);
    log(N, N, M) :- bcast(N, M);
    deliver(P, N, M)@async :- bcast(N, M), node(N, P);
    log(N, O, M) :- deliver(N, O, M);
    deliver(P, O, M)@async :- deliver(N, O, M), node(N, P), notin relayed(N, O, M), P != O;
    relayed(N, O, M)@next :- deliver(N, O, M);
    pre(A, B, O, M) :- log(A, O, M), node(A, B), notin crash(A, B, _);
    post(A, B, O, M) :- log(A, O, M), node(A, B), log(B, O, M);
"#;

/// Many short runs of a Molly-sized broadcast with varying faults, as LDFI does.
fn small_runs(provenance: bool) -> Result<(), String> {
    let (_, evaluator) = compile(RELAY)?;
    let schedules: Vec<RunConfig> = (0..8_u64)
        .map(|variant| {
            let mut config = RunConfig::with_eot(6);
            config.provenance = provenance;
            if variant % 2 == 1 {
                config.drops.insert(("a".into(), "b".into(), 1));
            }
            if variant % 4 >= 2 {
                config.drops.insert(("b".into(), "c".into(), 2));
            }
            if variant >= 4 {
                config.crashes.insert("a".into(), 2);
            }
            config
        })
        .collect();
    let mut index = 0;
    let (runs, elapsed) = repeat(Duration::from_secs(2), || {
        let config = &schedules[index % schedules.len()];
        index += 1;
        black_box(evaluator.run(config, &[]).ok());
    });
    println!(
        "relay broadcast (3 nodes, EOT 6, provenance {provenance}): {:.0} runs/s",
        per_second(runs, elapsed)
    );
    Ok(())
}

fn main() {
    let results = [
        closure(EvalStrategy::SemiNaive, 4, 60),
        closure(EvalStrategy::Naive, 2, 15),
        mesh(30, 40, 12),
        small_runs(false),
        small_runs(true),
    ];
    for result in results {
        if let Err(error) = result {
            eprintln!("benchmark failed: {error}");
            std::process::exit(1);
        }
    }
}
