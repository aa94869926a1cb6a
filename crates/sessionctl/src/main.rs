//! `sessionctl`: the operator's view of the sessions redis-sessions keeps in Redis (issue 9):
//! count them, show one, destroy one for good, purge them all, list or revoke a user's sessions.
//! It reads the application's own `config.ini` through the library's `Config`, so it always
//! looks where the application writes.
//!
//! Each command returns an [`Outcome`] (exit code, text, JSON) or a [`CtlError`]; this file only
//! parses the command line, loads the configuration and prints. Exit codes: see `cli.rs`.

mod cli;
mod error;
mod nodes;
mod scan;
mod session;
mod sweep;
mod user;
mod value;

use std::process::ExitCode;

use clap::Parser as _;
use redis_sessions::{Config, RedisPoolConfig, SessionFormat};
use serde_json::json;

use crate::cli::{Cli, Command, UserCommand};
use crate::error::{CtlError, CtlResult};

/// What a command needs: the configuration and the pool it works on.
pub(crate) struct Context {
    /// The whole configuration (`destroy` needs the `[session]` settings).
    pub(crate) config: Config,
    /// The pool's name.
    pub(crate) pool_name: String,
    /// The pool's settings.
    pub(crate) pool: RedisPoolConfig,
}

/// What a command reports: its exit code and the same result as text and as JSON.
pub(crate) struct Outcome {
    /// Exit code (see `error::code`).
    pub(crate) code: u8,
    /// For people.
    pub(crate) text: String,
    /// For scripts (`--json`).
    pub(crate) json: serde_json::Value,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(outcome) => {
            if json {
                println!("{}", outcome.json);
            } else {
                println!("{}", outcome.text);
            }
            ExitCode::from(outcome.code)
        }
        Err(error) => {
            if json {
                let report = json!({
                    "error": error.to_string(),
                    "kind": error.kind(),
                    "exit_code": error.code(),
                });
                println!("{report}");
            } else {
                eprintln!("sessionctl: {error}");
            }
            error.exit_code()
        }
    }
}

fn run(cli: Cli) -> CtlResult<Outcome> {
    let ctx = context(&cli)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CtlError::Usage(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        match &cli.command {
            Command::Count => sweep::count(&ctx).await,
            Command::Show { id } => session::show(&ctx, id).await,
            Command::Destroy { id } => session::destroy(&ctx, id).await,
            Command::Purge { dry_run, yes } => sweep::purge(&ctx, *dry_run, *yes).await,
            Command::User { command } => match command {
                UserCommand::List { user } => user::list(&ctx, user).await,
                UserCommand::Revoke { user, handle } => {
                    user::revoke(&ctx, user, handle.as_deref()).await
                }
            },
        }
    })
}

/// Loads and checks `--config`, and picks `--pool` or the sessions' pool.
fn context(cli: &Cli) -> CtlResult<Context> {
    let config = Config::from_ini_file(&cli.config).map_err(|e| CtlError::Usage(e.to_string()))?;
    if config.session.format != SessionFormat::Native {
        return Err(CtlError::Usage(format!(
            "{} sets [session] format = resonance (the PHP framework's layout): sessionctl reads \
             the native layout only",
            cli.config.display()
        )));
    }
    let pool_name = cli
        .pool
        .clone()
        .unwrap_or_else(|| config.session.redis_connection_pool.clone());
    let pool = config.pools.get(&pool_name).cloned().ok_or_else(|| {
        let configured: Vec<&str> = config.pools.keys().map(String::as_str).collect();
        CtlError::Usage(format!(
            "{} defines no pool {pool_name:?} in [redis] (configured pools: {})",
            cli.config.display(),
            configured.join(", ")
        ))
    })?;
    // The sessions' pool was checked with the file; another `--pool` is checked here.
    (pool.check_native_layout(&pool_name)).map_err(|e| CtlError::Usage(e.to_string()))?;
    Ok(Context {
        config,
        pool_name,
        pool,
    })
}
