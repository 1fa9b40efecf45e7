//! `graft verify`: lineage-driven fault injection (Molly's LDFI) or random fault injection on a
//! program, its workloads and bounds; refinement against an earlier version (`--refines`);
//! which supports of the `post` facts a rewrite changed (`--explain-diff`).
//!
//! Exit status: 0 certified (no counterexample exists for these bounds and inputs), 1 a
//! counterexample was found, a refinement diverged, or the program has errors, 2 usage or I/O
//! errors, 3 inconclusive (a limit stopped the search). Results are cached per program version
//! (content hash) in `.graft/cache` beside the program (or `--cache DIR`), so that a later
//! verification, or one of a rewritten version, replays what is known first.
//!
//! Given a directory instead of program files, every protocol in it (or under it) is verified
//! under the configurations its `protocol.json` records, the original program and every
//! version, one line per verification; see [`verify_tree`].

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use graft_rewrites::Justification;
use graft_rewrites::compare;
use graft_rewrites::justification::Comparison;
use graft_verify::diagram::{LineageGraph, spacetime_svg};
use graft_verify::refine::{self, Mapping};
use graft_verify::report::{RandomSummary, Report};
use graft_verify::{
    Bounds, Execution, FaultSet, Progress, Search, SearchOptions, Verdict, Verifier, ViolationKind,
};
use serde::{Deserialize, Serialize};

use crate::commands::fmt::write_atomically;
use crate::commands::run::Engine;
use crate::commands::test::parallel_map;
use crate::program::{self, CrashModelArg, Loaded, RunOptions};
use crate::progress::{self, ProgressLine, SharedProgress};
use crate::protocol::{self, Expectation, VerifyJob, display};
use crate::{Context, Outcome, late, render};

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The program's files (`.graft` or Molly `.ded`); together they form one program. Or one
    /// directory: every protocol in it (or below it) is verified under the configurations of
    /// its `protocol.json`.
    #[arg(value_name = "FILE|DIR", required_unless_present = "explain_diff")]
    pub files: Vec<String>,
    /// Workload or topology files: facts added to the program's own.
    #[arg(long = "facts", value_name = "FILE")]
    pub facts: Vec<String>,
    /// End of time: runs evaluate ticks 1..=N, and `post` is checked at N. Required with
    /// program files; with a directory the bounds come from each `protocol.json`.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub eot: Option<u64>,
    /// End of finite failures: messages sent at ticks before N may be lost (0: crashes only).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub eff: u64,
    /// The most nodes that may crash.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub crashes: usize,
    /// Late messages: messages sent before EFF may also arrive up to D ticks late, so that
    /// they can be overtaken (0, the default: Molly's synchronous model, a message arrives at
    /// the next tick or never).
    #[arg(long, value_name = "D", default_value_t = 0)]
    pub max_delay: u64,
    /// The nodes (comma-separated): only they crash, lose messages and observe crashes, as
    /// with Molly's `-N`. Without it, the locations and nodes named by facts. With --refines or
    /// --explain-diff (two versions, two node sets) these are added to those named by facts.
    #[arg(long, value_name = "A,B,...", value_delimiter = ',')]
    pub nodes: Vec<String>,
    /// `ldfi`: lineage-driven fault injection; `random`: random fault schedules (baseline).
    #[arg(long, value_enum, default_value_t = Strategy::Ldfi)]
    pub strategy: Strategy,
    /// Random strategy: run N seeds (from --seed) and report the mean executions to the first
    /// counterexample.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub runs: Option<u64>,
    /// Random strategy: the seed.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// Find every counterexample instead of stopping at the first.
    #[arg(long)]
    pub all: bool,
    /// LDFI: run one fault schedule per class of schedules equal up to renaming nodes that
    /// the program and its facts cannot tell apart (with --all, counterexamples that are
    /// renamings of one found are not reported).
    #[arg(long)]
    pub use_symmetry: bool,
    /// LDFI: also run the candidates that an earlier run covers (step 6 of the loop in
    /// docs/verification.md). The verdict is the same either way; running them explores more
    /// schedules, on which `never` invariants without negated atoms are checked too, at the
    /// cost of more runs. `--refines` always compares on the full exploration.
    #[arg(long)]
    pub run_covered: bool,
    /// Stop (inconclusive) after this many runs.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_executions: u64,
    /// Write artifacts here: per counterexample a spacetime diagram (SVG) and the lineage of
    /// the violated facts (DOT and SVG), `runs.json` (every run) and `report.json`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<String>,
    #[arg(long, value_enum, default_value_t = VerifyFormat::Text)]
    pub format: VerifyFormat,
    /// Check that this version refines OLD (its files; defaults to the source named in the
    /// program's rewrite header): OLD runs on the --facts mapped back through the
    /// justification, and the outputs compare as it promises (every tick on the fault
    /// schedules explored for OLD, eventually, or not for a quorum change); then verify it,
    /// replaying OLD's counterexamples and fault sets first.
    #[arg(long, value_name = "OLD", num_args = 0..)]
    pub refines: Option<Vec<String>>,
    /// The justification record of the rewrite (relation and node maps, generated facts) for
    /// --refines; by default `justification.json` in the new program's directory, if it exists.
    #[arg(long, value_name = "FILE")]
    pub justification: Option<String>,
    /// List which supports of the `post` facts the rewrite from OLD to NEW added or removed.
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"], conflicts_with_all = ["files", "refines"])]
    pub explain_diff: Vec<String>,
    /// Which engine runs the executions: `reference` (the reference evaluator) or `timely`
    /// (the timely runtime, traced). Both give the same verdicts, counterexamples and
    /// execution counts.
    #[arg(long, value_enum, default_value_t = Engine::Reference)]
    pub engine: Engine,
    /// Executions run at once, each on a thread of its own (with `--engine timely`, a timely
    /// worker): LDFI runs the candidates it is about to run together. The search and its
    /// result do not depend on it.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub workers: u64,
    /// The cache directory (default: `.graft/cache` beside the first program file).
    #[arg(long, value_name = "DIR")]
    pub cache: Option<String>,
    /// Neither read nor write the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Given a directory: run this many verifications at once.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub jobs: u64,
}

impl VerifyArgs {
    /// The options `graft verify` has when only files and bounds are given (used by
    /// `graft report`, which then sets a configuration with [`VerifyArgs::for_job`]).
    pub fn defaults(no_cache: bool) -> VerifyArgs {
        VerifyArgs {
            files: Vec::new(),
            facts: Vec::new(),
            eot: None,
            eff: 0,
            crashes: 0,
            max_delay: 0,
            nodes: Vec::new(),
            strategy: Strategy::Ldfi,
            runs: None,
            seed: 0,
            all: false,
            use_symmetry: false,
            run_covered: false,
            max_executions: 10_000,
            out: None,
            format: VerifyFormat::Text,
            refines: None,
            justification: None,
            explain_diff: Vec::new(),
            engine: Engine::Reference,
            workers: 1,
            cache: None,
            no_cache,
            jobs: 1,
        }
    }

    /// The end of time (`run` has checked that it was given).
    fn end_of_time(&self) -> u64 {
        self.eot.unwrap_or(1)
    }

