//! Throughput of the reference evaluator, printed as one line per figure:
//!
//! - facts derived per second on recursive joins (a transitive closure, both strategies);
//! - facts derived, facts held, rule firings and ticks per second on large workloads of the
//!   real example protocols: two-phase commit (`examples/2pc`) with 10,000 transactions, and
//!   reliable broadcast (`examples/broadcast-relay`, `examples/broadcast-retry`) on 200 nodes,
//!   on a full mesh and on sparser topologies; every run's outcome is checked (all decisions
//!   made, every node logged every message) before its figures are printed;
//! - runs per second on a Molly-sized broadcast with EOT 6 (`examples/broadcast-relay/
//!   relay.ded`, 3 nodes), with the evaluator built once outside the loop, as LDFI repeats it.
//!
//! Each large case runs a few times and prints the minimum and median wall time; its rates
//! are its (deterministic) counters over the median time, with the rate at the minimum time
//! in brackets. Run with `cargo bench -p graft-eval --bench eval`; words after `--` select the
//! cases whose names contain one of them (`cargo bench -p graft-eval --bench eval -- 2pc`).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use graft_compiler::ir::{self, RelId, Value};
use graft_compiler::{Checked, check, check_facts};
use graft_eval::{EvalStrategy, Evaluator, Run, RunConfig, Stats};
use graft_language::diagnostic::Diagnostic;
use graft_language::loader::load_program;
use graft_language::span::{FileId, SourceMap};

// ---------------------------------------------------------------------------------------------
// Loading programs and workloads.

/// A checked program and its evaluator.
struct Compiled {
    checked: Checked,
    evaluator: Evaluator,
}

impl Compiled {
    fn rel(&self, name: &str) -> Result<RelId, String> {
        self.checked
            .program
            .relation_by_name(name)
            .ok_or_else(|| format!("the program has no relation `{name}`"))
    }

    /// Parses and checks generated facts text against the program.
    fn workload(&self, text: &str) -> Result<Vec<ir::Fact>, String> {
        let parsed = graft_language::parse(FileId(1000), text);
        if !parsed.diagnostics.is_empty() {
            return Err(format!(
                "workload syntax errors: {}",
                messages(&parsed.diagnostics)
            ));
        }
        let (facts, diagnostics) = check_facts(&self.checked.program, &[parsed.file]);
        if diagnostics.is_empty() {
            Ok(facts)
        } else {
            Err(format!("workload errors: {}", messages(&diagnostics)))
        }
    }

    fn run(&self, config: &RunConfig, facts: &[ir::Fact]) -> Result<Run, String> {
        self.evaluator
            .run(config, facts)
            .map_err(|error| error.to_string())
    }
}

