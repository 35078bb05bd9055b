//! Names and ownership, and stale state (issue 14): pods of one name in two
//! namespaces are independent, one supervisor per pod (a second run is
//! refused, naming the first), a pod stopped on SIGTERM shows as Stopped,
//! and a pod whose supervisor was SIGKILLed shows as SupervisorGone once
//! `supervisor status` has cleaned up what it left.
//!
//! Traffic goes only to the pods' own addresses on the example bridge.

use it::images::BUSYBOX as IMAGE;
use it::pod::{CGROUP_PARENT, RunOptions, RunningPod, example_cni_dir, leftovers_of, unique_name};
use it::{bin, wait_until};
use nix::sys::signal::Signal;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const BUSYBOX: &str = "/bin/busybox";
const HOST_LOCAL_STORE: &str = "/var/lib/cni/networks/podvisor";

fn prerequisites(cni: bool) -> bool {
    it::prerequisite(it::is_root(), "root (uid 0)")
        && it::prerequisite(Path::new(BUSYBOX).is_file(), "busybox-static")
        && (!cni
            || it::prerequisite(
                Path::new("/usr/lib/cni/bridge").is_file()
                    || Path::new("/opt/cni/bin/bridge").is_file(),
                "CNI plugins (containernetworking-plugins)",
            ))
}

fn options(cni: bool) -> RunOptions {
    RunOptions {
        cni_conf_dir: cni.then(example_cni_dir),
        ..RunOptions::default()
    }
}

/// Pod `namespace/name`: container `app` writes its namespace into the
/// emptyDir `data` and says hello, then sleeps.
fn manifest(namespace: &str, name: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - name: data
    emptyDir: {{}}
  containers:
  - name: app
    image: {IMAGE}
    command: [{BUSYBOX}, sh, -c, "echo {namespace} > /data/marker; echo hello-from-{namespace}; exec {BUSYBOX} sleep 3600"]
    volumeMounts:
    - {{name: data, mountPath: /data}}
"#
    )
}

/// `supervisor status ARGS` on the state root under `root`: (exit code,
/// stdout, stderr).
fn status_cmd(root: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin("supervisor"))
        .arg("status")
        .arg("--state-dir")
        .arg(root.join("state"))
        .args(args)
        .output()
        .expect("run supervisor status");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn pod_ip(status: &Value) -> String {
    status["status"]["podIP"]
        .as_str()
        .unwrap_or_else(|| panic!("no podIP in {status:#}"))
        .to_string()
}

