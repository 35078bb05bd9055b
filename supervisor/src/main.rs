//! `supervisor`: the command line. Errors become a message and an exit code
//! here, at the edge; everything else lives in the library.

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
    // Subcommands: each module adds `Name(module::NameArgs)` here and an arm
    // in `main` calling `module::main(args)`.
    /// Run CMD as PID 1 (or child subreaper): forward signals, reap zombies.
    Init(supervisor::init::InitArgs),
}

fn main() {
    let cli = Cli::parse();
    let result: anyhow::Result<i32> = match cli.command {
        Command::Init(args) => supervisor::init::main(args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("supervisor: {error:#}");
            std::process::exit(1);
        }
    }
}
