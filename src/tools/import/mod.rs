//! `replyguard import`: brings a site's comments in from WordPress (WXR), Disqus, Isso,
//! Commento or replyguard's own JSON lines.
//!
//! Each comment is made the way a submitted one is: its text made plain ([`html`]), validated,
//! masked and rendered, its email sealed and keyed with the deployment's keys (so an imported
//! author is the same author as when they reply again: their trust and history carry over),
//! and assessed by the real rules. What differs is kept from the export: its time, its status,
//! its place in its thread, and its address while the retention setting, counted from the
//! comment's own time, still allows. What cannot be made valid is skipped with its reason.
//!
//! The export is read as a stream on a thread of its own while the previous batch is written,
//! each batch in one transaction ([`store::Importing`]) that also records every comment by its
//! source and id: importing again adds nothing, and a reply finds its parent in the database,
//! so memory stays bounded whatever the export's size. A reply that comes before its parent
//! waits (a bounded number of them) until the end; one whose parent never comes, or was
//! skipped (a pingback, an invalid comment: only their ids are kept), is placed at the top,
//! and the report says so.

mod disqus;
pub mod html;
pub mod json;
mod source;
mod wxr;
mod xml;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fs::File,
    io::{self, BufRead, BufReader, Read},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use chrono::{DateTime, Duration, Utc};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::sync::mpsc;
use uuid::{NoContext, Timestamp, Uuid};

use crate::{
    config::{DEFAULT_RETAIN_CLIENT_DAYS, DatabaseArgs, SecretKeyArgs},
    domain::{
        Action, ArticleClosing, BlockKind, Blocked, CommentStatus, Email, MAX_DIGEST_MINUTES,
        MailPages, NOTICE_EVENTS, NewBlock, Notice, RawReply, WebhookEvent, validate,
    },
    ids::{CommentId, SiteId},
    moderation::lesson_of,
    privacy::{Vault, mask_contacts},
    spam::{self, Assessor, Facts, Policy},
    store::{
        self, ImportedComment, ImportedPlace, OPERATOR_ACTOR, Store, StoreError, StoredComment,
    },
    submission::{MAX_DEPTH, Place, stored_reply},
};
use source::{Item, ReadError, Setting, SourceComment};

/// The formats `replyguard import` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// WordPress's WXR export (Tools → Export).
    Wxr,
    /// Disqus's XML export.
    Disqus,
    /// Isso's generic JSON import format.
    Isso,
    /// Commento's JSON export.
    Commento,
    /// replyguard's JSON lines: one comment a line.
    Jsonl,
}

impl Format {
    /// The source name each comment is remembered by, with its id.
    pub fn source(self) -> &'static str {
        match self {
            Format::Wxr => "wxr",
            Format::Disqus => "disqus",
            Format::Isso => "isso",
            Format::Commento => "commento",
            Format::Jsonl => "jsonl",
        }
    }
}

/// What an imported comment's article key is made of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ArticleKeyFrom {
    /// The path of the page's address (with its query, as in WordPress's `/?p=12`).
    #[default]
    Path,
    /// The page's whole address.
    Url,
    /// The page's id in the export (WordPress's post id, Disqus's thread identifier, Isso's
    /// page id, Commento's url).
    Id,
}

/// The settings of `replyguard import`.
#[derive(Args, Clone, Debug)]
pub struct ImportArgs {
    /// The site to import into, created before with `replyguard site add`.
    #[arg(long)]
    pub site: String,
    /// The export's format.
    #[arg(long, value_enum)]
    pub format: Format,
    /// The export file; `-` reads standard input (not for Commento, which is read twice).
    pub file: PathBuf,
    /// What each comment's article key is made of.
    #[arg(long, value_enum, default_value_t)]
    pub article_key: ArticleKeyFrom,
    /// Teach the site's classifier from the imported spam and approved comments, as
    /// moderators' decisions do.
    #[arg(long)]
    pub learn: bool,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Comments per transaction.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub batch: u64,
    /// Days a reply's IP address and user agent are kept, counted from its own time: older
    /// imported comments keep none. The server's setting.
    #[arg(
        long,
        env = "REPLYGUARD_RETAIN_CLIENT_DAYS",
        value_name = "DAYS",
        default_value_t = DEFAULT_RETAIN_CLIENT_DAYS,
        value_parser = clap::value_parser!(u32).range(1..=36_500)
    )]
    pub retain_client_days: u32,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The deployment's key, so that the server can open the sealed emails.
    #[command(flatten)]
    pub key: SecretKeyArgs,
}

