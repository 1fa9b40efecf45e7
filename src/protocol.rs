//! The layout of a protocol directory, shared by `graft test`, `graft verify DIR` and
//! `graft report`: its programs (the original and every rewritten version), their facts files,
//! and the protocol's own record `protocol.json` (verification configurations and rewrites
//! known to be refused). Also how a tree of protocol directories is walked.
//!
//! Layout: the original program is `DIR/<DIR's name>.graft` (or every `.graft` file in DIR);
//! each rewritten version is a directory `DIR/versions/NAME/` holding one `.graft` program,
//! its `justification.json` and its facts files. In every version directory,
//! `workload*.facts` are workloads and every other `.facts` file is topology.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use graft_rewrites::Justification;
use serde::{Deserialize, Serialize};

use crate::load::{self, FactsText};
use crate::render;

/// One program version found in a protocol directory.
pub struct Version {
    pub program: PathBuf,
    pub directory: PathBuf,
    pub hash: String,
    pub justification: Option<Justification>,
}

impl Version {
    /// The version's name: `original` for a program in the protocol directory itself (its
    /// file name when there are several), the version directory's name otherwise.
    pub fn name(&self, root: &Path) -> String {
        if self.justification.is_none() && self.directory == root {
            return self
                .program
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
        }
        self.directory
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// The files directly in `directory` with this extension, sorted.
pub fn list(directory: &Path, extension: &str) -> anyhow::Result<Vec<PathBuf>> {
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

/// Every version in the protocol directory `root`: the original program(s) first, then each
/// `versions/NAME/` in name order.
pub fn versions(root: &Path) -> anyhow::Result<Vec<Version>> {
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

/// The index of the version a rewritten version was derived from (by the content hash its
/// justification records), if it is among `versions`.
pub fn source_of(versions: &[Version], version: &Version) -> Option<usize> {
    let justification = version.justification.as_ref()?;
    versions
        .iter()
        .position(|candidate| candidate.hash == justification.source.hash)
}

/// The facts files of a directory: (topology files, workloads).
pub fn facts_of(directory: &Path) -> anyhow::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (workloads, topology): (Vec<PathBuf>, Vec<PathBuf>) =
        list(directory, "facts")?.into_iter().partition(|path| {
            path.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("workload"))
        });
    Ok((topology, workloads))
}

/// A path as shown to people: `/` separators.
pub fn display(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

/// Whether `directory` is a protocol directory: it holds a `.graft` program itself.
pub fn is_protocol(directory: &Path) -> bool {
    list(directory, "graft").is_ok_and(|programs| !programs.is_empty())
}

/// The protocol directories in the tree under `root`, in path order: `root` itself when it is
/// one; otherwise every subdirectory that is one, and the protocol directories under the
/// others (hidden directories are skipped). Errors when there are none.
pub fn protocols_under(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !root.is_dir() {
        bail!("`{}` is not a directory", display(root));
    }
    let mut found = Vec::new();
    collect(root, &mut found, 0)?;
    if found.is_empty() {
        bail!(
            "`{}` holds no .graft program and no protocol directory below it (a protocol directory holds its program, e.g. `2pc/2pc.graft`)",
            display(root)
        );
    }
    Ok(found)
}

fn collect(directory: &Path, found: &mut Vec<PathBuf>, depth: usize) -> anyhow::Result<()> {
    if is_protocol(directory) {
        found.push(directory.to_path_buf());
        return Ok(());
    }
    // Deep enough for any layout people keep by hand; it also stops symlink cycles.
    if depth >= 8 {
        return Ok(());
    }
    let mut children: Vec<PathBuf> = std::fs::read_dir(directory)
        .with_context(|| format!("cannot list `{}`", display(directory)))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.is_dir()
                && !path
                    .file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with('.'))
        })
        .collect();
    children.sort();
    for child in children {
        collect(&child, found, depth + 1)?;
    }
    Ok(())
}

/// A protocol's own record, `DIR/protocol.json` (format `graft-protocol/1`, documented in
/// `docs/verification.md`): the bounds it is verified under and the rewrites known to be
/// refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolFile {
    pub format: String,
    #[serde(default)]
    pub verify: Vec<VerifyConfig>,
    #[serde(default)]
    pub refused: Vec<RefusedRewrite>,
}

