//! Parsing Molly's Dedalus dialect and graft's declarations: programs written the way people
//! write them must parse without diagnostics and into the expected tree.

use graft_language::ast::{
    ArithOp, BodyItem, CommentKind, CompareOp, Expr, HeadArg, HeadTime, Item, Persistence,
};
use graft_language::parse;
use graft_language::span::FileId;

/// Parses `text`, failing with the diagnostics if there are any, and returns the items.
#[track_caller]
fn parse_clean(text: &str) -> graft_language::ast::SourceFile {
    let parsed = parse(FileId(0), text);
    assert!(
        parsed.diagnostics.is_empty(),
        "unexpected diagnostics: {:#?}",
        parsed.diagnostics
    );
    parsed.file
}

fn rules(file: &graft_language::ast::SourceFile) -> Vec<&graft_language::ast::Rule> {
    file.items
        .iter()
        .filter_map(|item| match item {
            Item::Rule(rule) => Some(rule),
            _ => None,
        })
        .collect()
}

fn atom(item: &BodyItem) -> &graft_language::ast::BodyAtom {
    match item {
        BodyItem::Atom(atom) => atom,
        BodyItem::Compare(comparison) => panic!("expected an atom, found {comparison:?}"),
    }
}

fn comparison(item: &BodyItem) -> &graft_language::ast::Comparison {
    match item {
        BodyItem::Compare(comparison) => comparison,
        BodyItem::Atom(atom) => panic!("expected a comparison, found {atom:?}"),
    }
}

const TWO_PHASE_COMMIT: &str = r#"
// Two-phase commit, in the style of Molly's examples.
include "2pc_assert.ded";

begin(C, X) :- begin(C, X)@1;
prepare(P, C, X)@async :- begin(C, X), agent(C, P);
vote(C, P, X, "yes")@async :- prepare(P, C, X), can_commit(P, X);
vote(C, P, X, "no")@async :- prepare(P, C, X), notin can_commit(P, X);

missing_vote(C, X) :- agent(C, P), begin(C, X), notin vote(C, P, X, "yes");
commit(C, X)@next :- begin(C, X), notin missing_vote(C, X), notin abort(C, X);
abort(C, X)@next :- vote(C, _, X, "no");
commit(C, X)@next :- commit(C, X);
abort(C, X)@next :- abort(C, X);

agent("C", "a")@1;
agent("C", "b")@1;
can_commit("a", 1)@1;
can_commit("b", 1)@1;
begin("C", 1)@1;
"#;

#[test]
fn two_phase_commit_parses_with_the_right_shape() {
    let file = parse_clean(TWO_PHASE_COMMIT);
    assert_eq!(file.comments.len(), 1);
    assert!(matches!(&file.items[0], Item::Include(include) if include.path == "2pc_assert.ded"));
    let rules = rules(&file);
    assert_eq!(rules.len(), 14);

    let prepare = rules[1];
    assert_eq!(prepare.head.relation.name, "prepare");
    assert_eq!(prepare.head.time, HeadTime::Async);
    assert_eq!(prepare.body.len(), 2);

    let no_vote = rules[3];
    assert!(matches!(&no_vote.head.args[3], HeadArg::Expr(Expr::Str(text, _)) if text == "no"));
    assert!(atom(&no_vote.body[1]).is_negated());

    let commit = rules[5];
    assert_eq!(commit.head.time, HeadTime::Next);
    let missing = atom(&commit.body[1]);
    assert!(missing.is_negated());
    assert_eq!(missing.relation.name, "missing_vote");
    assert!(matches!(&missing.args[0], Expr::Var(name) if name.name == "C"));

    let abort = rules[6];
    assert!(matches!(atom(&abort.body[0]).args[1], Expr::Wildcard(_)));

    let fact = rules[9];
    assert!(fact.is_fact());
    assert_eq!(fact.head.time, HeadTime::Tick(1));
    assert!(matches!(&fact.head.args[1], HeadArg::Expr(Expr::Str(text, _)) if text == "a"));
    assert!(matches!(
        &rules[11].head.args[1],
        HeadArg::Expr(Expr::Int(1, _))
    ));
}

const PAXOS_LIKE: &str = r#"
/* A paxos-like ballot round.
   Written as a Molly user would. */
