//! The keys derived from the secret, and what they are used for: sealing emails and the raw texts
//! that hold contact details, recognising a returning author, seeding avatars and signing form
//! tokens.
//!
//! Each purpose has its own subkey, so no output made for one purpose can be related to another,
//! and every output is bound to its site so nothing can be correlated across sites.

use std::{fmt, sync::Arc};

use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use unicode_normalization::UnicodeNormalization;

use super::{PrivacyError, SecretKey, os_random};
use crate::ids::{CommentId, SiteId};

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// The derived keys, shared by every clone.
#[derive(Clone)]
pub struct Vault {
    keys: Arc<Subkeys>,
}

struct Subkeys {
    email: XChaCha20Poly1305,
    body: XChaCha20Poly1305,
    author: HmacSha256,
    avatar: HmacSha256,
    idempotency: HmacSha256,
    reporter: HmacSha256,
    reader: HmacSha256,
    /// The form subkey, then the previous key's (see [`Vault::with_previous`]).
    form: Vec<[u8; 32]>,
    /// The author-view subkey, then the previous key's.
    author_view: Vec<[u8; 32]>,
    check: HmacSha256,
    webhook: HmacSha256,
}

/// The keyed hash that recognises a returning author on one site without decrypting anything.
///
/// Keyed and per site: it cannot be matched against a public hash of the email, nor against the
/// same author's hash on another site.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct AuthorHash(pub [u8; 32]);

impl AuthorHash {
    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A hash that belongs to nobody: what an erased comment carries, so that it no longer links
    /// to its author or to any other comment.
    pub fn random() -> AuthorHash {
        AuthorHash(os_random::<32>())
    }

    /// Reads back [`AuthorHash::to_hex`]; `None` for anything that is not 64 hex digits.
    pub fn from_hex(text: &str) -> Option<AuthorHash> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(AuthorHash(bytes))
    }
}

impl Vault {
    /// Derives one independent subkey per purpose from the secret.
    pub fn new(secret: &SecretKey) -> Vault {
        Vault::derived(secret, None)
    }

    /// The vault of `secret` that also accepts form and author tokens signed under `previous`,
    /// the key the deployment had before `replyguard key rotate`: readers' open pages hold form
    /// tokens for up to two days, and hosts keep author tokens for a held reply's wait.
    /// Everything else is the new key's alone.
    pub fn with_previous(secret: &SecretKey, previous: &SecretKey) -> Vault {
        Vault::derived(secret, Some(previous))
    }

    fn derived(secret: &SecretKey, previous: Option<&SecretKey>) -> Vault {
        let derive = |info: &str| subkey(secret, info);
        let mac = |key: [u8; 32]| {
            HmacSha256::new_from_slice(&key).expect("HMAC accepts keys of any length")
        };
        let mut form = vec![derive(FORM_TOKEN_INFO)];
        form.extend(previous.map(|previous| subkey(previous, FORM_TOKEN_INFO)));
        let mut author_view = vec![derive(AUTHOR_VIEW_INFO)];
        author_view.extend(previous.map(|previous| subkey(previous, AUTHOR_VIEW_INFO)));
        Vault {
            keys: Arc::new(Subkeys {
                email: XChaCha20Poly1305::new(&derive("replyguard/v1/email-encryption").into()),
                body: XChaCha20Poly1305::new(&derive("replyguard/v1/body-encryption").into()),
                author: mac(derive("replyguard/v1/author-hash")),
                avatar: mac(derive("replyguard/v1/avatar")),
                idempotency: mac(derive("replyguard/v1/idempotency-key")),
                reporter: mac(derive("replyguard/v1/reporter")),
                reader: mac(derive("replyguard/v1/reader")),
                form,
                author_view,
                check: mac(derive("replyguard/v1/key-check")),
                webhook: mac(derive("replyguard/v1/webhook-secret")),
            }),
        }
    }

    /// Seals an email for storage: a random nonce followed by the ciphertext and its tag.
    ///
    /// The site id is authenticated with it, so a sealed email copied into another site's rows
    /// does not decrypt there.
    pub fn encrypt_email(&self, site: SiteId, email: &str) -> Vec<u8> {
        seal(&self.keys.email, site.0.as_bytes(), email)
    }

