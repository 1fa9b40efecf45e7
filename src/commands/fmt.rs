//! `graft fmt`: rewrite files in the canonical layout of `graft_language::format`.
//!
//! Writes are atomic: the new text goes to a temporary file beside the original, which is then
//! renamed over it, so an interrupted run never leaves a half-written file. A file with syntax
//! errors is reported and never touched.

use std::io::{Read as _, Write as _};
use std::path::Path;

use anyhow::Context as _;
use clap::Args;
use graft_language::span::{FileId, SourceMap};

use crate::{Context, Outcome, load, render};

#[derive(Args, Debug)]
pub struct FmtArgs {
    /// Files to format; `-` formats standard input to standard output.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// Write nothing; name the files whose layout differs and exit 1 if there are any.
    #[arg(long)]
    pub check: bool,
}

enum FileResult {
    Unchanged,
    Changed,
    SyntaxErrors,
}

pub fn run(context: &Context, args: &FmtArgs) -> anyhow::Result<Outcome> {
    let mut differing = Vec::new();
    let mut broken = 0usize;
    let mut io_error = None;
    for path in &args.files {
        match format_one(context, path, args.check) {
            Ok(FileResult::Unchanged) => {}
            Ok(FileResult::Changed) => differing.push(path.clone()),
            Ok(FileResult::SyntaxErrors) => broken += 1,
            Err(error) => {
                eprintln!("error: {error:#}");
                io_error = Some(error);
            }
        }
    }
    if args.check {
        let mut stdout = std::io::stdout().lock();
        for path in &differing {
            writeln!(stdout, "would reformat: {path}")?;
        }
    }
    if broken > 0 {
        eprintln!(
            "{broken} file{} not formatted because of syntax errors",
            if broken == 1 { "" } else { "s" }
        );
    }
    if let Some(error) = io_error {
        return Err(error.context("some files could not be formatted"));
    }
    Ok(if broken > 0 || (args.check && !differing.is_empty()) {
        Outcome::ProgramErrors
    } else {
        Outcome::Success
    })
}

fn format_one(context: &Context, path: &str, check: bool) -> anyhow::Result<FileResult> {
    let text = if path == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
        text
    } else {
        load::read_text(path)?
    };
    let mut sources = SourceMap::new();
    let file: FileId = sources.add(path, text.clone());
    let parsed = graft_language::parse(file, &text);
    let errors: Vec<_> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .cloned()
        .collect();
    if !errors.is_empty() {
        render::emit_diagnostics(&sources, &errors, context.color);
        return Ok(FileResult::SyntaxErrors);
    }
    let formatted = graft_language::format::format_source(&parsed.file, &text);
    if path == "-" {
        std::io::stdout().lock().write_all(formatted.as_bytes())?;
        return Ok(if formatted == text {
            FileResult::Unchanged
        } else {
            FileResult::Changed
        });
    }
    if formatted == text {
        return Ok(FileResult::Unchanged);
    }
    if !check {
        write_atomically(Path::new(path), &formatted)?;
    }
    Ok(FileResult::Changed)
}

/// Replaces `path`'s contents with `text` through a temporary file and a rename.
pub fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let directory = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("`{}` is not a file name", path.display()))?;
    let temporary = directory.join(format!(
        ".{}.graft-tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> anyhow::Result<()> {
        let mut file = std::fs::File::create(&temporary)
            .with_context(|| format!("cannot create `{}`", temporary.display()))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        if let Ok(metadata) = std::fs::metadata(path) {
            std::fs::set_permissions(&temporary, metadata.permissions())?;
        }
        std::fs::rename(&temporary, path)
            .with_context(|| format!("cannot replace `{}`", path.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}
