//! The six families of targets: what each generates, what it runs, and how its slowest input
//! is described.

use std::{fmt, time::Duration};

use prost::{
    Message,
    encoding::{self, WireType},
};

use super::generate::Gen;
use crate::{
    api::{
        fuzzing::{self, MESSAGES, PageEnd},
        guard::{COMMENTS_MAX_MESSAGE_BYTES, MODERATION_MAX_MESSAGE_BYTES},
        wire,
    },
    domain::{self, BlockKind, Blocked, RawReply, ValidReply},
    privacy, proto,
    spam::{
        Assessor, Facts, FormCheck, LearnedStats, MAX_LIST_ENTRIES, Policy, RULES, RecentReply,
        Script,
    },
    store::ThreadOrder,
};

/// One family of targets.
pub trait Target {
    type Input: fmt::Debug;

    /// Case's input, from its generator alone.
    fn generate(&self, g: &mut Gen) -> Self::Input;

    /// Runs the code under test on `input`; a panic is a finding.
    fn run(&self, input: &Self::Input);

    /// A short description for the report: the size of what matters and how it starts.
    fn describe(&self, input: &Self::Input) -> String;
}

/// `text`'s size and its first characters, escaped.
pub fn describe_text(what: &str, text: &str) -> String {
    let prefix: String = text.chars().take(24).collect();
    let more = if prefix.len() < text.len() { "…" } else { "" };
    format!(
        "{what}: {} bytes, {} chars, \"{}{more}\"",
        text.len(),
        text.chars().count(),
        prefix.escape_debug()
    )
}

fn describe_bytes(what: &str, bytes: &[u8]) -> String {
    let prefix: String = bytes.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 16 { "…" } else { "" };
    format!("{what}: {} bytes, {prefix}{more}", bytes.len())
}

const ARTICLES: &[&str] = &["/2026/11/budget", "story-42", "café/ünï", "a"];
const NAMES: &[&str] = &[
    "Jane Doe",
    "Zoë 🌻",
    "\u{202B}\u{0633}\u{0627}\u{0631}\u{0629}\u{202C}",
    "J. Doe, 1984",
];
const EMAILS: &[&str] = &[
    "jane@example.com",
    "jane.doe+news@mail.example.co.uk",
    "zoë@exämple.de",
    "JANE@EXAMPLE.COM",
];
const WEBSITES: &[&str] = &[
    "https://jane.example.com/",
    "http://Example.com/~jane?x=1#top",
    "https://exämple.de/",
    "",
];
const BODIES: &[&str] = &[
    "Nice article.",
    "Good piece. Sources: https://example.org/a and https://example.org/b",
    "Call me on 020 7946 0958 or write to jane@example.com",
    "Line one\r\nline two\n\n\tindented",
];
const IPS: &[&str] = &["192.0.2.7", "2001:db8::1", "::ffff:192.0.2.7", ""];
const AGENTS: &[&str] = &["Mozilla/5.0", "curl/8.0 (bot@example.com)", ""];
const REFERRERS: &[&str] = &["https://news.example.com/?email=jane@example.com", ""];
const TOKENS: &[&str] = &["rg_form_abc", ""];
const WEBHOOK_URLS: &[&str] = &[
    "https://hooks.example.com/replyguard",
    "https://203.0.113.9:8443/in?x=1",
    "http://hooks.example.com/",
    "https://127.0.0.1/",
    "https://[::ffff:10.0.0.1]/",
    "https://user:pw@hooks.example.com/",
    "",
];
const EVENTS: &[&str] = &[
    "comment.held",
    "comment.spam,comment.approved",
    "article.closed, article.reopened",
    "comment.held,nope",
    "",
];
const KEYS: &[&str] = &["req-42", "order 42/retry-1", ""];
const READERS: &[&str] = &["account-17", "user@example.com", ""];

/// How many of [`MESSAGES`] the `Comments` service takes; the rest are `Moderation`'s, and
/// `ListCommentsResponse`, which `replyctl` reads from a server it trusts as much.
const COMMENTS_MESSAGES: usize = 6;

