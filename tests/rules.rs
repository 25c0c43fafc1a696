//! Every rule of the spam assessment through the real gRPC API: for each, a reply that meets
//! it and a reply that does not, submitted to a real server and read back as a moderator
//! sees them. Rules that need an author's record or a moderator's lessons (the history rules,
//! the moderator's blocklist and the classifier) are in `tests/spam.rs`; the last test here
//! checks that no rule is left out of both.

mod common;

use chrono::{Duration, Utc};
use common::{Backend, Harness, TestSite, assessed, backend_tests, decide, reply, reply_by};
use replyguard::{
    ids::SiteId,
    privacy::Vault,
    proto::{self, ModerationAction},
    spam::{Policy, RULES, RuleSetting, RuleState, form},
};

/// Rules whose cases are in `tests/spam.rs`, or in a test of their own below.
const TESTED_ELSEWHERE: &[&str] = &[
    "history-trusted",
    "history-spam",
    "history-ip-spam",
    "moderator-block",
    "classifier",
];

/// One rule's pair of replies. `misses` is submitted first, so a rule about what came
/// before (a reused token, a flood, a campaign) meets `meets` because of it.
struct Case<'a> {
    rule: &'static str,
    site: &'a TestSite,
    misses: proto::SubmitCommentRequest,
    meets: proto::SubmitCommentRequest,
}

/// Submits a reply and returns the rules that scored it, as `GetComment` shows them.
async fn rules_met(
    h: &Harness,
    site: &TestSite,
    request: proto::SubmitCommentRequest,
) -> Vec<String> {
    let (_, _, assessment) = assessed(h, site, request).await;
    assessment
        .reasons
        .into_iter()
        .map(|reason| reason.rule)
        .collect()
}

fn from_ip(mut request: proto::SubmitCommentRequest, ip: &str) -> proto::SubmitCommentRequest {
    request.client.as_mut().expect("client").ip = ip.to_owned();
    request
}

/// The request with its author changed by `change`.
fn by_author(
    mut request: proto::SubmitCommentRequest,
    change: impl FnOnce(&mut proto::Author),
) -> proto::SubmitCommentRequest {
    change(request.author.as_mut().expect("author"));
    request
}

fn with_form(
    mut request: proto::SubmitCommentRequest,
    token: &str,
    honeypot: &str,
) -> proto::SubmitCommentRequest {
    request.form = Some(proto::FormInfo {
        token: token.to_owned(),
        honeypot: honeypot.to_owned(),
    });
    request
}

/// A form token for `story`, as `PrepareForm` would have issued it `age` ago.
fn token_issued(h: &Harness, site: SiteId, age: Duration) -> String {
    let vault = Vault::new(&h.key);
    form::issue(vault.form_key(), site, "story", Utc::now() - age).0
}