    /// The arguments of one verification of a tree: this configuration, the other options
    /// (engine, workers, cache, limits) as given.
    pub fn for_job(&self, job: &VerifyJob, refines: bool) -> VerifyArgs {
        let justification = job
            .program
            .parent()
            .map(|directory| directory.join("justification.json"))
            .filter(|path| refines && path.is_file())
            .map(|path| path.to_string_lossy().into_owned());
        VerifyArgs {
            files: vec![job.program.to_string_lossy().into_owned()],
            facts: job
                .facts
                .iter()
                .map(|path| path.to_string_lossy().into_owned())
                .collect(),
            eot: Some(job.config.eot),
            eff: job.config.eff,
            crashes: job.config.crashes,
            max_delay: job.config.max_delay,
            nodes: job.config.nodes.clone(),
            strategy: Strategy::Ldfi,
            runs: None,
            seed: 0,
            all: false,
            use_symmetry: job.config.symmetry,
            run_covered: self.run_covered,
            max_executions: self.max_executions,
            out: None,
            format: VerifyFormat::Text,
            refines: job
                .refines
                .as_ref()
                .filter(|_| refines)
                .map(|source| vec![source.to_string_lossy().into_owned()]),
            justification,
            explain_diff: Vec::new(),
            engine: self.engine,
            workers: self.workers,
            cache: self.cache.clone(),
            no_cache: self.no_cache,
            jobs: 1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    Ldfi,
    Random,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum VerifyFormat {
    Text,
    Json,
}

/// What the cache keeps for one program version.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    format: String,
    version: String,
    entries: Vec<CacheEntry>,
}

/// One verification of a version: the inputs it ran on, and what it found.
#[derive(Debug, Serialize, Deserialize)]
struct CacheEntry {
    /// Hash of the workload files, bounds and nodes.
    key: String,
    facts: Vec<String>,
    bounds: Bounds,
    verdict: Verdict,
    counterexamples: Vec<FaultSet>,
    /// Fault sets of good runs, in the order run.
    explored: Vec<FaultSet>,
    /// Runs made (0 in caches written before it was recorded).
    #[serde(default)]
    executions: u64,
    /// The execution at which each counterexample was found.
    #[serde(default)]
    found_at: Vec<u64>,
    /// Why the search was inconclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limit: Option<String>,
}

/// Version 2: searches leave out candidates covered by an earlier run, so the execution counts
/// and explored schedules of version 1 entries are no longer those of a search.
const CACHE_FORMAT: &str = "graft-verify-cache/2";

/// FNV-1a (64 bit) as `fnv1a64:` and 16 hex digits: the same version id as rewrite records.
fn content_hash(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("fnv1a64:{hash:016x}")
}

fn files_hash(files: &[String]) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    for file in files {
        bytes.extend(std::fs::read(file).with_context(|| format!("cannot read `{file}`"))?);
    }
    Ok(content_hash(&bytes))
}

struct Prepared {
    verifier: Verifier,
    version: String,
}

/// Loads and checks a version and prepares its verifier. With `exact_nodes`, a non-empty
/// `--nodes` is the complete node set; otherwise it adds to the nodes the facts name.
fn prepare(
    context: &Context,
    files: &[String],
    args: &VerifyArgs,
    exact_nodes: bool,
) -> anyhow::Result<Option<Prepared>> {
    prepare_with(context, files, args, exact_nodes, None)
}

/// [`prepare`], with the facts given as texts (a source version's facts mapped back) instead
/// of `--facts`.
fn prepare_with(
    context: &Context,
    files: &[String],
    args: &VerifyArgs,
    exact_nodes: bool,
    facts_texts: Option<&[crate::load::FactsText]>,
) -> anyhow::Result<Option<Prepared>> {
    let options = RunOptions {
        files: files.to_vec(),
        facts: args.facts.clone(),
        eot: Some(args.end_of_time()),
        max_ticks: args.end_of_time(),
        nodes: args.nodes.clone(),
        drops: Vec::new(),
        crashes: Vec::new(),
        delays: Vec::new(),
        crash_model: CrashModelArg::Molly,
    };
    let loaded = match facts_texts {
        Some(texts) => program::load_and_check_with(context, &options, texts)?,
        None => program::load_and_check(context, &options)?,
    };
    let Loaded::Ready(loaded) = loaded else {
        return Ok(None);
    };
    if !loaded.warnings.is_empty() && !context.quiet {
        render::emit_diagnostics(&loaded.sources, &loaded.warnings, context.color);
    }
    let bounds = Bounds {
        eot: args.end_of_time(),
        eff: args.eff,
        crashes: args.crashes,
        max_delay: args.max_delay,
    };
    let extra_nodes: BTreeSet<String> = args
        .nodes
        .iter()
        .map(|node| node.trim().trim_matches('"').to_string())
        .filter(|node| !node.is_empty())
        .collect();
    let verifier = if exact_nodes && !extra_nodes.is_empty() {
        Verifier::with_exact_nodes(&loaded.checked, loaded.facts.clone(), extra_nodes, bounds)?
    } else {
        Verifier::new(&loaded.checked, loaded.facts.clone(), extra_nodes, bounds)?
    };
    let engine = match args.engine {
        Engine::Reference => graft_verify::Engine::Reference,
        Engine::Timely => graft_verify::Engine::Timely,
    };
    let workers = usize::try_from(args.workers).unwrap_or(1);
    let verifier = if engine == graft_verify::Engine::Reference && workers == 1 {
        verifier
    } else {
        verifier.using(&loaded.checked, engine, workers)?
    };
    Ok(Some(Prepared {
        verifier,
        version: files_hash(files)?,
    }))
}

fn cache_directory(args: &VerifyArgs, files: &[String]) -> Option<PathBuf> {
    if args.no_cache {
        return None;
    }
    if let Some(directory) = &args.cache {
        return Some(PathBuf::from(directory));
    }
    let first = files.first()?;
    let parent = Path::new(first).parent().unwrap_or(Path::new(""));
    Some(parent.join(".graft").join("cache"))
}

fn cache_path(directory: &Path, version: &str) -> PathBuf {
    directory.join(format!("{}.json", version.replace(':', "-")))
}

fn read_cache(directory: Option<&Path>, version: &str) -> CacheFile {
    let Some(directory) = directory else {
        return CacheFile::default();
    };
    std::fs::read_to_string(cache_path(directory, version))
        .ok()
        .and_then(|text| serde_json::from_str::<CacheFile>(&text).ok())
        .filter(|cache| cache.format == CACHE_FORMAT)
        .unwrap_or_default()
}

/// Cache writes of this process, one at a time (the jobs of `graft verify DIR` run in
/// parallel and may share a version's file).
static CACHE_WRITES: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn write_cache(directory: &Path, version: &str, cache: CacheFile, entry: CacheEntry) {
    let _one_at_a_time = CACHE_WRITES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Other verifications may have added entries since `cache` was read: start from the file
    // as it is now.
    let current = read_cache(Some(directory), version);
    let mut cache = if current.entries.is_empty() {
        cache
    } else {
        current
    };
    cache.format = CACHE_FORMAT.to_string();
    cache.version = version.to_string();
    cache.entries.retain(|old| old.key != entry.key);
    cache.entries.push(entry);
    let written = std::fs::create_dir_all(directory)
        .map_err(anyhow::Error::from)
        .and_then(|()| {
            let text = serde_json::to_string_pretty(&cache).unwrap_or_default();
            // Through a temporary file and a rename: a reader never sees half a file.
            write_atomically(&cache_path(directory, version), &(text + "\n"))
        });
    if let Err(error) = written {
        eprintln!(
            "warning: cannot write the verification cache in `{}`: {error:#}",
            directory.display()
        );
    }
}

/// How a search explores: its cache entries (whose explored schedules `--refines` replays)
/// are kept apart by it.
#[derive(Clone, Copy)]
struct Exploration {
    symmetry: bool,
    skip_covered: bool,
}

impl Exploration {
    /// The search `graft verify` makes with these options.
    fn of(args: &VerifyArgs) -> Exploration {
        Exploration {
            symmetry: args.use_symmetry,
            skip_covered: !args.run_covered,
        }
    }

