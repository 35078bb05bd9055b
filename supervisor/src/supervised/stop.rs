//! Stopping a container's running instance as kubelet's `killContainer`
//! does (pkg/kubelet/kuberuntime/kuberuntime_container.go): its preStop
//! hook first, within the grace period (`executePreStopHook`: the time it
//! takes counts against the grace period, and a hook still running when
//! the period is over is given up); then, for a sidecar of a pod that
//! stops, its turn (kuberuntime_termination_order.go: once every regular
//! container and every sidecar after it has exited, or the grace period is
//! over); then the stop signal, with what is left of the grace period but
//! never less than 2 s (`minimumGracePeriodInSeconds`); then SIGKILL
//! through its cgroup. A pod stop, a failed liveness probe and a failed
//! postStart hook all go through here.
//!
//! It does not decide to stop (the pod loop does) nor whose turn it is
//! (the loop knows which containers still run): it steps one instance's
//! stop when told ([`SupervisedContainer::advance_stop`]).

use super::instance::Instance;
use super::{CGROUP_TIMEOUT, FdWatch, SupervisedContainer};
use crate::hook::{HookKind, HookResult, RunningHook};
use container::{CgroupError, PidFdError};
use nix::sys::signal::Signal;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// kubelet's `minimumGracePeriodInSeconds`: the least time a container
/// gets between its stop signal and SIGKILL.
pub const MINIMUM_GRACE: Duration = Duration::from_secs(2);

/// The stop signal could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("[{container}] {signal}: {source}")]
pub struct StopError {
    pub container: String,
    pub signal: Signal,
    pub source: PidFdError,
}

/// Where a hook reaches the pod: its network namespace and IP.
#[derive(Debug, Clone, Copy)]
pub struct HookContext<'a> {
    /// The pod's network namespace file; None: the host's.
    pub netns: Option<&'a Path>,
    /// The pod IP, the default host of an httpGet hook.
    pub pod_ip: Option<IpAddr>,
}

/// What a step of a stop reports to the pod loop.
#[derive(Debug)]
pub enum StopNote {
    /// The preStop hook failed (kubelet's `FailedPreStopHook`): the detail.
    PreStopFailed(String),
    /// The preStop hook was still running when the grace period ended.
    PreStopCutOff,
    /// The stop signal was sent.
    Signalled(Signal),
    /// The stop signal could not be sent.
    SignalFailed(StopError),
    /// The grace period is over: SIGKILL through the cgroup.
    Killed,
}

/// A hook that ended, for the pod loop to act on.
#[derive(Debug)]
pub struct HookDone {
    pub kind: HookKind,
    pub handler: crate::spec::Handler,
    pub result: HookResult,
}

/// Where an instance's stop is.
#[derive(Debug)]
enum StopPhase {
    /// Its preStop hook runs.
    PreStop(RunningHook),
    /// Waiting for its turn to get the stop signal.
    Turn,
    /// The stop signal was sent; SIGKILL at `kill_at`.
    Signalled { kill_at: Instant },
    /// SIGKILLed at this time.
    Killed(Instant),
}

/// An instance being stopped.
#[derive(Debug)]
pub(super) struct StopState {
    /// The end of the grace period.
    grace_end: Instant,
    phase: StopPhase,
    /// What its termination says (a failed probe or postStart hook).
    pub message: Option<String>,
}

impl SupervisedContainer {
    /// Begin stopping the running instance within `grace`: probes and a
    /// running postStart hook end, the preStop hook starts (if any, and if
    /// there is a grace period at all); the stop signal follows from
    /// [`SupervisedContainer::advance_stop`]. `message` becomes its
    /// termination's. Nothing happens when nothing runs or it is already
    /// stopping.
    pub fn begin_stop(
        &mut self,
        grace: Duration,
        message: Option<String>,
        hooks: HookContext<'_>,
        fds: &mut impl FdWatch,
    ) -> Vec<StopNote> {
        let mut notes = Vec::new();
        let pre_stop = self.spec.pre_stop.clone();
        let Some(instance) = &mut self.instance else {
            return notes;
        };
        if instance.stop.is_some() {
            return notes;
        }
        let now = Instant::now();
        instance.probes.cancel(fds);
        if let Some(hook) = instance.post_start.take() {
            hook.cancel(fds);
        }
        let phase = match pre_stop {
            Some(handler) if !grace.is_zero() => {
                let target = instance.target(hooks);
                match RunningHook::start(
                    HookKind::PreStop,
                    &handler,
                    &target,
                    &instance.identity,
                    fds,
                    now,
                ) {
                    Ok(hook) => StopPhase::PreStop(hook),
                    Err(error) => {
                        notes.push(StopNote::PreStopFailed(error));
                        StopPhase::Turn
                    }
                }
            }
            _ => StopPhase::Turn,
        };
        instance.stop = Some(Box::new(StopState {
            grace_end: now + grace,
            phase,
            message,
        }));
        notes
    }

