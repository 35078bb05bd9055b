//! `bench-stamp FILE [EXIT_CODE [LIFETIME_MS [RUNS]]]`: the process the
//! restart benchmarks and endurance tests supervise. It appends `S <ns>` to
//! FILE as the first thing it does, lives LIFETIME_MS (default 0), appends
//! `E <ns>` and exits with EXIT_CODE (default 1); with RUNS, the run that
//! finds RUNS `S` lines in FILE (its own included) exits 0 instead, which
//! ends a crash loop under `restartPolicy: OnFailure` after exactly RUNS
//! starts. The environment (BENCH_STAMP_FILE, BENCH_EXIT_CODE,
//! BENCH_LIFETIME_MS, BENCH_RUNS) overrides the command line, so that
//! runit's and s6's `run` can be a symlink to this program, with no shell
//! in between (s6-supervise passes the service's name as an argument). The times are
//! CLOCK_MONOTONIC, which every namespace of a pod shares with the host, so
//! the gap between one instance's `E` and the next one's `S` is the
//! supervisor's restart latency, whoever the supervisor is.

use std::io::Write;
use std::time::Duration;
use supervisor::trace::monotonic_ns;

fn stamp(file: &mut std::fs::File, mark: char, ns: u128) {
    // One write of one line on an O_APPEND file: lines never interleave.
    let line = format!("{mark} {ns}\n");
    if let Err(error) = file.write_all(line.as_bytes()) {
        eprintln!("bench-stamp: write: {error}");
        std::process::exit(2);
    }
}

fn main() {
    let started = monotonic_ns();
    let mut args = std::env::args().skip(1);
    let mut arg = |env: &str| std::env::var(env).ok().or(args.next());
    let Some(path) = arg("BENCH_STAMP_FILE") else {
        eprintln!("usage: bench-stamp FILE [EXIT_CODE [LIFETIME_MS [RUNS]]]");
        std::process::exit(2);
    };
    let code: i32 = arg("BENCH_EXIT_CODE")
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let lifetime: u64 = arg("BENCH_LIFETIME_MS")
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let runs: Option<usize> = arg("BENCH_RUNS").and_then(|a| a.parse().ok());
    let mut file = match std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
    {
        Ok(file) => file,
        Err(error) => {
            eprintln!("bench-stamp: {path}: {error}");
            std::process::exit(2);
        }
    };
    stamp(&mut file, 'S', started);
    if lifetime > 0 {
        std::thread::sleep(Duration::from_millis(lifetime));
    }
    stamp(&mut file, 'E', monotonic_ns());
    let last = runs.is_some_and(|runs| {
        std::fs::read_to_string(&path)
            .is_ok_and(|text| text.lines().filter(|l| l.starts_with('S')).count() >= runs)
    });
    std::process::exit(if last { 0 } else { code });
}
