//! The pod's status as Kubernetes shapes it, on disk and on screen.
//!
//! * Types: [`PodRecord`] is a `v1 Pod` without spec (metadata + PodStatus),
//!   field for field as the API server writes it (camelCase, RFC 3339 UTC
//!   timestamps at second precision), so `jq`/`kubectl`-minded tools read it.
//! * [`build`] derives the whole status from [`restart::PodStateMachine`] (the single
//!   source of truth) plus what the sandbox knows ([`PodMeta`]); conditions
//!   keep their `lastTransitionTime` while unchanged.
//! * [`StatusStore`] writes `status.json` atomically (temp file, rename)
//!   when its bytes changed, and keeps `events.json` beside it.
//! * `supervisor status` ([`main`]) prints a kubectl-like table, JSON or YAML.
//!
//! Time formatting lives here too ([`format_rfc3339`], [`format_rfc3339_nano`],
//! [`parse_rfc3339`]): a civil-from-days conversion, no date crate needed.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::paths::{self, Layout};
use crate::restart::{self, ContainerStateMachine, PodPhase, State, Terminated};

// ---------------------------------------------------------------- time

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) to days since 1970-01-01 (`days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds and nanoseconds since the epoch (negative times clamp to 0).
fn epoch_parts(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(_) => (0, 0),
    }
}

fn write_date_time(out: &mut String, secs: i64) {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let _ = write!(
        out,
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
}

/// `2026-11-29T04:39:30Z`: Kubernetes' `metav1.Time` (second precision).
pub fn format_rfc3339(t: SystemTime) -> String {
    let mut out = String::with_capacity(20);
    write_date_time(&mut out, epoch_parts(t).0);
    out.push('Z');
    out
}

/// `2026-11-29T04:39:30.12345Z`: Go's `time.RFC3339Nano` as CRI log lines
/// carry it (fraction with trailing zeros removed, none when zero).
pub fn format_rfc3339_nano(t: SystemTime) -> String {
    let (secs, nanos) = epoch_parts(t);
    let mut out = String::with_capacity(30);
    write_date_time(&mut out, secs);
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Parses an RFC 3339 time in UTC (`Z`) or with a numeric offset, with or
/// without fraction. `None` if malformed.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)? as u32, num(8..10)? as u32);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos: u32 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        for (i, c) in frac[..digits].bytes().take(9).enumerate() {
            nanos += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
        }
        rest = &frac[digits..];
    }
    let offset: i64 = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(&rest[3..4], ":") => {
            let sign = match &rest[..1] {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let h: i64 = rest[1..3].parse().ok()?;
            let m: i64 = rest[4..6].parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// kubectl's `HumanDuration`: `5s`, `3m2s`, `12m`, `2h5m`, `20h`, `4d3h`, `30d`, `2y3d`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (minutes, hours, days) = (secs / 60, secs / 3600, secs / 86_400);
    if secs < 120 {
        format!("{secs}s")
    } else if minutes < 10 {
        match secs % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        }
    } else if minutes < 180 {
        format!("{minutes}m")
    } else if hours < 8 {
        match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        }
    } else if hours < 24 * 365 * 2 {
        format!("{days}d")
    } else if hours < 24 * 365 * 8 {
        match days % 365 {
            0 => format!("{}y", days / 365),
            dd => format!("{}y{dd}d", days / 365),
        }
    } else {
        format!("{}y", days / 365)
    }
}

// ---------------------------------------------------------------- types

/// A `v1 Pod` without spec: what `status.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodRecord {
    /// Always `v1`.
    pub api_version: String,
    /// Always `Pod`.
    pub kind: String,
    /// Name, namespace, uid, creation and deletion times.
    pub metadata: ObjectMeta,
    /// The status proper.
    pub status: PodStatus,
}

/// The part of `metadata` the status needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectMeta {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `metadata.uid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// When the supervisor took the pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    /// Set once the pod is stopping (kubectl then says Terminating).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
}

/// `v1.PodStatus`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodStatus {
    /// Pending / Running / Succeeded / Failed.
    pub phase: String,
    /// Initialized, Ready, ContainersReady, PodScheduled.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<PodCondition>,
    /// A one-word reason for the phase, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Detail for `reason`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The host's address.
    #[serde(rename = "hostIP", skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// The host's addresses.
    #[serde(rename = "hostIPs", skip_serializing_if = "Vec::is_empty")]
    pub host_ips: Vec<PodIp>,
    /// The pod's first address.
    #[serde(rename = "podIP", skip_serializing_if = "Option::is_none")]
    pub pod_ip: Option<String>,
    /// The pod's addresses.
    #[serde(rename = "podIPs", skip_serializing_if = "Vec::is_empty")]
    pub pod_ips: Vec<PodIp>,
    /// When the supervisor started the pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// One per `spec.initContainers`, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub init_container_statuses: Vec<ContainerStatus>,
    /// One per `spec.containers`, in order.
    pub container_statuses: Vec<ContainerStatus>,
}

/// `{ "ip": "10.88.0.5" }`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PodIp {
    /// The address.
    pub ip: String,
}

