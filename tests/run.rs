//! End-to-end tests of `graft run` and `graft explain`.
//!
//! Every example README lists its runs in a "Runs" section: `graft run` commands, each under a
//! comment that starts with `# holds` or `# fails`. These tests run every one of them, snapshot
//! its output together with the `pre` facts at EOT that lack a `post` fact, and check the mark:
//! `holds` runs leave no such `pre` fact, `fails` runs leave at least one. Each program of each
//! example must have a fault-free `holds` run for every workload. Then: the crash models, JSON
//! output, workload and option errors (nothing on stdout), quiescence and the tick cap, and
//! derivation trees.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{exit_code, files_with_extensions, graft, relative, root, transcript};

/// Every example directory, sorted.
fn example_directories() -> Vec<PathBuf> {
    let mut directories: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .expect("examples/ exists")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_dir())
        .collect();
    directories.sort();
    directories
}

fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_omit_expression(true);
    settings
}

/// One `graft run` command of a README's "Runs" section.
#[derive(Debug)]
struct ReadmeRun {
    /// The comment above the command, without `# `.
    comment: String,
    /// `# holds` (every `pre` fact at EOT has its `post` fact) or `# fails`.
    holds: bool,
    /// The arguments after `graft`, starting with `run`.
    args: Vec<String>,
}

impl ReadmeRun {
    fn has_faults(&self) -> bool {
        self.args
            .iter()
            .any(|arg| arg == "--drop" || arg == "--crash" || arg == "--delay")
    }

    /// The value of `--eot`, which every README run gives.
    fn eot(&self) -> u64 {
        let position = self
            .args
            .iter()
            .position(|arg| arg == "--eot")
            .unwrap_or_else(|| panic!("README run without --eot: {:?}", self.args));
        self.args[position + 1]
            .parse()
            .expect("--eot takes a number")
    }

    /// A snapshot name: the example, the workload (or the `.ded` program), the EOT, the faults.
    fn snapshot_name(&self, directory: &str) -> String {
        let mut name = directory.to_string();
        let workload = self
            .args
            .iter()
            .filter(|arg| arg.contains("/workload"))
            .chain(self.args.iter().filter(|arg| arg.ends_with(".ded")))
            .next()
            .unwrap_or_else(|| panic!("README run names no workload or .ded: {:?}", self.args));
        let stem = Path::new(workload)
            .file_stem()
            .and_then(|stem| stem.to_str())
            .expect("file stem");
        name.push_str(&format!("__{stem}__eot{}", self.eot()));
        // A buggy variant's runs are named apart from the correct program's.
        if let Some(program) = self.args.get(1).filter(|arg| arg.contains("/buggy/")) {
            let variant = Path::new(program)
                .file_stem()
                .and_then(|stem| stem.to_str())
                .expect("file stem");
            name.push_str(&format!("__{variant}"));
        }
        let mut arguments = self.args.iter();
        while let Some(arg) = arguments.next() {
            let label = match arg.as_str() {
                "--drop" => "drop",
                "--crash" => "crash",
                "--crash-model" => "model",
                "--delay" => "delay",
                _ => continue,
            };
            let value = arguments.next().expect("option value");
            let value: String = value
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            name.push_str(&format!("__{label}-{value}"));
        }
        name
    }
}

/// The `graft run` commands of `directory/README.md`, in order.
fn readme_runs(directory: &Path) -> Vec<ReadmeRun> {
    let readme = std::fs::read_to_string(directory.join("README.md"))
        .unwrap_or_else(|error| panic!("{}: {error}", directory.display()));
    let mut runs = Vec::new();
    let mut previous = "";
    for line in readme.lines() {
        if let Some(rest) = line.strip_prefix("graft run ") {
            let comment = previous.strip_prefix("# ").unwrap_or_else(|| {
                panic!(
                    "{}: `{line}` needs a `# holds`/`# fails` comment above it",
                    directory.display()
                )
            });
            let holds = if comment.starts_with("holds") {
                true
            } else if comment.starts_with("fails") {
                false
            } else {
                panic!(
                    "{}: comment `{previous}` says neither holds nor fails",
                    directory.display()
                );
            };
            let mut args = vec!["run".to_string()];
            args.extend(rest.split_whitespace().map(str::to_string));
            runs.push(ReadmeRun {
                comment: comment.to_string(),
                holds,
                args,
            });
        }
        previous = line;
    }
    runs
}

