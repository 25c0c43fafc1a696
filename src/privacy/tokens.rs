//! Bearer tokens for sites and moderators: generated once, shown once, stored only as a digest.
//!
//! A token in clear must never be stored or logged; only `token_digest` of it is kept.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

use super::os_random;

/// A new bearer token: `prefix` (such as `rg_site_`) followed by 256 random bits in
/// base64url without padding, so it can travel in headers and URLs unescaped.
pub fn generate_token(prefix: &str) -> String {
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(os_random::<32>()))
}

/// The kinds of token [`generate_token`] is given, by what each opens.
pub const TOKEN_KINDS: [&str; 2] = ["rg_site_", "rg_mod_"];

/// Characters of base64url that 32 bytes take without padding.
const RANDOM_CHARS: usize = 43;

/// Whether `token` has the shape of one this deployment issues: a known kind, then 43
/// characters of base64url. A token of any other shape cannot be live, so it is refused
/// without a look-up.
pub fn is_token_shaped(token: &str) -> bool {
    TOKEN_KINDS.iter().any(|kind| {
        token.strip_prefix(kind).is_some_and(|random| {
            random.len() == RANDOM_CHARS
                && random
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    })
}

/// The digest a token is stored and looked up by.
///
/// A plain SHA-256 is enough here, unlike for passwords: a token carries 256 random bits, so
/// there is nothing to guess and no need for a slow or salted hash. An unsalted digest also lets
/// the store find a token by equality in one indexed lookup.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_are_token_shaped_and_others_are_not() {
        for kind in TOKEN_KINDS {
            assert!(is_token_shaped(&generate_token(kind)));
        }
        let good = generate_token("rg_mod_");
        for bad in [
            "",
            "rg_mod_",
            "rg_admin_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            &good[..good.len() - 1],
            &format!("{good}A"),
            &good.replace(|c: char| c.is_ascii_digit() || c == '-', "+"),
            &format!("{}=", &good[..good.len() - 1]),
        ] {
            if bad != good {
                assert!(!is_token_shaped(bad), "{bad:?}");
            }
        }
    }

    #[test]
    fn a_token_starts_with_its_prefix_and_carries_32_random_bytes() {
        let token = generate_token("rg_site_");
        let rest = token.strip_prefix("rg_site_").unwrap_or_default();
        assert_eq!(URL_SAFE_NO_PAD.decode(rest).map(|b| b.len()), Ok(32));
    }

    #[test]
    fn a_token_needs_no_escaping_in_a_url_or_header() {
        let token = generate_token("rg_mod_");
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn two_tokens_differ() {
        assert_ne!(generate_token("x"), generate_token("x"));
    }

    #[test]
    fn the_digest_is_the_sha256_of_the_token() {
        assert_eq!(
            hex::encode(token_digest("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
