//! The worker that sends what the mail outbox holds: it claims the mails that are due (replicas
//! share them, each claimed by one at a time), writes each, hands it to the SMTP server with a
//! timeout, and records what came of it, retrying on a schedule until the server takes it.

use std::{
    collections::{HashMap, hash_map::Entry},
    sync::Arc,
    time::Duration,
};

use chrono::{TimeDelta, Utc};
use futures_util::{StreamExt, stream};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{
        Mailbox,
        header::{ContentType, Header, HeaderName, HeaderValue},
    },
};
use tokio::{sync::watch, task::JoinHandle};
use uuid::Uuid;

use super::{MailSettings, message};
use crate::{
    domain::{CommentStatus, Mail, MailKind, MailOutcome, MailPages, Notice},
    ids::{CommentId, SiteId},
    metrics,
    privacy::Vault,
    store::{Site, Store, StoredComment},
};

/// How long after each failed attempt the next is made: soon at first (a server restarting),
/// then up to eight hours apart, for about a day and a half; after the last, the mail has failed.
pub const RETRY_SCHEDULE: [Duration; 12] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(15),
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(15 * 60),
    Duration::from_secs(60 * 60),
    Duration::from_secs(2 * 60 * 60),
    Duration::from_secs(4 * 60 * 60),
    Duration::from_secs(8 * 60 * 60),
    Duration::from_secs(24 * 60 * 60),
];

/// How often the worker looks for due mails when the last look found fewer than a batch.
const POLL: Duration = Duration::from_millis(250);
/// How many mails one look claims.
const BATCH: u32 = 64;
/// How many messages are handed to the SMTP server at once.
const CONCURRENCY: usize = 4;
/// The longest one SMTP command may wait for its answer.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claim keeps other workers off a mail: longer than any sending.
const LEASE: Duration = Duration::from_secs(120);

