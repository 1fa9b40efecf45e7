//! `graft bench`: run versions of a protocol side by side on a generated workload of
//! realistic size on the timely runtime, and report for each its wall time, committed requests
//! per second, ticks, and the load of every node (facts derived, messages sent and received,
//! counted by the runtime), with the per-node loads drawn as an SVG bar chart.
//!
//! Versions are named as `graft test` and `graft verify` name them: a protocol directory (its
//! original program and every version under `versions/`), a version directory, or a `.graft`
//! program in one of those. The workload is the *original* program's: a workload template
//! (`crate::template`, default `DIR/bench.template`) expanded at `--scale`, plus any facts
//! files given; each rewritten version runs on that workload mapped through the passes its
//! justification records (the same rewrite `graft rewrite --facts` does), so that every
//! version serves the same requests.
//!
//! With `--model`, each version's row also shows the cost model's prediction
//! ([`crate::commands::rewrite::cost_of`], the model `graft rewrite --cost` prints) of the
//! busiest node's load per tick relative to its source, next to the ratio the runtime
//! measured, and whether the two agree within 25%.
//!
//! Everything in the report is deterministic except the timing columns (wall time, committed
//! per second and the throughput ratio).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use graft_compiler::Checked;
use graft_compiler::ir::{self, Type, Value};
use graft_eval::{RunConfig, ShowSet};
use graft_language::diagnostic::Diagnostic;
use graft_language::span::SourceMap;
use graft_rewrites::{FactsFile, PipelineError};
use serde::Serialize;

use crate::commands::fmt::write_atomically;
use crate::commands::rewrite::cost_of;
use crate::progress::{self, ProgressLine};
use crate::protocol::{self, Version, display};
use crate::template::Template;
use crate::{Context, Outcome, load, render};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// What to run: a protocol directory (every version in it), a version directory
    /// (`DIR/versions/NAME`), or a `.graft` program in one of them. Versions of several
    /// protocols may be given; each protocol gets its own workload.
    #[arg(value_name = "VERSION", required = true)]
    pub versions: Vec<String>,
    /// The original program's workload: a workload template (`.template`, see docs/bench.md)
    /// and/or facts files. Default: the protocol directory's `bench.template`.
    #[arg(long = "facts", value_name = "FILE")]
    pub facts: Vec<String>,
    /// The template's scale N (default: the template's `scale`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub scale: Option<u64>,
    /// Timely worker threads.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub workers: u64,
    /// The relation whose distinct rows count as committed requests (default: the template's
    /// `committed`).
    #[arg(long, value_name = "RELATION")]
    pub committed: Option<String>,
    /// The most ticks a run may take before it is cut (reported as capped).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_ticks: u64,
    /// Run each version this many times and report its fastest run (the loads are the same
    /// on every run); a busy machine's noise only ever slows a run down.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub repeat: u64,
    /// Also run the cost model (the reference evaluator, on the same workload) and print its
    /// predicted load ratio next to the measured one.
    #[arg(long)]
    pub model: bool,
    /// Write the report (`bench.txt` or `bench.json`) and the per-node load chart
    /// (`loads.svg`) into this directory.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: Option<String>,
    /// Text (tables) or JSON.
    #[arg(long, value_enum, default_value_t = BenchFormat::Text)]
    pub format: BenchFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchFormat {
    Text,
    Json,
}

/// The bench of every protocol named.
#[derive(Debug, Serialize)]
pub struct Report {
    pub format: &'static str,
    pub workers: u64,
    pub protocols: Vec<ProtocolBench>,
}

/// One protocol's versions on one workload.
#[derive(Debug, Serialize)]
pub struct ProtocolBench {
    pub protocol: String,
    pub workload: String,
    pub scale: u64,
    pub committed_relation: String,
    /// Workload facts given to the original program.
    pub requests: usize,
    pub versions: Vec<VersionBench>,
}

/// One version's run.
#[derive(Debug, Serialize)]
pub struct VersionBench {
    pub version: String,
    pub program: String,
    /// The version it is compared with (its source, or the first version benched).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compared_with: Option<String>,
    pub ticks: u64,
    pub capped: bool,
    pub committed: usize,
    pub busiest_node: String,
    pub busiest_load: u64,
    pub total_load: u64,
    /// The load each worker carried (the sum over its nodes), by worker index.
    pub worker_loads: Vec<u64>,
    pub nodes: Vec<NodeBench>,
    /// The busiest load of the compared version divided by this one's, per tick.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured_load_ratio: Option<f64>,
    /// The busiest worker's load (the sum over its nodes) of the compared version divided by
    /// this one's, per tick: the speed-up the wall clock can show when each worker's time
    /// follows its load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_load_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelBench>,
    /// Timing: the only figures that vary between runs.
    pub timing: Timing,
}

#[derive(Debug, Serialize)]
pub struct Timing {
    pub wall_seconds: f64,
    pub committed_per_second: f64,
    /// Committed per second relative to the compared version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput_ratio: Option<f64>,
}

