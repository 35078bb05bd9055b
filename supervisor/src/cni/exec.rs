//! Running one CNI plugin binary once: environment in, configuration on
//! stdin, result or error on stdout, with a deadline.
//!
//! The configuration goes through a memfd (not a pipe), so a plugin that
//! exits without reading it can neither block us nor hit SIGPIPE. Stdout and
//! stderr are drained with poll(2) until both close; the whole call has one
//! deadline, after which the plugin is killed with SIGKILL by its pid and
//! reaped. This BLOCKS the calling thread for up to the deadline: callers run
//! it at sandbox creation and teardown only, on the thread that owns the
//! child processes. That thread must not reap foreign pids (`waitpid(-1)`)
//! while a plugin runs, or the plugin's exit status would be lost; the
//! single-threaded event loop satisfies this because it is busy here.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::memfd::{MFdFlags, memfd_create};
use serde::Deserialize;

/// How much of stdout is accepted: a result is a few KiB; this bounds memory
/// if a plugin goes haywire.
const MAX_STDOUT: usize = 4 << 20;
/// How much of stderr is kept for error messages.
const MAX_STDERR: usize = 64 << 10;

/// A plugin run that failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The configuration could not be staged in a memfd.
    #[error("cannot stage the plugin configuration in a memfd: {0}")]
    Stdin(#[source] io::Error),
    /// The binary could not be started.
    #[error("cannot execute {}: {source}", path.display())]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Reading the plugin's output or waiting for it failed.
    #[error("{what} of {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The binary.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The plugin did not finish in time and was killed.
    #[error("{} did not finish within {}s and was killed", path.display(), after.as_secs_f32())]
    Timeout {
        /// The binary.
        path: PathBuf,
        /// The deadline it missed.
        after: Duration,
    },
    /// The plugin printed more than 4 MiB (`MAX_STDOUT`) on stdout.
    #[error("{} printed more than {MAX_STDOUT} bytes", path.display())]
    OutputTooLarge {
        /// The binary.
        path: PathBuf,
    },
    /// The plugin failed and said why, in the spec's error format.
    #[error("error code {code}: {msg}{}", details.as_deref().filter(|d| !d.is_empty()).map(|d| format!(" ({d})")).unwrap_or_default())]
    Plugin {
        /// The CNI error code (1-99 are the spec's, 100+ the plugin's).
        code: u32,
        /// The message.
        msg: String,
        /// Longer details, if any.
        details: Option<String>,
    },
    /// The plugin failed without a CNI error on stdout.
    #[error("{status}{}", if stderr.trim().is_empty() { String::new() } else { format!(": {}", stderr.trim()) })]
    Exit {
        /// How it exited.
        status: ExitStatus,
        /// What it wrote on stderr (truncated).
        stderr: String,
    },
}

/// The error document a failing plugin prints on stdout.
#[derive(Deserialize)]
struct ErrorDoc {
    code: u32,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    details: Option<String>,
}

/// Runs `binary` with `env` added to the inherited environment and `stdin`
/// as its standard input; returns its stdout when it exits 0.
pub fn run(
    binary: &Path,
    env: &[(&str, String)],
    stdin: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, ExecError> {
    let deadline = Instant::now() + timeout;
    let config = stage_stdin(stdin).map_err(ExecError::Stdin)?;
    let mut command = Command::new(binary);
    command
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::from(config))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .current_dir("/");
    let mut child = spawn(&mut command, binary, deadline)?;
    let outcome = drain(&mut child, binary, deadline).and_then(|(stdout, stderr)| {
        wait(&mut child, binary, deadline).map(|s| (s, stdout, stderr))
    });
    let (status, stdout, stderr) = match outcome {
        Ok(done) => done,
        Err(e) => {
            // Never leave the plugin behind: kill it by pid and reap it.
            let _ = child.kill();
            let _ = child.wait();
            return Err(match e {
                ExecError::Timeout { path, .. } => ExecError::Timeout {
                    path,
                    after: timeout,
                },
                other => other,
            });
        }
    };
    if status.success() {
        return Ok(stdout);
    }
    if let Ok(doc) = serde_json::from_slice::<ErrorDoc>(&stdout) {
        return Err(ExecError::Plugin {
            code: doc.code,
            msg: doc.msg,
            details: doc.details,
        });
    }
    let mut stderr = String::from_utf8_lossy(&stderr).into_owned();
    if stderr.trim().is_empty() {
        // Some plugins print plain text on stdout when they fail.
        stderr = String::from_utf8_lossy(&stdout).into_owned();
    }
    Err(ExecError::Exit { status, stderr })
}

/// Spawns, retrying while exec fails with ETXTBSY: a binary written just
/// now can still be open for writing in a child that another thread forked
/// and that has not reached its exec yet (the CLOEXEC fd lives until then).
/// This only happens in multi-threaded processes such as test harnesses.
fn spawn(command: &mut Command, binary: &Path, deadline: Instant) -> Result<Child, ExecError> {
    loop {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => {
                return other.map_err(|source| ExecError::Spawn {
                    path: binary.to_owned(),
                    source,
                });
            }
        }
    }
}

