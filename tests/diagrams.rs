//! The diagrams people read have no overlapping labels: every `<text>` of every counterexample
//! diagram the examples produce (`graft verify --out` under each configuration of their
//! `protocol.json` that expects a counterexample), and of the Lamport diagrams of every example
//! version under a few fault schedules (up to the 14 nodes of the partitioned Paxos), gets a
//! box estimated from its position, font size, length and anchor, and no two boxes may
//! overlap.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::{exit_code, graft, transcript};
use graft_verify::{Bounds, FaultSet, Verifier};

/// One `<text>` of an SVG: where it is and what it says.
#[derive(Debug)]
struct Text {
    x: f64,
    y: f64,
    font: f64,
    anchor: String,
    content: String,
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].to_owned())
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// Every `<text>` element of `svg`, with the font size inherited from the root when it has
/// none of its own.
fn texts(svg: &str) -> Vec<Text> {
    let root_font = svg
        .find("<svg")
        .and_then(|start| {
            attribute(
                &svg[start..svg[start..].find('>').map_or(svg.len(), |e| start + e)],
                "font-size",
            )
        })
        .and_then(|size| size.parse().ok())
        .unwrap_or(16.0);
    let mut found = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find("<text") {
        rest = &rest[start..];
        let Some(tag_end) = rest.find('>') else { break };
        let tag = &rest[..tag_end];
        let Some(close) = rest.find("</text>") else {
            break;
        };
        let content = unescape(&rest[tag_end + 1..close]);
        let number = |name: &str| attribute(tag, name).and_then(|value| value.parse::<f64>().ok());
        found.push(Text {
            x: number("x").unwrap_or(0.0),
            y: number("y").unwrap_or(0.0),
            font: number("font-size").unwrap_or(root_font),
            anchor: attribute(tag, "text-anchor").unwrap_or_else(|| "start".to_owned()),
            content,
        });
        rest = &rest[close + 7..];
    }
    found
}

/// The box a monospace text covers: 0.6 em per glyph, 0.8 em above the baseline and 0.25 em
/// below it.
fn text_box(text: &Text) -> (f64, f64, f64, f64) {
    let width = text.content.chars().count() as f64 * 0.6 * text.font;
    let left = match text.anchor.as_str() {
        "middle" => text.x - width / 2.0,
        "end" => text.x - width,
        _ => text.x,
    };
    (
        left,
        text.y - 0.8 * text.font,
        left + width,
        text.y + 0.25 * text.font,
    )
}

/// The pairs of texts of `svg` whose boxes overlap.
fn overlaps(svg: &str) -> Vec<String> {
    let texts = texts(svg);
    let boxes: Vec<_> = texts.iter().map(text_box).collect();
    let mut found = Vec::new();
    for i in 0..texts.len() {
        for j in i + 1..texts.len() {
            let (a, b) = (boxes[i], boxes[j]);
            if a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3 {
                found.push(format!("{:?} overlaps {:?}", texts[i], texts[j]));
            }
        }
    }
    found
}

#[test]
fn the_overlap_check_finds_overlapping_labels() {
    // What the 2PC blocking diagram used to draw at the crashed coordinator: three labels
    // 57 pixels apart, each 29 glyphs wide.
    let svg = "<svg font-size=\"11\"><text x=\"146\" y=\"270\" text-anchor=\"middle\">decide (LOST: sender crashed)</text>\
<text x=\"203\" y=\"270\" text-anchor=\"middle\">decide (LOST: sender crashed)</text>\
<text x=\"8\" y=\"130\">t=1</text><text x=\"8\" y=\"190\">t=2</text></svg>";
    assert_eq!(overlaps(svg).len(), 1, "{:?}", overlaps(svg));
    assert_eq!(texts(svg).len(), 4);
}

/// Every configuration of the examples' `protocol.json` files that expects a counterexample:
/// (program, facts files, bound arguments).
fn failing_configurations() -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut found = Vec::new();
    let examples = common::root().join("examples");
    let mut directories: Vec<PathBuf> = std::fs::read_dir(&examples)
        .expect("examples")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.join("protocol.json").is_file())
        .collect();
    directories.sort();
    for directory in directories {
        let name = directory
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let record: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(directory.join("protocol.json")).expect("protocol.json"),
        )
        .expect("JSON");
        for config in record["verify"].as_array().expect("verify list") {
            if config["expect"] != "counterexample" {
                continue;
            }
            let program = match config["program"].as_str() {
                Some(program) => format!("examples/{name}/{program}"),
                None => format!("examples/{name}/{name}.graft"),
            };
            let facts = vec![
                format!("examples/{name}/topology.facts"),
                format!(
                    "examples/{name}/{}",
                    config["workload"].as_str().expect("workload")
                ),
            ];
            let mut bounds = vec!["--eot".to_owned(), config["eot"].to_string()];
            for field in ["eff", "crashes", "max_delay"] {
                if let Some(value) = config.get(field) {
                    bounds.push(format!("--{}", field.replace('_', "-")));
                    bounds.push(value.to_string());
                }
            }
            found.push((program, facts, bounds));
        }
    }
    found
}