fn messages(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|diagnostic| format!("{} {}", diagnostic.code, diagnostic.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Checks a loaded program and builds its evaluator; errors (not warnings) refuse it.
fn compile_files(
    sources: &SourceMap,
    files: &[graft_language::ast::SourceFile],
) -> Result<Compiled, String> {
    let checked = check(sources, files);
    let errors: Vec<Diagnostic> = checked
        .diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.is_error())
        .cloned()
        .collect();
    if !errors.is_empty() {
        return Err(format!("check errors: {}", messages(&errors)));
    }
    let evaluator = Evaluator::new(&checked).map_err(|error| error.to_string())?;
    Ok(Compiled { checked, evaluator })
}

/// Compiles an inline program.
fn compile(source: &str) -> Result<Compiled, String> {
    let mut sources = SourceMap::new();
    let id = sources.add("bench.graft", source);
    let parsed = graft_language::parse(id, source);
    if !parsed.diagnostics.is_empty() {
        return Err(format!("syntax errors: {}", messages(&parsed.diagnostics)));
    }
    compile_files(&sources, &[parsed.file])
}

/// The path of a file under the workspace's `examples/` directory.
fn example_path(relative: &str) -> String {
    let mut path = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    path.pop();
    path.push("examples");
    path.push(relative);
    path.to_string_lossy().into_owned()
}

fn read_example(relative: &str) -> Result<String, String> {
    let path = example_path(relative);
    std::fs::read_to_string(&path).map_err(|error| format!("cannot read `{path}`: {error}"))
}

/// Loads (with includes), checks and compiles an example program from disk.
fn load_example(relative: &str) -> Result<Compiled, String> {
    let mut read = |path: &str| std::fs::read_to_string(path).map_err(|error| error.to_string());
    let loaded = load_program(&[example_path(relative)], &mut read);
    if !loaded.diagnostics.is_empty() {
        return Err(format!(
            "cannot load `{relative}`: {}",
            messages(&loaded.diagnostics)
        ));
    }
    compile_files(&loaded.sources, &loaded.files).map_err(|error| format!("`{relative}`: {error}"))
}

// ---------------------------------------------------------------------------------------------
// Measuring.

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

/// The minimum and median of some durations (`samples` must not be empty).
fn min_median(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let min = samples.first().copied().unwrap_or_default();
    let median = samples.get(samples.len() / 2).copied().unwrap_or_default();
    (min, median)
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Minimum and maximum number of timed runs of a large case, and the time after which it
/// stops once it has the minimum.
const MIN_ITERATIONS: usize = 3;
const MAX_ITERATIONS: usize = 7;
const CASE_BUDGET: Duration = Duration::from_secs(4);

/// Runs `config` on `facts` a few times, checks the first run with `verify`, and prints the
/// wall times and rates of the run's counters.
fn measure(
    label: &str,
    compiled: &Compiled,
    config: &RunConfig,
    facts: &[ir::Fact],
    verify: impl Fn(&Run) -> Result<String, String>,
) -> Result<(), String> {
    let mut walls = Vec::new();
    let mut reference: Option<(Stats, u64)> = None;
    let mut summary = String::new();
    let started = Instant::now();
    while walls.len() < MIN_ITERATIONS
        || (walls.len() < MAX_ITERATIONS && started.elapsed() < CASE_BUDGET)
    {
        let start = Instant::now();
        let run = compiled.run(config, facts)?;
        let wall = start.elapsed();
        match reference {
            None => {
                if run.capped {
                    return Err(format!("{label}: the run did not quiesce"));
                }
                summary = verify(&run).map_err(|error| format!("{label}: {error}"))?;
                reference = Some((run.stats, run.ticks_run));
            }
            Some((stats, ticks)) => {
                if stats != run.stats || ticks != run.ticks_run {
                    return Err(format!(
                        "{label}: runs differ ({stats:?} vs {:?})",
                        run.stats
                    ));
                }
            }
        }
        // Dropping a large run takes time too; it is part of what a caller pays.
        drop(black_box(run));
        walls.push(start.elapsed().max(wall));
    }
    let Some((stats, ticks)) = reference else {
        return Err(format!("{label}: no run"));
    };
    let iterations = walls.len();
    let (min, median) = min_median(&mut walls);
    let rate = |count: u64| {
        format!(
            "{:.0} ({:.0})",
            per_second(count, median),
            per_second(count, min)
        )
    };
    println!("{label}");
    println!("    {summary}");
    println!(
        "    {ticks} ticks, {} facts derived, {} facts held, {} rule firings per run",
        stats.facts_derived, stats.facts_held, stats.rule_firings
    );
    println!(
        "    wall: min {:.1} ms, median {:.1} ms over {iterations} runs",
        millis(min),
        millis(median)
    );
    println!(
        "    per second, median (best): {} facts derived, {} facts held, {} firings, {:.1} ({:.1}) ticks",
        rate(stats.facts_derived),
        rate(stats.facts_held),
        rate(stats.rule_firings),
        per_second(ticks, median),
        per_second(ticks, min),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Recursive joins and a synthetic mesh (inline programs).

const CLOSURE: &str = r#"
    table edge(at: node, src: int, dst: int);
    scratch path(at: node, src: int, dst: int);
    path(N, X, Y) :- edge(N, X, Y);
    path(N, X, Z) :- path(N, X, Y), edge(N, Y, Z);
"#;

/// Transitive closure of a chain of `length` edges at each of `nodes` nodes.
fn closure(strategy: EvalStrategy, nodes: usize, length: usize) -> Result<(), String> {
    let compiled = compile(CLOSURE)?;
    let mut text = String::new();
    for node in 0..nodes {
        for step in 0..length {
            let _ = writeln!(text, "edge(\"n{node}\", {step}, {})@1;", step + 1);
        }
    }
    let facts = compiled.workload(&text)?;
    let config = RunConfig {
        strategy,
        ..RunConfig::with_eot(3)
    };
    let mut derived = 0;
    let mut firings = 0;
    let (runs, elapsed) = repeat(Duration::from_secs(2), || {
        if let Ok(run) = compiled.evaluator.run(&config, &facts) {
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
    let compiled = compile(RETRY)?;
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
    let facts = compiled.workload(&text)?;
    let config = RunConfig::with_eot(eot);
    let mut ticks = 0;
    let mut held = 0;
    let (runs, elapsed) = repeat(Duration::from_secs(2), || {
        if let Ok(run) = compiled.evaluator.run(&config, &facts) {
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

// ---------------------------------------------------------------------------------------------
// Two-phase commit (examples/2pc/2pc.graft) with many transactions.

/// How a 2PC workload's transactions start.
#[derive(Clone, Copy)]
enum Start {
    /// Every transaction begins at tick 1.
    AllAtOnce,
    /// Transactions begin round-robin at ticks 1..=n.
    SpreadOver(u64),
}

/// Every `REFUSE_EVERY`-th transaction is refused by participant p2 (and must abort).
const REFUSE_EVERY: usize = 10;

/// 2PC with the example's topology (coordinator "C", participants p1..p3) and `transactions`
/// transactions, run to quiescence; checks that the coordinator decided every transaction
/// (commit exactly when no one refused) and that every participant learned every outcome.
fn two_phase_commit(transactions: usize, start: Start) -> Result<(), String> {
    let setup = Instant::now();
    let compiled = load_example("2pc/2pc.graft")?;
    let compile_time = setup.elapsed();
    let mut text = read_example("2pc/topology.facts")?;
    let participants = text.matches("member(").count();
    for tx in 1..=transactions {
        let tick = match start {
            Start::AllAtOnce => 1,
            Start::SpreadOver(ticks) => 1 + (tx as u64 - 1) % ticks.max(1),
        };
        let _ = writeln!(text, "begin(\"C\", {tx})@{tick};");
        if tx % REFUSE_EVERY == 0 {
            let _ = writeln!(text, "refuse(\"p2\", {tx})@1;");
        }
    }
    let setup = Instant::now();
    let facts = compiled.workload(&text)?;
    let workload_time = setup.elapsed();
    let decision = compiled.rel("decision")?;
    let outcome = compiled.rel("outcome")?;
    let verify = |run: &Run| -> Result<String, String> {
        let last = run.ticks_run;
        let mut commits = 0;
        let mut decided = BTreeSet::new();
        for tuple in run.facts(last, decision) {
            let (Some(tx), Some(commit)) = (
                tuple.get(1).and_then(Value::as_int),
                tuple.get(2).and_then(Value::as_bool),
            ) else {
                return Err(format!("malformed decision {tuple:?}"));
            };
            let refused = usize::try_from(tx).is_ok_and(|tx| tx % REFUSE_EVERY == 0);
            if commit == refused {
                return Err(format!("transaction {tx} decided commit = {commit}"));
            }
            commits += u64::from(commit);
            decided.insert(tx);
        }
        let expected: BTreeSet<i64> = (1..=transactions as i64).collect();
        if decided != expected {
            return Err(format!(
                "{} of {transactions} transactions decided",
                decided.len()
            ));
        }
        let outcomes = run.facts(last, outcome).len();
        if outcomes != transactions * participants {
            return Err(format!(
                "{outcomes} outcomes learned, expected {}",
                transactions * participants
            ));
        }
        Ok(format!(
            "verified: {} decisions ({commits} commit), {outcomes} outcomes at tick {last}; setup: compile {:.1} ms, workload check {:.1} ms",
            decided.len(),
            millis(compile_time),
            millis(workload_time),
        ))
    };
    let when = match start {
        Start::AllAtOnce => "all begin at tick 1".to_owned(),
        Start::SpreadOver(ticks) => format!("begins spread over ticks 1..={ticks}"),
    };
    measure(
        &format!(
            "2pc (examples/2pc, 1 coordinator x {participants} participants, {transactions} transactions, {when}, 1 in {REFUSE_EVERY} refused, to quiescence)"
        ),
        &compiled,
        &RunConfig::default(),
        &facts,
        verify,
    )
}

// ---------------------------------------------------------------------------------------------
// Broadcast (examples/broadcast-relay, examples/broadcast-retry) on many nodes.

/// A deterministic pseudo-random sequence (splitmix64), for random topologies.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

/// The (symmetric) neighbour pairs of a topology on nodes 0..n.
#[derive(Clone, Copy)]
enum Topology {
    /// Every node is every other node's neighbour.
    FullMesh,
    /// A ring: each node's neighbours are the nodes at distance 1.
    Ring,
    /// A ring plus `extra` random chords per node (so the graph is connected).
    RandomDegree { extra: usize, seed: u64 },
}

impl Topology {
    fn edges(self, nodes: usize) -> BTreeSet<(usize, usize)> {
        let mut edges = BTreeSet::new();
        let mut link = |a: usize, b: usize| {
            if a != b {
                edges.insert((a, b));
                edges.insert((b, a));
            }
        };
        match self {
            Topology::FullMesh => {
                for a in 0..nodes {
                    for b in 0..nodes {
                        link(a, b);
                    }
                }
            }
            Topology::Ring => {
                for a in 0..nodes {
                    link(a, (a + 1) % nodes);
                }
            }
            Topology::RandomDegree { extra, seed } => {
                let mut random = Random(seed);
                for a in 0..nodes {
                    link(a, (a + 1) % nodes);
                    for _ in 0..extra {
                        link(a, random.below(nodes));
                    }
                }
            }
        }
        edges
    }

    fn describe(self, edges: usize) -> String {
        match self {
            Topology::FullMesh => format!("full mesh, {edges} neighbor facts"),
            Topology::Ring => format!("ring, {edges} neighbor facts"),
            Topology::RandomDegree { extra, .. } => {
                format!("ring + {extra} random chords per node, {edges} neighbor facts")
            }
        }
    }
}

/// Broadcasts `messages` messages (from evenly spaced origins, at tick 1) over `topology` on
/// `nodes` nodes with the example protocol `program`, run to quiescence; checks that every
/// node logged every message.
fn broadcast(
    program: &str,
    nodes: usize,
    topology: Topology,
    messages: usize,
) -> Result<(), String> {
    let compiled = load_example(program)?;
    let edges = topology.edges(nodes);
    let mut text = String::new();
    for (a, b) in &edges {
        let _ = writeln!(text, "neighbor(\"n{a}\", \"n{b}\")@1;");
    }
    let origins: Vec<usize> = (0..messages)
        .map(|message| message * nodes / messages.max(1))
        .collect();
    for (message, origin) in origins.iter().enumerate() {
        let _ = writeln!(text, "bcast(\"n{origin}\", \"m{message}\")@1;");
    }
    let facts = compiled.workload(&text)?;
    let log = compiled.rel("log")?;
    let verify = |run: &Run| -> Result<String, String> {
        let last = run.ticks_run;
        let logged: BTreeSet<(String, String, String)> = run
            .facts(last, log)
            .iter()
            .filter_map(|tuple| {
                let text = |column: usize| Some(tuple.get(column)?.as_str()?.to_owned());
                Some((text(0)?, text(1)?, text(2)?))
            })
            .collect();
        for node in 0..nodes {
            for (message, origin) in origins.iter().enumerate() {
                let fact = (
                    format!("n{node}"),
                    format!("n{origin}"),
                    format!("m{message}"),
                );
                if !logged.contains(&fact) {
                    return Err(format!("n{node} did not log m{message} from n{origin}"));
                }
            }
        }
        Ok(format!(
            "verified: all {nodes} nodes logged all {messages} message(s) by tick {last}; {} messages sent",
            run.messages.len()
        ))
    };
    measure(
        &format!(
            "{program} ({nodes} nodes, {}, {messages} message(s), to quiescence)",
            topology.describe(edges.len())
        ),
        &compiled,
        &RunConfig::default(),
        &facts,
        verify,
    )
}

// ---------------------------------------------------------------------------------------------
// Many short runs (LDFI).

/// Many short runs of the Molly-sized broadcast `examples/broadcast-relay/relay.ded` (3 nodes,
/// EOT 6) under 8 fault schedules, as LDFI does: the evaluator is built once, outside the
/// timed loop, so a run parses nothing and rebuilds no index plan.
fn small_runs(provenance: bool) -> Result<(), String> {
    let setup = Instant::now();
    let compiled = load_example("broadcast-relay/relay.ded")?;
    let setup = setup.elapsed();
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
    // The fault-free run: every node logs the message.
    let log = compiled.rel("log")?;
    let first = compiled.run(&schedules[0], &[])?;
    let logged = first.facts(6, log).len();
    if logged != 3 {
        return Err(format!(
            "relay.ded: {logged} log facts at EOT 6, expected 3"
        ));
    }
    let mut index = 0;
    let mut batches = Vec::new();
    let mut total = 0;
    for _ in 0..5 {
        let (runs, elapsed) = repeat(Duration::from_millis(400), || {
            let config = &schedules[index % schedules.len()];
            index += 1;
            black_box(compiled.evaluator.run(config, &[]).ok());
        });
        total += runs;
        batches.push(elapsed / u32::try_from(runs).unwrap_or(u32::MAX).max(1));
    }
    let (min, median) = min_median(&mut batches);
    println!(
        "relay.ded broadcast (3 nodes, EOT 6, 8 fault schedules, provenance {provenance}): {:.0} runs/s median, {:.0} best ({:.1} µs / {:.1} µs per run; {total} runs in 5 batches); one-off load+check+Evaluator::new {:.0} µs",
        1.0 / median.as_secs_f64().max(1e-9),
        1.0 / min.as_secs_f64().max(1e-9),
        median.as_secs_f64() * 1e6,
        min.as_secs_f64() * 1e6,
        setup.as_secs_f64() * 1e6,
    );
    Ok(())
}

/// One benchmark case: prints its figures, or says why it failed.
type Case = fn() -> Result<(), String>;

fn main() {
    let cases: &[(&str, Case)] = &[
        ("closure semi-naive", || {
            closure(EvalStrategy::SemiNaive, 4, 60)
        }),
        ("closure naive", || closure(EvalStrategy::Naive, 2, 15)),
        ("mesh", || mesh(30, 40, 12)),
        ("2pc at once", || two_phase_commit(10_000, Start::AllAtOnce)),
        ("2pc spread", || {
            two_phase_commit(10_000, Start::SpreadOver(10))
        }),
        ("relay mesh", || {
            broadcast(
                "broadcast-relay/broadcast-relay.graft",
                200,
                Topology::FullMesh,
                1,
            )
        }),
        ("relay random", || {
            broadcast(
                "broadcast-relay/broadcast-relay.graft",
                200,
                Topology::RandomDegree { extra: 3, seed: 7 },
                4,
            )
        }),
        ("relay ring", || {
            broadcast(
                "broadcast-relay/broadcast-relay.graft",
                200,
                Topology::Ring,
                1,
            )
        }),
        ("retry mesh", || {
            broadcast(
                "broadcast-retry/broadcast-retry.graft",
                200,
                Topology::FullMesh,
                1,
            )
        }),
        ("small runs", || small_runs(false)),
        ("small runs with provenance", || small_runs(true)),
    ];
    // `cargo bench -p graft-eval --bench eval -- 2pc relay` runs only the cases whose names
    // contain one of the words given (cargo itself passes `--bench`).
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|argument| !argument.starts_with('-'))
        .collect();
    let mut failed = false;
    for (name, case) in cases {
        if !filters.is_empty() && !filters.iter().any(|filter| name.contains(filter.as_str())) {
            continue;
        }
        let start = Instant::now();
        if let Err(error) = case() {
            eprintln!("benchmark `{name}` failed: {error}");
            failed = true;
        }
        eprintln!("[{name}: {:.1} s]", start.elapsed().as_secs_f64());
    }
    if failed {
        std::process::exit(1);
    }
}
