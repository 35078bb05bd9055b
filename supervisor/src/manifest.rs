//! Raw Kubernetes objects as they are written in YAML, before validation.
//!
//! This module owns the serde types (field names exactly as Kubernetes'
//! JSON, camelCase) for `Pod`, the pod template of `Deployment`,
//! `ReplicaSet`, `StatefulSet`, `DaemonSet` and `Job`, `ConfigMap`,
//! `Secret` and `Service`, and the reading of a multi-document YAML stream with
//! serde-saphyr. Every struct denies unknown fields, so a typo is an error
//! that names the field and its line. Kubernetes fields that mean nothing on
//! one host are accepted as [`Ignored`] and reported by
//! [`IgnoredFields`]; fields that would change what runs and that are not
//! supported are typed here and refused by [`crate::spec`], which also
//! applies defaults. Nothing here decides what runs.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};

use crate::spec::{DocRef, ManifestError};

pub mod limits;

/// A field Kubernetes has but that has no meaning on one host. Its value
/// is skipped; its presence is reported once as a warning.
pub type Ignored = Option<IgnoredAny>;

/// A field Kubernetes has, that would change what runs, and that is not
/// supported: its presence is an error naming it (see [`crate::spec`]).
pub type Unsupported = Option<IgnoredAny>;

/// Collects the paths of present [`Ignored`] fields: one warning line
/// lists every present field that has no meaning on one host.
pub trait IgnoredFields {
    /// Appends `prefix.field` for each ignored field that is present.
    fn ignored_fields(&self, prefix: &str, out: &mut Vec<String>);
}

/// A Rust field name as serde's `rename_all = "camelCase"` spells it.
fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Declares raw Kubernetes types as they are written in YAML, with what
/// every type here shares: `Debug, Clone, Default, Deserialize`, camelCase
/// field names and unknown fields refused (the parser's error names the
/// field, its line and the expected ones, in declaration order). The
/// fields listed in `ignored: [...]` are declared at that place as
/// [`Ignored`], and the type's [`IgnoredFields`] reports the present ones.
/// Types that look alike (`KeyRef` and `ObjectRef`, `ConfigMapVolume`
/// and `SecretVolume`, the pod and container security contexts, `Probe`
/// and `LifecycleHandler`) are distinct types in Kubernetes' API with
/// their own field names, and serde's `flatten` cannot share a field
/// group under `deny_unknown_fields`; so each is declared whole.
macro_rules! kubernetes_types {
    () => {};
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
        }
        $($rest:tt)*
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        kubernetes_types! { $($rest)* }
    };
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
            ignored: [ $( $ignored:ident ),* $(,)? ],
            $( $(#[$tmeta:meta])* pub $tfield:ident : $tty:ty, )*
        }
        $($rest:tt)*
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
            $( #[allow(missing_docs)] pub $ignored: Ignored, )*
            $( $(#[$tmeta])* pub $tfield: $tty, )*
        }

        impl IgnoredFields for $name {
            fn ignored_fields(&self, prefix: &str, out: &mut Vec<String>) {
                $(
                    if self.$ignored.is_some() {
                        out.push(format!("{prefix}{}", camel_case(stringify!($ignored))));
                    }
                )*
            }
        }

        kubernetes_types! { $($rest)* }
    };
}

/// Kubernetes' `IntOrString` (probe and port references).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntOrString {
    /// A number, e.g. `8080`.
    Int(i64),
    /// A string, e.g. a port name `http`.
    String(String),
}

