//! `graft rewrite`: apply rewrite passes to a program, write the new version (and its facts
//! files and justification record), or explain every reason a pass does not apply.
//!
//! Nothing is written unless every pass applies and the new program checks; every file is
//! written through a temporary file and a rename, so an existing output is never left
//! half-written.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use clap::Args;
use graft_compiler::Checked;
use graft_compiler::ir::{self, Type, Value};
use graft_eval::{Evaluator, Run, RunConfig};
use graft_language::diagnostic::{Diagnostic, sort_diagnostics};
use graft_rewrites::{FactsFile, PipelineError, SourceRef};

use crate::commands::fmt::write_atomically;
use crate::{Context, Outcome, load, render};

#[derive(Args, Debug)]
pub struct RewriteArgs {
    /// The program's files (together one program).
    #[arg(value_name = "FILE", required_unless_present = "list")]
    pub files: Vec<String>,
    /// A pass to apply, e.g. 'partition(participant, by=tx, n=2)'. Repeatable; applied in order.
    #[arg(
        long = "pass",
        value_name = "NAME(ARGS)",
        required_unless_present = "list"
    )]
    pub passes: Vec<String>,
    /// Write the new program here (default: standard output).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<String>,
    /// Write the justification record (JSON) here.
    #[arg(long, value_name = "OUT.json")]
    pub justification: Option<String>,
    /// Topology and workload files of the old version; they are rewritten for the new one.
    #[arg(long = "facts", value_name = "FILE")]
    pub facts: Vec<String>,
    /// Write the rewritten facts files (same base names) into this directory.
    #[arg(long, value_name = "DIR")]
    pub facts_out: Option<String>,
    /// Print messages sent and facts derived per role and node, before and after, on the
    /// --facts workload (instead of printing the program when no -o is given).
    #[arg(long)]
    pub cost: bool,
    /// Describe every pass and its parameters.
    #[arg(long)]
    pub list: bool,
}

