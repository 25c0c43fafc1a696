//! Moving what the secret key protects from one key to another: what `replyguard key rotate`
//! does to each stored comment.
//!
//! Everything keyed is computed again from what the old key opens, so an author keeps their
//! history and trust under the new key; nothing is ever written in the clear on the way.

use super::{AuthorHash, PrivacyError, SecretKey, Vault, normalize_email_for_hash};
use crate::ids::{CommentId, SiteId};

/// One comment's values sealed or keyed under the old key, as the store reads them.
#[derive(Clone, Copy, Debug)]
pub struct Sealed<'a> {
    pub site: SiteId,
    pub comment: CommentId,
    pub email_sealed: &'a [u8],
    pub body_sealed: Option<&'a [u8]>,
}

/// The same comment's values under the new key.
#[derive(Clone, Debug)]
pub struct Resealed {
    pub email_sealed: Vec<u8>,
    pub author_hash: AuthorHash,
    pub avatar_seed: String,
    pub body_sealed: Option<Vec<u8>>,
}

/// The old key's vault and the new one's.
pub struct Rekeying {
    old: Vault,
    new: Vault,
}

impl Rekeying {
    pub fn new(old: &SecretKey, new: &SecretKey) -> Rekeying {
        Rekeying {
            old: Vault::new(old),
            new: Vault::new(new),
        }
    }

    /// The key checks stored with the data before and after (`Vault::key_check`).
    pub fn checks(&self) -> ([u8; 32], [u8; 32]) {
        (self.old.key_check(), self.new.key_check())
    }

    /// Opens the email and the raw text under the old key and seals them, with a fresh nonce,
    /// under the new one; keys the author hash and avatar seed again from the email. Fails,
    /// changing nothing, when the old key does not open them.
    pub fn reseal(&self, sealed: &Sealed<'_>) -> Result<Resealed, PrivacyError> {
        let email = self.old.decrypt_email(sealed.site, sealed.email_sealed)?;
        let normalized = normalize_email_for_hash(&email);
        let body_sealed = match sealed.body_sealed {
            Some(body) => {
                let text = self.old.open_body(sealed.site, sealed.comment, body)?;
                Some(self.new.seal_body(sealed.site, sealed.comment, &text))
            }
            None => None,
        };
        Ok(Resealed {
            email_sealed: self.new.encrypt_email(sealed.site, &email),
            author_hash: self.new.author_hash(sealed.site, &normalized),
            avatar_seed: self.new.avatar_seed(sealed.site, &normalized),
            body_sealed,
        })
    }

    /// An address kept for mail (a notice's, a reader's, an outbox recipient's), sealed again
    /// under the new key, with its keyed hash under the new key.
    pub fn reseal_address(
        &self,
        site: SiteId,
        sealed: &[u8],
    ) -> Result<(Vec<u8>, AuthorHash), PrivacyError> {
        let email = self.old.decrypt_email(site, sealed)?;
        let normalized = normalize_email_for_hash(&email);
        Ok((
            self.new.encrypt_email(site, &email),
            self.new.author_hash(site, &normalized),
        ))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    struct Keys {
        old: SecretKey,
        new: SecretKey,
    }

    fn keys() -> Keys {
        Keys {
            old: SecretKey::generate(),
            new: SecretKey::generate(),
        }
    }

    #[test]
    fn a_resealed_comment_opens_under_the_new_key_only_and_keys_its_author_again()
    -> Result<(), PrivacyError> {
        let keys = keys();
        let (old, new) = (Vault::new(&keys.old), Vault::new(&keys.new));
        let (site, comment) = (SiteId::new(), CommentId::new());
        let email = old.encrypt_email(site, "Jane@Example.com");
        let body = old.seal_body(site, comment, "write to jane@example.com");
        let sealed = Sealed {
            site,
            comment,
            email_sealed: &email,
            body_sealed: Some(&body),
        };

        let rekeying = Rekeying::new(&keys.old, &keys.new);
        let resealed = rekeying.reseal(&sealed)?;

        assert_eq!(
            new.decrypt_email(site, &resealed.email_sealed)?,
            "Jane@Example.com"
        );
        assert!(old.decrypt_email(site, &resealed.email_sealed).is_err());
        let body = resealed.body_sealed.as_deref().expect("a sealed body");
        assert_eq!(
            new.open_body(site, comment, body)?,
            "write to jane@example.com"
        );
        assert_eq!(
            resealed.author_hash,
            new.author_hash(site, "jane@example.com")
        );
        assert_ne!(
            resealed.author_hash,
            old.author_hash(site, "jane@example.com")
        );
        assert_eq!(
            resealed.avatar_seed,
            new.avatar_seed(site, "jane@example.com")
        );
        assert_eq!(rekeying.checks(), (old.key_check(), new.key_check()));
        Ok(())
    }

    #[test]
    fn a_comment_the_old_key_does_not_open_is_refused() {
        let keys = keys();
        let site = SiteId::new();
        let stranger = Vault::new(&SecretKey::generate()).encrypt_email(site, "a@b.example");
        let sealed = Sealed {
            site,
            comment: CommentId::new(),
            email_sealed: &stranger,
            body_sealed: None,
        };
        assert!(matches!(
            Rekeying::new(&keys.old, &keys.new).reseal(&sealed),
            Err(PrivacyError::Decrypt)
        ));
    }

    proptest! {
        /// Whatever an email and a text hold, resealing opens to the same under the new key, and
        /// the author is keyed as the new key keys a reply written now.
        #[test]
        fn any_email_and_text_reseal_to_themselves(email in "\\PC{0,80}", text in "\\PC{0,400}") {
            let keys = keys();
            let (old, new) = (Vault::new(&keys.old), Vault::new(&keys.new));
            let (site, comment) = (SiteId::new(), CommentId::new());
            let email_sealed = old.encrypt_email(site, &email);
            let body = old.seal_body(site, comment, &text);
            let resealed = Rekeying::new(&keys.old, &keys.new).reseal(&Sealed {
                site,
                comment,
                email_sealed: &email_sealed,
                body_sealed: Some(&body),
            });
            let resealed = resealed.expect("sealed under the old key");
            prop_assert_eq!(new.decrypt_email(site, &resealed.email_sealed).ok(), Some(email.clone()));
            let body = resealed.body_sealed.as_deref().unwrap_or_default();
            prop_assert_eq!(new.open_body(site, comment, body).ok(), Some(text));
            let normalized = normalize_email_for_hash(&email);
            prop_assert_eq!(resealed.author_hash, new.author_hash(site, &normalized));
            prop_assert_eq!(resealed.avatar_seed, new.avatar_seed(site, &normalized));
        }
    }
}
