//! The duties of a PID 1 (or a child subreaper), shared by `supervisor init`
//! and `supervisor run`: block every signal and read them from a signalfd
//! (with sender pid and `si_code`), reap every exited child with a
//! `waitpid(-1, WNOHANG)` loop, register as child subreaper, find leftover
//! descendants, and put a forked child back to a clean signal state (empty
//! mask, default dispositions) right before it execs.
//!
//! It does not decide what to do with a signal or with an exited child: the
//! caller matches reaped pids against its own children and applies its own
//! forwarding rules. Signals are plain numbers (`1..=64`), not `nix`'s
//! `Signal` enum, because that enum cannot name real-time signals and a PID 1
//! must forward and report them too.
//!
//! The signal mask is set with the raw `rt_sigprocmask` system call rather
//! than glibc's wrapper: glibc silently keeps its two internal signals (32
//! and 33) unblocked, and with their default action (terminate) any process
//! allowed to signal the init could kill it with `kill -32`. The signalfd is
//! opened over the same full set. A real fault (SIGSEGV, ...) raised by the
//! init itself still kills it: the kernel unblocks a forced fault signal.

use std::fmt;
use std::fs;
use std::mem::{self, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::Pid;

/// The highest signal number on Linux (`SIGRTMAX` as the kernel counts).
pub const SIGNAL_MAX: i32 = 64;

/// The first real-time signal a program can use with glibc (`SIGRTMIN`);
/// 32 and 33 are reserved by glibc for its threads.
pub const SIGRTMIN: i32 = 34;

/// The signals the kernel raises synchronously on a fault of the receiving
/// thread. A PID 1 must never act on these when it caused them itself; it
/// only forwards them when another process sent them.
pub const FAULT_SIGNALS: [i32; 7] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGABRT,
    libc::SIGTRAP,
    libc::SIGSYS,
];

/// `si_code` values of a signal sent by a process (kill, sigqueue, tkill).
const SI_USER: i32 = 0;
const SI_QUEUE: i32 = -1;
const SI_TKILL: i32 = -6;

/// The kernel's `sigset_t` is one 64-bit word on every Linux architecture we
/// build for (x86_64, aarch64); the raw system calls take its size.
const KERNEL_SIGSET_SIZE: usize = mem::size_of::<u64>();

/// A failed PID 1 duty: which one, and the errno.
#[derive(Debug, thiserror::Error)]
pub enum Pid1Error {
    #[error("blocking all signals (rt_sigprocmask): {0}")]
    BlockSignals(Errno),
    #[error("opening a signalfd over all signals: {0}")]
    SignalFd(Errno),
    #[error("waiting for a signal on the signalfd: {0}")]
    ReadSignal(Errno),
    #[error("registering as child subreaper (PR_SET_CHILD_SUBREAPER): {0}")]
    Subreaper(Errno),
    #[error("reaping children (waitpid -1): {0}")]
    Reap(Errno),
    #[error("changing directory to {path}: {errno}")]
    Chdir { path: &'static str, errno: Errno },
}

/// One signal read from the signalfd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalInfo {
    /// The signal number (`1..=64`).
    pub signal: i32,
    /// `si_code`: who or what raised it (`SI_USER`, `SI_KERNEL`, ...).
    pub code: i32,
    /// The sender's pid as seen from our PID namespace; 0 when the sender
    /// lives outside it or the kernel raised the signal.
    pub sender: i32,
}

impl SignalInfo {
    /// Whether a process sent it (kill, sigqueue, tkill/tgkill), as opposed
    /// to the kernel raising it (a fault, a tty, a timer, ...).
    pub fn sent_by_process(&self) -> bool {
        matches!(self.code, SI_USER | SI_QUEUE | SI_TKILL)
    }

    /// Whether it is one of the synchronous fault signals
    /// ([`FAULT_SIGNALS`]).
    pub fn is_fault(&self) -> bool {
        FAULT_SIGNALS.contains(&self.signal)
    }
}

impl fmt::Display for SignalInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (code {}, from pid {})",
            signal_name(self.signal),
            self.code,
            self.sender
        )
    }
}

/// Every signal of this process, blocked and readable from a signalfd.
///
/// Create it first thing in `main`, before any thread exists: the mask is
/// per thread and a thread created earlier keeps its own. The signalfd is
/// close-on-exec and non-blocking; [`Signals::wait`] blocks in `poll`, so an
/// idle PID 1 never wakes up. [`AsFd`] lets an epoll loop watch it instead.
#[derive(Debug)]
pub struct Signals {
    fd: OwnedFd,
}

