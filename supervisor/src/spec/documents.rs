//! The file's documents: picks the one pod (a `Pod`, or the template of a
//! Deployment, ReplicaSet, StatefulSet, DaemonSet or Job), refuses the
//! workload fields that would change what runs, reads a Job's controller
//! fields ([`super::job`]), decodes the ConfigMaps and Secrets the pod may
//! reference, publishes the ports of the Services that select it
//! ([`super::service`]), and gives every error found afterwards its line
//! and column. What the pod itself holds is checked in
//! [`super::pod`] and the modules beside it.

use std::collections::BTreeMap;

use super::job::{self, JobSpec};
use super::names::{check_label, check_name};
use super::service::{self, SelectedPod};
use super::{Ctx, DataKind, DataObject, DocRef, LoadedPod, ManifestError, Result, invalid, pod};
use crate::manifest::{self, IgnoredFields, Object};

/// Entry point behind [`super::load_str`].
pub(super) fn build(file: &str, text: &str) -> Result<LoadedPod> {
    let docs = manifest::parse_stream(file, text)?;
    build_docs(file, &docs).map_err(|mut e| {
        // Point at the field in the file, now that the error knows it.
        e.fill_location(|index, path| {
            let d = docs.iter().find(|d| d.doc.index == index)?;
            d.locate(path)
        });
        e
    })
}

/// Where the pod of the file is: its document, metadata, spec, the path
/// prefix of its spec and, for a workload, the template's metadata.
struct PodSource<'a> {
    doc: DocRef,
    meta: &'a manifest::ObjectMeta,
    spec: Option<&'a manifest::PodSpec>,
    base: &'static str,
    template_meta: Option<&'a manifest::ObjectMeta>,
    /// A Job's controller fields.
    job: Option<JobSpec>,
}

