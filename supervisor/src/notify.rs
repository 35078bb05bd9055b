//! Telling systemd what the pod is doing (sd_notify): READY=1 once every
//! container is started and ready, STATUS= lines that track the pod,
//! WATCHDOG=1 pings from the event loop itself, STOPPING=1 and
//! EXTEND_TIMEOUT_USEC= while the grace period runs.
//!
//! Nothing is sent when NOTIFY_SOCKET is unset. Watchdog pings are driven by
//! the event loop's deadline (never by a thread of their own, which would go
//! on pinging a stuck loop). A failed send is reported once and never ends
//! the pod.

use crate::restart::{self, State};
use sd_notify::NotifyState;
use std::time::{Duration, Instant};

/// The sd_notify state of one `supervisor run`.
pub struct Notifier {
    enabled: bool,
    watchdog_interval: Option<Duration>,
    next_ping: Option<Instant>,
    last_status: String,
    ready_sent: bool,
    failed: bool,
}

impl Notifier {
    /// From the environment systemd gives a `Type=notify` service:
    /// NOTIFY_SOCKET, and WATCHDOG_USEC (+ WATCHDOG_PID) when `WatchdogSec=`
    /// is set. Pings go at half the watchdog period, as sd_watchdog_enabled(3)
    /// advises.
    pub fn from_env(now: Instant) -> Notifier {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some();
        let watchdog_interval = enabled
            .then(sd_notify::watchdog_enabled)
            .flatten()
            .map(|period| period / 2);
        Notifier {
            enabled,
            watchdog_interval,
            next_ping: watchdog_interval.map(|interval| now + interval),
            last_status: String::new(),
            ready_sent: false,
            failed: false,
        }
    }

    /// Whether a service manager listens.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// When the event loop must wake up next for a watchdog ping.
    pub fn next_ping(&self) -> Option<Instant> {
        self.next_ping
    }

    /// Ping the watchdog if it is due; the loop calls this on every wake-up.
    pub fn ping_if_due(&mut self, now: Instant) {
        if let (Some(at), Some(interval)) = (self.next_ping, self.watchdog_interval)
            && now >= at
        {
            self.send(&[NotifyState::Watchdog]);
            self.next_ping = Some(now + interval);
        }
    }

    /// Send STATUS= when it changed.
    pub fn status(&mut self, status: &str) {
        if status != self.last_status {
            self.last_status = status.to_string();
            self.send(&[NotifyState::Status(status)]);
        }
    }

    /// Send READY=1 (once), with the status at that moment.
    pub fn ready(&mut self, status: &str) {
        if !self.ready_sent {
            self.ready_sent = true;
            self.last_status = status.to_string();
            self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
        }
    }

    /// Whether READY=1 was sent.
    pub fn is_ready(&self) -> bool {
        self.ready_sent
    }

    /// STOPPING=1, and ask for `grace` more than the stop timeout already
    /// allows, so systemd waits out the pod's grace period.
    pub fn stopping(&mut self, grace: Duration) {
        let extend = u32::try_from(grace.as_micros()).unwrap_or(u32::MAX);
        self.send(&[
            NotifyState::Stopping,
            NotifyState::Status("stopping: grace period running"),
            NotifyState::ExtendTimeoutUsec(extend),
        ]);
    }

    fn send(&mut self, states: &[NotifyState]) {
        if !self.enabled {
            return;
        }
        if let Err(error) = sd_notify::notify(states)
            && !self.failed
        {
            self.failed = true;
            eprintln!(
                "supervisor: warning: sd_notify failed: {error} (further failures are not reported)"
            );
        }
    }
}

/// The pod in one line for STATUS=: "2/2 ready, 3 restarts, last: web
/// OOMKilled".
pub fn summary(pod: &restart::PodStateMachine) -> String {
    let containers = pod.containers();
    let ready = containers.iter().filter(|c| c.ready()).count();
    let all = || pod.init_containers().iter().chain(containers);
    let restarts: u32 = all()
        .map(restart::ContainerStateMachine::restart_count)
        .sum();
    let mut line = format!(
        "{ready}/{} ready, {restarts} restart{}",
        containers.len(),
        if restarts == 1 { "" } else { "s" }
    );
    let last = all()
        .filter_map(|c| {
            let ended = match c.state() {
                State::Terminated(t) => Some(t),
                _ => c.last_termination(),
            }?;
            Some((ended.finished_at, c.name(), ended.termination.reason))
        })
        .max_by_key(|(at, _, _)| *at);
    if let Some((_, name, reason)) = last {
        line.push_str(&format!(", last: {name} {reason}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restart::{
        BackoffConfig, Event, PodStateMachine, RestartPolicy, Slot, Stamp, Termination,
    };
    use container::ExitStatus;

    #[test]
    fn the_summary_counts_ready_containers_restarts_and_the_last_exit() {
        let t = Stamp::now();
        let mut pod = PodStateMachine::new(
            RestartPolicy::Always,
            BackoffConfig::default(),
            Vec::<String>::new(),
            ["web", "sidecar"],
            t,
        );
        assert_eq!(summary(&pod), "0/2 ready, 0 restarts");
        for (i, slot) in [Slot::App(0), Slot::App(1)].into_iter().enumerate() {
            pod.handle(
                slot,
                Event::Started {
                    at: t,
                    container_id: i.to_string(),
                },
            )
            .unwrap();
        }
        assert_eq!(summary(&pod), "2/2 ready, 0 restarts");
        pod.handle(
            Slot::App(0),
            Event::Exited {
                at: t.after(std::time::Duration::from_secs(1)),
                termination: Termination::classify(ExitStatus::Signaled(9), true),
            },
        )
        .unwrap();
        pod.handle(
            Slot::App(0),
            Event::Started {
                at: t.after(std::time::Duration::from_secs(1)),
                container_id: "2".into(),
            },
        )
        .unwrap();
        assert_eq!(summary(&pod), "2/2 ready, 1 restart, last: web OOMKilled");
    }
}
