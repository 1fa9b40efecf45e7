//! `graft graph`: the dependency graph between relations as Graphviz DOT or Mermaid, with strata,
//! edge kinds (positive, negated, aggregated; same tick, `@next`, `@async`) and points of order.

use std::io::Write as _;

use clap::{Args, ValueEnum};
use graft_language::diagnostic::sort_diagnostics;

use crate::{Context, Outcome, load, render};

#[derive(Args, Debug)]
pub struct GraphArgs {
    /// The program's files; together they form one program.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// Graph language to print.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT (`graft graph p.graft | dot -Tsvg > p.svg`).
    Dot,
    /// Mermaid flowchart, for Markdown pages.
    Mermaid,
}

pub fn run(context: &Context, args: &GraphArgs) -> anyhow::Result<Outcome> {
    let loaded = load::load(&args.files)?;
    let checked = graft_compiler::check(&loaded.sources, &loaded.files);
    let mut diagnostics = loaded.diagnostics.clone();
    diagnostics.extend(checked.diagnostics.iter().cloned());
    sort_diagnostics(&mut diagnostics);
    if diagnostics.iter().any(|d| d.is_error()) {
        render::emit_diagnostics(&loaded.sources, &diagnostics, context.color);
        eprintln!(
            "{}; fix them before drawing the graph",
            render::count_line(&diagnostics)
        );
        return Ok(Outcome::ProgramErrors);
    }
    let text = match args.format {
        GraphFormat::Dot => graft_compiler::graph_dot(&checked),
        GraphFormat::Mermaid => graft_compiler::graph_mermaid(&checked),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(Outcome::Success)
}
