//! The validated pod the runtime consumes: raw [`crate::manifest`] objects
//! checked, defaulted and resolved (ripgrep's lowargs -> hiargs idea).
//!
//! [`load`] / [`load_str`] read a file, pick its one pod (a `Pod` or a
//! workload's template), resolve ConfigMaps and Secrets of the same file
//! into env values and volume files, parse quantities, merge security
//! contexts, and return a [`PodSpec`] plus the warnings the caller prints.
//! Every refusal is a [`ManifestError`] naming file, document, field path
//! and value. Nothing here touches the system.

mod build;
mod env;
mod error;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use env::{EnvValue, EnvVar, RuntimeField, RuntimeValues, expand, resolve};
pub use error::{DocRef, ManifestError};

/// Reads and validates the manifest at `path`.
pub fn load(path: &Path) -> Result<LoadedPod, ManifestError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        file: file.clone(),
        source,
    })?;
    load_str(&file, &text)
}

/// Validates manifest text; `file` names it in errors and warnings.
pub fn load_str(file: &str, text: &str) -> Result<LoadedPod, ManifestError> {
    build::build(file, text)
}

/// A validated pod and what the caller should tell the user.
#[derive(Debug, Clone)]
pub struct LoadedPod {
    /// The pod to run.
    pub pod: PodSpec,
    /// One line each: ignored fields, ignored kinds, replicas note, ...
    pub warnings: Vec<String>,
}

/// `restartPolicy` of the pod: one type with the restart decisions.
pub use crate::restart::RestartPolicy;

/// A pod ready to run.
#[derive(Debug, Clone)]
pub struct PodSpec {
    /// Pod name (DNS label).
    pub name: String,
    /// Namespace (DNS label; `default` when absent).
    pub namespace: String,
    /// `metadata.labels` of the pod (template).
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations` of the pod (template).
    pub annotations: BTreeMap<String, String>,
    /// The document the pod came from, e.g. `document 1 (Deployment web)`.
    pub source: DocRef,
    /// Restart policy (default Always).
    pub restart_policy: RestartPolicy,
    /// Time between the stop signal and SIGKILL (default 30 s).
    pub termination_grace_period: Duration,
    /// One PID namespace for the pod (pause is PID 1).
    pub share_process_namespace: bool,
    /// Use the host's network namespace.
    pub host_network: bool,
    /// The UTS hostname: `spec.hostname`, else the pod name.
    pub hostname: String,
    /// `spec.subdomain`.
    pub subdomain: Option<String>,
    /// Set the UTS name to the FQDN.
    pub set_hostname_as_fqdn: bool,
    /// Extra /etc/hosts entries.
    pub host_aliases: Vec<HostAlias>,
    /// Init containers in order (sidecars among them).
    pub init_containers: Vec<Container>,
    /// Regular containers.
    pub containers: Vec<Container>,
    /// Volumes by name, in manifest order.
    pub volumes: Vec<Volume>,
    /// Pod `securityContext.fsGroup`: group owning volume files.
    pub fs_group: Option<u32>,
}

impl PodSpec {
    /// A volume by name.
    pub fn volume(&self, name: &str) -> Option<&Volume> {
        self.volumes.iter().find(|v| v.name == name)
    }

    /// Every container, init ones first.
    pub fn all_containers(&self) -> impl Iterator<Item = &Container> {
        self.init_containers.iter().chain(&self.containers)
    }
}

/// An `/etc/hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAlias {
    /// Address.
    pub ip: IpAddr,
    /// Names.
    pub hostnames: Vec<String>,
}

/// What kind of container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    /// Runs to success before the next one starts.
    Init,
    /// Init container with `restartPolicy: Always`: started in init
    /// order, kept running (and restarted) beside the regular containers.
    Sidecar,
    /// A regular container.
    Regular,
}

/// One container ready to spawn.
#[derive(Debug, Clone)]
pub struct Container {
    /// DNS label, unique in the pod.
    pub name: String,
    /// `image`, recorded only.
    pub image: Option<String>,
    /// Init, sidecar or regular.
    pub kind: ContainerKind,
    /// `command` followed by `args`, before `$(VAR)` expansion; see
    /// [`Container::argv`].
    pub command: Vec<String>,
    /// Environment in definition order; see [`Container::env`].
    pub env: Vec<EnvVar>,
    /// `workingDir` (absolute), if set.
    pub working_dir: Option<PathBuf>,
    /// Limits and requests.
    pub resources: Resources,
    /// Effective security settings (pod and container merged).
    pub security: SecurityContext,
    /// Mounts in manifest order.
    pub mounts: Vec<VolumeMount>,
    /// Ports.
    pub ports: Vec<Port>,
    /// Liveness probe.
    pub liveness_probe: Option<Probe>,
    /// Readiness probe.
    pub readiness_probe: Option<Probe>,
    /// Startup probe.
    pub startup_probe: Option<Probe>,
    /// `lifecycle.postStart`.
    pub post_start: Option<Handler>,
    /// `lifecycle.preStop`.
    pub pre_stop: Option<Handler>,
    /// `lifecycle.stopSignal` (default SIGTERM).
    pub stop_signal: nix::sys::signal::Signal,
}

