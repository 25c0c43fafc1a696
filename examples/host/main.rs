//! An article host: one article page with its comments and "Leave a Reply" form, served by a
//! small web app that talks to replyguard over gRPC with the site's key.
//!
//! ```sh
//! cargo run --release -- serve          # replyguard, in one terminal; in another:
//! eval "$(replyguard site add news.example.com --output env)"    # the site key, in the shell
//! REPLYGUARD_SITE_KEY=$REPLYGUARD_SITE_KEY cargo run --example host   # open http://127.0.0.1:3000
//! ```
//!
//! Settings, from the environment:
//! - `REPLYGUARD_SITE_KEY`: the site key (`rg_site_…`) that `replyguard site add` printed;
//! - `REPLYGUARD_ENDPOINT`: where replyguard listens (`http://127.0.0.1:50051`), as for `replyctl`;
//! - `HOST_LISTEN`: where this app listens (`127.0.0.1:3000`).
//!
//! Everything that matters to a host team is in `app/`; docs/HOSTS.md walks through it.

mod app;

use std::process::ExitCode;

/// The article this page shows: a host's stable key for it, never its title or URL, which may
/// change.
const ARTICLE: &str = "example/2026/12/leave-a-reply";

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let Ok(site_key) = std::env::var("REPLYGUARD_SITE_KEY") else {
        eprintln!(
            "host: REPLYGUARD_SITE_KEY is not set. Create a site, keep its key in the shell and \
             run the example with it (the README's Quickstart and \"The example host\"):\n\
             \n    eval \"$(replyguard site add news.example.com --output env)\"\
             \n    REPLYGUARD_SITE_KEY=$REPLYGUARD_SITE_KEY cargo run --example host"
        );
        return ExitCode::FAILURE;
    };
    let endpoint = std::env::var("REPLYGUARD_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:50051".to_owned());
    let listen = std::env::var("HOST_LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());

    let settings = match app::Settings::new(&endpoint, &site_key, ARTICLE) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("host: {err}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!(
                "host: cannot listen on {listen}: {err} (set HOST_LISTEN to another address)"
            );
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => eprintln!("host: open http://{addr}/ (replyguard at {endpoint})"),
        Err(err) => eprintln!("host: listening, but the address is unknown: {err}"),
    }
    match app::serve(listener, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("host: {err}");
            ExitCode::FAILURE
        }
    }
}