seed(A, S)@next :- seed(A, S), notin bump(A);
seed(A, S+C)@next :- seed(A, S), bump(A), cluster_size(A, C);
prepare(P, A, B)@async :- seed(A, B), acceptor(A, P), proposer(A);
promise(A, P, B, Ob, Ov)@async :- prepare(P, A, B), accepted(P, Ob, Ov), B > Ob;
promise_cnt(A, B, count<P>) :- promise(A, P, B, _, _);
highest(A, B, max<Ob>) :- promise(A, _, B, Ob, _);
quorum(A, B) :- promise_cnt(A, B, Cnt2), members(A, Cnt1), Cnt2 > Cnt1 / 2;
"#;

#[test]
fn paxos_like_program_parses_arithmetic_and_aggregates() {
    let file = parse_clean(PAXOS_LIKE);
    assert_eq!(file.comments.len(), 1);
    assert_eq!(file.comments[0].kind, CommentKind::Block);
    let rules = rules(&file);
    assert_eq!(rules.len(), 7);

    let seed = rules[1];
    match &seed.head.args[1] {
        HeadArg::Expr(Expr::Binary { op, lhs, rhs, .. }) => {
            assert_eq!(*op, ArithOp::Add);
            assert!(matches!(&**lhs, Expr::Var(name) if name.name == "S"));
            assert!(matches!(&**rhs, Expr::Var(name) if name.name == "C"));
        }
        other => panic!("expected S+C, found {other:?}"),
    }
    assert_eq!(seed.head.time, HeadTime::Next);

    let promise = rules[3];
    let compare = comparison(&promise.body[2]);
    assert_eq!(compare.op, CompareOp::Gt);

    let count = rules[4];
    match &count.head.args[2] {
        HeadArg::Aggregate(aggregate) => {
            assert_eq!(aggregate.function.name, "count");
            assert_eq!(aggregate.variable.name, "P");
        }
        other => panic!("expected count<P>, found {other:?}"),
    }
    assert!(matches!(&rules[5].head.args[2], HeadArg::Aggregate(a) if a.function.name == "max"));

    let quorum = comparison(&rules[6].body[2]);
    assert_eq!(quorum.op, CompareOp::Gt);
    assert!(matches!(
        &quorum.rhs,
        Expr::Binary {
            op: ArithOp::Div,
            ..
        }
    ));
}

const SIMPLE_DELIVERY: &str = r#"
node(Node, Neighbor)@next :- node(Node, Neighbor);
log(Node, Pload)@next :- log(Node, Pload);
log(Node, Pload) :- bcast(Node, Pload)@1;
bcast(N, P)@async :- log(Node, P), node(Node, N);//, notin crash(_, Node, _);
missing_log(A, Pl) :- log(X, Pl), node(X, A), notin log(A, Pl);
pre(X, Pl) :- log(X, Pl), notin bcast(X, Pl)@1, notin crash(X, X, _);
post(X, Pl) :- log(X, Pl), notin missing_log(_, Pl);

node("a", "b")@1;
node("a", "c")@1;
bcast("a", "hello")@1;
"#;

#[test]
fn simple_delivery_with_pinned_negation_and_trailing_comment() {
    let file = parse_clean(SIMPLE_DELIVERY);
    assert_eq!(file.comments.len(), 1);
    assert_eq!(file.comments[0].text, "//, notin crash(_, Node, _);");
    let rules = rules(&file);
    assert_eq!(rules.len(), 10);

    let from_bcast = atom(&rules[2].body[0]);
    assert_eq!(from_bcast.tick.map(|(tick, _)| tick), Some(1));
    assert!(!from_bcast.is_negated());

    let pre = rules[5];
    let not_sent = atom(&pre.body[1]);
    assert!(not_sent.is_negated());
    assert_eq!(not_sent.tick.map(|(tick, _)| tick), Some(1));
    let not_crashed = atom(&pre.body[2]);
    assert_eq!(not_crashed.relation.name, "crash");
    assert!(matches!(
        &not_crashed.args[..],
        [Expr::Var(_), Expr::Var(_), Expr::Wildcard(_)]
    ));

    // The comment's span starts right after the `;`.
    let semicolon = SIMPLE_DELIVERY
        .find(";//")
        .expect("the test program has a comment after `;`");
    assert_eq!(file.comments[0].span.start as usize, semicolon + 1);
}