    /// Opens what [`Vault::encrypt_email`] sealed for the same site.
    pub fn decrypt_email(&self, site: SiteId, sealed: &[u8]) -> Result<String, PrivacyError> {
        open(&self.keys.email, site.0.as_bytes(), sealed)
    }

    /// Seals the raw text of a reply that holds contact details (an email address or a phone
    /// number the reader typed), for moderators' eyes only.
    ///
    /// The site and the comment are authenticated with it, so a sealed text copied into another
    /// comment's row does not open there.
    pub fn seal_body(&self, site: SiteId, comment: CommentId, text: &str) -> Vec<u8> {
        seal(&self.keys.body, &body_context(site, comment), text)
    }

    /// Opens what [`Vault::seal_body`] sealed for the same site and comment.
    pub fn open_body(
        &self,
        site: SiteId,
        comment: CommentId,
        sealed: &[u8],
    ) -> Result<String, PrivacyError> {
        open(&self.keys.body, &body_context(site, comment), sealed)
    }

    /// The keyed hash of a normalised email (see [`normalize_email_for_hash`]) on one site.
    pub fn author_hash(&self, site: SiteId, normalized_email: &str) -> AuthorHash {
        AuthorHash(site_mac(&self.keys.author, site, normalized_email))
    }

    /// A public identicon seed: 32 hex digits, stable for one author on one site.
    ///
    /// It comes from its own subkey, so publishing it reveals nothing about the author hash, and
    /// it is keyed, so it cannot be matched against a Gravatar-style hash of the email.
    pub fn avatar_seed(&self, site: SiteId, normalized_email: &str) -> String {
        let mac = site_mac(&self.keys.avatar, site, normalized_email);
        hex::encode(&mac[..16])
    }

    /// What is stored of a host's idempotency key on one site: a keyed hash, 64 hex digits.
    ///
    /// The key is the host's to choose and is only ever compared, so nothing a host puts in it
    /// (an email address, say) is kept in the clear.
    pub fn idempotency_tag(&self, site: SiteId, key: &str) -> String {
        hex::encode(site_mac(&self.keys.idempotency, site, key))
    }

    /// What is stored of the host's id of a reader who reports a comment: a keyed hash, so
    /// that one reader counts once and nothing the host puts in the id is kept.
    pub fn reporter_hash(&self, site: SiteId, reporter: &str) -> [u8; 32] {
        site_mac(&self.keys.reporter, site, reporter)
    }

    /// What is stored of the host's id of a signed-in reader it vouches for, keyed as an email
    /// is: a keyed hash per site, so that the reader's replies are recognised without the id
    /// being kept, and cannot be matched with their reports' hashes or another site's.
    pub fn reader_hash(&self, site: SiteId, reader: &str) -> [u8; 32] {
        site_mac(&self.keys.reader, site, reader)
    }

    /// The subkey that signs form tokens.
    pub fn form_key(&self) -> &[u8; 32] {
        &self.keys.form[0]
    }

    /// The subkeys whose form tokens are accepted: [`Vault::form_key`], then the previous
    /// key's, if the vault was given one.
    pub fn form_keys(&self) -> &[[u8; 32]] {
        &self.keys.form
    }

    /// The subkey that signs author tokens (`privacy::author_view`).
    pub fn author_view_key(&self) -> &[u8; 32] {
        &self.keys.author_view[0]
    }

    /// The subkeys whose author tokens are accepted: [`Vault::author_view_key`], then the
    /// previous key's, if the vault was given one.
    pub fn author_view_keys(&self) -> &[[u8; 32]] {
        &self.keys.author_view
    }

    /// The signing secret of one webhook endpoint of a site: derived, never stored, so that
    /// a copy of the database signs nothing, and rotating the key gives every endpoint a new
    /// one (as a leak of the key requires).
    pub fn webhook_secret(&self, site: SiteId, endpoint: uuid::Uuid) -> [u8; 32] {
        site_mac(&self.keys.webhook, site, &endpoint.to_string())
    }

