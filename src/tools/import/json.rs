//! The JSON formats: Isso's generic import, Commento's export and replyguard's own JSON lines.
//!
//! Arrays are read element by element through serde visitors, never as one value, so a file of
//! any size takes the memory of one element (for Isso, one page's comments).
//!
//! - Isso: an array of pages `{"id", "title", "comments": [{"id", "author", "email",
//!   "website", "remote_addr", "created", "text", "parent"?}]}`; a page's `id` is its path,
//!   and a comment's id is unique within its page. All are approved.
//! - Commento: `{"comments": [{"commentHex", "url", "commenterHex", "markdown", "parentHex"
//!   ("root" for none), "state" (`approved`, `unapproved` pending, `flagged` spam),
//!   "creationDate", "deleted" (rejected)}], "commenters": [{"commenterHex", "email", "name",
//!   "link"}]}`. The commenters come after the comments, so the file is read twice (first for
//!   them) and must be a file, not standard input.
//! - JSON lines ([`Line`]), as `replyguard export` writes them: one object a line, by its
//!   `kind`: `site` (its policy, applied), `comment` (`{"id", "parent"?, "article", "author",
//!   "email", "website"?, "ip"?, "user_agent"?, "created", "updated"?, "status", "text",
//!   "score"?, "verdict"?, "reasons"?}`; a UUID id is kept), `closed_article` and `block`
//!   (applied), `audit` (counted, not imported: the import writes its own rows).

use std::{collections::HashMap, fmt, io::BufRead};

use chrono::{DateTime, Utc};
use serde::{
    Deserialize, Deserializer, Serialize,
    de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor},
};

use uuid::Uuid;

use super::source::{Emit, Item, Kept, ReadError, Setting, SourceComment, parse_time};
use crate::{
    domain::{CommentStatus, MailPages},
    spam::{Policy, Reason, Verdict},
};

/// A reader's failure inside serde: the item sink's stop is told apart from malformed input.
fn serde_failure(err: serde_json::Error, stopped: bool) -> ReadError {
    if stopped {
        ReadError::Stopped
    } else {
        ReadError::malformed(format_args!("the JSON is malformed: {err}"))
    }
}

/// An id, written as a string or a number.
#[derive(Default)]
struct Id(String);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Id(s)),
            serde_json::Value::Number(n) => Ok(Id(n.to_string())),
            serde_json::Value::Null => Ok(Id(String::new())),
            _ => Err(de::Error::custom("an id must be a string or a number")),
        }
    }
}

/// A string field that may be `null`.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// Sends each element of a JSON array to `each`, one at a time.
struct Each<'a, T> {
    each: &'a mut dyn FnMut(T) -> Result<(), ReadError>,
    stopped: &'a mut bool,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Each<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Each<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(element) = seq.next_element::<T>()? {
            if (self.each)(element).is_err() {
                *self.stopped = true;
                return Err(de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

// ---- Isso ----

#[derive(Deserialize)]
struct IssoComment {
    #[serde(default)]
    id: Id,
    #[serde(default)]
    parent: Option<Id>,
    #[serde(default, deserialize_with = "text")]
    author: String,
    #[serde(default, deserialize_with = "text")]
    email: String,
    #[serde(default, deserialize_with = "text")]
    website: String,
    #[serde(default, deserialize_with = "text")]
    remote_addr: String,
    #[serde(default, deserialize_with = "text")]
    created: String,
    #[serde(default, deserialize_with = "text")]
    text: String,
}

/// One Isso page, whose comments are sent once its id is known (it may come after them).
struct IssoPage<'a, 'b> {
    emit: &'a mut Emit<'b>,
    stopped: &'a mut bool,
}

impl<'de> Visitor<'de> for IssoPage<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a page with its comments")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut page = String::new();
        let mut comments: Vec<IssoComment> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "id" => page = map.next_value::<Id>()?.0,
                "comments" => comments = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        for c in comments {
            let item = SourceComment {
                id: format!("{page}#{}", c.id.0),
                parent: c
                    .parent
                    .filter(|p| !p.0.is_empty())
                    .map(|p| format!("{page}#{}", p.0)),
                link: page.clone(),
                article_id: page.clone(),
                author: c.author,
                email: c.email,
                website: c.website,
                ip: c.remote_addr,
                created: parse_time(&c.created),
                status: Some(CommentStatus::Approved),
                text: c.text,
                html: true,
                ..SourceComment::default()
            };
            if (self.emit)(Item::Comment(Box::new(item))).is_err() {
                *self.stopped = true;
                return Err(de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

struct IssoPages<'a, 'b> {
    emit: &'a mut Emit<'b>,
    stopped: &'a mut bool,
}

impl<'de> Visitor<'de> for IssoPages<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of pages")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(PageSeed {
                emit: &mut *self.emit,
                stopped: &mut *self.stopped,
            })?
            .is_some()
        {}
        Ok(())
    }
}

struct PageSeed<'a, 'b> {
    emit: &'a mut Emit<'b>,
    stopped: &'a mut bool,
}

impl<'de> DeserializeSeed<'de> for PageSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(IssoPage {
            emit: self.emit,
            stopped: self.stopped,
        })
    }
}

