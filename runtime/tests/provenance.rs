//! Provenance and the message log from the runtime: on every example, workload and fault
//! schedule of the differential test, the runtime's traced run (on 1 and 2 workers) equals
//! the reference evaluator's run with provenance — the same facts at every tick, the same
//! messages with the same fates, and the same derivations of every fact — which is what
//! `graft explain --engine timely` and `graft verify --engine timely` read.

mod common;

use std::collections::BTreeMap;

use common::cases;
use graft_eval::{CrashModel, RunConfig};
use graft_runtime::{Execution, Runtime};

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

/// A batch of executions in one dataflow (what `graft verify --engine timely` runs): every
/// example's fault schedules that share an end of time and crash model, as one batch on 1
/// and 2 workers; each run of the batch equals the reference's run of its schedule.
#[test]
fn traced_batches_equal_the_reference_run_by_run() {
    let mut failures = Vec::new();
    let mut compared = 0;
    for case in cases::cases() {
        let Ok(loaded) = common::load(&case.program, &case.facts) else {
            failures.push(format!("{}: does not load", case.name));
            continue;
        };
        let runtime = Runtime::new(&loaded.checked).expect("the runtime takes the program");
        let mut batches: BTreeMap<(Option<u64>, u64, CrashModel), Vec<RunConfig>> = BTreeMap::new();
        for (_, mut config) in cases::schedules(&cases::nodes(&loaded)) {
            config.eot = Some(config.eot.unwrap_or(6));
            batches
                .entry((config.eot, config.max_ticks, config.crash_model))
                .or_default()
                .push(config);
        }
        for (key, configs) in batches {
            for workers in [1, 2] {
                let execution = Execution {
                    workers,
                    cluster: None,
                };
                let runs = runtime
                    .run_traced_batch(&configs, &loaded.facts, &execution)
                    .map_err(|error| error.to_string())
                    .and_then(|runs| runs.ok_or_else(|| "no output".to_owned()));
                let runs = match runs {
                    Ok(runs) => runs,
                    Err(error) => {
                        failures.push(format!("{} / {key:?}: {error}", case.name));
                        continue;
                    }
                };
                assert_eq!(runs.len(), configs.len(), "one run per configuration");
                for (config, run) in configs.iter().zip(&runs) {
                    match common::compare_traced_run(&loaded, config, run) {
                        Ok(_) => compared += 1,
                        Err(difference) => failures.push(format!(
                            "{} / {config:?} / {workers} worker(s), in a batch of {}:\n{difference}",
                            case.name,
                            configs.len()
                        )),
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(compared > 100, "only {compared} runs compared");
}

/// A batch whose configurations differ in more than faults is refused, not run wrongly.
#[test]
fn a_batch_of_different_ends_of_time_is_refused() {
    let case = cases::cases().into_iter().next().expect("an example");
    let loaded = common::load(&case.program, &case.facts).expect("it loads");
    let runtime = Runtime::new(&loaded.checked).expect("the runtime takes it");
    let configs = [RunConfig::with_eot(3), RunConfig::with_eot(4)];
    let result = runtime.run_traced_batch(&configs, &loaded.facts, &Execution::default());
    assert!(
        matches!(result, Err(graft_runtime::RuntimeError::MixedBatch)),
        "{result:?}"
    );
}
