//! `replyguard`: the server and the operator's tool.

use std::process::ExitCode;

use replyguard::tools::cli::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    run(Cli::parse_args()).await
}
