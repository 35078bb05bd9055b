//! One image pull, run by the `supervisor-pull` binary in a process of its
//! own: the registry client (oci-client, tokio, rustls) never enters the
//! supervisor, whose event loop stays single-threaded and small; the pull
//! child is reaped like any other child and its outcome read from the
//! result file it writes atomically at the end. Its progress goes to the
//! supervisor's stderr (a line per layer in place on a terminal, a few
//! plain lines elsewhere). It dies with the supervisor (SIGTERM on parent
//! death) and is stopped by pid at teardown.

use container::{Command, ExitStatus, Stdio};
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What the pull is given, beside the reference.
#[derive(Debug, Clone, Default)]
pub struct PullSettings {
    /// `--image-dir`, as the supervisor resolved it.
    pub image_dir: PathBuf,
    /// Auth files in the order their credentials are tried: the pod's
    /// pull secrets, then the host's `--registry-auth-file`.
    pub auth_files: Vec<PathBuf>,
    /// `--registry-config-dir` (mirrors, plain-HTTP registries).
    pub registry_config_dir: Option<PathBuf>,
}

/// A running `supervisor-pull`.
#[derive(Debug)]
pub struct PullProcess {
    pub pid: i32,
    pub started: Instant,
    result: PathBuf,
}

/// How a pull ended badly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullFailure {
    /// `ErrImagePull` or `InvalidImageName`.
    pub reason: String,
    /// What happened, naming the image.
    pub message: String,
}

#[derive(serde::Deserialize)]
struct ResultFile {
    error: Option<ResultError>,
}

#[derive(serde::Deserialize)]
struct ResultError {
    reason: String,
    message: String,
}

impl PullProcess {
    /// Starts `binary` pulling `reference` with `policy` (`Always` or
    /// `IfNotPresent`); it writes its outcome to `result`.
    pub fn spawn(
        binary: &Path,
        reference: &str,
        policy: &str,
        settings: &PullSettings,
        result: PathBuf,
    ) -> Result<PullProcess, PullFailure> {
        let _ = std::fs::remove_file(&result);
        let mut command = Command::new(binary);
        command.arg("--image-dir").arg(&settings.image_dir);
        for file in &settings.auth_files {
            command.arg("--registry-auth-file").arg(file);
        }
        if let Some(dir) = &settings.registry_config_dir {
            command.arg("--registry-config-dir").arg(dir);
        }
        command
            .args(["--policy", policy, "--progress", "auto", "--result"])
            .arg(&result)
            .arg(reference)
            .envs(std::env::vars_os())
            .own_mount_namespace(false)
            .stdin(Stdio::Null)
            .stdout(Stdio::Null)
            .parent_death_signal(Signal::SIGTERM);
        match command.spawn_without_pidfd() {
            Ok(child) => Ok(PullProcess {
                pid: child.pid,
                started: Instant::now(),
                result,
            }),
            Err(error) => Err(PullFailure {
                reason: "ErrImagePull".into(),
                message: format!(
                    "pulling {reference}: cannot start {}: {}",
                    binary.display(),
                    crate::supervised::error_chain(&error)
                ),
            }),
        }
    }

    /// The outcome, once reaped with `status`.
    pub fn outcome(&self, reference: &str, status: &ExitStatus) -> Result<(), PullFailure> {
        let written = std::fs::read(&self.result)
            .ok()
            .and_then(|data| serde_json::from_slice::<ResultFile>(&data).ok());
        let _ = std::fs::remove_file(&self.result);
        match (written, *status) {
            (Some(ResultFile { error: None }), ExitStatus::Exited(0)) => Ok(()),
            (Some(ResultFile { error: Some(e) }), _) => Err(PullFailure {
                reason: e.reason,
                message: e.message,
            }),
            _ => Err(PullFailure {
                reason: "ErrImagePull".into(),
                message: format!("pulling {reference}: the pull process ended ({status})"),
            }),
        }
    }

    /// Stops it (at the pod's teardown); the caller reaps it.
    pub fn terminate(&self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), Signal::SIGTERM);
    }
}
