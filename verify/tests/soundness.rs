//! LDFI against exhaustive enumeration on small programs and bounds, with and without
//! symmetry and with and without leaving out covered candidates: a search that certifies must be right (no schedule within the bounds violates
//! the specification), and one that finds a counterexample must find a real one. Also the
//! node set given with `Verifier::with_exact_nodes`, the effective faults of a run and the
//! classes of interchangeable nodes.

use std::collections::{BTreeMap, BTreeSet};

use graft_verify::{Bounds, Delay, Drop, FaultSet, SearchOptions, Verdict, Verifier};

/// Retransmission until acknowledged; `post` needs every neighbour of a logging node to log.
/// Correct without crashes when retries outlast EFF; a crash of the sender after reaching one
/// neighbour but not the other violates it.
const RETRY: &str = r#"
node("a", "b")@1;
node("a", "c")@1;
bcast("a", "m")@1;
node(N, P)@next :- node(N, P);
log(N, M)@next :- log(N, M);
ack(N, P, M)@next :- ack(N, P, M);
log(N, M) :- bcast(N, M);
msg(P, N, M)@async :- log(N, M), node(N, P), notin ack(N, P, M);
log(N, M) :- msg(N, _, M);
ack(S, R, M)@async :- msg(R, S, M);
missing(N, M) :- log(X, M), node(X, N), notin log(N, M);
pre(N, M) :- log(N, M), notin crash(N, N, _);
post(N, M) :- log(N, M), notin missing(_, M);
"#;

/// A coordinator asks three voters until two votes are in (a `count` read against a constant
/// bound, under a negation). Correct when retries outlast EFF.
const QUORUM: &str = r#"
voter("c", "v1")@1;
voter("c", "v2")@1;
voter("c", "v3")@1;
go("c")@1;
voter(C, V)@next :- voter(C, V);
asked(C)@next :- go(C);
asked(C)@next :- asked(C);
req(V, C)@async :- go(C), voter(C, V);
req(V, C)@async :- asked(C), voter(C, V), notin decided(C);
vote(C, V)@async :- req(V, C);
votes(C, V) :- vote(C, V);
votes(C, V)@next :- votes(C, V);
tally(C, count<V>) :- votes(C, V);
decided(C) :- tally(C, K), K >= 2;
decided(C)@next :- decided(C);
pre(C) :- asked(C), notin crash(C, C, _);
post(C) :- decided(C);
"#;

/// Sent once, no retries: any lost message violates `post`.
const ONCE: &str = r#"
node("a", "b")@1;
node("a", "c")@1;
bcast("a", "m")@1;
node(N, P)@next :- node(N, P);
log(N, M)@next :- log(N, M);
log(N, M) :- bcast(N, M);
msg(P, N, M)@async :- bcast(N, M), node(N, P);
log(N, M) :- msg(N, _, M);
pre(N, P, M) :- log(N, M), node(N, P), notin crash(N, N, _), notin crash(N, P, _);
post(N, P, M) :- log(N, M), node(N, P), log(P, M);
"#;