    /// Every candidate run, no class of schedules left out: what `--refines` compares on.
    const FULL: Exploration = Exploration {
        symmetry: false,
        skip_covered: false,
    };
}

fn entry_key(
    args: &VerifyArgs,
    bounds: &Bounds,
    nodes: &[String],
    exploration: Exploration,
) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    for file in &args.facts {
        bytes.extend(std::fs::read(file).with_context(|| format!("cannot read `{file}`"))?);
        bytes.push(0);
    }
    bytes.extend(
        format!(
            "{}/{}/{}/{}{}",
            bounds.eot,
            bounds.eff,
            bounds.crashes,
            nodes.join(","),
            // A symmetric search explores one schedule per class: its list of explored
            // schedules (replayed by `--refines`) is not the full one.
            if exploration.symmetry {
                "/symmetry"
            } else {
                ""
            }
        )
        .bytes(),
    );
    // Nor is the list of a search that left out covered candidates.
    if exploration.skip_covered {
        bytes.extend(b"/skip-covered");
    }
    // Only under delays, so that the keys of earlier caches stay valid.
    bytes.extend(
        (if bounds.max_delay > 0 {
            format!("/delay{}", bounds.max_delay)
        } else {
            String::new()
        })
        .bytes(),
    );
    Ok(content_hash(&bytes))
}

/// The progress line's detail for one search.
fn progress_detail(progress: &Progress, bounds: &Bounds) -> String {
    format!(
        "{} queued, {} counterexample(s); EOT {}, EFF {}, crashes {}{}",
        progress.queued,
        progress.counterexamples,
        bounds.eot,
        bounds.eff,
        bounds.crashes,
        if bounds.max_delay > 0 {
            format!(", max delay {}", bounds.max_delay)
        } else {
            String::new()
        }
    )
}

/// What one verification found, before anything is printed or written.
pub struct Verified {
    pub verifier: Verifier,
    pub search: Search,
    pub report: Report,
    refinement_text: String,
    refinement_json: serde_json::Value,
    /// A `--refines` comparison found a divergence.
    pub diverged: bool,
}

impl Verified {
    /// The exit status of `graft verify` for it.
    pub fn outcome(&self) -> Outcome {
        match self.search.verdict {
            _ if self.diverged => Outcome::ProgramErrors,
            Verdict::Counterexample => Outcome::ProgramErrors,
            Verdict::Certified => Outcome::Success,
            Verdict::Inconclusive => Outcome::Inconclusive,
        }
    }
}

pub fn run(context: &Context, args: &VerifyArgs) -> anyhow::Result<Outcome> {
    if let [directory] = args.files.as_slice()
        && Path::new(directory).is_dir()
    {
        return verify_tree(context, args, Path::new(directory));
    }
    let Some(eot) = args.eot else {
        bail!(
            "--eot N is required: the end of time of every run (or name a protocol directory, whose protocol.json gives the bounds)"
        );
    };
    if let [old, new] = args.explain_diff.as_slice() {
        return explain_diff(context, args, old, new);
    }
    if args.eff > eot {
        bail!(
            "--eff {} is after --eot {eot}: omissions must happen before the end of time",
            args.eff,
        );
    }
    if args.runs.is_some() && args.strategy != Strategy::Random {
        bail!("--runs applies to --strategy random");
    }
    let mut progress = ProgressLine::new(
        "verify",
        "executions",
        progress::wanted(args.format == VerifyFormat::Json),
    );
    let bounds = Bounds {
        eot,
        eff: args.eff,
        crashes: args.crashes,
        max_delay: args.max_delay,
    };
    let verified = verify_files(context, args, &mut |event| {
        progress.update(event.executions, &progress_detail(&event, &bounds));
    })?;
    progress.finish();
    let Some(verified) = verified else {
        return Ok(Outcome::ProgramErrors);
    };
    if let Some(out) = &args.out {
        write_artifacts(
            Path::new(out),
            &verified.verifier,
            &verified.search,
            &verified.report,
        )?;
    }
    let mut stdout = std::io::stdout().lock();
    match args.format {
        VerifyFormat::Text => {
            stdout.write_all(verified.refinement_text.as_bytes())?;
            stdout.write_all(verified.report.text().as_bytes())?;
        }
        VerifyFormat::Json => {
            let mut value = serde_json::to_value(&verified.report)?;
            if let (Some(object), false) =
                (value.as_object_mut(), verified.refinement_json.is_null())
            {
                object.insert("refines".to_string(), verified.refinement_json.clone());
            }
            writeln!(stdout, "{}", serde_json::to_string_pretty(&value)?)?;
        }
    }
    if progress.enabled() {
        eprintln!(
            "verify: {} executions in {:.2} s",
            verified.report.executions, verified.report.seconds
        );
    }
    Ok(verified.outcome())
}

