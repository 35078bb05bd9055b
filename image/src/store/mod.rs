//! The image store shared by every pod and every supervisor on the host:
//! its directory layout, the store lock, each process's work directory (the
//! only place anything is half-written), and the error type. What is kept
//! lives in the submodules: blobs, unpacked layers, image records, leases,
//! and the garbage collector. Fetching and parsing images is not the store's.
//!
//! Layout under the root (default /var/lib/supervisor/images):
//! `lock`, `images.json`, `blobs/sha256/<hex>`, `layers/<chain-id hex>/{fs,layer.json}`,
//! `leases/<name>`, `tmp/<process>/`.

mod blobs;
mod gc;
mod layers;
mod lease;
mod records;

pub use gc::Collected;
pub use layers::LayerInfo;
pub use lease::Lease;
pub use records::{ImageLayer, ImageRecord, NewImage, Removed};

use crate::digest::Digest;
use crate::reference::InvalidImageName;
use crate::unpack::UnpackError;
use rustix::fs::FlockOperation;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The store's root when neither `--image-dir` nor the environment says.
pub const DEFAULT_ROOT: &str = "/var/lib/supervisor/images";
/// The environment variable that names the store's root.
pub const ROOT_ENV: &str = "SUPERVISOR_IMAGE_DIR";

/// The store's root: `flag` (`--image-dir`), else `$SUPERVISOR_IMAGE_DIR`,
/// else /var/lib/supervisor/images.
pub fn resolve_root(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os(ROOT_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
}

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system call failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Content did not hash to the digest it was named by.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Which content (`layer sha256:...`, `config`).
        what: String,
        /// The digest it should have.
        expected: Digest,
        /// The digest it has.
        actual: Digest,
    },
    /// A layer could not be unpacked.
    #[error("layer {diff_id}: {source}")]
    Unpack {
        /// The layer's expected diffID.
        diff_id: Digest,
        /// Why.
        source: UnpackError,
    },
    /// A store file is not what the store writes.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No stored image has that name or ID.
    #[error("no such image: {0}")]
    NotFound(String),
    /// An ID prefix that matches several images.
    #[error("image ID prefix {value:?} matches {count} images")]
    Ambiguous {
        /// The prefix.
        value: String,
        /// How many images it matches.
        count: usize,
    },
    /// An image name that does not parse.
    #[error(transparent)]
    InvalidName(#[from] InvalidImageName),
    /// A lease name that is not `[A-Za-z0-9._-]+`.
    #[error("invalid lease name {0:?}: expected letters, digits, '.', '_' or '-'")]
    InvalidLeaseName(String),
    /// An image refers to content the store does not hold.
    #[error("cannot record the image: {what} {digest} is not in the store")]
    Missing {
        /// `layer` or `blob`.
        what: &'static str,
        /// Its digest (chain ID for a layer).
        digest: Digest,
    },
}

/// Wraps an I/O error with its path.
pub(crate) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An open store.
pub struct Store {
    root: PathBuf,
    /// This process's work directory, its lock held for the store's life.
    work: PathBuf,
    _work_lock: File,
    next_temp: AtomicU64,
}

/// The store lock held exclusively; released on drop.
pub(crate) struct StoreLock {
    _file: File,
}

