//! `graft explain`: why does a fact hold? Runs the program with provenance and prints the
//! fact's derivation tree — every rule firing that derived it, the body facts each used (and
//! the negated atoms that held), messages with their sender and send tick, `@next` carries and
//! table persistence — as an indented tree or as a Graphviz DOT graph.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::bail;
use clap::{Args, ValueEnum};
use graft_compiler::ir::{self, Value};
use graft_eval::{Absent, Derivation, FactRef, Run};
use graft_language::ast;
use graft_language::diagnostic::Diagnostic;
use graft_language::span::SourceMap;

use crate::commands::run::Engine;
use crate::program::{self, Loaded, RunOptions};
use crate::{Context, Outcome, render};

#[derive(Args, Debug)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub options: RunOptions,
    /// The fact to explain, with its tick, as in the language: 'decision("C", 1, true)@5'.
    /// It may also be given as the last positional argument, after the program's files.
    #[arg(long, value_name = "FACT")]
    pub fact: Option<String>,
    /// An indented tree, or a Graphviz DOT graph (`| dot -Tsvg`).
    #[arg(long, value_enum, default_value_t = ExplainFormat::Text)]
    pub format: ExplainFormat,
    /// Which engine computes the provenance: `reference` (the reference evaluator) or
    /// `timely` (a traced run of the timely runtime). Both give the same derivation trees.
    #[arg(long, value_enum, default_value_t = Engine::Reference)]
    pub engine: Engine,
    /// Timely worker threads for `--engine timely`.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub workers: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExplainFormat {
    Text,
    Dot,
}

