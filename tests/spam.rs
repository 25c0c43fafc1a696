//! The spam rules that need a site's history, through the real gRPC API:
//! flooding, duplicates, an author's record, campaigns, and learning.

mod common;

use common::{
    Backend, Harness, Moderation, TestSite, assessed, backend_tests, decide, reply, reply_by,
};
use replyguard::{
    domain::Scope,
    proto::{self, CommentStatus, ModerationAction},
    spam::{Mode, Policy},
};
use tonic::Code;
use tonic_types::StatusExt;

fn rules(assessment: &proto::Assessment) -> Vec<&str> {
    assessment.reasons.iter().map(|r| r.rule.as_str()).collect()
}

fn weight_of(assessment: &proto::Assessment, rule: &str) -> f64 {
    assessment
        .reasons
        .iter()
        .filter(|r| r.rule == rule)
        .map(|r| r.weight)
        .sum()
}

async fn a_second_reply_within_the_interval_is_refused_with_a_retry_delay(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    let by = |body: &str, email: &str, ip: &str| {
        let mut req = reply_by("story", body, "Jane", email);
        req.client.as_mut().expect("client").ip = ip.into();
        req
    };

    comments
        .submit_comment(by("First thoughts.", "jane@example.com", "203.0.113.7"))
        .await
        .expect("the first reply");
    for (what, req) in [
        (
            "the same author",
            by("Second thoughts.", "jane@example.com", "203.0.113.8"),
        ),
        (
            "the same address",
            by("Someone else here.", "joe@example.com", "203.0.113.7"),
        ),
    ] {
        let status = comments.submit_comment(req).await.expect_err(what);
        assert_eq!(status.code(), Code::ResourceExhausted, "{what}");
        let delay = status
            .get_details_retry_info()
            .and_then(|info| info.retry_delay)
            .expect("a RetryInfo delay");
        assert!((1..=15).contains(&delay.as_secs()), "{what}: {delay:?}");
    }
    comments
        .submit_comment(by("Unrelated reader.", "ann@example.com", "203.0.113.9"))
        .await
        .expect("another author from another address");

    // A site that switches the rule off lets the author go on.
    let calm = h.site_without_flood_limit("calm.example.com").await;
    let mut calm_comments = h.comments(&calm.site_key).await;
    for body in ["One.", "Two."] {
        calm_comments
            .submit_comment(by(body, "jane@example.com", "203.0.113.7"))
            .await
            .expect("no flood limit");
    }
}

