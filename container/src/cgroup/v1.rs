//! cgroup v1 file formats: memory.limit_in_bytes, cpu.cfs_quota_us +
//! cpu.cfs_period_us, cpu.shares, pids.max, memory.oom_control,
//! cpuacct.usage, and the freezer dance that kills every task race-free.
//! Each function works on one controller's directory of one cgroup.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Controller, read_file, write_file};
use crate::error::CgroupError;
use crate::limits::{self, CPU_PERIOD_US, Limits};

/// Write the `controller` part of `res` into `dir` (that controller's
/// directory of the cgroup).
pub fn apply(dir: &Path, controller: Controller, res: &Limits) -> Result<(), CgroupError> {
    match controller {
        Controller::Memory => {
            if let Some(bytes) = res.memory_limit_bytes {
                write_file(
                    &dir.join("memory.limit_in_bytes"),
                    &limits::memory_limit_v1(Some(bytes)),
                )?;
            }
        }
        Controller::Cpu => {
            if res.cpu_limit_millis.is_some() {
                write_file(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                write_file(
                    &dir.join("cpu.cfs_quota_us"),
                    &limits::cfs_quota_v1(res.cpu_limit_millis),
                )?;
            }
            if let Some(req) = res.cpu_request_millis {
                write_file(
                    &dir.join("cpu.shares"),
                    &limits::cpu_shares(req).to_string(),
                )?;
            }
        }
        Controller::Pids => {
            if let Some(n) = res.pids_limit {
                write_file(&dir.join("pids.max"), &n.to_string())?;
            }
        }
        Controller::Cpuacct | Controller::Freezer | Controller::Devices => {}
    }
    Ok(())
}

/// The file whose `oom_kill` line counts OOM kills (Linux >= 4.13).
pub fn oom_kill_file(memory_dir: &Path) -> PathBuf {
    memory_dir.join("memory.oom_control")
}

/// `cpuacct.usage`: CPU nanoseconds of the cgroup and its children.
pub fn cpu_usage_nanos(cpuacct_dir: &Path) -> Result<u64, CgroupError> {
    let path = cpuacct_dir.join("cpuacct.usage");
    let content = read_file(&path)?;
    content
        .trim()
        .parse()
        .map_err(|_| CgroupError::Parse { path, content })
}

/// Freeze the freezer cgroup `dir`, SIGKILL each of its tasks, thaw it.
/// Frozen tasks cannot fork, so none escapes; the kills land on thaw.
pub fn freeze_kill_thaw(dir: &Path) -> Result<(), CgroupError> {
    let state = dir.join("freezer.state");
    if !state.exists() {
        // The hierarchy root has no freezer.state.
        return Ok(());
    }
    write_file(&state, "FROZEN")?;
    // Freezing is asynchronous; a task stuck in an uninterruptible sleep
    // keeps it FREEZING, so wait a bounded time and kill anyway.
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline && read_file(&state)?.trim() != "FROZEN" {
        std::thread::sleep(Duration::from_millis(2));
    }
    let result = super::read_procs(dir).map(|pids| {
        for pid in pids {
            super::kill_pid(pid);
        }
    });
    write_file(&state, "THAWED")?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::{Cgroup, CgroupHost};
    use std::fs;
    use std::path::PathBuf;

    /// A fake v1 layout: one directory per controller, the cgroup created
    /// by the code under test, and the files the kernel would provide.
    fn fake_host(root: &Path) -> CgroupHost {
        let mounts: Vec<(Controller, PathBuf)> = Controller::ALL
            .into_iter()
            .map(|c| (c, root.join(c.name())))
            .collect();
        for (_, p) in &mounts {
            fs::create_dir_all(p).unwrap();
        }
        CgroupHost::from_mounts(None, mounts)
    }

    fn touch(dir: &Path, files: &[&str]) {
        for f in files {
            fs::write(dir.join(f), "").unwrap();
        }
    }

    #[test]
    fn writes_kubelet_values_into_v1_files() {
        let tmp = tempfile::tempdir().unwrap();
        let host = fake_host(tmp.path());
        assert_eq!(host.mode(), crate::cgroup::CgroupMode::Legacy);
        let pod = Cgroup::create(&host, "pods/pod-a").unwrap();
        let ctr = pod.create_child(&host, "web").unwrap();
        let mem = ctr.v1_dir(Controller::Memory).unwrap().to_path_buf();
        let cpu = ctr.v1_dir(Controller::Cpu).unwrap().to_path_buf();
        let pids = ctr.v1_dir(Controller::Pids).unwrap().to_path_buf();
        assert_eq!(mem, tmp.path().join("memory/pods/pod-a/web"));
        touch(&mem, &["memory.limit_in_bytes"]);
        touch(
            &cpu,
            &["cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.shares"],
        );
        touch(&pids, &["pids.max"]);

        ctr.apply(&Limits {
            memory_limit_bytes: Some(64 << 20),
            cpu_limit_millis: Some(200),
            cpu_request_millis: Some(100),
            pids_limit: Some(32),
        })
        .unwrap();
        let read = |p: PathBuf| fs::read_to_string(p).unwrap();
        assert_eq!(read(mem.join("memory.limit_in_bytes")), "67108864");
        assert_eq!(read(cpu.join("cpu.cfs_period_us")), "100000");
        assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "20000");
        assert_eq!(read(cpu.join("cpu.shares")), "102");
        assert_eq!(read(pids.join("pids.max")), "32");
        assert_eq!(
            ctr.procs_files().len(),
            6,
            "one cgroup.procs per v1 hierarchy"
        );
        // The devices hierarchy gets runc's allow-list.
        let devices = ctr.v1_dir(Controller::Devices).unwrap().to_path_buf();
        assert_eq!(devices, tmp.path().join("devices/pods/pod-a/web"));
        touch(&devices, &["devices.deny", "devices.allow"]);
        ctr.restrict_devices().unwrap();
        assert_eq!(read(devices.join("devices.deny")), "a");
    }

    #[test]
    fn missing_file_reports_path_and_value() {
        let tmp = tempfile::tempdir().unwrap();
        let host = fake_host(tmp.path());
        let cg = Cgroup::create(&host, "x").unwrap();
        let err = cg
            .apply(&Limits {
                pids_limit: Some(7),
                ..Limits::default()
            })
            .unwrap_err();
        match err {
            CgroupError::Write { path, value, .. } => {
                assert_eq!(path, tmp.path().join("pids/x/pids.max"));
                assert_eq!(value, "7");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn reads_oom_kill_counter_and_usage() {
        let tmp = tempfile::tempdir().unwrap();
        let host = fake_host(tmp.path());
        let cg = Cgroup::create(&host, "x").unwrap();
        fs::write(
            cg.v1_dir(Controller::Memory)
                .unwrap()
                .join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        )
        .unwrap();
        fs::write(
            cg.v1_dir(Controller::Cpuacct)
                .unwrap()
                .join("cpuacct.usage"),
            "123456789\n",
        )
        .unwrap();
        assert_eq!(cg.oom_kills().unwrap(), 3);
        assert_eq!(cg.cpu_usage_nanos().unwrap(), 123_456_789);
    }

    #[test]
    fn limits_without_controller_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("pids")).unwrap();
        let host = CgroupHost::from_mounts(None, [(Controller::Pids, tmp.path().join("pids"))]);
        let cg = Cgroup::create(&host, "x").unwrap();
        let err = cg
            .apply(&Limits {
                memory_limit_bytes: Some(1),
                ..Limits::default()
            })
            .unwrap_err();
        assert!(matches!(
            err,
            CgroupError::ControllerMissing {
                controller: "memory"
            }
        ));
    }
}
