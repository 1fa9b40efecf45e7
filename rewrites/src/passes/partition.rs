//! `partition`: run every node of a role as `n` partitions.
//!
//! Correctness (Chu et al., partitioning with co-hashing / with dependencies / partial): each
//! relation of the role gets one distribution key — the column named by `by`, or a column
//! that inherits the key through the rules that derive the relation (the head column that
//! holds the body's key variable: a functional dependency carried by a shared variable), or
//! the image of one of its columns under a declared key's functional dependency (see
//! [`super::dependencies`]; such keys are assumptions the plan records and `graft test`
//! checks), or none (replicated). Every rule of the role must then be local to a partition: all keyed
//! positive atoms share one key variable (joins), keyed negated atoms use it (anti-joins),
//! aggregates group by it, and keyed heads hold it. Then every fact in a proof tree lives on
//! one partition, and each partition derives exactly the original node's facts for its keys,
//! at the same ticks. Replicated relations hold the same facts on every partition: read-only
//! inputs are copied.
//!
//! With `partial=true` (the paper's partial partitioning), relations that break locality are
//! replicated, and a replicated relation written from a partitioned body by an `@next` rule
//! is written by a broadcast to every partition of the node. The inputs whose same-tick
//! consequences write replicated state are then *sequenced*: senders send them to the node's
//! coordinator (`X/coordinator`, a new role), which gives each tick's batch the next index and
//! runs a 2PC-like round — vote request, every partition freezes and votes, commit in index
//! order, which delivers the batch to the partitions (replicated inputs to all, keyed ones to
//! their partition) and unfreezes them. Partitions hold every other inbound channel while
//! frozen. So every partition applies the same replicated updates in the same order, and an
//! input waits for the replicated updates that preceded it. Each batch is processed as the
//! original processed that tick's inputs, three ticks later; outputs compare `eventual`.
//! Under message loss the coordinator sends vote requests and commits again until the votes
//! and acknowledgements arrive, and partitions apply each committed batch once, in index
//! order.
//!
//! Cost: each partition handles a 1/n share of the keyed work; messages are the same, except
//! that messages into replicated relations are sent to all n partitions, and a sequenced
//! batch costs 4n round messages (with acknowledgements) and three ticks of latency.
//!
//! Transformation: node `X` becomes `X/0` .. `X/n-1`. Senders route a message for `X` to
//! `X/k` with `k = key mod n` through the generated input table `R_route(at, dest, slot,
//! part)`; replicated messages go to every partition via `R_replicas(at, dest, part)`. Rules
//! of the role read their own original address from `R_self(at, orig)`, so that messages
//! carry `X`, not `X/k`. Facts of the role's relations are moved to the partition of their
//! key (or copied to all partitions when replicated). A key that is not an int is routed by a
//! stable hash of its value, materialised in a generated table `R_slot(at, value, slot)`
//! (see [`key_hash`] and [`key_domain`]). Invariants are rewritten to range over the
//! partitions of each original node (see [`readdress_never`]). See [`Coordinator`] for the
//! round.

use std::collections::{BTreeMap, BTreeSet};

use graft_compiler::ir::{self, ArithOp, CompareOp, Persistence, RelId, RuleKind, Type, Value};

use super::dependencies::{self, Dependency, Equalities, Image, Node, equalities};
use super::{Context, Outcome, discharged};
use crate::draft::{DColumn, DHeadArg, DLiteral, DRelation, DRule, DTerm, Draft};
use crate::justification::{Assumption, Comparison, Discharged, NameMap, SynchronousDelivery};
use crate::refusal::{FailedPrecondition, Refusal};
use crate::spec::PassSpec;
use crate::{FactsFile, topology};

#[derive(Clone, Debug)]
pub(super) struct PartitionPlan {
    role: String,
    n: u32,
    /// Relation name -> distribution key (None: replicated).
    keys: BTreeMap<String, Option<PlanKey>>,
    /// Rules (by id) at the role whose `@next` heads write replicated state from a
    /// partitioned body: turned into broadcasts.
    broadcasts: BTreeSet<u32>,
    /// Inbound relations (written by messages) that go through the coordinator round:
    /// those whose same-tick consequences write replicated state, and those read together
    /// with them. Empty unless the case is `partial` and replicated state is written.
    sequenced: BTreeSet<String>,
    /// The other inbound channels: buffered by each partition while a round is pending.
    buffered: BTreeSet<String>,
    /// Senders (by rule id) of messages into a relation partitioned through a dependency:
    /// the body position (literal, argument) that holds the key value.
    sender_keys: BTreeMap<u32, (usize, usize)>,
    /// Declared keys the partitioning relies on (checked by `graft test`).
    assumptions: Vec<Assumption>,
    case: String,
    pub(super) preconditions: Vec<Discharged>,
}

/// A relation's distribution key in a plan.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum PlanKey {
    /// The value of a column.
    Column(usize),
    /// The image of a column under a declared key's dependency: the partition column (`to`)
    /// of the `table` fact whose `from` column equals this relation's `column`.
    Image {
        table: String,
        from: usize,
        to: usize,
        column: usize,
    },
}

impl PlanKey {
    fn column(&self) -> Option<usize> {
        match self {
            PlanKey::Column(column) => Some(*column),
            PlanKey::Image { .. } => None,
        }
    }
}

impl PartitionPlan {
    pub(super) fn assumptions(&self) -> Vec<Assumption> {
        self.assumptions.clone()
    }

    /// The type of the value a keyed relation is partitioned on.
    fn key_type(&self, draft: &Draft, rel: &str) -> Option<String> {
        match self.keys.get(rel)?.as_ref()? {
            PlanKey::Column(column) => Some(key_type_of(draft, rel, *column)),
            PlanKey::Image { table, to, .. } => Some(key_type_of(draft, table, *to)),
        }
    }

    /// The key column of a relation partitioned on a column's value.
    fn key_column(&self, rel: &str) -> Option<usize> {
        self.keys
            .get(rel)
            .and_then(Option::as_ref)
            .and_then(PlanKey::column)
    }
}

/// A relation's distribution key during the analysis (`Column` sorts first: preferred).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Column(usize),
    Image { dep: usize, column: usize },
}

/// A problem with a key assignment, and which relations replicating would remove it.
struct Problem {
    failure: FailedPrecondition,
    demote: Vec<RelId>,
}

struct Analysis<'c, 'a> {
    context: &'c Context<'a>,
    role: String,
    by: String,
    partial: bool,
    at_role: BTreeSet<RelId>,
    dependencies: Vec<Dependency>,
    images: BTreeMap<RelId, BTreeSet<Image>>,
}

/// The outcome of assigning keys: the keys, their evidence, and what still fails.
struct Assignment {
    keys: BTreeMap<RelId, Option<Key>>,
    evidence: BTreeMap<RelId, String>,
    inherited: bool,
    demoted: BTreeSet<RelId>,
    broadcasts: BTreeSet<u32>,
    problems: Vec<Problem>,
}

impl Analysis<'_, '_> {
    fn name(&self, rel: RelId) -> &str {
        &self.context.relation(rel).name
    }

    /// Rules whose body is at the role (specification rules excluded).
    fn local_rules(&self) -> Vec<&ir::Rule> {
        self.context
            .protocol_rules()
            .filter(|rule| self.is_local(rule))
            .collect()
    }

    fn is_local(&self, rule: &ir::Rule) -> bool {
        self.context.rule_location_type(rule).as_deref() == Some(self.role.as_str())
    }

    /// The term of an atom that decides its fact's partition, or `None` when no term of the
    /// rule names it (a constant, or a lone wildcard).
    fn key_node(&self, index: usize, atom: &ir::Atom, key: Key, eq: &Equalities) -> Option<Node> {
        let location = atom.args.first().and_then(ir::Term::as_var)?;
        match key {
            Key::Column(column) => match atom.args.get(column)? {
                ir::Term::Var(var) => Some(Node::Var(*var)),
                ir::Term::Wildcard => {
                    let node = Node::Wild(index, column);
                    (!eq.is_alone(node)).then_some(node)
                }
                _ => None,
            },
            Key::Image { dep, column } => atom
                .args
                .get(column)
                .and_then(ir::Term::as_var)
                .map(|x| Node::Image(dep, location, x)),
        }
    }

    /// The term of a (non-`@async`) head that decides the derived fact's partition.
    fn head_key_node(&self, rule: &ir::Rule, key: Key) -> Option<Node> {
        let var = |column: usize| rule.head.args.get(column).and_then(ir::Term::as_var);
        match key {
            Key::Column(column) => var(column).map(Node::Var),
            Key::Image { dep, column } => {
                let location = rule.location?;
                var(column).map(|x| Node::Image(dep, location, x))
            }
        }
    }

    /// A readable name for a class of terms: a variable if it has one.
    fn describe(&self, rule: &ir::Rule, eq: &Equalities, node: Node) -> String {
        let members = eq.members(node);
        let pick = members
            .iter()
            .find(|n| matches!(n, Node::Var(_)))
            .or_else(|| members.iter().find(|n| matches!(n, Node::Image(..))))
            .copied()
            .unwrap_or(node);
        match pick {
            Node::Var(var) => format!("`{}`", rule.var_name(var)),
            Node::Wild(..) => "`_`".to_owned(),
            Node::Image(dep, _, x) => self.describe_dependency(dep, Some(rule.var_name(x))),
        }
    }

    /// "`key` of the `inflight` fact whose `req` is `R`".
    fn describe_dependency(&self, dep: usize, value: Option<&str>) -> String {
        let Some(dependency) = self.dependencies.get(dep) else {
            return "?".to_owned();
        };
        let relation = self.context.relation(dependency.table);
        let column = |index: usize| relation.columns.get(index).map_or("?", |c| c.name.as_str());
        format!(
            "`{}` of the `{}` fact whose `{}` is {}",
            column(dependency.to),
            relation.name,
            column(dependency.from),
            value.map_or_else(|| "this column".to_owned(), |v| format!("`{v}`"))
        )
    }

    fn describe_key(&self, rel: RelId, key: Key) -> String {
        let relation = self.context.relation(rel);
        match key {
            Key::Column(column) => format!(
                "`{}`",
                relation
                    .columns
                    .get(column)
                    .map_or("?", |c| c.name.as_str())
            ),
            Key::Image { dep, column } => {
                self.describe_dependency(dep, relation.columns.get(column).map(|c| c.name.as_str()))
            }
        }
    }

    /// Keys a local rule (body at the role) gives its head: head columns that hold the
    /// rule's partition key, or whose image under a dependency is the key.
    fn local_candidates(
        &self,
        rule: &ir::Rule,
        keys: &BTreeMap<RelId, Option<Key>>,
    ) -> BTreeSet<Key> {
        let eq = equalities(rule, &self.images);
        let mut classes = BTreeSet::new();
        for (index, atom) in rule.atoms() {
            if atom.negated {
                continue;
            }
            if let Some(Some(key)) = keys.get(&atom.rel) {
                match self.key_node(index, atom, *key, &eq) {
                    Some(node) => {
                        classes.insert(eq.find(node));
                    }
                    None => return BTreeSet::new(),
                }
            }
        }
        let classes: Vec<Node> = classes.into_iter().collect();
        let (&[key], Some(location)) = (classes.as_slice(), rule.location) else {
            return BTreeSet::new();
        };
        let aggregate = rule.head.aggregate.as_ref().map(|a| a.column);
        let mut found = BTreeSet::new();
        for (column, term) in rule.head.args.iter().enumerate().skip(1) {
            let Some(var) = term.as_var().filter(|_| Some(column) != aggregate) else {
                continue;
            };
            if eq.find(Node::Var(var)) == key {
                found.insert(Key::Column(column));
            }
            if rule.kind == RuleKind::Async {
                continue;
            }
            for dep in 0..self.dependencies.len() {
                if eq.find(Node::Image(dep, location, var)) == key {
                    found.insert(Key::Image { dep, column });
                }
            }
        }
        found
    }

    /// Where in an `@async` rule's body the sender finds `f_dep` of the head's `column` at
    /// the destination: a (literal, argument) position of a variable or wildcard equal to it.
    fn sender_key(&self, rule: &ir::Rule, dep: usize, column: usize) -> Option<(usize, usize)> {
        let destination = rule.head.args.first().and_then(ir::Term::as_var)?;
        let x = rule.head.args.get(column).and_then(ir::Term::as_var)?;
        let eq = equalities(rule, &self.images);
        let node = Node::Image(dep, destination, x);
        for member in eq.members(node) {
            match member {
                Node::Var(var) => {
                    for (index, atom) in rule.atoms() {
                        if atom.negated {
                            continue;
                        }
                        if let Some(position) =
                            atom.args.iter().position(|a| a.as_var() == Some(var))
                        {
                            return Some((index, position));
                        }
                    }
                }
                Node::Wild(index, position) => return Some((index, position)),
                Node::Image(..) => {}
            }
        }
        None
    }

    /// Keys through a dependency that every sender of an `@async` rule can compute.
    fn sender_candidates(&self, rule: &ir::Rule) -> BTreeSet<Key> {
        let mut found = BTreeSet::new();
        for column in 1..rule.head.args.len() {
            for dep in 0..self.dependencies.len() {
                if self.sender_key(rule, dep, column).is_some() {
                    found.insert(Key::Image { dep, column });
                }
            }
        }
        found
    }

