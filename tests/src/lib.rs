//! Helpers shared by the integration tests: where the built binaries are,
//! the root requirement, and polling with a deadline.
//!
//! The tests run against the release binaries that ship (`cargo build
//! --release` first; the README's test command does it). A test that needs
//! something this machine lacks (root, a cgroup controller, Docker) calls
//! [`require!`]: it skips with a reason on a developer's machine and FAILS
//! when `CI=true`, so CI can never go green on skips.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The directory of the release binaries of this workspace.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("POD_BIN_DIR") {
        return PathBuf::from(dir);
    }
    // <target>/debug/deps/<test-binary> -> <target>/release
    let exe = std::env::current_exe().expect("current_exe");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("test binary lives in <target>/<profile>/deps");
    target.join("release")
}

/// Path of a release binary of this workspace; panics with the command to
/// build it when it is missing.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --release --workspace` first",
        path.display()
    );
    path
}

/// Whether the tests run in CI (`CI=true`), where a missing prerequisite is
/// a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether a prerequisite holds; when it does not, panic in CI and return
/// false elsewhere (the caller returns, printing why it skipped).
pub fn prerequisite(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    if in_ci() {
        panic!("prerequisite missing under CI=true: {what}");
    }
    eprintln!("SKIPPED: prerequisite missing: {what}");
    false
}

/// Return from the test (skip) unless `$cond` holds; fail under CI=true.
#[macro_export]
macro_rules! require {
    ($cond:expr, $what:expr) => {
        if !$crate::prerequisite($cond, $what) {
            return;
        }
    };
}

/// Return from the test unless running as root; fail under CI=true.
#[macro_export]
macro_rules! require_root {
    () => {
        $crate::require!($crate::is_root(), "root (uid 0)")
    };
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether an executable named `name` is on PATH.
pub fn have_command(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join(name).is_file())
    })
}

/// Poll `check` every few milliseconds until it returns Some or `timeout`
/// passes.
pub fn wait_until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
