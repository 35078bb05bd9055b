//! One instance of a container: the running process (pid, pidfd, its own
//! cgroup, output pipes, environment, probes), or the next one, parked.
//!
//! It reads and drains the instance's output into the container's log and
//! tells an OOM kill from others; it does not decide when an instance
//! starts or ends (`SupervisedContainer` and the pod loop do).

use super::stdio::{Input, InstanceStdio, TerminalMaster};
use super::stop::{HookContext, StopState};
use crate::confinement::Confinement;
use crate::hook::RunningHook;
use crate::logs::{ContainerLog, Echo, Stream};
use crate::probe::{ExecIdentity, ProbeIo, ProbeTarget, Probes};
use crate::spec;
use container::{Cgroup, OomCounter, Parked, PidFd};
use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::time::{Instant, SystemTime};

/// A container's environment, as its process got it.
pub(super) type Env = Vec<(String, String)>;

/// A container's next instance, forked while the current one runs and
/// parked in its own fresh cgroup (see `SupervisedContainer::park_next`).
pub(super) struct ParkedInstance {
    pub restart_count: u32,
    pub cgroup: Cgroup,
    pub parked: Parked,
    pub env: Env,
    pub identity: ExecIdentity,
}

/// One instance before it runs: its fresh cgroup, environment and command.
pub(super) struct InstancePlan {
    pub cgroup: Cgroup,
    pub env: Env,
    pub command: container::Command,
    /// Its pty's master, when it has a terminal.
    pub terminal: Option<TerminalMaster>,
    /// Its seccomp filter and AppArmor profile (exec probes get them too).
    pub confinement: Confinement,
}

impl InstancePlan {
    /// What the instance's exec probes run as: the instance's own rights.
    pub fn identity(&self) -> ExecIdentity {
        ExecIdentity {
            confinement: self.confinement.clone(),
            ..ExecIdentity::of(&self.command)
        }
    }
}

/// A running instance.
pub(super) struct Instance {
    pub pid: i32,
    pub pidfd: PidFd,
    /// The instance's own cgroup beneath the container's (which holds the
    /// limits). A fresh one per instance: a cgroup that was killed through
    /// `cgroup.kill` kills whatever clone3 later starts into it on some
    /// kernels (the kill sequence check of CLONE_INTO_CGROUP), and a fresh
    /// one also leaves nothing of the previous instance behind.
    pub cgroup: Cgroup,
    /// The container cgroup's OOM-kill counter when it started.
    oom_kills_before: u64,
    /// Its own cgroup's OOM-kill counter file, open.
    oom_counter: Option<OomCounter>,
    stdout: Option<File>,
    stderr: Option<File>,
    /// Its pty master, when it has a terminal (`tty`).
    pub terminal: Option<File>,
    /// Its stdin, when it has one (`stdin`).
    pub input: Option<Input>,
    /// Its environment (exec probes run with it too).
    pub env: Env,
    pub probes: Probes,
    /// What it runs as: exec probes and exec hooks get the same.
    pub identity: ExecIdentity,
    /// Its postStart hook, while it runs (boxed, as is `stop`: an instance
    /// spends its life without either).
    pub post_start: Option<Box<RunningHook>>,
    /// Being stopped: preStop, turn, stop signal, SIGKILL.
    pub stop: Option<Box<StopState>>,
    /// When it started (exec'd).
    pub started: Instant,
    /// Its own mount namespace, held open from its start. The last process
    /// of a mount namespace to exit unmounts all of it (its root, writable
    /// layer, volumes, /proc, /dev...) before its parent hears of the exit,
    /// waiting for RCU grace periods; held, the exit is only the process's
    /// own, and the unmounting happens when the supervisor drops it, after
    /// the successor was let go.
    pub mount_ns: Option<File>,
}

impl Instance {
    pub fn new(
        child: container::Child,
        stdio: InstanceStdio,
        cgroup: Cgroup,
        oom_kills_before: u64,
        env: Env,
        spec: &spec::Container,
        identity: ExecIdentity,
    ) -> Instance {
        Instance {
            pid: child.pid,
            pidfd: child.pidfd,
            oom_counter: cgroup.oom_counter().ok(),
            cgroup,
            oom_kills_before,
            stdout: stdio.stdout,
            stderr: stdio.stderr,
            terminal: stdio.terminal,
            input: stdio.input,
            env,
            probes: Probes::new(spec, identity.clone(), Instant::now()),
            identity,
            post_start: None,
            stop: None,
            started: Instant::now(),
            // Ours and not yet reaped: the pid is still this instance's.
            mount_ns: File::open(format!("/proc/{}/ns/mnt", child.pid)).ok(),
        }
    }

