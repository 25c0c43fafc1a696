//! The validation of one submitted reply: every field parsed into its own type, every violation
//! collected so the host can fix them all in one round trip.
//!
//! A description is written for the host's developer, and must never echo the submitted value:
//! it may hold an email address or worse.

mod body;
mod checks;
mod client;
mod email;
mod keys;
mod name;
mod website;

use std::str::FromStr;

pub use body::CommentBody;
pub use client::{ClientInfo, FormInfo};
pub use email::Email;
pub use keys::{ArticleKey, IdempotencyKey, ReaderId};
pub use name::AuthorName;
pub use website::Website;

use crate::ids::CommentId;
use checks::truncate;
use client::{client_detail, non_empty, parse_form_token, parse_ip};

/// One field the host must fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    /// Where the problem is, as a path into the request: `author.email`.
    pub field: &'static str,
    /// What is wrong, as a short sentence: "is required".
    pub description: String,
}

/// The reply exactly as the host sent it (all fields may be empty).
///
/// No `Debug`: it holds the author's email in clear, and must not end up in a log.
#[derive(Clone, Copy, Default)]
pub struct RawReply<'a> {
    pub article: &'a str,
    pub parent_id: &'a str,
    pub author_name: &'a str,
    pub author_email: &'a str,
    pub author_website: &'a str,
    pub body: &'a str,
    pub ip: &'a str,
    pub user_agent: &'a str,
    pub referrer: &'a str,
    pub form_token: &'a str,
    pub honeypot: &'a str,
    pub idempotency_key: &'a str,
    /// The host's id of the signed-in reader, if it vouches for one.
    pub reader_id: &'a str,
}

/// A reply whose every field has been checked.
#[derive(Clone, Debug)]
pub struct ValidReply {
    pub article: ArticleKey,
    pub parent: Option<CommentId>,
    pub author: AuthorName,
    pub email: Email,
    pub website: Option<Website>,
    pub body: CommentBody,
    pub client: ClientInfo,
    pub form: FormInfo,
    pub idempotency_key: Option<IdempotencyKey>,
    /// The signed-in reader the host vouches for: the author's trust rests on their replies.
    pub reader: Option<ReaderId>,
}

/// Checks every field of `raw`, returning either the valid reply or every violation found.
pub fn validate(raw: &RawReply<'_>) -> Result<ValidReply, Vec<FieldViolation>> {
    let mut found = Violations::default();
    let article = found.check("article", ArticleKey::parse(raw.article));
    let parent = found.check("parent_id", optional(raw.parent_id, parse_parent_id));
    let author = found.check("author.name", AuthorName::parse(raw.author_name));
    let email = found.check("author.email", Email::parse(raw.author_email));
    let website = found.check(
        "author.website",
        optional(raw.author_website, Website::parse),
    );
    let body = found.check("body", CommentBody::parse(raw.body));
    let ip = found.check("client.ip", optional(raw.ip, parse_ip));
    let token = found.check("form.token", optional(raw.form_token, parse_form_token));
    let idempotency_key = found.check(
        "idempotency_key",
        optional(raw.idempotency_key, IdempotencyKey::parse),
    );
    let reader = found.check("reader_id", optional(raw.reader_id, ReaderId::parse));

    let (
        Some(article),
        Some(parent),
        Some(author),
        Some(email),
        Some(website),
        Some(body),
        Some(ip),
        Some(token),
        Some(idempotency_key),
        Some(reader),
    ) = (
        article,
        parent,
        author,
        email,
        website,
        body,
        ip,
        token,
        idempotency_key,
        reader,
    )
    else {
        return Err(found.0);
    };

    Ok(ValidReply {
        article,
        parent,
        author,
        email,
        website,
        body,
        client: ClientInfo {
            ip,
            user_agent: client_detail(raw.user_agent, ClientInfo::MAX_USER_AGENT_BYTES),
            referrer: client_detail(raw.referrer, ClientInfo::MAX_REFERRER_BYTES),
        },
        form: FormInfo {
            token,
            honeypot: non_empty(truncate(raw.honeypot, FormInfo::MAX_HONEYPOT_BYTES)),
        },
        idempotency_key,
        reader,
    })
}

