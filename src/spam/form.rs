//! Form signals: the signed token that `PrepareForm` hands out, the honeypot field, and the
//! time a reader spent between opening the form and sending it.
//!
//! A token is `base64url(version | issued_at | nonce | tag)`, where the tag is an
//! HMAC-SHA256 over the site, the article and the rest, under the form subkey of the
//! deployment's secret. Any replica can check any replica's token without shared state;
//! only reuse needs the store, so a valid token hands its nonce to the pipeline.
//! A token never carries anything about the reader.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{Finding, Input, Rule};
use crate::ids::SiteId;

/// How long a token stays good: long enough for a reader who leaves a tab open overnight.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(2 * 24 * 60 * 60);

/// How far in the future a token's issue time may be, for clocks of replicas that disagree.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

const VERSION: u8 = 1;
/// The bytes of a token's nonce, which the pipeline records to tell a reused token.
pub const NONCE_LEN: usize = 16;
/// Each tag is an HMAC-SHA256 cut to 128 bits: enough against forgery, short enough for a URL.
const TAG_LEN: usize = 16;
const SIGNED_LEN: usize = 1 + 8 + NONCE_LEN;
const TOKEN_LEN: usize = SIGNED_LEN + 2 * TAG_LEN;
/// Longer text cannot be a token; refused before decoding so an enormous value costs nothing.
const MAX_TOKEN_CHARS: usize = 2 * TOKEN_LEN;

type HmacSha256 = Hmac<Sha256>;

/// What checking a reply's form token found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FormCheck {
    /// Signed by this deployment for this site and article, and not expired. The pipeline
    /// records the nonce to tell a reused token.
    Valid {
        age: Duration,
        nonce: [u8; NONCE_LEN],
    },
    /// The reply carried no token.
    #[default]
    Missing,
    /// Not a token at all: wrong length, alphabet or version.
    Malformed,
    /// Shaped like a token, but not signed by this deployment for this site.
    Forged,
    /// Signed, but older than [`TOKEN_LIFETIME`].
    Expired,
    /// Signed for this site, but for another of its articles.
    WrongArticle,
}

/// A new token for a form under `article` of `site`, and when it stops being accepted.
///
/// The token carries two tags: one binds the site alone and one the site and the article,
/// so a token moved to another article is told apart from a forged one.
pub fn issue(
    key: &[u8; 32],
    site: SiteId,
    article: &str,
    now: DateTime<Utc>,
) -> (String, DateTime<Utc>) {
    let issued = now.timestamp().max(0) as u64;
    let mut token = Vec::with_capacity(TOKEN_LEN);
    token.push(VERSION);
    token.extend_from_slice(&issued.to_be_bytes());
    token.extend_from_slice(&random_nonce());
    let site_tag = tag(key, site, None, &token);
    let article_tag = tag(key, site, Some(article), &token);
    token.extend_from_slice(&site_tag);
    token.extend_from_slice(&article_tag);
    let expires = now + chrono::Duration::from_std(TOKEN_LIFETIME).unwrap_or_default();
    (URL_SAFE_NO_PAD.encode(token), expires)
}

