//! The site's term lists: blocked terms make a reply spam, moderation terms hold it; and the
//! built-in phrases of engagement bait and self-promotion, which hold it too.
//!
//! Terms match whole words of the normalised text (see [`super::text`]), in the body, the
//! author's name and the website address, so `casino` catches `C4SINO` and `c a s i n o`
//! but never `occasional`.

use std::sync::LazyLock;

use super::{
    Finding, Input, Rule,
    text::{Words, word_hash},
};

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

/// The first of `phrases` (as written; `normalised`, the same in order, as words) that the
/// words hold.
fn first_phrase<'p>(words: &Words, phrases: &'p [&str], normalised: &[Words]) -> Option<&'p str> {
    phrases
        .iter()
        .zip(normalised)
        .find(|(_, phrase)| words.contains_phrase(phrase))
        .map(|(phrase, _)| *phrase)
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
        first_phrase(&input.text.words, BAIT, &PHRASES)
            .map(|bait| Finding::new(format!("asks for likes: \"{bait}\"")))
    }
}

/// A reply that asks readers to subscribe to or follow its writer, or to visit the writer's own
/// channel, videos, music or blog: self-promotion, a staple of comment spam on video sites and
/// blogs alike (docs/SPAM.md). Mentioning one's own work is not enough: "my video of the flood"
/// is news, "check out my video" is an advertisement.
pub struct SelfPromotion;

/// How much more [`SelfPromotion`] weighs when the reply links somewhere: an advertisement
/// with its address is spam without anything learned, on blogs and news sites as on video
/// sites, so 1.5 becomes 5, the default spam threshold. Two judged spam of the three YouTube
/// files have both (their promotion mostly names a channel), and no ordinary reply of those
/// files or of the news comments promotes its writer at all (docs/SPAM.md).
const WITH_LINK: f64 = 10.0 / 3.0;

/// Requests of [`SelfPromotion`], matched as whole words. Some requests are left out for the
/// ordinary sentences they are part of: "follow me" alone ("they follow me home"), "sub me"
/// ("the coach would not sub me in"), "like for like" (a comparison), and the `x4x` shorthands
/// (`f4f`, `s4s`), which normalised as leetspeak read as words readers write (`sas`).
const REQUESTS: &[&str] = &[
    "subscribe to me",
    "subscribe me",
    "sub to me",
    "sub 4 sub",
    "sub4sub",
    "sub for sub",
    "follow 4 follow",
    "follow for follow",
    "like 4 like",
    "follow me on twitter",
    "follow me on instagram",
    "follow me on ig",
    "follow me on tiktok",
    "follow me on facebook",
    "follow me on snapchat",
    "follow me on twitch",
    "follow me on soundcloud",
];

/// A writer's own channel, in English, Spanish and Portuguese: always self-promotion.
const CHANNELS: &[(&str, &str)] = &[
    ("my", "channel"),
    ("my", "channels"),
    ("mi", "canal"),
    ("meu", "canal"),
];

/// The writer's own work, self-promotion when a reader is invited to it ([`INVITATIONS`]).
const WORKS: &[&str] = &[
    "video", "videos", "vid", "vids", "music", "song", "songs", "track", "tracks", "blog", "page",
    "website", "site", "playlist", "cover", "covers", "profile",
];

/// The verbs before "my" that invite a reader to the work: "watch my", "visit my".
const INVITATIONS: &[&str] = &["watch", "visit", "see", "view", "check", "hear"];

/// The same in two words: "check out my", "look at my", "listen to my". A bare "to my" is
/// left out: "to my music teacher" is a dedication.
const TWO_WORD_INVITATIONS: &[(&str, &str)] = &[
    ("check", "out"),
    ("look", "at"),
    ("listen", "to"),
    ("go", "to"),
    ("come", "to"),
];

/// Words that may stand between "my" and the work: "my new video", "my youtube channel".
const QUALIFIERS: &[&str] = &["new", "latest", "first", "youtube", "own"];

