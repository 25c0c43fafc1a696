//! `replyguard`: the server and the operator's tool.

use std::process::ExitCode;

use clap::Parser;
use replyguard::operator::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    run(Cli::parse()).await
}
