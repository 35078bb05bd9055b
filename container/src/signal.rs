//! Signal numbers as a PID 1 and a runtime handle them: plain numbers
//! `1..=64`, real-time ones included, with their conventional names
//! (`SIGTERM`, `SIGRTMIN+3`) and the parser of those names.
//!
//! It owns naming only: sending goes through [`crate::PidFd`] (or the
//! supervisor's `pid1`), and nix's `Signal` enum is not used here because
//! it cannot name real-time signals, which a PID 1 must forward and report.

/// The highest signal number on Linux (`SIGRTMAX` as the kernel counts).
pub const SIGNAL_MAX: i32 = 64;

/// The first real-time signal a program can use with glibc (`SIGRTMIN`);
/// 32 and 33 are reserved by glibc for its threads.
pub const SIGRTMIN: i32 = 34;

/// The conventional name of a signal number: `SIGTERM`, `SIGRTMIN+3`,
/// `SIG32` for glibc's internal ones, `signal 99` when out of range.
pub fn name(signal: i32) -> String {
    let named = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSTKFLT => "SIGSTKFLT",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGTTIN => "SIGTTIN",
        libc::SIGTTOU => "SIGTTOU",
        libc::SIGURG => "SIGURG",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGVTALRM => "SIGVTALRM",
        libc::SIGPROF => "SIGPROF",
        libc::SIGWINCH => "SIGWINCH",
        libc::SIGIO => "SIGIO",
        libc::SIGPWR => "SIGPWR",
        libc::SIGSYS => "SIGSYS",
        _ => "",
    };
    if !named.is_empty() {
        return named.to_string();
    }
    match signal {
        SIGRTMIN => "SIGRTMIN".to_string(),
        SIGNAL_MAX => "SIGRTMAX".to_string(),
        s if s > SIGRTMIN && s < SIGNAL_MAX => format!("SIGRTMIN+{}", s - SIGRTMIN),
        32 | 33 => format!("SIG{signal}"),
        _ => format!("signal {signal}"),
    }
}

/// Parse a signal given as a number (`15`), a name with or without `SIG`
/// (`TERM`, `SIGTERM`, case-insensitive) or a real-time offset
/// (`RTMIN+2`, `RTMAX-1`). Returns `None` unless it names `1..=64`.
pub fn parse(text: &str) -> Option<i32> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i32>() {
        return (1..=SIGNAL_MAX).contains(&n).then_some(n);
    }
    let upper = text.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let offset = |rest: &str| -> Option<i32> {
        if rest.is_empty() {
            Some(0)
        } else {
            rest.parse::<i32>().ok()
        }
    };
    let found = if let Some(rest) = bare.strip_prefix("RTMIN") {
        offset(rest).map(|o| SIGRTMIN + o)
    } else if let Some(rest) = bare.strip_prefix("RTMAX") {
        offset(rest).map(|o| SIGNAL_MAX + o)
    } else {
        (1..SIGRTMIN).find(|&s| name(s).strip_prefix("SIG") == Some(bare))
    };
    found.filter(|s| (1..=SIGNAL_MAX).contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_the_parser() {
        for signal in 1..=SIGNAL_MAX {
            let name = name(signal);
            assert_eq!(parse(&name), Some(signal), "{name}");
            assert_eq!(parse(&signal.to_string()), Some(signal));
        }
    }

    #[test]
    fn parser_accepts_short_and_relative_forms_and_rejects_junk() {
        assert_eq!(parse("term"), Some(libc::SIGTERM));
        assert_eq!(parse("SIGhup"), Some(libc::SIGHUP));
        assert_eq!(parse("RTMIN+2"), Some(36));
        assert_eq!(parse("RTMAX-1"), Some(63));
        assert_eq!(parse("0"), None);
        assert_eq!(parse("65"), None);
        assert_eq!(parse("RTMAX+1"), None);
        assert_eq!(parse("NOPE"), None);
        assert_eq!(parse(""), None);
    }
}
