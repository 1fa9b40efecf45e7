//! `graft test DIR`: run every version of a protocol on every workload, compare the outputs
//! with stored snapshots (insta's `.snap` format, so `cargo insta review` works on the
//! `.snap.new` files a difference leaves), and compare each rewritten version's outputs with
//! its source version's, mapped back through the justification record.
//!
//! Layout: see [`crate::protocol`]; each workload is one run, and snapshots live in
//! `snapshots/` next to the program. Given a directory of protocol directories (a tree), every
//! protocol is tested (`--jobs N` at once) and one line per protocol version says whether it
//! passed and, if not, which workload, snapshot or comparison failed.
//!
//! [`test_protocol`] computes the results without printing; `graft report` shows the same
//! results (snapshot status, comparisons with the source version) in its page.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::Args;
use graft_eval::{Evaluator, RunConfig, ShowSet};
use graft_language::diagnostic::Diagnostic;
use graft_rewrites::Justification;
use graft_rewrites::compare::{self, OutputFact};
use graft_rewrites::justification::Assumption;

use crate::commands::fmt::write_atomically;
use crate::load::FactsText;
use crate::progress::{self, ProgressLine, SharedProgress};
use crate::protocol::{self, Version, display, facts_of};
use crate::{Context, Outcome, late, load, render};

/// Paths as strings.
fn paths(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .map(|path| path.to_string_lossy().into_owned())
        .collect()
}

#[derive(Args, Debug)]
pub struct TestArgs {
    /// The protocol's directory (e.g. examples/2pc).
    #[arg(value_name = "DIR")]
    pub directory: String,
    /// Write the current outputs as the new snapshots instead of comparing.
    #[arg(long)]
    pub accept: bool,
    /// Given a tree of protocol directories: test this many protocols at once.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub jobs: u64,
    /// Also compare each rewritten version with its source under late messages: every message
    /// of the source's run late by 1..=D ticks (the version's corresponding messages as late),
    /// and every hop only the version has late by 1..=D. Without it, D is the largest
    /// `max_delay` of the protocol.json configurations that verify versions on the workload
    /// (0: no late messages).
    #[arg(long, value_name = "D")]
    pub max_delay: Option<u64>,
}

/// The outputs of one run, or the rendered problems that stopped it.
pub struct Outputs {
    pub facts: Vec<OutputFact>,
    pub text: String,
    pub last_tick: u64,
    /// Assumptions of the justification that this run breaks, one line each.
    pub violations: Vec<String>,
}

/// Every assumption of the passes that made a version.
fn assumptions_of(justification: Option<&Justification>) -> Vec<Assumption> {
    justification
        .map(|j| {
            j.passes
                .iter()
                .flat_map(|pass| pass.assumptions.iter().cloned())
                .collect()
        })
        .unwrap_or_default()
}

/// Where a run breaks an assumed key: at some tick, a node holds two facts of the relation
/// that agree on the key's columns (the first such pair per assumption). A relation the
/// program does not have is not checked.
pub fn key_violations(
    program: &graft_compiler::ir::Program,
    run: &graft_eval::Run,
    assumptions: &[Assumption],
) -> Vec<String> {
    let mut violations = Vec::new();
    for assumption in assumptions {
        // Synchronous delivery is checked by the runs under late messages, not on one run.
        let Assumption::Key(assumption) = assumption else {
            continue;
        };
        let Some(rel) = program.relation_by_name(&assumption.relation) else {
            continue;
        };
        let relation = program.relation(rel);
        let columns: Option<Vec<usize>> = assumption
            .key
            .iter()
            .map(|name| relation.columns.iter().position(|c| c.name == *name))
            .collect();
        let Some(columns) = columns else {
            violations.push(format!(
                "`{}` has no column among {:?} of the assumed key",
                assumption.relation, assumption.key
            ));
            continue;
        };
        'ticks: for tick in 1..=run.ticks_run {
            let mut seen: BTreeMap<Vec<graft_compiler::ir::Value>, &[graft_compiler::ir::Value]> =
                BTreeMap::new();
            for tuple in run.facts(tick, rel) {
                let mut key = vec![
                    tuple
                        .first()
                        .cloned()
                        .unwrap_or(graft_compiler::ir::Value::Int(0)),
                ];
                key.extend(columns.iter().filter_map(|c| tuple.get(*c).cloned()));
                if let Some(other) = seen.insert(key, tuple) {
                    violations.push(format!(
                        "the rewrite assumed key({}) of `{}`, but at tick {tick} a node holds both {} and {}",
                        assumption.key.join(", "),
                        assumption.relation,
                        graft_eval::render_fact(&assumption.relation, other, tick)
                            .trim_end_matches(';'),
                        graft_eval::render_fact(&assumption.relation, tuple, tick)
                            .trim_end_matches(';'),
                    ));
                    break 'ticks;
                }
            }
        }
    }
    violations
}