#[derive(Default)]
struct Violations(Vec<FieldViolation>);

impl Violations {
    fn check<T>(&mut self, field: &'static str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(description) => {
                self.0.push(FieldViolation { field, description });
                None
            }
        }
    }
}

/// An optional field: absent when empty after trimming, otherwise parsed.
fn optional<T>(raw: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Option<T>, String> {
    if raw.trim().is_empty() {
        Ok(None)
    } else {
        parse(raw).map(Some)
    }
}

fn parse_parent_id(raw: &str) -> Result<CommentId, String> {
    CommentId::from_str(raw.trim()).map_err(|_| "must be a comment id".to_owned())
}

/// Replies to validate in tests: a valid one, and what a reply's violations are.
#[cfg(test)]
mod testing {
    use super::*;

    pub(super) fn good() -> RawReply<'static> {
        RawReply {
            article: "/2024/11/27/story",
            author_name: "Jane Doe",
            author_email: "jane@example.com",
            body: "Nice article.",
            ..RawReply::default()
        }
    }

    pub(super) fn violations(raw: &RawReply<'_>) -> Vec<(&'static str, String)> {
        match validate(raw) {
            Ok(_) => Vec::new(),
            Err(found) => found
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect(),
        }
    }

    pub(super) fn only_violation(raw: &RawReply<'_>) -> (&'static str, String) {
        let mut found = violations(raw);
        assert_eq!(found.len(), 1, "{found:?}");
        found.remove(0)
    }
}

#[cfg(test)]
mod tests {
    use super::{testing::*, *};

    #[test]
    fn a_minimal_reply_is_valid_and_optional_fields_are_absent() -> Result<(), Vec<FieldViolation>>
    {
        let reply = validate(&good())?;
        assert_eq!(reply.article.as_str(), "/2024/11/27/story");
        assert_eq!(reply.author.as_str(), "Jane Doe");
        assert_eq!(reply.email.as_str(), "jane@example.com");
        assert_eq!(reply.body.as_str(), "Nice article.");
        assert_eq!(reply.parent, None);
        assert_eq!(reply.website, None);
        assert_eq!(reply.client, ClientInfo::default());
        assert_eq!(reply.form, FormInfo::default());
        assert_eq!(reply.idempotency_key, None);
        Ok(())
    }

    #[test]
    fn a_complete_reply_keeps_every_field() -> Result<(), Vec<FieldViolation>> {
        let parent = CommentId::new();
        let parent_text = parent.to_string();
        let reply = validate(&RawReply {
            parent_id: &parent_text,
            author_website: "https://jane.example.com/",
            ip: "2001:db8::1",
            user_agent: "Mozilla/5.0",
            referrer: "https://news.example.com/",
            form_token: "rg_form_abc",
            honeypot: " ",
            idempotency_key: "req-42",
            ..good()
        })?;
        assert_eq!(reply.parent, Some(parent));
        assert_eq!(
            reply.website.as_ref().map(Website::as_str),
            Some("https://jane.example.com/")
        );
        assert_eq!(reply.client.ip, "2001:db8::1".parse().ok());
        assert_eq!(reply.client.user_agent.as_deref(), Some("Mozilla/5.0"));
        assert_eq!(
            reply.client.referrer.as_deref(),
            Some("https://news.example.com/")
        );
        assert_eq!(reply.form.token.as_deref(), Some("rg_form_abc"));
        assert_eq!(reply.form.honeypot.as_deref(), Some(" "));
        assert_eq!(
            reply.idempotency_key.as_ref().map(IdempotencyKey::as_str),
            Some("req-42")
        );
        Ok(())
    }

