//! A site's moderation policy, through `GetPolicy`/`UpdatePolicy` and through
//! `replyctl policy`, and the form tokens of `PrepareForm` that the policy can
//! require: what a moderator changes is what the next reply is judged by.

mod common;

use std::{
    process::Output,
    sync::atomic::{AtomicU32, Ordering},
};

use common::{Backend, Harness, TestSite, backend_tests, bad_fields, reply_by};
use replyguard::{
    proto::{self, CommentStatus, SpamReason},
    spam::{Policy, RULES, RuleSetting, RuleState},
};
use serde_json::Value;
use tonic::Code;

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `replyctl --output json policy set KEY VALUE`, answered with the whole policy.
fn policy_set(h: &Harness, site: &TestSite, key: &str, value: &str) -> Value {
    let output = h.replyctl(
        &site.mod_token,
        &["--output", "json", "policy", "set", key, value],
    );
    serde_json::from_str(&stdout(&output)).expect("JSON output")
}

/// A reply by a reader of its own (name, email and address), so that no flood interval or
/// author history ties it to the test's other replies.
fn reply(article: &str, body: &str) -> proto::SubmitCommentRequest {
    static READERS: AtomicU32 = AtomicU32::new(0);
    let reader = READERS.fetch_add(1, Ordering::Relaxed) % 250 + 1;
    let mut request = reply_by(
        article,
        body,
        &format!("Reader {reader}"),
        &format!("reader{reader}@example.com"),
    );
    request.client = Some(proto::ClientInfo {
        ip: format!("203.0.113.{reader}"),
        user_agent: "Mozilla/5.0".to_owned(),
        referrer: String::new(),
    });
    request
}

async fn get_policy(h: &Harness, site: &TestSite) -> proto::Policy {
    h.moderation(&site.mod_token)
        .await
        .get_policy(proto::GetPolicyRequest::default())
        .await
        .expect("get the policy")
        .into_inner()
        .policy
        .expect("a policy")
}

async fn update_policy(
    h: &Harness,
    site: &TestSite,
    policy: proto::Policy,
) -> Result<proto::Policy, tonic::Status> {
    let response = h
        .moderation(&site.mod_token)
        .await
        .update_policy(proto::UpdatePolicyRequest {
            site: String::new(),
            policy: Some(policy),
        })
        .await?;
    Ok(response.into_inner().policy.expect("a policy"))
}

/// Submits a reply and returns its id and status.
async fn submit(
    h: &Harness,
    site: &TestSite,
    request: proto::SubmitCommentRequest,
) -> (String, CommentStatus) {
    common::submitted(&mut h.comments(&site.site_key).await, request).await
}

/// The spam reasons a moderator sees on a comment.
async fn reasons(h: &Harness, site: &TestSite, id: &str) -> Vec<SpamReason> {
    h.moderation(&site.mod_token)
        .await
        .get_comment(proto::GetCommentRequest { id: id.to_owned() })
        .await
        .expect("get the comment")
        .into_inner()
        .comment
        .and_then(|item| item.assessment)
        .expect("an assessment")
        .reasons
}

fn rule_names(reasons: &[SpamReason]) -> Vec<&str> {
    reasons.iter().map(|r| r.rule.as_str()).collect()
}

fn rule_in_force<'a>(policy: &'a proto::Policy, name: &str) -> &'a proto::RuleInfo {
    policy
        .rules_in_force
        .iter()
        .find(|rule| rule.name == name)
        .unwrap_or_else(|| panic!("{name} in force"))
}

// ---------------------------------------------------------------------------
// GetPolicy and UpdatePolicy.

async fn a_new_site_is_auto_without_form_tokens_and_shows_every_rule(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;

    let policy = get_policy(&h, &site).await;
    assert_eq!(policy.mode.as_deref(), Some("auto"));
    assert_eq!(policy.require_form_token, Some(false));
    assert_eq!(policy.hold_threshold, Some(1.0));
    assert_eq!(policy.spam_threshold, Some(5.0));
    assert_eq!(policy.max_links, Some(2));
    assert!(policy.rules.is_empty());
    let names: Vec<&str> = policy
        .rules_in_force
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    let expected: Vec<&str> = RULES.iter().map(|r| r.name).collect();
    assert_eq!(names, expected);
    for rule in &policy.rules_in_force {
        assert_eq!(rule.state, "on", "{}", rule.name);
        assert_eq!(rule.weight, rule.default_weight, "{}", rule.name);
        assert!(!rule.about.is_empty(), "{}", rule.name);
    }
}

