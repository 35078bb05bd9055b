//! Loading images from archives into the store: `docker save` output (the
//! old layout, manifest.json + `<id>/layer.tar` + `<config>.json`, and
//! Docker 25+'s OCI layout with manifest.json beside index.json), and OCI
//! layouts as a directory or a tar (`skopeo copy ... oci:` / `oci-archive:`),
//! plain or compressed, from a file or standard input. Every blob is
//! checked against its digest and every layer against its diffID before
//! the image is recorded; a lease keeps the new content from a concurrent
//! prune meanwhile. Root file systems (`import`) are in `crate::import`.

mod docker;
mod oci;
#[cfg(test)]
mod reference_tools;
mod source;

use crate::digest::Digest;
use crate::manifest::ConfigSummary;
use crate::reference::{ImageReference, InvalidImageName};
use crate::store::{ImageRecord, NewImage, Store, StoreError};
use source::Source;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// What went wrong loading an archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The file is not an image archive at all.
    #[error(
        "{path}: not an image archive: {reason}; expected a docker save archive (manifest.json) or an OCI layout (oci-layout and index.json), as a directory or a tar"
    )]
    NotAnImage {
        /// The file or directory given.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// The archive is an image archive but something in it is wrong.
    #[error("{path}: {member}: {reason}")]
    Invalid {
        /// The archive.
        path: PathBuf,
        /// The member at fault.
        member: String,
        /// What is wrong.
        reason: String,
    },
    /// An image in the archive has no name, or only a tag.
    #[error("{path}: {reason}; give the image a name with --ref NAME")]
    NoName {
        /// The archive.
        path: PathBuf,
        /// What the archive says about names.
        reason: String,
    },
    /// `--ref` given for an archive of several images.
    #[error("{path}: --ref names one image but the archive holds {count}")]
    RefForMany {
        /// The archive.
        path: PathBuf,
        /// How many images it holds.
        count: usize,
    },
    /// A name in the archive does not parse.
    #[error("{path}: {source}")]
    InvalidName {
        /// The archive.
        path: PathBuf,
        /// The parse error.
        source: InvalidImageName,
    },
    /// Reading the archive failed.
    #[error("{path}: {source}")]
    Io {
        /// The archive.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Storing failed (a digest or diffID mismatch, a refused layer entry, I/O).
    #[error("{path}: {source}")]
    Store {
        /// The archive.
        path: PathBuf,
        /// The store's error.
        source: StoreError,
    },
}

/// Where to load from.
pub enum Input<'a> {
    /// A file or a directory.
    Path(&'a Path),
    /// A stream (standard input), read once.
    Stream(&'a mut dyn Read),
}

/// One image found in an archive, before it is stored.
struct FoundImage {
    /// The config blob's member and its digest if the archive states one.
    config_member: String,
    config_digest: Option<Digest>,
    /// The manifest as the archive has it (checked), or none (synthesised).
    manifest: Option<Vec<u8>>,
    /// Each layer's member and blob digest if the archive states one.
    layers: Vec<(String, Option<Digest>)>,
    /// Names from the archive.
    names: Vec<ImageReference>,
    /// Why there is no name, when `names` is empty.
    unnamed_because: String,
}

/// Loads every image of the archive `input` into `store`; `name`, when
/// given, names the archive's single image instead of the archive's names.
pub fn load(
    store: &Store,
    input: Input<'_>,
    name: Option<&ImageReference>,
) -> Result<Vec<ImageRecord>, ArchiveError> {
    let copy = store.temp_path("archive");
    let (shown, source) = match input {
        Input::Path(path) => (path.to_path_buf(), Source::open(path, &copy)),
        Input::Stream(reader) => {
            let shown = PathBuf::from("standard input");
            let source = Source::spool(reader, &copy, &shown);
            (shown, source)
        }
    };
    let result = source.and_then(|source| load_from(store, &source, &shown, name));
    let _ = std::fs::remove_file(&copy);
    result
}

fn load_from(
    store: &Store,
    source: &Source,
    path: &Path,
    name: Option<&ImageReference>,
) -> Result<Vec<ImageRecord>, ArchiveError> {
    let found = if source.has("manifest.json") {
        docker::images(source, path)?
    } else if source.has("index.json") && source.has("oci-layout") {
        oci::images(source, path)?
    } else {
        return Err(ArchiveError::NotAnImage {
            path: path.to_path_buf(),
            reason: "it has neither manifest.json nor index.json and oci-layout".into(),
        });
    };
    if found.is_empty() {
        return Err(ArchiveError::NotAnImage {
            path: path.to_path_buf(),
            reason: "it lists no image".into(),
        });
    }
    if name.is_some() && found.len() > 1 {
        return Err(ArchiveError::RefForMany {
            path: path.to_path_buf(),
            count: found.len(),
        });
    }
    let mut found = found;
    for image in &mut found {
        if let Some(name) = name {
            image.names = vec![name.clone()];
        }
        if image.names.is_empty() {
            return Err(ArchiveError::NoName {
                path: path.to_path_buf(),
                reason: image.unnamed_because.clone(),
            });
        }
    }
    found
        .into_iter()
        .map(|image| store_found(store, source, path, image))
        .collect()
}

/// Stores one image: config and manifest blobs, then each layer not yet
/// stored, all under a lease, then the record.
fn store_found(
    store: &Store,
    source: &Source,
    path: &Path,
    image: FoundImage,
) -> Result<ImageRecord, ArchiveError> {
    let invalid = |member: &str, reason: String| ArchiveError::Invalid {
        path: path.to_path_buf(),
        member: member.to_string(),
        reason,
    };
    let stored = |source: StoreError| ArchiveError::Store {
        path: path.to_path_buf(),
        source,
    };
    let config_bytes = source.read_json_member(&image.config_member, path)?;
    let config_digest = Digest::of(&config_bytes);
    if let Some(expected) = image.config_digest
        && expected != config_digest
    {
        return Err(invalid(
            &image.config_member,
            format!("digest mismatch: expected {expected}, got {config_digest}"),
        ));
    }
    let config: ConfigSummary = serde_json::from_slice(&config_bytes)
        .map_err(|e| invalid(&image.config_member, format!("not an image config: {e}")))?;
    if config.rootfs.diff_ids.len() != image.layers.len() {
        return Err(invalid(
            &image.config_member,
            format!(
                "the config lists {} layers (rootfs.diff_ids), the manifest {}",
                config.rootfs.diff_ids.len(),
                image.layers.len()
            ),
        ));
    }
    let manifest_bytes = match image.manifest {
        Some(bytes) => bytes,
        None => synthesise_manifest(
            source,
            config_digest,
            config_bytes.len(),
            &image.layers,
            &config.rootfs.diff_ids,
        ),
    };
    let manifest_digest = Digest::of(&manifest_bytes);
    let chain_ids = Digest::chain_ids(&config.rootfs.diff_ids);
    let _lease = store
        .temporary_lease("load", &chain_ids, &[config_digest, manifest_digest])
        .map_err(stored)?;
    let mut parent = None;
    for ((member, blob_digest), diff_id) in image.layers.iter().zip(&config.rootfs.diff_ids) {
        let chain_id = Digest::chain(parent, *diff_id);
        if store.layer(&chain_id).map_err(stored)?.is_none() {
            let mut reader = source.reader(member, path)?;
            store
                .add_layer(parent, *diff_id, &mut reader, *blob_digest)
                .map_err(|e| match e {
                    StoreError::Unpack { .. } | StoreError::DigestMismatch { .. } => {
                        invalid(member, e.to_string())
                    }
                    other => stored(other),
                })?;
        }
        parent = Some(chain_id);
    }
    store
        .commit_image_with_blobs(
            &config_bytes,
            &manifest_bytes,
            NewImage {
                names: image.names,
                repo_digest: None,
                diff_ids: config.rootfs.diff_ids,
                created: config.created,
            },
        )
        .map_err(stored)
}

/// An OCI manifest for an archive that has none of its own (the old
/// `docker save` layout): plain tar layers, named by their diffIDs.
fn synthesise_manifest(
    source: &Source,
    config: Digest,
    config_size: usize,
    layers: &[(String, Option<Digest>)],
    diff_ids: &[Digest],
) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .zip(diff_ids)
        .map(|((member, _), diff_id)| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": diff_id.to_string(),
                "size": source.size(member).unwrap_or(0),
            })
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config.to_string(),
            "size": config_size,
        },
        "layers": layers,
    });
    serde_json::to_vec(&manifest).expect("a manifest serialises")
}

/// `blobs/sha256/<hex>` of an OCI layout, for `digest`.
fn blob_member(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// The digest a member's path states (`blobs/sha256/<hex>`, `<hex>.json`).
fn digest_in_member_name(member: &str) -> Option<Digest> {
    let file = member.rsplit('/').next()?;
    Digest::from_hex(file.strip_suffix(".json").unwrap_or(file))
}

#[cfg(test)]
mod tests;
