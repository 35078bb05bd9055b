//! The only unsafe code of pause: the process entry point and raw system
//! calls. No libc is linked, so this module is the whole ABI surface.
//!
//! x86_64 only for now; another architecture needs its own syscall numbers,
//! `syscall` instruction sequence and `_start`, behind `cfg(target_arch)`.

#[cfg(not(target_arch = "x86_64"))]
compile_error!(
    "pause: only x86_64 is implemented (syscall numbers and _start are per architecture)"
);

use core::arch::asm;

const SYS_WRITE: usize = 1;
const SYS_RT_SIGACTION: usize = 13;
const SYS_RT_SIGPROCMASK: usize = 14;
const SYS_GETPID: usize = 39;
const SYS_WAIT4: usize = 61;
const SYS_RT_SIGTIMEDWAIT: usize = 128;
const SYS_PRCTL: usize = 157;
const SYS_EXIT_GROUP: usize = 231;

const SIG_SETMASK: usize = 2;
const SIG_IGN: usize = 1;
/// Size of the kernel's sigset_t on Linux: 64 signals.
const SIGSET_SIZE: usize = 8;
const WNOHANG: usize = 1;
/// Also wait for children that report to us with a signal other than SIGCHLD.
const WALL: usize = 0x4000_0000;
const PR_SET_CHILD_SUBREAPER: usize = 36;

/// A set of signals in the kernel's layout (bit `n - 1` for signal `n`).
#[derive(Clone, Copy)]
pub struct SigSet(u64);

impl SigSet {
    pub const fn of(signals: &[u32]) -> SigSet {
        let mut bits = 0u64;
        let mut i = 0;
        while i < signals.len() {
            bits |= 1 << (signals[i] - 1);
            i += 1;
        }
        SigSet(bits)
    }

    pub const fn contains(self, signal: u32) -> bool {
        self.0 & (1 << (signal - 1)) != 0
    }
}

/// `struct sigaction` as the kernel's rt_sigaction reads it on x86_64.
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Raw system call with up to four arguments; returns the kernel's value
/// (negative errno on failure).
#[inline(always)]
fn syscall4(nr: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
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
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Write all of `buf` to `fd`, giving up silently on error (there is
/// nobody to report a failed diagnostic to).
pub fn write_all(fd: usize, mut buf: &[u8]) {
    while !buf.is_empty() {
        let n = syscall4(SYS_WRITE, fd, buf.as_ptr() as usize, buf.len(), 0);
        if n == -4 {
            continue; // EINTR
        }
        // Written n > 0 bytes (never more than asked): go on with the rest.
        // An error or a zero-length write gives up.
        match buf.get(n as usize..) {
            Some(rest) if n > 0 => buf = rest,
            _ => return,
        }
    }
}

pub fn exit(code: i32) -> ! {
    // exit_group does not return; loop on it rather than invoke UB.
    loop {
        syscall4(SYS_EXIT_GROUP, code as usize, 0, 0, 0);
    }
}

pub fn getpid() -> isize {
    syscall4(SYS_GETPID, 0, 0, 0, 0)
}

/// Replace the signal mask with `set`.
pub fn set_signal_mask(set: SigSet) -> isize {
    let mask = set.0;
    syscall4(
        SYS_RT_SIGPROCMASK,
        SIG_SETMASK,
        &mask as *const u64 as usize,
        0,
        SIGSET_SIZE,
    )
}

/// Set the disposition of `signal` to SIG_IGN.
pub fn ignore_signal(signal: u32) -> isize {
    let action = KernelSigaction {
        handler: SIG_IGN,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    syscall4(
        SYS_RT_SIGACTION,
        signal as usize,
        &action as *const KernelSigaction as usize,
        0,
        SIGSET_SIZE,
    )
}

/// Sleep until one of the (blocked) signals in `set` is pending and take it.
/// Returns the signal number, or a negative errno (EINTR after a stop and
/// continue).
pub fn wait_for_signal(set: SigSet) -> isize {
    let mask = set.0;
    syscall4(
        SYS_RT_SIGTIMEDWAIT,
        &mask as *const u64 as usize,
        0,
        0, // no timeout: sleep without any wake-up until a signal comes
        SIGSET_SIZE,
    )
}

/// Reap one exited child without blocking: its pid, 0 when children are
/// left but none has exited, or a negative errno (ECHILD: none left).
pub fn reap_one() -> isize {
    syscall4(
        SYS_WAIT4,
        usize::MAX, /* -1: any child */
        0,
        WNOHANG | WALL,
        0,
    )
}

pub fn set_child_subreaper() -> isize {
    syscall4(SYS_PRCTL, PR_SET_CHILD_SUBREAPER, 1, 0, 0)
}

/// The process entry point. The kernel leaves `argc` at the stack pointer,
/// followed by the argv pointers; hand that address to `start`.
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
/// off it and runs `crate::main`.
extern "C" fn start(stack: *const usize) -> ! {
    // SAFETY: `_start` passes the stack pointer exactly as the kernel set it.
    let args = unsafe { Args::from_initial_stack(stack) };
    crate::main(args)
}

/// The command-line arguments after argv[0], read off the initial stack.
pub struct Args {
    next: *const *const u8,
    end: *const *const u8,
}

impl Args {
    /// # Safety
    /// `stack` must be the stack pointer the kernel handed to `_start`.
    pub unsafe fn from_initial_stack(stack: *const usize) -> Args {
        // SAFETY: per the SysV ABI the kernel put argc at `stack` and argc
        // argv pointers right after it.
        unsafe {
            let argc = *stack;
            let argv = stack.add(1) as *const *const u8;
            Args {
                next: argv.add(argc.min(1)),
                end: argv.add(argc),
            }
        }
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

/// One argument: a NUL-terminated string that lives as long as the process.
pub struct Arg(*const u8);

impl Arg {
    /// Whether the argument is exactly `text` (which holds no NUL). Compares
    /// byte by byte, so no strlen (which no libc provides here) is needed.
    pub fn is(&self, text: &[u8]) -> bool {
        for (i, &expected) in text.iter().enumerate() {
            // SAFETY: bytes 0..=i are readable: none before i was NUL,
            // because each equalled a byte of `text`.
            if unsafe { *self.0.add(i) } != expected {
                return false;
            }
        }
        // SAFETY: as above, byte `text.len()` is at most the terminator.
        unsafe { *self.0.add(text.len()) == 0 }
    }
}
