//! supervisor-init: the PID 1 that `supervisor init` runs, in the manner of
//! tini and catatonit: one child, every signal forwarded to it, every
//! zombie reaped, the child's exit status as its own.
//!
//! `supervisor init` (the command line in the supervisor binary) checks its
//! options and then execs this binary with them in a plain, numeric form,
//! so that a container's PID 1 costs what a small static program costs
//! rather than the whole supervisor:
//!
//! ```text
//! supervisor-init [-g] [-s] [--rewrite FROM:TO]... [--grace-ms MS] [-v]... -- CMD [ARGS]...
//! ```
//!
//! (`FROM` 1 to 64 but 9 and 19, `TO` 0 to 64, `MS` whole milliseconds).
//! It does what `supervisor/src/init.rs` and `pid1.rs` do in-process, and
//! prints the same texts with the same exit codes (`src/text.rs` holds the
//! names and error texts, compared with the originals by the tests):
//!
//! - Every signal (glibc's internal 32 and 33 too) is blocked and read from
//!   a signalfd, with every disposition reset to the default. The idle init
//!   sleeps in one poll(2) without a timeout: no wake-ups.
//! - Not PID 1: it registers as child subreaper.
//! - The child: forked with an empty signal mask (dispositions are the
//!   defaults already), in its own process group, or with `-s` its own
//!   session; with a terminal on stdin, that terminal's foreground group
//!   (SIGTTOU blocked for the hand-over) or with `-s` its controlling
//!   terminal, best effort. Found as execvp(3) finds it (PATH, or
//!   `/bin:/usr/bin`; a file the kernel cannot execute runs under
//!   `/bin/sh`); not found exits 127, found but not runnable 126. The
//!   environment and every fd are passed on as they are. The init then
//!   changes to `/`.
//! - Signals go to the child, or with `-g` its process group, rewritten by
//!   `--rewrite` (TO 0 drops). SIGCHLD is not forwarded; fault signals only
//!   when a process sent them; signals the init raised itself are dropped.
//!   SIGTSTP, SIGTTIN and SIGTTOU are forwarded: the init never stops.
//! - When the child ends, its process group and every other descendant
//!   (PID 1: the whole namespace; subreaper: the subtree /proc shows) get
//!   SIGTERM and SIGCONT, then SIGKILL when the grace period is over (at
//!   once with 0). The init exits with the child's code, or 128 + the
//!   signal that killed it, once no descendant is left.
//!
//! Like pause it is `no_std`, libc-free and static, on nolibc-rt (its
//! `_start`, raw system calls and the calls both share); its own unsafe
//! code and system calls are in `sys.rs`. There is no
//! allocator: messages are built in a buffer on the stack, the command's
//! argv and environment are the ones on the initial stack, and the pids of
//! a /proc scan go to an anonymous mapping for the time of the scan.
//!
//! Its memory is its file and its stack: the kernel maps the whole binary
//! (it is smaller than one fault-around window of 64 kB), so the binary's
//! size is what it costs; hence no `core::fmt`, and tables as strings.

#![no_std]
#![no_main]

mod sys;
mod text;

use nolibc_rt::{self as rt, Args, Argv, Children, Envp, Errno, SigSet};
use sys::Forked;
use text::Out;

const SIGHUP: i32 = 1;
const SIGILL: i32 = 4;
const SIGTRAP: i32 = 5;
const SIGABRT: i32 = 6;
const SIGBUS: i32 = 7;
const SIGFPE: i32 = 8;
const SIGKILL: i32 = 9;
const SIGSEGV: i32 = 11;
const SIGTERM: i32 = 15;
const SIGCHLD: i32 = 17;
const SIGCONT: i32 = 18;
const SIGSTOP: i32 = 19;
const SIGTTOU: i32 = 22;
const SIGSYS: i32 = 31;
const SIGNAL_MAX: i32 = 64;

/// The signals the kernel raises synchronously on a fault: never acted on
/// unless another process sent them.
const FAULT_SIGNALS: [i32; 7] = [SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS];

/// `si_code` values of a signal sent by a process (kill, sigqueue, tkill).
const SI_USER: i32 = 0;
const SI_QUEUE: i32 = -1;
const SI_TKILL: i32 = -6;

const ENOENT: Errno = 2;
const ENODEV: Errno = 19;
const ENOTDIR: Errno = 20;
const ENOEXEC: Errno = 8;
const EACCES: Errno = 13;
const ESTALE: Errno = 116;
const ETIMEDOUT: Errno = 110;

const STDIN: i32 = 0;
const STDERR: i32 = 2;

rt::main!(main);

