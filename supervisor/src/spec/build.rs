//! Raw objects -> [`PodSpec`]: the checks Kubernetes' API validation and
//! the kubelet make, the defaults they apply, and the refusals of what
//! cannot run on one host. Errors stop at the first problem.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::env::{EnvValue, EnvVar, RuntimeField};
use super::{
    Capabilities, Container, ContainerKind, DocRef, FilesOrigin, Handler, HostAlias, HostPathType,
    LoadedPod, ManifestError, PodSpec, Port, Probe, Protocol, Resources, RestartPolicy,
    SecurityContext, Volume, VolumeFile, VolumeMount, VolumeSource, capability_number,
};
use crate::manifest::{self, IgnoredFields, IntOrString, Object, QuantityText};
use crate::quantity::{Quantity, QuantityError};

/// A ConfigMap or Secret of the file, decoded.
struct DataObject {
    namespace: Option<String>,
    data: BTreeMap<String, Vec<u8>>,
}

/// Everything the pod may reference, plus where errors point.
struct Ctx<'a> {
    file: &'a str,
    doc: DocRef,
    namespace: String,
    configmaps: &'a BTreeMap<String, DataObject>,
    secrets: &'a BTreeMap<String, DataObject>,
    pod_name: String,
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    ignored: Vec<String>,
}

type Result<T> = std::result::Result<T, ManifestError>;

fn invalid(
    file: &str,
    doc: &DocRef,
    path: impl Into<String>,
    value: Option<String>,
    reason: impl Into<String>,
) -> ManifestError {
    ManifestError::Invalid {
        file: file.to_owned(),
        doc: Box::new(doc.clone()),
        path: path.into(),
        value,
        location: None,
        reason: reason.into(),
    }
}

impl Ctx<'_> {
    fn err(
        &self,
        path: impl Into<String>,
        value: Option<&str>,
        reason: impl Into<String>,
    ) -> ManifestError {
        invalid(self.file, &self.doc, path, value.map(str::to_owned), reason)
    }

    fn object(&self, secret: bool, name: &str) -> Option<&DataObject> {
        let map = if secret {
            self.secrets
        } else {
            self.configmaps
        };
        map.get(name)
            .filter(|o| o.namespace.as_deref().is_none_or(|ns| ns == self.namespace))
    }
}

/// Entry point behind [`super::load_str`].
pub(super) fn build(file: &str, text: &str) -> Result<LoadedPod> {
    let docs = manifest::parse_stream(file, text)?;
    build_docs(file, &docs).map_err(|mut e| {
        // Point at the field in the file, now that the error knows it.
        if let ManifestError::Invalid {
            doc,
            path,
            location,
            ..
        } = &mut e
            && location.is_none()
            && let Some(d) = docs.iter().find(|d| d.doc.index == doc.index)
        {
            *location = manifest::locate(&d.text, path);
        }
        e
    })
}

fn build_docs(file: &str, docs: &[manifest::Document]) -> Result<LoadedPod> {
    let mut warnings = Vec::new();
    let mut configmaps = BTreeMap::new();
    let mut secrets = BTreeMap::new();
    let mut pod: Option<(DocRef, &Object)> = None;
    let mut other_kinds = Vec::new();
    let mut ignored = Vec::new();
    for d in docs {
        match &d.object {
            Object::ConfigMap(cm) => {
                let name = object_name(file, &d.doc, &cm.metadata)?;
                let prefix = format!("(ConfigMap {name}) ");
                cm.metadata
                    .ignored_fields(&format!("{prefix}metadata."), &mut ignored);
                cm.ignored_fields(&prefix, &mut ignored);
                let obj = config_map(file, &d.doc, cm)?;
                if configmaps.insert(name.clone(), obj).is_some() {
                    return Err(invalid(
                        file,
                        &d.doc,
                        "metadata.name",
                        Some(name),
                        "a second ConfigMap with this name",
                    ));
                }
            }
            Object::Secret(s) => {
                let name = object_name(file, &d.doc, &s.metadata)?;
                let prefix = format!("(Secret {name}) ");
                s.metadata
                    .ignored_fields(&format!("{prefix}metadata."), &mut ignored);
                s.ignored_fields(&prefix, &mut ignored);
                let obj = secret(file, &d.doc, s)?;
                if secrets.insert(name.clone(), obj).is_some() {
                    return Err(invalid(
                        file,
                        &d.doc,
                        "metadata.name",
                        Some(name),
                        "a second Secret with this name",
                    ));
                }
            }
            Object::Pod(_) | Object::Workload(_) => {
                if let Some((first, _)) = &pod {
                    return Err(ManifestError::SecondPod {
                        file: file.to_owned(),
                        first: Box::new(first.clone()),
                        second: Box::new(d.doc.clone()),
                    });
                }
                pod = Some((d.doc.clone(), &d.object));
            }
            Object::Other => {
                let kind = d.doc.kind.clone().unwrap_or_default();
                other_kinds.push(match &d.doc.name {
                    Some(n) => format!("{kind} {n}"),
                    None => kind,
                });
            }
        }
    }
    let Some((doc, object)) = pod else {
        return Err(ManifestError::NoPod {
            file: file.to_owned(),
            ignored: other_kinds,
        });
    };
    if !other_kinds.is_empty() {
        warnings.push(format!(
            "{file}: ignored (not run by a single-host supervisor): {}",
            other_kinds.join(", ")
        ));
    }

    // Where the pod's metadata and spec are, and their path prefix.
    let (meta, spec, base, template_meta) = match object {
        Object::Pod(p) => (&p.metadata, p.spec.as_ref(), "", None),
        Object::Workload(w) => {
            let kind = doc.kind.as_deref().unwrap_or_default();
            let ws = w.spec.as_ref().ok_or_else(|| {
                invalid(
                    file,
                    &doc,
                    "spec",
                    None,
                    "missing: a workload needs spec.template",
                )
            })?;
            ws.ignored_fields("spec.", &mut ignored);
            if ws.active_deadline_seconds.is_some() {
                return Err(invalid(
                    file,
                    &doc,
                    "spec.activeDeadlineSeconds",
                    None,
                    "not supported: a deadline would kill the pod",
                ));
            }
            if ws
                .volume_claim_templates
                .as_ref()
                .is_some_and(|v| !v.is_empty())
            {
                return Err(invalid(
                    file,
                    &doc,
                    "spec.volumeClaimTemplates",
                    None,
                    "not supported: no persistent volumes on a single host",
                ));
            }
            match ws.replicas {
                Some(r) if r < 0 => {
                    return Err(invalid(file, &doc, "spec.replicas", Some(r.to_string()), "must be >= 0"));
                }
                Some(r) if r != 1 => warnings.push(format!(
                    "{file}: {doc}: spec.replicas is {r}; a single-host supervisor runs exactly one pod"
                )),
                _ => {}
            }
            if kind == "DaemonSet" || kind == "Job" {
                // No replicas field in Kubernetes for these.
                if ws.replicas.is_some() {
                    return Err(invalid(
                        file,
                        &doc,
                        "spec.replicas",
                        None,
                        format!("{kind} has no replicas field"),
                    ));
                }
            }
            let t = ws.template.as_ref().ok_or_else(|| {
                invalid(
                    file,
                    &doc,
                    "spec.template",
                    None,
                    "missing: a workload needs a pod template",
                )
            })?;
            (
                &w.metadata,
                t.spec.as_ref(),
                "spec.template.",
                Some(&t.metadata),
            )
        }
        _ => unreachable!("only pods and workloads are kept"),
    };
    meta.ignored_fields("metadata.", &mut ignored);
    if let Some(tm) = template_meta {
        tm.ignored_fields("spec.template.metadata.", &mut ignored);
        if tm.generate_name.is_some() {
            return Err(invalid(
                file,
                &doc,
                "spec.template.metadata.generateName",
                None,
                "not supported",
            ));
        }
    }
    let name = object_name(file, &doc, meta)?;
    check_label(file, &doc, "metadata.name", &name)?;
    let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
    check_label(file, &doc, "metadata.namespace", &namespace)?;
    // A workload's pod takes the template's labels and annotations.
    let (labels, annotations) = match template_meta {
        Some(tm) => (&tm.labels, &tm.annotations),
        None => (&meta.labels, &meta.annotations),
    };
    let spec = spec.ok_or_else(|| {
        invalid(
            file,
            &doc,
            format!("{base}spec"),
            None,
            "missing: a pod needs a spec with containers",
        )
    })?;
    let mut ctx = Ctx {
        file,
        doc: doc.clone(),
        namespace: namespace.clone(),
        configmaps: &configmaps,
        secrets: &secrets,
        pod_name: name.clone(),
        labels,
        annotations,
        ignored,
    };
    let pod = pod_spec(&mut ctx, spec, &format!("{base}spec"))?;
    if !ctx.ignored.is_empty() {
        warnings.push(format!(
            "{file}: ignored (no meaning on a single host): {}",
            ctx.ignored.join(", ")
        ));
    }
    Ok(LoadedPod { pod, warnings })
}

