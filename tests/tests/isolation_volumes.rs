//! Volumes against a hostile pod (issue 14, "Paths" and "Limits"), as root
//! on the real kernel: the `ln -s /` subPath attack and its creation
//! variant are refused (CreateContainerConfigError, nothing of the host
//! seen or made), a symlink inside the volume still works, configMap and
//! secret mounts are read-only whatever readOnly says, a Memory emptyDir
//! and the writable layer stop at their sizes (ENOSPC), and a disk emptyDir
//! over its sizeLimit gets the pod evicted on the housekeeping timer.

use it::images::BUSYBOX as IMAGE;
use it::pod::{RunOptions, RunningPod, unique_name};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

const BUSYBOX: &str = "/bin/busybox";

fn prerequisites() -> bool {
    if !it::prerequisite(it::is_root(), "root (uid 0)") {
        return false;
    }
    it::prerequisite(
        Path::new(BUSYBOX).is_file(),
        "busybox-static at /bin/busybox",
    )
}

/// A pod whose init container runs `init` in the emptyDir `data` (at
/// /data), then a container `c` mounting `data` with `sub_path` at /m and
/// running `script`.
fn subpath_pod(name: &str, init: &str, sub_path: &str, script: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: init
    image: {IMAGE}
    command: [{BUSYBOX}, sh, -c, "{init}"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  containers:
  - name: c
    image: {IMAGE}
    command: [{BUSYBOX}, sh, -c, "{script}"]
    volumeMounts: [{{name: data, mountPath: /m, subPath: "{sub_path}"}}]
  volumes:
  - name: data
    emptyDir: {{}}
"#
    )
}

fn waiting(status: &Value, container: &str) -> (String, String) {
    let w = &RunningPod::container(status, container)["state"]["waiting"];
    (
        w["reason"].as_str().unwrap_or_default().to_string(),
        w["message"].as_str().unwrap_or_default().to_string(),
    )
}

fn wait_config_error(pod: &RunningPod) -> String {
    let status = pod.wait_status(
        Duration::from_secs(30),
        "c in CreateContainerConfigError",
        |s| waiting(s, "c").0 == "CreateContainerConfigError",
    );
    waiting(&status, "c").1
}

#[test]
fn a_sub_path_symlinked_to_the_host_root_is_refused() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("subpath-root");
    let manifest = subpath_pod(
        &name,
        "/bin/busybox ln -s / /data/x",
        "x",
        "/bin/busybox ls /m/; /bin/busybox sleep 3600",
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    let message = wait_config_error(&pod);
    assert!(
        message.contains("subPath \"x\"")
            && message.contains("volume \"data\"")
            && message.contains("leaves the volume"),
        "{message}"
    );
    // Never started: nothing of the host's / was listed.
    let status = pod.status().unwrap();
    assert!(
        RunningPod::container(&status, "c")["state"]["running"].is_null(),
        "{status:#}"
    );
    assert_eq!(pod.log("c", 0), "", "c must never have run");
}

#[test]
fn a_missing_sub_path_under_a_symlink_to_root_creates_nothing_on_the_host() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("subpath-mk");
    let escape = format!("podvisor-escape-{name}");
    let host_path = Path::new("/").join(&escape);
    let manifest = subpath_pod(
        &name,
        "/bin/busybox ln -s / /data/x",
        &format!("x/{escape}"),
        "/bin/busybox sleep 3600",
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    let message = wait_config_error(&pod);
    assert!(message.contains("leaves the volume"), "{message}");
    let made = host_path.exists();
    if made {
        let _ = std::fs::remove_dir(&host_path);
    }
    assert!(!made, "{} was created on the host", host_path.display());
    drop(pod);
    assert!(!host_path.exists());
}

#[test]
fn a_symlink_inside_the_volume_and_a_new_sub_path_work() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("subpath-in");
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: init
    image: {IMAGE}
    command: [{BUSYBOX}, sh, -c, "/bin/busybox mkdir /data/sub && echo inside > /data/sub/f && /bin/busybox ln -s sub /data/x"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  containers:
  - name: c
    image: {IMAGE}
    command: [{BUSYBOX}, sh, -c, "echo read: $(/bin/busybox cat /m/f); echo made > /new/file && echo wrote; /bin/busybox sleep 3600"]
    volumeMounts:
    - {{name: data, mountPath: /m, subPath: x}}
    - {{name: data, mountPath: /new, subPath: made/deep}}
  volumes:
  - name: data
    emptyDir: {{}}
"#
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    pod.wait_running(Duration::from_secs(30));
    let log = it::wait_until(Duration::from_secs(10), || {
        let log = pod.log("c", 0);
        log.contains("wrote").then_some(log)
    })
    .unwrap_or_else(|| panic!("{}\n{}", pod.log("c", 0), pod.output()));
    assert!(log.contains("read: inside"), "{log}");
    let made = pod.state_dir().join("volumes/data/made/deep/file");
    assert_eq!(std::fs::read_to_string(&made).unwrap(), "made\n");
}

#[test]
fn config_map_and_secret_mounts_are_read_only_and_root_only_on_the_host() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("ro-kinds");
    let manifest = format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata: {{name: cm}}
