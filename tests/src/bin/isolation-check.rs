//! `isolation-check setuid0 | forkbomb HOLD_SECS`: the hostile actions of
//! the credential and pids-limit tests, run inside a container (through
//! `it::images::binary_image`), each printing one line with the errno.
//!
//! - `setuid0`: setuid(0), then prints `setuid(0): ok` or
//!   `setuid(0): errno N`.
//! - `forkbomb HOLD_SECS`: forks children that only sleep until fork
//!   fails, prints `fork: errno N after M children`, sleeps HOLD_SECS with
//!   its children alive, then kills them, one by one, and exits 0 (never
//!   `kill(0)`: a process group can reach outside the container's pid
//!   namespace).

use std::time::Duration;

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("setuid0") => {
            // SAFETY: a plain system call with an integer argument.
            let r = unsafe { libc::setuid(0) };
            if r == 0 {
                println!("setuid(0): ok");
            } else {
                println!("setuid(0): errno {}", errno());
            }
        }
        Some("forkbomb") => {
            let hold: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
            let mut children: Vec<i32> = Vec::new();
            let failed = loop {
                // SAFETY: this process is single-threaded; the child only
                // sleeps in a system call and never returns here.
                match unsafe { libc::fork() } {
                    -1 => break errno(),
                    0 => loop {
                        // SAFETY: plain system call, no memory involved.
                        unsafe { libc::pause() };
                    },
                    pid => children.push(pid),
                }
                if children.len() >= 100_000 {
                    break 0;
                }
            };
            println!("fork: errno {failed} after {} children", children.len());
            std::thread::sleep(Duration::from_secs(hold));
            for pid in children {
                // SAFETY: plain system calls on our own children's pids.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
            }
        }
        _ => {
            eprintln!("usage: isolation-check setuid0 | forkbomb HOLD_SECS");
            std::process::exit(2);
        }
    }
}
