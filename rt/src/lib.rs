//! nolibc-rt: what a `#![no_std]` Linux binary needs when no libc is
//! linked, shared by `pause` and `supervisor-init`.
//!
//! Both are PID 1 programs that must cost what a small static program
//! costs, so they link neither libc nor a C runtime: the kernel starts them
//! at this crate's `_start`, and every system call is a `syscall`
//! instruction. Each had its own copy of this layer; this crate is the one
//! copy. It holds:
//!
//! - [`syscall`]: the raw `syscall0`..`syscall6` (the only place that
//!   executes the instruction), the numbers in [`nr`], and [`Errno`] with
//!   [`check`] to turn the kernel's answer into a `Result`;
//! - the wrappers both binaries use: [`write_all`], [`exit`], [`getpid`]
//!   ([`process`]), the signal mask and dispositions ([`signal`]),
//!   [`set_child_subreaper`] and reaping ([`process`]);
//! - with the `start` feature, the process itself: `_start` and the
//!   arguments and environment on the initial stack ([`Args`], [`Envp`]),
//!   handed to the binary's entry declared with [`main!`]; the C memory
//!   functions the compiler emits calls to; `rust_eh_personality`;
//! - with the `link` feature, for the binary's build script:
//!   [`link::static_binary`], the linker arguments and the linker script
//!   (`static.ld`) that make the static, non-PIE, one-segment ELF.
//!
//! A binary's own system calls (pause has none left; supervisor-init has
//! signalfd, fork, exec, terminals, /proc) stay in its `sys.rs`, on top of
//! [`syscall`]. All `unsafe` code here is in small blocks, each with the
//! reason it holds.
//!
//! x86_64 only for now: another architecture needs its own [`nr`] table,
//! `syscall` sequence, `_start` and struct layouts, behind
//! `cfg(target_arch)`.

#![no_std]

#[cfg(not(target_arch = "x86_64"))]
compile_error!(
    "nolibc-rt: only x86_64 is implemented (syscall numbers and _start are per architecture)"
);

pub mod nr;
pub mod process;
pub mod signal;
pub mod syscall;

#[cfg(feature = "start")]
mod args;
#[cfg(feature = "start")]
mod mem;
#[cfg(feature = "start")]
mod start;

#[cfg(feature = "link")]
pub mod link;

#[cfg(feature = "start")]
pub use args::{Arg, Args, Argv, Envp};
pub use process::{Children, exit, getpid, set_child_subreaper, wait_any_nohang, write_all};
pub use signal::{
    SigSet, block_signal, ignore_signal, set_default_disposition, set_signal_mask, wait_for_signal,
};
pub use syscall::{
    ECHILD, EINTR, Errno, check, syscall0, syscall1, syscall2, syscall3, syscall4, syscall5,
    syscall6,
};
