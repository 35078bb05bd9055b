//! The on-disk cache of ADD results, as libcni keeps `/var/lib/cni/results`.
//!
//! One file per attachment, named `<network>-<container id>-<ifname>` like
//! libcni's, holding the attachment (container id, netns path, pod names,
//! port mappings), the configuration list that ran, and the final result. DEL
//! and CHECK feed the cached result to the plugins as `prevResult`; after a
//! crash the next run lists the directory and tears every entry down with the
//! very configuration that set it up, even if the conf dir changed since.
//! Files are replaced atomically (write to a temp file, fsync, rename).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Attachment;

/// The `kind` of the cache format written here.
pub const KIND: &str = "podvisorCniCacheV1";

/// A cache file that cannot be read, written or removed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Reading, writing, renaming or removing failed.
    #[error("CNI result cache {}: {what}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file is not a cache entry of this format.
    #[error("CNI result cache {}: not a {KIND} entry: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// What serde_json says.
        source: serde_json::Error,
    },
}

/// What one cache file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Always [`KIND`].
    pub kind: String,
    /// The network's name.
    pub network_name: String,
    /// Who was attached, and where.
    pub attachment: Attachment,
    /// The configuration list that ran (as [`super::NetworkConfig::to_json`]).
    pub config: Value,
    /// The final ADD result, exactly as the last plugin printed it.
    pub result: Value,
}

/// Path of the entry for one attachment.
pub fn entry_path(dir: &Path, network: &str, container_id: &str, ifname: &str) -> PathBuf {
    dir.join(format!("{network}-{container_id}-{ifname}"))
}

/// Writes `entry` to `path` atomically, creating the directory.
pub fn write(path: &Path, entry: &Entry) -> Result<(), CacheError> {
    let io_err = |what, path: &Path| {
        let path = path.to_owned();
        move |source| CacheError::Io { what, path, source }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err("creating the directory", dir))?;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let bytes = serde_json::to_vec(entry).map_err(|source| CacheError::Json {
        path: path.to_owned(),
        source,
    })?;
    let mut file = fs::File::create(&tmp).map_err(io_err("creating", &tmp))?;
    file.write_all(&bytes).map_err(io_err("writing", &tmp))?;
    file.sync_all().map_err(io_err("syncing", &tmp))?;
    fs::rename(&tmp, path).map_err(io_err("renaming into place", path))
}

/// Reads the entry at `path`; `Ok(None)` when there is none.
pub fn read(path: &Path) -> Result<Option<Entry>, CacheError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CacheError::Io {
                what: "reading",
                path: path.to_owned(),
                source,
            });
        }
    };
    let entry: Entry = serde_json::from_slice(&bytes).map_err(|source| CacheError::Json {
        path: path.to_owned(),
        source,
    })?;
    if entry.kind != KIND {
        return Err(CacheError::Json {
            path: path.to_owned(),
            source: serde::de::Error::custom(format!("kind is {:?}", entry.kind)),
        });
    }
    Ok(Some(entry))
}

/// Removes the entry at `path`; a missing file is fine.
pub fn remove(path: &Path) -> Result<(), CacheError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CacheError::Io {
            what: "removing",
            path: path.to_owned(),
            source,
        }),
    }
}

/// The entries of a cache directory, each with its path; an unreadable
/// file is reported in place, not skipped.
pub type Listing = Vec<(PathBuf, Result<Entry, CacheError>)>;

/// Every entry in `dir` (none when it does not exist), sorted by file name;
/// temp files of interrupted writes are skipped. Each entry is paired with
/// its path; an unreadable file is reported, not skipped.
pub fn list(dir: &Path) -> Result<Listing, CacheError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CacheError::Io {
                what: "listing",
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CacheError::Io {
            what: "listing",
            path: dir.to_owned(),
            source,
        })?;
        let path = entry.path();
        if path.is_file() && path.extension().is_none_or(|e| e != "tmp") {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|path| {
            let entry = read(&path).and_then(|e| {
                e.ok_or_else(|| CacheError::Io {
                    what: "reading",
                    path: path.clone(),
                    source: io::ErrorKind::NotFound.into(),
                })
            });
            (path, entry)
        })
        .collect())
}
