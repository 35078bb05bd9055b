//! What runs between fork and exec: cgroup, namespaces, mounts, root
//! filesystem, session and terminal, credentials (uid, gid, groups,
//! capabilities without ambient ones, no_new_privs), stdio, then the exec
//! itself with its PATH search. The AppArmor exec attribute is written
//! before the credentials; the seccomp filter is installed as runc does:
//! with no_new_privs right before exec, without it (while the process
//! still has CAP_SYS_ADMIN) before the credentials. The reaping waiter of
//! an exec probe goes through the same steps once it has forked the
//! program.
//!
//! Everything here was allocated by the parent ([`Prepared`]); only raw
//! system calls are made, no allocation, no locks, no panics (iterators
//! instead of indexing). A parked process ([`crate::Command::park`]) does
//! all of it ahead of time and waits for its go byte just before exec
//! (before the last seccomp filter, which may refuse the wait's read). A
//! failure writes a fixed-size [`Report`] to the close-on-exec pipe and
//! exits 127. It does not decide anything: what to
//! do, and every check of the options, is the parent's (`spawn`).

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::{Session, Terminal};
use crate::error::SpawnStep;
use crate::mount::{self, PreparedMount};
use crate::rootfs::Rootfs;
use crate::sys::{self, CLONE_INTO_CGROUP, CloneArgs, Errno};

/// A message from a child to the parent over the report pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    /// A step failed with `errno`; `index` says which mount / cgroup file
    /// / exec candidate.
    Failed { step: u32, errno: i32, index: u32 },
    /// The intermediate process of a pid-namespace join started the final
    /// process with this pid (as seen by the parent).
    Started { pid: i32 },
    /// A best-effort step failed with `errno`; the process goes on.
    Skipped { step: u32, errno: i32 },
}

pub(crate) const REPORT_LEN: usize = 16;

impl Report {
    pub(crate) fn encode(self) -> [u8; REPORT_LEN] {
        let (kind, a, b, c) = match self {
            Report::Failed { step, errno, index } => (1u32, step, errno as u32, index),
            Report::Started { pid } => (2u32, pid as u32, 0, 0),
            Report::Skipped { step, errno } => (3u32, step, errno as u32, 0),
        };
        let mut out = [0u8; REPORT_LEN];
        out[0..4].copy_from_slice(&kind.to_ne_bytes());
        out[4..8].copy_from_slice(&a.to_ne_bytes());
        out[8..12].copy_from_slice(&b.to_ne_bytes());
        out[12..16].copy_from_slice(&c.to_ne_bytes());
        out
    }

    pub(crate) fn decode(buf: &[u8; REPORT_LEN]) -> Option<Report> {
        let word = |i: usize| u32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        match word(0) {
            1 => Some(Report::Failed {
                step: word(4),
                errno: word(8) as i32,
                index: word(12),
            }),
            2 => Some(Report::Started {
                pid: word(4) as i32,
            }),
            3 => Some(Report::Skipped {
                step: word(4),
                errno: word(8) as i32,
            }),
            _ => None,
        }
    }
}

/// How one of fds 0, 1, 2 is set up.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StdioPlan {
    Inherit,
    Fd(RawFd),
    /// The process's end of a pipe made for it ([`super::Stdio::Piped`]):
    /// given to its uid, as runc's fixStdioPermissions does, so that a
    /// non-root process can still open /dev/stdout (/proc/self/fd/1).
    Pipe(RawFd),
}

