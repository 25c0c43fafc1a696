//! Rules about the shape of a text rather than its words: shouting, repetition, a bare link
//! with hardly a word, and writing in a script the site's readers do not use.
//!
//! Each of these also shows up in some honest replies, so their default weights are small:
//! they tip a doubtful reply into the queue, they never make one spam on their own.

use super::{Finding, Input, Rule};

/// Fewer letters than this are too few to call a text shouting.
const MIN_LETTERS_FOR_CAPITALS: usize = 12;
/// The share of capitals among letters from which a text is shouting.
const CAPITALS_RATIO: f64 = 0.7;
/// A character repeated this many times in a row (`!!!!!!!!!!`).
const REPEATED_CHARS: usize = 10;
/// A word repeated this many times in a row (`buy buy buy buy`).
const REPEATED_WORDS: usize = 4;
/// A reply with a link and at most this many other words is "just a link".
const SHORT_WITH_LINK_WORDS: usize = 4;
/// The share of letters outside the allowed scripts that counts as unusual.
const FOREIGN_SCRIPT_RATIO: f64 = 0.3;

/// Mostly capital letters.
pub struct Capitals;

impl Rule for Capitals {
    fn name(&self) -> &'static str {
        "shape-capitals"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        let (letters, capitals) = (input.text.letters, input.text.capitals);
        let ratio = capitals as f64 / letters.max(1) as f64;
        (letters >= MIN_LETTERS_FOR_CAPITALS && ratio >= CAPITALS_RATIO)
            .then(|| Finding::new(format!("{:.0}% capital letters", ratio * 100.0)))
    }
}

/// A character or a word repeated over and over.
pub struct Repetition;

impl Rule for Repetition {
    fn name(&self) -> &'static str {
        "shape-repetition"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        let mut run = 0usize;
        let mut last = None;
        for c in input.reply.body.as_str().chars() {
            run = if Some(c) == last { run + 1 } else { 1 };
            last = Some(c);
            if run >= REPEATED_CHARS && !c.is_whitespace() {
                return Some(Finding::new(format!("\"{c}\" repeated {run} times")));
            }
        }
        let mut run = 0usize;
        let mut last = None;
        for word in input.text.words.iter() {
            run = if Some(word) == last { run + 1 } else { 1 };
            last = Some(word);
            if run >= REPEATED_WORDS {
                return Some(Finding::new(format!(
                    "the word \"{word}\" repeated {run} times"
                )));
            }
        }
        None
    }
}

/// A link with hardly a word around it: readers who share a link say why.
pub struct ShortWithLink;

impl Rule for ShortWithLink {
    fn name(&self) -> &'static str {
        "shape-short-link"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        if input.text.links.is_empty() {
            return None;
        }
        let body = input.reply.body.as_str();
        let other_words = body
            .split_whitespace()
            .filter(|piece| {
                // `split_whitespace` yields slices of `body`, so their offsets place them.
                let start = piece.as_ptr() as usize - body.as_ptr() as usize;
                let end = start + piece.len();
                let in_link = input
                    .text
                    .links
                    .iter()
                    .any(|link| start < link.span.1 && link.span.0 < end);
                !in_link && piece.chars().any(char::is_alphanumeric)
            })
            // Counting stops one past the limit: a long reply is not short whatever follows.
            .take(SHORT_WITH_LINK_WORDS + 1)
            .count();
        (other_words <= SHORT_WITH_LINK_WORDS)
            .then(|| Finding::new(format!("a link with only {other_words} other words")))
    }
}

/// Letters mostly in scripts the site has not listed as its readers'.
pub struct UnusualScript;

impl Rule for UnusualScript {
    fn name(&self) -> &'static str {
        "shape-script"
    }

    fn check(&self, input: &Input<'_>) -> Option<Finding> {
        if input.policy.allowed_scripts.is_empty() {
            return None;
        }
        let allowed: Vec<Script> = input
            .policy
            .allowed_scripts
            .iter()
            .filter_map(|name| Script::parse(name))
            .collect();
        // Every letter of an ASCII text is Latin.
        if allowed.contains(&Script::Latin) && input.reply.body.as_str().is_ascii() {
            return None;
        }
        let (mut letters, mut foreign) = (0usize, 0usize);
        let mut seen = None;
        for c in input
            .reply
            .body
            .as_str()
            .chars()
            .filter(|c| c.is_alphabetic())
        {
            letters += 1;
            let script = Script::of(c);
            if !script.is_some_and(|s| allowed.contains(&s)) {
                foreign += 1;
                seen = seen.or(script);
            }
        }
        let ratio = foreign as f64 / letters.max(1) as f64;
        (foreign >= 3 && ratio >= FOREIGN_SCRIPT_RATIO).then(|| {
            let name = seen.map_or("another script", Script::as_str);
            Finding::new(format!("{:.0}% of letters in {name}", ratio * 100.0))
        })
    }
}

/// The writing systems a site can allow. Japanese needs `han`, `hiragana` and `katakana`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Script {
    Latin,
    Greek,
    Cyrillic,
    Armenian,
    Hebrew,
    Arabic,
    Devanagari,
    Bengali,
    Tamil,
    Thai,
    Georgian,
    Hangul,
    Hiragana,
    Katakana,
    Han,
    Ethiopic,
}

