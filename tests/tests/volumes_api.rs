//! Issue 16's volume rows on the real kernel, as root: a
//! persistentVolumeClaim's data survives a second `supervisor run` of the
//! pod and goes only with `supervisor volume rm` (refused while a pod
//! holds it); downwardAPI and projected volumes are laid out as kubelet's
//! AtomicWriter lays them out (`..<timestamp>/`, `..data`, one link per
//! name) with their modes; env `resourceFieldRef` rounds up by its
//! divisor and reads an unset limit as the node's; `subPathExpr` expands
//! `$(POD_NAME)` from the container's env and refuses a missing variable.

use it::images::BUSYBOX as IMAGE;
use it::pod::{RunOptions, RunningPod, unique_name};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use supervisor::paths::PodId;

const BUSYBOX: &str = "/bin/busybox";

fn prerequisites() -> bool {
    it::prerequisite(it::is_root(), "root (uid 0)")
}

/// The lines a container printed (the text after the CRI prefix).
fn lines(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.splitn(4, ' ').nth(3))
        .map(str::to_owned)
        .collect()
}

/// Wait until container `c` of `pod` has printed `marker`; its lines.
fn wait_for_line(pod: &RunningPod, container: &str, marker: &str) -> Vec<String> {
    it::wait_until(Duration::from_secs(30), || {
        let printed = lines(&pod.log(container, 0));
        printed.iter().any(|l| l == marker).then_some(printed)
    })
    .unwrap_or_else(|| {
        panic!(
            "{container} never printed {marker:?}\nlog: {}\noutput:\n{}",
            pod.log(container, 0),
            pod.output()
        )
    })
}

fn supervisor_volume(volume_dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(it::bin("supervisor"))
        .arg("volume")
        .arg("--volume-dir")
        .arg(volume_dir)
        .args(args)
        .output()
        .expect("run supervisor volume");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A pod `name` mounting claim `claim` at /data (and read-only at /ro),
/// running `script` as uid 1000 with fsGroup 2345.
fn claim_pod(name: &str, claim: &str, script: &str, restart: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: {restart}
  terminationGracePeriodSeconds: 1
  securityContext: {{runAsUser: 1000, runAsGroup: 1000, fsGroup: 2345}}
  containers:
  - name: c
    image: {IMAGE}
    command: [{BUSYBOX}, sh, -c, "{script}"]
    volumeMounts:
    - {{name: data, mountPath: /data}}
    - {{name: ro, mountPath: /ro}}
  volumes:
  - name: data
    persistentVolumeClaim: {{claimName: {claim}}}
  - name: ro
    persistentVolumeClaim: {{claimName: {claim}, readOnly: true}}
"#
    )
}