/// The facts of a `--format json` run, parsed.
fn json_facts(args: &[String]) -> Vec<serde_json::Value> {
    let output = graft(args);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    let facts: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("run --format json prints JSON");
    facts.as_array().expect("a JSON array").clone()
}

/// `v1, v2`: a JSON fact's values, in the language's syntax.
fn values(fact: &serde_json::Value) -> String {
    let values: Vec<String> = fact["values"]
        .as_array()
        .expect("values array")
        .iter()
        .map(serde_json::Value::to_string)
        .collect();
    values.join(", ")
}

/// `rel(v1, v2)`: a JSON fact's relation and values, in the language's syntax.
fn atom(fact: &serde_json::Value) -> String {
    let relation = fact["relation"].as_str().expect("relation name");
    format!("{relation}({})", values(fact))
}

/// The `pre` facts at EOT without a matching `post` fact, for the run `run`.
fn unmet_pre_facts(run: &ReadmeRun) -> Vec<String> {
    let mut args = run.args.clone();
    args.extend(
        ["--show", "pre", "--show", "post", "--format", "json"]
            .iter()
            .map(|arg| arg.to_string()),
    );
    let eot = run.eot();
    let at_eot = |relation: &str, facts: &[serde_json::Value]| -> BTreeSet<String> {
        facts
            .iter()
            .filter(|fact| fact["relation"] == relation && fact["tick"] == eot)
            .map(values)
            .collect()
    };
    let facts = json_facts(&args);
    let pre = at_eot("pre", &facts);
    let post = at_eot("post", &facts);
    pre.difference(&post)
        .map(|args| format!("pre({args})"))
        .collect()
}

#[test]
fn every_readme_run_shows_what_its_readme_says() {
    let directories = example_directories();
    assert!(directories.len() >= 9, "the nine example protocols exist");
    let mut names = BTreeSet::new();
    snapshot_settings().bind(|| {
        for directory in &directories {
            let name = directory
                .file_name()
                .and_then(|name| name.to_str())
                .expect("directory name");
            let runs = readme_runs(directory);
            assert!(
                runs.iter().any(|run| run.has_faults() && !run.holds),
                "{name}: a README run shows its known failure"
            );
            assert!(
                runs.iter().any(|run| run.has_faults() && run.holds),
                "{name}: a README run shows a tolerated fault"
            );
            for run in &runs {
                let output = graft(&run.args);
                assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
                let unmet = unmet_pre_facts(run);
                assert_eq!(
                    run.holds,
                    unmet.is_empty(),
                    "{name}: `graft {}` is marked `{}` but leaves {unmet:?}",
                    run.args.join(" "),
                    run.comment
                );
                let snapshot = format!(
                    "$ graft {}\n# {}\n{}--- pre facts at EOT {} without a post fact\n{}\n",
                    run.args.join(" "),
                    run.comment,
                    transcript(&output),
                    run.eot(),
                    if unmet.is_empty() {
                        "(none)".to_string()
                    } else {
                        unmet.join("\n")
                    }
                );
                let snapshot_name = run.snapshot_name(name);
                assert!(
                    names.insert(snapshot_name.clone()),
                    "two README runs named {snapshot_name}"
                );
                insta::assert_snapshot!(snapshot_name, snapshot);
            }
        }
    });
}

