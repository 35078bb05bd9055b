//! The system calls of the container root: path resolution inside a root
//! (openat2 with `RESOLVE_IN_ROOT`), the `*at` calls that create mount
//! points relative to an opened directory, and the new mount API
//! (open_tree, move_mount, mount_setattr, fsopen/fsconfig/fsmount) that
//! mounts through descriptors instead of paths.
//!
//! Every wrapper is one raw system call (or a fixed sequence of them) on
//! memory the caller owns: no allocation, no locks, so each is child-safe
//! (it may run between fork and exec of a multi-threaded parent). Errors
//! are raw errnos.

use std::ffi::{CStr, CString};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// A raw errno value.
pub type Errno = i32;

/// `OPEN_TREE_CLONE`: a detached copy of the mount (tree) at the path.
pub const OPEN_TREE_CLONE: u32 = 1;
/// `OPEN_TREE_CLOEXEC` (= O_CLOEXEC).
pub const OPEN_TREE_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
/// `MOVE_MOUNT_F_EMPTY_PATH`: the source is the fd itself.
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x04;
/// `MOVE_MOUNT_T_EMPTY_PATH`: the target is the fd itself.
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
/// `MOUNT_ATTR_RDONLY`.
pub const MOUNT_ATTR_RDONLY: u64 = 0x01;
/// `MOUNT_ATTR_NOSUID`.
pub const MOUNT_ATTR_NOSUID: u64 = 0x02;
/// `MOUNT_ATTR_NODEV`.
pub const MOUNT_ATTR_NODEV: u64 = 0x04;
/// `MOUNT_ATTR_NOEXEC`.
pub const MOUNT_ATTR_NOEXEC: u64 = 0x08;
/// `MOUNT_ATTR_SIZE_VER0`: the size of `struct mount_attr`.
const MOUNT_ATTR_SIZE_VER0: usize = 32;
const FSOPEN_CLOEXEC: u32 = 1;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_CMD_CREATE: u32 = 6;
const FSMOUNT_CLOEXEC: u32 = 1;

/// `struct open_how` of openat2(2).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn check(ret: libc::c_long) -> Result<libc::c_long, Errno> {
    if ret < 0 { Err(errno()) } else { Ok(ret) }
}

fn check_fd(ret: libc::c_long) -> Result<RawFd, Errno> {
    check(ret).map(|fd| fd as RawFd)
}

/// openat2(2) of `path` below `dirfd` with `O_PATH | O_CLOEXEC` (plus
/// `flags`) and the `resolve` flags. Retries EAGAIN (a rename raced a
/// `..` lookup under `RESOLVE_IN_ROOT`) a few times. Child-safe.
pub fn openat2_path(dirfd: RawFd, path: &CStr, flags: i32, resolve: u64) -> Result<RawFd, Errno> {
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC | flags) as u64,
        mode: 0,
        resolve,
    };
    let mut tries = 0;
    loop {
        // SAFETY: `path` is a valid string and `how` a valid open_how of
        // the size passed.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        match check_fd(ret) {
            Err(libc::EAGAIN) if tries < 16 => tries += 1,
            other => return other,
        }
    }
}

/// mkdirat(2); EEXIST is returned as such. Child-safe.
pub fn mkdirat(dirfd: RawFd, name: &CStr, mode: u32) -> Result<(), Errno> {
    // SAFETY: `name` is a valid NUL-terminated string.
    check(unsafe { libc::mkdirat(dirfd, name.as_ptr(), mode) } as libc::c_long).map(drop)
}

/// Create the empty file `name` in `dirfd` (O_CREAT | O_EXCL | O_NOFOLLOW:
/// never through a symlink, EEXIST when anything is there). Child-safe.
pub fn create_file_at(dirfd: RawFd, name: &CStr, mode: u32) -> Result<(), Errno> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `name` is a valid NUL-terminated string.
    let fd = check_fd(unsafe { libc::openat(dirfd, name.as_ptr(), flags, mode) } as libc::c_long)?;
    close(fd);
    Ok(())
}