impl SelfPromotion {
    /// The words that promote, as the reply has them normalised.
    fn find(words: &Words) -> Option<String> {
        static PHRASES: LazyLock<Vec<Words>> =
            LazyLock::new(|| REQUESTS.iter().map(|phrase| Words::new(phrase)).collect());
        // The words every match starts from: a request's first word, or an owner ("my"). Most
        // replies have none, and are passed over in one look at each word's id.
        static CUES: LazyLock<Vec<u64>> = LazyLock::new(|| {
            let firsts = PHRASES.iter().filter_map(|phrase| phrase.hashes().first());
            let owners = CHANNELS.iter().map(|(owner, _)| word_hash(owner));
            let mut cues: Vec<u64> = firsts.copied().chain(owners).collect();
            cues.sort_unstable();
            cues.dedup();
            cues
        });
        let cued = |words: &Words| words.hashes().iter().any(|hash| CUES.contains(hash));
        if !cued(words) && !words.joined().is_some_and(cued) {
            return None;
        }
        if let Some(request) = first_phrase(words, REQUESTS, &PHRASES) {
            return Some(request.to_owned());
        }
        let words: Vec<&str> = words.iter().collect();
        (0..words.len()).find_map(|at| {
            let owner = words[at];
            let mut noun = at + 1;
            if words
                .get(noun)
                .is_some_and(|word| QUALIFIERS.contains(word))
            {
                noun += 1;
            }
            let work = *words.get(noun)?;
            if CHANNELS.contains(&(owner, work)) {
                return Some(words[at..=noun].join(" "));
            }
            if owner != "my" || !WORKS.contains(&work) {
                return None;
            }
            let before = |back: usize| at.checked_sub(back).map(|index| words[index]);
            let from = match (before(2), before(1)) {
                (Some(verb), Some(particle))
                    if TWO_WORD_INVITATIONS.contains(&(verb, particle)) =>
                {
                    at - 2
                }
                (_, Some(verb)) if INVITATIONS.contains(&verb) => at - 1,
                _ => return None,
            };
            Some(words[from..=noun].join(" "))
        })
    }
}

impl Rule for SelfPromotion {
    fn name(&self) -> &'static str {
        "self-promotion"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        let found = Self::find(&input.text.words)?;
        Some(match input.text.links.first() {
            None => Finding::new(format!("promotes the writer: \"{found}\"")),
            Some(link) => Finding::scaled(
                WITH_LINK,
                format!(
                    "promotes the writer with a link to {}: \"{found}\"",
                    link.host
                ),
            ),
        })
    }
}

/// A word written with Latin letters and Cyrillic or Greek ones that look like them
/// (`саsinо`, `vіagra`): readers type a word in one script, and a word mixed so is written to
/// pass a filter that compares letters. It holds, like a moderation term, whatever trust and
/// the classifier say; with a link in the reply it weighs 5/3 as much (5 by default) and is
/// spam on its own, as self-promotion with a link is.
pub struct Obfuscation;

/// How much more [`Obfuscation`] weighs when the reply links somewhere: 3 becomes 5.
const DISGUISED_WITH_LINK: f64 = 5.0 / 3.0;

impl Rule for Obfuscation {
    fn name(&self) -> &'static str {
        "obfuscation"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        let word = input.text.words.mixed_scripts()?;
        let reason = format!("\"{word}\" written with look-alike letters of another script");
        Some(match input.text.links.first() {
            None => Finding::new(reason),
            Some(link) => Finding::scaled(
                DISGUISED_WITH_LINK,
                format!("{reason}, with a link to {}", link.host),
            ),
        })
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
    use proptest::{collection, prelude::*, sample};

    use super::SelfPromotion;
    use crate::spam::{
        Policy, Verdict,
        testing::{assess_with, hits, reason, reply},
        text::Words,
    };

