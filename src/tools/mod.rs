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

use std::sync::Arc;

use crate::{
    config::{DatabaseArgs, SecretKeyArgs},
    deployment::{check_key, secret_key_for},
    privacy::Vault,
    store::{self, Site, Store},
};

/// The store, the deployment's checked key and the named site, for a command that writes a
/// site's replies (`seed`, `import`); each failure in words the operator can act on.
async fn open_site(
    database: &DatabaseArgs,
    key: &SecretKeyArgs,
    site: &str,
) -> Result<(Arc<dyn Store>, Vault, Site), String> {
    let key = secret_key_for(key, &database.url).map_err(|e| e.to_string())?;
    let store = store::open(&database.url)
        .await
        .map_err(|e| e.to_string())?;
    let vault = check_key(store.as_ref(), &key)
        .await
        .map_err(|e| e.to_string())?;
    let site = find_site(store.as_ref(), site).await?;
    Ok((store, vault, site))
}

/// The site named `name`, or what to do when there is none.
async fn find_site(store: &dyn Store, name: &str) -> Result<Site, String> {
    store
        .site_by_name(name)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no site {name:?}; create it first with `replyguard site add`"))
}
