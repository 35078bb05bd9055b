//! The cgroup v1 devices controller of a container: runc's default
//! allow-list (`libcontainer/specconv` AllowedDevices, which containerd's
//! CRI leaves in place for a container without devices): everything
//! denied, then mknod of any node allowed (`c *:* m`, `b *:* m`: an image
//! may carry nodes, they just cannot be opened) and read/write of the
//! standard nodes (null, zero, full, random, urandom, tty, console, ptmx,
//! and the pseudo-terminals, major 136).
//!
//! This is the second wall: the first is `nodev` on every mount the
//! container can write to ([`crate::rootfs`]), which holds on every cgroup
//! version. On cgroup v2 runc compiles the same list into a
//! BPF_PROG_TYPE_CGROUP_DEVICE program; this crate attaches none, and
//! relies on `nodev` alone there (see the rootfs module).
//!
//! The list is written to a container's cgroup before it has children: the
//! kernel refuses a change of the default (`a`) on a cgroup with children,
//! and a child copies its parent's list when it is created, so every
//! instance cgroup beneath gets it.

use std::path::Path;

use super::write_file;
use crate::error::CgroupError;

/// What is written to `devices.deny` first: every device, every access.
pub const DENY_ALL: &str = "a";

/// What is then written to `devices.allow`, one rule a write, in order.
pub const ALLOWED: [&str; 11] = [
    "c *:* m",     // mknod of any character device
    "b *:* m",     // mknod of any block device
    "c 1:3 rwm",   // /dev/null
    "c 1:5 rwm",   // /dev/zero
    "c 1:7 rwm",   // /dev/full
    "c 1:8 rwm",   // /dev/random
    "c 1:9 rwm",   // /dev/urandom
    "c 5:0 rwm",   // /dev/tty
    "c 5:1 rwm",   // /dev/console
    "c 5:2 rwm",   // /dev/ptmx
    "c 136:* rwm", // /dev/pts/*
];

/// Write the allow-list into the devices directory `dir` of one cgroup.
pub(super) fn restrict(dir: &Path) -> Result<(), CgroupError> {
    write_file(&dir.join("devices.deny"), DENY_ALL)?;
    for rule in ALLOWED {
        write_file(&dir.join("devices.allow"), rule)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_all_comes_first_then_every_rule() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("devices.deny"), "").unwrap();
        std::fs::write(dir.path().join("devices.allow"), "").unwrap();
        restrict(dir.path()).unwrap();
        // A plain file keeps the last write (the kernel's takes each).
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
        assert_eq!(read("devices.deny"), "a");
        assert_eq!(read("devices.allow"), "c 136:* rwm");
        for node in ["1:3", "1:5", "1:7", "1:8", "1:9", "5:0", "5:2"] {
            assert!(
                ALLOWED.contains(&format!("c {node} rwm").as_str()),
                "{node}"
            );
        }
        assert!(
            !ALLOWED
                .iter()
                .any(|r| r.starts_with('b') && r.contains('r'))
        );
    }
}
