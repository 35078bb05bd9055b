//! The `container::Command` that starts one instance of a container, built
//! from its validated spec and its image's config with kubelet's rules:
//! argv (command/args against Entrypoint/Cmd), environment (the image's,
//! then the container's), working directory, user and groups,
//! capabilities, namespaces of the sandbox, the root filesystem (the
//! image's layers under a fresh writable layer, with the pod's volumes),
//! cgroup, stdio pipes. It decides nothing about restarts and keeps no
//! state between instances.

use super::PodContext;
use crate::images::ResolvedImage;
use crate::images::user::{self, UserError, UserRequest};
use crate::spec::{Container, VolumeSource};
use container::rootfs::{BindMount, RootfsSpec};
use container::spawn::DEFAULT_PATH;
use container::{CapSet, Cgroup, Command, Namespace, NamespaceSet, Session, Stdio};
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
    /// Neither the container nor its image says what to run.
    #[error(
        "container {container}: no command specified (no command or args, and the image has no Entrypoint or Cmd)"
    )]
    NothingToRun { container: String },
    /// The user cannot be decided.
    #[error("container {container}: {source}")]
    User {
        container: String,
        source: UserError,
    },
    #[error("container {container}: create the rootfs staging dir {path}: {source}")]
    Staging {
        container: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The environment of one instance, as containerd builds it: the image's
/// `Env`, then the container's own (with `$(VAR)` expanded against the
/// container's own only, and run-time fields such as the pod IP filled in)
/// replacing a variable of the same name in place; then what a runtime
/// adds when neither has it: PATH, and HOSTNAME (the pod's hostname, as
/// kubelet sets it). Exec probes get the same.
pub(super) fn environment(
    container: &Container,
    image: &ResolvedImage,
    ctx: &PodContext<'_>,
) -> Vec<(String, String)> {
    let mut env = image.config.env.clone();
    for (key, value) in container.env(ctx.runtime) {
        match env.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => env.push((key, value)),
        }
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.insert(0, ("PATH".to_string(), DEFAULT_PATH.to_string()));
    }
    if !env.iter().any(|(k, _)| k == "HOSTNAME") {
        env.insert(1, ("HOSTNAME".to_string(), ctx.pod.hostname.clone()));
    }
    env
}

/// The command that starts one instance of `container` from `image` in
/// the pod, with the environment from [`environment`].
pub(super) fn command(
    container: &Container,
    image: &ResolvedImage,
    ctx: &PodContext<'_>,
    cgroup: &Cgroup,
    env: &[(String, String)],
) -> Result<Command, CommandError> {
    let name = container.name.as_str();
    let config = &image.config;
    let argv = container.argv(&container.env(ctx.runtime), &config.entrypoint, &config.cmd);
    let Some(program) = argv.first().filter(|p| !p.is_empty()) else {
        return Err(CommandError::NothingToRun {
            container: name.to_string(),
        });
    };
    let security = &container.security;
    let credentials = user::resolve(
        UserRequest {
            container: name,
            run_as_user: security.run_as_user,
            run_as_group: security.run_as_group,
            run_as_non_root: security.run_as_non_root,
            image_user: &config.user,
        },
        &image.layers_top_first,
    )
    .map_err(|source| CommandError::User {
        container: name.to_string(),
        source,
    })?;
    // workingDir, else the image's WorkingDir, else /.
    let working_dir = container
        .working_dir
        .clone()
        .or_else(|| Some(PathBuf::from(&config.working_dir)).filter(|d| d.is_absolute()))
        .unwrap_or_else(|| PathBuf::from("/"));

    let mut command = Command::new(program);
    command.args(&argv[1..]);
    for (key, value) in env {
        command.env(key, value);
    }
    command.cwd(&working_dir);
    command.uid(credentials.uid);
    command.gid(credentials.gid);
    let mut groups = credentials.additional_gids;
    for g in &security.supplemental_groups {
        if !groups.contains(g) {
            groups.push(*g);
        }
    }
    command.groups(&groups);
    command.capabilities(CapSet(security.capabilities.effective_mask()));
    command.no_new_privs(!security.allow_privilege_escalation);
    // A session of its own: in the supervisor's process group, a root
    // container's kill(0, SIGKILL) reached the supervisor (and whatever
    // started it) across the pid namespace.
    command.session(Session::NewSession);

    let share_pid = ctx.pod.share_process_namespace;
    command.join_sandbox(ctx.sandbox, share_pid);
    if !share_pid {
        command.create_namespaces(NamespaceSet::of(&[Namespace::Pid]));
    }
    command.rootfs(rootfs(container, image, &working_dir, ctx)?);
    command.cgroup(cgroup);
    command.stdin(Stdio::Null);
    command.stdout(Stdio::Piped);
    command.stderr(Stdio::Piped);
    // Should the supervisor die without its teardown, the containers die too.
    command.parent_death_signal(Signal::SIGKILL);
    Ok(command)
}

/// The container's root filesystem: its image's layers under a fresh
/// writable layer (a tmpfs in its own mount namespace, charged to its
/// memory cgroup, gone with the instance), with the pod's volumes and
/// files bound in and the working directory made if missing.
fn rootfs(
    container: &Container,
    image: &ResolvedImage,
    working_dir: &Path,
    ctx: &PodContext<'_>,
) -> Result<container::rootfs::Rootfs, CommandError> {
    let name = container.name.as_str();
    let staging = ctx.state_dir.join("rootfs").join(name);
    std::fs::create_dir_all(&staging).map_err(|source| CommandError::Staging {
        container: name.to_string(),
        path: staging.clone(),
        source,
    })?;
    let mut spec = RootfsSpec::new(&staging)
        .layers(image.layers_top_first.clone())
        .working_dir(working_dir)
        .read_only(container.security.read_only_root_filesystem);
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
