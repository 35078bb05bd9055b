//! `supervisor run` on a pure cgroup v2 host, for real: the limit files as
//! kubelet converts them (memory.max, cpu.max, cpu.weight, the pod's
//! pids.max), controllers enabled down to the containers, OOMKilled with exit
//! 137 from memory.events, every process born in its cgroup (clone3
//! CLONE_INTO_CGROUP: the kernel's cgroup_attach_task tracepoint sees no
//! migration into the pod, the OOM restart included), the container's
//! private cgroup namespace with its cgroup2 read-only, and every cgroup
//! removed at stop. This host kind is
//! hybrid, so these run in the test VM (`tests/vm/suite.sh`, which sets
//! PODVISOR_VM=1); on a host that is not pure v2 they skip, and inside the VM
//! a host that is not pure v2 is a failure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use it::images::BUSYBOX as IMAGE;
use it::pod::{RunOptions, RunningPod, leftovers, unique_name};
use it::{is_root, pure_cgroup_v2, wait_until};
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

/// What the `view` container prints of its own cgroup view, then sleeps.
const VIEW: &str = "/bin/busybox cat /proc/self/cgroup; \
    /bin/busybox grep ' /sys/fs/cgroup ' /proc/self/mountinfo; \
    echo memory.max=$(/bin/busybox cat /sys/fs/cgroup/memory.max); \
    /bin/busybox mkdir /sys/fs/cgroup/escape 2>&1 || echo mkdir-refused; \
    echo view-done; exec /bin/busybox sleep 3600";

/// One pod: `web` with limits and requests, `hog` growing past its 100Mi,
/// `view` printing its cgroup view.
fn manifest(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: web\n    image: {IMAGE}\n    command: [{BUSYBOX}, sleep, \"3600\"]\n    resources:\n      limits: {{memory: 100Mi, cpu: 500m}}\n      requests: {{memory: 50Mi, cpu: 100m}}\n  - name: hog\n    image: {IMAGE}\n    command: [{BUSYBOX}, sh, -c, \"{BUSYBOX} sleep 1; exec {BUSYBOX} tail /dev/zero\"]\n    resources:\n      limits: {{memory: 100Mi}}\n  - name: view\n    image: {IMAGE}\n    command: [{BUSYBOX}, sh, -c, \"{VIEW}\"]\n    resources:\n      limits: {{memory: 100Mi}}\n"
    )
}

/// A tracefs instance of our own recording the kernel's
/// `cgroup:cgroup_attach_task` event: one line per process moved into a
/// cgroup by a write to cgroup.procs (or cgroup.threads). A process born in
/// its cgroup by clone3 CLONE_INTO_CGROUP makes none. Removed when dropped.
struct AttachTrace {
    instance: PathBuf,
}

impl AttachTrace {
    fn start() -> AttachTrace {
        let tracing = Path::new("/sys/kernel/tracing");
        if !tracing.join("instances").is_dir() {
            nix::mount::mount(
                Some("tracefs"),
                tracing,
                Some("tracefs"),
                nix::mount::MsFlags::empty(),
                None::<&str>,
            )
            .expect("mount tracefs on /sys/kernel/tracing");
        }
        let instance = tracing.join(format!("instances/podvisor-it-{}", std::process::id()));
        std::fs::create_dir(&instance)
            .unwrap_or_else(|e| panic!("make {}: {e}", instance.display()));
        let trace = AttachTrace { instance };
        let enable = trace
            .instance
            .join("events/cgroup/cgroup_attach_task/enable");
        std::fs::write(&enable, "1").unwrap_or_else(|e| panic!("write {}: {e}", enable.display()));
        trace
    }

