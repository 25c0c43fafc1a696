//! The checks every field's `parse` is built from. Each returns a description for the host's
//! developer that never echoes the value.

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// Trimmed and in NFC, so that visually identical input compares and counts alike; an error if
/// nothing is left.
pub(super) fn required(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    // Most text is NFC already (all of ASCII is): copied as it is, not run through the
    // normaliser.
    let cleaned: String =
        if trimmed.is_ascii() || is_nfc_quick(trimmed.chars()) == IsNormalized::Yes {
            trimmed.to_owned()
        } else {
            trimmed.nfc().collect()
        };
    if cleaned.is_empty() {
        Err("is required".to_owned())
    } else {
        Ok(cleaned)
    }
}

/// Refuses, from its length alone, a field sent with more than `max` characters for certain:
/// more than four bytes for each of them, which no character takes. Called on the field as
/// sent, before trimming and NFC, whose cost grows with it; what passes is short enough to
/// normalise, and is counted again as it is kept.
pub(super) fn sent_within_chars(raw: &str, max: usize) -> Result<(), String> {
    if raw.len() > max.saturating_mul(4) {
        Err(format!("must be at most {max} characters"))
    } else {
        Ok(())
    }
}

/// Refuses a field longer than `max` bytes. A field limited in bytes is checked with it as
/// sent, before trimming and NFC, and again as it is kept.
pub(super) fn at_most_bytes(text: &str, max: usize) -> Result<(), String> {
    if text.len() > max {
        Err(format!("must be at most {max} bytes"))
    } else {
        Ok(())
    }
}

pub(super) fn at_most_chars(text: &str, max: usize) -> Result<(), String> {
    if text.chars().count() > max {
        Err(format!("must be at most {max} characters"))
    } else {
        Ok(())
    }
}

pub(super) fn no_control_chars(text: &str) -> Result<(), String> {
    let control = if text.is_ascii() {
        text.bytes().any(|b| b.is_ascii_control())
    } else {
        text.chars().any(char::is_control)
    };
    if control {
        Err("must not contain control characters".to_owned())
    } else {
        Ok(())
    }
}

/// The longest prefix of `text` that fits in `max` bytes without splitting a character.
pub(super) fn truncate(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