/// Everything the child needs, built before fork.
pub(crate) struct Prepared {
    pub exec_candidates: Vec<CString>,
    /// Per candidate, the argv that runs it with `/bin/sh` when the kernel
    /// cannot execute it (ENOEXEC); empty unless [`super::ProgramLookup::Execvp`].
    pub script_argv_ptrs: Vec<Vec<*const libc::c_char>>,
    /// Owns the strings `argv_ptrs` points into.
    #[expect(dead_code, reason = "kept alive for argv_ptrs")]
    pub argv: Vec<CString>,
    pub argv_ptrs: Vec<*const libc::c_char>,
    /// Owns the strings `envp_ptrs` points into.
    #[expect(dead_code, reason = "kept alive for envp_ptrs")]
    pub envp: Vec<CString>,
    pub envp_ptrs: Vec<*const libc::c_char>,
    pub cwd: Option<CString>,
    pub join_pidfd: Option<RawFd>,
    pub join_flags: i32,
    /// /proc/PID/ns files, for kernels where setns(pidfd) says EINVAL.
    pub join_files: Vec<(OwnedFd, i32)>,
    pub unshare_flags: i32,
    /// The process has a mount namespace of its own (made private).
    pub own_mount_namespace: bool,
    pub new_pid: bool,
    pub hostname: Option<Vec<u8>>,
    pub loopback: bool,
    pub mounts: Vec<PreparedMount>,
    pub rootfs: Option<Rootfs>,
    /// The rootfs's volume sources, opened before fork
    /// ([`Rootfs::open_sources`]); `rootfs_source_fds` are their numbers.
    #[expect(dead_code, reason = "keeps the sources open until the spawn returns")]
    pub rootfs_sources: Vec<OwnedFd>,
    pub rootfs_source_fds: Vec<RawFd>,
    pub cgroup_procs: Vec<CString>,
    /// Index in `cgroup_procs` of the unified hierarchy's file, skipped
    /// when clone3 put the child there already.
    pub cgroup_unified_index: Option<usize>,
    pub cgroup_v2_fd: Option<OwnedFd>,
    pub stdio: [StdioPlan; 3],
    pub pdeathsig: i32,
    pub parent_pid: i32,
    pub session: Session,
    pub terminal: Terminal,
    /// Mark every fd above 2 close-on-exec.
    pub close_inherited_fds: bool,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// The process ends up as uid 0 (its own uid, or the caller's).
    pub exec_as_root: bool,
    pub groups: Option<Vec<libc::gid_t>>,
    pub caps: Option<u64>,
    pub last_cap: u32,
    pub no_new_privs: bool,
    /// Run under a reaping waiter in the joined pid namespace.
    pub reaper: bool,
    /// The seccomp filter to install.
    pub seccomp: Option<crate::seccomp::Program>,
    /// `exec <profile>` for the AppArmor exec attribute.
    pub apparmor_exec: Option<CString>,
    /// Parked ([`crate::Command::park`]): the go pipe's read end and the
    /// only other fds kept open while parked.
    pub park: Option<Park>,
}

/// How a parked process waits: it reads one byte from `go_read`. Every
/// other fd is closed first (the caller's write end of the go pipe too, so
/// that a caller that gives up is seen as EOF). [`GO`] lets it go on;
/// [`ARM`] lets it go on by itself once `predecessor` (the pidfd of the
/// instance it follows) polls readable, its exit: the restart then waits
/// for no one but the kernel (see [`crate::Parked::arm`]).
///
/// The process that runs the program waits once it is completely set up,
/// right before exec (`run`): by then fds 0 to 2 are its stdio and every
/// other fd is close-on-exec ([`crate::Command::park`] refuses inherited
/// fds), so closing them changes nothing the program sees. The
/// intermediate of a pid-namespace join waits before it joins instead
/// (the final process is forked only then), keeping `keep`: the stdio
/// sources, the namespaces, the cgroup, the volume sources.
pub(crate) struct Park {
    /// Always above 2, so that the stdio set-up cannot overwrite it.
    pub go_read: RawFd,
    pub keep: Vec<RawFd>,
    /// The pidfd of the process it follows (always above 2), watched once
    /// armed.
    pub predecessor: Option<RawFd>,
    /// The CPU affinity it was born with, given back once it is let go
    /// (the release keeps it off the caller's CPU until then).
    pub affinity: Option<sys::CpuMask>,
}

/// The byte on the go pipe that lets a parked process go on now.
pub(crate) const GO: u8 = b'g';
/// The byte on the go pipe that arms it: it goes on when its predecessor
/// exits (or on [`GO`]).
pub(crate) const ARM: u8 = b'a';

/// At most this many fds are kept by a parked intermediate (the stdio
/// ones, the namespace ones, the cgroup one, the rootfs's volume sources);
/// [`crate::Command::park`] checks.
pub(crate) const MAX_PARK_FDS: usize = 256;

impl Prepared {
    /// The caller's fds the child uses after fork (stdio sources, the
    /// namespaces to join, the cgroup): what a parked child keeps open.
    pub(crate) fn fds_in_use(&self) -> Vec<RawFd> {
        let stdio = self.stdio.iter().filter_map(|plan| match plan {
            StdioPlan::Fd(fd) | StdioPlan::Pipe(fd) => Some(*fd),
            StdioPlan::Inherit => None,
        });
        let mut fds: Vec<RawFd> = stdio
            .chain(self.join_pidfd)
            .chain(self.join_files.iter().map(|(fd, _)| fd.as_raw_fd()))
            .chain(self.cgroup_v2_fd.as_ref().map(AsRawFd::as_raw_fd))
            .chain(self.rootfs_source_fds.iter().copied())
            .collect();
        fds.sort_unstable();
        fds.dedup();
        fds
    }
}

