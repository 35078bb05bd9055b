//! `supervisor exec` (issue 16) as root on the real kernel: a command run
//! by another process than the pod's supervisor, found through the state
//! dir, gets exactly its container's rights (credentials, capabilities,
//! no_new_privs, seccomp, cgroup, namespaces, root and mounts) and nothing
//! more; its exit status comes back; `-c` and kubectl's default-container
//! annotation pick the container; a pod that is gone is refused with a
//! clear error; `-i` relays stdin through a pipe, `-i -t` through a pty
//! (window size, Ctrl-C).

use it::images::BUSYBOX as IMAGE;
use it::pod::{RunOptions, RunningPod, leftovers, unique_name};
use it::{bin, ns_inode, wait_until};
use nix::sys::signal::Signal;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BUSYBOX: &str = "/bin/busybox";

fn prerequisites() -> bool {
    it::prerequisite(it::is_root(), "root (uid 0)")
        && it::prerequisite(
            Path::new(BUSYBOX).is_file(),
            "busybox-static at /bin/busybox",
        )
}

/// `supervisor exec --state-dir <the pod's> ARGS...`.
fn exec_command(pod: &RunningPod, args: &[&str]) -> Command {
    let mut command = Command::new(bin("supervisor"));
    command
        .arg("exec")
        .arg("--state-dir")
        .arg(pod.layout().state_root())
        .args(args);
    command
}

/// Run `supervisor exec ARGS` with stdin /dev/null; its output.
fn exec(pod: &RunningPod, args: &[&str]) -> Output {
    exec_command(pod, args)
        .stdin(Stdio::null())
        .output()
        .expect("run supervisor exec")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The fields of a /proc/PID/status text that say what a process may do.
fn rights(status: &str) -> Vec<String> {
    const FIELDS: [&str; 11] = [
        "Uid",
        "Gid",
        "Groups",
        "CapInh",
        "CapPrm",
        "CapEff",
        "CapBnd",
        "CapAmb",
        "NoNewPrivs",
        "Seccomp",
        "Seccomp_filters",
    ];
    FIELDS
        .iter()
        .map(|f| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(f)?.strip_prefix(':'))
                .map(|v| format!("{f}: {}", v.trim()))
                .unwrap_or_else(|| panic!("no {f} in\n{status}"))
        })
        .collect()
}

fn wait_running(pod: &RunningPod, container: &str) -> i32 {
    pod.wait_running(Duration::from_secs(30));
    wait_until(Duration::from_secs(10), || {
        pod.container_pid(container).filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.contains("3600"))
        })
    })
    .unwrap_or_else(|| panic!("container {container} never ran\n{}", pod.output()))
}