impl Signals {
    /// Block every signal (including glibc's internal 32 and 33), reset
    /// every disposition to the default (an inherited `SIG_IGN` would
    /// otherwise discard a signal before the signalfd sees it, and an
    /// inherited ignored SIGCHLD would make the kernel reap for us), and
    /// open a signalfd over all of them.
    pub fn block_all() -> Result<Signals, Pid1Error> {
        let all: u64 = !0;
        // SAFETY: rt_sigprocmask reads one kernel sigset (8 bytes) from a
        // valid pointer and writes nothing (old set is NULL).
        let ret = unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &all as *const u64,
                std::ptr::null_mut::<u64>(),
                KERNEL_SIGSET_SIZE,
            )
        };
        Errno::result(ret).map_err(Pid1Error::BlockSignals)?;
        // With everything blocked, no default action can fire in between.
        default_dispositions();
        // SAFETY: signalfd4 with fd -1 creates a new descriptor; it reads
        // one kernel sigset from a valid pointer.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_signalfd4,
                -1,
                &all as *const u64,
                KERNEL_SIGSET_SIZE,
                libc::SFD_CLOEXEC | libc::SFD_NONBLOCK,
            )
        };
        let raw = Errno::result(ret).map_err(Pid1Error::SignalFd)?;
        let raw = i32::try_from(raw).map_err(|_| Pid1Error::SignalFd(Errno::EBADF))?;
        // SAFETY: the kernel just returned this descriptor to us and nothing
        // else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Signals { fd })
    }

    /// Read one pending signal without blocking; `None` when none is
    /// pending.
    pub fn read(&self) -> Result<Option<SignalInfo>, Pid1Error> {
        let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
        let size = mem::size_of::<libc::signalfd_siginfo>();
        loop {
            // SAFETY: reads at most `size` bytes into memory we own; the
            // signalfd only ever returns whole `signalfd_siginfo` records.
            let ret = unsafe { libc::read(self.fd.as_raw_fd(), info.as_mut_ptr().cast(), size) };
            match Errno::result(ret) {
                Ok(n) if n as usize == size => break,
                Ok(_) => return Err(Pid1Error::ReadSignal(Errno::EIO)),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Ok(None),
                Err(errno) => return Err(Pid1Error::ReadSignal(errno)),
            }
        }
        // SAFETY: the read above filled the whole record.
        let info = unsafe { info.assume_init() };
        Ok(Some(SignalInfo {
            signal: info.ssi_signo as i32,
            code: info.ssi_code,
            sender: info.ssi_pid as i32,
        }))
    }

    /// Block until a signal arrives or `timeout` passes (`None`: forever);
    /// `Ok(None)` on timeout.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<Option<SignalInfo>, Pid1Error> {
        loop {
            if let Some(info) = self.read()? {
                return Ok(Some(info));
            }
            let poll_timeout = match timeout {
                None => PollTimeout::NONE,
                // Round up so that a deadline is never woken early.
                Some(t) => {
                    let ms = t.as_nanos().div_ceil(1_000_000);
                    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
                }
            };
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, poll_timeout) {
                Ok(0) => return Ok(None),
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(errno) => return Err(Pid1Error::ReadSignal(errno)),
            }
        }
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It called exit with this code.
    Exited(i32),
    /// A signal killed it.
    Signaled { signal: i32, core_dumped: bool },
}

impl ExitStatus {
    /// Decode a `waitpid` status word; `None` for stop/continue reports.
    pub fn from_raw(status: i32) -> Option<ExitStatus> {
        if libc::WIFEXITED(status) {
            Some(ExitStatus::Exited(libc::WEXITSTATUS(status)))
        } else if libc::WIFSIGNALED(status) {
            Some(ExitStatus::Signaled {
                signal: libc::WTERMSIG(status),
                core_dumped: libc::WCOREDUMP(status),
            })
        } else {
            None
        }
    }

    /// The shell's convention: the exit code, or 128 + the signal.
    pub fn code(&self) -> i32 {
        match *self {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled { signal, .. } => 128 + signal,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitStatus::Exited(code) => write!(f, "exit code {code}"),
            ExitStatus::Signaled {
                signal,
                core_dumped,
            } => {
                write!(f, "killed by {}", signal_name(signal))?;
                if core_dumped {
                    write!(f, " (core dumped)")?;
                }
                Ok(())
            }
        }
    }
}

/// The result of one reaping pass.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reaped {
    /// Every child that had exited, in the order the kernel gave them.
    pub exited: Vec<(Pid, ExitStatus)>,
    /// Whether children (running or stopped) remain; `false` once waitpid
    /// says ECHILD, i.e. this process has no descendant left (a PID 1 or a
    /// subreaper inherits every orphan of its subtree).
    pub children_remain: bool,
}

