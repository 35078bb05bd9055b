//! A volume mount's `subPath`, resolved inside its volume and held open.
//!
//! kubelet's answer to CVE-2017-1002101 and CVE-2021-25741
//! (`pkg/volume/util/subpath/subpath_linux.go`): a container may write
//! symlinks into a volume, so `subPath` is never joined as text on the
//! host. Here the volume directory is opened, the subPath resolved from it
//! with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` (the kernel
//! refuses any `..` or symlink that leaves the volume, absolute symlinks
//! included, with EXDEV), and the result kept as an `O_PATH` descriptor,
//! bound through `/proc/self/fd/<n>` (a magic link to that very inode) at
//! a root-only staging point (`PodVolumes::stage_subpath`, kubelet's
//! `volume-subpaths/`), so nothing swapped in between the check and the
//! mount is followed; the container binds the staging point.
//! A missing subPath is made one directory at a time from the descriptor
//! of its parent (kubelet's `doSafeMakeDir`), never through a symlink.

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{Mode, fchmod, fstat, mkdirat};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// Why a subPath cannot be used. The text never names host paths beyond
/// what the manifest wrote (kubelet keeps the host's layout out of the
/// user's message too).
#[derive(Debug, thiserror::Error)]
pub enum SubPathError {
    #[error(
        "subPath {sub_path:?} of volume {volume:?} leaves the volume (through a symlink or \"..\")"
    )]
    Escapes { volume: String, sub_path: PathBuf },
    #[error("subPath {sub_path:?} of volume {volume:?} does not exist")]
    Missing { volume: String, sub_path: PathBuf },
    #[error("subPath {sub_path:?} of volume {volume:?}: {action}: {errno}")]
    Os {
        volume: String,
        sub_path: PathBuf,
        action: &'static str,
        errno: Errno,
    },
}

/// Whether a missing subPath is created (emptyDir and the pod's other
/// volumes) or refused (hostPath: nothing is created on the host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Create,
    Refuse,
}

/// The flags of every lookup below the volume: never above it, never
/// through /proc's magic links.
fn beneath() -> ResolveFlag {
    ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS
}

/// Open `sub_path` (relative, clean) of the volume at `volume_dir` as an
/// `O_PATH` descriptor, creating the missing directories when `missing`
/// says so.
pub fn open(
    volume: &str,
    volume_dir: &Path,
    sub_path: &Path,
    missing: Missing,
) -> Result<OwnedFd, SubPathError> {
    let os = |action: &'static str| {
        move |errno| SubPathError::Os {
            volume: volume.to_string(),
            sub_path: sub_path.to_path_buf(),
            action,
            errno,
        }
    };
    let escapes = || SubPathError::Escapes {
        volume: volume.to_string(),
        sub_path: sub_path.to_path_buf(),
    };
    if sub_path.is_absolute()
        || sub_path
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(escapes());
    }
    // The volume directory itself is the pod's (or, for hostPath, the
    // manifest's own choice): followed as given.
    let root = nix::fcntl::open(
        volume_dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(os("open the volume"))?;
    match lookup(&root, sub_path) {
        Ok(fd) => return Ok(fd),
        Err(Errno::EXDEV | Errno::ELOOP) => return Err(escapes()),
        Err(Errno::ENOENT) if missing == Missing::Create => {}
        Err(Errno::ENOENT) => {
            return Err(SubPathError::Missing {
                volume: volume.to_string(),
                sub_path: sub_path.to_path_buf(),
            });
        }
        Err(errno) => return Err(os("resolve")(errno)),
    }
    make_dirs(&root, sub_path).map_err(|errno| match errno {
        Errno::EXDEV | Errno::ELOOP => escapes(),
        errno => os("create")(errno),
    })?;
    lookup(&root, sub_path).map_err(|errno| match errno {
        Errno::EXDEV | Errno::ELOOP => escapes(),
        errno => os("resolve")(errno),
    })
}

fn lookup(root: &OwnedFd, path: &Path) -> Result<OwnedFd, Errno> {
    openat2(
        root.as_fd(),
        path,
        OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(beneath()),
    )
}

/// kubelet's `doSafeMakeDir`: the longest existing prefix is resolved
/// beneath the volume (symlinks inside it allowed), then each missing
/// component is made with mkdirat in its parent's descriptor and opened
/// with no symlink allowed, with the volume directory's mode (kubelet
/// gives a new subPath the mode of its volume).
fn make_dirs(root: &OwnedFd, sub_path: &Path) -> Result<(), Errno> {
    let mode = Mode::from_bits_truncate(fstat(root.as_fd())?.st_mode & 0o7777);
    let components: Vec<_> = sub_path.components().collect();
    // The deepest existing directory.
    let mut existing = components.len();
    let mut parent = loop {
        if existing == 0 {
            break nix::fcntl::openat(
                root.as_fd(),
                ".",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
        }
        let prefix: PathBuf = components[..existing].iter().collect();
        match openat2(
            root.as_fd(),
            &prefix,
            OpenHow::new()
                .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
                .resolve(beneath()),
        ) {
            Ok(fd) => break fd,
            Err(Errno::ENOENT) => existing -= 1,
            Err(errno) => return Err(errno),
        }
    };
    for component in &components[existing..] {
        match mkdirat(parent.as_fd(), component.as_os_str(), mode) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(errno) => return Err(errno),
        }
        // What was just made (or raced in) must be a directory, not a
        // symlink: RESOLVE_NO_SYMLINKS says ELOOP otherwise.
        let dir = openat2(
            parent.as_fd(),
            component.as_os_str(),
            OpenHow::new()
                .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
                .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS),
        )?;
        // The umask narrowed the mode mkdirat gave.
        fchmod(dir.as_fd(), mode)?;
        parent = dir;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn an_inside_symlink_resolves_and_an_outside_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let volume = dir.path().join("v");
        std::fs::create_dir_all(volume.join("sub")).unwrap();
        std::fs::write(volume.join("sub/file"), b"x").unwrap();
        symlink("sub", volume.join("inside")).unwrap();
        symlink("/", volume.join("root")).unwrap();
        symlink("../..", volume.join("up")).unwrap();
        let fd = open("v", &volume, Path::new("inside/file"), Missing::Refuse).unwrap();
        let target = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        ))
        .unwrap();
        assert_eq!(target, volume.join("sub/file").canonicalize().unwrap());
        for escape in ["root", "up", "root/etc", "up/x/y"] {
            let error = open("v", &volume, Path::new(escape), Missing::Create).unwrap_err();
            assert!(
                matches!(error, SubPathError::Escapes { .. }),
                "{escape}: {error}"
            );
        }
        assert!(!dir.path().join("x").exists());
    }

    #[test]
    fn a_missing_sub_path_is_made_inside_with_the_volume_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let volume = dir.path().join("v");
        std::fs::create_dir(&volume).unwrap();
        std::fs::set_permissions(&volume, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::create_dir(volume.join("real")).unwrap();
        symlink("real", volume.join("link")).unwrap();
        open("v", &volume, Path::new("link/a/b"), Missing::Create).unwrap();
        let made = volume.join("real/a/b");
        assert!(made.is_dir());
        assert_eq!(
            std::fs::metadata(&made).unwrap().permissions().mode() & 0o777,
            0o777
        );
        let error = open("v", &volume, Path::new("nope"), Missing::Refuse).unwrap_err();
        assert!(matches!(error, SubPathError::Missing { .. }), "{error}");
        assert!(!volume.join("nope").exists());
    }
}
