//! The container's root as issue 14 wants it, with a default container
//! (no securityContext) of the busybox test image, as root on the real
//! kernel: kubelet's masked paths read empty, its read-only paths refuse
//! harmless writes (core_pattern's own value, `h` to sysrq-trigger) with
//! EROFS, a node made with mknod (the host's root disk, /dev/kmsg) in
//! /dev, /, an emptyDir or /tmp cannot be opened while the standard nodes
//! work, nothing of the host's cgroup hierarchy is writable (and on pure
//! cgroup v2 the container sees its own cgroup as the root), and a mount
//! destination a sibling container swapped for a symlink to a host path
//! stays inside the restarted container's root: nothing appears on the
//! host at the symlink's target.

use it::images::BUSYBOX as IMAGE;
use it::pod::{CGROUP_PARENT, RunOptions, RunningPod, unique_name};
use it::rootfs_checks::{block_device, log_lines, value, wait_for_end};
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn prerequisites() -> bool {
    it::prerequisite(it::is_root(), "root (uid 0)")
        && it::prerequisite(
            Path::new("/bin/busybox").is_file(),
            "busybox-static at /bin/busybox",
        )
}

/// A pod of one container `probe` running `script` (with `B` set to the
/// image's busybox), plus `volumes` (YAML list items indented by two) and
/// their `mounts` (indented by four).
fn probe_pod(name: &str, script: &str, mounts: &str, volumes: &str) -> String {
    let script: String = script.lines().map(|l| format!("      {l}\n")).collect();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: probe\n    image: {IMAGE}\n    command:\n    - /bin/busybox\n    - sh\n    - -c\n    - |\n      B=/bin/busybox\n{script}    volumeMounts:\n{mounts}  volumes:\n{volumes}"
    )
}

fn stop(pod: RunningPod) {
    let (status, _, output) = pod.stop(Signal::SIGTERM, Duration::from_secs(20));
    assert!(status.success(), "supervisor exit {status:?}\n{output}");
}

const MASKS: &str = r#"for p in /proc/kcore /proc/keys /proc/timer_list /proc/latency_stats /proc/timer_stats /proc/sched_debug; do
  if [ -e $p ]; then echo "$p: file $($B cat $p | $B wc -c)"; else echo "$p: absent"; fi
done
for d in /proc/asound /proc/acpi /proc/scsi /sys/firmware /sys/devices/virtual/powercap; do
  if [ -e $d ]; then echo "$d: dir $($B ls -A $d | $B wc -l)"; else echo "$d: absent"; fi
done
v=$($B cat /proc/sys/kernel/core_pattern)
echo "core_pattern: $( (printf '%s\n' "$v" > /proc/sys/kernel/core_pattern) 2>&1 && echo written)"
echo "sysrq: $( (echo h > /proc/sysrq-trigger) 2>&1 && echo written)"
echo "cgroup-entries: $($B ls -A /sys/fs/cgroup | $B wc -l)"
echo "cgroup-self: $($B tail -n 1 /proc/self/cgroup)"
echo "cgroup-write: $( (echo 0 > /sys/fs/cgroup/cgroup.procs) 2>&1 && echo written)"
echo END
exec $B sleep 3600"#;

#[test]
fn proc_and_sys_are_masked_and_read_only_and_no_host_cgroup_is_writable() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("iso-proc");
    let manifest = probe_pod(
        &name,
        MASKS,
        "    - {name: scratch, mountPath: /scratch}\n",
        "  - name: scratch\n    emptyDir: {}\n",
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    let lines = wait_for_end(&pod, "probe", 0);
    let mut masked_files = 0;
    for path in it_masked_files() {
        masked_files += usize::from(Path::new(path).exists());
        let expected = if Path::new(path).exists() {
            "file 0"
        } else {
            "absent"
        };
        assert_eq!(value(&lines, path), expected, "{path}: {lines:#?}");
    }
    let mut masked_dirs = 0;
    for path in [
        "/proc/asound",
        "/proc/acpi",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ] {
        let on_host = Path::new(path).exists();
        masked_dirs += usize::from(on_host);
        let expected = if on_host { "dir 0" } else { "absent" };
        assert_eq!(value(&lines, path), expected, "{path}: {lines:#?}");
    }
    // /proc/keys and /proc/timer_list gave 9 KB before (issue 14).
    assert!(
        masked_dirs > 0 && masked_files > 0,
        "this kernel shows none of the masked files or directories: nothing was tested"
    );
    let core_pattern = value(&lines, "core_pattern");
    assert!(
        core_pattern.contains("Read-only file system") && !core_pattern.contains("written"),
        "core_pattern: {core_pattern}"
    );
    // A kernel without CONFIG_MAGIC_SYSRQ (this project's host) has no
    // /proc/sysrq-trigger: then the write fails on the missing file.
    let sysrq = value(&lines, "sysrq");
    let expected = if Path::new("/proc/sysrq-trigger").exists() {
        "Read-only file system"
    } else {
        "nonexistent"
    };
    assert!(
        sysrq.contains(expected) && !sysrq.contains("written"),
        "sysrq: {sysrq}"
    );
    let write = value(&lines, "cgroup-write");
    assert!(!write.contains("written"), "{write}");
    if it::pure_cgroup_v2() {
        // Its own cgroup namespace: its cgroup is the root it sees, and
        // cgroup2 is mounted there read-only.
        assert_eq!(value(&lines, "cgroup-self"), "0::/");
        assert_ne!(value(&lines, "cgroup-entries"), "0");
        assert!(write.contains("Read-only file system"), "{write}");
    } else {
        // As containerd on v1 and hybrid hosts: no cgroup namespace, and
        // nothing of the host's hierarchies mounted at all.
        // (sysfs, read-only, has no cgroup.procs to write.)
        assert_ne!(value(&lines, "cgroup-self"), "0::/");
        assert_eq!(value(&lines, "cgroup-entries"), "0");
        assert!(write.contains("nonexistent"), "{write}");
    }
    stop(pod);
}

