//! The unit file for bare hosts, `deploy/systemd/supervisor@.service`, as
//! systemd itself reads it: `systemd-analyze verify` (Debian's systemd
//! package; systemd need not be PID 1) on an instance of it whose
//! ExecStart points at the release binary this workspace built.

use it::{bin, have_command, require};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The path of the supervisor in the shipped unit (its install location).
const INSTALLED_SUPERVISOR: &str = "/usr/local/bin/supervisor";
const INSTALLED_PAUSE: &str = "/usr/local/bin/pause";

fn shipped_unit() -> String {
    let path = it::workspace_root().join("deploy/systemd/supervisor@.service");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Write the unit as instance `web` into `dir`, the install paths of the
/// binaries replaced by the built ones (systemd-analyze checks that
/// ExecStart is executable), with `edit` applied last.
fn instance(dir: &Path, edit: impl FnOnce(String) -> String) -> PathBuf {
    let text = shipped_unit();
    assert!(
        text.contains(&format!("ExecStart={INSTALLED_SUPERVISOR} ")),
        "the unit's ExecStart no longer starts with {INSTALLED_SUPERVISOR}:\n{text}"
    );
    let text = text
        .replace(
            INSTALLED_SUPERVISOR,
            bin("supervisor").to_str().expect("UTF-8 path"),
        )
        .replace(INSTALLED_PAUSE, bin("pause").to_str().expect("UTF-8 path"));
    let path = dir.join("supervisor@web.service");
    std::fs::write(&path, edit(text)).unwrap();
    path
}

/// Run `systemd-analyze verify UNIT`: its exit status and every line it
/// printed (it reports problems on stderr, some on stdout).
fn verify(unit: &Path) -> (bool, Vec<String>) {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .output()
        .expect("run systemd-analyze");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .map(str::to_string)
        .collect();
    (out.status.success(), lines)
}

#[test]
fn unit_file_passes_systemd_analyze_verify() {
    require!(
        have_command("systemd-analyze"),
        "systemd-analyze (Debian package systemd)"
    );
    let dir = tempfile::tempdir().unwrap();
    let unit = instance(dir.path(), |text| text);
    let (ok, lines) = verify(&unit);
    let about_unit: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("supervisor@web.service"))
        .collect();
    assert!(
        ok && about_unit.is_empty(),
        "systemd-analyze verify {} failed (exit ok: {ok}):\n{}",
        unit.display(),
        lines.join("\n")
    );
}

/// The check above is only worth something if systemd-analyze really reads
/// our file: the same instance with an unknown key and a bad KillMode must
/// be reported, naming the unit.
#[test]
fn systemd_analyze_verify_reports_a_broken_copy() {
    require!(
        have_command("systemd-analyze"),
        "systemd-analyze (Debian package systemd)"
    );
    let dir = tempfile::tempdir().unwrap();
    let unit = instance(dir.path(), |text| {
        text.replace("KillMode=mixed", "KillMode=bogus\nNoSuchKey=1")
    });
    let (_, lines) = verify(&unit);
    let text = lines.join("\n");
    for expected in ["kill mode", "NoSuchKey"] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains("supervisor@web.service") && l.contains(expected)),
            "systemd-analyze did not report {expected:?}:\n{text}"
        );
    }
}

/// systemd must wait for the supervisor's own stop: TimeoutStopSec above
/// Kubernetes' default terminationGracePeriodSeconds (30 s; longer grace
/// periods are announced with EXTEND_TIMEOUT_USEC at stop time).
#[test]
fn unit_stop_timeout_is_above_the_default_grace_period() {
    let text = shipped_unit();
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
            .unwrap_or_else(|| panic!("the unit has no {key}="))
            .to_string()
    };
    let timeout: u64 = value("TimeoutStopSec")
        .parse()
        .expect("TimeoutStopSec in plain seconds");
    assert!(timeout > 30, "TimeoutStopSec={timeout} is not above 30 s");
    assert_eq!(value("Type"), "notify");
    assert_eq!(value("NotifyAccess"), "main");
    assert_eq!(value("Delegate"), "yes");
}
