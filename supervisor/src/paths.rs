//! Where a pod's files live on the host. This module owns the on-disk layout
//! and nothing else: it builds paths, it does not create or read them.
//!
//! ```text
//! <state root>/<namespace>_<pod>/status.json        PodStatus (atomic replace on change)
//! <state root>/<namespace>_<pod>/events.json        recent events, newest last
//! <state root>/<namespace>_<pod>/job.json           the Job object (status: counts, conditions), a Job's pod only
//! <state root>/<namespace>_<pod>/supervisor.lock    flock of the pod's one supervisor, its pid
//! <state root>/<namespace>_<pod>/supervisor.json    what the running supervisor made (for a reclaim)
//! <state root>/<namespace>_<pod>/exec/              what `supervisor exec` needs (`exec::record`)
//! <state root>/<namespace>_<pod>/...                volumes, /etc files, rootfs staging, pulls
//! <log root>/<namespace>_<pod>_<uid>/<container>/<N>.log      CRI log of instance N (N = restartCount)
//! <log root>/<namespace>_<pod>_<uid>/<container>/<N>.log.<k>  rotated parts of instance N
//! ```
//!
//! Every name is keyed by namespace and pod ([`PodId`]), so pods of the same
//! name in two namespaces never share a file, a cgroup or a netns. The log
//! dir is kubelet's (`BuildPodLogsDirectory` in
//! pkg/kubelet/kuberuntime/helpers.go: `<namespace>_<pod>_<uid>`, the shape
//! log collectors parse); kubelet's uid is the API server's, new for each
//! pod object, which a host without an API server does not have: ours is a
//! name-based UUID of namespace and name ([`PodId::uid`]), the same at every
//! run of the pod, so `supervisor logs` finds the log of a pod that is not
//! running and a new run replaces the old run's files instead of leaving
//! them beside. The state dir drops the uid (it adds nothing to a key that
//! is already unique, and the dir name stays readable).
//!
//! Roots: the state root defaults to `/run/supervisor` and the log root to
//! `/var/log/pods` (kubelet's place). Each can be moved with a command-line
//! flag (`--state-dir`, `--log-dir`) or the environment (`SUPERVISOR_STATE_DIR`,
//! `SUPERVISOR_LOG_DIR`); the flag wins over the environment, which wins over
//! the default. Pod and container names are validated DNS names by the time
//! they get here; [`check_name`] still refuses anything that could leave the
//! root (`/`, `..`, empty, NUL), and [`PodId`] anything with the `_` that
//! separates the parts of a key.

use std::path::{Path, PathBuf};

/// Default root of per-pod runtime state (tmpfs on systemd hosts).
pub const DEFAULT_STATE_DIR: &str = "/run/supervisor";
/// Default root of container logs, as kubelet has it.
pub const DEFAULT_LOG_DIR: &str = "/var/log/pods";
/// Environment variable that moves the state root.
pub const STATE_DIR_ENV: &str = "SUPERVISOR_STATE_DIR";
/// Environment variable that moves the log root.
pub const LOG_DIR_ENV: &str = "SUPERVISOR_LOG_DIR";
/// File name of the pod status inside the pod's state dir.
pub const STATUS_FILE: &str = "status.json";
/// File name of the pod events inside the pod's state dir.
pub const EVENTS_FILE: &str = "events.json";
/// File name of a Job's object (its status) in its pod's state dir.
pub const JOB_FILE: &str = "job.json";
/// File name of the pod's lock (held by its one supervisor) in its state dir.
pub const LOCK_FILE: &str = "supervisor.lock";
/// File name of the record of what the pod's supervisor made, in its state
/// dir (removed by the teardown; left behind by a dead supervisor).
pub const RUN_RECORD_FILE: &str = "supervisor.json";
/// The namespace of a pod whose manifest has none (kubectl's default).
pub const DEFAULT_NAMESPACE: &str = "default";

/// One pod on this host: its namespace and name, both checked to be a
/// single path component without `_`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodId {
    namespace: String,
    name: String,
}