/// How many replies may wait for a parent that comes later in the export.
const MAX_WAITING: usize = 10_000;

/// What a run did.
#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    pub format: &'static str,
    /// Comments stored.
    pub imported: u64,
    /// Comments stored, by status.
    pub statuses: BTreeMap<&'static str, u64>,
    /// Comments imported before, by an earlier run (or twice in the export): not stored again.
    pub already_imported: u64,
    /// Comments not stored, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Replies whose parent is not in the export (or was deleted since): placed at the top.
    pub parent_missing: u64,
    /// Replies to a comment that was skipped (a pingback, an invalid comment): placed at the
    /// top.
    pub parent_skipped: u64,
    /// Replies nested deeper than replyguard's threads go: placed under the deepest ancestor
    /// that takes replies.
    pub flattened: u64,
    /// Invalid optional fields left out of comments that were stored, by field.
    pub dropped_fields: BTreeMap<&'static str, u64>,
    /// Settings of replyguard's own export applied: the policy, closed articles, blocks.
    pub settings: BTreeMap<&'static str, u64>,
    /// Comments that taught the classifier (`--learn`).
    pub learned: u64,
    pub seconds: f64,
}

impl ImportReport {
    fn skip(&mut self, reason: impl Into<String>) {
        *self.skipped.entry(reason.into()).or_default() += 1;
    }

    /// The report as a table, for people.
    pub fn table(&self) -> String {
        let mut table = comfy_table::Table::new();
        table
            .load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
            .set_header(vec!["", "comments"]);
        table.add_row(vec!["imported".to_owned(), self.imported.to_string()]);
        for (status, n) in &self.statuses {
            table.add_row(vec![format!("  {status}"), n.to_string()]);
        }
        table.add_row(vec![
            "already imported".to_owned(),
            self.already_imported.to_string(),
        ]);
        let skipped: u64 = self.skipped.values().sum();
        table.add_row(vec!["skipped".to_owned(), skipped.to_string()]);
        for (reason, n) in &self.skipped {
            table.add_row(vec![format!("  {reason}"), n.to_string()]);
        }
        table.add_row(vec![
            "parent missing, placed at the top".to_owned(),
            self.parent_missing.to_string(),
        ]);
        table.add_row(vec![
            "parent skipped, placed at the top".to_owned(),
            self.parent_skipped.to_string(),
        ]);
        table.add_row(vec![
            "nested too deep, placed higher".to_owned(),
            self.flattened.to_string(),
        ]);
        for (field, n) in &self.dropped_fields {
            table.add_row(vec![format!("invalid {field} left out"), n.to_string()]);
        }
        for (what, n) in &self.settings {
            table.add_row(vec![format!("{what} applied"), n.to_string()]);
        }
        if self.learned > 0 {
            table.add_row(vec![
                "taught the classifier".to_owned(),
                self.learned.to_string(),
            ]);
        }
        format!(
            "{table}\n{} comments from {} in {:.1} s\n",
            self.imported, self.format, self.seconds
        )
    }
}