    /// Assigns keys (the `by` column, then inherited ones), checks locality, and with
    /// `partial` demotes relations until the rules are local.
    fn assign(&self, aggregate_columns: &BTreeSet<(RelId, usize)>) -> Assignment {
        let context = self.context;
        let mut keys: BTreeMap<RelId, Option<Key>> = BTreeMap::new();
        let mut evidence: BTreeMap<RelId, String> = BTreeMap::new();
        for rel in &self.at_role {
            let relation = context.relation(*rel);
            let column = relation
                .columns
                .iter()
                .position(|column| column.name == self.by)
                .filter(|column| *column > 0 && !aggregate_columns.contains(&(*rel, *column)));
            if let Some(column) = column {
                keys.insert(*rel, Some(Key::Column(column)));
                evidence.insert(*rel, format!("column `{}` (named by `by`)", self.by));
            } else {
                keys.insert(*rel, None);
            }
        }
        // Keys inherited through the rules that derive a relation (dependencies): a head
        // column that holds the body's key (variable sharing), or whose image under a
        // declared key's dependency is the key. Column keys need every local deriving rule to
        // agree (senders route by the column); keys through a dependency need every deriving
        // rule to agree, senders included (they must compute the image).
        let mut inherited = false;
        loop {
            let mut changed = false;
            for rel in &self.at_role {
                if keys.get(rel) != Some(&None) || context.relation(*rel).input {
                    continue;
                }
                let deriving: Vec<&ir::Rule> = context
                    .protocol_rules()
                    .filter(|rule| rule.head.rel == *rel && rule.kind != RuleKind::Delete)
                    .collect();
                let local: Vec<&ir::Rule> = deriving
                    .iter()
                    .copied()
                    .filter(|rule| self.is_local(rule))
                    .collect();
                let mut columns: Option<BTreeSet<Key>> = None;
                let mut images: Option<BTreeSet<Key>> = None;
                let intersect = |acc: &mut Option<BTreeSet<Key>>, found: BTreeSet<Key>| {
                    *acc = Some(match acc.take() {
                        None => found,
                        Some(before) => before.intersection(&found).copied().collect(),
                    });
                };
                for rule in &deriving {
                    let local_found = if self.is_local(rule) {
                        self.local_candidates(rule, &keys)
                    } else {
                        BTreeSet::new()
                    };
                    if self.is_local(rule) {
                        intersect(
                            &mut columns,
                            local_found
                                .iter()
                                .copied()
                                .filter(|k| matches!(k, Key::Column(_)))
                                .collect(),
                        );
                    }
                    let image_found: BTreeSet<Key> = if rule.kind == RuleKind::Async {
                        self.sender_candidates(rule)
                    } else {
                        local_found
                            .into_iter()
                            .filter(|k| matches!(k, Key::Image { .. }))
                            .collect()
                    };
                    intersect(&mut images, image_found);
                }
                let chosen = if local.is_empty() {
                    None
                } else {
                    columns.unwrap_or_default().into_iter().next()
                }
                .or_else(|| images.unwrap_or_default().into_iter().next());
                let Some(key) = chosen else { continue };
                let witness = deriving
                    .first()
                    .map(|rule| context.checked.location(rule.span))
                    .unwrap_or_default();
                let how = match key {
                    Key::Column(column) => format!(
                        "column `{}` holds the key of every local rule deriving it (the first at {witness})",
                        context
                            .relation(*rel)
                            .columns
                            .get(column)
                            .map_or("?", |c| c.name.as_str())
                    ),
                    Key::Image { .. } => format!(
                        "every rule deriving it carries this declared key's functional dependency, through shared variables or the columns its senders' facts carry (the first at {witness})"
                    ),
                };
                keys.insert(*rel, Some(key));
                evidence.insert(*rel, format!("inherited: {how}"));
                inherited = true;
                changed = true;
            }
            if !changed {
                break;
            }
        }
        let mut broadcasts = BTreeSet::new();
        let mut demoted: BTreeSet<RelId> = BTreeSet::new();
        let mut problems = self.problems(&keys, &mut broadcasts);
        if self.partial {
            while !problems.is_empty() {
                let mut progress = false;
                for problem in &problems {
                    for rel in &problem.demote {
                        if keys.get(rel).is_some_and(Option::is_some) {
                            keys.insert(*rel, None);
                            demoted.insert(*rel);
                            evidence.insert(
                                *rel,
                                format!(
                                    "replicated (partial partitioning): {} [{}]",
                                    problem.failure.message, problem.failure.name
                                ),
                            );
                            progress = true;
                        }
                    }
                }
                if !progress {
                    break;
                }
                problems = self.problems(&keys, &mut broadcasts);
            }
        }
        Assignment {
            keys,
            evidence,
            inherited,
            demoted,
            broadcasts,
            problems,
        }
    }

    /// Every locality problem of `keys`; `broadcasts` collects the rules that write
    /// replicated state from a partitioned body by `@next` (allowed with `partial`).
    fn problems(
        &self,
        keys: &BTreeMap<RelId, Option<Key>>,
        broadcasts: &mut BTreeSet<u32>,
    ) -> Vec<Problem> {
        let mut problems = Vec::new();
        broadcasts.clear();
        let by_suggestion = |rel: &str| {
            format!(
                "partition by a column that this rule's atoms share, or pass partial=true to replicate `{rel}` on every partition"
            )
        };
        for rule in self.local_rules() {
            let eq = equalities(rule, &self.images);
            // Keyed atoms and the term that decides their partition.
            let mut keyed: Vec<(Node, RelId)> = Vec::new();
            let mut negated: Vec<(Option<Node>, &ir::Atom)> = Vec::new();
            for (index, atom) in rule.atoms() {
                let Some(Some(key)) = keys.get(&atom.rel) else {
                    continue;
                };
                let node = self.key_node(index, atom, *key, &eq);
                if node.is_none() {
                    let name = self.name(atom.rel).to_owned();
                    let column = match key {
                        Key::Column(column) | Key::Image { column, .. } => *column,
                    };
                    problems.push(Problem {
                        failure: FailedPrecondition::new(
                            "key-not-variable",
                            format!(
                                "`{name}`'s distribution key ({}) is neither a variable here nor determined through a declared key, so the partition holding the fact is not the rule's",
                                self.describe_key(atom.rel, *key)
                            ),
                            atom.arg_spans.get(column).copied().unwrap_or(atom.span),
                            format!(
                                "partition by a column that this rule's atoms share, declare a table key from which `{}` follows (`key(c)` on a table of the role with columns `c` and `{}`), or pass partial=true to replicate `{name}` on every partition",
                                self.by, self.by
                            ),
                        ).with_label(rule.span, "in this rule"),
                        demote: vec![atom.rel],
                    });
                }
                if atom.negated {
                    negated.push((node, atom));
                } else if let Some(node) = node {
                    keyed.push((eq.find(node), atom.rel));
                }
            }
            let head_node = match keys.get(&rule.head.rel) {
                Some(Some(key)) if rule.kind != RuleKind::Async => {
                    self.head_key_node(rule, *key).map(|node| eq.find(node))
                }
                _ => None,
            };
            let distinct: BTreeSet<Node> = keyed.iter().map(|(node, _)| *node).collect();
            let key = head_node
                .filter(|node| distinct.contains(node))
                .or_else(|| keyed.first().map(|(node, _)| *node));
            if let (true, Some(key)) = (distinct.len() > 1, key) {
                for (index, atom) in rule.atoms() {
                    let Some((node, _)) = keyed.iter().find(|(_, rel)| *rel == atom.rel) else {
                        continue;
                    };
                    if *node == key || atom.negated {
                        continue;
                    }
                    let _ = index;
                    let name = self.name(atom.rel).to_owned();
                    problems.push(Problem {
                        failure: FailedPrecondition::new(
                            "join-splits-partition-key",
                            format!(
                                "this join matches `{name}` on {} but the rule's partition key is {}: the facts it joins may live on different partitions",
                                self.describe(rule, &eq, *node),
                                self.describe(rule, &eq, key)
                            ),
                            atom.span,
                            by_suggestion(&name),
                        ).with_label(rule.span, "in this rule"),
                        demote: vec![atom.rel],
                    });
                }
            }
            for (node, atom) in negated {
                let Some(node) = node else { continue };
                if key.is_none() || Some(eq.find(node)) != key {
                    let name = self.name(atom.rel).to_owned();
                    problems.push(Problem {
                        failure: FailedPrecondition::new(
                            "negation-splits-partition-key",
                            format!("`notin {name}` must see every fact of `{name}`, but they are spread over the partitions"),
                            atom.span,
                            by_suggestion(&name),
                        ).with_label(rule.span, "in this rule"),
                        demote: vec![atom.rel],
                    });
                }
            }
            if let (Some(aggregate), Some(key)) = (&rule.head.aggregate, key) {
                let grouped = rule.head.args.iter().enumerate().any(|(column, term)| {
                    let Some(var) = term.as_var().filter(|_| column != aggregate.column) else {
                        return false;
                    };
                    eq.find(Node::Var(var)) == key
                        || rule.location.is_some_and(|location| {
                            (0..self.dependencies.len())
                                .any(|dep| eq.find(Node::Image(dep, location, var)) == key)
                        })
                });
                if !grouped {
                    problems.push(Problem {
                        failure: FailedPrecondition::new(
                            "group-splits-partition-key",
                            format!(
                                "`{}<...>` groups without the partition key {}: a group's facts are spread over the partitions",
                                aggregate.func.name(),
                                self.describe(rule, &eq, key)
                            ),
                            aggregate.span,
                            format!(
                                "group by the key, or pass partial=true to replicate {}",
                                keyed.iter().map(|(_, rel)| format!("`{}`", self.name(*rel))).collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>().join(", ")
                            ),
                        ).with_label(rule.span, "in this rule"),
                        demote: keyed.iter().map(|(_, rel)| *rel).collect(),
                    });
                }
            }
            // The head, when it stays at the role.
            let head_at_role =
                self.at_role.contains(&rule.head.rel) && rule.kind != RuleKind::Async;
            if !head_at_role {
                continue;
            }
            let head_name = self.name(rule.head.rel).to_owned();
            match keys.get(&rule.head.rel) {
                Some(Some(_)) => {
                    if key.is_none() || head_node != key {
                        problems.push(Problem {
                            failure: FailedPrecondition::new(
                                "head-not-co-located",
                                if key.is_none() {
                                    format!("`{head_name}` is partitioned, but this rule reads only replicated relations: every partition would derive it")
                                } else {
                                    format!("`{head_name}`'s key column does not hold the rule's partition key, so the fact would be derived on the wrong partition")
                                },
                                rule.head.span,
                                format!("pass partial=true to replicate `{head_name}`, or partition by another column"),
                            ),
                            demote: vec![rule.head.rel],
                        });
                    }
                }
                _ => {
                    if key.is_some() {
                        let body: Vec<RelId> = keyed.iter().map(|(_, rel)| *rel).collect();
                        match rule.kind {
                            RuleKind::Next if self.partial => {
                                broadcasts.insert(rule.id.0);
                            }
                            RuleKind::Next => problems.push(Problem {
                                failure: FailedPrecondition::new(
                                    "replicated-state-written",
                                    format!("`{head_name}` cannot be partitioned, and this rule updates it from partitioned state"),
                                    rule.head.span,
                                    format!("pass partial=true: `{head_name}` is then replicated and its updates are broadcast to every partition"),
                                ),
                                demote: body,
                            }),
                            _ => problems.push(Problem {
                                failure: FailedPrecondition::new(
                                    "replicated-write-same-tick",
                                    format!("`{head_name}` is replicated, but this rule derives it from partitioned state in the same tick: other partitions cannot see it in time"),
                                    rule.head.span,
                                    format!("partition `{head_name}` by the key, or derive it with `@next`"),
                                ),
                                demote: body,
                            }),
                        }
                    }
                }
            }
        }
        problems
    }
}

