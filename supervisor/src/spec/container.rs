//! One container: [`Container`] and [`ContainerKind`], and the validator
//! that builds each from its parts (kind, command, working directory, then
//! env, resources, security, mounts, ports, probes and the stop signal,
//! each checked in its own module). Names and host ports unique across the
//! pod are checked here. Native sidecars (init containers with
//! `restartPolicy: Always`) are told apart in [`container_kind`]; the
//! lifecycle hooks and the stop signal are read in [`lifecycle`]. Nothing
//! here runs a container.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use nix::sys::signal::Signal;

use super::env::{EnvVar, RuntimeValues, expand, resolve};
use super::image::{self, ContainerImage};
use super::names::{check_label, clean_absolute};
use super::ports::{self, Port, Protocol};
use super::probes::{self, Handler, Probe};
use super::resources::{self, ContainerResources};
use super::security::{self, SecurityContext};
use super::volumes::{self, Volume, VolumeMount};
use super::{Ctx, Result};
use crate::manifest::{self, IgnoredFields};

/// What kind of container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    /// Runs to success before the next one starts.
    Init,
    /// A native sidecar (KEP-753): an init container with `restartPolicy:
    /// Always`, started in init order, the next one started once it is
    /// started, kept running for the pod's life.
    Sidecar,
    /// A regular container.
    Regular,
}

/// One container ready to spawn.
#[derive(Debug, Clone)]
pub struct Container {
    /// DNS label, unique in the pod.
    pub name: String,
    /// `image` and `imagePullPolicy`.
    pub image: ContainerImage,
    /// Init, sidecar or regular.
    pub kind: ContainerKind,
    /// `command` (empty: the image's ENTRYPOINT), before `$(VAR)`
    /// expansion; see [`Container::argv`].
    pub command: Vec<String>,
    /// `args` (empty: the image's CMD, unless `command` is given).
    pub args: Vec<String>,
    /// Environment in definition order; see [`Container::env`].
    pub env: Vec<EnvVar>,
    /// `workingDir` (absolute), if set.
    pub working_dir: Option<PathBuf>,
    /// Limits (ready for the cgroup) and requests.
    pub resources: ContainerResources,
    /// Effective security settings (pod and container merged).
    pub security: SecurityContext,
    /// Mounts in manifest order.
    pub mounts: Vec<VolumeMount>,
    /// Ports.
    pub ports: Vec<Port>,
    /// Liveness probe. The probes and hooks are boxed: most containers
    /// have none, and a `None` of the unboxed type is as large as the
    /// type (a pod of 100 containers carried 100 copies of that room).
    pub liveness_probe: Option<Box<Probe>>,
    /// Readiness probe.
    pub readiness_probe: Option<Box<Probe>>,
    /// Startup probe.
    pub startup_probe: Option<Box<Probe>>,
    /// `lifecycle.stopSignal` (default SIGTERM).
    pub stop_signal: nix::sys::signal::Signal,
    /// `lifecycle.postStart`: runs right after the start; the container
    /// is not Running until it returns, and is killed if it fails.
    pub post_start: Option<Box<Handler>>,
    /// `stdin`: the container's stdin is a pipe the supervisor holds open,
    /// written by `supervisor attach -i` (else /dev/null).
    pub stdin: bool,
    /// `stdinOnce`: that stdin is closed once the first attached client
    /// that sent input detaches, until the next instance.
    pub stdin_once: bool,
    /// `tty`: stdin, stdout and stderr are a new pty's slave, its
    /// controlling terminal; its output is logged as stdout.
    pub tty: bool,
    /// `lifecycle.preStop`: runs before the stop signal, within the grace
    /// period.
    pub pre_stop: Option<Box<Handler>>,
}

impl Container {
    /// The final environment given the run-time pod fields.
    pub fn env(&self, runtime: &RuntimeValues) -> Vec<(String, String)> {
        resolve(&self.env, runtime)
    }

    /// The process's argv from `command`/`args` and the image's
    /// `Entrypoint`/`Cmd`, as kubelet and containerd combine them: a
    /// `command` replaces both Entrypoint and Cmd (its `args`, if any,
    /// follow); `args` alone replace Cmd after the Entrypoint; neither
    /// runs Entrypoint + Cmd. `$(VAR)` is expanded in `command` and `args`
    /// only, against `env` (the container's own, [`Container::env`]).
    /// Empty: nothing to run.
    pub fn argv(
        &self,
        env: &[(String, String)],
        entrypoint: &[String],
        cmd: &[String],
    ) -> Vec<String> {
        let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let expanded =
            |list: &[String]| -> Vec<String> { list.iter().map(|a| expand(a, lookup)).collect() };
        match (self.command.is_empty(), self.args.is_empty()) {
            (false, _) => [expanded(&self.command), expanded(&self.args)].concat(),
            (true, false) => [entrypoint.to_vec(), expanded(&self.args)].concat(),
            (true, true) => [entrypoint, cmd].concat(),
        }
    }
}