type StepResult = Result<(), (SpawnStep, Errno, u32)>;

fn step(s: SpawnStep, r: Result<(), Errno>) -> StepResult {
    r.map_err(|e| (s, e, 0))
}

fn fail(report_fd: RawFd, (s, errno, index): (SpawnStep, Errno, u32)) -> ! {
    let msg = Report::Failed {
        step: s.code(),
        errno,
        index,
    };
    let _ = sys::write_all(report_fd, &msg.encode());
    sys::exit_now(127)
}

/// The report fd must not be one of 0..2, which stdio set-up overwrites.
fn safe_report_fd(fd: RawFd) -> RawFd {
    if fd > 2 {
        return fd;
    }
    sys::dup_cloexec_above(fd, 3).unwrap_or(fd)
}

/// Entry of the direct child (or of the final process after a
/// pid-namespace join): set everything up and exec.
pub(crate) fn run(p: &Prepared, report_fd: RawFd, in_unified: bool, joined: bool) -> ! {
    let report_fd = safe_report_fd(report_fd);
    if let Err(e) = setup(p, report_fd, in_unified, joined) {
        fail(report_fd, e);
    }
    // Prepared ahead of time: everything but the last filter and the exec
    // is done. After a join the intermediate waited already.
    if !joined && let Some(park) = &p.park {
        wait_for_go(park, report_fd, &[]);
    }
    // With no_new_privs the filter can come last (see `setup` without).
    if p.no_new_privs
        && let Err(e) = seccomp(p)
    {
        fail(report_fd, e);
    }
    let (errno, index) = exec(p);
    fail(report_fd, (SpawnStep::Exec, errno, index))
}

/// Exec the first candidate that runs, as execvp(3) searches: errors that
/// mean "not here" (ENOENT, ENOTDIR, ESTALE, ENODEV, ETIMEDOUT) and EACCES
/// move on to the next one, anything else stops. A file the kernel cannot
/// execute (ENOEXEC) is run with `/bin/sh` when a script argv was prepared.
/// Returns only on failure: the errno (EACCES when a candidate was found
/// but refused and none ran) and which candidate it is about.
fn exec(p: &Prepared) -> (Errno, u32) {
    let mut last = (libc::ENOENT, 0u32);
    let mut eacces = None;
    for (i, path) in (0u32..).zip(p.exec_candidates.iter()) {
        let mut errno = sys::execve(path, &p.argv_ptrs, &p.envp_ptrs);
        if errno == libc::ENOEXEC
            && let Some(script_argv) = p.script_argv_ptrs.get(i as usize)
        {
            errno = sys::execve(c"/bin/sh", script_argv, &p.envp_ptrs);
        }
        match errno {
            libc::EACCES => {
                eacces.get_or_insert(i);
            }
            libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
            _ => return (errno, i),
        }
        last = (errno, i);
    }
    match eacces {
        Some(i) => (libc::EACCES, i),
        None => last,
    }
}

