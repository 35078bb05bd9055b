//! cgroup v2 file formats: memory.max, cpu.max, cpu.weight, pids.max,
//! memory.events, cpu.stat, cgroup.events, cgroup.kill, cgroup.freeze, and
//! enabling controllers in `cgroup.subtree_control` down to a new cgroup.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Controller, read_file, read_keyed, write_file};
use crate::error::CgroupError;
use crate::limits::{self, Limits};

/// The controllers this crate uses that `<dir>/cgroup.controllers` lists.
pub fn available_controllers(dir: &Path) -> Vec<Controller> {
    let Ok(content) = std::fs::read_to_string(dir.join("cgroup.controllers")) else {
        return Vec::new();
    };
    let names: Vec<&str> = content.split_whitespace().collect();
    [Controller::Memory, Controller::Cpu, Controller::Pids]
        .into_iter()
        .filter(|c| names.contains(&c.name()))
        .collect()
}

/// Enable `controllers` in the `cgroup.subtree_control` of `root` and of
/// each ancestor of `root/name` below it, so that `root/name` gets their
/// files. Controllers already enabled are not written again.
pub fn enable_controllers(
    root: &Path,
    name: &Path,
    controllers: &[Controller],
) -> Result<(), CgroupError> {
    if controllers.is_empty() {
        return Ok(());
    }
    let mut dir = root.to_path_buf();
    let parents: Vec<_> = name.components().collect();
    // Every ancestor of the new cgroup: root, root/a, root/a/b, ... but not
    // the new cgroup itself.
    for (i, component) in parents.iter().enumerate() {
        // Two supervisors may start at once on a fresh host: whoever comes
        // second finds the shared parent made already, which is fine.
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(CgroupError::Create {
                    path: dir.clone(),
                    source,
                });
            }
        }
        let control = dir.join("cgroup.subtree_control");
        let enabled = read_file(&control)?;
        let enabled: Vec<&str> = enabled.split_whitespace().collect();
        let missing: Vec<String> = controllers
            .iter()
            .filter(|c| !enabled.contains(&c.name()))
            .map(|c| format!("+{}", c.name()))
            .collect();
        if !missing.is_empty() {
            write_file(&control, &missing.join(" "))?;
        }
        if i + 1 < parents.len() {
            dir.push(component);
        } else {
            break;
        }
    }
    Ok(())
}

/// Write the `controller` part of `res` into the cgroup directory `dir`.
pub fn apply(dir: &Path, controller: Controller, res: &Limits) -> Result<(), CgroupError> {
    match controller {
        Controller::Memory => {
            if let Some(bytes) = res.memory_limit_bytes {
                write_file(&dir.join("memory.max"), &limits::max_or(Some(bytes)))?;
            }
        }
        Controller::Cpu => {
            if res.cpu_limit_millis.is_some() {
                write_file(
                    &dir.join("cpu.max"),
                    &limits::cpu_max_v2(res.cpu_limit_millis),
                )?;
            }
            if let Some(req) = res.cpu_request_millis {
                let weight = limits::cpu_weight(limits::cpu_shares(req));
                write_file(&dir.join("cpu.weight"), &weight.to_string())?;
            }
        }
        Controller::Pids => {
            if let Some(n) = res.pids_limit {
                write_file(&dir.join("pids.max"), &limits::max_or(Some(n)))?;
            }
        }
        Controller::Cpuacct | Controller::Freezer | Controller::Devices => {}
    }
    Ok(())
}

/// The file whose `oom_kill` line counts OOM kills.
pub fn oom_kill_file(dir: &Path) -> PathBuf {
    dir.join("memory.events")
}

/// `cpu.stat` `usage_usec`, in nanoseconds.
pub fn cpu_usage_nanos(dir: &Path) -> Result<u64, CgroupError> {
    Ok(read_keyed(&dir.join("cpu.stat"), "usage_usec")? * 1000)
}

/// `cgroup.events` `populated`: any process here or below.
pub fn populated(dir: &Path) -> Result<bool, CgroupError> {
    Ok(read_keyed(&dir.join("cgroup.events"), "populated")? != 0)
}

