//! Benchmark: `graft check` on a generated 10,000-rule program.
//!
//! Run with `cargo bench --bench check_large`. It prints the time of the library pipeline
//! (parse, check, summary) and of the whole `graft check` process, as the minimum and median of
//! several runs. The target is under one second in release.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use graft_language::span::SourceMap;

/// A program of `rules` rules over `rules` relations that mixes every rule kind: joins with
/// comparisons, `@next`, `@async`, aggregation and negation, so that it has many strata.
fn generate(rules: usize) -> String {
    let mut text = String::from(
        "role node;\n\
         input base(at: node, k: int, w: int) key(k);\n\
         input peer(at: node, other: node);\n\
         input blocked(at: node, k: int);\n\
         input r0(at: node, k: int, v: int);\n",
    );
    for index in 1..=rules {
        let previous = index - 1;
        let rule = match index % 5 {
            0 => format!("r{index}(N, K, V) :- r{previous}(N, K, V), base(N, K, W), V < W;"),
            1 => format!("r{index}(N, K, V)@next :- r{previous}(N, K, V);"),
            2 => format!("r{index}(M, K, V)@async :- r{previous}(N, K, V), peer(N, M);"),
            3 => format!("r{index}(N, K, count<V>) :- r{previous}(N, K, V);"),
            _ => format!("r{index}(N, K, V + 1) :- r{previous}(N, K, V), notin blocked(N, K);"),
        };
        writeln!(text, "{rule}").expect("writing to a String");
    }
    text
}

fn pipeline(text: &str) -> usize {
    let mut sources = SourceMap::new();
    let file = sources.add("large.graft", text);
    let parsed = graft_language::parse(file, text);
    let checked = graft_compiler::check(&sources, std::slice::from_ref(&parsed.file));
    let summary = graft_compiler::render_summary_text(&graft_compiler::summary(&checked));
    parsed.diagnostics.len() + checked.diagnostics.len() + summary.len()
}

fn report(label: &str, mut times: Vec<Duration>) {
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "{label}: min {:.1} ms, median {:.1} ms over {} runs",
        times[0].as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
        times.len()
    );
}

fn main() {
    let rules = 10_000;
    let text = generate(rules);
    println!(
        "generated program: {rules} rules, {} lines, {} bytes",
        text.lines().count(),
        text.len()
    );

    let mut times = Vec::new();
    for _ in 0..10 {
        let start = Instant::now();
        std::hint::black_box(pipeline(&text));
        times.push(start.elapsed());
    }
    report("parse + check + summary (library)", times);

    let path = std::env::temp_dir().join(format!("graft-bench-{}.graft", std::process::id()));
    std::fs::write(&path, &text).expect("write the generated program");
    let mut times = Vec::new();
    for _ in 0..10 {
        let start = Instant::now();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_graft"))
            .args(["check", "--color=never"])
            .arg(&path)
            .output()
            .expect("run graft check");
        times.push(start.elapsed());
        assert!(
            output.status.success(),
            "the generated program checks cleanly:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let _ = std::fs::remove_file(&path);
    report("`graft check` process", times);
}