const FACTS_AND_LITERALS: &str = r#"
nodes("a", "b", 2)@1;
nodes("b", "a", -3)@2;
weights(a, b, 10);
flags("x", true, false)@1;
escaped("say \"hi\"", "back\\slash")@1;
"#;

#[test]
fn facts_with_literals_symbols_and_negative_numbers() {
    let file = parse_clean(FACTS_AND_LITERALS);
    let rules = rules(&file);
    assert_eq!(rules.len(), 5);
    assert!(rules.iter().all(|rule| rule.is_fact()));
    assert!(matches!(
        &rules[0].head.args[2],
        HeadArg::Expr(Expr::Int(2, _))
    ));
    assert!(matches!(
        &rules[1].head.args[2],
        HeadArg::Expr(Expr::Int(-3, _))
    ));
    assert_eq!(rules[1].head.time, HeadTime::Tick(2));
    // A bodiless head without `@N` is a fact; the parser records no suffix.
    assert_eq!(rules[2].head.time, HeadTime::Now);
    assert!(
        matches!(&rules[2].head.args[0], HeadArg::Expr(Expr::Symbol(name)) if name.name == "a")
    );
    assert!(matches!(
        &rules[3].head.args[1],
        HeadArg::Expr(Expr::Bool(true, _))
    ));
    assert!(
        matches!(&rules[4].head.args[0], HeadArg::Expr(Expr::Str(text, _)) if text == "say \"hi\"")
    );
    assert!(
        matches!(&rules[4].head.args[1], HeadArg::Expr(Expr::Str(text, _)) if text == "back\\slash")
    );
}

const MULTI_LINE_RULES: &str = r#"
ack(Sender, Receiver, Msg)@async
    :- deliver(Receiver, Sender, Msg),
       // acknowledge only what was not acknowledged before
       notin acked(Receiver, Sender, Msg),
       Sender != Receiver;

resend(Node, Other, Msg)@next :-
    log(Node, Msg),
    node(Node, Other),
    notin ack(Node, Other, Msg),
    clock(Node, T),
    T - 1 >= (Timeout * 2 + 1);
"#;

#[test]
fn rules_spanning_lines_with_comments_inside() {
    let file = parse_clean(MULTI_LINE_RULES);
    assert_eq!(file.comments.len(), 1);
    let rules = rules(&file);
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].body.len(), 3);
    assert_eq!(comparison(&rules[0].body[2]).op, CompareOp::Ne);

    let timeout = comparison(&rules[1].body[4]);
    assert_eq!(timeout.op, CompareOp::Ge);
    assert!(matches!(
        &timeout.lhs,
        Expr::Binary {
            op: ArithOp::Sub,
            ..
        }
    ));
    // `(Timeout * 2 + 1)`: a parenthesis around `+` whose left operand is `*`.
    match &timeout.rhs {
        Expr::Paren(inner, _) => match &**inner {
            Expr::Binary { op, lhs, .. } => {
                assert_eq!(*op, ArithOp::Add);
                assert!(matches!(
                    &**lhs,
                    Expr::Binary {
                        op: ArithOp::Mul,
                        ..
                    }
                ));
            }
            other => panic!("expected a sum, found {other:?}"),
        },
        other => panic!("expected a parenthesis, found {other:?}"),
    }
}

#[test]
fn arithmetic_is_left_associative_with_precedence() {
    let file = parse_clean("p(X) :- q(A, B, C), X == A - B - C * 2 / 4;");
    let rule = rules(&file)[0];
    let compare = comparison(&rule.body[1]);
    // ((A - B) - ((C * 2) / 4))
    match &compare.rhs {
        Expr::Binary {
            op: ArithOp::Sub,
            lhs,
            rhs,
            ..
        } => {
            assert!(matches!(
                &**lhs,
                Expr::Binary {
                    op: ArithOp::Sub,
                    ..
                }
            ));
            match &**rhs {
                Expr::Binary {
                    op: ArithOp::Div,
                    lhs,
                    ..
                } => {
                    assert!(matches!(
                        &**lhs,
                        Expr::Binary {
                            op: ArithOp::Mul,
                            ..
                        }
                    ));
                }
                other => panic!("expected a division, found {other:?}"),
            }
        }
        other => panic!("expected a subtraction, found {other:?}"),
    }
    // `X-1` is a subtraction; `X, -1` has a negative literal.
    let file = parse_clean("p(X-1, -1) :- q(X);");
    let head = &rules(&file)[0].head;
    assert!(matches!(
        &head.args[0],
        HeadArg::Expr(Expr::Binary {
            op: ArithOp::Sub,
            ..
        })
    ));
    assert!(matches!(&head.args[1], HeadArg::Expr(Expr::Int(-1, _))));
}

