//! The texts supervisor-init prints, as the in-process `supervisor init`
//! prints them through `std` and `nix`: signal names (`container::signal`),
//! errno names and descriptions (nix's `Errno` as `ENOENT: No such file or
//! directory`, std's `io::Error` as `No such file or directory (os error
//! 2)`, which are glibc's texts), and Rust's `{:?}` of a string. Plain
//! `core` code with no system calls, so `tests/tests/init.rs` compiles this
//! file into the test crate and compares every text with the original.

/// Where text goes: a message line of the init, a `Vec<u8>` in the tests.
pub trait Out {
    fn put(&mut self, bytes: &[u8]);
}

/// Decimal, with a sign when negative.
pub fn int(out: &mut impl Out, value: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        out.put(b"-");
    }
    out.put(&digits[at..]);
}

/// The names of signals 1 to 31 (`container::signal::name`).
const SIGNAL_NAMES: [&str; 31] = [
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];
const SIGRTMIN: i64 = 34;
const SIGRTMAX: i64 = 64;

/// `SIGTERM`, `SIG32`, `SIGRTMIN`, `SIGRTMIN+3`, `SIGRTMAX`, `signal 99`.
pub fn signal(out: &mut impl Out, number: i64) {
    match number {
        1..=31 => out.put(SIGNAL_NAMES[number as usize - 1].as_bytes()),
        32 | 33 => {
            out.put(b"SIG");
            int(out, number);
        }
        SIGRTMIN => out.put(b"SIGRTMIN"),
        SIGRTMAX => out.put(b"SIGRTMAX"),
        35..=63 => {
            out.put(b"SIGRTMIN+");
            int(out, number - SIGRTMIN);
        }
        _ => {
            out.put(b"signal ");
            int(out, number);
        }
    }
}

