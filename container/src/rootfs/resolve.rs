//! Resolving a mount destination inside the container's root, symlinks
//! included, and creating what is missing on the way, as runc does with
//! securejoin (`libcontainer/rootfs_linux.go`, `createIfNotExists` after
//! `securejoin.SecureJoin`), but with the kernel doing each lookup:
//! openat2(`RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`) from the root's fd,
//! so an absolute symlink or a `..` can never leave the root, whatever the
//! image or an earlier container instance put in a volume.
//!
//! Each prefix of the path is resolved from the root; a missing component
//! is created with mkdirat (or, for the last one of a file bind, an
//! `O_CREAT | O_EXCL | O_NOFOLLOW` open) in the directory fd the previous
//! prefix resolved to, so nothing is ever created through a path. A
//! dangling symlink is followed inside the root and its target created
//! there (securejoin's behaviour). The result is an `O_PATH` fd of the
//! destination, which the caller mounts onto with move_mount: what was
//! checked is what is mounted on.
//!
//! Child-safe: fixed-size stack buffers, raw system calls only.

use std::ffi::CStr;
use std::os::fd::RawFd;

use super::sys::{self, Errno};

/// The longest path handled (the kernel's PATH_MAX).
const PATH_MAX: usize = 4096;
/// The most symlinks followed by hand, as the kernel's MAXSYMLINKS.
const MAX_LINKS: usize = 40;
/// `RESOLVE_NO_MAGICLINKS`.
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
/// `RESOLVE_IN_ROOT`.
const RESOLVE_IN_ROOT: u64 = 0x10;

/// What to do with a missing destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    /// Nothing: a missing destination is ENOENT.
    Nothing,
    /// A directory of this mode (missing parents get 0755).
    Dir(u32),
    /// An empty file (a file bind's mount point; missing parents get 0755).
    File,
}

/// Open `path` (relative to `root`; `/`-separated) inside `root`.
pub(crate) fn open_in_root(root: RawFd, path: &CStr) -> Result<RawFd, Errno> {
    sys::openat2_path(root, path, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
}

/// Resolve `path` inside `root` (relative; `.`, `..` and empty components
/// allowed, symlinks followed inside the root), creating what is missing
/// as `create` says. Returns an O_PATH fd of the result, the caller's to
/// close.
pub(crate) fn resolve(root: RawFd, path: &[u8], create: Create) -> Result<RawFd, Errno> {
    let mut current = [0u8; PATH_MAX];
    let mut len = copy_into(&mut current, 0, path)?;
    let mut links = 0;
    'restart: loop {
        let mut prefix = [0u8; PATH_MAX + 1];
        let mut prefix_len = 0;
        let mut parent = open_in_root(root, c".")?;
        let text = &current[..len];
        let mut start = 0;
        while start < len {
            let end = text[start..]
                .iter()
                .position(|b| *b == b'/')
                .map_or(len, |i| start + i);
            let component = &text[start..end];
            let rest = &text[end..];
            start = end + 1;
            if component.is_empty() || component == b"." {
                continue;
            }
            let parent_len = prefix_len;
            if prefix_len > 0 {
                prefix_len = copy_into(&mut prefix[..PATH_MAX], prefix_len, b"/")?;
            }
            prefix_len = copy_into(&mut prefix[..PATH_MAX], prefix_len, component)
                .inspect_err(|_| sys::close(parent))?;
            prefix[prefix_len] = 0;
            let prefix_c = CStr::from_bytes_until_nul(&prefix).map_err(|_| libc::EINVAL)?;
            let found = match open_in_root(root, prefix_c) {
                Err(libc::ENOENT) if create != Create::Nothing && component != b".." => {
                    let mut name = [0u8; 256];
                    let name_len = copy_into(&mut name[..255], 0, component)
                        .inspect_err(|_| sys::close(parent))?;
                    name[name_len] = 0;
                    let name_c = CStr::from_bytes_until_nul(&name).map_err(|_| libc::EINVAL)?;
                    let last = rest
                        .split(|b| *b == b'/')
                        .all(|c| c.is_empty() || c == b".");
                    let made = match create {
                        Create::File if last => sys::create_file_at(parent, name_c, 0o644),
                        Create::Dir(mode) if last => sys::mkdirat(parent, name_c, mode),
                        _ => sys::mkdirat(parent, name_c, 0o755),
                    };
                    if let Err(e) = made
                        && e != libc::EEXIST
                    {
                        sys::close(parent);
                        return Err(e);
                    }
                    match open_in_root(root, prefix_c) {
                        Err(libc::ENOENT) => {
                            // Something is there that does not resolve: a
                            // dangling symlink. Go on from its target.
                            let mut link = [0u8; PATH_MAX];
                            let read = sys::readlinkat(parent, name_c, &mut link);
                            sys::close(parent);
                            let link_len = match read {
                                Ok(n) if n < PATH_MAX => n,
                                Ok(_) => return Err(libc::ENAMETOOLONG),
                                Err(_) => return Err(libc::ENOENT),
                            };
                            links += 1;
                            if links > MAX_LINKS {
                                return Err(libc::ELOOP);
                            }
                            let mut next = [0u8; PATH_MAX];
                            let mut n = 0;
                            // A relative link is relative to its directory.
                            if link.first() != Some(&b'/') {
                                n = copy_into(&mut next, n, &prefix[..parent_len])?;
                                n = copy_into(&mut next, n, b"/")?;
                            }
                            n = copy_into(&mut next, n, &link[..link_len])?;
                            n = copy_into(&mut next, n, rest)?;
                            current = next;
                            len = n;
                            continue 'restart;
                        }
                        other => other,
                    }
                }
                other => other,
            };
            sys::close(parent);
            parent = found?;
        }
        return Ok(parent);
    }
}

