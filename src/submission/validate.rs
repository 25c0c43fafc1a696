//! The validation of one submitted reply: every field parsed into its own type, every violation
//! collected so the host can fix them all in one round trip.
//!
//! A description is written for the host's developer, and must never echo the submitted value:
//! it may hold an email address or worse.

use std::{fmt, net::IpAddr, str::FromStr};

use email_address::EmailAddress;
use unicode_normalization::UnicodeNormalization;

use crate::{ids::CommentId, privacy};

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
}

/// What the host knows about the reader's browser; used as spam signals, never refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    /// At most [`ClientInfo::MAX_USER_AGENT_BYTES`]; longer values are cut.
    pub user_agent: Option<String>,
    /// At most [`ClientInfo::MAX_REFERRER_BYTES`]; longer values are cut.
    pub referrer: Option<String>,
}

impl ClientInfo {
    pub const MAX_USER_AGENT_BYTES: usize = 512;
    pub const MAX_REFERRER_BYTES: usize = 2_000;
}

/// What the reply's form carried back besides the reply itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FormInfo {
    /// The token from `PrepareForm`, at most [`FormInfo::MAX_TOKEN_BYTES`]; checked later.
    pub token: Option<String>,
    /// The hidden field only bots fill in, kept byte for byte (whitespace is a signal too), cut
    /// at [`FormInfo::MAX_HONEYPOT_BYTES`]. It is never a reason to refuse the reply here:
    /// refusing would tell the bot which field gave it away.
    pub honeypot: Option<String>,
}

