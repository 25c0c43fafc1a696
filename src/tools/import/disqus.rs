//! Disqus's export: `<thread dsq:id>`s (the pages), then `<post dsq:id>`s (the comments), each
//! naming its thread and parent by `dsq:id`.
//!
//! Fields read: of a thread, `link` and `id` (the page's identifier, else its `dsq:id`); of a
//! post, `message` (HTML), `createdAt`, `author/name`, `author/email`, `ipAddress`,
//! `isDeleted` (rejected) and `isSpam` (spam), the others approved. The threads are kept in
//! memory (one address per page, not per comment); a post whose thread is not in the export
//! is skipped.

use std::{collections::HashMap, io::BufRead};

use quick_xml::events::{BytesStart, Event};

use super::{
    source::{Emit, Item, ReadError, SourceComment, parse_time},
    xml,
};
use crate::domain::CommentStatus;

/// A page: its address and its identifier.
#[derive(Default)]
struct Thread {
    link: String,
    id: String,
}

/// Reads every post of a Disqus export, in order.
pub fn read(input: impl BufRead, emit: &mut Emit<'_>) -> Result<(), ReadError> {
    let mut reader = xml::reader(input);
    let mut buf = Vec::new();
    let mut open: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut threads: HashMap<String, Thread> = HashMap::new();
    let mut thread: Option<(String, Thread)> = None;
    let mut post: Option<Post> = None;
    loop {
        let event = xml::next(&mut reader, &mut buf)?;
        if xml::add_text(&event, &mut text)? {
            continue;
        }
        match event {
            Event::Start(tag) => {
                text.clear();
                let name = xml::local(tag.name().as_ref());
                if open.len() == 1 {
                    start_top(&name, &tag, &mut thread, &mut post);
                } else if let Some(post) = post.as_mut() {
                    post.reference(&name, &tag);
                }
                open.push(name);
            }
            Event::Empty(tag) => {
                let name = xml::local(tag.name().as_ref());
                if let Some(post) = post.as_mut().filter(|_| open.len() == 2) {
                    post.reference(&name, &tag);
                }
            }
            Event::End(_) => {
                let name = open.pop().unwrap_or_default();
                match open.len() {
                    1 if name == "thread" => {
                        if let Some((dsq_id, found)) = thread.take() {
                            threads.insert(dsq_id, found);
                        }
                    }
                    1 if name == "post" => {
                        if let Some(post) = post.take() {
                            emit(post.item(&threads))?;
                        }
                    }
                    2 => {
                        let value = text.trim();
                        if let Some((_, found)) = thread.as_mut() {
                            match name.as_str() {
                                "link" => found.link = value.to_owned(),
                                "id" => found.id = value.to_owned(),
                                _ => {}
                            }
                        } else if let Some(post) = post.as_mut() {
                            post.set(&name, &text);
                        }
                    }
                    3 if open.get(2).is_some_and(|p| p == "author") => {
                        if let Some(post) = post.as_mut() {
                            post.set_author(&name, text.trim());
                        }
                    }
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

/// A thread or post starts at the top level.
fn start_top(
    name: &str,
    tag: &BytesStart<'_>,
    thread: &mut Option<(String, Thread)>,
    post: &mut Option<Post>,
) {
    let dsq_id = xml::attribute(tag, "id").unwrap_or_default();
    match name {
        "thread" => *thread = Some((dsq_id, Thread::default())),
        "post" => {
            *post = Some(Post {
                comment: SourceComment {
                    id: dsq_id,
                    html: true,
                    ..SourceComment::default()
                },
                ..Post::default()
            });
        }
        _ => {}
    }
}

/// A post's fields as read so far.
#[derive(Default)]
struct Post {
    comment: SourceComment,
    thread: String,
    deleted: bool,
    spam: bool,
}

impl Post {
    /// `<thread dsq:id>` and `<parent dsq:id>` inside a post.
    fn reference(&mut self, name: &str, tag: &BytesStart<'_>) {
        let Some(id) = xml::attribute(tag, "id") else {
            return;
        };
        match name {
            "thread" => self.thread = id,
            "parent" => self.comment.parent = Some(id).filter(|id| !id.is_empty()),
            _ => {}
        }
    }

    fn set(&mut self, name: &str, text: &str) {
        let value = text.trim();
        match name {
            "message" => self.comment.text = text.to_owned(),
            "createdAt" => self.comment.created = parse_time(value),
            "ipAddress" => self.comment.ip = value.to_owned(),
            "isDeleted" => self.deleted = value == "true",
            "isSpam" => self.spam = value == "true",
            _ => {}
        }
    }

    fn set_author(&mut self, name: &str, value: &str) {
        match name {
            "name" => self.comment.author = value.to_owned(),
            "email" => self.comment.email = value.to_owned(),
            "link" | "url" => self.comment.website = value.to_owned(),
            _ => {}
        }
    }

    fn item(mut self, threads: &HashMap<String, Thread>) -> Item {
        let Some(thread) = threads.get(&self.thread) else {
            return Item::Skipped {
                id: Some(self.comment.id),
                reason: "its thread is not in the export",
            };
        };
        if self.comment.text.len() >= xml::MAX_TEXT_BYTES {
            return Item::Skipped {
                id: Some(self.comment.id),
                reason: xml::TOO_LONG,
            };
        }
        let c = &mut self.comment;
        c.link = thread.link.clone();
        c.article_id = if thread.id.is_empty() {
            self.thread.clone()
        } else {
            thread.id.clone()
        };
        c.status = Some(if self.spam {
            CommentStatus::Spam
        } else if self.deleted {
            CommentStatus::Rejected
        } else {
            CommentStatus::Approved
        });
        Item::Comment(Box::new(self.comment))
    }
}
