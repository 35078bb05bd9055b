//! The supervisor's end of `supervisor attach`: the pod's attach socket
//! in its state dir, served from the pod loop like every other fd.
//!
//! Nothing here blocks the loop or the containers: sockets are
//! non-blocking; what a client sends for a container's stdin waits in the
//! instance's [`Input`] (up to [`stdio::INPUT_LIMIT`], then the container's
//! clients are not read until it takes some); output for a client waits
//! in its buffer up to [`OUTPUT_LIMIT`], beyond which that client is
//! detached (a client that does not read must not hold the container's
//! output up, nor grow the supervisor: its log has every line). Only root
//! may connect: the socket is 0600 in a 0700 dir of the pod's state dir,
//! and the peer's uid is checked (SO_PEERCRED) as well.

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::sys::epoll::EpollFlags;

use super::protocol::{Frame, FrameReader};
use crate::event_loop::{EventLoop, EventLoopError};
use crate::logs::Stream;
use crate::supervised::stdio::{Flushed, Input};

/// Output held for one client beyond this detaches it.
pub const OUTPUT_LIMIT: usize = 1024 * 1024;

/// Clients at once, per pod.
pub const MAX_CLIENTS: usize = 64;

/// The attach socket's path in the pod's state dir: in a dir of its own,
/// 0700, so no one else reaches it even before its own mode is set.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join("attach").join("attach.sock")
}

/// The server could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AttachServerError {
    #[error("attach socket {path}: {source}")]
    Socket { path: PathBuf, source: io::Error },
    #[error("attach socket {path}: {source}")]
    Watch {
        path: PathBuf,
        source: EventLoopError,
    },
}

/// What the server needs of the pod's containers.
pub trait AttachTargets {
    /// The index of the container named `name`.
    fn find(&self, name: &str) -> Option<usize>;
    /// Its name, and whether it has stdin and a tty.
    fn describe(&self, index: usize) -> (&str, bool, bool);
    /// Its running instance's stdin and pty master (None: not running).
    fn ends(&mut self, index: usize) -> Option<(Option<&mut Input>, Option<&File>)>;
}

/// Event-loop tokens of the server.
#[derive(Debug, Clone, Copy)]
pub struct AttachTokens {
    /// The listening socket.
    pub listener: u64,
    /// Client `n` is `clients + n`.
    pub clients: u64,
    /// Container `index`'s input, waited on for writability.
    pub input: fn(usize) -> u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    /// Waiting for its Hello.
    Greeting,
    /// Attached to container `index`; `stdin`: its input goes there.
    Attached { index: usize, stdin: bool },
    /// Sending what is left (an Exit or an Error), then closed.
    Closing,
}

struct Client {
    stream: UnixStream,
    reader: FrameReader,
    out: Vec<u8>,
    state: ClientState,
    /// The events it is watched for now (None: not in the loop).
    watched: Option<EpollFlags>,
}

/// The pod's attach socket and its clients.
pub struct AttachServer {
    listener: UnixListener,
    path: PathBuf,
    tokens: AttachTokens,
    clients: Vec<Option<Client>>,
    /// Containers whose input is waited on for writability.
    input_watched: Vec<usize>,
}

