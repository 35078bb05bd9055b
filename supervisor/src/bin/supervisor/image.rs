//! `supervisor image ...`: runs the `supervisor-image` binary with the same
//! arguments (it replaces this process). The image commands live there so
//! that their archive, layer and registry code is never loaded into a
//! supervisor: linked here it would cost every supervisor process its
//! relocations (about 180 kB of Pss measured with `supervisor init`).

use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;

/// `supervisor image ARGS...` (see `supervisor image --help`).
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct ImageArgs {
    /// pull, load, import, ls, rm, prune and their flags.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<OsString>,
}

/// Replaces this process with `supervisor-image ARGS...`.
pub fn main(args: ImageArgs) -> anyhow::Result<i32> {
    let program = supervisor::host::find_helper("supervisor-image")?;
    let error = std::process::Command::new(&program).args(&args.args).exec();
    anyhow::bail!("run {}: {error}", program.display())
}
