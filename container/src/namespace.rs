//! Linux namespaces: the kinds, sets of kinds, the `/proc/PID/ns/*` files
//! and their inode ids, and joining (setns, through a pidfd with a fallback
//! to the files) or creating (unshare) them on the calling thread.
//!
//! Spawning a process into namespaces is [`crate::spawn`]'s job; this module
//! only names them and offers the two calls for code that runs in a child.

use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::error::{NamespaceError, os};
use crate::pidfd::PidFd;
use crate::sys;

/// A kind of namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespace {
    /// Mount points (`CLONE_NEWNS`).
    Mount,
    /// Process ids (`CLONE_NEWPID`).
    Pid,
    /// Network devices, addresses, routes (`CLONE_NEWNET`).
    Net,
    /// System V IPC and POSIX message queues (`CLONE_NEWIPC`).
    Ipc,
    /// Host and domain name (`CLONE_NEWUTS`).
    Uts,
    /// Cgroup root (`CLONE_NEWCGROUP`).
    Cgroup,
    /// User and group ids (`CLONE_NEWUSER`).
    User,
}

impl Namespace {
    /// Every kind, in the order setns should join them (user first).
    pub const ALL: [Namespace; 7] = [
        Namespace::User,
        Namespace::Ipc,
        Namespace::Uts,
        Namespace::Net,
        Namespace::Pid,
        Namespace::Cgroup,
        Namespace::Mount,
    ];

    /// The `CLONE_NEW*` flag.
    pub fn clone_flag(self) -> i32 {
        match self {
            Namespace::Mount => libc::CLONE_NEWNS,
            Namespace::Pid => libc::CLONE_NEWPID,
            Namespace::Net => libc::CLONE_NEWNET,
            Namespace::Ipc => libc::CLONE_NEWIPC,
            Namespace::Uts => libc::CLONE_NEWUTS,
            Namespace::Cgroup => libc::CLONE_NEWCGROUP,
            Namespace::User => libc::CLONE_NEWUSER,
        }
    }

    /// The file name under `/proc/PID/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            Namespace::Mount => "mnt",
            Namespace::Pid => "pid",
            Namespace::Net => "net",
            Namespace::Ipc => "ipc",
            Namespace::Uts => "uts",
            Namespace::Cgroup => "cgroup",
            Namespace::User => "user",
        }
    }

    /// `/proc/PID/ns/<kind>`.
    pub fn proc_path(self, pid: i32) -> PathBuf {
        PathBuf::from(format!("/proc/{pid}/ns/{}", self.proc_name()))
    }

    /// The inode id of the namespace `pid` is in: two processes are in the
    /// same namespace exactly when these are equal.
    pub fn inode(self, pid: i32) -> Result<u64, NamespaceError> {
        let path = self.proc_path(pid);
        std::fs::metadata(&path)
            .map(|m| m.ino())
            .map_err(|source| NamespaceError::Stat { path, source })
    }

    /// Open `/proc/PID/ns/<kind>` (for setns).
    pub fn open(self, pid: i32) -> Result<OwnedFd, NamespaceError> {
        let path = self.proc_path(pid);
        std::fs::File::open(&path)
            .map(OwnedFd::from)
            .map_err(|source| NamespaceError::Open { path, source })
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.proc_name())
    }
}

/// A set of namespace kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct NamespaceSet(u8);

impl NamespaceSet {
    /// The empty set.
    pub const EMPTY: NamespaceSet = NamespaceSet(0);

    fn bit(kind: Namespace) -> u8 {
        1 << (kind as u8)
    }

    /// A set of the given kinds.
    pub fn of(kinds: &[Namespace]) -> NamespaceSet {
        kinds.iter().fold(NamespaceSet::EMPTY, |s, k| s.with(*k))
    }

    /// This set plus `kind`.
    pub fn with(self, kind: Namespace) -> NamespaceSet {
        NamespaceSet(self.0 | Self::bit(kind))
    }

    /// This set minus `kind`.
    pub fn without(self, kind: Namespace) -> NamespaceSet {
        NamespaceSet(self.0 & !Self::bit(kind))
    }

