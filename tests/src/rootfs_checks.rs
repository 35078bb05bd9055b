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

/// The `major:minor` of a block device for a container to mknod: the one
/// holding the host's `/` (its third field in /proc/self/mountinfo), else
/// the first the kernel lists in /sys/dev/block, else the loop driver's
/// 7:0. The test VM's root is 9p under an overlay and it has no disk; there
/// 7:0 still tells the barrier apart: without `nodev` an open reaches the
/// block layer (ENXIO with no loop device), with it the open fails first,
/// EACCES.
pub fn block_device() -> (u32, u32) {
    root_disk()
        .or_else(first_listed_block_device)
        .unwrap_or((7, 0))
}

/// The block device holding `/`; major 0 (an overlay, a tmpfs root) is none.
fn root_disk() -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let line = text.lines().find(|l| l.split(' ').nth(4) == Some("/"))?;
    let (major, minor) = line.split(' ').nth(2)?.split_once(':')?;
    let device = (major.parse().ok()?, minor.parse().ok()?);
    (device.0 != 0).then_some(device)
}

/// The first `major:minor` of /sys/dev/block, in name order.
fn first_listed_block_device() -> Option<(u32, u32)> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/dev/block")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    let (major, minor) = names.first()?.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}
