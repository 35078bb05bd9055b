//! Lifecycle hooks: one `postStart` or `preStop` handler of a container
//! instance in flight ([`RunningHook`]), driven from the single-threaded
//! epoll loop without blocking it, as kubelet's `handlerRunner` runs them
//! (pkg/kubelet/lifecycle/handlers.go):
//!
//! - exec: the argv runs inside the container exactly as an exec probe
//!   does (its namespaces, cgroup, environment, working directory,
//!   credentials and confinement; [`crate::probe`]'s `spawn_exec`, under
//!   the same reaping waiter); it succeeds on exit code 0. kubelet gives an
//!   exec hook no timeout of its own: a preStop is cut off by the grace
//!   period, a postStart runs as long as it runs.
//! - httpGet: an HTTP/1.1 GET from inside the pod's network namespace to
//!   the host (default: the pod IP), with `User-Agent: kube-lifecycle/1.33`
//!   as kubelet's `NewRequestForHTTPGetAction(..., "lifecycle")` sends it.
//!   Any response is success: kubelet looks at transport errors only, not
//!   at the status code (it discards the body).
//! - sleep: a deadline on the loop's timer (`runSleepHandler`).
//!
//! It decides nothing about the container: what a result means (a failed
//! postStart kills the container, a failed preStop is only reported) is
//! the caller's ([`crate::supervised`] and the pod loop).

use std::fmt;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use container::ExitStatus;

use crate::probe::{self, AttemptPhase, ExecIdentity, ProbeIo, ProbeTarget};
use crate::spec::Handler;

/// The socket slot a hook's httpGet is watched with (the probes use 0..3).
pub const HOOK_SLOT: u8 = 3;

/// The `User-Agent` of kubelet's lifecycle HTTP requests (Kubernetes 1.33).
pub const USER_AGENT: &str = "kube-lifecycle/1.33";

/// Which hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// `lifecycle.postStart`.
    PostStart,
    /// `lifecycle.preStop`.
    PreStop,
}

impl HookKind {
    /// The Kubernetes event reason of a failure.
    pub fn failed_reason(self) -> &'static str {
        match self {
            HookKind::PostStart => "FailedPostStartHook",
            HookKind::PreStop => "FailedPreStopHook",
        }
    }
}

impl fmt::Display for HookKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HookKind::PostStart => "PostStart",
            HookKind::PreStop => "PreStop",
        })
    }
}

/// The result of a hook: `Err` carries the detail of the failure (see
/// [`failure_message`] for the message kubelet shows).
pub type HookResult = Result<(), String>;

#[derive(Debug)]
enum Action {
    /// Our child (the exec waiter), not yet reaped.
    Exec { pid: i32 },
    /// The HTTP request in flight.
    Http {
        fd: OwnedFd,
        addr: SocketAddr,
        request: Vec<u8>,
        phase: AttemptPhase,
    },
    /// Done at `until`.
    Sleep { until: Instant },
}

/// One hook of a container instance, in flight.
#[derive(Debug)]
pub struct RunningHook {
    kind: HookKind,
    handler: Handler,
    action: Action,
}

impl RunningHook {
    /// Start `handler` as hook `kind` against the instance `target`, which
    /// runs as `identity`; `Err` is a failure at once (nothing in flight).
    pub fn start(
        kind: HookKind,
        handler: &Handler,
        target: &ProbeTarget<'_>,
        identity: &ExecIdentity,
        io: &mut dyn ProbeIo,
        now: Instant,
    ) -> Result<RunningHook, String> {
        let action = match handler {
            Handler::Exec { command } => Action::Exec {
                pid: probe::spawn_exec(command, target, identity)?,
            },
            Handler::HttpGet {
                host,
                port,
                path,
                headers,
            } => {
                let (fd, addr, request) = probe::start_http_get(
                    host.as_deref(),
                    *port,
                    path,
                    headers,
                    USER_AGENT,
                    target,
                )?;
                io.watch(fd.as_fd(), HOOK_SLOT, true);
                Action::Http {
                    fd,
                    addr,
                    request,
                    phase: AttemptPhase::Connecting,
                }
            }
            Handler::Sleep { duration } => Action::Sleep {
                until: now + *duration,
            },
            Handler::TcpSocket { .. } => {
                return Err("tcpSocket is not a lifecycle hook handler".into());
            }
        };
        Ok(RunningHook {
            kind,
            handler: handler.clone(),
            action,
        })
    }

    /// Which hook it is.
    pub fn kind(&self) -> HookKind {
        self.kind
    }

    /// Its handler.
    pub fn handler(&self) -> &Handler {
        &self.handler
    }

    /// When [`RunningHook::tick`] must run (a sleep's end).
    pub fn deadline(&self) -> Option<Instant> {
        match self.action {
            Action::Sleep { until } => Some(until),
            _ => None,
        }
    }

