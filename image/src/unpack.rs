//! Unpacking one layer (a tar stream, gzip/zstd/plain) into an empty
//! directory in overlayfs form: `.wh.NAME` becomes a 0/0 character device,
//! `.wh..wh..opq` the xattr `trusted.overlay.opaque=y` on its directory.
//! Each entry is placed by this module (never tar's own `unpack`), relative
//! to directory descriptors opened with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)`, so `..`, absolute names, a path through a symlink
//! and a hard link out of the layer are refused, naming the entry. It returns
//! the layer's diffID; comparing it and committing the layer is the store's.

use crate::compression;
use crate::digest::{Digest, HashingReader};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps, XattrFlags};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The prefix of a whiteout entry.
const WHITEOUT_PREFIX: &str = ".wh.";
/// The entry that makes its directory opaque.
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
/// The prefix of AUFS' own bookkeeping entries (`.wh..wh.plnk`), skipped.
const AUFS_META_PREFIX: &str = ".wh..wh.";
/// The xattr overlayfs reads for an opaque directory.
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// xattrs under this prefix steer overlayfs; a layer may not set them.
const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";
/// The PAX record prefix that carries an xattr.
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";

/// What went wrong unpacking a layer.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The stream is not a readable tar (truncated, bad header, bad compression).
    #[error("layer is not a readable tar stream: {source}")]
    Corrupt {
        /// The reading error.
        source: io::Error,
    },
    /// An entry would land outside the layer directory.
    #[error("layer entry {entry:?} refused: {reason}")]
    Escapes {
        /// The entry's name as in the archive.
        entry: String,
        /// Why (`..`, absolute, through a symlink).
        reason: String,
    },
    /// An entry of a kind a layer cannot hold.
    #[error("layer entry {entry:?} refused: unsupported tar entry type {kind:?}")]
    Unsupported {
        /// The entry's name as in the archive.
        entry: String,
        /// The tar type byte.
        kind: u8,
    },
    /// A file-system call failed for an entry.
    #[error("layer entry {entry:?}: {action}: {source}")]
    Io {
        /// The entry's name as in the archive.
        entry: String,
        /// What was being done.
        action: &'static str,
        /// The error.
        source: io::Error,
    },
    /// The target directory could not be opened.
    #[error("{path}: {source}")]
    Target {
        /// The layer directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// What an unpacked layer measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackedLayer {
    /// sha256 of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Length of the uncompressed tar stream.
    pub tar_bytes: u64,
}

/// Unpacks the layer stream `reader` into the existing, empty directory
/// `target`. Reads the stream to its end (the diffID covers all of it).
pub fn unpack_layer(reader: impl Read, target: &Path) -> Result<UnpackedLayer, UnpackError> {
    let root = rustix::fs::open(
        target,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| UnpackError::Target {
        path: target.to_path_buf(),
        source: e.into(),
    })?;
    let corrupt = |source: io::Error| UnpackError::Corrupt { source };
    let (_, tar_stream) = compression::decompress(reader).map_err(corrupt)?;
    let mut hashing = HashingReader::new(tar_stream);
    let mut layer = Layer {
        root,
        directory_times: Vec::new(),
    };
    {
        let mut archive = tar::Archive::new(&mut hashing);
        for entry in archive.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            layer.place(&mut entry)?;
        }
    }
    layer.set_directory_times()?;
    let (diff_id, tar_bytes) = hashing.finish().map_err(corrupt)?;
    Ok(UnpackedLayer { diff_id, tar_bytes })
}

/// The layer directory being filled.
struct Layer {
    root: OwnedFd,
    /// Directories' mtimes, set last (creating children changes them).
    directory_times: Vec<(Vec<Vec<u8>>, u64, String)>,
}