/// The masked paths that are files when the kernel has them.
fn it_masked_files() -> [&'static str; 6] {
    [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/latency_stats",
        "/proc/timer_stats",
        "/proc/sched_debug",
    ]
}

#[test]
fn nodes_made_with_mknod_cannot_be_opened_but_the_standard_ones_work() {
    if !prerequisites() {
        return;
    }
    let (major, minor) = block_device();
    let script = format!(
        r#"for dir in /dev / /data /tmp; do
  for node in "disk b {major} {minor}" "kmsg c 1 11"; do
    set -- $node
    f=${{dir%/}}/podvisor-$1
    if m=$( ($B mknod $f $2 $3 $4) 2>&1 ); then
      if e=$( ($B head -c 1 $f > /dev/null) 2>&1 ); then echo "$f: opened"; else echo "$f: refused $e"; fi
    else echo "$f: mknod failed $m"; fi
  done
done
echo "null: $( (echo x > /dev/null) 2>&1 && echo ok)"
echo "zero: $($B head -c 8 /dev/zero | $B wc -c)"
echo "urandom: $($B head -c 8 /dev/urandom | $B wc -c)"
echo END
exec $B sleep 3600"#
    );
    let name = unique_name("iso-dev");
    let manifest = probe_pod(
        &name,
        &script,
        "    - {name: data, mountPath: /data}\n",
        "  - name: data\n    emptyDir: {}\n",
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    let lines = wait_for_end(&pod, "probe", 0);
    for dir in ["/dev", "", "/data", "/tmp"] {
        for node in ["disk", "kmsg"] {
            let path = format!("{dir}/podvisor-{node}");
            let got = value(&lines, &path);
            assert!(
                got.starts_with("refused")
                    && (got.contains("Permission denied") || got.contains("not permitted")),
                "{path}: {got}\n{lines:#?}"
            );
        }
    }
    assert_eq!(value(&lines, "null"), "ok");
    assert_eq!(value(&lines, "zero"), "8");
    assert_eq!(value(&lines, "urandom"), "8");
    // On cgroup v1, the devices controller holds runc's allow-list too.
    let devices = Path::new("/sys/fs/cgroup/devices");
    if devices.join("devices.list").exists() {
        let list = devices
            .join(CGROUP_PARENT)
            .join(format!("default_{name}"))
            .join("containers/probe/devices.list");
        let text = std::fs::read_to_string(&list)
            .unwrap_or_else(|e| panic!("read {}: {e}", list.display()));
        assert!(text.lines().any(|l| l == "c 1:3 rwm"), "{text}");
        assert!(text.lines().any(|l| l == "c 136:* rwm"), "{text}");
        assert!(!text.lines().any(|l| l.starts_with("a ")), "{text}");
        assert!(!text.contains(&format!("b {major}:{minor}")), "{text}");
    }
    stop(pod);
}

/// Every file named `name` below `dir`.
fn find_files(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            find_files(&path, name, out);
        } else if entry.file_name() == name {
            out.push(path);
        }
    }
}

