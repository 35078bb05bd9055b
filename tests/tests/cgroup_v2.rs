//! `supervisor run` on a pure cgroup v2 host, for real: the limit files as
//! kubelet converts them (memory.max, cpu.max, cpu.weight), controllers
//! enabled down to the containers, OOMKilled with exit 137 from
//! memory.events, and every cgroup removed at stop. This host kind is
//! hybrid, so these run in the test VM (`tests/vm/suite.sh`, which sets
//! PODVISOR_VM=1); on a host that is not pure v2 they skip, and inside the VM
//! a host that is not pure v2 is a failure.

use std::path::Path;
use std::time::Duration;

use it::images::BUSYBOX as IMAGE;
use it::pod::{RunOptions, RunningPod, leftovers, unique_name};
use it::{is_root, pure_cgroup_v2};
use nix::sys::signal::Signal;

const BUSYBOX: &str = "/bin/busybox";

/// Whether to run: root on a pure cgroup v2 host. Off it, skip (this file is
/// for the VM); in the VM, not being pure v2 fails.
fn on_pure_v2() -> bool {
    let in_vm = std::env::var_os("PODVISOR_VM").is_some();
    if is_root() && pure_cgroup_v2() {
        return true;
    }
    assert!(
        !in_vm,
        "in the test VM but not root on pure cgroup v2 (/sys/fs/cgroup/cgroup.controllers)"
    );
    eprintln!("SKIPPED: not root on a pure cgroup v2 host (run by tests/vm/suite.sh)");
    false
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// One pod: `web` with limits and requests, `hog` growing past its 100Mi.
fn manifest(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: web\n    image: {IMAGE}\n    command: [{BUSYBOX}, sleep, \"3600\"]\n    resources:\n      limits: {{memory: 100Mi, cpu: 500m}}\n      requests: {{memory: 50Mi, cpu: 100m}}\n  - name: hog\n    image: {IMAGE}\n    command: [{BUSYBOX}, sh, -c, \"{BUSYBOX} sleep 1; exec {BUSYBOX} tail /dev/zero\"]\n    resources:\n      limits: {{memory: 100Mi}}\n"
    )
}

#[test]
fn limits_as_kubelet_converts_them_oom_killed_137_and_no_cgroup_left_at_stop() {
    if !on_pure_v2() {
        return;
    }
    let name = unique_name("v2");
    // A long back-off keeps the OOM-killed hog's last state in view.
    let options = RunOptions {
        args: vec!["--backoff-initial".into(), "60s".into()],
        ..RunOptions::default()
    };
    let pod = RunningPod::start(&name, &manifest(&name), options);
    pod.wait_running(Duration::from_secs(60));
    let pod_dir = pod.cgroup_dir("");
    let web = pod_dir.join("containers/web");
    assert_eq!(read(&web.join("memory.max")), "104857600");
    assert_eq!(read(&web.join("cpu.max")), "50000 100000");
    // cpu.shares 102 (100m) in v2's weight scale: 1 + (102 - 2) * 9999 / 262142.
    assert_eq!(read(&web.join("cpu.weight")), "4");
    // The controllers are enabled on the way down (none are at the root of a
    // plain-init host), so the limit files exist at all.
    for dir in [pod_dir.as_path(), &pod_dir.join("containers")] {
        let enabled = read(&dir.join("cgroup.subtree_control"));
        for controller in ["cpu", "memory", "pids"] {
            assert!(
                enabled.split(' ').any(|c| c == controller),
                "{controller} not in {}/cgroup.subtree_control: {enabled}",
                dir.display()
            );
        }
    }

    // OOMKilled comes from memory.events' oom_kill.
    let status = pod.wait_status(Duration::from_secs(120), "hog OOM-killed", |s| {
        RunningPod::container(s, "hog")["lastState"]["terminated"]["reason"] == "OOMKilled"
    });
    let hog = RunningPod::container(&status, "hog");
    assert_eq!(
        hog["lastState"]["terminated"]["exitCode"], 137,
        "{status:#}"
    );
    assert!(RunningPod::container(&status, "web")["state"]["running"].is_object());

    let state_dir = pod.state_dir();
    let (status, _, output) = pod.stop(Signal::SIGTERM, Duration::from_secs(30));
    assert!(status.success(), "{status}\n{output}");
    assert_eq!(leftovers(&name, &state_dir), Vec::<String>::new());
}
