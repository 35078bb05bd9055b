//! The only unsafe code of supervisor-init: the process entry point, the
//! arguments and environment on the initial stack, raw system calls, and
//! the memory functions the compiler calls. No libc is linked, so this
//! module is the whole ABI surface. Every call returns the kernel's answer
//! as `Result<_, Errno>` (a positive errno), with EINTR left to the caller
//! unless said otherwise.
//!
//! x86_64 only for now, as pause: another architecture needs its own
//! syscall numbers, `syscall` sequence, `_start` and struct layouts.

#[cfg(not(target_arch = "x86_64"))]
compile_error!(
    "supervisor-init: only x86_64 is implemented (syscall numbers and _start are per architecture)"
);

use core::arch::asm;
use core::ffi::CStr;

const SYS_READ: usize = 0;
const SYS_WRITE: usize = 1;
const SYS_CLOSE: usize = 3;
const SYS_POLL: usize = 7;
const SYS_MMAP: usize = 9;
const SYS_MUNMAP: usize = 11;
const SYS_RT_SIGACTION: usize = 13;
const SYS_RT_SIGPROCMASK: usize = 14;
const SYS_IOCTL: usize = 16;
const SYS_GETPID: usize = 39;
const SYS_FORK: usize = 57;
const SYS_FCNTL: usize = 72;
const SYS_EXECVE: usize = 59;
const SYS_WAIT4: usize = 61;
const SYS_KILL: usize = 62;
const SYS_CHDIR: usize = 80;
const SYS_READLINK: usize = 89;
const SYS_SETPGID: usize = 109;
const SYS_GETPGRP: usize = 111;
const SYS_SETSID: usize = 112;
const SYS_PRCTL: usize = 157;
const SYS_GETDENTS64: usize = 217;
const SYS_CLOCK_GETTIME: usize = 228;
const SYS_EXIT_GROUP: usize = 231;
const SYS_OPENAT: usize = 257;
const SYS_SIGNALFD4: usize = 289;
const SYS_PIPE2: usize = 293;

/// A positive errno.
pub type Errno = i32;
pub const EINTR: Errno = 4;
pub const EAGAIN: Errno = 11;
pub const ENOMEM: Errno = 12;
pub const ECHILD: Errno = 10;
pub const ESRCH: Errno = 3;

const SIG_BLOCK: usize = 0;
const SIG_SETMASK: usize = 2;
const SIG_DFL: usize = 0;
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
const WNOHANG: usize = 1;
const POLLIN: i16 = 1;
const PR_SET_CHILD_SUBREAPER: usize = 36;
const TCGETS: usize = 0x5401;
const TIOCSCTTY: usize = 0x540E;
const TIOCSPGRP: usize = 0x5410;
const TIOCNOTTY: usize = 0x5422;
const CLOCK_MONOTONIC: usize = 1;
const PROT_READ_WRITE: usize = 3;
const MAP_PRIVATE_ANONYMOUS_NORESERVE: usize = 0x02 | 0x20 | 0x4000;

