//! The differential test: every example program × workload × fault schedule runs on the
//! reference evaluator and on the timely runtime (1, 2 and 4 workers); the printed facts
//! (every relation, every tick), the number of ticks and the cap flag must be equal. On a
//! mismatch the first difference is printed first.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use graft_eval::{CrashModel, Evaluator, RunConfig, ShowSet};

/// One program with one workload.
struct Case {
    name: String,
    program: Vec<String>,
    facts: Vec<String>,
}

fn files_with(directory: &Path, predicate: impl Fn(&str) -> bool) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(directory)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| {
                    path.is_file()
                        && path
                            .file_name()
                            .and_then(|name| name.to_str())
                            .is_some_and(&predicate)
                })
                .map(|path| path.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn cases() -> Vec<Case> {
    let examples = common::root().join("examples");
    let mut directories: Vec<_> = std::fs::read_dir(&examples)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.is_dir())
                .collect()
        })
        .unwrap_or_default();
    directories.sort();
    let mut cases = Vec::new();
    for directory in directories {
        let dir_name = directory
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("?")
            .to_owned();
        let topology = files_with(&directory, |name| name == "topology.facts");
        let workloads = files_with(&directory, |name| {
            name.starts_with("workload") && name.ends_with(".facts")
        });
        for program in files_with(&directory, |name| name.ends_with(".graft")) {
            for workload in &workloads {
                let mut facts = topology.clone();
                facts.push(workload.clone());
                let workload_name = Path::new(workload)
                    .file_name()
                    .and_then(|name| name.to_str())
                    .unwrap_or("?");
                cases.push(Case {
                    name: format!("{dir_name}/{workload_name}"),
                    program: vec![program.clone()],
                    facts,
                });
            }
        }
        for program in files_with(&directory, |name| name.ends_with(".ded")) {
            let program_name = Path::new(&program)
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or("?")
                .to_owned();
            cases.push(Case {
                name: format!("{dir_name}/{program_name}"),
                program: vec![program],
                facts: Vec::new(),
            });
        }
    }
    cases
}

/// A dozen fault schedules over the run's nodes (by position, so that every example gets
/// crashes and omissions between nodes that talk), plus end-of-time and cap variants.
fn schedules(nodes: &[String]) -> BTreeMap<String, RunConfig> {
    let node = |index: usize| nodes[index % nodes.len().max(1)].clone();
    let mut schedules = BTreeMap::new();
    let mut add = |name: &str, edit: &dyn Fn(&mut RunConfig)| {
        let mut config = RunConfig::default();
        edit(&mut config);
        schedules.insert(name.to_owned(), config);
    };
    add("01-fault-free", &|_| {});
    add("02-eot-5", &|config| config.eot = Some(5));
    add("03-cap-3", &|config| config.max_ticks = 3);
    if nodes.is_empty() {
        return schedules;
    }
    add("04-crash-first@1", &|config| {
        config.crashes.insert(node(0), 1);
    });
    add("05-crash-second@2", &|config| {
        config.crashes.insert(node(1), 2);
    });
    add("06-crash-last@3-strict", &|config| {
        config.crashes.insert(node(nodes.len() - 1), 3);
        config.crash_model = CrashModel::Strict;
    });
    add("07-crash-first@2-strict", &|config| {
        config.crashes.insert(node(0), 2);
        config.crash_model = CrashModel::Strict;
    });
    add("08-drop-first-second@1", &|config| {
        config.drops.insert((node(0), node(1), 1));
    });
    add("09-drops-mixed", &|config| {
        config.drops.insert((node(1), node(0), 2));
        config.drops.insert((node(0), node(2), 1));
        config.drops.insert((node(2), node(0), 3));
    });
    add("10-drops-from-first", &|config| {
        for other in nodes {
            config.drops.insert((node(0), other.clone(), 1));
            config.drops.insert((node(0), other.clone(), 2));
        }
    });
    add("11-crash-and-drop", &|config| {
        config.crashes.insert(node(1), 2);
        config.drops.insert((node(0), node(2), 1));
    });
    add("12-crash-and-drop-strict", &|config| {
        config.crashes.insert(node(1), 2);
        config.drops.insert((node(0), node(2), 1));
        config.crash_model = CrashModel::Strict;
    });
    add("13-eot-8-crash-strict", &|config| {
        config.eot = Some(8);
        config.crashes.insert(node(2), 4);
        config.crash_model = CrashModel::Strict;
    });
    add("14-extra-node-and-crash", &|config| {
        config.extra_nodes.insert("zz_extra".to_owned());
        config.crashes.insert("zz_extra".to_owned(), 2);
        config.crashes.insert(node(0), 3);
    });
    schedules
}