/// An entry's metadata from its header and PAX records.
struct Metadata {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: u64,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Layer {
    fn place<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), UnpackError> {
        let name_bytes = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&name_bytes).into_owned();
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            return Ok(());
        }
        let components = split_path(&name_bytes).map_err(|reason| UnpackError::Escapes {
            entry: name.clone(),
            reason: reason.to_string(),
        })?;
        let io_error = |action: &'static str| {
            let entry = name.clone();
            move |source: io::Error| UnpackError::Io {
                entry,
                action,
                source,
            }
        };
        let metadata = read_metadata(entry).map_err(io_error("reading the header"))?;
        let Some((file_name, parents)) = components.split_last() else {
            // "./": the layer's root directory itself.
            if kind == tar::EntryType::Directory {
                apply_directory_metadata(&self.root, &metadata)
                    .map_err(io_error("setting the root's metadata"))?;
                self.directory_times
                    .push((Vec::new(), metadata.mtime, name));
            }
            return Ok(());
        };
        let parent = self.open_parent(parents, &name)?;
        let file_name_str = OsStr::from_bytes(file_name);
        if file_name.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            if file_name == OPAQUE_WHITEOUT.as_bytes() {
                rustix::fs::fsetxattr(&parent, OPAQUE_XATTR, b"y", XattrFlags::empty())
                    .map_err(|e| io_error("setting trusted.overlay.opaque")(e.into()))?;
            } else if !file_name.starts_with(AUFS_META_PREFIX.as_bytes()) {
                let hidden = &file_name[WHITEOUT_PREFIX.len()..];
                remove_existing(&parent, hidden).map_err(io_error("replacing"))?;
                rustix::fs::mknodat(
                    &parent,
                    OsStr::from_bytes(hidden),
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rustix::fs::makedev(0, 0),
                )
                .map_err(|e| io_error("making the whiteout device")(e.into()))?;
            }
            return Ok(());
        }
        let existing_is_directory =
            match rustix::fs::statat(&parent, file_name_str, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => FileType::from_raw_mode(stat.st_mode) == FileType::Directory,
                Err(rustix::io::Errno::NOENT) => false,
                Err(e) => return Err(io_error("looking at the existing entry")(e.into())),
            };
        if !(kind == tar::EntryType::Directory && existing_is_directory) {
            remove_existing(&parent, file_name).map_err(io_error("replacing"))?;
        }
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let file = rustix::fs::openat(
                    &parent,
                    file_name_str,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| io_error("creating the file")(e.into()))?;
                let mut file = File::from(file);
                io::copy(entry, &mut file).map_err(|source| UnpackError::Corrupt { source })?;
                apply_file_metadata(&file, &metadata).map_err(io_error("setting metadata"))?;
            }
            tar::EntryType::Directory => {
                if !existing_is_directory {
                    rustix::fs::mkdirat(&parent, file_name_str, Mode::from_raw_mode(0o700))
                        .map_err(|e| io_error("making the directory")(e.into()))?;
                }
                let directory = open_beneath(&parent, file_name_str)
                    .map_err(io_error("opening the directory"))?;
                apply_directory_metadata(&directory, &metadata)
                    .map_err(io_error("setting metadata"))?;
                self.directory_times
                    .push((components.clone(), metadata.mtime, name.clone()));
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                rustix::fs::symlinkat(OsStr::from_bytes(&target), &parent, file_name_str)
                    .map_err(|e| io_error("making the symlink")(e.into()))?;
                apply_node_metadata(&parent, file_name_str, &metadata, false)
                    .map_err(io_error("setting metadata"))?;
            }
            tar::EntryType::Link => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                let escapes = |reason: String| UnpackError::Escapes {
                    entry: name.clone(),
                    reason,
                };
                let target_components = split_path(&target).map_err(|reason| {
                    escapes(format!(
                        "hard link target {:?}: {reason}",
                        String::from_utf8_lossy(&target)
                    ))
                })?;
                let Some((target_name, target_parents)) = target_components.split_last() else {
                    return Err(escapes("hard link to the layer's root".into()));
                };
                let target_parent = self.open_existing_parent(target_parents, &name)?;
                rustix::fs::linkat(
                    &target_parent,
                    OsStr::from_bytes(target_name),
                    &parent,
                    file_name_str,
                    AtFlags::empty(),
                )
                .map_err(|e| io_error("making the hard link")(e.into()))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let (file_type, device) = match kind {
                    tar::EntryType::Char => (FileType::CharacterDevice, device_number(entry)),
                    tar::EntryType::Block => (FileType::BlockDevice, device_number(entry)),
                    _ => (FileType::Fifo, Ok(0)),
                };
                let device = device.map_err(io_error("reading the device number"))?;
                rustix::fs::mknodat(
                    &parent,
                    file_name_str,
                    file_type,
                    Mode::from_raw_mode(0o600),
                    device,
                )
                .map_err(|e| io_error("making the node")(e.into()))?;
                apply_node_metadata(&parent, file_name_str, &metadata, true)
                    .map_err(io_error("setting metadata"))?;
            }
            other => {
                return Err(UnpackError::Unsupported {
                    entry: name,
                    kind: other.as_byte(),
                });
            }
        }
        Ok(())
    }

    /// A second descriptor of the layer's root.
    fn root_again(&self, entry: &str) -> Result<OwnedFd, UnpackError> {
        self.root.try_clone().map_err(|source| UnpackError::Io {
            entry: entry.to_string(),
            action: "opening the layer root",
            source,
        })
    }

    /// Opens the parent directory of an entry, making missing directories
    /// (0755, root-owned) on the way; a symlink or a file on the way is refused.
    fn open_parent(&self, parents: &[Vec<u8>], entry: &str) -> Result<OwnedFd, UnpackError> {
        if parents.is_empty() {
            return self.root_again(entry);
        }
        // The common case, every parent already there: one call.
        if let Ok(directory) = open_beneath(&self.root, OsStr::from_bytes(&parents.join(&b'/'))) {
            return Ok(directory);
        }
        let mut directory = self.root_again(entry)?;
        for part in parents {
            let part_name = OsStr::from_bytes(part);
            directory = match open_beneath(&directory, part_name) {
                Ok(next) => next,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    rustix::fs::mkdirat(&directory, part_name, Mode::from_raw_mode(0o755))
                        .map_err(|source| UnpackError::Io {
                            entry: entry.to_string(),
                            action: "making a parent directory",
                            source: source.into(),
                        })?;
                    open_beneath(&directory, part_name).map_err(|e| parent_error(e, part, entry))?
                }
                Err(e) => return Err(parent_error(e, part, entry)),
            };
        }
        Ok(directory)
    }

    /// Opens the parent directory of a hard link's target, which must exist.
    fn open_existing_parent(
        &self,
        parents: &[Vec<u8>],
        entry: &str,
    ) -> Result<OwnedFd, UnpackError> {
        if parents.is_empty() {
            return self.root_again(entry);
        }
        let joined = parents.join(&b'/');
        open_beneath(&self.root, OsStr::from_bytes(&joined))
            .map_err(|e| parent_error(e, &joined, entry))
    }

    /// Sets directories' mtimes, deepest last-made first.
    fn set_directory_times(&mut self) -> Result<(), UnpackError> {
        for (components, mtime, entry) in self.directory_times.drain(..).rev() {
            let path = if components.is_empty() {
                b".".to_vec()
            } else {
                components.join(&b'/')
            };
            // A directory a later entry replaced has no time of its own to keep.
            let Ok(directory) = open_beneath(&self.root, OsStr::from_bytes(&path)) else {
                continue;
            };
            rustix::fs::futimens(&directory, &timestamps(mtime)).map_err(|e| UnpackError::Io {
                entry,
                action: "setting the mtime",
                source: e.into(),
            })?;
        }
        Ok(())
    }
}

