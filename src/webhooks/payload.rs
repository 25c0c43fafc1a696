//! What an endpoint is sent: the event, the site, the article and, for a comment's events, the
//! comment as the public would see it with its assessment. Never the email, the raw text (which
//! may hold contact details the public text masks), the address or the author's hash.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::{
    domain::{Delivery, WebhookFormat},
    store::StoredComment,
};

/// A Standard Webhooks payload: `type`, `timestamp` and `data`.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    #[serde(rename = "type")]
    pub event: &'a str,
    pub timestamp: String,
    pub data: Data<'a>,
}

#[derive(Debug, Serialize)]
pub struct Data<'a> {
    /// The site's name.
    pub site: &'a str,
    pub article: &'a str,
    /// Who made the change: a moderator token's prefix, a site key's, or `system`.
    pub actor: &'a str,
    /// The comment, for a comment's events; `None` for an article's, or when the comment was
    /// deleted before the delivery was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<CommentData<'a>>,
    /// The comment's id whenever the event is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CommentData<'a> {
    pub id: String,
    pub parent_id: Option<String>,
    pub status: &'a str,
    pub score: f64,
    /// The names of the rules that scored it, such as `links`.
    pub reasons: Vec<&'a str>,
    /// The name the author gave, as the public sees it.
    pub author_name: &'a str,
    /// The text as the public sees it: contact details masked.
    pub text: &'a str,
    pub created_at: String,
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl<'a> Payload<'a> {
    /// The payload of `delivery`, about `comment` when it still exists.
    pub fn of(
        delivery: &'a Delivery,
        site: &'a str,
        comment: Option<&'a StoredComment>,
    ) -> Payload<'a> {
        Payload {
            event: &delivery.event,
            timestamp: time(delivery.created_at),
            data: Data {
                site,
                article: &delivery.article,
                actor: &delivery.actor,
                comment_id: delivery.comment.map(|id| id.to_string()),
                comment: comment.map(|c| CommentData {
                    id: c.id.to_string(),
                    parent_id: c.parent.map(|p| p.to_string()),
                    status: c.status.as_str(),
                    score: c.score,
                    reasons: c
                        .reasons
                        .iter()
                        .filter(|r| !r.log_only)
                        .map(|r| r.rule.as_str())
                        .collect(),
                    author_name: &c.author_name,
                    text: &c.body_public,
                    created_at: time(c.created_at),
                }),
            },
        }
    }

    /// The request body in the endpoint's format.
    pub fn body(&self, format: WebhookFormat) -> Vec<u8> {
        match format {
            WebhookFormat::Standard => serde_json::to_vec(self),
            WebhookFormat::Slack => serde_json::to_vec(&serde_json::json!({ "text": self.line() })),
        }
        .expect("a payload always serialises")
    }

    /// One line for a chat channel: the event, the site and article, the author and the
    /// reasons, and the command that decides a held reply.
    pub fn line(&self) -> String {
        let data = &self.data;
        let mut line = format!("{} on {}, article {}", self.event, data.site, data.article);
        if let Some(comment) = &data.comment {
            line.push_str(&format!(": {} wrote", comment.author_name));
            let text: String = comment.text.chars().take(140).collect();
            line.push_str(&format!(" \"{text}\""));
            if !comment.reasons.is_empty() {
                line.push_str(&format!(" (reasons: {})", comment.reasons.join(", ")));
            }
            if comment.status == "pending" {
                line.push_str(&format!(
                    "; decide with `replyctl approve {}` or `replyctl reject {}`",
                    comment.id, comment.id
                ));
            }
        } else if let Some(id) = &data.comment_id {
            line.push_str(&format!(": comment {id}"));
        }
        line
    }
}
