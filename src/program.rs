//! Loading and checking a program with its workloads, and the run options that `graft run`,
//! `graft explain` (and later `graft verify`) share.
//!
//! Everything that can be wrong with the user's input is found here, before anything runs:
//! diagnostics in the program or the workload files are rendered and the command stops with
//! exit status 1; malformed options are usage errors (exit status 2).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use graft_compiler::Checked;
use graft_compiler::ir::{self, Value};
use graft_eval::{CrashModel, RunConfig};
use graft_language::diagnostic::{Diagnostic, sort_diagnostics};
use graft_language::span::SourceMap;

use crate::{Context, load, render};

/// The program, its workloads and the fault schedule of one run.
#[derive(Args, Debug, Clone)]
pub struct RunOptions {
    /// The program's files (`.graft` or Molly `.ded`); together they form one program.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// Workload or topology files: facts `rel(values)@tick;` added to the program's own.
    #[arg(long = "facts", value_name = "FILE")]
    pub facts: Vec<String>,
    /// Evaluate ticks 1..=N. Without it, the run goes until quiescence (or --max-ticks).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub eot: Option<u64>,
    /// The most ticks a run without --eot may take; a warning says when it cut the run.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_ticks: u64,
    /// More nodes, besides the locations named by facts (comma-separated).
    #[arg(long, value_name = "A,B,...", value_delimiter = ',')]
    pub nodes: Vec<String>,
    /// Lose the message(s) sent from FROM to TO at tick TICK. Repeatable.
    #[arg(long = "drop", value_name = "FROM,TO,TICK", value_parser = parse_drop)]
    pub drops: Vec<(String, String, u64)>,
    /// Crash NODE at tick TICK: from then on it sends nothing. Repeatable.
    #[arg(long = "crash", value_name = "NODE@TICK", value_parser = parse_crash)]
    pub crashes: Vec<(String, u64)>,
    /// Deliver the message(s) sent from FROM to TO at tick TICK BY ticks late: they arrive at
    /// TICK + 1 + BY instead of TICK + 1, so later messages on other channels (or on the same
    /// channel) may overtake them. Repeatable; BY is at least 1.
    #[arg(long = "delay", value_name = "FROM,TO,TICK,BY", value_parser = parse_delay)]
    pub delays: Vec<((String, String, u64), u64)>,
    /// What a crashed node still does: `molly` (derives locally, sends nothing) or `strict`
    /// (holds and derives nothing, receives nothing).
    #[arg(long, value_enum, default_value_t = CrashModelArg::Molly)]
    pub crash_model: CrashModelArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CrashModelArg {
    Molly,
    Strict,
}

fn parse_drop(text: &str) -> Result<(String, String, u64), String> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let [from, to, tick] = parts.as_slice() else {
        return Err(format!(
            "expected FROM,TO,TICK (e.g. a,b,2), found `{text}`"
        ));
    };
    if from.is_empty() || to.is_empty() {
        return Err(format!(
            "expected FROM,TO,TICK (e.g. a,b,2), found `{text}`"
        ));
    }
    let tick = parse_tick(tick)?;
    Ok((unquote(from), unquote(to), tick))
}

fn parse_delay(text: &str) -> Result<((String, String, u64), u64), String> {
    let usage = || {
        format!("expected FROM,TO,TICK,BY (e.g. a,b,2,3: sent at 2, 3 ticks late), found `{text}`")
    };
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let [from, to, tick, by] = parts.as_slice() else {
        return Err(usage());
    };
    if from.is_empty() || to.is_empty() {
        return Err(usage());
    }
    if unquote(from) == unquote(to) {
        return Err(format!(
            "`{text}` delays a node's messages to itself, which always arrive at the next tick; name two different nodes"
        ));
    }
    let tick = parse_tick(tick)?;
    let by = match by.parse::<u64>() {
        Ok(by) if by >= 1 => by,
        _ => {
            return Err(format!(
                "a delay is a whole number of ticks from 1, found `{by}`"
            ));
        }
    };
    Ok(((unquote(from), unquote(to), tick), by))
}

fn parse_crash(text: &str) -> Result<(String, u64), String> {
    let Some((node, tick)) = text.rsplit_once('@') else {
        return Err(format!("expected NODE@TICK (e.g. c@3), found `{text}`"));
    };
    if node.trim().is_empty() {
        return Err(format!("expected NODE@TICK (e.g. c@3), found `{text}`"));
    }
    Ok((unquote(node.trim()), parse_tick(tick.trim())?))
}

fn parse_tick(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(tick) if tick >= 1 => Ok(tick),
        _ => Err(format!("a tick is a whole number from 1, found `{text}`")),
    }
}

/// Node names may be written with or without the quotes they have in programs.
fn unquote(text: &str) -> String {
    text.strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(text)
        .to_string()
}

/// A checked program with its checked workload facts.
pub struct LoadedRun {
    pub sources: SourceMap,
    pub checked: Checked,
    pub facts: Vec<ir::Fact>,
    /// Warnings from the program and the workloads (errors stop loading).
    pub warnings: Vec<Diagnostic>,
}

/// What loading found: a program ready to run, or diagnostics that stop the command.
pub enum Loaded {
    Ready(Box<LoadedRun>),
    /// The diagnostics were rendered; the command should exit with status 1.
    Rejected,
}

/// Loads and checks the program and the workload files; renders errors.
pub fn load_and_check(context: &Context, options: &RunOptions) -> anyhow::Result<Loaded> {
    let facts = load::read_facts(&options.facts)?;
    load_and_check_with(context, options, &facts)
}

