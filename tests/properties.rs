//! Properties over arbitrary input. Whatever a request carries, validating, assessing, masking,
//! rendering and checking its form token end in an answer, never a panic; an email address typed
//! into a reply is never in what the public sees; and a sealed text opens to what was sealed.
//!
//! These are the pure steps of a submission, so thousands of cases run in a second; the tests
//! through the real server (`comments.rs`, `personal_data.rs`) cover what surrounds them.

use std::sync::LazyLock;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use replyguard::{
    domain::{RawReply, validate},
    ids::{CommentId, SiteId},
    privacy::{SecretKey, Vault, mask_contacts, render_html},
    spam::{Assessor, Facts, Policy, form},
};

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

/// A well-formed field now and then, so that cases get past validation to the assessment.
fn field(valid: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![1 => Just(valid.to_owned()), 1 => text()]
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn any_reply_is_validated_and_assessed_without_panicking(
        article in field("2026/11/budget"),
        name in field("Jane Reader"),
        email in field("jane@example.com"),
        website in field("https://jane.example.org/"),
        body in text(),
        ip in field("203.0.113.7"),
        agent in text(),
        referrer in text(),
        token in text(),
        honeypot in text(),
        key in field("retry-1"),
    ) {
        let raw = RawReply {
            article: &article,
            parent_id: "",
            author_name: &name,
            author_email: &email,
            author_website: &website,
            body: &body,
            ip: &ip,
            user_agent: &agent,
            referrer: &referrer,
            form_token: &token,
            honeypot: &honeypot,
            idempotency_key: &key,
        };
        match validate(&raw) {
            Ok(reply) => {
                let policy = Policy::default();
                let assessment = ASSESSOR.assess(&reply, &policy, &Facts::default());
                prop_assert!(assessment.score.is_finite());
                prop_assert!(assessment.reasons.iter().all(|r| r.weight.is_finite()));
                policy.initial_status(&assessment, false);
                render_html(&mask_contacts(reply.body.as_str()));
            }
            Err(violations) => prop_assert!(!violations.is_empty()),
        }
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
    fn any_form_token_is_judged_without_panicking(token in text(), article in text()) {
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        form::verify(&[[7; 32]], SiteId::new(), &article, Some(&token), now);
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
