//! Starting a process in a sandbox: a builder like
//! [`std::process::Command`] with namespaces to join and to create, mounts,
//! a cgroup, credentials, capabilities and stdio, returning the pid and a
//! pidfd.
//!
//! Everything is allocated before fork. The child (the private `child`
//! module) enters the cgroup first (or is born in it with clone3
//! `CLONE_INTO_CGROUP` on cgroup v2), joins and creates namespaces, mounts,
//! drops privileges and execs; a failure on the way comes back as a typed
//! [`SpawnError::Child`](crate::error::SpawnError::Child) naming the step,
//! the errno and the path, through a close-on-exec pipe.
//! The options are checked and allocated in the private `prepare` module,
//! forked and their reports read in the private `launch` module.
//!
//! Pid namespaces: a new one is created by clone3 itself (the workload is
//! its PID 1). Joining one (a pod sharing its process namespace) only
//! affects children, so an intermediate process joins and clones the
//! workload with `CLONE_PARENT`. Either way the returned pid is the
//! workload's pid as seen by the caller, and the workload is the caller's
//! child, so [`PidFd::wait`] works.
//!
//! The same engine starts a plain program that is no container, as the
//! child of `supervisor init`: it stays in the caller's mount namespace
//! ([`Command::own_mount_namespace`]), keeps the caller's fds
//! ([`Command::inherit_fds`]), is found as execvp(3) finds it
//! ([`ProgramLookup::Execvp`]), takes the terminal ([`Terminal`]) and needs
//! no pidfd ([`Command::spawn_without_pidfd`]).

mod child;
mod launch;
mod prepare;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;

use crate::caps::CapSet;
use crate::cgroup::Cgroup;
use crate::error::SkippedStep;
use crate::mount::Mount;
use crate::namespace::{Namespace, NamespaceSet};
use crate::pidfd::{ExitStatus, PidFd};
use crate::rootfs::Rootfs;
use crate::sandbox::Sandbox;

pub use launch::Parked;

/// The PATH used to find a program without a slash when the environment
/// has none (the Docker / Kubernetes default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where one of stdin, stdout, stderr comes from.
#[derive(Debug, Default)]
pub enum Stdio {
    /// The caller's own fd.
    #[default]
    Inherit,
    /// /dev/null.
    Null,
    /// A new pipe; the caller's end is in [`Child`].
    Piped,
    /// This fd (a file, a socket, a pipe end).
    Fd(OwnedFd),
}

impl From<File> for Stdio {
    fn from(f: File) -> Stdio {
        Stdio::Fd(f.into())
    }
}

/// Whether the process gets its own session or process group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Session {
    /// Stay in the caller's session and process group.
    #[default]
    Inherit,
    /// setsid(): a new session without a controlling terminal.
    NewSession,
    /// setpgid(0, 0): a new process group in the caller's session.
    NewProcessGroup,
}

/// What the process does with the terminal on its stdin (fd 0 as the
/// stdio settings leave it), right after the stdio set-up. Best effort, as
/// in tini and dumb-init: a failure (stdin is no terminal, or the terminal
/// belongs to another session) is returned in [`Child::skipped`] and the
/// process goes on to exec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Terminal {
    /// Leave it alone.
    #[default]
    Inherit,
    /// Make the process's new group the terminal's foreground group
    /// (tcsetpgrp), also from a background group (SIGTTOU is held off for
    /// the call). Needs [`Session::NewProcessGroup`].
    Foreground,
    /// Make it the controlling terminal of the process's new session
    /// (TIOCSCTTY; a terminal held by another session is not stolen): the
    /// session's group is then its foreground. Needs [`Session::NewSession`].
    Controlling,
}

/// How the program is found and run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProgramLookup {
    /// As container runtimes do: a name without a slash is searched in the
    /// non-empty entries of the command's PATH ([`DEFAULT_PATH`] when it has
    /// none), and the file must be one the kernel executes.
    #[default]
    Runtime,
    /// As execvp(3) does, and with it tini and dumb-init: an empty PATH
    /// entry is the working directory, no PATH means `/bin:/usr/bin`, an
    /// empty program is not found, and a file the kernel refuses as not
    /// executable (ENOEXEC: a script without `#!`) is run by `/bin/sh`.
    Execvp,
}

