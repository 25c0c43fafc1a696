//! Properties over generated input. A reply is valid exactly when each of its fields is, and
//! keeps what was typed; a valid reply's score is the sum of its reasons and places it; an
//! email address typed into a reply is never in what the public sees; a form token issued for
//! an article verifies for that article alone, and no other text does; and a sealed text opens
//! to what was sealed.
//!
//! The replies are mostly valid, so that most cases get past validation to the assessment, and
//! now and then one field is given a value known to be refused. These are the pure steps of a
//! submission, so every property runs its cases in a second or two; the tests through the real
//! server (`comments.rs`, `personal_data.rs`) cover what surrounds them.

use std::{sync::LazyLock, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeZone, Utc};
use proptest::{prelude::*, sample::Index};
use replyguard::{
    domain::{RawReply, validate},
    ids::{CommentId, SiteId},
    privacy::{SecretKey, Vault, mask_contacts, render_html},
    spam::{Assessor, Facts, FormCheck, Mode, Policy, Verdict, form},
};
use unicode_normalization::UnicodeNormalization;

/// One assessor for every case: building one parses the built-in prior.
static ASSESSOR: LazyLock<Assessor> = LazyLock::new(Assessor::default);

/// Text that exercises the parsers: mostly the characters links, emails, phone numbers, markup
/// and the word normaliser care about (control and bidirectional characters, look-alikes,
/// combining marks, emoji), and any Unicode at all now and then.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => r"[a-zA-Z0-9 @.:/?=&#%+()_<>'\x22\n\t\r\x00\x7f\u{202e}\u{200b}\u{301}éаοß🦀-]{0,120}",
        1 => any::<String>(),
    ]
}

/// An email address as a reader might type one into their text.
fn email() -> impl Strategy<Value = String> {
    (
        r"[a-z][a-z0-9._+-]{0,20}[a-z0-9]",
        r"[a-z][a-z0-9-]{0,15}[a-z0-9]",
        r"(com|org|net|de|co\.uk|example)",
    )
        .prop_map(|(local, domain, tld)| format!("{local}@{domain}.{tld}"))
}

/// A field's value and whether validation must accept it.
#[derive(Clone, Debug)]
struct Field {
    value: String,
    valid: bool,
}

/// Valid values, and one in twenty refused when `refused` gives any.
fn field(
    valid: impl Strategy<Value = String> + 'static,
    refused: Option<BoxedStrategy<String>>,
) -> BoxedStrategy<Field> {
    let valid = valid.prop_map(|value| Field { value, valid: true });
    match refused {
        None => valid.boxed(),
        Some(refused) => prop_oneof![
            19 => valid,
            1 => refused.prop_map(|value| Field { value, valid: false }),
        ]
        .boxed(),
    }
}

/// Values each field's validation refuses, whatever else the reply holds.
fn refused(values: &[&str]) -> BoxedStrategy<String> {
    let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
    prop::sample::select(values).boxed()
}

/// A reply as a host sends it, field by field in the order validation reports them.
#[derive(Clone, Debug)]
struct Reply {
    article: Field,
    parent_id: Field,
    name: Field,
    email: Field,
    website: Field,
    body: Field,
    ip: Field,
    token: Field,
    key: Field,
    agent: String,
    referrer: String,
    honeypot: String,
}

impl Reply {
    fn raw(&self) -> RawReply<'_> {
        RawReply {
            article: &self.article.value,
            parent_id: &self.parent_id.value,
            author_name: &self.name.value,
            author_email: &self.email.value,
            author_website: &self.website.value,
            body: &self.body.value,
            ip: &self.ip.value,
            user_agent: &self.agent,
            referrer: &self.referrer,
            form_token: &self.token.value,
            honeypot: &self.honeypot,
            idempotency_key: &self.key.value,
            reader_id: "",
        }
    }

    /// The fields validation must name, in its order.
    fn refused_fields(&self) -> Vec<&'static str> {
        [
            ("article", &self.article),
            ("parent_id", &self.parent_id),
            ("author.name", &self.name),
            ("author.email", &self.email),
            ("author.website", &self.website),
            ("body", &self.body),
            ("client.ip", &self.ip),
            ("form.token", &self.token),
            ("idempotency_key", &self.key),
        ]
        .into_iter()
        .filter(|(_, field)| !field.valid)
        .map(|(name, _)| name)
        .collect()
    }
}