/// What every container of the pod is validated against.
pub(super) struct PodParts<'a> {
    /// The pod's `securityContext` (defaults when absent).
    pub security: &'a manifest::PodSecurityContext,
    /// The pod's `fsGroup`, checked.
    pub fs_group: Option<u32>,
    /// The pod's volumes, checked.
    pub volumes: &'a [Volume],
    /// `hostNetwork`.
    pub host_network: bool,
    /// `terminationGracePeriodSeconds`: the longest `sleep` hook.
    pub grace_period_seconds: u64,
}

/// `initContainers` and `containers` of the pod spec at `p`: names unique
/// across both, host ports unique across the pod.
pub(super) fn containers(
    ctx: &mut Ctx<'_>,
    pod: &PodParts<'_>,
    init: &[manifest::Container],
    regular: &[manifest::Container],
    p: &str,
) -> Result<(Vec<Container>, Vec<Container>)> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut host_ports: BTreeMap<(u16, Protocol, Option<IpAddr>), String> = BTreeMap::new();
    let mut build_list = |ctx: &mut Ctx<'_>,
                          list: &[manifest::Container],
                          field: &str,
                          kind: ContainerKind|
     -> Result<Vec<Container>> {
        let mut out = Vec::new();
        for (i, c) in list.iter().enumerate() {
            let cp = format!("{p}.{field}[{i}]");
            let built = container(ctx, pod, c, &cp, kind)?;
            if !names.insert(built.name.clone()) {
                return Err(ctx.err(format!("{cp}.name"), Some(&built.name), "duplicate container name (names are unique across initContainers and containers)"));
            }
            for (j, port) in built.ports.iter().enumerate() {
                if let Some(hp) = port.host_port {
                    let key = (hp, port.protocol, port.host_ip);
                    if let Some(other) = host_ports.insert(key, cp.clone()) {
                        return Err(ctx.err(
                            format!("{cp}.ports[{j}].hostPort"),
                            Some(&hp.to_string()),
                            format!("already used by {other}"),
                        ));
                    }
                }
            }
            out.push(built);
        }
        Ok(out)
    };
    let init_containers = build_list(ctx, init, "initContainers", ContainerKind::Init)?;
    let containers = build_list(ctx, regular, "containers", ContainerKind::Regular)?;
    Ok((init_containers, containers))
}

/// One container at `cp`, listed as `listed` (init or regular).
fn container(
    ctx: &mut Ctx<'_>,
    pod: &PodParts<'_>,
    c: &manifest::Container,
    cp: &str,
    listed: ContainerKind,
) -> Result<Container> {
    let name = c
        .name
        .as_deref()
        .ok_or_else(|| ctx.err(format!("{cp}.name"), None, "missing"))?;
    check_label(ctx.file, &ctx.doc, &format!("{cp}.name"), name)?;
    c.ignored_fields(&format!("{cp}."), &mut ctx.ignored);
    refuse_unsupported(ctx, c, cp)?;
    let kind = container_kind(ctx, listed, c.restart_policy.as_deref(), cp)?;
    let image = image::image(ctx, c, cp)?;
    let (command, args) = command(ctx, c, cp)?;
    let working_dir = working_dir(ctx, c.working_dir.as_deref(), cp)?;
    let env = super::env::env_list(ctx, c, cp)?;
    let resources = resources::resources(ctx, c.resources.as_ref(), &format!("{cp}.resources"))?;
    let security = security::security(
        ctx,
        c.security_context.as_ref(),
        pod.security,
        pod.fs_group,
        cp,
        name,
    )?;
    let mounts = volumes::mounts(ctx, &c.volume_mounts, pod.volumes, cp)?;
    let ports = ports::ports(ctx, &c.ports, pod.host_network, cp)?;

    let probe_of = |field: &str,
                    raw: Option<&manifest::Probe>,
                    liveness_like: bool|
     -> Result<Option<Box<Probe>>> {
        let Some(raw) = raw else { return Ok(None) };
        let pp = format!("{cp}.{field}");
        if kind == ContainerKind::Init {
            return Err(ctx.err(
                pp,
                None,
                "not allowed on an init container (only on a sidecar: restartPolicy Always)",
            ));
        }
        probes::probe(ctx, raw, &pp, &ports, liveness_like).map(|p| Some(Box::new(p)))
    };
    let liveness_probe = probe_of("livenessProbe", c.liveness_probe.as_ref(), true)?;
    let readiness_probe = probe_of("readinessProbe", c.readiness_probe.as_ref(), false)?;
    let startup_probe = probe_of("startupProbe", c.startup_probe.as_ref(), true)?;
    let Lifecycle {
        stop_signal,
        post_start,
        pre_stop,
    } = lifecycle(
        ctx,
        c.lifecycle.as_ref(),
        kind,
        &ports,
        pod.grace_period_seconds,
        cp,
    )?;

    Ok(Container {
        name: name.to_owned(),
        image,
        kind,
        command,
        args,
        env,
        working_dir,
        resources,
        security,
        mounts,
        ports,
        liveness_probe,
        readiness_probe,
        startup_probe,
        stop_signal,
        post_start,
        pre_stop,
        stdin: c.stdin == Some(true),
        stdin_once: c.stdin_once == Some(true),
        tty: c.tty == Some(true),
    })
}

