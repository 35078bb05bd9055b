//! Container output: what the event loop read from a container's stdout and
//! stderr pipes goes (1) to the supervisor's own stdout as `[name] line` and
//! (2) to CRI-format log files that `supervisor logs` (and kubelet tooling)
//! reads. Nothing here blocks the loop or grows without bound.
//!
//! * [`ContainerLog`]: one per container. Splits bytes into lines per stream
//!   (a partial line waits in a buffer of at most `max_line` bytes; a longer
//!   line is cut into `P` records ending with an `F` record, as containerd
//!   does; a partial line at EOF is written as `F`). Records are
//!   `<RFC3339Nano> <stdout|stderr> <P|F> <content>\n`, appended to
//!   `<log dir>/<pod>/<container>/<restartCount>.log`. A record is never
//!   split across files: before a record would push the file past
//!   `max_file_size`, the file is renamed to `<N>.log.<k>` (k = 1, 2, ... in
//!   creation order, so the order survives wall-clock jumps) and a new
//!   `<N>.log` starts; only the newest `max_files - 1` rotated parts are kept
//!   (kubelet: containerLogMaxSize 10 MiB, containerLogMaxFiles 5). When
//!   instance N starts, instances older than N-1 are deleted (kubelet keeps
//!   the previous instance for `logs -p`).
//! * [`Echo`]: the supervisor's stdout, shared by all containers (both of a
//!   container's streams go there, so their order is kept), written
//!   without ever blocking. Decision: a bounded buffer (64 KiB) collects
//!   the lines of one read (written with one write per feed) and absorbs
//!   bursts; when it is full and stdout takes nothing, whole lines are
//!   dropped and counted, and once stdout drains a notice `[supervisor]
//!   dropped N lines ...` is written.
//!   Lines are never torn: a line is buffered whole or dropped whole. The log
//!   files are the complete record; the echo is best effort. A pipe or tty
//!   stdout is reopened through `/proc/self/fd/1` with `O_NONBLOCK` (a new
//!   open file description, so the flag never leaks to whoever shares ours);
//!   a socket (journald) is written with `MSG_DONTWAIT`; a regular file is
//!   written plainly. The loop may poll [`Echo::fd`] for writability while
//!   [`Echo::has_pending`] and call [`Echo::flush`].
//! * `supervisor logs` ([`main`]): prints the `<content>` of one instance
//!   (`-p`: the previous one), `-f` follows it across rotations and restarts
//!   until the pod is gone.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::sys::socket::{MsgFlags, send};

use crate::paths::{self, Layout, PodId};
use crate::time::format_rfc3339_nano;

/// Which pipe the bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The container's fd 1.
    Stdout,
    /// The container's fd 2.
    Stderr,
}

impl Stream {
    /// The CRI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// Limits of the log files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// Longest record content; longer lines become P records (CRI: 16 KiB).
    pub max_line: usize,
    /// Size at which `<N>.log` is rotated (kubelet: 10 MiB).
    pub max_file_size: u64,
    /// Files kept per instance, current included (kubelet: 5).
    pub max_files: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_line: 16 * 1024,
            max_file_size: 10 * 1024 * 1024,
            max_files: 5,
        }
    }
}

