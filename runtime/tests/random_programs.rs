//! Property test: on random stratified programs, random facts and random fault schedules, the
//! timely runtime prints exactly what the reference evaluator prints, and runs as many ticks.
//!
//! Programs are written as text (so they go through the real parser and checker) from a seed:
//! relations `q0`..`q5` of one or two int columns after the location, each derived by rules of
//! every kind. A deductive rule reads relations up to its own head (recursion included) and
//! negates or aggregates only lower ones, so the program stratifies; bodies mix constants,
//! wildcards, repeated variables, arithmetic, comparisons, pinned atoms and `crash`; `@async`
//! rules send along a `link` table or to a fixed node. Runs end at an end of time or by
//! quiescence under a small tick cap, with omissions and crashes in either crash model, on one
//! or two workers.

mod common;

use std::fmt::Write as _;

use graft_eval::{CrashModel, RunConfig, ShowSet};
use proptest::prelude::*;

/// A small deterministic generator (xorshift64*), seeded by proptest.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(bound.max(1)).unwrap_or(1)).unwrap_or(0)
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn choose<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const RELATIONS: usize = 6;

#[derive(Clone, Copy, PartialEq, Eq)]
enum RuleKind {
    Deductive,
    Aggregate,
    Next,
    Async,
    Delete,
}

struct Random {
    program: String,
    workload: String,
    config: RunConfig,
    workers: usize,
}

fn random(seed: u64) -> Random {
    let mut rng = Rng::new(seed);
    let columns: Vec<usize> = (0..RELATIONS).map(|_| 1 + rng.below(2)).collect();
    let tables: Vec<bool> = (0..RELATIONS).map(|_| rng.chance(35)).collect();
    let mut program = String::from("table link(at: node, to: node);\n");
    for rel in 0..RELATIONS {
        let declared: String = (0..columns[rel]).map(|c| format!(", v{c}: int")).collect();
        let persistence = if tables[rel] { "table" } else { "scratch" };
        let _ = writeln!(program, "{persistence} q{rel}(at: node{declared});");
    }
    for (head, is_table) in tables.iter().enumerate() {
        for _ in 0..rng.below(3) + usize::from(head > 0) {
            let kind = match rng.below(20) {
                0..=8 => RuleKind::Deductive,
                9..=10 if head > 0 => RuleKind::Aggregate,
                11..=13 => RuleKind::Next,
                14..=17 => RuleKind::Async,
                18..=19 if *is_table => RuleKind::Delete,
                _ => RuleKind::Deductive,
            };
            program.push_str(&random_rule(&mut rng, head, kind, &columns));
            program.push('\n');
        }
    }
    let nodes: Vec<String> = (0..2 + rng.below(3)).map(|n| format!("n{n}")).collect();
    let mut workload = String::new();
    for from in &nodes {
        for to in &nodes {
            if from != to && rng.chance(60) {
                let _ = writeln!(workload, "link(\"{from}\", \"{to}\")@1;");
            }
        }
    }
    for _ in 0..8 + rng.below(16) {
        let rel = if rng.chance(50) {
            0
        } else {
            rng.below(RELATIONS)
        };
        let node = &nodes[rng.below(nodes.len())];
        let values: String = (0..columns[rel])
            .map(|_| format!(", {}", rng.below(4)))
            .collect();
        let _ = writeln!(workload, "q{rel}(\"{node}\"{values})@{};", 1 + rng.below(4));
    }
    let mut config = RunConfig::default();
    if rng.chance(50) {
        config.eot = Some(3 + u64::try_from(rng.below(5)).unwrap_or(0));
    } else {
        config.max_ticks = 4 + u64::try_from(rng.below(10)).unwrap_or(0);
    }
    for _ in 0..rng.below(4) {
        let from = nodes[rng.below(nodes.len())].clone();
        let to = nodes[rng.below(nodes.len())].clone();
        config
            .drops
            .insert((from, to, 1 + u64::try_from(rng.below(4)).unwrap_or(0)));
    }
    if rng.chance(40) {
        config.crashes.insert(
            nodes[rng.below(nodes.len())].clone(),
            1 + u64::try_from(rng.below(5)).unwrap_or(0),
        );
    }
    if rng.chance(50) {
        config.crash_model = CrashModel::Strict;
    }
    // Sometimes a fixed node set (`graft verify --nodes`): facts at other values are not nodes.
    if rng.chance(25) {
        config.exact_nodes = true;
        for node in &nodes {
            if rng.chance(50) {
                config.extra_nodes.insert(node.clone());
            }
        }
    }
    Random {
        program,
        workload,
        config,
        workers: 1 + rng.below(2),
    }
}

