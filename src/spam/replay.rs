//! Assessing a stored reply again: an author's edit, and a policy's dry run. The rules that read
//! the reply's text run again with this release's code; those that read what the service knew
//! when the reply came in cannot see that moment again, so their findings are kept from the
//! reasons stored with the reply, each weighed as the policy at hand weighs its rule.

use super::{Analysis, Assessment, Assessor, Facts, Policy, RULES, Reason, RuleSetting, RuleState};
use crate::domain::ValidReply;

/// The rules whose findings are about the moment a reply was sent rather than its text: its
/// form and honeypot, how soon it followed the author's last reply, what the site knew of its
/// author and address then, and the moderators' blocklist then. An edit keeps what they found.
pub const SUBMISSION_RULES: &[&str] = &[
    "moderator-block",
    "honeypot",
    "form-token-missing",
    "form-token-invalid",
    "form-token-expired",
    "form-token-reused",
    "form-too-fast",
    "flood",
    "history-trusted",
    "history-spam",
    "history-ip-spam",
];

/// What a dry run keeps from when each reply came in: [`SUBMISSION_RULES`], and the rules that
/// read the site's state then, the near-duplicates among its recent replies (`campaign`) and
/// what the classifier had learned (`classifier`). The rest read the reply and the policy alone.
pub const REPLAY_KEPT_RULES: &[&str] = &[
    "moderator-block",
    "honeypot",
    "form-token-missing",
    "form-token-invalid",
    "form-token-expired",
    "form-token-reused",
    "form-too-fast",
    "flood",
    "history-trusted",
    "history-spam",
    "history-ip-spam",
    "campaign",
    "classifier",
];

impl Assessment {
    /// This assessment of a stored reply, made under `policy`, with the findings of the `kept`
    /// rules replaced by those of `earlier` (the reasons stored with the reply, weighed under
    /// the policy `then`): each keeps the strength it was found with and takes the state and
    /// weight `policy` gives its rule, so a rule switched off is dropped and a changed weight
    /// counts. The score and verdict are made again under `policy`.
    pub fn with_kept_findings(
        mut self,
        earlier: &[Reason],
        kept: &[&str],
        then: &Policy,
        policy: &Policy,
    ) -> Assessment {
        self.reasons
            .retain(|reason| !kept.contains(&reason.rule.as_str()));
        for found in earlier {
            if !kept.contains(&found.rule.as_str()) {
                continue;
            }
            let (Some(was), Some(now)) = (then.rule(&found.rule), policy.rule(&found.rule)) else {
                continue;
            };
            if now.state == RuleState::Off {
                continue;
            }
            // A weight of 0 then leaves no strength to read: the finding is kept as it was.
            let weight = if was.weight == 0.0 {
                found.weight
            } else {
                ((now.weight * found.weight / was.weight) * 100.0).round() / 100.0
            };
            if weight == 0.0 {
                continue;
            }
            self.reasons.push(Reason {
                rule: found.rule.clone(),
                weight,
                reason: found.reason.clone(),
                log_only: now.state == RuleState::LogOnly,
            });
        }
        let order = |reason: &Reason| RULES.iter().position(|info| info.name == reason.rule);
        self.reasons.sort_by_key(order);
        let score = self
            .reasons
            .iter()
            .filter(|r| !r.log_only)
            .map(|r| r.weight)
            .sum::<f64>();
        self.score = (score * 100.0).round() / 100.0;
        self.verdict = policy.verdict(self.score);
        self
    }
}

/// Stored replies assessed again under one policy, keeping the findings of some rules from when
/// each reply came in: made once, used for many replies.
pub struct Replay {
    policy: Policy,
    then: Policy,
    /// `policy` with the kept rules off, so that they are not run only to be replaced.
    running: Policy,
    kept: &'static [&'static str],
}

impl Replay {
    /// A replay under `policy` of replies whose stored reasons were weighed under `then`,
    /// keeping the findings of `kept`.
    pub fn new(policy: Policy, then: Policy, kept: &'static [&'static str]) -> Replay {
        let mut running = policy.clone();
        for rule in kept {
            running.rules.insert(
                (*rule).to_owned(),
                RuleSetting {
                    state: Some(RuleState::Off),
                    weight: None,
                },
            );
        }
        Replay {
            policy,
            then,
            running,
            kept,
        }
    }

    /// The policy the replies are assessed under.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// `reply` (whose text is `text`) assessed again, with `earlier` its stored reasons.
    pub fn assess(
        &self,
        assessor: &Assessor,
        reply: &ValidReply,
        text: &Analysis,
        facts: &Facts<'_>,
        earlier: &[Reason],
    ) -> Assessment {
        assessor
            .assess_analysed(reply, text, &self.running, facts)
            .with_kept_findings(earlier, self.kept, &self.then, &self.policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spam::{
        Prior,
        testing::{hits, reason, reply},
    };

    #[test]
    fn a_replay_runs_the_text_rules_and_keeps_the_rest_from_the_stored_reasons() {
        let text = reply("Please subscribe to my channel http://www.youtube.com/user/promo");
        let earlier = vec![Reason {
            rule: "classifier".into(),
            weight: 0.4,
            reason: "learned then".into(),
            log_only: false,
        }];
        let now = Policy::default();
        let replay = Replay::new(now.clone(), now.clone(), REPLAY_KEPT_RULES);
        let assessor = Assessor::with_prior(Prior::builtin());
        let again = replay.assess(
            &assessor,
            &text,
            &Analysis::of(&text),
            &Facts::default(),
            &earlier,
        );
        assert_eq!(
            reason(&again, "classifier").map(|r| r.weight),
            Some(0.4),
            "the classifier is not asked again: {:?}",
            again.reasons
        );
        assert!(hits(&again, "self-promotion"), "{:?}", again.reasons);
    }
}
