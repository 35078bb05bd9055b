//! Signal sets, the signal mask and dispositions, and taking a blocked
//! signal synchronously: how both PID 1s avoid signal handlers (nothing
//! runs in signal context, so nothing has to be async-signal-safe).

use crate::nr;
use crate::syscall::{Errno, check, syscall4};

/// Size of the kernel's sigset_t on Linux: 64 signals.
const SIGSET_SIZE: usize = 8;
const SIG_BLOCK: usize = 0;
const SIG_SETMASK: usize = 2;
const SIG_DFL: usize = 0;
const SIG_IGN: usize = 1;

/// A set of signals in the kernel's layout (bit `n - 1` for signal `n`,
/// 1 to 64).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct SigSet(u64);

impl SigSet {
    pub const EMPTY: SigSet = SigSet(0);
    /// Every signal, glibc's internal 32 and 33 too.
    pub const ALL: SigSet = SigSet(u64::MAX);

    pub const fn of(signals: &[i32]) -> SigSet {
        let mut bits = 0u64;
        let mut i = 0;
        while i < signals.len() {
            bits |= 1 << (signals[i] - 1);
            i += 1;
        }
        SigSet(bits)
    }

    pub const fn contains(self, signal: i32) -> bool {
        self.0 & (1 << (signal - 1)) != 0
    }

    /// The kernel's sigset_t, for a call that takes one (signalfd).
    pub const fn bits(self) -> u64 {
        self.0
    }
}

/// Replace the signal mask with `set`.
pub fn set_signal_mask(set: SigSet) -> Result<(), Errno> {
    let ptr = &set as *const SigSet as usize;
    // SAFETY: the kernel reads a sigset_t (SIGSET_SIZE bytes) at `ptr`, a
    // live local (SigSet is a transparent u64); no old mask is asked for.
    check(unsafe { syscall4(nr::RT_SIGPROCMASK, SIG_SETMASK, ptr, 0, SIGSET_SIZE) }).map(drop)
}

/// Add `signal` to the mask; returns the mask before.
pub fn block_signal(signal: i32) -> Result<SigSet, Errno> {
    let add = SigSet::of(&[signal]);
    let mut old = SigSet::EMPTY;
    let (add_ptr, old_ptr) = (
        &add as *const SigSet as usize,
        &mut old as *mut SigSet as usize,
    );
    // SAFETY: the kernel reads a sigset_t at `add_ptr` and writes one at
    // `old_ptr`; both are live locals of that size.
    check(unsafe { syscall4(nr::RT_SIGPROCMASK, SIG_BLOCK, add_ptr, old_ptr, SIGSET_SIZE) })?;
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

/// rt_sigaction(`signal`) with `handler` (SIG_DFL or SIG_IGN: never a
/// function, so no restorer is needed), no flags, an empty mask.
fn set_disposition(signal: i32, handler: usize) -> Result<(), Errno> {
    let action = KernelSigaction {
        handler,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    let ptr = &action as *const KernelSigaction as usize;
    // SAFETY: the kernel reads a struct sigaction at `ptr`, a live local in
    // its x86_64 layout; no old action is asked for (null).
    check(unsafe { syscall4(nr::RT_SIGACTION, signal as usize, ptr, 0, SIGSET_SIZE) }).map(drop)
}

/// Set `signal`'s disposition to SIG_IGN (the kernel refuses SIGKILL and
/// SIGSTOP).
pub fn ignore_signal(signal: i32) -> Result<(), Errno> {
    set_disposition(signal, SIG_IGN)
}

/// Set `signal`'s disposition to SIG_DFL (the kernel refuses SIGKILL and
/// SIGSTOP, which are always default).
pub fn set_default_disposition(signal: i32) -> Result<(), Errno> {
    set_disposition(signal, SIG_DFL)
}

/// Sleep until one of the (blocked) signals in `set` is pending and take
/// it: rt_sigtimedwait without a timeout, so no wake-up until a signal
/// comes. The signal number, or the errno (EINTR after a stop and
/// continue).
pub fn wait_for_signal(set: SigSet) -> Result<i32, Errno> {
    let ptr = &set as *const SigSet as usize;
    // SAFETY: the kernel reads a sigset_t at `ptr`, a live local; no
    // siginfo is asked for and there is no timeout (both null).
    check(unsafe { syscall4(nr::RT_SIGTIMEDWAIT, ptr, 0, 0, SIGSET_SIZE) }).map(|s| s as i32)
}
