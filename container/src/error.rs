//! Error types, one enum per concept. Every variant carries what a person
//! needs to act on it: the path, the value written, the namespace kind, the
//! spawn step, and the OS error.

use std::io;
use std::path::PathBuf;

use crate::namespace::Namespace;

/// A failure of a namespace operation.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// Opening `/proc/PID/ns/KIND` failed.
    #[error("open namespace file {path}: {source}")]
    Open {
        /// The namespace file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Reading the inode of a namespace file failed.
    #[error("stat namespace file {path}: {source}")]
    Stat {
        /// The namespace file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// setns(2) failed.
    #[error("setns({kinds}) failed: {source}")]
    Setns {
        /// The namespace kinds asked for, e.g. "net|ipc".
        kinds: String,
        /// The OS error.
        source: io::Error,
    },
    /// unshare(2) failed.
    #[error("unshare({kinds}) failed: {source}")]
    Unshare {
        /// The namespace kinds asked for.
        kinds: String,
        /// The OS error.
        source: io::Error,
    },
    /// The process owning the namespaces is gone.
    #[error("process {pid} owning the {kind} namespace has exited")]
    Gone {
        /// Its pid.
        pid: i32,
        /// The namespace asked for.
        kind: Namespace,
    },
}

/// A failure of a pidfd operation.
#[derive(Debug, thiserror::Error)]
pub enum PidFdError {
    /// pidfd_open(2) failed (ESRCH: no such process).
    #[error("pidfd_open({pid}): {source}")]
    Open {
        /// The pid.
        pid: i32,
        /// The OS error.
        source: io::Error,
    },
    /// pidfd_send_signal(2) failed.
    #[error("send signal {signal} to pid {pid}: {source}")]
    Signal {
        /// The pid.
        pid: i32,
        /// The signal number.
        signal: i32,
        /// The OS error.
        source: io::Error,
    },
    /// waitid(P_PIDFD) failed (ECHILD: not our child, or already reaped).
    #[error("wait for pid {pid}: {source}")]
    Wait {
        /// The pid.
        pid: i32,
        /// The OS error.
        source: io::Error,
    },
    /// Duplicating the pidfd failed.
    #[error("duplicate pidfd of pid {pid}: {source}")]
    Dup {
        /// The pid.
        pid: i32,
        /// The OS error.
        source: io::Error,
    },
}

/// A failure of a cgroup operation.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// Reading /proc/self/mountinfo failed.
    #[error("read {path}: {source}")]
    Mountinfo {
        /// The file read.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// No cgroup filesystem is mounted.
    #[error("no cgroup filesystem is mounted (looked in {path})")]
    NotMounted {
        /// The mountinfo file that was searched.
        path: PathBuf,
    },
    /// A resource limit needs a controller that no hierarchy provides.
    #[error(
        "cgroup controller {controller} is not available (neither in cgroup v2 nor mounted as v1)"
    )]
    ControllerMissing {
        /// The controller name.
        controller: &'static str,
    },
    /// The relative cgroup path is absolute or climbs out with "..".
    #[error("invalid cgroup name {name:?}: must be relative without '..'")]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// Creating a cgroup directory failed.
    #[error("create cgroup {path}: {source}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Writing a cgroup file failed.
    #[error("write {value:?} to {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The value written.
        value: String,
        /// The OS error.
        source: io::Error,
    },
    /// Reading a cgroup file failed.
    #[error("read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A cgroup file holds something we cannot parse.
    #[error("unexpected content in {path}: {content:?}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What it held.
        content: String,
    },
    /// Killing every process of a cgroup did not empty it in time.
    #[error("cgroup {path} still has processes {pids:?} after {waited_ms} ms of killing")]
    KillTimeout {
        /// The cgroup directory.
        path: PathBuf,
        /// The processes left.
        pids: Vec<i32>,
        /// How long we tried.
        waited_ms: u128,
    },
    /// Removing a cgroup directory failed (after retries for EBUSY).
    #[error("remove cgroup {path}: {source}")]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// The step between fork and exec that failed; see [`SpawnError::Child`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpawnStep {
    /// Entering the cgroup (writing `cgroup.procs`).
    Cgroup,
    /// Joining namespaces (setns).
    JoinNamespaces,
    /// Creating namespaces (unshare).
    CreateNamespaces,
    /// Bringing up loopback in a new network namespace.
    Loopback,
    /// Setting the hostname in a new UTS namespace.
    Hostname,
    /// Making the mount namespace private.
    MountPrivate,
    /// Creating a mount target.
    MountTarget,
    /// Mounting.
    Mount,
    /// Building the root filesystem (overlay, /dev, volumes, pivot_root).
    Rootfs,
    /// Setting the session or process group.
    Session,
    /// Setting the parent-death signal, or the parent died already.
    ParentDeathSignal,
    /// Dropping the capability bounding set.
    CapabilityBounding,
    /// Keeping capabilities over setuid.
    KeepCaps,
    /// setgroups.
    Groups,
    /// setresgid.
    Gid,
    /// setresuid.
    Uid,
    /// Setting the effective/permitted/inheritable capabilities.
    Capabilities,
    /// Raising ambient capabilities.
    AmbientCapabilities,
    /// Setting no_new_privs.
    NoNewPrivs,
    /// Changing to the working directory.
    Chdir,
    /// Wiring stdin/stdout/stderr.
    Stdio,
    /// Making the process group the terminal's foreground group (best
    /// effort: see [`SkippedStep`]).
    ForegroundTerminal,
    /// Taking the terminal as controlling terminal (best effort: see
    /// [`SkippedStep`]).
    ControllingTerminal,
    /// Resetting the signal mask and dispositions.
    Signals,
    /// Marking inherited fds close-on-exec.
    CloseFds,
    /// Forking the final process inside a joined pid namespace.
    ForkInNamespace,
    /// execve.
    Exec,
    /// Installing the seccomp filter.
    Seccomp,
    /// Writing the AppArmor exec attribute.
    AppArmor,
}