/// Request decoding: each client message from arbitrary, structured and mutated bytes, read
/// as its handler reads it.
pub struct Requests;

pub struct RequestCase {
    message: usize,
    bytes: Vec<u8>,
}

impl fmt::Debug for RequestCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestCase")
            .field("message", &MESSAGES.get(self.message))
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl Target for Requests {
    type Input = RequestCase;

    fn generate(&self, g: &mut Gen) -> RequestCase {
        let message = g.below(MESSAGES.len());
        let name = MESSAGES[message];
        let mut bytes = match g.below(20) {
            0..3 => g.bytes(),
            3..11 => wire_message(g, 0),
            _ => structured(g, name).unwrap_or_else(|| wire_message(g, 0)),
        };
        if g.chance(0.35) {
            bytes = g.mutate_bytes(bytes);
        }
        // The server refuses a larger message unread.
        let limit = if message < COMMENTS_MESSAGES {
            COMMENTS_MAX_MESSAGE_BYTES
        } else {
            MODERATION_MAX_MESSAGE_BYTES
        };
        bytes.truncate(limit);
        RequestCase { message, bytes }
    }

    fn run(&self, input: &RequestCase) {
        fuzzing::read_request(input.message, &input.bytes);
    }

    fn describe(&self, input: &RequestCase) -> String {
        describe_bytes(MESSAGES[input.message], &input.bytes)
    }
}

/// Protobuf fields of any number and wire type, strings from the field generators, nested
/// messages two deep.
fn wire_message(g: &mut Gen, depth: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    for _ in 0..g.below(10) {
        let tag = if g.chance(0.9) {
            1 + g.below(22) as u32
        } else {
            1 + g.u32() % 536_870_911
        };
        match g.below(10) {
            0..5 => {
                let text = match g.below(6) {
                    0 => g.uuid_text(),
                    1 => g.token_text(),
                    2 => g.field(ARTICLES),
                    3 => g.field(EMAILS),
                    _ => g.text(),
                };
                encoding::string::encode(tag, &text, &mut buf);
            }
            5 | 6 => {
                let value = if g.chance(0.8) {
                    g.below(8) as u64
                } else {
                    g.u64()
                };
                encoding::uint64::encode(tag, &value, &mut buf);
            }
            7 if depth < 2 => {
                let nested = wire_message(g, depth + 1);
                encoding::bytes::encode(tag, &nested, &mut buf);
            }
            8 => {
                encoding::encode_key(tag, WireType::SixtyFourBit, &mut buf);
                buf.extend_from_slice(&g.u64().to_le_bytes());
            }
            _ => {
                encoding::encode_key(tag, WireType::ThirtyTwoBit, &mut buf);
                buf.extend_from_slice(&g.u32().to_le_bytes());
            }
        }
    }
    buf
}