    #[test]
    fn a_word_mixing_scripts_holds_and_with_a_link_is_spam() {
        // "саsinо" with a Cyrillic с, а and о.
        let found = assess_with(
            &reply("Best \u{0441}\u{0430}sin\u{043e} bonus in town"),
            |_| {},
        );
        assert_eq!(
            reason(&found, "obfuscation").map(|r| (r.weight, r.reason.as_str())),
            Some((
                3.0,
                "\"casino\" written with look-alike letters of another script"
            ))
        );
        let linked = assess_with(
            &reply("Best \u{0441}\u{0430}sin\u{043e} bonus at https://win.example/now"),
            |_| {},
        );
        assert_eq!(reason(&linked, "obfuscation").map(|r| r.weight), Some(5.0));
        assert_eq!(linked.verdict, Verdict::Spam);
        // A word in one script is no disguise, whichever script: Russian, Greek, Latin.
        for text in [
            "\u{041c}\u{043e}\u{0441}\u{043a}\u{0432}\u{0430} is where I grew up",
            "\u{03ba}\u{03b1}\u{03bb}\u{03b7}\u{03bc}\u{03ad}\u{03c1}\u{03b1} to all readers",
            "Caf\u{00e9} owners on Main Street deserve better than this",
            // A keyboard set to Greek types the first letter: "Οh" and "Οkay" with a Greek Ο.
            "\u{039f}h my god, \u{039f}kay, congrats on the new record",
            // Too short to be a spam word.
            "I said n\u{043e} to that",
        ] {
            assert!(
                !hits(&assess_with(&reply(text), |_| {}), "obfuscation"),
                "{text}"
            );
        }
    }

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
        spam.author = crate::domain::AuthorName::parse("Casino Royale Deals")?;
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

    #[test]
    fn inviting_readers_to_the_writers_own_channel_is_self_promotion() {
        for (body, found) in [
            ("Please subscribe to my channel!", "my channel"),
            (
                "Check out my new video about cats",
                "check out my new video",
            ),
            ("watch my vids xx", "watch my vids"),
            (
                "Listen to my music, it's on soundcloud",
                "listen to my music",
            ),
            ("SUB 4 SUB anyone?", "sub 4 sub"),
            ("Sub4sub, I'm new here", "sub4sub"),
            ("I am so smart, subscribe to me!", "subscribe to me"),
            ("Follow me on Instagram: @someone", "follow me on instagram"),
            ("los invito a subscribirse a mi canal", "mi canal"),
            ("Visit my YouTube channel", "my youtube channel"),
        ] {
            let assessment = assess_with(&reply(body), |_| {});
            let reason = assessment
                .reasons
                .iter()
                .find(|reason| reason.rule == "self-promotion")
                .map(|reason| reason.reason.as_str());
            assert_eq!(
                reason,
                Some(format!("promotes the writer: \"{found}\"").as_str()),
                "{body}"
            );
        }
        // With a link it is an advertisement: spam on its own.
        let linked = assess_with(
            &reply("Check out my channel at https://videos.example/me for more"),
            |_| {},
        );
        let reason = linked
            .reasons
            .iter()
            .find(|reason| reason.rule == "self-promotion");
        assert_eq!(
            reason.map(|r| (r.weight, r.reason.as_str())),
            Some((
                5.0,
                "promotes the writer with a link to videos.example: \"my channel\""
            ))
        );
        assert_eq!(linked.verdict, Verdict::Spam);
        for body in [
            "My video of the flood shows the water reaching the bridge.",
            "More on my own blog, if you are curious.",
            "The canal by my house froze last night.",
            "To my music teacher, who taught half this town: thank you.",
            "See the council's page on the new bridge.",
            "They follow me around the market every Saturday, those pigeons.",
            "A like for like comparison shows the rents went up.",
            "The coach would not sub me in until the last minute.",
            "The SAS flight to Oslo was cancelled again.",
        ] {
            let assessment = assess_with(&reply(body), |_| {});
            assert!(!hits(&assessment, "self-promotion"), "{body}");
        }
    }

    proptest! {
        /// Whatever words surround them, at the start or the end of a reply, what the rule
        /// quotes is words the reply has, in its order.
        #[test]
        fn self_promotion_quotes_words_of_the_reply(
            words in collection::vec(
                sample::select(vec![
                    "my", "mi", "check", "out", "look", "at", "listen", "to", "watch", "new",
                    "youtube", "channel", "canal", "video", "sub", "4", "subscribe", "me",
                    "follow", "on", "instagram", "the", "!", "s u b",
                ]),
                0..10,
            )
        ) {
            let text = words.join(" ");
            let reply = Words::new(&text);
            if let Some(found) = SelfPromotion::find(&reply) {
                prop_assert!(reply.contains_phrase(&Words::new(&found)), "{text:?}: {found:?}");
            }
        }
    }
}
