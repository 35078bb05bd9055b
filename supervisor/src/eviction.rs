//! Local-storage eviction, as kubelet's eviction manager does it for a
//! pod's own limits (`pkg/kubelet/eviction/eviction_manager.go`
//! `localStorageEviction`, messages from `helpers.go`): on a housekeeping
//! timer (kubelet's 10 s), a disk emptyDir whose usage is over its
//! `sizeLimit`, or a container whose logs are over its
//! `ephemeral-storage` limit, evicts the pod (its containers killed with
//! no grace period, phase Failed, reason Evicted, no restart).
//!
//! What is counted: for an emptyDir, the blocks of everything under its
//! directory (as `du`, one filesystem, symlinks not followed). For a
//! container, its log files: its writable layer is a tmpfs of exactly its
//! limit (writes past it fail with ENOSPC, before kubelet would have
//! looked), and is visible only in the container's own mount namespace.
//! Memory emptyDirs are tmpfs mounts of their size and need no check.
//! The timer runs only while the pod has such a limit: a pod without one
//! never wakes for it.

use crate::paths::{Layout, PodId};
use crate::quantity::format_bytes;
use crate::spec::{PodSpec, VolumeSource};
use crate::volumes::PodVolumes;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// kubelet's housekeeping period (`housekeepingPeriod`), which its
/// eviction manager's monitoring interval defaults to as well.
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(10);

/// One limit to check.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    EmptyDir {
        volume: String,
        dir: PathBuf,
        limit: u64,
    },
    ContainerLogs {
        container: String,
        dir: PathBuf,
        limit: u64,
    },
}

/// The pod's local-storage limits and when they are looked at next.
#[derive(Debug, Default)]
pub struct Eviction {
    checks: Vec<Check>,
    next: Option<Instant>,
}

impl Eviction {
    /// The limits of `pod`: its disk emptyDirs with a sizeLimit (their
    /// directories from `volumes`) and its containers with an
    /// ephemeral-storage limit (their log dirs in `layout`). The first
    /// check is one interval after `now`.
    pub fn new(
        pod: &PodSpec,
        id: &PodId,
        volumes: Option<&PodVolumes>,
        layout: &Layout,
        now: Instant,
    ) -> Self {
        let mut checks = Vec::new();
        for volume in &pod.volumes {
            if let VolumeSource::EmptyDir {
                memory: false,
                size_limit: Some(limit),
            } = volume.source
                && let Some(dir) = volumes.and_then(|v| v.path(&volume.name))
            {
                checks.push(Check::EmptyDir {
                    volume: volume.name.clone(),
                    dir: dir.to_path_buf(),
                    limit,
                });
            }
        }
        for c in pod.init_containers.iter().chain(&pod.containers) {
            if let Some(limit) = c.resources.ephemeral_storage_limit_bytes {
                checks.push(Check::ContainerLogs {
                    container: c.name.clone(),
                    dir: layout.container_log_dir(id, &c.name),
                    limit,
                });
            }
        }
        let next = (!checks.is_empty()).then(|| now + HOUSEKEEPING_INTERVAL);
        Eviction { checks, next }
    }

    /// When the next check is due; None when the pod has no such limit.
    pub fn next_check(&self) -> Option<Instant> {
        self.next
    }

    /// No more checks (the pod stops or was evicted).
    pub fn stop(&mut self) {
        self.next = None;
    }

    /// When due at `now`, measure every limit: the eviction message of the
    /// first one exceeded (kubelet's wording), if any, and the next check
    /// is scheduled.
    pub fn check_if_due(&mut self, now: Instant) -> Option<String> {
        if self.next.is_none_or(|at| at > now) {
            return None;
        }
        self.next = Some(now + HOUSEKEEPING_INTERVAL);
        self.checks.iter().find_map(|check| match check {
            Check::EmptyDir { volume, dir, limit } => (usage(dir) > *limit).then(|| {
                format!(
                    "Usage of EmptyDir volume {volume:?} exceeds the limit {:?}.",
                    format_bytes(*limit)
                )
            }),
            Check::ContainerLogs {
                container,
                dir,
                limit,
            } => (usage(dir) > *limit).then(|| {
                format!(
                    "Container {container} exceeded its local ephemeral storage limit {:?}.",
                    format_bytes(*limit)
                )
            }),
        })
    }
}

