//! The lineage results a search keeps across its runs ([`LineageCache`]), and the lineage
//! that worker threads extract, change nothing: on `examples/paxos`, every good run's minimal
//! fault sets with the results kept from the runs before it equal those extracted from
//! scratch, and the search on two workers is the search on one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use graft_verify::lineage::{AtomTable, LineageCache};
use graft_verify::{Bounds, SearchOptions, Verdict, Verifier};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `examples/paxos` with its topology and workload (dueling proposers) under `bounds`.
fn paxos(bounds: Bounds) -> Verifier {
    let base = root().join("examples/paxos");
    let program = base.join("paxos.graft").to_string_lossy().into_owned();
    let mut read = |path: &str| std::fs::read_to_string(path).map_err(|error| error.to_string());
    let mut loaded = graft_language::loader::load_program(&[program], &mut read);
    assert!(loaded.diagnostics.is_empty(), "paxos.graft does not load");
    let checked = graft_compiler::check(&loaded.sources, &loaded.files);
    assert!(!checked.has_errors(), "paxos.graft does not check");
    let mut files = Vec::new();
    for name in ["topology.facts", "workload.facts"] {
        let text = std::fs::read_to_string(base.join(name)).expect("the facts file is readable");
        let id = loaded.sources.add(name.to_string(), text.clone());
        files.push(graft_language::parse(id, &text).file);
    }
    let (facts, diagnostics) = graft_compiler::check_facts(&checked.program, &files);
    assert!(diagnostics.is_empty(), "the paxos facts do not check");
    Verifier::new(&checked, facts, BTreeSet::new(), bounds)
        .unwrap_or_else(|error| panic!("{error}"))
}

const BOUNDS: Bounds = Bounds {
    eot: 7,
    eff: 3,
    crashes: 0,
    max_delay: 0,
};

#[test]
fn lineage_kept_across_runs_is_the_lineage_from_scratch() {
    let verifier = paxos(BOUNDS);
    let search = verifier
        .ldfi(&SearchOptions::default(), &mut |_| {})
        .expect("the search runs");
    assert_eq!(search.verdict, Verdict::Certified);
    assert!(
        search.explored.len() > 20,
        "too few runs to compare: {}",
        search.explored.len()
    );
    // In the search's order, with one table and one cache for every run, as the search keeps
    // them, against a fresh table and cache per run.
    let mut atoms = AtomTable::default();
    let mut cache = LineageCache::default();
    for faults in &search.explored {
        let execution = verifier.execute(faults).expect("the run runs");
        let kept = verifier.minimal_fault_sets(&execution.run, &mut atoms, &mut cache);
        let fresh = verifier.minimal_fault_sets(
            &execution.run,
            &mut AtomTable::default(),
            &mut LineageCache::default(),
        );
        assert_eq!(kept, fresh, "the lineage of the run under {faults}");
    }
    assert!(!cache.is_empty(), "no result was kept across runs");
}

#[test]
fn two_workers_search_as_one_does() {
    let one = paxos(BOUNDS)
        .with_workers(1)
        .ldfi(&SearchOptions::default(), &mut |_| {})
        .expect("the search runs on one worker");
    let two = paxos(BOUNDS)
        .with_workers(2)
        .ldfi(&SearchOptions::default(), &mut |_| {})
        .expect("the search runs on two workers");
    assert_eq!(one.verdict, two.verdict);
    assert_eq!(one.executions, two.executions);
    assert_eq!(one.explored, two.explored);
    assert_eq!(one.log, two.log);
}