/// Called by nolibc-rt's `_start` with the arguments after argv[0] and the
/// environment.
fn main(args: Args, envp: Envp) -> ! {
    // First: nothing may be delivered the ordinary way from here on
    // (`supervisor init` blocked everything before the exec already).
    block_all_signals();
    // Before the signalfd, which must not take the place of one of them.
    open_standard_fds();
    let signals = Signals::open();
    let options = parse(args);
    let log = Log {
        verbosity: options.verbose,
    };
    let self_pid = rt::getpid();
    let pid1 = self_pid == 1;
    if pid1 {
        log.info(|m| m.s(b"running as PID 1"));
    } else {
        if let Err(errno) = rt::set_child_subreaper() {
            fatal(
                b"registering as child subreaper (PR_SET_CHILD_SUBREAPER): ",
                Cause::Errno(errno),
            );
        }
        log.info(|m| {
            m.s(b"not PID 1 (pid ")
                .int(self_pid)
                .s(b"): registered as child subreaper")
        });
    }

    let stdin_tty = sys::is_tty(STDIN);
    // Signals that arrive while detaching from the terminal, to handle
    // once the child exists.
    let mut early = Early::default();
    if options.setsid && stdin_tty {
        release_terminal(&signals, &log, &mut early);
    }

    let name = options.command.first().map_or(&b""[..], |arg| arg.bytes());
    let child = match spawn(&options, stdin_tty, envp) {
        Spawned::Running { pid, skipped } => {
            if let Some((step, errno)) = skipped {
                log.info(|m| {
                    m.s(b"child: ")
                        .s(step.text())
                        .s(b" failed (continuing): ")
                        .os_error(errno)
                });
            }
            pid
        }
        Spawned::Failed { step, errno } => rt::exit(report_spawn_failure(name, step, errno)),
    };
    log.info(|m| m.s(b"started ").quoted(name).s(b" as pid ").int(child));
    // The child keeps the original directory; the init lets go of its mount.
    if let Err(errno) = sys::chdir(c"/") {
        log.info(|m| m.s(b"changing directory to /: ").errno(errno));
    }

    let mut init = Init {
        child,
        forward_to_group: options.process_group,
        rewrite: options.rewrite,
        grace_ns: options.grace_ms.saturating_mul(1_000_000),
        pid1,
        self_pid,
        log,
        phase: Phase::Running,
    };
    for &info in early.iter() {
        if let Some(code) = init.on_signal(info) {
            rt::exit(code);
        }
    }
    rt::exit(init.run(&signals))
}

/// What `supervisor init` passed on.
struct Options {
    /// Forward signals to the child's whole process group.
    process_group: bool,
    /// Start the child as a session leader.
    setsid: bool,
    /// Signal number -> signal to forward (0: drop).
    rewrite: [u8; SIGNAL_MAX as usize + 1],
    /// What the child's leftovers get between SIGTERM and SIGKILL.
    grace_ms: u64,
    /// 0 quiet, 1 lifecycle, 2 every signal.
    verbose: u8,
    /// The program and its arguments (not empty).
    command: Argv,
}

/// Read the arguments `supervisor init` built; anything else is refused
/// (exit 2), since that command already checked what the user gave.
fn parse(mut args: Args) -> Options {
    let mut rewrite = [0u8; SIGNAL_MAX as usize + 1];
    for (signal, slot) in (0u8..).zip(rewrite.iter_mut()) {
        *slot = signal;
    }
    let mut options = Options {
        process_group: false,
        setsid: false,
        rewrite,
        grace_ms: 10_000,
        verbose: 0,
        command: args.rest(),
    };
    loop {
        let Some(arg) = args.next() else {
            usage(b"no -- before the command");
        };
        match arg.bytes() {
            b"-g" => options.process_group = true,
            b"-s" => options.setsid = true,
            b"-v" => options.verbose = options.verbose.saturating_add(1),
            b"--rewrite" => {
                let value = args.next().map_or(&b""[..], |a| a.bytes());
                let mut parts = value.splitn(2, |&b| b == b':');
                let from = parts.next().and_then(number).filter(|&n| {
                    (1..=SIGNAL_MAX as u64).contains(&n)
                        && n != SIGKILL as u64
                        && n != SIGSTOP as u64
                });
                let to = parts
                    .next()
                    .and_then(number)
                    .filter(|&n| n <= SIGNAL_MAX as u64);
                let (Some(from), Some(to)) = (from, to) else {
                    usage(value);
                };
                options.rewrite[from as usize] = to as u8;
            }
            b"--grace-ms" => {
                let value = args.next().map_or(&b""[..], |a| a.bytes());
                options.grace_ms = number(value).unwrap_or_else(|| usage(value));
            }
            b"--" => break,
            other => usage(other),
        }
    }
    options.command = args.rest();
    if options.command.first().is_none() {
        usage(b"no command after --");
    }
    options
}

