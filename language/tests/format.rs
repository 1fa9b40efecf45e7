//! Tests of the pretty-printer behind `graft fmt`: snapshots of messy inputs, exact layouts,
//! and properties (idempotence, round trip, no comment lost) over generated programs.

use graft_language::ast::{
    Aggregate, ArithOp, BodyAtom, BodyItem, ColumnDecl, CompareOp, Comparison, ConstDecl, Expr,
    Head, HeadArg, HeadTime, Ident, Include, Item, KeyDecl, Never, Persistence, RelationDecl,
    Require, RoleDecl, Rule, SourceFile,
};
use graft_language::format::format_source;
use graft_language::parse;
use graft_language::span::{FileId, Span};
use proptest::prelude::*;

/// The comment texts of a parsed file as `graft fmt` compares them: trimmed, sorted.
fn comment_texts(file: &SourceFile) -> Vec<String> {
    let mut texts: Vec<String> = file
        .comments
        .iter()
        .map(|comment| comment.text.trim().to_string())
        .collect();
    texts.sort();
    texts
}

/// Formats `text`, which must parse without errors, and checks the printer's guarantees on it:
/// the output parses to the same tree, keeps every comment, and is a fixed point.
#[track_caller]
fn check_format(text: &str) -> String {
    let parsed = parse(FileId(0), text);
    assert!(
        parsed.diagnostics.is_empty(),
        "input does not parse: {:#?}",
        parsed.diagnostics
    );
    let formatted = format_source(&parsed.file, text);
    let reparsed = parse(FileId(0), &formatted);
    assert!(
        reparsed.diagnostics.is_empty(),
        "formatted text does not parse: {:#?}\n{formatted}",
        reparsed.diagnostics
    );
    assert_eq!(
        reparsed.file.without_spans(),
        parsed.file.without_spans(),
        "formatting changed the program:\n{formatted}"
    );
    assert_eq!(
        comment_texts(&reparsed.file),
        comment_texts(&parsed.file),
        "formatting changed the comments:\n{formatted}"
    );
    let again = format_source(&reparsed.file, &formatted);
    assert_eq!(again, formatted, "formatting is not idempotent");
    formatted
}

// ---------------------------------------------------------------------------------------------
// Snapshots of messy inputs

#[test]
fn snapshot_messy_spacing() {
    let text = "  p(X,Y):-q(X) ,r( Y ),X!=Y;\n\
        sum_of( A,S+C ) :-  s(A ,S),c(A,C) ;\n\
        half(N,Cnt1/2):-cnt( N,Cnt1 ),Cnt1>=-3 ;\n\
        quoted(\"a \\\"b\\\" \\\\ c\", x_sym, true, false, _, _Tmp)@7;\n\
        cnt(C,count< A >) :- member( C,A);\n\
        m(X)@next:-m(X),notin gone( X )@1;\n\
        send(B,X)  @async :- m(X),peer( B);\n\
        delete  m(X)@next :- m(X) , gone(X);\n";
    insta::assert_snapshot!(check_format(text));
}

#[test]
fn snapshot_long_rules() {
    let text = "commit_decision(Coordinator, Transaction, Participant)@async :- votes_complete(Coordinator, Transaction, Count), participants(Coordinator, Participant), participant_count(Coordinator, Count), notin aborted(Coordinator, Transaction);\n\
        short(X) :-\n    a(X),\n      b(X)\n  ;\n\
        exactly_one_hundred_columns_wide_rule_head_name_xxxxxxx(X) :- first_body_atom(X), second_atom(X, Y);\n\
        one_hundred_and_one_columns_wide_rule_head_name_xxxxxxxx(X) :- first_body_atom(X), second_atom(X, Y);\n\
        never decision(Coordinator, Transaction, true), decision(Other, Transaction, false), Coordinator != Other;\n";
    insta::assert_snapshot!(check_format(text));
}

