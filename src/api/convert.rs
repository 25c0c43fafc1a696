//! Domain values to proto messages, and a policy update back onto the domain policy.
//!
//! The public [`proto::Comment`] is built from public fields only; the sealed
//! email and the author hash can reach only a moderator's [`proto::QueueItem`],
//! and an email in clear only a [`proto::AuthorComment`] of an export.

use chrono::{DateTime, Utc};

use crate::{
    domain::{
        Action, AuditRecord, BlockEntry, BlockKind, ClosedArticle, CommentStatus, ReportReason,
        ReportedComment, is_erased,
    },
    privacy::{Vault, mask_email},
    proto,
    spam::{Mode, Policy, RULES, Reason, RuleSetting, RuleState, Verdict},
    store::{Site, StoredComment},
    submission::{MovedReply, PolicyTrial},
};

pub fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub fn status(status: CommentStatus) -> proto::CommentStatus {
    match status {
        CommentStatus::Pending => proto::CommentStatus::Pending,
        CommentStatus::Approved => proto::CommentStatus::Approved,
        CommentStatus::Spam => proto::CommentStatus::Spam,
        CommentStatus::Rejected => proto::CommentStatus::Rejected,
    }
}

/// The domain status of a proto status; `None` for UNSPECIFIED or unknown.
pub fn status_from(value: i32) -> Option<CommentStatus> {
    match proto::CommentStatus::try_from(value).ok()? {
        proto::CommentStatus::Unspecified => None,
        proto::CommentStatus::Pending => Some(CommentStatus::Pending),
        proto::CommentStatus::Approved => Some(CommentStatus::Approved),
        proto::CommentStatus::Spam => Some(CommentStatus::Spam),
        proto::CommentStatus::Rejected => Some(CommentStatus::Rejected),
    }
}

pub fn action_from(value: i32) -> Option<Action> {
    match proto::ModerationAction::try_from(value).ok()? {
        proto::ModerationAction::Unspecified => None,
        proto::ModerationAction::Approve => Some(Action::Approve),
        proto::ModerationAction::Reject => Some(Action::Reject),
        proto::ModerationAction::MarkSpam => Some(Action::MarkSpam),
        proto::ModerationAction::MarkHam => Some(Action::MarkHam),
        proto::ModerationAction::Delete => Some(Action::Delete),
    }
}

fn verdict(verdict: Verdict) -> proto::Verdict {
    match verdict {
        Verdict::Approve => proto::Verdict::Approve,
        Verdict::Hold => proto::Verdict::Hold,
        Verdict::Spam => proto::Verdict::Spam,
    }
}

fn reason(reason: &Reason) -> proto::SpamReason {
    proto::SpamReason {
        rule: reason.rule.clone(),
        weight: reason.weight,
        reason: reason.reason.clone(),
        log_only: reason.log_only,
    }
}

/// A comment as the public sees it.
pub fn public_comment(comment: &StoredComment) -> proto::Comment {
    proto::Comment {
        id: comment.id.to_string(),
        article: comment.article.clone(),
        parent_id: comment.parent.map(|p| p.to_string()).unwrap_or_default(),
        author_name: comment.author_name.clone(),
        author_website: comment.author_website.clone().unwrap_or_default(),
        avatar_seed: comment.avatar_seed.clone(),
        body: comment.body_public.clone(),
        body_html: comment.body_html.clone(),
        created_at: Some(timestamp(comment.created_at)),
        depth: comment.depth,
        status: status(comment.status).into(),
    }
}