/// Replies whose every field is valid, or (with `refusing`) now and then one that is not.
fn reply(refusing: bool) -> impl Strategy<Value = Reply> {
    let some = |values: &[&str]| refusing.then(|| refused(values));
    let long = |n: usize| "a".repeat(n);
    let (article_max, name_max, key_max, token_max) =
        (long(201), long(101), long(129), long(1_001));
    let fields = (
        field(
            r"[a-z0-9][a-z0-9/_-]{0,60}",
            some(&["", "  ", "story\u{7}", &article_max]),
        ),
        field(
            prop_oneof![3 => Just(String::new()), 1 => Just(CommentId::new().to_string())],
            some(&["not-an-id"]),
        ),
        field(
            r"[A-Z][a-z]{1,12}( [A-Z][a-zéø]{1,12}){0,2}|Зоя|Ζωή",
            some(&["", " \t ", "jane@example.com", "Jane\u{7}", &name_max]),
        ),
        field(
            r"[a-z][a-z0-9]{0,10}([._+-][a-z0-9]{1,8}){0,2}@[a-z][a-z0-9-]{0,12}[a-z0-9]\.(com|org|net|de|co\.uk)",
            some(&[
                "",
                "not-an-email",
                "jane@localhost",
                "Jane <jane@example.com>",
            ]),
        ),
        field(
            prop_oneof![
                2 => Just(String::new()),
                1 => r"https?://[a-z]{1,12}\.example\.org(/[a-z]{1,10})?",
            ],
            some(&[
                "ftp://files.example.org/",
                "https://user:pw@example.org/",
                "jane's page",
            ]),
        ),
        field(
            r"[A-Za-z]{1,10}[a-zA-Z0-9 @.:/?=&#%+()_<>'\x22\n\t\réаοß🦀\u{202e}\u{200b}\u{301}-]{0,300}",
            some(&["", " \n\t ", "a bell\u{7}"]),
        ),
    );
    let client = (
        field(
            prop_oneof![
                1 => Just(String::new()),
                3 => any::<std::net::IpAddr>().prop_map(|ip| ip.to_string()),
            ],
            some(&["999.1.1.1", "not-an-ip"]),
        ),
        field(
            text().prop_map(|t| t.trim().to_owned()),
            some(&[&token_max]),
        ),
        field(
            prop_oneof![1 => Just(String::new()), 1 => r"[!-~]([ -~]{0,40}[!-~])?"],
            some(&["clé", &key_max]),
        ),
        text(),
        text(),
        prop_oneof![3 => Just(String::new()), 1 => text()],
    );
    (fields, client).prop_map(
        |(
            (article, parent_id, name, email, website, body),
            (ip, token, key, agent, referrer, honeypot),
        )| Reply {
            article,
            parent_id,
            name,
            email,
            website,
            body,
            ip,
            token,
            key,
            agent,
            referrer,
            honeypot,
        },
    )
}

/// A reply's text as validation keeps it: line breaks as `\n`, trimmed, in NFC.
fn kept_body(typed: &str) -> String {
    typed
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .trim()
        .nfc()
        .collect()
}

/// When a form is checked: any second from 2001 to 2096, so that tokens of any age fit.
fn moment() -> impl Strategy<Value = DateTime<Utc>> {
    (1_000_000_000i64..4_000_000_000).prop_map(|secs| {
        Utc.timestamp_opt(secs, 0)
            .single()
            .expect("a second in range")
    })
}

/// A form token's shape, version and length, with random bytes where the signed time, the
/// nonce and the tags go: what a forger without the key can make.
fn shaped_token() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 56).prop_map(|rest| {
        let mut bytes = vec![1u8];
        bytes.extend(rest);
        URL_SAFE_NO_PAD.encode(bytes)
    })
}

