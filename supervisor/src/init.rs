//! `supervisor init [OPTIONS] -- CMD [ARGS...]`: a PID 1 for a container
//! that runs one program, in the manner of tini and dumb-init together.
//!
//! It owns the policy of a single-child init: how the child is isolated
//! (own process group, or own session with `-s`), which received signals
//! are forwarded where (`-g`, `--rewrite`), putting the child in the
//! terminal's foreground, the exit code (the child's, or 128 + signal; 127
//! and 126 when it cannot be run), and the grace period after the child
//! ends (its process group and every other descendant get SIGTERM, then
//! SIGKILL). The PID 1 mechanics (signalfd, reaping, subreaper) live in
//! [`crate::pid1`], shared with `run`; the child is started by the pods'
//! engine, `container::Command`, set up for a program that is no container
//! (see [`child_command`]), which also gives it a clean signal state.
//!
//! Defaults: the child gets its own process group (like tini); `-s` makes it
//! a session leader instead, holding the terminal as its controlling tty
//! (like dumb-init's default). Signals go to the child only unless `-g`.
//! The init never stops: SIGTSTP/SIGTTIN/SIGTTOU sent to it are forwarded
//! (they stop the child). It is silent unless something fails or `-v`.
//!
//! Where it runs: [`start`] execs `supervisor-init` (the `init/` crate of
//! this workspace: no_std, libc-free, static) found beside this binary
//! (`std::env::current_exe()`, symlinks resolved), with the options checked
//! and turned into a plain numeric argv ([`helper_argv`]), so that a
//! container's PID 1 costs a small static program's memory, not the whole
//! supervisor's (about 750 kB of Pss as measured by `bench/footprint.sh`).
//! That binary does what [`run`] does and prints the same texts with the
//! same exit codes. When the file is absent (ENOENT), or this binary's path
//! cannot be read, [`run`] does the work in this process instead, as
//! before. Every signal is blocked before the exec, so one that arrives
//! during it stays pending for the signalfd of whichever init takes over.

use std::ffi::{CString, OsString};
use std::io;
use std::time::{Duration, Instant};

use anyhow::Context;
use container::signal::{self, SIGNAL_MAX};
use container::{Command, ProgramLookup, Session, SpawnError, SpawnStep, Terminal};
use nix::errno::Errno;
use nix::unistd::Pid;

use crate::pid1::{self, ReapedChild, SignalInfo, Signals};
use crate::sys;

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

/// The program [`start`] execs, looked up beside this binary.
pub const HELPER: &str = "supervisor-init";

/// `supervisor init`: become `supervisor-init` with these options (the
/// process is replaced), or when it is not installed beside this binary
/// run the init here ([`run`]). Returns only in the second case, or with an
/// error when the helper exists but cannot be executed.
pub fn start(args: InitOptions) -> anyhow::Result<i32> {
    // Blocked now and across the exec: a signal that comes in between is
    // kept pending for the new program's signalfd.
    let signals = Signals::block_all()?;
    let Some(helper) = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join(HELPER)))
    else {
        return run(args);
    };
    let argv = helper_argv(&helper, &args)?;
    match nix::unistd::execv(&argv[0], &argv) {
        Err(Errno::ENOENT) => {
            drop(signals);
            run(args)
        }
        Err(errno) => Err(anyhow::anyhow!("executing {}: {errno}", helper.display())),
    }
}

/// The argv of `supervisor-init` for `args`, its flags in the form it
/// reads (`src/main.rs` of the `init/` crate): `PATH [-g] [-s] [--rewrite
/// FROM:TO]... --grace-ms MS [-v]... -- CMD [ARGS...]`, signals as
/// numbers, the grace period in milliseconds rounded up (so that only 0
/// stays 0).
pub fn helper_argv(helper: &std::path::Path, args: &InitOptions) -> anyhow::Result<Vec<CString>> {
    use std::os::unix::ffi::OsStrExt;
    let mut argv: Vec<Vec<u8>> = vec![helper.as_os_str().as_bytes().to_vec()];
    if args.process_group {
        argv.push(b"-g".to_vec());
    }
    if args.setsid {
        argv.push(b"-s".to_vec());
    }
    for &(from, to) in &args.rewrite {
        argv.push(b"--rewrite".to_vec());
        argv.push(format!("{from}:{to}").into_bytes());
    }
    let grace_ms = args.grace_period.as_nanos().div_ceil(1_000_000);
    argv.push(b"--grace-ms".to_vec());
    argv.push(
        u64::try_from(grace_ms)
            .unwrap_or(u64::MAX)
            .to_string()
            .into_bytes(),
    );
    for _ in 0..args.verbose {
        argv.push(b"-v".to_vec());
    }
    argv.push(b"--".to_vec());
    argv.extend(args.command.iter().map(|arg| arg.as_bytes().to_vec()));
    argv.into_iter()
        .map(|arg| CString::new(arg).context("an argument holds a NUL byte"))
        .collect()
}

