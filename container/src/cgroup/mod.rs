//! Control groups: detect the host's layout (pure v2, hybrid, v1), create a
//! cgroup per pod and one per container beneath it, apply [`Limits`],
//! put processes in, read the OOM-kill counter, kill everything inside and
//! remove the directories.
//!
//! One [`Cgroup`] spans every hierarchy it needs. Limits go to the
//! hierarchy that has the controller: cgroup v2 when the unified mount
//! offers it, else the v1 mount of that controller (on a hybrid host the
//! unified hierarchy then only carries membership, `cgroup.events` and
//! `cgroup.kill`). The private `v1` and `v2` modules hold the file formats.
//! This module does not talk to systemd: on a systemd host give it a
//! delegated parent.

pub mod devices;
mod v1;
mod v2;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::CgroupError;
use crate::limits::Limits;

/// How the host mounts cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// Only cgroup2 is mounted (every controller is v2).
    Unified,
    /// v1 controllers plus a cgroup2 mount (systemd's "hybrid").
    Hybrid,
    /// Only v1 hierarchies.
    Legacy,
}

/// A controller this crate uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Controller {
    /// memory limits and OOM counters.
    Memory,
    /// CPU quota and weight/shares.
    Cpu,
    /// CPU usage accounting (v1 only; v2 has cpu.stat in every cgroup).
    Cpuacct,
    /// Task count limit.
    Pids,
    /// Freezing, used to kill every process race-free on v1.
    Freezer,
    /// Device access (v1 only; see [`devices`]).
    Devices,
}

impl Controller {
    /// Every controller, in order.
    pub const ALL: [Controller; 6] = [
        Controller::Memory,
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Pids,
        Controller::Freezer,
        Controller::Devices,
    ];

    /// The kernel's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Pids => "pids",
            Controller::Freezer => "freezer",
            Controller::Devices => "devices",
        }
    }
}

/// The cgroup filesystems of the host, as found at runtime.
#[derive(Debug, Clone)]
pub struct CgroupHost {
    mode: CgroupMode,
    unified: Option<PathBuf>,
    v2_controllers: Vec<Controller>,
    v1: BTreeMap<Controller, PathBuf>,
    /// What every cgroup of this host spans, shared by all of them.
    spanned: Arc<Hierarchies>,
}

/// The hierarchy roots a cgroup spans: the unified mount (with the
/// controllers v2 serves) and the v1 mount of each controller v2 does not
/// serve. One per host, shared by every [`Cgroup`]: a cgroup is its name
/// beneath these roots (a pod of 100 containers held 200 copies of ten
/// directory paths).
#[derive(Debug)]
struct Hierarchies {
    unified: Option<PathBuf>,
    v2_controllers: Vec<Controller>,
    v1: BTreeMap<Controller, PathBuf>,
}

impl CgroupHost {
    /// Read `/proc/self/mountinfo` and find the cgroup mounts.
    pub fn detect() -> Result<CgroupHost, CgroupError> {
        let path = PathBuf::from("/proc/self/mountinfo");
        let text = fs::read_to_string(&path).map_err(|source| CgroupError::Mountinfo {
            path: path.clone(),
            source,
        })?;
        let (unified, v1) = parse_mountinfo(&text);
        if unified.is_none() && v1.is_empty() {
            return Err(CgroupError::NotMounted { path });
        }
        Ok(CgroupHost::from_mounts(unified, v1))
    }

    /// A host with the given mount points (for a fake cgroupfs in tests, or
    /// a caller that knows better). The v2 controllers are read from
    /// `<unified>/cgroup.controllers`.
    pub fn from_mounts(
        unified: Option<PathBuf>,
        v1: impl IntoIterator<Item = (Controller, PathBuf)>,
    ) -> CgroupHost {
        let v1: BTreeMap<_, _> = v1.into_iter().collect();
        let v2_controllers = unified
            .as_deref()
            .map(v2::available_controllers)
            .unwrap_or_default();
        let mode = match (&unified, v1.is_empty()) {
            (Some(_), true) => CgroupMode::Unified,
            (Some(_), false) => CgroupMode::Hybrid,
            (None, _) => CgroupMode::Legacy,
        };
        // The v1 hierarchies a cgroup spans: every mounted controller this
        // crate uses that v2 does not serve.
        let spanned = Arc::new(Hierarchies {
            unified: unified.clone(),
            v2_controllers: v2_controllers.clone(),
            v1: v1
                .iter()
                .filter(|(c, _)| !v2_controllers.contains(c))
                .map(|(c, p)| (*c, p.clone()))
                .collect(),
        });
        CgroupHost {
            mode,
            unified,
            v2_controllers,
            v1,
            spanned,
        }
    }

