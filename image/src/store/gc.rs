//! Garbage collection: `prune` removes dangling images (no name left) and
//! then every layer and blob that no image record and no live lease uses;
//! `remove` runs the same collection after taking an image off. Everything
//! happens under the store lock; a layer leaves view by one rename into the
//! work directory before its tree is deleted, so no half-deleted layer is
//! ever visible under `layers/`.

use super::{Store, StoreError, io_error, remove_any};
use crate::digest::Digest;
use std::collections::HashSet;

/// What a collection freed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    /// Dangling images removed.
    pub images: Vec<Digest>,
    /// Layers removed (chain IDs).
    pub layers: Vec<Digest>,
    /// Blobs removed.
    pub blobs: Vec<Digest>,
    /// Bytes of layer tars and blobs freed.
    pub bytes: u64,
}

impl Store {
    /// Removes dangling images, then unused layers and blobs.
    pub fn prune(&self) -> Result<Collected, StoreError> {
        let dangling = {
            let _lock = self.lock()?;
            let mut records = self.read_records()?;
            let dangling: Vec<Digest> = records
                .images
                .iter()
                .filter(|r| r.names.is_empty())
                .map(|r| r.id)
                .collect();
            if !dangling.is_empty() {
                records.images.retain(|r| !r.names.is_empty());
                self.write_records(&records)?;
            }
            dangling
        };
        let mut collected = self.collect_garbage()?;
        collected.images = dangling;
        Ok(collected)
    }

    /// Removes the layers and blobs no image and no live lease uses.
    pub(super) fn collect_garbage(&self) -> Result<Collected, StoreError> {
        let _lock = self.lock()?;
        let mut used_layers = HashSet::new();
        let mut used_blobs = HashSet::new();
        for record in self.read_records()?.images {
            used_layers.extend(record.layers.iter().map(|l| l.chain_id));
            used_blobs.insert(record.id);
            used_blobs.insert(record.manifest);
        }
        for lease in self.live_leases()? {
            used_layers.extend(lease.chain_ids);
            used_blobs.extend(lease.blobs);
        }
        let mut collected = Collected::default();
        let layers_dir = self.root.join("layers");
        for entry in std::fs::read_dir(&layers_dir).map_err(io_error(&layers_dir))? {
            let entry = entry.map_err(io_error(&layers_dir))?;
            let name = entry.file_name();
            let chain_id = name.to_str().and_then(Digest::from_hex);
            if chain_id.is_some_and(|c| used_layers.contains(&c)) {
                continue;
            }
            if let Some(chain_id) = chain_id {
                if let Some(info) = self.layer(&chain_id)? {
                    collected.bytes += info.tar_bytes;
                }
                collected.layers.push(chain_id);
            }
            let doomed = self.temp_path("removed-layer");
            std::fs::rename(entry.path(), &doomed).map_err(io_error(&entry.path()))?;
            remove_any(&doomed)?;
        }
        let blobs_dir = self.root.join("blobs/sha256");
        for entry in std::fs::read_dir(&blobs_dir).map_err(io_error(&blobs_dir))? {
            let entry = entry.map_err(io_error(&blobs_dir))?;
            let digest = entry.file_name().to_str().and_then(Digest::from_hex);
            if digest.is_some_and(|d| used_blobs.contains(&d)) {
                continue;
            }
            collected.bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
            collected.blobs.extend(digest);
            remove_any(&entry.path())?;
        }
        Ok(collected)
    }
}

#[cfg(test)]
mod tests {
    use crate::digest::Digest;
    use crate::reference::ImageReference;
    use crate::store::tests::temp_store;
    use crate::store::{ImageRecord, NewImage, Store, StoreError};
    use crate::testing::{LayerTar, have_root};

    /// Stores layers, a config and a manifest, and records them as `name`.
    fn store_image(store: &Store, name: Option<&str>, layers: &[Vec<u8>]) -> ImageRecord {
        let diff_ids: Vec<Digest> = layers.iter().map(|l| Digest::of(l)).collect();
        let mut parent = None;
        for (layer, diff_id) in layers.iter().zip(&diff_ids) {
            parent = Some(
                store
                    .add_layer(parent, *diff_id, &mut &layer[..], None)
                    .unwrap()
                    .chain_id,
            );
        }
        let config = format!("{{\"rootfs\":{{\"diff_ids\":{diff_ids:?}}},\"name\":{name:?}}}");
        let config = store
            .write_blob(&mut config.as_bytes(), None, "config")
            .unwrap();
        let manifest = format!("{{\"config\":\"{config}\"}}");
        let manifest = store
            .write_blob(&mut manifest.as_bytes(), None, "manifest")
            .unwrap();
        store
            .commit_image(
                config,
                manifest,
                NewImage {
                    names: name
                        .map(|n| ImageReference::parse(n).unwrap())
                        .into_iter()
                        .collect(),
                    repo_digest: None,
                    diff_ids,
                    created: None,
                },
            )
            .unwrap()
    }

