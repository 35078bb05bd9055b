//! Restart decisions for a pod's containers, as kubelet makes them: the
//! restartPolicy, CrashLoopBackOff timing, exit classification, the order of
//! init containers and the pod phase. Pure code: no threads, no sleeps, no
//! system calls. Every event carries the caller's clock ([`Stamp`]), and the
//! caller asks [`PodStateMachine::next_deadline`] when to wake up next, so one epoll loop
//! with one timer drives everything.
//!
//! One container is a small state machine ([`ContainerStateMachine`]), written as an
//! explicit state x event table in the manner of s6-supervise:
//!
//! ```text
//!                 | Started         | SpawnFailed       | Exited            | InitDone          | Held              | Stop
//! ----------------+-----------------+-------------------+-------------------+-------------------+-------------------+-----------
//! Waiting         | -> Running      | -> backoff(*)     | invalid           | PodInitializing   | Waiting(reason,   | start_at
//!                 |                 |                   |                   | -> ContainerCreat.| start_at := until)| := None
//! Running         | invalid         | invalid           | -> backoff(*)     | ignored           | invalid           | no restart
//! Terminated      | invalid         | invalid           | invalid           | ignored           | invalid           | ignored
//!
//! backoff(*): the policy says restart -> Waiting(start_at = exit + delay), reason
//!             ContainerCreating when the delay is 0 (the first restart), else
//!             CrashLoopBackOff with kubelet's "back-off 10s restarting failed ..."
//!             message; the ended instance becomes lastState. Otherwise -> Terminated.
//! ```
//!
//! `Held` is what happens before a start when the container's image is not
//! there yet: being pulled (ContainerCreating, no deadline until the pull
//! ends), a failed pull (ErrImagePull, then ImagePullBackOff until the
//! image back-off ends), ErrImageNeverPull, InvalidImageName, or a config
//! the image cannot satisfy (CreateContainerConfigError). It counts no
//! restart and leaves lastState alone, as kubelet does.
//!
//! [`PodStateMachine`] releases the init containers one at a time
//! ([`Event::InitDone`]) and the containers after the last of them. Which
//! event releases the next one depends on the init container's kind, as
//! kubelet's `computeInitContainerActions` (kuberuntime_manager.go) has it
//! for native sidecars (KEP-753):
//!
//! ```text
//! init container i is | the next one (or the containers) is released when i
//! --------------------+--------------------------------------------------------
//! plain               | terminated with success (Exited 0, Finished)
//! sidecar             | is started: running, postStart returned, startup probe
//!                     | passed ([`PodStateMachine::set_started`]), the first time
//! ```
//!
//! A sidecar restarts under `Always` whatever the pod's policy, with the
//! same back-off, for the pod's whole life; it never blocks completion:
//! once every regular container has ended for good
//! ([`PodStateMachine::regular_containers_done`]) the caller stops the pod,
//! sidecars last (kubelet's computePodActions kills a pod whose regular
//! containers are all done).
//!
//! It does not spawn, signal or time anything itself; see the event loop.

use std::fmt;

use container::ExitStatus;
use std::time::{Duration, Instant, SystemTime};

use crate::time::go_duration;

/// One instant on both clocks: `mono` for deadlines, `wall` for the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Monotonic time: deadlines and run durations.
    pub mono: Instant,
    /// Wall-clock time: timestamps shown in the status.
    pub wall: SystemTime,
}

impl Stamp {
    /// Both clocks, read now.
    pub fn now() -> Self {
        Stamp {
            mono: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// This stamp moved forward by `by` on both clocks (tests, schedules).
    pub fn after(self, by: Duration) -> Self {
        Stamp {
            mono: self.mono + by,
            wall: self.wall + by,
        }
    }
}

/// `spec.restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    /// Restart after every exit (the Kubernetes default).
    #[default]
    Always,
    /// Restart after a failed exit only.
    OnFailure,
    /// Never restart.
    Never,
}

impl RestartPolicy {
    /// Parses the Kubernetes spelling.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "Always" => Some(Self::Always),
            "OnFailure" => Some(Self::OnFailure),
            "Never" => Some(Self::Never),
            _ => None,
        }
    }

    /// Whether a container that ended with `termination` is started again.
    pub fn restarts(self, termination: &Termination) -> bool {
        match self {
            Self::Always => true,
            Self::OnFailure => !termination.succeeded(),
            Self::Never => false,
        }
    }

    /// The policy init containers get: they always run to success, so
    /// `Always` acts as `OnFailure` for them.
    pub fn for_init(self) -> Self {
        match self {
            Self::Always | Self::OnFailure => Self::OnFailure,
            Self::Never => Self::Never,
        }
    }
}

/// Back-off settings. Kubernetes: 10 s initial, doubling to 300 s, forgotten
/// after the container ran 10 min. Bare hosts may lower them (0 allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// Delay before the second restart (the first is immediate).
    pub initial: Duration,
    /// Cap of the doubling delay.
    pub max: Duration,
    /// A container that ran at least this long restarts at once again.
    pub reset_after: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(300),
            reset_after: Duration::from_secs(600),
        }
    }
}

/// Per-container CrashLoopBackOff: 0, initial, 2*initial, ... max, max, ...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    config: BackoffConfig,
    /// Delay for the next restart; `None` means "at once" (fresh).
    next: Option<Duration>,
}

impl Backoff {
    /// A fresh back-off: the first restart is immediate.
    pub fn new(config: BackoffConfig) -> Self {
        Backoff { config, next: None }
    }

    /// How long an instance must run for its exit to be restarted at once
    /// (no back-off): zero when the next delay is zero anyway (a fresh
    /// back-off, or one of 0 s), else `reset_after`.
    pub fn runs_for_immediate_restart(&self) -> Duration {
        if self.next.is_none_or(|d| d.is_zero()) {
            Duration::ZERO
        } else {
            self.config.reset_after
        }
    }

    /// The delay before restarting a container that ran for `ran_for`, and
    /// the step to the next delay.
    pub fn on_exit(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= self.config.reset_after {
            self.next = None;
        }
        let delay = self.next.unwrap_or(Duration::ZERO);
        let following = match self.next {
            None => self.config.initial,
            Some(current) => current.saturating_mul(2),
        };
        self.next = Some(following.min(self.config.max));
        delay
    }
}