impl Script {
    const ALL: [(Script, &'static str); 16] = [
        (Script::Latin, "latin"),
        (Script::Greek, "greek"),
        (Script::Cyrillic, "cyrillic"),
        (Script::Armenian, "armenian"),
        (Script::Hebrew, "hebrew"),
        (Script::Arabic, "arabic"),
        (Script::Devanagari, "devanagari"),
        (Script::Bengali, "bengali"),
        (Script::Tamil, "tamil"),
        (Script::Thai, "thai"),
        (Script::Georgian, "georgian"),
        (Script::Hangul, "hangul"),
        (Script::Hiragana, "hiragana"),
        (Script::Katakana, "katakana"),
        (Script::Han, "han"),
        (Script::Ethiopic, "ethiopic"),
    ];

    /// The name used in policies.
    pub fn as_str(self) -> &'static str {
        Script::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("", |(_, name)| name)
    }

    /// The inverse of [`Script::as_str`], ignoring case.
    pub fn parse(name: &str) -> Option<Script> {
        let name = name.trim();
        Script::ALL
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(s, _)| *s)
    }

    /// Every name a policy may use.
    pub fn names() -> Vec<&'static str> {
        Script::ALL.iter().map(|(_, name)| *name).collect()
    }

    /// The script of a letter, from the Unicode blocks of each script; `None` for letters
    /// of scripts not listed here.
    pub fn of(c: char) -> Option<Script> {
        Some(match u32::from(c) {
            0x41..=0x5A
            | 0x61..=0x7A
            | 0xAA
            | 0xBA
            | 0xC0..=0x24F
            | 0x1E00..=0x1EFF
            | 0x2C60..=0x2C7F
            | 0xA720..=0xA7FF
            | 0xFF21..=0xFF3A
            | 0xFF41..=0xFF5A => Script::Latin,
            0x370..=0x3FF | 0x1F00..=0x1FFF => Script::Greek,
            0x400..=0x52F | 0x2DE0..=0x2DFF | 0xA640..=0xA69F | 0x1C80..=0x1C8F => Script::Cyrillic,
            0x530..=0x58F => Script::Armenian,
            0x590..=0x5FF | 0xFB1D..=0xFB4F => Script::Hebrew,
            0x600..=0x6FF | 0x750..=0x77F | 0x8A0..=0x8FF | 0xFB50..=0xFDFF | 0xFE70..=0xFEFF => {
                Script::Arabic
            }
            0x900..=0x97F => Script::Devanagari,
            0x980..=0x9FF => Script::Bengali,
            0xB80..=0xBFF => Script::Tamil,
            0xE00..=0xE7F => Script::Thai,
            0x10A0..=0x10FF | 0x2D00..=0x2D2F => Script::Georgian,
            0x1100..=0x11FF | 0x3130..=0x318F | 0xAC00..=0xD7AF => Script::Hangul,
            0x3040..=0x309F => Script::Hiragana,
            0x30A0..=0x30FF | 0x31F0..=0x31FF | 0xFF66..=0xFF9F => Script::Katakana,
            0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F => Script::Han,
            0x1200..=0x139F => Script::Ethiopic,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spam::testing::{assess_with, hits, reply};

    #[test]
    fn a_shouted_reply_is_flagged_and_a_short_acronym_is_not() {
        assert!(hits(
            &assess_with(&reply("CHECK OUT MY NEW CHANNEL NOW"), |_| {}),
            "shape-capitals"
        ));
        assert!(!hits(
            &assess_with(&reply("The NASA report is out"), |_| {}),
            "shape-capitals"
        ));
        assert!(!hits(
            &assess_with(&reply("OK FINE"), |_| {}),
            "shape-capitals"
        ));
    }

    #[test]
    fn repeated_characters_and_words_are_flagged() {
        assert!(hits(
            &assess_with(&reply("wow!!!!!!!!!!!!"), |_| {}),
            "shape-repetition"
        ));
        assert!(hits(
            &assess_with(&reply("buy buy buy buy now"), |_| {}),
            "shape-repetition"
        ));
        assert!(!hits(
            &assess_with(&reply("I agree, really agree."), |_| {}),
            "shape-repetition"
        ));
    }

    #[test]
    fn a_bare_link_is_flagged_and_a_link_with_context_is_not() {
        assert!(hits(
            &assess_with(&reply("look https://a.example/x"), |_| {}),
            "shape-short-link"
        ));
        let explained =
            "The figures in the second table come from https://stats.example.org/2024 and match";
        assert!(!hits(
            &assess_with(&reply(explained), |_| {}),
            "shape-short-link"
        ));
    }

    #[test]
    fn a_script_is_unusual_only_when_the_site_restricts_scripts() {
        let latin_only = |p: &mut crate::spam::Policy| p.allowed_scripts = vec!["latin".into()];
        let cyrillic = reply("Купить дешёвые часы здесь");
        assert!(hits(&assess_with(&cyrillic, latin_only), "shape-script"));
        assert!(!hits(&assess_with(&cyrillic, |_| {}), "shape-script"));
        assert!(!hits(
            &assess_with(&reply("Ein schöner Artikel, danke"), latin_only),
            "shape-script"
        ));
    }

    #[test]
    fn script_names_read_back() {
        for name in Script::names() {
            assert_eq!(Script::parse(name).map(Script::as_str), Some(name));
        }
        assert_eq!(Script::of('ж'), Some(Script::Cyrillic));
        assert_eq!(Script::of('é'), Some(Script::Latin));
        assert_eq!(Script::of('漢'), Some(Script::Han));
    }
}
