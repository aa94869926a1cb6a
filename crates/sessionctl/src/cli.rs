//! The command line: global flags, subcommands and the exit codes, as `--help` shows them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// What `--help` prints after the commands: the contract scripts rely on.
const EXIT_CODES: &str = "\
Exit codes:
  0  success (count, show or destroy of a live session, purge done or --dry-run,
     user list with sessions, user revoke that ended at least one)
  1  no such session (show, destroy): never existed, expired or already ended;
     user list: the user has no live session; user revoke: nothing was ended
     (no live session, or no session of the user with that handle)
  2  usage or configuration error: bad arguments, a malformed id, a missing or
     invalid config file, an unknown pool
  3  Redis unreachable: connection refused or lost, no answer within the timeout
  4  Redis answered with an error: wrong password, missing ACL right, Cluster down
  5  purge deleted nothing: declined at the prompt, or not on a terminal and no --yes

With --json, stdout holds exactly one JSON object, also for errors
({\"error\": ..., \"kind\": ..., \"exit_code\": ...}).";

/// Administer the sessions that redis-sessions keeps in Redis, with the settings of config.ini.
#[derive(Debug, Parser)]
#[command(name = "sessionctl", version, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    /// The configuration file.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "config.ini",
        global = true,
        help = "The configuration file (the [session] and [redis] sections of the application's)"
    )]
    pub(crate) config: PathBuf,

    /// Print one JSON object on stdout instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// The pool to work on.
    #[arg(
        long,
        value_name = "NAME",
        global = true,
        help = "The [redis] pool to work on (default: [session] redis_connection_pool)"
    )]
    pub(crate) pool: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Count live sessions (hashes of the session layout; tombstones and locks are not counted),
    /// by SCAN on every master.
    Count,
    /// Show one session: times, TTL and every value (MessagePack shown as JSON).
    Show {
        /// The cookie value (43 characters) or the storage id (22 characters, as in the Redis key).
        /// Either may start with `-` (base64url), so it is never taken for an option.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// End one session for good: a tombstone stops any late save from bringing it back.
    Destroy {
        /// The cookie value (43 characters) or the storage id (22 characters, as in the Redis key).
        /// Either may start with `-` (base64url), so it is never taken for an option.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Delete every session key of the pool's prefix: sessions, tombstones and locks.
    Purge {
        /// Only count what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask for confirmation (required when stdin is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// A user's sessions (those bound at login): list them, or end them.
    User {
        /// What to do with the user's sessions.
        #[command(subcommand)]
        command: UserCommand,
    },
}

/// The subcommands of `user`.
#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// List the user's live sessions: handle, created, last seen, description.
    List {
        /// The user id the application bound the sessions to (may start with `-`).
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// End all the user's sessions (or the one of --handle), each with a tombstone as a logout.
    Revoke {
        /// The user id the application bound the sessions to (may start with `-`).
        #[arg(allow_hyphen_values = true)]
        user: String,
        /// End only this session (a handle shown by `user list`; may start with `-`).
        #[arg(long, value_name = "HANDLE", allow_hyphen_values = true)]
        handle: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_before_or_after_the_subcommand() {
        let cli = Cli::try_parse_from(["sessionctl", "--json", "--pool", "p", "purge", "-y"]);
        assert!(matches!(
            cli.map(|c| (c.json, c.pool, c.command)),
            Ok((true, Some(p), Command::Purge { yes: true, dry_run: false })) if p == "p"
        ));
        assert!(Cli::try_parse_from(["sessionctl", "show"]).is_err());
    }

    #[test]
    fn user_commands_take_a_user_and_an_optional_handle() {
        let cli = Cli::try_parse_from(["sessionctl", "user", "revoke", "alice", "--handle", "h"]);
        assert!(matches!(
            cli.map(|c| c.command),
            Ok(Command::User { command: UserCommand::Revoke { user, handle: Some(h) } })
                if user == "alice" && h == "h"
        ));
        assert!(Cli::try_parse_from(["sessionctl", "user", "list"]).is_err());
        assert!(Cli::try_parse_from(["sessionctl", "user"]).is_err());
    }

    #[test]
    fn ids_users_and_handles_starting_with_a_hyphen_are_values() {
        // base64url ids, storage ids and handles start with `-` one time in 64.
        let show = Cli::try_parse_from(["sessionctl", "--json", "show", "-lAbC"]);
        assert!(matches!(show.map(|c| c.command), Ok(Command::Show { id }) if id == "-lAbC"));
        let destroy = Cli::try_parse_from(["sessionctl", "destroy", "-y"]);
        assert!(matches!(destroy.map(|c| c.command), Ok(Command::Destroy { id }) if id == "-y"));
        let revoke =
            Cli::try_parse_from(["sessionctl", "user", "revoke", "-bob", "--handle", "-h1"]);
        assert!(matches!(
            revoke.map(|c| c.command),
            Ok(Command::User { command: UserCommand::Revoke { user, handle: Some(h) } })
                if user == "-bob" && h == "-h1"
        ));
    }
}
