//! The validated pod the runtime consumes: raw [`crate::manifest`] objects
//! checked, defaulted and resolved (ripgrep's lowargs -> hiargs idea).
//!
//! [`load`] / [`load_str`] read a file and hand it to [`documents`], which
//! picks its one pod and decodes its ConfigMaps and Secrets; each part of
//! the pod is then validated beside the type it produces (pod, container,
//! env, volumes, probes, security, resources, ports). This module holds the
//! shared validation context ([`Ctx`]) and the re-exports. Every refusal is
//! a [`ManifestError`] naming file, document, field path and value. Nothing
//! here touches the system.

mod container;
mod documents;
mod downward;
mod env;
mod error;
mod image;
mod job;
mod names;
mod pod;
mod ports;
mod probes;
mod resources;
mod security;
mod service;
mod volumes;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::manifest::limits;

pub use container::{Container, ContainerKind};
pub use downward::{NodeAllocatable, ResourceName, ResourceRef, format_map};
pub use env::{EnvValue, EnvVar, RuntimeField, RuntimeValues, expand, resolve};
pub use error::{DocRef, ManifestError};
pub use image::{ContainerImage, DOCKER_CONFIG_JSON_KEY, PullSecret};
pub use job::{DEFAULT_BACKOFF_LIMIT, JobSpec};
pub use pod::{HostAlias, PodSpec};
pub use ports::{Port, Protocol};
pub use probes::{Handler, Probe};
pub use resources::ContainerResources;
pub use security::{Capabilities, Profile, ProfileKind, SecurityContext, capability_number};
pub use service::{NODE_PORT_RANGE, ServicePort, ServiceType};
pub use volumes::{
    FileContent, FilesOrigin, HostPathType, SubPath, SubPathExprError, Volume, VolumeFile,
    VolumeMount, VolumeSource,
};

/// `restartPolicy` of the pod: one type with the restart decisions.
pub use crate::restart::RestartPolicy;

/// Reads and validates the manifest at `path`: a file of at most
/// [`limits::MAX_MANIFEST_BYTES`], read so that no more is ever held.
pub fn load(path: &Path) -> Result<LoadedPod> {
    let file = path.display().to_string();
    let text = limits::read(path, limits::MAX_MANIFEST_BYTES).map_err(|e| match e {
        limits::ReadError::Io(error) => ManifestError::Read {
            file: file.clone(),
            error,
        },
        reason => ManifestError::Limit {
            file: file.clone(),
            reason,
        },
    })?;
    load_str(&file, &text)
}

/// Validates manifest text; `file` names it in errors and warnings. Text
/// over [`limits::MAX_MANIFEST_BYTES`] is refused as [`load`] refuses such
/// a file.
pub fn load_str(file: &str, text: &str) -> Result<LoadedPod> {
    if text.len() as u64 > limits::MAX_MANIFEST_BYTES {
        return Err(ManifestError::Limit {
            file: file.to_owned(),
            reason: limits::ReadError::TooLarge {
                size: Some(text.len() as u64),
                limit: limits::MAX_MANIFEST_BYTES,
            },
        });
    }
    documents::build(file, text)
}

/// A validated pod and what the caller should tell the user.
#[derive(Debug, Clone)]
pub struct LoadedPod {
    /// The pod to run.
    pub pod: PodSpec,
    /// One line each: ignored fields, ignored kinds, replicas note, ...
    pub warnings: Vec<String>,
}

type Result<T> = std::result::Result<T, ManifestError>;

/// An [`ManifestError::Invalid`] without a location (added once the
/// whole file is checked, see [`documents::build`]).
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

/// Which kind of data object a reference names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataKind {
    ConfigMap,
    Secret,
}

impl fmt::Display for DataKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataKind::ConfigMap => "ConfigMap",
            DataKind::Secret => "Secret",
        })
    }
}

/// A ConfigMap or Secret of the file, decoded.
struct DataObject {
    namespace: Option<String>,
    /// A Secret's `type` (None for a ConfigMap).
    type_: Option<String>,
    data: BTreeMap<String, Vec<u8>>,
}

/// The shared validation context: everything the pod may reference, the
/// document errors point at, and the ignored fields found on the way.
struct Ctx<'a> {
    file: &'a str,
    doc: DocRef,
    namespace: String,
    configmaps: &'a BTreeMap<String, DataObject>,
    secrets: &'a BTreeMap<String, DataObject>,
    pod_name: String,
    /// The pod's uid (`metadata.uid` for the downward API).
    pod_uid: String,
    /// The names of the pod's containers, init ones included (what a
    /// `resourceFieldRef.containerName` may name).
    container_names: Vec<String>,
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    ignored: Vec<String>,
    /// Other warnings (e.g. a missing image pull secret).
    warnings: Vec<String>,
}

impl Ctx<'_> {
    /// An [`ManifestError::Invalid`] about `path` of this document.
    fn err(
        &self,
        path: impl Into<String>,
        value: Option<&str>,
        reason: impl Into<String>,
    ) -> ManifestError {
        invalid(self.file, &self.doc, path, value.map(str::to_owned), reason)
    }

    /// The ConfigMap or Secret `name` of the pod's namespace. A missing
    /// object is `None` when `optional`, else an error at `name_path`.
    fn data_object(
        &self,
        kind: DataKind,
        name: &str,
        name_path: &str,
        optional: bool,
    ) -> Result<Option<&DataObject>> {
        let map = match kind {
            DataKind::ConfigMap => self.configmaps,
            DataKind::Secret => self.secrets,
        };
        let found = map
            .get(name)
            .filter(|o| o.namespace.as_deref().is_none_or(|ns| ns == self.namespace));
        match found {
            Some(object) => Ok(Some(object)),
            None if optional => Ok(None),
            None => Err(self.err(
                name_path,
                Some(name),
                format!("no {kind} of this name in the manifest file (and not optional)"),
            )),
        }
    }

    /// The one present option of `options` (field name, value), `None`
    /// when none is; two or more is an error at `path`.
    fn at_most_one<T, const N: usize>(
        &self,
        path: &str,
        options: [(&'static str, Option<T>); N],
    ) -> Result<Option<T>> {
        let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
        let mut present = options.into_iter().filter_map(|(_, v)| v);
        let first = present.next();
        if present.next().is_some() {
            return Err(self.exactly_one_error(path, &names));
        }
        Ok(first)
    }

    /// The one present option of `options`: none, or two or more, is an
    /// error at `path`, e.g. `needs exactly one of exec, httpGet and
    /// tcpSocket`.
    fn exactly_one<T, const N: usize>(
        &self,
        path: &str,
        options: [(&'static str, Option<T>); N],
    ) -> Result<T> {
        let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
        self.at_most_one(path, options)?
            .ok_or_else(|| self.exactly_one_error(path, &names))
    }

    fn exactly_one_error(&self, path: &str, names: &[&str]) -> ManifestError {
        let list = match names.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        };
        self.err(path, None, format!("needs exactly one of {list}"))
    }
}

#[cfg(test)]
mod tests;
