//! `kind: Job` and Services of type LoadBalancer and NodePort (issue 16),
//! on the real kernel: a Job's failed pods are new pods (new pause, new
//! sandbox) after the Job controller's back-off until backoffLimit, with
//! OnFailure the containers' restarts count instead, the deadline ends the
//! Job, `supervisor run`'s exit status says how it ended and `job.json`
//! holds its status; a Service's ports reach the pod on 127.0.0.1 through
//! the CNI portmap plugin and their iptables rules go with the pod.
//!
//! Traffic goes only to loopback.

use it::images::BUSYBOX as IMAGE;
use it::pod::{RunOptions, RunningPod, example_cni_dir, leftovers, unique_name};
use it::{http_get, require, wait_until};
use nix::sys::signal::Signal;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const BUSYBOX: &str = "/bin/busybox";

fn prerequisites() -> bool {
    it::prerequisite(it::is_root(), "root (uid 0)")
        && it::prerequisite(Path::new(BUSYBOX).is_file(), "busybox-static")
}

/// Small Job back-offs, so the test waits seconds, not minutes.
fn fast(extra: &[&str]) -> RunOptions {
    let mut args = vec!["--job-backoff-initial", "1s", "--job-backoff-max", "2s"];
    args.extend_from_slice(extra);
    RunOptions {
        args: args.iter().map(|a| a.to_string()).collect(),
        ..RunOptions::default()
    }
}

/// A Job of one container running `script`, with `spec` lines (indented
/// 2 spaces) and `pod` lines (indented 4 spaces) in its template spec.
fn job(name: &str, spec: &str, restart_policy: &str, script: &str, pod: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n{spec}  template:\n    spec:\n      restartPolicy: {restart_policy}\n      terminationGracePeriodSeconds: 1\n{pod}      containers:\n      - name: work\n        image: {IMAGE}\n        command: [{BUSYBOX}, sh, -c, {script:?}]\n"
    )
}

fn job_record(pod: &RunningPod) -> Value {
    let path = pod.state_dir().join("job.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), pod.output()));
    serde_json::from_str(&text).unwrap()
}

/// The Job's condition types, and the reason of the last one.
fn conditions(record: &Value) -> (Vec<String>, String) {
    let list = record["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let types = list
        .iter()
        .map(|c| c["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    let reason = list
        .last()
        .and_then(|c| c["reason"].as_str())
        .unwrap_or_default()
        .to_owned();
    (types, reason)
}

/// The pause pids the supervisor reported, one per sandbox it made.
fn sandboxes(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| l.split("sandbox up (pause pid ").nth(1))
        .map(|rest| rest.split(')').next().unwrap_or_default().to_owned())
        .collect()
}

fn count(record: &Value, field: &str) -> u64 {
    record["status"][field].as_u64().unwrap_or(u64::MAX)
}

#[test]
fn a_never_job_makes_a_new_pod_per_failure_until_the_backoff_limit() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("jobnever");
    let manifest = job(
        &name,
        "  backoffLimit: 2\n",
        "Never",
        "echo attempt; exit 3",
        "",
    );
    let started = Instant::now();
    let mut pod = RunningPod::start(&name, &manifest, fast(&[]));
    let code = pod.wait_exit(Duration::from_secs(90));
    let took = started.elapsed();
    let output = pod.output();
    // failed (3) > backoffLimit (2): BackoffLimitExceeded, exit 1.
    assert_eq!(code.code(), Some(1), "{output}");
    // Three pods, each in a sandbox of its own (a new pause each time).
    let pauses = sandboxes(&output);
    assert_eq!(pauses.len(), 3, "{output}");
    assert!(
        pauses[0] != pauses[1] && pauses[1] != pauses[2],
        "{pauses:?}"
    );
    // The back-off between them: 1 s, then 2 s.
    assert!(took >= Duration::from_secs(3), "{took:?}\n{output}");
    // Each pod ran the container once (its echoed output); the log files
    // are the last pod's.
    assert_eq!(output.matches("[work] attempt").count(), 3, "{output}");
    assert_eq!(pod.log("work", 0).matches("attempt").count(), 1);
    let record = job_record(&pod);
    assert_eq!(record["kind"], "Job");
    assert_eq!(count(&record, "failed"), 3, "{record:#}");
    assert_eq!(count(&record, "succeeded"), 0);
    assert_eq!(count(&record, "active"), 0);
    let (types, reason) = conditions(&record);
    assert_eq!(types, ["FailureTarget", "Failed"], "{record:#}");
    assert_eq!(reason, "BackoffLimitExceeded");
    assert!(
        output
            .contains("Failed: BackoffLimitExceeded: Job has reached the specified backoff limit"),
        "{output}"
    );
    let shown = std::process::Command::new(it::bin("supervisor"))
        .args(["status", &name, "--state-dir"])
        .arg(pod.root.join("state"))
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains(&format!(
            "Job {name}: Failed (BackoffLimitExceeded), 0/1 completions, 3 failed, 0 active"
        )),
        "{shown}"
    );
    assert_eq!(leftovers(&name, &pod.state_dir()), Vec::<String>::new());
}

#[test]
fn a_never_job_whose_second_pod_succeeds_is_complete() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("jobretry");
    let data = tempfile::tempdir().unwrap();
    // The first pod fails, the second finds its mark and succeeds.
    let manifest = job(
        &name,
        "  backoffLimit: 4\n",
        "Never",
        "echo run >> /data/runs; test $(wc -l < /data/runs) -ge 2",
        &format!(
            "      volumes:\n      - name: data\n        hostPath: {{path: {}}}\n",
            data.path().display()
        ),
    )
    .replace(
        "        command:",
        "        volumeMounts: [{name: data, mountPath: /data}]\n        command:",
    );
    let mut pod = RunningPod::start(&name, &manifest, fast(&[]));
    let code = pod.wait_exit(Duration::from_secs(60));
    let output = pod.output();
    assert_eq!(code.code(), Some(0), "{output}");
    assert_eq!(sandboxes(&output).len(), 2, "{output}");
    let runs = std::fs::read_to_string(data.path().join("runs")).unwrap();
    assert_eq!(runs.lines().count(), 2, "no pod after the success");
    let record = job_record(&pod);
    assert_eq!(count(&record, "failed"), 1, "{record:#}");
    assert_eq!(count(&record, "succeeded"), 1, "{record:#}");
    let (types, reason) = conditions(&record);
    assert_eq!(types, ["SuccessCriteriaMet", "Complete"], "{record:#}");
    assert_eq!(reason, "CompletionsReached");
    assert!(record["status"]["completionTime"].is_string(), "{record:#}");
}