    /// The layout.
    pub fn mode(&self) -> CgroupMode {
        self.mode
    }

    /// The cgroup2 mount point, if any.
    pub fn unified_mount(&self) -> Option<&Path> {
        self.unified.as_deref()
    }

    /// The v1 mount point of `controller`, if mounted.
    pub fn v1_mount(&self, controller: Controller) -> Option<&Path> {
        self.v1.get(&controller).map(PathBuf::as_path)
    }

    /// Whether `controller` is served by cgroup v2 on this host.
    pub fn is_v2(&self, controller: Controller) -> bool {
        self.v2_controllers.contains(&controller)
    }
}

/// Find the cgroup2 mount and the v1 controller mounts in mountinfo text.
fn parse_mountinfo(text: &str) -> (Option<PathBuf>, Vec<(Controller, PathBuf)>) {
    let mut unified = None;
    let mut v1 = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mount_point) = left.split(' ').nth(4) else {
            continue;
        };
        let mut right = right.split(' ');
        let (Some(fstype), _, Some(super_opts)) = (right.next(), right.next(), right.next()) else {
            continue;
        };
        let mount_point = PathBuf::from(crate::mount::unescape_mountinfo(mount_point));
        match fstype {
            "cgroup2" => {
                unified.get_or_insert(mount_point);
            }
            "cgroup" => {
                for opt in super_opts.split(',') {
                    if let Some(c) = Controller::ALL.into_iter().find(|c| c.name() == opt)
                        && !v1.iter().any(|(have, _)| *have == c)
                    {
                        v1.push((c, mount_point.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    (unified, v1)
}

/// One cgroup, spanning the unified hierarchy (when mounted) and every v1
/// hierarchy this crate uses.
#[derive(Debug, Clone)]
pub struct Cgroup {
    name: PathBuf,
    roots: Arc<Hierarchies>,
}

fn check_name(name: &Path) -> Result<(), CgroupError> {
    let ok = !name.as_os_str().is_empty()
        && name.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(CgroupError::InvalidName {
            name: name.display().to_string(),
        })
    }
}

impl Cgroup {
    /// Create (if needed) the cgroup `name` (relative to every hierarchy
    /// root, e.g. `podvisor/pod-web`) and return it. On cgroup v2 the
    /// controllers this crate uses are enabled in the `subtree_control` of
    /// each ancestor below the root (so ancestors must hold no processes).
    pub fn create(host: &CgroupHost, name: impl AsRef<Path>) -> Result<Cgroup, CgroupError> {
        let cg = Cgroup::open(host, name)?;
        if let Some(root) = host.unified.as_deref() {
            v2::enable_controllers(root, &cg.name, &host.v2_controllers)?;
        }
        for dir in cg.dirs() {
            fs::create_dir_all(&dir).map_err(|source| CgroupError::Create { path: dir, source })?;
        }
        Ok(cg)
    }

    /// The cgroup `name` without creating anything (it may not exist).
    pub fn open(host: &CgroupHost, name: impl AsRef<Path>) -> Result<Cgroup, CgroupError> {
        let name = name.as_ref().to_path_buf();
        check_name(&name)?;
        Ok(Cgroup {
            name,
            roots: Arc::clone(&host.spanned),
        })
    }

    /// Create the child cgroup `name` beneath this one (a container under
    /// its pod).
    pub fn create_child(&self, host: &CgroupHost, name: &str) -> Result<Cgroup, CgroupError> {
        Cgroup::create(host, self.name.join(name))
    }

    /// The name relative to the hierarchy roots.
    pub fn name(&self) -> &Path {
        &self.name
    }

    /// The directory in the unified hierarchy, if cgroup2 is mounted.
    pub fn unified_dir(&self) -> Option<PathBuf> {
        self.roots
            .unified
            .as_ref()
            .map(|root| root.join(&self.name))
    }

    /// The directory in the v1 hierarchy of `controller`, if this cgroup
    /// uses one.
    pub fn v1_dir(&self, controller: Controller) -> Option<PathBuf> {
        self.roots
            .v1
            .get(&controller)
            .map(|root| root.join(&self.name))
    }

    /// Whether v2 serves `controller` for this cgroup.
    fn is_v2(&self, controller: Controller) -> bool {
        self.roots.v2_controllers.contains(&controller)
    }

    /// Every directory of this cgroup, each once (cpu and cpuacct are
    /// often co-mounted).
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self.unified_dir().into_iter().collect();
        for root in self.roots.v1.values() {
            let dir = root.join(&self.name);
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        dirs
    }

    /// Every `cgroup.procs` file a process must be written to.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs()
            .into_iter()
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    /// Write the limits: v2 files where v2 has the controller, else the v1
    /// controller's files. A limit whose controller exists nowhere is an
    /// error; `None` fields are left alone.
    pub fn apply(&self, res: &Limits) -> Result<(), CgroupError> {
        let memory = res.memory_limit_bytes.is_some();
        let cpu = res.cpu_limit_millis.is_some() || res.cpu_request_millis.is_some();
        let pids = res.pids_limit.is_some();
        for (wanted, controller) in [
            (memory, Controller::Memory),
            (cpu, Controller::Cpu),
            (pids, Controller::Pids),
        ] {
            if !wanted {
                continue;
            }
            if self.is_v2(controller) {
                let dir = self.unified_dir().expect("v2 controllers imply a mount");
                v2::apply(&dir, controller, res)?;
            } else if let Some(dir) = self.v1_dir(controller) {
                v1::apply(&dir, controller, res)?;
            } else {
                return Err(CgroupError::ControllerMissing {
                    controller: controller.name(),
                });
            }
        }
        Ok(())
    }

    /// Allow only the standard device nodes ([`devices::ALLOWED`]) in the
    /// v1 devices hierarchy, when the host has one; nothing to do without
    /// it (cgroup v2: see [`devices`]). Call it on a cgroup that has no
    /// children yet (a container's, before its instances): they inherit it.
    pub fn restrict_devices(&self) -> Result<(), CgroupError> {
        match self.v1_dir(Controller::Devices) {
            Some(dir) => devices::restrict(&dir),
            None => Ok(()),
        }
    }

    /// Whether the v1 devices hierarchy holds this cgroup.
    pub fn has_devices_controller(&self) -> bool {
        self.roots.v1.contains_key(&Controller::Devices)
    }

    /// Move process `pid` into this cgroup in every hierarchy.
    pub fn add(&self, pid: i32) -> Result<(), CgroupError> {
        for file in self.procs_files() {
            write_file(&file, &pid.to_string())?;
        }
        Ok(())
    }

    /// The processes in this cgroup (not its children), across hierarchies.
    pub fn procs(&self) -> Result<Vec<i32>, CgroupError> {
        let mut pids = Vec::new();
        for dir in self.dirs() {
            for pid in read_procs(&dir)? {
                if !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
        }
        pids.sort_unstable();
        Ok(pids)
    }

    /// How many processes the kernel OOM killer has killed in this cgroup
    /// (v2 `memory.events` `oom_kill`, v1 `memory.oom_control` `oom_kill`).
    /// Compare before and after a SIGKILL to tell an OOM kill from others.
    pub fn oom_kills(&self) -> Result<u64, CgroupError> {
        read_keyed(&self.oom_kill_file()?, "oom_kill")
    }

    /// The file [`Cgroup::oom_kills`] reads, kept open: reading it again
    /// walks no path (a restart reads it on its way to the decision).
    pub fn oom_counter(&self) -> Result<OomCounter, CgroupError> {
        let path = self.oom_kill_file()?;
        let file = fs::File::open(&path).map_err(|source| CgroupError::Read {
            path: path.clone(),
            source,
        })?;
        Ok(OomCounter { file, path })
    }

    /// v2 `memory.events`, v1 `memory.oom_control`.
    fn oom_kill_file(&self) -> Result<PathBuf, CgroupError> {
        if self.is_v2(Controller::Memory) {
            Ok(v2::oom_kill_file(
                &self.unified_dir().expect("v2 controllers imply a mount"),
            ))
        } else if let Some(dir) = self.v1_dir(Controller::Memory) {
            Ok(v1::oom_kill_file(&dir))
        } else {
            Err(CgroupError::ControllerMissing {
                controller: "memory",
            })
        }
    }

    /// CPU time used by this cgroup and its children, in nanoseconds
    /// (v1 `cpuacct.usage` when mounted, else v2 `cpu.stat` `usage_usec`).
    pub fn cpu_usage_nanos(&self) -> Result<u64, CgroupError> {
        if let Some(dir) = self.v1_dir(Controller::Cpuacct) {
            v1::cpu_usage_nanos(&dir)
        } else if let Some(dir) = self.unified_dir() {
            v2::cpu_usage_nanos(&dir)
        } else {
            Err(CgroupError::ControllerMissing {
                controller: "cpuacct",
            })
        }
    }

    /// Whether any process is in this cgroup or its descendants.
    pub fn is_populated(&self) -> Result<bool, CgroupError> {
        if let Some(dir) = self.unified_dir()
            && dir.join("cgroup.events").exists()
        {
            return v2::populated(&dir);
        }
        Ok(!self.procs_recursive()?.is_empty())
    }

    fn procs_recursive(&self) -> Result<Vec<i32>, CgroupError> {
        let mut pids = Vec::new();
        for dir in self.dirs() {
            for sub in subtree(&dir) {
                pids.extend(read_procs(&sub)?);
            }
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// SIGKILL every process in this cgroup and its descendants and wait
    /// until none is left: v2 `cgroup.kill` when the kernel has it, then a
    /// freeze / kill each / thaw loop (v1 freezer, or v2 `cgroup.freeze`),
    /// or plain kill-each rounds without a freezer. Fails after `timeout`.
    pub fn kill_all(&self, timeout: Duration) -> Result<(), CgroupError> {
        let start = Instant::now();
        let mut empty = self.kill()?;
        loop {
            if empty {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(CgroupError::KillTimeout {
                    path: self.dirs().into_iter().next().unwrap_or_default(),
                    pids: self.procs_recursive()?,
                    waited_ms: start.elapsed().as_millis(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
            empty = self.kill()?;
        }
    }

    /// One round of [`Cgroup::kill_all`] without waiting: SIGKILL every
    /// process of this cgroup and its descendants (`cgroup.kill`, else
    /// through the freezer, else one by one). Returns whether the cgroup
    /// was already empty; when not, call again (or [`Cgroup::try_remove`])
    /// later: killed processes take a moment to leave.
    pub fn kill(&self) -> Result<bool, CgroupError> {
        let mut killed_at_once = false;
        if let Some(dir) = self.unified_dir()
            && dir.join("cgroup.kill").exists()
        {
            write_file(&dir.join("cgroup.kill"), "1")?;
            killed_at_once = true;
        }
        if self.procs_recursive()?.is_empty() {
            return Ok(true);
        }
        if killed_at_once {
            // cgroup.kill took every process, also one forking right now:
            // what is listed is on its way out.
            return Ok(false);
        }
        if let Some(freezer) = self.v1_dir(Controller::Freezer) {
            for dir in subtree(&freezer) {
                v1::freeze_kill_thaw(&dir)?;
            }
        } else if let Some(dir) = self.unified_dir()
            && dir.join("cgroup.freeze").exists()
        {
            v2::freeze_kill_thaw(&dir, &self.procs_recursive()?)?;
        }
        // Whatever the freezer missed (or without one): kill each.
        for pid in self.procs_recursive()? {
            kill_pid(pid);
        }
        Ok(false)
    }

    /// Remove this cgroup and every cgroup beneath it in every hierarchy,
    /// deepest first. Waits for them to empty and retries EBUSY until
    /// `timeout`; a directory already gone counts as removed. Kill the
    /// processes first ([`Cgroup::kill_all`]) and reap them.
    pub fn remove(&self, timeout: Duration) -> Result<(), CgroupError> {
        let deadline = Instant::now() + timeout;
        for dir in self.dirs() {
            let mut dirs = subtree(&dir);
            // Deepest first.
            dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
            for d in dirs {
                remove_dir_retry(&d, deadline)?;
            }
        }
        Ok(())
    }

    /// Kill and remove this cgroup and every cgroup beneath it, deepest
    /// first, in every hierarchy: each one is emptied with
    /// [`Cgroup::kill_all`] before its removal (on cgroup v1 each level
    /// holds its own processes). Goes on past a failure; returns every
    /// error met, empty when all is gone.
    pub fn remove_tree(&self, timeout: Duration) -> Vec<CgroupError> {
        let mut below = Vec::new();
        for dir in self.dirs() {
            descendants(&dir, Path::new(""), &mut below);
        }
        // Deepest first; the same child appears once per hierarchy.
        below.sort_by_key(|rel| std::cmp::Reverse(rel.components().count()));
        below.dedup();
        let mut errors = Vec::new();
        for cgroup in below
            .iter()
            .map(|rel| self.descendant(rel))
            .chain([self.clone()])
        {
            if let Err(error) = cgroup
                .kill_all(timeout)
                .and_then(|()| cgroup.remove(timeout))
            {
                errors.push(error);
            }
        }
        errors
    }

    /// The cgroup `rel` beneath this one, in the same hierarchies.
    fn descendant(&self, rel: &Path) -> Cgroup {
        Cgroup {
            name: self.name.join(rel),
            roots: Arc::clone(&self.roots),
        }
    }

    /// [`Cgroup::remove`] without waiting: Ok(false) when a directory is
    /// still busy (processes have not left yet), to be tried again later.
    pub fn try_remove(&self) -> Result<bool, CgroupError> {
        match self.remove(Duration::ZERO) {
            Ok(()) => Ok(true),
            Err(CgroupError::Remove { source, .. })
                if source.raw_os_error() == Some(libc::EBUSY) =>
            {
                Ok(false)
            }
            Err(error) => Err(error),
        }
    }
}

/// `dir` and every directory beneath it (cgroups nest as directories).
fn subtree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if !d.is_dir() {
            continue;
        }
        if let Ok(entries) = fs::read_dir(&d) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
        out.push(d);
    }
    out
}

/// Every directory beneath `dir`, as paths relative to it prefixed with
/// `rel`, each after the directories beneath it.
fn descendants(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let rel = rel.join(entry.file_name());
            descendants(&entry.path(), &rel, out);
            out.push(rel);
        }
    }
}

fn remove_dir_retry(dir: &Path, deadline: Instant) -> Result<(), CgroupError> {
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
    }
}

fn kill_pid(pid: i32) {
    // ESRCH (already gone) is the expected race here.
    let _ = crate::sys::kill(pid, libc::SIGKILL);
}

/// Write `value` to an existing cgroup file (never creates files).
pub(crate) fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    use std::io::Write;
    let err = |source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    };
    let mut f = fs::OpenOptions::new().write(true).open(path).map_err(err)?;
    f.write_all(value.as_bytes()).map_err(err)
}

/// Read a cgroup file.
pub(crate) fn read_file(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// A cgroup's OOM-kill counter file, open ([`Cgroup::oom_counter`]).
#[derive(Debug)]
pub struct OomCounter {
    file: fs::File,
    path: PathBuf,
}

impl OomCounter {
    /// The count now, as [`Cgroup::oom_kills`] reads it.
    pub fn read(&self) -> Result<u64, CgroupError> {
        use std::os::unix::fs::FileExt;
        // memory.events and memory.oom_control are a few short lines.
        let mut buf = [0u8; 1024];
        let n = self
            .file
            .read_at(&mut buf, 0)
            .map_err(|source| CgroupError::Read {
                path: self.path.clone(),
                source,
            })?;
        let content = String::from_utf8_lossy(&buf[..n]).into_owned();
        crate::limits::keyed_value(&content, "oom_kill").ok_or(CgroupError::Parse {
            path: self.path.clone(),
            content,
        })
    }
}

/// Read `key value` from a cgroup file.
pub(crate) fn read_keyed(path: &Path, key: &str) -> Result<u64, CgroupError> {
    let content = read_file(path)?;
    crate::limits::keyed_value(&content, key).ok_or_else(|| CgroupError::Parse {
        path: path.to_path_buf(),
        content,
    })
}

/// The pids in `<dir>/cgroup.procs`; an absent directory holds none.
fn read_procs(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let path = dir.join("cgroup.procs");
    let content = match fs::read_to_string(&path) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(CgroupError::Read { path, source }),
    };
    content
        .lines()
        .map(|l| {
            l.trim().parse().map_err(|_| CgroupError::Parse {
                path: path.clone(),
                content: content.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 1 0:22 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
26 25 0:23 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
27 25 0:24 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
28 25 0:25 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
29 25 0:26 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
30 25 0:27 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
31 25 0:28 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
32 25 0:29 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn parses_hybrid_mountinfo() {
        let (unified, v1) = parse_mountinfo(HYBRID);
        assert_eq!(unified, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        let v1: BTreeMap<_, _> = v1.into_iter().collect();
        assert_eq!(
            v1[&Controller::Memory],
            PathBuf::from("/sys/fs/cgroup/memory")
        );
        assert_eq!(
            v1[&Controller::Cpuacct],
            PathBuf::from("/sys/fs/cgroup/cpuacct")
        );
        assert_eq!(v1.len(), 5);
        assert!(!v1.contains_key(&Controller::Devices));
    }

    #[test]
    fn parses_comounted_and_unified() {
        let text = "\
26 25 0:23 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 1 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate
";
        let (unified, v1) = parse_mountinfo(text);
        assert_eq!(unified, Some(PathBuf::from("/sys/fs/cgroup")));
        assert_eq!(
            v1,
            vec![
                (Controller::Cpu, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")),
                (
                    Controller::Cpuacct,
                    PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
                ),
            ]
        );
        assert_eq!(crate::mount::unescape_mountinfo("/a\\040b"), "/a b");
    }

    #[test]
    fn a_tree_is_removed_deepest_first_in_every_hierarchy() {
        let root = tempfile::tempdir().unwrap();
        let unified = root.path().join("unified");
        let memory = root.path().join("memory");
        for dir in [&unified, &memory] {
            std::fs::create_dir_all(dir.join("pod/containers/app/0")).unwrap();
            std::fs::create_dir_all(dir.join("pod/pause")).unwrap();
        }
        std::fs::create_dir_all(unified.join("pod/containers/app/1")).unwrap();
        let host = CgroupHost::from_mounts(
            Some(unified.clone()),
            [(Controller::Memory, memory.clone())],
        );
        let pod = Cgroup::open(&host, "pod").unwrap();
        assert_eq!(pod.dirs().len(), 2);
        let errors = pod.remove_tree(Duration::from_millis(100));
        assert!(errors.is_empty(), "{errors:?}");
        assert!(!unified.join("pod").exists());
        assert!(!memory.join("pod").exists());
        assert!(unified.exists() && memory.exists());
    }

    #[test]
    fn names_must_stay_inside() {
        let host = CgroupHost::from_mounts(Some(PathBuf::from("/nonexistent")), []);
        assert_eq!(host.mode(), CgroupMode::Unified);
        assert!(Cgroup::open(&host, "../x").is_err());
        assert!(Cgroup::open(&host, "/abs").is_err());
        assert!(Cgroup::open(&host, "").is_err());
        assert!(Cgroup::open(&host, "pods/a").is_ok());
    }
}
