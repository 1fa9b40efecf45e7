//! Artifacts people read: a Lamport (spacetime) diagram of a run as SVG, and the lineage graph
//! of some facts as DOT and as SVG. Both SVGs are laid out here, by hand, so that no Graphviz
//! installation is needed.
//!
//! Labels never overlap: every text is placed with [`Placer`], which estimates each text's box
//! from its position, font size, length and anchor (monospace glyphs are 0.6 em wide) and
//! tries positions along the arrow it labels until one is free; a diagram whose labels do not
//! fit is laid out again with more room, and a label that still finds no place is listed
//! below the diagram instead. `tests/diagrams.rs` measures the boxes of every text of every
//! counterexample diagram the examples produce.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use graft_compiler::ir;
use graft_eval::{Derivation, FactRef, Fate, Run};

use crate::faults::FaultSet;
use crate::lineage::node_name;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The font size of labels, in pixels.
const FONT: f64 = 11.0;
/// The advance of one monospace glyph, per pixel of font size.
const GLYPH: f64 = 0.6;
/// Free space kept around every placed label.
const MARGIN: f64 = 2.0;

/// Where a text's `x` is: its start, middle or end (SVG's `text-anchor`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    fn svg(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }
}

/// An axis-aligned box.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Box2 {
    pub left: f64,
    pub top: f64,
    pub right: f64,
    pub bottom: f64,
}

impl Box2 {
    /// The box of a one-line text with its baseline at `y`: the width from the glyph count,
    /// 0.8 em above the baseline and 0.25 em below it.
    pub fn of_text(x: f64, y: f64, text: &str, font: f64, anchor: Anchor) -> Box2 {
        #[allow(
            clippy::cast_precision_loss,
            reason = "a label's length is far below 2^52"
        )]
        let width = text.chars().count() as f64 * GLYPH * font;
        let left = match anchor {
            Anchor::Start => x,
            Anchor::Middle => x - width / 2.0,
            Anchor::End => x - width,
        };
        Box2 {
            left,
            top: y - 0.8 * font,
            right: left + width,
            bottom: y + 0.25 * font,
        }
    }

    /// Whether the two boxes share some area.
    pub fn overlaps(&self, other: &Box2) -> bool {
        self.left < other.right
            && other.left < self.right
            && self.top < other.bottom
            && other.top < self.bottom
    }

    fn grown(&self, by: f64) -> Box2 {
        Box2 {
            left: self.left - by,
            top: self.top - by,
            right: self.right + by,
            bottom: self.bottom + by,
        }
    }
}

/// Places texts so that no two overlap: every placed text (and every other obstacle) is
/// remembered, and a text goes to the first of its candidate positions that is free.
#[derive(Default)]
struct Placer {
    taken: Vec<Box2>,
}

impl Placer {
    fn block(&mut self, area: Box2) {
        self.taken.push(area);
    }

    fn is_free(&self, area: &Box2) -> bool {
        let grown = area.grown(MARGIN);
        self.taken.iter().all(|taken| !taken.overlaps(&grown))
    }

    /// The first candidate `(x, y)` (text baseline) at which `text` is free; it is then taken.
    fn place(
        &mut self,
        text: &str,
        font: f64,
        anchor: Anchor,
        candidates: &[(f64, f64)],
    ) -> Option<(f64, f64)> {
        for &(x, y) in candidates {
            let area = Box2::of_text(x, y, text, font, anchor);
            if area.left >= 0.0 && self.is_free(&area) {
                self.taken.push(area);
                return Some((x, y));
            }
        }
        None
    }

    /// Takes the place of a text that must stand where it is (titles, headers).
    fn fixed(&mut self, x: f64, y: f64, text: &str, font: f64, anchor: Anchor) {
        self.taken.push(Box2::of_text(x, y, text, font, anchor));
    }
}