    /// What this key makes of a fixed text, stored with the data it seals, so that a server
    /// given another key can tell and refuse to start. An HMAC under a subkey derived for this
    /// alone: it reveals nothing of the key or of the other subkeys.
    pub fn key_check(&self) -> [u8; 32] {
        let mut mac = self.keys.check.clone();
        mac.update(b"replyguard: the deployment's secret key");
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Vault(redacted)")
    }
}

const FORM_TOKEN_INFO: &str = "replyguard/v1/form-token";
const AUTHOR_VIEW_INFO: &str = "replyguard/v1/author-view";

/// The subkey of `secret` for the purpose `info` names.
fn subkey(secret: &SecretKey, info: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(None, secret.as_bytes())
        .expand(info.as_bytes(), &mut key)
        .expect("32 bytes is far below HKDF-SHA256's limit of 8160");
    key
}

/// A random nonce followed by the ciphertext of `text` and its tag, `context` authenticated with
/// it.
fn seal(cipher: &XChaCha20Poly1305, context: &[u8], text: &str) -> Vec<u8> {
    // 24 random bytes make a repeated nonce vanishingly unlikely, however many texts a key
    // seals, so no counter has to be kept in step across replicas.
    let nonce_bytes = os_random::<NONCE_LEN>();
    let payload = Payload {
        msg: text.as_bytes(),
        aad: context,
    };
    let ciphertext = cipher
        .encrypt(&XNonce::from(nonce_bytes), payload)
        .expect("XChaCha20-Poly1305 only refuses messages over 256 GiB");
    let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    sealed.extend_from_slice(&nonce_bytes);
    sealed.extend_from_slice(&ciphertext);
    sealed
}

/// Opens what [`seal`] sealed with the same cipher and context.
fn open(cipher: &XChaCha20Poly1305, context: &[u8], sealed: &[u8]) -> Result<String, PrivacyError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(PrivacyError::Decrypt);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let nonce = XNonce::try_from(nonce).map_err(|_| PrivacyError::Decrypt)?;
    let payload = Payload {
        msg: ciphertext,
        aad: context,
    };
    let plaintext = cipher
        .decrypt(&nonce, payload)
        .map_err(|_| PrivacyError::Decrypt)?;
    String::from_utf8(plaintext).map_err(|_| PrivacyError::Decrypt)
}

/// What a sealed body is bound to: its site's id, then its comment's (16 bytes each).
fn body_context(site: SiteId, comment: CommentId) -> [u8; 32] {
    let mut context = [0u8; 32];
    context[..16].copy_from_slice(site.0.as_bytes());
    context[16..].copy_from_slice(comment.0.as_bytes());
    context
}

