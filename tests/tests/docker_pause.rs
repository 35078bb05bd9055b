//! The pause image used the way dockershim used it: a workload container
//! joins pause's network, IPC and PID namespaces; pause is its PID 1, reaps
//! its orphans, and `docker stop` ends it cleanly with exit code 0.

use it::{
    DockerCleanup, children_of, docker, docker_available, docker_context, ns_inode, require,
    require_root, wait_until,
};
use std::path::Path;
use std::time::{Duration, Instant};

#[test]
fn pause_image_is_a_dockershim_sandbox() {
    require_root!();
    require!(docker_available(), "a Docker engine (docker version)");
    require!(Path::new("/bin/busybox").is_file(), "busybox-static");
    let tag = std::process::id();
    let pause_image = format!("podvisor-test/pause:{tag}");
    let busybox_image = format!("podvisor-test/busybox:{tag}");
    let sandbox = format!("podvisor-test-pause-{tag}");
    let workload = format!("podvisor-test-workload-{tag}");
    let mut cleanup = DockerCleanup::default();
    cleanup.containers = vec![workload.clone(), sandbox.clone()];
    cleanup.images = vec![pause_image.clone(), busybox_image.clone()];

    let context = docker_context(&[("busybox", Path::new("/bin/busybox"))]);
    busybox_image_from(context.path(), &busybox_image);
    docker([
        "build",
        "-q",
        "--target",
        "pause",
        "-t",
        &pause_image,
        context.path().to_str().unwrap(),
    ]);

    // The sandbox, as kubelet's dockershim started it.
    docker([
        "run",
        "-d",
        "--network",
        "none",
        "--ipc",
        "shareable",
        "--name",
        &sandbox,
        &pause_image,
    ]);
    let pause_pid: i32 = docker(["inspect", "-f", "{{.State.Pid}}", &sandbox])
        .parse()
        .unwrap();
    assert_eq!(
        it::proc_status_field(pause_pid, "Uid")
            .unwrap()
            .split_whitespace()
            .next(),
        Some("65535"),
        "the image runs pause as 65535"
    );

    // A workload joined to it that orphans 50 processes and keeps running.
    let join = format!("container:{sandbox}");
    docker([
        "run",
        "-d",
        "--name",
        &workload,
        "--network",
        &join,
        "--ipc",
        &join,
        "--pid",
        &join,
        &busybox_image,
        "sh",
        "-c",
        "i=0; while [ $i -lt 50 ]; do (/bin/busybox sleep 2 &); i=$((i+1)); done; exec /bin/busybox sleep 300",
    ]);
    let workload_pid: i32 = docker(["inspect", "-f", "{{.State.Pid}}", &workload])
        .parse()
        .unwrap();
    for kind in ["net", "ipc", "pid"] {
        assert_eq!(
            ns_inode(pause_pid, kind),
            ns_inode(workload_pid, kind),
            "{kind} namespace differs"
        );
    }
    let init = docker(["exec", &workload, "/bin/busybox", "cat", "/proc/1/cmdline"]);
    assert_eq!(
        init.trim_end_matches('\0'),
        "/pause",
        "pause is PID 1 of the pod"
    );

    // The orphans come to pause, and pause reaps them all.
    let adopted = wait_until(Duration::from_secs(5), || {
        let n = children_of(pause_pid).len();
        (n > 0).then_some(n)
    });
    assert!(adopted.is_some(), "no orphan was reparented to pause");
    let reaped = wait_until(Duration::from_secs(15), || {
        children_of(pause_pid).is_empty().then_some(())
    });
    let zombies = children_of(pause_pid)
        .iter()
        .filter(|p| p.state == 'Z')
        .count();
    assert!(reaped.is_some(), "{zombies} zombies left under pause");

    // docker stop sends SIGTERM: pause exits 0 at once, no SIGKILL needed.
    let started = Instant::now();
    docker(["stop", &sandbox]);
    let took = started.elapsed();
    let code = docker(["inspect", "-f", "{{.State.ExitCode}}", &sandbox]);
    assert_eq!(code, "0", "pause's exit code on docker stop");
    assert!(took < Duration::from_secs(5), "docker stop took {took:?}");
    let logs = std::process::Command::new("docker")
        .args(["logs", &sandbox])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&logs.stderr),
        "Shutting down, got signal: Terminated\n"
    );
}

/// A FROM scratch image holding only /bin/busybox (Debian's busybox-static).
fn busybox_image_from(context: &Path, image: &str) {
    let dockerfile = context.join("busybox.Dockerfile");
    std::fs::write(
        &dockerfile,
        "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n",
    )
    .unwrap();
    docker([
        "build",
        "-q",
        "-f",
        dockerfile.to_str().unwrap(),
        "-t",
        image,
        context.to_str().unwrap(),
    ]);
}
