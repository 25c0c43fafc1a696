//! Everything that touches a reader's contact details: the secret key, email encryption, keyed
//! author hashes, avatar seeds, masking for moderators and the public, safe HTML rendering, and
//! moving all of it to a new key.
//!
//! This module must never hand out an email in clear outside `Vault::decrypt_email` and
//! `Vault::open_body` (for moderators), never derive anything public from an unkeyed hash of an
//! email, and never print key material.
//!
//! Randomness comes straight from the operating system. If the OS cannot provide it, the
//! functions that need it panic: there is no weaker source worth falling back to.

pub mod author_view;
mod kept;
mod keys;
pub mod links;
mod mask;
mod rekey;
mod render;
mod tokens;
mod vault;

pub use kept::KeptText;
pub use keys::{
    SecretKey, load_or_create_key_file, read_key_file, replace_key_file, write_new_key_file,
};
pub use mask::{mask_contacts, mask_email};
pub use rekey::{Rekeying, Resealed, Sealed};
pub use render::render_html;
pub use tokens::{generate_token, is_token_shaped, token_digest};
pub use vault::{AuthorHash, Vault, normalize_email_for_hash};

/// What can go wrong with keys and sealed emails and texts.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    /// The secret key is unusable; the message says why, never what the key was.
    #[error("bad secret key: {0}")]
    BadKey(String),
    /// The key file could not be read or written.
    #[error("key file: {0}")]
    Io(#[from] std::io::Error),
    /// The key file is open to group or others.
    #[error(transparent)]
    Exposed(#[from] crate::secret_files::Exposed),
    /// A sealed email or text failed authentication: wrong key, wrong site or comment,
    /// truncated or altered.
    #[error("sealed data could not be decrypted")]
    Decrypt,
}

/// `N` bytes from the operating system's generator.
fn os_random<const N: usize>() -> [u8; N] {
    use rand::{Rng, rand_core::UnwrapErr, rngs::SysRng};

    let mut bytes = [0u8; N];
    UnwrapErr(SysRng).fill_bytes(&mut bytes);
    bytes
}