/// Errors of log files and the `logs` command.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An I/O operation on a log file or directory failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (create, open, write, rotate, read, remove).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A name that cannot be a path component.
    #[error(transparent)]
    Name(#[from] paths::NameError),
    /// `logs` found no instance (or no previous one with `-p`).
    #[error("{what}container {container:?} in pod {pod} not found (looked in {dir})")]
    NotFound {
        /// "previous terminated " or "".
        what: &'static str,
        /// The pod.
        pod: String,
        /// The container.
        container: String,
        /// The directory searched.
        dir: PathBuf,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LogError + 'a {
    move |source| LogError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

// ---------------------------------------------------------------- echo

/// Bytes the echo buffers while stdout is not writable.
pub const ECHO_BUFFER: usize = 64 * 1024;

#[derive(Debug)]
enum Target {
    /// A pipe, tty or file; writes return WouldBlock instead of blocking
    /// when the descriptor is non-blocking.
    File(File),
    /// A stream socket: `send(MSG_DONTWAIT)`.
    Socket(OwnedFd),
    /// Output disabled (or stdout broke: EPIPE and the like).
    Discard,
}

/// The supervisor's stdout for `[container] line` echoes. See the module
/// docs for the policy.
#[derive(Debug)]
pub struct Echo {
    target: Target,
    pending: Vec<u8>,
    capacity: usize,
    dropped: u64,
    dropped_total: u64,
}

impl Echo {
    fn with_target(target: Target, capacity: usize) -> Self {
        Echo {
            target,
            pending: Vec::new(),
            capacity,
            dropped: 0,
            dropped_total: 0,
        }
    }

    /// The supervisor's own stdout, opened so writes never block.
    pub fn stdout() -> io::Result<Self> {
        let fd = io::stdout().as_fd().try_clone_to_owned()?;
        let file = File::from(fd);
        let kind = file.metadata()?.file_type();
        let target = if kind.is_socket() {
            Target::Socket(file.into())
        } else if kind.is_fifo() || kind.is_char_device() {
            // A new open file description: O_NONBLOCK stays ours.
            match OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open("/proc/self/fd/1")
            {
                Ok(reopened) => Target::File(reopened),
                // No /proc: a plain write (may block on a full pipe).
                Err(_) => Target::File(file),
            }
        } else {
            Target::File(file)
        };
        Ok(Self::with_target(target, ECHO_BUFFER))
    }

    /// An echo to `fd` (set non-blocking by the caller), buffering at most
    /// `capacity` bytes. For tests and embedding.
    pub fn to_fd(fd: OwnedFd, capacity: usize) -> Self {
        Self::with_target(Target::File(File::from(fd)), capacity)
    }

    /// No echo at all.
    pub fn disabled() -> Self {
        Self::with_target(Target::Discard, 0)
    }

    /// The descriptor to poll for writability while [`Echo::has_pending`].
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.target {
            Target::File(f) => Some(f.as_fd()),
            Target::Socket(s) => Some(s.as_fd()),
            Target::Discard => None,
        }
    }

    /// Bytes wait for stdout to drain.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Lines dropped since the start because stdout was not writable.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    /// One write attempt: bytes written, 0 when it would block.
    fn try_write(&mut self, bytes: &[u8]) -> usize {
        let result = match &mut self.target {
            Target::File(f) => f.write(bytes),
            Target::Socket(s) => send(
                s.as_raw_fd(),
                bytes,
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            )
            .map_err(io::Error::from),
            Target::Discard => Ok(bytes.len()),
        };
        match result {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(_) => {
                // stdout is gone (EPIPE, EIO): the log files still have it all.
                self.target = Target::Discard;
                self.pending.clear();
                bytes.len()
            }
        }
    }

    /// Writes what is buffered, as far as stdout takes it; then the notice of
    /// dropped lines. Returns true when nothing is left pending.
    pub fn flush(&mut self) -> bool {
        loop {
            while !self.pending.is_empty() {
                let pending = std::mem::take(&mut self.pending);
                let n = self.try_write(&pending);
                self.pending = pending;
                if matches!(self.target, Target::Discard) {
                    self.pending.clear();
                }
                if n == 0 {
                    return false;
                }
                self.pending.drain(..n.min(self.pending.len()));
            }
            if self.dropped == 0 {
                break;
            }
            let notice = format!(
                "[supervisor] dropped {} lines of container output: stdout was not writable\n",
                self.dropped
            );
            self.dropped = 0;
            self.pending.extend_from_slice(notice.as_bytes());
        }
        if self.pending.capacity() > 2 * self.capacity.max(4096) {
            self.pending = Vec::new();
        }
        true
    }

    /// Queues `[container] content\n` whole, or drops it whole (counted) when
    /// the buffer is full and stdout does not take it. [`ContainerLog`]
    /// calls [`Echo::flush`] after each feed, so one read costs one write.
    pub fn line(&mut self, container: &str, content: &[u8]) {
        if matches!(self.target, Target::Discard) {
            return;
        }
        let len = container.len() + 3 + content.len();
        if !self.pending.is_empty() && self.pending.len() + len > self.capacity {
            self.flush();
            if !self.pending.is_empty() && self.pending.len() + len > self.capacity {
                self.dropped += 1;
                self.dropped_total += 1;
                return;
            }
        }
        // An empty buffer takes one line of any length (at most max_line).
        self.pending.push(b'[');
        self.pending.extend_from_slice(container.as_bytes());
        self.pending.extend_from_slice(b"] ");
        self.pending.extend_from_slice(content);
        self.pending.push(b'\n');
    }
}

// ---------------------------------------------------------------- files

/// Batches records before one write (bounded: flushed at this size).
const BATCH: usize = 32 * 1024;

/// One container's log sink: line splitting, CRI files, rotation, echo.
#[derive(Debug)]
pub struct ContainerLog {
    name: String,
    dir: PathBuf,
    config: LogConfig,
    restart_count: u32,
    file: File,
    size: u64,
    next_part: u32,
    partial: [Vec<u8>; 2],
    batch: Vec<u8>,
}

impl ContainerLog {
    /// Creates `<log root>/<namespace>_<pod>_<uid>/<container>/` and opens (appending)
    /// `<restart_count>.log`; deletes instances older than the previous one.
    /// `restart_count` 0 is a new run of the pod: files an earlier run left
    /// there are deleted first, so `logs` never shows a stale instance.
    pub fn open(
        layout: &Layout,
        pod: &PodId,
        container: &str,
        restart_count: u32,
        config: LogConfig,
    ) -> Result<Self, LogError> {
        paths::check_name("container", container)?;
        let dir = layout.container_log_dir(pod, container);
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        if restart_count == 0 {
            remove_logs(&dir, |_| true)?;
        }
        let (file, size, next_part) = open_instance(&dir, restart_count)?;
        prune_instances(&dir, restart_count)?;
        Ok(ContainerLog {
            name: container.to_owned(),
            dir,
            config,
            restart_count,
            file,
            size,
            next_part,
            partial: [Vec::new(), Vec::new()],
            batch: Vec::new(),
        })
    }

    /// The current instance's file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(paths::log_file_name(self.restart_count))
    }

    /// The instance number (restartCount) being written.
    pub fn restart_count(&self) -> u32 {
        self.restart_count
    }

    /// Feeds bytes read from one stream at `now`: complete lines become F
    /// records (and echoes), over-long ones P records; the rest waits.
    pub fn feed(
        &mut self,
        stream: Stream,
        mut bytes: &[u8],
        now: SystemTime,
        echo: &mut Echo,
    ) -> Result<(), LogError> {
        let stamp = format_rfc3339_nano(now);
        let result = (|| {
            while !bytes.is_empty() {
                match bytes.iter().position(|&b| b == b'\n') {
                    Some(end) => {
                        self.push(stream, &bytes[..end], &stamp, echo)?;
                        self.emit_partial(stream, b'F', &stamp, echo)?;
                        bytes = &bytes[end + 1..];
                    }
                    None => {
                        self.push(stream, bytes, &stamp, echo)?;
                        break;
                    }
                }
            }
            Ok(())
        })();
        let flushed = self.flush_batch();
        echo.flush();
        result.and(flushed)
    }

    /// The stream reached EOF: a pending partial line is written as F.
    pub fn finish(
        &mut self,
        stream: Stream,
        now: SystemTime,
        echo: &mut Echo,
    ) -> Result<(), LogError> {
        if !self.partial[stream.index()].is_empty() {
            let stamp = format_rfc3339_nano(now);
            self.emit_partial(stream, b'F', &stamp, echo)?;
        }
        echo.flush();
        self.flush_batch()
    }

    /// A new instance starts: flushes what the old one left, then appends to
    /// `<restart_count>.log` and prunes older instances.
    pub fn restart(
        &mut self,
        restart_count: u32,
        now: SystemTime,
        echo: &mut Echo,
    ) -> Result<(), LogError> {
        self.finish(Stream::Stdout, now, echo)?;
        self.finish(Stream::Stderr, now, echo)?;
        let (file, size, next_part) = open_instance(&self.dir, restart_count)?;
        self.file = file;
        self.size = size;
        self.next_part = next_part;
        self.restart_count = restart_count;
        prune_instances(&self.dir, restart_count)
    }

    /// Appends to the stream's partial line, cutting P records whenever more
    /// than `max_line` bytes are waiting.
    fn push(
        &mut self,
        stream: Stream,
        mut seg: &[u8],
        stamp: &str,
        echo: &mut Echo,
    ) -> Result<(), LogError> {
        let max = self.config.max_line.max(1);
        loop {
            let buf = &mut self.partial[stream.index()];
            let room = max - buf.len().min(max);
            if seg.len() <= room {
                buf.extend_from_slice(seg);
                return Ok(());
            }
            buf.extend_from_slice(&seg[..room]);
            seg = &seg[room..];
            self.emit_partial(stream, b'P', stamp, echo)?;
        }
    }

    /// Writes the stream's buffered content as one record and clears it.
    fn emit_partial(
        &mut self,
        stream: Stream,
        tag: u8,
        stamp: &str,
        echo: &mut Echo,
    ) -> Result<(), LogError> {
        let content = std::mem::take(&mut self.partial[stream.index()]);
        let result = self.record(stream, tag, stamp, &content, echo);
        let mut content = content;
        content.clear();
        if content.capacity() <= 4096 {
            // Keep small buffers; long-line buffers are given back.
            self.partial[stream.index()] = content;
        }
        result
    }

    fn record(
        &mut self,
        stream: Stream,
        tag: u8,
        stamp: &str,
        content: &[u8],
        echo: &mut Echo,
    ) -> Result<(), LogError> {
        echo.line(&self.name, content);
        let len = (stamp.len() + 1 + stream.as_str().len() + 3 + content.len() + 1) as u64;
        if self.size > 0 && self.size + len > self.config.max_file_size {
            self.rotate()?;
        }
        self.batch.extend_from_slice(stamp.as_bytes());
        self.batch.push(b' ');
        self.batch.extend_from_slice(stream.as_str().as_bytes());
        self.batch.extend_from_slice(&[b' ', tag, b' ']);
        self.batch.extend_from_slice(content);
        self.batch.push(b'\n');
        self.size += len;
        if self.batch.len() >= BATCH {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<(), LogError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let result = self.file.write_all(&self.batch);
        self.batch.clear();
        if self.batch.capacity() > 2 * BATCH {
            self.batch = Vec::new();
        }
        let path = self.path();
        result.map_err(io_err("write", &path))
    }

    /// `<N>.log` -> `<N>.log.<k>`, new `<N>.log`, drop the oldest parts.
    fn rotate(&mut self) -> Result<(), LogError> {
        self.flush_batch()?;
        let current = self.path();
        let part = self.dir.join(format!(
            "{}.{}",
            paths::log_file_name(self.restart_count),
            self.next_part
        ));
        if self.config.max_files > 1 {
            fs::rename(&current, &part).map_err(io_err("rotate", &current))?;
            self.next_part += 1;
        } else {
            fs::remove_file(&current).map_err(io_err("rotate", &current))?;
        }
        self.file = open_append(&current)?;
        self.size = 0;
        let parts = rotated_parts(&self.dir, self.restart_count)?;
        let keep = self.config.max_files.saturating_sub(1);
        for (_, old) in parts.iter().take(parts.len().saturating_sub(keep)) {
            fs::remove_file(old).map_err(io_err("remove", old))?;
        }
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(io_err("open", path))
}

/// Opens `<n>.log` for appending: (file, its size, next rotated part number).
fn open_instance(dir: &Path, n: u32) -> Result<(File, u64, u32), LogError> {
    let path = dir.join(paths::log_file_name(n));
    let file = open_append(&path)?;
    let size = file.metadata().map_err(io_err("stat", &path))?.len();
    let next = rotated_parts(dir, n)?.last().map_or(1, |(k, _)| k + 1);
    Ok((file, size, next))
}

/// `<n>.log.<k>` files, sorted by k.
pub fn rotated_parts(dir: &Path, n: u32) -> Result<Vec<(u32, PathBuf)>, LogError> {
    let prefix = format!("{}.", paths::log_file_name(n));
    let mut parts = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("read", dir))?.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(k) = name
            .strip_prefix(&prefix)
            .and_then(|k| k.parse::<u32>().ok())
        {
            parts.push((k, entry.path()));
        }
    }
    parts.sort();
    Ok(parts)
}

