//! `persistentVolumeClaim` volumes: named local volumes kept across pod
//! runs, as `podman kube play` maps a claim to a named volume.
//!
//! ```text
//! <volume root>/                          0700 root (default /var/lib/supervisor/volumes)
//! <volume root>/<namespace>/              0700 root
//! <volume root>/<namespace>/<claim>/      the volume (0755 root when made; fsGroup applied)
//! <volume root>/<namespace>/.<claim>.lock held shared by every running pod that uses it
//! ```
//!
//! A claim is created on first use and never removed with the pod: only
//! `supervisor volume rm` removes it, and only when no running pod holds
//! it. Every supervisor that runs a pod using the claim holds a shared
//! `flock` on its lock file for as long as it runs (a dead supervisor
//! holds nothing), and `rm` takes it exclusive without waiting. A claim
//! name is a DNS-1123 subdomain, so it never starts with the dot of its
//! lock file's name.

use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Default root of the claims' volumes.
pub const DEFAULT_VOLUME_DIR: &str = "/var/lib/supervisor/volumes";
/// Environment variable that moves it.
pub const VOLUME_DIR_ENV: &str = "SUPERVISOR_VOLUME_DIR";

/// The volume root from a flag, then the environment, then the default.
pub fn resolve_root(flag: Option<&Path>) -> PathBuf {
    if let Some(path) = flag {
        return path.to_path_buf();
    }
    match std::env::var_os(VOLUME_DIR_ENV) {
        Some(value) if !value.is_empty() => PathBuf::from(value),
        _ => PathBuf::from(DEFAULT_VOLUME_DIR),
    }
}

/// A claim's volume could not be had, listed or removed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("volume {namespace}/{claim}: {action} {path}: {source}")]
    Io {
        namespace: String,
        claim: String,
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "volume {namespace}/{claim} is in use by a running pod (its supervisor holds {lock}); stop the pod first"
    )]
    InUse {
        namespace: String,
        claim: String,
        lock: PathBuf,
    },
    #[error("volume {namespace}/{claim}: no such volume in {root}")]
    NotFound {
        namespace: String,
        claim: String,
        root: PathBuf,
    },
    #[error("volume name {name:?}: {reason}")]
    BadName { name: String, reason: &'static str },
}

/// One claim's place under the volume root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath {
    namespace: String,
    claim: String,
    dir: PathBuf,
    lock: PathBuf,
}

impl ClaimPath {
    /// Claim `claim` of `namespace` under `root`; both names are checked
    /// to be plain path components that cannot start with a dot.
    pub fn new(root: &Path, namespace: &str, claim: &str) -> Result<ClaimPath, ClaimError> {
        for name in [namespace, claim] {
            if name.is_empty() || name.starts_with('.') || name.contains(['/', '\0']) {
                return Err(ClaimError::BadName {
                    name: name.to_owned(),
                    reason: "must be a DNS-1123 name (no '/', not empty, not starting with '.')",
                });
            }
        }
        let ns_dir = root.join(namespace);
        Ok(ClaimPath {
            namespace: namespace.to_owned(),
            claim: claim.to_owned(),
            dir: ns_dir.join(claim),
            lock: ns_dir.join(format!(".{claim}.lock")),
        })
    }

    /// The volume directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The claim name.
    pub fn claim(&self) -> &str {
        &self.claim
    }