async fn an_update_changes_what_it_names_and_keeps_the_rest(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    update_policy(
        &h,
        &site,
        proto::Policy {
            blocked_terms: vec!["casino".into()],
            ..Default::default()
        },
    )
    .await
    .expect("first update");

    let mut update = proto::Policy {
        hold_threshold: Some(2.0),
        blocked_ips: vec!["192.0.2.0/24".into(), "2001:db8::/32".into()],
        allowed_scripts: vec!["latin".into()],
        ..Default::default()
    };
    update.rules.insert(
        "links".into(),
        proto::RuleSetting {
            state: Some("log-only".into()),
            weight: None,
        },
    );
    update.rules.insert(
        "shape-capitals".into(),
        proto::RuleSetting {
            state: None,
            weight: Some(1.5),
        },
    );
    let answered = update_policy(&h, &site, update).await.expect("update");

    assert_eq!(answered.hold_threshold, Some(2.0));
    assert_eq!(answered.blocked_ips, ["192.0.2.0/24", "2001:db8::/32"]);
    assert_eq!(answered.allowed_scripts, ["latin"]);
    let links = rule_in_force(&answered, "links");
    assert_eq!((links.state.as_str(), links.weight), ("log-only", 1.5));
    let capitals = rule_in_force(&answered, "shape-capitals");
    assert_eq!((capitals.state.as_str(), capitals.weight), ("on", 1.5));
    assert_eq!(capitals.default_weight, 0.5);
    // Everything the update left out is as it was.
    assert_eq!(answered.mode.as_deref(), Some("auto"));
    assert_eq!(answered.spam_threshold, Some(5.0));
    assert_eq!(answered.blocked_terms, ["casino"]);
    assert!(answered.blocked_websites.is_empty());
    assert_eq!(get_policy(&h, &site).await, answered);

    // The answer sent back as an update changes nothing; an empty setting
    // gives a rule its defaults back; a `set_*` flag clears a list.
    assert_eq!(
        update_policy(&h, &site, answered.clone())
            .await
            .expect("round trip"),
        answered
    );
    let mut reset = proto::Policy {
        set_blocked_terms: true,
        ..Default::default()
    };
    reset
        .rules
        .insert("links".into(), proto::RuleSetting::default());
    let reset = update_policy(&h, &site, reset).await.expect("reset");
    assert_eq!(rule_in_force(&reset, "links").state, "on");
    assert!(!reset.rules.contains_key("links"));
    assert!(reset.rules.contains_key("shape-capitals"));
    assert!(reset.blocked_terms.is_empty());
    assert_eq!(reset.hold_threshold, Some(2.0));
}

/// A number reads back as it was set, to the last bit, from either backend's JSON.
/// A policy stored by a newer release, during a rolling upgrade, names a rule this release
/// does not know: the rest of the policy can still be changed, the setting is kept for the
/// release that knows it, and this release refuses to set it.
async fn a_rule_of_a_newer_release_is_kept_and_the_rest_can_change(backend: Backend) {
    let h = Harness::new(backend).await;
    let mut stored = Policy::default();
    stored.rules.insert(
        "future-rule".into(),
        RuleSetting {
            state: Some(RuleState::LogOnly),
            weight: None,
        },
    );
    let site = h.site_with("news.example.com", stored).await;

    let answered = update_policy(
        &h,
        &site,
        proto::Policy {
            hold_threshold: Some(2.0),
            ..Default::default()
        },
    )
    .await
    .expect("an update of another setting");
    assert_eq!(answered.hold_threshold, Some(2.0));
    let kept = answered
        .rules
        .get("future-rule")
        .and_then(|r| r.state.as_deref());
    assert_eq!(kept, Some("log-only"));
    assert!(
        answered
            .rules_in_force
            .iter()
            .all(|r| r.name != "future-rule")
    );

    let mut update = proto::Policy::default();
    update.rules.insert(
        "future-rule".into(),
        proto::RuleSetting {
            state: Some("off".into()),
            weight: None,
        },
    );
    let status = update_policy(&h, &site, update)
        .await
        .expect_err("a rule this release does not know");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["policy.rules.future-rule"]);
    assert_eq!(get_policy(&h, &site).await, answered);
}