impl PodId {
    /// The pod `name` of `namespace`, refused when either could not be one
    /// part of a key.
    pub fn new(namespace: &str, name: &str) -> Result<PodId, NameError> {
        check_key_part("namespace", namespace)?;
        check_key_part("pod", name)?;
        Ok(PodId {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Parses a state dir name, `<namespace>_<pod>`.
    pub fn from_dir_name(dir: &str) -> Option<PodId> {
        let (namespace, name) = dir.split_once('_')?;
        PodId::new(namespace, name).ok()
    }

    /// `metadata.namespace`.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<namespace>_<pod>`: the state dir, the cgroup, the netns file and
    /// the CNI container id of the pod.
    pub fn key(&self) -> String {
        format!("{}_{}", self.namespace, self.name)
    }

    /// The pod's uid: a name-based UUID (RFC 9562 version 8, the SHA-256
    /// variant of its appendix B.2) of `podvisor:<namespace>/<pod>`, so the
    /// same pod has the same uid at every run and on every host.
    pub fn uid(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("podvisor:{}/{}", self.namespace, self.name));
        let mut b = [0u8; 16];
        b.copy_from_slice(&digest[..16]);
        b[6] = (b[6] & 0x0f) | 0x80; // version 8
        b[8] = (b[8] & 0x3f) | 0x80; // variant 10
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }
}

/// `namespace/pod`, as kubectl names a pod in its messages.
impl std::fmt::Display for PodId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A name that cannot be used as one path component.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{what} name {name:?} cannot be used in a path (empty, '.', '..', or contains '/', NUL or, in a namespace or pod name, '_')"
)]
pub struct NameError {
    /// "namespace", "pod" or "container".
    pub what: &'static str,
    /// The refused name.
    pub name: String,
}