/// The format tag of `protocol.json`.
pub const PROTOCOL_FORMAT: &str = "graft-protocol/1";

/// One verification configuration: a workload and bounds, for the original program and its
/// versions, or for one program of the directory (a buggy variant).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    /// A program of the directory (path relative to it); absent: the original program and,
    /// unless `versions` is false, every rewritten version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// The workload file (path relative to the directory). A rewritten version uses the file
    /// of the same name in its own directory.
    pub workload: String,
    pub eot: u64,
    #[serde(default)]
    pub eff: u64,
    #[serde(default)]
    pub crashes: usize,
    /// `--max-delay`: messages sent before EFF may also arrive up to this many ticks late
    /// (0, the default: Molly's synchronous model).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_delay: u64,
    /// The complete node set (`--nodes`); absent: the nodes the facts name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// `--use-symmetry`.
    #[serde(default)]
    pub symmetry: bool,
    /// Whether the rewritten versions are verified too (when `program` is absent).
    #[serde(default = "yes")]
    pub versions: bool,
    /// The verdict expected: `certified` (the default) or `counterexample` (a known failure:
    /// finding one passes, certifying fails).
    #[serde(default)]
    pub expect: Expectation,
    /// Why the configuration is there (shown in the report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn yes() -> bool {
    true
}

/// The verdict a configuration expects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expectation {
    #[default]
    Certified,
    Counterexample,
}

/// A rewrite request that is known not to apply, with why that is expected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefusedRewrite {
    /// The request, as given to `graft rewrite --pass`.
    pub pass: String,
    /// A program of the directory (path relative to it); absent: the original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Reads `DIR/protocol.json`; a directory without one has an empty record.
pub fn protocol_file(root: &Path) -> anyhow::Result<ProtocolFile> {
    let path = root.join("protocol.json");
    if !path.exists() {
        return Ok(ProtocolFile {
            format: PROTOCOL_FORMAT.to_owned(),
            ..ProtocolFile::default()
        });
    }
    let text = load::read_text(&path.to_string_lossy())?;
    let file: ProtocolFile = serde_json::from_str(&text).with_context(|| {
        format!(
            "`{}` is not a protocol record (see docs/verification.md)",
            display(&path)
        )
    })?;
    if file.format != PROTOCOL_FORMAT {
        bail!(
            "`{}` has format `{}`; this graft reads `{PROTOCOL_FORMAT}`",
            display(&path),
            file.format
        );
    }
    for config in &file.verify {
        if config.eot == 0 {
            bail!("`{}`: `eot` must be at least 1", display(&path));
        }
        if config.eff > config.eot {
            bail!(
                "`{}`: `eff` {} is after `eot` {} for workload `{}`",
                display(&path),
                config.eff,
                config.eot,
                config.workload
            );
        }
    }
    Ok(file)
}

/// One verification to run: a program, its facts files and a configuration.
#[derive(Clone, Debug)]
pub struct VerifyJob {
    pub program: PathBuf,
    pub facts: Vec<PathBuf>,
    pub config: VerifyConfig,
    /// The source version's program, when this is a rewritten version (found by the hash its
    /// justification records): it is verified with `--refines` against it.
    pub refines: Option<PathBuf>,
    /// Why the job cannot run (a version without the workload), when it cannot.
    pub missing: Option<String>,
}

/// The verification jobs of a protocol directory, in the order of its configurations, each
/// for the original program, then every version.
pub fn verify_jobs(root: &Path) -> anyhow::Result<Vec<VerifyJob>> {
    let record = protocol_file(root)?;
    let versions = versions(root)?;
    let (topology, _) = facts_of(root)?;
    let mut jobs = Vec::new();
    for config in &record.verify {
        let root_workload = root.join(&config.workload);
        if let Some(program) = &config.program {
            let path = root.join(program);
            let mut facts = topology.clone();
            facts.push(root_workload.clone());
            jobs.push(VerifyJob {
                program: path,
                facts,
                config: config.clone(),
                refines: None,
                missing: (!root_workload.is_file())
                    .then(|| format!("no workload `{}`", display(&root_workload))),
            });
            continue;
        }
        for version in &versions {
            if version.justification.is_some() && !config.versions {
                continue;
            }
            let (version_topology, _) = facts_of(&version.directory)?;
            let base = Path::new(&config.workload)
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_default();
            let workload = if version.justification.is_some() {
                version.directory.join(&base)
            } else {
                root_workload.clone()
            };
            let mut facts = version_topology;
            facts.push(workload.clone());
            // Every version is verified with `--refines` against its source, which runs on
            // the version's facts mapped back; the comparison is the justification's.
            let refines =
                source_of(&versions, version).map(|index| versions[index].program.clone());
            jobs.push(VerifyJob {
                program: version.program.clone(),
                facts,
                config: config.clone(),
                refines,
                missing: (!workload.is_file())
                    .then(|| format!("no workload `{}`", display(&workload))),
            });
        }
    }
    Ok(jobs)
}