fn random_rule(rng: &mut Rng, head: usize, kind: RuleKind, columns: &[usize]) -> String {
    let same_tick = matches!(kind, RuleKind::Deductive | RuleKind::Aggregate);
    // Positive atoms: up to the head itself for deductive rules (recursion), strictly lower
    // for aggregates, anything for temporal rules. Negation: strictly lower when same-tick.
    let positive_limit = match kind {
        RuleKind::Deductive => head + 1,
        RuleKind::Aggregate => head,
        RuleKind::Next | RuleKind::Async | RuleKind::Delete => RELATIONS,
    };
    let negated_limit = if same_tick { head } else { RELATIONS };
    let mut body = Vec::new();
    let mut bound: Vec<&str> = Vec::new();
    let mut recursive = false;
    for position in 0..1 + rng.below(3) {
        let rel = rng.below(positive_limit);
        recursive |= same_tick && rel == head;
        let mut args = vec!["L".to_owned()];
        let mut fresh: Vec<&str> = Vec::new();
        for _ in 0..columns[rel] {
            let roll = rng.below(100);
            let arg = if roll < 60 || (position == 0 && roll < 85) {
                let var = rng.choose(&["A", "B", "C"]);
                if !bound.contains(&var) && !fresh.contains(&var) {
                    fresh.push(var);
                }
                var.to_owned()
            } else if roll < 78 {
                rng.below(4).to_string()
            } else if roll < 90 {
                "_".to_owned()
            } else if let Some(var) = bound.first() {
                format!("{var} - 1")
            } else {
                rng.below(4).to_string()
            };
            args.push(arg);
        }
        bound.extend(fresh);
        let pinned = if rng.chance(8) {
            format!("@{}", 1 + rng.below(4))
        } else {
            String::new()
        };
        body.push(format!("q{rel}({}){pinned}", args.join(", ")));
    }
    if rng.chance(8) {
        body.push("crash(L, _, K)".to_owned());
        bound.push("K");
    }
    let mut location = "L".to_owned();
    if kind == RuleKind::Async {
        if rng.chance(60) {
            body.push("link(L, M)".to_owned());
            location = "M".to_owned();
        } else if rng.chance(50) {
            location = format!("\"n{}\"", rng.below(3));
        }
    }
    if negated_limit > 0 && rng.chance(30) {
        let rel = rng.below(negated_limit);
        let mut args = vec!["L".to_owned()];
        for _ in 0..columns[rel] {
            args.push(match rng.below(3) {
                0 if !bound.is_empty() => bound[rng.below(bound.len())].to_owned(),
                1 => rng.below(4).to_string(),
                _ => "_".to_owned(),
            });
        }
        let pinned = if rng.chance(10) {
            format!("@{}", 1 + rng.below(4))
        } else {
            String::new()
        };
        body.push(format!("notin q{rel}({}){pinned}", args.join(", ")));
    }
    if !bound.is_empty() && rng.chance(35) {
        let lhs = bound[rng.below(bound.len())];
        let op = rng.choose(&["<", ">", "<=", ">=", "==", "!="]);
        let rhs = if rng.chance(50) {
            bound[rng.below(bound.len())].to_owned()
        } else {
            rng.below(4).to_string()
        };
        body.push(format!("{lhs} {op} {rhs}"));
    }
    let value = |rng: &mut Rng| -> String {
        if bound.is_empty() || rng.chance(20) {
            return rng.below(4).to_string();
        }
        let var = bound[rng.below(bound.len())];
        // Arithmetic in a recursive head could derive facts without end.
        if recursive || rng.chance(60) {
            return var.to_owned();
        }
        let other = bound[rng.below(bound.len())];
        match rng.below(4) {
            0 => format!("{var} + 1"),
            1 => format!("{var} - {other}"),
            2 => format!("{var} * 3"),
            _ => format!("{var} / {other}"),
        }
    };
    let mut head_args = vec![location];
    if kind == RuleKind::Aggregate && !bound.is_empty() {
        for _ in 1..columns[head] {
            head_args.push(value(rng));
        }
        let func = rng.choose(&["count", "sum", "min", "max"]);
        head_args.push(format!("{func}<{}>", bound[rng.below(bound.len())]));
    } else {
        for _ in 0..columns[head] {
            head_args.push(value(rng));
        }
    }
    let (prefix, suffix) = match kind {
        RuleKind::Deductive | RuleKind::Aggregate => ("", ""),
        RuleKind::Next => ("", "@next"),
        RuleKind::Async => ("", "@async"),
        RuleKind::Delete => ("delete ", "@next"),
    };
    format!(
        "{prefix}q{head}({}){suffix} :- {};",
        head_args.join(", "),
        body.join(", ")
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 160,
        max_global_rejects: 4096,
        ..ProptestConfig::default()
    })]

    #[test]
    fn timely_equals_reference(seed in any::<u64>()) {
        let random = random(seed);
        // Programs the checker rejects (unbound head variables, unsafe negation, ...) are
        // not runnable on either engine.
        let Ok(loaded) = common::load_inline(&random.program, &random.workload) else {
            return Err(TestCaseError::reject("the checker rejects the program"));
        };
        let result = common::compare(&loaded, &random.config, &ShowSet::All, random.workers, true);
        prop_assert!(
            result.is_ok(),
            "{}\n\nprogram:\n{}\nworkload:\n{}\nconfig: {:?}, {} worker(s)",
            result.err().unwrap_or_default(),
            random.program,
            random.workload,
            random.config,
            random.workers
        );
    }
}

/// The generator is worth its name: most of its programs check and run.
#[test]
fn most_random_programs_are_runnable() {
    let seeds = 0..120_u64;
    let total = seeds.clone().count();
    let runnable = seeds
        .filter(|seed| {
            let random = random(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            common::load_inline(&random.program, &random.workload).is_ok()
        })
        .count();
    assert!(
        runnable * 2 >= total,
        "only {runnable} of {total} random programs check"
    );
}
