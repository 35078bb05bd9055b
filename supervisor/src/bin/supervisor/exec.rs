//! `supervisor exec [-i] [-t] [-n NAMESPACE] POD [-c CONTAINER] -- CMD...`:
//! its flags, checked here (names), then `supervisor::exec` runs it.

use std::path::PathBuf;

use supervisor::exec::{self, ExecRequest};
use supervisor::paths::{DEFAULT_NAMESPACE, Layout, PodId, check_name};

/// `supervisor exec [-i] [-t] [-n NAMESPACE] POD [-c CONTAINER] -- CMD...`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Pass stdin to the command.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Give the command a terminal (with -i, when stdin is a terminal).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The container (default: the pod's
    /// kubectl.kubernetes.io/default-container annotation, else its first
    /// container).
    #[arg(short = 'c', long, value_name = "CONTAINER")]
    pub container: Option<String>,
    /// The pod's namespace.
    #[arg(short = 'n', long, value_name = "NAMESPACE", default_value = DEFAULT_NAMESPACE)]
    pub namespace: String,
    /// State root (default $SUPERVISOR_STATE_DIR, else /run/supervisor).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The pod.
    pub pod: String,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Runs `supervisor exec`; exits with the command's status, or 1 when it
/// could not run.
pub fn main(args: ExecArgs) -> anyhow::Result<i32> {
    let layout = Layout::resolve(args.state_dir.as_deref(), None);
    if let Some(container) = &args.container {
        check_name("container", container)?;
    }
    let request = ExecRequest {
        pod: PodId::new(&args.namespace, &args.pod)?,
        container: args.container,
        argv: args.command,
        stdin: args.stdin,
        tty: args.tty,
    };
    match exec::exec(&layout, &request) {
        Ok(code) => Ok(code),
        // One line: each error's text already holds its cause.
        Err(error) => {
            eprintln!("supervisor: {error}");
            Ok(1)
        }
    }
}
