//! Helpers of the container-root isolation tests (`isolation_rootfs`):
//! a container's log as plain lines, waiting for a line, and the host's
//! root disk as `major:minor`.

use crate::pod::RunningPod;
use std::time::Duration;

/// The lines a container instance wrote (the CRI prefix removed).
pub fn log_lines(pod: &RunningPod, container: &str, restart: u32) -> Vec<String> {
    pod.log(container, restart)
        .lines()
        .filter_map(|l| l.splitn(4, ' ').nth(3).map(str::to_string))
        .collect()
}

/// Wait until the instance's log has the line `END`; its lines before it.
pub fn wait_for_end(pod: &RunningPod, container: &str, restart: u32) -> Vec<String> {
    crate::wait_until(Duration::from_secs(30), || {
        let lines = log_lines(pod, container, restart);
        let end = lines.iter().position(|l| l == "END")?;
        Some(lines[..end].to_vec())
    })
    .unwrap_or_else(|| {
        panic!(
            "no END in the log of {container} #{restart}:\n{}\nsupervisor output:\n{}",
            pod.log(container, restart),
            pod.output()
        )
    })
}

/// The value of the line `key: value` in `lines`.
pub fn value<'a>(lines: &'a [String], key: &str) -> &'a str {
    let prefix = format!("{key}: ");
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no line {prefix}... in {lines:#?}"))
}

/// The `major:minor` of the block device holding the host's `/`, from
/// /proc/self/mountinfo (its third field).
pub fn root_disk() -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let line = text.lines().find(|l| l.split(' ').nth(4) == Some("/"))?;
    let (major, minor) = line.split(' ').nth(2)?.split_once(':')?;
    let device = (major.parse().ok()?, minor.parse().ok()?);
    // Major 0 is no block device (an overlay, a tmpfs root).
    (device.0 != 0).then_some(device)
}