/// The bytes of disk `path` and everything under it use, as `du -x -s -B1`
/// (kubelet's `fs.DiskUsage`): allocated blocks, on its filesystem only,
/// symlinks not followed, each inode once. Unreadable entries count 0.
pub fn usage(path: &Path) -> u64 {
    let Ok(top) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let device = top.dev();
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    let mut pending = vec![(path.to_path_buf(), top)];
    while let Some((path, metadata)) = pending.pop() {
        if metadata.dev() != device {
            continue;
        }
        if metadata.nlink() > 1 && !metadata.is_dir() && !seen.insert(metadata.ino()) {
            continue;
        }
        total = total.saturating_add(metadata.blocks().saturating_mul(512));
        if !metadata.is_dir() {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            if let Ok(metadata) = entry.metadata() {
                pending.push((entry.path(), metadata));
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml_volumes: &str, resources: &str) -> PodSpec {
        crate::spec::load_str(
            "test.yaml",
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  volumes: {yaml_volumes}\n  containers:\n  - name: c\n    image: busybox\n    command: [/bin/true]\n    resources: {resources}\n"
            ),
        )
        .unwrap()
        .pod
    }

    #[test]
    fn a_pod_without_limits_has_no_timer() {
        let layout = Layout::new("/run/x", "/var/log/pods");
        let spec = pod("[{name: d, emptyDir: {}}]", "{}");
        let eviction = Eviction::new(
            &spec,
            &PodId::new("default", "p").unwrap(),
            None,
            &layout,
            Instant::now(),
        );
        assert_eq!(eviction.next_check(), None);
    }

    #[test]
    fn an_empty_dir_over_its_limit_is_reported_as_kubelet_words_it() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().join("state"), dir.path().join("logs"));
        let spec = pod("[{name: data, emptyDir: {sizeLimit: 64Ki}}]", "{}");
        let mut volumes =
            PodVolumes::prepare(&spec, &dir.path().join("volumes"), &Default::default()).ok();
        let volume_dir = match &volumes {
            Some(v) => v.path("data").unwrap().to_path_buf(),
            // Not root (the pod's /dev/shm needs a mount): the same check
            // on a plain directory.
            None => {
                let d = dir.path().join("plain");
                std::fs::create_dir(&d).unwrap();
                d
            }
        };
        let now = Instant::now();
        let mut eviction = Eviction::new(
            &spec,
            &PodId::new("default", "p").unwrap(),
            volumes.as_ref(),
            &layout,
            now,
        );
        if volumes.is_none() {
            eviction.checks = vec![Check::EmptyDir {
                volume: "data".into(),
                dir: volume_dir.clone(),
                limit: 64 * 1024,
            }];
            eviction.next = Some(now + HOUSEKEEPING_INTERVAL);
        }
        assert_eq!(eviction.next_check(), Some(now + HOUSEKEEPING_INTERVAL));
        assert_eq!(eviction.check_if_due(now), None, "not due yet");
        let later = now + HOUSEKEEPING_INTERVAL;
        assert_eq!(eviction.check_if_due(later), None, "empty");
        std::fs::write(volume_dir.join("big"), vec![1u8; 128 * 1024]).unwrap();
        let even_later = later + HOUSEKEEPING_INTERVAL;
        assert_eq!(
            eviction.check_if_due(even_later).as_deref(),
            Some("Usage of EmptyDir volume \"data\" exceeds the limit \"64Ki\".")
        );
        if let Some(v) = &mut volumes {
            v.remove();
        }
    }

    #[test]
    fn container_limits_are_checked_against_its_logs() {
        let layout = Layout::new("/run/x", "/var/log/pods");
        let spec = pod("[]", "{limits: {ephemeral-storage: 1Mi}}");
        let eviction = Eviction::new(
            &spec,
            &PodId::new("default", "p").unwrap(),
            None,
            &layout,
            Instant::now(),
        );
        assert_eq!(
            eviction.checks,
            vec![Check::ContainerLogs {
                container: "c".into(),
                dir: layout.container_log_dir(&PodId::new("default", "p").unwrap(), "c"),
                limit: 1 << 20,
            }]
        );
    }
}
