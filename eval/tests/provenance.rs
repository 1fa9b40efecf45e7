//! Why-provenance: rule firings with their body facts, messages with sender and send tick,
//! `@next` carries, persisted table facts, aggregates, and absent facts under `notin`.

mod common;

use common::{compile, s};
use graft_compiler::ir::{RelId, RuleId};
use graft_eval::{Absent, Derivation, FactRef, RuleFiring, Run, RunConfig};

const PROGRAM: &str = r#"
    table link(at: node, peer: node);
    input go(at: node);
    input blocked(at: node, from: node);
    table seen(at: node, from: node);
    ping(P, N)@async :- go(N), link(N, P);
    seen(N, S) :- ping(N, S), notin blocked(N, S);
    echo(N, S)@next :- seen(N, S);
    heard(N, count<S>) :- seen(N, S);
    lonely(N) :- go(N), notin seen(N, _);
"#;

#[track_caller]
fn fact(run: &Run, tick: u64, rel: RelId, values: &[&str]) -> FactRef {
    let values: Vec<_> = values.iter().map(|value| s(value)).collect();
    match run.find(tick, rel, &values) {
        Some(found) => found,
        None => panic!("no fact {values:?} of relation {} at tick {tick}", rel.0),
    }
}

#[test]
fn every_kind_of_derivation_is_recorded() {
    let program = compile(PROGRAM);
    let config = RunConfig {
        provenance: true,
        ..RunConfig::with_eot(3)
    };
    let run = program.run(&config, r#"link("a", "b")@1; go("a")@1;"#);
    let [link, go, blocked, seen, ping, echo, heard] =
        ["link", "go", "blocked", "seen", "ping", "echo", "heard"].map(|name| program.rel(name));

    let link1 = fact(&run, 1, link, &["a", "b"]);
    assert!(matches!(run.derivations(link1), [Derivation::Given { .. }]));
    let link2 = fact(&run, 2, link, &["a", "b"]);
    assert_eq!(
        run.derivations(link2),
        [Derivation::Persisted { from: link1 }]
    );

    let go1 = fact(&run, 1, go, &["a"]);
    let ping2 = fact(&run, 2, ping, &["b", "a"]);
    assert_eq!(
        run.derivations(ping2),
        [Derivation::Message {
            sender: s("a"),
            send_tick: 1,
            firing: RuleFiring {
                rule: RuleId(0),
                body: vec![go1, link1],
                absent: vec![],
            },
        }]
    );

    let seen2 = fact(&run, 2, seen, &["b", "a"]);
    assert_eq!(
        run.derivations(seen2),
        [Derivation::Rule(RuleFiring {
            rule: RuleId(1),
            body: vec![ping2],
            absent: vec![Absent {
                tick: 2,
                rel: blocked,
                pattern: vec![Some(s("b")), Some(s("a"))],
            }],
        })]
    );

    // At tick 3 the message is gone: the table fact holds only by persistence.
    let seen3 = fact(&run, 3, seen, &["b", "a"]);
    assert_eq!(
        run.derivations(seen3),
        [Derivation::Persisted { from: seen2 }]
    );

    let echo3 = fact(&run, 3, echo, &["b", "a"]);
    assert_eq!(
        run.derivations(echo3),
        [Derivation::Next(RuleFiring {
            rule: RuleId(2),
            body: vec![seen2],
            absent: vec![],
        })]
    );

    let heard2 = match run.find(2, heard, &[s("b"), graft_compiler::ir::Value::Int(1)]) {
        Some(found) => found,
        None => panic!("no heard(b, 1) at tick 2"),
    };
    assert_eq!(
        run.derivations(heard2),
        [Derivation::Aggregate(RuleFiring {
            rule: RuleId(3),
            body: vec![seen2],
            absent: vec![],
        })]
    );

    // A negated atom with a wildcard records `None` for it.
    let lonely1 = fact(&run, 1, program.rel("lonely"), &["a"]);
    assert_eq!(
        run.derivations(lonely1),
        [Derivation::Rule(RuleFiring {
            rule: RuleId(4),
            body: vec![go1],
            absent: vec![Absent {
                tick: 1,
                rel: seen,
                pattern: vec![Some(s("a")), None],
            }],
        })]
    );

    // Body references resolve to the facts they name.
    assert_eq!(
        run.fact(link1).map(|tuple| tuple.to_vec()),
        Some(vec![s("a"), s("b")])
    );
}

#[test]
fn a_fact_derived_several_ways_lists_every_firing_once() {
    let program = compile(
        r#"
        e("a", 1)@1;
        e("a", 2)@1;
        f("a", 1)@1;
        p(N) :- e(N, _);
        p(N) :- f(N, _);
        q(N, X) :- e(N, X);
        q(N, X) :- q(N, X), e(N, X);
        "#,
    );
    let config = RunConfig {
        provenance: true,
        ..RunConfig::with_eot(1)
    };
    let run = program.run(&config, "");
    let p = fact(&run, 1, program.rel("p"), &["a"]);
    let rules: Vec<RuleId> = run
        .derivations(p)
        .iter()
        .map(|derivation| match derivation {
            Derivation::Rule(firing) => firing.rule,
            other => panic!("unexpected derivation {other:?}"),
        })
        .collect();
    assert_eq!(rules, vec![RuleId(0), RuleId(0), RuleId(1)]);
    // The recursive rule fires once per fact (q(a, 1) from itself and e(a, 1)).
    let q = match run.find(
        1,
        program.rel("q"),
        &[s("a"), graft_compiler::ir::Value::Int(1)],
    ) {
        Some(found) => found,
        None => panic!("no q(a, 1)"),
    };
    assert_eq!(run.derivations(q).len(), 2);
}

#[test]
fn without_provenance_nothing_is_recorded() {
    let program = compile(PROGRAM);
    let run = program.run(&RunConfig::with_eot(2), r#"link("a", "b")@1; go("a")@1;"#);
    assert!(run.provenance.is_none());
    let link1 = fact(&run, 1, program.rel("link"), &["a", "b"]);
    assert!(run.derivations(link1).is_empty());
}
