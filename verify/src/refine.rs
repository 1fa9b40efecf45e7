//! Tracking evolution: comparing a new version of a program with an old one.
//!
//! - [`compare`]: on the same workload and the same fault schedules, the new version's facts of
//!   the compared relations, mapped back to the old names, equal the old version's at every
//!   tick; the first divergence is reported with both traces.
//! - [`explain_diff`]: which supports of the `post` facts a rewrite added or removed. A support
//!   is one minimal set of messages that together derive the fact (the leaves of a proof tree).
//!
//! The [`Mapping`] (relations and nodes, new → old) comes from a rewrite's justification;
//! without one the identity on names is used.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use graft_compiler::ir;
use graft_eval::{Derivation, FactRef, Run};

use crate::faults::FaultSet;
use crate::lineage::node_name;
use crate::spec::render;
use crate::{Verifier, VerifyError};

/// How the new version's facts map back to the old version's: relations (old name → the new
/// relations compared with it) and nodes (new node → the old node it replaces; unlisted nodes
/// are unchanged).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    pub relations: BTreeMap<String, BTreeSet<String>>,
    pub nodes: BTreeMap<String, String>,
    /// The new version's nodes: an old node that is still one of them (decoupling keeps the
    /// node and adds `X/role` beside it) stands for itself as well as for its replacements.
    pub present: BTreeSet<String>,
}

impl Mapping {
    /// The old nodes' replacements in the new version: the nodes mapped to it, and the node
    /// itself when it is still a node of the new version or nothing replaces it.
    fn new_nodes(&self, old: &str) -> Vec<String> {
        let mut found: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, source)| source.as_str() == old)
            .map(|(new, _)| new.clone())
            .collect();
        if found.is_empty() || self.present.contains(old) {
            found.push(old.to_string());
        }
        found
    }

    /// A fault schedule of the old version, in the new version's nodes.
    pub fn schedule(&self, faults: &FaultSet) -> FaultSet {
        let mut mapped = FaultSet::default();
        for drop in &faults.drops {
            for from in self.new_nodes(&drop.from) {
                for to in self.new_nodes(&drop.to) {
                    mapped.drops.insert(crate::faults::Drop {
                        from: from.clone(),
                        to,
                        tick: drop.tick,
                    });
                }
            }
        }
        for (node, tick) in &faults.crashes {
            for new in self.new_nodes(node) {
                mapped.crashes.insert(new, *tick);
            }
        }
        for delay in &faults.delays {
            for from in self.new_nodes(&delay.from) {
                for to in self.new_nodes(&delay.to) {
                    mapped.delays.insert(crate::faults::Delay {
                        from: from.clone(),
                        to,
                        tick: delay.tick,
                        by: delay.by,
                    });
                }
            }
        }
        mapped.normalise();
        mapped
    }

    fn map_value(&self, value: &ir::Value) -> ir::Value {
        match value.as_str().and_then(|text| self.nodes.get(text)) {
            Some(old) => ir::Value::str(old),
            None => value.clone(),
        }
    }
}

/// The identity mapping on the relations compared by default: the old version's `output`
/// relations (every relation but `crash`, `pre` and `post` for a program without outputs).
/// Returns the mapping and the old relations missing from the new version.
pub fn identity_map(old: &ir::Program, new: &ir::Program) -> (Mapping, Vec<String>) {
    let has_outputs = old.relations.iter().any(|relation| relation.output);
    let mut mapping = Mapping::default();
    let mut missing = Vec::new();
    for relation in &old.relations {
        let compared = if has_outputs {
            relation.output
        } else {
            relation.origin != ir::RelationOrigin::Builtin
                && relation.origin != ir::RelationOrigin::Unknown
                && relation.name != "pre"
                && relation.name != "post"
        };
        if !compared {
            continue;
        }
        if new.relation_by_name(&relation.name).is_some() {
            mapping.relations.insert(
                relation.name.clone(),
                BTreeSet::from([relation.name.clone()]),
            );
        } else {
            missing.push(relation.name.clone());
        }
    }
    (mapping, missing)
}

/// Where two versions first disagree.
#[derive(Clone, Debug)]
pub struct Divergence {
    /// The schedule, in the old version's nodes.
    pub faults: FaultSet,
    pub tick: u64,
    pub relation: String,
    /// Facts only the old version has at that tick.
    pub only_old: Vec<String>,
    /// Facts only the new version has (mapped to old names).
    pub only_new: Vec<String>,
    /// Both runs' compared facts, tick by tick up to the divergence (old names).
    pub old_trace: String,
    pub new_trace: String,
}