impl FormInfo {
    pub const MAX_TOKEN_BYTES: usize = 1_000;
    pub const MAX_HONEYPOT_BYTES: usize = 1_000;
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

/// Trimmed and in NFC, so that visually identical input compares and counts alike; an error if
/// nothing is left.
fn required(raw: &str) -> Result<String, String> {
    let cleaned: String = raw.trim().nfc().collect();
    if cleaned.is_empty() {
        Err("is required".to_owned())
    } else {
        Ok(cleaned)
    }
}

fn at_most_bytes(text: &str, max: usize) -> Result<(), String> {
    if text.len() > max {
        Err(format!("must be at most {max} bytes"))
    } else {
        Ok(())
    }
}

fn at_most_chars(text: &str, max: usize) -> Result<(), String> {
    if text.chars().count() > max {
        Err(format!("must be at most {max} characters"))
    } else {
        Ok(())
    }
}

fn no_control_chars(text: &str) -> Result<(), String> {
    if text.chars().any(char::is_control) {
        Err("must not contain control characters".to_owned())
    } else {
        Ok(())
    }
}

/// The longest prefix of `text` that fits in `max` bytes without splitting a character.
fn truncate(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A client detail as it is kept: never refused, but without control characters (PostgreSQL
/// cannot store NUL in text, and no backend should hold what the other could not), with any email
/// address or phone number masked (a referrer can carry `?email=`, a crawler's agent its owner's
/// address), and cut to `max` bytes.
fn client_detail(raw: &str, max: usize) -> Option<String> {
    let text: String = raw.chars().filter(|c| !c.is_control()).collect();
    non_empty(truncate(&privacy::mask_contacts(text.trim()), max))
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

fn parse_parent_id(raw: &str) -> Result<CommentId, String> {
    CommentId::from_str(raw.trim()).map_err(|_| "must be a comment id".to_owned())
}

fn parse_ip(raw: &str) -> Result<IpAddr, String> {
    raw.trim()
        .parse()
        .map_err(|_| "must be an IPv4 or IPv6 address".to_owned())
}

fn parse_form_token(raw: &str) -> Result<String, String> {
    let token = raw.trim();
    at_most_bytes(token, FormInfo::MAX_TOKEN_BYTES)?;
    Ok(token.to_owned())
}

/// The host's key for the article a reply belongs to, such as its URL path or database id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ArticleKey(String);

impl ArticleKey {
    pub const MAX_BYTES: usize = 200;

    pub fn parse(raw: &str) -> Result<ArticleKey, String> {
        let key = required(raw)?;
        at_most_bytes(&key, Self::MAX_BYTES)?;
        no_control_chars(&key)?;
        Ok(ArticleKey(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name an author signs with, shown to every reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorName(String);

impl AuthorName {
    /// Counted in characters, not bytes, so names in any script get the same room.
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<AuthorName, String> {
        let name = required(raw)?;
        at_most_chars(&name, Self::MAX_CHARS)?;
        no_control_chars(&name)?;
        // Overrides and isolates can make a name display as someone else's, or reorder the
        // text printed after it on the page.
        if name.chars().any(is_bidi_control) {
            return Err("must not contain bidirectional override or isolate characters".to_owned());
        }
        if name.chars().all(is_invisible) {
            return Err("must contain a visible character".to_owned());
        }
        // Every reader sees the name; the form promises the email is never shown.
        if privacy::mask_contacts(&name) != name {
            return Err(
                "must not contain an email address or phone number: the name is shown to every \
                 reader"
                    .to_owned(),
            );
        }
        Ok(AuthorName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that draw nothing yet are not whitespace, so `trim` keeps them: a name made only
/// of these looks empty on the page.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2060}'..='\u{2064}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
    )
}

/// An author's email address: a bare address with a dotted domain, the domain lowercased.
///
/// `Debug` shows it masked, so a reply can be logged without leaking it.
#[derive(Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// The limit of a forward path in SMTP (RFC 5321, with erratum 1690).
    pub const MAX_BYTES: usize = 254;

    pub fn parse(raw: &str) -> Result<Email, String> {
        let text = required(raw)?;
        at_most_bytes(&text, Self::MAX_BYTES)?;
        let options = email_address::Options::default()
            .without_display_text()
            .without_domain_literal()
            .with_required_tld();
        let parsed = match EmailAddress::parse_with_options(&text, options) {
            Ok(parsed) => parsed,
            Err(email_address::Error::DomainTooFew) => {
                return Err("must have a domain with a dot, such as example.com".to_owned());
            }
            Err(email_address::Error::UnsupportedDisplayName) => {
                return Err("must be a bare address, without a display name".to_owned());
            }
            Err(_) => return Err("must be an email address such as jane@example.com".to_owned()),
        };
        // The parser also reads forms such as `<jane@example.com>`; only the bare address is
        // stored, so anything else is refused rather than silently rewritten.
        if parsed.as_str() != text {
            return Err("must be a bare address, without a display name".to_owned());
        }
        let Some((local, domain)) = text.rsplit_once('@') else {
            return Err("must be an email address such as jane@example.com".to_owned());
        };
        Ok(Email(format!("{local}@{}", domain.to_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form author hashes are computed from; see [`privacy::normalize_email_for_hash`].
    pub fn normalized(&self) -> String {
        privacy::normalize_email_for_hash(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", privacy::mask_email(&self.0))
    }
}

/// An author's home page: an absolute http(s) URL with a host and no credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Website {
    given: String,
    url: url::Url,
}

impl Website {
    pub const MAX_BYTES: usize = 200;

    pub fn parse(raw: &str) -> Result<Website, String> {
        let given = required(raw)?;
        at_most_bytes(&given, Self::MAX_BYTES)?;
        // The URL parser silently drops tabs and newlines; refusing them keeps `as_str` and the
        // parsed URL the same address.
        no_control_chars(&given)?;
        if given.chars().any(char::is_whitespace) {
            return Err("must not contain spaces".to_owned());
        }
        let not_a_web_url = || "must be an http or https URL with a host".to_owned();
        let url = url::Url::parse(&given).map_err(|_| not_a_web_url())?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(not_a_web_url());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not contain a user name or password".to_owned());
        }
        // `https://example.com/?contact=jane@example.com`: shown to every reader, like the name.
        if privacy::mask_contacts(&given) != given {
            return Err(
                "must not contain an email address: the website is shown to every reader"
                    .to_owned(),
            );
        }
        Ok(Website { given, url })
    }

    /// The address as the author typed it (trimmed, NFC), so it is shown the way they wrote it.
    pub fn as_str(&self) -> &str {
        &self.given
    }

    /// The parsed address, for code that needs its host: lowercased, IDNs in punycode.
    pub fn url(&self) -> &url::Url {
        &self.url
    }
}

/// The text of a reply, with line breaks as `\n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommentBody(String);

impl CommentBody {
    pub const MAX_CHARS: usize = 10_000;
    /// The size of WordPress's `comment_content` limit, so replies can move between the two.
    pub const MAX_BYTES: usize = 65_525;

    pub fn parse(raw: &str) -> Result<CommentBody, String> {
        let body = required(&raw.replace("\r\n", "\n").replace('\r', "\n"))?;
        if body
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(
                "must not contain control characters other than newlines and tabs".to_owned(),
            );
        }
        at_most_chars(&body, Self::MAX_CHARS)?;
        Ok(CommentBody(body))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// A character is at most 4 bytes, so the character limit alone keeps a body within the byte
// limit; should either constant change, this stops the build rather than let it slip.
const _: () = assert!(CommentBody::MAX_CHARS * 4 <= CommentBody::MAX_BYTES);

/// The host's key for one submission, so a retried request is not stored twice.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_BYTES: usize = 128;

    pub fn parse(raw: &str) -> Result<IdempotencyKey, String> {
        let key = required(raw)?;
        at_most_bytes(&key, Self::MAX_BYTES)?;
        if !key.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
            return Err("must contain only printable ASCII characters".to_owned());
        }
        Ok(IdempotencyKey(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> RawReply<'static> {
        RawReply {
            article: "/2024/11/27/story",
            author_name: "Jane Doe",
            author_email: "jane@example.com",
            body: "Nice article.",
            ..RawReply::default()
        }
    }

    fn violations(raw: &RawReply<'_>) -> Vec<(&'static str, String)> {
        match validate(raw) {
            Ok(_) => Vec::new(),
            Err(found) => found
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect(),
        }
    }

    fn only_violation(raw: &RawReply<'_>) -> (&'static str, String) {
        let mut found = violations(raw);
        assert_eq!(found.len(), 1, "{found:?}");
        found.remove(0)
    }

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

    #[test]
    fn an_article_key_at_the_limit_passes_and_one_byte_more_fails() {
        assert!(ArticleKey::parse(&"a".repeat(ArticleKey::MAX_BYTES)).is_ok());
        assert_eq!(
            ArticleKey::parse(&"a".repeat(ArticleKey::MAX_BYTES + 1)),
            Err("must be at most 200 bytes".to_owned())
        );
        // The limit is the database's, so it counts bytes: 101 two-byte characters are too many.
        assert!(ArticleKey::parse(&"é".repeat(101)).is_err());
    }

    #[test]
    fn an_article_key_with_a_nul_or_other_control_character_is_refused() {
        for key in ["a\0b", "a\u{7}b", "line\nbreak", "\u{0}"] {
            assert_eq!(
                ArticleKey::parse(key),
                Err("must not contain control characters".to_owned()),
                "{key:?}"
            );
        }
    }

    #[test]
    fn a_name_of_exactly_100_multibyte_characters_passes_and_101_fail() {
        assert!(AuthorName::parse(&"é".repeat(100)).is_ok());
        assert!(AuthorName::parse(&"🦀".repeat(100)).is_ok());
        assert_eq!(
            AuthorName::parse(&"é".repeat(101)),
            Err("must be at most 100 characters".to_owned())
        );
    }

    #[test]
    fn emoji_names_are_fine() -> Result<(), String> {
        for name in ["🦀 Ferris", "👨‍👩‍👧", "🏳️‍🌈", "Zoë 🌻"] {
            assert_eq!(AuthorName::parse(name)?.as_str(), name);
        }
        Ok(())
    }

    #[test]
    fn a_name_with_control_characters_is_refused() {
        for name in ["Jane\0", "Jane\nDoe", "Jane\u{1b}[31m", "Jane\u{85}Doe"] {
            assert_eq!(
                AuthorName::parse(name),
                Err("must not contain control characters".to_owned()),
                "{name:?}"
            );
        }
    }

    #[test]
    fn a_name_with_a_bidirectional_override_is_refused() {
        for name in ["Jane\u{202E}eoD", "\u{2066}admin\u{2069}", "\u{202A}x"] {
            assert!(AuthorName::parse(name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn a_name_of_only_zero_width_characters_is_refused() {
        for name in ["\u{200B}", "\u{200B}\u{200D}\u{FEFF}", "\u{3164}"] {
            assert_eq!(
                AuthorName::parse(name),
                Err("must contain a visible character".to_owned()),
                "{name:?}"
            );
        }
        assert!(AuthorName::parse("Jane\u{200B}").is_ok());
    }

    #[test]
    fn a_name_with_an_email_address_or_phone_number_is_refused() {
        for name in [
            "jane@example.com",
            "Jane (jane.doe@example.org)",
            "Jane, call 020 7946 0958",
        ] {
            assert_eq!(
                AuthorName::parse(name).map_err(|e| e.starts_with("must not contain an email")),
                Err(true),
                "{name:?}"
            );
        }
        for name in [
            "Jane @ the library",
            "J. Doe, 1984",
            "Agent 007",
            "jane.example.com",
        ] {
            assert!(AuthorName::parse(name).is_ok(), "{name:?}");
        }
    }

    #[test]
    fn a_plain_email_is_accepted() -> Result<(), String> {
        for email in [
            "jane@example.com",
            "jane.doe+news@mail.example.co.uk",
            "zoë@exämple.de",
        ] {
            assert_eq!(Email::parse(email)?.as_str(), email);
        }
        Ok(())
    }

    #[test]
    fn an_email_domain_is_lowercased_but_its_local_part_kept() -> Result<(), String> {
        let email = Email::parse("JANE@EXAMPLE.COM")?;
        assert_eq!(email.as_str(), "JANE@example.com");
        assert_eq!(email.normalized(), "jane@example.com");
        Ok(())
    }

    #[test]
    fn an_email_with_a_display_name_is_refused() {
        for email in [
            "Jane <jane@example.com>",
            "<jane@example.com>",
            "\"Jane\" <jane@example.com>",
        ] {
            assert!(Email::parse(email).is_err(), "{email}");
        }
        assert_eq!(
            Email::parse("Jane <jane@example.com>"),
            Err("must be a bare address, without a display name".to_owned())
        );
    }

    #[test]
    fn an_email_with_two_ats_is_refused() {
        assert!(Email::parse("jane@doe@example.com").is_err());
    }

    #[test]
    fn an_email_without_a_dot_in_its_domain_is_refused() {
        assert_eq!(
            Email::parse("jane@localhost"),
            Err("must have a domain with a dot, such as example.com".to_owned())
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        for email in [
            "jane",
            "@example.com",
            "jane@",
            "jane@.com",
            "jane@[192.0.2.1]",
            "ja ne@example.com",
            "jane@exa mple.com",
            "jane\0@example.com",
        ] {
            assert!(Email::parse(email).is_err(), "{email:?}");
        }
    }

    #[test]
    fn an_email_over_254_bytes_is_refused() {
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(200));
        assert_eq!(
            Email::parse(&long),
            Err("must be at most 254 bytes".to_owned())
        );
    }

    #[test]
    fn an_email_is_masked_in_debug_output() -> Result<(), String> {
        let shown = format!("{:?}", Email::parse("jane@example.com")?);
        assert_eq!(shown, "Email(j•••@example.com)");
        Ok(())
    }

    #[test]
    fn an_http_or_https_website_is_accepted_as_given() -> Result<(), String> {
        for site in [
            "https://example.com",
            "http://Example.com/~jane?x=1#top",
            "https://exämple.de/",
        ] {
            assert_eq!(Website::parse(site)?.as_str(), site);
        }
        assert_eq!(
            Website::parse("https://EXÄMPLE.de")?.url().host_str(),
            Some("xn--exmple-cua.de")
        );
        Ok(())
    }

    #[test]
    fn a_website_of_another_scheme_or_without_a_host_is_refused() {
        for site in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "ftp://example.com",
            "example.com",
            "https://",
            "mailto:jane@example.com",
        ] {
            assert_eq!(
                Website::parse(site),
                Err("must be an http or https URL with a host".to_owned()),
                "{site}"
            );
        }
    }

    #[test]
    fn a_website_with_credentials_is_refused() {
        for site in ["https://user:pass@example.com", "https://user@example.com"] {
            assert_eq!(
                Website::parse(site),
                Err("must not contain a user name or password".to_owned())
            );
        }
    }

    #[test]
    fn a_website_with_an_email_address_is_refused() {
        for site in [
            "https://example.com/?contact=jane@example.com",
            "https://example.com/jane@example.org/about",
        ] {
            assert_eq!(
                Website::parse(site),
                Err(
                    "must not contain an email address: the website is shown to every reader"
                        .to_owned()
                ),
                "{site}"
            );
        }
        // Digits in a link are never taken for a phone number.
        assert!(Website::parse("https://example.com/2026/11/27/story-0207946095").is_ok());
    }

    #[test]
    fn a_website_with_spaces_or_control_characters_is_refused() {
        assert!(Website::parse("https://example.com/a b").is_err());
        assert!(Website::parse("https://exa\tmple.com").is_err());
        assert!(Website::parse("https://example.com/\u{0}").is_err());
    }

    #[test]
    fn a_website_over_200_bytes_is_refused() {
        let long = format!("https://example.com/{}", "a".repeat(181));
        assert_eq!(
            Website::parse(&long),
            Err("must be at most 200 bytes".to_owned())
        );
        assert!(Website::parse(&long[..200]).is_ok());
    }

    #[test]
    fn a_body_of_exactly_the_limit_passes_and_one_more_character_fails() {
        let at_limit = "é".repeat(CommentBody::MAX_CHARS);
        assert!(CommentBody::parse(&at_limit).is_ok());
        assert_eq!(
            CommentBody::parse(&format!("{at_limit}é")),
            Err("must be at most 10000 characters".to_owned())
        );
    }

    #[test]
    fn a_body_of_four_byte_characters_at_the_limit_fits_the_byte_limit() -> Result<(), String> {
        let body = CommentBody::parse(&"🦀".repeat(CommentBody::MAX_CHARS))?;
        assert!(body.as_str().len() <= CommentBody::MAX_BYTES);
        Ok(())
    }

    #[test]
    fn body_line_endings_become_newlines_and_tabs_survive() -> Result<(), String> {
        let body = CommentBody::parse("  one\r\ntwo\rthree\n\tfour  \r\n")?;
        assert_eq!(body.as_str(), "one\ntwo\nthree\n\tfour");
        Ok(())
    }

    #[test]
    fn a_body_with_nul_or_other_control_characters_is_refused() {
        for body in [
            "a\0b",
            "bell\u{7}",
            "esc\u{1b}[2J",
            "\u{7f}",
            "form\u{c}feed",
        ] {
            assert_eq!(
                CommentBody::parse(body),
                Err("must not contain control characters other than newlines and tabs".to_owned()),
                "{body:?}"
            );
        }
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
    fn a_client_ip_must_be_an_ip_address() {
        assert_eq!(
            only_violation(&RawReply {
                ip: "example.com",
                ..good()
            }),
            ("client.ip", "must be an IPv4 or IPv6 address".to_owned())
        );
        assert!(
            validate(&RawReply {
                ip: " 192.0.2.7 ",
                ..good()
            })
            .is_ok()
        );
    }

    #[test]
    fn a_long_user_agent_and_referrer_are_cut_on_a_character_boundary()
    -> Result<(), Vec<FieldViolation>> {
        let agent = format!("a{}", "é".repeat(600));
        let referrer = "ü".repeat(1_500);
        let reply = validate(&RawReply {
            user_agent: &agent,
            referrer: &referrer,
            ..good()
        })?;
        let agent = reply.client.user_agent.unwrap_or_default();
        assert_eq!(agent.len(), 511);
        assert!(agent.starts_with("aé"));
        assert_eq!(reply.client.referrer.map(|r| r.len()), Some(2_000));
        Ok(())
    }

    #[test]
    fn contacts_in_the_referrer_and_user_agent_are_masked_and_browsers_agents_kept()
    -> Result<(), Vec<FieldViolation>> {
        let reply = validate(&RawReply {
            user_agent: "ExampleBot/2.1 (+mailto:ops@bots.example; +44 20 7946 0958)",
            referrer: "https://mail.example.com/news?to=Jane.Doe@example.org&id=7",
            ..good()
        })?;
        assert_eq!(
            reply.client.user_agent.as_deref(),
            Some("ExampleBot/2.1 (+mailto:[email hidden]; [phone hidden])")
        );
        assert_eq!(
            reply.client.referrer.as_deref(),
            Some("https://mail.example.com/news?to=[email hidden]&id=7")
        );
        for agent in [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/131.0.0.0 Safari/537.36",
            "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) \
             AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.135 \
             Mobile Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        ] {
            let reply = validate(&RawReply {
                user_agent: agent,
                ..good()
            })?;
            assert_eq!(reply.client.user_agent.as_deref(), Some(agent));
        }
        Ok(())
    }

    #[test]
    fn a_user_agent_is_never_refused() {
        assert!(
            validate(&RawReply {
                user_agent: "bad\0agent\u{1b}",
                ..good()
            })
            .is_ok()
        );
    }

    #[test]
    fn control_characters_are_dropped_from_the_user_agent_and_referrer()
    -> Result<(), Vec<FieldViolation>> {
        let reply = validate(&RawReply {
            user_agent: "bad\0agent\u{1b}",
            referrer: "\u{7}https://news.example.com/\n",
            ..good()
        })?;
        assert_eq!(reply.client.user_agent.as_deref(), Some("badagent"));
        assert_eq!(
            reply.client.referrer.as_deref(),
            Some("https://news.example.com/")
        );
        let reply = validate(&RawReply {
            user_agent: "\0\0",
            ..good()
        })?;
        assert_eq!(reply.client.user_agent, None);
        Ok(())
    }

    #[test]
    fn a_form_token_over_1000_bytes_is_refused() {
        let long = "t".repeat(1_001);
        assert_eq!(
            only_violation(&RawReply {
                form_token: &long,
                ..good()
            }),
            ("form.token", "must be at most 1000 bytes".to_owned())
        );
    }

    #[test]
    fn a_filled_honeypot_is_kept_as_given_and_cut_at_1000_bytes() -> Result<(), Vec<FieldViolation>>
    {
        let filled = format!("  {}", "x".repeat(2_000));
        let reply = validate(&RawReply {
            honeypot: &filled,
            ..good()
        })?;
        let honeypot = reply.form.honeypot.unwrap_or_default();
        assert_eq!(honeypot.len(), 1_000);
        assert!(honeypot.starts_with("  x"));
        Ok(())
    }

    #[test]
    fn an_idempotency_key_must_be_short_printable_ascii() {
        assert!(IdempotencyKey::parse("order 42/retry-1").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(128)).is_ok());
        assert_eq!(
            IdempotencyKey::parse(&"k".repeat(129)),
            Err("must be at most 128 bytes".to_owned())
        );
        for key in ["clé", "a\tb", "a\0b"] {
            assert_eq!(
                IdempotencyKey::parse(key),
                Err("must contain only printable ASCII characters".to_owned()),
                "{key:?}"
            );
        }
    }

    #[test]
    fn a_reply_can_be_logged_without_its_email() -> Result<(), Vec<FieldViolation>> {
        let shown = format!("{:?}", validate(&good())?);
        assert!(!shown.contains("jane@"), "{shown}");
        Ok(())
    }
}
