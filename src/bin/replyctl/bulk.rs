//! Decisions on many comments: ids from arguments or stdin, or every comment
//! of a queue that matches a filter, sent in batches with a progress bar.

use std::io::{self, BufRead, IsTerminal};

use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use replyguard::privacy::links::{Finder, Kinds};
use replyguard::proto::{CommentStatus, ListQueueRequest, QueueItem};

use crate::{
    cli::{Selection, StatusArg},
    client::Clients,
    error::CliError,
};

/// Ids per `Moderate` call: the server's limit.
pub const BATCH: usize = 1000;

/// The ids of the arguments, where `-` stands for every id on stdin.
pub fn ids_from_args(args: Vec<String>) -> Result<Vec<String>, CliError> {
    let mut ids = Vec::with_capacity(args.len());
    for arg in args {
        if arg == "-" {
            for line in io::stdin().lock().lines() {
                ids.extend(line?.split_whitespace().map(str::to_owned));
            }
        } else {
            ids.push(arg);
        }
    }
    Ok(ids)
}

/// Every comment of one queue that passes the filters, oldest first.
pub async fn select(
    clients: &mut Clients,
    selection: &Selection,
    status: StatusArg,
) -> Result<Vec<QueueItem>, CliError> {
    let mut selected = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = clients
            .moderation
            .list_queue(ListQueueRequest {
                site: selection.site.name(),
                status: CommentStatus::from(status) as i32,
                article: selection.article.clone().unwrap_or_default(),
                page_size: 500,
                page_token,
            })
            .await
            .map_err(CliError::rpc("selecting comments"))?
            .into_inner();
        selected.extend(
            page.items
                .into_iter()
                .filter(|item| matches(selection, item)),
        );
        if page.next_page_token.is_empty() {
            return Ok(selected);
        }
        page_token = page.next_page_token;
    }
}

fn matches(selection: &Selection, item: &QueueItem) -> bool {
    let author = selection
        .author_hash
        .as_deref()
        .is_none_or(|hash| item.author_hash.eq_ignore_ascii_case(hash.trim()));
    let ip = selection
        .ip_prefix
        .as_deref()
        .is_none_or(|prefix| !item.ip.is_empty() && item.ip.starts_with(prefix.trim()));
    let links = selection
        .link_domain
        .as_deref()
        .is_none_or(|domain| links_to(&item.raw_body, domain));
    let old = selection.older_than.is_none_or(|age| {
        let created = item
            .comment
            .as_ref()
            .and_then(|c| c.created_at.as_ref())
            .map_or(i64::MAX, |t| t.seconds);
        let age = i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
        created <= Utc::now().timestamp().saturating_sub(age)
    });
    author && ip && links && old
}

/// Whether a text links to `domain` or one of its subdomains.
fn links_to(text: &str, domain: &str) -> bool {
    let domain = domain.trim().trim_start_matches('.').to_lowercase();
    static LINKS: std::sync::LazyLock<Finder> =
        std::sync::LazyLock::new(|| Finder::new(Kinds::Urls));
    LINKS.links(text).any(|link| {
        let raw = link.text;
        let with_scheme = if raw.contains("://") {
            raw.to_owned()
        } else {
            format!("http://{raw}")
        };
        url::Url::parse(&with_scheme)
            .ok()
            .and_then(|url| url.host_str().map(str::to_lowercase))
            .is_some_and(|host| host == domain || host.ends_with(&format!(".{domain}")))
    })
}

/// A progress bar on stderr for large batches at a terminal; hidden otherwise.
pub fn progress(total: usize) -> ProgressBar {
    if total < BATCH || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}") {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_domains_match_subdomains_but_not_lookalikes() {
        let text = "buy at https://shop.pills.example/x or www.pills.example";
        assert!(links_to(text, "pills.example"));
        assert!(links_to(text, "shop.pills.example"));
        assert!(!links_to(text, "ills.example"));
        assert!(!links_to("no links here", "pills.example"));
    }
}
