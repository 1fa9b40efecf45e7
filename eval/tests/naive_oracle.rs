//! Property test: on random stratified programs, random facts and random fault schedules,
//! the semi-naive evaluator gives the same facts, messages and provenance as the naive one.
//!
//! Programs are generated as text (so they pass through the real parser and checker) from a
//! seed: relations `r0`..`r5` with an int column or two after the location, every kind of rule,
//! negation and aggregation only over lower-numbered relations (so the program stratifies),
//! comparisons, arithmetic, atoms pinned to a tick, the built-in `crash`, and a `peer` table
//! that `@async` rules send along.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use graft_compiler::ir;
use graft_eval::{
    CrashModel, Derivation, EvalStrategy, FactRef, Run, RunConfig, ShowSet, render_fact,
};
use graft_language::span::SourceMap;
use proptest::prelude::*;

/// splitmix64: a tiny deterministic generator driven by proptest's seed.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    fn percent(&mut self, chance: u64) -> bool {
        self.below(100) < chance
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const RELATIONS: usize = 6;
const VARS: [&str; 3] = ["X", "Y", "Z"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Deductive,
    Aggregate,
    Next,
    Async,
    Delete,
}

struct Generated {
    program: String,
    workload: String,
    config: RunConfig,
}

fn generate(seed: u64) -> Generated {
    let mut rng = Gen(seed);
    let arity: Vec<usize> = (0..RELATIONS).map(|_| 2 + rng.below(2) as usize).collect();
    let table: Vec<bool> = (0..RELATIONS).map(|_| rng.percent(30)).collect();
    let mut program = String::new();
    program.push_str("table peer(at: node, p: node);\n");
    for rel in 0..RELATIONS {
        let kind = if table[rel] { "table" } else { "scratch" };
        let columns: String = (1..arity[rel])
            .map(|column| format!(", c{column}: int"))
            .collect();
        let _ = writeln!(program, "{kind} r{rel}(at: node{columns});");
    }
    for (head, is_table) in table.iter().enumerate() {
        let rules = if head == 0 {
            rng.below(2)
        } else {
            1 + rng.below(2)
        };
        for _ in 0..rules {
            let roll = rng.below(100);
            let kind = match roll {
                0..50 => Kind::Deductive,
                50..60 if head > 0 => Kind::Aggregate,
                60..75 => Kind::Next,
                75..90 => Kind::Async,
                90..100 if *is_table => Kind::Delete,
                _ => Kind::Deductive,
            };
            program.push_str(&rule(&mut rng, head, kind, &arity));
            program.push('\n');
        }
    }
    let nodes: Vec<String> = (1..=2 + rng.below(2))
        .map(|node| format!("n{node}"))
        .collect();
    let mut workload = String::new();
    for from in &nodes {
        for to in &nodes {
            if rng.percent(50) {
                let _ = writeln!(workload, "peer(\"{from}\", \"{to}\")@1;");
            }
        }
    }
    for _ in 0..10 + rng.below(16) {
        let rel = if rng.percent(60) {
            rng.below(2) as usize
        } else {
            rng.below(RELATIONS as u64) as usize
        };
        let node = rng.pick(&nodes);
        let values: String = (1..arity[rel])
            .map(|_| format!(", {}", rng.below(3)))
            .collect();
        let _ = writeln!(workload, "r{rel}(\"{node}\"{values})@{};", 1 + rng.below(3));
    }
    let mut config = RunConfig::with_eot(4 + rng.below(3));
    for _ in 0..rng.below(4) {
        let from = rng.pick(&nodes).clone();
        let to = rng.pick(&nodes).clone();
        config.drops.insert((from, to, 1 + rng.below(4)));
    }
    if rng.percent(35) {
        config
            .crashes
            .insert(rng.pick(&nodes).clone(), 1 + rng.below(5));
    }
    if rng.percent(50) {
        config.crash_model = CrashModel::Strict;
    }
    Generated {
        program,
        workload,
        config,
    }
}