/// Raw system call with up to six arguments; the kernel's value (negative
/// errno on failure).
#[inline(always)]
fn syscall6(nr: usize, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> isize {
    let ret: isize;
    // SAFETY: the `syscall` instruction only clobbers rax (result), rcx and
    // r11; every caller in this module passes arguments that are valid for
    // the call it names (pointers to live, correctly sized values or null).
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            in("r10") d,
            in("r8") e,
            in("r9") f,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

#[inline(always)]
fn syscall4(nr: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
    syscall6(nr, a, b, c, d, 0, 0)
}

/// The kernel's answer as a result: a value, or the errno.
fn check(ret: isize) -> Result<usize, Errno> {
    if ret < 0 {
        Err(-ret as Errno)
    } else {
        Ok(ret as usize)
    }
}

/// Write all of `buf` to `fd`, giving up silently on error (there is
/// nobody to report a failed diagnostic to).
pub fn write_all(fd: i32, mut buf: &[u8]) {
    while !buf.is_empty() {
        let n = syscall4(SYS_WRITE, fd as usize, buf.as_ptr() as usize, buf.len(), 0);
        if n == -(EINTR as isize) {
            continue;
        }
        match buf.get(n as usize..) {
            Some(rest) if n > 0 => buf = rest,
            _ => return,
        }
    }
}

/// Read into `buf`; EINTR is retried.
pub fn read(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        match check(syscall4(
            SYS_READ,
            fd as usize,
            buf.as_mut_ptr() as usize,
            buf.len(),
            0,
        )) {
            Err(EINTR) => continue,
            other => return other,
        }
    }
}

/// Whether `fd` is open (fcntl F_GETFD answers).
pub fn is_open(fd: i32) -> bool {
    check(syscall4(SYS_FCNTL, fd as usize, F_GETFD, 0, 0)).is_ok()
}

/// Open /dev/null read-write, inheritable (it is to become fd 0, 1 or 2).
pub fn open_dev_null() -> Result<i32, Errno> {
    check(syscall4(
        SYS_OPENAT,
        AT_FDCWD,
        c"/dev/null".as_ptr() as usize,
        O_RDWR,
        0,
    ))
    .map(|fd| fd as i32)
}

pub fn close(fd: i32) {
    syscall4(SYS_CLOSE, fd as usize, 0, 0, 0);
}

pub fn exit(code: i32) -> ! {
    // exit_group does not return; loop on it rather than invoke UB.
    loop {
        syscall4(SYS_EXIT_GROUP, code as usize, 0, 0, 0);
    }
}

pub fn getpid() -> i32 {
    syscall4(SYS_GETPID, 0, 0, 0, 0) as i32
}

/// Replace the signal mask with `mask` (bit `n - 1` for signal `n`);
/// every bit set blocks all 64 signals, glibc's internal 32 and 33 too.
pub fn set_signal_mask(mask: u64) -> Result<(), Errno> {
    let ptr = &mask as *const u64 as usize;
    check(syscall4(
        SYS_RT_SIGPROCMASK,
        SIG_SETMASK,
        ptr,
        0,
        SIGSET_SIZE,
    ))
    .map(drop)
}

/// Add `signal` to the mask; returns the mask before.
pub fn block_signal(signal: i32) -> Result<u64, Errno> {
    let add: u64 = 1 << (signal - 1);
    let mut old: u64 = 0;
    let (add_ptr, old_ptr) = (&add as *const u64 as usize, &mut old as *mut u64 as usize);
    check(syscall4(
        SYS_RT_SIGPROCMASK,
        SIG_BLOCK,
        add_ptr,
        old_ptr,
        SIGSET_SIZE,
    ))?;
    Ok(old)
}

/// `struct sigaction` as the kernel's rt_sigaction reads it on x86_64.
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Set `signal`'s disposition to SIG_DFL (the kernel refuses SIGKILL and
/// SIGSTOP, which are always default).
pub fn set_default_disposition(signal: i32) -> Result<(), Errno> {
    let action = KernelSigaction {
        handler: SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    let ptr = &action as *const KernelSigaction as usize;
    check(syscall4(
        SYS_RT_SIGACTION,
        signal as usize,
        ptr,
        0,
        SIGSET_SIZE,
    ))
    .map(drop)
}

/// A new signalfd over every signal, close-on-exec and non-blocking.
pub fn signalfd_all() -> Result<i32, Errno> {
    let mask = u64::MAX;
    let ptr = &mask as *const u64 as usize;
    let flags = SFD_CLOEXEC | SFD_NONBLOCK;
    check(syscall4(SYS_SIGNALFD4, usize::MAX, ptr, SIGSET_SIZE, flags)).map(|fd| fd as i32)
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
    check(syscall4(SYS_POLL, ptr, 1, timeout_ms as usize, 0)).map(|n| n > 0)
}

/// `waitpid(-1, WNOHANG)`: `(pid, raw status)` of one child that ended,
/// `Ok(None)` when children remain but none has ended; ECHILD when none
/// is left. EINTR is retried.
pub fn wait_any_nohang() -> Result<Option<(i32, i32)>, Errno> {
    loop {
        let mut status: i32 = 0;
        let ptr = &mut status as *mut i32 as usize;
        match check(syscall4(SYS_WAIT4, usize::MAX, ptr, WNOHANG, 0)) {
            Ok(0) => return Ok(None),
            Ok(pid) => return Ok(Some((pid as i32, status))),
            Err(EINTR) => continue,
            Err(errno) => return Err(errno),
        }
    }
}

/// Wait for the child `pid` to end (and reap it). EINTR is retried.
pub fn wait_pid(pid: i32) {
    loop {
        let mut status: i32 = 0;
        let ptr = &mut status as *mut i32 as usize;
        if check(syscall4(SYS_WAIT4, pid as usize, ptr, 0, 0)) != Err(EINTR) {
            return;
        }
    }
}

/// kill(2) with any signal number, real-time included.
pub fn kill(target: i32, signal: i32) -> Result<(), Errno> {
    check(syscall4(SYS_KILL, target as usize, signal as usize, 0, 0)).map(drop)
}

pub fn set_child_subreaper() -> Result<(), Errno> {
    check(syscall4(SYS_PRCTL, PR_SET_CHILD_SUBREAPER, 1, 0, 0)).map(drop)
}

/// Whether `fd` is a terminal (isatty: TCGETS succeeds).
pub fn is_tty(fd: i32) -> bool {
    // The kernel's struct termios is 36 bytes on x86_64.
    let mut termios = [0u8; 64];
    check(syscall4(
        SYS_IOCTL,
        fd as usize,
        TCGETS,
        termios.as_mut_ptr() as usize,
        0,
    ))
    .is_ok()
}

/// Give up the controlling terminal on `fd` (TIOCNOTTY).
pub fn release_controlling_terminal(fd: i32) -> Result<(), Errno> {
    check(syscall4(SYS_IOCTL, fd as usize, TIOCNOTTY, 0, 0)).map(drop)
}

/// Take the terminal on `fd` as controlling terminal (TIOCSCTTY).
pub fn take_controlling_terminal(fd: i32) -> Result<(), Errno> {
    check(syscall4(SYS_IOCTL, fd as usize, TIOCSCTTY, 0, 0)).map(drop)
}

/// Make the process group `pgrp` the foreground group of the terminal on
/// `fd` (tcsetpgrp).
pub fn set_foreground(fd: i32, pgrp: i32) -> Result<(), Errno> {
    let ptr = &pgrp as *const i32 as usize;
    check(syscall4(SYS_IOCTL, fd as usize, TIOCSPGRP, ptr, 0)).map(drop)
}

pub fn getpgrp() -> i32 {
    syscall4(SYS_GETPGRP, 0, 0, 0, 0) as i32
}

pub fn setsid() -> Result<(), Errno> {
    check(syscall4(SYS_SETSID, 0, 0, 0, 0)).map(drop)
}

/// setpgid(0, 0): a process group of its own.
pub fn setpgid_self() -> Result<(), Errno> {
    check(syscall4(SYS_SETPGID, 0, 0, 0, 0)).map(drop)
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe_cloexec() -> Result<(i32, i32), Errno> {
    let mut fds = [0i32; 2];
    check(syscall4(
        SYS_PIPE2,
        fds.as_mut_ptr() as usize,
        O_CLOEXEC,
        0,
        0,
    ))?;
    Ok((fds[0], fds[1]))
}

/// Which side of a fork this is.
pub enum Forked {
    Parent { child: i32 },
    Child,
}

pub fn fork() -> Result<Forked, Errno> {
    // A single-threaded static program without libc: after fork the child
    // holds a consistent copy of all of it, no lock or allocator state.
    match check(syscall4(SYS_FORK, 0, 0, 0, 0))? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent { child: pid as i32 }),
    }
}

pub fn chdir(path: &CStr) -> Result<(), Errno> {
    check(syscall4(SYS_CHDIR, path.as_ptr() as usize, 0, 0, 0)).map(drop)
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let mut ts = [0i64; 2];
    syscall4(
        SYS_CLOCK_GETTIME,
        CLOCK_MONOTONIC,
        ts.as_mut_ptr() as usize,
        0,
        0,
    );
    (ts[0] as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts[1] as u64)
}

/// Open `path` read-only and close-on-exec (a directory when `dir`).
pub fn open_read(path: &CStr, dir: bool) -> Result<i32, Errno> {
    let flags = O_RDONLY | O_CLOEXEC | if dir { O_DIRECTORY } else { 0 };
    check(syscall4(
        SYS_OPENAT,
        AT_FDCWD,
        path.as_ptr() as usize,
        flags,
        0,
    ))
    .map(|fd| fd as i32)
}

/// readlink(2) into `buf`: the length of the target (cut at `buf.len()`).
pub fn readlink(path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    let (ptr, len) = (buf.as_mut_ptr() as usize, buf.len());
    check(syscall4(SYS_READLINK, path.as_ptr() as usize, ptr, len, 0))
}

/// getdents64(2) into `buf`: the bytes of `linux_dirent64` records read, 0
/// at the end. Walk them with [`dir_entries`].
pub fn getdents(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    let (ptr, len) = (buf.as_mut_ptr() as usize, buf.len());
    check(syscall4(SYS_GETDENTS64, fd as usize, ptr, len, 0))
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
    -syscall4(
        SYS_EXECVE,
        path.as_ptr() as usize,
        argv.0 as usize,
        envp.0 as usize,
        0,
    ) as Errno
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
    // SAFETY: the mapping holds count + 2 pointer slots, all written here;
    // argv[1..count] are readable (argv is NULL-terminated after count).
    unsafe {
        *slots = c"/bin/sh".as_ptr().cast();
        *slots.add(1) = file.as_ptr().cast();
        for i in 1..count {
            *slots.add(i + 1) = *argv.0.add(i);
        }
        *slots.add(count + 1) = core::ptr::null();
    }
    let sh = c"/bin/sh".as_ptr() as usize;
    -syscall4(SYS_EXECVE, sh, slots as usize, envp.0 as usize, 0) as Errno
}

/// A private anonymous mapping of `len` bytes (reserved, not committed:
/// only pages written to cost memory); its address.
fn mmap_anonymous(len: usize) -> Result<usize, Errno> {
    check(syscall6(
        SYS_MMAP,
        0,
        len,
        PROT_READ_WRITE,
        MAP_PRIVATE_ANONYMOUS_NORESERVE,
        usize::MAX, // fd -1
        0,
    ))
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
        syscall4(SYS_MUNMAP, self.base as usize, PID_LIST_CAPACITY * 4, 0, 0);
    }
}