#[test]
fn every_program_and_workload_has_a_fault_free_readme_run() {
    for directory in example_directories() {
        let runs = readme_runs(&directory);
        let fault_free: Vec<&ReadmeRun> = runs
            .iter()
            .filter(|run| !run.has_faults() && run.holds)
            .collect();
        let graft_files: Vec<String> = files_with_extensions(&directory, &["graft"])
            .iter()
            .map(|path| relative(path))
            .collect();
        let topology = relative(&directory.join("topology.facts"));
        let workloads: Vec<String> = files_with_extensions(&directory, &["facts"])
            .iter()
            .map(|path| relative(path))
            .filter(|path| path != &topology)
            .collect();
        let mut expected: Vec<Vec<String>> = Vec::new();
        if !graft_files.is_empty() {
            for workload in &workloads {
                let mut program = graft_files.clone();
                program.extend(["--facts".to_string(), topology.clone()]);
                program.extend(["--facts".to_string(), workload.clone()]);
                expected.push(program);
            }
        }
        for ded in files_with_extensions(&directory, &["ded"]) {
            expected.push(vec![relative(&ded)]);
        }
        assert!(!expected.is_empty(), "{}", directory.display());
        for program in expected {
            let found = fault_free.iter().any(|run| {
                run.args.len() == program.len() + 3
                    && run.args[1..=program.len()] == program[..]
                    && run.args[program.len() + 1] == "--eot"
            });
            assert!(
                found,
                "{}: no `# holds` run `graft run {} --eot N` in the README",
                directory.display(),
                program.join(" ")
            );
        }
    }
}

const TWO_PC: [&str; 6] = [
    "examples/2pc/2pc.graft",
    "--facts",
    "examples/2pc/topology.facts",
    "--facts",
    "examples/2pc/workload.facts",
    "--eot",
];

fn two_pc(extra: &[&str]) -> Vec<String> {
    let mut args = vec!["run".to_string()];
    args.extend(TWO_PC.iter().map(|arg| arg.to_string()));
    args.push("5".to_string());
    args.extend(extra.iter().map(|arg| arg.to_string()));
    args
}

fn stdout(args: &[String]) -> String {
    let output = graft(args);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

#[test]
fn a_crashed_node_derives_locally_under_molly_but_holds_nothing_under_strict() {
    // The coordinator crashes at tick 3: under Molly's model it still decides at tick 3 and
    // keeps its decision; under the strict model it holds nothing from tick 3 on.
    let molly = stdout(&two_pc(&["--crash", "C@3", "--show", "decision"]));
    assert_eq!(
        molly,
        "decision(\"C\", 1, true)@3;\ndecision(\"C\", 1, true)@4;\ndecision(\"C\", 1, true)@5;\n"
    );
    let strict = stdout(&two_pc(&[
        "--crash",
        "C@3",
        "--crash-model",
        "strict",
        "--show",
        "decision",
        "--show",
        "started",
    ]));
    assert_eq!(strict, "started(\"C\", 1)@1;\nstarted(\"C\", 1)@2;\n");

    // `crash` facts hold at every node at every tick under Molly's model, the crashed node
    // included; under the strict model the crashed node holds none from its crash tick on.
    let crash_facts = |model: &str| -> Vec<String> {
        stdout(&two_pc(&[
            "--crash",
            "C@3",
            "--crash-model",
            model,
            "--show",
            "crash",
        ]))
        .lines()
        .map(str::to_string)
        .collect()
    };
    let molly = crash_facts("molly");
    assert_eq!(
        molly.len(),
        4 * 5,
        "4 observers at each of 5 ticks: {molly:?}"
    );
    assert!(molly.contains(&"crash(\"C\", \"C\", 3)@5;".to_string()));
    assert!(molly.contains(&"crash(\"p1\", \"C\", 3)@1;".to_string()));
    let strict = crash_facts("strict");
    assert!(strict.contains(&"crash(\"C\", \"C\", 3)@2;".to_string()));
    assert!(!strict.contains(&"crash(\"C\", \"C\", 3)@3;".to_string()));
    assert!(strict.contains(&"crash(\"p1\", \"C\", 3)@5;".to_string()));
}

#[test]
fn json_output_has_one_object_per_fact_in_text_order() {
    let text = stdout(&two_pc(&["--show", "all"]));
    let facts = json_facts(&two_pc(&["--show", "all", "--format", "json"]));
    assert!(!facts.is_empty());
    let mut rendered = String::new();
    for fact in &facts {
        let object = fact.as_object().expect("one JSON object per fact");
        let keys: BTreeSet<&str> = object.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["relation", "tick", "values"]),
            "{fact}"
        );
        let tick = fact["tick"].as_u64().expect("tick is a number");
        assert!((1..=5).contains(&tick), "{fact}");
        rendered.push_str(&format!("{}@{tick};\n", atom(fact)));
    }
    assert_eq!(
        rendered, text,
        "JSON lists the text output's facts, in its order"
    );
}