fn setup(p: &Prepared, report_fd: RawFd, in_unified: bool, joined: bool) -> StepResult {
    step(SpawnStep::Signals, sys::reset_signals())?;
    if p.pdeathsig != 0 {
        parent_death_signal(p)?;
    }
    // Enter the cgroup first, so nothing of what follows runs outside it.
    // After a join, the intermediate entered it before joining (a joined
    // mount namespace may not show the cgroup filesystems) and this
    // process inherited it.
    if !joined {
        enter_cgroup(p, in_unified)?;
        join(p)?;
    }
    if p.unshare_flags != 0 {
        step(SpawnStep::CreateNamespaces, sys::unshare(p.unshare_flags))?;
    }
    if p.loopback {
        step(SpawnStep::Loopback, sys::loopback_up())?;
    }
    if let Some(name) = &p.hostname {
        step(SpawnStep::Hostname, sys::sethostname(name))?;
    }
    if p.own_mount_namespace {
        step(SpawnStep::MountPrivate, mount::make_private())?;
    }
    for (i, m) in p.mounts.iter().enumerate() {
        m.create_target()
            .map_err(|e| (SpawnStep::MountTarget, e, i as u32))?;
        m.mount().map_err(|e| (SpawnStep::Mount, e, i as u32))?;
    }
    // After the host-path mounts, before credentials: the root changes
    // here, so cwd and the program are looked up inside it.
    if let Some(rootfs) = &p.rootfs {
        rootfs
            .apply(&p.rootfs_source_fds)
            .map_err(|f| (SpawnStep::Rootfs, f.errno, f.step as u32))?;
    }
    // Parked: the root is a fresh overlay whose dentries nothing has
    // looked up yet. Walk the program's path now, not in the exec after
    // the go (and before a seccomp filter, which may refuse the walk).
    if p.park.is_some() && !joined {
        for path in &p.exec_candidates {
            if sys::exists(path) {
                break;
            }
        }
    }
    match p.session {
        Session::Inherit => {}
        Session::NewSession => step(SpawnStep::Session, sys::setsid())?,
        Session::NewProcessGroup => step(SpawnStep::Session, sys::setpgid_self())?,
    }
    apparmor(p)?;
    // Without no_new_privs a filter needs CAP_SYS_ADMIN: installed before
    // the credentials drop it (runc's standard_init_linux.go does the
    // same), so it must allow what follows.
    if !p.no_new_privs {
        seccomp(p)?;
    }
    // The working directory as runc's finalizeNamespace enters it: first
    // with the caller's rights (a directory only root can enter still
    // works); refused, again as the process's own user (a volume root
    // squashes).
    let mut cwd_pending = None;
    if let Some(cwd) = &p.cwd {
        match sys::chdir(cwd) {
            Ok(()) => {}
            Err(libc::EACCES | libc::EPERM) => cwd_pending = Some(cwd),
            Err(e) => return Err((SpawnStep::Chdir, e, 0)),
        }
    }
    give_pipes(p)?;
    credentials(p)?;
    if let Some(cwd) = cwd_pending {
        step(SpawnStep::Chdir, sys::chdir(cwd))?;
    }
    stdio(p)?;
    terminal(p, report_fd);
    if p.close_inherited_fds {
        step(SpawnStep::CloseFds, sys::cloexec_from(3))?;
    }
    Ok(())
}

/// Take the terminal on stdin (fd 0, after the stdio set-up) as
/// [`Prepared::terminal`] says. Best effort, as in tini and dumb-init: a
/// failure is reported as skipped and the process goes on without it.
fn terminal(p: &Prepared, report_fd: RawFd) {
    let (step, result) = match p.terminal {
        Terminal::Inherit => return,
        Terminal::Foreground => (SpawnStep::ForegroundTerminal, sys::set_foreground_group(0)),
        Terminal::Controlling => (
            SpawnStep::ControllingTerminal,
            sys::take_controlling_terminal(0),
        ),
    };
    if let Err(errno) = result {
        let msg = Report::Skipped {
            step: step.code(),
            errno,
        };
        let _ = sys::write_all(report_fd, &msg.encode());
    }
}

/// A parked process: close every fd above 2 but `keep` and the report and
/// go pipes (it must not hold the caller's sockets or other pipes open
/// while it waits), then wait for the go byte. EOF (the caller gave up on
/// it) ends it quietly.
fn wait_for_go(park: &Park, report_fd: RawFd, keep_also: &[RawFd]) {
    // The fds to keep, ascending, on the stack (no allocation here).
    let mut keep = [RawFd::MAX; MAX_PARK_FDS];
    let mut count = 0;
    let own = [Some(report_fd), Some(park.go_read), park.predecessor];
    for fd in keep_also.iter().copied().chain(own.into_iter().flatten()) {
        if let Some(slot) = keep.get_mut(count) {
            *slot = fd;
            count += 1;
        }
    }
    keep.sort_unstable();
    let mut next: u32 = 3;
    for &fd in keep.iter().take(count) {
        let Ok(fd) = u32::try_from(fd) else { continue };
        if fd > next {
            let _ = sys::close_range(next, fd - 1);
        }
        next = next.max(fd + 1);
    }
    let _ = sys::close_from(next);
    let mut armed = false;
    loop {
        // Armed: the go pipe first (its EOF ends it even when the
        // predecessor exited too), then the predecessor's exit.
        if armed && let Some(predecessor) = park.predecessor {
            match sys::poll_either(park.go_read, predecessor) {
                Ok((false, true)) => break,
                Ok(_) => {}
                // A filter installed before the wait may refuse poll: then
                // it waits for the go byte only (the arm byte comes once).
                Err(_) => {}
            }
        }
        let mut byte = [0u8; 1];
        match sys::read(park.go_read, &mut byte) {
            Ok(1) if byte[0] == GO => break,
            Ok(1) if byte[0] == ARM => armed = true,
            _ => sys::exit_now(0),
        }
    }
    sys::close(park.go_read);
    if let Some(predecessor) = park.predecessor {
        sys::close(predecessor);
    }
    if let Some(mask) = &park.affinity {
        let _ = sys::set_cpu_affinity(0, mask);
    }
}

