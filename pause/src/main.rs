//! pause: PID 1 of a pod sandbox.
//!
//! It holds the pod's namespaces open by merely existing, reaps every child
//! and every orphan reparented to it, exits 0 on SIGTERM or SIGINT, and
//! otherwise sleeps in one blocking system call: zero CPU, zero wake-ups.
//!
//! Unlike the upstream pause.c it installs no signal handlers at all: the
//! three signals it acts on are blocked and taken synchronously with
//! rt_sigtimedwait (catatonit's model), so nothing runs in signal context
//! and nothing there has to be async-signal-safe. Blocked signals are queued
//! even for a namespace's init with SIG_DFL, so this works as PID 1 too.
//! Every other catchable signal is ignored: a PID 1 must not die of SIGHUP.
//! When it is not PID 1 it becomes a child subreaper, so orphans of its
//! descendants still come to it to be reaped.

#![no_std]
#![no_main]

mod sys;

use sys::SigSet;

const SIGINT: u32 = 2;
const SIGKILL: u32 = 9;
const SIGTERM: u32 = 15;
const SIGCHLD: u32 = 17;
const SIGSTOP: u32 = 19;
/// The highest signal number on Linux (SIGRTMAX).
const SIGNAL_MAX: u32 = 64;

const VERSION: &str = concat!("pause ", env!("CARGO_PKG_VERSION"), "\n");
const STDOUT: usize = 1;
const STDERR: usize = 2;

/// The signals pause acts on; they are blocked and waited for.
const ACTED_ON: SigSet = SigSet::of(&[SIGINT, SIGTERM, SIGCHLD]);
/// The signals left at their default disposition: those acted on (an
/// ignored SIGCHLD would make the kernel reap children itself, and wait4
/// would see none), and KILL and STOP, which cannot be ignored.
const NOT_IGNORED: SigSet = SigSet::of(&[SIGINT, SIGTERM, SIGCHLD, SIGKILL, SIGSTOP]);

/// Upstream's `psignal(signo, "Shutting down, got signal")` line, written
/// whole in one write(2).
macro_rules! shutting_down {
    ($name:literal) => {
        concat!("Shutting down, got signal: ", $name, "\n").as_bytes()
    };
}

fn is_version_flag(arg: sys::Arg) -> bool {
    arg.is(b"-v") || arg.is(b"-V") || arg.is(b"--version")
}

/// Called by `sys::start` with the command-line arguments after argv[0].
#[inline(always)]
fn main(mut args: sys::Args) -> ! {
    if args.any(is_version_flag) {
        sys::write_all(STDOUT, VERSION.as_bytes());
        sys::exit(0);
    }

    // Block first: a signal that comes during start-up stays pending and is
    // taken by the first wait instead of killing us.
    if sys::set_signal_mask(ACTED_ON) < 0 {
        fatal(b"pause: cannot block signals\n");
    }
    // Half-open: a RangeInclusive carries an exhaustion flag, more code.
    for signal in 1..SIGNAL_MAX + 1 {
        if !NOT_IGNORED.contains(signal) {
            // A refusal (none is expected) only leaves that signal at its
            // default; nothing else depends on it.
            sys::ignore_signal(signal);
        }
    }

    if sys::getpid() != 1 {
        sys::write_all(STDERR, b"Warning: pause should be the first process\n");
        sys::set_child_subreaper();
    }

    loop {
        match sys::wait_for_signal(ACTED_ON) {
            s if s == SIGCHLD as isize => reap_all(),
            s if s == SIGTERM as isize => shut_down(shutting_down!("Terminated")),
            s if s == SIGINT as isize => shut_down(shutting_down!("Interrupt")),
            _ => {} // EINTR (stopped and continued): wait again
        }
    }
}

/// Reap until no exited child is left. SIGCHLD is not queued per child, so
/// one signal may stand for many exits.
fn reap_all() {
    while sys::reap_one() > 0 {}
}

fn shut_down(message: &[u8]) -> ! {
    sys::write_all(STDERR, message);
    sys::exit(0)
}

fn fatal(message: &[u8]) -> ! {
    sys::write_all(STDERR, message);
    sys::exit(1)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    fatal(b"pause: internal error\n")
}

/// Referenced by the precompiled `core` of unwinding targets; never called,
/// because every panic aborts (panic = "abort" in both profiles). Only
/// unoptimised builds keep the reference; LTO removes it in release.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}
