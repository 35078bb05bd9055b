//! The process entry point, and how it reaches the binary's `main`.
//!
//! The kernel jumps to `_start` with `argc` at the stack pointer; `start`
//! reads the arguments and the environment off it and calls `rt_main`,
//! which the binary defines with [`main!`](crate::main!). The macro, not a
//! hand-written `#[no_mangle]`, is what checks the signature: a symbol
//! resolved by the linker has no type.

use crate::args::{self, Args, Envp};

/// The process entry point (ENTRY in `static.ld`). Clears the frame
/// pointer (the outermost frame), passes the stack pointer as the kernel
/// set it to `start`, and aligns the stack to 16 bytes for the call as the
/// ABI wants.
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

/// Called by `_start` with the initial stack pointer.
extern "C" fn start(stack: *const usize) -> ! {
    // SAFETY: `_start` passes the stack pointer exactly as the kernel set it.
    let (args, envp) = unsafe { args::from_initial_stack(stack) };
    rt_main(args, envp)
}

// SAFETY: `rt_main` is defined by `main!` alone, with exactly this
// signature (the macro's function has these parameter and return types,
// checked by the compiler where it expands); a binary without it fails to
// link.
unsafe extern "Rust" {
    safe fn rt_main(args: Args, envp: Envp) -> !;
}

/// Declare the binary's entry: `main!(main)` with
/// `fn main(args: nolibc_rt::Args, envp: nolibc_rt::Envp) -> !`, called by
/// `_start` with the arguments after argv[0] and the environment.
#[macro_export]
macro_rules! main {
    ($main:path) => {
        /// The binary's entry, called by `nolibc_rt`'s `_start` (inlined
        /// there: one call frame less).
        #[unsafe(no_mangle)]
        #[inline(always)]
        fn rt_main(args: $crate::Args, envp: $crate::Envp) -> ! {
            $main(args, envp)
        }
    };
}

/// Referenced by the precompiled `core` of unwinding targets; never called,
/// because every panic aborts (panic = "abort" in both profiles). Only
/// unoptimised builds keep the reference; LTO removes it in release.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}
