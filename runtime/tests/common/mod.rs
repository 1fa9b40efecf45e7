//! Helpers shared by the runtime's tests: load the examples (or inline programs), run them on
//! both engines, and report the first difference.

#![allow(
    dead_code,
    reason = "each test file uses a different subset of the helpers"
)]

pub mod cases;

use std::path::{Path, PathBuf};

use graft_compiler::Checked;
use graft_compiler::ir;
use graft_eval::{Evaluator, Record, RunConfig, ShowSet, ShownFact, render_fact};
use graft_runtime::{Execution, Lowering, Runtime};

/// A checked program with its workload facts.
pub struct Loaded {
    pub checked: Checked,
    pub facts: Vec<ir::Fact>,
}

/// The repository's root directory.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|error| format!("cannot read `{path}`: {error}"))
}

/// Loads and checks program files and facts files; `Err` describes any error diagnostic.
pub fn load(program: &[String], facts: &[String]) -> Result<Loaded, String> {
    let mut reader = |path: &str| read(path);
    let mut loaded = graft_language::loader::load_program(program, &mut reader);
    let checked = graft_compiler::check(&loaded.sources, &loaded.files);
    let mut errors: Vec<String> = loaded
        .diagnostics
        .iter()
        .chain(&checked.diagnostics)
        .filter(|diagnostic| diagnostic.is_error())
        .map(|diagnostic| format!("{} {}", diagnostic.code, diagnostic.message))
        .collect();
    let mut files = Vec::new();
    for path in facts {
        let text = read(path)?;
        let id = loaded.sources.add(path.clone(), text.clone());
        let parsed = graft_language::parse(id, &text);
        errors.extend(
            parsed
                .diagnostics
                .iter()
                .filter(|diagnostic| diagnostic.is_error())
                .map(|diagnostic| format!("{} {}", diagnostic.code, diagnostic.message)),
        );
        files.push(parsed.file);
    }
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    let (facts, diagnostics) = graft_compiler::check_facts(&checked.program, &files);
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.is_error())
        .map(|diagnostic| format!("{} {}", diagnostic.code, diagnostic.message))
        .collect();
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    Ok(Loaded { checked, facts })
}

/// Parses and checks an inline program and workload.
pub fn load_inline(program: &str, workload: &str) -> Result<Loaded, String> {
    load_inline_as(program, workload, "graft")
}

/// Parses and checks an inline program written as a file with `extension` (`ded` for Molly's
/// dialect, whose relaxations apply only to `.ded` files) and a workload.
pub fn load_inline_as(program: &str, workload: &str, extension: &str) -> Result<Loaded, String> {
    let directory = std::env::temp_dir().join(format!("graft-runtime-test-{}", std::process::id()));
    std::fs::create_dir_all(&directory).map_err(|error| error.to_string())?;
    let unique = format!("{:?}", std::thread::current().id())
        .replace(|character: char| !character.is_ascii_alphanumeric(), "");
    let program_path = directory.join(format!("program-{unique}.{extension}"));
    let facts_path = directory.join(format!("facts-{unique}.facts"));
    std::fs::write(&program_path, program).map_err(|error| error.to_string())?;
    std::fs::write(&facts_path, workload).map_err(|error| error.to_string())?;
    load(
        &[program_path.display().to_string()],
        &[facts_path.display().to_string()],
    )
}

/// Parses and checks an inline program of several files (the first is the program; the others
/// are there for it to include) and a workload.
pub fn load_inline_files(files: &[(String, String)], workload: &str) -> Result<Loaded, String> {
    let unique = format!("{:?}", std::thread::current().id())
        .replace(|character: char| !character.is_ascii_alphanumeric(), "");
    let directory = std::env::temp_dir()
        .join(format!("graft-runtime-test-{}", std::process::id()))
        .join(unique);
    std::fs::create_dir_all(&directory).map_err(|error| error.to_string())?;
    for (name, text) in files {
        std::fs::write(directory.join(name), text).map_err(|error| error.to_string())?;
    }
    let facts_path = directory.join("workload.facts");
    std::fs::write(&facts_path, workload).map_err(|error| error.to_string())?;
    let program = files
        .first()
        .map(|(name, _)| directory.join(name).display().to_string())
        .ok_or("no program file")?;
    load(&[program], &[facts_path.display().to_string()])
}