/// `v1.PodCondition`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodCondition {
    /// Condition name.
    #[serde(rename = "type")]
    pub type_: String,
    /// `"True"` or `"False"`.
    pub status: String,
    /// Always null (no probes of conditions).
    pub last_probe_time: Option<String>,
    /// When `status` last changed.
    pub last_transition_time: Option<String>,
    /// Machine-readable reason when False.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable detail when False.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `v1.ContainerStatus`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerStatus {
    /// Container name.
    pub name: String,
    /// Current state.
    pub state: ContainerState,
    /// The previous instance's end, or `{}`.
    pub last_state: ContainerState,
    /// Passing readiness.
    pub ready: bool,
    /// Restarts so far.
    pub restart_count: u32,
    /// `spec.containers[].image`.
    pub image: String,
    /// Resolved image id (empty while containers run from the host root).
    #[serde(rename = "imageID")]
    pub image_id: String,
    /// The running instance's id.
    #[serde(rename = "containerID", skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// Passed its startup probe (true once running without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<bool>,
}

/// `v1.ContainerState`: exactly one member set, or none (`{}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerState {
    /// Not running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<ContainerStateWaiting>,
    /// Running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<ContainerStateRunning>,
    /// Ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminated: Option<ContainerStateTerminated>,
}

/// `v1.ContainerStateWaiting`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerStateWaiting {
    /// ContainerCreating / PodInitializing / CrashLoopBackOff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `v1.ContainerStateRunning`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerStateRunning {
    /// Start time.
    pub started_at: Option<String>,
}

/// `v1.ContainerStateTerminated`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerStateTerminated {
    /// Exit code (128+N for signal N).
    pub exit_code: i32,
    /// The killing signal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Completed / Error / OOMKilled / ContainerCannotRun.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Start of the instance.
    pub started_at: Option<String>,
    /// End of the instance.
    pub finished_at: Option<String>,
    /// The instance's id.
    #[serde(rename = "containerID", skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
}

// ---------------------------------------------------------------- build

/// Per-container facts that are not lifecycle: the image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerMeta {
    /// `image` as written in the spec.
    pub image: String,
    /// Resolved image id, empty when unknown.
    pub image_id: String,
}

/// What the sandbox knows about the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodMeta {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, if the manifest has one.
    pub namespace: Option<String>,
    /// `metadata.uid`, if any.
    pub uid: Option<String>,
    /// When the supervisor took the pod.
    pub created: SystemTime,
    /// When the pod started stopping.
    pub deleting: Option<SystemTime>,
    /// When the sandbox was up (`startTime`).
    pub start_time: Option<SystemTime>,
    /// The host's addresses.
    pub host_ips: Vec<String>,
    /// The pod's addresses (first is `podIP`).
    pub pod_ips: Vec<String>,
    /// One per init container, in spec order.
    pub init_containers: Vec<ContainerMeta>,
    /// One per container, in spec order.
    pub containers: Vec<ContainerMeta>,
}

fn terminated_state(t: &Terminated) -> ContainerStateTerminated {
    ContainerStateTerminated {
        exit_code: t.termination.exit_code,
        signal: t.termination.signal,
        reason: Some(t.termination.reason.as_str().to_owned()),
        message: t.termination.message.clone(),
        started_at: t.started_at.map(format_rfc3339),
        finished_at: Some(format_rfc3339(t.finished_at)),
        container_id: t.container_id.clone(),
    }
}

fn container_status(c: &ContainerStateMachine, meta: Option<&ContainerMeta>) -> ContainerStatus {
    let (state, container_id, started) = match c.state() {
        State::Waiting {
            reason, message, ..
        } => (
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.as_str().to_owned()),
                    message: message.clone(),
                }),
                ..ContainerState::default()
            },
            None,
            Some(false),
        ),
        State::Running {
            started,
            container_id,
        } => (
            ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(format_rfc3339(started.wall)),
                }),
                ..ContainerState::default()
            },
            Some(container_id.clone()),
            Some(true),
        ),
        State::Terminated(t) => (
            ContainerState {
                terminated: Some(terminated_state(t)),
                ..ContainerState::default()
            },
            t.container_id.clone(),
            Some(false),
        ),
    };
    let last_state = ContainerState {
        terminated: c.last_termination().map(terminated_state),
        ..ContainerState::default()
    };
    ContainerStatus {
        name: c.name().to_owned(),
        state,
        last_state,
        ready: c.ready(),
        restart_count: c.restart_count(),
        image: meta.map(|m| m.image.clone()).unwrap_or_default(),
        image_id: meta.map(|m| m.image_id.clone()).unwrap_or_default(),
        container_id,
        started,
    }
}

fn condition(
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: SystemTime,
    previous: Option<&PodStatus>,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    // Keep the transition time while the status stays the same.
    let since = previous
        .and_then(|p| p.conditions.iter().find(|c| c.type_ == type_))
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| format_rfc3339(now));
    PodCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        last_probe_time: None,
        last_transition_time: Some(since),
        reason: if ok { None } else { reason.map(str::to_owned) },
        message: if ok { None } else { message },
    }
}