/// A `<text>` element. Labels get a white halo so that lines under them do not hide them.
fn text_element(x: f64, y: f64, font: f64, anchor: Anchor, fill: &str, text: &str) -> String {
    format!(
        "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{font}\" text-anchor=\"{}\" fill=\"{fill}\" stroke=\"white\" stroke-width=\"3\" paint-order=\"stroke\">{}</text>",
        anchor.svg(),
        escape(text)
    )
}

/// How a message arrow is drawn and named in the legend.
fn fate_style(fate: Fate) -> (&'static str, &'static str) {
    match fate {
        Fate::Delivered => ("stroke=\"black\" marker-end=\"url(#arrow)\"", "#333"),
        Fate::Omitted => (
            "stroke=\"red\" stroke-dasharray=\"6,4\" marker-end=\"url(#lost)\"",
            "red",
        ),
        Fate::SenderCrashed => (
            "stroke=\"#c05000\" stroke-dasharray=\"2,3\" marker-end=\"url(#lost)\"",
            "#c05000",
        ),
        Fate::ReceiverCrashed => (
            "stroke=\"#80a\" stroke-dasharray=\"8,3,2,3\" marker-end=\"url(#lost)\"",
            "#80a",
        ),
    }
}

fn fate_words(fate: Fate) -> &'static str {
    match fate {
        Fate::Delivered => "delivered at the next tick",
        Fate::Omitted => "LOST: dropped by the fault schedule",
        Fate::SenderCrashed => "LOST: its sender had crashed",
        Fate::ReceiverCrashed => "LOST: its receiver had crashed",
    }
}

/// The messages one node sent at one tick with one fate, grouped by the relations they carry:
/// one label for the whole fan-out.
struct ArrowGroup {
    tick: u64,
    sender: String,
    fate: Fate,
    /// Ticks late (0: on time); a late arrow ends at its arrival tick, slanted and longer.
    delay: u64,
    relations: Vec<String>,
    dests: Vec<String>,
}

const COLUMN: f64 = 170.0;
const LEFT: f64 = 90.0;
const TOP: f64 = 70.0;

/// A Lamport diagram of `run`: a vertical timeline per node (time going down), a dot per tick,
/// every message between nodes as an arrow from its send tick to its delivery tick. The
/// messages a node sends at one tick with one fate share one label (the relations, and `×N`
/// for N destinations), placed along one of their arrows where it overlaps no other text; a
/// group that repeats the same sender's group of the tick before is not labelled again. Lost
/// messages are dashed and end in a cross (red when the schedule dropped them, orange when
/// their sender had crashed), crashed nodes are marked `CRASHED` from their crash tick on, and
/// a legend says what each mark means. Every arrow has a tooltip naming its messages.
pub fn spacetime_svg(program: &ir::Program, run: &Run, faults: &FaultSet, title: &str) -> String {
    let nodes: Vec<String> = run.nodes.iter().map(node_name).collect();
    let column: BTreeMap<&str, f64> = nodes
        .iter()
        .enumerate()
        .map(|(index, node)| (node.as_str(), LEFT + COLUMN * index as f64))
        .collect();
    // Messages grouped by (tick, sender, fate, relations): one label per group.
    type ArrowKey = (u64, String, Fate, u64);
    let mut by_arrow: BTreeMap<(ArrowKey, String), BTreeSet<String>> = BTreeMap::new();
    for message in &run.messages {
        by_arrow
            .entry((
                (
                    message.send_tick,
                    node_name(&message.sender),
                    message.fate,
                    message.delay,
                ),
                node_name(&message.dest),
            ))
            .or_default()
            .insert(program.relation(message.rel).name.clone());
    }
    let mut grouped: BTreeMap<(ArrowKey, Vec<String>), Vec<String>> = BTreeMap::new();
    for ((key, dest), relations) in by_arrow {
        grouped
            .entry((key, relations.into_iter().collect()))
            .or_default()
            .push(dest);
    }
    let groups: Vec<ArrowGroup> = grouped
        .into_iter()
        .map(
            |(((tick, sender, fate, delay), relations), dests)| ArrowGroup {
                tick,
                sender,
                fate,
                delay,
                relations,
                dests,
            },
        )
        .collect();
    let repeated: Vec<bool> = groups
        .iter()
        .map(|group| {
            group.tick > 1
                && groups.iter().any(|earlier| {
                    earlier.tick + 1 == group.tick
                        && earlier.sender == group.sender
                        && earlier.fate == group.fate
                        && earlier.delay == group.delay
                        && earlier.relations == group.relations
                        && earlier.dests == group.dests
                })
        })
        .collect();
    // More room between ticks until every label fits.
    let mut layout = None;
    for row in [60.0, 80.0, 100.0, 130.0, 170.0, 220.0] {
        let attempt =
            spacetime_layout(run, faults, title, &nodes, &column, &groups, &repeated, row);
        let fits = attempt.unplaced.is_empty();
        layout = Some(attempt);
        if fits {
            break;
        }
    }
    let Some(layout) = layout else {
        return String::new();
    };
    layout.svg
}

