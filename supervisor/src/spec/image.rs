//! A container's `image` and `imagePullPolicy`, and the pod's
//! `imagePullSecrets`, checked as the API server and kubelet do: `image`
//! is required and free of surrounding white space; the reference itself
//! is parsed here but an unparsable one is the container's run-time
//! `InvalidImageName` (kubelet's behaviour), not a manifest error. The pull
//! policy defaults to `Always` for `:latest` or no tag, else
//! `IfNotPresent`. Pull secrets name `kubernetes.io/dockerconfigjson`
//! Secrets of the same file; one that is missing or of another type is a
//! warning, as kubelet logs it and pulls without it. Nothing is pulled here.

use super::{Ctx, DataKind, Result};
use crate::manifest;
use image::reference::{ImageReference, InvalidImageName, PullPolicy};

/// The Secret type whose `.dockerconfigjson` holds registry credentials.
pub const DOCKER_CONFIG_JSON_TYPE: &str = "kubernetes.io/dockerconfigjson";
/// The key of that Secret holding a `~/.docker/config.json` document.
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";

/// A container's image as the manifest gives it.
#[derive(Debug, Clone)]
pub struct ContainerImage {
    /// `image` as written (what `kubectl get pod -o yaml` shows in spec).
    pub written: String,
    /// The normalised reference, or why it does not parse (reported as
    /// the container's `InvalidImageName` when it is due to start).
    pub reference: std::result::Result<ImageReference, InvalidImageName>,
    /// `imagePullPolicy`, defaulted.
    pub pull_policy: PullPolicy,
}

/// One of the pod's `imagePullSecrets`, found in the file.
#[derive(Debug, Clone)]
pub struct PullSecret {
    /// The Secret's name.
    pub name: String,
    /// Its `.dockerconfigjson`: a `~/.docker/config.json` document.
    pub docker_config_json: Vec<u8>,
}

/// `image` and `imagePullPolicy` of the container at `cp`.
pub(super) fn image(ctx: &Ctx<'_>, c: &manifest::Container, cp: &str) -> Result<ContainerImage> {
    let written = match c.image.as_deref() {
        Some(i) if !i.is_empty() => i,
        _ => {
            return Err(ctx.err(
                format!("{cp}.image"),
                None,
                "missing: a container runs its image (e.g. image: busybox:1.36)",
            ));
        }
    };
    if written.trim() != written {
        return Err(ctx.err(
            format!("{cp}.image"),
            Some(written),
            "must not have leading or trailing white space",
        ));
    }
    let reference = ImageReference::parse(written);
    let pull_policy = match c.image_pull_policy.as_deref() {
        None => match &reference {
            Ok(r) => r.default_pull_policy(),
            // Kubernetes defaults on the string: no tag or `:latest`.
            Err(_) => PullPolicy::Always,
        },
        Some("Always") => PullPolicy::Always,
        Some("IfNotPresent") => PullPolicy::IfNotPresent,
        Some("Never") => PullPolicy::Never,
        Some(other) => {
            return Err(ctx.err(
                format!("{cp}.imagePullPolicy"),
                Some(other),
                "must be Always, IfNotPresent or Never",
            ));
        }
    };
    Ok(ContainerImage {
        written: written.to_string(),
        reference,
        pull_policy,
    })
}

/// The pod's `imagePullSecrets` at `p`, found in the file.
pub(super) fn pull_secrets(
    ctx: &mut Ctx<'_>,
    raw: &[manifest::LocalObjectReference],
    p: &str,
) -> Result<Vec<PullSecret>> {
    let mut secrets = Vec::new();
    for (i, reference) in raw.iter().enumerate() {
        let path = format!("{p}.imagePullSecrets[{i}].name");
        let Some(name) = reference.name.as_deref().filter(|n| !n.is_empty()) else {
            return Err(ctx.err(path, None, "missing: the name of a Secret"));
        };
        let Some(object) = ctx.data_object(DataKind::Secret, name, &path, true)? else {
            ctx.warnings.push(format!(
                "{}: {path}: no Secret {name:?} in the manifest file: images are pulled without it",
                ctx.file
            ));
            continue;
        };
        let config = (object.type_.as_deref() == Some(DOCKER_CONFIG_JSON_TYPE))
            .then(|| object.data.get(DOCKER_CONFIG_JSON_KEY))
            .flatten();
        match config {
            Some(config) => secrets.push(PullSecret {
                name: name.to_string(),
                docker_config_json: config.clone(),
            }),
            None => ctx.warnings.push(format!(
                "{}: {path}: Secret {name:?} is not of type {DOCKER_CONFIG_JSON_TYPE} with a {DOCKER_CONFIG_JSON_KEY} key: images are pulled without it",
                ctx.file
            )),
        }
    }
    Ok(secrets)
}