/// Derives the pod's record from its lifecycle. `previous` (the last record
/// written) keeps conditions' transition times; `now` stamps new ones.
pub fn build(
    meta: &PodMeta,
    pod: &restart::PodStateMachine,
    previous: Option<&PodRecord>,
    now: SystemTime,
) -> PodRecord {
    let phase = pod.phase();
    let init_statuses: Vec<ContainerStatus> = pod
        .init_containers()
        .iter()
        .enumerate()
        .map(|(i, c)| container_status(c, meta.init_containers.get(i)))
        .collect();
    let statuses: Vec<ContainerStatus> = pod
        .containers()
        .iter()
        .enumerate()
        .map(|(i, c)| container_status(c, meta.containers.get(i)))
        .collect();
    let previous = previous.map(|p| &p.status);
    let completed = matches!(phase, PodPhase::Succeeded | PodPhase::Failed);
    let list = |names: Vec<&str>| format!("[{}]", names.join(" "));
    let incomplete: Vec<&str> = pod
        .init_containers()
        .iter()
        .filter(|c| !matches!(c.state(), State::Terminated(t) if t.termination.succeeded()))
        .map(ContainerStateMachine::name)
        .collect();
    let unready: Vec<&str> = pod
        .containers()
        .iter()
        .filter(|c| !c.ready())
        .map(ContainerStateMachine::name)
        .collect();
    let (ready_reason, ready_message) = if completed {
        ("PodCompleted", None)
    } else {
        (
            "ContainersNotReady",
            Some(format!(
                "containers with unready status: {}",
                list(unready.clone())
            )),
        )
    };
    let all_ready = unready.is_empty() && !completed;
    let conditions = vec![
        condition(
            "Initialized",
            incomplete.is_empty(),
            Some(if completed {
                "PodCompleted"
            } else {
                "ContainersNotInitialized"
            }),
            Some(format!(
                "containers with incomplete status: {}",
                list(incomplete.clone())
            )),
            now,
            previous,
        ),
        condition(
            "Ready",
            all_ready,
            Some(ready_reason),
            ready_message.clone(),
            now,
            previous,
        ),
        condition(
            "ContainersReady",
            all_ready,
            Some(ready_reason),
            ready_message,
            now,
            previous,
        ),
        condition("PodScheduled", true, None, None, meta.created, previous),
    ];
    let ips = |v: &[String]| v.iter().map(|ip| PodIp { ip: ip.clone() }).collect();
    PodRecord {
        api_version: "v1".to_owned(),
        kind: "Pod".to_owned(),
        metadata: ObjectMeta {
            name: meta.name.clone(),
            namespace: meta.namespace.clone(),
            uid: meta.uid.clone(),
            creation_timestamp: Some(format_rfc3339(meta.created)),
            deletion_timestamp: meta.deleting.map(format_rfc3339),
        },
        status: PodStatus {
            phase: phase.as_str().to_owned(),
            conditions,
            reason: None,
            message: None,
            host_ip: meta.host_ips.first().cloned(),
            host_ips: ips(&meta.host_ips),
            pod_ip: meta.pod_ips.first().cloned(),
            pod_ips: ips(&meta.pod_ips),
            start_time: meta.start_time.map(format_rfc3339),
            init_container_statuses: init_statuses,
            container_statuses: statuses,
        },
    }
}

// ---------------------------------------------------------------- store

