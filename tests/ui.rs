//! One test input per malformed program in `tests/ui/`: `graft check` must reject it with exit
//! status 1 (or, for `warn_*` programs, accept it with a warning), and a `.facts` file of the
//! same name is checked with it as a workload; its rendered diagnostics are snapshotted next to it
//! (`tests/ui/snapshots/`). A second test checks that every diagnostic code documented in
//! `docs/diagnostics.md` is produced by at least one of these programs.

mod common;

use std::collections::BTreeSet;

use common::{exit_code, files_with_extensions, graft, relative, root, transcript};

fn ui_programs() -> Vec<std::path::PathBuf> {
    files_with_extensions(&root().join("tests/ui"), &["graft", "ded"])
}

/// `graft check PROGRAM`, with `--facts` for a `.facts` file of the same name beside it.
fn check_args(program: &std::path::Path) -> Vec<String> {
    let mut args = vec!["check".to_string(), relative(program)];
    let facts = program.with_extension("facts");
    if facts.exists() {
        args.extend(["--facts".to_string(), relative(&facts)]);
    }
    args
}

#[test]
fn every_malformed_program_is_rejected_with_rendered_diagnostics() {
    let programs = ui_programs();
    assert!(programs.len() >= 40, "expected at least 40 ui programs");
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join("tests/ui/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| {
        for program in &programs {
            let path = relative(program);
            let output = graft(&check_args(program));
            // Programs named `warn_*` only draw warnings: they are accepted.
            let expected = if path.contains("/warn_") { 0 } else { 1 };
            assert_eq!(
                exit_code(&output),
                expected,
                "{path} should exit with status {expected}\n{}",
                transcript(&output)
            );
            assert!(
                !output.stderr.is_empty(),
                "{path} should draw at least one diagnostic"
            );
            let name = program
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .replace('.', "_");
            insta::assert_snapshot!(name, transcript(&output));
        }
    });
}

/// Codes look like `E0201` or `W0701`.
fn codes_in(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut codes = BTreeSet::new();
    for (index, &byte) in bytes.iter().enumerate() {
        if (byte == b'E' || byte == b'W')
            && bytes.len() >= index + 5
            && bytes[index + 1..index + 5].iter().all(u8::is_ascii_digit)
            && bytes
                .get(index + 5)
                .is_none_or(|next| !next.is_ascii_alphanumeric())
            && (index == 0 || !bytes[index - 1].is_ascii_alphanumeric())
        {
            codes.insert(text[index..index + 5].to_string());
        }
    }
    codes
}

#[test]
fn every_documented_diagnostic_code_is_exercised() {
    let documented = codes_in(
        &std::fs::read_to_string(root().join("docs/diagnostics.md"))
            .expect("docs/diagnostics.md exists"),
    );
    assert!(
        documented.len() >= 20,
        "docs/diagnostics.md lists the codes"
    );
    let mut produced = BTreeSet::new();
    for program in ui_programs() {
        let mut args = check_args(&program);
        args.extend(["--format".to_string(), "json".to_string()]);
        let output = graft(&args);
        produced.extend(codes_in(&String::from_utf8_lossy(&output.stdout)));
    }
    let missing: Vec<_> = documented.difference(&produced).collect();
    assert!(
        missing.is_empty(),
        "documented codes that no tests/ui program produces: {missing:?}"
    );
    let undocumented: Vec<_> = produced.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "codes produced but not documented in docs/diagnostics.md: {undocumented:?}"
    );
}