fn object_name(file: &str, doc: &DocRef, meta: &manifest::ObjectMeta) -> Result<String> {
    match &meta.name {
        Some(n) if !n.is_empty() => Ok(n.clone()),
        _ if meta.generate_name.is_some() => Err(invalid(
            file,
            doc,
            "metadata.generateName",
            None,
            "not supported: give the object a metadata.name",
        )),
        _ => Err(invalid(file, doc, "metadata.name", None, "missing")),
    }
}

// ---------------------------------------------------------------------
// ConfigMaps and Secrets
// ---------------------------------------------------------------------

fn config_map(file: &str, doc: &DocRef, cm: &manifest::ConfigMap) -> Result<DataObject> {
    let mut data = BTreeMap::new();
    for (k, v) in &cm.data {
        check_data_key(file, doc, &format!("data.{k}"), k)?;
        data.insert(k.clone(), v.clone().into_bytes());
    }
    for (k, v) in &cm.binary_data {
        let path = format!("binaryData.{k}");
        check_data_key(file, doc, &path, k)?;
        let bytes = base64_decode(v).map_err(|r| invalid(file, doc, &path, None, r))?;
        if data.insert(k.clone(), bytes).is_some() {
            return Err(invalid(file, doc, path, None, "the key is also in data"));
        }
    }
    Ok(DataObject {
        namespace: cm.metadata.namespace.clone(),
        data,
    })
}

fn secret(file: &str, doc: &DocRef, s: &manifest::Secret) -> Result<DataObject> {
    let mut data = BTreeMap::new();
    for (k, v) in &s.data {
        let path = format!("data.{k}");
        check_data_key(file, doc, &path, k)?;
        let bytes = base64_decode(v).map_err(|r| invalid(file, doc, &path, None, r))?;
        data.insert(k.clone(), bytes);
    }
    for (k, v) in &s.string_data {
        check_data_key(file, doc, &format!("stringData.{k}"), k)?;
        data.insert(k.clone(), v.clone().into_bytes());
    }
    Ok(DataObject {
        namespace: s.metadata.namespace.clone(),
        data,
    })
}

/// ConfigMap/Secret keys: `[-._a-zA-Z0-9]+`, at most 253, not `.`/`..`.
fn check_data_key(file: &str, doc: &DocRef, path: &str, key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            file,
            doc,
            path,
            Some(key.to_owned()),
            "a key must consist of alphanumerics, '-', '_' or '.' (and not be '.' or '..')",
        ))
    }
}

/// Standard base64 with padding, as Go's `encoding/base64.StdEncoding`
/// (which skips `\r` and `\n`).
pub(super) fn base64_decode(text: &str) -> std::result::Result<Vec<u8>, String> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let clean: Vec<u8> = text
        .bytes()
        .filter(|b| *b != b'\n' && *b != b'\r')
        .collect();
    if !clean.len().is_multiple_of(4) {
        return Err("not valid base64: length is not a multiple of 4".into());
    }
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    let chunks = clean.len() / 4;
    for (i, chunk) in clean.chunks(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != chunks) {
            return Err("not valid base64: misplaced '='".into());
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            let v = val(c).ok_or_else(|| format!("not valid base64: byte {:?}", c as char))?;
            n = (n << 6) | v;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Ok(out)
}

// ---------------------------------------------------------------------
// Names and paths
// ---------------------------------------------------------------------

/// DNS-1123 label: at most 63 of `[a-z0-9-]`, alphanumeric at both ends.
pub(super) fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn check_label(file: &str, doc: &DocRef, path: &str, value: &str) -> Result<()> {
    if is_dns_label(value) {
        Ok(())
    } else {
        Err(invalid(
            file,
            doc,
            path,
            Some(value.to_owned()),
            "must be a DNS-1123 label: at most 63 lower-case letters, digits or '-', starting and ending with a letter or digit",
        ))
    }
}

/// IANA service name (port names): at most 15 of `[a-z0-9-]`, at least
/// one letter, no leading, trailing or double `-`.
fn is_port_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && s.bytes().any(|c| c.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// An absolute path without `.`, `..` or empty components; a trailing
/// `/` is dropped. Returns the clean path or why it is not one.
fn clean_absolute(s: &str) -> std::result::Result<PathBuf, &'static str> {
    if !s.starts_with('/') {
        return Err("must be an absolute path");
    }
    let trimmed = s.strip_suffix('/').unwrap_or(s);
    if trimmed.is_empty() {
        return Err("must not be /");
    }
    if s.contains('\0') {
        return Err("must not contain NUL");
    }
    for part in trimmed[1..].split('/') {
        match part {
            "" => return Err("must not contain '//'"),
            "." | ".." => return Err("must not contain '.' or '..' components"),
            _ => {}
        }
    }
    Ok(PathBuf::from(trimmed))
}

/// A relative path without `..`, `.` or empty components.
fn clean_relative(s: &str) -> std::result::Result<PathBuf, &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.starts_with('/') {
        return Err("must be a relative path");
    }
    if s.contains('\0') {
        return Err("must not contain NUL");
    }
    for part in s.split('/') {
        match part {
            "" => return Err("must not contain '//' or end with '/'"),
            "." | ".." => return Err("must not contain '.' or '..' components"),
            _ => {}
        }
    }
    debug_assert!(
        Path::new(s)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
    );
    Ok(PathBuf::from(s))
}

/// Environment variable names: printable ASCII without `=` (Kubernetes'
/// relaxed validation, GA in 1.34).
fn is_env_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'=')
}

