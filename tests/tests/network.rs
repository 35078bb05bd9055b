//! The sandbox IP (issue: CNI networking): it outlives container restarts,
//! a dead pause gets a new sandbox and releases the old address, a killed
//! supervisor leaks nothing on the next run, hostNetwork and hostPort.
//!
//! Traffic goes only to loopback and to the pods' own addresses on the
//! example bridge (10.222.0.0/24).

use it::images::BUSYBOX as IMAGE;
use it::pod::{RunOptions, RunningPod, example_cni_dir, leftovers, unique_name};
use it::{http_get, ns_inode, require, signal, wait_until};
use nix::sys::signal::Signal;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const BUSYBOX: &str = "/bin/busybox";
const HOST_LOCAL_STORE: &str = "/var/lib/cni/networks/podvisor";

fn prerequisites() -> bool {
    it::prerequisite(it::is_root(), "root (uid 0)")
        && it::prerequisite(Path::new(BUSYBOX).is_file(), "busybox-static")
        && it::prerequisite(
            Path::new("/usr/lib/cni/bridge").is_file()
                || Path::new("/opt/cni/bin/bridge").is_file(),
            "CNI plugins (containernetworking-plugins)",
        )
}

fn cni(args: &[&str]) -> RunOptions {
    RunOptions {
        cni_conf_dir: Some(example_cni_dir()),
        args: args.iter().map(|a| a.to_string()).collect(),
        ..RunOptions::default()
    }
}

fn pod_ip(status: &Value) -> String {
    status["status"]["podIP"]
        .as_str()
        .unwrap_or_else(|| panic!("no podIP in {status:#}"))
        .to_string()
}

fn sleeper(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: app\n    image: {IMAGE}\n    command: [{BUSYBOX}, sleep, \"3600\"]\n  - name: other\n    image: {IMAGE}\n    command: [{BUSYBOX}, sleep, \"3600\"]\n"
    )
}

fn restart_count(status: &Value, container: &str) -> u64 {
    RunningPod::container(status, container)["restartCount"]
        .as_u64()
        .unwrap_or(0)
}

fn leased(ip: &str) -> bool {
    Path::new(HOST_LOCAL_STORE).join(ip).exists()
}

#[test]
fn the_ip_pause_and_netns_survive_twenty_container_kills() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("ip20");
    let pod = RunningPod::start(
        &name,
        &sleeper(&name),
        cni(&["--backoff-initial", "0", "--backoff-max", "0"]),
    );
    let status = pod.wait_running(Duration::from_secs(20));
    let ip = pod_ip(&status);
    let pause = pod.pause_pid().expect("pause");
    let netns = ns_inode(pause, "net").unwrap();
    for kill in 1..=20 {
        let pid = wait_until(Duration::from_secs(10), || {
            pod.status()
                .filter(|s| {
                    restart_count(s, "app") == kill - 1
                        && RunningPod::container(s, "app")["state"]["running"].is_object()
                })
                .and_then(|_| pod.container_pid("app"))
        })
        .unwrap_or_else(|| panic!("app not running before kill {kill}\n{}", pod.output()));
        signal(pid, Signal::SIGKILL);
        let status = pod.wait_status(Duration::from_secs(10), "app restarted", |s| {
            restart_count(s, "app") == kill
        });
        assert_eq!(pod_ip(&status), ip, "kill {kill}");
        assert_eq!(pod.pause_pid(), Some(pause), "kill {kill}");
        assert_eq!(ns_inode(pause, "net"), Some(netns), "kill {kill}");
        // The container is in pause's network namespace.
    }
    let status = pod.wait_running(Duration::from_secs(10));
    let app = pod.container_pid("app").unwrap();
    assert_eq!(ns_inode(app, "net"), Some(netns));
    assert_eq!(restart_count(&status, "app"), 20);
    assert_eq!(restart_count(&status, "other"), 0);
}

#[test]
fn a_dead_pause_gets_a_new_sandbox_and_releases_the_old_address() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("repause");
    let pod = RunningPod::start(&name, &sleeper(&name), cni(&["--backoff-initial", "0"]));
    let status = pod.wait_running(Duration::from_secs(20));
    let old_ip = pod_ip(&status);
    let old_pause = pod.pause_pid().expect("pause");
    assert!(leased(&old_ip));
    signal(old_pause, Signal::SIGKILL);
    let status = pod.wait_status(
        Duration::from_secs(30),
        "containers back in a new sandbox",
        |s| {
            restart_count(s, "app") >= 1
                && restart_count(s, "other") >= 1
                && s["status"]["containerStatuses"]
                    .as_array()
                    .is_some_and(|a| a.iter().all(|c| c["state"]["running"].is_object()))
        },
    );
    let new_pause = pod.pause_pid().expect("a new pause");
    assert_ne!(new_pause, old_pause);
    let new_ip = pod_ip(&status);
    if new_ip != old_ip {
        assert!(!leased(&old_ip), "the old address {old_ip} is still leased");
    }
    assert!(leased(&new_ip));
    // The containers run in the new sandbox.
    let app = pod.container_pid("app").unwrap();
    assert_eq!(ns_inode(app, "net"), ns_inode(new_pause, "net"));
    let events = std::fs::read_to_string(pod.state_dir().join("events.json")).unwrap();
    assert!(events.contains("SandboxChanged"), "{events}");
    let state_dir = pod.state_dir();
    let (code, _, output) = pod.stop(Signal::SIGTERM, Duration::from_secs(20));
    assert_eq!(code.code(), Some(0), "{output}");
    assert!(!leased(&new_ip));
    assert_eq!(leftovers(&name, &state_dir), Vec::<String>::new());
}

