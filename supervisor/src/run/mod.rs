//! `supervisor run MANIFEST`: the pod's event loop, until it is told to stop.
//! Start order: the sandbox (`sandbox`: cgroups, volumes, pause, CNI), then
//! init containers one by one to success, then the containers (each a
//! `supervised::SupervisedContainer`). One epoll set (signalfd, log pipes,
//! probe sockets, one timer) drives everything: nothing polls. Exits come
//! from SIGCHLD, reaped and matched against the containers' pids (an
//! unmatched one is an orphan, forgotten). SIGTERM/SIGINT: each container's
//! preStop hook, then its stop signal (sidecars last, in reverse order),
//! the grace period, a kill through the cgroups, then the teardown. A pod
//! whose regular containers are all done stops its sidecars the same way
//! and ends with its phase. A postStart hook runs right after each start;
//! the container is Running once it returned. A Job's pods are run one
//! after the other by `job`, under [`crate::job`]'s decisions.

mod job;
mod sandbox;

use crate::attach::server::{AttachServer, AttachTargets, AttachTokens};
use crate::confinement::{self, ConfinementOptions};
use crate::event_loop::{EventLoop, EventLoopError, TIMER};
use crate::eviction::Eviction;
use crate::hook::{self, HOOK_SLOT, HookKind};
use crate::host;
use crate::images::{Availability, ImageOptions, PodImages, RESYNC};
use crate::job::{JobBackoff, JobController, JobFailure};
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
    self, CGROUP_TIMEOUT, CommandError, FdWatch, HookContext, HookDone, StopNote,
    SupervisedContainer, SupervisedError,
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
    /// The root of the persistentVolumeClaims' volumes (None:
    /// $SUPERVISOR_VOLUME_DIR, else /var/lib/supervisor/volumes).
    pub volume_dir: Option<PathBuf>,
    /// The Job controller's pod failure back-off (a Job's pods only).
    pub job_backoff: JobBackoff,
}

/// Runs `supervisor run`: returns 0 after a stop by signal or a pod that
/// Succeeded, 1 when the pod Failed; for a Job, 0 when it is Complete, 1
/// when it failed with BackoffLimitExceeded, 124 with DeadlineExceeded.
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
        volume_dir: crate::volumes::claims::resolve_root(options.volume_dir.as_deref()),
    };
    let trace = match &options.trace {
        Some(path) => Trace::open(path).with_context(|| format!("--trace {}", path.display()))?,
        None => Trace::default(),
    };
    if let Some(spec) = loaded.pod.job {
        return job::run(
            id,
            loaded.pod,
            spec,
            options.job_backoff,
            config,
            signals,
            trace,
        );
    }
    let pod = PodRuntime::new(id, loaded.pod, config, signals, trace, None);
    let (outcome, _, _) = pod.run_to_end();
    outcome.map(PodOutcome::exit_code)
}

/// How one pod's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PodOutcome {
    /// It reached a terminal phase by itself (restartPolicy Never or
    /// OnFailure).
    Finished(restart::PodPhase),
    /// Stopped on SIGTERM or SIGINT.
    Stopped,
    /// Evicted (a local-storage limit): it Failed.
    Evicted,
    /// Killed because its Job failed.
    KilledForJob(JobFailure),
}

impl PodOutcome {
    /// `supervisor run`'s exit status for a lone pod: 0 when it Succeeded
    /// or was stopped by a signal, 1 when it Failed.
    fn exit_code(self) -> i32 {
        match self {
            PodOutcome::Finished(restart::PodPhase::Succeeded) | PodOutcome::Stopped => 0,
            PodOutcome::Finished(_) | PodOutcome::Evicted | PodOutcome::KilledForJob(_) => 1,
        }
    }
}

#[derive(Clone)]
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
    /// The root of the claims' volumes.
    volume_dir: PathBuf,
}

