//! What `supervisor run` finds out about the host before a pod starts: the
//! pause and helper binaries (supervisor-image, supervisor-pull), the cgroup to put the pod under (a delegated one, or
//! `podvisor` at the root), and an open files limit raised for the pod's
//! fds.
//!
//! It owns discovery only: the cgroups themselves are `container::cgroup`'s,
//! the pod's sandbox is `run::sandbox`'s.

use container::{CgroupHost, CgroupMode};
use std::path::{Path, PathBuf};

/// The cgroup parent outside systemd's delegation.
pub const DEFAULT_CGROUP_PARENT: &str = "podvisor";

/// What the host did not give.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("--pause {}: no such file", path.display())]
    PauseMissing { path: PathBuf },
    #[error("no pause binary found (looked at {looked_at}); give one with --pause")]
    PauseNotFound { looked_at: String },
    #[error("no {name} binary found (looked at {looked_at}); install it beside supervisor")]
    HelperNotFound {
        name: &'static str,
        looked_at: String,
    },
    #[error("read {}", path.display())]
    ReadOwnCgroup {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("create {}", path.display())]
    CreateLeaf {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("move the supervisor into {}", path.display())]
    MoveIntoLeaf {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Each container costs the supervisor four fds (two log pipes, a pidfd,
/// its log file), so the soft limit goes up to the hard one, as systemd
/// gives a service 1024 soft (the containers inherit the raised limit, as
/// under dockerd).
pub fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        eprintln!("supervisor: warning: cannot raise the open files limit to {hard}: {error}");
    }
}

/// The pause binary: `flag` when given, else `pause` beside this binary,
/// then /usr/local/bin/pause, then PATH.
pub fn find_pause(flag: Option<&Path>) -> Result<PathBuf, HostError> {
    if let Some(path) = flag {
        if path.is_file() {
            return Ok(path.to_path_buf());
        }
        return Err(HostError::PauseMissing {
            path: path.to_path_buf(),
        });
    }
    find_program("pause").map_err(|looked_at| HostError::PauseNotFound { looked_at })
}

/// A helper binary of this package run as a process of its own
/// (`supervisor-image`, `supervisor-pull`): beside this binary, then
/// /usr/local/bin, then PATH.
pub fn find_helper(name: &'static str) -> Result<PathBuf, HostError> {
    find_program(name).map_err(|looked_at| HostError::HelperNotFound { name, looked_at })
}

/// `name` beside this binary, then in /usr/local/bin, then on PATH; else
/// the places looked at.
fn find_program(name: &str) -> Result<PathBuf, String> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)));
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut candidates: Vec<PathBuf> = Vec::new();
    for path in beside
        .into_iter()
        .chain([Path::new("/usr/local/bin").join(name)])
        .chain(on_path)
    {
        if !candidates.contains(&path) {
            candidates.push(path);
        }
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        })
}

/// The cgroup the pod goes under: `flag` when given, else the delegated
/// one (see [`delegated_parent`]), else [`DEFAULT_CGROUP_PARENT`].
pub fn cgroup_parent(flag: Option<&Path>, host: &CgroupHost) -> Result<PathBuf, HostError> {
    match flag {
        Some(parent) => Ok(parent.to_path_buf()),
        None => Ok(delegated_parent(host)?.unwrap_or_else(|| PathBuf::from(DEFAULT_CGROUP_PARENT))),
    }
}

/// On a pure cgroup v2 host, the cgroup this process was given when that
/// cgroup is ours to divide: a systemd service with `Delegate=yes`
/// (`INVOCATION_ID` set), or the root of a container's cgroup namespace
/// (the root of a namespace is not the real root when it has
/// `cgroup.events`). This process first moves into a `supervisor` leaf of
/// it, so that the cgroup holds no process itself (the no-internal-process
/// rule) and the pod's cgroup can be made beside the leaf. None elsewhere:
/// the pod goes under `podvisor` at the root.
fn delegated_parent(host: &CgroupHost) -> Result<Option<PathBuf>, HostError> {
    if host.mode() != CgroupMode::Unified {
        return Ok(None);
    }
    let Some(root) = host.unified_mount() else {
        return Ok(None);
    };
    let path = Path::new("/proc/self/cgroup");
    let own = std::fs::read_to_string(path).map_err(|source| HostError::ReadOwnCgroup {
        path: path.to_path_buf(),
        source,
    })?;
    let Some(own) = own_unified_cgroup(&own) else {
        return Ok(None);
    };
    let namespace_root = own.as_os_str().is_empty() && root.join("cgroup.events").exists();
    let service = !own.as_os_str().is_empty() && std::env::var_os("INVOCATION_ID").is_some();
    if !namespace_root && !service {
        return Ok(None);
    }
    let leaf = root.join(&own).join("supervisor");
    std::fs::create_dir_all(&leaf).map_err(|source| HostError::CreateLeaf {
        path: leaf.clone(),
        source,
    })?;
    std::fs::write(leaf.join("cgroup.procs"), std::process::id().to_string()).map_err(
        |source| HostError::MoveIntoLeaf {
            path: leaf.clone(),
            source,
        },
    )?;
    Ok(Some(own))
}

/// The cgroup v2 path of this process from /proc/self/cgroup ("0::/a/b"),
/// relative to the hierarchy root.
fn own_unified_cgroup(proc_self_cgroup: &str) -> Option<PathBuf> {
    proc_self_cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(|path| PathBuf::from(path.trim_start_matches('/')))
}

/// The node's allocatable resources as kubelet reports them with no
/// reservations (its capacity): the online CPUs (cadvisor's `NumCores`),
/// `MemTotal` of /proc/meminfo, and the size of the filesystem holding
/// `state_dir` (kubelet: that of its root dir) for ephemeral-storage.
/// What an unset limit read through the downward API is.
pub fn node_allocatable(state_dir: &Path) -> crate::spec::NodeAllocatable {
    let cpus = nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
        .ok()
        .flatten()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(1);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_total(&text))
        .unwrap_or(0);
    let storage = state_dir
        .ancestors()
        .find_map(|dir| nix::sys::statvfs::statvfs(dir).ok())
        .map(|fs| fs.blocks().saturating_mul(fs.fragment_size()))
        .unwrap_or(0);
    crate::spec::NodeAllocatable {
        cpu_millis: cpus.saturating_mul(1000),
        memory_bytes: memory,
        ephemeral_storage_bytes: storage,
    }
}

/// `MemTotal:  16318372 kB` in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unified_cgroup_is_read_from_proc_self_cgroup() {
        assert_eq!(
            own_unified_cgroup("0::/system.slice/supervisor@web.service\n"),
            Some(PathBuf::from("system.slice/supervisor@web.service"))
        );
        assert_eq!(
            own_unified_cgroup("4:memory:/x\n0::/\n"),
            Some(PathBuf::new())
        );
        assert_eq!(own_unified_cgroup("4:memory:/x\n"), None);
    }

    #[test]
    fn a_missing_pause_flag_names_the_path() {
        let error = find_pause(Some(Path::new("/nonexistent/pause"))).unwrap_err();
        assert_eq!(
            error.to_string(),
            "--pause /nonexistent/pause: no such file"
        );
    }

    #[test]
    fn mem_total_is_read_in_bytes() {
        let meminfo = "MemTotal:       16318372 kB\nMemFree:         1000 kB\n";
        assert_eq!(mem_total(meminfo), Some(16_318_372 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
    }
}
