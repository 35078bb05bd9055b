//! What a supervisor that died without its teardown left on the host, and
//! its removal: the pod's CNI attachment (DEL from the cached result), the
//! processes still alive in the pod's cgroups and the cgroups themselves,
//! the mounts below the state dir (volumes, the pod's /dev/shm), the netns
//! file, the volume and rootfs dirs.
//!
//! A running supervisor writes a [`RunRecord`] (`supervisor.json`) before
//! it makes anything, saying where it made it (cgroup parent, CNI dirs),
//! and its teardown removes it: a record found while nobody holds the pod's
//! lock ([`crate::pod_lock`]) is a dead supervisor's. [`reclaim`] is what
//! `supervisor status` runs for every pod (and `supervisor run` before it
//! starts one): it takes the lock first, so it only ever touches what no
//! live supervisor owns, then cleans up and rewrites the status as
//! `SupervisorGone` ([`crate::status::supervisor_gone`]) when it still said
//! the pod runs.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::atomic_file::write_atomic;
use crate::network::{self, CniPaths};
use crate::paths::{Layout, PodId};
use crate::pod_lock::{self, LockError, PodLock};
use crate::status::{self, StatusError};
use crate::supervised::CGROUP_TIMEOUT;
use crate::time::format_rfc3339;

/// What a running supervisor made outside its state dir, and its pid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// The supervisor's pid.
    pub pid: i32,
    /// When it took the pod.
    pub started: String,
    /// The cgroup the pod's cgroup is in, relative to the hierarchy roots.
    pub cgroup_parent: PathBuf,
    /// Where the CNI results are cached (for DEL).
    pub cni_cache_dir: PathBuf,
    /// Where the CNI plugins are.
    pub cni_bin_dirs: Vec<PathBuf>,
}

/// The run record could not be written.
#[derive(Debug, thiserror::Error)]
#[error("write the run record {}: {source}", path.display())]
pub struct RecordError {
    path: PathBuf,
    source: std::io::Error,
}

impl RunRecord {
    /// This process's record.
    pub fn new(cgroup_parent: &Path, cni: &CniPaths) -> RunRecord {
        RunRecord {
            pid: std::process::id() as i32,
            started: format_rfc3339(SystemTime::now()),
            cgroup_parent: cgroup_parent.to_path_buf(),
            cni_cache_dir: cni.cache_dir.clone(),
            cni_bin_dirs: cni.bin_dirs.clone(),
        }
    }

    /// Writes it (atomically) at `path`.
    pub fn write(&self, path: &Path) -> Result<(), RecordError> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("plain data");
        bytes.push(b'\n');
        write_atomic(path, &bytes).map_err(|e| RecordError {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })
    }

    /// The record at `path`, if there is a readable one.
    pub fn read(path: &Path) -> Option<RunRecord> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    fn cni(&self) -> CniPaths {
        CniPaths {
            // DEL runs from the cached result: no configuration is read.
            conf_dir: PathBuf::new(),
            bin_dirs: self.cni_bin_dirs.clone(),
            cache_dir: self.cni_cache_dir.clone(),
        }
    }
}

