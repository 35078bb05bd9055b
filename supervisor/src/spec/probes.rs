//! Probes: [`Probe`] and [`Handler`] with Kubernetes' defaults, and their
//! validator (exactly one of exec, httpGet and tcpSocket; ports resolved
//! against the container's named ports; liveness and startup probes keep
//! a success threshold of 1). Running probes is [`crate::probe`]'s work.
//! Lifecycle hook handlers (`postStart`, `preStop`: exec, httpGet, sleep)
//! are validated here too, beside the handlers they share; running them is
//! [`crate::hook`]'s work.

use std::time::Duration;

use super::ports::{Port, resolve_port};
use super::{Ctx, Result};
use crate::manifest;

/// A probe with Kubernetes' defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// What to check.
    pub handler: Handler,
    /// `initialDelaySeconds` (0).
    pub initial_delay: Duration,
    /// `timeoutSeconds` (1).
    pub timeout: Duration,
    /// `periodSeconds` (10).
    pub period: Duration,
    /// `successThreshold` (1; always 1 for liveness and startup).
    pub success_threshold: u32,
    /// `failureThreshold` (3).
    pub failure_threshold: u32,
    /// Probe-level `terminationGracePeriodSeconds` (liveness/startup).
    pub termination_grace_period: Option<Duration>,
}

/// A probe or lifecycle action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handler {
    /// Run argv inside the container (no shell, no `$(VAR)` expansion).
    Exec {
        /// argv.
        command: Vec<String>,
    },
    /// HTTP/1.1 GET; 200-399 is success.
    HttpGet {
        /// Host (None: the pod IP).
        host: Option<String>,
        /// Port, names resolved.
        port: u16,
        /// Path (starts with `/`).
        path: String,
        /// Extra headers.
        headers: Vec<(String, String)>,
    },
    /// TCP connect.
    TcpSocket {
        /// Host (None: the pod IP).
        host: Option<String>,
        /// Port, names resolved.
        port: u16,
    },
    /// Lifecycle `sleep` (hooks only; the probe runner refuses it as a
    /// probe handler).
    Sleep {
        /// How long.
        duration: Duration,
    },
}