/// A well-formed message of the calls that carry the most, with fields that are mostly
/// valid, so that most get past decoding and deep into the reading.
fn structured(g: &mut Gen, name: &str) -> Option<Vec<u8>> {
    Some(match name {
        "SubmitComment" => submission(g).encode_to_vec(),
        "UpdatePolicy" => proto::UpdatePolicyRequest {
            site: g.text(),
            policy: Some(policy_update(g)),
        }
        .encode_to_vec(),
        "CountComments" => proto::CountCommentsRequest {
            articles: (0..g.size().min(600)).map(|_| g.field(ARTICLES)).collect(),
        }
        .encode_to_vec(),
        "Moderate" => proto::ModerateRequest {
            ids: (0..g.size().min(1_100)).map(|_| g.uuid_text()).collect(),
            action: g.below(6) as i32,
            note: g.text(),
            expected_status: g.chance(0.5).then(|| g.below(6) as i32),
        }
        .encode_to_vec(),
        "Block" | "Unblock" => proto::BlockRequest {
            kind: g.below(6) as i32,
            value: g.field(&["203.0.113.7", "spam.example", &"ab".repeat(32)]),
            email: if g.chance(0.3) {
                g.field(EMAILS)
            } else {
                String::new()
            },
            note: g.text(),
            ..Default::default()
        }
        .encode_to_vec(),
        "AddWebhook" => proto::AddWebhookRequest {
            site: g.text(),
            url: g.field(WEBHOOK_URLS),
            events: (0..g.below(4)).map(|_| g.field(EVENTS)).collect(),
            note: g.text(),
            format: g.below(4) as i32,
        }
        .encode_to_vec(),
        "ListDeliveries" => proto::ListDeliveriesRequest {
            site: g.text(),
            webhook_id: if g.chance(0.5) {
                g.uuid_text()
            } else {
                String::new()
            },
            failed_only: g.chance(0.5),
            page_size: g.u32(),
            page_token: if g.chance(0.5) {
                g.uuid_text()
            } else {
                g.token_text()
            },
        }
        .encode_to_vec(),
        "ListCommentsResponse" => {
            let comments: Vec<proto::Comment> = (0..g.below(5))
                .map(|_| proto::Comment {
                    id: g.uuid_text(),
                    article: g.field(ARTICLES),
                    author_name: g.field(NAMES),
                    body: g.field(BODIES),
                    body_html: g.text(),
                    depth: g.u32(),
                    ..Default::default()
                })
                .collect();
            wire::ListCommentsResponse::encoded(
                wire::encode_comments(comments),
                g.token_text(),
                g.u64(),
                g.chance(0.5),
            )
            .encode_to_vec()
        }
        _ => {
            let mut bytes = fuzzing::empty_message(MESSAGES.iter().position(|m| *m == name)?);
            bytes.extend(wire_message(g, 0));
            bytes
        }
    })
}

fn submission(g: &mut Gen) -> proto::SubmitCommentRequest {
    proto::SubmitCommentRequest {
        article: g.field(ARTICLES),
        parent_id: if g.chance(0.7) {
            String::new()
        } else {
            g.uuid_text()
        },
        author: g.chance(0.95).then(|| proto::Author {
            name: g.field(NAMES),
            email: g.field(EMAILS),
            website: g.field(WEBSITES),
        }),
        body: g.field(BODIES),
        client: g.chance(0.8).then(|| proto::ClientInfo {
            ip: g.field(IPS),
            user_agent: g.field(AGENTS),
            referrer: g.field(REFERRERS),
        }),
        form: g.chance(0.5).then(|| proto::FormInfo {
            token: g.field(TOKENS),
            honeypot: g.field(&[""]),
        }),
        idempotency_key: g.field(KEYS),
        notify_replies: false,
        article_published_at: g.chance(0.3).then(|| timestamp(g)),
        reader_id: g.field(READERS),
    }
}

/// A time as a request may carry it: ordinary, at the edges of what is taken, or nonsense.
fn timestamp(g: &mut Gen) -> prost_types::Timestamp {
    match g.below(4) {
        0 => prost_types::Timestamp {
            seconds: g.u64() as i64,
            nanos: g.u32() as i32,
        },
        1 => prost_types::Timestamp {
            seconds: *g.pick(&[-1, 0, 253_402_300_799, 253_402_300_800, i64::MAX, i64::MIN]),
            nanos: *g.pick(&[0, -1, 999_999_999, 1_000_000_000]),
        },
        _ => prost_types::Timestamp {
            seconds: 1_800_000_000 + g.below(100_000_000) as i64,
            nanos: g.below(1_000_000_000) as i32,
        },
    }
}

/// Validation: every field of a reply, and the blocklist's values, from valid, changed and
/// arbitrary text.
pub struct Validation;

#[derive(Debug)]
pub struct ReplyCase {
    fields: [String; 13],
    kind: BlockKind,
}

const FIELD_NAMES: [&str; 13] = [
    "article",
    "parent_id",
    "author.name",
    "author.email",
    "author.website",
    "body",
    "client.ip",
    "client.user_agent",
    "client.referrer",
    "form.token",
    "form.honeypot",
    "idempotency_key",
    "reader_id",
];