#[test]
fn a_claim_survives_a_second_run_and_goes_only_with_volume_rm() {
    if !prerequisites() {
        return;
    }
    let volumes = tempfile::tempdir().unwrap();
    let volume_dir = volumes.path().join("volumes");
    let options = || RunOptions {
        args: vec!["--volume-dir".into(), volume_dir.display().to_string()],
        ..RunOptions::default()
    };
    let name = unique_name("pvc");
    let claim = unique_name("data");
    let script = "echo run >> /data/runs && echo runs: $(/bin/busybox wc -l < /data/runs); if echo x > /ro/x; then echo ro: written; else echo ro: refused; fi";
    // Two runs of the same pod, each with its own state dir: the claim is
    // in neither.
    for run in 1..=2 {
        let mut pod =
            RunningPod::start(&name, &claim_pod(&name, &claim, script, "Never"), options());
        let status = pod.wait_exit(Duration::from_secs(60));
        let printed = lines(&pod.log("c", 0));
        assert!(status.success(), "run {run}: {printed:?}\n{}", pod.output());
        assert!(
            printed.contains(&format!("runs: {run}")),
            "run {run}: {printed:?}"
        );
        assert!(
            printed.contains(&"ro: refused".to_owned()),
            "run {run}: {printed:?}"
        );
    }
    let dir = volume_dir.join("default").join(&claim);
    assert_eq!(fs::read_to_string(dir.join("runs")).unwrap(), "run\nrun\n");
    // kubelet's SetVolumeOwnership: fsGroup, group rw, setgid on dirs.
    let meta = fs::metadata(&dir).unwrap();
    assert_eq!((meta.gid(), meta.mode() & 0o7777), (2345, 0o2775));
    assert_eq!(
        fs::metadata(volume_dir.join("default"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );

    // While a pod runs with it, rm is refused and ls says so.
    let pod = RunningPod::start(
        &name,
        &claim_pod(
            &name,
            &claim,
            "echo up; exec /bin/busybox sleep 3600",
            "Always",
        ),
        options(),
    );
    wait_for_line(&pod, "c", "up");
    let (ok, out, _) = supervisor_volume(&volume_dir, &["ls"]);
    assert!(ok);
    let row = out
        .lines()
        .find(|l| l.contains(&claim))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["default", claim.as_str(), "yes"]
    );
    let (ok, _, err) = supervisor_volume(&volume_dir, &["rm", &claim]);
    assert!(!ok, "rm of a claim in use must fail");
    assert!(
        err.contains(&format!(
            "volume default/{claim} is in use by a running pod"
        )),
        "{err}"
    );
    assert!(dir.join("runs").exists());
    let (status, _, _) = pod.stop(nix::sys::signal::Signal::SIGTERM, Duration::from_secs(30));
    assert!(status.success());
    // The pod's stop kept it.
    assert!(dir.join("runs").exists());
    let (ok, out, _) = supervisor_volume(&volume_dir, &["ls"]);
    assert!(ok);
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().eq(["default", claim.as_str(), "no"])),
        "{out}"
    );
    let (ok, out, err) = supervisor_volume(&volume_dir, &["rm", "-n", "default", &claim]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), format!("default/{claim}"));
    assert!(!dir.exists());
    let (ok, _, err) = supervisor_volume(&volume_dir, &["rm", &claim]);
    assert!(!ok && err.contains("no such volume"), "{err}");
}

