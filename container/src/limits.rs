//! Resource limits of a container and their encodings in cgroup files,
//! with kubelet's conversions (pkg/kubelet/cm/helpers_linux.go). Pure
//! functions only: the cgroup modules write what these return.

/// The CFS period kubelet uses: 100 ms.
pub const CPU_PERIOD_US: u64 = 100_000;
/// The smallest quota kubelet writes (1 ms).
pub const MIN_QUOTA_US: u64 = 1_000;
/// The smallest cpu.shares value (v1).
pub const MIN_SHARES: u64 = 2;
/// The largest cpu.shares value (v1).
pub const MAX_SHARES: u64 = 262_144;

/// Limits of one cgroup. `None` leaves the kernel default in place.
/// Memory requests change no limit, so they have no field here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Memory limit in bytes (memory.max / memory.limit_in_bytes).
    pub memory_limit_bytes: Option<u64>,
    /// CPU limit in millicores (cpu.max / cpu.cfs_quota_us).
    pub cpu_limit_millis: Option<u64>,
    /// CPU request in millicores (cpu.weight / cpu.shares).
    pub cpu_request_millis: Option<u64>,
    /// Maximum number of tasks (pids.max).
    pub pids_limit: Option<u64>,
}

/// Millicores to a CFS quota in microseconds per `period_us` (kubelet's
/// `milliCPUToQuota`): 0 means no limit; otherwise at least 1 ms.
pub fn cpu_quota_us(millis: u64, period_us: u64) -> Option<u64> {
    if millis == 0 {
        return None;
    }
    Some((millis.saturating_mul(period_us) / 1000).max(MIN_QUOTA_US))
}

/// Millicores to cgroup v1 cpu.shares (kubelet's `MilliCPUToShares`):
/// max(2, milli * 1024 / 1000), capped at 262144.
pub fn cpu_shares(millis: u64) -> u64 {
    (millis.saturating_mul(1024) / 1000).clamp(MIN_SHARES, MAX_SHARES)
}

/// cgroup v1 shares to a cgroup v2 cpu.weight (kubelet's
/// `CpuSharesToCpuWeight`): 1 + ((shares - 2) * 9999) / 262142.
pub fn cpu_weight(shares: u64) -> u64 {
    let shares = shares.clamp(MIN_SHARES, MAX_SHARES);
    1 + ((shares - 2) * 9999) / 262_142
}

/// The v2 `cpu.max` line: "QUOTA PERIOD", or "max PERIOD" without a limit.
pub fn cpu_max_v2(limit_millis: Option<u64>) -> String {
    match limit_millis.and_then(|m| cpu_quota_us(m, CPU_PERIOD_US)) {
        Some(q) => format!("{q} {CPU_PERIOD_US}"),
        None => format!("max {CPU_PERIOD_US}"),
    }
}

/// The v1 `cpu.cfs_quota_us` value: the quota, or -1 without a limit.
pub fn cfs_quota_v1(limit_millis: Option<u64>) -> String {
    match limit_millis.and_then(|m| cpu_quota_us(m, CPU_PERIOD_US)) {
        Some(q) => q.to_string(),
        None => "-1".to_string(),
    }
}

/// A v2 `memory.max` / `pids.max` value: the number or "max".
pub fn max_or(value: Option<u64>) -> String {
    value.map_or_else(|| "max".to_string(), |v| v.to_string())
}

/// The v1 `memory.limit_in_bytes` value: the number, or -1 for no limit.
pub fn memory_limit_v1(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "-1".to_string(), |v| v.to_string())
}

/// Parse `key value` lines (memory.events, memory.oom_control, cpu.stat)
/// and return the value of `key`.
pub fn keyed_value(content: &str, key: &str) -> Option<u64> {
    content.lines().find_map(|line| {
        let mut it = line.split_whitespace();
        (it.next()? == key).then_some(())?;
        it.next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_follows_kubelet() {
        assert_eq!(cpu_quota_us(200, CPU_PERIOD_US), Some(20_000));
        assert_eq!(cpu_quota_us(1500, CPU_PERIOD_US), Some(150_000));
        // Below 1 ms of quota kubelet writes the minimum.
        assert_eq!(cpu_quota_us(5, CPU_PERIOD_US), Some(1_000));
        assert_eq!(cpu_quota_us(0, CPU_PERIOD_US), None);
        assert_eq!(cpu_max_v2(Some(250)), "25000 100000");
        assert_eq!(cpu_max_v2(None), "max 100000");
        assert_eq!(cfs_quota_v1(Some(250)), "25000");
        assert_eq!(cfs_quota_v1(None), "-1");
    }

    #[test]
    fn shares_and_weight_follow_kubelet() {
        assert_eq!(cpu_shares(0), 2);
        assert_eq!(cpu_shares(1), 2);
        assert_eq!(cpu_shares(100), 102);
        assert_eq!(cpu_shares(1000), 1024);
        assert_eq!(cpu_shares(10_000_000), MAX_SHARES);
        assert_eq!(cpu_weight(2), 1);
        assert_eq!(cpu_weight(1024), 1 + (1022 * 9999) / 262_142);
        assert_eq!(cpu_weight(1024), 39);
        assert_eq!(cpu_weight(MAX_SHARES), 10_000);
    }

    #[test]
    fn max_values() {
        assert_eq!(max_or(Some(64 << 20)), "67108864");
        assert_eq!(max_or(None), "max");
        assert_eq!(memory_limit_v1(None), "-1");
        assert_eq!(memory_limit_v1(Some(4096)), "4096");
    }

    #[test]
    fn keyed_values() {
        let events = "low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed_value(events, "oom_kill"), Some(1));
        assert_eq!(keyed_value(events, "oom"), Some(2));
        let control = "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n";
        assert_eq!(keyed_value(control, "oom_kill"), Some(4));
        assert_eq!(keyed_value(control, "missing"), None);
    }
}
