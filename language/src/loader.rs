//! Loading a program: its root files and everything they `include`, parsed.
//!
//! This module does no I/O. The caller passes a `read` function from a path to the file's text
//! (the command-line tool reads the disk; tests use a map). Paths are strings joined with `/`
//! and normalised lexically (`.` and `..` components resolved, no file system access), and a
//! file is identified by its normalised path, so a file included twice (a diamond) is loaded
//! once.
//!
//! `include "p";` in file `f` resolves to the first of these candidates that is already loaded
//! or that `read` accepts: `p` relative to `f`'s directory, then `p` relative to the first root
//! file's directory (Molly's rule). An absolute `p` is its only candidate.
//!
//! Order: files are loaded depth-first in pre-order (a file, then its includes in the order
//! written), starting with each root in the order given. File ids follow that order:
//! `files[i].file == FileId(i)`, and `sources` holds the same files under their normalised
//! paths.
//!
//! Diagnostic codes (`E01xx`):
//! - `E0101` include cycle, at the `include` that closes the cycle; the message lists it.
//! - `E0102` an included file cannot be read; the notes list every candidate tried.
//! - `E0103` a root file cannot be read (the command-line tool normally checks this first);
//!   it has no file to point into, so its span is `Span::default()`.

use std::collections::BTreeMap;

use crate::ast;
use crate::diagnostic::Diagnostic;
use crate::parser::parse;
use crate::span::{FileId, SourceMap, Span};

/// All files of one program, parsed, with every syntax and loading diagnostic.
#[derive(Clone, Debug)]
pub struct LoadedProgram {
    pub sources: SourceMap,
    /// In load order; `files[i].file == FileId(i)`.
    pub files: Vec<ast::SourceFile>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Loads and parses `roots` and, transitively, the files they include. Never fails.
pub fn load_program(
    roots: &[String],
    read: &mut dyn FnMut(&str) -> Result<String, String>,
) -> LoadedProgram {
    let base_directory = roots.first().map(|root| directory_of(&normalise(root)));
    let mut loader = Loader {
        read,
        base_directory: base_directory.unwrap_or_default(),
        loaded: BTreeMap::new(),
        in_progress: Vec::new(),
        program: LoadedProgram {
            sources: SourceMap::new(),
            files: Vec::new(),
            diagnostics: Vec::new(),
        },
    };
    for root in roots {
        let path = normalise(root);
        if loader.loaded.contains_key(&path) {
            continue;
        }
        match (loader.read)(&path) {
            Ok(text) => loader.load(path, text),
            Err(reason) => loader.program.diagnostics.push(
                Diagnostic::error(
                    "E0103",
                    format!("cannot read `{root}`: {reason}"),
                    Span::default(),
                )
                .with_help("check the path given on the command line"),
            ),
        }
    }
    loader.program
}

struct Loader<'r> {
    read: &'r mut dyn FnMut(&str) -> Result<String, String>,
    /// The first root's directory, the fallback for includes.
    base_directory: String,
    /// Normalised path to file id, for every file loaded or being loaded.
    loaded: BTreeMap<String, FileId>,
    /// The chain of files whose includes are being followed, outermost first.
    in_progress: Vec<String>,
    program: LoadedProgram,
}

impl Loader<'_> {
    /// Parses a file that was just read, then follows its includes.
    fn load(&mut self, path: String, text: String) {
        let id = self.program.sources.add(path.clone(), text);
        self.loaded.insert(path.clone(), id);
        let parsed = parse(id, self.program.sources.text(id));
        self.program.diagnostics.extend(parsed.diagnostics);
        let includes: Vec<ast::Include> = parsed
            .file
            .items
            .iter()
            .filter_map(|item| match item {
                ast::Item::Include(include) => Some(include.clone()),
                _ => None,
            })
            .collect();
        self.program.files.push(parsed.file);
        self.in_progress.push(path.clone());
        for include in &includes {
            self.include(&path, include);
        }
        self.in_progress.pop();
    }

    fn include(&mut self, including: &str, include: &ast::Include) {
        let candidates = candidates(including, &self.base_directory, &include.path);
        let mut failures = Vec::new();
        for candidate in &candidates {
            if self.loaded.contains_key(candidate) {
                if let Some(position) = self.in_progress.iter().position(|p| p == candidate) {
                    self.report_cycle(position, candidate, include);
                }
                return;
            }
            match (self.read)(candidate) {
                Ok(text) => {
                    self.load(candidate.clone(), text);
                    return;
                }
                Err(reason) => failures.push(format!("`{candidate}`: {reason}")),
            }
        }
        let mut diagnostic = Diagnostic::error(
            "E0102",
            format!("cannot read included file `{}`", include.path),
            include.path_span,
        )
        .with_primary_message("not found")
        .with_help(
            "include paths are relative to the including file's directory, \
             or to the first root file's directory",
        );
        for failure in failures {
            diagnostic = diagnostic.with_note(format!("tried {failure}"));
        }
        self.program.diagnostics.push(diagnostic);
    }

    fn report_cycle(&mut self, position: usize, target: &str, include: &ast::Include) {
        let chain: Vec<String> = self.in_progress[position..]
            .iter()
            .chain(std::iter::once(&target.to_string()))
            .map(|path| format!("`{path}`"))
            .collect();
        let message = if position + 1 == self.in_progress.len() {
            format!("`{target}` includes itself")
        } else {
            format!("include cycle: {}", chain.join(" includes "))
        };
        self.program.diagnostics.push(
            Diagnostic::error("E0101", message, include.span)
                .with_primary_message("this include closes the cycle")
                .with_help("remove one of the includes; each file is loaded only once anyway"),
        );
    }
}

/// Where `include "path";` in `including` may point, in the order they are tried, deduplicated.
fn candidates(including: &str, base_directory: &str, path: &str) -> Vec<String> {
    if path.starts_with('/') {
        return vec![normalise(path)];
    }
    let mut candidates = vec![normalise(&join(&directory_of(including), path))];
    let from_base = normalise(&join(base_directory, path));
    if !candidates.contains(&from_base) {
        candidates.push(from_base);
    }
    candidates
}

/// The directory part of a normalised path, `""` for a bare file name.
fn directory_of(path: &str) -> String {
    match path.rfind('/') {
        Some(0) => "/".to_string(),
        Some(index) => path[..index].to_string(),
        None => String::new(),
    }
}

fn join(directory: &str, path: &str) -> String {
    if directory.is_empty() {
        path.to_string()
    } else if directory.ends_with('/') {
        format!("{directory}{path}")
    } else {
        format!("{directory}/{path}")
    }
}

/// Resolves `.` and `..` and repeated `/` lexically. A leading `..` that cannot be resolved is
/// kept; an absolute path stays absolute.
pub fn normalise(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if absolute => {}
                _ => parts.push(".."),
            },
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_lexically() {
        assert_eq!(normalise("a/./b/../c.ded"), "a/c.ded");
        assert_eq!(normalise("../x//y"), "../x/y");
        assert_eq!(normalise("/a/../../b"), "/b");
        assert_eq!(normalise("./"), ".");
    }

    #[test]
    fn candidates_try_including_directory_then_first_root() {
        assert_eq!(
            candidates("proto/sub/a.ded", "proto", "lib.ded"),
            ["proto/sub/lib.ded", "proto/lib.ded"]
        );
        assert_eq!(candidates("a.ded", "", "b.ded"), ["b.ded"]);
    }
}
