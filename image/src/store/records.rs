//! Image records in `images.json`: an image is its config digest (its ID,
//! as Docker names it), its manifest, its layers' diffIDs and chain IDs and
//! the names that point at it; a name points at one image at a time (a
//! newer image of the same name leaves the older one nameless, "dangling",
//! until `prune`). Read-modify-write happens under the store lock and
//! ends in an atomic rename. Finding an image by name, repo digest or ID
//! prefix, and removing names or images, are here too.

use super::gc::Collected;
use super::{Store, StoreError, io_error, write_atomically};
use crate::digest::Digest;
use crate::reference::ImageReference;
use std::path::PathBuf;

/// One layer of an image, bottom first.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageLayer {
    /// sha256 of the layer's uncompressed tar.
    pub diff_id: Digest,
    /// The chain ID of the stack up to this layer (its directory).
    pub chain_id: Digest,
}

/// A stored image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageRecord {
    /// The config's digest: the image ID.
    pub id: Digest,
    /// The manifest's digest.
    pub manifest: Digest,
    /// Normalised references naming this image (empty: dangling).
    pub names: Vec<String>,
    /// `repository@sha256:...` for each repository it was pulled from.
    pub repo_digests: Vec<String>,
    /// The layers, bottom first.
    pub layers: Vec<ImageLayer>,
    /// The sum of the layers' uncompressed sizes.
    pub size: u64,
    /// The config's `created` time, if it says.
    pub created: Option<String>,
}

impl ImageRecord {
    /// The layers' tree directories for an overlay, bottom first.
    pub fn layer_trees(&self, store: &Store) -> Vec<PathBuf> {
        self.layers
            .iter()
            .map(|l| store.layer_tree(&l.chain_id))
            .collect()
    }

    /// What a container's status reports as `imageID`: the repo digest of
    /// a pulled image, else the image ID (as containerd's CRI does).
    pub fn image_ref(&self) -> String {
        self.repo_digests
            .first()
            .cloned()
            .unwrap_or_else(|| self.id.to_string())
    }
}

/// An image to record (its layers already stored).
#[derive(Debug, Clone)]
pub struct NewImage {
    /// Names to point at it.
    pub names: Vec<ImageReference>,
    /// The repo digest when pulled.
    pub repo_digest: Option<String>,
    /// The layers' diffIDs, bottom first.
    pub diff_ids: Vec<Digest>,
    /// The config's `created` time.
    pub created: Option<String>,
}

/// What `remove` did.
#[derive(Debug, Default)]
pub struct Removed {
    /// Names taken off an image.
    pub untagged: Vec<String>,
    /// The image removed, when no name was left on it.
    pub deleted: Option<Digest>,
    /// The layers and blobs freed by it.
    pub collected: Collected,
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Records {
    pub(super) images: Vec<ImageRecord>,
}

impl Store {
    fn records_path(&self) -> PathBuf {
        self.root.join("images.json")
    }

    pub(super) fn read_records(&self) -> Result<Records, StoreError> {
        let path = self.records_path();
        match std::fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data).map_err(|e| StoreError::Corrupt {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Records::default()),
            Err(e) => Err(io_error(&path)(e)),
        }
    }

    pub(super) fn write_records(&self, records: &Records) -> Result<(), StoreError> {
        let data = serde_json::to_vec_pretty(records).expect("records serialise");
        write_atomically(self, &self.records_path(), &data)
    }