/// The process entry point. The kernel leaves `argc` at the stack pointer,
/// followed by the argv pointers, a NULL, the envp pointers and a NULL;
/// hand that address to `start`.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        "xor ebp, ebp",
        "mov rdi, rsp",
        "and rsp, -16",
        "call {start}",
        "ud2",
        start = sym start,
    )
}

/// Called by `_start` with the initial stack pointer: reads the arguments
/// and the environment off it and runs `crate::main`.
extern "C" fn start(stack: *const usize) -> ! {
    // SAFETY: per the SysV ABI the kernel put argc at `stack`, then argc
    // argv pointers and a NULL, then the envp pointers and a NULL.
    let (args, envp) = unsafe {
        let argc = *stack;
        let argv = stack.add(1) as *const *const u8;
        let args = Args {
            next: argv.add(argc.min(1)),
            end: argv.add(argc),
        };
        (args, Envp(argv.add(argc + 1)))
    };
    crate::main(args, envp)
}

/// The command-line arguments after argv[0], read off the initial stack.
pub struct Args {
    next: *const *const u8,
    end: *const *const u8,
}

impl Args {
    /// The arguments not yet taken, as the NULL-terminated array execve
    /// wants (the kernel's argv ends in NULL).
    pub fn rest(&self) -> Argv {
        Argv(self.next)
    }
}

