//! The relay between `supervisor exec` and its command: our stdin to the
//! command's input (a pipe, or the pty master), the command's output (two
//! pipes, or the pty master) to our stdout and stderr, until the command's
//! waiter exits; then what is left in the output is drained and the
//! waiter reaped, its status returned.
//!
//! One `poll` loop over the signalfd, the waiter's pidfd, our stdin and the
//! command's outputs. The command's input is non-blocking and buffered: a
//! command that does not read its input while it writes its output never
//! blocks the relay (the output keeps flowing, our stdin waits). Signals:
//! SIGWINCH copies our terminal's window size to the pty; SIGINT, SIGTERM,
//! SIGHUP and SIGQUIT end the command's whole tree (SIGKILL to every
//! descendant of its waiter, as an exec probe's timeout does) and the
//! relay then ends with its status, as kubelet ends an exec whose stream
//! is gone.

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use container::{Child, PidFdError};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::pid1::{Pid1Error, Signals};
use crate::probe::kill_tree;
use crate::terminal;

/// The relay failed (the command is then left to its waiter).
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("poll: {0}")]
    Poll(Errno),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
    #[error(transparent)]
    Signals(#[from] Pid1Error),
    #[error("wait for the command: {0}")]
    Wait(#[from] PidFdError),
}

/// Where an output of the command goes.
#[derive(Debug, Clone, Copy)]
enum Sink {
    Stdout,
    Stderr,
}

impl Sink {
    /// Write `bytes` out. A reader that went away (EPIPE) is no error:
    /// the command still runs to its end, as kubectl's streams do.
    fn write(self, bytes: &[u8]) -> Result<(), RelayError> {
        let result = match self {
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush())
            }
            Sink::Stderr => io::stderr().lock().write_all(bytes),
        };
        match result {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(RelayError::Io {
                what: "write the command's output",
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

/// The command's input: where our stdin goes, and what is not written yet.
struct Input {
    target: File,
    pending: Vec<u8>,
    /// Closed when our stdin ends (a pipe; a pty stays open).
    close_at_eof: bool,
}

/// The command runs with pipes: relay stdin (when piped), stdout, stderr.
pub fn run_pipes(child: &mut Child, signals: &Signals) -> Result<i32, RelayError> {
    let input = child.stdin.take().map(|target| Input {
        target,
        pending: Vec::new(),
        close_at_eof: true,
    });
    let mut outputs = Vec::new();
    if let Some(out) = child.stdout.take() {
        outputs.push((out, Sink::Stdout));
    }
    if let Some(err) = child.stderr.take() {
        outputs.push((err, Sink::Stderr));
    }
    relay(child, signals, input, outputs, None)
}

/// The command runs on a pty: our stdin to its master, its master to our
/// stdout, and window size changes to it.
pub fn run_tty(child: &Child, master: OwnedFd, signals: &Signals) -> Result<i32, RelayError> {
    let master = File::from(master);
    let input = master.try_clone().map_err(|source| RelayError::Io {
        what: "duplicate the pty master",
        source,
    })?;
    let resize = master.try_clone().map_err(|source| RelayError::Io {
        what: "duplicate the pty master",
        source,
    })?;
    let input = Input {
        target: input,
        pending: Vec::new(),
        close_at_eof: false,
    };
    relay(
        child,
        signals,
        Some(input),
        vec![(master, Sink::Stdout)],
        Some(resize.as_fd()),
    )
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<(), RelayError> {
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(|e| RelayError::Io {
        what: "read the flags of a relayed descriptor",
        source: e.into(),
    })?;
    fcntl(
        fd,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(|e| RelayError::Io {
        what: "make a relayed descriptor non-blocking",
        source: e.into(),
    })
    .map(drop)
}

/// What one read gave.
enum Read {
    Data(usize),
    /// Nothing now (EAGAIN).
    Nothing,
    /// End of file (a pty whose every slave is closed says EIO).
    End,
}

fn read_some(mut file: &File, buf: &mut [u8]) -> Result<Read, RelayError> {
    loop {
        match file.read(buf) {
            Ok(0) => return Ok(Read::End),
            Ok(n) => return Ok(Read::Data(n)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Read::Nothing),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => return Ok(Read::End),
            Err(source) => {
                return Err(RelayError::Io {
                    what: "read the command's output",
                    source,
                });
            }
        }
    }
}

fn relay(
    child: &Child,
    signals: &Signals,
    mut input: Option<Input>,
    mut outputs: Vec<(File, Sink)>,
    resize: Option<BorrowedFd<'_>>,
) -> Result<i32, RelayError> {
    let stdin = io::stdin();
    let stdin_file = stdin.as_fd().try_clone_to_owned().map(File::from);
    let mut stdin_open = input.is_some() && stdin_file.is_ok();
    if let Some(input) = &input {
        set_nonblocking(input.target.as_fd())?;
    }
    for (file, _) in &outputs {
        set_nonblocking(file.as_fd())?;
    }
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let wants_output = input.as_ref().is_some_and(|i| !i.pending.is_empty());
        let mut fds = vec![
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(child.pidfd.as_fd(), PollFlags::POLLIN),
        ];
        // Our stdin is read only when what was read before is written.
        let stdin_slot = match (&stdin_file, stdin_open && !wants_output) {
            (Ok(file), true) => {
                fds.push(PollFd::new(file.as_fd(), PollFlags::POLLIN));
                Some(fds.len() - 1)
            }
            _ => None,
        };
        let input_slot = match &input {
            Some(i) if wants_output => {
                fds.push(PollFd::new(i.target.as_fd(), PollFlags::POLLOUT));
                Some(fds.len() - 1)
            }
            _ => None,
        };
        let first_output = fds.len();
        for (file, _) in &outputs {
            fds.push(PollFd::new(file.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(RelayError::Poll(errno)),
        }
        let ready = |fd: &PollFd<'_>| {
            fd.revents().is_some_and(|r| {
                r.intersects(
                    PollFlags::POLLIN
                        | PollFlags::POLLOUT
                        | PollFlags::POLLHUP
                        | PollFlags::POLLERR,
                )
            })
        };
        let ready: Vec<bool> = fds.iter().map(ready).collect();
        drop(fds);
        if ready[0] {
            while let Some(info) = signals.read()? {
                match info.signal {
                    libc::SIGWINCH => {
                        if let Some(master) = resize {
                            terminal::copy_window_size(stdin.as_fd(), master);
                        }
                    }
                    libc::SIGINT | libc::SIGTERM | libc::SIGHUP | libc::SIGQUIT => {
                        kill_tree(child.pid)
                    }
                    _ => {}
                }
            }
        }
        let exited = ready[1];
        // Output first: it is what the command has already done.
        let mut closed = Vec::new();
        for (i, (file, sink)) in outputs.iter().enumerate() {
            if !ready[first_output + i] {
                continue;
            }
            match read_some(file, &mut buf)? {
                Read::Data(n) => sink.write(&buf[..n])?,
                Read::Nothing => {}
                Read::End => closed.push(i),
            }
        }
        for i in closed.into_iter().rev() {
            outputs.remove(i);
        }
        if let (Some(slot), Ok(file)) = (stdin_slot, &stdin_file)
            && ready[slot]
        {
            match read_some(file, &mut buf) {
                Ok(Read::Data(n)) => {
                    if let Some(i) = &mut input {
                        i.pending.extend_from_slice(&buf[..n]);
                    }
                }
                Ok(Read::Nothing) => {}
                // Our stdin ended (or cannot be read): a pipe is closed so
                // the command sees its end; a pty stays.
                Ok(Read::End) | Err(_) => {
                    stdin_open = false;
                    if input.as_ref().is_some_and(|i| i.close_at_eof) {
                        input = None;
                    }
                }
            }
        }
        if input_slot.is_some_and(|slot| ready[slot])
            && let Some(i) = &mut input
        {
            match (&i.target).write(&i.pending) {
                Ok(n) => {
                    i.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The command closed its input: nothing more goes there.
                Err(_) => {
                    input = None;
                    stdin_open = false;
                }
            }
        }
        if exited {
            break;
        }
    }
    // The waiter has reaped the whole tree: every writer of the outputs is
    // gone, what is in them is the rest.
    for (file, sink) in &outputs {
        while let Read::Data(n) = read_some(file, &mut buf)? {
            sink.write(&buf[..n])?;
        }
    }
    Ok(child.pidfd.wait()?.as_code())
}