async fn the_same_text_twice_by_one_author_on_one_article_is_already_there(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_without_flood_limit("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    let said = || reply_by("story", "I said this once.", "Jane", "jane@example.com");
    let first = comments
        .submit_comment(said())
        .await
        .expect("first")
        .into_inner()
        .comment
        .expect("comment");
    let status = comments
        .submit_comment(said())
        .await
        .expect_err("the same again");
    assert_eq!(status.code(), Code::AlreadyExists);
    // The details name the reply that is there already.
    let there = status.get_details_resource_info().expect("a ResourceInfo");
    assert_eq!(there.resource_type, "replyguard.v1.Comment");
    assert_eq!(there.resource_name, first.id);

    let mut elsewhere = said();
    elsewhere.article = "another-story".into();
    comments
        .submit_comment(elsewhere)
        .await
        .expect("the same words under another article are a new reply");
}

async fn an_authors_record_on_the_site_counts_for_and_against_them(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h
        .site_with(
            "news.example.com",
            Policy {
                mode: Mode::ModerateAll,
                flood_interval_seconds: 0,
                ..Policy::default()
            },
        )
        .await;
    let mut moderation = h.moderation(&site.mod_token).await;
    let (good, _, _) = assessed(
        &h,
        &site,
        reply_by("a", "A careful first reply.", "Ann", "ann@example.com"),
    )
    .await;
    let (bad, _, _) = assessed(
        &h,
        &site,
        reply_by("a", "Cheap watches, great deals.", "Bob", "bob@example.com"),
    )
    .await;
    decide(&mut moderation, ModerationAction::Approve, &[good]).await;
    decide(&mut moderation, ModerationAction::MarkSpam, &[bad]).await;

    let (_, _, ann) = assessed(
        &h,
        &site,
        reply_by("b", "Another careful reply.", "Ann", "ANN@example.com"),
    )
    .await;
    assert!(rules(&ann).contains(&"history-trusted"), "{ann:?}");
    let (_, _, bob) = assessed(
        &h,
        &site,
        reply_by("b", "Back again with offers.", "Bob", "bob@example.com"),
    )
    .await;
    assert!(rules(&bob).contains(&"history-spam"), "{bob:?}");
    assert!(bob.score > ann.score);

    // Trust comes from the keyed hash of an email with approved replies on
    // this site, not from the name typed beside it.
    let (_, _, stranger) = assessed(
        &h,
        &site,
        reply_by("b", "Hello, I am Ann too.", "Ann", "ann@elsewhere.example"),
    )
    .await;
    assert!(!rules(&stranger).contains(&"history-trusted"));
}

async fn nearly_the_same_text_from_many_authors_scores_as_a_campaign(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_without_flood_limit("news.example.com").await;
    let reason_of = |assessment: &proto::Assessment| {
        assessment
            .reasons
            .iter()
            .find(|r| r.rule == "campaign")
            .map(|r| (r.weight, r.reason.clone()))
    };
    // The same words, differently cased and punctuated, as copy-paste campaigns send them,
    // each from another reader. One earlier copy is no evidence: readers post a reply under
    // two articles, and two of them may paste the same sentence.
    let text = |n: usize| {
        let text = "Great article, everyone should read my own take on this topic at my blog today";
        if n == 1 {
            text.to_owned()
        } else {
            format!("{}!!", text.to_uppercase())
        }
    };
    for n in 1..=2 {
        let (_, _, seen) = assessed(&h, &site, reply(&format!("story-{n}"), &text(n))).await;
        assert!(!rules(&seen).contains(&"campaign"), "{n}: {seen:?}");
    }
    let (_, _, third) = assessed(&h, &site, reply("story-3", &text(3))).await;
    assert_eq!(
        reason_of(&third),
        Some((
            2.0,
            "nearly the same text as 2 recent replies (by 2 other authors)".to_owned()
        )),
        "{third:?}"
    );

    // A text with a link: one copy holds, and from a third sender it is spam.
    let linked = "Make thousands every week from your kitchen table with this one simple \
                  trick: https://cash.example/start";
    let (_, _, first) = assessed(&h, &site, reply("story-1", linked)).await;
    assert!(!rules(&first).contains(&"campaign"), "{first:?}");
    let (_, _, second) = assessed(&h, &site, reply("story-2", linked)).await;
    assert_eq!(
        reason_of(&second),
        Some((
            2.0,
            "nearly the same text as 1 recent reply (by 1 other author), with a link".to_owned()
        )),
        "{second:?}"
    );
    let (_, status, third) = assessed(&h, &site, reply("story-3", linked)).await;
    assert_eq!(weight_of(&third, "campaign"), 5.5, "{third:?}");
    assert_eq!(status, CommentStatus::Spam, "{third:?}");

    // One writer's copies under other articles are copies, but no other author's.
    let own = "A petition to keep the library open on Sundays, sign it here: \
               https://petition.example/library";
    let by_ann = |article: &str| reply_by(article, own, "Ann", "ann@example.com");
    for article in ["story-1", "story-2"] {
        assessed(&h, &site, by_ann(article)).await;
    }
    let (_, _, again) = assessed(&h, &site, by_ann("story-3")).await;
    assert_eq!(
        reason_of(&again),
        Some((
            2.0,
            "nearly the same text as 2 recent replies (all by the same author elsewhere), with a \
             link"
                .to_owned()
        )),
        "{again:?}"
    );
}

/// Teaches `lesson` with moderator decisions on replies like `like`.
async fn teach(
    h: &Harness,
    site: &TestSite,
    moderation: &mut Moderation,
    lesson: ModerationAction,
    texts: &[&str],
) {
    for text in texts {
        let (id, _, _) = assessed(h, site, reply("lessons", text)).await;
        decide(moderation, lesson, &[id]).await;
    }
}

async fn moderators_decisions_teach_the_sites_filter_and_no_other(backend: Backend) {
    let h = Harness::new(backend).await;
    let moderate_all = Policy {
        mode: Mode::ModerateAll,
        ..Policy::default()
    };
    let site = h.site_with("news.example.com", moderate_all.clone()).await;
    let other = h.site_with("other.example.com", moderate_all).await;
    let mut moderation = h.moderation(&site.mod_token).await;
    let probe = "Limited offer: discount crypto signals, join the telegram group now";
    let fair = "The council budget vote deserved a closer look at the school numbers";

    let (_, _, before) = assessed(&h, &site, reply("probe-1", probe)).await;
    let (_, _, fair_before) = assessed(&h, &site, reply("probe-1", fair)).await;

    teach(
        &h,
        &site,
        &mut moderation,
        ModerationAction::MarkSpam,
        &[
            "Discount crypto signals in our telegram group, limited offer",
            "Join the telegram group for crypto signals now, discount inside",
            "Crypto signals with a limited discount, telegram group open now",
            "Telegram group: crypto trading signals, join now for the discount",
        ],
    )
    .await;
    teach(
        &h,
        &site,
        &mut moderation,
        ModerationAction::MarkHam,
        &[
            "The budget vote and the school numbers need a closer look",
            "A closer look at the council budget would help the schools",
            "The school numbers in this budget vote surprised me",
            "Thanks for explaining the council vote on the school budget",
        ],
    )
    .await;

    let (_, _, after) = assessed(&h, &site, reply("probe-2", probe)).await;
    assert!(
        weight_of(&after, "classifier") > weight_of(&before, "classifier"),
        "spam lessons raise a similar reply: {before:?} -> {after:?}"
    );
    let (_, _, fair_after) = assessed(&h, &site, reply("probe-2", fair)).await;
    assert!(
        weight_of(&fair_after, "classifier") < weight_of(&fair_before, "classifier"),
        "ham lessons lower a similar reply: {fair_before:?} -> {fair_after:?}"
    );

    // The other site learned nothing.
    let (_, _, elsewhere) = assessed(&h, &other, reply("probe-3", probe)).await;
    assert_eq!(
        weight_of(&elsewhere, "classifier"),
        weight_of(&before, "classifier"),
        "{elsewhere:?}"
    );
}

/// The classifier's weight for `text` on `site`, as a new reply of an article of its own.
async fn classifier_weight(h: &Harness, site: &TestSite, article: &str, text: &str) -> f64 {
    let (_, _, assessment) = assessed(h, site, reply(article, text)).await;
    weight_of(&assessment, "classifier")
}

async fn a_sites_decisions_teach_the_deployments_other_sites_where_the_operator_shares_them(
    backend: Backend,
) {
    let moderate_all = Policy {
        mode: Mode::ModerateAll,
        ..Policy::default()
    };
    // The campaign the other site's moderators marked, reaching this one.
    let probe = "Discount crypto signals in our telegram group, limited offer";
    let spam = [
        probe,
        "Join the telegram group for crypto signals now, discount inside",
        "Crypto signals with a limited discount, telegram group open now",
        "Our telegram group: discount crypto signals, a limited offer",
        "Limited offer in our telegram group, discount crypto signals",
        "Discount crypto signals, limited offer, in our telegram group now",
        "Crypto signals at a discount in our telegram group, offer limited",
        "In our telegram group: crypto signals, discount, limited offer",
    ];
    let ham = [
        "The budget vote and the school numbers need a closer look",
        "Thanks for explaining the council vote on the school budget",
    ];
    let mut weights = Vec::new();
    for shared in [false, true] {
        let h = Harness::configured(backend, |settings| settings.shared_learning = shared).await;
        let teacher = h.site_with("news.example.com", moderate_all.clone()).await;
        let learner = h.site_with("blog.example.org", moderate_all.clone()).await;
        let mut moderation = h.moderation(&teacher.mod_token).await;
        let before = classifier_weight(&h, &learner, "probe-1", probe).await;

        teach(
            &h,
            &teacher,
            &mut moderation,
            ModerationAction::MarkHam,
            &ham,
        )
        .await;
        let mut marked = Vec::new();
        for text in spam {
            let (id, _, _) = assessed(&h, &teacher, reply("lessons", text)).await;
            decide(
                &mut moderation,
                ModerationAction::MarkSpam,
                std::slice::from_ref(&id),
            )
            .await;
            marked.push(id);
        }
        let taught = classifier_weight(&h, &learner, "probe-2", probe).await;
        // The teacher reads its own lessons once, shared or not.
        let own = classifier_weight(&h, &teacher, "probe-2", probe).await;

        // A moderator who changes their mind takes the lessons back from the shared counts,
        // and teaches the other label; changing it again gives the first reading exactly.
        decide(&mut moderation, ModerationAction::MarkHam, &marked).await;
        let reversed = classifier_weight(&h, &learner, "probe-3", probe).await;
        decide(&mut moderation, ModerationAction::MarkSpam, &marked).await;
        let again = classifier_weight(&h, &learner, "probe-4", probe).await;
        weights.push((before, taught, reversed, again, own));
    }
    let [
        (before, taught, reversed, again, own),
        (s_before, s_taught, s_reversed, s_again, s_own),
    ] = weights[..]
    else {
        unreachable!("two servers")
    };
    assert_eq!(
        (before, taught, reversed, again),
        (before, before, before, before),
        "without the setting another site's decisions teach nothing here"
    );
    assert_eq!(s_before, before, "nothing shared yet");
    assert!(
        s_taught > s_before,
        "the other site's spam lessons raise the reply: {s_before} -> {s_taught}"
    );
    assert!(
        s_reversed < s_taught,
        "reversed, they no longer do: {s_taught} -> {s_reversed}"
    );
    assert_eq!(s_again, s_taught, "taken back exactly, and taught again");
    assert_eq!(
        s_own, own,
        "a site's own lessons are not counted twice through the shared counts"
    );
}

async fn a_form_token_is_accepted_once(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h
        .site_with(
            "news.example.com",
            Policy {
                min_form_seconds: 0,
                ..Policy::default()
            },
        )
        .await;
    let token = h
        .comments(&site.site_key)
        .await
        .prepare_form(proto::PrepareFormRequest {
            article: "story".into(),
            ..Default::default()
        })
        .await
        .expect("prepare")
        .into_inner()
        .token;
    let with_token = |body: &str| {
        let mut req = reply("story", body);
        req.form = Some(proto::FormInfo {
            token: token.clone(),
            honeypot: String::new(),
        });
        req
    };
    let (_, status, first) = assessed(&h, &site, with_token("The first use of the form.")).await;
    assert_eq!(status, CommentStatus::Approved, "{first:?}");
    assert!(
        !rules(&first).iter().any(|r| r.starts_with("form-")),
        "{first:?}"
    );
    let (_, _, again) = assessed(&h, &site, with_token("The same form sent again.")).await;
    assert!(rules(&again).contains(&"form-token-reused"), "{again:?}");
}

async fn what_a_moderator_blocks_scores_as_spam_on_the_next_reply(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let token = h
        .moderator_token(&[site.id], &[Scope::Moderate, Scope::RevealEmail])
        .await;
    let mut moderation = h.moderation(&token).await;
    for (kind, value, email) in [
        (proto::BlockKind::Ip, "203.0.113.66", ""),
        (proto::BlockKind::Author, "", "pest@example.com"),
    ] {
        moderation
            .block(proto::BlockRequest {
                kind: kind.into(),
                value: value.into(),
                email: email.into(),
                ..Default::default()
            })
            .await
            .expect("block");
    }
    let mut from_ip = reply("story", "A perfectly polite reply.");
    from_ip.client.as_mut().expect("client").ip = "203.0.113.66".into();
    let (_, status, blocked_ip) = assessed(&h, &site, from_ip).await;
    assert_eq!(status, CommentStatus::Spam, "{blocked_ip:?}");
    assert!(rules(&blocked_ip).contains(&"moderator-block"));

    let by_author = reply_by("story", "Me again, politely.", "Pest", "Pest@Example.com");
    let (_, status, blocked_author) = assessed(&h, &site, by_author).await;
    assert_eq!(status, CommentStatus::Spam, "{blocked_author:?}");
    // The reasons outlive the address (the retention sweep) and never hold the email: they
    // name what kind of entry caught the reply, not its value.
    for (assessment, kind) in [(&blocked_ip, "ip"), (&blocked_author, "author")] {
        let reason = assessment
            .reasons
            .iter()
            .find(|r| r.rule == "moderator-block")
            .expect("the block's reason");
        assert_eq!(reason.reason, format!("blocked by a moderator: {kind}"));
    }

    let (_, status, clean) = assessed(&h, &site, reply("story", "Someone else entirely.")).await;
    assert_eq!(status, CommentStatus::Approved, "{clean:?}");
}

/// A new site has only the built-in prior, made from YouTube comments. What it reads as sure
/// spam with nearly every feature known goes straight to spam; a newspaper reader's long prose,
/// most of whose features it never learned, is not read as spam by the sum of small weights.
async fn a_new_site_bins_spam_it_knows_and_approves_prose_it_does_not(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_without_flood_limit("news.example.com").await;

    let spam = "please subscribe to my channel for more videos";
    let (_, status, assessment) = assessed(&h, &site, reply("story", spam)).await;
    assert_eq!(status, CommentStatus::Spam, "{assessment:?}");
    assert!(
        weight_of(&assessment, "classifier") >= 5.0,
        "{assessment:?}"
    );

    let prose = "Everyone keeps missing the point. People will buy this phone because it is \
                 fashion, not because it is useful. My father wore the same watch for forty \
                 years and never once needed it to tell him the weather. Now we pay hundreds of \
                 dollars every two years for a new one, and the companies make billions from \
                 people who think they need the latest thing. Check the numbers yourself: the \
                 money goes to shareholders, not to the workers who build them. Thanks for \
                 writing this, it is about time somebody said it.";
    let (_, status, assessment) = assessed(&h, &site, reply("story", prose)).await;
    assert_eq!(status, CommentStatus::Approved, "{assessment:?}");
    let reason = assessment
        .reasons
        .iter()
        .find(|r| r.rule == "classifier")
        .expect("the classifier's reason");
    assert!(reason.reason.contains(" new to it"), "{reason:?}");
}

/// Self-promotion with its address is an advertisement: spam on a new site, before anything is
/// learned; the same promotion without a link waits for a moderator.
async fn self_promotion_with_a_link_is_spam_without_learning(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_without_flood_limit("news.example.com").await;

    let linked =
        "Great piece on the harbour. Visit my blog at https://harbour-notes.example/latest";
    let (_, status, assessment) = assessed(&h, &site, reply("story", linked)).await;
    assert_eq!(status, CommentStatus::Spam, "{assessment:?}");
    assert_eq!(
        weight_of(&assessment, "self-promotion"),
        5.0,
        "{assessment:?}"
    );

    let plain = "Great piece on the harbour. Visit my blog for the history of the old piers.";
    let (_, status, assessment) = assessed(&h, &site, reply("story", plain)).await;
    assert_eq!(status, CommentStatus::Pending, "{assessment:?}");
    assert_eq!(
        weight_of(&assessment, "self-promotion"),
        1.5,
        "{assessment:?}"
    );
}

backend_tests!(
    a_new_site_bins_spam_it_knows_and_approves_prose_it_does_not,
    self_promotion_with_a_link_is_spam_without_learning,
    what_a_moderator_blocks_scores_as_spam_on_the_next_reply,
    a_form_token_is_accepted_once,
    a_second_reply_within_the_interval_is_refused_with_a_retry_delay,
    the_same_text_twice_by_one_author_on_one_article_is_already_there,
    an_authors_record_on_the_site_counts_for_and_against_them,
    nearly_the_same_text_from_many_authors_scores_as_a_campaign,
    moderators_decisions_teach_the_sites_filter_and_no_other,
    a_sites_decisions_teach_the_deployments_other_sites_where_the_operator_shares_them,
);