    fn layer(name: &str) -> Vec<u8> {
        LayerTar::new().file(name, 0o644, name.as_bytes()).finish()
    }

    #[test]
    fn names_find_remove_and_shared_layers() {
        if !have_root() {
            return;
        }
        let (_dir, store) = temp_store();
        let base = layer("base");
        let a = store_image(&store, Some("a"), &[base.clone(), layer("a")]);
        let b = store_image(
            &store,
            Some("localhost:5000/b:1"),
            &[base.clone(), layer("b")],
        );
        assert_eq!(
            a.layers[0].chain_id, b.layers[0].chain_id,
            "the base layer is shared"
        );
        assert_eq!(
            std::fs::read_dir(store.root().join("layers"))
                .unwrap()
                .count(),
            3
        );
        assert_eq!(store.find("a").unwrap().id, a.id);
        assert_eq!(store.find("docker.io/library/a:latest").unwrap().id, a.id);
        assert_eq!(store.find(&a.id.to_string()).unwrap().id, a.id);
        assert_eq!(store.find(&a.id.hex()[..12]).unwrap().id, a.id);
        assert_eq!(
            store
                .find(&format!("localhost:5000/b@{}", b.manifest))
                .unwrap()
                .id,
            b.id
        );
        assert!(matches!(store.find("a:2"), Err(StoreError::NotFound(_))));
        assert!(matches!(
            store.find("Bad Name"),
            Err(StoreError::InvalidName(_))
        ));
        assert!(matches!(
            store.find("sha256:0000"),
            Err(StoreError::NotFound(_))
        ));

        let removed = store.remove("a").unwrap();
        assert_eq!(removed.untagged, ["docker.io/library/a:latest"]);
        assert_eq!(removed.deleted, Some(a.id));
        assert_eq!(removed.collected.layers, [a.layers[1].chain_id]);
        assert!(
            store.layer(&a.layers[0].chain_id).unwrap().is_some(),
            "b still uses the base"
        );
        assert!(!store.has_blob(&a.id) && !store.has_blob(&a.manifest));
        assert!(store.has_blob(&b.id));
    }

    #[test]
    fn prune_keeps_what_images_and_live_leases_use() {
        if !have_root() {
            return;
        }
        let (_dir, store) = temp_store();
        let old = store_image(&store, Some("app"), &[layer("old")]);
        let new = store_image(&store, Some("app"), &[layer("new")]);
        let images = store.images().unwrap();
        assert_eq!(images.len(), 2);
        assert!(
            images.iter().any(|r| r.id == old.id && r.names.is_empty()),
            "the old one dangles"
        );
        assert_eq!(store.find("app").unwrap().id, new.id);

        let lease = store
            .lease("pod.c.0", &[old.layers[0].chain_id], &[old.id])
            .unwrap();
        assert!(
            store.lease("pod.c.0", &[], &[]).is_err(),
            "a live lease is not taken twice"
        );
        assert!(matches!(
            store.lease("../x", &[], &[]),
            Err(StoreError::InvalidLeaseName(_))
        ));
        let collected = store.prune().unwrap();
        assert_eq!(collected.images, [old.id]);
        assert_eq!(collected.blobs, [old.manifest]);
        assert!(collected.layers.is_empty(), "the leased layer stays");
        assert!(store.layer(&old.layers[0].chain_id).unwrap().is_some());
        drop(lease);
        let collected = store.prune().unwrap();
        assert_eq!(collected.layers, [old.layers[0].chain_id]);
        assert_eq!(collected.blobs, [old.id]);
        assert!(store.layer(&new.layers[0].chain_id).unwrap().is_some());
        assert_eq!(store.images().unwrap().len(), 1);

        // A lease file left by a dead holder is stale: prune removes it.
        std::fs::write(
            store.root().join("leases/dead"),
            "{\"chain_ids\":[],\"blobs\":[]}",
        )
        .unwrap();
        store.prune().unwrap();
        assert!(!store.root().join("leases/dead").exists());
    }

    #[test]
    fn stores_opened_by_several_processes_at_once_agree() {
        if !have_root() {
            return;
        }
        let (dir, first) = temp_store();
        let root = dir.path().join("images");
        let layers = [layer("shared-bottom"), layer("shared-top")];
        let ids: Vec<Digest> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    let (root, layers) = (&root, &layers);
                    scope.spawn(move || {
                        store_image(&Store::open(root).unwrap(), Some("same"), layers).id
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        assert!(ids.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(first.images().unwrap().len(), 1);
        assert_eq!(std::fs::read_dir(root.join("layers")).unwrap().count(), 2);
        drop(first);
        assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
    }
}