const CRASH_AND_CLOCK: &str = r#"
// Molly-style spec with crash facts and clocks.
crash("a", "a", 2)@1;
member(N, M)@next :- member(N, M), notin crash(N, N, _);
member(N, M)@next :- member(N, M), crash(N, M, T), clock(N, _, Now), Now < T;
leader(N, min<M>) :- member(N, M);
total(N, sum<V>) :- value(N, V);
pre(N) :- leader(N, _);
post(N) :- leader(N, L), notin crash(_, L, _);
"#;

#[test]
fn crash_facts_and_aggregates() {
    let file = parse_clean(CRASH_AND_CLOCK);
    let rules = rules(&file);
    assert_eq!(rules.len(), 7);
    let crash = atom(&rules[1].body[1]);
    assert!(crash.is_negated());
    assert!(matches!(&crash.args[2], Expr::Wildcard(_)));
    assert_eq!(comparison(&rules[2].body[3]).op, CompareOp::Lt);
    assert!(matches!(&rules[3].head.args[1], HeadArg::Aggregate(a) if a.function.name == "min"));
    assert!(matches!(&rules[4].head.args[1], HeadArg::Aggregate(a) if a.function.name == "sum"));
}

const KEYWORDS_AS_NAMES: &str = r#"
table(X, Y) :- input(X), output(Y);
delete(X)@next :- key(X), role(X), channel(X, next, async);
scratch(X) :- const(X), include(X);
"#;

#[test]
fn keywords_can_be_relation_names_and_symbols() {
    let file = parse_clean(KEYWORDS_AS_NAMES);
    let rules = rules(&file);
    assert_eq!(rules.len(), 3);
    assert_eq!(rules[0].head.relation.name, "table");
    assert_eq!(atom(&rules[0].body[0]).relation.name, "input");
    assert_eq!(rules[1].head.relation.name, "delete");
    assert!(rules[1].delete.is_none());
    let channel = atom(&rules[1].body[2]);
    assert_eq!(channel.relation.name, "channel");
    assert!(matches!(&channel.args[1], Expr::Symbol(name) if name.name == "next"));
    assert_eq!(rules[2].head.relation.name, "scratch");
}

const GRAFT_DECLARATIONS: &str = r#"
role coordinator;  role participant;                      // kinds of node
input   begin(at: coordinator, tx: int);                  // fed from outside
table   votes(at: coordinator, tx: int, voter: participant, yes: bool) key(tx, voter);
channel prepare(at: participant, tx: int, coord: coordinator);
output  decision(at: coordinator, tx: int, commit: bool);
output table decided(at: coordinator, tx: int, commit: bool) key(tx);
input scratch ping(at: node, text: string);
const   QUORUM = 2;
const   NAME = "graft";
const   LOW = -1;
const   ENABLED = true;
never   decision(A, T, true), decision(B, T, false);
require Q1 + Q2 > N;
delete votes(C, T, V, Y)@next :- votes(C, T, V, Y), decided(C, T, _);
"#;

