//! The `graft` command-line tool: the only part of graft that reads files, prints, looks at the
//! environment, or renders diagnostics. Each subcommand lives in `commands/`.

mod commands;
mod cost;
mod late;
mod load;
mod program;
mod progress;
mod protocol;
mod render;
mod report_html;
mod template;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// LDFI's lineage extraction makes and drops millions of small fault sets: with glibc's
/// allocator, allocation took about 30% of a Paxos certification, and mimalloc takes about a
/// fifth of the search's time off (see docs/verification.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Grow distributed protocols safely.
///
/// graft checks, runs, rewrites and verifies protocols written in a Dedalus-style dataflow
/// language (a typed superset of the dialect Molly accepts): run them on timely dataflow
/// workers, derive faster versions only where safe, and search fault schedules with
/// lineage-driven fault injection.
#[derive(Parser, Debug)]
#[command(
    name = "graft",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    /// When to colour diagnostics.
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto)]
    color: ColorWhen,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse, resolve, type-check and stratify a program; report every problem and summarise it.
    ///
    /// All files given together form one program (for example a protocol and its assertions);
    /// `include "path";` is resolved relative to the including file, then relative to the first
    /// file's directory. Exit status: 0 when there are no errors (warnings allowed), 1 when the
    /// program has errors, 2 on usage or I/O errors.
    Check(commands::check::CheckArgs),
    /// Rewrite files in graft's canonical layout, keeping comments.
    ///
    /// Each file is formatted on its own (includes are not followed). A file with syntax errors
    /// is reported and left untouched. With `--check`, nothing is written: the files that would
    /// change are named and the exit status is 1 if there are any.
    Fmt(commands::fmt::FmtArgs),
    /// Draw the dependency graph between relations, with strata, edge kinds and points of order.
    Graph(commands::graph::GraphArgs),
    /// Run a program on workloads under a fault schedule and print the facts it derives.
    ///
    /// The reference evaluator runs ticks 1..=EOT (or until quiescence), message losses and
    /// crashes as given. The program and the workload files are checked first: any error
    /// stops the command before anything runs (exit status 1).
    Run(commands::run::RunArgs),
    /// Explain why a fact holds: print its derivation tree (rule firings, messages, carries).
    ///
    /// The fact is written as in the language, with its tick: 'decision("C", 1, true)@5'.
    Explain(commands::explain::ExplainArgs),
    /// Rewrite a program into a new version (decouple, partition, batch, quorum), only where
    /// every precondition holds; a refusal lists every failed precondition (exit status 1).
    Rewrite(commands::rewrite::RewriteArgs),
    /// Run every version of a protocol in a directory on every workload, compare the outputs
    /// with stored snapshots and each rewritten version with the version it came from.
    Test(commands::test::TestArgs),
    /// Search for fault schedules (message losses, crashes) that violate the specification.
    ///
    /// Lineage-driven fault injection (Molly's LDFI) or random fault injection, under the
    /// bounds --eot, --eff and --crashes. Specification: Molly's `pre`/`post` at EOT and `never`
    /// invariants at every tick. Exit status: 0 certified (no counterexample for these bounds
    /// and inputs), 1 counterexample (or divergence, or program errors), 2 usage or I/O
    /// errors, 3 inconclusive (a limit stopped the search).
    Verify(commands::verify::VerifyArgs),
    /// Write one self-contained HTML page about a protocol directory: its versions and how each
    /// was derived, and for each its check summary, cost, test results, latest verification
    /// verdicts with their diagrams, and the rewrites known to be refused.
    ///
    /// The verdicts are the verification cache's latest entries (what the last `graft verify`
    /// found); a configuration without one is verified now and cached (`--no-cache`: verify
    /// everything now, cache nothing).
    Report(commands::report::ReportArgs),
    /// Search sequences of rewrites (decouple, partition, batch) for the version the cost
    /// model predicts to be fastest within a machine budget, print the plan and write it.
    ///
    /// Only steps whose preconditions hold are applied, and a version whose outputs differ
    /// from the source's is dropped. Exit status: 0 a better version was found (and written
    /// with -o), 1 program errors or nothing to optimize (no role, no traffic, a budget too
    /// small for any rewrite), 2 usage or I/O errors, 4 no step helps (nothing written).
    Optimize(commands::optimize::OptimizeArgs),
    /// Run versions of a protocol side by side on a generated workload on the timely runtime:
    /// wall time, committed requests per second, and every node's load (facts derived,
    /// messages sent and received), with an SVG chart of the loads (`-o DIR`).
    ///
    /// The workload is the original program's, from a workload template expanded at --scale
    /// (docs/bench.md); each rewritten version runs on it mapped through its justification's
    /// passes. Only the timing figures vary between runs. Exit status: 0 done, 1 errors in the
    /// program or the workload, 2 usage errors (no traffic, unknown version, a node the topology
    /// does not name).
    Bench(commands::bench::BenchArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ColorWhen {
    /// Colour when standard error is a terminal.
    Auto,
    Always,
    Never,
}

/// What a command asks the process to exit with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything is fine.
    Success,
    /// The user's program (or file layout, for `fmt --check`) has problems.
    ProgramErrors,
    /// A search ended without a verdict (`graft verify` hit a limit): exit status 3.
    Inconclusive,
    /// `graft optimize` found no version better than the source: exit status 4.
    NoImprovement,
}

/// Settings shared by every command.
pub struct Context {
    pub color: bool,
    /// Warnings were already reported (or are not wanted): commands render only errors.
    pub quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let context = Context {
        quiet: false,
        color: match cli.color {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => {
                std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        },
    };
    let result = match cli.command {
        Command::Check(args) => commands::check::run(&context, &args),
        Command::Fmt(args) => commands::fmt::run(&context, &args),
        Command::Graph(args) => commands::graph::run(&context, &args),
        Command::Run(args) => commands::run::run(&context, &args),
        Command::Explain(args) => commands::explain::run(&context, &args),
        Command::Rewrite(args) => commands::rewrite::run(&context, &args),
        Command::Test(args) => commands::test::run(&context, &args),
        Command::Verify(args) => commands::verify::run(&context, &args),
        Command::Report(args) => commands::report::run(&context, &args),
        Command::Optimize(args) => commands::optimize::run(&context, &args),
        Command::Bench(args) => commands::bench::run(&context, &args),
    };
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::ProgramErrors) => ExitCode::from(1),
        Ok(Outcome::Inconclusive) => ExitCode::from(3),
        Ok(Outcome::NoImprovement) => ExitCode::from(4),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