/// Token of the signalfd in the event loop; containers use
/// `index * TOKENS_PER_CONTAINER + k`: k = 1 stdout, 2 stderr, and
/// PROBE_TOKEN + slot for a probe's socket.
const SIGNALS: u64 = u64::MAX - 1;
const TOKENS_PER_CONTAINER: u64 = 8;
const STDOUT_TOKEN: u64 = 1;
const STDERR_TOKEN: u64 = 2;
/// Container `index`'s stdin (`index * TOKENS_PER_CONTAINER + 3`),
/// waited on for writability while attached clients' input is held.
const STDIN_TOKEN: u64 = 3;
const PROBE_TOKEN: u64 = 4;
/// The attach socket, and its clients from `ATTACH_CLIENTS` on.
const ATTACH_LISTENER: u64 = u64::MAX - 2;
const ATTACH_CLIENTS: u64 = 1 << 62;
const ATTACH_TOKENS: AttachTokens = AttachTokens {
    listener: ATTACH_LISTENER,
    clients: ATTACH_CLIENTS,
    input: |index| index as u64 * TOKENS_PER_CONTAINER + STDIN_TOKEN,
};

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

/// How the pod is being stopped (each container's grace period is its
/// own, see `supervised::stop`).
struct Stopping {
    /// Everything was SIGKILLed at once (a second SIGINT, an eviction).
    killed: bool,
    /// The pod completed (its regular containers are done): what still
    /// runs (its sidecars) is stopped, and the phase stands.
    completing: bool,
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
    /// The pod is a Job's: its controller, which may kill it.
    job: Option<JobController>,
    /// The Job failed while the pod ran: it is being killed.
    killed_for_job: Option<JobFailure>,
    /// Per container: an instance that runs its postStart hook, not yet
    /// told to the state machine (when it started, its id).
    pending_starts: Vec<Option<(Stamp, String)>>,
    /// The pod's attach socket (`supervisor attach`).
    attach: Option<AttachServer>,
}

/// The pod's containers as the attach server reaches them.
struct AttachableContainers<'a>(&'a mut [SupervisedContainer]);

impl AttachTargets for AttachableContainers<'_> {
    fn find(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|c| c.spec().name == name)
    }

    fn describe(&self, index: usize) -> (&str, bool, bool) {
        let spec = self.0[index].spec();
        (&spec.name, spec.stdin, spec.tty)
    }

    fn ends(
        &mut self,
        index: usize,
    ) -> Option<(
        Option<&mut supervised::stdio::Input>,
        Option<&std::fs::File>,
    )> {
        self.0.get_mut(index)?.attach_ends()
    }
}

impl PodRuntime {
    fn new(
        id: PodId,
        pod: PodSpec,
        config: Config,
        signals: Signals,
        trace: Trace,
        job: Option<JobController>,
    ) -> PodRuntime {
        let now = Stamp::now();
        let lifecycle = restart::PodStateMachine::new(
            pod.restart_policy,
            config.backoff,
            pod.init_containers.iter().map(|c| c.name.clone()),
            pod.containers.iter().map(|c| c.name.clone()),
            now,
        )
        .with_sidecars(
            pod.init_containers
                .iter()
                .enumerate()
                .filter(|(_, c)| c.kind == spec::ContainerKind::Sidecar)
                .map(|(i, _)| i),
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
        let pending_starts = vec![None; holds.len()];
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
            job,
            killed_for_job: None,
            pending_starts,
            attach: None,
        }
    }

