//! Container probes with Kubernetes semantics: startup, liveness and
//! readiness, each by exec, tcpSocket or httpGet, driven from the
//! single-threaded epoll loop without ever blocking it.
//!
//! [`Probes`] holds every probe of one container instance. The caller (the
//! run loop) owns the clock, the epoll set and the reaping: it calls
//! [`Probes::tick`] when [`Probes::next_deadline`] is due,
//! [`Probes::on_socket_ready`] when a socket registered through
//! [`ProbeIo::watch`] is ready, [`Probes::on_exit`] for every child it reaped,
//! and [`Probes::cancel`] when the container instance ends. Each call returns
//! the [`Outcome`]s the caller acts on (started, ready or not, failed).
//!
//! Semantics as the kubelet's: the startup probe gates the others;
//! `failureThreshold` consecutive failures of startup or liveness fail the
//! container; readiness turns true after `successThreshold` consecutive
//! successes and false after `failureThreshold` consecutive failures;
//! `initialDelaySeconds` counts from the container's start, `periodSeconds`
//! between attempt starts, `timeoutSeconds` per attempt, one attempt in
//! flight per probe.
//!
//! How each handler runs:
//! - exec: the argv runs inside the container (its mount, pid, network, IPC
//!   and UTS namespaces, its cgroup, environment, working directory and
//!   credentials: [`ExecIdentity`], taken from the command that started the
//!   instance, as containerd's ExecSync runs the container's own process
//!   spec) as our child in a new session. It succeeds on exit code 0.
//!   It runs under a waiter (`container::Command::reaper`), which has the
//!   same credentials as the probe's program: a child
//!   subreaper inside the container's pid namespace, which is our child and
//!   reaps every process of the probe's tree, so nothing becomes a zombie of
//!   the container's PID 1 (which may never reap); leftovers are killed
//!   when the probe's program exits. At the timeout every descendant of the
//!   waiter is SIGKILLed; the waiter reaps them and exits, and the caller
//!   reaps it like any child and hands the status back.
//! - tcpSocket: a non-blocking socket created inside the pod's network
//!   namespace (the thread enters it for the `socket` call only and returns
//!   at once), connected to the host (default: the pod IP, else
//!   127.0.0.1); success when it turns writable without `SO_ERROR`.
//! - httpGet: the same connection, then an HTTP/1.1 GET as the kubelet sends
//!   it; the status line decides (200..=399 is success). At most
//!   [`MAX_RESPONSE`] bytes are read.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use container::{
    Cgroup, Command, Credentials, ExitStatus, Namespace, NamespaceSet, Session, Stdio,
};
use nix::errno::Errno;
use nix::sched::{CloneFlags, setns};
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, SockFlag, SockType, SockaddrStorage, sockopt,
};
use nix::unistd::Pid;

use crate::pid1;
use crate::spec::{self, Handler};

/// The most bytes of an HTTP response read before giving up on finding its
/// status line.
pub const MAX_RESPONSE: usize = 10 * 1024;

/// The `User-Agent` the kubelet sends (Kubernetes 1.33).
pub const USER_AGENT: &str = "kube-probe/1.33";

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// `startupProbe`.
    Startup,
    /// `livenessProbe`.
    Liveness,
    /// `readinessProbe`.
    Readiness,
}

impl ProbeKind {
    /// Every kind, in slot order.
    pub const ALL: [ProbeKind; 3] = [
        ProbeKind::Startup,
        ProbeKind::Liveness,
        ProbeKind::Readiness,
    ];

    /// The slot number its socket is watched with (0..3).
    pub fn slot(self) -> u8 {
        match self {
            ProbeKind::Startup => 0,
            ProbeKind::Liveness => 1,
            ProbeKind::Readiness => 2,
        }
    }

    /// The kind watched with `slot`.
    pub fn from_slot(slot: u8) -> Option<ProbeKind> {
        ProbeKind::ALL.get(usize::from(slot)).copied()
    }
}

impl fmt::Display for ProbeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProbeKind::Startup => "Startup",
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
        })
    }
}

