//! `graft report DIR [-o FILE]`: one self-contained HTML page for a protocol directory — the
//! tree of versions with their justifications, and for each version its `check` summary,
//! its cost table and bottleneck, its `graft test` results and output differences against
//! its source, its latest verification verdicts with their diagrams, and the rewrites known
//! to be refused.
//!
//! Nothing here computes anything of its own: every part comes from the function the
//! corresponding command uses (`graft_compiler::summary` and `render_summary_text` for
//! `graft check`, `rewrite::cost_of` and `render_cost` for `graft rewrite --cost`,
//! `test::test_protocol` for `graft test`, `verify::latest` and `counterexample_diagrams` for
//! `graft verify`, `graft_rewrites::check` and the refusal's diagnostics for `graft rewrite`).
//! This module gathers them into a [`ProtocolReport`]; `crate::report_html` renders it.

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::Args;
use graft_rewrites::Justification;

use crate::commands::fmt::write_atomically;
use crate::commands::rewrite::{Cost, cost_of, render_cost};
use crate::commands::test::{self, SnapshotMode};
use crate::commands::verify::{self, VerifyArgs, counterexample_diagrams, expectation_met};
use crate::progress::{self, ProgressLine};
use crate::protocol::{self, VerifyConfig, display};
use crate::{Context, Outcome, load, render, report_html};

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The protocol's directory (e.g. examples/paxos).
    #[arg(value_name = "DIR")]
    pub directory: String,
    /// Write the page here (default: standard output).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<String>,
    /// Verify every configuration now instead of showing the cached verdicts (the cache is
    /// neither read nor written).
    #[arg(long)]
    pub no_cache: bool,
}

/// Counterexamples drawn per verification (the others are listed in its report text).
const DIAGRAMS_PER_VERIFICATION: usize = 3;

/// Everything the page shows.
pub struct ProtocolReport {
    pub name: String,
    pub directory: String,
    /// The first paragraph of the directory's README, if it has one.
    pub description: Option<String>,
    pub versions: Vec<VersionReport>,
    /// Programs of the directory verified on their own (buggy variants).
    pub variants: Vec<VariantReport>,
    pub refusals: Vec<RefusalReport>,
    /// `graft test`'s runs and failed checks.
    pub test_runs: usize,
    pub test_failures: usize,
}

pub struct VersionReport {
    /// `original` or the version directory's name; also the page anchor.
    pub name: String,
    pub program: String,
    pub hash: String,
    /// The index of the version it was derived from.
    pub source: Option<usize>,
    pub justification: Option<Justification>,
    /// `graft check`'s summary, or the rendered errors.
    pub check: String,
    pub checks_ok: bool,
    /// `graft test`'s lines for this version: (passed, text).
    pub tests: Vec<(bool, String)>,
    /// Outputs against the source's, per workload.
    pub comparisons: Vec<ComparisonReport>,
    pub costs: Vec<CostReport>,
    pub verifications: Vec<VerificationReport>,
}

pub struct ComparisonReport {
    pub workload: String,
    pub mode: String,
    pub diverged: bool,
    /// The line diff of the source's outputs (`-`) and this version's mapped back (`+`).
    pub diff: String,
}

pub struct CostReport {
    pub workload: String,
    /// This version's run.
    pub cost: Cost,
    /// `graft rewrite --cost`'s table against the source, for a rewritten version.
    pub against_source: Option<String>,
    /// The busiest node: (node, role, facts per tick, messages per tick).
    pub bottleneck: Option<(String, String, f64, f64)>,
}

pub struct VerificationReport {
    pub config: VerifyConfig,
    pub facts: Vec<String>,
    /// Expectation met (or, without a verdict, false).
    pub passed: bool,
    /// `graft verify`'s text report, or why there is none.
    pub text: String,
    pub cached: bool,
    /// (title, spacetime SVG, lineage SVG) per drawn counterexample.
    pub diagrams: Vec<(String, String, String)>,
}

pub struct VariantReport {
    pub program: String,
    pub verifications: Vec<VerificationReport>,
}

pub struct RefusalReport {
    pub pass: String,
    pub program: String,
    pub note: Option<String>,
    /// Whether `check` refused it (as recorded); false when it now applies.
    pub refused: bool,
    /// The refusal as `graft rewrite` prints it.
    pub text: String,
}

fn description(root: &Path) -> Option<String> {
    let text = std::fs::read_to_string(root.join("README.md")).ok()?;
    let paragraph: Vec<&str> = text
        .lines()
        .skip_while(|line| line.trim().is_empty() || line.starts_with('#'))
        .take_while(|line| !line.trim().is_empty())
        .collect();
    (!paragraph.is_empty()).then(|| paragraph.join(" "))
}

