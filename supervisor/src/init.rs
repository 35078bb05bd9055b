//! `supervisor init [OPTIONS] -- CMD [ARGS...]`: a PID 1 for a container
//! that runs one program, in the manner of tini and dumb-init together.
//!
//! It owns the policy of a single-child init: how the child is isolated
//! (own process group, or own session with `-s`), which received signals
//! are forwarded where (`-g`, `--rewrite`), putting the child in the
//! terminal's foreground, the exit code (the child's, or 128 + signal; 127
//! and 126 when it cannot be run), and the grace period after the child
//! ends (its process group and every other descendant get SIGTERM, then
//! SIGKILL). The PID 1 mechanics (signalfd, reaping, subreaper, clean
//! pre-exec signal state) live in [`crate::pid1`], shared with `run`.
//!
//! Defaults: the child gets its own process group (like tini); `-s` makes it
//! a session leader instead, holding the terminal as its controlling tty
//! (like dumb-init's default). Signals go to the child only unless `-g`.
//! The init never stops: SIGTSTP/SIGTTIN/SIGTTOU sent to it are forwarded
//! (they stop the child). It is silent unless something fails or `-v`.

use std::ffi::{CString, OsString};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::unistd::{ForkResult, Pid};

use crate::pid1::{self, ExitStatus, SignalInfo, Signals};

/// What `supervisor init` runs and how, validated by the command line
/// (`src/bin/supervisor/init.rs`).
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Forward signals to the child's whole process group.
    pub process_group: bool,
    /// Start the child as a session leader.
    pub setsid: bool,
    /// Forward signal FROM as signal TO; TO = 0 drops FROM.
    pub rewrite: Vec<(i32, i32)>,
    /// What the child's leftovers get between SIGTERM and SIGKILL.
    pub grace_period: Duration,
    /// 0 quiet, 1 lifecycle, 2 every signal.
    pub verbose: u8,
    /// The program and its arguments (not empty).
    pub command: Vec<OsString>,
}

/// Messages on stderr, gated by `-v`.
struct Log {
    verbosity: u8,
}

impl Log {
    fn info(&self, message: std::fmt::Arguments<'_>) {
        if self.verbosity >= 1 {
            eprintln!("supervisor init: {message}");
        }
    }

    fn debug(&self, message: std::fmt::Arguments<'_>) {
        if self.verbosity >= 2 {
            eprintln!("supervisor init: {message}");
        }
    }
}

/// How the child is separated from the init.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isolation {
    /// `setpgid(0, 0)`, and the terminal's foreground group when stdin is a
    /// terminal.
    ProcessGroup,
    /// `setsid()`, and `TIOCSCTTY` on stdin when it is a terminal.
    Session,
}

/// What the child reports over its close-on-exec pipe: a step before exec
/// and its errno. EOF without a record means exec succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum Stage {
    SetProcessGroup = 1,
    SetSession = 2,
    ForegroundTty = 3,
    ControllingTty = 4,
    ResetSignals = 5,
    Exec = 6,
    /// In the init itself: the report pipe or the fork.
    Fork = 7,
}

impl Stage {
    fn from_u32(value: u32) -> Option<Stage> {
        [
            Stage::SetProcessGroup,
            Stage::SetSession,
            Stage::ForegroundTty,
            Stage::ControllingTty,
            Stage::ResetSignals,
            Stage::Exec,
            Stage::Fork,
        ]
        .into_iter()
        .find(|s| *s as u32 == value)
    }

    fn describe(self) -> &'static str {
        match self {
            Stage::SetProcessGroup => "setpgid (own process group)",
            Stage::SetSession => "setsid (own session)",
            Stage::ForegroundTty => "tcsetpgrp (terminal foreground group)",
            Stage::ControllingTty => "TIOCSCTTY (controlling terminal)",
            Stage::ResetSignals => "resetting the signal mask",
            Stage::Exec => "exec",
            Stage::Fork => "creating the child (pipe2/fork)",
        }
    }

    /// Whether the child gives up after this step fails. Terminal set-up is
    /// best effort, as in tini and dumb-init.
    fn fatal(self) -> bool {
        !matches!(self, Stage::ForegroundTty | Stage::ControllingTty)
    }
}