/// One rule deriving `r{head}`.
fn rule(rng: &mut Gen, head: usize, kind: Kind, arity: &[usize]) -> String {
    // Relations the body may read positively, and under negation or aggregation.
    let deductive = matches!(kind, Kind::Deductive | Kind::Aggregate);
    let positive_max = match kind {
        Kind::Deductive => head,
        Kind::Aggregate => head - 1,
        Kind::Next | Kind::Async | Kind::Delete => RELATIONS - 1,
    };
    let negated_max = if deductive {
        head.checked_sub(1)
    } else {
        Some(RELATIONS - 1)
    };
    let mut bound: Vec<String> = Vec::new();
    let mut body: Vec<String> = Vec::new();
    let mut recursive = false;
    for index in 0..1 + rng.below(3) {
        let rel = rng.below(positive_max as u64 + 1) as usize;
        let mut args = vec!["N".to_owned()];
        let mut newly = Vec::new();
        for _ in 1..arity[rel] {
            let roll = rng.below(100);
            let arg = if roll < 55 || (index == 0 && roll < 80) {
                let var = (*rng.pick(&VARS)).to_owned();
                if !bound.contains(&var) && !newly.contains(&var) {
                    newly.push(var.clone());
                }
                var
            } else if roll < 75 {
                rng.below(3).to_string()
            } else if roll < 85 {
                "_".to_owned()
            } else if let Some(var) = bound.first() {
                format!("{var} + 1")
            } else {
                rng.below(3).to_string()
            };
            args.push(arg);
        }
        bound.extend(newly);
        let pinned = if rng.percent(10) {
            format!("@{}", 1 + rng.below(3))
        } else {
            String::new()
        };
        if deductive && rel == head {
            recursive = true;
        }
        body.push(format!("r{rel}({}){pinned}", args.join(", ")));
    }
    if rng.percent(8) {
        body.push("crash(N, _, T)".to_owned());
        bound.push("T".to_owned());
    }
    let mut location = "N".to_owned();
    if kind == Kind::Async {
        match rng.below(3) {
            0 => {}
            1 => {
                body.push("peer(N, P)".to_owned());
                location = "P".to_owned();
            }
            _ => location = format!("\"n{}\"", 1 + rng.below(3)),
        }
    }
    if let Some(max) = negated_max
        && rng.percent(30)
    {
        let rel = rng.below(max as u64 + 1) as usize;
        let mut args = vec!["N".to_owned()];
        for _ in 1..arity[rel] {
            args.push(match rng.below(3) {
                0 if !bound.is_empty() => rng.pick(&bound).clone(),
                1 => rng.below(3).to_string(),
                _ => "_".to_owned(),
            });
        }
        let pinned = if rng.percent(10) {
            format!("@{}", 1 + rng.below(3))
        } else {
            String::new()
        };
        body.push(format!("notin r{rel}({}){pinned}", args.join(", ")));
    }
    if !bound.is_empty() && rng.percent(35) {
        let lhs = rng.pick(&bound).clone();
        let op = *rng.pick(&["<", ">", "<=", ">=", "==", "!="]);
        let rhs = if rng.percent(50) {
            rng.pick(&bound).clone()
        } else {
            rng.below(3).to_string()
        };
        let lhs = if rng.percent(30) {
            format!("{lhs} + 1")
        } else {
            lhs
        };
        body.push(format!("{lhs} {op} {rhs}"));
    }
    let value = |rng: &mut Gen| -> String {
        let roll = rng.below(100);
        if bound.is_empty() || roll < 20 {
            return rng.below(3).to_string();
        }
        let var = rng.pick(&bound).clone();
        // Arithmetic in a recursive deductive head could derive without end.
        if recursive || roll < 70 {
            return var;
        }
        let other = rng.pick(&bound).clone();
        match rng.below(4) {
            0 => format!("{var} + 1"),
            1 => format!("{var} - {other}"),
            2 => format!("{var} * 2"),
            _ => format!("{var} / {other}"),
        }
    };
    let mut head_args = vec![location];
    let columns = arity[head] - 1;
    if kind == Kind::Aggregate && !bound.is_empty() {
        for _ in 0..columns - 1 {
            head_args.push(value(rng));
        }
        let func = *rng.pick(&["count", "sum", "min", "max"]);
        head_args.push(format!("{func}<{}>", rng.pick(&bound)));
    } else {
        for _ in 0..columns {
            head_args.push(value(rng));
        }
    }
    let (prefix, suffix) = match kind {
        Kind::Deductive | Kind::Aggregate => ("", ""),
        Kind::Next => ("", "@next"),
        Kind::Async => ("", "@async"),
        Kind::Delete => ("delete ", "@next"),
    };
    format!(
        "{prefix}r{head}({}){suffix} :- {};",
        head_args.join(", "),
        body.join(", ")
    )
}

/// Every fact of a run, with its derivations written with values instead of ids (ids follow
/// insertion order, which differs between the strategies).
fn describe(program: &ir::Program, run: &Run) -> Vec<String> {
    let name = |fact: &FactRef| -> String {
        let values = run
            .fact(*fact)
            .map(|tuple| tuple.to_vec())
            .unwrap_or_default();
        render_fact(&program.relation(fact.rel).name, &values, fact.tick)
    };
    let firing = |firing: &graft_eval::RuleFiring| -> String {
        let body: Vec<String> = firing.body.iter().map(name).collect();
        let mut body_sorted = body.clone();
        body_sorted.sort();
        format!(
            "rule {} body [{}] absent {:?}",
            firing.rule.0,
            body.join(" "),
            firing.absent
        )
    };
    let mut lines = BTreeMap::new();
    for tick in &run.ticks {
        for (rel, tuples) in tick.relations.iter().enumerate() {
            for (id, _) in tuples.iter().enumerate() {
                let fact = FactRef {
                    tick: tick.tick,
                    rel: ir::RelId::from_index(rel),
                    tuple: id as u32,
                };
                let mut derivations: Vec<String> = run
                    .derivations(fact)
                    .iter()
                    .map(|derivation| match derivation {
                        Derivation::Crash => "crash".to_owned(),
                        Derivation::Given { .. } => "given".to_owned(),
                        Derivation::Persisted { from } => format!("persisted {}", name(from)),
                        Derivation::Rule(found) => firing(found),
                        Derivation::Aggregate(found) => {
                            let mut body: Vec<String> = found.body.iter().map(name).collect();
                            body.sort();
                            format!(
                                "aggregate {} [{}] {:?}",
                                found.rule.0,
                                body.join(" "),
                                found.absent
                            )
                        }
                        Derivation::Next(found) => format!("next {}", firing(found)),
                        Derivation::Message {
                            sender,
                            send_tick,
                            firing: found,
                        } => format!("message from {sender} at {send_tick}: {}", firing(found)),
                    })
                    .collect();
                derivations.sort();
                lines.insert(name(&fact), derivations.join(" | "));
            }
        }
    }
    lines
        .into_iter()
        .map(|(fact, why)| format!("{fact} <- {why}"))
        .collect()
}

