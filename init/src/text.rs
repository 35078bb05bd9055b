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

/// The names of signals 1 to 31 (`container::signal::name`) without their
/// `SIG`, in order. One string rather than an array of them: no table of
/// pointers in the binary.
const SIGNAL_NAMES: &str = "HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM \
                            STKFLT CHLD CONT STOP TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO \
                            PWR SYS";
const SIGRTMIN: i64 = 34;
const SIGRTMAX: i64 = 64;

/// `SIGTERM`, `SIG32`, `SIGRTMIN`, `SIGRTMIN+3`, `SIGRTMAX`, `signal 99`.
pub fn signal(out: &mut impl Out, number: i64) {
    match number {
        1..=31 => {
            let name = SIGNAL_NAMES.split(' ').nth(number as usize - 1);
            out.put(b"SIG");
            out.put(name.unwrap_or("").as_bytes());
        }
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

/// Per errno 0 to 133 (x86_64 Linux), one line each: nix's name, nix's
/// description, and glibc's `strerror` text where it differs from nix's,
/// separated by `|`. Numbers without a name (0, 41, 58) have an empty line
/// (nix's `UnknownErrno`). One string rather than an array of them: no
/// table of pointers in the binary.
const ERRNO: &str = "\
\n\
EPERM|Operation not permitted\n\
ENOENT|No such file or directory\n\
ESRCH|No such process\n\
EINTR|Interrupted system call\n\
EIO|I/O error|Input/output error\n\
ENXIO|No such device or address\n\
E2BIG|Argument list too long\n\
ENOEXEC|Exec format error\n\
EBADF|Bad file number|Bad file descriptor\n\
ECHILD|No child processes\n\
EAGAIN|Try again|Resource temporarily unavailable\n\
ENOMEM|Out of memory|Cannot allocate memory\n\
EACCES|Permission denied\n\
EFAULT|Bad address\n\
ENOTBLK|Block device required\n\
EBUSY|Device or resource busy\n\
EEXIST|File exists\n\
EXDEV|Cross-device link|Invalid cross-device link\n\
ENODEV|No such device\n\
ENOTDIR|Not a directory\n\
EISDIR|Is a directory\n\
EINVAL|Invalid argument\n\
ENFILE|File table overflow|Too many open files in system\n\
EMFILE|Too many open files\n\
ENOTTY|Not a typewriter|Inappropriate ioctl for device\n\
ETXTBSY|Text file busy\n\
EFBIG|File too large\n\
ENOSPC|No space left on device\n\
ESPIPE|Illegal seek\n\
EROFS|Read-only file system\n\
EMLINK|Too many links\n\
EPIPE|Broken pipe\n\
EDOM|Math argument out of domain of func|Numerical argument out of domain\n\
ERANGE|Math result not representable|Numerical result out of range\n\
EDEADLK|Resource deadlock would occur|Resource deadlock avoided\n\
ENAMETOOLONG|File name too long\n\
ENOLCK|No record locks available|No locks available\n\
ENOSYS|Function not implemented\n\
ENOTEMPTY|Directory not empty\n\
ELOOP|Too many symbolic links encountered|Too many levels of symbolic links\n\
\n\
ENOMSG|No message of desired type\n\
EIDRM|Identifier removed\n\
ECHRNG|Channel number out of range\n\
EL2NSYNC|Level 2 not synchronized\n\
EL3HLT|Level 3 halted\n\
EL3RST|Level 3 reset\n\
ELNRNG|Link number out of range\n\
EUNATCH|Protocol driver not attached\n\
ENOCSI|No CSI structure available\n\
EL2HLT|Level 2 halted\n\
EBADE|Invalid exchange\n\
EBADR|Invalid request descriptor\n\
EXFULL|Exchange full\n\
ENOANO|No anode\n\
EBADRQC|Invalid request code\n\
EBADSLT|Invalid slot\n\
\n\
EBFONT|Bad font file format\n\
ENOSTR|Device not a stream\n\
ENODATA|No data available\n\
ETIME|Timer expired\n\
ENOSR|Out of streams resources\n\
ENONET|Machine is not on the network\n\
ENOPKG|Package not installed\n\
EREMOTE|Object is remote\n\
ENOLINK|Link has been severed\n\
EADV|Advertise error\n\
ESRMNT|Srmount error\n\
ECOMM|Communication error on send\n\
EPROTO|Protocol error\n\
EMULTIHOP|Multihop attempted\n\
EDOTDOT|RFS specific error\n\
EBADMSG|Not a data message|Bad message\n\
EOVERFLOW|Value too large for defined data type\n\
ENOTUNIQ|Name not unique on network\n\
EBADFD|File descriptor in bad state\n\
EREMCHG|Remote address changed\n\
ELIBACC|Can not access a needed shared library\n\
ELIBBAD|Accessing a corrupted shared library\n\
ELIBSCN|.lib section in a.out corrupted\n\
ELIBMAX|Attempting to link in too many shared libraries\n\
ELIBEXEC|Cannot exec a shared library directly\n\
EILSEQ|Illegal byte sequence|Invalid or incomplete multibyte or wide character\n\
ERESTART|Interrupted system call should be restarted\n\
ESTRPIPE|Streams pipe error\n\
EUSERS|Too many users\n\
ENOTSOCK|Socket operation on non-socket\n\
EDESTADDRREQ|Destination address required\n\
EMSGSIZE|Message too long\n\
EPROTOTYPE|Protocol wrong type for socket\n\
ENOPROTOOPT|Protocol not available\n\
EPROTONOSUPPORT|Protocol not supported\n\
ESOCKTNOSUPPORT|Socket type not supported\n\
EOPNOTSUPP|Operation not supported on transport endpoint|Operation not supported\n\
EPFNOSUPPORT|Protocol family not supported\n\
EAFNOSUPPORT|Address family not supported by protocol\n\
EADDRINUSE|Address already in use\n\
EADDRNOTAVAIL|Cannot assign requested address\n\
ENETDOWN|Network is down\n\
ENETUNREACH|Network is unreachable\n\
ENETRESET|Network dropped connection because of reset|Network dropped connection on reset\n\
ECONNABORTED|Software caused connection abort\n\
ECONNRESET|Connection reset by peer\n\
ENOBUFS|No buffer space available\n\
EISCONN|Transport endpoint is already connected\n\
ENOTCONN|Transport endpoint is not connected\n\
ESHUTDOWN|Cannot send after transport endpoint shutdown\n\
ETOOMANYREFS|Too many references: cannot splice\n\
ETIMEDOUT|Connection timed out\n\
ECONNREFUSED|Connection refused\n\
EHOSTDOWN|Host is down\n\
EHOSTUNREACH|No route to host\n\
EALREADY|Operation already in progress\n\
EINPROGRESS|Operation now in progress\n\
ESTALE|Stale file handle\n\
EUCLEAN|Structure needs cleaning\n\
ENOTNAM|Not a XENIX named type file\n\
ENAVAIL|No XENIX semaphores available\n\
EISNAM|Is a named type file\n\
EREMOTEIO|Remote I/O error\n\
EDQUOT|Quota exceeded|Disk quota exceeded\n\
ENOMEDIUM|No medium found\n\
EMEDIUMTYPE|Wrong medium type\n\
ECANCELED|Operation canceled\n\
ENOKEY|Required key not available\n\
EKEYEXPIRED|Key has expired\n\
EKEYREVOKED|Key has been revoked\n\
EKEYREJECTED|Key was rejected by service\n\
EOWNERDEAD|Owner died\n\
ENOTRECOVERABLE|State not recoverable\n\
ERFKILL|Operation not possible due to RF-kill\n\
EHWPOISON|Memory page has hardware error";

/// (name, nix's description, glibc's text) of a known errno.
fn errno_entry(errno: i32) -> Option<(&'static str, &'static str, &'static str)> {
    let line = ERRNO.split('\n').nth(usize::try_from(errno).ok()?)?;
    let mut fields = line.split('|');
    let (name, nix) = (fields.next()?, fields.next()?);
    Some((name, nix, fields.next().unwrap_or(nix)))
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
        Some((_, _, glibc)) => out.put(glibc.as_bytes()),
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
