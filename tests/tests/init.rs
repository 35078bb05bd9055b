//! Black-box tests of `supervisor init` on the release binary, each case run
//! both as PID 1 of a fresh PID namespace and as a plain child (subreaper),
//! and compared with /usr/bin/tini and /usr/bin/dumb-init where they define
//! the expected behaviour. `supervisor init` execs `supervisor-init` from
//! beside it, so [`Which::Ours`] tests that binary; [`Which::InProcess`]
//! runs a copy of the supervisor with no `supervisor-init` beside it, which
//! does the same in its own process (the fallback). The texts
//! supervisor-init prints are compared with the supervisor's at the end.
//!
//! PID 1 mode: the spawned process unshares a PID namespace and forks
//! (like `unshare --pid --fork --kill-child`); its child is PID 1 and execs
//! the init, the parent waits and mirrors its exit. Every process a test
//! starts is killed by pid when its [`Running`] guard drops. Run as root:
//! `cargo build --release --workspace && cargo test -p it --test init`.

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use it::{bin, wait_until};

const BUSYBOX: &str = "/bin/busybox";
const TINI: &str = "/usr/bin/tini";
const DUMB_INIT: &str = "/usr/bin/dumb-init";
const PYTHON: &str = "/usr/bin/python3";

/// A python child that reports the first signal it gets and exits with its
/// number (SIGKILL, SIGSTOP and glibc's 32/33 cannot be caught).
const REPORTER: &str = r#"
import os, signal, sys
def on(s, _):
    sys.stdout.write("got %d\n" % s); sys.stdout.flush(); os._exit(s)
for s in range(1, 65):
    try: signal.signal(s, on)
    except (OSError, ValueError, RuntimeError): pass
print("ready", flush=True)
while True: signal.pause()
"#;

/// A python child that forks a grandchild (same process group); both report
/// USR1 and TERM; TERM ends them with exit 0.
const FAMILY: &str = r#"
import os, signal, sys
role = "child"
def on(s, _):
    sys.stdout.write("%s got %d\n" % (role, s)); sys.stdout.flush()
    if s == signal.SIGTERM: os._exit(0)
signal.signal(signal.SIGUSR1, on)
signal.signal(signal.SIGTERM, on)
if os.fork() == 0: role = "grandchild"
sys.stdout.write(role + " ready\n"); sys.stdout.flush()
while True: signal.pause()
"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    /// `supervisor init`, which becomes `supervisor-init`.
    Ours,
    /// `supervisor init` without `supervisor-init` beside it: in-process.
    InProcess,
    Tini,
    DumbInit,
}

/// A copy of the release supervisor alone in a directory of its own, so
/// that `supervisor init` finds no `supervisor-init` beside it.
fn lone_supervisor() -> &'static Path {
    static COPY: std::sync::OnceLock<(tempfile::TempDir, std::path::PathBuf)> =
        std::sync::OnceLock::new();
    let (_, path) = COPY.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("supervisor");
        fs::copy(bin("supervisor"), &path).expect("copy the supervisor");
        (dir, path)
    });
    path
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// PID 1 of a new PID namespace.
    Pid1,
    /// A plain child of the test.
    Child,
}

const MODES: [Mode; 2] = [Mode::Pid1, Mode::Child];
const ALL: [Which; 3] = [Which::Ours, Which::Tini, Which::DumbInit];

impl Which {
    /// argv up to and including the `--` before the command. `flags` are
    /// the init's own flags. tini needs `-s` to reap orphans as a child.
    fn argv(self, mode: Mode, flags: &[&str]) -> Vec<OsString> {
        let mut argv: Vec<OsString> = match self {
            Which::Ours => vec![bin("supervisor").into(), "init".into()],
            Which::InProcess => vec![lone_supervisor().into(), "init".into()],
            Which::Tini => {
                let mut v = vec![OsString::from(TINI)];
                if mode == Mode::Child {
                    v.push("-s".into());
                }
                v
            }
            Which::DumbInit => vec![DUMB_INIT.into()],
        };
        argv.extend(flags.iter().map(OsString::from));
        argv.push("--".into());
        argv
    }
}

/// Extra set-up of the process that becomes the init.
#[derive(Default)]
struct Setup {
    /// Becomes fd 5 of the init (not close-on-exec).
    fd5: Option<OwnedFd>,
    /// stdin/stdout/stderr of the init, made its controlling terminal (the
    /// init is a session leader).
    tty: Option<OwnedFd>,
    /// With `tty`: the init runs in a background process group of the
    /// terminal's session instead of leading it.
    background: bool,
    /// Start the init with SIGUSR1 blocked and SIGINT ignored, as a sloppy
    /// parent would.
    taint_signals: bool,
    /// Working directory of the init.
    cwd: Option<std::path::PathBuf>,
}

/// A started init: the spawned process (the init, or in PID 1 mode the
/// namespace's parent) and the init's pid as the test sees it.
struct Running {
    top: Child,
    init: i32,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    what: String,
    /// Reaped: its pid may be reused, so the guard must not signal it.
    exited: bool,
    /// How it ended, when that was seen before [`Running::wait`].
    ended: Option<std::process::ExitStatus>,
}

fn start(init: Which, mode: Mode, flags: &[&str], command: &[&str], setup: Setup) -> Running {
    let argv = init.argv(mode, flags);
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).args(command);
    cmd.stdin(Stdio::null());
    match &setup.tty {
        Some(tty) => {
            cmd.stdin(tty.try_clone().expect("dup tty"));
            cmd.stdout(tty.try_clone().expect("dup tty"));
            cmd.stderr(tty.try_clone().expect("dup tty"));
        }
        None => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
    }
    if let Some(dir) = &setup.cwd {
        cmd.current_dir(dir);
    }
    let how = PreExec {
        fd5: setup.fd5.as_ref().map(|fd| fd.as_raw_fd()).unwrap_or(-1),
        tty: setup.tty.is_some(),
        background: setup.background,
        taint: setup.taint_signals,
        pid1: mode == Mode::Pid1,
    };
    // SAFETY: the closure runs in the forked child before exec and only
    // makes async-signal-safe system calls (no allocation, no locks).
    unsafe {
        cmd.pre_exec(move || pre_exec(how));
    }
    let mut top = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {argv:?}: {e}"));
    drop(cmd);
    let stdout = collect(top.stdout.take());
    let stderr = collect(top.stderr.take());
    let mut ended = None;
    let init_pid = if how.pid1 || how.background {
        // The spawned process's child, unless it is already gone (a command that
        // fails or exits at once): then there is nothing to signal.
        let parent = top.id() as i32;
        wait_until(Duration::from_secs(5), || {
            if let Some(&pid) = children(parent).first() {
                return Some(pid);
            }
            ended = top.try_wait().expect("try_wait");
            ended.map(|_| 0)
        })
        .expect("the init appears")
    } else {
        top.id() as i32
    };
    Running {
        top,
        init: init_pid,
        stdout,
        stderr,
        what: format!("{init:?} as {mode:?} running {command:?} with {flags:?}"),
        exited: ended.is_some(),
        ended,
    }
}

