//! `supervisor run MANIFEST`: the pod's event loop, until it is told to stop.
//! Start order: the sandbox (`sandbox`: cgroups, volumes, pause, CNI), then
//! init containers one by one to success, then the containers (each a
//! `supervised::SupervisedContainer`). One epoll set (signalfd, log pipes,
//! probe sockets, one timer) drives everything: nothing polls. Exits come
//! from SIGCHLD, reaped and matched against the containers' pids (an
//! unmatched one is an orphan, forgotten). SIGTERM/SIGINT: stop signals,
//! the grace period, a kill through the cgroups, then the teardown.

mod sandbox;

use crate::confinement::{self, ConfinementOptions};
use crate::event_loop::{EventLoop, EventLoopError, TIMER};
use crate::eviction::Eviction;
use crate::host;
use crate::images::{Availability, ImageOptions, PodImages, RESYNC};
use crate::logs::{Echo, LogConfig, Stream};
use crate::network::CniPaths;
use crate::notify::Notifier;
use crate::paths::{Layout, PodId};
use crate::pid1::{self, Signals};
use crate::pod_lock::PodLock;
use crate::probe::{Outcome, ProbeIo};
use crate::restart::{self, BackoffConfig, Decision, Event, Slot, Stamp, WaitingReason};
use crate::spec::{self, PodSpec};
use crate::status::{self, ContainerMeta, PodMeta, StatusStore};
use crate::supervised::{
    self, CGROUP_TIMEOUT, CommandError, FdWatch, SupervisedContainer, SupervisedError,
};
use crate::trace::{Step, Trace};
use anyhow::Context;
use nix::sys::signal::Signal;
use sandbox::PodSandbox;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

/// What `supervisor run` was asked to do, validated by the command line
/// (`src/bin/supervisor/run.rs`): the library holds no flag parsing.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The manifest: a Pod, or a Deployment (ReplicaSet, StatefulSet,
    /// DaemonSet, Job) whose pod template runs, with the ConfigMaps and
    /// Secrets of the same file.
    pub manifest: PathBuf,
    /// The pause binary; None: found as `host::find_pause` says.
    pub pause: Option<PathBuf>,
    /// State root (None: $SUPERVISOR_STATE_DIR, else /run/supervisor).
    pub state_dir: Option<PathBuf>,
    /// Log root (None: $SUPERVISOR_LOG_DIR, else /var/log/pods).
    pub log_dir: Option<PathBuf>,
    /// The cgroup under which the pod's cgroup is created, relative to the
    /// hierarchy roots; None: decided once the hierarchy is known.
    pub cgroup_parent: Option<PathBuf>,
    /// kubelet's restart back-off.
    pub backoff: BackoffConfig,
    /// Where the CNI configuration, plugins and result cache are.
    pub cni: CniPaths,
    /// Container log rotation.
    pub log: LogConfig,
    /// A file for the restart benchmarks' trace lines.
    pub trace: Option<PathBuf>,
    /// The image store, registry credentials and configuration.
    pub images: ImageOptions,
    /// seccomp and AppArmor: profile root, what unset means, the host.
    pub confinement: ConfinementOptions,
    /// kubelet's podPidsLimit: the most tasks of the pod's cgroup (pause
    /// and every container); None: unlimited.
    pub pod_pids_limit: Option<u64>,
}

/// Runs `supervisor run`: returns 0 after a stop by signal or a pod that
/// Succeeded, 1 when the pod Failed.
pub fn run(options: RunOptions) -> anyhow::Result<i32> {
    // Before anything else (and before any thread): every signal is taken
    // from the signalfd in the loop.
    let signals = Signals::block_all().context("block signals")?;
    let loaded = spec::load(&options.manifest)?;
    for warning in &loaded.warnings {
        eprintln!("supervisor: warning: {warning}");
    }
    // kubelet's admission: a profile the host cannot enforce at all
    // refuses the pod before anything starts.
    let admitted = confinement::admit(&loaded.pod, &options.confinement)
        .with_context(|| format!("{}", options.manifest.display()))?;
    for warning in &admitted {
        eprintln!("supervisor: warning: {warning}");
    }
    // One supervisor per pod: the pod's lock, before anything of the pod is
    // touched, held until this process exits (after the teardown).
    let layout = Layout::resolve(options.state_dir.as_deref(), options.log_dir.as_deref());
    let id = PodId::new(&loaded.pod.namespace, &loaded.pod.name)?;
    status::create_pod_dir(&layout, &id)?;
    let _lock = PodLock::acquire(&layout.lock_file(&id), &id.to_string())?;
    let pause = host::find_pause(options.pause.as_deref())?;
    host::raise_fd_limit();
    if !pid1::is_pid1() {
        pid1::become_subreaper().context("become a child subreaper")?;
    }
    let config = Config {
        layout,
        cgroup_parent: options.cgroup_parent,
        pause,
        log: options.log,
        backoff: options.backoff,
        cni: options.cni,
        images: options.images,
        confinement: options.confinement,
        pod_pids_limit: options.pod_pids_limit,
    };
    let trace = match &options.trace {
        Some(path) => Trace::open(path).with_context(|| format!("--trace {}", path.display()))?,
        None => Trace::default(),
    };
    let mut runtime = PodRuntime::new(id, loaded.pod, config, signals, trace);
    let result = runtime.start().and_then(|()| runtime.run());
    runtime.teardown(result.as_ref().err());
    result
}