/// What the caller must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The startup probe succeeded (or there is none): the container is
    /// started; liveness and readiness now run.
    Started,
    /// Readiness changed (only reported on a change; a container starts
    /// not ready).
    Ready(bool),
    /// Startup or liveness failed `failureThreshold` times in a row: kill
    /// the container and restart it under the restart policy. No further
    /// probe starts on this instance.
    Failed {
        /// Which probe.
        kind: ProbeKind,
        /// E.g. `Liveness probe failed: HTTP probe failed with statuscode:
        /// 500`.
        message: String,
        /// The probe-level `terminationGracePeriodSeconds`, which replaces
        /// the pod's for this kill.
        grace_period: Option<Duration>,
    },
}

/// Everything a probe needs to reach the running container instance.
#[derive(Debug, Clone, Copy)]
pub struct ProbeTarget<'a> {
    /// The container's main pid (host view): exec probes join its
    /// namespaces.
    pub pid: i32,
    /// The container's cgroup: exec probes run in it.
    pub cgroup: &'a Cgroup,
    /// The pod's network namespace file (`/run/netns/...`); `None` = the
    /// host network (the caller's own namespace).
    pub netns: Option<&'a Path>,
    /// The pod IP, the default host of tcpSocket and httpGet.
    pub pod_ip: Option<IpAddr>,
    /// The container's environment, given to exec probes.
    pub env: &'a [(String, String)],
}

/// How probes register their sockets with the caller's epoll set.
pub trait ProbeIo {
    /// Watch `fd` for writability (`writable`) or input, reported back
    /// through [`Probes::on_socket_ready`] with `slot` (0..3). A socket is
    /// watched at most once at a time.
    fn watch(&mut self, fd: BorrowedFd<'_>, slot: u8, writable: bool);
    /// Stop watching `fd` (it is closed right after).
    fn unwatch(&mut self, fd: BorrowedFd<'_>);
}

/// The result of one attempt: `Err` carries the failure message.
type Attempted = Result<(), String>;

/// What the exec probes of a container instance (and their waiter) run
/// as: the instance's own working directory and credentials, never more.
#[derive(Debug, Clone)]
pub struct ExecIdentity {
    /// The instance's working directory (`/` when it has none).
    pub working_dir: PathBuf,
    /// The instance's uid, gid, groups, capabilities and no_new_privs.
    pub credentials: Credentials,
    /// The instance's seccomp filter and AppArmor profile.
    pub confinement: crate::confinement::Confinement,
}

/// The supervisor's own credentials in `/` (a command with nothing set).
impl Default for ExecIdentity {
    fn default() -> ExecIdentity {
        ExecIdentity {
            working_dir: PathBuf::from("/"),
            credentials: Credentials::default(),
            confinement: crate::confinement::Confinement::default(),
        }
    }
}

impl ExecIdentity {
    /// The identity of the process `command` starts (the image's USER and
    /// WorkingDir resolved, as the container got them).
    pub fn of(command: &Command) -> ExecIdentity {
        ExecIdentity {
            working_dir: command
                .get_cwd()
                .map_or_else(|| PathBuf::from("/"), Path::to_path_buf),
            credentials: command.get_credentials().clone(),
            confinement: crate::confinement::Confinement::default(),
        }
    }
}

/// The threshold counters of one probe: the pure state machine.
#[derive(Debug, Clone)]
struct Counters {
    kind: ProbeKind,
    success_threshold: u32,
    failure_threshold: u32,
    successes: u32,
    failures: u32,
    /// Readiness only: the last reported value.
    ready: bool,
}

/// What one attempt's result means.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Nothing to report.
    None,
    /// The startup probe succeeded.
    Started,
    /// Readiness changed.
    Ready(bool),
    /// The threshold of failures was reached.
    Failed(String),
}

impl Counters {
    fn new(kind: ProbeKind, probe: &spec::Probe) -> Counters {
        Counters {
            kind,
            success_threshold: probe.success_threshold.max(1),
            failure_threshold: probe.failure_threshold.max(1),
            successes: 0,
            failures: 0,
            ready: false,
        }
    }

