//! The pause binary, black-box: version flags, TERM/INT, ignored signals,
//! reaping as PID 1 of a new PID namespace, subreaper when not PID 1, idle
//! without wake-ups, any uid; and the file itself: at most 2,048 bytes, a
//! static ELF that loaders and scanners take as it is, W^X.

use it::{
    bin, children_of, proc_stat, proc_status_field, require, require_root, signal, wait_ignoring,
    wait_until,
};
use nix::sys::signal::Signal;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const VERSION_LINE: &str = concat!("pause ", env!("CARGO_PKG_VERSION"), "\n");
const NOT_PID1_WARNING: &str = "Warning: pause should be the first process\n";

fn pause() -> Command {
    let mut command = Command::new(bin("pause"));
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Spawn pause and wait until it sleeps in its signal wait: it ignores
/// SIGHUP first of all its set-up, and the only place it sleeps is the
/// wait that follows the set-up (under load it may be preempted between).
fn spawn_ready(mut command: Command) -> Child {
    let child = command.spawn().expect("spawn pause");
    let pid = child.id() as i32;
    wait_ignoring(pid, Signal::SIGHUP);
    wait_until(Duration::from_secs(5), || {
        (proc_stat(pid)?.state == 'S').then_some(())
    })
    .unwrap_or_else(|| panic!("pause {pid} never went to sleep"));
    child
}

fn stop(child: Child, with: Signal) -> Output {
    signal(child.id() as i32, with);
    child.wait_with_output().expect("wait for pause")
}

#[test]
fn version_flags_anywhere_in_argv_print_the_version() {
    for args in [
        &["-v"][..],
        &["-V"],
        &["--version"],
        &["x", "--version"],
        &["a", "b", "-v"],
    ] {
        let out = pause().args(args).output().expect("run pause");
        assert_eq!(out.status.code(), Some(0), "args {args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            VERSION_LINE,
            "args {args:?}"
        );
        assert!(out.stderr.is_empty(), "args {args:?}");
    }
    // Look-alikes are not version flags: pause keeps running.
    let child = spawn_ready({
        let mut c = pause();
        c.args(["-version", "v", "--v"]);
        c
    });
    let out = stop(child, Signal::SIGTERM);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
}

#[test]
fn term_and_int_exit_zero_with_a_message() {
    for (sig, name) in [
        (Signal::SIGTERM, "Terminated"),
        (Signal::SIGINT, "Interrupt"),
    ] {
        let out = stop(spawn_ready(pause()), sig);
        assert_eq!(out.status.code(), Some(0), "{sig}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("{NOT_PID1_WARNING}Shutting down, got signal: {name}\n"),
        );
    }
}

#[test]
fn other_catchable_signals_are_ignored() {
    let child = spawn_ready(pause());
    let pid = child.id() as i32;
    for sig in [
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGPIPE,
        Signal::SIGALRM,
        Signal::SIGQUIT,
        Signal::SIGTSTP,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
        Signal::SIGVTALRM,
    ] {
        signal(pid, sig);
    }
    // Real-time signals too.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).unwrap();
    // SAFETY: kill(2) with a pid we started and a valid signal number.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGRTMIN() + 3) }, 0);
    std::thread::sleep(Duration::from_millis(100));
    let state = proc_stat(pid)
        .expect("pause died of an ignored signal")
        .state;
    assert!(
        matches!(state, 'S'),
        "pause is in state {state}, not sleeping"
    );
    let out = stop(child, Signal::SIGTERM);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn idle_pause_has_no_wake_ups() {
    let child = spawn_ready(pause());
    let pid = child.id() as i32;
    let switches = || {
        let v = proc_status_field(pid, "voluntary_ctxt_switches").unwrap();
        let n = proc_status_field(pid, "nonvoluntary_ctxt_switches").unwrap();
        (v, n)
    };
    let before = switches();
    std::thread::sleep(Duration::from_millis(1500));
    let after = switches();
    assert_eq!(before, after, "pause woke up while idle");
    let out = stop(child, Signal::SIGTERM);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn runs_as_any_uid() {
    require_root!();
    let mut command = pause();
    command.uid(65535).gid(65535);
    let child = spawn_ready(command);
    assert_eq!(
        proc_status_field(child.id() as i32, "Uid")
            .unwrap()
            .split_whitespace()
            .next(),
        Some("65535")
    );
    let out = stop(child, Signal::SIGINT);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn not_pid1_it_warns_and_reaps_orphans_of_its_descendants() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("orphan.pid");
    // The shell becomes pause; its background subshell (now pause's child)
    // later starts a sleep and exits, orphaning the sleep. As a subreaper,
    // pause adopts it (instead of the host's init) and reaps it.
    let script = format!(
        "(/bin/busybox sleep 0.3; /bin/busybox sleep 30 & echo $! > {}) & exec {}",
        pidfile.display(),
        bin("pause").display()
    );
    let mut command = Command::new("/bin/busybox");
    command
        .args(["sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = spawn_ready(command);
    let pause_pid = child.id() as i32;
    let orphan: i32 = wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&pidfile).ok()?.trim().parse().ok()
    })
    .expect("the orphan's pid file");
    let adopted = wait_until(Duration::from_secs(5), || {
        proc_stat(orphan).filter(|p| p.ppid == pause_pid)
    });
    assert!(
        adopted.is_some(),
        "orphan {orphan} was not adopted by pause {pause_pid}"
    );
    signal(orphan, Signal::SIGKILL);
    // Reaped: the pid disappears entirely (a zombie would stay in /proc).
    let reaped = wait_until(Duration::from_secs(5), || {
        proc_stat(orphan).is_none().then_some(())
    });
    assert!(reaped.is_some(), "orphan {orphan} left a zombie");
    let out = stop(child, Signal::SIGTERM);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with(NOT_PID1_WARNING));
}

/// pause as PID 1 of a new PID namespace (util-linux `unshare --pid
/// --fork`), with its host pid.
struct Pid1Pause {
    unshare: Child,
    pid: i32,
}

impl Pid1Pause {
    fn start() -> Pid1Pause {
        let mut command = Command::new("unshare");
        command
            .args(["--pid", "--fork", "--kill-child"])
            .arg(bin("pause"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe; PDEATHSIG only makes sure the
        // namespace goes away if the test process dies first.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let unshare = command.spawn().expect("spawn unshare");
        let parent = unshare.id() as i32;
        let pid = wait_until(Duration::from_secs(5), || {
            children_of(parent).first().map(|p| p.pid)
        })
        .expect("unshare forked no child");
        wait_ignoring(pid, Signal::SIGHUP);
        assert_eq!(
            proc_status_field(pid, "NSpid")
                .unwrap()
                .split_whitespace()
                .last(),
            Some("1"),
            "pause is not PID 1 of its namespace"
        );
        Pid1Pause { unshare, pid }
    }

    /// Run a busybox shell script inside pause's PID namespace and wait for it.
    fn run_inside(&self, script: &str) -> std::process::ExitStatus {
        Command::new("nsenter")
            .args(["--target", &self.pid.to_string(), "--pid", "--"])
            .args(["/bin/busybox", "sh", "-c", script])
            .status()
            .expect("nsenter")
    }

    fn stop(self, with: Signal) -> Output {
        signal(self.pid, with);
        self.unshare.wait_with_output().expect("wait for unshare")
    }
}

#[test]
fn as_pid1_it_reaps_a_thousand_orphans() {
    require_root!();
    require!(it::have_command("nsenter"), "util-linux nsenter");
    let pause = Pid1Pause::start();
    // The shell starts 1000 sleeps and exits: they are orphaned to PID 1.
    let status =
        pause.run_inside("i=0; while [ $i -lt 1000 ]; do /bin/busybox sleep 2 & i=$((i+1)); done");
    assert!(
        status.success(),
        "the orphan-making script failed: {status}"
    );
    let adopted = children_of(pause.pid).len();
    assert!(
        adopted > 100,
        "only {adopted} orphans were reparented to pause"
    );
    let none_left = wait_until(Duration::from_secs(30), || {
        children_of(pause.pid).is_empty().then_some(())
    });
    let left = children_of(pause.pid);
    assert!(
        none_left.is_some(),
        "{} children of pause left ({} zombies)",
        left.len(),
        left.iter().filter(|p| p.state == 'Z').count()
    );
    let out = pause.stop(Signal::SIGTERM);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Shutting down, got signal: Terminated\n",
        "as PID 1 there is no warning"
    );
}

#[test]
fn as_pid1_it_ignores_hup_and_stops_on_int_from_inside() {
    require_root!();
    require!(it::have_command("nsenter"), "util-linux nsenter");
    let pause = Pid1Pause::start();
    signal(pause.pid, Signal::SIGHUP);
    signal(pause.pid, Signal::SIGUSR1);
    std::thread::sleep(Duration::from_millis(50));
    assert!(proc_stat(pause.pid).is_some_and(|p| p.state == 'S'));
    // `kill -INT 1` from inside the namespace (the in-namespace rule: only
    // signals init has asked for are delivered). The script itself dies
    // with the namespace when its init exits, so its status is not checked.
    pause.run_inside("/bin/busybox kill -INT 1");
    let out = pause.unshare.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(0),
        "status {:?}",
        out.status.signal()
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Shutting down, got signal: Interrupt\n"
    );
}

/// Issue 17's budget for the whole file.
const SIZE_BUDGET: usize = 2048;

/// The fields of a program header the checks below read.
struct Segment {
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

// <elf.h>
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_GNU_STACK: u32 = 0x6474_e551;
const PF_X: u32 = 1;
const PF_W: u32 = 2;

fn le16(file: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(file[at..at + 2].try_into().unwrap())
}
fn le32(file: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(file[at..at + 4].try_into().unwrap())
}
fn le64(file: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(file[at..at + 8].try_into().unwrap())
}

/// The program headers of a 64-bit little-endian ELF file.
fn segments(file: &[u8]) -> Vec<Segment> {
    let (phoff, phentsize, phnum) = (le64(file, 32) as usize, le16(file, 54), le16(file, 56));
    assert_eq!(phentsize, 56, "e_phentsize");
    (0..phnum as usize)
        .map(|i| {
            let at = phoff + i * 56;
            Segment {
                kind: le32(file, at),
                flags: le32(file, at + 4),
                offset: le64(file, at + 8),
                vaddr: le64(file, at + 16),
                filesz: le64(file, at + 32),
                memsz: le64(file, at + 40),
                align: le64(file, at + 48),
            }
        })
        .collect()
}

#[test]
fn the_binary_fits_in_2048_bytes_and_is_a_plain_static_w_xor_x_elf() {
    let path = bin("pause");
    let file = std::fs::read(&path).expect("read pause");
    assert!(
        file.len() <= SIZE_BUDGET,
        "{} is {} bytes, over the {SIZE_BUDGET}-byte budget",
        path.display(),
        file.len()
    );

    // What the kernel's binfmt_elf and image scanners expect of a static
    // executable: ELF64, little-endian, x86_64, ET_EXEC, no interpreter.
    assert_eq!(&file[..4], b"\x7fELF", "ELF magic");
    assert_eq!(
        (file[4], file[5], file[6]),
        (2, 1, 1),
        "ELF64, LSB, version 1"
    );
    assert_eq!(le16(&file, 16), 2, "e_type: ET_EXEC (static, not PIE)");
    assert_eq!(le16(&file, 18), 62, "e_machine: x86_64");
    let segments = segments(&file);
    for kind in [PT_INTERP, PT_DYNAMIC] {
        assert!(
            segments.iter().all(|s| s.kind != kind),
            "segment type {kind} in a static binary"
        );
    }

    // W^X: no segment is both writable and executable, and the entry point
    // is in an executable one.
    let loads: Vec<&Segment> = segments.iter().filter(|s| s.kind == PT_LOAD).collect();
    assert!(!loads.is_empty(), "no PT_LOAD");
    for load in &loads {
        assert!(
            (load.flags & (PF_W | PF_X)) != (PF_W | PF_X),
            "a writable and executable PT_LOAD at {:#x}",
            load.vaddr
        );
        assert!(
            load.offset + load.filesz <= file.len() as u64 && load.filesz <= load.memsz,
            "PT_LOAD at {:#x} reaches past the file",
            load.vaddr
        );
        // fs/binfmt_elf.c maps each PT_LOAD with mmap: page-aligned, with
        // the file offset and the address equal modulo the page size.
        assert!(
            load.align >= 4096 && load.align.is_power_of_two(),
            "PT_LOAD at {:#x}: p_align {:#x}",
            load.vaddr,
            load.align
        );
        assert_eq!(
            load.offset % load.align,
            load.vaddr % load.align,
            "PT_LOAD at {:#x}: offset and address not congruent",
            load.vaddr
        );
    }
    let entry = le64(&file, 24);
    assert!(
        loads
            .iter()
            .any(|l| l.flags & PF_X != 0 && (l.vaddr..l.vaddr + l.memsz).contains(&entry)),
        "entry point {entry:#x} is in no executable PT_LOAD"
    );
    let stack = segments.iter().find(|s| s.kind == PT_GNU_STACK);
    assert!(
        stack.is_some_and(|s| s.flags & PF_X == 0),
        "no PT_GNU_STACK, or an executable stack"
    );

    // Section headers are kept (readelf, file(1) and scanners read them):
    // a well-formed table inside the file.
    let (shoff, shentsize, shnum, shstrndx) = (
        le64(&file, 40) as usize,
        le16(&file, 58),
        le16(&file, 60) as usize,
        le16(&file, 62) as usize,
    );
    assert_eq!(shentsize, 64, "e_shentsize");
    assert!(
        shnum > 0 && shstrndx < shnum,
        "e_shnum {shnum}, e_shstrndx {shstrndx}"
    );
    assert!(
        shoff + shnum * 64 <= file.len(),
        "section headers past the end of the file"
    );
}
