//! Justification records: why a rewrite was allowed and how the new version relates to the
//! old one. Serialised as JSON (format tag [`crate::JUSTIFICATION_FORMAT`]); the format is
//! documented in `docs/rewrites.md` and read back by `graft test` and `graft verify
//! --refines`, so fields are only ever added.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The version a rewrite started from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    /// The program's files as named on the command line.
    pub files: Vec<String>,
    /// [`crate::content_hash`] of the files' bytes, concatenated in order.
    pub hash: String,
}

/// How the outputs of a rewritten version compare with its source's on the same workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Comparison {
    /// The same output facts at the same ticks, after mapping nodes and relations back.
    PerTick,
    /// The same output facts eventually: the set of output facts that ever held, and the set
    /// at the last tick, after mapping back (outputs may appear later).
    Eventual,
    /// Outputs may legitimately differ (a quorum change); only snapshots and invariants apply.
    None,
}

impl Comparison {
    /// The weaker of two comparisons (composition of passes).
    pub fn weaker(self, other: Comparison) -> Comparison {
        self.max(other)
    }
}

/// A precondition that was checked and holds, with its evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discharged {
    pub name: String,
    pub evidence: String,
}

/// Something a pass relied on that it could not prove from the program. Serialised without a
/// tag for a declared key (`{"relation": .., "key": [..]}`, as before other kinds existed) and
/// with `"kind"` for the others, so records that assume no new kind stay byte-identical.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Assumption {
    /// Messages on some channels arrive exactly one tick after they are sent (or never).
    SynchronousDelivery(SynchronousDelivery),
    /// A declared key of a relation (partitioning with dependencies). `graft test` checks it
    /// on every run of the source version and of the new version.
    Key(KeyAssumption),
}

impl Assumption {
    /// A declared key assumed to hold.
    pub fn key(relation: impl Into<String>, key: Vec<String>) -> Assumption {
        Assumption::Key(KeyAssumption {
            relation: relation.into(),
            key,
        })
    }

    /// One line for people: what is assumed.
    pub fn describe(&self) -> String {
        match self {
            Assumption::Key(key) => format!("key({}) of `{}`", key.key.join(", "), key.relation),
            Assumption::SynchronousDelivery(sync) => format!(
                "synchronous delivery of {}: {}",
                sync.channels
                    .iter()
                    .map(|channel| format!("`{channel}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                sync.why
            ),
        }
    }
}

/// A declared key a pass relied on: at every tick a node holds at most one fact of the
/// relation per value of the key's columns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAssumption {
    /// The relation whose declared key is assumed to hold.
    pub relation: String,
    /// The key's columns: at every tick a node holds at most one fact of the relation per
    /// value of these columns, and (as no rule retracts from it) the same one for the rest of
    /// the run.
    pub key: Vec<String>,
}

/// The tag of [`SynchronousDelivery`] in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SynchronousDeliveryKind {
    SynchronousDelivery,
}

/// The pass's correctness argument needs the messages of `channels` (relations of the new
/// version written by `@async` rules) to arrive exactly one tick after they are sent, as in
/// Molly's model: a late one (`--delay`, `graft verify --max-delay`) may make the version
/// diverge from its source. `graft test --max-delay` and `graft verify --refines --max-delay`
/// report such a divergence as this assumption failing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SynchronousDelivery {
    /// Always `synchronous-delivery`.
    pub kind: SynchronousDeliveryKind,
    /// The channels whose timing the pass relies on.
    pub channels: Vec<String>,
    /// Why: what goes wrong when one of them is late.
    pub why: String,
}

impl SynchronousDelivery {
    pub fn new(channels: Vec<String>, why: impl Into<String>) -> SynchronousDelivery {
        SynchronousDelivery {
            kind: SynchronousDeliveryKind::SynchronousDelivery,
            channels,
            why: why.into(),
        }
    }
}

/// An old name and the names it became.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameMap {
    pub old: String,
    pub new: Vec<String>,
    pub how: String,
}

/// A rule of the old version and the rules of the new version that replace it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleMap {
    /// The old rule's id (its index among the old program's rules); `None` for added rules.
    pub old: Option<u32>,
    pub old_text: Option<String>,
    /// Ids in the new program.
    pub new: Vec<u32>,
    pub new_text: Vec<String>,
}

