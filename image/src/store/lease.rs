//! Leases: what keeps layers and blobs from `prune` while something uses
//! them without an image record naming them (a running container, a load
//! or pull in progress). A lease is the file `leases/<name>` listing chain
//! IDs and blob digests as JSON, live while its creator holds an exclusive
//! flock on it: the `Lease` value holds it, and dropping the value (or the
//! process dying) ends it. `prune` removes lease files nobody holds.
//! The supervisor takes one per container instance, for the instance's
//! life, e.g. named `<pod-uid>.<container>.<restart-count>`.

use super::{Store, StoreError, io_error, lock_exclusive, remove_any};
use crate::digest::Digest;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

/// What a lease protects (the lease file's content).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct LeaseContent {
    pub(super) chain_ids: Vec<Digest>,
    pub(super) blobs: Vec<Digest>,
}

/// A held lease; dropping it ends the lease.
#[derive(Debug)]
pub struct Lease {
    path: PathBuf,
    _file: File,
}

impl Store {
    /// Takes the lease `name` on the layers `chain_ids` and the blobs
    /// `blobs` (replacing a stale lease of that name; a live one is an error).
    pub fn lease(
        &self,
        name: &str,
        chain_ids: &[Digest],
        blobs: &[Digest],
    ) -> Result<Lease, StoreError> {
        let valid = !name.is_empty()
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
        if !valid {
            return Err(StoreError::InvalidLeaseName(name.to_string()));
        }
        let path = self.root.join("leases").join(name);
        // Under the store lock, so prune never sees a lease file that is
        // there but not yet held.
        let _lock = self.lock()?;
        let Some(mut file) = lock_exclusive(&path, false)? else {
            return Err(io_error(&path)(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the lease is held by another process",
            )));
        };
        let content = LeaseContent {
            chain_ids: chain_ids.to_vec(),
            blobs: blobs.to_vec(),
        };
        file.set_len(0).map_err(io_error(&path))?;
        file.write_all(&serde_json::to_vec(&content).expect("a lease serialises"))
            .map_err(io_error(&path))?;
        Ok(Lease { path, _file: file })
    }

    /// A lease under a fresh name (`<what>-<pid>-<n>`) for content a load,
    /// import or pull is adding, until its image is recorded.
    pub fn temporary_lease(
        &self,
        what: &str,
        chain_ids: &[Digest],
        blobs: &[Digest],
    ) -> Result<Lease, StoreError> {
        let n = self
            .next_temp
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.lease(
            &format!("{what}-{}-{n}", std::process::id()),
            chain_ids,
            blobs,
        )
    }

    /// The content of every live lease; stale lease files are removed.
    /// Called with the store lock held.
    pub(super) fn live_leases(&self) -> Result<Vec<LeaseContent>, StoreError> {
        let dir = self.root.join("leases");
        let mut live = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io_error(&dir))? {
            let path = entry.map_err(io_error(&dir))?.path();
            if lock_exclusive(&path, false)?.is_some() {
                remove_any(&path)?;
                continue;
            }
            let data = std::fs::read(&path).map_err(io_error(&path))?;
            let content = serde_json::from_slice(&data).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            live.push(content);
        }
        Ok(live)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Removing first, then closing (dropping the lock): a prune that
        // opened the file meanwhile finds it unheld and removes nothing else.
        let _ = std::fs::remove_file(&self.path);
    }
}