/// A comment as a moderator sees it: masked email, raw text, assessment.
pub fn queue_item(site: &Site, comment: &StoredComment, vault: &Vault) -> proto::QueueItem {
    let masked_email = if is_erased(&comment.email_sealed) {
        // An erased author has no email left to mask.
        String::new()
    } else {
        match vault.decrypt_email(comment.site, &comment.email_sealed) {
            Ok(email) => mask_email(&email),
            Err(err) => {
                tracing::error!(comment = %comment.id, error = %err, "cannot open a stored email");
                "•••".to_owned()
            }
        }
    };
    proto::QueueItem {
        comment: Some(public_comment(comment)),
        site: site.name.clone(),
        masked_email,
        author_hash: hex::encode(&comment.author_hash),
        raw_body: raw_body(comment, vault),
        ip: comment.ip.clone().unwrap_or_default(),
        user_agent: comment.user_agent.clone().unwrap_or_default(),
        assessment: Some(proto::Assessment {
            score: comment.score,
            verdict: verdict(comment.verdict).into(),
            reasons: comment.reasons.iter().map(reason).collect(),
        }),
        updated_at: Some(timestamp(comment.updated_at)),
    }
}

pub fn audit_entry(record: &AuditRecord) -> proto::AuditEntry {
    let optional = |s: Option<CommentStatus>| s.map_or(proto::CommentStatus::Unspecified, status);
    proto::AuditEntry {
        id: record.id.to_string(),
        action: record.action.clone(),
        actor: record.actor.clone(),
        note: record.note.clone().unwrap_or_default(),
        from_status: optional(record.from_status).into(),
        to_status: optional(record.to_status).into(),
        created_at: Some(timestamp(record.created_at)),
        comment_id: record.comment.map(|c| c.to_string()).unwrap_or_default(),
    }
}

/// The domain kind of a proto kind; `None` for UNSPECIFIED or unknown.
pub fn block_kind_from(value: i32) -> Option<BlockKind> {
    match proto::BlockKind::try_from(value).ok()? {
        proto::BlockKind::Unspecified => None,
        proto::BlockKind::Author => Some(BlockKind::Author),
        proto::BlockKind::Ip => Some(BlockKind::Ip),
        proto::BlockKind::EmailDomain => Some(BlockKind::EmailDomain),
        proto::BlockKind::WebsiteDomain => Some(BlockKind::WebsiteDomain),
    }
}

fn block_kind(kind: BlockKind) -> proto::BlockKind {
    match kind {
        BlockKind::Author => proto::BlockKind::Author,
        BlockKind::Ip => proto::BlockKind::Ip,
        BlockKind::EmailDomain => proto::BlockKind::EmailDomain,
        BlockKind::WebsiteDomain => proto::BlockKind::WebsiteDomain,
    }
}

pub fn block_entry(entry: &BlockEntry) -> proto::BlockEntry {
    proto::BlockEntry {
        kind: block_kind(entry.blocked.kind()).into(),
        value: entry.blocked.value(),
        actor: entry.actor.clone(),
        created_at: Some(timestamp(entry.created_at)),
        note: entry.note.clone(),
        expires_at: entry.expires_at.map(timestamp),
        hits: entry.hits,
        last_hit_at: entry.last_hit_at.map(timestamp),
    }
}

pub fn report_reason(reason: ReportReason) -> proto::ReportReason {
    match reason {
        ReportReason::Spam => proto::ReportReason::Spam,
        ReportReason::Abuse => proto::ReportReason::Abuse,
        ReportReason::OffTopic => proto::ReportReason::OffTopic,
        ReportReason::PersonalData => proto::ReportReason::PersonalData,
        ReportReason::Illegal => proto::ReportReason::Illegal,
    }
}

pub fn reported_comment(reported: &ReportedComment) -> proto::ReportedComment {
    proto::ReportedComment {
        comment_id: reported.comment.to_string(),
        article: reported.article.clone(),
        status: status(reported.status).into(),
        author_name: reported.author_name.clone(),
        body: reported.body_public.clone(),
        reports: reported.reports,
        reasons: reported
            .reasons
            .iter()
            .map(|(reason, count)| proto::ReasonCount {
                reason: report_reason(*reason).into(),
                count: *count,
            })
            .collect(),
        texts: reported.texts.clone(),
        last_reported_at: Some(timestamp(reported.last_reported_at)),
    }
}

pub fn closed_article(closed: &ClosedArticle) -> proto::ClosedArticle {
    proto::ClosedArticle {
        article: closed.article.clone(),
        actor: closed.actor.clone(),
        closed_at: Some(timestamp(closed.closed_at)),
        note: closed.note.clone(),
    }
}

