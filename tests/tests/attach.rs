//! `stdin`, `stdinOnce`, `tty` and `supervisor attach` (issue 16) as root
//! on the real kernel, from another process than the pod's supervisor:
//! what a client sends reaches the container's stdin, which stays open
//! (blocking, no EOF) while no client is attached; `stdinOnce` closes it
//! when the first client's input ends, and the next instance has a fresh
//! one; a `tty` container runs on a pty of its own (its controlling
//! terminal, sized by the client's), its output logged as stdout; output
//! streams to a client without `-i`; kubectl's messages for what the
//! container does not have; a signal detaches and the container runs on;
//! the socket is root's only.

use it::images::BUSYBOX as IMAGE;
use it::pod::{RunOptions, RunningPod, leftovers, unique_name};
use it::{bin, wait_until};
use nix::sys::signal::Signal;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BUSYBOX: &str = "/bin/busybox";

fn prerequisites() -> bool {
    it::prerequisite(it::is_root(), "root (uid 0)")
        && it::prerequisite(
            Path::new(BUSYBOX).is_file(),
            "busybox-static at /bin/busybox",
        )
}

/// `supervisor attach --state-dir <the pod's> ARGS...`.
fn attach_command(pod: &RunningPod, args: &[&str]) -> Command {
    let mut command = Command::new(bin("supervisor"));
    command
        .arg("attach")
        .arg("--state-dir")
        .arg(pod.layout().state_root())
        .args(args);
    command
}

/// Run `supervisor attach ARGS` with `input` on its stdin (a pipe, closed
/// after it); its output, within 30 s.
fn attach_with_input(pod: &RunningPod, args: &[&str], input: &[u8]) -> Output {
    let mut child = attach_command(pod, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run supervisor attach");
    let mut stdin = child.stdin.take().unwrap();
    // Give the attach time to be made before the input comes (what is
    // sent before is sent after, but the test reads the order).
    std::thread::sleep(Duration::from_millis(300));
    stdin.write_all(input).unwrap();
    drop(stdin);
    wait_output(child, Duration::from_secs(30))
}

fn wait_output(mut child: Child, timeout: Duration) -> Output {
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "supervisor attach did not end\n{}",
                it::describe_output(&output)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Wait until container `container`'s instance `restart_count` runs.
fn wait_instance(pod: &RunningPod, container: &str, restart_count: u64) {
    wait_until(Duration::from_secs(30), || {
        let status = pod.status()?;
        let c = RunningPod::container(&status, container);
        (c["restartCount"].as_u64() == Some(restart_count) && c["state"]["running"].is_object())
            .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "{container} instance {restart_count} never ran\n{}",
            pod.output()
        )
    });
}

#[test]
fn stdin_once_takes_the_first_clients_input_then_closes_until_the_next_instance() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("attach-once");
    // Reads a line, echoes it, then everything to EOF, and says when the
    // EOF came: a stdin that never closed would keep it in `cat`.
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: reader
    image: {IMAGE}
    stdin: true
    stdinOnce: true
    command: [{BUSYBOX}, sh, -c, "read line; echo got=$line; {BUSYBOX} cat; echo eof-seen >&2; exit 3"]
  - name: other
    image: {IMAGE}
    command: [{BUSYBOX}, sleep, "3600"]
"#
    );
    let options = RunOptions {
        args: ["--backoff-initial", "0", "--backoff-max", "0"]
            .map(String::from)
            .to_vec(),
        ..RunOptions::default()
    };
    let pod = RunningPod::start(&name, &manifest, options);
    pod.wait_running(Duration::from_secs(30));
    wait_instance(&pod, "reader", 0);

    // While nobody is attached its stdin is open and empty: it waits.
    std::thread::sleep(Duration::from_millis(500));
    let status = pod.status().unwrap();
    assert!(
        RunningPod::container(&status, "reader")["state"]["running"].is_object(),
        "no EOF without a client: {status}"
    );

    let output = attach_with_input(&pod, &["-i", &name, "-c", "reader"], b"hello\nmore\n");
    let text = it::describe_output(&output);
    // The instance's exit code is attach's, once its output is out.
    assert_eq!(output.status.code(), Some(3), "{text}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("got=hello\nmore\n"), "{text}");
    // stderr stays stderr without a tty.
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("eof-seen"),
        "{text}"
    );
    // Its log has the same lines, with their streams.
    let log = pod.log("reader", 0);
    assert!(log.contains(" stdout F got=hello"), "{log}");
    assert!(log.contains(" stderr F eof-seen"), "{log}");

    // The next instance has a fresh stdin, open again for one client.
    wait_instance(&pod, "reader", 1);
    let output = attach_with_input(&pod, &["-i", &name, "-c", "reader"], b"again\n");
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        it::describe_output(&output)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("got=again"),
        "{}",
        it::describe_output(&output)
    );
    assert!(pod.log("reader", 1).contains("got=again"));
    assert!(!pod.log("reader", 1).contains("got=hello"));

    // A container without stdin: -i is refused with kubectl's sense, and
    // the attach still streams (here: until a signal detaches it).
    let mut child = attach_command(&pod, &["-i", "-t", &name, "-c", "other"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    it::signal(child.id() as i32, Signal::SIGTERM);
    let _keep_stdin = child.stdin.take();
    let output = wait_output(child, Duration::from_secs(10));
    let text = it::describe_output(&output);
    assert_eq!(output.status.code(), Some(128 + 15), "{text}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Unable to use a TTY - container other did not allocate one"),
        "{text}"
    );
    assert!(
        stderr.contains("container other does not take input"),
        "{text}"
    );
    // Detaching stopped nothing.
    let status = pod.status().unwrap();
    assert!(RunningPod::container(&status, "other")["state"]["running"].is_object());

    // Refusals name what is missing.
    let output = attach_command(&pod, &[&name, "-c", "nope"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("container nope not found in pod"),
        "{}",
        it::describe_output(&output)
    );
    // Root's only: the socket is 0600 in a 0700 dir.
    let socket = pod.state_dir().join("attach/attach.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", socket.display());
    let dir = socket.parent().unwrap();
    let dir_mode = std::fs::metadata(dir).unwrap().permissions().mode();
    assert_eq!(dir_mode & 0o777, 0o700, "{}", dir.display());

    let layout = pod.layout();
    pod.stop_clean();
    // A pod that is gone is refused, clearly.
    let output = Command::new(bin("supervisor"))
        .arg("attach")
        .arg("--state-dir")
        .arg(layout.state_root())
        .arg(&name)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("pod default/{name}")),
        "{}",
        it::describe_output(&output)
    );
}

