//! The bookkeeping of [`Keys::rekey`](super::Keys::rekey) that both backends share: which
//! blocklist entries follow their author to the new key, which go, and what each site's audit
//! row says.

use std::collections::HashMap;

use crate::{
    ids::SiteId,
    privacy::{AuthorHash, Resealed},
    store::{StoreError, StoreResult},
};

/// What `replyguard key rotate` changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RekeyReport {
    /// Comments whose email (and sealed text) were sealed again.
    pub comments: u64,
    /// Blocked authors keyed again through one of their comments.
    pub blocks_kept: u64,
    /// Blocked authors with no comment left to key them again by: dropped.
    pub blocks_dropped: u64,
    /// Idempotency keys forgotten: keyed hashes that cannot be keyed again.
    pub idempotency_keys_dropped: u64,
}

/// One change to a blocklist entry of the author kind.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct BlockChange {
    pub site: SiteId,
    /// The value as stored, under the old key.
    pub old: String,
    /// The value under the new key, or `None` to drop the entry.
    pub new: Option<String>,
}

/// Carries the author hashes a re-keying meets from the comments to the blocklist.
pub(super) struct RekeyTally {
    /// Blocked authors by site and old hash, with their new hash once a comment gave it.
    blocked: HashMap<(SiteId, AuthorHash), Option<AuthorHash>>,
    /// Comments sealed again, per site.
    sealed: HashMap<SiteId, u64>,
}

impl RekeyTally {
    /// Starts from the blocklist's author entries, `(site, value)` as stored.
    pub fn new(blocked: impl IntoIterator<Item = (SiteId, String)>) -> StoreResult<RekeyTally> {
        let blocked = blocked
            .into_iter()
            .map(|(site, value)| match AuthorHash::from_hex(&value) {
                Some(hash) => Ok(((site, hash), None)),
                None => Err(StoreError::Corrupt(format!(
                    "blocklist author entry {value:?} is not an author hash"
                ))),
            })
            .collect::<StoreResult<_>>()?;
        Ok(RekeyTally {
            blocked,
            sealed: HashMap::new(),
        })
    }

    /// Notes one comment sealed again: `old_hash` is its author hash as stored.
    pub fn comment(&mut self, site: SiteId, old_hash: &[u8], resealed: &Resealed) {
        *self.sealed.entry(site).or_default() += 1;
        if let Ok(old) = <[u8; 32]>::try_from(old_hash)
            && let Some(new) = self.blocked.get_mut(&(site, AuthorHash(old)))
        {
            *new = Some(resealed.author_hash);
        }
    }

    /// The blocklist's changes, in a stable order.
    pub fn block_changes(&self) -> Vec<BlockChange> {
        let mut changes: Vec<BlockChange> = self
            .blocked
            .iter()
            .map(|((site, old), new)| BlockChange {
                site: *site,
                old: old.to_hex(),
                new: new.map(|new| new.to_hex()),
            })
            .collect();
        changes.sort_by(|a, b| (a.site.0, &a.old).cmp(&(b.site.0, &b.old)));
        changes
    }

    /// Per site, the blocked authors kept and dropped.
    fn blocks(&self) -> HashMap<SiteId, (u64, u64)> {
        let mut blocks = HashMap::<SiteId, (u64, u64)>::new();
        for ((site, _), new) in &self.blocked {
            let (kept, dropped) = blocks.entry(*site).or_default();
            match new {
                Some(_) => *kept += 1,
                None => *dropped += 1,
            }
        }
        blocks
    }

    /// The note of each site's `key_rotate` audit row, for every site in `sites`.
    pub fn notes(&self, sites: &[SiteId]) -> Vec<(SiteId, String)> {
        let blocks = self.blocks();
        sites
            .iter()
            .map(|site| {
                let sealed = self.sealed.get(site).copied().unwrap_or_default();
                let mut note = format!("secret key rotated; replies sealed again: {sealed}");
                let (kept, dropped) = blocks.get(site).copied().unwrap_or_default();
                if kept + dropped > 0 {
                    note.push_str(&format!(
                        "; blocked authors kept: {kept}, dropped: {dropped} (no reply left to key \
                         them again by)"
                    ));
                }
                (*site, note)
            })
            .collect()
    }

    /// What the re-keying changed, given how many idempotency keys it forgot.
    pub fn report(&self, idempotency_keys_dropped: u64) -> RekeyReport {
        let (blocks_kept, blocks_dropped) = self
            .blocks()
            .values()
            .fold((0, 0), |(k, d), (kept, dropped)| (k + kept, d + dropped));
        RekeyReport {
            comments: self.sealed.values().sum(),
            blocks_kept,
            blocks_dropped,
            idempotency_keys_dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resealed(hash: u8) -> Resealed {
        Resealed {
            email_sealed: vec![],
            author_hash: AuthorHash([hash; 32]),
            avatar_seed: String::new(),
            body_sealed: None,
        }
    }

    #[test]
    fn a_blocked_author_follows_their_comment_and_one_without_a_comment_is_dropped()
    -> StoreResult<()> {
        let (site, other) = (SiteId::new(), SiteId::new());
        let (writer, silent) = ("01".repeat(32), "02".repeat(32));
        let mut tally = RekeyTally::new([(site, writer.clone()), (site, silent.clone())])?;
        tally.comment(site, &[1; 32], &resealed(7));
        // The same old hash on another site is another author.
        tally.comment(other, &[2; 32], &resealed(8));

        let mut changes = tally.block_changes();
        changes.sort_by(|a, b| a.old.cmp(&b.old));
        assert_eq!(
            changes,
            [
                BlockChange {
                    site,
                    old: writer,
                    new: Some("07".repeat(32)),
                },
                BlockChange {
                    site,
                    old: silent,
                    new: None,
                },
            ]
        );
        let notes = tally.notes(&[site, other]);
        assert!(
            notes[0]
                .1
                .contains("replies sealed again: 1; blocked authors kept: 1, dropped: 1"),
            "{notes:?}"
        );
        assert_eq!(notes[1].1, "secret key rotated; replies sealed again: 1");
        assert_eq!(
            tally.report(3),
            RekeyReport {
                comments: 2,
                blocks_kept: 1,
                blocks_dropped: 1,
                idempotency_keys_dropped: 3,
            }
        );
        Ok(())
    }

    #[test]
    fn a_blocklist_entry_that_is_not_a_hash_is_reported_as_corrupt() {
        assert!(matches!(
            RekeyTally::new([(SiteId::new(), "jane@example.com".to_owned())]),
            Err(StoreError::Corrupt(_))
        ));
    }
}