/// A coordinator c precommits transaction t at agents p and q, waits for their
/// acknowledgements until tick 3 and decides there: commit when both acknowledged, abort
/// otherwise; it tells the agents. A precommitted agent that hears nothing by tick 5 commits
/// on its own. With one crash it is correct. With two, an agent crashed at tick 2 loses its
/// acknowledgement, so c decides abort at tick 3, and c crashed at tick 3 loses the abort it
/// sends then; in Molly's crash model a crashed node still derives locally, so c's abort
/// stands while both agents commit at tick 5. (The same schedule shape as Molly's 3PC
/// under two crashes; see docs/verification.md.)
const MUTE_COORDINATOR: &str = r#"
agent("c", "p")@1;
agent("c", "q")@1;
begin("c", "t")@1;
agent(C, A)@next :- agent(C, A);
precommit(A, C, X)@async :- begin(C, X), agent(C, A);
ack(C, A, X)@async :- precommit(A, C, X);
acked(C, A, X) :- ack(C, A, X);
acked(C, A, X)@next :- acked(C, A, X);
waiting(C, X, 2)@next :- begin(C, X);
waiting(C, X, N - 1)@next :- waiting(C, X, N), N > 1;
deadline(C, X) :- waiting(C, X, 1);
unacked(C, X) :- deadline(C, X), agent(C, A), notin acked(C, A, X);
abort(C, X) :- unacked(C, X);
commit(C, X) :- deadline(C, X), notin unacked(C, X);
abort(A, X)@async :- abort(C, X), agent(C, A);
commit(A, X)@async :- commit(C, X), agent(C, A);
precommitted(A, C, X) :- precommit(A, C, X);
precommitted(A, C, X)@next :- precommitted(A, C, X);
patience(A, X, 3)@next :- precommit(A, _, X);
patience(A, X, N - 1)@next :- patience(A, X, N), N > 1;
commit(A, X) :- patience(A, X, 1), precommitted(A, _, X), notin abort(A, X);
abort(N, X)@next :- abort(N, X);
commit(N, X)@next :- commit(N, X);
decision(N, X, "commit") :- commit(N, X);
decision(N, X, "abort") :- abort(N, X);
split(X) :- decision(_, X, V), decision(_, X, W), V != W;
pre("agree", X) :- decision(_, X, _);
post("agree", X) :- decision(_, X, _), notin split(X);
"#;

fn checked(text: &str) -> graft_compiler::Checked {
    let mut read = |_: &str| Ok::<String, String>(text.to_string());
    let loaded = graft_language::loader::load_program(&["test.ded".to_string()], &mut read);
    assert!(
        loaded.diagnostics.is_empty(),
        "the test program does not load"
    );
    let checked = graft_compiler::check(&loaded.sources, &loaded.files);
    assert!(!checked.has_errors(), "the test program does not check");
    checked
}

fn verifier(text: &str, nodes: &[&str], exact: bool, bounds: Bounds) -> Verifier {
    let checked = checked(text);
    let nodes: BTreeSet<String> = nodes.iter().map(|node| (*node).to_string()).collect();
    let made = if exact {
        Verifier::with_exact_nodes(&checked, Vec::new(), nodes, bounds)
    } else {
        Verifier::new(&checked, Vec::new(), nodes, bounds)
    };
    made.unwrap_or_else(|error| panic!("{error}"))
}

/// Every schedule within the bounds (omissions between nodes at ticks before EFF, at most
/// `crashes` crashed nodes), up to omissions of messages that are not sent: tick by tick,
/// every subset of the channels the run so far uses at that tick. Returns the first that
/// violates the specification, and the number of runs.
fn exhaustive(verifier: &Verifier) -> (Option<FaultSet>, usize) {
    let bounds = verifier.bounds;
    let nodes = verifier.nodes().to_vec();
    // Every set of at most `crashes` nodes, each crashed at some tick of 1..=EOT.
    let mut crashes: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new()];
    let mut frontier = crashes.clone();
    for _ in 0..bounds.crashes {
        let mut larger = Vec::new();
        for crash in &frontier {
            // Only nodes after those already crashed, so that each set is made once.
            let last = crash.keys().next_back();
            for node in nodes.iter().filter(|node| Some(*node) > last) {
                for tick in 1..=bounds.eot {
                    let mut extended = crash.clone();
                    extended.insert(node.clone(), tick);
                    larger.push(extended);
                }
            }
        }
        crashes.extend(larger.iter().cloned());
        frontier = larger;
    }
    let mut runs = 0;
    for crash in crashes {
        let faults = FaultSet {
            drops: BTreeSet::new(),
            crashes: crash,
            ..FaultSet::default()
        };
        if let Some(found) = explore(verifier, &nodes, faults, 1, &mut runs) {
            return (Some(found), runs);
        }
    }
    (None, runs)
}

