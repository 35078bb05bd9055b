//! The only unsafe code of supervisor-init: its own system calls, on top
//! of nolibc-rt's raw `syscallN` (which also gives it `_start`, the
//! arguments and environment, the calls it shares with pause and the
//! memory functions the compiler calls). Every call returns the kernel's
//! answer as `Result<_, Errno>` (a positive errno), with EINTR left to the
//! caller unless said otherwise.
//!
//! x86_64 only for now, as nolibc-rt: another architecture also needs its
//! own struct layouts and ioctl numbers here.

use core::ffi::CStr;
use nolibc_rt::{
    Argv, EINTR, Envp, Errno, check, nr, syscall0, syscall1, syscall2, syscall3, syscall4, syscall6,
};

pub const ESRCH: Errno = 3;
pub const EAGAIN: Errno = 11;
pub const ENOMEM: Errno = 12;

/// Size of the kernel's sigset_t on Linux: 64 signals.
const SIGSET_SIZE: usize = 8;
const O_RDONLY: usize = 0;
const O_RDWR: usize = 2;
const F_GETFD: usize = 1;
const O_DIRECTORY: usize = 0o200000;
const O_CLOEXEC: usize = 0o2000000;
const AT_FDCWD: usize = -100isize as usize;
const SFD_NONBLOCK: usize = 0o4000;
const SFD_CLOEXEC: usize = O_CLOEXEC;
const POLLIN: i16 = 1;
const TCGETS: usize = 0x5401;
const TIOCSCTTY: usize = 0x540E;
const TIOCSPGRP: usize = 0x5410;
const TIOCNOTTY: usize = 0x5422;
const CLOCK_MONOTONIC: usize = 1;
const PROT_READ_WRITE: usize = 3;
const MAP_PRIVATE_ANONYMOUS_NORESERVE: usize = 0x02 | 0x20 | 0x4000;

/// Read into `buf`; EINTR is retried.
pub fn read(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    let (ptr, len) = (buf.as_mut_ptr() as usize, buf.len());
    loop {
        // SAFETY: read(2) writes at most `len` bytes at `ptr`, a live
        // mutable slice.
        match check(unsafe { syscall3(nr::READ, fd as usize, ptr, len) }) {
            Err(EINTR) => continue,
            other => return other,
        }
    }
}

/// Whether `fd` is open (fcntl F_GETFD answers).
pub fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD reads a flag; its argument is unused.
    check(unsafe { syscall3(nr::FCNTL, fd as usize, F_GETFD, 0) }).is_ok()
}

/// Open /dev/null read-write, inheritable (it is to become fd 0, 1 or 2).
pub fn open_dev_null() -> Result<i32, Errno> {
    let path = c"/dev/null".as_ptr() as usize;
    // SAFETY: openat reads the NUL-terminated path, a static string; the
    // new fd replaces nothing.
    check(unsafe { syscall4(nr::OPENAT, AT_FDCWD, path, O_RDWR, 0) }).map(|fd| fd as i32)
}

/// Close `fd`, which the caller owns and no longer uses.
pub fn close(fd: i32) {
    // SAFETY: no pointer; the callers close only fds they opened and are
    // done with.
    unsafe { syscall1(nr::CLOSE, fd as usize) };
}

/// A new signalfd over every signal, close-on-exec and non-blocking.
pub fn signalfd_all() -> Result<i32, Errno> {
    let mask = u64::MAX;
    let ptr = &mask as *const u64 as usize;
    let flags = SFD_CLOEXEC | SFD_NONBLOCK;
    // SAFETY: the kernel reads a sigset_t (SIGSET_SIZE bytes) at `ptr`, a
    // live u64; fd -1 asks for a new signalfd.
    check(unsafe { syscall4(nr::SIGNALFD4, usize::MAX, ptr, SIGSET_SIZE, flags) })
        .map(|fd| fd as i32)
}

/// What a signalfd record says: the signal, `si_code`, the sender's pid.
pub struct SignalRecord {
    pub signal: i32,
    pub code: i32,
    pub sender: i32,
}

