//! The passes, and what they share: the plan type (only [`check`] builds one), the result of
//! [`apply`], and helpers that read the IR and the draft.

mod batch;
mod decouple;
mod dependencies;
mod partition;
mod quorum;

pub use quorum::quorum_constants;

use std::collections::BTreeMap;

use graft_compiler::Checked;
use graft_compiler::analysis::specification_relations;
use graft_compiler::ir::{self, RelId};
use graft_language::span::Span;

use crate::FactsFile;
use crate::draft::{self, Draft};
use crate::justification::{Assumption, Comparison, Discharged, NameMap, PassRecord, RuleMap};
use crate::refusal::{FailedPrecondition, Refusal};
use crate::spec::PassSpec;

/// A checked pass, ready to apply. Only [`check`] builds one, so a plan always carries the
/// evidence that its preconditions hold.
#[derive(Clone, Debug)]
pub struct Plan {
    spec: PassSpec,
    detail: Detail,
}

impl Plan {
    /// The request this plan answers.
    pub fn spec(&self) -> &PassSpec {
        &self.spec
    }

    /// What the plan assumes and `graft test` checks (declared keys used as dependencies, the
    /// channels whose synchronous delivery a batch's consumers rely on); the apply step adds
    /// the coordinator round's.
    pub fn assumptions(&self) -> Vec<Assumption> {
        match &self.detail {
            Detail::Partition(plan) => plan.assumptions(),
            Detail::Batch(plan) => plan.assumptions.clone(),
            Detail::Quorum(_) | Detail::Decouple(_) => Vec::new(),
        }
    }

    /// The preconditions discharged, with evidence, as the justification will list them.
    pub fn preconditions(&self) -> Vec<Discharged> {
        match &self.detail {
            Detail::Quorum(plan) => plan.preconditions.clone(),
            Detail::Batch(plan) => plan.preconditions.clone(),
            Detail::Partition(plan) => plan.preconditions.clone(),
            Detail::Decouple(plan) => plan.preconditions.clone(),
        }
    }
}

#[derive(Clone, Debug)]
enum Detail {
    Quorum(quorum::QuorumPlan),
    Batch(batch::BatchPlan),
    Partition(partition::PartitionPlan),
    Decouple(decouple::DecouplePlan),
}

/// The result of [`apply`].
#[derive(Clone, Debug)]
pub struct Applied {
    pub draft: Draft,
    pub facts: Vec<FactsFile>,
    pub record: PassRecord,
}

/// Decides every precondition of `spec` on `checked`.
pub fn check(checked: &Checked, spec: &PassSpec) -> Result<Plan, Refusal> {
    if checked.has_errors() {
        let span = checked
            .diagnostics
            .iter()
            .find(|d| d.is_error())
            .map_or_else(Span::default, |d| d.primary.span);
        return Err(Refusal::single(
            spec.text(),
            FailedPrecondition::new(
                "program-has-errors",
                "the program has errors",
                span,
                "run `graft check` and fix the errors first",
            ),
        ));
    }
    let context = Context::new(checked);
    let detail = match spec {
        PassSpec::Quorum {
            constants,
            membership,
        } => Detail::Quorum(quorum::check(&context, spec, constants, membership)?),
        PassSpec::Batch {
            channel,
            ticks,
            size,
        } => Detail::Batch(batch::check(&context, spec, channel, *ticks, *size)?),
        PassSpec::Partition {
            role,
            by,
            n,
            partial,
        } => Detail::Partition(partition::check(&context, spec, role, by, *n, *partial)?),
        PassSpec::Decouple {
            role,
            relations,
            to,
            placement,
        } => Detail::Decouple(decouple::check(
            &context, spec, role, relations, to, *placement,
        )?),
    };
    Ok(Plan {
        spec: spec.clone(),
        detail,
    })
}

/// Applies a plan to the program it was checked on, rewriting the facts files along.
pub fn apply(checked: &Checked, plan: Plan, facts: &[FactsFile]) -> Applied {
    let program = &checked.program;
    let mut draft = Draft::from_ir(program);
    let mut files = facts.to_vec();
    let preconditions = plan.preconditions();
    let mut assumptions = plan.assumptions();
    let mut outcome = match &plan.detail {
        Detail::Quorum(detail) => quorum::apply(detail, &mut draft, &mut files),
        Detail::Batch(detail) => batch::apply(detail, &mut draft),
        Detail::Partition(detail) => partition::apply(detail, &mut draft, &mut files),
        Detail::Decouple(detail) => decouple::apply(detail, &mut draft, &mut files),
    };
    outcome.relations.sort_by(|a, b| a.old.cmp(&b.old));
    assumptions.append(&mut outcome.assumptions);
    let record = PassRecord {
        pass: plan.spec.name().to_owned(),
        request: plan.spec.text(),
        params: plan.spec.params_json(),
        case: outcome.case,
        preconditions,
        roles: outcome.roles,
        relations: outcome.relations,
        added_relations: outcome.added,
        constants: outcome.constants,
        rules: rule_maps(program, &draft),
        nodes: outcome.nodes,
        comparison: outcome.comparison,
        assumptions,
        verified: Vec::new(),
        predicted: None,
    };
    Applied {
        draft,
        facts: files,
        record,
    }
}