/// One verification of `args.files` (with `--refines` when asked), the cache read and
/// written; prints nothing but the program's diagnostics. `None` when the program or its
/// facts have errors (rendered on standard error).
pub fn verify_files(
    context: &Context,
    args: &VerifyArgs,
    on_progress: &mut dyn FnMut(Progress),
) -> anyhow::Result<Option<Verified>> {
    let Some(new) = prepare(context, &args.files, args, args.refines.is_none())? else {
        return Ok(None);
    };
    let verifier = &new.verifier;
    let cache_dir = cache_directory(args, &args.files);
    let key = entry_key(
        args,
        &verifier.bounds,
        verifier.nodes(),
        Exploration::of(args),
    )?;
    let cache = read_cache(cache_dir.as_deref(), &new.version);
    let mut replay: Vec<FaultSet> = Vec::new();
    for entry in &cache.entries {
        replay.extend(entry.counterexamples.iter().cloned());
    }

    // Refinement against the old version.
    let mut refinement_text = String::new();
    let mut refinement_json = serde_json::Value::Null;
    let mut diverged = false;
    if let Some(old_files) = &args.refines {
        let old_files = if old_files.is_empty() {
            header_source(&args.files)?
        } else {
            old_files.clone()
        };
        let record = justification_for(args)?;
        // The one rule: the source runs on the new version's facts mapped back through the
        // justification (without one, on the same facts).
        let mapped_facts = match &record {
            Some((_, justification)) => {
                match crate::protocol::source_facts(justification, &args.files, &args.facts)? {
                    Ok(texts) => Some(texts),
                    Err(rendered) => {
                        eprint!("{rendered}");
                        return Ok(None);
                    }
                }
            }
            None => None,
        };
        let Some(old) = prepare_with(context, &old_files, args, false, mapped_facts.as_deref())?
        else {
            return Ok(None);
        };
        let (mapping, mapping_source) = mapping_for(record.as_ref(), &old.verifier, verifier)?;
        if let Some((path, justification)) = &record {
            let hash = files_hash(&args.files)?;
            if hash != justification.output_hash {
                let _ = writeln!(
                    refinement_text,
                    "note: {} records the output {}, but {} hashes to {hash}: the version was edited after the rewrite",
                    path.display(),
                    justification.output_hash,
                    args.files.join(" ")
                );
            }
            let source_hash = files_hash(&old_files)?;
            if source_hash != justification.source.hash {
                let _ = writeln!(
                    refinement_text,
                    "note: {} was derived from {} ({}), but {} hashes to {source_hash}: the source changed since the rewrite",
                    path.display(),
                    justification.source.files.join(" "),
                    justification.source.hash,
                    old_files.join(" ")
                );
            }
            for hint in missing_generated_facts(justification, verifier) {
                let _ = writeln!(refinement_text, "note: {hint}");
            }
        }
        let comparison_mode = record
            .as_ref()
            .map_or(Comparison::PerTick, |(_, j)| j.comparison);
        // Schedules explored for OLD: from its cache, or by verifying it now (only to compare
        // outputs on them: for an eventual comparison or none, the cache's are replayed).
        let old_cache_dir = cache_directory(args, &old_files);
        let old_cache = read_cache(old_cache_dir.as_deref(), &old.version);
        let mut schedules: Vec<FaultSet> = Vec::new();
        let mut old_known: Vec<FaultSet> = Vec::new();
        // Compared on the full exploration: every candidate run, none left out as covered or
        // as a renaming.
        let full_key = entry_key(args, &verifier.bounds, verifier.nodes(), Exploration::FULL)?;
        if let Some(entry) = old_cache.entries.iter().find(|entry| entry.key == full_key) {
            old_known.extend(entry.counterexamples.iter().cloned());
            schedules.extend(entry.counterexamples.iter().cloned());
            schedules.extend(entry.explored.iter().cloned());
        } else if comparison_mode == Comparison::PerTick {
            let options = SearchOptions {
                all: true,
                max_executions: args.max_executions,
                replay: Vec::new(),
                // Refinement compares the versions on every schedule explored.
                symmetry: Exploration::FULL.symmetry,
                skip_covered: Exploration::FULL.skip_covered,
            };
            let search = old.verifier.ldfi(&options, &mut |_| {})?;
            old_known.extend(
                search
                    .counterexamples
                    .iter()
                    .map(|found| found.execution.faults.clone()),
            );
            schedules.extend(old_known.iter().cloned());
            schedules.extend(search.explored.iter().cloned());
            if let Some(directory) = &old_cache_dir {
                write_cache(
                    directory,
                    &old.version,
                    old_cache,
                    cache_entry(args, &full_key, &verifier.bounds, &search),
                );
            }
        }
        let comparison = match comparison_mode {
            Comparison::PerTick => {
                let comparison = refine::compare(&old.verifier, verifier, &mapping, &schedules)?;
                let _ = writeln!(
                    refinement_text,
                    "refines {} ({mapping_source}): compared {} relation(s) on {} fault schedule(s)",
                    old_files.join(" "),
                    mapping.relations.len(),
                    comparison.schedules
                );
                comparison
            }
            Comparison::Eventual => {
                let _ = writeln!(
                    refinement_text,
                    "refines {} ({mapping_source}): the rewrite promises the same outputs eventually (it delays messages, so fault schedules do not carry over tick by tick): compared the outputs ever held and at the last tick, on the failure-free runs until quiescence, as `graft test` does",
                    old_files.join(" "),
                );
                eventual_comparison(args, &old_files, mapped_facts.as_deref(), record.as_ref())?
            }
            Comparison::None => {
                let _ = writeln!(
                    refinement_text,
                    "refines {} ({mapping_source}): outputs not compared: the rewrite may change them (a quorum change); the invariants are verified below",
                    old_files.join(" "),
                );
                refine::Comparison {
                    schedules: 0,
                    divergence: None,
                }
            }
        };
        match &comparison.divergence {
            None if comparison_mode == Comparison::None => {
                refinement_json = serde_json::json!({
                    "old": old_files,
                    "mapping": mapping_source,
                    "comparison": "none",
                    "schedules": 0,
                    "divergence": null,
                });
            }
            None => {
                let _ = writeln!(
                    refinement_text,
                    "  {}",
                    if comparison_mode == Comparison::Eventual {
                        "same outputs eventually"
                    } else {
                        "same outputs at every tick"
                    }
                );
                refinement_json = serde_json::json!({
                    "old": old_files,
                    "mapping": mapping_source,
                    "comparison": comparison_name(comparison_mode),
                    "schedules": comparison.schedules,
                    "divergence": null,
                });
            }
            Some(divergence) => {
                diverged = true;
                let _ = writeln!(
                    refinement_text,
                    "  first divergence under {}: `{}` at tick {}",
                    divergence.faults, divergence.relation, divergence.tick
                );
                let late_cause = if divergence.faults.delays.is_empty() {
                    None
                } else {
                    late_messages_cause(
                        &old.verifier,
                        verifier,
                        &mapping,
                        &divergence.faults,
                        record.as_ref().map(|(_, j)| j),
                    )?
                };
                for fact in &divergence.only_old {
                    let _ = writeln!(refinement_text, "    only in the old version: {fact}");
                }
                for fact in &divergence.only_new {
                    let _ = writeln!(refinement_text, "    only in the new version: {fact}");
                }
                if let Some(cause) = &late_cause {
                    for line in cause.text.lines() {
                        let _ = writeln!(refinement_text, "  {line}");
                    }
                }
                let _ = writeln!(refinement_text, "  old trace:");
                for line in divergence.old_trace.lines() {
                    let _ = writeln!(refinement_text, "    {line}");
                }
                let _ = writeln!(refinement_text, "  new trace (mapped back):");
                for line in divergence.new_trace.lines() {
                    let _ = writeln!(refinement_text, "    {line}");
                }
                refinement_json = serde_json::json!({
                    "old": old_files,
                    "mapping": mapping_source,
                    "comparison": comparison_name(comparison_mode),
                    "schedules": comparison.schedules,
                    "divergence": {
                        "drops": divergence.faults.drops,
                        "crashes": divergence.faults.crash_list(),
                        "tick": divergence.tick,
                        "relation": divergence.relation,
                        "only_old": divergence.only_old,
                        "only_new": divergence.only_new,
                        "old_trace": divergence.old_trace,
                        "new_trace": divergence.new_trace,
                    },
                });
                // Late messages only under --max-delay, so output without them is unchanged.
                if !divergence.faults.delays.is_empty() {
                    refinement_json["divergence"]["delays"] =
                        serde_json::json!(divergence.faults.delays);
                }
                if let Some(cause) = late_cause {
                    refinement_json["divergence"]["late"] = cause.json;
                }
            }
        }
        // Under --max-delay, an eventual comparison also runs every schedule of late messages
        // (a per-tick one already compared on OLD's schedules, which include late messages).
        if args.max_delay > 0 && comparison_mode == Comparison::Eventual && !diverged {
            let late = late_comparison(args, &old_files, mapped_facts.as_deref(), record.as_ref())?;
            let _ = writeln!(
                refinement_text,
                "  under late messages (every message late by 1..={} tick(s), as in `graft test --max-delay`): {} schedule(s){}",
                args.max_delay,
                late.schedules,
                if late.capped {
                    format!(" (the first {} only)", compare::DELAY_CASE_CAP)
                } else {
                    String::new()
                }
            );
            let divergence = late.unrecorded.as_ref().or(late.recorded.as_ref());
            match divergence {
                None => {
                    let _ = writeln!(refinement_text, "  same outputs eventually");
                }
                Some(divergence) => {
                    diverged = true;
                    for line in divergence.describe().lines() {
                        let _ = writeln!(refinement_text, "  {line}");
                    }
                    for (title, text) in [
                        ("old outputs under it", &divergence.source_text),
                        (
                            "new outputs under it (mapped back)",
                            &divergence.mapped_text,
                        ),
                    ] {
                        let _ = writeln!(refinement_text, "  {title}:");
                        if text.trim().is_empty() {
                            let _ = writeln!(refinement_text, "    (none)");
                        }
                        for line in text.lines() {
                            let _ = writeln!(refinement_text, "    {line}");
                        }
                    }
                }
            }
            refinement_json["late"] = serde_json::json!({
                "max_delay": args.max_delay,
                "schedules": late.schedules,
                "divergence": divergence.map(late_json),
            });
        }
        // OLD's counterexamples, then its explored fault sets, mapped to NEW's nodes.
        let mut old_first: Vec<FaultSet> = old_known.iter().map(|f| mapping.schedule(f)).collect();
        old_first.extend(replay);
        old_first.extend(schedules.iter().map(|f| mapping.schedule(f)));
        replay = old_first;
    }

    let options = SearchOptions {
        all: args.all,
        max_executions: args.max_executions,
        replay,
        symmetry: args.use_symmetry,
        skip_covered: !args.run_covered,
    };
    let start = Instant::now();
    let (search, random_summary) = match args.strategy {
        Strategy::Ldfi => (verifier.ldfi(&options, on_progress)?, None),
        Strategy::Random => {
            let runs = args.runs.unwrap_or(1);
            let mut first: Option<Search> = None;
            let mut executions = Vec::new();
            let mut total = 0_u64;
            let mut found = 0_u64;
            for index in 0..runs {
                let seed = args.seed.wrapping_add(index);
                let search = verifier.random(&options, seed, on_progress)?;
                executions.push(search.executions);
                if search.verdict == Verdict::Counterexample {
                    found += 1;
                    total += search.executions;
                }
                if first.is_none() {
                    first = Some(search);
                }
            }
            let Some(mut first) = first else {
                bail!("--runs must be at least 1");
            };
            let summary = args.runs.map(|runs| RandomSummary {
                runs,
                first_seed: args.seed,
                found,
                mean_executions: (found > 0).then(|| total as f64 / found as f64),
                executions: executions.clone(),
            });
            if args.runs.is_some() {
                first.executions = executions.iter().sum();
            }
            (first, summary)
        }
    };
    let seconds = start.elapsed().as_secs_f64();

    let strategy = match args.strategy {
        Strategy::Ldfi => "ldfi",
        Strategy::Random => "random",
    };
    let mut report = Report::new(
        strategy,
        &search,
        verifier.fault_space().to_string(),
        verifier.bounds,
        verifier.nodes().to_vec(),
    );
    report.seconds = seconds;
    report.random = random_summary;

    if let Some(directory) = &cache_dir
        && args.strategy == Strategy::Ldfi
    {
        write_cache(
            directory,
            &new.version,
            cache,
            cache_entry(args, &key, &verifier.bounds, &search),
        );
    }
    Ok(Some(Verified {
        verifier: new.verifier,
        search,
        report,
        refinement_text,
        refinement_json,
        diverged,
    }))
}

