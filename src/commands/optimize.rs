//! `graft optimize`: search sequences of rewrites for the version the cost model predicts to be
//! fastest under a machine budget ([`graft_rewrites::search`]), print the plan, and write the
//! best version as a protocol directory that `graft test` accepts.
//!
//! The planner is pure; this command gives it its evaluator: each candidate version runs on
//! the workload with the reference evaluator, is counted by the shared cost model
//! ([`crate::cost`]), and its outputs are compared with the source's through its
//! justification, as `graft test` compares them (a version whose outputs differ, or whose
//! assumed keys break, is dropped). Nothing is written unless a version beats the source;
//! the output directory is assembled next to its destination and renamed into place, so it is
//! never left half-written.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use graft_compiler::ir;
use graft_eval::{Evaluator, RunConfig, ShowSet};
use graft_language::diagnostic::Diagnostic;
use graft_rewrites::compare::{self, OutputFact};
use graft_rewrites::cost::{Cost, factor};
use graft_rewrites::justification::Predicted;
use graft_rewrites::search::{self, Budget, Evaluation, Objective, SearchError, Step};
use graft_rewrites::{Rewritten, SourceRef};

use crate::commands::fmt::write_atomically;
use crate::commands::rewrite::{
    QuorumBounds, RewriteInput, load_input, record_verified, verify_quorum_change,
};
use crate::commands::test;
use crate::cost::count;
use crate::progress::{self, ProgressLine};
use crate::protocol::display;
use crate::{Context, Outcome};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ObjectiveArg {
    /// Minimise the bottleneck's load: facts derived, messages sent and received by the
    /// busiest node.
    Throughput,
    /// Minimise network exchanges (messages between a sender and a destination at one tick;
    /// a batch counts once), then tuples sent.
    Messages,
}

#[derive(Args, Debug)]
pub struct OptimizeArgs {
    /// The program's files (together one program).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<String>,
    /// Topology and workload files: the workload the cost model measures. Required.
    #[arg(long = "facts", value_name = "FILE", required = true)]
    pub facts: Vec<String>,
    /// The machines the best version may use at most (every node that works or holds input is
    /// one machine).
    #[arg(long, value_name = "M")]
    pub machines: usize,
    /// What to minimise.
    #[arg(long, value_enum, default_value = "throughput")]
    pub objective: ObjectiveArg,
    /// Passes in a plan at most.
    #[arg(long = "max-steps", value_name = "K", default_value_t = 6)]
    pub max_steps: usize,
    /// Versions kept from one step to the next (the beam's width).
    #[arg(long, value_name = "B", default_value_t = 4)]
    pub beam: usize,
    /// Write the best version as a protocol directory here (it must not exist yet).
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: Option<String>,
    /// List every refusal and rejection the search met.
    #[arg(long)]
    pub explain: bool,
    /// Evaluate this many candidate versions at once, each on a thread of its own. The plan
    /// and everything written do not depend on it.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub jobs: u64,
}

/// The source's run, for comparisons.
struct SourceOutputs {
    facts: Vec<OutputFact>,
    last_tick: u64,
}

