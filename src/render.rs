//! Rendering diagnostics: source excerpts for people (colour only on a terminal) and JSON for
//! tools. The diagnostics themselves are plain data from the `language` and `compiler` crates.

use std::io::Write as _;

use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, Config};
use graft_language::diagnostic::{Diagnostic, Severity};
use graft_language::span::SourceMap;
use serde::Serialize;

/// The source files in the form codespan-reporting reads; ids are the same as [`SourceMap`]'s.
fn codespan_files(sources: &SourceMap) -> SimpleFiles<String, String> {
    let mut files = SimpleFiles::new();
    for (_, file) in sources.files() {
        files.add(file.name.clone(), file.text.clone());
    }
    files
}

fn to_codespan(diagnostic: &Diagnostic) -> cs::Diagnostic<usize> {
    let severity = match diagnostic.severity {
        Severity::Error => cs::Severity::Error,
        Severity::Warning => cs::Severity::Warning,
        Severity::Note => cs::Severity::Note,
    };
    let primary = &diagnostic.primary;
    let mut labels = vec![
        cs::Label::primary(primary.span.file.0 as usize, primary.span.range())
            .with_message(primary.message.clone()),
    ];
    labels.extend(diagnostic.labels.iter().map(|label| {
        cs::Label::secondary(label.span.file.0 as usize, label.span.range())
            .with_message(label.message.clone())
    }));
    let mut notes: Vec<String> = diagnostic
        .notes
        .iter()
        .map(|note| format!("note: {note}"))
        .collect();
    if let Some(help) = &diagnostic.help {
        notes.push(format!("help: {help}"));
    }
    if let Some(suggestion) = &diagnostic.suggestion {
        notes.push(format!(
            "suggestion: {}: `{}`",
            suggestion.message, suggestion.replacement
        ));
    }
    cs::Diagnostic::new(severity)
        .with_code(diagnostic.code)
        .with_message(diagnostic.message.clone())
        .with_labels(labels)
        .with_notes(notes)
}

/// Renders diagnostics as plain text, exactly as they appear without colour on a terminal.
pub fn diagnostics_to_string(sources: &SourceMap, diagnostics: &[Diagnostic]) -> String {
    let files = codespan_files(sources);
    let config = Config::default();
    let mut out = String::new();
    for diagnostic in diagnostics {
        // Spans always come from these sources, so rendering cannot fail; if it ever did, the
        // one-line form still tells the user what is wrong.
        if term::emit_to_string(&mut out, &config, &files, &to_codespan(diagnostic)).is_err() {
            out.push_str(&one_line(sources, diagnostic));
            out.push('\n');
        }
    }
    out
}

/// Writes diagnostics to standard error, in colour when `color` is set.
pub fn emit_diagnostics(sources: &SourceMap, diagnostics: &[Diagnostic], color: bool) {
    if color {
        use codespan_reporting::term::termcolor::{ColorChoice, StandardStream};
        let files = codespan_files(sources);
        let config = Config::default();
        let stream = StandardStream::stderr(ColorChoice::Always);
        let mut lock = stream.lock();
        for diagnostic in diagnostics {
            if term::emit_to_write_style(&mut lock, &config, &files, &to_codespan(diagnostic))
                .is_err()
            {
                let _ = writeln!(lock, "{}", one_line(sources, diagnostic));
            }
        }
    } else {
        let text = diagnostics_to_string(sources, diagnostics);
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
}

/// `file:line:col: error[E0201]: message`, for fallbacks and logs.
pub fn one_line(sources: &SourceMap, diagnostic: &Diagnostic) -> String {
    let span = diagnostic.primary.span;
    let (line, column) = if (span.file.0 as usize) < sources.len() {
        sources.line_col(span.file, span.start)
    } else {
        (0, 0)
    };
    let name = if (span.file.0 as usize) < sources.len() {
        sources.name(span.file)
    } else {
        "<unknown>"
    };
    format!(
        "{name}:{line}:{column}: {}[{}]: {}",
        severity_word(diagnostic.severity),
        diagnostic.code,
        diagnostic.message
    )
}

fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

/// A location in a file, for JSON output.
#[derive(Serialize)]
pub struct JsonLocation {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub start: u32,
    pub end: u32,
}

#[derive(Serialize)]
pub struct JsonLabel {
    #[serde(flatten)]
    pub location: JsonLocation,
    pub message: String,
}

#[derive(Serialize)]
pub struct JsonDiagnostic {
    pub code: &'static str,
    pub severity: &'static str,
    pub message: String,
    #[serde(flatten)]
    pub location: JsonLocation,
    pub label: String,
    pub labels: Vec<JsonLabel>,
    pub notes: Vec<String>,
    pub help: Option<String>,
}

fn location(sources: &SourceMap, span: graft_language::span::Span) -> JsonLocation {
    let (line, column) = sources.line_col(span.file, span.start);
    JsonLocation {
        file: sources.name(span.file).to_string(),
        line,
        column,
        start: span.start,
        end: span.end,
    }
}

pub fn diagnostics_to_json(sources: &SourceMap, diagnostics: &[Diagnostic]) -> Vec<JsonDiagnostic> {
    diagnostics
        .iter()
        .map(|diagnostic| JsonDiagnostic {
            code: diagnostic.code,
            severity: severity_word(diagnostic.severity),
            message: diagnostic.message.clone(),
            location: location(sources, diagnostic.primary.span),
            label: diagnostic.primary.message.clone(),
            labels: diagnostic
                .labels
                .iter()
                .map(|label| JsonLabel {
                    location: location(sources, label.span),
                    message: label.message.clone(),
                })
                .collect(),
            notes: diagnostic.notes.clone(),
            help: diagnostic.help.clone(),
        })
        .collect()
}

/// "2 errors, 1 warning" — the closing line of a report.
pub fn count_line(diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .count();
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("{n} {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    format!(
        "{}, {}",
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}
