//! Starting a process in a sandbox: a builder like
//! [`std::process::Command`] with namespaces to join and to create, mounts,
//! a cgroup, credentials, capabilities and stdio, returning the pid and a
//! pidfd.
//!
//! Everything is allocated before fork. The child (the private `child` module) enters the
//! cgroup first (or is born in it with clone3 `CLONE_INTO_CGROUP` on
//! cgroup v2), joins and creates namespaces, mounts, drops privileges and
//! execs; a failure on the way comes back as a typed [`SpawnError::Child`]
//! naming the step, the errno and the path, through a close-on-exec pipe.
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

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;

use crate::caps::CapSet;
use crate::cgroup::Cgroup;
use crate::error::{SkippedStep, SpawnError, SpawnStep, os};
use crate::mount::{Mount, PreparedMount};
use crate::namespace::{Namespace, NamespaceSet};
use crate::pidfd::{ExitStatus, PidFd};
use crate::rootfs::Rootfs;
use crate::sandbox::Sandbox;
use crate::sys::{self, CLONE_INTO_CGROUP, CLONE_PIDFD, CloneArgs};
use child::{Prepared, REPORT_LEN, Report, StdioPlan};

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

/// The PATH of [`ProgramLookup::Execvp`] when the environment has none
/// (glibc's `_CS_PATH`).
const EXECVP_DEFAULT_PATH: &str = "/bin:/usr/bin";

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

/// A builder for a process in a sandbox. Nothing happens until
/// [`Command::spawn`].
#[derive(Debug)]
pub struct Command {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    uid: Option<u32>,
    gid: Option<u32>,
    groups: Option<Vec<u32>>,
    caps: Option<CapSet>,
    no_new_privs: bool,
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
            uid: None,
            gid: None,
            groups: None,
            caps: None,
            no_new_privs: false,
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

    /// Run as this uid.
    pub fn uid(&mut self, uid: u32) -> &mut Command {
        self.uid = Some(uid);
        self
    }

    /// Run as this gid.
    pub fn gid(&mut self, gid: u32) -> &mut Command {
        self.gid = Some(gid);
        self
    }

    /// Supplementary groups (when uid or gid change and this is not set,
    /// the list is emptied).
    pub fn groups(&mut self, groups: &[u32]) -> &mut Command {
        self.groups = Some(groups.to_vec());
        self
    }

    /// Drop every capability outside `caps` from the bounding set and set
    /// effective, permitted, inheritable and ambient to `caps`.
    pub fn capabilities(&mut self, caps: CapSet) -> &mut Command {
        self.caps = Some(caps);
        self
    }