/// Instance numbers that have a `<n>.log`, ascending.
pub fn instances(dir: &Path) -> Result<Vec<u32>, LogError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("read", dir))?.flatten() {
        let name = entry.file_name();
        if let Some(n) = name
            .to_str()
            .and_then(|s| s.strip_suffix(".log"))
            .and_then(|s| s.parse::<u32>().ok())
        {
            found.push(n);
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Deletes every file of instances older than `current - 1`.
fn prune_instances(dir: &Path, current: u32) -> Result<(), LogError> {
    let keep_from = current.saturating_sub(1);
    remove_logs(dir, |n| n < keep_from)
}

/// Deletes `<n>.log` and `<n>.log.<k>` for every `n` that `doomed` picks.
fn remove_logs(dir: &Path, doomed: impl Fn(u32) -> bool) -> Result<(), LogError> {
    for entry in fs::read_dir(dir).map_err(io_err("read", dir))?.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let mut fields = name.split('.');
        let number = fields.next().and_then(|n| n.parse::<u32>().ok());
        let is_log = fields.next() == Some("log");
        if let (Some(n), true) = (number, is_log)
            && doomed(n)
        {
            let path = entry.path();
            fs::remove_file(&path).map_err(io_err("remove", &path))?;
        }
    }
    Ok(())
}

/// The files of one instance, oldest first: rotated parts, then `<n>.log`.
pub fn instance_files(dir: &Path, n: u32) -> Result<Vec<PathBuf>, LogError> {
    let mut files: Vec<PathBuf> = rotated_parts(dir, n)?.into_iter().map(|(_, p)| p).collect();
    files.push(dir.join(paths::log_file_name(n)));
    Ok(files)
}

// ---------------------------------------------------------------- reading

/// One parsed CRI log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CriRecord<'a> {
    /// The RFC3339Nano stamp as written.
    pub time: &'a str,
    /// stdout or stderr.
    pub stream: Stream,
    /// A P (partial) record: the line continues in the next record.
    pub partial: bool,
    /// The content, without the newline.
    pub content: &'a [u8],
}