/// A started process. It is the caller's child: wait for it through
/// `pidfd` (or put `pidfd` in epoll: it becomes readable on exit).
#[derive(Debug)]
pub struct Child {
    /// Its pid as seen from the caller's pid namespace.
    pub pid: i32,
    /// A pidfd for it.
    pub pidfd: PidFd,
    /// The caller's end of stdin when [`Stdio::Piped`].
    pub stdin: Option<File>,
    /// The caller's end of stdout when [`Stdio::Piped`].
    pub stdout: Option<File>,
    /// The caller's end of stderr when [`Stdio::Piped`].
    pub stderr: Option<File>,
    /// Best-effort steps that failed (see [`Terminal`]).
    pub skipped: Vec<SkippedStep>,
}

/// A process started by [`Command::spawn_without_pidfd`]: the caller's
/// child, known by its pid only, to be reaped with `waitpid`.
#[derive(Debug)]
pub struct ChildPid {
    /// Its pid as seen from the caller's pid namespace.
    pub pid: i32,
    /// Best-effort steps that failed (see [`Terminal`]).
    pub skipped: Vec<SkippedStep>,
}

impl Child {
    /// Block until it exits and reap it.
    pub fn wait(&self) -> Result<ExitStatus, crate::error::PidFdError> {
        self.pidfd.wait()
    }
}

/// Who a process runs as: uid, gid, supplementary groups, capabilities and
/// no_new_privs (`None`: the caller's). What a container's process gets is
/// what everything else started inside that container (an exec probe and
/// its waiter) gets: containerd's CRI runs an exec with the container's
/// own process spec (internal/cri/server/container_execsync.go).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The uid (real, effective, saved).
    pub uid: Option<u32>,
    /// The gid (real, effective, saved).
    pub gid: Option<u32>,
    /// The supplementary groups; emptied when uid or gid change and this
    /// is `None`.
    pub groups: Option<Vec<u32>>,
    /// The capability set (see [`Command::capabilities`]).
    pub caps: Option<CapSet>,
    /// no_new_privs.
    pub no_new_privs: bool,
}

/// A builder for a process in a sandbox. Nothing happens until
/// [`Command::spawn`].
#[derive(Debug)]
pub struct Command {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    credentials: Credentials,
    join: Option<(Result<PidFd, crate::error::PidFdError>, NamespaceSet)>,
    create: NamespaceSet,
    own_mount_namespace: bool,
    hostname: Option<String>,
    loopback: bool,
    mounts: Vec<Mount>,
    rootfs: Option<Rootfs>,
    cgroup: Option<Cgroup>,
    stdio: [Stdio; 3],
    pdeathsig: Option<Signal>,
    session: Session,
    terminal: Terminal,
    inherit_fds: bool,
    lookup: ProgramLookup,
    reaper: bool,
    seccomp: Option<crate::seccomp::Program>,
    apparmor: Option<String>,
}

impl Command {
    /// A command running `program` (a path, or a name searched in the
    /// PATH of its environment) with `argv[0]` = `program`, an empty
    /// environment, its own mount namespace and the caller's credentials.
    pub fn new(program: impl AsRef<Path>) -> Command {
        let program = program.as_ref().to_path_buf();
        Command {
            args: vec![program.clone().into_os_string()],
            program,
            env: Vec::new(),
            cwd: None,
            credentials: Credentials::default(),
            join: None,
            create: NamespaceSet::EMPTY.with(Namespace::Mount),
            own_mount_namespace: true,
            hostname: None,
            loopback: false,
            mounts: Vec::new(),
            rootfs: None,
            cgroup: None,
            stdio: [Stdio::Inherit, Stdio::Inherit, Stdio::Inherit],
            pdeathsig: None,
            session: Session::Inherit,
            terminal: Terminal::Inherit,
            inherit_fds: false,
            lookup: ProgramLookup::Runtime,
            reaper: false,
            seccomp: None,
            apparmor: None,
        }
    }

