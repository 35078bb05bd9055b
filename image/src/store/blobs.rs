//! Content-addressed blobs (manifests, configs, indexes) in
//! `blobs/sha256/<hex>`: written to a temporary file in the store, hashed
//! while written, fsynced and renamed into place only when the digest is
//! right. Layer tarballs are not kept as blobs: they are unpacked (layers).

use super::{Store, StoreError, io_error, rename_durably};
use crate::digest::{Digest, HashingWriter};
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

impl Store {
    /// Where the blob `digest` lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Whether the blob `digest` is stored.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Stores what `reader` yields; with `expected`, refuses content of
    /// another digest (nothing is left behind). Returns the digest.
    pub fn write_blob(
        &self,
        reader: &mut dyn Read,
        expected: Option<Digest>,
        what: &str,
    ) -> Result<Digest, StoreError> {
        let temp = self.temp_path("blob");
        let file = File::create(&temp).map_err(io_error(&temp))?;
        let mut writer = HashingWriter::new(file);
        let copied = io::copy(reader, &mut writer);
        let (actual, _, file) = writer.finish();
        let checked = copied
            .map_err(io_error(&temp))
            .and_then(|_| match expected {
                Some(expected) if expected != actual => Err(StoreError::DigestMismatch {
                    what: what.to_string(),
                    expected,
                    actual,
                }),
                _ => file.sync_all().map_err(io_error(&temp)),
            });
        if let Err(error) = checked {
            let _ = std::fs::remove_file(&temp);
            return Err(error);
        }
        rename_durably(&temp, &self.blob_path(&actual))?;
        Ok(actual)
    }

    /// Reads the blob `digest` whole, checking its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(digest);
        let data = std::fs::read(&path).map_err(io_error(&path))?;
        let actual = Digest::of(&data);
        if actual != *digest {
            return Err(StoreError::DigestMismatch {
                what: path.display().to_string(),
                expected: *digest,
                actual,
            });
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use crate::digest::Digest;
    use crate::store::StoreError;
    use crate::store::tests::temp_store;

    #[test]
    fn blobs_are_verified_before_they_appear() {
        let (_dir, store) = temp_store();
        let digest = store
            .write_blob(&mut &b"config"[..], Some(Digest::of(b"config")), "config")
            .unwrap();
        assert_eq!(store.read_blob(&digest).unwrap(), b"config");
        let wrong = store.write_blob(
            &mut &b"tampered"[..],
            Some(Digest::of(b"original")),
            "layer x",
        );
        assert!(
            matches!(wrong, Err(StoreError::DigestMismatch { .. })),
            "{wrong:?}"
        );
        assert!(!store.has_blob(&Digest::of(b"tampered")));
        assert!(!store.has_blob(&Digest::of(b"original")));
        let blobs = std::fs::read_dir(store.root().join("blobs/sha256"))
            .unwrap()
            .count();
        assert_eq!(blobs, 1);
        assert_eq!(
            std::fs::read_dir(&store.work).unwrap().count(),
            1,
            "only the work lock is left"
        );
    }
}