    fn record(&mut self, result: &Attempted) -> Verdict {
        match result {
            Ok(()) => {
                self.failures = 0;
                self.successes = self.successes.saturating_add(1);
                if self.successes < self.success_threshold {
                    return Verdict::None;
                }
                match self.kind {
                    ProbeKind::Startup => Verdict::Started,
                    ProbeKind::Liveness => Verdict::None,
                    ProbeKind::Readiness if !self.ready => {
                        self.ready = true;
                        Verdict::Ready(true)
                    }
                    ProbeKind::Readiness => Verdict::None,
                }
            }
            Err(message) => {
                self.successes = 0;
                self.failures = self.failures.saturating_add(1);
                if self.failures < self.failure_threshold {
                    return Verdict::None;
                }
                match self.kind {
                    ProbeKind::Startup | ProbeKind::Liveness => {
                        Verdict::Failed(format!("{} probe failed: {message}", self.kind))
                    }
                    ProbeKind::Readiness if self.ready => {
                        self.ready = false;
                        Verdict::Ready(false)
                    }
                    ProbeKind::Readiness => Verdict::None,
                }
            }
        }
    }
}

/// Where an HTTP or TCP attempt is.
#[derive(Debug)]
pub(crate) enum AttemptPhase {
    /// Waiting for the connection (writable).
    Connecting,
    /// Sending the request from this offset (writable).
    Sending(usize),
    /// Reading the response (readable).
    Receiving(Vec<u8>),
}

/// One attempt in flight.
#[derive(Debug)]
enum Attempt {
    /// An exec probe: our child, not yet reaped.
    Exec { pid: i32 },
    /// A tcpSocket or httpGet probe.
    Socket {
        fd: OwnedFd,
        addr: SocketAddr,
        request: Option<Vec<u8>>,
        phase: AttemptPhase,
    },
}

#[derive(Debug)]
struct InFlight {
    deadline: Instant,
    attempt: Attempt,
}

/// One probe of the container.
#[derive(Debug)]
struct Prober {
    probe: spec::Probe,
    counters: Counters,
    /// When the next attempt may start; `None` until the probe is gated in.
    next_start: Option<Instant>,
    in_flight: Option<InFlight>,
}

/// Every probe of one container instance.
#[derive(Debug)]
pub struct Probes {
    started_at: Instant,
    /// Indexed by [`ProbeKind::slot`]; boxed, since most containers have
    /// few probes or none.
    probers: [Option<Box<Prober>>; 3],
    identity: ExecIdentity,
    /// `Outcome::Started` is still to be reported (no startup probe).
    report_started: bool,
    /// A startup or liveness failure was reported: nothing new starts.
    halted: bool,
    /// Killed exec probes the caller has not reaped yet.
    killed: Vec<i32>,
}

impl Probes {
    /// The probes of `container`, whose instance started at `started` and
    /// runs as `identity`.
    pub fn new(container: &spec::Container, identity: ExecIdentity, started: Instant) -> Probes {
        let prober = |kind: ProbeKind, probe: &Option<Box<spec::Probe>>| {
            probe.as_deref().map(|p| {
                Box::new(Prober {
                    probe: p.clone(),
                    counters: Counters::new(kind, p),
                    next_start: None,
                    in_flight: None,
                })
            })
        };
        let mut probers = [
            prober(ProbeKind::Startup, &container.startup_probe),
            prober(ProbeKind::Liveness, &container.liveness_probe),
            prober(ProbeKind::Readiness, &container.readiness_probe),
        ];
        let gated = probers[0].is_some();
        if let Some(startup) = &mut probers[0] {
            startup.next_start = Some(started + startup.probe.initial_delay);
        } else {
            for p in probers.iter_mut().flatten() {
                p.next_start = Some(started + p.probe.initial_delay);
            }
        }
        Probes {
            started_at: started,
            probers,
            identity,
            report_started: !gated,
            halted: false,
            killed: Vec::new(),
        }
    }

    /// Whether the container has a readiness probe (without one it is ready
    /// once started).
    pub fn has_readiness(&self) -> bool {
        self.probers[2].is_some()
    }

