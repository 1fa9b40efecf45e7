//! Property test: on random stratified programs, random facts and random fault schedules, the
//! timely runtime prints exactly what the reference evaluator prints, and runs as many ticks.
//!
//! Programs are written as text (so they go through the real parser and checker) from a seed:
//! relations `q0`..`q5` of one or two int columns after the location, each derived by rules of
//! every kind. A deductive rule reads relations up to its own head (recursion included) and
//! negates or aggregates only lower ones, so the program stratifies; bodies mix constants,
//! wildcards, repeated variables, arithmetic, comparisons (some against arithmetic, as a
//! partitioned sender's route key), pinned atoms and `crash`; `@async`
//! rules send along a `link` table or to a fixed node. Runs end at an end of time or by
//! quiescence under a small tick cap, with omissions, late messages (delays) and crashes in
//! either crash model, on one, two or four workers.
//!
//! A third of the programs are written in Molly's dialect (`.ded`, no declarations), with the
//! rule shapes Molly's own programs use and typed programs cannot: bodies whose location is a
//! wildcard or a constant, bodies over several locations, heads held at another node or at a
//! constant node, persistence by `@next` rules, and an included second file. Typed programs
//! declare some relations `output` and are sometimes shown by the default show set, so that
//! rules feeding no shown relation are dropped (unused rules). The traced property compares
//! the runtime's traced runs (facts, messages, derivations) with the reference's provenance.

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
    /// The program's files: the first is the program, the others are included by it.
    files: Vec<(String, String)>,
    workload: String,
    config: RunConfig,
    workers: usize,
    show: ShowSet,
}

impl Random {
    fn text(&self) -> String {
        self.files
            .iter()
            .map(|(name, text)| format!("// {name}\n{text}"))
            .collect()
    }

    fn load(&self) -> Result<common::Loaded, String> {
        common::load_inline_files(&self.files, &self.workload)
    }
}

/// Which dialect a random program is written in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// A typed `.graft` program: every rule local.
    Graft,
    /// Molly's `.ded` dialect: no declarations, and non-local rule shapes.
    Molly,
}