impl AttachServer {
    /// Listen on `state_dir`/attach/attach.sock (0600), watched as
    /// `tokens.listener`.
    pub fn listen(
        state_dir: &Path,
        tokens: AttachTokens,
        event_loop: &EventLoop,
    ) -> Result<AttachServer, AttachServerError> {
        let path = socket_path(state_dir);
        let socket_error = |source| AttachServerError::Socket {
            path: path.clone(),
            source,
        };
        let dir = path.parent().expect("a file in a dir");
        std::fs::create_dir_all(dir).map_err(socket_error)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(socket_error)?;
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(socket_error(e)),
            _ => {}
        }
        let listener = UnixListener::bind(&path).map_err(socket_error)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(socket_error)?;
        listener.set_nonblocking(true).map_err(socket_error)?;
        event_loop
            .watch(listener.as_fd(), tokens.listener)
            .map_err(|source| AttachServerError::Watch {
                path: path.clone(),
                source,
            })?;
        Ok(AttachServer {
            listener,
            path,
            tokens,
            clients: Vec::new(),
            input_watched: Vec::new(),
        })
    }

    /// Whether a client is attached to container `index` (its output is
    /// then copied for them).
    pub fn has_clients(&self, index: usize) -> bool {
        self.clients
            .iter()
            .flatten()
            .any(|c| matches!(c.state, ClientState::Attached { index: i, .. } if i == index))
    }

    /// The listener is readable: take every waiting connection.
    pub fn on_accept(&mut self, event_loop: &EventLoop) {
        loop {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return, // EAGAIN: none left
            };
            if !peer_is_ours(&stream) || stream.set_nonblocking(true).is_err() {
                continue;
            }
            let mut client = Client {
                stream,
                reader: FrameReader::default(),
                out: Vec::new(),
                state: ClientState::Greeting,
                watched: None,
            };
            let slot = match self.clients.iter().position(Option::is_none) {
                Some(slot) => slot,
                None if self.clients.len() < MAX_CLIENTS => {
                    self.clients.push(None);
                    self.clients.len() - 1
                }
                None => {
                    // One try to say why; the client is not kept.
                    Frame::Error(format!("too many attached clients (at most {MAX_CLIENTS})"))
                        .encode(&mut client.out);
                    let _ = client.stream.write(&client.out);
                    continue;
                }
            };
            self.clients[slot] = Some(client);
            self.update(slot, false, event_loop);
        }
    }

    /// Client `token` is ready.
    pub fn on_client(
        &mut self,
        token: u64,
        targets: &mut dyn AttachTargets,
        event_loop: &EventLoop,
    ) {
        let slot = (token - self.tokens.clients) as usize;
        let Some(Some(client)) = self.clients.get_mut(slot) else {
            return;
        };
        if !client.out.is_empty() && !flush(client) {
            self.drop_client(slot, targets, event_loop);
            return;
        }
        if client.state == ClientState::Closing {
            if client.out.is_empty() {
                self.drop_client(slot, targets, event_loop);
            }
            return;
        }
        if self.paused(slot, targets) {
            self.update(slot, true, event_loop);
            return;
        }
        let mut buf = [0u8; 16 * 1024];
        let mut gone = false;
        // A bounded number of reads per wake-up (level-triggered: the rest
        // comes on the next).
        for _ in 0..4 {
            let Some(Some(client)) = self.clients.get_mut(slot) else {
                return;
            };
            match client.stream.read(&mut buf) {
                Ok(0) => {
                    gone = true;
                    break;
                }
                Ok(n) => client.reader.push(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    gone = true;
                    break;
                }
            }
            self.handle_frames(slot, targets, event_loop);
            if self.paused(slot, targets) {
                break;
            }
        }
        if gone {
            self.drop_client(slot, targets, event_loop);
        } else {
            self.update_slot(slot, targets, event_loop);
        }
    }

    /// What container `index`'s running instance wrote on `stream`: to
    /// each of its clients (a tty's output is one stream, stdout).
    pub fn on_output(
        &mut self,
        index: usize,
        stream: Stream,
        bytes: &[u8],
        targets: &mut dyn AttachTargets,
        event_loop: &EventLoop,
    ) {
        for slot in 0..self.clients.len() {
            let Some(client) = &mut self.clients[slot] else {
                continue;
            };
            if !matches!(client.state, ClientState::Attached { index: i, .. } if i == index) {
                continue;
            }
            if client.out.len() + bytes.len() > OUTPUT_LIMIT {
                let (name, _, _) = targets.describe(index);
                eprintln!(
                    "supervisor: [{name}] an attached client does not read its output ({} bytes held): detached",
                    client.out.len()
                );
                self.drop_client(slot, targets, event_loop);
                continue;
            }
            let make = match stream {
                Stream::Stdout => Frame::Stdout,
                Stream::Stderr => Frame::Stderr,
            };
            Frame::chunks(bytes, make, &mut client.out);
            if !flush(client) {
                self.drop_client(slot, targets, event_loop);
                continue;
            }
            self.update_slot(slot, targets, event_loop);
        }
    }

    /// Container `index`'s instance ended with `exit_code`, its output
    /// all sent: its clients get Exit and are closed once it is out.
    pub fn on_instance_end(
        &mut self,
        index: usize,
        exit_code: i32,
        targets: &mut dyn AttachTargets,
        event_loop: &EventLoop,
    ) {
        self.input_watched.retain(|&i| i != index);
        for slot in 0..self.clients.len() {
            let Some(client) = &mut self.clients[slot] else {
                continue;
            };
            if !matches!(client.state, ClientState::Attached { index: i, .. } if i == index) {
                continue;
            }
            Frame::Exit(exit_code).encode(&mut client.out);
            client.state = ClientState::Closing;
            self.finish_or_wait(slot, targets, event_loop);
        }
    }

    /// Container `index`'s input can take more: write what is held, and
    /// read its clients again once it is below the limit.
    pub fn on_input_writable(
        &mut self,
        index: usize,
        targets: &mut dyn AttachTargets,
        event_loop: &EventLoop,
    ) {
        let flushed = match targets.ends(index) {
            Some((Some(input), _)) => input.flush(),
            _ => Flushed::Closed,
        };
        if flushed != Flushed::Held {
            self.unwatch_input(index, targets, event_loop);
        }
        for slot in 0..self.clients.len() {
            if self.clients[slot].is_some() {
                self.update_slot(slot, targets, event_loop);
            }
        }
    }

    /// Close every client (the pod is going) and remove the socket.
    pub fn shut_down(mut self, targets: &mut dyn AttachTargets, event_loop: &EventLoop) {
        for slot in 0..self.clients.len() {
            if self.clients[slot].is_some() {
                self.drop_client(slot, targets, event_loop);
            }
        }
        let _ = event_loop.unwatch(self.listener.as_fd());
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }

    fn handle_frames(
        &mut self,
        slot: usize,
        targets: &mut dyn AttachTargets,
        event_loop: &EventLoop,
    ) {
        loop {
            let Some(Some(client)) = self.clients.get_mut(slot) else {
                return;
            };
            let frame = match client.reader.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(error) => {
                    self.refuse(slot, format!("bad frame: {error}"), targets, event_loop);
                    return;
                }
            };
            match (client.state, frame) {
                (
                    ClientState::Greeting,
                    Frame::Hello {
                        container, stdin, ..
                    },
                ) => self.hello(slot, &container, stdin, targets, event_loop),
                (ClientState::Attached { index, stdin: true }, Frame::Stdin(data)) => {
                    let flushed = match targets.ends(index) {
                        Some((Some(input), _)) => input.write(&data),
                        _ => Flushed::Closed,
                    };
                    if flushed == Flushed::Held {
                        self.watch_input(index, targets, event_loop);
                    }
                    if self.paused(slot, targets) {
                        return;
                    }
                }
                // Input from a client that may not send any is dropped:
                // it was told (Attached) that stdin is not taken.
                (ClientState::Attached { stdin: false, .. }, Frame::Stdin(_)) => {}
                (ClientState::Attached { index, stdin }, Frame::StdinClose) => {
                    client.state = ClientState::Attached {
                        index,
                        stdin: false,
                    };
                    if stdin {
                        close_once(index, targets);
                    }
                }
                (ClientState::Attached { index, .. }, Frame::Resize { rows, cols }) => {
                    if let Some((_, Some(terminal))) = targets.ends(index) {
                        let size = libc::winsize {
                            ws_row: rows,
                            ws_col: cols,
                            ws_xpixel: 0,
                            ws_ypixel: 0,
                        };
                        let _ = crate::terminal::set_window_size(terminal.as_fd(), &size);
                    }
                }
                (ClientState::Closing, _) => return,
                (_, frame) => {
                    let message = format!("unexpected frame {frame:?}");
                    self.refuse(slot, message, targets, event_loop);
                    return;
                }
            }
        }
    }

    fn hello(
        &mut self,
        slot: usize,
        container: &str,
        wants_stdin: bool,
        targets: &mut dyn AttachTargets,
        event_loop: &EventLoop,
    ) {
        let Some(index) = targets.find(container) else {
            let message = format!("container {container} not found in the pod");
            return self.refuse(slot, message, targets, event_loop);
        };
        let (name, has_stdin, tty) = targets.describe(index);
        let name = name.to_string();
        let Some((input, _)) = targets.ends(index) else {
            let message = format!("container {name} is not running");
            return self.refuse(slot, message, targets, event_loop);
        };
        let stdin = wants_stdin && input.is_some_and(|i| i.target_fd().is_some());
        let Some(Some(client)) = self.clients.get_mut(slot) else {
            return;
        };
        // To a client that sends input: whether it is taken; to one that
        // does not: whether the container has stdin at all.
        Frame::Attached {
            container: name,
            stdin: if wants_stdin { stdin } else { has_stdin },
            tty,
        }
        .encode(&mut client.out);
        client.state = ClientState::Attached { index, stdin };
    }

    /// Tell the client why, then close it.
    fn refuse(
        &mut self,
        slot: usize,
        message: String,
        targets: &mut dyn AttachTargets,
        event_loop: &EventLoop,
    ) {
        let Some(Some(client)) = self.clients.get_mut(slot) else {
            return;
        };
        if let ClientState::Attached { index, stdin: true } = client.state {
            close_once(index, targets);
        }
        Frame::Error(message).encode(&mut client.out);
        client.state = ClientState::Closing;
        self.finish_or_wait(slot, targets, event_loop);
    }

    /// A closing client: gone once its output is out.
    fn finish_or_wait(
        &mut self,
        slot: usize,
        targets: &mut dyn AttachTargets,
        event_loop: &EventLoop,
    ) {
        let Some(Some(client)) = self.clients.get_mut(slot) else {
            return;
        };
        if !flush(client) || client.out.is_empty() {
            self.drop_client(slot, targets, event_loop);
        } else {
            self.update(slot, false, event_loop);
        }
    }

    fn drop_client(
        &mut self,
        slot: usize,
        targets: &mut dyn AttachTargets,
        event_loop: &EventLoop,
    ) {
        let Some(client) = self.clients.get_mut(slot).and_then(Option::take) else {
            return;
        };
        if client.watched.is_some() {
            let _ = event_loop.unwatch(client.stream.as_fd());
        }
        if let ClientState::Attached { index, stdin: true } = client.state {
            close_once(index, targets);
        }
    }

    /// Whether client `slot` is not read now: its container's input is
    /// full.
    fn paused(&self, slot: usize, targets: &mut dyn AttachTargets) -> bool {
        match self.clients.get(slot) {
            Some(Some(Client {
                state: ClientState::Attached { index, .. },
                ..
            })) => matches!(targets.ends(*index), Some((Some(input), _)) if input.is_full()),
            _ => false,
        }
    }

    fn update_slot(
        &mut self,
        slot: usize,
        targets: &mut dyn AttachTargets,
        event_loop: &EventLoop,
    ) {
        let paused = self.paused(slot, targets);
        self.update(slot, paused, event_loop);
    }

    /// Watch client `slot` for what it waits on: input unless `paused`
    /// or closing, writability while output is held.
    fn update(&mut self, slot: usize, paused: bool, event_loop: &EventLoop) {
        let token = self.tokens.clients + slot as u64;
        let Some(Some(client)) = self.clients.get_mut(slot) else {
            return;
        };
        let mut wanted = EpollFlags::empty();
        if !paused && client.state != ClientState::Closing {
            wanted |= EpollFlags::EPOLLIN;
        }
        if !client.out.is_empty() {
            wanted |= EpollFlags::EPOLLOUT;
        }
        let fd = client.stream.as_fd();
        let result = match (client.watched, wanted.is_empty()) {
            (Some(now), false) if now == wanted => Ok(()),
            (Some(_), false) => event_loop.rewatch(fd, token, wanted),
            (Some(_), true) => event_loop.unwatch(fd),
            (None, false) => event_loop.watch_with(fd, token, wanted),
            (None, true) => Ok(()),
        };
        match result {
            Ok(()) => client.watched = (!wanted.is_empty()).then_some(wanted),
            Err(error) => eprintln!("supervisor: attach client: {error}"),
        }
    }

    fn watch_input(
        &mut self,
        index: usize,
        targets: &mut dyn AttachTargets,
        event_loop: &EventLoop,
    ) {
        if self.input_watched.contains(&index) {
            return;
        }
        let Some((Some(input), _)) = targets.ends(index) else {
            return;
        };
        let Some(fd) = input.target_fd() else { return };
        match event_loop.watch_with(fd, (self.tokens.input)(index), EpollFlags::EPOLLOUT) {
            Ok(()) => self.input_watched.push(index),
            Err(error) => eprintln!("supervisor: attach input: {error}"),
        }
    }

    fn unwatch_input(
        &mut self,
        index: usize,
        targets: &mut dyn AttachTargets,
        event_loop: &EventLoop,
    ) {
        if !self.input_watched.contains(&index) {
            return;
        }
        self.input_watched.retain(|&i| i != index);
        if let Some((Some(input), _)) = targets.ends(index)
            && let Some(fd) = input.target_fd()
        {
            let _ = event_loop.unwatch(fd);
        }
    }
}

/// stdinOnce: the first client that sent input has detached.
fn close_once(index: usize, targets: &mut dyn AttachTargets) {
    if let Some((Some(input), _)) = targets.ends(index)
        && input.closes_once_detached()
    {
        input.close();
    }
}

/// Write what the client's buffer holds; false when the client is gone.
fn flush(client: &mut Client) -> bool {
    while !client.out.is_empty() {
        match client.stream.write(&client.out) {
            Ok(0) => return false,
            Ok(n) => {
                client.out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
    true
}

/// Only our own user (root) may attach.
fn peer_is_ours(stream: &UnixStream) -> bool {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    getsockopt(stream, PeerCredentials)
        .is_ok_and(|cred| cred.uid() == nix::unistd::geteuid().as_raw())
}
