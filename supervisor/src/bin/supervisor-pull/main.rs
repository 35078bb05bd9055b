//! `supervisor-pull`: pulls one image into the store, in a process of its
//! own so that the registry client (oci-client, tokio, rustls) is never
//! loaded into a supervisor. The flags (the contract with `supervisor run`
//! and `supervisor image pull`), the auth files and hosts directory read
//! into pull options, the progress style, the result file, and SIGTERM or
//! SIGINT ending the pull (exit 1; the store leaves nothing half-written).
//! Pulling itself is `image::pull`'s.

mod result_file;

use clap::Parser;
use image::progress::{ProgressPrinter, ProgressStyle};
use image::pull::{PullOptions, pull_with_policy};
use image::reference::{ImageReference, PullPolicy};
use image::registry_auth::RegistryAuths;
use image::registry_hosts;
use image::store::{self, Store};
use nix::sys::signal::{SigSet, Signal};
use result_file::{FailureReason, PullResult};
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Mutex;

/// Pull an image into the supervisor's image store.
#[derive(Parser)]
#[command(name = "supervisor-pull", version)]
struct Args {
    /// Image store root (default $SUPERVISOR_IMAGE_DIR, else /var/lib/supervisor/images).
    #[arg(long, value_name = "DIR")]
    image_dir: Option<PathBuf>,
    /// A docker config.json / auth.json to take credentials from (repeatable, tried in order).
    #[arg(long, value_name = "FILE")]
    registry_auth_file: Vec<PathBuf>,
    /// containerd hosts.toml directory (default $SUPERVISOR_REGISTRY_CONFIG_DIR, else /etc/supervisor/registries.d).
    #[arg(long, value_name = "DIR")]
    registry_config_dir: Option<PathBuf>,
    /// Always: resolve the digest and reuse a stored copy of it; IfNotPresent: a stored REF is used as is.
    #[arg(long, value_enum, default_value = "Always")]
    policy: Policy,
    /// Progress on standard error: auto (tty when it is a terminal, else plain), tty, plain or none.
    #[arg(long, value_enum, default_value = "auto")]
    progress: Progress,
    /// Write the outcome here as JSON (atomically).
    #[arg(long, value_name = "FILE")]
    result: Option<PathBuf>,
    /// The image reference.
    reference: String,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Policy {
    #[value(name = "Always")]
    Always,
    #[value(name = "IfNotPresent")]
    IfNotPresent,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Progress {
    Auto,
    Tty,
    Plain,
    None,
}

/// Set once the outcome is being written: a signal then, or a pull
/// ending then, does not write a second one.
static FINISHING: Mutex<bool> = Mutex::new(false);

fn main() {
    let args = Args::parse();
    // Blocked here, before any thread starts, so every thread inherits the
    // mask and the signals wait for this thread's sigwait.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    if let Err(error) = signals.thread_block() {
        eprintln!("supervisor-pull: block SIGTERM/SIGINT: {error}");
        std::process::exit(1);
    }
    let result_path = args.result.clone();
    let reference = args.reference.clone();
    let spawned = std::thread::Builder::new()
        .name("pull".into())
        .spawn(move || {
            let outcome = run(&args);
            finish(args.result.as_deref(), outcome);
        });
    if let Err(error) = spawned {
        finish(
            result_path.as_deref(),
            failed(
                FailureReason::ErrImagePull,
                format!("pulling {reference}: {error}"),
            ),
        );
    }
    let signal = signals.wait().map(|s| s.as_str()).unwrap_or("a signal");
    finish(
        result_path.as_deref(),
        failed(
            FailureReason::ErrImagePull,
            format!("pulling {reference}: stopped by {signal}"),
        ),
    );
}

/// How the pull ended: the result and the exit code.
struct Outcome {
    result: PullResult,
    code: i32,
}

fn failed(reason: FailureReason, message: String) -> Outcome {
    Outcome {
        result: PullResult::failure(reason, &message),
        code: 1,
    }
}

/// Writes the outcome (once), says a failure on stderr, and exits.
fn finish(result_path: Option<&std::path::Path>, outcome: Outcome) {
    let mut finishing = FINISHING.lock().unwrap_or_else(|e| e.into_inner());
    if *finishing {
        // The other thread is exiting.
        drop(finishing);
        loop {
            std::thread::park();
        }
    }
    *finishing = true;
    if let PullResult::Failure { error } = &outcome.result {
        eprintln!("supervisor-pull: {}", error.message);
    }
    let mut code = outcome.code;
    if let Some(path) = result_path
        && let Err(error) = outcome.result.write(path)
    {
        eprintln!("supervisor-pull: {error:#}");
        code = 1;
    }
    std::process::exit(code);
}

/// Pulls as the flags say.
fn run(args: &Args) -> Outcome {
    let reference = match ImageReference::parse(&args.reference) {
        Ok(reference) => reference,
        Err(error) => return failed(FailureReason::InvalidImageName, error.to_string()),
    };
    let image = reference.to_string();
    let pulled = (|| {
        let store = Store::open(&store::resolve_root(args.image_dir.as_deref()))?;
        let auths = RegistryAuths::load(&args.registry_auth_file)?;
        let config_dir = registry_hosts::resolve_config_dir(args.registry_config_dir.as_deref());
        let endpoints = registry_hosts::endpoints(&config_dir, reference.registry())?;
        let style = match args.progress {
            Progress::Auto if std::io::stderr().is_terminal() => ProgressStyle::Tty,
            Progress::Auto | Progress::Plain => ProgressStyle::Plain,
            Progress::Tty => ProgressStyle::Tty,
            Progress::None => ProgressStyle::None,
        };
        let printer = ProgressPrinter::new(style, Box::new(std::io::stderr()));
        let policy = match args.policy {
            Policy::Always => PullPolicy::Always,
            Policy::IfNotPresent => PullPolicy::IfNotPresent,
        };
        printer.start(&image);
        let options = PullOptions {
            endpoints,
            auths,
            progress: &printer,
        };
        let pulled = pull_with_policy(&store, &reference, policy, &options)?;
        printer.finish(&image, &pulled.record, pulled.downloaded);
        anyhow::Ok(pulled.record)
    })();
    match pulled {
        Ok(record) => Outcome {
            result: PullResult::Success {
                image,
                id: record.id.to_string(),
                image_ref: record.image_ref(),
            },
            code: 0,
        },
        Err(error) if error.is::<image::pull::PullError>() => {
            failed(FailureReason::ErrImagePull, format!("{error:#}"))
        }
        Err(error) => failed(
            FailureReason::ErrImagePull,
            format!("pulling {image}: {error:#}"),
        ),
    }
}
