//! The pod's [`PodRecord`] derived from its restart state machine
//! ([`restart::PodStateMachine`], the single source of truth) plus what the
//! sandbox knows ([`PodMeta`]): container states, the phase, and the four
//! conditions, which keep their `lastTransitionTime` while unchanged.
//! Pure: it neither reads the clock (the caller passes `now`) nor writes files.

use std::time::SystemTime;

use super::api::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, ObjectMeta, PodCondition, PodIp, PodRecord, PodStatus,
};
use crate::restart::{self, ContainerStateMachine, PodPhase, State, Terminated};
use crate::time::format_rfc3339;

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
}