/// One pass's record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PassRecord {
    /// The pass's stable name.
    pub pass: String,
    /// The request in canonical form.
    pub request: String,
    pub params: serde_json::Value,
    /// The safe case that applied (decouple: mutually-independent, monotonic, functional;
    /// partition: co-hashing, dependencies, partial).
    pub case: Option<String>,
    pub preconditions: Vec<Discharged>,
    pub roles: Vec<NameMap>,
    pub relations: Vec<NameMap>,
    /// Relations the pass added (routing tables, outboxes, forwarding channels).
    #[serde(default)]
    pub added_relations: Vec<String>,
    /// Constants whose values changed (quorum).
    #[serde(default)]
    pub constants: Vec<NameMap>,
    pub rules: Vec<RuleMap>,
    /// New node -> the node it replaces (nodes not listed are unchanged).
    pub nodes: BTreeMap<String, String>,
    pub comparison: Comparison,
    /// What the pass assumed and `graft test` checks (absent when nothing was assumed):
    /// declared keys, and the channels whose synchronous delivery it relies on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assumptions: Vec<Assumption>,
    /// Where `graft verify` certified the new version before it was written (quorum changes;
    /// absent otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verified: Vec<VerifiedUnder>,
    /// The cost model's prediction for this step, when `graft optimize` chose it (absent for
    /// `graft rewrite`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted: Option<Predicted>,
}

/// One verification a rewrite passed before its output was written: the facts, the bounds and
/// where they came from, and the executions LDFI ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedUnder {
    /// The source's facts files (rewritten for the new version before the search).
    pub facts: Vec<String>,
    pub eot: u64,
    pub eff: u64,
    pub crashes: usize,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub symmetry: bool,
    /// The complete node set, when the configuration gives one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// Where the bounds come from (`examples/paxos/protocol.json`, or `--eot`).
    pub bounds_from: String,
    pub executions: u64,
}

/// The cost model's figures before and after one step of a plan (`docs/rewrites.md`, "The
/// cost model"), on the workload the plan was searched with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Predicted {
    /// `throughput` or `messages`.
    pub objective: String,
    /// The busiest node before the step, and its load (facts derived, messages sent and
    /// received).
    pub bottleneck_before: String,
    pub load_before: u64,
    pub bottleneck_after: String,
    pub load_after: u64,
    /// Network exchanges over all nodes.
    pub exchanges_before: u64,
    pub exchanges_after: u64,
    pub machines_before: usize,
    pub machines_after: usize,
}

/// The record of a whole `graft rewrite` invocation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Justification {
    pub format: String,
    pub source: SourceRef,
    /// [`crate::content_hash`] of the produced program's text.
    pub output_hash: String,
    pub passes: Vec<PassRecord>,
    /// Composed over the passes: every new node -> the source node it replaces.
    pub node_map: BTreeMap<String, String>,
    /// Composed over the passes: every output relation of the new version -> the source
    /// relation it is compared with.
    pub relation_map: BTreeMap<String, String>,
    /// The weakest comparison of the passes.
    pub comparison: Comparison,
}

impl Justification {
    /// Composes pass records into one justification.
    pub fn compose(
        source: SourceRef,
        output_hash: String,
        passes: Vec<PassRecord>,
    ) -> Justification {
        let mut node_map: BTreeMap<String, String> = BTreeMap::new();
        let mut relation_map: BTreeMap<String, String> = BTreeMap::new();
        let mut comparison = Comparison::PerTick;
        for pass in &passes {
            comparison = comparison.weaker(pass.comparison);
            let mut next_nodes = BTreeMap::new();
            for (new, old) in &pass.nodes {
                let source = node_map.get(old).cloned().unwrap_or_else(|| old.clone());
                next_nodes.insert(new.clone(), source);
            }
            for (new, old) in node_map {
                next_nodes.entry(new).or_insert(old);
            }
            node_map = next_nodes;
            let mut next_relations = BTreeMap::new();
            for map in &pass.relations {
                for new in &map.new {
                    let source = relation_map
                        .get(&map.old)
                        .cloned()
                        .unwrap_or_else(|| map.old.clone());
                    next_relations.insert(new.clone(), source);
                }
            }
            for (new, old) in relation_map {
                next_relations.entry(new).or_insert(old);
            }
            relation_map = next_relations;
        }
        Justification {
            format: crate::JUSTIFICATION_FORMAT.to_owned(),
            source,
            output_hash,
            passes,
            node_map,
            relation_map,
            comparison,
        }
    }

    /// Every assumption of every pass.
    pub fn assumptions(&self) -> impl Iterator<Item = &Assumption> {
        self.passes.iter().flat_map(|pass| pass.assumptions.iter())
    }

    /// The synchronous-delivery assumptions of every pass, with the pass's request.
    pub fn synchronous_delivery(&self) -> Vec<(&str, &SynchronousDelivery)> {
        self.passes
            .iter()
            .flat_map(|pass| {
                pass.assumptions
                    .iter()
                    .filter_map(|assumption| match assumption {
                        Assumption::SynchronousDelivery(sync) => {
                            Some((pass.request.as_str(), sync))
                        }
                        Assumption::Key(_) => None,
                    })
            })
            .collect()
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}
