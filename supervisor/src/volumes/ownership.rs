//! kubelet's `SetVolumeOwnership` (pkg/volume/volume_linux.go): with a
//! pod `fsGroup`, every file and directory of a volume that supports
//! ownership management is given that group, the group read-write (read
//! for a read-only volume) bits, and directories the group search bit and
//! setgid, so files made later inherit the group. Symlinks get the group
//! but keep their (meaningless) mode.
//!
//! A persistent volume holds what containers wrote, symlinks included,
//! possibly while another pod writes to it: the walk never follows a
//! link. Each directory is opened `O_NOFOLLOW` from its parent's
//! descriptor and every change is made relative to a descriptor with
//! `AT_SYMLINK_NOFOLLOW`, so nothing outside the volume is touched.

use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, fchmod, fchmodat, fstat, fstatat};
use nix::unistd::{Gid, fchown, fchownat};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// Group read-write.
const RW_MASK: u32 = 0o660;
/// Group read (a read-only volume).
const RO_MASK: u32 = 0o440;
/// Group (and owner) search, for directories.
const EXEC_MASK: u32 = 0o110;
/// Set-group-ID, for directories.
const SETGID: u32 = 0o2000;

/// Apply `fs_group` to the tree at `dir` (itself included), as kubelet's
/// `SetVolumeOwnership` with `fsGroupChangePolicy: Always`.
pub fn set_volume_ownership(dir: &Path, fs_group: u32, read_only: bool) -> nix::Result<()> {
    let root = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mask = if read_only { RO_MASK } else { RW_MASK };
    let gid = Gid::from_raw(fs_group);
    change_dir(&root, gid, mask)?;
    walk(&root, gid, mask)
}

fn change_dir(fd: &OwnedFd, gid: Gid, mask: u32) -> nix::Result<()> {
    fchown(fd.as_fd(), None, Some(gid))?;
    let mode = fstat(fd.as_fd())?.st_mode & 0o7777;
    fchmod(
        fd.as_fd(),
        Mode::from_bits_truncate(mode | mask | EXEC_MASK | SETGID),
    )
}

fn walk(dir: &OwnedFd, gid: Gid, mask: u32) -> nix::Result<()> {
    let listing = Dir::openat(
        dir.as_fd(),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let names: Vec<std::ffi::CString> = listing
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    for name in names {
        let name = name.as_c_str();
        let stat = match fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(s) => s,
            // Removed meanwhile by a container of another pod: nothing to do.
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        let kind = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
        if kind == SFlag::S_IFDIR {
            let sub = openat(
                dir.as_fd(),
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            change_dir(&sub, gid, mask)?;
            walk(&sub, gid, mask)?;
            continue;
        }
        fchownat(
            borrowed(dir),
            name,
            None,
            Some(gid),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        if kind == SFlag::S_IFLNK {
            continue;
        }
        let mode = Mode::from_bits_truncate((stat.st_mode & 0o7777) | mask);
        match fchmodat(borrowed(dir), name, mode, FchmodatFlags::NoFollowSymlink) {
            // Swapped for a symlink since the stat: left alone.
            Err(nix::errno::Errno::EOPNOTSUPP) => {}
            other => other?,
        }
    }
    Ok(())
}

fn borrowed(fd: &OwnedFd) -> BorrowedFd<'_> {
    fd.as_fd()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    #[test]
    fn the_group_and_modes_are_kubelets_and_links_are_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs::write(&victim, b"").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("vol");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir(root.join("d")).unwrap();
        fs::set_permissions(root.join("d"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(root.join("d/f"), b"x").unwrap();
        fs::set_permissions(root.join("d/f"), fs::Permissions::from_mode(0o600)).unwrap();
        symlink(&victim, root.join("link")).unwrap();
        set_volume_ownership(&root, 4242, false).unwrap();
        let meta = |p: &Path| fs::symlink_metadata(p).unwrap();
        assert_eq!(meta(&root).mode() & 0o7777, 0o2775);
        assert_eq!(meta(&root.join("d")).mode() & 0o7777, 0o2770);
        assert_eq!(meta(&root.join("d/f")).mode() & 0o7777, 0o660);
        for p in [
            root.clone(),
            root.join("d"),
            root.join("d/f"),
            root.join("link"),
        ] {
            assert_eq!(meta(&p).gid(), 4242, "{}", p.display());
        }
        assert_eq!(meta(&victim).mode() & 0o7777, 0o600);
        assert_ne!(meta(&victim).gid(), 4242);
    }
}