/// Imports the file; returns what was done.
pub async fn run(args: &ImportArgs) -> Result<ImportReport, String> {
    if args.format == Format::Commento && args.file.as_os_str() == "-" {
        return Err(
            "a Commento export lists its commenters after the comments and is read twice: \
             give its file, not -"
                .to_owned(),
        );
    }
    let (store, vault, site) = super::open_site(&args.database, &args.key, &args.site).await?;
    let size = if args.file.as_os_str() == "-" {
        None
    } else {
        let meta = std::fs::metadata(&args.file)
            .map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
        Some(meta.len())
    };
    let bar = match size {
        Some(size) => ProgressBar::new(size),
        None => ProgressBar::new_spinner(),
    };
    if let Ok(style) = ProgressStyle::with_template(
        "{elapsed_precise} [{wide_bar}] {binary_bytes}/{binary_total_bytes} read, {msg} comments",
    ) {
        bar.set_style(style);
    }

    let started = Instant::now();
    let read = Arc::new(AtomicU64::new(0));
    let preparer = Preparer {
        site: site.id,
        policy: site.policy.clone(),
        vault: vault.clone(),
        assessor: Assessor::default(),
        article_key: args.article_key,
        client_details_since: store::now() - Duration::days(i64::from(args.retain_client_days)),
        learn: args.learn,
    };
    let (batches, mut ready) = mpsc::channel::<Vec<Entry>>(2);
    let batch = usize::try_from(args.batch).unwrap_or(usize::MAX);
    let (format, file, counter) = (args.format, args.file.clone(), read.clone());
    let reading = tokio::task::spawn_blocking(move || {
        read_all(format, &file, &counter, &preparer, batch, &batches)
    });

    let mut writer = Writer {
        store: store.as_ref(),
        vault: &vault,
        site: site.id,
        source: args.format.source(),
        note: format!("imported from {}", args.format.source()),
        report: ImportReport {
            format: args.format.source(),
            ..ImportReport::default()
        },
        waiting: Vec::new(),
        skipped: HashSet::new(),
    };
    let mut written = Ok(());
    while let Some(entries) = ready.recv().await {
        if let Err(err) = writer.write(entries, true).await {
            written = Err(err);
            break;
        }
        bar.set_position(read.load(Ordering::Relaxed));
        bar.set_message(writer.report.imported.to_string());
    }
    drop(ready);
    let reading = reading
        .await
        .map_err(|e| format!("the reader failed: {e}"))?;
    written?;
    match reading {
        Ok(()) | Err(ReadError::Stopped) => {}
        Err(ReadError::Malformed(why)) => {
            bar.finish_and_clear();
            return Err(format!(
                "{why} ({} comments imported before it; running the command again on a \
                 corrected file imports the rest)",
                writer.report.imported
            ));
        }
    }
    writer.finish().await?;
    bar.finish_and_clear();
    let mut report = writer.report;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Counts the bytes read, for the progress bar.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Bytes read at once from the export.
const READ_BUFFER: usize = 256 * 1024;

/// Reads the whole export, sending its comments prepared, in batches; runs on a thread of its
/// own.
fn read_all(
    format: Format,
    file: &std::path::Path,
    read: &Arc<AtomicU64>,
    preparer: &Preparer,
    batch: usize,
    batches: &mpsc::Sender<Vec<Entry>>,
) -> Result<(), ReadError> {
    let open = || -> Result<Box<dyn BufRead>, ReadError> {
        let inner: Box<dyn Read> = if file.as_os_str() == "-" {
            Box::new(io::stdin())
        } else {
            let opened = File::open(file).map_err(|e| {
                ReadError::malformed(format_args!("cannot open {}: {e}", file.display()))
            })?;
            Box::new(opened)
        };
        let counting = Counting {
            inner,
            read: read.clone(),
        };
        Ok(Box::new(BufReader::with_capacity(READ_BUFFER, counting)))
    };
    let mut pending: Vec<Entry> = Vec::with_capacity(batch);
    let mut emit = |item: Item| -> Result<(), ReadError> {
        pending.push(preparer.prepare(item));
        if pending.len() >= batch {
            let full = std::mem::replace(&mut pending, Vec::with_capacity(batch));
            batches
                .blocking_send(full)
                .map_err(|_| ReadError::Stopped)?;
        }
        Ok(())
    };
    match format {
        Format::Wxr => wxr::read(open()?, &mut emit)?,
        Format::Disqus => disqus::read(open()?, &mut emit)?,
        Format::Isso => json::read_isso(open()?, &mut emit)?,
        Format::Commento => {
            // The first pass's bytes are not the progress of the second.
            let mut passes = 0;
            json::read_commento(
                || {
                    passes += 1;
                    if passes == 2 {
                        read.store(0, Ordering::Relaxed);
                    }
                    open()
                },
                &mut emit,
            )?
        }
        Format::Jsonl => json::read_jsonl(open()?, &mut emit)?,
    }
    if !pending.is_empty() {
        batches
            .blocking_send(pending)
            .map_err(|_| ReadError::Stopped)?;
    }
    Ok(())
}

/// One comment of the export, made ready to store or skipped.
enum Entry {
    Ready(Box<Prepared>),
    Setting(Setting),
    /// Left out, and why; with the comment's id when it was one.
    Skipped {
        id: Option<String>,
        reason: String,
    },
}

/// A comment made into a stored reply, to be placed in its thread.
struct Prepared {
    parent: Option<String>,
    row: ImportedComment,
    dropped: Vec<&'static str>,
}

/// Makes export comments into replies as a submission would.
struct Preparer {
    site: SiteId,
    policy: Policy,
    vault: Vault,
    assessor: Assessor,
    article_key: ArticleKeyFrom,
    client_details_since: DateTime<Utc>,
    learn: bool,
}

/// The fields a comment may lose, rather than be skipped, when they are invalid.
const OPTIONAL_FIELDS: [&str; 2] = ["author.website", "client.ip"];

impl Preparer {
    fn prepare(&self, item: Item) -> Entry {
        match item {
            Item::Skipped { id, reason } => Entry::Skipped {
                id,
                reason: reason.to_owned(),
            },
            Item::Setting(setting) => Entry::Setting(setting),
            Item::Comment(c) => {
                let id = c.id.clone();
                match self.comment(*c) {
                    Ok(prepared) => Entry::Ready(Box::new(prepared)),
                    Err(reason) => Entry::Skipped {
                        id: Some(id),
                        reason,
                    },
                }
            }
        }
    }

    fn comment(&self, mut c: SourceComment) -> Result<Prepared, String> {
        if c.id.is_empty() {
            return Err("no id".to_owned());
        }
        let Some(created) = c.created else {
            return Err("no time that can be read".to_owned());
        };
        let Some(status) = c.status else {
            return Err("a status replyguard does not know".to_owned());
        };
        let article = self.article(&c);
        let body = if c.html {
            html::to_text(&c.text)
        } else {
            c.text.trim().to_owned()
        };
        let recent = created >= self.client_details_since;
        if !recent {
            c.ip.clear();
            c.user_agent.clear();
        }
        let mut dropped = Vec::new();
        let reply = loop {
            let raw = RawReply {
                article: &article,
                author_name: &c.author,
                author_email: &c.email,
                author_website: &c.website,
                body: &body,
                ip: &c.ip,
                user_agent: &c.user_agent,
                ..RawReply::default()
            };
            match validate(&raw) {
                Ok(reply) => break reply,
                Err(violations) => {
                    let optional = violations
                        .iter()
                        .all(|v| OPTIONAL_FIELDS.contains(&v.field));
                    if !optional || !dropped.is_empty() {
                        let reasons: Vec<String> = violations
                            .iter()
                            .filter(|v| !OPTIONAL_FIELDS.contains(&v.field) || optional)
                            .map(|v| format!("{} {}", v.field, v.description))
                            .collect();
                        return Err(reasons.join("; "));
                    }
                    for v in &violations {
                        dropped.push(v.field);
                        match v.field {
                            "author.website" => c.website.clear(),
                            _ => c.ip.clear(),
                        }
                    }
                }
            }
        };
        let author_hash = self.vault.author_hash(self.site, &reply.email.normalized());
        let facts = Facts {
            author: Some(author_hash),
            ..Facts::default()
        };
        let text = spam::Analysis::of(&reply);
        let assessment = self
            .assessor
            .assess_analysed(&reply, &text, &self.policy, &facts);
        let kept = c.kept.take().unwrap_or_default();
        let id = CommentId(kept.id.unwrap_or_else(|| uuid_at(created)));
        let mut comment = stored_reply(
            &self.vault,
            self.site,
            &reply,
            mask_contacts(reply.body.as_str()),
            &author_hash,
            Place::new(id, None),
            text,
            assessment,
            status,
            created,
        );
        if let Some(updated) = kept.updated {
            comment.updated_at = updated;
        }
        if let Some(seed) = kept.avatar_seed {
            comment.avatar_seed = seed;
        }
        if let Some((score, verdict, reasons)) = kept.assessment {
            comment.score = score;
            comment.verdict = verdict;
            comment.reasons = reasons;
        }
        let lesson = match status {
            CommentStatus::Spam if self.learn => lesson_of(Action::MarkSpam),
            CommentStatus::Approved if self.learn => lesson_of(Action::Approve),
            _ => None,
        };
        Ok(Prepared {
            parent: c.parent,
            row: ImportedComment {
                source_id: c.id,
                comment,
                lesson,
            },
            dropped,
        })
    }

    /// The article key `--article-key` asks for (validated with the rest of the reply).
    fn article(&self, c: &SourceComment) -> String {
        match self.article_key {
            ArticleKeyFrom::Url => c.link.trim().to_owned(),
            ArticleKeyFrom::Id => c.article_id.trim().to_owned(),
            ArticleKeyFrom::Path => match url::Url::parse(c.link.trim()) {
                Ok(url) => match url.query() {
                    Some(query) => format!("{}?{query}", url.path()),
                    None => url.path().to_owned(),
                },
                // Already a path, or a key of its own.
                Err(_) => c.link.trim().to_owned(),
            },
        }
    }
}

/// A UUIDv7 of the comment's own time, so that queues list imported comments oldest first.
fn uuid_at(at: DateTime<Utc>) -> Uuid {
    let seconds = u64::try_from(at.timestamp()).unwrap_or(0);
    Uuid::new_v7(Timestamp::from_unix(
        NoContext,
        seconds,
        at.timestamp_subsec_nanos(),
    ))
}

/// Places prepared comments in their threads and stores them, batch by batch.
struct Writer<'a> {
    store: &'a dyn Store,
    /// Seals and keys a notice's address, as `AddNotice` does.
    vault: &'a Vault,
    site: SiteId,
    source: &'static str,
    note: String,
    report: ImportReport,
    /// Replies whose parent has not been seen yet.
    waiting: Vec<Prepared>,
    /// The ids of comments skipped so far: a reply to one is placed at once, at the top, as
    /// its parent will never be stored.
    skipped: HashSet<String>,
}