impl ReplyCase {
    fn raw(&self) -> RawReply<'_> {
        let [
            article,
            parent_id,
            author_name,
            author_email,
            author_website,
            body,
            ip,
            user_agent,
            referrer,
            form_token,
            honeypot,
            idempotency_key,
            reader_id,
        ] = &self.fields;
        RawReply {
            article,
            parent_id,
            author_name,
            author_email,
            author_website,
            body,
            ip,
            user_agent,
            referrer,
            form_token,
            honeypot,
            idempotency_key,
            reader_id,
        }
    }

    fn generate(g: &mut Gen) -> ReplyCase {
        let fields = [
            g.field(ARTICLES),
            if g.chance(0.7) {
                String::new()
            } else {
                g.uuid_text()
            },
            g.field(NAMES),
            g.field(EMAILS),
            g.field(WEBSITES),
            g.field(BODIES),
            g.field(IPS),
            g.field(AGENTS),
            g.field(REFERRERS),
            g.field(TOKENS),
            g.field(&[""]),
            g.field(KEYS),
            g.field(READERS),
        ];
        ReplyCase {
            fields,
            kind: *g.pick(&BlockKind::ALL),
        }
    }

    fn describe(&self) -> String {
        let (i, longest) = self
            .fields
            .iter()
            .enumerate()
            .max_by_key(|(_, f)| f.len())
            .unwrap_or((0, &self.fields[0]));
        describe_text(FIELD_NAMES[i], longest)
    }
}

impl Target for Validation {
    type Input = ReplyCase;

    fn generate(&self, g: &mut Gen) -> ReplyCase {
        ReplyCase::generate(g)
    }

    fn run(&self, input: &ReplyCase) {
        if let Ok(reply) = domain::validate(&input.raw()) {
            reply.email.normalized();
        }
        // What a moderator's block names, from the fields that would name it.
        for value in [&input.fields[3], &input.fields[4], &input.fields[6]] {
            let _ = Blocked::parse(input.kind, value);
        }
    }

    fn describe(&self, input: &ReplyCase) -> String {
        input.describe()
    }
}

/// Masking and rendering: a text masked for the public and for moderators, and rendered to
/// HTML as it is stored.
pub struct Masking;

impl Target for Masking {
    type Input = String;

    fn generate(&self, g: &mut Gen) -> String {
        let mut text = if g.chance(0.3) {
            let base = g.field(BODIES);
            g.mutate_text(base)
        } else {
            g.text()
        };
        // Every caller masks a field validation let through: a body at most.
        let end = text
            .char_indices()
            .nth(domain::CommentBody::MAX_CHARS)
            .map_or(text.len(), |(at, _)| at);
        text.truncate(end);
        text
    }

    fn run(&self, input: &String) {
        let public = privacy::mask_contacts(input);
        privacy::render_html(&public);
        privacy::render_html(input);
        privacy::mask_email(input);
    }

    fn describe(&self, input: &String) -> String {
        describe_text("text", input)
    }
}

/// Page tokens: arbitrary text decoded as every listing's token, and every listing's tokens
/// made and read back.
pub struct Tokens;

#[derive(Debug)]
pub enum TokenCase {
    Text(String),
    RoundTrip(PageEnd),
}

impl Target for Tokens {
    type Input = TokenCase;

    fn generate(&self, g: &mut Gen) -> TokenCase {
        match g.below(10) {
            0..3 => TokenCase::Text(g.token_text()),
            3..5 => TokenCase::Text(g.text()),
            _ => TokenCase::RoundTrip(page_end(g)),
        }
    }

    fn run(&self, input: &TokenCase) {
        match input {
            TokenCase::Text(token) => {
                fuzzing::decode_page_tokens(token);
            }
            TokenCase::RoundTrip(end) => fuzzing::round_trip_page_token(end),
        }
    }