fn build_docs(file: &str, docs: &[manifest::Document]) -> Result<LoadedPod> {
    let mut warnings = Vec::new();
    let mut configmaps = BTreeMap::new();
    let mut secrets = BTreeMap::new();
    let mut pod: Option<(DocRef, &Object)> = None;
    let mut other_kinds = Vec::new();
    let mut services = Vec::new();
    // Every document that is not a pod, ConfigMap or Secret, in order.
    let mut listed = Vec::new();
    let mut ignored = Vec::new();
    for d in docs {
        match &d.object {
            Object::ConfigMap(cm) => {
                let kind = DataKind::ConfigMap;
                let name = data_object_name(file, &d.doc, kind, &cm.metadata, cm, &mut ignored)?;
                let object = config_map(file, &d.doc, cm)?;
                insert_unique(file, &d.doc, kind, name, object, &mut configmaps)?;
            }
            Object::Secret(s) => {
                let kind = DataKind::Secret;
                let name = data_object_name(file, &d.doc, kind, &s.metadata, s, &mut ignored)?;
                let object = secret(file, &d.doc, s)?;
                insert_unique(file, &d.doc, kind, name, object, &mut secrets)?;
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
            Object::Service(svc) => {
                listed.push(describe(&d.doc));
                services.push((d.doc.clone(), svc.as_ref()));
            }
            Object::Other => {
                listed.push(describe(&d.doc));
                other_kinds.push(describe(&d.doc));
            }
        }
    }
    let Some((doc, object)) = pod else {
        return Err(ManifestError::NoPod {
            file: file.to_owned(),
            ignored: listed,
        });
    };
    let source = pod_source(file, doc, object, &mut warnings, &mut ignored)?;
    let PodSource {
        doc,
        meta,
        spec,
        base,
        template_meta,
        job,
    } = source;
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
    // Both are DNS labels by now: a PodId.
    let pod_uid = crate::paths::PodId::new(&namespace, &name)
        .map(|id| id.uid())
        .unwrap_or_default();
    let container_names = spec
        .init_containers
        .iter()
        .chain(&spec.containers)
        .filter_map(|c| c.name.clone())
        .collect();
    let mut ctx = Ctx {
        file,
        doc,
        namespace,
        configmaps: &configmaps,
        secrets: &secrets,
        pod_name: name,
        pod_uid,
        container_names,
        labels,
        annotations,
        ignored,
        warnings: Vec::new(),
    };
    let mut pod = pod::pod_spec(&mut ctx, spec, &format!("{base}spec"))?;
    pod.job = job;
    let selected = SelectedPod {
        namespace: &pod.namespace,
        labels: &pod.labels,
        containers: pod.all_containers().collect(),
        host_network: pod.host_network,
        host_ports: pod
            .all_containers()
            .flat_map(|c| &c.ports)
            .filter_map(|p| Some((p.host_port?, p.protocol)))
            .collect(),
    };
    let published = service::published(
        file,
        &services,
        &selected,
        &mut ctx.warnings,
        &mut ctx.ignored,
    )?;
    pod.service_ports = published.ports;
    other_kinds.extend(published.ignored);
    if !other_kinds.is_empty() {
        warnings.push(format!(
            "{file}: ignored (not run by a single-host supervisor): {}",
            other_kinds.join(", ")
        ));
    }
    warnings.append(&mut ctx.warnings);
    if !ctx.ignored.is_empty() {
        warnings.push(format!(
            "{file}: ignored (no meaning on a single host): {}",
            ctx.ignored.join(", ")
        ));
    }
    Ok(LoadedPod { pod, warnings })
}

/// The pod of a `Pod` document, or the template of a workload after its
/// workload-level checks.
fn pod_source<'a>(
    file: &str,
    doc: DocRef,
    object: &'a Object,
    warnings: &mut Vec<String>,
    ignored: &mut Vec<String>,
) -> Result<PodSource<'a>> {
    let w = match object {
        Object::Pod(p) => {
            return Ok(PodSource {
                doc,
                meta: &p.metadata,
                spec: p.spec.as_ref(),
                base: "",
                template_meta: None,
                job: None,
            });
        }
        Object::Workload(w) => w,
        _ => unreachable!("only pods and workloads are kept"),
    };
    let refuse = |path: &str, value: Option<String>, reason: String| {
        invalid(file, &doc, path, value, reason)
    };
    let kind = doc.kind.as_deref().unwrap_or_default();
    let ws = w.spec.as_ref().ok_or_else(|| {
        refuse(
            "spec",
            None,
            "missing: a workload needs spec.template".into(),
        )
    })?;
    ws.ignored_fields("spec.", ignored);
    let job = if kind == "Job" {
        Some(job::job_spec(file, &doc, ws)?)
    } else {
        if ws.active_deadline_seconds.is_some() {
            return Err(refuse(
                "spec.activeDeadlineSeconds",
                None,
                format!("not supported: {kind} has no deadline (a Job has)"),
            ));
        }
        // Job fields on another kind: no meaning, as before.
        for (present, field) in [
            (ws.completions.is_some(), "completions"),
            (ws.parallelism.is_some(), "parallelism"),
            (ws.backoff_limit.is_some(), "backoffLimit"),
            (ws.suspend.is_some(), "suspend"),
            (ws.pod_failure_policy.is_some(), "podFailurePolicy"),
            (ws.success_policy.is_some(), "successPolicy"),
            (ws.backoff_limit_per_index.is_some(), "backoffLimitPerIndex"),
            (ws.max_failed_indexes.is_some(), "maxFailedIndexes"),
        ] {
            if present {
                ignored.push(format!("spec.{field}"));
            }
        }
        None
    };
    if ws
        .volume_claim_templates
        .as_ref()
        .is_some_and(|v| !v.is_empty())
    {
        return Err(refuse(
            "spec.volumeClaimTemplates",
            None,
            "not supported: no persistent volumes on a single host".into(),
        ));
    }
    match ws.replicas {
        Some(r) if r < 0 => {
            return Err(refuse(
                "spec.replicas",
                Some(r.to_string()),
                "must be >= 0".into(),
            ));
        }
        Some(r) if r != 1 => warnings.push(format!(
            "{file}: {doc}: spec.replicas is {r}; a single-host supervisor runs exactly one pod"
        )),
        _ => {}
    }
    // No replicas field in Kubernetes for these.
    if (kind == "DaemonSet" || kind == "Job") && ws.replicas.is_some() {
        return Err(refuse(
            "spec.replicas",
            None,
            format!("{kind} has no replicas field"),
        ));
    }
    let t = ws.template.as_ref().ok_or_else(|| {
        refuse(
            "spec.template",
            None,
            "missing: a workload needs a pod template".into(),
        )
    })?;
    Ok(PodSource {
        doc,
        meta: &w.metadata,
        spec: t.spec.as_ref(),
        base: "spec.template.",
        template_meta: Some(&t.metadata),
        job,
    })
}