/// Parses `<time> <stream> <P|F> <content>` (no trailing newline).
pub fn parse_cri_line(line: &[u8]) -> Option<CriRecord<'_>> {
    let mut fields = line.splitn(4, |&b| b == b' ');
    let time = std::str::from_utf8(fields.next()?).ok()?;
    let stream = match fields.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let partial = match fields.next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    let content = fields.next().unwrap_or(&[]);
    Some(CriRecord {
        time,
        stream,
        partial,
        content,
    })
}

/// Writes the content of every complete record in `data` (kubectl logs
/// style: P records joined, F records end the line). Returns the bytes
/// consumed: a trailing incomplete line is left for later.
fn print_records(data: &[u8], out: &mut impl Write) -> io::Result<usize> {
    let mut consumed = 0;
    while let Some(end) = data[consumed..].iter().position(|&b| b == b'\n') {
        let line = &data[consumed..consumed + end];
        if let Some(record) = parse_cri_line(line) {
            out.write_all(record.content)?;
            if !record.partial {
                out.write_all(b"\n")?;
            }
        }
        consumed += end + 1;
    }
    Ok(consumed)
}

/// What `supervisor logs` shows: one container's log, the current or the
/// previous instance, once or followed.
#[derive(Debug, Clone)]
pub struct LogRequest {
    /// Follow the log (across rotations and restarts) until the pod is gone.
    pub follow: bool,
    /// The previous instance of the container.
    pub previous: bool,
    /// The pod.
    pub pod: PodId,
    /// The container.
    pub container: String,
}