/// Write this process into every `cgroup.procs` of the cgroup (the unified
/// one skipped when clone3 already put it there).
fn enter_cgroup(p: &Prepared, in_unified: bool) -> StepResult {
    for (i, procs) in p.cgroup_procs.iter().enumerate() {
        if in_unified && p.cgroup_unified_index == Some(i) {
            continue;
        }
        let r = sys::open(procs, libc::O_WRONLY, 0).and_then(|fd| {
            let r = sys::write_all(fd, b"0");
            sys::close(fd);
            r
        });
        r.map_err(|e| (SpawnStep::Cgroup, e, i as u32))?;
    }
    Ok(())
}

fn join(p: &Prepared) -> StepResult {
    if p.join_flags == 0 {
        return Ok(());
    }
    if let Some(pidfd) = p.join_pidfd {
        match sys::setns(pidfd, p.join_flags) {
            Ok(()) => return Ok(()),
            // Kernels before 5.8 take only namespace fds.
            Err(libc::EINVAL) => {}
            Err(e) => return Err((SpawnStep::JoinNamespaces, e, 0)),
        }
    }
    for (fd, flag) in &p.join_files {
        step(SpawnStep::JoinNamespaces, sys::setns(fd.as_raw_fd(), *flag))?;
    }
    Ok(())
}

/// Give the pipes made for the process to its uid (before the uid
/// change: it needs CAP_CHOWN). runc's fixStdioPermissions, which skips
/// what it may not change (EINVAL, EPERM) the same way.
fn give_pipes(p: &Prepared) -> StepResult {
    let Some(uid) = p.uid.filter(|u| *u != 0) else {
        return Ok(());
    };
    for plan in &p.stdio {
        if let StdioPlan::Pipe(fd) = plan {
            match sys::fchown_uid(*fd, uid) {
                Ok(()) | Err(libc::EINVAL | libc::EPERM) => {}
                Err(e) => return Err((SpawnStep::Stdio, e, 0)),
            }
        }
    }
    Ok(())
}

/// Groups, gid, uid, capabilities and no_new_privs, as containerd's CRI
/// sets them (`WithoutAmbientCaps`, internal/cri/server/
/// container_create_linux.go; runc applies the OCI process): the
/// bounding set is the container's set; inheritable and ambient are
/// empty; permitted and effective are the set for uid 0 and empty for any
/// other uid. Exec would leave a non-root process with nothing anyway
/// (no ambient or inheritable capability, a program without file
/// capabilities), so the sets here are already the ones it runs with: the
/// probe waiter, which never execs, has the same as the program.
fn credentials(p: &Prepared) -> StepResult {
    let changes_ids = p.uid.is_some() || p.gid.is_some();
    let mask = if p.last_cap >= 63 {
        u64::MAX
    } else {
        (1u64 << (p.last_cap + 1)) - 1
    };
    if let Some(caps) = p.caps {
        // Needs CAP_SETPCAP: before the uid changes.
        for cap in 0..=p.last_cap.min(63) {
            if caps & (1u64 << cap) == 0 {
                step(
                    SpawnStep::CapabilityBounding,
                    sys::prctl(libc::PR_CAPBSET_DROP, cap as u64, 0).map(drop),
                )?;
            }
        }
    }
    match &p.groups {
        Some(groups) => step(SpawnStep::Groups, sys::setgroups(groups))?,
        // Changing ids without a group list must not keep root's groups.
        None if changes_ids => step(SpawnStep::Groups, sys::setgroups(&[]))?,
        None => {}
    }
    if let Some(gid) = p.gid {
        step(SpawnStep::Gid, sys::setresgid(gid))?;
    }
    // No PR_SET_KEEPCAPS: from uid 0 to another uid the kernel clears the
    // permitted, effective and ambient sets itself.
    if let Some(uid) = p.uid {
        step(SpawnStep::Uid, sys::setresuid(uid))?;
    }
    if let Some(caps) = p.caps {
        let kept = if p.exec_as_root { caps & mask } else { 0 };
        step(SpawnStep::Capabilities, sys::capset(kept, kept, 0))?;
        step(
            SpawnStep::AmbientCapabilities,
            sys::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as u64,
                0,
            )
            .map(drop),
        )?;
    }
    if p.no_new_privs {
        step(
            SpawnStep::NoNewPrivs,
            sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0).map(drop),
        )?;
    }
    // A change of the effective uid or gid clears the parent-death signal
    // (kernel/cred.c commit_creds): set it again, as runc does
    // (pdeath.Restore), and check the parent did not die in between.
    if changes_ids && p.pdeathsig != 0 {
        parent_death_signal(p)?;
    }
    Ok(())
}