fn check_examples(workers: &[usize]) {
    let cases = cases();
    assert!(
        cases.len() >= 10,
        "found only {} example cases",
        cases.len()
    );
    let mut failures = Vec::new();
    let mut runs = 0;
    let mut total = common::Compared::default();
    for case in &cases {
        let loaded = match common::load(&case.program, &case.facts) {
            Ok(loaded) => loaded,
            Err(error) => {
                failures.push(format!("{}: does not load: {error}", case.name));
                continue;
            }
        };
        let Ok(evaluator) = Evaluator::new(&loaded.checked) else {
            failures.push(format!("{}: the reference evaluator refuses it", case.name));
            continue;
        };
        let nodes: Vec<String> = evaluator
            .nodes(&RunConfig::default(), &loaded.facts)
            .unwrap_or_default()
            .iter()
            .filter_map(|value| value.as_str().map(str::to_owned))
            .collect();
        for (schedule, config) in schedules(&nodes) {
            for shown in [ShowSet::All, ShowSet::Default] {
                for &count in workers {
                    // The default show set only once, on one worker: `All` covers it.
                    if shown == ShowSet::Default && count != 1 {
                        continue;
                    }
                    runs += 1;
                    // The dataflow lowering too, except on 4 workers (covered by 1 and 2).
                    match common::compare(&loaded, &config, &shown, count, count <= 2) {
                        Ok(compared) => {
                            total.lines += compared.lines;
                            total.local += compared.local;
                            total.dataflow += compared.dataflow;
                        }
                        Err(difference) => failures.push(format!(
                            "{} / {schedule} / {count} worker(s) / {shown:?}:\n{difference}",
                            case.name
                        )),
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} runs differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(
        total.lines > 0,
        "the runs printed nothing: the test compares nothing"
    );
    assert!(
        total.local > 0 && total.dataflow > total.local,
        "both engines of the runtime must be compared: {total:?}"
    );
}

#[test]
fn examples_match_the_reference_on_one_worker() {
    check_examples(&[1]);
}

#[test]
fn examples_match_the_reference_on_two_and_four_workers() {
    check_examples(&[2, 4]);
}

/// Rule shapes that only Molly's dialect allows (`.ded` files): bodies whose location is a
/// wildcard or a constant, heads held at another node, an aggregate over every node's facts,
/// and an `@async` rule without a location variable (the reference sends nothing for it).
/// Such rules are evaluated over every node's facts at once; the runtime once refused them
/// with "uses a variable that no positive body atom binds".
#[test]
fn molly_dialect_rule_shapes_match_the_reference() {
    let program = r#"
        peer("a", "b")@1; peer("b", "c")@1; peer("c", "a")@1;
        token("a", 1)@1; token("b", 2)@2;
        token(P, N)@async :- token(L, N), peer(L, P), N < 4;
        seen(L, N) :- token(L, N);
        seen(L, N)@next :- seen(L, N);
        everywhere("all", N) :- seen(_, N);
        count_at("c", count<N>) :- seen(_, N);
        holder(P, L, N) :- seen(L, N), peer(L, P), N > 1;
        ghost("b", N)@async :- seen("a", N);
        lonely(L) :- peer(L, _), notin seen(L, _);
        lonely(L)@next :- lonely(L);
    "#;
    let loaded = common::load_inline_as(program, "", "ded").expect("the program checks");
    let nodes = ["a", "b", "c"].map(str::to_owned);
    let mut failures = Vec::new();
    for (schedule, config) in schedules(&nodes) {
        for workers in [1, 2] {
            if let Err(difference) = common::compare(&loaded, &config, &ShowSet::All, workers, true)
            {
                failures.push(format!("{schedule} / {workers} worker(s):\n{difference}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