/// One attempt at laying out a Lamport diagram with `row` pixels between ticks.
struct SpacetimeLayout {
    svg: String,
    /// Labels that found no place (listed below the diagram).
    unplaced: Vec<String>,
}

#[allow(
    clippy::too_many_arguments,
    reason = "the parts of one diagram, computed once by the caller for every attempt"
)]
fn spacetime_layout(
    run: &Run,
    faults: &FaultSet,
    title: &str,
    nodes: &[String],
    column: &BTreeMap<&str, f64>,
    groups: &[ArrowGroup],
    repeated: &[bool],
    row: f64,
) -> SpacetimeLayout {
    let last = run.ticks_run + 1;
    #[allow(
        clippy::cast_precision_loss,
        reason = "tick numbers are far below 2^52"
    )]
    let y = |tick: u64| TOP + row * tick as f64;
    let mut placer = Placer::default();
    let mut body = String::new();
    // Drawn over the arrows.
    let mut crash_marks = String::new();
    let mut width = LEFT + COLUMN * nodes.len().max(1) as f64;
    placer.fixed(10.0, 20.0, title, 13.0, Anchor::Start);
    width = width.max(Box2::of_text(10.0, 20.0, title, 13.0, Anchor::Start).right + 10.0);
    let _ = writeln!(
        body,
        "<text x=\"10\" y=\"20\" font-size=\"13\">{}</text>",
        escape(title)
    );
    for tick in 1..=last {
        let label = if tick > run.ticks_run {
            "after EOT".to_string()
        } else {
            format!("t={tick}")
        };
        placer.fixed(8.0, y(tick) + 4.0, &label, FONT, Anchor::Start);
        let _ = writeln!(
            body,
            "<text x=\"8\" y=\"{:.1}\" font-size=\"{FONT}\" fill=\"#666\">{label}</text>",
            y(tick) + 4.0
        );
    }
    for node in nodes {
        let x = column[node.as_str()];
        placer.fixed(x, TOP + 20.0, node, FONT, Anchor::Middle);
        let _ = writeln!(
            body,
            "<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"{FONT}\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>",
            TOP + 20.0,
            escape(node)
        );
        let crash = faults.crashes.get(node).copied();
        let alive_until = crash.map_or(last, |tick| tick.min(last));
        let _ = writeln!(
            body,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"black\"/>",
            y(1),
            y(alive_until)
        );
        if let Some(tick) = crash {
            let _ = writeln!(
                body,
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"red\" stroke-width=\"3\" stroke-dasharray=\"2,3\"/>",
                y(alive_until),
                y(last)
            );
            let label = format!("CRASHED @{tick}");
            let area = Box2 {
                left: x - 55.0,
                top: y(tick) - 9.0,
                right: x + 55.0,
                bottom: y(tick) + 9.0,
            };
            placer.block(area);
            let _ = writeln!(
                crash_marks,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"110\" height=\"18\" fill=\"#fdd\" stroke=\"red\"/><text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"{FONT}\" text-anchor=\"middle\" fill=\"red\">{label}</text>",
                area.left,
                area.top,
                y(tick) + 4.0
            );
        }
        for tick in 1..=run.ticks_run {
            let _ = writeln!(
                body,
                "<circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"black\"/>",
                y(tick)
            );
        }
    }
    // Arrows first (under the labels), then the labels.
    let mut labels = String::new();
    let mut unplaced = Vec::new();
    let fractions = [
        0.5, 0.35, 0.65, 0.2, 0.8, 0.27, 0.43, 0.57, 0.73, 0.12, 0.88,
    ];
    for (group, repeated) in groups.iter().zip(repeated) {
        let Some(&x1) = column.get(group.sender.as_str()) else {
            continue;
        };
        // A late message ends at its arrival (at most at the row after EOT).
        let (y1, y2) = (y(group.tick), y((group.tick + 1 + group.delay).min(last)));
        let (style, colour) = fate_style(group.fate);
        let relations = group.relations.join(", ");
        // Destinations nearest the sender first: their arrows are the steepest, so labels
        // along them stay near their own arrow.
        let mut dests: Vec<(f64, &String)> = group
            .dests
            .iter()
            .filter_map(|dest| column.get(dest.as_str()).map(|x2| ((x2 - x1).abs(), dest)))
            .collect();
        dests.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        let mut candidates = Vec::new();
        for (_, dest) in &dests {
            let x2 = column[dest.as_str()];
            let late = if group.delay > 0 {
                format!(
                    ", {} ticks late: arrives at tick {}",
                    group.delay,
                    group.tick + 1 + group.delay
                )
            } else {
                String::new()
            };
            let words = if group.delay > 0 && group.fate == Fate::Delivered {
                "delivered late"
            } else {
                fate_words(group.fate)
            };
            let tooltip = format!(
                "{relations}: {} -> {dest}, sent at tick {} ({words}{late})",
                group.sender, group.tick,
            );
            if **dest == group.sender {
                let _ = writeln!(
                    body,
                    "<path d=\"M {x1:.1} {y1:.1} C {:.1} {y1:.1}, {:.1} {y2:.1}, {x1:.1} {y2:.1}\" fill=\"none\" {style}><title>{}</title></path>",
                    x1 + 30.0,
                    x1 + 30.0,
                    escape(&tooltip)
                );
                for fraction in [0.5, 0.3, 0.7, 0.15, 0.85] {
                    candidates.push((x1 + 34.0, y1 + (y2 - y1) * fraction + 4.0, Anchor::Start));
                }
                continue;
            }
            let _ = writeln!(
                body,
                "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" {style}><title>{}</title></line>",
                escape(&tooltip)
            );
            for fraction in fractions {
                candidates.push((
                    x1 + (x2 - x1) * fraction,
                    y1 + (y2 - y1) * fraction + 4.0,
                    Anchor::Middle,
                ));
            }
        }
        if *repeated {
            continue;
        }
        let mut label = if group.dests.len() > 1 {
            format!("{relations} ×{}", group.dests.len())
        } else {
            relations.clone()
        };
        if group.delay > 0 {
            label.push_str(&format!(" (+{} late)", group.delay));
        }
        let mut placed = false;
        for anchor in [Anchor::Middle, Anchor::Start] {
            let points: Vec<(f64, f64)> = candidates
                .iter()
                .filter(|candidate| candidate.2 == anchor)
                .map(|candidate| (candidate.0, candidate.1))
                .collect();
            if let Some((x, y)) = placer.place(&label, FONT, anchor, &points) {
                labels.push_str(&text_element(x, y, FONT, anchor, colour, &label));
                labels.push('\n');
                placed = true;
                break;
            }
        }
        if !placed {
            unplaced.push(format!(
                "{label}: {} at t={} ({})",
                group.sender,
                group.tick,
                fate_words(group.fate)
            ));
        }
    }
    body.push_str(&crash_marks);
    body.push_str(&labels);
    // The legend, one entry per line, below the last tick.
    let mut line_y = y(last) + 40.0;
    let legend_x = LEFT;
    let _ = writeln!(
        body,
        "<text x=\"{:.1}\" y=\"{line_y:.1}\" font-size=\"{FONT}\" font-weight=\"bold\">legend</text>",
        8.0
    );
    let mut fates: BTreeSet<Fate> = groups.iter().map(|group| group.fate).collect();
    fates.insert(Fate::Delivered);
    let mut entries: Vec<(Option<Fate>, String)> = fates
        .into_iter()
        .map(|fate| (Some(fate), fate_words(fate).to_string()))
        .collect();
    if !faults.crashes.is_empty() {
        entries.push((
            None,
            "CRASHED @t: the node crashed at tick t (it sends nothing from then on)".to_string(),
        ));
    }
    if groups.iter().any(|group| group.delay > 0) {
        entries.push((
            None,
            "rel (+d late): a late message, drawn to the tick it arrives at, d ticks after the next tick (later messages may overtake it)".to_string(),
        ));
    }
    entries.push((
        None,
        "rel ×N: one label for the same message sent to N nodes; an arrow without a label repeats its sender's arrow of the tick before".to_string(),
    ));
    for (fate, words) in &entries {
        line_y += 18.0;
        if let Some(fate) = fate {
            let (style, _) = fate_style(*fate);
            let _ = writeln!(
                body,
                "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" {style}/>",
                legend_x - 60.0,
                line_y - 4.0,
                legend_x - 10.0,
                line_y - 4.0
            );
        } else if words.starts_with("CRASHED") {
            let _ = writeln!(
                body,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"50\" height=\"10\" fill=\"#fdd\" stroke=\"red\"/>",
                legend_x - 60.0,
                line_y - 9.0
            );
        }
        let _ = writeln!(
            body,
            "<text x=\"{legend_x:.1}\" y=\"{line_y:.1}\" font-size=\"{FONT}\">{}</text>",
            escape(words)
        );
        width = width.max(Box2::of_text(legend_x, line_y, words, FONT, Anchor::Start).right + 10.0);
    }
    if !unplaced.is_empty() {
        line_y += 26.0;
        let heading = "labels without room on their arrows:";
        let _ = writeln!(
            body,
            "<text x=\"8\" y=\"{line_y:.1}\" font-size=\"{FONT}\" font-weight=\"bold\">{heading}</text>"
        );
        for label in &unplaced {
            line_y += 16.0;
            let _ = writeln!(
                body,
                "<text x=\"{legend_x:.1}\" y=\"{line_y:.1}\" font-size=\"{FONT}\">{}</text>",
                escape(label)
            );
            width =
                width.max(Box2::of_text(legend_x, line_y, label, FONT, Anchor::Start).right + 10.0);
        }
    }
    let height = line_y + 20.0;
    let (width, height) = (width.ceil(), height.ceil());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"monospace\" font-size=\"{FONT}\">"
    );
    out.push_str(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"black\"/></marker>\
<marker id=\"lost\" viewBox=\"0 0 10 10\" refX=\"5\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\"><path d=\"M 0 0 L 10 10 M 10 0 L 0 10\" stroke=\"red\" stroke-width=\"2\"/></marker></defs>\n",
    );
    let _ = writeln!(
        out,
        "<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>"
    );
    out.push_str(&body);
    out.push_str("</svg>\n");
    SpacetimeLayout { svg: out, unplaced }
}

