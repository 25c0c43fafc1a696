//! Mail's words: the events a moderator's notice may be sent, the notices themselves, what kind
//! of mail the outbox holds, and where one stands. An address never appears here in the clear:
//! the store keeps it sealed, and only the mail worker opens it, to send.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::WebhookEvent;
use crate::ids::{CommentId, SiteId};

/// The events a moderator may be mailed: a reply that waits for them, or one the rules called
/// spam as it came in.
pub const NOTICE_EVENTS: [WebhookEvent; 2] = [WebhookEvent::CommentHeld, WebhookEvent::CommentSpam];

/// The longest a digest may gather replies: a day.
pub const MAX_DIGEST_MINUTES: u32 = 24 * 60;

/// A moderator's address that is told of a site's events.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub id: Uuid,
    pub site: SiteId,
    /// The address, sealed with `Vault::encrypt_email`.
    pub email_sealed: Vec<u8>,
    /// Its keyed hash, as an author's is made (`Vault::author_hash`).
    pub email_hash: Vec<u8>,
    /// Sorted, without repeats; at least one, each of [`NOTICE_EVENTS`].
    pub events: Vec<WebhookEvent>,
    /// 0: a mail per event; otherwise one mail for what came in that many minutes.
    pub digest_minutes: u32,
    /// The prefix of the token that added it.
    pub actor: String,
    pub created_at: DateTime<Utc>,
}

impl Notice {
    /// The events as stored: comma-separated with a comma at each end, so one is found by
    /// position as a webhook's are.
    pub fn stored_events(events: &[WebhookEvent]) -> String {
        let names: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
        format!(",{},", names.join(","))
    }

    /// The inverse of [`Notice::stored_events`]; names it does not know are left out.
    pub fn events_from_stored(text: &str) -> Vec<WebhookEvent> {
        text.split(',').filter_map(WebhookEvent::parse).collect()
    }
}

/// The host's two pages readers' mails link to, each with `{token}` where the token goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailPages {
    pub confirm_url: String,
    pub unsubscribe_url: String,
}

/// What each page's URL stands for in the link.
pub const TOKEN_PLACE: &str = "{token}";

impl MailPages {
    /// Reads one page's URL: `https://` (or `http://` on a loopback host, for trying a host
    /// out), holding `{token}` once.
    pub fn parse_url(text: &str) -> Result<String, String> {
        let text = text.trim();
        if text.len() > 2000 {
            return Err("is longer than 2000 characters".to_owned());
        }
        if text.matches(TOKEN_PLACE).count() != 1 {
            return Err(format!(
                "must hold {TOKEN_PLACE} once, where the token goes"
            ));
        }
        let url = url::Url::parse(&text.replace(TOKEN_PLACE, "t"))
            .map_err(|err| format!("is not a URL: {err}"))?;
        let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => return Err("must be an https:// URL".to_owned()),
        }
        Ok(text.to_owned())
    }

    /// A page's link for `token`.
    pub fn link(template: &str, token: &str) -> String {
        template.replace(TOKEN_PLACE, token)
    }
}

/// A reader's wish to be mailed answers to one reply, as the store keeps it.
#[derive(Clone, Debug)]
pub struct ReplyWatch {
    pub site: SiteId,
    pub comment: CommentId,
    /// The reader's address and its keyed hash, as their reply stores them.
    pub email_sealed: Vec<u8>,
    pub author_hash: Vec<u8>,
    /// A new token for the reader's links, used when the reader is new: its digest and the
    /// token sealed.
    pub token_digest: Vec<u8>,
    pub token_sealed: Vec<u8>,
    pub at: DateTime<Utc>,
}

/// What is kept for mail about one address on a site, as an export of its owner's data lists it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuthorMail {
    /// As a reader told of answers: `pending`, `confirmed` or `unsubscribed`.
    pub reader: Option<String>,
    pub confirmed_at: Option<DateTime<Utc>>,
    /// The replies whose answers the author asked to be told of.
    pub watched: Vec<CommentId>,
    /// The moderators' notices mailed to the address.
    pub notices: u64,
    /// The mails to the address the outbox keeps, sent or not.
    pub mails: u64,
}

/// The most answer mails one reader is sent in an hour; answers beyond them are not mailed.
pub const ANSWERS_PER_HOUR: i64 = 10;

/// What a mail in the outbox is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MailKind {
    /// A moderator's notice of one reply, or of several in a digest.
    Notice,
    /// The link a reader follows to confirm their address.
    Confirm,
    /// An approved answer to a reader's reply.
    Answer,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Notice => "notice",
            MailKind::Confirm => "confirm",
            MailKind::Answer => "answer",
        }
    }

    pub fn parse(word: &str) -> Option<MailKind> {
        match word {
            "notice" => Some(MailKind::Notice),
            "confirm" => Some(MailKind::Confirm),
            "answer" => Some(MailKind::Answer),
            _ => None,
        }
    }
}

/// One mail to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Mail {
    pub id: Uuid,
    pub site: SiteId,
    pub kind: MailKind,
    /// The notice it was queued for, when it is one.
    pub notice: Option<Uuid>,
    /// The recipient, sealed with `Vault::encrypt_email`, and its keyed hash.
    pub recipient_sealed: Vec<u8>,
    pub recipient_hash: Vec<u8>,
    /// The event it tells of (`comment.held`, …), or its kind's name.
    pub event: String,
    /// The reply it is about: the held one, or the answer.
    pub comment: Option<CommentId>,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
}

/// What became of one attempt at sending.
#[derive(Clone, Debug, PartialEq)]
pub enum MailOutcome {
    /// The SMTP server took it.
    Sent,
    /// Tried again at `retry_at`, or given up on when `None`.
    Failed {
        error: String,
        retry_at: Option<DateTime<Utc>>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_needs_https_and_one_token_place() {
        let page = "https://news.example.com/confirm?token={token}";
        assert_eq!(MailPages::parse_url(page).as_deref(), Ok(page));
        assert_eq!(
            MailPages::link(page, "rg_mail_x"),
            "https://news.example.com/confirm?token=rg_mail_x"
        );
        assert!(MailPages::parse_url("https://news.example.com/confirm").is_err());
        assert!(MailPages::parse_url("http://news.example.com/c?t={token}").is_err());
        assert!(MailPages::parse_url("http://127.0.0.1:8080/c?t={token}").is_ok());
        assert!(MailPages::parse_url("https://x.example/{token}/{token}").is_err());
    }

    #[test]
    fn notice_events_read_back_from_storage() {
        let events = NOTICE_EVENTS.to_vec();
        let stored = Notice::stored_events(&events);
        assert_eq!(stored, ",comment.held,comment.spam,");
        assert_eq!(Notice::events_from_stored(&stored), events);
    }

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for kind in [MailKind::Notice, MailKind::Confirm, MailKind::Answer] {
            assert_eq!(MailKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(MailKind::parse("other"), None);
    }
}