/// Errors of the status files and the `status` command.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// Creating the pod's state dir failed.
    #[error("create directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Writing (temp file or rename) failed.
    #[error("write {path}: {source}")]
    Write {
        /// The target file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Reading failed.
    #[error("read {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file is not the JSON we write.
    #[error("parse {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// A name that cannot be a path component.
    #[error(transparent)]
    Name(#[from] paths::NameError),
    /// No status for this pod.
    #[error("pod {pod:?} not found in {dir}")]
    NoSuchPod {
        /// The pod asked for.
        pod: String,
        /// The state root searched.
        dir: PathBuf,
    },
}

/// Writes `bytes` to `path` so readers see the old or the new content,
/// never a mix: write `.<name>.tmp` beside it, rename over. No fsync: the
/// status is runtime state (its root is /run, a tmpfs, by default) that
/// describes processes a reboot ends anyway, and an fsync per container
/// start would sit on the restart path (0.2 to 0.4 ms on a disk).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StatusError> {
    let err = |source| StatusError::Write {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let mut file = fs::File::create(&tmp).map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    drop(file);
    fs::rename(&tmp, path).map_err(err)
}

/// Reads one `status.json`.
pub fn read_record(path: &Path) -> Result<PodRecord, StatusError> {
    let bytes = fs::read(path).map_err(|source| StatusError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| StatusError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads one `events.json` (missing file: no events).
pub fn read_events(path: &Path) -> Result<Vec<PodEvent>, StatusError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StatusError::Parse {
            path: path.to_path_buf(),
            source,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(StatusError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Every pod with a `status.json` under the state root, sorted by name.
pub fn list_pods(layout: &Layout) -> Result<Vec<PodRecord>, StatusError> {
    let root = layout.state_root();
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StatusError::Read {
                path: root.to_path_buf(),
                source,
            });
        }
    };
    let mut records = Vec::new();
    for entry in entries.flatten() {
        let file = entry.path().join(paths::STATUS_FILE);
        if file.is_file() {
            records.push(read_record(&file)?);
        }
    }
    records.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(records)
}

/// One entry of `events.json`, shaped as `v1.Event` (the fields kubectl
/// describe shows). Repeats of the same event are counted, not appended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodEvent {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    /// CamelCase reason: Started, BackOff, SandboxChanged, Killing, ...
    pub reason: String,
    /// Human-readable text.
    pub message: String,
    /// The object: `spec.containers{name}` or empty for the pod.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub field_path: String,
    /// First occurrence.
    pub first_timestamp: Option<String>,
    /// Latest occurrence.
    pub last_timestamp: Option<String>,
    /// Occurrences.
    pub count: u32,
}

/// Events kept per pod (oldest dropped first).
pub const MAX_EVENTS: usize = 100;

/// Owns one pod's `status.json` and `events.json`.
#[derive(Debug)]
pub struct StatusStore {
    dir: PathBuf,
    last_written: Option<Vec<u8>>,
    last_record: Option<PodRecord>,
    events: Vec<PodEvent>,
}

impl StatusStore {
    /// Creates `<state root>/<pod>` (mode 0755, parents as needed).
    pub fn create(layout: &Layout, pod: &str) -> Result<Self, StatusError> {
        paths::check_name("pod", pod)?;
        let dir = layout.pod_state_dir(pod);
        fs::create_dir_all(&dir).map_err(|source| StatusError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        Ok(StatusStore {
            dir,
            last_written: None,
            last_record: None,
            events: Vec::new(),
        })
    }

    /// The pod's state dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The record last written (pass it to [`build`] as `previous`).
    pub fn last(&self) -> Option<&PodRecord> {
        self.last_record.as_ref()
    }

    /// Writes the record atomically if its JSON differs from the last one
    /// written. Returns whether it wrote.
    pub fn write(&mut self, record: &PodRecord) -> Result<bool, StatusError> {
        let path = self.dir.join(paths::STATUS_FILE);
        let mut bytes = serde_json::to_vec_pretty(record).map_err(|e| StatusError::Write {
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        bytes.push(b'\n');
        if self.last_written.as_deref() == Some(&bytes) {
            return Ok(false);
        }
        write_atomic(&path, &bytes)?;
        self.last_written = Some(bytes);
        self.last_record = Some(record.clone());
        Ok(true)
    }

    /// Records an event (coalescing a repeat of the latest one with the same
    /// type, reason, object and message) and rewrites `events.json`.
    pub fn record_event(
        &mut self,
        type_: &str,
        reason: &str,
        field_path: &str,
        message: &str,
        at: SystemTime,
    ) -> Result<(), StatusError> {
        let stamp = format_rfc3339(at);
        let repeat = self.events.iter_mut().rev().find(|e| {
            e.type_ == type_
                && e.reason == reason
                && e.field_path == field_path
                && e.message == message
        });
        match repeat {
            Some(event) => {
                event.count += 1;
                event.last_timestamp = Some(stamp);
            }
            None => {
                if self.events.len() >= MAX_EVENTS {
                    self.events.remove(0);
                }
                self.events.push(PodEvent {
                    type_: type_.to_owned(),
                    reason: reason.to_owned(),
                    message: message.to_owned(),
                    field_path: field_path.to_owned(),
                    first_timestamp: Some(stamp.clone()),
                    last_timestamp: Some(stamp),
                    count: 1,
                });
            }
        }
        let path = self.dir.join(paths::EVENTS_FILE);
        let mut bytes =
            serde_json::to_vec_pretty(&self.events).map_err(|e| StatusError::Write {
                path: path.clone(),
                source: io::Error::other(e),
            })?;
        bytes.push(b'\n');
        write_atomic(&path, &bytes)
    }

    /// The events recorded so far, oldest first.
    pub fn events(&self) -> &[PodEvent] {
        &self.events
    }

    /// The pod is gone: removes its status, events and (if then empty) dir.
    pub fn remove(self) -> Result<(), StatusError> {
        for name in [paths::STATUS_FILE, paths::EVENTS_FILE] {
            let path = self.dir.join(name);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(StatusError::Write { path, source }),
            }
        }
        // Other modules may still keep state there; only an empty dir goes.
        let _ = fs::remove_dir(&self.dir);
        Ok(())
    }
}

// ---------------------------------------------------------------- kubectl

/// The STATUS column of `kubectl get pod` (kubectl's `printPod`).
pub fn pod_status_string(record: &PodRecord) -> String {
    let status = &record.status;
    let mut reason = status
        .reason
        .clone()
        .unwrap_or_else(|| status.phase.clone());
    let mut initializing = false;
    let total_init = status.init_container_statuses.len();
    for (i, c) in status.init_container_statuses.iter().enumerate() {
        if let Some(t) = &c.state.terminated {
            if t.exit_code == 0 {
                continue;
            }
            reason = match (&t.reason, t.signal) {
                (Some(r), _) => format!("Init:{r}"),
                (None, Some(s)) => format!("Init:Signal:{s}"),
                (None, None) => format!("Init:ExitCode:{}", t.exit_code),
            };
        } else if let Some(r) = c
            .state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.as_deref())
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{r}");
        } else {
            reason = format!("Init:{i}/{total_init}");
        }
        initializing = true;
        break;
    }
    if !initializing {
        let mut has_running = false;
        for c in status.container_statuses.iter().rev() {
            if let Some(r) = c.state.waiting.as_ref().and_then(|w| w.reason.clone()) {
                reason = r;
            } else if let Some(t) = &c.state.terminated {
                reason = match (&t.reason, t.signal) {
                    (Some(r), _) => r.clone(),
                    (None, Some(s)) => format!("Signal:{s}"),
                    (None, None) => format!("ExitCode:{}", t.exit_code),
                };
            } else if c.ready && c.state.running.is_some() {
                has_running = true;
            }
        }
        if reason == "Completed" && has_running {
            reason = "Running".to_owned();
        }
    }
    if record.metadata.deletion_timestamp.is_some() {
        reason = "Terminating".to_owned();
    }
    reason
}

/// The STATUS column of one container's line.
pub fn container_status_string(c: &ContainerStatus, terminating: bool) -> String {
    if let Some(w) = &c.state.waiting {
        return w.reason.clone().unwrap_or_else(|| "Waiting".to_owned());
    }
    if let Some(t) = &c.state.terminated {
        return match (&t.reason, t.signal) {
            (Some(r), _) => r.clone(),
            (None, Some(s)) => format!("Signal:{s}"),
            (None, None) => format!("ExitCode:{}", t.exit_code),
        };
    }
    if c.state.running.is_some() {
        return if terminating {
            "Terminating"
        } else {
            "Running"
        }
        .to_owned();
    }
    "Unknown".to_owned()
}

fn since(stamp: Option<&str>, now: SystemTime) -> Option<Duration> {
    let t = parse_rfc3339(stamp?)?;
    Some(now.duration_since(t).unwrap_or(Duration::ZERO))
}

fn restarts_column<'a>(
    statuses: impl Iterator<Item = &'a ContainerStatus>,
    now: SystemTime,
) -> String {
    let mut count = 0u64;
    let mut latest: Option<SystemTime> = None;
    for c in statuses {
        count += u64::from(c.restart_count);
        let finished = c
            .last_state
            .terminated
            .as_ref()
            .and_then(|t| t.finished_at.as_deref())
            .and_then(parse_rfc3339);
        latest = latest.max(finished);
    }
    match latest {
        Some(t) if count > 0 => {
            let ago = now.duration_since(t).unwrap_or(Duration::ZERO);
            format!("{count} ({} ago)", human_duration(ago))
        }
        _ => count.to_string(),
    }
}