    #[test]
    fn an_empty_reply_reports_every_required_field_at_once() {
        assert_eq!(
            violations(&RawReply::default()),
            vec![
                ("article", "is required".to_owned()),
                ("author.name", "is required".to_owned()),
                ("author.email", "is required".to_owned()),
                ("body", "is required".to_owned()),
            ]
        );
    }

    #[test]
    fn several_bad_fields_are_reported_together_with_their_paths() {
        let found = violations(&RawReply {
            parent_id: "not-a-uuid",
            author_email: "jane",
            author_website: "javascript:alert(1)",
            ip: "999.1.1.1",
            idempotency_key: "clé",
            ..good()
        });
        let fields: Vec<_> = found.iter().map(|(field, _)| *field).collect();
        assert_eq!(
            fields,
            [
                "parent_id",
                "author.email",
                "author.website",
                "client.ip",
                "idempotency_key"
            ]
        );
    }

    #[test]
    fn whitespace_only_required_fields_are_required() {
        let found = violations(&RawReply {
            article: "  \t ",
            author_name: "\u{3000}\n",
            author_email: "   ",
            body: "\r\n\r\n  ",
            ..RawReply::default()
        });
        assert_eq!(found.len(), 4);
        assert!(found.iter().all(|(_, d)| d == "is required"), "{found:?}");
    }

    #[test]
    fn descriptions_never_echo_the_submitted_value() {
        let found = violations(&RawReply {
            author_email: "secret.person@nodot",
            ..good()
        });
        assert!(
            found.iter().all(|(_, d)| !d.contains("secret")),
            "{found:?}"
        );
    }

    #[test]
    fn input_is_trimmed_and_composed_to_nfc() -> Result<(), String> {
        assert_eq!(AuthorName::parse("  Rene\u{301}  ")?.as_str(), "René");
        assert_eq!(ArticleKey::parse("cafe\u{301}")?.as_str(), "café");
        assert_eq!(CommentBody::parse("e\u{301}")?.as_str(), "\u{e9}");
        Ok(())
    }

    /// Trimming would leave each of these fields short; a field sent far past its limit is
    /// refused from its length, before that work, with the limit's usual description.
    #[test]
    fn fields_sent_far_past_their_limits_are_refused_by_size_before_trimming() {
        let pad = " ".repeat(3 * 1024 * 1024);
        let article = format!("story{pad}");
        let name = format!("Jane{pad}");
        let email = format!("jane@example.com{pad}");
        let website = format!("https://jane.example.com/{pad}");
        let body = format!("Nice article.{pad}");
        let key = format!("req-42{pad}");
        let found = violations(&RawReply {
            article: &article,
            author_name: &name,
            author_email: &email,
            author_website: &website,
            body: &body,
            idempotency_key: &key,
            ..good()
        });
        let expected = [
            ("article", "must be at most 200 bytes"),
            ("author.name", "must be at most 100 characters"),
            ("author.email", "must be at most 254 bytes"),
            ("author.website", "must be at most 200 bytes"),
            ("body", "must be at most 10000 characters"),
            ("idempotency_key", "must be at most 128 bytes"),
        ];
        let expected: Vec<_> = expected
            .into_iter()
            .map(|(field, description)| (field, description.to_owned()))
            .collect();
        assert_eq!(found, expected);
        // Within the room a limit leaves, surrounding spaces are trimmed as before.
        let padded = format!("  Jane{}", &pad[..300]);
        assert!(
            validate(&RawReply {
                author_name: &padded,
                ..good()
            })
            .is_ok()
        );
    }

    #[test]
    fn a_parent_id_must_be_a_comment_id() {
        assert_eq!(
            only_violation(&RawReply {
                parent_id: "42",
                ..good()
            }),
            ("parent_id", "must be a comment id".to_owned())
        );
    }

    #[test]
    fn a_reply_can_be_logged_without_its_email() -> Result<(), Vec<FieldViolation>> {
        let shown = format!("{:?}", validate(&good())?);
        assert!(!shown.contains("jane@"), "{shown}");
        Ok(())
    }
}