/// The cost model's view of the same run.
#[derive(Debug, Serialize)]
pub struct ModelBench {
    pub ticks: u64,
    pub busiest_node: String,
    /// The model's load of the busiest node: facts derived plus messages sent and received.
    pub busiest_load: u64,
    /// The compared version's busiest load per tick divided by this one's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted_load_ratio: Option<f64>,
    /// `|predicted / measured - 1| <= 0.25`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub within_25_percent: Option<bool>,
    /// The model's count of every node that works, by name: to set beside the runtime's
    /// counts in [`VersionBench::nodes`].
    pub nodes: Vec<ModelNode>,
}

/// The cost model's count of one node.
#[derive(Clone, Debug, Serialize)]
pub struct ModelNode {
    pub node: String,
    pub facts_derived: u64,
    pub messages_sent: u64,
    pub messages_received: u64,
    pub load: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct NodeBench {
    pub node: String,
    /// The timely worker that ran the node.
    pub worker: usize,
    pub facts_derived: u64,
    pub messages_sent: u64,
    pub messages_received: u64,
    pub load: u64,
}

/// A version ready to run: its checked program and its facts.
struct Prepared {
    checked: Checked,
    facts: Vec<ir::Fact>,
    /// The facts as the rewrite passes carry them (to map to versions derived from this one).
    files: Vec<FactsFile>,
}

pub fn run(context: &Context, args: &BenchArgs) -> anyhow::Result<Outcome> {
    let groups = group_versions(&args.versions)?;
    if groups.len() > 1 && !args.facts.is_empty() {
        bail!(
            "--facts gives one protocol's workload, but the versions named belong to {} protocols; bench them one protocol at a time, or drop --facts to use each protocol's bench.template",
            groups.len()
        );
    }
    let workers = usize::try_from(args.workers).context("--workers is too large")?;
    let mut report = Report {
        format: "graft-bench/1",
        workers: args.workers,
        protocols: Vec::new(),
    };
    // Progress on a terminal: versions benched so far, and the one running now.
    let mut progress = ProgressLine::new(
        "bench",
        "versions",
        progress::wanted(args.format == BenchFormat::Json),
    );
    for (root, chosen) in &groups {
        let benched = bench_protocol(context, args, root, chosen, workers, &mut progress);
        match benched {
            Ok(Some(bench)) => report.protocols.push(bench),
            Ok(None) => {
                progress.finish();
                return Ok(Outcome::ProgramErrors);
            }
            Err(error) => {
                progress.finish();
                return Err(error);
            }
        }
    }
    progress.finish();
    let text = match args.format {
        BenchFormat::Text => render_text(&report),
        BenchFormat::Json => format!("{}\n", serde_json::to_string_pretty(&report)?),
    };
    if let Some(directory) = &args.output {
        let directory = Path::new(directory);
        std::fs::create_dir_all(directory)
            .with_context(|| format!("cannot create the directory `{}`", display(directory)))?;
        let name = match args.format {
            BenchFormat::Text => "bench.txt",
            BenchFormat::Json => "bench.json",
        };
        write_atomically(&directory.join("loads.svg"), &render_svg(&report))?;
        write_atomically(&directory.join(name), &text)?;
    }
    print!("{text}");
    Ok(Outcome::Success)
}

/// The protocol directory of each version named, with the versions chosen in it (indexes into
/// [`protocol::versions`]), in the order first named.
fn group_versions(named: &[String]) -> anyhow::Result<Vec<(PathBuf, Vec<usize>)>> {
    let mut groups: Vec<(PathBuf, Vec<usize>)> = Vec::new();
    for name in named {
        let path = Path::new(name);
        if !path.exists() {
            bail!(
                "`{name}` does not exist: name a protocol directory (e.g. examples/voting), a version directory (e.g. examples/voting/versions/decouple-collector) or a .graft program in one"
            );
        }
        let (root, program) = locate(path)?;
        let versions = protocol::versions(&root)?;
        let chosen: Vec<usize> = match &program {
            None => (0..versions.len()).collect(),
            Some(program) => {
                let wanted = canonical(program)?;
                let mut found = None;
                for (index, version) in versions.iter().enumerate() {
                    if canonical(&version.program)? == wanted {
                        found = Some(index);
                    }
                }
                match found {
                    Some(index) => vec![index],
                    None => bail!(
                        "`{name}` is not a version of the protocol `{}` (its versions: {})",
                        display(&root),
                        versions
                            .iter()
                            .map(|version| version.name(&root))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            }
        };
        let canonical_root = canonical(&root)?;
        let mut placed = false;
        for (other, indexes) in &mut groups {
            if canonical(other)? == canonical_root {
                for index in &chosen {
                    if !indexes.contains(index) {
                        indexes.push(*index);
                    }
                }
                placed = true;
            }
        }
        if !placed {
            groups.push((root, chosen));
        }
    }
    Ok(groups)
}

fn canonical(path: &Path) -> anyhow::Result<PathBuf> {
    path.canonicalize()
        .with_context(|| format!("cannot resolve `{}`", display(path)))
}

/// The protocol directory a named version belongs to, and its program (`None`: every version
/// of the directory).
fn locate(path: &Path) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
    let (directory, program) = if path.is_dir() {
        (path.to_path_buf(), None)
    } else if path.extension().is_some_and(|e| e == "graft") {
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        (parent, Some(path.to_path_buf()))
    } else {
        bail!(
            "`{}` is neither a directory nor a .graft program",
            display(path)
        );
    };
    // A version directory: DIR/versions/NAME with a justification record.
    if directory.join("justification.json").is_file() {
        let root = directory
            .parent()
            .filter(|p| p.file_name().is_some_and(|n| n == "versions"))
            .and_then(Path::parent)
            // `versions/NAME` relative to the working directory: the protocol is `.`.
            .map(|p| {
                if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_path_buf()
                }
            });
        let Some(root) = root else {
            bail!(
                "`{}` holds a justification record but is not under a protocol's `versions/` directory",
                display(&directory)
            );
        };
        let program = match program {
            Some(program) => program,
            None => {
                let programs = protocol::list(&directory, "graft")?;
                let [program] = programs.as_slice() else {
                    bail!(
                        "`{}` must hold exactly one .graft program",
                        display(&directory)
                    );
                };
                program.clone()
            }
        };
        return Ok((root, Some(program)));
    }
    if !protocol::is_protocol(&directory) {
        bail!(
            "`{}` holds no .graft program: name a protocol directory, a version directory or a .graft program in one",
            display(&directory)
        );
    }
    Ok((directory, program))
}

/// Benches the chosen versions of the protocol at `root`; `None` when diagnostics were printed.
fn bench_protocol(
    context: &Context,
    args: &BenchArgs,
    root: &Path,
    chosen: &[usize],
    workers: usize,
    progress: &mut ProgressLine,
) -> anyhow::Result<Option<ProtocolBench>> {
    let versions = protocol::versions(root)?;
    let Some(original) = versions.iter().position(|v| v.justification.is_none()) else {
        bail!("`{}` has no original program", display(root));
    };
    // The workload: template(s) and facts files of the original.
    let mut templates = Vec::new();
    let mut facts_paths = Vec::new();
    let given: Vec<String> = if args.facts.is_empty() {
        let default = root.join("bench.template");
        if !default.is_file() {
            bail!(
                "`{}` has no bench.template: give the workload with --facts TEMPLATE (see docs/bench.md)",
                display(root)
            );
        }
        vec![default.to_string_lossy().into_owned()]
    } else {
        args.facts.clone()
    };
    for path in &given {
        if Path::new(path).extension().is_some_and(|e| e == "template") {
            templates.push(path.clone());
        } else {
            facts_paths.push(path.clone());
        }
    }
    let mut committed = args.committed.clone();
    let mut scale = args.scale;
    let mut sources = SourceMap::new();
    let mut topology_texts: Vec<(String, String)> = Vec::new();
    let mut workload_texts: Vec<(String, String, Vec<usize>)> = Vec::new();
    for path in &templates {
        let text = load::read_text(path)?;
        let template = Template::parse(&text)
            .map_err(|problem| anyhow::anyhow!("the workload template `{path}`, {problem}"))?;
        if committed.is_none() {
            committed.clone_from(&template.committed);
        }
        let scale_here = scale
            .or(template.default_scale)
            .with_context(|| format!("`{path}` gives no default `scale`: give --scale N"))?;
        scale = Some(scale_here);
        let base = Path::new(path).parent().unwrap_or(Path::new("."));
        for include in &template.includes {
            let included = base.join(include);
            let included = included.to_string_lossy().into_owned();
            let text = load::read_text(&included)
                .with_context(|| format!("`{path}` includes `{include}`"))?;
            topology_texts.push((included, text));
        }
        let expansion = template
            .expand(scale_here)
            .map_err(|problem| anyhow::anyhow!("the workload template `{path}`, {problem}"))?;
        if !expansion.topology.is_empty() {
            topology_texts.push((
                format!("{path} (topology at scale {scale_here})"),
                expansion.topology,
            ));
        }
        workload_texts.push((
            format!("{path} (workload at scale {scale_here})"),
            expansion.workload,
            expansion.workload_lines,
        ));
    }
    for path in &facts_paths {
        let text = load::read_text(path)?;
        let base = Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if base.starts_with("workload") {
            workload_texts.push((path.clone(), text, Vec::new()));
        } else {
            topology_texts.push((path.clone(), text));
        }
    }
    let Some(committed) = committed else {
        bail!(
            "no relation counts as committed: give --committed RELATION or a `committed` line in the template"
        );
    };
    // The original, with its workload checked.
    let original_version = &versions[original];
    let program_path = original_version.program.to_string_lossy().into_owned();
    let mut loaded = load::load(std::slice::from_ref(&program_path))?;
    let checked = graft_compiler::check(&loaded.sources, &loaded.files);
    let mut diagnostics: Vec<Diagnostic> = loaded.diagnostics.clone();
    diagnostics.extend(checked.diagnostics.iter().cloned());
    if diagnostics.iter().any(Diagnostic::is_error) {
        render::emit_diagnostics(&loaded.sources, &diagnostics, context.color);
        eprintln!("{}; nothing was run", render::count_line(&diagnostics));
        return Ok(None);
    }
    std::mem::swap(&mut sources, &mut loaded.sources);
    let program = &checked.program;
    if program.relation_by_name(&committed).is_none() {
        bail!(
            "the committed relation `{committed}` is not a relation of `{}`",
            display(&original_version.program)
        );
    }
    let mut topology_facts = Vec::new();
    let mut workload_facts = Vec::new();
    let mut workload_lines = Vec::new();
    for (name, text) in &topology_texts {
        let (facts, problems) = check_text_facts(&mut sources, program, name, text);
        diagnostics.extend(problems);
        topology_facts.extend(facts);
    }
    for (name, text, lines) in &workload_texts {
        let (facts, problems) = check_text_facts(&mut sources, program, name, text);
        diagnostics.extend(problems);
        let mut lines = lines.clone();
        lines.resize(facts.len(), 0);
        workload_lines.extend(lines);
        workload_facts.extend(facts);
    }
    if diagnostics.iter().any(Diagnostic::is_error) {
        render::emit_diagnostics(&sources, &diagnostics, context.color);
        eprintln!(
            "{} in the workload; nothing was run",
            render::count_line(&diagnostics)
        );
        return Ok(None);
    }
    if workload_facts.is_empty() {
        bail!(
            "the workload has no traffic: at scale {} it gives no workload fact (only topology); give a template whose `for` loops produce requests",
            scale.unwrap_or(0)
        );
    }
    check_workload_nodes(program, &topology_facts, &workload_facts, &workload_lines)?;
    let workload_name = given.join(", ");
    let scale = scale.unwrap_or(1);
    let requests = workload_facts.len();
    let files = vec![
        facts_file(program, "topology.facts", &topology_facts),
        facts_file(program, "workload.facts", &workload_facts),
    ];
    let mut facts = topology_facts;
    facts.extend(workload_facts);
    let mut prepared: BTreeMap<usize, Prepared> = BTreeMap::new();
    prepared.insert(
        original,
        Prepared {
            checked,
            facts,
            files,
        },
    );
    let mut results: Vec<(usize, VersionBench, Option<ModelRaw>, f64)> = Vec::new();
    let mut done = progress.count();
    for &index in chosen {
        prepare(&versions, index, &mut prepared, root)?;
        let version = &versions[index];
        let ready = &prepared[&index];
        let name = version.name(root);
        progress.update(
            done,
            &format!("now {name} of {}, {workers} worker(s)", display(root)),
        );
        let (bench, per_tick) =
            run_version(ready, &committed, &name, version, root, workers, args)?;
        done += 1;
        let model = if args.model {
            Some(model_of(ready)?)
        } else {
            None
        };
        results.push((index, bench, model, per_tick));
    }
    progress.update(done, &format!("{} done", display(root)));
    // Ratios against the version each is compared with: its source when benched, else the
    // first version benched.
    let first = results.first().map(|(index, ..)| *index);
    let mut out = Vec::new();
    let busiest_worker = |bench: &VersionBench| {
        let busiest = bench.worker_loads.iter().copied().max().unwrap_or(0);
        busiest as f64 / bench.ticks.max(1) as f64
    };
    let lookup: BTreeMap<usize, (f64, f64, Option<f64>, f64)> = results
        .iter()
        .map(|(index, bench, model, per_tick)| {
            (
                *index,
                (
                    *per_tick,
                    bench.timing.committed_per_second,
                    model.as_ref().map(|m| m.per_tick),
                    busiest_worker(bench),
                ),
            )
        })
        .collect();
    for (index, mut bench, model, per_tick) in results {
        let compared = protocol::source_of(&versions, &versions[index])
            .filter(|source| lookup.contains_key(source))
            .or(first.filter(|first| *first != index));
        let mut model_bench = model.map(|model| ModelBench {
            ticks: model.ticks,
            busiest_node: model.busiest_node,
            busiest_load: model.busiest_load,
            predicted_load_ratio: None,
            within_25_percent: None,
            nodes: model.nodes,
        });
        if let Some(compared) = compared
            && let Some((their_per_tick, their_rate, their_model, their_worker)) =
                lookup.get(&compared)
        {
            bench.compared_with = Some(versions[compared].name(root));
            let measured = ratio(*their_per_tick, per_tick);
            bench.measured_load_ratio = measured;
            bench.worker_load_ratio = ratio(*their_worker, busiest_worker(&bench));
            bench.timing.throughput_ratio = ratio(bench.timing.committed_per_second, *their_rate);
            if let Some(model_bench) = &mut model_bench
                && let (Some(theirs), Some(ours)) = (their_model, lookup[&index].2)
            {
                let predicted = ratio(*theirs, ours);
                model_bench.predicted_load_ratio = predicted;
                model_bench.within_25_percent = predicted
                    .zip(measured)
                    .map(|(predicted, measured)| (predicted / measured - 1.0).abs() <= 0.25);
            }
        }
        bench.model = model_bench;
        out.push(bench);
    }
    Ok(Some(ProtocolBench {
        protocol: display(root),
        workload: workload_name,
        scale,
        committed_relation: committed,
        requests,
        versions: out,
    }))
}

/// `a / b`, rounded to 3 decimals so that it prints the same everywhere; `None` when `b` is 0.
fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| ((a / b) * 1000.0).round() / 1000.0)
}

