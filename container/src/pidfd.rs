//! Process file descriptors: a handle on one process that cannot be
//! confused with a recycled pid. Open one, signal through it, wait for the
//! process (waitid P_PIDFD) and register it in epoll (it implements
//! [`AsFd`]; it becomes readable when the process exits).
//!
//! It also owns [`ExitStatus`], how a process ended: the one exit status of
//! the workspace, whether it comes from a pidfd or from the supervisor's
//! `waitpid(-1)` reaping ([`ExitStatus::from_wait_status`]).

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::error::{PidFdError, os};
use crate::{signal, sys};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It called exit with this code.
    Exited(i32),
    /// A signal (this number) killed it.
    Signaled(i32),
}

impl ExitStatus {
    /// The exit code, when it exited.
    pub fn code(self) -> Option<i32> {
        match self {
            ExitStatus::Exited(c) => Some(c),
            ExitStatus::Signaled(_) => None,
        }
    }

    /// The signal number, when a signal killed it.
    pub fn signal(self) -> Option<i32> {
        match self {
            ExitStatus::Signaled(s) => Some(s),
            ExitStatus::Exited(_) => None,
        }
    }

    /// The shell / Kubernetes convention: the code, or 128 + signal.
    pub fn as_code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
        }
    }

    /// Decode a `waitpid(2)` status word; `None` for stop and continue
    /// reports, which are not an end.
    pub fn from_wait_status(status: i32) -> Option<ExitStatus> {
        if libc::WIFEXITED(status) {
            Some(ExitStatus::Exited(libc::WEXITSTATUS(status)))
        } else if libc::WIFSIGNALED(status) {
            Some(ExitStatus::Signaled(libc::WTERMSIG(status)))
        } else {
            None
        }
    }

    pub(crate) fn from_siginfo(code: i32, status: i32) -> ExitStatus {
        if code == libc::CLD_EXITED {
            ExitStatus::Exited(status)
        } else {
            ExitStatus::Signaled(status)
        }
    }
}

/// `exit code 3`, `killed by SIGTERM`.
impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitStatus::Exited(code) => write!(f, "exit code {code}"),
            ExitStatus::Signaled(signal) => write!(f, "killed by {}", signal::name(signal)),
        }
    }
}

/// An owned pidfd together with the pid it was opened for.
#[derive(Debug)]
pub struct PidFd {
    fd: OwnedFd,
    pid: i32,
}

impl PidFd {
    /// pidfd_open(pid). To be race-free, `pid` must be a child not yet
    /// waited for (so the pid cannot have been recycled).
    pub fn open(pid: i32) -> Result<PidFd, PidFdError> {
        let fd = sys::pidfd_open(pid).map_err(|e| PidFdError::Open { pid, source: os(e) })?;
        Ok(PidFd { fd, pid })
    }

    /// Wrap a pidfd obtained elsewhere (CLONE_PIDFD) for `pid`.
    pub fn from_owned(fd: OwnedFd, pid: i32) -> PidFd {
        PidFd { fd, pid }
    }

    /// The pid as seen from the namespace that opened the pidfd.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// A second handle on the same process.
    pub fn try_clone(&self) -> Result<PidFd, PidFdError> {
        let fd = self.fd.try_clone().map_err(|source| PidFdError::Dup {
            pid: self.pid,
            source,
        })?;
        Ok(PidFd { fd, pid: self.pid })
    }

    /// Send `signal` (pidfd_send_signal). ESRCH means it has exited.
    pub fn send_signal(&self, signal: Signal) -> Result<(), PidFdError> {
        self.send_raw(signal as i32)
    }

    fn send_raw(&self, signal: i32) -> Result<(), PidFdError> {
        sys::pidfd_send_signal(self.fd.as_raw_fd(), signal).map_err(|e| PidFdError::Signal {
            pid: self.pid,
            signal,
            source: os(e),
        })
    }

    /// Whether the process has not exited yet (a zombie counts as exited).
    pub fn is_alive(&self) -> bool {
        // A pidfd polls readable once the process has exited.
        !matches!(sys::poll_readable(self.fd.as_raw_fd(), 0), Ok(true)) && self.send_raw(0).is_ok()
    }

    /// Reap the process if it has exited; `None` while it runs. Only for
    /// our own children.
    pub fn try_wait(&self) -> Result<Option<ExitStatus>, PidFdError> {
        self.waitid(libc::WEXITED | libc::WNOHANG)
    }

    /// Block until the process exits, and reap it. Only for our own children.
    pub fn wait(&self) -> Result<ExitStatus, PidFdError> {
        loop {
            match self.waitid(libc::WEXITED)? {
                Some(status) => return Ok(status),
                None => continue,
            }
        }
    }

    /// Wait at most `timeout` for the process to exit and reap it.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<Option<ExitStatus>, PidFdError> {
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        sys::poll_readable(self.fd.as_raw_fd(), ms).map_err(|e| PidFdError::Wait {
            pid: self.pid,
            source: os(e),
        })?;
        self.try_wait()
    }

    fn waitid(&self, options: i32) -> Result<Option<ExitStatus>, PidFdError> {
        loop {
            match sys::waitid_pidfd(self.fd.as_raw_fd(), options) {
                Ok(found) => {
                    return Ok(found.map(|(code, status)| ExitStatus::from_siginfo(code, status)));
                }
                Err(libc::EINTR) => continue,
                Err(e) => {
                    return Err(PidFdError::Wait {
                        pid: self.pid,
                        source: os(e),
                    });
                }
            }
        }
    }
}

impl AsFd for PidFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PidFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<PidFd> for OwnedFd {
    fn from(p: PidFd) -> OwnedFd {
        p.fd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_follows_the_shell_convention() {
        assert_eq!(ExitStatus::Exited(3).as_code(), 3);
        let killed = ExitStatus::Signaled(34);
        assert_eq!(killed.as_code(), 162);
        assert_eq!(killed.to_string(), "killed by SIGRTMIN");
        assert_eq!(ExitStatus::Exited(1).to_string(), "exit code 1");
        // A raw wait status: signal 9 in the low bits.
        assert_eq!(
            ExitStatus::from_wait_status(9),
            Some(ExitStatus::Signaled(9))
        );
        assert_eq!(
            ExitStatus::from_wait_status(42 << 8),
            Some(ExitStatus::Exited(42))
        );
        // A stop report (0x7f) is not an exit.
        assert_eq!(ExitStatus::from_wait_status((19 << 8) | 0x7f), None);
    }
}
