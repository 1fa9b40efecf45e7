//! The include loader: resolution relative to the including file and to the first root, each
//! file loaded once, cycles and missing files reported.

use std::collections::BTreeMap;

use graft_language::ast::Item;
use graft_language::span::FileId;
use graft_language::{LoadedProgram, load_program};

/// Loads `roots` from an in-memory file system, recording every path `read` was asked for.
fn load(files: &[(&str, &str)], roots: &[&str]) -> (LoadedProgram, Vec<String>) {
    let files: BTreeMap<String, String> = files
        .iter()
        .map(|(path, text)| (path.to_string(), text.to_string()))
        .collect();
    let mut asked = Vec::new();
    let mut read = |path: &str| {
        asked.push(path.to_string());
        files
            .get(path)
            .cloned()
            .ok_or_else(|| "no such file".to_string())
    };
    let roots: Vec<String> = roots.iter().map(|root| root.to_string()).collect();
    let program = load_program(&roots, &mut read);
    (program, asked)
}

fn names(program: &LoadedProgram) -> Vec<&str> {
    program
        .files
        .iter()
        .map(|file| program.sources.name(file.file))
        .collect()
}

#[test]
fn includes_resolve_relative_to_the_including_file_first() {
    let (program, _) = load(
        &[
            ("proto/main.ded", "include \"lib/util.ded\";\nmain(1)@1;"),
            ("proto/lib/util.ded", "include \"helper.ded\";\nutil(1)@1;"),
            ("proto/lib/helper.ded", "helper(1)@1;"),
            ("proto/helper.ded", "wrong(1)@1;"),
        ],
        &["proto/main.ded"],
    );
    assert!(program.diagnostics.is_empty(), "{:#?}", program.diagnostics);
    assert_eq!(
        names(&program),
        [
            "proto/main.ded",
            "proto/lib/util.ded",
            "proto/lib/helper.ded"
        ]
    );
    for (index, file) in program.files.iter().enumerate() {
        assert_eq!(file.file, FileId(index as u32));
    }
}

#[test]
fn includes_fall_back_to_the_first_root_directory() {
    let (program, asked) = load(
        &[
            ("proto/main.ded", "include \"lib/util.ded\";"),
            ("proto/lib/util.ded", "include \"common.ded\";"),
            ("proto/common.ded", "common(1)@1;"),
        ],
        &["proto/main.ded"],
    );
    assert!(program.diagnostics.is_empty(), "{:#?}", program.diagnostics);
    assert_eq!(
        names(&program),
        ["proto/main.ded", "proto/lib/util.ded", "proto/common.ded"]
    );
    assert!(asked.contains(&"proto/lib/common.ded".to_string()));
}

#[test]
fn diamond_includes_load_each_file_once() {
    let (program, asked) = load(
        &[
            ("a.ded", "include \"b.ded\"; include \"c.ded\";"),
            ("b.ded", "include \"./d.ded\";"),
            ("c.ded", "include \"sub/../d.ded\";"),
            ("d.ded", "d(1)@1;"),
            ("second.ded", "include \"d.ded\";"),
        ],
        &["a.ded", "second.ded"],
    );
    assert!(program.diagnostics.is_empty(), "{:#?}", program.diagnostics);
    assert_eq!(
        names(&program),
        ["a.ded", "b.ded", "d.ded", "c.ded", "second.ded"]
    );
    assert_eq!(asked.iter().filter(|path| *path == "d.ded").count(), 1);
}

#[test]
fn include_cycles_are_reported_at_the_closing_include() {
    let text_c = "c(1)@1;\ninclude \"a.ded\";";
    let (program, _) = load(
        &[
            ("a.ded", "include \"b.ded\";"),
            ("b.ded", "include \"c.ded\";"),
            ("c.ded", text_c),
        ],
        &["a.ded"],
    );
    assert_eq!(program.files.len(), 3);
    assert_eq!(program.diagnostics.len(), 1);
    let diagnostic = &program.diagnostics[0];
    assert_eq!(diagnostic.code, "E0101");
    assert_eq!(
        diagnostic.message,
        "include cycle: `a.ded` includes `b.ded` includes `c.ded` includes `a.ded`"
    );
    assert_eq!(diagnostic.primary.span.file, FileId(2));
    assert_eq!(
        program.sources.snippet(diagnostic.primary.span),
        "include \"a.ded\";"
    );

    let (program, _) = load(&[("self.ded", "include \"self.ded\";")], &["self.ded"]);
    assert_eq!(program.diagnostics.len(), 1);
    assert_eq!(program.diagnostics[0].code, "E0101");
    assert!(program.diagnostics[0].message.contains("includes itself"));
}

#[test]
fn missing_include_lists_the_candidates() {
    let (program, _) = load(
        &[("proto/sub/main.ded", "include \"gone.ded\";\nok(1)@1;")],
        &["proto/sub/main.ded", "other.ded"],
    );
    let codes: Vec<&str> = program.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["E0102", "E0103"]);
    let missing = &program.diagnostics[0];
    assert_eq!(
        program.sources.snippet(missing.primary.span),
        "\"gone.ded\""
    );
    assert_eq!(missing.notes, ["tried `proto/sub/gone.ded`: no such file"]);
    // The file with the bad include is still loaded and parsed.
    assert_eq!(program.files.len(), 1);
    assert!(matches!(program.files[0].items[1], Item::Rule(_)));

    let (program, _) = load(
        &[
            ("a/main.ded", "x(1)@1;"),
            ("b/main.ded", "include \"gone.ded\";"),
        ],
        &["a/main.ded", "b/main.ded"],
    );
    assert_eq!(
        program.diagnostics[0].notes,
        [
            "tried `b/gone.ded`: no such file",
            "tried `a/gone.ded`: no such file"
        ]
    );
}

#[test]
fn syntax_errors_of_every_file_are_collected() {
    let (program, _) = load(
        &[
            ("main.ded", "include \"lib.ded\";\nbad(;"),
            ("lib.ded", "worse(X :- y;"),
        ],
        &["main.ded"],
    );
    let files: Vec<FileId> = program
        .diagnostics
        .iter()
        .map(|diagnostic| diagnostic.primary.span.file)
        .collect();
    assert_eq!(files, [FileId(0), FileId(1)]);
}
