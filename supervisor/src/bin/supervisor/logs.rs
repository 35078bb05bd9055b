//! `supervisor logs [-f] [-p] [-n NAMESPACE] POD CONTAINER`: its flags, and
//! where the log goes.

use std::io;
use std::path::PathBuf;

use supervisor::logs::{self, LogRequest, ShowError};
use supervisor::paths::{DEFAULT_NAMESPACE, Layout, PodId};

/// `supervisor logs [-f] [-p] [-n NAMESPACE] POD CONTAINER`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Follow the log (across rotations and restarts) until the pod or its
    /// supervisor is gone.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// The previous instance of the container.
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Log root (default $SUPERVISOR_LOG_DIR, else /var/log/pods).
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// State root, to see whether the pod still runs when following
    /// (default $SUPERVISOR_STATE_DIR, else /run/supervisor).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The pod's namespace.
    #[arg(short = 'n', long, value_name = "NAMESPACE", default_value = DEFAULT_NAMESPACE)]
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// The container.
    pub container: String,
}

/// Runs `supervisor logs`.
pub fn main(args: LogsArgs) -> anyhow::Result<i32> {
    let layout = Layout::resolve(args.state_dir.as_deref(), args.log_dir.as_deref());
    let request = LogRequest {
        follow: args.follow,
        previous: args.previous,
        pod: PodId::new(&args.namespace, &args.pod)?,
        container: args.container,
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match logs::show(&layout, &request, &mut out) {
        Ok(()) => Ok(0),
        // `supervisor logs | head` is not an error.
        Err(ShowError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(0),
        Err(ShowError::Output(e)) => Err(e.into()),
        Err(ShowError::Log(e)) => Err(e.into()),
    }
}
