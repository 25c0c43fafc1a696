//! The author's view: the token `SubmitComment` answers, which lets `ListComments` show a
//! reader their own replies that wait for a moderator, and `EditComment` change one.
//!
//! A token is `base64url(version | issued_at | comment id | tag)`, the tag an HMAC-SHA256 cut
//! to 128 bits over the site and the rest, under the author-view subkey of the deployment's
//! secret. It names one comment; the author is that comment's, found in the store, so the token
//! carries nothing about the reader and needs no row of its own. An erased comment no longer
//! leads to its author.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::ids::{CommentId, SiteId};

/// How long a token shows its author's held replies: longer than a reply waits in a queue.
pub const AUTHOR_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How far in the future a token's issue time may be, for clocks of replicas that disagree.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
const SIGNED_LEN: usize = 1 + 8 + 16;
const TOKEN_LEN: usize = SIGNED_LEN + TAG_LEN;
/// Longer text cannot be a token; refused before decoding so an enormous value costs nothing.
const MAX_TOKEN_CHARS: usize = 2 * TOKEN_LEN;

type HmacSha256 = Hmac<Sha256>;

/// Why an author token was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthorTokenError {
    /// Not a token at all, or not signed by this deployment for this site.
    #[error("is not an author token of this site")]
    Invalid,
    /// Signed, but older than [`AUTHOR_TOKEN_LIFETIME`].
    #[error("has expired")]
    Expired,
}

/// What a valid token vouches for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthorToken {
    /// The comment the token was issued for; its author is the token's author.
    pub comment: CommentId,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
}

/// A new token for `comment` of `site`, signed with `key`.
pub fn issue(key: &[u8; 32], site: SiteId, comment: CommentId, now: DateTime<Utc>) -> String {
    let issued = now.timestamp().max(0) as u64;
    let mut token = Vec::with_capacity(TOKEN_LEN);
    token.push(VERSION);
    token.extend_from_slice(&issued.to_be_bytes());
    token.extend_from_slice(comment.0.as_bytes());
    let full = mac(key, site, &token).finalize().into_bytes();
    token.extend_from_slice(&full[..TAG_LEN]);
    URL_SAFE_NO_PAD.encode(token)
}

/// Checks `token` for `site` as signed under any of `keys` (the deployment's subkey, then the
/// previous key's after a rotation).
pub fn verify(
    keys: &[[u8; 32]],
    site: SiteId,
    token: &str,
    now: DateTime<Utc>,
) -> Result<AuthorToken, AuthorTokenError> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_CHARS {
        return Err(AuthorTokenError::Invalid);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| AuthorTokenError::Invalid)?;
    if bytes.len() != TOKEN_LEN || bytes[0] != VERSION {
        return Err(AuthorTokenError::Invalid);
    }
    let (signed, given) = bytes.split_at(SIGNED_LEN);
    // Compared in constant time, so a forger learns nothing from how long a refusal took.
    if !keys
        .iter()
        .any(|key| mac(key, site, signed).verify_truncated_left(given).is_ok())
    {
        return Err(AuthorTokenError::Invalid);
    }
    let mut issued = [0u8; 8];
    issued.copy_from_slice(&signed[1..9]);
    let issued = u64::from_be_bytes(issued);
    let mut id = [0u8; 16];
    id.copy_from_slice(&signed[9..SIGNED_LEN]);
    let now_secs = now.timestamp().max(0) as u64;
    if issued > now_secs + CLOCK_SKEW.as_secs() {
        return Err(AuthorTokenError::Invalid);
    }
    if now_secs.saturating_sub(issued) > AUTHOR_TOKEN_LIFETIME.as_secs() {
        return Err(AuthorTokenError::Expired);
    }
    let issued_at = DateTime::from_timestamp(i64::try_from(issued).unwrap_or(i64::MAX), 0)
        .ok_or(AuthorTokenError::Invalid)?;
    Ok(AuthorToken {
        comment: CommentId(Uuid::from_bytes(id)),
        issued_at,
    })
}

fn mac(key: &[u8; 32], site: SiteId, signed: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(b"replyguard author token");
    mac.update(site.0.as_bytes());
    mac.update(signed);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn a_token_names_its_comment_on_its_site_only() {
        let site = SiteId(Uuid::now_v7());
        let comment = CommentId(Uuid::now_v7());
        let now = Utc::now();
        let token = issue(&KEY, site, comment, now);
        let found = verify(&[KEY], site, &token, now).expect("valid");
        assert_eq!(found.comment, comment);
        let other = SiteId(Uuid::now_v7());
        assert_eq!(
            verify(&[KEY], other, &token, now),
            Err(AuthorTokenError::Invalid)
        );
        assert_eq!(
            verify(&[[8; 32]], site, &token, now),
            Err(AuthorTokenError::Invalid)
        );
        assert_eq!(
            verify(&[[8; 32], KEY], site, &token, now).map(|t| t.comment),
            Ok(comment)
        );
    }

    #[test]
    fn a_token_expires_and_a_changed_byte_is_refused() {
        let site = SiteId(Uuid::now_v7());
        let comment = CommentId(Uuid::now_v7());
        let now = Utc::now();
        let token = issue(&KEY, site, comment, now);
        let later = now + chrono::Duration::days(31);
        assert_eq!(
            verify(&[KEY], site, &token, later),
            Err(AuthorTokenError::Expired)
        );
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64");
        bytes[12] ^= 1;
        let changed = URL_SAFE_NO_PAD.encode(bytes);
        assert_eq!(
            verify(&[KEY], site, &changed, now),
            Err(AuthorTokenError::Invalid)
        );
        assert_eq!(
            verify(&[KEY], site, "x", now),
            Err(AuthorTokenError::Invalid)
        );
    }
}
