//! A site's moderation policy: how a spam score becomes a status.
//!
//! Stored as JSON with the site, so a field added later takes its default in
//! every older policy. A policy is checked by [`Policy::validate`] before it is
//! stored; the rules still cope with a bad entry (they skip it) rather than fail
//! a reader's reply over a moderator's typo.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    Assessment, RULES, Verdict,
    blocklists::{IpRange, normalize_domain},
    shape::Script,
    text::Words,
};
use crate::domain::{AutoBlock, CommentStatus, MAX_CLOSE_AFTER_DAYS};

/// How much a site trusts the assessment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Every reply waits for a moderator; spam still goes to the spam queue.
    ModerateAll,
    /// Replies scoring below the hold threshold are approved at once.
    Auto,
    /// Only authors with earlier approved replies are approved at once.
    TrustedOnly,
}

impl Mode {
    /// The word used by `replyctl policy` and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ModerateAll => "moderate-all",
            Mode::Auto => "auto",
            Mode::TrustedOnly => "trusted-only",
        }
    }

    /// The inverse of [`Mode::as_str`].
    pub fn parse(word: &str) -> Option<Mode> {
        [Mode::ModerateAll, Mode::Auto, Mode::TrustedOnly]
            .into_iter()
            .find(|m| m.as_str() == word)
    }
}

/// A site's moderation policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    pub mode: Mode,
    /// A score at or above this waits for a moderator.
    pub hold_threshold: f64,
    /// A score at or above this is spam.
    pub spam_threshold: f64,
    /// This many links or more hold a reply (WordPress's default is 2).
    pub max_links: u32,
    /// Seconds between two replies of one author or IP (WordPress: 15).
    pub flood_interval_seconds: u32,
    /// Seconds a reader must spend on the form (Antispam Bee: 5).
    pub min_form_seconds: u32,
    /// Whether a reply must carry a valid token from `PrepareForm`.
    pub require_form_token: bool,
    /// A reply that would be approved waits for a moderator until its author has this many
    /// approved replies on the site (and none that is spam); 0 holds nobody for being new.
    pub hold_new_authors: u32,
    /// An approved comment that this many readers reported waits for a moderator again;
    /// 0 holds nothing for reports.
    pub report_hold: u32,
    /// How long after it was received an author may change a reply's text (`EditComment`), in
    /// seconds; 0 lets nobody edit.
    pub edit_window_seconds: u32,
    /// Articles close to new replies this many days after they were published (as the host
    /// says with `SubmitComment`), or after their first reply when the host never said; 0
    /// closes nothing by age.
    pub close_after_days: u32,
    /// A client address with this many spam replies within `auto_block_window_minutes` is
    /// blocked for `auto_block_hours`; 0 blocks nothing automatically.
    pub auto_block_spam: u32,
    /// How far back the spam replies of an address are counted, in minutes.
    pub auto_block_window_minutes: u32,
    /// How long an automatic block lasts, in hours.
    pub auto_block_hours: u32,
    /// Terms that make a reply spam.
    pub blocked_terms: Vec<String>,
    /// Terms that hold a reply for a moderator.
    pub moderation_terms: Vec<String>,
    /// Per-rule changes to the defaults of [`RULES`]; a rule not named here keeps them. A name
    /// this release does not know (a rule of a newer release, during a rolling upgrade) is kept
    /// as stored and not used; an update cannot add one (`api::convert::merge_policy`).
    pub rules: BTreeMap<String, RuleSetting>,
    /// Client addresses (`192.0.2.7`) and ranges (`192.0.2.0/24`, `2001:db8::/32`) whose
    /// replies are spam.
    pub blocked_ips: Vec<String>,
    /// Email domains whose authors' replies are spam; a domain covers its subdomains.
    pub blocked_email_domains: Vec<String>,
    /// Website domains that make a reply spam when they are the author's website or linked in
    /// the text; a domain covers its subdomains.
    pub blocked_websites: Vec<String>,
    /// The scripts the site's readers write in (`latin`, `cyrillic`, ...); empty allows any.
    pub allowed_scripts: Vec<String>,
}

/// Whether a rule counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleState {
    /// Not run at all.
    Off,
    /// Run, and its weight counts in the score.
    On,
    /// Run and shown to moderators, but not counted: a way to try a rule first.
    LogOnly,
}

impl RuleState {
    /// The word used by `replyctl policy` and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleState::Off => "off",
            RuleState::On => "on",
            RuleState::LogOnly => "log-only",
        }
    }

    /// The inverse of [`RuleState::as_str`].
    pub fn parse(word: &str) -> Option<RuleState> {
        [RuleState::Off, RuleState::On, RuleState::LogOnly]
            .into_iter()
            .find(|s| s.as_str() == word)
    }
}