    /// The exec probe processes that are still to be reaped (in flight or
    /// killed); the caller's reaping hands them to [`Probes::on_exit`].
    pub fn children(&self) -> Vec<i32> {
        let mut pids = self.killed.clone();
        for p in self.probers.iter().flatten() {
            if let Some(InFlight {
                attempt: Attempt::Exec { pid },
                ..
            }) = &p.in_flight
            {
                pids.push(*pid);
            }
        }
        pids
    }

    /// When [`Probes::tick`] must run next: the earliest due attempt start
    /// or in-flight timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next = self.report_started.then_some(self.started_at);
        for p in self.probers.iter().flatten() {
            let due = match &p.in_flight {
                Some(f) => Some(f.deadline),
                None if self.halted => None,
                None => p.next_start,
            };
            next = match (next, due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        next
    }

    /// Time out overdue attempts (killing an exec probe's process tree),
    /// start the due ones, and report what changed.
    pub fn tick(
        &mut self,
        now: Instant,
        target: &ProbeTarget<'_>,
        io: &mut dyn ProbeIo,
    ) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        if self.report_started {
            self.report_started = false;
            outcomes.push(Outcome::Started);
        }
        for kind in ProbeKind::ALL {
            let slot = usize::from(kind.slot());
            let Some(prober) = &mut self.probers[slot] else {
                continue;
            };
            let overdue = prober.in_flight.as_ref().is_some_and(|f| now >= f.deadline);
            if !overdue {
                continue;
            }
            let Some(flight) = prober.in_flight.take() else {
                continue;
            };
            let message =
                timeout_message(&prober.probe, flight.attempt, target, io, &mut self.killed);
            self.record(kind, Err(message), now, &mut outcomes);
        }
        for kind in ProbeKind::ALL {
            if self.halted {
                break;
            }
            let slot = usize::from(kind.slot());
            let Some(prober) = &mut self.probers[slot] else {
                continue;
            };
            let due = prober.in_flight.is_none() && prober.next_start.is_some_and(|t| now >= t);
            if !due {
                continue;
            }
            prober.next_start = Some(now + prober.probe.period);
            match start(&prober.probe, kind, now, target, &self.identity, io) {
                Ok(flight) => prober.in_flight = Some(flight),
                Err(message) => self.record(kind, Err(message), now, &mut outcomes),
            }
        }
        outcomes
    }

    /// Advance the socket attempt watched with `slot`.
    pub fn on_socket_ready(
        &mut self,
        slot: u8,
        now: Instant,
        io: &mut dyn ProbeIo,
    ) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        let Some(kind) = ProbeKind::from_slot(slot) else {
            return outcomes;
        };
        let Some(prober) = &mut self.probers[usize::from(slot)] else {
            return outcomes;
        };
        let Some(InFlight {
            attempt:
                Attempt::Socket {
                    fd,
                    addr,
                    request,
                    phase,
                },
            ..
        }) = &mut prober.in_flight
        else {
            return outcomes;
        };
        let Some(result) = advance(
            fd,
            *addr,
            request.as_deref(),
            phase,
            slot,
            &prober.probe.handler,
            io,
        ) else {
            return outcomes;
        };
        let result = result.and_then(|code| code.map_or(Ok(()), judge));
        if let Some(InFlight {
            attempt: Attempt::Socket { fd, .. },
            ..
        }) = prober.in_flight.take()
        {
            io.unwatch(fd.as_fd());
        }
        self.record(kind, result, now, &mut outcomes);
        outcomes
    }

    /// A child the caller reaped: `Some` (with what changed) when it was one
    /// of our exec probes, `None` when it is not ours.
    pub fn on_exit(&mut self, pid: i32, status: &ExitStatus, now: Instant) -> Option<Vec<Outcome>> {
        if let Some(i) = self.killed.iter().position(|&p| p == pid) {
            self.killed.swap_remove(i);
            return Some(Vec::new());
        }
        let kind = ProbeKind::ALL.into_iter().find(|k| {
            self.probers[usize::from(k.slot())].as_ref().is_some_and(|p| {
                matches!(p.in_flight, Some(InFlight { attempt: Attempt::Exec { pid: q }, .. }) if q == pid)
            })
        })?;
        let prober = self.probers[usize::from(kind.slot())].as_mut()?;
        prober.in_flight = None;
        let result = match status {
            ExitStatus::Exited(0) => Ok(()),
            other => Err(format!(
                "command {} failed: {other}",
                quoted(&prober.probe.handler)
            )),
        };
        let mut outcomes = Vec::new();
        self.record(kind, result, now, &mut outcomes);
        Some(outcomes)
    }

