//! Spam assessment: every reply gets a score that a moderator can read.
//!
//! The score is a sum of named rules, each adding a weight with a short reason. Rules only
//! look at the reply and at [`Facts`] gathered before assessment; they never touch storage,
//! so assessing is pure and cheap. Each family of rules has its own file; [`RULES`] lists
//! every rule with its default weight, and a site's [`Policy`] can switch each one off,
//! make it log-only, or change its weight.

mod blocklists;
mod classifier;
mod duplicates;
mod facts;
pub mod form;
mod history;
mod links;
mod logistic;
mod policy;
mod replay;
mod shape;
mod terms;
mod text;

use serde::{Deserialize, Serialize};

pub use blocklists::IpRange;
pub use classifier::{
    FeatureMap, Label, LearnedStats, MARK_WEIGHT, PRIOR_SCALE, Prior, REVIEW_WEIGHT, Reading,
    features, probability, read,
};
pub use duplicates::{RecentReply, author_tag, fingerprint};
pub use facts::Facts;
pub use form::FormCheck;
pub use links::{Link, count_links, find_links};
pub use logistic::Logistic;
pub use policy::{
    ActiveRule, MAX_LIST_ENTRIES, MAX_TERM_CHARS, Mode, Policy, RuleSetting, RuleState,
};
pub use replay::{REPLAY_KEPT_RULES, Replay, SUBMISSION_RULES};
pub use shape::Script;
pub(crate) use text::hash_bytes;

use crate::domain::ValidReply;

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

/// A rule's name, default weight and purpose, as documented in docs/SPAM.md.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RuleInfo {
    pub name: &'static str,
    /// What the rule adds when it applies, unless the site changes it. For the classifier it
    /// multiplies the weight its probability maps to.
    pub weight: f64,
    pub about: &'static str,
}

macro_rules! rules {
    ($($name:literal => $weight:literal, $about:literal;)*) => {
        /// Every rule, in the order reasons are listed.
        pub const RULES: &[RuleInfo] = &[$(RuleInfo { name: $name, weight: $weight, about: $about }),*];
    };
}

rules! {
    "blocked-terms" => 10.0, "a blocked term of the site, matched as words on normalised text";
    "moderation-terms" => 3.0, "a moderation term of the site: holds the reply";
    "blocked-ip" => 10.0, "the client address is in a blocked address or range";
    "moderator-block" => 10.0, "on the site's blocklist that moderators keep with `replyctl block`: the author, address or domain";
    "blocked-email-domain" => 10.0, "the author's email domain is blocked";
    "blocked-website" => 10.0, "the author's website or a linked site is blocked";
    "honeypot" => 10.0, "the hidden honeypot field was filled in";
    "form-token-missing" => 3.0, "no form token on a site that requires one";
    "form-token-invalid" => 5.0, "a malformed or forged form token, or one for another article";
    "form-token-expired" => 1.0, "a form token past its lifetime";
    "form-token-reused" => 3.0, "a form token already used for another reply";
    "form-too-fast" => 2.0, "sent sooner after loading the form than the site's minimum";
    "flood" => 2.0, "a reply within the flood interval (refused while on)";
    "links" => 1.5, "as many links as the site's maximum or more";
    "link-in-name" => 2.0, "a link or domain in the author's name";
    "link-shortener" => 1.5, "a link through a URL shortener";
    "link-raw-ip" => 2.0, "a link to a bare IP address";
    "link-tld" => 1.0, "a link to a top-level domain mostly used for spam";
    "link-disguised" => 3.0, "a domain written apart so that it is not read as a link (`example . com`): holds";
    "link-website-repeat" => 1.0, "the author's website linked again in the text";
    "campaign" => 2.0, "nearly the same text as two recent replies by others or elsewhere, or as one with a link; a linked text from two other authors weighs 2.75 times as much (5.5): spam";
    "history-trusted" => -1.0, "an author with earlier approved replies and no spam";
    "history-spam" => 2.0, "an author with earlier spam";
    "history-ip-spam" => 1.0, "a client address with earlier spam";
    "shape-capitals" => 0.5, "mostly capital letters";
    "shape-repetition" => 0.5, "a character or word repeated over and over";
    "shape-short-link" => 1.0, "a link with hardly a word around it";
    "shape-script" => 1.0, "letters mostly outside the site's allowed scripts";
    "engagement-bait" => 1.5, "asks readers for likes or shares";
    "obfuscation" => 3.0, "a word with a look-alike letter of another script after a Latin one (`cаsinо`): holds; with a link, 5/3 of the weight (5): spam";
    "self-promotion" => 1.5, "asks readers to subscribe to the writer or visit the writer's own channel or work; with a link, 10/3 of the weight (5): spam";
    "classifier" => 1.0, "the learned spam probability, from -0.5 (sure ham) to 2.9 (sure spam), or to 5 once the site taught 50 replies or for a reply the prior (or the deployment's shared lessons) knows nearly every feature of";
}

