//! The supervisor's probes against real processes, sockets and namespaces
//! (root): a stand-in container (busybox sleep as PID 1 of its own pid,
//! network, IPC and UTS namespaces, with `lo` up, in a test cgroup), servers
//! joined to its network namespace, and `supervisor::probe::Probes` driven
//! by a small loop over the supervisor's own `EventLoop`.
//!
//! Each test runs its loop on a thread of its own (the tcp/http probes move
//! that thread into the pod's network namespace for each `socket` call).
//! Cgroups are `podvisor-probe-test-<pid>-<n>`, removed by a guard;
//! processes are killed by pidfd and reaped.

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use container::{Cgroup, CgroupHost, Child, Command, ExitStatus, Namespace, NamespaceSet, Stdio};
use it::{CgroupGuard, Reap};
use nix::sys::epoll::EpollFlags;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use supervisor::event_loop::{EventLoop, TIMER};
use supervisor::pid1;
use supervisor::probe::{ExecIdentity, Outcome, ProbeIo, ProbeKind, ProbeTarget, Probes};
use supervisor::spec::{self, Handler};

const BUSYBOX: &str = "/bin/busybox";
const PORT: u16 = 8080;

fn unique() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "podvisor-probe-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The stand-in container and what probes need to reach it.
struct Pod {
    cgroup: CgroupGuard,
    pid: i32,
    _container: Reap,
    netns: PathBuf,
    dir: tempfile::TempDir,
}

impl Pod {
    fn start() -> Pod {
        let host = CgroupHost::detect().expect("cgroup host");
        let cgroup = CgroupGuard(Cgroup::create(&host, unique()).expect("test cgroup"));
        let mut cmd = Command::new(BUSYBOX);
        cmd.args(["sleep", "1000"])
            .create_namespaces(NamespaceSet::of(&[
                Namespace::Pid,
                Namespace::Net,
                Namespace::Ipc,
                Namespace::Uts,
            ]))
            .loopback_up(true)
            .cgroup(&cgroup.0)
            .stdin(Stdio::Null)
            .stdout(Stdio::Null);
        let child = cmd.spawn().expect("spawn the stand-in container");
        Pod {
            netns: PathBuf::from(format!("/proc/{}/ns/net", child.pid)),
            pid: child.pid,
            _container: Reap::new(&child),
            cgroup,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn target<'a>(&'a self, env: &'a [(String, String)]) -> ProbeTarget<'a> {
        ProbeTarget {
            pid: self.pid,
            cgroup: &self.cgroup.0,
            netns: Some(&self.netns),
            pod_ip: None,
            env,
        }
    }

    /// busybox httpd on 127.0.0.1:PORT inside the pod's network, serving
    /// the pod's dir (with a cgi-bin).
    fn http_server(&self) -> (Child, Reap) {
        let mut cmd = Command::new(BUSYBOX);
        cmd.args(["httpd", "-f", "-p", &format!("127.0.0.1:{PORT}"), "-h"])
            .arg(self.dir.path())
            .join_pid(self.pid, NamespaceSet::of(&[Namespace::Net]))
            .stdin(Stdio::Null)
            .stdout(Stdio::Null)
            .stderr(Stdio::Null);
        let child = cmd.spawn().expect("spawn httpd");
        let reap = Reap::new(&child);
        (child, reap)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

fn probe(
    handler: Handler,
    period_ms: u64,
    timeout_ms: u64,
    success: u32,
    failure: u32,
) -> spec::Probe {
    spec::Probe {
        handler,
        initial_delay: Duration::ZERO,
        timeout: Duration::from_millis(timeout_ms),
        period: Duration::from_millis(period_ms),
        success_threshold: success,
        failure_threshold: failure,
        termination_grace_period: None,
    }
}

fn container_with(
    liveness: Option<spec::Probe>,
    readiness: Option<spec::Probe>,
) -> spec::Container {
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: {}\n    command: [/bin/true]\n",
        it::images::BUSYBOX
    );
    let mut c = spec::load_str("t.yaml", &yaml).expect("pod").pod.containers[0].clone();
    c.liveness_probe = liveness.map(Box::new);
    c.readiness_probe = readiness.map(Box::new);
    c
}

/// The probes' sockets in the event loop, slot = token.
struct LoopIo<'a>(&'a EventLoop);

impl ProbeIo for LoopIo<'_> {
    fn watch(&mut self, fd: BorrowedFd<'_>, slot: u8, writable: bool) {
        let flags = if writable {
            EpollFlags::EPOLLOUT
        } else {
            EpollFlags::EPOLLIN
        };
        self.0
            .watch_with(fd, u64::from(slot), flags)
            .expect("watch");
    }
    fn unwatch(&mut self, fd: BorrowedFd<'_>) {
        self.0.unwatch(fd).expect("unwatch");
    }
}

/// The run loop in small: ticks at the deadlines, socket readiness, and
/// reaping of the probes' own children (by pid: the tests share one
/// process, so no `waitpid(-1)` here).
struct Driver {
    probes: Probes,
    events: EventLoop,
}

impl Driver {
    fn new(container: &spec::Container) -> Driver {
        Driver {
            probes: Probes::new(container, ExecIdentity::default(), Instant::now()),
            events: EventLoop::new().expect("event loop"),
        }
    }

