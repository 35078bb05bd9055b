//! One supervisor per pod: an exclusive `flock(2)` on `<state dir>/
//! supervisor.lock`, held by `supervisor run` for the pod's whole life, with
//! the holder's pid written in the file. The kernel drops the lock when its
//! last fd closes, so a supervisor that dies (even by SIGKILL) cannot keep
//! it; the fd is close-on-exec (Rust opens every file with `O_CLOEXEC`), so
//! pause, the containers and the helpers exec'd by the supervisor never hold
//! it (the processes forked for them close it at exec, a parked one at once).
//!
//! A [`Role::Reclaim`] holder is `supervisor status` (or the next run)
//! cleaning up after a dead supervisor: a run that finds one waits for it,
//! while a run that finds a live run refuses, naming its pid. Whoever holds
//! the lock is the only one that may touch the pod's cgroups, netns,
//! volumes and status; nobody touches them without it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// Why the lock could not be had.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// A live supervisor runs the pod.
    #[error(
        "pod {pod} is already running under supervisor pid {}: one supervisor per pod (lock {})",
        pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string()),
        path.display()
    )]
    Held {
        /// `namespace/name`.
        pod: String,
        /// The holder's pid, when the file names one.
        pid: Option<i32>,
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file could not be opened, locked or written.
    #[error("lock {}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// Who holds the lock, as its file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `supervisor run`, for the pod's life.
    Run,
    /// A clean-up after a dead supervisor, for as long as it takes.
    Reclaim,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Run => "run",
            Role::Reclaim => "reclaim",
        }
    }
}

/// What the lock file says: `<pid> run|reclaim`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// The pid that wrote it.
    pub pid: i32,
    /// What it holds the lock for.
    pub role: Role,
}

impl Holder {
    /// Parses the file's one line; None when it is empty or not ours.
    pub fn parse(text: &str) -> Option<Holder> {
        let mut words = text.split_whitespace();
        let pid = words.next()?.parse().ok()?;
        let role = match words.next() {
            Some("reclaim") => Role::Reclaim,
            Some("run") | None => Role::Run,
            Some(_) => return None,
        };
        Some(Holder { pid, role })
    }
}

/// How long a run waits for a reclaim of the pod to end (the clean-up
/// kills processes and waits for cgroups to empty: seconds at most).
const RECLAIM_WAIT: Duration = Duration::from_secs(60);
/// Between two tries while the lock is held by a reclaim or a prober.
const RETRY: Duration = Duration::from_millis(20);
/// Tries that must all find a live run holding the lock before a run gives
/// up: a `status` that probes the lock holds it for microseconds, and the
/// file may still name a dead supervisor whose pid was reused.
const TRIES_BEFORE_REFUSAL: u32 = 3;

/// The held lock; dropping it (or exiting) releases it.
#[derive(Debug)]
pub struct PodLock {
    lock: Flock<File>,
    path: PathBuf,
}