pub(super) fn check(
    context: &Context<'_>,
    spec: &PassSpec,
    role: &str,
    by: &str,
    n: u32,
    partial: bool,
) -> Result<PartitionPlan, Refusal> {
    let refuse = |failures| Refusal::new(spec.text(), failures);
    let program = context.program;
    let Some(role_id) = program.role_by_name(role) else {
        return Err(refuse(vec![context.unknown_role(role)]));
    };
    let at_role: BTreeSet<RelId> = program
        .relations
        .iter()
        .filter(|relation| {
            relation.origin != ir::RelationOrigin::Builtin && !context.is_spec(relation.id)
        })
        .filter(|relation| relation.columns.first().map(|c| c.ty) == Some(Type::Role(role_id)))
        .map(|relation| relation.id)
        .collect();
    // Aggregate result columns are never keys.
    let aggregate_columns: BTreeSet<(RelId, usize)> = program
        .rules
        .iter()
        .filter_map(|rule| {
            rule.head
                .aggregate
                .as_ref()
                .map(|a| (rule.head.rel, a.column))
        })
        .collect();
    let has_column = at_role.iter().any(|rel| {
        context
            .relation(*rel)
            .columns
            .iter()
            .enumerate()
            .any(|(index, column)| {
                index > 0 && column.name == by && !aggregate_columns.contains(&(*rel, index))
            })
    });
    if !has_column {
        let names: Vec<&str> = at_role
            .iter()
            .map(|rel| context.relation(*rel).name.as_str())
            .collect();
        return Err(refuse(vec![FailedPrecondition::new(
            "key-column-missing",
            format!("no relation of role `{role}` has a column `{by}`"),
            program.roles[role_id.index()].span,
            format!(
                "name a column of {} with `by=`",
                if names.is_empty() {
                    "the role's relations".to_owned()
                } else {
                    names.join(", ")
                }
            ),
        )]));
    }
    let dependencies = dependencies::dependencies(context, &at_role, by);
    let mut analysis = Analysis {
        context,
        role: role.to_owned(),
        by: by.to_owned(),
        partial,
        at_role: at_role.clone(),
        images: dependencies::images(context, &dependencies),
        dependencies,
    };
    let mut assignment = analysis.assign(&aggregate_columns);
    // Dependencies are assumptions (declared keys): use them only where they are needed, so
    // a program that partitions without them gets the same plan and no assumption.
    let mut uses_dependencies = !analysis.dependencies.is_empty();
    if uses_dependencies {
        let saved = std::mem::take(&mut analysis.images);
        let dependencies = std::mem::take(&mut analysis.dependencies);
        let without = analysis.assign(&aggregate_columns);
        let same = without.problems.is_empty() == assignment.problems.is_empty()
            && without.keys == assignment.keys
            && without.broadcasts == assignment.broadcasts;
        if assignment.problems.is_empty() && !same {
            analysis.images = saved;
            analysis.dependencies = dependencies;
        } else {
            assignment = without;
            uses_dependencies = false;
        }
    }
    let Assignment {
        keys,
        evidence,
        inherited,
        demoted,
        broadcasts,
        problems,
    } = assignment;
    if !problems.is_empty() {
        return Err(refuse(problems.into_iter().map(|p| p.failure).collect()));
    }
    if !keys.values().any(Option::is_some) {
        return Err(refuse(vec![FailedPrecondition::new(
            "nothing-partitioned",
            format!(
                "every relation of `{role}` would have to be replicated: partitioning gains nothing"
            ),
            program.roles[role_id.index()].span,
            "partition by a column that the role's joins, groups and negations share",
        )]));
    }
    // Senders into relations partitioned through a dependency compute the key themselves.
    let mut sender_keys = BTreeMap::new();
    let mut failures = Vec::new();
    for rule in context.protocol_rules() {
        let Some(Some(Key::Image { dep, column })) = keys.get(&rule.head.rel) else {
            continue;
        };
        if rule.kind != RuleKind::Async {
            continue;
        }
        match analysis.sender_key(rule, *dep, *column) {
            Some(position) => {
                sender_keys.insert(rule.id.0, position);
            }
            None => failures.push(FailedPrecondition::new(
                "sender-lacks-key",
                format!(
                    "`{}` is partitioned on {}, but this sender has no such value to route by",
                    context.relation(rule.head.rel).name,
                    analysis.describe_key(
                        rule.head.rel,
                        Key::Image {
                            dep: *dep,
                            column: *column
                        }
                    )
                ),
                rule.head.span,
                "send the key along in the message, or partition by another column",
            )),
        }
    }
    let mut preconditions = Vec::new();
    for (rel, key) in &keys {
        let relation = context.relation(*rel);
        let text = match key {
            Some(key) => format!(
                "`{}` partitioned on {}: {}",
                relation.name,
                analysis.describe_key(*rel, *key),
                evidence.get(rel).cloned().unwrap_or_default()
            ),
            None if demoted.contains(rel) => format!(
                "`{}` {}",
                relation.name,
                evidence.get(rel).cloned().unwrap_or_default()
            ),
            None if relation.input => format!(
                "`{}` replicated: a read-only input without the key, copied to every partition",
                relation.name
            ),
            None => format!(
                "`{}` replicated: it has no key column and every rule deriving it reads only replicated relations",
                relation.name
            ),
        };
        preconditions.push(discharged("distribution-key", text));
    }
    let mut assumptions = Vec::new();
    if uses_dependencies {
        for dependency in &analysis.dependencies {
            let relation = context.relation(dependency.table);
            let column = |index: usize| {
                relation
                    .columns
                    .get(index)
                    .map_or_else(|| "?".to_owned(), |c| c.name.clone())
            };
            preconditions.push(discharged(
                "functional-dependency",
                format!(
                    "`{}` declares key({}): at each node its `{}` determines its `{}`, for the whole run (a table no rule retracts from); assumed, and checked on every run by `graft test`",
                    relation.name,
                    column(dependency.from),
                    column(dependency.from),
                    column(dependency.to)
                ),
            ));
            assumptions.push(Assumption::key(
                relation.name.clone(),
                vec![column(dependency.from)],
            ));
        }
    }
    preconditions.push(discharged(
        "rules-local",
        format!(
            "every join, negation and group-by of the {} rule(s) at `{role}` is on the partition key or over replicated relations",
            analysis.local_rules().len()
        ),
    ));
    for rule in &broadcasts {
        let rule = program.rule(ir::RuleId(*rule));
        preconditions.push(discharged(
            "replicated-update",
            format!(
                "the `@next` update of `{}` at {} is broadcast to every partition; it arrives at the next tick, when the original update holds",
                context.relation(rule.head.rel).name,
                context.checked.location(rule.span)
            ),
        ));
    }
    // The round is needed only where partitions hold replicated state that a partitioned
    // input, or a relation demoted for partial partitioning, makes them write.
    let (sequenced, buffered) = if partial && (!demoted.is_empty() || !broadcasts.is_empty()) {
        sequenced_inputs(&analysis, &keys, &broadcasts)
    } else {
        (BTreeSet::new(), BTreeSet::new())
    };
    for rel in &sequenced {
        if let Some(Some(key @ Key::Image { .. })) = keys.get(rel) {
            failures.push(FailedPrecondition::new(
                "dependency-key-sequenced",
                format!(
                    "`{}` goes through the coordinator round, but it is partitioned on {}, which the coordinator cannot compute",
                    context.relation(*rel).name,
                    analysis.describe_key(*rel, *key)
                ),
                context.relation(*rel).span,
                "partition by a column the message carries",
            ));
        }
    }
    if !failures.is_empty() {
        return Err(refuse(failures));
    }
    if !sequenced.is_empty() {
        let names = |rels: &BTreeSet<RelId>| {
            rels.iter()
                .map(|rel| format!("`{}`", context.relation(*rel).name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        preconditions.push(discharged(
            "coordinator-round",
            format!(
                "{} write replicated state (directly or through same-tick rules), or are read together with such inputs: each node's coordinator gives every tick's batch of them one increasing index and commits it to every partition after all partitions voted, in index order, so replicated state is updated in the same order everywhere; {}",
                names(&sequenced),
                if buffered.is_empty() {
                    "no other input reaches the role".to_owned()
                } else {
                    format!(
                        "{} are buffered by a partition while a round it voted in is not committed",
                        names(&buffered)
                    )
                }
            ),
        ));
    }
    let case = if !demoted.is_empty() || !broadcasts.is_empty() {
        "partial"
    } else if inherited || uses_dependencies {
        "dependencies"
    } else {
        "co-hashing"
    };
    let plan_key = |key: &Key| match key {
        Key::Column(column) => PlanKey::Column(*column),
        Key::Image { dep, column } => {
            let dependency = analysis.dependencies[*dep];
            PlanKey::Image {
                table: context.relation(dependency.table).name.clone(),
                from: dependency.from,
                to: dependency.to,
                column: *column,
            }
        }
    };
    Ok(PartitionPlan {
        role: role.to_owned(),
        n,
        keys: keys
            .iter()
            .map(|(rel, key)| {
                (
                    context.relation(*rel).name.clone(),
                    key.as_ref().map(plan_key),
                )
            })
            .collect(),
        broadcasts,
        sequenced: sequenced
            .iter()
            .map(|rel| context.relation(*rel).name.clone())
            .collect(),
        buffered: buffered
            .iter()
            .map(|rel| context.relation(*rel).name.clone())
            .collect(),
        sender_keys,
        assumptions,
        case: case.to_owned(),
        preconditions,
    })
}

/// Splits the role's inbound relations (heads of `@async` rules) into those that go through
/// the coordinator round and the channels that partitions buffer during a round.
///
/// A rule's *inputs* are the inbound relations it reads, directly or through relations
/// derived from them in the same tick. The inputs of every rule that writes replicated state
/// (an `@next` or `delete` rule with a replicated head, or a broadcast) are sequenced; then,
/// to a fixpoint, so are all inputs of any rule whose inputs include a sequenced one (they
/// were processed in the same tick in the original, so they must be committed together).
/// Inbound relations that are not channels (tables written by messages) are sequenced too:
/// a partition could not hold their insertion back.
fn sequenced_inputs(
    analysis: &Analysis<'_, '_>,
    keys: &BTreeMap<RelId, Option<Key>>,
    broadcasts: &BTreeSet<u32>,
) -> (BTreeSet<RelId>, BTreeSet<RelId>) {
    let context = analysis.context;
    let inbound: BTreeSet<RelId> = context
        .protocol_rules()
        .filter(|rule| rule.kind == RuleKind::Async && analysis.at_role.contains(&rule.head.rel))
        .map(|rule| rule.head.rel)
        .collect();
    let rules = analysis.local_rules();
    // Same-tick sources of every relation at the role.
    let mut sources: BTreeMap<RelId, BTreeSet<RelId>> = BTreeMap::new();
    let inputs_of = |rule: &ir::Rule, sources: &BTreeMap<RelId, BTreeSet<RelId>>| {
        let mut inputs = BTreeSet::new();
        for (_, atom) in rule.atoms() {
            if inbound.contains(&atom.rel) {
                inputs.insert(atom.rel);
            }
            if let Some(from) = sources.get(&atom.rel) {
                inputs.extend(from.iter().copied());
            }
        }
        inputs
    };
    loop {
        let mut changed = false;
        for rule in rules.iter().filter(|rule| rule.kind == RuleKind::Deductive) {
            let inputs = inputs_of(rule, &sources);
            let entry = sources.entry(rule.head.rel).or_default();
            let before = entry.len();
            entry.extend(inputs);
            changed |= entry.len() != before;
        }
        if !changed {
            break;
        }
    }
    let mut sequenced: BTreeSet<RelId> = BTreeSet::new();
    for rule in &rules {
        let replicated_head = analysis.at_role.contains(&rule.head.rel)
            && keys.get(&rule.head.rel) == Some(&None)
            && matches!(rule.kind, RuleKind::Next | RuleKind::Delete);
        if replicated_head || broadcasts.contains(&rule.id.0) {
            sequenced.extend(inputs_of(rule, &sources));
        }
    }
    if sequenced.is_empty() {
        return (BTreeSet::new(), BTreeSet::new());
    }
    sequenced.extend(
        inbound
            .iter()
            .filter(|rel| context.relation(**rel).persistence != Persistence::Channel),
    );
    loop {
        let before = sequenced.len();
        for rule in &rules {
            let inputs = inputs_of(rule, &sources);
            if !inputs.is_disjoint(&sequenced) {
                sequenced.extend(inputs);
            }
        }
        if sequenced.len() == before {
            break;
        }
    }
    let buffered = inbound.difference(&sequenced).copied().collect();
    (sequenced, buffered)
}

/// Rewrites an invariant so that it still speaks of the original node `X`, whose facts now
/// live on the partitions `X/k`. A location variable `X` of positive atoms of the role is
/// rewritten when the invariant also uses it elsewhere (as a value, or as the location of an
/// atom of another role) or when its keyed atoms do not share one key variable (then they may
/// lie on different partitions): each such positive atom gets its own location variable,
/// bound to `X` by `self_rel(Xk, X)`, so the invariant ranges over the union of the
/// partitions. A negated atom of the role at `X` is read on the partition of a positive atom
/// at `X` with the same key variable (or of the first positive atom at `X`; with neither, on
/// some partition of `X`), which is exact for replicated relations and for keyed ones that
/// share the key. Returns whether `self_rel` is used.
fn readdress_never(
    never: &mut Vec<DLiteral>,
    keys: &BTreeMap<String, Option<usize>>,
    self_rel: &str,
    role: &str,
) -> bool {
    use super::decouple::{fresh_name, literal_vars};
    let of_role = |literal: &DLiteral| {
        literal
            .as_atom()
            .filter(|atom| keys.contains_key(&atom.rel))
            .cloned()
    };
    let mut locations: Vec<String> = Vec::new();
    for literal in never.iter() {
        if let Some(atom) = of_role(literal)
            && !atom.negated
            && let Some(DTerm::Var(name)) = atom.args.first()
            && !locations.contains(name)
        {
            locations.push(name.clone());
        }
    }
    let mut used: BTreeSet<String> = BTreeSet::new();
    for literal in never.iter() {
        literal_vars(literal, &mut |name| {
            used.insert(name.to_owned());
        });
    }
    let key_var = |atom: &crate::draft::DAtom| -> Option<Option<String>> {
        let column = keys.get(&atom.rel).copied().flatten()?;
        Some(
            atom.args
                .get(column)
                .and_then(DTerm::as_var)
                .map(str::to_owned),
        )
    };
    let mut changed = false;
    for location in locations {
        let mut elsewhere = false;
        let mut key_vars: BTreeSet<Option<String>> = BTreeSet::new();
        for literal in never.iter() {
            match literal {
                DLiteral::Atom(atom) => {
                    let role_atom = keys.contains_key(&atom.rel);
                    let here = atom.args.first().and_then(DTerm::as_var) == Some(location.as_str());
                    if role_atom
                        && here
                        && !atom.negated
                        && let Some(key) = key_var(atom)
                    {
                        key_vars.insert(key);
                    }
                    let skip = usize::from(role_atom);
                    for term in atom.args.iter().skip(skip) {
                        term.for_each_var(&mut |name| elsewhere |= name == location);
                    }
                }
                DLiteral::Compare(_, lhs, rhs) => {
                    lhs.for_each_var(&mut |name| elsewhere |= name == location);
                    rhs.for_each_var(&mut |name| elsewhere |= name == location);
                }
            }
        }
        let split = key_vars.len() > 1 || key_vars.contains(&None);
        if !elsewhere && !split {
            continue;
        }
        changed = true;
        // Each positive atom of the role at `location` gets its own variable.
        let mut bound: Vec<(Option<Option<String>>, String)> = Vec::new();
        let mut literals = Vec::with_capacity(never.len() + 2);
        let mut negated = Vec::new();
        for mut literal in never.drain(..) {
            let is_here = of_role(&literal).is_some_and(|atom| {
                atom.args.first().and_then(DTerm::as_var) == Some(location.as_str())
            });
            if !is_here {
                literals.push(literal);
                continue;
            }
            if let DLiteral::Atom(atom) = &mut literal {
                if atom.negated {
                    negated.push(literal);
                    continue;
                }
                let fresh = fresh_name(&used, &format!("{location}_{role}"));
                used.insert(fresh.clone());
                bound.push((key_var(atom), fresh.clone()));
                if let Some(first) = atom.args.first_mut() {
                    *first = DTerm::var(&fresh);
                }
                literals.push(literal);
                literals.push(DLiteral::atom(
                    self_rel,
                    vec![DTerm::var(&fresh), DTerm::var(&location)],
                ));
            }
        }
        for mut literal in negated {
            if let DLiteral::Atom(atom) = &mut literal {
                let key = key_var(atom);
                let partner = bound
                    .iter()
                    .find(|(k, _)| key.is_some() && *k == key)
                    .or_else(|| bound.first())
                    .map(|(_, var)| var.clone());
                let var = match partner {
                    Some(var) => var,
                    None => {
                        let fresh = fresh_name(&used, &format!("{location}_{role}"));
                        used.insert(fresh.clone());
                        literals.push(DLiteral::atom(
                            self_rel,
                            vec![DTerm::var(&fresh), DTerm::var(&location)],
                        ));
                        bound.push((None, fresh.clone()));
                        fresh
                    }
                };
                if let Some(first) = atom.args.first_mut() {
                    *first = DTerm::var(&var);
                }
            }
            literals.push(literal);
        }
        *never = literals;
    }
    changed
}

/// Rewrites every negated atom of the role, keyed by a column holding a variable, whose
/// location variable `X` no positive keyed atom of the role with the same key variable shares
/// (a replicated atom holds on every partition, so it does not say which partition holds the
/// key; a positive atom keyed through a dependency keeps the negation with it, as before): it
/// is read on the partition of
/// `X` that holds its key, `R_self(Xany, X), R_home(Xany, K, Xk), notin atom(Xk, ..)` (for
/// int keys `R_home(Xany, Slot, Xk), Slot == K - K / n * n`), which is exact: only that
/// partition can hold the facts with key `K`. Returns whether `self_rel` is used.
fn home_negations(
    never: &mut Vec<DLiteral>,
    plan: &PartitionPlan,
    draft: &Draft,
    self_rel: &str,
    home_tables: &mut BTreeMap<String, String>,
) -> bool {
    use super::decouple::{fresh_name, literal_vars};
    let role = plan.role.as_str();
    // What pins a location variable to one partition: a positive keyed atom at it, with its key
    // variable (a positive atom keyed through a dependency pins it to a partition that the
    // key does not name: `None`). A replicated atom holds on every partition and pins nothing.
    let mut pinned: BTreeSet<(String, Option<String>)> = BTreeSet::new();
    for atom in never.iter().filter_map(DLiteral::as_atom) {
        if atom.negated {
            continue;
        }
        let Some(Some(key)) = plan.keys.get(&atom.rel) else {
            continue;
        };
        let Some(location) = atom.args.first().and_then(DTerm::as_var) else {
            continue;
        };
        let key_var = key
            .column()
            .and_then(|column| atom.args.get(column))
            .and_then(DTerm::as_var)
            .map(str::to_owned);
        pinned.insert((location.to_owned(), key_var));
    }
    let mut used: BTreeSet<String> = BTreeSet::new();
    for literal in never.iter() {
        literal_vars(literal, &mut |name| {
            used.insert(name.to_owned());
        });
    }
    let mut changed = false;
    let mut added = Vec::new();
    for literal in never.iter_mut() {
        let DLiteral::Atom(atom) = literal else {
            continue;
        };
        if !atom.negated {
            continue;
        }
        let Some(column) = plan.key_column(&atom.rel) else {
            continue;
        };
        let (Some(DTerm::Var(location)), Some(DTerm::Var(key))) =
            (atom.args.first().cloned(), atom.args.get(column).cloned())
        else {
            continue;
        };
        // Read where a positive atom with the same key (or one keyed through a dependency) is.
        if pinned.contains(&(location.clone(), Some(key.clone())))
            || pinned.contains(&(location.clone(), None))
        {
            continue;
        }
        let key_type = key_type_of(draft, &atom.rel, column);
        let home = home_tables
            .entry(key_type.clone())
            .or_insert_with(|| draft.fresh_relation(&format!("{role}_home_{key_type}")))
            .clone();
        let any = fresh_name(&used, &format!("{location}_any"));
        used.insert(any.clone());
        let at = fresh_name(&used, &format!("{location}_{role}"));
        used.insert(at.clone());
        added.push(DLiteral::atom(
            self_rel,
            vec![DTerm::var(&any), DTerm::var(&location)],
        ));
        if key_type == "int" {
            let slot = fresh_name(&used, &format!("{location}_slot"));
            used.insert(slot.clone());
            added.push(DLiteral::atom(
                &home,
                vec![DTerm::var(&any), DTerm::var(&slot), DTerm::var(&at)],
            ));
            added.push(DLiteral::Compare(
                CompareOp::Eq,
                DTerm::var(&slot),
                modulo(DTerm::var(&key), i64::from(plan.n)),
            ));
        } else {
            added.push(DLiteral::atom(
                &home,
                vec![DTerm::var(&any), DTerm::var(&key), DTerm::var(&at)],
            ));
        }
        if let Some(first) = atom.args.first_mut() {
            *first = DTerm::var(&at);
        }
        changed = true;
    }
    // The look-ups bind the partition before the negations read it.
    if !added.is_empty() {
        let position = never
            .iter()
            .position(|l| l.as_atom().is_some_and(|a| a.negated))
            .unwrap_or(never.len());
        for (offset, literal) in added.into_iter().enumerate() {
            never.insert(position + offset, literal);
        }
    }
    changed
}

/// The partition of a key value: for an int `k = ((v mod n) + n) mod n`, as routing computes
/// it in the language; for any other value the FNV-1a hash of its canonical bytes, mod n (see
/// [`key_hash`]), which the generated `R_slot` tables hold.
fn partition_of(value: &Value, n: u32) -> u32 {
    match value {
        Value::Int(v) => {
            let n = i64::from(n);
            u32::try_from(((v % n) + n) % n).unwrap_or(0)
        }
        _ => u32::try_from(key_hash(value) % u64::from(n.max(1))).unwrap_or(0),
    }
}

/// A deterministic hash of a non-int key, stable across runs and platforms: FNV-1a (64 bit,
/// then MurmurHash3's finaliser) over a type tag and the value's bytes (`s:` and the UTF-8 text for strings and nodes,
/// `b:true` / `b:false` for booleans). Not `std`'s randomly seeded hasher.
fn key_hash(value: &Value) -> u64 {
    let bytes: Vec<u8> = match value {
        Value::Str(text) => [b"s:".as_slice(), text.as_bytes()].concat(),
        Value::Bool(true) => b"b:true".to_vec(),
        Value::Bool(false) => b"b:false".to_vec(),
        Value::Int(v) => format!("i:{v}").into_bytes(),
    };
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // FNV-1a's low bits mix poorly (its lowest bit is the parity of the bytes' lowest bits),
    // and `mod n` reads the low bits: finish with MurmurHash3's 64-bit finaliser.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^= hash >> 33;
    hash
}

/// The values a non-int key of type `ty` can take in runs of the rewritten program on the
/// given facts: `true`/`false` for `bool`; for strings, nodes and roles every string constant
/// of the program and of the facts files (the language has no string operations, so no
/// other string can appear). A value outside this set (from a workload written later) is
/// routed to partition 0 by the senders' fallback rule, and would be placed there too.
fn key_domain(draft: &Draft, files: &[FactsFile], ty: &str) -> BTreeSet<Value> {
    let mut values = BTreeSet::new();
    if ty == "bool" {
        values.insert(Value::Bool(false));
        values.insert(Value::Bool(true));
        return values;
    }
    fn term(t: &DTerm, values: &mut BTreeSet<Value>) {
        match t {
            DTerm::Const(value @ Value::Str(_)) => {
                values.insert(value.clone());
            }
            DTerm::Arith(_, lhs, rhs) => {
                term(lhs, values);
                term(rhs, values);
            }
            _ => {}
        }
    }
    for rule in &draft.rules {
        for arg in &rule.head_args {
            if let DHeadArg::Term(t) = arg {
                term(t, &mut values);
            }
        }
        for literal in &rule.body {
            match literal {
                DLiteral::Atom(atom) => atom.args.iter().for_each(|t| term(t, &mut values)),
                DLiteral::Compare(_, lhs, rhs) => {
                    term(lhs, &mut values);
                    term(rhs, &mut values);
                }
            }
        }
    }
    for (_, value) in &draft.consts {
        if matches!(value, Value::Str(_)) {
            values.insert(value.clone());
        }
    }
    let facts = draft.facts.iter().chain(
        files
            .iter()
            .flat_map(|f| f.facts.iter().chain(&f.generated)),
    );
    for fact in facts {
        for value in &fact.values {
            if matches!(value, Value::Str(_)) {
                values.insert(value.clone());
            }
        }
    }
    values
}

fn partition_node(node: &str, k: u32) -> String {
    format!("{node}/{k}")
}

/// Replaces the body location variable `from` by `to` everywhere except body atoms'
/// locations and (when `keep_head_location`) the head's location.
fn substitute_location(rule: &mut DRule, from: &str, to: &str, keep_head_location: bool) {
    fn term(t: &mut DTerm, from: &str, to: &str) {
        match t {
            DTerm::Var(name) if name == from => *name = to.to_owned(),
            DTerm::Arith(_, lhs, rhs) => {
                term(lhs, from, to);
                term(rhs, from, to);
            }
            _ => {}
        }
    }
    for (index, arg) in rule.head_args.iter_mut().enumerate() {
        if index == 0 && keep_head_location {
            continue;
        }
        if let DHeadArg::Term(t) = arg {
            term(t, from, to);
        }
    }
    for literal in &mut rule.body {
        match literal {
            DLiteral::Atom(atom) => {
                for arg in atom.args.iter_mut().skip(1) {
                    term(arg, from, to);
                }
            }
            DLiteral::Compare(_, lhs, rhs) => {
                term(lhs, from, to);
                term(rhs, from, to);
            }
        }
    }
}

fn uses_var_beyond_location(rule: &DRule, var: &str, keep_head_location: bool) -> bool {
    let mut found = false;
    let mut check = |name: &str| found |= name == var;
    for (index, arg) in rule.head_args.iter().enumerate() {
        if index == 0 && keep_head_location {
            continue;
        }
        if let DHeadArg::Term(t) = arg {
            t.for_each_var(&mut check);
        }
    }
    for literal in &rule.body {
        match literal {
            DLiteral::Atom(atom) => atom
                .args
                .iter()
                .skip(1)
                .for_each(|t| t.for_each_var(&mut check)),
            DLiteral::Compare(_, lhs, rhs) => {
                lhs.for_each_var(&mut check);
                rhs.for_each_var(&mut check);
            }
        }
    }
    found
}

pub(super) fn apply(plan: &PartitionPlan, draft: &mut Draft, files: &mut [FactsFile]) -> Outcome {
    // The relations whose `@next` updates become broadcasts to every partition.
    let broadcast_heads: BTreeSet<String> = plan
        .broadcasts
        .iter()
        .filter_map(|index| draft.rules.get(*index as usize))
        .map(|rule| rule.head_rel.clone())
        .collect();
    let role = plan.role.clone();
    let n = plan.n;
    let self_rel = draft.fresh_relation(&format!("{role}_self"));
    let at_role: BTreeSet<String> = draft
        .relations
        .iter()
        .filter(|r| plan.keys.contains_key(&r.name))
        .map(|r| r.name.clone())
        .collect();
    let location_type = |draft: &Draft, rule: &DRule| -> Option<String> {
        let first = rule.atoms().next()?;
        draft
            .relation(&first.rel)
            .map(|r| r.location_type().to_owned())
    };
    // Which sender types route (keyed) or broadcast (replicated): one table per type, typed
    // by it, so that a table's location column has one role.
    let mut route_types: BTreeSet<String> = BTreeSet::new();
    let mut replica_types: BTreeSet<String> = BTreeSet::new();
    let mut coordinator_types: BTreeSet<String> = BTreeSet::new();
    let mut slot_pairs: BTreeSet<(String, String)> = BTreeSet::new();
    for (index, rule) in draft.rules.iter().enumerate() {
        let Some(body_type) = location_type(draft, rule) else {
            continue;
        };
        if plan
            .broadcasts
            .contains(&u32::try_from(index).unwrap_or(u32::MAX))
        {
            replica_types.insert(body_type);
        } else if rule.kind == RuleKind::Async && plan.sequenced.contains(&rule.head_rel) {
            coordinator_types.insert(body_type);
        } else if rule.kind == RuleKind::Async && at_role.contains(&rule.head_rel) {
            match plan.key_type(draft, &rule.head_rel) {
                Some(key_type) => {
                    if key_type != "int" {
                        slot_pairs.insert((body_type.clone(), key_type));
                    }
                    route_types.insert(body_type)
                }
                None => replica_types.insert(body_type),
            };
        }
    }
    // Keys that are not ints are looked up in `R_slot(at, value, slot)`, one table per
    // sender type and key type.
    let slot_tables: BTreeMap<(String, String), String> = slot_pairs
        .iter()
        .map(|(sender, key_type)| {
            let name = if slot_pairs.len() == 1 {
                draft.fresh_relation(&format!("{role}_slot"))
            } else {
                draft.fresh_relation(&format!("{role}_slot_{key_type}_from_{sender}"))
            };
            ((sender.clone(), key_type.clone()), name)
        })
        .collect();
    let table_name = |draft: &Draft, base: &str, types: &BTreeSet<String>, ty: &str| {
        if types.len() <= 1 {
            draft.fresh_relation(&format!("{role}_{base}"))
        } else {
            draft.fresh_relation(&format!("{role}_{base}_from_{ty}"))
        }
    };
    let routes: BTreeMap<String, String> = route_types
        .iter()
        .map(|t| (t.clone(), table_name(draft, "route", &route_types, t)))
        .collect();
    let replica_tables: BTreeMap<String, String> = replica_types
        .iter()
        .map(|t| (t.clone(), table_name(draft, "replicas", &replica_types, t)))
        .collect();
    let coordinator = (!plan.sequenced.is_empty()).then(|| Coordinator::new(draft, plan));
    let coordinator_tables: BTreeMap<String, String> = coordinator_types
        .iter()
        .map(|t| {
            (
                t.clone(),
                table_name(draft, "coordinator_of", &coordinator_types, t),
            )
        })
        .collect();
    let mut used_self = false;
    let spec_heads: BTreeSet<String> = draft
        .relations
        .iter()
        .filter(|r| !r.declared || r.name == "pre" || r.name == "post")
        .map(|r| r.name.clone())
        .collect();
    let _ = spec_heads;
    let rules = std::mem::take(&mut draft.rules);
    let mut new_rules = Vec::with_capacity(rules.len());
    for (index, mut rule) in rules.into_iter().enumerate() {
        let body_type = location_type(draft, &rule);
        let is_local = body_type.as_deref() == Some(role.as_str())
            && (at_role.contains(&rule.head_rel) || rule.kind == RuleKind::Async);
        let broadcast = plan
            .broadcasts
            .contains(&u32::try_from(index).unwrap_or(u32::MAX));
        let location = rule.location().map(str::to_owned);
        let mut notes: Vec<String> = Vec::new();
        let mut fallback: Option<DRule> = None;
        // Rules at the role see their original address through R_self.
        let mut original = None;
        if is_local && let Some(location) = &location {
            let keep_head = rule.kind != RuleKind::Async && !broadcast;
            let needs_self = uses_var_beyond_location(&rule, location, keep_head) || broadcast;
            if needs_self {
                let original_var = rule.fresh_var(&format!("{location}0"));
                substitute_location(&mut rule, location, &original_var, keep_head);
                rule.body.push(DLiteral::atom(
                    &self_rel,
                    vec![DTerm::var(location), DTerm::var(&original_var)],
                ));
                used_self = true;
                notes.push(format!(
                    "partition({role}): `{original_var}` is this partition's original node"
                ));
                original = Some(original_var);
            }
        }
        if broadcast && let Some(location) = &location {
            let target = rule.fresh_var("Part");
            let original_var = original.clone().unwrap_or_else(|| location.clone());
            rule.kind = RuleKind::Async;
            if let Some(DHeadArg::Term(head_location)) = rule.head_args.first_mut() {
                *head_location = DTerm::var(&target);
            }
            let replicas = body_type
                .as_ref()
                .and_then(|t| replica_tables.get(t))
                .cloned()
                .unwrap_or_default();
            rule.body.push(DLiteral::atom(
                &replicas,
                vec![
                    DTerm::var(location),
                    DTerm::var(&original_var),
                    DTerm::var(&target),
                ],
            ));
            notes.push(format!(
                "partition({role}): replicated update, broadcast to every partition (was `@next`)"
            ));
        } else if let (true, Some(coordinator)) = (
            rule.kind == RuleKind::Async && plan.sequenced.contains(&rule.head_rel),
            &coordinator,
        ) {
            // A sender of a sequenced input: send it to the node's coordinator instead.
            let sender = location.clone().unwrap_or_else(|| "S".to_owned());
            let destination = match rule.head_args.first() {
                Some(DHeadArg::Term(term)) => term.clone(),
                _ => DTerm::var("D"),
            };
            let target = rule.fresh_var("Coord");
            let table = body_type
                .as_ref()
                .and_then(|t| coordinator_tables.get(t))
                .cloned()
                .unwrap_or_default();
            rule.body.push(DLiteral::atom(
                &table,
                vec![DTerm::var(&sender), destination, DTerm::var(&target)],
            ));
            if let Some(DHeadArg::Term(head_location)) = rule.head_args.first_mut() {
                *head_location = DTerm::var(&target);
            }
            let request = coordinator
                .requests
                .get(&rule.head_rel)
                .cloned()
                .unwrap_or_default();
            notes.push(format!(
                "partition({role}): sent to the node's coordinator, which commits it to the partitions in order (`{request}`)"
            ));
            rule.head_rel = request;
        } else if rule.kind == RuleKind::Async && at_role.contains(&rule.head_rel) {
            // A sender: route the message to the partition of its key.
            let sender = location.clone().unwrap_or_else(|| "S".to_owned());
            let destination = match rule.head_args.first() {
                Some(DHeadArg::Term(term)) => term.clone(),
                _ => DTerm::var("D"),
            };
            let target = rule.fresh_var("Part");
            // The key value: the head's key column, or for a relation partitioned through a
            // dependency the body term that holds the image (a wildcard there gets a name).
            let key = match plan.keys.get(&rule.head_rel).and_then(Option::as_ref) {
                Some(PlanKey::Column(column)) => Some((
                    match rule.head_args.get(*column) {
                        Some(DHeadArg::Term(term)) => term.clone(),
                        _ => DTerm::Wildcard,
                    },
                    key_type_of(draft, &rule.head_rel, *column),
                    draft
                        .relation(&rule.head_rel)
                        .and_then(|r| r.columns.get(*column))
                        .map_or("key", |c| c.name.as_str())
                        .to_owned(),
                )),
                Some(PlanKey::Image { table, to, .. }) => {
                    let position = u32::try_from(index)
                        .ok()
                        .and_then(|id| plan.sender_keys.get(&id))
                        .copied();
                    let term = position.and_then(|(literal, argument)| {
                        let fresh = rule.fresh_var("Key");
                        let DLiteral::Atom(atom) = rule.body.get_mut(literal)? else {
                            return None;
                        };
                        let arg = atom.args.get_mut(argument)?;
                        if *arg == DTerm::Wildcard {
                            *arg = DTerm::var(&fresh);
                        }
                        Some(arg.clone())
                    });
                    let column_name = draft
                        .relation(table)
                        .and_then(|r| r.columns.get(*to))
                        .map_or("key", |c| c.name.as_str());
                    Some((
                        term.unwrap_or(DTerm::Wildcard),
                        key_type_of(draft, table, *to),
                        format!("{column_name}` of its `{table}"),
                    ))
                }
                None => None,
            };
            match key {
                Some((key_term, key_type, column_name)) if key_type != "int" => {
                    // Look the key's slot up; a key outside the table goes to slot 0.
                    let slot = rule.fresh_var("Slot");
                    let table = body_type
                        .as_ref()
                        .and_then(|t| slot_tables.get(&(t.clone(), key_type.clone())))
                        .cloned()
                        .unwrap_or_default();
                    let route = body_type
                        .as_ref()
                        .and_then(|t| routes.get(t))
                        .cloned()
                        .unwrap_or_default();
                    let mut other = rule.clone();
                    rule.body.push(DLiteral::atom(
                        &table,
                        vec![DTerm::var(&sender), key_term.clone(), DTerm::var(&slot)],
                    ));
                    rule.body.push(DLiteral::atom(
                        &route,
                        vec![
                            DTerm::var(&sender),
                            destination.clone(),
                            DTerm::var(&slot),
                            DTerm::var(&target),
                        ],
                    ));
                    let mut unknown = DLiteral::atom(
                        &table,
                        vec![DTerm::var(&sender), key_term, DTerm::Wildcard],
                    );
                    if let DLiteral::Atom(atom) = &mut unknown {
                        atom.negated = true;
                    }
                    other.body.push(unknown);
                    other.body.push(DLiteral::atom(
                        &route,
                        vec![
                            DTerm::var(&sender),
                            destination,
                            DTerm::Const(Value::Int(0)),
                            DTerm::var(&target),
                        ],
                    ));
                    if let Some(DHeadArg::Term(head_location)) = other.head_args.first_mut() {
                        *head_location = DTerm::var(&target);
                    }
                    let mut other_notes = notes.clone();
                    other_notes.push(format!(
                        "partition({role}): a `{column_name}` that `{table}` does not list goes to partition 0"
                    ));
                    other.note = Some(other_notes.join("; "));
                    fallback = Some(other);
                    notes.push(format!(
                        "partition({role}): routed to the partition of its key (hash of `{column_name}` mod {n}, from `{table}`)"
                    ));
                }
                Some((key_term, _, column_name)) => {
                    let key_term = match key_term {
                        DTerm::Wildcard => DTerm::Const(Value::Int(0)),
                        term => term,
                    };
                    let slot = rule.fresh_var("Slot");
                    let modulo = DTerm::Arith(
                        ArithOp::Sub,
                        Box::new(key_term.clone()),
                        Box::new(DTerm::Arith(
                            ArithOp::Mul,
                            Box::new(DTerm::Arith(
                                ArithOp::Div,
                                Box::new(key_term),
                                Box::new(DTerm::Const(Value::Int(i64::from(n)))),
                            )),
                            Box::new(DTerm::Const(Value::Int(i64::from(n)))),
                        )),
                    );
                    let route = body_type
                        .as_ref()
                        .and_then(|t| routes.get(t))
                        .cloned()
                        .unwrap_or_default();
                    rule.body.push(DLiteral::atom(
                        &route,
                        vec![
                            DTerm::var(&sender),
                            destination,
                            DTerm::var(&slot),
                            DTerm::var(&target),
                        ],
                    ));
                    rule.body
                        .push(DLiteral::Compare(CompareOp::Eq, DTerm::var(&slot), modulo));
                    let column_name = if column_name.contains('`') {
                        format!("`{column_name}`")
                    } else {
                        column_name
                    };
                    notes.push(format!(
                        "partition({role}): routed to the partition of its key ({column_name} mod {n})"
                    ));
                }
                None => {
                    let replicas = body_type
                        .as_ref()
                        .and_then(|t| replica_tables.get(t))
                        .cloned()
                        .unwrap_or_default();
                    rule.body.push(DLiteral::atom(
                        &replicas,
                        vec![DTerm::var(&sender), destination, DTerm::var(&target)],
                    ));
                    notes.push(format!(
                        "partition({role}): sent to every partition (replicated relation)"
                    ));
                }
            }
            if let Some(DHeadArg::Term(head_location)) = rule.head_args.first_mut() {
                *head_location = DTerm::var(&target);
            }
        }
        if !notes.is_empty() {
            rule.note = Some(notes.join("; "));
        }
        new_rules.push(rule);
        new_rules.extend(fallback);
    }
    draft.rules = new_rules;
    // Invariants speak of the original nodes: read the partitions' facts as the node's. A
    // relation partitioned through a dependency has no key column an invariant could share:
    // it is read over the union of the partitions (its key column is out of range).
    let never_keys: BTreeMap<String, Option<usize>> = plan
        .keys
        .iter()
        .map(|(name, key)| {
            let column = key.as_ref().map(|key| key.column().unwrap_or(usize::MAX));
            (name.clone(), column)
        })
        .collect();
    // A negated keyed atom at a node that no positive atom of the role pins to a partition
    // is read on its key's home partition, looked up in `R_home` (per key type).
    let mut home_tables: BTreeMap<String, String> = BTreeMap::new();
    let mut nevers = std::mem::take(&mut draft.nevers);
    for never in &mut nevers {
        used_self |= home_negations(never, plan, draft, &self_rel, &mut home_tables);
        used_self |= readdress_never(never, &never_keys, &self_rel, &role);
    }
    draft.nevers = nevers;
    // Generated topology relations.
    let mut added = Vec::new();
    let position = draft
        .relations
        .iter()
        .rposition(|r| r.input)
        .map_or(0, |p| p + 1);
    let mut generated_relations = Vec::new();
    let column = |name: &str, ty: &str| DColumn {
        name: name.to_owned(),
        ty: ty.to_owned(),
    };
    let table = |name: &str, columns: Vec<DColumn>, note: String| DRelation {
        name: name.to_owned(),
        input: true,
        output: false,
        persistence: Persistence::Table,
        columns,
        key: None,
        declared: true,
        note: Some(note),
    };
    for (ty, route) in &routes {
        generated_relations.push(table(route, vec![column("at", ty), column("dest", &role), column("slot", "int"), column("part", &role)], format!("partition({role}): generated topology; a message for `dest` whose key is `slot` mod {n} goes to `part`")));
    }
    for ((ty, key_type), slot) in &slot_tables {
        generated_relations.push(table(
            slot,
            vec![
                column("at", ty),
                column("value", key_type),
                column("slot", "int"),
            ],
            format!("partition({role}): generated topology; the slot of a key: its hash mod {n}"),
        ));
    }
    for (ty, replicas) in &replica_tables {
        generated_relations.push(table(
            replicas,
            vec![
                column("at", ty),
                column("dest", &role),
                column("part", &role),
            ],
            format!("partition({role}): generated topology; the partitions of `dest`"),
        ));
    }
    let mut round_relations = Vec::new();
    if let Some(coordinator) = &coordinator {
        for (ty, name) in &coordinator_tables {
            generated_relations.push(table(
                name,
                vec![
                    column("at", ty),
                    column("dest", &role),
                    column("coord", &coordinator.role),
                ],
                format!("partition({role}): generated topology; the coordinator of `dest`"),
            ));
        }
        round_relations = coordinator.generate(draft, plan, &mut generated_relations);
    }
    for (key_type, home) in &home_tables {
        let value = if key_type == "int" {
            column("slot", "int")
        } else {
            column("value", key_type)
        };
        generated_relations.push(table(
            home,
            vec![column("at", &role), value, column("part", &role)],
            format!("partition({role}): generated topology; the partition of the same node that holds a key (for invariants)"),
        ));
    }
    if used_self {
        generated_relations.push(table(
            &self_rel,
            vec![column("at", &role), column("orig", &role)],
            format!("partition({role}): generated topology; the node a partition replaces"),
        ));
    }
    for (offset, relation) in generated_relations.into_iter().enumerate() {
        added.push(relation.name.clone());
        draft.relations.insert(position + offset, relation);
    }
    added.extend(round_relations);
    // Nodes.
    let role_nodes = topology::nodes_of(draft, files, &role);
    let all_nodes = topology::all_nodes(draft, files);
    let mut nodes = BTreeMap::new();
    for node in &role_nodes {
        for k in 0..n {
            nodes.insert(partition_node(node, k), node.clone());
        }
    }
    let senders_of = |draft: &Draft, files: &[FactsFile], sender_type: &str| -> BTreeSet<String> {
        let mut senders = BTreeSet::new();
        if sender_type == role {
            senders.extend(nodes.keys().cloned());
        } else if sender_type == "node" {
            senders.extend(
                all_nodes
                    .iter()
                    .filter(|node| !role_nodes.contains(*node))
                    .cloned(),
            );
            senders.extend(nodes.keys().cloned());
        } else {
            senders.extend(topology::nodes_of(draft, files, sender_type));
        }
        senders
    };
    let route_senders: Vec<(String, BTreeSet<String>)> = routes
        .iter()
        .map(|(t, name)| (name.clone(), senders_of(draft, files, t)))
        .collect();
    let coordinator_senders: Vec<(String, BTreeSet<String>)> = coordinator_tables
        .iter()
        .map(|(t, name)| (name.clone(), senders_of(draft, files, t)))
        .collect();
    let slot_senders: Vec<(String, String, BTreeSet<String>)> = slot_tables
        .iter()
        .map(|((t, key_type), name)| (name.clone(), key_type.clone(), senders_of(draft, files, t)))
        .collect();
    let replica_senders: Vec<(String, BTreeSet<String>)> = replica_tables
        .iter()
        .map(|(t, name)| (name.clone(), senders_of(draft, files, t)))
        .collect();
    // Facts of the role's relations move to their partitions.
    // A fact partitioned through a dependency goes where the dependency's table maps its
    // column: the table's given facts at the same node say it (none: partition 0, as for an
    // unlisted key).
    let mut images: BTreeMap<(String, String, Value), Value> = BTreeMap::new();
    for key in plan.keys.values().flatten() {
        let PlanKey::Image {
            table, from, to, ..
        } = key
        else {
            continue;
        };
        let given = draft.facts.iter().chain(
            files
                .iter()
                .flat_map(|f| f.facts.iter().chain(&f.generated)),
        );
        for fact in given.filter(|fact| fact.rel == *table) {
            if let (Some(node), Some(x), Some(y)) = (
                fact.values.first().and_then(Value::as_str),
                fact.values.get(*from),
                fact.values.get(*to),
            ) {
                images.insert((table.clone(), node.to_owned(), x.clone()), y.clone());
            }
        }
    }
    // Inputs located at any node (`at: node`, e.g. a decoupled role's routing table, held by
    // every sender of its channels): the facts at a node of the role are read by the role's
    // rules, so each partition needs them, as a replicated read-only input.
    let at_any_node: BTreeSet<String> = draft
        .relations
        .iter()
        .filter(|relation| relation.input && relation.location_type() == "node")
        .map(|relation| relation.name.clone())
        .collect();
    let relocate = |facts: &mut Vec<crate::DFact>| {
        let mut moved = Vec::new();
        for fact in facts.drain(..) {
            let key = if at_role.contains(&fact.rel) {
                plan.keys.get(&fact.rel).cloned()
            } else if at_any_node.contains(&fact.rel)
                && fact
                    .values
                    .first()
                    .and_then(Value::as_str)
                    .is_some_and(|node| role_nodes.contains(node))
            {
                Some(None)
            } else {
                None
            };
            let location = fact
                .values
                .first()
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            match (key, location) {
                (Some(Some(key)), Some(location)) => {
                    let value = match &key {
                        PlanKey::Column(column) => fact.values.get(*column).cloned(),
                        PlanKey::Image { table, column, .. } => {
                            fact.values.get(*column).and_then(|x| {
                                images
                                    .get(&(table.clone(), location.clone(), x.clone()))
                                    .cloned()
                            })
                        }
                    };
                    let k = value.map_or(0, |value| partition_of(&value, n));
                    let mut values = fact.values.clone();
                    values[0] = Value::str(&partition_node(&location, k));
                    moved.push(crate::DFact { values, ..fact });
                }
                (Some(None), Some(location)) => {
                    for k in 0..n {
                        let mut values = fact.values.clone();
                        values[0] = Value::str(&partition_node(&location, k));
                        moved.push(crate::DFact {
                            values,
                            ..fact.clone()
                        });
                    }
                }
                _ => moved.push(fact),
            }
        }
        *facts = moved;
    };
    relocate(&mut draft.facts);
    for file in files.iter_mut() {
        relocate(&mut file.facts);
        relocate(&mut file.generated);
    }
    let mut generated = Vec::new();
    let fact = |rel: &str, values: Vec<Value>| crate::DFact {
        rel: rel.to_owned(),
        values,
        tick: 1,
    };
    let span = i64::from(n) - 1;
    for (route, sender, node) in per_sender_and_node(&route_senders, &role_nodes) {
        for slot in -span..=span {
            let k = partition_of(&Value::Int(slot), n);
            let destination = Value::str(&partition_node(node, k));
            let values = vec![
                Value::str(sender),
                Value::str(node),
                Value::Int(slot),
                destination,
            ];
            generated.push(fact(route, values));
        }
    }
    for (table, key_type, senders) in &slot_senders {
        let domain = key_domain(draft, files, key_type);
        for sender in senders {
            for value in &domain {
                let slot = i64::from(partition_of(value, n));
                generated.push(fact(
                    table,
                    vec![Value::str(sender), value.clone(), Value::Int(slot)],
                ));
            }
        }
    }
    for (replicas, sender, node) in per_sender_and_node(&replica_senders, &role_nodes) {
        for k in 0..n {
            let values = vec![
                Value::str(sender),
                Value::str(node),
                Value::str(&partition_node(node, k)),
            ];
            generated.push(fact(replicas, values));
        }
    }
    for (table, sender, node) in per_sender_and_node(&coordinator_senders, &role_nodes) {
        let values = vec![
            Value::str(sender),
            Value::str(node),
            Value::str(&Coordinator::node(node)),
        ];
        generated.push(fact(table, values));
    }
    if let Some(coordinator) = &coordinator {
        generated.extend(coordinator.facts(plan, &role_nodes));
        for (key_type, slot) in &coordinator.slots {
            let domain = key_domain(draft, files, key_type);
            for node in &role_nodes {
                for value in &domain {
                    generated.push(fact(
                        slot,
                        vec![
                            Value::str(&Coordinator::node(node)),
                            value.clone(),
                            Value::Int(i64::from(partition_of(value, n))),
                        ],
                    ));
                }
            }
        }
    }
    for (key_type, home) in &home_tables {
        let values: Vec<(Value, u32)> = if key_type == "int" {
            let span = i64::from(n) - 1;
            (-span..=span)
                .map(|slot| (Value::Int(slot), partition_of(&Value::Int(slot), n)))
                .collect()
        } else {
            key_domain(draft, files, key_type)
                .into_iter()
                .map(|value| {
                    let k = partition_of(&value, n);
                    (value, k)
                })
                .collect()
        };
        for node in &role_nodes {
            for part in 0..n {
                for (value, k) in &values {
                    generated.push(fact(
                        home,
                        vec![
                            Value::str(&partition_node(node, part)),
                            value.clone(),
                            Value::str(&partition_node(node, *k)),
                        ],
                    ));
                }
            }
        }
    }
    if used_self {
        for (partition, node) in &nodes {
            generated.push(fact(
                &self_rel,
                vec![Value::str(partition), Value::str(node)],
            ));
        }
    }
    if coordinator.is_some() {
        for node in &role_nodes {
            nodes.insert(Coordinator::node(node), node.clone());
        }
    }
    match files.iter_mut().find(|file| !file.is_workload()) {
        Some(file) => file.generated.extend(generated),
        None => match files.first_mut() {
            Some(file) => file.generated.extend(generated),
            None => draft.facts.extend(generated),
        },
    }
    // A sequenced input that nothing reads or writes any more (its senders now address the
    // coordinator, and partitions read the applied batch) is no longer declared.
    let mut removed: BTreeSet<String> = BTreeSet::new();
    for input in &plan.sequenced {
        let mut used = draft.facts.iter().any(|f| f.rel == *input)
            || files.iter().any(|file| {
                file.facts
                    .iter()
                    .chain(&file.generated)
                    .any(|f| f.rel == *input)
            })
            || draft
                .nevers
                .iter()
                .flatten()
                .any(|l| l.as_atom().is_some_and(|a| a.rel == *input));
        for rule in &draft.rules {
            used |= rule.head_rel == *input || rule.atoms().any(|a| a.rel == *input);
        }
        if !used {
            draft.relations.retain(|r| r.name != *input);
            removed.insert(input.clone());
        }
    }
    let relations = plan
        .keys
        .iter()
        .map(|(name, key)| NameMap {
            old: name.clone(),
            new: vec![name.clone()],
            how: match key {
                Some(PlanKey::Column(column)) => format!(
                    "partitioned on `{}`",
                    draft
                        .relation(name)
                        .and_then(|r| r.columns.get(*column))
                        .map_or("?", |c| c.name.as_str())
                ),
                Some(PlanKey::Image {
                    table,
                    from,
                    to,
                    column,
                }) => {
                    let column_name = |rel: &str, index: usize| {
                        draft
                            .relation(rel)
                            .and_then(|r| r.columns.get(index))
                            .map_or_else(|| "?".to_owned(), |c| c.name.clone())
                    };
                    format!(
                        "partitioned on `{}` of the `{table}` fact whose `{}` is its `{}` (a declared key's dependency)",
                        column_name(table, *to),
                        column_name(table, *from),
                        column_name(name, *column)
                    )
                }
                None => "replicated on every partition".to_owned(),
            },
        })
        .map(|mut map| {
            if let Some(coordinator) = &coordinator {
                if let (Some(request), Some(pending)) = (
                    coordinator.requests.get(&map.old),
                    coordinator.pending.get(&map.old),
                ) {
                    if removed.contains(&map.old) {
                        map.new.clear();
                    }
                    map.new.push(request.clone());
                    map.new.push(pending.clone());
                    for names in [&coordinator.tagged, &coordinator.kept, &coordinator.applying] {
                        map.new.extend(names.get(&map.old).cloned());
                    }
                    map.how.push_str("; sent through the coordinator round");
                }
                if let (Some(ready), Some(held)) = (
                    coordinator.ready.get(&map.old),
                    coordinator.held.get(&map.old),
                ) {
                    map.new.push(ready.clone());
                    map.new.push(held.clone());
                    map.how
                        .push_str("; held by a partition while a coordinator round is pending");
                }
            }
            map
        })
        .collect();
    Outcome {
        case: Some(plan.case.clone()),
        roles: vec![NameMap {
            old: role.clone(),
            new: coordinator.as_ref().map_or_else(
                || vec![role.clone()],
                |coordinator| vec![role.clone(), coordinator.role.clone()],
            ),
            how: match &coordinator {
                None => format!("every node X runs as {n} partitions X/0 .. X/{}", n - 1),
                Some(coordinator) => format!(
                    "every node X runs as {n} partitions X/0 .. X/{} and a coordinator X/coordinator (role `{}`) that orders the inputs writing replicated state",
                    n - 1,
                    coordinator.role
                ),
            },
        }],
        relations,
        constants: Vec::new(),
        added,
        nodes,
        comparison: if coordinator.is_some() {
            Comparison::Eventual
        } else {
            Comparison::PerTick
        },
        assumptions: coordinator
            .as_ref()
            .map(|coordinator| vec![coordinator.synchronous_delivery(&broadcast_heads)])
            .unwrap_or_default(),
    }
}

/// The coordinator round of partial partitioning: names of the generated role and relations.
///
/// Per original node `X`, the coordinator `X/coordinator` receives the sequenced inputs
/// (`m_request`), gives each tick's batch the next index (`_index`, remembered in
/// `_assigned`), keeps it (`m_pending`) and asks every partition to vote (`vote_request`).
/// A partition freezes (`frozen`) and votes; when all partitions voted for an index and the
/// previous index is committed, the coordinator commits it: it sends the batch's inputs,
/// tagged with the index (`m_commit`), to the partitions (replicated inputs to all, keyed
/// ones to their key's partition) together with `commit`. A partition acknowledges the
/// commit, keeps the batch (`m_received`) and applies it once, in index order (`apply`):
/// its rules read `m_apply`, and applying unfreezes it. Vote requests and commits are sent
/// again every tick until the vote or acknowledgement arrives (from the second tick on, so
/// a fault-free run sends nothing twice). Partitions hold other inbound channels (`d_held`)
/// while frozen and read them through `d_ready` once no round is pending.
struct Coordinator {
    role: String,
    requests: BTreeMap<String, String>,
    pending: BTreeMap<String, String>,
    ready: BTreeMap<String, String>,
    held: BTreeMap<String, String>,
    partitions: String,
    route: String,
    /// Slot tables for sequenced inputs keyed by a column that is not an int, by key type.
    slots: BTreeMap<String, String>,
    batch: String,
    assigned: String,
    started: String,
    last: String,
    index: String,
    vote_request: String,
    frozen: String,
    busy: String,
    vote: String,
    votes: String,
    vote_count: String,
    commit_now: String,
    committed: String,
    commit: String,
    /// Retransmission: indexes whose missing votes are asked for again.
    vote_overdue: String,
    /// Retransmission: committed indexes whose missing acknowledgements trigger a resend.
    commit_overdue: String,
    commit_ack: String,
    acks: String,
    ack_count: String,
    /// Partition side: commits received (kept until applied in index order).
    received: String,
    applied: String,
    any_applied: String,
    last_applied: String,
    apply: String,
    /// Per sequenced input: the batch's facts tagged with their index, as sent, as kept by a
    /// partition until applied, and as the role's rules read them.
    tagged: BTreeMap<String, String>,
    kept: BTreeMap<String, String>,
    applying: BTreeMap<String, String>,
}

impl Coordinator {
    /// The round's timing assumption (`graft test --max-delay` shows each part failing on a
    /// protocol that reads replicated state written by a batch: see docs/rewrites.md).
    fn synchronous_delivery(&self, broadcasts: &BTreeSet<String>) -> Assumption {
        let mut channels: Vec<String> = vec![self.vote_request.clone(), self.commit.clone()];
        channels.extend(self.tagged.values().cloned());
        channels.extend(broadcasts.iter().cloned());
        Assumption::SynchronousDelivery(SynchronousDelivery::new(
            channels,
            format!(
                "a partition must receive the vote request for a batch at the tick the original received its inputs, or it applies inputs buffered behind the batch before the batch; every partition must receive the commit (`{}`) at the tick after it is sent, and the replicated updates{} a partition broadcasts when it applies a batch must reach the other partitions at the next tick, as the original's `@next` update held there, or a partition applies later inputs on stale replicated state",
                self.commit,
                if broadcasts.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({})",
                        broadcasts
                            .iter()
                            .map(|name| format!("`{name}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ),
        ))
    }

    fn new(draft: &Draft, plan: &PartitionPlan) -> Coordinator {
        let role = &plan.role;
        let coordinator = draft.fresh_role(&format!("{role}_coordinator"));
        let mut taken: BTreeSet<String> = BTreeSet::new();
        let mut fresh = |base: String| {
            let mut name = draft.fresh_relation(&base);
            let mut suffix = 2;
            while taken.contains(&name) {
                name = draft.fresh_relation(&format!("{base}_{suffix}"));
                suffix += 1;
            }
            taken.insert(name.clone());
            name
        };
        let mut requests = BTreeMap::new();
        let mut pending = BTreeMap::new();
        let mut tagged = BTreeMap::new();
        let mut kept = BTreeMap::new();
        let mut applying = BTreeMap::new();
        for input in &plan.sequenced {
            requests.insert(input.clone(), fresh(format!("{input}_request")));
            pending.insert(input.clone(), fresh(format!("{input}_pending")));
            tagged.insert(input.clone(), fresh(format!("{input}_commit")));
            kept.insert(input.clone(), fresh(format!("{input}_received")));
            applying.insert(input.clone(), fresh(format!("{input}_apply")));
        }
        let mut slots = BTreeMap::new();
        for input in &plan.sequenced {
            if let Some(column) = plan.key_column(input) {
                let key_type = key_type_of(draft, input, column);
                if key_type != "int" && !slots.contains_key(&key_type) {
                    let name = fresh(format!("{coordinator}_slot_{key_type}"));
                    slots.insert(key_type, name);
                }
            }
        }
        let mut ready = BTreeMap::new();
        let mut held = BTreeMap::new();
        for input in &plan.buffered {
            ready.insert(input.clone(), fresh(format!("{input}_ready")));
            held.insert(input.clone(), fresh(format!("{input}_held")));
        }
        Coordinator {
            requests,
            pending,
            ready,
            held,
            partitions: fresh(format!("{coordinator}_partitions")),
            route: fresh(format!("{coordinator}_route")),
            slots,
            batch: fresh(format!("{coordinator}_batch")),
            assigned: fresh(format!("{coordinator}_assigned")),
            started: fresh(format!("{coordinator}_started")),
            last: fresh(format!("{coordinator}_last")),
            index: fresh(format!("{coordinator}_index")),
            vote_request: fresh(format!("{role}_vote_request")),
            frozen: fresh(format!("{role}_frozen")),
            busy: fresh(format!("{role}_busy")),
            vote: fresh(format!("{coordinator}_vote")),
            votes: fresh(format!("{coordinator}_votes")),
            vote_count: fresh(format!("{coordinator}_vote_count")),
            commit_now: fresh(format!("{coordinator}_commit_now")),
            committed: fresh(format!("{coordinator}_committed")),
            commit: fresh(format!("{role}_commit")),
            vote_overdue: fresh(format!("{coordinator}_vote_overdue")),
            commit_overdue: fresh(format!("{coordinator}_commit_overdue")),
            commit_ack: fresh(format!("{coordinator}_commit_ack")),
            acks: fresh(format!("{coordinator}_acks")),
            ack_count: fresh(format!("{coordinator}_ack_count")),
            received: fresh(format!("{role}_received")),
            applied: fresh(format!("{role}_applied")),
            any_applied: fresh(format!("{role}_any_applied")),
            last_applied: fresh(format!("{role}_last_applied")),
            apply: fresh(format!("{role}_apply")),
            tagged,
            kept,
            applying,
            role: coordinator,
        }
    }

    fn node(node: &str) -> String {
        format!("{node}/coordinator")
    }

    /// Whether some sequenced input is routed by a key (needs the route table).
    fn routes(&self, plan: &PartitionPlan) -> bool {
        plan.sequenced
            .iter()
            .any(|input| plan.key_column(input).is_some())
    }

    /// Adds the round's relations (the input tables go to `inputs`, the rest to the end of
    /// the draft's relations) and rules, and renames buffered channels in the role's rules.
    fn generate(
        &self,
        draft: &mut Draft,
        plan: &PartitionPlan,
        inputs: &mut Vec<DRelation>,
    ) -> Vec<String> {
        let role = plan.role.as_str();
        let coordinator = self.role.as_str();
        let n = i64::from(plan.n);
        draft.roles.push(self.role.clone());
        let note = |text: &str| Some(format!("partition({role}): coordinator round; {text}"));
        let column = |name: &str, ty: &str| DColumn {
            name: name.to_owned(),
            ty: ty.to_owned(),
        };
        let relation =
            |name: &str, persistence: Persistence, columns: Vec<DColumn>, text: &str| DRelation {
                name: name.to_owned(),
                input: false,
                output: false,
                persistence,
                columns,
                key: None,
                declared: true,
                note: note(text),
            };
        let input = |name: &str, columns: Vec<DColumn>, text: &str| DRelation {
            input: true,
            ..relation(name, Persistence::Table, columns, text)
        };
        inputs.push(input(
            &self.partitions,
            vec![column("at", coordinator), column("part", role)],
            "generated topology; the partitions of the coordinator's node",
        ));
        if self.routes(plan) {
            inputs.push(input(
                &self.route,
                vec![
                    column("at", coordinator),
                    column("slot", "int"),
                    column("part", role),
                ],
                &format!("generated topology; an input whose key is `slot` mod {n} goes to `part`"),
            ));
        }
        for (key_type, slot) in &self.slots {
            inputs.push(input(
                slot,
                vec![
                    column("at", coordinator),
                    column("value", key_type),
                    column("slot", "int"),
                ],
                &format!("generated topology; the slot of a key: its hash mod {n}"),
            ));
        }
        let mut relations = Vec::new();
        let mut rules = Vec::new();
        let var = DTerm::var;
        let int = |value: i64| DTerm::Const(Value::Int(value));
        let atom = |rel: &str, args: Vec<DTerm>| DLiteral::atom(rel, args);
        let not = |rel: &str, args: Vec<DTerm>| {
            let mut literal = DLiteral::atom(rel, args);
            if let DLiteral::Atom(atom) = &mut literal {
                atom.negated = true;
            }
            literal
        };
        let rule = |kind: RuleKind, head: &str, args: Vec<DTerm>, body: Vec<DLiteral>| DRule {
            kind,
            head_rel: head.to_owned(),
            head_args: args.into_iter().map(DHeadArg::Term).collect(),
            body,
            origin: None,
            note: None,
        };
        let c = || var("Coord");
        let i = || var("Index");
        let p = || var("Part");
        // Sequenced inputs: the request channel and the pending batch.
        for (input, request) in &self.requests {
            let Some(original) = draft.relation(input).cloned() else {
                continue;
            };
            let pending = self.pending.get(input).cloned().unwrap_or_default();
            let payload: Vec<DColumn> = original.columns.iter().skip(1).cloned().collect();
            let mut request_columns = vec![column("at", coordinator)];
            request_columns.extend(payload.iter().cloned());
            relations.push(relation(
                request,
                Persistence::Channel,
                request_columns,
                &format!("`{input}` sent to the coordinator"),
            ));
            let mut pending_columns = vec![column("at", coordinator), column("index", "int")];
            pending_columns.extend(payload.iter().cloned());
            relations.push(relation(
                &pending,
                Persistence::Table,
                pending_columns,
                &format!("`{input}` inputs waiting for their round to commit"),
            ));
            let vars = payload_vars(&payload);
            let values: Vec<DTerm> = vars.iter().map(|v| var(v)).collect();
            let with = |first: Vec<DTerm>| {
                let mut args = first;
                args.extend(values.iter().cloned());
                args
            };
            let mut any = vec![c()];
            any.extend(values.iter().map(|_| DTerm::Wildcard));
            rules.push(rule(
                RuleKind::Deductive,
                &self.batch,
                vec![c()],
                vec![atom(request, any)],
            ));
            rules.push(rule(
                RuleKind::Deductive,
                &pending,
                with(vec![c(), i()]),
                vec![
                    atom(request, with(vec![c()])),
                    atom(&self.index, vec![c(), i()]),
                ],
            ));
            // Commit: replicated inputs to every partition, keyed ones to their partition,
            // tagged with the index, and sent again until the partition acknowledges it.
            let mut routes: Vec<Vec<DLiteral>> = Vec::new();
            match plan.key_column(input) {
                Some(column) if key_type_of(draft, input, column) != "int" => {
                    let key = vars
                        .get(column.saturating_sub(1))
                        .map_or(DTerm::Wildcard, |v| var(v));
                    let slot = self
                        .slots
                        .get(&key_type_of(draft, input, column))
                        .cloned()
                        .unwrap_or_default();
                    routes.push(vec![
                        not(&slot, vec![c(), key.clone(), DTerm::Wildcard]),
                        atom(&self.route, vec![c(), int(0), p()]),
                    ]);
                    routes.push(vec![
                        atom(&slot, vec![c(), key, var("Slot")]),
                        atom(&self.route, vec![c(), var("Slot"), p()]),
                    ]);
                }
                Some(column) => {
                    let key = vars
                        .get(column.saturating_sub(1))
                        .map_or_else(|| int(0), |v| var(v));
                    routes.push(vec![
                        atom(&self.route, vec![c(), var("Slot"), p()]),
                        DLiteral::Compare(CompareOp::Eq, var("Slot"), modulo(key, n)),
                    ]);
                }
                None => routes.push(vec![atom(&self.partitions, vec![c(), p()])]),
            }
            let tagged = self.tagged.get(input).cloned().unwrap_or_default();
            let kept = self.kept.get(input).cloned().unwrap_or_default();
            let applying = self.applying.get(input).cloned().unwrap_or_default();
            for route in &routes {
                let mut body = vec![
                    atom(&pending, with(vec![c(), i()])),
                    atom(&self.commit_now, vec![c(), i()]),
                ];
                body.extend(route.iter().cloned());
                rules.push(rule(RuleKind::Async, &tagged, with(vec![p(), i()]), body));
            }
            for route in &routes {
                let mut body = vec![
                    atom(&pending, with(vec![c(), i()])),
                    atom(&self.commit_overdue, vec![c(), i()]),
                ];
                body.extend(route.iter().cloned());
                body.push(not(&self.acks, vec![c(), i(), p()]));
                rules.push(rule(RuleKind::Async, &tagged, with(vec![p(), i()]), body));
            }
            rules.push(rule(
                RuleKind::Delete,
                &pending,
                with(vec![c(), i()]),
                vec![
                    atom(&pending, with(vec![c(), i()])),
                    atom(&self.ack_count, vec![c(), i(), int(n)]),
                ],
            ));
            // Partition side: keep the batch until it is applied, in index order, once.
            let mut tagged_columns = vec![column("at", role), column("index", "int")];
            tagged_columns.extend(payload.iter().cloned());
            relations.push(relation(
                &tagged,
                Persistence::Channel,
                tagged_columns.clone(),
                &format!("a committed batch's `{input}` inputs, with its index"),
            ));
            relations.push(relation(
                &kept,
                Persistence::Table,
                tagged_columns,
                &format!("`{input}` inputs of committed batches not applied yet"),
            ));
            let mut applying_columns = vec![column("at", role)];
            applying_columns.extend(payload.iter().cloned());
            relations.push(relation(
                &applying,
                Persistence::Scratch,
                applying_columns,
                &format!("`{input}` as the original received it (the role's rules read this)"),
            ));
            rules.push(rule(
                RuleKind::Deductive,
                &kept,
                with(vec![p(), i()]),
                vec![
                    atom(&tagged, with(vec![p(), i()])),
                    not(&self.applied, vec![p(), i()]),
                ],
            ));
            rules.push(rule(
                RuleKind::Deductive,
                &applying,
                with(vec![p()]),
                vec![
                    atom(&kept, with(vec![p(), i()])),
                    atom(&self.apply, vec![p(), i()]),
                ],
            ));
            rules.push(rule(
                RuleKind::Delete,
                &kept,
                with(vec![p(), i()]),
                vec![
                    atom(&kept, with(vec![p(), i()])),
                    atom(&self.apply, vec![p(), i()]),
                ],
            ));
            for rule in &mut draft.rules {
                let at_role = rule
                    .atoms()
                    .next()
                    .and_then(|first| draft_location_type(&draft.relations, &first.rel))
                    .is_some_and(|ty| ty == role);
                if !at_role {
                    continue;
                }
                for literal in &mut rule.body {
                    if let DLiteral::Atom(atom) = literal
                        && atom.rel == *input
                    {
                        atom.rel.clone_from(&applying);
                    }
                }
            }
        }
        let scratch = |name: &str, columns: Vec<DColumn>, text: &str| {
            relation(name, Persistence::Scratch, columns, text)
        };
        let table = |name: &str, columns: Vec<DColumn>, text: &str| {
            relation(name, Persistence::Table, columns, text)
        };
        let channel = |name: &str, columns: Vec<DColumn>, text: &str| {
            relation(name, Persistence::Channel, columns, text)
        };
        let at_c = || column("at", coordinator);
        let at_r = || column("at", role);
        let index = || column("index", "int");
        relations.push(scratch(
            &self.batch,
            vec![at_c()],
            "sequenced inputs arrived this tick",
        ));
        relations.push(table(
            &self.assigned,
            vec![at_c(), index()],
            "indexes given so far",
        ));
        relations.push(scratch(&self.started, vec![at_c()], "some index was given"));
        relations.push(scratch(
            &self.last,
            vec![at_c(), index()],
            "the last index given",
        ));
        relations.push(scratch(
            &self.index,
            vec![at_c(), index()],
            "this tick's batch's index",
        ));
        relations.push(channel(
            &self.vote_request,
            vec![at_r(), column("coord", coordinator), index()],
            "vote request: freeze for this index",
        ));
        relations.push(table(
            &self.frozen,
            vec![at_r(), index()],
            "rounds voted in and not committed",
        ));
        relations.push(channel(
            &self.vote,
            vec![at_c(), column("part", role), index()],
            "a partition's vote",
        ));
        relations.push(table(
            &self.votes,
            vec![at_c(), index(), column("part", role)],
            "votes received",
        ));
        relations.push(scratch(
            &self.vote_count,
            vec![at_c(), index(), column("votes", "int")],
            "votes per index",
        ));
        relations.push(scratch(
            &self.commit_now,
            vec![at_c(), index()],
            "every partition voted and the previous index is committed",
        ));
        relations.push(table(
            &self.committed,
            vec![at_c(), index()],
            "committed indexes",
        ));
        relations.push(channel(
            &self.commit,
            vec![at_r(), column("coord", coordinator), index()],
            "commit: apply the batch and unfreeze (sent again until acknowledged)",
        ));
        relations.push(table(
            &self.vote_overdue,
            vec![at_c(), index()],
            "indexes whose missing votes are asked for again",
        ));
        relations.push(table(
            &self.commit_overdue,
            vec![at_c(), index()],
            "committed indexes whose unacknowledged commits are sent again",
        ));
        relations.push(channel(
            &self.commit_ack,
            vec![at_c(), column("part", role), index()],
            "a partition received a commit",
        ));
        relations.push(table(
            &self.acks,
            vec![at_c(), index(), column("part", role)],
            "commits acknowledged",
        ));
        relations.push(scratch(
            &self.ack_count,
            vec![at_c(), index(), column("acks", "int")],
            "acknowledgements per index",
        ));
        relations.push(table(
            &self.received,
            vec![at_r(), index()],
            "commits received and not applied yet",
        ));
        relations.push(table(
            &self.applied,
            vec![at_r(), index()],
            "batches applied",
        ));
        relations.push(scratch(
            &self.any_applied,
            vec![at_r()],
            "some batch was applied",
        ));
        relations.push(scratch(
            &self.last_applied,
            vec![at_r(), index()],
            "the last batch applied",
        ));
        relations.push(scratch(
            &self.apply,
            vec![at_r(), index()],
            "the batch applied this tick: the next index received",
        ));
        rules.push(rule(
            RuleKind::Deductive,
            &self.started,
            vec![c()],
            vec![atom(&self.assigned, vec![c(), DTerm::Wildcard])],
        ));
        rules.push(DRule {
            head_args: vec![
                DHeadArg::Term(c()),
                DHeadArg::Aggregate(ir::AggFunc::Max, "Index".to_owned()),
            ],
            ..rule(
                RuleKind::Deductive,
                &self.last,
                Vec::new(),
                vec![atom(&self.assigned, vec![c(), i()])],
            )
        });
        rules.push(rule(
            RuleKind::Deductive,
            &self.index,
            vec![c(), int(1)],
            vec![atom(&self.batch, vec![c()]), not(&self.started, vec![c()])],
        ));
        rules.push(rule(
            RuleKind::Deductive,
            &self.index,
            vec![
                c(),
                DTerm::Arith(ArithOp::Add, Box::new(var("Last")), Box::new(int(1))),
            ],
            vec![
                atom(&self.batch, vec![c()]),
                atom(&self.last, vec![c(), var("Last")]),
            ],
        ));
        rules.push(rule(
            RuleKind::Next,
            &self.assigned,
            vec![c(), i()],
            vec![atom(&self.index, vec![c(), i()])],
        ));
        rules.push(rule(
            RuleKind::Async,
            &self.vote_request,
            vec![p(), c(), i()],
            vec![
                atom(&self.index, vec![c(), i()]),
                atom(&self.partitions, vec![c(), p()]),
            ],
        ));
        // Vote requests go again, every tick from the second after the index was given,
        // to each partition whose vote has not arrived (a lost request or vote).
        rules.push(rule(
            RuleKind::Next,
            &self.vote_overdue,
            vec![c(), i()],
            vec![atom(&self.assigned, vec![c(), i()])],
        ));
        rules.push(rule(
            RuleKind::Async,
            &self.vote_request,
            vec![p(), c(), i()],
            vec![
                atom(&self.vote_overdue, vec![c(), i()]),
                atom(&self.partitions, vec![c(), p()]),
                not(&self.votes, vec![c(), i(), p()]),
            ],
        ));
        rules.push(rule(
            RuleKind::Deductive,
            &self.frozen,
            vec![p(), i()],
            vec![
                atom(&self.vote_request, vec![p(), DTerm::Wildcard, i()]),
                not(&self.applied, vec![p(), i()]),
            ],
        ));
        rules.push(rule(
            RuleKind::Async,
            &self.vote,
            vec![c(), p(), i()],
            vec![atom(&self.vote_request, vec![p(), c(), i()])],
        ));
        rules.push(rule(
            RuleKind::Deductive,
            &self.votes,
            vec![c(), i(), p()],
            vec![atom(&self.vote, vec![c(), p(), i()])],
        ));
        rules.push(DRule {
            head_args: vec![
                DHeadArg::Term(c()),
                DHeadArg::Term(i()),
                DHeadArg::Aggregate(ir::AggFunc::Count, "Part".to_owned()),
            ],
            ..rule(
                RuleKind::Deductive,
                &self.vote_count,
                Vec::new(),
                vec![atom(&self.votes, vec![c(), i(), p()])],
            )
        });
        rules.push(rule(
            RuleKind::Deductive,
            &self.commit_now,
            vec![c(), int(1)],
            vec![
                atom(&self.vote_count, vec![c(), int(1), int(n)]),
                not(&self.committed, vec![c(), int(1)]),
            ],
        ));
        rules.push(rule(
            RuleKind::Deductive,
            &self.commit_now,
            vec![c(), i()],
            vec![
                atom(&self.vote_count, vec![c(), i(), int(n)]),
                not(&self.committed, vec![c(), i()]),
                atom(&self.committed, vec![c(), var("Previous")]),
                DLiteral::Compare(
                    CompareOp::Eq,
                    i(),
                    DTerm::Arith(ArithOp::Add, Box::new(var("Previous")), Box::new(int(1))),
                ),
            ],
        ));
        rules.push(rule(
            RuleKind::Next,
            &self.committed,
            vec![c(), i()],
            vec![atom(&self.commit_now, vec![c(), i()])],
        ));
        rules.push(rule(
            RuleKind::Async,
            &self.commit,
            vec![p(), c(), i()],
            vec![
                atom(&self.commit_now, vec![c(), i()]),
                atom(&self.partitions, vec![c(), p()]),
            ],
        ));
        // Commits go again, every tick from the second after the commit, to each partition
        // that has not acknowledged it (a lost commit or acknowledgement).
        rules.push(rule(
            RuleKind::Next,
            &self.commit_overdue,
            vec![c(), i()],
            vec![atom(&self.committed, vec![c(), i()])],
        ));
        rules.push(rule(
            RuleKind::Async,
            &self.commit,
            vec![p(), c(), i()],
            vec![
                atom(&self.commit_overdue, vec![c(), i()]),
                atom(&self.partitions, vec![c(), p()]),
                not(&self.acks, vec![c(), i(), p()]),
            ],
        ));
        // A partition acknowledges every commit it receives, keeps it, and applies
        // committed batches once each, in index order.
        rules.push(rule(
            RuleKind::Async,
            &self.commit_ack,
            vec![c(), p(), i()],
            vec![atom(&self.commit, vec![p(), c(), i()])],
        ));
        rules.push(rule(
            RuleKind::Deductive,
            &self.acks,
            vec![c(), i(), p()],
            vec![atom(&self.commit_ack, vec![c(), p(), i()])],
        ));
        rules.push(DRule {
            head_args: vec![
                DHeadArg::Term(c()),
                DHeadArg::Term(i()),
                DHeadArg::Aggregate(ir::AggFunc::Count, "Part".to_owned()),
            ],
            ..rule(
                RuleKind::Deductive,
                &self.ack_count,
                Vec::new(),
                vec![atom(&self.acks, vec![c(), i(), p()])],
            )
        });
        rules.push(rule(
            RuleKind::Deductive,
            &self.received,
            vec![p(), i()],
            vec![
                atom(&self.commit, vec![p(), DTerm::Wildcard, i()]),
                not(&self.applied, vec![p(), i()]),
            ],
        ));
        rules.push(rule(
            RuleKind::Deductive,
            &self.any_applied,
            vec![p()],
            vec![atom(&self.applied, vec![p(), DTerm::Wildcard])],
        ));
        rules.push(DRule {
            head_args: vec![
                DHeadArg::Term(p()),
                DHeadArg::Aggregate(ir::AggFunc::Max, "Index".to_owned()),
            ],
            ..rule(
                RuleKind::Deductive,
                &self.last_applied,
                Vec::new(),
                vec![atom(&self.applied, vec![p(), i()])],
            )
        });
        rules.push(rule(
            RuleKind::Deductive,
            &self.apply,
            vec![p(), int(1)],
            vec![
                atom(&self.received, vec![p(), int(1)]),
                not(&self.any_applied, vec![p()]),
            ],
        ));
        rules.push(rule(
            RuleKind::Deductive,
            &self.apply,
            vec![p(), i()],
            vec![
                atom(&self.received, vec![p(), i()]),
                atom(&self.last_applied, vec![p(), var("Last")]),
                DLiteral::Compare(
                    CompareOp::Eq,
                    i(),
                    DTerm::Arith(ArithOp::Add, Box::new(var("Last")), Box::new(int(1))),
                ),
            ],
        ));
        rules.push(rule(
            RuleKind::Next,
            &self.applied,
            vec![p(), i()],
            vec![atom(&self.apply, vec![p(), i()])],
        ));
        rules.push(rule(
            RuleKind::Delete,
            &self.received,
            vec![p(), i()],
            vec![atom(&self.apply, vec![p(), i()])],
        ));
        rules.push(rule(
            RuleKind::Delete,
            &self.frozen,
            vec![p(), i()],
            vec![atom(&self.apply, vec![p(), i()])],
        ));
        // Buffered channels: the role's rules read `d_ready` instead of `d`.
        if !self.ready.is_empty() {
            relations.push(scratch(
                &self.busy,
                vec![at_r()],
                "a round this partition voted in is pending",
            ));
            rules.push(rule(
                RuleKind::Deductive,
                &self.busy,
                vec![p()],
                vec![atom(&self.frozen, vec![p(), DTerm::Wildcard])],
            ));
        }
        for (input, ready) in &self.ready {
            let Some(original) = draft.relation(input).cloned() else {
                continue;
            };
            let held = self.held.get(input).cloned().unwrap_or_default();
            for rule in &mut draft.rules {
                let at_role = rule
                    .atoms()
                    .next()
                    .and_then(|first| draft_location_type(&draft.relations, &first.rel))
                    .is_some_and(|ty| ty == role);
                if !at_role {
                    continue;
                }
                for literal in &mut rule.body {
                    if let DLiteral::Atom(atom) = literal
                        && atom.rel == *input
                    {
                        atom.rel.clone_from(ready);
                    }
                }
            }
            let payload: Vec<DColumn> = original.columns.iter().skip(1).cloned().collect();
            let mut columns = vec![at_r()];
            columns.extend(payload.iter().cloned());
            relations.push(scratch(
                ready,
                columns.clone(),
                &format!("`{input}` once no round is pending (the role's rules read this)"),
            ));
            relations.push(table(
                &held,
                columns,
                &format!("`{input}` held while a round is pending"),
            ));
            let values: Vec<DTerm> = payload_vars(&payload).iter().map(|v| var(v)).collect();
            let args = {
                let mut args = vec![p()];
                args.extend(values.iter().cloned());
                args
            };
            rules.push(rule(
                RuleKind::Deductive,
                ready,
                args.clone(),
                vec![atom(input, args.clone()), not(&self.busy, vec![p()])],
            ));
            rules.push(rule(
                RuleKind::Deductive,
                &held,
                args.clone(),
                vec![atom(input, args.clone()), atom(&self.busy, vec![p()])],
            ));
            rules.push(rule(
                RuleKind::Deductive,
                ready,
                args.clone(),
                vec![atom(&held, args.clone()), not(&self.busy, vec![p()])],
            ));
            rules.push(rule(
                RuleKind::Delete,
                &held,
                args.clone(),
                vec![atom(&held, args), not(&self.busy, vec![p()])],
            ));
        }
        for rule in &mut rules {
            rule.note = Some(format!("partition({role}): coordinator round"));
        }
        let names = relations.iter().map(|r| r.name.clone()).collect();
        draft.relations.extend(relations);
        draft.rules.extend(rules);
        names
    }

    /// The generated topology facts: partitions and routes of every coordinator.
    fn facts(&self, plan: &PartitionPlan, role_nodes: &BTreeSet<String>) -> Vec<crate::DFact> {
        let fact = |rel: &str, values: Vec<Value>| crate::DFact {
            rel: rel.to_owned(),
            values,
            tick: 1,
        };
        let mut facts = Vec::new();
        for node in role_nodes {
            for k in 0..plan.n {
                facts.push(fact(
                    &self.partitions,
                    vec![
                        Value::str(&Coordinator::node(node)),
                        Value::str(&partition_node(node, k)),
                    ],
                ));
            }
        }
        if self.routes(plan) {
            let span = i64::from(plan.n) - 1;
            for node in role_nodes {
                for slot in -span..=span {
                    facts.push(fact(
                        &self.route,
                        vec![
                            Value::str(&Coordinator::node(node)),
                            Value::Int(slot),
                            Value::str(&partition_node(
                                node,
                                partition_of(&Value::Int(slot), plan.n),
                            )),
                        ],
                    ));
                }
            }
        }
        facts
    }
}

/// Variables for payload columns: the column names capitalised, made distinct from each
/// other and from the round's own variables.
fn payload_vars(columns: &[DColumn]) -> Vec<String> {
    let reserved = ["Coord", "Index", "Part", "Slot", "Last", "Previous"];
    let mut used: BTreeSet<String> = reserved.iter().map(|v| (*v).to_owned()).collect();
    let mut vars = Vec::new();
    for column in columns {
        let mut chars = column.name.chars();
        let base = match chars.next() {
            Some(first) if first.is_ascii_alphabetic() => {
                format!("{}{}", first.to_ascii_uppercase(), chars.as_str())
            }
            _ => "X".to_owned(),
        };
        let mut name = base.clone();
        let mut suffix = 2;
        while used.contains(&name) {
            name = format!("{base}{suffix}");
            suffix += 1;
        }
        used.insert(name.clone());
        vars.push(name);
    }
    vars
}

/// `key - key / n * n`: the slot a sender compares with its route table.
fn modulo(key: DTerm, n: i64) -> DTerm {
    DTerm::Arith(
        ArithOp::Sub,
        Box::new(key.clone()),
        Box::new(DTerm::Arith(
            ArithOp::Mul,
            Box::new(DTerm::Arith(
                ArithOp::Div,
                Box::new(key),
                Box::new(DTerm::Const(Value::Int(n))),
            )),
            Box::new(DTerm::Const(Value::Int(n))),
        )),
    )
}

/// The declared type of a relation's key column (`int` when unknown).
fn key_type_of(draft: &Draft, rel: &str, column: usize) -> String {
    draft
        .relation(rel)
        .and_then(|relation| relation.columns.get(column))
        .map_or_else(|| "int".to_owned(), |column| column.ty.clone())
}

fn draft_location_type(relations: &[DRelation], name: &str) -> Option<String> {
    relations
        .iter()
        .find(|relation| relation.name == name)
        .map(|relation| relation.location_type().to_owned())
}

/// The rows of generated routing tables: one per table, sender and node of the partitioned role.
fn per_sender_and_node<'a>(
    tables: &'a [(String, BTreeSet<String>)],
    role_nodes: &'a BTreeSet<String>,
) -> impl Iterator<Item = (&'a str, &'a str, &'a str)> + 'a {
    tables.iter().flat_map(move |(table, senders)| {
        senders.iter().flat_map(move |sender| {
            role_nodes
                .iter()
                .map(move |node| (table.as_str(), sender.as_str(), node.as_str()))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_of_is_a_non_negative_remainder() {
        assert_eq!(partition_of(&Value::Int(5), 4), 1);
        assert_eq!(partition_of(&Value::Int(-5), 4), 3);
        assert_eq!(partition_of(&Value::Int(0), 2), 0);
    }

    #[test]
    fn non_int_keys_hash_stably() {
        // Pinned: the hash must not change between versions, runs or platforms, since
        // generated topology facts and relocated facts depend on it.
        assert_eq!(key_hash(&Value::str("apple")), 0x8506_5eea_b662_ae78);
        assert_eq!(partition_of(&Value::str("apple"), 2), 0);
        assert_eq!(partition_of(&Value::str("pear"), 2), 1);
        assert_eq!(partition_of(&Value::Bool(true), 4), 3);
        assert_eq!(partition_of(&Value::Bool(false), 4), 3);
    }
}