/// The reader's own text, for moderators and exports; where the sealed text does not open, the
/// text kept in the clear, and the failure logged.
fn raw_body(comment: &StoredComment, vault: &Vault) -> String {
    match comment.raw_body(vault) {
        Ok(text) => text.into_owned(),
        Err(err) => {
            tracing::error!(comment = %comment.id, error = %err, "cannot open a stored text");
            comment.body.clone()
        }
    }
}

/// One comment of an author's export, with their email and text opened.
pub fn author_comment(comment: &StoredComment, vault: &Vault) -> proto::AuthorComment {
    // One unreadable row must not keep a person from the rest of their data.
    let email = vault
        .decrypt_email(comment.site, &comment.email_sealed)
        .unwrap_or_else(|err| {
            tracing::error!(comment = %comment.id, error = %err, "cannot open a stored email");
            String::new()
        });
    proto::AuthorComment {
        id: comment.id.to_string(),
        article: comment.article.clone(),
        parent_id: comment.parent.map(|p| p.to_string()).unwrap_or_default(),
        status: status(comment.status).into(),
        created_at: Some(timestamp(comment.created_at)),
        author_name: comment.author_name.clone(),
        email,
        website: comment.author_website.clone().unwrap_or_default(),
        body: raw_body(comment, vault),
        ip: comment.ip.clone().unwrap_or_default(),
        user_agent: comment.user_agent.clone().unwrap_or_default(),
        referrer: comment.referrer.clone().unwrap_or_default(),
    }
}

/// A policy's dry run as `TryPolicy` answers it; `changed` is the fields the change makes,
/// comma-joined as the audit log writes them.
pub fn policy_trial(trial: &PolicyTrial, changed: &str) -> proto::TryPolicyResponse {
    let moved = |reply: &MovedReply| proto::MovedReply {
        comment_id: reply.comment.to_string(),
        article: reply.article.clone(),
        created_at: Some(timestamp(reply.created_at)),
        excerpt: reply.excerpt.clone(),
        status: status(reply.status).into(),
        score_before: reply.score_before,
        score_after: reply.score_after,
        rules: reply.rules.clone(),
    };
    proto::TryPolicyResponse {
        since: Some(timestamp(trial.since)),
        replayed: trial.replayed,
        unchanged: trial.unchanged,
        skipped: trial.skipped,
        moves: trial
            .moves
            .iter()
            .map(|m| proto::PolicyMove {
                from: status(m.from).into(),
                to: status(m.to).into(),
                count: m.count,
                now: m
                    .now
                    .iter()
                    .map(|(s, n)| proto::StatusCount {
                        status: status(*s).into(),
                        count: *n,
                    })
                    .collect(),
                examples: m.examples.iter().map(moved).collect(),
            })
            .collect(),
        changed: changed
            .split(", ")
            .filter(|field| !field.is_empty())
            .map(str::to_owned)
            .collect(),
    }
}