/// `state.terminated.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminationReason {
    /// Exit code 0.
    Completed,
    /// Non-zero exit code, or killed by a signal.
    Error,
    /// The container's cgroup counted an OOM kill.
    OomKilled,
    /// The process could not be started (exec or setup failed).
    ContainerCannotRun,
}

impl TerminationReason {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "Completed",
            Self::Error => "Error",
            Self::OomKilled => "OOMKilled",
            Self::ContainerCannotRun => "ContainerCannotRun",
        }
    }
}

impl fmt::Display for TerminationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Exit code reported for a container that could not be started (as Docker
/// and containerd report a start failure).
pub const CANNOT_RUN_EXIT_CODE: i32 = 128;

/// How a container instance ended, classified as kubelet does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    /// 0..255, or 128+N when killed by signal N.
    pub exit_code: i32,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    /// Completed / Error / OOMKilled / ContainerCannotRun.
    pub reason: TerminationReason,
    /// Human-readable detail (spawn error text).
    pub message: Option<String>,
}

impl Termination {
    /// Classifies a reaped exit. `oom_killed` is true when the caller saw the
    /// container cgroup's OOM-kill counter rise during this instance; the
    /// reason is then OOMKilled whatever the code (usually 137 = SIGKILL).
    pub fn classify(exit: ExitStatus, oom_killed: bool) -> Self {
        let (exit_code, signal) = match exit {
            ExitStatus::Exited(code) => (code, None),
            ExitStatus::Signaled(signal) => (128 + signal, Some(signal)),
        };
        let reason = if oom_killed {
            TerminationReason::OomKilled
        } else if exit_code == 0 {
            TerminationReason::Completed
        } else {
            TerminationReason::Error
        };
        Termination {
            exit_code,
            signal,
            reason,
            message: None,
        }
    }

    /// A start failure, with the spawn error's text as message.
    pub fn cannot_run(message: impl Into<String>) -> Self {
        Termination {
            exit_code: CANNOT_RUN_EXIT_CODE,
            signal: None,
            reason: TerminationReason::ContainerCannotRun,
            message: Some(message.into()),
        }
    }

    /// Exit code 0 (what OnFailure and init containers look at).
    pub fn succeeded(&self) -> bool {
        self.exit_code == 0 && self.reason == TerminationReason::Completed
    }
}

/// `state.waiting.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitingReason {
    /// About to be (or being) started.
    ContainerCreating,
    /// A regular container waiting for the init containers.
    PodInitializing,
    /// Waiting out a restart back-off.
    CrashLoopBackOff,
    /// The image pull just failed.
    ErrImagePull,
    /// Waiting out the image pull back-off.
    ImagePullBackOff,
    /// The image is not stored and the policy is Never.
    ErrImageNeverPull,
    /// The image reference does not parse.
    InvalidImageName,
    /// The container's config cannot be made from its spec and image
    /// (runAsNonRoot against the image's user, an unknown user name).
    CreateContainerConfigError,
    /// The container cannot be created (nothing to run).
    CreateContainerError,
}

impl WaitingReason {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContainerCreating => "ContainerCreating",
            Self::PodInitializing => "PodInitializing",
            Self::CrashLoopBackOff => "CrashLoopBackOff",
            Self::ErrImagePull => "ErrImagePull",
            Self::ImagePullBackOff => "ImagePullBackOff",
            Self::ErrImageNeverPull => "ErrImageNeverPull",
            Self::InvalidImageName => "InvalidImageName",
            Self::CreateContainerConfigError => "CreateContainerConfigError",
            Self::CreateContainerError => "CreateContainerError",
        }
    }
}

/// One ended instance, with its times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminated {
    /// How it ended.
    pub termination: Termination,
    /// When it started (None: it never ran).
    pub started_at: Option<SystemTime>,
    /// When it ended.
    pub finished_at: SystemTime,
    /// The instance's id, if it ran.
    pub container_id: Option<String>,
}

/// The current state of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not running; `start_at` is when it is due (None: not yet allowed,
    /// or never again).
    Waiting {
        /// Why it waits.
        reason: WaitingReason,
        /// Detail (the back-off message).
        message: Option<String>,
        /// Due time on the monotonic clock.
        start_at: Option<Instant>,
    },
    /// Running since `started`.
    Running {
        /// Start time on both clocks.
        started: Stamp,
        /// The instance's id as given by the caller.
        container_id: String,
    },
    /// Ended and not restarted (or the pod is stopping).
    Terminated(Terminated),
}

/// Inputs of the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The process runs (spawn returned).
    Started {
        /// When.
        at: Stamp,
        /// An id for this instance (e.g. `supervisor://<pod>/<name>/<n>`).
        container_id: String,
    },
    /// The spawn failed before the program ran.
    SpawnFailed {
        /// When.
        at: Stamp,
        /// The spawn error's text.
        message: String,
    },
    /// The process was reaped.
    Exited {
        /// When.
        at: Stamp,
        /// Its classification ([`Termination::classify`]).
        termination: Termination,
    },
    /// The init containers are done: regular containers may start.
    InitDone {
        /// When.
        at: Stamp,
    },
    /// It cannot start yet (its image is being pulled, or cannot be had):
    /// wait with `reason` until `until` (None: until told again).
    Held {
        /// Why.
        reason: WaitingReason,
        /// Detail (the pull error, the back-off message).
        message: Option<String>,
        /// When to try again.
        until: Option<Instant>,
    },
    /// The pod is stopping: never start this container again.
    Stop,
}

impl Event {
    fn name(&self) -> &'static str {
        match self {
            Event::Started { .. } => "Started",
            Event::SpawnFailed { .. } => "SpawnFailed",
            Event::Exited { .. } => "Exited",
            Event::InitDone { .. } => "InitDone",
            Event::Held { .. } => "Held",
            Event::Stop => "Stop",
        }
    }
}

/// An event that makes no sense in the current state (an event-loop bug).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("container {container}: event {event} is not valid in state {state}")]
pub struct TransitionError {
    /// The container's name.
    pub container: String,
    /// The state's name.
    pub state: &'static str,
    /// The event's name.
    pub event: &'static str,
}