impl SpawnStep {
    pub(crate) const ALL: [SpawnStep; 29] = [
        SpawnStep::Cgroup,
        SpawnStep::JoinNamespaces,
        SpawnStep::CreateNamespaces,
        SpawnStep::Loopback,
        SpawnStep::Hostname,
        SpawnStep::MountPrivate,
        SpawnStep::MountTarget,
        SpawnStep::Mount,
        SpawnStep::Rootfs,
        SpawnStep::Session,
        SpawnStep::ParentDeathSignal,
        SpawnStep::CapabilityBounding,
        SpawnStep::KeepCaps,
        SpawnStep::Groups,
        SpawnStep::Gid,
        SpawnStep::Uid,
        SpawnStep::Capabilities,
        SpawnStep::AmbientCapabilities,
        SpawnStep::NoNewPrivs,
        SpawnStep::Chdir,
        SpawnStep::Stdio,
        SpawnStep::ForegroundTerminal,
        SpawnStep::ControllingTerminal,
        SpawnStep::Signals,
        SpawnStep::CloseFds,
        SpawnStep::ForkInNamespace,
        SpawnStep::Exec,
        SpawnStep::Seccomp,
        SpawnStep::AppArmor,
    ];

    pub(crate) fn code(self) -> u32 {
        SpawnStep::ALL
            .iter()
            .position(|s| *s == self)
            .map_or(u32::MAX, |i| i as u32)
    }

    pub(crate) fn from_code(code: u32) -> Option<SpawnStep> {
        SpawnStep::ALL.get(code as usize).copied()
    }
}

