//! The article page as the template sees it: the comments made ready to show, and the reply
//! form with what the reader typed and what they must change. The HTML is
//! `templates/article.html`; askama checks it against these types when the example is built
//! and escapes every value except the two marked `|safe` (`body_html`, which replyguard made
//! safe, and the identicon this app drew).

use std::collections::HashMap;

use askama::Template;
use replyguard::proto::{Comment, CommentStatus};

use super::identicon;

/// replyguard refuses a reply to a comment this deep (a top-level comment is 0 deep).
const MAX_DEPTH: u32 = 16;

/// Replies are indented by their depth up to this many steps, so that a deep thread still fits.
const MAX_INDENT: u32 = 6;

#[derive(Template)]
#[template(path = "article.html", config = "examples/host/askama.toml")]
pub struct ArticlePage {
    /// The page token of this page of comments, empty for the first.
    pub page: String,
    /// The approved comments, and the reader's own held ones; `None` when they could not be
    /// read.
    pub comments: Option<Vec<CommentView>>,
    /// How many approved comments the article has in all.
    pub total: u64,
    /// The next page's token, if there is one.
    pub next_page: Option<String>,
    /// What the reader's last reply became, after the redirect.
    pub posted: Option<Posted>,
    /// The reply form; `None` when the article is closed.
    pub form: Option<ReplyForm>,
}

impl ArticlePage {
    /// "No comments yet", "1 comment", "12 comments".
    fn count(&self) -> String {
        match self.total {
            0 => "No comments yet".to_owned(),
            1 => "1 comment".to_owned(),
            n => format!("{n} comments"),
        }
    }
}

/// What became of the reader's reply, told once after the redirect.
#[derive(Clone, Copy, PartialEq)]
pub enum Posted {
    /// Approved at once: it is in the thread.
    Published,
    /// Held for a moderator (or judged spam, which the reader is told the same way).
    Held,
}

/// One comment as the page shows it.
pub struct CommentView {
    pub id: String,
    pub author_name: String,
    /// The author's website, shown as a link on their name.
    pub website: Option<String>,
    /// The identicon, an `<svg>` element.
    pub avatar: String,
    /// replyguard's HTML of the text: escaped, links marked `rel="nofollow ugc"`.
    pub body_html: String,
    /// RFC 3339, for `<time datetime>`.
    pub datetime: String,
    /// As a reader reads it: "7 December 2026 at 10:17 UTC".
    pub when: String,
    /// How far to indent it.
    pub indent: u32,
    /// Whom it answers, when that comment is on this page.
    pub in_reply_to: Option<(String, String)>,
    /// The reader's own reply, waiting for a moderator: only its author sees it.
    pub held: bool,
    /// Whether it can be answered: it is approved and not too deep.
    pub can_reply: bool,
}

impl CommentView {
    /// The comments of one page, in the order replyguard listed them: a parent before its
    /// replies, each with its `depth`.
    pub fn page(comments: Vec<Comment>) -> Vec<CommentView> {
        let names: HashMap<String, String> = comments
            .iter()
            .map(|c| (c.id.clone(), c.author_name.clone()))
            .collect();
        comments
            .into_iter()
            .map(|c| {
                let held = c.status() == CommentStatus::Pending;
                let created = c.created_at.and_then(|t| {
                    chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
                });
                CommentView {
                    in_reply_to: names
                        .get(&c.parent_id)
                        .map(|name| (c.parent_id.clone(), name.clone())),
                    website: Some(c.author_website).filter(|w| !w.is_empty()),
                    avatar: identicon::svg(&c.avatar_seed, 40),
                    datetime: created.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    when: created
                        .map(|t| t.format("%-d %B %Y at %H:%M UTC").to_string())
                        .unwrap_or_default(),
                    indent: c.depth.min(MAX_INDENT),
                    can_reply: !held && c.depth < MAX_DEPTH,
                    held,
                    id: c.id,
                    author_name: c.author_name,
                    body_html: c.body_html,
                }
            })
            .collect()
    }
}

/// The reply form: empty, or filled with what the reader sent when it was refused.
#[derive(Default)]
pub struct ReplyForm {
    pub comment: String,
    pub name: String,
    pub email: String,
    pub website: String,
    /// "Save my name, email, and website in this browser".
    pub remember: bool,
    /// The comment this replies to, empty for a new thread.
    pub parent_id: String,
    /// The name on that comment, when it is on this page.
    pub parent_name: Option<String>,
    /// From `PrepareForm`; kept as it was when the form is shown again, so replyguard counts
    /// the reader's time from when they first saw the form.
    pub form_token: String,
    /// One per form shown: a reader who sends the form twice (a double click, a reload of the
    /// POST) gets the first answer again, not a duplicate.
    pub idempotency_key: String,
    /// Messages beside the fields.
    pub errors: FieldErrors,
    /// A message for the whole form.
    pub alert: Option<Alert>,
}

/// What is wrong with each field, in words for the reader.
#[derive(Default)]
pub struct FieldErrors {
    pub comment: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub website: Option<String>,
}

/// A message above the form, with a link where there is something to see.
pub struct Alert {
    pub text: String,
    pub link: Option<(String, String)>,
}