/// Ask for the parent-death signal, and check the parent still lives.
fn parent_death_signal(p: &Prepared) -> StepResult {
    step(
        SpawnStep::ParentDeathSignal,
        sys::prctl(libc::PR_SET_PDEATHSIG, p.pdeathsig as u64, 0).map(drop),
    )?;
    // The parent may have died before prctl: then nobody would send the
    // signal. getppid() is 0 when the parent lives outside our pid
    // namespace (a new one, or a joined one with the caller as parent
    // through CLONE_PARENT): that parent is the caller, alive. Had it died,
    // we would have been re-parented inside the namespace.
    let ppid = sys::getppid();
    if !p.new_pid && ppid != 0 && ppid != p.parent_pid {
        return Err((SpawnStep::ParentDeathSignal, libc::ESRCH, 0));
    }
    Ok(())
}

/// Install the seccomp filters, in order.
fn seccomp(p: &Prepared) -> StepResult {
    if let Some(program) = &p.seccomp {
        for (i, filter) in (0u32..).zip(program.filters.iter()) {
            crate::seccomp::sys::install(filter, program.flags)
                .map_err(|e| (SpawnStep::Seccomp, e, i))?;
        }
    }
    Ok(())
}

/// Write `exec <profile>` to the AppArmor exec attribute (the
/// AppArmor-specific file, else the generic one, as runc does).
fn apparmor(p: &Prepared) -> StepResult {
    let Some(value) = &p.apparmor_exec else {
        return Ok(());
    };
    let mut last = libc::ENOENT;
    for (i, file) in (0u32..).zip([c"/proc/self/attr/apparmor/exec", c"/proc/self/attr/exec"]) {
        match sys::open(file, libc::O_WRONLY | libc::O_CLOEXEC, 0) {
            Ok(fd) => {
                let r = sys::write_all(fd, value.as_bytes());
                sys::close(fd);
                return r.map_err(|e| (SpawnStep::AppArmor, e, i));
            }
            Err(e) => last = e,
        }
    }
    Err((SpawnStep::AppArmor, last, 1))
}

fn stdio(p: &Prepared) -> StepResult {
    // First move every source above 2, so dup2 into 0..2 cannot clobber a
    // source that happens to sit there.
    let mut moved: [RawFd; 3] = [-1; 3];
    for (slot, plan) in moved.iter_mut().zip(p.stdio.iter()) {
        if let StdioPlan::Fd(fd) | StdioPlan::Pipe(fd) = plan {
            *slot = step_fd(sys::dup_cloexec_above(*fd, 3))?;
        }
    }
    for (target, fd) in moved.iter().enumerate() {
        if *fd >= 0 {
            step(SpawnStep::Stdio, sys::dup2(*fd, target as RawFd))?;
        }
    }
    Ok(())
}

fn step_fd(r: Result<RawFd, Errno>) -> Result<RawFd, (SpawnStep, Errno, u32)> {
    r.map_err(|e| (SpawnStep::Stdio, e, 0))
}