fn cache_entry(args: &VerifyArgs, key: &str, bounds: &Bounds, search: &Search) -> CacheEntry {
    CacheEntry {
        key: key.to_string(),
        facts: args.facts.clone(),
        bounds: *bounds,
        verdict: search.verdict,
        counterexamples: search
            .counterexamples
            .iter()
            .map(|found| found.execution.faults.clone())
            .collect(),
        explored: search.explored.clone(),
        executions: search.executions,
        found_at: search
            .counterexamples
            .iter()
            .map(|found| found.iteration)
            .collect(),
        limit: search.limit.clone(),
    }
}

/// The source files named in a rewritten program's header
/// (`// Generated by `graft rewrite` from FILES (HASH).`). The names are as the rewrite was
/// run: relative to the directory it ran in, which may be the working directory, the
/// version's directory, or its protocol's (`DIR/versions/NAME` was written from `DIR`). The
/// first of those where the files exist and hash to the header's hash wins; failing that, the
/// first where they exist (the comparison then notes that the source changed).
fn header_source(files: &[String]) -> anyhow::Result<Vec<String>> {
    let Some(first) = files.first() else {
        bail!("name the new version's files");
    };
    let text = crate::load::read_text(first)?;
    for line in text.lines().take(20) {
        let line = line.trim_start_matches('/').trim();
        if let Some(rest) = line.strip_prefix("Generated by `graft rewrite` from ") {
            let (names, hash) = rest.rsplit_once(" (").map_or((rest, ""), |(names, hash)| {
                (names, hash.trim_end_matches(['.', ')']))
            });
            let names: Vec<&str> = names.split(", ").collect();
            if names.iter().any(|name| Path::new(name).is_absolute()) {
                return Ok(names.iter().map(|name| (*name).to_owned()).collect());
            }
            let version = Path::new(first).parent().unwrap_or(Path::new(""));
            let mut bases = vec![PathBuf::new(), version.to_path_buf()];
            if version
                .parent()
                .is_some_and(|parent| parent.file_name().is_some_and(|n| n == "versions"))
                && let Some(protocol) = version.parent().and_then(Path::parent)
            {
                bases.push(protocol.to_path_buf());
            }
            let candidates: Vec<Vec<String>> = bases
                .iter()
                .map(|base| {
                    names
                        .iter()
                        .map(|name| base.join(name).to_string_lossy().into_owned())
                        .collect()
                })
                .filter(|paths: &Vec<String>| paths.iter().all(|path| Path::new(path).is_file()))
                .collect();
            let matching = candidates
                .iter()
                .find(|paths| files_hash(paths).is_ok_and(|found| found == hash));
            return match matching.or(candidates.first()) {
                Some(paths) => Ok(paths.clone()),
                None => bail!(
                    "`{first}` was derived from {}, which is not found here, in the version's directory or in its protocol's: give the old version's files after --refines",
                    names.join(", ")
                ),
            };
        }
    }
    bail!(
        "`{first}` has no rewrite header naming its source: give the old version's files after --refines"
    )
}

/// The justification record for `--refines`: `--justification FILE`, or by default the
/// `justification.json` in the new version's directory (where `graft rewrite` and the protocol
/// layout put it), when there is one. Returns its path and the record.
fn justification_for(args: &VerifyArgs) -> anyhow::Result<Option<(PathBuf, Justification)>> {
    let default_path = args.files.first().map(|first| {
        Path::new(first)
            .parent()
            .unwrap_or(Path::new(""))
            .join("justification.json")
    });
    let path = match &args.justification {
        Some(path) => Some(PathBuf::from(path)),
        None => default_path.filter(|path| path.is_file()),
    };
    let Some(path) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    let record: Justification = serde_json::from_str(&text).with_context(|| {
        format!(
            "`{}` is not a justification record (see docs/rewrites.md)",
            path.display()
        )
    })?;
    Ok(Some((path, record)))
}

fn comparison_name(comparison: Comparison) -> &'static str {
    match comparison {
        Comparison::PerTick => "per-tick",
        Comparison::Eventual => "eventual",
        Comparison::None => "none",
    }
}

/// Inputs of the new version that a pass added (routing tables and the like) but that the given
/// facts leave empty: the facts are probably the source's, not the version's own.
fn missing_generated_facts(justification: &Justification, new: &Verifier) -> Vec<String> {
    let program = new.program();
    let given: BTreeSet<graft_compiler::ir::RelId> =
        new.facts().iter().map(|fact| fact.rel).collect();
    let mut hints = Vec::new();
    for pass in &justification.passes {
        let empty: Vec<String> = pass
            .added_relations
            .iter()
            .filter(|name| {
                program
                    .relation_by_name(name)
                    .is_some_and(|rel| program.relation(rel).input && !given.contains(&rel))
            })
            .map(|name| format!("`{name}`"))
            .collect();
        if !empty.is_empty() {
            hints.push(format!(
                "the inputs {} that `{}` added have no facts: give the version's own facts files (from its directory), not the source's",
                empty.join(", "),
                pass.request
            ));
        }
    }
    hints
}

/// The eventual comparison of `graft test` on the failure-free runs until quiescence: the new
/// version on `--facts`, the source on the same facts mapped back.
fn eventual_comparison(
    args: &VerifyArgs,
    old_files: &[String],
    mapped: Option<&[crate::load::FactsText]>,
    record: Option<&(PathBuf, Justification)>,
) -> anyhow::Result<refine::Comparison> {
    let [new_program] = args.files.as_slice() else {
        bail!("an eventual comparison needs the new version as one program file");
    };
    let [old_program] = old_files else {
        bail!("an eventual comparison needs the old version as one program file");
    };
    let Some((_, justification)) = record else {
        bail!("an eventual comparison needs the rewrite's justification record");
    };
    let new_facts = crate::load::read_facts(&args.facts)?;
    let old_facts = mapped.map_or_else(|| new_facts.clone(), <[_]>::to_vec);
    let new_run = crate::commands::test::run_version(Path::new(new_program), &new_facts, &[])?;
    let old_run = crate::commands::test::run_version(Path::new(old_program), &old_facts, &[])?;
    let (new_run, old_run) = match (new_run, old_run) {
        (Ok(new_run), Ok(old_run)) => (new_run, old_run),
        (Err(rendered), _) | (_, Err(rendered)) => bail!("{rendered}"),
    };
    let mapped_new = compare::map_back(justification, &new_run.facts);
    let divergence = compare::compare(
        Comparison::Eventual,
        &old_run.facts,
        &mapped_new,
        old_run.last_tick,
        new_run.last_tick,
    );
    if divergence.is_empty() {
        return Ok(refine::Comparison {
            schedules: 1,
            divergence: None,
        });
    }
    Ok(refine::Comparison {
        schedules: 1,
        divergence: Some(refine::Divergence {
            faults: FaultSet::default(),
            tick: old_run.last_tick.max(new_run.last_tick),
            relation: "outputs (eventual)".to_owned(),
            only_old: divergence.only_source,
            only_new: divergence.only_new,
            old_trace: old_run.text,
            new_trace: compare::render_facts(&mapped_new),
        }),
    })
}