/// HMAC over the site id then `text` (an email, an idempotency key). The id is always 16
/// bytes, so no two (site, text) pairs can produce the same input.
fn site_mac(key: &HmacSha256, site: SiteId, text: &str) -> [u8; 32] {
    let mut mac = key.clone();
    mac.update(site.0.as_bytes());
    mac.update(text.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The form of an email that author hashes and avatar seeds are computed from: trimmed, NFC,
/// and lowercased as a whole, because readers do not treat `Jane@` and `jane@` as different
/// people even though the standard allows a mail server to.
pub fn normalize_email_for_hash(email: &str) -> String {
    email.trim().nfc().collect::<String>().to_lowercase()
}

#[cfg(test)]
mod tests {
    use md5::Md5;
    use sha2::Digest;

    use super::*;

    fn vault() -> Vault {
        Vault::new(&SecretKey::generate())
    }

    #[test]
    fn the_key_check_is_the_same_for_one_key_and_differs_for_another() {
        let secret = SecretKey::generate();
        let check = Vault::new(&secret).key_check();
        assert_eq!(check, Vault::new(&secret).key_check());
        assert_ne!(check, Vault::new(&SecretKey::generate()).key_check());
        assert_ne!(&check, Vault::new(&secret).form_key());
    }

    #[test]
    fn a_readers_hash_is_keyed_per_site_and_apart_from_other_hashes() {
        let vault = vault();
        let (news, blog) = (SiteId::new(), SiteId::new());
        let hash = vault.reader_hash(news, "account-17");
        assert_eq!(hash, vault.reader_hash(news, "account-17"));
        assert_ne!(hash, vault.reader_hash(blog, "account-17"));
        assert_ne!(hash, vault.reporter_hash(news, "account-17"));
        assert_ne!(hash, vault.author_hash(news, "account-17").0);
        assert_ne!(
            hash,
            Vault::new(&SecretKey::generate()).reader_hash(news, "account-17")
        );
    }

    #[test]
    fn an_email_survives_encryption_and_decryption() -> Result<(), PrivacyError> {
        let vault = vault();
        let site = SiteId::new();
        let sealed = vault.encrypt_email(site, "jane@example.com");
        assert_eq!(vault.decrypt_email(site, &sealed)?, "jane@example.com");
        Ok(())
    }

    #[test]
    fn a_sealed_email_does_not_open_on_another_site() {
        let vault = vault();
        let sealed = vault.encrypt_email(SiteId::new(), "jane@example.com");
        assert!(matches!(
            vault.decrypt_email(SiteId::new(), &sealed),
            Err(PrivacyError::Decrypt)
        ));
    }

    #[test]
    fn a_sealed_email_does_not_open_under_another_key() {
        let site = SiteId::new();
        let sealed = vault().encrypt_email(site, "jane@example.com");
        assert!(vault().decrypt_email(site, &sealed).is_err());
    }

    #[test]
    fn changing_any_byte_of_a_sealed_email_makes_it_fail() {
        let vault = vault();
        let site = SiteId::new();
        let sealed = vault.encrypt_email(site, "jane@example.com");
        for i in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 0x01;
            assert!(
                matches!(
                    vault.decrypt_email(site, &tampered),
                    Err(PrivacyError::Decrypt)
                ),
                "byte {i}"
            );
        }
    }

    #[test]
    fn a_truncated_sealed_email_fails_without_panicking() {
        let vault = vault();
        let site = SiteId::new();
        let sealed = vault.encrypt_email(site, "jane@example.com");
        for len in 0..sealed.len() {
            assert!(vault.decrypt_email(site, &sealed[..len]).is_err());
        }
    }

    #[test]
    fn two_encryptions_of_one_email_differ() {
        let vault = vault();
        let site = SiteId::new();
        assert_ne!(
            vault.encrypt_email(site, "jane@example.com"),
            vault.encrypt_email(site, "jane@example.com")
        );
    }

    #[test]
    fn a_sealed_email_does_not_contain_the_email() {
        let sealed = vault().encrypt_email(SiteId::new(), "jane@example.com");
        assert!(!sealed.windows(4).any(|w| w == b"jane"));
    }

    #[test]
    fn a_sealed_body_opens_only_for_its_own_comment_and_key() -> Result<(), PrivacyError> {
        let vault = vault();
        let (site, comment) = (SiteId::new(), CommentId::new());
        let text = "Write to jane@example.com or call 020 7946 0958.";
        let sealed = vault.seal_body(site, comment, text);
        assert_eq!(vault.open_body(site, comment, &sealed)?, text);
        assert!(!sealed.windows(4).any(|w| w == b"jane"));
        assert!(vault.open_body(site, CommentId::new(), &sealed).is_err());
        assert!(vault.open_body(SiteId::new(), comment, &sealed).is_err());
        assert!(self::vault().open_body(site, comment, &sealed).is_err());
        // The email key is another key: nothing sealed for one purpose opens for another.
        assert!(vault.decrypt_email(site, &sealed).is_err());
        Ok(())
    }

    #[test]
    fn the_author_hash_is_stable_for_one_key_and_site() {
        let secret = SecretKey::generate();
        let site = SiteId::new();
        assert_eq!(
            Vault::new(&secret).author_hash(site, "jane@example.com"),
            Vault::new(&secret).author_hash(site, "jane@example.com")
        );
    }

    #[test]
    fn the_author_hash_differs_per_site() {
        let vault = vault();
        assert_ne!(
            vault.author_hash(SiteId::new(), "jane@example.com"),
            vault.author_hash(SiteId::new(), "jane@example.com")
        );
    }

    #[test]
    fn the_author_hash_differs_per_key() {
        let site = SiteId::new();
        assert_ne!(
            vault().author_hash(site, "jane@example.com"),
            vault().author_hash(site, "jane@example.com")
        );
    }

    #[test]
    fn an_author_hash_survives_hex_and_back() {
        let hash = vault().author_hash(SiteId::new(), "jane@example.com");
        assert_eq!(hash.to_hex().len(), 64);
        assert_eq!(AuthorHash::from_hex(&hash.to_hex()), Some(hash));
    }

    #[test]
    fn hex_of_the_wrong_length_or_alphabet_is_not_an_author_hash() {
        assert_eq!(AuthorHash::from_hex(""), None);
        assert_eq!(AuthorHash::from_hex(&"ab".repeat(31)), None);
        assert_eq!(AuthorHash::from_hex(&"zz".repeat(32)), None);
    }

    #[test]
    fn the_avatar_seed_reveals_neither_the_author_hash_nor_a_public_hash() {
        let vault = vault();
        let site = SiteId::new();
        let email = "jane@example.com";
        let seed = vault.avatar_seed(site, email);
        let author = vault.author_hash(site, email).to_hex();

        assert_eq!(seed.len(), 32);
        assert!(!author.contains(&seed));
        assert!(!author.starts_with(&seed[..8]));
        assert_ne!(seed, hex::encode(Md5::digest(email)));
        assert!(!hex::encode(Sha256::digest(email)).starts_with(&seed[..8]));
        assert_eq!(seed, vault.avatar_seed(site, email));
        assert_ne!(seed, vault.avatar_seed(SiteId::new(), email));
    }

    #[test]
    fn an_idempotency_tag_is_keyed_per_site_and_unlike_the_author_hash() {
        let secret = SecretKey::generate();
        let site = SiteId::new();
        let key = "jane@example.com";
        let tag = Vault::new(&secret).idempotency_tag(site, key);

        assert_eq!(tag.len(), 64);
        assert!(tag.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(tag, Vault::new(&secret).idempotency_tag(site, key));
        assert_ne!(tag, Vault::new(&secret).idempotency_tag(SiteId::new(), key));
        assert_ne!(tag, vault().idempotency_tag(site, key));
        assert_ne!(tag, Vault::new(&secret).author_hash(site, key).to_hex());
        assert_ne!(tag, hex::encode(Sha256::digest(key)));
    }

    #[test]
    fn the_form_key_is_stable_per_secret_and_unrelated_to_the_secret_itself() {
        let secret = SecretKey::generate();
        assert_eq!(
            Vault::new(&secret).form_key(),
            Vault::new(&secret).form_key()
        );
        assert_ne!(Vault::new(&secret).form_key(), secret.as_bytes());
    }

    #[test]
    fn a_vault_with_a_previous_key_accepts_its_form_tokens_and_nothing_else_of_it() {
        let (secret, previous) = (SecretKey::generate(), SecretKey::generate());
        let (now, before) = (Vault::new(&secret), Vault::new(&previous));
        let both = Vault::with_previous(&secret, &previous);
        assert_eq!(both.form_key(), now.form_key());
        assert_eq!(both.form_keys(), &[*now.form_key(), *before.form_key()]);
        assert_eq!(now.form_keys(), &[*now.form_key()]);
        assert_eq!(both.key_check(), now.key_check());
        let site = SiteId::new();
        assert_eq!(
            both.author_hash(site, "a@b.example"),
            now.author_hash(site, "a@b.example")
        );
    }

    #[test]
    fn a_vault_does_not_show_its_keys_in_debug_output() {
        assert_eq!(format!("{:?}", vault()), "Vault(redacted)");
    }

    #[test]
    fn emails_differing_only_in_case_space_or_composition_normalise_alike() {
        assert_eq!(
            normalize_email_for_hash("  Jane.Doe@Example.COM \n"),
            "jane.doe@example.com"
        );
        assert_eq!(
            normalize_email_for_hash("Rene\u{301}@example.com"),
            normalize_email_for_hash("ren\u{e9}@example.com")
        );
    }
}
