//! `graft run`: evaluate a program on workloads under a fault schedule and print the facts of
//! the shown relations, one per line as `rel(args)@tick;`, sorted by tick, relation, values.

use std::io::Write as _;

use clap::{Args, ValueEnum};

use crate::program::{self, Loaded, RunOptions};
use crate::{Context, Outcome, render};

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub options: RunOptions,
    /// Which relations to print: `outputs` (the declared `output` relations, or every relation
    /// of a program that declares none), `all`, or a relation name. Repeatable.
    #[arg(long, value_name = "outputs|all|RELATION")]
    pub show: Vec<String>,
    /// Text (one fact per line in the language's syntax) or JSON (an array, one object per fact).
    #[arg(long, value_enum, default_value_t = RunFormat::Text)]
    pub format: RunFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RunFormat {
    Text,
    Json,
}

pub fn run(context: &Context, args: &RunArgs) -> anyhow::Result<Outcome> {
    let Loaded::Ready(loaded) = program::load_and_check(context, &args.options)? else {
        return Ok(Outcome::ProgramErrors);
    };
    if !loaded.warnings.is_empty() {
        render::emit_diagnostics(&loaded.sources, &loaded.warnings, context.color);
    }
    let program = &loaded.checked.program;
    let show = program::show_set(program, &args.show)?;
    let evaluator = graft_eval::Evaluator::new(&loaded.checked)?;
    let mut config = program::run_config(&args.options);
    config.record = graft_eval::Record::Relations(show.relations(program));
    program::check_fault_nodes(&args.options, &evaluator.nodes(&config, &loaded.facts)?)?;
    let run = evaluator.run(&config, &loaded.facts)?;
    let mut stdout = std::io::stdout().lock();
    match args.format {
        RunFormat::Text => {
            stdout.write_all(graft_eval::render_text(program, &run, &show).as_bytes())?;
        }
        RunFormat::Json => {
            let facts = graft_eval::shown_facts(program, &run, &show);
            writeln!(stdout, "[")?;
            for (index, fact) in facts.iter().enumerate() {
                let separator = if index + 1 < facts.len() { "," } else { "" };
                writeln!(stdout, "{}{separator}", serde_json::to_string(fact)?)?;
            }
            writeln!(stdout, "]")?;
        }
    }
    if run.capped {
        eprintln!(
            "warning: the run reached --max-ticks {} before quiescence; give --eot or a larger --max-ticks",
            args.options.max_ticks
        );
    }
    Ok(Outcome::Success)
}
