//! The raw system call: the only place that executes `syscall`, and the
//! kernel's answer as a `Result`.
//!
//! One function per argument count, so that a call sets only the registers
//! the kernel reads for it (a byte budget of 2,048 for pause makes the
//! difference count). They are `unsafe`: a system call can write anywhere
//! its pointer arguments say, or unmap memory in use; each caller states
//! why its arguments are valid for the call it names.

use core::arch::asm;

/// A positive errno, as the kernel's negative return value names it.
pub type Errno = i32;
/// Interrupted system call.
pub const EINTR: Errno = 4;
/// No child processes (left to wait for).
pub const ECHILD: Errno = 10;

/// The kernel's answer as a result: a value, or the errno (the kernel
/// returns `-errno`, from -4095 to -1, on failure).
#[inline(always)]
pub fn check(ret: isize) -> Result<usize, Errno> {
    if ret < 0 {
        Err(-ret as Errno)
    } else {
        Ok(ret as usize)
    }
}

/// `syscallN(nr, args...)`: the x86_64 convention: the number in rax, the
/// arguments in rdi, rsi, rdx, r10, r8, r9; the result in rax; rcx and r11
/// clobbered by the instruction.
macro_rules! syscall_fn {
    ($name:ident($($arg:ident in $reg:tt),*)) => {
        /// Raw system call `nr` with these arguments; returns the kernel's
        /// value (a negative errno on failure: see [`check`]).
        ///
        /// # Safety
        /// The arguments must be valid for the call `nr` names: pointers to
        /// live memory of the size and mutability it reads or writes, and
        /// nothing the program still uses may be unmapped, closed or
        /// replaced behind its back.
        #[inline(always)]
        pub unsafe fn $name(nr: usize $(, $arg: usize)*) -> isize {
            let ret: isize;
            // SAFETY: `syscall` only clobbers rax (the result), rcx and r11,
            // all declared, and touches no stack; what the kernel does with
            // the arguments is the caller's contract.
            unsafe {
                asm!(
                    "syscall",
                    inlateout("rax") nr as isize => ret,
                    $(in($reg) $arg,)*
                    lateout("rcx") _,
                    lateout("r11") _,
                    options(nostack),
                );
            }
            ret
        }
    };
}

syscall_fn!(syscall0());
syscall_fn!(syscall1(a in "rdi"));
syscall_fn!(syscall2(a in "rdi", b in "rsi"));
syscall_fn!(syscall3(a in "rdi", b in "rsi", c in "rdx"));
syscall_fn!(syscall4(a in "rdi", b in "rsi", c in "rdx", d in "r10"));
syscall_fn!(syscall5(a in "rdi", b in "rsi", c in "rdx", d in "r10", e in "r8"));
syscall_fn!(syscall6(a in "rdi", b in "rsi", c in "rdx", d in "r10", e in "r8", f in "r9"));
