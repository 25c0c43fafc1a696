//! A policy's dry run (`TryPolicy`, `replyctl policy try`): the site's replies of the last days,
//! replayed with this release's rules under the policy in force and under a proposed one, and
//! what would move, counted by status change with a few examples. It reads and computes, and
//! never writes.
//!
//! Each reply is assessed as it was sent, but for what only its moment knew: the findings of
//! [`REPLAY_KEPT_RULES`] (its form, flood, history, the blocklist, near-duplicates and the
//! classifier then) are kept from its stored reasons and weighed as each policy weighs those
//! rules; every other rule reads the reply again. An author's record, which `hold-new-authors` and
//! `trusted-only` read, counts their earlier replies as they stand now. Both policies meet the
//! same replies with the same facts, so whatever moves, moves for the policy alone.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{Submitter, stored::as_reply};
use crate::{
    domain::{CommentBody, CommentStatus, is_erased},
    ids::{CommentId, SiteId},
    privacy::{AuthorHash, Vault},
    spam::{self, Assessment, Assessor, Facts, Policy, REPLAY_KEPT_RULES, Replay},
    store::{self, AuthorTally, StoreError, StoredComment},
};

/// The longest look back a dry run takes, in days.
pub const MAX_TRIAL_DAYS: u32 = 365;

/// Replies read from the store at once; each page is assessed on a blocking thread.
const PAGE: u32 = 500;

/// Examples kept per status change: the latest ones.
const EXAMPLES: usize = 3;

/// Characters of a reply's public text an example shows.
const EXCERPT_CHARS: usize = 80;

/// What a dry run found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyTrial {
    /// The replies received from then on were replayed.
    pub since: DateTime<Utc>,
    /// How many were replayed.
    pub replayed: u64,
    /// How many of those would keep their status.
    pub unchanged: u64,
    /// How many could not be replayed: erased, or no longer readable as a reply.
    pub skipped: u64,
    /// The status changes, most replies first.
    pub moves: Vec<StatusMove>,
}

/// The replies one status change would move.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusMove {
    /// Their status under the policy in force.
    pub from: CommentStatus,
    /// Their status under the proposed policy.
    pub to: CommentStatus,
    pub count: u64,
    /// Where moderators and the service have them now, by status.
    pub now: Vec<(CommentStatus, u64)>,
    /// A few of them, the latest last.
    pub examples: Vec<MovedReply>,
}

/// One reply a status change would move, as moderators may see it: its public (masked) text.
#[derive(Clone, Debug, PartialEq)]
pub struct MovedReply {
    pub comment: CommentId,
    pub article: String,
    pub created_at: DateTime<Utc>,
    /// The start of its public text, contact details masked.
    pub excerpt: String,
    /// Its status now.
    pub status: CommentStatus,
    pub score_before: f64,
    pub score_after: f64,
    /// The rules whose findings differ between the two policies.
    pub rules: Vec<String>,
}

/// Why a dry run did not finish.
#[derive(Debug, thiserror::Error)]
pub enum TrialError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A page's assessment stopped without an answer.
    #[error("a replay was interrupted: {0}")]
    Interrupted(String),
}

impl Submitter {
    /// Replays the replies `site` received in the last `days` days under its policy and under
    /// `proposed`, and counts what would move.
    pub async fn try_policy(
        &self,
        site_id: SiteId,
        current: &Policy,
        proposed: &Policy,
        days: u32,
    ) -> Result<PolicyTrial, TrialError> {
        let since = store::now() - Duration::days(i64::from(days));
        let tallies = self.store.author_records(site_id, since).await?;
        let replayer = std::sync::Arc::new(Replayer {
            assessor: std::sync::Arc::clone(&self.assessor),
            vault: self.vault.clone(),
            current: Replay::new(current.clone(), current.clone(), REPLAY_KEPT_RULES),
            proposed: Replay::new(proposed.clone(), current.clone(), REPLAY_KEPT_RULES),
        });
        let mut tally = Tally::new(since, &tallies);
        let mut after = Some(first_id_at(since));
        loop {
            let page = self.store.site_comments(site_id, after, PAGE).await?;
            let full = page.len() == PAGE as usize;
            after = page.last().map(|c| c.id);
            let replayer = std::sync::Arc::clone(&replayer);
            tally = tokio::task::spawn_blocking(move || {
                for comment in &page {
                    replayer.replay(&mut tally, comment);
                }
                tally
            })
            .await
            .map_err(|err| TrialError::Interrupted(err.to_string()))?;
            if !full {
                break;
            }
        }
        Ok(tally.finish())
    }
}