/// Every file named `name` below `dir`.
fn find_files(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(find_files(&path, name));
        } else if entry.file_name() == name {
            found.push(path);
        }
    }
    found
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn two_web_pods_in_two_namespaces_are_independent() {
    if !prerequisites(true) {
        return;
    }
    let name = unique_name("web");
    // One state root, log root and CNI cache for both, as on one host.
    let dir = tempfile::tempdir().unwrap();
    let a = RunningPod::start_in_namespace(
        "a",
        &name,
        &manifest("a", &name),
        options(true),
        dir.path(),
    );
    let b = RunningPod::start_in_namespace(
        "b",
        &name,
        &manifest("b", &name),
        options(true),
        dir.path(),
    );
    let status_a = a.wait_running(Duration::from_secs(30));
    let status_b = b.wait_running(Duration::from_secs(30));
    assert_eq!(status_a["metadata"]["namespace"], "a");
    assert_eq!(status_b["metadata"]["namespace"], "b");
    assert_ne!(status_a["metadata"]["uid"], status_b["metadata"]["uid"]);
    // Own state dirs (0750, as kubelet's pods dir), logs, cgroups, netns, IPs.
    assert_ne!(a.state_dir(), b.state_dir());
    for pod in [&a, &b] {
        assert_eq!(
            mode(&pod.state_dir()),
            0o750,
            "{}",
            pod.state_dir().display()
        );
        // The volumes (secrets among them) are root's only.
        assert_eq!(mode(&pod.state_dir().join("volumes")), 0o700);
        assert!(
            pod.cgroup_dir("pids").is_dir(),
            "{}",
            pod.cgroup_dir("pids").display()
        );
        let netns = Path::new("/run/netns").join(pod.id().key());
        assert!(netns.exists(), "{}", netns.display());
    }
    assert_eq!(mode(&dir.path().join("state")), 0o750, "the state root");
    assert_ne!(a.cgroup_dir("pids"), b.cgroup_dir("pids"));
    let (ip_a, ip_b) = (pod_ip(&status_a), pod_ip(&status_b));
    assert_ne!(ip_a, ip_b);
    let logged = |pod: &RunningPod, ns: &str| {
        wait_until(Duration::from_secs(10), || {
            pod.log("app", 0)
                .contains(&format!("hello-from-{ns}"))
                .then_some(())
        })
        .unwrap_or_else(|| panic!("no log of {ns}/{name}: {:?}", pod.log("app", 0)));
    };
    logged(&a, "a");
    logged(&b, "b");
    assert!(!a.log("app", 0).contains("hello-from-b"));
    assert!(!b.log("app", 0).contains("hello-from-a"));
    assert!(a.log_dir().ends_with(format!("a_{name}_{}", a.id().uid())));
    // The CLI: a NAMESPACE column listing both; -n picks one pod.
    let (code, table, stderr) = status_cmd(dir.path(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header[..2], ["NAMESPACE", "NAME"], "{table}");
    for ns in ["a", "b"] {
        assert!(
            table
                .lines()
                .any(
                    |l| l.split_whitespace().collect::<Vec<_>>()[..2] == [ns, name.as_str()]
                        && l.contains("Running")
                ),
            "{table}"
        );
    }
    let (code, json, stderr) = status_cmd(dir.path(), &["-n", "b", &name, "-o", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["metadata"]["namespace"], "b");
    assert_eq!(json["status"]["podIP"], ip_b.as_str());
    let (code, _, stderr) = status_cmd(dir.path(), &[&name]);
    assert_eq!(code, 1, "no pod of that name in namespace default");
    assert!(
        stderr.contains(&format!("default/{name} not found")),
        "{stderr}"
    );
    let logs = Command::new(bin("supervisor"))
        .args(["logs", "--log-dir"])
        .arg(dir.path().join("logs"))
        .args(["-n", "a", &name, "app"])
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&logs.stdout);
    assert!(
        logs.contains("hello-from-a") && !logs.contains("hello-from-b"),
        "{logs}"
    );
    // Each pod's emptyDir holds its own marker.
    let marker = |pod: &RunningPod| -> Vec<String> {
        find_files(&pod.state_dir().join("volumes"), "marker")
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap().trim().to_owned())
            .collect()
    };
    assert_eq!(marker(&a), ["a"]);
    assert_eq!(marker(&b), ["b"]);
    let b_app = b.container_pid("app").expect("b's app");
    let b_pause = b.pause_pid().expect("b's pause");
    // Stopping a leaves b's volumes and containers as they were.
    let a_state = a.state_dir();
    let (code, _, output) = a.stop(Signal::SIGTERM, Duration::from_secs(20));
    assert_eq!(code.code(), Some(0), "{output}");
    assert_eq!(leftovers_of("a", &name, &a_state), Vec::<String>::new());
    assert!(
        !Path::new(HOST_LOCAL_STORE).join(&ip_a).exists(),
        "a's address is released"
    );
    let status_b = b.status().unwrap();
    let app = RunningPod::container(&status_b, "app");
    assert!(app["state"]["running"].is_object(), "{status_b:#}");
    assert_eq!(app["restartCount"], 0);
    assert_eq!(b.container_pid("app"), Some(b_app));
    assert_eq!(b.pause_pid(), Some(b_pause));
    assert_eq!(marker(&b), ["b"]);
    assert!(
        Path::new(HOST_LOCAL_STORE).join(&ip_b).exists(),
        "b keeps its address"
    );
    assert!(Path::new("/run/netns").join(b.id().key()).exists());
    let b_state = b.state_dir();
    let (code, _, output) = b.stop(Signal::SIGTERM, Duration::from_secs(20));
    assert_eq!(code.code(), Some(0), "{output}");
    assert_eq!(leftovers_of("b", &name, &b_state), Vec::<String>::new());
}