/// [`load_and_check`] with the facts given as texts instead of `options.facts`.
pub fn load_and_check_with(
    context: &Context,
    options: &RunOptions,
    facts_texts: &[load::FactsText],
) -> anyhow::Result<Loaded> {
    let mut loaded = load::load(&options.files)?;
    let checked = graft_compiler::check(&loaded.sources, &loaded.files);
    let mut diagnostics = loaded.diagnostics.clone();
    diagnostics.extend(checked.diagnostics.iter().cloned());
    let workload = load::parse_facts(&mut loaded.sources, facts_texts);
    diagnostics.extend(workload.diagnostics);
    let mut facts = Vec::new();
    if !diagnostics.iter().any(Diagnostic::is_error) {
        let (checked_facts, fact_diagnostics) =
            graft_compiler::check_facts(&checked.program, &workload.files);
        facts = checked_facts;
        diagnostics.extend(fact_diagnostics);
    }
    sort_diagnostics(&mut diagnostics);
    if diagnostics.iter().any(Diagnostic::is_error) {
        render::emit_diagnostics(&loaded.sources, &diagnostics, context.color);
        eprintln!("{}; nothing was run", render::count_line(&diagnostics));
        return Ok(Loaded::Rejected);
    }
    Ok(Loaded::Ready(Box::new(LoadedRun {
        sources: loaded.sources,
        checked,
        facts,
        warnings: diagnostics,
    })))
}

/// Checks a program and facts files without printing: `Some` with the rendered errors when
/// there are any.
pub fn check_quietly(files: &[String], facts: &[String]) -> anyhow::Result<Option<String>> {
    let mut loaded = load::load(files)?;
    let checked = graft_compiler::check(&loaded.sources, &loaded.files);
    let mut diagnostics = loaded.diagnostics.clone();
    diagnostics.extend(checked.diagnostics.iter().cloned());
    let workload = load::load_facts(&mut loaded.sources, facts)?;
    diagnostics.extend(workload.diagnostics);
    if !diagnostics.iter().any(Diagnostic::is_error) {
        let (_, fact_diagnostics) = graft_compiler::check_facts(&checked.program, &workload.files);
        diagnostics.extend(fact_diagnostics);
    }
    sort_diagnostics(&mut diagnostics);
    let errors: Vec<Diagnostic> = diagnostics
        .into_iter()
        .filter(Diagnostic::is_error)
        .collect();
    if errors.is_empty() {
        return Ok(None);
    }
    Ok(Some(render::diagnostics_to_string(
        &loaded.sources,
        &errors,
    )))
}

/// The evaluator's configuration for these options.
pub fn run_config(options: &RunOptions) -> RunConfig {
    RunConfig {
        eot: options.eot,
        max_ticks: options.max_ticks,
        extra_nodes: options
            .nodes
            .iter()
            .map(|node| unquote(node.trim()))
            .collect(),
        drops: options.drops.iter().cloned().collect::<BTreeSet<_>>(),
        crashes: options
            .crashes
            .iter()
            .cloned()
            .collect::<BTreeMap<String, u64>>(),
        delays: options.delays.iter().cloned().collect(),
        crash_model: match options.crash_model {
            CrashModelArg::Molly => CrashModel::Molly,
            CrashModelArg::Strict => CrashModel::Strict,
        },
        ..RunConfig::default()
    }
}

/// Checks that every node a fault names is a node of the run.
pub fn check_fault_nodes(options: &RunOptions, nodes: &[Value]) -> anyhow::Result<()> {
    let known: BTreeSet<&str> = nodes.iter().filter_map(Value::as_str).collect();
    let mut named: Vec<(&str, String)> = Vec::new();
    for (from, to, tick) in &options.drops {
        named.push((from, format!("--drop {from},{to},{tick}")));
        named.push((to, format!("--drop {from},{to},{tick}")));
    }
    for (node, tick) in &options.crashes {
        named.push((node, format!("--crash {node}@{tick}")));
    }
    for ((from, to, tick), by) in &options.delays {
        named.push((from, format!("--delay {from},{to},{tick},{by}")));
        named.push((to, format!("--delay {from},{to},{tick},{by}")));
    }
    for (node, option) in named {
        if !known.contains(node) {
            let list: Vec<&str> = known.iter().copied().collect();
            bail!(
                "`{option}` names `{node}`, which is not a node of this run (nodes: {}); \
                 name a node that the program's or workload's facts locate, or add it with --nodes",
                list.join(", ")
            );
        }
    }
    Ok(())
}

/// Resolves `--show` values to relation ids: `outputs` (the default), `all`, or names.
pub fn show_set(program: &ir::Program, show: &[String]) -> anyhow::Result<graft_eval::ShowSet> {
    if show.is_empty() || show.iter().all(|value| value == "outputs") {
        return Ok(graft_eval::ShowSet::Default);
    }
    if show.iter().any(|value| value == "all") {
        return Ok(graft_eval::ShowSet::All);
    }
    let mut relations = BTreeSet::new();
    for name in show {
        if name == "outputs" {
            relations.extend(graft_eval::ShowSet::Default.relations(program));
            continue;
        }
        let rel = program.relation_by_name(name).with_context(|| {
            let names = program.relations.iter().map(|relation| relation.name.as_str());
            match graft_compiler::suggest::did_you_mean(name, names) {
                Some(candidate) => {
                    format!("--show names `{name}`, which is not a relation of the program; did you mean `{candidate}`?")
                }
                None => format!("--show names `{name}`, which is not a relation of the program"),
            }
        })?;
        relations.insert(rel);
    }
    Ok(graft_eval::ShowSet::Relations(relations))
}
