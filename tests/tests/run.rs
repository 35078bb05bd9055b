//! `supervisor run` end to end, as root on the real kernel: the seed
//! scenario (a web server, a sidecar on 127.0.0.1, a ConfigMap page, a
//! read-only shared emptyDir), restarts, OOM kills, back-off, restart
//! policies, init containers, the grace period, and bad manifests.

use it::images::BUSYBOX as IMAGE;
use it::pod::{RunOptions, RunningPod, example_cni_dir, leftovers, unique_name};
use it::{http_get, require, require_root, signal, wait_until};
use nix::sys::signal::Signal;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

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

/// `supervisor run`'s back-off flags.
fn backoff(initial: &str, max: &str) -> Vec<String> {
    ["--backoff-initial", initial, "--backoff-max", max]
        .map(String::from)
        .to_vec()
}

fn restart_count(status: &Value, container: &str) -> u64 {
    RunningPod::container(status, container)["restartCount"]
        .as_u64()
        .unwrap_or(0)
}

/// The seed scenario of the project.
fn seed_manifest(name: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: content
data:
  index.html: "hello from the configmap"
---
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: {IMAGE}
    command: [/bin/busybox, sh, -c, "exec /bin/busybox httpd -f -v -p 8080 -h /www 2>>/log/access.log"]
    volumeMounts:
    - {{name: content, mountPath: /www, readOnly: true}}
    - {{name: logs, mountPath: /log}}
    resources:
      limits: {{memory: 100Mi, cpu: 500m}}
      requests: {{memory: 50Mi, cpu: 100m}}
  - name: sidecar
    image: {IMAGE}
    command:
    - /bin/busybox
    - sh
    - -c
    - |
      until /bin/busybox wget -q -O /tmp/page http://127.0.0.1:8080/; do /bin/busybox sleep 0.1; done
      echo "page: $(/bin/busybox cat /tmp/page)"
      /bin/busybox sleep 0.5
      echo "log: $(/bin/busybox tail -n 1 /log/access.log)"
      if /bin/busybox touch /log/written 2>/dev/null; then echo "volume: writable"; else echo "volume: read-only"; fi
      exec /bin/busybox sleep 3600
    volumeMounts:
    - {{name: logs, mountPath: /log, readOnly: true}}
  volumes:
  - name: content
    configMap: {{name: content}}
  - name: logs
    emptyDir: {{}}
"#
    )
}

#[test]
fn seed_scenario_sidecar_reads_the_server_on_localhost_through_shared_volumes() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("seed");
    let pod = RunningPod::start(&name, &seed_manifest(&name), RunOptions::default());
    pod.wait_running(Duration::from_secs(20));
    let log = wait_until(Duration::from_secs(20), || {
        let log = pod.log("sidecar", 0);
        log.contains("volume: ").then_some(log)
    })
    .unwrap_or_else(|| {
        panic!(
            "sidecar log incomplete:\n{}\n{}",
            pod.log("sidecar", 0),
            pod.output()
        )
    });
    assert!(log.contains("page: hello from the configmap"), "{log}");
    assert!(
        log.contains("response:200"),
        "the access log is shared: {log}"
    );
    assert!(log.contains("volume: read-only"), "{log}");
    // CRI format: <RFC3339Nano> stdout F <line>
    let first = log.lines().next().unwrap();
    let fields: Vec<&str> = first.splitn(4, ' ').collect();
    assert_eq!(fields[1..3], ["stdout", "F"], "{first}");
    assert!(
        fields[0].ends_with('Z') && fields[0].contains('T'),
        "{first}"
    );
    // The supervisor echoes container output with a prefix.
    assert!(
        pod.output()
            .contains("[sidecar] page: hello from the configmap")
    );
    // Limits as kubelet converts them (v1, or pure v2 in the test VM).
    let v2 = it::pure_cgroup_v2();
    assert_eq!(
        pod.limit_file("web", "memory", "memory.limit_in_bytes", "memory.max"),
        "104857600"
    );
    assert_eq!(
        pod.limit_file("web", "cpu", "cpu.cfs_quota_us", "cpu.max"),
        if v2 { "50000 100000" } else { "50000" }
    );
    assert_eq!(
        pod.limit_file("web", "cpu", "cpu.shares", "cpu.weight"),
        if v2 { "4" } else { "102" }
    );
    let state_dir = pod.state_dir();
    let (status, _, output) = pod.stop(Signal::SIGTERM, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{output}");
    assert_eq!(leftovers(&name, &state_dir), Vec::<String>::new());
}

