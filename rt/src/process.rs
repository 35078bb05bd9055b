//! The process-wide calls every PID 1 here makes: writing a diagnostic,
//! exiting, its pid, the subreaper flag, reaping.

use crate::nr;
use crate::syscall::{EINTR, Errno, check, syscall0, syscall1, syscall3, syscall4};

/// Write all of `buf` to `fd`, giving up silently on error (there is
/// nobody to report a failed diagnostic to). EINTR is retried.
pub fn write_all(fd: i32, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: write(2) reads `buf.len()` bytes at `buf`, a live slice.
        let n = unsafe { syscall3(nr::WRITE, fd as usize, buf.as_ptr() as usize, buf.len()) };
        if n == -(EINTR as isize) {
            continue;
        }
        // Written n > 0 bytes (never more than asked): go on with the rest.
        // An error or a zero-length write gives up.
        match buf.get(n as usize..) {
            Some(rest) if n > 0 => buf = rest,
            _ => return,
        }
    }
}

/// exit_group(2): end every thread (there is one) with `code`.
pub fn exit(code: i32) -> ! {
    // exit_group does not return; loop on it rather than invoke UB.
    loop {
        // SAFETY: no pointer argument; ending the process is what is asked.
        unsafe { syscall1(nr::EXIT_GROUP, code as usize) };
    }
}

pub fn getpid() -> i32 {
    // SAFETY: no arguments, nothing changed.
    unsafe { syscall0(nr::GETPID) as i32 }
}

const PR_SET_CHILD_SUBREAPER: usize = 36;

/// Become a child subreaper: orphans of our descendants are reparented to
/// us, not to the namespace's PID 1 (what a PID 1 that is not pid 1 needs).
pub fn set_child_subreaper() -> Result<(), Errno> {
    // SAFETY: no pointer argument; PR_SET_CHILD_SUBREAPER sets one flag of
    // this process.
    check(unsafe { syscall4(nr::PRCTL, PR_SET_CHILD_SUBREAPER, 1, 0, 0) }).map(drop)
}

const WNOHANG: usize = 1;
/// Also wait for children that report with a signal other than SIGCHLD
/// (or none): "clone" children in the kernel's words.
const WALL: usize = 0x4000_0000;

/// Which children [`wait_any_nohang`] takes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Children {
    /// Those that report to us with SIGCHLD: `waitpid(-1, WNOHANG)`, as
    /// tini and the supervisor's in-process init wait.
    Sigchld,
    /// Every child, whatever it reports with (`__WALL`), as pause reaps.
    All,
}

/// `wait4(-1, WNOHANG)`: `(pid, raw status)` of one child that ended,
/// `Ok(None)` when children remain but none has ended; ECHILD when none
/// is left. EINTR is retried.
pub fn wait_any_nohang(which: Children) -> Result<Option<(i32, i32)>, Errno> {
    let flags = match which {
        Children::Sigchld => WNOHANG,
        Children::All => WNOHANG | WALL,
    };
    loop {
        let mut status: i32 = 0;
        let ptr = &mut status as *mut i32 as usize;
        // SAFETY: wait4 writes one int to `ptr`, a live local; no rusage.
        match check(unsafe {
            syscall4(
                nr::WAIT4,
                usize::MAX, /* -1: any child */
                ptr,
                flags,
                0,
            )
        }) {
            Ok(0) => return Ok(None),
            Ok(pid) => return Ok(Some((pid as i32, status))),
            Err(EINTR) => continue,
            Err(errno) => return Err(errno),
        }
    }
}