impl PodLock {
    /// For `supervisor run` of `pod`: takes the lock at `path` (created
    /// 0600), waiting while a reclaim holds it, and writes this process's
    /// pid in it. A live supervisor holding it is [`LockError::Held`].
    pub fn acquire(path: &Path, pod: &str) -> Result<PodLock, LockError> {
        let deadline = Instant::now() + RECLAIM_WAIT;
        let mut seen_live_run = 0;
        loop {
            let file = open(path, true)?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => {
                    let mut lock = PodLock {
                        lock,
                        path: path.to_path_buf(),
                    };
                    lock.write_holder(Role::Run)?;
                    return Ok(lock);
                }
                Err((_, Errno::EWOULDBLOCK)) => {}
                Err((_, errno)) => return Err(io_error(path, errno)),
            }
            let holder = read_holder(path);
            let live_run = holder.is_some_and(|h| h.role == Role::Run && is_alive(h.pid));
            seen_live_run = if live_run { seen_live_run + 1 } else { 0 };
            if seen_live_run >= TRIES_BEFORE_REFUSAL || Instant::now() >= deadline {
                return Err(LockError::Held {
                    pod: pod.to_owned(),
                    pid: holder.map(|h| h.pid),
                    path: path.to_path_buf(),
                });
            }
            std::thread::sleep(RETRY);
        }
    }

    /// Takes the lock at `path` if nobody holds it (None when a live
    /// process does, or when there is no lock file: no supervisor ever
    /// ran the pod with this layout). The file is left as it is: it still
    /// names the last supervisor; [`PodLock::mark_reclaim`] says a clean-up
    /// is under way.
    pub fn try_take(path: &Path) -> Result<Option<PodLock>, LockError> {
        let file = match open(path, false) {
            Ok(file) => file,
            Err(LockError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(error) => return Err(error),
        };
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(PodLock {
                lock,
                path: path.to_path_buf(),
            })),
            Err((_, Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(io_error(path, errno)),
        }
    }

    /// Whether a live process holds the lock at `path` (a missing file:
    /// no). Probes with a shared lock, released at once.
    pub fn is_held(path: &Path) -> bool {
        let Ok(file) = open(path, false) else {
            return false;
        };
        matches!(
            Flock::lock(file, FlockArg::LockSharedNonblock),
            Err((_, Errno::EWOULDBLOCK))
        )
    }

    /// Says in the file that this process reclaims the pod (a run that
    /// starts meanwhile waits instead of refusing).
    pub fn mark_reclaim(&mut self) -> Result<(), LockError> {
        self.write_holder(Role::Reclaim)
    }

    /// What the file says now.
    pub fn holder(&self) -> Option<Holder> {
        read_holder(&self.path)
    }

    fn write_holder(&mut self, role: Role) -> Result<(), LockError> {
        let line = format!("{} {}\n", std::process::id(), role.as_str());
        let file: &mut File = &mut self.lock;
        let result = file
            .set_len(0)
            .and_then(|()| {
                use std::io::Seek as _;
                file.seek(io::SeekFrom::Start(0)).map(drop)
            })
            .and_then(|()| file.write_all(line.as_bytes()));
        result.map_err(|source| LockError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// The holder the file at `path` names, if any (read without the lock: a
/// writer that is truncating it gives None).
pub fn read_holder(path: &Path) -> Option<Holder> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    Holder::parse(&text)
}

/// Whether process `pid` exists (kill 0; EPERM: it exists, not ours).
pub fn is_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(errno) => errno == Errno::EPERM,
    }
}

fn open(path: &Path, create: bool) -> Result<File, LockError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|source| LockError::Io {
            path: path.to_path_buf(),
            source,
        })
}

fn io_error(path: &Path, errno: Errno) -> LockError {
    LockError::Io {
        path: path.to_path_buf(),
        source: io::Error::from(errno),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("supervisor.lock");
        let first = PodLock::acquire(&path, "a/web").unwrap();
        assert_eq!(
            first.holder(),
            Some(Holder {
                pid: std::process::id() as i32,
                role: Role::Run
            })
        );
        // flock locks belong to the open file: a second open in this same
        // process contends like another process would.
        let error = PodLock::acquire(&path, "a/web").unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains(&format!("supervisor pid {}", std::process::id()))
                && message.contains("a/web"),
            "{message}"
        );
        assert!(PodLock::is_held(&path));
        assert!(PodLock::try_take(&path).unwrap().is_none());
        drop(first);
        assert!(!PodLock::is_held(&path));
        let mut taken = PodLock::try_take(&path).unwrap().expect("free");
        taken.mark_reclaim().unwrap();
        assert_eq!(taken.holder().map(|h| h.role), Some(Role::Reclaim));
    }

    #[test]
    fn no_lock_file_is_no_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("supervisor.lock");
        assert!(!PodLock::is_held(&path));
        assert!(PodLock::try_take(&path).unwrap().is_none());
        assert!(!path.exists(), "probing creates nothing");
    }

    #[test]
    fn holder_lines_parse() {
        assert_eq!(
            Holder::parse("12 reclaim\n"),
            Some(Holder {
                pid: 12,
                role: Role::Reclaim
            })
        );
        assert_eq!(Holder::parse("7\n").map(|h| h.role), Some(Role::Run));
        assert_eq!(Holder::parse(""), None);
        assert_eq!(Holder::parse("x run"), None);
    }
}