/// `NAME READY STATUS RESTARTS AGE`, one line per pod and one indented line
/// per container (init containers as `init:<name>`), aligned like kubectl.
pub fn render_table(records: &[PodRecord], now: SystemTime) -> String {
    let mut rows: Vec<[String; 5]> = vec![[
        "NAME".into(),
        "READY".into(),
        "STATUS".into(),
        "RESTARTS".into(),
        "AGE".into(),
    ]];
    for r in records {
        let s = &r.status;
        let ready = s.container_statuses.iter().filter(|c| c.ready).count();
        let age = since(r.metadata.creation_timestamp.as_deref(), now)
            .map(human_duration)
            .unwrap_or_else(|| "<unknown>".into());
        rows.push([
            r.metadata.name.clone(),
            format!("{ready}/{}", s.container_statuses.len()),
            pod_status_string(r),
            restarts_column(
                s.init_container_statuses
                    .iter()
                    .chain(&s.container_statuses),
                now,
            ),
            age,
        ]);
        let terminating = r.metadata.deletion_timestamp.is_some();
        let inits = s.init_container_statuses.iter().map(|c| (c, "init:"));
        let apps = s.container_statuses.iter().map(|c| (c, ""));
        for (c, label) in inits.chain(apps) {
            let started = c
                .state
                .running
                .as_ref()
                .and_then(|r| r.started_at.as_deref())
                .or_else(|| {
                    c.state
                        .terminated
                        .as_ref()
                        .and_then(|t| t.finished_at.as_deref())
                });
            rows.push([
                format!("  {label}{}", c.name),
                format!("{}/1", u8::from(c.ready)),
                container_status_string(c, terminating),
                restarts_column(std::iter::once(c), now),
                since(started, now)
                    .map(human_duration)
                    .unwrap_or_else(|| "-".into()),
            ]);
        }
    }
    align(&rows)
}

/// kubectl's tabwriter: columns padded to the widest cell plus 3 spaces.
fn align<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}", w = widths[i] + 3);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `LAST SEEN TYPE REASON OBJECT MESSAGE`, like the end of kubectl describe.
pub fn render_events(events: &[PodEvent], now: SystemTime) -> String {
    let mut rows: Vec<[String; 5]> = vec![[
        "LAST SEEN".into(),
        "TYPE".into(),
        "REASON".into(),
        "OBJECT".into(),
        "MESSAGE".into(),
    ]];
    for e in events {
        let seen = since(e.last_timestamp.as_deref(), now)
            .map(human_duration)
            .unwrap_or_else(|| "<unknown>".into());
        let seen = if e.count > 1 {
            format!("{seen} (x{})", e.count)
        } else {
            seen
        };
        let object = if e.field_path.is_empty() {
            "pod".to_owned()
        } else {
            e.field_path.clone()
        };
        rows.push([
            seen,
            e.type_.clone(),
            e.reason.clone(),
            object,
            e.message.clone(),
        ]);
    }
    align(&rows)
}

