//! The credentials a server has read, and the tokens it found unknown, each kept for a while.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use crate::store::{CREDENTIAL_RECHECK, Credential};

/// Live credentials as they were read, each trusted for
/// [`CREDENTIAL_RECHECK`] from the moment its read began, and the tokens
/// found unknown, each for [`UNKNOWN_FOR`], so that a caller repeating a
/// made-up or revoked token costs no read for it. The unknown are kept
/// apart and bounded on their own, so that random tokens cannot push out
/// live ones. A token is unknown until it is issued, and issued tokens are
/// random: nobody can have asked for one before it existed, so a new token
/// still works at once.
#[derive(Default)]
pub(super) struct CredentialCache {
    state: Mutex<CredentialState>,
}

#[derive(Default)]
struct CredentialState {
    /// Bumped by every revocation made through this store: a read that
    /// began before one is not kept.
    generation: u64,
    entries: HashMap<[u8; 32], (Instant, Credential)>,
    /// Tokens found unknown, and when.
    unknown: HashMap<[u8; 32], Instant>,
}

/// At most this many credentials are kept; a deployment has a few per site.
const MAX_CREDENTIALS: usize = 4096;

/// How long a token found unknown is answered as unknown without a read.
const UNKNOWN_FOR: Duration = Duration::from_secs(60);

/// At most this many unknown tokens are kept; past it, more cost a read each.
const MAX_UNKNOWN: usize = 16_384;

impl CredentialCache {
    fn lock(&self) -> MutexGuard<'_, CredentialState> {
        // Each change is one map operation, so a poisoned map is whole.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn get(&self, digest: &[u8; 32], now: Instant) -> Option<Credential> {
        let state = self.lock();
        let (read, credential) = state.entries.get(digest)?;
        (now.saturating_duration_since(*read) < CREDENTIAL_RECHECK).then(|| credential.clone())
    }

    pub(super) fn generation(&self) -> u64 {
        self.lock().generation
    }

    pub(super) fn put(
        &self,
        digest: [u8; 32],
        credential: &Credential,
        read: Instant,
        generation: u64,
    ) {
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        if state.entries.len() >= MAX_CREDENTIALS {
            state
                .entries
                .retain(|_, (at, _)| read.saturating_duration_since(*at) < CREDENTIAL_RECHECK);
            if state.entries.len() >= MAX_CREDENTIALS {
                return;
            }
        }
        state.entries.insert(digest, (read, credential.clone()));
    }

    pub(super) fn known_unknown(&self, digest: &[u8; 32], now: Instant) -> bool {
        self.lock()
            .unknown
            .get(digest)
            .is_some_and(|found| now.saturating_duration_since(*found) < UNKNOWN_FOR)
    }

    pub(super) fn put_unknown(&self, digest: [u8; 32], found: Instant) {
        let mut state = self.lock();
        if state.unknown.len() >= MAX_UNKNOWN {
            state
                .unknown
                .retain(|_, at| found.saturating_duration_since(*at) < UNKNOWN_FOR);
            if state.unknown.len() >= MAX_UNKNOWN {
                return;
            }
        }
        state.unknown.insert(digest, found);
    }

    /// A token issued through this store is known from now on.
    pub(super) fn forget_unknown(&self, digest: &[u8; 32]) {
        self.lock().unknown.remove(digest);
    }

    pub(super) fn clear(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SiteId;

    fn credential() -> Credential {
        Credential {
            id: crate::ids::TokenId::new(),
            role: crate::store::Role::Host,
            prefix: "rg_site_AbCdEfGh".to_owned(),
            sites: vec![SiteId::new()],
            scopes: Vec::new(),
        }
    }

    #[test]
    fn a_credential_is_trusted_for_the_recheck_time_from_its_read() {
        let cache = CredentialCache::default();
        let read = Instant::now();
        cache.put([1; 32], &credential(), read, cache.generation());
        assert!(cache.get(&[1; 32], read).is_some());
        assert!(cache.get(&[1; 32], read + CREDENTIAL_RECHECK / 2).is_some());
        assert!(cache.get(&[1; 32], read + CREDENTIAL_RECHECK).is_none());
        assert!(cache.get(&[2; 32], read).is_none());
    }

    #[test]
    fn a_read_that_began_before_a_revocation_is_not_kept() {
        let cache = CredentialCache::default();
        let read = Instant::now();
        let generation = cache.generation();
        cache.put([1; 32], &credential(), read, generation);
        cache.clear();
        assert!(cache.get(&[1; 32], read).is_none(), "revoked here");
        cache.put([3; 32], &credential(), read, generation);
        assert!(
            cache.get(&[3; 32], read).is_none(),
            "read before the revocation"
        );
    }

    #[test]
    fn an_unknown_token_is_remembered_for_a_minute_and_forgotten_once_issued() {
        let cache = CredentialCache::default();
        let found = Instant::now();
        cache.put_unknown([1; 32], found);
        assert!(cache.known_unknown(&[1; 32], found + UNKNOWN_FOR / 2));
        assert!(!cache.known_unknown(&[1; 32], found + UNKNOWN_FOR));
        assert!(!cache.known_unknown(&[2; 32], found));
        cache.forget_unknown(&[1; 32]);
        assert!(!cache.known_unknown(&[1; 32], found));
    }

    #[test]
    fn unknown_tokens_are_bounded_apart_from_live_ones() {
        let cache = CredentialCache::default();
        let found = Instant::now();
        for n in 0..MAX_UNKNOWN as u32 {
            let mut digest = [0; 32];
            digest[..4].copy_from_slice(&n.to_le_bytes());
            cache.put_unknown(digest, found);
        }
        cache.put_unknown([0xff; 32], found);
        assert!(!cache.known_unknown(&[0xff; 32], found), "full");
        cache.put([0xee; 32], &credential(), found, cache.generation());
        assert!(
            cache.get(&[0xee; 32], found).is_some(),
            "live ones still kept"
        );
        let later = found + UNKNOWN_FOR;
        cache.put_unknown([0xff; 32], later);
        assert!(
            cache.known_unknown(&[0xff; 32], later),
            "expired ones make room"
        );
    }

    #[test]
    fn the_credential_cache_is_bounded() {
        let cache = CredentialCache::default();
        let old = Instant::now();
        for n in 0..MAX_CREDENTIALS as u32 {
            let mut digest = [0; 32];
            digest[..4].copy_from_slice(&n.to_le_bytes());
            cache.put(digest, &credential(), old, 0);
        }
        let full = old + CREDENTIAL_RECHECK / 2;
        cache.put([0xff; 32], &credential(), full, 0);
        assert!(
            cache.get(&[0xff; 32], full).is_none(),
            "full of live entries"
        );
        let later = old + CREDENTIAL_RECHECK;
        cache.put([0xff; 32], &credential(), later, 0);
        assert!(
            cache.get(&[0xff; 32], later).is_some(),
            "expired ones make room"
        );
        assert_eq!(cache.lock().entries.len(), 1);
    }
}
