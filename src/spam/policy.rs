//! A site's moderation policy: how a spam score becomes a status.
//!
//! Stored as JSON with the site, so a field added later takes its default in
//! every older policy.

use serde::{Deserialize, Serialize};

use super::{Assessment, Verdict};
use crate::moderation::CommentStatus;

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
    /// Terms that make a reply spam.
    pub blocked_terms: Vec<String>,
    /// Terms that hold a reply for a moderator.
    pub moderation_terms: Vec<String>,
}

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
            blocked_terms: Vec::new(),
            moderation_terms: Vec::new(),
        }
    }
}

impl Policy {
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
    fn a_policy_missing_new_fields_reads_with_defaults() {
        let policy: Policy = serde_json::from_str(r#"{"mode":"moderate-all"}"#).unwrap_or_default();
        assert_eq!(policy.mode, Mode::ModerateAll);
        assert_eq!(policy.max_links, 2);
    }
}