/// What a rule found: why, and how strongly (the rule's weight is multiplied by it).
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub strength: f64,
    pub reason: String,
}

impl Finding {
    /// The rule applies with its full weight.
    pub fn new(reason: String) -> Finding {
        Finding {
            strength: 1.0,
            reason,
        }
    }

    /// The rule applies with its weight times `strength`.
    pub fn scaled(strength: f64, reason: String) -> Finding {
        Finding { strength, reason }
    }
}

/// What the rules read of a reply's body, worked out once per reply. The submit pipeline
/// makes it before it gathers facts, since the store loads the learned counts of exactly
/// these features, and stores the fingerprint; the rules then read the same analysis.
pub struct Analysis {
    /// The links in the body.
    pub links: Vec<Link>,
    /// The normalised words of the body.
    pub words: text::Words,
    /// The classifier's features, sorted and de-duplicated.
    pub features: Vec<u64>,
    /// The near-duplicate fingerprint (SimHash) of the words.
    pub fingerprint: u64,
    /// How many letters the body has.
    pub letters: usize,
    /// How many of those letters are capitals.
    pub capitals: usize,
}

impl Analysis {
    /// Reads `reply`'s body once for every rule.
    pub fn of(reply: &ValidReply) -> Analysis {
        let body = reply.body.as_str();
        let words = text::Words::new(body);
        let links = find_links(body);
        let (mut letters, mut capitals) = (0, 0);
        if body.is_ascii() {
            for b in body.bytes().filter(u8::is_ascii_alphabetic) {
                letters += 1;
                capitals += usize::from(b.is_ascii_uppercase());
            }
        } else {
            for c in body.chars().filter(|c| c.is_alphabetic()) {
                letters += 1;
                capitals += usize::from(c.is_uppercase());
            }
        }
        let features = classifier::features_of(
            &words,
            &links,
            classifier::Shape {
                letters,
                capitals,
                website: reply.website.is_some(),
            },
        );
        Analysis {
            fingerprint: duplicates::fingerprint_words(&words),
            links,
            words,
            features,
            letters,
            capitals,
        }
    }
}

/// Everything a rule may look at.
pub struct Input<'a> {
    pub reply: &'a ValidReply,
    pub policy: &'a Policy,
    pub facts: &'a Facts<'a>,
    /// The body, read once for every rule.
    pub text: &'a Analysis,
    /// The normalised words of the author's name and website, read once when a term rule
    /// first needs them.
    signature: std::cell::OnceCell<[text::Words; 2]>,
}

impl Input<'_> {
    /// The normalised words of the author's name and of their website address.
    pub fn signature(&self) -> &[text::Words; 2] {
        self.signature.get_or_init(|| {
            let website = self
                .reply
                .website
                .as_ref()
                .map_or_else(text::Words::default, |w| text::Words::new(w.as_str()));
            [text::Words::new(self.reply.author.as_str()), website]
        })
    }
}

/// One named check.
pub trait Rule: Send + Sync {
    /// The stable name moderators and policies refer to; one of [`RULES`].
    fn name(&self) -> &'static str;

