//! The HTML page of `graft report`: one self-contained file (styles inline, diagrams as inline
//! SVG, no script, no font, no request of any kind — its content security policy forbids
//! them), rendered from a [`ProtocolReport`]. Deterministic: the same report gives the same
//! bytes (no timestamp).

use std::fmt::Write as _;

use crate::commands::report::{
    ComparisonReport, CostReport, ProtocolReport, VerificationReport, VersionReport,
};
use crate::protocol::Expectation;
use graft_rewrites::justification::Assumption;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Markdown's `code` spans as `<code>` (the text is already escaped).
fn code_spans(text: &str) -> String {
    let mut out = String::new();
    for (index, part) in text.split('`').enumerate() {
        if index % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

/// An anchor name from any text: letters, digits and `-`.
fn anchor(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
h3 { margin-top: 1.5em; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 12px; line-height: 1.35; }
.diagram { overflow-x: auto; border: 1px solid #ddd; margin: 0.5em 0; }
.ok { color: #176f2c; font-weight: bold; }
.fail { color: #b00020; font-weight: bold; }
.muted { color: #666; }
.badges span { display: inline-block; margin-right: 1em; }
ul.tree, ul.tree ul { list-style: none; padding-left: 1.2em; border-left: 1px solid #ccc; }
ul.tree { border-left: none; padding-left: 0; }
ul.tree li { margin: 0.3em 0; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.del { color: #b00020; }
.add { color: #176f2c; }
code { background: #f0f0f0; padding: 0 0.2em; }
";

/// The whole page.
pub fn page(report: &ProtocolReport) -> String {
    let mut out = String::new();
    let title = format!("graft report: {}", report.name);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&title)
    );
    let _ = writeln!(
        out,
        "<h1>{}</h1>\n<p class=\"muted\">Protocol directory <code>{}</code>, reported by <code>graft report</code>.</p>",
        escape(&report.name),
        escape(&report.directory)
    );
    if let Some(description) = &report.description {
        let _ = writeln!(out, "<p>{}</p>", code_spans(&escape(description)));
    }
    summary_badges(&mut out, report);
    version_tree(&mut out, report);
    // Diagrams drawn so far: each one's SVG ids get its number.
    let mut diagrams = 0_usize;
    for version in &report.versions {
        version_section(&mut out, report, version, &mut diagrams);
    }
    if !report.variants.is_empty() {
        let _ = writeln!(
            out,
            "<h2 id=\"variants\">Variants verified on their own</h2>\n<p>Programs of the directory that <code>protocol.json</code> verifies by themselves, typically buggy versions that must be caught.</p>"
        );
        for variant in &report.variants {
            let _ = writeln!(
                out,
                "<h3 id=\"{}\"><code>{}</code></h3>",
                anchor(&variant.program),
                escape(&variant.program)
            );
            for verification in &variant.verifications {
                verification_block(&mut out, verification, &mut diagrams);
            }
        }
    }
    let _ = writeln!(out, "<h2 id=\"refusals\">Refusals met</h2>");
    if report.refusals.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"muted\">No refused rewrite is recorded in <code>protocol.json</code>.</p>"
        );
    }
    for refusal in &report.refusals {
        let status = if refusal.refused {
            "<span class=\"ok\">refused, as recorded</span>"
        } else {
            "<span class=\"fail\">not refused</span>"
        };
        let _ = writeln!(
            out,
            "<h3><code>graft rewrite {} --pass '{}'</code></h3>\n<p>{status}{}</p>\n<pre>{}</pre>",
            escape(&refusal.program),
            escape(&refusal.pass),
            refusal
                .note
                .as_ref()
                .map(|note| format!(" — {}", code_spans(&escape(note))))
                .unwrap_or_default(),
            escape(&refusal.text)
        );
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn summary_badges(out: &mut String, report: &ProtocolReport) {
    let verifications: Vec<&VerificationReport> = report
        .versions
        .iter()
        .flat_map(|version| &version.verifications)
        .chain(
            report
                .variants
                .iter()
                .flat_map(|variant| &variant.verifications),
        )
        .collect();
    let failed = verifications.iter().filter(|v| !v.passed).count();
    let status = |failures: usize| {
        if failures == 0 {
            "<span class=\"ok\">all pass</span>".to_owned()
        } else {
            format!("<span class=\"fail\">{failures} failed</span>")
        }
    };
    let refused_ok = report.refusals.iter().filter(|r| r.refused).count();
    let _ = writeln!(
        out,
        "<p class=\"badges\"><span>{} version(s)</span><span><code>graft test</code>: {} run(s), {}</span><span><code>graft verify</code>: {} verification(s), {}</span><span>refusals: {refused_ok} of {} as recorded</span></p>",
        report.versions.len(),
        report.test_runs,
        status(report.test_failures),
        verifications.len(),
        status(failed),
        report.refusals.len()
    );
}

/// The versions as a tree: each under the version it was derived from, with the passes.
fn version_tree(out: &mut String, report: &ProtocolReport) {
    let _ = writeln!(
        out,
        "<h2 id=\"versions\">Versions</h2>\n<ul class=\"tree\">"
    );
    for (index, version) in report.versions.iter().enumerate() {
        if version.source.is_none() {
            tree_node(out, report, index);
        }
    }
    // Versions whose source is not in the directory (it changed since the rewrite).
    for version in &report.versions {
        if version.source.is_none() && version.justification.is_some() {
            let _ = writeln!(
                out,
                "<li class=\"fail\">{}: its source version is not in the directory (derive it again)</li>",
                escape(&version.name)
            );
        }
    }
    out.push_str("</ul>\n");
}

fn tree_node(out: &mut String, report: &ProtocolReport, index: usize) {
    let version = &report.versions[index];
    if version.justification.is_some() && version.source.is_none() {
        return;
    }
    let failed = version.tests.iter().any(|(passed, _)| !passed)
        || version.verifications.iter().any(|v| !v.passed);
    let mark = if failed {
        "<span class=\"fail\">✗</span>"
    } else {
        "<span class=\"ok\">✓</span>"
    };
    let _ = write!(
        out,
        "<li>{mark} <a href=\"#version-{}\"><b>{}</b></a> <code>{}</code>",
        anchor(&version.name),
        escape(&version.name),
        escape(&version.program)
    );
    if let Some(justification) = &version.justification {
        let passes: Vec<String> = justification
            .passes
            .iter()
            .map(|pass| {
                let case = pass
                    .case
                    .as_ref()
                    .map(|case| format!(" ({case})"))
                    .unwrap_or_default();
                format!("<code>{}</code>{}", escape(&pass.request), escape(&case))
            })
            .collect();
        let _ = write!(
            out,
            " — derived by {}, outputs compared {}",
            passes.join(" then "),
            escape(comparison_name(justification.comparison))
        );
    }
    let children: Vec<usize> = report
        .versions
        .iter()
        .enumerate()
        .filter(|(_, child)| child.source == Some(index))
        .map(|(child, _)| child)
        .collect();
    if !children.is_empty() {
        out.push_str("\n<ul>\n");
        for child in children {
            tree_node(out, report, child);
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</li>\n");
}

fn comparison_name(comparison: graft_rewrites::justification::Comparison) -> &'static str {
    match comparison {
        graft_rewrites::justification::Comparison::PerTick => "per tick",
        graft_rewrites::justification::Comparison::Eventual => "eventually",
        graft_rewrites::justification::Comparison::None => "not at all (outputs may change)",
    }
}

fn version_section(
    out: &mut String,
    report: &ProtocolReport,
    version: &VersionReport,
    diagrams: &mut usize,
) {
    let _ = writeln!(
        out,
        "<h2 id=\"version-{}\">{} <code>{}</code></h2>\n<p class=\"muted\">content hash <code>{}</code></p>",
        anchor(&version.name),
        escape(&version.name),
        escape(&version.program),
        escape(&version.hash)
    );
    if let Some(justification) = &version.justification {
        let source = version
            .source
            .map(|source| {
                format!(
                    "<a href=\"#version-{}\">{}</a>",
                    anchor(&report.versions[source].name),
                    escape(&report.versions[source].name)
                )
            })
            .unwrap_or_else(|| {
                format!(
                    "{} (not in the directory)",
                    escape(&justification.source.files.join(", "))
                )
            });
        let _ = writeln!(out, "<h3>Justification</h3>\n<p>Derived from {source}.</p>");
        for pass in &justification.passes {
            let _ = writeln!(
                out,
                "<details open><summary><code>{}</code>{}; outputs compared {}</summary>\n<ul>",
                escape(&pass.request),
                pass.case
                    .as_ref()
                    .map(|case| format!(", case <b>{}</b>", escape(case)))
                    .unwrap_or_default(),
                escape(comparison_name(pass.comparison))
            );
            for precondition in &pass.preconditions {
                let _ = writeln!(
                    out,
                    "<li><b>{}</b>: {}</li>",
                    escape(&precondition.name),
                    escape(&precondition.evidence)
                );
            }
            for assumption in &pass.assumptions {
                match assumption {
                    Assumption::Key(key) => {
                        let _ = writeln!(
                            out,
                            "<li><b>assumed</b>: key({}) of <code>{}</code> (checked by <code>graft test</code> on every run)</li>",
                            escape(&key.key.join(", ")),
                            escape(&key.relation)
                        );
                    }
                    Assumption::SynchronousDelivery(sync) => {
                        let _ = writeln!(
                            out,
                            "<li><b>assumed</b>: synchronous delivery of {}: {} (a late message may make the version diverge: <code>graft test --max-delay</code>)</li>",
                            sync.channels
                                .iter()
                                .map(|channel| format!("<code>{}</code>", escape(channel)))
                                .collect::<Vec<_>>()
                                .join(", "),
                            escape(&sync.why)
                        );
                    }
                }
            }
            for role in &pass.roles {
                let _ = writeln!(
                    out,
                    "<li>role <code>{}</code> → {}: {}</li>",
                    escape(&role.old),
                    escape(&role.new.join(", ")),
                    escape(&role.how)
                );
            }
            out.push_str("</ul>\n</details>\n");
        }
    }
    // graft test.
    let _ = writeln!(out, "<h3><code>graft test</code></h3>");
    if version.tests.is_empty() {
        let _ = writeln!(out, "<p class=\"muted\">No run.</p>");
    } else {
        out.push_str("<pre>");
        for (passed, text) in &version.tests {
            let class = if *passed { "ok" } else { "fail" };
            let mut lines = text.lines();
            if let Some(first) = lines.next() {
                let _ = writeln!(out, "<span class=\"{class}\">{}</span>", escape(first));
            }
            for line in lines {
                let _ = writeln!(out, "{}", escape(line));
            }
        }
        out.push_str("</pre>\n");
    }
    for comparison in &version.comparisons {
        comparison_block(out, comparison);
    }
    let headline: Vec<&str> = version.check.lines().take(3).collect();
    let _ = writeln!(
        out,
        "<h3><code>graft check</code></h3>\n<details{}><summary>{}</summary>\n<pre>{}</pre>\n</details>",
        if version.checks_ok { "" } else { " open" },
        if version.checks_ok {
            escape(&headline.join("; "))
        } else {
            "<span class=\"fail\">the program has errors</span>".to_owned()
        },
        escape(&version.check)
    );
    let _ = writeln!(out, "<h3>Cost</h3>");
    for cost in &version.costs {
        cost_block(out, cost);
    }
    let _ = writeln!(out, "<h3><code>graft verify</code></h3>");
    if version.verifications.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"muted\">No verification configuration applies to this version (see <code>protocol.json</code>).</p>"
        );
    }
    for verification in &version.verifications {
        verification_block(out, verification, diagrams);
    }
}

fn comparison_block(out: &mut String, comparison: &ComparisonReport) {
    let verdict = if comparison.diverged {
        "<span class=\"fail\">diverge</span>"
    } else if comparison.mode.starts_with("not compared") {
        "<span class=\"muted\">are not compared</span>"
    } else {
        "<span class=\"ok\">agree</span>"
    };
    let _ = writeln!(
        out,
        "<details><summary>Outputs on <code>{}</code> against the source ({}): they {verdict}; <span class=\"del\">- source</span>, <span class=\"add\">+ this version, mapped back</span></summary>\n<pre>",
        escape(&comparison.workload),
        escape(&comparison.mode)
    );
    for line in comparison.diff.lines() {
        let class = if line.starts_with("- ") {
            " class=\"del\""
        } else if line.starts_with("+ ") {
            " class=\"add\""
        } else {
            ""
        };
        let _ = writeln!(out, "<span{class}>{}</span>", escape(line));
    }
    out.push_str("</pre>\n</details>\n");
}

fn cost_block(out: &mut String, cost: &CostReport) {
    let _ = writeln!(
        out,
        "<p>On <code>{}</code>: {} tick(s) until quiescence.{}</p>",
        escape(&cost.workload),
        cost.cost.ticks,
        cost.bottleneck
            .as_ref()
            .map(|(node, role, facts, messages)| format!(
                " Bottleneck: <b>{}</b> ({}), {facts:.2} facts/tick, {messages:.2} messages/tick.",
                escape(node),
                escape(role)
            ))
            .unwrap_or_default()
    );
    out.push_str(
        "<table><tr><th>node</th><th>role</th><th>messages</th><th>exchanges</th><th>facts</th></tr>\n",
    );
    for (name, node) in &cost.cost.nodes {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            escape(&node.role),
            node.messages,
            node.exchanges,
            node.facts
        );
    }
    out.push_str("</table>\n");
    if let Some(table) = &cost.against_source {
        let _ = writeln!(
            out,
            "<details><summary>Against the source (<code>graft rewrite --cost</code>)</summary>\n<pre>{}</pre>\n</details>",
            escape(table)
        );
    }
}

/// Gives the ids inside one inline SVG a prefix, so that the page's ids stay unique.
fn scoped_svg(svg: &str, prefix: &str) -> String {
    svg.replace("id=\"arrow\"", &format!("id=\"{prefix}-arrow\""))
        .replace("url(#arrow)", &format!("url(#{prefix}-arrow)"))
        .replace("id=\"lost\"", &format!("id=\"{prefix}-lost\""))
        .replace("url(#lost)", &format!("url(#{prefix}-lost)"))
}

fn verification_block(out: &mut String, verification: &VerificationReport, diagrams: &mut usize) {
    let config = &verification.config;
    let expect = match config.expect {
        Expectation::Certified => "certified",
        Expectation::Counterexample => "a counterexample",
    };
    let status = if verification.passed {
        "<span class=\"ok\">as expected</span>"
    } else {
        "<span class=\"fail\">NOT as expected</span>"
    };
    let mut bounds = format!(
        "EOT {}, EFF {}, crashes {}",
        config.eot, config.eff, config.crashes
    );
    if config.symmetry {
        bounds.push_str(", symmetry");
    }
    let _ = writeln!(
        out,
        "<h4>On <code>{}</code> ({bounds}): expects {expect}, {status}</h4>",
        escape(&config.workload)
    );
    if let Some(note) = &config.note {
        let _ = writeln!(out, "<p>{}</p>", code_spans(&escape(note)));
    }
    let _ = writeln!(
        out,
        "<p class=\"muted\">facts: {}; {}</p>\n<pre>{}</pre>",
        escape(&verification.facts.join(", ")),
        if verification.cached {
            "the latest verdict, from the verification cache"
        } else {
            "verified for this report"
        },
        escape(&verification.text)
    );
    for (title, spacetime, lineage) in &verification.diagrams {
        *diagrams += 1;
        let prefix = format!("d{diagrams}");
        let _ = writeln!(
            out,
            "<div class=\"diagram\">{}</div>\n<details><summary>lineage of the violated facts, {}</summary>\n<div class=\"diagram\">{}</div>\n</details>",
            scoped_svg(spacetime, &format!("s{prefix}")),
            escape(title),
            scoped_svg(lineage, &format!("l{prefix}"))
        );
    }
}