fn explore(
    verifier: &Verifier,
    nodes: &[String],
    mut faults: FaultSet,
    tick: u64,
    runs: &mut usize,
) -> Option<FaultSet> {
    faults.normalise();
    let execution = verifier.execute(&faults).expect("run");
    *runs += 1;
    assert!(*runs < 200_000, "too many schedules");
    if !execution.violations.is_empty() {
        return Some(faults);
    }
    if tick >= verifier.bounds.eff {
        return None;
    }
    let channels: BTreeSet<(String, String)> = execution
        .run
        .messages
        .iter()
        .filter(|message| message.send_tick == tick && message.fate.is_delivered())
        .filter_map(|message| Some((message.sender.as_str()?, message.dest.as_str()?)))
        .filter(|(from, to)| from != to && nodes.iter().any(|node| node == from))
        .filter(|(_, to)| nodes.iter().any(|node| node == to))
        .map(|(from, to)| (from.to_string(), to.to_string()))
        .collect();
    let channels: Vec<(String, String)> = channels.into_iter().collect();
    assert!(channels.len() < 16, "too many channels");
    // Each channel's messages of this tick: on time, lost, or late by 1..=D ticks.
    let choices = 2 + verifier.bounds.max_delay;
    let schedules = choices.pow(u32::try_from(channels.len()).expect("few channels"));
    for mut code in 0..schedules {
        let mut next = faults.clone();
        for (from, to) in &channels {
            let choice = code % choices;
            code /= choices;
            if choice == 1 {
                next.drops.insert(Drop {
                    from: from.clone(),
                    to: to.clone(),
                    tick,
                });
            } else if choice >= 2 {
                next.delays.insert(Delay {
                    from: from.clone(),
                    to: to.clone(),
                    tick,
                    by: choice - 1,
                });
            }
        }
        // The empty subset repeats this run at the next tick.
        if let Some(found) = explore(verifier, nodes, next, tick + 1, runs) {
            return Some(found);
        }
    }
    None
}

#[test]
fn ldfi_agrees_with_exhaustive_search() {
    let cases: &[(&str, &str, Bounds)] = &[
        (
            "retry",
            RETRY,
            Bounds {
                eot: 6,
                eff: 3,
                crashes: 0,
                max_delay: 0,
            },
        ),
        (
            "retry",
            RETRY,
            Bounds {
                eot: 5,
                eff: 4,
                crashes: 0,
                max_delay: 0,
            },
        ),
        (
            "retry",
            RETRY,
            Bounds {
                eot: 6,
                eff: 3,
                crashes: 1,
                max_delay: 0,
            },
        ),
        (
            "retry",
            RETRY,
            Bounds {
                eot: 4,
                eff: 3,
                crashes: 0,
                max_delay: 0,
            },
        ),
        (
            "quorum",
            QUORUM,
            Bounds {
                eot: 6,
                eff: 3,
                crashes: 0,
                max_delay: 0,
            },
        ),
        (
            "quorum",
            QUORUM,
            Bounds {
                eot: 5,
                eff: 4,
                crashes: 0,
                max_delay: 0,
            },
        ),
        (
            "quorum",
            QUORUM,
            Bounds {
                eot: 6,
                eff: 2,
                crashes: 1,
                max_delay: 0,
            },
        ),
        (
            "quorum",
            QUORUM,
            Bounds {
                eot: 4,
                eff: 3,
                crashes: 1,
                max_delay: 0,
            },
        ),
        (
            "once",
            ONCE,
            Bounds {
                eot: 3,
                eff: 2,
                crashes: 0,
                max_delay: 0,
            },
        ),
        (
            "once",
            ONCE,
            Bounds {
                eot: 4,
                eff: 0,
                crashes: 1,
                max_delay: 0,
            },
        ),
    ];
    let mut verdicts = BTreeMap::new();
    for (name, text, bounds) in cases {
        let verifier = verifier(text, &[], false, *bounds);
        let (truth, runs) = exhaustive(&verifier);
        for (symmetry, skip_covered) in [(false, true), (true, true), (false, false)] {
            let options = SearchOptions {
                symmetry,
                skip_covered,
                ..SearchOptions::default()
            };
            let search = verifier.ldfi(&options, &mut |_| {}).expect("search");
            let agree = match search.verdict {
                Verdict::Certified => truth.is_none(),
                Verdict::Counterexample => truth.is_some(),
                Verdict::Inconclusive => false,
            };
            assert!(
                agree,
                "{name} at {bounds:?} (symmetry {symmetry}, skip covered {skip_covered}): LDFI {:?} after {} runs, \
                 exhaustive search found {:?} in {runs}",
                search.verdict, search.executions, truth
            );
            *verdicts
                .entry(format!("{name} {:?}", search.verdict))
                .or_insert(0) += 1;
        }
    }
    // Both outcomes are exercised for every program.
    assert_eq!(
        verdicts.keys().cloned().collect::<Vec<_>>(),
        [
            "once Certified",
            "once Counterexample",
            "quorum Certified",
            "quorum Counterexample",
            "retry Certified",
            "retry Counterexample"
        ]
    );
}