    /// Run (at most 5 s) until readiness passes; panics with every outcome
    /// seen when it does not.
    fn expect_ready(&mut self, target: &ProbeTarget<'_>) {
        let seen = self.run(target, Duration::from_secs(5), |o| {
            *o == Outcome::Ready(true)
        });
        assert_eq!(
            seen.last().map(|(_, o)| o),
            Some(&Outcome::Ready(true)),
            "{seen:?}"
        );
    }

    /// Run until `stop` accepts an outcome or `limit` passes; every outcome
    /// with the time it came.
    fn run(
        &mut self,
        target: &ProbeTarget<'_>,
        limit: Duration,
        mut stop: impl FnMut(&Outcome) -> bool,
    ) -> Vec<(Instant, Outcome)> {
        let end = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let now = Instant::now();
            let mut batch = Vec::new();
            if self.probes.next_deadline().is_some_and(|d| d <= now) {
                batch.extend(self.probes.tick(now, target, &mut LoopIo(&self.events)));
            }
            for pid in self.probes.children() {
                match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(_, code)) => {
                        let status = ExitStatus::Exited(code);
                        batch.extend(self.probes.on_exit(pid, &status, now).expect("ours"));
                    }
                    Ok(WaitStatus::Signaled(_, signal, _)) => {
                        let status = ExitStatus::Signaled(signal as i32);
                        batch.extend(self.probes.on_exit(pid, &status, now).expect("ours"));
                    }
                    _ => {}
                }
            }
            let done = batch.iter().any(&mut stop);
            seen.extend(batch.into_iter().map(|o| (now, o)));
            if done || now >= end {
                return seen;
            }
            // Wake for the probes' deadline, to reap, or at the limit.
            let mut wake = (now + Duration::from_millis(20)).min(end);
            if let Some(d) = self.probes.next_deadline() {
                wake = wake.min(d);
            }
            self.events.set_deadline(Some(wake)).expect("arm");
            for token in self.events.wait().expect("wait") {
                if token == TIMER {
                    continue;
                }
                let slot = u8::try_from(token).expect("slot token");
                let now = Instant::now();
                let batch = self
                    .probes
                    .on_socket_ready(slot, now, &mut LoopIo(&self.events));
                let done = batch.iter().any(&mut stop);
                seen.extend(batch.into_iter().map(|o| (now, o)));
                if done {
                    return seen;
                }
            }
        }
    }

    /// Cancel and reap whatever is left.
    fn finish(mut self, target: &ProbeTarget<'_>) {
        self.probes.cancel(&mut LoopIo(&self.events));
        let _ = self.run(target, Duration::from_secs(5), |_| false);
        assert!(
            self.probes.children().is_empty(),
            "exec probes left unreaped"
        );
    }
}