#[test]
fn snapshot_declarations() {
    let text = "include   \"lib/common.graft\" ;\n\
        role coordinator ;role participant;\n\
        input begin( at : coordinator , tx : int ) ;\n\
        table votes(at: coordinator, tx: int, voter: participant, yes: bool)key( tx,voter );\n\
        channel   prepare(at: participant, tx: int, coord: coordinator);\n\
        output table decision(at: coordinator, tx: int, commit: bool) key(tx);\n\
        scratch s(at: node);\n\
        output o();\n\
        table wide(at: coordinator, transaction: int, participant: participant, vote: bool, reason: string, n: int) key(transaction, participant);\n\
        const QUORUM=2;const NAME = \"x\\\\y\"; const NEG = -3 ;const FLAG=true;\n\
        never   decision( A,T,true ),decision(B,T,false);\n\
        require Q1+Q2>N;\n";
    insta::assert_snapshot!(check_format(text));
}

#[test]
fn snapshot_comments_between_items() {
    let text = "\n\n// leading comment   \n\n\n\
        /// doc comment\n\
        a(X) :- b(X); // trailing note   \n\
        c(X) :- d(X), notin crash(_, X, _);//, notin crash(_, A, _);\n\
        /* block\n   comment */\n\n\n\n\
        e(1)@1; /* after a fact */ f(2)@1;\n\
        g(3)@1; /* two */ /* trailing */ // comments\n\
        /* before on the same line */ h(4)@1;\n\n\
        // end of file comment\n\n\n";
    insta::assert_snapshot!(check_format(text));
}

#[test]
fn snapshot_comments_inside_rules() {
    let text = "ack(B, X)@async :- // why we ack\n\
        \x20   msg(X, B), // the message\n\
        \x20   // only live nodes\n\
        \x20   notin crash(_, B, _), /* block */\n\
        \x20   node(B)\n\
        \x20   // after the last item\n\
        ;\n\
        short(X) :- a(X) /* between */, b(X);\n\
        inside(X /* in the head */, Y) :- a(X, /* in an atom */ Y);\n\
        tail(X) :- a(X) /* glued to the end */;\n\
        never /* why */ bad(X), worse(X);\n";
    insta::assert_snapshot!(check_format(text));
}

#[test]
fn snapshot_comments_inside_declarations() {
    let text = "table votes(\n\
        \x20   at: coordinator, // who counts\n\
        \x20   tx: int,\n\
        \x20   /* the voter */ voter: participant\n\
        ) key(tx /* unique per vote */, voter);\n\
        const /* hoisted */ N = 3;\n\
        fact(1, /* also hoisted */ 2)@1;\n\
        role // a role\n\
        \x20   leader;\n\
        require /* quorums intersect */ Q1 + Q2 > N;\n";
    insta::assert_snapshot!(check_format(text));
}

#[test]
fn snapshot_molly_two_phase_commit() {
    let text = r#"// Two-phase commit, in the style of Molly's examples.
include "2pc_assert.ded";

// A coordinator asks every agent to prepare.
prepare(A,C,X)@async:-begin(C,X),agents(C,A);
vote(M,A,X)@async :- prepare(A,M,X), can(A,X), notin crash(_,A,_);
vote_cnt(M,X,count<A>) :- vote(M,A,X);
agent_cnt(C,count<A>):-agents(C,A);
commit(A,C,X)@async :- agent_cnt(C,Cnt), vote_cnt(C,X,Cnt), agents(C,A);
abort(A,C,X)@async :- vote_timeout(C,X), agents(C,A);

// Persistence.
agents(C,A)@next :- agents(C,A);
can(A,X)@next:-can(A,X);
committed(A,X)@next :- committed(A,X);
committed(A,X) :- commit(A,_,X);

pre(X) :- committed(A,X), notin crash(_,A,_);
post(X) :- committed(_, X);

agents("C","a")@1;
agents("C","b")@1;
begin("C","hello")@1;
can("a","hello")@1;
can("b","hello")@1;
"#;
    insta::assert_snapshot!(check_format(text));
}