async fn a_weight_and_a_threshold_read_back_exactly_as_set(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let weight = 13.237_687_501_495_317;
    let threshold = 0.1 + 0.2;
    let mut update = proto::Policy {
        hold_threshold: Some(threshold),
        ..Default::default()
    };
    update.rules.insert(
        "links".into(),
        proto::RuleSetting {
            state: None,
            weight: Some(weight),
        },
    );
    update_policy(&h, &site, update).await.expect("update");

    let stored = get_policy(&h, &site).await;
    assert_eq!(
        stored.hold_threshold.map(f64::to_bits),
        Some(threshold.to_bits())
    );
    assert_eq!(
        rule_in_force(&stored, "links").weight.to_bits(),
        weight.to_bits()
    );
}

async fn every_bad_field_is_reported_at_once_and_nothing_changes(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let before = get_policy(&h, &site).await;

    let mut update = proto::Policy {
        mode: Some("sometimes".into()),
        hold_threshold: Some(7.0),
        blocked_ips: vec!["192.0.2.0/24".into(), "192.0.2.0/33".into(), "host".into()],
        // PostgreSQL's jsonb cannot hold NUL: refused on every backend alike.
        blocked_terms: vec!["casino".into(), "ca\u{0}sino".into()],
        blocked_email_domains: vec!["not a domain".into()],
        allowed_scripts: vec!["klingon".into()],
        max_links: Some(5_000),
        ..Default::default()
    };
    update.rules.insert(
        "linkz".into(),
        proto::RuleSetting {
            state: Some("on".into()),
            weight: None,
        },
    );
    update.rules.insert(
        "links".into(),
        proto::RuleSetting {
            state: None,
            weight: Some(f64::NAN),
        },
    );
    update.rules.insert(
        "honeypot".into(),
        proto::RuleSetting {
            state: Some("maybe".into()),
            weight: None,
        },
    );
    let status = update_policy(&h, &site, update)
        .await
        .expect_err("an invalid update");
    assert_eq!(status.code(), Code::InvalidArgument);
    let mut fields = bad_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        [
            "policy.allowed_scripts[0]",
            "policy.blocked_email_domains[0]",
            "policy.blocked_ips[1]",
            "policy.blocked_ips[2]",
            "policy.blocked_terms[1]",
            "policy.hold_threshold",
            "policy.max_links",
            "policy.mode",
            "policy.rules.honeypot.state",
            "policy.rules.links.weight",
            "policy.rules.linkz",
            "policy.spam_threshold",
        ]
    );

    assert_eq!(get_policy(&h, &site).await, before);
    assert!(h.db.site_audit("policy").await.is_empty());

    let status = h
        .moderation(&site.mod_token)
        .await
        .update_policy(proto::UpdatePolicyRequest::default())
        .await
        .expect_err("no policy");
    assert_eq!(bad_fields(&status), ["policy"]);
}

async fn an_update_with_thousands_of_bad_entries_is_answered_with_the_first(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let mut update = proto::Policy {
        blocked_ips: (0..1000).map(|i| format!("host-{i}")).collect(),
        blocked_email_domains: (0..1000).map(|i| format!("nodot{i}")).collect(),
        blocked_websites: (0..1000).map(|i| format!("nodot{i}")).collect(),
        ..Default::default()
    };
    update
        .rules
        .insert("x".repeat(10_000), proto::RuleSetting::default());

    let status = update_policy(&h, &site, update)
        .await
        .expect_err("an invalid update");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields = bad_fields(&status);
    assert_eq!(fields.len(), 40);
    assert!(fields.iter().all(|field| field.len() < 200), "{fields:?}");
    assert!(
        status.message().contains("the first 40 of 3001"),
        "{}",
        status.message()
    );
}