/// Parses and checks facts given as text against `program`.
fn check_text_facts(
    sources: &mut SourceMap,
    program: &ir::Program,
    name: &str,
    text: &str,
) -> (Vec<ir::Fact>, Vec<Diagnostic>) {
    let id = sources.add(name.to_owned(), text.to_owned());
    let parsed = graft_language::parse(id, text);
    let mut diagnostics = parsed.diagnostics;
    let (facts, problems) =
        graft_compiler::check_facts(program, std::slice::from_ref(&parsed.file));
    diagnostics.extend(problems);
    (facts, diagnostics)
}

fn facts_file(program: &ir::Program, name: &str, facts: &[ir::Fact]) -> FactsFile {
    FactsFile {
        name: name.to_owned(),
        facts: facts
            .iter()
            .map(|fact| graft_rewrites::draft::fact_of(program, fact))
            .collect(),
        generated: Vec::new(),
    }
}

/// The nodes the topology names (values in location, node and role columns).
fn nodes_of(program: &ir::Program, facts: &[ir::Fact]) -> BTreeSet<String> {
    let mut nodes = BTreeSet::new();
    for fact in facts {
        let relation = program.relation(fact.rel);
        for (column, value) in fact.values.iter().enumerate() {
            let is_node = column == 0
                || relation
                    .columns
                    .get(column)
                    .is_some_and(|c| matches!(c.ty, Type::Node | Type::Role(_)));
            if let (true, Value::Str(name)) = (is_node, value) {
                nodes.insert(name.to_string());
            }
        }
    }
    nodes
}

