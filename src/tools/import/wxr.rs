//! WordPress's export (WXR): `<item>`s (posts and pages) holding their `<wp:comment>`s.
//!
//! Fields read: of an item, `link`, `wp:post_id`; of a comment, `wp:comment_id`,
//! `wp:comment_parent` (0 for none), `wp:comment_author`, `wp:comment_author_email`,
//! `wp:comment_author_url`, `wp:comment_author_IP`, `wp:comment_agent`,
//! `wp:comment_date_gmt` (else `wp:comment_date`), `wp:comment_content` (HTML),
//! `wp:comment_approved` (`1` approved, `0` pending, `spam`, `trash` and `post-trashed`
//! rejected) and `wp:comment_type` (`pingback` and `trackback` are skipped). A comment's id is
//! its `wp:comment_id` after the blog's address (the channel's `link`), so that two blogs
//! imported into one site keep their comments apart.

use std::io::BufRead;

use quick_xml::events::Event;

use super::{
    source::{Emit, Item, ReadError, SourceComment, parse_time},
    xml,
};
use crate::domain::CommentStatus;

/// Reads every comment of a WXR file, in order.
pub fn read(input: impl BufRead, emit: &mut Emit<'_>) -> Result<(), ReadError> {
    let mut reader = xml::reader(input);
    let mut buf = Vec::new();
    // The names of the open elements, without prefixes.
    let mut open: Vec<String> = Vec::new();
    let mut text = String::new();
    let (mut blog, mut link, mut post_id) = (String::new(), String::new(), String::new());
    let mut comment: Option<Fields> = None;
    loop {
        let event = xml::next(&mut reader, &mut buf)?;
        if xml::add_text(&event, &mut text)? {
            continue;
        }
        match event {
            Event::Start(tag) => {
                let name = xml::local(tag.name().as_ref());
                text.clear();
                if name == "item" {
                    link.clear();
                    post_id.clear();
                } else if name == "comment" && open.last().is_some_and(|p| p == "item") {
                    comment = Some(Fields::default());
                }
                open.push(name);
            }
            Event::End(_) => {
                let name = open.pop().unwrap_or_default();
                let parent = open.last().map(String::as_str);
                match (parent, comment.as_mut()) {
                    (Some("item"), _) if name == "comment" => {
                        if let Some(fields) = comment.take() {
                            emit(fields.item(&blog, &link, &post_id))?;
                        }
                    }
                    (Some("item"), _) if name == "link" => link = text.trim().to_owned(),
                    (Some("channel"), _) if name == "link" => blog = text.trim().to_owned(),
                    (Some("item"), _) if name == "post_id" => post_id = text.trim().to_owned(),
                    (Some("comment"), Some(fields)) => fields.set(&name, &text),
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

/// A comment's fields as read so far.
#[derive(Default)]
struct Fields {
    comment: SourceComment,
    date_gmt: String,
    date: String,
    approved: String,
    kind: String,
}

impl Fields {
    fn set(&mut self, name: &str, text: &str) {
        let value = text.trim().to_owned();
        let c = &mut self.comment;
        match name {
            "comment_id" => c.id = value,
            "comment_parent" => c.parent = (value != "0" && !value.is_empty()).then_some(value),
            "comment_author" => c.author = value,
            "comment_author_email" => c.email = value,
            "comment_author_url" => c.website = value,
            "comment_author_IP" => c.ip = value,
            "comment_agent" => c.user_agent = value,
            "comment_date_gmt" => self.date_gmt = value,
            "comment_date" => self.date = value,
            "comment_content" => c.text = text.to_owned(),
            "comment_approved" => self.approved = value,
            "comment_type" => self.kind = value,
            _ => {}
        }
    }

    fn item(mut self, blog: &str, link: &str, post_id: &str) -> Item {
        let c = &mut self.comment;
        if !blog.is_empty() && !c.id.is_empty() {
            c.id = format!("{blog}#{}", c.id);
            c.parent = c.parent.take().map(|parent| format!("{blog}#{parent}"));
        }
        let skipped = match self.kind.as_str() {
            "pingback" => Some("pingback"),
            "trackback" => Some("trackback"),
            _ if c.text.len() >= xml::MAX_TEXT_BYTES => Some(xml::TOO_LONG),
            _ => None,
        };
        if let Some(reason) = skipped {
            return Item::Skipped {
                id: Some(std::mem::take(&mut c.id)),
                reason,
            };
        }
        c.link = link.to_owned();
        c.article_id = post_id.to_owned();
        c.created = parse_time(&self.date_gmt).or_else(|| parse_time(&self.date));
        c.status = match self.approved.as_str() {
            "1" | "approve" => Some(CommentStatus::Approved),
            "0" | "hold" => Some(CommentStatus::Pending),
            "spam" => Some(CommentStatus::Spam),
            "trash" | "post-trashed" => Some(CommentStatus::Rejected),
            _ => None,
        };
        c.html = true;
        Item::Comment(Box::new(self.comment))
    }
}