/// The schedules of late messages of `graft test --max-delay` (`crate::late`) for an
/// eventual comparison: the new version on `--facts`, the source on the same facts mapped
/// back, both until quiescence.
fn late_comparison(
    args: &VerifyArgs,
    old_files: &[String],
    mapped: Option<&[crate::load::FactsText]>,
    record: Option<&(PathBuf, Justification)>,
) -> anyhow::Result<late::LateCheck> {
    let [new_program] = args.files.as_slice() else {
        bail!("a comparison under late messages needs the new version as one program file");
    };
    let [old_program] = old_files else {
        bail!("a comparison under late messages needs the old version as one program file");
    };
    let Some((_, justification)) = record else {
        bail!("a comparison under late messages needs the rewrite's justification record");
    };
    let new_facts = crate::load::read_facts(&args.facts)?;
    let old_facts = mapped.map_or_else(|| new_facts.clone(), <[_]>::to_vec);
    let new = late::Prepared::new(Path::new(new_program), &new_facts)?;
    let old = late::Prepared::new(Path::new(old_program), &old_facts)?;
    let (new, old) = match (new, old) {
        (Ok(new), Ok(old)) => (new, old),
        (Err(rendered), _) | (_, Err(rendered)) => bail!("{rendered}"),
    };
    late::check_late(&old, &new, justification, args.max_delay)
}

/// A divergence under late messages as JSON.
fn late_json(divergence: &late::LateDivergence) -> serde_json::Value {
    serde_json::json!({
        "source_delay": divergence.case.source.as_ref().map(|(from, to, tick)| {
            serde_json::json!({"from": from, "to": to, "tick": tick, "by": divergence.case.by})
        }),
        "version_delays": divergence.case.version.iter().map(|(from, to, tick)| {
            serde_json::json!({"from": from, "to": to, "tick": tick, "by": divergence.case.by})
        }).collect::<Vec<_>>(),
        "late_messages": divergence.case.messages,
        "comparison": comparison_name(divergence.comparison),
        "only_old": divergence.divergence.only_source,
        "only_new": divergence.divergence.only_new,
        "recorded_assumption": !divergence.recorded.is_empty(),
        "meaning": divergence.verdict(),
    })
}

/// Why a per-tick divergence under a schedule with late messages happened.
struct LateCause {
    text: String,
    json: serde_json::Value,
}

/// When a schedule with late messages makes the versions diverge but the same schedule
/// without them does not, the divergence is the late messages' doing: names them (as the new
/// version sends them) and the recorded synchronous-delivery assumptions that cover them.
/// `None` when the versions diverge without the late messages too.
fn late_messages_cause(
    old: &Verifier,
    new: &Verifier,
    mapping: &Mapping,
    faults: &FaultSet,
    justification: Option<&Justification>,
) -> anyhow::Result<Option<LateCause>> {
    let mut on_time = faults.clone();
    on_time.delays.clear();
    let without = refine::compare(old, new, mapping, std::slice::from_ref(&on_time))?;
    if without.divergence.is_some() {
        return Ok(None);
    }
    let run = new.run(&mapping.schedule(faults))?;
    let program = new.program();
    let mut late: Vec<String> = Vec::new();
    let mut relations: BTreeSet<String> = BTreeSet::new();
    for message in run.messages.iter().filter(|message| message.delay > 0) {
        let name = &program.relation(message.rel).name;
        relations.insert(name.clone());
        late.push(format!(
            "{} {}->{}@{} (+{} late)",
            graft_verify::spec::render(name, &message.tuple),
            graft_verify::lineage::node_name(&message.sender),
            graft_verify::lineage::node_name(&message.dest),
            message.send_tick,
            message.delay
        ));
    }
    let covering = justification
        .map(|j| late::covering(j, &relations))
        .unwrap_or_default();
    let meaning = late::meaning(justification.is_some(), &covering);
    let mut text = format!(
        "the divergence is the late messages' doing (without them the schedule gives the same outputs); {meaning}\n"
    );
    for message in &late {
        let _ = writeln!(text, "late: {message}");
    }
    Ok(Some(LateCause {
        text,
        json: serde_json::json!({
            "late_messages": late,
            "recorded_assumption": !covering.is_empty(),
            "meaning": meaning,
        }),
    }))
}

