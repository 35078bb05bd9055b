//! The downward API: the pod's own fields and its containers' resources as
//! values, for env `valueFrom.fieldRef`/`resourceFieldRef` and for the
//! items of `downwardAPI` volumes and projections.
//!
//! Field values known when the manifest is read (name, namespace, uid,
//! labels, annotations) are taken here; a [`ResourceRef`] keeps the
//! container's amount and is turned into text once the node's allocatable
//! resources are known ([`NodeAllocatable`]), because an unset limit
//! reads as the node's, as kubelet's `MergeContainerResourceLimits`
//! (pkg/api/v1/resource/helpers.go) makes it.

use std::collections::BTreeMap;

use super::container::Container;
use super::env::EnvValue;
use super::resources::ContainerResources;
use super::volumes::{FileContent, Volume, VolumeSource};
use super::{Ctx, Result};
use crate::manifest;
use crate::quantity;

/// What the node offers, as kubelet's `Node.Status.Allocatable` (no
/// reservations here: its capacity): what an unset limit reads as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeAllocatable {
    /// Online CPUs, in millicores (cadvisor's `NumCores`).
    pub cpu_millis: u64,
    /// `MemTotal` of /proc/meminfo, in bytes.
    pub memory_bytes: u64,
    /// The size of the filesystem holding the pods' state, in bytes
    /// (kubelet: the filesystem of its root dir).
    pub ephemeral_storage_bytes: u64,
}

/// One of the resources a `resourceFieldRef` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceName {
    /// `limits.cpu`.
    LimitsCpu,
    /// `limits.memory`.
    LimitsMemory,
    /// `limits.ephemeral-storage`.
    LimitsEphemeralStorage,
    /// `requests.cpu`.
    RequestsCpu,
    /// `requests.memory`.
    RequestsMemory,
    /// `requests.ephemeral-storage`.
    RequestsEphemeralStorage,
}

impl ResourceName {
    const ALL: [(&'static str, ResourceName); 6] = [
        ("limits.cpu", ResourceName::LimitsCpu),
        ("limits.memory", ResourceName::LimitsMemory),
        (
            "limits.ephemeral-storage",
            ResourceName::LimitsEphemeralStorage,
        ),
        ("requests.cpu", ResourceName::RequestsCpu),
        ("requests.memory", ResourceName::RequestsMemory),
        (
            "requests.ephemeral-storage",
            ResourceName::RequestsEphemeralStorage,
        ),
    ];

    fn is_cpu(self) -> bool {
        matches!(self, ResourceName::LimitsCpu | ResourceName::RequestsCpu)
    }

    fn is_limit(self) -> bool {
        matches!(
            self,
            ResourceName::LimitsCpu
                | ResourceName::LimitsMemory
                | ResourceName::LimitsEphemeralStorage
        )
    }

    /// The amount in `r` (millicores for cpu, else bytes); `None` when
    /// unset.
    fn of(self, r: &ContainerResources) -> Option<u64> {
        match self {
            ResourceName::LimitsCpu => r.limits.cpu_limit_millis,
            ResourceName::LimitsMemory => r.limits.memory_limit_bytes,
            ResourceName::LimitsEphemeralStorage => r.ephemeral_storage_limit_bytes,
            ResourceName::RequestsCpu => r.limits.cpu_request_millis,
            ResourceName::RequestsMemory => r.memory_request_bytes,
            ResourceName::RequestsEphemeralStorage => r.ephemeral_storage_request_bytes,
        }
    }
}

/// A `resourceFieldRef`: a container's limit or request in units of
/// `divisor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRef {
    /// The container whose resources are read.
    pub container: String,
    /// Which resource.
    pub resource: ResourceName,
    /// The divisor, in millicores for cpu, else in bytes (never 0).
    pub divisor: u64,
    /// The container's amount (millicores or bytes), filled in once every
    /// container is validated; `None` when unset.
    pub amount: Option<u64>,
}

impl ResourceRef {
    /// The value as kubelet's `ExtractContainerResourceValue` writes it:
    /// `ceil(amount / divisor)` in decimal, an unset (or zero) limit being
    /// the node's allocatable amount and an unset request 0.
    pub fn value(&self, node: &NodeAllocatable) -> String {
        let amount = match self.amount {
            Some(a) if a > 0 || !self.resource.is_limit() => a,
            _ if self.resource.is_limit() => match self.resource {
                ResourceName::LimitsCpu => node.cpu_millis,
                ResourceName::LimitsMemory => node.memory_bytes,
                _ => node.ephemeral_storage_bytes,
            },
            _ => 0,
        };
        amount.div_ceil(self.divisor.max(1)).to_string()
    }
}