    /// Set no_new_privs (setuid bits and file capabilities stop working).
    pub fn no_new_privs(&mut self, on: bool) -> &mut Command {
        self.no_new_privs = on;
        self
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

    /// Start the process. The stdio settings are consumed (a second spawn
    /// inherits stdio).
    pub fn spawn(&mut self) -> Result<Child, SpawnError> {
        self.launch(false, true)?.finish()
    }

    /// Start the process as [`Command::spawn`] does, without a pidfd: for a
    /// caller that reaps every child with `waitpid(-1)` (a PID 1), which
    /// must also run where pidfds are missing (kernels before 5.3, seccomp
    /// filters that refuse clone3). Without a cgroup v2 to be born into it
    /// forks with the plain clone system call. Refuses [`Stdio::Piped`]
    /// (the caller's ends would be lost) and joining a pid namespace (the
    /// intermediate process is waited for through a pidfd).
    pub fn spawn_without_pidfd(&mut self) -> Result<ChildPid, SpawnError> {
        if self.stdio.iter().any(|s| matches!(s, Stdio::Piped)) {
            return Err(Self::invalid(
                "piped stdio needs spawn(), not spawn_without_pidfd()",
            ));
        }
        if self.joins_pid_namespace() {
            return Err(Self::invalid(
                "joining a pid namespace needs spawn(), not spawn_without_pidfd()",
            ));
        }
        let mut launch = self.launch(false, false)?;
        let started = launch.finish_reports()?;
        Ok(ChildPid {
            pid: started.pid,
            skipped: started.skipped,
        })
    }

    /// Fork the process now and stop it as soon as it is in its cgroup,
    /// before it joins or creates namespaces: [`Parked::start`] lets it go
    /// on to exec later. Moving a process into a cgroup v1 hierarchy waits
    /// for an RCU grace period (milliseconds, up to tens of them); a
    /// process parked ahead of time has paid that when it is needed. While
    /// parked it holds only the fds it needs (stdio, namespaces, cgroup).
    /// Dropping the [`Parked`] kills and reaps it.
    pub fn park(&mut self) -> Result<Parked, SpawnError> {
        Ok(Parked {
            launch: Some(self.launch(true, true)?),
        })
    }

    fn joins_pid_namespace(&self) -> bool {
        self.join
            .as_ref()
            .is_some_and(|(_, k)| k.contains(Namespace::Pid))
    }

    /// Fork (parked or not, asking for a pidfd or not); the rest is
    /// [`Launch::finish`].
    fn launch(&mut self, park: bool, pidfd: bool) -> Result<Launch, SpawnError> {
        let mut parent_ends: [Option<File>; 3] = [None, None, None];
        // Fds that must stay open until the child has forked.
        let mut keep: Vec<OwnedFd> = Vec::new();
        let mut plans = [StdioPlan::Inherit; 3];
        for (i, s) in self.stdio.iter_mut().enumerate() {
            match std::mem::take(s) {
                Stdio::Inherit => {}
                Stdio::Null => {
                    let f = File::options()
                        .read(true)
                        .write(true)
                        .open("/dev/null")
                        .map_err(|source| SpawnError::Prepare {
                            what: "open /dev/null".into(),
                            source,
                        })?;
                    plans[i] = StdioPlan::Fd(f.as_raw_fd());
                    keep.push(f.into());
                }
                Stdio::Piped => {
                    let (r, w) = sys::pipe_cloexec().map_err(|e| SpawnError::Prepare {
                        what: "stdio pipe".into(),
                        source: os(e),
                    })?;
                    let (ours, theirs) = if i == 0 { (w, r) } else { (r, w) };
                    plans[i] = StdioPlan::Fd(theirs.as_raw_fd());
                    keep.push(theirs);
                    parent_ends[i] = Some(File::from(ours));
                }
                Stdio::Fd(fd) => {
                    plans[i] = StdioPlan::Fd(fd.as_raw_fd());
                    keep.push(fd);
                }
            }
        }
        let mut prepared = self.prepare(plans)?;
        let pipe = |what: &str| {
            sys::pipe_cloexec().map_err(|e| SpawnError::Prepare {
                what: what.into(),
                source: os(e),
            })
        };
        let (read_end, write_end) = pipe("report pipe")?;
        let go = if park {
            let (go_read, go_write) = pipe("go pipe")?;
            let kept = prepared.fds_in_use();
            if kept.len() + 2 > child::MAX_PARK_FDS {
                return Err(Self::invalid(format!(
                    "{} fds to keep open: too many to park",
                    kept.len()
                )));
            }
            prepared.park = Some(child::Park {
                go_read: go_read.as_raw_fd(),
                keep: kept,
            });
            Some((go_read, go_write))
        } else {
            None
        };
        let (direct_pid, pidfd, intermediate) = if self.joins_pid_namespace() {
            self.fork_via_intermediate(&prepared, &write_end)?
        } else {
            self.fork_direct(&prepared, &write_end, pidfd)?
        };
        drop(write_end);
        drop(keep);
        Ok(Launch {
            prepared,
            report: read_end,
            direct_pid,
            pidfd,
            intermediate,
            // The child has its own copy of the read end.
            go: go.map(|(_, go_write)| go_write),
            parent_ends,
            program: self.program.clone(),
            cwd: self.cwd.clone(),
        })
    }

    fn invalid(what: impl Into<String>) -> SpawnError {
        SpawnError::Invalid { what: what.into() }
    }

    fn prepare(&mut self, stdio: [StdioPlan; 3]) -> Result<Prepared, SpawnError> {
        let cstr = |s: &OsStr, what: &str| {
            CString::new(s.as_bytes())
                .map_err(|_| Self::invalid(format!("{what} {s:?} contains a NUL byte")))
        };
        let argv: Vec<CString> = self
            .args
            .iter()
            .map(|a| cstr(a, "argument"))
            .collect::<Result<_, _>>()?;
        let envp: Vec<CString> = self
            .env
            .iter()
            .map(|(k, v)| {
                if k.is_empty() || k.as_bytes().contains(&b'=') {
                    return Err(Self::invalid(format!("environment name {k:?}")));
                }
                let mut kv = k.clone();
                kv.push("=");
                kv.push(v);
                cstr(&kv, "environment entry")
            })
            .collect::<Result<_, _>>()?;
        let exec_candidates = self.exec_candidates()?;
        let ptrs = |v: &[CString]| {
            v.iter()
                .map(|c| c.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect::<Vec<_>>()
        };
        // execvp's fallback for a file without `#!`: `/bin/sh FILE ARGS...`.
        let script_argv_ptrs = match self.lookup {
            ProgramLookup::Runtime => Vec::new(),
            ProgramLookup::Execvp => exec_candidates
                .iter()
                .map(|file| {
                    [c"/bin/sh".as_ptr(), file.as_ptr()]
                        .into_iter()
                        .chain(argv.iter().skip(1).map(|a| a.as_ptr()))
                        .chain(std::iter::once(std::ptr::null()))
                        .collect()
                })
                .collect(),
        };
        let new_pid = self.create.contains(Namespace::Pid);
        let (join_pidfd, join_kinds) = match self.join.take() {
            Some((pidfd, kinds)) => {
                let pidfd = pidfd.map_err(SpawnError::PidFd)?;
                (Some(pidfd), kinds)
            }
            None => (None, NamespaceSet::EMPTY),
        };
        if !join_kinds
            .intersection(self.create)
            .without(Namespace::Mount)
            .is_empty()
        {
            return Err(Self::invalid(format!(
                "namespaces both joined and created: {}",
                join_kinds.intersection(self.create)
            )));
        }
        if self.reaper && !join_kinds.contains(Namespace::Pid) {
            return Err(Self::invalid("a reaper needs a joined pid namespace"));
        }
        if join_kinds.contains(Namespace::User) {
            return Err(Self::invalid("joining a user namespace is not supported"));
        }
        if self.hostname.is_some() && !self.create.contains(Namespace::Uts) {
            return Err(Self::invalid("hostname needs a new UTS namespace"));
        }
        if self.loopback && !self.create.contains(Namespace::Net) {
            return Err(Self::invalid("loopback_up needs a new network namespace"));
        }
        if !self.own_mount_namespace && (!self.mounts.is_empty() || self.rootfs.is_some()) {
            return Err(Self::invalid(
                "mounts and a rootfs need a mount namespace of its own",
            ));
        }
        match (self.terminal, self.session) {
            (Terminal::Inherit, _)
            | (Terminal::Foreground, Session::NewProcessGroup)
            | (Terminal::Controlling, Session::NewSession) => {}
            (Terminal::Foreground, _) => {
                return Err(Self::invalid(
                    "the terminal's foreground needs a new process group",
                ));
            }
            (Terminal::Controlling, _) => {
                return Err(Self::invalid("a controlling terminal needs a new session"));
            }
        }
        // Namespace files as a fallback for kernels without setns(pidfd);
        // opened before checking the pidfd is alive so they are the
        // right process's.
        let mut join_files = Vec::new();
        if let Some(pidfd) = &join_pidfd {
            for kind in join_kinds.iter() {
                let fd = kind.open(pidfd.pid()).map_err(|e| SpawnError::Prepare {
                    what: format!("namespace {kind} of pid {}", pidfd.pid()),
                    source: std::io::Error::other(e),
                })?;
                join_files.push((fd, kind.clone_flag()));
            }
            if !pidfd.is_alive() {
                return Err(SpawnError::Prepare {
                    what: format!("namespaces of pid {}", pidfd.pid()),
                    source: os(libc::ESRCH),
                });
            }
        }
        let mounts = self
            .mounts
            .iter()
            .map(PreparedMount::new)
            .collect::<Result<Vec<_>, _>>()
            .map_err(Self::invalid)?;
        let (cgroup_procs, cgroup_unified_index, cgroup_v2_fd) = match &self.cgroup {
            None => (Vec::new(), None, None),
            Some(cg) => {
                let files = cg.procs_files();
                let unified = cg.unified_dir().map(|d| d.join("cgroup.procs"));
                let index = unified.and_then(|u| files.iter().position(|f| *f == u));
                let fd = match cg.unified_dir() {
                    Some(dir) => Some(
                        File::options()
                            .read(true)
                            .custom_flags(libc::O_DIRECTORY)
                            .open(dir)
                            .map(OwnedFd::from)
                            .map_err(|source| SpawnError::Prepare {
                                what: format!("open cgroup {}", dir.display()),
                                source,
                            })?,
                    ),
                    None => None,
                };
                let files = files
                    .iter()
                    .map(|f| cstr(f.as_os_str(), "cgroup path"))
                    .collect::<Result<Vec<_>, _>>()?;
                (files, index, fd)
            }
        };
        let cwd = match &self.cwd {
            Some(c) => Some(cstr(c.as_os_str(), "working directory")?),
            None => None,
        };
        let hostname = self.hostname.as_ref().map(|h| h.as_bytes().to_vec());
        let groups = self.groups.clone();
        // Only capabilities need it: a spawn without reads no file.
        let last_cap = match self.caps {
            Some(_) => std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(40),
            None => 0,
        };
        let mut created = self.create.without(Namespace::Pid);
        if !self.own_mount_namespace {
            created = created.without(Namespace::Mount);
        }
        let p = Prepared {
            argv_ptrs: ptrs(&argv),
            envp_ptrs: ptrs(&envp),
            exec_candidates,
            script_argv_ptrs,
            argv,
            envp,
            cwd,
            join_pidfd: join_pidfd.as_ref().map(|p| p.as_raw_fd()),
            join_flags: join_kinds.clone_flags(),
            join_files,
            unshare_flags: created.clone_flags(),
            own_mount_namespace: self.own_mount_namespace,
            new_pid,
            hostname,
            loopback: self.loopback,
            mounts,
            rootfs: self.rootfs.clone(),
            cgroup_procs,
            cgroup_unified_index,
            cgroup_v2_fd,
            stdio,
            pdeathsig: self.pdeathsig.map_or(0, |s| s as i32),
            parent_pid: sys::getpid(),
            session: self.session,
            terminal: self.terminal,
            close_inherited_fds: !self.inherit_fds,
            uid: self.uid,
            gid: self.gid,
            groups,
            caps: self.caps.map(|c| c.0),
            last_cap,
            no_new_privs: self.no_new_privs,
            reaper: self.reaper,
            park: None,
        };
        // The pidfd must stay open until fork; keep it with the command.
        if let Some(pidfd) = join_pidfd {
            self.join = Some((Ok(pidfd), join_kinds));
        }
        Ok(p)
    }

    /// The paths execve tries: the program itself when it has a slash,
    /// else each PATH entry (the command's PATH, or the default of the
    /// [`ProgramLookup`]).
    fn exec_candidates(&self) -> Result<Vec<CString>, SpawnError> {
        let bytes = self.program.as_os_str().as_bytes();
        let execvp = self.lookup == ProgramLookup::Execvp;
        if bytes.is_empty() {
            // execvp(3) says ENOENT: nothing to try.
            return if execvp {
                Ok(Vec::new())
            } else {
                Err(Self::invalid("empty program"))
            };
        }
        let to_c = |p: &Path| {
            CString::new(p.as_os_str().as_bytes())
                .map_err(|_| Self::invalid(format!("program {} contains a NUL byte", p.display())))
        };
        if bytes.contains(&b'/') {
            return Ok(vec![to_c(&self.program)?]);
        }
        let default_path = if execvp {
            EXECVP_DEFAULT_PATH
        } else {
            DEFAULT_PATH
        };
        let path = self
            .env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map_or_else(|| OsString::from(default_path), |(_, v)| v.clone());
        // An empty entry joins to the bare name: the working directory.
        std::env::split_paths(&path)
            .filter(|d| execvp || !d.as_os_str().is_empty())
            .map(|d| to_c(&d.join(&self.program)))
            .collect()
    }

    /// Fork the process itself: with clone3 when it is to be born in its
    /// cgroup v2 or a pidfd is wanted, else (and on kernels without clone3)
    /// with the plain clone system call.
    fn fork_direct(
        &self,
        p: &Prepared,
        report: &OwnedFd,
        pidfd: bool,
    ) -> Result<Forked3, SpawnError> {
        let report = report.as_raw_fd();
        let cgroup_fd = p.cgroup_v2_fd.as_ref().map(|fd| fd.as_raw_fd());
        let mut into = cgroup_fd.is_some();
        let new_pid = if p.new_pid { libc::CLONE_NEWPID } else { 0 };
        while pidfd || into {
            let mut args = CloneArgs {
                flags: new_pid as u64,
                exit_signal: libc::SIGCHLD as u64,
                ..CloneArgs::default()
            };
            if pidfd {
                args.flags |= CLONE_PIDFD;
            }
            if let (true, Some(fd)) = (into, cgroup_fd) {
                args.flags |= CLONE_INTO_CGROUP;
                args.cgroup = fd as u64;
            }
            // The child runs only `child::run`, which makes raw system
            // calls on the memory prepared above and never returns.
            match sys::clone3_then(&mut args, move || child::run(p, report, into, false)) {
                Ok(sys::Forked { pid, pidfd }) => {
                    let pidfd = pidfd.map(|fd| PidFd::from_owned(fd, pid));
                    return Ok((Some(pid), pidfd, None));
                }
                // Kernels before 5.7 have no CLONE_INTO_CGROUP; the child
                // then writes cgroup.procs itself.
                Err(libc::EINVAL | libc::E2BIG | libc::EOPNOTSUPP) if into => into = false,
                Err(libc::ENOSYS) => break,
                Err(e) => return Err(SpawnError::Fork { source: os(e) }),
            }
        }
        // As above; it enters its cgroup by writing cgroup.procs.
        match sys::fork_then(new_pid, move || child::run(p, report, false, false)) {
            Ok(sys::Forked { pid, .. }) => Ok((Some(pid), None, None)),
            Err(e) => Err(SpawnError::Fork { source: os(e) }),
        }
    }

    fn fork_via_intermediate(&self, p: &Prepared, report: &OwnedFd) -> Result<Forked3, SpawnError> {
        let report = report.as_raw_fd();
        let mut args = CloneArgs {
            flags: CLONE_PIDFD,
            exit_signal: libc::SIGCHLD as u64,
            ..CloneArgs::default()
        };
        // The intermediate runs only `child::run_intermediate` (raw system
        // calls on prepared memory) and never returns.
        let intermediate = move || child::run_intermediate(p, report);
        match sys::clone3_then(&mut args, intermediate) {
            Ok(sys::Forked { pid, pidfd }) => {
                let pidfd = match pidfd {
                    Some(fd) => PidFd::from_owned(fd, pid),
                    // Our child, not yet waited for: the pid is its own.
                    None => PidFd::open(pid)?,
                };
                Ok((None, None, Some(pidfd)))
            }
            Err(libc::ENOSYS) => match sys::fork_then(0, intermediate) {
                Ok(sys::Forked { pid, .. }) => Ok((None, None, Some(PidFd::open(pid)?))),
                Err(e) => Err(SpawnError::Fork { source: os(e) }),
            },
            Err(e) => Err(SpawnError::Fork { source: os(e) }),
        }
    }
}

/// What a fork returned to the parent: the workload's pid and pidfd when
/// it is the direct child, the intermediate's pidfd when there is one.
type Forked3 = (Option<i32>, Option<PidFd>, Option<PidFd>);

/// A forked child whose reports are still to be read.
struct Launch {
    prepared: Prepared,
    report: OwnedFd,
    direct_pid: Option<i32>,
    pidfd: Option<PidFd>,
    intermediate: Option<PidFd>,
    /// Parked: the write end of the go pipe.
    go: Option<OwnedFd>,
    parent_ends: [Option<File>; 3],
    program: PathBuf,
    cwd: Option<PathBuf>,
}

/// What the reports of a child that exec'd said.
struct Started {
    pid: i32,
    skipped: Vec<SkippedStep>,
}

impl Launch {
    /// [`Launch::finish_reports`], then the pidfd (opened now when the fork
    /// gave none).
    fn finish(mut self) -> Result<Child, SpawnError> {
        let started = self.finish_reports()?;
        let pidfd = match self.pidfd.take() {
            Some(p) => p,
            // Our child, not yet waited for: the pid cannot be recycled.
            None => PidFd::open(started.pid)?,
        };
        Ok(Child {
            pid: started.pid,
            pidfd,
            stdin: self.parent_ends[0].take(),
            stdout: self.parent_ends[1].take(),
            stderr: self.parent_ends[2].take(),
            skipped: started.skipped,
        })
    }

    /// Let a parked child go on, then read its reports until exec (or a
    /// failure, then reap the child) and reap the intermediate.
    fn finish_reports(&mut self) -> Result<Started, SpawnError> {
        if let Some(go) = self.go.take() {
            let parked = self.pidfd.as_ref().or(self.intermediate.as_ref());
            if parked.is_some_and(|p| !p.is_alive()) {
                self.kill();
                return Err(SpawnError::Protocol {
                    what: "the parked process exited before it was started".into(),
                });
            }
            // EPIPE would mean it died just now: its reports say the rest.
            let _ = sys::write_all(go.as_raw_fd(), b"g");
        }
        let outcome = read_reports(&self.report);
        // Reap the intermediate (it exits right after reporting).
        if let Some(intermediate) = &self.intermediate {
            let _ = intermediate.wait();
        }
        let reports = match outcome {
            Ok(v) => v,
            Err(what) => {
                self.kill();
                return Err(SpawnError::Protocol { what });
            }
        };
        let pid = self.direct_pid.or(reports.started).ok_or_else(|| {
            // The intermediate failed before starting the final process.
            match reports.failure {
                Some(f) => self.child_error(f),
                None => SpawnError::Protocol {
                    what: "intermediate process exited without reporting".into(),
                },
            }
        });
        let pid = pid?;
        if let Some(f) = reports.failure {
            // The child exited 127 after reporting; reap it.
            match &self.pidfd {
                Some(pidfd) => drop(pidfd.wait()),
                None => drop(sys::waitpid(pid)),
            }
            return Err(self.child_error(f));
        }
        let skipped = reports
            .skipped
            .into_iter()
            .map(|(step, errno)| SkippedStep {
                step,
                source: os(errno),
            })
            .collect();
        Ok(Started { pid, skipped })
    }

    /// SIGKILL the child (through its pidfd: its pid may have been reaped
    /// and reused) and reap it.
    fn kill(&mut self) {
        for pidfd in [self.pidfd.as_ref(), self.intermediate.as_ref()]
            .into_iter()
            .flatten()
        {
            let _ = pidfd.send_signal(Signal::SIGKILL);
            let _ = pidfd.wait();
        }
        if let (Some(pid), None) = (self.direct_pid, &self.pidfd) {
            let _ = sys::kill(pid, libc::SIGKILL);
            let _ = sys::waitpid(pid);
        }
    }

    fn child_error(&self, (step, errno, index): (SpawnStep, i32, u32)) -> SpawnError {
        let p = &self.prepared;
        let index = index as usize;
        let path = match step {
            SpawnStep::Exec => p
                .exec_candidates
                .get(index)
                .map(|c| PathBuf::from(OsStr::from_bytes(c.as_bytes()))),
            SpawnStep::Mount | SpawnStep::MountTarget => {
                p.mounts.get(index).map(PreparedMount::target_path)
            }
            SpawnStep::Cgroup => p
                .cgroup_procs
                .get(index)
                .map(|c| PathBuf::from(OsStr::from_bytes(c.as_bytes()))),
            SpawnStep::Rootfs => p
                .rootfs
                .as_ref()
                .and_then(|r| r.step_path(index))
                .map(Path::to_path_buf),
            SpawnStep::Chdir => self.cwd.clone(),
            _ => None,
        };
        SpawnError::Child {
            step,
            path,
            program: self.program.clone(),
            source: os(errno),
        }
    }
}

/// A process forked ahead of time by [`Command::park`], waiting in its
/// cgroup. Dropping it kills and reaps it.
pub struct Parked {
    launch: Option<Launch>,
}

impl std::fmt::Debug for Parked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parked").field("pid", &self.pid()).finish()
    }
}

