//! The container library against the real kernel (root): sandbox
//! namespaces, v1 limits (memory OOM, pids, cpu quota), the unified
//! hierarchy (cgroup.kill), and typed spawn errors.
//!
//! Every cgroup is created under `podvisor-test-<pid>-<n>` and removed by a
//! guard; processes are killed by pidfd; netns files are removed by
//! `Sandbox::stop`.

use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use container::{
    CapSet, Cgroup, CgroupHost, Child, Command, Controller, ExitStatus, Limits, Mount, Namespace,
    NamespaceSet, Sandbox, SandboxConfig, SpawnError, SpawnStep, Stdio,
};
use it::{CgroupGuard, Reap, require, require_root, wait_until};
use nix::sys::signal::Signal;

const BUSYBOX: &str = "/bin/busybox";

fn unique(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "podvisor-test-{}-{}-{}",
        std::process::id(),
        what,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Undoes what publishing a netns did to /run/netns when it was not there
/// before (iproute2 leaves the shared bind mount; a test must not).
struct NetnsDirCleanup {
    dir: PathBuf,
    existed: bool,
    was_mount: bool,
}

fn is_mount_point(dir: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| {
        m.lines()
            .any(|l| l.split(' ').nth(4) == Some(dir.to_str().unwrap_or("")))
    })
}

impl NetnsDirCleanup {
    fn new(dir: &Path) -> NetnsDirCleanup {
        NetnsDirCleanup {
            dir: dir.to_path_buf(),
            existed: dir.exists(),
            was_mount: is_mount_point(dir),
        }
    }
}