/// An error opening a parent directory: a symlink or a non-directory on
/// the way is an escape, anything else an I/O error.
fn parent_error(error: io::Error, part: &[u8], entry: &str) -> UnpackError {
    let part = String::from_utf8_lossy(part);
    match rustix::io::Errno::from_io_error(&error) {
        Some(rustix::io::Errno::LOOP) => UnpackError::Escapes {
            entry: entry.to_string(),
            reason: format!("its path goes through the symlink {part:?}"),
        },
        Some(rustix::io::Errno::NOTDIR) => UnpackError::Escapes {
            entry: entry.to_string(),
            reason: format!("its path goes through {part:?}, which is not a directory"),
        },
        _ => UnpackError::Io {
            entry: entry.to_string(),
            action: "opening a parent directory",
            source: error,
        },
    }
}

/// Opens the directory `path` under `directory` without following any
/// symlink and without leaving `directory`.
fn open_beneath(directory: &impl AsFd, path: &OsStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat2(
        directory,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH
            | ResolveFlags::NO_SYMLINKS
            | ResolveFlags::NO_MAGICLINKS
            | ResolveFlags::NO_XDEV,
    )?)
}

/// Splits an archive path into its parts, dropping `.` and empty parts;
/// refuses absolute paths and `..`.
fn split_path(name: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    if name.starts_with(b"/") {
        return Err("absolute path");
    }
    let mut parts = Vec::new();
    for part in name.split(|&c| c == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("path has a `..` part"),
            _ => parts.push(part.to_vec()),
        }
    }
    Ok(parts)
}