#[test]
fn a_killed_container_is_restarted_with_its_last_state() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("restart");
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers:\n  - name: app\n    image: {IMAGE}\n    command: [{BUSYBOX}, sleep, \"3600\"]\n  - name: other\n    image: {IMAGE}\n    command: [{BUSYBOX}, sleep, \"3600\"]\n"
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    pod.wait_running(Duration::from_secs(20));
    let pid = pod.container_pid("app").expect("app's pid");
    signal(pid, Signal::SIGKILL);
    let status = pod.wait_status(Duration::from_secs(20), "app restarted", |s| {
        restart_count(s, "app") == 1
            && RunningPod::container(s, "app")["state"]["running"].is_object()
    });
    let last = &RunningPod::container(&status, "app")["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 137, "{status:#}");
    assert_eq!(last["reason"], "Error");
    assert_eq!(last["signal"], 9);
    assert_ne!(pod.container_pid("app"), Some(pid), "a new process");
    assert_eq!(
        restart_count(&status, "other"),
        0,
        "the other container is untouched"
    );
}

#[test]
fn over_its_memory_limit_a_container_is_oom_killed_and_the_pod_keeps_running() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("oom");
    // `tail /dev/zero` buffers an endless line: it grows until the limit.
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers:\n  - name: hog\n    image: {IMAGE}\n    command: [{BUSYBOX}, sh, -c, \"{BUSYBOX} sleep 1; exec {BUSYBOX} tail /dev/zero\"]\n    resources:\n      limits: {{memory: 100Mi}}\n  - name: steady\n    image: {IMAGE}\n    command: [{BUSYBOX}, sleep, \"3600\"]\n"
    );
    let pod = RunningPod::start(
        &name,
        &manifest,
        RunOptions {
            args: vec!["--backoff-initial".into(), "60s".into()],
            ..RunOptions::default()
        },
    );
    pod.wait_running(Duration::from_secs(20));
    assert_eq!(
        pod.limit_file("hog", "memory", "memory.limit_in_bytes", "memory.max"),
        "104857600"
    );
    let status = pod.wait_status(Duration::from_secs(60), "hog OOM-killed", |s| {
        RunningPod::container(s, "hog")["lastState"]["terminated"]["reason"] == "OOMKilled"
    });
    let hog = RunningPod::container(&status, "hog");
    assert_eq!(hog["lastState"]["terminated"]["exitCode"], 137);
    assert_eq!(status["status"]["phase"], "Running");
    assert!(RunningPod::container(&status, "steady")["state"]["running"].is_object());
    // A plain SIGKILL is not an OOM kill.
    let steady = pod.container_pid("steady").unwrap();
    signal(steady, Signal::SIGKILL);
    let status = pod.wait_status(Duration::from_secs(20), "steady restarted", |s| {
        restart_count(s, "steady") == 1
    });
    assert_eq!(
        RunningPod::container(&status, "steady")["lastState"]["terminated"]["reason"],
        "Error"
    );
}

#[test]
fn back_off_doubles_and_caps() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("backoff");
    let out = tempfile::tempdir().unwrap();
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers:\n  - name: crash\n    image: {IMAGE}\n    command: [{BUSYBOX}, sh, -c, \"{BUSYBOX} cat /proc/uptime >> /out/starts; exit 3\"]\n    volumeMounts: [{{name: out, mountPath: /out}}]\n  volumes:\n  - name: out\n    hostPath: {{path: {}, type: Directory}}\n",
        out.path().display()
    );
    let pod = RunningPod::start(
        &name,
        &manifest,
        RunOptions {
            args: backoff("300ms", "1200ms"),
            ..RunOptions::default()
        },
    );
    let starts = wait_until(Duration::from_secs(30), || {
        let text = std::fs::read_to_string(out.path().join("starts")).ok()?;
        let starts: Vec<f64> = text
            .lines()
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        (starts.len() >= 6).then_some(starts)
    })
    .unwrap_or_else(|| panic!("not enough restarts:\n{}", pod.output()));
    let gaps: Vec<f64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    // Expected delays: 0 (first restart at once), 0.3, 0.6, 1.2, 1.2 s,
    // plus the time a start takes (generous: CI runs tests side by side;
    // the lower bound is what shows the doubling and the cap).
    let expected = [0.0, 0.3, 0.6, 1.2, 1.2];
    for (gap, want) in gaps.iter().zip(expected) {
        assert!(
            *gap >= want - 0.02 && *gap < want + 0.4,
            "gaps {gaps:?} do not follow {expected:?}"
        );
    }
    // The sixth start is on disk; the status may be written a moment later.
    let status = pod.wait_status(Duration::from_secs(5), "restartCount 5", |s| {
        restart_count(s, "crash") >= 5
    });
    let crash = RunningPod::container(&status, "crash");
    assert_eq!(crash["lastState"]["terminated"]["exitCode"], 3);
}

