//! Progress of long work on standard error: one line, redrawn in place at most a few times a
//! second, cleared when the work ends. It is drawn only when standard error is a terminal and
//! the command's output is not for tools (`--format json`), so output captured by a pipe, a
//! file or a test never contains it.
//!
//! A command makes one [`ProgressLine`] with a label and the unit it counts, and calls
//! [`ProgressLine::update`] as often as it likes with the count so far and a detail (the
//! current bound, the queue); the line shows the count, the rate since the start and the
//! detail. Work spread over threads shares one line through [`SharedProgress`].
//!
//! ```text
//! let mut progress = ProgressLine::new("optimize", "plans", progress::wanted(json));
//! for plan in plans {
//!     progress.update(count, &format!("depth {depth}, best {best}"));
//! }
//! progress.finish();
//! ```

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The shortest time between two redraws.
const REDRAW_EVERY: Duration = Duration::from_millis(100);
/// Work that ends sooner than this draws nothing.
const FIRST_DRAW_AFTER: Duration = Duration::from_millis(250);
/// Lines longer than this are cut, so that a redraw never wraps (a wrapped line cannot be
/// overwritten with a carriage return).
const WIDTH: usize = 100;

/// Whether a command should show progress: standard error is a terminal and the output is not
/// JSON.
pub fn wanted(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

/// `n/s` with a precision that suits the size of the rate.
pub fn rate(count: u64, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    if seconds <= 0.0 {
        return "-".to_owned();
    }
    #[allow(
        clippy::cast_precision_loss,
        reason = "a count shown as a rate needs no more than 52 bits"
    )]
    let per_second = count as f64 / seconds;
    if per_second >= 100.0 {
        format!("{per_second:.0}/s")
    } else {
        format!("{per_second:.1}/s")
    }
}

/// One progress line on standard error (or, in tests, any writer).
pub struct ProgressLine {
    enabled: bool,
    label: String,
    unit: String,
    start: Instant,
    last_draw: Option<Instant>,
    /// Characters on the line now (to be blanked by the next draw or the end).
    drawn: usize,
    /// The count last reported.
    count: u64,
    out: Box<dyn Write + Send>,
}

impl ProgressLine {
    /// A line labelled `label` counting `unit` (plural, e.g. "executions"); silent unless
    /// `enabled` (see [`wanted`]).
    pub fn new(label: &str, unit: &str, enabled: bool) -> ProgressLine {
        ProgressLine::with_writer(label, unit, enabled, Box::new(std::io::stderr()))
    }

    /// The same, drawing on `out`.
    pub fn with_writer(
        label: &str,
        unit: &str,
        enabled: bool,
        out: Box<dyn Write + Send>,
    ) -> ProgressLine {
        ProgressLine {
            enabled,
            label: label.to_owned(),
            unit: unit.to_owned(),
            start: Instant::now(),
            last_draw: None,
            drawn: 0,
            count: 0,
            out,
        }
    }

    /// The count last reported (0 before any).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether anything will ever be drawn.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Reports `count` units done so far and a detail; redraws when enough time has passed.
    pub fn update(&mut self, count: u64, detail: &str) {
        self.update_at(Instant::now(), count, detail);
    }

    fn update_at(&mut self, now: Instant, count: u64, detail: &str) {
        self.count = count;
        if !self.enabled {
            return;
        }
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed < FIRST_DRAW_AFTER {
            return;
        }
        if let Some(last) = self.last_draw
            && now.saturating_duration_since(last) < REDRAW_EVERY
        {
            return;
        }
        self.last_draw = Some(now);
        let mut line = format!(
            "{}: {count} {}, {}",
            self.label,
            self.unit,
            rate(count, elapsed)
        );
        if !detail.is_empty() {
            line.push_str(", ");
            line.push_str(detail);
        }
        let line: String = line.chars().take(WIDTH).collect();
        let width = line.chars().count();
        let padding = " ".repeat(self.drawn.saturating_sub(width));
        // A progress line that cannot be written is not worth an error.
        let _ = write!(self.out, "\r{line}{padding}");
        let _ = self.out.flush();
        self.drawn = width;
    }

    /// Clears the line (nothing is left on the terminal). Called on drop too.
    pub fn finish(&mut self) {
        if self.drawn > 0 {
            let _ = write!(self.out, "\r{}\r", " ".repeat(self.drawn));
            let _ = self.out.flush();
            self.drawn = 0;
        }
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A progress line that several threads update: each adds what it did, and the line shows the
/// total with the detail of the last update.
pub struct SharedProgress {
    state: Mutex<(ProgressLine, u64)>,
}

impl SharedProgress {
    pub fn new(line: ProgressLine) -> SharedProgress {
        SharedProgress {
            state: Mutex::new((line, 0)),
        }
    }

    /// Adds `done` units and redraws with `detail`.
    pub fn add(&self, done: u64, detail: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.1 += done;
            let total = state.1;
            state.0.update(total, detail);
        }
    }

    /// Clears the line.
    pub fn finish(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.0.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer whose bytes the test can read afterwards.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf-8")
        }
    }

    #[test]
    fn a_disabled_line_writes_nothing() {
        let captured = Captured::default();
        let mut line =
            ProgressLine::with_writer("verify", "executions", false, Box::new(captured.clone()));
        let later = line.start + Duration::from_secs(5);
        line.update_at(later, 10, "EOT 5");
        line.finish();
        drop(line);
        assert_eq!(captured.text(), "");
    }

    #[test]
    fn redraws_are_rate_limited_and_the_line_is_cleared() {
        let captured = Captured::default();
        let mut line =
            ProgressLine::with_writer("verify", "executions", true, Box::new(captured.clone()));
        let start = line.start;
        // Too early: nothing.
        line.update_at(start + Duration::from_millis(10), 1, "");
        assert_eq!(captured.text(), "");
        line.update_at(
            start + Duration::from_secs(1),
            50,
            "EOT 5, EFF 2, crashes 1",
        );
        // Within the redraw interval: not drawn.
        line.update_at(start + Duration::from_millis(1050), 51, "EOT 5");
        line.update_at(start + Duration::from_secs(2), 100, "EOT 5");
        line.finish();
        let text = captured.text();
        assert_eq!(
            text,
            format!(
                "\rverify: 50 executions, 50.0/s, EOT 5, EFF 2, crashes 1\rverify: 100 executions, 50.0/s, EOT 5{}\r{}\r",
                " ".repeat(17),
                " ".repeat(37)
            )
        );
    }

    #[test]
    fn long_lines_are_cut_and_rates_scale() {
        let captured = Captured::default();
        let mut line =
            ProgressLine::with_writer("test", "protocols", true, Box::new(captured.clone()));
        let start = line.start;
        line.update_at(start + Duration::from_secs(1), 3, &"x".repeat(300));
        let text = captured.text();
        assert_eq!(text.chars().count(), WIDTH + 1, "{text}");
        assert_eq!(rate(1000, Duration::from_secs(2)), "500/s");
        assert_eq!(rate(3, Duration::from_secs(2)), "1.5/s");
        assert_eq!(rate(3, Duration::ZERO), "-");
    }
}