/// One edge of a lineage graph: the fact group `child` supports the fact group `parent`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    child: usize,
    parent: usize,
    label: String,
    message: bool,
    lost: bool,
}

/// One box of a lineage graph: a fact, with the copies of it that a table carried to later
/// ticks (`votes(..)@2–5`).
struct FactGroup {
    /// The first copy (where the fact was derived).
    first: FactRef,
    ticks: BTreeSet<u64>,
    label: String,
    root: bool,
}

/// `@2`, `@2–5`, `@2–3, 5`.
fn tick_ranges(ticks: &BTreeSet<u64>) -> String {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for &tick in ticks {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == tick => *end = tick,
            _ => ranges.push((tick, tick)),
        }
    }
    let parts: Vec<String> = ranges
        .iter()
        .map(|(start, end)| {
            if start == end {
                start.to_string()
            } else {
                format!("{start}–{end}")
            }
        })
        .collect();
    format!("@{}", parts.join(", "))
}

/// The lineage graph of some facts (goals only, as in the LDFI paper's figures): each fact
/// linked to the facts its derivations used, messages dashed; messages that `faults` loses
/// drawn red. A fact and the copies of it that a table carried to later ticks are one box,
/// labelled with the ticks it held. At most `limit` boxes are drawn.
pub struct LineageGraph {
    groups: Vec<FactGroup>,
    edges: Vec<Edge>,
    truncated: bool,
}