pub fn run(context: &Context, args: &ExplainArgs) -> anyhow::Result<Outcome> {
    let mut options = args.options.clone();
    let fact_text = match &args.fact {
        Some(fact) => fact.clone(),
        None => match options.files.last() {
            Some(last) if options.files.len() > 1 && last.contains('(') => {
                options.files.pop().unwrap_or_default()
            }
            _ => bail!(
                "name the fact to explain after the program's files, like 'decision(\"C\", 1, true)@5', or with --fact"
            ),
        },
    };
    let args = ExplainArgs {
        options,
        fact: Some(fact_text.clone()),
        format: args.format,
        engine: args.engine,
        workers: args.workers,
    };
    let Loaded::Ready(loaded) = program::load_and_check(context, &args.options)? else {
        return Ok(Outcome::ProgramErrors);
    };
    let mut sources = loaded.sources.clone();
    let program = &loaded.checked.program;
    let Some(target) = parse_fact(context, &mut sources, program, &fact_text)? else {
        return Ok(Outcome::ProgramErrors);
    };
    let eot = args.options.eot.unwrap_or(target.tick);
    if eot < target.tick {
        bail!(
            "the fact is at tick {}, after --eot {eot}: raise --eot or ask about an earlier tick",
            target.tick
        );
    }
    let evaluator = graft_eval::Evaluator::new(&loaded.checked)?;
    let mut config = program::run_config(&args.options);
    config.eot = Some(eot);
    config.provenance = true;
    program::check_fault_nodes(&args.options, &evaluator.nodes(&config, &loaded.facts)?)?;
    let run = match args.engine {
        Engine::Reference => evaluator.run(&config, &loaded.facts)?,
        Engine::Timely => {
            let execution = graft_runtime::Execution {
                workers: usize::try_from(args.workers).unwrap_or(1),
                cluster: None,
            };
            graft_runtime::Runtime::new(&loaded.checked)?
                .run_traced(&config, &loaded.facts, &execution)?
                .ok_or_else(|| anyhow::anyhow!("the timely run returned no result"))?
        }
    };
    let Some(fact) = run.find(target.tick, target.rel, &target.values) else {
        let relation = &program.relation(target.rel).name;
        let mut message = format!(
            "{} does not hold at tick {}",
            graft_eval::render_fact(relation, &target.values, target.tick).trim_end_matches(';'),
            target.tick
        );
        let holding = run.facts(target.tick, target.rel);
        if holding.is_empty() {
            let _ = write!(message, "; no `{relation}` fact holds at that tick");
        } else {
            let _ = write!(message, "; the `{relation}` facts at that tick are:");
            let mut shown: Vec<&graft_eval::Tuple> = holding.iter().collect();
            shown.sort();
            for tuple in shown.iter().take(20) {
                let _ = write!(
                    message,
                    "\n  {}",
                    graft_eval::render_fact(relation, tuple, target.tick)
                );
            }
            if shown.len() > 20 {
                let _ = write!(message, "\n  ... and {} more", shown.len() - 20);
            }
        }
        eprintln!("{message}");
        return Ok(Outcome::ProgramErrors);
    };
    let explainer = Explainer {
        program,
        run: &run,
        sources: &sources,
    };
    let text = match args.format {
        ExplainFormat::Text => explainer.tree(fact),
        ExplainFormat::Dot => explainer.dot(fact),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(Outcome::Success)
}

/// Parses and checks the `--fact` argument as a one-fact facts file.
fn parse_fact(
    context: &Context,
    sources: &mut SourceMap,
    program: &ir::Program,
    text: &str,
) -> anyhow::Result<Option<ir::Fact>> {
    let statement = if text.trim_end().ends_with(';') {
        text.to_string()
    } else {
        format!("{text};")
    };
    let file = sources.add("<fact>", statement.clone());
    let parsed = graft_language::parse(file, &statement);
    let mut diagnostics = parsed.diagnostics.clone();
    let facts: Vec<&ast::Rule> = parsed
        .file
        .items
        .iter()
        .filter_map(|item| match item {
            ast::Item::Rule(rule) if rule.is_fact() => Some(rule),
            _ => None,
        })
        .collect();
    if diagnostics.is_empty() && (facts.len() != 1 || parsed.file.items.len() != 1) {
        bail!("--fact takes one fact with its tick, like 'decision(\"C\", 1, true)@5'");
    }
    if let Some(fact) = facts.first()
        && !matches!(fact.head.time, ast::HeadTime::Tick(_))
    {
        diagnostics.push(
            Diagnostic::error("E0001", "the fact has no tick", fact.head.span)
                .with_help("write the tick the fact should hold at, like `@5`"),
        );
    }
    if diagnostics.is_empty() {
        let (checked, fact_diagnostics) =
            graft_compiler::check_facts(program, std::slice::from_ref(&parsed.file));
        diagnostics.extend(fact_diagnostics);
        if diagnostics.is_empty()
            && let Some(fact) = checked.into_iter().next()
        {
            return Ok(Some(fact));
        }
    }
    render::emit_diagnostics(sources, &diagnostics, context.color);
    Ok(None)
}

struct Explainer<'a> {
    program: &'a ir::Program,
    run: &'a Run,
    sources: &'a SourceMap,
}