impl Store {
    /// Opens (making it if needed) the store at `root`, and sweeps the work
    /// directories of processes that are gone (a crash's half-written files).
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        for dir in ["blobs/sha256", "layers", "leases", "tmp"] {
            let path = root.join(dir);
            std::fs::create_dir_all(&path).map_err(io_error(&path))?;
        }
        let root = root.to_path_buf();
        let lock = lock_exclusive(&root.join("lock"), true)?.expect("a blocking lock is taken");
        sweep_dead_work_dirs(&root.join("tmp"))?;
        let work = root.join("tmp").join(format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir(&work).map_err(io_error(&work))?;
        let work_lock =
            lock_exclusive(&work.join("lock"), true)?.expect("a blocking lock is taken");
        drop(lock);
        Ok(Store {
            root,
            work,
            _work_lock: work_lock,
            next_temp: AtomicU64::new(0),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the store lock (blocks while another process holds it).
    pub(crate) fn lock(&self) -> Result<StoreLock, StoreError> {
        let file =
            lock_exclusive(&self.root.join("lock"), true)?.expect("a blocking lock is taken");
        Ok(StoreLock { _file: file })
    }

    /// A fresh name in this process's work directory.
    pub(crate) fn temp_path(&self, what: &str) -> PathBuf {
        let n = self.next_temp.fetch_add(1, Ordering::Relaxed);
        self.work.join(format!("{what}-{n}"))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Best effort: a leftover is swept by the next open.
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// Opens (creating) `path` and takes an exclusive flock on it; `None` when
/// `block` is false and another holder has it.
pub(crate) fn lock_exclusive(path: &Path, block: bool) -> Result<Option<File>, StoreError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_error(path))?;
    let operation = if block {
        FlockOperation::LockExclusive
    } else {
        FlockOperation::NonBlockingLockExclusive
    };
    match rustix::fs::flock(&file, operation) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) if !block => Ok(None),
        Err(e) => Err(io_error(path)(e.into())),
    }
}

/// Removes every work directory whose owner no longer holds its lock.
/// Called with the store lock held, so no process is making one meanwhile.
fn sweep_dead_work_dirs(tmp: &Path) -> Result<(), StoreError> {
    for entry in std::fs::read_dir(tmp).map_err(io_error(tmp))? {
        let path = entry.map_err(io_error(tmp))?.path();
        let lock_path = path.join("lock");
        let owner_gone = !lock_path.exists() || lock_exclusive(&lock_path, false)?.is_some();
        if owner_gone {
            remove_any(&path)?;
        }
    }
    Ok(())
}

/// Removes a file or a directory tree; a missing one is fine.
pub(crate) fn remove_any(path: &Path) -> Result<(), StoreError> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(io_error(path))
}

/// Writes `data` to `path` atomically: a temporary file, fsync, rename,
/// fsync of the directory.
pub(crate) fn write_atomically(store: &Store, path: &Path, data: &[u8]) -> Result<(), StoreError> {
    let temp = store.temp_path("write");
    {
        use std::io::Write;
        let mut file = File::create(&temp).map_err(io_error(&temp))?;
        file.write_all(data).map_err(io_error(&temp))?;
        file.sync_all().map_err(io_error(&temp))?;
    }
    rename_durably(&temp, path)
}

/// Renames `from` to `to` and fsyncs `to`'s directory.
pub(crate) fn rename_durably(from: &Path, to: &Path) -> Result<(), StoreError> {
    std::fs::rename(from, to).map_err(io_error(to))?;
    sync_parent(to)
}

/// fsyncs the directory holding `path`.
pub(crate) fn sync_parent(path: &Path) -> Result<(), StoreError> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error(parent))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A store in a fresh temporary directory.
    pub fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("images")).unwrap();
        (dir, store)
    }

    #[test]
    fn open_sweeps_work_dirs_of_dead_processes_only() {
        let (dir, store) = temp_store();
        let root = dir.path().join("images");
        let dead = root.join("tmp/dead");
        std::fs::create_dir_all(dead.join("half-written")).unwrap();
        std::fs::write(dead.join("lock"), "").unwrap();
        let no_lock = root.join("tmp/no-lock");
        std::fs::create_dir_all(&no_lock).unwrap();
        let live_file = store.temp_path("live");
        std::fs::write(&live_file, "x").unwrap();
        let second = Store::open(&root).unwrap();
        assert!(!dead.exists());
        assert!(!no_lock.exists());
        assert!(live_file.exists(), "a live store's work dir is kept");
        drop(store);
        assert!(!live_file.exists());
        drop(second);
        assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
    }
}