    fn describe(&self, input: &TokenCase) -> String {
        match input {
            TokenCase::Text(token) => describe_text("token", token),
            TokenCase::RoundTrip(PageEnd::Thread(_, ids)) => format!("thread of {} ids", ids.len()),
            TokenCase::RoundTrip(PageEnd::Closed(article)) => describe_text("closed", article),
            TokenCase::RoundTrip(end) => format!("{end:?}"),
        }
    }
}

fn page_end(g: &mut Gen) -> PageEnd {
    match g.below(5) {
        0 => {
            let order = if g.chance(0.5) {
                ThreadOrder::OldestFirst
            } else {
                ThreadOrder::NewestFirst
            };
            // A thread nests `MAX_DEPTH` replies below its root at most.
            let depth = 1 + g.below(crate::submission::MAX_DEPTH as usize + 1);
            PageEnd::Thread(order, (0..depth).map(|_| g.uuid()).collect())
        }
        1 => PageEnd::Queue(g.uuid()),
        2 => PageEnd::Audit(g.uuid()),
        3 => {
            let kind = *g.pick(&BlockKind::ALL);
            let value = match kind {
                BlockKind::Author => format!("{:016x}", g.u64()).repeat(4),
                BlockKind::Ip if g.chance(0.5) => std::net::Ipv4Addr::from(g.u32()).to_string(),
                BlockKind::Ip => {
                    let high = u128::from(g.u64()) << 64;
                    std::net::Ipv6Addr::from(high | u128::from(g.u64())).to_string()
                }
                _ => g.field(&["spam.example", "xn--exmple-cua.de", "a.b.c.example"]),
            };
            match Blocked::parse(kind, &value) {
                Ok(blocked) => PageEnd::Block(blocked),
                Err(_) => PageEnd::Queue(g.uuid()),
            }
        }
        _ => {
            let key = g.field(ARTICLES);
            let key = domain::ArticleKey::parse(&key)
                .map_or_else(|_| ARTICLES[0].to_owned(), |k| k.as_str().to_owned());
            PageEnd::Closed(key)
        }
    }
}

/// Policy updates: an update merged into a stored policy and checked, as `UpdatePolicy` does.
pub struct Policies;

#[derive(Debug)]
pub struct PolicyCase {
    stored: Policy,
    update: proto::Policy,
}

const MODES: &[&str] = &["auto", "moderate-all", "trusted-only"];
const TERMS: &[&str] = &["viagra", "cheap pills", "casino", "crypto giveaway", "a"];
const RANGES: &[&str] = &[
    "203.0.113.7",
    "10.0.0.0/8",
    "2001:db8::/32",
    "::ffff:10.0.0.0/104",
];
const DOMAINS: &[&str] = &["spam.example", "exämple.de", "a.b.c.example"];
const STATES: &[&str] = &["on", "off", "log-only"];

fn number(g: &mut Gen) -> f64 {
    match g.below(10) {
        0 => f64::NAN,
        1 => *g.pick(&[
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            f64::MAX,
            f64::MIN_POSITIVE,
        ]),
        2 => f64::from_bits(g.u64()),
        _ => g.below(2_000) as f64 / 100.0 - 5.0,
    }
}

fn count(g: &mut Gen) -> u32 {
    match g.below(4) {
        0 => g.u32(),
        1 => *g.pick(&[1_000, 1_001, 3_600, 3_601, 86_400, 86_401]),
        _ => g.below(20) as u32,
    }
}

fn list(g: &mut Gen, valid: &[&str]) -> Vec<String> {
    let n = match g.below(20) {
        0 => MAX_LIST_ENTRIES + g.below(2),
        1..4 => g.size().min(MAX_LIST_ENTRIES),
        _ => g.below(4),
    };
    let mut entries: Vec<String> = (0..n).map(|_| g.entry(valid)).collect();
    if !entries.is_empty() && g.chance(0.1) {
        let i = g.below(entries.len());
        entries[i] = g.field(valid);
    }
    entries
}