impl Container {
    /// The final environment given the run-time pod fields.
    pub fn env(&self, runtime: &RuntimeValues) -> Vec<(String, String)> {
        resolve(&self.env, runtime)
    }

    /// `command` + `args` with `$(VAR)` expanded against `env` (the result
    /// of [`Container::env`]), as the kubelet does.
    pub fn argv(&self, env: &[(String, String)]) -> Vec<String> {
        let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        self.command.iter().map(|a| expand(a, lookup)).collect()
    }
}

/// Resources of one container. A request without a limit only weighs
/// (cpu shares); a limit without a request sets the request to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory_limit: Option<u64>,
    /// Memory request in bytes.
    pub memory_request: Option<u64>,
    /// CPU limit in millicores.
    pub cpu_limit_millis: Option<u64>,
    /// CPU request in millicores.
    pub cpu_request_millis: Option<u64>,
}

/// Effective security settings of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityContext {
    /// UID (None: the supervisor's own, root).
    pub run_as_user: Option<u32>,
    /// GID (None: the primary group of the UID / root).
    pub run_as_group: Option<u32>,
    /// Checked here: runAsNonRoot with UID 0 or no UID is refused.
    pub run_as_non_root: bool,
    /// Pod supplementalGroups plus fsGroup.
    pub supplemental_groups: Vec<u32>,
    /// false: set no_new_privs (default true, as Kubernetes).
    pub allow_privilege_escalation: bool,
    /// Capabilities to add/drop.
    pub capabilities: Capabilities,
    /// Read-only root filesystem.
    pub read_only_root_filesystem: bool,
}

/// Capability changes, names normalised to `CAP_X` (or `ALL`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Added.
    pub add: Vec<String>,
    /// Dropped.
    pub drop: Vec<String>,
}

/// The number of a capability name (`CAP_X`), if Linux has it.
pub fn capability_number(name: &str) -> Option<u32> {
    container::CapSet::number(name).ok()
}

impl Capabilities {
    /// The resulting capability set as a bit mask (bit n = capability n):
    /// the container runtime default set adjusted as containerd's CRI
    /// plugin does (see [`container::CapSet::adjust`]). Names were checked
    /// when the manifest was read.
    pub fn effective_mask(&self) -> u64 {
        container::CapSet::adjust(container::CapSet::RUNTIME_DEFAULT, &self.add, &self.drop)
            .map_or(container::CapSet::RUNTIME_DEFAULT.0, |set| set.0)
    }
}

/// A mount of a pod volume into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// The volume's name (it exists in [`PodSpec::volumes`]).
    pub volume: String,
    /// Absolute, clean path in the container.
    pub mount_path: PathBuf,
    /// Read-only mount.
    pub read_only: bool,
    /// Relative, clean path inside the volume.
    pub sub_path: Option<PathBuf>,
}

/// A port of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// IANA service name, unique in the container.
    pub name: Option<String>,
    /// Port in the pod.
    pub container_port: u16,
    /// Port on the host (portmap; with hostNetwork it equals
    /// containerPort).
    pub host_port: Option<u16>,
    /// Host address for the host port.
    pub host_ip: Option<IpAddr>,
    /// Protocol.
    pub protocol: Protocol,
}

/// A port protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP (default).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// Lower-case name as CNI's portmap wants it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

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
    /// Lifecycle `sleep`.
    Sleep {
        /// How long.
        duration: Duration,
    },
}

/// A pod volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// DNS label, unique in the pod.
    pub name: String,
    /// What backs it.
    pub source: VolumeSource,
}

/// What backs a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// A directory in the pod's state dir (disk) or a tmpfs (Memory).
    EmptyDir {
        /// tmpfs when true.
        memory: bool,
        /// `sizeLimit` in bytes.
        size_limit: Option<u64>,
    },
    /// A host path.
    HostPath {
        /// Absolute host path.
        path: PathBuf,
        /// Check or create.
        kind: HostPathType,
    },
    /// Files from a ConfigMap or Secret, resolved from the same manifest.
    Files {
        /// Which object.
        origin: FilesOrigin,
        /// Files to write (empty for a missing optional object).
        files: Vec<VolumeFile>,
    },
}

/// Where a [`VolumeSource::Files`] volume comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilesOrigin {
    /// `configMap.name`.
    ConfigMap(String),
    /// `secret.secretName`.
    Secret(String),
}

/// One file of a configMap/secret volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeFile {
    /// Relative, clean path inside the volume.
    pub path: PathBuf,
    /// Content.
    pub data: Vec<u8>,
    /// Permission bits (default 0644).
    pub mode: u32,
}

/// `hostPath.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPathType {
    /// `""`: no check.
    Unchecked,
    /// Create the directory (0755) if missing.
    DirectoryOrCreate,
    /// Must be a directory.
    Directory,
    /// Create an empty file (0644) if missing.
    FileOrCreate,
    /// Must be a file.
    File,
    /// Must be a UNIX socket.
    Socket,
    /// Must be a character device.
    CharDevice,
    /// Must be a block device.
    BlockDevice,
}

#[cfg(test)]
mod tests;
