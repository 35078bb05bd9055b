//! The parent side of a spawn: forking the child of a prepared
//! [`Command`] (directly, or through an intermediate that joins a pid
//! namespace), letting a [`Parked`] one go on, and reading the report pipe
//! until exec into a [`Child`] or a typed [`SpawnError`]. What the options
//! turn into is the `prepare` module; what the child runs after fork is
//! the `child` module.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;

use super::child::{self, Prepared, REPORT_LEN, Report};
use super::prepare::PreparedStdio;
use super::{Child, ChildPid, Command, Stdio};
use crate::error::{SkippedStep, SpawnError, SpawnStep, os};
use crate::mount::PreparedMount;
use crate::pidfd::PidFd;
use crate::sys::{self, CLONE_INTO_CGROUP, CLONE_PIDFD, CloneArgs};

impl Command {
    /// Start the process. The stdio settings are consumed (a second spawn
    /// inherits stdio).
    pub fn spawn(&mut self) -> Result<Child, SpawnError> {
        self.launch(false, true, None)?.finish()
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
        let mut launch = self.launch(false, false, None)?;
        let started = launch.finish_reports()?;
        Ok(ChildPid {
            pid: started.pid,
            skipped: started.skipped,
        })
    }

    /// Fork the process now and set it up completely (cgroup, namespaces,
    /// mounts and root filesystem, session, credentials, the seccomp
    /// filter when it goes in before them, stdio), then stop it right
    /// before exec: [`Parked::start`] lets it exec later, so a start costs
    /// one write and the exec. Only the seccomp filter installed last
    /// (with no_new_privs) waits for the start, since it may refuse the
    /// wait's read. While parked it holds fds 0 to 2 and the report and go
    /// pipes, nothing else. A process that joins a pid namespace waits
    /// earlier, in its intermediate, in its cgroup before the join (the
    /// final process is forked by the join). Refuses
    /// [`Command::inherit_fds`]: what the program would inherit is closed
    /// while parked. Dropping the [`Parked`] kills and reaps it.
    pub fn park(&mut self) -> Result<Parked, SpawnError> {
        self.park_after(None)
    }

    /// [`Command::park`] as the successor of `predecessor` (a process that
    /// runs): once armed ([`Parked::arm`]) it goes on by itself when
    /// `predecessor` exits, before anyone has reaped it. It keeps a copy of
    /// the pidfd while parked; not when a seccomp filter goes in before its
    /// wait (without no_new_privs) and does not allow `poll`, which the
    /// armed wait needs: that one is parked as by [`Command::park`].
    pub fn park_after(&mut self, predecessor: Option<&PidFd>) -> Result<Parked, SpawnError> {
        if self.inherit_fds {
            return Err(Self::invalid(
                "a parked process closes its fds above 2: it cannot inherit fds",
            ));
        }
        Ok(Parked {
            launch: Some(self.launch(true, true, predecessor)?),
        })
    }