#[test]
fn after_a_sigkilled_supervisor_the_next_run_cleans_up() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("crash");
    // Both runs use the same state, log and CNI cache dirs.
    let dir = tempfile::tempdir().unwrap();
    let first = RunningPod::start_in(&name, &sleeper(&name), cni(&[]), dir.path());
    let status = first.wait_running(Duration::from_secs(20));
    let ip = pod_ip(&status);
    let pause = first.pause_pid().unwrap();
    let old_veth = host_veth(&name).expect("the pod's veth on the host");
    first.signal(Signal::SIGKILL);
    wait_until(Duration::from_secs(5), || {
        it::proc_stat(first.pid())
            .is_none_or(|p| p.state == 'Z')
            .then_some(())
    });
    // Its containers and pause die with it (parent-death signal); the
    // address, the netns file and the cgroups are left for the next run.
    let mut second = RunningPod::start_in(&name, &sleeper(&name), cni(&[]), dir.path());
    drop(first);
    // status.json still shows the first run until the second is up.
    wait_until(Duration::from_secs(20), || {
        second.output().contains("sandbox up").then_some(())
    })
    .unwrap_or_else(|| panic!("second run did not start:\n{}", second.output()));
    let status = second.wait_running(Duration::from_secs(20));
    assert!(
        second.output().contains("previous run"),
        "{}",
        second.output()
    );
    assert!(
        it::proc_stat(pause).is_none_or(|p| p.state == 'Z'),
        "the old pause is gone"
    );
    let new_ip = pod_ip(&status);
    if new_ip != ip {
        assert!(!leased(&ip), "the old address {ip} leaked");
    }
    assert!(
        !Path::new("/sys/class/net").join(&old_veth).exists(),
        "the first run's veth {old_veth} is left"
    );
    assert_ne!(host_veth(&name), Some(old_veth));
    let state_dir = second.state_dir();
    second.signal(Signal::SIGTERM);
    let code = second.wait_exit(Duration::from_secs(20));
    assert_eq!(code.code(), Some(0), "{}", second.output());
    assert!(!leased(&new_ip));
    assert_eq!(leftovers(&name, &state_dir), Vec::<String>::new());
}

/// The host side of the pod's veth: the interface whose index is eth0's
/// peer link in the pod's network namespace.
fn host_veth(pod: &str) -> Option<String> {
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("default_{pod}"),
            "cat",
            "/sys/class/net/eth0/iflink",
        ])
        .output()
        .ok()?;
    let peer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    std::fs::read_dir("/sys/class/net/podvisor0/brif")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|name| {
            std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
                .is_ok_and(|i| i.trim() == peer)
        })
}

#[test]
fn a_host_network_pod_sees_the_host_interfaces() {
    require!(it::is_root(), "root (uid 0)");
    require!(Path::new(BUSYBOX).is_file(), "busybox-static");
    let name = unique_name("hostnet");
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  hostNetwork: true\n  restartPolicy: Never\n  containers:\n  - name: look\n    image: {IMAGE}\n    command: [{BUSYBOX}, sh, -c, \"{BUSYBOX} readlink /proc/self/ns/net; {BUSYBOX} ls /sys/class/net\"]\n"
    );
    let mut pod = RunningPod::start(&name, &manifest, RunOptions::default());
    let code = pod.wait_exit(Duration::from_secs(20));
    assert_eq!(code.code(), Some(0), "{}", pod.output());
    let log = pod.log("look", 0);
    let host_netns = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert!(log.contains(&host_netns.display().to_string()), "{log}");
    // Other pods' veths come and go while this runs: compare the rest.
    for iface in std::fs::read_dir("/sys/class/net").unwrap().flatten() {
        let iface = iface.file_name().to_string_lossy().into_owned();
        if iface.starts_with("veth") {
            continue;
        }
        assert!(log.contains(&iface), "{iface} not seen by the pod:\n{log}");
    }
}

#[test]
fn a_host_port_reaches_the_pod_on_loopback() {
    if !prerequisites() {
        return;
    }
    require!(
        it::have_command("iptables"),
        "iptables (for the portmap plugin)"
    );
    let name = unique_name("hostport");
    let host_port = 20000 + (std::process::id() % 20000) as u16;
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: web\n    image: {IMAGE}\n    command: [{BUSYBOX}, sh, -c, \"echo through-the-host-port > /tmp/index.html; exec {BUSYBOX} httpd -f -p 8080 -h /tmp\"]\n    ports:\n    - {{containerPort: 8080, hostPort: {host_port}}}\n"
    );
    let pod = RunningPod::start(&name, &manifest, cni(&[]));
    pod.wait_running(Duration::from_secs(20));
    let page = wait_until(Duration::from_secs(10), || http_get("127.0.0.1", host_port))
        .unwrap_or_else(|| panic!("127.0.0.1:{host_port} did not answer\n{}", pod.output()));
    assert!(page.contains("through-the-host-port"), "{page}");
    let (code, _, output) = pod.stop(Signal::SIGTERM, Duration::from_secs(20));
    assert_eq!(code.code(), Some(0), "{output}");
    assert!(
        http_get("127.0.0.1", host_port).is_none(),
        "the port mapping outlived the pod"
    );
}
