//! The `container::Command` that starts one instance of a container, built
//! from its validated spec and its image's config with kubelet's rules:
//! argv (command/args against Entrypoint/Cmd), environment (the image's,
//! then the container's), working directory, user and groups,
//! capabilities, namespaces of the sandbox, the root filesystem (the
//! image's layers under a fresh writable layer, with the pod's volumes),
//! cgroup, stdio pipes. It decides nothing about restarts and keeps no
//! state between instances.

use super::PodContext;
use crate::confinement::{self, Confinement, ConfinementError};
use crate::images::ResolvedImage;
use crate::images::user::{self, UserError, UserRequest};
use crate::spec::{Container, VolumeSource};
use crate::volumes::subpath::{self, Missing};
use container::rootfs::{BindMount, RootfsSpec};
use container::spawn::DEFAULT_PATH;
use container::{CapSet, Cgroup, CgroupMode, Command, Namespace, NamespaceSet, Session};
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
    /// kubelet's makeMounts: "failed to prepare subPath for volumeMount
    /// ... of container ..." (CreateContainerConfigError).
    #[error(
        "failed to prepare subPath for volumeMount {mount_path:?} of container {container:?}: {reason}"
    )]
    SubPath {
        container: String,
        mount_path: PathBuf,
        reason: crate::volumes::SubPathError,
    },
    /// kubelet's makeMounts: a subPathExpr that expands to nothing
    /// usable (CreateContainerConfigError).
    #[error(
        "failed to prepare subPath for volumeMount {mount_path:?} of container {container:?}: {reason}"
    )]
    SubPathExpr {
        container: String,
        mount_path: PathBuf,
        reason: crate::spec::SubPathExprError,
    },
    #[error("container {container}: {source}")]
    StageSubPath {
        container: String,
        source: crate::volumes::VolumeError,
    },
    /// Its seccomp or AppArmor profile cannot be had (CreateContainerError).
    #[error("container {container}: {source}")]
    Confinement {
        container: String,
        source: Box<ConfinementError>,
    },
    #[error("container {container}: its terminal (tty: true): {source}")]
    Terminal {
        container: String,
        source: crate::terminal::TerminalError,
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
) -> Result<(Command, Confinement), CommandError> {
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
    let caps = CapSet(security.capabilities.effective_mask());
    command.capabilities(caps);
    command.no_new_privs(!security.allow_privilege_escalation);
    // The capability gates of RuntimeDefault see the final set.
    let confinement = confinement::resolve(security, caps, ctx.confinement).map_err(|source| {
        CommandError::Confinement {
            container: name.to_string(),
            source: Box::new(source),
        }
    })?;
    confinement.apply(&mut command);
    // A session of its own: in the supervisor's process group, a root
    // container's kill(0, SIGKILL) reached the supervisor (and whatever
    // started it) across the pid namespace.
    command.session(Session::NewSession);

    let share_pid = ctx.pod.share_process_namespace;
    command.join_sandbox(ctx.sandbox, share_pid);
    let mut create = NamespaceSet::EMPTY;
    if !share_pid {
        create = create.with(Namespace::Pid);
    }
    // A private cgroup namespace on pure cgroup v2, as containerd's CRI
    // gives (none on v1 and hybrid hosts, as containerd).
    if private_cgroup_namespace(ctx) {
        create = create.with(Namespace::Cgroup);
    }
    command.create_namespaces(create);
    command.rootfs(rootfs(container, image, &working_dir, ctx)?);
    command.cgroup(cgroup);
    // stdin, stdout and stderr: `stdio::configure`.
    // Should the supervisor die without its teardown, the containers die too.
    command.parent_death_signal(Signal::SIGKILL);
    Ok((command, confinement))
}

/// Whether the container gets a cgroup namespace of its own, with its
/// cgroup2 read-only at /sys/fs/cgroup: on a pure cgroup v2 host only, as
/// containerd's CRI (`internal/cri/server/container_create_linux.go`
/// adds the cgroup namespace when `cgroups.Mode() == cgroups.Unified`).
fn private_cgroup_namespace(ctx: &PodContext<'_>) -> bool {
    ctx.cgroup_host.mode() == CgroupMode::Unified
}

/// The container's root filesystem: its image's layers under a fresh
/// writable layer (a tmpfs in its own mount namespace, charged to its
/// memory cgroup, gone with the instance, as big as the container's
/// `ephemeral-storage` limit), with the pod's volumes and files bound in
/// and the working directory made if missing. A subPath is resolved inside
/// its volume, held as a descriptor and bound through it at a staging
/// point of the pod's (kubelet's volume-subpaths), which the container
/// binds.
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
        .cgroup2(private_cgroup_namespace(ctx))
        .layers(image.layers_top_first.clone())
        .working_dir(working_dir)
        .read_only(container.security.read_only_root_filesystem)
        .writable_layer_size(container.resources.ephemeral_storage_limit_bytes);
    if let Some(shm) = ctx.volumes.shm() {
        spec = spec.shm(shm);
    }
    for file in ctx.pod_files {
        spec = spec.bind(file.clone());
    }
    ctx.volumes.clear_subpaths(name);
    for (index, mount) in container.mounts.iter().enumerate() {
        let base = ctx
            .volumes
            .path(&mount.volume)
            .ok_or_else(|| CommandError::MissingVolume {
                container: name.to_string(),
                volume: mount.volume.clone(),
                mount_path: mount.mount_path.clone(),
            })?;
        let volume = ctx.pod.volume(&mount.volume).map(|v| &v.source);
        // A subPathExpr is expanded from the container's own env (not
        // the image's), as kubelet's makeMounts is given it.
        let sub_path = match &mount.sub_path {
            Some(sub) => sub.resolve(&container.env(ctx.runtime)).map_err(|reason| {
                CommandError::SubPathExpr {
                    container: name.to_string(),
                    mount_path: mount.mount_path.clone(),
                    reason,
                }
            })?,
            None => None,
        };
        let source = match &sub_path {
            Some(sub) => {
                // kubelet creates a missing subPath in the volume, safely
                // (doSafeMakeDir); on a hostPath we create nothing.
                let missing = if matches!(volume, Some(VolumeSource::HostPath { .. })) {
                    Missing::Refuse
                } else {
                    Missing::Create
                };
                let fd = subpath::open(&mount.volume, base, sub, missing).map_err(|reason| {
                    CommandError::SubPath {
                        container: name.to_string(),
                        mount_path: mount.mount_path.clone(),
                        reason,
                    }
                })?;
                ctx.volumes
                    .stage_subpath(name, index, &fd)
                    .map_err(|source| CommandError::StageSubPath {
                        container: name.to_string(),
                        source,
                    })?
            }
            None => base.to_path_buf(),
        };
        // kubelet's makeMounts: configMap, secret, downwardAPI and projected
        // volumes are mounted read-only whatever readOnly says (mustMountRO).
        // A claim's `readOnly` makes every mount of it read-only.
        let must_read_only = matches!(
            volume,
            Some(
                VolumeSource::Files { .. }
                    | VolumeSource::Claim {
                        read_only: true,
                        ..
                    }
            )
        );
        spec = spec.bind(BindMount {
            source,
            target: mount.mount_path.clone(),
            read_only: mount.read_only || must_read_only,
        });
    }
    spec.prepare().map_err(|source| CommandError::Rootfs {
        container: name.to_string(),
        source,
    })
}