/// `supervisor init` in this process: returns the exit code (the child's,
/// 128 + signal, or 127/126 when the command cannot be run).
pub fn run(args: InitOptions) -> anyhow::Result<i32> {
    // First: nothing may be delivered the ordinary way from here on.
    let signals = Signals::block_all()?;
    let log = Log {
        verbosity: args.verbose,
    };
    let mut rewrite = [0i32; (SIGNAL_MAX + 1) as usize];
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

    let stdin_tty = nix::unistd::isatty(sys::stdin()).unwrap_or(false);
    // Signals that arrive while detaching from the terminal, to handle once
    // the child exists.
    let mut early = Vec::new();
    if args.setsid && stdin_tty {
        release_terminal(&signals, &log, &mut early)?;
    }

    // Returns once the child has exec'd, or failed (then reaped).
    let child = match child_command(&args, stdin_tty).spawn_without_pidfd() {
        Ok(child) => child,
        Err(SpawnError::Child { step, source, .. }) => {
            return Ok(report_spawn_failure(&args.command[0], step, &source));
        }
        Err(error) => return Err(error).context("starting the child"),
    };
    for skipped in &child.skipped {
        log.info(format_args!("child: {skipped}"));
    }
    let child = Pid::from_raw(child.pid);
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

/// The child as `container::Command` starts it: no container (it stays in
/// the init's mount namespace, with the init's environment and fds), found
/// as execvp(3) finds it, in its own process group (or with `-s` its own
/// session), and with a terminal on stdin, that terminal's foreground
/// group (or with `-s` its controlling terminal). SIGTTOU stays blocked for
/// the foreground hand-over, so it works from a background group too.
fn child_command(args: &InitOptions, stdin_tty: bool) -> Command {
    let (session, terminal) = if args.setsid {
        (Session::NewSession, Terminal::Controlling)
    } else {
        (Session::NewProcessGroup, Terminal::Foreground)
    };
    let mut command = Command::new(&args.command[0]);
    command
        .args(&args.command[1..])
        .envs(std::env::vars_os())
        .own_mount_namespace(false)
        .inherit_fds(true)
        .program_lookup(ProgramLookup::Execvp)
        .session(session);
    if stdin_tty {
        command.terminal(terminal);
    }
    command
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
    if let Err(errno) = sys::release_controlling_terminal(sys::stdin()) {
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

/// Print why the command did not run, naming it; returns the exit code
/// (127 not found, 126 found but not executable or set-up failed).
fn report_spawn_failure(command: &OsString, step: SpawnStep, source: &io::Error) -> i32 {
    let name = command.to_string_lossy();
    let errno = Errno::from_raw(source.raw_os_error().unwrap_or(0));
    match step {
        SpawnStep::Exec if errno == Errno::ENOENT => {
            eprintln!(
                "supervisor init: {name:?}: command not found ({})",
                errno.desc()
            );
            127
        }
        SpawnStep::Exec => {
            eprintln!(
                "supervisor init: {name:?}: cannot execute: {} ({errno})",
                errno.desc()
            );
            126
        }
        _ => {
            eprintln!(
                "supervisor init: {name:?}: {step} failed: {} ({errno})",
                errno.desc()
            );
            126
        }
    }
}

/// Where the init is in the child's life.
#[derive(Debug, Clone, Copy)]
enum ChildPhase {
    /// The child runs; signals are forwarded to it.
    Running,
    /// The child has ended as `ended` says; its leftovers got SIGTERM and
    /// get SIGKILL at `kill_at` (`None` once SIGKILL went out).
    Draining {
        ended: ReapedChild,
        kill_at: Option<Instant>,
    },
}

/// The init's state: the one child and what to do with signals.
struct Init {
    child: Pid,
    forward_to_group: bool,
    /// Signal number -> signal to forward (0: drop).
    rewrite: [i32; (SIGNAL_MAX + 1) as usize],
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
                    if let ChildPhase::Draining { ended, .. } = self.phase {
                        self.log.info(format_args!(
                            "grace period over: sending SIGKILL to what is left"
                        ));
                        self.signal_leftovers(libc::SIGKILL);
                        self.phase = ChildPhase::Draining {
                            ended,
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
                signal::name(info.signal)
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
                signal::name(info.signal),
                signal::name(to),
                target
            )),
            // It exited and its SIGCHLD is on its way.
            Err(Errno::ESRCH) => {}
            Err(errno) => self.log.info(format_args!(
                "forwarding {} to {target}: {errno}",
                signal::name(to)
            )),
        }
        Ok(None)
    }

    /// Reap what exited; start draining when it was the child, and return
    /// the exit code once nothing is left.
    fn reap(&mut self) -> anyhow::Result<Option<i32>> {
        let reaped = pid1::reap()?;
        for exited in reaped.exited {
            if exited.pid == self.child {
                self.child_exited(exited);
            } else {
                self.log
                    .debug(format_args!("reaped orphan {} ({exited})", exited.pid));
            }
        }
        match self.phase {
            ChildPhase::Draining { ended, .. } if !reaped.children_remain => {
                let code = ended.status.as_code();
                self.log.info(format_args!("exiting with {code} ({ended})"));
                Ok(Some(code))
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

    fn child_exited(&mut self, ended: ReapedChild) {
        self.log
            .info(format_args!("child {} ended: {ended}", self.child));
        if self.grace.is_zero() {
            self.signal_leftovers(libc::SIGKILL);
            self.phase = ChildPhase::Draining {
                ended,
                kill_at: None,
            };
        } else {
            self.signal_leftovers(libc::SIGTERM);
            // Stopped leftovers could not act on SIGTERM otherwise.
            self.signal_leftovers(libc::SIGCONT);
            self.phase = ChildPhase::Draining {
                ended,
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
                signal::name(signal)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> InitOptions {
        InitOptions {
            process_group: false,
            setsid: false,
            rewrite: Vec::new(),
            grace_period: Duration::from_secs(10),
            verbose: 0,
            command: vec!["sleep".into(), "-x".into(), "--".into()],
        }
    }

    fn argv(args: &InitOptions) -> Vec<String> {
        helper_argv(std::path::Path::new("/x/supervisor-init"), args)
            .unwrap()
            .into_iter()
            .map(|arg| arg.into_string().unwrap())
            .collect()
    }

    #[test]
    fn the_helper_gets_plain_numeric_flags_and_the_command_after_dashes() {
        assert_eq!(
            argv(&options()),
            [
                "/x/supervisor-init",
                "--grace-ms",
                "10000",
                "--",
                "sleep",
                "-x",
                "--"
            ]
        );
        let all = InitOptions {
            process_group: true,
            setsid: true,
            rewrite: vec![(15, 3), (10, 0)],
            grace_period: Duration::from_secs_f64(0.5),
            verbose: 2,
            ..options()
        };
        assert_eq!(
            argv(&all),
            [
                "/x/supervisor-init",
                "-g",
                "-s",
                "--rewrite",
                "15:3",
                "--rewrite",
                "10:0",
                "--grace-ms",
                "500",
                "-v",
                "-v",
                "--",
                "sleep",
                "-x",
                "--"
            ]
        );
    }

    #[test]
    fn a_grace_period_is_rounded_up_to_milliseconds_so_only_zero_is_zero() {
        let ms = |grace: Duration| {
            let args = InitOptions {
                grace_period: grace,
                ..options()
            };
            argv(&args)[2].clone()
        };
        assert_eq!(ms(Duration::ZERO), "0");
        assert_eq!(ms(Duration::from_nanos(1)), "1");
        assert_eq!(ms(Duration::from_micros(1500)), "2");
        assert_eq!(ms(Duration::MAX), u64::MAX.to_string());
    }
}
