//! What a pull is doing, told the way `docker pull` tells it: the events a
//! pull reports per layer ([`PullProgress`]), and the two ways of showing
//! them: on a terminal one line per layer updated in place (bytes, rate,
//! extracting, complete), elsewhere (journald, a pipe) a few plain lines,
//! one per finished layer. Choosing between them is the caller's.

use crate::digest::Digest;
use crate::store::ImageRecord;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where one layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerState {
    /// Stored already: nothing to download.
    Exists,
    /// To be downloaded (`total` compressed bytes, 0 when unknown).
    Waiting {
        /// The blob's size.
        total: u64,
    },
    /// `done` of `total` compressed bytes received (and unpacked as they come).
    Downloading {
        /// Bytes received.
        done: u64,
        /// The blob's size.
        total: u64,
    },
    /// Downloaded; unpacking the rest, checking the digest and diffID, syncing.
    Extracting,
    /// Stored.
    Complete,
}

/// Told of each layer's progress by a pull (from its threads).
pub trait PullProgress: Sync {
    /// `layer` (its blob digest) is now in `state`.
    fn layer(&self, layer: &Digest, state: LayerState);
}

/// Progress nobody is shown.
pub struct NoProgress;

impl PullProgress for NoProgress {
    fn layer(&self, _: &Digest, _: LayerState) {}
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressStyle {
    /// One line per layer, redrawn in place.
    Tty,
    /// A line when the pull starts, one per finished layer, one at the end.
    Plain,
    /// Nothing.
    None,
}

/// Shows a pull's progress on a writer (standard error).
pub struct ProgressPrinter {
    style: ProgressStyle,
    state: Mutex<PrinterState>,
}

struct PrinterState {
    out: Box<dyn Write + Send>,
    started: Instant,
    /// Layers in the order first heard of.
    layers: Vec<LayerLine>,
    /// Lines drawn by the last tty redraw.
    drawn: usize,
    last_draw: Option<Instant>,
}

struct LayerLine {
    digest: Digest,
    state: LayerState,
    started: Option<Instant>,
}

/// Shortest time between two tty redraws for byte counts.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

impl ProgressPrinter {
    /// A printer of `style` writing to `out`.
    pub fn new(style: ProgressStyle, out: Box<dyn Write + Send>) -> ProgressPrinter {
        ProgressPrinter {
            style,
            state: Mutex::new(PrinterState {
                out,
                started: Instant::now(),
                layers: Vec::new(),
                drawn: 0,
                last_draw: None,
            }),
        }
    }

    /// Says the pull of `image` starts.
    pub fn start(&self, image: &str) {
        let mut state = self.lock();
        state.started = Instant::now();
        if self.style != ProgressStyle::None {
            let _ = writeln!(state.out, "Pulling {image}");
        }
    }