/// A site's change to one rule; a part left out keeps the rule's default, so a site that
/// only switched a rule to log-only still gets a better default weight in a later release.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RuleSetting {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<RuleState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
}

/// How one rule runs on a site: its state and weight after the site's changes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActiveRule {
    pub state: RuleState,
    pub weight: f64,
}

/// The largest weight a rule may be given, either way; ten times the default spam threshold
/// is already more than any rule needs.
pub const MAX_RULE_WEIGHT: f64 = 100.0;
/// At most this many entries in each term list and blocklist.
pub const MAX_LIST_ENTRIES: usize = 1_000;
/// At most this many characters in one term.
pub const MAX_TERM_CHARS: usize = 100;
/// The longest edit window: a day, well within an author token's 30 days.
pub const MAX_EDIT_WINDOW_SECONDS: u32 = 86_400;

impl Default for Policy {
    fn default() -> Self {
        Policy {
            mode: Mode::Auto,
            hold_threshold: 1.0,
            spam_threshold: 5.0,
            max_links: 2,
            flood_interval_seconds: 15,
            min_form_seconds: 5,
            require_form_token: false,
            hold_new_authors: 0,
            report_hold: 0,
            edit_window_seconds: 0,
            close_after_days: 0,
            auto_block_spam: 0,
            auto_block_window_minutes: 60,
            auto_block_hours: 24,
            blocked_terms: Vec::new(),
            moderation_terms: Vec::new(),
            rules: BTreeMap::new(),
            blocked_ips: Vec::new(),
            blocked_email_domains: Vec::new(),
            blocked_websites: Vec::new(),
            allowed_scripts: Vec::new(),
        }
    }
}

impl Policy {
    /// How the rule called `name` runs on this site; `None` for a name that is no rule.
    pub fn rule(&self, name: &str) -> Option<ActiveRule> {
        let info = RULES.iter().find(|r| r.name == name)?;
        let setting = self.rules.get(name).copied().unwrap_or_default();
        Some(ActiveRule {
            state: setting.state.unwrap_or(RuleState::On),
            weight: setting.weight.unwrap_or(info.weight),
        })
    }

    /// Every field that is out of range or unreadable, as `(field, description)` pairs ready
    /// for a `BadRequest`; empty when the policy may be stored.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut bad = Vec::new();
        let mut check = |field: String, problem: Option<String>| {
            if let Some(problem) = problem {
                bad.push((field, problem));
            }
        };
        for (field, value) in [
            ("hold_threshold", self.hold_threshold),
            ("spam_threshold", self.spam_threshold),
        ] {
            check(field.to_owned(), weight_problem(value));
        }
        // Named on both sides: raising either one, or lowering the other, fixes it.
        if weight_problem(self.hold_threshold).is_none()
            && weight_problem(self.spam_threshold).is_none()
            && self.hold_threshold >= self.spam_threshold
        {
            check(
                "hold_threshold".to_owned(),
                Some(format!(
                    "must be below spam_threshold ({})",
                    self.spam_threshold
                )),
            );
            check(
                "spam_threshold".to_owned(),
                Some(format!(
                    "must be above hold_threshold ({})",
                    self.hold_threshold
                )),
            );
        }
        check("max_links".to_owned(), at_most(self.max_links, 1_000));
        check(
            "flood_interval_seconds".to_owned(),
            at_most(self.flood_interval_seconds, 86_400),
        );
        check(
            "min_form_seconds".to_owned(),
            at_most(self.min_form_seconds, 3_600),
        );
        check(
            "hold_new_authors".to_owned(),
            at_most(self.hold_new_authors, 1_000),
        );
        check("report_hold".to_owned(), at_most(self.report_hold, 1_000));
        check(
            "edit_window_seconds".to_owned(),
            at_most(self.edit_window_seconds, MAX_EDIT_WINDOW_SECONDS),
        );
        check(
            "close_after_days".to_owned(),
            at_most(self.close_after_days, MAX_CLOSE_AFTER_DAYS),
        );
        check(
            "auto_block_spam".to_owned(),
            at_most(self.auto_block_spam, 1_000),
        );
        check(
            "auto_block_window_minutes".to_owned(),
            between(self.auto_block_window_minutes, 1, 10_080),
        );
        check(
            "auto_block_hours".to_owned(),
            between(self.auto_block_hours, 1, 8_760),
        );

        for (name, setting) in &self.rules {
            if let Some(weight) = setting.weight {
                check(format!("rules.{name}.weight"), weight_problem(weight));
            }
        }