    /// `Some` once a sleep is over.
    pub fn tick(&self, now: Instant) -> Option<HookResult> {
        match self.action {
            Action::Sleep { until } if now >= until => Some(Ok(())),
            _ => None,
        }
    }

    /// The hook's socket is ready: `Some` once the request has an answer
    /// (any HTTP response) or failed; the socket is then unwatched.
    pub fn on_socket_ready(&mut self, io: &mut dyn ProbeIo) -> Option<HookResult> {
        let Action::Http {
            fd,
            addr,
            request,
            phase,
        } = &mut self.action
        else {
            return None;
        };
        let result = probe::advance(
            fd,
            *addr,
            Some(request),
            phase,
            HOOK_SLOT,
            &self.handler,
            io,
        )?;
        io.unwatch(fd.as_fd());
        Some(result.map(drop))
    }

    /// A reaped child: `Some` when it was this hook's exec waiter.
    pub fn on_exit(&self, pid: i32, status: &ExitStatus) -> Option<HookResult> {
        let Action::Exec { pid: ours } = self.action else {
            return None;
        };
        if ours != pid {
            return None;
        }
        let Handler::Exec { command } = &self.handler else {
            return None;
        };
        Some(match status {
            ExitStatus::Exited(0) => Ok(()),
            ExitStatus::Exited(code) => Err(format!(
                "command '{}' exited with {code}",
                command.join(" ")
            )),
            ExitStatus::Signaled(signal) => Err(format!(
                "command '{}' killed by signal {signal}",
                command.join(" ")
            )),
        })
    }

    /// Give the hook up (its instance ended, or the grace period did): an
    /// exec hook's tree is killed (its waiter is reaped by the loop as any
    /// unknown child), a socket closed.
    pub fn cancel(self, io: &mut dyn ProbeIo) {
        match self.action {
            Action::Exec { pid } => probe::kill_tree(pid),
            Action::Http { fd, .. } => io.unwatch(fd.as_fd()),
            Action::Sleep { .. } => {}
        }
    }
}

/// The message kubelet's `handlerRunner.Run` gives a failed hook, e.g.
/// `Exec lifecycle hook ([/bin/false]) for Container "app" in Pod
/// "web_default(uid)" failed - error: command '/bin/false' exited with 1`.
/// `pod` is kubelet's `format.Pod`: `name_namespace(uid)`.
pub fn failure_message(handler: &Handler, container: &str, pod: &str, error: &str) -> String {
    match handler {
        Handler::Exec { command } => format!(
            "Exec lifecycle hook ([{}]) for Container {container:?} in Pod {pod:?} failed - error: {error}, message: \"\"",
            command.join(" ")
        ),
        Handler::HttpGet { path, .. } => format!(
            "HTTP lifecycle hook ({path}) for Container {container:?} in Pod {pod:?} failed - error: {error}"
        ),
        Handler::Sleep { duration } => format!(
            "Sleep lifecycle hook ({}) for Container {container:?} in Pod {pod:?} failed - error: {error}",
            duration.as_secs()
        ),
        Handler::TcpSocket { .. } => format!("Cannot run handler: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_sleep_hook_ends_at_its_deadline() {
        let now = Instant::now();
        let hook = RunningHook {
            kind: HookKind::PreStop,
            handler: Handler::Sleep {
                duration: Duration::from_secs(2),
            },
            action: Action::Sleep {
                until: now + Duration::from_secs(2),
            },
        };
        assert_eq!(hook.deadline(), Some(now + Duration::from_secs(2)));
        assert_eq!(hook.tick(now + Duration::from_secs(1)), None);
        assert_eq!(hook.tick(now + Duration::from_secs(2)), Some(Ok(())));
    }

    #[test]
    fn an_exec_hook_is_judged_by_its_exit_code() {
        let hook = RunningHook {
            kind: HookKind::PostStart,
            handler: Handler::Exec {
                command: vec!["/bin/sh".into(), "-c".into(), "exit 3".into()],
            },
            action: Action::Exec { pid: 42 },
        };
        assert_eq!(hook.on_exit(41, &ExitStatus::Exited(0)), None, "not ours");
        assert_eq!(hook.on_exit(42, &ExitStatus::Exited(0)), Some(Ok(())));
        let Some(Err(error)) = hook.on_exit(42, &ExitStatus::Exited(3)) else {
            panic!("a failure")
        };
        assert_eq!(error, "command '/bin/sh -c exit 3' exited with 3");
        assert_eq!(
            failure_message(hook.handler(), "app", "web_default(u)", &error),
            "Exec lifecycle hook ([/bin/sh -c exit 3]) for Container \"app\" in Pod \"web_default(u)\" failed - error: command '/bin/sh -c exit 3' exited with 3, message: \"\""
        );
        assert_eq!(hook.kind().failed_reason(), "FailedPostStartHook");
    }
}
