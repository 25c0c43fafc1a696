//! Masking contact details: the partial email moderators see, and comment text as the public
//! sees it.
//!
//! Masking must never break a link: digits inside a URL are never taken for a phone number. An
//! email address inside a link is still hidden, as privacy outranks a working link.

use std::sync::LazyLock;

use linkify::{LinkFinder, LinkKind};
use regex::Regex;

use super::links::{Finder, Kind, Kinds};

const HIDDEN: &str = "•••";
const EMAIL_HIDDEN: &str = "[email hidden]";
const PHONE_HIDDEN: &str = "[phone hidden]";

/// Enough for a moderator to tell authors apart and spot a throwaway domain, not enough to
/// write to them: `jane@example.com` becomes `j•••@example.com`.
pub fn mask_email(email: &str) -> String {
    match email.trim().rsplit_once('@') {
        Some((local, domain)) => {
            let first = local.chars().next().map(String::from).unwrap_or_default();
            format!("{first}{HIDDEN}@{domain}")
        }
        None => HIDDEN.to_owned(),
    }
}

/// Comment text with every email address and phone number replaced by a placeholder.
///
/// Links are left intact, except that an email address inside one is still hidden.
pub fn mask_contacts(text: &str) -> String {
    // Scheme-less links such as `example.com/2024/11/27/story-123456789` must be found too, or
    // their digits would be taken for a phone number.
    static LINKS: LazyLock<Finder> = LazyLock::new(|| Finder::new(Kinds::UrlsAndEmails));

    let mut out = String::with_capacity(text.len());
    for span in LINKS.spans(text) {
        match span.kind {
            Some(Kind::Email) => out.push_str(EMAIL_HIDDEN),
            Some(_) => out.push_str(&mask_emails_in_link(span.text)),
            None => mask_phones(span.text, &mut out),
        }
    }
    mask_email_shapes(out)
}

/// Whatever still looks like an address: the link finder, which must not take a word for a
/// link, passes over an address glued to a character it does not end one with
/// (`_jane@example.com_`, as some write italics).
fn mask_email_shapes(text: String) -> String {
    static EMAIL_SHAPE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"[\w.!#$%&'*+^`{|}~-]+@[\w-]+(?:\.[\w-]+)+").expect("the email shape is valid")
    });
    if !text.contains('@') {
        return text;
    }
    match EMAIL_SHAPE.replace_all(&text, EMAIL_HIDDEN) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(masked) => masked,
    }
}

/// An address pasted into a link (`?contact=jane@example.com`) is still an address.
///
/// The link is cut at its delimiters first: the email finder accepts `/`, `?` and `=` in a local
/// part, and would otherwise swallow the link's path along with the address.
fn mask_emails_in_link(link: &str) -> String {
    static EMAILS: LazyLock<LinkFinder> = LazyLock::new(|| {
        let mut finder = LinkFinder::new();
        finder.kinds(&[LinkKind::Email]);
        finder
    });

    let mut out = String::with_capacity(link.len());
    let is_delimiter = |c: char| matches!(c, '/' | '?' | '=' | '&' | '#' | ':' | ';' | ',');
    let mut rest = link;
    while !rest.is_empty() {
        let end = rest.find(is_delimiter).unwrap_or(rest.len());
        for span in EMAILS.spans(&rest[..end]) {
            match span.kind() {
                Some(_) => out.push_str(EMAIL_HIDDEN),
                None => out.push_str(span.as_str()),
            }
        }
        let delimiter_len = rest[end..].chars().next().map_or(0, char::len_utf8);
        out.push_str(&rest[end..end + delimiter_len]);
        rest = &rest[end + delimiter_len..];
    }
    out
}

/// A phone-shaped run: digits, with at most one space, dot or hyphen, and optional parentheses,
/// between any two of them. Digit counts and word boundaries are checked in code, as the regex
/// crate has no look-around.
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\+?\(?\d(?:\)?[ .\-]?\(?\d)*").expect("the phone pattern is valid")
});

fn mask_phones(text: &str, out: &mut String) {
    let mut copied = 0;
    for found in PHONE.find_iter(text) {
        if is_phone_number(text, found.start(), found.end()) {
            out.push_str(&text[copied..found.start()]);
            out.push_str(PHONE_HIDDEN);
            copied = found.end();
        }
    }
    out.push_str(&text[copied..]);
}

