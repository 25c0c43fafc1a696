//! The cost of assessing one realistic reply with every rule on and a trained model: the
//! built-in prior plus a site's learned statistics, a policy with term lists, blocklists
//! and restricted scripts, a valid form token and a hundred recent replies to compare with;
//! then the same on a site that has taught only ten replies, where the classifier reads the
//! prior's regression as well; then that site in a deployment whose other sites share 300
//! lessons (`--shared-learning`), which it reads too.

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use replyguard::{
    domain::{RawReply, validate},
    privacy::AuthorHash,
    spam::{
        Assessor, Facts, FormCheck, Label, LearnedStats, Policy, RecentReply, features, fingerprint,
    },
};

const BODY: &str = "I read the whole piece twice. The council's numbers on the new tram line \
    don't add up: the 2019 estimate was half of what they quote now, and nobody explains the \
    difference. There is a good summary at https://transport.example.org/tram-costs if anyone \
    wants the details. Still, I'd rather pay for it than sit in traffic for another ten years!";

fn bench_assess(c: &mut Criterion) {
    let raw = RawReply {
        article: "/2024/11/27/tram-line",
        author_name: "Jane Reader",
        author_email: "jane@example.com",
        author_website: "https://jane.example.net",
        body: BODY,
        ip: "198.51.100.23",
        user_agent: "Mozilla/5.0",
        ..RawReply::default()
    };
    let Ok(reply) = validate(&raw) else {
        eprintln!("the benchmark's reply does not validate");
        return;
    };

    let policy = Policy {
        blocked_terms: vec!["casino".into(), "cheap pills".into(), "viagra".into()],
        moderation_terms: vec!["bitcoin".into(), "crypto".into(), "loan".into()],
        blocked_ips: vec!["203.0.113.0/24".into(), "2001:db8:bad::/48".into()],
        blocked_email_domains: vec!["spam.example".into()],
        blocked_websites: vec!["pills.example".into()],
        allowed_scripts: vec!["latin".into()],
        ..Policy::default()
    };

    // A site that has taught its filter `lessons` replies.
    let taught = |lessons: usize| {
        let mut learned = LearnedStats::new();
        for i in 0..lessons {
            let text = if i % 3 == 0 {
                format!(
                    "check out my channel {i} and subscribe for free gifts http://promo{i}.example"
                )
            } else {
                format!(
                    "the council vote number {i} on the tram line was a close call for the town"
                )
            };
            let Ok(taught) = validate(&RawReply { body: &text, ..raw }) else {
                continue;
            };
            let label = if i % 3 == 0 { Label::Spam } else { Label::Ham };
            learned.learn(&features(&taught), label, 1.0);
        }
        learned
    };
    let learned = taught(300);

    let recent: Vec<RecentReply> = (0..100)
        .map(|i| RecentReply {
            fingerprint: fingerprint(&format!("an earlier reply number {i} about something else")),
            author: i,
        })
        .collect();
    let facts = Facts {
        author: Some(AuthorHash([200; 32])),
        author_approved: 2,
        since_author_reply: Some(Duration::from_secs(3_600)),
        since_ip_reply: Some(Duration::from_secs(600)),
        recent: &recent,
        form: FormCheck::Valid {
            age: Duration::from_secs(95),
            nonce: [3; 16],
        },
        learned: &learned,
        ..Facts::default()
    };

    let assessor = Assessor::default();
    c.bench_function("assess one reply, all rules on", |b| {
        b.iter(|| assessor.assess(black_box(&reply), black_box(&policy), black_box(&facts)))
    });

    // A site that has taught a few replies: the prior's regression and the site's counts
    // are both read, the most work the classifier does.
    let few = taught(10);
    let new_site = Facts {
        learned: &few,
        ..facts
    };
    c.bench_function("assess one reply, all rules on, a new site", |b| {
        b.iter(|| assessor.assess(black_box(&reply), black_box(&policy), black_box(&new_site)))
    });

    // The same new site in a deployment whose other sites share 300 lessons
    // (`--shared-learning`): the shared counts are read beside the prior and the site's.
    let shared = taught(300);
    let new_sharing_site = Facts {
        shared: &shared,
        ..new_site
    };
    c.bench_function(
        "assess one reply, all rules on, a new site, shared lessons",
        |b| {
            b.iter(|| {
                assessor.assess(
                    black_box(&reply),
                    black_box(&policy),
                    black_box(&new_sharing_site),
                )
            })
        },
    );
}

criterion_group!(benches, bench_assess);
criterion_main!(benches);