/// Sends the mails that are due.
#[derive(Clone)]
pub struct Worker {
    store: Arc<dyn Store>,
    vault: Vault,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// One message to send, and the outbox rows it carries.
struct Outgoing {
    mails: Vec<Uuid>,
    attempts: u32,
    message: Result<Message, Unwritten>,
}

/// Why a mail could not be written.
enum Unwritten {
    /// Something may come back (the database, the site's pages): tried again on the schedule.
    Retry(String),
    /// What it told of is gone (unsubscribed, no longer public): never sent.
    Never(String),
}

impl From<String> for Unwritten {
    fn from(why: String) -> Unwritten {
        Unwritten::Retry(why)
    }
}

impl Worker {
    /// A worker that sends through the server `settings` name.
    pub fn new(
        store: Arc<dyn Store>,
        vault: Vault,
        settings: &MailSettings,
    ) -> Result<Worker, String> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|err| format!("REPLYGUARD_MAIL_FROM is not an address: {err}"))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(settings.smtp_url.as_str())
            .map_err(|err| format!("REPLYGUARD_SMTP_URL cannot be used: {err}"))?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Worker {
            store,
            vault,
            transport,
            from,
        })
    }

    /// Runs until `closing` turns true.
    pub fn spawn(self, mut closing: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let claimed = self.round().await;
                if claimed < BATCH as usize {
                    tokio::select! {
                        _ = closing.wait_for(|closing| *closing) => break,
                        _ = tokio::time::sleep(POLL) => {}
                    }
                } else if *closing.borrow() {
                    break;
                }
            }
        })
    }

    /// Claims and sends one batch; how many mails it claimed.
    pub async fn round(&self) -> usize {
        let now = Utc::now();
        let lease_until = now + TimeDelta::from_std(LEASE).unwrap_or(TimeDelta::MAX);
        let claimed = match self.store.claim_mails(now, lease_until, BATCH).await {
            Ok(claimed) => claimed,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the mail outbox");
                return 0;
            }
        };
        let count = claimed.len();
        if count == 0 {
            return 0;
        }
        let outgoing = self.compose(claimed).await;
        stream::iter(outgoing)
            .for_each_concurrent(CONCURRENCY, |outgoing| async move {
                let outcome = match outgoing.message {
                    Ok(message) => match self.transport.send(message).await {
                        Ok(_) => MailOutcome::Sent,
                        Err(err) if err.is_permanent() => MailOutcome::Failed {
                            error: describe(&err),
                            retry_at: None,
                        },
                        Err(err) => failed(outgoing.attempts, describe(&err)),
                    },
                    Err(Unwritten::Retry(why)) => failed(outgoing.attempts, why),
                    Err(Unwritten::Never(why)) => MailOutcome::Failed {
                        error: why,
                        retry_at: None,
                    },
                };
                metrics::record_mail_attempt(match &outcome {
                    MailOutcome::Sent => "sent",
                    MailOutcome::Failed { retry_at: Some(_), .. } => "retry",
                    MailOutcome::Failed { retry_at: None, .. } => "failed",
                });
                if let MailOutcome::Failed { error, .. } = &outcome {
                    tracing::warn!(error = %error, mails = outgoing.mails.len(), "a mail was not sent");
                }
                if let Err(err) = self.store.record_mail(&outgoing.mails, &outcome).await {
                    // The lease runs out and the mail is sent again: at least once.
                    tracing::warn!(error = %err, "cannot record a mail attempt");
                }
            })
            .await;
        count
    }

    /// The messages the claimed mails make: one each, but one for all of a digest's.
    async fn compose(&self, claimed: Vec<Mail>) -> Vec<Outgoing> {
        let mut sites: HashMap<SiteId, Option<(Site, Vec<Notice>)>> = HashMap::new();
        for mail in &claimed {
            if let Entry::Vacant(slot) = sites.entry(mail.site) {
                let site = match self.store.site_by_id(mail.site).await {
                    Ok(Some(site)) => match self.store.notices(mail.site).await {
                        Ok(notices) => Some((site, notices)),
                        Err(_) => None,
                    },
                    _ => None,
                };
                slot.insert(site);
            }
        }
        // A digest's mails, by notice, in the order they came.
        let mut groups: Vec<Vec<Mail>> = Vec::new();
        let mut digest_of: HashMap<Uuid, usize> = HashMap::new();
        for mail in claimed {
            let digest = mail.notice.filter(|id| {
                sites
                    .get(&mail.site)
                    .and_then(Option::as_ref)
                    .and_then(|(_, notices)| notices.iter().find(|n| n.id == *id))
                    .is_some_and(|notice| notice.digest_minutes > 0)
            });
            match digest.and_then(|id| digest_of.get(&id).copied()) {
                Some(index) => groups[index].push(mail),
                None => {
                    if let Some(id) = digest {
                        digest_of.insert(id, groups.len());
                    }
                    groups.push(vec![mail]);
                }
            }
        }
        let mut outgoing = Vec::with_capacity(groups.len());
        for group in groups {
            let mails = group.iter().map(|mail| mail.id).collect();
            let attempts = group.iter().map(|mail| mail.attempts).max().unwrap_or(0);
            let message = match sites.get(&group[0].site).and_then(Option::as_ref) {
                Some((site, _)) => self.message(site, &group).await,
                None => Err(Unwritten::Retry("cannot read the site".to_owned())),
            };
            outgoing.push(Outgoing {
                mails,
                attempts,
                message,
            });
        }
        outgoing
    }

    /// The message for a group of mails to one address.
    async fn message(&self, site: &Site, group: &[Mail]) -> Result<Message, Unwritten> {
        let first = &group[0];
        let to = self
            .vault
            .decrypt_email(site.id, &first.recipient_sealed)
            .map_err(|err| format!("cannot open the recipient's address: {err}"))?;
        let to: Mailbox = to
            .parse()
            .map_err(|_| "the recipient's address cannot be mailed".to_owned())?;
        let written = match first.kind {
            MailKind::Notice => {
                let mut held = Vec::with_capacity(group.len());
                for mail in group {
                    let Some(id) = mail.comment else { continue };
                    match self.store.comment(id).await {
                        Ok(Some(comment)) => {
                            let masked = self
                                .vault
                                .decrypt_email(site.id, &comment.email_sealed)
                                .map(|email| crate::privacy::mask_email(&email))
                                .unwrap_or_default();
                            held.push(message::HeldReply {
                                comment,
                                masked_email: masked,
                                event: mail.event.clone(),
                            });
                        }
                        // Decided and deleted, or erased, before the mail went: nothing to tell.
                        Ok(None) => {}
                        Err(err) => return Err(format!("cannot read the comment: {err}").into()),
                    }
                }
                if held.is_empty() {
                    return Err(Unwritten::Never(
                        "every reply it told of is gone".to_owned(),
                    ));
                }
                message::notice(&site.name, &held)
            }
            MailKind::Confirm => {
                let (token, _) = self.reader_token(site, first).await?;
                let pages = self.pages(site).await?;
                let link = MailPages::link(&pages.confirm_url, &token);
                let article = match first.comment {
                    Some(id) => self
                        .store
                        .comment(id)
                        .await
                        .map_err(|err| format!("cannot read the comment: {err}"))?
                        .map(|c| c.article),
                    None => None,
                };
                message::confirm(&site.name, article.as_deref(), &link)
            }
            MailKind::Answer => {
                let (token, confirmed) = self.reader_token(site, first).await?;
                if !confirmed {
                    return Err(Unwritten::Never(
                        "the reader is no longer subscribed".to_owned(),
                    ));
                }
                let pages = self.pages(site).await?;
                let unsubscribe = MailPages::link(&pages.unsubscribe_url, &token);
                let answer = self.public_comment(first.comment).await?;
                let Some(parent) = answer.parent else {
                    return Err(Unwritten::Never("the answer answers nothing".to_owned()));
                };
                let yours = self.public_comment(Some(parent)).await?;
                let written = message::answer(&site.name, &answer, &yours, &unsubscribe);
                return Message::builder()
                    .from(self.from.clone())
                    .to(to)
                    .subject(written.subject)
                    .header(ContentType::TEXT_PLAIN)
                    .header(ListUnsubscribe(format!("<{unsubscribe}>")))
                    .header(ListUnsubscribePost)
                    .body(written.text)
                    .map_err(|err| Unwritten::Never(format!("cannot write the mail: {err}")));
            }
        };
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(written.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(written.text)
            .map_err(|err| Unwritten::Never(format!("cannot write the mail: {err}")))
    }
}

