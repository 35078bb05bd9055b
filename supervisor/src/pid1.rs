//! The duties of a PID 1 (or a child subreaper), shared by `supervisor init`
//! and `supervisor run`: block every signal and read them from a signalfd
//! (with sender pid and `si_code`), reap every exited child with a
//! `waitpid(-1, WNOHANG)` loop, register as child subreaper, and find
//! leftover descendants.
//!
//! It does not decide what to do with a signal or with an exited child: the
//! caller matches reaped pids against its own children and applies its own
//! forwarding rules. It does not start children either: that is
//! `container::Command` (whose pre-exec path resets the signal state).
//! Signals are plain numbers (`1..=64`, named by [`container::signal`]),
//! not `nix`'s `Signal` enum, because that enum cannot name real-time
//! signals and a PID 1 must forward and report them too.
//!
//! The signal mask is set with the raw `rt_sigprocmask` system call rather
//! than glibc's wrapper: glibc silently keeps its two internal signals (32
//! and 33) unblocked, and with their default action (terminate) any process
//! allowed to signal the init could kill it with `kill -32`. The signalfd is
//! opened over the same full set. A real fault (SIGSEGV, ...) raised by the
//! init itself still kills it: the kernel unblocks a forced fault signal.
//! The raw calls themselves are in `sys`.

use std::fmt;
use std::fs;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use container::ExitStatus;
use container::signal::{self, SIGNAL_MAX};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::Pid;

use crate::sys;

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
            signal::name(self.signal),
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
        sys::block_all_signals().map_err(Pid1Error::BlockSignals)?;
        // With everything blocked, no default action can fire in between.
        default_dispositions();
        let fd = sys::signalfd_all().map_err(Pid1Error::SignalFd)?;
        Ok(Signals { fd })
    }

    /// Read one pending signal without blocking; `None` when none is
    /// pending.
    pub fn read(&self) -> Result<Option<SignalInfo>, Pid1Error> {
        let info = sys::read_signalfd(self.fd.as_fd()).map_err(Pid1Error::ReadSignal)?;
        Ok(info.map(|info| SignalInfo {
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

/// One child that ended, as a reaping pass found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReapedChild {
    pub pid: Pid,
    pub status: ExitStatus,
    /// The signal that killed it also dumped its core.
    pub core_dumped: bool,
}

/// `exit code 3`, `killed by SIGSEGV (core dumped)`.
impl fmt::Display for ReapedChild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        if self.core_dumped {
            write!(f, " (core dumped)")?;
        }
        Ok(())
    }
}

/// The result of one reaping pass.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reaped {
    /// Every child that had exited, in the order the kernel gave them.
    pub exited: Vec<ReapedChild>,
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
        match sys::wait_any_nohang() {
            Ok(None) => {
                reaped.children_remain = true;
                return Ok(reaped);
            }
            Ok(Some((pid, raw))) => {
                if let Some(status) = ExitStatus::from_wait_status(raw) {
                    reaped.exited.push(ReapedChild {
                        pid: Pid::from_raw(pid),
                        status,
                        core_dumped: libc::WIFSIGNALED(raw) && libc::WCOREDUMP(raw),
                    });
                }
            }
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

/// Set every signal's disposition to the default: glibc's wrapper refuses
/// its internal 32 and 33, yet a parent may well leave them ignored (an
/// ignored disposition survives exec). Errors are ignored: the kernel
/// refuses SIGKILL and SIGSTOP, which are always default.
fn default_dispositions() {
    for signal in 1..=SIGNAL_MAX {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            let _ = sys::set_default_disposition(signal);
        }
    }
}

/// Send signal `signal` (any number, real-time included) to `target` with
/// kill(2)'s meaning: > 0 one process, < -1 a process group, -1 everything
/// we may signal (in a PID namespace: all of it but its PID 1).
pub fn send_signal(target: i32, signal: i32) -> Result<(), Errno> {
    sys::kill(target, signal)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reaped_child_says_when_it_dumped_core() {
        let child = ReapedChild {
            pid: Pid::from_raw(7),
            status: ExitStatus::Signaled(libc::SIGSEGV),
            core_dumped: true,
        };
        assert_eq!(child.to_string(), "killed by SIGSEGV (core dumped)");
        let child = ReapedChild {
            status: ExitStatus::Exited(3),
            core_dumped: false,
            ..child
        };
        assert_eq!(child.to_string(), "exit code 3");
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
