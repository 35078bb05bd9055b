//! `--trace FILE`: one line per step of a container's life, stamped with
//! CLOCK_MONOTONIC in nanoseconds (the clock every namespace of the pod
//! shares), for measuring what the supervisor adds between a container's
//! death and its next start:
//!
//! ```text
//! <ns> <container> <restartCount> <step>
//! ```
//!
//! Steps: `reaped` (its exit status was taken), `deciding` (the restart is
//! due and its start begins), `spawned` (it has exec'd: spawning returns
//! only after exec), `failed` (it could not be started). Each line is one
//! `write` to an `O_APPEND` file, so the file can be followed while the pod
//! runs. Off by default: without the flag nothing is written.

use std::fs::File;
use std::io::Write;
use std::path::Path;

/// A step of a container's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Reaped,
    Deciding,
    Spawned,
    Failed,
}

impl Step {
    fn as_str(self) -> &'static str {
        match self {
            Step::Reaped => "reaped",
            Step::Deciding => "deciding",
            Step::Spawned => "spawned",
            Step::Failed => "failed",
        }
    }
}

/// The trace file, or nothing.
#[derive(Debug, Default)]
pub struct Trace {
    file: Option<File>,
}

impl Trace {
    /// Append to `path` (created if missing).
    pub fn open(path: &Path) -> std::io::Result<Trace> {
        let file = File::options().append(true).create(true).open(path)?;
        Ok(Trace { file: Some(file) })
    }

    /// Record `step` of `container`'s instance `restart_count`, now.
    pub fn record(&mut self, container: &str, restart_count: u32, step: Step) {
        let Some(file) = &mut self.file else {
            return;
        };
        let line = format!(
            "{} {container} {restart_count} {}\n",
            monotonic_ns(),
            step.as_str()
        );
        // A lost trace line is not worth stopping a pod for.
        let _ = file.write_all(line.as_bytes());
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn monotonic_ns() -> u128 {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always there");
    now.tv_sec() as u128 * 1_000_000_000 + now.tv_nsec() as u128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_the_container_instance_and_step() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace");
        let mut trace = Trace::open(&path).unwrap();
        trace.record("web", 3, Step::Reaped);
        trace.record("web", 4, Step::Spawned);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0][1..], ["web", "3", "reaped"]);
        assert_eq!(lines[1][1..], ["web", "4", "spawned"]);
        let (a, b): (u128, u128) = (lines[0][0].parse().unwrap(), lines[1][0].parse().unwrap());
        assert!(a > 0 && b >= a);
    }

    #[test]
    fn without_a_file_nothing_happens() {
        Trace::default().record("web", 0, Step::Deciding);
    }
}
