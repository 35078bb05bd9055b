//! What a container runtime reads from a stored image to run it: the
//! config's `Entrypoint`, `Cmd`, `Env`, `User` and `WorkingDir`, and small
//! files (`/etc/passwd`, `/etc/group`) looked up through the unpacked
//! layers as overlayfs would see them (top layer first; a whiteout device
//! hides a path, an opaque directory hides what is below it). Applying them
//! to a container (kubelet's rules) is the supervisor's.

use crate::store::{ImageRecord, Store, StoreError};
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Largest file [`read_image_file`] returns.
const MAX_FILE_BYTES: u64 = 4 << 20;

/// The part of an image config a container starts from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunConfig {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env` as `(name, value)`, in order.
    pub env: Vec<(String, String)>,
    /// `User` (`uid`, `uid:gid`, `name`, `name:group`); empty: root.
    pub user: String,
    /// `WorkingDir`; empty: `/`.
    pub working_dir: String,
}

#[derive(serde::Deserialize)]
struct ConfigFile {
    config: Option<ContainerConfig>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerConfig {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Option<Vec<String>>,
    user: Option<String>,
    working_dir: Option<String>,
}

impl Store {
    /// The run config of `record`, from its config blob.
    pub fn run_config(&self, record: &ImageRecord) -> Result<RunConfig, StoreError> {
        let data = self.read_blob(&record.id)?;
        let file: ConfigFile = serde_json::from_slice(&data).map_err(|e| StoreError::Corrupt {
            path: self.blob_path(&record.id),
            reason: format!("not an image config: {e}"),
        })?;
        let Some(c) = file.config else {
            return Ok(RunConfig::default());
        };
        let env = c
            .env
            .unwrap_or_default()
            .into_iter()
            .map(|entry| match entry.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (entry, String::new()),
            })
            .collect();
        Ok(RunConfig {
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            env,
            user: c.user.unwrap_or_default(),
            working_dir: c.working_dir.unwrap_or_default(),
        })
    }
}

/// The content of the absolute `path` (e.g. `/etc/passwd`) in the image
/// whose layer trees are `top_first`, as the overlay shows it; `None` when
/// it is absent, hidden, not a regular file, or reached through a symlink
/// (not followed: the caller treats it as absent).
pub fn read_image_file(top_first: &[PathBuf], path: &Path) -> Option<Vec<u8>> {
    let parts: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p),
            _ => None,
        })
        .collect();
    let (name, dirs) = parts.split_last()?;
    for layer in top_first {
        let mut dir = layer.clone();
        let mut hidden_below = false;
        for part in dirs {
            dir.push(part);
            match std::fs::symlink_metadata(&dir) {
                Ok(m) if m.is_dir() => {
                    if is_opaque(&dir) {
                        hidden_below = true;
                    }
                }
                // A whiteout, a file or a symlink in the way: absent.
                Ok(_) => return None,
                Err(_) => break,
            }
        }
        let file = dir.join(name);
        match std::fs::symlink_metadata(&file) {
            Ok(m) if m.is_file() => return read_beneath(layer, &file),
            Ok(_) => return None,
            Err(_) if hidden_below => return None,
            Err(_) => {}
        }
    }
    None
}

fn is_opaque(dir: &Path) -> bool {
    let mut value = [0u8; 1];
    rustix::fs::lgetxattr(dir, "trusted.overlay.opaque", &mut value).is_ok_and(|n| n == 1)
        && value[0] == b'y'
}

/// Reads `file` inside `layer` without following any symlink on the way.
fn read_beneath(layer: &Path, file: &Path) -> Option<Vec<u8>> {
    let root = rustix::fs::open(layer, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).ok()?;
    let relative = file.strip_prefix(layer).ok()?;
    let fd = rustix::fs::openat2(
        &root,
        relative,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .ok()?;
    if FileType::from_raw_mode(rustix::fs::fstat(&fd).ok()?.st_mode) != FileType::RegularFile {
        return None;
    }
    let mut data = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_FILE_BYTES)
        .read_to_end(&mut data)
        .ok()?;
    Some(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_from_the_topmost_layer_that_has_it() {
        let dir = tempfile::tempdir().unwrap();
        let (top, bottom) = (dir.path().join("top"), dir.path().join("bottom"));
        std::fs::create_dir_all(bottom.join("etc")).unwrap();
        std::fs::create_dir_all(top.join("etc")).unwrap();
        std::fs::write(bottom.join("etc/passwd"), "old").unwrap();
        std::fs::write(bottom.join("etc/group"), "g").unwrap();
        let layers = [top.clone(), bottom.clone()];
        assert_eq!(
            read_image_file(&layers, Path::new("/etc/passwd")).unwrap(),
            b"old"
        );
        std::fs::write(top.join("etc/passwd"), "new").unwrap();
        assert_eq!(
            read_image_file(&layers, Path::new("/etc/passwd")).unwrap(),
            b"new"
        );
        assert_eq!(
            read_image_file(&layers, Path::new("/etc/group")).unwrap(),
            b"g"
        );
        assert!(read_image_file(&layers, Path::new("/etc/shadow")).is_none());
        // A symlinked file is not followed.
        std::os::unix::fs::symlink("/etc/hostname", top.join("etc/hosts")).unwrap();
        assert!(read_image_file(&layers, Path::new("/etc/hosts")).is_none());
    }

    #[test]
    fn whiteouts_and_opaque_directories_hide_lower_files() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root (whiteout devices, trusted xattrs)");
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI runs as root"
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (top, bottom) = (dir.path().join("top"), dir.path().join("bottom"));
        std::fs::create_dir_all(bottom.join("etc")).unwrap();
        std::fs::write(bottom.join("etc/passwd"), "old").unwrap();
        std::fs::create_dir_all(top.join("etc")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            top.join("etc/passwd"),
            FileType::CharacterDevice,
            Mode::empty(),
            0,
        )
        .unwrap();
        let layers = [top.clone(), bottom.clone()];
        assert!(read_image_file(&layers, Path::new("/etc/passwd")).is_none());
        std::fs::remove_file(top.join("etc/passwd")).unwrap();
        rustix::fs::setxattr(
            top.join("etc"),
            "trusted.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        assert!(read_image_file(&layers, Path::new("/etc/passwd")).is_none());
    }
}