    /// What a probe or hook needs to reach it.
    pub fn target<'a>(&'a self, hooks: HookContext<'a>) -> ProbeTarget<'a> {
        ProbeTarget {
            pid: self.pid,
            cgroup: &self.cgroup,
            netns: hooks.netns,
            pod_ip: hooks.pod_ip,
            env: &self.env,
        }
    }

    /// Whether the OOM killer ended it. cgroup v1 counts an OOM kill in the
    /// victim's own memcg (the instance's, fresh for it); v2 counts it up
    /// the tree as well (the container's, which holds the limit).
    /// Also returns the container cgroup's OOM-kill counter now (the
    /// successor's starting point).
    pub fn oom_killed(&self, container: Option<&OomCounter>) -> (bool, Option<u64>) {
        let container = container.and_then(|c| c.read().ok());
        let own = match &self.oom_counter {
            Some(counter) => counter.read(),
            None => self.cgroup.oom_kills(),
        };
        let killed = own.is_ok_and(|n| n > 0)
            || container.is_some_and(|after| after > self.oom_kills_before);
        (killed, container)
    }

    /// Read what it wrote on `stream` into its log and `tap` (attached
    /// clients); EOF closes that stream (on a pty master EIO is the EOF:
    /// every slave is closed).
    pub fn read(
        &mut self,
        stream: Stream,
        container: &str,
        mut log: Option<&mut ContainerLog>,
        echo: &mut Echo,
        io: &mut dyn ProbeIo,
        tap: &mut dyn FnMut(Stream, &[u8]),
    ) {
        let pipe = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        let Some(file) = pipe else { return };
        let now = SystemTime::now();
        let mut buf = [0u8; 64 * 1024];
        // A bounded number of reads per wake-up, so one flooding container
        // cannot starve the others (epoll reports it again).
        for _ in 0..16 {
            match read_output(file, &mut buf) {
                Ok(0) => {
                    io.unwatch(file.as_fd());
                    *pipe = None;
                    if let Some(log) = log {
                        let _ = log.finish(stream, now, echo);
                    }
                    return;
                }
                Ok(n) => {
                    if let Some(log) = log.as_deref_mut()
                        && let Err(error) = log.feed(stream, &buf[..n], now, echo)
                    {
                        eprintln!("supervisor: [{container}] log: {error}");
                    }
                    tap(stream, &buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return, // EAGAIN: all read
            }
        }
    }

    /// Read what is left in the pipes of the ended instance (every process
    /// of it is dead, so this ends at EOF), and close them.
    pub fn drain(
        mut self,
        mut log: Option<&mut ContainerLog>,
        now: SystemTime,
        echo: &mut Echo,
        io: &mut dyn ProbeIo,
        tap: &mut dyn FnMut(Stream, &[u8]),
    ) {
        for (pipe, stream) in [
            (self.stdout.take(), Stream::Stdout),
            (self.stderr.take(), Stream::Stderr),
        ] {
            let Some(mut file) = pipe else { continue };
            io.unwatch(file.as_fd());
            let mut buf = [0u8; 64 * 1024];
            while let Ok(n) = read_output(&mut file, &mut buf) {
                if n == 0 {
                    break;
                }
                if let Some(log) = log.as_deref_mut() {
                    let _ = log.feed(stream, &buf[..n], now, echo);
                }
                tap(stream, &buf[..n]);
            }
            if let Some(log) = log.as_deref_mut() {
                let _ = log.finish(stream, now, echo);
            }
        }
    }
}

/// One read of an output pipe or pty master; a pty master's EIO (no slave
/// open any more) is the end, as a pipe's 0.
fn read_output(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    match file.read(buf) {
        Err(e) if e.raw_os_error() == Some(libc::EIO) => Ok(0),
        other => other,
    }
}

/// Output pipes are read as far as they go, from the event loop.
pub(super) fn set_nonblocking(file: &File) -> std::io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = fcntl(file, FcntlArg::F_GETFL)?;
    fcntl(
        file,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )?;
    Ok(())
}
