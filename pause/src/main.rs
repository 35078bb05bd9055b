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
//!
//! It has no unsafe code of its own: `_start`, the arguments and every
//! system call are nolibc-rt's, shared with supervisor-init.

#![no_std]
#![no_main]

use nolibc_rt::{self as rt, Arg, Args, Children, Envp, SigSet};

const SIGINT: i32 = 2;
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;
const SIGCHLD: i32 = 17;
const SIGSTOP: i32 = 19;
/// The highest signal number on Linux (SIGRTMAX).
const SIGNAL_MAX: i32 = 64;

const VERSION: &str = concat!("pause ", env!("CARGO_PKG_VERSION"), "\n");
const STDOUT: i32 = 1;
const STDERR: i32 = 2;

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

fn is_version_flag(arg: Arg) -> bool {
    arg.is(b"-v") || arg.is(b"-V") || arg.is(b"--version")
}

rt::main!(main);

/// Called by nolibc-rt's `_start` with the command-line arguments after
/// argv[0] (the environment is not needed).
#[inline(always)]
fn main(mut args: Args, _: Envp) -> ! {
    if args.any(is_version_flag) {
        rt::write_all(STDOUT, VERSION.as_bytes());
        rt::exit(0);
    }

    // Block first: a signal that comes during start-up stays pending and is
    // taken by the first wait instead of killing us.
    if rt::set_signal_mask(ACTED_ON).is_err() {
        fatal(b"pause: cannot block signals\n");
    }
    // Half-open: a RangeInclusive carries an exhaustion flag, more code.
    for signal in 1..SIGNAL_MAX + 1 {
        if !NOT_IGNORED.contains(signal) {
            // A refusal (none is expected) only leaves that signal at its
            // default; nothing else depends on it.
            let _ = rt::ignore_signal(signal);
        }
    }

    if rt::getpid() != 1 {
        rt::write_all(STDERR, b"Warning: pause should be the first process\n");
        let _ = rt::set_child_subreaper();
    }

    loop {
        match rt::wait_for_signal(ACTED_ON) {
            Ok(SIGCHLD) => reap_all(),
            Ok(SIGTERM) => shut_down(shutting_down!("Terminated")),
            Ok(SIGINT) => shut_down(shutting_down!("Interrupt")),
            _ => {} // EINTR (stopped and continued): wait again
        }
    }
}

/// Reap until no exited child is left. SIGCHLD is not queued per child, so
/// one signal may stand for many exits. Every child (`__WALL`): an orphan
/// cloned with another exit signal is reaped too.
fn reap_all() {
    while let Ok(Some(_)) = rt::wait_any_nohang(Children::All) {}
}

fn shut_down(message: &[u8]) -> ! {
    rt::write_all(STDERR, message);
    rt::exit(0)
}

fn fatal(message: &[u8]) -> ! {
    rt::write_all(STDERR, message);
    rt::exit(1)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    fatal(b"pause: internal error\n")
}