    /// What the rule found, or `None` when it does not apply.
    fn check(&self, input: &Input<'_>) -> Option<Finding>;
}

/// Runs every rule over a reply.
pub struct Assessor {
    rules: Vec<(Box<dyn Rule>, &'static RuleInfo)>,
}

impl Default for Assessor {
    /// Every rule, with the prior built into this release.
    fn default() -> Self {
        Assessor::with_prior(Prior::builtin())
    }
}

impl Assessor {
    /// Every rule, with `prior` as the classifier's starting knowledge (empty for none).
    pub fn with_prior(prior: Prior) -> Assessor {
        let rules: Vec<Box<dyn Rule>> = vec![
            Box::new(terms::BlockedTerms),
            Box::new(terms::ModerationTerms),
            Box::new(blocklists::BlockedIp),
            Box::new(blocklists::ModeratorBlock),
            Box::new(blocklists::BlockedEmailDomain),
            Box::new(blocklists::BlockedWebsite),
            Box::new(form::Honeypot),
            Box::new(form::TokenMissing),
            Box::new(form::TokenInvalid),
            Box::new(form::TokenExpired),
            Box::new(form::TokenReused),
            Box::new(form::TooFast),
            Box::new(history::Flood),
            Box::new(links::LinkCount),
            Box::new(links::LinkInName),
            Box::new(links::LinkShortener),
            Box::new(links::LinkRawIp),
            Box::new(links::LinkTld),
            Box::new(links::LinkDisguised),
            Box::new(links::LinkWebsiteRepeat),
            Box::new(duplicates::Campaign),
            Box::new(history::Trusted),
            Box::new(history::AuthorSpam),
            Box::new(history::IpSpam),
            Box::new(shape::Capitals),
            Box::new(shape::Repetition),
            Box::new(shape::ShortWithLink),
            Box::new(shape::UnusualScript),
            Box::new(terms::EngagementBait),
            Box::new(terms::Obfuscation),
            Box::new(terms::SelfPromotion),
            Box::new(classifier::Classifier::new(prior)),
        ];
        let rules = rules
            .into_iter()
            .filter_map(|rule| {
                let info = RULES.iter().find(|info| info.name == rule.name())?;
                Some((rule, info))
            })
            .collect();
        Assessor { rules }
    }

    /// Scores one reply under a site's policy, with what is known about it beforehand.
    pub fn assess(&self, reply: &ValidReply, policy: &Policy, facts: &Facts<'_>) -> Assessment {
        self.assess_analysed(reply, &Analysis::of(reply), policy, facts)
    }

    /// [`Assessor::assess`] for a reply whose body is already analysed.
    pub fn assess_analysed(
        &self,
        reply: &ValidReply,
        text: &Analysis,
        policy: &Policy,
        facts: &Facts<'_>,
    ) -> Assessment {
        let input = Input {
            reply,
            policy,
            facts,
            text,
            signature: std::cell::OnceCell::new(),
        };
        let mut reasons = Vec::new();
        for (rule, info) in &self.rules {
            let setting = if policy.rules.is_empty() {
                RuleSetting::default()
            } else {
                policy.rules.get(info.name).copied().unwrap_or_default()
            };
            let state = setting.state.unwrap_or(RuleState::On);
            if state == RuleState::Off {
                continue;
            }
            let Some(finding) = rule.check(&input) else {
                continue;
            };
            let weight = setting.weight.unwrap_or(info.weight) * finding.strength;
            // Hundredths are all a moderator can read, and they keep sums tidy.
            let weight = (weight * 100.0).round() / 100.0;
            if weight == 0.0 {
                continue;
            }
            reasons.push(Reason {
                rule: info.name.to_owned(),
                weight,
                reason: finding.reason,
                log_only: state == RuleState::LogOnly,
            });
        }
        let score = reasons
            .iter()
            .filter(|r| !r.log_only)
            .map(|r| r.weight)
            .sum::<f64>();
        // Summing hundredths in floating point can leave 2.9999999; round it back.
        let score = (score * 100.0).round() / 100.0;
        Assessment {
            score,
            verdict: policy.verdict(score),
            reasons,
        }
    }
}

/// Helpers for the rules' tests: a plain reply and an assessor without the built-in prior,
/// so each test sees only the rule it is about.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::domain::{RawReply, validate};