fn run_to_end(name: &str, manifest: &str) -> (i32, Value, String) {
    let mut pod = RunningPod::start(name, manifest, RunOptions::default());
    let status = pod.wait_exit(Duration::from_secs(30));
    let record = pod.status().expect("final status");
    (status.code().unwrap_or(-1), record, pod.output())
}

#[test]
fn restart_policy_on_failure_restarts_failures_only_and_the_pod_succeeds() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("onfailure");
    let out = tempfile::tempdir().unwrap();
    // Fails twice, then succeeds: the pod ends Succeeded.
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: OnFailure\n  containers:\n  - name: flaky\n    image: {IMAGE}\n    command: [{BUSYBOX}, sh, -c, \"echo x >> /out/runs; [ $({BUSYBOX} wc -l < /out/runs) -ge 3 ]\"]\n    volumeMounts: [{{name: out, mountPath: /out}}]\n  volumes:\n  - name: out\n    hostPath: {{path: {}}}\n",
        out.path().display()
    );
    let (code, status, output) = run_to_end(&name, &manifest);
    assert_eq!(code, 0, "{output}");
    assert_eq!(status["status"]["phase"], "Succeeded", "{status:#}");
    let flaky = RunningPod::container(&status, "flaky");
    assert_eq!(flaky["restartCount"], 2);
    assert_eq!(flaky["state"]["terminated"]["reason"], "Completed");
}

#[test]
fn restart_policy_never_leaves_a_failure_failed() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("never");
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: fails\n    image: {IMAGE}\n    command: [{BUSYBOX}, sh, -c, \"exit 7\"]\n"
    );
    let (code, status, output) = run_to_end(&name, &manifest);
    assert_eq!(code, 1, "{output}");
    assert_eq!(status["status"]["phase"], "Failed");
    let fails = RunningPod::container(&status, "fails");
    assert_eq!(fails["restartCount"], 0);
    assert_eq!(fails["state"]["terminated"]["exitCode"], 7);
    assert_eq!(fails["state"]["terminated"]["reason"], "Error");
}

#[test]
fn init_containers_run_in_order_before_the_containers() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("init");
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  initContainers:\n  - name: first\n    image: {IMAGE}\n    command: [{BUSYBOX}, sh, -c, \"{BUSYBOX} sleep 0.3; echo first >> /work/order\"]\n    volumeMounts: [{{name: work, mountPath: /work}}]\n  - name: second\n    image: {IMAGE}\n    command: [{BUSYBOX}, sh, -c, \"echo second >> /work/order\"]\n    volumeMounts: [{{name: work, mountPath: /work}}]\n  containers:\n  - name: main\n    image: {IMAGE}\n    command: [{BUSYBOX}, sh, -c, \"echo main >> /work/order; {BUSYBOX} cat /work/order\"]\n    volumeMounts: [{{name: work, mountPath: /work}}]\n  volumes:\n  - name: work\n    emptyDir: {{}}\n"
    );
    let mut pod = RunningPod::start(&name, &manifest, RunOptions::default());
    let code = pod.wait_exit(Duration::from_secs(30));
    assert_eq!(code.code(), Some(0), "{}", pod.output());
    let log = pod.log("main", 0);
    let lines: Vec<&str> = log
        .lines()
        .filter_map(|l| l.splitn(4, ' ').nth(3))
        .collect();
    assert_eq!(lines, ["first", "second", "main"], "{log}");
    let status = pod.status().unwrap();
    assert_eq!(status["status"]["phase"], "Succeeded");
    for c in status["status"]["initContainerStatuses"]
        .as_array()
        .unwrap()
    {
        assert_eq!(c["state"]["terminated"]["reason"], "Completed", "{c:#}");
    }
}

