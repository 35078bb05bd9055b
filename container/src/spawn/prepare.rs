//! Turning a [`Command`] into what the child needs: the options are
//! checked against each other, and every string, path, fd and lookup the
//! child uses is allocated here, before fork ([`Prepared`], the stdio
//! plans, the PATH candidates of the program). Nothing is forked here and
//! no report is read: that is the `launch` module; what the child does
//! with a [`Prepared`] is the `child` module.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::child::{Prepared, StdioPlan};
use super::{Command, DEFAULT_PATH, ProgramLookup, Session, Stdio, Terminal};
use crate::error::{SpawnError, os};
use crate::mount::PreparedMount;
use crate::namespace::{Namespace, NamespaceSet};
use crate::sys;

/// The PATH of [`ProgramLookup::Execvp`] when the environment has none
/// (glibc's `_CS_PATH`).
const EXECVP_DEFAULT_PATH: &str = "/bin:/usr/bin";

/// The stdio of a [`Command`] as the child takes it over.
pub(super) struct PreparedStdio {
    /// What the child puts on fds 0, 1, 2.
    pub(super) plans: [StdioPlan; 3],
    /// Fds that must stay open until the child has forked.
    pub(super) keep: Vec<OwnedFd>,
    /// The caller's ends of [`Stdio::Piped`].
    pub(super) parent_ends: [Option<File>; 3],
}

impl Command {
    /// Take the stdio settings (a second spawn inherits stdio) and open
    /// what they name.
    pub(super) fn prepare_stdio(&mut self) -> Result<PreparedStdio, SpawnError> {
        let mut parent_ends: [Option<File>; 3] = [None, None, None];
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
                    plans[i] = StdioPlan::Pipe(theirs.as_raw_fd());
                    keep.push(theirs);
                    parent_ends[i] = Some(File::from(ours));
                }
                Stdio::Fd(fd) => {
                    plans[i] = StdioPlan::Fd(fd.as_raw_fd());
                    keep.push(fd);
                }
            }
        }
        Ok(PreparedStdio {
            plans,
            keep,
            parent_ends,
        })
    }

    /// Whether the process joins a pid namespace (then an intermediate
    /// process forks it).
    pub(super) fn joins_pid_namespace(&self) -> bool {
        self.join
            .as_ref()
            .is_some_and(|(_, k)| k.contains(Namespace::Pid))
    }

    /// The error for options that do not go together.
    pub(super) fn invalid(what: impl Into<String>) -> SpawnError {
        SpawnError::Invalid { what: what.into() }
    }

    pub(super) fn prepare(&mut self, stdio: [StdioPlan; 3]) -> Result<Prepared, SpawnError> {
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
        if let Some(rootfs) = &self.rootfs
            && rootfs.mounts_cgroup2()
            && !self.create.contains(Namespace::Cgroup)
        {
            return Err(Self::invalid(
                "cgroup2 at /sys/fs/cgroup needs a cgroup namespace of its own",
            ));
        }
        // Volume sources: opened here, in the caller's mount namespace.
        let rootfs_sources = match &self.rootfs {
            Some(rootfs) => rootfs.open_sources().map_err(|e| match e {
                crate::rootfs::RootfsError::OpenSource {
                    path,
                    target,
                    source,
                } => SpawnError::Prepare {
                    what: format!(
                        "open mount source {} for {}",
                        path.display(),
                        target.display()
                    ),
                    source,
                },
                other => SpawnError::Prepare {
                    what: "open the mount sources".into(),
                    source: std::io::Error::other(other),
                },
            })?,
            None => Vec::new(),
        };
        let rootfs_source_fds = rootfs_sources.iter().map(AsRawFd::as_raw_fd).collect();
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
                            .open(&dir)
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
        let credentials = &self.credentials;
        let groups = credentials.groups.clone();
        // Only capabilities need it: a spawn without reads no file.
        let last_cap = match credentials.caps {
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
        let apparmor_exec = match &self.apparmor {
            Some(profile) => {
                crate::apparmor::check_name(profile).map_err(|e| Self::invalid(e.to_string()))?;
                Some(cstr(
                    OsStr::new(&format!("exec {profile}")),
                    "AppArmor profile",
                )?)
            }
            None => None,
        };
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
            rootfs_sources,
            rootfs_source_fds,
            cgroup_procs,
            cgroup_unified_index,
            cgroup_v2_fd,
            stdio,
            pdeathsig: self.pdeathsig.map_or(0, |s| s as i32),
            parent_pid: sys::getpid(),
            session: self.session,
            terminal: self.terminal,
            close_inherited_fds: !self.inherit_fds,
            uid: credentials.uid,
            gid: credentials.gid,
            // Without a uid of its own the process keeps the caller's.
            exec_as_root: credentials
                .uid
                .map_or_else(|| nix::unistd::geteuid().is_root(), |uid| uid == 0),
            groups,
            caps: credentials.caps.map(|c| c.0),
            last_cap,
            no_new_privs: credentials.no_new_privs,
            reaper: self.reaper,
            seccomp: self.seccomp.clone(),
            apparmor_exec,
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
}

#[cfg(test)]
mod tests {
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
}