/// Entry of the intermediate process for a pid-namespace join: join the
/// namespaces (the pid one applies to our children only), then clone the
/// final process as a sibling (CLONE_PARENT), so it is the caller's child
/// and lives in the joined pid namespace. Reports its pid and exits.
pub(crate) fn run_intermediate(p: &Prepared, report_fd: RawFd) -> ! {
    let report_fd = safe_report_fd(report_fd);
    // Into the cgroup before the join: the joined mount namespace (a
    // container's own root) may not have the cgroup filesystems mounted.
    // Everything forked from here inherits the membership.
    if let Err(e) = step(SpawnStep::Signals, sys::reset_signals())
        .and_then(|_| enter_cgroup(p, false))
        .and_then(|_| {
            if let Some(park) = &p.park {
                wait_for_go(park, report_fd, &park.keep);
            }
            join(p)
        })
    {
        fail(report_fd, e);
    }
    let cgroup_fd = p.cgroup_v2_fd.as_ref().map(|fd| fd.as_raw_fd());
    let mut into = cgroup_fd.is_some();
    loop {
        let mut args = CloneArgs {
            flags: libc::CLONE_PARENT as u64,
            ..CloneArgs::default()
        };
        if let (true, Some(fd)) = (into, cgroup_fd) {
            args.flags |= CLONE_INTO_CGROUP;
            args.cgroup = fd as u64;
        }
        // The final process only runs `run` (or the waiter), which makes
        // raw system calls on memory prepared before the first fork.
        let final_process = || {
            if p.reaper {
                run_waiter(p, report_fd, into)
            } else {
                run(p, report_fd, into, true)
            }
        };
        match sys::clone3_then(&mut args, final_process) {
            Ok(sys::Forked { pid, .. }) => {
                let msg = Report::Started { pid };
                let _ = sys::write_all(report_fd, &msg.encode());
                sys::exit_now(0)
            }
            Err(libc::EINVAL | libc::E2BIG | libc::EOPNOTSUPP) if into => into = false,
            Err(e) => fail(report_fd, (SpawnStep::ForkInNamespace, e, 0)),
        }
    }
}

/// The waiter of [`crate::Command::reaper`]: inside the joined pid
/// namespace, a child subreaper that starts the program as its own child,
/// reaps every process of the tree (orphans come to it, not to the
/// namespace's PID 1, which may never reap), kills the program's process
/// group once the program has exited, and exits with the program's status
/// (128 + signal when a signal killed it) once nothing is left.
fn run_waiter(p: &Prepared, report_fd: RawFd, in_unified: bool) -> ! {
    if let Err(e) = step(
        SpawnStep::Signals,
        sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0).map(drop),
    ) {
        fail(report_fd, e);
    }
    let mut args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    // The program only runs `run`, which makes raw system calls on memory
    // prepared before the first fork.
    let program = match sys::clone3_then(&mut args, || run(p, report_fd, in_unified, true)) {
        Ok(sys::Forked { pid, .. }) => pid,
        Err(e) => fail(report_fd, (SpawnStep::ForkInNamespace, e, 0)),
    };
    // The waiter lives in the container too: from here it has the
    // program's credentials (uid, gid, groups, capability sets,
    // no_new_privs) and its filter, in `setup`'s order (without
    // no_new_privs the filter goes in while CAP_SYS_ADMIN is still held).
    // What it does next (wait4, kill of its own uid's processes,
    // close_range, exit) every profile that runs a program allows.
    let confined = if p.no_new_privs {
        credentials(p).and_then(|()| seccomp(p))
    } else {
        seccomp(p).and_then(|()| credentials(p))
    };
    if let Err(e) = confined {
        let _ = sys::kill(program, libc::SIGKILL);
        fail(report_fd, e);
    }
    // Nothing of the caller's stays open here (the report pipe must reach
    // EOF when the program execs).
    let _ = sys::close_from(3);
    let mut code = 0;
    loop {
        match sys::wait_any() {
            Ok((pid, status)) if pid == program => {
                code = if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    128 + libc::WTERMSIG(status)
                };
                // Its group outlives it while a member lives.
                let _ = sys::kill(-program, libc::SIGKILL);
            }
            Ok(_) => {}
            Err(_) => sys::exit_now(code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        for r in [
            Report::Failed {
                step: SpawnStep::Exec.code(),
                errno: libc::ENOENT,
                index: 3,
            },
            Report::Started { pid: 4242 },
            Report::Skipped {
                step: SpawnStep::ForegroundTerminal.code(),
                errno: libc::ENOTTY,
            },
        ] {
            assert_eq!(Report::decode(&r.encode()), Some(r));
        }
        assert_eq!(Report::decode(&[0; REPORT_LEN]), None);
        for s in SpawnStep::ALL {
            assert_eq!(SpawnStep::from_code(s.code()), Some(s));
        }
    }
}
