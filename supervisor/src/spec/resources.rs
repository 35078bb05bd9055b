//! A container's resources: [`ContainerResources`] and its validator.
//! Quantities are parsed by [`crate::quantity`], whose error carries its
//! own reason; limits land in a [`container::Limits`] that the runtime
//! applies to the container's cgroup as it is, so the value travels one
//! way: manifest text -> here -> `Limits` -> cgroup. Requests above their
//! limits are refused; a missing request defaults to the limit.

use std::collections::BTreeMap;

use super::{Ctx, ManifestError, Result};
use crate::manifest::{self, QuantityText};
use crate::quantity;

/// Resources of one container. A request without a limit only weighs
/// (cpu shares); a limit without a request sets the request to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerResources {
    /// What the container's cgroup gets: memory and CPU limits, and the
    /// CPU request as its weight.
    pub limits: container::Limits,
    /// Memory request in bytes (it changes no cgroup file).
    pub memory_request_bytes: Option<u64>,
    /// `limits.ephemeral-storage` in bytes: the size of the container's
    /// writable layer (a tmpfs), and what its logs may take before the
    /// pod is evicted (see `eviction`).
    pub ephemeral_storage_limit_bytes: Option<u64>,
    /// `requests.ephemeral-storage` in bytes (scheduling only: nothing
    /// here acts on it).
    pub ephemeral_storage_request_bytes: Option<u64>,
}

/// `memory` and `cpu` of one `limits` or `requests` map.
#[derive(Default)]
struct Amounts {
    memory_bytes: Option<u64>,
    cpu_millis: Option<u64>,
    ephemeral_storage_bytes: Option<u64>,
}

/// A container's `resources` at `rp`.
pub(super) fn resources(
    ctx: &mut Ctx<'_>,
    r: Option<&manifest::ResourceRequirements>,
    rp: &str,
) -> Result<ContainerResources> {
    let Some(r) = r else {
        return Ok(ContainerResources::default());
    };
    if r.claims.is_some() {
        return Err(ctx.err(format!("{rp}.claims"), None, "not supported"));
    }
    let limits = amounts(ctx, &r.limits, &format!("{rp}.limits"))?;
    let requests = amounts(ctx, &r.requests, &format!("{rp}.requests"))?;
    for (name, limit, request) in [
        ("memory", limits.memory_bytes, requests.memory_bytes),
        ("cpu", limits.cpu_millis, requests.cpu_millis),
        (
            "ephemeral-storage",
            limits.ephemeral_storage_bytes,
            requests.ephemeral_storage_bytes,
        ),
    ] {
        if let (Some(l), Some(q)) = (limit, request)
            && q > l
        {
            return Err(ctx.err(
                format!("{rp}.requests.{name}"),
                Some(&r.requests[name].0),
                format!(
                    "must be less than or equal to the {name} limit {}",
                    r.limits[name].0
                ),
            ));
        }
    }
    // Kubernetes defaults a missing request to the limit.
    Ok(ContainerResources {
        limits: container::Limits {
            memory_limit_bytes: limits.memory_bytes,
            cpu_limit_millis: limits.cpu_millis,
            cpu_request_millis: requests.cpu_millis.or(limits.cpu_millis),
            pids_limit: None,
        },
        memory_request_bytes: requests.memory_bytes.or(limits.memory_bytes),
        ephemeral_storage_limit_bytes: limits.ephemeral_storage_bytes,
        ephemeral_storage_request_bytes: requests
            .ephemeral_storage_bytes
            .or(limits.ephemeral_storage_bytes),
    })
}

fn amounts(ctx: &mut Ctx<'_>, map: &BTreeMap<String, QuantityText>, sp: &str) -> Result<Amounts> {
    let mut out = Amounts::default();
    for (name, q) in map {
        let path = format!("{sp}.{name}");
        match name.as_str() {
            "memory" => out.memory_bytes = Some(bytes(ctx, &path, q)?),
            "cpu" => out.cpu_millis = Some(millicores(ctx, &path, q)?),
            "ephemeral-storage" => out.ephemeral_storage_bytes = Some(bytes(ctx, &path, q)?),
            other => {
                return Err(ctx.err(
                    &path,
                    Some(&q.0),
                    format!("resource {other:?} not supported (cpu, memory, ephemeral-storage)"),
                ));
            }
        }
    }
    Ok(out)
}

/// A quantity of bytes at `path` (memory, sizes), rounded up.
pub(super) fn bytes(ctx: &Ctx<'_>, path: &str, q: &QuantityText) -> Result<u64> {
    quantity::parse_bytes(&q.0).map_err(|source| quantity_error(ctx, path, source))
}

/// A CPU quantity at `path` in millicores, rounded up.
fn millicores(ctx: &Ctx<'_>, path: &str, q: &QuantityText) -> Result<u64> {
    quantity::parse_millicores(&q.0).map_err(|source| quantity_error(ctx, path, source))
}

fn quantity_error(ctx: &Ctx<'_>, path: &str, source: quantity::QuantityError) -> ManifestError {
    ManifestError::Quantity {
        file: ctx.file.to_owned(),
        doc: Box::new(ctx.doc.clone()),
        path: path.to_owned(),
        location: None,
        error: source,
    }
}

#[cfg(test)]
mod tests {
    fn load(resources: &str) -> Result<crate::spec::PodSpec, String> {
        crate::spec::load_str(
            "t.yaml",
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    command: [/bin/true]\n    resources: {resources}\n"
            ),
        )
        .map(|loaded| loaded.pod)
        .map_err(|e| e.to_string())
    }

    #[test]
    fn ephemeral_storage_is_parsed_and_its_request_defaults_to_the_limit() {
        let pod = load("{limits: {ephemeral-storage: 1Mi}}").unwrap();
        let r = pod.containers[0].resources;
        assert_eq!(r.ephemeral_storage_limit_bytes, Some(1 << 20));
        assert_eq!(r.ephemeral_storage_request_bytes, Some(1 << 20));
        let error = load("{limits: {ephemeral-storage: 1Mi}, requests: {ephemeral-storage: 2Mi}}")
            .unwrap_err();
        assert!(
            error.contains("requests.ephemeral-storage")
                && error.contains("less than or equal to the ephemeral-storage limit 1Mi"),
            "{error}"
        );
        assert!(load("{limits: {ephemeral-storage: 1Xi}}").is_err());
    }
}