/// A decimal number without sign.
fn number(text: &[u8]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0u64, |n, &b| {
        let digit = (b as char).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

fn usage(what: &[u8]) -> ! {
    let mut m = Line::new(b"supervisor-init: ");
    m.s(b"refusing ")
        .quoted(what)
        .s(b": it runs as `supervisor init` starts it: ")
        .s(b"[-g] [-s] [--rewrite FROM:TO]... [--grace-ms MS] [-v]... -- CMD [ARGS]...");
    m.send();
    rt::exit(2)
}

/// As any Rust program does before main: fds 0 to 2 that are closed get
/// /dev/null, so that no descriptor opened later takes their place.
fn open_standard_fds() {
    for fd in 0..3 {
        if !sys::is_open(fd) && sys::open_dev_null() != Ok(fd) {
            rt::exit(1);
        }
    }
}

/// One line on stderr: built in a buffer and written in one write(2)
/// (longer lines in several).
struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Line {
    fn new(prefix: &[u8]) -> Line {
        let mut line = Line {
            buf: [0; 512],
            len: 0,
        };
        line.put(prefix);
        line
    }

    fn s(&mut self, bytes: &[u8]) -> &mut Line {
        self.put(bytes);
        self
    }

    fn int(&mut self, value: i32) -> &mut Line {
        text::int(self, value.into());
        self
    }

    fn signal(&mut self, signal: i32) -> &mut Line {
        text::signal(self, signal.into());
        self
    }

    /// `ENOENT: No such file or directory` (nix's `Errno`).
    fn errno(&mut self, errno: Errno) -> &mut Line {
        text::errno(self, errno);
        self
    }

    /// `No such file or directory` (nix's `Errno::desc`).
    fn errno_desc(&mut self, errno: Errno) -> &mut Line {
        text::errno_desc(self, errno);
        self
    }

    /// `No such file or directory (os error 2)` (std's `io::Error`).
    fn os_error(&mut self, errno: Errno) -> &mut Line {
        text::os_error(self, errno);
        self
    }

    /// In double quotes, escaped as Rust's `{:?}` escapes a string.
    fn quoted(&mut self, bytes: &[u8]) -> &mut Line {
        text::quoted(self, bytes);
        self
    }

    /// `SIGTERM (code 0, from pid 7)`.
    fn info(&mut self, info: SignalInfo) -> &mut Line {
        self.signal(info.signal)
            .s(b" (code ")
            .int(info.code)
            .s(b", from pid ")
            .int(info.sender)
            .s(b")")
    }

    /// `exit code 3`, `killed by SIGSEGV (core dumped)`.
    fn ended(&mut self, ended: Ended) -> &mut Line {
        match ended.signal() {
            None => self.s(b"exit code ").int(ended.code()),
            Some(signal) => {
                self.s(b"killed by ").signal(signal);
                if ended.core_dumped() {
                    self.s(b" (core dumped)");
                }
                self
            }
        }
    }

    fn send(&mut self) {
        self.put(b"\n");
        rt::write_all(STDERR, &self.buf[..self.len]);
    }
}

impl Out for Line {
    fn put(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.len == self.buf.len() {
                rt::write_all(STDERR, &self.buf);
                self.len = 0;
            }
            let n = bytes.len().min(self.buf.len() - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
            self.len += n;
            bytes = &bytes[n..];
        }
    }
}

/// `supervisor init: ...` on stderr.
fn say(message: impl FnOnce(&mut Line) -> &mut Line) {
    let mut line = Line::new(b"supervisor init: ");
    message(&mut line).send();
}

/// The errno of a fatal error, shown as the supervisor shows it.
enum Cause {
    /// nix's `Errno`: `EMFILE: Too many open files`.
    Errno(Errno),
    /// std's `io::Error`: `Too many open files (os error 24)`.
    Os(Errno),
    Nothing,
}

/// A failed duty of the init: `supervisor: WHAT CAUSE` (as the supervisor
/// binary reports an error), exit 1.
#[inline(never)]
fn fatal(what: &[u8], cause: Cause) -> ! {
    let mut line = Line::new(b"supervisor: ");
    line.s(what);
    match cause {
        Cause::Errno(errno) => line.errno(errno),
        Cause::Os(errno) => line.os_error(errno),
        Cause::Nothing => &mut line,
    }
    .send();
    rt::exit(1)
}

/// Messages on stderr, gated by `-v`.
struct Log {
    verbosity: u8,
}

impl Log {
    fn info(&self, message: impl FnOnce(&mut Line) -> &mut Line) {
        if self.verbosity >= 1 {
            say(message);
        }
    }

    fn debug(&self, message: impl FnOnce(&mut Line) -> &mut Line) {
        if self.verbosity >= 2 {
            say(message);
        }
    }
}

/// One signal read from the signalfd.
#[derive(Clone, Copy)]
struct SignalInfo {
    /// 1 to 64.
    signal: i32,
    /// `si_code`: who or what raised it.
    code: i32,
    /// The sender's pid in our PID namespace (0: outside it, or the kernel).
    sender: i32,
}

impl SignalInfo {
    /// Sent by a process (kill, sigqueue, tkill), not raised by the kernel.
    fn sent_by_process(self) -> bool {
        matches!(self.code, SI_USER | SI_QUEUE | SI_TKILL)
    }

    fn is_fault(self) -> bool {
        FAULT_SIGNALS.contains(&self.signal)
    }
}

/// Every signal of this process, blocked and readable from a signalfd.
struct Signals {
    fd: i32,
}

/// Block every signal and reset every disposition to the default (an
/// inherited SIG_IGN would discard a signal before the signalfd sees it,
/// and an ignored SIGCHLD would make the kernel reap for us).
fn block_all_signals() {
    if let Err(errno) = rt::set_signal_mask(SigSet::ALL) {
        fatal(
            b"blocking all signals (rt_sigprocmask): ",
            Cause::Errno(errno),
        );
    }
    for signal in 1..=SIGNAL_MAX {
        if signal != SIGKILL && signal != SIGSTOP {
            let _ = rt::set_default_disposition(signal);
        }
    }
}

impl Signals {
    /// A non-blocking signalfd over every signal (all blocked already).
    fn open() -> Signals {
        match sys::signalfd_all() {
            Ok(fd) => Signals { fd },
            Err(errno) => fatal(
                b"opening a signalfd over all signals: ",
                Cause::Errno(errno),
            ),
        }
    }

    /// One pending signal, without blocking.
    fn read(&self) -> Option<SignalInfo> {
        match sys::read_signal(self.fd) {
            Ok(record) => record.map(|r| SignalInfo {
                signal: r.signal,
                code: r.code,
                sender: r.sender,
            }),
            Err(errno) => Self::failed(errno),
        }
    }

    /// Block until a signal arrives or `timeout_ns` passes (`None`:
    /// forever); `None` on timeout.
    fn wait(&self, timeout_ns: Option<u64>) -> Option<SignalInfo> {
        // Rounded up, so that a deadline is never woken early.
        let timeout_ms = timeout_ns.map_or(-1, |ns| {
            i32::try_from(ns.div_ceil(1_000_000)).unwrap_or(i32::MAX)
        });
        loop {
            if let Some(info) = self.read() {
                return Some(info);
            }
            match sys::poll_in(self.fd, timeout_ms) {
                Ok(false) => return None,
                Ok(true) | Err(rt::EINTR) => continue,
                Err(errno) => Self::failed(errno),
            }
        }
    }

    fn failed(errno: Errno) -> ! {
        fatal(
            b"waiting for a signal on the signalfd: ",
            Cause::Errno(errno),
        )
    }
}

/// Signals read before the child exists. Room for 32: every standard
/// signal (each is pending at most once, and all are read before any
/// real-time one); real-time signals beyond that stay queued in the
/// signalfd for the loop.
#[derive(Default)]
struct Early {
    items: [Option<SignalInfo>; 32],
    len: usize,
}

impl Early {
    fn is_full(&self) -> bool {
        self.len == self.items.len()
    }

    fn push(&mut self, info: SignalInfo) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = Some(info);
            self.len += 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = &SignalInfo> {
        self.items[..self.len].iter().flatten()
    }
}

/// With `-s`, the terminal must belong to no session before the child can
/// take it: give it up (TIOCNOTTY). When the init is the session leader the
/// kernel then sends SIGHUP and SIGCONT to the foreground group (the
/// init's own): those are dropped, anything else is kept for later.
fn release_terminal(signals: &Signals, log: &Log, early: &mut Early) {
    if let Err(errno) = sys::release_controlling_terminal(STDIN) {
        log.info(|m| {
            m.s(b"stdin is not our controlling terminal (TIOCNOTTY: ")
                .errno(errno)
                .s(b")")
        });
        return;
    }
    while !early.is_full() {
        let Some(info) = signals.read() else {
            break;
        };
        let hangup = matches!(info.signal, SIGHUP | SIGCONT);
        if hangup && !info.sent_by_process() {
            log.debug(|m| {
                m.s(b"dropped ")
                    .info(info)
                    .s(b" from detaching the terminal")
            });
        } else {
            early.push(info);
        }
    }
}

/// The steps between fork and exec, named as `container::SpawnStep` names
/// them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Signals = 1,
    Session = 2,
    ForegroundTerminal = 3,
    ControllingTerminal = 4,
    Exec = 5,
}

impl Step {
    fn text(self) -> &'static [u8] {
        match self {
            Step::Signals => b"reset signals",
            Step::Session => b"set session",
            Step::ForegroundTerminal => b"take the terminal's foreground (tcsetpgrp)",
            Step::ControllingTerminal => b"take the controlling terminal (TIOCSCTTY)",
            Step::Exec => b"exec",
        }
    }

    fn from_code(code: u32) -> Option<Step> {
        [
            Step::Signals,
            Step::Session,
            Step::ForegroundTerminal,
            Step::ControllingTerminal,
            Step::Exec,
        ]
        .into_iter()
        .find(|&step| step as u32 == code)
    }
}

