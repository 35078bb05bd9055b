//! Namespaces, cgroups (v1 and v2), mounts and process spawning for
//! running a Kubernetes pod on a bare Linux host.
//!
//! What it does: start a pod sandbox (the pause process holding the shared
//! network, IPC, UTS and optionally pid namespaces), manage a cgroup per
//! pod and per container with kubelet's limit conversions, and spawn each
//! container process into the sandbox's namespaces, its own mount (and pid)
//! namespace and its cgroup, with mounts, credentials, capabilities, a
//! seccomp filter, an AppArmor profile and stdio, returning a pidfd to
//! wait on. What it does not do: images, root filesystems, networking
//! beyond loopback (CNI is the supervisor's), user namespaces, or any
//! policy (restarts, probes, OOM decisions, which profile a container
//! gets).
//!
//! The flow a supervisor follows:
//!
//! ```no_run
//! use std::time::Duration;
//! use container::{
//!     CapSet, Cgroup, CgroupHost, Command, Limits, Mount, Namespace, NamespaceSet, Sandbox,
//!     SandboxConfig, Stdio,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // 1. cgroups: detect the host layout, one cgroup per pod, one per container.
//! let host = CgroupHost::detect()?;
//! let pod_cg = Cgroup::create(&host, "podvisor/pod-web")?;
//! let pause_cg = pod_cg.create_child(&host, "pause")?;
//! let app_cg = pod_cg.create_child(&host, "app")?;
//! app_cg.apply(&Limits {
//!     memory_limit_bytes: Some(128 << 20),
//!     cpu_limit_millis: Some(500),
//!     cpu_request_millis: Some(250),
//!     pids_limit: Some(256),
//! })?;
//!
//! // 2. The sandbox: pause in new net/ipc/uts namespaces, lo up, published netns.
//! let mut config = SandboxConfig::new("web", "/usr/libexec/podvisor/pause");
//! config.publish_netns = true;
//! config.cgroup = Some(pause_cg.clone());
//! let sandbox = Sandbox::start(&config)?;
//! // CNI ADD would run here with sandbox.netns_path().
//!
//! // 3. A container: joins the sandbox, gets its own mount and pid namespaces.
//! let oom_before = app_cg.oom_kills()?;
//! let mut cmd = Command::new("/bin/busybox");
//! cmd.args(["sh", "-c", "echo hello; sleep 3600"])
//!     .env("PATH", "/usr/bin:/bin")
//!     .cwd("/")
//!     .join_sandbox(&sandbox, false)
//!     .create_namespaces(NamespaceSet::of(&[Namespace::Pid]))
//!     .mount(Mount::proc("/proc"))
//!     .mount(Mount::tmpfs("/tmp", Some(64 << 20)))
//!     .uid(1000)
//!     .gid(1000)
//!     .capabilities(CapSet::RUNTIME_DEFAULT)
//!     .no_new_privs(true)
//!     .cgroup(&app_cg)
//!     .stdout(Stdio::Piped)
//!     .stderr(Stdio::Piped);
//! let child = cmd.spawn()?; // a typed SpawnError names the failed step + errno + path
//!
//! // 4. Wait: put child.pidfd in epoll (it is AsFd); when readable, reap it.
//! let status = child.pidfd.wait()?;
//! let oom_killed = status.signal() == Some(libc::SIGKILL) && app_cg.oom_kills()? > oom_before;
//! println!("exit {} oom_killed={oom_killed}", status.as_code());
//!
//! // 5. Teardown: kill what is left, remove cgroups, stop the sandbox.
//! app_cg.kill_all(Duration::from_secs(5))?;
//! sandbox.stop(Duration::from_secs(10))?;
//! pod_cg.kill_all(Duration::from_secs(5))?;
//! pod_cg.remove(Duration::from_secs(5))?; // removes app/ and pause/ too
//! # Ok(())
//! # }
//! ```
//!
//! All unsafe code lives in the `sys` module.

#![deny(missing_docs)]

pub mod apparmor;
pub mod caps;
pub mod cgroup;
pub mod error;
pub mod limits;
pub mod mount;
pub mod namespace;
pub mod pidfd;
pub mod rootfs;
pub mod sandbox;
pub mod seccomp;
pub mod signal;
pub mod spawn;
mod sys;

pub use caps::CapSet;
pub use cgroup::{Cgroup, CgroupHost, CgroupMode, Controller, OomCounter};
pub use error::{
    CapabilityError, CgroupError, NamespaceError, PidFdError, SandboxError, SkippedStep,
    SpawnError, SpawnStep,
};
pub use limits::Limits;
pub use mount::{Mount, MountKind};
pub use namespace::{Namespace, NamespaceInfo, NamespaceSet};
pub use pidfd::{ExitStatus, PidFd};
pub use rootfs::{BindMount, Rootfs, RootfsError, RootfsSpec};
pub use sandbox::{Sandbox, SandboxConfig};
pub use spawn::{
    Child, ChildPid, Command, Credentials, Parked, ProgramLookup, Session, Stdio, Terminal,
};