    /// The container instance ended: kill in-flight exec probes (whole
    /// trees; the caller still reaps them and passes them to
    /// [`Probes::on_exit`]) and close sockets. Nothing starts afterwards.
    pub fn cancel(&mut self, io: &mut dyn ProbeIo) {
        self.halted = true;
        self.report_started = false;
        for prober in self.probers.iter_mut().flatten() {
            prober.next_start = None;
            match prober.in_flight.take().map(|f| f.attempt) {
                Some(Attempt::Exec { pid }) => {
                    kill_tree(pid);
                    self.killed.push(pid);
                }
                Some(Attempt::Socket { fd, .. }) => io.unwatch(fd.as_fd()),
                None => {}
            }
        }
    }

    /// Apply one attempt's result to the counters of `kind` and turn the
    /// verdict into outcomes (and gating).
    fn record(&mut self, kind: ProbeKind, result: Attempted, now: Instant, out: &mut Vec<Outcome>) {
        if self.halted {
            return;
        }
        let Some(prober) = &mut self.probers[usize::from(kind.slot())] else {
            return;
        };
        match prober.counters.record(&result) {
            Verdict::None => {}
            Verdict::Ready(ready) => out.push(Outcome::Ready(ready)),
            Verdict::Failed(message) => {
                let grace_period = prober.probe.termination_grace_period;
                self.halted = true;
                out.push(Outcome::Failed {
                    kind,
                    message,
                    grace_period,
                });
            }
            Verdict::Started => {
                // Done for good; gate the others in, their initial delay
                // counted from the container's start.
                prober.next_start = None;
                for p in self.probers[1..].iter_mut().flatten() {
                    p.next_start = Some((self.started_at + p.probe.initial_delay).max(now));
                }
                out.push(Outcome::Started);
            }
        }
    }
}

/// Start one attempt; `Err` is an immediate failure.
fn start(
    probe: &spec::Probe,
    kind: ProbeKind,
    now: Instant,
    target: &ProbeTarget<'_>,
    identity: &ExecIdentity,
    io: &mut dyn ProbeIo,
) -> Result<InFlight, String> {
    let deadline = now + probe.timeout;
    let attempt = match &probe.handler {
        Handler::Exec { command } => Attempt::Exec {
            pid: spawn_exec(command, target, identity)?,
        },
        Handler::TcpSocket { host, port } => {
            let addr = address(host.as_deref(), *port, target.pod_ip)
                .map_err(|e| format!("dial tcp: {e}"))?;
            let fd = connect(target.netns, addr).map_err(|e| format!("dial tcp {addr}: {e}"))?;
            io.watch(fd.as_fd(), kind.slot(), true);
            Attempt::Socket {
                fd,
                addr,
                request: None,
                phase: AttemptPhase::Connecting,
            }
        }
        Handler::HttpGet {
            host,
            port,
            path,
            headers,
        } => {
            let (fd, addr, request) =
                start_http_get(host.as_deref(), *port, path, headers, USER_AGENT, target)?;
            io.watch(fd.as_fd(), kind.slot(), true);
            Attempt::Socket {
                fd,
                addr,
                request: Some(request),
                phase: AttemptPhase::Connecting,
            }
        }
        Handler::Sleep { .. } => return Err("sleep is not a probe handler".into()),
    };
    Ok(InFlight { deadline, attempt })
}