impl Writer<'_> {
    /// Stores one batch. A reply whose parent is not known yet waits when `may_wait`, unless
    /// too many do; otherwise it is placed at the top.
    async fn write(&mut self, entries: Vec<Entry>, may_wait: bool) -> Result<(), String> {
        let mut ready = Vec::with_capacity(entries.len());
        for entry in entries {
            match entry {
                Entry::Skipped { id, reason } => {
                    self.report.skip(reason);
                    self.skipped.extend(id.filter(|id| !id.is_empty()));
                }
                Entry::Ready(prepared) => ready.push(*prepared),
                Entry::Setting(setting) => self.apply(setting).await?,
            }
        }
        let mut asked: Vec<String> = ready.iter().map(|p| p.row.source_id.clone()).collect();
        asked.extend(ready.iter().filter_map(|p| p.parent.clone()));
        asked.sort_unstable();
        asked.dedup();
        let known = self
            .store
            .imported(self.site, self.source, &asked)
            .await
            .map_err(|e| e.to_string())?;

        let mut placed: HashMap<String, ImportedPlace> = HashMap::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut rows = Vec::with_capacity(ready.len());
        for mut p in ready {
            if known.contains_key(&p.row.source_id) || !seen.insert(p.row.source_id.clone()) {
                self.report.already_imported += 1;
                continue;
            }
            if let Some(parent_id) = &p.parent {
                let parent = placed
                    .get(parent_id)
                    .or_else(|| known.get(parent_id).and_then(Option::as_ref));
                match parent {
                    Some(parent) if parent.article == p.row.comment.article => {
                        if parent.depth + 1 > MAX_DEPTH {
                            self.report.flattened += 1;
                        }
                        place_under(&mut p.row.comment, parent);
                    }
                    // Skipped: it will never be stored.
                    None if self.skipped.contains(parent_id) => self.report.parent_skipped += 1,
                    // Not seen yet: it may come later in the export.
                    None if may_wait
                        && !known.contains_key(parent_id)
                        && self.waiting.len() < MAX_WAITING =>
                    {
                        seen.remove(&p.row.source_id);
                        self.waiting.push(p);
                        continue;
                    }
                    _ => self.report.parent_missing += 1,
                }
            }
            placed.insert(
                p.row.source_id.clone(),
                ImportedPlace {
                    id: p.row.comment.id,
                    root: p.row.comment.root,
                    path: p.row.comment.path.clone(),
                    depth: p.row.comment.depth,
                    article: p.row.comment.article.clone(),
                },
            );
            rows.push(p);
        }
        let mut stored = Vec::with_capacity(rows.len());
        let mut dropped = Vec::new();
        for p in rows {
            dropped.extend(p.dropped);
            stored.push(p.row);
        }
        self.store
            .import_comments(self.site, self.source, &stored, OPERATOR_ACTOR, &self.note)
            .await
            .map_err(|e| format!("after {} comments: {e}", self.report.imported))?;
        for field in dropped {
            *self.report.dropped_fields.entry(field).or_default() += 1;
        }
        for p in &stored {
            self.report.imported += 1;
            *self
                .report
                .statuses
                .entry(p.comment.status.as_str())
                .or_default() += 1;
            if p.lesson.is_some() {
                self.report.learned += 1;
            }
        }
        Ok(())
    }

    /// Applies a setting of replyguard's own export, as an operator's change with its audit row;
    /// one the site has already changes nothing.
    async fn apply(&mut self, setting: Setting) -> Result<(), String> {
        let note = self.note.as_str();
        let (what, changed) = match setting {
            Setting::Policy(policy) => {
                let mut changed = false;
                let mut edit = |stored: &Policy| {
                    changed = *stored != *policy;
                    changed.then(|| ((*policy).clone(), note.to_owned()))
                };
                self.store
                    .update_policy(self.site, OPERATOR_ACTOR, &mut edit)
                    .await
                    .map_err(|e| e.to_string())?;
                ("policy", changed)
            }
            Setting::Closed { article, at } => {
                let closing = ArticleClosing {
                    site: self.site,
                    article: &article,
                    closed: true,
                    actor: OPERATOR_ACTOR,
                    note: Some(note),
                    at: Some(at),
                };
                let changed = self
                    .store
                    .close_article(&closing)
                    .await
                    .map_err(|e| e.to_string())?;
                ("closed article", changed)
            }
            Setting::Block {
                block,
                value,
                note: block_note,
                expires_at,
            } => {
                let blocked = BlockKind::parse(&block)
                    .ok_or("an unknown kind of block")
                    .and_then(|kind| Blocked::parse(kind, &value));
                let blocked = match blocked {
                    Ok(blocked) => blocked,
                    Err(why) => {
                        self.report.skip(format!("a block: {why}"));
                        return Ok(());
                    }
                };
                // The moderator's own note where there was one, else the import's.
                let block = NewBlock {
                    site: self.site,
                    blocked: &blocked,
                    actor: OPERATOR_ACTOR,
                    note: Some(if block_note.is_empty() {
                        note
                    } else {
                        block_note.as_str()
                    }),
                    expires_at,
                };
                let outcome = self
                    .store
                    .block(&block, None)
                    .await
                    .map_err(|e| e.to_string())?;
                ("block", outcome.added)
            }
            Setting::MailPages(pages) => {
                let pages = match (
                    MailPages::parse_url(&pages.confirm_url),
                    MailPages::parse_url(&pages.unsubscribe_url),
                ) {
                    (Ok(confirm_url), Ok(unsubscribe_url)) => MailPages {
                        confirm_url,
                        unsubscribe_url,
                    },
                    (Err(why), _) | (_, Err(why)) => {
                        self.report.skip(format!("the mail pages: a page {why}"));
                        return Ok(());
                    }
                };
                let stored = self
                    .store
                    .mail_pages(self.site)
                    .await
                    .map_err(|e| e.to_string())?;
                let changed = stored.as_ref() != Some(&pages);
                if changed {
                    self.store
                        .set_mail_pages(self.site, &pages, OPERATOR_ACTOR)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                ("mail pages", changed)
            }
            Setting::Notice {
                email,
                events,
                digest_minutes,
            } => {
                let Some(notice) = self.notice(&email, &events, digest_minutes) else {
                    return Ok(());
                };
                let added = match self.store.add_notice(&notice).await {
                    Ok(()) => true,
                    // The site is told at that address already.
                    Err(StoreError::AlreadyExists(_)) => false,
                    Err(err) => return Err(err.to_string()),
                };
                ("notice", added)
            }
        };
        if changed {
            *self.report.settings.entry(what).or_default() += 1;
        }
        Ok(())
    }

    /// A notice of the export, sealed and keyed under this deployment's key as `AddNotice`
    /// would; `None`, counted as skipped, when it is not one `AddNotice` would take.
    fn notice(&mut self, email: &str, events: &[String], digest_minutes: u32) -> Option<Notice> {
        let email = match Email::parse(email) {
            Ok(email) => email,
            Err(why) => {
                self.report.skip(format!("a notice: its email {why}"));
                return None;
            }
        };
        let mut wanted: Vec<WebhookEvent> = events
            .iter()
            .filter_map(|event| WebhookEvent::parse(event))
            .filter(|event| NOTICE_EVENTS.contains(event))
            .collect();
        wanted.sort();
        wanted.dedup();
        if wanted.is_empty() || digest_minutes > MAX_DIGEST_MINUTES {
            self.report
                .skip("a notice: no event a notice is sent, or a digest over a day");
            return None;
        }
        Some(Notice {
            id: Uuid::now_v7(),
            site: self.site,
            email_sealed: self.vault.encrypt_email(self.site, email.as_str()),
            email_hash: self
                .vault
                .author_hash(self.site, &email.normalized())
                .0
                .to_vec(),
            events: wanted,
            digest_minutes,
            actor: OPERATOR_ACTOR.to_owned(),
            created_at: store::now(),
        })
    }

    /// Places the replies that waited for their parents: again while that places some, then
    /// the rest at the top.
    async fn finish(&mut self) -> Result<(), String> {
        while !self.waiting.is_empty() {
            let waiting = std::mem::take(&mut self.waiting);
            let before = waiting.len();
            let entries = waiting
                .into_iter()
                .map(|p| Entry::Ready(Box::new(p)))
                .collect();
            self.write(entries, true).await?;
            if self.waiting.len() == before {
                let rest = std::mem::take(&mut self.waiting)
                    .into_iter()
                    .map(|p| Entry::Ready(Box::new(p)))
                    .collect();
                self.write(rest, false).await?;
            }
        }
        Ok(())
    }
}

/// Places `comment` as a reply to `parent`, or, when that is as deep as threads go, to the
/// deepest of its ancestors that takes replies.
fn place_under(comment: &mut StoredComment, parent: &ImportedPlace) {
    let mut parent = Place {
        id: parent.id,
        root: parent.root,
        path: parent.path.clone(),
        depth: parent.depth,
    };
    while parent.depth + 1 > MAX_DEPTH {
        let Some((above, _)) = parent.path.rsplit_once('.') else {
            break;
        };
        let id = above
            .rsplit('.')
            .next()
            .and_then(|hex| Uuid::parse_str(hex).ok());
        let Some(id) = id else { break };
        parent = Place {
            id: CommentId(id),
            root: parent.root,
            path: above.to_owned(),
            depth: parent.depth - 1,
        };
    }
    let place = Place::new(comment.id, Some(&parent));
    comment.parent = Some(parent.id);
    comment.root = place.root;
    comment.path = place.path;
    comment.depth = place.depth;
}
