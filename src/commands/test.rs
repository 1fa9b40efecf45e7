//! `graft test DIR`: run every version of a protocol on every workload, compare the outputs
//! with stored snapshots (insta's `.snap` format, so `cargo insta review` works on the
//! `.snap.new` files a difference leaves), and compare each rewritten version's outputs with
//! its source version's, mapped back through the justification record.
//!
//! Layout: the original program is `DIR/<DIR's name>.graft` (or every `.graft` file in DIR);
//! each rewritten version is a directory `DIR/versions/NAME/` holding one `.graft` program,
//! its `justification.json` and its facts files. In every version directory, `workload*.facts`
//! are workloads (one run each) and every other `.facts` file is topology, given to every run.
//! Snapshots live in `snapshots/` next to the program.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use graft_eval::{Evaluator, RunConfig, ShowSet};
use graft_language::diagnostic::Diagnostic;
use graft_rewrites::Justification;
use graft_rewrites::compare::{self, OutputFact};
use graft_rewrites::justification::Assumption;

use crate::commands::fmt::write_atomically;
use crate::{Context, Outcome, load, render};

#[derive(Args, Debug)]
pub struct TestArgs {
    /// The protocol's directory (e.g. examples/2pc).
    #[arg(value_name = "DIR")]
    pub directory: String,
    /// Write the current outputs as the new snapshots instead of comparing.
    #[arg(long)]
    pub accept: bool,
}

/// One program version found in the directory.
struct Version {
    program: PathBuf,
    directory: PathBuf,
    hash: String,
    justification: Option<Justification>,
}

fn list(directory: &Path, extension: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(directory)
        .with_context(|| format!("cannot list `{}`", directory.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file() && path.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    Ok(files)
}

fn hash_of(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    Ok(graft_rewrites::content_hash(&bytes))
}

fn versions(root: &Path) -> anyhow::Result<Vec<Version>> {
    let mut found = Vec::new();
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let main = root.join(format!("{name}.graft"));
    let originals = if main.is_file() {
        vec![main]
    } else {
        list(root, "graft")?
    };
    for program in originals {
        found.push(Version {
            hash: hash_of(&program)?,
            program,
            directory: root.to_path_buf(),
            justification: None,
        });
    }
    let versions_dir = root.join("versions");
    if versions_dir.is_dir() {
        let mut directories: Vec<PathBuf> = std::fs::read_dir(&versions_dir)?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.is_dir())
            .collect();
        directories.sort();
        for directory in directories {
            let programs = list(&directory, "graft")?;
            let [program] = programs.as_slice() else {
                bail!(
                    "`{}` must hold exactly one .graft program",
                    directory.display()
                );
            };
            let path = directory.join("justification.json");
            let text = load::read_text(&path.to_string_lossy())?;
            let justification: Justification = serde_json::from_str(&text)
                .with_context(|| format!("`{}` is not a justification record", path.display()))?;
            found.push(Version {
                hash: hash_of(program)?,
                program: program.clone(),
                directory,
                justification: Some(justification),
            });
        }
    }
    if found.is_empty() {
        bail!("`{}` holds no .graft program", root.display());
    }
    Ok(found)
}

/// The facts files of a version: (topology files, workloads).
fn facts_of(directory: &Path) -> anyhow::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (workloads, topology): (Vec<PathBuf>, Vec<PathBuf>) =
        list(directory, "facts")?.into_iter().partition(|path| {
            path.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("workload"))
        });
    Ok((topology, workloads))
}