fn stage_stdin(bytes: &[u8]) -> io::Result<File> {
    let fd = memfd_create(c"cni-config", MFdFlags::MFD_CLOEXEC).map_err(io::Error::from)?;
    let mut file = File::from(fd);
    file.write_all(bytes)?;
    file.rewind()?;
    Ok(file)
}

/// Reads stdout and stderr until both are closed or the deadline passes.
fn drain(
    child: &mut Child,
    path: &Path,
    deadline: Instant,
) -> Result<(Vec<u8>, Vec<u8>), ExecError> {
    let io_err = |what, source| ExecError::Io {
        what,
        path: path.to_owned(),
        source,
    };
    let mut stdout_pipe = child.stdout.take();
    let mut stderr_pipe = child.stderr.take();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut buf = [0u8; 16 << 10];
    while stdout_pipe.is_some() || stderr_pipe.is_some() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ExecError::Timeout {
                path: path.to_owned(),
                after: Duration::ZERO,
            });
        }
        let wait = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let (out_ready, err_ready) = {
            let mut fds = Vec::with_capacity(2);
            if let Some(p) = &stdout_pipe {
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            }
            if let Some(p) = &stderr_pipe {
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, wait) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(io_err("poll on the output", e.into())),
            }
            let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            let mut it = fds.iter();
            let out = stdout_pipe.is_some() && it.next().is_some_and(ready);
            let err = stderr_pipe.is_some() && it.next().is_some_and(ready);
            (out, err)
        };
        if out_ready && let Some(pipe) = &mut stdout_pipe {
            // poll said readable (or hung up): this read does not block.
            let n = pipe
                .read(&mut buf)
                .map_err(|e| io_err("reading stdout", e))?;
            if n == 0 {
                stdout_pipe = None;
            } else if stdout.len() + n > MAX_STDOUT {
                return Err(ExecError::OutputTooLarge {
                    path: path.to_owned(),
                });
            } else {
                stdout.extend_from_slice(&buf[..n]);
            }
        }
        if err_ready && let Some(pipe) = &mut stderr_pipe {
            let n = pipe
                .read(&mut buf)
                .map_err(|e| io_err("reading stderr", e))?;
            if n == 0 {
                stderr_pipe = None;
            } else {
                let keep = n.min(MAX_STDERR.saturating_sub(stderr.len()));
                stderr.extend_from_slice(&buf[..keep]);
            }
        }
    }
    Ok((stdout, stderr))
}

/// Waits for the plugin to exit after it closed its output. Plugins exit
/// right after printing, so the first or second look normally finds it.
fn wait(child: &mut Child, path: &Path, deadline: Instant) -> Result<ExitStatus, ExecError> {
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => {}
            Err(source) => {
                return Err(ExecError::Io {
                    what: "waiting for the exit",
                    path: path.to_owned(),
                    source,
                });
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ExecError::Timeout {
                path: path.to_owned(),
                after: Duration::ZERO,
            });
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn passes_env_and_stdin_and_returns_stdout() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = script(dir.path(), "echo", r#"printf '%s|' "$CNI_COMMAND"; cat"#);
        let out = run(
            &plugin,
            &[("CNI_COMMAND", "ADD".into())],
            b"{\"x\":1}",
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(out, b"ADD|{\"x\":1}");
    }

    #[test]
    fn a_cni_error_document_becomes_a_plugin_error() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = script(
            dir.path(),
            "fail",
            r#"echo '{"cniVersion":"1.0.0","code":7,"msg":"bad subnet","details":"10.0.0.0/99"}'; echo noise >&2; exit 1"#,
        );
        let err = run(&plugin, &[], b"", Duration::from_secs(10)).unwrap_err();
        assert_eq!(err.to_string(), "error code 7: bad subnet (10.0.0.0/99)");
        let plain = script(dir.path(), "plain", "echo 'no such thing' >&2; exit 3");
        let err = run(&plain, &[], b"", Duration::from_secs(10)).unwrap_err();
        assert!(matches!(&err, ExecError::Exit { stderr, .. } if stderr.trim() == "no such thing"));
        assert!(err.to_string().contains("exit status: 3"), "{err}");
    }

    #[test]
    fn a_hung_plugin_is_killed_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        // The plugin records its pid, then hangs with its output open.
        let plugin = script(
            dir.path(),
            "hang",
            &format!("echo $$ > {}; exec sleep 60", pidfile.display()),
        );
        let started = Instant::now();
        let err = run(&plugin, &[], b"", Duration::from_millis(300)).unwrap_err();
        assert!(matches!(err, ExecError::Timeout { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        // Killed and reaped: the pid is gone, not a zombie.
        assert!(!Path::new(&format!("/proc/{}", pid.trim())).exists());
    }

    #[test]
    fn a_missing_binary_is_a_spawn_error() {
        let err = run(
            Path::new("/nonexistent/plugin"),
            &[],
            b"",
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(matches!(err, ExecError::Spawn { .. }), "{err:?}");
    }
}