/// Loads and checks `program` with `facts`: the checked program and its facts, or `Err` with
/// every error rendered (program and facts together).
pub fn load_checked(
    program: &Path,
    facts: &[FactsText],
) -> anyhow::Result<Result<(graft_compiler::Checked, Vec<graft_compiler::ir::Fact>), String>> {
    let mut loaded = load::load(&[program.to_string_lossy().into_owned()])?;
    let checked = graft_compiler::check(&loaded.sources, &loaded.files);
    let workload = load::parse_facts(&mut loaded.sources, facts);
    let mut diagnostics: Vec<Diagnostic> = loaded.diagnostics.clone();
    diagnostics.extend(checked.diagnostics.iter().cloned());
    diagnostics.extend(workload.diagnostics);
    let (ir_facts, fact_diagnostics) =
        graft_compiler::check_facts(&checked.program, &workload.files);
    diagnostics.extend(fact_diagnostics);
    let errors: Vec<Diagnostic> = diagnostics
        .into_iter()
        .filter(Diagnostic::is_error)
        .collect();
    if !errors.is_empty() {
        return Ok(Err(render::diagnostics_to_string(&loaded.sources, &errors)));
    }
    Ok(Ok((checked, ir_facts)))
}

/// Runs a version on facts (its own files, or the facts mapped back for a source version)
/// until quiescence, as `graft test` does.
pub fn run_version(
    program: &Path,
    facts: &[FactsText],
    assumptions: &[Assumption],
) -> anyhow::Result<Result<Outputs, String>> {
    let (checked, ir_facts) = match load_checked(program, facts)? {
        Ok(loaded) => loaded,
        Err(rendered) => return Ok(Err(rendered)),
    };
    let evaluator = Evaluator::new(&checked)?;
    let run = evaluator.run(&RunConfig::default(), &ir_facts)?;
    let violations = key_violations(&checked.program, &run, assumptions);
    let shown = graft_eval::shown_facts(&checked.program, &run, &ShowSet::Default);
    let mut text = graft_eval::render_text(&checked.program, &run, &ShowSet::Default);
    if run.capped {
        text.push_str("// the run reached 1000 ticks before quiescence\n");
    }
    Ok(Ok(Outputs {
        facts: shown
            .into_iter()
            .map(|f| (f.relation, f.values, f.tick))
            .collect(),
        text,
        last_tick: run.ticks_run,
        violations,
    }))
}

/// insta's snapshot file: a YAML header, then the contents.
pub fn snapshot_text(source: &str, expression: &str, contents: &str) -> String {
    format!(
        "---\nsource: {source}\nexpression: \"{}\"\n---\n{contents}",
        expression.replace('"', "\\\"")
    )
}

/// The contents of a snapshot file (after the header), or `None` when it has none.
fn snapshot_contents(text: &str) -> Option<String> {
    let rest = text.strip_prefix("---\n")?;
    let end = rest.find("\n---\n")?;
    Some(rest[end + 5..].to_owned())
}