#[test]
fn counterexample_diagrams_of_the_examples_have_no_overlapping_labels() {
    let configurations = failing_configurations();
    assert!(configurations.len() >= 10, "{configurations:?}");
    let out = std::env::temp_dir().join(format!("graft-diagrams-{}", std::process::id()));
    let mut checked = 0;
    for (index, (program, facts, bounds)) in configurations.iter().enumerate() {
        let directory = out.join(index.to_string());
        let mut args: Vec<String> = vec!["verify".to_owned(), program.clone()];
        for file in facts {
            args.push("--facts".to_owned());
            args.push(file.clone());
        }
        args.extend(bounds.iter().cloned());
        // Every counterexample within a few executions (a limit keeps Paxos quick).
        args.extend(
            ["--all", "--max-executions", "40", "--no-cache", "--out"]
                .iter()
                .map(|s| (*s).to_owned()),
        );
        args.push(directory.to_string_lossy().into_owned());
        let output = graft(&args);
        assert!(
            [1, 3].contains(&exit_code(&output)),
            "{args:?}\n{}",
            transcript(&output)
        );
        let mut svgs: Vec<PathBuf> = std::fs::read_dir(&directory)
            .expect("artifacts")
            .map(|entry| entry.expect("entry").path())
            .filter(|path| path.extension().is_some_and(|e| e == "svg"))
            .collect();
        svgs.sort();
        assert!(svgs.len() >= 2, "{args:?}: {svgs:?}");
        for svg in svgs {
            let text = std::fs::read_to_string(&svg).expect("svg");
            let found = overlaps(&text);
            assert!(
                found.is_empty(),
                "{} ({args:?}):\n{}",
                svg.display(),
                found.join("\n")
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked}");
    let _ = std::fs::remove_dir_all(&out);
}

/// A checked example program with its topology and first workload.
fn load(program: &Path) -> (graft_compiler::Checked, Vec<graft_compiler::ir::Fact>) {
    let directory = program.parent().expect("directory");
    let mut facts: Vec<PathBuf> = std::fs::read_dir(directory)
        .expect("directory")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "facts"))
        .collect();
    facts.sort();
    let (mut workloads, topology): (Vec<PathBuf>, Vec<PathBuf>) =
        facts.into_iter().partition(|path| {
            path.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("workload"))
        });
    workloads.truncate(1);
    let roots = vec![program.to_string_lossy().into_owned()];
    let mut read = |path: &str| std::fs::read_to_string(path).map_err(|error| error.to_string());
    let mut loaded = graft_language::loader::load_program(&roots, &mut read);
    let checked = graft_compiler::check(&loaded.sources, &loaded.files);
    assert!(!checked.has_errors(), "{}", program.display());
    let mut files = Vec::new();
    for path in topology.iter().chain(&workloads) {
        let text = std::fs::read_to_string(path).expect("facts");
        let id = loaded
            .sources
            .add(path.to_string_lossy().into_owned(), text.clone());
        files.push(graft_language::parse(id, &text).file);
    }
    let (facts, diagnostics) = graft_compiler::check_facts(&checked.program, &files);
    assert!(
        diagnostics.iter().all(|d| !d.is_error()),
        "{}",
        program.display()
    );
    (checked, facts)
}

#[test]
fn lamport_diagrams_of_every_example_version_have_no_overlapping_labels() {
    let examples = common::root().join("examples");
    let mut programs: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(&examples).expect("examples") {
        let directory = entry.expect("entry").path();
        let Some(name) = directory
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
        else {
            continue;
        };
        if directory.join(format!("{name}.graft")).is_file() {
            programs.push(directory.join(format!("{name}.graft")));
        }
        if let Ok(versions) = std::fs::read_dir(directory.join("versions")) {
            for version in versions {
                let version = version.expect("entry").path();
                let graft_file = version.join(format!("{name}.graft"));
                if graft_file.is_file() {
                    programs.push(graft_file);
                }
            }
        }
    }
    programs.sort();
    assert!(programs.len() >= 18, "{programs:?}");
    let mut widest = 0;
    for program in &programs {
        let (checked, facts) = load(program);
        let verifier = Verifier::new(
            &checked,
            facts,
            BTreeSet::new(),
            Bounds {
                eot: 10,
                eff: 4,
                crashes: 2,
                max_delay: 0,
            },
        )
        .expect("verifier");
        let nodes = verifier.nodes().to_vec();
        widest = widest.max(nodes.len());
        // No faults; the first node crashed at 2; every message of the first two nodes lost
        // at ticks 1-3; the last node crashed at 1 with the first's messages lost.
        let mut schedules = vec![FaultSet::default()];
        schedules.push(FaultSet {
            crashes: BTreeMap::from([(nodes[0].clone(), 2)]),
            ..FaultSet::default()
        });
        let mut drops = FaultSet::default();
        for from in nodes.iter().take(2) {
            for to in &nodes {
                for tick in 1..=3 {
                    if from != to {
                        drops.drops.insert(graft_verify::Drop {
                            from: from.clone(),
                            to: to.clone(),
                            tick,
                        });
                    }
                }
            }
        }
        let mut both = drops.clone();
        both.crashes = BTreeMap::from([(nodes[nodes.len() - 1].clone(), 1)]);
        schedules.push(drops);
        schedules.push(both);
        for faults in &schedules {
            let execution = verifier.execute(faults).expect("run");
            let title = format!("{} under {faults}", program.display());
            let svg = graft_verify::diagram::spacetime_svg(
                verifier.program(),
                &execution.run,
                faults,
                &title,
            );
            let found = overlaps(&svg);
            assert!(found.is_empty(), "{title}:\n{}", found.join("\n"));
            assert!(
                texts(&svg)
                    .iter()
                    .any(|text| text.content.starts_with("delivered")),
                "{title}: no legend"
            );
            let roots: Vec<_> = execution
                .violations
                .iter()
                .flat_map(|v| v.facts.iter().copied())
                .collect();
            let graph = graft_verify::diagram::LineageGraph::new(
                verifier.program(),
                &execution.run,
                &roots,
                faults,
                300,
            );
            let lineage = graph.svg(&title);
            let found = overlaps(&lineage);
            assert!(found.is_empty(), "{title} (lineage):\n{}", found.join("\n"));
        }
    }
    assert!(widest >= 14, "the widest example has {widest} nodes");
}