/// Asserts exit status `code`, an empty stdout and a stderr containing every `needle`; returns
/// the transcript.
#[track_caller]
fn failing(args: &[String], code: i32, needles: &[&str]) -> String {
    let output = graft(args);
    let transcript = transcript(&output);
    assert_eq!(exit_code(&output), code, "{transcript}");
    assert!(output.stdout.is_empty(), "nothing on stdout: {transcript}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr mentions `{needle}`: {transcript}"
        );
    }
    assert!(!stderr.contains("panicked"), "{transcript}");
    transcript
}

fn two_pc_with_workload(workload: &str) -> Vec<String> {
    [
        "run",
        "examples/2pc/2pc.graft",
        "--facts",
        "examples/2pc/topology.facts",
        "--facts",
        workload,
        "--eot",
        "5",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect()
}

#[test]
fn bad_workloads_are_diagnosed_in_the_workload_file_before_anything_runs() {
    let cases = [
        ("unknown_relation", "tests/run/unknown_relation.facts:2:1"),
        ("wrong_arity", "tests/run/wrong_arity.facts:2:1"),
        ("wrong_type", "tests/run/wrong_type.facts:2:12"),
        ("tick_zero", "tests/run/tick_zero.facts:2:14"),
    ];
    snapshot_settings().bind(|| {
        for (case, location) in cases {
            let workload = format!("tests/run/{case}.facts");
            let transcript = failing(
                &two_pc_with_workload(&workload),
                1,
                &[location, "nothing was run"],
            );
            insta::assert_snapshot!(format!("error__{case}"), transcript);
        }
    });
}

#[test]
fn bad_options_exit_with_status_2() {
    let transcript = failing(&two_pc(&["--crash", "q9@2"]), 2, &["`q9`", "not a node"]);
    assert!(transcript.contains("nodes: C, p1, p2, p3"), "{transcript}");
    failing(&two_pc(&["--drop", "C,zz,1"]), 2, &["`zz`", "not a node"]);
    failing(&two_pc(&["--drop", "C,p1"]), 2, &["--drop", "FROM,TO,TICK"]);
    failing(&two_pc(&["--drop", "C,p1,x"]), 2, &["--drop", "`x`"]);
    failing(&two_pc(&["--crash", "C"]), 2, &["--crash", "NODE@TICK"]);
    failing(
        &two_pc(&["--delay", "C,zz,1,2"]),
        2,
        &["`zz`", "not a node"],
    );
    failing(
        &two_pc(&["--delay", "C,p1,1"]),
        2,
        &["--delay", "FROM,TO,TICK,BY"],
    );
    failing(
        &two_pc(&["--delay", "C,p1,1,0"]),
        2,
        &["--delay", "from 1", "`0`"],
    );
    failing(
        &two_pc(&["--delay", "C,C,1,2"]),
        2,
        &["--delay", "to itself"],
    );
    failing(
        &two_pc(&["--show", "decison"]),
        2,
        &["`decison`", "did you mean `decision`?"],
    );
}

#[test]
fn a_run_without_eot_stops_at_quiescence() {
    // Fault-free 2PC is done at tick 4; from tick 5 on the coordinator resends its decision and
    // nothing changes (tick 6 would start from tick 5's base), so the run stops by itself after
    // tick 5, with the same output as an explicit --eot 5.
    let mut args: Vec<String> = two_pc(&[]);
    args.truncate(args.len() - 2); // drop `--eot 5`
    let output = graft(&args);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    assert!(
        output.stderr.is_empty(),
        "no cap warning: {}",
        transcript(&output)
    );
    let quiescent = String::from_utf8(output.stdout).expect("UTF-8");
    assert!(
        quiescent.ends_with("outcome(\"p3\", 1, true)@5;\n"),
        "{quiescent}"
    );
    assert_eq!(quiescent, stdout(&two_pc(&[])));
}

#[test]
fn a_run_that_never_quiesces_is_cut_at_max_ticks_with_a_warning() {
    let output = graft(&["run", "tests/run/counter.ded", "--max-ticks", "20"]);
    let transcript = transcript(&output);
    assert_eq!(exit_code(&output), 0, "{transcript}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), 20, "{transcript}");
    assert!(stdout.ends_with("counter(\"n\", 19)@20;\n"), "{transcript}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("warning:"), "{transcript}");
    assert!(
        stderr.contains("--max-ticks 20 before quiescence"),
        "{transcript}"
    );
}

fn explain(fact: &str, format: &str) -> Vec<String> {
    let mut args = vec!["explain".to_string()];
    args.extend(TWO_PC.iter().map(|arg| arg.to_string()));
    args.extend(
        ["5", "--format", format, fact]
            .iter()
            .map(|arg| arg.to_string()),
    );
    args
}

#[test]
fn explain_prints_the_derivation_tree_of_a_2pc_outcome() {
    let fact = "outcome(\"p1\", 1, true)@4";
    snapshot_settings().bind(|| {
        let text = stdout(&explain(fact, "text"));
        assert!(text.starts_with("outcome(\"p1\", 1, true)@4\n"), "{text}");
        assert!(text.contains("message from \"C\" sent at tick 3"), "{text}");
        insta::assert_snapshot!("explain__2pc_outcome_text", text);
        let dot = stdout(&explain(fact, "dot"));
        assert!(dot.starts_with("digraph explain {"), "{dot}");
        insta::assert_snapshot!("explain__2pc_outcome_dot", dot);
    });
}

#[test]
fn explaining_a_fact_that_does_not_hold_lists_the_facts_that_do() {
    let transcript = failing(
        &explain("outcome(\"p1\", 1, false)@4", "text"),
        1,
        &["does not hold", "outcome(\"p1\", 1, true)@4;"],
    );
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("explain__fact_not_holding", transcript);
    });
}

#[test]
fn a_delayed_message_is_overtaken_on_both_engines() {
    let run = |engine: &str, extra: &[&str]| -> String {
        let mut args: Vec<String> = [
            "run",
            "tests/run/last_write.ded",
            "--eot",
            "5",
            "--engine",
            engine,
        ]
        .iter()
        .map(|arg| arg.to_string())
        .collect();
        args.extend(extra.iter().map(|arg| arg.to_string()));
        stdout(&args)
    };
    for engine in ["reference", "timely"] {
        let late = run(
            engine,
            &["--delay", "a,b,1,2", "--show", "write", "--show", "value"],
        );
        assert_eq!(
            late,
            "write(\"b\", 2)@3;\nvalue(\"b\", 2)@4;\nwrite(\"b\", 1)@4;\nvalue(\"b\", 1)@5;\n",
            "{engine}"
        );
        let plain = run(engine, &["--show", "value"]);
        assert_eq!(
            plain, "value(\"b\", 1)@3;\nvalue(\"b\", 2)@4;\nvalue(\"b\", 2)@5;\n",
            "{engine}"
        );
    }
}