async fn a_policy_change_is_audited_with_the_fields_it_changed(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let other = h.site("other.example.com").await;

    let mut update = proto::Policy {
        hold_threshold: Some(2.0),
        // Already so: not a change.
        mode: Some("auto".into()),
        ..Default::default()
    };
    update.rules.insert(
        "links".into(),
        proto::RuleSetting {
            state: Some("log-only".into()),
            weight: None,
        },
    );
    update_policy(&h, &site, update.clone())
        .await
        .expect("update");
    // The same update again changes nothing, and leaves no second row.
    update_policy(&h, &site, update).await.expect("update");

    let rows = h.db.site_audit("policy").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (site_id, actor, note) = &rows[0];
    assert_eq!(*site_id, site.id.0);
    assert_ne!(*site_id, other.id.0);
    assert!(actor.starts_with("rg_mod_"), "{actor}");
    assert!(site.mod_token.starts_with(actor.as_str()), "{actor}");
    assert_eq!(note.as_deref(), Some("hold_threshold, rules.links"));
}

/// Moderators who change different settings at the same moment each keep their change: an
/// update is merged into the policy as it is when it is stored, not as it was when read.
async fn concurrent_updates_of_different_settings_all_take_effect(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let changed: Vec<(&str, f64)> = RULES
        .iter()
        .filter(|rule| rule.weight > 0.0)
        .take(12)
        .enumerate()
        .map(|(k, rule)| (rule.name, 0.25 * (k + 1) as f64))
        .collect();
    let mut updates = tokio::task::JoinSet::new();
    for &(name, weight) in &changed {
        let mut update = proto::Policy::default();
        update.rules.insert(
            name.into(),
            proto::RuleSetting {
                state: None,
                weight: Some(weight),
            },
        );
        let mut client = h.moderation(&site.mod_token).await;
        updates.spawn(async move {
            client
                .update_policy(proto::UpdatePolicyRequest {
                    site: String::new(),
                    policy: Some(update),
                })
                .await
        });
    }
    while let Some(answer) = updates.join_next().await {
        answer.expect("the task").expect("the update");
    }

    let policy = get_policy(&h, &site).await;
    for (name, weight) in &changed {
        assert_eq!(rule_in_force(&policy, name).weight, *weight, "{name}");
    }
    // One audit row per change, each naming its own rule.
    let mut notes: Vec<String> =
        h.db.site_audit("policy")
            .await
            .into_iter()
            .filter_map(|(_, _, note)| note)
            .collect();
    notes.sort();
    let mut expected: Vec<String> = changed
        .iter()
        .map(|(name, _)| format!("rules.{name}"))
        .collect();
    expected.sort();
    assert_eq!(notes, expected);
}

