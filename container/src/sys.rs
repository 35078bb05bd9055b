//! The unsafe fence: thin wrappers over the system calls the crate needs
//! that nix does not offer (clone3, pidfd_open, pidfd_send_signal,
//! waitid(P_PIDFD), close_range, capset) plus the raw calls made between
//! fork and exec.
//!
//! Every wrapper is a direct system call: no allocation, no locks, so the
//! ones marked "child-safe" may run in a freshly cloned child of a
//! multi-threaded process. Errors come back as a raw errno (`Errno`), which
//! the callers turn into typed errors.

use std::convert::Infallible;
use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A raw errno value.
pub type Errno = i32;

/// Result of a raw call: the value or the errno.
pub type SysResult<T> = Result<T, Errno>;

/// `CLONE_PIDFD` (since Linux 5.2).
pub const CLONE_PIDFD: u64 = 0x0000_1000;
/// `CLONE_INTO_CGROUP` (since Linux 5.7, clone3 only).
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
/// `P_PIDFD` for waitid (since Linux 5.4).
const P_PIDFD: libc::idtype_t = 3;
/// `CLOSE_RANGE_CLOEXEC` (since Linux 5.11).
const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
/// The kernel's `sigset_t` is one 64-bit word on every Linux architecture
/// we build for (x86_64, aarch64); the raw system calls take its size.
const KERNEL_SIGSET_SIZE: usize = std::mem::size_of::<u64>();
/// Capability ABI version 3 (64-bit sets).
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

fn errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn check(ret: libc::c_long) -> SysResult<libc::c_long> {
    if ret < 0 { Err(errno()) } else { Ok(ret) }
}

fn check_int(ret: libc::c_int) -> SysResult<libc::c_int> {
    if ret < 0 { Err(errno()) } else { Ok(ret) }
}

/// `struct clone_args` of clone3(2), version 2 (88 bytes, with `cgroup`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

/// What the parent gets from a fork: the child's pid (as seen from the
/// caller's pid namespace) and its pidfd when `CLONE_PIDFD` was asked for.
pub struct Forked {
    pub pid: i32,
    pub pidfd: Option<OwnedFd>,
}

/// clone3(2) without a new stack: fork semantics (the child continues on a
/// copy of the caller's stack) and runs `in_child`, which never returns
/// (its `Infallible` stands for `!`, which a closure cannot name).
/// The pidfd is returned when `CLONE_PIDFD` is in `args.flags`.
///
/// The contract, which the type system cannot check: `in_child` makes only
/// the child-safe calls of this module until it execs or `_exit`s. The
/// caller's other threads do not exist in the child, so a lock they held
/// (malloc's, stdio's) stays locked forever there. Its only callers are the
/// pre-exec paths of `spawn::child`, written to that rule.
pub fn clone3_then(
    args: &mut CloneArgs,
    in_child: impl FnOnce() -> Infallible,
) -> SysResult<Forked> {
    let mut pidfd: RawFd = -1;
    if args.flags & CLONE_PIDFD != 0 {
        args.pidfd = &mut pidfd as *mut RawFd as u64;
    }
    // SAFETY: `args` is a valid clone_args of the size passed, `pidfd`
    // outlives the call, and no stack is given so the child gets a copy of
    // ours (fork semantics); in the child only `in_child` runs, under the
    // contract above, and it never returns into the caller's frames.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    let pid = check(ret)?;
    if pid == 0 {
        in_child();
    }
    let pidfd = (pidfd >= 0).then(|| {
        // SAFETY: the kernel just created this fd for us and nobody else owns it.
        unsafe { OwnedFd::from_raw_fd(pidfd) }
    });
    Ok(Forked {
        pid: pid as i32,
        pidfd,
    })
}

/// fork(2) through the raw clone system call (no atfork handlers), for
/// kernels without clone3 and callers that need none of its flags;
/// `flags` may add `CLONE_NEW*` flags. The child runs `in_child`, under the
/// same contract as [`clone3_then`].
pub fn fork_then(flags: i32, in_child: impl FnOnce() -> Infallible) -> SysResult<Forked> {
    // SAFETY: SYS_clone with SIGCHLD, namespace flags and no stack is
    // fork(2) into those namespaces; in the child only `in_child` runs,
    // under the contract of `clone3_then`, and it never returns.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::SIGCHLD | flags) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    let pid = check(ret)?;
    if pid == 0 {
        in_child();
    }
    Ok(Forked {
        pid: pid as i32,
        pidfd: None,
    })
}

