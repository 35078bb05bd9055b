//! The pod sandbox: the pause process holding a pod's shared namespaces
//! (network, IPC, UTS, optionally pid), with loopback up and the hostname
//! set, and its network namespace optionally published at
//! `/run/netns/<name>` for `ip netns exec` and CNI plugins.
//!
//! Containers join it with [`crate::Command::join_sandbox`]. Stopping sends
//! SIGTERM, then SIGKILL after a grace period, and removes the netns file.
//! Restarting a dead pause (and re-running CNI) is the supervisor's job.
//! With a sandbox pid namespace, pause is its PID 1: when pause dies the
//! kernel kills every container process sharing that namespace.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::caps::CapSet;
use crate::cgroup::Cgroup;
use crate::error::{SandboxError, os};
use crate::namespace::{Namespace, NamespaceInfo, NamespaceSet};
use crate::pidfd::{ExitStatus, PidFd};
use crate::spawn::{Command, Credentials, Session, Stdio};
use crate::sys;

/// Where iproute2 keeps named network namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// The uid and gid pause runs as: the `USER 65535:65535` of the upstream
/// pause image (kubernetes build/pause/Dockerfile), which kubelet and
/// containerd run with no capability added.
pub const PAUSE_ID: u32 = 65535;

/// What pause runs with by default: [`PAUSE_ID`] as uid, gid and only
/// group, no capability at all (bounding set included) and no_new_privs.
/// It needs none: it only waits for signals and reaps. The namespaces it
/// holds are made before the credentials change, and the caller reads and
/// joins them as root.
pub fn pause_credentials() -> Credentials {
    Credentials {
        uid: Some(PAUSE_ID),
        gid: Some(PAUSE_ID),
        groups: Some(Vec::new()),
        caps: Some(CapSet::EMPTY),
        no_new_privs: true,
    }
}

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// A name for the sandbox (the /run/netns file name): letters, digits,
    /// '-', '_', '.'.
    pub name: String,
    /// The pause binary.
    pub pause: PathBuf,
    /// The hostname in the sandbox's UTS namespace (default: `name`).
    pub hostname: Option<String>,
    /// Share the host's network namespace instead of creating one.
    pub host_network: bool,
    /// Give the sandbox a pid namespace (pause is its PID 1) that
    /// containers may join (`shareProcessNamespace`).
    pub pid_namespace: bool,
    /// Bind-mount the network namespace at `<netns_dir>/<name>`.
    pub publish_netns: bool,
    /// The directory for `publish_netns` (default [`NETNS_RUN_DIR`]).
    pub netns_dir: PathBuf,
    /// A cgroup for the pause process.
    pub cgroup: Option<Cgroup>,
    /// SIGKILL pause when the process that started it dies (parent-death
    /// signal), so no sandbox outlives a runtime killed without its
    /// teardown.
    pub die_with_parent: bool,
    /// Who pause runs as ([`pause_credentials`] by default; `None`: the
    /// caller's credentials).
    pub credentials: Option<Credentials>,
}

impl SandboxConfig {
    /// A config with a new network namespace, no pid namespace, no
    /// published netns, no cgroup, pause's own unprivileged credentials.
    pub fn new(name: impl Into<String>, pause: impl Into<PathBuf>) -> SandboxConfig {
        SandboxConfig {
            name: name.into(),
            pause: pause.into(),
            hostname: None,
            host_network: false,
            pid_namespace: false,
            publish_netns: false,
            netns_dir: PathBuf::from(NETNS_RUN_DIR),
            cgroup: None,
            die_with_parent: false,
            credentials: Some(pause_credentials()),
        }
    }
}