/// readlinkat(2) into `buf`; the length of the link text. Child-safe.
pub fn readlinkat(dirfd: RawFd, name: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    let n =
        check(
            unsafe { libc::readlinkat(dirfd, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) }
                as libc::c_long,
        )?;
    Ok(n as usize)
}

/// symlinkat(2): `name` in `dirfd` pointing to `to`. Child-safe.
pub fn symlinkat(to: &CStr, dirfd: RawFd, name: &CStr) -> Result<(), Errno> {
    // SAFETY: both are valid NUL-terminated strings.
    check(unsafe { libc::symlinkat(to.as_ptr(), dirfd, name.as_ptr()) } as libc::c_long).map(drop)
}

/// Whether the file behind `fd` (an O_PATH fd too) is a directory. Child-safe.
pub fn is_dir(fd: RawFd) -> Result<bool, Errno> {
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: an out pointer of the right type.
    check(unsafe { libc::fstat(fd, &mut st) } as libc::c_long)?;
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// open_tree(2) of `path` relative to `dirfd` (an empty path: `dirfd`
/// itself). Child-safe.
pub fn open_tree(dirfd: RawFd, path: &CStr, flags: u32) -> Result<RawFd, Errno> {
    let empty = if path.is_empty() {
        libc::AT_EMPTY_PATH as u32
    } else {
        0
    };
    // SAFETY: `path` is a valid NUL-terminated string.
    check_fd(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            dirfd,
            path.as_ptr(),
            flags | empty | OPEN_TREE_CLOEXEC,
        )
    })
}

/// open_tree(2) as an owned fd, for the parent side.
pub fn open_tree_owned(dirfd: RawFd, path: &CStr, flags: u32) -> Result<OwnedFd, Errno> {
    let fd = open_tree(dirfd, path, flags)?;
    // SAFETY: the kernel just returned this fd and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// mount_setattr(2) on the mount of `fd` (and, with `recursive`, every
/// mount below it): set and clear `MOUNT_ATTR_*` bits and, when
/// `propagation` is not 0, change the propagation type (MS_PRIVATE...).
/// Child-safe.
pub fn mount_setattr(
    fd: RawFd,
    recursive: bool,
    set: u64,
    clear: u64,
    propagation: u64,
) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: an empty path string and a valid mount_attr of the size passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            MOUNT_ATTR_SIZE_VER0,
        )
    })
    .map(drop)
}

/// move_mount(2) of the mount `from` (a detached tree or an fsmount fd)
/// onto the file `to` (an O_PATH fd of the resolved target). Child-safe.
pub fn move_mount(from: RawFd, to: RawFd) -> Result<(), Errno> {
    // SAFETY: two empty path strings; both fds are the caller's.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from,
            c"".as_ptr(),
            to,
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
    .map(drop)
}

/// A new mount of file system `fstype` with the string options `options`
/// (key, value) and the mount attributes `attrs`, as a detached mount fd
/// (fsopen, fsconfig, fsmount). Child-safe.
pub fn new_fs(fstype: &CStr, options: &[(CString, CString)], attrs: u64) -> Result<RawFd, Errno> {
    // SAFETY: a valid NUL-terminated file system name and flags.
    let fs = check_fd(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })?;
    let result = (|| {
        for (key, value) in options {
            // SAFETY: `fs` is an fs context fd; key and value are valid strings.
            check(unsafe {
                libc::syscall(
                    libc::SYS_fsconfig,
                    fs,
                    FSCONFIG_SET_STRING,
                    key.as_ptr(),
                    value.as_ptr(),
                    0,
                )
            })?;
        }
        // SAFETY: `fs` is an fs context fd; no key or value for CMD_CREATE.
        check(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs,
                FSCONFIG_CMD_CREATE,
                std::ptr::null::<libc::c_char>(),
                std::ptr::null::<libc::c_void>(),
                0,
            )
        })?;
        // SAFETY: `fs` is a configured fs context fd.
        check_fd(unsafe { libc::syscall(libc::SYS_fsmount, fs, FSMOUNT_CLOEXEC, attrs) })
    })();
    close(fs);
    result
}

/// close(2), errors ignored. Child-safe.
pub fn close(fd: RawFd) {
    // SAFETY: closing an fd the caller owns.
    unsafe { libc::close(fd) };
}