impl Iterator for Args {
    type Item = Arg;

    fn next(&mut self) -> Option<Arg> {
        if self.next >= self.end {
            return None;
        }
        // SAFETY: `next` is within argv[1..argc], so it is readable.
        let arg = unsafe { *self.next };
        // SAFETY: still within argv[0..=argc] after the increment.
        self.next = unsafe { self.next.add(1) };
        Some(Arg(arg))
    }
}

/// One argument or environment entry: a NUL-terminated string that lives
/// as long as the process.
#[derive(Clone, Copy)]
pub struct Arg(*const u8);

impl Arg {
    /// Its bytes, without the NUL.
    pub fn bytes(self) -> &'static [u8] {
        let with_nul = self.with_nul();
        &with_nul[..with_nul.len() - 1]
    }

    /// Its bytes and the NUL.
    fn with_nul(self) -> &'static [u8] {
        // SAFETY: the string is NUL-terminated, so every byte up to and
        // including the NUL is readable, and nothing writes to it.
        unsafe { core::slice::from_raw_parts(self.0, strlen(self.0) + 1) }
    }
}

/// A NULL-terminated array of arguments, as execve takes it.
#[derive(Clone, Copy)]
pub struct Argv(*const *const u8);

impl Argv {
    /// The first entry (the program), if any.
    pub fn first(self) -> Option<Arg> {
        // SAFETY: the array is NULL-terminated, so entry 0 is readable.
        let first = unsafe { *self.0 };
        (!first.is_null()).then_some(Arg(first))
    }

