//! Throughput of the timely runtime against the reference evaluator, printed as figures:
//!
//! - **peak memory** with 10^6 persisted facts (a `table` of 10^6 facts over 16 nodes, 3
//!   ticks): `VmHWM` of this process before and after the timely run, then after a reference
//!   run (measured first, before anything else has grown the heap);
//! - **per-tick overhead** with one fact per tick (a counter carried by `@next`): the time per
//!   tick of 10,000 extra ticks, timely on one worker and the reference;
//! - **facts per second** on large workloads: two-phase commit (`examples/2pc`) with 100,000
//!   transactions on one coordinator and on 8 coordinators, and reliable broadcast
//!   (`examples/broadcast-relay`) of 2,000 messages on 64 nodes; the reference and timely on
//!   1 and 2 workers. "Facts" are the reference's `facts_held` (every fact at every tick it
//!   holds), the same work for every engine; every timely run's ticks are checked against the
//!   reference's.
//!
//! - **traced runs** (what `graft verify` and `graft explain` read): runs with provenance of
//!   `examples/paxos` (EOT 7) under 64 fault schedules (each omission of one message before
//!   tick 4, and the failure-free run), the reference one by one, timely one by one and in
//!   batches of 8, 16 and 64 executions per dataflow on 1 and 2 workers, as executions per
//!   second.
//!
//! Runs show no relation (the engines' work, not printing). Run with
//! `cargo bench -p graft-runtime --bench runtime`; words after `--` select cases by name;
//! `GRAFT_BENCH_SKIP_REFERENCE=1` skips the reference runs (for profiling the runtime alone);
//! `GRAFT_BENCH_WORKERS=1,2` chooses the worker counts and `GRAFT_BENCH_REPEATS=N` the runs of
//! which the best is reported.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use graft_compiler::{Checked, ir};
use graft_eval::{Evaluator, Record, RunConfig, ShowSet};
use graft_language::span::{FileId, SourceMap};
use graft_runtime::{Execution, Runtime};

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(
            || std::path::PathBuf::from("."),
            std::path::Path::to_path_buf,
        )
}

/// Checks a program given as text, or fails with its first error.
fn check_text(text: &str) -> Result<Checked, String> {
    let mut sources = SourceMap::new();
    let id = sources.add("bench.graft", text);
    let parsed = graft_language::parse(id, text);
    let checked = graft_compiler::check(&sources, &[parsed.file]);
    match checked.diagnostics.iter().find(|d| d.is_error()) {
        Some(error) => Err(format!("{} {}", error.code, error.message)),
        None => Ok(checked),
    }
}

fn check_file(path: &str) -> Result<Checked, String> {
    let text = std::fs::read_to_string(root().join(path)).map_err(|e| e.to_string())?;
    check_text(&text)
}

fn facts(checked: &Checked, text: &str) -> Result<Vec<ir::Fact>, String> {
    let parsed = graft_language::parse(FileId(1000), text);
    let (facts, diagnostics) = graft_compiler::check_facts(&checked.program, &[parsed.file]);
    match diagnostics.iter().find(|d| d.is_error()) {
        Some(error) => Err(format!("{} {}", error.code, error.message)),
        None => Ok(facts),
    }
}

/// `VmHWM` (peak resident memory) of this process in KiB.
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|value| value.parse().ok())
        })
        .unwrap_or(0)
}

struct Measured {
    seconds: f64,
    ticks: u64,
    facts_held: u64,
}

fn reference(
    checked: &Checked,
    facts: &[ir::Fact],
    config: &RunConfig,
) -> Result<Measured, String> {
    let evaluator = Evaluator::new(checked).map_err(|e| e.to_string())?;
    let mut config = config.clone();
    config.record = Record::Relations(Default::default());
    let started = Instant::now();
    let run = evaluator.run(&config, facts).map_err(|e| e.to_string())?;
    Ok(Measured {
        seconds: started.elapsed().as_secs_f64(),
        ticks: run.ticks_run,
        facts_held: run.stats.facts_held,
    })
}

fn timely(
    checked: &Checked,
    facts: &[ir::Fact],
    config: &RunConfig,
    workers: usize,
) -> Result<Measured, String> {
    let runtime = Runtime::new(checked).map_err(|e| e.to_string())?;
    let execution = Execution {
        workers,
        cluster: None,
    };
    let show = ShowSet::Relations(Default::default());
    let started = Instant::now();
    let output = runtime
        .run(config, facts, &show, &execution)
        .map_err(|e| e.to_string())?
        .ok_or("no output")?;
    Ok(Measured {
        seconds: started.elapsed().as_secs_f64(),
        ticks: output.ticks_run,
        facts_held: 0,
    })
}