// ---------------------------------------------------------------- yaml

/// Emits JSON-shaped data as block YAML, kubectl style (sequence items at
/// the key's indent). Strings that YAML could read as anything but a string
/// (numbers, booleans, timestamps, special characters) are double-quoted
/// with JSON escapes, which YAML accepts.
pub fn to_yaml(value: &serde_json::Value) -> String {
    let mut out = String::new();
    match value {
        serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
            yaml_node(value, 0, &mut out);
        }
        scalar => {
            out.push_str(&yaml_scalar(scalar));
            out.push('\n');
        }
    }
    out
}

fn yaml_node(value: &serde_json::Value, indent: usize, out: &mut String) {
    use serde_json::Value;
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let key = yaml_string(key);
                match v {
                    Value::Object(m) if !m.is_empty() => {
                        let _ = writeln!(out, "{pad}{key}:");
                        yaml_node(v, indent + 2, out);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        let _ = writeln!(out, "{pad}{key}:");
                        yaml_node(v, indent, out);
                    }
                    _ => {
                        let _ = writeln!(out, "{pad}{key}: {}", yaml_scalar(v));
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        let mut inner = String::new();
                        yaml_node(item, indent + 2, &mut inner);
                        // The first key moves up onto the "- " line.
                        let _ = write!(out, "{pad}- {}", &inner[indent + 2..]);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        let mut inner = String::new();
                        yaml_node(item, indent + 2, &mut inner);
                        let _ = write!(out, "{pad}- {}", &inner[indent + 2..]);
                    }
                    _ => {
                        let _ = writeln!(out, "{pad}- {}", yaml_scalar(item));
                    }
                }
            }
        }
        scalar => {
            let _ = writeln!(out, "{pad}{}", yaml_scalar(scalar));
        }
    }
}

fn yaml_scalar(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => yaml_string(s),
        Value::Object(_) => "{}".to_owned(),
        Value::Array(_) => "[]".to_owned(),
    }
}