impl Drop for NetnsDirCleanup {
    fn drop(&mut self) {
        if !self.was_mount && is_mount_point(&self.dir) {
            let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
        }
        if !self.existed {
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

fn busybox(script: &str) -> Command {
    let mut cmd = Command::new(BUSYBOX);
    cmd.args(["sh", "-c", script]).env("PATH", "/bin:/usr/bin");
    cmd
}

/// Read stdout lines until one equals "END".
fn read_until_end(child: &mut Child) -> Vec<String> {
    let out = child.stdout.take().expect("stdout piped");
    let mut lines = Vec::new();
    for line in BufReader::new(out).lines() {
        let line = line.expect("read child stdout");
        if line == "END" {
            return lines;
        }
        lines.push(line);
    }
    panic!("child closed stdout before END; got {lines:?}");
}

fn have_busybox() -> bool {
    Path::new(BUSYBOX).is_file()
}

#[test]
fn sandbox_members_share_net_ipc_uts_but_not_mounts() {
    require_root!();
    require!(have_busybox(), "/bin/busybox");
    let name = unique("sb");
    let netns_dir = Path::new("/run/netns");
    let _netns_dir_cleanup = NetnsDirCleanup::new(netns_dir);
    let mut config = SandboxConfig::new(&name, it::bin("pause"));
    config.hostname = Some("podvisor-host".into());
    config.publish_netns = true;
    let sandbox = Sandbox::start(&config).expect("start sandbox");
    let net = sandbox.namespace(Namespace::Net).expect("net ns").inode;
    let netns_file = sandbox.netns_path().expect("netns path");
    assert_eq!(netns_file, netns_dir.join(&name));
    assert_eq!(std::fs::metadata(&netns_file).unwrap().ino(), net);
    assert_ne!(net, it::ns_inode(std::process::id() as i32, "net").unwrap());
    if it::have_command("ip") {
        // iproute2 finds and enters the published namespace.
        let out = std::process::Command::new("ip")
            .args([
                "netns", "exec", &name, "ip", "-4", "-o", "addr", "show", "dev", "lo",
            ])
            .output()
            .expect("run ip netns exec");
        assert!(out.status.success(), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("inet 127.0.0.1/8"),
            "{out:?}"
        );
    }

    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&dst).unwrap();
    std::fs::write(src.join("marker"), "from-bind\n").unwrap();

    let script = format!(
        "cat {dst}/marker 2>/dev/null || echo no-marker; hostname; \
         ip -4 addr show dev lo | grep -o 'inet [0-9.]*'; \
         ip link show dev lo | grep -o 'UP' | head -n1; echo END; exec sleep 60",
        dst = dst.display()
    );
    let mut a = busybox(&script);
    a.join_sandbox(&sandbox, false)
        .mount(Mount::bind(&src, &dst))
        .stdout(Stdio::Piped);
    let mut a = a.spawn().expect("spawn a");
    let _reap_a = Reap::new(&a);
    let mut b = busybox(&script);
    b.join_sandbox(&sandbox, false).stdout(Stdio::Piped);
    let mut b = b.spawn().expect("spawn b");
    let _reap_b = Reap::new(&b);

    let out_a = read_until_end(&mut a);
    let out_b = read_until_end(&mut b);
    assert_eq!(
        out_a,
        ["from-bind", "podvisor-host", "inet 127.0.0.1", "UP"]
    );
    assert_eq!(
        out_b,
        ["no-marker", "podvisor-host", "inet 127.0.0.1", "UP"]
    );
    for kind in ["net", "ipc", "uts"] {
        let ns_a = it::ns_inode(a.pid, kind).unwrap();
        assert_eq!(ns_a, it::ns_inode(b.pid, kind).unwrap(), "{kind}");
        assert_eq!(ns_a, it::ns_inode(sandbox.pid(), kind).unwrap(), "{kind}");
    }
    let mnt_a = it::ns_inode(a.pid, "mnt").unwrap();
    let mnt_b = it::ns_inode(b.pid, "mnt").unwrap();
    assert_ne!(mnt_a, mnt_b);
    assert_ne!(
        mnt_a,
        it::ns_inode(std::process::id() as i32, "mnt").unwrap()
    );
    // The bind mount exists only in a's mount namespace.
    let mounted = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
            .unwrap()
            .contains(&format!(" {} ", dst.display()))
    };
    assert!(mounted(a.pid) && !mounted(b.pid) && !mounted(std::process::id() as i32));
    assert!(!dst.join("marker").exists());

    drop(_reap_a);
    drop(_reap_b);
    let status = sandbox.stop(Duration::from_secs(5)).expect("stop");
    assert_eq!(status, ExitStatus::Exited(0), "pause exits 0 on SIGTERM");
    assert!(!netns_file.exists(), "netns file removed");
}

#[test]
fn pid_namespace_shared_with_sandbox_or_private() {
    require_root!();
    require!(have_busybox(), "/bin/busybox");
    let mut config = SandboxConfig::new(unique("pidns"), it::bin("pause"));
    config.pid_namespace = true;
    let sandbox = Sandbox::start(&config).expect("start sandbox");
    let pause_pidns = sandbox.namespace(Namespace::Pid).expect("pid ns").inode;

    // Shared: joins pause's pid namespace through the intermediate process;
    // it sees pause as PID 1 and is still our child.
    let mut shared =
        busybox("echo $$; cat /proc/1/cmdline | tr '\\0' ' '; echo; echo END; exec sleep 60");
    shared
        .join_sandbox(&sandbox, true)
        .mount(Mount::proc("/proc"))
        .stdout(Stdio::Piped);
    let mut shared = shared.spawn().expect("spawn shared");
    let reap_shared = Reap::new(&shared);
    let out = read_until_end(&mut shared);
    assert_eq!(it::ns_inode(shared.pid, "pid"), Some(pause_pidns));
    assert_ne!(out[0], "1", "not PID 1 in the shared namespace");
    assert!(out[1].contains("pause"), "PID 1 is pause: {out:?}");
    assert_eq!(
        it::proc_stat(shared.pid).unwrap().ppid,
        std::process::id() as i32
    );

    // Private: PID 1 of its own pid namespace.
    let mut private = busybox("echo $$; echo END; exec sleep 60");
    private
        .join_sandbox(&sandbox, false)
        .create_namespaces(NamespaceSet::of(&[Namespace::Pid]))
        .mount(Mount::proc("/proc"))
        .stdout(Stdio::Piped);
    let mut private = private.spawn().expect("spawn private");
    let reap_private = Reap::new(&private);
    assert_eq!(read_until_end(&mut private), ["1"]);
    assert_ne!(it::ns_inode(private.pid, "pid"), Some(pause_pidns));
    assert_eq!(
        it::ns_inode(private.pid, "net"),
        it::ns_inode(sandbox.pid(), "net")
    );

    // A failure after the pid-namespace join is typed too (reported by the
    // final process, which is reaped).
    let err = Command::new("/nonexistent/in-pidns")
        .join_sandbox(&sandbox, true)
        .spawn()
        .unwrap_err();
    assert!(
        matches!(&err, SpawnError::Child { step: SpawnStep::Exec, path: Some(p), .. }
            if p == Path::new("/nonexistent/in-pidns")),
        "{err:?}"
    );

    shared.pidfd.send_signal(Signal::SIGTERM).unwrap();
    assert_eq!(shared.wait().unwrap(), ExitStatus::Signaled(libc::SIGTERM));
    std::mem::forget(reap_shared);
    drop(reap_private);
    sandbox.stop(Duration::from_secs(5)).expect("stop");
}

fn v1_host(controllers: &[Controller]) -> Option<CgroupHost> {
    let host = CgroupHost::detect().ok()?;
    controllers
        .iter()
        .all(|c| host.v1_mount(*c).is_some() || host.is_v2(*c))
        .then_some(host)
}

#[test]
fn memory_limit_oom_kill_is_counted_and_plain_sigkill_is_not() {
    require_root!();
    require!(have_busybox(), "/bin/busybox");
    let host = v1_host(&[Controller::Memory]);
    require!(host.is_some(), "memory cgroup controller");
    let host = host.unwrap();
    let cg = CgroupGuard(Cgroup::create(&host, unique("oom")).expect("create cgroup"));
    cg.0.apply(&Limits {
        memory_limit_bytes: Some(32 << 20),
        ..Limits::default()
    })
    .expect("apply");
    assert_eq!(cg.0.oom_kills().unwrap(), 0);

    // dd allocates and fills a 128 MiB buffer: over the limit.
    let mut cmd = Command::new(BUSYBOX);
    cmd.args(["dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"])
        .cgroup(&cg.0)
        .stderr(Stdio::Null);
    let hog = cmd.spawn().expect("spawn");
    let status = hog.wait().unwrap();
    assert_eq!(status, ExitStatus::Signaled(libc::SIGKILL));
    let after_oom = cg.0.oom_kills().unwrap();
    assert!(after_oom >= 1, "oom_kill counter rose: {after_oom}");

    let sleeper = busybox("exec sleep 60")
        .cgroup(&cg.0)
        .spawn()
        .expect("spawn");
    sleeper.pidfd.send_signal(Signal::SIGKILL).unwrap();
    assert_eq!(sleeper.wait().unwrap(), ExitStatus::Signaled(libc::SIGKILL));
    assert_eq!(
        cg.0.oom_kills().unwrap(),
        after_oom,
        "plain SIGKILL is not an OOM kill"
    );
}

#[test]
fn pids_limit_stops_fork_bomb_then_kill_all_and_remove() {
    require_root!();
    require!(have_busybox(), "/bin/busybox");
    let host = v1_host(&[Controller::Pids]);
    require!(host.is_some(), "pids cgroup controller");
    let host = host.unwrap();
    let cg = CgroupGuard(Cgroup::create(&host, unique("pids")).expect("create cgroup"));
    cg.0.apply(&Limits {
        pids_limit: Some(16),
        ..Limits::default()
    })
    .expect("apply");
    let pids_dir =
        cg.0.v1_dir(Controller::Pids)
            .or_else(|| cg.0.unified_dir())
            .unwrap();
    let bomb = busybox("while :; do sleep 60 & done")
        .cgroup(&cg.0)
        .stderr(Stdio::Null)
        .spawn()
        .expect("spawn bomb");
    // The limit is hit: pids.events counts refused forks.
    let hit = wait_until(Duration::from_secs(10), || {
        let events = std::fs::read_to_string(pids_dir.join("pids.events")).ok()?;
        let max: u64 = container::limits::keyed_value(&events, "max")?;
        (max > 0).then_some(max)
    });
    assert!(hit.is_some(), "pids.max was never hit");
    let current: u64 = std::fs::read_to_string(pids_dir.join("pids.current"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(current <= 16, "pids.current {current} within the limit");
    let procs = cg.0.procs().unwrap();
    assert!(!procs.is_empty() && procs.len() <= 16, "{procs:?}");

    cg.0.kill_all(Duration::from_secs(10)).expect("kill all");
    // busybox sh gives up with exit 2 when a fork is refused, unless the
    // kill reached it first.
    let status = bomb.wait().unwrap();
    assert!(
        matches!(
            status,
            ExitStatus::Exited(2) | ExitStatus::Signaled(libc::SIGKILL)
        ),
        "{status:?}"
    );
    assert!(cg.0.procs().unwrap().is_empty());
    for pid in procs {
        let gone = wait_until(Duration::from_secs(5), || {
            it::proc_stat(pid)
                .is_none_or(|p| p.state == 'Z')
                .then_some(())
        });
        assert!(gone.is_some(), "pid {pid} still running");
    }
    cg.0.remove(Duration::from_secs(10)).expect("remove");
    for dir in cg.0.dirs() {
        assert!(!dir.exists(), "{} removed", dir.display());
    }
}

#[test]
fn cpu_quota_200m_holds_busy_loop_near_a_fifth_of_a_core() {
    require_root!();
    require!(have_busybox(), "/bin/busybox");
    let host = v1_host(&[Controller::Cpu]);
    require!(host.is_some(), "cpu cgroup controller");
    let host = host.unwrap();
    let cg = CgroupGuard(Cgroup::create(&host, unique("cpu")).expect("create cgroup"));
    cg.0.apply(&Limits {
        // No request: a low cpu.shares would let other load on the host
        // starve the loop below its quota and blur the measurement.
        cpu_limit_millis: Some(200),
        ..Limits::default()
    })
    .expect("apply");
    let spin = busybox("while :; do :; done")
        .cgroup(&cg.0)
        .spawn()
        .expect("spawn");
    let _reap = Reap::new(&spin);
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let u0 = cg.0.cpu_usage_nanos().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let u1 = cg.0.cpu_usage_nanos().unwrap();
    let share = (u1 - u0) as f64 / t0.elapsed().as_nanos() as f64;
    assert!(
        (0.10..=0.35).contains(&share),
        "busy loop used {:.1}% of a core",
        share * 100.0
    );
}

#[test]
fn unified_hierarchy_create_enter_kill_remove() {
    require_root!();
    require!(have_busybox(), "/bin/busybox");
    let detected = CgroupHost::detect().ok();
    let unified = detected
        .as_ref()
        .and_then(|h| h.unified_mount().map(Path::to_path_buf));
    require!(
        unified
            .as_ref()
            .is_some_and(|u| u.join("cgroup.kill").exists() || u.join("cgroup.procs").exists()),
        "a cgroup2 mount"
    );
    let unified = unified.unwrap();
    // A v2-only view of this host, whatever its v1 mounts.
    let host = CgroupHost::from_mounts(Some(unified.clone()), []);
    let name = unique("v2");
    let cg = CgroupGuard(Cgroup::create(&host, &name).expect("create"));
    let dir = cg.0.unified_dir().unwrap();
    assert_eq!(dir, unified.join(&name));

    let child = busybox("sleep 60 & exec sleep 60")
        .cgroup(&cg.0)
        .spawn()
        .expect("spawn");
    let _reap = Reap::new(&child);
    let cgroup_line = std::fs::read_to_string(format!("/proc/{}/cgroup", child.pid)).unwrap();
    assert!(
        cgroup_line.lines().any(|l| l == format!("0::/{name}")),
        "{cgroup_line}"
    );
    let two = wait_until(Duration::from_secs(5), || {
        (cg.0.procs().ok()?.len() == 2).then_some(())
    });
    assert!(two.is_some(), "both processes in cgroup.procs");
    assert!(cg.0.is_populated().unwrap());
    // A process started elsewhere is moved in with add().
    let outside = busybox("exec sleep 60").spawn().expect("spawn outside");
    let _reap_outside = Reap::new(&outside);
    cg.0.add(outside.pid).expect("add pid");
    assert!(cg.0.procs().unwrap().contains(&outside.pid));

    cg.0.kill_all(Duration::from_secs(5)).expect("kill all");
    assert_eq!(child.wait().unwrap(), ExitStatus::Signaled(libc::SIGKILL));
    assert_eq!(outside.wait().unwrap(), ExitStatus::Signaled(libc::SIGKILL));
    let empty = wait_until(Duration::from_secs(5), || {
        (!cg.0.is_populated().ok()?).then_some(())
    });
    assert!(empty.is_some(), "cgroup.events populated 0");
    cg.0.remove(Duration::from_secs(5)).expect("remove");
    assert!(!dir.exists());
}

#[test]
fn exec_of_missing_program_is_a_typed_error() {
    require_root!();
    let err = Command::new("/nonexistent/podvisor-no-such-program")
        .spawn()
        .unwrap_err();
    match &err {
        SpawnError::Child {
            step: SpawnStep::Exec,
            path: Some(path),
            ..
        } => assert_eq!(path, Path::new("/nonexistent/podvisor-no-such-program")),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.errno(), Some(libc::ENOENT));
    assert!(
        err.to_string()
            .contains("/nonexistent/podvisor-no-such-program")
    );

    // A name searched in PATH names the last candidate.
    let err = Command::new("podvisor-no-such-program")
        .env("PATH", "/bin")
        .spawn()
        .unwrap_err();
    assert!(
        matches!(&err, SpawnError::Child { step: SpawnStep::Exec, path: Some(p), .. }
            if p == Path::new("/bin/podvisor-no-such-program")),
        "{err:?}"
    );

    // A failed mount names its target.
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("t");
    let err = Command::new(BUSYBOX)
        .arg("true")
        .mount(Mount::bind(tmp.path().join("missing-source"), &target))
        .spawn()
        .unwrap_err();
    assert!(
        matches!(&err, SpawnError::Child { step: SpawnStep::Mount, path: Some(p), .. } if *p == target),
        "{err:?}"
    );
    assert_eq!(err.errno(), Some(libc::ENOENT));
}

#[test]
fn credentials_capabilities_env_and_cwd_are_applied() {
    require_root!();
    require!(have_busybox(), "/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = busybox(
        "id -u; id -g; id -G; pwd; echo \"$FOO\"; \
         grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status; echo END",
    );
    cmd.env("FOO", "bar baz")
        .cwd(tmp.path())
        .uid(65534)
        .gid(65534)
        .groups(&[65533])
        .capabilities(CapSet::RUNTIME_DEFAULT)
        .no_new_privs(true)
        .stdout(Stdio::Piped);
    let mut child = cmd.spawn().expect("spawn");
    let out = read_until_end(&mut child);
    assert_eq!(child.wait().unwrap(), ExitStatus::Exited(0));
    let caps = format!("{:016x}", CapSet::RUNTIME_DEFAULT.0);
    let expected: Vec<String> = [
        "65534".to_string(),
        "65534".to_string(),
        "65534 65533".to_string(),
        tmp.path().display().to_string(),
        "bar baz".to_string(),
        // containerd's CRI (WithoutAmbientCaps): a non-root process keeps
        // only the bounding set; the working directory (0700, root's) was
        // entered before the uid change, as runc does.
        format!("CapInh:\t{:016x}", 0),
        format!("CapPrm:\t{:016x}", 0),
        format!("CapEff:\t{:016x}", 0),
        format!("CapBnd:\t{caps}"),
        format!("CapAmb:\t{:016x}", 0),
        "NoNewPrivs:\t1".to_string(),
    ]
    .into();
    assert_eq!(out, expected);
}

#[test]
fn v1_freezer_kills_every_process_without_cgroup_kill() {
    require_root!();
    require!(have_busybox(), "/bin/busybox");
    let detected = CgroupHost::detect().ok();
    let freezer = detected
        .as_ref()
        .and_then(|h| h.v1_mount(Controller::Freezer).map(Path::to_path_buf));
    require!(freezer.is_some(), "a v1 freezer hierarchy");
    // A v1-only view: no unified hierarchy, so no cgroup.kill; the
    // freeze / kill each / thaw loop must do the work.
    let host = CgroupHost::from_mounts(None, [(Controller::Freezer, freezer.unwrap())]);
    let cg = CgroupGuard(Cgroup::create(&host, unique("freezer")).expect("create"));
    let child = busybox("for i in 1 2 3 4; do sleep 60 & done; exec sleep 60")
        .cgroup(&cg.0)
        .spawn()
        .expect("spawn");
    let five = wait_until(Duration::from_secs(5), || {
        (cg.0.procs().ok()?.len() == 5).then_some(())
    });
    assert!(five.is_some(), "five processes in the cgroup");
    cg.0.kill_all(Duration::from_secs(5)).expect("kill all");
    assert_eq!(child.wait().unwrap(), ExitStatus::Signaled(libc::SIGKILL));
    assert!(cg.0.procs().unwrap().is_empty());
    let state =
        cg.0.v1_dir(Controller::Freezer)
            .unwrap()
            .join("freezer.state");
    assert_eq!(std::fs::read_to_string(state).unwrap().trim(), "THAWED");
    cg.0.remove(Duration::from_secs(5)).expect("remove");
}

#[test]
fn pidfd_becomes_readable_when_the_process_exits() {
    require_root!();
    require!(have_busybox(), "/bin/busybox");
    let child = busybox("sleep 0.3; exit 7").spawn().expect("spawn");
    assert!(child.pidfd.is_alive());
    assert_eq!(child.pidfd.wait_timeout(Duration::ZERO).unwrap(), None);
    let status = child.pidfd.wait_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(status, Some(ExitStatus::Exited(7)));
    assert_eq!(status.unwrap().as_code(), 7);
}

#[test]
fn readonly_bind_and_sized_tmpfs() {
    require_root!();
    require!(have_busybox(), "/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let ro = tmp.path().join("ro");
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("data"), "kept\n").unwrap();
    let script = format!(
        "cat {ro}/data; touch {ro}/new 2>/dev/null && echo writable || echo read-only; \
         grep ' {scratch} ' /proc/self/mountinfo | grep -o 'size=[0-9]*k'; \
         touch {scratch}/new && echo scratch-writable; echo END",
        ro = ro.display(),
        scratch = scratch.display()
    );
    let mut cmd = busybox(&script);
    cmd.mount(Mount::bind_readonly(&src, &ro))
        .mount(Mount::tmpfs(&scratch, Some(1 << 20)))
        .stdout(Stdio::Piped);
    let mut child = cmd.spawn().expect("spawn");
    let out = read_until_end(&mut child);
    assert_eq!(child.wait().unwrap(), ExitStatus::Exited(0));
    assert_eq!(out, ["kept", "read-only", "size=1024k", "scratch-writable"]);
    // Nothing leaked to the host: the targets are plain (empty) directories.
    assert!(!ro.join("data").exists() && !scratch.join("new").exists());
}

#[test]
fn rootfs_overlay_with_volumes_and_private_proc() {
    require_root!();
    require!(have_busybox(), "/bin/busybox");
    require!(
        std::fs::read_to_string("/proc/filesystems").is_ok_and(|f| f.contains("overlay")),
        "overlayfs"
    );
    let tmp = tempfile::tempdir().unwrap();
    let staging = tmp.path().join("staging");
    let volume = tmp.path().join("volume");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::create_dir_all(&volume).unwrap();
    std::fs::write(volume.join("x"), "volume-data\n").unwrap();
    let marker = format!("/podvisor-rootfs-test-{}", std::process::id());
    let rootfs = container::RootfsSpec::new(&staging)
        .bind(container::BindMount {
            source: volume.clone(),
            target: PathBuf::from("/data/vol"),
            read_only: true,
        })
        .prepare()
        .expect("prepare rootfs");
    let script = format!(
        "echo $$; cat /data/vol/x; touch /data/vol/y 2>/dev/null && echo vol-rw || echo vol-ro; \
         touch {marker} && echo root-writable; ls /dev/null /dev/pts/ptmx >/dev/null && echo dev-ok; \
         test -e /proc/{host_pid} && echo host-proc || echo own-proc; echo END",
        host_pid = std::process::id()
    );
    let mut cmd = busybox(&script);
    cmd.create_namespaces(NamespaceSet::of(&[Namespace::Pid]))
        .rootfs(rootfs)
        .cwd("/")
        .stdout(Stdio::Piped);
    let mut child = cmd.spawn().expect("spawn");
    let out = read_until_end(&mut child);
    assert_eq!(child.wait().unwrap(), ExitStatus::Exited(0));
    assert_eq!(
        out,
        [
            "1",
            "volume-data",
            "vol-ro",
            "root-writable",
            "dev-ok",
            "own-proc"
        ]
    );
    // The write went to the container's layer, not to the host.
    assert!(!Path::new(&marker).exists());
    assert!(!volume.join("y").exists());
}

#[test]
fn a_parked_process_is_set_up_completely_and_waits_before_exec_holding_only_stdio() {
    require_root!();
    require!(have_busybox(), "/bin/busybox");
    let host = CgroupHost::detect().expect("detect cgroups");
    let cg = CgroupGuard(Cgroup::create(&host, unique("park")).expect("create"));
    // An fd of ours the parked process must not keep open.
    let (ours_read, ours_write) = nix::unistd::pipe().expect("pipe");
    let mut command = busybox("echo started; id -u; hostname; echo END; exec sleep 60");
    command
        .cgroup(&cg.0)
        .create_namespaces(NamespaceSet::of(&[Namespace::Pid, Namespace::Uts]))
        .hostname("parked")
        .uid(65534)
        .gid(65534)
        .stdout(Stdio::Piped);
    let mut parked = command.park().expect("park");
    let pid = parked.pid().expect("a pid");
    // Ready before exec: the last step before its wait is the close of
    // every fd but stdio and its two pipes; then it is in its cgroup, its
    // own pid and mount namespaces (its own hostname set), as its user,
    // and still our program (not exec'd).
    let fds_of_parked = wait_until(Duration::from_secs(5), || {
        let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .ok()?
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .map(|p| p.display().to_string())
            .collect();
        // 0-2 (its stdout our pipe), the report and go pipes.
        (fds.len() <= 5).then_some(fds)
    })
    .expect("the parked process closed the fds it does not need");
    let our_pipe = std::fs::read_link(format!("/proc/self/fd/{}", ours_write.as_raw_fd()))
        .unwrap()
        .display()
        .to_string();
    assert!(!fds_of_parked.contains(&our_pipe), "{fds_of_parked:?}");
    drop((ours_read, ours_write));
    assert!(
        cg.0.procs().unwrap().contains(&pid),
        "parked {pid} in the cgroup"
    );
    for ns in ["pid_for_children", "mnt", "uts"] {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        let ours = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        if ns == "pid_for_children" {
            // Born into its new pid namespace: its own pid one is it.
            let own = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
            assert_ne!(own, std::fs::read_link("/proc/self/ns/pid").unwrap());
            continue;
        }
        assert_ne!(theirs, ours, "parked process has its own {ns} namespace");
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("65534")),
        "parked as its user: {status}"
    );
    assert!(
        status.lines().any(|l| l == "CapEff:\t0000000000000000"),
        "parked without capabilities: {status}"
    );
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/exe")).unwrap(),
        std::env::current_exe().unwrap()
    );

    // Released, it execs on its own; start then only reads the outcome.
    parked.release().expect("release the parked process");
    parked.release().expect("a second release does nothing");
    wait_until(Duration::from_secs(5), || {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
        (exe != std::env::current_exe().unwrap()).then_some(())
    })
    .expect("the released process exec'd before start");
    let mut child = parked.start().expect("start the parked process");
    let _reap = Reap::new(&child);
    assert_eq!(child.pid, pid, "the parked process itself runs the program");
    assert_eq!(read_until_end(&mut child), ["started", "65534", "parked"]);
    assert!(cg.0.procs().unwrap().contains(&child.pid));
    cg.0.kill_all(Duration::from_secs(5)).expect("kill all");
    assert_eq!(child.wait().unwrap(), ExitStatus::Signaled(libc::SIGKILL));

    // A parked process that is dropped is killed and reaped.
    let mut command = busybox("exec sleep 60");
    command.cgroup(&cg.0);
    let parked = command.park().expect("park again");
    let pid = parked.pid().expect("a pid");
    drop(parked);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "dropped parked process {pid} is gone"
    );
    // One killed meanwhile (with its cgroup, say) is an error at start.
    let mut command = busybox("exec sleep 60");
    command.cgroup(&cg.0);
    let mut parked = command.park().expect("park a third");
    cg.0.kill_all(Duration::from_secs(5)).expect("kill all");
    let error = parked.release().expect_err("a killed parked process");
    assert!(matches!(error, SpawnError::Protocol { .. }), "{error}");
    let error = parked.start().expect_err("a killed parked process");
    assert!(matches!(error, SpawnError::Protocol { .. }), "{error}");
}

