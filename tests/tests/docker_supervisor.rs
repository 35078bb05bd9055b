//! The `supervisor` image end to end: a real two-container pod inside one
//! Docker container. The image is built from a temporary context staged by
//! `docker/stage.sh` (the documented way; the pod's image,
//! localhost/podvisor/busybox:static, is in the image store it carries at
//! /var/lib/supervisor/images, so nothing is pulled), started with `docker run
//! --privileged --network none IMAGE run /etc/supervisor/pod.yaml`, and
//! then: both containers run, the pod has its address on a bridge inside
//! the container's own network namespace, a killed container is restarted
//! with the pod IP unchanged, and `docker stop` ends everything within
//! Docker's grace period with exit code 0, leaving no process behind.

use it::{
    DockerCleanup, ProcStat, all_processes, docker, docker_available, docker_context, ns_inode,
    proc_status_field, require, require_root, wait_until,
};
use serde_json::Value;
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// What the image's pod (docker/pod.yaml) is called and serves.
const POD: &str = "web";
const PAGE: &str = "Hello from a ConfigMap, served by busybox httpd in a pod in Docker.";
/// `docker stop`'s default timeout: SIGKILL after it.
const DOCKER_STOP_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn supervisor_image_runs_a_pod_in_docker() {
    require_root!();
    require!(docker_available(), "a Docker engine (docker version)");
    require!(
        Path::new("/usr/lib/cni/bridge").is_file() && Path::new("/bin/busybox").is_file(),
        "containernetworking-plugins and busybox-static installed (docker/stage.sh reads them)"
    );
    let tag = std::process::id();
    let image = format!("podvisor-test/supervisor:{tag}");
    let name = format!("podvisor-test-supervisor-{tag}");
    let _cleanup = DockerCleanup {
        containers: vec![name.clone()],
        images: vec![image.clone()],
    };

    let context = docker_context(&[]);
    stage(context.path());
    docker([
        "build",
        "-q",
        "--target",
        "supervisor",
        "-t",
        &image,
        context.path().to_str().unwrap(),
    ]);
    start(&name, &image);
    let init_pid: i32 = docker(["inspect", "-f", "{{.State.Pid}}", &name])
        .parse()
        .unwrap();
    assert_eq!(
        cmdline(init_pid),
        "/usr/local/bin/supervisor run /etc/supervisor/pod.yaml",
        "the supervisor is the container's PID 1"
    );
    let container_id = docker(["inspect", "-f", "{{.Id}}", &name]);

    // Both containers run and the pod has an address.
    let status = wait_for(
        &name,
        Duration::from_secs(60),
        "both containers running",
        |s| running(s, "web") && running(s, "log-reader") && s["status"]["podIP"].is_string(),
    );
    let pod_ip = status["status"]["podIP"].as_str().unwrap().to_string();
    assert!(
        pod_ip.starts_with("10.222.0."),
        "pod IP {pod_ip} is not from the image's CNI network"
    );

    // The sidecar reaches the web server over 127.0.0.1 of the pod, and the
    // container reaches the pod over the bridge in its own netns.
    let fetched = wait_until(Duration::from_secs(20), || {
        logs(&name).contains("[log-reader] fetched").then_some(())
    });
    assert!(
        fetched.is_some(),
        "the sidecar never fetched the page:\n{}",
        logs(&name)
    );
    let page = docker([
        "exec",
        &name,
        "/bin/busybox",
        "wget",
        "-q",
        "-O",
        "-",
        &format!("http://{pod_ip}:8080/"),
    ]);
    assert!(page.contains(PAGE), "the page over the pod IP: {page}");
    let bridge = docker([
        "exec",
        &name,
        "/bin/busybox",
        "ip",
        "-o",
        "addr",
        "show",
        "podvisor0",
    ]);
    assert!(
        bridge.contains("10.222.0.1/24"),
        "the bridge in the container's netns: {bridge}"
    );

    // Pod processes: in the container's PID namespace tree, the sandbox in
    // its own network namespace (not the container's, not the host's), each
    // container nested in the container's cgroup.
    let web = main_process(init_pid, "httpd -f").expect("web's main process");
    let sidecar = main_process(init_pid, "while true").expect("log-reader's main process");
    let container_net = ns_inode(init_pid, "net");
    for pid in [web, sidecar] {
        let net = ns_inode(pid, "net");
        assert_ne!(net, container_net, "pid {pid} shares the container's netns");
        assert_ne!(net, ns_inode(1, "net"), "pid {pid} is in the host's netns");
        assert_eq!(
            net,
            ns_inode(web, "net"),
            "the pod's containers share a netns"
        );
        assert_cgroup_nested(init_pid, pid);
    }
    let before_stop: HashSet<i32> = descendants(init_pid).iter().map(|p| p.pid).collect();

    // Kill the web container's main process from outside: it is restarted
    // (restart count 1, last state exit 137) and the pod keeps its address.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(web),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill web");
    let status = wait_for(&name, Duration::from_secs(30), "web restarted", |s| {
        restart_count(s, "web") == 1 && running(s, "web")
    });
    let web_status = container(&status, "web");
    assert_eq!(
        web_status["lastState"]["terminated"]["exitCode"], 137,
        "web's last state: {web_status:#}"
    );
    assert_eq!(restart_count(&status, "log-reader"), 0, "{status:#}");
    assert_eq!(
        status["status"]["podIP"].as_str(),
        Some(pod_ip.as_str()),
        "the pod IP changed across the restart"
    );
    let new_web = main_process(init_pid, "httpd -f").expect("web's new main process");
    assert_ne!(new_web, web, "web runs as a new process");
    assert_eq!(ns_inode(new_web, "net"), ns_inode(sidecar, "net"));
    let page = docker([
        "exec",
        &name,
        "/bin/busybox",
        "wget",
        "-q",
        "-O",
        "-",
        &format!("http://{pod_ip}:8080/"),
    ]);
    assert!(page.contains(PAGE), "the page after the restart: {page}");
    let all_pids: HashSet<i32> = before_stop
        .into_iter()
        .chain(descendants(init_pid).iter().map(|p| p.pid))
        .chain([init_pid])
        .collect();

    // docker stop: SIGTERM to the supervisor, which stops the pod within
    // its grace period (5 s) and exits 0 before Docker's SIGKILL (10 s).
    let started = Instant::now();
    docker(["stop", &name]);
    let took = started.elapsed();
    let state = docker([
        "inspect",
        "-f",
        "{{.State.ExitCode}} {{.State.OOMKilled}}",
        &name,
    ]);
    let output = logs(&name);
    assert_eq!(
        state, "0 false",
        "exit code on docker stop; logs:\n{output}"
    );
    assert!(
        took < DOCKER_STOP_TIMEOUT,
        "docker stop took {took:?}; logs:\n{output}"
    );
    for expected in [
        "stopping pod default/web",
        "[web] exited: Completed (exit code 0)",
        "[log-reader] exited: Completed (exit code 0)",
    ] {
        assert!(
            output.contains(expected),
            "no {expected:?} in the logs:\n{output}"
        );
    }

    // Nothing of it is left on the host: none of its processes, and no
    // process in any cgroup of the container.
    let left: Vec<i32> = all_pids
        .iter()
        .copied()
        .filter(|pid| it::proc_stat(*pid).is_some() && cgroup_lines(*pid).contains(&container_id))
        .collect();
    assert!(left.is_empty(), "processes left: {left:?}");
    let in_cgroup: Vec<i32> = all_processes()
        .iter()
        .map(|p| p.pid)
        .filter(|pid| cgroup_lines(*pid).contains(&container_id))
        .collect();
    assert!(
        in_cgroup.is_empty(),
        "processes left in the container's cgroups: {in_cgroup:?}"
    );
}