/// Container fields that need block volumes or per-exit rules.
fn refuse_unsupported(ctx: &Ctx<'_>, c: &manifest::Container, cp: &str) -> Result<()> {
    if c.volume_devices.is_some() {
        return Err(ctx.err(
            format!("{cp}.volumeDevices"),
            None,
            "not supported: no block volumes",
        ));
    }
    if c.restart_policy_rules.is_some() {
        return Err(ctx.err(format!("{cp}.restartPolicyRules"), None, "not supported"));
    }
    Ok(())
}

/// The container's kind from the list it is in and its own
/// `restartPolicy`, which only a sidecar may set.
fn container_kind(
    ctx: &Ctx<'_>,
    listed: ContainerKind,
    restart_policy: Option<&str>,
    cp: &str,
) -> Result<ContainerKind> {
    let Some(policy) = restart_policy else {
        return Ok(listed);
    };
    let path = format!("{cp}.restartPolicy");
    Err(match (listed, policy) {
        (ContainerKind::Init, "Always") => return Ok(ContainerKind::Sidecar),
        (ContainerKind::Init | ContainerKind::Sidecar, other) => ctx.err(
            path,
            Some(other),
            "an init container's restartPolicy can only be Always (a sidecar)",
        ),
        (ContainerKind::Regular, other) => ctx.err(
            path,
            Some(other),
            "not supported on a regular container; set spec.restartPolicy",
        ),
    })
}

/// `command` and `args`; either may be empty (the image's ENTRYPOINT and
/// CMD then count), but a given program must not be an empty string.
fn command(ctx: &Ctx<'_>, c: &manifest::Container, cp: &str) -> Result<(Vec<String>, Vec<String>)> {
    let command = c.command.clone().unwrap_or_default();
    if command.first().is_some_and(String::is_empty) {
        return Err(ctx.err(
            format!("{cp}.command[0]"),
            Some(""),
            "the program must not be empty",
        ));
    }
    Ok((command, c.args.clone().unwrap_or_default()))
}

fn working_dir(ctx: &Ctx<'_>, w: Option<&str>, cp: &str) -> Result<Option<PathBuf>> {
    match w {
        None => Ok(None),
        Some("/") => Ok(Some(PathBuf::from("/"))),
        Some(w) => clean_absolute(w)
            .map(Some)
            .map_err(|r| ctx.err(format!("{cp}.workingDir"), Some(w), r)),
    }
}

/// What `lifecycle` says: the stop signal and the hooks.
struct Lifecycle {
    stop_signal: Signal,
    post_start: Option<Box<Handler>>,
    pre_stop: Option<Box<Handler>>,
}

/// `lifecycle`: `stopSignal` (default SIGTERM), `postStart` and `preStop`
/// (see [`probes::lifecycle_handler`]). Kubernetes refuses `lifecycle` on
/// an init container that is not a sidecar (validateInitContainers).
fn lifecycle(
    ctx: &Ctx<'_>,
    lifecycle: Option<&manifest::Lifecycle>,
    kind: ContainerKind,
    ports: &[Port],
    grace_period_seconds: u64,
    cp: &str,
) -> Result<Lifecycle> {
    let Some(l) = lifecycle else {
        return Ok(Lifecycle {
            stop_signal: Signal::SIGTERM,
            post_start: None,
            pre_stop: None,
        });
    };
    let lp = format!("{cp}.lifecycle");
    if kind == ContainerKind::Init {
        return Err(ctx.err(
            lp,
            None,
            "not allowed on an init container (only on a sidecar: restartPolicy Always)",
        ));
    }
    let hook =
        |field: &str, raw: Option<&manifest::LifecycleHandler>| -> Result<Option<Box<Handler>>> {
            raw.map(|h| {
                probes::lifecycle_handler(
                    ctx,
                    h,
                    &format!("{lp}.{field}"),
                    ports,
                    grace_period_seconds,
                )
                .map(Box::new)
            })
            .transpose()
        };
    let post_start = hook("postStart", l.post_start.as_ref())?;
    let pre_stop = hook("preStop", l.pre_stop.as_ref())?;
    let stop_signal = match &l.stop_signal {
        None => Signal::SIGTERM,
        Some(s) => Signal::from_str(s).map_err(|_| {
            ctx.err(
                format!("{lp}.stopSignal"),
                Some(s),
                "not a signal name such as SIGTERM or SIGQUIT",
            )
        })?,
    };
    Ok(Lifecycle {
        stop_signal,
        post_start,
        pre_stop,
    })
}
