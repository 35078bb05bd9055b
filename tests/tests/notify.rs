//! sd_notify as systemd sees it: a real unix datagram socket bound by the
//! test as NOTIFY_SOCKET. READY=1 once the containers run, STATUS= lines
//! before and after, WATCHDOG=1 at half of WATCHDOG_USEC from the event
//! loop, STOPPING=1 with EXTEND_TIMEOUT_USEC on SIGTERM.

use it::images::BUSYBOX as IMAGE;
use it::pod::{RunOptions, RunningPod, unique_name};
use it::wait_until;
use nix::sys::signal::Signal;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every datagram received, with its arrival time.
struct NotifySocket {
    path: std::path::PathBuf,
    messages: Arc<Mutex<Vec<(Instant, String)>>>,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&messages);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                sink.lock().unwrap().push((
                    Instant::now(),
                    String::from_utf8_lossy(&buf[..n]).into_owned(),
                ));
            }
        });
        NotifySocket {
            path,
            messages,
            _dir: dir,
        }
    }

    fn messages(&self) -> Vec<(Instant, String)> {
        self.messages.lock().unwrap().clone()
    }

    /// The first message containing `text`, waiting up to `timeout`.
    fn wait_for(&self, text: &str, timeout: Duration) -> (Instant, String) {
        wait_until(timeout, || {
            self.messages()
                .into_iter()
                .find(|(_, m)| m.lines().any(|l| l == text || l.starts_with(text)))
        })
        .unwrap_or_else(|| panic!("no {text} in {:#?}", self.messages()))
    }
}

#[test]
fn ready_status_watchdog_and_stopping_reach_the_notify_socket() {
    it::require_root!();
    it::require!(Path::new("/bin/busybox").is_file(), "busybox-static");
    let socket = NotifySocket::bind();
    let name = unique_name("notify");
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 3\n  containers:\n  - name: a\n    image: {IMAGE}\n    command: [/bin/busybox, sleep, \"3600\"]\n  - name: b\n    image: {IMAGE}\n    command: [/bin/busybox, sleep, \"3600\"]\n"
    );
    let pod = RunningPod::start(
        &name,
        &manifest,
        RunOptions {
            env: vec![
                ("NOTIFY_SOCKET".into(), socket.path.display().to_string()),
                ("WATCHDOG_USEC".into(), "400000".into()),
            ],
            ..RunOptions::default()
        },
    );
    let (ready_at, ready) = socket.wait_for("READY=1", Duration::from_secs(20));
    assert!(ready.contains("STATUS=2/2 ready, 0 restarts"), "{ready}");
    // Before READY=1, STATUS= said what was being waited for.
    let before: Vec<String> = socket
        .messages()
        .into_iter()
        .filter(|(at, _)| *at < ready_at)
        .map(|(_, m)| m)
        .collect();
    assert!(
        before.iter().any(|m| m.starts_with("STATUS=")),
        "no STATUS before READY: {before:#?}"
    );
    assert!(!before.iter().any(|m| m.contains("READY=1")));
    // Watchdog pings at half of WATCHDOG_USEC (200 ms): about 10 in 2 s.
    std::thread::sleep(Duration::from_millis(2000));
    let window_end = Instant::now();
    let window_start = window_end - Duration::from_millis(2000);
    let pings = socket
        .messages()
        .iter()
        .filter(|(at, m)| *at >= window_start && *at <= window_end && m.contains("WATCHDOG=1"))
        .count();
    assert!(
        (6..=14).contains(&pings),
        "{pings} watchdog pings in 2 s at a 200 ms interval"
    );
    // Restarts show in STATUS=.
    let a = pod.container_pid("a").unwrap();
    it::signal(a, Signal::SIGKILL);
    socket.wait_for(
        "STATUS=2/2 ready, 1 restart, last: a Error",
        Duration::from_secs(20),
    );
    let (code, _, output) = pod.stop(Signal::SIGTERM, Duration::from_secs(20));
    assert_eq!(code.code(), Some(0), "{output}");
    let (_, stopping) = socket.wait_for("STOPPING=1", Duration::from_secs(5));
    assert!(
        stopping.contains("EXTEND_TIMEOUT_USEC=3000000"),
        "{stopping}"
    );
}

#[test]
fn ready_waits_for_the_readiness_probe() {
    it::require_root!();
    it::require!(Path::new("/bin/busybox").is_file(), "busybox-static");
    let socket = NotifySocket::bind();
    let name = unique_name("readiness");
    // Not ready for about two seconds (the exec probe fails), then ready.
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: slow\n    image: {IMAGE}\n    command: [/bin/busybox, sh, -c, \"/bin/busybox sleep 2; /bin/busybox touch /tmp/ready; exec /bin/busybox sleep 3600\"]\n    readinessProbe:\n      exec: {{command: [/bin/busybox, test, -f, /tmp/ready]}}\n      periodSeconds: 1\n"
    );
    let started = Instant::now();
    let pod = RunningPod::start(
        &name,
        &manifest,
        RunOptions {
            env: vec![("NOTIFY_SOCKET".into(), socket.path.display().to_string())],
            ..RunOptions::default()
        },
    );
    socket.wait_for("STATUS=0/1 ready", Duration::from_secs(20));
    let (ready_at, _) = socket.wait_for("READY=1", Duration::from_secs(20));
    assert!(
        ready_at.duration_since(started) >= Duration::from_secs(2),
        "READY=1 came before the probe could pass"
    );
    let status = pod.status().unwrap();
    assert_eq!(RunningPod::container(&status, "slow")["ready"], true);
    let ready = status["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .cloned()
        .unwrap();
    assert_eq!(ready["status"], "True", "{status:#}");
}

#[test]
fn containers_do_not_inherit_the_notify_socket() {
    it::require_root!();
    it::require!(Path::new("/bin/busybox").is_file(), "busybox-static");
    let socket = NotifySocket::bind();
    let name = unique_name("noinherit");
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: a\n    image: {IMAGE}\n    command: [/bin/busybox, env]\n    env: [{{name: MINE, value: \"yes\"}}]\n"
    );
    let mut pod = RunningPod::start(
        &name,
        &manifest,
        RunOptions {
            env: vec![
                ("NOTIFY_SOCKET".into(), socket.path.display().to_string()),
                ("WATCHDOG_USEC".into(), "1000000".into()),
            ],
            ..RunOptions::default()
        },
    );
    assert_eq!(pod.wait_exit(Duration::from_secs(20)).code(), Some(0));
    let log = pod.log("a", 0);
    assert!(log.contains("MINE=yes"), "{log}");
    assert!(!log.contains("NOTIFY_SOCKET"), "{log}");
    assert!(!log.contains("WATCHDOG_USEC"), "{log}");
}
