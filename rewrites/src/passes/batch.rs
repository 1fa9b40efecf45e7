//! `batch`: buffer a channel's tuples at the sender and deliver them as one sealed batch.
//!
//! Correctness: batching only delays messages; every tuple is still sent, to the same
//! destination, and all tuples of a batch leave in one tick, so they arrive together (a lost
//! batch is lost whole, as one omission of the original's messages). Delay changes a run's
//! outcome only if the consumer is order- or timing-sensitive, so the pass requires the
//! consumer to be *confluent*, conservatively: (1) every rule that reads the channel is
//! monotone (no `notin`, no aggregate, no `delete`) and joins the channel only with persisted
//! relations (so a late tuple still finds what it joins with), and (2) no rule downstream of
//! the channel negates, aggregates over or retracts a relation downstream of it (no point of
//! order after it). The specification's own rules (`pre`, `post`) are not consumers. Outputs
//! are then the same eventually, possibly later.
//!
//! Cost: fewer network exchanges (one per sender, destination and flush), and resends of the
//! same tuple within a window collapse into one; the price is up to `ticks - 1` ticks of delay.
//!
//! Transformation, for channel `c` written by `c(D, X..)@async :- body;` at sender `S`:
//!
//! ```text
//! c_outbox(S, D, X.., 0) :- body;
//! c_outbox(S, D, X.., A + 1)@next :- c_outbox(S, D, X.., A), notin c_flush(S, D);
//! c_flush(S, D) :- c_outbox(S, D, X.., A), A >= ticks - 1;
//! c_flush(S, D) :- c_outbox_size(S, D, K), K >= size;          // with size
//! c_outbox_size(S, D, count<X1>) :- c_outbox(S, D, X1, .., _); // with size
//! c(D, X..)@async :- c_outbox(S, D, X.., _), c_flush(S, D);
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use graft_compiler::ir::{self, AggFunc, ArithOp, CompareOp, Persistence, RelId, RuleKind, Value};

use super::{Context, Outcome, discharged};
use crate::draft::{DAtom, DColumn, DHeadArg, DLiteral, DRelation, DRule, DTerm, Draft};
use crate::justification::{Assumption, Comparison, Discharged, NameMap, SynchronousDelivery};
use crate::refusal::{FailedPrecondition, Refusal};
use crate::spec::PassSpec;

#[derive(Clone, Debug)]
pub(super) struct BatchPlan {
    channel: String,
    ticks: u32,
    size: Option<u32>,
    sender_type: String,
    pub(super) preconditions: Vec<Discharged>,
    /// The channels whose timing the consumers' joins rely on (absent when they join the
    /// channel only with relations no message feeds).
    pub(super) assumptions: Vec<Assumption>,
}

/// Relations from which `start` is derived, through protocol rules (any edge kind).
fn upstream(context: &Context<'_>, start: RelId) -> BTreeSet<RelId> {
    let mut seen = BTreeSet::from([start]);
    let mut queue = VecDeque::from([start]);
    while let Some(rel) = queue.pop_front() {
        for rule in context.protocol_rules() {
            if rule.head.rel != rel {
                continue;
            }
            for (_, atom) in rule.atoms() {
                if seen.insert(atom.rel) {
                    queue.push_back(atom.rel);
                }
            }
        }
    }
    seen
}

/// Relations reachable from `start` through protocol rules (any edge kind).
fn downstream(context: &Context<'_>, start: RelId) -> BTreeSet<RelId> {
    let mut seen = BTreeSet::from([start]);
    let mut queue = VecDeque::from([start]);
    while let Some(rel) = queue.pop_front() {
        for rule in context.protocol_rules() {
            if rule.atoms().any(|(_, atom)| atom.rel == rel) && seen.insert(rule.head.rel) {
                queue.push_back(rule.head.rel);
            }
        }
    }
    seen
}