/// Why `show` stopped: the log could not be read, or the output could not
/// be written (a closed pipe is the reader's choice, not an error).
#[derive(Debug)]
pub enum ShowError {
    /// The log: missing, unreadable.
    Log(LogError),
    /// The output.
    Output(io::Error),
}

impl From<LogError> for ShowError {
    fn from(e: LogError) -> Self {
        ShowError::Log(e)
    }
}

impl From<io::Error> for ShowError {
    fn from(e: io::Error) -> Self {
        ShowError::Output(e)
    }
}

/// How often the follower looks for new data (it is its own process, so a
/// short poll costs the supervisor nothing).
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// Writes the log `request` names to `out`.
pub fn show(layout: &Layout, args: &LogRequest, out: &mut impl Write) -> Result<(), ShowError> {
    paths::check_name("container", &args.container).map_err(LogError::from)?;
    let dir = layout.container_log_dir(&args.pod, &args.container);
    let not_found = |what| LogError::NotFound {
        what,
        pod: args.pod.to_string(),
        container: args.container.clone(),
        dir: dir.clone(),
    };
    let found = instances(&dir).map_err(|_| not_found(""))?;
    let n = if args.previous {
        found
            .iter()
            .rev()
            .nth(1)
            .copied()
            .ok_or_else(|| not_found("previous terminated "))?
    } else {
        found.last().copied().ok_or_else(|| not_found(""))?
    };
    let mut follower = Follower::start(&dir, n, out)?;
    if !args.follow || args.previous {
        return Ok(());
    }
    let status = layout.status_file(&args.pod);
    let mut current = n;
    loop {
        std::thread::sleep(FOLLOW_POLL);
        follower.drain(out)?;
        out.flush()?;
        if follower.replaced() {
            // Rotated (maybe several times since the last look).
            follower.catch_up(&dir, current, out)?;
            continue;
        }
        let newest = instances(&dir).ok().and_then(|v| v.last().copied());
        if let Some(next) = newest.filter(|&m| m > current) {
            // A new instance: the old one's file is complete.
            follower.drain(out)?;
            follower = Follower::start(&dir, next, out)?;
            current = next;
            continue;
        }
        // The pod is gone, or its supervisor is: nothing more will come.
        if !dir.is_dir() || !status.exists() || !crate::reclaim::supervisor_alive(layout, &args.pod)
        {
            follower.drain(out)?;
            return Ok(());
        }
    }
}