/// Every workload fact must be located at a node the topology names.
fn check_workload_nodes(
    program: &ir::Program,
    topology: &[ir::Fact],
    workload: &[ir::Fact],
    lines: &[usize],
) -> anyhow::Result<()> {
    let nodes = nodes_of(program, topology);
    if nodes.is_empty() {
        bail!(
            "the workload has no topology: no topology fact names a node (mark topology facts with `topology` in the template, or `include` a topology file)"
        );
    }
    for (index, fact) in workload.iter().enumerate() {
        let Some(Value::Str(node)) = fact.values.first() else {
            continue;
        };
        if !nodes.contains(node.as_ref()) {
            let relation = &program.relation(fact.rel).name;
            let at = match lines.get(index) {
                Some(line) if *line > 0 => format!(" (template line {line})"),
                _ => String::new(),
            };
            bail!(
                "the workload fact {}{at} is located at `{node}`, which no topology fact names (nodes: {}); fix the template or add the node to the topology",
                graft_eval::render_fact(relation, &fact.values, fact.tick).trim_end_matches(';'),
                nodes.iter().cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    Ok(())
}

/// Makes sure `prepared` holds the version at `index`: its program checked and the original's
/// workload mapped to it through the passes of its justification (from its source, prepared
/// first).
fn prepare(
    versions: &[Version],
    index: usize,
    prepared: &mut BTreeMap<usize, Prepared>,
    root: &Path,
) -> anyhow::Result<()> {
    if prepared.contains_key(&index) {
        return Ok(());
    }
    let version = &versions[index];
    let name = version.name(root);
    let Some(justification) = &version.justification else {
        bail!("`{name}` is a second original program; bench one original at a time");
    };
    let Some(source) = protocol::source_of(versions, version) else {
        bail!(
            "the source of `{name}` (content hash {}) is not a program of `{}`: its justification no longer matches the files, so the workload cannot be mapped to it",
            justification.source.hash,
            display(root)
        );
    };
    if source == index {
        bail!("`{name}` names itself as its source");
    }
    prepare(versions, source, prepared, root)?;
    let from = &prepared[&source];
    let mut passes = Vec::new();
    for pass in &justification.passes {
        passes.push(graft_rewrites::parse_pass(&pass.request).with_context(|| {
            format!(
                "`{name}`'s justification records the pass `{}`",
                pass.request
            )
        })?);
    }
    let rewritten = match graft_rewrites::rewrite(
        &from.checked,
        &justification.source,
        from.files.clone(),
        &passes,
    ) {
        Ok(rewritten) => rewritten,
        Err(PipelineError::Refused { refusal, .. }) => bail!(
            "mapping the workload to `{name}`: its pass `{}` no longer applies to its source ({}); regenerate the version with graft rewrite",
            refusal.pass,
            refusal.names().join(", ")
        ),
        Err(PipelineError::Internal { step, .. }) => bail!(
            "internal error: mapping the workload to `{name}`, pass {} produced a program that does not check (a bug in graft)",
            step + 1
        ),
    };
    if graft_rewrites::content_hash(rewritten.text.as_bytes()) != version.hash {
        bail!(
            "`{}` is not what its justification's passes make of its source (edited since `graft rewrite` wrote it?); the workload is mapped through those passes, so regenerate the version with graft rewrite",
            display(&version.program)
        );
    }
    let mut sources = SourceMap::new();
    let mut facts = Vec::new();
    for file in &rewritten.facts {
        let (checked_facts, problems) = check_text_facts(
            &mut sources,
            &rewritten.checked.program,
            &file.name,
            &file.print(),
        );
        if problems.iter().any(Diagnostic::is_error) {
            bail!(
                "internal error: the workload mapped to `{name}` does not fit it (a bug in graft):\n{}",
                render::diagnostics_to_string(&sources, &problems)
            );
        }
        facts.extend(checked_facts);
    }
    prepared.insert(
        index,
        Prepared {
            checked: rewritten.checked,
            facts,
            files: rewritten.facts,
        },
    );
    Ok(())
}

/// Runs one version on the runtime; its bench and its busiest load per tick.
fn run_version(
    ready: &Prepared,
    committed: &str,
    name: &str,
    version: &Version,
    root: &Path,
    workers: usize,
    args: &BenchArgs,
) -> anyhow::Result<(VersionBench, f64)> {
    let program = &ready.checked.program;
    let Some(rel) = program.relation_by_name(committed) else {
        bail!("the committed relation `{committed}` is not a relation of the version `{name}`");
    };
    let show = ShowSet::Relations(BTreeSet::from([rel]));
    let config = RunConfig {
        max_ticks: args.max_ticks,
        ..RunConfig::default()
    };
    let mut fastest: Option<(f64, graft_runtime::CountedRun)> = None;
    for _ in 0..args.repeat {
        let start = Instant::now();
        let runtime = graft_runtime::Runtime::new(&ready.checked)?;
        let counted = runtime
            .run_counting_loads(&config, &ready.facts, &show, workers)
            .with_context(|| format!("running `{name}`"))?;
        let wall = start.elapsed().as_secs_f64();
        if fastest.as_ref().is_none_or(|(best, _)| wall < *best) {
            fastest = Some((wall, counted));
        }
    }
    let Some((wall, counted)) = fastest else {
        bail!("--repeat must be at least 1");
    };
    let committed_rows = counted.held.len();
    let mut nodes: Vec<NodeBench> = counted
        .loads
        .iter()
        .map(|(node, load)| NodeBench {
            node: node.clone(),
            worker: load.worker,
            facts_derived: load.facts_derived,
            messages_sent: load.messages_sent,
            messages_received: load.messages_received,
            load: load.facts_derived + load.messages_sent + load.messages_received,
        })
        .collect();
    nodes.sort_by(|a, b| a.node.cmp(&b.node));
    let messages: u64 = nodes.iter().map(|node| node.messages_sent).sum();
    if messages == 0 {
        bail!(
            "the workload has no traffic: running `{name}` on it sent no message (check that the template's requests reach nodes that take part in the protocol)"
        );
    }
    let busiest = nodes
        .iter()
        .max_by(|a, b| a.load.cmp(&b.load).then_with(|| b.node.cmp(&a.node)))
        .cloned();
    let (busiest_node, busiest_load) =
        busiest.map_or((String::new(), 0), |node| (node.node, node.load));
    let ticks = counted.ticks_run.max(1);
    #[allow(
        clippy::cast_precision_loss,
        reason = "loads and ticks are far below 2^52"
    )]
    let per_tick = busiest_load as f64 / ticks as f64;
    #[allow(clippy::cast_precision_loss, reason = "row counts are far below 2^52")]
    let rate = if wall > 0.0 {
        committed_rows as f64 / wall
    } else {
        0.0
    };
    Ok((
        VersionBench {
            version: name.to_owned(),
            program: display(
                version
                    .program
                    .strip_prefix(root.parent().unwrap_or(Path::new("")))
                    .unwrap_or(&version.program),
            ),
            compared_with: None,
            ticks: counted.ticks_run,
            capped: counted.capped,
            committed: committed_rows,
            busiest_node,
            busiest_load,
            total_load: nodes.iter().map(|node| node.load).sum(),
            worker_loads: (0..workers)
                .map(|worker| {
                    nodes
                        .iter()
                        .filter(|node| node.worker == worker)
                        .map(|node| node.load)
                        .sum()
                })
                .collect(),
            nodes,
            measured_load_ratio: None,
            worker_load_ratio: None,
            model: None,
            timing: Timing {
                wall_seconds: (wall * 1000.0).round() / 1000.0,
                committed_per_second: rate.round(),
                throughput_ratio: None,
            },
        },
        per_tick,
    ))
}

/// What the cost model says of one version.
struct ModelRaw {
    ticks: u64,
    busiest_node: String,
    busiest_load: u64,
    per_tick: f64,
    nodes: Vec<ModelNode>,
}

fn model_of(ready: &Prepared) -> anyhow::Result<ModelRaw> {
    let cost = cost_of(&ready.checked, &ready.facts)?;
    // The shared model's bottleneck (facts derived, messages sent and received), as
    // `graft rewrite --cost` and `graft optimize` see it.
    let busiest = cost
        .bottleneck()
        .map_or((String::new(), 0), |(name, node)| {
            (name.to_owned(), node.load())
        });
    let ticks = cost.ticks.max(1);
    #[allow(
        clippy::cast_precision_loss,
        reason = "loads and ticks are far below 2^52"
    )]
    let per_tick = busiest.1 as f64 / ticks as f64;
    let nodes = cost
        .nodes
        .iter()
        .filter(|(_, node)| node.load() > 0)
        .map(|(name, node)| ModelNode {
            node: name.clone(),
            facts_derived: node.facts,
            messages_sent: node.messages,
            messages_received: node.received,
            load: node.load(),
        })
        .collect();
    Ok(ModelRaw {
        ticks: cost.ticks,
        busiest_node: busiest.0,
        busiest_load: busiest.1,
        per_tick,
        nodes,
    })
}