    /// Says the pull of `image` ended with `record` (downloaded, or a stored copy named).
    pub fn finish(&self, image: &str, record: &ImageRecord, downloaded: bool) {
        let mut state = self.lock();
        if self.style == ProgressStyle::None {
            return;
        }
        if self.style == ProgressStyle::Tty && !state.layers.is_empty() {
            state.draw();
        }
        let id = record.id;
        let line = if downloaded {
            let seconds = state.started.elapsed().as_secs_f64();
            format!(
                "Pulled {image}: {id} ({} layers, {}, {seconds:.1} s)",
                record.layers.len(),
                human_size(record.size)
            )
        } else {
            format!("Image is up to date for {image}: {id}")
        };
        let _ = writeln!(state.out, "{line}");
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PrinterState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl PullProgress for ProgressPrinter {
    fn layer(&self, layer: &Digest, new: LayerState) {
        if self.style == ProgressStyle::None {
            return;
        }
        let mut state = self.lock();
        let index = match state.layers.iter().position(|l| l.digest == *layer) {
            Some(i) => i,
            None => {
                state.layers.push(LayerLine {
                    digest: *layer,
                    state: new,
                    started: None,
                });
                state.layers.len() - 1
            }
        };
        let line = &mut state.layers[index];
        let was_downloading = matches!(line.state, LayerState::Downloading { .. });
        if matches!(new, LayerState::Downloading { .. }) && line.started.is_none() {
            line.started = Some(Instant::now());
        }
        line.state = new;
        match self.style {
            ProgressStyle::Plain => {
                if matches!(new, LayerState::Complete | LayerState::Exists) {
                    let text = state.layers[index].text();
                    let _ = writeln!(state.out, "{text}");
                }
            }
            ProgressStyle::Tty => {
                // A new state is drawn at once; byte counts at most every REDRAW_EVERY.
                let bytes_only = was_downloading && matches!(new, LayerState::Downloading { .. });
                let recent = state
                    .last_draw
                    .is_some_and(|at| at.elapsed() < REDRAW_EVERY);
                if !(bytes_only && recent) {
                    state.draw();
                }
            }
            ProgressStyle::None => {}
        }
    }
}

impl PrinterState {
    /// Redraws every layer line in place (cursor up over the last drawing).
    fn draw(&mut self) {
        let mut text = String::new();
        if self.drawn > 0 {
            text.push_str(&format!("\x1b[{}A", self.drawn));
        }
        for line in &self.layers {
            text.push_str("\x1b[2K");
            text.push_str(&line.text());
            text.push('\n');
        }
        self.drawn = self.layers.len();
        self.last_draw = Some(Instant::now());
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }
}

impl LayerLine {
    fn text(&self) -> String {
        let short = &self.digest.hex()[..12];
        match self.state {
            LayerState::Exists => format!("{short}: Already exists"),
            LayerState::Waiting { .. } => format!("{short}: Waiting"),
            LayerState::Downloading { done, total } => {
                let seconds = self
                    .started
                    .map(|s| s.elapsed().as_secs_f64())
                    .unwrap_or(0.0);
                let rate = if seconds > 0.0 {
                    format!("  {}/s", human_size((done as f64 / seconds) as u64))
                } else {
                    String::new()
                };
                format!(
                    "{short}: Downloading  {}/{}{rate}",
                    human_size(done),
                    human_size(total)
                )
            }
            LayerState::Extracting => format!("{short}: Extracting"),
            LayerState::Complete => format!("{short}: Pull complete"),
        }
    }
}

/// Bytes in SI units as docker prints them (`12.3MB`, `512B`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes}B");
    }
    // Three significant digits, trailing zeros dropped.
    let decimals = if value < 10.0 {
        2
    } else if value < 100.0 {
        1
    } else {
        0
    };
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn run(style: ProgressStyle) -> String {
        let out = Shared::default();
        let printer = ProgressPrinter::new(style, Box::new(out.clone()));
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        printer.start("docker.io/library/busybox:latest");
        printer.layer(&a, LayerState::Exists);
        printer.layer(&b, LayerState::Waiting { total: 2_000_000 });
        for done in (0..=2_000_000).step_by(1000) {
            printer.layer(
                &b,
                LayerState::Downloading {
                    done,
                    total: 2_000_000,
                },
            );
        }
        printer.layer(&b, LayerState::Extracting);
        printer.layer(&b, LayerState::Complete);
        let layer = crate::store::ImageLayer {
            diff_id: a,
            chain_id: a,
        };
        let record = ImageRecord {
            id: a,
            manifest: b,
            names: Vec::new(),
            repo_digests: Vec::new(),
            layers: vec![layer.clone(), layer],
            size: 2_500_000,
            created: None,
        };
        printer.finish("docker.io/library/busybox:latest", &record, true);
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn plain_progress_is_a_few_lines() {
        let text = run(ProgressStyle::Plain);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(lines[0], "Pulling docker.io/library/busybox:latest");
        assert_eq!(lines[1], "ca978112ca1b: Already exists");
        assert_eq!(lines[2], "3e23e8160039: Pull complete");
        assert!(
            lines[3].starts_with(
                "Pulled docker.io/library/busybox:latest: sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb (2 layers, 2.5MB, "
            ),
            "{}",
            lines[3]
        );
        assert!(run(ProgressStyle::None).is_empty());
    }

    #[test]
    fn tty_progress_redraws_in_place_not_per_chunk() {
        let text = run(ProgressStyle::Tty);
        assert!(text.contains("3e23e8160039: Downloading  "), "{text}");
        assert!(
            text.contains(
                "\x1b[2A\x1b[2Kca978112ca1b: Already exists\n\x1b[2K3e23e8160039: Pull complete\n"
            ),
            "{text}"
        );
        assert!(
            text.lines().last().unwrap().starts_with("Pulled "),
            "{text}"
        );
        // 2001 chunk events in well under 100 ms: a handful of redraws.
        assert!(text.matches("Downloading").count() < 20, "{text}");
    }

    #[test]
    fn sizes_read_as_docker_prints_them() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(12_345_678), "12.3MB");
        assert_eq!(human_size(4_500), "4.5kB");
        assert_eq!(human_size(1_000_000), "1MB");
    }
}