fn yaml_string(s: &str) -> String {
    const RESERVED: [&str; 11] = [
        "true", "false", "yes", "no", "on", "off", "null", "y", "n", "~", "",
    ];
    let plain = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " ._/-+@()[]=,".contains(c))
        && !s.contains(['[', ']', ','])
        && !s.ends_with(' ')
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_owned()
    } else {
        serde_json::Value::String(s.to_owned()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restart::{
        BackoffConfig, Event, PodStateMachine, RestartPolicy, Slot, Stamp, Termination,
    };
    use container::ExitStatus;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn rfc3339_round_trips() {
        assert_eq!(format_rfc3339(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(at(1_795_753_170)), "2026-11-27T04:19:30Z");
        let t = at(1_700_000_000) + Duration::from_nanos(120_000_000);
        assert_eq!(format_rfc3339_nano(t), "2023-11-14T22:13:20.12Z");
        assert_eq!(
            format_rfc3339_nano(at(1_700_000_000)),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.12Z"), Some(t));
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20+01:00"),
            Some(at(1_700_000_000))
        );
        for day in (0..200_000u64).step_by(997) {
            let t = at(day * 86_400 + 3_723);
            assert_eq!(parse_rfc3339(&format_rfc3339(t)), Some(t));
        }
        assert_eq!(parse_rfc3339("2023-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn ages_like_kubectl() {
        let cases = [
            (5, "5s"),
            (119, "119s"),
            (182, "3m2s"),
            (240, "4m"),
            (900, "15m"),
            (3 * 3600 + 300, "3h5m"),
            (7200 * 4, "8h"),
            (20 * 3600, "20h"),
            (4 * 86_400, "4d"),
            (4 * 86_400 + 3 * 3600, "4d3h"),
            (30 * 86_400, "30d"),
            (800 * 86_400, "2y70d"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(Duration::from_secs(secs)), want, "{secs}");
        }
    }

    fn sample() -> (PodMeta, PodStateMachine, Stamp) {
        let t = Stamp {
            mono: std::time::Instant::now(),
            wall: at(1_800_000_000),
        };
        let backoff = BackoffConfig {
            initial: Duration::from_secs(10),
            ..BackoffConfig::default()
        };
        let pod = PodStateMachine::new(
            RestartPolicy::Always,
            backoff,
            ["setup"],
            ["web", "side"],
            t,
        );
        let meta = PodMeta {
            name: "demo".into(),
            namespace: Some("default".into()),
            uid: None,
            created: t.wall,
            deleting: None,
            start_time: Some(t.wall),
            host_ips: vec!["192.168.1.2".into()],
            pod_ips: vec!["10.88.0.5".into()],
            init_containers: vec![ContainerMeta {
                image: "busybox".into(),
                image_id: String::new(),
            }],
            containers: vec![
                ContainerMeta {
                    image: "python:3".into(),
                    image_id: String::new(),
                },
                ContainerMeta {
                    image: "busybox".into(),
                    image_id: String::new(),
                },
            ],
        };
        (meta, pod, t)
    }

    fn start(pod: &mut PodStateMachine, slot: Slot, at: Stamp, id: &str) {
        pod.handle(
            slot,
            Event::Started {
                at,
                container_id: id.into(),
            },
        )
        .unwrap();
        pod.get_mut(slot).unwrap().set_ready(true);
    }

    #[test]
    fn status_json_is_shaped_like_kubernetes() {
        let (meta, mut pod, t) = sample();
        let r = build(&meta, &pod, None, t.wall);
        assert_eq!(pod_status_string(&r), "Init:0/1");
        start(&mut pod, Slot::Init(0), t, "supervisor://demo/setup/0");
        pod.handle(
            Slot::Init(0),
            Event::Exited {
                at: t.after(Duration::from_secs(1)),
                termination: Termination::classify(ExitStatus::Exited(0), false),
            },
        )
        .unwrap();
        let t1 = t.after(Duration::from_secs(2));
        start(&mut pod, Slot::App(0), t1, "supervisor://demo/web/0");
        start(&mut pod, Slot::App(1), t1, "supervisor://demo/side/0");
        let t2 = t.after(Duration::from_secs(60));
        pod.handle(
            Slot::App(1),
            Event::Exited {
                at: t2,
                termination: Termination::classify(ExitStatus::Signaled(9), false),
            },
        )
        .unwrap();
        let r = build(&meta, &pod, None, t2.wall);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["kind"], "Pod");
        assert_eq!(v["status"]["phase"], "Running");
        assert_eq!(v["status"]["podIP"], "10.88.0.5");
        assert_eq!(v["status"]["podIPs"][0]["ip"], "10.88.0.5");
        assert_eq!(v["status"]["hostIP"], "192.168.1.2");
        assert_eq!(v["status"]["startTime"], "2027-01-15T08:00:00Z");
        let side = &v["status"]["containerStatuses"][1];
        assert_eq!(side["name"], "side");
        // First restart is immediate: waiting to be recreated, last state says why.
        assert_eq!(side["state"]["waiting"]["reason"], "ContainerCreating");
        assert_eq!(side["lastState"]["terminated"]["exitCode"], 137);
        assert_eq!(side["lastState"]["terminated"]["signal"], 9);
        assert_eq!(side["lastState"]["terminated"]["reason"], "Error");
        assert_eq!(
            side["lastState"]["terminated"]["startedAt"],
            "2027-01-15T08:00:02Z"
        );
        assert_eq!(
            side["lastState"]["terminated"]["finishedAt"],
            "2027-01-15T08:01:00Z"
        );
        assert_eq!(side["ready"], false);
        let web = &v["status"]["containerStatuses"][0];
        assert_eq!(web["state"]["running"]["startedAt"], "2027-01-15T08:00:02Z");
        assert_eq!(web["lastState"], serde_json::json!({}));
        assert_eq!(web["containerID"], "supervisor://demo/web/0");
        assert_eq!(web["imageID"], "");
        assert_eq!(web["restartCount"], 0);
        let init = &v["status"]["initContainerStatuses"][0];
        assert_eq!(init["state"]["terminated"]["reason"], "Completed");
        let conditions: Vec<(String, String)> = r
            .status
            .conditions
            .iter()
            .map(|c| (c.type_.clone(), c.status.clone()))
            .collect();
        assert_eq!(
            conditions,
            [
                ("Initialized".into(), "True".into()),
                ("Ready".into(), "False".into()),
                ("ContainersReady".into(), "False".into()),
                ("PodScheduled".into(), "True".into()),
            ]
        );
        let ready = &r.status.conditions[1];
        assert_eq!(
            ready.message.as_deref(),
            Some("containers with unready status: [side]")
        );
        assert_eq!(
            v["status"]["conditions"][0]["lastProbeTime"],
            serde_json::Value::Null
        );
        // JSON round trip.
        let back: PodRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        // Table.
        let table = render_table(std::slice::from_ref(&r), t2.wall);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        );
        assert!(lines[1].starts_with("demo "), "{table}");
        assert!(lines[1].contains(" 1/2 "), "{table}");
        assert!(lines[1].contains(" ContainerCreating "), "{table}");
        assert!(lines[1].ends_with("60s"), "{table}");
        assert!(
            lines[2].contains("init:setup") && lines[2].contains("Completed"),
            "{table}"
        );
        assert!(
            lines[3].contains("web") && lines[3].contains("Running"),
            "{table}"
        );
        // Transition times stay while a condition holds.
        let later = build(&meta, &pod, Some(&r), t2.wall + Duration::from_secs(30));
        assert_eq!(later.status.conditions, r.status.conditions);
    }

    #[test]
    fn kubectl_status_strings() {
        let (meta, mut pod, t) = sample();
        start(&mut pod, Slot::Init(0), t, "i");
        pod.handle(
            Slot::Init(0),
            Event::Exited {
                at: t,
                termination: Termination::classify(ExitStatus::Exited(1), false),
            },
        )
        .unwrap();
        start(&mut pod, Slot::Init(0), t, "i2");
        pod.handle(
            Slot::Init(0),
            Event::Exited {
                at: t,
                termination: Termination::classify(ExitStatus::Exited(1), false),
            },
        )
        .unwrap();
        let r = build(&meta, &pod, None, t.wall);
        assert_eq!(pod_status_string(&r), "Init:CrashLoopBackOff");
        pod.handle(
            Slot::Init(0),
            Event::Started {
                at: t,
                container_id: "i3".into(),
            },
        )
        .unwrap();
        pod.handle(
            Slot::Init(0),
            Event::Exited {
                at: t,
                termination: Termination::classify(ExitStatus::Exited(0), false),
            },
        )
        .unwrap();
        start(&mut pod, Slot::App(0), t, "w");
        start(&mut pod, Slot::App(1), t, "s");
        let r = build(&meta, &pod, None, t.wall);
        assert_eq!(pod_status_string(&r), "Running");
        assert_eq!(r.status.conditions[1].status, "True");
        pod.handle(
            Slot::App(0),
            Event::Exited {
                at: t,
                termination: Termination::classify(ExitStatus::Signaled(9), true),
            },
        )
        .unwrap();
        start(&mut pod, Slot::App(0), t, "w2");
        pod.handle(
            Slot::App(0),
            Event::Exited {
                at: t,
                termination: Termination::classify(ExitStatus::Signaled(9), true),
            },
        )
        .unwrap();
        let r = build(&meta, &pod, None, t.wall);
        assert_eq!(pod_status_string(&r), "CrashLoopBackOff");
        let web = &r.status.container_statuses[0];
        assert_eq!(container_status_string(web, false), "CrashLoopBackOff");
        assert_eq!(
            web.last_state
                .terminated
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("OOMKilled")
        );
        let mut deleting = meta.clone();
        deleting.deleting = Some(t.wall);
        pod.stop();
        let r = build(&deleting, &pod, None, t.wall);
        assert_eq!(pod_status_string(&r), "Terminating");
    }

    #[test]
    fn store_writes_atomically_and_only_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path(), dir.path().join("logs"));
        let (meta, pod, t) = sample();
        let mut store = StatusStore::create(&layout, "demo").unwrap();
        let r = build(&meta, &pod, None, t.wall);
        assert!(store.write(&r).unwrap());
        assert!(
            !store.write(&r).unwrap(),
            "unchanged record is not rewritten"
        );
        assert_eq!(read_record(&layout.status_file("demo")).unwrap(), r);
        let leftovers: Vec<_> = fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(leftovers, ["status.json"]);
        store
            .record_event(
                "Normal",
                "SandboxChanged",
                "",
                "Pod sandbox changed, it will be killed and re-created.",
                t.wall,
            )
            .unwrap();
        store
            .record_event(
                "Normal",
                "SandboxChanged",
                "",
                "Pod sandbox changed, it will be killed and re-created.",
                t.wall + Duration::from_secs(5),
            )
            .unwrap();
        store
            .record_event(
                "Warning",
                "BackOff",
                "spec.containers{web}",
                "Back-off restarting failed container",
                t.wall,
            )
            .unwrap();
        let events = read_events(&layout.events_file("demo")).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].count, 2);
        assert_eq!(
            events[0].last_timestamp.as_deref(),
            Some("2027-01-15T08:00:05Z")
        );
        let listed = list_pods(&layout).unwrap();
        assert_eq!(listed, [r]);
        let shown = render_events(&events, t.wall + Duration::from_secs(10));
        assert!(
            shown.contains("5s (x2)") && shown.contains("spec.containers{web}"),
            "{shown}"
        );
        store.remove().unwrap();
        assert!(!layout.pod_state_dir("demo").exists());
        assert!(list_pods(&layout).unwrap().is_empty());
    }

    #[test]
    fn yaml_is_kubectl_shaped_and_quotes_ambiguous_strings() {
        let v = serde_json::json!({
            "apiVersion": "v1",
            "status": {
                "phase": "Running",
                "podIPs": [{"ip": "10.0.0.1"}],
                "startTime": "2026-11-29T04:39:30Z",
                "containerStatuses": [{"name": "web", "ready": true, "restartCount": 2,
                    "lastState": {}, "state": {"running": {"startedAt": "2026-11-29T04:39:30Z"}}}],
                "words": ["yes", "plain", "a: b", ""],
                "none": null
            }
        });
        let yaml = to_yaml(&v);
        let want = "\
apiVersion: v1
status:
  containerStatuses:
  - lastState: {}
    name: web
    ready: true
    restartCount: 2
    state:
      running:
        startedAt: \"2026-11-29T04:39:30Z\"
  none: null
  phase: Running
  podIPs:
  - ip: \"10.0.0.1\"
  startTime: \"2026-11-29T04:39:30Z\"
  words:
  - \"yes\"
  - plain
  - \"a: b\"
  - \"\"
";
        assert_eq!(yaml, want);
    }
}