#[test]
fn graft_declarations_parse_into_the_right_items() {
    let file = parse_clean(GRAFT_DECLARATIONS);
    assert_eq!(file.items.len(), 15);
    assert_eq!(file.comments.len(), 2);

    assert!(matches!(&file.items[0], Item::Role(role) if role.name.name == "coordinator"));
    assert!(matches!(&file.items[1], Item::Role(role) if role.name.name == "participant"));

    let Item::Relation(begin) = &file.items[2] else {
        panic!("expected a declaration, found {:?}", file.items[2]);
    };
    assert!(begin.input.is_some() && begin.output.is_none() && begin.persistence.is_none());
    assert_eq!(begin.effective_persistence(), Persistence::Scratch);
    assert_eq!(begin.name.name, "begin");
    let columns: Vec<(&str, &str)> = begin
        .columns
        .iter()
        .map(|column| (column.name.name.as_str(), column.ty.name.as_str()))
        .collect();
    assert_eq!(columns, [("at", "coordinator"), ("tx", "int")]);

    let Item::Relation(votes) = &file.items[3] else {
        panic!("expected a declaration, found {:?}", file.items[3]);
    };
    assert_eq!(votes.effective_persistence(), Persistence::Table);
    let key: Vec<&str> = votes
        .key
        .iter()
        .flat_map(|key| key.columns.iter().map(|column| column.name.as_str()))
        .collect();
    assert_eq!(key, ["tx", "voter"]);

    assert!(
        matches!(&file.items[4], Item::Relation(r) if r.effective_persistence() == Persistence::Channel)
    );
    assert!(matches!(&file.items[5], Item::Relation(r) if r.output.is_some() && r.key.is_none()));
    let Item::Relation(decided) = &file.items[6] else {
        panic!("expected a declaration, found {:?}", file.items[6]);
    };
    assert!(decided.output.is_some());
    assert_eq!(decided.effective_persistence(), Persistence::Table);
    assert!(
        matches!(&file.items[7], Item::Relation(r) if r.input.is_some() && r.persistence.is_some())
    );

    assert!(
        matches!(&file.items[8], Item::Const(c) if c.name.name == "QUORUM"
        && matches!(c.value, Expr::Int(2, _)))
    );
    assert!(
        matches!(&file.items[9], Item::Const(c) if matches!(&c.value, Expr::Str(s, _) if s == "graft"))
    );
    assert!(matches!(&file.items[10], Item::Const(c) if matches!(c.value, Expr::Int(-1, _))));
    assert!(matches!(&file.items[11], Item::Const(c) if matches!(c.value, Expr::Bool(true, _))));

    let Item::Never(never) = &file.items[12] else {
        panic!("expected never, found {:?}", file.items[12]);
    };
    assert_eq!(never.body.len(), 2);
    assert!(matches!(
        &atom(&never.body[1]).args[2],
        Expr::Bool(false, _)
    ));

    let Item::Require(require) = &file.items[13] else {
        panic!("expected require, found {:?}", file.items[13]);
    };
    assert_eq!(require.condition.op, CompareOp::Gt);
    assert!(matches!(
        &require.condition.lhs,
        Expr::Binary {
            op: ArithOp::Add,
            ..
        }
    ));

    let Item::Rule(delete) = &file.items[14] else {
        panic!("expected a retraction, found {:?}", file.items[14]);
    };
    assert!(delete.delete.is_some());
    assert_eq!(delete.head.relation.name, "votes");
    assert_eq!(delete.head.time, HeadTime::Next);
}

#[test]
fn spans_point_at_the_source() {
    let text = "votes(C, T) :- ballot(C, T)@3, T != 0;";
    let file = parse_clean(text);
    let rule = rules(&file)[0];
    let slice = |span: graft_language::span::Span| &text[span.range()];
    assert_eq!(slice(rule.span), text);
    assert_eq!(slice(rule.head.span), "votes(C, T)");
    let ballot = atom(&rule.body[0]);
    assert_eq!(slice(ballot.span), "ballot(C, T)@3");
    assert_eq!(
        slice(ballot.tick.map(|(_, span)| span).unwrap_or_default()),
        "@3"
    );
    let compare = comparison(&rule.body[1]);
    assert_eq!(slice(compare.span), "T != 0");
    assert_eq!(slice(compare.op_span), "!=");

    let text = "log(N, P)@next :- log(N, P);";
    let file = parse_clean(text);
    let head = &rules(&file)[0].head;
    assert_eq!(slice_of(text, head.time_span), "@next");
}

fn slice_of(text: &str, span: Option<graft_language::span::Span>) -> &str {
    span.map_or("", |span| &text[span.range()])
}

const MOLLY_KV_STORE: &str = r#"
// A replicated key-value store with a primary.
/// Doc-style comment before a rule.
put(Primary, Key, Val)@async :- client_put(Client, Primary, Key, Val);
store(Node, Key, Val)@next :- store(Node, Key, Val), notin overwrite(Node, Key);
overwrite(Node, Key) :- put(Node, Key, _);
store(Node, Key, Val)@next :- put(Node, Key, Val);
replicate(Backup, Key, Val)@async :- put(Primary, Key, Val), backup(Primary, Backup);
store(Backup, Key, Val)@next :- replicate(Backup, Key, Val);
version_count(Node, Key, count<Val>) :- store(Node, Key, Val);
pre(Key, Val) :- client_put(_, _, Key, Val)@1;
post(Key, Val) :- store(_, Key, Val), notin crash(_, _, _);
"#;