/// Read one record from a non-blocking signalfd; `Ok(None)` when none is
/// pending. EINTR is retried; a short record is EIO.
pub fn read_signal(fd: i32) -> Result<Option<SignalRecord>, Errno> {
    // struct signalfd_siginfo: 128 bytes, ssi_signo (u32) at 0, ssi_code
    // (i32) at 8, ssi_pid (u32) at 12.
    let mut record = [0u8; 128];
    match read(fd, &mut record) {
        Ok(128) => {}
        Ok(_) => return Err(5), // EIO
        Err(EAGAIN) => return Ok(None),
        Err(errno) => return Err(errno),
    }
    let word = |at: usize| {
        i32::from_ne_bytes([record[at], record[at + 1], record[at + 2], record[at + 3]])
    };
    Ok(Some(SignalRecord {
        signal: word(0),
        code: word(8),
        sender: word(12),
    }))
}

/// Sleep until `fd` is readable or `timeout_ms` passes (-1: no timeout);
/// whether it is readable. EINTR is returned.
pub fn poll_in(fd: i32, timeout_ms: i32) -> Result<bool, Errno> {
    #[repr(C)]
    struct PollFd {
        fd: i32,
        events: i16,
        revents: i16,
    }
    let mut pfd = PollFd {
        fd,
        events: POLLIN,
        revents: 0,
    };
    let ptr = &mut pfd as *mut PollFd as usize;
    // SAFETY: poll reads and writes one struct pollfd at `ptr`, a live
    // local in the kernel's layout.
    check(unsafe { syscall3(nr::POLL, ptr, 1, timeout_ms as usize) }).map(|n| n > 0)
}

/// Wait for the child `pid` to end (and reap it). EINTR is retried.
pub fn wait_pid(pid: i32) {
    loop {
        let mut status: i32 = 0;
        let ptr = &mut status as *mut i32 as usize;
        // SAFETY: wait4 writes one int at `ptr`, a live local; no rusage.
        if check(unsafe { syscall4(nr::WAIT4, pid as usize, ptr, 0, 0) }) != Err(EINTR) {
            return;
        }
    }
}

/// kill(2) with any signal number, real-time included.
pub fn kill(target: i32, signal: i32) -> Result<(), Errno> {
    // SAFETY: no pointer; signals other processes only.
    check(unsafe { syscall2(nr::KILL, target as usize, signal as usize) }).map(drop)
}

/// Whether `fd` is a terminal (isatty: TCGETS succeeds).
pub fn is_tty(fd: i32) -> bool {
    // The kernel's struct termios is 36 bytes on x86_64.
    let mut termios = [0u8; 64];
    let ptr = termios.as_mut_ptr() as usize;
    // SAFETY: TCGETS writes a struct termios (36 bytes) at `ptr`, a live
    // 64-byte buffer.
    check(unsafe { syscall3(nr::IOCTL, fd as usize, TCGETS, ptr) }).is_ok()
}

/// Give up the controlling terminal on `fd` (TIOCNOTTY).
pub fn release_controlling_terminal(fd: i32) -> Result<(), Errno> {
    // SAFETY: TIOCNOTTY takes no argument.
    check(unsafe { syscall3(nr::IOCTL, fd as usize, TIOCNOTTY, 0) }).map(drop)
}

/// Take the terminal on `fd` as controlling terminal (TIOCSCTTY).
pub fn take_controlling_terminal(fd: i32) -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an int by value: 0, do not steal it.
    check(unsafe { syscall3(nr::IOCTL, fd as usize, TIOCSCTTY, 0) }).map(drop)
}

/// Make the process group `pgrp` the foreground group of the terminal on
/// `fd` (tcsetpgrp).
pub fn set_foreground(fd: i32, pgrp: i32) -> Result<(), Errno> {
    let ptr = &pgrp as *const i32 as usize;
    // SAFETY: TIOCSPGRP reads one pid_t at `ptr`, a live local.
    check(unsafe { syscall3(nr::IOCTL, fd as usize, TIOCSPGRP, ptr) }).map(drop)
}

pub fn getpgrp() -> i32 {
    // SAFETY: no arguments, nothing changed.
    unsafe { syscall0(nr::GETPGRP) as i32 }
}

pub fn setsid() -> Result<(), Errno> {
    // SAFETY: no arguments; changes only this process's session.
    check(unsafe { syscall0(nr::SETSID) }).map(drop)
}