#[test]
fn an_armed_parked_process_goes_on_by_itself_when_its_predecessor_exits() {
    require_root!();
    require!(have_busybox(), "/bin/busybox");
    let host = CgroupHost::detect().expect("detect cgroups");
    let cg = CgroupGuard(Cgroup::create(&host, unique("arm")).expect("create"));
    let mut predecessor = busybox("exec sleep 60");
    predecessor.cgroup(&cg.0);
    let running = predecessor.spawn().expect("spawn the predecessor");
    let _reap_running = Reap::new(&running);
    let exe_of = |pid: i32| std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let ours = std::env::current_exe().unwrap();

    let mut armed = busybox("echo went; echo END");
    armed
        .cgroup(&cg.0)
        .create_namespaces(NamespaceSet::of(&[Namespace::Pid]))
        .stdout(Stdio::Piped);
    let mut armed = armed.park_after(Some(&running.pidfd)).expect("park");
    let armed_pid = armed.pid().expect("a pid");
    let mut unarmed = busybox("echo later; echo END");
    unarmed.cgroup(&cg.0).stdout(Stdio::Piped);
    let mut unarmed = unarmed
        .park_after(Some(&running.pidfd))
        .expect("park another");
    let unarmed_pid = unarmed.pid().expect("a pid");
    assert!(armed.can_arm());
    armed.arm().expect("arm");
    // Armed, it still waits while the predecessor runs.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(exe_of(armed_pid).as_ref(), Some(&ours), "still parked");

    running
        .pidfd
        .send_signal(Signal::SIGKILL)
        .expect("kill the predecessor");
    // Nobody reaps the predecessor or writes to the armed one: it execs,
    // runs and ends by itself.
    wait_until(Duration::from_secs(5), || {
        let stat = std::fs::read_to_string(format!("/proc/{armed_pid}/stat")).ok()?;
        (stat.rsplit(')').next()?.split_whitespace().next()? == "Z").then_some(())
    })
    .expect("the armed process ran its course at its predecessor's exit");
    assert_eq!(
        exe_of(unarmed_pid).as_ref(),
        Some(&ours),
        "the unarmed one still waits"
    );
    // Released and started afterwards, as a restart does after the reap:
    // it is the instance that ran.
    armed.release().expect("release after it went is no error");
    let mut child = armed.start().expect("start the armed process");
    assert_eq!(child.pid, armed_pid);
    assert_eq!(read_until_end(&mut child), ["went"]);
    assert_eq!(child.wait().unwrap(), ExitStatus::Exited(0));
    assert_eq!(
        running.pidfd.wait().unwrap(),
        ExitStatus::Signaled(libc::SIGKILL)
    );

    unarmed.release().expect("release");
    let mut child = unarmed.start().expect("start");
    assert_eq!(read_until_end(&mut child), ["later"]);
    assert_eq!(child.wait().unwrap(), ExitStatus::Exited(0));

    // Only one parked after a predecessor can be armed.
    let mut alone = busybox("exit 0");
    alone.cgroup(&cg.0);
    let mut alone = alone.park().expect("park");
    assert!(!alone.can_arm());
    let error = alone.arm().expect_err("no predecessor to follow");
    assert!(matches!(error, SpawnError::Invalid { .. }), "{error}");
}