fn print_file(path: &Path, out: &mut impl Write) -> Result<(), ShowError> {
    let data = match fs::read(path) {
        Ok(data) => data,
        // Pruned between listing and reading.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("read", path)(e).into()),
    };
    print_records(&data, out)?;
    Ok(())
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Reads one file incrementally, complete lines only.
struct Follower {
    path: PathBuf,
    file: Option<File>,
    ino: Option<(u64, u64)>,
    carry: Vec<u8>,
}

impl Follower {
    fn open(path: &Path) -> Result<Self, LogError> {
        let file = match File::open(path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err("open", path)(e)),
        };
        let ino = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| (m.dev(), m.ino()));
        Ok(Follower {
            path: path.to_path_buf(),
            file,
            ino,
            carry: Vec::new(),
        })
    }

    /// Opens instance `n`'s current file first, then prints the rotated parts
    /// older than it and the file itself. Opening first means a rotation
    /// racing with the listing is seen later by [`Follower::replaced`].
    fn start(dir: &Path, n: u32, out: &mut impl Write) -> Result<Self, ShowError> {
        let mut follower = Follower::open(&dir.join(paths::log_file_name(n)))?;
        for (_, part) in rotated_parts(dir, n)? {
            if follower.ino.is_some() && file_id(&part) == follower.ino {
                break;
            }
            print_file(&part, out)?;
        }
        follower.drain(out)?;
        Ok(follower)
    }

    /// After a rotation: finishes the old file, prints the parts rotated
    /// after it, then continues on the current file.
    fn catch_up(&mut self, dir: &Path, n: u32, out: &mut impl Write) -> Result<(), ShowError> {
        self.drain(out)?;
        let parts = rotated_parts(dir, n)?;
        let ours = parts.iter().position(|(_, p)| file_id(p) == self.ino);
        // Not found: ours was pruned already; everything left is newer.
        let newer = ours.map_or(0, |i| i + 1);
        for (_, part) in &parts[newer..] {
            print_file(part, out)?;
        }
        *self = Follower::open(&dir.join(paths::log_file_name(n)))?;
        self.drain(out)
    }

    fn drain(&mut self, out: &mut impl Write) -> Result<(), ShowError> {
        let Some(file) = &mut self.file else {
            return Ok(());
        };
        let mut chunk = [0u8; 64 * 1024];
        loop {
            let n = file.read(&mut chunk).map_err(io_err("read", &self.path))?;
            if n == 0 {
                return Ok(());
            }
            self.carry.extend_from_slice(&chunk[..n]);
            let used = print_records(&self.carry, out)?;
            self.carry.drain(..used);
        }
    }

    /// Whether the path now names another file than the one being read.
    fn replaced(&self) -> bool {
        let now = file_id(&self.path);
        now.is_some() && now != self.ino
    }
}

#[cfg(test)]
mod tests {
    fn pod_id() -> PodId {
        PodId::new("default", "pod").unwrap()
    }