// ---------------------------------------------------------------------
// The pod
// ---------------------------------------------------------------------

fn pod_spec(ctx: &mut Ctx<'_>, raw: &manifest::PodSpec, p: &str) -> Result<PodSpec> {
    raw.ignored_fields(&format!("{p}."), &mut ctx.ignored);
    let refuse = |field: &str, why: &str| {
        ctx.err(
            format!("{p}.{field}"),
            None,
            format!("not supported: {why}"),
        )
    };
    if raw.ephemeral_containers.is_some() {
        return Err(refuse("ephemeralContainers", "debug containers"));
    }
    if raw.active_deadline_seconds.is_some() {
        return Err(refuse(
            "activeDeadlineSeconds",
            "a deadline would kill the pod",
        ));
    }
    if raw.dns_config.is_some() {
        return Err(refuse("dnsConfig", "resolv.conf is the host's"));
    }
    if raw.resource_claims.is_some() {
        return Err(refuse("resourceClaims", "dynamic resource allocation"));
    }
    if raw.resources.is_some() {
        return Err(refuse(
            "resources",
            "pod-level resources; set them per container",
        ));
    }
    if raw.hostname_override.is_some() {
        return Err(refuse("hostnameOverride", "use spec.hostname"));
    }
    if raw.host_pid == Some(true) {
        return Err(ctx.err(
            format!("{p}.hostPID"),
            Some("true"),
            "not supported: containers get their own or the pod's PID namespace",
        ));
    }
    if raw.host_ipc == Some(true) {
        return Err(ctx.err(
            format!("{p}.hostIPC"),
            Some("true"),
            "not supported: the pod has its own IPC namespace",
        ));
    }
    if raw.host_users == Some(false) {
        return Err(ctx.err(
            format!("{p}.hostUsers"),
            Some("false"),
            "not supported: user namespaces",
        ));
    }

    let restart_policy = match raw.restart_policy.as_deref() {
        None | Some("Always") => RestartPolicy::Always,
        Some("OnFailure") => RestartPolicy::OnFailure,
        Some("Never") => RestartPolicy::Never,
        Some(other) => {
            return Err(ctx.err(
                format!("{p}.restartPolicy"),
                Some(other),
                "must be Always, OnFailure or Never",
            ));
        }
    };
    if ctx.doc.kind.as_deref() == Some("Job") && restart_policy == RestartPolicy::Always {
        return Err(ctx.err(
            format!("{p}.restartPolicy"),
            Some("Always"),
            "a Job's pod needs OnFailure or Never",
        ));
    }
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
    let mut host_aliases = Vec::new();
    for (i, a) in raw.host_aliases.iter().enumerate() {
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
    let mut volumes: Vec<Volume> = Vec::new();
    for (i, v) in raw.volumes.iter().enumerate() {
        let vp = format!("{p}.volumes[{i}]");
        let vol = volume(ctx, v, &vp)?;
        if volumes.iter().any(|o| o.name == vol.name) {
            return Err(ctx.err(
                format!("{vp}.name"),
                Some(&vol.name),
                "duplicate volume name",
            ));
        }
        volumes.push(vol);
    }

    if raw.containers.is_empty() {
        return Err(ctx.err(
            format!("{p}.containers"),
            None,
            "a pod needs at least one container",
        ));
    }
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut host_ports: BTreeMap<(u16, Protocol, Option<IpAddr>), String> = BTreeMap::new();
    let mut build_list = |ctx: &mut Ctx<'_>,
                          list: &[manifest::Container],
                          field: &str,
                          init: bool|
     -> Result<Vec<Container>> {
        let mut out = Vec::new();
        for (i, c) in list.iter().enumerate() {
            let cp = format!("{p}.{field}[{i}]");
            let built = container(ctx, c, &cp, init, pod_sc, fs_group, &volumes, host_network)?;
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
    let init_containers = build_list(ctx, &raw.init_containers, "initContainers", true)?;
    let containers = build_list(ctx, &raw.containers, "containers", false)?;

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
        init_containers,
        containers,
        volumes,
        fs_group,
    })
}

/// A UID/GID: 0..=2147483647 as Kubernetes validates.
fn id(ctx: &Ctx<'_>, path: &str, v: Option<i64>) -> Result<Option<u32>> {
    match v {
        None => Ok(None),
        Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(u32::try_from(n).ok()),
        Some(n) => Err(ctx.err(
            path,
            Some(&n.to_string()),
            "must be between 0 and 2147483647",
        )),
    }
}

// ---------------------------------------------------------------------
// Volumes
// ---------------------------------------------------------------------

fn volume(ctx: &Ctx<'_>, v: &manifest::Volume, vp: &str) -> Result<Volume> {
    let name = v
        .name
        .as_deref()
        .ok_or_else(|| ctx.err(format!("{vp}.name"), None, "missing"))?;
    check_label(ctx.file, &ctx.doc, &format!("{vp}.name"), name)?;
    let unsupported = [
        ("persistentVolumeClaim", v.persistent_volume_claim.is_some()),
        ("projected", v.projected.is_some()),
        ("downwardAPI", v.downward_api.is_some()),
        ("ephemeral", v.ephemeral.is_some()),
        ("image", v.image.is_some()),
        ("csi", v.csi.is_some()),
        ("nfs", v.nfs.is_some()),
        ("iscsi", v.iscsi.is_some()),
        ("gitRepo", v.git_repo.is_some()),
        ("local", v.local.is_some()),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, present)| *present) {
        return Err(ctx.err(
            format!("{vp}.{field}"),
            None,
            "volume type not supported (supported: emptyDir, hostPath, configMap, secret)",
        ));
    }
    let count = [
        v.empty_dir.is_some(),
        v.host_path.is_some(),
        v.config_map.is_some(),
        v.secret.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if count > 1 {
        return Err(ctx.err(vp, Some(name), "a volume has exactly one source"));
    }
    let source = if let Some(hp) = &v.host_path {
        let path_field = format!("{vp}.hostPath.path");
        let text = hp
            .path
            .as_deref()
            .ok_or_else(|| ctx.err(&path_field, None, "missing"))?;
        let path = if text == "/" {
            PathBuf::from("/")
        } else {
            clean_absolute(text).map_err(|r| ctx.err(&path_field, Some(text), r))?
        };
        let kind = match hp.type_.as_deref() {
            None | Some("") => HostPathType::Unchecked,
            Some("DirectoryOrCreate") => HostPathType::DirectoryOrCreate,
            Some("Directory") => HostPathType::Directory,
            Some("FileOrCreate") => HostPathType::FileOrCreate,
            Some("File") => HostPathType::File,
            Some("Socket") => HostPathType::Socket,
            Some("CharDevice") => HostPathType::CharDevice,
            Some("BlockDevice") => HostPathType::BlockDevice,
            Some(other) => {
                return Err(ctx.err(
                    format!("{vp}.hostPath.type"),
                    Some(other),
                    "must be \"\", DirectoryOrCreate, Directory, FileOrCreate, File, Socket, CharDevice or BlockDevice",
                ));
            }
        };
        VolumeSource::HostPath { path, kind }
    } else if let Some(cm) = &v.config_map {
        let obj_field = format!("{vp}.configMap.name");
        let obj = cm
            .name
            .as_deref()
            .ok_or_else(|| ctx.err(&obj_field, None, "missing"))?;
        let files = volume_files(
            ctx,
            false,
            obj,
            &obj_field,
            cm.items.as_deref(),
            cm.default_mode,
            cm.optional,
            &format!("{vp}.configMap"),
        )?;
        VolumeSource::Files {
            origin: FilesOrigin::ConfigMap(obj.to_owned()),
            files,
        }
    } else if let Some(s) = &v.secret {
        let obj_field = format!("{vp}.secret.secretName");
        let obj = s
            .secret_name
            .as_deref()
            .ok_or_else(|| ctx.err(&obj_field, None, "missing"))?;
        let files = volume_files(
            ctx,
            true,
            obj,
            &obj_field,
            s.items.as_deref(),
            s.default_mode,
            s.optional,
            &format!("{vp}.secret"),
        )?;
        VolumeSource::Files {
            origin: FilesOrigin::Secret(obj.to_owned()),
            files,
        }
    } else {
        // No source at all is an emptyDir, as Kubernetes defaults it.
        let ed = v.empty_dir.clone().unwrap_or_default();
        let memory = match ed.medium.as_deref() {
            None | Some("") => false,
            Some("Memory") => true,
            Some(other) => {
                return Err(ctx.err(
                    format!("{vp}.emptyDir.medium"),
                    Some(other),
                    "must be \"\" or Memory",
                ));
            }
        };
        let size_limit = ed
            .size_limit
            .as_ref()
            .map(|q| bytes(ctx, &format!("{vp}.emptyDir.sizeLimit"), q))
            .transpose()?;
        VolumeSource::EmptyDir { memory, size_limit }
    };
    Ok(Volume {
        name: name.to_owned(),
        source,
    })
}

fn mode(ctx: &Ctx<'_>, path: &str, m: Option<i64>, default: u32) -> Result<u32> {
    match m {
        None => Ok(default),
        Some(n) if (0..=0o777).contains(&n) => Ok(u32::try_from(n).unwrap_or(default)),
        Some(n) => Err(ctx.err(
            path,
            Some(&format!("{n:#o}")),
            "must be between 0 and 0777 (octal)",
        )),
    }
}

#[allow(clippy::too_many_arguments)]
fn volume_files(
    ctx: &Ctx<'_>,
    secret: bool,
    name: &str,
    name_field: &str,
    items: Option<&[manifest::KeyToPath]>,
    default_mode: Option<i64>,
    optional: Option<bool>,
    vp: &str,
) -> Result<Vec<VolumeFile>> {
    let what = if secret { "Secret" } else { "ConfigMap" };
    let default_mode = mode(ctx, &format!("{vp}.defaultMode"), default_mode, 0o644)?;
    let optional = optional.unwrap_or(false);
    let Some(obj) = ctx.object(secret, name) else {
        if optional {
            return Ok(Vec::new());
        }
        return Err(ctx.err(
            name_field,
            Some(name),
            format!("no {what} of this name in the manifest file (and not optional)"),
        ));
    };
    let mut files = Vec::new();
    match items {
        None | Some([]) => {
            for (k, v) in &obj.data {
                files.push(VolumeFile {
                    path: PathBuf::from(k),
                    data: v.clone(),
                    mode: default_mode,
                });
            }
        }
        Some(items) => {
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                let ip = format!("{vp}.items[{i}]");
                let key = item
                    .key
                    .as_deref()
                    .ok_or_else(|| ctx.err(format!("{ip}.key"), None, "missing"))?;
                let path_text = item
                    .path
                    .as_deref()
                    .ok_or_else(|| ctx.err(format!("{ip}.path"), None, "missing"))?;
                let path = clean_relative(path_text)
                    .map_err(|r| ctx.err(format!("{ip}.path"), Some(path_text), r))?;
                if !seen.insert(path.clone()) {
                    return Err(ctx.err(format!("{ip}.path"), Some(path_text), "duplicate path"));
                }
                let m = mode(ctx, &format!("{ip}.mode"), item.mode, default_mode)?;
                match obj.data.get(key) {
                    Some(data) => files.push(VolumeFile {
                        path,
                        data: data.clone(),
                        mode: m,
                    }),
                    None if optional => {}
                    None => {
                        return Err(ctx.err(
                            format!("{ip}.key"),
                            Some(key),
                            format!("{what} {name} has no such key"),
                        ));
                    }
                }
            }
        }
    }
    Ok(files)
}

