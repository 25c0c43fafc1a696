//! The site's term lists: blocked terms make a reply spam, moderation terms hold it; and the
//! built-in phrases of engagement bait, which hold it too.
//!
//! Terms match whole words of the normalised text (see [`super::text`]), in the body, the
//! author's name and the website address, so `casino` catches `C4SINO` and `c a s i n o`
//! but never `occasional`.

use std::sync::LazyLock;

use super::{Finding, Input, Rule, text::Words};

/// The first term of `terms` found in the reply, as the moderator wrote it.
fn first_match<'p>(input: &Input<'_>, terms: &'p [String]) -> Option<&'p str> {
    if terms.is_empty() {
        return None;
    }
    let [name, website] = input.signature();
    let places = [&input.text.words, name, website];
    terms
        .iter()
        .find(|term| {
            let term = Words::new(term);
            places.iter().any(|words| words.contains_phrase(&term))
        })
        .map(|term| term.trim())
}

/// A reply that asks readers for likes or shares of itself ("like this comment if…", "thumbs
/// up if…"): engagement bait, which social networks demote as such, and which the YouTube
/// collection's labels call spam more often than not (docs/SPAM.md).
pub struct EngagementBait;

/// The phrases of [`EngagementBait`]. Each asks for a reaction to the reply itself; phrases
/// that also read as plain approval ("thumbs up for the council") or liking ("I like this if…")
/// are left out.
const BAIT: &[&str] = &[
    "like this comment",
    "like my comment",
    "thumbs up if",
    "give it a like",
    "give this a like",
    "give this comment a like",
    "share this comment",
];

impl Rule for EngagementBait {
    fn name(&self) -> &'static str {
        "engagement-bait"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        static PHRASES: LazyLock<Vec<Words>> =
            LazyLock::new(|| BAIT.iter().map(|phrase| Words::new(phrase)).collect());
        PHRASES
            .iter()
            .zip(BAIT)
            .find(|(phrase, _)| input.text.words.contains_phrase(phrase))
            .map(|(_, bait)| Finding::new(format!("asks for likes: \"{bait}\"")))
    }
}

/// A term the site never wants to see.
pub struct BlockedTerms;

impl Rule for BlockedTerms {
    fn name(&self) -> &'static str {
        "blocked-terms"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        first_match(input, &input.policy.blocked_terms)
            .map(|term| Finding::new(format!("blocked term \"{term}\"")))
    }
}

/// A term the site wants a moderator to read first.
pub struct ModerationTerms;

impl Rule for ModerationTerms {
    fn name(&self) -> &'static str {
        "moderation-terms"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        first_match(input, &input.policy.moderation_terms)
            .map(|term| Finding::new(format!("moderation term \"{term}\"")))
    }
}

#[cfg(test)]
mod tests {
    use crate::spam::{
        Policy, Verdict,
        testing::{assess_with, hits, reply},
    };

    fn blocking(policy: &mut Policy) {
        policy.blocked_terms = vec!["casino".into(), "cheap pills".into()];
        policy.moderation_terms = vec!["bitcoin".into()];
    }

    #[test]
    fn a_blocked_term_makes_a_reply_spam() {
        let assessment = assess_with(&reply("Try the best casino tonight"), blocking);
        assert!(hits(&assessment, "blocked-terms"));
        assert_eq!(assessment.verdict, Verdict::Spam);
    }

    #[test]
    fn obfuscated_blocked_terms_are_still_found() {
        for body in [
            "Try the best C4SINO tonight",
            "Try the best c a s i n o tonight",
            "Try the best c.a.s.i.n.o tonight",
            "Try the best cäsíno tonight",
            "Try the best ca$ino tonight",
            "get CHEAP   P1LLS here",
        ] {
            assert!(
                hits(&assess_with(&reply(body), blocking), "blocked-terms"),
                "{body}"
            );
        }
    }

    #[test]
    fn a_term_inside_a_longer_word_does_not_match() {
        let assessment = assess_with(&reply("An occasional casinos-free evening"), blocking);
        assert!(!hits(&assessment, "blocked-terms"));
    }

    #[test]
    fn a_blocked_term_in_the_author_name_counts() -> Result<(), String> {
        let mut spam = reply("Nice article");
        spam.author = crate::submission::AuthorName::parse("Casino Royale Deals")?;
        assert!(hits(&assess_with(&spam, blocking), "blocked-terms"));
        Ok(())
    }

    #[test]
    fn a_moderation_term_holds_a_reply() {
        let assessment = assess_with(&reply("Is BITCOIN worth it?"), blocking);
        assert!(hits(&assessment, "moderation-terms"));
        assert_eq!(assessment.verdict, Verdict::Hold);
        let clean = assess_with(&reply("Is gold worth it?"), blocking);
        assert!(!hits(&clean, "moderation-terms"));
    }

    #[test]
    fn asking_for_likes_is_engagement_bait_and_plain_liking_is_not() {
        for body in [
            "Like this comment if you are watching in 2015",
            "😼👍 LIKE THIS COMMENT 👍😼",
            "Thumbs up if you read it to the end.",
            "First! Give it a like",
        ] {
            let assessment = assess_with(&reply(body), |_| {});
            assert!(hits(&assessment, "engagement-bait"), "{body}");
        }
        for body in [
            "I like this article, and the comment from the mayor.",
            "Thumbs up for the council: the bridge is open at last.",
            "I would like this if the figures were right.",
            "Share your thoughts at the meeting on Monday.",
        ] {
            let assessment = assess_with(&reply(body), |_| {});
            assert!(!hits(&assessment, "engagement-bait"), "{body}");
        }
    }
}