/// What the process spawned by `Command` does before the init execs.
#[derive(Clone, Copy)]
struct PreExec {
    fd5: i32,
    tty: bool,
    background: bool,
    taint: bool,
    pid1: bool,
}

/// In the child of `Command`: fd 5, tainted signal state, the PID namespace
/// and the controlling terminal (the init leads the session, or with
/// `background` the spawned process does and the init runs in a background
/// group of it). Async-signal-safe.
fn pre_exec(how: PreExec) -> std::io::Result<()> {
    use std::io::Error;
    // SAFETY: (whole function) plain system calls on integers and on
    // stack memory we own; nothing allocates.
    unsafe {
        if how.fd5 == 5 {
            // dup2 onto itself would keep close-on-exec.
            libc::fcntl(5, libc::F_SETFD, 0);
        } else if how.fd5 >= 0 && libc::dup2(how.fd5, 5) < 0 {
            return Err(Error::last_os_error());
        }
        if how.taint {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            libc::signal(libc::SIGINT, libc::SIG_IGN);
        }
        let take_terminal = || -> std::io::Result<()> {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(Error::last_os_error());
            }
            Ok(())
        };
        if how.tty && how.background {
            take_terminal()?;
        }
        if how.pid1 && libc::unshare(libc::CLONE_NEWPID) < 0 {
            return Err(Error::last_os_error());
        }
        if how.pid1 || how.background {
            let pid = libc::fork();
            if pid < 0 {
                return Err(Error::last_os_error());
            }
            if pid > 0 {
                // The parent: hold no descriptor but stdio (std's exec
                // error pipe among them), wait, and mirror the exit.
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                let mut status = 0;
                while libc::waitpid(pid, &mut status, 0) < 0 {}
                if libc::WIFEXITED(status) {
                    libc::_exit(libc::WEXITSTATUS(status));
                }
                let signal = libc::WTERMSIG(status);
                libc::signal(signal, libc::SIG_DFL);
                let mut empty: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut empty);
                libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
                libc::kill(libc::getpid(), signal);
                libc::_exit(128 + signal);
            }
            // Die with the parent (the test's guard kills that one).
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if how.background && libc::setpgid(0, 0) < 0 {
                return Err(Error::last_os_error());
            }
        }
        if how.tty && !how.background {
            take_terminal()?;
        }
    }
    Ok(())
}

/// Read a pipe to its end in a thread, into a shared string.
fn collect<R: Read + Send + 'static>(pipe: Option<R>) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    if let Some(mut pipe) = pipe {
        let out = Arc::clone(&text);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
    }
    text
}

/// Direct children of `pid` (all its threads), as the host sees them.
fn children(pid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return found;
    };
    for task in tasks.flatten() {
        let path = task.path().join("children");
        if let Ok(text) = fs::read_to_string(path) {
            found.extend(
                text.split_whitespace()
                    .filter_map(|s| s.parse::<i32>().ok()),
            );
        }
    }
    found
}

/// `pid` and all its descendants, parents first.
fn tree(pid: i32) -> Vec<i32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let kids = children(all[i]);
        all.extend(kids);
        i += 1;
    }
    all
}

/// The state letter of `/proc/<pid>/stat` (R, S, T, Z, ...), if it exists.
fn state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

fn alive(pid: i32) -> bool {
    // A zombie is dead for our purposes; a reaped pid has no stat.
    !matches!(state(pid), None | Some('Z') | Some('X'))
}

fn signal(pid: i32, signal: i32) {
    // SAFETY: kill takes plain integers.
    let ret = unsafe { libc::kill(pid, signal) };
    assert_eq!(ret, 0, "kill({pid}, {signal})");
}

