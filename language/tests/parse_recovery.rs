//! Error recovery: a bad statement becomes `Item::Error` with one diagnostic, and the good
//! statements around it are kept.

use graft_language::ast::Item;
use graft_language::parse;
use graft_language::span::FileId;

fn codes(text: &str) -> Vec<&'static str> {
    parse(FileId(0), text)
        .diagnostics
        .iter()
        .map(|diagnostic| diagnostic.code)
        .collect()
}

#[test]
fn three_broken_statements_among_good_ones() {
    let text = "\
role node;
good(X) :- q(X);
bad(X :- q(X);
also_good(X)@next :- also_good(X);
table t(a int);
fine(1)@1;
worse(X) :- q(X), , r(X);
last(X) :- q(X);
";
    let parsed = parse(FileId(0), text);
    assert_eq!(parsed.diagnostics.len(), 3, "{:#?}", parsed.diagnostics);
    assert!(parsed.diagnostics.iter().all(|d| d.code == "E0001"));
    let kinds: Vec<&str> = parsed
        .file
        .items
        .iter()
        .map(|item| match item {
            Item::Error(_) => "error",
            Item::Rule(_) => "rule",
            Item::Role(_) => "role",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "role", "rule", "error", "rule", "error", "rule", "error", "rule"
        ]
    );
    // Each error item spans its whole statement, `;` included.
    let error_texts: Vec<&str> = parsed
        .file
        .items
        .iter()
        .filter(|item| matches!(item, Item::Error(_)))
        .map(|item| &text[item.span().range()])
        .collect();
    assert_eq!(
        error_texts,
        [
            "bad(X :- q(X);",
            "table t(a int);",
            "worse(X) :- q(X), , r(X);"
        ]
    );
    // Each diagnostic points inside its statement and says what was expected.
    for (diagnostic, item) in parsed.diagnostics.iter().zip(
        parsed
            .file
            .items
            .iter()
            .filter(|item| matches!(item, Item::Error(_))),
    ) {
        assert!(item.span().start <= diagnostic.primary.span.start);
        assert!(diagnostic.primary.span.end <= item.span().end);
        assert!(
            diagnostic.message.starts_with("expected "),
            "{}",
            diagnostic.message
        );
    }
    assert_eq!(
        parsed.diagnostics[0].message,
        "expected `)`, `,` or an arithmetic operator, found `:-`"
    );
    assert_eq!(
        parsed.diagnostics[1].message,
        "expected `:`, found the name `int`"
    );
}

#[test]
fn missing_semicolon_before_next_line_has_a_hint() {
    let text = "p(X) :- q(X)\nr(X) :- s(X);\nt(1);";
    let parsed = parse(FileId(0), text);
    assert_eq!(parsed.diagnostics.len(), 1);
    let diagnostic = &parsed.diagnostics[0];
    assert_eq!(diagnostic.code, "E0001");
    assert_eq!(
        diagnostic.help.as_deref(),
        Some("add `;` at the end of the rule")
    );
    let suggestion = diagnostic
        .suggestion
        .as_ref()
        .map(|s| (s.span.start, s.replacement.as_str()));
    assert_eq!(suggestion, Some((12, ";")));
    // Recovery resumes after the next `;`, so the last fact survives.
    assert!(
        matches!(parsed.file.items.last(), Some(Item::Rule(rule)) if rule.head.relation.name == "t")
    );
}

#[test]
fn missing_final_semicolon_is_end_of_file() {
    let text = "p(X) :- q(X);\nr(X) :- s(X)";
    let parsed = parse(FileId(0), text);
    assert_eq!(parsed.file.items.len(), 2);
    assert!(matches!(parsed.file.items[0], Item::Rule(_)));
    assert!(
        matches!(parsed.file.items[1], Item::Error(span) if &text[span.range()] == "r(X) :- s(X)")
    );
    assert_eq!(parsed.diagnostics.len(), 1);
    let diagnostic = &parsed.diagnostics[0];
    assert_eq!(diagnostic.code, "E0002");
    assert!(diagnostic.message.contains("`;`"), "{}", diagnostic.message);
    assert_eq!(
        diagnostic.help.as_deref(),
        Some("add `;` at the end of the rule")
    );
}

#[test]
fn wrong_rule_arrows_are_explained() {
    for (text, arrow_at) in [("p(X) := q(X);", 5), ("p(X) <- q(X);", 5)] {
        let parsed = parse(FileId(0), text);
        assert_eq!(parsed.diagnostics.len(), 1, "{text}");
        let diagnostic = &parsed.diagnostics[0];
        assert!(
            diagnostic
                .help
                .as_deref()
                .is_some_and(|help| help.contains("`:-`"))
        );
        let suggestion = diagnostic
            .suggestion
            .as_ref()
            .map(|s| (s.span.range(), s.replacement.as_str()));
        assert_eq!(suggestion, Some((arrow_at..arrow_at + 2, ":-")), "{text}");
    }
}

#[test]
fn lower_case_aggregate_variable_keeps_the_rule() {
    let parsed = parse(FileId(0), "c(A, count<x>) :- q(A, x);");
    assert_eq!(parsed.diagnostics.len(), 1);
    assert_eq!(parsed.diagnostics[0].code, "E0007");
    assert!(
        parsed.diagnostics[0]
            .help
            .as_deref()
            .is_some_and(|help| help.contains("`X`"))
    );
    assert!(matches!(parsed.file.items[0], Item::Rule(_)));
}

#[test]
fn lexer_errors_are_reported_once_per_statement() {
    let parsed = parse(FileId(0), "p(\"abc) :- q(X);\nr(X) :- s(X);\n");
    assert_eq!(parsed.diagnostics.len(), 1);
    assert_eq!(parsed.diagnostics[0].code, "E0003");
    assert!(parsed.diagnostics[0].help.is_some());

    assert_eq!(codes("p(X) :- q(X); /* never closed"), ["E0004"]);
    assert_eq!(codes("p(X) :- q(X) /* never closed"), ["E0004"]);
    assert_eq!(codes("p(X) :- q(X), X ? 2;"), ["E0005"]);
    let parsed = parse(FileId(0), "p(X) :- q(X) # stray;\nok(1);");
    assert_eq!(parsed.diagnostics.len(), 1);
    assert!(matches!(parsed.file.items.last(), Some(Item::Rule(_))));
}

#[test]
fn integer_range() {
    assert_eq!(
        codes("p(9223372036854775807, -9223372036854775808);"),
        Vec::<&str>::new()
    );
    assert_eq!(codes("p(9223372036854775808);"), ["E0006"]);
    assert_eq!(codes("p(-9223372036854775809);"), ["E0006"]);
    assert_eq!(codes("p(123456789012345678901234567890);"), ["E0006"]);
}

#[test]
fn other_hints() {
    let help = |text: &str| {
        parse(FileId(0), text)
            .diagnostics
            .first()
            .and_then(|diagnostic| diagnostic.help.clone())
            .unwrap_or_default()
    };
    assert!(help("Votes(X) :- q(X);").contains("lower-case"));
    assert!(help("p(X) :- not q(X);").contains("notin"));
    assert!(help("p(X) :- q(X), X = 1;").contains("=="));
    assert!(help("p(X) :- q(X) r(X);").contains("`,`"));
}

#[test]
fn empty_statement_and_garbage_only() {
    let parsed = parse(FileId(0), ";;");
    assert_eq!(parsed.file.items.len(), 2);
    assert_eq!(parsed.diagnostics.len(), 2);
    assert_eq!(
        parsed.diagnostics[0].message,
        "expected a statement, found `;`"
    );
    let parsed = parse(FileId(0), ") ) )");
    assert_eq!(parsed.file.items.len(), 1);
    assert_eq!(parsed.diagnostics.len(), 1);
}