/// pidfd_open(2).
pub fn pidfd_open(pid: i32) -> SysResult<OwnedFd> {
    // SAFETY: plain system call with integer arguments.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: the kernel returned a fresh fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// pidfd_send_signal(2) with no siginfo.
pub fn pidfd_send_signal(pidfd: RawFd, signal: i32) -> SysResult<()> {
    // SAFETY: plain system call; a null info pointer is allowed.
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// What waitid returned: `None` when WNOHANG found nothing, else the
/// `(si_code, si_status)` pair.
pub fn waitid_pidfd(pidfd: RawFd, options: i32) -> SysResult<Option<(i32, i32)>> {
    // SAFETY: zeroed siginfo_t is a valid value of a plain C struct.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid out pointer for the duration of the call.
    check_int(unsafe { libc::waitid(P_PIDFD, pidfd as libc::id_t, &mut info, options) })?;
    // SAFETY: waitid filled `info` (or left it zeroed with WNOHANG); reading
    // si_pid/si_status of a SIGCHLD siginfo is what the union holds.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some((info.si_code, status)))
}

/// Mark every fd >= `first` close-on-exec (close_range with
/// CLOSE_RANGE_CLOEXEC). Child-safe.
pub fn cloexec_from(first: u32) -> SysResult<()> {
    // SAFETY: plain system call with integer arguments.
    check(unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    })
    .map(drop)
}

/// setns(2). Child-safe.
pub fn setns(fd: RawFd, nstype: i32) -> SysResult<()> {
    // SAFETY: plain system call with integer arguments.
    check_int(unsafe { libc::setns(fd, nstype) }).map(drop)
}

/// unshare(2). Child-safe.
pub fn unshare(flags: i32) -> SysResult<()> {
    // SAFETY: plain system call with integer arguments.
    check_int(unsafe { libc::unshare(flags) }).map(drop)
}

/// open(2) with O_CLOEXEC added. Child-safe.
pub fn open(path: &CStr, flags: i32, mode: u32) -> SysResult<RawFd> {
    // SAFETY: `path` is a valid NUL-terminated string.
    check_int(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, mode) })
}

/// close(2), errors ignored. Child-safe.
pub fn close(fd: RawFd) {
    // SAFETY: closing an fd the caller owns.
    unsafe { libc::close(fd) };
}

/// write(2) of the whole buffer (retrying on EINTR and short writes). Child-safe.
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> SysResult<()> {
    while !buf.is_empty() {
        // SAFETY: `buf` is valid for `buf.len()` bytes.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        buf = &buf[(n as usize).min(buf.len())..];
    }
    Ok(())
}