    /// Fork (parked or not, asking for a pidfd or not); the rest is
    /// [`Launch::finish`].
    fn launch(
        &mut self,
        park: bool,
        pidfd: bool,
        predecessor: Option<&PidFd>,
    ) -> Result<Launch, SpawnError> {
        let PreparedStdio {
            plans,
            keep,
            parent_ends,
        } = self.prepare_stdio()?;
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
            // Above 2: the child's stdio set-up (dup2 onto 0 to 2) comes
            // before its wait.
            let go_read = if go_read.as_raw_fd() > 2 {
                go_read
            } else {
                sys::dup_cloexec_above_owned(&go_read, 3).map_err(|e| SpawnError::Prepare {
                    what: "go pipe".into(),
                    source: os(e),
                })?
            };
            // Its own copy, above 2 as well, closed here once forked. Only
            // when its wait may poll: a seccomp filter installed before the
            // wait (without no_new_privs) must allow it.
            let can_poll = self.credentials.no_new_privs
                || self.seccomp.as_ref().is_none_or(|p| p.allows_poll);
            let predecessor = predecessor
                .filter(|_| can_poll)
                .map(|p| {
                    sys::dup_cloexec_above_owned(p, 3).map_err(|e| SpawnError::Prepare {
                        what: "predecessor's pidfd".into(),
                        source: os(e),
                    })
                })
                .transpose()?;
            let kept = if self.joins_pid_namespace() {
                prepared.fds_in_use()
            } else {
                Vec::new()
            };
            if kept.len() + 2 > child::MAX_PARK_FDS {
                return Err(Self::invalid(format!(
                    "{} fds to keep open: too many to park",
                    kept.len()
                )));
            }
            prepared.park = Some(child::Park {
                go_read: go_read.as_raw_fd(),
                keep: kept,
                predecessor: predecessor.as_ref().map(AsRawFd::as_raw_fd),
                affinity: sys::cpu_affinity(0).ok().filter(|mask| mask.count() > 1),
            });
            Some((go_read, go_write, predecessor))
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
            go: go.map(|(_, go_write, _)| go_write),
            armed: false,
            parent_ends,
            program: self.program.clone(),
            cwd: self.cwd.clone(),
        })
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
    /// Parked and armed: it may have gone on (and even ended) by itself.
    armed: bool,
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

    /// Let a parked child go on (once; nothing for a child not parked).
    /// Fails, and reaps it, when it has exited meanwhile.
    fn release(&mut self) -> Result<(), SpawnError> {
        if let Some(go) = self.go.take() {
            // Armed, it may have gone on and run its course already: its
            // reports say which (and its CPUs are its own by now).
            if !self.armed {
                let parked = self.pidfd.as_ref().or(self.intermediate.as_ref());
                if parked.is_some_and(|p| !p.is_alive()) {
                    self.kill();
                    return Err(SpawnError::Protocol {
                        what: "the parked process exited before it was started".into(),
                    });
                }
                self.move_off_this_cpu();
            }
            // EPIPE would mean it died just now: its reports say the rest.
            let _ = sys::write_all(go.as_raw_fd(), &[child::GO]);
        }
        Ok(())
    }

    /// Arm a parked child: it goes on by itself when its predecessor exits.
    fn arm(&mut self) -> Result<(), SpawnError> {
        let armable = self
            .prepared
            .park
            .as_ref()
            .is_some_and(|p| p.predecessor.is_some());
        match &self.go {
            Some(go) if armable => {
                self.armed = true;
                sys::write_all(go.as_raw_fd(), &[child::ARM]).map_err(|e| SpawnError::Prepare {
                    what: "arming the parked process".into(),
                    source: os(e),
                })
            }
            _ => Err(Command::invalid(
                "only a process parked after a predecessor, not yet let go, can be armed",
            )),
        }
    }

    /// Move a parked child off the CPU the caller runs on, before letting
    /// it go: the wake-up on a pipe write is a synchronous one, which
    /// queues the child behind the caller on the caller's CPU (where it
    /// waits until the caller sleeps, and the caller, woken at its exec,
    /// preempts it again) while another CPU may be idle. Measured on 2
    /// CPUs: about 0.5 ms of a 3 ms restart. The child takes its own
    /// affinity back as soon as it runs (`child::wait_for_go`). Only a
    /// direct child that is alive: not reaped, its pid is its own.
    fn move_off_this_cpu(&self) {
        let mask = self.prepared.park.as_ref().and_then(|p| p.affinity);
        if let (Some(pid), Some(mask), Some(cpu)) = (self.direct_pid, mask, sys::current_cpu())
            && mask.has(cpu)
        {
            let _ = sys::set_cpu_affinity(pid, &mask.without(cpu));
        }
    }

    /// Let a parked child go on, then read its reports until exec (or a
    /// failure, then reap the child) and reap the intermediate.
    fn finish_reports(&mut self) -> Result<Started, SpawnError> {
        self.release()?;
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
            SpawnStep::AppArmor => crate::apparmor::EXEC_ATTR_FILES
                .get(index)
                .map(PathBuf::from),
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

    /// Let it go on to exec now, without waiting for the exec: the caller
    /// does what it has to meanwhile, then [`Parked::start`] reads the
    /// outcome. Fails (and reaps it) when it has exited meanwhile; a second
    /// call does nothing.
    pub fn release(&mut self) -> Result<(), SpawnError> {
        match self.launch.as_mut() {
            Some(launch) => launch.release().inspect_err(|_| self.launch = None),
            None => Ok(()),
        }
    }

    /// Whether [`Parked::arm`] can arm it: parked after a predecessor, not
    /// yet let go, and its wait may poll (a seccomp filter installed before
    /// the wait, without no_new_privs, must allow `poll`).
    pub fn can_arm(&self) -> bool {
        self.launch.as_ref().is_some_and(|l| {
            l.go.is_some()
                && l.prepared
                    .park
                    .as_ref()
                    .is_some_and(|p| p.predecessor.is_some())
        })
    }

    /// Let it go on by itself as soon as its predecessor (see
    /// [`Command::park_after`]) exits: the restart of a container whose
    /// next start is due at once whatever the exit (restartPolicy Always,
    /// no back-off pending) then waits for no one but the kernel: not for
    /// the caller to hear of the exit, reap, decide and write. The caller
    /// still reaps the predecessor, then calls [`Parked::release`] (a no-op
    /// if it went) and [`Parked::start`]. Arm only what must start at any
    /// exit: throw the parked process away before anything that would not
    /// restart it (a stop, a new sandbox). Fails when it was parked without
    /// a predecessor.
    pub fn arm(&mut self) -> Result<(), SpawnError> {
        match &mut self.launch {
            Some(launch) => launch.arm(),
            None => Err(SpawnError::Protocol {
                what: "the parked process exited before it was armed".into(),
            }),
        }
    }

    /// Let it go on to exec, as [`Command::spawn`] would have (unless
    /// [`Parked::release`] did already), and wait for the exec. Fails (and
    /// reaps it) when it has exited meanwhile (killed with its cgroup, say):
    /// spawn a new one then.
    pub fn start(mut self) -> Result<Child, SpawnError> {
        match self.launch.take() {
            Some(launch) => launch.finish(),
            None => Err(SpawnError::Protocol {
                what: "the parked process exited before it was started".into(),
            }),
        }
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
    use crate::pidfd::ExitStatus;
    use crate::spawn::ProgramLookup;

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