pub fn run(context: &Context, args: &OptimizeArgs) -> anyhow::Result<Outcome> {
    if let Some(output) = &args.output
        && Path::new(output).exists()
    {
        bail!("`{output}` already exists; name a new directory with -o (nothing was written)");
    }
    let Some(RewriteInput {
        checked,
        facts_files,
        ir_facts,
        source,
        ..
    }) = load_input(context, &args.files, &args.facts, "optimized")?
    else {
        return Ok(Outcome::ProgramErrors);
    };
    let objective = match args.objective {
        ObjectiveArg::Throughput => Objective::Throughput,
        ObjectiveArg::Messages => Objective::Messages,
    };
    let budget = Budget {
        machines: args.machines,
        max_steps: args.max_steps,
        beam: args.beam,
    };
    let source_run = Evaluator::new(&checked)?.run(&RunConfig::default(), &ir_facts)?;
    let source_outputs = SourceOutputs {
        facts: graft_eval::shown_facts(&checked.program, &source_run, &ShowSet::Default)
            .into_iter()
            .map(|f| (f.relation, f.values, f.tick))
            .collect(),
        last_tick: source_run.ticks_run,
    };
    let source_cost = count(&checked.program, &source_run);
    // Progress on a terminal: versions evaluated so far, and the steps of the latest one.
    let progress = Mutex::new(ProgressLine::new(
        "optimize",
        "versions",
        progress::wanted(false),
    ));
    let evaluated = AtomicU64::new(0);
    // The search hands over each depth's new versions at once: up to `--jobs` run at a time,
    // and the answers come back in the versions' order.
    let evaluate = |batch: &[Option<&Rewritten>]| {
        test::parallel_map(batch, args.jobs, |version| {
            let count = evaluated.fetch_add(1, Ordering::Relaxed) + 1;
            let Some(rewritten) = version else {
                return Ok(Evaluation {
                    cost: source_cost.clone(),
                    divergence: None,
                });
            };
            if let Ok(mut progress) = progress.lock() {
                progress.update(
                    count,
                    &format!(
                        "{} step(s): {}",
                        rewritten.justification.passes.len(),
                        rewritten
                            .justification
                            .passes
                            .last()
                            .map_or("", |pass| pass.request.as_str())
                    ),
                );
            }
            evaluate_version(rewritten, &source_outputs).map_err(|error| format!("{error:#}"))
        })
    };
    // A quorum change that lowers the load is verified as `graft rewrite` verifies one: under
    // every certified configuration of the protocol directory's protocol.json.
    let bounds = QuorumBounds {
        files: &args.files,
        facts: &[],
        eot: None,
        eff: 0,
        crashes: 0,
        command_line: false,
    };
    let confirm = |passes: &[graft_rewrites::PassSpec], rewritten: &mut Rewritten| {
        match verify_quorum_change(&bounds, &checked, &source, passes, rewritten) {
            // A protocol.json that cannot be read or a configuration that cannot run: the
            // change is not verified, and --explain says why.
            Err(error) => Ok(Err(format!("could not be verified: {error:#}"))),
            Ok(Err((reason, _))) => Ok(Err(reason)),
            Ok(Ok(verified)) => {
                record_verified(rewritten, passes, &verified);
                Ok(Ok(()))
            }
        }
    };
    let searched = search::search(
        &checked,
        &source,
        &facts_files,
        objective,
        budget,
        evaluate,
        confirm,
    );
    progress
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .finish();
    let outcome = match searched {
        Ok(outcome) => outcome,
        Err(SearchError::Evaluation(reason)) => {
            bail!("could not evaluate a candidate version (a bug in graft): {reason}")
        }
        Err(error) => {
            eprintln!("error: {error}; nothing was written");
            return Ok(Outcome::ProgramErrors);
        }
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "graft optimize: objective {}, at most {} machine(s) and {} step(s); {} version(s) evaluated, {} within the budget",
        objective.as_str(),
        budget.machines,
        budget.max_steps,
        outcome.evaluated,
        outcome.applicable
    );
    let _ = writeln!(
        out,
        "source: bottleneck {}, {} machine(s), {} exchange(s), {} tick(s)",
        describe_bottleneck(&outcome.source_cost),
        outcome.source_cost.machines(),
        outcome.source_cost.exchanges(),
        outcome.source_cost.ticks
    );
    let Some((steps, rewritten)) = &outcome.best else {
        let _ = writeln!(
            out,
            "\nno step helps: no sequence of at most {} pass(es) within {} machine(s) lowers the {} (nothing was written)",
            budget.max_steps,
            budget.machines,
            match objective {
                Objective::Throughput => "bottleneck's load",
                Objective::Messages => "network exchanges",
            }
        );
        if args.explain {
            explain(&mut out, &outcome.dropped);
        }
        print!("{out}");
        return Ok(Outcome::NoImprovement);
    };
    out.push('\n');
    out.push_str(&plan_table(steps));
    let (first, last) = (&outcome.source_cost, &steps[steps.len() - 1].after);
    let _ = writeln!(
        out,
        "\npredicted: bottleneck load {} -> {} ({}x throughput), exchanges {} -> {}, machines {} -> {}",
        first.bottleneck_load(),
        last.bottleneck_load(),
        factor(first.bottleneck_load(), last.bottleneck_load()),
        first.exchanges(),
        last.exchanges(),
        first.machines(),
        last.machines()
    );
    if args.explain {
        explain(&mut out, &outcome.dropped);
    }
    if let Some(output) = &args.output {
        write_version(Path::new(output), &source, rewritten, steps, objective)?;
        let _ = writeln!(
            out,
            "\nwrote {output}/ (program, facts, justification.json, snapshots); `graft test` checks it"
        );
    }
    print!("{out}");
    Ok(Outcome::Success)
}