/// Reads every comment of an Isso generic import.
pub fn read_isso(input: impl BufRead, emit: &mut Emit<'_>) -> Result<(), ReadError> {
    let mut stopped = false;
    let mut d = serde_json::Deserializer::from_reader(input);
    let read = d.deserialize_seq(IssoPages {
        emit,
        stopped: &mut stopped,
    });
    read.and_then(|()| d.end())
        .map_err(|err| serde_failure(err, stopped))
}

// ---- Commento ----

#[derive(Deserialize)]
struct Commenter {
    #[serde(rename = "commenterHex", default, deserialize_with = "text")]
    hex: String,
    #[serde(default, deserialize_with = "text")]
    email: String,
    #[serde(default, deserialize_with = "text")]
    name: String,
    #[serde(default, deserialize_with = "text")]
    link: String,
}

#[derive(Deserialize)]
struct CommentoComment {
    #[serde(rename = "commentHex", default, deserialize_with = "text")]
    hex: String,
    #[serde(default, deserialize_with = "text")]
    url: String,
    #[serde(rename = "commenterHex", default, deserialize_with = "text")]
    commenter: String,
    #[serde(default, deserialize_with = "text")]
    markdown: String,
    #[serde(default, deserialize_with = "text")]
    html: String,
    #[serde(rename = "parentHex", default, deserialize_with = "text")]
    parent: String,
    #[serde(default, deserialize_with = "text")]
    state: String,
    #[serde(rename = "creationDate", default, deserialize_with = "text")]
    created: String,
    #[serde(default)]
    deleted: bool,
}

/// Commento's top level: the commenters (first pass) or the comments (second).
struct CommentoTop<'a> {
    commenters: &'a mut HashMap<String, Commenter>,
    comments: Option<&'a mut dyn FnMut(CommentoComment) -> Result<(), ReadError>>,
    stopped: &'a mut bool,
}