/// The smallest UUIDv7 of `at`'s millisecond: replies are stored under UUIDv7 ids of when they
/// came in, so those from `at` on follow it.
fn first_id_at(at: DateTime<Utc>) -> CommentId {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6] = 0x70;
    bytes[8] = 0x80;
    CommentId(Uuid::from_bytes(bytes))
}

/// What one dry run replays with.
struct Replayer {
    assessor: std::sync::Arc<Assessor>,
    vault: Vault,
    current: Replay,
    proposed: Replay,
}

impl Replayer {
    /// Replays one reply, counted in `tally`.
    fn replay(&self, tally: &mut Tally, comment: &StoredComment) {
        // Ids follow times; a reply brought in later with an older time is not of the window.
        if comment.created_at < tally.since {
            return;
        }
        let key = comment
            .reader_hash
            .clone()
            .unwrap_or_else(|| comment.author_hash.clone());
        let record = tally.records.get(&key).copied().unwrap_or_default();
        tally.note_record(comment);
        let Some(replayed) = self.assessed(comment, record) else {
            tally.skipped += 1;
            return;
        };
        tally.count(comment, replayed);
    }

    /// The reply's status and assessment under each policy; `None` when it cannot be read.
    fn assessed(&self, comment: &StoredComment, record: [u32; 3]) -> Option<Replayed> {
        if is_erased(&comment.email_sealed) {
            return None;
        }
        let raw = comment.raw_body(&self.vault).ok()?;
        let body = CommentBody::parse(&raw).ok()?;
        let reply = as_reply(&self.vault, comment, &body).ok()?;
        let text = spam::Analysis::of(&reply);
        let [approved, spam, rejected] = record;
        let facts = Facts {
            author: <[u8; 32]>::try_from(comment.author_hash.as_slice())
                .ok()
                .map(AuthorHash),
            author_approved: approved,
            author_spam: spam,
            author_rejected: rejected,
            ..Facts::default()
        };
        let status = |replay: &Replay, assessment: &Assessment| {
            replay
                .policy()
                .initial_status_for(assessment, approved, spam)
        };
        let before = self
            .current
            .assess(&self.assessor, &reply, &text, &facts, &comment.reasons);
        let after = self
            .proposed
            .assess(&self.assessor, &reply, &text, &facts, &comment.reasons);
        Some(Replayed {
            from: status(&self.current, &before),
            to: status(&self.proposed, &after),
            before,
            after,
        })
    }
}

/// One reply under both policies.
struct Replayed {
    from: CommentStatus,
    to: CommentStatus,
    before: Assessment,
    after: Assessment,
}

/// A dry run's counts as it goes.
struct Tally {
    since: DateTime<Utc>,
    /// Replies by status (approved, spam, rejected) of each author and vouched-for reader.
    records: HashMap<Vec<u8>, [u32; 3]>,
    replayed: u64,
    unchanged: u64,
    skipped: u64,
    moves: HashMap<(CommentStatus, CommentStatus), Moving>,
}

/// One status change's counts as a dry run goes.
#[derive(Default)]
struct Moving {
    count: u64,
    now: HashMap<CommentStatus, u64>,
    examples: VecDeque<MovedReply>,
}

impl Tally {
    fn new(since: DateTime<Utc>, tallies: &[AuthorTally]) -> Tally {
        let mut tally = Tally {
            since,
            records: HashMap::new(),
            replayed: 0,
            unchanged: 0,
            skipped: 0,
            moves: HashMap::new(),
        };
        for t in tallies {
            tally.add(&t.author_hash, t.status, t.count);
            if let Some(reader) = &t.reader_hash {
                tally.add(reader, t.status, t.count);
            }
        }
        tally
    }