/// `Kind name` of a document, for the ignored-kinds lists.
fn describe(doc: &DocRef) -> String {
    let kind = doc.kind.clone().unwrap_or_default();
    match &doc.name {
        Some(n) => format!("{kind} {n}"),
        None => kind,
    }
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

/// The name of a ConfigMap or Secret; its ignored fields are reported
/// under `(Kind name) `.
fn data_object_name(
    file: &str,
    doc: &DocRef,
    kind: DataKind,
    meta: &manifest::ObjectMeta,
    object: &dyn IgnoredFields,
    ignored: &mut Vec<String>,
) -> Result<String> {
    let name = object_name(file, doc, meta)?;
    let prefix = format!("({kind} {name}) ");
    meta.ignored_fields(&format!("{prefix}metadata."), ignored);
    object.ignored_fields(&prefix, ignored);
    Ok(name)
}

/// Files a decoded ConfigMap or Secret under its name, unique per kind.
fn insert_unique(
    file: &str,
    doc: &DocRef,
    kind: DataKind,
    name: String,
    object: DataObject,
    into: &mut BTreeMap<String, DataObject>,
) -> Result<()> {
    if into.contains_key(&name) {
        return Err(invalid(
            file,
            doc,
            "metadata.name",
            Some(name),
            format!("a second {kind} with this name"),
        ));
    }
    into.insert(name, object);
    Ok(())
}

fn config_map(file: &str, doc: &DocRef, cm: &manifest::ConfigMap) -> Result<DataObject> {
    let mut data = BTreeMap::new();
    for (k, v) in &cm.data {
        check_data_key(file, doc, &format!("data.{k}"), k)?;
        data.insert(k.clone(), v.clone().into_bytes());
    }
    for (k, v) in &cm.binary_data {
        let path = format!("binaryData.{k}");
        let bytes = base64_entry(file, doc, &path, k, v)?;
        if data.insert(k.clone(), bytes).is_some() {
            return Err(invalid(file, doc, path, None, "the key is also in data"));
        }
    }
    Ok(DataObject {
        namespace: cm.metadata.namespace.clone(),
        type_: None,
        data,
    })
}

fn secret(file: &str, doc: &DocRef, s: &manifest::Secret) -> Result<DataObject> {
    let mut data = BTreeMap::new();
    for (k, v) in &s.data {
        let bytes = base64_entry(file, doc, &format!("data.{k}"), k, v)?;
        data.insert(k.clone(), bytes);
    }
    for (k, v) in &s.string_data {
        check_data_key(file, doc, &format!("stringData.{k}"), k)?;
        data.insert(k.clone(), v.clone().into_bytes());
    }
    Ok(DataObject {
        namespace: s.metadata.namespace.clone(),
        type_: s.type_.clone(),
        data,
    })
}

/// A base64 entry (`binaryData`, a Secret's `data`): its key checked and
/// its value decoded.
fn base64_entry(file: &str, doc: &DocRef, path: &str, key: &str, value: &str) -> Result<Vec<u8>> {
    check_data_key(file, doc, path, key)?;
    base64_decode(value).map_err(|r| invalid(file, doc, path, None, r))
}

fn check_data_key(file: &str, doc: &DocRef, path: &str, key: &str) -> Result<()> {
    check_name(
        file,
        doc,
        path,
        key,
        is_data_key,
        "a key must consist of alphanumerics, '-', '_' or '.' (and not be '.' or start with '..')",
    )
}

/// ConfigMap/Secret keys: `[-._a-zA-Z0-9]+`, at most 253, not `.`, not
/// starting with `..` (Kubernetes' `IsConfigMapKey`: a volume's
/// `..data` and timestamped dirs are the AtomicWriter's).
fn is_data_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key != "."
        && !key.starts_with("..")
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
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