/// Stage the image's files into the temporary context with the documented
/// script, which builds the static supervisor from this workspace.
fn stage(context: &Path) {
    let script = it::workspace_root().join("docker/stage.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(context.join("docker/context"))
        .output()
        .expect("run docker/stage.sh");
    assert!(
        out.status.success(),
        "docker/stage.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `docker run -d --privileged --network none IMAGE run MANIFEST`, as the
/// README gives it.
///
/// A Docker engine inside a restricted VM may be unable to grant
/// `--privileged` (its capability bounding set lacks some capability, and
/// runc fails with "unable to apply caps"). Then the container gets the
/// same rights spelled out: every capability the engine can grant,
/// unconfined seccomp/AppArmor/system paths, and the read-only cgroup
/// mounts remounted writable before the supervisor is exec'd as PID 1: the
/// same image, pod and supervisor, only the set-up differs.
fn start(name: &str, image: &str) {
    let privileged = Command::new("docker")
        .args(["run", "-d", "--privileged", "--network", "none", "--name"])
        .args([name, image, "run", "/etc/supervisor/pod.yaml"])
        .output()
        .expect("run docker");
    if privileged.status.success() {
        return;
    }
    let error = String::from_utf8_lossy(&privileged.stderr);
    assert!(
        error.contains("unable to apply caps"),
        "docker run --privileged failed: {error}"
    );
    // The test VM's engine has every capability: there --privileged itself
    // is what is tested (tests/vm/suite.sh --docker).
    assert!(
        std::env::var_os("PODVISOR_VM").is_none(),
        "in the test VM, docker run --privileged must be granted: {error}"
    );
    let missing = missing_capabilities();
    eprintln!(
        "note: this engine cannot grant --privileged (missing {missing:?}); \
         running with the equivalent rights spelled out"
    );
    let _ = Command::new("docker").args(["rm", "-f", name]).output();
    let mut args: Vec<String> = ["run", "-d", "--network", "none", "--cap-add", "ALL"]
        .map(String::from)
        .to_vec();
    for cap in missing {
        args.extend(["--cap-drop".to_string(), cap.to_string()]);
    }
    for opt in [
        "seccomp=unconfined",
        "apparmor=unconfined",
        "systempaths=unconfined",
    ] {
        args.extend(["--security-opt".to_string(), opt.to_string()]);
    }
    args.extend(
        [
            "--name",
            name,
            "--entrypoint",
            "/bin/busybox",
            image,
            "sh",
            "-c",
            "for d in /sys/fs/cgroup/*; do mount -o remount,rw,bind \"$d\" \"$d\" || exit 1; done; \
             exec /usr/local/bin/supervisor run /etc/supervisor/pod.yaml",
        ]
        .map(String::from),
    );
    docker(args);
}

/// Capability names (Docker's spelling) by number.
const CAPABILITIES: [&str; 41] = container::caps::NAMES;

/// The capabilities of the kernel's list that this process cannot pass on
/// (not in its bounding set), such as SYS_RESOURCE in a restricted VM.
fn missing_capabilities() -> Vec<&'static str> {
    let bounding = it::signal_set(std::process::id() as i32, "CapBnd").expect("CapBnd");
    let last_cap: usize = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(CAPABILITIES.len() - 1);
    CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(bit, _)| *bit <= last_cap && bounding & (1 << bit) == 0)
        .map(|(_, name)| *name)
        .collect()
}

/// Run `docker ARGS`; stdout when it succeeds.
fn try_docker(args: &[&str]) -> Option<String> {
    let out = Command::new("docker").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `docker logs` (the supervisor's stdout and stderr, interleaved).
fn logs(name: &str) -> String {
    let out = Command::new("docker")
        .args(["logs", name])
        .output()
        .expect("docker logs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The pod as `supervisor status POD -o json` shows it inside the container.
fn status(name: &str) -> Option<Value> {
    let text = try_docker(&[
        "exec",
        name,
        "/usr/local/bin/supervisor",
        "status",
        POD,
        "-o",
        "json",
    ])?;
    serde_json::from_str(&text).ok()
}

/// Poll the pod's status until `ready` holds; panics with the last status
/// and the logs after `timeout`.
fn wait_for(name: &str, timeout: Duration, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let mut last = None;
    let found = wait_until(timeout, || {
        std::thread::sleep(Duration::from_millis(100));
        let status = status(name)?;
        let ok = ready(&status);
        last = Some(status.clone());
        ok.then_some(status)
    });
    found.unwrap_or_else(|| {
        panic!(
            "not {what} after {timeout:?}; last status: {last:#?}\nlogs:\n{}",
            logs(name)
        )
    })
}

fn container<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["status"]["containerStatuses"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no container {name} in {status:#}"))
}

fn running(status: &Value, name: &str) -> bool {
    container(status, name)["state"]["running"].is_object()
}

fn restart_count(status: &Value, name: &str) -> u64 {
    container(status, name)["restartCount"]
        .as_u64()
        .unwrap_or(0)
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            String::from_utf8_lossy(&raw)
                .trim_end_matches('\0')
                .replace('\0', " ")
        })
        .unwrap_or_default()
}

/// Every process below `root` in the process tree.
fn descendants(root: i32) -> Vec<ProcStat> {
    let all = all_processes();
    let mut found = Vec::new();
    let mut parents = vec![root];
    while let Some(parent) = parents.pop() {
        for p in all.iter().filter(|p| p.ppid == parent) {
            parents.push(p.pid);
            found.push(p.clone());
        }
    }
    found
}

/// A pod container's main process below the container's init: PID 1 of its
/// own PID namespace, two levels below the host's (container, container of
/// the pod), whose command line contains `marker`.
fn main_process(init: i32, marker: &str) -> Option<i32> {
    descendants(init).into_iter().map(|p| p.pid).find(|pid| {
        let nspid = proc_status_field(*pid, "NSpid").unwrap_or_default();
        let levels: Vec<&str> = nspid.split_whitespace().collect();
        levels.len() >= 3 && levels.last() == Some(&"1") && cmdline(*pid).contains(marker)
    })
}

/// /proc/PID/cgroup, empty when the process is gone.
fn cgroup_lines(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default()
}

/// The cgroups of `pid` lie below (or, for a hierarchy the pod does not
/// use, at) the cgroup of the same hierarchy of the container's init: the
/// pod's cgroups are created inside the container's own.
fn assert_cgroup_nested(init: i32, pid: i32) {
    let paths = |pid: i32| -> Vec<(String, String)> {
        cgroup_lines(pid)
            .lines()
            .filter_map(|l| {
                let mut parts = l.splitn(3, ':');
                let _id = parts.next()?;
                Some((parts.next()?.to_string(), parts.next()?.to_string()))
            })
            .collect()
    };
    let outer = paths(init);
    let inner = paths(pid);
    let mut nested = 0;
    for (controllers, path) in &inner {
        let (_, base) = outer
            .iter()
            .find(|(c, _)| c == controllers)
            .unwrap_or_else(|| panic!("init has no cgroup for {controllers:?}"));
        // On cgroup v2 the supervisor first moves into a `supervisor` leaf
        // of the container's cgroup (the no-internal-process rule) and makes
        // the pod's cgroups beside it.
        let base = base.trim_end_matches('/');
        let base = if controllers.is_empty() {
            base.strip_suffix("/supervisor").unwrap_or(base)
        } else {
            base
        };
        // A hierarchy the supervisor does not use (name=systemd, or a
        // cgroup2 mount the container does not have) leaves it beside init.
        if path.starts_with(&format!("{base}/")) {
            nested += 1;
        } else {
            assert_eq!(
                path.trim_end_matches('/'),
                base,
                "pid {pid}: cgroup {controllers}:{path} is outside the container's {base}"
            );
        }
    }
    assert!(
        nested > 0,
        "pid {pid} is in none of the pod's cgroups: {inner:?}"
    );
}
