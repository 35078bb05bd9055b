//! Lifecycle hooks and native sidecars end to end, as root on the real
//! kernel: real pods whose containers and hooks stamp what they do (name
//! and /proc/uptime) into one file of a hostPath directory, in the order it
//! happens, so that a test fails if the order Kubernetes gives is not kept:
//! preStop before the stop signal and within the grace period, postStart
//! before Running, a failed postStart killing the container (restarted with
//! back-off), sidecars started in init order and stopped after the regular
//! containers in reverse order, a Job-like pod completing while its sidecar
//! runs.

use it::images::BUSYBOX as IMAGE;
use it::pod::{RunOptions, RunningPod, unique_name};
use it::{require, require_root, wait_until};
use nix::sys::signal::Signal;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// A shell function every script starts with: `st EVENT` appends
/// `EVENT <uptime>` to /out/order.
const STAMP: &str = "st() { read u _ < /proc/uptime; echo \"$1 $u\" >> /out/order; }";

fn prerequisites() -> bool {
    it::is_root() && Path::new("/bin/busybox").is_file()
}

/// `/out/order` of `dir`: each event with its uptime, in file order.
fn order(dir: &Path) -> Vec<(String, f64)> {
    std::fs::read_to_string(dir.join("order"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (event, uptime) = l.rsplit_once(' ')?;
            Some((event.to_owned(), uptime.parse().ok()?))
        })
        .collect()
}

fn events(order: &[(String, f64)]) -> Vec<&str> {
    order.iter().map(|(e, _)| e.as_str()).collect()
}

fn at(order: &[(String, f64)], event: &str) -> f64 {
    order
        .iter()
        .find(|(e, _)| e == event)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| panic!("no {event:?} in {order:?}"))
}

/// A container that stamps `NAME-start`, then on SIGTERM `NAME-term`,
/// waits `linger` seconds and stamps `NAME-exit` before exiting 0.
fn trapping(name: &str, linger: &str, extra: &str) -> String {
    format!(
        "  - name: {name}\n    image: {IMAGE}\n    env: [{{name: PATH, value: /bin}}]\n    command: [/bin/busybox, sh, -c, '{STAMP}; trap \"st {name}-term; sleep {linger}; st {name}-exit; exit 0\" TERM; st {name}-start; while :; do sleep 0.1; done']\n    volumeMounts: [{{name: out, mountPath: /out}}]\n{extra}"
    )
}

fn pod_yaml(name: &str, out: &Path, spec: &str, init: &str, containers: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n{spec}{init}  containers:\n{containers}  volumes:\n  - name: out\n    hostPath: {{path: {}, type: Directory}}\n",
        out.display()
    )
}

