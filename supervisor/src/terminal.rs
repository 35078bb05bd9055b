//! Terminals of `supervisor exec -t`: a new pseudo-terminal pair for the
//! command (its slave becomes the command's controlling terminal, the
//! master stays with us), the caller's own terminal put in raw mode for as
//! long as the relay runs and restored afterwards (also on an error), and
//! the window size copied from the caller's terminal to the pty, at start
//! and on each SIGWINCH. What goes through it is relayed by
//! `exec::relay`; Ctrl-C is a byte like any other in raw mode, and the
//! pty's line discipline turns it into SIGINT for the command's
//! foreground group, as in a local terminal.
//!
//! The ioctls are in `sys`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::termios::{self, SetArg, Termios};

use crate::sys;

/// A terminal operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error("open a pseudo-terminal (openpty): {0}")]
    Open(Errno),
    #[error("duplicate the pty slave: {0}")]
    Duplicate(std::io::Error),
    #[error("read the terminal attributes of fd {fd} (tcgetattr): {errno}")]
    GetAttributes { fd: i32, errno: Errno },
    #[error("put the terminal of fd {fd} in raw mode (tcsetattr): {errno}")]
    SetAttributes { fd: i32, errno: Errno },
}

/// A new pseudo-terminal pair, both ends close-on-exec.
#[derive(Debug)]
pub struct Pty {
    /// Our end: what the command writes is read here, what we write is
    /// its input.
    pub master: OwnedFd,
    /// The command's end: its stdin, stdout, stderr and controlling
    /// terminal.
    pub slave: OwnedFd,
}

impl Pty {
    /// A pair whose window has `size` (when known).
    pub fn open(size: Option<libc::winsize>) -> Result<Pty, TerminalError> {
        let pair = nix::pty::openpty(size.as_ref(), None).map_err(TerminalError::Open)?;
        for fd in [&pair.master, &pair.slave] {
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(TerminalError::Open)?;
        }
        Ok(Pty {
            master: pair.master,
            slave: pair.slave,
        })
    }
}

/// The window size of terminal `fd`, when it is one.
pub fn window_size(fd: BorrowedFd<'_>) -> Option<libc::winsize> {
    sys::window_size(fd).ok()
}

/// Set the window size of terminal `fd` (its foreground group gets
/// SIGWINCH when it changes).
pub fn set_window_size(fd: BorrowedFd<'_>, size: &libc::winsize) -> Result<(), Errno> {
    sys::set_window_size(fd, size)
}

/// Copy the window size of terminal `from` to terminal `to` (nothing when
/// `from` is no terminal).
pub fn copy_window_size(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    if let Some(size) = window_size(from) {
        let _ = sys::set_window_size(to, &size);
    }
}

/// Whether `fd` is a terminal.
pub fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    nix::unistd::isatty(fd).unwrap_or(false)
}

/// The caller's terminal in raw mode (cfmakeraw: no echo, no line editing,
/// no signals from keys, no output processing) until this is dropped,
/// which restores the attributes it had.
#[derive(Debug)]
pub struct RawMode<'fd> {
    fd: BorrowedFd<'fd>,
    saved: Termios,
}

impl<'fd> RawMode<'fd> {
    /// Put terminal `fd` in raw mode.
    pub fn enter(fd: BorrowedFd<'fd>) -> Result<RawMode<'fd>, TerminalError> {
        use std::os::fd::AsRawFd as _;
        let saved = termios::tcgetattr(fd).map_err(|errno| TerminalError::GetAttributes {
            fd: fd.as_raw_fd(),
            errno,
        })?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw).map_err(|errno| {
            TerminalError::SetAttributes {
                fd: fd.as_raw_fd(),
                errno,
            }
        })?;
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        // TCSADRAIN: what we wrote is shown before echo comes back.
        let _ = termios::tcsetattr(self.fd.as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pty_carries_its_window_size_and_raw_mode_is_restored() {
        let size = libc::winsize {
            ws_row: 33,
            ws_col: 101,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = Pty::open(Some(size)).unwrap();
        let got = window_size(pty.slave.as_fd()).unwrap();
        assert_eq!((got.ws_row, got.ws_col), (33, 101));
        assert!(is_terminal(pty.slave.as_fd()));

        let other = Pty::open(None).unwrap();
        copy_window_size(pty.slave.as_fd(), other.master.as_fd());
        let copied = window_size(other.slave.as_fd()).unwrap();
        assert_eq!((copied.ws_row, copied.ws_col), (33, 101));

        let before = termios::tcgetattr(pty.slave.as_fd()).unwrap();
        assert!(before.local_flags.contains(termios::LocalFlags::ECHO));
        {
            let _raw = RawMode::enter(pty.slave.as_fd()).unwrap();
            let raw = termios::tcgetattr(pty.slave.as_fd()).unwrap();
            assert!(!raw.local_flags.contains(termios::LocalFlags::ECHO));
            assert!(!raw.local_flags.contains(termios::LocalFlags::ISIG));
        }
        let after = termios::tcgetattr(pty.slave.as_fd()).unwrap();
        assert_eq!(after.local_flags, before.local_flags);
        assert_eq!(after.input_flags, before.input_flags);
    }
}
