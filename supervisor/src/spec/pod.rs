//! The pod as a whole: [`PodSpec`] and its validator. It refuses the pod
//! fields a single host cannot honour, parses the restart policy, grace
//! period, hostname and host aliases, reads the pod-level security context,
//! then validates the volumes ([`super::volumes`]) before the containers
//! ([`super::container`]) that mount them. Per-container parts are not
//! here.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use super::container::{self, Container};
use super::image::{self, PullSecret};
use super::names::check_label;
use super::security::id;
use super::volumes::{self, Volume};
use super::{Ctx, DocRef, JobSpec, RestartPolicy, Result, ServicePort};
use crate::manifest::{self, IgnoredFields};

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
    /// `imagePullSecrets` found in the file, in order.
    pub image_pull_secrets: Vec<PullSecret>,
    /// Init containers in order (sidecars among them).
    pub init_containers: Vec<Container>,
    /// Regular containers.
    pub containers: Vec<Container>,
    /// Volumes by name, in manifest order.
    pub volumes: Vec<Volume>,
    /// Pod `securityContext.fsGroup`: group owning volume files.
    pub fs_group: Option<u32>,
    /// The Job's controller fields when the pod is a Job's.
    pub job: Option<JobSpec>,
    /// The ports of the file's LoadBalancer and NodePort Services that
    /// select the pod, published on the host like `hostPort`s.
    pub service_ports: Vec<ServicePort>,
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

pub(super) fn pod_spec(ctx: &mut Ctx<'_>, raw: &manifest::PodSpec, p: &str) -> Result<PodSpec> {
    raw.ignored_fields(&format!("{p}."), &mut ctx.ignored);
    refuse_unsupported(ctx, raw, p)?;
    let restart_policy = restart_policy(ctx, raw.restart_policy.as_deref(), p)?;
    let grace = match raw.termination_grace_period_seconds {
        None => 30,
        Some(s) if s >= 0 => s.unsigned_abs(),
        Some(s) => {
            return Err(ctx.err(
                format!("{p}.terminationGracePeriodSeconds"),
                Some(&s.to_string()),
                "must be >= 0",
            ));
        }
    };
    let hostname = match &raw.hostname {
        Some(h) => {
            check_label(ctx.file, &ctx.doc, &format!("{p}.hostname"), h)?;
            h.clone()
        }
        None => ctx.pod_name.clone(),
    };
    if let Some(s) = &raw.subdomain {
        check_label(ctx.file, &ctx.doc, &format!("{p}.subdomain"), s)?;
    }
    let host_network = raw.host_network.unwrap_or(false);
    let host_aliases = host_aliases(ctx, &raw.host_aliases, p)?;

    let default_sc = manifest::PodSecurityContext::default();
    let pod_sc = raw.security_context.as_ref().unwrap_or(&default_sc);
    pod_sc.ignored_fields(&format!("{p}.securityContext."), &mut ctx.ignored);
    if pod_sc.sysctls.is_some() {
        return Err(ctx.err(
            format!("{p}.securityContext.sysctls"),
            None,
            "not supported",
        ));
    }
    let fs_group = id(
        ctx,
        &format!("{p}.securityContext.fsGroup"),
        pod_sc.fs_group,
    )?;

    // Volumes first: mounts refer to them.
    let volumes = volumes::volumes(ctx, &raw.volumes, p)?;
    if raw.containers.is_empty() {
        return Err(ctx.err(
            format!("{p}.containers"),
            None,
            "a pod needs at least one container",
        ));
    }
    let pod = container::PodParts {
        security: pod_sc,
        fs_group,
        volumes: &volumes,
        host_network,
        grace_period_seconds: grace,
    };
    let (mut init_containers, mut containers) =
        container::containers(ctx, &pod, &raw.init_containers, &raw.containers, p)?;
    let mut volumes = volumes;
    super::downward::fill(&mut volumes, &mut init_containers, &mut containers);
    let image_pull_secrets = image::pull_secrets(
        ctx,
        raw.image_pull_secrets.as_deref().unwrap_or_default(),
        p,
    )?;

    Ok(PodSpec {
        name: ctx.pod_name.clone(),
        namespace: ctx.namespace.clone(),
        labels: ctx.labels.clone(),
        annotations: ctx.annotations.clone(),
        source: ctx.doc.clone(),
        restart_policy,
        termination_grace_period: Duration::from_secs(grace),
        share_process_namespace: raw.share_process_namespace.unwrap_or(false),
        host_network,
        hostname,
        subdomain: raw.subdomain.clone(),
        set_hostname_as_fqdn: raw.set_hostname_as_fqdn.unwrap_or(false),
        host_aliases,
        image_pull_secrets,
        init_containers,
        containers,
        volumes,
        fs_group,
        job: None,
        service_ports: Vec::new(),
    })
}