// ---------------------------------------------------------------------
// Containers
// ---------------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
fn container(
    ctx: &mut Ctx<'_>,
    c: &manifest::Container,
    cp: &str,
    init: bool,
    pod_sc: &manifest::PodSecurityContext,
    fs_group: Option<u32>,
    volumes: &[Volume],
    host_network: bool,
) -> Result<Container> {
    let name = c
        .name
        .as_deref()
        .ok_or_else(|| ctx.err(format!("{cp}.name"), None, "missing"))?;
    check_label(ctx.file, &ctx.doc, &format!("{cp}.name"), name)?;
    c.ignored_fields(&format!("{cp}."), &mut ctx.ignored);
    for (field, on) in [
        ("stdin", c.stdin),
        ("stdinOnce", c.stdin_once),
        ("tty", c.tty),
    ] {
        if on == Some(true) {
            return Err(ctx.err(
                format!("{cp}.{field}"),
                Some("true"),
                "not supported: containers run without a terminal or stdin",
            ));
        }
    }
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
    let kind = match (init, c.restart_policy.as_deref()) {
        (_, None) => {
            if init {
                ContainerKind::Init
            } else {
                ContainerKind::Regular
            }
        }
        (true, Some("Always")) => {
            // Parsed as Kubernetes has it, but the runtime does not run
            // sidecars yet: refuse rather than run them as plain init
            // containers.
            return Err(ctx.err(
                format!("{cp}.restartPolicy"),
                Some("Always"),
                "not supported yet: sidecar containers (an init container with restartPolicy Always)",
            ));
        }
        (true, Some(other)) => {
            return Err(ctx.err(
                format!("{cp}.restartPolicy"),
                Some(other),
                "an init container's restartPolicy can only be Always (a sidecar)",
            ));
        }
        (false, Some(other)) => {
            return Err(ctx.err(
                format!("{cp}.restartPolicy"),
                Some(other),
                "not supported on a regular container; set spec.restartPolicy",
            ));
        }
    };

    // Host binaries have no image entrypoint: `command` is required.
    let mut command = match &c.command {
        Some(cmd) if !cmd.is_empty() => cmd.clone(),
        _ => {
            return Err(ctx.err(
                format!("{cp}.command"),
                None,
                "missing: containers run host binaries, which have no image ENTRYPOINT; give command (args alone are not enough)",
            ));
        }
    };
    if command[0].is_empty() {
        return Err(ctx.err(
            format!("{cp}.command[0]"),
            Some(""),
            "the program must not be empty",
        ));
    }
    command.extend(c.args.iter().flatten().cloned());

    let working_dir = match &c.working_dir {
        None => None,
        Some(w) if w == "/" => Some(PathBuf::from("/")),
        Some(w) => {
            Some(clean_absolute(w).map_err(|r| ctx.err(format!("{cp}.workingDir"), Some(w), r))?)
        }
    };

    let env = env_list(ctx, c, cp)?;
    let resources = resources(ctx, c.resources.as_ref(), &format!("{cp}.resources"))?;
    let security = security(ctx, c.security_context.as_ref(), pod_sc, fs_group, cp)?;

    let mut mounts: Vec<VolumeMount> = Vec::new();
    for (i, m) in c.volume_mounts.iter().enumerate() {
        let mp = format!("{cp}.volumeMounts[{i}]");
        let vol = m
            .name
            .as_deref()
            .ok_or_else(|| ctx.err(format!("{mp}.name"), None, "missing"))?;
        if !volumes.iter().any(|v| v.name == vol) {
            return Err(ctx.err(
                format!("{mp}.name"),
                Some(vol),
                "no volume of this name in spec.volumes",
            ));
        }
        let text = m
            .mount_path
            .as_deref()
            .ok_or_else(|| ctx.err(format!("{mp}.mountPath"), None, "missing"))?;
        let mount_path =
            clean_absolute(text).map_err(|r| ctx.err(format!("{mp}.mountPath"), Some(text), r))?;
        if mounts.iter().any(|o| o.mount_path == mount_path) {
            return Err(ctx.err(
                format!("{mp}.mountPath"),
                Some(text),
                "mounted twice in this container",
            ));
        }
        if m.sub_path_expr.is_some() {
            return Err(ctx.err(
                format!("{mp}.subPathExpr"),
                None,
                "not supported; use subPath",
            ));
        }
        match m.mount_propagation.as_deref() {
            None | Some("None") => {}
            Some(other) => {
                return Err(ctx.err(
                    format!("{mp}.mountPropagation"),
                    Some(other),
                    "not supported: mounts are private (None)",
                ));
            }
        }
        match m.recursive_read_only.as_deref() {
            None | Some("Disabled") => {}
            Some(other) => {
                return Err(ctx.err(
                    format!("{mp}.recursiveReadOnly"),
                    Some(other),
                    "not supported (Disabled only)",
                ));
            }
        }
        let sub_path = match m.sub_path.as_deref() {
            None | Some("") => None,
            Some(s) => {
                Some(clean_relative(s).map_err(|r| ctx.err(format!("{mp}.subPath"), Some(s), r))?)
            }
        };
        mounts.push(VolumeMount {
            volume: vol.to_owned(),
            mount_path,
            read_only: m.read_only.unwrap_or(false),
            sub_path,
        });
    }

    let mut ports: Vec<Port> = Vec::new();
    for (i, port) in c.ports.iter().enumerate() {
        let pp = format!("{cp}.ports[{i}]");
        let number = |field: &str, v: i64, min: i64| -> Result<u16> {
            if (min..=65535).contains(&v) {
                Ok(u16::try_from(v).unwrap_or_default())
            } else {
                Err(ctx.err(
                    format!("{pp}.{field}"),
                    Some(&v.to_string()),
                    format!("must be between {min} and 65535"),
                ))
            }
        };
        let cport = port
            .container_port
            .ok_or_else(|| ctx.err(format!("{pp}.containerPort"), None, "missing"))?;
        let container_port = number("containerPort", cport, 1)?;
        let mut host_port = match port.host_port {
            None | Some(0) => None,
            Some(h) => Some(number("hostPort", h, 1)?),
        };
        if host_network {
            match host_port {
                None => host_port = Some(container_port),
                Some(h) if h != container_port => {
                    return Err(ctx.err(
                        format!("{pp}.hostPort"),
                        Some(&h.to_string()),
                        "with hostNetwork, hostPort must equal containerPort",
                    ));
                }
                Some(_) => {}
            }
        }
        let protocol = match port.protocol.as_deref() {
            None | Some("TCP") => Protocol::Tcp,
            Some("UDP") => Protocol::Udp,
            Some("SCTP") => Protocol::Sctp,
            Some(other) => {
                return Err(ctx.err(
                    format!("{pp}.protocol"),
                    Some(other),
                    "must be TCP, UDP or SCTP",
                ));
            }
        };
        let host_ip = match port.host_ip.as_deref() {
            None | Some("") => None,
            Some(t) => Some(
                IpAddr::from_str(t)
                    .map_err(|_| ctx.err(format!("{pp}.hostIP"), Some(t), "not an IP address"))?,
            ),
        };
        if let Some(n) = &port.name {
            if !is_port_name(n) {
                return Err(ctx.err(format!("{pp}.name"), Some(n), "must be an IANA service name: at most 15 lower-case letters, digits or '-', with a letter, no '--', not starting or ending with '-'"));
            }
            if ports.iter().any(|o| o.name.as_deref() == Some(n.as_str())) {
                return Err(ctx.err(format!("{pp}.name"), Some(n), "duplicate port name"));
            }
        }
        ports.push(Port {
            name: port.name.clone(),
            container_port,
            host_port,
            host_ip,
            protocol,
        });
    }

    let probes_allowed = kind != ContainerKind::Init;
    let probe_of = |field: &str,
                    raw: Option<&manifest::Probe>,
                    liveness_like: bool|
     -> Result<Option<Probe>> {
        let Some(raw) = raw else { return Ok(None) };
        let pp = format!("{cp}.{field}");
        if !probes_allowed {
            return Err(ctx.err(
                pp,
                None,
                "not allowed on an init container (only on a sidecar: restartPolicy Always)",
            ));
        }
        probe(ctx, raw, &pp, &ports, liveness_like).map(Some)
    };
    let liveness_probe = probe_of("livenessProbe", c.liveness_probe.as_ref(), true)?;
    let readiness_probe = probe_of("readinessProbe", c.readiness_probe.as_ref(), false)?;
    let startup_probe = probe_of("startupProbe", c.startup_probe.as_ref(), true)?;

    let (mut post_start, mut pre_stop, mut stop_signal) = (None, None, Signal::SIGTERM);
    if let Some(l) = &c.lifecycle {
        let lp = format!("{cp}.lifecycle");
        if kind == ContainerKind::Init {
            return Err(ctx.err(
                lp,
                None,
                "not allowed on an init container (only on a sidecar: restartPolicy Always)",
            ));
        }
        // Parsed and checked, but the runtime does not run hooks yet:
        // refuse rather than skip them.
        for (field, present) in [
            ("postStart", l.post_start.is_some()),
            ("preStop", l.pre_stop.is_some()),
        ] {
            if present {
                return Err(ctx.err(
                    format!("{lp}.{field}"),
                    None,
                    "not supported yet: lifecycle hooks",
                ));
            }
        }
        if let Some(h) = &l.post_start {
            post_start = Some(lifecycle_handler(
                ctx,
                h,
                &format!("{lp}.postStart"),
                &ports,
            )?);
        }
        if let Some(h) = &l.pre_stop {
            pre_stop = Some(lifecycle_handler(ctx, h, &format!("{lp}.preStop"), &ports)?);
        }
        if let Some(s) = &l.stop_signal {
            stop_signal = Signal::from_str(s).map_err(|_| {
                ctx.err(
                    format!("{lp}.stopSignal"),
                    Some(s),
                    "not a signal name such as SIGTERM or SIGQUIT",
                )
            })?;
        }
    }

    Ok(Container {
        name: name.to_owned(),
        image: c.image.clone(),
        kind,
        command,
        env,
        working_dir,
        resources,
        security,
        mounts,
        ports,
        liveness_probe,
        readiness_probe,
        startup_probe,
        post_start,
        pre_stop,
        stop_signal,
    })
}