#[test]
fn snapshot_molly_simple_delivery() {
    let text = r#"node(Node, Neighbor)@next :- node(Node, Neighbor);
log(Node, Pload)@next :- log(Node, Pload);
log(Node, Pload) :- bcast(Node, Pload)@1;
log(Node, Pload) :- rbcast(Node, _, Pload);
rbcast(Node2, Node1, Pload)@async :- bcast(Node1, Pload), node(Node1, Node2);
rbcast(A, Sender, Pl)@async :-
  log(Sender, Pl),
  node(Sender, A), notin log(A, Pl), notin crash(_, Sender, _), notin crash(_, A, _), clock(Sender, A, _);
missing_log(A, Pl) :- log(X, Pl), node(X, A), notin log(A, Pl);
pre(X, Pl) :- log(X, Pl), notin bcast(X, Pl)@1, notin crash(_, X, _);
post(X, Pl) :- log(X, Pl), notin missing_log(_, Pl);
node("a", "b")@1; node("a", "c")@1;
bcast("a", "nonce1")@1;
"#;
    insta::assert_snapshot!(check_format(text));
}

#[test]
fn snapshot_parentheses_and_arithmetic() {
    let text = "p(X + 1 * 2, (X + 1) * 2, X - (Y - Z), X - Y - Z, ((X)), -3 * X, X - -3, X/2/3) :- q(X, Y, Z);\n\
        r(S) :- s(A, B), S == (A + B) / 2, A*B<=10-B, (A) != (B);\n";
    insta::assert_snapshot!(check_format(text));
}

#[test]
fn snapshot_keywords_as_relation_names() {
    let text = "table(X) :- delete(X), key(X, next, async);\n\
        include(1)@1;\n\
        delete channel(X)@next :- channel(X), input(X), output(X);\n";
    insta::assert_snapshot!(check_format(text));
}

#[test]
fn snapshot_statement_with_syntax_error_is_kept_verbatim() {
    let text = "good(X) :-   a(X);\nbad(X :- /* inside */\n   b( ; // after\nafter(1)@1;\n";
    let parsed = parse(FileId(0), text);
    assert!(!parsed.diagnostics.is_empty());
    let formatted = format_source(&parsed.file, text);
    assert_eq!(
        comment_texts(&parse(FileId(0), &formatted).file),
        comment_texts(&parsed.file)
    );
    insta::assert_snapshot!(formatted);
}

// ---------------------------------------------------------------------------------------------
// Exact layouts

#[test]
fn empty_file_formats_to_nothing() {
    assert_eq!(check_format(""), "");
    assert_eq!(check_format("\n\n   \n"), "");
}

#[test]
fn file_of_comments_only() {
    assert_eq!(
        check_format("\n\n// one   \n\n\n/* two */ // three\n"),
        "// one\n\n/* two */\n// three\n"
    );
}

#[test]
fn file_ends_with_one_newline() {
    assert_eq!(check_format("a(1)@1;"), "a(1)@1;\n");
    assert_eq!(check_format("a(1)@1;\n\n\n"), "a(1)@1;\n");
}

#[test]
fn crlf_line_endings_become_newlines() {
    assert_eq!(
        check_format("a(1)@1;\r\n\r\nb(2)@1; // x \r\n// y\r\n"),
        "a(1)@1;\n\nb(2)@1; // x\n// y\n"
    );
}

#[test]
fn blank_lines_collapse_to_one() {
    assert_eq!(
        check_format("a(1)@1;\n\n\n\nb(2)@1;\nc(3)@1; d(4)@1;\n"),
        "a(1)@1;\n\nb(2)@1;\nc(3)@1;\nd(4)@1;\n"
    );
}

#[test]
fn comment_after_semicolon_stays_on_its_line() {
    assert_eq!(
        check_format("c(X) :- d(X);//, notin crash(_, A, _);   \n"),
        "c(X) :- d(X); //, notin crash(_, A, _);\n"
    );
}

#[test]
fn long_rule_breaks_one_body_item_per_line() {
    let formatted = check_format(
        "result(Aaaaaaaaaa, Bbbbbbbbbb) :- first(Aaaaaaaaaa), second(Bbbbbbbbbb), third(Aaaaaaaaaa, Bbbbbbbbbb), X > 1;",
    );
    assert_eq!(
        formatted,
        "result(Aaaaaaaaaa, Bbbbbbbbbb) :-\n    first(Aaaaaaaaaa),\n    second(Bbbbbbbbbb),\n    \
         third(Aaaaaaaaaa, Bbbbbbbbbb),\n    X > 1;\n"
    );
}

