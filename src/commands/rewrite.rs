//! `graft rewrite`: apply rewrite passes to a program, write the new version (and its facts
//! files and justification record), or explain every reason a pass does not apply.
//!
//! Nothing is written unless every pass applies and the new program checks; every file is
//! written through a temporary file and a rename, so an existing output is never left
//! half-written.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use clap::Args;
use graft_language::diagnostic::{Diagnostic, sort_diagnostics};
use graft_rewrites::{FactsFile, PipelineError, SourceRef};

use crate::commands::fmt::write_atomically;
// The cost model lives in `crate::cost`; these names stay here for the commands and
// benchmarks that reach it through `rewrite`.
pub use crate::cost::{Cost, cost_of, render_cost};
use crate::{Context, Outcome, load, render};

#[derive(Args, Debug)]
pub struct RewriteArgs {
    /// The program's files (together one program).
    #[arg(value_name = "FILE", required_unless_present = "list")]
    pub files: Vec<String>,
    /// A pass to apply, e.g. 'partition(participant, by=tx, n=2)'. Repeatable; applied in order.
    #[arg(
        long = "pass",
        value_name = "NAME(ARGS)",
        required_unless_present = "list"
    )]
    pub passes: Vec<String>,
    /// Write the new program here (default: standard output).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<String>,
    /// Write the justification record (JSON) here.
    #[arg(long, value_name = "OUT.json")]
    pub justification: Option<String>,
    /// Topology and workload files of the old version; they are rewritten for the new one.
    #[arg(long = "facts", value_name = "FILE")]
    pub facts: Vec<String>,
    /// Write the rewritten facts files (same base names) into this directory.
    #[arg(long, value_name = "DIR")]
    pub facts_out: Option<String>,
    /// Print messages sent and facts derived per role and node, before and after, on the
    /// --facts workload (instead of printing the program when no -o is given).
    #[arg(long)]
    pub cost: bool,
    /// Describe every pass and its parameters.
    #[arg(long)]
    pub list: bool,
}

pub fn run(context: &Context, args: &RewriteArgs) -> anyhow::Result<Outcome> {
    if args.list {
        print!("{}", graft_rewrites::describe_passes());
        return Ok(Outcome::Success);
    }
    let mut passes = Vec::new();
    for text in &args.passes {
        passes.push(graft_rewrites::parse_pass(text).with_context(|| format!("--pass '{text}'"))?);
    }
    if args.cost && args.facts.is_empty() {
        bail!("--cost needs a workload: give --facts FILE (topology and workload)");
    }
    let mut loaded = load::load(&args.files)?;
    let checked = graft_compiler::check(&loaded.sources, &loaded.files);
    let mut diagnostics = loaded.diagnostics.clone();
    diagnostics.extend(checked.diagnostics.iter().cloned());
    let workload = load::load_facts(&mut loaded.sources, &args.facts)?;
    diagnostics.extend(workload.diagnostics);
    let mut facts_files = Vec::new();
    let mut ir_facts = Vec::new();
    if !diagnostics.iter().any(Diagnostic::is_error) {
        for (path, file) in args.facts.iter().zip(&workload.files) {
            let (facts, fact_diagnostics) =
                graft_compiler::check_facts(&checked.program, std::slice::from_ref(file));
            diagnostics.extend(fact_diagnostics);
            facts_files.push(FactsFile {
                name: path.clone(),
                facts: facts
                    .iter()
                    .map(|fact| graft_rewrites::draft::fact_of(&checked.program, fact))
                    .collect(),
                generated: Vec::new(),
            });
            ir_facts.extend(facts);
        }
    }
    sort_diagnostics(&mut diagnostics);
    if diagnostics.iter().any(Diagnostic::is_error) {
        render::emit_diagnostics(&loaded.sources, &diagnostics, context.color);
        eprintln!(
            "{}; nothing was rewritten",
            render::count_line(&diagnostics)
        );
        return Ok(Outcome::ProgramErrors);
    }
    let mut bytes = Vec::new();
    for file in &args.files {
        bytes.extend(std::fs::read(file).with_context(|| format!("cannot read `{file}`"))?);
    }
    let source = SourceRef {
        files: args.files.clone(),
        hash: graft_rewrites::content_hash(&bytes),
    };
    let rewritten = match graft_rewrites::rewrite(&checked, &source, facts_files, &passes) {
        Ok(rewritten) => rewritten,
        Err(PipelineError::Refused {
            step,
            refusal,
            sources,
        }) => {
            let sources = sources.as_ref().unwrap_or(&loaded.sources);
            render::emit_diagnostics(sources, &refusal.to_diagnostics(), context.color);
            eprintln!(
                "refused: `{}` (pass {} of {}) does not apply: {} failed precondition(s): {}; nothing was written",
                refusal.pass,
                step + 1,
                passes.len(),
                refusal.failures.len(),
                refusal.names().join(", ")
            );
            return Ok(Outcome::ProgramErrors);
        }
        Err(PipelineError::Internal {
            step,
            text,
            diagnostics,
            sources,
        }) => {
            render::emit_diagnostics(&sources, &diagnostics, context.color);
            eprintln!("--- the program pass {} produced:\n{text}", step + 1);
            bail!(
                "internal error: pass {} produced a program that does not check (a bug in graft; please report it); nothing was written",
                step + 1
            );
        }
    };
    // The rewritten facts must fit the new program.
    let mut new_sources = graft_language::span::SourceMap::new();
    let mut new_facts = Vec::new();
    for file in &rewritten.facts {
        let text = file.print();
        let id = new_sources.add(file.name.clone(), text.clone());
        let parsed = graft_language::parse(id, &text);
        let (facts, fact_diagnostics) =
            graft_compiler::check_facts(&rewritten.checked.program, &[parsed.file]);
        if fact_diagnostics.iter().any(Diagnostic::is_error)
            || parsed.diagnostics.iter().any(Diagnostic::is_error)
        {
            render::emit_diagnostics(&new_sources, &fact_diagnostics, context.color);
            bail!(
                "internal error: the rewritten facts file `{}` does not fit the new program (a bug in graft); nothing was written",
                file.name
            );
        }
        new_facts.extend(facts);
    }
    if args.cost {
        let before = cost_of(&checked, &ir_facts)?;
        let after = cost_of(&rewritten.checked, &new_facts)?;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(
            render_cost(&before, &after, &rewritten.justification.node_map).as_bytes(),
        )?;
    }
    // Write everything, or nothing.
    for path in args.output.iter().chain(&args.justification) {
        if let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create the directory `{}`", parent.display()))?;
        }
    }
    if let Some(output) = &args.output {
        write_atomically(Path::new(output), &rewritten.text)?;
    } else if !args.cost {
        print!("{}", rewritten.text);
    }
    if let Some(path) = &args.justification {
        write_atomically(Path::new(path), &rewritten.justification.to_json())?;
    }
    if let Some(directory) = &args.facts_out {
        std::fs::create_dir_all(directory)
            .with_context(|| format!("cannot create the directory `{directory}`"))?;
        for file in &rewritten.facts {
            let base = Path::new(&file.name).file_name().map_or_else(
                || file.name.clone(),
                |name| name.to_string_lossy().into_owned(),
            );
            write_atomically(&Path::new(directory).join(base), &file.print())?;
        }
    }
    let case: Vec<String> = rewritten
        .justification
        .passes
        .iter()
        .map(|pass| match &pass.case {
            Some(case) => format!("{} ({case})", pass.request),
            None => pass.request.clone(),
        })
        .collect();
    eprintln!("applied: {}", case.join(", "));
    Ok(Outcome::Success)
}
