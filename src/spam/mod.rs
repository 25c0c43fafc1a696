//! Spam assessment: every reply gets a score that a moderator can read.
//!
//! The score is a sum of named rules, each adding a weight with a short reason.
//! Rules only look at the reply and at facts gathered before assessment; they
//! never touch storage, so assessing is pure and cheap.

mod links;
mod policy;

use serde::{Deserialize, Serialize};

pub use links::count_links;
pub use policy::{Mode, Policy};

use crate::submission::ValidReply;

/// What the thresholds alone make of a score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approve,
    Hold,
    Spam,
}

impl Verdict {
    /// The word stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Hold => "hold",
            Verdict::Spam => "spam",
        }
    }

    /// The inverse of [`Verdict::as_str`].
    pub fn parse(word: &str) -> Option<Verdict> {
        [Verdict::Approve, Verdict::Hold, Verdict::Spam]
            .into_iter()
            .find(|v| v.as_str() == word)
    }
}

/// One rule's contribution to a score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// The rule's stable name.
    pub rule: String,
    /// What it adds to the score.
    pub weight: f64,
    /// Why, in a few words.
    pub reason: String,
    /// Shown to moderators but not counted.
    #[serde(default)]
    pub log_only: bool,
}

/// The explainable result of assessing one reply.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    pub score: f64,
    pub verdict: Verdict,
    pub reasons: Vec<Reason>,
}

/// Everything a rule may look at.
pub struct Input<'a> {
    pub reply: &'a ValidReply,
    pub policy: &'a Policy,
    /// Links in the body, counted once for every rule.
    pub links: usize,
}

/// One named, weighted check.
pub trait Rule: Send + Sync {
    /// The stable name moderators and policies refer to.
    fn name(&self) -> &'static str;

    /// The weight to add and why, or `None` when the rule does not apply.
    fn check(&self, input: &Input<'_>) -> Option<(f64, String)>;
}

/// Runs every rule over a reply.
pub struct Assessor {
    rules: Vec<Box<dyn Rule>>,
}

impl Default for Assessor {
    fn default() -> Self {
        Assessor {
            rules: vec![Box::new(links::LinkCount)],
        }
    }
}

impl Assessor {
    /// Scores one reply under a site's policy.
    pub fn assess(&self, reply: &ValidReply, policy: &Policy) -> Assessment {
        let input = Input {
            reply,
            policy,
            links: count_links(reply.body.as_str()),
        };
        let reasons: Vec<Reason> = self
            .rules
            .iter()
            .filter_map(|rule| {
                rule.check(&input).map(|(weight, reason)| Reason {
                    rule: rule.name().to_owned(),
                    weight,
                    reason,
                    log_only: false,
                })
            })
            .collect();
        let score = reasons
            .iter()
            .filter(|r| !r.log_only)
            .map(|r| r.weight)
            .sum();
        Assessment {
            score,
            verdict: policy.verdict(score),
            reasons,
        }
    }
}