fn env_list(ctx: &mut Ctx<'_>, c: &manifest::Container, cp: &str) -> Result<Vec<EnvVar>> {
    let mut env = Vec::new();
    for (i, ef) in c.env_from.iter().enumerate() {
        let ep = format!("{cp}.envFrom[{i}]");
        let prefix = ef.prefix.as_deref().unwrap_or("");
        let (secret, r, field) = match (&ef.config_map_ref, &ef.secret_ref) {
            (Some(r), None) => (false, r, "configMapRef"),
            (None, Some(r)) => (true, r, "secretRef"),
            _ => return Err(ctx.err(&ep, None, "needs exactly one of configMapRef and secretRef")),
        };
        let name = r
            .name
            .as_deref()
            .ok_or_else(|| ctx.err(format!("{ep}.{field}.name"), None, "missing"))?;
        let what = if secret { "Secret" } else { "ConfigMap" };
        let Some(obj) = ctx.object(secret, name) else {
            if r.optional == Some(true) {
                continue;
            }
            return Err(ctx.err(
                format!("{ep}.{field}.name"),
                Some(name),
                format!("no {what} of this name in the manifest file (and not optional)"),
            ));
        };
        let mut skipped = Vec::new();
        for (k, v) in &obj.data {
            let var = format!("{prefix}{k}");
            if !is_env_name(&var) {
                skipped.push(var);
                continue;
            }
            let value = String::from_utf8(v.clone()).map_err(|_| {
                ctx.err(
                    format!("{ep}.{field}"),
                    Some(name),
                    format!("key {k} is not UTF-8 text"),
                )
            })?;
            env.push(EnvVar {
                name: var,
                value: EnvValue::Fixed(value),
            });
        }
        if !skipped.is_empty() {
            // The kubelet skips such keys with an event; so do we, loudly.
            ctx.ignored.push(format!(
                "{ep} keys {} (invalid variable names)",
                skipped.join(" ")
            ));
        }
    }
    for (i, e) in c.env.iter().enumerate() {
        let ep = format!("{cp}.env[{i}]");
        let name = e
            .name
            .as_deref()
            .ok_or_else(|| ctx.err(format!("{ep}.name"), None, "missing"))?;
        if !is_env_name(name) {
            return Err(ctx.err(
                format!("{ep}.name"),
                Some(name),
                "must be printable ASCII without '='",
            ));
        }
        let value = match (&e.value, &e.value_from) {
            (Some(v), Some(_)) if !v.is_empty() => {
                return Err(ctx.err(
                    format!("{ep}.valueFrom"),
                    None,
                    "may not be given together with a non-empty value",
                ));
            }
            (_, Some(from)) => match env_from_source(ctx, from, &format!("{ep}.valueFrom"))? {
                Some(v) => v,
                None => continue, // optional and missing: not set
            },
            (v, None) => EnvValue::Expand(v.clone().unwrap_or_default()),
        };
        env.push(EnvVar {
            name: name.to_owned(),
            value,
        });
    }
    Ok(env)
}

