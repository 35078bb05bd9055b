//! An instance's stdio as its manifest asks for it, and the input the
//! supervisor holds for `supervisor attach`.
//!
//! Without `stdin` and `tty`: stdin is /dev/null, stdout and stderr two
//! pipes (the log's). With `stdin`: stdin is a pipe whose write end the
//! supervisor keeps open for the instance's whole life, so the process
//! reads what attached clients send and blocks (never sees EOF) while none
//! is attached, as with containerd's stdin FIFO. With `tty`: a new pty,
//! whose slave is the instance's stdin, stdout, stderr and controlling
//! terminal (it runs in a session of its own); the supervisor reads its
//! master as the instance's stdout (CRI logs a tty's output as stdout)
//! and, with `stdin`, writes clients' input to it. `stdinOnce`: the input
//! closes once the first client that sent input detaches (a pipe is
//! closed, a terminal gets its EOF character), until the next instance,
//! as kubelet documents the field.

use std::fs::File;
use std::io::{self, Write as _};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use container::{Command, Stdio, Terminal};

use super::command::CommandError;
use crate::spec;
use crate::terminal::{Pty, TerminalError};

/// Input held for a client beyond this is not read from it until the
/// instance has taken some (back-pressure, not loss).
pub const INPUT_LIMIT: usize = 64 * 1024;

/// The terminal end the supervisor keeps of a tty instance before it runs.
pub(super) struct TerminalMaster(OwnedFd);

/// Set the stdio of `command` for `container`; a tty's master comes back.
pub(super) fn configure(
    container: &spec::Container,
    command: &mut Command,
) -> Result<Option<TerminalMaster>, CommandError> {
    if container.tty {
        let terminal_error = |source: TerminalError| CommandError::Terminal {
            container: container.name.clone(),
            source,
        };
        let pty = Pty::open(None).map_err(terminal_error)?;
        let slave = || {
            pty.slave
                .try_clone()
                .map(Stdio::Fd)
                .map_err(|e| terminal_error(TerminalError::Duplicate(e)))
        };
        command
            .stdin(slave()?)
            .stdout(slave()?)
            .stderr(slave()?)
            .terminal(Terminal::Controlling);
        return Ok(Some(TerminalMaster(pty.master)));
    }
    command.stdin(if container.stdin {
        Stdio::Piped
    } else {
        Stdio::Null
    });
    command.stdout(Stdio::Piped);
    command.stderr(Stdio::Piped);
    Ok(None)
}

/// A running instance's stdio ends the supervisor holds.
pub(super) struct InstanceStdio {
    pub stdout: Option<File>,
    pub stderr: Option<File>,
    /// Its pty master (resizes), when it has a terminal.
    pub terminal: Option<File>,
    /// Its input, when it has `stdin`.
    pub input: Option<Input>,
}

impl InstanceStdio {
    /// The ends of a started `child` of `container` (`master`: its pty's).
    pub fn of(
        container: &spec::Container,
        child: &mut container::Child,
        master: Option<TerminalMaster>,
    ) -> io::Result<InstanceStdio> {
        let Some(TerminalMaster(master)) = master else {
            return Ok(InstanceStdio {
                stdout: child.stdout.take(),
                stderr: child.stderr.take(),
                terminal: None,
                input: child
                    .stdin
                    .take()
                    .map(|target| Input::new(target, false, container)),
            });
        };
        let master = File::from(master);
        let input = if container.stdin {
            Some(Input::new(master.try_clone()?, true, container))
        } else {
            None
        };
        Ok(InstanceStdio {
            stdout: Some(master.try_clone()?),
            stderr: None,
            terminal: Some(master),
            input,
        })
    }
}

/// An instance's stdin: what attached clients send goes here.
pub struct Input {
    /// The pipe's write end or the pty master; `None` once closed.
    target: Option<File>,
    terminal: bool,
    once: bool,
    /// Read from clients, not taken by the instance yet.
    pending: Vec<u8>,
}

/// What a write to an [`Input`] left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything is with the instance.
    All,
    /// Some is held: wait until the target is writable.
    Held,
    /// The input is closed (by stdinOnce, or the instance closed its end):
    /// what was sent is dropped.
    Closed,
}

impl Input {
    fn new(target: File, terminal: bool, container: &spec::Container) -> Input {
        let _ = crate::supervised::instance::set_nonblocking(&target);
        Input {
            target: Some(target),
            terminal,
            once: container.stdin_once,
            pending: Vec::new(),
        }
    }

    /// Queue `bytes` and write what the instance takes now.
    pub fn write(&mut self, bytes: &[u8]) -> Flushed {
        if self.target.is_none() {
            return Flushed::Closed;
        }
        self.pending.extend_from_slice(bytes);
        self.flush()
    }

    /// Write what is held.
    pub fn flush(&mut self) -> Flushed {
        let Some(target) = &self.target else {
            return Flushed::Closed;
        };
        let mut target = target;
        while !self.pending.is_empty() {
            match target.write(&self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flushed::Held,
                // EPIPE: nothing reads it any more.
                Err(_) => {
                    self.close();
                    return Flushed::Closed;
                }
            }
        }
        Flushed::All
    }

    /// Whether clients' input waits for the instance to read.
    pub fn is_full(&self) -> bool {
        self.pending.len() >= INPUT_LIMIT
    }

    /// The descriptor to wait on for writability.
    pub fn target_fd(&self) -> Option<BorrowedFd<'_>> {
        self.target.as_ref().map(AsFd::as_fd)
    }

    /// Whether the input closes when the first client that sent some
    /// detaches (`stdinOnce`).
    pub fn closes_once_detached(&self) -> bool {
        self.once
    }

    /// Close it: a pipe's end is closed (the instance reads EOF after
    /// what is held); a terminal stays open (closing the master would
    /// hang it up) and gets its EOF character instead, which a reader in
    /// canonical mode takes as the end of its input.
    pub fn close(&mut self) {
        if self.terminal && self.target.is_some() {
            self.pending.push(eof_character(self.target.as_ref()));
            let _ = self.flush();
        }
        self.target = None;
        self.pending.clear();
    }
}

/// The terminal's EOF character (VEOF, ^D unless changed).
fn eof_character(master: Option<&File>) -> u8 {
    master
        .and_then(|m| nix::sys::termios::tcgetattr(m).ok())
        .map_or(4, |t| {
            t.control_chars[nix::sys::termios::SpecialCharacterIndices::VEOF as usize]
        })
}