fn is_phone_number(text: &str, start: usize, end: usize) -> bool {
    let candidate = &text[start..end];
    let digits = candidate
        .chars()
        .filter(|c| !matches!(c, '+' | '(' | ')' | ' ' | '.' | '-'))
        .count();
    // Shorter than any real number with its area code; the ITU caps numbers at 15 digits.
    let shortest = if candidate.starts_with('+') { 8 } else { 9 };
    if !(shortest..=15).contains(&digits) {
        return false;
    }

    let mut before = text[..start].chars().rev();
    let after = text[end..].chars().next();
    let glued_to_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    match before.next() {
        Some(c) if c.is_alphanumeric() || c == '_' => false,
        // `story-123456789` and `ref.123456789` are identifiers, not phone numbers.
        Some('-' | '.' | '/') if glued_to_word(before.next()) => false,
        _ => !glued_to_word(after),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moderator_sees_the_first_letter_and_the_domain() {
        assert_eq!(mask_email("jane@example.com"), "j•••@example.com");
    }

    #[test]
    fn a_one_letter_local_part_is_masked_all_the_same() {
        assert_eq!(mask_email("j@example.com"), "j•••@example.com");
    }

    #[test]
    fn something_without_an_at_sign_is_masked_entirely() {
        assert_eq!(mask_email("jane.example.com"), "•••");
        assert_eq!(mask_email(""), "•••");
    }

    #[test]
    fn a_multibyte_first_character_is_kept_whole() {
        assert_eq!(mask_email("émilie@example.fr"), "é•••@example.fr");
        assert_eq!(mask_email("用户@例子.中国"), "用•••@例子.中国");
    }

    #[test]
    fn an_empty_local_part_shows_only_the_domain() {
        assert_eq!(mask_email("@example.com"), "•••@example.com");
    }

    #[test]
    fn an_email_in_a_comment_is_hidden() {
        assert_eq!(
            mask_contacts("Write to jane.doe@example.com, thanks."),
            "Write to [email hidden], thanks."
        );
    }

    #[test]
    fn an_email_glued_to_punctuation_is_hidden() {
        for text in [
            "_jane@example.com_",
            "*jane@example.com*",
            "jane@example.com_",
            "(jane@example.com)",
            "<jane@example.com>",
            "\"jane@example.com\".",
            "jane@example.com…",
            "@jane@example.com",
        ] {
            let masked = mask_contacts(text);
            assert!(!masked.contains("jane@"), "{text:?} -> {masked:?}");
            assert!(masked.contains(EMAIL_HIDDEN), "{text:?} -> {masked:?}");
        }
        for text in ["meet @ 5.30", "@jane on the forum", "jane@localhost"] {
            assert_eq!(mask_contacts(text), text);
        }
    }

    #[test]
    fn a_mailto_link_is_hidden_whole() {
        assert!(!mask_contacts("mailto:jane@example.com").contains("jane"));
    }

    #[test]
    fn an_email_inside_a_link_is_hidden_but_the_link_kept() {
        let masked = mask_contacts("see https://example.com/?contact=jane@example.org ok");
        assert!(!masked.contains("jane"), "{masked}");
        assert_eq!(masked, "see https://example.com/?contact=[email hidden] ok");
        assert_eq!(
            mask_contacts("https://jane@example.com/page"),
            "https://[email hidden]/page"
        );
    }

    #[test]
    fn international_and_local_phone_numbers_are_hidden() {
        for (text, masked) in [
            ("call +44 20 7946 0958 now", "call [phone hidden] now"),
            ("(555) 123-4567 ext 89", "[phone hidden] ext 89"),
            ("555.123.4567", "[phone hidden]"),
            ("555-123-4567.", "[phone hidden]."),
            ("+33612345678", "[phone hidden]"),
            ("06 12 34 56 78", "[phone hidden]"),
            ("+1 (555) 123-4567", "[phone hidden]"),
            ("tel: 0791234567", "tel: [phone hidden]"),
        ] {
            assert_eq!(mask_contacts(text), masked, "{text}");
        }
    }

    #[test]
    fn dates_amounts_and_short_numbers_are_left_alone() {
        for text in [
            "On 2024-11-27 it rained.",
            "It cost 1,000,000 dollars.",
            "Postcode 12345.",
            "Call 555-1234.",
            "In 1999 and 2024.",
        ] {
            assert_eq!(mask_contacts(text), text);
        }
    }

    #[test]
    fn digits_inside_links_are_never_mangled() {
        for text in [
            "Read https://example.com/2024/11/27/story-123456789 today",
            "Read example.com/2024/11/27/story-123456789 today",
            "https://example.com/?phone=5551234567",
        ] {
            assert_eq!(mask_contacts(text), text);
        }
    }

    #[test]
    fn digits_glued_to_letters_are_not_a_phone_number() {
        for text in [
            "order AB123456789",
            "order 123456789AB",
            "story-123456789",
            "id_123456789",
        ] {
            assert_eq!(mask_contacts(text), text);
        }
    }

    #[test]
    fn more_than_fifteen_digits_is_not_a_phone_number() {
        let text = "1234 5678 9012 3456";
        assert_eq!(mask_contacts(text), text);
    }

    #[test]
    fn a_plus_allows_one_digit_fewer() {
        assert_eq!(mask_contacts("+4 1234 567"), "[phone hidden]");
        assert_eq!(mask_contacts("01 234 567"), "01 234 567");
    }

    #[test]
    fn text_around_masked_contacts_keeps_its_multibyte_characters() {
        assert_eq!(
            mask_contacts("Écrivez à zoë@example.fr ou au 06 12 34 56 78 — merci"),
            "Écrivez à [email hidden] ou au [phone hidden] — merci"
        );
    }
}