/// One record on the report pipe: stage and errno, native endian.
const REPORT_LEN: usize = 8;

/// The child could not be started.
#[derive(Debug)]
struct SpawnFailure {
    stage: Stage,
    errno: Errno,
}

/// `supervisor init`: returns the exit code (the child's, 128 + signal, or
/// 127/126 when the command cannot be run).
pub fn run(args: InitOptions) -> anyhow::Result<i32> {
    // First: nothing may be delivered the ordinary way from here on.
    let signals = Signals::block_all()?;
    let log = Log {
        verbosity: args.verbose,
    };
    let mut rewrite = [0i32; (pid1::SIGNAL_MAX + 1) as usize];
    for (signal, slot) in rewrite.iter_mut().enumerate() {
        *slot = signal as i32;
    }
    for &(from, to) in &args.rewrite {
        rewrite[from as usize] = to;
    }

    let is_pid1 = pid1::is_pid1();
    if is_pid1 {
        log.info(format_args!("running as PID 1"));
    } else {
        pid1::become_subreaper()?;
        log.info(format_args!(
            "not PID 1 (pid {}): registered as child subreaper",
            nix::unistd::getpid()
        ));
    }

    let argv = args
        .command
        .iter()
        .map(|arg| CString::new(arg.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .context("an argument contains a NUL byte")?;
    let isolation = if args.setsid {
        Isolation::Session
    } else {
        Isolation::ProcessGroup
    };
    // SAFETY: fd 0 stays open for the whole process lifetime (we never close
    // it), and the borrow does not outlive this function.
    let stdin = unsafe { BorrowedFd::borrow_raw(libc::STDIN_FILENO) };
    let stdin_tty = nix::unistd::isatty(stdin).unwrap_or(false);

    // Signals that arrive while detaching from the terminal, to handle once
    // the child exists.
    let mut early = Vec::new();
    if isolation == Isolation::Session && stdin_tty {
        release_terminal(&signals, &log, &mut early)?;
    }

    let child = match spawn(&argv, isolation, stdin_tty, &log) {
        Ok(child) => child,
        Err(SpawnFailure {
            stage: Stage::Fork,
            errno,
        }) => anyhow::bail!("{}: {errno}", Stage::Fork.describe()),
        Err(failure) => return Ok(report_spawn_failure(&args.command[0], &failure)),
    };
    log.info(format_args!(
        "started {:?} as pid {child}",
        args.command[0].to_string_lossy()
    ));
    // The child keeps the original directory; the init lets go of its mount.
    if let Err(error) = pid1::chdir_root() {
        log.info(format_args!("{error}"));
    }

    let mut init = Init {
        child,
        forward_to_group: args.process_group,
        rewrite,
        grace: args.grace_period,
        pid1: is_pid1,
        log,
        phase: ChildPhase::Running,
    };
    for info in early {
        if let Some(code) = init.on_signal(info)? {
            return Ok(code);
        }
    }
    init.run(&signals)
}

/// With `-s`, the terminal must belong to no session before the child can
/// take it: give it up (TIOCNOTTY). When the init is the session leader the
/// kernel then sends SIGHUP and SIGCONT to the foreground group (the init's
/// own): those are dropped, anything else is kept for later.
fn release_terminal(
    signals: &Signals,
    log: &Log,
    early: &mut Vec<SignalInfo>,
) -> anyhow::Result<()> {
    // SAFETY: TIOCNOTTY takes no argument.
    let ret = unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCNOTTY) };
    if let Err(errno) = Errno::result(ret) {
        log.info(format_args!(
            "stdin is not our controlling terminal (TIOCNOTTY: {errno})"
        ));
        return Ok(());
    }
    while let Some(info) = signals.read()? {
        let hangup = matches!(info.signal, libc::SIGHUP | libc::SIGCONT);
        if hangup && !info.sent_by_process() {
            log.debug(format_args!("dropped {info} from detaching the terminal"));
        } else {
            early.push(info);
        }
    }
    Ok(())
}