/// A replica that serves the write that arrived last (of writes arriving together, the
/// highest version): rolled back when an older write arrives after a newer one.
const ARRIVAL_ORDER: &str = r#"
replica("w", "r")@1;
write("w", 1)@1;
write("w", 2)@2;
write("w", 3)@3;
replica(W, R)@next :- replica(W, R);
set(R, W, V)@async :- write(W, V), replica(W, R);
applied(R, V) :- set(R, _, V);
applied(R, V)@next :- applied(R, V);
newest(R, max<V>) :- set(R, _, V);
current(R, V)@next :- newest(R, V);
current(R, V)@next :- current(R, V), notin newest(R, _);
newer(R, V) :- current(R, V), applied(R, W), W > V;
pre(R) :- current(R, _), notin crash(R, R, _);
post(R) :- current(R, V), notin newer(R, V);
"#;

/// The same replica serving the highest version it applied: correct however late messages are.
const HIGHEST_VERSION: &str = r#"
replica("w", "r")@1;
write("w", 1)@1;
write("w", 2)@2;
write("w", 3)@3;
replica(W, R)@next :- replica(W, R);
set(R, W, V)@async :- write(W, V), replica(W, R);
applied(R, V) :- set(R, _, V);
applied(R, V)@next :- applied(R, V);
top(R, max<V>) :- applied(R, V);
current(R, V) :- top(R, V);
newer(R, V) :- current(R, V), applied(R, W), W > V;
pre(R) :- current(R, _), notin crash(R, R, _);
post(R) :- current(R, V), notin newer(R, V);
"#;

#[test]
fn ldfi_with_late_messages_agrees_with_exhaustive_search() {
    let bounds = |eot, eff, crashes, max_delay| Bounds {
        eot,
        eff,
        crashes,
        max_delay,
    };
    let cases: &[(&str, &str, Bounds)] = &[
        ("arrival order", ARRIVAL_ORDER, bounds(6, 4, 0, 2)),
        // A delay of one tick makes the writes of two ticks arrive together: no roll-back.
        ("arrival order", ARRIVAL_ORDER, bounds(6, 4, 0, 1)),
        ("arrival order", ARRIVAL_ORDER, bounds(6, 4, 1, 0)),
        ("highest version", HIGHEST_VERSION, bounds(6, 4, 1, 2)),
        ("retry", RETRY, bounds(5, 3, 0, 1)),
        ("retry", RETRY, bounds(6, 2, 0, 2)),
        ("quorum", QUORUM, bounds(5, 2, 0, 1)),
        ("once", ONCE, bounds(4, 2, 0, 1)),
    ];
    let mut verdicts = Vec::new();
    for (name, text, bounds) in cases {
        let verifier = verifier(text, &[], false, *bounds);
        let (truth, runs) = exhaustive(&verifier);
        let search = verifier
            .ldfi(&SearchOptions::default(), &mut |_| {})
            .expect("search");
        let agree = match search.verdict {
            Verdict::Certified => truth.is_none(),
            Verdict::Counterexample => truth.is_some(),
            Verdict::Inconclusive => false,
        };
        assert!(
            agree,
            "{name} at {bounds:?}: LDFI {:?} after {} runs, exhaustive search found {:?} in {runs}",
            search.verdict, search.executions, truth
        );
        // A counterexample is real: running its faults again violates the specification.
        for found in &search.counterexamples {
            let again = verifier.execute(&found.execution.faults).expect("run");
            assert!(!again.violations.is_empty());
        }
        verdicts.push(format!(
            "{name} D={}: {:?}",
            bounds.max_delay, search.verdict
        ));
    }
    assert_eq!(
        verdicts,
        [
            "arrival order D=2: Counterexample",
            "arrival order D=1: Certified",
            "arrival order D=0: Certified",
            "highest version D=2: Certified",
            "retry D=1: Certified",
            "retry D=2: Certified",
            "quorum D=1: Certified",
            "once D=1: Counterexample",
        ]
    );
}