impl Parked {
    /// The parked process's pid (the intermediate's when a pid namespace
    /// is joined).
    pub fn pid(&self) -> Option<i32> {
        let launch = self.launch.as_ref()?;
        launch
            .direct_pid
            .or_else(|| launch.intermediate.as_ref().map(PidFd::pid))
    }

    /// Let it go on to exec, as [`Command::spawn`] would have. Fails (and
    /// reaps it) when it has exited meanwhile (killed with its cgroup, say):
    /// spawn a new one then.
    pub fn start(mut self) -> Result<Child, SpawnError> {
        self.launch.take().expect("not started yet").finish()
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        if let Some(mut launch) = self.launch.take() {
            launch.kill();
        }
    }
}

/// What a child said on the report pipe.
#[derive(Default)]
struct Reports {
    /// The final process's pid (intermediate mode).
    started: Option<i32>,
    /// The first failure: step, errno, index.
    failure: Option<(SpawnStep, i32, u32)>,
    /// Best-effort steps that failed: step, errno.
    skipped: Vec<(SpawnStep, i32)>,
}

/// Read reports until every write end is closed (exec or exit).
fn read_reports(read_end: &OwnedFd) -> Result<Reports, String> {
    let mut reports = Reports::default();
    let step_of =
        |code: u32| SpawnStep::from_code(code).ok_or_else(|| format!("unknown step code {code}"));
    loop {
        let mut buf = [0u8; REPORT_LEN];
        let mut got = 0;
        while got < REPORT_LEN {
            let n = sys::read(read_end.as_raw_fd(), &mut buf[got..])
                .map_err(|e| format!("read report pipe: {}", os(e)))?;
            if n == 0 {
                break;
            }
            got += n;
        }
        if got == 0 {
            return Ok(reports);
        }
        if got < REPORT_LEN {
            return Err(format!("short report of {got} bytes"));
        }
        match Report::decode(&buf) {
            Some(Report::Started { pid: p }) => reports.started = Some(p),
            Some(Report::Failed { step, errno, index }) => {
                let step = step_of(step)?;
                reports.failure.get_or_insert((step, errno, index));
            }
            Some(Report::Skipped { step, errno }) => reports.skipped.push((step_of(step)?, errno)),
            None => return Err("malformed report".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn candidates(command: &Command) -> Vec<String> {
        let found = command.exec_candidates().expect("candidates");
        found
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn execvp_lookup_keeps_empty_path_entries_and_has_its_own_default() {
        let mut runtime = Command::new("prog");
        runtime.env("PATH", "/a::/b");
        assert_eq!(candidates(&runtime), ["/a/prog", "/b/prog"]);
        let mut execvp = Command::new("prog");
        execvp
            .env("PATH", "/a::/b")
            .program_lookup(ProgramLookup::Execvp);
        assert_eq!(candidates(&execvp), ["/a/prog", "prog", "/b/prog"]);

        let mut execvp = Command::new("prog");
        execvp.program_lookup(ProgramLookup::Execvp);
        assert_eq!(candidates(&execvp), ["/bin/prog", "/usr/bin/prog"]);
        assert_eq!(candidates(&Command::new("prog")).len(), 6, "DEFAULT_PATH");

        let mut empty = Command::new("");
        assert!(empty.exec_candidates().is_err());
        empty.program_lookup(ProgramLookup::Execvp);
        assert_eq!(candidates(&empty), Vec::<String>::new());
    }

    #[test]
    fn a_terminal_needs_the_matching_session() {
        let mut command = Command::new("/bin/true");
        command
            .own_mount_namespace(false)
            .terminal(Terminal::Foreground);
        let error = command.spawn_without_pidfd().unwrap_err();
        assert!(matches!(error, SpawnError::Invalid { .. }), "{error}");
        command
            .session(Session::NewProcessGroup)
            .terminal(Terminal::Controlling);
        let error = command.spawn_without_pidfd().unwrap_err();
        assert!(matches!(error, SpawnError::Invalid { .. }), "{error}");
    }

    /// A plain process (no namespace, so no root needed): a script without
    /// `#!` runs under /bin/sh with execvp's lookup only.
    #[test]
    fn execvp_lookup_runs_a_script_without_shebang_with_sh() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("script");
        std::fs::write(&script, "exit \"$1\"\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

        let mut command = Command::new(&script);
        command
            .arg("7")
            .own_mount_namespace(false)
            .program_lookup(ProgramLookup::Execvp);
        let child = command.spawn().expect("spawn");
        assert_eq!(child.wait().unwrap(), ExitStatus::Exited(7));

        let mut command = Command::new(&script);
        command.arg("7").own_mount_namespace(false);
        let error = command.spawn().unwrap_err();
        assert!(
            matches!(
                &error,
                SpawnError::Child {
                    step: SpawnStep::Exec,
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(error.errno(), Some(libc::ENOEXEC));
    }
}