/// setpgid(0, 0): a process group of its own.
pub fn setpgid_self() -> Result<(), Errno> {
    // SAFETY: no pointer; changes only this process's group.
    check(unsafe { syscall2(nr::SETPGID, 0, 0) }).map(drop)
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe_cloexec() -> Result<(i32, i32), Errno> {
    let mut fds = [0i32; 2];
    let ptr = fds.as_mut_ptr() as usize;
    // SAFETY: pipe2 writes two ints at `ptr`, a live [i32; 2].
    check(unsafe { syscall2(nr::PIPE2, ptr, O_CLOEXEC) })?;
    Ok((fds[0], fds[1]))
}

/// Which side of a fork this is.
pub enum Forked {
    Parent { child: i32 },
    Child,
}

pub fn fork() -> Result<Forked, Errno> {
    // SAFETY: no arguments. A single-threaded static program without libc:
    // after fork the child holds a consistent copy of all of it, no lock
    // or allocator state.
    match check(unsafe { syscall0(nr::FORK) })? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent { child: pid as i32 }),
    }
}

pub fn chdir(path: &CStr) -> Result<(), Errno> {
    // SAFETY: chdir reads the NUL-terminated `path`, borrowed for the call.
    check(unsafe { syscall1(nr::CHDIR, path.as_ptr() as usize) }).map(drop)
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let mut ts = [0i64; 2];
    let ptr = ts.as_mut_ptr() as usize;
    // SAFETY: clock_gettime writes a struct timespec (two i64) at `ptr`, a
    // live [i64; 2].
    unsafe { syscall2(nr::CLOCK_GETTIME, CLOCK_MONOTONIC, ptr) };
    (ts[0] as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts[1] as u64)
}

/// Open `path` read-only and close-on-exec (a directory when `dir`).
pub fn open_read(path: &CStr, dir: bool) -> Result<i32, Errno> {
    let flags = O_RDONLY | O_CLOEXEC | if dir { O_DIRECTORY } else { 0 };
    let path = path.as_ptr() as usize;
    // SAFETY: openat reads the NUL-terminated path, borrowed for the call;
    // the new fd replaces nothing.
    check(unsafe { syscall4(nr::OPENAT, AT_FDCWD, path, flags, 0) }).map(|fd| fd as i32)
}

/// readlink(2) into `buf`: the length of the target (cut at `buf.len()`).
pub fn readlink(path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    let (ptr, len) = (buf.as_mut_ptr() as usize, buf.len());
    // SAFETY: readlink reads the NUL-terminated path and writes at most
    // `len` bytes at `ptr`, a live mutable slice.
    check(unsafe { syscall3(nr::READLINK, path.as_ptr() as usize, ptr, len) })
}

/// getdents64(2) into `buf`: the bytes of `linux_dirent64` records read, 0
/// at the end. Walk them with [`dir_entries`].
pub fn getdents(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    let (ptr, len) = (buf.as_mut_ptr() as usize, buf.len());
    // SAFETY: getdents64 writes at most `len` bytes at `ptr`, a live
    // mutable slice.
    check(unsafe { syscall3(nr::GETDENTS64, fd as usize, ptr, len) })
}

/// The names in a getdents64 buffer. A `linux_dirent64` is d_ino (8),
/// d_off (8), d_reclen (2), d_type (1), then the NUL-terminated name.
pub fn dir_entries(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    core::iter::from_fn(move || {
        let record = buf.get(at..)?;
        let reclen = usize::from(u16::from_ne_bytes([*record.get(16)?, *record.get(17)?]));
        let name = record.get(19..reclen)?;
        at += reclen.max(1);
        let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        name.get(..len)
    })
}

/// A NUL-terminated path built in a fixed buffer of `N` bytes (PATH_MAX
/// by default: the kernel refuses longer paths with ENAMETOOLONG anyway).
pub struct CPath<const N: usize = PATH_MAX> {
    buf: [u8; N],
}

pub const PATH_MAX: usize = 4096;
pub const ENAMETOOLONG: Errno = 36;

impl<const N: usize> CPath<N> {
    /// The concatenation of `parts`; ENAMETOOLONG when it and its NUL do
    /// not fit, as the kernel would say.
    pub fn of(parts: &[&[u8]]) -> Result<CPath<N>, Errno> {
        let mut buf = [0; N];
        let mut len = 0;
        for part in parts {
            let end = len + part.len();
            buf.get_mut(len..end)
                .filter(|_| end < N)
                .ok_or(ENAMETOOLONG)?
                .copy_from_slice(part);
            len = end;
        }
        // The buffer was zeroed and `len < N`: the NUL is in place.
        Ok(CPath { buf })
    }