/// Reap every child that has exited, without blocking
/// (`waitpid(-1, WNOHANG)` until nothing is left to reap).
///
/// The caller matches the pids against its own children; the others are
/// orphans a PID 1 or subreaper inherited, and reaping them is all they need.
pub fn reap() -> Result<Reaped, Pid1Error> {
    let mut reaped = Reaped::default();
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes one int into memory we own.
        let ret = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        match Errno::result(ret) {
            Ok(0) => {
                reaped.children_remain = true;
                return Ok(reaped);
            }
            Ok(pid) => {
                if let Some(exit) = ExitStatus::from_raw(status) {
                    reaped.exited.push((Pid::from_raw(pid), exit));
                }
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => {
                reaped.children_remain = false;
                return Ok(reaped);
            }
            Err(errno) => return Err(Pid1Error::Reap(errno)),
        }
    }
}

/// Whether this process is PID 1 of its PID namespace.
pub fn is_pid1() -> bool {
    nix::unistd::getpid() == Pid::from_raw(1)
}

/// Register as child subreaper: orphans of our subtree are re-parented to
/// us instead of the namespace's PID 1, so we can reap and signal them.
pub fn become_subreaper() -> Result<(), Pid1Error> {
    nix::sys::prctl::set_child_subreaper(true).map_err(Pid1Error::Subreaper)
}

/// Change to `/` so that the long-lived init does not keep the mount of its
/// start directory busy. Call it in the parent after forking the child (the
/// child keeps the original directory).
pub fn chdir_root() -> Result<(), Pid1Error> {
    nix::unistd::chdir("/").map_err(|errno| Pid1Error::Chdir { path: "/", errno })
}

/// The kernel's `struct sigaction` for `rt_sigaction` (x86_64 and aarch64
/// share this layout: handler, flags, restorer, 64-bit mask).
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Set every signal's disposition to the default with the raw
/// `rt_sigaction` system call: glibc's wrapper refuses its internal 32 and
/// 33, yet a parent may well leave them ignored (an ignored disposition
/// survives exec). Errors are ignored: the kernel refuses SIGKILL and
/// SIGSTOP, which are always default. Async-signal-safe.
fn default_dispositions() {
    let action = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for signal in 1..=SIGNAL_MAX {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads one fully initialised kernel sigaction
        // (SIG_DFL needs no restorer) and writes nothing (old is NULL).
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                &action as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                KERNEL_SIGSET_SIZE,
            );
        }
    }
}

/// In a forked child, right before exec: default dispositions for every
/// signal, then an empty signal mask (raw `rt_sigprocmask`, so 32 and 33 are
/// unblocked too). Pending signals then act as they would on the program.
///
/// Async-signal-safe: only `sigaction` and `rt_sigprocmask`, no allocation.
pub fn reset_signals_for_exec() -> Result<(), Errno> {
    default_dispositions();
    let empty: u64 = 0;
    // SAFETY: rt_sigprocmask reads one kernel sigset from a valid pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            KERNEL_SIGSET_SIZE,
        )
    };
    Errno::result(ret).map(drop)
}

/// Send signal `signal` (any number, real-time included) to `target` with
/// kill(2)'s meaning: > 0 one process, < -1 a process group, -1 everything
/// we may signal (in a PID namespace: all of it but its PID 1).
pub fn send_signal(target: i32, signal: i32) -> Result<(), Errno> {
    // SAFETY: kill takes plain integers.
    Errno::result(unsafe { libc::kill(target, signal) }).map(drop)
}

/// The pids of every living descendant of `root`, read from `/proc`
/// (`ppid` of each `/proc/<pid>/stat`). Racy by nature: call it again after
/// signalling. Pids are as `/proc` shows them, so `/proc` must belong to our
/// PID namespace (see [`proc_matches_pid_namespace`]). Zombies are left out.
pub fn descendants(root: Pid) -> Vec<Pid> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut parent_of: Vec<(i32, i32)> = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name, which is in parentheses and may
        // itself contain spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let ppid = fields.next().and_then(|s| s.parse::<i32>().ok());
        if let (Some(state), Some(ppid)) = (state, ppid)
            && state != "Z"
            && state != "X"
        {
            parent_of.push((pid, ppid));
        }
    }
    let mut found = vec![root.as_raw()];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        for &(pid, ppid) in &parent_of {
            if ppid == parent && !found.contains(&pid) {
                found.push(pid);
            }
        }
        i += 1;
    }
    found.into_iter().skip(1).map(Pid::from_raw).collect()
}