fn env_from_source(
    ctx: &Ctx<'_>,
    s: &manifest::EnvVarSource,
    vp: &str,
) -> Result<Option<EnvValue>> {
    if s.resource_field_ref.is_some() {
        return Err(ctx.err(format!("{vp}.resourceFieldRef"), None, "not supported"));
    }
    if s.file_key_ref.is_some() {
        return Err(ctx.err(format!("{vp}.fileKeyRef"), None, "not supported"));
    }
    let n = [
        s.config_map_key_ref.is_some(),
        s.secret_key_ref.is_some(),
        s.field_ref.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if n != 1 {
        return Err(ctx.err(
            vp,
            None,
            "needs exactly one of configMapKeyRef, secretKeyRef and fieldRef",
        ));
    }
    if let Some(f) = &s.field_ref {
        let fp = format!("{vp}.fieldRef.fieldPath");
        if let Some(api) = f.api_version.as_deref().filter(|a| *a != "v1") {
            return Err(ctx.err(format!("{vp}.fieldRef.apiVersion"), Some(api), "must be v1"));
        }
        let path = f
            .field_path
            .as_deref()
            .ok_or_else(|| ctx.err(&fp, None, "missing"))?;
        let bracket = |prefix: &str| {
            path.strip_prefix(prefix)
                .and_then(|r| r.strip_suffix("']"))
                .map(str::to_owned)
        };
        let value = match path {
            "metadata.name" => EnvValue::Fixed(ctx.pod_name.clone()),
            "metadata.namespace" => EnvValue::Fixed(ctx.namespace.clone()),
            "status.podIP" => EnvValue::Runtime(RuntimeField::PodIp),
            "status.podIPs" => EnvValue::Runtime(RuntimeField::PodIps),
            "status.hostIP" => EnvValue::Runtime(RuntimeField::HostIp),
            "status.hostIPs" => EnvValue::Runtime(RuntimeField::HostIps),
            "spec.nodeName" => EnvValue::Runtime(RuntimeField::NodeName),
            _ => {
                if let Some(k) = bracket("metadata.labels['") {
                    EnvValue::Fixed(ctx.labels.get(&k).cloned().unwrap_or_default())
                } else if let Some(k) = bracket("metadata.annotations['") {
                    EnvValue::Fixed(ctx.annotations.get(&k).cloned().unwrap_or_default())
                } else {
                    return Err(ctx.err(
                        fp,
                        Some(path),
                        "supported: metadata.name, metadata.namespace, metadata.labels['K'], metadata.annotations['K'], spec.nodeName, status.podIP, status.podIPs, status.hostIP, status.hostIPs",
                    ));
                }
            }
        };
        return Ok(Some(value));
    }
    let (secret, r, field) = match (&s.config_map_key_ref, &s.secret_key_ref) {
        (Some(r), _) => (false, r, "configMapKeyRef"),
        (_, Some(r)) => (true, r, "secretKeyRef"),
        _ => unreachable!("counted above"),
    };
    let rp = format!("{vp}.{field}");
    let what = if secret { "Secret" } else { "ConfigMap" };
    let name = r
        .name
        .as_deref()
        .ok_or_else(|| ctx.err(format!("{rp}.name"), None, "missing"))?;
    let key = r
        .key
        .as_deref()
        .ok_or_else(|| ctx.err(format!("{rp}.key"), None, "missing"))?;
    let optional = r.optional == Some(true);
    let Some(obj) = ctx.object(secret, name) else {
        if optional {
            return Ok(None);
        }
        return Err(ctx.err(
            format!("{rp}.name"),
            Some(name),
            format!("no {what} of this name in the manifest file (and not optional)"),
        ));
    };
    let Some(bytes) = obj.data.get(key) else {
        if optional {
            return Ok(None);
        }
        return Err(ctx.err(
            format!("{rp}.key"),
            Some(key),
            format!("{what} {name} has no such key (and not optional)"),
        ));
    };
    let text = String::from_utf8(bytes.clone()).map_err(|_| {
        ctx.err(
            format!("{rp}.key"),
            Some(key),
            "the value is not UTF-8 text",
        )
    })?;
    Ok(Some(EnvValue::Fixed(text)))
}

fn quantity_reason(e: &QuantityError) -> String {
    match e {
        QuantityError::Empty => "empty quantity".into(),
        QuantityError::Syntax(_) => {
            "not a quantity (expected e.g. 100Mi, 1Gi, 500m, 0.5, 129e6)".into()
        }
        QuantityError::Suffix { suffix, .. } => format!(
            "unknown suffix {suffix:?} (binary: Ki Mi Gi Ti Pi Ei; decimal: n u m k M G T P E; exponent: e<N>)"
        ),
        QuantityError::Negative(_) => "must not be negative".into(),
        QuantityError::TooLarge(_) => "too large".into(),
    }
}

fn bytes(ctx: &Ctx<'_>, path: &str, q: &QuantityText) -> Result<u64> {
    Quantity::parse(&q.0)
        .and_then(|q| q.to_units())
        .map_err(|e| ctx.err(path, Some(&q.0), quantity_reason(&e)))
}

fn millis(ctx: &Ctx<'_>, path: &str, q: &QuantityText) -> Result<u64> {
    Quantity::parse(&q.0)
        .and_then(|q| q.to_millis())
        .map_err(|e| ctx.err(path, Some(&q.0), quantity_reason(&e)))
}

fn resources(ctx: &mut Ctx<'_>, r: Option<&manifest::Resources>, rp: &str) -> Result<Resources> {
    let Some(r) = r else {
        return Ok(Resources::default());
    };
    if r.claims.is_some() {
        return Err(ctx.err(format!("{rp}.claims"), None, "not supported"));
    }
    let mut out = Resources::default();
    for (section, map) in [("limits", &r.limits), ("requests", &r.requests)] {
        for (name, q) in map {
            let path = format!("{rp}.{section}.{name}");
            match name.as_str() {
                "memory" => {
                    let v = bytes(ctx, &path, q)?;
                    *if section == "limits" {
                        &mut out.memory_limit
                    } else {
                        &mut out.memory_request
                    } = Some(v);
                }
                "cpu" => {
                    let v = millis(ctx, &path, q)?;
                    *if section == "limits" {
                        &mut out.cpu_limit_millis
                    } else {
                        &mut out.cpu_request_millis
                    } = Some(v);
                }
                "ephemeral-storage" => {
                    bytes(ctx, &path, q)?;
                    ctx.ignored.push(path);
                }
                other => {
                    return Err(ctx.err(&path, Some(&q.0), format!("resource {other:?} not supported (cpu, memory; ephemeral-storage is ignored)")));
                }
            }
        }
    }
    if let (Some(l), Some(q)) = (out.memory_limit, out.memory_request)
        && q > l
    {
        return Err(ctx.err(
            format!("{rp}.requests.memory"),
            Some(&r.requests["memory"].0),
            format!(
                "must be less than or equal to the memory limit {}",
                r.limits["memory"].0
            ),
        ));
    }
    if let (Some(l), Some(q)) = (out.cpu_limit_millis, out.cpu_request_millis)
        && q > l
    {
        return Err(ctx.err(
            format!("{rp}.requests.cpu"),
            Some(&r.requests["cpu"].0),
            format!(
                "must be less than or equal to the cpu limit {}",
                r.limits["cpu"].0
            ),
        ));
    }
    // Kubernetes defaults a missing request to the limit.
    out.memory_request = out.memory_request.or(out.memory_limit);
    out.cpu_request_millis = out.cpu_request_millis.or(out.cpu_limit_millis);
    Ok(out)
}

fn capability(ctx: &Ctx<'_>, path: &str, name: &str) -> Result<String> {
    let upper = name.to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if capability_number(&full).is_none() {
        return Err(ctx.err(
            path,
            Some(name),
            "unknown capability (see capabilities(7); written without CAP_, e.g. NET_ADMIN)",
        ));
    }
    Ok(full)
}

fn security(
    ctx: &mut Ctx<'_>,
    c: Option<&manifest::SecurityContext>,
    pod: &manifest::PodSecurityContext,
    fs_group: Option<u32>,
    cp: &str,
) -> Result<SecurityContext> {
    let default = manifest::SecurityContext::default();
    let c = c.unwrap_or(&default);
    let sp = format!("{cp}.securityContext");
    c.ignored_fields(&format!("{sp}."), &mut ctx.ignored);
    if c.privileged == Some(true) {
        return Err(ctx.err(
            format!("{sp}.privileged"),
            Some("true"),
            "not supported: add the capabilities the container needs instead",
        ));
    }
    match c.proc_mount.as_deref() {
        None | Some("Default") => {}
        Some(other) => {
            return Err(ctx.err(
                format!("{sp}.procMount"),
                Some(other),
                "not supported (Default only)",
            ));
        }
    }
    // Container level wins over pod level, field by field.
    let (uid, uid_path) = match c.run_as_user {
        Some(u) => (Some(u), format!("{sp}.runAsUser")),
        None => (
            pod.run_as_user,
            format!(
                "{}.securityContext.runAsUser",
                cp.rsplit_once('.').map_or("spec", |(a, _)| a)
            ),
        ),
    };
    let run_as_user = id(ctx, &uid_path, uid)?;
    let run_as_group = match c.run_as_group {
        Some(g) => id(ctx, &format!("{sp}.runAsGroup"), Some(g))?,
        None => id(
            ctx,
            &uid_path.replace("runAsUser", "runAsGroup"),
            pod.run_as_group,
        )?,
    };
    let run_as_non_root = c.run_as_non_root.or(pod.run_as_non_root).unwrap_or(false);
    if run_as_non_root {
        match run_as_user {
            Some(0) => {
                return Err(ctx.err(
                    uid_path,
                    Some("0"),
                    "runAsNonRoot is set but the container would run as root",
                ));
            }
            None => {
                return Err(ctx.err(
                    format!("{sp}.runAsNonRoot"),
                    Some("true"),
                    "needs runAsUser: host binaries have no image USER, so the container would run as root",
                ));
            }
            Some(_) => {}
        }
    }
    let mut supplemental_groups = Vec::new();
    for (i, g) in pod.supplemental_groups.iter().enumerate() {
        let gp = format!(
            "{}.securityContext.supplementalGroups[{i}]",
            cp.rsplit_once('.').map_or("spec", |(a, _)| a)
        );
        if let Some(g) = id(ctx, &gp, Some(*g))? {
            supplemental_groups.push(g);
        }
    }
    if let Some(g) = fs_group
        && !supplemental_groups.contains(&g)
    {
        supplemental_groups.push(g);
    }
    let mut caps = Capabilities::default();
    if let Some(cap) = &c.capabilities {
        for (i, n) in cap.add.iter().enumerate() {
            caps.add
                .push(capability(ctx, &format!("{sp}.capabilities.add[{i}]"), n)?);
        }
        for (i, n) in cap.drop.iter().enumerate() {
            caps.drop
                .push(capability(ctx, &format!("{sp}.capabilities.drop[{i}]"), n)?);
        }
    }
    let allow_privilege_escalation = c.allow_privilege_escalation.unwrap_or(true);
    if !allow_privilege_escalation && caps.add.iter().any(|c| c == "CAP_SYS_ADMIN" || c == "ALL") {
        return Err(ctx.err(
            format!("{sp}.allowPrivilegeEscalation"),
            Some("false"),
            "cannot be false while adding CAP_SYS_ADMIN",
        ));
    }
    Ok(SecurityContext {
        run_as_user,
        run_as_group,
        run_as_non_root,
        supplemental_groups,
        allow_privilege_escalation,
        capabilities: caps,
        read_only_root_filesystem: c.read_only_root_filesystem.unwrap_or(false),
    })
}

fn resolve_port(
    ctx: &Ctx<'_>,
    path: &str,
    port: Option<&IntOrString>,
    ports: &[Port],
) -> Result<u16> {
    match port {
        None => Err(ctx.err(path, None, "missing")),
        Some(IntOrString::Int(n)) => {
            if (1..=65535).contains(n) {
                Ok(u16::try_from(*n).unwrap_or_default())
            } else {
                Err(ctx.err(path, Some(&n.to_string()), "must be between 1 and 65535"))
            }
        }
        Some(IntOrString::String(name)) => ports
            .iter()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port)
            .ok_or_else(|| {
                ctx.err(
                    path,
                    Some(name),
                    "no containerPort of this name in the container's ports",
                )
            }),
    }
}