    /// Step the running instance's stop at `now`: end a preStop sleep or a
    /// hook the grace period cut off, send the stop signal once it is the
    /// instance's `turn` (or the grace period is over), SIGKILL once its
    /// time has come.
    pub fn advance_stop(
        &mut self,
        now: Instant,
        turn: bool,
        fds: &mut impl FdWatch,
    ) -> Vec<StopNote> {
        let mut notes = Vec::new();
        let name = self.spec.name.clone();
        let signal = self.spec.stop_signal;
        let Some(instance) = &mut self.instance else {
            return notes;
        };
        let Some(stop) = &mut instance.stop else {
            return notes;
        };
        loop {
            let next = match &stop.phase {
                StopPhase::PreStop(hook) => match hook.tick(now) {
                    Some(result) => {
                        if let Err(error) = result {
                            notes.push(StopNote::PreStopFailed(error));
                        }
                        Some(StopPhase::Turn)
                    }
                    None if now >= stop.grace_end => {
                        notes.push(StopNote::PreStopCutOff);
                        Some(StopPhase::Turn)
                    }
                    None => None,
                },
                StopPhase::Turn if turn || now >= stop.grace_end => {
                    match instance.pidfd.send_signal(signal) {
                        Ok(()) => notes.push(StopNote::Signalled(signal)),
                        Err(source) => notes.push(StopNote::SignalFailed(StopError {
                            container: name.clone(),
                            signal,
                            source,
                        })),
                    }
                    Some(StopPhase::Signalled {
                        kill_at: stop.grace_end.max(now + MINIMUM_GRACE),
                    })
                }
                StopPhase::Turn => None,
                StopPhase::Signalled { kill_at } if now >= *kill_at => {
                    let _ = instance.cgroup.kill();
                    notes.push(StopNote::Killed);
                    Some(StopPhase::Killed(now))
                }
                StopPhase::Signalled { .. } | StopPhase::Killed(_) => None,
            };
            let Some(next) = next else { break };
            if let StopPhase::PreStop(hook) = std::mem::replace(&mut stop.phase, next) {
                hook.cancel(fds);
            }
        }
        notes
    }

    /// Whether the running instance is being stopped.
    pub fn is_stopping(&self) -> bool {
        self.instance.as_ref().is_some_and(|i| i.stop.is_some())
    }

    /// When the running instance was SIGKILLed, if it was.
    pub fn killed_at(&self) -> Option<Instant> {
        match self.instance.as_ref()?.stop.as_ref()?.phase {
            StopPhase::Killed(at) => Some(at),
            _ => None,
        }
    }

    /// When [`SupervisedContainer::advance_stop`] must run next.
    pub fn stop_deadline(&self) -> Option<Instant> {
        let stop = self.instance.as_ref()?.stop.as_ref()?;
        match &stop.phase {
            StopPhase::PreStop(hook) => Some(
                hook.deadline()
                    .map_or(stop.grace_end, |d| d.min(stop.grace_end)),
            ),
            StopPhase::Turn => Some(stop.grace_end),
            StopPhase::Signalled { kill_at } => Some(*kill_at),
            StopPhase::Killed(_) => None,
        }
    }

    /// A failed liveness or startup probe (or postStart hook) said
    /// `message`: stop the running instance within `grace` (preStop
    /// included), it terminates with `message`. False when nothing runs or
    /// it is already being stopped.
    pub fn stop_for(
        &mut self,
        message: &str,
        grace: Duration,
        hooks: HookContext<'_>,
        fds: &mut impl FdWatch,
    ) -> Option<Vec<StopNote>> {
        if self.instance.as_ref().is_none_or(|i| i.stop.is_some()) {
            return None;
        }
        Some(self.begin_stop(grace, Some(message.to_owned()), hooks, fds))
    }