/// The program and facts, checked: `Err` with the rendered errors when they do not check.
fn checked_with_facts(
    program: &Path,
    facts: &[PathBuf],
) -> anyhow::Result<Result<(graft_compiler::Checked, Vec<graft_compiler::ir::Fact>), String>> {
    let mut loaded = load::load(&[program.to_string_lossy().into_owned()])?;
    let checked = graft_compiler::check(&loaded.sources, &loaded.files);
    let names: Vec<String> = facts
        .iter()
        .map(|path| path.to_string_lossy().into_owned())
        .collect();
    let workload = load::load_facts(&mut loaded.sources, &names)?;
    let mut diagnostics = loaded.diagnostics.clone();
    diagnostics.extend(checked.diagnostics.iter().cloned());
    diagnostics.extend(workload.diagnostics);
    let (ir_facts, fact_diagnostics) =
        graft_compiler::check_facts(&checked.program, &workload.files);
    diagnostics.extend(fact_diagnostics);
    let errors: Vec<_> = diagnostics.into_iter().filter(|d| d.is_error()).collect();
    if errors.is_empty() {
        Ok(Ok((checked, ir_facts)))
    } else {
        Ok(Err(render::diagnostics_to_string(&loaded.sources, &errors)))
    }
}

/// `graft check`'s summary of a program, or its rendered errors.
fn check_summary(program: &Path) -> anyhow::Result<(String, bool)> {
    let loaded = load::load(&[program.to_string_lossy().into_owned()])?;
    let checked = graft_compiler::check(&loaded.sources, &loaded.files);
    let mut diagnostics = loaded.diagnostics.clone();
    diagnostics.extend(checked.diagnostics.iter().cloned());
    if diagnostics.iter().any(|d| d.is_error()) {
        return Ok((
            render::diagnostics_to_string(&loaded.sources, &diagnostics),
            false,
        ));
    }
    Ok((
        graft_compiler::render_summary_text(&graft_compiler::summary(&checked)),
        true,
    ))
}

fn bottleneck(cost: &Cost) -> Option<(String, String, f64, f64)> {
    let ticks = cost.ticks.max(1);
    #[allow(
        clippy::cast_precision_loss,
        reason = "counts and ticks are far below 2^52"
    )]
    let per_tick = |value: u64| value as f64 / ticks as f64;
    // The cost model's bottleneck: the node with the most load (facts, messages sent and
    // received).
    cost.bottleneck().map(|(name, node)| {
        (
            name.to_owned(),
            node.role.clone(),
            per_tick(node.facts),
            per_tick(node.messages),
        )
    })
}

/// One verification's latest verdict with its diagrams.
fn verification(
    context: &Context,
    base: &VerifyArgs,
    job: &protocol::VerifyJob,
    progress: &mut ProgressLine,
) -> anyhow::Result<VerificationReport> {
    let facts: Vec<String> = job.facts.iter().map(|path| display(path)).collect();
    let mut report = VerificationReport {
        config: job.config.clone(),
        facts,
        passed: false,
        text: String::new(),
        cached: false,
        diagrams: Vec::new(),
    };
    if let Some(missing) = &job.missing {
        report.text = format!("not verified: {missing}\n");
        return Ok(report);
    }
    let program = vec![job.program.to_string_lossy().into_owned()];
    let names: Vec<String> = job
        .facts
        .iter()
        .map(|path| path.to_string_lossy().into_owned())
        .collect();
    if let Some(rendered) = crate::program::check_quietly(&program, &names)? {
        report.text = format!("the program or its facts do not check:\n{rendered}");
        return Ok(report);
    }
    let args = base.for_job(job, false);
    let label = format!("{} on {}", display(&job.program), job.config.workload);
    let latest = verify::latest(context, &args, &mut |event| {
        progress.update(event.executions, &label);
    });
    let latest = match latest {
        Ok(Some(latest)) => latest,
        Ok(None) => {
            report.text = "the program or its facts do not check\n".to_owned();
            return Ok(report);
        }
        Err(error) => {
            report.text = format!("graft verify stopped: {error:#}\n");
            return Ok(report);
        }
    };
    report.passed = expectation_met(latest.report.verdict, job.config.expect);
    report.text = latest.report.text();
    report.cached = latest.cached;
    for (index, found) in latest
        .search
        .counterexamples
        .iter()
        .enumerate()
        .take(DIAGRAMS_PER_VERIFICATION)
    {
        let number = index + 1;
        let diagrams =
            counterexample_diagrams(&latest.verifier, number, found.iteration, &found.execution);
        report.diagrams.push((
            format!(
                "counterexample {number} (execution {}): {}",
                found.iteration, found.execution.faults
            ),
            diagrams.spacetime,
            diagrams.lineage_svg,
        ));
    }
    Ok(report)
}