#[test]
fn exec_gets_the_containers_rights_and_nothing_more() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("exec-rights");
    // `user`: uid 1000 with one capability of its own and no privilege
    // escalation; `root`: root with the default set. Each leaves a file in
    // its own root and in the shared emptyDir, then sleeps as its PID 1.
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: user
    image: {IMAGE}
    securityContext:
      runAsUser: 1000
      runAsGroup: 1000
      allowPrivilegeEscalation: false
      capabilities: {{drop: [ALL], add: [NET_BIND_SERVICE]}}
    env: [{{name: WHO, value: user}}]
    workingDir: /tmp
    command: [{BUSYBOX}, sh, -c, "echo user-root > /tmp/only-here; echo shared > /data/from-user; exec {BUSYBOX} sleep 3600"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  - name: root
    image: {IMAGE}
    command: [{BUSYBOX}, sh, -c, "echo root-root > /tmp/only-here; exec {BUSYBOX} sleep 3600"]
  volumes:
  - name: data
    emptyDir: {{}}
"#
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    for container in ["user", "root"] {
        let pid = wait_running(&pod, container);
        // What the kernel says of the container's own PID 1, from the host.
        let own = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let out = exec(
            &pod,
            &[&name, "-c", container, "--", "cat", "/proc/self/status"],
        );
        assert_eq!(out.status.code(), Some(0), "{}", it::describe_output(&out));
        assert_eq!(
            rights(&stdout(&out)),
            rights(&own),
            "exec into {container} vs its process {pid}"
        );
        // Not a right more than it: seccomp on, not full capabilities.
        let exec_rights = rights(&stdout(&out));
        assert!(
            exec_rights.contains(&"Seccomp: 2".to_string()),
            "{exec_rights:?}"
        );
        assert!(
            !exec_rights.contains(&"CapBnd: 000001ffffffffff".to_string()),
            "{exec_rights:?}"
        );

        // Its namespaces (the mount namespace is a private copy of the
        // container's, so its root and mounts are checked instead), seen
        // from the host while the exec runs.
        let mut sleeper = exec_command(&pod, &[&name, "-c", container, "--", "sleep", "3600"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // The program: a grandchild of the client (under its waiter).
        let client = sleeper.id() as i32;
        let program = wait_until(Duration::from_secs(10), || {
            it::children_of(client)
                .into_iter()
                .flat_map(|c| it::children_of(c.pid))
                .map(|p| p.pid)
                .find(|pid| {
                    std::fs::read(format!("/proc/{pid}/cmdline"))
                        .is_ok_and(|c| c == b"sleep\x003600\0")
                })
        })
        .expect("the exec's program");
        for kind in ["pid", "net", "ipc", "uts", "cgroup"] {
            assert_eq!(
                ns_inode(program, kind),
                ns_inode(pid, kind),
                "{kind} namespace of the exec in {container}"
            );
        }
        assert_eq!(
            std::fs::read_to_string(format!("/proc/{program}/cgroup")).unwrap(),
            std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(),
            "cgroup of the exec in {container}"
        );
        // SIGTERM to the client ends the exec's tree, then the client.
        it::signal(client, Signal::SIGTERM);
        let status = sleeper.wait().unwrap();
        assert_eq!(status.code(), Some(137), "the killed program's status");
        assert!(!Path::new(&format!("/proc/{program}")).exists());
    }

    // Root, mounts, pid namespace, environment and working dir.
    let out = exec(
        &pod,
        &[
            &name,
            "-c",
            "user",
            "--",
            BUSYBOX,
            "sh",
            "-c",
            "cat /tmp/only-here /data/from-user; echo who=$WHO; pwd; cat /proc/1/cmdline | tr '\\0' ' '; echo; ps -o pid,args",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", it::describe_output(&out));
    let text = stdout(&out);
    assert!(text.contains("user-root\nshared\n"), "{text}");
    assert!(text.contains("who=user\n/tmp\n"), "{text}");
    assert!(
        text.contains(&format!("{BUSYBOX} sleep 3600")),
        "pid 1 is the container's: {text}"
    );
    assert!(
        !text.contains("pause"),
        "a pid namespace of its own: {text}"
    );
    let out = exec(&pod, &[&name, "-c", "root", "--", "cat", "/tmp/only-here"]);
    assert_eq!(stdout(&out), "root-root\n", "{}", it::describe_output(&out));
    // uid 1000 cannot write the root-only places, as the container cannot.
    let out = exec(&pod, &[&name, "-c", "user", "--", "touch", "/etc/x"]);
    assert_ne!(out.status.code(), Some(0), "{}", it::describe_output(&out));
    pod.stop_clean();
}

#[test]
fn exit_status_container_choice_and_stdin() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("exec-choice");
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  annotations: {{kubectl.kubernetes.io/default-container: second}}
spec:
  terminationGracePeriodSeconds: 1
  shareProcessNamespace: true
  containers:
  - name: first
    image: {IMAGE}
    env: [{{name: WHO, value: first}}]
    command: [{BUSYBOX}, sleep, "3600"]
  - name: second
    image: {IMAGE}
    env: [{{name: WHO, value: second}}]
    command: [{BUSYBOX}, sleep, "3600"]
"#
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    wait_running(&pod, "first");
    wait_running(&pod, "second");

    let who = |args: &[&str]| {
        let mut all = vec![name.as_str()];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--", "sh", "-c", "echo $WHO"]);
        let out = exec(&pod, &all);
        assert_eq!(out.status.code(), Some(0), "{}", it::describe_output(&out));
        stdout(&out)
    };
    assert_eq!(who(&[]), "second\n", "the annotation's container");
    assert_eq!(who(&["-c", "first"]), "first\n");

    // The command's status is ours: its code, 128 + a signal.
    let out = exec(
        &pod,
        &[&name, "--", "sh", "-c", "echo out; echo err >&2; exit 7"],
    );
    assert_eq!(out.status.code(), Some(7), "{}", it::describe_output(&out));
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    let out = exec(&pod, &[&name, "--", "sh", "-c", "kill -9 $$"]);
    assert_eq!(
        out.status.code(),
        Some(137),
        "{}",
        it::describe_output(&out)
    );

    // With a shared pid namespace, pid 1 is pause.
    let out = exec(&pod, &[&name, "--", "cat", "/proc/1/cmdline"]);
    assert!(
        stdout(&out).contains("pause"),
        "{}",
        it::describe_output(&out)
    );

    // -i relays stdin through a pipe, to its end; without -i it is empty.
    let mut child = exec_command(&pod, &["-i", &name, "--", "sh", "-c", "cat; echo end"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let big: String = (0..20000).map(|i| format!("line {i}\n")).collect();
    let writer = {
        let big = big.clone();
        std::thread::spawn(move || {
            input.write_all(big.as_bytes()).unwrap();
        })
    };
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", it::describe_output(&out));
    assert_eq!(stdout(&out), format!("{big}end\n"));
    let mut child = exec_command(&pod, &[&name, "--", "sh", "-c", "cat; echo end"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"not for it\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "end\n", "{}", it::describe_output(&out));

    // -t without a terminal on stdin: no tty, as kubectl.
    let out = exec(
        &pod,
        &[
            "-i",
            "-t",
            &name,
            "--",
            "sh",
            "-c",
            "[ -t 0 ] || echo no-tty",
        ],
    );
    assert_eq!(stdout(&out), "no-tty\n", "{}", it::describe_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Unable to use a TTY"),
        "{}",
        it::describe_output(&out)
    );

    // Bad requests name what is wrong.
    let out = exec(&pod, &[&name, "-c", "third", "--", "true"]);
    assert_eq!(out.status.code(), Some(1), "{}", it::describe_output(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "container third not found in pod default/{name} (containers: first, second)"
        )),
        "{err}"
    );
    let out = exec(&pod, &[&name, "--", "/no/such/program"]);
    assert_eq!(out.status.code(), Some(1), "{}", it::describe_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/no/such/program"),
        "{}",
        it::describe_output(&out)
    );
    pod.stop_clean();
}

#[test]
fn a_pod_that_is_gone_is_refused() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("exec-gone");
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: Never
  containers:
  - name: app
    image: {IMAGE}
    command: [{BUSYBOX}, sleep, "3600"]
  - name: once
    image: {IMAGE}
    command: [{BUSYBOX}, "true"]
"#
    );
    let out = Command::new(bin("supervisor"))
        .args([
            "exec",
            "--state-dir",
            "/nonexistent/state",
            "nosuch",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", it::describe_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("pod default/nosuch not found in /nonexistent/state"),
        "{}",
        it::describe_output(&out)
    );

    let root = tempfile::tempdir().unwrap();
    let mut pod = RunningPod::start_in(&name, &manifest, RunOptions::default(), root.path());
    pod.wait_status(Duration::from_secs(30), "app running, once ended", |s| {
        RunningPod::container(s, "app")["state"]["running"].is_object()
            && RunningPod::container(s, "once")["state"]["terminated"].is_object()
    });
    let out = exec(&pod, &[&name, "--", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", it::describe_output(&out));
    // An instance that ended leaves nothing to exec into.
    let out = exec(&pod, &[&name, "-c", "once", "--", "true"]);
    assert_eq!(out.status.code(), Some(1), "{}", it::describe_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "container once of pod default/{name} is not running"
        )),
        "{}",
        it::describe_output(&out)
    );
    // The supervisor dies without its teardown: its lock goes with it.
    pod.signal(Signal::SIGKILL);
    pod.wait_exit(Duration::from_secs(10));
    let out = exec(&pod, &[&name, "--", "true"]);
    assert_eq!(out.status.code(), Some(1), "{}", it::describe_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "pod default/{name} is not running: its supervisor is gone"
        )),
        "{}",
        it::describe_output(&out)
    );
    // `status` reclaims what it left.
    let status = Command::new(bin("supervisor"))
        .args(["status", "--state-dir"])
        .arg(pod.layout().state_root())
        .arg(&name)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("SupervisorGone"),
        "{}",
        it::describe_output(&status)
    );
    let left = leftovers(&name, &pod.state_dir());
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Read what `master` gives until `needle` shows up (or 20 s pass).
fn read_until(master: &mut std::fs::File, seen: &mut String, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 4096];
    while !seen.contains(needle) {
        assert!(Instant::now() < deadline, "no {needle:?} in {seen:?}");
        let mut fds = [nix::poll::PollFd::new(
            master.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(200u16)).unwrap_or(0) == 0 {
            continue;
        }
        match master.read(&mut buf) {
            Ok(0) | Err(_) => panic!("the terminal closed before {needle:?}: {seen:?}"),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
}

#[test]
fn exec_with_a_terminal_relays_size_keys_and_status() {
    if !prerequisites() {
        return;
    }
    let name = unique_name("exec-tty");
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {IMAGE}
    command: [{BUSYBOX}, sleep, "3600"]
"#
    );
    let pod = RunningPod::start(&name, &manifest, RunOptions::default());
    wait_running(&pod, "app");

    // The client's terminal: a pty of the test's, 40 x 120.
    let size = nix::pty::Winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pair = nix::pty::openpty(Some(&size), None).unwrap();
    let slave: OwnedFd = pair.slave;
    let mut master = std::fs::File::from(pair.master);
    let script = "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; stty size; echo ready; read line; echo got=$line; stty size; echo wait; sleep 30";
    let mut client = exec_command(&pod, &["-i", "-t", &name, "--", "sh", "-c", script])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    read_until(&mut master, &mut seen, "ready");
    assert!(seen.contains("is-a-tty"), "{seen:?}");
    assert!(seen.contains("40 120"), "the window size: {seen:?}");
    // The client's terminal is raw while it runs: no echo of its own.
    let termios = nix::sys::termios::tcgetattr(slave.as_fd()).unwrap();
    assert!(
        !termios
            .local_flags
            .contains(nix::sys::termios::LocalFlags::ECHO),
        "raw mode"
    );
    // A resize reaches the command's terminal on SIGWINCH.
    let bigger = nix::pty::Winsize {
        ws_row: 50,
        ws_col: 132,
        ..size
    };
    supervisor::terminal::set_window_size(slave.as_fd(), &bigger).unwrap();
    it::signal(client.id() as i32, Signal::SIGWINCH);
    std::thread::sleep(Duration::from_millis(200));
    master.write_all(b"hello\r").unwrap();
    read_until(&mut master, &mut seen, "wait");
    assert!(seen.contains("got=hello"), "{seen:?}");
    assert!(seen.contains("50 132"), "the new window size: {seen:?}");
    // Ctrl-C goes through the pty to the command's foreground group.
    master.write_all(&[0x03]).unwrap();
    let status = wait_until(Duration::from_secs(10), || client.try_wait().unwrap())
        .unwrap_or_else(|| panic!("Ctrl-C did not end the command: {seen:?}"));
    assert_eq!(status.code(), Some(130), "sh killed by SIGINT: {seen:?}");
    // The client's terminal is as it was.
    let after = nix::sys::termios::tcgetattr(slave.as_fd()).unwrap();
    assert!(
        after
            .local_flags
            .contains(nix::sys::termios::LocalFlags::ECHO),
        "terminal restored"
    );
    pod.stop_clean();
}