/// The handler a probe names (exactly one).
enum RawHandler<'a> {
    Exec(&'a manifest::ExecAction),
    HttpGet(&'a manifest::HttpGetAction),
    TcpSocket(&'a manifest::TcpSocketAction),
}

/// One probe at `pp`; `liveness_like` for liveness and startup probes.
pub(super) fn probe(
    ctx: &Ctx<'_>,
    p: &manifest::Probe,
    pp: &str,
    ports: &[Port],
    liveness_like: bool,
) -> Result<Probe> {
    if p.grpc.is_some() {
        return Err(ctx.err(
            format!("{pp}.grpc"),
            None,
            "not supported (exec, httpGet, tcpSocket)",
        ));
    }
    let raw = ctx.exactly_one(
        pp,
        [
            ("exec", p.exec.as_ref().map(RawHandler::Exec)),
            ("httpGet", p.http_get.as_ref().map(RawHandler::HttpGet)),
            (
                "tcpSocket",
                p.tcp_socket.as_ref().map(RawHandler::TcpSocket),
            ),
        ],
    )?;
    let handler = match raw {
        RawHandler::Exec(e) => exec(ctx, e, &format!("{pp}.exec"))?,
        RawHandler::HttpGet(h) => http_get(ctx, h, &format!("{pp}.httpGet"), ports)?,
        RawHandler::TcpSocket(t) => Handler::TcpSocket {
            host: t.host.clone().filter(|h| !h.is_empty()),
            port: resolve_port(ctx, &format!("{pp}.tcpSocket.port"), t.port.as_ref(), ports)?,
        },
    };
    // 0 means "use the default", as Kubernetes' defaulting does.
    let field = |name: &str, v: Option<i64>, default: u32| -> Result<u32> {
        match v {
            None | Some(0) => Ok(default),
            Some(n) if n > 0 => u32::try_from(n)
                .map_err(|_| ctx.err(format!("{pp}.{name}"), Some(&n.to_string()), "too large")),
            Some(n) => Err(ctx.err(format!("{pp}.{name}"), Some(&n.to_string()), "must be >= 0")),
        }
    };
    let initial_delay = field("initialDelaySeconds", p.initial_delay_seconds, 0)?;
    let timeout = field("timeoutSeconds", p.timeout_seconds, 1)?;
    let period = field("periodSeconds", p.period_seconds, 10)?;
    let success_threshold = field("successThreshold", p.success_threshold, 1)?;
    let failure_threshold = field("failureThreshold", p.failure_threshold, 3)?;
    if liveness_like && success_threshold != 1 {
        return Err(ctx.err(
            format!("{pp}.successThreshold"),
            Some(&success_threshold.to_string()),
            "must be 1 for liveness and startup probes",
        ));
    }
    let termination_grace_period = match p.termination_grace_period_seconds {
        None => None,
        Some(_) if !liveness_like => {
            return Err(ctx.err(
                format!("{pp}.terminationGracePeriodSeconds"),
                None,
                "only liveness and startup probes have it",
            ));
        }
        Some(n) if n > 0 => Some(Duration::from_secs(n.unsigned_abs())),
        Some(n) => {
            return Err(ctx.err(
                format!("{pp}.terminationGracePeriodSeconds"),
                Some(&n.to_string()),
                "must be > 0",
            ));
        }
    };
    Ok(Probe {
        handler,
        initial_delay: Duration::from_secs(initial_delay.into()),
        timeout: Duration::from_secs(timeout.into()),
        period: Duration::from_secs(period.into()),
        success_threshold,
        failure_threshold,
        termination_grace_period,
    })
}

/// A `postStart` or `preStop` handler at `hp`: exactly one of exec,
/// httpGet and sleep, as Kubernetes' `validateLifecycleHandler` has it
/// (pkg/apis/core/validation/validation.go). `tcpSocket` is refused: it is
/// deprecated for hooks and kubelet does not run it (it only logs it).
/// `sleep.seconds` is within 0..=terminationGracePeriodSeconds (0 allowed,
/// the PodLifecycleSleepActionAllowZero behaviour of 1.33).
pub(super) fn lifecycle_handler(
    ctx: &Ctx<'_>,
    h: &manifest::LifecycleHandler,
    hp: &str,
    ports: &[Port],
    grace_period_seconds: u64,
) -> Result<Handler> {
    if h.tcp_socket.is_some() {
        return Err(ctx.err(
            format!("{hp}.tcpSocket"),
            None,
            "not supported for lifecycle hooks (deprecated; kubelet does not run it): use exec, httpGet or sleep",
        ));
    }
    enum Raw<'a> {
        Exec(&'a manifest::ExecAction),
        HttpGet(&'a manifest::HttpGetAction),
        Sleep(&'a manifest::SleepAction),
    }
    let raw = ctx.exactly_one(
        hp,
        [
            ("exec", h.exec.as_ref().map(Raw::Exec)),
            ("httpGet", h.http_get.as_ref().map(Raw::HttpGet)),
            ("sleep", h.sleep.as_ref().map(Raw::Sleep)),
        ],
    )?;
    match raw {
        Raw::Exec(e) => exec(ctx, e, &format!("{hp}.exec")),
        Raw::HttpGet(g) => http_get(ctx, g, &format!("{hp}.httpGet"), ports),
        Raw::Sleep(s) => {
            let sp = format!("{hp}.sleep.seconds");
            let Some(seconds) = s.seconds else {
                return Err(ctx.err(sp, None, "missing"));
            };
            match u64::try_from(seconds) {
                Ok(n) if n <= grace_period_seconds => Ok(Handler::Sleep {
                    duration: Duration::from_secs(n),
                }),
                _ => Err(ctx.err(
                    sp,
                    Some(&seconds.to_string()),
                    format!(
                        "must be non-negative and at most terminationGracePeriodSeconds ({grace_period_seconds})"
                    ),
                )),
            }
        }
    }
}

fn http_get(
    ctx: &Ctx<'_>,
    h: &manifest::HttpGetAction,
    hp: &str,
    ports: &[Port],
) -> Result<Handler> {
    match h.scheme.as_deref() {
        None | Some("HTTP") => {}
        Some(other) => {
            return Err(ctx.err(
                format!("{hp}.scheme"),
                Some(other),
                "not supported (HTTP only)",
            ));
        }
    }
    let port = resolve_port(ctx, &format!("{hp}.port"), h.port.as_ref(), ports)?;
    let mut path = h.path.clone().unwrap_or_else(|| "/".into());
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let mut headers = Vec::new();
    for (i, hd) in h.http_headers.iter().enumerate() {
        let name = hd
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ctx.err(format!("{hp}.httpHeaders[{i}].name"), None, "missing"))?;
        headers.push((name.to_owned(), hd.value.clone().unwrap_or_default()));
    }
    Ok(Handler::HttpGet {
        host: h.host.clone().filter(|h| !h.is_empty()),
        port,
        path,
        headers,
    })
}

fn exec(ctx: &Ctx<'_>, e: &manifest::ExecAction, ep: &str) -> Result<Handler> {
    match &e.command {
        Some(c) if !c.is_empty() => Ok(Handler::Exec { command: c.clone() }),
        _ => Err(ctx.err(format!("{ep}.command"), None, "missing")),
    }
}