/// A character a form token may hold.
fn token_char() -> impl Strategy<Value = char> {
    prop::sample::select(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            .chars()
            .collect::<Vec<_>>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn a_reply_is_valid_exactly_when_each_field_is_and_keeps_what_was_typed(
        reply in reply(true),
    ) {
        let refused = reply.refused_fields();
        match validate(&reply.raw()) {
            Ok(valid) => {
                prop_assert!(refused.is_empty(), "accepted with {refused:?} wrong");
                prop_assert_eq!(valid.article.as_str(), reply.article.value.trim());
                prop_assert_eq!(
                    valid.parent.map(|id| id.to_string()).unwrap_or_default(),
                    reply.parent_id.value.clone()
                );
                prop_assert_eq!(valid.author.as_str(), reply.name.value.as_str());
                prop_assert_eq!(valid.email.as_str(), reply.email.value.as_str());
                prop_assert_eq!(
                    valid.website.as_ref().map(|w| w.as_str()).unwrap_or_default(),
                    reply.website.value.as_str()
                );
                prop_assert_eq!(valid.body.as_str(), kept_body(&reply.body.value));
                prop_assert_eq!(
                    valid.client.ip.map(|ip| ip.to_string()).unwrap_or_default(),
                    reply.ip.value.clone()
                );
                prop_assert_eq!(
                    valid.form.token.unwrap_or_default(),
                    reply.token.value.clone()
                );
                prop_assert_eq!(
                    valid.idempotency_key.as_ref().map(|k| k.as_str()).unwrap_or_default(),
                    reply.key.value.as_str()
                );
            }
            Err(violations) => {
                let named: Vec<&str> = violations.iter().map(|v| v.field).collect();
                prop_assert_eq!(named, refused);
                prop_assert!(violations.iter().all(|v| !v.description.is_empty()));
            }
        }
    }

    #[test]
    fn a_valid_reply_scores_the_sum_of_its_reasons_and_starts_where_its_score_places_it(
        reply in reply(false),
    ) {
        let valid = match validate(&reply.raw()) {
            Ok(valid) => valid,
            Err(violations) => {
                let named: Vec<&str> = violations.iter().map(|v| v.field).collect();
                return Err(TestCaseError::fail(format!("refused: {named:?}")));
            }
        };
        let policy = Policy::default();
        prop_assert_eq!(policy.mode, Mode::Auto);
        let assessment = ASSESSOR.assess(&valid, &policy, &Facts::default());
        prop_assert!(assessment.reasons.iter().all(|r| r.weight.is_finite() && r.weight != 0.0));
        prop_assert!(assessment.reasons.iter().all(|r| !r.rule.is_empty() && !r.log_only));
        let sum: f64 = assessment.reasons.iter().map(|r| r.weight).sum();
        prop_assert!((assessment.score - sum).abs() < 0.005, "{} vs {sum}", assessment.score);
        prop_assert_eq!(assessment.verdict, policy.verdict(assessment.score));
        let expected = match assessment.verdict {
            Verdict::Spam => replyguard::domain::CommentStatus::Spam,
            Verdict::Hold => replyguard::domain::CommentStatus::Pending,
            Verdict::Approve => replyguard::domain::CommentStatus::Approved,
        };
        prop_assert_eq!(policy.initial_status(&assessment, false), expected);
        let public = render_html(&mask_contacts(valid.body.as_str()));
        prop_assert!(!public.contains(valid.email.as_str()), "{public}");
    }

    #[test]
    fn an_email_typed_anywhere_in_a_text_is_not_in_what_the_public_sees(
        before in text(),
        address in email(),
        after in text(),
    ) {
        let typed = format!("{before}{address}{after}");
        let public = mask_contacts(&typed);
        prop_assert!(!public.contains(&address), "{public:?}");
        prop_assert!(!render_html(&public).contains(&address));
    }

    #[test]
    fn masking_twice_masks_nothing_more(typed in text()) {
        let once = mask_contacts(&typed);
        prop_assert_eq!(mask_contacts(&once), once);
    }

    #[test]
    fn an_issued_form_token_verifies_for_its_site_and_article_until_it_expires(
        key in any::<[u8; 32]>(),
        other_key in any::<[u8; 32]>(),
        article in r"[a-z0-9/_-]{1,40}",
        other_article in r"[a-z0-9/_-]{1,40}",
        issued in moment(),
        age in 0..=form::TOKEN_LIFETIME.as_secs(),
    ) {
        let (site, other_site) = (SiteId::new(), SiteId::new());
        let (token, expires) = form::issue(&key, site, &article, issued);
        let lifetime = chrono::Duration::from_std(form::TOKEN_LIFETIME).expect("a lifetime");
        prop_assert_eq!(expires, issued + lifetime);
        let now = issued + chrono::Duration::seconds(age as i64);
        let check = |keys: &[[u8; 32]], site, article: &str, now| {
            form::verify(keys, site, article, Some(&token), now)
        };

        match check(&[key], site, &article, now) {
            FormCheck::Valid { age: seen, .. } => {
                prop_assert_eq!(seen, Duration::from_secs(age));
            }
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        }
        // After a rotation the old key is still given, as the previous one.
        let rotated = check(&[other_key, key], site, &article, now);
        prop_assert!(matches!(rotated, FormCheck::Valid { .. }), "{rotated:?}");
        prop_assert_eq!(check(&[key], site, &article, expires + chrono::Duration::seconds(1)), FormCheck::Expired);
        prop_assert_eq!(check(&[key], other_site, &article, now), FormCheck::Forged);
        if other_key != key {
            prop_assert_eq!(check(&[other_key], site, &article, now), FormCheck::Forged);
        }
        if other_article != article {
            prop_assert_eq!(check(&[key], site, &other_article, now), FormCheck::WrongArticle);
        }
    }

    #[test]
    fn a_form_token_with_one_character_changed_is_refused(
        key in any::<[u8; 32]>(),
        article in r"[a-z0-9/_-]{1,40}",
        issued in moment(),
        at in any::<Index>(),
        replacement in token_char(),
    ) {
        let site = SiteId::new();
        let (token, _) = form::issue(&key, site, &article, issued);
        let mut chars: Vec<char> = token.chars().collect();
        let at = at.index(chars.len());
        prop_assume!(chars[at] != replacement);
        chars[at] = replacement;
        let tampered: String = chars.into_iter().collect();
        let check = form::verify(&[key], site, &article, Some(&tampered), issued);
        prop_assert!(
            matches!(check, FormCheck::Forged | FormCheck::Malformed | FormCheck::WrongArticle),
            "{check:?}"
        );
    }

    #[test]
    fn a_blank_form_token_is_missing_and_any_other_text_is_no_token(
        token in text(),
        article in text(),
    ) {
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        let check = form::verify(&[[7; 32]], SiteId::new(), &article, Some(&token), now);
        if token.trim().is_empty() {
            prop_assert_eq!(check, FormCheck::Missing);
        } else {
            prop_assert!(
                matches!(check, FormCheck::Malformed | FormCheck::Forged),
                "{check:?}"
            );
        }
    }

    #[test]
    fn a_token_shaped_like_one_but_signed_by_no_key_is_forged(
        token in shaped_token(),
        article in r"[a-z0-9/_-]{1,40}",
    ) {
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        let check = form::verify(&[[7; 32]], SiteId::new(), &article, Some(&token), now);
        prop_assert_eq!(check, FormCheck::Forged);
    }

    #[test]
    fn a_sealed_text_opens_to_itself_and_only_for_its_comment(typed in any::<String>()) {
        static VAULT: LazyLock<Vault> = LazyLock::new(|| Vault::new(&SecretKey::generate()));
        let (site, comment) = (SiteId::new(), CommentId::new());
        let sealed = VAULT.seal_body(site, comment, &typed);
        prop_assert_eq!(VAULT.open_body(site, comment, &sealed).ok(), Some(typed));
        prop_assert!(VAULT.open_body(site, CommentId::new(), &sealed).is_err());
    }
}