/// Checks a reply's `token` (`None` when it had none) for `article` of `site`, as signed under
/// any of `keys` (the deployment's form subkey, then the previous key's after a rotation).
pub fn verify(
    keys: &[[u8; 32]],
    site: SiteId,
    article: &str,
    token: Option<&str>,
    now: DateTime<Utc>,
) -> FormCheck {
    let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
        return FormCheck::Missing;
    };
    if token.len() > MAX_TOKEN_CHARS {
        return FormCheck::Malformed;
    }
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(token) else {
        return FormCheck::Malformed;
    };
    if bytes.len() != TOKEN_LEN || bytes[0] != VERSION {
        return FormCheck::Malformed;
    }
    let (signed, tags) = bytes.split_at(SIGNED_LEN);
    let (site_tag, article_tag) = tags.split_at(TAG_LEN);
    let Some(key) = keys
        .iter()
        .find(|key| tag_matches(key, site, None, signed, site_tag))
    else {
        return FormCheck::Forged;
    };
    if !tag_matches(key, site, Some(article), signed, article_tag) {
        return FormCheck::WrongArticle;
    }
    let mut issued = [0u8; 8];
    issued.copy_from_slice(&signed[1..9]);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&signed[9..SIGNED_LEN]);
    let issued = u64::from_be_bytes(issued);
    let now = now.timestamp().max(0) as u64;
    if issued > now + CLOCK_SKEW.as_secs() {
        // Only a replica whose clock is far ahead could have signed it; treat it as unknown.
        return FormCheck::Forged;
    }
    let age = Duration::from_secs(now.saturating_sub(issued));
    if age > TOKEN_LIFETIME {
        FormCheck::Expired
    } else {
        FormCheck::Valid { age, nonce }
    }
}

/// The MAC over what a token vouches for; with `article` it binds that article too. The
/// article is length-prefixed so no two (article, token) pairs feed the same bytes.
fn mac(key: &[u8; 32], site: SiteId, article: Option<&str>, signed: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    match article {
        None => mac.update(b"replyguard form token: site"),
        Some(article) => {
            mac.update(b"replyguard form token: article");
            mac.update(&(article.len() as u64).to_be_bytes());
            mac.update(article.as_bytes());
        }
    }
    mac.update(site.0.as_bytes());
    mac.update(signed);
    mac
}

fn tag(key: &[u8; 32], site: SiteId, article: Option<&str>, signed: &[u8]) -> [u8; TAG_LEN] {
    let full = mac(key, site, article, signed).finalize().into_bytes();
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&full[..TAG_LEN]);
    tag
}

/// Compares in constant time, so a forger learns nothing from how long a refusal took.
fn tag_matches(
    key: &[u8; 32],
    site: SiteId,
    article: Option<&str>,
    signed: &[u8],
    given: &[u8],
) -> bool {
    mac(key, site, article, signed)
        .verify_truncated_left(given)
        .is_ok()
}

/// A nonce from the operating system's generator, as for every other secret of the service.
fn random_nonce() -> [u8; NONCE_LEN] {
    use rand::{Rng, rand_core::UnwrapErr, rngs::SysRng};

    let mut nonce = [0u8; NONCE_LEN];
    UnwrapErr(SysRng).fill_bytes(&mut nonce);
    nonce
}

/// A hidden field that people never see and bots fill in.
pub struct Honeypot;

impl Rule for Honeypot {
    fn name(&self) -> &'static str {
        "honeypot"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        input
            .reply
            .form
            .honeypot
            .as_ref()
            .map(|_| Finding::new("the hidden honeypot field was filled in".to_owned()))
    }
}

/// No token on a site that requires one: the form was not loaded from the site's page.
pub struct TokenMissing;

impl Rule for TokenMissing {
    fn name(&self) -> &'static str {
        "form-token-missing"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        (input.policy.require_form_token && input.facts.form == FormCheck::Missing)
            .then(|| Finding::new("no form token, and the site requires one".to_owned()))
    }
}

/// A token no browser could have received: malformed, forged, or for another article.
pub struct TokenInvalid;

impl Rule for TokenInvalid {
    fn name(&self) -> &'static str {
        "form-token-invalid"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        let why = match input.facts.form {
            FormCheck::Malformed => "the form token is malformed",
            FormCheck::Forged => "the form token is forged",
            FormCheck::WrongArticle => "the form token is for another article",
            _ => return None,
        };
        Some(Finding::new(why.to_owned()))
    }
}

/// A token past its lifetime: a stale tab, or a token harvested and replayed later.
pub struct TokenExpired;

impl Rule for TokenExpired {
    fn name(&self) -> &'static str {
        "form-token-expired"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        (input.facts.form == FormCheck::Expired).then(|| {
            Finding::new(format!(
                "the form token is older than {} hours",
                TOKEN_LIFETIME.as_secs() / 3600
            ))
        })
    }
}