/// `..data` points at one `..YYYY_MM_DD_HH_MM_SS.<n>` dir beside it, and
/// every name in `names` is a link `name -> ..data/name`; the payload dir.
fn check_atomic_writer_layout(volume: &Path, names: &[&str]) -> PathBuf {
    let data = fs::read_link(volume.join("..data")).unwrap();
    let ts = data.to_str().unwrap().to_owned();
    let stamp = ts.strip_prefix("..").unwrap_or_else(|| panic!("{ts}"));
    let (time, digits) = stamp.split_once('.').unwrap_or_else(|| panic!("{ts}"));
    assert_eq!(time.len(), "2006_01_02_15_04_05".len(), "{ts}");
    assert!(
        time.split('_')
            .all(|p| p.bytes().all(|b| b.is_ascii_digit())),
        "{ts}"
    );
    assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{ts}");
    let payload = volume.join(&ts);
    assert!(payload.is_dir());
    assert_eq!(fs::metadata(&payload).unwrap().mode() & 0o7777, 0o755);
    for name in names {
        assert_eq!(
            fs::read_link(volume.join(name)).unwrap(),
            Path::new("..data").join(name),
            "{name}"
        );
    }
    let mut entries: Vec<String> = fs::read_dir(volume)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    entries.sort();
    let mut expected: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    expected.extend([ts.clone(), "..data".to_owned()]);
    expected.sort();
    assert_eq!(entries, expected);
    payload
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn downward_api_and_projected_volumes_have_kubelets_layout_values_and_modes() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("downward");
    let manifest = format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata: {{name: cm}}
data: {{app.conf: "x=1"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: s}}
stringData: {{password: hunter2}}
---
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{tier: web, app: shop}}
  annotations: {{note: 'say "hi"'}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {IMAGE}
    resources: {{limits: {{cpu: 250m, memory: 100Mi}}}}
    command: [{BUSYBOX}, sh, -c, "for f in name namespace uid labels annotations cpu cpu-m mem; do echo $f: $(cat /info/$f); done; for f in conf/app.conf secret/password pod/labels pod/mem; do echo $f: $(cat /all/$f); done; echo done; exec /bin/busybox sleep 3600"]
    volumeMounts:
    - {{name: info, mountPath: /info}}
    - {{name: all, mountPath: /all}}
  volumes:
  - name: info
    downwardAPI:
      defaultMode: 0600
      items:
      - {{path: name, fieldRef: {{fieldPath: metadata.name}}}}
      - {{path: namespace, fieldRef: {{fieldPath: metadata.namespace}}}}
      - {{path: uid, fieldRef: {{fieldPath: metadata.uid}}}}
      - {{path: labels, fieldRef: {{fieldPath: metadata.labels}}, mode: 0644}}
      - {{path: annotations, fieldRef: {{fieldPath: metadata.annotations}}}}
      - {{path: cpu, resourceFieldRef: {{containerName: c, resource: limits.cpu}}}}
      - {{path: cpu-m, resourceFieldRef: {{containerName: c, resource: limits.cpu, divisor: 1m}}}}
      - {{path: mem, resourceFieldRef: {{containerName: c, resource: limits.memory, divisor: 1Mi}}}}
  - name: all
    projected:
      defaultMode: 0640
      sources:
      - configMap: {{name: cm, items: [{{key: app.conf, path: conf/app.conf}}]}}
      - secret: {{name: s, items: [{{key: password, path: secret/password, mode: 0400}}]}}
      - downwardAPI:
          items:
          - {{path: pod/labels, fieldRef: {{fieldPath: metadata.labels}}}}
          - {{path: pod/mem, resourceFieldRef: {{containerName: c, resource: limits.memory, divisor: 1M}}}}
"#
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    let printed = wait_for_line(&pod, "c", "done");
    let uid = PodId::new("default", &name).unwrap().uid();
    for expected in [
        format!("name: {name}"),
        "namespace: default".to_owned(),
        format!("uid: {uid}"),
        // Sorted by key, values quoted (one line each; `echo $(...)` joins).
        "labels: app=\"shop\" tier=\"web\"".to_owned(),
        "annotations: note=\"say \\\"hi\\\"\"".to_owned(),
        // 250m with the default divisor 1: rounded up to one core.
        "cpu: 1".to_owned(),
        "cpu-m: 250".to_owned(),
        "mem: 100".to_owned(),
        "conf/app.conf: x=1".to_owned(),
        "secret/password: hunter2".to_owned(),
        "pod/labels: app=\"shop\" tier=\"web\"".to_owned(),
        // 100Mi = 104857600 bytes = 104.8576M, rounded up.
        "pod/mem: 105".to_owned(),
    ] {
        assert!(
            printed.contains(&expected),
            "missing {expected:?} in {printed:?}"
        );
    }

    let volumes = pod.state_dir().join("volumes");
    let info = volumes.join("info");
    let payload = check_atomic_writer_layout(
        &info,
        &[
            "name",
            "namespace",
            "uid",
            "labels",
            "annotations",
            "cpu",
            "cpu-m",
            "mem",
        ],
    );
    assert_eq!(
        fs::read_to_string(info.join("labels")).unwrap(),
        "app=\"shop\"\ntier=\"web\""
    );
    assert_eq!(mode(&payload.join("name")), 0o600);
    assert_eq!(mode(&payload.join("labels")), 0o644);
    let all = volumes.join("all");
    let payload = check_atomic_writer_layout(&all, &["conf", "secret", "pod"]);
    assert_eq!(mode(&payload.join("conf/app.conf")), 0o640);
    assert_eq!(mode(&payload.join("secret/password")), 0o400);
    assert_eq!(mode(&payload.join("conf")), 0o755);
    assert_eq!(
        fs::read_to_string(all.join("secret/password")).unwrap(),
        "hunter2"
    );
}