#[test]
fn a_second_run_of_a_running_pod_is_refused_naming_the_first_supervisor() {
    if !prerequisites(false) {
        return;
    }
    let name = unique_name("twice");
    let dir = tempfile::tempdir().unwrap();
    let first = RunningPod::start_in_namespace(
        "default",
        &name,
        &manifest("default", &name),
        options(false),
        dir.path(),
    );
    let before = first.wait_running(Duration::from_secs(30));
    let pause = first.pause_pid().expect("pause");
    let app = first.container_pid("app").expect("app");
    let mut second = RunningPod::start_in_namespace(
        "default",
        &name,
        &manifest("default", &name),
        options(false),
        dir.path(),
    );
    let code = second.wait_exit(Duration::from_secs(10));
    let output = second.output();
    assert_eq!(code.code(), Some(1), "{output}");
    assert!(
        output.contains(&format!(
            "default/{name} is already running under supervisor pid {}",
            first.pid()
        )),
        "{output}"
    );
    assert!(!output.contains("cleaning up"), "{output}");
    // The first pod is as it was.
    std::thread::sleep(Duration::from_millis(500));
    let after = first.status().unwrap();
    assert_eq!(first.pause_pid(), Some(pause));
    assert_eq!(first.container_pid("app"), Some(app));
    let c = RunningPod::container(&after, "app");
    assert!(c["state"]["running"].is_object(), "{after:#}");
    assert_eq!(c["restartCount"], 0);
    assert_eq!(
        c["state"]["running"]["startedAt"],
        RunningPod::container(&before, "app")["state"]["running"]["startedAt"]
    );
    assert_eq!(after["status"]["phase"], "Running");
    let lock = std::fs::read_to_string(first.state_dir().join("supervisor.lock")).unwrap();
    assert_eq!(lock.trim(), format!("{} run", first.pid()));
    let (code, _, output) = first.stop(Signal::SIGTERM, Duration::from_secs(20));
    assert_eq!(code.code(), Some(0), "{output}");
    assert!(!output.contains("cleaning up"), "{output}");
}