/// Runs a rewritten version on its rewritten facts, counts its cost and compares its outputs
/// with the source's through its justification.
fn evaluate_version(rewritten: &Rewritten, source: &SourceOutputs) -> anyhow::Result<Evaluation> {
    let program = &rewritten.checked;
    let mut sources = graft_language::span::SourceMap::new();
    let mut ir_facts: Vec<ir::Fact> = Vec::new();
    for file in &rewritten.facts {
        let text = file.print();
        let id = sources.add(file.name.clone(), text.clone());
        let parsed = graft_language::parse(id, &text);
        let (checked_facts, diagnostics) =
            graft_compiler::check_facts(&program.program, &[parsed.file]);
        if diagnostics.iter().any(Diagnostic::is_error)
            || parsed.diagnostics.iter().any(Diagnostic::is_error)
        {
            bail!(
                "the rewritten facts file `{}` does not fit the new program",
                file.name
            );
        }
        ir_facts.extend(checked_facts);
    }
    let run = Evaluator::new(program)?.run(&RunConfig::default(), &ir_facts)?;
    let cost = count(&program.program, &run);
    let assumptions: Vec<_> = rewritten
        .justification
        .passes
        .iter()
        .flat_map(|pass| pass.assumptions.iter().cloned())
        .collect();
    let violations = test::key_violations(&program.program, &run, &assumptions);
    if let Some(violation) = violations.first() {
        return Ok(Evaluation {
            cost,
            divergence: Some(violation.clone()),
        });
    }
    if run.capped {
        return Ok(Evaluation {
            cost,
            divergence: Some("the run did not quiesce within 1000 ticks".to_owned()),
        });
    }
    let outputs: Vec<OutputFact> =
        graft_eval::shown_facts(&program.program, &run, &ShowSet::Default)
            .into_iter()
            .map(|f| (f.relation, f.values, f.tick))
            .collect();
    let mapped = compare::map_back(&rewritten.justification, &outputs);
    let divergence = compare::compare(
        rewritten.justification.comparison,
        &source.facts,
        &mapped,
        source.last_tick,
        run.ticks_run,
    );
    let divergence = (!divergence.is_empty()).then(|| {
        let mut reason = format!(
            "{} output fact(s) only in the source, {} only in the new version",
            divergence.only_source.len(),
            divergence.only_new.len()
        );
        if let Some(first) = divergence
            .only_source
            .first()
            .or(divergence.only_new.first())
        {
            let _ = write!(reason, " (first: {first})");
        }
        reason
    });
    Ok(Evaluation { cost, divergence })
}

fn describe_bottleneck(cost: &Cost) -> String {
    match cost.bottleneck() {
        Some((name, node)) => format!("{name} ({}) load {}", node.role, node.load()),
        None => "none (no node works)".to_owned(),
    }
}

