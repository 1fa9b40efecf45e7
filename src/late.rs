//! A rewritten version against its source under late messages: the schedules of
//! [`graft_rewrites::compare::delay_cases`] (every message of the source late by 1..=D, the
//! version's corresponding messages late by as much; every hop only the version has late by
//! 1..=D), each run until quiescence on both sides and compared as the justification says —
//! per tick where the schedule maps tick for tick onto a pass that adds no hop, eventually
//! otherwise. `graft test --max-delay` and `graft verify --refines --max-delay` both call
//! [`check_late`].
//!
//! A divergence under a schedule whose late messages include a channel that a pass recorded
//! as assuming synchronous delivery is that assumption failing, as the justification says; any
//! other divergence is a rewrite that is not honest under late messages.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use graft_compiler::Checked;
use graft_eval::{Evaluator, RunConfig, ShowSet};
use graft_rewrites::Justification;
use graft_rewrites::compare::{self, ChannelTick, DelayCase, OutputFact, SentMessage};
use graft_rewrites::justification::{Comparison, SynchronousDelivery};

use crate::load::FactsText;

/// A program checked and compiled once, with its facts, to run under many schedules.
pub struct Prepared {
    checked: Checked,
    evaluator: Evaluator,
    facts: Vec<graft_compiler::ir::Fact>,
}

/// One run until quiescence: its output facts (as `graft test` compares them), last tick,
/// rendered outputs and every message sent.
pub struct LateRun {
    pub facts: Vec<OutputFact>,
    pub last_tick: u64,
    pub text: String,
    pub messages: Vec<SentMessage>,
}

impl Prepared {
    /// Loads and checks `program` with `facts`; `Err` holds the rendered errors.
    pub fn new(program: &Path, facts: &[FactsText]) -> anyhow::Result<Result<Prepared, String>> {
        let (checked, ir_facts) = match crate::commands::test::load_checked(program, facts)? {
            Ok(loaded) => loaded,
            Err(rendered) => return Ok(Err(rendered)),
        };
        let evaluator = Evaluator::new(&checked)?;
        Ok(Ok(Prepared {
            checked,
            evaluator,
            facts: ir_facts,
        }))
    }

    /// Runs until quiescence (at most 1000 ticks, as `graft test`) with the messages of
    /// `late` channels arriving `by` ticks late.
    pub fn run(&self, late: &BTreeSet<ChannelTick>, by: u64) -> anyhow::Result<LateRun> {
        let config = RunConfig {
            delays: late
                .iter()
                .map(|(from, to, tick)| ((from.clone(), to.clone(), *tick), by))
                .collect::<BTreeMap<_, _>>(),
            ..RunConfig::default()
        };
        let program = &self.checked.program;
        let run = self.evaluator.run(&config, &self.facts)?;
        let shown = graft_eval::shown_facts(program, &run, &ShowSet::Default);
        let mut text = graft_eval::render_text(program, &run, &ShowSet::Default);
        if run.capped {
            text.push_str("// the run reached 1000 ticks before quiescence\n");
        }
        let node = |value: &graft_compiler::ir::Value| {
            value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned)
        };
        let messages = run
            .messages
            .iter()
            .map(|message| SentMessage {
                relation: program.relation(message.rel).name.clone(),
                values: message.tuple.to_vec(),
                from: node(&message.sender),
                to: node(&message.dest),
                tick: message.send_tick,
            })
            .collect();
        Ok(LateRun {
            facts: shown
                .into_iter()
                .map(|fact| (fact.relation, fact.values, fact.tick))
                .collect(),
            last_tick: run.ticks_run,
            text,
            messages,
        })
    }
}

/// A divergence under one schedule of late messages.
#[derive(Clone, Debug)]
pub struct LateDivergence {
    pub case: DelayCase,
    /// How the outputs were compared under it.
    pub comparison: Comparison,
    pub divergence: compare::Divergence,
    /// The source's outputs under the schedule, and the version's mapped back.
    pub source_text: String,
    pub mapped_text: String,
    /// The recorded synchronous-delivery assumptions (pass request, assumption) that name a
    /// channel the schedule made late: the divergence is one of them failing.
    pub recorded: Vec<(String, SynchronousDelivery)>,
}

impl LateDivergence {
    /// The schedule in both versions' terms, e.g. ``source `delay a->b@1+1`, version `delay
    /// a->b/0@1+1` ``, or for a hop only the version has, ``version `delay ...` (a hop the
    /// source does not have; the source on time)``.
    pub fn schedule(&self) -> String {
        let delays = |channels: &BTreeSet<ChannelTick>| {
            channels
                .iter()
                .map(|(from, to, tick)| format!("delay {from}->{to}@{tick}+{}", self.case.by))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match &self.case.source {
            Some(channel) => format!(
                "`{}` in the source, `{}` in the version",
                delays(&BTreeSet::from([channel.clone()])),
                delays(&self.case.version)
            ),
            None => format!(
                "`{}` in the version (a hop the source does not have; the source on time)",
                delays(&self.case.version)
            ),
        }
    }

    /// What the divergence means: the recorded assumption failing, or a rewrite that is not
    /// honest under late messages.
    pub fn verdict(&self) -> String {
        meaning(true, &self.recorded)
    }

    /// The whole report, indented lines: schedule, late messages, meaning, differences.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "under late messages: {}", self.schedule());
        for message in &self.case.messages {
            let _ = writeln!(out, "  late: {message}");
        }
        let _ = writeln!(
            out,
            "  the outputs diverge ({} comparison); {}",
            comparison_name(self.comparison),
            self.verdict()
        );
        for line in &self.divergence.only_source {
            let _ = writeln!(out, "  only in the source version: {line}");
        }
        for line in &self.divergence.only_new {
            let _ = writeln!(out, "  only in this version (mapped back): {line}");
        }
        out
    }
}