/// The first line where two renderings differ.
fn first_difference(left: &[String], right: &[String]) -> String {
    for (index, (a, b)) in left.iter().zip(right).enumerate() {
        if a != b {
            return format!("line {index}:\n  semi-naive: {a}\n  naive:      {b}");
        }
    }
    format!(
        "one is a prefix of the other: semi-naive has {} lines, naive {}; next: {:?} / {:?}",
        left.len(),
        right.len(),
        left.get(right.len()),
        right.get(left.len())
    )
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        max_global_rejects: 2048,
        ..ProptestConfig::default()
    })]

    #[test]
    fn semi_naive_equals_naive(seed in any::<u64>()) {
        let generated = generate(seed);
        let mut sources = SourceMap::new();
        let id = sources.add("random.graft", generated.program.as_str());
        let parsed = graft_language::parse(id, &generated.program);
        prop_assert!(parsed.diagnostics.is_empty(), "syntax errors in:\n{}\n{:#?}", generated.program, parsed.diagnostics);
        let checked = graft_compiler::check(&sources, &[parsed.file]);
        prop_assume!(!checked.has_errors());
        let workload = graft_language::parse(graft_language::span::FileId(1), &generated.workload);
        let (facts, diagnostics) = graft_compiler::check_facts(&checked.program, &[workload.file]);
        prop_assert!(diagnostics.is_empty(), "workload errors: {diagnostics:#?}");
        let evaluator = match graft_eval::Evaluator::new(&checked) {
            Ok(evaluator) => evaluator,
            Err(error) => return Err(TestCaseError::fail(format!("refused: {error}\n{}", generated.program))),
        };
        let mut config = generated.config.clone();
        config.provenance = true;
        let semi = evaluator.run(&config, &facts);
        config.strategy = EvalStrategy::Naive;
        let naive = evaluator.run(&config, &facts);
        config.strategy = EvalStrategy::SemiNaive;
        config.provenance = false;
        let plain = evaluator.run(&config, &facts);
        let (Ok(semi), Ok(naive), Ok(plain)) = (semi, naive, plain) else {
            return Err(TestCaseError::fail("a run failed"));
        };
        let program = &checked.program;
        let context = format!(
            "program:\n{}\nworkload:\n{}\nconfig: {:?}",
            generated.program, generated.workload, generated.config
        );
        let semi_text = lines(&graft_eval::render_text(program, &semi, &ShowSet::All));
        let naive_text = lines(&graft_eval::render_text(program, &naive, &ShowSet::All));
        prop_assert!(semi_text == naive_text, "facts differ: {}\n{context}", first_difference(&semi_text, &naive_text));
        let plain_text = lines(&graft_eval::render_text(program, &plain, &ShowSet::All));
        prop_assert!(semi_text == plain_text, "provenance changed the facts: {}\n{context}", first_difference(&semi_text, &plain_text));
        prop_assert!(semi.messages == naive.messages, "messages differ\n{context}");
        let semi_why = describe(program, &semi);
        let naive_why = describe(program, &naive);
        prop_assert!(semi_why == naive_why, "provenance differs: {}\n{context}", first_difference(&semi_why, &naive_why));
    }
}

#[test]
fn most_generated_programs_check() {
    let mut clean = 0;
    let total = 200;
    for seed in 0..total {
        let generated = generate(seed);
        let mut sources = SourceMap::new();
        let id = sources.add("random.graft", generated.program.as_str());
        let parsed = graft_language::parse(id, &generated.program);
        let checked = graft_compiler::check(&sources, &[parsed.file]);
        if !checked.has_errors() {
            clean += 1;
        } else if seed < 3 {
            let codes: Vec<_> = checked
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .map(|d| (d.code, d.message.clone()))
                .collect();
            eprintln!("rejected:\n{}\n{codes:#?}", generated.program);
        }
    }
    assert!(
        clean * 10 >= total * 8,
        "only {clean} of {total} generated programs check"
    );
}