/// A site's whole policy as `GetPolicy` and `UpdatePolicy` answer it: every field set, every
/// `set_*` flag true, and every rule in force.
pub fn policy(policy: &Policy) -> proto::Policy {
    proto::Policy {
        mode: Some(policy.mode.as_str().to_owned()),
        hold_threshold: Some(policy.hold_threshold),
        spam_threshold: Some(policy.spam_threshold),
        max_links: Some(policy.max_links),
        flood_interval_seconds: Some(policy.flood_interval_seconds),
        min_form_seconds: Some(policy.min_form_seconds),
        require_form_token: Some(policy.require_form_token),
        hold_new_authors: Some(policy.hold_new_authors),
        report_hold: Some(policy.report_hold),
        edit_window_seconds: Some(policy.edit_window_seconds),
        close_after_days: Some(policy.close_after_days),
        auto_block_spam: Some(policy.auto_block_spam),
        auto_block_window_minutes: Some(policy.auto_block_window_minutes),
        auto_block_hours: Some(policy.auto_block_hours),
        blocked_terms: policy.blocked_terms.clone(),
        moderation_terms: policy.moderation_terms.clone(),
        set_blocked_terms: true,
        set_moderation_terms: true,
        rules: policy
            .rules
            .iter()
            .map(|(name, setting)| {
                let setting = proto::RuleSetting {
                    state: setting.state.map(|state| state.as_str().to_owned()),
                    weight: setting.weight,
                };
                (name.clone(), setting)
            })
            .collect(),
        blocked_ips: policy.blocked_ips.clone(),
        blocked_email_domains: policy.blocked_email_domains.clone(),
        blocked_websites: policy.blocked_websites.clone(),
        allowed_scripts: policy.allowed_scripts.clone(),
        set_blocked_ips: true,
        set_blocked_email_domains: true,
        set_blocked_websites: true,
        set_allowed_scripts: true,
        rules_in_force: RULES
            .iter()
            .filter_map(|info| {
                let active = policy.rule(info.name)?;
                Some(proto::RuleInfo {
                    name: info.name.to_owned(),
                    state: active.state.as_str().to_owned(),
                    weight: active.weight,
                    default_weight: info.weight,
                    about: info.about.to_owned(),
                })
            })
            .collect(),
    }
}

/// `stored` with the fields an `UpdatePolicy` names merged in, and every word of the update
/// that names no mode, state or rule, as `(field, description)` pairs. Ranges and lists are
/// left to [`Policy::validate`], which the caller runs on the result.
///
/// A rule the stored policy names but this release does not know (set on a newer release
/// during a rolling upgrade) is kept, so that changing anything else is not refused for it;
/// the update may take it off by naming it with neither state nor weight, but not set it.
pub fn merge_policy(stored: &Policy, update: proto::Policy) -> (Policy, Vec<(String, String)>) {
    let mut policy = stored.clone();
    let mut bad = Vec::new();
    if let Some(word) = update.mode {
        match Mode::parse(&word) {
            Some(mode) => policy.mode = mode,
            None => bad.push((
                "policy.mode".to_owned(),
                "must be moderate-all, auto or trusted-only".to_owned(),
            )),
        }
    }
    let numbers = [
        (&mut policy.hold_threshold, update.hold_threshold),
        (&mut policy.spam_threshold, update.spam_threshold),
    ];
    for (field, value) in numbers {
        if let Some(value) = value {
            *field = value;
        }
    }
    let counts = [
        (&mut policy.max_links, update.max_links),
        (
            &mut policy.flood_interval_seconds,
            update.flood_interval_seconds,
        ),
        (&mut policy.min_form_seconds, update.min_form_seconds),
        (&mut policy.hold_new_authors, update.hold_new_authors),
        (&mut policy.report_hold, update.report_hold),
        (&mut policy.edit_window_seconds, update.edit_window_seconds),
        (&mut policy.close_after_days, update.close_after_days),
        (&mut policy.auto_block_spam, update.auto_block_spam),
        (
            &mut policy.auto_block_window_minutes,
            update.auto_block_window_minutes,
        ),
        (&mut policy.auto_block_hours, update.auto_block_hours),
    ];
    for (field, value) in counts {
        if let Some(value) = value {
            *field = value;
        }
    }
    if let Some(required) = update.require_form_token {
        policy.require_form_token = required;
    }
    let lists = [
        (
            &mut policy.blocked_terms,
            update.blocked_terms,
            update.set_blocked_terms,
        ),
        (
            &mut policy.moderation_terms,
            update.moderation_terms,
            update.set_moderation_terms,
        ),
        (
            &mut policy.blocked_ips,
            update.blocked_ips,
            update.set_blocked_ips,
        ),
        (
            &mut policy.blocked_email_domains,
            update.blocked_email_domains,
            update.set_blocked_email_domains,
        ),
        (
            &mut policy.blocked_websites,
            update.blocked_websites,
            update.set_blocked_websites,
        ),
        (
            &mut policy.allowed_scripts,
            update.allowed_scripts,
            update.set_allowed_scripts,
        ),
    ];
    for (field, value, replace) in lists {
        if replace || !value.is_empty() {
            *field = value;
        }
    }
    // Sorted, so that the fields of several bad entries are named in a stable order.
    let mut rules: Vec<(String, proto::RuleSetting)> = update.rules.into_iter().collect();
    rules.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, change) in rules {
        // Back to the defaults, which a name of another release may go back to as well.
        let reset = change.state.is_none() && change.weight.is_none();
        if reset && policy.rules.remove(&name).is_some() {
            continue;
        }
        if !RULES.iter().any(|r| r.name == name) {
            bad.push((format!("policy.rules.{name}"), "is not a rule".to_owned()));
            continue;
        }
        if reset {
            continue;
        }
        let state = match change.state.as_deref().map(RuleState::parse) {
            None => None,
            Some(Some(state)) => Some(state),
            Some(None) => {
                bad.push((
                    format!("policy.rules.{name}.state"),
                    "must be off, on or log-only".to_owned(),
                ));
                None
            }
        };
        let setting: &mut RuleSetting = policy.rules.entry(name).or_default();
        if let Some(state) = state {
            setting.state = Some(state);
        }
        if let Some(weight) = change.weight {
            setting.weight = Some(weight);
        }
    }
    (policy, bad)
}