#[test]
fn an_on_failure_job_counts_the_container_restarts_of_its_one_pod() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("jobonfail");
    let manifest = job(
        &name,
        "  backoffLimit: 2\n",
        "OnFailure",
        "echo attempt; exit 1",
        "",
    );
    // kubelet's restart back-off, not the Job's, applies: make it 0.
    let mut pod = RunningPod::start(
        &name,
        &manifest,
        fast(&["--backoff-initial", "0", "--backoff-max", "0"]),
    );
    let code = pod.wait_exit(Duration::from_secs(60));
    let output = pod.output();
    assert_eq!(code.code(), Some(1), "{output}");
    // Restarted in place: one sandbox, restartCount reached the limit.
    assert_eq!(sandboxes(&output).len(), 1, "{output}");
    let status = pod.status().expect("status.json");
    let work = RunningPod::container(&status, "work");
    assert_eq!(work["restartCount"], 2, "{status:#}");
    assert_eq!(status["status"]["phase"], "Failed", "{status:#}");
    assert_eq!(
        status["status"]["reason"], "BackoffLimitExceeded",
        "{status:#}"
    );
    let record = job_record(&pod);
    // The pod the controller deleted counts as failed.
    assert_eq!(count(&record, "failed"), 1, "{record:#}");
    let (_, reason) = conditions(&record);
    assert_eq!(reason, "BackoffLimitExceeded", "{record:#}");
    assert_eq!(leftovers(&name, &pod.state_dir()), Vec::<String>::new());
}

#[test]
fn the_active_deadline_kills_the_pod_and_fails_the_job() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("jobdeadline");
    let manifest = job(
        &name,
        "  activeDeadlineSeconds: 2\n",
        "Never",
        "echo started; exec /bin/busybox sleep 3600",
        "",
    );
    let started = Instant::now();
    let mut pod = RunningPod::start(&name, &manifest, fast(&[]));
    let code = pod.wait_exit(Duration::from_secs(30));
    let took = started.elapsed();
    let output = pod.output();
    assert_eq!(code.code(), Some(124), "{output}");
    // Not before the deadline; within it, the 1 s grace period and slack.
    assert!(took >= Duration::from_secs(2), "{took:?}\n{output}");
    assert!(took < Duration::from_secs(15), "{took:?}\n{output}");
    assert!(pod.log("work", 0).contains("started"));
    let record = job_record(&pod);
    assert_eq!(count(&record, "failed"), 1, "{record:#}");
    let (types, reason) = conditions(&record);
    assert_eq!(types, ["FailureTarget", "Failed"], "{record:#}");
    assert_eq!(reason, "DeadlineExceeded");
    let status = pod.status().expect("status.json");
    assert_eq!(status["status"]["reason"], "DeadlineExceeded", "{status:#}");
    assert_eq!(leftovers(&name, &pod.state_dir()), Vec::<String>::new());
}

