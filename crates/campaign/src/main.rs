//! The campaign's command line: `campaign --topology cluster --faults all --duration 600`
//! runs a campaign (see the crate's README); `campaign serve` is one app instance, started by
//! the campaign itself.

use clap::{Args, Parser, Subcommand};

use campaign::run::{Options, run};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A randomized fault campaign against the session library, with a history checker.
///
/// Exit status: 0 no anomaly, 1 anomalies found (the history is written), 2 the campaign
/// itself could not run (Redis or the apps would not start).
#[derive(Parser)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    options: Options,
}

#[derive(Subcommand)]
enum Command {
    /// Serve one app instance (used by the campaign for its instances).
    Serve(Serve),
}

#[derive(Args)]
struct Serve {
    /// The configuration file.
    #[arg(long)]
    config: String,
    /// The address to listen on.
    #[arg(long)]
    listen: String,
    /// The file the lock's holds are appended to.
    #[arg(long)]
    holds: String,
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Some(Command::Serve(serve)) => {
            // Warnings of the library (why a request got a 503) go to the instance's log file.
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "warn".into()),
                )
                .init();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let result = runtime.map_err(|e| e.to_string()).and_then(|rt| {
                rt.block_on(campaign::app::serve(
                    &serve.config,
                    &serve.listen,
                    &serve.holds,
                ))
                .map_err(|e| e.to_string())
            });
            match result {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("campaign serve: {e}");
                    2
                }
            }
        }
        None => run(&cli.options),
    };
    std::process::exit(code);
}
