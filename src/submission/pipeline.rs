//! The submit pipeline: validate, place in its thread, assess, store.
//!
//! It never acknowledges a reply that is not committed, and a retried
//! submission with the same idempotency key gets the first result back.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::instrument;

use crate::{
    domain::{
        AutoBlock, BlockSubject, Blocked, CommentStatus, FieldViolation, NewBlock, NewReport,
        RawReply, ReportOutcome, ReportReason, SYSTEM_ACTOR, ValidReply, validate,
    },
    ids::{CommentId, SiteId},
    metrics,
    privacy::{AuthorHash, KeptText, Vault, mask_contacts},
    spam::{self, Assessment, Assessor, Facts, FormCheck, LearnedStats, form},
    store::{self, FactsAbout, Site, Store, StoreError, StoredComment},
};

/// How deep replies may nest; a reply to a comment this deep is refused.
pub const MAX_DEPTH: u32 = 16;

/// Why a submission was not stored.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The reply breaks one or more field rules.
    #[error("invalid reply")]
    Invalid(Vec<FieldViolation>),
    /// The author or address replied too recently; they may retry later.
    #[error("replying too fast")]
    Flood { retry_after: std::time::Duration },
    /// The author said exactly this on this article already.
    #[error("duplicate of {0}")]
    Duplicate(CommentId),
    /// A moderator closed the article to new replies.
    #[error("the article is closed")]
    Closed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SubmitError {
    fn field(field: &'static str, description: &str) -> Self {
        SubmitError::Invalid(vec![FieldViolation {
            field,
            description: description.to_owned(),
        }])
    }
}

/// What a reader's mail link token begins with.
const MAIL_TOKEN_PREFIX: &str = "rg_mail_";