pub fn run(context: &Context, args: &RewriteArgs) -> anyhow::Result<Outcome> {
    if args.list {
        print!("{}", graft_rewrites::describe_passes());
        return Ok(Outcome::Success);
    }
    let mut passes = Vec::new();
    for text in &args.passes {
        passes.push(graft_rewrites::parse_pass(text).with_context(|| format!("--pass '{text}'"))?);
    }
    if args.cost && args.facts.is_empty() {
        bail!("--cost needs a workload: give --facts FILE (topology and workload)");
    }
    let mut loaded = load::load(&args.files)?;
    let checked = graft_compiler::check(&loaded.sources, &loaded.files);
    let mut diagnostics = loaded.diagnostics.clone();
    diagnostics.extend(checked.diagnostics.iter().cloned());
    let workload = load::load_facts(&mut loaded.sources, &args.facts)?;
    diagnostics.extend(workload.diagnostics);
    let mut facts_files = Vec::new();
    let mut ir_facts = Vec::new();
    if !diagnostics.iter().any(Diagnostic::is_error) {
        for (path, file) in args.facts.iter().zip(&workload.files) {
            let (facts, fact_diagnostics) =
                graft_compiler::check_facts(&checked.program, std::slice::from_ref(file));
            diagnostics.extend(fact_diagnostics);
            facts_files.push(FactsFile {
                name: path.clone(),
                facts: facts
                    .iter()
                    .map(|fact| graft_rewrites::draft::fact_of(&checked.program, fact))
                    .collect(),
                generated: Vec::new(),
            });
            ir_facts.extend(facts);
        }
    }
    sort_diagnostics(&mut diagnostics);
    if diagnostics.iter().any(Diagnostic::is_error) {
        render::emit_diagnostics(&loaded.sources, &diagnostics, context.color);
        eprintln!(
            "{}; nothing was rewritten",
            render::count_line(&diagnostics)
        );
        return Ok(Outcome::ProgramErrors);
    }
    let mut bytes = Vec::new();
    for file in &args.files {
        bytes.extend(std::fs::read(file).with_context(|| format!("cannot read `{file}`"))?);
    }
    let source = SourceRef {
        files: args.files.clone(),
        hash: graft_rewrites::content_hash(&bytes),
    };
    let rewritten = match graft_rewrites::rewrite(&checked, &source, facts_files, &passes) {
        Ok(rewritten) => rewritten,
        Err(PipelineError::Refused {
            step,
            refusal,
            sources,
        }) => {
            let sources = sources.as_ref().unwrap_or(&loaded.sources);
            render::emit_diagnostics(sources, &refusal.to_diagnostics(), context.color);
            eprintln!(
                "refused: `{}` (pass {} of {}) does not apply: {} failed precondition(s): {}; nothing was written",
                refusal.pass,
                step + 1,
                passes.len(),
                refusal.failures.len(),
                refusal.names().join(", ")
            );
            return Ok(Outcome::ProgramErrors);
        }
        Err(PipelineError::Internal {
            step,
            text,
            diagnostics,
            sources,
        }) => {
            render::emit_diagnostics(&sources, &diagnostics, context.color);
            eprintln!("--- the program pass {} produced:\n{text}", step + 1);
            bail!(
                "internal error: pass {} produced a program that does not check (a bug in graft; please report it); nothing was written",
                step + 1
            );
        }
    };
    // The rewritten facts must fit the new program.
    let mut new_sources = graft_language::span::SourceMap::new();
    let mut new_facts = Vec::new();
    for file in &rewritten.facts {
        let text = file.print();
        let id = new_sources.add(file.name.clone(), text.clone());
        let parsed = graft_language::parse(id, &text);
        let (facts, fact_diagnostics) =
            graft_compiler::check_facts(&rewritten.checked.program, &[parsed.file]);
        if fact_diagnostics.iter().any(Diagnostic::is_error)
            || parsed.diagnostics.iter().any(Diagnostic::is_error)
        {
            render::emit_diagnostics(&new_sources, &fact_diagnostics, context.color);
            bail!(
                "internal error: the rewritten facts file `{}` does not fit the new program (a bug in graft); nothing was written",
                file.name
            );
        }
        new_facts.extend(facts);
    }
    if args.cost {
        let before = cost_of(&checked, &ir_facts)?;
        let after = cost_of(&rewritten.checked, &new_facts)?;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(
            render_cost(&before, &after, &rewritten.justification.node_map).as_bytes(),
        )?;
    }
    // Write everything, or nothing.
    for path in args.output.iter().chain(&args.justification) {
        if let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create the directory `{}`", parent.display()))?;
        }
    }
    if let Some(output) = &args.output {
        write_atomically(Path::new(output), &rewritten.text)?;
    } else if !args.cost {
        print!("{}", rewritten.text);
    }
    if let Some(path) = &args.justification {
        write_atomically(Path::new(path), &rewritten.justification.to_json())?;
    }
    if let Some(directory) = &args.facts_out {
        std::fs::create_dir_all(directory)
            .with_context(|| format!("cannot create the directory `{directory}`"))?;
        for file in &rewritten.facts {
            let base = Path::new(&file.name).file_name().map_or_else(
                || file.name.clone(),
                |name| name.to_string_lossy().into_owned(),
            );
            write_atomically(&Path::new(directory).join(base), &file.print())?;
        }
    }
    let case: Vec<String> = rewritten
        .justification
        .passes
        .iter()
        .map(|pass| match &pass.case {
            Some(case) => format!("{} ({case})", pass.request),
            None => pass.request.clone(),
        })
        .collect();
    eprintln!("applied: {}", case.join(", "));
    Ok(Outcome::Success)
}

/// Work per node of one run.
#[derive(Default, Debug, Clone)]
pub struct NodeCost {
    pub role: String,
    pub messages: u64,
    /// Distinct (destination, tick) pairs the node sent to: network exchanges.
    pub exchanges: u64,
    pub facts: u64,
}

/// Per node, and the run's length.
pub struct Cost {
    pub nodes: BTreeMap<String, NodeCost>,
    pub ticks: u64,
}

/// Runs a program on facts (until quiescence) and counts messages and derived facts per node.
pub fn cost_of(checked: &Checked, facts: &[ir::Fact]) -> anyhow::Result<Cost> {
    let evaluator = Evaluator::new(checked)?;
    let run = evaluator.run(&RunConfig::default(), facts)?;
    Ok(count(&checked.program, &run))
}