    /// A valid reply with `body` under the article `/story`, from a new author.
    pub fn reply(body: &str) -> ValidReply {
        let raw = RawReply {
            article: "/story",
            author_name: "Jane Reader",
            author_email: "jane@example.com",
            body,
            ..RawReply::default()
        };
        match validate(&raw) {
            Ok(reply) => reply,
            Err(violations) => panic!("test reply does not validate: {violations:?}"),
        }
    }

    /// Assesses under the default policy changed by `change`, with default facts.
    pub fn assess_with(reply: &ValidReply, change: impl FnOnce(&mut Policy)) -> Assessment {
        let mut policy = Policy::default();
        change(&mut policy);
        Assessor::with_prior(Prior::empty()).assess(reply, &policy, &Facts::default())
    }

    /// Assesses under the default policy with `facts`.
    pub fn assess_facts(reply: &ValidReply, facts: &Facts<'_>) -> Assessment {
        Assessor::with_prior(Prior::empty()).assess(reply, &Policy::default(), facts)
    }

    /// The reason given by `rule`, if it applied.
    pub fn reason<'a>(assessment: &'a Assessment, rule: &str) -> Option<&'a Reason> {
        assessment.reasons.iter().find(|r| r.rule == rule)
    }

    /// Whether `rule` applied (counted or log-only).
    pub fn hits(assessment: &Assessment, rule: &str) -> bool {
        reason(assessment, rule).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::{testing::*, *};

    #[test]
    fn every_listed_rule_runs_and_every_rule_is_listed() {
        let assessor = Assessor::with_prior(Prior::empty());
        let names: Vec<&str> = assessor.rules.iter().map(|(_, info)| info.name).collect();
        let listed: Vec<&str> = RULES.iter().map(|info| info.name).collect();
        assert_eq!(names, listed);
    }

    /// The rules that hold a reply (WordPress's two links, a moderation term, engagement bait,
    /// self-promotion) do so whatever the classifier thinks: its surest ham weighs less than
    /// their margin over the hold threshold. Only a moderation term also outweighs an author's
    /// trust.
    #[test]
    fn holding_rules_hold_against_a_sure_ham_classifier() {
        let hold = Policy::default().hold_threshold;
        let weight = |name: &str| {
            RULES
                .iter()
                .find(|info| info.name == name)
                .map_or(f64::NAN, |info| info.weight)
        };
        let surest_ham = (0..=50)
            .map(|lessons| classifier::strength(0.0, f64::from(lessons), 1.0))
            .fold(f64::INFINITY, f64::min);
        assert!(weight("links") + surest_ham >= hold);
        assert!(weight("engagement-bait") + surest_ham >= hold);
        assert!(weight("self-promotion") + surest_ham >= hold);
        assert!(weight("moderation-terms") + surest_ham + weight("history-trusted") >= hold);
    }

    #[test]
    fn normal_readers_replies_without_a_form_token_are_approved() {
        let policy = Policy::default();
        let assessor = Assessor::default();
        for text in [
            "I think the council got this one right, thanks for the report.",
            "Great article. My grandmother lived on that street in the fifties.",
            "This is wrong: the figures in the second paragraph are from 2019, not 2023.",
            "Does anyone know when the new bridge opens? I could not find it in the piece.",
            "Thank you for writing this, it made my day.",
            "I disagree. Taxes went up every year under both parties and nobody talks about it.",
            "Well written and fair to both sides.",
            "The photo at the top is of the old station, not the new one.",
        ] {
            let assessment = assessor.assess(&reply(text), &policy, &Facts::default());
            assert_eq!(
                policy.initial_status(&assessment, false),
                crate::domain::CommentStatus::Approved,
                "{text}: {:?}",
                assessment.reasons
            );
        }
    }

    #[test]
    fn typical_comment_spam_is_held_by_the_builtin_prior() {
        let policy = Policy::default();
        let assessor = Assessor::default();
        for text in [
            "Check out my channel and subscribe, I post new videos every day!",
            "Please subscribe to my channel http://www.youtube.com/user/promo",
            "Make money from home, visit http://cash.example.com now",
        ] {
            let assessment = assessor.assess(&reply(text), &policy, &Facts::default());
            assert_ne!(
                policy.initial_status(&assessment, false),
                crate::domain::CommentStatus::Approved,
                "{text}: {:?}",
                assessment.reasons
            );
        }
    }

    #[test]
    fn a_log_only_rule_is_shown_but_not_counted() {
        let two_links =
            reply("See https://a.example/1 and https://b.example/2 for the whole council report");
        let counted = assess_with(&two_links, |_| {});
        let logged = assess_with(&two_links, |p| {
            p.rules.insert(
                "links".into(),
                RuleSetting {
                    state: Some(RuleState::LogOnly),
                    weight: None,
                },
            );
        });
        let shown = reason(&logged, "links");
        assert!(shown.is_some_and(|r| r.log_only && r.weight == 1.5));
        assert_eq!(logged.score, counted.score - 1.5);
        assert_eq!(counted.verdict, Verdict::Hold);
        assert_eq!(logged.verdict, Verdict::Approve);
    }

    #[test]
    fn a_rule_switched_off_is_not_run_and_a_changed_weight_counts() {
        let two_links =
            reply("See https://a.example/1 and https://b.example/2 for the whole council report");
        let off = assess_with(&two_links, |p| {
            p.rules.insert(
                "links".into(),
                RuleSetting {
                    state: Some(RuleState::Off),
                    weight: None,
                },
            );
        });
        assert!(!hits(&off, "links"));
        let heavy = assess_with(&two_links, |p| {
            p.rules.insert(
                "links".into(),
                RuleSetting {
                    state: None,
                    weight: Some(6.0),
                },
            );
        });
        assert_eq!(reason(&heavy, "links").map(|r| r.weight), Some(6.0));
        assert_eq!(heavy.verdict, Verdict::Spam);
    }

    #[test]
    fn a_stored_replys_submission_findings_are_kept_and_weighed_under_the_new_policy() {
        let text = reply("See https://a.example/1 and https://b.example/2 today");
        let earlier = vec![
            Reason {
                rule: "links".into(),
                weight: 1.5,
                reason: "old".into(),
                log_only: false,
            },
            Reason {
                rule: "form-too-fast".into(),
                weight: 2.0,
                reason: "sent 1 s after the form".into(),
                log_only: false,
            },
        ];
        let then = Policy::default();
        let fresh = assess_with(&text, |_| {});
        assert!(!hits(&fresh, "form-too-fast"));
        let again = fresh
            .clone()
            .with_kept_findings(&earlier, SUBMISSION_RULES, &then, &then);
        assert_eq!(reason(&again, "form-too-fast").map(|r| r.weight), Some(2.0));
        assert_eq!(again.score, fresh.score + 2.0);
        assert_eq!(
            again.reasons.last().map(|r| r.rule.as_str()),
            fresh.reasons.last().map(|r| r.rule.as_str()),
            "listed in the rules' order"
        );

        let mut heavier = Policy::default();
        heavier.rules.insert(
            "form-too-fast".into(),
            RuleSetting {
                state: Some(RuleState::LogOnly),
                weight: Some(4.0),
            },
        );
        let weighed = fresh
            .clone()
            .with_kept_findings(&earlier, SUBMISSION_RULES, &then, &heavier);
        let found = reason(&weighed, "form-too-fast");
        assert!(
            found.is_some_and(|r| r.weight == 4.0 && r.log_only),
            "{found:?}"
        );
        assert_eq!(weighed.score, fresh.score);
        heavier.rules.insert(
            "form-too-fast".into(),
            RuleSetting {
                state: Some(RuleState::Off),
                weight: None,
            },
        );
        let off = fresh.with_kept_findings(&earlier, SUBMISSION_RULES, &then, &heavier);
        assert!(!hits(&off, "form-too-fast"));
    }

    #[test]
    fn rules_are_named_uniquely() {
        let mut names: Vec<&str> = RULES.iter().map(|r| r.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RULES.len());
    }
}