#[cfg(test)]
mod tests {
    use std::{sync::LazyLock, time::Duration};

    use proptest::{collection, option, prelude::*};

    use super::*;
    use crate::spam::{Assessor, Facts, testing::reply};

    static ASSESSOR: LazyLock<Assessor> = LazyLock::new(Assessor::default);

    /// Mostly what a moderator might set, now and then anything at all: most cases then pass
    /// validation and reach the assessment, and the rest try the refusals.
    fn mostly<T: std::fmt::Debug + Clone>(
        likely: impl Strategy<Value = T> + 'static,
        anything: impl Strategy<Value = T> + 'static,
    ) -> BoxedStrategy<T> {
        prop_oneof![19 => likely, 1 => anything].boxed()
    }

    fn words(choices: &[&'static str]) -> BoxedStrategy<Vec<String>> {
        let choices: Vec<String> = choices.iter().map(|c| (*c).to_owned()).collect();
        collection::vec(mostly(prop::sample::select(choices), any::<String>()), 0..3).boxed()
    }

    fn rule_setting() -> impl Strategy<Value = proto::RuleSetting> {
        let state = prop::sample::select(vec!["on", "off", "log-only"]).prop_map(str::to_owned);
        (
            option::of(mostly(state, any::<String>())),
            option::of(mostly(-100.0..=100.0f64, any::<f64>())),
        )
            .prop_map(|(state, weight)| proto::RuleSetting { state, weight })
    }

    fn update() -> impl Strategy<Value = proto::Policy> {
        let mode = prop::sample::select(vec!["auto", "moderate-all", "trusted-only"])
            .prop_map(str::to_owned);
        let rule = prop::sample::select(
            RULES
                .iter()
                .map(|rule| rule.name.to_owned())
                .collect::<Vec<_>>(),
        );
        (
            (
                option::of(mostly(mode, any::<String>())),
                option::of(mostly(0.0..4.0f64, any::<f64>())),
                option::of(mostly(5.0..50.0f64, any::<f64>())),
                option::of(mostly(1..20u32, any::<u32>())),
                option::of(mostly(0..600u32, any::<u32>())),
                option::of(mostly(0..60u32, any::<u32>())),
                option::of(any::<bool>()),
            ),
            (
                words(&["casino", "cheap pills", "v1agra", "c a s i n o", "Ünïcödé"]),
                words(&[
                    "192.0.2.0/24",
                    "203.0.113.7",
                    "2001:db8::/32",
                    "::ffff:10.0.0.1",
                ]),
                words(&["example.com", "spam.example", "xn--bcher-kva.example"]),
                words(&["latin", "cyrillic", "han", "hiragana", "katakana"]),
                collection::hash_map(mostly(rule, any::<String>()), rule_setting(), 0..4),
                any::<bool>(),
            ),
        )
            .prop_map(|(scalars, lists)| {
                let (mode, hold, spam, links, flood, form, token) = scalars;
                let (terms, ips, domains, scripts, rules, replace) = lists;
                proto::Policy {
                    mode,
                    hold_threshold: hold,
                    spam_threshold: spam,
                    max_links: links,
                    flood_interval_seconds: flood,
                    min_form_seconds: form,
                    require_form_token: token,
                    blocked_terms: terms.clone(),
                    moderation_terms: terms,
                    set_blocked_terms: replace,
                    blocked_ips: ips,
                    blocked_email_domains: domains.clone(),
                    blocked_websites: domains,
                    allowed_scripts: scripts,
                    set_allowed_scripts: replace,
                    rules: rules.into_iter().collect(),
                    ..Default::default()
                }
            })
    }

    fn setting(state: Option<&str>, weight: Option<f64>) -> proto::RuleSetting {
        proto::RuleSetting {
            state: state.map(str::to_owned),
            weight,
        }
    }

    /// A policy stored by a newer release names a rule this one does not know: changing
    /// anything else keeps it and is not refused for it, setting it is refused, and naming it
    /// with neither state nor weight takes it off.
    #[test]
    fn a_rule_of_another_release_is_kept_and_cannot_be_set() {
        let mut stored = Policy::default();
        stored.rules.insert(
            "future-rule".into(),
            RuleSetting {
                state: Some(RuleState::LogOnly),
                weight: Some(2.0),
            },
        );

        let other = proto::Policy {
            hold_threshold: Some(1.5),
            ..Default::default()
        };
        let (updated, bad) = merge_policy(&stored, other);
        assert_eq!(bad, []);
        assert_eq!(updated.validate(), []);
        assert_eq!(updated.rules, stored.rules);
        assert_eq!(updated.rule("future-rule"), None);

        for change in [setting(Some("off"), None), setting(None, Some(1.0))] {
            let mut update = proto::Policy::default();
            update.rules.insert("future-rule".into(), change);
            let (updated, bad) = merge_policy(&stored, update);
            let fields: Vec<&str> = bad.iter().map(|(field, _)| field.as_str()).collect();
            assert_eq!(fields, ["policy.rules.future-rule"]);
            assert_eq!(updated.rules, stored.rules);
        }

        let mut reset = proto::Policy::default();
        reset
            .rules
            .insert("future-rule".into(), setting(None, None));
        let (updated, bad) = merge_policy(&stored, reset.clone());
        assert_eq!(bad, []);
        assert!(updated.rules.is_empty());
        // A name that is stored nowhere is no rule, reset or not.
        let (_, bad) = merge_policy(&Policy::default(), reset);
        assert_eq!(bad.len(), 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1_000))]