/// Whether `token` has the shape of a mail link token: the prefix, then 43 characters of
/// base64url. Anything else is refused without a look-up.
pub fn is_mail_token(token: &str) -> bool {
    token.strip_prefix(MAIL_TOKEN_PREFIX).is_some_and(|random| {
        random.len() == 43
            && random
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Turns raw replies into stored, assessed comments.
#[derive(Clone)]
pub struct Submitter {
    pub(super) store: Arc<dyn Store>,
    pub(super) vault: Vault,
    pub(super) assessor: Arc<Assessor>,
    /// Replies are also judged by the deployment's shared lessons (`--shared-learning`).
    pub(super) reads_shared: bool,
}

impl Submitter {
    pub fn new(store: Arc<dyn Store>, vault: Vault, assessor: Assessor) -> Self {
        Submitter {
            store,
            vault,
            assessor: Arc::new(assessor),
            reads_shared: false,
        }
    }

    /// The same, judging replies by the deployment's shared lessons too when `reads`.
    pub fn reading_shared(self, reads: bool) -> Self {
        Submitter {
            reads_shared: reads,
            ..self
        }
    }

    /// Keeps the wish of the author of `stored` to be mailed approved answers to it, and queues
    /// the mail that asks them to confirm their address when they have not yet; nothing when the
    /// site has no pages for the links. True when a confirmation mail was queued.
    #[instrument(skip_all, fields(site = %site.name))]
    pub async fn watch_replies(
        &self,
        site: &Site,
        stored: &StoredComment,
    ) -> Result<bool, StoreError> {
        if self.store.mail_pages(site.id).await?.is_none() {
            tracing::info!("a reader asked to be told of answers, but the site has no mail pages");
            return Ok(false);
        }
        let token = crate::privacy::generate_token(MAIL_TOKEN_PREFIX);
        self.store
            .watch_replies(&crate::domain::ReplyWatch {
                site: site.id,
                comment: stored.id,
                email_sealed: stored.email_sealed.clone(),
                author_hash: stored.author_hash.clone(),
                token_digest: crate::privacy::token_digest(&token).to_vec(),
                token_sealed: self.vault.encrypt_email(site.id, &token),
                at: stored.created_at,
            })
            .await
    }

    /// Confirms the reader whose mail carried `token`; false when the site sent no such token.
    pub async fn confirm_email(&self, site: SiteId, token: &str) -> Result<bool, StoreError> {
        if !is_mail_token(token) {
            return Ok(false);
        }
        let digest = crate::privacy::token_digest(token);
        self.store.confirm_reader(site, &digest).await
    }

    /// Stops the answer mails to the reader whose mail carried `token`; false when the site
    /// sent no such token.
    pub async fn unsubscribe(&self, site: SiteId, token: &str) -> Result<bool, StoreError> {
        if !is_mail_token(token) {
            return Ok(false);
        }
        let digest = crate::privacy::token_digest(token);
        self.store.unsubscribe_reader(site, &digest).await
    }

    /// Validates, assesses and stores one reply for `site`; `published_at` is when the host says
    /// its article was published, if it says; `actor` names the credential in the audit log.
    #[instrument(skip_all, fields(site = %site.name))]
    pub async fn submit(
        &self,
        site: &Site,
        raw: &RawReply<'_>,
        published_at: Option<DateTime<Utc>>,
        actor: &str,
    ) -> Result<StoredComment, SubmitError> {
        let reply = validate(raw).map_err(SubmitError::Invalid)?;
        let email = reply.email.normalized();
        let author_hash = self.vault.author_hash(site.id, &email);

        if let Some(key) = &reply.idempotency_key {
            let tag = self.vault.idempotency_tag(site.id, key.as_str());
            let earlier = self.store.comment_by_idempotency_key(site.id, &tag).await?;
            if let Some(earlier) = earlier {
                return replay(earlier, &reply, &author_hash, &self.vault);
            }
        }

        // After the retry above: a reply accepted before the article closed is still answered.
        let now = store::now();
        let clock = self.store.article_clock(site.id, &reply.article).await?;
        if clock.is_closed(now, published_at) {
            // An old article's publication time, first heard with a refused reply, is kept all
            // the same, so that its listing says it is closed.
            if published_at.is_some() && clock.learns_from(published_at) {
                self.store
                    .record_article_dates(site.id, &reply.article, published_at, None)
                    .await?;
            }
            return Err(SubmitError::Closed);
        }
        let place = self.place_in_thread(site, &reply).await?;
        let ip = reply.client.ip.map(|ip| ip.to_string());
        let text = spam::Analysis::of(&reply);
        let body_public = mask_contacts(reply.body.as_str());
        let about = FactsAbout {
            author_hash: &author_hash,
            article: &reply.article,
            ip: ip.as_deref(),
            body_public: &body_public,
        };
        let stored = self.store.facts(site.id, &about, &text.features).await?;
        let shared = if self.reads_shared {
            self.store.shared_learned(site.id, &text.features).await?
        } else {
            LearnedStats::new()
        };
        let since = |last: Option<chrono::DateTime<chrono::Utc>>| {
            // A clock step backwards reads as "just now", never as a panic.
            last.map(|last| (now - last).to_std().unwrap_or_default())
        };
        let form = form::verify(
            self.vault.form_keys(),
            site.id,
            reply.article.as_str(),
            reply.form.token.as_deref(),
            now,
        );
        let subject = BlockSubject {
            author_hash: &author_hash.0,
            ip: ip.as_deref(),
            email: Some(reply.email.as_str()),
            website: reply.website.as_ref().map(|w| w.as_str()),
        };
        let block = if stored.any_blocks {
            self.store
                .blocks_matching(site.id, &subject)
                .await?
                .into_iter()
                .find(|entry| entry.in_force(now) && entry.blocked.matches(&subject))
        } else {
            None
        };
        let blocked_by = block
            .as_ref()
            .map(|entry| entry.blocked.without_personal_data());
        // A reader the host vouches for is trusted on their own replies, not on a typed email.
        let record = match &reply.reader {
            Some(reader) => {
                let hash = self.vault.reader_hash(site.id, reader.as_str());
                Some(self.store.reader_record(site.id, &hash).await?)
            }
            None => None,
        };
        let (approved, spam, rejected) = match record {
            Some(record) => (record.approved, record.spam, record.rejected),
            None => (
                stored.author_approved,
                stored.author_spam,
                stored.author_rejected,
            ),
        };
        let mut facts = Facts {
            author: Some(author_hash),
            author_approved: approved,
            author_spam: spam,
            author_rejected: rejected,
            // A confirmed address is the typed email's, which a vouched-for reader's trust does
            // not rest on.
            author_confirmed: record.is_none() && stored.author_confirmed,
            ip_spam: stored.ip_spam,
            since_author_reply: since(stored.author_last),
            since_ip_reply: since(stored.ip_last),
            recent: &stored.recent,
            form,
            token_reused: false,
            learned: &stored.learned,
            shared: &shared,
            blocked_by: blocked_by.as_deref(),
        };
        if let Some(wait) = facts.flood_wait(&site.policy) {
            return Err(SubmitError::Flood { retry_after: wait });
        }
        if let Some(earlier) = stored.duplicate_of {
            return Err(SubmitError::Duplicate(earlier));
        }
        if let FormCheck::Valid { nonce, .. } = facts.form {
            facts.token_reused = !self.store.use_form_nonce(site.id, &nonce).await?;
        }
        let assessment = self
            .assessor
            .assess_analysed(&reply, &text, &site.policy, &facts);
        let status =
            site.policy
                .initial_status_for(&assessment, facts.author_approved, facts.author_spam);
        let comment = stored_reply(
            &self.vault,
            site.id,
            &reply,
            body_public,
            &author_hash,
            place,
            text,
            assessment,
            status,
            now,
        );

        match self.store.insert_comment(&comment, actor).await {
            Ok(()) => {
                metrics::record_reply(comment.status.as_str());
                if let Some(entry) = &block {
                    metrics::record_block_hit(entry.blocked.kind().as_str());
                    // The reply is stored; a count that fails to follow is only logged.
                    if let Err(err) = self
                        .store
                        .record_block_hit(site.id, &entry.blocked, now)
                        .await
                    {
                        tracing::warn!(error = %err, "a block's hit was not counted");
                    }
                }
                // A spam reply may be one too many from its address; one a block caught is counted
                // by that block already.
                if comment.status == CommentStatus::Spam
                    && block.is_none()
                    && let (Some(rule), Some(ip)) = (site.policy.auto_block(), reply.client.ip)
                    && let Err(err) = self.auto_block(site, rule, ip, now).await
                {
                    tracing::warn!(error = %err, "an address was not blocked automatically");
                }
                // The first reply starts the article's age, and a new publication time moves it;
                // the reply is stored, so a failure here is only logged.
                if clock.learns_from(published_at)
                    && let Err(err) = self
                        .store
                        .record_article_dates(site.id, &reply.article, published_at, Some(now))
                        .await
                {
                    tracing::warn!(error = %err, "an article's dates were not kept");
                }
                tracing::info!(comment = %comment.id, status = %comment.status, score = comment.score, "reply stored");
                Ok(comment)
            }
            // Two retries raced: the first one stored it, so answer with that.
            Err(StoreError::AlreadyExists(_)) if comment.idempotency_key.is_some() => {
                let key = comment.idempotency_key.as_deref().unwrap_or_default();
                match self.store.comment_by_idempotency_key(site.id, key).await? {
                    Some(earlier) => replay(earlier, &reply, &author_hash, &self.vault),
                    None => Err(SubmitError::field(
                        "idempotency_key",
                        "could not be recorded; retry",
                    )),
                }
            }
            // Closed after the check above, before the reply's transaction.
            Err(StoreError::ArticleClosed) => Err(SubmitError::Closed),
            Err(err) => Err(err.into()),
        }
    }

    /// Blocks `ip` on `site` for `rule.lasts`, by `system` and with a note that says why, when
    /// its spam replies within `rule.window` are `rule.spam` or more (the one just stored among
    /// them).
    async fn auto_block(
        &self,
        site: &Site,
        rule: AutoBlock,
        ip: std::net::IpAddr,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let found = self
            .store
            .address_spam_since(site.id, &ip.to_string(), now - rule.window)
            .await?;
        if !rule.due(found) {
            return Ok(());
        }
        let blocked = Blocked::Ip(ip);
        let note = rule.note(found);
        let outcome = self
            .store
            .block(
                &NewBlock {
                    site: site.id,
                    blocked: &blocked,
                    actor: SYSTEM_ACTOR,
                    note: Some(&note),
                    expires_at: Some(now + rule.lasts),
                },
                None,
            )
            .await?;
        if outcome.added {
            metrics::record_auto_block();
            tracing::info!(spam = found, "an address was blocked automatically");
        }
        Ok(())
    }

    /// Stores a reader's report of `comment` on `site`: the reporter known by a keyed hash of
    /// the host's id for them, the comment held again once it has the policy's `report_hold`
    /// reports. `actor` names the site key in the audit log.
    pub async fn report(
        &self,
        site: &Site,
        comment: CommentId,
        reporter: &str,
        reason: ReportReason,
        text: &str,
        actor: &str,
    ) -> Result<ReportOutcome, StoreError> {
        let report = NewReport {
            site: site.id,
            comment,
            reporter_hash: self.vault.reporter_hash(site.id, reporter),
            reason,
            text,
            actor,
            hold_at: (site.policy.report_hold > 0).then_some(site.policy.report_hold),
            at: store::now(),
        };
        self.store.report_comment(&report).await
    }

    /// Finds the new comment's place: its thread's root, its path and depth.
    /// A parent must be an approved comment of the same article and site.
    async fn place_in_thread(&self, site: &Site, reply: &ValidReply) -> Result<Place, SubmitError> {
        let id = CommentId::new();
        let Some(parent_id) = reply.parent else {
            return Ok(Place::new(id, None));
        };
        let parent = self.store.comment(parent_id).await?.filter(|parent| {
            parent.site == site.id
                && parent.article == reply.article.as_str()
                && parent.status == CommentStatus::Approved
        });
        let Some(parent) = parent else {
            return Err(SubmitError::field(
                "parent_id",
                "must be an approved comment of the same article",
            ));
        };
        if parent.depth + 1 > MAX_DEPTH {
            return Err(SubmitError::field(
                "parent_id",
                "is nested too deeply to take replies",
            ));
        }
        Ok(Place::new(id, Some(&Place::of(&parent))))
    }
}

/// A comment's place in its thread: its id, its thread's top comment, its
/// path from that top (the ids joined by dots, so a parent sorts before its
/// replies) and how deep it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub id: CommentId,
    pub root: CommentId,
    pub path: String,
    pub depth: u32,
}

impl Place {
    /// The place of a new comment `id`: under `parent`, or at the top of a
    /// new thread.
    pub fn new(id: CommentId, parent: Option<&Place>) -> Place {
        let own = id.0.simple().to_string();
        match parent {
            None => Place {
                id,
                root: id,
                path: own,
                depth: 0,
            },
            Some(parent) => Place {
                id,
                root: parent.root,
                path: format!("{}.{own}", parent.path),
                depth: parent.depth + 1,
            },
        }
    }

    /// Where a stored comment is.
    pub fn of(comment: &StoredComment) -> Place {
        Place {
            id: comment.id,
            root: comment.root,
            path: comment.path.clone(),
            depth: comment.depth,
        }
    }
}

/// A validated and assessed reply as it is stored: its email sealed and
/// hashed with the site's keys, its text kept as [`KeptText`] says
/// (`body_public` is the text through [`mask_contacts`]), and the
/// assessment's analysis and verdict kept with it.
/// Submissions and seeding both store replies through this.
#[allow(clippy::too_many_arguments)]
pub fn stored_reply(
    vault: &Vault,
    site: SiteId,
    reply: &ValidReply,
    body_public: String,
    author_hash: &AuthorHash,
    place: Place,
    text: spam::Analysis,
    assessment: Assessment,
    status: CommentStatus,
    at: DateTime<Utc>,
) -> StoredComment {
    // An email address or phone number the reader typed is kept only sealed.
    let text_kept = KeptText::new(vault, site, place.id, reply.body.as_str(), body_public);
    StoredComment {
        id: place.id,
        site,
        article: reply.article.as_str().to_owned(),
        parent: reply.parent,
        root: place.root,
        path: place.path,
        depth: place.depth,
        status,
        author_name: reply.author.as_str().to_owned(),
        author_website: reply.website.as_ref().map(|w| w.as_str().to_owned()),
        email_sealed: vault.encrypt_email(site, reply.email.as_str()),
        author_hash: author_hash.0.to_vec(),
        avatar_seed: vault.avatar_seed(site, &reply.email.normalized()),
        body: text_kept.body,
        body_sealed: text_kept.body_sealed,
        body_public: text_kept.body_public,
        body_html: text_kept.body_html,
        fingerprint: Some(text.fingerprint),
        features: text.features,
        ip: reply.client.ip.map(|ip| ip.to_string()),
        user_agent: reply.client.user_agent.clone(),
        referrer: reply.client.referrer.clone(),
        score: assessment.score,
        verdict: assessment.verdict,
        reasons: assessment.reasons,
        idempotency_key: reply
            .idempotency_key
            .as_ref()
            .map(|key| vault.idempotency_tag(site, key.as_str())),
        reader_hash: reply
            .reader
            .as_ref()
            .map(|reader| vault.reader_hash(site, reader.as_str()).to_vec()),
        created_at: at,
        updated_at: at,
    }
}

/// The answer to a retried submission: the first result, if it is the same reply.
fn replay(
    earlier: StoredComment,
    reply: &ValidReply,
    author_hash: &AuthorHash,
    vault: &Vault,
) -> Result<StoredComment, SubmitError> {
    // A text that no longer opens (another key) cannot be shown to be the same.
    let same = earlier.article == reply.article.as_str()
        && earlier.author_hash == author_hash.0
        && earlier
            .raw_body(vault)
            .is_ok_and(|text| text == reply.body.as_str());
    if same {
        Ok(earlier)
    } else {
        Err(SubmitError::field(
            "idempotency_key",
            "was already used for a different reply",
        ))
    }
}