/// Copy `bytes` into `buf` at `at`; the new length, or ENAMETOOLONG.
fn copy_into(buf: &mut [u8], at: usize, bytes: &[u8]) -> Result<usize, Errno> {
    let end = at.checked_add(bytes.len()).ok_or(libc::ENAMETOOLONG)?;
    buf.get_mut(at..end)
        .ok_or(libc::ENAMETOOLONG)?
        .copy_from_slice(bytes);
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::fd::AsRawFd;
    use std::path::Path;

    /// The path an O_PATH fd stands for (through /proc), then closed.
    fn path_of(fd: RawFd) -> std::path::PathBuf {
        let path = fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        sys::close(fd);
        path
    }

    fn setup() -> (tempfile::TempDir, fs::File) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("etc")).unwrap();
        let fd = fs::File::open(&root).unwrap();
        (dir, fd)
    }

    #[test]
    fn missing_components_are_made_in_the_root() {
        let (dir, root) = setup();
        let fd = resolve(root.as_raw_fd(), b"srv/app/data", Create::Dir(0o700)).unwrap();
        assert_eq!(path_of(fd), dir.path().join("root/srv/app/data"));
        let fd = resolve(root.as_raw_fd(), b"www/index.html", Create::File).unwrap();
        assert_eq!(path_of(fd), dir.path().join("root/www/index.html"));
        assert!(dir.path().join("root/www/index.html").is_file());
        assert_eq!(
            resolve(root.as_raw_fd(), b"nothing/here", Create::Nothing),
            Err(libc::ENOENT)
        );
        assert!(!dir.path().join("root/nothing").exists());
    }

    #[test]
    fn symlinks_and_dotdot_stay_inside_the_root() {
        let (dir, root) = setup();
        let outside = dir.path().join("outside");
        fs::create_dir_all(&outside).unwrap();
        let r = dir.path().join("root");
        // An absolute link to a host path, a relative one climbing out, and
        // a dangling one to a host path that does not exist (yet).
        std::os::unix::fs::symlink(&outside, r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../outside", r.join("etc/up")).unwrap();
        let host_file = outside.join("planted");
        std::os::unix::fs::symlink(&host_file, r.join("dangling")).unwrap();
        std::os::unix::fs::symlink("sub/file", r.join("etc/rel")).unwrap();

        let fd = resolve(root.as_raw_fd(), b"abs/x", Create::Dir(0o755)).unwrap();
        let inside = r.join(outside.strip_prefix("/").unwrap()).join("x");
        assert_eq!(path_of(fd), inside);
        let fd = resolve(root.as_raw_fd(), b"etc/up/y", Create::Dir(0o755)).unwrap();
        assert_eq!(path_of(fd), r.join("outside/y"));
        let fd = resolve(root.as_raw_fd(), b"dangling", Create::File).unwrap();
        let planted = r.join(host_file.strip_prefix("/").unwrap());
        assert_eq!(path_of(fd), planted);
        assert!(planted.is_file());
        let fd = resolve(root.as_raw_fd(), b"etc/rel", Create::File).unwrap();
        assert_eq!(path_of(fd), r.join("etc/sub/file"));
        let fd = resolve(root.as_raw_fd(), b"../../..", Create::Nothing).unwrap();
        assert_eq!(path_of(fd), r);
        // Nothing appeared outside the root.
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
        assert!(!Path::new("/x").exists());
    }

    #[test]
    fn a_symlink_loop_is_eloop() {
        let (dir, root) = setup();
        let r = dir.path().join("root");
        std::os::unix::fs::symlink("b", r.join("a")).unwrap();
        std::os::unix::fs::symlink("a", r.join("b")).unwrap();
        let got = resolve(root.as_raw_fd(), b"a/x", Create::Dir(0o755));
        assert!(matches!(got, Err(libc::ELOOP)), "{got:?}");
    }
}