#[test]
fn the_grace_period_is_honoured_for_a_container_that_ignores_sigterm() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("grace");
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: stubborn\n    image: {IMAGE}\n    command: [{BUSYBOX}, sh, -c, \"trap '' TERM; while true; do {BUSYBOX} sleep 0.1; done\"]\n  - name: polite\n    image: {IMAGE}\n    command: [{BUSYBOX}, sh, -c, \"trap 'exit 0' TERM; while true; do {BUSYBOX} sleep 0.1; done\"]\n"
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    pod.wait_running(Duration::from_secs(20));
    // Let the shells install their traps.
    std::thread::sleep(Duration::from_millis(500));
    let state_dir = pod.state_dir();
    let (status, took, output) = pod.stop(Signal::SIGTERM, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{output}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "stop took {took:?}; grace period 2 s\n{output}"
    );
    assert!(output.contains("[polite] exited: Completed"), "{output}");
    assert!(
        output.contains("[stubborn] exited: Error (exit code 137)"),
        "{output}"
    );
    assert_eq!(leftovers(&name, &state_dir), Vec::<String>::new());
}

#[test]
fn a_second_sigint_kills_at_once() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("sigint");
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 60\n  containers:\n  - name: stubborn\n    image: {IMAGE}\n    command: [{BUSYBOX}, sh, -c, \"trap '' TERM INT; while true; do {BUSYBOX} sleep 0.1; done\"]\n"
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    pod.wait_running(Duration::from_secs(20));
    pod.signal(Signal::SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let (status, _, output) = pod.stop(Signal::SIGINT, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{output}");
    assert!(started.elapsed() < Duration::from_secs(10), "{output}");
    assert!(output.contains("a second SIGINT"), "{output}");
}

#[test]
fn a_bad_manifest_is_refused_before_anything_starts() {
    require_root!();
    let name = unique_name("bad");
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers:\n  - name: web\n    image: {IMAGE}\n    command: [{BUSYBOX}, sleep, \"1\"]\n    resources:\n      limits: {{memory: 100MB}}\n"
    );
    let mut pod = RunningPod::start(&name, &manifest, RunOptions::default());
    let status = pod.wait_exit(Duration::from_secs(10));
    let output = pod.output();
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(
        output.contains("spec.containers[0].resources.limits.memory = \"100MB\""),
        "{output}"
    );
    assert!(
        output.contains("pod.yaml"),
        "the error names the file: {output}"
    );
    assert!(!pod.state_dir().exists(), "nothing was created");
    assert_eq!(leftovers(&name, &pod.state_dir()), Vec::<String>::new());
}

#[test]
fn with_cni_the_pod_gets_an_ip_the_host_reaches() {
    if !prerequisites() {
        return;
    }
    require!(
        Path::new("/usr/lib/cni/bridge").is_file() || Path::new("/opt/cni/bin/bridge").is_file(),
        "CNI plugins (containernetworking-plugins)"
    );
    let name = unique_name("cni");
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers:\n  - name: web\n    image: {IMAGE}\n    command: [{BUSYBOX}, sh, -c, \"echo pod-says-hi > /tmp/index.html; exec {BUSYBOX} httpd -f -p 8080 -h /tmp\"]\n  - name: probe\n    image: {IMAGE}\n    command: [{BUSYBOX}, sh, -c, \"{BUSYBOX} ip -4 -o addr show eth0; until {BUSYBOX} wget -q -O - http://127.0.0.1:8080/; do {BUSYBOX} sleep 0.1; done; exec {BUSYBOX} sleep 3600\"]\n"
    );
    let pod = RunningPod::start(
        &name,
        &manifest,
        RunOptions {
            cni_conf_dir: Some(example_cni_dir()),
            ..RunOptions::default()
        },
    );
    let status = pod.wait_running(Duration::from_secs(20));
    let ip = status["status"]["podIP"]
        .as_str()
        .expect("podIP")
        .to_string();
    assert!(ip.starts_with("10.222.0."), "{status:#}");
    assert_eq!(status["status"]["podIPs"][0]["ip"], ip.as_str());
    // The containers see it on eth0, and reach each other on 127.0.0.1.
    let log = wait_until(Duration::from_secs(10), || {
        let log = pod.log("probe", 0);
        log.contains("pod-says-hi").then_some(log)
    })
    .unwrap_or_else(|| panic!("{}", pod.output()));
    assert!(log.contains(&format!("inet {ip}/24")), "{log}");
    // The host reaches the server on podIP:8080 (the pod's own address on
    // our bridge).
    let page = wait_until(Duration::from_secs(10), || http_get(&ip, 8080)).expect("reach the pod");
    assert!(page.contains("pod-says-hi"), "{page}");
    let state_dir = pod.state_dir();
    let (code, _, output) = pod.stop(Signal::SIGTERM, Duration::from_secs(45));
    assert_eq!(code.code(), Some(0), "{output}");
    assert_eq!(leftovers(&name, &state_dir), Vec::<String>::new());
    assert!(
        !Path::new("/var/lib/cni/networks/podvisor")
            .join(&ip)
            .exists(),
        "the address {ip} was not released"
    );
}

#[test]
fn a_failing_liveness_probe_restarts_the_container_with_the_reason() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("liveness");
    // Healthy for about two seconds, then /healthz is gone (404).
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: web\n    image: {IMAGE}\n    command: [{BUSYBOX}, sh, -c, \"mkdir -p /tmp/www; echo ok > /tmp/www/healthz; ({BUSYBOX} sleep 2; rm /tmp/www/healthz) & exec {BUSYBOX} httpd -f -p 8080 -h /tmp/www\"]\n    livenessProbe:\n      httpGet: {{path: /healthz, port: 8080}}\n      periodSeconds: 1\n      failureThreshold: 2\n"
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    pod.wait_running(Duration::from_secs(20));
    let status = pod.wait_status(
        Duration::from_secs(30),
        "web restarted by its liveness probe",
        |s| restart_count(s, "web") >= 1,
    );
    let last = &RunningPod::container(&status, "web")["lastState"]["terminated"];
    let message = last["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Liveness probe failed: HTTP probe failed with statuscode: 404"),
        "{status:#}"
    );
    let events = std::fs::read_to_string(pod.state_dir().join("events.json")).unwrap();
    assert!(events.contains("Unhealthy"), "{events}");
}

#[test]
fn with_a_shared_process_namespace_pause_is_pid_1_for_every_container() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("sharedpid");
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  shareProcessNamespace: true\n  containers:\n  - name: a\n    image: {IMAGE}\n    command: [{BUSYBOX}, sh, -c, \"{BUSYBOX} cat /proc/1/cmdline | {BUSYBOX} tr '\\\\0' ' '; echo; (/bin/busybox sleep 0.2 &); exec {BUSYBOX} sleep 3600\"]\n  - name: b\n    image: {IMAGE}\n    command: [{BUSYBOX}, sleep, \"3600\"]\n"
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    pod.wait_running(Duration::from_secs(20));
    let log = wait_until(Duration::from_secs(10), || {
        let log = pod.log("a", 0);
        log.contains("pause").then_some(log)
    })
    .unwrap_or_else(|| panic!("{}\n{}", pod.log("a", 0), pod.output()));
    assert!(log.contains("pause"), "PID 1 is pause: {log}");
    let a = pod.container_pid("a").unwrap();
    let b = pod.container_pid("b").unwrap();
    assert_eq!(it::ns_inode(a, "pid"), it::ns_inode(b, "pid"));
    // The orphaned sleep went to pause, which reaped it: no zombie.
    let pause = pod.pause_pid().unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let zombies: Vec<_> = it::children_of(pause)
        .into_iter()
        .filter(|p| p.state == 'Z')
        .collect();
    assert!(zombies.is_empty(), "{zombies:?}");
}

/// The supervisor's children that are copies of it: parked next instances
/// (set up, waiting before exec).
fn parked_children(supervisor: i32) -> Vec<i32> {
    let exe = std::fs::read_link(format!("/proc/{supervisor}/exe")).ok();
    let children =
        std::fs::read_to_string(format!("/proc/{supervisor}/task/{supervisor}/children"))
            .unwrap_or_default();
    children
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
        .filter(|p| std::fs::read_link(format!("/proc/{p}/exe")).ok() == exe)
        .collect()
}

/// Whether parked process `pid` is armed: it waits in poll (the go pipe
/// and its predecessor's pidfd), not in the go pipe's read.
fn armed(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/syscall"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<i64>().ok())
        == Some(libc::SYS_poll)
}

fn marks(file: &Path, mark: &str) -> usize {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(mark))
        .count()
}