/// What the caller should do after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing new.
    Nothing,
    /// Start the container at this time (may be now: ask `next_start_at`).
    RestartAt(Instant),
    /// The container ended for good.
    Finished,
}

/// One container's state machine with its restart count and back-off.
#[derive(Debug, Clone)]
pub struct ContainerStateMachine {
    name: String,
    policy: RestartPolicy,
    backoff: Backoff,
    state: State,
    last: Option<Terminated>,
    attempts: u32,
    ready: bool,
    readiness_probe: bool,
    stopping: bool,
    /// The running instance is started (startup probe passed, or none).
    started: bool,
    /// Some instance was started once (a sidecar then released the next).
    ever_started: bool,
}

impl ContainerStateMachine {
    /// A container not yet started. `released` says whether it may start now
    /// (ContainerCreating, due at `at`) or waits for the init containers
    /// (PodInitializing, no deadline until [`Event::InitDone`]).
    pub fn new(
        name: impl Into<String>,
        policy: RestartPolicy,
        backoff: BackoffConfig,
        released: bool,
        at: Stamp,
    ) -> Self {
        let state = if released {
            State::Waiting {
                reason: WaitingReason::ContainerCreating,
                message: None,
                start_at: Some(at.mono),
            }
        } else {
            State::Waiting {
                reason: WaitingReason::PodInitializing,
                message: None,
                start_at: None,
            }
        };
        ContainerStateMachine {
            name: name.into(),
            policy,
            backoff: Backoff::new(backoff),
            state,
            last: None,
            attempts: 0,
            ready: false,
            readiness_probe: false,
            stopping: false,
            started: false,
            ever_started: false,
        }
    }

    /// The container's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The previous instance's end (`lastState.terminated`).
    pub fn last_termination(&self) -> Option<&Terminated> {
        self.last.as_ref()
    }

    /// `restartCount`: starts (successful or not) after the first one. It is
    /// also the number of the current instance's log file.
    pub fn restart_count(&self) -> u32 {
        self.attempts.saturating_sub(1)
    }

    /// From when on an exit of the running instance, whatever its
    /// termination, is restarted at once (`Decision::RestartAt` now): the
    /// policy is Always, it is not stopping, and the back-off has no delay
    /// pending for an instance that ran that long (the delay only depends
    /// on how long it ran, measured to the reap). `None` while it does not
    /// run, or when an exit may not restart it at once.
    pub fn restarts_at_once_from(&self) -> Option<Instant> {
        let State::Running { started, .. } = &self.state else {
            return None;
        };
        if self.stopping || self.policy != RestartPolicy::Always {
            return None;
        }
        Some(started.mono + self.backoff.runs_for_immediate_restart())
    }

    /// The restart count the next start will have.
    pub fn next_restart_count(&self) -> u32 {
        self.attempts
    }

    /// `ready`: running and, when probes exist, passing readiness.
    pub fn ready(&self) -> bool {
        self.ready && matches!(self.state, State::Running { .. })
    }

    /// `started`: the running instance passed its startup probe (or has
    /// none), after its postStart hook returned.
    pub fn started(&self) -> bool {
        self.started && matches!(self.state, State::Running { .. })
    }

    /// Whether an instance of it was ever started.
    pub fn ever_started(&self) -> bool {
        self.ever_started
    }

    /// The running instance is started (the probes' `Started` outcome);
    /// ignored when nothing runs.
    pub fn set_started(&mut self) {
        if matches!(self.state, State::Running { .. }) {
            self.started = true;
            self.ever_started = true;
        }
    }

    /// Set by the readiness probe.
    pub fn set_ready(&mut self, ready: bool) {
        self.ready = ready;
    }

    /// Declares a readiness probe: the container then starts unready and
    /// waits for [`ContainerStateMachine::set_ready`]. Without one it is ready as soon as
    /// it runs, as in Kubernetes.
    pub fn set_readiness_probe(&mut self, has_probe: bool) {
        self.readiness_probe = has_probe;
    }

    /// When the container should be started, if it waits for a start.
    pub fn next_start_at(&self) -> Option<Instant> {
        match self.state {
            State::Waiting { start_at, .. } => start_at,
            _ => None,
        }
    }