fn comparison_name(comparison: Comparison) -> &'static str {
    match comparison {
        Comparison::PerTick => "per-tick",
        Comparison::Eventual => "eventual",
        Comparison::None => "none",
    }
}

/// The synchronous-delivery assumptions of `justification` (pass request, assumption) that
/// name one of `relations` (channels of the new version whose messages were late).
pub fn covering(
    justification: &Justification,
    relations: &BTreeSet<String>,
) -> Vec<(String, SynchronousDelivery)> {
    justification
        .synchronous_delivery()
        .into_iter()
        .filter(|(_, sync)| sync.channels.iter().any(|c| relations.contains(c)))
        .map(|(request, sync)| (request.to_owned(), sync.clone()))
        .collect()
}

/// What a divergence that late messages caused means: without a justification record
/// (`has_record` false) nothing assumed synchronous delivery; with one, it is the `covering`
/// assumptions failing, or (none) a rewrite that is not correct under late messages.
pub fn meaning(has_record: bool, covering: &[(String, SynchronousDelivery)]) -> String {
    if !has_record {
        return "there is no justification record, so nothing assumed synchronous delivery: the new version is not equivalent under late messages".to_owned();
    }
    if covering.is_empty() {
        return "the justification records no synchronous-delivery assumption for these messages: the rewrite is not correct under late messages".to_owned();
    }
    format!(
        "this is the recorded assumption failing: {}",
        covering
            .iter()
            .map(|(request, sync)| format!(
                "`{request}` assumes synchronous delivery of {} ({})",
                sync.channels
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                sync.why
            ))
            .collect::<Vec<_>>()
            .join("; ")
    )
}

/// What [`check_late`] found.
#[derive(Clone, Debug, Default)]
pub struct LateCheck {
    /// Schedules compared.
    pub schedules: usize,
    /// Whether [`compare::DELAY_CASE_CAP`] cut the schedules short.
    pub capped: bool,
    /// The first divergence that a recorded synchronous-delivery assumption explains.
    pub recorded: Option<LateDivergence>,
    /// The first divergence that none explains (the search stops there).
    pub unrecorded: Option<LateDivergence>,
}

/// Compares `version` with `source` under every schedule of late messages up to `max_delay`
/// ticks ([`compare::delay_cases`] on both fault-free runs). Nothing is compared for a
/// `none` comparison or `max_delay` 0.
pub fn check_late(
    source: &Prepared,
    version: &Prepared,
    justification: &Justification,
    max_delay: u64,
) -> anyhow::Result<LateCheck> {
    let mut found = LateCheck::default();
    if max_delay == 0 || justification.comparison == Comparison::None {
        return Ok(found);
    }
    let none = BTreeSet::new();
    let source_on_time = source.run(&none, 0)?;
    let version_on_time = version.run(&none, 0)?;
    let cases = compare::delay_cases(
        justification,
        &source_on_time.messages,
        &version_on_time.messages,
        max_delay,
    );
    found.capped = cases.len() >= compare::DELAY_CASE_CAP;
    for case in cases {
        found.schedules += 1;
        let source_run = match &case.source {
            Some(channel) => source.run(&BTreeSet::from([channel.clone()]), case.by)?,
            None => source.run(&none, 0)?,
        };
        let version_run = version.run(&case.version, case.by)?;
        // A schedule carries over tick for tick only onto a pass that adds no hop (per-tick),
        // and only when the source has the late message too.
        let comparison = match (justification.comparison, &case.source) {
            (Comparison::PerTick, Some(_)) => Comparison::PerTick,
            _ => Comparison::Eventual,
        };
        let mapped = compare::map_back(justification, &version_run.facts);
        let divergence = compare::compare(
            comparison,
            &source_run.facts,
            &mapped,
            source_run.last_tick,
            version_run.last_tick,
        );
        if divergence.is_empty() {
            continue;
        }
        let explained = covering(justification, &case.relations);
        let late = LateDivergence {
            case,
            comparison,
            divergence,
            source_text: source_run.text,
            mapped_text: compare::render_facts(&mapped),
            recorded: explained,
        };
        if late.recorded.is_empty() {
            found.unrecorded = Some(late);
            break;
        }
        if found.recorded.is_none() {
            found.recorded = Some(late);
        }
    }
    Ok(found)
}