impl<'de> Visitor<'de> for CommentoTop<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Commento export")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let CommentoTop {
            commenters,
            mut comments,
            stopped,
        } = self;
        while let Some(key) = map.next_key::<String>()? {
            match (key.as_str(), comments.as_mut()) {
                ("commenters", None) => {
                    let mut add = |c: Commenter| {
                        commenters.insert(c.hex.clone(), c);
                        Ok(())
                    };
                    map.next_value_seed(Each {
                        each: &mut add,
                        stopped: &mut *stopped,
                    })?;
                }
                ("comments", Some(each)) => {
                    map.next_value_seed(Each {
                        each: &mut **each,
                        stopped: &mut *stopped,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Reads every comment of a Commento export: `open` gives the file from its start, twice.
pub fn read_commento<R: BufRead>(
    mut open: impl FnMut() -> Result<R, ReadError>,
    emit: &mut Emit<'_>,
) -> Result<(), ReadError> {
    let mut commenters = HashMap::new();
    let mut stopped = false;
    let mut d = serde_json::Deserializer::from_reader(open()?);
    d.deserialize_map(CommentoTop {
        commenters: &mut commenters,
        comments: None,
        stopped: &mut stopped,
    })
    .and_then(|()| d.end())
    .map_err(|err| serde_failure(err, stopped))?;

    let mut each = |c: CommentoComment| {
        let author = commenters.get(&c.commenter);
        let (markdown, html) = (c.markdown.is_empty(), c.html);
        let item = SourceComment {
            id: c.hex,
            parent: Some(c.parent).filter(|p| !p.is_empty() && p != "root"),
            link: c.url.clone(),
            article_id: c.url,
            author: author.map(|a| a.name.clone()).unwrap_or_default(),
            email: author.map(|a| a.email.clone()).unwrap_or_default(),
            website: author.map(|a| a.link.clone()).unwrap_or_default(),
            created: parse_time(&c.created),
            status: if c.deleted {
                Some(CommentStatus::Rejected)
            } else {
                match c.state.as_str() {
                    "approved" => Some(CommentStatus::Approved),
                    "unapproved" => Some(CommentStatus::Pending),
                    "flagged" => Some(CommentStatus::Spam),
                    _ => None,
                }
            },
            // The reader's own words; the HTML only when they are missing.
            html: markdown,
            text: if markdown { html } else { c.markdown },
            ..SourceComment::default()
        };
        emit(Item::Comment(Box::new(item)))
    };
    let mut d = serde_json::Deserializer::from_reader(open()?);
    d.deserialize_map(CommentoTop {
        commenters: &mut HashMap::new(),
        comments: Some(&mut each),
        stopped: &mut stopped,
    })
    .and_then(|()| d.end())
    .map_err(|err| serde_failure(err, stopped))
}

// ---- JSON lines ----

/// One line of replyguard's JSON lines, as `replyguard export` writes them and
/// `replyguard import --format jsonl` reads them: the site's policy, a comment, a closed article,
/// a blocklist entry, the mail pages, a moderator's notice or an audit row, by its `kind`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Line {
    Site {
        name: String,
        policy: Policy,
    },
    Comment(CommentLine),
    ClosedArticle {
        article: String,
        actor: String,
        closed_at: DateTime<Utc>,
    },
    Block {
        block: String,
        value: String,
        actor: String,
        created_at: DateTime<Utc>,
        /// The moderator's note.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        note: String,
        /// When it ends; none keeps it until it is taken off.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<DateTime<Utc>>,
    },
    /// The host's two pages readers' mails link to.
    MailPages {
        confirm_url: String,
        unsubscribe_url: String,
    },
    /// A moderator's notice: written with `--include-emails` only, as it is an address.
    Notice {
        email: String,
        events: Vec<String>,
        digest_minutes: u32,
        created_at: DateTime<Utc>,
    },
    Audit {
        id: Uuid,
        comment: Option<Uuid>,
        actor: String,
        action: String,
        from: Option<String>,
        to: Option<String>,
        note: Option<String>,
        at: DateTime<Utc>,
    },
}

/// A comment in replyguard's JSON lines. Only `id`, `article`, `author`, `email`, `created`,
/// `status` and `text` are required; the assessment, when given, is kept instead of made anew.
#[derive(Serialize, Deserialize)]
pub struct CommentLine {
    #[serde(deserialize_with = "id_text")]
    pub id: String,
    #[serde(default, deserialize_with = "optional_id")]
    pub parent: Option<String>,
    pub article: String,
    pub author: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub website: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_agent: String,
    pub created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    pub status: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<Reason>>,
    /// What the avatar is drawn from (public, keyed by the deployment it comes from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_seed: Option<String>,
}

fn id_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Id::deserialize(d).map(|id| id.0)
}

fn optional_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Id>::deserialize(d)?
        .map(|id| id.0)
        .filter(|id| !id.is_empty()))
}

/// Reads every line of a JSON-lines file; blank lines are passed over.
pub fn read_jsonl(mut input: impl BufRead, emit: &mut Emit<'_>) -> Result<(), ReadError> {
    let mut line = String::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let read = input
            .read_line(&mut line)
            .map_err(|err| ReadError::malformed(format_args!("cannot read the input: {err}")))?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(&line).map_err(|err| {
            ReadError::malformed(format_args!("line {number} cannot be read: {err}"))
        })?;
        let item = match parsed {
            Line::Comment(c) => Item::Comment(Box::new(SourceComment {
                kept: Some(Kept {
                    id: Uuid::parse_str(&c.id).ok(),
                    updated: c.updated.as_deref().and_then(parse_time),
                    avatar_seed: c.avatar_seed,
                    assessment: match (c.score, c.verdict.as_deref().and_then(Verdict::parse)) {
                        (Some(score), Some(verdict)) => {
                            Some((score, verdict, c.reasons.unwrap_or_default()))
                        }
                        _ => None,
                    },
                }),
                id: c.id,
                parent: c.parent,
                link: c.article.clone(),
                article_id: c.article,
                author: c.author,
                email: c.email,
                website: c.website,
                ip: c.ip,
                user_agent: c.user_agent,
                created: parse_time(&c.created),
                status: CommentStatus::parse(&c.status),
                text: c.text,
                html: false,
            })),
            Line::Site { policy, .. } => Item::Setting(Setting::Policy(Box::new(policy))),
            Line::ClosedArticle {
                article, closed_at, ..
            } => Item::Setting(Setting::Closed {
                article,
                at: closed_at,
            }),
            Line::Block {
                block,
                value,
                note,
                expires_at,
                ..
            } => Item::Setting(Setting::Block {
                block,
                value,
                note,
                expires_at,
            }),
            Line::MailPages {
                confirm_url,
                unsubscribe_url,
            } => Item::Setting(Setting::MailPages(MailPages {
                confirm_url,
                unsubscribe_url,
            })),
            Line::Notice {
                email,
                events,
                digest_minutes,
                ..
            } => Item::Setting(Setting::Notice {
                email,
                events,
                digest_minutes,
            }),
            Line::Audit { .. } => Item::Skipped {
                id: None,
                reason: "an audit row (kept in the export only)",
            },
        };
        emit(item)?;
    }
}