/// How many nodes per version the text report and the chart show: the busiest ones (the JSON
/// report has them all).
pub const SHOWN_NODES: usize = 24;

/// The busiest [`SHOWN_NODES`] nodes of a version in name order, and how many others there are
/// with the largest load among them.
fn shown_nodes(version: &VersionBench) -> (Vec<&NodeBench>, usize, u64) {
    let mut by_load: Vec<&NodeBench> = version.nodes.iter().collect();
    by_load.sort_by(|a, b| b.load.cmp(&a.load).then_with(|| a.node.cmp(&b.node)));
    let rest = by_load.split_off(by_load.len().min(SHOWN_NODES));
    by_load.sort_by(|a, b| a.node.cmp(&b.node));
    let most = rest.iter().map(|node| node.load).max().unwrap_or(0);
    (by_load, rest.len(), most)
}

fn show_ratio(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "-".to_owned(), |ratio| format!("{ratio:.2}x"))
}

/// The text report: per protocol, a table of versions, then every version's per-node loads.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    for bench in &report.protocols {
        let _ = writeln!(
            out,
            "graft bench {}: workload {} at scale {} ({} workload facts), {} worker(s); committed = rows of `{}`",
            bench.protocol,
            bench.workload,
            bench.scale,
            bench.requests,
            report.workers,
            bench.committed_relation
        );
        let _ = writeln!(
            out,
            "\n{:<30} {:>6} {:>10} {:>10} {:>12} {:>10}  {:<22} {:>10} {:>10} {:>12}",
            "version",
            "ticks",
            "committed",
            "wall (s)",
            "committed/s",
            "speed-up",
            "busiest node",
            "its load",
            "load ratio",
            "worker ratio"
        );
        for version in &bench.versions {
            let _ = writeln!(
                out,
                "{:<30} {:>6} {:>10} {:>10.3} {:>12.0} {:>10}  {:<22} {:>10} {:>10} {:>12}",
                version.version,
                if version.capped {
                    format!("{}+", version.ticks)
                } else {
                    version.ticks.to_string()
                },
                version.committed,
                version.timing.wall_seconds,
                version.timing.committed_per_second,
                show_ratio(version.timing.throughput_ratio),
                version.busiest_node,
                version.busiest_load,
                show_ratio(version.measured_load_ratio),
                show_ratio(version.worker_load_ratio),
            );
        }
        out.push_str(
            "\nspeed-up: committed/s against the version compared with (its source); load ratio: that version's busiest load per tick over this one's (higher is better); worker ratio: the same for the busiest worker's load (its nodes' sum), the speed-up the wall clock can show if each worker's time follows its load. Only wall (s), committed/s and speed-up vary between runs.\n",
        );
        if bench.versions.iter().any(|version| version.model.is_some()) {
            let _ = writeln!(
                out,
                "\ncost model (graft rewrite --cost) against the runtime\n{:<30} {:<26} {:<22} {:>10} {:>10} {:>10}",
                "version",
                "compared with",
                "model's busiest",
                "predicted",
                "measured",
                "within 25%"
            );
            for version in &bench.versions {
                let Some(model) = &version.model else {
                    continue;
                };
                let _ = writeln!(
                    out,
                    "{:<30} {:<26} {:<22} {:>10} {:>10} {:>10}",
                    version.version,
                    version.compared_with.as_deref().unwrap_or("-"),
                    format!("{} ({})", model.busiest_node, model.busiest_load),
                    show_ratio(model.predicted_load_ratio),
                    show_ratio(version.measured_load_ratio),
                    match model.within_25_percent {
                        Some(true) => "yes",
                        Some(false) => "no",
                        None => "-",
                    }
                );
            }
        }
        for version in &bench.versions {
            let _ = writeln!(
                out,
                "\nper-node load of {} ({} tick(s)): facts derived + messages sent + received; per worker: {}",
                version.version,
                version.ticks,
                version
                    .worker_loads
                    .iter()
                    .enumerate()
                    .map(|(worker, load)| format!("{worker}: {load}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            // With --model, the model's load of each node beside the runtime's.
            let modelled: Option<BTreeMap<&str, u64>> = version.model.as_ref().map(|model| {
                model
                    .nodes
                    .iter()
                    .map(|node| (node.node.as_str(), node.load))
                    .collect()
            });
            let _ = write!(
                out,
                "{:<26} {:>6} {:>12} {:>10} {:>10} {:>12}",
                "node", "worker", "facts", "sent", "received", "load"
            );
            if modelled.is_some() {
                let _ = write!(out, " {:>12}", "model's load");
            }
            out.push('\n');
            let (shown, others, most) = shown_nodes(version);
            for node in shown {
                let _ = write!(
                    out,
                    "{:<26} {:>6} {:>12} {:>10} {:>10} {:>12}",
                    node.node,
                    node.worker,
                    node.facts_derived,
                    node.messages_sent,
                    node.messages_received,
                    node.load
                );
                if let Some(modelled) = &modelled {
                    let load = modelled.get(node.node.as_str()).copied().unwrap_or(0);
                    let _ = write!(out, " {load:>12}");
                }
                out.push('\n');
            }
            if others > 0 {
                let _ = writeln!(
                    out,
                    "... and {others} other node(s), each with a load of at most {most} (all in --format json)"
                );
            }
        }
        out.push('\n');
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The per-node loads as horizontal stacked bars (facts, sent, received), one panel per
/// version (its [`SHOWN_NODES`] busiest nodes), scaled per protocol to its largest load. Contains no timing figure, so it is the
/// same on every run.
pub fn render_svg(report: &Report) -> String {
    const WIDTH: u64 = 900;
    const LABEL: u64 = 190;
    const BAR: u64 = 16;
    const GAP: u64 = 4;
    let colours = [
        ("facts derived", "#4e79a7"),
        ("messages sent", "#f28e2b"),
        ("messages received", "#59a14f"),
    ];
    let mut body = String::new();
    let mut y = 20_u64;
    for bench in &report.protocols {
        let most = bench
            .versions
            .iter()
            .flat_map(|version| version.nodes.iter().map(|node| node.load))
            .max()
            .unwrap_or(0)
            .max(1);
        let span = WIDTH - LABEL - 90;
        let _ = writeln!(
            body,
            r#"<text x="10" y="{y}" font-weight="bold">{} — {} at scale {}</text>"#,
            escape(&bench.protocol),
            escape(&bench.workload),
            bench.scale
        );
        y += 8;
        for version in &bench.versions {
            y += 18;
            let _ = writeln!(
                body,
                r#"<text x="10" y="{y}" font-style="italic">{} (busiest: {})</text>"#,
                escape(&version.version),
                escape(&version.busiest_node)
            );
            y += 6;
            let (shown, others, others_most) = shown_nodes(version);
            for node in shown {
                let top = y;
                let _ = writeln!(
                    body,
                    r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                    LABEL - 6,
                    top + BAR - 4,
                    escape(&node.node)
                );
                let mut x = LABEL;
                for ((label, colour), value) in colours.iter().zip([
                    node.facts_derived,
                    node.messages_sent,
                    node.messages_received,
                ]) {
                    let width = value * span / most;
                    if width > 0 {
                        let _ = writeln!(
                            body,
                            r#"<rect x="{x}" y="{top}" width="{width}" height="{BAR}" fill="{colour}"><title>{}: {label} {value}</title></rect>"#,
                            escape(&node.node)
                        );
                    }
                    x += width;
                }
                let _ = writeln!(
                    body,
                    r#"<text x="{}" y="{}">{}</text>"#,
                    x + 4,
                    top + BAR - 4,
                    node.load
                );
                y += BAR + GAP;
            }
            if others > 0 {
                y += 12;
                let _ = writeln!(
                    body,
                    r#"<text x="{LABEL}" y="{y}">… and {others} other node(s), each with a load of at most {others_most}</text>"#
                );
            }
        }
        y += 24;
    }
    let mut legend = String::new();
    for (index, (label, colour)) in colours.iter().enumerate() {
        let x = 10 + 200 * index as u64;
        let _ = writeln!(
            legend,
            r#"<rect x="{x}" y="{y}" width="12" height="12" fill="{colour}"/><text x="{}" y="{}">{label}</text>"#,
            x + 16,
            y + 11
        );
    }
    let height = y + 30;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{body}{legend}</svg>\n"
    )
}