struct Config {
    layout: Layout,
    /// None: decided once the cgroup hierarchy is known (see
    /// `host::cgroup_parent`).
    cgroup_parent: Option<PathBuf>,
    pause: PathBuf,
    log: LogConfig,
    backoff: BackoffConfig,
    cni: CniPaths,
    images: ImageOptions,
    confinement: ConfinementOptions,
    pod_pids_limit: Option<u64>,
}

/// Token of the signalfd in the event loop; containers use
/// `index * TOKENS_PER_CONTAINER + k`: k = 1 stdout, 2 stderr, and
/// PROBE_TOKEN + slot for a probe's socket.
const SIGNALS: u64 = u64::MAX - 1;
const TOKENS_PER_CONTAINER: u64 = 8;
const STDOUT_TOKEN: u64 = 1;
const STDERR_TOKEN: u64 = 2;
const PROBE_TOKEN: u64 = 4;

/// The least time between two drops of the idle code pages (see `run`).
const TRIM_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// How often a retired cgroup that is not empty yet is looked at again.
const RETIRED_RETRY: std::time::Duration = std::time::Duration::from_millis(10);

/// Registers container `index`'s pipes and probe sockets in the event loop
/// under its tokens.
struct ContainerFds<'a> {
    event_loop: &'a EventLoop,
    base: u64,
}

impl<'a> ContainerFds<'a> {
    fn new(event_loop: &'a EventLoop, index: usize) -> ContainerFds<'a> {
        ContainerFds {
            event_loop,
            base: index as u64 * TOKENS_PER_CONTAINER,
        }
    }
}

impl ProbeIo for ContainerFds<'_> {
    fn watch(&mut self, fd: BorrowedFd<'_>, slot: u8, writable: bool) {
        let flags = if writable {
            nix::sys::epoll::EpollFlags::EPOLLOUT
        } else {
            nix::sys::epoll::EpollFlags::EPOLLIN
        };
        if let Err(error) =
            self.event_loop
                .watch_with(fd, self.base + PROBE_TOKEN + u64::from(slot), flags)
        {
            eprintln!("supervisor: probe socket: {error}");
        }
    }

    fn unwatch(&mut self, fd: BorrowedFd<'_>) {
        let _ = self.event_loop.unwatch(fd);
    }
}

impl FdWatch for ContainerFds<'_> {
    fn watch_output(&mut self, fd: BorrowedFd<'_>, stream: Stream) -> Result<(), EventLoopError> {
        let token = match stream {
            Stream::Stdout => STDOUT_TOKEN,
            Stream::Stderr => STDERR_TOKEN,
        };
        self.event_loop.watch(fd, self.base + token)
    }
}

/// How the pod is being stopped.
struct Stopping {
    /// The end of the grace period; once `killed`, how long SIGKILLed
    /// processes get to be gone.
    deadline: Instant,
    killed: bool,
}

struct PodRuntime {
    /// `namespace/name`: the pod's key on this host.
    id: PodId,
    pod: PodSpec,
    config: Config,
    signals: Signals,
    state_dir: PathBuf,
    event_loop: Option<EventLoop>,
    store: Option<StatusStore>,
    meta: PodMeta,
    lifecycle: restart::PodStateMachine,
    /// The init containers, then the containers, in the pod's order.
    containers: Vec<SupervisedContainer>,
    /// The containers' images: found, pulled, leased.
    images: PodImages,
    /// The last hold reported per container (logged once, not at every retry).
    holds: Vec<Option<String>>,
    sandbox: PodSandbox,
    echo: Echo,
    notifier: Notifier,
    stopping: Option<Stopping>,
    /// The pod reached a terminal phase (restartPolicy Never/OnFailure).
    finished: bool,
    /// The signal that stopped the pod.
    stopped_by: Option<Signal>,
    trace: Trace,
    /// Local-storage limits, checked on kubelet's housekeeping timer.
    eviction: Eviction,
    /// The pod was evicted: kubelet's message (status Failed, Evicted).
    evicted: Option<String>,
}

