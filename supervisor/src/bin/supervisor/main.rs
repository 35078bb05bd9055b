//! `supervisor`: the command line, one file per subcommand (its flags and
//! the step from flags to the library's options). Errors become a message
//! and an exit code here, at the edge; everything else lives in the
//! library.

mod attach;
mod exec;
mod image;
mod init;
mod logs;
mod run;
mod status;
mod validate;
mod volume;

use clap::{Parser, Subcommand};

/// Run a Kubernetes pod on a bare host, or one program under a PID 1.
#[derive(Parser)]
#[command(name = "supervisor", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pod from a Kubernetes manifest until SIGTERM or SIGINT.
    Run(Box<run::RunArgs>),
    /// Read and check manifests as `run` does, and start nothing.
    Validate(validate::ValidateArgs),
    /// Run CMD as PID 1 (or child subreaper): forward signals, reap zombies.
    Init(init::InitArgs),
    /// Show pods: a kubectl-like table, or the Pod object as JSON or YAML.
    Status(status::StatusArgs),
    /// Print a container's log (`-p` the previous instance, `-f` follow).
    Logs(logs::LogsArgs),
    /// Run a command in a running container, with the container's rights.
    Exec(exec::ExecArgs),
    /// Attach to a running container's output (and with -i its stdin).
    Attach(attach::AttachArgs),
    /// Container images: pull, load, import, ls, rm, prune.
    Image(image::ImageArgs),
    /// The persistentVolumeClaims' volumes: ls, rm.
    Volume(volume::VolumeArgs),
}

fn main() {
    let cli = Cli::parse();
    let result: anyhow::Result<i32> = match cli.command {
        Command::Run(args) => run::main(*args),
        Command::Validate(args) => validate::main(args),
        Command::Init(args) => init::main(args),
        Command::Status(args) => status::main(args),
        Command::Logs(args) => logs::main(args),
        Command::Exec(args) => exec::main(args),
        Command::Attach(args) => attach::main(args),
        Command::Image(args) => image::main(args),
        Command::Volume(args) => volume::main(args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("supervisor: {error:#}");
            std::process::exit(1);
        }
    }
}
