//! `replyctl`, the moderators' command-line client of replyguard.
//!
//! Parses the command line, runs the command, and turns the outcome into an
//! exit status: 0 on success, 1 when the work failed, 2 for a usage error
//! (clap's, and the few argument checks clap cannot express).
//! Failures are reported as one line on stderr; the token is never printed.

mod bulk;
mod cli;
mod client;
mod commands;
mod error;
mod notices;
mod output;
mod review;
mod webhooks;

use std::{
    io::{self, IsTerminal},
    process::ExitCode,
};

use clap::{CommandFactory, Parser, error::ErrorKind};

use crate::{
    cli::{Cli, OutputFormat},
    error::CliError,
};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = cli.global.output.unwrap_or_else(|| {
        if io::stdout().is_terminal() {
            OutputFormat::Table
        } else {
            OutputFormat::Json
        }
    });

    match commands::run(cli.global, format, cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is_broken_pipe() => ExitCode::SUCCESS,
        Err(CliError::PolicyValue(subcommand, message)) => {
            policy_value_error(subcommand, &message).exit()
        }
        Err(error @ CliError::NothingChosen) => Cli::command()
            .error(ErrorKind::MissingRequiredArgument, error)
            .exit(),
        Err(error @ CliError::NoToken) => Cli::command()
            .error(ErrorKind::MissingRequiredArgument, error)
            .exit(),
        Err(error @ CliError::BadToken) => {
            Cli::command().error(ErrorKind::InvalidValue, error).exit()
        }
        Err(error) => {
            eprintln!("replyctl: {}", error.report());
            ExitCode::FAILURE
        }
    }
}

/// A bad `policy set` or `policy try` value, reported as the argument parser reports its own
/// errors: with the usage of that subcommand and exit status 2.
fn policy_value_error(subcommand: &str, message: &str) -> clap::Error {
    let mut command = Cli::command();
    command.build();
    match command
        .find_subcommand_mut("policy")
        .and_then(|policy| policy.find_subcommand_mut(subcommand))
    {
        Some(set) => set.error(ErrorKind::ValueValidation, message),
        None => command.error(ErrorKind::ValueValidation, message),
    }
}