pub fn line_diff(expected: &str, actual: &str) -> String {
    let old: Vec<&str> = expected.lines().collect();
    let new: Vec<&str> = actual.lines().collect();
    // Longest common subsequence, for a readable diff of small outputs.
    let (n, m) = (old.len(), new.len());
    let mut table = vec![vec![0_usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[i][j] = if old[i] == new[j] {
                table[i + 1][j + 1] + 1
            } else {
                table[i + 1][j].max(table[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < n || j < m {
        if i < n && j < m && old[i] == new[j] {
            out.push_str(&format!("  {}\n", old[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || table[i][j + 1] >= table[i + 1][j]) {
            out.push_str(&format!("+ {}\n", new[j]));
            j += 1;
        } else {
            out.push_str(&format!("- {}\n", old[i]));
            i += 1;
        }
    }
    out
}

/// What `graft test` does with the snapshots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotMode {
    /// Compare; leave `.snap.new` files where they differ.
    Compare,
    /// Write the current outputs as the snapshots.
    Accept,
    /// Compare and write nothing (`graft report`).
    Inspect,
}

/// One check of a run (a version on a workload): its snapshot, an assumption, or the
/// comparison with the source version.
pub struct RunCheck {
    pub version: usize,
    pub workload: String,
    pub passed: bool,
    /// A few words for the one-line summary of a tree (`workload: snapshot differs`).
    pub summary: String,
    /// What `graft test DIR` prints for it (`ok   ...` or `FAIL ...` with details).
    pub text: String,
}

/// A rewritten version's outputs next to its source's on one workload.
pub struct SourceComparison {
    pub version: usize,
    pub source: usize,
    pub workload: String,
    /// `per-tick`, `eventual`, or `not compared: outputs may change`.
    pub mode: String,
    /// The source's outputs, as `graft run` prints them.
    pub source_text: String,
    /// This version's outputs mapped back to the source's nodes and relations.
    pub mapped_text: String,
    pub diverged: bool,
}

/// Everything `graft test` found in one protocol directory.
pub struct ProtocolTest {
    pub versions: Vec<Version>,
    pub checks: Vec<RunCheck>,
    pub comparisons: Vec<SourceComparison>,
    /// Runs made (a version on a workload).
    pub runs: usize,
    /// Failed checks.
    pub failures: usize,
}

impl ProtocolTest {
    fn push(
        &mut self,
        version: usize,
        workload: &str,
        passed: bool,
        summary: String,
        text: String,
    ) {
        if !passed {
            self.failures += 1;
        }
        self.checks.push(RunCheck {
            version,
            workload: workload.to_owned(),
            passed,
            summary,
            text,
        });
    }
}

/// The runs of a version: (workload name, facts files), one per workload file (`default`
/// with the topology alone when it has none).
pub fn workload_runs(directory: &Path) -> anyhow::Result<Vec<(String, Vec<PathBuf>)>> {
    let (topology, workloads) = facts_of(directory)?;
    Ok(if workloads.is_empty() {
        vec![("default".to_owned(), topology)]
    } else {
        workloads
            .iter()
            .map(|w| {
                let mut files = topology.clone();
                files.push(w.clone());
                (
                    w.file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    files,
                )
            })
            .collect()
    })
}

/// The late messages a rewritten version is compared with its source under, on `workload`:
/// `--max-delay` when given, otherwise the largest `max_delay` of the configurations of
/// `root`'s protocol.json that verify the versions on that workload (`graft verify DIR` checks
/// the file itself; one that does not parse gives 0 here).
fn late_bound(root: &Path, workload: &str, flag: Option<u64>) -> u64 {
    if let Some(bound) = flag {
        return bound;
    }
    let Ok(record) = protocol::protocol_file(root) else {
        return 0;
    };
    record
        .verify
        .iter()
        .filter(|config| config.program.is_none() && config.versions)
        .filter(|config| {
            Path::new(&config.workload)
                .file_stem()
                .is_some_and(|stem| stem.to_string_lossy() == workload)
        })
        .map(|config| config.max_delay)
        .max()
        .unwrap_or(0)
}

/// Tests every version of the protocol in `root` on every workload; prints nothing.
pub fn test_protocol(root: &Path, mode: SnapshotMode) -> anyhow::Result<ProtocolTest> {
    test_protocol_with(root, mode, None)
}

/// [`test_protocol`], comparing versions with their sources under late messages up to
/// `max_delay` ticks (`None`: the bound protocol.json gives each workload, see `late_bound`).
pub fn test_protocol_with(
    root: &Path,
    mode: SnapshotMode,
    max_delay: Option<u64>,
) -> anyhow::Result<ProtocolTest> {
    let versions = protocol::versions(root)?;
    let mut result = ProtocolTest {
        versions: Vec::new(),
        checks: Vec::new(),
        comparisons: Vec::new(),
        runs: 0,
        failures: 0,
    };
    let mut cache: BTreeMap<(usize, String, String), Result<Outputs, String>> = BTreeMap::new();
    for (index, version) in versions.iter().enumerate() {
        for (workload, files) in &workload_runs(&version.directory)? {
            result.runs += 1;
            let label = format!("{} on {workload}", display(&version.program));
            let assumptions = assumptions_of(version.justification.as_ref());
            let outputs = run_version(
                &version.program,
                &load::read_facts(&paths(files))?,
                &assumptions,
            )?;
            let outputs = match outputs {
                Ok(outputs) => outputs,
                Err(rendered) => {
                    result.push(
                        index,
                        workload,
                        false,
                        format!("{workload}: the program or its facts do not check"),
                        format!("FAIL {label}: the program or its facts do not check\n{rendered}"),
                    );
                    continue;
                }
            };
            // Snapshot.
            let stem = version
                .program
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let snapshots = version.directory.join("snapshots");
            let path = snapshots.join(format!("{stem}__{workload}.snap"));
            let expression = format!(
                "graft run {}{}",
                display(&version.program),
                files
                    .iter()
                    .map(|f| format!(" --facts {}", display(f)))
                    .collect::<String>()
            );
            let text = snapshot_text(&display(&version.program), &expression, &outputs.text);
            let stored = std::fs::read_to_string(&path).ok();
            let stored_contents = stored.as_deref().and_then(snapshot_contents);
            if mode == SnapshotMode::Accept {
                std::fs::create_dir_all(&snapshots)?;
                if stored.as_deref() != Some(text.as_str()) {
                    write_atomically(&path, &text)?;
                    result.push(
                        index,
                        workload,
                        true,
                        format!("{workload}: snapshot accepted"),
                        format!("accepted {label}: {}", display(&path)),
                    );
                }
                let pending = path.with_extension("snap.new");
                if pending.exists() {
                    std::fs::remove_file(&pending)?;
                }
            } else {
                let write_pending = mode == SnapshotMode::Compare;
                match stored_contents {
                    Some(contents) if contents.trim_end() == outputs.text.trim_end() => {
                        result.push(
                            index,
                            workload,
                            true,
                            format!("{workload}: snapshot"),
                            format!("ok   {label}: snapshot"),
                        );
                    }
                    Some(contents) => {
                        if write_pending {
                            std::fs::create_dir_all(&snapshots)?;
                            write_atomically(&path.with_extension("snap.new"), &text)?;
                        }
                        result.push(
                            index,
                            workload,
                            false,
                            format!("{workload}: outputs differ from {}", display(&path)),
                            format!(
                                "FAIL {label}: the outputs differ from the snapshot {} (- stored, + now; review with `cargo insta review` or rerun with --accept)\n{}",
                                display(&path),
                                line_diff(&contents, &outputs.text)
                            ),
                        );
                    }
                    None => {
                        if write_pending {
                            std::fs::create_dir_all(&snapshots)?;
                            write_atomically(&path.with_extension("snap.new"), &text)?;
                        }
                        result.push(
                            index,
                            workload,
                            false,
                            format!("{workload}: no snapshot {}", display(&path)),
                            format!(
                                "FAIL {label}: no snapshot {} yet (rerun with --accept to create it)",
                                display(&path)
                            ),
                        );
                    }
                }
            }
            for violation in &outputs.violations {
                result.push(
                    index,
                    workload,
                    false,
                    format!("{workload}: an assumed key does not hold"),
                    format!(
                        "FAIL {label}: {violation}; the version is not equivalent to its source on this workload (fix the program or workload, or derive the version without the key)"
                    ),
                );
            }
            // Against the source version.
            let Some(justification) = &version.justification else {
                continue;
            };
            let Some(parent) = protocol::source_of(&versions, version) else {
                result.push(
                    index,
                    workload,
                    false,
                    "its source version changed since the rewrite".to_owned(),
                    format!(
                        "FAIL {label}: its source version ({}, {}) is not in `{}`: the source changed since the rewrite; derive this version again with `graft rewrite`",
                        justification.source.files.join(", "),
                        justification.source.hash,
                        display(root)
                    ),
                );
                continue;
            };
            let parent_version = &versions[parent];
            // The source runs on this version's facts mapped back (the one rule, shared with
            // `graft verify --refines`); they must be the source's own workload.
            let key = (index, workload.clone(), format!("{assumptions:?}"));
            let version_files = paths(files);
            let source_facts = protocol::source_facts(
                justification,
                &[version.program.to_string_lossy().into_owned()],
                &version_files,
            )?;
            let source_facts = match source_facts {
                Ok(source_facts) => source_facts,
                Err(rendered) => {
                    result.push(
                        index,
                        workload,
                        false,
                        format!("{workload}: the facts do not check"),
                        format!("FAIL {label}: the facts do not check\n{rendered}"),
                    );
                    continue;
                }
            };
            let (parent_topology, parent_workloads) = facts_of(&parent_version.directory)?;
            // Compared with the source's own files when it has this workload (a workload
            // only the version has still runs the source on its facts mapped back).
            let mut parent_files = parent_topology;
            let own_workload = parent_workloads.iter().find(|w| {
                w.file_stem()
                    .is_some_and(|s| s.to_string_lossy() == workload.as_str())
            });
            if let Some(found) = own_workload {
                parent_files.push(found.clone());
            }
            let parent_program = [parent_version.program.to_string_lossy().into_owned()];
            let own = if own_workload.is_some() || workload == "default" {
                protocol::facts_set(&parent_program, &load::read_facts(&paths(&parent_files))?)?
            } else {
                None
            };
            let fed = protocol::facts_set(&parent_program, &source_facts)?;
            if let (Some(own), Some(fed)) = (&own, &fed)
                && own != fed
            {
                let lines = |a: &std::collections::BTreeSet<String>,
                             b: &std::collections::BTreeSet<String>| {
                    let lines: String = a.difference(b).map(|l| format!("    {l}\n")).collect();
                    if lines.is_empty() {
                        "    (none)\n".to_owned()
                    } else {
                        lines
                    }
                };
                result.push(
                    index,
                    workload,
                    false,
                    format!("{workload}: its facts do not map back to the source's"),
                    format!(
                        "FAIL {label}: its facts, mapped back through the justification, are not the source's ({}):\n  only in the source's files:\n{}  only in this version's, mapped back:\n{}  derive this version's facts again (`graft rewrite ... --facts-out`)",
                        parent_files.iter().map(|f| display(f)).collect::<Vec<_>>().join(", "),
                        lines(own, fed),
                        lines(fed, own),
                    ),
                );
                continue;
            }
            if !cache.contains_key(&key) {
                cache.insert(
                    key.clone(),
                    run_version(&parent_version.program, &source_facts, &assumptions)?,
                );
            }
            let parent_outputs = match cache.get(&key) {
                Some(Ok(outputs)) => outputs,
                Some(Err(rendered)) => {
                    result.push(
                        index,
                        workload,
                        false,
                        "its source version does not run".to_owned(),
                        format!(
                            "FAIL {label}: its source version does not run on this version's facts mapped back\n{rendered}"
                        ),
                    );
                    continue;
                }
                None => continue,
            };
            if !parent_outputs.violations.is_empty() {
                for violation in &parent_outputs.violations {
                    result.push(
                        index,
                        workload,
                        false,
                        format!("{workload}: an assumed key does not hold in the source"),
                        format!(
                            "FAIL {label}: in the source version {}: {violation}; the rewrite's precondition does not hold on this workload",
                            display(&parent_version.program)
                        ),
                    );
                }
                continue;
            }
            let mapped = compare::map_back(justification, &outputs.facts);
            let divergence = compare::compare(
                justification.comparison,
                &parent_outputs.facts,
                &mapped,
                parent_outputs.last_tick,
                outputs.last_tick,
            );
            let mode_name = match justification.comparison {
                graft_rewrites::justification::Comparison::PerTick => "per-tick",
                graft_rewrites::justification::Comparison::Eventual => "eventual",
                graft_rewrites::justification::Comparison::None => {
                    "not compared: outputs may change"
                }
            };
            let mapped_text: String = mapped
                .iter()
                .map(|(r, v, t)| format!("{}\n", graft_eval::render_fact(r, v, *t)))
                .collect();
            result.comparisons.push(SourceComparison {
                version: index,
                source: parent,
                workload: workload.clone(),
                mode: mode_name.to_owned(),
                source_text: parent_outputs.text.clone(),
                mapped_text: mapped_text.clone(),
                diverged: !divergence.is_empty(),
            });
            if divergence.is_empty() {
                result.push(
                    index,
                    workload,
                    true,
                    format!(
                        "{workload}: same outputs as {} ({mode_name})",
                        display(&parent_version.program)
                    ),
                    format!(
                        "ok   {label}: same outputs as {} ({mode_name})",
                        display(&parent_version.program)
                    ),
                );
                let bound = late_bound(root, workload, max_delay);
                if bound > 0
                    && justification.comparison != graft_rewrites::justification::Comparison::None
                {
                    let version_files = load::read_facts(&paths(files))?;
                    let (checked_version, checked_source) = (
                        late::Prepared::new(&version.program, &version_files)?,
                        late::Prepared::new(&parent_version.program, &source_facts)?,
                    );
                    let (Ok(version_ready), Ok(source_ready)) = (checked_version, checked_source)
                    else {
                        continue;
                    };
                    let late =
                        late::check_late(&source_ready, &version_ready, justification, bound)?;
                    let source_name = display(&parent_version.program);
                    let capped = if late.capped {
                        format!(
                            " (the first {} only)",
                            graft_rewrites::compare::DELAY_CASE_CAP
                        )
                    } else {
                        String::new()
                    };
                    match (&late.unrecorded, &late.recorded) {
                        (Some(divergence), _) => result.push(
                            index,
                            workload,
                            false,
                            format!(
                                "{workload}: outputs diverge from {source_name} under late messages"
                            ),
                            format!(
                                "FAIL {label}: {}--- source version's outputs under it\n{}--- this version's outputs under it, mapped back\n{}",
                                divergence.describe(),
                                divergence.source_text,
                                divergence.mapped_text
                            ),
                        ),
                        (None, Some(divergence)) => result.push(
                            index,
                            workload,
                            true,
                            format!(
                                "{workload}: a recorded synchronous-delivery assumption fails under late messages"
                            ),
                            format!(
                                "ok   {label}: {} schedule(s) of late messages (up to {bound} tick(s)){capped}; the outputs diverge from {source_name} only where a recorded assumption fails: {}",
                                late.schedules,
                                divergence.describe().trim_end()
                            ),
                        ),
                        (None, None) => result.push(
                            index,
                            workload,
                            true,
                            format!("{workload}: same outputs as {source_name} under late messages"),
                            format!(
                                "ok   {label}: same outputs as {source_name} under {} schedule(s) of late messages (every message late by 1..={bound} tick(s)){capped}",
                                late.schedules
                            ),
                        ),
                    }
                }
            } else {
                result.push(
                    index,
                    workload,
                    false,
                    format!(
                        "{workload}: outputs diverge from {} ({mode_name})",
                        display(&parent_version.program)
                    ),
                    format!(
                        "FAIL {label}: the outputs diverge from {} ({mode_name} comparison)\n  only in the source version:\n{}  only in this version (mapped back):\n{}--- source version's outputs\n{}--- this version's outputs, mapped back\n{}",
                        display(&parent_version.program),
                        divergence
                            .only_source
                            .iter()
                            .map(|l| format!("    {l}\n"))
                            .collect::<String>(),
                        divergence
                            .only_new
                            .iter()
                            .map(|l| format!("    {l}\n"))
                            .collect::<String>(),
                        parent_outputs.text,
                        mapped_text
                    ),
                );
            }
        }
    }
    result.versions = versions;
    Ok(result)
}

pub fn run(_context: &Context, args: &TestArgs) -> anyhow::Result<Outcome> {
    let root = Path::new(args.directory.trim_end_matches('/'));
    if !root.is_dir() {
        bail!("`{}` is not a directory", args.directory);
    }
    let mode = if args.accept {
        SnapshotMode::Accept
    } else {
        SnapshotMode::Compare
    };
    if protocol::is_protocol(root) {
        let result = test_protocol_with(root, mode, args.max_delay)?;
        for check in &result.checks {
            println!("{}", check.text);
        }
        if result.failures > 0 {
            println!("{} of {} run(s) failed", result.failures, result.runs);
            return Ok(Outcome::ProgramErrors);
        }
        println!("{} run(s) passed", result.runs);
        return Ok(Outcome::Success);
    }
    test_tree(root, mode, args.jobs, args.max_delay)
}

/// `graft test` on a tree: every protocol, one line per version.
fn test_tree(
    root: &Path,
    mode: SnapshotMode,
    jobs: u64,
    max_delay: Option<u64>,
) -> anyhow::Result<Outcome> {
    let protocols = protocol::protocols_under(root)?;
    let progress = SharedProgress::new(ProgressLine::new(
        "test",
        "protocols",
        progress::wanted(false),
    ));
    let results = parallel_map(&protocols, jobs, |directory| {
        let result = test_protocol_with(directory, mode, max_delay);
        progress.add(
            1,
            &format!("of {}, last: {}", protocols.len(), display(directory)),
        );
        result
    });
    progress.finish();
    let mut versions = 0_usize;
    let mut failed_versions = 0_usize;
    let mut runs = 0_usize;
    for (directory, result) in protocols.iter().zip(results) {
        let result = match result {
            Ok(result) => result,
            Err(error) => {
                versions += 1;
                failed_versions += 1;
                println!("FAIL {}: {error:#}", display(directory));
                continue;
            }
        };
        runs += result.runs;
        for (index, version) in result.versions.iter().enumerate() {
            versions += 1;
            let checks: Vec<&RunCheck> = result
                .checks
                .iter()
                .filter(|c| c.version == index)
                .collect();
            let failed: Vec<&&RunCheck> = checks.iter().filter(|c| !c.passed).collect();
            let workloads: std::collections::BTreeSet<&str> =
                checks.iter().map(|c| c.workload.as_str()).collect();
            if failed.is_empty() {
                let source = result
                    .comparisons
                    .iter()
                    .find(|comparison| comparison.version == index)
                    .map(|comparison| {
                        let source = display(&result.versions[comparison.source].program);
                        if comparison.mode.starts_with("not compared") {
                            format!(
                                ", derived from {source} (outputs not compared: they may change)"
                            )
                        } else {
                            format!(", same outputs as {source} ({})", comparison.mode)
                        }
                    })
                    .unwrap_or_default();
                let snapshots = if mode == SnapshotMode::Accept {
                    "snapshots written"
                } else {
                    "snapshots match"
                };
                println!(
                    "ok   {}: {} workload(s), {snapshots}{source}",
                    display(&version.program),
                    workloads.len()
                );
            } else {
                failed_versions += 1;
                println!(
                    "FAIL {}: {}",
                    display(&version.program),
                    failed
                        .iter()
                        .map(|c| c.summary.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                for check in failed {
                    for line in check.text.lines() {
                        println!("     {line}");
                    }
                }
            }
        }
    }
    println!(
        "{} protocol(s), {versions} version(s), {runs} run(s): {} passed, {failed_versions} failed",
        protocols.len(),
        versions - failed_versions
    );
    Ok(if failed_versions > 0 {
        Outcome::ProgramErrors
    } else {
        Outcome::Success
    })
}

/// `work` applied to every item on up to `jobs` threads; the results in the items' order.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    jobs: u64,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = usize::try_from(jobs)
        .unwrap_or(1)
        .clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().map(&work).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<R>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(index) else {
                        break;
                    };
                    let result = work(item);
                    if let Ok(mut slot) = slots[index].lock() {
                        *slot = Some(result);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .zip(items)
        .map(|(slot, item)| {
            slot.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| work(item))
        })
        .collect()
}