/// Whether the mounted `/proc` shows pids of our own PID namespace (its
/// `self` link names our pid), so that [`descendants`] is meaningful.
pub fn proc_matches_pid_namespace() -> bool {
    fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse::<i32>().ok()))
        == Some(nix::unistd::getpid().as_raw())
}

/// The conventional name of a signal number: `SIGTERM`, `SIGRTMIN+3`,
/// `SIG32` for glibc's internal ones, `signal 99` when out of range.
pub fn signal_name(signal: i32) -> String {
    let named = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSTKFLT => "SIGSTKFLT",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGTTIN => "SIGTTIN",
        libc::SIGTTOU => "SIGTTOU",
        libc::SIGURG => "SIGURG",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGVTALRM => "SIGVTALRM",
        libc::SIGPROF => "SIGPROF",
        libc::SIGWINCH => "SIGWINCH",
        libc::SIGIO => "SIGIO",
        libc::SIGPWR => "SIGPWR",
        libc::SIGSYS => "SIGSYS",
        _ => "",
    };
    if !named.is_empty() {
        return named.to_string();
    }
    match signal {
        SIGRTMIN => "SIGRTMIN".to_string(),
        SIGNAL_MAX => "SIGRTMAX".to_string(),
        s if s > SIGRTMIN && s < SIGNAL_MAX => format!("SIGRTMIN+{}", s - SIGRTMIN),
        32 | 33 => format!("SIG{signal}"),
        _ => format!("signal {signal}"),
    }
}

/// Parse a signal given as a number (`15`), a name with or without `SIG`
/// (`TERM`, `SIGTERM`, case-insensitive) or a real-time offset
/// (`RTMIN+2`, `RTMAX-1`). Returns `None` unless it names `1..=64`.
pub fn parse_signal(text: &str) -> Option<i32> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i32>() {
        return (1..=SIGNAL_MAX).contains(&n).then_some(n);
    }
    let upper = text.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let offset = |rest: &str| -> Option<i32> {
        if rest.is_empty() {
            Some(0)
        } else {
            rest.parse::<i32>().ok()
        }
    };
    let found = if let Some(rest) = bare.strip_prefix("RTMIN") {
        offset(rest).map(|o| SIGRTMIN + o)
    } else if let Some(rest) = bare.strip_prefix("RTMAX") {
        offset(rest).map(|o| SIGNAL_MAX + o)
    } else {
        (1..SIGRTMIN).find(|&s| signal_name(s).strip_prefix("SIG") == Some(bare))
    };
    found.filter(|s| (1..=SIGNAL_MAX).contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_the_parser() {
        for signal in 1..=SIGNAL_MAX {
            let name = signal_name(signal);
            assert_eq!(parse_signal(&name), Some(signal), "{name}");
            assert_eq!(parse_signal(&signal.to_string()), Some(signal));
        }
    }

    #[test]
    fn parser_accepts_short_and_relative_forms_and_rejects_junk() {
        assert_eq!(parse_signal("term"), Some(libc::SIGTERM));
        assert_eq!(parse_signal("SIGhup"), Some(libc::SIGHUP));
        assert_eq!(parse_signal("RTMIN+2"), Some(36));
        assert_eq!(parse_signal("RTMAX-1"), Some(63));
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("65"), None);
        assert_eq!(parse_signal("RTMAX+1"), None);
        assert_eq!(parse_signal("NOPE"), None);
        assert_eq!(parse_signal(""), None);
    }

    #[test]
    fn exit_status_follows_the_shell_convention() {
        assert_eq!(ExitStatus::Exited(3).code(), 3);
        let killed = ExitStatus::Signaled {
            signal: 34,
            core_dumped: false,
        };
        assert_eq!(killed.code(), 162);
        assert_eq!(killed.to_string(), "killed by SIGRTMIN");
        // A raw wait status: signal 9 in the low bits.
        assert_eq!(
            ExitStatus::from_raw(9),
            Some(ExitStatus::Signaled {
                signal: 9,
                core_dumped: false
            })
        );
        assert_eq!(ExitStatus::from_raw(42 << 8), Some(ExitStatus::Exited(42)));
        // A stop report (0x7f) is not an exit.
        assert_eq!(ExitStatus::from_raw((19 << 8) | 0x7f), None);
    }

    #[test]
    fn fault_signals_only_count_as_sent_when_a_process_sent_them() {
        let kill = SignalInfo {
            signal: libc::SIGSEGV,
            code: SI_USER,
            sender: 7,
        };
        assert!(kill.is_fault() && kill.sent_by_process());
        let fault = SignalInfo { code: 1, ..kill };
        assert!(!fault.sent_by_process());
        let term = SignalInfo {
            signal: libc::SIGTERM,
            ..kill
        };
        assert!(!term.is_fault());
    }
}