async fn every_rule_meets_its_reply_and_not_the_other(backend: Backend) {
    let h = Harness::new(backend).await;
    // One site holds every list, so each case needs only its own words; nobody waits out a
    // flood interval but on the site that tests it.
    let lists = h
        .site_with(
            "news.example.com",
            Policy {
                flood_interval_seconds: 0,
                blocked_terms: vec!["casino".into()],
                moderation_terms: vec!["refund".into()],
                blocked_ips: vec!["192.0.2.0/24".into()],
                blocked_email_domains: vec!["spam.example".into()],
                blocked_websites: vec!["bad.example".into()],
                allowed_scripts: vec!["latin".into()],
                ..Policy::default()
            },
        )
        .await;
    let strict = h
        .site_with(
            "strict.example.com",
            Policy {
                require_form_token: true,
                ..Policy::default()
            },
        )
        .await;
    // Flooding is refused while the rule is on; log-only shows it on the reply instead.
    let mut watching = Policy::default();
    watching.rules.insert(
        "flood".into(),
        RuleSetting {
            state: Some(RuleState::LogOnly),
            weight: None,
        },
    );
    let flood = h.site_with("busy.example.com", watching).await;

    let minute = Duration::minutes(1);
    let reused = token_issued(&h, lists.id, minute);
    // With a link, one earlier copy makes a campaign (without, it takes two).
    let campaign = "Make thousands every week from your kitchen table with this one simple \
                    trick that banks hate: https://cash.example/start";
    let cases = vec![
        Case {
            rule: "blocked-terms",
            site: &lists,
            misses: reply("story", "An occasional visit to the old town is worth it."),
            meets: reply("story", "Best c a s i n o bonus in town."),
        },
        Case {
            rule: "moderation-terms",
            site: &lists,
            misses: reply("story", "The tickets were refunded within a week."),
            meets: reply("story", "I want a Refund for the tickets."),
        },
        Case {
            rule: "blocked-ip",
            site: &lists,
            misses: from_ip(reply("story", "Sent from a clean address."), "198.51.100.7"),
            meets: from_ip(reply("story", "Sent from a blocked range."), "192.0.2.55"),
        },
        Case {
            rule: "blocked-email-domain",
            site: &lists,
            misses: by_author(reply("story", "Mail from a fine domain."), |a| {
                a.email = "ann@example.org".into()
            }),
            meets: by_author(reply("story", "Mail from a blocked domain."), |a| {
                a.email = "ann@mail.spam.example".into()
            }),
        },
        Case {
            rule: "blocked-website",
            site: &lists,
            misses: by_author(reply("story", "My site is fine."), |a| {
                a.website = "https://good.example/".into()
            }),
            meets: by_author(reply("story", "My site is not."), |a| {
                a.website = "https://www.bad.example/shop".into()
            }),
        },
        Case {
            rule: "honeypot",
            site: &lists,
            misses: with_form(reply("story", "A person left it empty."), "", ""),
            meets: with_form(
                reply("story", "A bot filled it in."),
                "",
                "https://x.example",
            ),
        },
        Case {
            rule: "form-token-missing",
            site: &strict,
            misses: with_form(
                reply("story", "Sent with the form's token."),
                &token_issued(&h, strict.id, minute),
                "",
            ),
            meets: reply("story", "Sent without a token."),
        },
        Case {
            rule: "form-token-invalid",
            site: &lists,
            misses: with_form(
                reply("story", "A token from the form."),
                &token_issued(&h, lists.id, minute),
                "",
            ),
            meets: with_form(reply("story", "A token made up."), "not-a-token", ""),
        },
        Case {
            rule: "form-token-expired",
            site: &lists,
            misses: with_form(
                reply("story", "A form opened an hour ago."),
                &token_issued(&h, lists.id, Duration::hours(1)),
                "",
            ),
            meets: with_form(
                reply("story", "A form left open for two days."),
                &token_issued(&h, lists.id, Duration::hours(49)),
                "",
            ),
        },
        Case {
            rule: "form-token-reused",
            site: &lists,
            misses: with_form(reply("story", "The token's first use."), &reused, ""),
            meets: with_form(reply("story", "The token's second use."), &reused, ""),
        },
        Case {
            rule: "form-too-fast",
            site: &lists,
            misses: with_form(
                reply("story", "Written in a minute."),
                &token_issued(&h, lists.id, minute),
                "",
            ),
            meets: with_form(
                reply("story", "Written in no time."),
                &token_issued(&h, lists.id, Duration::zero()),
                "",
            ),
        },
        Case {
            rule: "flood",
            site: &flood,
            misses: reply_by("story", "My first reply.", "Jane", "jane@example.com"),
            meets: reply_by(
                "story",
                "And my second, at once.",
                "Jane",
                "jane@example.com",
            ),
        },
        Case {
            rule: "links",
            site: &lists,
            misses: reply("story", "One source: https://example.org/report."),
            meets: reply(
                "story",
                "Two sources: https://example.org/report and https://example.net/data.",
            ),
        },
        Case {
            rule: "link-in-name",
            site: &lists,
            misses: by_author(reply("story", "Named as a person."), |a| {
                a.name = "Ann Reader".into()
            }),
            meets: by_author(reply("story", "Named as a shop."), |a| {
                a.name = "cheap-pills.example".into()
            }),
        },
        Case {
            rule: "link-shortener",
            site: &lists,
            misses: reply("story", "The full report: https://example.org/report-2026."),
            meets: reply("story", "The full report: https://bit.ly/3xR2026."),
        },
        Case {
            rule: "link-raw-ip",
            site: &lists,
            misses: reply("story", "The offer is at https://example.org/offer."),
            meets: reply("story", "The offer is at http://203.0.113.5/offer."),
        },
        Case {
            rule: "link-tld",
            site: &lists,
            misses: reply("story", "Deals at https://deals.example.org/ today."),
            meets: reply("story", "Deals at https://deals.xyz/ today."),
        },
        Case {
            rule: "link-website-repeat",
            site: &lists,
            misses: by_author(
                reply("story", "More in the city's report: https://example.org/r."),
                |a| a.website = "https://jane.example/".into(),
            ),
            meets: by_author(
                reply("story", "More on my own blog: https://jane.example/post."),
                |a| a.website = "https://jane.example/".into(),
            ),
        },
        Case {
            rule: "campaign",
            site: &lists,
            misses: reply("story", campaign),
            meets: reply("another-story", campaign),
        },
        Case {
            rule: "obfuscation",
            site: &lists,
            misses: reply("story", "Cheap watches at the market today."),
            // A Cyrillic "а" in "watches".
            meets: reply("story", "Cheap w\u{0430}tches at the market today."),
        },
        Case {
            rule: "link-disguised",
            site: &lists,
            misses: reply("story", "The minutes are on example.com, page 4."),
            meets: reply("story", "Earn money at example . com/start today."),
        },
        Case {
            rule: "shape-capitals",
            site: &lists,
            misses: reply("story", "This decision is absolutely outrageous."),
            meets: reply("story", "THIS DECISION IS ABSOLUTELY OUTRAGEOUS."),
        },
        Case {
            rule: "shape-repetition",
            site: &lists,
            misses: reply("story", "So good to read."),
            meets: reply("story", "Soooooooooooo good to read."),
        },
        Case {
            rule: "shape-short-link",
            site: &lists,
            misses: reply(
                "story",
                "The council's report explains the delays in detail: https://example.org/r.",
            ),
            meets: reply("story", "Look https://example.org/r"),
        },
        Case {
            rule: "shape-script",
            site: &lists,
            misses: reply("story", "Great article, thank you all."),
            meets: reply("story", "Отличная статья, спасибо всем."),
        },
        Case {
            rule: "engagement-bait",
            site: &lists,
            misses: reply(
                "story",
                "I like this piece, and the comment from the mayor.",
            ),
            meets: reply("story", "Like this comment if you read it to the end!"),
        },
        Case {
            rule: "self-promotion",
            site: &lists,
            misses: reply(
                "story",
                "My video of the flood shows the water reaching the bridge.",
            ),
            meets: reply(
                "story",
                "Great story! Check out my channel for more like it.",
            ),
        },
    ];

    let mut covered: Vec<&str> = cases.iter().map(|case| case.rule).collect();
    for case in cases {
        let missed = rules_met(&h, case.site, case.misses).await;
        assert!(
            !missed.iter().any(|rule| rule == case.rule),
            "{} met the reply it should miss: {missed:?}",
            case.rule
        );
        let met = rules_met(&h, case.site, case.meets).await;
        assert!(
            met.iter().any(|rule| rule == case.rule),
            "{} missed the reply it should meet: {met:?}",
            case.rule
        );
    }

    // Every rule has its cases, here or elsewhere.
    covered.extend_from_slice(TESTED_ELSEWHERE);
    covered.sort_unstable();
    let mut all: Vec<&str> = RULES.iter().map(|rule| rule.name).collect();
    all.sort_unstable();
    assert_eq!(covered, all);
}

async fn an_address_that_sent_spam_is_suspect_for_its_next_reply(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_without_flood_limit("news.example.com").await;
    let shared = "203.0.113.40";
    let id = h
        .comments(&site.site_key)
        .await
        .submit_comment(from_ip(reply("story", "Cheap watches here."), shared))
        .await
        .expect("submit")
        .into_inner()
        .comment
        .expect("comment")
        .id;
    let mut moderation = h.moderation(&site.mod_token).await;
    decide(&mut moderation, ModerationAction::MarkSpam, &[id]).await;

    // Another author from the same address meets the rule; one from elsewhere does not.
    let same = rules_met(&h, &site, from_ip(reply("story", "Hello there."), shared)).await;
    assert!(
        same.iter().any(|rule| rule == "history-ip-spam"),
        "{same:?}"
    );
    let other = rules_met(
        &h,
        &site,
        from_ip(reply("story", "Hello from elsewhere."), "203.0.113.41"),
    )
    .await;
    assert!(
        !other.iter().any(|rule| rule == "history-ip-spam"),
        "{other:?}"
    );
}

backend_tests!(
    flavor = "multi_thread";
    every_rule_meets_its_reply_and_not_the_other,
    an_address_that_sent_spam_is_suspect_for_its_next_reply,
);