    /// Up to the first NUL (a part holding a NUL cuts the path there, as
    /// the kernel would read it).
    pub fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.buf).unwrap_or(c"")
    }
}

/// execve(2) of `path` with `argv` and `envp`; returns only on failure,
/// with the errno.
pub fn execve(path: &CStr, argv: Argv, envp: Envp) -> Errno {
    let (argv, envp) = (argv.as_ptr() as usize, envp.as_ptr() as usize);
    // SAFETY: the kernel reads the NUL-terminated path and the two
    // NULL-terminated arrays of NUL-terminated strings (the initial stack's,
    // alive for the whole process); on success nothing of ours is left.
    -unsafe { syscall3(nr::EXECVE, path.as_ptr() as usize, argv, envp) } as Errno
}

/// execvp(3)'s fallback for a file the kernel cannot execute (ENOEXEC, a
/// script without `#!`): `/bin/sh FILE ARGS...`, where ARGS are `argv`
/// after its first entry. The new argv goes in a fresh anonymous mapping
/// (the caller is a child about to exec or exit); returns the errno.
pub fn execve_sh(file: &CStr, argv: Argv, envp: Envp) -> Errno {
    let count = argv.len();
    // "/bin/sh", FILE, argv[1..count], NULL.
    let len = (count + 2) * core::mem::size_of::<usize>();
    let Ok(map) = mmap_anonymous(len) else {
        return ENOMEM;
    };
    let slots = map as *mut *const u8;
    let from = argv.as_ptr();
    // SAFETY: the mapping holds count + 2 pointer slots, all written here;
    // argv[1..count] are readable (argv is NULL-terminated after count).
    unsafe {
        *slots = c"/bin/sh".as_ptr().cast();
        *slots.add(1) = file.as_ptr().cast();
        for i in 1..count {
            *slots.add(i + 1) = *from.add(i);
        }
        *slots.add(count + 1) = core::ptr::null();
    }
    let sh = c"/bin/sh".as_ptr() as usize;
    let envp = envp.as_ptr() as usize;
    // SAFETY: as in `execve`; `slots` is the NULL-terminated array built
    // above, of strings that outlive the call.
    -unsafe { syscall3(nr::EXECVE, sh, slots as usize, envp) } as Errno
}

/// A private anonymous mapping of `len` bytes (reserved, not committed:
/// only pages written to cost memory); its address.
fn mmap_anonymous(len: usize) -> Result<usize, Errno> {
    // SAFETY: a new mapping at an address the kernel picks (0: no hint, no
    // MAP_FIXED), so nothing existing is replaced; fd -1, offset 0.
    check(unsafe {
        syscall6(
            nr::MMAP,
            0,
            len,
            PROT_READ_WRITE,
            MAP_PRIVATE_ANONYMOUS_NORESERVE,
            usize::MAX, // fd -1
            0,
        )
    })
}

/// A growable array of i32 in an anonymous mapping, for the pids of a
/// /proc scan (no allocator here). It reserves room for every possible pid
/// (`pid_max` is at most 4,194,304) and costs only the pages written;
/// dropping it unmaps them.
pub struct PidList {
    base: *mut i32,
    len: usize,
}

const PID_LIST_CAPACITY: usize = 1 << 23;

impl PidList {
    pub fn new() -> Result<PidList, Errno> {
        let base = mmap_anonymous(PID_LIST_CAPACITY * 4)? as *mut i32;
        Ok(PidList { base, len: 0 })
    }

    /// Append; false when full (it cannot be: see the capacity).
    pub fn push(&mut self, value: i32) -> bool {
        if self.len == PID_LIST_CAPACITY {
            return false;
        }
        // SAFETY: `len` is within the mapping, which is ours and writable.
        unsafe { *self.base.add(self.len) = value };
        self.len += 1;
        true
    }

    pub fn as_slice(&self) -> &[i32] {
        // SAFETY: the first `len` slots were written by `push`; the
        // mapping lives as long as `self`.
        unsafe { core::slice::from_raw_parts(self.base, self.len) }
    }
}

impl Drop for PidList {
    fn drop(&mut self) {
        // SAFETY: the mapping is this list's own (made by `new`, of this
        // size), and no slice of it outlives `self`.
        unsafe { syscall2(nr::MUNMAP, self.base as usize, PID_LIST_CAPACITY * 4) };
    }
}
