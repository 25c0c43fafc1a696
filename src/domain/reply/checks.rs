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
