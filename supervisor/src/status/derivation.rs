//! The pod's [`PodRecord`] derived from its restart state machine
//! ([`restart::PodStateMachine`], the single source of truth) plus what the
//! sandbox knows ([`PodMeta`]): container states, the phase, and the four
//! conditions, which keep their `lastTransitionTime` while unchanged.
//! Pure: it neither reads the clock (the caller passes `now`) nor writes files.
//!
//! A pod that ended without finishing by itself says so in `status.reason`:
//! [`STOPPED`] (its supervisor stopped it on a signal, [`PodEnd`]) or
//! [`SUPERVISOR_GONE`] (its supervisor died: [`supervisor_gone`] rewrites
//! the last record written). Either has a terminal phase, as kubelet gives
//! a deleted pod (`getPhase` with `podIsTerminal`, pkg/kubelet/kubelet_pods.go:
//! Succeeded when every container exited 0, else Failed), and no container
//! left Running.

use std::time::SystemTime;

use super::api::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, ObjectMeta, PodCondition, PodIp, PodRecord, PodStatus,
};
use crate::restart::{self, ContainerStateMachine, State, Terminated};
use crate::time::format_rfc3339;

/// Per-container facts that are not lifecycle: the image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerMeta {
    /// `image` as written in the spec.
    pub image: String,
    /// Resolved image id, empty when unknown.
    pub image_id: String,
}

/// `status.reason` of a pod its supervisor stopped on SIGTERM or SIGINT.
pub const STOPPED: &str = "Stopped";
/// `status.reason` of a pod whose supervisor died without stopping it.
pub const SUPERVISOR_GONE: &str = "SupervisorGone";
/// The reason kubelet gives a container it cannot find any more
/// (`convertToAPIContainerStatuses`, pkg/kubelet/kubelet_pods.go), with
/// its exit code 137.
pub const CONTAINER_STATUS_UNKNOWN: &str = "ContainerStatusUnknown";

/// How a pod that did not finish by itself ended (None while it runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEnd {
    /// `status.reason`: [`STOPPED`].
    pub reason: String,
    /// `status.message`.
    pub message: String,
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
    /// Set by the teardown of a pod stopped on a signal.
    pub ended: Option<PodEnd>,
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
            Some(c.started()),
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
    let mut init_statuses: Vec<ContainerStatus> = pod
        .init_containers()
        .iter()
        .enumerate()
        .map(|(i, c)| container_status(c, meta.init_containers.get(i)))
        .collect();
    let mut statuses: Vec<ContainerStatus> = pod
        .containers()
        .iter()
        .enumerate()
        .map(|(i, c)| container_status(c, meta.containers.get(i)))
        .collect();
    if meta.ended.is_some() {
        // The teardown killed what was left: nothing of a stopped pod runs.
        let message = "The container was still running when the pod was stopped: killed";
        for c in init_statuses.iter_mut().chain(&mut statuses) {
            if c.state.running.is_some() {
                terminate_unknown(c, message, &format_rfc3339(now));
            }
        }
    }
    let previous = previous.map(|p| &p.status);
    let phase = match &meta.ended {
        Some(_) => terminal_phase(&statuses),
        None => phase.as_str().to_owned(),
    };
    let completed = matches!(phase.as_str(), "Succeeded" | "Failed");
    let list = |names: Vec<&str>| format!("[{}]", names.join(" "));
    // A sidecar is complete once started (kubelet's Initialized), and its
    // readiness counts toward the pod's, as kubelet's status manager has it
    // for restartable init containers (pkg/kubelet/status/generate.go).
    let incomplete: Vec<&str> = pod
        .init_containers()
        .iter()
        .enumerate()
        .filter(|(i, _)| !pod.init_complete(*i))
        .map(|(_, c)| c.name())
        .collect();
    let unready: Vec<&str> = pod
        .sidecars()
        .filter_map(|slot| pod.get(slot))
        .chain(pod.containers())
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
            phase,
            conditions,
            reason: meta.ended.as_ref().map(|e| e.reason.clone()),
            message: meta.ended.as_ref().map(|e| e.message.clone()),
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

/// A container whose end nobody saw, as kubelet reports one it cannot
/// find: terminated, exit code 137, [`CONTAINER_STATUS_UNKNOWN`].
fn terminate_unknown(c: &mut ContainerStatus, message: &str, stamp: &str) {
    let started_at = c.state.running.as_ref().and_then(|r| r.started_at.clone());
    c.state = ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: 137,
            signal: None,
            reason: Some(CONTAINER_STATUS_UNKNOWN.to_owned()),
            message: Some(message.to_owned()),
            started_at,
            finished_at: Some(stamp.to_owned()),
            container_id: c.container_id.clone(),
        }),
        ..ContainerState::default()
    };
    c.ready = false;
    c.started = Some(false);
}