/// Run `body` on a thread of its own (probes move their thread into the
/// pod's network namespace for a moment; never the harness thread).
fn on_own_thread(body: impl FnOnce() + Send + 'static) {
    std::thread::spawn(body).join().expect("test thread");
}

fn prerequisites() -> bool {
    it::prerequisite(it::is_root(), "root (uid 0)")
        && it::prerequisite(Path::new(BUSYBOX).is_file(), "/bin/busybox")
}

#[test]
fn tcp_readiness_flips_with_the_listener_inside_the_pod_network() {
    if !prerequisites() {
        return;
    }
    on_own_thread(|| {
        let pod = Pod::start();
        let readiness = probe(
            Handler::TcpSocket {
                host: None,
                port: PORT,
            },
            100,
            500,
            1,
            2,
        );
        let container = container_with(None, Some(readiness));
        let target = pod.target(&[]);
        let mut driver = Driver::new(&container);
        // Nothing listens: started, never ready.
        let seen = driver.run(&target, Duration::from_millis(600), |_| false);
        let outcomes: Vec<_> = seen.iter().map(|(_, o)| o.clone()).collect();
        assert_eq!(outcomes, vec![Outcome::Started]);

        let (server, reap) = pod.http_server();
        driver.expect_ready(&target);

        // The listener stops: not ready after two failed periods.
        drop(reap);
        let stopped = Instant::now();
        let seen = driver.run(&target, Duration::from_secs(5), |o| {
            *o == Outcome::Ready(false)
        });
        let Some((at, Outcome::Ready(false))) = seen.last() else {
            panic!("never turned unready: {seen:?}");
        };
        assert!(
            at.duration_since(stopped) >= Duration::from_millis(100),
            "two failures need a period between them"
        );
        drop(server);
        driver.finish(&target);
    });
}

