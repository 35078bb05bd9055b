//! `supervisor run` as the tests drive it: a pod from manifest text, with
//! its own state, log and CNI cache dirs, the test run's image store
//! (`crate::images`), its output collected, its status read from
//! status.json, and its processes found through its cgroups.

use crate::{bin, wait_until};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use supervisor::paths::{Layout, PodId};

/// The cgroup parent all test pods use (never `process_api`).
pub const CGROUP_PARENT: &str = "podvisor-test";

/// A pod name unique to this test process and call: `<prefix>-<pid>-<n>`.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The example CNI configuration of the repository (bridge `podvisor0`,
/// 10.222.0.0/24).
pub fn example_cni_dir() -> PathBuf {
    crate::workspace_root().join("examples/cni")
}

/// Options of one `supervisor run`.
#[derive(Default)]
pub struct RunOptions {
    /// `--cni-conf-dir`; None: an empty dir (a loopback-only sandbox).
    pub cni_conf_dir: Option<PathBuf>,
    /// More flags.
    pub args: Vec<String>,
    /// Environment for the supervisor (after `SUPERVISOR_IMAGE_DIR`, the
    /// test run's image store, so it may name another).
    pub env: Vec<(String, String)>,
}

/// A running `supervisor run`.
pub struct RunningPod {
    pub name: String,
    /// `metadata.namespace` ("default" unless [`RunningPod::start_in_namespace`]).
    pub namespace: String,
    child: Option<Child>,
    /// The root of the pod's state, log, CNI cache dirs and manifest.
    pub root: PathBuf,
    _dir: Option<tempfile::TempDir>,
    output: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl RunningPod {
    /// Start `supervisor run` on `manifest` (YAML text) for the pod `name`.
    pub fn start(name: &str, manifest: &str, options: RunOptions) -> RunningPod {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut pod = RunningPod::start_in(name, manifest, options, dir.path());
        pod._dir = Some(dir);
        pod
    }

    /// Start with the state, log and CNI cache dirs under `root` (which
    /// the caller keeps), e.g. to run the same pod again after a crash.
    pub fn start_in(name: &str, manifest: &str, options: RunOptions, root: &Path) -> RunningPod {
        RunningPod::start_in_namespace("default", name, manifest, options, root)
    }

    /// Start pod `namespace/name` (the manifest says the namespace) with
    /// its dirs under `root`.
    pub fn start_in_namespace(
        namespace: &str,
        name: &str,
        manifest: &str,
        options: RunOptions,
        root: &Path,
    ) -> RunningPod {
        let path = root.join(format!("{namespace}.pod.yaml"));
        std::fs::write(&path, manifest).unwrap();
        let empty = root.join("no-cni");
        std::fs::create_dir_all(&empty).unwrap();
        let mut command = Command::new(bin("supervisor"));
        command
            .arg("run")
            .arg("--state-dir")
            .arg(root.join("state"))
            .arg("--log-dir")
            .arg(root.join("logs"))
            .arg("--cni-cache-dir")
            .arg(root.join("cni-cache"))
            .arg("--cni-conf-dir")
            .arg(options.cni_conf_dir.unwrap_or(empty))
            .arg("--cgroup-parent")
            .arg(CGROUP_PARENT)
            .args(&options.args)
            .arg(&path)
            .env(image::store::ROOT_ENV, crate::images::store_dir())
            .envs(options.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn supervisor run");
        let output = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = Arc::clone(&output);
            readers.push(std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 8192];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }));
        }
        RunningPod {
            name: name.to_string(),
            namespace: namespace.to_string(),
            child: Some(child),
            root: root.to_path_buf(),
            _dir: None,
            output,
            readers,
        }
    }

    /// The supervisor's pid.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Everything the supervisor printed so far (stdout and stderr).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// The pod's namespace and name, as the supervisor keys its files.
    pub fn id(&self) -> PodId {
        PodId::new(&self.namespace, &self.name).expect("valid names")
    }

    /// The supervisor's layout of this pod's roots.
    pub fn layout(&self) -> Layout {
        Layout::new(self.root.join("state"), self.log_root())
    }

    /// The state dir of the pod (`<state root>/<namespace>_<name>`).
    pub fn state_dir(&self) -> PathBuf {
        self.layout().pod_state_dir(&self.id())
    }

    /// The log dir root.
    pub fn log_root(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// The pod's log dir (`<log root>/<namespace>_<name>_<uid>`).
    pub fn log_dir(&self) -> PathBuf {
        self.layout().pod_log_dir(&self.id())
    }

    /// status.json, if written.
    pub fn status(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.state_dir().join("status.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Wait until `check` holds for the status (panics with the output
    /// after `timeout`).
    pub fn wait_status(
        &self,
        timeout: Duration,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        wait_until(timeout, || self.status().filter(|s| check(s))).unwrap_or_else(|| {
            panic!(
                "timed out waiting for {what}\nstatus: {:#}\noutput:\n{}",
                self.status().unwrap_or(Value::Null),
                self.output()
            )
        })
    }

    /// Wait until every container of the pod runs.
    pub fn wait_running(&self, timeout: Duration) -> Value {
        self.wait_status(timeout, "all containers running", |s| {
            let statuses = &s["status"]["containerStatuses"];
            statuses.as_array().is_some_and(|a| {
                !a.is_empty() && a.iter().all(|c| c["state"]["running"].is_object())
            })
        })
    }

    /// The status of container `name`.
    pub fn container<'a>(status: &'a Value, name: &str) -> &'a Value {
        status["status"]["containerStatuses"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name))
            .unwrap_or_else(|| panic!("no container {name} in {status:#}"))
    }

    /// The pod's cgroup directory in the v1 hierarchy of `controller` (e.g.
    /// "memory"), or in the unified one on a pure cgroup v2 host.
    pub fn cgroup_dir(&self, controller: &str) -> PathBuf {
        let root = Path::new("/sys/fs/cgroup");
        let hierarchy = if crate::pure_cgroup_v2() {
            root.to_path_buf()
        } else {
            root.join(controller)
        };
        hierarchy.join(CGROUP_PARENT).join(self.id().key())
    }

    /// The trimmed content of a limit file of container `name`: `v1_file`
    /// in the `controller` hierarchy, or `v2_file` on a pure cgroup v2 host.
    pub fn limit_file(&self, name: &str, controller: &str, v1_file: &str, v2_file: &str) -> String {
        let file = if crate::pure_cgroup_v2() {
            v2_file
        } else {
            v1_file
        };
        let path = self
            .cgroup_dir(controller)
            .join("containers")
            .join(name)
            .join(file);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
            .trim()
            .to_owned()
    }

    /// The host pid of container `name`'s main process: the process of its
    /// cgroup that is PID 1 of its own PID namespace (or, with a shared
    /// one, the oldest), a parked next instance aside.
    pub fn container_pid(&self, name: &str) -> Option<i32> {
        // Each instance has a cgroup of its own beneath the container's.
        let container = self.cgroup_dir("pids").join("containers").join(name);
        let pids: Vec<i32> = std::fs::read_dir(container)
            .ok()?
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| std::fs::read_to_string(e.path().join("cgroup.procs")).ok())
            .flat_map(|text| {
                text.lines()
                    .filter_map(|l| l.parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
        // A parked next instance (a fork of the supervisor waiting in its
        // cgroup) is not the container.
        let supervisor = std::fs::read_link(format!("/proc/{}/exe", self.pid())).ok();
        let pids: Vec<i32> = pids
            .into_iter()
            .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok() != supervisor)
            .collect();
        pids.iter()
            .copied()
            .find(|pid| {
                crate::proc_status_field(*pid, "NSpid")
                    .is_some_and(|ns| ns.split_whitespace().last() == Some("1"))
            })
            .or_else(|| pids.iter().copied().min())
    }

    /// The pid of pause: the child of the supervisor that holds the pod's
    /// network namespace file.
    pub fn pause_pid(&self) -> Option<i32> {
        crate::children_of(self.pid())
            .into_iter()
            .map(|p| p.pid)
            .find(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.split('\0').next().is_some_and(|a| a.ends_with("pause")))
            })
    }

    /// Send `signal` to the supervisor.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        crate::signal(self.pid(), signal);
    }

    /// Stop with `signal` and wait (at most `timeout`) for the exit.
    pub fn stop(
        mut self,
        signal: nix::sys::signal::Signal,
        timeout: Duration,
    ) -> (ExitStatus, Duration, String) {
        let started = Instant::now();
        crate::signal(self.pid(), signal);
        let status = self.wait_exit(timeout);
        (status, started.elapsed(), self.output())
    }

    /// Wait for the supervisor to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let status = wait_until(timeout, || child.try_wait().ok().flatten());
        match status {
            Some(status) => {
                self.child = None;
                // Everything it printed, to the end of its output.
                for reader in self.readers.drain(..) {
                    let _ = reader.join();
                }
                status
            }
            None => panic!(
                "supervisor did not exit within {timeout:?}; output:\n{}",
                self.output()
            ),
        }
    }

    /// SIGTERM, an exit within 30 s with status 0, and nothing of the pod
    /// left on the host.
    pub fn stop_clean(self) {
        self.stop_clean_within(Duration::from_secs(30));
    }

    /// SIGTERM, an exit within `timeout` with status 0, and nothing of the
    /// pod left on the host.
    pub fn stop_clean_within(self, timeout: Duration) {
        let (name, namespace, state_dir) =
            (self.name.clone(), self.namespace.clone(), self.state_dir());
        let (status, _, output) = self.stop(nix::sys::signal::Signal::SIGTERM, timeout);
        assert_eq!(status.code(), Some(0), "{output}");
        let left = leftovers_of(&namespace, &name, &state_dir);
        assert!(left.is_empty(), "left behind: {left:?}\n{output}");
    }

    /// A container's current log file content (the CRI lines).
    pub fn log(&self, container: &str, restart_count: u32) -> String {
        std::fs::read_to_string(self.layout().container_log_file(
            &self.id(),
            container,
            restart_count,
        ))
        .unwrap_or_default()
    }
}