/// Per errno 0 to 133 (x86_64 Linux): nix's name, nix's description, and
/// glibc's `strerror` text where it differs from nix's ("" where equal).
/// Numbers without a name (0, 41, 58) are nix's `UnknownErrno`.
const ERRNO: [(&str, &str, &str); 134] = [
    ("", "", ""), // 0
    ("EPERM", "Operation not permitted", ""),
    ("ENOENT", "No such file or directory", ""),
    ("ESRCH", "No such process", ""),
    ("EINTR", "Interrupted system call", ""),
    ("EIO", "I/O error", "Input/output error"),
    ("ENXIO", "No such device or address", ""),
    ("E2BIG", "Argument list too long", ""),
    ("ENOEXEC", "Exec format error", ""),
    ("EBADF", "Bad file number", "Bad file descriptor"),
    ("ECHILD", "No child processes", ""),
    ("EAGAIN", "Try again", "Resource temporarily unavailable"),
    ("ENOMEM", "Out of memory", "Cannot allocate memory"),
    ("EACCES", "Permission denied", ""),
    ("EFAULT", "Bad address", ""),
    ("ENOTBLK", "Block device required", ""),
    ("EBUSY", "Device or resource busy", ""),
    ("EEXIST", "File exists", ""),
    ("EXDEV", "Cross-device link", "Invalid cross-device link"),
    ("ENODEV", "No such device", ""),
    ("ENOTDIR", "Not a directory", ""),
    ("EISDIR", "Is a directory", ""),
    ("EINVAL", "Invalid argument", ""),
    (
        "ENFILE",
        "File table overflow",
        "Too many open files in system",
    ),
    ("EMFILE", "Too many open files", ""),
    (
        "ENOTTY",
        "Not a typewriter",
        "Inappropriate ioctl for device",
    ),
    ("ETXTBSY", "Text file busy", ""),
    ("EFBIG", "File too large", ""),
    ("ENOSPC", "No space left on device", ""),
    ("ESPIPE", "Illegal seek", ""),
    ("EROFS", "Read-only file system", ""),
    ("EMLINK", "Too many links", ""),
    ("EPIPE", "Broken pipe", ""),
    (
        "EDOM",
        "Math argument out of domain of func",
        "Numerical argument out of domain",
    ),
    (
        "ERANGE",
        "Math result not representable",
        "Numerical result out of range",
    ),
    (
        "EDEADLK",
        "Resource deadlock would occur",
        "Resource deadlock avoided",
    ),
    ("ENAMETOOLONG", "File name too long", ""),
    ("ENOLCK", "No record locks available", "No locks available"),
    ("ENOSYS", "Function not implemented", ""),
    ("ENOTEMPTY", "Directory not empty", ""),
    (
        "ELOOP",
        "Too many symbolic links encountered",
        "Too many levels of symbolic links",
    ),
    ("", "", ""), // 41
    ("ENOMSG", "No message of desired type", ""),
    ("EIDRM", "Identifier removed", ""),
    ("ECHRNG", "Channel number out of range", ""),
    ("EL2NSYNC", "Level 2 not synchronized", ""),
    ("EL3HLT", "Level 3 halted", ""),
    ("EL3RST", "Level 3 reset", ""),
    ("ELNRNG", "Link number out of range", ""),
    ("EUNATCH", "Protocol driver not attached", ""),
    ("ENOCSI", "No CSI structure available", ""),
    ("EL2HLT", "Level 2 halted", ""),
    ("EBADE", "Invalid exchange", ""),
    ("EBADR", "Invalid request descriptor", ""),
    ("EXFULL", "Exchange full", ""),
    ("ENOANO", "No anode", ""),
    ("EBADRQC", "Invalid request code", ""),
    ("EBADSLT", "Invalid slot", ""),
    ("", "", ""), // 58
    ("EBFONT", "Bad font file format", ""),
    ("ENOSTR", "Device not a stream", ""),
    ("ENODATA", "No data available", ""),
    ("ETIME", "Timer expired", ""),
    ("ENOSR", "Out of streams resources", ""),
    ("ENONET", "Machine is not on the network", ""),
    ("ENOPKG", "Package not installed", ""),
    ("EREMOTE", "Object is remote", ""),
    ("ENOLINK", "Link has been severed", ""),
    ("EADV", "Advertise error", ""),
    ("ESRMNT", "Srmount error", ""),
    ("ECOMM", "Communication error on send", ""),
    ("EPROTO", "Protocol error", ""),
    ("EMULTIHOP", "Multihop attempted", ""),
    ("EDOTDOT", "RFS specific error", ""),
    ("EBADMSG", "Not a data message", "Bad message"),
    ("EOVERFLOW", "Value too large for defined data type", ""),
    ("ENOTUNIQ", "Name not unique on network", ""),
    ("EBADFD", "File descriptor in bad state", ""),
    ("EREMCHG", "Remote address changed", ""),
    ("ELIBACC", "Can not access a needed shared library", ""),
    ("ELIBBAD", "Accessing a corrupted shared library", ""),
    ("ELIBSCN", ".lib section in a.out corrupted", ""),
    (
        "ELIBMAX",
        "Attempting to link in too many shared libraries",
        "",
    ),
    ("ELIBEXEC", "Cannot exec a shared library directly", ""),
    (
        "EILSEQ",
        "Illegal byte sequence",
        "Invalid or incomplete multibyte or wide character",
    ),
    (
        "ERESTART",
        "Interrupted system call should be restarted",
        "",
    ),
    ("ESTRPIPE", "Streams pipe error", ""),
    ("EUSERS", "Too many users", ""),
    ("ENOTSOCK", "Socket operation on non-socket", ""),
    ("EDESTADDRREQ", "Destination address required", ""),
    ("EMSGSIZE", "Message too long", ""),
    ("EPROTOTYPE", "Protocol wrong type for socket", ""),
    ("ENOPROTOOPT", "Protocol not available", ""),
    ("EPROTONOSUPPORT", "Protocol not supported", ""),
    ("ESOCKTNOSUPPORT", "Socket type not supported", ""),
    (
        "EOPNOTSUPP",
        "Operation not supported on transport endpoint",
        "Operation not supported",
    ),
    ("EPFNOSUPPORT", "Protocol family not supported", ""),
    (
        "EAFNOSUPPORT",
        "Address family not supported by protocol",
        "",
    ),
    ("EADDRINUSE", "Address already in use", ""),
    ("EADDRNOTAVAIL", "Cannot assign requested address", ""),
    ("ENETDOWN", "Network is down", ""),
    ("ENETUNREACH", "Network is unreachable", ""),
    (
        "ENETRESET",
        "Network dropped connection because of reset",
        "Network dropped connection on reset",
    ),
    ("ECONNABORTED", "Software caused connection abort", ""),
    ("ECONNRESET", "Connection reset by peer", ""),
    ("ENOBUFS", "No buffer space available", ""),
    ("EISCONN", "Transport endpoint is already connected", ""),
    ("ENOTCONN", "Transport endpoint is not connected", ""),
    (
        "ESHUTDOWN",
        "Cannot send after transport endpoint shutdown",
        "",
    ),
    ("ETOOMANYREFS", "Too many references: cannot splice", ""),
    ("ETIMEDOUT", "Connection timed out", ""),
    ("ECONNREFUSED", "Connection refused", ""),
    ("EHOSTDOWN", "Host is down", ""),
    ("EHOSTUNREACH", "No route to host", ""),
    ("EALREADY", "Operation already in progress", ""),
    ("EINPROGRESS", "Operation now in progress", ""),
    ("ESTALE", "Stale file handle", ""),
    ("EUCLEAN", "Structure needs cleaning", ""),
    ("ENOTNAM", "Not a XENIX named type file", ""),
    ("ENAVAIL", "No XENIX semaphores available", ""),
    ("EISNAM", "Is a named type file", ""),
    ("EREMOTEIO", "Remote I/O error", ""),
    ("EDQUOT", "Quota exceeded", "Disk quota exceeded"),
    ("ENOMEDIUM", "No medium found", ""),
    ("EMEDIUMTYPE", "Wrong medium type", ""),
    ("ECANCELED", "Operation canceled", ""),
    ("ENOKEY", "Required key not available", ""),
    ("EKEYEXPIRED", "Key has expired", ""),
    ("EKEYREVOKED", "Key has been revoked", ""),
    ("EKEYREJECTED", "Key was rejected by service", ""),
    ("EOWNERDEAD", "Owner died", ""),
    ("ENOTRECOVERABLE", "State not recoverable", ""),
    ("ERFKILL", "Operation not possible due to RF-kill", ""),
    ("EHWPOISON", "Memory page has hardware error", ""),
];