impl fmt::Display for IntOrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrString::Int(n) => write!(f, "{n}"),
            IntOrString::String(s) => f.write_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IntOrString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrString, E> {
                Ok(IntOrString::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrString, E> {
                i64::try_from(v)
                    .map(IntOrString::Int)
                    .map_err(|_| E::custom("integer out of range"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrString, E> {
                Ok(IntOrString::String(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A quantity as written: a YAML string or number, kept as its text so
/// that `129e6` or `0.5` reach [`crate::quantity`] verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityText(pub String);

impl<'de> Deserialize<'de> for QuantityText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = QuantityText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity such as 100Mi or 500m")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<QuantityText, E> {
                Ok(QuantityText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<QuantityText, E> {
                Ok(QuantityText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<QuantityText, E> {
                Ok(QuantityText(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<QuantityText, E> {
                Ok(QuantityText(v.to_owned()))
            }
        }
        // Ask for a string first: serde-saphyr then hands over a plain
        // scalar verbatim (`129e6`, `0.5`), keeping Kubernetes' spelling.
        d.deserialize_str(V)
    }
}

kubernetes_types! {
    /// `metadata` of any object.
    pub struct ObjectMeta {
        /// Object name.
        pub name: Option<String>,
        /// Namespace; `default` when absent.
        pub namespace: Option<String>,
        /// Labels (usable through env `fieldRef`).
        #[serde(default)]
        pub labels: BTreeMap<String, String>,
        /// Annotations (usable through env `fieldRef`).
        #[serde(default)]
        pub annotations: BTreeMap<String, String>,
        /// Refused: a pod here needs a fixed name.
        pub generate_name: Unsupported,
        ignored: [
            uid, resource_version, generation, creation_timestamp, deletion_timestamp,
            deletion_grace_period_seconds, owner_references, finalizers, managed_fields,
            self_link,
        ],
    }
}

/// A top-level object with a spec: `kind: Pod` ([`Pod`]) or a workload
/// ([`Workload`]). The two differ only in their spec's type.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpecObject<S> {
    /// `v1`, `apps/v1` or `batch/v1`.
    pub api_version: Option<String>,
    /// `Pod`, `Deployment`, ...
    pub kind: Option<String>,
    /// The object's metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The spec.
    pub spec: Option<S>,
    /// Status written by a cluster; ignored.
    pub status: Ignored,
}

/// `kind: Pod`.
pub type Pod = SpecObject<PodSpec>;

/// A Deployment, ReplicaSet, StatefulSet, DaemonSet or Job.
pub type Workload = SpecObject<WorkloadSpec>;

kubernetes_types! {
    /// `spec.template` of a workload.
    pub struct PodTemplateSpec {
        /// Template metadata (name usually absent: the workload's is used).
        #[serde(default)]
        pub metadata: ObjectMeta,
        /// The pod spec.
        pub spec: Option<PodSpec>,
    }

    /// `spec` of a Deployment, ReplicaSet, StatefulSet, DaemonSet or Job: one
    /// struct with every kind's fields; `replicas` and a Job's
    /// `completions`, `parallelism`, `backoffLimit` and
    /// `activeDeadlineSeconds` matter (see [`crate::spec`]), the rest is
    /// controller behaviour that has no meaning for one pod on one host.
    pub struct WorkloadSpec {
        /// Desired replicas (one runs).
        pub replicas: Option<i64>,
        /// The pod template.
        pub template: Option<PodTemplateSpec>,
        /// StatefulSet: refused when non-empty (no persistent volumes).
        pub volume_claim_templates: Option<Vec<IgnoredAny>>,
        /// Job: successful pods needed (only 1 is supported).
        pub completions: Option<i64>,
        /// Job: pods at once (only 1 is supported).
        pub parallelism: Option<i64>,
        /// Job: failed pods (Never) or container restarts (OnFailure)
        /// before the Job fails; default 6.
        pub backoff_limit: Option<i64>,
        /// Job: seconds from the Job's start after which it fails; refused
        /// on the other kinds.
        pub active_deadline_seconds: Option<i64>,
        ignored: [
            selector, strategy, min_ready_seconds, revision_history_limit,
            progress_deadline_seconds, paused, service_name, pod_management_policy,
            update_strategy, persistent_volume_claim_retention_policy, ordinals,
            completion_mode, ttl_seconds_after_finished, manual_selector,
            pod_replacement_policy, managed_by,
        ],
        /// Job: refused when true (a suspended Job runs no pod).
        pub suspend: Option<bool>,
        /// Job: refused (its rules would decide the Job's end).
        pub pod_failure_policy: Unsupported,
        /// Job: refused.
        pub success_policy: Unsupported,
        /// Job: refused (Indexed Jobs' per-index limit).
        pub backoff_limit_per_index: Unsupported,
        /// Job: refused.
        pub max_failed_indexes: Unsupported,
    }

    /// `kind: Service`: its type, selector and ports matter; the cluster's
    /// virtual-IP fields mean nothing on one host.
    pub struct Service {
        /// `v1`.
        pub api_version: Option<String>,
        /// `Service`.
        pub kind: Option<String>,
        /// Metadata (name required).
        #[serde(default)]
        pub metadata: ObjectMeta,
        /// The spec.
        pub spec: Option<ServiceSpec>,
        /// Status written by a cluster; ignored.
        pub status: Ignored,
    }

    /// `spec` of a Service.
    pub struct ServiceSpec {
        /// `ClusterIP` (default), `NodePort`, `LoadBalancer`, `ExternalName`.
        #[serde(rename = "type")]
        pub type_: Option<String>,
        /// Labels a pod must carry to be selected.
        pub selector: Option<BTreeMap<String, String>>,
        /// The ports.
        #[serde(default)]
        pub ports: Vec<ServicePort>,
        ignored: [
            session_affinity, load_balancer_source_ranges, external_name,
            external_traffic_policy, health_check_node_port, publish_not_ready_addresses,
            session_affinity_config, ip_families, ip_family_policy,
            allocate_load_balancer_node_ports, load_balancer_class, internal_traffic_policy,
            traffic_distribution,
        ],
        /// Ignored (the cluster's virtual IP); Kubernetes spells these
        /// `IP`, not `Ip`.
        #[serde(rename = "clusterIP")]
        pub cluster_ip: Ignored,
        /// Ignored.
        #[serde(rename = "clusterIPs")]
        pub cluster_ips: Ignored,
        /// Ignored.
        #[serde(rename = "externalIPs")]
        pub external_ips: Ignored,
        /// Ignored.
        #[serde(rename = "loadBalancerIP")]
        pub load_balancer_ip: Ignored,
    }

    /// `spec.ports[]` of a Service.
    pub struct ServicePort {
        /// Port name (required when there are several).
        pub name: Option<String>,
        /// `TCP` (default), `UDP`, `SCTP`.
        pub protocol: Option<String>,
        /// The Service's port.
        pub port: Option<i64>,
        /// The pod's port: a number or a containerPort name (default: port).
        pub target_port: Option<IntOrString>,
        /// The port on every node (NodePort, LoadBalancer).
        pub node_port: Option<i64>,
        ignored: [
            app_protocol,
        ],
    }

    /// `kind: ConfigMap`.
    pub struct ConfigMap {
        /// `v1`.
        pub api_version: Option<String>,
        /// `ConfigMap`.
        pub kind: Option<String>,
        /// Metadata (name required).
        #[serde(default)]
        pub metadata: ObjectMeta,
        /// UTF-8 entries.
        #[serde(default)]
        pub data: BTreeMap<String, String>,
        /// Base64 entries.
        #[serde(default)]
        pub binary_data: BTreeMap<String, String>,
        ignored: [
            immutable,
        ],
    }

    /// `kind: Secret`.
    pub struct Secret {
        /// `v1`.
        pub api_version: Option<String>,
        /// `Secret`.
        pub kind: Option<String>,
        /// Metadata (name required).
        #[serde(default)]
        pub metadata: ObjectMeta,
        /// Base64 entries.
        #[serde(default)]
        pub data: BTreeMap<String, String>,
        /// Plain entries; they win over `data`.
        #[serde(default)]
        pub string_data: BTreeMap<String, String>,
        /// `Opaque`, `kubernetes.io/tls`, ...: recorded only.
        #[serde(rename = "type")]
        pub type_: Option<String>,
        ignored: [
            immutable,
        ],
    }

    /// `spec` of a pod.
    pub struct PodSpec {
        /// Regular containers.
        #[serde(default)]
        pub containers: Vec<Container>,
        /// Init containers (and sidecars: `restartPolicy: Always`).
        #[serde(default)]
        pub init_containers: Vec<Container>,
        /// Volumes.
        #[serde(default)]
        pub volumes: Vec<Volume>,
        /// `Always` (default), `OnFailure`, `Never`.
        pub restart_policy: Option<String>,
        /// Seconds between the stop signal and SIGKILL (default 30).
        pub termination_grace_period_seconds: Option<i64>,
        /// One PID namespace for all containers.
        pub share_process_namespace: Option<bool>,
        /// Use the host's network namespace.
        pub host_network: Option<bool>,
        /// Pod hostname (default: the pod name).
        pub hostname: Option<String>,
        /// Pod subdomain.
        pub subdomain: Option<String>,
        /// Set the hostname to the FQDN.
        #[serde(rename = "setHostnameAsFQDN")]
        pub set_hostname_as_fqdn: Option<bool>,
        /// Extra /etc/hosts entries.
        #[serde(default)]
        pub host_aliases: Vec<HostAlias>,
        /// Pod-level security context.
        pub security_context: Option<PodSecurityContext>,
        /// Refused when true.
        #[serde(rename = "hostPID")]
        pub host_pid: Option<bool>,
        /// Refused when true.
        #[serde(rename = "hostIPC")]
        pub host_ipc: Option<bool>,
        /// Refused when false (user namespaces).
        pub host_users: Option<bool>,
        /// Refused.
        pub ephemeral_containers: Unsupported,
        /// Refused.
        pub active_deadline_seconds: Unsupported,
        /// Refused.
        pub dns_config: Unsupported,
        /// Refused.
        pub resource_claims: Unsupported,
        /// Refused (pod-level resources).
        pub resources: Unsupported,
        /// Refused.
        pub hostname_override: Unsupported,
        /// Secrets with registry credentials.
        pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
        ignored: [
            scheduling_gates, node_selector, node_name, affinity, tolerations,
            topology_spread_constraints, scheduler_name, priority_class_name, priority,
            preemption_policy, service_account_name, service_account,
            automount_service_account_token, dns_policy,
            enable_service_links, readiness_gates, runtime_class_name, overhead, os,
        ],
    }

    /// `spec.hostAliases[]`.
    pub struct HostAlias {
        /// Address.
        pub ip: Option<String>,
        /// Names for it.
        #[serde(default)]
        pub hostnames: Vec<String>,
    }

    /// Pod-level `securityContext`.
    pub struct PodSecurityContext {
        /// UID for every container (container level wins).
        pub run_as_user: Option<i64>,
        /// GID for every container (container level wins).
        pub run_as_group: Option<i64>,
        /// Refuse to run as UID 0.
        pub run_as_non_root: Option<bool>,
        /// Extra groups of every container's first process.
        #[serde(default)]
        pub supplemental_groups: Vec<i64>,
        /// Group owning the volumes, added to the supplemental groups.
        pub fs_group: Option<i64>,
        /// Refused.
        pub sysctls: Unsupported,
        /// The seccomp profile of every container (container level wins).
        pub seccomp_profile: Option<SecurityProfile>,
        /// The AppArmor profile of every container (container level wins).
        pub app_armor_profile: Option<SecurityProfile>,
        ignored: [
            supplemental_groups_policy, fs_group_change_policy, se_linux_options,
            se_linux_change_policy, windows_options,
        ],
    }

    /// `seccompProfile` and `appArmorProfile`.
    pub struct SecurityProfile {
        /// RuntimeDefault, Localhost or Unconfined.
        #[serde(rename = "type")]
        pub kind: Option<String>,
        /// The profile when Localhost: a file under the seccomp profile
        /// root, or a loaded AppArmor profile's name.
        pub localhost_profile: Option<String>,
    }

    /// Container-level `securityContext`.
    pub struct SecurityContext {
        /// UID.
        pub run_as_user: Option<i64>,
        /// GID.
        pub run_as_group: Option<i64>,
        /// Refuse to run as UID 0.
        pub run_as_non_root: Option<bool>,
        /// `no_new_privs` when false.
        pub allow_privilege_escalation: Option<bool>,
        /// Capabilities to add and drop.
        pub capabilities: Option<Capabilities>,
        /// Root filesystem read-only.
        pub read_only_root_filesystem: Option<bool>,
        /// Refused when true.
        pub privileged: Option<bool>,
        /// `Default` only; `Unmasked` refused.
        pub proc_mount: Option<String>,
        /// The seccomp profile.
        pub seccomp_profile: Option<SecurityProfile>,
        /// The AppArmor profile.
        pub app_armor_profile: Option<SecurityProfile>,
        ignored: [
            se_linux_options, windows_options,
        ],
    }

    /// `capabilities`.
    pub struct Capabilities {
        /// Added capabilities.
        #[serde(default)]
        pub add: Vec<String>,
        /// Dropped capabilities (`ALL` allowed).
        #[serde(default)]
        pub drop: Vec<String>,
    }

    /// A container (regular or init).
    pub struct Container {
        /// DNS label, unique in the pod.
        pub name: Option<String>,
        /// The image (required).
        pub image: Option<String>,
        /// Always, IfNotPresent or Never.
        pub image_pull_policy: Option<String>,
        /// The program and its first arguments (else the image's ENTRYPOINT).
        pub command: Option<Vec<String>>,
        /// Further arguments.
        pub args: Option<Vec<String>>,
        /// Working directory.
        pub working_dir: Option<String>,
        /// Ports.
        #[serde(default)]
        pub ports: Vec<ContainerPort>,
        /// Bulk env from ConfigMaps/Secrets.
        #[serde(default)]
        pub env_from: Vec<EnvFromSource>,
        /// Env in order.
        #[serde(default)]
        pub env: Vec<EnvVar>,
        /// Limits and requests.
        pub resources: Option<ResourceRequirements>,
        /// Volume mounts.
        #[serde(default)]
        pub volume_mounts: Vec<VolumeMount>,
        /// Probes.
        pub liveness_probe: Option<Probe>,
        #[allow(missing_docs)]
        pub readiness_probe: Option<Probe>,
        #[allow(missing_docs)]
        pub startup_probe: Option<Probe>,
        /// postStart / preStop / stopSignal.
        pub lifecycle: Option<Lifecycle>,
        /// Init containers only: `Always` makes a sidecar.
        pub restart_policy: Option<String>,
        /// Security context.
        pub security_context: Option<SecurityContext>,
        /// Refused when true.
        pub stdin: Option<bool>,
        /// Refused when true.
        pub stdin_once: Option<bool>,
        /// Refused when true.
        pub tty: Option<bool>,
        /// Refused.
        pub volume_devices: Unsupported,
        /// Refused.
        pub restart_policy_rules: Unsupported,
        ignored: [
            termination_message_path, termination_message_policy,
            resize_policy,
        ],
    }

    /// `ports[]`.
    pub struct ContainerPort {
        /// Port name (IANA service name).
        pub name: Option<String>,
        /// Port in the pod.
        pub container_port: Option<i64>,
        /// Port on the host (portmap).
        pub host_port: Option<i64>,
        /// Host address for the hostPort.
        #[serde(rename = "hostIP")]
        pub host_ip: Option<String>,
        /// TCP (default), UDP, SCTP.
        pub protocol: Option<String>,
    }

    /// `env[]`.
    pub struct EnvVar {
        /// Variable name.
        pub name: Option<String>,
        /// Value with `$(VAR)` references.
        pub value: Option<String>,
        /// Value from elsewhere.
        pub value_from: Option<EnvVarSource>,
    }

    /// `env[].valueFrom`.
    pub struct EnvVarSource {
        /// A ConfigMap key.
        pub config_map_key_ref: Option<KeyRef>,
        /// A Secret key.
        pub secret_key_ref: Option<KeyRef>,
        /// A pod field.
        pub field_ref: Option<FieldRef>,
        /// A container's resource limit or request.
        pub resource_field_ref: Option<ResourceFieldRef>,
        /// Refused.
        pub file_key_ref: Unsupported,
    }

    /// `resourceFieldRef` (env and downwardAPI items).
    pub struct ResourceFieldRef {
        /// The container whose resources are read (env: default this one).
        pub container_name: Option<String>,
        /// e.g. `limits.cpu`, `requests.memory`.
        pub resource: Option<String>,
        /// The unit the value is given in (default 1).
        pub divisor: Option<QuantityText>,
    }

    /// `configMapKeyRef` / `secretKeyRef`.
    pub struct KeyRef {
        /// Object name.
        pub name: Option<String>,
        /// Key.
        pub key: Option<String>,
        /// Missing object or key is not an error.
        pub optional: Option<bool>,
    }

    /// `fieldRef`.
    pub struct FieldRef {
        /// e.g. `metadata.name`.
        pub field_path: Option<String>,
        /// `v1`.
        pub api_version: Option<String>,
    }

    /// `envFrom[]`.
    pub struct EnvFromSource {
        /// Prefix for every key.
        pub prefix: Option<String>,
        /// A ConfigMap.
        pub config_map_ref: Option<ObjectRef>,
        /// A Secret.
        pub secret_ref: Option<ObjectRef>,
    }

    /// `imagePullSecrets[]`: an object of the same namespace, by name.
    pub struct LocalObjectReference {
        /// Object name.
        pub name: Option<String>,
    }

    /// `configMapRef` / `secretRef`.
    pub struct ObjectRef {
        /// Object name.
        pub name: Option<String>,
        /// Missing object is not an error.
        pub optional: Option<bool>,
    }

    /// `resources` (Kubernetes' `ResourceRequirements`).
    pub struct ResourceRequirements {
        /// Limits by resource name.
        #[serde(default)]
        pub limits: BTreeMap<String, QuantityText>,
        /// Requests by resource name.
        #[serde(default)]
        pub requests: BTreeMap<String, QuantityText>,
        /// Refused.
        pub claims: Unsupported,
    }

    /// `volumeMounts[]`.
    pub struct VolumeMount {
        /// Volume name.
        pub name: Option<String>,
        /// Absolute path in the container.
        pub mount_path: Option<String>,
        /// Read-only mount.
        pub read_only: Option<bool>,
        /// A path inside the volume.
        pub sub_path: Option<String>,
        /// A path inside the volume with `$(VAR)` from the container's env.
        pub sub_path_expr: Option<String>,
        /// `None` only.
        pub mount_propagation: Option<String>,
        /// `Disabled` only.
        pub recursive_read_only: Option<String>,
    }

    /// `volumes[]`: exactly one source (none means emptyDir, as in Kubernetes).
    pub struct Volume {
        /// DNS label, unique in the pod.
        pub name: Option<String>,
        /// Scratch directory.
        pub empty_dir: Option<EmptyDir>,
        /// Host directory or file.
        pub host_path: Option<HostPath>,
        /// ConfigMap files.
        pub config_map: Option<ConfigMapVolume>,
        /// Secret files.
        pub secret: Option<SecretVolume>,
        /// A named local volume kept across runs.
        pub persistent_volume_claim: Option<PersistentVolumeClaimVolume>,
        /// ConfigMap, Secret and downward API files in one directory.
        pub projected: Option<ProjectedVolume>,
        /// Pod fields and container resources as files.
        #[serde(rename = "downwardAPI")]
        pub downward_api: Option<DownwardApiVolume>,
        #[allow(missing_docs)]
        pub ephemeral: Unsupported,
        #[allow(missing_docs)]
        pub image: Unsupported,
        #[allow(missing_docs)]
        pub csi: Unsupported,
        #[allow(missing_docs)]
        pub nfs: Unsupported,
        #[allow(missing_docs)]
        pub iscsi: Unsupported,
        #[allow(missing_docs)]
        pub git_repo: Unsupported,
        #[allow(missing_docs)]
        pub local: Unsupported,
    }

    /// `emptyDir`.
    pub struct EmptyDir {
        /// `""` (disk) or `Memory` (tmpfs).
        pub medium: Option<String>,
        /// Size cap.
        pub size_limit: Option<QuantityText>,
    }

    /// `hostPath`.
    pub struct HostPath {
        /// Absolute host path.
        pub path: Option<String>,
        /// Check or create: `""`, `DirectoryOrCreate`, `Directory`, ...
        #[serde(rename = "type")]
        pub type_: Option<String>,
    }

    /// `configMap` volume.
    pub struct ConfigMapVolume {
        /// ConfigMap name.
        pub name: Option<String>,
        /// Selected keys; all when empty.
        pub items: Option<Vec<KeyToPath>>,
        /// File mode (default 0644).
        pub default_mode: Option<i64>,
        /// Missing ConfigMap is not an error.
        pub optional: Option<bool>,
    }

    /// `secret` volume.
    pub struct SecretVolume {
        /// Secret name.
        pub secret_name: Option<String>,
        /// Selected keys; all when empty.
        pub items: Option<Vec<KeyToPath>>,
        /// File mode (default 0644).
        pub default_mode: Option<i64>,
        /// Missing Secret is not an error.
        pub optional: Option<bool>,
    }

    /// `persistentVolumeClaim` volume.
    pub struct PersistentVolumeClaimVolume {
        /// The claim's name.
        pub claim_name: Option<String>,
        /// Every mount of it read-only.
        pub read_only: Option<bool>,
    }

    /// `downwardAPI` volume.
    pub struct DownwardApiVolume {
        /// The files.
        pub items: Option<Vec<DownwardApiFile>>,
        /// File mode (default 0644).
        pub default_mode: Option<i64>,
    }

    /// `items[]` of a downwardAPI volume or projection.
    pub struct DownwardApiFile {
        /// Relative file path.
        pub path: Option<String>,
        /// A pod field.
        pub field_ref: Option<FieldRef>,
        /// A container's resource.
        pub resource_field_ref: Option<ResourceFieldRef>,
        /// File mode.
        pub mode: Option<i64>,
    }

    /// `projected` volume.
    pub struct ProjectedVolume {
        /// The sources, in order.
        pub sources: Option<Vec<VolumeProjection>>,
        /// File mode (default 0644).
        pub default_mode: Option<i64>,
    }

    /// `projected.sources[]`: exactly one.
    pub struct VolumeProjection {
        /// ConfigMap files.
        pub config_map: Option<ConfigMapProjection>,
        /// Secret files.
        pub secret: Option<SecretProjection>,
        /// Downward API files.
        #[serde(rename = "downwardAPI")]
        pub downward_api: Option<DownwardApiProjection>,
        /// Refused.
        pub service_account_token: Unsupported,
        /// Refused.
        pub cluster_trust_bundle: Unsupported,
        /// Refused.
        pub pod_certificate: Unsupported,
    }

    /// `projected.sources[].configMap`.
    pub struct ConfigMapProjection {
        /// ConfigMap name.
        pub name: Option<String>,
        /// Selected keys; all when empty.
        pub items: Option<Vec<KeyToPath>>,
        /// Missing ConfigMap is not an error.
        pub optional: Option<bool>,
    }

    /// `projected.sources[].secret`.
    pub struct SecretProjection {
        /// Secret name.
        pub name: Option<String>,
        /// Selected keys; all when empty.
        pub items: Option<Vec<KeyToPath>>,
        /// Missing Secret is not an error.
        pub optional: Option<bool>,
    }

    /// `projected.sources[].downwardAPI`.
    pub struct DownwardApiProjection {
        /// The files.
        pub items: Option<Vec<DownwardApiFile>>,
    }

    /// `items[]` of a configMap/secret volume.
    pub struct KeyToPath {
        /// Key in the object.
        pub key: Option<String>,
        /// Relative file path.
        pub path: Option<String>,
        /// File mode.
        pub mode: Option<i64>,
    }

    /// A probe.
    pub struct Probe {
        /// Run a command in the container.
        pub exec: Option<ExecAction>,
        /// HTTP GET.
        pub http_get: Option<HttpGetAction>,
        /// TCP connect.
        pub tcp_socket: Option<TcpSocketAction>,
        /// Refused.
        pub grpc: Unsupported,
        #[allow(missing_docs)]
        pub initial_delay_seconds: Option<i64>,
        #[allow(missing_docs)]
        pub timeout_seconds: Option<i64>,
        #[allow(missing_docs)]
        pub period_seconds: Option<i64>,
        #[allow(missing_docs)]
        pub success_threshold: Option<i64>,
        #[allow(missing_docs)]
        pub failure_threshold: Option<i64>,
        #[allow(missing_docs)]
        pub termination_grace_period_seconds: Option<i64>,
    }

    /// `exec`.
    pub struct ExecAction {
        /// argv.
        pub command: Option<Vec<String>>,
    }

    /// `httpGet`.
    pub struct HttpGetAction {
        /// Path (default `/`).
        pub path: Option<String>,
        /// Port number or name.
        pub port: Option<IntOrString>,
        /// Host (default: the pod IP).
        pub host: Option<String>,
        /// `HTTP` only.
        pub scheme: Option<String>,
        /// Extra headers.
        #[serde(default)]
        pub http_headers: Vec<HttpHeader>,
    }

    /// `httpHeaders[]`.
    pub struct HttpHeader {
        /// Header name.
        pub name: Option<String>,
        /// Header value.
        pub value: Option<String>,
    }

    /// `tcpSocket`.
    pub struct TcpSocketAction {
        /// Port number or name.
        pub port: Option<IntOrString>,
        /// Host (default: the pod IP).
        pub host: Option<String>,
    }

    /// `lifecycle`.
    pub struct Lifecycle {
        /// Runs after start.
        pub post_start: Option<LifecycleHandler>,
        /// Runs before the stop signal.
        pub pre_stop: Option<LifecycleHandler>,
        /// Stop signal name, e.g. `SIGQUIT`.
        pub stop_signal: Option<String>,
    }

    /// `postStart` / `preStop`.
    pub struct LifecycleHandler {
        /// Run a command.
        pub exec: Option<ExecAction>,
        /// HTTP GET.
        pub http_get: Option<HttpGetAction>,
        /// TCP connect (deprecated in Kubernetes; refused).
        pub tcp_socket: Unsupported,
        /// Sleep.
        pub sleep: Option<SleepAction>,
    }

    /// `sleep`.
    pub struct SleepAction {
        /// Seconds.
        pub seconds: Option<i64>,
    }
}

// ---------------------------------------------------------------------
// The YAML stream.
// ---------------------------------------------------------------------

/// One object of the stream, typed by its `kind`.
#[derive(Debug, Clone)]
pub enum Object {
    /// `kind: Pod`.
    Pod(Box<Pod>),
    /// A workload with a pod template.
    Workload(Box<Workload>),
    /// `kind: ConfigMap`.
    ConfigMap(ConfigMap),
    /// `kind: Secret`.
    Secret(Secret),
    /// `kind: Service`.
    Service(Box<Service>),
    /// Any other kind: listed as ignored.
    Other,
}

/// One non-empty document of the stream.
#[derive(Debug, Clone)]
pub struct Document {
    /// Which document, kind and name (for messages).
    pub doc: DocRef,
    /// The typed object.
    pub object: Object,
    /// The document's text, from its first line (its `---` marker, if
    /// any) to its end.
    pub text: String,
    /// How many lines of the file come before [`Self::text`]: added to
    /// the document's own line numbers to give the file's.
    pub first_line: u32,
}

impl Document {
    /// The file's line and column of `path` in this document (see
    /// [`locate`]).
    pub fn locate(&self, path: &str) -> Option<(u32, u32)> {
        locate(&self.text, path).map(|(l, c)| (l.saturating_add(self.first_line), c))
    }
}

/// Kinds whose `spec.template` is a pod template.
pub const WORKLOAD_KINDS: [&str; 5] = [
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
];

/// Only `apiVersion`, `kind` and `metadata.name`, read leniently first so
/// that errors of the strict pass can name the object.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    api_version: Option<String>,
    kind: Option<String>,
    metadata: Option<NameOnly>,
}

#[derive(Deserialize)]
struct NameOnly {
    name: Option<String>,
}

/// Parse options: Kubernetes' YAML is YAML 1.1 as go-yaml reads it, so a
/// leading-zero number such as `defaultMode: 0644` is octal; the budget is
/// [`limits::budget`].
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        legacy_octal_numbers: true,
        with_snippet: false,
        budget: limits::budget(),
    }
}

/// One document's text, a slice of the file, and how many lines of the
/// file come before it. (Padding each document with newlines, as this
/// once did, made a file of N `---` lines cost N²/2 bytes: 34 GB for
/// 1 MiB of them.)
struct Chunk<'a> {
    text: &'a str,
    first_line: usize,
}

/// Splits a YAML stream at its document markers.
///
/// YAML forbids `---` and `...` at column 0 inside any content (the spec's
/// c-forbidden rule), so a line starting with one of them followed by a
/// space, a tab or the line end always separates documents. Directive
/// lines (`%YAML`) stay with the document that follows them.
fn split_documents<'a>(text: &'a str) -> Vec<Chunk<'a>> {
    let mut chunks = Vec::new();
    let mut start = 0usize; // byte offset of the current chunk
    let mut start_line = 0usize;
    let mut offset = 0usize;
    let is_marker = |line: &str, m: &str| {
        line.strip_prefix(m)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r']))
    };
    let push = |start: usize, end: usize, first_line: usize, chunks: &mut Vec<Chunk<'a>>| {
        let body = &text[start..end];
        // Empty documents are dropped here, not kept until the end: a
        // file of markers holds no chunk at all.
        if has_content(body) {
            chunks.push(Chunk {
                text: body,
                first_line,
            });
        }
    };
    for (line_no, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches('\n');
        if is_marker(bare, "---") && offset > start {
            let before = &text[start..offset];
            // Only directives, comments and blanks so far: they belong to
            // this document.
            let only_directives = before.lines().all(|l| {
                let t = l.trim();
                t.is_empty() || t.starts_with('#') || t.starts_with('%')
            }) && before.lines().any(|l| l.starts_with('%'));
            if !only_directives {
                push(start, offset, start_line, &mut chunks);
                start = offset;
                start_line = line_no;
            }
        }
        offset += line.len();
        if is_marker(bare, "...") {
            push(start, offset, start_line, &mut chunks);
            start = offset;
            start_line = line_no + 1;
        }
    }
    if start < text.len() {
        push(start, text.len(), start_line, &mut chunks);
    }
    chunks
}

/// Whether a chunk holds anything but markers, directives and comments.
fn has_content(text: &str) -> bool {
    text.lines().any(|l| {
        let t = l.trim();
        let t = t
            .strip_prefix("---")
            .or_else(|| t.strip_prefix("..."))
            .map(str::trim)
            .unwrap_or(t);
        !(t.is_empty() || t.starts_with('#') || l.starts_with('%'))
    })
}

/// Converts a serde-saphyr error (with the path serde_path_to_error saw)
/// into a [`ManifestError::Parse`]; `first_line` is the chunk's offset in
/// the file.
fn parse_error(
    file: &str,
    doc: &DocRef,
    path: String,
    err: &serde_saphyr::Error,
    first_line: usize,
) -> ManifestError {
    use serde_saphyr::MessageFormatter;
    let inner = err.without_snippet();
    // A breach met while replaying an alias comes wrapped in the alias'
    // error (an alias bomb's always does).
    let mut root = inner;
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = root
    {
        root = error;
    }
    let message = match root {
        serde_saphyr::Error::Budget { breach, .. } => limits::describe_breach(breach),
        _ => serde_saphyr::DefaultMessageFormatter
            .format_message(inner)
            .into_owned(),
    };
    let location = inner.location().filter(|l| l.line() > 0).map(|l| {
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        (
            clamp(l.line().saturating_add(first_line as u64)),
            clamp(l.column()),
        )
    });
    ManifestError::Parse {
        file: file.to_owned(),
        doc: Box::new(doc.clone()),
        path,
        location,
        message,
    }
}

/// Deserializes one chunk as `T`, tracking the field path of an error.
fn deserialize_tracked<T>(file: &str, doc: &DocRef, chunk: &Chunk<'_>) -> Result<T, ManifestError>
where
    T: for<'de> Deserialize<'de>,
{
    let mut path = None;
    let options = yaml_options();
    let result = serde_saphyr::with_deserializer_from_str_with_options(chunk.text, options, |d| {
        serde_path_to_error::deserialize(d).map_err(|e| {
            path = Some(e.path().to_string());
            e.into_inner()
        })
    });
    result.map_err(|e| {
        let path = path.filter(|p| p != ".").unwrap_or_default();
        parse_error(file, doc, path, &e, chunk.first_line)
    })
}

/// Reads every document of a YAML stream into typed objects.
///
/// `file` names the source in errors. Empty documents are skipped;
/// documents are numbered from 1 in the order they appear. Time and
/// memory are linear in the size of `text`: each document is parsed
/// within [`limits::budget`], and a file of more than
/// [`limits::MAX_DOCUMENTS`] documents is refused before any is parsed.
pub fn parse_stream(file: &str, text: &str) -> Result<Vec<Document>, ManifestError> {
    let chunks = split_documents(text);
    if chunks.len() > limits::MAX_DOCUMENTS {
        return Err(ManifestError::TooManyDocuments {
            file: file.to_owned(),
            count: chunks.len(),
            limit: limits::MAX_DOCUMENTS,
        });
    }
    let mut docs = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.into_iter().enumerate() {
        let first_line = u32::try_from(chunk.first_line).unwrap_or(u32::MAX);
        let mut doc = DocRef {
            index: i + 1,
            kind: None,
            name: None,
        };
        let meta: TypeMeta = deserialize_tracked(file, &doc, &chunk)?;
        doc.kind = meta.kind.clone();
        doc.name = meta.metadata.and_then(|m| m.name);
        let Some(kind) = meta.kind.as_deref() else {
            return Err(ManifestError::Invalid {
                file: file.to_owned(),
                doc: Box::new(doc),
                path: "kind".into(),
                value: None,
                location: None,
                reason: "missing: every document needs a kind".into(),
            });
        };
        let expected_api = match kind {
            "Pod" | "ConfigMap" | "Secret" | "Service" => Some("v1"),
            "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => Some("apps/v1"),
            "Job" => Some("batch/v1"),
            _ => None,
        };
        if let Some(expected) = expected_api
            && meta.api_version.as_deref() != Some(expected)
        {
            return Err(ManifestError::Invalid {
                file: file.to_owned(),
                path: "apiVersion".into(),
                value: meta.api_version.clone(),
                location: locate(chunk.text, "apiVersion")
                    .map(|(l, c)| (l.saturating_add(first_line), c)),
                reason: format!("{kind} needs apiVersion {expected}"),
                doc: Box::new(doc),
            });
        }
        let object = match kind {
            "Pod" => Object::Pod(Box::new(deserialize_tracked(file, &doc, &chunk)?)),
            k if WORKLOAD_KINDS.contains(&k) => {
                Object::Workload(Box::new(deserialize_tracked(file, &doc, &chunk)?))
            }
            "ConfigMap" => Object::ConfigMap(deserialize_tracked(file, &doc, &chunk)?),
            "Secret" => Object::Secret(deserialize_tracked(file, &doc, &chunk)?),
            "Service" => Object::Service(Box::new(deserialize_tracked(file, &doc, &chunk)?)),
            _ => Object::Other,
        };
        docs.push(Document {
            doc,
            object,
            text: chunk.text.to_owned(),
            first_line,
        });
    }
    Ok(docs)
}

// ---------------------------------------------------------------------
// Locating a field path in a document, for errors found after parsing.
// ---------------------------------------------------------------------

/// A YAML node with the position of its start (1-based line and column).
enum Node {
    Leaf((u32, u32)),
    Seq((u32, u32), Vec<Node>),
    Map((u32, u32), Vec<(String, Node)>),
}

impl Node {
    fn position(&self) -> (u32, u32) {
        match self {
            Node::Leaf(p) | Node::Seq(p, _) | Node::Map(p, _) => *p,
        }
    }
}

fn position(span: &serde_saphyr::granit_parser::Span) -> (u32, u32) {
    let line = u32::try_from(span.start.line()).unwrap_or(u32::MAX);
    let col = u32::try_from(span.start.col()).unwrap_or(u32::MAX - 1) + 1;
    (line, col)
}

/// Reads one node from the event stream (the start event already taken).
fn read_node<'a>(
    first: (
        serde_saphyr::granit_parser::Event<'a>,
        serde_saphyr::granit_parser::Span,
    ),
    events: &mut impl Iterator<
        Item = (
            serde_saphyr::granit_parser::Event<'a>,
            serde_saphyr::granit_parser::Span,
        ),
    >,
) -> Option<Node> {
    use serde_saphyr::granit_parser::Event;
    let pos = position(&first.1);
    match first.0 {
        Event::SequenceStart(..) => {
            let mut items = Vec::new();
            loop {
                let ev = events.next()?;
                if matches!(ev.0, Event::SequenceEnd) {
                    return Some(Node::Seq(pos, items));
                }
                items.push(read_node(ev, events)?);
            }
        }
        Event::MappingStart(..) => {
            let mut entries = Vec::new();
            loop {
                let key = events.next()?;
                if matches!(key.0, Event::MappingEnd) {
                    return Some(Node::Map(pos, entries));
                }
                let name = match &key.0 {
                    Event::Scalar(text, ..) => Some(text.to_string()),
                    _ => None,
                };
                // Complex keys are read and dropped.
                let key_node = read_node(key, events)?;
                let value = read_node(events.next()?, events)?;
                match name {
                    Some(name) => entries.push((name, value)),
                    None => drop(key_node),
                }
            }
        }
        _ => Some(Node::Leaf(pos)),
    }
}

/// The line and column of `path` (e.g. `spec.containers[1].resources`)
/// in one document's text: the value's position when the path exists,
/// else the position of the deepest node on the way. Map keys may
/// contain dots (`nvidia.com/gpu`): a key matches when the rest of the
/// path starts with it followed by `.`, `[` or the end.
pub fn locate(text: &str, path: &str) -> Option<(u32, u32)> {
    use serde_saphyr::granit_parser::{Event, Parser};
    let mut events = Parser::new_from_str(text)
        .filter_map(Result::ok)
        .filter(|(e, _)| {
            !matches!(
                e,
                Event::StreamStart
                    | Event::StreamEnd
                    | Event::DocumentStart(..)
                    | Event::DocumentEnd
            )
        });
    let first = events.next()?;
    let root = read_node(first, &mut events)?;
    let mut node = &root;
    let mut rest = path;
    let mut best = node.position();
    while !rest.is_empty() {
        match node {
            Node::Seq(_, items) => {
                let inner = rest.strip_prefix('[')?;
                let close = inner.find(']')?;
                let index: usize = inner[..close].parse().ok()?;
                let Some(item) = items.get(index) else { break };
                node = item;
                rest = inner[close + 1..]
                    .strip_prefix('.')
                    .unwrap_or(&inner[close + 1..]);
            }
            Node::Map(_, entries) => {
                let found = entries.iter().find(|(k, _)| {
                    rest.strip_prefix(k.as_str())
                        .is_some_and(|r| r.is_empty() || r.starts_with(['.', '[']))
                });
                let Some((key, value)) = found else { break };
                rest = &rest[key.len()..];
                rest = rest.strip_prefix('.').unwrap_or(rest);
                node = value;
            }
            Node::Leaf(_) => break,
        }
        best = node.position();
    }
    Some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_line_numbers_and_skips_empty_documents() {
        let text = "# header\n---\na: 1\n---\n# only a comment\n---\nb: 2\n...\n";
        let chunks = split_documents(text);
        assert_eq!(chunks.len(), 2);
        // `a: 1` is line 3 (index 2) of the file.
        assert_eq!(chunks[0].first_line, 1);
        assert_eq!(chunks[0].text.lines().nth(1), Some("a: 1"));
        assert_eq!(chunks[1].first_line, 5);
        assert_eq!(chunks[1].text.lines().nth(1), Some("b: 2"));
    }

    #[test]
    fn split_ignores_dashes_that_are_not_markers() {
        let text = "a: |\n  ---\n  x\nb: ----\n";
        assert_eq!(split_documents(text).len(), 1);
        let text = "---a: 1\n";
        assert_eq!(split_documents(text).len(), 1);
    }

    #[test]
    fn directives_stay_with_their_document() {
        let text = "%YAML 1.2\n---\nkind: ConfigMap\napiVersion: v1\nmetadata: {name: x}\n";
        let docs = parse_stream("t.yaml", text).unwrap();
        assert_eq!(docs.len(), 1);
    }

    #[test]
    fn int_or_string_and_quantity_text() {
        let p: TcpSocketAction = serde_saphyr::from_str("port: 8080").unwrap();
        assert_eq!(p.port, Some(IntOrString::Int(8080)));
        let p: TcpSocketAction = serde_saphyr::from_str("port: http").unwrap();
        assert_eq!(p.port, Some(IntOrString::String("http".into())));
        for q in ["129e6", "0.5", "2", "100Mi", "1.5E3", "128974848"] {
            let r: ResourceRequirements =
                serde_saphyr::from_str(&format!("limits: {{memory: {q}}}")).unwrap();
            assert_eq!(r.limits["memory"], QuantityText(q.into()), "{q}");
        }
    }

    #[test]
    fn octal_modes_read_as_kubernetes_does() {
        let v: ConfigMapVolume =
            serde_saphyr::from_str_with_options("name: x\ndefaultMode: 0644\n", yaml_options())
                .unwrap();
        assert_eq!(v.default_mode, Some(0o644));
    }

    #[test]
    fn unknown_field_names_path_and_line() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    bogusField: 1\n";
        let err = parse_stream("p.yaml", text).unwrap_err();
        let s = err.to_string();
        assert!(s.starts_with("p.yaml:8:"), "{s}");
        assert!(s.contains("spec.containers[0]"), "{s}");
        assert!(s.contains("bogusField"), "{s}");
        assert!(s.contains("document 1 (Pod p)"), "{s}");
    }

    #[test]
    fn locate_finds_values_keys_and_nearest_parents() {
        let text = "\n\napiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: a\n    resources:\n      limits: {memory: 1Xi, nvidia.com/gpu: 1}\n  - name: b\n";
        assert_eq!(locate(text, "kind"), Some((4, 7)));
        assert_eq!(
            locate(text, "spec.containers[0].resources.limits.memory"),
            Some((9, 24))
        );
        assert_eq!(
            locate(text, "spec.containers[0].resources.limits.nvidia.com/gpu"),
            Some((9, 45))
        );
        assert_eq!(locate(text, "spec.containers[1].name"), Some((10, 11)));
        // Missing: the nearest existing node.
        assert_eq!(locate(text, "spec.containers[1].command"), Some((10, 5)));
        assert_eq!(locate(text, "spec.containers[7]").map(|p| p.0), Some(7));
    }

    #[test]
    fn kinds_are_typed_and_others_kept() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: v}\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}\n";
        let docs = parse_stream("x.yaml", text).unwrap();
        let Object::Service(svc) = &docs[0].object else {
            panic!("{:?}", docs[0].object)
        };
        assert_eq!(svc.spec.as_ref().unwrap().ports[0].port, Some(80));
        assert!(matches!(docs[2].object, Object::Other));
        assert_eq!(docs[2].doc.kind.as_deref(), Some("Ingress"));
        let Object::ConfigMap(cm) = &docs[1].object else {
            panic!()
        };
        assert_eq!(cm.data["k"], "v");
        assert_eq!(docs[1].doc.index, 2);
    }

    #[test]
    fn ignored_fields_are_collected() {
        let spec: PodSpec = serde_saphyr::from_str(
            "nodeSelector: {a: b}\ntolerations: []\ncontainers:\n- name: a\n  image: busybox:1.36\n  terminationMessagePath: /x\n",
        )
        .unwrap();
        let mut out = Vec::new();
        spec.ignored_fields("spec.", &mut out);
        spec.containers[0].ignored_fields("spec.containers[0].", &mut out);
        assert_eq!(
            out,
            [
                "spec.nodeSelector",
                "spec.tolerations",
                "spec.containers[0].terminationMessagePath"
            ]
        );
    }
}