/// Gathers the report of the protocol directory `root`.
pub fn gather(context: &Context, root: &Path, no_cache: bool) -> anyhow::Result<ProtocolReport> {
    let record = protocol::protocol_file(root)?;
    let tested = test::test_protocol(root, SnapshotMode::Inspect)?;
    let jobs = protocol::verify_jobs(root)?;
    let base = VerifyArgs::defaults(no_cache);
    let mut progress = ProgressLine::new("report", "executions", progress::wanted(false));
    let mut versions = Vec::new();
    for (index, version) in tested.versions.iter().enumerate() {
        let source = protocol::source_of(&tested.versions, version);
        let (check, checks_ok) = check_summary(&version.program)?;
        let tests = tested
            .checks
            .iter()
            .filter(|check| check.version == index)
            .map(|check| (check.passed, check.text.clone()))
            .collect();
        let comparisons = tested
            .comparisons
            .iter()
            .filter(|comparison| comparison.version == index)
            .map(|comparison| ComparisonReport {
                workload: comparison.workload.clone(),
                mode: comparison.mode.clone(),
                diverged: comparison.diverged,
                diff: test::line_diff(&comparison.source_text, &comparison.mapped_text),
            })
            .collect();
        // Costs on every workload, against the source's run on the workload of the same name.
        let mut costs = Vec::new();
        for (workload, files) in test::workload_runs(&version.directory)? {
            let Ok((checked, facts)) = checked_with_facts(&version.program, &files)? else {
                continue;
            };
            let cost = cost_of(&checked, &facts)?;
            let mut against_source = None;
            if let (Some(source), Some(justification)) = (source, &version.justification) {
                let source_version = &tested.versions[source];
                let source_runs = test::workload_runs(&source_version.directory)?;
                if let Some((_, source_files)) =
                    source_runs.iter().find(|(name, _)| *name == workload)
                    && let Ok((source_checked, source_facts)) =
                        checked_with_facts(&source_version.program, source_files)?
                {
                    let before = cost_of(&source_checked, &source_facts)?;
                    against_source = Some(render_cost(&before, &cost, &justification.node_map));
                }
            }
            costs.push(CostReport {
                workload,
                bottleneck: bottleneck(&cost),
                cost,
                against_source,
            });
        }
        let mut verifications = Vec::new();
        for job in jobs
            .iter()
            .filter(|job| job.config.program.is_none() && job.program == version.program)
        {
            verifications.push(verification(context, &base, job, &mut progress)?);
        }
        versions.push(VersionReport {
            name: version.name(root),
            program: display(&version.program),
            hash: version.hash.clone(),
            source,
            justification: version.justification.clone(),
            check,
            checks_ok,
            tests,
            comparisons,
            costs,
            verifications,
        });
    }
    let mut variants: Vec<VariantReport> = Vec::new();
    for job in jobs.iter().filter(|job| job.config.program.is_some()) {
        let program = display(&job.program);
        let report = verification(context, &base, job, &mut progress)?;
        match variants
            .iter_mut()
            .find(|variant| variant.program == program)
        {
            Some(variant) => variant.verifications.push(report),
            None => variants.push(VariantReport {
                program,
                verifications: vec![report],
            }),
        }
    }
    progress.finish();
    let mut refusals = Vec::new();
    for refused in &record.refused {
        let program = match &refused.program {
            Some(program) => root.join(program),
            None => tested
                .versions
                .first()
                .map(|version| version.program.clone())
                .unwrap_or_default(),
        };
        let (was_refused, text) = refusal(&program, &refused.pass)?;
        refusals.push(RefusalReport {
            pass: refused.pass.clone(),
            program: display(&program),
            note: refused.note.clone(),
            refused: was_refused,
            text,
        });
    }
    Ok(ProtocolReport {
        name: root
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        directory: display(root),
        description: description(root),
        versions,
        variants,
        refusals,
        test_runs: tested.runs,
        test_failures: tested.failures,
    })
}

/// Whether `graft rewrite PROGRAM --pass PASS` refuses, and what it prints.
fn refusal(program: &Path, pass: &str) -> anyhow::Result<(bool, String)> {
    let spec = match graft_rewrites::parse_pass(pass) {
        Ok(spec) => spec,
        Err(error) => return Ok((false, format!("--pass '{pass}': {error}\n"))),
    };
    let loaded = load::load(&[program.to_string_lossy().into_owned()])?;
    let checked = graft_compiler::check(&loaded.sources, &loaded.files);
    match graft_rewrites::check(&checked, &spec) {
        Ok(_) => Ok((
            false,
            "applies: every precondition holds (the record says it is refused; update protocol.json)\n"
                .to_owned(),
        )),
        Err(refusal) => {
            let mut text = render::diagnostics_to_string(&loaded.sources, &refusal.to_diagnostics());
            text.push_str(&format!(
                "refused: `{}` does not apply: {} failed precondition(s): {}\n",
                refusal.pass,
                refusal.failures.len(),
                refusal.names().join(", ")
            ));
            Ok((true, text))
        }
    }
}

pub fn run(context: &Context, args: &ReportArgs) -> anyhow::Result<Outcome> {
    let root = Path::new(args.directory.trim_end_matches('/'));
    if !root.is_dir() {
        bail!("`{}` is not a directory", args.directory);
    }
    if !protocol::is_protocol(root) {
        bail!(
            "`{}` holds no .graft program: name one protocol directory (e.g. examples/paxos)",
            display(root)
        );
    }
    let quiet = Context {
        color: context.color,
        quiet: true,
    };
    let report = gather(&quiet, root, args.no_cache)?;
    let page = report_html::page(&report);
    match &args.output {
        Some(output) => {
            let path = Path::new(output);
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            write_atomically(path, &page)?;
            eprintln!("wrote {output}");
        }
        None => print!("{page}"),
    }
    Ok(Outcome::Success)
}