#[test]
fn a_mount_destination_swapped_for_a_symlink_stays_inside_after_a_restart() {
    if !prerequisites() {
        return;
    }
    let outside = tempfile::tempdir().unwrap();
    let target_dir = outside.path().join("target-dir");
    let target_file = outside.path().join("target-file");
    let conf = outside.path().join("conf");
    std::fs::write(&conf, "host-conf\n").unwrap();
    let name = unique_name("iso-link");
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: attacker
    image: {IMAGE}
    command:
    - /bin/busybox
    - sh
    - -c
    - |
      B=/bin/busybox
      while [ ! -e /data/ready ]; do $B sleep 0.05; done
      $B rm -rf /data/mnt /data/conf
      $B ln -s {target_dir} /data/mnt
      $B ln -s {target_file} /data/conf
      $B touch /data/swapped
      exec $B sleep 3600
    volumeMounts:
    - {{name: data, mountPath: /data}}
  - name: victim
    image: {IMAGE}
    command:
    - /bin/busybox
    - sh
    - -c
    - |
      B=/bin/busybox
      if [ -e /data/swapped ]; then
        echo "mnt-link: $($B readlink /data/mnt)"
        echo "conf: $($B cat /data/conf)"
        echo "planted: $( ($B touch /data/mnt/planted) 2>&1 && echo ok)"
        echo END
        exec $B sleep 3600
      fi
      $B touch /data/ready
      while [ ! -e /data/swapped ]; do $B sleep 0.05; done
      exit 1
    volumeMounts:
    - {{name: data, mountPath: /data}}
    - {{name: inner, mountPath: /data/mnt}}
    - {{name: conf, mountPath: /data/conf, readOnly: true}}
  volumes:
  - name: data
    emptyDir: {{}}
  - name: inner
    emptyDir: {{}}
  - name: conf
    hostPath: {{path: {conf}, type: File}}
"#,
        target_dir = target_dir.display(),
        target_file = target_file.display(),
        conf = conf.display(),
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    let lines = wait_for_end(&pod, "victim", 1);
    assert_eq!(
        value(&lines, "mnt-link"),
        target_dir.display().to_string(),
        "the restarted victim met the symlink: {lines:#?}"
    );
    // Its mounts followed the symlinks inside its own root.
    assert_eq!(value(&lines, "conf"), "host-conf");
    assert_eq!(value(&lines, "planted"), "ok");
    // Nothing appeared on the host at the symlinks' targets.
    assert!(!target_dir.exists(), "{} appeared", target_dir.display());
    assert!(!target_file.exists(), "{} appeared", target_file.display());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&outside.path().display().to_string()),
        "a mount below {} on the host",
        outside.path().display()
    );
    // The write went to the inner emptyDir, on the host's side of it.
    let mut planted = Vec::new();
    find_files(&pod.state_dir(), "planted", &mut planted);
    assert_eq!(planted.len(), 1, "{planted:?}");
    // The first instance was the one that met the plain directories.
    assert!(
        log_lines(&pod, "victim", 0).is_empty(),
        "{:?}",
        log_lines(&pod, "victim", 0)
    );
    stop(pod);
}

/// A volume source given as `/proc/self/fd/<n>` (how resolved subPaths
/// are passed) is opened before fork, so it is the object the caller's fd
/// holds, even once the path it was opened by points elsewhere; read-only
/// as asked.
#[test]
fn a_source_given_as_an_fd_is_the_object_the_fd_holds() {
    use std::io::{BufRead, BufReader};
    use std::os::fd::AsRawFd;
    if !prerequisites() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let staging = tmp.path().join("staging");
    let held = tmp.path().join("held");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::create_dir_all(&held).unwrap();
    std::fs::write(held.join("x"), "held-object\n").unwrap();
    let fd = nix::fcntl::open(
        &held,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    // The path now names another directory: the fd still holds the first.
    std::fs::rename(&held, tmp.path().join("moved")).unwrap();
    std::fs::create_dir_all(&held).unwrap();
    std::fs::write(held.join("x"), "swapped-in\n").unwrap();
    let rootfs = container::RootfsSpec::new(&staging)
        .bind(container::BindMount {
            source: PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
            target: PathBuf::from("/podvisor-held"),
            read_only: true,
        })
        .prepare()
        .expect("prepare rootfs");
    let mut command = container::Command::new("/bin/busybox");
    command
        .args([
            "sh",
            "-c",
            "cat /podvisor-held/x; (touch /podvisor-held/y) 2>&1; echo END",
        ])
        .env("PATH", "/bin:/usr/bin")
        .rootfs(rootfs)
        .cwd("/")
        .stdout(container::Stdio::Piped);
    let mut child = command.spawn().expect("spawn");
    drop(fd);
    let out = child.stdout.take().unwrap();
    let lines: Vec<String> = BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .take_while(|l| l != "END")
        .collect();
    assert_eq!(child.wait().unwrap(), container::ExitStatus::Exited(0));
    assert_eq!(lines[0], "held-object", "{lines:?}");
    assert!(lines[1].contains("Read-only file system"), "{lines:?}");
    assert!(!Path::new("/podvisor-held").exists());
}
