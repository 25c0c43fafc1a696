//! The operator's tools: the `replyguard` command line and what its commands do beside serving,
//! such as issuing tokens, rotating the key, seeding a site, importing one from another system, load-testing a server,
//! measuring the spam rules, fuzzing what a request reaches, and shell completions and
//! manual pages for both binaries.
//!
//! A tool may use any part of the library, the server included (`serve` starts it); nothing in
//! the library uses a tool.

pub mod bench;
pub mod cli;
pub mod export;
pub mod fuzz;
pub mod import;
pub mod listing;
pub mod rotation;
pub mod seed;
pub mod shell;
pub mod spam_eval;