/// Read `master` into `seen` until `needle` shows (15 s).
fn read_until(master: &Arc<Mutex<String>>, needle: &str) -> String {
    wait_until(Duration::from_secs(15), || {
        let seen = master.lock().unwrap();
        seen.contains(needle).then(|| seen.clone())
    })
    .unwrap_or_else(|| panic!("no {needle:?} in {:?}", master.lock().unwrap()))
}

#[test]
fn a_tty_container_runs_on_its_own_terminal_sized_by_the_client() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("attach-tty");
    let script = "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo is-a-tty; read line; echo got=$line; stty size; echo to-stderr >&2; exit 4";
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: Never
  containers:
  - name: shell
    image: {IMAGE}
    stdin: true
    tty: true
    command: [{BUSYBOX}, sh, -c, "{script}"]
"#
    );
    let mut pod = RunningPod::start(&name, &manifest, RunOptions::default());
    pod.wait_running(Duration::from_secs(30));
    wait_instance(&pod, "shell", 0);

    // The client's terminal: a pty of the test's, 40 x 120.
    let size = nix::pty::Winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pair = nix::pty::openpty(Some(&size), None).unwrap();
    let slave: OwnedFd = pair.slave;
    let master = std::fs::File::from(pair.master);
    let mut client = attach_command(&pod, &["-i", "-t", &name])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap())
        .spawn()
        .unwrap();
    drop(slave);
    let seen = Arc::new(Mutex::new(String::new()));
    let reader = {
        let seen = seen.clone();
        let mut master = master.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    read_until(&seen, "try pressing enter");
    std::thread::sleep(Duration::from_millis(300));
    (&master).write_all(b"hello\r").unwrap();
    let text = read_until(&seen, "to-stderr");
    assert!(text.contains("got=hello"), "{text:?}");
    // Its terminal got the client's size before the line was read.
    assert!(text.contains("40 120"), "the window size: {text:?}");
    let status = wait_until(Duration::from_secs(10), || client.try_wait().unwrap())
        .unwrap_or_else(|| panic!("attach did not end with the container: {text:?}"));
    assert_eq!(status.code(), Some(4), "{text:?}");
    drop(master);
    let _ = reader.join();

    // What it wrote before the attach, and after, is in its log, all of it
    // as stdout (a terminal is one stream); the typed line was echoed by
    // its terminal.
    let log = pod.log("shell", 0);
    assert!(log.contains(" stdout F is-a-tty"), "{log}");
    assert!(log.contains("got=hello"), "{log}");
    assert!(log.contains("to-stderr"), "{log}");
    assert!(!log.contains(" stderr "), "{log}");
    let exit = pod.wait_exit(Duration::from_secs(30));
    assert_eq!(
        exit.code(),
        Some(1),
        "a failed container fails the pod\n{}",
        pod.output()
    );
    let left = leftovers(&name, &pod.state_dir());
    assert!(left.is_empty(), "left behind: {left:?}");
}