async fn another_sites_moderator_can_neither_see_nor_change_a_policy(backend: Backend) {
    let h = Harness::new(backend).await;
    let ours = h.site("ours.example.com").await;
    let theirs = h.site("theirs.example.com").await;
    let mut our_moderation = h.moderation(&ours.mod_token).await;

    let status = our_moderation
        .get_policy(proto::GetPolicyRequest {
            site: theirs.name.clone(),
        })
        .await
        .expect_err("another site's policy");
    assert_eq!(status.code(), Code::PermissionDenied);

    let status = our_moderation
        .update_policy(proto::UpdatePolicyRequest {
            site: theirs.name.clone(),
            policy: Some(proto::Policy {
                mode: Some("moderate-all".into()),
                ..Default::default()
            }),
        })
        .await
        .expect_err("another site's policy");
    assert_eq!(status.code(), Code::PermissionDenied);

    let output = h.replyctl(
        &ours.mod_token,
        &[
            "policy",
            "set",
            "--site",
            &theirs.name,
            "mode",
            "moderate-all",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("PERMISSION_DENIED"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    assert_eq!(get_policy(&h, &theirs).await.mode.as_deref(), Some("auto"));
    assert!(h.db.site_audit("policy").await.is_empty());
}

// ---------------------------------------------------------------------------
// `replyctl policy`: a change decides how the next reply is judged.

async fn blocked_terms_set_with_replyctl_make_an_obfuscated_term_spam(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;

    let policy = policy_set(&h, &site, "blocked-terms", "casino, viagra");
    assert_eq!(
        policy["blocked_terms"],
        serde_json::json!(["casino", "viagra"])
    );

    let (spam, status) = submit(
        &h,
        &site,
        reply("story", "Big wins tonight at the c a s i n o, come along"),
    )
    .await;
    assert_eq!(status, CommentStatus::Spam);
    assert!(rule_names(&reasons(&h, &site, &spam).await).contains(&"blocked-terms"));

    let (_, status) = submit(&h, &site, reply("story", "Plain words, no links.")).await;
    assert_eq!(status, CommentStatus::Approved);
}

async fn a_rule_set_to_log_only_with_replyctl_is_shown_but_not_counted(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;

    let (_, status) = submit(
        &h,
        &site,
        reply(
            "story",
            "Both numbers check out against https://three.example/a and https://four.example/b today",
        ),
    )
    .await;
    assert_eq!(status, CommentStatus::Pending, "two links hold a reply");

    let policy = policy_set(&h, &site, "rule.links", "log-only");
    assert_eq!(policy["rules"]["links"]["state"], "log-only");

    let (id, status) = submit(
        &h,
        &site,
        reply(
            "story",
            "The figures in this piece come from https://one.example/x and https://two.example/y",
        ),
    )
    .await;
    let reasons = reasons(&h, &site, &id).await;
    assert_eq!(status, CommentStatus::Approved, "{reasons:?}");
    let links = reasons
        .iter()
        .find(|r| r.rule == "links")
        .expect("the links reason is shown");
    assert!(links.log_only);
    assert!(links.weight > 0.0);
}

async fn moderate_all_set_with_replyctl_holds_a_clean_reply(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;

    let (_, status) = submit(&h, &site, reply("story", "Plain words, no links.")).await;
    assert_eq!(status, CommentStatus::Approved);

    let policy = policy_set(&h, &site, "mode", "moderate-all");
    assert_eq!(policy["mode"], "moderate-all");

    let (_, status) = submit(&h, &site, reply("story", "More plain words, no links.")).await;
    assert_eq!(status, CommentStatus::Pending);
}

async fn replyctl_shows_every_setting_and_every_rule_in_force(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    policy_set(&h, &site, "rule.shape-capitals", "on:1.5");
    policy_set(&h, &site, "blocked-ips", "192.0.2.0/24,198.51.100.7");

    let table = stdout(&h.replyctl(&site.mod_token, &["--output", "table", "policy", "show"]));
    for key in [
        "mode",
        "hold-threshold",
        "spam-threshold",
        "max-links",
        "flood-interval-seconds",
        "min-form-seconds",
        "require-form-token",
        "blocked-terms",
        "moderation-terms",
        "blocked-ips",
        "blocked-email-domains",
        "blocked-websites",
        "allowed-scripts",
    ] {
        assert!(table.contains(key), "{key} in {table}");
    }
    assert!(table.contains("192.0.2.0/24, 198.51.100.7"), "{table}");
    for rule in RULES {
        assert!(table.contains(rule.name), "{} in {table}", rule.name);
    }
    let capitals = table
        .lines()
        .find(|line| line.trim_start().starts_with("shape-capitals"))
        .expect("a row for shape-capitals");
    assert!(
        capitals.contains("1.5") && capitals.contains("0.5"),
        "{capitals}"
    );

    let json: Value = serde_json::from_str(&stdout(
        &h.replyctl(&site.mod_token, &["--output", "json", "policy", "show"]),
    ))
    .expect("JSON output");
    let in_force = json["rules_in_force"].as_array().expect("rules in force");
    assert_eq!(in_force.len(), RULES.len());
    assert_eq!(json["rules"]["shape-capitals"]["weight"], 1.5);
}

async fn replyctl_reports_the_servers_bad_fields_and_its_own_bad_values(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;

    // Keys as `policy set` takes them, and the values they have.
    let output = h.replyctl(&site.mod_token, &["policy", "set", "hold-threshold", "9"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            "replyctl: setting hold-threshold to \"9\" (it is 1 now): INVALID_ARGUMENT: the \
             policy has invalid fields",
            "  hold-threshold: must be below spam-threshold (5)",
            "  spam-threshold: must be above hold-threshold (9)",
        ]
    );

    let output = h.replyctl(&site.mod_token, &["policy", "set", "rule.linkz", "off"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("(it is not set now)"), "{stderr}");
    assert!(stderr.contains("\n  rule.linkz: "), "{stderr}");

    // Refused before any call: a usage error.
    for (key, value) in [
        ("rule.links", "sometimes"),
        ("mode", "lenient"),
        ("colour", "red"),
    ] {
        let output = h.replyctl(&site.mod_token, &["policy", "set", key, value]);
        assert_eq!(output.status.code(), Some(2), "{key} {value}");
    }
    assert_eq!(get_policy(&h, &site).await.hold_threshold, Some(1.0));
}

async fn replyctl_policy_set_prints_what_changed(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let set = |key: &str, value: &str| {
        stdout(&h.replyctl(
            &site.mod_token,
            &["--output", "table", "policy", "set", key, value],
        ))
    };
    assert_eq!(set("max-links", "3"), "max-links: 2 → 3\n");
    assert_eq!(
        set("max-links", "3"),
        "max-links is 3 already; nothing changed.\n"
    );
    assert_eq!(
        set("rule.links", "log-only"),
        "rule.links: on:1.5 → log-only:1.5\n"
    );
    assert_eq!(
        set("blocked-terms", "casino, pills"),
        "blocked-terms: - → casino, pills\n"
    );
}

// ---------------------------------------------------------------------------
// PrepareForm.

async fn prepare_form(h: &Harness, site: &TestSite, article: &str) -> proto::PrepareFormResponse {
    h.comments(&site.site_key)
        .await
        .prepare_form(proto::PrepareFormRequest {
            article: article.to_owned(),
            ..Default::default()
        })
        .await
        .expect("prepare a form")
        .into_inner()
}

fn with_token(
    mut request: proto::SubmitCommentRequest,
    token: &str,
) -> proto::SubmitCommentRequest {
    request.form = Some(proto::FormInfo {
        token: token.to_owned(),
        honeypot: String::new(),
    });
    request
}

fn form_reasons(reasons: &[SpamReason]) -> Vec<&str> {
    rule_names(reasons)
        .into_iter()
        .filter(|rule| rule.starts_with("form-"))
        .collect()
}

/// A site that requires form tokens and lets a reader answer at once, so that only the
/// token itself can raise a form reason.
fn strict_forms() -> Policy {
    Policy {
        require_form_token: true,
        min_form_seconds: 0,
        ..Policy::default()
    }
}

async fn a_prepared_forms_token_is_accepted_with_its_submission(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", strict_forms()).await;

    let form = prepare_form(&h, &site, "2026/11/budget").await;
    let expires = form.expires_at.expect("an expiry").seconds;
    let lifetime = expires - chrono::Utc::now().timestamp();
    assert!((47 * 3600..=48 * 3600).contains(&lifetime), "{lifetime} s");

    let (id, status) = submit(
        &h,
        &site,
        with_token(
            reply("2026/11/budget", "Plain words, no links."),
            &form.token,
        ),
    )
    .await;
    assert_eq!(status, CommentStatus::Approved);
    assert_eq!(
        form_reasons(&reasons(&h, &site, &id).await),
        Vec::<&str>::new()
    );
}

async fn a_forged_token_or_another_articles_token_is_invalid(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", strict_forms()).await;
    let token = prepare_form(&h, &site, "story").await.token;

    // One character changed.
    let mut forged: Vec<char> = token.chars().collect();
    let middle = forged.len() / 2;
    forged[middle] = if forged[middle] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    let (id, _) = submit(
        &h,
        &site,
        with_token(reply("story", "Plain words."), &forged),
    )
    .await;
    assert_eq!(
        form_reasons(&reasons(&h, &site, &id).await),
        ["form-token-invalid"]
    );

    let elsewhere = prepare_form(&h, &site, "another-story").await.token;
    let (id, _) = submit(
        &h,
        &site,
        with_token(reply("story", "Other plain words."), &elsewhere),
    )
    .await;
    assert_eq!(
        form_reasons(&reasons(&h, &site, &id).await),
        ["form-token-invalid"]
    );

    // Another site's token for the same article is no better.
    let other = h.site_with("other.example.com", strict_forms()).await;
    let theirs = prepare_form(&h, &other, "story").await.token;
    let (id, _) = submit(
        &h,
        &site,
        with_token(reply("story", "Yet other plain words."), &theirs),
    )
    .await;
    assert_eq!(
        form_reasons(&reasons(&h, &site, &id).await),
        ["form-token-invalid"]
    );
}

async fn a_missing_token_counts_only_where_the_site_requires_one(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;

    let (id, status) = submit(&h, &site, reply("story", "Plain words, no links.")).await;
    assert_eq!(status, CommentStatus::Approved);
    assert_eq!(
        form_reasons(&reasons(&h, &site, &id).await),
        Vec::<&str>::new()
    );

    policy_set(&h, &site, "require-form-token", "true");
    let (id, status) = submit(&h, &site, reply("story", "More plain words.")).await;
    assert_eq!(status, CommentStatus::Pending);
    assert_eq!(
        form_reasons(&reasons(&h, &site, &id).await),
        ["form-token-missing"]
    );
}

async fn a_token_sent_sooner_than_the_minimum_is_too_fast(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    policy_set(&h, &site, "min-form-seconds", "5");

    // Issued now and sent at once: well under five seconds.
    let token = prepare_form(&h, &site, "story").await.token;
    let (id, _) = submit(
        &h,
        &site,
        with_token(reply("story", "Plain words."), &token),
    )
    .await;
    assert_eq!(
        form_reasons(&reasons(&h, &site, &id).await),
        ["form-too-fast"]
    );
}

async fn a_form_is_prepared_only_for_a_valid_article(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site("news.example.com").await;
    let mut comments = h.comments(&site.site_key).await;
    for article in ["", "   ", "a\u{0}b", &"x".repeat(201)] {
        let status = comments
            .prepare_form(proto::PrepareFormRequest {
                article: article.to_owned(),
                ..Default::default()
            })
            .await
            .expect_err("an invalid article");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(bad_fields(&status), ["article"]);
    }

    let status = h
        .comments(&site.mod_token)
        .await
        .prepare_form(proto::PrepareFormRequest {
            article: "story".into(),
            ..Default::default()
        })
        .await
        .expect_err("a moderator token is not a site key");
    assert_eq!(status.code(), Code::PermissionDenied);
}

backend_tests!(
    flavor = "multi_thread";
    a_new_site_is_auto_without_form_tokens_and_shows_every_rule,
    an_update_changes_what_it_names_and_keeps_the_rest,
    a_rule_of_a_newer_release_is_kept_and_the_rest_can_change,
    a_weight_and_a_threshold_read_back_exactly_as_set,
    every_bad_field_is_reported_at_once_and_nothing_changes,
    an_update_with_thousands_of_bad_entries_is_answered_with_the_first,
    a_policy_change_is_audited_with_the_fields_it_changed,
    concurrent_updates_of_different_settings_all_take_effect,
    another_sites_moderator_can_neither_see_nor_change_a_policy,
    blocked_terms_set_with_replyctl_make_an_obfuscated_term_spam,
    a_rule_set_to_log_only_with_replyctl_is_shown_but_not_counted,
    moderate_all_set_with_replyctl_holds_a_clean_reply,
    replyctl_shows_every_setting_and_every_rule_in_force,
    replyctl_reports_the_servers_bad_fields_and_its_own_bad_values,
    replyctl_policy_set_prints_what_changed,
    a_prepared_forms_token_is_accepted_with_its_submission,
    a_forged_token_or_another_articles_token_is_invalid,
    a_missing_token_counts_only_where_the_site_requires_one,
    a_token_sent_sooner_than_the_minimum_is_too_fast,
    a_form_is_prepared_only_for_a_valid_article,
);