fn errno_entry(errno: i32) -> Option<(&'static str, &'static str, &'static str)> {
    let entry = *ERRNO.get(usize::try_from(errno).ok()?)?;
    (!entry.0.is_empty()).then_some(entry)
}

/// nix's `Errno` as `{}` shows it: `EACCES: Permission denied`.
pub fn errno(out: &mut impl Out, errno: i32) {
    let (name, desc) = errno_entry(errno).map_or(("UnknownErrno", "Unknown errno"), |e| (e.0, e.1));
    out.put(name.as_bytes());
    out.put(b": ");
    out.put(desc.as_bytes());
}

/// nix's `Errno::desc()`: `Permission denied`.
pub fn errno_desc(out: &mut impl Out, errno: i32) {
    out.put(
        errno_entry(errno)
            .map_or("Unknown errno", |e| e.1)
            .as_bytes(),
    );
}

/// std's `io::Error::from_raw_os_error` as `{}` shows it (glibc's
/// `strerror_r` text): `Inappropriate ioctl for device (os error 25)`.
pub fn os_error(out: &mut impl Out, errno: i32) {
    match errno_entry(errno) {
        Some((_, nix, glibc)) => out.put(if glibc.is_empty() { nix } else { glibc }.as_bytes()),
        None if errno == 0 => out.put(b"Success"),
        None => {
            out.put(b"Unknown error ");
            int(out, errno.into());
        }
    }
    out.put(b" (os error ");
    int(out, errno.into());
    out.put(b")");
}

/// `{:?}` of `String::from_utf8_lossy(bytes)`: in double quotes, invalid
/// UTF-8 as U+FFFD, and each character escaped as `impl Debug for str`
/// escapes it (`char::escape_debug`, except that a single quote stays).
pub fn quoted(out: &mut impl Out, bytes: &[u8]) {
    out.put(b"\"");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            let mut utf8 = [0u8; 4];
            if c == '\'' {
                out.put(b"'");
                continue;
            }
            for e in c.escape_debug() {
                out.put(e.encode_utf8(&mut utf8).as_bytes());
            }
        }
        if !chunk.invalid().is_empty() {
            out.put(
                char::REPLACEMENT_CHARACTER
                    .encode_utf8(&mut [0u8; 4])
                    .as_bytes(),
            );
        }
    }
    out.put(b"\"");
}
