//! Where a pod's files live on the host. This module owns the on-disk layout
//! and nothing else: it builds paths, it does not create or read them.
//!
//! ```text
//! <state root>/<pod>/status.json            PodStatus (atomic replace on change)
//! <state root>/<pod>/events.json            recent events, newest last
//! <state root>/<pod>/...                    other per-pod runtime state
//! <log root>/<pod>/<container>/<N>.log      CRI log of instance N (N = restartCount)
//! <log root>/<pod>/<container>/<N>.log.<k>  rotated parts of instance N, k = 1, 2, ...
//! ```
//!
//! Roots: the state root defaults to `/run/supervisor` and the log root to
//! `/var/log/pods` (kubelet's place). Each can be moved with a command-line
//! flag (`--state-dir`, `--log-dir`) or the environment (`SUPERVISOR_STATE_DIR`,
//! `SUPERVISOR_LOG_DIR`); the flag wins over the environment, which wins over
//! the default. Pod and container names are validated DNS labels by the time
//! they get here; [`check_name`] still refuses anything that could leave the
//! root (`/`, `..`, empty, NUL).

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

/// A name that cannot be used as one path component.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{what} name {name:?} cannot be used in a path (empty, '.', '..', or contains '/' or NUL)")]
pub struct NameError {
    /// "pod" or "container".
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

    /// `<state root>/<pod>`.
    pub fn pod_state_dir(&self, pod: &str) -> PathBuf {
        self.state_root.join(pod)
    }

    /// `<state root>/<pod>/status.json`.
    pub fn status_file(&self, pod: &str) -> PathBuf {
        self.pod_state_dir(pod).join(STATUS_FILE)
    }

    /// `<state root>/<pod>/events.json`.
    pub fn events_file(&self, pod: &str) -> PathBuf {
        self.pod_state_dir(pod).join(EVENTS_FILE)
    }

    /// `<log root>/<pod>`.
    pub fn pod_log_dir(&self, pod: &str) -> PathBuf {
        self.log_root.join(pod)
    }

    /// `<log root>/<pod>/<container>`.
    pub fn container_log_dir(&self, pod: &str, container: &str) -> PathBuf {
        self.pod_log_dir(pod).join(container)
    }

    /// `<log root>/<pod>/<container>/<restart_count>.log`.
    pub fn container_log_file(&self, pod: &str, container: &str, restart_count: u32) -> PathBuf {
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
        assert_eq!(
            layout.status_file("web"),
            Path::new("/run/x/web/status.json")
        );
        assert_eq!(
            layout.events_file("web"),
            Path::new("/run/x/web/events.json")
        );
        assert_eq!(
            layout.container_log_file("web", "nginx", 3),
            Path::new("/var/log/pods/web/nginx/3.log")
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
    }
}