    /// Whether `kind` is in the set.
    pub fn contains(self, kind: Namespace) -> bool {
        self.0 & Self::bit(kind) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in the set, in join order.
    pub fn iter(self) -> impl Iterator<Item = Namespace> {
        Namespace::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }

    /// The kinds both sets hold.
    pub fn intersection(self, other: NamespaceSet) -> NamespaceSet {
        NamespaceSet(self.0 & other.0)
    }

    /// The OR of the `CLONE_NEW*` flags.
    pub fn clone_flags(self) -> i32 {
        self.iter().fold(0, |f, k| f | k.clone_flag())
    }
}

impl fmt::Display for NamespaceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for kind in self.iter() {
            if !first {
                f.write_str("|")?;
            }
            first = false;
            write!(f, "{kind}")?;
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// One namespace of a process: its kind, `/proc` path and inode id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceInfo {
    /// The kind.
    pub kind: Namespace,
    /// `/proc/PID/ns/<kind>` of the process holding it.
    pub path: PathBuf,
    /// The inode id (equal ids mean the same namespace).
    pub inode: u64,
}

impl NamespaceInfo {
    /// Describe the `kind` namespace of `pid`.
    pub fn of(pid: i32, kind: Namespace) -> Result<NamespaceInfo, NamespaceError> {
        Ok(NamespaceInfo {
            kind,
            path: kind.proc_path(pid),
            inode: kind.inode(pid)?,
        })
    }
}

/// Join the `kinds` namespaces of the process behind `pidfd`, on the
/// calling thread: one atomic setns(pidfd, flags) (Linux >= 5.8), or one
/// setns per `/proc/PID/ns` file on older kernels.
///
/// Joining a pid namespace only affects children created afterwards, and
/// joining a mount or user namespace needs a single-threaded caller: call
/// this in a forked child, not in a multi-threaded supervisor.
pub fn join(pidfd: &PidFd, kinds: NamespaceSet) -> Result<(), NamespaceError> {
    if kinds.is_empty() {
        return Ok(());
    }
    match sys::setns(pidfd.as_raw_fd(), kinds.clone_flags()) {
        Ok(()) => return Ok(()),
        Err(libc::EINVAL) => {}
        Err(e) => {
            return Err(NamespaceError::Setns {
                kinds: kinds.to_string(),
                source: os(e),
            });
        }
    }
    // Older kernel: open every file first, then check the process still
    // exists, so the files cannot belong to a recycled pid.
    let files = kinds
        .iter()
        .map(|kind| Ok((kind, kind.open(pidfd.pid())?)))
        .collect::<Result<Vec<_>, NamespaceError>>()?;
    if !pidfd.is_alive() {
        return Err(NamespaceError::Gone {
            pid: pidfd.pid(),
            kind: files.first().map_or(Namespace::Net, |(k, _)| *k),
        });
    }
    for (kind, fd) in files {
        sys::setns(fd.as_raw_fd(), kind.clone_flag()).map_err(|e| NamespaceError::Setns {
            kinds: kind.to_string(),
            source: os(e),
        })?;
    }
    Ok(())
}

/// Create new `kinds` namespaces for the calling thread (unshare(2)).
pub fn unshare(kinds: NamespaceSet) -> Result<(), NamespaceError> {
    sys::unshare(kinds.clone_flags()).map_err(|e| NamespaceError::Unshare {
        kinds: kinds.to_string(),
        source: os(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations_and_flags() {
        let set = NamespaceSet::of(&[Namespace::Net, Namespace::Ipc, Namespace::Uts]);
        assert!(set.contains(Namespace::Net) && !set.contains(Namespace::Pid));
        assert_eq!(
            set.clone_flags(),
            libc::CLONE_NEWNET | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS
        );
        assert_eq!(set.to_string(), "ipc|uts|net");
        assert_eq!(set.without(Namespace::Net).to_string(), "ipc|uts");
        assert_eq!(NamespaceSet::EMPTY.to_string(), "none");
    }

    #[test]
    fn own_namespace_inodes_match_proc() {
        let pid = std::process::id() as i32;
        let info = NamespaceInfo::of(pid, Namespace::Net).unwrap();
        assert_eq!(info.path, PathBuf::from(format!("/proc/{pid}/ns/net")));
        let self_ino = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
        assert_eq!(info.inode, self_ino);
    }
}
