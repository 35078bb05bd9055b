//! x86_64 system call numbers (`arch/x86/entry/syscalls/syscall_64.tbl`),
//! those the workspace's no-libc binaries make. One table per architecture
//! belongs here, so that a port touches this crate only.

pub const READ: usize = 0;
pub const WRITE: usize = 1;
pub const CLOSE: usize = 3;
pub const POLL: usize = 7;
pub const MMAP: usize = 9;
pub const MUNMAP: usize = 11;
pub const RT_SIGACTION: usize = 13;
pub const RT_SIGPROCMASK: usize = 14;
pub const IOCTL: usize = 16;
pub const GETPID: usize = 39;
pub const FORK: usize = 57;
pub const EXECVE: usize = 59;
pub const WAIT4: usize = 61;
pub const KILL: usize = 62;
pub const FCNTL: usize = 72;
pub const CHDIR: usize = 80;
pub const READLINK: usize = 89;
pub const SETPGID: usize = 109;
pub const GETPGRP: usize = 111;
pub const SETSID: usize = 112;
pub const RT_SIGTIMEDWAIT: usize = 128;
pub const PRCTL: usize = 157;
pub const GETDENTS64: usize = 217;
pub const CLOCK_GETTIME: usize = 228;
pub const EXIT_GROUP: usize = 231;
pub const OPENAT: usize = 257;
pub const SIGNALFD4: usize = 289;
pub const PIPE2: usize = 293;