/// The child's reports over the close-on-exec pipe: 12 bytes each, the
/// kind, the step and the errno.
const REPORT_FAILED: u32 = 1;
const REPORT_SKIPPED: u32 = 3;
const REPORT_LEN: usize = 12;

fn send_report(fd: i32, kind: u32, step: Step, errno: Errno) {
    let mut report = [0u8; REPORT_LEN];
    report[0..4].copy_from_slice(&kind.to_ne_bytes());
    report[4..8].copy_from_slice(&(step as u32).to_ne_bytes());
    report[8..12].copy_from_slice(&errno.to_ne_bytes());
    rt::write_all(fd, &report);
}

enum Spawned {
    /// It exec'd; a best-effort step may have failed on the way.
    Running {
        pid: i32,
        skipped: Option<(Step, Errno)>,
    },
    /// A step failed; the child has exited and has been reaped.
    Failed { step: Step, errno: Errno },
}

const PROTOCOL_READ: &[u8] =
    b"starting the child: spawn protocol with the child failed: read report pipe: ";
const PROTOCOL_MALFORMED: &[u8] =
    b"starting the child: spawn protocol with the child failed: malformed report";

/// Fork the child and read its reports until it has exec'd (the pipe
/// closes) or failed.
fn spawn(options: &Options, stdin_tty: bool, envp: Envp) -> Spawned {
    let (read_end, write_end) = sys::pipe_cloexec().unwrap_or_else(|errno| {
        fatal(
            b"starting the child: prepare report pipe: ",
            Cause::Os(errno),
        )
    });
    let pid = match sys::fork() {
        Ok(Forked::Child) => child(options, stdin_tty, envp, write_end),
        Ok(Forked::Parent { child }) => child,
        Err(errno) => fatal(b"starting the child: fork: ", Cause::Os(errno)),
    };
    sys::close(write_end);
    let mut skipped = None;
    let mut failure = None;
    loop {
        let mut report = [0u8; REPORT_LEN];
        let mut got = 0;
        while got < REPORT_LEN {
            match sys::read(read_end, &mut report[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(errno) => fatal(PROTOCOL_READ, Cause::Os(errno)),
            }
        }
        if got == 0 {
            break;
        }
        let word = |at: usize| {
            u32::from_ne_bytes([report[at], report[at + 1], report[at + 2], report[at + 3]])
        };
        let (kind, step, errno) = (word(0), Step::from_code(word(4)), word(8) as Errno);
        match (kind, step) {
            (REPORT_FAILED, Some(step)) if got == REPORT_LEN => {
                failure.get_or_insert((step, errno));
            }
            (REPORT_SKIPPED, Some(step)) if got == REPORT_LEN => skipped = Some((step, errno)),
            _ => fatal(PROTOCOL_MALFORMED, Cause::Nothing),
        }
    }
    sys::close(read_end);
    match failure {
        Some((step, errno)) => {
            // It exited 127 after reporting; reap it.
            sys::wait_pid(pid);
            Spawned::Failed { step, errno }
        }
        None => Spawned::Running { pid, skipped },
    }
}

/// In the forked child: a clean signal mask (the dispositions are all
/// default already: the init reset them and never changes one), its own
/// process group or session, the terminal, then exec. A failure is
/// reported and ends it with 127. Never inlined: its frame (a PATH_MAX
/// path buffer) is then on the child's stack only, not probed into the
/// init's.
#[inline(never)]
fn child(options: &Options, stdin_tty: bool, envp: Envp, report: i32) -> ! {
    let fail = |step: Step, errno: Errno| -> ! {
        send_report(report, REPORT_FAILED, step, errno);
        rt::exit(127)
    };
    if let Err(errno) = rt::set_signal_mask(SigSet::EMPTY) {
        fail(Step::Signals, errno);
    }
    let session = if options.setsid {
        sys::setsid()
    } else {
        sys::setpgid_self()
    };
    if let Err(errno) = session {
        fail(Step::Session, errno);
    }
    if stdin_tty {
        // Best effort, as in tini and dumb-init.
        let (step, result) = if options.setsid {
            (
                Step::ControllingTerminal,
                sys::take_controlling_terminal(STDIN),
            )
        } else {
            (Step::ForegroundTerminal, take_foreground(STDIN))
        };
        if let Err(errno) = result {
            send_report(report, REPORT_SKIPPED, step, errno);
        }
    }
    fail(Step::Exec, exec(options.command, envp))
}

/// Make our process group the foreground group of the terminal on `fd`,
/// with SIGTTOU blocked for the call: from a background group the kernel
/// would otherwise stop us with it (a blocked SIGTTOU makes it allow the
/// change).
fn take_foreground(fd: i32) -> Result<(), Errno> {
    let before = rt::block_signal(SIGTTOU)?;
    let result = sys::set_foreground(fd, sys::getpgrp());
    let _ = rt::set_signal_mask(before);
    result
}

/// Exec `argv` as execvp(3) searches: a program with a slash as it is,
/// else in each PATH entry (an empty entry is the working directory; no
/// PATH means `/bin:/usr/bin`). Errors that mean "not here" (ENOENT,
/// ENOTDIR, ESTALE, ENODEV, ETIMEDOUT) and EACCES go on to the next entry,
/// anything else stops; a file the kernel cannot execute (ENOEXEC) is run
/// with `/bin/sh`. Returns only on failure: EACCES when a candidate was
/// refused and none ran, else the last errno.
fn exec(argv: Argv, envp: Envp) -> Errno {
    let Some(program) = argv.first() else {
        return ENOENT;
    };
    let name = program.bytes();
    if name.is_empty() {
        return ENOENT;
    }
    let mut last = ENOENT;
    let mut refused = false;
    let mut try_one = |path: Result<sys::CPath, Errno>| -> Option<Errno> {
        let errno = match &path {
            Ok(path) => {
                let mut errno = sys::execve(path.as_cstr(), argv, envp);
                if errno == ENOEXEC {
                    errno = sys::execve_sh(path.as_cstr(), argv, envp);
                }
                errno
            }
            Err(errno) => *errno,
        };
        match errno {
            EACCES => refused = true,
            ENOENT | ENOTDIR | ESTALE | ENODEV | ETIMEDOUT => {}
            _ => return Some(errno),
        }
        last = errno;
        None
    };
    let stopped = if name.contains(&b'/') {
        try_one(sys::CPath::of(&[name]))
    } else {
        let path = envp
            .iter()
            .find_map(|entry| entry.strip_prefix(b"PATH="))
            .unwrap_or(b"/bin:/usr/bin");
        path.split(|&b| b == b':').find_map(|dir| {
            let candidate = match dir {
                b"" => sys::CPath::of(&[name]),
                _ if dir.ends_with(b"/") => sys::CPath::of(&[dir, name]),
                _ => sys::CPath::of(&[dir, b"/", name]),
            };
            try_one(candidate)
        })
    };
    match stopped {
        Some(errno) => errno,
        None if refused => EACCES,
        None => last,
    }
}

/// Print why the command did not run, naming it; the exit code (127 not
/// found, 126 found but not executable or set-up failed).
fn report_spawn_failure(name: &[u8], step: Step, errno: Errno) -> i32 {
    let mut line = Line::new(b"supervisor init: ");
    line.quoted(name).s(b": ");
    let code = match step {
        Step::Exec if errno == ENOENT => {
            line.s(b"command not found (").errno_desc(errno).s(b")");
            127
        }
        Step::Exec => {
            line.s(b"cannot execute: ")
                .errno_desc(errno)
                .s(b" (")
                .errno(errno)
                .s(b")");
            126
        }
        _ => {
            line.s(step.text())
                .s(b" failed: ")
                .errno_desc(errno)
                .s(b" (")
                .errno(errno)
                .s(b")");
            126
        }
    };
    line.send();
    code
}

/// How a child ended: a raw wait status that is an exit or a kill.
#[derive(Clone, Copy)]
struct Ended(i32);

impl Ended {
    /// `None` for stop and continue reports, which are not an end.
    fn from_wait_status(status: i32) -> Option<Ended> {
        let low = status & 0x7f;
        // WIFEXITED, or WIFSIGNALED (0x7f is a stop report).
        (low != 0x7f).then_some(Ended(status))
    }

    /// The signal that killed it, if one did.
    fn signal(self) -> Option<i32> {
        let low = self.0 & 0x7f;
        (low != 0).then_some(low)
    }

    fn core_dumped(self) -> bool {
        self.signal().is_some() && self.0 & 0x80 != 0
    }

    /// The shell's convention: the exit code, or 128 + the signal.
    fn code(self) -> i32 {
        match self.signal() {
            None => (self.0 >> 8) & 0xff,
            Some(signal) => 128 + signal,
        }
    }
}

/// Where the init is in the child's life.
#[derive(Clone, Copy)]
enum Phase {
    /// The child runs; signals are forwarded to it.
    Running,
    /// The child has ended as `ended` says; its leftovers got SIGTERM and
    /// get SIGKILL at `kill_at` (monotonic ns; `None` once SIGKILL went
    /// out).
    Draining { ended: Ended, kill_at: Option<u64> },
}

/// The init's state: the one child and what to do with signals.
struct Init {
    child: i32,
    forward_to_group: bool,
    rewrite: [u8; SIGNAL_MAX as usize + 1],
    grace_ns: u64,
    pid1: bool,
    self_pid: i32,
    log: Log,
    phase: Phase,
}

impl Init {
    /// The loop: one blocking wait on the signalfd, with a timeout only
    /// while a grace period runs. Returns the exit code once the child has
    /// exited and no descendant is left.
    fn run(&mut self, signals: &Signals) -> i32 {
        // A child that died before the loop started left a SIGCHLD pending,
        // which the first read picks up; this pass covers the rest.
        if let Some(code) = self.reap() {
            return code;
        }
        loop {
            let timeout = match self.phase {
                Phase::Draining {
                    kill_at: Some(at), ..
                } => Some(at.saturating_sub(sys::monotonic_ns())),
                _ => None,
            };
            match signals.wait(timeout) {
                Some(info) => {
                    if let Some(code) = self.on_signal(info) {
                        return code;
                    }
                }
                None => {
                    if let Phase::Draining { ended, .. } = self.phase {
                        self.log
                            .info(|m| m.s(b"grace period over: sending SIGKILL to what is left"));
                        self.signal_leftovers(SIGKILL);
                        self.phase = Phase::Draining {
                            ended,
                            kill_at: None,
                        };
                    }
                }
            }
        }
    }

    /// Handle one signal; `Some(code)` when the init is done.
    fn on_signal(&mut self, info: SignalInfo) -> Option<i32> {
        self.log.debug(|m| m.s(b"received ").info(info));
        if info.signal == SIGCHLD {
            return self.reap();
        }
        if info.is_fault() && !info.sent_by_process() {
            // The kernel raised it for a fault elsewhere in this process
            // (a forced fault kills us before it reaches the signalfd).
            self.log.debug(|m| {
                m.s(b"not forwarding ")
                    .info(info)
                    .s(b": not sent by a process")
            });
            return None;
        }
        if info.sent_by_process() && info.sender == self.self_pid {
            // Raised by ourselves, e.g. SIGPIPE from writing to a closed
            // stderr: nothing the child should see.
            return None;
        }
        if let Phase::Draining { .. } = self.phase {
            self.log.info(|m| {
                m.s(b"ignoring ")
                    .info(info)
                    .s(b": the child has exited, its leftovers are being stopped")
            });
            return None;
        }
        let to = self
            .rewrite
            .get(info.signal as usize)
            .map_or(info.signal, |&to| i32::from(to));
        if to == 0 {
            self.log
                .debug(|m| m.s(b"dropping ").signal(info.signal).s(b" (--rewrite)"));
            return None;
        }
        let target = if self.forward_to_group {
            -self.child
        } else {
            self.child
        };
        match sys::kill(target, to) {
            Ok(()) => self.log.debug(|m| {
                m.s(b"forwarded ")
                    .signal(info.signal)
                    .s(b" as ")
                    .signal(to)
                    .s(b" to ")
                    .int(target)
            }),
            // It exited and its SIGCHLD is on its way.
            Err(sys::ESRCH) => {}
            Err(errno) => self.log.info(|m| {
                m.s(b"forwarding ")
                    .signal(to)
                    .s(b" to ")
                    .int(target)
                    .s(b": ")
                    .errno(errno)
            }),
        }
        None
    }

    /// Reap what exited; start draining when it was the child, and return
    /// the exit code once nothing is left.
    fn reap(&mut self) -> Option<i32> {
        // The child's end is acted on after the pass, as the in-process
        // init does: what its leftovers get cannot be reaped in this pass.
        let mut child_ended = None;
        let children_remain = loop {
            match rt::wait_any_nohang(Children::Sigchld) {
                Ok(None) => break true,
                Ok(Some((pid, status))) => {
                    let Some(ended) = Ended::from_wait_status(status) else {
                        continue;
                    };
                    if pid == self.child {
                        self.log
                            .info(|m| m.s(b"child ").int(self.child).s(b" ended: ").ended(ended));
                        child_ended = Some(ended);
                    } else {
                        self.log.debug(|m| {
                            m.s(b"reaped orphan ")
                                .int(pid)
                                .s(b" (")
                                .ended(ended)
                                .s(b")")
                        });
                    }
                }
                Err(rt::ECHILD) => break false,
                Err(errno) => fatal(b"reaping children (waitpid -1): ", Cause::Errno(errno)),
            }
        };
        if let Some(ended) = child_ended {
            self.child_exited(ended);
        }
        match self.phase {
            Phase::Draining { ended, .. } if !children_remain => {
                let code = ended.code();
                self.log.info(|m| {
                    m.s(b"exiting with ")
                        .int(code)
                        .s(b" (")
                        .ended(ended)
                        .s(b")")
                });
                Some(code)
            }
            Phase::Draining { kill_at: None, .. } => {
                // After SIGKILL: anything that appeared since (a fork that
                // raced the first pass) gets it too.
                self.signal_leftovers(SIGKILL);
                None
            }
            _ => None,
        }
    }

    /// The child has ended: its leftovers get SIGTERM (and SIGCONT) with
    /// the grace period, or SIGKILL at once when it is 0.
    fn child_exited(&mut self, ended: Ended) {
        if self.grace_ns == 0 {
            self.signal_leftovers(SIGKILL);
            self.phase = Phase::Draining {
                ended,
                kill_at: None,
            };
        } else {
            self.signal_leftovers(SIGTERM);
            // Stopped leftovers could not act on SIGTERM otherwise.
            self.signal_leftovers(SIGCONT);
            self.phase = Phase::Draining {
                ended,
                kill_at: Some(sys::monotonic_ns().saturating_add(self.grace_ns)),
            };
        }
    }

    /// Signal the child's process group and every remaining descendant (as
    /// PID 1: the whole PID namespace but us; as subreaper: our subtree as
    /// /proc shows it).
    fn signal_leftovers(&self, signal: i32) {
        let _ = sys::kill(-self.child, signal);
        if self.pid1 {
            let _ = sys::kill(-1, signal);
        } else if proc_matches_pid_namespace(self.self_pid) {
            for_each_descendant(self.self_pid, |pid| {
                let _ = sys::kill(pid, signal);
            });
        } else {
            self.log.info(|m| {
                m.s(b"/proc is not of our PID namespace: only the child's process group gets ")
                    .signal(signal)
            });
        }
    }
}

/// Whether the mounted /proc shows pids of our own PID namespace (its
/// `self` link names our pid), so that its parent links mean our tree.
fn proc_matches_pid_namespace(self_pid: i32) -> bool {
    let mut target = [0u8; 16];
    match sys::readlink(c"/proc/self", &mut target) {
        Ok(len) => target
            .get(..len)
            .and_then(number)
            .is_some_and(|pid| pid == self_pid as u64),
        Err(_) => false,
    }
}

/// Call `act` with each living descendant of `root` (zombies left out),
/// found through the parent pid of every `/proc/<pid>/stat`. Racy by
/// nature: the caller signals again later.
fn for_each_descendant(root: i32, mut act: impl FnMut(i32)) {
    // (pid, parent) pairs of every process, then the tree from `root`.
    let (Ok(mut pairs), Ok(mut found)) = (sys::PidList::new(), sys::PidList::new()) else {
        return;
    };
    let Ok(dir) = sys::open_read(c"/proc", true) else {
        return;
    };
    let mut entries = [0u8; 4096];
    while let Ok(n @ 1..) = sys::getdents(dir, &mut entries) {
        for name in sys::dir_entries(&entries[..n]) {
            let Some(pid) = number(name).and_then(|n| i32::try_from(n).ok()) else {
                continue;
            };
            if let Some(parent) = living_parent(name) {
                pairs.push(pid);
                pairs.push(parent);
            }
        }
    }
    sys::close(dir);
    found.push(root);
    let mut i = 0;
    while let Some(&parent) = found.as_slice().get(i) {
        for pair in pairs.as_slice().chunks_exact(2) {
            if pair[1] == parent && !found.as_slice().contains(&pair[0]) {
                found.push(pair[0]);
            }
        }
        i += 1;
    }
    found.as_slice().iter().skip(1).for_each(|&pid| act(pid));
}

/// The parent pid in `/proc/<pid>/stat`, unless the process is a zombie
/// (or gone).
fn living_parent(pid: &[u8]) -> Option<i32> {
    let path = sys::CPath::<32>::of(&[b"/proc/", pid, b"/stat"]).ok()?;
    let fd = sys::open_read(path.as_cstr(), false).ok()?;
    let mut stat = [0u8; 1024];
    let len = sys::read(fd, &mut stat);
    sys::close(fd);
    let stat = stat.get(..len.ok()?)?;
    // The fields after the command name, which is in parentheses and may
    // itself hold spaces and parentheses.
    let close = stat.iter().rposition(|&b| b == b')')?;
    let mut fields = stat[close + 1..]
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty());
    let state = fields.next()?;
    let parent = number(fields.next()?)?;
    if state == b"Z" || state == b"X" {
        return None;
    }
    i32::try_from(parent).ok()
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    rt::write_all(STDERR, b"supervisor-init: internal error\n");
    rt::exit(1)
}