    use super::*;
    use std::os::fd::OwnedFd;

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn setup(config: LogConfig) -> (tempfile::TempDir, Layout, ContainerLog) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().join("state"), dir.path().join("logs"));
        let log = ContainerLog::open(&layout, &pod_id(), "web", 0, config).unwrap();
        (dir, layout, log)
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap()
    }

    fn content_of(layout: &Layout, previous: bool) -> String {
        let args = LogRequest {
            follow: false,
            previous,
            pod: pod_id(),
            container: "web".into(),
        };
        let mut out = Vec::new();
        show(layout, &args, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lines_become_cri_records_and_partials_wait() {
        let (_d, layout, mut log) = setup(LogConfig::default());
        let mut echo = Echo::disabled();
        log.feed(Stream::Stdout, b"hello\nwor", t0(), &mut echo)
            .unwrap();
        log.feed(Stream::Stderr, b"oops\n", t0(), &mut echo)
            .unwrap();
        let later = t0() + Duration::from_millis(250);
        log.feed(Stream::Stdout, b"ld\n\n", later, &mut echo)
            .unwrap();
        log.feed(Stream::Stdout, b"tail", later, &mut echo).unwrap();
        log.finish(Stream::Stdout, later, &mut echo).unwrap();
        let file = layout.container_log_file(&pod_id(), "web", 0);
        assert_eq!(
            read(&file),
            "2027-01-15T08:00:00Z stdout F hello\n\
             2027-01-15T08:00:00Z stderr F oops\n\
             2027-01-15T08:00:00.25Z stdout F world\n\
             2027-01-15T08:00:00.25Z stdout F \n\
             2027-01-15T08:00:00.25Z stdout F tail\n"
        );
        assert_eq!(content_of(&layout, false), "hello\noops\nworld\n\ntail\n");
    }

    #[test]
    fn long_lines_are_cut_into_partial_records() {
        let config = LogConfig {
            max_line: 4,
            ..LogConfig::default()
        };
        let (_d, layout, mut log) = setup(config);
        let mut echo = Echo::disabled();
        log.feed(Stream::Stdout, b"abcdefghij\nabcd\n", t0(), &mut echo)
            .unwrap();
        log.feed(Stream::Stdout, b"abcde", t0(), &mut echo).unwrap();
        log.feed(Stream::Stdout, b"\n", t0(), &mut echo).unwrap();
        let tags: Vec<String> = read(&layout.container_log_file(&pod_id(), "web", 0))
            .lines()
            .map(|l| l.splitn(3, ' ').nth(2).unwrap().to_owned())
            .collect();
        assert_eq!(
            tags,
            ["P abcd", "P efgh", "F ij", "F abcd", "P abcd", "F e"]
        );
        assert_eq!(content_of(&layout, false), "abcdefghij\nabcd\nabcde\n");
    }

    #[test]
    fn files_rotate_at_the_cap_without_tearing_or_losing_lines() {
        let config = LogConfig {
            max_line: 16 * 1024,
            max_file_size: 1000,
            max_files: 3,
        };
        let (_d, layout, mut log) = setup(config);
        let mut echo = Echo::disabled();
        let mut all = String::new();
        for i in 0..100 {
            let line = format!("line {i:03} {}\n", "x".repeat(i % 17));
            all.push_str(&line);
            // Fed in odd pieces, as pipes deliver them.
            let (a, b) = line.as_bytes().split_at(line.len() / 3);
            log.feed(Stream::Stdout, a, t0(), &mut echo).unwrap();
            log.feed(Stream::Stdout, b, t0(), &mut echo).unwrap();
        }
        let dir = layout.container_log_dir(&pod_id(), "web");
        let parts = rotated_parts(&dir, 0).unwrap();
        assert_eq!(parts.len(), 2, "max_files 3 = current + 2 rotated");
        let mut kept = String::new();
        for path in instance_files(&dir, 0).unwrap() {
            let text = read(&path);
            assert!(
                text.len() as u64 <= 1000,
                "{} is {} bytes",
                path.display(),
                text.len()
            );
            for line in text.lines() {
                let record = parse_cri_line(line.as_bytes()).expect("whole record");
                assert!(!record.partial);
                kept.push_str(std::str::from_utf8(record.content).unwrap());
                kept.push('\n');
            }
        }
        // What is kept is exactly the newest lines, in order.
        assert!(all.ends_with(&kept), "kept:\n{kept}");
        assert!(kept.lines().count() > 20);
        assert_eq!(content_of(&layout, false), kept);
    }

    #[test]
    fn restarts_get_their_own_file_and_old_ones_are_pruned() {
        let (_d, layout, mut log) = setup(LogConfig::default());
        let mut echo = Echo::disabled();
        log.feed(Stream::Stdout, b"first\nunfinished", t0(), &mut echo)
            .unwrap();
        log.restart(1, t0(), &mut echo).unwrap();
        log.feed(Stream::Stdout, b"second\n", t0(), &mut echo)
            .unwrap();
        assert_eq!(content_of(&layout, true), "first\nunfinished\n");
        assert_eq!(content_of(&layout, false), "second\n");
        log.restart(2, t0(), &mut echo).unwrap();
        log.feed(Stream::Stdout, b"third\n", t0(), &mut echo)
            .unwrap();
        let dir = layout.container_log_dir(&pod_id(), "web");
        assert_eq!(instances(&dir).unwrap(), [1, 2]);
        assert_eq!(content_of(&layout, true), "second\n");
        // A reopened sink appends (supervisor restarted mid-instance).
        let mut again =
            ContainerLog::open(&layout, &pod_id(), "web", 2, LogConfig::default()).unwrap();
        again
            .feed(Stream::Stderr, b"fourth\n", t0(), &mut echo)
            .unwrap();
        assert_eq!(content_of(&layout, false), "third\nfourth\n");
        // A new run of the pod starts clean.
        let mut fresh =
            ContainerLog::open(&layout, &pod_id(), "web", 0, LogConfig::default()).unwrap();
        fresh
            .feed(Stream::Stdout, b"new run\n", t0(), &mut echo)
            .unwrap();
        assert_eq!(instances(&dir).unwrap(), [0]);
        assert_eq!(content_of(&layout, false), "new run\n");
    }

    #[test]
    fn missing_previous_instance_is_an_error_naming_it() {
        let (_d, layout, _log) = setup(LogConfig::default());
        let args = LogRequest {
            follow: false,
            previous: true,
            pod: pod_id(),
            container: "web".into(),
        };
        let err = show(&layout, &args, &mut Vec::new()).unwrap_err();
        let ShowError::Log(err) = err else {
            panic!("{err:?}")
        };
        assert!(
            err.to_string()
                .starts_with("previous terminated container \"web\" in pod default/pod not found"),
            "{err}"
        );
    }

    fn nonblocking_pipe() -> (io::PipeReader, OwnedFd) {
        let (reader, writer) = io::pipe().unwrap();
        let writer: OwnedFd = writer.into();
        let flags = nix::fcntl::fcntl(&writer, nix::fcntl::FcntlArg::F_GETFL).unwrap();
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&writer, nix::fcntl::FcntlArg::F_SETFL(flags)).unwrap();
        (reader, writer)
    }

    #[test]
    fn echo_prefixes_lines() {
        let (mut reader, writer) = nonblocking_pipe();
        let mut echo = Echo::to_fd(writer, ECHO_BUFFER);
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path(), dir.path());
        let mut log =
            ContainerLog::open(&layout, &pod_id(), "web", 0, LogConfig::default()).unwrap();
        log.feed(Stream::Stdout, b"a\nb\n", t0(), &mut echo)
            .unwrap();
        log.feed(Stream::Stderr, b"c\n", t0(), &mut echo).unwrap();
        drop(echo);
        let mut got = String::new();
        reader.read_to_string(&mut got).unwrap();
        assert_eq!(got, "[web] a\n[web] b\n[web] c\n");
    }

    #[test]
    fn echo_never_blocks_drops_whole_lines_and_says_so() {
        let (mut reader, writer) = nonblocking_pipe();
        let mut echo = Echo::to_fd(writer, 1024);
        let line = "y".repeat(100);
        // Far more than pipe (64 KiB) + buffer: must return, not block.
        for _ in 0..2000 {
            echo.line("flood", line.as_bytes());
        }
        assert!(echo.dropped_total() > 0);
        assert!(echo.has_pending());
        assert!(echo.fd().is_some());
        // Drain the pipe as the event loop would on EPOLLOUT.
        let mut got = Vec::new();
        let mut chunk = vec![0u8; 1 << 16];
        while echo.has_pending() {
            let n = reader.read(&mut chunk).unwrap();
            got.extend_from_slice(&chunk[..n]);
            echo.flush();
        }
        echo.flush();
        drop(echo);
        reader.read_to_end(&mut got).unwrap();
        let text = String::from_utf8(got).unwrap();
        let mut lines = text.lines();
        let mut whole = 0;
        for l in lines.by_ref() {
            if l.starts_with("[supervisor] dropped ") {
                break;
            }
            assert_eq!(l, format!("[flood] {line}"), "torn line");
            whole += 1;
        }
        assert!(
            whole > 100,
            "pipe and buffer content arrives whole: {whole}"
        );
        assert_eq!(lines.next(), None, "the notice comes last");
        assert!(
            text.contains(&format!("dropped {} lines", 2000 - whole)),
            "{}",
            text.lines().last().unwrap()
        );
    }

    /// A `Write` shared with the test thread.
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn follow_crosses_rotation_and_restart_until_the_pod_is_gone() {
        let config = LogConfig {
            max_line: 1024,
            max_file_size: 200,
            max_files: 5,
        };
        let (_d, layout, mut log) = setup(config);
        let status = layout.status_file(&pod_id());
        fs::create_dir_all(status.parent().unwrap()).unwrap();
        fs::write(&status, "{}").unwrap();
        // The pod's supervisor holds the pod's lock (as this test does)
        // while it runs.
        let lock =
            crate::pod_lock::PodLock::acquire(&layout.lock_file(&pod_id()), "default/pod").unwrap();
        let mut echo = Echo::disabled();
        log.feed(Stream::Stdout, b"before\n", t0(), &mut echo)
            .unwrap();
        let out = Shared::default();
        let follower = {
            let (layout, mut out) = (layout.clone(), out.clone());
            std::thread::spawn(move || {
                let args = LogRequest {
                    follow: true,
                    previous: false,
                    pod: pod_id(),
                    container: "web".into(),
                };
                show(&layout, &args, &mut out).map_err(|e| format!("{e:?}"))
            })
        };
        let mut want = String::from("before\n");
        let wait_for = |text: &str| {
            for _ in 0..100 {
                if String::from_utf8_lossy(&out.0.lock().unwrap()).ends_with(text) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            panic!(
                "follower never printed {text:?}: {:?}",
                String::from_utf8_lossy(&out.0.lock().unwrap())
            );
        };
        wait_for(&want);
        for i in 0..20 {
            let line = format!("rotating line {i}\n");
            log.feed(Stream::Stdout, line.as_bytes(), t0(), &mut echo)
                .unwrap();
            want.push_str(&line);
            // Give the 100 ms poll a chance to see some files before rotation.
            if i % 5 == 4 {
                wait_for(&want);
            }
        }
        log.restart(1, t0(), &mut echo).unwrap();
        log.feed(Stream::Stderr, b"after restart\n", t0(), &mut echo)
            .unwrap();
        want.push_str("after restart\n");
        wait_for(&want);
        // Its supervisor is gone: the follower ends.
        drop(lock);
        let result = follower.join().unwrap();
        assert_eq!(result, Ok(()));
        assert_eq!(
            String::from_utf8(out.0.lock().unwrap().clone()).unwrap(),
            want
        );
    }

    #[test]
    fn cri_lines_parse() {
        let r = parse_cri_line(b"2027-01-15T08:00:00.25Z stderr P a b c").unwrap();
        assert_eq!(
            (r.time, r.stream, r.partial, r.content),
            (
                "2027-01-15T08:00:00.25Z",
                Stream::Stderr,
                true,
                &b"a b c"[..]
            )
        );
        assert_eq!(parse_cri_line(b"t stdout F").unwrap().content, b"");
        assert!(parse_cri_line(b"t stdin F x").is_none());
        assert!(parse_cri_line(b"t stdout X x").is_none());
    }
}
