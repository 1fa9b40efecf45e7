//! End-to-end tests of `graft report`: the page for `examples/paxos` is self-contained (no
//! network, script or font), byte-identical from one run to the next, shows every part the
//! commands compute, and loads in a real headless Chromium without console errors (content
//! security policy violations included) into a screenshot that is not blank. Chromium comes
//! from Debian's `chromium` package, which `.ci/run` installs and names in `GRAFT_CHROMIUM`;
//! where it is neither named nor on the `PATH`, the browser part prints why it is skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{exit_code, graft, transcript};

fn scratch(name: &str) -> PathBuf {
    let directory =
        std::env::temp_dir().join(format!("graft-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).expect("scratch directory");
    directory
}

/// `graft report examples/paxos --no-cache -o FILE`, returning the page.
fn paxos_report(file: &Path) -> String {
    let output = graft(&[
        "report",
        "examples/paxos",
        "--no-cache",
        "-o",
        &file.to_string_lossy(),
    ]);
    assert_eq!(exit_code(&output), 0, "{}", transcript(&output));
    std::fs::read_to_string(file).expect("the page")
}

/// The Chromium to drive: `GRAFT_CHROMIUM` (set by `.ci/run` once installed; then it must
/// work), else `chromium` on the `PATH`; `Err` with the reason to skip otherwise.
fn chromium() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("GRAFT_CHROMIUM") {
        return Ok(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for directory in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let candidate = directory.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err("no Chromium: GRAFT_CHROMIUM is not set and `chromium` is not on the PATH (.ci/run installs Debian's `chromium` package)".to_owned())
}

/// Opens `page` in headless Chromium; returns its log (standard error) and the screenshot.
fn screenshot(chromium: &Path, page: &Path, directory: &Path) -> (String, Vec<u8>) {
    let png = directory.join("screenshot.png");
    let log = directory.join("chromium.log");
    let profile = directory.join("profile");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {}: {error}", chromium.display()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within 120 s:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "chromium failed ({status}):\n{log}");
    let image =
        std::fs::read(&png).unwrap_or_else(|error| panic!("no screenshot ({error}):\n{log}"));
    (log, image)
}

/// (width, height, distinct colours, share of pixels unlike the most common colour).
fn pixel_variety(png_bytes: &[u8]) -> (u32, u32, usize, f64) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buffer).expect("a frame");
    let channels = info.color_type.samples();
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "8-bit screenshot");
    let mut counts: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
    let pixels = &buffer[..info.buffer_size()];
    for pixel in pixels.chunks(channels) {
        *counts.entry(pixel).or_default() += 1;
    }
    let total = pixels.len() / channels;
    let background = counts.values().copied().max().unwrap_or(0);
    (
        info.width,
        info.height,
        counts.len(),
        (total - background) as f64 / total.max(1) as f64,
    )
}

#[test]
fn the_paxos_report_is_self_contained_deterministic_and_complete() {
    let directory = scratch("paxos");
    let page = paxos_report(&directory.join("first.html"));
    let again = paxos_report(&directory.join("second.html"));
    assert!(page == again, "two reports of the same inputs differ");
    // Self-contained: nothing is fetched, nothing runs.
    for forbidden in [
        "<script",
        "<link",
        " src=",
        "@import",
        "@font-face",
        "https:",
    ] {
        assert!(!page.contains(forbidden), "the page contains `{forbidden}`");
    }
    let outside: Vec<&str> = page
        .match_indices("http:")
        .map(|(index, _)| &page[index..(index + 30).min(page.len())])
        .filter(|text| !text.starts_with("http://www.w3.org/2000/svg"))
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
    assert!(page.contains("Content-Security-Policy"));
    // Every part, as the commands compute it.
    for expected in [
        // The tree of versions, with the passes and the justification.
        "derived by <code>partition(acceptor, by=ballot, n=2, partial=true)</code> (partial)",
        "derived by <code>quorum(Q1=3, Q2=1)</code>",
        "<b>coordinator-round</b>",
        // graft check's summary, graft test's lines, the comparisons with the source.
        "roles: proposer, acceptor",
        "ok   examples/paxos/versions/partition-acceptor/paxos.graft on workload: same outputs as examples/paxos/paxos.graft (eventual)",
        "against the source (eventual): they <span class=\"ok\">agree</span>",
        // The cost table and its bottleneck; graft rewrite --cost against the source.
        "Bottleneck: <b>p1</b> (proposer)",
        "cost on the workload: before 9 tick(s)",
        // The latest verdicts, with the buggy variant's counterexample drawn.
        "verdict: certified (ldfi strategy,",
        "counterexample 1 (execution 4): drop a1-&gt;p2@4, drop p2-&gt;a1@3",
        "LOST: dropped by the fault schedule",
        "lineage of the violated facts",
        // The refusals met.
        "error[R0032]: partition(acceptor, by=ballot, n=2)",
        "refused: `quorum(Q2=1)` does not apply",
    ] {
        assert!(page.contains(expected), "the page lacks {expected:?}");
    }
    assert!(page.matches("<svg").count() >= 2);
    // Ids stay unique although every diagram defines its markers.
    let ids: Vec<&str> = page
        .match_indices(" id=\"")
        .map(|(index, _)| {
            let rest = &page[index + 5..];
            &rest[..rest.find('"').unwrap_or(0)]
        })
        .collect();
    let unique: std::collections::BTreeSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");

    match chromium() {
        Err(reason) => println!("skipped the browser check: {reason}"),
        Ok(chromium) => {
            let page_path = directory.join("first.html");
            let (log, image) = screenshot(&chromium, &page_path, &directory);
            let console: Vec<&str> = log
                .lines()
                .filter(|line| line.contains(":CONSOLE"))
                .collect();
            assert!(
                console.is_empty(),
                "console messages:\n{}",
                console.join("\n")
            );
            let (width, height, colours, ink) = pixel_variety(&image);
            assert_eq!((width, height), (1200, 2000));
            assert!(colours >= 16, "{colours} colours: the page looks blank");
            assert!(
                ink > 0.02,
                "only {:.4} of the pixels differ from the background",
                ink
            );
        }
    }
    let _ = std::fs::remove_dir_all(&directory);
}

#[test]
fn the_pixel_check_tells_a_blank_page_from_a_drawn_one() {
    let Ok(chromium) = chromium() else {
        println!("skipped: no Chromium (see the other test)");
        return;
    };
    let directory = scratch("blank");
    let blank = directory.join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").expect("write");
    let (_, image) = screenshot(&chromium, &blank, &directory);
    let (_, _, colours, ink) = pixel_variety(&image);
    assert!(
        colours < 16 && ink < 0.02,
        "{colours} colours, {ink} ink on a blank page"
    );
    // A console error is seen in the log.
    let noisy = directory.join("noisy.html");
    std::fs::write(
        &noisy,
        "<!DOCTYPE html><html><body><p>text</p><script>console.error('boom')</script></body></html>",
    )
    .expect("write");
    let (log, _) = screenshot(&chromium, &noisy, &directory);
    assert!(
        log.lines()
            .any(|line| line.contains(":CONSOLE") && line.contains("boom")),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&directory);
}

#[test]
fn report_refuses_what_is_not_one_protocol_directory() {
    let output = graft(&["report", "examples"]);
    assert_eq!(exit_code(&output), 2, "{}", transcript(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("name one protocol directory"),
        "{}",
        transcript(&output)
    );
    let output = graft(&["report", "examples/no-such-protocol"]);
    assert_eq!(exit_code(&output), 2, "{}", transcript(&output));
}