/// Removes whatever is at `name` in `parent` (a directory with its tree).
fn remove_existing(parent: &OwnedFd, name: &[u8]) -> io::Result<()> {
    let name = OsStr::from_bytes(name);
    match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(rustix::io::Errno::ISDIR) => std::fs::remove_dir_all(proc_path(parent, name)),
        Err(e) => Err(e.into()),
    }
}

/// `/proc/self/fd/N/NAME`: `name` inside the directory open as `parent`,
/// for the calls that have no `*at` form (xattrs on a symlink or a node).
fn proc_path(parent: &OwnedFd, name: &OsStr) -> PathBuf {
    Path::new("/proc/self/fd")
        .join(parent.as_raw_fd().to_string())
        .join(name)
}

fn read_metadata<R: Read>(entry: &mut tar::Entry<R>) -> io::Result<Metadata> {
    let header = entry.header();
    let uid = u32::try_from(header.uid()?).map_err(io::Error::other)?;
    let gid = u32::try_from(header.gid()?).map_err(io::Error::other)?;
    let mode = header.mode()? & 0o7777;
    let mtime = header.mtime()?;
    let mut xattrs = Vec::new();
    if let Some(extensions) = entry.pax_extensions()? {
        for extension in extensions {
            let extension = extension?;
            let Ok(key) = extension.key() else { continue };
            if let Some(xattr) = key.strip_prefix(PAX_XATTR_PREFIX)
                && !xattr.starts_with(OVERLAY_XATTR_PREFIX)
            {
                xattrs.push((xattr.to_string(), extension.value_bytes().to_vec()));
            }
        }
    }
    Ok(Metadata {
        uid,
        gid,
        mode,
        mtime,
        xattrs,
    })
}

fn device_number<R: Read>(entry: &tar::Entry<R>) -> io::Result<rustix::fs::Dev> {
    let header = entry.header();
    let major = header.device_major()?.unwrap_or(0);
    let minor = header.device_minor()?.unwrap_or(0);
    Ok(rustix::fs::makedev(major, minor))
}