/// kubelet's phase of a pod that is terminal: Succeeded when every
/// container exited 0, else Failed.
fn terminal_phase(statuses: &[ContainerStatus]) -> String {
    let all_succeeded = !statuses.is_empty()
        && statuses.iter().all(|c| {
            c.state
                .terminated
                .as_ref()
                .is_some_and(|t| t.exit_code == 0)
        });
    if all_succeeded { "Succeeded" } else { "Failed" }.to_owned()
}

/// Whether `record` is the last one its pod will have: a terminal phase
/// (finished, stopped, or its supervisor gone), so nothing of it runs.
pub fn is_final(record: &PodRecord) -> bool {
    matches!(record.status.phase.as_str(), "Succeeded" | "Failed")
}

/// The record of a pod whose supervisor (`pid`, when known) died without
/// stopping it, from the last one it wrote: what ran is terminated as
/// kubelet reports a container it cannot find (exit code 137,
/// ContainerStatusUnknown), nothing is ready, the phase is terminal, and
/// `status.reason` is [`SUPERVISOR_GONE`] with a message naming the pid.
pub fn supervisor_gone(last: &PodRecord, pid: Option<i32>, now: SystemTime) -> PodRecord {
    let mut record = last.clone();
    let who = pid.map_or_else(
        || "its supervisor".to_owned(),
        |p| format!("its supervisor (pid {p})"),
    );
    let stamp = format_rfc3339(now);
    let s = &mut record.status;
    let message =
        format!("The container could not be located when the pod was terminated: {who} is gone");
    for c in s
        .init_container_statuses
        .iter_mut()
        .chain(&mut s.container_statuses)
    {
        if c.state.terminated.is_none() {
            terminate_unknown(c, &message, &stamp);
        }
    }
    s.phase = terminal_phase(&s.container_statuses);
    for condition in &mut s.conditions {
        if matches!(condition.type_.as_str(), "Ready" | "ContainersReady")
            && condition.status == "True"
        {
            condition.status = "False".to_owned();
            condition.last_transition_time = Some(stamp.clone());
            condition.reason = Some(SUPERVISOR_GONE.to_owned());
            condition.message = None;
        }
    }
    s.reason = Some(SUPERVISOR_GONE.to_owned());
    s.message = Some(format!(
        "{who} died without stopping the pod; what it left was cleaned up at {stamp}"
    ));
    record
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::status::fixtures::crashed_sidecar;

    #[test]
    fn status_json_is_shaped_like_kubernetes() {
        let (meta, pod, t) = crashed_sidecar();
        let r = build(&meta, &pod, None, t.wall);
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
        // Transition times stay while a condition holds.
        let later = build(&meta, &pod, Some(&r), t.wall + Duration::from_secs(30));
        assert_eq!(later.status.conditions, r.status.conditions);
    }

    #[test]
    fn a_pod_whose_supervisor_is_gone_runs_nothing_and_says_why() {
        let (meta, pod, t) = crashed_sidecar();
        let r = build(&meta, &pod, None, t.wall);
        assert!(!is_final(&r));
        let gone = supervisor_gone(&r, Some(4242), t.wall + Duration::from_secs(5));
        assert!(is_final(&gone));
        assert_eq!(gone.status.phase, "Failed");
        assert_eq!(gone.status.reason.as_deref(), Some(SUPERVISOR_GONE));
        assert!(
            gone.status.message.as_deref().unwrap().contains("pid 4242"),
            "{:?}",
            gone.status.message
        );
        let web = &gone.status.container_statuses[0];
        let ended = web.state.terminated.as_ref().expect("terminated");
        assert_eq!(ended.exit_code, 137);
        assert_eq!(ended.reason.as_deref(), Some(CONTAINER_STATUS_UNKNOWN));
        assert_eq!(ended.started_at.as_deref(), Some("2027-01-15T08:00:02Z"));
        assert!(!web.ready);
        // The init container that had completed keeps its state.
        assert_eq!(
            gone.status.init_container_statuses[0].state,
            r.status.init_container_statuses[0].state
        );
        assert!(
            gone.status
                .container_statuses
                .iter()
                .all(|c| c.state.running.is_none() && c.state.waiting.is_none())
        );
    }

    #[test]
    fn a_stopped_pod_has_a_terminal_phase_and_its_reason() {
        let (mut meta, mut pod, t) = crashed_sidecar();
        pod.stop();
        meta.deleting = Some(t.wall);
        meta.ended = Some(PodEnd {
            reason: STOPPED.to_owned(),
            message: "stopped on SIGTERM".to_owned(),
        });
        let r = build(&meta, &pod, None, t.wall);
        assert!(is_final(&r));
        assert_eq!(r.status.reason.as_deref(), Some(STOPPED));
        assert_eq!(r.status.phase, "Failed");
    }
}