#[test]
fn an_armed_next_instance_starts_at_the_exit_even_while_the_supervisor_is_stopped() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("armed");
    let out = tempfile::tempdir().unwrap();
    let stamps = out.path().join("stamps");
    let stamp = it::images::binary_image("bench-stamp");
    // Lives 500 ms, exits 1; restartPolicy Always without back-off: every
    // exit restarts at once, so the parked successor is armed.
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers:\n  - name: app\n    image: {image}\n    command: [{path}, /out/stamps, \"1\", \"500\"]\n    volumeMounts: [{{name: out, mountPath: /out}}]\n  volumes:\n  - name: out\n    hostPath: {{path: {out}, type: Directory}}\n",
        image = stamp.reference,
        path = stamp.path,
        out = out.path().display(),
    );
    let pod = RunningPod::start(
        &name,
        &manifest,
        RunOptions {
            args: backoff("0", "0"),
            ..RunOptions::default()
        },
    );
    // Only a container that restarted gets a parked successor.
    pod.wait_status(Duration::from_secs(20), "a first restart", |s| {
        restart_count(s, "app") >= 1
    });
    // A fresh instance with its successor parked: stop the supervisor.
    let supervisor = pod.pid();
    let before = wait_until(Duration::from_secs(10), || {
        let starts = marks(&stamps, "S");
        let ends = marks(&stamps, "E");
        // Well inside an instance's 500 ms, its successor parked and armed.
        (starts == ends + 1 && parked_children(supervisor).into_iter().any(armed)).then_some(starts)
    })
    .unwrap_or_else(|| panic!("no parked successor\n{}", pod.output()));
    signal(supervisor, Signal::SIGSTOP);
    // The running instance exits; with no one to reap it, hear of its exit
    // or write to its successor, the successor starts.
    let started = wait_until(Duration::from_secs(5), || {
        (marks(&stamps, "S") > before).then_some(())
    });
    signal(supervisor, Signal::SIGCONT);
    assert!(
        started.is_some(),
        "no start while the supervisor was stopped\n{}",
        pod.output()
    );
    // The supervisor then reaps, counts and reports it as the restart.
    pod.wait_status(Duration::from_secs(20), "the restart counted", |s| {
        restart_count(s, "app") >= before as u64
            && RunningPod::container(s, "app")["state"]["running"].is_object()
    });
    // Stopping throws the armed successor away first: no start after the
    // stop signal (each instance wrote its E unless the stop killed it,
    // and only the one running then may have been killed).
    let (status, _, output) = pod.stop(Signal::SIGTERM, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{output}");
    std::thread::sleep(Duration::from_millis(700));
    let (starts, ends) = (marks(&stamps, "S"), marks(&stamps, "E"));
    assert!(
        starts == ends + 1 || starts == ends,
        "{starts} starts, {ends} ends: an instance started during the stop\n{output}"
    );
}
