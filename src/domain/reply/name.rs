//! The name an author signs with: shown to every reader, so it must look like what it is and
//! carry no contact details.

use super::checks::{at_most_chars, no_control_chars, required, sent_within_chars};
use crate::privacy;

/// The name an author signs with, shown to every reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorName(String);

impl AuthorName {
    /// Counted in characters, not bytes, so names in any script get the same room.
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<AuthorName, String> {
        sent_within_chars(raw, Self::MAX_CHARS)?;
        let name = balance_bidi(&required(raw)?)?;
        at_most_chars(&name, Self::MAX_CHARS)?;
        no_control_chars(&name)?;
        if name.chars().all(is_invisible) {
            return Err("must contain a visible character".to_owned());
        }
        // Every reader sees the name; the form promises the email is never shown.
        if privacy::mask_contacts(&name) != name {
            return Err(
                "must not contain an email address or phone number: the name is shown to every \
                 reader"
                    .to_owned(),
            );
        }
        Ok(AuthorName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name's bidirectional formatting characters, each class as real names need it:
///
/// - marks (U+200E LRM, U+200F RLM, U+061C ALM) are kept: they only set the direction of the
///   characters around them;
/// - embeddings (U+202A LRE, U+202B RLE) and isolates (U+2066 LRI, U+2067 RLI, U+2068 FSI), which
///   right-to-left names often carry, are kept and balanced: one left open is closed at the
///   end of the name, so it cannot reach the text the page prints after it;
/// - a closer with nothing to close (U+202C PDF, U+2069 PDI) is dropped;
/// - overrides (U+202D LRO, U+202E RLO) are refused: they reorder the letters themselves, which
///   makes a name display as someone else's (`Jane` + RLO + `eoD` reads "JaneDoe").
fn balance_bidi(name: &str) -> Result<String, String> {
    const PDF: char = '\u{202C}';
    const PDI: char = '\u{2069}';
    if name.contains(['\u{202D}', '\u{202E}']) {
        return Err("must not contain bidirectional override characters".to_owned());
    }
    let mut open = Vec::new();
    let mut balanced = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '\u{202A}' | '\u{202B}' => open.push(PDF),
            '\u{2066}'..='\u{2068}' => open.push(PDI),
            PDF | PDI if open.last() != Some(&c) => continue,
            PDF | PDI => {
                open.pop();
            }
            _ => {}
        }
        balanced.push(c);
    }
    balanced.extend(open.into_iter().rev());
    Ok(balanced)
}

/// Characters that draw nothing yet are not whitespace, so `trim` keeps them: a name made only
/// of these looks empty on the page.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2060}'..='\u{2064}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_of_exactly_100_multibyte_characters_passes_and_101_fail() {
        assert!(AuthorName::parse(&"é".repeat(100)).is_ok());
        assert!(AuthorName::parse(&"🦀".repeat(100)).is_ok());
        assert_eq!(
            AuthorName::parse(&"é".repeat(101)),
            Err("must be at most 100 characters".to_owned())
        );
    }

    #[test]
    fn emoji_names_are_fine() -> Result<(), String> {
        for name in ["🦀 Ferris", "👨‍👩‍👧", "🏳️‍🌈", "Zoë 🌻"] {
            assert_eq!(AuthorName::parse(name)?.as_str(), name);
        }
        Ok(())
    }

    #[test]
    fn a_name_with_control_characters_is_refused() {
        for name in ["Jane\0", "Jane\nDoe", "Jane\u{1b}[31m", "Jane\u{85}Doe"] {
            assert_eq!(
                AuthorName::parse(name),
                Err("must not contain control characters".to_owned()),
                "{name:?}"
            );
        }
    }

    #[test]
    fn a_name_with_a_bidirectional_override_is_refused() {
        for name in [
            "Jane\u{202E}eoD",
            "\u{202D}admin",
            "x\u{202B}y\u{202E}z\u{202C}",
        ] {
            assert_eq!(
                AuthorName::parse(name),
                Err("must not contain bidirectional override characters".to_owned()),
                "{name:?}"
            );
        }
    }

    /// Right-to-left names often come wrapped in an embedding; they pass as they are.
    #[test]
    fn a_right_to_left_name_keeps_its_embedding_and_marks() {
        for name in [
            "\u{202B}\u{0633}\u{0627}\u{0631}\u{0629} \u{0627}\u{0644}\u{0639}\u{0644}\u{064A}\u{202C}",
            "\u{2067}\u{05D3}\u{05E0}\u{05D4}\u{2069} (Tel Aviv)",
            "Omar\u{200F} \u{061C}x",
        ] {
            assert_eq!(
                AuthorName::parse(name).map(|n| n.as_str().to_owned()),
                Ok(name.to_owned())
            );
        }
    }

    /// What is left open is closed at the end of the name; a closer with nothing open goes.
    #[test]
    fn bidirectional_embeddings_and_isolates_are_balanced() {
        for (given, kept) in [
            ("\u{202B}Sara", "\u{202B}Sara\u{202C}"),
            (
                "\u{2067}Dana\u{202B}x",
                "\u{2067}Dana\u{202B}x\u{202C}\u{2069}",
            ),
            ("Sara\u{202C}", "Sara"),
            ("\u{2069}Dana", "Dana"),
            ("\u{202B}a\u{2069}b\u{202C}", "\u{202B}ab\u{202C}"),
        ] {
            assert_eq!(
                AuthorName::parse(given).map(|n| n.as_str().to_owned()),
                Ok(kept.to_owned()),
                "{given:?}"
            );
        }
    }

    #[test]
    fn a_name_of_only_zero_width_characters_is_refused() {
        for name in ["\u{200B}", "\u{200B}\u{200D}\u{FEFF}", "\u{3164}"] {
            assert_eq!(
                AuthorName::parse(name),
                Err("must contain a visible character".to_owned()),
                "{name:?}"
            );
        }
        assert!(AuthorName::parse("Jane\u{200B}").is_ok());
    }

    #[test]
    fn a_name_with_an_email_address_or_phone_number_is_refused() {
        for name in [
            "jane@example.com",
            "Jane (jane.doe@example.org)",
            "Jane, call 020 7946 0958",
        ] {
            assert_eq!(
                AuthorName::parse(name).map_err(|e| e.starts_with("must not contain an email")),
                Err(true),
                "{name:?}"
            );
        }
        for name in [
            "Jane @ the library",
            "J. Doe, 1984",
            "Agent 007",
            "jane.example.com",
        ] {
            assert!(AuthorName::parse(name).is_ok(), "{name:?}");
        }
    }
}
