//! Reading programs from disk: the root files named on the command line and everything they
//! include. The include logic itself is the `language` crate's; this module only supplies the
//! file reader and turns unreadable root files into one-line errors.

use std::path::Path;

use anyhow::{Context as _, bail};
use graft_language::loader::{LoadedProgram, load_program};

/// Reads a file as UTF-8 text, with the path in the error.
pub fn read_text(path: &str) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read `{path}`"))?;
    String::from_utf8(bytes).with_context(|| format!("`{path}` is not UTF-8 text"))
}

/// Loads the program formed by `roots` and their includes.
///
/// A root that cannot be read is an I/O error (exit status 2); an include that cannot be read is
/// a diagnostic in the returned program, with the span of the `include`.
pub fn load(roots: &[String]) -> anyhow::Result<LoadedProgram> {
    if roots.is_empty() {
        bail!("no input files: name at least one program file");
    }
    for root in roots {
        if Path::new(root).is_dir() {
            bail!("`{root}` is a directory: name the program files in it");
        }
        read_text(root)?;
    }
    let mut reader = |path: &str| -> Result<String, String> {
        read_text(path).map_err(|error| format!("{error:#}"))
    };
    Ok(load_program(roots, &mut reader))
}

/// Facts files (workloads, topologies), parsed into the program's source map so that their
/// diagnostics render with the program's. Includes are not followed in facts files.
pub struct FactsFiles {
    pub files: Vec<graft_language::ast::SourceFile>,
    /// Syntax errors in the facts files.
    pub diagnostics: Vec<graft_language::diagnostic::Diagnostic>,
}

/// A facts file's name (as shown in diagnostics) and text: read from disk, or made by graft
/// (the source version's facts mapped back from a rewritten version's, see
/// [`crate::protocol::source_facts`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FactsText {
    pub name: String,
    pub text: String,
}

/// Reads facts files.
pub fn read_facts(paths: &[String]) -> anyhow::Result<Vec<FactsText>> {
    paths
        .iter()
        .map(|path| {
            Ok(FactsText {
                name: path.clone(),
                text: read_text(path)?,
            })
        })
        .collect()
}

pub fn load_facts(
    sources: &mut graft_language::span::SourceMap,
    paths: &[String],
) -> anyhow::Result<FactsFiles> {
    Ok(parse_facts(sources, &read_facts(paths)?))
}

/// Parses facts texts into the program's source map.
pub fn parse_facts(
    sources: &mut graft_language::span::SourceMap,
    texts: &[FactsText],
) -> FactsFiles {
    let mut files = Vec::new();
    let mut diagnostics = Vec::new();
    for facts in texts {
        let id = sources.add(facts.name.clone(), facts.text.clone());
        let parsed = graft_language::parse(id, &facts.text);
        diagnostics.extend(parsed.diagnostics);
        files.push(parsed.file);
    }
    FactsFiles { files, diagnostics }
}
