//! `graft rewrite`: apply rewrite passes to a program, write the new version (and its facts
//! files and justification record), or explain every reason a pass does not apply.
//!
//! Nothing is written unless every pass applies and the new program checks; every file is
//! written through a temporary file and a rename, so an existing output is never left
//! half-written.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use clap::Args;
use graft_compiler::Checked;
use graft_language::diagnostic::{Diagnostic, sort_diagnostics};
use graft_rewrites::{FactsFile, PipelineError, SourceRef};

use crate::commands::fmt::write_atomically;
// The cost model lives in `crate::cost`; these names stay here for the commands and
// benchmarks that reach it through `rewrite`.
pub use crate::cost::{Cost, cost_of, render_cost};
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
    /// A quorum change is verified before it is written: the end of time to verify it under on
    /// the --facts workload, when the program's protocol directory records no bounds
    /// (`protocol.json`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub eot: Option<u64>,
    /// With --eot: the end of finite failures.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub eff: u64,
    /// With --eot: the most nodes that may crash.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub crashes: usize,
}

impl RewriteArgs {
    /// Where a quorum change's verification bounds come from.
    fn bounds(&self) -> QuorumBounds<'_> {
        QuorumBounds {
            files: &self.files,
            facts: &self.facts,
            eot: self.eot,
            eff: self.eff,
            crashes: self.crashes,
            command_line: true,
        }
    }
}

/// Where a quorum change finds the bounds it is verified under: the program's protocol
/// directory (`protocol.json`), or the workload and bounds given on the command line.
pub struct QuorumBounds<'a> {
    /// The source program's files.
    pub files: &'a [String],
    /// The workload given with `--facts` (used with `eot`).
    pub facts: &'a [String],
    pub eot: Option<u64>,
    pub eff: u64,
    pub crashes: usize,
    /// Whether the command takes bounds on its command line (`graft rewrite` does; `graft
    /// optimize` verifies only under protocol.json's).
    pub command_line: bool,
}

