//! Stopping and killing a container's running instance: its stop signal,
//! the grace period, then SIGKILL through its cgroup.
//!
//! preStop would run here: in `SupervisedContainer::stop`, before the stop
//! signal, the one place both a pod stop and a liveness-probe kill go through.
//! It does not decide to stop (the pod loop does, on SIGTERM/SIGINT or a
//! failed liveness probe) and keeps no pod-wide deadline (`run` does).

use super::instance::Instance;
use super::{CGROUP_TIMEOUT, SupervisedContainer};
use container::{CgroupError, PidFdError};
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};

/// The stop signal could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("[{container}] {signal}: {source}")]
pub struct StopError {
    pub container: String,
    pub signal: Signal,
    pub source: PidFdError,
}

impl SupervisedContainer {
    /// Stop the running instance: send the container's stop signal and
    /// return the end of its grace period, after which what is left is to
    /// be SIGKILLed. `Ok(None)`: nothing runs.
    pub fn stop(&mut self, grace: Duration) -> Result<Option<Instant>, StopError> {
        let Some(instance) = &self.instance else {
            return Ok(None);
        };
        let signal = self.spec.stop_signal;
        instance
            .pidfd
            .send_signal(signal)
            .map_err(|source| StopError {
                container: self.spec.name.clone(),
                signal,
                source,
            })?;
        Ok(Some(Instant::now() + grace))
    }

    /// A liveness probe failed with `message`: stop the running instance,
    /// which gets SIGKILL through its cgroup when the grace period is over
    /// (see `kill_if_overdue`), and terminates with `message`. False when
    /// nothing runs or it is already being killed for a probe.
    pub fn stop_for_probe(&mut self, message: &str, grace: Duration) -> bool {
        if self
            .instance
            .as_ref()
            .is_none_or(|i| i.probe_kill.is_some())
        {
            return false;
        }
        // A failed signal (the instance is exiting) still gets its deadline.
        let deadline = self
            .stop(grace)
            .ok()
            .flatten()
            .unwrap_or_else(|| Instant::now() + grace);
        if let Some(instance) = &mut self.instance {
            instance.probe_kill = Some((message.to_owned(), deadline));
        }
        true
    }

    /// SIGKILL every process of the running instance's container at once,
    /// without waiting (their exits come back as SIGCHLD).
    pub fn kill(&self) -> Result<(), CgroupError> {
        match &self.cgroup {
            Some(cgroup) if self.instance.is_some() => cgroup.kill().map(drop),
            _ => Ok(()),
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
    /// Once the grace period of a probe kill is over, SIGKILL what is left
    /// of the instance.
    pub(super) fn kill_if_overdue(&self, now: Instant) {
        if let Some((_, at)) = &self.probe_kill
            && now >= *at
        {
            let _ = self.cgroup.kill_all(CGROUP_TIMEOUT);
        }
    }
}