/// The result of comparing two versions.
#[derive(Clone, Debug)]
pub struct Comparison {
    /// Fault schedules compared (the failure-free one first).
    pub schedules: usize,
    pub divergence: Option<Divergence>,
}

/// The facts of `relations` at `tick`, mapped back and rendered under the name `shown_as`.
fn facts_at(
    program: &ir::Program,
    run: &Run,
    relations: &BTreeSet<String>,
    shown_as: &str,
    tick: u64,
    mapping: Option<&Mapping>,
) -> BTreeSet<String> {
    let mut facts = BTreeSet::new();
    for relation in relations {
        let Some(rel) = program.relation_by_name(relation) else {
            continue;
        };
        for tuple in run.facts(tick, rel) {
            let values: Vec<ir::Value> = match mapping {
                Some(mapping) => tuple.iter().map(|value| mapping.map_value(value)).collect(),
                None => tuple.to_vec(),
            };
            facts.insert(render(shown_as, &values));
        }
    }
    facts
}

fn trace(program: &ir::Program, run: &Run, mapping: &Mapping, old_side: bool, upto: u64) -> String {
    let mut out = String::new();
    for tick in 1..=upto.min(run.ticks_run) {
        for (old_name, new_names) in &mapping.relations {
            let facts = if old_side {
                facts_at(
                    program,
                    run,
                    &BTreeSet::from([old_name.clone()]),
                    old_name,
                    tick,
                    None,
                )
            } else {
                facts_at(program, run, new_names, old_name, tick, Some(mapping))
            };
            for fact in facts {
                let _ = writeln!(out, "{fact}@{tick};");
            }
        }
    }
    out
}

/// Runs both versions on `schedules` (old nodes; the failure-free schedule is always compared
/// first) and returns the first divergence of the mapped relations, tick by tick.
pub fn compare(
    old: &Verifier,
    new: &Verifier,
    mapping: &Mapping,
    schedules: &[FaultSet],
) -> Result<Comparison, VerifyError> {
    let mut all = vec![FaultSet::default()];
    for faults in schedules {
        if !all.contains(faults) {
            all.push(faults.clone());
        }
    }
    let eot = old.bounds.eot.min(new.bounds.eot);
    for (index, faults) in all.iter().enumerate() {
        let old_run = old.run(faults)?;
        let new_run = new.run(&mapping.schedule(faults))?;
        for tick in 1..=eot {
            for (old_name, new_names) in &mapping.relations {
                let old_facts = facts_at(
                    old.program(),
                    &old_run,
                    &BTreeSet::from([old_name.clone()]),
                    old_name,
                    tick,
                    None,
                );
                let new_facts = facts_at(
                    new.program(),
                    &new_run,
                    new_names,
                    old_name,
                    tick,
                    Some(mapping),
                );
                if old_facts != new_facts {
                    return Ok(Comparison {
                        schedules: index + 1,
                        divergence: Some(Divergence {
                            faults: faults.clone(),
                            tick,
                            relation: old_name.clone(),
                            only_old: old_facts.difference(&new_facts).cloned().collect(),
                            only_new: new_facts.difference(&old_facts).cloned().collect(),
                            old_trace: trace(old.program(), &old_run, mapping, true, tick),
                            new_trace: trace(new.program(), &new_run, mapping, false, tick),
                        }),
                    });
                }
            }
        }
    }
    Ok(Comparison {
        schedules: all.len(),
        divergence: None,
    })
}

/// The cap on supports kept per fact.
const SUPPORT_CAP: usize = 2_000;

/// Minimal message sets (rendered `rel from->to@tick`) that derive facts of a run.
struct Supports<'a> {
    program: &'a ir::Program,
    run: &'a Run,
    memo: HashMap<FactRef, Vec<BTreeSet<String>>>,
    stack: HashSet<FactRef>,
}

fn minimal(mut sets: Vec<BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    sets.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    sets.dedup();
    let mut kept: Vec<BTreeSet<String>> = Vec::new();
    for set in sets {
        if !kept.iter().any(|small| small.is_subset(&set)) {
            kept.push(set);
        }
        if kept.len() >= SUPPORT_CAP {
            break;
        }
    }
    kept
}