    /// The hook's socket is ready: `Some` once a hook ended.
    pub fn on_hook_socket(&mut self, fds: &mut impl FdWatch) -> Option<HookDone> {
        let instance = self.instance.as_mut()?;
        if let Some(hook) = &mut instance.post_start {
            let result = hook.on_socket_ready(fds)?;
            let hook = instance.post_start.take()?;
            return Some(HookDone {
                kind: HookKind::PostStart,
                handler: hook.handler().clone(),
                result,
            });
        }
        let stop = instance.stop.as_mut()?;
        let StopPhase::PreStop(hook) = &mut stop.phase else {
            return None;
        };
        let result = hook.on_socket_ready(fds)?;
        let done = HookDone {
            kind: HookKind::PreStop,
            handler: hook.handler().clone(),
            result,
        };
        stop.phase = StopPhase::Turn;
        Some(done)
    }

    /// A reaped child: `Some` when it was a hook's exec waiter.
    pub fn on_hook_exit(&mut self, pid: i32, status: &container::ExitStatus) -> Option<HookDone> {
        let instance = self.instance.as_mut()?;
        if let Some(hook) = &instance.post_start
            && let Some(result) = hook.on_exit(pid, status)
        {
            let hook = instance.post_start.take()?;
            return Some(HookDone {
                kind: HookKind::PostStart,
                handler: hook.handler().clone(),
                result,
            });
        }
        let stop = instance.stop.as_mut()?;
        let StopPhase::PreStop(hook) = &stop.phase else {
            return None;
        };
        let result = hook.on_exit(pid, status)?;
        let done = HookDone {
            kind: HookKind::PreStop,
            handler: hook.handler().clone(),
            result,
        };
        stop.phase = StopPhase::Turn;
        Some(done)
    }

    /// SIGKILL every process of the running instance's container at once,
    /// without waiting (their exits come back as SIGCHLD).
    pub fn kill(&mut self) -> Result<(), CgroupError> {
        let Some(instance) = &mut self.instance else {
            return Ok(());
        };
        let now = Instant::now();
        match &mut instance.stop {
            Some(stop) => stop.phase = StopPhase::Killed(now),
            None => {
                instance.stop = Some(Box::new(StopState {
                    grace_end: now,
                    phase: StopPhase::Killed(now),
                    message: None,
                }))
            }
        }
        match &self.cgroup {
            Some(cgroup) => cgroup.kill().map(drop),
            None => Ok(()),
        }
    }

    /// SIGKILL every process of the running instance's container and wait
    /// until they are gone (the sandbox it joined died).
    pub fn kill_and_wait(&self) {
        if self.instance.is_some()
            && let Some(cgroup) = &self.cgroup
        {
            let _ = cgroup.kill_all(CGROUP_TIMEOUT);
        }
    }

    /// Kill whatever is left of the container (a failed start, or a
    /// finished pod's leftovers), at teardown.
    pub fn kill_everything(&self) -> Result<(), CgroupError> {
        match &self.cgroup {
            Some(cgroup) => cgroup.kill_all(CGROUP_TIMEOUT),
            None => Ok(()),
        }
    }

    /// After `kill_everything` and the reaping: wait for the instance and
    /// let go of the container's cgroup (the pod's tree removal takes it).
    pub fn forget(&mut self) {
        if let Some(instance) = self.instance.take() {
            let _ = instance.pidfd.wait();
        }
        if let Some(path) = self.exec_record.take() {
            let _ = std::fs::remove_file(path);
        }
        self.cgroup = None;
    }
}

impl Instance {
    /// Cancel the hooks still in flight (the instance ended).
    pub(super) fn cancel_hooks(&mut self, fds: &mut impl FdWatch) {
        if let Some(hook) = self.post_start.take() {
            hook.cancel(fds);
        }
        if let Some(stop) = &mut self.stop
            && let StopPhase::PreStop(_) = stop.phase
            && let StopPhase::PreStop(hook) = std::mem::replace(&mut stop.phase, StopPhase::Turn)
        {
            hook.cancel(fds);
        }
    }
}