        let lists: [(&str, &Vec<String>, EntryCheck); 6] = [
            ("blocked_terms", &self.blocked_terms, term_problem),
            ("moderation_terms", &self.moderation_terms, term_problem),
            ("blocked_ips", &self.blocked_ips, |entry| {
                IpRange::parse(entry).err()
            }),
            (
                "blocked_email_domains",
                &self.blocked_email_domains,
                domain_problem,
            ),
            ("blocked_websites", &self.blocked_websites, domain_problem),
            ("allowed_scripts", &self.allowed_scripts, |entry| {
                Script::parse(entry)
                    .is_none()
                    .then(|| format!("must be one of {}", Script::names().join(", ")))
            }),
        ];
        for (field, entries, problem) in lists {
            if entries.len() > MAX_LIST_ENTRIES {
                check(
                    field.to_owned(),
                    Some(format!("must have at most {MAX_LIST_ENTRIES} entries")),
                );
                continue;
            }
            for (i, entry) in entries.iter().enumerate() {
                check(format!("{field}[{i}]"), problem(entry));
            }
        }
        bad
    }

    /// The fields in which this policy differs from `before`, named as [`Policy::validate`]
    /// names them (`hold_threshold`, `rules.links`): what a change did, for the audit log.
    pub fn changes_from(&self, before: &Policy) -> Vec<String> {
        // Destructured, so that a field added to `Policy` cannot be forgotten here.
        let Policy {
            mode,
            hold_threshold,
            spam_threshold,
            max_links,
            flood_interval_seconds,
            min_form_seconds,
            require_form_token,
            hold_new_authors,
            report_hold,
            edit_window_seconds,
            close_after_days,
            auto_block_spam,
            auto_block_window_minutes,
            auto_block_hours,
            blocked_terms,
            moderation_terms,
            rules,
            blocked_ips,
            blocked_email_domains,
            blocked_websites,
            allowed_scripts,
        } = self;
        let mut changed: Vec<String> = [
            ("mode", *mode != before.mode),
            ("hold_threshold", *hold_threshold != before.hold_threshold),
            ("spam_threshold", *spam_threshold != before.spam_threshold),
            ("max_links", *max_links != before.max_links),
            (
                "flood_interval_seconds",
                *flood_interval_seconds != before.flood_interval_seconds,
            ),
            (
                "min_form_seconds",
                *min_form_seconds != before.min_form_seconds,
            ),
            (
                "require_form_token",
                *require_form_token != before.require_form_token,
            ),
            (
                "hold_new_authors",
                *hold_new_authors != before.hold_new_authors,
            ),
            ("report_hold", *report_hold != before.report_hold),
            (
                "edit_window_seconds",
                *edit_window_seconds != before.edit_window_seconds,
            ),
            (
                "close_after_days",
                *close_after_days != before.close_after_days,
            ),
            (
                "auto_block_spam",
                *auto_block_spam != before.auto_block_spam,
            ),
            (
                "auto_block_window_minutes",
                *auto_block_window_minutes != before.auto_block_window_minutes,
            ),
            (
                "auto_block_hours",
                *auto_block_hours != before.auto_block_hours,
            ),
            ("blocked_terms", *blocked_terms != before.blocked_terms),
            (
                "moderation_terms",
                *moderation_terms != before.moderation_terms,
            ),
        ]
        .into_iter()
        .filter(|(_, differs)| *differs)
        .map(|(field, _)| field.to_owned())
        .collect();
        let names: std::collections::BTreeSet<&String> =
            rules.keys().chain(before.rules.keys()).collect();
        changed.extend(
            names
                .into_iter()
                .filter(|name| rules.get(*name) != before.rules.get(*name))
                .map(|name| format!("rules.{name}")),
        );
        changed.extend(
            [
                ("blocked_ips", *blocked_ips != before.blocked_ips),
                (
                    "blocked_email_domains",
                    *blocked_email_domains != before.blocked_email_domains,
                ),
                (
                    "blocked_websites",
                    *blocked_websites != before.blocked_websites,
                ),
                (
                    "allowed_scripts",
                    *allowed_scripts != before.allowed_scripts,
                ),
            ]
            .into_iter()
            .filter(|(_, differs)| *differs)
            .map(|(field, _)| field.to_owned()),
        );
        changed
    }

    /// The site's automatic blocks of an address, if it asks for them.
    pub fn auto_block(&self) -> Option<AutoBlock> {
        (self.auto_block_spam > 0).then(|| AutoBlock {
            spam: self.auto_block_spam,
            window: chrono::Duration::minutes(i64::from(self.auto_block_window_minutes)),
            lasts: chrono::Duration::hours(i64::from(self.auto_block_hours)),
        })
    }

    /// What the thresholds make of a score.
    pub fn verdict(&self, score: f64) -> Verdict {
        if score >= self.spam_threshold {
            Verdict::Spam
        } else if score >= self.hold_threshold {
            Verdict::Hold
        } else {
            Verdict::Approve
        }
    }

    /// The status a new reply starts in, for an author with `approved` and `spam` earlier
    /// replies on the site: [`Policy::initial_status`], then held while the author is new to
    /// the site as `hold_new_authors` counts it.
    pub fn initial_status_for(
        &self,
        assessment: &Assessment,
        approved: u32,
        spam: u32,
    ) -> CommentStatus {
        let trusted = approved > 0 && spam == 0;
        match self.initial_status(assessment, trusted) {
            CommentStatus::Approved
                if self.hold_new_authors > 0 && (approved < self.hold_new_authors || spam > 0) =>
            {
                CommentStatus::Pending
            }
            status => status,
        }
    }

    /// The status a new reply starts in. `trusted` is true for an author
    /// with earlier approved replies on the site.
    pub fn initial_status(&self, assessment: &Assessment, trusted: bool) -> CommentStatus {
        match (assessment.verdict, self.mode) {
            (Verdict::Spam, _) => CommentStatus::Spam,
            (Verdict::Hold, _) | (Verdict::Approve, Mode::ModerateAll) => CommentStatus::Pending,
            (Verdict::Approve, Mode::TrustedOnly) if !trusted => CommentStatus::Pending,
            (Verdict::Approve, _) => CommentStatus::Approved,
        }
    }
}