/// What a pass's apply step reports besides the draft.
struct Outcome {
    case: Option<String>,
    roles: Vec<NameMap>,
    relations: Vec<NameMap>,
    constants: Vec<NameMap>,
    added: Vec<String>,
    nodes: BTreeMap<String, String>,
    comparison: Comparison,
    /// Assumptions that name what the apply step generated (the coordinator round's channels).
    assumptions: Vec<Assumption>,
}

fn rule_maps(program: &ir::Program, draft: &Draft) -> Vec<RuleMap> {
    let old_draft = Draft::from_ir(program);
    let mut maps = Vec::new();
    for (index, old) in old_draft.rules.iter().enumerate() {
        let new: Vec<u32> = draft
            .rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| rule.origin.map(|id| id.index()) == Some(index))
            .map(|(position, _)| u32::try_from(position).unwrap_or(u32::MAX))
            .collect();
        let new_text = new
            .iter()
            .filter_map(|id| draft.rules.get(*id as usize))
            .map(draft::rule_text)
            .collect();
        maps.push(RuleMap {
            old: Some(u32::try_from(index).unwrap_or(u32::MAX)),
            old_text: Some(draft::rule_text(old)),
            new,
            new_text,
        });
    }
    let added: Vec<u32> = draft
        .rules
        .iter()
        .enumerate()
        .filter(|(_, rule)| rule.origin.is_none())
        .map(|(position, _)| u32::try_from(position).unwrap_or(u32::MAX))
        .collect();
    if !added.is_empty() {
        maps.push(RuleMap {
            old: None,
            old_text: None,
            new_text: added
                .iter()
                .filter_map(|id| draft.rules.get(*id as usize))
                .map(draft::rule_text)
                .collect(),
            new: added,
        });
    }
    maps
}

/// Read-only views of the checked program that several passes use.
struct Context<'a> {
    checked: &'a Checked,
    program: &'a ir::Program,
    /// By relation: whether it belongs to the specification (`pre`, `post` and helpers).
    spec: Vec<bool>,
}

impl<'a> Context<'a> {
    fn new(checked: &'a Checked) -> Context<'a> {
        Context {
            checked,
            program: &checked.program,
            spec: specification_relations(&checked.program),
        }
    }

    fn is_spec(&self, rel: RelId) -> bool {
        self.spec.get(rel.index()).copied().unwrap_or(false)
    }

    fn relation(&self, rel: RelId) -> &'a ir::Relation {
        self.program.relation(rel)
    }

    /// The role (type name) of a relation's location column.
    fn location_type(&self, rel: RelId) -> String {
        let relation = self.relation(rel);
        relation.columns.first().map_or_else(
            || "node".to_owned(),
            |column| self.program.type_name(column.ty),
        )
    }

    /// The type name of the location of a rule's body (its first atom's relation).
    fn rule_location_type(&self, rule: &ir::Rule) -> Option<String> {
        rule.atoms()
            .next()
            .map(|(_, atom)| self.location_type(atom.rel))
    }

    /// Rules that belong to the protocol (not the specification).
    fn protocol_rules(&self) -> impl Iterator<Item = &'a ir::Rule> + '_ {
        self.program
            .rules
            .iter()
            .filter(|rule| !self.is_spec(rule.head.rel))
    }

    fn relation_by_name(&self, name: &str) -> Option<RelId> {
        self.program
            .relation_by_name(name)
            .filter(|rel| self.relation(*rel).origin != ir::RelationOrigin::Unknown)
    }

    /// A span to blame for a parameter problem when the program has nothing more precise:
    /// the first declaration (or the start of the first file).
    fn fallback_span(&self) -> Span {
        self.program
            .roles
            .first()
            .map(|role| role.span)
            .or_else(|| self.program.relations.first().map(|relation| relation.span))
            .unwrap_or_default()
    }

    fn unknown_role(&self, role: &str) -> FailedPrecondition {
        let names = self.program.roles.iter().map(|role| role.name.as_str());
        let suggestion = match graft_compiler::suggest::did_you_mean(role, names) {
            Some(candidate) => format!("did you mean `{candidate}`?"),
            None => {
                let roles: Vec<&str> = self.program.roles.iter().map(|r| r.name.as_str()).collect();
                if roles.is_empty() {
                    "declare roles (`role name;`) and type relations' locations with them"
                        .to_owned()
                } else {
                    format!("name one of the program's roles: {}", roles.join(", "))
                }
            }
        };
        FailedPrecondition::new(
            "unknown-role",
            format!("the program has no role `{role}`"),
            self.fallback_span(),
            suggestion,
        )
    }

    fn unknown_relation(&self, name: &str) -> FailedPrecondition {
        let names = self
            .program
            .relations
            .iter()
            .map(|relation| relation.name.as_str());
        let suggestion = match graft_compiler::suggest::did_you_mean(name, names) {
            Some(candidate) => format!("did you mean `{candidate}`?"),
            None => "name a relation of the program".to_owned(),
        };
        FailedPrecondition::new(
            "unknown-relation",
            format!("the program has no relation `{name}`"),
            self.fallback_span(),
            suggestion,
        )
    }
}

/// `discharged(name, evidence)`.
fn discharged(name: &str, evidence: impl Into<String>) -> Discharged {
    Discharged {
        name: name.to_owned(),
        evidence: evidence.into(),
    }
}
