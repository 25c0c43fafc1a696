//! The checks every field's `parse` is built from. Each returns a description for the host's
//! developer that never echoes the value.

use unicode_normalization::UnicodeNormalization;

/// Trimmed and in NFC, so that visually identical input compares and counts alike; an error if
/// nothing is left.
pub(super) fn required(raw: &str) -> Result<String, String> {
    let cleaned: String = raw.trim().nfc().collect();
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
    if text.chars().any(char::is_control) {
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