#[test]
fn comment_between_body_items_forces_multi_line() {
    assert_eq!(
        check_format("a(X) :- b(X), /* c */ d(X);"),
        "a(X) :-\n    b(X), /* c */\n    d(X);\n"
    );
    assert_eq!(
        check_format("a(X) :- b(X),\n /* c */ d(X);"),
        "a(X) :-\n    b(X),\n    /* c */\n    d(X);\n"
    );
}

#[test]
fn line_comment_after_last_body_item_puts_semicolon_on_its_own_line() {
    assert_eq!(
        check_format("a(X) :- b(X) // note\n;"),
        "a(X) :-\n    b(X) // note\n;\n"
    );
}

#[test]
fn fact_with_inner_comment_has_it_hoisted() {
    assert_eq!(check_format("f(1, /* x */ 2)@1;"), "/* x */\nf(1, 2)@1;\n");
}

// ---------------------------------------------------------------------------------------------
// Generated programs

const KEYWORDS: &[&str] = &[
    "include", "notin", "role", "input", "output", "table", "scratch", "channel", "key", "const",
    "never", "require", "delete", "true", "false", "next", "async",
];

fn ident(name: String) -> Ident {
    Ident {
        name,
        span: Span::default(),
    }
}

fn lower_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z][a-z0-9_]{0,5}",
        1 => "[a-z][a-zA-Z0-9_]{6,16}",
    ]
    .prop_filter("not a keyword", |name| !KEYWORDS.contains(&name.as_str()))
}

fn var_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Z][A-Za-z0-9_]{0,5}",
        1 => "_[A-Za-z0-9_]{1,4}",
    ]
}

/// Strings without spaces, so that every space of the printed text lies between tokens.
fn string_value() -> impl Strategy<Value = String> {
    "[a-z0-9\"\\\\\n\té_]{0,8}"
}

fn literal() -> impl Strategy<Value = Expr> {
    prop_oneof![
        (-1000i64..1000).prop_map(|value| Expr::Int(value, Span::default())),
        any::<i64>().prop_map(|value| Expr::Int(value, Span::default())),
        string_value().prop_map(|value| Expr::Str(value, Span::default())),
        any::<bool>().prop_map(|value| Expr::Bool(value, Span::default())),
    ]
}

/// Wraps `operand` in parentheses when plain infix text would not read back as this tree.
fn operand(operand: Expr, parent: ArithOp, is_right: bool) -> Expr {
    let needs_parens = match &operand {
        Expr::Binary { op, .. } => {
            op.precedence() < parent.precedence()
                || (is_right && op.precedence() == parent.precedence())
        }
        _ => false,
    };
    if needs_parens {
        Expr::Paren(Box::new(operand), Span::default())
    } else {
        operand
    }
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        3 => var_name().prop_map(|name| Expr::Var(ident(name))),
        1 => Just(Expr::Wildcard(Span::default())),
        2 => literal(),
        1 => lower_name().prop_map(|name| Expr::Symbol(ident(name))),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        let op = prop_oneof![
            Just(ArithOp::Add),
            Just(ArithOp::Sub),
            Just(ArithOp::Mul),
            Just(ArithOp::Div),
        ];
        prop_oneof![
            3 => (op, inner.clone(), inner.clone()).prop_map(|(op, lhs, rhs)| Expr::Binary {
                op,
                lhs: Box::new(operand(lhs, op, false)),
                rhs: Box::new(operand(rhs, op, true)),
                span: Span::default(),
            }),
            1 => inner.prop_map(|inner| Expr::Paren(Box::new(inner), Span::default())),
        ]
    })
}