#[test]
fn pre_stop_runs_before_the_stop_signal_within_the_grace_period() {
    require_root!();
    require!(prerequisites(), "busybox-static at /bin/busybox");
    let out = tempfile::tempdir().unwrap();
    let name = unique_name("prestop");
    // An exec preStop that takes 1 s, a sleep preStop of 2 s (each
    // container traps TERM), an httpGet preStop to the container's own
    // server (httpd as PID 1 ignores TERM: its stopSignal is SIGKILL).
    let exec_hook = format!(
        "    lifecycle:\n      preStop:\n        exec: {{command: [/bin/busybox, sh, -c, '{STAMP}; st app-prestop-begin; sleep 1; st app-prestop-end']}}\n"
    );
    let sleep_hook = "    lifecycle: {preStop: {sleep: {seconds: 2}}}\n";
    let web = format!(
        "  - name: web\n    image: {IMAGE}\n    env: [{{name: PATH, value: /bin}}]\n    command: [/bin/busybox, sh, -c, '{STAMP}; mkdir -p /tmp/www; (until grep -qs \":1F90 0[0-9A-F]*:0000 0A\" /proc/net/tcp /proc/net/tcp6; do sleep 0.1; done; st web-start) & exec httpd -f -vv -p 8080 -h /tmp/www 2>>/out/httpd.log']\n    volumeMounts: [{{name: out, mountPath: /out}}]\n    lifecycle:\n      preStop: {{httpGet: {{path: /prestop-was-called, port: 8080}}}}\n      stopSignal: SIGKILL\n"
    );
    let containers = trapping("app", "0", &exec_hook) + &trapping("slow", "0", sleep_hook) + &web;
    let manifest = pod_yaml(
        &name,
        out.path(),
        "  terminationGracePeriodSeconds: 10\n",
        "",
        &containers,
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    pod.wait_running(Duration::from_secs(30));
    wait_until(Duration::from_secs(10), || {
        let o = order(out.path());
        ["app-start", "slow-start", "web-start"]
            .iter()
            .all(|s| o.iter().any(|(e, _)| e == s))
            .then_some(())
    })
    .expect("every container started");
    let stop_at = uptime();
    let (status, took, output) = pod.stop(Signal::SIGTERM, Duration::from_secs(20));
    assert!(status.success(), "{status:?}\n{output}");
    let o = order(out.path());
    let seq = events(&o);
    let pos = |e: &str| {
        seq.iter()
            .position(|x| *x == e)
            .unwrap_or_else(|| panic!("no {e} in {seq:?}\n{output}"))
    };
    // kubelet's killContainer: the hook, then the stop signal.
    assert!(pos("app-prestop-begin") < pos("app-prestop-end"), "{seq:?}");
    assert!(pos("app-prestop-end") < pos("app-term"), "{seq:?}");
    assert!(
        at(&o, "app-term") - at(&o, "app-prestop-begin") >= 0.9,
        "the signal waited for the hook: {o:?}"
    );
    // The sleep hook: the signal 2 s after the stop began.
    let slow_wait = at(&o, "slow-term") - stop_at;
    assert!(
        (1.9..6.0).contains(&slow_wait),
        "slow got TERM after {slow_wait}s: {o:?}"
    );
    // The httpGet hook reached the server before it was stopped.
    let httpd = std::fs::read_to_string(out.path().join("httpd.log")).unwrap_or_default();
    assert!(
        httpd.contains("/prestop-was-called"),
        "httpd log: {httpd}\n{output}"
    );
    // Within the grace period: no SIGKILL was needed.
    assert!(took < Duration::from_secs(8), "took {took:?}\n{output}");
    assert!(!output.contains("killing it"), "{output}");
}

/// The host's uptime, as the containers stamp it.
fn uptime() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn container_state<'a>(status: &'a Value, name: &str) -> &'a Value {
    &RunningPod::container(status, name)["state"]
}

