//! The VM suite (`tests/vm/`): what this hybrid-cgroup host cannot show, run
//! in a throw-away VM on Debian 12's own kernel with pure cgroup v2. One test
//! boots a plain init and runs the container, run and network tests inside
//! (`tests/vm/suite.sh`); one runs the Docker image test there with a Docker
//! engine of the guest's own (`suite.sh --docker`), where `--privileged` can
//! be granted; the last boots systemd as PID 1 and drives the shipped unit
//! (`tests/vm/systemd-pod.sh`). The harness itself (fetching
//! qemu and the kernel, the initramfs, the timeout) lives in the scripts; this
//! file only runs them one VM at a time and judges their exit status. The
//! test image store (`it::images`, under the target dir) is filled on the
//! host first: the guest sees it through the workspace, read-only below its
//! tmpfs overlay, so the tests inside find their images stored.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use it::{have_command, require, require_root};

/// Two VMs at once would compete for the machine's cores under TCG.
static ONE_VM_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `tests/vm/vm.sh`'s status when the VM ended without the command's status
/// (it could not be fetched or booted, or the guest panicked).
const VM_DID_NOT_RUN: i32 = 125;

fn vm_script(name: &str) -> PathBuf {
    it::workspace_root().join("tests/vm").join(name)
}

/// Run a script of `tests/vm/` from the workspace root; a VM that cannot boot
/// skips (fails under CI=true), any other failure fails the test.
fn run_in_vm(script: &str, args: &[&str]) {
    require_root!();
    require!(
        have_command("apt-get") && have_command("dpkg"),
        "apt-get and dpkg, to fetch qemu and the guest kernel"
    );
    let _one = ONE_VM_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    it::images::store_dir();
    let started = Instant::now();
    let status = Command::new("bash")
        .arg(vm_script(script))
        .args(args)
        .current_dir(it::workspace_root())
        .status()
        .unwrap_or_else(|e| panic!("run tests/vm/{script}: {e}"));
    eprintln!(
        "tests/vm/{script} {}: {status} after {:.0?}",
        args.join(" "),
        started.elapsed()
    );
    require!(
        status.code() != Some(VM_DID_NOT_RUN),
        "a test VM that boots (tests/vm/vm.sh exited 125; see its console above)"
    );
    assert!(status.success(), "tests/vm/{script} failed: {status}");
}

#[test]
fn plain_init_on_pure_cgroup_v2_passes_the_container_run_and_network_tests() {
    run_in_vm("suite.sh", &[]);
}

/// `docker run --privileged` of the supervisor image, which this host's
/// engine cannot grant (its bounding set lacks CAP_SYS_RESOURCE): in the VM
/// a Docker engine of the guest's own runs `docker_supervisor.rs` on pure
/// cgroup v2, where the container's cgroup namespace is private and the
/// supervisor makes the pod's cgroups inside the one Docker gave it.
#[test]
fn docker_run_privileged_runs_the_supervisor_image_on_pure_cgroup_v2() {
    run_in_vm(
        "suite.sh",
        &["--timeout", "900", "--docker", "docker_supervisor"],
    );
}

#[test]
fn systemd_as_pid1_runs_the_shipped_unit_with_delegation() {
    run_in_vm(
        "vm.sh",
        &[
            "--systemd",
            "--timeout",
            "900",
            "--",
            "bash",
            "tests/vm/systemd-pod.sh",
        ],
    );
}