fn comparison() -> impl Strategy<Value = Comparison> {
    let op = prop_oneof![
        Just(CompareOp::Eq),
        Just(CompareOp::Ne),
        Just(CompareOp::Lt),
        Just(CompareOp::Gt),
        Just(CompareOp::Le),
        Just(CompareOp::Ge),
    ];
    (expr(), op, expr()).prop_map(|(lhs, op, rhs)| Comparison {
        lhs,
        op,
        op_span: Span::default(),
        rhs,
        span: Span::default(),
    })
}

fn body_item() -> impl Strategy<Value = BodyItem> {
    let atom = (
        any::<bool>(),
        lower_name(),
        prop::collection::vec(expr(), 0..4),
        prop::option::weighted(0.2, 0u64..50),
    )
        .prop_map(|(negated, relation, args, tick)| {
            BodyItem::Atom(BodyAtom {
                negated: negated.then(Span::default),
                relation: ident(relation),
                args,
                tick: tick.map(|tick| (tick, Span::default())),
                span: Span::default(),
            })
        });
    prop_oneof![3 => atom, 1 => comparison().prop_map(BodyItem::Compare)]
}

fn head(time: impl Strategy<Value = HeadTime>) -> impl Strategy<Value = Head> {
    let aggregate_function = prop_oneof![
        Just("count".to_string()),
        Just("sum".to_string()),
        Just("min".to_string()),
        Just("max".to_string()),
        lower_name(),
    ];
    let head_arg = prop_oneof![
        4 => expr().prop_map(HeadArg::Expr),
        1 => (aggregate_function, var_name()).prop_map(|(function, variable)| {
            HeadArg::Aggregate(Aggregate {
                function: ident(function),
                variable: ident(variable),
                span: Span::default(),
            })
        }),
    ];
    (lower_name(), prop::collection::vec(head_arg, 0..5), time).prop_map(
        |(relation, args, time)| Head {
            relation: ident(relation),
            args,
            time,
            time_span: (time != HeadTime::Now).then(Span::default),
            span: Span::default(),
        },
    )
}

fn rule() -> impl Strategy<Value = Rule> {
    let time = prop_oneof![
        Just(HeadTime::Now),
        Just(HeadTime::Next),
        Just(HeadTime::Async)
    ];
    (
        any::<bool>(),
        head(time),
        prop::collection::vec(body_item(), 1..6),
    )
        .prop_map(|(delete, mut head, body)| {
            if delete {
                head.time = HeadTime::Next;
                head.time_span = Some(Span::default());
            }
            Rule {
                delete: delete.then(Span::default),
                head,
                body,
                span: Span::default(),
            }
        })
}

fn fact() -> impl Strategy<Value = Rule> {
    let time = prop_oneof![
        Just(HeadTime::Now),
        (0u64..100).prop_map(HeadTime::Tick),
        any::<u64>().prop_map(HeadTime::Tick),
    ];
    head(time).prop_map(|head| Rule {
        delete: None,
        head,
        body: Vec::new(),
        span: Span::default(),
    })
}

fn relation_decl() -> impl Strategy<Value = RelationDecl> {
    let column = (lower_name(), lower_name()).prop_map(|(name, ty)| ColumnDecl {
        name: ident(name),
        ty: ident(ty),
        span: Span::default(),
    });
    let persistence = prop_oneof![
        Just(Persistence::Table),
        Just(Persistence::Scratch),
        Just(Persistence::Channel)
    ];
    (
        0u8..3,
        prop::option::of(persistence),
        lower_name(),
        prop::collection::vec(column, 0..7),
        prop::option::of(prop::collection::vec(lower_name(), 0..3)),
    )
        .prop_map(|(io, persistence, name, columns, key)| {
            // At least one keyword must be written.
            let persistence = if io == 0 {
                Some(persistence.unwrap_or(Persistence::Table))
            } else {
                persistence
            };
            RelationDecl {
                input: (io == 1).then(Span::default),
                output: (io == 2).then(Span::default),
                persistence: persistence.map(|persistence| (persistence, Span::default())),
                name: ident(name),
                columns,
                key: key.map(|columns| KeyDecl {
                    columns: columns.into_iter().map(ident).collect(),
                    span: Span::default(),
                }),
                span: Span::default(),
            }
        })
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        6 => rule().prop_map(Item::Rule),
        3 => fact().prop_map(Item::Rule),
        2 => relation_decl().prop_map(Item::Relation),
        1 => string_value().prop_map(|path| Item::Include(Include {
            path,
            path_span: Span::default(),
            span: Span::default(),
        })),
        1 => lower_name().prop_map(|name| Item::Role(RoleDecl {
            name: ident(name),
            span: Span::default(),
        })),
        1 => (var_name(), literal()).prop_map(|(name, value)| Item::Const(ConstDecl {
            name: ident(name),
            value,
            span: Span::default(),
        })),
        1 => prop::collection::vec(body_item(), 1..4).prop_map(|body| Item::Never(Never {
            body,
            span: Span::default(),
        })),
        1 => comparison().prop_map(|condition| Item::Require(Require {
            condition,
            span: Span::default(),
        })),
    ]
}

