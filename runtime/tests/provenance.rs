//! Provenance and the message log from the runtime: on every example, workload and fault
//! schedule of the differential test, the runtime's traced run (on 1 and 2 workers) equals
//! the reference evaluator's run with provenance — the same facts at every tick, the same
//! messages with the same fates, and the same derivations of every fact — which is what
//! `graft explain --engine timely` and `graft verify --engine timely` read.

mod common;

use common::cases;
use graft_eval::{CrashModel, RunConfig};

#[test]
fn traced_runs_equal_the_reference_with_provenance() {
    let cases = cases::cases();
    assert!(
        cases.len() >= 10,
        "found only {} example cases",
        cases.len()
    );
    let mut failures = Vec::new();
    let mut runs = 0;
    let mut derivations = 0;
    for case in &cases {
        let loaded = match common::load(&case.program, &case.facts) {
            Ok(loaded) => loaded,
            Err(error) => {
                failures.push(format!("{}: does not load: {error}", case.name));
                continue;
            }
        };
        let nodes = cases::nodes(&loaded);
        for (schedule, mut config) in cases::schedules(&nodes) {
            // Verification runs have an end of time; quiescence is covered by a few runs.
            if config.eot.is_none() && !schedule.starts_with("01") {
                config.eot = Some(6);
            }
            for workers in [1, 2] {
                runs += 1;
                match common::compare_traced(&loaded, &config, workers) {
                    Ok(compared) => derivations += compared,
                    Err(difference) => failures.push(format!(
                        "{} / {schedule} / {workers} worker(s):\n{difference}",
                        case.name
                    )),
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} traced runs differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(derivations > 0, "no derivation was compared");
}

/// Molly's dialect: bodies without a location variable, heads at other nodes, aggregates over
/// every node, crashes read by rules, in both crash models.
#[test]
fn traced_runs_of_molly_dialect_rules_equal_the_reference() {
    let program = r#"
        peer("a", "b")@1; peer("b", "c")@1; peer("c", "a")@1;
        token("a", 1)@1; token("b", 2)@2;
        token(P, N)@async :- token(L, N), peer(L, P), N < 4;
        seen(L, N) :- token(L, N);
        seen(L, N)@next :- seen(L, N);
        everywhere("all", N) :- seen(_, N);
        count_at("c", count<N>) :- seen(_, N);
        holder(P, L, N) :- seen(L, N), peer(L, P), N > 1;
        ghost("b", N)@async :- seen("a", N);
        lonely(L) :- peer(L, _), notin seen(L, _);
        lonely(L)@next :- lonely(L);
        succ(1, 2)@1; succ(2, 3)@1; succ(3, 1)@1;
        reach(N, M) :- succ(N, M);
        reach(N, K) :- reach(N, M), succ(M, K);
        quiet(L) :- peer(L, _), notin seen(L, Unseen);
        noticed(L, C) :- peer(L, _), crash(L, C, _), notin seen(L, 3);
        pre("c", N) :- seen(_, N);
        post("c", N) :- seen("c", N), notin lonely("c");
    "#;
    let loaded = common::load_inline_as(program, "", "ded").expect("the program checks");
    let mut failures = Vec::new();
    for model in [CrashModel::Molly, CrashModel::Strict] {
        for crash in [None, Some(("b", 2)), Some(("a", 1))] {
            let mut config = RunConfig::with_eot(6);
            config.crash_model = model;
            if let Some((node, tick)) = crash {
                config.crashes.insert(node.to_owned(), tick);
            }
            config.drops.insert(("a".to_owned(), "b".to_owned(), 1));
            for workers in [1, 2] {
                if let Err(difference) = common::compare_traced(&loaded, &config, workers) {
                    failures.push(format!("{model:?} / {crash:?} / {workers}:\n{difference}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