impl Supports<'_> {
    fn of(&mut self, fact: FactRef) -> Vec<BTreeSet<String>> {
        if let Some(found) = self.memo.get(&fact) {
            return found.clone();
        }
        if !self.stack.insert(fact) {
            return Vec::new();
        }
        let run = self.run;
        let mut all = Vec::new();
        for derivation in run.derivations(fact) {
            let (body, message): (Vec<FactRef>, Option<String>) = match derivation {
                Derivation::Crash | Derivation::Given { .. } => (Vec::new(), None),
                Derivation::Persisted { from } => (vec![*from], None),
                Derivation::Rule(firing)
                | Derivation::Aggregate(firing)
                | Derivation::Next(firing) => (firing.body.clone(), None),
                Derivation::Message {
                    sender, send_tick, ..
                } => {
                    let to = run
                        .fact(fact)
                        .and_then(|tuple| tuple.first())
                        .map(node_name)
                        .unwrap_or_default();
                    let body = match derivation {
                        Derivation::Message { firing, .. } => firing.body.clone(),
                        _ => Vec::new(),
                    };
                    (
                        body,
                        Some(format!(
                            "{} {}->{to}@{send_tick}",
                            self.program.relation(fact.rel).name,
                            node_name(sender)
                        )),
                    )
                }
            };
            let mut product: Vec<BTreeSet<String>> = vec![message.into_iter().collect()];
            for child in body {
                let child_supports = self.of(child);
                let mut next = Vec::new();
                for left in &product {
                    for right in &child_supports {
                        next.push(left.union(right).cloned().collect());
                    }
                }
                product = minimal(next);
                if product.is_empty() {
                    break;
                }
            }
            all.extend(product);
        }
        let all = minimal(all);
        self.stack.remove(&fact);
        self.memo.insert(fact, all.clone());
        all
    }
}

/// The supports of each `post` fact at EOT in a failure-free run.
fn post_supports(verifier: &Verifier) -> BTreeMap<String, BTreeSet<BTreeSet<String>>> {
    let mut result = BTreeMap::new();
    let Some(post) = verifier.spec.post else {
        return result;
    };
    let run = verifier.failure_free();
    let eot = verifier.bounds.eot;
    let mut supports = Supports {
        program: verifier.program(),
        run,
        memo: HashMap::new(),
        stack: HashSet::new(),
    };
    for (id, tuple) in run.facts(eot, post).iter().enumerate() {
        let fact = FactRef {
            tick: eot,
            rel: post,
            tuple: u32::try_from(id).unwrap_or(u32::MAX),
        };
        let name = &verifier.program().relation(post).name;
        result.insert(render(name, tuple), supports.of(fact).into_iter().collect());
    }
    result
}

/// Which supports of the `post` facts (failure-free, at EOT) the new version added or
/// removed, as text: one block per `post` fact whose supports changed.
pub fn explain_diff(old: &Verifier, new: &Verifier) -> String {
    let old_supports = post_supports(old);
    let new_supports = post_supports(new);
    let keys: BTreeSet<&String> = old_supports.keys().chain(new_supports.keys()).collect();
    let empty = BTreeSet::new();
    let mut out = String::new();
    let mut changed = 0;
    for key in keys {
        let before = old_supports.get(key).unwrap_or(&empty);
        let after = new_supports.get(key).unwrap_or(&empty);
        if before == after {
            continue;
        }
        changed += 1;
        let status = match (
            old_supports.contains_key(key),
            new_supports.contains_key(key),
        ) {
            (true, false) => " (only in the old version)",
            (false, true) => " (only in the new version)",
            _ => "",
        };
        let _ = writeln!(out, "{key}{status}:");
        let show = |set: &BTreeSet<String>| {
            if set.is_empty() {
                "{} (no message needed)".to_string()
            } else {
                format!("{{{}}}", set.iter().cloned().collect::<Vec<_>>().join(", "))
            }
        };
        for support in before.difference(after) {
            let _ = writeln!(out, "  - {}", show(support));
        }
        for support in after.difference(before) {
            let _ = writeln!(out, "  + {}", show(support));
        }
    }
    let _ = writeln!(
        out,
        "{changed} post fact(s) with changed supports (of {} in the old version, {} in the new)",
        old_supports.len(),
        new_supports.len()
    );
    out
}
