//! An author's email address: a bare address, stored as given but for its domain, and never
//! shown in clear by `Debug`.

use std::fmt;

use email_address::EmailAddress;

use super::checks::{at_most_bytes, required};
use crate::privacy;

/// An author's email address: a bare address with a dotted domain, the domain lowercased.
///
/// `Debug` shows it masked, so a reply can be logged without leaking it.
#[derive(Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// The limit of a forward path in SMTP (RFC 5321, with erratum 1690).
    pub const MAX_BYTES: usize = 254;

    pub fn parse(raw: &str) -> Result<Email, String> {
        at_most_bytes(raw, Self::MAX_BYTES)?;
        let text = required(raw)?;
        at_most_bytes(&text, Self::MAX_BYTES)?;
        let options = email_address::Options::default()
            .without_display_text()
            .without_domain_literal()
            .with_required_tld();
        let parsed = match EmailAddress::parse_with_options(&text, options) {
            Ok(parsed) => parsed,
            Err(email_address::Error::DomainTooFew) => {
                return Err("must have a domain with a dot, such as example.com".to_owned());
            }
            Err(email_address::Error::UnsupportedDisplayName) => {
                return Err("must be a bare address, without a display name".to_owned());
            }
            Err(_) => return Err("must be an email address such as jane@example.com".to_owned()),
        };
        // The parser also reads forms such as `<jane@example.com>`; only the bare address is
        // stored, so anything else is refused rather than silently rewritten.
        if parsed.as_str() != text {
            return Err("must be a bare address, without a display name".to_owned());
        }
        let Some((local, domain)) = text.rsplit_once('@') else {
            return Err("must be an email address such as jane@example.com".to_owned());
        };
        Ok(Email(format!("{local}@{}", domain.to_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form author hashes are computed from; see [`privacy::normalize_email_for_hash`].
    pub fn normalized(&self) -> String {
        privacy::normalize_email_for_hash(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", privacy::mask_email(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_email_is_accepted() -> Result<(), String> {
        for email in [
            "jane@example.com",
            "jane.doe+news@mail.example.co.uk",
            "zoë@exämple.de",
        ] {
            assert_eq!(Email::parse(email)?.as_str(), email);
        }
        Ok(())
    }

    #[test]
    fn an_email_domain_is_lowercased_but_its_local_part_kept() -> Result<(), String> {
        let email = Email::parse("JANE@EXAMPLE.COM")?;
        assert_eq!(email.as_str(), "JANE@example.com");
        assert_eq!(email.normalized(), "jane@example.com");
        Ok(())
    }

    #[test]
    fn an_email_with_a_display_name_is_refused() {
        for email in [
            "Jane <jane@example.com>",
            "<jane@example.com>",
            "\"Jane\" <jane@example.com>",
        ] {
            assert!(Email::parse(email).is_err(), "{email}");
        }
        assert_eq!(
            Email::parse("Jane <jane@example.com>"),
            Err("must be a bare address, without a display name".to_owned())
        );
    }

    #[test]
    fn an_email_with_two_ats_is_refused() {
        assert!(Email::parse("jane@doe@example.com").is_err());
    }

    #[test]
    fn an_email_without_a_dot_in_its_domain_is_refused() {
        assert_eq!(
            Email::parse("jane@localhost"),
            Err("must have a domain with a dot, such as example.com".to_owned())
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        for email in [
            "jane",
            "@example.com",
            "jane@",
            "jane@.com",
            "jane@[192.0.2.1]",
            "ja ne@example.com",
            "jane@exa mple.com",
            "jane\0@example.com",
        ] {
            assert!(Email::parse(email).is_err(), "{email:?}");
        }
    }

    #[test]
    fn an_email_over_254_bytes_is_refused() {
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(200));
        assert_eq!(
            Email::parse(&long),
            Err("must be at most 254 bytes".to_owned())
        );
    }

    #[test]
    fn an_email_is_masked_in_debug_output() -> Result<(), String> {
        let shown = format!("{:?}", Email::parse("jane@example.com")?);
        assert_eq!(shown, "Email(j•••@example.com)");
        Ok(())
    }
}