impl LineageGraph {
    pub fn new(
        program: &ir::Program,
        run: &Run,
        roots: &[FactRef],
        faults: &FaultSet,
        limit: usize,
    ) -> LineageGraph {
        let label = |fact: FactRef| {
            let relation = &program.relation(fact.rel).name;
            match run.fact(fact) {
                Some(tuple) => {
                    let values: Vec<String> = tuple.iter().map(ToString::to_string).collect();
                    format!("{relation}({})", values.join(", "))
                }
                None => format!("{relation}(?)"),
            }
        };
        // The first copy of a carried fact: follow `Persisted` back to where it was derived.
        let first_copy = |mut fact: FactRef| loop {
            let carried = run
                .derivations(fact)
                .iter()
                .find_map(|derivation| match derivation {
                    Derivation::Persisted { from } => Some(*from),
                    _ => None,
                });
            match carried {
                Some(from) if from.tick < fact.tick => fact = from,
                _ => return fact,
            }
        };
        let mut group_of: BTreeMap<FactRef, usize> = BTreeMap::new();
        let mut groups: Vec<FactGroup> = Vec::new();
        let mut seen: BTreeSet<FactRef> = BTreeSet::new();
        let mut queue: std::collections::VecDeque<FactRef> = roots.iter().copied().collect();
        let mut edges: BTreeSet<(FactRef, FactRef, String, bool, bool)> = BTreeSet::new();
        let mut truncated = false;
        while let Some(fact) = queue.pop_front() {
            if !seen.insert(fact) {
                continue;
            }
            let first = first_copy(fact);
            let group = match group_of.get(&first) {
                Some(group) => *group,
                None => {
                    if groups.len() >= limit {
                        truncated = true;
                        continue;
                    }
                    groups.push(FactGroup {
                        first,
                        ticks: BTreeSet::new(),
                        label: label(first),
                        root: false,
                    });
                    group_of.insert(first, groups.len() - 1);
                    groups.len() - 1
                }
            };
            group_of.insert(fact, group);
            groups[group].ticks.insert(fact.tick);
            if roots.contains(&fact) {
                groups[group].root = true;
            }
            for derivation in run.derivations(fact) {
                let (children, text, message, lost): (Vec<FactRef>, String, bool, bool) =
                    match derivation {
                        Derivation::Crash | Derivation::Given { .. } => continue,
                        // The copy it was carried from is in the same box.
                        Derivation::Persisted { from } => {
                            queue.push_back(*from);
                            continue;
                        }
                        Derivation::Rule(firing) | Derivation::Aggregate(firing) => (
                            firing.body.clone(),
                            format!("rule {}", firing.rule.0),
                            false,
                            false,
                        ),
                        Derivation::Next(firing) => (
                            firing.body.clone(),
                            format!("@next rule {}", firing.rule.0),
                            false,
                            false,
                        ),
                        Derivation::Message {
                            sender,
                            send_tick,
                            firing,
                        } => {
                            let from = node_name(sender);
                            let to = run
                                .fact(fact)
                                .and_then(|tuple| tuple.first())
                                .map(node_name)
                                .unwrap_or_default();
                            let lost = faults
                                .crashes
                                .get(&from)
                                .is_some_and(|tick| *tick <= *send_tick)
                                || faults.drops.iter().any(|drop| {
                                    drop.from == from && drop.to == to && drop.tick == *send_tick
                                });
                            (
                                firing.body.clone(),
                                format!("msg {from}->{to}@{send_tick}"),
                                true,
                                lost,
                            )
                        }
                    };
                for child in children {
                    edges.insert((child, fact, text.clone(), message, lost));
                    queue.push_back(child);
                }
            }
        }
        // Edges between boxes; edges inside a box (a copy supporting a later copy) vanish.
        let edges: BTreeSet<Edge> = edges
            .into_iter()
            .filter_map(|(child, parent, label, message, lost)| {
                let child = *group_of.get(&child)?;
                let parent = *group_of.get(&parent)?;
                (child != parent).then_some(Edge {
                    child,
                    parent,
                    label,
                    message,
                    lost,
                })
            })
            .collect();
        LineageGraph {
            groups,
            edges: edges.into_iter().collect(),
            truncated,
        }
    }