#[test]
fn http_get_judges_the_status_and_liveness_fails_after_the_threshold() {
    if !prerequisites() {
        return;
    }
    on_own_thread(|| {
        let pod = Pod::start();
        std::fs::write(pod.path("healthz"), "ok\n").unwrap();
        // A CGI answering with the status kept in a file.
        std::fs::create_dir(pod.path("cgi-bin")).unwrap();
        std::fs::write(pod.path("code"), "200").unwrap();
        let script = pod.path("cgi-bin/status");
        std::fs::write(
            &script,
            format!(
                "#!{BUSYBOX} sh\nprintf 'HTTP/1.1 %s Status\\r\\nContent-Length: 0\\r\\n\\r\\n' \"$({BUSYBOX} cat {})\"\n",
                pod.path("code").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let (_server, _reap) = pod.http_server();

        let http = |path: &str| Handler::HttpGet {
            host: None,
            port: PORT,
            path: path.into(),
            headers: vec![("X-Probe".into(), "yes".into())],
        };
        let container = container_with(
            Some(probe(http("/cgi-bin/status"), 100, 1000, 1, 3)),
            Some(probe(http("/healthz"), 100, 1000, 1, 2)),
        );
        let target = pod.target(&[]);
        let mut driver = Driver::new(&container);
        driver.expect_ready(&target);

        // 404 turns readiness off; liveness (200) keeps passing.
        std::fs::remove_file(pod.path("healthz")).unwrap();
        let seen = driver.run(&target, Duration::from_secs(5), |o| {
            *o == Outcome::Ready(false)
        });
        assert_eq!(
            seen.last().map(|(_, o)| o),
            Some(&Outcome::Ready(false)),
            "{seen:?}"
        );
        assert!(
            !seen
                .iter()
                .any(|(_, o)| matches!(o, Outcome::Failed { .. })),
            "{seen:?}"
        );

        // 500 fails liveness after three consecutive failures.
        std::fs::write(pod.path("code"), "500").unwrap();
        let since = Instant::now();
        let seen = driver.run(&target, Duration::from_secs(5), |o| {
            matches!(o, Outcome::Failed { .. })
        });
        let Some((at, Outcome::Failed { kind, message, .. })) = seen.last() else {
            panic!("liveness never failed: {seen:?}");
        };
        assert_eq!(*kind, ProbeKind::Liveness);
        assert_eq!(
            message,
            "Liveness probe failed: HTTP probe failed with statuscode: 500"
        );
        // Three consecutive failures are two periods apart; the first may
        // have been in flight when the code changed, so at least one full
        // period passes after the change.
        assert!(
            at.duration_since(since) >= Duration::from_millis(100),
            "three failures came within one period of the change"
        );
        // Nothing starts after a failure.
        assert_eq!(driver.probes.next_deadline(), None);
        driver.finish(&target);
    });
}

#[test]
fn exec_probes_run_inside_the_container_and_judge_the_exit_code() {
    if !prerequisites() {
        return;
    }
    on_own_thread(|| {
        let pod = Pod::start();
        let ns = |kind: &str| {
            std::fs::read_link(format!("/proc/{}/ns/{kind}", pod.pid))
                .unwrap()
                .display()
                .to_string()
        };
        // Ready only inside the container's pid and network namespaces, with
        // its environment, and while the flag file exists.
        let flag = pod.path("ready");
        let check = format!(
            "test \"$(readlink /proc/self/ns/pid)\" = '{}' && test \"$(readlink /proc/self/ns/net)\" = '{}' && test \"$PROBE_ENV\" = yes && test -e {}",
            ns("pid"),
            ns("net"),
            flag.display()
        );
        let exec = |script: &str| Handler::Exec {
            command: vec![BUSYBOX.into(), "sh".into(), "-c".into(), script.into()],
        };
        let container = container_with(
            Some(probe(exec("exit 0"), 100, 2000, 1, 1)),
            Some(probe(exec(&check), 100, 2000, 1, 1)),
        );
        let env = vec![("PROBE_ENV".to_string(), "yes".to_string())];
        let target = pod.target(&env);
        let mut driver = Driver::new(&container);
        let seen = driver.run(&target, Duration::from_millis(500), |_| false);
        let outcomes: Vec<_> = seen.iter().map(|(_, o)| o.clone()).collect();
        assert_eq!(outcomes, vec![Outcome::Started], "no flag file yet");
        std::fs::write(&flag, "").unwrap();
        driver.expect_ready(&target);
        driver.finish(&target);

        // Exit 1 fails liveness with the exit code in the message.
        let container = container_with(Some(probe(exec("exit 1"), 100, 2000, 1, 2)), None);
        let mut driver = Driver::new(&container);
        let seen = driver.run(&target, Duration::from_secs(5), |o| {
            matches!(o, Outcome::Failed { .. })
        });
        let Some((_, Outcome::Failed { kind, message, .. })) = seen.last() else {
            panic!("never failed: {seen:?}");
        };
        assert_eq!(*kind, ProbeKind::Liveness);
        assert!(message.ends_with("failed: exit code 1"), "{message}");
        driver.finish(&target);
    });
}

/// Start a liveness exec probe that hangs with a child of its own, let it
/// time out, and return the pids of its tree (noted before the timeout)
/// once the driver reaped everything that was ours.
fn hang_and_time_out(pod: &Pod) -> Vec<Pid> {
    let hang = Handler::Exec {
        command: vec![
            BUSYBOX.into(),
            "sh".into(),
            "-c".into(),
            "sleep 100 & sleep 100".into(),
        ],
    };
    let container = container_with(Some(probe(hang, 10_000, 400, 1, 1)), None);
    let target = pod.target(&[]);
    let mut driver = Driver::new(&container);
    // Let the tree grow, then note every process of it.
    let seen = driver.run(&target, Duration::from_millis(250), |_| false);
    assert_eq!(seen.len(), 1, "only Started: {seen:?}");
    let probe_pids = driver.probes.children();
    assert_eq!(probe_pids.len(), 1);
    let leader = probe_pids[0];
    let mut tree = pid1::descendants(Pid::from_raw(leader));
    assert!(!tree.is_empty(), "the background sleep runs");
    tree.push(Pid::from_raw(leader));

    let started = Instant::now();
    let seen = driver.run(&target, Duration::from_secs(5), |o| {
        matches!(o, Outcome::Failed { .. })
    });
    let Some((at, Outcome::Failed { kind, message, .. })) = seen.last() else {
        panic!("never timed out: {seen:?}");
    };
    assert_eq!(*kind, ProbeKind::Liveness);
    assert!(message.contains("timed out"), "{message}");
    assert!(at.duration_since(started) < Duration::from_secs(2));
    // The driver reaps the killed leader.
    let reaped = it::wait_until(Duration::from_secs(5), || {
        let _ = driver.run(&target, Duration::from_millis(50), |_| false);
        driver.probes.children().is_empty().then_some(())
    });
    assert!(reaped.is_some(), "the probe was never reaped");
    assert!(it::proc_stat(leader).is_none(), "the leader is gone");
    driver.finish(&target);
    tree
}

#[test]
fn a_hanging_exec_probe_is_killed_at_its_timeout_with_its_whole_tree() {
    if !prerequisites() {
        return;
    }
    on_own_thread(|| {
        let pod = Pod::start();
        let tree = hang_and_time_out(&pod);
        // Nothing of the tree runs any more.
        let running = || {
            tree.iter()
                .filter_map(|p| it::proc_stat(p.as_raw()))
                .filter(|p| p.state != 'Z')
                .collect::<Vec<_>>()
        };
        let stopped = it::wait_until(Duration::from_secs(5), || {
            running().is_empty().then_some(())
        });
        assert!(stopped.is_some(), "still running: {:?}", running());
    });
}

/// The stricter half: no zombie either, even when the container's PID 1
/// never reaps (here `sleep`). A killed tree's orphans are re-parented to
/// the container's PID 1 unless the exec probe runs under a reaping waiter
/// inside the container's pid namespace.
#[test]
fn a_timed_out_exec_probe_leaves_no_zombie_under_a_non_reaping_pid_1() {
    if !prerequisites() {
        return;
    }
    on_own_thread(|| {
        let pod = Pod::start();
        let tree = hang_and_time_out(&pod);
        let left = || {
            tree.iter()
                .filter_map(|p| it::proc_stat(p.as_raw()))
                .collect::<Vec<_>>()
        };
        let gone = it::wait_until(Duration::from_secs(5), || left().is_empty().then_some(()));
        assert!(gone.is_some(), "left behind: {:?}", left());
    });
}

/// A probe that succeeds but leaves a background process: the waiter kills
/// it when the program exits, so nothing of the probe outlives it.
#[test]
fn a_finished_exec_probe_leaves_nothing_running() {
    if !prerequisites() {
        return;
    }
    on_own_thread(|| {
        let pod = Pod::start();
        let marker = pod.path("bg-pid");
        let script = format!("sleep 100 & echo $! > {}; exit 0", marker.display());
        let exec = Handler::Exec {
            command: vec![BUSYBOX.into(), "sh".into(), "-c".into(), script],
        };
        let container = container_with(None, Some(probe(exec, 10_000, 2000, 1, 1)));
        let target = pod.target(&[]);
        let mut driver = Driver::new(&container);
        driver.expect_ready(&target);
        let reaped = it::wait_until(Duration::from_secs(5), || {
            let _ = driver.run(&target, Duration::from_millis(50), |_| false);
            driver.probes.children().is_empty().then_some(())
        });
        assert!(reaped.is_some(), "the probe was never reaped");
        // The background sleep (a pid of the container's namespace) is
        // gone from it: the container's PID 1 has no child left.
        let _ = std::fs::read_to_string(&marker).expect("the probe ran");
        assert!(
            it::children_of(pod.pid).is_empty(),
            "left under the container's PID 1: {:?}",
            it::children_of(pod.pid)
        );
        driver.finish(&target);
    });
}
