//! Credentials and the pod pids limit (issue 14), as root on the real
//! kernel through `supervisor run`: a `runAsUser: 1000` container has no
//! capability but its bounding set (containerd's `WithoutAmbientCaps`), so
//! reading a root-only file, `chown` and `setuid(0)` fail; a root container
//! keeps the default set, without ambient ones; pause runs as 65535:65535
//! without any capability and with no_new_privs; the exec-probe waiter has
//! exactly its container's credentials; a fork bomb stops at
//! `--pod-pids-limit`, and the rest of the pod lives on.

use it::images::{BUSYBOX as IMAGE, binary_image};
use it::pod::{RunOptions, RunningPod, unique_name};
use it::{children_of, proc_stat, proc_status_field, wait_until};
use std::path::Path;
use std::time::Duration;

const BUSYBOX: &str = "/bin/busybox";

/// containerd's default capability set (CHOWN DAC_OVERRIDE FSETID FOWNER
/// MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP NET_BIND_SERVICE SYS_CHROOT
/// KILL AUDIT_WRITE), as /proc/PID/status prints it.
const DEFAULT_CAPS: &str = "00000000a80425fb";
const NO_CAPS: &str = "0000000000000000";

const EPERM: i32 = 1;
const EAGAIN: i32 = 11;

fn prerequisites() -> bool {
    it::prerequisite(it::is_root(), "root (uid 0)")
        && it::prerequisite(
            Path::new(BUSYBOX).is_file(),
            "busybox-static at /bin/busybox",
        )
}

/// The credential fields of /proc/PID/status.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Creds {
    uid: String,
    gid: String,
    groups: String,
    inh: String,
    prm: String,
    eff: String,
    bnd: String,
    amb: String,
    no_new_privs: String,
}

fn creds(pid: i32) -> Creds {
    let field =
        |name: &str| proc_status_field(pid, name).unwrap_or_else(|| panic!("{name} of pid {pid}"));
    Creds {
        uid: field("Uid"),
        gid: field("Gid"),
        groups: field("Groups"),
        inh: field("CapInh"),
        prm: field("CapPrm"),
        eff: field("CapEff"),
        bnd: field("CapBnd"),
        amb: field("CapAmb"),
        no_new_privs: field("NoNewPrivs"),
    }
}

fn all_ids(id: u32) -> String {
    format!("{id}\t{id}\t{id}\t{id}")
}

/// argv of a process, NUL-separated fields as a vector.
fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn wait_log(pod: &RunningPod, container: &str, needle: &str) -> String {
    wait_until(Duration::from_secs(20), || {
        let log = pod.log(container, 0);
        log.contains(needle).then_some(log)
    })
    .unwrap_or_else(|| {
        panic!(
            "no {needle:?} in the log of {container}:\n{}\noutput:\n{}",
            pod.log(container, 0),
            pod.output()
        )
    })
}