/// Refuses names that are not a single, plain path component.
pub fn check_name(what: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(NameError {
            what,
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// A namespace or pod name: a path component without `_`, which separates
/// the parts of a [`PodId`] key (DNS names never have one).
fn check_key_part(what: &'static str, name: &str) -> Result<(), NameError> {
    check_name(what, name)?;
    if name.contains('_') {
        return Err(NameError {
            what,
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// The two roots, resolved once (flag, then environment, then default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    state_root: PathBuf,
    log_root: PathBuf,
}

impl Layout {
    /// A layout with explicit roots (tests, embedding).
    pub fn new(state_root: impl Into<PathBuf>, log_root: impl Into<PathBuf>) -> Self {
        Layout {
            state_root: state_root.into(),
            log_root: log_root.into(),
        }
    }

    /// Resolves the roots from optional flag values, then the environment,
    /// then the defaults.
    pub fn resolve(state_flag: Option<&Path>, log_flag: Option<&Path>) -> Self {
        Layout {
            state_root: resolve_root(state_flag, STATE_DIR_ENV, DEFAULT_STATE_DIR),
            log_root: resolve_root(log_flag, LOG_DIR_ENV, DEFAULT_LOG_DIR),
        }
    }

    /// The root holding one directory per pod.
    pub fn state_root(&self) -> &Path {
        &self.state_root
    }

    /// The root holding one log directory per pod.
    pub fn log_root(&self) -> &Path {
        &self.log_root
    }

    /// `<state root>/<namespace>_<pod>`.
    pub fn pod_state_dir(&self, pod: &PodId) -> PathBuf {
        self.state_root.join(pod.key())
    }

    /// `<state dir>/status.json`.
    pub fn status_file(&self, pod: &PodId) -> PathBuf {
        self.pod_state_dir(pod).join(STATUS_FILE)
    }

    /// `<state dir>/events.json`.
    pub fn events_file(&self, pod: &PodId) -> PathBuf {
        self.pod_state_dir(pod).join(EVENTS_FILE)
    }

    /// `<state dir>/job.json`.
    pub fn job_file(&self, pod: &PodId) -> PathBuf {
        self.pod_state_dir(pod).join(JOB_FILE)
    }

    /// `<state dir>/supervisor.lock`.
    pub fn lock_file(&self, pod: &PodId) -> PathBuf {
        self.pod_state_dir(pod).join(LOCK_FILE)
    }

    /// `<state dir>/supervisor.json`.
    pub fn run_record_file(&self, pod: &PodId) -> PathBuf {
        self.pod_state_dir(pod).join(RUN_RECORD_FILE)
    }

    /// `<log root>/<namespace>_<pod>_<uid>`.
    pub fn pod_log_dir(&self, pod: &PodId) -> PathBuf {
        self.log_root.join(format!("{}_{}", pod.key(), pod.uid()))
    }

    /// `<log root>/<namespace>_<pod>_<uid>/<container>`.
    pub fn container_log_dir(&self, pod: &PodId, container: &str) -> PathBuf {
        self.pod_log_dir(pod).join(container)
    }

    /// `<log root>/<namespace>_<pod>_<uid>/<container>/<restart_count>.log`.
    pub fn container_log_file(&self, pod: &PodId, container: &str, restart_count: u32) -> PathBuf {
        self.container_log_dir(pod, container)
            .join(log_file_name(restart_count))
    }
}

/// `<restart_count>.log`: the file of one container instance.
pub fn log_file_name(restart_count: u32) -> String {
    format!("{restart_count}.log")
}

fn resolve_root(flag: Option<&Path>, env: &str, default: &str) -> PathBuf {
    if let Some(path) = flag {
        return path.to_path_buf();
    }
    match std::env::var_os(env) {
        Some(value) if !value.is_empty() => PathBuf::from(value),
        _ => PathBuf::from(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_places_files_like_kubelet() {
        let layout = Layout::new("/run/x", "/var/log/pods");
        let web = PodId::new("default", "web").unwrap();
        assert_eq!(
            layout.status_file(&web),
            Path::new("/run/x/default_web/status.json")
        );
        assert_eq!(
            layout.events_file(&web),
            Path::new("/run/x/default_web/events.json")
        );
        assert_eq!(
            layout.lock_file(&web),
            Path::new("/run/x/default_web/supervisor.lock")
        );
        let uid = web.uid();
        assert_eq!(
            layout.container_log_file(&web, "nginx", 3),
            Path::new(&format!("/var/log/pods/default_web_{uid}/nginx/3.log"))
        );
    }

    #[test]
    fn pods_of_one_name_in_two_namespaces_have_their_own_paths() {
        let layout = Layout::new("/run/x", "/var/log/pods");
        let a = PodId::new("a", "web").unwrap();
        let b = PodId::new("b", "web").unwrap();
        assert_ne!(layout.pod_state_dir(&a), layout.pod_state_dir(&b));
        assert_ne!(layout.pod_log_dir(&a), layout.pod_log_dir(&b));
        assert_ne!(a.uid(), b.uid());
        assert_eq!(a.to_string(), "a/web");
        assert_eq!(a.key(), "a_web");
        assert_eq!(PodId::from_dir_name("a_web"), Some(a));
        assert_eq!(PodId::from_dir_name("web"), None);
    }

    #[test]
    fn the_uid_is_a_stable_version_8_uuid() {
        let web = PodId::new("default", "web").unwrap();
        let uid = web.uid();
        assert_eq!(uid, PodId::new("default", "web").unwrap().uid());
        assert_eq!(uid.len(), 36, "{uid}");
        let parts: Vec<&str> = uid.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('8'), "version 8: {uid}");
        assert!(
            matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
            "RFC variant: {uid}"
        );
    }

    #[test]
    fn flag_wins_over_default() {
        let layout = Layout::resolve(Some(Path::new("/tmp/s")), Some(Path::new("/tmp/l")));
        assert_eq!(layout.state_root(), Path::new("/tmp/s"));
        assert_eq!(layout.log_root(), Path::new("/tmp/l"));
    }

    #[test]
    fn names_that_escape_are_refused() {
        for bad in ["", ".", "..", "a/b", "a\0"] {
            assert!(check_name("pod", bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_name("pod", "web-1"), Ok(()));
        for (namespace, pod) in [("a_b", "web"), ("a", "w_b"), ("", "web"), ("a", "..")] {
            assert!(PodId::new(namespace, pod).is_err(), "{namespace:?} {pod:?}");
        }
    }
}