fn http_get(
    ctx: &Ctx<'_>,
    h: &manifest::HttpGetAction,
    hp: &str,
    ports: &[Port],
) -> Result<Handler> {
    match h.scheme.as_deref() {
        None | Some("HTTP") => {}
        Some(other) => {
            return Err(ctx.err(
                format!("{hp}.scheme"),
                Some(other),
                "not supported (HTTP only)",
            ));
        }
    }
    let port = resolve_port(ctx, &format!("{hp}.port"), h.port.as_ref(), ports)?;
    let mut path = h.path.clone().unwrap_or_else(|| "/".into());
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let mut headers = Vec::new();
    for (i, hd) in h.http_headers.iter().enumerate() {
        let name = hd
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ctx.err(format!("{hp}.httpHeaders[{i}].name"), None, "missing"))?;
        headers.push((name.to_owned(), hd.value.clone().unwrap_or_default()));
    }
    Ok(Handler::HttpGet {
        host: h.host.clone().filter(|h| !h.is_empty()),
        port,
        path,
        headers,
    })
}

fn exec(ctx: &Ctx<'_>, e: &manifest::ExecAction, ep: &str) -> Result<Handler> {
    match &e.command {
        Some(c) if !c.is_empty() => Ok(Handler::Exec { command: c.clone() }),
        _ => Err(ctx.err(format!("{ep}.command"), None, "missing")),
    }
}