    fn box_label(&self, group: &FactGroup) -> String {
        format!("{}{}", group.label, tick_ranges(&group.ticks))
    }

    /// The graph in Graphviz DOT (time going up).
    pub fn dot(&self, title: &str) -> String {
        let dot_escape = |text: &str| text.replace('\\', "\\\\").replace('"', "\\\"");
        let mut out = format!(
            "digraph lineage {{\n  label=\"{}\";\n  rankdir=BT;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n",
            dot_escape(title)
        );
        for (id, group) in self.groups.iter().enumerate() {
            let style = if group.root { ", penwidth=2" } else { "" };
            let _ = writeln!(
                out,
                "  f{id} [label=\"{}\"{style}];",
                dot_escape(&self.box_label(group))
            );
        }
        for edge in &self.edges {
            let mut attributes = vec![format!("label=\"{}\"", dot_escape(&edge.label))];
            if edge.message {
                attributes.push("style=dashed".to_string());
            }
            if edge.lost {
                attributes.push("color=red".to_string());
                attributes.push("fontcolor=red".to_string());
            }
            let _ = writeln!(
                out,
                "  f{} -> f{} [{}];",
                edge.child,
                edge.parent,
                attributes.join(", ")
            );
        }
        if self.truncated {
            out.push_str("  truncated [shape=plaintext, label=\"(graph truncated)\"];\n");
        }
        out.push_str("}\n");
        out
    }

