//! Shared by the verifier's benchmarks: loading a program with its facts, and Molly's corpus
//! with the bounds and nodes of the LDFI paper and Molly's published figures.

#![allow(dead_code, reason = "each benchmark uses part of this module")]

use std::collections::BTreeSet;

use graft_verify::{Bounds, Verifier};

pub const fn bounds(eot: u64, eff: u64, crashes: usize) -> Bounds {
    Bounds {
        eot,
        eff,
        crashes,
        max_delay: 0,
    }
}

/// The repository's root.
pub fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default()
}

/// Loads `program` with `facts` (paths relative to `base`); with `nodes`, those are the
/// complete node set (Molly's `-N`).
pub fn load_from(
    base: &std::path::Path,
    program: &[&str],
    facts: &[&str],
    nodes: BTreeSet<String>,
    bounds: Bounds,
) -> Result<Verifier, String> {
    let roots: Vec<String> = program
        .iter()
        .map(|file| base.join(file).to_string_lossy().into_owned())
        .collect();
    let mut read = |path: &str| std::fs::read_to_string(path).map_err(|error| error.to_string());
    let mut loaded = graft_language::loader::load_program(&roots, &mut read);
    let checked = graft_compiler::check(&loaded.sources, &loaded.files);
    if checked.has_errors() || !loaded.diagnostics.is_empty() {
        return Err("the program does not check".to_string());
    }
    let mut files = Vec::new();
    for path in facts {
        let text = std::fs::read_to_string(base.join(path)).map_err(|error| error.to_string())?;
        let id = loaded.sources.add((*path).to_string(), text.clone());
        files.push(graft_language::parse(id, &text).file);
    }
    let (facts, diagnostics) = graft_compiler::check_facts(&checked.program, &files);
    if !diagnostics.is_empty() {
        return Err("the workload does not check".to_string());
    }
    if nodes.is_empty() {
        Verifier::new(&checked, facts, nodes, bounds)
    } else {
        // Molly's `-N`: the nodes listed are all the nodes.
        Verifier::with_exact_nodes(&checked, facts, nodes, bounds)
    }
    .map_err(|error| error.to_string())
}

/// A program of Molly's corpus with the bounds and nodes of the LDFI paper (Alvaro et al.,
/// SIGMOD'15, Tables 2 and 3) and Molly's published figures.
pub struct MollyCase {
    pub name: &'static str,
    pub files: &'static [&'static str],
    pub bounds: Bounds,
    pub nodes: &'static [&'static str],
    /// Whether Molly reports a counterexample at these bounds.
    pub buggy: bool,
    /// Molly's LDFI executions (to the first counterexample, or to certify).
    pub molly: &'static str,
    /// Molly's random strategy, mean executions to the first counterexample.
    pub molly_random: &'static str,
}

pub const DELIVERY: &[&str] = &["a", "b", "c"];
pub const COMMIT: &[&str] = &["a", "b", "C", "d"];

pub const MOLLY: &[MollyCase] = &[
    MollyCase {
        name: "simple-deliv",
        files: &["delivery/simplog.ded", "delivery/deliv_assert.ded"],
        bounds: bounds(4, 2, 0),
        nodes: DELIVERY,
        buggy: true,
        molly: "2",
        molly_random: "4.08",
    },
    MollyCase {
        name: "retry-deliv",
        files: &["delivery/rdlog.ded", "delivery/deliv_assert.ded"],
        bounds: bounds(4, 2, 1),
        nodes: DELIVERY,
        buggy: true,
        molly: "3",
        molly_random: "75.24",
    },
    MollyCase {
        name: "classic-deliv",
        files: &["delivery/classic_rb.ded", "delivery/deliv_assert.ded"],
        bounds: bounds(5, 3, 0),
        nodes: DELIVERY,
        buggy: true,
        molly: "5",
        molly_random: "116.16",
    },
    MollyCase {
        name: "2pc",
        files: &["commit/2pc.ded", "commit/2pc_assert.ded"],
        bounds: bounds(5, 0, 1),
        nodes: COMMIT,
        buggy: true,
        molly: "2",
        molly_random: "5.48",
    },
    MollyCase {
        name: "2pc-ctp",
        files: &["commit/2pc_ctp.ded", "commit/2pc_assert.ded"],
        bounds: bounds(8, 0, 1),
        nodes: COMMIT,
        buggy: true,
        molly: "3",
        molly_random: "8.56",
    },
    MollyCase {
        name: "3pc",
        files: &["commit/3pc.ded", "commit/2pc_assert.ded"],
        bounds: bounds(9, 7, 1),
        nodes: COMMIT,
        buggy: true,
        molly: "55",
        molly_random: "40.6",
    },
    // The paper's Kafka figures are for its `good` specification at EOT 6; with the
    // `pre`/`post` specification of kafka.ded (the one Molly checks today) no acknowledgement
    // reaches the client by tick 6, so Molly's test suite checks it at EOT 7.
    MollyCase {
        name: "kafka (EOT 6)",
        files: &["kafka.ded"],
        bounds: bounds(6, 4, 1),
        nodes: &["a", "b", "c", "C", "Z"],
        buggy: false,
        molly: "38*",
        molly_random: "1183*",
    },
    MollyCase {
        name: "kafka (EOT 7)",
        files: &["kafka.ded"],
        bounds: bounds(7, 4, 1),
        nodes: &["a", "b", "c", "C", "Z"],
        buggy: true,
        molly: "-",
        molly_random: "-",
    },
    MollyCase {
        name: "retry-deliv (no crash)",
        files: &["delivery/rdlog.ded", "delivery/deliv_assert.ded"],
        bounds: bounds(25, 23, 0),
        nodes: DELIVERY,
        buggy: false,
        molly: "-",
        molly_random: "",
    },
    MollyCase {
        name: "redun-deliv",
        files: &["delivery/replog.ded", "delivery/deliv_assert.ded"],
        bounds: bounds(8, 6, 1),
        nodes: DELIVERY,
        buggy: false,
        molly: "11",
        molly_random: "",
    },
    MollyCase {
        name: "ack-deliv",
        files: &["delivery/ack_rb.ded", "delivery/deliv_assert.ded"],
        bounds: bounds(8, 6, 1),
        nodes: DELIVERY,
        buggy: false,
        molly: "673",
        molly_random: "",
    },
    MollyCase {
        name: "paxos-synod",
        files: &["paxos_synod.ded"],
        bounds: bounds(8, 3, 1),
        nodes: DELIVERY,
        buggy: false,
        molly: "173",
        molly_random: "",
    },
];