/// Removes what a dead run of pod `id` left, as `record` (that run's
/// cgroup parent and CNI dirs) says. The caller holds the pod's lock.
/// Returns one line per problem; it goes on past each.
pub fn clean_up(id: &PodId, state_dir: &Path, record: &RunRecord) -> Vec<String> {
    let key = id.key();
    let mut problems = network::release_leftovers(&record.cni(), &key);
    match container::CgroupHost::detect() {
        Ok(host) => {
            if let Ok(pod_cgroup) = container::Cgroup::open(&host, record.cgroup_parent.join(&key))
                && pod_cgroup.dirs().iter().any(|d| d.exists())
            {
                // Kills whatever of the pod still runs (containers, pause,
                // their children), deepest cgroup first, then removes them.
                problems.extend(
                    pod_cgroup
                        .remove_tree(CGROUP_TIMEOUT)
                        .into_iter()
                        .map(|e| e.to_string()),
                );
            }
        }
        Err(error) => problems.push(error.to_string()),
    }
    problems.extend(crate::volumes::unmount_below(state_dir));
    let netns = Path::new(container::sandbox::NETNS_RUN_DIR).join(&key);
    if netns.exists() {
        let _ = nix::mount::umount2(&netns, nix::mount::MntFlags::MNT_DETACH);
        if let Err(error) = std::fs::remove_file(&netns) {
            problems.push(format!("remove {}: {error}", netns.display()));
        }
    }
    for dir in ["volumes", "rootfs", crate::exec::record::EXEC_DIR] {
        let path = state_dir.join(dir);
        if let Err(error) = std::fs::remove_dir_all(&path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            problems.push(format!("remove {}: {error}", path.display()));
        }
    }
    problems
}

/// What [`reclaim`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Reclaimed {
    /// A live supervisor holds the pod (or no supervisor with a lock ever
    /// ran it): nothing was touched.
    Owned,
    /// Nobody holds it and nothing was left: it ended cleanly.
    Ended,
    /// Its supervisor (pid, when known) is gone: what it left was cleaned
    /// up (the problems met, if any) and the status says so.
    Gone {
        /// The dead supervisor's pid.
        pid: Option<i32>,
        /// What could not be cleaned up.
        problems: Vec<String>,
    },
}

/// Why a reclaim could not look at the pod.
#[derive(Debug, thiserror::Error)]
pub enum ReclaimError {
    /// The lock.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The status file.
    #[error(transparent)]
    Status(#[from] StatusError),
}

/// Looks at pod `id`: when no live supervisor holds its lock and its
/// supervisor left a run record or a status that still says it runs, the
/// supervisor is gone: clean up what it left ([`clean_up`]) and rewrite
/// its status as `SupervisorGone`, all with the lock held.
pub fn reclaim(layout: &Layout, id: &PodId) -> Result<Reclaimed, ReclaimError> {
    let lock_path = layout.lock_file(id);
    let Some(mut lock) = PodLock::try_take(&lock_path)? else {
        return Ok(Reclaimed::Owned);
    };
    let last_holder = lock.holder();
    let state_dir = layout.pod_state_dir(id);
    let record_path = layout.run_record_file(id);
    let record = RunRecord::read(&record_path);
    let status_path = layout.status_file(id);
    let current = status::read_record(&status_path).ok();
    let settled = current.as_ref().is_none_or(status::is_final);
    if record.is_none() && settled {
        return Ok(Reclaimed::Ended);
    }
    lock.mark_reclaim()?;
    let pid = record
        .as_ref()
        .map(|r| r.pid)
        .or(last_holder.map(|h| h.pid));
    let problems = match &record {
        Some(record) => clean_up(id, &state_dir, record),
        None => Vec::new(),
    };
    if problems.is_empty() {
        let _ = std::fs::remove_file(&record_path);
    }
    if let Some(current) = current.filter(|r| !status::is_final(r)) {
        let gone = status::supervisor_gone(&current, pid, SystemTime::now());
        let mut bytes = serde_json::to_vec_pretty(&gone).expect("plain data");
        bytes.push(b'\n');
        write_atomic(&status_path, &bytes).map_err(StatusError::from)?;
    }
    drop(lock);
    Ok(Reclaimed::Gone { pid, problems })
}

/// Whether pod `id`'s supervisor is alive (it holds the pod's lock).
pub fn supervisor_alive(layout: &Layout, id: &PodId) -> bool {
    PodLock::is_held(&layout.lock_file(id))
}

/// The pid of the supervisor that holds (or last held) pod `id`'s lock.
pub fn supervisor_pid(layout: &Layout, id: &PodId) -> Option<i32> {
    pod_lock::read_holder(&layout.lock_file(id)).map(|h| h.pid)
}