impl Worker {
    /// The reader's link token, opened, and whether they confirmed their address.
    async fn reader_token(&self, site: &Site, mail: &Mail) -> Result<(String, bool), String> {
        let (sealed, confirmed) = self
            .store
            .reader(site.id, &mail.recipient_hash)
            .await
            .map_err(|err| format!("cannot read the reader: {err}"))?
            .ok_or_else(|| "the reader is gone".to_owned())?;
        let token = self
            .vault
            .decrypt_email(site.id, &sealed)
            .map_err(|err| format!("cannot open the reader's token: {err}"))?;
        Ok((token, confirmed))
    }

    /// The site's pages for the links readers' mails carry.
    async fn pages(&self, site: &Site) -> Result<MailPages, String> {
        self.store
            .mail_pages(site.id)
            .await
            .map_err(|err| format!("cannot read the site's mail pages: {err}"))?
            .ok_or_else(|| "the site has no mail pages".to_owned())
    }

    /// A comment the public may read: approved.
    async fn public_comment(&self, id: Option<CommentId>) -> Result<StoredComment, Unwritten> {
        let id = id.ok_or_else(|| Unwritten::Never("the mail names no comment".to_owned()))?;
        match self.store.comment(id).await {
            Ok(Some(c)) if c.status == CommentStatus::Approved => Ok(c),
            Ok(_) => Err(Unwritten::Never(
                "the comment is no longer public".to_owned(),
            )),
            Err(err) => Err(Unwritten::Retry(format!("cannot read the comment: {err}"))),
        }
    }
}

/// `List-Unsubscribe` (RFC 2369): the link a mail program offers as its unsubscribe button.
#[derive(Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(text: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(text.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058): the link unsubscribes on a
/// POST, with no page to click through.
#[derive(Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribePost)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_owned())
    }
}

/// The outcome of a failed attempt: tried again on the schedule, or given up on after it.
fn failed(attempts: u32, error: String) -> MailOutcome {
    let retry_at = RETRY_SCHEDULE
        .get(attempts as usize)
        .and_then(|wait| TimeDelta::from_std(*wait).ok())
        .map(|wait| Utc::now() + wait);
    MailOutcome::Failed { error, retry_at }
}

/// An SMTP failure in a few words, with its causes. Addresses are not in it: lettre's errors
/// name codes and connections, and the server's text is cut to its first line.
fn describe(err: &lettre::transport::smtp::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    let first = text.lines().next().unwrap_or_default();
    crate::privacy::mask_contacts(first)
}