#[test]
fn the_deadline_also_ends_a_job_waiting_in_its_back_off() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("jobdlbackoff");
    let manifest = job(
        &name,
        "  activeDeadlineSeconds: 3\n  backoffLimit: 6\n",
        "Never",
        "exit 1",
        "",
    );
    // A 60 s back-off: the deadline comes first.
    let options = RunOptions {
        args: ["--job-backoff-initial", "60s"]
            .iter()
            .map(|a| a.to_string())
            .collect(),
        ..RunOptions::default()
    };
    let started = Instant::now();
    let mut pod = RunningPod::start(&name, &manifest, options);
    let code = pod.wait_exit(Duration::from_secs(30));
    let output = pod.output();
    assert_eq!(code.code(), Some(124), "{output}");
    assert!(started.elapsed() < Duration::from_secs(20), "{output}");
    assert_eq!(sandboxes(&output).len(), 1, "{output}");
    let record = job_record(&pod);
    assert_eq!(count(&record, "failed"), 1, "{record:#}");
    assert_eq!(conditions(&record).1, "DeadlineExceeded", "{record:#}");
}

/// The nat table's rules, as iptables-save prints them.
fn nat_rules() -> String {
    let out = std::process::Command::new("iptables-save")
        .args(["-t", "nat"])
        .output()
        .expect("iptables-save");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn load_balancer_and_node_port_services_reach_the_pod_and_go_with_it() {
    if !prerequisites() {
        return;
    }
    require!(
        Path::new("/usr/lib/cni/portmap").is_file() || Path::new("/opt/cni/bin/portmap").is_file(),
        "CNI plugins (containernetworking-plugins)"
    );
    require!(
        it::have_command("iptables-save"),
        "iptables (for the portmap plugin)"
    );
    let name = unique_name("svc");
    let pid = std::process::id();
    let lb_port = 20000 + (pid % 10000) as u16;
    let node_port = 30000 + (pid % 2700) as u16;
    let manifest = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}-lb}}\nspec:\n  type: LoadBalancer\n  selector: {{app: {name}}}\n  ports:\n  - {{port: {lb_port}, targetPort: http}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}-np}}\nspec:\n  type: NodePort\n  selector: {{app: {name}}}\n  ports:\n  - {{port: 80, targetPort: 8080, nodePort: {node_port}}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}-cluster}}\nspec:\n  selector: {{app: {name}}}\n  ports:\n  - {{port: 80, targetPort: 8080}}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{app: {name}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: web\n    image: {IMAGE}\n    command: [{BUSYBOX}, sh, -c, \"echo through-the-service > /tmp/index.html; exec {BUSYBOX} httpd -f -p 8080 -h /tmp\"]\n    ports:\n    - {{name: http, containerPort: 8080}}\n"
    );
    let options = RunOptions {
        cni_conf_dir: Some(example_cni_dir()),
        ..RunOptions::default()
    };
    let pod = RunningPod::start(&name, &manifest, options);
    pod.wait_running(Duration::from_secs(60));
    let output = pod.output();
    assert!(
        output.contains(&format!("Service {name}-cluster (ClusterIP)")),
        "the ClusterIP Service is listed as ignored:\n{output}"
    );
    for port in [lb_port, node_port] {
        let page = wait_until(Duration::from_secs(30), || http_get("127.0.0.1", port))
            .unwrap_or_else(|| panic!("127.0.0.1:{port} did not answer\n{}", pod.output()));
        assert!(page.contains("through-the-service"), "{port}: {page}");
    }
    let rules = nat_rules();
    for port in [lb_port, node_port] {
        assert!(
            rules.contains(&format!("--dport {port} ")),
            "no DNAT rule for {port}:\n{rules}"
        );
    }
    let state_dir = pod.state_dir();
    let (code, _, output) = pod.stop(Signal::SIGTERM, Duration::from_secs(30));
    assert_eq!(code.code(), Some(0), "{output}");
    let rules = nat_rules();
    for port in [lb_port, node_port] {
        assert!(
            !rules.contains(&format!("--dport {port} ")),
            "the rule for {port} outlived the pod:\n{rules}"
        );
        assert!(
            http_get("127.0.0.1", port).is_none(),
            "{port} still answers after the pod stopped"
        );
    }
    assert_eq!(leftovers(&name, &state_dir), Vec::<String>::new());
}
