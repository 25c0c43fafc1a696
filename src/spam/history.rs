//! Rules from what the site already knows about the author and the client address.
//!
//! Trust comes from the keyed email hash plus earlier approved replies, or, where the author
//! confirmed the address by a link mailed to it, from that confirmation. Anyone can type a
//! trusted author's email, so trust only lowers the score a little: it can cancel a weak
//! signal such as shouting, never links, blocked terms or a classifier that is sure.

use super::{Finding, Input, Rule};

/// An author whose earlier replies were approved, and none were spam or mostly rejected; or
/// one who confirmed their address by mail, with no spam and no more rejected than approved.
pub struct Trusted;

impl Rule for Trusted {
    fn name(&self) -> &'static str {
        "history-trusted"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        let facts = input.facts;
        let approved = facts.author_approved;
        let plural = if approved == 1 { "reply" } else { "replies" };
        if facts.author_spam > 0 {
            return None;
        }
        if facts.author_confirmed && approved >= facts.author_rejected {
            return Some(Finding::new(format!(
                "address confirmed by mail; {approved} earlier {plural} approved"
            )));
        }
        (approved > 0 && approved > facts.author_rejected)
            .then(|| Finding::new(format!("{approved} earlier {plural} approved")))
    }
}

/// An author with earlier replies judged spam.
pub struct AuthorSpam;

impl Rule for AuthorSpam {
    fn name(&self) -> &'static str {
        "history-spam"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        let spam = input.facts.author_spam;
        (spam > 0).then(|| {
            let plural = if spam == 1 { "reply" } else { "replies" };
            Finding::new(format!("{spam} earlier {plural} by this author were spam"))
        })
    }
}

/// A client address that sent spam before; shared addresses exist, so it weighs less than
/// the author's own record.
pub struct IpSpam;

impl Rule for IpSpam {
    fn name(&self) -> &'static str {
        "history-ip-spam"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        let spam = input.facts.ip_spam;
        (spam > 0).then(|| {
            let plural = if spam == 1 { "reply" } else { "replies" };
            Finding::new(format!(
                "{spam} earlier {plural} from this address were spam"
            ))
        })
    }
}

/// A reply sooner after the author's or the address's previous one than the flood interval.
/// The pipeline refuses these while the rule is on; the rule is here so that a site trying
/// it out (log-only) sees it on the replies it would have refused.
pub struct Flood;

impl Rule for Flood {
    fn name(&self) -> &'static str {
        "flood"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        input.facts.flood_remaining(input.policy).map(|wait| {
            Finding::new(format!(
                "another reply {} s ago (interval {} s)",
                u64::from(input.policy.flood_interval_seconds).saturating_sub(wait.as_secs()),
                input.policy.flood_interval_seconds
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::spam::{
        Facts, Policy, RuleSetting, RuleState,
        testing::{assess_facts, hits, reply},
    };

    #[test]
    fn a_confirmed_address_is_trusted_without_history_but_not_with_spam() {
        let confirmed = Facts {
            author_confirmed: true,
            ..Facts::default()
        };
        let assessment = assess_facts(&reply("A first reply from a confirmed reader"), &confirmed);
        assert!(hits(&assessment, "history-trusted"));
        let spammer = Facts {
            author_confirmed: true,
            author_spam: 1,
            ..Facts::default()
        };
        let assessment = assess_facts(&reply("A reply from a confirmed spammer"), &spammer);
        assert!(!hits(&assessment, "history-trusted"));
        let refused = Facts {
            author_confirmed: true,
            author_rejected: 1,
            ..Facts::default()
        };
        let assessment = assess_facts(&reply("A reply from a refused reader"), &refused);
        assert!(!hits(&assessment, "history-trusted"));
        let unconfirmed = assess_facts(&reply("A first reply"), &Facts::default());
        assert!(!hits(&unconfirmed, "history-trusted"));
    }

    #[test]
    fn an_author_with_approved_replies_is_trusted_and_lowers_the_score() {
        let facts = Facts {
            author_approved: 3,
            ..Facts::default()
        };
        let trusted = assess_facts(&reply("A fine point about the budget"), &facts);
        assert!(hits(&trusted, "history-trusted"));
        assert!(trusted.score < 0.0);
        let spammer = Facts {
            author_approved: 3,
            author_spam: 1,
            ..Facts::default()
        };
        let assessment = assess_facts(&reply("A fine point about the budget"), &spammer);
        assert!(!hits(&assessment, "history-trusted"));
        assert!(hits(&assessment, "history-spam"));
    }

    #[test]
    fn a_new_author_has_no_history() {
        let assessment = assess_facts(&reply("A fine point about the budget"), &Facts::default());
        for rule in [
            "history-trusted",
            "history-spam",
            "history-ip-spam",
            "flood",
        ] {
            assert!(!hits(&assessment, rule), "{rule}");
        }
    }

    #[test]
    fn an_address_with_earlier_spam_is_suspect() {
        let facts = Facts {
            ip_spam: 2,
            ..Facts::default()
        };
        assert!(hits(
            &assess_facts(&reply("hello there"), &facts),
            "history-ip-spam"
        ));
    }

    #[test]
    fn a_reply_within_the_flood_interval_must_wait_for_the_rest_of_it() {
        let policy = Policy::default();
        let facts = Facts {
            since_author_reply: Some(Duration::from_secs(40)),
            since_ip_reply: Some(Duration::from_secs(6)),
            ..Facts::default()
        };
        assert_eq!(facts.flood_wait(&policy), Some(Duration::from_secs(9)));
        let calm = Facts {
            since_author_reply: Some(Duration::from_secs(15)),
            ..Facts::default()
        };
        assert_eq!(calm.flood_wait(&policy), None);
        assert_eq!(Facts::default().flood_wait(&policy), None);
    }

    #[test]
    fn a_flood_rule_off_or_log_only_refuses_nothing() {
        let facts = Facts {
            since_ip_reply: Some(Duration::from_secs(1)),
            ..Facts::default()
        };
        for state in [RuleState::Off, RuleState::LogOnly] {
            let mut policy = Policy::default();
            policy.rules.insert(
                "flood".into(),
                RuleSetting {
                    state: Some(state),
                    weight: None,
                },
            );
            assert_eq!(facts.flood_wait(&policy), None);
        }
        let policy = Policy {
            flood_interval_seconds: 0,
            ..Policy::default()
        };
        assert_eq!(facts.flood_wait(&policy), None);
    }
}