pub(super) fn check(
    context: &Context<'_>,
    spec: &PassSpec,
    channel: &str,
    ticks: u32,
    size: Option<u32>,
) -> Result<BatchPlan, Refusal> {
    let refuse = |failures| Refusal::new(spec.text(), failures);
    let Some(rel) = context.relation_by_name(channel) else {
        return Err(refuse(vec![context.unknown_relation(channel)]));
    };
    let relation = context.relation(rel);
    if relation.persistence != Persistence::Channel {
        return Err(refuse(vec![FailedPrecondition::new(
            "not-a-channel",
            format!("`{channel}` is not a channel"),
            relation.span,
            "batch a relation declared `channel` (written by `@async` rules)",
        )]));
    }
    let program = context.program;
    let mut failures = Vec::new();
    let writers: Vec<&ir::Rule> = program.rules_deriving(rel).collect();
    let mut sender_types: BTreeSet<String> = writers
        .iter()
        .filter_map(|rule| context.rule_location_type(rule))
        .collect();
    if sender_types.len() > 1 {
        failures.push(FailedPrecondition::new(
            "senders-differ",
            format!(
                "`{channel}` is sent from nodes of different roles ({})",
                sender_types.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
            relation.span,
            "batch a channel that one role sends, or split the channel per sender role",
        ));
    }
    let down = downstream(context, rel);
    let mut consumers = 0;
    // Persisted relations the consumers join the channel with.
    let mut partners: BTreeSet<RelId> = BTreeSet::new();
    for rule in context.protocol_rules() {
        let reads_channel = rule.atoms().any(|(_, atom)| atom.rel == rel);
        let reads_down = rule.atoms().any(|(_, atom)| down.contains(&atom.rel));
        if reads_channel {
            consumers += 1;
            for (_, atom) in rule.atoms() {
                if atom.rel == rel && atom.negated {
                    failures.push(FailedPrecondition::new(
                        "consumer-not-monotone",
                        format!("a consumer negates `{channel}`"),
                        atom.span,
                        "batch only channels whose consumers are monotone",
                    ));
                } else if atom.rel != rel
                    && !atom.negated
                    && context.relation(atom.rel).is_persisted()
                {
                    partners.insert(atom.rel);
                } else if atom.rel != rel
                    && !atom.negated
                    && !context.relation(atom.rel).is_persisted()
                {
                    failures.push(
                        FailedPrecondition::new(
                            "consumer-joins-ephemeral",
                            format!(
                                "a consumer joins `{channel}` with `{}`, which holds for one tick only",
                                context.relation(atom.rel).name
                            ),
                            atom.span,
                            format!(
                                "a delayed `{channel}` tuple could miss it; make `{}` a table, or batch another channel",
                                context.relation(atom.rel).name
                            ),
                        )
                        .with_label(rule.span, "in this rule"),
                    );
                }
            }
        }
        if !reads_down {
            continue;
        }
        for (_, atom) in rule.atoms() {
            if atom.negated && down.contains(&atom.rel) {
                failures.push(
                    FailedPrecondition::new(
                        "consumer-not-confluent",
                        format!(
                            "`notin {}` reads a relation downstream of `{channel}`: its result depends on when batched tuples arrive",
                            context.relation(atom.rel).name
                        ),
                        atom.span,
                        "batch a channel whose consumers are confluent (monotone all the way to the outputs)",
                    )
                    .with_label(rule.span, "point of order"),
                );
            }
        }
        if let Some(aggregate) = &rule.head.aggregate {
            failures.push(FailedPrecondition::new(
                "consumer-not-confluent",
                format!(
                    "`{}<...>` aggregates over a relation downstream of `{channel}`: its result depends on when batched tuples arrive",
                    aggregate.func.name()
                ),
                aggregate.span,
                "batch a channel whose consumers are confluent (no aggregation downstream)",
            ));
        }
        if rule.kind == RuleKind::Delete {
            failures.push(FailedPrecondition::new(
                "consumer-not-confluent",
                format!(
                    "`delete {}` is triggered downstream of `{channel}`: what it retracts depends on when batched tuples arrive",
                    context.relation(rule.head.rel).name
                ),
                rule.head.span,
                "batch a channel whose consumers never retract",
            ));
        }
    }
    if !failures.is_empty() {
        return Err(refuse(failures));
    }
    let down_names: Vec<&str> = down
        .iter()
        .filter(|r| **r != rel)
        .map(|r| context.relation(*r).name.as_str())
        .collect();
    let preconditions = vec![
        discharged(
            "consumer-monotone",
            format!(
                "{consumers} rule(s) read `{channel}`; none negates, aggregates or retracts, and each joins it only with persisted relations"
            ),
        ),
        discharged(
            "consumer-confluent",
            format!(
                "downstream of `{channel}`: {}; no negation, aggregation or retraction reads them (specification rules excluded)",
                if down_names.is_empty() {
                    "nothing".to_owned()
                } else {
                    down_names.join(", ")
                }
            ),
        ),
    ];
    // Batching makes the channel's tuples arrive later than the source's; the same outputs
    // follow only if what they join with has arrived by then exactly when it did in the
    // source. A partner fed by messages that arrive late in the source (and so miss the
    // source's tuple) is found by the later batch: the version derives more.
    let feeding: BTreeSet<String> = partners
        .iter()
        .flat_map(|partner| upstream(context, *partner))
        .filter(|upstream_rel| {
            program
                .rules_deriving(*upstream_rel)
                .any(|rule| rule.kind == RuleKind::Async)
        })
        .map(|upstream_rel| context.relation(upstream_rel).name.clone())
        .collect();
    let assumptions = if feeding.is_empty() {
        Vec::new()
    } else {
        let quoted = |names: &mut dyn Iterator<Item = String>| {
            names
                .map(|name| format!("`{name}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        vec![Assumption::SynchronousDelivery(SynchronousDelivery::new(
            feeding.iter().cloned().collect(),
            format!(
                "the consumers join `{channel}` with {}, fed by messages of {}: a batch arrives later than the source's tuples, so the outputs are the same only if those messages arrive at the tick after they are sent, as in the source; a late one that the source's tuple misses is still found by the later batch, and the version derives more",
                quoted(&mut partners.iter().map(|r| context.relation(*r).name.clone())),
                quoted(&mut feeding.iter().cloned())
            ),
        ))]
    };
    Ok(BatchPlan {
        assumptions,
        channel: channel.to_owned(),
        ticks,
        size,
        sender_type: sender_types
            .pop_first()
            .unwrap_or_else(|| "node".to_owned()),
        preconditions,
    })
}

pub(super) fn apply(plan: &BatchPlan, draft: &mut Draft) -> Outcome {
    let channel = plan.channel.clone();
    let Some(relation) = draft.relation(&channel).cloned() else {
        return empty_outcome();
    };
    let outbox = draft.fresh_relation(&format!("{channel}_outbox"));
    let flush = draft.fresh_relation(&format!("{channel}_flush"));
    let size_rel = draft.fresh_relation(&format!("{channel}_outbox_size"));
    let dest_type = relation.location_type().to_owned();
    let payload: Vec<DColumn> = relation.columns.iter().skip(1).cloned().collect();
    let mut outbox_columns = vec![
        DColumn {
            name: "at".to_owned(),
            ty: plan.sender_type.clone(),
        },
        DColumn {
            name: "to".to_owned(),
            ty: dest_type.clone(),
        },
    ];
    outbox_columns.extend(payload.iter().map(|column| DColumn {
        name: format!("{}_", column.name),
        ty: column.ty.clone(),
    }));
    outbox_columns.push(DColumn {
        name: "age".to_owned(),
        ty: "int".to_owned(),
    });
    let new_relations = vec![
        DRelation {
            name: outbox.clone(),
            input: false,
            output: false,
            persistence: Persistence::Scratch,
            columns: outbox_columns,
            key: None,
            declared: true,
            note: Some(format!(
                "batch({channel}): tuples waiting at the sender, with their age in ticks"
            )),
        },
        DRelation {
            name: flush.clone(),
            input: false,
            output: false,
            persistence: Persistence::Scratch,
            columns: vec![
                DColumn {
                    name: "at".to_owned(),
                    ty: plan.sender_type.clone(),
                },
                DColumn {
                    name: "to".to_owned(),
                    ty: dest_type.clone(),
                },
            ],
            key: None,
            declared: true,
            note: Some(format!(
                "batch({channel}): the sender sends its batch for `to` this tick"
            )),
        },
    ];
    let mut size_relation = None;
    if plan.size.is_some() && !payload.is_empty() {
        size_relation = Some(DRelation {
            name: size_rel.clone(),
            input: false,
            output: false,
            persistence: Persistence::Scratch,
            columns: vec![
                DColumn {
                    name: "at".to_owned(),
                    ty: plan.sender_type.clone(),
                },
                DColumn {
                    name: "to".to_owned(),
                    ty: dest_type,
                },
                DColumn {
                    name: "n".to_owned(),
                    ty: "int".to_owned(),
                },
            ],
            key: None,
            declared: true,
            note: Some(format!(
                "batch({channel}): how many distinct tuples wait (at least)"
            )),
        });
    }
    // Insert the new declarations right after the channel's.
    let position = draft
        .relations
        .iter()
        .position(|r| r.name == channel)
        .map_or(draft.relations.len(), |p| p + 1);
    let mut inserted = new_relations;
    inserted.extend(size_relation.clone());
    let added_names: Vec<String> = inserted.iter().map(|r| r.name.clone()).collect();
    for (offset, relation) in inserted.into_iter().enumerate() {
        draft.relations.insert(position + offset, relation);
    }
    // Senders write the outbox instead of the channel.
    let mut rules = Vec::new();
    let mut first_sender_origin = None;
    for rule in std::mem::take(&mut draft.rules) {
        if rule.head_rel == channel && rule.kind == RuleKind::Async {
            let location = rule
                .location()
                .map_or_else(|| "S".to_owned(), str::to_owned);
            let mut args = vec![DHeadArg::Term(DTerm::Var(location))];
            args.extend(rule.head_args.iter().cloned());
            args.push(DHeadArg::Term(DTerm::Const(Value::Int(0))));
            first_sender_origin = first_sender_origin.or(rule.origin);
            rules.push(DRule {
                kind: RuleKind::Deductive,
                head_rel: outbox.clone(),
                head_args: args,
                body: rule.body,
                origin: rule.origin,
                note: Some(format!(
                    "batch({channel}): was `{channel}(...)@async`; now waits in the outbox"
                )),
            });
        } else {
            rules.push(rule);
        }
    }
    let xs: Vec<DTerm> = (1..=payload.len())
        .map(|i| DTerm::Var(format!("X{i}")))
        .collect();
    let outbox_atom = |age: DTerm| {
        let mut args = vec![DTerm::var("S"), DTerm::var("D")];
        args.extend(xs.iter().cloned());
        args.push(age);
        DLiteral::atom(&outbox, args)
    };
    let head = |rel: &str, extra: Vec<DTerm>| -> Vec<DHeadArg> {
        let _ = rel;
        extra.into_iter().map(DHeadArg::Term).collect()
    };
    let mut carried = vec![DTerm::var("S"), DTerm::var("D")];
    carried.extend(xs.iter().cloned());
    carried.push(DTerm::Arith(
        ArithOp::Add,
        Box::new(DTerm::var("A")),
        Box::new(DTerm::Const(Value::Int(1))),
    ));
    rules.push(DRule {
        kind: RuleKind::Next,
        head_rel: outbox.clone(),
        head_args: head(&outbox, carried),
        body: vec![
            outbox_atom(DTerm::var("A")),
            DLiteral::Atom(DAtom {
                rel: flush.clone(),
                args: vec![DTerm::var("S"), DTerm::var("D")],
                negated: true,
                tick: None,
            }),
        ],
        origin: None,
        note: Some(format!(
            "batch({channel}): unsent tuples wait one more tick"
        )),
    });
    rules.push(DRule {
        kind: RuleKind::Deductive,
        head_rel: flush.clone(),
        head_args: head(&flush, vec![DTerm::var("S"), DTerm::var("D")]),
        body: vec![
            outbox_atom(DTerm::var("A")),
            DLiteral::Compare(
                CompareOp::Ge,
                DTerm::var("A"),
                DTerm::Const(Value::Int(i64::from(plan.ticks) - 1)),
            ),
        ],
        origin: None,
        note: Some(format!(
            "batch({channel}): flush when the oldest tuple is {} tick(s) old",
            plan.ticks
        )),
    });
    if let (Some(size), Some(first)) = (plan.size, xs.first()) {
        rules.push(DRule {
            kind: RuleKind::Deductive,
            head_rel: size_rel.clone(),
            head_args: vec![
                DHeadArg::Term(DTerm::var("S")),
                DHeadArg::Term(DTerm::var("D")),
                DHeadArg::Aggregate(AggFunc::Count, first.as_var().unwrap_or("X1").to_owned()),
            ],
            body: vec![{
                let mut args = vec![DTerm::var("S"), DTerm::var("D"), first.clone()];
                args.extend(std::iter::repeat_n(DTerm::Wildcard, xs.len()));
                DLiteral::atom(&outbox, args)
            }],
            origin: None,
            note: None,
        });
        rules.push(DRule {
            kind: RuleKind::Deductive,
            head_rel: flush.clone(),
            head_args: head(&flush, vec![DTerm::var("S"), DTerm::var("D")]),
            body: vec![
                DLiteral::atom(
                    &size_rel,
                    vec![DTerm::var("S"), DTerm::var("D"), DTerm::var("K")],
                ),
                DLiteral::Compare(
                    CompareOp::Ge,
                    DTerm::var("K"),
                    DTerm::Const(Value::Int(i64::from(size))),
                ),
            ],
            origin: None,
            note: Some(format!(
                "batch({channel}): or flush once at least {size} distinct tuples wait"
            )),
        });
    }
    let mut sent = vec![DTerm::var("D")];
    sent.extend(xs.iter().cloned());
    rules.push(DRule {
        kind: RuleKind::Async,
        head_rel: channel.clone(),
        head_args: head(&channel, sent),
        body: vec![
            outbox_atom(DTerm::Wildcard),
            DLiteral::atom(&flush, vec![DTerm::var("S"), DTerm::var("D")]),
        ],
        origin: None,
        note: Some(format!("batch({channel}): send the whole batch at once")),
    });
    let _ = first_sender_origin;
    draft.rules = rules;
    let relations = vec![NameMap {
        old: channel.clone(),
        new: vec![channel.clone()],
        how: "senders buffer tuples in an outbox and flush them as one batch".to_owned(),
    }];
    Outcome {
        case: None,
        roles: Vec::new(),
        relations,
        constants: Vec::new(),
        added: added_names,
        nodes: BTreeMap::new(),
        comparison: Comparison::Eventual,
        assumptions: Vec::new(),
    }
}

fn empty_outcome() -> Outcome {
    Outcome {
        case: None,
        roles: Vec::new(),
        relations: Vec::new(),
        constants: Vec::new(),
        added: Vec::new(),
        nodes: BTreeMap::new(),
        comparison: Comparison::Eventual,
        assumptions: Vec::new(),
    }
}
