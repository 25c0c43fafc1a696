//! What the pipeline finds out before assessing a reply: the author's and the address's
//! history on the site, recent replies, the form check, and the site's learned statistics.
//!
//! Gathering these needs the store; this module only says what they are, so assessing
//! stays pure. [`Facts::default`] is a new author on a quiet site.

use std::time::Duration;

use super::{
    classifier::LearnedStats, duplicates::RecentReply, form::FormCheck, policy::Policy,
    policy::RuleState,
};
use crate::privacy::AuthorHash;

/// Everything about a reply that is known before it is assessed.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    /// The author's keyed email hash on the site, to tell their own earlier replies apart.
    pub author: Option<AuthorHash>,
    /// The author's earlier replies on the site that a moderator or the policy approved.
    pub author_approved: u32,
    /// The author's earlier replies on the site that ended as spam.
    pub author_spam: u32,
    /// The author's earlier replies on the site that a moderator rejected.
    pub author_rejected: u32,
    /// The author confirmed their address by following a link mailed to it (reply notices'
    /// double opt-in).
    pub author_confirmed: bool,
    /// Earlier replies from the same client address that ended as spam.
    pub ip_spam: u32,
    /// Time since the author's previous reply on the site, if any.
    pub since_author_reply: Option<Duration>,
    /// Time since the previous reply from the same client address, if any.
    pub since_ip_reply: Option<Duration>,
    /// Recent replies of the site, for near-duplicates across authors and articles.
    pub recent: &'a [RecentReply],
    /// What checking the reply's form token found.
    pub form: FormCheck,
    /// The token's nonce was seen before (only meaningful when `form` is `Valid`).
    pub token_reused: bool,
    /// The site's learned classifier statistics, for at least the reply's features.
    pub learned: &'a LearnedStats,
    /// What the deployment's other sites taught, where the operator shares lessons
    /// (`--shared-learning`): their counts for at least the reply's features, without this
    /// site's own. Empty otherwise. Only counts of hashed words and signs, nothing personal.
    pub shared: &'a LearnedStats,
    /// The site's blocklist entry that matches the reply, if a moderator
    /// blocked its author, address or a domain of it.
    pub blocked_by: Option<&'a str>,
}

impl Default for Facts<'_> {
    fn default() -> Self {
        Facts {
            author: None,
            author_approved: 0,
            author_spam: 0,
            author_rejected: 0,
            author_confirmed: false,
            ip_spam: 0,
            since_author_reply: None,
            since_ip_reply: None,
            recent: &[],
            form: FormCheck::Missing,
            token_reused: false,
            learned: LearnedStats::empty(),
            shared: LearnedStats::empty(),
            blocked_by: None,
        }
    }
}

impl Facts<'_> {
    /// How long the author or the address must still wait before replying again, or `None`
    /// when the reply may go ahead. The pipeline refuses a flood before assessing it, with
    /// this as the retry delay; a site can set the `flood` rule to off or log-only.
    pub fn flood_wait(&self, policy: &Policy) -> Option<Duration> {
        if policy.rule("flood").map(|r| r.state) != Some(RuleState::On) {
            return None;
        }
        self.flood_remaining(policy)
    }

    /// The wait the flood interval asks for, whatever the rule's state.
    pub(crate) fn flood_remaining(&self, policy: &Policy) -> Option<Duration> {
        let interval = Duration::from_secs(u64::from(policy.flood_interval_seconds));
        let since = match (self.since_author_reply, self.since_ip_reply) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return None,
        };
        (since < interval).then(|| interval - since)
    }
}