fn count(program: &ir::Program, run: &Run) -> Cost {
    let mut roles: BTreeMap<String, String> = BTreeMap::new();
    let mut nodes: BTreeMap<String, NodeCost> = BTreeMap::new();
    for tick in &run.ticks {
        for relation in &program.relations {
            if relation.origin == ir::RelationOrigin::Builtin {
                continue;
            }
            for tuple in run.facts(tick.tick, relation.id) {
                for (column, value) in relation.columns.iter().zip(tuple.iter()) {
                    if let (Type::Role(role), Value::Str(name)) = (column.ty, value) {
                        roles
                            .entry(name.to_string())
                            .or_insert_with(|| program.type_name(Type::Role(role)));
                    }
                }
                if relation.input {
                    continue;
                }
                if let Some(Value::Str(node)) = tuple.first() {
                    nodes.entry(node.to_string()).or_default().facts += 1;
                }
            }
        }
    }
    let mut exchanges: BTreeSet<(String, String, u64)> = BTreeSet::new();
    for message in &run.messages {
        if let Value::Str(sender) = &message.sender {
            nodes.entry(sender.to_string()).or_default().messages += 1;
            exchanges.insert((
                sender.to_string(),
                message.dest.to_string(),
                message.send_tick,
            ));
        }
    }
    for (sender, _, _) in exchanges {
        nodes.entry(sender).or_default().exchanges += 1;
    }
    for node in &run.nodes {
        if let Value::Str(name) = node {
            nodes.entry(name.to_string()).or_default();
        }
    }
    for (name, cost) in &mut nodes {
        cost.role = roles
            .get(name)
            .cloned()
            .unwrap_or_else(|| "node".to_owned());
    }
    Cost {
        nodes,
        ticks: run.ticks_run,
    }
}

fn per_tick(value: u64, ticks: u64) -> String {
    if ticks == 0 {
        return "0".to_owned();
    }
    #[allow(clippy::cast_precision_loss, reason = "counts are far below 2^52")]
    let ratio = value as f64 / ticks as f64;
    format!("{ratio:.2}")
}

/// The before/after table.
pub fn render_cost(before: &Cost, after: &Cost, node_map: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "cost on the workload: before {} tick(s), after {} tick(s) (until quiescence)\n\n",
        before.ticks, after.ticks
    ));
    out.push_str(
        "per role               nodes  messages  msgs/tick  exchanges  facts  facts/tick\n",
    );
    let roles = |cost: &Cost| {
        let mut roles: BTreeMap<String, (u64, u64, u64, u64)> = BTreeMap::new();
        for node in cost.nodes.values() {
            let entry = roles.entry(node.role.clone()).or_default();
            entry.0 += 1;
            entry.1 += node.messages;
            entry.2 += node.exchanges;
            entry.3 += node.facts;
        }
        roles
    };
    let (roles_before, roles_after) = (roles(before), roles(after));
    let names: BTreeSet<&String> = roles_before.keys().chain(roles_after.keys()).collect();
    for name in names {
        for (label, roles, cost) in [
            ("before", &roles_before, before),
            ("after", &roles_after, after),
        ] {
            let (nodes, messages, exchanges, facts) = roles.get(name).copied().unwrap_or_default();
            out.push_str(&format!(
                "{:<22} {nodes:>5}  {messages:>8}  {:>9}  {exchanges:>9}  {facts:>5}  {:>10}\n",
                format!("{name} ({label})"),
                per_tick(messages, cost.ticks),
                per_tick(facts, cost.ticks),
            ));
        }
    }
    out.push_str("\nper node (new nodes with the node they replace)\n");
    out.push_str(
        "node                   version  messages  msgs/tick  exchanges  facts  facts/tick\n",
    );
    for (label, cost) in [("before", before), ("after", after)] {
        for (name, node) in &cost.nodes {
            let shown = match node_map.get(name) {
                Some(old) if label == "after" => format!("{name} <- {old}"),
                _ => name.clone(),
            };
            out.push_str(&format!(
                "{shown:<22} {label:<7}  {:>8}  {:>9}  {:>9}  {:>5}  {:>10}\n",
                node.messages,
                per_tick(node.messages, cost.ticks),
                node.exchanges,
                node.facts,
                per_tick(node.facts, cost.ticks),
            ));
        }
    }
    let total = |cost: &Cost| {
        cost.nodes
            .values()
            .map(|n| (n.messages, n.exchanges, n.facts))
            .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2))
    };
    let (b, a) = (total(before), total(after));
    out.push_str(&format!(
        "\ntotal: messages {} -> {}, exchanges {} -> {}, facts {} -> {}; busiest node's facts/tick {} -> {}\n",
        b.0,
        a.0,
        b.1,
        a.1,
        b.2,
        a.2,
        per_tick(before.nodes.values().map(|n| n.facts).max().unwrap_or(0), before.ticks),
        per_tick(after.nodes.values().map(|n| n.facts).max().unwrap_or(0), after.ticks),
    ));
    out
}