/// Records in the justification what a quorum change was certified under: a `verified`
/// precondition per configuration on every quorum step.
pub fn record_verified(
    rewritten: &mut graft_rewrites::Rewritten,
    passes: &[graft_rewrites::PassSpec],
    verified: &[graft_rewrites::justification::VerifiedUnder],
) {
    for (pass, spec) in rewritten.justification.passes.iter_mut().zip(passes) {
        if !matches!(spec, graft_rewrites::PassSpec::Quorum { .. }) {
            continue;
        }
        for under in verified {
            pass.preconditions
                .push(graft_rewrites::justification::Discharged {
                    name: "verified".to_owned(),
                    evidence: format!(
                        "`graft verify` certified the new version on {} under EOT {}, EFF {}, crashes {}{} ({} executions; bounds from {})",
                        under.facts.join(", "),
                        under.eot,
                        under.eff,
                        under.crashes,
                        if under.symmetry { ", symmetry" } else { "" },
                        under.executions,
                        under.bounds_from
                    ),
                });
        }
        pass.verified = verified.to_vec();
    }
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
    let Some(RewriteInput {
        loaded,
        checked,
        facts_files,
        ir_facts,
        source,
    }) = load_input(context, &args.files, &args.facts, "rewritten")?
    else {
        return Ok(Outcome::ProgramErrors);
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
    // A quorum change proves itself: the new version must pass `graft verify` on its
    // invariants under the source's bounds before anything is written.
    let mut rewritten = rewritten;
    if passes
        .iter()
        .any(|pass| matches!(pass, graft_rewrites::PassSpec::Quorum { .. }))
    {
        match verify_quorum_change(&args.bounds(), &checked, &source, &passes, &rewritten)? {
            Ok(verified) => record_verified(&mut rewritten, &passes, &verified),
            Err((reason, suggestion)) => {
                // Rendered like every refusal: a diagnostic at the first constant changed.
                let span = passes
                    .iter()
                    .find_map(|pass| match pass {
                        graft_rewrites::PassSpec::Quorum { constants, .. } => {
                            constants.first().and_then(|(name, _)| {
                                checked
                                    .program
                                    .const_by_name(name)
                                    .map(|id| checked.program.consts[id.index()].span)
                            })
                        }
                        _ => None,
                    })
                    .unwrap_or_default();
                let request = passes
                    .iter()
                    .map(graft_rewrites::PassSpec::text)
                    .collect::<Vec<_>>()
                    .join(" then ");
                let refusal = graft_rewrites::Refusal::single(
                    request.clone(),
                    graft_rewrites::FailedPrecondition::new(
                        "not-verified",
                        reason,
                        span,
                        suggestion,
                    ),
                );
                render::emit_diagnostics(&loaded.sources, &refusal.to_diagnostics(), context.color);
                eprintln!(
                    "refused: `{request}` does not apply: 1 failed precondition(s): not-verified; nothing was written"
                );
                return Ok(Outcome::ProgramErrors);
            }
        }
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
    for pass in &rewritten.justification.passes {
        for assumption in &pass.assumptions {
            eprintln!("assumed by `{}`: {}", pass.request, assumption.describe());
        }
    }
    Ok(Outcome::Success)
}

/// A program and its workload, loaded and checked, as `graft rewrite` and `graft optimize`
/// take them: the facts per file (for the passes to rewrite) and all together (to run).
pub struct RewriteInput {
    pub loaded: graft_language::loader::LoadedProgram,
    pub checked: Checked,
    pub facts_files: Vec<FactsFile>,
    pub ir_facts: Vec<graft_compiler::ir::Fact>,
    /// The program's files and the hash of their bytes.
    pub source: SourceRef,
}

/// Loads and checks `files` and the `facts` files; on errors, prints them with
/// "nothing was {done}" and returns `None`.
pub fn load_input(
    context: &Context,
    files: &[String],
    facts: &[String],
    done: &str,
) -> anyhow::Result<Option<RewriteInput>> {
    let mut loaded = load::load(files)?;
    let checked = graft_compiler::check(&loaded.sources, &loaded.files);
    let mut diagnostics = loaded.diagnostics.clone();
    diagnostics.extend(checked.diagnostics.iter().cloned());
    let workload = load::load_facts(&mut loaded.sources, facts)?;
    diagnostics.extend(workload.diagnostics);
    let mut facts_files = Vec::new();
    let mut ir_facts = Vec::new();
    if !diagnostics.iter().any(Diagnostic::is_error) {
        for (path, file) in facts.iter().zip(&workload.files) {
            let (checked_facts, fact_diagnostics) =
                graft_compiler::check_facts(&checked.program, std::slice::from_ref(file));
            diagnostics.extend(fact_diagnostics);
            facts_files.push(FactsFile {
                name: path.clone(),
                facts: checked_facts
                    .iter()
                    .map(|fact| graft_rewrites::draft::fact_of(&checked.program, fact))
                    .collect(),
                generated: Vec::new(),
            });
            ir_facts.extend(checked_facts);
        }
    }
    sort_diagnostics(&mut diagnostics);
    if diagnostics.iter().any(Diagnostic::is_error) {
        render::emit_diagnostics(&loaded.sources, &diagnostics, context.color);
        eprintln!("{}; nothing was {done}", render::count_line(&diagnostics));
        return Ok(None);
    }
    let mut bytes = Vec::new();
    for file in files {
        bytes.extend(std::fs::read(file).with_context(|| format!("cannot read `{file}`"))?);
    }
    let source = SourceRef {
        files: files.to_vec(),
        hash: graft_rewrites::content_hash(&bytes),
    };
    Ok(Some(RewriteInput {
        loaded,
        checked,
        facts_files,
        ir_facts,
        source,
    }))
}

/// The configurations a quorum change of `source` is verified under: those of the protocol
/// directory's `protocol.json` that apply to the source program and expect it certified (a
/// known counterexample of the source is not asked of the new version), or `--facts` with
/// `--eot`. Each is (facts files, configuration, where the bounds come from).
fn quorum_configurations(
    args: &QuorumBounds<'_>,
) -> anyhow::Result<Vec<(Vec<String>, crate::protocol::VerifyConfig, String)>> {
    let Some(first) = args.files.first() else {
        return Ok(Vec::new());
    };
    let program = Path::new(first);
    let directory = program.parent().unwrap_or(Path::new(""));
    let directory = if directory.as_os_str().is_empty() {
        Path::new(".")
    } else {
        directory
    };
    let mut roots = vec![directory.to_path_buf()];
    if directory
        .parent()
        .is_some_and(|parent| parent.file_name().is_some_and(|name| name == "versions"))
        && let Some(root) = directory.parent().and_then(Path::parent)
    {
        roots.push(root.to_path_buf());
    }
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    let mut found = Vec::new();
    if args.files.len() == 1 {
        for root in roots {
            if !root.join("protocol.json").is_file() {
                continue;
            }
            let record = crate::protocol::display(&root.join("protocol.json"));
            for job in crate::protocol::verify_jobs(&root)? {
                if same(&job.program, program)
                    && job.config.expect == crate::protocol::Expectation::Certified
                    && job.missing.is_none()
                {
                    let facts = job
                        .facts
                        .iter()
                        .map(|path| crate::protocol::display(path))
                        .collect();
                    found.push((facts, job.config.clone(), record.clone()));
                }
            }
        }
    }
    if found.is_empty()
        && let Some(eot) = args.eot
    {
        if args.facts.is_empty() {
            bail!("--eot verifies a quorum change on the --facts workload: give --facts FILE");
        }
        found.push((
            args.facts.to_vec(),
            crate::protocol::VerifyConfig {
                program: None,
                workload: args.facts.last().cloned().unwrap_or_default(),
                eot,
                eff: args.eff,
                crashes: args.crashes,
                max_delay: 0,
                nodes: Vec::new(),
                symmetry: false,
                versions: true,
                expect: crate::protocol::Expectation::Certified,
                note: None,
            },
            "--eot, --eff and --crashes".to_owned(),
        ));
    }
    Ok(found)
}

/// Verifies the output of a rewrite that changes a quorum under every configuration of
/// [`quorum_configurations`]: `Ok` with what was certified, or `Err` with why it is refused
/// (a counterexample with its faults and violated invariants, an inconclusive search, or no
/// bounds to verify under).
pub fn verify_quorum_change(
    args: &QuorumBounds<'_>,
    checked: &Checked,
    source: &SourceRef,
    passes: &[graft_rewrites::PassSpec],
    rewritten: &graft_rewrites::Rewritten,
) -> anyhow::Result<Result<Vec<graft_rewrites::justification::VerifiedUnder>, (String, String)>> {
    const UNSAFE: &str = "a quorum change must keep the protocol correct under the bounds it is verified under: choose other values, or copy the program with the new values and run `graft verify` on it under the same bounds to see the counterexample's diagrams";
    let configurations = quorum_configurations(args)?;
    if configurations.is_empty() {
        let (alternative, suggestion) = if args.command_line {
            (
                ", or give the workload with --facts and the bounds with --eot N [--eff N] [--crashes N]",
                "record the bounds the protocol is verified under in its protocol.json (docs/verification.md), or give them to `graft rewrite`",
            )
        } else {
            (
                "",
                "record the bounds the protocol is verified under in its protocol.json (docs/verification.md)",
            )
        };
        return Ok(Err((
            format!(
                "a quorum change must pass `graft verify` before it is written, but no bounds are known for `{}`: keep it in a protocol directory whose protocol.json records verification configurations{alternative}",
                args.files.join(" ")
            ),
            suggestion.to_owned(),
        )));
    }
    let mut verified = Vec::new();
    for (facts, config, bounds_from) in configurations {
        // The configuration's facts, rewritten for the new version as `--facts-out` would.
        let mut sources = graft_language::span::SourceMap::new();
        let workload = crate::load::load_facts(&mut sources, &facts)?;
        let (_, diagnostics) = graft_compiler::check_facts(&checked.program, &workload.files);
        if diagnostics.iter().any(Diagnostic::is_error) {
            return Ok(Err((
                format!(
                    "the change must be verified on {}, but those facts do not fit the source: {}",
                    facts.join(", "),
                    render::diagnostics_to_string(&sources, &diagnostics)
                ),
                "fix the configuration's facts files".to_owned(),
            )));
        }
        let files: Vec<FactsFile> = facts
            .iter()
            .zip(&workload.files)
            .map(|(name, file)| {
                let (checked_facts, _) =
                    graft_compiler::check_facts(&checked.program, std::slice::from_ref(file));
                FactsFile {
                    name: name.clone(),
                    facts: checked_facts
                        .iter()
                        .map(|fact| graft_rewrites::draft::fact_of(&checked.program, fact))
                        .collect(),
                    generated: Vec::new(),
                }
            })
            .collect();
        let again = graft_rewrites::rewrite(checked, source, files, passes)
            .map_err(|_| anyhow::anyhow!("internal error: the rewrite did not apply again to the verification's facts (a bug in graft)"))?;
        let mut new_sources = graft_language::span::SourceMap::new();
        let mut new_facts = Vec::new();
        for file in &again.facts {
            let text = file.print();
            let id = new_sources.add(file.name.clone(), text.clone());
            let parsed = graft_language::parse(id, &text);
            let (checked_facts, _) =
                graft_compiler::check_facts(&rewritten.checked.program, &[parsed.file]);
            new_facts.extend(checked_facts);
        }
        let bounds = graft_verify::Bounds {
            eot: config.eot,
            eff: config.eff,
            crashes: config.crashes,
            max_delay: config.max_delay,
        };
        let nodes: BTreeSet<String> = config.nodes.iter().cloned().collect();
        let verifier = if nodes.is_empty() {
            graft_verify::Verifier::new(&rewritten.checked, new_facts, nodes, bounds)?
        } else {
            graft_verify::Verifier::with_exact_nodes(&rewritten.checked, new_facts, nodes, bounds)?
        };
        let options = graft_verify::SearchOptions {
            all: false,
            max_executions: 10_000,
            replay: Vec::new(),
            symmetry: config.symmetry,
            skip_covered: true,
        };
        let search = verifier.ldfi(&options, &mut |_| {})?;
        let where_ = format!(
            "on {} under EOT {}, EFF {}, crashes {}{} (bounds from {bounds_from})",
            facts.join(", "),
            config.eot,
            config.eff,
            config.crashes,
            if config.symmetry { ", symmetry" } else { "" }
        );
        match search.verdict {
            graft_verify::Verdict::Certified => {
                verified.push(graft_rewrites::justification::VerifiedUnder {
                    facts: facts.clone(),
                    eot: config.eot,
                    eff: config.eff,
                    crashes: config.crashes,
                    symmetry: config.symmetry,
                    nodes: config.nodes.clone(),
                    bounds_from,
                    executions: search.executions,
                })
            }
            graft_verify::Verdict::Counterexample => {
                let report = graft_verify::report::Report::new(
                    "ldfi",
                    &search,
                    verifier.fault_space().to_string(),
                    verifier.bounds,
                    verifier.nodes().to_vec(),
                );
                return Ok(Err((
                    format!(
                        "the new version does not pass `graft verify` {where_}: {} (LDFI's execution {})",
                        crate::commands::verify::first_counterexample(&report),
                        search
                            .counterexamples
                            .first()
                            .map_or(0, |found| found.iteration)
                    ),
                    UNSAFE.to_owned(),
                )));
            }
            graft_verify::Verdict::Inconclusive => {
                return Ok(Err((format!(
                    "the new version could not be verified {where_}: the search was inconclusive ({}) after {} executions",
                    search.limit.clone().unwrap_or_default(),
                    search.executions
                ), "lower the bounds in protocol.json, or verify the new version separately with a larger --max-executions".to_owned())));
            }
        }
    }
    Ok(Ok(verified))
}