/// Fork and exec the child; returns once it has exec'd (the report pipe
/// closed on exec) or failed (reaped, with the failing step).
fn spawn(
    argv: &[CString],
    isolation: Isolation,
    stdin_tty: bool,
    log: &Log,
) -> Result<Pid, SpawnFailure> {
    // Everything the child needs is built before fork: it must not allocate.
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let (report_read, report_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|errno| SpawnFailure {
            stage: Stage::Fork,
            errno,
        })?;

    // SAFETY: this process has a single thread (signals are blocked before
    // any could start, and nothing here spawns one), so the child may run
    // any code; it still only makes system calls until exec.
    match unsafe { nix::unistd::fork() } {
        Err(errno) => Err(SpawnFailure {
            stage: Stage::Fork,
            errno,
        }),
        Ok(ForkResult::Child) => {
            drop(report_read);
            child_exec(&argv_ptrs, isolation, stdin_tty, &report_write)
        }
        Ok(ForkResult::Parent { child }) => {
            drop(report_write);
            let mut failure = None;
            let mut record = [0u8; REPORT_LEN];
            loop {
                match read_full(&report_read, &mut record) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(errno) => {
                        log.info(format_args!("reading the child's report pipe: {errno}"));
                        break;
                    }
                }
                let stage = u32::from_ne_bytes([record[0], record[1], record[2], record[3]]);
                let errno = i32::from_ne_bytes([record[4], record[5], record[6], record[7]]);
                let Some(stage) = Stage::from_u32(stage) else {
                    continue;
                };
                let errno = Errno::from_raw(errno);
                if stage.fatal() {
                    failure = Some(SpawnFailure { stage, errno });
                } else {
                    log.info(format_args!(
                        "child: {} failed: {errno} (continuing)",
                        stage.describe()
                    ));
                }
            }
            match failure {
                None => Ok(child),
                Some(failure) => {
                    // It _exit()s right after reporting; collect it.
                    let mut status = 0;
                    // SAFETY: waitpid writes one int into memory we own.
                    unsafe { libc::waitpid(child.as_raw(), &mut status, 0) };
                    Err(failure)
                }
            }
        }
    }
}

/// Read exactly one record; `Ok(false)` on EOF.
fn read_full(fd: &OwnedFd, buf: &mut [u8; REPORT_LEN]) -> Result<bool, Errno> {
    let mut filled = 0;
    while filled < buf.len() {
        match nix::unistd::read(fd, &mut buf[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(errno),
        }
    }
    Ok(true)
}

/// The child between fork and exec: isolate, take the terminal, reset the
/// signal state, exec. Only system calls, no allocation; every failure is
/// written to `report` (close-on-exec, so exec success reads as EOF).
fn child_exec(
    argv: &[*const libc::c_char],
    isolation: Isolation,
    stdin_tty: bool,
    report: &OwnedFd,
) -> ! {
    let fail = |stage: Stage, errno: Errno| {
        let mut record = [0u8; REPORT_LEN];
        record[..4].copy_from_slice(&(stage as u32).to_ne_bytes());
        record[4..].copy_from_slice(&(errno as i32).to_ne_bytes());
        // Nothing to do if the parent is gone; 8 bytes are written at once.
        let _ = nix::unistd::write(report, &record);
        if stage.fatal() {
            // SAFETY: _exit ends the process without running destructors
            // or atexit handlers, which a forked child must not run.
            unsafe { libc::_exit(127) };
        }
    };
    match isolation {
        Isolation::ProcessGroup => {
            if let Err(errno) = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0)) {
                fail(Stage::SetProcessGroup, errno);
            }
            if stdin_tty {
                // SIGTTOU is still blocked (inherited mask), so this works
                // even when the init runs in a background group.
                // SAFETY: fd 0 is open (it is a terminal, checked before
                // fork) for the duration of the call.
                let stdin = unsafe { BorrowedFd::borrow_raw(libc::STDIN_FILENO) };
                if let Err(errno) = nix::unistd::tcsetpgrp(stdin, nix::unistd::getpid()) {
                    fail(Stage::ForegroundTty, errno);
                }
            }
        }
        Isolation::Session => {
            if let Err(errno) = nix::unistd::setsid() {
                fail(Stage::SetSession, errno);
            }
            if stdin_tty {
                // SAFETY: TIOCSCTTY takes an int argument (0: do not steal
                // the terminal from another session).
                let ret = unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCSCTTY, 0) };
                if let Err(errno) = Errno::result(ret) {
                    fail(Stage::ControllingTty, errno);
                }
            }
        }
    }
    if let Err(errno) = pid1::reset_signals_for_exec() {
        fail(Stage::ResetSignals, errno);
    }
    // SAFETY: argv is a NULL-terminated array of pointers to NUL-terminated
    // strings that live in the parent's copy of memory (still mapped here).
    unsafe { libc::execvp(argv[0], argv.as_ptr()) };
    fail(Stage::Exec, Errno::last());
    unreachable!("a failed exec is fatal")
}