#[test]
fn key_value_store_with_doc_comments() {
    let file = parse_clean(MOLLY_KV_STORE);
    assert_eq!(file.comments.len(), 2);
    assert!(file.comments[1].text.starts_with("///"));
    let rules = rules(&file);
    assert_eq!(rules.len(), 9);
    assert_eq!(rules[0].head.time, HeadTime::Async);
    let pinned = atom(&rules[7].body[0]);
    assert_eq!(pinned.tick.map(|(tick, _)| tick), Some(1));
    assert!(matches!(
        &pinned.args[..2],
        [Expr::Wildcard(_), Expr::Wildcard(_)]
    ));
}

const HEARTBEAT: &str = r#"
heartbeat(To, From, Time)@async :- node(From, To), clock(From, Time);
last_seen(N, M, max<T>) :- heartbeat(N, M, T);
suspect(N, M) :- node(N, M), last_seen(N, M, T), now(N, Now), Now - T > 3;
suspect(N, M) :- node(N, M), notin last_seen(N, M, _);
now(N, T + 1)@next :- now(N, T);
now("a", 0)@1; now("b", 0)@1;
"#;

#[test]
fn heartbeat_failure_detector() {
    let file = parse_clean(HEARTBEAT);
    let rules = rules(&file);
    assert_eq!(rules.len(), 7);
    let suspicion = comparison(&rules[2].body[3]);
    assert_eq!(suspicion.op, CompareOp::Gt);
    assert!(matches!(
        &suspicion.lhs,
        Expr::Binary {
            op: ArithOp::Sub,
            ..
        }
    ));
    assert!(matches!(&suspicion.rhs, Expr::Int(3, _)));
    assert!(matches!(
        &rules[4].head.args[1],
        HeadArg::Expr(Expr::Binary {
            op: ArithOp::Add,
            ..
        })
    ));
}

const ZERO_ARITY_AND_EMPTY: &str = "\n\n   // only a comment\n/* and a block */\n";

#[test]
fn a_file_of_comments_has_no_items() {
    let file = parse_clean(ZERO_ARITY_AND_EMPTY);
    assert!(file.items.is_empty());
    assert_eq!(file.comments.len(), 2);
    assert!(parse_clean("").items.is_empty());
}

const QUORUM_VOTING: &str = r#"
role leader; role voter;
input table voters(at: leader, v: voter);
channel ballot(at: voter, l: leader, round: int);
channel vote(at: leader, v: voter, round: int);
output decided(at: leader, round: int);
const QUORUM = 2;

ballot(V, L, R)@async :- start(L, R), voters(L, V);
vote(L, V, R)@async :- ballot(V, L, R);
votes(L, R, count<V>) :- vote(L, V, R);
decided(L, R) :- votes(L, R, N), N >= QUORUM;
never decided(L, R), notin start(L, R)@1;
"#;

#[test]
fn quorum_voting_mixes_declarations_and_rules() {
    let file = parse_clean(QUORUM_VOTING);
    assert_eq!(file.items.len(), 12);
    let rules = rules(&file);
    let threshold = comparison(&rules[3].body[1]);
    assert!(matches!(&threshold.rhs, Expr::Var(name) if name.name == "QUORUM"));
    let Item::Never(never) = &file.items[11] else {
        panic!("expected never, found {:?}", file.items[11]);
    };
    let pinned = atom(&never.body[1]);
    assert!(pinned.is_negated());
    assert_eq!(pinned.tick.map(|(tick, _)| tick), Some(1));
}

#[test]
fn without_spans_ignores_layout_and_comments() {
    let compact = parse_clean("p(X,S+1)@next:-q(X,S),notin r(X)@2,X!=\"a\";table t(a:int)key(a);");
    let spread = parse_clean(
        "p( X, S + 1 )@next :-\n  q(X, S), // why\n  notin r(X)@2,\n  X != \"a\";\n\ntable t(a: int) key(a);",
    );
    assert_ne!(compact, spread);
    assert_eq!(compact.without_spans(), spread.without_spans());
    assert!(spread.without_spans().comments.is_empty());
    let different = parse_clean("p(X, S + 2)@next :- q(X, S), notin r(X)@2, X != \"a\";");
    assert_ne!(compact.without_spans(), different.without_spans());
}