/// read(2) retrying on EINTR; returns the byte count (0 at EOF).
pub fn read(fd: RawFd, buf: &mut [u8]) -> SysResult<usize> {
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// pipe2(O_CLOEXEC): (read end, write end).
pub fn pipe_cloexec() -> SysResult<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` is a valid array of two ints.
    check_int(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 returned two fresh fds that we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// fcntl(F_DUPFD_CLOEXEC, min). Child-safe.
pub fn dup_cloexec_above(fd: RawFd, min: RawFd) -> SysResult<RawFd> {
    // SAFETY: plain fcntl on an integer fd.
    check_int(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) })
}

/// [`dup_cloexec_above`] into a new owned fd (the caller's side).
pub fn dup_cloexec_above_owned(fd: &impl AsFd, min: RawFd) -> SysResult<OwnedFd> {
    let new = dup_cloexec_above(fd.as_fd().as_raw_fd(), min)?;
    // SAFETY: fcntl returned a fresh fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// dup2(2) (clears close-on-exec on the target). Child-safe.
pub fn dup2(from: RawFd, to: RawFd) -> SysResult<()> {
    // SAFETY: plain system call with integer arguments.
    check_int(unsafe { libc::dup2(from, to) }).map(drop)
}

/// mount(2). Child-safe.
pub fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> SysResult<()> {
    let ptr = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: every pointer is null or a valid NUL-terminated string.
    check_int(unsafe {
        libc::mount(
            ptr(source),
            target.as_ptr(),
            ptr(fstype),
            flags,
            ptr(data).cast(),
        )
    })
    .map(drop)
}

/// umount2(2).
pub fn umount2(target: &CStr, flags: i32) -> SysResult<()> {
    // SAFETY: `target` is a valid NUL-terminated string.
    check_int(unsafe { libc::umount2(target.as_ptr(), flags) }).map(drop)
}

/// The kernel's `struct statfs` on 64-bit targets (libc hides `f_flags`).
#[cfg(target_pointer_width = "64")]
#[repr(C)]
struct KernelStatfs {
    f_type: i64,
    f_bsize: i64,
    f_blocks: u64,
    f_bfree: u64,
    f_bavail: u64,
    f_files: u64,
    f_ffree: u64,
    f_fsid: [i32; 2],
    f_namelen: i64,
    f_frsize: i64,
    f_flags: i64,
    f_spare: [i64; 4],
}

/// The ST_* mount flags of the mount holding `path` (statfs `f_flags`).
/// A raw system call: glibc's statvfs may fall back to reading
/// /proc/mounts with stdio, which allocates. Child-safe.
#[cfg(target_pointer_width = "64")]
pub fn mount_flags(path: &CStr) -> SysResult<libc::c_ulong> {
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut st: KernelStatfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and an out pointer of the kernel's layout.
    check(unsafe {
        libc::syscall(
            libc::SYS_statfs,
            path.as_ptr(),
            &mut st as *mut KernelStatfs,
        )
    })?;
    // ST_VALID (0x20) only says the field is filled in.
    Ok(st.f_flags as libc::c_ulong & !0x20)
}

/// mkdir(2); EEXIST counts as success. Child-safe.
pub fn mkdir_exist_ok(path: &CStr, mode: u32) -> SysResult<()> {
    // SAFETY: `path` is a valid NUL-terminated string.
    match check_int(unsafe { libc::mkdir(path.as_ptr(), mode) }) {
        Ok(_) => Ok(()),
        Err(libc::EEXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

/// pivot_root(".", "."): make the current directory the root and stack
/// the old root on top of it (detach it next with umount2(".")). Child-safe.
pub fn pivot_root_here() -> SysResult<()> {
    // SAFETY: two valid NUL-terminated strings.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) }).map(drop)
}

/// chdir(2). Child-safe.
pub fn chdir(path: &CStr) -> SysResult<()> {
    // SAFETY: `path` is a valid NUL-terminated string.
    check_int(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
}

/// sethostname(2). Child-safe.
pub fn sethostname(name: &[u8]) -> SysResult<()> {
    // SAFETY: `name` is valid for `name.len()` bytes.
    check_int(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }).map(drop)
}

// The id calls below are raw system calls on purpose: glibc's wrappers
// broadcast the change to every thread it knows of (SIGSETXID) and take
// its thread-list lock. In a child cloned from a multi-threaded process
// those threads do not exist and the lock may be held forever, so the
// wrapper hangs on a futex. The raw call changes the calling thread, which
// in the child is the whole process.

/// setgroups(2) as a raw system call. Child-safe.
pub fn setgroups(groups: &[libc::gid_t]) -> SysResult<()> {
    // SAFETY: `groups` is valid for `groups.len()` entries.
    check(unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) }).map(drop)
}

/// setresgid(2) with all three ids equal, as a raw system call. Child-safe.
pub fn setresgid(gid: u32) -> SysResult<()> {
    // SAFETY: plain system call with integer arguments.
    check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) }).map(drop)
}

/// setresuid(2) with all three ids equal, as a raw system call. Child-safe.
pub fn setresuid(uid: u32) -> SysResult<()> {
    // SAFETY: plain system call with integer arguments.
    check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) }).map(drop)
}

/// fchown(2) of `fd` to `uid`, leaving its group (-1). Child-safe.
pub fn fchown_uid(fd: RawFd, uid: u32) -> SysResult<()> {
    // SAFETY: plain system call with integer arguments.
    check(unsafe { libc::syscall(libc::SYS_fchown, fd, uid, u32::MAX) }).map(drop)
}

/// prctl(2) with integer arguments. Child-safe.
pub fn prctl(option: i32, a2: u64, a3: u64) -> SysResult<i32> {
    // SAFETY: every option we pass takes integer arguments only.
    check_int(unsafe { libc::prctl(option, a2, a3, 0u64, 0u64) })
}

/// capset(2) for the calling thread with 64-bit effective, permitted and
/// inheritable sets. Child-safe.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> SysResult<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let lo = |v: u64| v as u32;
    let hi = |v: u64| (v >> 32) as u32;
    let data = [
        Data {
            effective: lo(effective),
            permitted: lo(permitted),
            inheritable: lo(inheritable),
        },
        Data {
            effective: hi(effective),
            permitted: hi(permitted),
            inheritable: hi(inheritable),
        },
    ];
    // SAFETY: header and a two-element data array of the v3 ABI layout.
    check(unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) })
        .map(drop)
}

/// setsid(2). Child-safe.
pub fn setsid() -> SysResult<()> {
    // SAFETY: plain system call.
    check_int(unsafe { libc::setsid() }).map(drop)
}

/// setpgid(0, 0). Child-safe.
pub fn setpgid_self() -> SysResult<()> {
    // SAFETY: plain system call with integer arguments.
    check_int(unsafe { libc::setpgid(0, 0) }).map(drop)
}

/// Make the caller's process group the foreground group of the terminal
/// on `fd` (tcsetpgrp), with SIGTTOU blocked for the call: from a
/// background group the kernel would otherwise stop the caller with it
/// (a blocked SIGTTOU makes the kernel allow the change). Child-safe.
pub fn set_foreground_group(fd: RawFd) -> SysResult<()> {
    let ttou: u64 = 1 << (libc::SIGTTOU - 1);
    let mut old: u64 = 0;
    // SAFETY: rt_sigprocmask reads one kernel sigset and writes the old
    // one, both 8-byte values on our stack.
    check(unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            &ttou as *const u64,
            &mut old as *mut u64,
            KERNEL_SIGSET_SIZE,
        )
    })?;
    // SAFETY: plain system call.
    let pgrp = unsafe { libc::getpgrp() };
    // SAFETY: TIOCSPGRP reads one pid_t from a valid pointer.
    let result =
        check_int(unsafe { libc::ioctl(fd, libc::TIOCSPGRP, &pgrp as *const libc::pid_t) });
    // SAFETY: as above; restores the mask read before.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &old as *const u64,
            std::ptr::null_mut::<u64>(),
            KERNEL_SIGSET_SIZE,
        )
    };
    result.map(drop)
}

/// Make the terminal on `fd` the caller's controlling terminal (TIOCSCTTY
/// with 0: never stolen from another session); the caller must lead a
/// session without one. Child-safe.
pub fn take_controlling_terminal(fd: RawFd) -> SysResult<()> {
    // SAFETY: TIOCSCTTY takes an int argument.
    check_int(unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) }).map(drop)
}

/// getppid(2). Child-safe.
pub fn getppid() -> i32 {
    // SAFETY: plain system call; cannot fail.
    unsafe { libc::getppid() }
}

/// getpid(2).
pub fn getpid() -> i32 {
    // SAFETY: plain system call; cannot fail.
    unsafe { libc::getpid() }
}

/// Reset every signal disposition to SIG_DFL (ignored ones too: Rust
/// programs ignore SIGPIPE, a workload must not inherit that) and unblock
/// every signal, so the workload starts with a clean signal state whatever
/// the supervisor blocked, ignored or handled. Child-safe.
pub fn reset_signals() -> SysResult<()> {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL is a valid disposition for every catchable
        // signal; a failure (signals reserved by libc) is ignored.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    // SAFETY: zeroed sigset_t is a valid value that sigemptyset then initialises.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid sigset pointers.
    unsafe { libc::sigemptyset(&mut set) };
    // SAFETY: valid sigset pointer, null old-set pointer allowed.
    check_int(unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) })
        .map(drop)
}

/// execve(2); returns only on failure. Child-safe.
pub fn execve(path: &CStr, argv: &[*const libc::c_char], envp: &[*const libc::c_char]) -> Errno {
    // SAFETY: argv and envp are null-terminated arrays of pointers to
    // NUL-terminated strings that the caller keeps alive.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    errno()
}

/// _exit(2). Child-safe.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: ends the process without running destructors or atexit
    // handlers, which is what a forked child must do.
    unsafe { libc::_exit(code) }
}

/// Bring `lo` up in the current network namespace (SIOCGIFFLAGS then
/// SIOCSIFFLAGS with IFF_UP), like `ip link set lo up`. Child-safe.
pub fn loopback_up() -> SysResult<()> {
    #[repr(C)]
    struct IfReq {
        name: [u8; libc::IFNAMSIZ],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    // SAFETY: plain system call with integer arguments.
    let sock = check_int(unsafe {
        libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
    })?;
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: 0,
        _pad: [0; 22],
    };
    req.name[..2].copy_from_slice(b"lo");
    // SAFETY: `req` has the layout of struct ifreq (name + flags union member).
    let got = check_int(unsafe { libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req as *mut IfReq) });
    let result = got.and_then(|_| {
        req.flags |= libc::IFF_UP as libc::c_short;
        // SAFETY: as above.
        check_int(unsafe { libc::ioctl(sock, libc::SIOCSIFFLAGS, &mut req as *mut IfReq) })
    });
    close(sock);
    result.map(drop)
}

/// Wait until `fd` is readable or `timeout_ms` passes (poll). Returns
/// whether it became readable.
pub fn poll_readable(fd: RawFd, timeout_ms: i32) -> SysResult<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n >= 0 {
            return Ok(n > 0);
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// Whether `path` exists (access F_OK); walking it also brings its
/// directories into the dentry cache. Child-safe.
pub fn exists(path: &CStr) -> bool {
    // SAFETY: `path` is a valid NUL-terminated string for the call.
    unsafe { libc::access(path.as_ptr(), libc::F_OK) == 0 }
}

/// Wait, with no timeout, until `first` or `second` is readable (or hung
/// up) and say which are (poll, retrying on EINTR). Child-safe.
pub fn poll_either(first: RawFd, second: RawFd) -> SysResult<(bool, bool)> {
    let pfd = |fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let mut pfds = [pfd(first), pfd(second)];
    loop {
        // SAFETY: two valid pollfds, for the length given.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), 2, -1) };
        if n > 0 {
            return Ok((pfds[0].revents != 0, pfds[1].revents != 0));
        }
        let e = errno();
        if n < 0 && e != libc::EINTR {
            return Err(e);
        }
    }
}

/// waitpid(pid, 0) retrying on EINTR; returns the raw status.
pub fn waitpid(pid: i32) -> SysResult<i32> {
    let mut status = 0;
    loop {
        // SAFETY: valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r >= 0 {
            return Ok(status);
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// waitpid(-1, 0) for any child, retrying on EINTR: (pid, raw status).
/// Child-safe.
pub fn wait_any() -> SysResult<(i32, i32)> {
    let mut status = 0;
    loop {
        // SAFETY: valid out pointer.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
        if r >= 0 {
            return Ok((r, status));
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// Close every fd >= `first` (close_range). Child-safe.
pub fn close_from(first: u32) -> SysResult<()> {
    close_range(first, libc::c_uint::MAX)
}

/// Close every fd from `first` to `last`, both included (close_range).
/// Child-safe.
pub fn close_range(first: u32, last: u32) -> SysResult<()> {
    // SAFETY: plain system call with integer arguments.
    check(unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            last as libc::c_uint,
            0 as libc::c_uint,
        )
    })
    .map(drop)
}

/// kill(2).
pub fn kill(pid: i32, signal: i32) -> SysResult<()> {
    // SAFETY: plain system call with integer arguments.
    check_int(unsafe { libc::kill(pid, signal) }).map(drop)
}

/// A CPU affinity mask (`cpu_set_t`).
#[derive(Clone, Copy)]
pub struct CpuMask(libc::cpu_set_t);

impl CpuMask {
    /// Whether CPU `cpu` is in the mask.
    pub fn has(&self, cpu: usize) -> bool {
        // SAFETY: `cpu` is checked to be inside the set.
        cpu < libc::CPU_SETSIZE as usize && unsafe { libc::CPU_ISSET(cpu, &self.0) }
    }

    /// The mask without CPU `cpu`.
    pub fn without(mut self, cpu: usize) -> CpuMask {
        if cpu < libc::CPU_SETSIZE as usize {
            // SAFETY: `cpu` is checked to be inside the set.
            unsafe { libc::CPU_CLR(cpu, &mut self.0) };
        }
        self
    }

    /// How many CPUs are in it.
    pub fn count(&self) -> usize {
        // SAFETY: counts the bits of a set we own.
        unsafe { libc::CPU_COUNT(&self.0) as usize }
    }
}

/// sched_getaffinity(2) of `pid` (0: this thread).
pub fn cpu_affinity(pid: i32) -> SysResult<CpuMask> {
    // SAFETY: an all-zero cpu_set_t is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes at most size_of::<cpu_set_t>() bytes into
    // `set`, which lives for the call.
    check_int(unsafe { libc::sched_getaffinity(pid, std::mem::size_of_val(&set), &mut set) })?;
    Ok(CpuMask(set))
}

/// sched_setaffinity(2) of `pid` (0: this thread). Child-safe (a raw
/// system call on memory prepared before the fork).
pub fn set_cpu_affinity(pid: i32, mask: &CpuMask) -> SysResult<()> {
    // SAFETY: the kernel reads size_of::<cpu_set_t>() bytes from `mask`,
    // which lives for the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_sched_setaffinity,
            pid,
            std::mem::size_of_val(&mask.0),
            &mask.0 as *const libc::cpu_set_t,
        )
    })
    .map(drop)
}

/// The CPU this thread runs on (getcpu(2)), None where unknown.
pub fn current_cpu() -> Option<usize> {
    // SAFETY: no arguments; returns a CPU number or -1.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).ok()
}