/// The failure message of a timed-out attempt, after stopping it.
fn timeout_message(
    probe: &spec::Probe,
    attempt: Attempt,
    target: &ProbeTarget<'_>,
    io: &mut dyn ProbeIo,
    killed: &mut Vec<i32>,
) -> String {
    let secs = probe.timeout.as_secs_f64();
    match attempt {
        Attempt::Exec { pid } => {
            kill_tree(pid);
            killed.push(pid);
            format!("command {} timed out after {secs}s", quoted(&probe.handler))
        }
        Attempt::Socket { fd, addr, .. } => {
            io.unwatch(fd.as_fd());
            drop(fd);
            match &probe.handler {
                Handler::HttpGet {
                    host, port, path, ..
                } => format!(
                    "Get \"{}\": context deadline exceeded (timeout {secs}s)",
                    url(host.as_deref(), *port, path, target.pod_ip)
                ),
                _ => format!("dial tcp {addr}: i/o timeout ({secs}s)"),
            }
        }
    }
}

/// Move a socket attempt on; `Some` once it has a result: `Ok(None)` when
/// a TCP connection is made, `Ok(Some(code))` for an HTTP response's
/// status code, `Err` with Go's wording of what failed.
pub(crate) fn advance(
    fd: &OwnedFd,
    addr: SocketAddr,
    request: Option<&[u8]>,
    phase: &mut AttemptPhase,
    slot: u8,
    handler: &Handler,
    io: &mut dyn ProbeIo,
) -> Option<Result<Option<u16>, String>> {
    let http_prefix = || match handler {
        Handler::HttpGet {
            host, port, path, ..
        } => {
            format!(
                "Get \"{}\": ",
                url(host.as_deref(), *port, path, Some(addr.ip()))
            )
        }
        _ => String::new(),
    };
    loop {
        match phase {
            AttemptPhase::Connecting => {
                match socket::getsockopt(fd, sockopt::SocketError) {
                    Ok(0) => {}
                    Ok(errno) => {
                        let e = Errno::from_raw(errno);
                        return Some(Err(format!(
                            "{}dial tcp {addr}: connect: {}",
                            http_prefix(),
                            describe(e)
                        )));
                    }
                    Err(e) => {
                        return Some(Err(format!(
                            "{}dial tcp {addr}: {}",
                            http_prefix(),
                            describe(e)
                        )));
                    }
                }
                // Connected only if the peer is known; a spurious wake-up
                // leaves ENOTCONN.
                match socket::getpeername::<SockaddrStorage>(fd.as_raw_fd()) {
                    Ok(_) => {}
                    Err(Errno::ENOTCONN) => return None,
                    Err(e) => {
                        return Some(Err(format!(
                            "{}dial tcp {addr}: {}",
                            http_prefix(),
                            describe(e)
                        )));
                    }
                }
                if request.is_none() {
                    return Some(Ok(None));
                }
                *phase = AttemptPhase::Sending(0);
            }
            AttemptPhase::Sending(offset) => {
                let request = request.unwrap_or_default();
                while *offset < request.len() {
                    match socket::send(fd.as_raw_fd(), &request[*offset..], MsgFlags::MSG_NOSIGNAL)
                    {
                        Ok(n) => *offset += n,
                        Err(Errno::EINTR) => {}
                        Err(Errno::EAGAIN) => return None,
                        Err(e) => {
                            return Some(Err(format!("{}write: {}", http_prefix(), describe(e))));
                        }
                    }
                }
                io.unwatch(fd.as_fd());
                io.watch(fd.as_fd(), slot, false);
                *phase = AttemptPhase::Receiving(Vec::new());
                return None;
            }
            AttemptPhase::Receiving(buf) => {
                let mut chunk = [0u8; 2048];
                loop {
                    let room = MAX_RESPONSE.saturating_sub(buf.len()).min(chunk.len());
                    if room == 0 {
                        return Some(Err(format!(
                            "{}malformed HTTP response: no status line in {MAX_RESPONSE} bytes",
                            http_prefix()
                        )));
                    }
                    match socket::recv(fd.as_raw_fd(), &mut chunk[..room], MsgFlags::empty()) {
                        Ok(0) => {
                            return Some(match status_code(buf) {
                                Some(code) => Ok(Some(code)),
                                None => Err(format!(
                                    "{}malformed HTTP response {:?}",
                                    http_prefix(),
                                    String::from_utf8_lossy(&buf[..buf.len().min(64)])
                                )),
                            });
                        }
                        Ok(n) => {
                            buf.extend_from_slice(&chunk[..n]);
                            if let Some(code) = status_code(buf) {
                                return Some(Ok(Some(code)));
                            }
                            if buf.contains(&b'\n') {
                                return Some(Err(format!(
                                    "{}malformed HTTP status line",
                                    http_prefix()
                                )));
                            }
                        }
                        Err(Errno::EINTR) => {}
                        Err(Errno::EAGAIN) => return None,
                        Err(e) => {
                            return Some(Err(format!("{}read: {}", http_prefix(), describe(e))));
                        }
                    }
                }
            }
        }
    }
}

