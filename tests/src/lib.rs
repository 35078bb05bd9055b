//! Helpers shared by the integration tests: where the built binaries are,
//! the root requirement, and polling with a deadline. The test pods
//! (`pod`) and the images they run (`images`) have modules of their own.
//!
//! The tests run against the release binaries that ship (`cargo build
//! --release` first; the README's test command does it). A test that needs
//! something this machine lacks (root, a cgroup controller, Docker) calls
//! [`require!`]: it skips with a reason on a developer's machine and FAILS
//! when `CI=true`, so CI can never go green on skips.

pub mod image_fixtures;
pub mod images;
pub mod pod;
pub mod rootfs_checks;

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The target dir of the running test binary (`<target>/<profile>/deps/`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .nth(3)
        .expect("test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// The directory of the release binaries of this workspace.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("POD_BIN_DIR") {
        return PathBuf::from(dir);
    }
    target_dir().join("release")
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

/// A finished command's status, stdout and stderr, for an assertion's
/// message.
pub fn describe_output(output: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether /sys/fs/cgroup is the unified hierarchy alone (a pure cgroup v2
/// host, such as the test VM of `tests/vm/`), not v1 or hybrid.
pub fn pure_cgroup_v2() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Whether an executable named `name` is on PATH.
pub fn have_command(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
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

/// One process as /proc shows it.
#[derive(Debug, Clone)]
pub struct ProcStat {
    pub pid: i32,
    pub state: char,
    pub ppid: i32,
}

/// Read /proc/PID/stat; None when the process is gone.
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: split after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(ProcStat { pid, state, ppid })
}

/// Every process on the host whose parent is `ppid`.
pub fn children_of(ppid: i32) -> Vec<ProcStat> {
    all_processes()
        .into_iter()
        .filter(|p| p.ppid == ppid)
        .collect()
}

/// Every process on the host.
pub fn all_processes() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(proc_stat)
        .collect()
}

/// A field of /proc/PID/status, such as `voluntary_ctxt_switches`.
pub fn proc_status_field(pid: i32, field: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .map(|value| value.trim().to_string())
}

/// The inode of a namespace of a process, e.g. `ns_inode(pid, "net")`.
pub fn ns_inode(pid: i32, kind: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/{kind}"))
        .ok()
        .map(|m| m.ino())
}

/// Send `signal` to `pid` (a process this test started).
pub fn signal(pid: i32, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)
        .unwrap_or_else(|e| panic!("kill({pid}, {signal}): {e}"));
}

/// A signal set of /proc/PID/status (`SigBlk`, `SigIgn`, `SigCgt`, ...).
pub fn signal_set(pid: i32, field: &str) -> Option<u64> {
    u64::from_str_radix(&proc_status_field(pid, field)?, 16).ok()
}

/// Wait until `pid` ignores `signal` (SigIgn). Panics after 5 s.
///
/// A program that waits for its signals with sigtimedwait shows them
/// unblocked while it waits, so the ignored set is the reliable sign that
/// its signal set-up is done.
pub fn wait_ignoring(pid: i32, signal: nix::sys::signal::Signal) {
    let bit = 1u64 << (signal as i32 - 1);
    wait_until(Duration::from_secs(5), || {
        signal_set(pid, "SigIgn").filter(|set| set & bit != 0)
    })
    .unwrap_or_else(|| panic!("process {pid} never ignored {signal}"));
}

/// The workspace root (where the Dockerfile is).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// Whether a Docker engine answers.
pub fn docker_available() -> bool {
    std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Run `docker ARGS`, panic with its stderr unless it succeeds, return stdout trimmed.
pub fn docker<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = std::process::Command::new("docker")
        .args(&args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {:?} failed: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A build context in a temporary directory: the workspace's Dockerfile plus
/// the release binaries at the paths the Dockerfile copies them from, so
/// images build from whatever target dir the tests use.
pub fn docker_context(extra: &[(&str, &std::path::Path)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        workspace_root().join("Dockerfile"),
        dir.path().join("Dockerfile"),
    )
    .expect("copy Dockerfile");
    let release = dir.path().join("target/release");
    std::fs::create_dir_all(&release).unwrap();
    for name in ["pause", "supervisor", "supervisor-init"] {
        let from = bin_dir().join(name);
        if from.is_file() {
            std::fs::copy(&from, release.join(name)).expect("copy binary");
        }
    }
    for (to, from) in extra {
        let to = dir.path().join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
    dir
}

/// Removes Docker containers and images by name when dropped.
#[derive(Default)]
pub struct DockerCleanup {
    pub containers: Vec<String>,
    pub images: Vec<String>,
}

impl Drop for DockerCleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = std::process::Command::new("docker")
                .args(["rm", "-f", c])
                .output();
        }
        for i in &self.images {
            let _ = std::process::Command::new("docker")
                .args(["rmi", "-f", i])
                .output();
        }
    }
}

/// Kills and removes a test cgroup when dropped, even on panic.
pub struct CgroupGuard(pub container::Cgroup);

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        let _ = self.0.kill_all(Duration::from_secs(5));
        let _ = self.0.remove(Duration::from_secs(5));
    }
}

/// Kills a spawned process (by pidfd) and reaps it when dropped.
pub struct Reap(pub container::PidFd);

impl Reap {
    pub fn new(child: &container::Child) -> Reap {
        Reap(child.pidfd.try_clone().expect("dup pidfd"))
    }
}

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.send_signal(nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

/// `GET /` from `ip:port` (loopback, or a pod's own address on our
/// bridge), HTTP/1.0; the whole response, or None when nothing answers.
pub fn http_get(ip: &str, port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(
        &format!("{ip}:{port}").parse().ok()?,
        Duration::from_secs(1),
    )
    .ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET / HTTP/1.0\r\nHost: {ip}\r\n\r\n").ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    Some(body)
}
