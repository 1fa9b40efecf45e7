//! `parse` never panics and always returns a tree whose error items come with diagnostics,
//! on arbitrary text and on random sequences of token-like fragments.

use graft_language::ast::Item;
use graft_language::parse;
use graft_language::span::FileId;
use proptest::prelude::*;

const FRAGMENTS: &[&str] = &[
    "include",
    "notin",
    "role",
    "input",
    "output",
    "table",
    "scratch",
    "channel",
    "key",
    "const",
    "never",
    "require",
    "delete",
    "true",
    "false",
    "next",
    "async",
    "count",
    "max",
    "p",
    "q",
    "votes",
    "X",
    "Y",
    "_",
    "_A",
    "Cnt",
    "(",
    ")",
    ",",
    ";",
    ":",
    ":-",
    ":=",
    "<-",
    "=",
    "==",
    "!=",
    "<",
    ">",
    "<=",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "@",
    "\"s\"",
    "\"",
    "\"open",
    "0",
    "1",
    "-3",
    "99999999999999999999",
    "// c\n",
    "/* b */",
    "/*",
    "*/",
    "\n",
    " ",
    "#",
    "é",
    "\\",
];

fn check(text: &str) {
    let parsed = parse(FileId(3), text);
    let errors = parsed
        .file
        .items
        .iter()
        .filter(|item| matches!(item, Item::Error(_)))
        .count();
    // Every error item has a diagnostic (its own, or the lexer's that explains it).
    assert!(errors == 0 || !parsed.diagnostics.is_empty());
    for item in &parsed.file.items {
        let span = item.span();
        assert!(span.start <= span.end && span.end as usize <= text.len());
        assert!(text.get(span.range()).is_some(), "span off a char boundary");
    }
    for diagnostic in &parsed.diagnostics {
        assert!(diagnostic.primary.span.end as usize <= text.len());
        assert!(!diagnostic.message.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings(text in any::<String>()) {
        check(&text);
    }

    #[test]
    fn token_like_fragments(
        fragments in proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..40),
        separators in proptest::collection::vec(proptest::bool::ANY, 40),
    ) {
        let mut text = String::new();
        for (fragment, spaced) in fragments.iter().zip(&separators) {
            text.push_str(fragment);
            if *spaced {
                text.push(' ');
            }
        }
        check(&text);
    }
}