/// Pod fields that would change what runs and that one host cannot honour.
fn refuse_unsupported(ctx: &Ctx<'_>, raw: &manifest::PodSpec, p: &str) -> Result<()> {
    #[rustfmt::skip]
    let absent = [
        (&raw.ephemeral_containers, "ephemeralContainers", "debug containers"),
        (&raw.active_deadline_seconds, "activeDeadlineSeconds", "a deadline would kill the pod"),
        (&raw.dns_config, "dnsConfig", "resolv.conf is the host's"),
        (&raw.resource_claims, "resourceClaims", "dynamic resource allocation"),
        (&raw.resources, "resources", "pod-level resources; set them per container"),
        (&raw.hostname_override, "hostnameOverride", "use spec.hostname"),
    ];
    if let Some((_, field, why)) = absent.iter().find(|(value, ..)| value.is_some()) {
        return Err(ctx.err(
            format!("{p}.{field}"),
            None,
            format!("not supported: {why}"),
        ));
    }
    let flags = [
        (
            "hostPID",
            raw.host_pid == Some(true),
            "true",
            "not supported: containers get their own or the pod's PID namespace",
        ),
        (
            "hostIPC",
            raw.host_ipc == Some(true),
            "true",
            "not supported: the pod has its own IPC namespace",
        ),
        (
            "hostUsers",
            raw.host_users == Some(false),
            "false",
            "not supported: user namespaces",
        ),
    ];
    if let Some((field, _, value, why)) = flags.iter().find(|(_, set, _, _)| *set) {
        return Err(ctx.err(format!("{p}.{field}"), Some(value), *why));
    }
    Ok(())
}

/// `restartPolicy` (default Always); a Job's pod must not use Always.
fn restart_policy(ctx: &Ctx<'_>, text: Option<&str>, p: &str) -> Result<RestartPolicy> {
    let path = format!("{p}.restartPolicy");
    let policy = match text {
        None => RestartPolicy::default(),
        Some(t) => RestartPolicy::parse(t)
            .ok_or_else(|| ctx.err(&path, Some(t), "must be Always, OnFailure or Never"))?,
    };
    if ctx.doc.kind.as_deref() == Some("Job") && policy == RestartPolicy::Always {
        return Err(ctx.err(path, Some("Always"), "a Job's pod needs OnFailure or Never"));
    }
    Ok(policy)
}

fn host_aliases(ctx: &Ctx<'_>, raw: &[manifest::HostAlias], p: &str) -> Result<Vec<HostAlias>> {
    let mut host_aliases = Vec::new();
    for (i, a) in raw.iter().enumerate() {
        let path = format!("{p}.hostAliases[{i}].ip");
        let ip_text =
            a.ip.as_deref()
                .ok_or_else(|| ctx.err(&path, None, "missing"))?;
        let ip = IpAddr::from_str(ip_text)
            .map_err(|_| ctx.err(&path, Some(ip_text), "not an IP address"))?;
        host_aliases.push(HostAlias {
            ip,
            hostnames: a.hostnames.clone(),
        });
    }
    Ok(host_aliases)
}
