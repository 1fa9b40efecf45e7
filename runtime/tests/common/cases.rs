//! The example cases and fault schedules that the differential tests run: every example
//! program with each of its workloads, and a dozen schedules over each run's nodes.

use std::collections::BTreeMap;
use std::path::Path;

use graft_eval::{CrashModel, Evaluator, RunConfig};

use super::Loaded;

/// One program with one workload.
pub struct Case {
    pub name: String,
    pub program: Vec<String>,
    pub facts: Vec<String>,
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

pub fn cases() -> Vec<Case> {
    let examples = super::root().join("examples");
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
pub fn schedules(nodes: &[String]) -> BTreeMap<String, RunConfig> {
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
    // Late messages: the first tick's messages on a channel overtaken by the next tick's;
    // several channels late by different amounts; a delay past the end of time; a delay into
    // a receiver's crash (lost in the strict model); a delay on a channel also omitted.
    add("15-delay-first-second@1by2", &|config| {
        config.delays.insert((node(0), node(1), 1), 2);
    });
    add("16-delays-mixed", &|config| {
        for (index, other) in nodes.iter().enumerate().skip(1) {
            config.delays.insert((node(0), other.clone(), 1), 3);
            config
                .delays
                .insert((other.clone(), node(0), 2), 1 + index as u64 % 3);
        }
        config.delays.insert((node(1), node(2), 3), 1);
    });
    add("17-delay-past-eot", &|config| {
        config.eot = Some(4);
        config.delays.insert((node(0), node(1), 2), 5);
        config.delays.insert((node(1), node(0), 1), 1);
    });
    add("18-delay-into-crash-strict", &|config| {
        config.delays.insert((node(0), node(1), 1), 3);
        config.crashes.insert(node(1), 3);
        config.crash_model = CrashModel::Strict;
    });
    add("19-delay-drop-and-crash", &|config| {
        config.delays.insert((node(0), node(2), 1), 2);
        config.drops.insert((node(0), node(2), 1));
        config.delays.insert((node(2), node(1), 2), 2);
        config.crashes.insert(node(2), 3);
    });
    schedules
}

/// The run's nodes (as strings) of a loaded case, without faults.
pub fn nodes(loaded: &Loaded) -> Vec<String> {
    Evaluator::new(&loaded.checked)
        .and_then(|evaluator| evaluator.nodes(&RunConfig::default(), &loaded.facts))
        .unwrap_or_default()
        .iter()
        .filter_map(|value| value.as_str().map(str::to_owned))
        .collect()
}