/// 200..=399 is success, as the kubelet has it.
fn judge(code: u16) -> Attempted {
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with statuscode: {code}"))
    }
}

/// The status code once the status line (`HTTP/1.x NNN reason\r\n`) is
/// complete; `None` while it is incomplete or when it is malformed.
fn status_code(buf: &[u8]) -> Option<u16> {
    let end = buf.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&buf[..end])
        .ok()?
        .trim_end_matches('\r');
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok().filter(|c| (100..600).contains(c))
}

/// An errno as Go prints it (`connection refused`).
pub(crate) fn describe(e: Errno) -> String {
    let text = e.desc();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text.to_string(),
    }
}

/// The argv of an exec handler, quoted for messages.
fn quoted(handler: &Handler) -> String {
    match handler {
        Handler::Exec { command } => format!("{:?}", command.join(" ")),
        _ => String::new(),
    }
}

/// Where to connect: an IP literal or `localhost`, else the pod IP, else
/// the loopback address. Names are not resolved: that would block.
pub(crate) fn address(
    host: Option<&str>,
    port: u16,
    pod_ip: Option<IpAddr>,
) -> Result<SocketAddr, String> {
    let ip = match host {
        None => pod_ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        Some("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("host {h:?} is not an IP address (names are not resolved)"))?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// The URL of an httpGet probe, for messages.
pub(crate) fn url(host: Option<&str>, port: u16, path: &str, pod_ip: Option<IpAddr>) -> String {
    match address(host, port, pod_ip) {
        Ok(addr) => format!("http://{addr}{path}"),
        Err(_) => format!("http://{}:{port}{path}", host.unwrap_or_default()),
    }
}

/// The request the kubelet sends. `Host` is the probe's host (or the
/// address) with the port; user headers come last and may override
/// nothing (they are appended as given).
/// An httpGet's start, a probe's or a hook's: the address, a socket
/// connecting to it from the pod's network namespace, and the request to
/// send once it is connected; errors worded as kubelet's (`Get "URL": ...`).
pub(crate) fn start_http_get(
    host: Option<&str>,
    port: u16,
    path: &str,
    headers: &[(String, String)],
    user_agent: &str,
    target: &ProbeTarget<'_>,
) -> Result<(OwnedFd, SocketAddr, Vec<u8>), String> {
    let url = url(host, port, path, target.pod_ip);
    let addr = address(host, port, target.pod_ip).map_err(|e| format!("Get \"{url}\": {e}"))?;
    let fd =
        connect(target.netns, addr).map_err(|e| format!("Get \"{url}\": dial tcp {addr}: {e}"))?;
    let request = http_request(host, addr, path, headers, user_agent);
    Ok((fd, addr, request))
}

pub(crate) fn http_request(
    host: Option<&str>,
    addr: SocketAddr,
    path: &str,
    headers: &[(String, String)],
    user_agent: &str,
) -> Vec<u8> {
    let host_header = match host {
        Some(h) => format!("{h}:{}", addr.port()),
        None => addr.to_string(),
    };
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut req = format!("GET {path} HTTP/1.1\r\n");
    if !has("host") {
        req.push_str(&format!("Host: {host_header}\r\n"));
    }
    if !has("user-agent") {
        req.push_str(&format!("User-Agent: {user_agent}\r\n"));
    }
    if !has("accept") {
        req.push_str("Accept: */*\r\n");
    }
    req.push_str("Connection: close\r\n");
    for (name, value) in headers {
        // A header may not smuggle a line break into the request.
        let clean = |s: &str| s.replace(['\r', '\n'], " ");
        req.push_str(&format!("{}: {}\r\n", clean(name), clean(value)));
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// A non-blocking TCP socket created in `netns` (None: ours), with a
/// connect to `addr` started.
pub(crate) fn connect(netns: Option<&Path>, addr: SocketAddr) -> Result<OwnedFd, String> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let new_socket = || {
        socket::socket(
            family,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
    };
    let fd = match netns {
        None => new_socket().map_err(|e| format!("socket: {}", describe(e)))?,
        Some(path) => {
            in_netns(path, new_socket)?.map_err(|e| format!("socket: {}", describe(e)))?
        }
    };
    let storage = SockaddrStorage::from(addr);
    match socket::connect(fd.as_raw_fd(), &storage) {
        Ok(()) | Err(Errno::EINPROGRESS) | Err(Errno::EINTR) => Ok(fd),
        Err(e) => Err(format!("connect: {}", describe(e))),
    }
}

/// Run `f` with this thread in the network namespace at `path` and come
/// back to the thread's own. Only the calling thread moves; both moves are
/// quick system calls. Failing to come back would leave the thread in the
/// pod's network (every later socket, CNI call, ... in the wrong place): the
/// process aborts instead.
fn in_netns<T>(path: &Path, f: impl FnOnce() -> T) -> Result<T, String> {
    let open = |p: &Path| {
        std::fs::File::open(p)
            .map(OwnedFd::from)
            .map_err(|e| format!("open network namespace {}: {e}", p.display()))
    };
    let target = open(path)?;
    let own = open(Path::new("/proc/thread-self/ns/net"))?;
    setns(&target, CloneFlags::CLONE_NEWNET).map_err(|e| {
        format!(
            "enter network namespace {}: {}",
            path.display(),
            describe(e)
        )
    })?;
    let value = f();
    if let Err(e) = setns(&own, CloneFlags::CLONE_NEWNET) {
        eprintln!(
            "supervisor: fatal: cannot return from network namespace {}: {e}",
            path.display()
        );
        std::process::abort();
    }
    Ok(value)
}

/// Start an exec probe inside the container; its pid.
pub(crate) fn spawn_exec(
    argv: &[String],
    target: &ProbeTarget<'_>,
    identity: &ExecIdentity,
) -> Result<i32, String> {
    let Some(program) = argv.first() else {
        return Err("exec probe has an empty command".into());
    };
    let mut command = Command::new(program);
    command.args(&argv[1..]);
    for (key, value) in target.env {
        command.env(key, value);
    }
    command
        .join_pid(
            target.pid,
            NamespaceSet::of(&[
                Namespace::Mount,
                Namespace::Pid,
                Namespace::Net,
                Namespace::Ipc,
                Namespace::Uts,
            ]),
        )
        .cgroup(target.cgroup)
        .cwd(&identity.working_dir)
        .credentials(identity.credentials.clone())
        .session(Session::NewSession)
        .reaper(true)
        .stdin(Stdio::Null)
        .stdout(Stdio::Null)
        .stderr(Stdio::Null);
    // No parent-death signal of its own: it lives in the container's pid
    // namespace, which dies with the container's PID 1 (itself killed by
    // its parent-death signal should the supervisor die).
    identity.confinement.apply(&mut command);
    let child = command
        .spawn()
        .map_err(|e| format!("command {:?} could not start: {e}", argv.join(" ")))?;
    Ok(child.pid)
}

/// SIGKILL an exec probe's whole process tree: every descendant of its
/// waiter (`pid`, our unreaped child, so its number cannot have been
/// reused), found in `/proc`, again until none is left alive (a process
/// could fork between a snapshot and its kill). The waiter itself is left
/// alone: it reaps them all inside the container's pid namespace and then
/// exits, and the caller reaps it.
pub(crate) fn kill_tree(pid: i32) {
    for _ in 0..4 {
        let alive = pid1::descendants(Pid::from_raw(pid));
        if alive.is_empty() {
            return;
        }
        for d in alive {
            let _ = pid1::send_signal(d.as_raw(), libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests;