/// The plan as a table: step, pass (with its safe case), bottleneck and its load before and
/// after, machines.
fn plan_table(steps: &[Step]) -> String {
    let mut rows = vec![[
        "step".to_owned(),
        "pass".to_owned(),
        "bottleneck before".to_owned(),
        "load".to_owned(),
        "bottleneck after".to_owned(),
        "load".to_owned(),
        "machines".to_owned(),
    ]];
    for (index, step) in steps.iter().enumerate() {
        let bottleneck = |cost: &Cost| {
            cost.bottleneck().map_or_else(
                || ("-".to_owned(), "0".to_owned()),
                |(name, node)| (format!("{name} ({})", node.role), node.load().to_string()),
            )
        };
        let (before_node, before_load) = bottleneck(&step.before);
        let (after_node, after_load) = bottleneck(&step.after);
        let pass = match &step.case {
            Some(case) => format!("{} [{case}]", step.pass.text()),
            None => step.pass.text(),
        };
        rows.push([
            (index + 1).to_string(),
            pass,
            before_node,
            before_load,
            after_node,
            after_load,
            format!("{} -> {}", step.before.machines(), step.after.machines()),
        ]);
    }
    let mut widths = [0; 7];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (column, (cell, width)) in row.iter().zip(widths).enumerate() {
            // Numbers right-aligned, text left-aligned.
            if column == 3 || column == 5 {
                let _ = write!(line, "{cell:>width$}  ");
            } else {
                let _ = write!(line, "{cell:<width$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// What `--explain` prints: every request dropped, once per request and reason.
fn explain(out: &mut String, dropped: &[search::Dropped]) {
    let mut grouped: BTreeMap<(&str, &str, &str), (usize, &[String])> = BTreeMap::new();
    for item in dropped {
        let entry = grouped
            .entry((item.kind, item.request.as_str(), item.reason.as_str()))
            .or_insert((0, &item.after));
        entry.0 += 1;
    }
    let _ = writeln!(
        out,
        "\nrefusals and rejections met ({} request(s)):",
        grouped.len()
    );
    for ((kind, request, reason), (times, after)) in grouped {
        let at = if after.is_empty() {
            "on the source".to_owned()
        } else {
            format!("after {}", after.join(", "))
        };
        let more = if times > 1 {
            format!(" (and on {} other version(s))", times - 1)
        } else {
            String::new()
        };
        let _ = writeln!(out, "  {kind:<14} {request}: {reason}; {at}{more}");
    }
}

/// Writes the version into `output` through a staging directory next to it: the program
/// (named as the source's first file), its facts files, the justification with each step's
/// prediction, and a snapshot per workload.
fn write_version(
    output: &Path,
    source: &SourceRef,
    rewritten: &Rewritten,
    steps: &[Step],
    objective: Objective,
) -> anyhow::Result<()> {
    let name = output
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .context("-o needs a directory name")?;
    let parent = output
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create the directory `{}`", parent.display()))?;
    let staging = parent.join(format!(".{name}.optimize-partial"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("cannot remove `{}`", staging.display()))?;
    }
    let result = stage(&staging, output, source, rewritten, steps, objective);
    if let Err(error) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(error);
    }
    std::fs::rename(&staging, output).with_context(|| {
        format!(
            "cannot move `{}` to `{}`",
            staging.display(),
            output.display()
        )
    })?;
    Ok(())
}

fn stage(
    staging: &Path,
    output: &Path,
    source: &SourceRef,
    rewritten: &Rewritten,
    steps: &[Step],
    objective: Objective,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(staging)
        .with_context(|| format!("cannot create `{}`", staging.display()))?;
    let base = |path: &str| {
        Path::new(path).file_name().map_or_else(
            || path.to_owned(),
            |name| name.to_string_lossy().into_owned(),
        )
    };
    let program_name = base(source.files.first().map_or("program.graft", String::as_str));
    write_atomically(&staging.join(&program_name), &rewritten.text)?;
    for file in &rewritten.facts {
        write_atomically(&staging.join(base(&file.name)), &file.print())?;
    }
    let mut justification = rewritten.justification.clone();
    for (record, step) in justification.passes.iter_mut().zip(steps) {
        let bottleneck = |cost: &Cost| {
            cost.bottleneck()
                .map_or(("-".to_owned(), 0), |(name, node)| {
                    (name.to_owned(), node.load())
                })
        };
        let (bottleneck_before, load_before) = bottleneck(&step.before);
        let (bottleneck_after, load_after) = bottleneck(&step.after);
        record.predicted = Some(Predicted {
            objective: objective.as_str().to_owned(),
            bottleneck_before,
            load_before,
            bottleneck_after,
            load_after,
            exchanges_before: step.before.exchanges(),
            exchanges_after: step.after.exchanges(),
            machines_before: step.before.machines(),
            machines_after: step.after.machines(),
        });
    }
    write_atomically(
        &staging.join("justification.json"),
        &justification.to_json(),
    )?;
    // Snapshots, as `graft test --accept` would write them at the final place.
    let assumptions: Vec<_> = justification
        .passes
        .iter()
        .flat_map(|pass| pass.assumptions.iter().cloned())
        .collect();
    let program = staging.join(&program_name);
    let stem = Path::new(&program_name)
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    std::fs::create_dir_all(staging.join("snapshots"))
        .with_context(|| format!("cannot create `{}`", staging.join("snapshots").display()))?;
    for (workload, files) in test::workload_runs(staging)? {
        let paths: Vec<String> = files
            .iter()
            .map(|path| path.to_string_lossy().into_owned())
            .collect();
        let texts = crate::load::read_facts(&paths)?;
        let outputs = match test::run_version(&program, &texts, &assumptions)? {
            Ok(outputs) => outputs,
            Err(rendered) => bail!(
                "internal error: the version does not run on `{workload}` (a bug in graft):\n{rendered}"
            ),
        };
        let final_program = output.join(&program_name);
        let expression = format!(
            "graft run {}{}",
            display(&final_program),
            files
                .iter()
                .filter_map(|file| file.file_name())
                .map(|file| format!(" --facts {}", display(&output.join(file))))
                .collect::<String>()
        );
        let text = test::snapshot_text(&display(&final_program), &expression, &outputs.text);
        write_atomically(
            &staging
                .join("snapshots")
                .join(format!("{stem}__{workload}.snap")),
            &text,
        )?;
    }
    Ok(())
}