/// Print why the command did not run, naming it; returns the exit code
/// (127 not found, 126 found but not executable or set-up failed).
fn report_spawn_failure(command: &OsString, failure: &SpawnFailure) -> i32 {
    let name = command.to_string_lossy();
    if failure.stage == Stage::Exec && failure.errno == Errno::ENOENT {
        eprintln!(
            "supervisor init: {name:?}: command not found ({})",
            failure.errno.desc()
        );
        127
    } else if failure.stage == Stage::Exec {
        eprintln!(
            "supervisor init: {name:?}: cannot execute: {} ({})",
            failure.errno.desc(),
            failure.errno
        );
        126
    } else {
        eprintln!(
            "supervisor init: {name:?}: {} failed: {} ({})",
            failure.stage.describe(),
            failure.errno.desc(),
            failure.errno
        );
        126
    }
}

/// Where the init is in the child's life.
#[derive(Debug, Clone, Copy)]
enum ChildPhase {
    /// The child runs; signals are forwarded to it.
    Running,
    /// The child has exited with `status`; its leftovers got SIGTERM and
    /// get SIGKILL at `kill_at` (`None` once SIGKILL went out).
    Draining {
        status: ExitStatus,
        kill_at: Option<Instant>,
    },
}

/// The init's state: the one child and what to do with signals.
struct Init {
    child: Pid,
    forward_to_group: bool,
    /// Signal number -> signal to forward (0: drop).
    rewrite: [i32; (pid1::SIGNAL_MAX + 1) as usize],
    grace: Duration,
    pid1: bool,
    log: Log,
    phase: ChildPhase,
}

impl Init {
    /// The loop: one blocking wait on the signalfd, with a timeout only
    /// while a grace period runs. Returns the exit code once the child has
    /// exited and no descendant is left.
    fn run(&mut self, signals: &Signals) -> anyhow::Result<i32> {
        // A child that died before the loop started left a SIGCHLD pending,
        // which the first read picks up; this pass covers the rest.
        if let Some(code) = self.reap()? {
            return Ok(code);
        }
        loop {
            let timeout = match self.phase {
                ChildPhase::Draining {
                    kill_at: Some(at), ..
                } => Some(at.saturating_duration_since(Instant::now())),
                _ => None,
            };
            if timeout.is_none() {
                // Waiting with nothing scheduled: the code that ran gives
                // its pages back (see `crate::memory`).
                crate::memory::drop_idle_code();
            }
            match signals.wait(timeout)? {
                Some(info) => {
                    if let Some(code) = self.on_signal(info)? {
                        return Ok(code);
                    }
                }
                None => {
                    if let ChildPhase::Draining { status, .. } = self.phase {
                        self.log.info(format_args!(
                            "grace period over: sending SIGKILL to what is left"
                        ));
                        self.signal_leftovers(libc::SIGKILL);
                        self.phase = ChildPhase::Draining {
                            status,
                            kill_at: None,
                        };
                    }
                }
            }
        }
    }