#[test]
fn a_non_root_container_has_no_capabilities_and_no_root_rights() {
    if !prerequisites() {
        return;
    }
    let check = binary_image("isolation-check");
    let name = unique_name("noncaps");
    // A root init container leaves a root-only file and a file of uid
    // 1000 in the emptyDir; the uid 1000 containers try to read the first,
    // give the second to root, and setuid(0).
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: prepare
    image: {IMAGE}
    command: [{BUSYBOX}, sh, -c, "echo top-secret > /data/secret && chmod 600 /data/secret && touch /data/mine && chown 1000:1000 /data/mine"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  containers:
  - name: user
    image: {IMAGE}
    securityContext: {{runAsUser: 1000, runAsGroup: 1000}}
    command: [{BUSYBOX}, sh, -c, "{BUSYBOX} cat /data/secret; echo cat=$?; {BUSYBOX} chown 0 /data/mine; echo chown=$?; exec {BUSYBOX} sleep 3600"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  - name: setuid
    image: {image}
    securityContext: {{runAsUser: 1000, runAsGroup: 1000}}
    command: [{path}, setuid0]
  - name: root
    image: {IMAGE}
    command: [{BUSYBOX}, sleep, "3600"]
  volumes:
  - name: data
    emptyDir: {{}}
"#,
        image = check.reference,
        path = check.path,
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    let log = wait_log(&pod, "user", "chown=");
    assert!(
        !log.contains("top-secret"),
        "uid 1000 read a 0600 root file:\n{log}"
    );
    assert!(
        log.contains("Permission denied") && log.contains("cat=1"),
        "{log}"
    );
    assert!(
        log.contains("Operation not permitted") && log.contains("chown=1"),
        "{log}"
    );
    let setuid = wait_log(&pod, "setuid", "setuid(0):");
    assert!(
        setuid.contains(&format!("setuid(0): errno {EPERM}")),
        "{setuid}"
    );

    // The processes themselves, as the kernel sees them.
    let user = wait_until(Duration::from_secs(10), || {
        pod.container_pid("user")
            .filter(|pid| cmdline(*pid).iter().any(|a| a == "3600"))
    })
    .expect("the user container's sleep");
    let user_creds = creds(user);
    assert_eq!(user_creds.uid, all_ids(1000), "{user_creds:?}");
    assert_eq!(user_creds.gid, all_ids(1000), "{user_creds:?}");
    for (set, value) in [
        ("CapInh", &user_creds.inh),
        ("CapPrm", &user_creds.prm),
        ("CapEff", &user_creds.eff),
        ("CapAmb", &user_creds.amb),
    ] {
        assert_eq!(value, NO_CAPS, "{set} of a runAsUser 1000 container");
    }
    assert_eq!(user_creds.bnd, DEFAULT_CAPS, "{user_creds:?}");

    let root = pod.container_pid("root").expect("the root container");
    let root_creds = creds(root);
    assert_eq!(root_creds.uid, all_ids(0), "{root_creds:?}");
    assert_eq!(root_creds.eff, DEFAULT_CAPS, "{root_creds:?}");
    assert_eq!(root_creds.prm, DEFAULT_CAPS, "{root_creds:?}");
    assert_eq!(root_creds.bnd, DEFAULT_CAPS, "{root_creds:?}");
    assert_eq!(root_creds.inh, NO_CAPS, "{root_creds:?}");
    assert_eq!(root_creds.amb, NO_CAPS, "{root_creds:?}");
    pod.stop_clean();
}

#[test]
fn pause_runs_as_65535_without_capabilities_under_the_default_pids_limit() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("pausecreds");
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {IMAGE}\n    command: [{BUSYBOX}, sleep, \"3600\"]\n"
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    pod.wait_running(Duration::from_secs(20));
    let pause = pod.pause_pid().expect("pause runs");
    let c = creds(pause);
    assert_eq!(c.uid, all_ids(65535), "{c:?}");
    assert_eq!(c.gid, all_ids(65535), "{c:?}");
    assert_eq!(c.groups, "", "{c:?}");
    for (set, value) in [
        ("CapInh", &c.inh),
        ("CapPrm", &c.prm),
        ("CapEff", &c.eff),
        ("CapBnd", &c.bnd),
        ("CapAmb", &c.amb),
    ] {
        assert_eq!(value, NO_CAPS, "{set} of pause");
    }
    assert_eq!(c.no_new_privs, "1", "{c:?}");
    // It still holds the namespaces: the container is in pause's network
    // namespace.
    let main = pod.container_pid("main").expect("main runs");
    assert_eq!(it::ns_inode(main, "net"), it::ns_inode(pause, "net"));
    // The default --pod-pids-limit on the pod's cgroup.
    let max = pod.cgroup_dir("pids").join("pids.max");
    assert_eq!(
        std::fs::read_to_string(&max).unwrap().trim(),
        "4096",
        "{}",
        max.display()
    );
    // SIGTERM: pause exits 0 at teardown and nothing is left.
    pod.stop_clean();
}

#[test]
fn the_probe_waiter_has_its_containers_credentials() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("waitercreds");
    // Exec probes that sleep (a unique argument to find them) long past
    // the test; each runs under a waiter, our child, the probe's parent.
    let probe = |secs: u32| {
        format!(
            "    readinessProbe:\n      exec: {{command: [{BUSYBOX}, sleep, \"{secs}\"]}}\n      timeoutSeconds: 300\n      periodSeconds: 300\n"
        )
    };
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: user\n    image: {IMAGE}\n    securityContext: {{runAsUser: 1000, runAsGroup: 1000, allowPrivilegeEscalation: false, capabilities: {{drop: [NET_RAW]}}}}\n    command: [{BUSYBOX}, sleep, \"3600\"]\n{}  - name: root\n    image: {IMAGE}\n    command: [{BUSYBOX}, sleep, \"3600\"]\n{}",
        probe(771),
        probe(772)
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    pod.wait_running(Duration::from_secs(20));
    let supervisor = pod.pid();
    for (container, secs) in [("user", "771"), ("root", "772")] {
        let (waiter, program) = wait_until(Duration::from_secs(20), || {
            children_of(supervisor).into_iter().find_map(|waiter| {
                let program = children_of(waiter.pid)
                    .into_iter()
                    .find(|p| cmdline(p.pid).iter().any(|a| a == secs))?;
                Some((waiter.pid, program.pid))
            })
        })
        .unwrap_or_else(|| panic!("no exec probe of {container} running\n{}", pod.output()));
        assert_eq!(proc_stat(program).map(|p| p.ppid), Some(waiter));
        let main = pod.container_pid(container).expect("container runs");
        let expected = creds(main);
        assert_eq!(creds(waiter), expected, "the waiter of {container}'s probe");
        assert_eq!(creds(program), expected, "{container}'s probe");
        if container == "user" {
            assert_eq!(expected.uid, all_ids(1000), "{expected:?}");
            assert_eq!(expected.eff, NO_CAPS, "{expected:?}");
            assert_eq!(expected.prm, NO_CAPS, "{expected:?}");
            assert_eq!(expected.amb, NO_CAPS, "{expected:?}");
            // NET_RAW (13) dropped from the default set.
            assert_eq!(expected.bnd, "00000000a80405fb", "{expected:?}");
            assert_eq!(expected.no_new_privs, "1", "{expected:?}");
        } else {
            assert_eq!(expected.uid, all_ids(0), "{expected:?}");
            assert_eq!(expected.eff, DEFAULT_CAPS, "{expected:?}");
            assert_eq!(expected.amb, NO_CAPS, "{expected:?}");
            assert_eq!(expected.no_new_privs, "0", "{expected:?}");
        }
    }
    pod.stop_clean();
}

#[test]
fn a_fork_bomb_stops_at_the_pod_pids_limit() {
    if !prerequisites() {
        return;
    }
    let check = binary_image("isolation-check");
    let name = unique_name("forkbomb");
    const LIMIT: usize = 32;
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: steady\n    image: {IMAGE}\n    command: [{BUSYBOX}, sleep, \"3600\"]\n  - name: bomb\n    image: {image}\n    command: [{path}, forkbomb, \"4\"]\n",
        image = check.reference,
        path = check.path,
    );
    let pod = RunningPod::start(
        &name,
        &manifest,
        RunOptions {
            args: vec!["--pod-pids-limit".into(), LIMIT.to_string()],
            ..RunOptions::default()
        },
    );
    let steady_before =
        wait_until(Duration::from_secs(20), || pod.container_pid("steady")).expect("steady runs");
    let log = wait_log(&pod, "bomb", "fork: errno");
    assert!(
        log.contains(&format!("fork: errno {EAGAIN} after")),
        "fork must fail with EAGAIN:\n{log}"
    );
    let pids = pod.cgroup_dir("pids");
    let read = |file: &str| {
        std::fs::read_to_string(pids.join(file))
            .unwrap_or_else(|e| panic!("{}: {e}", pids.join(file).display()))
            .trim()
            .to_string()
    };
    assert_eq!(read("pids.max"), LIMIT.to_string());
    // The bomb holds its children for a while: the pod is at its limit.
    let current: usize = read("pids.current").parse().unwrap();
    assert!(current <= LIMIT, "pids.current {current} > {LIMIT}");
    assert!(current >= LIMIT - 2, "the bomb filled the pod: {current}");
    // The supervisor and the other container are fine.
    assert!(
        proc_stat(pod.pid()).is_some_and(|p| p.state != 'Z'),
        "{}",
        pod.output()
    );
    // The bomb ends (its children go with its pid namespace), and the pod
    // goes on with the steady container, unrestarted and able to fork.
    let status = pod.wait_status(Duration::from_secs(30), "the bomb ended", |s| {
        RunningPod::container(s, "bomb")["state"]["terminated"].is_object()
    });
    let steady = RunningPod::container(&status, "steady");
    assert!(steady["state"]["running"].is_object(), "{status:#}");
    assert_eq!(steady["restartCount"], 0, "{status:#}");
    assert_eq!(pod.container_pid("steady"), Some(steady_before));
    let after: usize = wait_until(Duration::from_secs(10), || {
        read("pids.current")
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= 3)
    })
    .expect("the bomb's processes are gone");
    assert!(after <= 3, "{after}");
    pod.stop_clean();
}
