//! `quorum` changes only quorums: a constant is accepted only when a count (or a threshold
//! that a `require` relates to one) is compared against it.

use graft_rewrites::{PassSpec, check, check_text, parse_pass};

const PROGRAM: &str = "role leader;\nrole voter;\nconst N = 3;\nconst QUORUM = 2;\nconst TIMEOUT = 4;\nconst LIMIT = 9;\nrequire 2 * QUORUM > N;\ninput table voter_of(at: leader, v: voter);\ninput request(at: leader, id: int);\ninput table clock(at: leader, id: int, t: int);\nchannel vote(at: leader, from: voter, id: int);\ntable votes(at: leader, id: int, from: voter);\nscratch tally(at: leader, id: int, n: int);\nscratch copied(at: leader, id: int, n: int);\noutput table decided(at: leader, id: int);\noutput table late(at: leader, id: int);\noutput table capped(at: leader, id: int, n: int);\nvotes(L, Id, V) :- vote(L, V, Id);\ntally(L, Id, count<V>) :- votes(L, Id, V);\ncopied(L, Id, K) :- tally(L, Id, K);\ndecided(L, Id) :- copied(L, Id, K), K >= QUORUM;\nlate(L, Id) :- clock(L, Id, T), T > TIMEOUT;\ncapped(L, Id, LIMIT) :- request(L, Id);\n";

/// The failed preconditions of a request (empty when it applies).
fn names(request: &str) -> Vec<&'static str> {
    let (checked, _) = check_text("p.graft", PROGRAM);
    assert!(!checked.has_errors());
    let spec: PassSpec = parse_pass(request).expect(request);
    check(&checked, &spec).map_or_else(|refusal| refusal.names(), |_| Vec::new())
}

#[test]
fn a_count_compared_through_a_copy_makes_a_quorum() {
    assert_eq!(names("quorum(QUORUM=3)"), Vec::<&str>::new());
}

#[test]
fn a_constant_a_require_relates_to_a_quorum_is_a_threshold() {
    assert_eq!(names("quorum(N=4, QUORUM=3)"), Vec::<&str>::new());
}

#[test]
fn timers_and_plain_values_are_not_quorums() {
    assert_eq!(names("quorum(TIMEOUT=1)"), vec!["not-a-quorum"]);
    assert_eq!(names("quorum(LIMIT=1)"), vec!["not-a-quorum"]);
    // Every failed constant is reported, with a quorum that would be accepted alongside.
    let (checked, _) = check_text("p.graft", PROGRAM);
    let spec = parse_pass("quorum(TIMEOUT=1, LIMIT=2, QUORUM=3)").expect("spec");
    let refusal = check(&checked, &spec).expect_err("refused");
    assert_eq!(refusal.failures.len(), 2);
    assert!(
        refusal.failures[0]
            .message
            .contains("`TIMEOUT` is not a quorum")
            && refusal.failures[0].message.contains("T > TIMEOUT"),
        "{:?}",
        refusal.failures[0]
    );
    assert!(refusal.failures[1].suggestion.contains("N, QUORUM"));
}