/// The decisions of `run` at `tick`, as `node=decision`, sorted.
fn decisions(
    run: &graft_eval::Run,
    program: &graft_compiler::ir::Program,
    tick: u64,
) -> Vec<String> {
    let decision = program
        .relation_by_name("decision")
        .expect("a decision relation");
    let mut decisions: Vec<String> = run
        .facts(tick, decision)
        .iter()
        .map(|fact| format!("{}={}", fact[0], fact[2]))
        .collect();
    decisions.sort();
    decisions
}

#[test]
fn a_coordinator_crashed_as_it_decides_still_decides() {
    let bounds = |crashes| Bounds {
        eot: 6,
        eff: 0,
        crashes,
        max_delay: 0,
    };
    let nodes = ["c", "p", "q"];
    // Correct under one crash; LDFI and the enumeration of every schedule agree.
    for crashes in [1, 2] {
        let verifier = verifier(MUTE_COORDINATOR, &nodes, true, bounds(crashes));
        let (truth, _) = exhaustive(&verifier);
        let search = verifier
            .ldfi(&SearchOptions::default(), &mut |_| {})
            .expect("search");
        let expected = if crashes == 1 {
            Verdict::Certified
        } else {
            Verdict::Counterexample
        };
        assert_eq!(search.verdict, expected, "{crashes} crashes");
        assert_eq!(
            truth.is_some(),
            crashes == 2,
            "{crashes} crashes: {truth:?}"
        );
    }
    let verifier = verifier(MUTE_COORDINATOR, &nodes, true, bounds(2));
    let search = verifier
        .ldfi(&SearchOptions::default(), &mut |_| {})
        .expect("search");
    let found = &search.counterexamples[0].execution;
    assert_eq!(found.faults.to_string(), "crash c@3, crash p@2");
    let violations: Vec<String> = found
        .violations
        .iter()
        .map(|violation| format!("{} at {}", violation.text, violation.tick))
        .collect();
    assert_eq!(violations, [r#"post("agree", "t") at 6"#]);
    // The search got there by extending a good run: p's crash alone makes c abort, and the
    // abort reaches both agents. Only the lineage of `split` appearing (why-not provenance)
    // points at c's abort messages.
    let good_first: Vec<String> = search
        .log
        .iter()
        .take_while(|record| record.violations.is_empty())
        .map(|record| {
            record
                .crashes
                .iter()
                .map(|crash| format!("{}@{}", crash.node, crash.tick))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    assert!(good_first.contains(&"p@2".to_string()), "{good_first:?}");
    // In Molly's crash model the crashed coordinator still derives its abort (its own state
    // carries on; only its messages from tick 3 on are lost), so it counts as a decision.
    let program = verifier.program();
    assert_eq!(
        decisions(&found.run, program, 6),
        [r#""c"="abort""#, r#""p"="commit""#, r#""q"="commit""#]
    );
    // A crash one tick later lets the abort out: both agents abort.
    let later = FaultSet {
        drops: BTreeSet::new(),
        crashes: BTreeMap::from([("c".to_string(), 4), ("p".to_string(), 2)]),
        ..FaultSet::default()
    };
    let run = verifier.execute(&later).expect("run");
    assert!(run.violations.is_empty());
    assert_eq!(
        decisions(&run.run, program, 6),
        [r#""c"="abort""#, r#""p"="abort""#, r#""q"="abort""#]
    );
    // Under the strict crash model the coordinator holds nothing from its crash on: it never
    // decides, and the agents' commits agree.
    let evaluator = graft_eval::Evaluator::new(&checked(MUTE_COORDINATOR)).expect("evaluator");
    let config = graft_eval::RunConfig {
        exact_nodes: true,
        extra_nodes: nodes.iter().map(|node| (*node).to_string()).collect(),
        crashes: found.faults.crashes.clone(),
        crash_model: graft_eval::CrashModel::Strict,
        ..graft_eval::RunConfig::with_eot(6)
    };
    let strict = evaluator.run(&config, &[]).expect("strict run");
    assert_eq!(
        decisions(&strict, evaluator.program(), 6),
        [r#""q"="commit""#]
    );
}

#[test]
fn exact_nodes_leave_out_data_values() {
    let bounds = Bounds {
        eot: 4,
        eff: 2,
        crashes: 1,
        max_delay: 0,
    };
    // `msg`'s location column makes "m" a node by default.
    let program = format!("{ONCE}\nlate(\"m\", 1)@1;\n");
    let loose = verifier(&program, &[], false, bounds);
    assert!(loose.nodes().contains(&"m".to_string()));
    let exact = verifier(&program, &["a", "b", "c"], true, bounds);
    assert_eq!(exact.nodes(), ["a", "b", "c"]);
    // n = 3, s = 4, EOT 4, EFF 2, c = 1: 3 · (4^2)^2 · (1 + 4 + 16 + 16 + 16) = 40704.
    assert_eq!(exact.fault_space().to_string(), "40704");
    let search = exact
        .ldfi(&SearchOptions::default(), &mut |_| {})
        .expect("search");
    assert_eq!(search.verdict, Verdict::Counterexample);
    for record in &search.log {
        assert!(record.crashes.iter().all(|crash| crash.node != "m"));
        assert!(
            record
                .drops
                .iter()
                .all(|drop| drop.from != "m" && drop.to != "m")
        );
    }
}

#[test]
fn effective_faults_keep_only_what_changed_the_run() {
    let bounds = Bounds {
        eot: 5,
        eff: 3,
        crashes: 1,
        max_delay: 0,
    };
    let verifier = verifier(RETRY, &[], false, bounds);
    let mut faults = FaultSet::default();
    // b sends nothing to c: this omission changes nothing.
    faults.drops.insert(Drop {
        from: "b".into(),
        to: "c".into(),
        tick: 1,
    });
    faults.drops.insert(Drop {
        from: "a".into(),
        to: "b".into(),
        tick: 1,
    });
    let run = verifier.run(&faults).expect("run");
    let effective = verifier.effective(&faults, &run);
    assert_eq!(effective.to_string(), "drop a->b@1");
    // The program reads `crash` but not its tick: a crash of c (which only acknowledges, at
    // ticks 2 and 3) at tick 4 is the crash at EOT; at tick 1, the crash at its first lost
    // send.
    let late = FaultSet {
        drops: BTreeSet::new(),
        crashes: BTreeMap::from([("c".to_string(), 4)]),
        ..FaultSet::default()
    };
    let run = verifier.run(&late).expect("run");
    assert_eq!(verifier.effective(&late, &run).to_string(), "crash c@5");
    let early = FaultSet {
        drops: BTreeSet::new(),
        crashes: BTreeMap::from([("c".to_string(), 1)]),
        ..FaultSet::default()
    };
    let run = verifier.run(&early).expect("run");
    assert_eq!(verifier.effective(&early, &run).to_string(), "crash c@2");
    assert_eq!(
        verifier
            .run(&verifier.effective(&early, &run))
            .expect("run")
            .messages,
        run.messages
    );
}

#[test]
fn interchangeable_nodes_are_found() {
    let bounds = Bounds {
        eot: 4,
        eff: 2,
        crashes: 0,
        max_delay: 0,
    };
    let classes = |text: &str| {
        verifier(text, &[], false, bounds)
            .symmetry()
            .classes
            .clone()
    };
    // a broadcasts to b and c, which play the same part.
    assert_eq!(classes(RETRY), [["b", "c"]]);
    assert_eq!(classes(QUORUM), [["v1", "v2", "v3"]]);
    // A rule naming b, or a fact only b has, tells them apart.
    assert!(classes(&format!("{RETRY}\nspecial(N) :- log(N, _), N == \"b\";\n")).is_empty());
    assert!(classes(&format!("{RETRY}\nnode(\"b\", \"a\")@1;\n")).is_empty());
    // So does ordering node names.
    assert!(
        classes(&format!(
            "{RETRY}\nfirst(N) :- log(N, _), log(P, _), N < P;\n"
        ))
        .is_empty()
    );
}