impl std::fmt::Display for SpawnStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            SpawnStep::Cgroup => "enter cgroup",
            SpawnStep::JoinNamespaces => "join namespaces",
            SpawnStep::CreateNamespaces => "create namespaces",
            SpawnStep::Loopback => "bring up loopback",
            SpawnStep::Hostname => "set hostname",
            SpawnStep::MountPrivate => "make mounts private",
            SpawnStep::MountTarget => "create mount target",
            SpawnStep::Mount => "mount",
            SpawnStep::Rootfs => "set up root filesystem",
            SpawnStep::Session => "set session",
            SpawnStep::ParentDeathSignal => "set parent-death signal",
            SpawnStep::CapabilityBounding => "drop capability bounding set",
            SpawnStep::KeepCaps => "keep capabilities",
            SpawnStep::Groups => "set supplementary groups",
            SpawnStep::Gid => "set gid",
            SpawnStep::Uid => "set uid",
            SpawnStep::Capabilities => "set capabilities",
            SpawnStep::AmbientCapabilities => "raise ambient capabilities",
            SpawnStep::NoNewPrivs => "set no_new_privs",
            SpawnStep::Chdir => "change directory",
            SpawnStep::Stdio => "set up stdio",
            SpawnStep::ForegroundTerminal => "take the terminal's foreground (tcsetpgrp)",
            SpawnStep::ControllingTerminal => "take the controlling terminal (TIOCSCTTY)",
            SpawnStep::Signals => "reset signals",
            SpawnStep::CloseFds => "close inherited fds",
            SpawnStep::ForkInNamespace => "fork into pid namespace",
            SpawnStep::Exec => "exec",
            SpawnStep::Seccomp => "install seccomp filter",
            SpawnStep::AppArmor => "set AppArmor profile",
        };
        f.write_str(s)
    }
}

/// A best-effort step between fork and exec that failed: the process went
/// on to exec without it (see [`crate::spawn::Terminal`]).
#[derive(Debug, thiserror::Error)]
#[error("{step} failed (continuing): {source}")]
pub struct SkippedStep {
    /// The step.
    pub step: SpawnStep,
    /// The OS error.
    pub source: io::Error,
}

/// A failure to start a process.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The builder was given something unusable (a NUL byte in an
    /// argument, conflicting namespace options, ...).
    #[error("invalid spawn configuration: {what}")]
    Invalid {
        /// What is wrong.
        what: String,
    },
    /// Preparing in the parent (pipes, /dev/null, stdio files, namespace
    /// files) failed.
    #[error("prepare {what}: {source}")]
    Prepare {
        /// What was being prepared.
        what: String,
        /// The OS error.
        source: io::Error,
    },
    /// clone3/fork failed.
    #[error("fork: {source}")]
    Fork {
        /// The OS error.
        source: io::Error,
    },
    /// A step in the child between fork and exec failed; the child has
    /// exited and has been reaped.
    #[error("spawn {program}: {step}{}: {source}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Child {
        /// The step.
        step: SpawnStep,
        /// The path the step was about (program for exec, mount target,
        /// working directory, cgroup file), when there is one.
        path: Option<PathBuf>,
        /// The program being spawned.
        program: PathBuf,
        /// The OS error (its `raw_os_error()` is the errno).
        source: io::Error,
    },
    /// Reading the child's report failed, or it made no sense.
    #[error("spawn protocol with the child failed: {what}")]
    Protocol {
        /// What went wrong.
        what: String,
    },
    /// Opening a pidfd for the started process failed.
    #[error(transparent)]
    PidFd(#[from] PidFdError),
}

impl SpawnError {
    /// The errno of a failure in the child, if that is what this is.
    pub fn errno(&self) -> Option<i32> {
        match self {
            SpawnError::Child { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// A failure to start or stop a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The sandbox name is not usable as a file name.
    #[error("invalid sandbox name {name:?}")]
    InvalidName {
        /// The name.
        name: String,
    },
    /// Starting the pause process failed.
    #[error("start pause process {pause}: {source}")]
    Spawn {
        /// The pause binary.
        pause: PathBuf,
        /// The cause.
        source: SpawnError,
    },
    /// Reading the namespaces of the pause process failed.
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    /// Signalling or waiting for the pause process failed.
    #[error(transparent)]
    PidFd(#[from] PidFdError),
    /// Publishing the network namespace at /run/netns failed.
    #[error("bind netns at {path}: {source}")]
    NetnsBind {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Removing the /run/netns file failed.
    #[error("unbind netns at {path}: {source}")]
    NetnsUnbind {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// A capability name that is not known.
#[derive(Debug, thiserror::Error)]
#[error("unknown capability {name:?}")]
pub struct CapabilityError {
    /// The name given.
    pub name: String,
}

pub(crate) fn os(errno: i32) -> io::Error {
    io::Error::from_raw_os_error(errno)
}