/// The rendered lines of shown facts.
pub fn render(facts: &[ShownFact]) -> Vec<String> {
    facts
        .iter()
        .map(|fact| render_fact(&fact.relation, &fact.values, fact.tick))
        .collect()
}

/// The first difference between two renderings, with context.
pub fn first_difference(expected: &[String], actual: &[String]) -> Option<String> {
    let position = expected
        .iter()
        .zip(actual)
        .position(|(left, right)| left != right)
        .or_else(|| (expected.len() != actual.len()).then(|| expected.len().min(actual.len())))?;
    let start = position.saturating_sub(3);
    let show = |lines: &[String]| {
        lines
            .iter()
            .skip(start)
            .take(8)
            .map(|line| format!("    {line}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    Some(format!(
        "first difference at line {} ({} lines expected, {} found)\n  reference:\n{}\n  timely:\n{}",
        position + 1,
        expected.len(),
        actual.len(),
        show(expected),
        show(actual)
    ))
}

/// What one comparison ran and printed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Compared {
    /// Lines the reference printed.
    pub lines: usize,
    /// Runs on the node-local engine and on the dataflow lowering.
    pub local: usize,
    pub dataflow: usize,
}

/// Runs the reference and the runtime — the lowering `Auto` picks and, when that is the
/// node-local engine and `both` is set, the dataflow lowering too; `Err` holds the difference
/// (printed first) or an engine's error.
pub fn compare(
    loaded: &Loaded,
    config: &RunConfig,
    show: &ShowSet,
    workers: usize,
    both: bool,
) -> Result<Compared, String> {
    let evaluator = Evaluator::new(&loaded.checked).map_err(|error| error.to_string())?;
    let mut reference_config = config.clone();
    reference_config.record = Record::Relations(show.relations(&loaded.checked.program));
    let run = evaluator
        .run(&reference_config, &loaded.facts)
        .map_err(|error| format!("reference: {error}"))?;
    let expected = render(&graft_eval::shown_facts(
        &loaded.checked.program,
        &run,
        show,
    ));
    let runtime = Runtime::new(&loaded.checked).map_err(|error| format!("timely: {error}"))?;
    let execution = Execution {
        workers,
        cluster: None,
    };
    let mut compared = Compared {
        lines: expected.len(),
        ..Compared::default()
    };
    // Runs with late messages always use the dataflow lowering (the node-local engine delivers
    // every message at the next tick).
    let local = runtime.is_local(show) && config.delays.is_empty();
    let mut lowerings = vec![Lowering::Auto];
    if local {
        compared.local += 1;
        if both {
            lowerings.push(Lowering::Dataflow);
            compared.dataflow += 1;
        }
    } else {
        compared.dataflow += 1;
    }
    for lowering in lowerings {
        let name = if lowering == Lowering::Dataflow || !local {
            "timely (dataflow lowering)"
        } else {
            "timely (node-local engine)"
        };
        let output = runtime
            .clone()
            .with_lowering(lowering)
            .run(config, &loaded.facts, show, &execution)
            .map_err(|error| format!("{name}: {error}"))?
            .ok_or_else(|| format!("{name}: no output on process 0"))?;
        let actual = render(&output.facts);
        if let Some(difference) = first_difference(&expected, &actual) {
            return Err(format!("{name}: {difference}"));
        }
        if (output.ticks_run, output.capped) != (run.ticks_run, run.capped) {
            return Err(format!(
                "{name}: ticks run: reference {} (capped {}), timely {} (capped {})",
                run.ticks_run, run.capped, output.ticks_run, output.capped
            ));
        }
    }
    Ok(compared)
}

