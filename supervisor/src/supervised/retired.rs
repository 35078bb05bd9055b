//! A container's ended instances' cgroups: killed, then removed once their
//! processes are gone, after the next instance has started, off the
//! restart path (the loop sweeps them every `RETIRED_RETRY` while any is
//! left).
//!
//! It owns only removal; which cgroup an instance gets is
//! `SupervisedContainer`'s, and the pod's cgroup tree is removed at
//! teardown by `container::Cgroup::remove_tree`.

use super::CGROUP_TIMEOUT;
use container::Cgroup;
use std::time::Instant;

/// An ended instance's cgroup and when it ended.
struct Retired {
    cgroup: Cgroup,
    since: Instant,
}

/// The ended instances' cgroups of one container still to remove.
#[derive(Default)]
pub(super) struct RetiredCgroups(Vec<Retired>);

impl RetiredCgroups {
    /// An instance's cgroup is done with: `sweep` kills what is left in it
    /// and removes it.
    pub fn retire(&mut self, cgroup: Cgroup) {
        self.0.push(Retired {
            cgroup,
            since: Instant::now(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Kill what is left in the cgroups and remove them; a cgroup that does
    /// not empty within CGROUP_TIMEOUT is reported and left to the
    /// teardown.
    pub fn sweep(&mut self, container: &str, now: Instant) {
        self.0.retain(|r| {
            let result = r.cgroup.kill().and_then(|empty| {
                if empty {
                    r.cgroup.try_remove()
                } else {
                    Ok(false)
                }
            });
            match result {
                Ok(true) => false,
                Ok(false) if now.duration_since(r.since) < CGROUP_TIMEOUT => true,
                Ok(false) => {
                    eprintln!(
                        "supervisor: [{container}] {} still busy after {CGROUP_TIMEOUT:?}: left to the teardown",
                        r.cgroup.name().display()
                    );
                    false
                }
                Err(error) => {
                    eprintln!("supervisor: [{container}] {error}");
                    false
                }
            }
        });
    }
}
