//! `basket`: runs the demo shop (see the `basket` library crate for what it shows).
//!
//! ```text
//! cargo run --release --bin basket -- --config config.ini --listen 127.0.0.1:8080
//! ```
//!
//! The session library's metrics are on `GET /metrics` (Prometheus text format); its tracing
//! spans are at `DEBUG` level (`RUST_LOG=redis_sessions=debug`).

use std::path::Path;

use basket::redis_setup;
use redis_sessions::{Config, SessionManager};

const USAGE: &str = "usage: basket [--config PATH] [--listen ADDR]  \
    (defaults: --config config.ini --listen 127.0.0.1:8080; \
    through cargo: cargo run --release --bin basket -- --listen 127.0.0.1:8081)";

/// The settings used when the default `config.ini` is absent: the library's defaults, but the
/// demo's own key prefix, so its sessions never mix with an application's `dm:` keys.
const BUILT_IN_CONFIG: &str = "[redis]\ndefault[prefix] = basket:\n";

/// Command-line options.
struct Args {
    config: String,
    config_given: bool,
    listen: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        config: "config.ini".into(),
        config_given: false,
        listen: "127.0.0.1:8080".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value; {USAGE}"))
        };
        match flag.as_str() {
            "--config" => {
                args.config = value()?;
                args.config_given = true;
            }
            "--listen" => args.listen = value()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}; {USAGE}")),
        }
    }
    Ok(args)
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    if let Err(error) = run() {
        eprintln!("basket demo: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args = parse_args()?;
    let mut config = load_config(&args)?;
    // Kept until the end of `run`: dropping it stops the private Redis, if one was started.
    let private_redis = redis_setup::ensure_redis(&mut config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Before the manager exists, so that every session operation is counted.
    let metrics = basket::metrics::install()?;
    runtime.block_on(async {
        let manager = SessionManager::connect(config).await?;
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| {
                format!(
                    "cannot listen on {}: {e} (pass another address: `--listen 127.0.0.1:8081`, \
                     or through cargo `cargo run --release --bin basket -- --listen 127.0.0.1:8081`)",
                    args.listen
                )
            })?;
        println!(
            "basket demo: open http://{}/ in your browser (Ctrl-C stops it)",
            listener.local_addr()?
        );
        tokio::select! {
            served = axum::serve(listener, basket::app(manager).merge(basket::metrics::routes(metrics))) => served?,
            () = shutdown_signal() => println!("basket demo: stopping"),
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    })?;
    drop(private_redis);
    Ok(())
}

/// The configuration file, or the built-in defaults when the default `config.ini` is absent
/// (a file named with `--config` must exist).
fn load_config(args: &Args) -> Result<Config, redis_sessions::ConfigError> {
    if !args.config_given && !Path::new(&args.config).exists() {
        println!(
            "basket demo: no config.ini here; using the built-in defaults (Redis at \
             127.0.0.1:6379, database 0, key prefix basket:)"
        );
        return Config::from_ini_str(BUILT_IN_CONFIG);
    }
    Config::from_ini_file(&args.config)
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