    /// Whether the container is due at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        self.next_start_at().is_some_and(|at| at <= now)
    }

    /// Ended for good (Terminated and not restarting).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Terminated(_))
    }

    fn state_name(&self) -> &'static str {
        match self.state {
            State::Waiting { .. } => "Waiting",
            State::Running { .. } => "Running",
            State::Terminated(_) => "Terminated",
        }
    }

    /// Applies one event: the state x event table of the module docs.
    pub fn handle(&mut self, event: Event) -> Result<Decision, TransitionError> {
        let invalid = |this: &Self, event: &Event| TransitionError {
            container: this.name.clone(),
            state: this.state_name(),
            event: event.name(),
        };
        match (&self.state, event) {
            (State::Waiting { .. }, Event::Started { at, container_id }) => {
                self.attempts += 1;
                self.ready = !self.readiness_probe;
                self.started = false;
                self.state = State::Running {
                    started: at,
                    container_id,
                };
                Ok(Decision::Nothing)
            }
            (State::Waiting { .. }, Event::SpawnFailed { at, message }) => {
                self.attempts += 1;
                let ended = Terminated {
                    termination: Termination::cannot_run(message),
                    started_at: None,
                    finished_at: at.wall,
                    container_id: None,
                };
                Ok(self.ended(ended, at, Duration::ZERO))
            }
            (
                State::Waiting {
                    reason: WaitingReason::PodInitializing,
                    ..
                },
                Event::InitDone { at },
            ) => {
                if !self.stopping {
                    self.state = State::Waiting {
                        reason: WaitingReason::ContainerCreating,
                        message: None,
                        start_at: Some(at.mono),
                    };
                }
                Ok(Decision::RestartAt(at.mono))
            }
            (
                State::Waiting { .. },
                Event::Held {
                    reason,
                    message,
                    until,
                },
            ) => {
                if !self.stopping {
                    self.state = State::Waiting {
                        reason,
                        message,
                        start_at: until,
                    };
                }
                Ok(Decision::Nothing)
            }
            (State::Waiting { .. } | State::Terminated(_), Event::InitDone { .. }) => {
                Ok(Decision::Nothing)
            }
            (State::Running { .. }, Event::InitDone { .. }) => Ok(Decision::Nothing),
            (
                State::Running {
                    started,
                    container_id,
                },
                Event::Exited { at, termination },
            ) => {
                let ran_for = at.mono.saturating_duration_since(started.mono);
                let ended = Terminated {
                    termination,
                    started_at: Some(started.wall),
                    finished_at: at.wall,
                    container_id: Some(container_id.clone()),
                };
                Ok(self.ended(ended, at, ran_for))
            }
            (
                State::Waiting {
                    reason, message, ..
                },
                Event::Stop,
            ) => {
                self.stopping = true;
                self.state = State::Waiting {
                    reason: *reason,
                    message: message.clone(),
                    start_at: None,
                };
                Ok(Decision::Finished)
            }
            (State::Running { .. } | State::Terminated(_), Event::Stop) => {
                self.stopping = true;
                Ok(Decision::Nothing)
            }
            (_, event) => Err(invalid(self, &event)),
        }
    }

    /// Shared tail of Exited / SpawnFailed: restart with back-off or stop.
    fn ended(&mut self, ended: Terminated, at: Stamp, ran_for: Duration) -> Decision {
        self.ready = false;
        self.started = false;
        let restart = !self.stopping && self.policy.restarts(&ended.termination);
        if !restart {
            self.state = State::Terminated(ended);
            return Decision::Finished;
        }
        let delay = self.backoff.on_exit(ran_for);
        let start_at = at.mono + delay;
        self.last = Some(ended.clone());
        if delay.is_zero() {
            // kubelet shows the terminated instance until the new one runs.
            self.state = State::Waiting {
                reason: WaitingReason::ContainerCreating,
                message: None,
                start_at: Some(start_at),
            };
        } else {
            self.state = State::Waiting {
                reason: WaitingReason::CrashLoopBackOff,
                message: Some(format!(
                    "back-off {} restarting failed container={}",
                    go_duration(delay),
                    self.name
                )),
                start_at: Some(start_at),
            };
        }
        Decision::RestartAt(start_at)
    }
}

/// `status.phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodPhase {
    /// Not all containers have run yet.
    Pending,
    /// At least one container runs, or will be restarted.
    Running,
    /// All containers ended with success and will not restart.
    Succeeded,
    /// All containers ended, at least one failed, none will restart.
    Failed,
}

impl PodPhase {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
        }
    }
}

/// Which container of the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    /// `spec.initContainers[i]`.
    Init(usize),
    /// `spec.containers[i]`.
    App(usize),
}

/// All containers of one pod: init order, restarts, phase.
#[derive(Debug, Clone)]
pub struct PodStateMachine {
    policy: RestartPolicy,
    init: Vec<ContainerStateMachine>,
    /// Per init container: a native sidecar.
    sidecar: Vec<bool>,
    /// Per init container: what follows it was released.
    released_next: Vec<bool>,
    apps: Vec<ContainerStateMachine>,
    stopping: bool,
}

