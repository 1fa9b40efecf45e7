//! `graft check`: parse, resolve, type-check and stratify a program, report every diagnostic,
//! and summarise the program (roles, relations, strata, persistence, points of order).

use std::io::Write as _;

use clap::{Args, ValueEnum};
use graft_language::diagnostic::sort_diagnostics;
use serde::Serialize;

use crate::render::{self, JsonDiagnostic};
use crate::{Context, Outcome, load};

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The program's files (`.graft` or Molly `.ded`); together they form one program.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// Workload or topology files (facts only) to check against the program: unknown
    /// relations, arities, types and ticks.
    #[arg(long = "facts", value_name = "FILE")]
    pub facts: Vec<String>,
    /// Output format: rendered diagnostics and a summary, or one JSON object for tools.
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
}

#[derive(Serialize)]
struct JsonReport {
    files: Vec<String>,
    errors: usize,
    warnings: usize,
    diagnostics: Vec<JsonDiagnostic>,
    /// Absent when the program has errors: a summary of a broken program would mislead.
    summary: Option<graft_compiler::Summary>,
}

pub fn run(context: &Context, args: &CheckArgs) -> anyhow::Result<Outcome> {
    let mut loaded = load::load(&args.files)?;
    let checked = graft_compiler::check(&loaded.sources, &loaded.files);
    let mut diagnostics = loaded.diagnostics.clone();
    diagnostics.extend(checked.diagnostics.iter().cloned());
    let workload = load::load_facts(&mut loaded.sources, &args.facts)?;
    diagnostics.extend(workload.diagnostics);
    if !checked.has_errors() {
        let (_, fact_diagnostics) = graft_compiler::check_facts(&checked.program, &workload.files);
        diagnostics.extend(fact_diagnostics);
    }
    sort_diagnostics(&mut diagnostics);
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let summary = (errors == 0).then(|| graft_compiler::summary(&checked));
    let mut stdout = std::io::stdout().lock();
    match args.format {
        CheckFormat::Json => {
            let report = JsonReport {
                files: loaded
                    .sources
                    .files()
                    .map(|(_, file)| file.name.clone())
                    .collect(),
                errors,
                warnings,
                diagnostics: render::diagnostics_to_json(&loaded.sources, &diagnostics),
                summary,
            };
            serde_json::to_writer_pretty(&mut stdout, &report)?;
            writeln!(stdout)?;
        }
        CheckFormat::Text => {
            render::emit_diagnostics(&loaded.sources, &diagnostics, context.color);
            if let Some(summary) = &summary {
                write!(stdout, "{}", graft_compiler::render_summary_text(summary))?;
            }
            if !diagnostics.is_empty() {
                eprintln!("{}", render::count_line(&diagnostics));
            }
        }
    }
    Ok(if errors == 0 {
        Outcome::Success
    } else {
        Outcome::ProgramErrors
    })
}
