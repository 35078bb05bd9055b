//! Installing a compiled filter: seccomp(2) `SECCOMP_SET_MODE_FILTER`,
//! called by the child after fork with memory the parent prepared (no
//! allocation).

use seccompiler::sock_filter;

use crate::sys::Errno;

/// Install one BPF program with `flags` (`SECCOMP_FILTER_FLAG_*`). Needs
/// no_new_privs or CAP_SYS_ADMIN.
pub(crate) fn install(program: &[sock_filter], flags: u32) -> Result<(), Errno> {
    let Ok(len) = u16::try_from(program.len()) else {
        return Err(libc::EINVAL);
    };
    // seccompiler's sock_filter is `#[repr(C)]` with the fields of
    // linux/filter.h's struct sock_filter, the layout libc's has.
    let prog = libc::sock_fprog {
        len,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points to `len` valid instructions that outlive the
    // call; the kernel copies them (copy_from_user) and keeps no pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            &prog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL));
    }
    Ok(())
}