    /// Append an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Append arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Replace `argv[0]`.
    pub fn arg0(&mut self, arg0: impl AsRef<OsStr>) -> &mut Command {
        self.args[0] = arg0.as_ref().to_owned();
        self
    }

    /// Set an environment variable (the environment starts empty).
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Command {
        let key = key.as_ref().to_owned();
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.as_ref().to_owned()));
        self
    }

    /// Set environment variables, as [`Command::env`] does for each.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (key, value) in vars {
            self.env(key, value);
        }
        self
    }

    /// The working directory (after mounts and the uid change).
    pub fn cwd(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The working directory set with [`Command::cwd`].
    pub fn get_cwd(&self) -> Option<&Path> {
        self.cwd.as_deref()
    }

    /// Run as this uid.
    pub fn uid(&mut self, uid: u32) -> &mut Command {
        self.credentials.uid = Some(uid);
        self
    }

    /// Run as this gid.
    pub fn gid(&mut self, gid: u32) -> &mut Command {
        self.credentials.gid = Some(gid);
        self
    }

    /// Supplementary groups (when uid or gid change and this is not set,
    /// the list is emptied).
    pub fn groups(&mut self, groups: &[u32]) -> &mut Command {
        self.credentials.groups = Some(groups.to_vec());
        self
    }

    /// The capabilities, as containerd's CRI gives them
    /// (`WithoutAmbientCaps`): every capability outside `caps` leaves the
    /// bounding set; a process that runs as uid 0 has `caps` as its
    /// permitted and effective sets, one of any other uid has none (what
    /// exec gives it anyway without ambient capabilities); inheritable and
    /// ambient are always empty.
    pub fn capabilities(&mut self, caps: CapSet) -> &mut Command {
        self.credentials.caps = Some(caps);
        self
    }

    /// Install this seccomp filter in the process, as runc does: with
    /// no_new_privs as late as possible (right before exec); without it
    /// (installing then needs CAP_SYS_ADMIN) before the credentials are
    /// changed, so what follows (setgroups, setresuid, capset, prctl,
    /// chdir, dup2, close_range, ioctl, execve) must be allowed by it.
    /// Under [`Command::reaper`] the waiter gets it too, once it has
    /// forked the program.
    pub fn seccomp(&mut self, program: crate::seccomp::Program) -> &mut Command {
        self.seccomp = Some(program);
        self
    }

    /// Exec the program under this AppArmor profile (`exec <profile>`
    /// written to the process's exec attribute, see
    /// [`crate::apparmor::EXEC_ATTR_FILES`]); the profile must be loaded
    /// (see [`crate::apparmor::Host::check`]).
    pub fn apparmor_profile(&mut self, profile: impl Into<String>) -> &mut Command {
        self.apparmor = Some(profile.into());
        self
    }

    /// Set no_new_privs (setuid bits and file capabilities stop working).
    pub fn no_new_privs(&mut self, on: bool) -> &mut Command {
        self.credentials.no_new_privs = on;
        self
    }

    /// Every credential at once (what [`Command::get_credentials`] of
    /// another command returned: a process started inside a running
    /// container gets no more than the container's own).
    pub fn credentials(&mut self, credentials: Credentials) -> &mut Command {
        self.credentials = credentials;
        self
    }

    /// The credentials set so far.
    pub fn get_credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Join the `kinds` namespaces of the process behind `pidfd` (setns
    /// through the pidfd, falling back to /proc/PID/ns files).
    pub fn join(&mut self, pidfd: &PidFd, kinds: NamespaceSet) -> &mut Command {
        self.join = Some((pidfd.try_clone(), kinds));
        self
    }

    /// Join the `kinds` namespaces of process `pid` (a pidfd is opened at
    /// spawn time).
    pub fn join_pid(&mut self, pid: i32, kinds: NamespaceSet) -> &mut Command {
        self.join = Some((PidFd::open(pid), kinds));
        self
    }

    /// Join a sandbox: its network (unless host network), IPC and UTS
    /// namespaces, plus its pid namespace when `share_pid` and it has one.
    pub fn join_sandbox(&mut self, sandbox: &Sandbox, share_pid: bool) -> &mut Command {
        let mut kinds = sandbox.shared_namespaces();
        if !share_pid {
            kinds = kinds.without(Namespace::Pid);
        }
        self.join(sandbox.pidfd(), kinds)
    }

    /// Create new namespaces of these kinds (a mount namespace is always
    /// created). `Pid` makes the process PID 1 of a new pid namespace.
    pub fn create_namespaces(&mut self, kinds: NamespaceSet) -> &mut Command {
        self.create = kinds.with(Namespace::Mount);
        self
    }

    /// Whether the process gets a mount namespace of its own (the default;
    /// its mounts are made private). Off, it stays in the caller's, for a
    /// program that is no container (the child of `supervisor init`);
    /// [`Command::mount`] and [`Command::rootfs`] are then refused.
    pub fn own_mount_namespace(&mut self, on: bool) -> &mut Command {
        self.own_mount_namespace = on;
        self
    }

    /// Set the hostname (needs a new UTS namespace).
    pub fn hostname(&mut self, name: impl Into<String>) -> &mut Command {
        self.hostname = Some(name.into());
        self
    }

    /// Bring up `lo` (needs a new network namespace).
    pub fn loopback_up(&mut self, on: bool) -> &mut Command {
        self.loopback = on;
        self
    }

    /// Add a mount, made in the process's own mount namespace in order.
    pub fn mount(&mut self, mount: Mount) -> &mut Command {
        self.mounts.push(mount);
        self
    }

    /// Build this root filesystem in the process's mount namespace and
    /// pivot into it (after the [`Command::mount`] mounts); the program,
    /// PATH and working directory are then resolved inside it.
    pub fn rootfs(&mut self, rootfs: Rootfs) -> &mut Command {
        self.rootfs = Some(rootfs);
        self
    }

    /// Run in this cgroup from its first instruction.
    pub fn cgroup(&mut self, cgroup: &Cgroup) -> &mut Command {
        self.cgroup = Some(cgroup.clone());
        self
    }

    /// Where stdin comes from.
    pub fn stdin(&mut self, s: Stdio) -> &mut Command {
        self.stdio[0] = s;
        self
    }

    /// Where stdout goes.
    pub fn stdout(&mut self, s: Stdio) -> &mut Command {
        self.stdio[1] = s;
        self
    }

    /// Where stderr goes.
    pub fn stderr(&mut self, s: Stdio) -> &mut Command {
        self.stdio[2] = s;
        self
    }

    /// Signal the process gets when the spawning thread exits.
    pub fn parent_death_signal(&mut self, signal: Signal) -> &mut Command {
        self.pdeathsig = Some(signal);
        self
    }

    /// Session or process group handling.
    pub fn session(&mut self, session: Session) -> &mut Command {
        self.session = session;
        self
    }

    /// What the process does with the terminal on its stdin (it needs its
    /// own session or process group, see [`Terminal`]).
    pub fn terminal(&mut self, terminal: Terminal) -> &mut Command {
        self.terminal = terminal;
        self
    }

    /// Pass the caller's fds beyond stdio that are not close-on-exec on to
    /// the program, as an init must. Off by default: they are marked
    /// close-on-exec, so a container gets its stdio only.
    pub fn inherit_fds(&mut self, on: bool) -> &mut Command {
        self.inherit_fds = on;
        self
    }

    /// How the program is found and run (see [`ProgramLookup`]).
    pub fn program_lookup(&mut self, lookup: ProgramLookup) -> &mut Command {
        self.lookup = lookup;
        self
    }

    /// With a pid namespace joined: run the program under a waiter in that
    /// namespace, which is the returned process. The waiter is a child
    /// subreaper: every orphan of the program's tree is reaped there
    /// instead of becoming a zombie of the namespace's PID 1. When the
    /// program exits, the waiter kills its process group, reaps what is
    /// left and exits with the program's status (128 + signal when killed).
    /// To stop the tree, kill the waiter's descendants, not the waiter.
    pub fn reaper(&mut self, on: bool) -> &mut Command {
        self.reaper = on;
        self
    }
}
