//! Webhooks' words: the events a site's endpoints may be sent, how a request is shaped, and
//! where a delivery stands.

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::ids::{CommentId, SiteId};

/// Something that happened on a site that an endpoint may be told of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WebhookEvent {
    /// A reply waits for a moderator.
    CommentHeld,
    /// A reply went to the spam queue, by the rules or a moderator.
    CommentSpam,
    /// A reply was approved, by the rules or a moderator.
    CommentApproved,
    /// A moderator rejected a reply, or it expired in the queue.
    CommentRejected,
    /// An author's data was erased from a reply.
    CommentErased,
    /// A moderator closed an article to new replies.
    ArticleClosed,
    /// A moderator opened a closed article again.
    ArticleReopened,
}

impl WebhookEvent {
    /// Every event.
    pub const ALL: [WebhookEvent; 7] = [
        WebhookEvent::CommentHeld,
        WebhookEvent::CommentSpam,
        WebhookEvent::CommentApproved,
        WebhookEvent::CommentRejected,
        WebhookEvent::CommentErased,
        WebhookEvent::ArticleClosed,
        WebhookEvent::ArticleReopened,
    ];

    /// The event's name, as endpoints are subscribed and payloads are typed.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::CommentHeld => "comment.held",
            WebhookEvent::CommentSpam => "comment.spam",
            WebhookEvent::CommentApproved => "comment.approved",
            WebhookEvent::CommentRejected => "comment.rejected",
            WebhookEvent::CommentErased => "comment.erased",
            WebhookEvent::ArticleClosed => "article.closed",
            WebhookEvent::ArticleReopened => "article.reopened",
        }
    }

    /// The inverse of [`WebhookEvent::as_str`].
    pub fn parse(name: &str) -> Option<WebhookEvent> {
        WebhookEvent::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// What a comment's new status tells an endpoint, if anything.
    pub fn of_status(status: super::CommentStatus) -> Option<WebhookEvent> {
        use super::CommentStatus;
        match status {
            CommentStatus::Pending => Some(WebhookEvent::CommentHeld),
            CommentStatus::Spam => Some(WebhookEvent::CommentSpam),
            CommentStatus::Approved => Some(WebhookEvent::CommentApproved),
            CommentStatus::Rejected => Some(WebhookEvent::CommentRejected),
        }
    }
}

impl fmt::Display for WebhookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an endpoint's requests are shaped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WebhookFormat {
    /// The event as JSON, signed as Standard Webhooks does.
    #[default]
    Standard,
    /// A Slack incoming webhook's `{"text": …}`, signed the same way.
    Slack,
}

impl WebhookFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Standard => "standard",
            WebhookFormat::Slack => "slack",
        }
    }

    pub fn parse(word: &str) -> Option<WebhookFormat> {
        match word {
            "standard" => Some(WebhookFormat::Standard),
            "slack" => Some(WebhookFormat::Slack),
            _ => None,
        }
    }
}

/// One endpoint of a site.
#[derive(Clone, Debug, PartialEq)]
pub struct Webhook {
    pub id: Uuid,
    pub site: SiteId,
    pub url: String,
    /// Sorted, without repeats; at least one.
    pub events: Vec<WebhookEvent>,
    pub note: String,
    pub format: WebhookFormat,
    /// The prefix of the token that added it.
    pub actor: String,
    pub created_at: DateTime<Utc>,
    /// Set once the endpoint answered `410 Gone`.
    pub disabled_at: Option<DateTime<Utc>>,
}

impl Webhook {
    /// The events as stored: `,comment.held,comment.spam,`, so that one is found by
    /// `LIKE '%,' || name || ',%'`.
    pub fn stored_events(events: &[WebhookEvent]) -> String {
        let mut stored = String::from(",");
        for event in events {
            stored.push_str(event.as_str());
            stored.push(',');
        }
        stored
    }

    /// The inverse of [`Webhook::stored_events`]; names this version does not know are left out.
    pub fn events_from_stored(stored: &str) -> Vec<WebhookEvent> {
        stored.split(',').filter_map(WebhookEvent::parse).collect()
    }
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its first or next attempt.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up on: retried for a day, or its endpoint was disabled.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(word: &str) -> Option<DeliveryState> {
        match word {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "failed" => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// One event sent, or to be sent, to one endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The `webhook-id`: the same on every attempt.
    pub id: Uuid,
    pub webhook: Uuid,
    pub site: SiteId,
    pub event: String,
    pub comment: Option<CommentId>,
    pub article: String,
    /// Who made the change: a moderator token's prefix, a site key's, or `system`.
    pub actor: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
}

/// What became of one attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum AttemptOutcome {
    /// 2xx.
    Delivered { status: u16 },
    /// `410 Gone`: the endpoint is disabled, and nothing more is sent to it.
    Gone,
    /// Anything else; tried again at `retry_at`, or given up on when `None`.
    Failed {
        status: Option<u16>,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_reads_back_from_its_name_and_from_storage() {
        for event in WebhookEvent::ALL {
            assert_eq!(WebhookEvent::parse(event.as_str()), Some(event));
        }
        let stored = Webhook::stored_events(&WebhookEvent::ALL);
        assert_eq!(Webhook::events_from_stored(&stored), WebhookEvent::ALL);
        assert!(stored.contains(",comment.held,"));
    }
}
