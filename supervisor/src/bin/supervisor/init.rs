//! `supervisor init [OPTIONS] -- CMD [ARGS...]`: its flags, and the step
//! from flags to [`supervisor::init::InitOptions`]. The flags are checked
//! here (clap, then the value parsers below); the init itself then runs as
//! `supervisor-init`, exec'd with them in numeric form, or in this process
//! when that binary is not beside this one ([`supervisor::init::start`]).

use std::ffi::OsString;
use std::time::Duration;

use container::signal;
use supervisor::init::InitOptions;

/// Run one program as PID 1 (or as a child subreaper): forward signals,
/// reap zombies, and clean up what it leaves behind.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: the command's, or 128+N when signal N killed it; 127 when the \
                  command is not found, 126 when it cannot be executed."
)]
pub struct InitArgs {
    /// Forward signals to the child's whole process group, not only to the
    /// child.
    #[arg(short = 'g', long = "pgroup")]
    pub process_group: bool,

    /// Start the child as a session leader (it takes the terminal as its
    /// controlling tty) instead of only in its own process group.
    #[arg(short = 's', long)]
    pub setsid: bool,

    /// Forward signal FROM as signal TO (numbers or names, e.g. 15:3 or
    /// TERM:QUIT); TO = 0 drops FROM. Repeatable.
    #[arg(short = 'r', long = "rewrite", value_name = "FROM:TO", value_parser = parse_rewrite)]
    pub rewrite: Vec<(i32, i32)>,

    /// Seconds the leftovers of the child (its process group, and every
    /// other descendant) get between SIGTERM and SIGKILL once the child has
    /// exited; 0 kills them at once. Fractions allowed.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    pub grace_period: Duration,

    /// Say what happens on stderr (-v: lifecycle, -vv: every signal).
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// The program to run and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

fn parse_rewrite(text: &str) -> Result<(i32, i32), String> {
    let (from, to) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?}: expected FROM:TO, e.g. 15:3"))?;
    let from = signal::parse(from)
        .ok_or_else(|| format!("{text:?}: {from:?} is not a signal (1..=64 or a name)"))?;
    if from == libc::SIGKILL || from == libc::SIGSTOP {
        return Err(format!(
            "{text:?}: {} cannot be caught, so it cannot be rewritten",
            signal::name(from)
        ));
    }
    let to = if to.trim() == "0" {
        0
    } else {
        signal::parse(to)
            .ok_or_else(|| format!("{text:?}: {to:?} is not a signal (0..=64 or a name)"))?
    };
    Ok((from, to))
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?}: must be 0 or more seconds"))
}

/// Runs `supervisor init`.
pub fn main(args: InitArgs) -> anyhow::Result<i32> {
    supervisor::init::start(InitOptions {
        process_group: args.process_group,
        setsid: args.setsid,
        rewrite: args.rewrite,
        grace_period: args.grace_period,
        verbose: args.verbose,
        command: args.command,
    })
}
