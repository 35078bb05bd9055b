//! seccomp and AppArmor on the real kernel: a default container runs under
//! containerd's default profile (`Seccomp: 2`), which refuses
//! unshare(CLONE_NEWUSER), keyctl and AF_VSOCK sockets with EPERM and
//! clone3 with ENOSYS while getpid works; Unconfined and
//! `--seccomp-default=false` run without a filter; a Localhost profile
//! from `--seccomp-profile-root` denies mkdir; a missing or invalid one
//! is CreateContainerError and the container never runs; exec probes run
//! under the container's filter; a Localhost AppArmor profile on this host
//! (no AppArmor) is refused before anything starts.

use it::images::{BUSYBOX, binary_image};
use it::pod::{RunOptions, RunningPod, unique_name};
use it::{proc_status_field, require, require_root, wait_until};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

fn manifest(name: &str, containers: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n{containers}"
    )
}

fn seccomp_of(pod: &RunningPod, container: &str) -> (String, u32) {
    let pid = wait_until(TIMEOUT, || pod.container_pid(container))
        .unwrap_or_else(|| panic!("{container} has no process\n{}", pod.output()));
    let mode = proc_status_field(pid, "Seccomp").expect("Seccomp field");
    let filters = proc_status_field(pid, "Seccomp_filters")
        .and_then(|f| f.parse().ok())
        .unwrap_or(0);
    (mode, filters)
}

fn log_line(pod: &RunningPod, container: &str, needle: &str) -> String {
    wait_until(TIMEOUT, || {
        let log = pod.log(container, 0);
        log.lines().find(|l| l.contains(needle)).map(str::to_string)
    })
    .unwrap_or_else(|| panic!("no {needle:?} in {container}'s log\n{}", pod.output()))
}

fn stop(pod: RunningPod) {
    let (status, _, output) = pod.stop(nix::sys::signal::Signal::SIGTERM, TIMEOUT);
    assert!(status.success(), "{status}: {output}");
}

#[test]
fn runtime_default_filters_a_default_container_and_unconfined_does_not() {
    require_root!();
    let probe = binary_image("seccomp-probe");
    let name = unique_name("seccomp-default");
    let containers = format!(
        "  - name: confined\n    image: {img}\n    command: [{bin}, sleep]\n  - name: unconfined\n    image: {img}\n    command: [{bin}, sleep]\n    securityContext:\n      seccompProfile: {{type: Unconfined}}\n",
        img = probe.reference,
        bin = probe.path
    );
    let pod = RunningPod::start(&name, &manifest(&name, &containers), RunOptions::default());
    pod.wait_running(TIMEOUT);
    let (mode, filters) = seccomp_of(&pod, "confined");
    assert_eq!(mode, "2", "a default container is filtered");
    assert!(filters >= 1, "Seccomp_filters {filters}");
    let line = log_line(&pod, "confined", "seccomp-probe:");
    for want in [
        "getpid=ok",
        "keyctl=EPERM",
        "socket_vsock=EPERM",
        "clone3=ENOSYS",
        "unshare_user=EPERM",
    ] {
        assert!(line.contains(want), "{want} not in {line:?}");
    }
    let (mode, _) = seccomp_of(&pod, "unconfined");
    assert_eq!(mode, "0", "Unconfined has no filter");
    let line = log_line(&pod, "unconfined", "seccomp-probe:");
    // Without the filter the same calls reach the kernel.
    assert!(line.contains("keyctl=ok"), "{line}");
    assert!(line.contains("clone3=EINVAL"), "{line}");
    assert!(!line.contains("socket_vsock=EPERM"), "{line}");
    stop(pod);
}

#[test]
fn exec_probes_run_under_the_containers_filter() {
    require_root!();
    let name = unique_name("seccomp-probe");
    // Ready only if the probe's own process is filtered (Seccomp: 2), and
    // the Unconfined one only if it is not.
    let containers = format!(
        "  - name: confined\n    image: {BUSYBOX}\n    command: [sleep, '3600']\n    readinessProbe:\n      exec: {{command: [sh, -c, 'grep -q \"^Seccomp:.2\" /proc/self/status']}}\n      periodSeconds: 1\n  - name: unconfined\n    image: {BUSYBOX}\n    command: [sleep, '3600']\n    securityContext:\n      seccompProfile: {{type: Unconfined}}\n    readinessProbe:\n      exec: {{command: [sh, -c, 'grep -q \"^Seccomp:.0\" /proc/self/status']}}\n      periodSeconds: 1\n"
    );
    let pod = RunningPod::start(&name, &manifest(&name, &containers), RunOptions::default());
    pod.wait_status(TIMEOUT, "both ready", |s| {
        RunningPod::container(s, "confined")["ready"] == true
            && RunningPod::container(s, "unconfined")["ready"] == true
    });
    stop(pod);
}

#[test]
fn seccomp_default_false_makes_unset_unconfined() {
    require_root!();
    let name = unique_name("seccomp-flag");
    let containers = format!(
        "  - name: unset\n    image: {BUSYBOX}\n    command: [sleep, '3600']\n  - name: asked\n    image: {BUSYBOX}\n    command: [sleep, '3600']\n    securityContext:\n      seccompProfile: {{type: RuntimeDefault}}\n"
    );
    let options = RunOptions {
        args: vec!["--seccomp-default=false".into()],
        ..RunOptions::default()
    };
    let pod = RunningPod::start(&name, &manifest(&name, &containers), options);
    pod.wait_running(TIMEOUT);
    assert_eq!(seccomp_of(&pod, "unset").0, "0");
    assert_eq!(
        seccomp_of(&pod, "asked").0,
        "2",
        "an explicit RuntimeDefault stays"
    );
    stop(pod);
}