    /// Every stored image.
    pub fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        Ok(self.read_records()?.images)
    }

    /// Records `image` with the config `config` and the manifest `manifest`,
    /// moving its names off any other image. Its blobs and layers must be stored.
    pub fn commit_image(
        &self,
        config: Digest,
        manifest: Digest,
        image: NewImage,
    ) -> Result<ImageRecord, StoreError> {
        let chain_ids = Digest::chain_ids(&image.diff_ids);
        let layers: Vec<ImageLayer> = image
            .diff_ids
            .iter()
            .zip(&chain_ids)
            .map(|(diff_id, chain_id)| ImageLayer {
                diff_id: *diff_id,
                chain_id: *chain_id,
            })
            .collect();
        let _lock = self.lock()?;
        for digest in [config, manifest] {
            if !self.has_blob(&digest) {
                return Err(StoreError::Missing {
                    what: "blob",
                    digest,
                });
            }
        }
        let mut size = 0;
        for layer in &layers {
            let Some(info) = self.layer(&layer.chain_id)? else {
                return Err(StoreError::Missing {
                    what: "layer",
                    digest: layer.chain_id,
                });
            };
            size += info.tar_bytes;
        }
        let names: Vec<String> = image.names.iter().map(|n| n.to_string()).collect();
        let mut records = self.read_records()?;
        for other in &mut records.images {
            other.names.retain(|n| !names.contains(n));
        }
        let position = records.images.iter().position(|r| r.id == config);
        let record = match position {
            Some(i) => &mut records.images[i],
            None => {
                records.images.push(ImageRecord {
                    id: config,
                    manifest,
                    names: Vec::new(),
                    repo_digests: Vec::new(),
                    layers: layers.clone(),
                    size,
                    created: image.created.clone(),
                });
                records.images.last_mut().expect("just pushed")
            }
        };
        record.manifest = manifest;
        record.layers = layers;
        record.names.extend(names);
        if let Some(repo_digest) = image.repo_digest
            && !record.repo_digests.contains(&repo_digest)
        {
            record.repo_digests.push(repo_digest);
        }
        let record = record.clone();
        self.write_records(&records)?;
        Ok(record)
    }

    /// Stores the image's config and manifest blobs, then records it: the
    /// blobs come last, so content refused earlier leaves nothing behind.
    pub fn commit_image_with_blobs(
        &self,
        config: &[u8],
        manifest: &[u8],
        image: NewImage,
    ) -> Result<ImageRecord, StoreError> {
        let config = self.write_blob(&mut &config[..], None, "config")?;
        let manifest = self.write_blob(&mut &manifest[..], None, "manifest")?;
        self.commit_image(config, manifest, image)
    }

    /// The image `value` names: a reference (`busybox`, `x@sha256:...`),
    /// an image ID (`sha256:<hex>`) or an unambiguous ID prefix.
    pub fn find(&self, value: &str) -> Result<ImageRecord, StoreError> {
        let records = self.read_records()?;
        find_index(&records, value).map(|i| records.images[i].clone())
    }

    /// Removes the name `value` from its image, and the image when no name
    /// is left; an ID removes the image. Then frees what nothing uses.
    pub fn remove(&self, value: &str) -> Result<Removed, StoreError> {
        let mut removed = Removed::default();
        {
            let _lock = self.lock()?;
            let mut records = self.read_records()?;
            let index = find_index(&records, value)?;
            let by_name = ImageReference::parse(value)
                .ok()
                .map(|r| r.to_string())
                .filter(|name| records.images[index].names.contains(name));
            let record = &mut records.images[index];
            match by_name {
                Some(name) => {
                    record.names.retain(|n| *n != name);
                    removed.untagged.push(name);
                }
                None => removed.untagged.append(&mut record.names),
            }
            if record.names.is_empty() {
                removed.deleted = Some(record.id);
                records.images.remove(index);
            }
            self.write_records(&records)?;
        }
        removed.collected = self.collect_garbage()?;
        Ok(removed)
    }
}

fn find_index(records: &Records, value: &str) -> Result<usize, StoreError> {
    if let Ok(reference) = ImageReference::parse(value) {
        let name = reference.to_string();
        if let Some(i) = records.images.iter().position(|r| r.names.contains(&name)) {
            return Ok(i);
        }
        if let Some(digest) = reference.digest() {
            let repo_digest = reference.repo_digest(digest);
            let by_digest = records.images.iter().position(|r| {
                r.repo_digests.contains(&repo_digest)
                    || (r.manifest.to_string() == digest
                        && r.names
                            .iter()
                            .any(|n| n.starts_with(&format!("{}:", reference.name()))))
            });
            if let Some(i) = by_digest {
                return Ok(i);
            }
        }
    }
    let hex = value.strip_prefix("sha256:").unwrap_or(value);
    let looks_like_id = !hex.is_empty()
        && hex
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
    if looks_like_id {
        let matches: Vec<usize> = (0..records.images.len())
            .filter(|&i| records.images[i].id.hex().starts_with(hex))
            .collect();
        match matches.len() {
            0 => {}
            1 => return Ok(matches[0]),
            count => {
                return Err(StoreError::Ambiguous {
                    value: value.to_string(),
                    count,
                });
            }
        }
    }
    if !looks_like_id {
        ImageReference::parse(value)?;
    }
    Err(StoreError::NotFound(value.to_string()))
}
