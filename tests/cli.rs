//! End-to-end tests of the `graft` command-line tool: `check` on every example (snapshotted),
//! `fmt` (check mode, rewriting, refusal on syntax errors, idempotence), `graph`, usage and I/O
//! errors, and help.

mod common;

use std::path::{Path, PathBuf};

use common::{exit_code, files_with_extensions, graft, graft_in, relative, root, transcript};

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

/// The programs of an example: all its `.graft` files together, and each `.ded` file alone.
fn example_programs(directory: &Path) -> Vec<Vec<String>> {
    let mut programs = Vec::new();
    let graft_files: Vec<String> = files_with_extensions(directory, &["graft"])
        .iter()
        .map(|path| relative(path))
        .collect();
    if !graft_files.is_empty() {
        programs.push(graft_files);
    }
    for ded in files_with_extensions(directory, &["ded"]) {
        programs.push(vec![relative(&ded)]);
    }
    programs
}

fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_omit_expression(true);
    settings
}

#[test]
fn check_accepts_every_example_and_summarises_it() {
    let directories = example_directories();
    assert!(directories.len() >= 9, "the nine example protocols exist");
    snapshot_settings().bind(|| {
        for directory in &directories {
            for files in example_programs(directory) {
                let mut args = vec!["check"];
                args.extend(files.iter().map(String::as_str));
                let output = graft(&args);
                assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
                let name = format!("check__{}", files[0].replace(['/', '.'], "_"));
                insta::assert_snapshot!(name, transcript(&output));
            }
        }
    });
}

#[test]
fn every_example_file_is_formatted_canonically() {
    let mut files = Vec::new();
    for directory in example_directories() {
        for file in files_with_extensions(&directory, &["graft", "ded", "facts"]) {
            files.push(relative(&file));
        }
    }
    let mut args = vec!["fmt", "--check"];
    args.extend(files.iter().map(String::as_str));
    let output = graft(&args);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
}

#[test]
fn check_json_reports_diagnostics_with_locations() {
    let output = graft(&["check", "--format", "json", "tests/ui/unknown_relation.ded"]);
    assert_eq!(exit_code(&output), 1);
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("check --format json prints JSON");
    let diagnostics = report["diagnostics"].as_array().expect("diagnostics array");
    let unknown = diagnostics
        .iter()
        .find(|d| d["message"].as_str().is_some_and(|m| m.contains("lgo")))
        .expect("a diagnostic names the unknown relation `lgo`");
    assert_eq!(unknown["file"], "tests/ui/unknown_relation.ded");
    assert_eq!(unknown["line"], 5);
    assert_eq!(unknown["severity"], "error");
    assert!(report["summary"].is_null());
    assert_eq!(
        report["errors"],
        diagnostics
            .iter()
            .filter(|d| d["severity"] == "error")
            .count()
    );
}

#[test]
fn check_json_summarises_a_clean_program() {
    let output = graft(&["check", "--format", "json", "examples/2pc/2pc.ded"]);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["errors"], 0);
    assert!(report["summary"].is_object());
}

#[test]
fn a_missing_file_is_a_one_line_error_with_exit_status_2() {
    let output = graft(&["check", "examples/no-such-protocol.graft"]);
    assert_eq!(exit_code(&output), 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot read `examples/no-such-protocol.graft`"));
    assert!(!stderr.contains("panicked"));
}

#[test]
fn usage_errors_exit_with_status_2() {
    assert_eq!(exit_code(&graft(&["check"])), 2);
    assert_eq!(exit_code(&graft(&["frobnicate"])), 2);
    assert_eq!(
        exit_code(&graft(&["graph", "--format", "png", "x.graft"])),
        2
    );
}

#[test]
fn help_describes_every_command() {
    let output = graft(&["--help"]);
    assert_eq!(exit_code(&output), 0);
    let help = String::from_utf8_lossy(&output.stdout);
    for command in ["check", "fmt", "graph"] {
        assert!(help.contains(command), "--help mentions {command}");
        let output = graft(&["help", command]);
        assert_eq!(exit_code(&output), 0);
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("Usage: graft"), "{text}");
    }
    let fmt_help = String::from_utf8_lossy(&graft(&["help", "fmt"]).stdout).to_string();
    assert!(fmt_help.contains("--check"));
}

/// A scratch directory of this test's own, emptied first.
fn scratch(name: &str) -> PathBuf {
    let directory = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).expect("create scratch directory");
    directory
}

const MESSY: &str = "// a relay\nlog(N,P)@next:-log(N,P);   // keep it\n\n\n\nbcast( N2 , P )@async :- bcast(N1,P),node(N1,N2) ;\n";

#[test]
fn fmt_check_names_differing_files_and_fmt_rewrites_them() {
    let directory = scratch("fmt-rewrite");
    std::fs::write(directory.join("messy.ded"), MESSY).expect("write");
    let output = graft_in(&directory, &["fmt", "--check", "messy.ded"]);
    assert_eq!(exit_code(&output), 1);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "would reformat: messy.ded\n"
    );
    assert_eq!(
        std::fs::read_to_string(directory.join("messy.ded")).expect("read"),
        MESSY,
        "--check writes nothing"
    );

    let output = graft_in(&directory, &["fmt", "messy.ded"]);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    let formatted = std::fs::read_to_string(directory.join("messy.ded")).expect("read");
    insta::assert_snapshot!(formatted, @r"
    // a relay
    log(N, P)@next :- log(N, P); // keep it

    bcast(N2, P)@async :- bcast(N1, P), node(N1, N2);
    ");
    let output = graft_in(&directory, &["fmt", "--check", "messy.ded"]);
    assert_eq!(exit_code(&output), 0, "formatting is idempotent");
    let leftovers: Vec<_> = std::fs::read_dir(&directory)
        .expect("list")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");
}

#[test]
fn fmt_leaves_a_file_with_syntax_errors_untouched() {
    let directory = scratch("fmt-broken");
    let broken = "p(\"a\")@1;\nq(X :- p(X);\n";
    std::fs::write(directory.join("broken.ded"), broken).expect("write");
    let output = graft_in(&directory, &["fmt", "broken.ded"]);
    assert_eq!(exit_code(&output), 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.ded:2"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(directory.join("broken.ded")).expect("read"),
        broken
    );
}

#[test]
fn graph_draws_dot_and_mermaid() {
    snapshot_settings().bind(|| {
        for format in ["dot", "mermaid"] {
            let output = graft(&["graph", "--format", format, "examples/2pc/2pc.ded"]);
            assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
            insta::assert_snapshot!(
                format!("graph__2pc_{format}"),
                String::from_utf8_lossy(&output.stdout)
            );
        }
    });
}

#[test]
fn graph_refuses_a_program_with_errors() {
    let output = graft(&["graph", "tests/ui/stratification_negation_cycle.ded"]);
    assert_eq!(exit_code(&output), 1);
    assert!(output.stdout.is_empty());
}
