//! Unpacked layers, one directory per chain ID (`layers/<hex>/fs`, with
//! `layer.json` beside it), shared by every image and container that
//! stacks the same layers. A layer is unpacked into the process's work
//! directory, its blob digest and diffID are checked, the file system is
//! synced, and only then is it renamed into place; when another process
//! got there first, its copy is kept and this one dropped.

use super::{Store, StoreError, io_error, remove_any, sync_parent};
use crate::digest::{Digest, HashingReader};
use crate::unpack::unpack_layer;
use std::io::Read;
use std::path::PathBuf;

/// What the store keeps about an unpacked layer (`layer.json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerInfo {
    /// The layer's chain ID (its directory's name).
    pub chain_id: Digest,
    /// The chain ID of the layer below, if any.
    pub parent: Option<Digest>,
    /// sha256 of the layer's uncompressed tar.
    pub diff_id: Digest,
    /// Length of the uncompressed tar.
    pub tar_bytes: u64,
}

impl Store {
    /// The directory of the layer `chain_id` (holding `fs` and `layer.json`).
    pub(crate) fn layer_path(&self, chain_id: &Digest) -> PathBuf {
        self.root.join("layers").join(chain_id.hex())
    }

    /// The unpacked tree of the layer `chain_id`, an overlay lower directory.
    pub fn layer_tree(&self, chain_id: &Digest) -> PathBuf {
        self.layer_path(chain_id).join("fs")
    }

    /// The stored layer `chain_id`, if it is there.
    pub fn layer(&self, chain_id: &Digest) -> Result<Option<LayerInfo>, StoreError> {
        let path = self.layer_path(chain_id).join("layer.json");
        match std::fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data)
                .map(Some)
                .map_err(|e| StoreError::Corrupt {
                    path,
                    reason: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path)(e)),
        }
    }

    /// Unpacks the layer stream `blob` (compressed or not) on top of the
    /// layer `parent`, checks that it hashes to `blob_digest` (when given)
    /// and that its tar hashes to `diff_id`, and commits it under its chain
    /// ID. A layer already stored is returned without reading `blob`.
    pub fn add_layer(
        &self,
        parent: Option<Digest>,
        diff_id: Digest,
        blob: &mut dyn Read,
        blob_digest: Option<Digest>,
    ) -> Result<LayerInfo, StoreError> {
        let chain_id = Digest::chain(parent, diff_id);
        if let Some(info) = self.layer(&chain_id)? {
            return Ok(info);
        }
        let temp = self.temp_path("layer");
        let result = self.unpack_into(&temp, parent, diff_id, blob, blob_digest);
        let info = match result {
            Ok(info) => info,
            Err(error) => {
                remove_any(&temp)?;
                return Err(error);
            }
        };
        let target = self.layer_path(&chain_id);
        match std::fs::rename(&temp, &target) {
            Ok(()) => sync_parent(&target)?,
            // Another process committed the same layer meanwhile: keep theirs.
            Err(e) if target.join("layer.json").exists() => {
                drop(e);
                remove_any(&temp)?;
            }
            Err(e) => {
                remove_any(&temp)?;
                return Err(io_error(&target)(e));
            }
        }
        Ok(info)
    }

    fn unpack_into(
        &self,
        temp: &std::path::Path,
        parent: Option<Digest>,
        diff_id: Digest,
        blob: &mut dyn Read,
        blob_digest: Option<Digest>,
    ) -> Result<LayerInfo, StoreError> {
        let tree = temp.join("fs");
        std::fs::create_dir_all(&tree).map_err(io_error(&tree))?;
        let mut hashing = HashingReader::new(blob);
        let unpacked = unpack_layer(&mut hashing, &tree)
            .map_err(|source| StoreError::Unpack { diff_id, source })?;
        let (actual_blob, _) = hashing.finish().map_err(io_error(temp))?;
        if let Some(expected) = blob_digest
            && expected != actual_blob
        {
            return Err(StoreError::DigestMismatch {
                what: format!("layer blob {expected}"),
                expected,
                actual: actual_blob,
            });
        }
        if unpacked.diff_id != diff_id {
            return Err(StoreError::DigestMismatch {
                what: format!("layer {diff_id}: uncompressed tar (diffID)"),
                expected: diff_id,
                actual: unpacked.diff_id,
            });
        }
        let info = LayerInfo {
            chain_id: Digest::chain(parent, diff_id),
            parent,
            diff_id,
            tar_bytes: unpacked.tar_bytes,
        };
        let json = temp.join("layer.json");
        let data = serde_json::to_vec_pretty(&info).expect("a LayerInfo serialises");
        std::fs::write(&json, data).map_err(io_error(&json))?;
        let dir = std::fs::File::open(temp).map_err(io_error(temp))?;
        rustix::fs::syncfs(&dir).map_err(|e| io_error(temp)(e.into()))?;
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use crate::digest::Digest;
    use crate::store::StoreError;
    use crate::store::tests::temp_store;
    use crate::testing::{LayerTar, gzip, have_root};

    #[test]
    fn layers_are_keyed_by_chain_id_and_checked() {
        if !have_root() {
            return;
        }
        let (_dir, store) = temp_store();
        let bottom = LayerTar::new().file("a", 0o644, b"a").finish();
        let top = LayerTar::new().file("b", 0o644, b"b").finish();
        let (bottom_id, top_id) = (Digest::of(&bottom), Digest::of(&top));
        let gz = gzip(&bottom);
        let first = store
            .add_layer(None, bottom_id, &mut &gz[..], Some(Digest::of(&gz)))
            .unwrap();
        assert_eq!(first.chain_id, bottom_id);
        assert!(store.layer_tree(&bottom_id).join("a").is_file());
        let second = store
            .add_layer(Some(bottom_id), top_id, &mut &top[..], None)
            .unwrap();
        assert_eq!(second.chain_id, Digest::chain(Some(bottom_id), top_id));
        assert_eq!(store.layer(&second.chain_id).unwrap(), Some(second.clone()));
        // Stored already: the stream is not read.
        let again = store
            .add_layer(None, bottom_id, &mut &b"not a tar"[..], None)
            .unwrap();
        assert_eq!(again, first);

        let wrong_diff = store.add_layer(None, Digest::of(b"other"), &mut &top[..], None);
        assert!(
            matches!(wrong_diff, Err(StoreError::DigestMismatch { .. })),
            "{wrong_diff:?}"
        );
        let wrong_blob = store.add_layer(None, top_id, &mut &top[..], Some(Digest::of(b"x")));
        assert!(
            matches!(wrong_blob, Err(StoreError::DigestMismatch { .. })),
            "{wrong_blob:?}"
        );
        let hostile = LayerTar::new().file("../x", 0o644, b"x").finish();
        let refused = store.add_layer(None, Digest::of(&hostile), &mut &hostile[..], None);
        assert!(
            matches!(refused, Err(StoreError::Unpack { .. })),
            "{refused:?}"
        );
        assert_eq!(
            std::fs::read_dir(store.root().join("layers"))
                .unwrap()
                .count(),
            2
        );
        assert_eq!(
            std::fs::read_dir(&store.work).unwrap().count(),
            1,
            "only the work lock is left"
        );
    }
}