/// A running sandbox. Dropping it without [`Sandbox::stop`] kills pause
/// and removes the netns file (best effort).
#[derive(Debug)]
pub struct Sandbox {
    name: String,
    pidfd: PidFd,
    namespaces: Vec<NamespaceInfo>,
    created: NamespaceSet,
    netns_file: Option<PathBuf>,
    stopped: bool,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl Sandbox {
    /// Start pause in new IPC and UTS namespaces, a new network namespace
    /// (loopback up) unless `host_network`, and a new pid namespace when
    /// `pid_namespace`. Returns once pause has exec'd.
    pub fn start(config: &SandboxConfig) -> Result<Sandbox, SandboxError> {
        if !valid_name(&config.name) {
            return Err(SandboxError::InvalidName {
                name: config.name.clone(),
            });
        }
        let mut created = NamespaceSet::of(&[Namespace::Ipc, Namespace::Uts]);
        if !config.host_network {
            created = created.with(Namespace::Net);
        }
        if config.pid_namespace {
            created = created.with(Namespace::Pid);
        }
        let mut cmd = Command::new(&config.pause);
        cmd.create_namespaces(created)
            .hostname(
                config
                    .hostname
                    .clone()
                    .unwrap_or_else(|| config.name.clone()),
            )
            .loopback_up(!config.host_network)
            .stdin(Stdio::Null)
            .stdout(Stdio::Null)
            .session(Session::NewSession);
        if let Some(cg) = &config.cgroup {
            cmd.cgroup(cg);
        }
        if config.die_with_parent {
            cmd.parent_death_signal(Signal::SIGKILL);
        }
        if let Some(credentials) = &config.credentials {
            cmd.credentials(credentials.clone());
        }
        let child = cmd.spawn().map_err(|source| SandboxError::Spawn {
            pause: config.pause.clone(),
            source,
        })?;
        let mut sandbox = Sandbox {
            name: config.name.clone(),
            pidfd: child.pidfd,
            namespaces: Vec::new(),
            created,
            netns_file: None,
            stopped: false,
        };
        // On error from here, Drop kills pause.
        for kind in created.iter() {
            sandbox
                .namespaces
                .push(NamespaceInfo::of(sandbox.pid(), kind)?);
        }
        if config.publish_netns && !config.host_network {
            let file = config.netns_dir.join(&config.name);
            publish_netns(&config.netns_dir, &file, sandbox.pid())?;
            sandbox.netns_file = Some(file);
        }
        Ok(sandbox)
    }

    /// The sandbox name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pause process's pid.
    pub fn pid(&self) -> i32 {
        self.pidfd.pid()
    }

    /// The pause process's pidfd (readable in epoll when pause exits).
    pub fn pidfd(&self) -> &PidFd {
        &self.pidfd
    }

    /// The namespaces the sandbox created, with paths and inode ids.
    pub fn namespaces(&self) -> &[NamespaceInfo] {
        &self.namespaces
    }

    /// One created namespace.
    pub fn namespace(&self, kind: Namespace) -> Option<&NamespaceInfo> {
        self.namespaces.iter().find(|n| n.kind == kind)
    }

    /// The namespaces a container joins: every one the sandbox created.
    pub fn shared_namespaces(&self) -> NamespaceSet {
        self.created
    }

    /// The path of the network namespace for CNI (`CNI_NETNS`): the
    /// /run/netns file when published, else `/proc/PID/ns/net`; `None`
    /// with host network.
    pub fn netns_path(&self) -> Option<PathBuf> {
        if !self.created.contains(Namespace::Net) {
            return None;
        }
        Some(
            self.netns_file
                .clone()
                .unwrap_or_else(|| Namespace::Net.proc_path(self.pid())),
        )
    }

    /// Whether pause is still running.
    pub fn is_alive(&self) -> bool {
        self.pidfd.is_alive()
    }

    /// SIGTERM pause, SIGKILL it after `grace`, reap it and remove the
    /// netns file. Returns how pause ended.
    pub fn stop(mut self, grace: Duration) -> Result<ExitStatus, SandboxError> {
        self.stopped = true;
        let status = self.terminate(grace)?;
        self.unpublish()?;
        Ok(status)
    }

    fn terminate(&self, grace: Duration) -> Result<ExitStatus, SandboxError> {
        if let Some(status) = self.pidfd.try_wait()? {
            return Ok(status);
        }
        // ESRCH here means it just exited; the wait below reaps it.
        let _ = self.pidfd.send_signal(Signal::SIGTERM);
        if let Some(status) = self.pidfd.wait_timeout(grace)? {
            return Ok(status);
        }
        let _ = self.pidfd.send_signal(Signal::SIGKILL);
        Ok(self.pidfd.wait()?)
    }

    fn unpublish(&mut self) -> Result<(), SandboxError> {
        if let Some(file) = self.netns_file.take() {
            unpublish_netns(&file)?;
        }
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.terminate(Duration::ZERO);
            let _ = self.unpublish();
        }
    }
}

fn cpath(path: &Path) -> Result<CString, SandboxError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| SandboxError::NetnsBind {
        path: path.to_path_buf(),
        source: os(libc::EINVAL),
    })
}

/// Like iproute2's `ip netns add`: make `dir` a shared mount point (so
/// netns files appear in every mount namespace), create `file` and bind
/// the process's network namespace onto it.
fn publish_netns(dir: &Path, file: &Path, pid: i32) -> Result<(), SandboxError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SandboxError::NetnsBind { path, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let cdir = cpath(dir)?;
    // MS_SHARED fails with EINVAL until dir is a mount point: bind it onto
    // itself first, as iproute2 does.
    if let Err(libc::EINVAL) = sys::mount(None, &cdir, None, libc::MS_SHARED | libc::MS_REC, None) {
        sys::mount(Some(&cdir), &cdir, None, libc::MS_BIND | libc::MS_REC, None)
            .map_err(|e| err(dir)(os(e)))?;
        sys::mount(None, &cdir, None, libc::MS_SHARED | libc::MS_REC, None)
            .map_err(|e| err(dir)(os(e)))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(file)
        .map_err(err(file))?;
    let source = cpath(&Namespace::Net.proc_path(pid))?;
    let target = cpath(file)?;
    if let Err(e) = sys::mount(Some(&source), &target, None, libc::MS_BIND, None) {
        let _ = std::fs::remove_file(file);
        return Err(err(file)(os(e)));
    }
    Ok(())
}

fn unpublish_netns(file: &Path) -> Result<(), SandboxError> {
    let target = cpath(file)?;
    match sys::umount2(&target, libc::MNT_DETACH) {
        Ok(()) | Err(libc::EINVAL) | Err(libc::ENOENT) => {}
        Err(e) => {
            return Err(SandboxError::NetnsUnbind {
                path: file.to_path_buf(),
                source: os(e),
            });
        }
    }
    match std::fs::remove_file(file) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SandboxError::NetnsUnbind {
            path: file.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_file_names() {
        assert!(valid_name("pod-web_1.default"));
        assert!(!valid_name(""));
        assert!(!valid_name(".."));
        assert!(!valid_name("a/b"));
        assert!(!valid_name("a b"));
    }
}
