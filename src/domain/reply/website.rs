//! An author's home page: a web address shown to every reader, as the author typed it.

use super::checks::{at_most_bytes, no_control_chars, required};
use crate::privacy;

/// An author's home page: an absolute http(s) URL with a host and no credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Website {
    given: String,
    url: url::Url,
}

impl Website {
    pub const MAX_BYTES: usize = 200;

    pub fn parse(raw: &str) -> Result<Website, String> {
        at_most_bytes(raw, Self::MAX_BYTES)?;
        let given = required(raw)?;
        at_most_bytes(&given, Self::MAX_BYTES)?;
        // The URL parser silently drops tabs and newlines; refusing them keeps `as_str` and the
        // parsed URL the same address.
        no_control_chars(&given)?;
        if given.chars().any(char::is_whitespace) {
            return Err("must not contain spaces".to_owned());
        }
        let not_a_web_url = || "must be an http or https URL with a host".to_owned();
        let url = url::Url::parse(&given).map_err(|_| not_a_web_url())?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(not_a_web_url());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not contain a user name or password".to_owned());
        }
        // `https://example.com/?contact=jane@example.com`: shown to every reader, like the name.
        if privacy::mask_contacts(&given) != given {
            return Err(
                "must not contain an email address: the website is shown to every reader"
                    .to_owned(),
            );
        }
        Ok(Website { given, url })
    }

    /// The address as the author typed it (trimmed, NFC), so it is shown the way they wrote it.
    pub fn as_str(&self) -> &str {
        &self.given
    }

    /// The parsed address, for code that needs its host: lowercased, IDNs in punycode.
    pub fn url(&self) -> &url::Url {
        &self.url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_or_https_website_is_accepted_as_given() -> Result<(), String> {
        for site in [
            "https://example.com",
            "http://Example.com/~jane?x=1#top",
            "https://exämple.de/",
        ] {
            assert_eq!(Website::parse(site)?.as_str(), site);
        }
        assert_eq!(
            Website::parse("https://EXÄMPLE.de")?.url().host_str(),
            Some("xn--exmple-cua.de")
        );
        Ok(())
    }

    #[test]
    fn a_website_of_another_scheme_or_without_a_host_is_refused() {
        for site in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "ftp://example.com",
            "example.com",
            "https://",
            "mailto:jane@example.com",
        ] {
            assert_eq!(
                Website::parse(site),
                Err("must be an http or https URL with a host".to_owned()),
                "{site}"
            );
        }
    }

    #[test]
    fn a_website_with_credentials_is_refused() {
        for site in ["https://user:pass@example.com", "https://user@example.com"] {
            assert_eq!(
                Website::parse(site),
                Err("must not contain a user name or password".to_owned())
            );
        }
    }

    #[test]
    fn a_website_with_an_email_address_is_refused() {
        for site in [
            "https://example.com/?contact=jane@example.com",
            "https://example.com/jane@example.org/about",
        ] {
            assert_eq!(
                Website::parse(site),
                Err(
                    "must not contain an email address: the website is shown to every reader"
                        .to_owned()
                ),
                "{site}"
            );
        }
        // Digits in a link are never taken for a phone number.
        assert!(Website::parse("https://example.com/2026/11/27/story-0207946095").is_ok());
    }

    #[test]
    fn a_website_with_spaces_or_control_characters_is_refused() {
        assert!(Website::parse("https://example.com/a b").is_err());
        assert!(Website::parse("https://exa\tmple.com").is_err());
        assert!(Website::parse("https://example.com/\u{0}").is_err());
    }

    #[test]
    fn a_website_over_200_bytes_is_refused() {
        let long = format!("https://example.com/{}", "a".repeat(181));
        assert_eq!(
            Website::parse(&long),
            Err("must be at most 200 bytes".to_owned())
        );
        assert!(Website::parse(&long[..200]).is_ok());
    }
}