data: {{key: value}}
---
apiVersion: v1
kind: Secret
metadata: {{name: s}}
stringData: {{password: hunter2}}
---
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {IMAGE}
    command:
    - {BUSYBOX}
    - sh
    - -c
    - |
      exec 2>&1  # one pipe: the shell's EROFS messages land before `done`
      for f in /cm/new /secret/new /cm/key /secret/password /one; do
        if echo x > $f; then echo "$f: written"; else echo "$f: refused"; fi
      done
      echo done
      exec /bin/busybox sleep 3600
    volumeMounts:
    - {{name: cm, mountPath: /cm, readOnly: false}}
    - {{name: s, mountPath: /secret, readOnly: false}}
    - {{name: cm, mountPath: /one, subPath: key, readOnly: false}}
  volumes:
  - name: cm
    configMap: {{name: cm}}
  - name: s
    secret: {{secretName: s}}
"#
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    pod.wait_running(Duration::from_secs(30));
    let log = it::wait_until(Duration::from_secs(10), || {
        let log = pod.log("c", 0);
        log.contains("done").then_some(log)
    })
    .unwrap_or_else(|| panic!("{}\n{}", pod.log("c", 0), pod.output()));
    for f in [
        "/cm/new",
        "/secret/new",
        "/cm/key",
        "/secret/password",
        "/one",
    ] {
        assert!(log.contains(&format!("{f}: refused")), "{f}: {log}");
    }
    assert!(log.contains("Read-only file system"), "EROFS: {log}");
    // The host side: the pod's volume dir is root's only (0700).
    let volumes = pod.state_dir().join("volumes");
    let mode = std::fs::metadata(&volumes).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{}", volumes.display());
    assert_eq!(
        std::fs::read_to_string(volumes.join("s/password")).unwrap(),
        "hunter2"
    );
}

#[test]
fn memory_empty_dir_and_writable_layer_stop_at_their_sizes() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("sizes");
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {IMAGE}
    command:
    - {BUSYBOX}
    - sh
    - -c
    - |
      /bin/busybox dd if=/dev/zero of=/mem/f bs=1M count=4 2>&1 | /bin/busybox head -n 1
      echo "mem: $(/bin/busybox stat -c %s /mem/f)"
      /bin/busybox dd if=/dev/zero of=/layer bs=1M count=8 2>&1 | /bin/busybox head -n 1
      echo "layer: $(/bin/busybox stat -c %s /layer)"
      echo done
      exec /bin/busybox sleep 3600
    resources:
      limits: {{ephemeral-storage: 2Mi}}
    volumeMounts: [{{name: mem, mountPath: /mem}}]
  volumes:
  - name: mem
    emptyDir: {{medium: Memory, sizeLimit: 1Mi}}
"#
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    pod.wait_running(Duration::from_secs(30));
    let log = it::wait_until(Duration::from_secs(10), || {
        let log = pod.log("c", 0);
        log.contains("done").then_some(log)
    })
    .unwrap_or_else(|| panic!("{}\n{}", pod.log("c", 0), pod.output()));
    assert_eq!(
        log.matches("No space left on device").count(),
        2,
        "ENOSPC twice: {log}"
    );
    let size = |what: &str| -> u64 {
        log.split(&format!("{what}: "))
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{what}: {log}"))
    };
    assert!(
        size("mem") <= 1 << 20,
        "the Memory emptyDir holds at most 1Mi: {log}"
    );
    assert!(
        size("layer") <= 2 << 20,
        "the writable layer holds at most 2Mi: {log}"
    );
}

#[test]
fn a_disk_empty_dir_over_its_size_limit_gets_the_pod_evicted() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("evict");
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - name: c
    image: {IMAGE}
    command: [{BUSYBOX}, sh, -c, "/bin/busybox dd if=/dev/zero of=/data/f bs=1M count=3 && /bin/busybox sync && echo filled; exec /bin/busybox sleep 3600"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes:
  - name: data
    emptyDir: {{sizeLimit: 1Mi}}
"#
    );
    let mut pod = RunningPod::start(&name, &manifest, RunOptions::default());
    pod.wait_running(Duration::from_secs(30));
    let started = std::time::Instant::now();
    // The housekeeping interval (10 s) plus a margin.
    let status = pod.wait_status(Duration::from_secs(25), "the pod evicted", |s| {
        s["status"]["reason"] == "Evicted"
    });
    assert!(started.elapsed() <= Duration::from_secs(25));
    assert_eq!(status["status"]["phase"], "Failed", "{status:#}");
    assert_eq!(
        status["status"]["message"], "Usage of EmptyDir volume \"data\" exceeds the limit \"1Mi\".",
        "{status:#}"
    );
    let exit = pod.wait_exit(Duration::from_secs(15));
    assert_eq!(exit.code(), Some(1), "an evicted pod Failed");
    let status = pod.status().unwrap();
    let c = RunningPod::container(&status, "c");
    assert_eq!(c["restartCount"], 0, "no restart: {status:#}");
    assert!(c["state"]["terminated"].is_object(), "{status:#}");
    assert_eq!(status["status"]["reason"], "Evicted", "{status:#}");
}
