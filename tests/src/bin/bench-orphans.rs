//! `bench-orphans RATE SECONDS`: the orphan maker of the endurance tests.
//! RATE times a second for SECONDS it forks a child that forks a grandchild
//! and `_exit`s at once; this process waits for the child only, so the
//! grandchild, an orphan now, goes to the reaper of the PID namespace (in a
//! pod with `shareProcessNamespace: true`, pause, its PID 1), which has to
//! reap it. Every other grandchild `_exit`s right away, the rest after a
//! tiny pseudo-random delay (below 256 µs), so some die before their parent
//! and some after it. The forks are paced to absolute CLOCK_MONOTONIC
//! deadlines (`clock_nanosleep` with TIMER_ABSTIME), so a slow fork does
//! not lower the rate: the next one catches up. At the end it prints
//! `created <n>` (n: children whose grandchild fork succeeded) and, if any
//! fork failed, `failed <m>`; then it sleeps until killed, so that the
//! container stays Running.

use std::io::Write;
use std::time::Duration;

const NS_PER_SEC: u64 = 1_000_000_000;

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * NS_PER_SEC + ts.tv_nsec as u64
}

fn timespec(ns: u64) -> libc::timespec {
    libc::timespec {
        tv_sec: (ns / NS_PER_SEC) as libc::time_t,
        tv_nsec: (ns % NS_PER_SEC) as libc::c_long,
    }
}

/// Sleeps until CLOCK_MONOTONIC reaches `deadline_ns` (at once if it has).
fn sleep_until(deadline_ns: u64) {
    let deadline = timespec(deadline_ns);
    loop {
        // SAFETY: `deadline` is a valid timespec; with TIMER_ABSTIME the
        // remaining-time pointer is not used and may be null.
        let rc = unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &deadline,
                std::ptr::null_mut(),
            )
        };
        if rc != libc::EINTR {
            return;
        }
    }
}

/// In the grandchild: sleeps `delay_ns` (if any) and exits. Only
/// async-signal-safe calls: this runs in a child of a fork.
fn grandchild(delay_ns: u64) -> ! {
    if delay_ns > 0 {
        let delay = timespec(delay_ns);
        // SAFETY: `delay` is a valid timespec; a null remaining-time
        // pointer is allowed. clock_nanosleep is async-signal-safe.
        unsafe { libc::clock_nanosleep(libc::CLOCK_MONOTONIC, 0, &delay, std::ptr::null_mut()) };
    }
    // SAFETY: _exit ends this process at once, running nothing of Rust's
    // or libc's exit handlers (the parent's state is not ours to flush).
    unsafe { libc::_exit(0) }
}

/// In the child: forks the grandchild and exits at once, 0 when the fork
/// worked, 1 when it did not.
fn child(delay_ns: u64) -> ! {
    // SAFETY: fork in a child of a fork of a single-threaded process; the
    // new process only calls async-signal-safe functions (grandchild).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        grandchild(delay_ns);
    }
    // SAFETY: as in `grandchild`: exit without running any handler.
    unsafe { libc::_exit(if pid > 0 { 0 } else { 1 }) }
}

/// Makes one orphan: true when the child forked its grandchild.
fn make_orphan(delay_ns: u64) -> bool {
    // SAFETY: this process is single-threaded (main only), so the child is
    // a consistent copy; it only calls async-signal-safe functions (child).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        child(delay_ns);
    }
    if pid < 0 {
        return false;
    }
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid, writable int; `pid` is our child.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            break;
        }
        if rc < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return false;
        }
    }
    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap_or(0))
        .collect();
    let (rate, seconds) = match args[..] {
        [rate, seconds] if rate > 0 => (rate, seconds),
        _ => {
            eprintln!("usage: bench-orphans RATE SECONDS");
            std::process::exit(2);
        }
    };
    let total = rate * seconds;
    let start = monotonic_ns();
    // xorshift64: a different delay pattern each run, no dependency.
    let mut random = start | 1;
    let (mut created, mut failed) = (0u64, 0u64);
    for i in 0..total {
        sleep_until(start + i * NS_PER_SEC / rate);
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let delay_ns = if i % 2 == 0 {
            0
        } else {
            (random & 0xff) * 1000
        };
        if make_orphan(delay_ns) {
            created += 1;
        } else {
            failed += 1;
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "created {created}");
    if failed > 0 {
        let _ = writeln!(out, "failed {failed}");
    }
    let _ = out.flush();
    drop(out);
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
