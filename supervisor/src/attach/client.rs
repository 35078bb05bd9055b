//! `supervisor attach`: our stdio to a running container's, through its
//! pod's attach socket, as `kubectl attach` reaches it through the kubelet
//! and containerd's CRI `Attach`.
//!
//! kubectl's rules (`staging/src/k8s.io/kubectl/pkg/cmd/attach/attach.go`):
//! `-t` on a container without a tty is dropped with kubectl's message;
//! a container with a tty gets one anyway (its output is one stream); our
//! terminal goes raw only with `-i` and a terminal on stdin, and then
//! "If you don't see a command prompt, try pressing enter." as kubectl
//! says. What the container printed before we attached is in its log
//! (`supervisor logs`), not replayed. Our stdin's end closes our input
//! (for a `stdinOnce` container, its stdin); we then stay until the
//! instance ends, and exit with its exit code. SIGINT, SIGTERM and SIGHUP
//! detach (the container runs on); SIGWINCH sends the new window size.

use std::io::{self, Read as _, Write as _};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::protocol::{Frame, FrameReader, MAX_PAYLOAD, ProtocolError};
use super::server::socket_path;
use crate::exec::{self, ExecError};
use crate::paths::{Layout, PodId};
use crate::pid1::{Pid1Error, Signals};
use crate::terminal::{self, RawMode, TerminalError};

/// What to attach to, and how.
#[derive(Debug, Clone)]
pub struct AttachRequest {
    pub pod: PodId,
    /// `-c` (None: kubectl's default container).
    pub container: Option<String>,
    /// `-i`: pass our stdin.
    pub stdin: bool,
    /// `-t`: our terminal raw, its size sent.
    pub tty: bool,
}

/// Why the attach failed or ended early.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error(transparent)]
    Find(Box<ExecError>),
    #[error("pod {pod}: its attach socket {path}: {source}")]
    Connect {
        pod: PodId,
        path: PathBuf,
        source: io::Error,
    },
    #[error("container {container}: {message}")]
    Refused { container: String, message: String },
    #[error("attach socket: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("attach socket: {what}: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
    #[error("container {container}: the supervisor closed the attach before the container ended")]
    Closed { container: String },
    #[error("poll: {0}")]
    Poll(Errno),
    #[error(transparent)]
    Signals(#[from] Pid1Error),
    #[error(transparent)]
    Terminal(#[from] TerminalError),
}

fn io_error(what: &'static str) -> impl FnOnce(io::Error) -> AttachError {
    move |source| AttachError::Io { what, source }
}

/// Attach; the container instance's exit code when it ends while we are
/// attached, 128 + N when signal N detached us.
pub fn attach(layout: &Layout, request: &AttachRequest) -> Result<i32, AttachError> {
    let (state_dir, container) =
        exec::find_container(layout, &request.pod, request.container.as_deref())
            .map_err(|e| AttachError::Find(Box::new(e)))?;
    let path = socket_path(&state_dir);
    let mut socket = UnixStream::connect(&path).map_err(|source| AttachError::Connect {
        pod: request.pod.clone(),
        path: path.clone(),
        source,
    })?;
    let mut hello = Vec::new();
    Frame::Hello {
        container: container.clone(),
        stdin: request.stdin,
        tty: request.tty,
    }
    .encode(&mut hello);
    socket.write_all(&hello).map_err(io_error("send hello"))?;

    let mut reader = FrameReader::default();
    let mut buf = vec![0u8; MAX_PAYLOAD];
    let (has_stdin, has_tty) = loop {
        match reader.next_frame()? {
            Some(Frame::Attached { stdin, tty, .. }) => break (stdin, tty),
            Some(Frame::Error(message)) => return Err(AttachError::Refused { container, message }),
            Some(_) | None => {}
        }
        let n = socket.read(&mut buf).map_err(io_error("read"))?;
        if n == 0 {
            return Err(AttachError::Closed { container });
        }
        reader.push(&buf[..n]);
    };

    // kubectl's attach: -t follows the container's tty.
    let stdin_fd = io::stdin();
    if request.tty && !has_tty {
        eprintln!("error: Unable to use a TTY - container {container} did not allocate one");
    }
    let send_stdin = request.stdin && has_stdin;
    if request.stdin && !has_stdin {
        eprintln!(
            "warning: container {container} does not take input (stdin: false, or its stdinOnce input is closed): stdin is not sent"
        );
    }
    let raw = has_tty && request.stdin && terminal::is_terminal(stdin_fd.as_fd());
    let signals = Signals::block_all()?;
    let _raw_mode = if raw {
        eprintln!("If you don't see a command prompt, try pressing enter.");
        Some(RawMode::enter(stdin_fd.as_fd())?)
    } else {
        None
    };
    let mut out = Vec::new();
    let send_size = |out: &mut Vec<u8>| {
        if has_tty && let Some(size) = terminal::window_size(stdin_fd.as_fd()) {
            Frame::Resize {
                rows: size.ws_row,
                cols: size.ws_col,
            }
            .encode(out);
        }
    };
    send_size(&mut out);
    socket
        .set_nonblocking(true)
        .map_err(io_error("make the socket non-blocking"))?;

    let mut stdin_open = send_stdin;
    loop {
        let mut fds = vec![
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(
                socket.as_fd(),
                if out.is_empty() {
                    PollFlags::POLLIN
                } else {
                    PollFlags::POLLIN | PollFlags::POLLOUT
                },
            ),
        ];
        // Our stdin is read once what was read before is sent.
        if stdin_open && out.is_empty() {
            fds.push(PollFd::new(stdin_fd.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(AttachError::Poll(errno)),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[0] {
            while let Some(info) = signals.read()? {
                match info.signal {
                    libc::SIGWINCH => send_size(&mut out),
                    libc::SIGINT | libc::SIGTERM | libc::SIGHUP => return Ok(128 + info.signal),
                    _ => {}
                }
            }
        }
        if ready[1] {
            // The frames before an end are read first: an Exit is followed
            // by the end.
            let mut ended = false;
            loop {
                match socket.read(&mut buf) {
                    Ok(0) => {
                        ended = true;
                        break;
                    }
                    Ok(n) => reader.push(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(io_error("read")(e)),
                }
            }
            while let Some(frame) = reader.next_frame()? {
                match frame {
                    Frame::Stdout(data) => write_out(&mut io::stdout().lock(), &data)?,
                    Frame::Stderr(data) => write_out(&mut io::stderr().lock(), &data)?,
                    Frame::Exit(code) => return Ok(code),
                    Frame::Error(message) => {
                        return Err(AttachError::Refused { container, message });
                    }
                    _ => {}
                }
            }
            if ended {
                return Err(AttachError::Closed { container });
            }
        }
        if ready.get(2).copied().unwrap_or(false) {
            match nix::unistd::read(stdin_fd.as_fd(), &mut buf) {
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    Frame::StdinClose.encode(&mut out);
                }
                Ok(n) => Frame::Stdin(buf[..n].to_vec()).encode(&mut out),
            }
        }
        while !out.is_empty() {
            match socket.write(&out) {
                Ok(n) => {
                    out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return Err(AttachError::Closed { container }),
            }
        }
    }
}

/// Our output; a reader that went away (EPIPE) ends nothing.
fn write_out(out: &mut dyn io::Write, data: &[u8]) -> Result<(), AttachError> {
    match out.write_all(data).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(io_error("write our output")(e)),
        _ => Ok(()),
    }
}