/// What is wrong with one entry of a list, if anything.
type EntryCheck = fn(&str) -> Option<String>;

fn weight_problem(value: f64) -> Option<String> {
    (!value.is_finite() || value.abs() > MAX_RULE_WEIGHT)
        .then(|| format!("must be a number between -{MAX_RULE_WEIGHT} and {MAX_RULE_WEIGHT}"))
}

fn between(value: u32, min: u32, max: u32) -> Option<String> {
    (value < min || value > max).then(|| format!("must be from {min} to {max}"))
}

fn at_most(value: u32, max: u32) -> Option<String> {
    (value > max).then(|| format!("must be at most {max}"))
}

fn term_problem(term: &str) -> Option<String> {
    if term.chars().count() > MAX_TERM_CHARS {
        Some(format!("must be at most {MAX_TERM_CHARS} characters"))
    } else if term.chars().any(char::is_control) {
        // PostgreSQL's jsonb cannot hold NUL, and no word is made of control characters.
        Some("must not contain control characters".to_owned())
    } else if Words::new(term).is_empty() {
        Some("must contain a letter or digit".to_owned())
    } else {
        None
    }
}

fn domain_problem(entry: &str) -> Option<String> {
    let domain = normalize_domain(entry);
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    (!labels_ok || !domain.contains('.') || domain.len() > 253).then(|| {
        "must be a domain name such as example.com (international names in punycode)".to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assessment(score: f64, policy: &Policy) -> Assessment {
        Assessment {
            score,
            verdict: policy.verdict(score),
            reasons: Vec::new(),
        }
    }

    #[test]
    fn a_new_author_waits_until_enough_replies_were_approved() {
        let mut policy = Policy::default();
        let clean = assessment(0.0, &policy);
        let held = assessment(1.0, &policy);
        assert_eq!(
            policy.initial_status_for(&clean, 0, 0),
            CommentStatus::Approved
        );
        policy.hold_new_authors = 2;
        assert_eq!(
            policy.initial_status_for(&clean, 1, 0),
            CommentStatus::Pending
        );
        assert_eq!(
            policy.initial_status_for(&clean, 2, 0),
            CommentStatus::Approved
        );
        assert_eq!(
            policy.initial_status_for(&clean, 5, 1),
            CommentStatus::Pending
        );
        assert_eq!(
            policy.initial_status_for(&held, 5, 0),
            CommentStatus::Pending
        );
    }

    #[test]
    fn scores_map_to_statuses_by_mode() {
        let mut policy = Policy::default();
        let clean = assessment(0.0, &policy);
        let held = assessment(1.0, &policy);
        let spam = assessment(5.0, &policy);
        assert_eq!(
            policy.initial_status(&clean, false),
            CommentStatus::Approved
        );
        assert_eq!(policy.initial_status(&held, true), CommentStatus::Pending);
        assert_eq!(policy.initial_status(&spam, true), CommentStatus::Spam);

        policy.mode = Mode::ModerateAll;
        assert_eq!(policy.initial_status(&clean, true), CommentStatus::Pending);
        assert_eq!(policy.initial_status(&spam, false), CommentStatus::Spam);

        policy.mode = Mode::TrustedOnly;
        assert_eq!(policy.initial_status(&clean, false), CommentStatus::Pending);
        assert_eq!(policy.initial_status(&clean, true), CommentStatus::Approved);
    }

    #[test]
    fn a_new_sites_policy_approves_automatically_without_form_tokens() {
        let policy = Policy::default();
        assert_eq!(policy.mode, Mode::Auto);
        assert!(!policy.require_form_token);
        assert!(policy.validate().is_empty());
    }

    #[test]
    fn a_rule_keeps_its_default_weight_when_only_its_state_changes() -> Result<(), String> {
        let policy: Policy = serde_json::from_str(r#"{"rules":{"links":{"state":"log-only"}}}"#)
            .map_err(|e| e.to_string())?;
        let links = policy.rule("links").ok_or("no links rule")?;
        assert_eq!(links.state, RuleState::LogOnly);
        assert_eq!(
            Some(links.weight),
            RULES.iter().find(|r| r.name == "links").map(|r| r.weight)
        );
        assert_eq!(policy.rule("no-such-rule"), None);
        Ok(())
    }

    #[test]
    fn validation_reports_every_bad_field_at_once() {
        let mut policy = Policy {
            hold_threshold: 6.0,
            max_links: 5_000,
            blocked_ips: vec!["192.0.2.0/24".into(), "192.0.2.0/33".into(), "host".into()],
            blocked_email_domains: vec!["@spam.example".into(), "not a domain".into()],
            blocked_websites: vec!["shop.example.com".into(), "localhost".into()],
            blocked_terms: vec!["casino".into(), "!!!".into()],
            allowed_scripts: vec!["latin".into(), "klingon".into()],
            ..Policy::default()
        };
        policy.rules.insert(
            "links".into(),
            RuleSetting {
                state: None,
                weight: Some(f64::NAN),
            },
        );
        let fields: Vec<String> = policy.validate().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "hold_threshold",
                "spam_threshold",
                "max_links",
                "rules.links.weight",
                "blocked_terms[1]",
                "blocked_ips[1]",
                "blocked_ips[2]",
                "blocked_email_domains[1]",
                "blocked_websites[1]",
                "allowed_scripts[1]",
            ]
        );
    }

    #[test]
    fn a_hold_threshold_at_the_spam_threshold_is_refused_on_both_fields() {
        let policy = Policy {
            hold_threshold: 5.0,
            spam_threshold: 5.0,
            ..Policy::default()
        };
        let fields: Vec<String> = policy.validate().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["hold_threshold", "spam_threshold"]);
    }

    #[test]
    fn terms_with_control_characters_are_refused() {
        let policy = Policy {
            blocked_terms: vec!["casino".into(), "cas\u{0}ino".into()],
            moderation_terms: vec!["loan\u{7}".into()],
            ..Policy::default()
        };
        let fields: Vec<String> = policy.validate().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["blocked_terms[1]", "moderation_terms[0]"]);
    }

    #[test]
    fn a_change_names_every_field_it_touched_and_nothing_else() {
        let before = Policy::default();
        assert!(before.changes_from(&before).is_empty());
        let mut after = Policy {
            hold_threshold: 2.0,
            blocked_ips: vec!["192.0.2.0/24".into()],
            ..Policy::default()
        };
        after.rules.insert(
            "links".into(),
            RuleSetting {
                state: Some(RuleState::LogOnly),
                weight: None,
            },
        );
        assert_eq!(
            after.changes_from(&before),
            ["hold_threshold", "rules.links", "blocked_ips"]
        );
        assert_eq!(
            before.changes_from(&after),
            ["hold_threshold", "rules.links", "blocked_ips"]
        );
    }

    #[test]
    fn rule_states_read_and_print_as_the_policy_words() {
        for state in [RuleState::Off, RuleState::On, RuleState::LogOnly] {
            assert_eq!(RuleState::parse(state.as_str()), Some(state));
        }
        assert_eq!(RuleState::parse("maybe"), None);
    }

    #[test]
    fn a_policy_missing_new_fields_reads_with_defaults() {
        let policy: Policy = serde_json::from_str(r#"{"mode":"moderate-all"}"#).unwrap_or_default();
        assert_eq!(policy.mode, Mode::ModerateAll);
        assert_eq!(policy.max_links, 2);
    }
}