    /// The number of entries before the NULL.
    pub fn len(self) -> usize {
        let mut n = 0;
        // SAFETY: NULL-terminated: entries up to the NULL are readable.
        while !unsafe { *self.0.add(n) }.is_null() {
            n += 1;
        }
        n
    }
}

/// The environment as the kernel passed it (NULL-terminated).
#[derive(Clone, Copy)]
pub struct Envp(*const *const u8);

impl Envp {
    /// The entries, `NAME=value` each.
    pub fn iter(self) -> impl Iterator<Item = &'static [u8]> {
        let mut at = self.0;
        core::iter::from_fn(move || {
            // SAFETY: NULL-terminated: entries up to the NULL are readable,
            // and `at` never moves past it.
            let entry = unsafe { *at };
            if entry.is_null() {
                return None;
            }
            // SAFETY: as above, the next slot is at most the NULL.
            at = unsafe { at.add(1) };
            Some(Arg(entry).bytes())
        })
    }
}

// The memory and string functions the compiler emits calls to (copies,
// fills and comparisons of arrays, a loop that finds a NUL); with no libc,
// they are here. Written with
// `rep movsb` / `rep stosb` so that the compiler cannot turn their loops
// back into calls to themselves.

/// # Safety
/// As C's memcpy: `n` bytes readable at `src`, writable at `dest`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract; rep movsb copies forwards with DF
    // clear (the ABI guarantees DF = 0 on entry).
    unsafe {
        asm!("rep movsb", inout("rdi") dest => _, inout("rsi") src => _, inout("rcx") n => _,
             options(nostack, preserves_flags));
    }
    dest
}

/// # Safety
/// As C's memmove: `n` bytes readable at `src`, writable at `dest`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // dest is before src, or past its end: a forward copy is safe.
        // SAFETY: the caller's contract.
        unsafe { memcpy(dest, src, n) };
    } else {
        // Overlapping with dest after src: copy backwards (DF set for the
        // copy, cleared again as the ABI wants).
        // SAFETY: the caller's contract; the pointers start at the last
        // byte of each range.
        unsafe {
            asm!("std", "rep movsb", "cld",
                 inout("rdi") dest.add(n).wrapping_sub(1) => _,
                 inout("rsi") src.add(n).wrapping_sub(1) => _,
                 inout("rcx") n => _,
                 options(nostack));
        }
    }
    dest
}

/// # Safety
/// As C's memset: `n` bytes writable at `dest`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dest: *mut u8, byte: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract; DF is clear.
    unsafe {
        asm!("rep stosb", inout("rdi") dest => _, inout("rcx") n => _, in("al") byte as u8,
             options(nostack, preserves_flags));
    }
    dest
}

/// # Safety
/// As C's memcmp: `n` bytes readable at `a` and at `b`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: the caller's contract: i < n. Volatile so the loop stays
        // a loop.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

/// # Safety
/// As C's strlen: a NUL-terminated string at `s`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strlen(s: *const u8) -> usize {
    let mut len = 0;
    // SAFETY: the caller's contract: every byte up to the NUL is readable.
    // Volatile so the loop stays a loop (not a call to strlen).
    while unsafe { s.add(len).read_volatile() } != 0 {
        len += 1;
    }
    len
}

/// # Safety
/// As C's bcmp: `n` bytes readable at `a` and at `b`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the same contract.
    unsafe { memcmp(a, b, n) }
}
