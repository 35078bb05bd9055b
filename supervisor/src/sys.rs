//! The supervisor's unsafe fence: small safe wrappers over the raw system
//! calls of its PID 1 duties (the signal mask, dispositions and signalfd,
//! reaping, kill), of `supervisor init`'s terminal hand-over, of the window
//! size of `supervisor exec`'s terminals, and of giving
//! idle memory back (madvise, malloc_trim).
//!
//! Nothing here decides anything; [`crate::pid1`], [`crate::init`] and
//! [`crate::memory`] do. Spawning lives in `container` (its own `sys`).
//! Errors come back as nix's [`Errno`].

use std::mem::{self, MaybeUninit};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

use crate::memory::CleanMapping;

/// The kernel's `sigset_t` is one 64-bit word on every Linux architecture we
/// build for (x86_64, aarch64); the raw system calls take its size.
const KERNEL_SIGSET_SIZE: usize = mem::size_of::<u64>();

/// Every signal, in the kernel's sigset layout.
const ALL_SIGNALS: u64 = !0;

/// Block every signal with the raw `rt_sigprocmask`: glibc's wrapper keeps
/// its internal 32 and 33 unblocked.
pub fn block_all_signals() -> Result<(), Errno> {
    // SAFETY: rt_sigprocmask reads one kernel sigset (8 bytes) from a valid
    // pointer and writes nothing (old set is NULL).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &ALL_SIGNALS as *const u64,
            std::ptr::null_mut::<u64>(),
            KERNEL_SIGSET_SIZE,
        )
    };
    Errno::result(ret).map(drop)
}

/// The kernel's `struct sigaction` for `rt_sigaction` (x86_64 and aarch64
/// share this layout: handler, flags, restorer, 64-bit mask).
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Set `signal`'s disposition to the default with the raw `rt_sigaction`:
/// glibc's wrapper refuses its internal 32 and 33. The kernel refuses
/// SIGKILL and SIGSTOP (EINVAL), which are always default.
pub fn set_default_disposition(signal: i32) -> Result<(), Errno> {
    let action = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: rt_sigaction reads one fully initialised kernel sigaction
    // (SIG_DFL needs no restorer) and writes nothing (old is NULL).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            &action as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            KERNEL_SIGSET_SIZE,
        )
    };
    Errno::result(ret).map(drop)
}

/// A new signalfd over every signal (raw `signalfd4`, so 32 and 33 are in
/// it), close-on-exec and non-blocking.
pub fn signalfd_all() -> Result<OwnedFd, Errno> {
    // SAFETY: signalfd4 with fd -1 creates a new descriptor; it reads one
    // kernel sigset from a valid pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_signalfd4,
            -1,
            &ALL_SIGNALS as *const u64,
            KERNEL_SIGSET_SIZE,
            libc::SFD_CLOEXEC | libc::SFD_NONBLOCK,
        )
    };
    let raw = Errno::result(ret)?;
    let raw = i32::try_from(raw).map_err(|_| Errno::EBADF)?;
    // SAFETY: the kernel just returned this descriptor to us and nothing
    // else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Read one record from a non-blocking signalfd; `Ok(None)` when no signal
/// is pending (EAGAIN). EINTR is retried.
pub fn read_signalfd(fd: BorrowedFd<'_>) -> Result<Option<libc::signalfd_siginfo>, Errno> {
    let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
    let size = mem::size_of::<libc::signalfd_siginfo>();
    loop {
        // SAFETY: reads at most `size` bytes into memory we own; the
        // signalfd only ever returns whole `signalfd_siginfo` records.
        let ret = unsafe { libc::read(fd.as_raw_fd(), info.as_mut_ptr().cast(), size) };
        match Errno::result(ret) {
            Ok(n) if n as usize == size => break,
            Ok(_) => return Err(Errno::EIO),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Ok(None),
            Err(errno) => return Err(errno),
        }
    }
    // SAFETY: the read above filled the whole record.
    Ok(Some(unsafe { info.assume_init() }))
}

/// `waitpid(-1, WNOHANG)`: `(pid, raw status)` of one child that ended,
/// `Ok(None)` when children remain but none has ended. ECHILD (no child
/// left) is an error for the caller to read; EINTR is retried.
pub fn wait_any_nohang() -> Result<Option<(i32, i32)>, Errno> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes one int into memory we own.
        let ret = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        match Errno::result(ret) {
            Ok(0) => return Ok(None),
            Ok(pid) => return Ok(Some((pid, status))),
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno),
        }
    }
}

/// kill(2) with any signal number, real-time included.
pub fn kill(target: i32, signal: i32) -> Result<(), Errno> {
    // SAFETY: kill takes plain integers.
    Errno::result(unsafe { libc::kill(target, signal) }).map(drop)
}

/// The process's fd 0, borrowed for as long as the process lives.
pub fn stdin() -> BorrowedFd<'static> {
    // SAFETY: fd 0 is never closed by this program, so the borrow stays
    // valid; when nothing is open there, calls on it fail with EBADF.
    unsafe { BorrowedFd::borrow_raw(libc::STDIN_FILENO) }
}

/// Give up the controlling terminal on `fd` (TIOCNOTTY).
pub fn release_controlling_terminal(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: TIOCNOTTY takes no argument.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCNOTTY) }).map(drop)
}

/// The window size of the terminal `fd` (TIOCGWINSZ).
pub fn window_size(fd: BorrowedFd<'_>) -> Result<libc::winsize, Errno> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` to a valid pointer to
    // one we own.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) })?;
    Ok(size)
}

/// Set the window size of the terminal `fd` (TIOCSWINSZ; the kernel sends
/// SIGWINCH to its foreground process group when it changes).
pub fn set_window_size(fd: BorrowedFd<'_>, size: &libc::winsize) -> Result<(), Errno> {
    // SAFETY: TIOCSWINSZ reads one `struct winsize` from a valid pointer.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, size) }).map(drop)
}

/// Unmap the pages of a clean mapping of our executable
/// (`MADV_DONTNEED`) and make its faults map one page at a time
/// (`MADV_RANDOM`: no fault-around); returns whether the pages went.
pub fn drop_mapping_pages(mapping: &CleanMapping) -> bool {
    let start = mapping.start() as *mut libc::c_void;
    // SAFETY: a `CleanMapping` is a whole private, not writable mapping of
    // our own executable with no anonymous (copied) page: MADV_DONTNEED
    // only unmaps clean pages, which fault back in from the file unchanged.
    let dropped = unsafe { libc::madvise(start, mapping.size(), libc::MADV_DONTNEED) };
    // SAFETY: as above; MADV_RANDOM only changes how faults map pages.
    unsafe { libc::madvise(start, mapping.size(), libc::MADV_RANDOM) };
    dropped == 0
}

/// Return the C allocator's free heap pages to the kernel (glibc's
/// malloc_trim; other C libraries have none).
pub fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free memory to the kernel; no pointer
    // held by this program is affected.
    unsafe {
        libc::malloc_trim(0);
    }
}
