//! Property tests: the parser and the checker never panic, whatever the input. Inputs are random
//! strings, random sequences of language fragments (which reach deep into the grammar and the
//! checks), and random mutations of real example programs.

use graft_language::span::SourceMap;
use proptest::prelude::*;

fn parse_and_check(text: &str) {
    let mut sources = SourceMap::new();
    let file = sources.add("input.graft", text);
    let parsed = graft_language::parse(file, text);
    let checked = graft_compiler::check(&sources, std::slice::from_ref(&parsed.file));
    // A clean program must also survive the summary and the graph renderers.
    if parsed.diagnostics.is_empty() && checked.diagnostics.iter().all(|d| !d.is_error()) {
        let summary = graft_compiler::summary(&checked);
        let _ = graft_compiler::render_summary_text(&summary);
        let _ = graft_compiler::graph_dot(&checked);
        let _ = graft_compiler::graph_mermaid(&checked);
    }
    for diagnostic in parsed.diagnostics.iter().chain(&checked.diagnostics) {
        let span = diagnostic.primary.span;
        assert!(span.start <= span.end, "span ends before it starts");
        assert!(
            span.end as usize <= text.len(),
            "span beyond the end of the input"
        );
    }
}

const FRAGMENTS: &[&str] = &[
    "p",
    "q",
    "log",
    "node",
    "bcast",
    "crash",
    "pre",
    "post",
    "count",
    "max",
    "sum",
    "min",
    "X",
    "Y",
    "N",
    "Q1",
    "_",
    "_Z",
    "(",
    ")",
    ",",
    ";",
    ":-",
    "@next",
    "@async",
    "@1",
    "@0",
    "@",
    "notin",
    "include",
    "\"a\"",
    "\"b.ded\"",
    "1",
    "-2",
    "0",
    "99999999999999999999",
    "true",
    "false",
    "+",
    "-",
    "*",
    "/",
    "==",
    "!=",
    "<",
    ">",
    "<=",
    ">=",
    "<",
    ">",
    "role",
    "input",
    "output",
    "table",
    "scratch",
    "channel",
    "const",
    "never",
    "require",
    "delete",
    "key",
    ":",
    "int",
    "string",
    "bool",
    "=",
    "// c\n",
    "/* c */",
    "/*",
    "\"",
    "\n",
    "&",
    "#",
];

fn fragment_program() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..60)
        .prop_map(|fragments| fragments.join(" "))
}

/// Statement-shaped programs, which pass the parser and exercise the checks.
fn statement_program() -> impl Strategy<Value = String> {
    let relation = prop::sample::select(&["p", "q", "r", "s", "crash", "pre", "post"][..]);
    let term = prop::sample::select(&["X", "Y", "N", "_", "1", "\"a\"", "true", "X + 1", "Q"][..]);
    let atom = (
        relation.clone(),
        prop::collection::vec(term.clone(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(name, args, negated)| {
            format!(
                "{}{name}({})",
                if negated { "notin " } else { "" },
                args.join(", ")
            )
        });
    let suffix = prop::sample::select(&["", "@next", "@async", "@1", "@3"][..]);
    let head_arg =
        prop::sample::select(&["X", "Y", "N", "count<X>", "max<Y>", "\"a\"", "X * 2"][..]);
    let rule = (
        relation,
        prop::collection::vec(head_arg, 0..4),
        suffix,
        prop::collection::vec(atom, 0..4),
    )
        .prop_map(|(head, args, suffix, body)| {
            if body.is_empty() {
                format!("{head}({}){suffix};", args.join(", "))
            } else {
                format!(
                    "{head}({}){suffix} :- {};",
                    args.join(", "),
                    body.join(", ")
                )
            }
        });
    let declaration = prop::sample::select(
        &[
            "role n;",
            "table p(at: n, x: int);",
            "input q(at: node, y: string) key(y);",
            "channel r(at: n, x: int, b: bool);",
            "output s(at: node);",
            "const Q = 2;",
            "require Q + Q > 3;",
            "never p(X, Y), q(X, Y);",
            "delete p(N, X)@next :- q(N, X);",
        ][..],
    )
    .prop_map(str::to_string);
    prop::collection::vec(prop_oneof![3 => rule, 1 => declaration], 0..12)
        .prop_map(|statements| statements.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_strings_never_panic(text in "\\PC{0,200}") {
        parse_and_check(&text);
    }

    #[test]
    fn random_fragment_sequences_never_panic(text in fragment_program()) {
        parse_and_check(&text);
    }

    #[test]
    fn random_statements_never_panic(text in statement_program()) {
        parse_and_check(&text);
    }
}

/// The text of every example program, read once.
fn example_texts() -> Vec<String> {
    let mut texts = Vec::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut stack = vec![root];
    while let Some(directory) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&directory) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .is_some_and(|extension| extension == "graft" || extension == "ded")
            {
                texts.extend(std::fs::read_to_string(&path));
            }
        }
    }
    texts.sort();
    texts
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// Cut a piece out of a real program and splice a fragment in its place.
    #[test]
    fn mutated_examples_never_panic(
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        cut in 0usize..40,
        fragment in prop::sample::select(FRAGMENTS),
    ) {
        let texts = example_texts();
        prop_assume!(!texts.is_empty());
        let text = which.get(&texts);
        let mut start = at.index(text.len() + 1);
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = (start + cut).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mutated = format!("{}{fragment}{}", &text[..start], &text[end..]);
        parse_and_check(&mutated);
    }
}