#[test]
fn post_start_delays_running_until_it_returns() {
    require_root!();
    require!(prerequisites(), "busybox-static at /bin/busybox");
    let out = tempfile::tempdir().unwrap();
    let name = unique_name("poststart");
    let hook = format!(
        "    lifecycle:\n      postStart:\n        exec: {{command: [/bin/busybox, sh, -c, '{STAMP}; st hook-begin; sleep 3; st hook-end']}}\n"
    );
    let manifest = pod_yaml(
        &name,
        out.path(),
        "  terminationGracePeriodSeconds: 2\n",
        "",
        &trapping("app", "0", &hook),
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    // The process runs and the hook with it, but the container is not
    // Running until the hook returned.
    wait_until(Duration::from_secs(20), || {
        let o = order(out.path());
        o.iter().any(|(e, _)| e == "hook-begin").then_some(())
    })
    .unwrap_or_else(|| panic!("the hook did not start\n{}", pod.output()));
    let during = pod.status().expect("status");
    let o = order(out.path());
    assert!(
        !o.iter().any(|(e, _)| e == "hook-end"),
        "the status was read while the hook sleeps 3 s: {o:?}"
    );
    let state = container_state(&during, "app");
    assert_eq!(
        state["waiting"]["reason"], "ContainerCreating",
        "while postStart runs: {during:#}"
    );
    assert_ne!(during["status"]["phase"], "Running", "{during:#}");
    let running = pod.wait_running(Duration::from_secs(20));
    let o = order(out.path());
    assert!(
        o.iter().any(|(e, _)| e == "hook-end"),
        "Running before the hook returned: {o:?}\n{running:#}"
    );
    let app = RunningPod::container(&running, "app");
    assert_eq!(app["started"], true, "{app:#}");
    assert_eq!(app["restartCount"], 0, "{app:#}");
    let (status, _, output) = pod.stop(Signal::SIGTERM, Duration::from_secs(20));
    assert!(status.success(), "{output}");
}

#[test]
fn a_failed_post_start_kills_the_container_which_restarts_with_back_off() {
    require_root!();
    require!(prerequisites(), "busybox-static at /bin/busybox");
    let out = tempfile::tempdir().unwrap();
    let name = unique_name("poststart-fail");
    let hook = "    lifecycle:\n      postStart:\n        exec: {command: [/bin/busybox, sh, -c, 'exit 3']}\n";
    let manifest = pod_yaml(
        &name,
        out.path(),
        "  terminationGracePeriodSeconds: 2\n",
        "",
        &trapping("app", "0", hook),
    );
    let options = RunOptions {
        args: vec!["--backoff-initial".into(), "1s".into()],
        ..RunOptions::default()
    };
    let pod = RunningPod::start(&name, &manifest, options);
    let status = pod.wait_status(Duration::from_secs(30), "two restarts", |s| {
        RunningPod::container(s, "app")["restartCount"]
            .as_u64()
            .is_some_and(|n| n >= 2)
    });
    let app = RunningPod::container(&status, "app");
    let message = app["lastState"]["terminated"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message
            .starts_with("Exec lifecycle hook ([/bin/busybox sh -c exit 3]) for Container \"app\"")
            && message
                .contains("failed - error: command '/bin/busybox sh -c exit 3' exited with 3"),
        "lastState: {app:#}"
    );
    // Killed by its stop signal (the trap exits 0: kubelet keeps the
    // runtime's exit code), never Running.
    assert_ne!(status["status"]["phase"], "Succeeded");
    let o = order(out.path());
    let starts: Vec<f64> = o
        .iter()
        .filter(|(e, _)| e == "app-start")
        .map(|(_, t)| *t)
        .collect();
    let terms = o.iter().filter(|(e, _)| e == "app-term").count();
    assert!(starts.len() >= 3 && terms >= 2, "{o:?}\n{}", pod.output());
    // The first restart at once, the second after the 1 s back-off.
    assert!(
        starts[2] - starts[1] >= 0.9,
        "back-off not kept: {starts:?}"
    );
    let events = std::fs::read_to_string(pod.state_dir().join("events.json")).unwrap();
    assert!(events.contains("FailedPostStartHook"), "{events}");
    assert!(
        pod.output().contains("FailedPostStartHook"),
        "{}",
        pod.output()
    );
    let (status, _, output) = pod.stop(Signal::SIGTERM, Duration::from_secs(20));
    assert!(status.success(), "{output}");
}

/// A sidecar: `trapping` with `restartPolicy: Always`.
fn sidecar(name: &str, linger: &str, extra: &str) -> String {
    trapping(name, linger, &format!("    restartPolicy: Always\n{extra}"))
}

#[test]
fn sidecars_start_in_order_and_stop_after_the_containers_in_reverse() {
    require_root!();
    require!(prerequisites(), "busybox-static at /bin/busybox");
    let out = tempfile::tempdir().unwrap();
    let name = unique_name("sidecars");
    // proxy is started only once its startup probe passes (after 1 s);
    // setup, a plain init container, runs after it; then logs; then app.
    let probe = "    startupProbe: {exec: {command: [/bin/busybox, sh, -c, 'test -f /out/proxy-ready']}, periodSeconds: 1}\n";
    let init = "  initContainers:\n".to_owned()
        + &trapping(
            "proxy",
            "0.5",
            &format!("    restartPolicy: Always\n{probe}"),
        )
        .replace(
            "st proxy-start;",
            "st proxy-start; sleep 1; touch /out/proxy-ready; st proxy-ready;",
        )
        + &format!(
            "  - name: setup\n    image: {IMAGE}\n    env: [{{name: PATH, value: /bin}}]\n    command: [/bin/busybox, sh, -c, '{STAMP}; st setup']\n    volumeMounts: [{{name: out, mountPath: /out}}]\n"
        )
        + &sidecar("logs", "0.5", "");
    let manifest = pod_yaml(
        &name,
        out.path(),
        "  terminationGracePeriodSeconds: 10\n",
        &init,
        &trapping("app", "1", ""),
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    let running = pod.wait_status(
        Duration::from_secs(30),
        "app and its sidecars running",
        |s| {
            let inits = s["status"]["initContainerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let running = |c: &Value| c["state"]["running"].is_object();
            s["status"]["phase"] == "Running"
                && inits.iter().filter(|c| c["name"] != "setup").all(running)
                && running(RunningPod::container(s, "app"))
        },
    );
    let inits = running["status"]["initContainerStatuses"]
        .as_array()
        .unwrap();
    for c in inits.iter().filter(|c| c["name"] != "setup") {
        assert_eq!(c["started"], true, "{c:#}");
        assert_eq!(c["restartCount"], 0, "{c:#}");
    }
    let setup = inits.iter().find(|c| c["name"] == "setup").unwrap();
    assert_eq!(
        setup["state"]["terminated"]["reason"], "Completed",
        "{setup:#}"
    );
    let conditions = running["status"]["conditions"].to_string();
    assert!(conditions.contains("\"Initialized\""), "{conditions}");
    wait_until(Duration::from_secs(5), || {
        order(out.path())
            .iter()
            .any(|(e, _)| e == "app-start")
            .then_some(())
    })
    .expect("app started");
    let (status, took, output) = pod.stop(Signal::SIGTERM, Duration::from_secs(30));
    assert!(status.success(), "{status:?}\n{output}");
    let o = order(out.path());
    let seq = events(&o);
    let pos = |e: &str| {
        seq.iter()
            .position(|x| *x == e)
            .unwrap_or_else(|| panic!("no {e} in {seq:?}\n{output}"))
    };
    // Start: in init order, each after the previous is started.
    for (before, after) in [
        ("proxy-start", "proxy-ready"),
        ("proxy-ready", "setup"),
        ("setup", "logs-start"),
        ("logs-start", "app-start"),
    ] {
        assert!(pos(before) < pos(after), "{before} before {after}: {seq:?}");
    }
    // Stop: app first; logs once app has exited; proxy once logs has.
    for (before, after) in [
        ("app-term", "app-exit"),
        ("app-exit", "logs-term"),
        ("logs-exit", "proxy-term"),
    ] {
        assert!(pos(before) < pos(after), "{before} before {after}: {seq:?}");
    }
    assert!(
        took < Duration::from_secs(9),
        "within the grace period: {took:?}\n{output}"
    );
    assert!(!output.contains("killing it"), "{output}");
}

#[test]
fn a_job_pod_completes_while_its_sidecar_runs() {
    require_root!();
    require!(prerequisites(), "busybox-static at /bin/busybox");
    let out = tempfile::tempdir().unwrap();
    let name = unique_name("job-sidecar");
    let job = format!(
        "  - name: job\n    image: {IMAGE}\n    env: [{{name: PATH, value: /bin}}]\n    command: [/bin/busybox, sh, -c, '{STAMP}; st job-start; sleep 1; st job-done']\n    volumeMounts: [{{name: out, mountPath: /out}}]\n"
    );
    let manifest = pod_yaml(
        &name,
        out.path(),
        "  restartPolicy: Never\n  terminationGracePeriodSeconds: 10\n",
        &("  initContainers:\n".to_owned() + &sidecar("helper", "0", "")),
        &job,
    );
    let mut pod = RunningPod::start(&name, &manifest, RunOptions::default());
    let status = pod.wait_exit(Duration::from_secs(30));
    let output = pod.output();
    assert!(
        status.success(),
        "a Succeeded pod exits 0: {status:?}\n{output}"
    );
    let o = order(out.path());
    let seq = events(&o);
    let pos = |e: &str| {
        seq.iter()
            .position(|x| *x == e)
            .unwrap_or_else(|| panic!("no {e} in {seq:?}\n{output}"))
    };
    assert!(pos("helper-start") < pos("job-start"), "{seq:?}");
    assert!(
        pos("job-done") < pos("helper-term"),
        "the sidecar outlived the job: {seq:?}"
    );
    let last = pod.status().expect("status");
    assert_eq!(last["status"]["phase"], "Succeeded", "{last:#}");
    let job = RunningPod::container(&last, "job");
    assert_eq!(job["state"]["terminated"]["reason"], "Completed", "{job:#}");
}