/// A policy update as a moderator might send it: each setting present or not, valid or not.
fn policy_update(g: &mut Gen) -> proto::Policy {
    let scripts = Script::names();
    let rule_names: Vec<&str> = RULES.iter().map(|r| r.name).collect();
    let mut update = proto::Policy {
        mode: g.chance(0.3).then(|| g.field(MODES)),
        hold_threshold: g.chance(0.3).then(|| number(g)),
        spam_threshold: g.chance(0.3).then(|| number(g)),
        max_links: g.chance(0.3).then(|| count(g)),
        flood_interval_seconds: g.chance(0.3).then(|| count(g)),
        min_form_seconds: g.chance(0.3).then(|| count(g)),
        require_form_token: g.chance(0.3).then(|| g.chance(0.5)),
        hold_new_authors: g.chance(0.3).then(|| count(g)),
        report_hold: g.chance(0.3).then(|| count(g)),
        edit_window_seconds: g.chance(0.3).then(|| count(g)),
        close_after_days: g.chance(0.3).then(|| count(g)),
        auto_block_spam: g.chance(0.3).then(|| count(g)),
        auto_block_window_minutes: g.chance(0.3).then(|| count(g)),
        auto_block_hours: g.chance(0.3).then(|| count(g)),
        set_blocked_terms: g.chance(0.2),
        set_moderation_terms: g.chance(0.2),
        set_blocked_ips: g.chance(0.2),
        set_blocked_email_domains: g.chance(0.2),
        set_blocked_websites: g.chance(0.2),
        set_allowed_scripts: g.chance(0.2),
        ..Default::default()
    };
    if g.chance(0.4) {
        update.blocked_terms = list(g, TERMS);
    }
    if g.chance(0.3) {
        update.moderation_terms = list(g, TERMS);
    }
    if g.chance(0.3) {
        update.blocked_ips = list(g, RANGES);
    }
    if g.chance(0.3) {
        update.blocked_email_domains = list(g, DOMAINS);
    }
    if g.chance(0.3) {
        update.blocked_websites = list(g, DOMAINS);
    }
    if g.chance(0.3) {
        update.allowed_scripts = list(g, &scripts);
    }
    let most = if g.chance(0.9) { 4 } else { 64 };
    for _ in 0..g.below(most) {
        let name = g.field(&rule_names);
        let setting = proto::RuleSetting {
            state: g.chance(0.6).then(|| g.field(STATES)),
            weight: g.chance(0.6).then(|| number(g)),
        };
        update.rules.insert(name, setting);
    }
    update
}

/// A policy a site could have stored: the default, or a valid update of it.
fn stored_policy(g: &mut Gen) -> Policy {
    if g.chance(0.5) {
        return Policy::default();
    }
    let update = policy_update(g);
    match fuzzing::update_policy_of(&Policy::default(), update) {
        Ok(Some(policy)) => policy,
        _ => Policy::default(),
    }
}

impl Target for Policies {
    type Input = PolicyCase;

    fn generate(&self, g: &mut Gen) -> PolicyCase {
        PolicyCase {
            stored: stored_policy(g),
            update: policy_update(g),
        }
    }

    fn run(&self, input: &PolicyCase) {
        let _ = fuzzing::update_policy_of(&input.stored, input.update.clone());
    }

    fn describe(&self, input: &PolicyCase) -> String {
        let u = &input.update;
        let entries = u.blocked_terms.len()
            + u.moderation_terms.len()
            + u.blocked_ips.len()
            + u.blocked_email_domains.len()
            + u.blocked_websites.len()
            + u.allowed_scripts.len();
        let longest = [
            &u.blocked_terms,
            &u.moderation_terms,
            &u.blocked_ips,
            &u.blocked_email_domains,
            &u.blocked_websites,
        ]
        .into_iter()
        .flatten()
        .max_by_key(|e| e.len())
        .map_or_else(String::new, |e| {
            format!("; longest {}", describe_text("entry", e))
        });
        format!("{entries} list entries, {} rules{longest}", u.rules.len())
    }
}

/// The assessment: valid replies with adversarial texts, under default and arbitrary valid
/// policies, with what the pipeline would know of them.
#[derive(Default)]
pub struct Assessment {
    assessor: Assessor,
}

