//! `strata-migrate`: the command line over the library's public API. Parsing (`args`), the
//! subcommands (`commands`, one function each), what they start from (`setup`), output
//! (`output`), the terminal (`terminal`), errors and hints (`error`); the exit codes are the
//! crate's small library (`strata_migrate_cli::exit`). The library knows nothing of them.

mod args;
mod commands;
mod error;
mod new;
mod output;
mod setup;
mod terminal;

use std::process::ExitCode;

use clap::Parser;
use strata_migrate_cli::exit;

use crate::args::{Cli, Command};
use crate::error::{CliError, Context};

/// Parses the arguments, runs the command, and returns its exit code.
fn main() -> ExitCode {
    let cli = Cli::parse();
    terminal::color(cli.global.color);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(exit::MIGRATION);
        }
    };
    let context = Context::of(&cli.command);
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        // What an interruption left was said where it happened.
        Err(e @ CliError::Interrupted(_)) => ExitCode::from(e.exit_code()),
        Err(e) => {
            eprintln!("error: {}", e.explain(&context));
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs a parsed command line: the one dispatch, to the subcommand's function. Returns the exit
/// code of a command that completed.
async fn run(cli: Cli) -> Result<u8, CliError> {
    let Cli { global, command } = cli;
    let global = &global;
    match command {
        Command::Up(args) => commands::up(global, args).await,
        Command::Down { to, steps, dry_run } => commands::down(global, to, steps, dry_run).await,
        Command::Redo { count } => commands::redo(global, count).await,
        Command::Status => commands::status(global).await,
        Command::Check { fail_on } => commands::check(global, fail_on).await,
        Command::Baseline { to } => commands::baseline(global, to).await,
        Command::Repair { mark_applied } => commands::repair(global, mark_applied).await,
        Command::Schema { check } => commands::schema(global, check.as_deref()).await,
        Command::Verify { require_down } => commands::verify(global, require_down).await,
        Command::Diff => commands::diff(global).await,
        Command::Generate(args) => commands::generate(global, args).await,
        Command::Squash { through, name, no_database } => {
            commands::squash(global, through, name, no_database).await
        }
        Command::Lint(args) => commands::lint(global, args).await,
        Command::Sum { check } => commands::sum(global, check.as_deref()).await,
        Command::Config { get } => commands::config(global, get.as_deref()),
        Command::Completions { shell } => commands::completions(shell),
        Command::Man => commands::man(),
        Command::New { name, no_transaction, dir } => {
            commands::new(global, &name, no_transaction, &dir)
        }
    }
}