fn program() -> impl Strategy<Value = SourceFile> {
    prop::collection::vec(item(), 0..10).prop_map(|items| SourceFile {
        file: FileId(0),
        items,
        comments: Vec::new(),
    })
}

/// The byte offsets of `text` where a comment may be inserted: every space and line break
/// (generated strings hold neither), and both ends of the file.
fn insertion_points(text: &str) -> Vec<usize> {
    let mut points: Vec<usize> = text
        .char_indices()
        .filter(|(_, character)| *character == ' ' || *character == '\n')
        .map(|(offset, _)| offset)
        .collect();
    points.insert(0, 0);
    points.push(text.len());
    points
}

fn with_comments(text: &str, insertions: &[(prop::sample::Index, u8)]) -> String {
    let points = insertion_points(text);
    let mut chosen: Vec<(usize, usize, u8)> = insertions
        .iter()
        .enumerate()
        .map(|(number, (index, kind))| (index.index(points.len()), number, *kind))
        .map(|(point, number, kind)| (points[point], number, kind))
        .collect();
    // Insert from the end so that earlier offsets stay valid.
    chosen.sort_by(|a, b| b.cmp(a));
    let mut out = text.to_string();
    for (offset, number, kind) in chosen {
        let comment = match kind {
            0 => format!(" /* block {number} */ "),
            1 => format!(" // line {number}   \n"),
            2 => format!("\n\n// own line {number}\n"),
            _ => format!(" /* multi\n   line {number} */\n"),
        };
        out.insert_str(offset, &comment);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 600,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Printing a generated tree gives text that parses back to the same tree, and printing
    /// that again changes nothing.
    #[test]
    fn generated_programs_round_trip(program in program()) {
        let text = format_source(&program, "");
        let parsed = parse(FileId(0), &text);
        prop_assert!(parsed.diagnostics.is_empty(), "{:#?}\n{}", parsed.diagnostics, text);
        prop_assert_eq!(parsed.file.without_spans(), program.without_spans(), "{}", text);
        let again = format_source(&parsed.file, &text);
        prop_assert_eq!(again, text);
    }

    /// Comments inserted anywhere whitespace may stand survive formatting, do not change the
    /// program, and leave a fixed point.
    #[test]
    fn comments_anywhere_are_kept(
        program in program(),
        insertions in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4), 0..8),
    ) {
        let printed = format_source(&program, "");
        let text = with_comments(&printed, &insertions);
        let parsed = parse(FileId(0), &text);
        prop_assert!(parsed.diagnostics.is_empty(), "{:#?}\n{}", parsed.diagnostics, text);
        prop_assert_eq!(parsed.file.comments.len(), insertions.len());

        let formatted = format_source(&parsed.file, &text);
        let reparsed = parse(FileId(0), &formatted);
        prop_assert!(reparsed.diagnostics.is_empty(), "{:#?}\n{}", reparsed.diagnostics, formatted);
        prop_assert_eq!(reparsed.file.without_spans(), program.without_spans(), "{}", formatted);
        prop_assert_eq!(comment_texts(&reparsed.file), comment_texts(&parsed.file));
        let again = format_source(&reparsed.file, &formatted);
        prop_assert_eq!(again, formatted, "from:\n{}", text);
    }
}