fn random(seed: u64) -> Random {
    let mut rng = Rng::new(seed);
    let dialect = if rng.chance(33) {
        Dialect::Molly
    } else {
        Dialect::Graft
    };
    let columns: Vec<usize> = (0..RELATIONS).map(|_| 1 + rng.below(2)).collect();
    let tables: Vec<bool> = (0..RELATIONS).map(|_| rng.chance(35)).collect();
    let mut program = String::new();
    let mut outputs = false;
    match dialect {
        Dialect::Graft => {
            program.push_str("table link(at: node, to: node);\n");
            for rel in 0..RELATIONS {
                let declared: String = (0..columns[rel]).map(|c| format!(", v{c}: int")).collect();
                let persistence = if rng.chance(20) {
                    outputs = true;
                    "output"
                } else if tables[rel] {
                    "table"
                } else {
                    "scratch"
                };
                let _ = writeln!(program, "{persistence} q{rel}(at: node{declared});");
            }
        }
        Dialect::Molly => {
            // Persistence by `@next` rules, as Molly's programs write it.
            program.push_str("link(L, M)@next :- link(L, M);\n");
            for rel in (0..RELATIONS).filter(|rel| tables[*rel]) {
                let vars: String = ["A", "B"][..columns[rel]]
                    .iter()
                    .map(|var| format!(", {var}"))
                    .collect();
                let _ = writeln!(program, "q{rel}(L{vars})@next :- q{rel}(L{vars});");
            }
        }
    }
    let mut included = String::new();
    for (head, is_table) in tables.iter().enumerate() {
        for _ in 0..rng.below(3) + usize::from(head > 0) {
            let kind = match rng.below(20) {
                0..=8 => RuleKind::Deductive,
                9..=10 if head > 0 => RuleKind::Aggregate,
                11..=13 => RuleKind::Next,
                14..=17 => RuleKind::Async,
                18..=19 if *is_table && dialect == Dialect::Graft => RuleKind::Delete,
                _ => RuleKind::Deductive,
            };
            let rule = random_rule(&mut rng, head, kind, &columns, dialect);
            // In Molly's dialect some rules live in an included file.
            let target = if dialect == Dialect::Molly && rng.chance(30) {
                &mut included
            } else {
                &mut program
            };
            target.push_str(&rule);
            target.push('\n');
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
    // Sometimes late messages (`--delay`), which can reorder a channel's messages.
    if rng.chance(35) {
        for _ in 0..1 + rng.below(3) {
            let from = nodes[rng.below(nodes.len())].clone();
            let to = nodes[rng.below(nodes.len())].clone();
            let tick = 1 + u64::try_from(rng.below(4)).unwrap_or(0);
            let by = 1 + u64::try_from(rng.below(3)).unwrap_or(0);
            config.delays.insert((from, to, tick), by);
        }
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
    let workers = [1, 2, 4][rng.below(3)];
    let show = if outputs && rng.chance(50) {
        ShowSet::Default
    } else {
        ShowSet::All
    };
    let files = match dialect {
        Dialect::Graft => vec![("program.graft".to_owned(), program)],
        Dialect::Molly if included.is_empty() => vec![("program.ded".to_owned(), program)],
        Dialect::Molly => vec![
            (
                "program.ded".to_owned(),
                format!("include \"part.ded\";\n{program}"),
            ),
            ("part.ded".to_owned(), included),
        ],
    };
    Random {
        files,
        workload,
        config,
        workers,
        show,
    }
}

fn random_rule(
    rng: &mut Rng,
    head: usize,
    kind: RuleKind,
    columns: &[usize],
    dialect: Dialect,
) -> String {
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
    // Molly's dialect: a body may read facts at other locations (`M`, bound by `link`), at a
    // wildcard or at a constant node; the rule is then evaluated over every node at once.
    let molly = dialect == Dialect::Molly;
    let mut remote = false;
    for position in 0..1 + rng.below(3) {
        let rel = rng.below(positive_limit);
        recursive |= same_tick && rel == head;
        let location = if molly && rng.chance(25) {
            match rng.below(3) {
                0 if position > 0 => {
                    remote = true;
                    "M".to_owned()
                }
                1 => "_".to_owned(),
                _ => format!("\"n{}\"", rng.below(3)),
            }
        } else {
            "L".to_owned()
        };
        let mut args = vec![location];
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
    // `L` must be bound by a positive atom: the first may have been given another location.
    if !body
        .iter()
        .any(|atom| atom.contains("(L,") || atom.contains("(L)"))
    {
        body.push("link(L, _)".to_owned());
    }
    let mut location = "L".to_owned();
    if remote {
        body.push("link(L, M)".to_owned());
    }
    if kind == RuleKind::Async || (molly && rng.chance(25)) {
        if remote || rng.chance(60) {
            if !remote {
                body.push("link(L, M)".to_owned());
            }
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
        // `==` on a variable is folded into the atoms reading it by the runtime's plans (an
        // arithmetic right side becomes a computed join key), not by the reference's.
        let rhs = match rng.below(3) {
            0 => bound[rng.below(bound.len())].to_owned(),
            1 => rng.below(4).to_string(),
            _ => {
                let other = bound[rng.below(bound.len())];
                format!("{other} - {other} / 2 * 2")
            }
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
        let Ok(loaded) = random.load() else {
            return Err(TestCaseError::reject("the checker rejects the program"));
        };
        let result = common::compare(&loaded, &random.config, &random.show, random.workers, true);
        prop_assert!(
            result.is_ok(),
            "{}\n\nprogram:\n{}\nworkload:\n{}\nconfig: {:?}, {} worker(s), {:?}",
            result.err().unwrap_or_default(),
            random.text(),
            random.workload,
            random.config,
            random.workers,
            random.show
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        max_global_rejects: 4096,
        ..ProptestConfig::default()
    })]

    /// Traced runs (what `graft explain` and `graft verify` read on the timely engine) equal
    /// the reference's runs with provenance, fact by fact and derivation by derivation.
    #[test]
    fn traced_runs_equal_the_reference(seed in any::<u64>()) {
        let mut random = random(seed);
        let Ok(loaded) = random.load() else {
            return Err(TestCaseError::reject("the checker rejects the program"));
        };
        if random.config.eot.is_none() {
            random.config.eot = Some(3 + seed % 4);
        }
        let workers = random.workers.min(2);
        let result = common::compare_traced(&loaded, &random.config, workers);
        prop_assert!(
            result.is_ok(),
            "{}\n\nprogram:\n{}\nworkload:\n{}\nconfig: {:?}, {} worker(s)",
            result.err().unwrap_or_default(),
            random.text(),
            random.workload,
            random.config,
            workers
        );
    }
}

/// The generator is worth its name: most of its programs check and run.
#[test]
fn most_random_programs_are_runnable() {
    let seeds = 0..120_u64;
    let total = seeds.clone().count();
    let mut molly = 0;
    let mut molly_runnable = 0;
    let runnable = seeds
        .filter(|seed| {
            let random = random(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let is_molly = random.files[0].0.ends_with(".ded");
            let ok = random.load().is_ok();
            molly += usize::from(is_molly);
            molly_runnable += usize::from(is_molly && ok);
            ok
        })
        .count();
    assert!(
        runnable * 2 >= total,
        "only {runnable} of {total} random programs check"
    );
    assert!(
        molly > 0 && molly_runnable * 2 >= molly,
        "only {molly_runnable} of {molly} programs in Molly's dialect check"
    );
}
