//! `supervisor attach [-i] [-t] [-n NAMESPACE] POD [-c CONTAINER]`: its
//! flags, checked here (names), then `supervisor::attach::client` runs it.

use std::path::PathBuf;

use supervisor::attach::client::{self, AttachRequest};
use supervisor::paths::{DEFAULT_NAMESPACE, Layout, PodId, check_name};

/// `supervisor attach [-i] [-t] [-n NAMESPACE] POD [-c CONTAINER]`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: the container's exit code when it ends while attached; 128+N when \
                  signal N detached (the container runs on); 1 when the attach failed."
)]
pub struct AttachArgs {
    /// Pass stdin to the container (it must have `stdin: true`).
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Stdin is a TTY (the container must have `tty: true`; with -i and a
    /// terminal on stdin, that terminal goes raw).
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
}

/// Runs `supervisor attach`.
pub fn main(args: AttachArgs) -> anyhow::Result<i32> {
    let layout = Layout::resolve(args.state_dir.as_deref(), None);
    if let Some(container) = &args.container {
        check_name("container", container)?;
    }
    let request = AttachRequest {
        pod: PodId::new(&args.namespace, &args.pod)?,
        container: args.container,
        stdin: args.stdin,
        tty: args.tty,
    };
    match client::attach(&layout, &request) {
        Ok(code) => Ok(code),
        Err(error) => {
            eprintln!("supervisor: {error}");
            Ok(1)
        }
    }
}
