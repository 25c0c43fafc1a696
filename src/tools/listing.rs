//! `replyguard site list` and `replyguard token list`: what the database holds, for the
//! operator, as a table or JSON. Tokens show their prefixes, never the tokens, which are not
//! stored.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde_json::json;

use crate::{
    domain::Scope,
    ids::SiteId,
    store::{Credential, Site, Store},
};

/// How a listing is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ListOutput {
    Table,
    Json,
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    table
}

/// Every site, by name.
pub async fn sites(store: &dyn Store, output: ListOutput) -> Result<String, String> {
    let sites = store.sites().await.map_err(|e| e.to_string())?;
    Ok(match output {
        ListOutput::Json => json!({
            "sites": sites.iter().map(|site| json!({
                "name": site.name,
                "id": site.id.to_string(),
                "mode": site.policy.mode.as_str(),
                "created_at": time(site.created_at),
            })).collect::<Vec<_>>()
        })
        .to_string(),
        ListOutput::Table if sites.is_empty() => {
            "No site yet: add one with `replyguard site add NAME`.".to_owned()
        }
        ListOutput::Table => {
            let mut listed = table(&["SITE", "MODE", "CREATED (UTC)"]);
            for site in &sites {
                listed.add_row(vec![
                    site.name.clone(),
                    site.policy.mode.as_str().to_owned(),
                    time(site.created_at),
                ]);
            }
            listed.to_string()
        }
    })
}

/// Every live token: its prefix, role, scopes and sites, when it was issued and when it was
/// last used (to the minute).
pub async fn tokens(store: &dyn Store, output: ListOutput) -> Result<String, String> {
    let names: HashMap<SiteId, String> = store
        .sites()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|site: Site| (site.id, site.name))
        .collect();
    let tokens = store.live_tokens().await.map_err(|e| e.to_string())?;
    let sites_of = |credential: &Credential| -> Vec<String> {
        credential
            .sites
            .iter()
            .map(|id| names.get(id).cloned().unwrap_or_else(|| id.to_string()))
            .collect()
    };
    Ok(match output {
        ListOutput::Json => json!({
            "tokens": tokens.iter().map(|token| json!({
                "prefix": token.credential.prefix,
                "role": token.credential.role.as_str(),
                "scopes": token.credential.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                "sites": sites_of(&token.credential),
                "issued_at": time(token.issued_at),
                "last_used_at": token.last_used_at.map(time),
            })).collect::<Vec<_>>()
        })
        .to_string(),
        ListOutput::Table if tokens.is_empty() => "No live token.".to_owned(),
        ListOutput::Table => {
            let mut listed = table(&[
                "PREFIX",
                "ROLE",
                "SCOPES",
                "SITES",
                "ISSUED (UTC)",
                "LAST USED (UTC)",
            ]);
            for token in &tokens {
                listed.add_row(vec![
                    token.credential.prefix.clone(),
                    token.credential.role.as_str().to_owned(),
                    Scope::list(&token.credential.scopes),
                    sites_of(&token.credential).join(", "),
                    time(token.issued_at),
                    token.last_used_at.map_or_else(|| "never".to_owned(), time),
                ]);
            }
            listed.to_string()
        }
    })
}