impl PodStateMachine {
    /// A pod whose init containers and containers have these names, created
    /// at `at`. The first init container (or all containers when there are
    /// none) is due at once.
    pub fn new<I, A>(
        policy: RestartPolicy,
        backoff: BackoffConfig,
        init_names: I,
        app_names: A,
        at: Stamp,
    ) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
        A: IntoIterator,
        A::Item: Into<String>,
    {
        let init: Vec<ContainerStateMachine> = init_names
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                let mut c =
                    ContainerStateMachine::new(name, policy.for_init(), backoff, i == 0, at);
                // kubelet: in a pod with init containers, every container not
                // yet created waits as PodInitializing.
                if let State::Waiting { reason, .. } = &mut c.state {
                    *reason = WaitingReason::PodInitializing;
                }
                c
            })
            .collect();
        let released = init.is_empty();
        let apps = app_names
            .into_iter()
            .map(|name| ContainerStateMachine::new(name, policy, backoff, released, at))
            .collect();
        PodStateMachine {
            policy,
            sidecar: vec![false; init.len()],
            released_next: vec![false; init.len()],
            init,
            apps,
            stopping: false,
        }
    }

    /// Marks the init containers at `indexes` as native sidecars: each
    /// restarts under `Always` whatever the pod's policy, and releases what
    /// follows it once started instead of once succeeded. Indexes out of
    /// range are ignored.
    pub fn with_sidecars(mut self, indexes: impl IntoIterator<Item = usize>) -> Self {
        for i in indexes {
            if let Some(c) = self.init.get_mut(i) {
                c.policy = RestartPolicy::Always;
                self.sidecar[i] = true;
            }
        }
        self
    }

    /// Whether `slot` is a native sidecar.
    pub fn is_sidecar(&self, slot: Slot) -> bool {
        matches!(slot, Slot::Init(i) if self.sidecar.get(i).copied().unwrap_or(false))
    }

    /// The sidecars, in spec order (the reverse of their stop order).
    pub fn sidecars(&self) -> impl Iterator<Item = Slot> + '_ {
        self.sidecar
            .iter()
            .enumerate()
            .filter(|(_, s)| **s)
            .map(|(i, _)| Slot::Init(i))
    }

    /// The container in `slot` is started (its startup probe passed, or it
    /// has none): a sidecar started for the first time releases what
    /// follows it.
    pub fn set_started(&mut self, slot: Slot, at: Stamp) -> Result<(), PodError> {
        let container = match slot {
            Slot::Init(i) => self.init.get_mut(i),
            Slot::App(i) => self.apps.get_mut(i),
        }
        .ok_or(PodError::NoSuchContainer(slot))?;
        container.set_started();
        if let Slot::Init(i) = slot
            && self.sidecar[i]
            && self.init[i].started()
            && !self.stopping
        {
            self.release_after_init(i, at)?;
        }
        Ok(())
    }

    /// Every regular container has ended for good (it will not restart):
    /// the pod is complete, and its sidecars are to be stopped.
    pub fn regular_containers_done(&self) -> bool {
        !self.apps.is_empty() && self.apps.iter().all(ContainerStateMachine::is_finished)
    }

    /// `spec.restartPolicy`.
    pub fn policy(&self) -> RestartPolicy {
        self.policy
    }

    /// The init containers, in order.
    pub fn init_containers(&self) -> &[ContainerStateMachine] {
        &self.init
    }

    /// The regular containers, in order.
    pub fn containers(&self) -> &[ContainerStateMachine] {
        &self.apps
    }

    /// One container.
    pub fn get(&self, slot: Slot) -> Option<&ContainerStateMachine> {
        match slot {
            Slot::Init(i) => self.init.get(i),
            Slot::App(i) => self.apps.get(i),
        }
    }

    /// One container, mutable (readiness).
    pub fn get_mut(&mut self, slot: Slot) -> Option<&mut ContainerStateMachine> {
        match slot {
            Slot::Init(i) => self.init.get_mut(i),
            Slot::App(i) => self.apps.get_mut(i),
        }
    }

    /// Finds a container by name.
    pub fn slot_of(&self, name: &str) -> Option<Slot> {
        if let Some(i) = self.init.iter().position(|c| c.name() == name) {
            return Some(Slot::Init(i));
        }
        self.apps
            .iter()
            .position(|c| c.name() == name)
            .map(Slot::App)
    }

    /// Every init container ended with success and every sidecar was
    /// started (kubelet's Initialized condition).
    pub fn initialized(&self) -> bool {
        (0..self.init.len()).all(|i| self.init_complete(i))
    }

    /// Init container `i` is done: succeeded, or (a sidecar) started once.
    pub fn init_complete(&self, i: usize) -> bool {
        match self.init.get(i) {
            Some(c) if self.sidecar[i] => c.ever_started(),
            Some(c) => matches!(c.state(), State::Terminated(t) if t.termination.succeeded()),
            None => false,
        }
    }

    /// Whether [`PodStateMachine::stop`] was called.
    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// The containers to start at `now`, in spec order.
    pub fn due(&self, now: Instant) -> Vec<Slot> {
        if self.stopping {
            return Vec::new();
        }
        let init = self
            .init
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_due(now))
            .map(|(i, _)| Slot::Init(i));
        let apps = self
            .apps
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_due(now))
            .map(|(i, _)| Slot::App(i));
        init.chain(apps).collect()
    }

    /// The earliest start deadline: arm the loop's timer with it (None: no
    /// timer needed).
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.stopping {
            return None;
        }
        self.init
            .iter()
            .chain(&self.apps)
            .filter_map(ContainerStateMachine::next_start_at)
            .min()
    }

    /// Applies an event to one container and moves the pod along: a
    /// succeeded init container releases the next one, the last one releases
    /// the regular containers.
    pub fn handle(&mut self, slot: Slot, event: Event) -> Result<Decision, PodError> {
        let at = match &event {
            Event::Started { at, .. }
            | Event::SpawnFailed { at, .. }
            | Event::Exited { at, .. }
            | Event::InitDone { at } => Some(*at),
            Event::Held { .. } | Event::Stop => None,
        };
        let container = match slot {
            Slot::Init(i) => self.init.get_mut(i),
            Slot::App(i) => self.apps.get_mut(i),
        }
        .ok_or(PodError::NoSuchContainer(slot))?;
        let decision = container.handle(event)?;
        if let (Slot::Init(i), Decision::Finished, Some(at)) = (slot, decision, at) {
            let succeeded = matches!(
                self.init[i].state(),
                State::Terminated(t) if t.termination.succeeded()
            );
            if succeeded && !self.sidecar[i] && !self.stopping {
                self.release_after_init(i, at)?;
            }
        }
        Ok(decision)
    }

    /// Release what follows init container `done`, once.
    fn release_after_init(&mut self, done: usize, at: Stamp) -> Result<(), PodError> {
        if std::mem::replace(&mut self.released_next[done], true) {
            return Ok(());
        }
        if let Some(next) = self.init.get_mut(done + 1) {
            next.handle(Event::InitDone { at })?;
        } else {
            for app in &mut self.apps {
                app.handle(Event::InitDone { at })?;
            }
        }
        Ok(())
    }

    /// The pod is stopping: nothing is started again. Running containers are
    /// stopped by the caller; their exits end them for good.
    pub fn stop(&mut self) {
        self.stopping = true;
        for c in self.init.iter_mut().chain(&mut self.apps) {
            // Stop is valid in every state.
            let _ = c.handle(Event::Stop);
        }
    }

    /// Whether nothing runs and nothing will be started again.
    pub fn is_done(&self) -> bool {
        let running = self
            .init
            .iter()
            .chain(&self.apps)
            .any(|c| matches!(c.state(), State::Running { .. }));
        !running && self.next_deadline().is_none()
    }

    /// `status.phase`, derived as kubelet's `getPhase` does
    /// (pkg/kubelet/kubelet_pods.go): plain init containers first; then
    /// sidecars count as running (or waiting, before their first run), but
    /// a terminated sidecar counts for nothing; a sidecar not yet started
    /// keeps the pod Pending until a regular container has started.
    pub fn phase(&self) -> PodPhase {
        let plain_init = || {
            self.init
                .iter()
                .zip(&self.sidecar)
                .filter(|(_, sidecar)| !**sidecar)
                .map(|(c, _)| c)
        };
        let init_done = |c: &ContainerStateMachine| matches!(c.state(), State::Terminated(t) if t.termination.succeeded());
        if !plain_init().all(init_done) {
            let init_failed_for_good = plain_init()
                .any(|c| matches!(c.state(), State::Terminated(t) if !t.termination.succeeded()));
            return if init_failed_for_good {
                PodPhase::Failed
            } else {
                PodPhase::Pending
            };
        }
        let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
        let mut pending_sidecars = 0;
        for c in self.sidecars().filter_map(|slot| self.get(slot)) {
            match c.state() {
                State::Running { .. } => {
                    running += 1;
                    if !c.started() {
                        pending_sidecars += 1;
                    }
                }
                State::Waiting { .. } if c.last_termination().is_none() => {
                    waiting += 1;
                    pending_sidecars += 1;
                }
                State::Waiting { .. } | State::Terminated(_) => {}
            }
        }
        let mut any_app_started = false;
        for c in &self.apps {
            match c.state() {
                State::Running { .. } => {
                    running += 1;
                    any_app_started = true;
                }
                State::Terminated(t) => {
                    stopped += 1;
                    any_app_started = true;
                    if t.termination.succeeded() {
                        succeeded += 1;
                    }
                }
                State::Waiting { .. } if c.last_termination().is_some() => {
                    stopped += 1;
                    any_app_started = true;
                }
                State::Waiting { .. } => waiting += 1,
            }
        }
        if (pending_sidecars > 0 && !any_app_started) || waiting > 0 {
            PodPhase::Pending
        } else if running > 0 {
            PodPhase::Running
        } else if stopped > 0 {
            if self.policy == RestartPolicy::Always && !self.stopping {
                PodPhase::Running
            } else if stopped == succeeded {
                PodPhase::Succeeded
            } else if self.policy == RestartPolicy::Never || self.stopping {
                PodPhase::Failed
            } else {
                PodPhase::Running
            }
        } else {
            PodPhase::Pending
        }
    }
}

