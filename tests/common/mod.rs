//! Helpers shared by the end-to-end tests: running the `graft` binary from the workspace root
//! and rendering what it did as one snapshot-friendly text.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root, where the tests run `graft` so that paths in output are relative.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `graft ARGS...` in the workspace root, without colour.
#[track_caller]
pub fn graft<S: AsRef<OsStr>>(args: &[S]) -> Output {
    graft_in(&root(), args)
}

#[track_caller]
pub fn graft_in<S: AsRef<OsStr>>(directory: &Path, args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_graft"))
        .current_dir(directory)
        .arg("--color=never")
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .expect("the graft binary runs")
}

pub fn exit_code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

/// `exit: N`, then standard output and standard error, each under a heading.
pub fn transcript(output: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        exit_code(output),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Files directly in `directory` whose names end with one of `extensions`, sorted.
pub fn files_with_extensions(directory: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(directory)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", directory.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            path.extension()
                .and_then(|extension| extension.to_str())
                .is_some_and(|extension| extensions.contains(&extension))
        })
        .collect();
    files.sort();
    files
}

/// The path of `path` relative to the workspace root, with `/` separators.
pub fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}
