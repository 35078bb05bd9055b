//! OCI image layouts (`oci-layout`, `index.json`, `blobs/sha256/`): each
//! descriptor of index.json is followed to an image manifest, through
//! nested indexes and manifest lists picking linux/amd64 and skipping
//! attestations; names come from the `io.containerd.image.name` and
//! `org.opencontainers.image.ref.name` annotations (a bare tag is no name).

use super::{ArchiveError, FoundImage, blob_member, source::Source};
use crate::digest::Digest;
use crate::manifest::chosen_from_index;
use crate::reference::ImageReference;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use std::path::Path;

const CONTAINERD_NAME: &str = "io.containerd.image.name";
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// How deep indexes may nest.
const MAX_NESTING: usize = 4;

/// The images index.json lists, one per distinct manifest.
pub(super) fn images(source: &Source, path: &Path) -> Result<Vec<FoundImage>, ArchiveError> {
    let index_bytes = source.read_json_member("index.json", path)?;
    let index = ImageIndex::from_reader(&index_bytes[..]).map_err(|e| ArchiveError::Invalid {
        path: path.to_path_buf(),
        member: "index.json".into(),
        reason: format!("not an OCI image index: {e}"),
    })?;
    let mut found: Vec<(Digest, FoundImage)> = Vec::new();
    for descriptor in index.manifests() {
        let digest = descriptor_digest(descriptor, path)?;
        let (names, unnamed_because) = names_of(descriptor, path)?;
        if let Some((_, image)) = found.iter_mut().find(|(d, _)| *d == digest) {
            image.names.extend(names);
            continue;
        }
        let Some(mut image) = follow(source, path, descriptor, 0)? else {
            continue;
        };
        image.names = names;
        image.unnamed_because = unnamed_because;
        found.push((digest, image));
    }
    Ok(found.into_iter().map(|(_, image)| image).collect())
}

/// The manifest (bytes) of the layout's image whose config is `config`.
pub(super) fn manifest_with_config(
    source: &Source,
    path: &Path,
    config: Digest,
) -> Option<Vec<u8>> {
    images(source, path)
        .ok()?
        .into_iter()
        .find(|image| image.config_digest == Some(config))
        .and_then(|image| image.manifest)
}

fn descriptor_digest(descriptor: &Descriptor, path: &Path) -> Result<Digest, ArchiveError> {
    Digest::parse(descriptor.digest().as_ref()).map_err(|e| ArchiveError::Invalid {
        path: path.to_path_buf(),
        member: "index.json".into(),
        reason: e.to_string(),
    })
}

fn names_of(
    descriptor: &Descriptor,
    path: &Path,
) -> Result<(Vec<ImageReference>, String), ArchiveError> {
    let annotations = descriptor.annotations().clone().unwrap_or_default();
    let parse = |value: &str| {
        ImageReference::parse(value).map_err(|source| ArchiveError::InvalidName {
            path: path.to_path_buf(),
            source,
        })
    };
    if let Some(name) = annotations.get(CONTAINERD_NAME) {
        return Ok((vec![parse(name)?], String::new()));
    }
    match annotations.get(REF_NAME) {
        Some(name) if name.contains('/') || name.contains(':') => {
            Ok((vec![parse(name)?], String::new()))
        }
        Some(tag) => Ok((
            Vec::new(),
            format!(
                "the OCI layout names image {} only by the tag {tag:?}",
                descriptor.digest()
            ),
        )),
        None => Ok((
            Vec::new(),
            format!(
                "the OCI layout gives image {} no name ({REF_NAME})",
                descriptor.digest()
            ),
        )),
    }
}

/// Reads and checks the blob a descriptor names.
fn read_blob(source: &Source, path: &Path, digest: Digest) -> Result<Vec<u8>, ArchiveError> {
    let member = blob_member(&digest);
    let bytes = source.read_json_member(&member, path)?;
    let actual = Digest::of(&bytes);
    if actual != digest {
        return Err(ArchiveError::Invalid {
            path: path.to_path_buf(),
            member,
            reason: format!("digest mismatch: expected {digest}, got {actual}"),
        });
    }
    Ok(bytes)
}

/// Follows `descriptor` to an image manifest; `None` for what is not an
/// image (an attestation, an artifact).
fn follow(
    source: &Source,
    path: &Path,
    descriptor: &Descriptor,
    depth: usize,
) -> Result<Option<FoundImage>, ArchiveError> {
    let digest = descriptor_digest(descriptor, path)?;
    let member = blob_member(&digest);
    let invalid = |reason: String| ArchiveError::Invalid {
        path: path.to_path_buf(),
        member: member.clone(),
        reason,
    };
    let bytes = read_blob(source, path, digest)?;
    if let Some(chosen) = chosen_from_index(&bytes).map_err(&invalid)? {
        if depth >= MAX_NESTING {
            return Err(invalid("indexes nest too deep".into()));
        }
        return follow(source, path, &chosen, depth + 1);
    }
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
    if value.get("config").is_none() {
        return Ok(None);
    }
    let manifest = ImageManifest::from_reader(&bytes[..])
        .map_err(|e| invalid(format!("not an image manifest: {e}")))?;
    let config_digest = descriptor_digest(manifest.config(), path)?;
    let layers = manifest
        .layers()
        .iter()
        .map(|layer| descriptor_digest(layer, path).map(|d| (blob_member(&d), Some(d))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(FoundImage {
        config_member: blob_member(&config_digest),
        config_digest: Some(config_digest),
        manifest: Some(bytes),
        layers,
        names: Vec::new(),
        unnamed_because: String::new(),
    }))
}