/// A token already used for another reply: one form, one reply.
pub struct TokenReused;

impl Rule for TokenReused {
    fn name(&self) -> &'static str {
        "form-token-reused"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        (input.facts.token_reused && matches!(input.facts.form, FormCheck::Valid { .. }))
            .then(|| Finding::new("the form token was used before".to_owned()))
    }
}

/// Sent sooner after the form was loaded than a person can read and write (Antispam Bee: 5 s).
pub struct TooFast;

impl Rule for TooFast {
    fn name(&self) -> &'static str {
        "form-too-fast"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        let FormCheck::Valid { age, .. } = input.facts.form else {
            return None;
        };
        let min = input.policy.min_form_seconds;
        (age < Duration::from_secs(u64::from(min))).then(|| {
            Finding::new(format!(
                "sent {} s after the form was loaded (minimum {min} s)",
                age.as_secs()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spam::{
        Facts, Policy, Verdict,
        testing::{assess_facts, hits, reply},
    };

    const KEY: [u8; 32] = [7; 32];

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap_or_default()
    }

    #[test]
    fn a_fresh_token_for_the_article_is_valid_and_tells_its_age() {
        let site = SiteId::new();
        let (token, expires) = issue(&KEY, site, "/story", at(0));
        assert_eq!(expires, at(TOKEN_LIFETIME.as_secs() as i64));
        let check = verify(&[KEY], site, "/story", Some(&token), at(30));
        assert!(matches!(check, FormCheck::Valid { age, .. } if age == Duration::from_secs(30)));
    }

    #[test]
    fn a_token_of_the_previous_key_is_valid_while_that_key_is_given() {
        const PREVIOUS: [u8; 32] = [9; 32];
        let site = SiteId::new();
        let (token, _) = issue(&PREVIOUS, site, "/story", at(0));
        let check = |keys: &[[u8; 32]], article| verify(keys, site, article, Some(&token), at(5));
        assert!(matches!(
            check(&[KEY, PREVIOUS], "/story"),
            FormCheck::Valid { .. }
        ));
        assert_eq!(check(&[KEY, PREVIOUS], "/other"), FormCheck::WrongArticle);
        assert_eq!(check(&[KEY], "/story"), FormCheck::Forged);
    }

    #[test]
    fn two_tokens_carry_different_nonces() {
        let site = SiteId::new();
        let nonce = |token: &str| match verify(&[KEY], site, "/a", Some(token), at(10)) {
            FormCheck::Valid { nonce, .. } => Some(nonce),
            _ => None,
        };
        let first = nonce(&issue(&KEY, site, "/a", at(0)).0);
        let second = nonce(&issue(&KEY, site, "/a", at(0)).0);
        assert!(first.is_some() && second.is_some());
        assert_ne!(first, second);
    }

    #[test]
    fn every_kind_of_bad_token_is_told_apart() {
        let site = SiteId::new();
        let (token, _) = issue(&KEY, site, "/story", at(0));
        let check = |token: Option<&str>, article: &str, key: &[u8; 32], site: SiteId, when| {
            verify(&[*key], site, article, token, when)
        };
        assert_eq!(
            check(None, "/story", &KEY, site, at(10)),
            FormCheck::Missing
        );
        assert_eq!(
            check(Some("  "), "/story", &KEY, site, at(10)),
            FormCheck::Missing
        );
        assert_eq!(
            check(Some("not a token!"), "/story", &KEY, site, at(10)),
            FormCheck::Malformed
        );
        let huge = "A".repeat(10_000);
        assert_eq!(
            check(Some(&huge), "/story", &KEY, site, at(10)),
            FormCheck::Malformed
        );
        assert_eq!(
            check(Some(&token), "/story", &[8; 32], site, at(10)),
            FormCheck::Forged
        );
        assert_eq!(
            check(Some(&token), "/story", &KEY, SiteId::new(), at(10)),
            FormCheck::Forged
        );
        assert_eq!(
            check(Some(&token), "/other", &KEY, site, at(10)),
            FormCheck::WrongArticle
        );
        let late = at(TOKEN_LIFETIME.as_secs() as i64 + 1);
        assert_eq!(
            check(Some(&token), "/story", &KEY, site, late),
            FormCheck::Expired
        );
        assert_eq!(
            check(Some(&token), "/story", &KEY, site, at(-3_600)),
            FormCheck::Forged
        );
    }

    #[test]
    fn changing_any_character_of_a_token_makes_it_fail() {
        let site = SiteId::new();
        let (token, _) = issue(&KEY, site, "/story", at(0));
        for i in 0..token.len() {
            let mut changed: Vec<u8> = token.clone().into_bytes();
            changed[i] = if changed[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(changed).unwrap_or_default();
            let check = verify(&[KEY], site, "/story", Some(&changed), at(10));
            assert!(!matches!(check, FormCheck::Valid { .. }), "position {i}");
        }
    }

    #[test]
    fn a_missing_token_counts_only_when_the_site_requires_one() {
        let plain = reply("A thoughtful reply about the article");
        let assessment = assess_facts(&plain, &Facts::default());
        assert!(!hits(&assessment, "form-token-missing"));
        let strict = Policy {
            require_form_token: true,
            ..Policy::default()
        };
        let assessment = crate::spam::Assessor::with_prior(crate::spam::Prior::empty()).assess(
            &plain,
            &strict,
            &Facts::default(),
        );
        assert!(hits(&assessment, "form-token-missing"));
        assert_eq!(assessment.verdict, Verdict::Hold);
    }

    #[test]
    fn bad_tokens_score_by_their_kind() {
        let plain = reply("A thoughtful reply about the article");
        let cases = [
            (FormCheck::Malformed, "form-token-invalid"),
            (FormCheck::Forged, "form-token-invalid"),
            (FormCheck::WrongArticle, "form-token-invalid"),
            (FormCheck::Expired, "form-token-expired"),
        ];
        for (form, rule) in cases {
            let facts = Facts {
                form,
                ..Facts::default()
            };
            assert!(hits(&assess_facts(&plain, &facts), rule), "{form:?}");
        }
        let reused = Facts {
            form: FormCheck::Valid {
                age: Duration::from_secs(60),
                nonce: [1; 16],
            },
            token_reused: true,
            ..Facts::default()
        };
        let assessment = assess_facts(&plain, &reused);
        assert!(hits(&assessment, "form-token-reused"));
        assert!(!hits(&assessment, "form-too-fast"));
    }

    #[test]
    fn a_reply_sent_faster_than_the_minimum_is_flagged() {
        let plain = reply("A thoughtful reply about the article");
        let valid = |secs| Facts {
            form: FormCheck::Valid {
                age: Duration::from_secs(secs),
                nonce: [1; 16],
            },
            ..Facts::default()
        };
        assert!(hits(&assess_facts(&plain, &valid(2)), "form-too-fast"));
        let calm = assess_facts(&plain, &valid(40));
        assert!(!hits(&calm, "form-too-fast"));
        assert!(calm.reasons.is_empty());
    }

    #[test]
    fn a_filled_honeypot_makes_a_reply_spam() -> Result<(), String> {
        let raw = crate::domain::RawReply {
            article: "/story",
            author_name: "Bot",
            author_email: "bot@example.com",
            body: "A thoughtful reply about the article",
            honeypot: "http://spam.example",
            ..Default::default()
        };
        let bot = crate::domain::validate(&raw).map_err(|v| format!("{v:?}"))?;
        let assessment = assess_facts(&bot, &Facts::default());
        assert!(hits(&assessment, "honeypot"));
        assert_eq!(assessment.verdict, Verdict::Spam);
        assert!(!hits(
            &assess_facts(&reply("hello"), &Facts::default()),
            "honeypot"
        ));
        Ok(())
    }
}