fn probe(
    ctx: &Ctx<'_>,
    p: &manifest::Probe,
    pp: &str,
    ports: &[Port],
    liveness_like: bool,
) -> Result<Probe> {
    if p.grpc.is_some() {
        return Err(ctx.err(
            format!("{pp}.grpc"),
            None,
            "not supported (exec, httpGet, tcpSocket)",
        ));
    }
    let n = [
        p.exec.is_some(),
        p.http_get.is_some(),
        p.tcp_socket.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if n != 1 {
        return Err(ctx.err(pp, None, "needs exactly one of exec, httpGet and tcpSocket"));
    }
    let handler = if let Some(e) = &p.exec {
        exec(ctx, e, &format!("{pp}.exec"))?
    } else if let Some(h) = &p.http_get {
        http_get(ctx, h, &format!("{pp}.httpGet"), ports)?
    } else if let Some(t) = &p.tcp_socket {
        Handler::TcpSocket {
            host: t.host.clone().filter(|h| !h.is_empty()),
            port: resolve_port(ctx, &format!("{pp}.tcpSocket.port"), t.port.as_ref(), ports)?,
        }
    } else {
        unreachable!("counted above")
    };
    // 0 means "use the default", as Kubernetes' defaulting does.
    let field = |name: &str, v: Option<i64>, default: u32| -> Result<u32> {
        match v {
            None | Some(0) => Ok(default),
            Some(n) if n > 0 => u32::try_from(n)
                .map_err(|_| ctx.err(format!("{pp}.{name}"), Some(&n.to_string()), "too large")),
            Some(n) => Err(ctx.err(format!("{pp}.{name}"), Some(&n.to_string()), "must be >= 0")),
        }
    };
    let initial_delay = field("initialDelaySeconds", p.initial_delay_seconds, 0)?;
    let timeout = field("timeoutSeconds", p.timeout_seconds, 1)?;
    let period = field("periodSeconds", p.period_seconds, 10)?;
    let success_threshold = field("successThreshold", p.success_threshold, 1)?;
    let failure_threshold = field("failureThreshold", p.failure_threshold, 3)?;
    if liveness_like && success_threshold != 1 {
        return Err(ctx.err(
            format!("{pp}.successThreshold"),
            Some(&success_threshold.to_string()),
            "must be 1 for liveness and startup probes",
        ));
    }
    let termination_grace_period = match p.termination_grace_period_seconds {
        None => None,
        Some(_) if !liveness_like => {
            return Err(ctx.err(
                format!("{pp}.terminationGracePeriodSeconds"),
                None,
                "only liveness and startup probes have it",
            ));
        }
        Some(n) if n > 0 => Some(Duration::from_secs(n.unsigned_abs())),
        Some(n) => {
            return Err(ctx.err(
                format!("{pp}.terminationGracePeriodSeconds"),
                Some(&n.to_string()),
                "must be > 0",
            ));
        }
    };
    Ok(Probe {
        handler,
        initial_delay: Duration::from_secs(initial_delay.into()),
        timeout: Duration::from_secs(timeout.into()),
        period: Duration::from_secs(period.into()),
        success_threshold,
        failure_threshold,
        termination_grace_period,
    })
}

fn lifecycle_handler(
    ctx: &Ctx<'_>,
    h: &manifest::LifecycleHandler,
    hp: &str,
    ports: &[Port],
) -> Result<Handler> {
    if h.tcp_socket.is_some() {
        return Err(ctx.err(
            format!("{hp}.tcpSocket"),
            None,
            "not supported (deprecated in Kubernetes): use exec, httpGet or sleep",
        ));
    }
    let n = [h.exec.is_some(), h.http_get.is_some(), h.sleep.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if n != 1 {
        return Err(ctx.err(hp, None, "needs exactly one of exec, httpGet and sleep"));
    }
    if let Some(e) = &h.exec {
        exec(ctx, e, &format!("{hp}.exec"))
    } else if let Some(g) = &h.http_get {
        http_get(ctx, g, &format!("{hp}.httpGet"), ports)
    } else {
        let s = h.sleep.as_ref().and_then(|s| s.seconds);
        match s {
            Some(n) if n >= 0 => Ok(Handler::Sleep {
                duration: Duration::from_secs(n.unsigned_abs()),
            }),
            Some(n) => Err(ctx.err(
                format!("{hp}.sleep.seconds"),
                Some(&n.to_string()),
                "must be >= 0",
            )),
            None => Err(ctx.err(format!("{hp}.sleep.seconds"), None, "missing")),
        }
    }
}
