//! Parity on programs nobody here wrote: every `.ded` program of Molly's corpus (alone, and
//! with each assertion file of its directory) that `graft check` accepts runs on the timely
//! runtime — both lowerings, 1, 2 and 4 workers, a two-process cluster — and prints exactly
//! the reference's facts under every fault schedule of the differential test, in both crash
//! models, with and without a fixed node set (Molly's `-N`); its traced runs (what `graft
//! explain` and `graft verify` read) equal the reference's provenance.
//!
//! The corpus is not part of this repository: set `GRAFT_MOLLY_CORPUS` to a copy of Molly's
//! `src/test/resources/examples_ft` (see `docs/verification.md`). Without it the test says so
//! and passes.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use graft_eval::{RunConfig, ShowSet};
use graft_runtime::{Cluster, Execution, Runtime};

/// Every `.ded` file under `directory`, sorted.
fn ded_files(directory: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&directory) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|extension| extension == "ded") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The programs: each file that is not an assertion file, alone and with each assertion file
/// (`*_assert*.ded`) of its directory.
fn programs(corpus: &Path) -> Vec<Vec<String>> {
    let files = ded_files(corpus);
    let is_assert = |path: &Path| {
        path.file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.contains("_assert"))
    };
    let mut programs = Vec::new();
    for file in files.iter().filter(|file| !is_assert(file)) {
        programs.push(vec![file.display().to_string()]);
        for assertions in files
            .iter()
            .filter(|other| is_assert(other) && other.parent() == file.parent())
        {
            programs.push(vec![
                file.display().to_string(),
                assertions.display().to_string(),
            ]);
        }
    }
    programs
}

/// The name of a program for messages: its files relative to the corpus.
fn name(corpus: &Path, files: &[String]) -> String {
    files
        .iter()
        .map(|file| {
            Path::new(file)
                .strip_prefix(corpus)
                .map_or_else(|_| file.clone(), |path| path.display().to_string())
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The schedules of the differential test, with an end of time (Molly's programs run to an
/// end of time; a few never quiesce), plus each with the nodes fixed.
fn schedules(nodes: &[String]) -> Vec<(String, RunConfig)> {
    let mut out = Vec::new();
    for (name, mut config) in common::cases::schedules(nodes) {
        if config.eot.is_none() {
            config.eot = Some(8);
        }
        let mut fixed = config.clone();
        fixed.exact_nodes = true;
        fixed.extra_nodes.extend(nodes.iter().cloned());
        out.push((name.clone(), config));
        out.push((format!("{name}-nodes-fixed"), fixed));
    }
    out
}

/// Runs the program as process 0 and process 1 of a two-process cluster on loopback (two
/// threads of this test), and returns process 0's output.
fn two_processes(
    runtime: &Runtime,
    config: &RunConfig,
    loaded: &common::Loaded,
    base: u16,
) -> Result<Vec<String>, String> {
    let addresses = vec![
        format!("127.0.0.1:{base}"),
        format!("127.0.0.1:{}", base + 1),
    ];
    let outputs: Vec<Result<Option<Vec<String>>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|process| {
                let addresses = addresses.clone();
                scope.spawn(move || {
                    let cluster = Cluster::new(addresses, process, Duration::from_secs(20))
                        .map_err(|error| error.to_string())?;
                    let execution = Execution {
                        workers: 1,
                        cluster: Some(cluster),
                    };
                    runtime
                        .run(config, &loaded.facts, &ShowSet::All, &execution)
                        .map(|output| output.map(|output| common::render(&output.facts)))
                        .map_err(|error| format!("process {process}: {error}"))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err("a process panicked".to_owned()))
            })
            .collect()
    });
    let mut printed = None;
    for output in outputs {
        if let Some(lines) = output? {
            printed = Some(lines);
        }
    }
    printed.ok_or_else(|| "process 0 returned no output".to_owned())
}

#[test]
fn molly_corpus_runs_on_timely_as_on_the_reference() {
    let Some(corpus) = std::env::var_os("GRAFT_MOLLY_CORPUS").map(PathBuf::from) else {
        println!(
            "skipped: set GRAFT_MOLLY_CORPUS to a copy of Molly's src/test/resources/examples_ft to run Molly's corpus (docs/verification.md)"
        );
        return;
    };
    let programs = programs(&corpus);
    assert!(
        !programs.is_empty(),
        "no .ded program under {}",
        corpus.display()
    );
    let spread = u16::try_from(std::process::id() % 500).unwrap_or(0);
    let mut port = 40_000 + spread * 40;
    let mut failures = Vec::new();
    let mut rejected = Vec::new();
    let (mut accepted, mut runs, mut derivations) = (0, 0, 0);
    for files in &programs {
        let name = name(&corpus, files);
        let loaded = match common::load(files, &[]) {
            Ok(loaded) => loaded,
            Err(error) => {
                rejected.push(format!("{name}: {error}"));
                continue;
            }
        };
        accepted += 1;
        let nodes = common::cases::nodes(&loaded);
        let runtime = match Runtime::new(&loaded.checked) {
            Ok(runtime) => runtime,
            Err(error) => {
                failures.push(format!("{name}: the runtime refuses it: {error}"));
                continue;
            }
        };
        for (schedule, config) in schedules(&nodes) {
            for workers in [1, 2, 4] {
                runs += 1;
                if let Err(difference) =
                    common::compare(&loaded, &config, &ShowSet::All, workers, workers <= 2)
                {
                    failures.push(format!("{name} / {schedule} / {workers}:\n{difference}"));
                }
            }
            match common::compare_traced(&loaded, &config, 1) {
                Ok(compared) => derivations += compared,
                Err(difference) => {
                    failures.push(format!("{name} / {schedule} / traced:\n{difference}"));
                }
            }
        }
        // A two-process cluster, fault-free and under one crash.
        for (schedule, config) in schedules(&nodes)
            .into_iter()
            .filter(|(schedule, _)| schedule == "01-fault-free" || schedule == "11-crash-and-drop")
        {
            runs += 1;
            let mut reference = RunConfig {
                record: graft_eval::Record::All,
                ..config.clone()
            };
            reference.provenance = false;
            let expected = graft_eval::Evaluator::new(&loaded.checked)
                .map_err(|error| error.to_string())
                .and_then(|evaluator| {
                    evaluator
                        .run(&reference, &loaded.facts)
                        .map_err(|error| error.to_string())
                        .map(|run| {
                            common::render(&graft_eval::shown_facts(
                                &loaded.checked.program,
                                &run,
                                &ShowSet::All,
                            ))
                        })
                });
            let actual = two_processes(&runtime, &config, &loaded, port);
            port += 2;
            match (expected, actual) {
                (Ok(expected), Ok(actual)) => {
                    if let Some(difference) = common::first_difference(&expected, &actual) {
                        failures.push(format!(
                            "{name} / {schedule} / two processes:\n{difference}"
                        ));
                    }
                }
                (Err(error), _) | (_, Err(error)) => {
                    failures.push(format!("{name} / {schedule} / two processes: {error}"));
                }
            }
        }
    }
    println!(
        "Molly's corpus: {} programs, {accepted} accepted by graft check, {runs} runs compared, {derivations} derivations compared",
        programs.len()
    );
    for line in &rejected {
        println!("  not run (graft check rejects it): {line}");
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} runs differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(accepted >= 10, "only {accepted} corpus programs check");
    assert!(derivations > 0, "no derivation was compared");
}