#[test]
fn a_pod_stopped_with_sigterm_shows_as_stopped_not_terminating() {
    if !prerequisites(false) {
        return;
    }
    let name = unique_name("stopped");
    let dir = tempfile::tempdir().unwrap();
    let pod = RunningPod::start_in_namespace(
        "default",
        &name,
        &manifest("default", &name),
        options(false),
        dir.path(),
    );
    pod.wait_running(Duration::from_secs(30));
    let pid = pod.pid();
    let state_dir = pod.state_dir();
    let (code, _, output) = pod.stop(Signal::SIGTERM, Duration::from_secs(20));
    assert_eq!(code.code(), Some(0), "{output}");
    let (code, table, stderr) = status_cmd(dir.path(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let line = table
        .lines()
        .find(|l| l.contains(&name))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(line.contains(" Stopped "), "{table}");
    assert!(
        !table.contains("Terminating") && !table.contains("Running"),
        "{table}"
    );
    let (_, json, _) = status_cmd(dir.path(), &[&name, "-o", "json"]);
    let status: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(status["status"]["reason"], "Stopped", "{status:#}");
    assert!(
        status["status"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("SIGTERM") && m.contains(&format!("pid {pid}"))),
        "{status:#}"
    );
    let phase = status["status"]["phase"].as_str().unwrap();
    assert!(["Succeeded", "Failed"].contains(&phase), "{status:#}");
    let app = RunningPod::container(&status, "app");
    assert!(app["state"]["terminated"].is_object(), "{status:#}");
    assert!(
        !state_dir.join("supervisor.json").exists(),
        "a clean teardown leaves no run record"
    );
    assert_eq!(
        leftovers_of("default", &name, &state_dir),
        Vec::<String>::new()
    );
}

#[test]
fn after_a_sigkilled_supervisor_status_says_gone_and_cleans_up() {
    if !prerequisites(true) {
        return;
    }
    let name = unique_name("gone");
    let dir = tempfile::tempdir().unwrap();
    let mut first = RunningPod::start_in_namespace(
        "default",
        &name,
        &manifest("default", &name),
        options(true),
        dir.path(),
    );
    let status = first.wait_running(Duration::from_secs(30));
    let ip = pod_ip(&status);
    let pid = first.pid();
    let state_dir = first.state_dir();
    // A process of the pod that outlives its supervisor: one in the pod's
    // cgroups without a parent-death signal (a daemonised child would be
    // one).
    let mut straggler = Command::new(BUSYBOX)
        .args(["sleep", "600"])
        .spawn()
        .unwrap();
    let key = first.id().key();
    let mut joined = 0;
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let procs = hierarchy
            .path()
            .join(CGROUP_PARENT)
            .join(&key)
            .join("pause/cgroup.procs");
        if procs.exists() {
            std::fs::write(&procs, straggler.id().to_string()).unwrap();
            joined += 1;
        }
    }
    assert!(joined > 0, "the pod has a pause cgroup");
    first.signal(Signal::SIGKILL);
    first.wait_exit(Duration::from_secs(10));
    // What it left: its cgroups, netns, mounts, address, and the straggler.
    let left = leftovers_of("default", &name, &state_dir);
    assert!(left.iter().any(|l| l.starts_with("netns")), "{left:?}");
    assert!(left.iter().any(|l| l.starts_with("cgroup")), "{left:?}");
    assert!(left.iter().any(|l| l.contains(".shm")), "{left:?}");
    assert!(Path::new(HOST_LOCAL_STORE).join(&ip).exists());
    assert!(
        straggler.try_wait().unwrap().is_none(),
        "the straggler lives"
    );
    // The status on disk still says Running; `supervisor status` knows
    // better, and cleans up.
    assert_eq!(first.status().unwrap()["status"]["phase"], "Running");
    let (code, table, stderr) = status_cmd(dir.path(), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!("its supervisor (pid {pid}) is gone")),
        "{stderr}"
    );
    let line = table
        .lines()
        .find(|l| l.contains(&name))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(line.contains(" SupervisorGone "), "{table}");
    assert!(
        !table.contains("Running") && !table.contains("Terminating"),
        "{table}"
    );
    let status = first.status().unwrap();
    assert_eq!(status["status"]["reason"], "SupervisorGone");
    assert!(
        status["status"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("pid {pid}"))),
        "{status:#}"
    );
    let app = RunningPod::container(&status, "app");
    assert_eq!(
        app["state"]["terminated"]["reason"],
        "ContainerStatusUnknown"
    );
    assert_eq!(app["state"]["terminated"]["exitCode"], 137);
    assert_eq!(
        leftovers_of("default", &name, &state_dir),
        Vec::<String>::new()
    );
    assert!(
        !Path::new(HOST_LOCAL_STORE).join(&ip).exists(),
        "the address is released"
    );
    let ended = wait_until(Duration::from_secs(5), || {
        straggler.try_wait().ok().flatten()
    })
    .expect("the straggler was killed");
    assert!(!ended.success());
    assert!(!state_dir.join("supervisor.json").exists());
    // A second look changes nothing.
    let (code, again, _) = status_cmd(dir.path(), &[]);
    assert_eq!(code, 0);
    assert!(again.contains("SupervisorGone"), "{again}");
    // A new run of the pod works.
    drop(first);
    let second = RunningPod::start_in_namespace(
        "default",
        &name,
        &manifest("default", &name),
        options(true),
        dir.path(),
    );
    let status = second.wait_running(Duration::from_secs(30));
    assert!(status["status"]["reason"].is_null(), "{status:#}");
    let (code, _, output) = second.stop(Signal::SIGTERM, Duration::from_secs(20));
    assert_eq!(code.code(), Some(0), "{output}");
    assert_eq!(
        leftovers_of("default", &name, &state_dir),
        Vec::<String>::new()
    );
}