        /// Whatever an `UpdatePolicy` carries, it is merged and validated without panicking; a
        /// policy that passes can be stored on either backend (its JSON holds no NUL, which
        /// PostgreSQL's `jsonb` refuses, and reads back the same) and assesses replies to a
        /// finite score.
        #[test]
        fn any_policy_update_is_refused_or_stored_and_used(update in update()) {
            let (policy, bad) = merge_policy(&Policy::default(), update);
            let problems = policy.validate();
            if bad.is_empty() && problems.is_empty() {
                let json = serde_json::to_string(&policy).map_err(|e| e.to_string());
                let json = json.map_err(TestCaseError::fail)?;
                prop_assert!(!json.contains("\\u0000"), "{json}");
                let read: Policy = serde_json::from_str(&json).map_err(|e| {
                    TestCaseError::fail(e.to_string())
                })?;
                prop_assert_eq!(&read, &policy);
                let facts = Facts {
                    since_author_reply: Some(Duration::ZERO),
                    ..Facts::default()
                };
                facts.flood_wait(&policy);
                for text in ["Two links: https://a.example/1 https://b.example/2", "CASINO casino"] {
                    let assessment = ASSESSOR.assess(&reply(text), &policy, &facts);
                    prop_assert!(assessment.score.is_finite(), "{assessment:?}");
                    policy.initial_status(&assessment, true);
                }
                self::policy(&policy);
            }
        }
    }
}