    fn io(&self, action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ClaimError {
        let (namespace, claim, path) = (
            self.namespace.clone(),
            self.claim.clone(),
            path.to_path_buf(),
        );
        move |source| ClaimError::Io {
            namespace,
            claim,
            action,
            path,
            source,
        }
    }

    /// Open the lock file and lock it as `how`, again if `rm` unlinked the
    /// file meanwhile (the lock must be on the file the path names).
    fn lock(&self, how: FlockArg) -> Result<Option<Flock<File>>, ClaimError> {
        if let Some(parent) = self.lock.parent() {
            private_dir(parent).map_err(self.io("create", parent))?;
        }
        loop {
            let file = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&self.lock)
                .map_err(self.io("open", &self.lock))?;
            let locked = match Flock::lock(file, how) {
                Ok(l) => l,
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Ok(None),
                Err((_, errno)) => return Err(self.io("lock", &self.lock)(errno.into())),
            };
            let same = match (locked.metadata(), fs::metadata(&self.lock)) {
                (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                _ => false,
            };
            if same {
                return Ok(Some(locked));
            }
        }
    }

    /// Hold the claim for a running pod (a shared lock, waiting for a
    /// `volume rm` under way) and create its volume if this is its first
    /// use: 0755 root, in a 0700 namespace dir.
    pub fn acquire(&self) -> Result<ClaimHold, ClaimError> {
        let lock = self
            .lock(FlockArg::LockShared)?
            .ok_or_else(|| self.io("lock", &self.lock)(io::ErrorKind::WouldBlock.into()))?;
        match fs::DirBuilder::new().mode(0o755).create(&self.dir) {
            Ok(()) => fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o755))
                .map_err(self.io("chmod", &self.dir))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let meta =
                    fs::symlink_metadata(&self.dir).map_err(self.io("inspect", &self.dir))?;
                if !meta.is_dir() {
                    return Err(self.io("use", &self.dir)(io::Error::other(
                        "not a directory",
                    )));
                }
            }
            Err(e) => return Err(self.io("create", &self.dir)(e)),
        }
        Ok(ClaimHold {
            path: self.clone(),
            _lock: lock,
        })
    }

    /// Whether a running pod holds the claim now.
    pub fn in_use(&self) -> Result<bool, ClaimError> {
        Ok(self.lock(FlockArg::LockExclusiveNonblock)?.is_none())
    }

    /// Remove the volume and its lock file, refused while a running pod
    /// holds it.
    pub fn remove(&self, root: &Path) -> Result<(), ClaimError> {
        if !self.dir.is_dir() {
            return Err(ClaimError::NotFound {
                namespace: self.namespace.clone(),
                claim: self.claim.clone(),
                root: root.to_path_buf(),
            });
        }
        let Some(lock) = self.lock(FlockArg::LockExclusiveNonblock)? else {
            return Err(ClaimError::InUse {
                namespace: self.namespace.clone(),
                claim: self.claim.clone(),
                lock: self.lock.clone(),
            });
        };
        fs::remove_dir_all(&self.dir).map_err(self.io("remove", &self.dir))?;
        // Unlinked while held: a waiting `acquire` sees another inode at
        // the path and locks the new file.
        fs::remove_file(&self.lock).map_err(self.io("remove", &self.lock))?;
        drop(lock);
        Ok(())
    }
}

/// A claim held by a running pod: the volume exists and `rm` refuses it
/// until this is dropped.
#[derive(Debug)]
pub struct ClaimHold {
    path: ClaimPath,
    _lock: Flock<File>,
}

impl ClaimHold {
    /// The volume directory.
    pub fn dir(&self) -> &Path {
        self.path.dir()
    }
}

/// Every claim's volume under `root`, by namespace then name.
pub fn list(root: &Path) -> Result<Vec<ClaimPath>, ClaimError> {
    let mut out = Vec::new();
    let namespaces = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(source) => {
            return Err(ClaimError::Io {
                namespace: "*".into(),
                claim: "*".into(),
                action: "list",
                path: root.to_path_buf(),
                source,
            });
        }
    };
    for ns in namespaces.flatten() {
        let Ok(namespace) = ns.file_name().into_string() else {
            continue;
        };
        if !ns.path().is_dir() || namespace.starts_with('.') {
            continue;
        }
        for claim in fs::read_dir(ns.path()).into_iter().flatten().flatten() {
            let Ok(name) = claim.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') || !claim.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if let Ok(path) = ClaimPath::new(root, &namespace, &name) {
                out.push(path);
            }
        }
    }
    out.sort_by(|a, b| (&a.namespace, &a.claim).cmp(&(&b.namespace, &b.claim)));
    Ok(out)
}

/// A root-only directory (and its parents), 0700 whatever the umask.
fn private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    if let Some(root) = dir.parent() {
        fs::set_permissions(root, fs::Permissions::from_mode(0o700))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_made_once_kept_and_removed_only_when_free() {
        let root = tempfile::tempdir().unwrap();
        let claim = ClaimPath::new(root.path(), "default", "data").unwrap();
        let hold = claim.acquire().unwrap();
        assert_eq!(hold.dir(), root.path().join("default/data"));
        fs::write(hold.dir().join("kept"), b"1").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&root.path().join("default")), 0o700);
        assert_eq!(mode(hold.dir()), 0o755);
        assert!(claim.in_use().unwrap());
        assert!(matches!(
            claim.remove(root.path()),
            Err(ClaimError::InUse { .. })
        ));
        // A second holder (another pod) shares it.
        let second = claim.acquire().unwrap();
        assert_eq!(fs::read(second.dir().join("kept")).unwrap(), b"1");
        drop(hold);
        drop(second);
        assert!(!claim.in_use().unwrap());
        assert_eq!(list(root.path()).unwrap(), vec![claim.clone()]);
        claim.remove(root.path()).unwrap();
        assert!(!claim.dir().exists());
        assert!(list(root.path()).unwrap().is_empty());
        assert!(matches!(
            claim.remove(root.path()),
            Err(ClaimError::NotFound { .. })
        ));
    }

    #[test]
    fn names_that_could_leave_the_root_are_refused() {
        for (ns, claim) in [
            ("default", ".."),
            ("default", "a/b"),
            ("", "x"),
            (".x", "y"),
        ] {
            assert!(
                ClaimPath::new(Path::new("/r"), ns, claim).is_err(),
                "{ns} {claim}"
            );
        }
    }
}