/// Errors of [`PodStateMachine::handle`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PodError {
    /// The slot is out of range.
    #[error("no container at {0:?}")]
    NoSuchContainer(Slot),
    /// The event is not valid in the container's state.
    #[error(transparent)]
    Transition(#[from] TransitionError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn small() -> BackoffConfig {
        BackoffConfig {
            initial: ms(100),
            max: ms(400),
            reset_after: ms(10_000),
        }
    }

    fn crash(code: i32) -> Termination {
        Termination::classify(ExitStatus::Exited(code), false)
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut b = Backoff::new(small());
        let delays: Vec<u64> = (0..6)
            .map(|_| b.on_exit(ms(1)).as_millis() as u64)
            .collect();
        assert_eq!(delays, [0, 100, 200, 400, 400, 400]);
        assert_eq!(b.on_exit(ms(10_000)), Duration::ZERO, "reset after window");
        assert_eq!(b.on_exit(ms(1)), ms(100));
    }

    #[test]
    fn backoff_zero_restarts_at_once_forever() {
        let mut b = Backoff::new(BackoffConfig {
            initial: Duration::ZERO,
            max: Duration::ZERO,
            reset_after: ms(1000),
        });
        assert!((0..5).all(|_| b.on_exit(ms(1)).is_zero()));
    }

    #[test]
    fn default_backoff_is_kubelets() {
        let mut b = Backoff::new(BackoffConfig::default());
        let secs: Vec<u64> = (0..8).map(|_| b.on_exit(ms(1)).as_secs()).collect();
        assert_eq!(secs, [0, 10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn exit_classification_matches_kubelet() {
        let done = Termination::classify(ExitStatus::Exited(0), false);
        assert_eq!(
            (done.exit_code, done.reason),
            (0, TerminationReason::Completed)
        );
        let err = Termination::classify(ExitStatus::Exited(3), false);
        assert_eq!((err.exit_code, err.reason), (3, TerminationReason::Error));
        let killed = Termination::classify(ExitStatus::Signaled(9), false);
        assert_eq!(
            (killed.exit_code, killed.signal, killed.reason),
            (137, Some(9), TerminationReason::Error)
        );
        let oom = Termination::classify(ExitStatus::Signaled(9), true);
        assert_eq!((oom.exit_code, oom.reason.as_str()), (137, "OOMKilled"));
        let cannot = Termination::cannot_run("exec /nope: No such file or directory");
        assert_eq!(cannot.reason.as_str(), "ContainerCannotRun");
        assert_eq!(
            cannot.message.as_deref(),
            Some("exec /nope: No such file or directory")
        );
        assert!(!cannot.succeeded());
    }

    #[test]
    fn restart_intervals_follow_the_backoff() {
        let t0 = Stamp::now();
        let mut c = ContainerStateMachine::new("app", RestartPolicy::Always, small(), true, t0);
        assert_eq!(c.next_start_at(), Some(t0.mono));
        let mut now = t0;
        let mut intervals = Vec::new();
        for n in 0..6 {
            c.handle(Event::Started {
                at: now,
                container_id: format!("id-{n}"),
            })
            .unwrap();
            assert_eq!(c.restart_count(), n);
            now = now.after(ms(5));
            let d = c
                .handle(Event::Exited {
                    at: now,
                    termination: crash(1),
                })
                .unwrap();
            let Decision::RestartAt(at) = d else {
                panic!("expected a restart, got {d:?}")
            };
            intervals.push(at.duration_since(now.mono).as_millis() as u64);
            assert_eq!(c.next_start_at(), Some(at));
            now = Stamp {
                mono: at,
                wall: now.wall + at.duration_since(now.mono),
            };
        }
        assert_eq!(intervals, [0, 100, 200, 400, 400, 400]);
        assert!(matches!(
            c.state(),
            State::Waiting { reason: WaitingReason::CrashLoopBackOff, message: Some(m), .. }
                if m == "back-off 400ms restarting failed container=app"
        ));
        // A long run resets the back-off.
        c.handle(Event::Started {
            at: now,
            container_id: "long".into(),
        })
        .unwrap();
        let later = now.after(ms(10_000));
        let d = c
            .handle(Event::Exited {
                at: later,
                termination: crash(1),
            })
            .unwrap();
        assert_eq!(d, Decision::RestartAt(later.mono));
        assert_eq!(
            c.last_termination().unwrap().container_id.as_deref(),
            Some("long")
        );
    }

    #[test]
    fn policies_decide_restarts() {
        let t = Stamp::now();
        for (policy, code, restarts) in [
            (RestartPolicy::Always, 0, true),
            (RestartPolicy::Always, 1, true),
            (RestartPolicy::OnFailure, 0, false),
            (RestartPolicy::OnFailure, 1, true),
            (RestartPolicy::Never, 1, false),
        ] {
            let mut c = ContainerStateMachine::new("c", policy, small(), true, t);
            c.handle(Event::Started {
                at: t,
                container_id: "x".into(),
            })
            .unwrap();
            let d = c
                .handle(Event::Exited {
                    at: t,
                    termination: crash(code),
                })
                .unwrap();
            assert_eq!(
                matches!(d, Decision::RestartAt(_)),
                restarts,
                "{policy:?} {code}"
            );
            assert_eq!(c.is_finished(), !restarts);
        }
    }

    #[test]
    fn invalid_events_are_refused_without_change() {
        let t = Stamp::now();
        let mut c = ContainerStateMachine::new("c", RestartPolicy::Never, small(), true, t);
        let err = c
            .handle(Event::Exited {
                at: t,
                termination: crash(0),
            })
            .unwrap_err();
        assert_eq!((err.state, err.event), ("Waiting", "Exited"));
        c.handle(Event::Started {
            at: t,
            container_id: "x".into(),
        })
        .unwrap();
        assert!(
            c.handle(Event::Started {
                at: t,
                container_id: "y".into()
            })
            .is_err()
        );
        assert!(matches!(c.state(), State::Running { container_id, .. } if container_id == "x"));
    }

    #[test]
    fn ready_once_running_unless_a_probe_decides() {
        let t = Stamp::now();
        let mut plain = ContainerStateMachine::new("a", RestartPolicy::Always, small(), true, t);
        assert!(!plain.ready());
        plain
            .handle(Event::Started {
                at: t,
                container_id: "a".into(),
            })
            .unwrap();
        assert!(plain.ready());
        let mut probed = ContainerStateMachine::new("b", RestartPolicy::Always, small(), true, t);
        probed.set_readiness_probe(true);
        probed
            .handle(Event::Started {
                at: t,
                container_id: "b".into(),
            })
            .unwrap();
        assert!(!probed.ready());
        probed.set_ready(true);
        assert!(probed.ready());
        probed
            .handle(Event::Exited {
                at: t,
                termination: crash(1),
            })
            .unwrap();
        assert!(!probed.ready(), "not ready once it exits");
    }

    #[test]
    fn spawn_failure_counts_and_backs_off() {
        let t = Stamp::now();
        let mut c = ContainerStateMachine::new("c", RestartPolicy::Always, small(), true, t);
        let d = c
            .handle(Event::SpawnFailed {
                at: t,
                message: "exec: ENOENT".into(),
            })
            .unwrap();
        assert_eq!(d, Decision::RestartAt(t.mono));
        let last = c.last_termination().unwrap();
        assert_eq!(
            last.termination.reason,
            TerminationReason::ContainerCannotRun
        );
        assert_eq!(last.started_at, None);
        c.handle(Event::Started {
            at: t,
            container_id: "x".into(),
        })
        .unwrap();
        assert_eq!(c.restart_count(), 1);
    }

    #[test]
    fn init_containers_run_in_order_then_apps() {
        let t = Stamp::now();
        let mut pod =
            PodStateMachine::new(RestartPolicy::Always, small(), ["i0", "i1"], ["a", "b"], t);
        assert_eq!(pod.due(t.mono), [Slot::Init(0)]);
        assert_eq!(pod.phase(), PodPhase::Pending);
        pod.handle(
            Slot::Init(0),
            Event::Started {
                at: t,
                container_id: "i0".into(),
            },
        )
        .unwrap();
        // Init failure restarts (Always acts as OnFailure for init).
        let d = pod
            .handle(
                Slot::Init(0),
                Event::Exited {
                    at: t,
                    termination: crash(1),
                },
            )
            .unwrap();
        assert_eq!(d, Decision::RestartAt(t.mono));
        assert_eq!(pod.due(t.mono), [Slot::Init(0)]);
        pod.handle(
            Slot::Init(0),
            Event::Started {
                at: t,
                container_id: "i0b".into(),
            },
        )
        .unwrap();
        pod.handle(
            Slot::Init(0),
            Event::Exited {
                at: t,
                termination: crash(0),
            },
        )
        .unwrap();
        assert_eq!(pod.due(t.mono), [Slot::Init(1)]);
        assert!(!pod.initialized());
        pod.handle(
            Slot::Init(1),
            Event::Started {
                at: t,
                container_id: "i1".into(),
            },
        )
        .unwrap();
        pod.handle(
            Slot::Init(1),
            Event::Exited {
                at: t,
                termination: crash(0),
            },
        )
        .unwrap();
        assert!(pod.initialized());
        assert_eq!(pod.due(t.mono), [Slot::App(0), Slot::App(1)]);
        assert_eq!(pod.phase(), PodPhase::Pending);
        for (i, id) in ["a", "b"].iter().enumerate() {
            pod.handle(
                Slot::App(i),
                Event::Started {
                    at: t,
                    container_id: (*id).into(),
                },
            )
            .unwrap();
        }
        assert_eq!(pod.phase(), PodPhase::Running);
        assert_eq!(pod.next_deadline(), None);
    }

    #[test]
    fn init_failure_with_never_fails_the_pod() {
        let t = Stamp::now();
        let mut pod = PodStateMachine::new(RestartPolicy::Never, small(), ["i0"], ["a"], t);
        pod.handle(
            Slot::Init(0),
            Event::Started {
                at: t,
                container_id: "i".into(),
            },
        )
        .unwrap();
        let d = pod
            .handle(
                Slot::Init(0),
                Event::Exited {
                    at: t,
                    termination: crash(2),
                },
            )
            .unwrap();
        assert_eq!(d, Decision::Finished);
        assert_eq!(pod.phase(), PodPhase::Failed);
        assert!(pod.due(t.mono).is_empty());
        assert!(pod.is_done());
    }

    #[test]
    fn phase_follows_kubelet() {
        let t = Stamp::now();
        let run = |policy, codes: &[i32]| {
            let names: Vec<String> = (0..codes.len()).map(|i| format!("c{i}")).collect();
            let mut pod = PodStateMachine::new(policy, small(), Vec::<String>::new(), names, t);
            for (i, code) in codes.iter().enumerate() {
                pod.handle(
                    Slot::App(i),
                    Event::Started {
                        at: t,
                        container_id: "x".into(),
                    },
                )
                .unwrap();
                pod.handle(
                    Slot::App(i),
                    Event::Exited {
                        at: t,
                        termination: crash(*code),
                    },
                )
                .unwrap();
            }
            pod.phase()
        };
        assert_eq!(run(RestartPolicy::Never, &[0, 0]), PodPhase::Succeeded);
        assert_eq!(run(RestartPolicy::Never, &[0, 1]), PodPhase::Failed);
        assert_eq!(run(RestartPolicy::OnFailure, &[0, 0]), PodPhase::Succeeded);
        assert_eq!(run(RestartPolicy::OnFailure, &[0, 1]), PodPhase::Running);
        assert_eq!(run(RestartPolicy::Always, &[0, 0]), PodPhase::Running);
    }

    #[test]
    fn stop_prevents_restarts() {
        let t = Stamp::now();
        let mut pod = PodStateMachine::new(
            RestartPolicy::Always,
            small(),
            Vec::<String>::new(),
            ["a", "b"],
            t,
        );
        pod.handle(
            Slot::App(0),
            Event::Started {
                at: t,
                container_id: "a".into(),
            },
        )
        .unwrap();
        pod.stop();
        assert!(pod.due(t.mono).is_empty());
        let d = pod
            .handle(
                Slot::App(0),
                Event::Exited {
                    at: t,
                    termination: crash(143),
                },
            )
            .unwrap();
        assert_eq!(d, Decision::Finished);
        assert!(pod.is_done());
    }

    fn start(pod: &mut PodStateMachine, slot: Slot, at: Stamp) {
        pod.handle(
            slot,
            Event::Started {
                at,
                container_id: format!("{slot:?}"),
            },
        )
        .unwrap();
    }

    fn exit(pod: &mut PodStateMachine, slot: Slot, at: Stamp, code: i32) -> Decision {
        pod.handle(
            slot,
            Event::Exited {
                at,
                termination: crash(code),
            },
        )
        .unwrap()
    }

    #[test]
    fn a_sidecar_releases_the_next_init_container_once_started() {
        let t = Stamp::now();
        let mut pod = PodStateMachine::new(
            RestartPolicy::Never,
            small(),
            ["proxy", "setup"],
            ["app"],
            t,
        )
        .with_sidecars([0]);
        assert!(pod.is_sidecar(Slot::Init(0)) && !pod.is_sidecar(Slot::Init(1)));
        assert_eq!(pod.due(t.mono), [Slot::Init(0)]);
        start(&mut pod, Slot::Init(0), t);
        // Running is not started: the startup probe (or postStart) decides.
        assert!(pod.due(t.mono).is_empty());
        assert!(!pod.initialized());
        assert_eq!(pod.phase(), PodPhase::Pending);
        pod.set_started(Slot::Init(0), t).unwrap();
        assert_eq!(pod.due(t.mono), [Slot::Init(1)]);
        start(&mut pod, Slot::Init(1), t);
        assert!(pod.due(t.mono).is_empty(), "the containers wait for setup");
        exit(&mut pod, Slot::Init(1), t, 0);
        assert!(pod.initialized());
        assert_eq!(pod.due(t.mono), [Slot::App(0)]);
        start(&mut pod, Slot::App(0), t);
        assert_eq!(pod.phase(), PodPhase::Running);
    }

    #[test]
    fn a_sidecar_restarts_under_always_whatever_the_pod_policy() {
        let t = Stamp::now();
        let mut pod = PodStateMachine::new(RestartPolicy::Never, small(), ["proxy"], ["app"], t)
            .with_sidecars([0]);
        start(&mut pod, Slot::Init(0), t);
        pod.set_started(Slot::Init(0), t).unwrap();
        start(&mut pod, Slot::App(0), t);
        // Exit 0 too: a sidecar always comes back, with the back-off.
        assert_eq!(
            exit(&mut pod, Slot::Init(0), t, 0),
            Decision::RestartAt(t.mono)
        );
        start(&mut pod, Slot::Init(0), t);
        let later = t.after(ms(5));
        assert_eq!(
            exit(&mut pod, Slot::Init(0), later, 1),
            Decision::RestartAt(later.mono + ms(100))
        );
        assert_eq!(pod.get(Slot::Init(0)).unwrap().restart_count(), 1);
        // Its restarts release nothing twice and keep the pod initialized.
        assert!(pod.initialized());
        assert_eq!(pod.phase(), PodPhase::Running);
    }

    #[test]
    fn a_sidecar_does_not_block_completion() {
        let t = Stamp::now();
        let mut pod = PodStateMachine::new(RestartPolicy::Never, small(), ["proxy"], ["job"], t)
            .with_sidecars([0]);
        start(&mut pod, Slot::Init(0), t);
        pod.set_started(Slot::Init(0), t).unwrap();
        start(&mut pod, Slot::App(0), t);
        assert!(!pod.regular_containers_done());
        assert_eq!(exit(&mut pod, Slot::App(0), t, 0), Decision::Finished);
        assert!(pod.regular_containers_done());
        // kubelet: Running while the sidecar runs, Succeeded once stopped.
        assert_eq!(pod.phase(), PodPhase::Running);
        assert!(!pod.is_done());
        pod.stop();
        assert_eq!(exit(&mut pod, Slot::Init(0), t, 143), Decision::Finished);
        assert!(pod.is_done());
        assert_eq!(pod.phase(), PodPhase::Succeeded);
    }

    #[test]
    fn a_sidecar_that_never_started_keeps_the_pod_pending() {
        let t = Stamp::now();
        let mut pod = PodStateMachine::new(RestartPolicy::Always, small(), ["proxy"], ["app"], t)
            .with_sidecars([0]);
        start(&mut pod, Slot::Init(0), t);
        // Crashing before its startup probe passed: restarted, and the
        // containers still wait.
        exit(&mut pod, Slot::Init(0), t, 1);
        assert_eq!(pod.due(t.mono), [Slot::Init(0)]);
        assert_eq!(pod.phase(), PodPhase::Pending);
        assert!(matches!(
            pod.get(Slot::App(0)).unwrap().state(),
            State::Waiting {
                reason: WaitingReason::PodInitializing,
                ..
            }
        ));
    }
}