#[derive(Debug)]
pub struct AssessmentCase {
    reply: ValidReply,
    policy: Policy,
    history: [u32; 4],
    since: Option<Duration>,
    recent: Vec<RecentReply>,
    form: FormCheck,
    learned: LearnedStats,
}

/// A valid reply with arbitrary text where it is allowed: the case's fields where they
/// validate, a valid sample where they do not.
fn valid_reply(g: &mut Gen) -> ValidReply {
    let mut case = ReplyCase::generate(g);
    if g.chance(0.5) {
        // Text that is valid but for what validation refuses: a body, mostly.
        let size = g.size().min(10_000);
        case.fields[5] = g.text_of(size);
    }
    let fallback: [&str; FIELD_NAMES.len()] = [
        ARTICLES[0],
        "",
        NAMES[0],
        EMAILS[0],
        "",
        BODIES[0],
        "",
        "",
        "",
        "",
        "",
        "",
        "",
    ];
    loop {
        match domain::validate(&case.raw()) {
            Ok(reply) => return reply,
            Err(violations) => {
                for violation in violations {
                    if let Some(i) = FIELD_NAMES.iter().position(|f| *f == violation.field) {
                        case.fields[i] = clean(&case.fields[i], fallback[i]);
                    }
                }
            }
        }
    }
}

/// `text` without what validation refuses, cut to a body's length; `fallback` if that
/// leaves the same text (which validation refused for another reason).
fn clean(text: &str, fallback: &str) -> String {
    let cleaned: String = text
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .take(domain::CommentBody::MAX_CHARS / 2)
        .collect();
    if cleaned == text || cleaned.trim().is_empty() {
        fallback.to_owned()
    } else {
        cleaned
    }
}

impl Target for Assessment {
    type Input = AssessmentCase;

    fn generate(&self, g: &mut Gen) -> AssessmentCase {
        let reply = valid_reply(g);
        let policy = stored_policy(g);
        let mut learned = LearnedStats::new();
        if g.chance(0.3) {
            let features = crate::spam::features(&reply);
            learned.learn(&features, crate::spam::Label::Spam, 1.0);
        }
        let most = if g.chance(0.9) { 8 } else { 500 };
        let recent_count = g.below(most);
        AssessmentCase {
            history: [
                count(g) % 100,
                count(g) % 100,
                count(g) % 100,
                count(g) % 100,
            ],
            since: g
                .chance(0.5)
                .then(|| Duration::from_millis(u64::from(g.u32()))),
            recent: (0..recent_count)
                .map(|_| RecentReply {
                    fingerprint: g.u64(),
                    author: g.u64(),
                })
                .collect(),
            form: match g.below(5) {
                0 => FormCheck::Malformed,
                1 => FormCheck::Forged,
                2 => FormCheck::Valid {
                    age: Duration::from_secs(u64::from(g.u32() % 100)),
                    nonce: [0; crate::spam::form::NONCE_LEN],
                },
                _ => FormCheck::Missing,
            },
            reply,
            policy,
            learned,
        }
    }

    fn run(&self, input: &AssessmentCase) {
        let [author_approved, author_spam, author_rejected, ip_spam] = input.history;
        let facts = Facts {
            author: None,
            author_approved,
            author_spam,
            author_rejected,
            author_confirmed: false,
            ip_spam,
            since_author_reply: input.since,
            since_ip_reply: None,
            recent: &input.recent,
            form: input.form,
            token_reused: false,
            learned: &input.learned,
            shared: crate::spam::LearnedStats::empty(),
            blocked_by: None,
        };
        self.assessor.assess(&input.reply, &input.policy, &facts);
    }

    fn describe(&self, input: &AssessmentCase) -> String {
        let terms = input.policy.blocked_terms.len() + input.policy.moderation_terms.len();
        format!(
            "{}; {terms} terms in the policy",
            describe_text("body", input.reply.body.as_str())
        )
    }
}