/// A `resourceFieldRef` at `rp`. `default_container` is the container
/// whose env holds it (env); a volume item names its container
/// (`containerName` is required there, as in Kubernetes' validation).
pub(super) fn resource_ref(
    ctx: &Ctx<'_>,
    r: &manifest::ResourceFieldRef,
    rp: &str,
    default_container: Option<&str>,
) -> Result<ResourceRef> {
    let cp = format!("{rp}.containerName");
    let container = match (r.container_name.as_deref(), default_container) {
        (Some(name), _) if !name.is_empty() => {
            if !ctx.container_names.iter().any(|c| c == name) {
                return Err(ctx.err(cp, Some(name), "no container of this name in the pod"));
            }
            name.to_owned()
        }
        (_, Some(own)) => own.to_owned(),
        (_, None) => return Err(ctx.err(cp, None, "missing")),
    };
    let field = format!("{rp}.resource");
    let text = r
        .resource
        .as_deref()
        .ok_or_else(|| ctx.err(&field, None, "missing"))?;
    let Some(resource) = ResourceName::ALL
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, r)| *r)
    else {
        return Err(ctx.err(
            field,
            Some(text),
            "supported: limits.cpu, limits.memory, limits.ephemeral-storage, requests.cpu, requests.memory, requests.ephemeral-storage",
        ));
    };
    let divisor = match &r.divisor {
        None => None,
        Some(q) => divisor(ctx, &format!("{rp}.divisor"), &q.0, resource)?,
    };
    let divisor = divisor.unwrap_or(if resource.is_cpu() { 1000 } else { 1 });
    Ok(ResourceRef {
        container,
        resource,
        divisor,
        amount: None,
    })
}

/// The divisors Kubernetes' validation accepts
/// (`validateContainerResourceDivisor`): `1m` and `1` for cpu; `1`, the
/// decimal and the binary units for memory and ephemeral-storage. A zero
/// divisor is no divisor (`1`), as kubelet reads it.
fn divisor(ctx: &Ctx<'_>, path: &str, text: &str, resource: ResourceName) -> Result<Option<u64>> {
    let parsed =
        quantity::Quantity::parse(text).map_err(|e| ctx.err(path, Some(text), e.to_string()))?;
    if parsed.is_zero() {
        return Ok(None);
    }
    if resource.is_cpu() {
        match parsed.to_millis() {
            Ok(m @ (1 | 1000)) if !parsed.is_negative() => Ok(Some(m)),
            _ => Err(ctx.err(
                path,
                Some(text),
                "only divisor's values 1m and 1 are supported with the cpu resource",
            )),
        }
    } else {
        let units: Vec<u64> = (0..=6)
            .map(|e| 1000u64.pow(e))
            .chain((1..=6).map(|e| 1u64 << (10 * e)))
            .collect();
        match parsed.to_units() {
            Ok(b) if units.contains(&b) && parsed.to_millis().ok() == b.checked_mul(1000) => {
                Ok(Some(b))
            }
            _ => Err(ctx.err(
                path,
                Some(text),
                "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory and ephemeral-storage resources",
            )),
        }
    }
}

/// Fill in the amounts of every `resourceFieldRef` of the pod, in env and
/// in volume items, from its validated containers (each name was checked
/// against the manifest's containers).
pub(super) fn fill(volumes: &mut [Volume], init: &mut [Container], regular: &mut [Container]) {
    let resources: Vec<(String, ContainerResources)> = init
        .iter()
        .chain(regular.iter())
        .map(|c| (c.name.clone(), c.resources))
        .collect();
    let amount = |r: &ResourceRef| {
        resources
            .iter()
            .find(|(name, _)| *name == r.container)
            .and_then(|(_, res)| r.resource.of(res))
    };
    for volume in volumes {
        if let VolumeSource::Files { files, .. } = &mut volume.source {
            for file in files {
                if let FileContent::Resource(r) = &mut file.content {
                    r.amount = amount(r);
                }
            }
        }
    }
    for c in init.iter_mut().chain(regular.iter_mut()) {
        for var in &mut c.env {
            if let EnvValue::Resource(r) = &mut var.value {
                r.amount = amount(r);
            }
        }
    }
}

/// A pod field a downwardAPI volume item may name (Kubernetes'
/// `validVolumeDownwardAPIFieldPathExpressions`): its text now.
pub(super) fn volume_field(ctx: &Ctx<'_>, f: &manifest::FieldRef, fp: &str) -> Result<String> {
    let path = field_path(ctx, f, fp)?;
    if let Some(value) = static_field(ctx, path) {
        return Ok(value);
    }
    Ok(match path {
        "metadata.labels" => format_map(ctx.labels),
        "metadata.annotations" => format_map(ctx.annotations),
        _ => {
            return Err(ctx.err(
                format!("{fp}.fieldPath"),
                Some(path),
                "supported in a volume: metadata.name, metadata.namespace, metadata.uid, metadata.labels, metadata.annotations, metadata.labels['K'], metadata.annotations['K']",
            ));
        }
    })
}