impl Explainer<'_> {
    fn fact_label(&self, fact: FactRef) -> String {
        let relation = &self.program.relation(fact.rel).name;
        match self.run.fact(fact) {
            Some(tuple) => graft_eval::render_fact(relation, tuple, fact.tick)
                .trim_end_matches(';')
                .to_string(),
            None => format!("{relation}(?)@{}", fact.tick),
        }
    }

    fn absent_label(&self, absent: &Absent) -> String {
        let relation = &self.program.relation(absent.rel).name;
        let values: Vec<String> = absent
            .pattern
            .iter()
            .map(|value| {
                value
                    .as_ref()
                    .map_or_else(|| "_".to_string(), Value::to_string)
            })
            .collect();
        format!("notin {relation}({})@{}", values.join(", "), absent.tick)
    }

    /// `file:line: the rule's text on one line`.
    fn rule_label(&self, rule: ir::RuleId) -> String {
        let rule = self.program.rule(rule);
        let (line, _) = self.sources.line_col(rule.span.file, rule.span.start);
        let text: Vec<&str> = self.sources.snippet(rule.span).split_whitespace().collect();
        format!(
            "{}:{line}: {}",
            self.sources.name(rule.span.file),
            text.join(" ")
        )
    }

    fn location_label(&self, span: graft_language::span::Span) -> String {
        let (line, _) = self.sources.line_col(span.file, span.start);
        format!("{}:{line}", self.sources.name(span.file))
    }

    /// The start of a chain of table carries: the earliest tick from which `fact` was only
    /// carried over, and the fact there.
    fn skip_persistence(&self, mut fact: FactRef) -> FactRef {
        loop {
            match self.run.derivations(fact) {
                [Derivation::Persisted { from }] => fact = *from,
                _ => return fact,
            }
        }
    }

    /// One line describing a derivation, and the facts and absent atoms under it.
    fn derivation(&self, derivation: &Derivation) -> (String, Vec<FactRef>, Vec<String>) {
        let firing_parts = |firing: &graft_eval::RuleFiring| {
            (
                firing.body.clone(),
                firing
                    .absent
                    .iter()
                    .map(|absent| self.absent_label(absent))
                    .collect::<Vec<_>>(),
            )
        };
        match derivation {
            Derivation::Crash => (
                "given by the fault schedule (crash)".to_string(),
                vec![],
                vec![],
            ),
            Derivation::Given { span } => (
                format!("given at {}", self.location_label(*span)),
                vec![],
                vec![],
            ),
            Derivation::Persisted { from } => {
                let start = self.skip_persistence(*from);
                let line = if start.tick + 1 == from.tick + 1 && start == *from {
                    format!("table: carried over from tick {}", from.tick)
                } else {
                    format!("table: carried over since tick {}", start.tick)
                };
                (line, vec![start], vec![])
            }
            Derivation::Rule(firing) => {
                let (body, absent) = firing_parts(firing);
                (
                    format!("rule {}", self.rule_label(firing.rule)),
                    body,
                    absent,
                )
            }
            Derivation::Aggregate(firing) => {
                let (body, absent) = firing_parts(firing);
                (
                    format!(
                        "aggregate over {} fact(s), rule {}",
                        body.len(),
                        self.rule_label(firing.rule)
                    ),
                    body,
                    absent,
                )
            }
            Derivation::Next(firing) => {
                let (body, absent) = firing_parts(firing);
                let tick = body.first().map_or(0, |fact| fact.tick);
                (
                    format!(
                        "@next at tick {tick}, rule {}",
                        self.rule_label(firing.rule)
                    ),
                    body,
                    absent,
                )
            }
            Derivation::Message {
                sender,
                send_tick,
                firing,
            } => {
                let (body, absent) = firing_parts(firing);
                (
                    format!(
                        "message from {sender} sent at tick {send_tick}, rule {}",
                        self.rule_label(firing.rule)
                    ),
                    body,
                    absent,
                )
            }
        }
    }

    fn tree(&self, root: FactRef) -> String {
        let mut out = String::new();
        let mut explained = BTreeSet::new();
        let _ = writeln!(out, "{}", self.fact_label(root));
        self.tree_children(root, "", &mut explained, &mut out);
        out
    }

    fn tree_children(
        &self,
        fact: FactRef,
        prefix: &str,
        explained: &mut BTreeSet<FactRef>,
        out: &mut String,
    ) {
        explained.insert(fact);
        let derivations = self.run.derivations(fact);
        for (index, derivation) in derivations.iter().enumerate() {
            let last = index + 1 == derivations.len();
            let (line, body, absent) = self.derivation(derivation);
            let _ = writeln!(out, "{prefix}{}{line}", if last { "└─ " } else { "├─ " });
            let child_prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
            let count = body.len() + absent.len();
            for (position, child) in body.iter().enumerate() {
                let last_child = position + 1 == count;
                let branch = if last_child { "└─ " } else { "├─ " };
                if explained.contains(child) {
                    let _ = writeln!(
                        out,
                        "{child_prefix}{branch}{} (explained above)",
                        self.fact_label(*child)
                    );
                    continue;
                }
                let _ = writeln!(out, "{child_prefix}{branch}{}", self.fact_label(*child));
                let grandchild_prefix =
                    format!("{child_prefix}{}", if last_child { "   " } else { "│  " });
                self.tree_children(*child, &grandchild_prefix, explained, out);
            }
            for (position, label) in absent.iter().enumerate() {
                let branch = if body.len() + position + 1 == count {
                    "└─ "
                } else {
                    "├─ "
                };
                let _ = writeln!(out, "{child_prefix}{branch}{label}  (absent)");
            }
        }
    }

    fn dot(&self, root: FactRef) -> String {
        let mut out = String::from(
            "digraph explain {\n  rankdir=BT;\n  node [fontname=\"monospace\", fontsize=10];\n",
        );
        let mut ids: BTreeMap<FactRef, usize> = BTreeMap::new();
        let mut pending = vec![root];
        let mut derivation_count = 0usize;
        let mut absent_count = 0usize;
        let mut edges = String::new();
        while let Some(fact) = pending.pop() {
            if ids.contains_key(&fact) {
                continue;
            }
            let id = ids.len();
            ids.insert(fact, id);
            let style = if fact == root { ", penwidth=2" } else { "" };
            let _ = writeln!(
                out,
                "  f{id} [shape=ellipse, label=\"{}\"{style}];",
                escape(&self.fact_label(fact))
            );
            for derivation in self.run.derivations(fact) {
                let (line, body, absent) = self.derivation(derivation);
                let derivation_id = derivation_count;
                derivation_count += 1;
                let style = if matches!(derivation, Derivation::Message { .. }) {
                    ", style=dashed"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "  d{derivation_id} [shape=box, label=\"{}\"{style}];",
                    escape(&line)
                );
                let _ = writeln!(edges, "  d{derivation_id} -> f{id};");
                for child in body {
                    let _ = writeln!(edges, "  f{{{}}} -> d{derivation_id};", fact_key(child));
                    pending.push(child);
                }
                for label in absent {
                    let _ = writeln!(
                        out,
                        "  a{absent_count} [shape=note, style=dotted, label=\"{}\"];",
                        escape(&label)
                    );
                    let _ = writeln!(
                        edges,
                        "  a{absent_count} -> d{derivation_id} [style=dotted];"
                    );
                    absent_count += 1;
                }
            }
        }
        // Body facts are named by key while the walk runs; name them by id now.
        for line in edges.lines() {
            let resolved = resolve_fact_keys(line, &ids);
            let _ = writeln!(out, "{resolved}");
        }
        out.push_str("}\n");
        out
    }
}

fn fact_key(fact: FactRef) -> String {
    format!("{}:{}:{}", fact.tick, fact.rel.0, fact.tuple)
}

/// Replaces `f{tick:rel:tuple}` placeholders with the fact's node id.
fn resolve_fact_keys(line: &str, ids: &BTreeMap<FactRef, usize>) -> String {
    let Some(start) = line.find("f{") else {
        return line.to_string();
    };
    let Some(length) = line[start..].find('}') else {
        return line.to_string();
    };
    let key = &line[start + 2..start + length];
    let parts: Vec<u64> = key
        .split(':')
        .filter_map(|part| part.parse().ok())
        .collect();
    let id = match parts.as_slice() {
        [tick, rel, tuple] => ids
            .get(&FactRef {
                tick: *tick,
                rel: ir::RelId(u32::try_from(*rel).unwrap_or(u32::MAX)),
                tuple: u32::try_from(*tuple).unwrap_or(u32::MAX),
            })
            .copied(),
        _ => None,
    };
    match id {
        Some(id) => format!("{}f{id}{}", &line[..start], &line[start + length + 1..]),
        None => line.to_string(),
    }
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}
