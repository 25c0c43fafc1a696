//! Scopes: what a moderator token may do on the sites it covers.
//!
//! A token's sites say where it may act; its scopes say what it may do there.
//! Revealing and erasing personal data are scopes of their own, so that a
//! token that works the queues cannot read or destroy emails.

use std::fmt;

/// One permission of a moderator token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Work the queues: list, show, watch, decide, block and unblock, read the audit log.
    Moderate,
    /// Read and change the site's moderation policy.
    Policy,
    /// Read an author's email in clear.
    RevealEmail,
    /// Erase an author's personal data, and export it.
    Erase,
    /// Manage where the site's events are sent (webhooks).
    Integrations,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 5] = [
        Scope::Moderate,
        Scope::Policy,
        Scope::RevealEmail,
        Scope::Erase,
        Scope::Integrations,
    ];

    /// What a moderator token gets when nobody says otherwise: everyday work,
    /// but no access to personal data.
    pub const DEFAULT: [Scope; 2] = [Scope::Moderate, Scope::Policy];

    /// The word stored in the database and typed after `--scopes`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Moderate => "moderate",
            Scope::Policy => "policy",
            Scope::RevealEmail => "reveal-email",
            Scope::Erase => "erase",
            Scope::Integrations => "integrations",
        }
    }

    /// The inverse of [`Scope::as_str`].
    pub fn parse(word: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == word)
    }

    /// A comma-separated list such as `moderate,erase`, sorted and without
    /// repeats; an unknown word or an empty list is refused.
    pub fn parse_list(text: &str) -> Result<Vec<Scope>, String> {
        let mut scopes = Vec::new();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let scope = Scope::parse(word).ok_or_else(|| {
                format!(
                    "unknown scope {word:?}; the scopes are {}",
                    Scope::ALL.map(Scope::as_str).join(", ")
                )
            })?;
            scopes.push(scope);
        }
        if scopes.is_empty() {
            return Err("name at least one scope".to_owned());
        }
        scopes.sort();
        scopes.dedup();
        Ok(scopes)
    }

    /// `moderate, policy`: for people.
    pub fn list(scopes: &[Scope]) -> String {
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_list_is_sorted_without_repeats() {
        assert_eq!(
            Scope::parse_list(" erase, moderate,erase ,"),
            Ok(vec![Scope::Moderate, Scope::Erase])
        );
    }

    #[test]
    fn unknown_and_empty_scope_lists_are_refused() {
        let err = Scope::parse_list("moderate,delete-everything").expect_err("unknown word");
        assert!(err.contains("delete-everything"), "{err}");
        assert!(err.contains("reveal-email"), "{err}");
        assert!(Scope::parse_list(" , ").is_err());
    }

    #[test]
    fn every_scope_reads_back_from_its_word() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
    }
}