/// The number of online CPUs, as /proc/cpuinfo lists them.
fn online_cpus() -> u64 {
    fs::read_to_string("/proc/cpuinfo")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count() as u64
}

#[test]
fn env_resource_field_refs_round_up_and_read_unset_limits_as_the_nodes() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("resenv");
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {IMAGE}
    resources: {{limits: {{cpu: 1100m, memory: 64Mi}}, requests: {{cpu: 100m}}}}
    command: [{BUSYBOX}, sh, -c, "echo MEM=$MEM CPU=$CPU CPU_M=$CPU_M REQ=$REQ OTHER_CPU=$OTHER_CPU OTHER_MEM_KI=$OTHER_MEM_KI; echo done; exec /bin/busybox sleep 3600"]
    env:
    - {{name: MEM, valueFrom: {{resourceFieldRef: {{resource: limits.memory, divisor: 1Mi}}}}}}
    - {{name: CPU, valueFrom: {{resourceFieldRef: {{resource: limits.cpu}}}}}}
    - {{name: CPU_M, valueFrom: {{resourceFieldRef: {{resource: limits.cpu, divisor: 1m}}}}}}
    - {{name: REQ, valueFrom: {{resourceFieldRef: {{resource: requests.cpu, divisor: 1m}}}}}}
    - {{name: OTHER_CPU, valueFrom: {{resourceFieldRef: {{containerName: other, resource: limits.cpu}}}}}}
    - {{name: OTHER_MEM_KI, valueFrom: {{resourceFieldRef: {{containerName: other, resource: limits.memory, divisor: 1Ki}}}}}}
  - name: other
    image: {IMAGE}
    command: [{BUSYBOX}, sleep, "3600"]
"#
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    let printed = wait_for_line(&pod, "c", "done");
    let mem_total_ki: u64 = fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let expected = format!(
        "MEM=64 CPU=2 CPU_M=1100 REQ=100 OTHER_CPU={} OTHER_MEM_KI={mem_total_ki}",
        online_cpus()
    );
    assert!(printed.contains(&expected), "{printed:?} != {expected}");
}

#[test]
fn sub_path_expr_expands_the_pod_name_and_refuses_a_missing_variable() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("subexpr");
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {IMAGE}
    command: [{BUSYBOX}, sh, -c, "echo hello > /logs/f && echo done; exec /bin/busybox sleep 3600"]
    env:
    - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
    volumeMounts:
    - {{name: data, mountPath: /logs, subPathExpr: "pods/$(POD_NAME)"}}
  - name: missing
    image: {IMAGE}
    command: [{BUSYBOX}, sleep, "3600"]
    env:
    - {{name: EMPTY, value: ""}}
    volumeMounts:
    - {{name: data, mountPath: /logs, subPathExpr: "$(NOPE)/$(EMPTY)"}}
  volumes:
  - name: data
    emptyDir: {{}}
"#
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    wait_for_line(&pod, "c", "done");
    let file = pod
        .state_dir()
        .join("volumes/data/pods")
        .join(&name)
        .join("f");
    assert_eq!(fs::read_to_string(&file).unwrap(), "hello\n");
    let status = pod.wait_status(
        Duration::from_secs(30),
        "missing in CreateContainerConfigError",
        |s| {
            RunningPod::container(s, "missing")["state"]["waiting"]["reason"]
                == "CreateContainerConfigError"
        },
    );
    let message = RunningPod::container(&status, "missing")["state"]["waiting"]["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(
        message.contains("subPathExpr \"$(NOPE)/$(EMPTY)\": missing value for EMPTY, NOPE"),
        "{message}"
    );
}
