//! Linux capabilities as a set: names, the container-runtime default set,
//! and parsing Kubernetes-style names ("NET_ADMIN" or "CAP_NET_ADMIN").
//! Applying a set to a process happens in [`crate::spawn`] (bounding,
//! effective, permitted, inheritable and ambient sets all become this set).

use std::fmt;

use crate::error::CapabilityError;

/// Capability names indexed by number (linux/capability.h, up to
/// CAP_CHECKPOINT_RESTORE = 40).
pub const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// A set of capabilities (bit N = capability number N).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CapSet(pub u64);

impl CapSet {
    /// No capabilities.
    pub const EMPTY: CapSet = CapSet(0);

    /// Every capability this crate knows by name. The kernel's own
    /// maximum is read at spawn time (`/proc/sys/kernel/cap_last_cap`).
    pub const ALL: CapSet = CapSet((1u64 << NAMES.len()) - 1);

    /// The default set of containerd / CRI-O / Docker: CHOWN, DAC_OVERRIDE,
    /// FSETID, FOWNER, MKNOD, NET_RAW, SETGID, SETUID, SETFCAP, SETPCAP,
    /// NET_BIND_SERVICE, SYS_CHROOT, KILL, AUDIT_WRITE.
    pub const RUNTIME_DEFAULT: CapSet = CapSet(
        1 << 0      // CHOWN
            | 1 << 1    // DAC_OVERRIDE
            | 1 << 4    // FSETID
            | 1 << 3    // FOWNER
            | 1 << 27   // MKNOD
            | 1 << 13   // NET_RAW
            | 1 << 6    // SETGID
            | 1 << 7    // SETUID
            | 1 << 31   // SETFCAP
            | 1 << 8    // SETPCAP
            | 1 << 10   // NET_BIND_SERVICE
            | 1 << 18   // SYS_CHROOT
            | 1 << 5    // KILL
            | 1 << 29, // AUDIT_WRITE
    );

    /// The number of a capability name, with or without the `CAP_` prefix,
    /// any case.
    pub fn number(name: &str) -> Result<u32, CapabilityError> {
        let upper = name.to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        NAMES
            .iter()
            .position(|n| *n == bare)
            .map(|i| i as u32)
            .ok_or_else(|| CapabilityError {
                name: name.to_string(),
            })
    }

    /// A set from names; "ALL" means every capability.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<CapSet, CapabilityError> {
        let mut set = CapSet::EMPTY;
        for name in names {
            let name = name.as_ref();
            if name.eq_ignore_ascii_case("ALL") {
                set = CapSet::ALL;
            } else {
                set = set.with(CapSet::number(name)?);
            }
        }
        Ok(set)
    }

    /// This set plus capability number `cap`.
    pub fn with(self, cap: u32) -> CapSet {
        CapSet(self.0 | (1u64 << cap))
    }

    /// This set minus capability number `cap`.
    pub fn without(self, cap: u32) -> CapSet {
        CapSet(self.0 & !(1u64 << cap))
    }

    /// Whether capability number `cap` is in the set.
    pub fn contains(self, cap: u32) -> bool {
        cap < 64 && self.0 & (1u64 << cap) != 0
    }

    /// Kubernetes' securityContext.capabilities, as containerd's CRI plugin
    /// applies them: from `base`, "ALL" in `add` gives every capability,
    /// "ALL" in `drop` clears the set, then the single adds, then the
    /// single drops (so drop ALL + add NET_BIND_SERVICE keeps just that).
    pub fn adjust<S: AsRef<str>>(
        base: CapSet,
        add: &[S],
        drop: &[S],
    ) -> Result<CapSet, CapabilityError> {
        let is_all = |n: &S| n.as_ref().eq_ignore_ascii_case("ALL");
        let singles = |names: &[S]| -> Result<CapSet, CapabilityError> {
            names
                .iter()
                .filter(|n| !is_all(n))
                .try_fold(CapSet::EMPTY, |set, n| {
                    Ok(set.with(CapSet::number(n.as_ref())?))
                })
        };
        let mut set = base;
        if add.iter().any(is_all) {
            set = CapSet::ALL;
        }
        if drop.iter().any(is_all) {
            set = CapSet::EMPTY;
        }
        Ok(CapSet((set.0 | singles(add)?.0) & !singles(drop)?.0))
    }
}

impl fmt::Display for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = (0..64u32)
            .filter(|c| self.contains(*c))
            .map(|c| match NAMES.get(c as usize) {
                Some(n) => format!("CAP_{n}"),
                None => format!("CAP_{c}"),
            })
            .collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_default_set() {
        assert_eq!(CapSet::number("CAP_NET_ADMIN").unwrap(), 12);
        assert_eq!(CapSet::number("net_raw").unwrap(), 13);
        assert!(CapSet::number("CAP_FLY").is_err());
        let d = CapSet::RUNTIME_DEFAULT;
        assert_eq!(d.0.count_ones(), 14);
        assert!(d.contains(CapSet::number("KILL").unwrap()));
        assert!(!d.contains(CapSet::number("SYS_ADMIN").unwrap()));
        assert_eq!(CapSet::ALL.0.count_ones(), 41);
    }

    #[test]
    fn adjust_like_kubernetes() {
        let s = CapSet::adjust(CapSet::RUNTIME_DEFAULT, &["NET_ADMIN"], &["KILL"]).unwrap();
        assert!(s.contains(12) && !s.contains(5));
        let only = CapSet::adjust(CapSet::RUNTIME_DEFAULT, &["NET_ADMIN"], &["ALL"]).unwrap();
        assert_eq!(only, CapSet::EMPTY.with(12), "drop ALL, then add NET_ADMIN");
        let all_but = CapSet::adjust(CapSet::EMPTY, &["ALL"], &["CHOWN"]).unwrap();
        assert_eq!(all_but, CapSet::ALL.without(0));
        let none = CapSet::adjust(CapSet::RUNTIME_DEFAULT, &["ALL"], &["ALL"]).unwrap();
        assert_eq!(none, CapSet::EMPTY);
        assert_eq!(
            CapSet::from_names(&["CHOWN", "KILL"]).unwrap().to_string(),
            "CAP_CHOWN,CAP_KILL"
        );
    }
}