impl Drop for RunningPod {
    fn drop(&mut self) {
        // A failed test must not leave the pod running: SIGINT twice (the
        // second kills at once), then SIGKILL.
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            // Two signals sent at once would merge into one pending.
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            std::thread::sleep(Duration::from_millis(200));
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            if wait_until(Duration::from_secs(15), || child.try_wait().ok().flatten()).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Whether nothing of the pod `name` of namespace "default" is left on the
/// host (see [`leftovers_of`]).
pub fn leftovers(name: &str, state_dir: &Path) -> Vec<String> {
    leftovers_of("default", name, state_dir)
}

/// Whether nothing of the pod `namespace/name` is left on the host: no
/// cgroup in any v1 hierarchy or the unified one, no netns file, no mount
/// below its state dir.
pub fn leftovers_of(namespace: &str, name: &str, state_dir: &Path) -> Vec<String> {
    let mut left = Vec::new();
    let key = PodId::new(namespace, name).expect("valid names").key();
    for hierarchy in ["memory", "cpu", "pids", "freezer", "devices", "unified", ""] {
        let dir = Path::new("/sys/fs/cgroup")
            .join(hierarchy)
            .join(CGROUP_PARENT)
            .join(&key);
        if dir.exists() {
            left.push(format!("cgroup {}", dir.display()));
        }
    }
    let netns = Path::new("/run/netns").join(&key);
    if netns.exists() {
        left.push(format!("netns {}", netns.display()));
    }
    if let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") {
        for line in mounts.lines() {
            if let Some(point) = line.split(' ').nth(4)
                && Path::new(point).starts_with(state_dir)
            {
                left.push(format!("mount {point}"));
            }
        }
    }
    left
}
