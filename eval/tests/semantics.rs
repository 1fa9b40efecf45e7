//! Hand-computed expectations on small programs: each test would catch one specific way of
//! getting the semantics wrong (an off-by-one tick, a lost message delivered anyway, a crashed
//! node still sending, a persisted fact lost, an aggregate over an incomplete stratum, ...).

mod common;

use common::{compile, expect, i, s};
use graft_eval::{CrashModel, EvalStrategy, Fate, RunConfig, ShowSet};

fn eot(ticks: u64) -> RunConfig {
    RunConfig::with_eot(ticks)
}

#[test]
fn next_heads_hold_exactly_one_tick_later() {
    let program = compile(
        r#"
        e("a", 1)@1;
        f(N, X)@next :- e(N, X);
        g(N, X) :- f(N, X);
        "#,
    );
    let run = program.run(&eot(4), "");
    assert_eq!(run.ticks_run, 4);
    assert_eq!(
        program.lines(&run, &["e", "f", "g"]),
        expect(&[r#"e("a", 1)@1;"#, r#"f("a", 1)@2;"#, r#"g("a", 1)@2;"#])
    );
}

#[test]
fn facts_after_the_end_of_time_are_not_evaluated() {
    let program = compile(
        r#"
        e("a", 1)@1;
        e("a", 2)@3;
        "#,
    );
    let run = program.run(&eot(2), "");
    assert_eq!(run.ticks.len(), 2);
    assert_eq!(program.lines(&run, &["e"]), expect(&[r#"e("a", 1)@1;"#]));
}

const PING: &str = r#"
    link("a", "a")@1;
    link("a", "b")@1;
    link("a", "c")@1;
    go("a")@1;
    ping(P, N)@async :- go(N), link(N, P);
    got(N, S) :- ping(N, S);
"#;

#[test]
fn messages_arrive_one_tick_later_unless_dropped() {
    let program = compile(PING);
    let mut config = eot(3);
    config.drops.insert(("a".into(), "b".into(), 1));
    // A message a node sends to itself is never lost.
    config.drops.insert(("a".into(), "a".into(), 1));
    // A drop at another tick changes nothing.
    config.drops.insert(("a".into(), "c".into(), 2));
    let run = program.run(&config, "");
    assert_eq!(
        program.lines(&run, &["ping", "got"]),
        expect(&[
            r#"got("a", "a")@2;"#,
            r#"got("c", "a")@2;"#,
            r#"ping("a", "a")@2;"#,
            r#"ping("c", "a")@2;"#,
        ])
    );
    let fates: Vec<(u64, String, String, Fate)> = run
        .messages
        .iter()
        .map(|message| {
            (
                message.send_tick,
                message.sender.to_string(),
                message.dest.to_string(),
                message.fate,
            )
        })
        .collect();
    assert_eq!(
        fates,
        vec![
            (1, "\"a\"".into(), "\"a\"".into(), Fate::Delivered),
            (1, "\"a\"".into(), "\"b\"".into(), Fate::Omitted),
            (1, "\"a\"".into(), "\"c\"".into(), Fate::Delivered),
        ]
    );
}

const CRASHING: &str = r#"
    go("a")@1;
    link("a", "b")@1;
    go(N)@next :- go(N);
    link(N, P)@next :- link(N, P);
    ping(P, N)@async :- go(N), link(N, P);
    pong(S, N)@async :- ping(N, S);
    local(N) :- go(N);
    saw(N, C, T) :- crash(N, C, T);
"#;

#[test]
fn molly_crash_stops_sending_but_not_deriving() {
    let program = compile(CRASHING);
    let mut config = eot(4);
    config.crashes.insert("a".into(), 2);
    let run = program.run(&config, "");
    assert_eq!(run.nodes, vec![s("a"), s("b")]);
    assert_eq!(
        program.lines(&run, &["ping", "pong", "local", "saw"]),
        expect(&[
            r#"local("a")@1;"#,
            r#"saw("a", "a", 2)@1;"#,
            r#"saw("b", "a", 2)@1;"#,
            r#"local("a")@2;"#,
            r#"ping("b", "a")@2;"#,
            r#"saw("a", "a", 2)@2;"#,
            r#"saw("b", "a", 2)@2;"#,
            r#"local("a")@3;"#,
            r#"pong("a", "b")@3;"#,
            r#"saw("a", "a", 2)@3;"#,
            r#"saw("b", "a", 2)@3;"#,
            r#"local("a")@4;"#,
            r#"saw("a", "a", 2)@4;"#,
            r#"saw("b", "a", 2)@4;"#,
        ])
    );
    let sent_by_a: Vec<(u64, Fate)> = run
        .messages
        .iter()
        .filter(|message| message.sender == s("a"))
        .map(|message| (message.send_tick, message.fate))
        .collect();
    assert_eq!(
        sent_by_a,
        vec![
            (1, Fate::Delivered),
            (2, Fate::SenderCrashed),
            (3, Fate::SenderCrashed),
            (4, Fate::SenderCrashed),
        ]
    );
}

#[test]
fn strict_crash_stops_deriving_and_receiving() {
    let program = compile(CRASHING);
    let mut config = eot(4);
    config.crashes.insert("a".into(), 2);
    config.crash_model = CrashModel::Strict;
    let run = program.run(&config, "");
    assert_eq!(
        program.lines(&run, &["go", "ping", "pong", "local", "saw"]),
        expect(&[
            r#"go("a")@1;"#,
            r#"local("a")@1;"#,
            r#"saw("a", "a", 2)@1;"#,
            r#"saw("b", "a", 2)@1;"#,
            r#"ping("b", "a")@2;"#,
            r#"saw("b", "a", 2)@2;"#,
            r#"saw("b", "a", 2)@3;"#,
            r#"saw("b", "a", 2)@4;"#,
        ])
    );
    let pong: Vec<(u64, Fate)> = run
        .messages
        .iter()
        .filter(|message| message.sender == s("b"))
        .map(|message| (message.send_tick, message.fate))
        .collect();
    assert_eq!(pong, vec![(2, Fate::ReceiverCrashed)]);
}

const TABLES: &str = r#"
    table t(at: node, v: int);
    input add(at: node, v: int);
    input del(at: node, v: int);
    input readd(at: node, v: int);
    output show(at: node, v: int);
    t(N, V) :- add(N, V);
    t(N, V)@next :- readd(N, V);
    delete t(N, V)@next :- del(N, V);
    show(N, V) :- t(N, V);
"#;

#[test]
fn tables_persist_until_retracted_and_inserts_win() {
    let program = compile(TABLES);
    let run = program.run(
        &eot(5),
        r#"
        add("a", 1)@1;
        del("a", 1)@3;
        add("a", 2)@1;
        del("a", 2)@2;
        readd("a", 2)@2;
        "#,
    );
    assert_eq!(
        program.lines(&run, &["t"]),
        expect(&[
            r#"t("a", 1)@1;"#,
            r#"t("a", 2)@1;"#,
            r#"t("a", 1)@2;"#,
            r#"t("a", 2)@2;"#,
            // Retracted during tick 3: still there at 3, gone from 4 on.
            r#"t("a", 1)@3;"#,
            // Retracted during tick 2 and re-inserted by `@next` during tick 2: insert wins.
            r#"t("a", 2)@3;"#,
            r#"t("a", 2)@4;"#,
            r#"t("a", 2)@5;"#,
        ])
    );
}

#[test]
fn aggregates_see_the_complete_lower_stratum() {
    let program = compile(
        r#"
        base("a", 1)@1;
        base("b", 5)@1;
        step("a", 1, 2)@1;
        step("a", 2, 3)@1;
        step("a", 3, 3)@1;
        r(N, X) :- base(N, X);
        r(N, Y) :- r(N, X), step(N, X, Y);
        c(N, count<X>) :- r(N, X);
        lo(N, min<X>) :- r(N, X);
        hi(N, max<X>) :- r(N, X);
        total(N, sum<X>) :- r(N, X);
        "#,
    );
    let run = program.run(&eot(1), "");
    assert_eq!(
        program.lines(&run, &["c", "lo", "hi", "total"]),
        expect(&[
            r#"c("a", 3)@1;"#,
            r#"c("b", 1)@1;"#,
            r#"hi("a", 3)@1;"#,
            r#"hi("b", 5)@1;"#,
            r#"lo("a", 1)@1;"#,
            r#"lo("b", 5)@1;"#,
            r#"total("a", 6)@1;"#,
            r#"total("b", 5)@1;"#,
        ])
    );
}

#[test]
fn count_groups_by_the_other_head_columns_and_counts_distinct_values() {
    let program = compile(
        r#"
        vote("c", 1, "p", true)@1;
        vote("c", 1, "q", true)@1;
        vote("c", 1, "q", false)@1;
        vote("c", 2, "p", false)@1;
        yes(C, T, count<P>) :- vote(C, T, P, true);
        voters(C, T, count<P>) :- vote(C, T, P, _);
        "#,
    );
    let run = program.run(&eot(1), "");
    assert_eq!(
        program.lines(&run, &["yes", "voters"]),
        expect(&[
            r#"voters("c", 1, 2)@1;"#,
            r#"voters("c", 2, 1)@1;"#,
            r#"yes("c", 1, 2)@1;"#,
        ])
    );
}

#[test]
fn negation_sees_the_complete_lower_stratum() {
    let program = compile(
        r#"
        start("a", 1)@1;
        edge("a", 1, 2)@1;
        edge("a", 2, 3)@1;
        vertex("a", 1)@1;
        vertex("a", 2)@1;
        vertex("a", 3)@1;
        vertex("a", 4)@1;
        reach(N, X) :- start(N, X);
        reach(N, Y) :- reach(N, X), edge(N, X, Y);
        unreached(N, X) :- vertex(N, X), notin reach(N, X);
        sink(N, X) :- vertex(N, X), notin edge(N, X, _);
        "#,
    );
    let run = program.run(&eot(1), "");
    assert_eq!(
        program.lines(&run, &["unreached", "sink"]),
        expect(&[
            r#"sink("a", 3)@1;"#,
            r#"sink("a", 4)@1;"#,
            r#"unreached("a", 4)@1;"#,
        ])
    );
}

#[test]
fn arithmetic_comparisons_and_division_by_zero() {
    let program = compile(
        r#"
        n("a", 7)@1;
        n("a", 0)@1;
        n("a", -7)@1;
        half(N, X / 2) :- n(N, X);
        inverse(N, 14 / X) :- n(N, X);
        big(N, X) :- n(N, X), X * 2 > 3;
        succ(N, X) :- n(N, X), n(N, X - 7);
        "#,
    );
    let run = program.run(&eot(1), "");
    assert_eq!(
        program.lines(&run, &["half", "inverse", "big", "succ"]),
        expect(&[
            r#"big("a", 7)@1;"#,
            r#"half("a", -3)@1;"#,
            r#"half("a", 0)@1;"#,
            r#"half("a", 3)@1;"#,
            r#"inverse("a", -2)@1;"#,
            r#"inverse("a", 2)@1;"#,
            r#"succ("a", 0)@1;"#,
            r#"succ("a", 7)@1;"#,
        ])
    );
}

#[test]
fn pinned_atoms_read_their_tick() {
    let program = compile(
        r#"
        alive("a")@1;
        p("a", 10)@1;
        p("a", 30)@3;
        alive(N)@next :- alive(N);
        first(N, X) :- alive(N), p(N, X)@1;
        third(N, X) :- alive(N), p(N, X)@3;
        notyet(N) :- alive(N), notin p(N, _)@3;
        "#,
    );
    let run = program.run(&eot(4), "");
    assert_eq!(
        program.lines(&run, &["p", "first", "third", "notyet"]),
        expect(&[
            r#"first("a", 10)@1;"#,
            r#"notyet("a")@1;"#,
            r#"p("a", 10)@1;"#,
            r#"first("a", 10)@2;"#,
            r#"notyet("a")@2;"#,
            r#"first("a", 10)@3;"#,
            r#"p("a", 30)@3;"#,
            r#"third("a", 30)@3;"#,
            r#"first("a", 10)@4;"#,
            r#"third("a", 30)@4;"#,
        ])
    );
}

#[test]
fn quiescence_stops_when_the_next_base_repeats() {
    let program = compile(
        r#"
        table link(at: node, peer: node);
        table log(at: node, v: int);
        input start(at: node, v: int);
        msg(P, V)@async :- start(N, V), link(N, P);
        log(N, V) :- msg(N, V);
        "#,
    );
    let run = program.run(
        &RunConfig::default(),
        r#"link("a", "b")@1; start("a", 7)@1;"#,
    );
    // Tick 2 receives the message, tick 3 holds the log; tick 4 would repeat tick 3.
    assert_eq!((run.ticks_run, run.capped), (3, false));
}

#[test]
fn quiescence_with_a_message_resent_forever() {
    let program = compile(
        r#"
        table link(at: node, peer: node);
        table outbox(at: node, m: string);
        table log(at: node, from: node, m: string);
        deliver(P, N, M)@async :- outbox(N, M), link(N, P);
        log(N, F, M) :- deliver(N, F, M);
        "#,
    );
    let run = program.run(
        &RunConfig::default(),
        r#"link("a", "b")@1; outbox("a", "m")@1;"#,
    );
    assert_eq!((run.ticks_run, run.capped), (3, false));
}

#[test]
fn quiescence_does_not_stop_at_the_tick_of_a_drop() {
    // `a` starts sending at tick 2 and sends every tick after. The message sent at tick 2 is
    // lost, so base(3) equals base(2); but the resend at tick 3 arrives, so the run must go on.
    let program = compile(
        r#"
        table link(at: node, peer: node);
        table armed(at: node);
        table got(at: node, from: node);
        input start(at: node);
        armed(N)@next :- start(N);
        ping(P, N)@async :- armed(N), link(N, P);
        got(N, F) :- ping(N, F);
        "#,
    );
    let mut config = RunConfig::default();
    config.drops.insert(("a".into(), "b".into(), 2));
    let run = program.run(&config, r#"link("a", "b")@1; start("a")@1;"#);
    assert_eq!((run.ticks_run, run.capped), (5, false));
    let got = program.lines(&run, &["got"]);
    assert_eq!(
        got.first().map(String::as_str),
        Some(r#"got("b", "a")@4;"#),
        "{got:?}"
    );
}

#[test]
fn quiescence_waits_for_scheduled_facts_and_faults() {
    let program = compile(r#"p("a")@5;"#);
    let run = program.run(&RunConfig::default(), "");
    // Tick 6 is empty again, like tick 7 would be.
    assert_eq!((run.ticks_run, run.capped), (6, false));
    let mut config = RunConfig::default();
    config.crashes.insert("a".into(), 9);
    let run = program.run(&config, "");
    assert_eq!((run.ticks_run, run.capped), (9, false));
}

#[test]
fn the_tick_cap_is_flagged() {
    let program = compile(
        r#"
        c("a", 0)@1;
        c(N, X + 1)@next :- c(N, X);
        "#,
    );
    let config = RunConfig {
        max_ticks: 20,
        ..RunConfig::default()
    };
    let run = program.run(&config, "");
    assert_eq!((run.ticks_run, run.capped), (20, true));
    assert_eq!(
        program.lines(&run, &["c"]).last().map(String::as_str),
        Some(r#"c("a", 19)@20;"#)
    );
}

#[test]
fn molly_program_with_its_own_facts() {
    let program = compile(
        r#"
        node("a", "b")@1;
        node("a", "c")@1;
        node("b", "a")@1;
        node("b", "c")@1;
        node("c", "a")@1;
        node("c", "b")@1;
        bcast("a", "hello")@1;
        node(N, P)@next :- node(N, P);
        log(N, O, M)@next :- log(N, O, M);
        log(N, N, M) :- bcast(N, M);
        deliver(P, N, M)@async :- bcast(N, M), node(N, P);
        log(N, O, M) :- deliver(N, O, M);
        "#,
    );
    let mut config = eot(3);
    config.drops.insert(("a".into(), "c".into(), 1));
    let run = program.run(&config, "");
    let text = graft_eval::render_text(
        program.program(),
        &run,
        &ShowSet::Relations([program.rel("log")].into()),
    );
    assert_eq!(
        text,
        concat!(
            "log(\"a\", \"a\", \"hello\")@1;\n",
            "log(\"a\", \"a\", \"hello\")@2;\n",
            "log(\"b\", \"a\", \"hello\")@2;\n",
            "log(\"a\", \"a\", \"hello\")@3;\n",
            "log(\"b\", \"a\", \"hello\")@3;\n",
        )
    );
}

#[test]
fn default_show_set_is_outputs_or_everything_but_crash() {
    let declared = compile(TABLES);
    let shown = ShowSet::Default.relations(declared.program());
    assert_eq!(shown, [declared.rel("show")].into());
    let plain = compile(CRASHING);
    let shown = ShowSet::Default.relations(plain.program());
    assert!(!shown.contains(&plain.rel("crash")));
    assert!(shown.contains(&plain.rel("go")));
}

#[test]
fn recording_only_some_relations() {
    let program = compile(PING);
    let mut config = eot(2);
    config.record = graft_eval::Record::Relations([program.rel("got")].into());
    let run = program.run(&config, "");
    assert!(program.lines(&run, &["ping"]).is_empty());
    assert_eq!(
        program.lines(&run, &["got"]),
        expect(&[
            r#"got("a", "a")@2;"#,
            r#"got("b", "a")@2;"#,
            r#"got("c", "a")@2;"#
        ])
    );
}

#[test]
fn naive_and_semi_naive_agree_on_the_hand_written_programs() {
    for (source, workload) in [
        (PING, ""),
        (CRASHING, ""),
        (
            TABLES,
            r#"add("a", 1)@1; del("a", 1)@3; add("a", 2)@1; del("a", 2)@2; readd("a", 2)@2;"#,
        ),
    ] {
        let program = compile(source);
        let mut config = eot(5);
        config.crashes.insert("b".into(), 3);
        let semi = program.run(&config, workload);
        config.strategy = EvalStrategy::Naive;
        let naive = program.run(&config, workload);
        let all = ShowSet::All;
        assert_eq!(
            graft_eval::render_text(program.program(), &semi, &all),
            graft_eval::render_text(program.program(), &naive, &all)
        );
        assert_eq!(semi.messages, naive.messages);
    }
}

#[test]
fn a_program_with_errors_is_refused() {
    let mut sources = graft_language::span::SourceMap::new();
    let text = "p(X) :- q(Y);";
    let id = sources.add("bad.graft", text);
    let parsed = graft_language::parse(id, text);
    let checked = graft_compiler::check(&sources, &[parsed.file]);
    assert!(matches!(
        graft_eval::Evaluator::new(&checked),
        Err(graft_eval::EvalError::ProgramHasErrors { .. })
    ));
}

#[test]
fn rendering_orders_integers_by_value_and_strings_by_bytes() {
    let program = compile(
        r#"
        v("a", 10, "b")@1;
        v("a", 2, "b")@1;
        v("a", 2, "ab")@1;
        w("a", true)@1;
        w("a", false)@1;
        "#,
    );
    let run = program.run(&eot(1), "");
    assert_eq!(run.nodes, vec![s("a")]);
    assert!(run.holds(1, program.rel("v"), &[s("a"), i(10), s("b")]));
    assert_eq!(
        program.lines(&run, &["v", "w"]),
        expect(&[
            r#"v("a", 2, "ab")@1;"#,
            r#"v("a", 2, "b")@1;"#,
            r#"v("a", 10, "b")@1;"#,
            r#"w("a", false)@1;"#,
            r#"w("a", true)@1;"#,
        ])
    );
}

/// `a` writes 1 at tick 1 and 2 at tick 2 to `b`, which keeps the value it last received.
const LAST_WRITE: &str = r#"
    link("a", "b")@1;
    put("a", 1)@1;
    put("a", 2)@2;
    link(N, P)@next :- link(N, P);
    write(P, V)@async :- put(N, V), link(N, P);
    value(N, V)@next :- write(N, V);
    value(N, V)@next :- value(N, V), notin write(N, _);
"#;

#[test]
fn a_delayed_message_arrives_late_and_is_overtaken() {
    let program = compile(LAST_WRITE);
    // On time: 1 arrives at 2, 2 at 3, and `b` ends with 2.
    let run = program.run(&eot(5), "");
    assert_eq!(
        program.lines(&run, &["write", "value"]),
        expect(&[
            r#"write("b", 1)@2;"#,
            r#"value("b", 1)@3;"#,
            r#"write("b", 2)@3;"#,
            r#"value("b", 2)@4;"#,
            r#"value("b", 2)@5;"#,
        ])
    );
    // The write sent at 1, two ticks late, arrives at 1 + 1 + 2 = 4, after the write sent at
    // 2 (arriving at 3): `b` ends with the older value.
    let mut config = eot(5);
    config.delays.insert(("a".into(), "b".into(), 1), 2);
    let run = program.run(&config, "");
    assert_eq!(
        program.lines(&run, &["write", "value"]),
        expect(&[
            r#"write("b", 2)@3;"#,
            r#"value("b", 2)@4;"#,
            r#"write("b", 1)@4;"#,
            r#"value("b", 1)@5;"#,
        ])
    );
    let log: Vec<(u64, u64, Fate, u64)> = run
        .messages
        .iter()
        .map(|message| {
            (
                message.send_tick,
                message.delay,
                message.fate,
                message.arrival(),
            )
        })
        .collect();
    assert_eq!(
        log,
        vec![(1, 2, Fate::Delivered, 4), (2, 0, Fate::Delivered, 3)]
    );
    // A delay at a tick with no message, or on a node's messages to itself, changes nothing.
    let mut config = eot(5);
    config.delays.insert(("a".into(), "b".into(), 3), 4);
    config.delays.insert(("b".into(), "b".into(), 1), 4);
    assert_eq!(
        program.lines(&program.run(&config, ""), &["write", "value"]),
        program.lines(&program.run(&eot(5), ""), &["write", "value"])
    );
}

#[test]
fn quiescence_waits_for_delayed_messages() {
    let program = compile(LAST_WRITE);
    // On time, base(5) = base(4) = {link, value(b, 2)}: 4 ticks.
    let run = program.run(&RunConfig::default(), "");
    assert_eq!((run.ticks_run, run.capped), (4, false));
    // Delayed, the last arrival is at 4; base(6) = base(5) = {link, value(b, 1)}: 5 ticks.
    let mut config = RunConfig::default();
    config.delays.insert(("a".into(), "b".into(), 1), 2);
    let run = program.run(&config, "");
    assert_eq!((run.ticks_run, run.capped), (5, false));
    // A message delayed far past the others keeps the run going until it arrives, though
    // the bases in between repeat.
    let mut config = RunConfig::default();
    config.delays.insert(("a".into(), "b".into(), 2), 6);
    let run = program.run(&config, "");
    assert_eq!((run.ticks_run, run.capped), (10, false));
    assert_eq!(
        program.lines(&run, &["write"]),
        expect(&[r#"write("b", 1)@2;"#, r#"write("b", 2)@9;"#])
    );
}

#[test]
fn delays_meet_omissions_and_crashes() {
    let program = compile(LAST_WRITE);
    let fates = |config: &RunConfig| -> Vec<(u64, Fate, u64)> {
        program
            .run(config, "")
            .messages
            .iter()
            .map(|message| (message.send_tick, message.fate, message.delay))
            .collect()
    };
    // An omission wins over a delay: the message is lost.
    let mut config = eot(5);
    config.delays.insert(("a".into(), "b".into(), 1), 2);
    config.drops.insert(("a".into(), "b".into(), 1));
    assert_eq!(
        fates(&config),
        vec![(1, Fate::Omitted, 2), (2, Fate::Delivered, 0)]
    );
    // Strict crashes: `b` crashed at 4 receives nothing that would arrive at 4 or later, so
    // the late write is lost while the on-time one (arriving at 3) is delivered.
    let mut config = eot(5);
    config.delays.insert(("a".into(), "b".into(), 1), 2);
    config.crashes.insert("b".into(), 4);
    config.crash_model = CrashModel::Strict;
    assert_eq!(
        fates(&config),
        vec![(1, Fate::ReceiverCrashed, 2), (2, Fate::Delivered, 0)]
    );
    // Molly's crashes: a crashed receiver still receives, late or not; a sender crashed by
    // the send tick sends nothing, delayed or not.
    let mut config = eot(5);
    config.delays.insert(("a".into(), "b".into(), 1), 2);
    config.crashes.insert("b".into(), 2);
    assert_eq!(
        fates(&config),
        vec![(1, Fate::Delivered, 2), (2, Fate::Delivered, 0)]
    );
    let mut config = eot(5);
    config.delays.insert(("a".into(), "b".into(), 2), 2);
    config.crashes.insert("a".into(), 2);
    assert_eq!(
        fates(&config),
        vec![(1, Fate::Delivered, 0), (2, Fate::SenderCrashed, 2)]
    );
}