impl Running {
    fn signal(&self, sig: i32) {
        signal(self.init, sig);
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait until stdout contains `text`; panics after 10 s.
    fn expect_output(&self, text: &str) {
        let found = wait_until(Duration::from_secs(10), || {
            self.stdout().contains(text).then_some(())
        });
        assert!(
            found.is_some(),
            "{}: no {text:?} in stdout {:?}, stderr {:?}",
            self.what,
            self.stdout(),
            self.stderr()
        );
    }

    /// The init's (first) child.
    fn child(&self) -> i32 {
        wait_until(Duration::from_secs(5), || {
            children(self.init).first().copied()
        })
        .unwrap_or_else(|| panic!("{}: the init has no child", self.what))
    }

    /// Wait for the init to end; panics after `timeout`.
    fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self
                .ended
                .or_else(|| self.top.try_wait().expect("try_wait"))
            {
                self.exited = true;
                // Let the reader threads drain what is left.
                thread::sleep(Duration::from_millis(20));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{}: still running after {timeout:?}; stdout {:?}, stderr {:?}",
                self.what,
                self.stdout(),
                self.stderr()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Wait for the init to end with `code`.
    fn expect_code(&mut self, code: i32) {
        let status = self.wait(Duration::from_secs(15));
        assert_eq!(
            status.code(),
            Some(code),
            "{}: {status:?}; stdout {:?}, stderr {:?}",
            self.what,
            self.stdout(),
            self.stderr()
        );
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Everything still around, by pid: the spawned process first (in
        // PID 1 mode its death takes the namespace with it), then the rest.
        if self.exited {
            return;
        }
        for pid in tree(self.top.id() as i32) {
            // SAFETY: kill takes plain integers; these are our processes.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = self.top.wait();
    }
}

fn prerequisites() -> bool {
    it::prerequisite(it::is_root(), "root (uid 0)")
        && it::prerequisite(Path::new(BUSYBOX).is_file(), "/bin/busybox")
        && it::prerequisite(Path::new(TINI).is_file(), "/usr/bin/tini")
        && it::prerequisite(Path::new(DUMB_INIT).is_file(), "/usr/bin/dumb-init")
        && it::prerequisite(Path::new(PYTHON).is_file(), "/usr/bin/python3")
}

fn sh(script: &str) -> Vec<&str> {
    vec![BUSYBOX, "sh", "-c", script]
}

#[test]
fn exit_code_is_the_childs_like_tini_and_dumb_init() {
    if !prerequisites() {
        return;
    }
    for mode in MODES {
        for init in ALL {
            for code in [0, 1, 2, 3, 42, 125, 126, 127, 128, 129, 200, 254, 255] {
                let script = format!("exit {code}");
                start(init, mode, &[], &sh(&script), Setup::default()).expect_code(code);
            }
        }
    }
}

#[test]
fn a_killed_child_gives_128_plus_the_signal_like_tini_and_dumb_init() {
    if !prerequisites() {
        return;
    }
    for mode in MODES {
        for init in ALL {
            for sig in [1, 2, 9, 11, 15, 34, 50, 64] {
                let script = format!("ulimit -c 0; kill -{sig} $$; sleep 5");
                start(init, mode, &[], &sh(&script), Setup::default()).expect_code(128 + sig);
            }
        }
    }
}

/// Start the reporter, send `sent` to the init, expect the child to get
/// `got` and the init to exit with it.
fn expect_forward(init: Which, mode: Mode, flags: &[&str], sent: &[i32], got: i32) {
    let mut run = start(
        init,
        mode,
        flags,
        &[PYTHON, "-c", REPORTER],
        Setup::default(),
    );
    run.expect_output("ready");
    for &sig in sent {
        run.signal(sig);
    }
    run.expect_output(&format!("got {got}\n"));
    run.expect_code(got);
    let out = run.stdout();
    assert_eq!(
        out.matches("got").count(),
        1,
        "{}: exactly one signal reached the child: {out:?}",
        run.what
    );
}

#[test]
fn term_hup_usr1_are_forwarded_like_tini_and_dumb_init() {
    if !prerequisites() {
        return;
    }
    for mode in MODES {
        for init in ALL {
            for sig in [libc::SIGTERM, libc::SIGHUP, libc::SIGUSR1] {
                expect_forward(init, mode, &[], &[sig], sig);
            }
        }
    }
}

#[test]
fn every_catchable_signal_is_forwarded() {
    if !prerequisites() {
        return;
    }
    let signals = (1..=64).filter(|s| {
        ![
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGCHLD,
            32,
            33,
            // These stop a process; see the stop test.
            libc::SIGTSTP,
            libc::SIGTTIN,
            libc::SIGTTOU,
        ]
        .contains(s)
    });
    for sig in signals {
        for mode in MODES {
            expect_forward(Which::Ours, mode, &[], &[sig], sig);
        }
    }
}

#[test]
fn glibc_internal_signals_are_forwarded_not_fatal_to_the_init() {
    if !prerequisites() {
        return;
    }
    // tini and dumb-init leave 32 and 33 unblocked (glibc's sigfillset
    // skips them) and die of them; ours forwards them, and the child, which
    // cannot catch them, dies: 128 + N from an init that exited normally.
    for mode in MODES {
        for sig in [32, 33] {
            let mut run = start(
                Which::Ours,
                mode,
                &[],
                &[PYTHON, "-c", REPORTER],
                Setup::default(),
            );
            run.expect_output("ready");
            run.signal(sig);
            run.expect_code(128 + sig);
        }
    }
}

#[test]
fn fault_signals_sent_from_outside_are_forwarded() {
    if !prerequisites() {
        return;
    }
    for mode in MODES {
        for sig in [
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGILL,
            libc::SIGABRT,
            libc::SIGTRAP,
            libc::SIGSYS,
        ] {
            expect_forward(Which::Ours, mode, &[], &[sig], sig);
        }
        // sigqueue (SI_QUEUE) and tgkill (SI_TKILL) count as sent too.
        let mut run = start(
            Which::Ours,
            mode,
            &[],
            &[PYTHON, "-c", REPORTER],
            Setup::default(),
        );
        run.expect_output("ready");
        // SAFETY: sigqueue with a zeroed sigval on a pid we started.
        let ret =
            unsafe { libc::sigqueue(run.init, libc::SIGSEGV, std::mem::zeroed::<libc::sigval>()) };
        assert_eq!(ret, 0);
        run.expect_code(libc::SIGSEGV);
        let mut run = start(
            Which::Ours,
            mode,
            &[],
            &[PYTHON, "-c", REPORTER],
            Setup::default(),
        );
        run.expect_output("ready");
        // SAFETY: tgkill on the main thread of a process we started.
        let ret = unsafe { libc::syscall(libc::SYS_tgkill, run.init, run.init, libc::SIGBUS) };
        assert_eq!(ret, 0);
        run.expect_code(libc::SIGBUS);
    }
}

#[test]
fn sigchld_is_not_forwarded_like_tini_and_dumb_init() {
    if !prerequisites() {
        return;
    }
    for mode in MODES {
        for init in ALL {
            let mut run = start(init, mode, &[], &[PYTHON, "-c", REPORTER], Setup::default());
            run.expect_output("ready");
            run.signal(libc::SIGCHLD);
            thread::sleep(Duration::from_millis(100));
            run.signal(libc::SIGTERM);
            run.expect_output("got 15\n");
            run.expect_code(15);
            assert!(!run.stdout().contains("got 17"), "{}", run.what);
        }
    }
}

#[test]
fn orphans_are_reaped_like_tini_and_dumb_init() {
    if !prerequisites() {
        return;
    }
    for mode in MODES {
        for init in ALL {
            if init == Which::DumbInit && mode == Mode::Child {
                continue; // dumb-init reaps only as PID 1
            }
            let script = "(sleep 0.3 &) ; (sleep 0.3 &) ; exec sleep 100";
            let mut run = start(init, mode, &[], &sh(script), Setup::default());
            // The orphans are re-parented to the init ...
            let adopted = wait_until(Duration::from_secs(5), || {
                (children(run.init).len() >= 3).then_some(())
            });
            assert!(adopted.is_some(), "{}: orphans not adopted", run.what);
            // ... and reaped once they exit: only the main child remains.
            let reaped = wait_until(Duration::from_secs(5), || {
                let kids = children(run.init);
                (kids.len() == 1 && kids.iter().all(|&p| state(p) != Some('Z'))).then_some(())
            });
            assert!(
                reaped.is_some(),
                "{}: children left {:?}",
                run.what,
                children(run.init)
                    .iter()
                    .map(|&p| (p, state(p)))
                    .collect::<Vec<_>>()
            );
            run.signal(libc::SIGTERM);
            run.expect_code(128 + libc::SIGTERM);
        }
    }
}

#[test]
fn exec_failures_exit_127_or_126_naming_the_path_like_tini() {
    if !prerequisites() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("not-executable");
    fs::write(&plain, "#!/bin/sh\nexit 0\n").unwrap();
    let plain = plain.to_str().unwrap().to_string();
    let dir_path = dir.path().to_str().unwrap().to_string();
    let cases: [(&str, i32); 4] = [
        ("/nonexistent/program", 127),
        ("no-such-command-on-path", 127),
        (&plain, 126),
        (&dir_path, 126),
    ];
    for mode in MODES {
        for (path, code) in cases {
            // dumb-init exits 2 on any exec failure: not compared.
            for init in [Which::Ours, Which::Tini] {
                let mut run = start(init, mode, &[], &[path], Setup::default());
                run.expect_code(code);
                if init == Which::Ours {
                    assert!(
                        run.stderr().contains(path),
                        "message names {path}: {:?}",
                        run.stderr()
                    );
                }
            }
        }
    }
}

#[test]
fn g_signals_the_whole_process_group_like_tini_and_dumb_init() {
    if !prerequisites() {
        return;
    }
    for mode in MODES {
        for (init, flags) in [
            (Which::Ours, vec!["-g"]),
            (Which::Tini, vec!["-g"]),
            (Which::DumbInit, vec![]),
        ] {
            let mut run = start(
                init,
                mode,
                &flags,
                &[PYTHON, "-c", FAMILY],
                Setup::default(),
            );
            run.expect_output("child ready");
            run.expect_output("grandchild ready");
            run.signal(libc::SIGUSR1);
            run.expect_output("child got 10");
            run.expect_output("grandchild got 10");
            run.signal(libc::SIGTERM);
            run.expect_code(0);
        }
        // Without it, only the child gets signals.
        for (init, flags) in [
            (Which::Ours, vec![]),
            (Which::Tini, vec![]),
            (Which::DumbInit, vec!["-c"]),
        ] {
            let mut run = start(
                init,
                mode,
                &flags,
                &[PYTHON, "-c", FAMILY],
                Setup::default(),
            );
            run.expect_output("child ready");
            run.expect_output("grandchild ready");
            run.signal(libc::SIGUSR1);
            run.expect_output("child got 10");
            thread::sleep(Duration::from_millis(300));
            assert!(
                !run.stdout().contains("grandchild got 10"),
                "{}: {:?}",
                run.what,
                run.stdout()
            );
            if init == Which::Ours {
                // The child exits on TERM; the grandchild, left in its
                // group, then gets SIGTERM from the init's clean-up.
                run.signal(libc::SIGTERM);
                run.expect_output("grandchild got 15");
                run.expect_code(0);
            }
        }
    }
}

#[test]
fn rewrite_changes_or_drops_signals_like_dumb_init() {
    if !prerequisites() {
        return;
    }
    for mode in MODES {
        for (init, flag) in [(Which::Ours, "--rewrite"), (Which::DumbInit, "-r")] {
            expect_forward(
                init,
                mode,
                &[flag, "15:10"],
                &[libc::SIGTERM],
                libc::SIGUSR1,
            );
            // Dropped: USR1 never arrives, the HUP after it does.
            expect_forward(
                init,
                mode,
                &[flag, "10:0"],
                &[libc::SIGUSR1, libc::SIGHUP],
                1,
            );
        }
        expect_forward(
            Which::Ours,
            mode,
            &["--rewrite", "TERM:QUIT", "-r", "HUP:RTMIN+2"],
            &[libc::SIGHUP],
            36,
        );
    }
    // Usage errors: clap's exit code 2 and a message.
    for bad in ["9:1", "15", "15:99", "x:1"] {
        let out = Command::new(bin("supervisor"))
            .args(["init", "--rewrite", bad, "--", "true"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--rewrite {bad}");
        assert!(!out.stderr.is_empty());
    }
}

/// Start ours with `script`, which prints the pid of a leftover process
/// then exits 3; return the exit time and that pid.
fn leftover_case(mode: Mode, grace: &str, script: &str) -> (Duration, i32) {
    let mut run = start(
        Which::Ours,
        mode,
        &["--grace-period", grace],
        &sh(script),
        Setup::default(),
    );
    let started = Instant::now();
    let status = run.wait(Duration::from_secs(15));
    let took = started.elapsed();
    assert_eq!(status.code(), Some(3), "{}: {:?}", run.what, run.stderr());
    let leftover: i32 = run
        .stdout()
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{}: no pid in {:?}", run.what, run.stdout()));
    (took, leftover)
}

#[test]
fn leftovers_get_sigterm_then_sigkill_after_the_grace_period() {
    if !prerequisites() {
        return;
    }
    for mode in MODES {
        // In Child mode the printed pid is the host's: check it is gone. In
        // PID 1 mode the namespace dies with the init anyway; the timing
        // shows what the init did.
        let gone = |pid: i32| mode == Mode::Pid1 || !alive(pid);

        // A group member that honours SIGTERM: quick, despite a long grace.
        let (took, pid) = leftover_case(mode, "10", "sleep 100 & echo $!; exit 3");
        assert!(took < Duration::from_secs(3), "{mode:?}: took {took:?}");
        assert!(gone(pid), "{mode:?}: leftover {pid} alive");

        // One that ignores it: SIGKILL after the grace period.
        let script = "trap '' TERM; sleep 100 & echo $!; exit 3";
        let (took, pid) = leftover_case(mode, "0.5", script);
        assert!(
            took >= Duration::from_millis(500),
            "{mode:?}: took {took:?}"
        );
        assert!(took < Duration::from_secs(4), "{mode:?}: took {took:?}");
        assert!(gone(pid), "{mode:?}: leftover {pid} alive");

        // Grace 0: SIGKILL at once.
        let (took, pid) = leftover_case(mode, "0", script);
        assert!(took < Duration::from_millis(450), "{mode:?}: took {took:?}");
        assert!(gone(pid), "{mode:?}: leftover {pid} alive");

        // A stopped member still gets to act on SIGTERM (SIGCONT follows).
        let script = "sleep 100 & kill -STOP $!; echo $!; exit 3";
        let (took, pid) = leftover_case(mode, "10", script);
        assert!(took < Duration::from_secs(3), "{mode:?}: took {took:?}");
        assert!(gone(pid), "{mode:?}: leftover {pid} alive");

        // A descendant that left the group (own session) is a leftover too.
        let script = "busybox setsid sleep 100 & echo $!; exit 3";
        let (took, pid) = leftover_case(mode, "10", script);
        assert!(took < Duration::from_secs(3), "{mode:?}: took {took:?}");
        assert!(gone(pid), "{mode:?}: leftover {pid} alive");
    }
}

#[test]
fn descriptors_beyond_stdio_pass_through_like_tini_and_dumb_init() {
    if !prerequisites() {
        return;
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().to_str().unwrap().to_string();
    for mode in MODES {
        for init in ALL {
            let fd = OwnedFd::from(file.reopen().unwrap());
            let setup = Setup {
                fd5: Some(fd),
                ..Setup::default()
            };
            let mut run = start(
                init,
                mode,
                &[],
                &[BUSYBOX, "readlink", "/proc/self/fd/5"],
                setup,
            );
            run.expect_code(0);
            assert_eq!(run.stdout().trim(), path, "{}", run.what);
        }
    }
}

#[test]
fn the_child_starts_with_an_empty_mask_and_default_dispositions() {
    if !prerequisites() {
        return;
    }
    for mode in MODES {
        // The init's parent blocked SIGUSR1 and ignored SIGINT; tini passes
        // such a state on, ours does not.
        let setup = Setup {
            taint_signals: true,
            ..Setup::default()
        };
        let command = [BUSYBOX, "grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"];
        let mut run = start(Which::Ours, mode, &[], &command, setup);
        run.expect_code(0);
        let out = run.stdout();
        assert!(
            out.contains("SigBlk:\t0000000000000000"),
            "{mode:?}: {out:?}"
        );
        assert!(
            out.contains("SigIgn:\t0000000000000000"),
            "{mode:?}: {out:?}"
        );
    }
}

#[test]
fn the_init_moves_to_root_the_child_keeps_its_directory() {
    if !prerequisites() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for mode in MODES {
        let setup = Setup {
            cwd: Some(dir.path().to_path_buf()),
            ..Setup::default()
        };
        let mut run = start(Which::Ours, mode, &[], &sh("pwd; exec sleep 100"), setup);
        run.expect_output(dir.path().to_str().unwrap());
        // The init moves right after the child has exec'd.
        let at_root = wait_until(Duration::from_secs(5), || {
            let cwd = fs::read_link(format!("/proc/{}/cwd", run.init)).ok()?;
            (cwd == Path::new("/")).then_some(())
        });
        assert!(at_root.is_some(), "{mode:?}: the init's cwd is not /");
        run.signal(libc::SIGTERM);
        run.expect_code(143);
    }
}

#[test]
fn silent_unless_verbose() {
    if !prerequisites() {
        return;
    }
    for mode in MODES {
        let mut run = start(Which::Ours, mode, &[], &[BUSYBOX, "true"], Setup::default());
        run.expect_code(0);
        assert_eq!(run.stderr(), "", "{mode:?}");
        let mut run = start(
            Which::Ours,
            mode,
            &["-v"],
            &[BUSYBOX, "true"],
            Setup::default(),
        );
        run.expect_code(0);
        let expected = match mode {
            Mode::Pid1 => "PID 1",
            Mode::Child => "subreaper",
        };
        assert!(
            run.stderr().contains(expected),
            "{mode:?}: {:?}",
            run.stderr()
        );
    }
}

#[test]
fn stop_signals_stop_the_child_never_the_init() {
    if !prerequisites() {
        return;
    }
    for mode in MODES {
        for init in [Which::Ours, Which::Tini] {
            let mut run = start(
                init,
                mode,
                &[],
                &[BUSYBOX, "sleep", "100"],
                Setup::default(),
            );
            let child = run.child();
            // tini forwards SIGTSTP but ignores SIGTTIN/SIGTTOU.
            let stops: &[i32] = match init {
                Which::Ours => &[libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU],
                _ => &[libc::SIGTSTP],
            };
            for &sig in stops {
                run.signal(sig);
                let stopped = wait_until(Duration::from_secs(5), || {
                    (state(child) == Some('T')).then_some(())
                });
                assert!(
                    stopped.is_some(),
                    "{}: child not stopped by {sig}",
                    run.what
                );
                assert_ne!(state(run.init), Some('T'), "{}: init stopped", run.what);
                run.signal(libc::SIGCONT);
                let resumed = wait_until(Duration::from_secs(5), || {
                    (state(child) == Some('S')).then_some(())
                });
                assert!(resumed.is_some(), "{}: child not continued", run.what);
            }
            run.signal(libc::SIGTERM);
            run.expect_code(143);
        }
    }
}

/// A pseudo-terminal: the master (close-on-exec, kept by the test) and the
/// slave for the init.
fn pty() -> (nix::pty::PtyMaster, OwnedFd) {
    use nix::fcntl::OFlag;
    let master =
        nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).unwrap();
    nix::pty::grantpt(&master).unwrap();
    nix::pty::unlockpt(&master).unwrap();
    let name = nix::pty::ptsname_r(&master).unwrap();
    let slave = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags_noctty()
        .open(name)
        .unwrap();
    (master, OwnedFd::from(slave))
}

trait NoCtty {
    fn custom_flags_noctty(&mut self) -> &mut Self;
}

impl NoCtty for fs::OpenOptions {
    fn custom_flags_noctty(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        // std adds O_CLOEXEC itself.
        self.custom_flags(libc::O_NOCTTY)
    }
}

/// Fields of `/proc/self/stat` as printed through the terminal by `cat`.
fn stat_fields(text: &str) -> Option<Vec<i64>> {
    let line = text.lines().find(|l| l.contains("(cat)"))?;
    let rest = &line[line.rfind(')')? + 1..];
    // state ppid pgrp session tty_nr tpgid ...
    Some(
        rest.split_whitespace()
            .skip(1)
            .take(6)
            .filter_map(|f| f.parse().ok())
            .collect(),
    )
}

#[test]
fn on_a_terminal_the_child_is_the_foreground_group_like_tini_and_dumb_init() {
    if !prerequisites() {
        return;
    }
    for mode in MODES {
        for (init, flags, session) in [
            (Which::Ours, vec![], false),
            (Which::Ours, vec!["-s"], true),
            (Which::Tini, vec![], false),
            (Which::DumbInit, vec![], true),
        ] {
            let (master, slave) = pty();
            let setup = Setup {
                tty: Some(slave),
                ..Setup::default()
            };
            let script = "cat /proc/self/stat; exec sleep 100";
            let mut run = start(init, mode, &flags, &sh(script), setup);
            let master = Arc::new(master);
            let output = {
                let master = Arc::clone(&master);
                collect(Some(ArcReader(master)))
            };
            let fields = wait_until(Duration::from_secs(10), || {
                stat_fields(&output.lock().unwrap()).filter(|f| f.len() == 6)
            })
            .unwrap_or_else(|| panic!("{}: no stat in {:?}", run.what, output.lock().unwrap()));
            let (ppid, pgrp, sid, tty_nr, tpgid) =
                (fields[0], fields[1], fields[2], fields[3], fields[4]);
            assert_eq!(
                pgrp, ppid,
                "{}: the child leads its process group",
                run.what
            );
            assert_eq!(
                tpgid, pgrp,
                "{}: and it is the terminal's foreground",
                run.what
            );
            assert_ne!(
                tty_nr, 0,
                "{}: with the terminal as controlling tty",
                run.what
            );
            if session {
                assert_eq!(sid, ppid, "{}: the child leads its session", run.what);
            } else {
                assert_ne!(
                    sid, ppid,
                    "{}: the child stays in the init's session",
                    run.what
                );
            }
            let child = run.child();
            // Wait for `exec sleep`: a ^Z while `cat` still runs would
            // stop it too, and the shell would wait for it forever.
            let is_sleep = || {
                let comm = fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
                (comm.trim() == "sleep").then_some(())
            };
            wait_until(Duration::from_secs(5), is_sleep).expect("the child execs sleep");
            use std::io::Write;
            if session {
                // A session leader's group is orphaned (its parent is in
                // another session): the kernel discards terminal stop
                // signals for it, so there is no ^Z to test; ^C works.
                (&*master).write_all(&[0x03]).unwrap();
                run.expect_code(128 + libc::SIGINT);
                continue;
            }
            // ^Z stops the foreground group: the child, not the init.
            (&*master).write_all(&[0x1a]).unwrap();
            let stopped = wait_until(Duration::from_secs(5), || {
                (state(child) == Some('T')).then_some(())
            });
            assert!(stopped.is_some(), "{}: ^Z did not stop the child", run.what);
            assert_ne!(state(run.init), Some('T'), "{}", run.what);
            signal(child, libc::SIGCONT);
            wait_until(Duration::from_secs(5), || {
                (state(child) == Some('S')).then_some(())
            })
            .expect("child continued");
            // ^C interrupts it: 128 + SIGINT.
            (&*master).write_all(&[0x03]).unwrap();
            run.expect_code(128 + libc::SIGINT);
        }
    }
}

#[test]
fn from_a_background_group_the_child_still_gets_the_terminal_like_tini() {
    if !prerequisites() {
        return;
    }
    // The init is in a background group of the terminal's session, so its
    // tcsetpgrp only works with SIGTTOU blocked or ignored.
    for mode in MODES {
        for init in [Which::Ours, Which::Tini] {
            let (master, slave) = pty();
            let setup = Setup {
                tty: Some(slave),
                background: true,
                ..Setup::default()
            };
            let script = "cat /proc/self/stat; exec sleep 100";
            let mut run = start(init, mode, &[], &sh(script), setup);
            let master = Arc::new(master);
            let output = collect(Some(ArcReader(Arc::clone(&master))));
            let fields = wait_until(Duration::from_secs(10), || {
                stat_fields(&output.lock().unwrap()).filter(|f| f.len() == 6)
            })
            .unwrap_or_else(|| panic!("{}: no stat in {:?}", run.what, output.lock().unwrap()));
            let (ppid, pgrp, tpgid) = (fields[0], fields[1], fields[4]);
            assert_eq!(
                pgrp, ppid,
                "{}: the child leads its process group",
                run.what
            );
            assert_eq!(
                tpgid, pgrp,
                "{}: and it is the terminal's foreground",
                run.what
            );
            assert_ne!(state(run.child()), Some('T'), "{}", run.what);
            use std::io::Write;
            (&*master).write_all(&[0x03]).unwrap();
            run.expect_code(128 + libc::SIGINT);
        }
    }
}

/// Reads a shared pty master.
struct ArcReader(Arc<nix::pty::PtyMaster>);

impl Read for ArcReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        (&*self.0).read(buf)
    }
}

#[test]
fn an_idle_init_never_wakes_up() {
    if !prerequisites() {
        return;
    }
    for mode in MODES {
        let mut run = start(
            Which::Ours,
            mode,
            &[],
            &[BUSYBOX, "sleep", "100"],
            Setup::default(),
        );
        run.child();
        thread::sleep(Duration::from_millis(100));
        let switches = |pid: i32| -> u64 {
            fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap()
                .lines()
                .filter(|l| l.contains("ctxt_switches"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum()
        };
        let before = switches(run.init);
        thread::sleep(Duration::from_millis(1500));
        let after = switches(run.init);
        assert_eq!(before, after, "{mode:?}: the init woke up while idle");
        run.signal(libc::SIGTERM);
        run.expect_code(143);
    }
}

/// The program the kernel runs for `pid` (`/proc/PID/exe`).
fn exe(pid: i32) -> Option<std::path::PathBuf> {
    fs::read_link(format!("/proc/{pid}/exe")).ok()
}

#[test]
fn supervisor_init_execs_supervisor_init_from_beside_it() {
    if !prerequisites() {
        return;
    }
    // Built with the workspace: the image and the tests ship it.
    let helper = bin("supervisor-init");
    for mode in MODES {
        let mut run = start(
            Which::Ours,
            mode,
            &["-v"],
            &[BUSYBOX, "sleep", "100"],
            Setup::default(),
        );
        // The child is forked after the exec: by then the init is the
        // helper, the same process (the pid the test started).
        let child = run.child();
        assert_eq!(exe(run.init), Some(helper.clone()), "{}", run.what);
        let busybox = fs::canonicalize(BUSYBOX).ok();
        let execd = wait_until(Duration::from_secs(5), || {
            (exe(child) == busybox).then_some(())
        });
        assert!(
            execd.is_some(),
            "{}: the child runs {:?}",
            run.what,
            exe(child)
        );
        run.signal(libc::SIGTERM);
        run.expect_code(143);
        let expected = match mode {
            Mode::Pid1 => "supervisor init: running as PID 1\n",
            Mode::Child => "): registered as child subreaper\n",
        };
        assert!(run.stderr().contains(expected), "{:?}", run.stderr());
    }
}

#[test]
fn without_supervisor_init_beside_it_the_supervisor_does_the_work_itself() {
    if !prerequisites() {
        return;
    }
    let lone = lone_supervisor();
    for mode in MODES {
        let mut run = start(
            Which::InProcess,
            mode,
            &[],
            &[BUSYBOX, "sleep", "100"],
            Setup::default(),
        );
        run.child();
        assert_eq!(exe(run.init).as_deref(), Some(lone), "{}", run.what);
        run.signal(libc::SIGTERM);
        run.expect_code(143);

        // The same behaviour: exit codes, forwarding, rewriting, orphans,
        // exec failures, verbosity.
        for code in [0, 3, 255] {
            let script = format!("exit {code}");
            start(Which::InProcess, mode, &[], &sh(&script), Setup::default()).expect_code(code);
        }
        let script = "ulimit -c 0; kill -11 $$; sleep 5";
        start(Which::InProcess, mode, &[], &sh(script), Setup::default()).expect_code(139);
        expect_forward(Which::InProcess, mode, &[], &[libc::SIGUSR2], libc::SIGUSR2);
        expect_forward(
            Which::InProcess,
            mode,
            &["-r", "TERM:QUIT"],
            &[libc::SIGTERM],
            libc::SIGQUIT,
        );
        let script = "(sleep 0.2 &) ; exec sleep 100";
        let mut run = start(Which::InProcess, mode, &[], &sh(script), Setup::default());
        let reaped = wait_until(Duration::from_secs(5), || {
            thread::sleep(Duration::from_millis(300));
            (children(run.init).len() == 1).then_some(())
        });
        assert!(reaped.is_some(), "{}: orphan not reaped", run.what);
        run.signal(libc::SIGTERM);
        run.expect_code(143);
        let mut run = start(
            Which::InProcess,
            mode,
            &[],
            &["no-such-command-on-path"],
            Setup::default(),
        );
        run.expect_code(127);
        assert_eq!(
            run.stderr(),
            "supervisor init: \"no-such-command-on-path\": command not found \
             (No such file or directory)\n"
        );
        let mut run = start(
            Which::InProcess,
            mode,
            &["-v"],
            &[BUSYBOX, "true"],
            Setup::default(),
        );
        run.expect_code(0);
        assert!(run.stderr().contains("exiting with 0 (exit code 0)"));
    }
}

/// Run `supervisor init` with stdin from /dev/null and return its exit
/// code and stderr, numbers replaced by `N` (not those in names such as
/// SIGUSR1).
fn init_output(supervisor: &Path, flags: &[&str], command: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(supervisor)
        .arg("init")
        .args(flags)
        .arg("--")
        .args(command)
        .stdin(Stdio::null())
        .output()
        .expect("run supervisor init");
    let text = String::from_utf8_lossy(&out.stderr);
    let mut masked = String::new();
    let mut in_number = false;
    let mut after_letter = false;
    for c in text.chars() {
        if c.is_ascii_digit() && !after_letter {
            if !in_number {
                masked.push('N');
            }
            in_number = true;
        } else {
            masked.push(c);
            in_number = false;
            after_letter = c.is_ascii_alphabetic() || (after_letter && c.is_ascii_digit());
        }
    }
    (out.status.code(), masked)
}

#[test]
fn supervisor_init_says_what_the_in_process_init_says() {
    if !prerequisites() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("not-executable");
    fs::write(&plain, "exit 0\n").unwrap();
    let weird = dir.path().join("we\u{1}ird\"'\u{301}name");
    fs::write(&weird, "").unwrap();
    let (plain, weird) = (plain.to_str().unwrap(), weird.to_str().unwrap());
    let dir_path = dir.path().to_str().unwrap();
    // Each ends in a way that does not depend on timing: an exec failure,
    // or a child that lives until the init waits for signals.
    let cases: [(&[&str], Vec<&str>); 9] = [
        (&["-vv"], sh("sleep 0.3; exit 3")),
        (&["-vv"], vec!["no-such-command-on-path"]),
        (&["-vv"], vec![""]),
        (&["-vv"], vec![dir_path]),
        (&["-vv"], vec![plain]),
        (&["-vv"], vec![weird]),
        (&["-vv"], vec!["/nonexistent/program"]),
        (&["-v", "--grace-period", "0"], sh("sleep 0.3; exit 4")),
        (
            &["-vv", "-s", "-g", "-r", "10:0"],
            sh("kill -USR1 $PPID; sleep 0.3; exit 5"),
        ),
    ];
    for (flags, command) in cases {
        let ours = init_output(&bin("supervisor"), flags, &command);
        let in_process = init_output(lone_supervisor(), flags, &command);
        assert_eq!(ours, in_process, "{flags:?} {command:?}");
    }
    // Rewrites, the grace period and the verbosity reach the helper: a
    // dropped signal, and the SIGKILL of a leftover after 0.3 s.
    let script =
        "kill -USR1 $PPID; trap '' TERM; (trap '' TERM; exec sleep 30) & sleep 0.1; exit 6";
    let (code, said) = init_output(
        &bin("supervisor"),
        &["-vv", "--rewrite", "USR1:0", "--grace-period", "0.3"],
        &sh(script),
    );
    assert_eq!(code, Some(6), "{said}");
    for line in [
        "dropping SIGUSR1 (--rewrite)",
        "child N ended: exit code N",
        "grace period over: sending SIGKILL to what is left",
        "reaped orphan N (killed by SIGKILL)",
        "exiting with N (exit code N)",
    ] {
        assert!(said.contains(line), "no {line:?} in {said:?}");
    }
}

#[test]
fn supervisor_init_refuses_arguments_the_supervisor_would_not_pass() {
    let helper = bin("supervisor-init");
    for bad in [
        &["-x", "--", "true"][..],
        &["--rewrite", "9:1", "--", "true"],
        &["--rewrite", "15", "--", "true"],
        &["--rewrite", "15:65", "--", "true"],
        &["--rewrite", "TERM:QUIT", "--", "true"],
        &["--grace-ms", "-1", "--", "true"],
        &["--grace-ms", "1.5", "--", "true"],
        &["true"],
        &["-v", "--"],
    ] {
        let out = Command::new(&helper).args(bad).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {stderr}");
        assert!(
            stderr.starts_with("supervisor-init: refusing "),
            "{bad:?}: {stderr}"
        );
    }
    let out = Command::new(&helper)
        .args([
            "--rewrite",
            "15:0",
            "--grace-ms",
            "0",
            "-g",
            "--",
            "/bin/busybox",
            "true",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// supervisor-init's names and error texts, compiled into this test to be
/// compared with those of the supervisor (container, nix and std).
#[allow(dead_code)]
#[path = "../../init/src/text.rs"]
mod text;

impl text::Out for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

fn shown(write: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    write(&mut out);
    String::from_utf8(out).expect("UTF-8")
}

#[test]
fn supervisor_init_names_signals_and_errors_as_the_supervisor_does() {
    for signal in -1..=70 {
        assert_eq!(
            shown(|o| text::signal(o, signal)),
            container::signal::name(signal as i32)
        );
    }
    for errno in -1..=300 {
        let nix = nix::errno::Errno::from_raw(errno);
        assert_eq!(shown(|o| text::errno(o, errno)), nix.to_string());
        assert_eq!(shown(|o| text::errno_desc(o, errno)), nix.desc());
        assert_eq!(
            shown(|o| text::os_error(o, errno)),
            std::io::Error::from_raw_os_error(errno).to_string()
        );
    }
    for n in [i64::MIN, -10, -1, 0, 1, 9, 10, 4_194_304, i64::MAX] {
        assert_eq!(shown(|o| text::int(o, n)), n.to_string());
    }
}

#[test]
fn supervisor_init_quotes_names_as_rust_debug_does() {
    let check = |bytes: &[u8]| {
        assert_eq!(
            shown(|o| text::quoted(o, bytes)),
            format!("{:?}", String::from_utf8_lossy(bytes)),
            "{bytes:?}"
        );
    };
    for bytes in [
        &b""[..],
        b"/bin/sh",
        b"it's \"quoted\" \\ back\\slashed",
        b"\0\x01\t\n\r\x1b\x7f",
        b"caf\xc3\xa9 e\xcc\x81 \xe2\x80\x8b \xf0\x9f\x98\x80",
        b"\xff\xfe bad \xc3 \xe2\x82 \xf0\x9f\x98 \xed\xa0\x80 end\xc0",
    ] {
        check(bytes);
    }
    // Every character, 64 to a string.
    let chars: Vec<char> = (0..=0x10FFFFu32).filter_map(char::from_u32).collect();
    for chunk in chars.chunks(64) {
        check(chunk.iter().collect::<String>().as_bytes());
    }
}

/// supervisor-init's budget: its whole file is what it costs in memory
/// (the kernel maps all of it at the first fault), so it stays small.
const HELPER_SIZE_BUDGET: usize = 32 * 1024;

#[test]
fn supervisor_init_is_a_small_static_elf_with_nothing_writable() {
    let path = bin("supervisor-init");
    let file = fs::read(&path).expect("read supervisor-init");
    assert!(
        file.len() <= HELPER_SIZE_BUDGET,
        "{} is {} bytes, over the {HELPER_SIZE_BUDGET}-byte budget",
        path.display(),
        file.len()
    );
    let le16 = |at: usize| u16::from_le_bytes([file[at], file[at + 1]]);
    let le32 = |at: usize| u32::from_le_bytes(file[at..at + 4].try_into().unwrap());
    let le64 = |at: usize| u64::from_le_bytes(file[at..at + 8].try_into().unwrap());
    assert_eq!(&file[..4], b"\x7fELF");
    assert_eq!((file[4], file[5]), (2, 1), "ELF64, little-endian");
    assert_eq!(le16(16), 2, "e_type: ET_EXEC (static, not PIE)");
    assert_eq!(le16(18), 62, "e_machine: x86_64");
    let (phoff, phnum) = (le64(32) as usize, le16(56) as usize);
    // (p_type, p_flags) of each program header.
    let segments: Vec<(u32, u32)> = (0..phnum)
        .map(|i| (le32(phoff + i * 56), le32(phoff + i * 56 + 4)))
        .collect();
    const PT_LOAD: u32 = 1;
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    assert!(
        segments
            .iter()
            .all(|&(kind, _)| kind != PT_INTERP && kind != PT_DYNAMIC),
        "no interpreter, no dynamic section: {segments:?}"
    );
    let loads: Vec<u32> = segments
        .iter()
        .filter(|&&(kind, _)| kind == PT_LOAD)
        .map(|&(_, flags)| flags)
        .collect();
    // One read + execute segment (rt/static.ld): no writable data at all.
    const PF_R_X: u32 = 4 | 1;
    assert_eq!(loads, [PF_R_X], "PT_LOAD flags");
}