/// The source version's facts for a rewritten version run on `facts` (the version's own files):
/// each file's facts mapped back through the justification
/// ([`graft_rewrites::compare::source_facts`]: generated facts dropped, nodes and relations
/// mapped to the source's), one text per file, named `FILE (mapped back to the source)`.
/// `graft test` and `graft verify --refines` both feed the source with them. `Err` holds the
/// rendered errors when the version or its facts do not check.
pub fn source_facts(
    justification: &Justification,
    version: &[String],
    facts: &[String],
) -> anyhow::Result<Result<Vec<FactsText>, String>> {
    use graft_language::diagnostic::Diagnostic;
    let mut loaded = load::load(version)?;
    let checked = graft_compiler::check(&loaded.sources, &loaded.files);
    let workload = load::load_facts(&mut loaded.sources, facts)?;
    let mut diagnostics: Vec<Diagnostic> = loaded.diagnostics.clone();
    diagnostics.extend(checked.diagnostics.iter().cloned());
    diagnostics.extend(workload.diagnostics);
    let mut texts = Vec::new();
    for (path, file) in facts.iter().zip(&workload.files) {
        let (checked_facts, fact_diagnostics) =
            graft_compiler::check_facts(&checked.program, std::slice::from_ref(file));
        diagnostics.extend(fact_diagnostics);
        let given: Vec<graft_rewrites::compare::OutputFact> = checked_facts
            .iter()
            .map(|fact| {
                (
                    checked.program.relation(fact.rel).name.clone(),
                    fact.values.clone(),
                    fact.tick,
                )
            })
            .collect();
        let mut text =
            format!("// {path}, mapped back to the source version through its justification\n");
        for (relation, values, tick) in graft_rewrites::compare::source_facts(justification, &given)
        {
            text.push_str(&graft_eval::render_fact(&relation, &values, tick));
            text.push('\n');
        }
        texts.push(FactsText {
            name: format!("{path} (mapped back to the source)"),
            text,
        });
    }
    let errors: Vec<Diagnostic> = diagnostics
        .into_iter()
        .filter(Diagnostic::is_error)
        .collect();
    if !errors.is_empty() {
        return Ok(Err(render::diagnostics_to_string(&loaded.sources, &errors)));
    }
    Ok(Ok(texts))
}

/// The facts `texts` give `program`, rendered one per line (`rel(values)@tick;`), as a set:
/// two sets of files compare equal when they give the same facts, whatever their order and
/// comments. `None` when they do not check against the program.
pub fn facts_set(
    program: &[String],
    texts: &[FactsText],
) -> anyhow::Result<Option<std::collections::BTreeSet<String>>> {
    let mut loaded = load::load(program)?;
    let checked = graft_compiler::check(&loaded.sources, &loaded.files);
    let workload = load::parse_facts(&mut loaded.sources, texts);
    let (facts, diagnostics) = graft_compiler::check_facts(&checked.program, &workload.files);
    if diagnostics
        .iter()
        .any(graft_language::diagnostic::Diagnostic::is_error)
        || workload
            .diagnostics
            .iter()
            .any(graft_language::diagnostic::Diagnostic::is_error)
    {
        return Ok(None);
    }
    Ok(Some(
        facts
            .iter()
            .map(|fact| {
                graft_eval::render_fact(
                    &checked.program.relation(fact.rel).name,
                    &fact.values,
                    fact.tick,
                )
            })
            .collect(),
    ))
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}