    fn add(&mut self, key: &[u8], status: CommentStatus, count: u32) {
        let slot = match status {
            CommentStatus::Approved => 0,
            CommentStatus::Spam => 1,
            CommentStatus::Rejected => 2,
            CommentStatus::Pending => return,
        };
        let record = self.records.entry(key.to_vec()).or_default();
        record[slot] = record[slot].saturating_add(count);
    }

    /// A reply replayed counts in its author's (and reader's) record for the replies after it,
    /// at the status it has now.
    fn note_record(&mut self, comment: &StoredComment) {
        self.add(&comment.author_hash, comment.status, 1);
        if let Some(reader) = &comment.reader_hash {
            self.add(reader, comment.status, 1);
        }
    }

    fn count(&mut self, comment: &StoredComment, replayed: Replayed) {
        self.replayed += 1;
        if replayed.from == replayed.to {
            self.unchanged += 1;
            return;
        }
        let moving = self.moves.entry((replayed.from, replayed.to)).or_default();
        moving.count += 1;
        *moving.now.entry(comment.status).or_default() += 1;
        if moving.examples.len() == EXAMPLES {
            moving.examples.pop_front();
        }
        moving.examples.push_back(MovedReply {
            comment: comment.id,
            article: comment.article.clone(),
            created_at: comment.created_at,
            excerpt: excerpt(&comment.body_public),
            status: comment.status,
            score_before: replayed.before.score,
            score_after: replayed.after.score,
            rules: changed_rules(&replayed.before, &replayed.after),
        });
    }

    fn finish(self) -> PolicyTrial {
        let mut moves: Vec<StatusMove> = self
            .moves
            .into_iter()
            .map(|((from, to), moving)| {
                let mut now: Vec<(CommentStatus, u64)> = moving.now.into_iter().collect();
                now.sort_by_key(|(status, _)| CommentStatus::ALL.iter().position(|s| s == status));
                StatusMove {
                    from,
                    to,
                    count: moving.count,
                    now,
                    examples: moving.examples.into(),
                }
            })
            .collect();
        let order = |status: CommentStatus| CommentStatus::ALL.iter().position(|s| *s == status);
        moves.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| order(a.from).cmp(&order(b.from)))
                .then_with(|| order(a.to).cmp(&order(b.to)))
        });
        PolicyTrial {
            since: self.since,
            replayed: self.replayed,
            unchanged: self.unchanged,
            skipped: self.skipped,
            moves,
        }
    }
}

/// The start of a public text on one line.
fn excerpt(public: &str) -> String {
    let mut text: String = public
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(EXCERPT_CHARS + 1)
        .collect();
    if text.chars().count() > EXCERPT_CHARS {
        text = text.chars().take(EXCERPT_CHARS).collect();
        text.push('…');
    }
    text
}

/// The rules whose findings (weight, or whether they count) differ between two assessments.
fn changed_rules(before: &Assessment, after: &Assessment) -> Vec<String> {
    let finding = |assessment: &Assessment, rule: &str| {
        assessment
            .reasons
            .iter()
            .find(|r| r.rule == rule)
            .map(|r| (r.weight, r.log_only))
    };
    spam::RULES
        .iter()
        .map(|info| info.name)
        .filter(|rule| finding(before, rule) != finding(after, rule))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_id_of_a_time_comes_before_every_reply_of_that_millisecond_and_after() {
        let at = DateTime::from_timestamp_millis(1_800_000_000_123).expect("a time");
        let first = first_id_at(at);
        let later = |ms: i64| {
            let t = DateTime::from_timestamp_millis(1_800_000_000_123 + ms).expect("a time");
            let seconds = u64::try_from(t.timestamp()).unwrap_or(0);
            Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                seconds,
                t.timestamp_subsec_nanos(),
            ))
        };
        assert!(first.0 < later(0));
        assert!(later(-1) < first.0);
        assert_eq!(first.0.get_version_num(), 7);
    }

    #[test]
    fn an_excerpt_is_one_line_and_cut() {
        assert_eq!(excerpt("Two\nlines."), "Two lines.");
        let long = "word ".repeat(40);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