fn timestamps(mtime: u64) -> Timestamps {
    let time = Timespec {
        tv_sec: mtime.try_into().unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    Timestamps {
        last_access: time,
        last_modification: time,
    }
}

fn owner(metadata: &Metadata) -> (Option<rustix::fs::Uid>, Option<rustix::fs::Gid>) {
    (
        Some(rustix::fs::Uid::from_raw(metadata.uid)),
        Some(rustix::fs::Gid::from_raw(metadata.gid)),
    )
}

/// Owner, then mode (chown clears setuid), then xattrs (chown clears
/// security.capability), then times, on an open regular file.
fn apply_file_metadata(file: &File, metadata: &Metadata) -> io::Result<()> {
    apply_directory_metadata(file, metadata)?;
    rustix::fs::futimens(file, &timestamps(metadata.mtime))?;
    Ok(())
}

/// Owner, mode and xattrs on an open file or directory (times come later).
fn apply_directory_metadata(fd: &impl AsFd, metadata: &Metadata) -> io::Result<()> {
    let (uid, gid) = owner(metadata);
    rustix::fs::fchown(fd, uid, gid)?;
    rustix::fs::fchmod(fd, Mode::from_raw_mode(metadata.mode))?;
    for (name, value) in &metadata.xattrs {
        rustix::fs::fsetxattr(fd, name.as_str(), value, XattrFlags::empty())?;
    }
    Ok(())
}

/// Owner, mode (not for symlinks), xattrs and times on a symlink, device
/// or fifo, without opening it.
fn apply_node_metadata(
    parent: &OwnedFd,
    name: &OsStr,
    metadata: &Metadata,
    set_mode: bool,
) -> io::Result<()> {
    let (uid, gid) = owner(metadata);
    rustix::fs::chownat(parent, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)?;
    if set_mode {
        rustix::fs::chmodat(
            parent,
            name,
            Mode::from_raw_mode(metadata.mode),
            AtFlags::empty(),
        )?;
    }
    for (xattr, value) in &metadata.xattrs {
        rustix::fs::lsetxattr(
            proc_path(parent, name),
            xattr.as_str(),
            value,
            XattrFlags::empty(),
        )?;
    }
    rustix::fs::utimensat(
        parent,
        name,
        &timestamps(metadata.mtime),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{LayerTar, gzip, have_root};
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    fn unpack(tar: &[u8]) -> (tempfile::TempDir, Result<UnpackedLayer, UnpackError>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("layer")).unwrap();
        let result = unpack_layer(tar, &dir.path().join("layer"));
        (dir, result)
    }

    fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
        let mut value = vec![0u8; 256];
        let n = rustix::fs::lgetxattr(path, name, &mut value).ok()?;
        value.truncate(n);
        Some(value)
    }

    /// security.capability v2: cap_net_bind_service, effective.
    const CAPABILITY: [u8; 20] = [1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

    #[test]
    fn keeps_types_modes_owners_links_and_xattrs() {
        if !have_root() {
            return;
        }
        let tar = LayerTar::new()
            .dir("bin", 0o755)
            .file_with("bin/su", 0o4755, (1000, 1001), &[], b"setuid")
            .file_with(
                "bin/ping",
                0o755,
                (0, 0),
                &[("security.capability", &CAPABILITY), ("user.note", b"x")],
                b"ping",
            )
            .hardlink("bin/su2", "bin/su")
            .symlink("bin/sh", "/bin/busybox")
            .node("dev-null", tar::EntryType::Char, 1, 3)
            .node("fifo", tar::EntryType::Fifo, 0, 0)
            .dir("deep/a/b", 0o700)
            .file("implicit/parent/file", 0o644, b"made")
            .finish();
        let (dir, result) = unpack(&tar);
        let layer = dir.path().join("layer");
        let unpacked = result.unwrap();
        assert_eq!(unpacked.diff_id, Digest::of(&tar));
        assert_eq!(unpacked.tar_bytes, tar.len() as u64);
        let su = std::fs::symlink_metadata(layer.join("bin/su")).unwrap();
        assert_eq!(
            (su.mode() & 0o7777, su.uid(), su.gid()),
            (0o4755, 1000, 1001)
        );
        assert_eq!(su.mtime(), 1_600_000_000);
        assert_eq!(su.nlink(), 2);
        assert_eq!(
            su.ino(),
            std::fs::metadata(layer.join("bin/su2")).unwrap().ino()
        );
        assert_eq!(
            xattr(&layer.join("bin/ping"), "security.capability").unwrap(),
            CAPABILITY
        );
        assert_eq!(xattr(&layer.join("bin/ping"), "user.note").unwrap(), b"x");
        assert_eq!(
            std::fs::read_link(layer.join("bin/sh")).unwrap(),
            Path::new("/bin/busybox")
        );
        let null = std::fs::symlink_metadata(layer.join("dev-null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
        assert!(
            std::fs::symlink_metadata(layer.join("fifo"))
                .unwrap()
                .file_type()
                .is_fifo()
        );
        let deep = std::fs::metadata(layer.join("deep/a/b")).unwrap();
        assert_eq!(deep.mode() & 0o7777, 0o700);
        assert_eq!(deep.mtime(), 1_600_000_000);
        assert_eq!(
            std::fs::read(layer.join("implicit/parent/file")).unwrap(),
            b"made"
        );
        assert_eq!(
            std::fs::metadata(layer.join("bin")).unwrap().mtime(),
            1_600_000_000
        );
    }

    #[test]
    fn whiteouts_become_overlay_devices_and_opaque_dirs() {
        if !have_root() {
            return;
        }
        let tar = LayerTar::new()
            .file(".wh.gone", 0o644, b"")
            .dir("etc", 0o755)
            .file("etc/.wh..wh..opq", 0o644, b"")
            .file("etc/.wh..wh.plnk", 0o644, b"")
            .file("etc/new", 0o644, b"n")
            .finish();
        let (dir, result) = unpack(&tar);
        result.unwrap();
        let layer = dir.path().join("layer");
        let gone = std::fs::symlink_metadata(layer.join("gone")).unwrap();
        assert!(gone.file_type().is_char_device());
        assert_eq!(gone.rdev(), 0);
        assert_eq!(
            xattr(&layer.join("etc"), "trusted.overlay.opaque").unwrap(),
            b"y"
        );
        let names: Vec<_> = std::fs::read_dir(layer.join("etc"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["new"]);
    }

    #[test]
    fn compressed_layers_have_the_plain_tar_diff_id() {
        if !have_root() {
            return;
        }
        let tar = LayerTar::new().file("a", 0o644, b"a").finish();
        let plain = unpack(&tar).1.unwrap();
        assert_eq!(unpack(&gzip(&tar)).1.unwrap(), plain);
        assert_eq!(
            unpack(&zstd::encode_all(&tar[..], 3).unwrap()).1.unwrap(),
            plain
        );
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        if !have_root() {
            return;
        }
        let tar = LayerTar::new()
            .file("x", 0o644, b"first")
            .file("x", 0o600, b"second")
            .dir("d", 0o755)
            .file("d/f", 0o644, b"")
            .symlink("d", "elsewhere")
            .finish();
        let (dir, result) = unpack(&tar);
        result.unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("layer/x")).unwrap(),
            b"second"
        );
        assert_eq!(
            std::fs::read_link(dir.path().join("layer/d")).unwrap(),
            Path::new("elsewhere")
        );
    }

    #[test]
    fn hostile_entries_are_refused_and_nothing_lands_outside() {
        if !have_root() {
            return;
        }
        let outside = format!("podvisor-unpack-test-{}", std::process::id());
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "../x",
                LayerTar::new()
                    .file(&format!("../{outside}"), 0o644, b"x")
                    .finish(),
            ),
            (
                "a/../../x",
                LayerTar::new()
                    .file(&format!("a/../../{outside}"), 0o644, b"x")
                    .finish(),
            ),
            (
                "absolute",
                LayerTar::new()
                    .file(&format!("/tmp/{outside}"), 0o644, b"x")
                    .finish(),
            ),
            (
                "through symlink to /",
                LayerTar::new()
                    .symlink("a", "/")
                    .file(&format!("a/tmp/{outside}"), 0o644, b"x")
                    .finish(),
            ),
            (
                "through symlink to ..",
                LayerTar::new()
                    .symlink("b", "..")
                    .file(&format!("b/{outside}"), 0o644, b"x")
                    .finish(),
            ),
            (
                "through symlink dir",
                LayerTar::new()
                    .dir("d", 0o755)
                    .symlink("d/up", "../..")
                    .file(&format!("d/up/{outside}"), 0o644, b"x")
                    .finish(),
            ),
            (
                "hardlink ..",
                LayerTar::new()
                    .hardlink("p", "../../../../etc/passwd")
                    .finish(),
            ),
            (
                "hardlink absolute",
                LayerTar::new().hardlink("p", "/etc/passwd").finish(),
            ),
            (
                "hardlink through symlink",
                LayerTar::new()
                    .symlink("e", "/etc")
                    .hardlink("p", "e/passwd")
                    .finish(),
            ),
            (
                "whiteout through symlink",
                LayerTar::new()
                    .symlink("w", "/tmp")
                    .file(&format!("w/.wh.{outside}"), 0o644, b"")
                    .finish(),
            ),
        ];
        for (what, tar) in cases {
            let (dir, result) = unpack(&tar);
            let error = result.expect_err(what);
            assert!(
                matches!(error, UnpackError::Escapes { .. }),
                "{what}: {error}"
            );
            let entries: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(entries, ["layer"], "{what}");
            assert!(!Path::new("/tmp").join(&outside).exists(), "{what}");
            assert!(
                !std::fs::read_dir(dir.path().join("layer"))
                    .unwrap()
                    .any(|e| e.unwrap().file_name() == "p"),
                "{what}"
            );
        }
    }

    #[test]
    fn a_truncated_layer_is_corrupt() {
        let tar = LayerTar::new().file("a", 0o644, &[7u8; 5000]).finish();
        let (_dir, result) = unpack(&tar[..2000]);
        assert!(
            matches!(
                result,
                Err(UnpackError::Corrupt { .. }) | Err(UnpackError::Io { .. })
            ),
            "{result:?}"
        );
        let gz = gzip(&tar);
        let (_dir, result) = unpack(&gz[..gz.len() - 10]);
        assert!(result.is_err());
    }
}