/// The relation and node mapping: from the justification record when there is one, else the
/// identity on names. Returns the mapping and a description of where it came from.
fn mapping_for(
    record: Option<&(PathBuf, Justification)>,
    old: &Verifier,
    new: &Verifier,
) -> anyhow::Result<(Mapping, String)> {
    if let Some((path, record)) = record {
        let mut mapping = Mapping::default();
        let added: BTreeSet<&str> = record
            .passes
            .iter()
            .flat_map(|pass| pass.added_relations.iter().map(String::as_str))
            .collect();
        for (new_name, old_name) in &record.relation_map {
            // A relation a pass added (a routing table, a sibling list) has no counterpart.
            if added.contains(old_name.as_str()) {
                continue;
            }
            mapping
                .relations
                .entry(old_name.clone())
                .or_default()
                .insert(new_name.clone());
        }
        mapping.nodes.extend(record.node_map.clone());
        mapping.present = new.nodes().iter().cloned().collect();
        // Relations the record does not mention keep their names.
        let (identity, _) = refine::identity_map(old.program(), new.program());
        for (old_name, names) in identity.relations {
            mapping.relations.entry(old_name).or_insert(names);
        }
        return Ok((mapping, format!("justification {}", path.display())));
    }
    let (mut mapping, missing) = refine::identity_map(old.program(), new.program());
    if !missing.is_empty() {
        bail!(
            "the new version has no relation named {}; give the rewrite's justification record with --justification",
            missing
                .iter()
                .map(|name| format!("`{name}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    mapping.present = new.nodes().iter().cloned().collect();
    Ok((mapping, "identity mapping".to_string()))
}

fn explain_diff(
    context: &Context,
    args: &VerifyArgs,
    old: &str,
    new: &str,
) -> anyhow::Result<Outcome> {
    let Some(old) = prepare(context, &[old.to_string()], args, false)? else {
        return Ok(Outcome::ProgramErrors);
    };
    let Some(new) = prepare(context, &[new.to_string()], args, false)? else {
        return Ok(Outcome::ProgramErrors);
    };
    let text = refine::explain_diff(&old.verifier, &new.verifier);
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(Outcome::Success)
}

fn write_artifacts(
    directory: &Path,
    verifier: &Verifier,
    search: &Search,
    report: &Report,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(directory)
        .with_context(|| format!("cannot create `{}`", directory.display()))?;
    let write = |name: &str, text: &str| -> anyhow::Result<()> {
        let path = directory.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write `{}`", path.display()))
    };
    let mut log = String::from("[\n");
    for (index, record) in search.log.iter().enumerate() {
        let separator = if index + 1 < search.log.len() {
            ","
        } else {
            ""
        };
        let _ = writeln!(log, "{}{separator}", serde_json::to_string(record)?);
    }
    log.push_str("]\n");
    write("runs.json", &log)?;
    let mut value = serde_json::to_value(report)?;
    if let Some(object) = value.as_object_mut() {
        object.remove("seconds");
    }
    write(
        "report.json",
        &(serde_json::to_string_pretty(&value)? + "\n"),
    )?;
    for (index, found) in search.counterexamples.iter().enumerate() {
        let number = index + 1;
        let diagrams = counterexample_diagrams(verifier, number, found.iteration, &found.execution);
        write(
            &format!("counterexample-{number}-spacetime.svg"),
            &diagrams.spacetime,
        )?;
        write(
            &format!("counterexample-{number}-lineage.dot"),
            &diagrams.lineage_dot,
        )?;
        write(
            &format!("counterexample-{number}-lineage.svg"),
            &diagrams.lineage_svg,
        )?;
    }
    Ok(())
}

/// The pictures of one counterexample, as `--out` writes them and `graft report` inlines them.
pub struct Diagrams {
    /// The Lamport diagram of the run (SVG).
    pub spacetime: String,
    /// The lineage of the violated facts (DOT).
    pub lineage_dot: String,
    /// The same graph (SVG).
    pub lineage_svg: String,
}

/// The diagrams of counterexample `number`, found at execution `iteration`.
pub fn counterexample_diagrams(
    verifier: &Verifier,
    number: usize,
    iteration: u64,
    execution: &Execution,
) -> Diagrams {
    let program = verifier.program();
    let title = format!(
        "counterexample {number} (execution {iteration}): {}",
        execution.faults
    );
    let spacetime = spacetime_svg(program, &execution.run, &execution.faults, &title);
    // Missing `post` facts are drawn in the failure-free run, with the messages this
    // schedule loses in red; invariant violations in the violating run.
    let post_roots: Vec<_> = execution
        .violations
        .iter()
        .filter(|violation| violation.kind == ViolationKind::Post)
        .flat_map(|violation| violation.facts.iter().copied())
        .collect();
    let graph = if post_roots.is_empty() {
        let roots: Vec<_> = execution
            .violations
            .iter()
            .flat_map(|violation| violation.facts.iter().copied())
            .collect();
        LineageGraph::new(program, &execution.run, &roots, &execution.faults, 300)
    } else {
        LineageGraph::new(
            program,
            verifier.failure_free(),
            &post_roots,
            &execution.faults,
            300,
        )
    };
    let lineage_title = format!("lineage of the violated facts, counterexample {number}");
    Diagrams {
        spacetime,
        lineage_dot: graph.dot(&lineage_title),
        lineage_svg: graph.svg(&lineage_title),
    }
}

/// The latest verdict of one verification, for `graft report`.
pub struct Latest {
    pub verifier: Verifier,
    /// The search as the cache recorded it (counterexamples run again; no run log), or as run
    /// now.
    pub search: Search,
    pub report: Report,
    /// Whether it came from the cache.
    pub cached: bool,
}

/// The latest verdict of `args`: the cache's entry for these facts, bounds and nodes (what the
/// last `graft verify` found), its counterexamples run again for their diagrams; without one
/// (or with `--no-cache`), the verification is run now and cached as `graft verify` caches it.
/// `None` when the program or its facts have errors (rendered on standard error).
pub fn latest(
    context: &Context,
    args: &VerifyArgs,
    on_progress: &mut dyn FnMut(Progress),
) -> anyhow::Result<Option<Latest>> {
    let Some(prepared) = prepare(context, &args.files, args, args.refines.is_none())? else {
        return Ok(None);
    };
    let verifier = prepared.verifier;
    let cache_dir = cache_directory(args, &args.files);
    let key = entry_key(
        args,
        &verifier.bounds,
        verifier.nodes(),
        Exploration::of(args),
    )?;
    let cache = read_cache(cache_dir.as_deref(), &prepared.version);
    if let Some(entry) = cache
        .entries
        .iter()
        .find(|entry| entry.key == key && entry.executions > 0)
    {
        let mut counterexamples = Vec::new();
        for (index, faults) in entry.counterexamples.iter().enumerate() {
            let execution = verifier.execute(faults)?;
            counterexamples.push(graft_verify::Counterexample {
                iteration: entry.found_at.get(index).copied().unwrap_or(0),
                execution,
            });
        }
        let search = Search {
            verdict: entry.verdict,
            executions: entry.executions,
            counterexamples,
            log: Vec::new(),
            explored: entry.explored.clone(),
            limit: entry.limit.clone(),
        };
        let report = Report::new(
            "ldfi",
            &search,
            verifier.fault_space().to_string(),
            verifier.bounds,
            verifier.nodes().to_vec(),
        );
        return Ok(Some(Latest {
            verifier,
            search,
            report,
            cached: true,
        }));
    }
    drop(verifier);
    let Some(verified) = verify_files(context, args, on_progress)? else {
        return Ok(None);
    };
    Ok(Some(Latest {
        verifier: verified.verifier,
        search: verified.search,
        report: verified.report,
        cached: false,
    }))
}

/// Whether a verdict is the one a configuration expects.
pub fn expectation_met(verdict: Verdict, expect: Expectation) -> bool {
    matches!(
        (verdict, expect),
        (Verdict::Certified, Expectation::Certified)
            | (Verdict::Counterexample, Expectation::Counterexample)
    )
}

/// How one verification of a tree ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JobStatus {
    Passed,
    Failed,
    Inconclusive,
    Skipped,
}

/// One verification of a tree: its summary line, the details shown under a failure, and its
/// JSON form.
struct JobResult {
    status: JobStatus,
    line: String,
    details: String,
    json: serde_json::Value,
}

/// The faults and violations of a report's first counterexample, on one line.
pub fn first_counterexample(report: &Report) -> String {
    let Some(found) = report.counterexamples.first() else {
        return String::new();
    };
    let faults = found.faults_text();
    let violations: Vec<String> = found
        .violations
        .iter()
        .map(|violation| violation.text.clone())
        .collect();
    format!("{faults} violates {}", violations.join(", "))
}

fn verify_job(
    context: &Context,
    args: &VerifyArgs,
    job: &VerifyJob,
    root: &Path,
    progress: &SharedProgress,
) -> JobResult {
    let config = &job.config;
    let mut bounds = format!(
        "EOT {}, EFF {}, crashes {}",
        config.eot, config.eff, config.crashes
    );
    if config.max_delay > 0 {
        bounds.push_str(&format!(", max delay {}", config.max_delay));
    }
    if config.symmetry {
        bounds.push_str(", symmetry");
    }
    let workload = Path::new(&config.workload).file_name().map_or_else(
        || config.workload.clone(),
        |name| name.to_string_lossy().into_owned(),
    );
    let label = format!("{} on {workload} ({bounds})", display(&job.program));
    let expect = match config.expect {
        Expectation::Certified => "certified",
        Expectation::Counterexample => "counterexample",
    };
    let mut json = serde_json::json!({
        "program": display(&job.program),
        "facts": job.facts.iter().map(|path| display(path)).collect::<Vec<_>>(),
        "bounds": {"eot": config.eot, "eff": config.eff, "crashes": config.crashes},
        "symmetry": config.symmetry,
        "expect": expect,
    });
    if config.max_delay > 0 {
        json["bounds"]["max_delay"] = serde_json::json!(config.max_delay);
    }
    let done = |status: JobStatus, what: String, details: String, mut json: serde_json::Value| {
        let word = match status {
            JobStatus::Passed => "ok  ",
            JobStatus::Failed => "FAIL",
            JobStatus::Inconclusive => "????",
            JobStatus::Skipped => "skip",
        };
        if let Some(object) = json.as_object_mut() {
            object.insert(
                "status".to_owned(),
                serde_json::Value::from(match status {
                    JobStatus::Passed => "passed",
                    JobStatus::Failed => "failed",
                    JobStatus::Inconclusive => "inconclusive",
                    JobStatus::Skipped => "skipped",
                }),
            );
            object.insert("summary".to_owned(), serde_json::Value::from(what.clone()));
        }
        JobResult {
            status,
            line: format!("{word} {label}: {what}"),
            details,
            json,
        }
    };
    if let Some(missing) = &job.missing {
        return done(JobStatus::Skipped, missing.clone(), String::new(), json);
    }
    let facts: Vec<String> = job
        .facts
        .iter()
        .map(|path| path.to_string_lossy().into_owned())
        .collect();
    let program = vec![job.program.to_string_lossy().into_owned()];
    match program::check_quietly(&program, &facts) {
        Ok(None) => {}
        Ok(Some(rendered)) => {
            return done(
                JobStatus::Failed,
                "the program or its facts do not check".to_owned(),
                rendered,
                json,
            );
        }
        Err(error) => return done(JobStatus::Failed, format!("{error:#}"), String::new(), json),
    }
    // A version is verified against its source (which runs on the version's facts mapped
    // back through the justification).
    let refines = job.refines.is_some();
    let job_args = args.for_job(job, refines);
    let mut last = 0_u64;
    // The bounds first: a long path is what the line cuts.
    let short = job.program.strip_prefix(root).unwrap_or(&job.program);
    let detail = format!("now {bounds}: {}", display(short));
    let verified = verify_files(context, &job_args, &mut |event| {
        progress.add(event.executions.saturating_sub(last), &detail);
        last = event.executions;
    });
    let verified = match verified {
        Ok(Some(verified)) => verified,
        Ok(None) => {
            return done(
                JobStatus::Failed,
                "the program or its facts do not check".to_owned(),
                String::new(),
                json,
            );
        }
        Err(error) => return done(JobStatus::Failed, format!("{error:#}"), String::new(), json),
    };
    let report = &verified.report;
    if let Some(object) = json.as_object_mut() {
        if let Ok(value) = serde_json::to_value(report) {
            let mut value = value;
            if let Some(inner) = value.as_object_mut() {
                inner.remove("seconds");
            }
            object.insert("report".to_owned(), value);
        }
        if !verified.refinement_json.is_null() {
            object.insert("refines".to_owned(), verified.refinement_json.clone());
        }
    }
    let executions = format!(
        "{} execution{}",
        report.executions,
        if report.executions == 1 { "" } else { "s" }
    );
    let compared = verified
        .refinement_json
        .get("comparison")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("per-tick");
    let refined = match (&job_args.refines, verified.diverged) {
        (Some(source), false) if compared == "eventual" && job_args.max_delay > 0 => format!(
            "; same outputs as {} eventually (failure-free and with every message up to {} tick(s) late, until quiescence)",
            source.join(" "),
            job_args.max_delay
        ),
        (Some(source), false) if compared == "eventual" => format!(
            "; same outputs as {} eventually (failure-free, until quiescence)",
            source.join(" ")
        ),
        (Some(source), false) if compared == "none" => format!(
            "; outputs not compared with {} (they may change)",
            source.join(" ")
        ),
        (Some(source), false) => format!(
            "; same outputs as {} on every schedule explored",
            source.join(" ")
        ),
        (Some(source), true) => format!("; the outputs diverge from {}", source.join(" ")),
        (None, _) => String::new(),
    };
    let details = format!("{}{}", verified.refinement_text, report.text());
    let (status, what) = match (report.verdict, config.expect) {
        _ if verified.diverged => (JobStatus::Failed, format!("{executions}{refined}")),
        (Verdict::Certified, Expectation::Certified) => (
            JobStatus::Passed,
            format!("certified ({executions}){refined}"),
        ),
        (Verdict::Counterexample, Expectation::Counterexample) => (
            JobStatus::Passed,
            format!(
                "counterexample, as expected ({executions}): {}{refined}",
                first_counterexample(report)
            ),
        ),
        (Verdict::Counterexample, Expectation::Certified) => (
            JobStatus::Failed,
            format!(
                "counterexample ({executions}): {}{refined}",
                first_counterexample(report)
            ),
        ),
        (Verdict::Certified, Expectation::Counterexample) => (
            JobStatus::Failed,
            format!(
                "certified ({executions}), but protocol.json expects a counterexample{refined}"
            ),
        ),
        (Verdict::Inconclusive, _) => (
            JobStatus::Inconclusive,
            format!(
                "inconclusive ({executions}): {}",
                report.limit.clone().unwrap_or_default()
            ),
        ),
    };
    let details = if status == JobStatus::Passed {
        String::new()
    } else {
        details
    };
    done(status, what, details, json)
}

/// `graft verify DIR`: every protocol in the tree under the configurations of its
/// `protocol.json`; one line per verification.
pub fn verify_tree(context: &Context, args: &VerifyArgs, root: &Path) -> anyhow::Result<Outcome> {
    if !args.facts.is_empty()
        || args.eot.is_some()
        || args.refines.is_some()
        || args.out.is_some()
        || args.all
        || args.runs.is_some()
        || args.strategy != Strategy::Ldfi
        || !args.nodes.is_empty()
    {
        bail!(
            "with a directory, the workloads, bounds and versions come from each protocol's protocol.json: drop --facts, --eot, --eff, --crashes, --nodes, --refines, --out, --all, --strategy and --runs (or name a program's files)"
        );
    }
    if args.eff != 0 || args.crashes != 0 || args.use_symmetry {
        bail!(
            "with a directory, the bounds come from each protocol's protocol.json: drop --eff, --crashes and --use-symmetry"
        );
    }
    let protocols = protocol::protocols_under(root)?;
    let mut jobs: Vec<Result<VerifyJob, String>> = Vec::new();
    let mut without_configurations = Vec::new();
    for directory in &protocols {
        match protocol::verify_jobs(directory) {
            Ok(found) if found.is_empty() => without_configurations.push(display(directory)),
            Ok(found) => jobs.extend(found.into_iter().map(Ok)),
            Err(error) => jobs.push(Err(format!("FAIL {}: {error:#}", display(directory)))),
        }
    }
    if jobs.is_empty() {
        bail!(
            "no protocol under `{}` records verification configurations: add a `verify` list to its protocol.json (see docs/verification.md)",
            display(root)
        );
    }
    let json = args.format == VerifyFormat::Json;
    let progress = SharedProgress::new(ProgressLine::new(
        "verify",
        "executions",
        progress::wanted(json),
    ));
    let quiet = Context {
        color: context.color,
        quiet: true,
    };
    let results = parallel_map(&jobs, args.jobs, |job| match job {
        Ok(job) => verify_job(&quiet, args, job, root, &progress),
        Err(line) => JobResult {
            status: JobStatus::Failed,
            line: line.clone(),
            details: String::new(),
            json: serde_json::json!({"status": "failed", "summary": line}),
        },
    });
    progress.finish();
    let count = |status: JobStatus| results.iter().filter(|r| r.status == status).count();
    let (passed, failed, inconclusive, skipped) = (
        count(JobStatus::Passed),
        count(JobStatus::Failed),
        count(JobStatus::Inconclusive),
        count(JobStatus::Skipped),
    );
    let mut stdout = std::io::stdout().lock();
    if json {
        let value = serde_json::json!({
            "verifications": results.iter().map(|r| r.json.clone()).collect::<Vec<_>>(),
            "without_configurations": without_configurations,
            "passed": passed,
            "failed": failed,
            "inconclusive": inconclusive,
            "skipped": skipped,
        });
        writeln!(stdout, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        for directory in &without_configurations {
            writeln!(
                stdout,
                "skip {directory}: no verification configurations (add them to {directory}/protocol.json; see docs/verification.md)"
            )?;
        }
        for result in &results {
            writeln!(stdout, "{}", result.line)?;
            for line in result.details.lines() {
                writeln!(stdout, "     {line}")?;
            }
        }
        let mut summary = format!(
            "{} verification(s) of {} protocol(s): {passed} passed, {failed} failed",
            results.len(),
            protocols.len()
        );
        if inconclusive > 0 {
            summary.push_str(&format!(", {inconclusive} inconclusive"));
        }
        if skipped > 0 {
            summary.push_str(&format!(", {skipped} skipped"));
        }
        writeln!(stdout, "{summary}")?;
    }
    Ok(if failed > 0 {
        Outcome::ProgramErrors
    } else if inconclusive > 0 {
        Outcome::Inconclusive
    } else {
        Outcome::Success
    })
}