#[test]
fn a_localhost_profile_from_the_profile_root_denies_mkdir() {
    require_root!();
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("profiles")).unwrap();
    std::fs::write(
        root.path().join("profiles/deny-mkdir.json"),
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let name = unique_name("seccomp-local");
    let containers = format!(
        "  - name: c\n    image: {BUSYBOX}\n    command: [sh, -c, 'mkdir /tmp/made; echo mkdir-rc=$?; touch /tmp/file && echo touch-ok; sleep 3600']\n    securityContext:\n      seccompProfile: {{type: Localhost, localhostProfile: profiles/deny-mkdir.json}}\n"
    );
    let options = RunOptions {
        args: vec![
            "--seccomp-profile-root".into(),
            root.path().display().to_string(),
        ],
        ..RunOptions::default()
    };
    let pod = RunningPod::start(&name, &manifest(&name, &containers), options);
    pod.wait_running(TIMEOUT);
    assert_eq!(seccomp_of(&pod, "c").0, "2");
    let rc = log_line(&pod, "c", "mkdir-rc=");
    assert!(rc.ends_with("mkdir-rc=1"), "{rc}");
    log_line(&pod, "c", "touch-ok");
    let log = pod.log("c", 0);
    assert!(log.contains("Operation not permitted"), "EPERM: {log}");
    stop(pod);
}

#[test]
fn a_missing_or_invalid_localhost_profile_is_create_container_error() {
    require_root!();
    let root = tempfile::tempdir().unwrap();
    std::fs::write(
        root.path().join("bad.json"),
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_SOMETIMES"}]}"#,
    )
    .unwrap();
    let name = unique_name("seccomp-bad");
    let body = |profile: &str| {
        format!(
            "    image: {BUSYBOX}\n    command: [sh, -c, 'echo ran; sleep 3600']\n    securityContext:\n      seccompProfile: {{type: Localhost, localhostProfile: {profile}}}\n"
        )
    };
    let containers = format!(
        "  - name: missing\n{}  - name: invalid\n{}",
        body("nope/missing.json"),
        body("bad.json")
    );
    let options = RunOptions {
        args: vec![
            "--seccomp-profile-root".into(),
            root.path().display().to_string(),
        ],
        ..RunOptions::default()
    };
    let pod = RunningPod::start(&name, &manifest(&name, &containers), options);
    for (container, wants) in [
        ("missing", vec!["nope/missing.json", "seccompProfile"]),
        (
            "invalid",
            vec!["bad.json", "syscalls[0].action", "SCMP_ACT_SOMETIMES"],
        ),
    ] {
        let status = pod.wait_status(TIMEOUT, &format!("{container} CreateContainerError"), |s| {
            RunningPod::container(s, container)["state"]["waiting"]["reason"]
                == "CreateContainerError"
        });
        let c = RunningPod::container(&status, container);
        let message = c["state"]["waiting"]["message"]
            .as_str()
            .unwrap_or_default();
        for want in wants {
            assert!(message.contains(want), "{want} not in {message:?}");
        }
        assert_eq!(c["restartCount"], 0);
        assert!(
            pod.container_pid(container).is_none(),
            "{container} never ran"
        );
        assert!(
            !pod.log(container, 0).contains("ran"),
            "{container} never ran"
        );
    }
    stop(pod);
}

#[test]
fn a_localhost_apparmor_profile_is_refused_on_a_host_without_apparmor() {
    require_root!();
    let host = container::apparmor::Host::new();
    require!(!host.enabled(), "a host without AppArmor");
    let name = unique_name("apparmor-local");
    let containers = format!(
        "  - name: c\n    image: {BUSYBOX}\n    command: [sleep, '3600']\n    securityContext:\n      appArmorProfile: {{type: Localhost, localhostProfile: k8s-custom}}\n"
    );
    let mut pod = RunningPod::start(&name, &manifest(&name, &containers), RunOptions::default());
    let status = pod.wait_exit(TIMEOUT);
    assert_eq!(status.code(), Some(1), "{}", pod.output());
    let output = pod.output();
    assert!(
        output.contains("spec.containers[0].securityContext.appArmorProfile")
            && output.contains("k8s-custom")
            && output.contains("AppArmor is not enabled"),
        "{output}"
    );
    assert!(pod.pause_pid().is_none(), "nothing started");

    // RuntimeDefault is a warning there, and the pod runs.
    let name = unique_name("apparmor-default");
    let containers = format!(
        "  - name: c\n    image: {BUSYBOX}\n    command: [sleep, '3600']\n    securityContext:\n      appArmorProfile: {{type: RuntimeDefault}}\n"
    );
    let pod = RunningPod::start(&name, &manifest(&name, &containers), RunOptions::default());
    pod.wait_running(TIMEOUT);
    assert!(
        pod.output()
            .contains("RuntimeDefault AppArmor profile not applied"),
        "{}",
        pod.output()
    );
    stop(pod);
}