    /// Handle one signal; `Some(code)` when the init is done.
    fn on_signal(&mut self, info: SignalInfo) -> anyhow::Result<Option<i32>> {
        self.log.debug(format_args!("received {info}"));
        if info.signal == libc::SIGCHLD {
            return self.reap();
        }
        if info.is_fault() && !info.sent_by_process() {
            // The kernel raised it for a fault elsewhere in this process
            // (a forced fault kills us before it reaches the signalfd).
            self.log
                .debug(format_args!("not forwarding {info}: not sent by a process"));
            return Ok(None);
        }
        if info.sent_by_process() && info.sender == nix::unistd::getpid().as_raw() {
            // Raised by ourselves, e.g. SIGPIPE from writing to a closed
            // stderr: nothing the child should see.
            return Ok(None);
        }
        if let ChildPhase::Draining { .. } = self.phase {
            self.log.info(format_args!(
                "ignoring {info}: the child has exited, its leftovers are being stopped"
            ));
            return Ok(None);
        }
        let to = self.rewrite[info.signal as usize];
        if to == 0 {
            self.log.debug(format_args!(
                "dropping {} (--rewrite)",
                pid1::signal_name(info.signal)
            ));
            return Ok(None);
        }
        let target = if self.forward_to_group {
            -self.child.as_raw()
        } else {
            self.child.as_raw()
        };
        match pid1::send_signal(target, to) {
            Ok(()) => self.log.debug(format_args!(
                "forwarded {} as {} to {}",
                pid1::signal_name(info.signal),
                pid1::signal_name(to),
                target
            )),
            // It exited and its SIGCHLD is on its way.
            Err(Errno::ESRCH) => {}
            Err(errno) => self.log.info(format_args!(
                "forwarding {} to {target}: {errno}",
                pid1::signal_name(to)
            )),
        }
        Ok(None)
    }

    /// Reap what exited; start draining when it was the child, and return
    /// the exit code once nothing is left.
    fn reap(&mut self) -> anyhow::Result<Option<i32>> {
        let reaped = pid1::reap()?;
        for (pid, status) in reaped.exited {
            if pid == self.child {
                self.child_exited(status);
            } else {
                self.log
                    .debug(format_args!("reaped orphan {pid} ({status})"));
            }
        }
        match self.phase {
            ChildPhase::Draining { status, .. } if !reaped.children_remain => {
                self.log
                    .info(format_args!("exiting with {} ({status})", status.code()));
                Ok(Some(status.code()))
            }
            ChildPhase::Draining { kill_at: None, .. } => {
                // After SIGKILL: anything that appeared since (a fork that
                // raced the first pass) gets it too.
                self.signal_leftovers(libc::SIGKILL);
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn child_exited(&mut self, status: ExitStatus) {
        self.log
            .info(format_args!("child {} ended: {status}", self.child));
        if self.grace.is_zero() {
            self.signal_leftovers(libc::SIGKILL);
            self.phase = ChildPhase::Draining {
                status,
                kill_at: None,
            };
        } else {
            self.signal_leftovers(libc::SIGTERM);
            // Stopped leftovers could not act on SIGTERM otherwise.
            self.signal_leftovers(libc::SIGCONT);
            self.phase = ChildPhase::Draining {
                status,
                kill_at: Some(Instant::now() + self.grace),
            };
        }
    }

    /// Signal the child's process group and every remaining descendant (as
    /// PID 1: the whole PID namespace but us; as subreaper: our subtree as
    /// /proc shows it).
    fn signal_leftovers(&self, signal: i32) {
        let _ = pid1::send_signal(-self.child.as_raw(), signal);
        if self.pid1 {
            let _ = pid1::send_signal(-1, signal);
        } else if pid1::proc_matches_pid_namespace() {
            for pid in pid1::descendants(nix::unistd::getpid()) {
                let _ = pid1::send_signal(pid.as_raw(), signal);
            }
        } else {
            self.log.info(format_args!(
                "/proc is not of our PID namespace: only the child's process group gets {}",
                pid1::signal_name(signal)
            ));
        }
    }
}
