//! `seccomp-probe [sleep]`: makes the system calls the seccomp tests look
//! at and prints one line, `seccomp-probe: getpid=ok keyctl=EPERM ...`
//! (`ok` or the errno's name), then with `sleep` waits for a signal. The
//! calls are harmless: keyctl asks for the session keyring's id, socket
//! opens (and closes) an AF_VSOCK socket, clone3 is given no arguments
//! (EINVAL when it is let through), unshare(CLONE_NEWUSER) comes last and
//! only changes this process.

fn result(rc: libc::c_long) -> String {
    if rc >= 0 {
        return "ok".into();
    }
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    match errno {
        libc::EPERM => "EPERM".into(),
        libc::ENOSYS => "ENOSYS".into(),
        libc::EINVAL => "EINVAL".into(),
        libc::EAFNOSUPPORT => "EAFNOSUPPORT".into(),
        libc::EACCES => "EACCES".into(),
        libc::ENOSPC => "ENOSPC".into(),
        other => format!("errno{other}"),
    }
}

fn main() {
    let mut line = String::from("seccomp-probe:");
    // SAFETY: getpid has no arguments.
    let rc = unsafe { libc::syscall(libc::SYS_getpid) };
    line.push_str(&format!(" getpid={}", result(rc)));
    // SAFETY: KEYCTL_GET_KEYRING_ID of the session keyring, create = 0.
    let rc = unsafe { libc::syscall(libc::SYS_keyctl, 0, -3i32, 0) };
    line.push_str(&format!(" keyctl={}", result(rc)));
    // SAFETY: a socket call with constant arguments; the fd is closed.
    let rc = unsafe { libc::syscall(libc::SYS_socket, libc::AF_VSOCK, libc::SOCK_STREAM, 0) };
    if rc >= 0 {
        // SAFETY: closes the fd just opened.
        unsafe { libc::close(rc as i32) };
    }
    line.push_str(&format!(" socket_vsock={}", result(rc)));
    // SAFETY: a null clone_args of size 0: the kernel refuses it (EINVAL)
    // before doing anything.
    let rc = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) };
    line.push_str(&format!(" clone3={}", result(rc)));
    // SAFETY: unshare changes only this process.
    let rc = unsafe { libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER) };
    line.push_str(&format!(" unshare_user={}", result(rc)));
    println!("{line}");
    if std::env::args().nth(1).as_deref() == Some("sleep") {
        loop {
            // SAFETY: pause waits for a signal.
            unsafe { libc::pause() };
        }
    }
}