    /// The graph as SVG, layered by the tick at which each fact was first derived (time going
    /// up) and, within a tick, by derivation depth. Message edges are labelled where the
    /// label overlaps no other text (else only their tooltip names them).
    pub fn svg(&self, title: &str) -> String {
        let count = self.groups.len();
        // Depth within a tick: one more than the deepest same-tick box it was derived from.
        let mut depth = vec![0_usize; count];
        for _ in 0..count {
            let mut changed = false;
            for edge in &self.edges {
                let (child, parent) = (&self.groups[edge.child], &self.groups[edge.parent]);
                if child.first.tick == parent.first.tick
                    && depth[edge.parent] < depth[edge.child] + 1
                {
                    depth[edge.parent] = (depth[edge.child] + 1).min(count);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let mut rows: BTreeMap<(u64, usize), Vec<usize>> = BTreeMap::new();
        for (id, group) in self.groups.iter().enumerate() {
            rows.entry((group.first.tick, depth[id]))
                .or_default()
                .push(id);
        }
        let row_count = rows.len();
        let box_height = 22.0;
        let row_gap = 70.0;
        let mut position: Vec<(f64, f64, f64)> = vec![(0.0, 0.0, 0.0); count];
        let title_text = format!(
            "{title}{}",
            if self.truncated { " (truncated)" } else { "" }
        );
        let mut width = Box2::of_text(10.0, 20.0, &title_text, 13.0, Anchor::Start).right + 10.0;
        let mut placer = Placer::default();
        placer.fixed(10.0, 20.0, &title_text, 13.0, Anchor::Start);
        for (row, ids) in rows.values().enumerate() {
            #[allow(clippy::cast_precision_loss, reason = "row counts are far below 2^52")]
            let y = 50.0 + (row_count - 1 - row) as f64 * row_gap;
            let mut x = 20.0;
            for id in ids {
                let label = self.box_label(&self.groups[*id]);
                let text = Box2::of_text(x + 8.0, y + 15.0, &label, FONT, Anchor::Start);
                let box_width = (text.right - x + 8.0).ceil();
                position[*id] = (x, y, box_width);
                placer.block(Box2 {
                    left: x,
                    top: y,
                    right: x + box_width,
                    bottom: y + box_height,
                });
                x += box_width + 20.0;
            }
            width = width.max(x);
        }
        #[allow(clippy::cast_precision_loss, reason = "row counts are far below 2^52")]
        let height = 50.0 + row_count.max(1) as f64 * row_gap + 20.0;
        let mut lines = String::new();
        let mut labels = String::new();
        for edge in &self.edges {
            let (cx, cy, cw) = position[edge.child];
            let (px, py, pw) = position[edge.parent];
            let (x1, y1) = (cx + cw / 2.0, cy);
            let (x2, y2) = (px + pw / 2.0, py + box_height);
            let colour = if edge.lost { "red" } else { "#333" };
            let dash = if edge.message {
                " stroke-dasharray=\"6,4\""
            } else {
                ""
            };
            let tooltip = format!("{}{}", edge.label, if edge.lost { " LOST" } else { "" });
            let _ = writeln!(
                lines,
                "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{colour}\"{dash} marker-end=\"url(#arrow)\"><title>{}</title></line>",
                escape(&tooltip)
            );
            if edge.message {
                let candidates: Vec<(f64, f64)> = [0.5, 0.35, 0.65, 0.2, 0.8]
                    .iter()
                    .map(|f| (x1 + (x2 - x1) * f + 4.0, y1 + (y2 - y1) * f))
                    .collect();
                if let Some((x, y)) = placer.place(&tooltip, 9.0, Anchor::Start, &candidates) {
                    labels.push_str(&text_element(x, y, 9.0, Anchor::Start, colour, &tooltip));
                    labels.push('\n');
                    width =
                        width.max(Box2::of_text(x, y, &tooltip, 9.0, Anchor::Start).right + 10.0);
                }
            }
        }
        let mut boxes = String::new();
        for (id, group) in self.groups.iter().enumerate() {
            let (x, y, w) = position[id];
            let stroke = if group.root { "2" } else { "1" };
            let persisted = if group.ticks.len() > 1 {
                "<title>one fact, carried from tick to tick by its table</title>"
            } else {
                ""
            };
            let _ = writeln!(
                boxes,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{box_height}\" rx=\"10\" fill=\"{}\" stroke=\"#333\" stroke-width=\"{stroke}\">{persisted}</rect><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"{FONT}\">{}</text>",
                if group.ticks.len() > 1 {
                    "#e4ecff"
                } else {
                    "#eef"
                },
                x + 8.0,
                y + 15.0,
                escape(&self.box_label(group))
            );
        }
        let (width, height) = (width.ceil(), height.ceil());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"monospace\" font-size=\"{FONT}\">"
        );
        out.push_str("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#333\"/></marker></defs>\n");
        let _ = writeln!(
            out,
            "<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n<text x=\"10\" y=\"20\" font-size=\"13\">{}</text>",
            escape(&title_text)
        );
        out.push_str(&lines);
        out.push_str(&boxes);
        out.push_str(&labels);
        out.push_str("</svg>\n");
        out
    }
}
