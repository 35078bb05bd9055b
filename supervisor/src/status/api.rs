//! The `v1` API objects the status is written as, field for field as the API
//! server writes them (camelCase, RFC 3339 UTC timestamps at second
//! precision), so `jq`/`kubectl`-minded tools read them: [`PodRecord`] (a
//! `v1 Pod` without spec, what `status.json` holds) and its parts, and
//! [`PodEvent`] (a `v1.Event`, what `events.json` holds). Plain data: how it
//! is derived, stored and shown lives in the sibling modules.

use serde::{Deserialize, Serialize};

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