/// The outputs of one run, or the rendered problems that stopped it.
struct Outputs {
    facts: Vec<OutputFact>,
    text: String,
    last_tick: u64,
    /// Assumptions of the justification that this run breaks, one line each.
    violations: Vec<String>,
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
fn key_violations(
    program: &graft_compiler::ir::Program,
    run: &graft_eval::Run,
    assumptions: &[Assumption],
) -> Vec<String> {
    let mut violations = Vec::new();
    for assumption in assumptions {
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

fn run_version(
    context: &Context,
    program: &Path,
    facts: &[PathBuf],
    assumptions: &[Assumption],
) -> anyhow::Result<Result<Outputs, String>> {
    let mut loaded = load::load(&[program.to_string_lossy().into_owned()])?;
    let checked = graft_compiler::check(&loaded.sources, &loaded.files);
    let names: Vec<String> = facts
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let workload = load::load_facts(&mut loaded.sources, &names)?;
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
        let _ = context;
        return Ok(Err(render::diagnostics_to_string(&loaded.sources, &errors)));
    }
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

fn display(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

/// insta's snapshot file: a YAML header, then the contents.
fn snapshot_text(source: &str, expression: &str, contents: &str) -> String {
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

fn line_diff(expected: &str, actual: &str) -> String {
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

pub fn run(context: &Context, args: &TestArgs) -> anyhow::Result<Outcome> {
    let root = Path::new(args.directory.trim_end_matches('/'));
    if !root.is_dir() {
        bail!("`{}` is not a directory", args.directory);
    }
    let versions = versions(root)?;
    let by_hash: BTreeMap<&str, usize> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| (v.hash.as_str(), i))
        .collect();
    let mut failures = 0_usize;
    let mut checks = 0_usize;
    let mut cache: BTreeMap<(usize, String, String), Result<Outputs, String>> = BTreeMap::new();
    for (index, version) in versions.iter().enumerate() {
        let (topology, workloads) = facts_of(&version.directory)?;
        let runs: Vec<(String, Vec<PathBuf>)> = if workloads.is_empty() {
            vec![("default".to_owned(), topology.clone())]
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
        };
        for (workload, files) in &runs {
            checks += 1;
            let label = format!("{} on {workload}", display(&version.program));
            let assumptions = assumptions_of(version.justification.as_ref());
            let outputs = run_version(context, &version.program, files, &assumptions)?;
            let outputs = match outputs {
                Ok(outputs) => outputs,
                Err(rendered) => {
                    failures += 1;
                    println!("FAIL {label}: the program or its facts do not check\n{rendered}");
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
            if args.accept {
                std::fs::create_dir_all(&snapshots)?;
                if stored.as_deref() != Some(text.as_str()) {
                    write_atomically(&path, &text)?;
                    println!("accepted {label}: {}", display(&path));
                }
                let pending = path.with_extension("snap.new");
                if pending.exists() {
                    std::fs::remove_file(&pending)?;
                }
            } else {
                match stored_contents {
                    Some(contents) if contents.trim_end() == outputs.text.trim_end() => {
                        println!("ok   {label}: snapshot");
                    }
                    Some(contents) => {
                        failures += 1;
                        std::fs::create_dir_all(&snapshots)?;
                        write_atomically(&path.with_extension("snap.new"), &text)?;
                        println!(
                            "FAIL {label}: the outputs differ from the snapshot {} (- stored, + now; review with `cargo insta review` or rerun with --accept)\n{}",
                            display(&path),
                            line_diff(&contents, &outputs.text)
                        );
                    }
                    None => {
                        failures += 1;
                        std::fs::create_dir_all(&snapshots)?;
                        write_atomically(&path.with_extension("snap.new"), &text)?;
                        println!(
                            "FAIL {label}: no snapshot {} yet (rerun with --accept to create it)",
                            display(&path)
                        );
                    }
                }
            }
            for violation in &outputs.violations {
                failures += 1;
                println!(
                    "FAIL {label}: {violation}; the version is not equivalent to its source on this workload (fix the program or workload, or derive the version without the key)"
                );
            }
            // Against the source version.
            if let Some(justification) = &version.justification {
                let Some(parent) = by_hash.get(justification.source.hash.as_str()).copied() else {
                    failures += 1;
                    println!(
                        "FAIL {label}: its source version ({}, {}) is not in `{}`: the source changed since the rewrite; derive this version again with `graft rewrite`",
                        justification.source.files.join(", "),
                        justification.source.hash,
                        display(root)
                    );
                    continue;
                };
                let parent_version = &versions[parent];
                let key = (parent, workload.clone(), format!("{assumptions:?}"));
                if !cache.contains_key(&key) {
                    let (parent_topology, parent_workloads) = facts_of(&parent_version.directory)?;
                    let mut parent_files = parent_topology;
                    if workload != "default" {
                        match parent_workloads.iter().find(|w| {
                            w.file_stem()
                                .is_some_and(|s| s.to_string_lossy() == workload.as_str())
                        }) {
                            Some(found) => parent_files.push(found.clone()),
                            None => {
                                failures += 1;
                                println!(
                                    "FAIL {label}: the source version has no workload `{workload}`"
                                );
                                continue;
                            }
                        }
                    }
                    cache.insert(
                        key.clone(),
                        run_version(
                            context,
                            &parent_version.program,
                            &parent_files,
                            &assumptions,
                        )?,
                    );
                }
                let Some(Ok(parent_outputs)) = cache.get(&key) else {
                    failures += 1;
                    println!("FAIL {label}: its source version does not run");
                    continue;
                };
                if !parent_outputs.violations.is_empty() {
                    failures += parent_outputs.violations.len();
                    for violation in &parent_outputs.violations {
                        println!(
                            "FAIL {label}: in the source version {}: {violation}; the rewrite's precondition does not hold on this workload",
                            display(&parent_version.program)
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
                let mode = match justification.comparison {
                    graft_rewrites::justification::Comparison::PerTick => "per-tick",
                    graft_rewrites::justification::Comparison::Eventual => "eventual",
                    graft_rewrites::justification::Comparison::None => {
                        "not compared: outputs may change"
                    }
                };
                if divergence.is_empty() {
                    println!(
                        "ok   {label}: same outputs as {} ({mode})",
                        display(&parent_version.program)
                    );
                } else {
                    failures += 1;
                    let mapped_text: String = mapped
                        .iter()
                        .map(|(r, v, t)| format!("{}\n", graft_eval::render_fact(r, v, *t)))
                        .collect();
                    println!(
                        "FAIL {label}: the outputs diverge from {} ({mode} comparison)\n  only in the source version:\n{}  only in this version (mapped back):\n{}--- source version's outputs\n{}--- this version's outputs, mapped back\n{}",
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
                    );
                }
            }
            let _ = index;
        }
    }
    if failures > 0 {
        println!("{failures} of {checks} run(s) failed");
        return Ok(Outcome::ProgramErrors);
    }
    println!("{checks} run(s) passed");
    Ok(Outcome::Success)
}