fn rate(count: u64, seconds: f64) -> String {
    let per_second = count as f64 / seconds.max(1e-9);
    if per_second >= 1e6 {
        format!("{:.2} M/s", per_second / 1e6)
    } else {
        format!("{:.1} k/s", per_second / 1e3)
    }
}

/// The reference once, then timely on 1 and 2 workers (best of `repeats`), as figures.
fn throughput(
    name: &str,
    checked: &Checked,
    facts: &[ir::Fact],
    config: &RunConfig,
    repeats: usize,
) -> Result<(), String> {
    let base = if std::env::var_os("GRAFT_BENCH_SKIP_REFERENCE").is_some() {
        let run = timely(checked, facts, config, 1)?;
        Measured {
            seconds: f64::NAN,
            ticks: run.ticks,
            facts_held: 0,
        }
    } else {
        reference(checked, facts, config)?
    };
    let mut line = format!(
        "{name}: {} facts held over {} ticks; reference {:.3}s ({})",
        base.facts_held,
        base.ticks,
        base.seconds,
        rate(base.facts_held, base.seconds)
    );
    let repeats = std::env::var("GRAFT_BENCH_REPEATS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(repeats);
    let workers: Vec<usize> = match std::env::var("GRAFT_BENCH_WORKERS") {
        Ok(text) => text.split(',').filter_map(|w| w.parse().ok()).collect(),
        Err(_) => vec![1, 2],
    };
    for workers in workers {
        let mut best = Duration::MAX.as_secs_f64();
        for _ in 0..repeats {
            let run = timely(checked, facts, config, workers)?;
            if run.ticks != base.ticks {
                return Err(format!(
                    "{name}: timely ran {} ticks, the reference {}",
                    run.ticks, base.ticks
                ));
            }
            best = best.min(run.seconds);
        }
        let _ = write!(
            line,
            "; timely {workers}w {best:.3}s ({}, {:.1}x)",
            rate(base.facts_held, best),
            base.seconds / best
        );
    }
    println!("{line}");
    Ok(())
}

fn memory() -> Result<(), String> {
    let checked = check_text(
        "table kv(at: node, k: int, v: int);\nscratch size(at: node, n: int);\nsize(N, count<K>) :- kv(N, K, _);\n",
    )?;
    // Facts built directly (parsing 10^6 facts from text would dominate the peak).
    let kv = checked
        .program
        .relation_by_name("kv")
        .ok_or("no relation kv")?;
    let nodes: Vec<ir::Value> = (0..16).map(|n| ir::Value::str(&format!("n{n}"))).collect();
    let facts: Vec<ir::Fact> = (0..1_000_000_i64)
        .map(|key| ir::Fact {
            rel: kv,
            values: vec![
                nodes[(key % 16) as usize].clone(),
                ir::Value::Int(key),
                ir::Value::Int(key % 7),
            ],
            tick: 1,
            span: graft_language::span::Span::default(),
        })
        .collect();
    let before = peak_kib();
    let config = RunConfig::with_eot(3);
    let run = timely(&checked, &facts, &config, 1)?;
    let after_timely = peak_kib();
    let base = reference(&checked, &facts, &config)?;
    let after_reference = peak_kib();
    println!(
        "memory, 10^6 persisted facts, 3 ticks: peak {} MiB before running (program and facts loaded); \
         timely 1w {:.2}s, peak {} MiB (+{} MiB); reference {:.2}s, peak {} MiB",
        before / 1024,
        run.seconds,
        after_timely / 1024,
        after_timely.saturating_sub(before) / 1024,
        base.seconds,
        after_reference / 1024
    );
    Ok(())
}

fn per_tick() -> Result<(), String> {
    let checked = check_text(
        "table c(at: node, x: int);\nc(N, X + 1)@next :- c(N, X);\ndelete c(N, X)@next :- c(N, X);\n",
    )?;
    let facts = facts(&checked, "c(\"a\", 0)@1;\n")?;
    let short = RunConfig::with_eot(10);
    let long = RunConfig::with_eot(10_010);
    let mut best_timely = f64::MAX;
    for _ in 0..3 {
        let a = timely(&checked, &facts, &short, 1)?;
        let b = timely(&checked, &facts, &long, 1)?;
        best_timely = best_timely.min((b.seconds - a.seconds).max(0.0) / 10_000.0);
    }
    let a = reference(&checked, &facts, &short)?;
    let b = reference(&checked, &facts, &long)?;
    let reference_tick = (b.seconds - a.seconds).max(0.0) / 10_000.0;
    println!(
        "per-tick overhead, one fact per tick: timely 1w {:.1} µs/tick; reference {:.1} µs/tick",
        best_timely * 1e6,
        reference_tick * 1e6
    );
    Ok(())
}

fn two_phase_commit(coordinators: usize, transactions: usize) -> Result<(), String> {
    let checked = check_file("examples/2pc/2pc.graft")?;
    let mut text = String::new();
    for coordinator in 0..coordinators {
        for participant in 0..3 {
            let _ = writeln!(
                text,
                "member(\"c{coordinator}\", \"p{coordinator}_{participant}\")@1;"
            );
        }
    }
    for tx in 0..transactions {
        let _ = writeln!(text, "begin(\"c{}\", {tx})@1;", tx % coordinators);
    }
    let facts = facts(&checked, &text)?;
    throughput(
        &format!("2pc, {transactions} transactions, {coordinators} coordinator(s)"),
        &checked,
        &facts,
        &RunConfig::default(),
        2,
    )
}

fn relay(nodes: usize, fanout: usize, messages: usize) -> Result<(), String> {
    let checked = check_file("examples/broadcast-relay/broadcast-relay.graft")?;
    let mut text = String::new();
    for node in 0..nodes {
        for step in 1..=fanout {
            let _ = writeln!(
                text,
                "neighbor(\"n{node}\", \"n{}\")@1;",
                (node + step) % nodes
            );
        }
    }
    for message in 0..messages {
        let _ = writeln!(
            text,
            "bcast(\"n{}\", \"m{message}\")@1;",
            (message * 7) % nodes
        );
    }
    let facts = facts(&checked, &text)?;
    throughput(
        &format!("relay, {messages} messages, {nodes} nodes, fanout {fanout}"),
        &checked,
        &facts,
        &RunConfig::default(),
        2,
    )
}

/// Verification-style runs with provenance: the reference one by one, and timely one by one
/// and in batches.
fn traced() -> Result<(), String> {
    let checked = check_file("examples/paxos/paxos.graft")?;
    let mut text = String::new();
    for file in [
        "examples/paxos/topology.facts",
        "examples/paxos/workload.facts",
    ] {
        text.push_str(&std::fs::read_to_string(root().join(file)).map_err(|e| e.to_string())?);
    }
    let facts = facts(&checked, &text)?;
    let evaluator = Evaluator::new(&checked).map_err(|e| e.to_string())?;
    let base = RunConfig {
        provenance: true,
        ..RunConfig::with_eot(7)
    };
    // Schedules: every omission of a message sent before tick 4 that the failure-free run
    // sends, one per schedule, and the failure-free run; 64 of them.
    let failure_free = evaluator.run(&base, &facts).map_err(|e| e.to_string())?;
    let mut configs = vec![base.clone()];
    for message in failure_free.messages.iter().filter(|m| m.send_tick < 4) {
        let (Some(from), Some(to)) = (message.sender.as_str(), message.dest.as_str()) else {
            continue;
        };
        if from == to {
            continue;
        }
        let mut config = base.clone();
        config
            .drops
            .insert((from.to_owned(), to.to_owned(), message.send_tick));
        if !configs.contains(&config) {
            configs.push(config);
        }
    }
    configs.truncate(64);
    let count = configs.len();
    let started = Instant::now();
    for config in &configs {
        evaluator.run(config, &facts).map_err(|e| e.to_string())?;
    }
    let reference = started.elapsed().as_secs_f64();
    println!(
        "traced runs (examples/paxos, EOT 7, {count} fault schedules): reference {:.0} executions/s",
        count as f64 / reference
    );
    let runtime = Runtime::new(&checked).map_err(|e| e.to_string())?;
    for workers in [1, 2] {
        let execution = Execution {
            workers,
            cluster: None,
        };
        let mut line = format!("  timely on {workers} worker(s):");
        for batch in [1, 8, 16, 64] {
            let started = Instant::now();
            for chunk in configs.chunks(batch) {
                let runs = runtime
                    .run_traced_batch(chunk, &facts, &execution)
                    .map_err(|e| e.to_string())?
                    .ok_or("no output")?;
                if runs.len() != chunk.len() {
                    return Err("a batch returned the wrong number of runs".to_owned());
                }
            }
            let seconds = started.elapsed().as_secs_f64();
            let _ = write!(
                line,
                " batches of {batch}: {:.0}/s ({:.2}x the reference);",
                count as f64 / seconds,
                reference / seconds
            );
        }
        println!("{}", line.trim_end_matches(';'));
    }
    Ok(())
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let selected =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    type Case = Box<dyn Fn() -> Result<(), String>>;
    let cases: Vec<(&str, Case)> = vec![
        ("memory", Box::new(memory)),
        ("per-tick", Box::new(per_tick)),
        ("2pc-one", Box::new(|| two_phase_commit(1, 100_000))),
        ("2pc-eight", Box::new(|| two_phase_commit(8, 100_000))),
        ("relay", Box::new(|| relay(64, 4, 2_000))),
        ("traced", Box::new(traced)),
    ];
    for (name, case) in cases {
        if selected(name)
            && let Err(error) = case()
        {
            println!("{name}: failed: {error}");
        }
    }
}