impl PodRuntime {
    fn new(id: PodId, pod: PodSpec, config: Config, signals: Signals, trace: Trace) -> PodRuntime {
        let now = Stamp::now();
        let lifecycle = restart::PodStateMachine::new(
            pod.restart_policy,
            config.backoff,
            pod.init_containers.iter().map(|c| c.name.clone()),
            pod.containers.iter().map(|c| c.name.clone()),
            now,
        );
        let containers = pod
            .init_containers
            .iter()
            .enumerate()
            .map(|(i, c)| (Slot::Init(i), c))
            .chain(
                pod.containers
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (Slot::App(i), c)),
            )
            .map(|(slot, spec)| SupervisedContainer::new(slot, spec.clone()))
            .collect();
        let image = |c: &spec::Container| ContainerMeta {
            image: c.image.written.clone(),
            image_id: String::new(),
        };
        let meta = PodMeta {
            name: pod.name.clone(),
            namespace: Some(pod.namespace.clone()),
            uid: Some(id.uid()),
            created: now.wall,
            deleting: None,
            start_time: None,
            host_ips: Vec::new(),
            pod_ips: Vec::new(),
            init_containers: pod.init_containers.iter().map(image).collect(),
            containers: pod.containers.iter().map(image).collect(),
            ended: None,
        };
        let state_dir = config.layout.pod_state_dir(&id);
        let images = PodImages::new(config.images.clone(), config.backoff, &pod, &state_dir);
        let holds = vec![None; pod.init_containers.len() + pod.containers.len()];
        PodRuntime {
            images,
            holds,
            sandbox: PodSandbox::new(&id, state_dir.clone()),
            id,
            pod,
            config,
            signals,
            state_dir,
            event_loop: None,
            store: None,
            meta,
            lifecycle,
            containers,
            echo: Echo::stdout().unwrap_or_else(|_| Echo::disabled()),
            notifier: Notifier::from_env(now.mono),
            stopping: None,
            finished: false,
            stopped_by: None,
            trace,
            eviction: Eviction::default(),
            evicted: None,
        }
    }

    /// Everything before the first container: state dir, status, cgroups,
    /// volumes, sandbox. On error, `teardown` removes what was made.
    fn start(&mut self) -> anyhow::Result<()> {
        let event_loop = EventLoop::new()?;
        event_loop.watch(self.signals.as_fd(), SIGNALS)?;
        self.event_loop = Some(event_loop);
        self.store = Some(StatusStore::create(&self.config.layout, &self.id)?);
        self.images.prepare(&self.pod).with_context(|| {
            format!("write the pull secrets under {}", self.state_dir.display())
        })?;
        self.notifier.status("starting the sandbox");
        self.sandbox.prepare(
            &self.pod,
            self.config.cgroup_parent.as_deref(),
            &self.config.cni,
        )?;
        self.start_sandbox()?;
        // After the sandbox's preparation, which clears what a dead run left
        // (its exec records among it), before any container starts.
        crate::exec::record::PodRecord::of(&self.pod).write(&self.state_dir)?;
        eprintln!(
            "supervisor: pod {} sandbox up (pause pid {}), {} init container(s), {} container(s)",
            self.id,
            self.sandbox.pause_pid().unwrap_or(0),
            self.pod.init_containers.len(),
            self.pod.containers.len()
        );
        let ctx = self.sandbox.context(
            &self.pod,
            &self.config.layout,
            self.config.log,
            &self.config.confinement,
        );
        self.eviction = Eviction::new(
            &self.pod,
            &self.id,
            ctx.as_ref().map(|c| c.volumes),
            &self.config.layout,
            Instant::now(),
        );
        Ok(())
    }

    /// pause, then the pod's network and /etc files.
    fn start_sandbox(&mut self) -> anyhow::Result<()> {
        self.sandbox
            .start_pause(&self.pod, &self.config.pause, self.config.pod_pids_limit)?;
        self.meta.start_time = Some(SystemTime::now());
        self.sandbox.attach_network(&self.pod, &self.config.cni)?;
        Ok(())
    }

    /// The event loop: start what is due, sleep until something happens,
    /// handle it; until the pod is stopped or finished.
    fn run(&mut self) -> anyhow::Result<i32> {
        // Something ran since the code pages were last dropped.
        let mut touched = true;
        let mut last_trim: Option<Instant> = None;
        loop {
            let now = Instant::now();
            self.notifier.ping_if_due(now);
            if let Some(stopping) = &self.stopping
                && now >= stopping.deadline
            {
                if !stopping.killed {
                    self.kill_all("the grace period ended");
                } else {
                    // SIGKILLed and still there (a process stuck in the
                    // kernel): the teardown tries once more and reports.
                    eprintln!(
                        "supervisor: pod {}: processes left {CGROUP_TIMEOUT:?} after SIGKILL",
                        self.id
                    );
                    return Ok(self.exit_code_when_stopped());
                }
            }
            if let Some(message) = self.eviction.check_if_due(now) {
                self.evict(message);
            }
            for slot in self.lifecycle.due(now) {
                self.start_container(slot);
            }
            self.park_due(now);
            self.run_probes(now);
            self.publish_status();
            let swept_at = Instant::now();
            for c in &mut self.containers {
                c.sweep_retired(swept_at);
            }
            if self.stopping.is_some() && self.nothing_runs() && !self.images.pulling() {
                return Ok(self.exit_code_when_stopped());
            }
            // A container waiting for a pull has no deadline: the pull's
            // end makes it due, so the pod is not done while one runs.
            if self.stopping.is_none() && self.lifecycle.is_done() && !self.images.pulling() {
                self.finished = true;
                self.eviction.stop();
                let phase = self.lifecycle.phase();
                eprintln!("supervisor: pod {} is {}", self.id, phase.as_str());
                return Ok(if phase == restart::PodPhase::Succeeded {
                    0
                } else {
                    1
                });
            }
            let deadline = [
                self.lifecycle.next_deadline(),
                self.stopping.as_ref().map(|s| s.deadline),
                self.notifier.next_ping(),
                self.eviction.next_check(),
                self.probe_deadline(),
                self.containers.iter().filter_map(|c| c.park_at()).min(),
                self.containers
                    .iter()
                    .any(|c| c.has_retired())
                    .then(|| Instant::now() + RETIRED_RETRY),
            ]
            .into_iter()
            .flatten()
            .min();
            // Going idle with nothing scheduled: the code that ran (start-up,
            // a restart) gives its pages back (see `memory`), at most once
            // per TRIM_INTERVAL: the next event faults them in again (about
            // 1 ms), which a container restarting every second should not
            // pay each time. A trim held back is done when it is due.
            let mut trim_at = None;
            if touched && deadline.is_none() && self.nothing_pending() {
                match last_trim.map(|at| at + TRIM_INTERVAL) {
                    Some(due) if due > now => trim_at = Some(due),
                    _ => {
                        touched = false;
                        last_trim = Some(now);
                        crate::memory::drop_idle_code();
                    }
                }
            }
            let deadline = deadline.or(trim_at);
            let event_loop = self.event_loop.as_mut().expect("started");
            event_loop.set_deadline(deadline)?;
            for token in event_loop.wait()? {
                touched = true;
                match token {
                    SIGNALS => self.on_signals()?,
                    TIMER => {}
                    token => self.on_output(token),
                }
            }
        }
    }

    /// Every container has been started once (init containers done).
    fn nothing_pending(&self) -> bool {
        self.lifecycle
            .containers()
            .iter()
            .all(|c| !matches!(c.state(), restart::State::Waiting { .. }) || c.restart_count() > 0)
    }

    fn nothing_runs(&self) -> bool {
        self.containers.iter().all(|c| !c.is_running())
    }

    /// The earliest probe start or timeout, or end of a probe kill's grace.
    fn probe_deadline(&self) -> Option<Instant> {
        self.containers
            .iter()
            .filter_map(SupervisedContainer::probe_deadline)
            .min()
    }

    /// Start due probes, time out late ones, and end the grace period of
    /// containers a probe failed.
    fn run_probes(&mut self, now: Instant) {
        let Some(event_loop) = self.event_loop.as_ref() else {
            return;
        };
        let netns = self.sandbox.netns_path();
        let pod_ip = self.sandbox.pod_ip();
        let mut outcomes = Vec::new();
        for (index, c) in self.containers.iter_mut().enumerate() {
            let mut fds = ContainerFds::new(event_loop, index);
            for outcome in c.tick_probes(now, netns.as_deref(), pod_ip, &mut fds) {
                outcomes.push((index, outcome));
            }
        }
        for (index, outcome) in outcomes {
            self.on_probe_outcome(index, outcome);
        }
    }

    fn on_probe_outcome(&mut self, index: usize, outcome: Outcome) {
        let c = &mut self.containers[index];
        let slot = c.slot();
        match outcome {
            Outcome::Started => {
                let has_readiness = c.has_readiness_probe();
                if !has_readiness && let Some(state) = self.lifecycle.get_mut(slot) {
                    state.set_ready(true);
                }
            }
            Outcome::Ready(ready) => {
                if let Some(state) = self.lifecycle.get_mut(slot) {
                    state.set_ready(ready);
                }
            }
            Outcome::Failed {
                kind,
                message,
                grace_period,
            } => {
                let grace = grace_period.unwrap_or(self.pod.termination_grace_period);
                if !c.stop_for_probe(&message, grace) {
                    return;
                }
                let name = &c.spec().name;
                eprintln!("supervisor: [{name}] {message}: killing it");
                if let Some(state) = self.lifecycle.get_mut(slot) {
                    state.set_ready(false);
                }
                if let Some(store) = &mut self.store {
                    let _ = store.record_event(
                        "Warning",
                        "Unhealthy",
                        &format!("spec.containers{{{name}}}"),
                        &format!("{message} ({kind} probe): the container will be restarted"),
                        SystemTime::now(),
                    );
                }
            }
        }
    }

    fn on_signals(&mut self) -> anyhow::Result<()> {
        while let Some(info) = self.signals.read()? {
            match Signal::try_from(info.signal) {
                Ok(Signal::SIGCHLD) => self.reap()?,
                Ok(signal @ (Signal::SIGTERM | Signal::SIGINT)) => self.on_stop_signal(signal),
                // Everything else is ignored: a PID 1 must not die of a
                // stray SIGHUP or SIGPIPE.
                _ => {}
            }
        }
        Ok(())
    }

    fn on_stop_signal(&mut self, signal: Signal) {
        if let Some(stopping) = &self.stopping {
            if signal == Signal::SIGINT && !stopping.killed {
                self.kill_all("a second SIGINT");
            }
            return;
        }
        let grace = self.pod.termination_grace_period;
        eprintln!(
            "supervisor: {signal}: stopping pod {} (grace period {}s)",
            self.id,
            grace.as_secs()
        );
        self.notifier.stopping(grace);
        self.eviction.stop();
        self.stopped_by = Some(signal);
        self.lifecycle.stop();
        self.images.stop_pulls();
        self.drop_parked();
        self.meta.deleting = Some(SystemTime::now());
        // Each instance's own grace deadline is the pod's one, below.
        for c in &mut self.containers {
            if let Err(error) = c.stop(grace) {
                eprintln!("supervisor: {error}");
            }
        }
        self.stopping = Some(Stopping {
            deadline: Instant::now() + grace,
            killed: false,
        });
    }

    /// kubelet's eviction for a local-storage limit: the containers are
    /// killed at once (grace period 0), nothing restarts, and the pod is
    /// Failed with reason Evicted and `message`.
    fn evict(&mut self, message: String) {
        eprintln!("supervisor: pod {} evicted: {message}", self.id);
        if let Some(store) = &mut self.store {
            let _ = store.record_event("Warning", "Evicted", "", &message, SystemTime::now());
        }
        self.evicted = Some(message);
        self.eviction.stop();
        self.lifecycle.stop();
        self.images.stop_pulls();
        self.drop_parked();
        self.stopping = Some(Stopping {
            deadline: Instant::now(),
            killed: false,
        });
        self.kill_all("evicted");
    }

    /// What `run` returns once a stopped pod is down: 1 when it was
    /// evicted (it Failed), else 0 (stopped by a signal).
    fn exit_code_when_stopped(&self) -> i32 {
        i32::from(self.evicted.is_some())
    }

    /// SIGKILL every process of the pod's containers through their cgroups.
    fn kill_all(&mut self, why: &str) {
        eprintln!("supervisor: {why}: killing what is left of pod {}", self.id);
        // SIGKILL to every container at once, without waiting for one
        // before the next: their exits come back as SIGCHLD.
        for c in &self.containers {
            if let Err(error) = c.kill() {
                eprintln!("supervisor: [{}] {error}", c.spec().name);
            }
        }
        if let Some(stopping) = &mut self.stopping {
            stopping.killed = true;
            stopping.deadline = Instant::now() + CGROUP_TIMEOUT;
        }
    }

    /// Reap every exited child; the containers' ones end their instance.
    fn reap(&mut self) -> anyhow::Result<()> {
        let reaped = pid1::reap()?;
        for pid1::ReapedChild { pid, status, .. } in reaped.exited {
            let pid = pid.as_raw();
            if let Some(ended) = self.images.on_reaped(pid, &status, Instant::now()) {
                if ended.succeeded {
                    let took = ended.took.as_secs_f64();
                    let message =
                        format!("Successfully pulled image {:?} in {took:.3}s", ended.image);
                    self.record_container_event(&ended.waiting, "Normal", "Pulled", &message);
                }
                // Due again: each looks at the pull's outcome.
                let now = Instant::now();
                for index in ended.waiting {
                    let slot = self.containers[index].slot();
                    self.hold(slot, WaitingReason::ContainerCreating, None, Some(now));
                }
            } else if let Some(index) = self
                .containers
                .iter()
                .position(|c| c.running_pid() == Some(pid))
            {
                self.on_exit(index, status);
            } else if self.sandbox.pause_pid() == Some(pid) {
                self.on_sandbox_death(status)?;
            } else {
                // An exec probe, or an orphan (reaped: nothing else to do).
                let now = Instant::now();
                let mut outcomes = Vec::new();
                for (index, c) in self.containers.iter_mut().enumerate() {
                    if let Some(found) = c.on_probe_exit(pid, &status, now) {
                        outcomes.extend(found.into_iter().map(|o| (index, o)));
                        break;
                    }
                }
                for (index, outcome) in outcomes {
                    self.on_probe_outcome(index, outcome);
                }
            }
        }
        Ok(())
    }

    fn on_exit(&mut self, index: usize, status: container::ExitStatus) {
        let now = Stamp::now();
        let c = &mut self.containers[index];
        if let Some(state) = self.lifecycle.get(c.slot()) {
            self.trace
                .record(&c.spec().name, state.restart_count(), Step::Reaped);
        }
        let event_loop = self.event_loop.as_ref().expect("started");
        let termination = c.end_instance(
            status,
            now.wall,
            &mut self.echo,
            &mut ContainerFds::new(event_loop, index),
        );
        let slot = c.slot();
        let name = c.spec().name.clone();
        match self.lifecycle.handle(
            slot,
            Event::Exited {
                at: now,
                termination,
            },
        ) {
            Ok(Decision::RestartAt(at)) if at > now.mono => {
                eprintln!("supervisor: [{name}] restarting in {:?}", at - now.mono)
            }
            Ok(Decision::RestartAt(_)) => {}
            // No next instance: its parked one goes.
            Ok(Decision::Finished | Decision::Nothing) => self.containers[index].discard_parked(),
            Err(error) => eprintln!("supervisor: {error}"),
        }
    }

    /// pause died: the sandbox is gone. Kill every container, start a new
    /// sandbox; the containers come back under their restart policy.
    fn on_sandbox_death(&mut self, status: container::ExitStatus) -> anyhow::Result<()> {
        self.sandbox.forget_pause();
        if self.stopping.is_some() {
            return Ok(());
        }
        eprintln!(
            "supervisor: pause of pod {} died ({status}): recreating the sandbox",
            self.id
        );
        if let Some(store) = &mut self.store {
            let _ = store.record_event(
                "Warning",
                "SandboxChanged",
                "",
                &format!("Pod sandbox died ({status}), it will be killed and re-created."),
                SystemTime::now(),
            );
        }
        // Parked instances would join the dead sandbox.
        self.drop_parked();
        for c in &self.containers {
            c.kill_and_wait();
        }
        self.sandbox.detach_network();
        self.start_sandbox()
    }

    /// Read what a container wrote; EOF closes that stream.
    fn on_output(&mut self, token: u64) {
        let index = (token / TOKENS_PER_CONTAINER) as usize;
        let stream = match token % TOKENS_PER_CONTAINER {
            STDOUT_TOKEN => Stream::Stdout,
            STDERR_TOKEN => Stream::Stderr,
            k if k >= PROBE_TOKEN => {
                self.on_probe_socket(index, (k - PROBE_TOKEN) as u8);
                return;
            }
            _ => return,
        };
        let (Some(event_loop), Some(c)) =
            (self.event_loop.as_ref(), self.containers.get_mut(index))
        else {
            return;
        };
        c.read_output(
            stream,
            &mut self.echo,
            &mut ContainerFds::new(event_loop, index),
        );
    }

    fn on_probe_socket(&mut self, index: usize, slot: u8) {
        let (Some(event_loop), Some(c)) =
            (self.event_loop.as_ref(), self.containers.get_mut(index))
        else {
            return;
        };
        let outcomes = c.on_probe_socket(
            slot,
            Instant::now(),
            &mut ContainerFds::new(event_loop, index),
        );
        for outcome in outcomes {
            self.on_probe_outcome(index, outcome);
        }
    }

    fn start_container(&mut self, slot: Slot) {
        let now = Stamp::now();
        let index = match slot {
            Slot::Init(i) => i,
            Slot::App(i) => self.pod.init_containers.len() + i,
        };
        let restart_count = self
            .lifecycle
            .get(slot)
            .map_or(0, restart::ContainerStateMachine::next_restart_count);
        let name = self.containers[index].spec().name.clone();
        self.trace.record(&name, restart_count, Step::Deciding);
        if !self.image_ready(index, slot, now.mono) {
            return;
        }
        let ctx = self.sandbox.context(
            &self.pod,
            &self.config.layout,
            self.config.log,
            &self.config.confinement,
        );
        let event_loop = self.event_loop.as_ref().expect("started");
        let started = self.containers[index].start(
            ctx.as_ref(),
            restart_count,
            &mut self.echo,
            &mut ContainerFds::new(event_loop, index),
        );
        match started {
            Ok(()) => {
                self.trace.record(&name, restart_count, Step::Spawned);
                // A container that restarted once is likely to again: its
                // next instance will wait, parked (never under
                // restartPolicy Never).
                // Not under imagePullPolicy Always either: each start asks
                // the registry first.
                let always = self.containers[index].spec().image.pull_policy
                    == image::reference::PullPolicy::Always;
                if restart_count > 0
                    && self.pod.restart_policy != restart::RestartPolicy::Never
                    && !always
                {
                    self.containers[index].schedule_park();
                }
                // Ready once running, unless a readiness or startup probe
                // has to say so first.
                let spec = self.containers[index].spec();
                let gated = spec.readiness_probe.is_some() || spec.startup_probe.is_some();
                if let Some(c) = self.lifecycle.get_mut(slot) {
                    c.set_readiness_probe(gated);
                }
                let container_id =
                    format!("supervisor://{}/{}/{}", self.id.key(), name, restart_count);
                if let Err(error) = self.lifecycle.handle(
                    slot,
                    Event::Started {
                        at: now,
                        container_id,
                    },
                ) {
                    eprintln!("supervisor: {error}");
                }
            }
            Err(SupervisedError::Command(
                error @ (CommandError::NothingToRun { .. } | CommandError::Confinement { .. }),
            )) => {
                let message = supervised::error_chain(&error);
                self.held(
                    index,
                    WaitingReason::CreateContainerError,
                    message,
                    Some(now.mono + RESYNC),
                );
            }
            // kubelet: a subPath it cannot prepare safely is
            // CreateContainerConfigError (makeMounts), retried later.
            Err(SupervisedError::Command(error @ CommandError::SubPath { .. })) => {
                let message = supervised::error_chain(&error);
                self.held(
                    index,
                    WaitingReason::CreateContainerConfigError,
                    message,
                    Some(now.mono + RESYNC),
                );
            }
            // containerd fails the create when runc cannot apply the
            // profile: CreateContainerError, not a run that failed.
            Err(SupervisedError::Spawn(
                error @ container::SpawnError::Child {
                    step:
                        container::error::SpawnStep::Seccomp | container::error::SpawnStep::AppArmor,
                    ..
                },
            )) => {
                self.trace.record(&name, restart_count, Step::Failed);
                let message = format!("container {name}: {error}");
                self.held(
                    index,
                    WaitingReason::CreateContainerError,
                    message,
                    Some(now.mono + RESYNC),
                );
            }
            Err(SupervisedError::Command(CommandError::User { source, .. })) => {
                let reason = if source.is_config_error() {
                    WaitingReason::CreateContainerConfigError
                } else {
                    WaitingReason::CreateContainerError
                };
                self.held(index, reason, source.to_string(), Some(now.mono + RESYNC));
            }
            Err(error) => {
                self.trace.record(&name, restart_count, Step::Failed);
                let message = supervised::error_chain(&error);
                eprintln!("supervisor: [{name}] cannot run: {message}");
                if let Err(error) = self
                    .lifecycle
                    .handle(slot, Event::SpawnFailed { at: now, message })
                {
                    eprintln!("supervisor: {error}");
                }
            }
        }
    }

    /// Whether container `index`'s image is ready; if not, the container
    /// is held (pulling, or why it cannot be had) and the pull may start.
    fn image_ready(&mut self, index: usize, slot: Slot, now: Instant) -> bool {
        let image = self.containers[index].spec().image.clone();
        match self.images.ensure(index, &image, now) {
            Availability::Ready(resolved) => {
                let meta = self.container_meta(index);
                meta.image = resolved.name.clone();
                meta.image_id = resolved.image_id.clone();
                self.containers[index].set_image(resolved);
                self.holds[index] = None;
                true
            }
            Availability::Pulling { started } => {
                if started {
                    let message = format!("Pulling image {:?}", image.written);
                    self.record_container_event(&[index], "Normal", "Pulling", &message);
                }
                self.hold(slot, WaitingReason::ContainerCreating, None, None);
                false
            }
            Availability::Unavailable(unavailable) => {
                self.held(
                    index,
                    unavailable.reason,
                    unavailable.message,
                    unavailable.retry_at,
                );
                false
            }
        }
    }

    /// Container `index` waits with `reason` until `until` (None: until a
    /// pull ends); reported once per distinct message (log line and event).
    fn held(
        &mut self,
        index: usize,
        reason: WaitingReason,
        message: String,
        until: Option<Instant>,
    ) {
        self.report_hold(index, reason, &message);
        let slot = self.containers[index].slot();
        self.hold(slot, reason, Some(message), until);
    }

    fn report_hold(&mut self, index: usize, reason: WaitingReason, message: &str) {
        let text = format!("{}: {message}", reason.as_str());
        if self.holds[index].as_deref() == Some(text.as_str()) {
            return;
        }
        let name = self.containers[index].spec().name.clone();
        eprintln!("supervisor: [{name}] {text}");
        let event_reason = match reason {
            WaitingReason::ImagePullBackOff => "BackOff",
            _ => "Failed",
        };
        self.record_container_event(&[index], "Warning", event_reason, &text);
        self.holds[index] = Some(text);
    }

    /// An event about the containers `indexes` (the first names it).
    fn record_container_event(
        &mut self,
        indexes: &[usize],
        kind: &str,
        reason: &str,
        message: &str,
    ) {
        let (Some(first), Some(store)) = (indexes.first(), &mut self.store) else {
            return;
        };
        let c = &self.containers[*first];
        let list = match c.slot() {
            Slot::Init(_) => "initContainers",
            Slot::App(_) => "containers",
        };
        let _ = store.record_event(
            kind,
            reason,
            &format!("spec.{list}{{{}}}", c.spec().name),
            message,
            SystemTime::now(),
        );
    }

    fn hold(
        &mut self,
        slot: Slot,
        reason: WaitingReason,
        message: Option<String>,
        until: Option<Instant>,
    ) {
        if let Err(error) = self.lifecycle.handle(
            slot,
            Event::Held {
                reason,
                message,
                until,
            },
        ) {
            eprintln!("supervisor: {error}");
        }
    }

    /// The status entry of container `index` (init containers first).
    fn container_meta(&mut self, index: usize) -> &mut ContainerMeta {
        let init = self.meta.init_containers.len();
        if index < init {
            &mut self.meta.init_containers[index]
        } else {
            &mut self.meta.containers[index - init]
        }
    }

    /// Park the next instance of every container whose time has come.
    fn park_due(&mut self, now: Instant) {
        for c in &mut self.containers {
            if !c.take_park_due(now) || self.stopping.is_some() {
                continue;
            }
            if let Some(state) = self.lifecycle.get(c.slot()) {
                let next = state.restart_count() + 1;
                let ctx = self.sandbox.context(
                    &self.pod,
                    &self.config.layout,
                    self.config.log,
                    &self.config.confinement,
                );
                c.park_next(ctx.as_ref(), next);
            }
        }
    }

    /// Kill every parked instance (the sandbox they would join is gone, or
    /// the pod stops).
    fn drop_parked(&mut self) {
        for c in &mut self.containers {
            c.discard_parked();
        }
    }

    /// Write the status file (when it changed) and tell systemd.
    fn publish_status(&mut self) {
        self.meta.pod_ips = self.sandbox.runtime_values.pod_ips.clone();
        let Some(store) = &mut self.store else {
            return;
        };
        let mut record =
            status::build(&self.meta, &self.lifecycle, store.last(), SystemTime::now());
        if let Some(message) = &self.evicted {
            record.status.phase = restart::PodPhase::Failed.as_str().to_owned();
            record.status.reason = Some("Evicted".to_owned());
            record.status.message = Some(message.clone());
        }
        if let Err(error) = store.write(&record) {
            eprintln!("supervisor: status: {error}");
        }
        let summary = crate::notify::summary(&self.lifecycle);
        let all_ready = !self.lifecycle.containers().is_empty()
            && self.lifecycle.containers().iter().all(|c| c.ready());
        if self.stopping.is_none() && all_ready {
            self.notifier.ready(&summary);
        }
        self.notifier.status(&summary);
    }

    /// Remove everything the pod made: processes, sandbox, volumes,
    /// cgroups, then write the last status (`error`: why the supervisor
    /// gives up the pod, if it does). Safe to call whatever `start` got to.
    fn teardown(&mut self, error: Option<&anyhow::Error>) {
        self.drop_parked();
        // Whatever still runs dies now (a failed start, or a finished pod's
        // leftovers); then reap so no zombie is left.
        for c in &self.containers {
            if let Err(error) = c.kill_everything() {
                eprintln!("supervisor: [{}] {error}", c.spec().name);
            }
        }
        self.images.teardown();
        let _ = pid1::reap();
        for c in &mut self.containers {
            c.forget();
        }
        // Nothing is left to exec into.
        let _ = std::fs::remove_dir_all(crate::exec::record::exec_dir(&self.state_dir));
        self.sandbox.teardown();
        // The last record: a pod stopped on a signal says so (a terminal
        // phase, nothing Running, not Terminating any more). This process
        // still holds the pod's lock: a reader that gets it sees this.
        let pid = std::process::id();
        let message = match (self.stopped_by, error) {
            (_, Some(error)) => Some(format!(
                "its supervisor (pid {pid}) stopped it on an error: {error:#}"
            )),
            (Some(signal), None) => Some(format!(
                "stopped on {signal} by its supervisor (pid {pid}), which then exited"
            )),
            // Finished by itself: its phase says how.
            (None, None) => None,
        };
        if let Some(message) = message {
            self.meta.ended = Some(status::PodEnd {
                reason: status::STOPPED.to_owned(),
                message,
            });
        }
        self.publish_status();
        let _ = pid1::reap();
    }
}
