//! The `container::Command` that starts one instance of a container, built
//! from its validated spec: argv, environment, credentials, capabilities,
//! namespaces of the sandbox, root filesystem with the pod's volumes,
//! cgroup, stdio pipes.
//!
//! An image's root filesystem would be mounted from here: `rootfs` would
//! give its unpacked layers to `RootfsSpec` as the overlay's lower layer
//! (today the host's `/`), which `container::rootfs` mounts in the child.
//! It decides nothing about restarts and keeps no state between instances.

use super::PodContext;
use crate::spec::{Container, VolumeSource};
use container::rootfs::{BindMount, RootfsSpec};
use container::spawn::DEFAULT_PATH;
use container::{CapSet, Cgroup, Command, Namespace, NamespaceSet, Stdio};
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};

/// Why a container's process could not be described (before any spawn).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("container {container}: volume {volume} of mount {mount_path} is not prepared")]
    MissingVolume {
        container: String,
        volume: String,
        mount_path: PathBuf,
    },
    #[error("container {container}: {source}")]
    Rootfs {
        container: String,
        source: container::rootfs::RootfsError,
    },
    #[error("container {container}: command is empty")]
    EmptyCommand { container: String },
    #[error("container {container}: create the rootfs staging dir {path}: {source}")]
    Staging {
        container: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The environment of one instance: the container's own (with `$(VAR)`
/// expanded and run-time fields such as the pod IP filled in), plus what a
/// container runtime adds when the image does not: PATH, and HOSTNAME (the
/// pod's hostname, as kubelet sets it). Exec probes get the same.
pub(super) fn environment(container: &Container, ctx: &PodContext<'_>) -> Vec<(String, String)> {
    let mut env = container.env(ctx.runtime);
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.insert(0, ("PATH".to_string(), DEFAULT_PATH.to_string()));
    }
    if !env.iter().any(|(k, _)| k == "HOSTNAME") {
        env.insert(1, ("HOSTNAME".to_string(), ctx.pod.hostname.clone()));
    }
    env
}

/// The command that starts one instance of `container` in the pod, with
/// the environment from [`environment`].
pub(super) fn command(
    container: &Container,
    ctx: &PodContext<'_>,
    cgroup: &Cgroup,
    env: &[(String, String)],
) -> Result<Command, CommandError> {
    let name = container.name.as_str();
    let argv = container.argv(&container.env(ctx.runtime));
    let Some(program) = argv.first() else {
        return Err(CommandError::EmptyCommand {
            container: name.to_string(),
        });
    };

    let mut command = Command::new(program);
    command.args(&argv[1..]);
    for (key, value) in env {
        command.env(key, value);
    }
    command.cwd(container.working_dir.as_deref().unwrap_or(Path::new("/")));

    let security = &container.security;
    if let Some(uid) = security.run_as_user {
        command.uid(uid);
    }
    if let Some(gid) = security.run_as_group {
        command.gid(gid);
    }
    command.groups(&security.supplemental_groups);
    command.capabilities(CapSet(security.capabilities.effective_mask()));
    command.no_new_privs(!security.allow_privilege_escalation);

    let share_pid = ctx.pod.share_process_namespace;
    command.join_sandbox(ctx.sandbox, share_pid);
    if !share_pid {
        command.create_namespaces(NamespaceSet::of(&[Namespace::Pid]));
    }
    command.rootfs(rootfs(container, ctx)?);
    command.cgroup(cgroup);
    command.stdin(Stdio::Null);
    command.stdout(Stdio::Piped);
    command.stderr(Stdio::Piped);
    // Should the supervisor die without its teardown, the containers die too.
    command.parent_death_signal(Signal::SIGKILL);
    Ok(command)
}

/// The container's root filesystem: the host's, overlaid, with the pod's
/// volumes and files bound in.
fn rootfs(
    container: &Container,
    ctx: &PodContext<'_>,
) -> Result<container::rootfs::Rootfs, CommandError> {
    let name = container.name.as_str();
    let staging = ctx.state_dir.join("rootfs").join(name);
    std::fs::create_dir_all(&staging).map_err(|source| CommandError::Staging {
        container: name.to_string(),
        path: staging.clone(),
        source,
    })?;
    let mut spec =
        RootfsSpec::new(&staging).read_only(container.security.read_only_root_filesystem);
    if let Some(shm) = ctx.volumes.shm() {
        spec = spec.shm(shm);
    }
    for file in ctx.pod_files {
        spec = spec.bind(file.clone());
    }
    for mount in &container.mounts {
        let base = ctx
            .volumes
            .path(&mount.volume)
            .ok_or_else(|| CommandError::MissingVolume {
                container: name.to_string(),
                volume: mount.volume.clone(),
                mount_path: mount.mount_path.clone(),
            })?;
        let source = match &mount.sub_path {
            Some(sub) => {
                let path = base.join(sub);
                // kubelet creates a missing subPath directory in the volume.
                let is_host_path = matches!(
                    ctx.pod.volume(&mount.volume).map(|v| &v.source),
                    Some(VolumeSource::HostPath { .. })
                );
                if !path.exists() && !is_host_path {
                    let _ = std::fs::create_dir_all(&path);
                }
                path
            }
            None => base.to_path_buf(),
        };
        spec = spec.bind(BindMount {
            source,
            target: mount.mount_path.clone(),
            read_only: mount.read_only,
        });
    }
    spec.prepare().map_err(|source| CommandError::Rootfs {
        container: name.to_string(),
        source,
    })
}
