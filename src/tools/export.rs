//! `replyguard export`: a site, whole, as replyguard's JSON lines ([`Line`]), so that it can
//! leave, or move to another deployment with `replyguard import --format jsonl`.
//!
//! The site's policy first, then every comment oldest first (its id, thread, article, status,
//! times, text and assessment), its closed articles, its blocklist (with notes and ends), its
//! mail pages, its moderators' notices and its audit log, newest first. Read page by page and
//! written as it is read, so memory stays bounded. Emails, notices (each an address), and texts
//! as their authors wrote them (contact details unmasked), only with `--include-emails`, opened
//! with the deployment's key; without it the public text is written and no email.

use std::{
    fs::File,
    io::{self, BufWriter, Write},
    path::PathBuf,
};

use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, ValueEnum};

use crate::{
    config::{DatabaseArgs, SecretKeyArgs},
    deployment::{check_key, secret_key_for},
    privacy::Vault,
    store::{self, Store, StoredComment},
    tools::import::json::{CommentLine, Line},
};

/// The formats `replyguard export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// replyguard's JSON lines.
    Jsonl,
}

/// The settings of `replyguard export`.
#[derive(Args, Clone, Debug)]
pub struct ExportArgs {
    /// The site to export.
    #[arg(long)]
    pub site: String,
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,
    /// Where to write; standard output when not given.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Write every author's email and every text as written: personal data, for moving the
    /// site to another deployment. The file is made readable by its owner only.
    #[arg(long)]
    pub include_emails: bool,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The deployment's key, to open the emails.
    #[command(flatten)]
    pub key: SecretKeyArgs,
}

/// Rows read at once.
const PAGE: u32 = 1000;

/// What an export wrote.
#[derive(Debug, Default)]
pub struct ExportReport {
    pub comments: u64,
    pub closed_articles: u64,
    pub blocks: u64,
    pub notices: u64,
    pub audit_rows: u64,
}

/// Writes the site out; returns what was written.
pub async fn run(args: &ExportArgs) -> Result<ExportReport, String> {
    let store = store::open(&args.database.url)
        .await
        .map_err(|e| e.to_string())?;
    let vault = if args.include_emails {
        let key = secret_key_for(&args.key, &args.database.url).map_err(|e| e.to_string())?;
        Some(
            check_key(store.as_ref(), &key)
                .await
                .map_err(|e| e.to_string())?,
        )
    } else {
        None
    };
    let site = super::find_site(store.as_ref(), &args.site).await?;
    let out: Box<dyn Write> = match &args.output {
        Some(path) => {
            let file = create(path, args.include_emails)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Box::new(file)
        }
        None => Box::new(io::stdout().lock()),
    };
    let mut out = BufWriter::new(out);
    let written = write_site(store.as_ref(), &site, vault.as_ref(), &mut out).await?;
    out.flush().map_err(|e| format!("cannot write: {e}"))?;
    Ok(written)
}