    /// Start, run and tear down the pod; gives back the signals and the
    /// trace for a Job's next pod.
    fn run_to_end(mut self) -> (anyhow::Result<PodOutcome>, Signals, Trace) {
        let result = self.start().and_then(|()| self.run());
        self.teardown(result.as_ref().err());
        (result, self.signals, self.trace)
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
            &self.config.volume_dir,
        )?;
        self.start_sandbox()?;
        // After the sandbox's preparation, which clears what a dead run left
        // (its exec records among it), before any container starts.
        crate::exec::record::PodRecord::of(&self.pod).write(&self.state_dir)?;
        self.attach = Some(AttachServer::listen(
            &self.state_dir,
            ATTACH_TOKENS,
            self.event_loop.as_ref().expect("started"),
        )?);
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
    fn run(&mut self) -> anyhow::Result<PodOutcome> {
        // Something ran since the code pages were last dropped.
        let mut touched = true;
        let mut last_trim: Option<Instant> = None;
        loop {
            let now = Instant::now();
            self.notifier.ping_if_due(now);
            if self.stopping.is_some() && self.kill_overdue().is_some_and(|at| now >= at) {
                // SIGKILLed and still there (a process stuck in the
                // kernel): the teardown tries once more and reports.
                eprintln!(
                    "supervisor: pod {}: processes left {CGROUP_TIMEOUT:?} after SIGKILL",
                    self.id
                );
                return Ok(self.outcome_when_stopped());
            }
            // kubelet's computePodActions: a pod whose regular containers
            // are all done (restartPolicy Never or OnFailure) is killed,
            // its sidecars with it: they never keep it alive.
            if self.stopping.is_none() && self.lifecycle.regular_containers_done() {
                self.complete();
            }
            self.advance_stops(now);
            if let Some(message) = self.eviction.check_if_due(now) {
                self.evict(message);
            }
            for slot in self.lifecycle.due(now) {
                self.start_container(slot);
            }
            // After the starts: a restart that reaches the Job's limit
            // ends the pod at once.
            self.check_job(Instant::now());
            self.park_due(now);
            self.run_probes(now);
            self.publish_status();
            let swept_at = Instant::now();
            for c in &mut self.containers {
                c.sweep_retired(swept_at);
            }
            if self.stopping.is_some() && self.nothing_runs() && !self.images.pulling() {
                if self.stopping.as_ref().is_some_and(|s| s.completing) {
                    self.finished = true;
                    eprintln!(
                        "supervisor: pod {} is {}",
                        self.id,
                        self.lifecycle.phase().as_str()
                    );
                }
                return Ok(self.outcome_when_stopped());
            }
            // A container waiting for a pull has no deadline: the pull's
            // end makes it due, so the pod is not done while one runs.
            // An instance in its postStart hook runs, though the state
            // machine does not know it yet.
            let in_post_start = self.pending_starts.iter().any(Option::is_some);
            if self.stopping.is_none()
                && self.lifecycle.is_done()
                && !self.images.pulling()
                && !in_post_start
            {
                self.finished = true;
                self.eviction.stop();
                let phase = self.lifecycle.phase();
                eprintln!("supervisor: pod {} is {}", self.id, phase.as_str());
                return Ok(PodOutcome::Finished(phase));
            }
            let deadline = [
                self.lifecycle.next_deadline(),
                self.job_deadline(),
                self.kill_overdue(),
                self.notifier.next_ping(),
                self.eviction.next_check(),
                self.probe_deadline(),
                self.containers.iter().filter_map(|c| c.park_at()).min(),
                self.containers.iter().filter_map(|c| c.arm_at()).min(),
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
            let mut tokens = event_loop.wait()?;
            // Signals first: a reaped exit (and its restart) does not wait
            // behind the output events of the same wake-up, which its end
            // drains anyway.
            tokens.sort_by_key(|token| *token != SIGNALS);
            for token in tokens {
                touched = true;
                match token {
                    SIGNALS => self.on_signals()?,
                    TIMER => {}
                    ATTACH_LISTENER => self.with_attach(|server, _, event_loop| {
                        server.on_accept(event_loop);
                    }),
                    token if token >= ATTACH_CLIENTS => {
                        self.with_attach(|server, targets, event_loop| {
                            server.on_client(token, targets, event_loop);
                        });
                    }
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
        let hooks = HookContext {
            netns: netns.as_deref(),
            pod_ip: self.sandbox.pod_ip(),
        };
        let mut outcomes = Vec::new();
        let mut hooks_done = Vec::new();
        for (index, c) in self.containers.iter_mut().enumerate() {
            let mut fds = ContainerFds::new(event_loop, index);
            if let Some(done) = c.tick_post_start(now) {
                hooks_done.push((index, done));
            }
            for outcome in c.tick_probes(now, hooks, &mut fds) {
                outcomes.push((index, outcome));
            }
        }
        for (index, done) in hooks_done {
            self.on_hook_done(index, done);
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
                // A sidecar started releases what follows it.
                if let Err(error) = self.lifecycle.set_started(slot, Stamp::now()) {
                    eprintln!("supervisor: {error}");
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
                let netns = self.sandbox.netns_path();
                let hooks = HookContext {
                    netns: netns.as_deref(),
                    pod_ip: self.sandbox.pod_ip(),
                };
                let Some(event_loop) = self.event_loop.as_ref() else {
                    return;
                };
                let Some(notes) = c.stop_for(
                    &message,
                    grace,
                    hooks,
                    &mut ContainerFds::new(event_loop, index),
                ) else {
                    return;
                };
                let name = c.spec().name.clone();
                eprintln!("supervisor: [{name}] {message}: killing it");
                self.on_stop_notes(index, notes);
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
        self.stopped_by = Some(signal);
        self.stop_pod(signal.as_ref());
    }

    /// The Job controller's checks on its active pod (the deadline, and
    /// with OnFailure the containers' restarts against backoffLimit): a
    /// failed Job's pod is deleted, as the controller does, with the pod's
    /// grace period.
    fn check_job(&mut self, now: Instant) {
        let Some(controller) = &self.job else {
            return;
        };
        if self.stopping.is_some() || self.lifecycle.is_done() {
            return;
        }
        // pastBackoffLimitOnFailure sums init and regular containers.
        let restarts = self
            .lifecycle
            .init_containers()
            .iter()
            .chain(self.lifecycle.containers())
            .map(|c| c.restart_count())
            .sum();
        if let Some(failure) = controller.check_active(now, restarts) {
            self.killed_for_job = Some(failure);
            if let Some(store) = &mut self.store {
                let _ = store.record_event(
                    "Warning",
                    failure.reason(),
                    "",
                    failure.message(),
                    SystemTime::now(),
                );
            }
            self.stop_pod(&format!("job {}: {}", failure.reason(), failure.message()));
        }
    }

    /// When the Job controller looks at the pod next: its deadline.
    fn job_deadline(&self) -> Option<Instant> {
        let controller = self.job.as_ref()?;
        (self.stopping.is_none())
            .then(|| controller.deadline())
            .flatten()
    }

    /// Stop the pod as a deletion does: stop signals, the grace period,
    /// then SIGKILL (`why` names the cause in the log line).
    fn stop_pod(&mut self, why: &str) {
        let grace = self.pod.termination_grace_period;
        eprintln!(
            "supervisor: {why}: stopping pod {} (grace period {}s)",
            self.id,
            grace.as_secs()
        );
        self.notifier.stopping(grace);
        self.eviction.stop();
        self.lifecycle.stop();
        self.images.stop_pulls();
        self.drop_parked();
        self.meta.deleting = Some(SystemTime::now());
        self.stop_containers(grace);
        self.stopping = Some(Stopping {
            killed: false,
            completing: false,
        });
    }

    /// The regular containers are all done: stop what still runs (the
    /// sidecars, in reverse order) within the pod's grace period; the
    /// supervisor then exits with the pod's phase.
    fn complete(&mut self) {
        if !self.nothing_runs() {
            eprintln!(
                "supervisor: pod {}: its containers are done, stopping its sidecars",
                self.id
            );
        }
        self.eviction.stop();
        self.lifecycle.stop();
        self.images.stop_pulls();
        self.drop_parked();
        self.stop_containers(self.pod.termination_grace_period);
        self.stopping = Some(Stopping {
            killed: false,
            completing: true,
        });
    }

    /// Begin stopping every running container within `grace` (their
    /// preStop hooks start now; the stop signals follow in
    /// `advance_stops`).
    fn stop_containers(&mut self, grace: std::time::Duration) {
        let Some(event_loop) = self.event_loop.as_ref() else {
            return;
        };
        let netns = self.sandbox.netns_path();
        let hooks = HookContext {
            netns: netns.as_deref(),
            pod_ip: self.sandbox.pod_ip(),
        };
        let mut notes = Vec::new();
        for (index, c) in self.containers.iter_mut().enumerate() {
            let begun = c.begin_stop(
                grace,
                None,
                hooks,
                &mut ContainerFds::new(event_loop, index),
            );
            notes.push((index, begun));
        }
        for (index, notes) in notes {
            self.on_stop_notes(index, notes);
        }
    }

    /// Step every stop under way: a container gets its stop signal once its
    /// preStop hook returned and it is its turn. kubelet's
    /// terminationOrdering (kuberuntime_termination_order.go), when the
    /// pod stops: a sidecar's turn comes once every regular container and
    /// every sidecar after it has exited; the others' at once.
    fn advance_stops(&mut self, now: Instant) {
        let Some(event_loop) = self.event_loop.as_ref() else {
            return;
        };
        let pod_stop = self.stopping.is_some();
        let running: Vec<(Slot, bool)> = self
            .containers
            .iter()
            .map(|c| (c.slot(), c.is_running()))
            .collect();
        let mut notes = Vec::new();
        for (index, c) in self.containers.iter_mut().enumerate() {
            if !c.is_stopping() {
                continue;
            }
            let turn = !pod_stop
                || match c.slot() {
                    Slot::Init(i) if self.lifecycle.is_sidecar(c.slot()) => {
                        running.iter().all(|(slot, runs)| {
                            !runs
                                || match slot {
                                    Slot::App(_) => false,
                                    Slot::Init(j) => *j <= i || !self.lifecycle.is_sidecar(*slot),
                                }
                        })
                    }
                    _ => true,
                };
            let stepped = c.advance_stop(now, turn, &mut ContainerFds::new(event_loop, index));
            if !stepped.is_empty() {
                notes.push((index, stepped));
            }
        }
        for (index, notes) in notes {
            self.on_stop_notes(index, notes);
        }
    }

    /// When every running container has been SIGKILLed long enough to be
    /// gone (None: something still runs that was not killed).
    fn kill_overdue(&self) -> Option<Instant> {
        let mut latest = None;
        for c in self.containers.iter().filter(|c| c.is_running()) {
            let at = c.killed_at()?;
            latest = latest.max(Some(at + CGROUP_TIMEOUT));
        }
        latest
    }

    /// kubelet's pod name in hook messages (`format.Pod`).
    fn pod_for_messages(&self) -> String {
        format!(
            "{}_{}({})",
            self.pod.name,
            self.pod.namespace,
            self.id.uid()
        )
    }

    /// Report what a step of container `index`'s stop said.
    fn on_stop_notes(&mut self, index: usize, notes: Vec<StopNote>) {
        let name = self.containers[index].spec().name.clone();
        for note in notes {
            match note {
                StopNote::PreStopFailed(detail) => {
                    let Some(handler) = self.containers[index].spec().pre_stop.clone() else {
                        continue;
                    };
                    self.hook_failed(index, HookKind::PreStop, &handler, &detail);
                }
                StopNote::PreStopCutOff => eprintln!(
                    "supervisor: [{name}] preStop hook still running at the end of the grace period: stopping the container"
                ),
                StopNote::Signalled(_) => {}
                StopNote::SignalFailed(error) => eprintln!("supervisor: {error}"),
                StopNote::Killed => {
                    eprintln!("supervisor: [{name}] the grace period ended: killing it")
                }
            }
        }
    }

    /// A hook failed with `detail`: kubelet's message, logged and recorded
    /// as a Warning event (FailedPostStartHook, FailedPreStopHook).
    fn hook_failed(
        &mut self,
        index: usize,
        kind: HookKind,
        handler: &spec::Handler,
        detail: &str,
    ) -> String {
        let name = self.containers[index].spec().name.clone();
        let message = hook::failure_message(handler, &name, &self.pod_for_messages(), detail);
        eprintln!("supervisor: [{name}] {}: {message}", kind.failed_reason());
        self.record_container_event(&[index], "Warning", kind.failed_reason(), &message);
        message
    }

    /// Container `index`'s hook ended.
    fn on_hook_done(&mut self, index: usize, done: HookDone) {
        match (done.kind, done.result) {
            (HookKind::PostStart, Ok(())) => self.post_start_returned(index),
            (HookKind::PostStart, Err(detail)) => {
                self.post_start_returned(index);
                self.post_start_failed(index, &done.handler, &detail);
            }
            (HookKind::PreStop, Ok(())) => {}
            (HookKind::PreStop, Err(detail)) => {
                self.hook_failed(index, HookKind::PreStop, &done.handler, &detail);
            }
        }
    }

    /// The instance of container `index` whose postStart returned is
    /// Running now (kubelet's startContainer returns only then).
    fn post_start_returned(&mut self, index: usize) {
        let Some((at, container_id)) = self.pending_starts[index].take() else {
            return;
        };
        let slot = self.containers[index].slot();
        if let Err(error) = self
            .lifecycle
            .handle(slot, Event::Started { at, container_id })
        {
            eprintln!("supervisor: {error}");
        }
    }

    /// kubelet's startContainer: a failed postStart hook kills the
    /// container (`killContainer` with reason FailedPostStartHook: its
    /// preStop hook and the pod's grace period); it then restarts under
    /// its policy with the back-off, the hook's message in lastState.
    fn post_start_failed(&mut self, index: usize, handler: &spec::Handler, detail: &str) {
        let message = self.hook_failed(index, HookKind::PostStart, handler, detail);
        let Some(event_loop) = self.event_loop.as_ref() else {
            return;
        };
        let netns = self.sandbox.netns_path();
        let hooks = HookContext {
            netns: netns.as_deref(),
            pod_ip: self.sandbox.pod_ip(),
        };
        let grace = self.pod.termination_grace_period;
        let notes = self.containers[index].stop_for(
            &message,
            grace,
            hooks,
            &mut ContainerFds::new(event_loop, index),
        );
        if let Some(notes) = notes {
            self.on_stop_notes(index, notes);
        }
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
            killed: false,
            completing: false,
        });
        self.kill_all("evicted");
    }

    /// What `run` returns once a stopped pod is down: evicted, killed for
    /// its Job, completed with its phase (its regular containers done, its
    /// sidecars stopped), or stopped by a signal.
    fn outcome_when_stopped(&self) -> PodOutcome {
        let completed =
            self.stopping.as_ref().is_some_and(|s| s.completing) && self.stopped_by.is_none();
        match (self.evicted.is_some(), self.killed_for_job) {
            (true, _) => PodOutcome::Evicted,
            (false, Some(failure)) => PodOutcome::KilledForJob(failure),
            (false, None) if completed => PodOutcome::Finished(self.lifecycle.phase()),
            (false, None) => PodOutcome::Stopped,
        }
    }

    /// SIGKILL every process of the pod's containers through their cgroups.
    fn kill_all(&mut self, why: &str) {
        eprintln!("supervisor: {why}: killing what is left of pod {}", self.id);
        // SIGKILL to every container at once, without waiting for one
        // before the next: their exits come back as SIGCHLD.
        for c in &mut self.containers {
            if let Err(error) = c.kill() {
                eprintln!("supervisor: [{}] {error}", c.spec().name);
            }
        }
        if let Some(stopping) = &mut self.stopping {
            stopping.killed = true;
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
            } else if let Some((index, done)) = self
                .containers
                .iter_mut()
                .enumerate()
                .find_map(|(i, c)| c.on_hook_exit(pid, &status).map(|d| (i, d)))
            {
                self.on_hook_done(index, done);
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
        let attached = self.collects_output(index);
        let c = &mut self.containers[index];
        let slot = c.slot();
        let name = c.spec().name.clone();
        if let Some(state) = self.lifecycle.get(slot) {
            self.trace
                .record(&name, state.restart_count(), Step::Reaped);
        }
        let event_loop = self.event_loop.as_ref().expect("started");
        let ended = c.end_instance(status, &mut ContainerFds::new(event_loop, index));
        // Ended during its postStart hook: it did start.
        if let Some((at, container_id)) = self.pending_starts[index].take()
            && let Err(error) = self
                .lifecycle
                .handle(slot, Event::Started { at, container_id })
        {
            eprintln!("supervisor: {error}");
        }
        let decision = self.lifecycle.handle(
            slot,
            Event::Exited {
                at: now,
                termination: ended.termination().clone(),
            },
        );
        // A restart due now lets the parked successor go first: draining
        // the output, the logs and the status come while it execs.
        if let Ok(Decision::RestartAt(at)) = &decision
            && *at <= now.mono
            && let Some(state) = self.lifecycle.get(slot)
        {
            self.containers[index].release_parked(state.next_restart_count());
        }
        let event_loop = self.event_loop.as_ref().expect("started");
        let mut output = Vec::new();
        let termination = self.containers[index].finish_instance(
            ended,
            now.wall,
            &mut self.echo,
            &mut ContainerFds::new(event_loop, index),
            &mut |stream, bytes| {
                if attached {
                    output.push((stream, bytes.to_vec()));
                }
            },
        );
        self.send_attached(index, output);
        let exit_code = termination.exit_code;
        self.with_attach(|server, targets, event_loop| {
            server.on_instance_end(index, exit_code, targets, event_loop);
        });
        match decision {
            Ok(Decision::RestartAt(at)) if at > now.mono => {
                self.containers[index].note_backoff(at - now.mono);
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
            STDIN_TOKEN => {
                self.with_attach(|server, targets, event_loop| {
                    server.on_input_writable(index, targets, event_loop);
                });
                return;
            }
            k if k == PROBE_TOKEN + u64::from(HOOK_SLOT) => {
                self.on_hook_socket(index);
                return;
            }
            k if k >= PROBE_TOKEN => {
                self.on_probe_socket(index, (k - PROBE_TOKEN) as u8);
                return;
            }
            _ => return,
        };
        let attached = self.collects_output(index);
        let (Some(event_loop), Some(c)) =
            (self.event_loop.as_ref(), self.containers.get_mut(index))
        else {
            return;
        };
        let mut output = Vec::new();
        c.read_output(
            stream,
            &mut self.echo,
            &mut ContainerFds::new(event_loop, index),
            &mut |stream, bytes| {
                if attached {
                    output.push((stream, bytes.to_vec()));
                }
            },
        );
        self.send_attached(index, output);
    }

    /// Run `f` with the attach server, the containers it reaches and the
    /// event loop (nothing when there is no server yet).
    fn with_attach(
        &mut self,
        f: impl FnOnce(&mut AttachServer, &mut AttachableContainers<'_>, &EventLoop),
    ) {
        if let (Some(server), Some(event_loop)) = (&mut self.attach, &self.event_loop) {
            f(
                server,
                &mut AttachableContainers(&mut self.containers),
                event_loop,
            );
        }
    }

    /// Whether container `index` has attached clients, whose copy of its
    /// output is then collected for [`PodRuntime::send_attached`].
    fn collects_output(&self, index: usize) -> bool {
        self.attach.as_ref().is_some_and(|a| a.has_clients(index))
    }

    /// Container `index`'s output collected while it was read, to its
    /// attached clients.
    fn send_attached(&mut self, index: usize, output: Vec<(Stream, Vec<u8>)>) {
        self.with_attach(|server, targets, event_loop| {
            for (stream, bytes) in output {
                server.on_output(index, stream, &bytes, targets, event_loop);
            }
        });
    }

    fn on_hook_socket(&mut self, index: usize) {
        let (Some(event_loop), Some(c)) =
            (self.event_loop.as_ref(), self.containers.get_mut(index))
        else {
            return;
        };
        if let Some(done) = c.on_hook_socket(&mut ContainerFds::new(event_loop, index)) {
            self.on_hook_done(index, done);
        }
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
            // Not this instance: a successor let go at the exit goes.
            self.containers[index].discard_parked();
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
                if self.containers[index].spec().post_start.is_some() {
                    self.run_post_start(index, slot, now, container_id);
                } else if let Err(error) = self.lifecycle.handle(
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
            Err(SupervisedError::Command(
                error @ (CommandError::SubPath { .. } | CommandError::SubPathExpr { .. }),
            )) => {
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

    /// kubelet's startContainer runs the postStart hook right after the
    /// start and returns only when it has: until then the container waits
    /// as ContainerCreating (its instance runs; no probe runs yet), and
    /// once it returns the instance is Running since `at`.
    fn run_post_start(&mut self, index: usize, slot: Slot, at: Stamp, container_id: String) {
        let Some(event_loop) = self.event_loop.as_ref() else {
            return;
        };
        let netns = self.sandbox.netns_path();
        let hooks = HookContext {
            netns: netns.as_deref(),
            pod_ip: self.sandbox.pod_ip(),
        };
        let begun = self.containers[index]
            .begin_post_start(hooks, &mut ContainerFds::new(event_loop, index));
        self.pending_starts[index] = Some((at, container_id));
        match begun {
            Ok(()) => self.hold(slot, WaitingReason::ContainerCreating, None, None),
            Err(detail) => {
                let handler = self.containers[index].spec().post_start.clone();
                self.post_start_returned(index);
                if let Some(handler) = handler {
                    self.post_start_failed(index, &handler, &detail);
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
                if let Some(at) = state.restarts_at_once_from() {
                    c.arm_parked_from(at);
                }
            }
        }
        // An arm due from an instance started in this round (after `now`)
        // goes now, not a round later.
        let now = Instant::now();
        for c in &mut self.containers {
            c.arm_due(now);
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
        if let (Some(server), Some(event_loop)) = (self.attach.take(), &self.event_loop) {
            server.shut_down(&mut AttachableContainers(&mut self.containers), event_loop);
        }
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
            // Deleted by its Job's controller.
            (None, None) => self
                .killed_for_job
                .map(|failure| format!("deleted by the Job controller: {}", failure.message())),
        };
        if let Some(message) = message {
            let reason = match (self.stopped_by, error, self.killed_for_job) {
                (None, None, Some(failure)) => failure.reason(),
                _ => status::STOPPED,
            };
            self.meta.ended = Some(status::PodEnd {
                reason: reason.to_owned(),
                message,
            });
        }
        self.publish_status();
        let _ = pid1::reap();
    }
}
