//! Time as the status and the logs spell it: RFC 3339 timestamps (Kubernetes'
//! `metav1.Time` at second precision, Go's `RFC3339Nano` for CRI log lines)
//! and their parser, through the `time` crate; kubectl's `HumanDuration`
//! (the AGE column) and Go's `time.Duration.String` (kubelet's back-off
//! messages), which no crate spells. UTC only, from `SystemTime`, no time
//! zones. It does not read clocks; callers pass the instant.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// 9999-12-31T23:59:59.999999999Z: RFC 3339 has four-digit years.
const LAST_RFC3339: Duration = Duration::new(253_402_300_799, 999_999_999);

/// `t` in UTC, clamped to what RFC 3339 can write (0001 is out of reach of
/// the clock anyway: times before the epoch clamp to it).
fn utc(t: SystemTime) -> OffsetDateTime {
    OffsetDateTime::from(t.clamp(UNIX_EPOCH, UNIX_EPOCH + LAST_RFC3339))
}

fn rfc3339(t: OffsetDateTime) -> String {
    // Formatting fails only for years beyond 9999, which `utc` rules out.
    t.format(&Rfc3339).unwrap_or_default()
}

/// `2026-11-29T04:39:30Z`: Kubernetes' `metav1.Time` (second precision).
pub fn format_rfc3339(t: SystemTime) -> String {
    let whole_seconds = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    rfc3339(utc(UNIX_EPOCH + Duration::from_secs(whole_seconds)))
}

/// `2026-11-29T04:39:30.12345Z`: Go's `time.RFC3339Nano` as CRI log lines
/// carry it (fraction with trailing zeros removed, none when zero).
pub fn format_rfc3339_nano(t: SystemTime) -> String {
    rfc3339(utc(t))
}

/// Parses an RFC 3339 time in UTC (`Z`) or with a numeric offset, with or
/// without fraction. `None` if malformed or before the epoch.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let t = SystemTime::from(OffsetDateTime::parse(s, &Rfc3339).ok()?);
    (t >= UNIX_EPOCH).then_some(t)
}

/// kubectl's `HumanDuration`: `5s`, `3m2s`, `12m`, `2h5m`, `20h`, `4d3h`, `30d`, `2y3d`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (minutes, hours, days) = (secs / 60, secs / 3600, secs / 86_400);
    if secs < 120 {
        format!("{secs}s")
    } else if minutes < 10 {
        match secs % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        }
    } else if minutes < 180 {
        format!("{minutes}m")
    } else if hours < 8 {
        match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        }
    } else if hours < 24 * 365 * 2 {
        format!("{days}d")
    } else if hours < 24 * 365 * 8 {
        match days % 365 {
            0 => format!("{}y", days / 365),
            dd => format!("{}y{dd}d", days / 365),
        }
    } else {
        format!("{}y", days / 365)
    }
}

/// Formats a duration as Go's `time.Duration.String` does for the values
/// back-off produces: `0s`, `100ms`, `10s`, `1m20s`, `5m0s`, `1.5s`.
pub fn go_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    let total_ms = d.as_millis();
    if total_ms < 1000 {
        return format!("{total_ms}ms");
    }
    let secs = d.as_secs();
    let frac_ms = d.subsec_millis();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if frac_ms == 0 {
        out.push_str(&format!("{s}s"));
    } else {
        let frac = format!("{frac_ms:03}");
        out.push_str(&format!("{s}.{}s", frac.trim_end_matches('0')));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn rfc3339_round_trips() {
        assert_eq!(format_rfc3339(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(at(1_795_753_170)), "2026-11-27T04:19:30Z");
        let t = at(1_700_000_000) + Duration::from_nanos(120_000_000);
        assert_eq!(format_rfc3339_nano(t), "2023-11-14T22:13:20.12Z");
        assert_eq!(
            format_rfc3339_nano(at(1_700_000_000)),
            "2023-11-14T22:13:20Z"
        );
        let t100ns = at(1_700_000_000) + Duration::from_nanos(100);
        assert_eq!(format_rfc3339_nano(t100ns), "2023-11-14T22:13:20.0000001Z");
        assert_eq!(format_rfc3339(t100ns), "2023-11-14T22:13:20Z");
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.12Z"), Some(t));
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20+01:00"),
            Some(at(1_700_000_000))
        );
        for day in (0..200_000u64).step_by(997) {
            let t = at(day * 86_400 + 3_723);
            assert_eq!(parse_rfc3339(&format_rfc3339(t)), Some(t));
        }
        assert_eq!(parse_rfc3339("2023-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn ages_like_kubectl() {
        let cases = [
            (5, "5s"),
            (119, "119s"),
            (182, "3m2s"),
            (240, "4m"),
            (900, "15m"),
            (3 * 3600 + 300, "3h5m"),
            (7200 * 4, "8h"),
            (20 * 3600, "20h"),
            (4 * 86_400, "4d"),
            (4 * 86_400 + 3 * 3600, "4d3h"),
            (30 * 86_400, "30d"),
            (800 * 86_400, "2y70d"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(Duration::from_secs(secs)), want, "{secs}");
        }
    }

    #[test]
    fn go_durations() {
        for (d, s) in [
            (ms(0), "0s"),
            (ms(100), "100ms"),
            (ms(10_000), "10s"),
            (ms(80_000), "1m20s"),
            (ms(300_000), "5m0s"),
            (ms(1_500), "1.5s"),
        ] {
            assert_eq!(go_duration(d), s);
        }
    }
}
