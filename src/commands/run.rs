//! `graft run`: evaluate a program on workloads under a fault schedule and print the facts of
//! the shown relations, one per line as `rel(args)@tick;`, sorted by tick, relation, values.
//!
//! Two engines give the same output byte for byte: the timely dataflow runtime (the default;
//! threads with `--workers`, processes with `--processes`/`--process`/`--hostfile`) and the
//! reference evaluator (`--engine reference`), the definition the runtime is tested against.

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use graft_eval::ShownFact;
use graft_runtime::{Cluster, Execution};

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
    #[command(flatten)]
    pub engine: EngineOptions,
}

/// Which engine runs the program, and on how many workers.
#[derive(Args, Debug, Clone)]
pub struct EngineOptions {
    /// `timely`: the timely dataflow runtime; `reference`: the reference evaluator. Both print
    /// the same facts.
    #[arg(long, value_enum, default_value_t = Engine::Timely)]
    pub engine: Engine,
    /// Timely worker threads in this process.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub workers: u64,
    /// Run as one of N processes of a cluster (each started with the same arguments and its
    /// own --process). Addresses come from --hostfile, or default to 127.0.0.1:2101, :2102, ...
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub processes: Option<u64>,
    /// This process's index in the cluster, from 0; only process 0 prints.
    #[arg(long, value_name = "I")]
    pub process: Option<u64>,
    /// A file with one `host:port` per line, in process order (`#` comments allowed).
    #[arg(long, value_name = "FILE")]
    pub hostfile: Option<String>,
    /// Seconds to wait for every process of the cluster to connect; also how long a connected
    /// process may stay silent mid-run before the others give up on it (exit status 2).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub connect_timeout: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    Timely,
    Reference,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RunFormat {
    Text,
    Json,
}

pub fn run(context: &Context, args: &RunArgs) -> anyhow::Result<Outcome> {
    let execution = execution(&args.engine)?;
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
    let (facts, capped) = match args.engine.engine {
        Engine::Reference => {
            let run = evaluator.run(&config, &loaded.facts)?;
            (graft_eval::shown_facts(program, &run, &show), run.capped)
        }
        Engine::Timely => {
            let runtime = graft_runtime::Runtime::new(&loaded.checked)?;
            let output = match runtime.run(&config, &loaded.facts, &show, &execution) {
                // Process 0 prints only once the whole run completed; say so, on one line.
                Err(lost @ graft_runtime::RuntimeError::PeerLost { .. }) => {
                    anyhow::bail!("{lost}; no output was printed")
                }
                other => other?,
            };
            match output {
                Some(output) => (output.facts, output.capped),
                // Another process of the cluster prints.
                None => return Ok(Outcome::Success),
            }
        }
    };
    print_facts(&facts, args.format)?;
    if capped {
        eprintln!(
            "warning: the run reached --max-ticks {} before quiescence; give --eot or a larger --max-ticks",
            args.options.max_ticks
        );
    }
    Ok(Outcome::Success)
}

/// The workers and processes the engine options ask for; reads the hostfile.
fn execution(options: &EngineOptions) -> anyhow::Result<Execution> {
    let workers = usize::try_from(options.workers).context("--workers is too large")?;
    if !(options.connect_timeout.is_finite() && options.connect_timeout > 0.0) {
        anyhow::bail!(
            "--connect-timeout must be a positive number of seconds, found {}",
            options.connect_timeout
        );
    }
    let timeout = Duration::from_secs_f64(options.connect_timeout.min(86_400.0));
    let addresses = match &options.hostfile {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the hostfile `{path}`"))?;
            let addresses = graft_runtime::parse_hostfile(&text)
                .with_context(|| format!("the hostfile `{path}` does not parse"))?;
            if let Some(processes) = options.processes
                && usize::try_from(processes).ok() != Some(addresses.len())
            {
                anyhow::bail!(
                    "--processes {processes} does not match the hostfile `{path}`, which names {} process(es)",
                    addresses.len()
                );
            }
            Some(addresses)
        }
        None => options.processes.map(|processes| {
            graft_runtime::default_addresses(usize::try_from(processes).unwrap_or(1))
        }),
    };
    let cluster = match addresses {
        None if options.process.is_some() => {
            anyhow::bail!("--process needs --processes N or --hostfile FILE");
        }
        None => None,
        Some(addresses) if addresses.len() == 1 && options.process.unwrap_or(0) == 0 => None,
        Some(addresses) => {
            let Some(process) = options.process else {
                anyhow::bail!(
                    "a cluster of {} processes needs --process I (0 to {}) for this process",
                    addresses.len(),
                    addresses.len() - 1
                );
            };
            let process = usize::try_from(process).unwrap_or(usize::MAX);
            Some(Cluster::new(addresses, process, timeout)?)
        }
    };
    Ok(Execution { workers, cluster })
}

fn print_facts(facts: &[ShownFact], format: RunFormat) -> anyhow::Result<()> {
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        RunFormat::Text => {
            for fact in facts {
                stdout.write_all(
                    graft_eval::render_fact(&fact.relation, &fact.values, fact.tick).as_bytes(),
                )?;
                stdout.write_all(b"\n")?;
            }
        }
        RunFormat::Json => {
            writeln!(stdout, "[")?;
            for (index, fact) in facts.iter().enumerate() {
                let separator = if index + 1 < facts.len() { "," } else { "" };
                writeln!(stdout, "{}{separator}", serde_json::to_string(fact)?)?;
            }
            writeln!(stdout, "]")?;
        }
    }
    stdout.flush()?;
    Ok(())
}
