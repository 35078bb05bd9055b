//! `import`: a root file system (a tar, plain or compressed, or a
//! directory) as a one-layer image, as `docker import` makes one: an amd64
//! linux config with no command, a manifest, the layer unpacked in the
//! store. A directory is first written as a tar into the store's work
//! directory (symlinks kept, not followed; hard links become copies;
//! xattrs are not carried), since the layer's diffID is its tar's digest.

use crate::archive::ArchiveError;
use crate::compression::decompress;
use crate::digest::{Digest, HashingReader};
use crate::reference::ImageReference;
use crate::store::{ImageRecord, NewImage, Store};
use std::fs::File;
use std::io;
use std::path::Path;

/// Imports the root file system at `path` as an image named `name`
/// (nameless, "dangling", without one).
pub fn import_rootfs(
    store: &Store,
    path: &Path,
    name: Option<&ImageReference>,
) -> Result<ImageRecord, ArchiveError> {
    let io_error = |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    };
    let stored = |source| ArchiveError::Store {
        path: path.to_path_buf(),
        source,
    };
    let tar_copy = store.temp_path("rootfs");
    let result = (|| {
        let layer_file = if path.is_dir() {
            write_tar_of(path, &tar_copy).map_err(io_error)?;
            tar_copy.as_path()
        } else {
            path
        };
        let diff_id = tar_digest(layer_file).map_err(|source| ArchiveError::NotAnImage {
            path: path.to_path_buf(),
            reason: format!("not a root file system tar ({source})"),
        })?;
        let created = now_rfc3339();
        let config = serde_json::json!({
            "created": created,
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": { "type": "layers", "diff_ids": [diff_id.to_string()] },
            "history": [{ "created": created, "comment": format!("imported from {}", path.display()) }],
        });
        let config = serde_json::to_vec(&config).expect("a config serialises");
        let config_digest = Digest::of(&config);
        let layer_size = std::fs::metadata(layer_file).map_err(io_error)?.len();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest.to_string(),
                "size": config.len(),
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": diff_id.to_string(),
                "size": layer_size,
            }],
        });
        let manifest = serde_json::to_vec(&manifest).expect("a manifest serialises");
        let manifest_digest = Digest::of(&manifest);
        let _lease = store
            .temporary_lease("import", &[diff_id], &[config_digest, manifest_digest])
            .map_err(stored)?;
        let mut layer = File::open(layer_file).map_err(io_error)?;
        store
            .add_layer(None, diff_id, &mut layer, None)
            .map_err(stored)?;
        store
            .commit_image_with_blobs(
                &config,
                &manifest,
                NewImage {
                    names: name.cloned().into_iter().collect(),
                    repo_digest: None,
                    diff_ids: vec![diff_id],
                    created: Some(created),
                },
            )
            .map_err(stored)
    })();
    let _ = std::fs::remove_file(&tar_copy);
    result
}

/// The sha256 of the file's tar stream, decompressed; checks it is a tar.
fn tar_digest(path: &Path) -> io::Result<Digest> {
    let (_, plain) = decompress(File::open(path)?)?;
    let mut hashing = HashingReader::new(plain);
    {
        let mut archive = tar::Archive::new(&mut hashing);
        for entry in archive.entries()? {
            entry?;
        }
    }
    Ok(hashing.finish()?.0)
}

/// Writes the tree at `dir` as a tar to `out`, symlinks as symlinks.
fn write_tar_of(dir: &Path, out: &Path) -> io::Result<()> {
    let mut builder = tar::Builder::new(io::BufWriter::new(File::create(out)?));
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Complete);
    builder.append_dir_all(".", dir)?;
    builder
        .into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()
}

/// The current time as RFC 3339 (UTC, seconds).
fn now_rfc3339() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}