/// `fieldRef.fieldPath` at `fp` (with `apiVersion` v1 when given).
pub(super) fn field_path<'f>(
    ctx: &Ctx<'_>,
    f: &'f manifest::FieldRef,
    fp: &str,
) -> Result<&'f str> {
    if let Some(api) = f.api_version.as_deref().filter(|a| *a != "v1") {
        return Err(ctx.err(format!("{fp}.apiVersion"), Some(api), "must be v1"));
    }
    f.field_path
        .as_deref()
        .ok_or_else(|| ctx.err(format!("{fp}.fieldPath"), None, "missing"))
}

/// The pod fields whose value is known from the manifest alone:
/// `metadata.name`, `.namespace`, `.uid` (the pod's name-based uid, see
/// [`crate::paths::PodId::uid`]), one label or annotation.
pub(super) fn static_field(ctx: &Ctx<'_>, path: &str) -> Option<String> {
    let bracket = |prefix: &str| path.strip_prefix(prefix)?.strip_suffix("']");
    match path {
        "metadata.name" => Some(ctx.pod_name.clone()),
        "metadata.namespace" => Some(ctx.namespace.clone()),
        "metadata.uid" => Some(ctx.pod_uid.clone()),
        _ => {
            if let Some(k) = bracket("metadata.labels['") {
                Some(ctx.labels.get(k).cloned().unwrap_or_default())
            } else {
                bracket("metadata.annotations['")
                    .map(|k| ctx.annotations.get(k).cloned().unwrap_or_default())
            }
        }
    }
}

/// Labels or annotations as kubelet writes them in a downwardAPI file
/// (pkg/fieldpath/fieldpath.go `FormatMap`): `key="value"` lines sorted by
/// key, the value quoted as Go's `%q`, no newline after the last.
pub fn format_map(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Go's `strconv.Quote`: printable characters as they are, `"` and `\`
/// escaped, the usual C escapes, other control characters as `\xNN`,
/// `\uNNNN` or `\UNNNNNNNN`.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                if (c as u32) <= 0xffff {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(resource: ResourceName, divisor: u64, amount: Option<u64>) -> ResourceRef {
        ResourceRef {
            container: "c".into(),
            resource,
            divisor,
            amount,
        }
    }

    const NODE: NodeAllocatable = NodeAllocatable {
        cpu_millis: 4000,
        memory_bytes: 8 << 30,
        ephemeral_storage_bytes: 100 << 30,
    };

    /// kubelet's convertResourceCPUToString / convertResourceMemoryToString:
    /// ceil(amount / divisor).
    #[test]
    fn values_round_up_by_the_divisor() {
        use ResourceName::*;
        let cases = [
            (LimitsCpu, 1000, Some(250), "1"),
            (LimitsCpu, 1, Some(250), "250"),
            (LimitsCpu, 1000, Some(1001), "2"),
            (RequestsCpu, 1000, Some(2000), "2"),
            (LimitsMemory, 1 << 20, Some(64 << 20), "64"),
            (LimitsMemory, 1 << 20, Some((64 << 20) + 1), "65"),
            (LimitsMemory, 1_000_000, Some(64 << 20), "68"),
            (RequestsMemory, 1, Some(12345), "12345"),
            // An unset limit is the node's; an unset request is 0.
            (LimitsCpu, 1000, None, "4"),
            (LimitsCpu, 1000, Some(0), "4"),
            (LimitsMemory, 1 << 30, None, "8"),
            (LimitsEphemeralStorage, 1 << 30, None, "100"),
            (RequestsCpu, 1, None, "0"),
            (RequestsMemory, 1, None, "0"),
        ];
        for (resource, divisor, amount, want) in cases {
            assert_eq!(
                reference(resource, divisor, amount).value(&NODE),
                want,
                "{resource:?} {divisor} {amount:?}"
            );
        }
    }

    #[test]
    fn maps_are_written_as_kubelet_formats_them() {
        let map: BTreeMap<String, String> =
            [("b", "two words"), ("a", "x\"y\\z\n\u{1}é"), ("c", "")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        assert_eq!(
            format_map(&map),
            "a=\"x\\\"y\\\\z\\n\\x01é\"\nb=\"two words\"\nc=\"\""
        );
        assert_eq!(format_map(&BTreeMap::new()), "");
    }
}