/// Kernels before 5.14 lack cgroup.kill: freeze, SIGKILL each, thaw.
pub fn freeze_kill_thaw(dir: &Path, pids: &[i32]) -> Result<(), CgroupError> {
    let freeze = dir.join("cgroup.freeze");
    write_file(&freeze, "1")?;
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline && read_keyed(&dir.join("cgroup.events"), "frozen")? != 1 {
        std::thread::sleep(Duration::from_millis(2));
    }
    for pid in pids {
        super::kill_pid(*pid);
    }
    write_file(&freeze, "0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::{Cgroup, CgroupHost, CgroupMode};
    use std::fs;

    #[test]
    fn writes_kubelet_values_into_v2_files_and_enables_controllers() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::write(
            root.join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids rdma misc\n",
        )
        .unwrap();
        fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        // The parent exists already (e.g. a systemd-delegated slice).
        fs::create_dir_all(root.join("pods")).unwrap();
        fs::write(root.join("pods/cgroup.subtree_control"), "memory").unwrap();

        let host = CgroupHost::from_mounts(Some(root.to_path_buf()), []);
        assert_eq!(host.mode(), CgroupMode::Unified);
        assert!(host.is_v2(Controller::Memory) && host.is_v2(Controller::Pids));
        let cg = Cgroup::create(&host, "pods/pod-a").unwrap();
        let dir = cg.unified_dir().unwrap().to_path_buf();
        assert_eq!(dir, root.join("pods/pod-a"));
        // On a fake fs the write replaces the file; the kernel would add.
        assert_eq!(
            fs::read_to_string(root.join("cgroup.subtree_control")).unwrap(),
            "+memory +cpu +pids"
        );
        assert_eq!(
            fs::read_to_string(root.join("pods/cgroup.subtree_control")).unwrap(),
            "+cpu +pids"
        );
        for f in ["memory.max", "cpu.max", "cpu.weight", "pids.max"] {
            fs::write(dir.join(f), "").unwrap();
        }
        cg.apply(&Limits {
            memory_limit_bytes: Some(128 << 20),
            cpu_limit_millis: Some(1500),
            cpu_request_millis: Some(1000),
            pids_limit: Some(100),
        })
        .unwrap();
        let read = |f: &str| fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(read("memory.max"), "134217728");
        assert_eq!(read("cpu.max"), "150000 100000");
        assert_eq!(read("cpu.weight"), "39");
        assert_eq!(read("pids.max"), "100");
        assert_eq!(cg.procs_files(), vec![dir.join("cgroup.procs")]);
    }

    #[test]
    fn reads_v2_counters() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::write(root.join("cgroup.controllers"), "memory pids").unwrap();
        fs::write(root.join("cgroup.subtree_control"), "memory pids").unwrap();
        let host = CgroupHost::from_mounts(Some(root.to_path_buf()), []);
        let cg = Cgroup::create(&host, "c").unwrap();
        let dir = cg.unified_dir().unwrap();
        fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 5\noom 2\noom_kill 2\noom_group_kill 0\n",
        )
        .unwrap();
        fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        fs::write(dir.join("cpu.stat"), "usage_usec 2500\nuser_usec 2000\n").unwrap();
        assert_eq!(cg.oom_kills().unwrap(), 2);
        assert!(cg.is_populated().unwrap());
        assert_eq!(cg.cpu_usage_nanos().unwrap(), 2_500_000);
    }

    #[test]
    fn hybrid_host_puts_limits_in_v1_and_membership_in_both() {
        let tmp = tempfile::tempdir().unwrap();
        let unified = tmp.path().join("unified");
        let memory = tmp.path().join("memory");
        fs::create_dir_all(&unified).unwrap();
        fs::create_dir_all(&memory).unwrap();
        fs::write(unified.join("cgroup.controllers"), "").unwrap();
        let host = CgroupHost::from_mounts(
            Some(unified.clone()),
            [(Controller::Memory, memory.clone())],
        );
        assert_eq!(host.mode(), CgroupMode::Hybrid);
        let cg = Cgroup::create(&host, "p").unwrap();
        fs::write(memory.join("p/memory.limit_in_bytes"), "").unwrap();
        cg.apply(&Limits {
            memory_limit_bytes: Some(4096),
            ..Limits::default()
        })
        .unwrap();
        assert_eq!(
            fs::read_to_string(memory.join("p/memory.limit_in_bytes")).unwrap(),
            "4096"
        );
        assert!(!unified.join("p/memory.max").exists());
        assert_eq!(
            cg.procs_files(),
            vec![
                unified.join("p/cgroup.procs"),
                memory.join("p/cgroup.procs")
            ]
        );
    }
}