fn line(out: &mut impl Write, line: &Line) -> Result<(), String> {
    serde_json::to_writer(&mut *out, line).map_err(|e| format!("cannot write: {e}"))?;
    out.write_all(b"\n")
        .map_err(|e| format!("cannot write: {e}"))
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

async fn write_site(
    store: &dyn Store,
    site: &store::Site,
    vault: Option<&Vault>,
    out: &mut impl Write,
) -> Result<ExportReport, String> {
    let mut report = ExportReport::default();
    let site_line = Line::Site {
        name: site.name.clone(),
        policy: site.policy.clone(),
    };
    line(out, &site_line)?;

    let mut after = None;
    loop {
        let page = store
            .site_comments(site.id, after, PAGE)
            .await
            .map_err(|e| e.to_string())?;
        for comment in &page {
            line(out, &Line::Comment(comment_line(comment, vault)?))?;
            report.comments += 1;
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = Some(last.id),
            _ => break,
        }
    }

    let mut after: Option<String> = None;
    loop {
        let page = store
            .closed_articles(site.id, after.as_deref(), PAGE)
            .await
            .map_err(|e| e.to_string())?;
        for closed in &page {
            let closed_line = Line::ClosedArticle {
                article: closed.article.clone(),
                actor: closed.actor.clone(),
                closed_at: closed.closed_at,
            };
            line(out, &closed_line)?;
            report.closed_articles += 1;
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = Some(last.article.clone()),
            _ => break,
        }
    }

    let mut after = None;
    loop {
        let page = store
            .blocklist(site.id, after.as_ref(), PAGE)
            .await
            .map_err(|e| e.to_string())?;
        for entry in &page {
            let block_line = Line::Block {
                block: entry.blocked.kind().to_string(),
                value: entry.blocked.value(),
                actor: entry.actor.clone(),
                created_at: entry.created_at,
                note: entry.note.clone(),
                expires_at: entry.expires_at,
            };
            line(out, &block_line)?;
            report.blocks += 1;
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = Some(last.blocked.clone()),
            _ => break,
        }
    }

    if let Some(pages) = store.mail_pages(site.id).await.map_err(|e| e.to_string())? {
        let pages_line = Line::MailPages {
            confirm_url: pages.confirm_url,
            unsubscribe_url: pages.unsubscribe_url,
        };
        line(out, &pages_line)?;
    }
    // A notice is an address: written only when the addresses are.
    if let Some(vault) = vault {
        for notice in store.notices(site.id).await.map_err(|e| e.to_string())? {
            let Ok(email) = vault.decrypt_email(site.id, &notice.email_sealed) else {
                continue;
            };
            let notice_line = Line::Notice {
                email,
                events: notice
                    .events
                    .iter()
                    .map(|e| e.as_str().to_owned())
                    .collect(),
                digest_minutes: notice.digest_minutes,
                created_at: notice.created_at,
            };
            line(out, &notice_line)?;
            report.notices += 1;
        }
    }

    let mut before = None;
    loop {
        let page = store
            .audit_page(site.id, None, None, before, PAGE)
            .await
            .map_err(|e| e.to_string())?;
        for row in &page {
            let audit_line = Line::Audit {
                id: row.id.0,
                comment: row.comment.map(|c| c.0),
                actor: row.actor.clone(),
                action: row.action.clone(),
                from: row.from_status.map(|s| s.as_str().to_owned()),
                to: row.to_status.map(|s| s.as_str().to_owned()),
                note: row.note.clone(),
                at: row.created_at,
            };
            line(out, &audit_line)?;
            report.audit_rows += 1;
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => before = Some(last.id),
            _ => break,
        }
    }
    Ok(report)
}

/// One comment as written: its email and raw text only when `vault` opens them.
fn comment_line(c: &StoredComment, vault: Option<&Vault>) -> Result<CommentLine, String> {
    let (email, text) = match vault {
        Some(vault) => {
            // An erased comment's email no longer opens: it is written without one.
            let email = vault
                .decrypt_email(c.site, &c.email_sealed)
                .unwrap_or_default();
            let text = c
                .raw_body(vault)
                .map_err(|e| format!("comment {}: {e}", c.id))?
                .into_owned();
            (email, text)
        }
        None => (String::new(), c.body_public.clone()),
    };
    Ok(CommentLine {
        id: c.id.to_string(),
        parent: c.parent.map(|p| p.to_string()),
        article: c.article.clone(),
        author: c.author_name.clone(),
        email,
        website: c.author_website.clone().unwrap_or_default(),
        ip: c.ip.clone().unwrap_or_default(),
        user_agent: c.user_agent.clone().unwrap_or_default(),
        created: time(c.created_at),
        updated: Some(time(c.updated_at)),
        status: c.status.as_str().to_owned(),
        text,
        score: Some(c.score),
        verdict: Some(c.verdict.as_str().to_owned()),
        reasons: Some(c.reasons.clone()),
        avatar_seed: Some(c.avatar_seed.clone()),
    })
}

/// The output file, emptied; its owner's alone when it holds personal data.
fn create(path: &std::path::Path, private: bool) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        // A file that was there keeps its mode when opened: it is made private too.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        return Ok(file);
    }
    #[cfg(not(unix))]
    let _ = private;
    options.open(path)
}