/// Runs the reference with provenance and the runtime's traced run on `workers` workers, and
/// compares what `graft explain` and `graft verify` read: the run's length, nodes, every
/// tick's facts, the message log with fates, and every fact's derivations (both runs are
/// canonical: a fact's id is its rank in value order, so derivations compare by value).
/// `Ok` holds the number of derivations compared; `Err` the first difference.
pub fn compare_traced(
    loaded: &Loaded,
    config: &RunConfig,
    workers: usize,
) -> Result<usize, String> {
    let runtime = Runtime::new(&loaded.checked).map_err(|error| format!("timely: {error}"))?;
    let execution = Execution {
        workers,
        cluster: None,
    };
    let actual = runtime
        .run_traced(config, &loaded.facts, &execution)
        .map_err(|error| format!("timely: {error}"))?
        .ok_or("timely: no output on process 0")?;
    compare_traced_run(loaded, config, &actual)
}

/// Compares a traced run of the runtime (`actual`) with the reference's run with provenance
/// under `config`, as [`compare_traced`] does.
pub fn compare_traced_run(
    loaded: &Loaded,
    config: &RunConfig,
    actual: &graft_eval::Run,
) -> Result<usize, String> {
    let evaluator = Evaluator::new(&loaded.checked).map_err(|error| error.to_string())?;
    let mut reference_config = config.clone();
    reference_config.provenance = true;
    let expected = evaluator
        .run(&reference_config, &loaded.facts)
        .map_err(|error| format!("reference: {error}"))?;
    let program = &loaded.checked.program;
    if (expected.ticks_run, expected.capped) != (actual.ticks_run, actual.capped) {
        return Err(format!(
            "ticks run: reference {} (capped {}), timely {} (capped {})",
            expected.ticks_run, expected.capped, actual.ticks_run, actual.capped
        ));
    }
    if expected.nodes != actual.nodes {
        return Err(format!(
            "nodes: reference {:?}, timely {:?}",
            expected.nodes, actual.nodes
        ));
    }
    let mut compared = 0;
    for tick in 1..=expected.ticks_run {
        for relation in &program.relations {
            let (left, right) = (
                expected.facts(tick, relation.id),
                actual.facts(tick, relation.id),
            );
            if left != right {
                let render = |facts: &[graft_eval::Tuple]| {
                    facts
                        .iter()
                        .map(|tuple| render_fact(&relation.name, tuple, tick))
                        .collect::<Vec<_>>()
                };
                return Err(format!(
                    "facts of `{}` at tick {tick}:\n  reference: {:?}\n  timely:    {:?}",
                    relation.name,
                    render(left),
                    render(right)
                ));
            }
            for (id, tuple) in left.iter().enumerate() {
                let fact = graft_eval::FactRef {
                    tick,
                    rel: relation.id,
                    tuple: u32::try_from(id).unwrap_or(u32::MAX),
                };
                let (left, right) = (expected.derivations(fact), actual.derivations(fact));
                if left != right {
                    return Err(format!(
                        "derivations of {}\n  reference: {left:?}\n  timely:    {right:?}",
                        render_fact(&relation.name, tuple, tick)
                    ));
                }
                compared += left.len();
            }
        }
    }
    if expected.messages != actual.messages {
        let first = expected
            .messages
            .iter()
            .zip(&actual.messages)
            .position(|(left, right)| left != right)
            .unwrap_or(expected.messages.len().min(actual.messages.len()));
        return Err(format!(
            "message logs differ at entry {first} ({} messages expected, {} found):\n  reference: {:?}\n  timely:    {:?}",
            expected.messages.len(),
            actual.messages.len(),
            expected.messages.get(first),
            actual.messages.get(first)
        ));
    }
    Ok(compared)
}