    /// The `dst_path=` of every attach recorded so far.
    fn destinations(&self) -> Vec<String> {
        read(&self.instance.join("trace"))
            .lines()
            .filter(|l| l.contains("cgroup_attach_task:"))
            .filter_map(|l| l.split(" dst_path=").nth(1))
            .filter_map(|rest| rest.split(' ').next())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for AttachTrace {
    fn drop(&mut self) {
        let _ = std::fs::write(
            self.instance
                .join("events/cgroup/cgroup_attach_task/enable"),
            "0",
        );
        let _ = std::fs::remove_dir(&self.instance);
    }
}

/// The tracer sees a migration: a process moved into a scratch cgroup by a
/// write to cgroup.procs is recorded (so an empty record means something).
fn assert_trace_sees_a_migration(trace: &AttachTrace) {
    let scratch =
        Path::new("/sys/fs/cgroup").join(format!("podvisor-it-trace-{}", std::process::id()));
    std::fs::create_dir(&scratch).unwrap_or_else(|e| panic!("make {}: {e}", scratch.display()));
    let mut sleeper = std::process::Command::new(BUSYBOX)
        .args(["sleep", "30"])
        .spawn()
        .expect("spawn busybox sleep");
    std::fs::write(scratch.join("cgroup.procs"), sleeper.id().to_string())
        .expect("move the sleeper into the scratch cgroup");
    let seen = trace
        .destinations()
        .iter()
        .any(|d| d.ends_with(&format!("/podvisor-it-trace-{}", std::process::id())));
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    std::fs::remove_dir(&scratch).unwrap_or_else(|e| panic!("remove {}: {e}", scratch.display()));
    assert!(
        seen,
        "the cgroup_attach_task trace missed a cgroup.procs write: {:?}",
        trace.destinations()
    );
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
    let trace = AttachTrace::start();
    assert_trace_sees_a_migration(&trace);
    let pod = RunningPod::start(&name, &manifest(&name), options);
    pod.wait_running(Duration::from_secs(60));
    let pod_dir = pod.cgroup_dir("");
    let web = pod_dir.join("containers/web");
    assert_eq!(read(&web.join("memory.max")), "104857600");
    assert_eq!(read(&web.join("cpu.max")), "50000 100000");
    // cpu.shares 102 (100m) in v2's weight scale: 1 + (102 - 2) * 9999 / 262142.
    assert_eq!(read(&web.join("cpu.weight")), "4");
    // kubelet's podPidsLimit on the pod's cgroup (--pod-pids-limit, 4096).
    assert_eq!(read(&pod_dir.join("pids.max")), "4096");
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
    // The OOM-killed hog was started again at once (the first restart has no
    // back-off): that instance, like every other process of the pod, was born
    // in its cgroup; nothing was moved into the pod's cgroups.
    pod.wait_status(Duration::from_secs(60), "hog running again", |s| {
        RunningPod::container(s, "hog")["state"]["running"].is_object()
    });
    let key = pod.id().key();
    let moved: Vec<String> = trace
        .destinations()
        .into_iter()
        .filter(|d| d.contains(&key))
        .collect();
    assert_eq!(
        moved,
        Vec::<String>::new(),
        "processes migrated into the pod's cgroups"
    );

    // The container's own view: a private cgroup namespace rooted at its
    // cgroup, which is mounted read-only with its own limit in it.
    let view = wait_until(Duration::from_secs(30), || {
        let log = pod.log("view", 0);
        log.contains("view-done").then_some(log)
    })
    .unwrap_or_else(|| panic!("no view output; log: {:?}", pod.log("view", 0)));
    let view: Vec<&str> = view
        .lines()
        .map(|l| l.splitn(4, ' ').nth(3).unwrap_or(""))
        .collect();
    assert!(
        view.contains(&"0::/"),
        "/proc/self/cgroup in the container: {view:?}"
    );
    let mount = view
        .iter()
        .find(|l| l.contains(" /sys/fs/cgroup ") && l.contains(" - cgroup2 "))
        .unwrap_or_else(|| panic!("no cgroup2 on /sys/fs/cgroup: {view:?}"));
    let options = mount.split(' ').nth(5).unwrap_or("");
    assert!(
        options.split(',').any(|o| o == "ro"),
        "the container's cgroup2 is not read-only: {mount}"
    );
    assert!(view.contains(&"memory.max=104857600"), "{view:?}");
    assert!(
        view.iter().any(|l| l.contains("Read-only file system")) && view.contains(&"mkdir-refused"),
        "mkdir in the container's cgroup2: {view:?}"
    );

    let state_dir = pod.state_dir();
    let (status, _, output) = pod.stop(Signal::SIGTERM, Duration::from_secs(30));
    assert!(status.success(), "{status}\n{output}");
    assert_eq!(leftovers(&name, &state_dir), Vec::<String>::new());
}
