//! The `Moderation` service: what moderators call, through `replyctl`.
//!
//! Every handler first checks that the caller's token carries the scope the
//! call needs, then resolves which sites it covers; a comment of any other
//! site is answered as if it did not exist. An email in clear leaves only
//! after its audit row is committed.

use chrono::{DateTime, Utc};
use std::{
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::Stream;
use tokio::sync::{broadcast, watch};
use tonic::{Code, Request, Response, Status};

use super::{
    auth::{TokenDigest, caller_with_scope, may_moderate, moderated_site},
    convert::{
        audit_entry, author_comment, block_entry, closed_article, merge_policy, policy,
        policy_trial, queue_item, reported_comment, status,
    },
    error::{bad_request, invalid_field},
    fields,
    guard::{Guard, WatchSlot},
    paging, prefixes,
};
use crate::{
    domain::{
        ArticleClosing, BlockKind, BlockLifetime, Blocked, CommentStatus, DecisionOutcome,
        NewBlock, QueueEvent, Scope,
    },
    metrics,
    moderation::Decision,
    moderation::Moderator,
    privacy::Vault,
    proto::{self, moderation_server::Moderation},
    spam::Policy,
    store::{self, Credential, ListingEvent, ListingEvents, Site, Store},
    submission::Submitter,
};

const MAX_IDS_PER_DECISION: usize = 1000;

pub struct ModerationApi {
    store: Arc<dyn Store>,
    moderator: Moderator,
    /// Replays replies for a policy's dry run.
    submitter: Submitter,
    vault: Vault,
    guard: Arc<Guard>,
    /// Turns true when the server begins to shut down.
    closing: watch::Receiver<bool>,
}

impl ModerationApi {
    pub fn new(
        store: Arc<dyn Store>,
        vault: Vault,
        submitter: Submitter,
        guard: Arc<Guard>,
        closing: watch::Receiver<bool>,
    ) -> Self {
        ModerationApi {
            moderator: Moderator::new(Arc::clone(&store), vault.clone()),
            submitter,
            store,
            vault,
            guard,
            closing,
        }
    }

    /// Decisions also teach the deployment's shared counts when `shares`.
    pub fn sharing_lessons(self, shares: bool) -> Self {
        ModerationApi {
            moderator: self.moderator.sharing_lessons(shares),
            ..self
        }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<proto::WatchQueueResponse, Status>> + Send>>;

/// Why a watch ends: the watcher cannot know which replies it was not told of.
const MISSED_REPLIES: &str = "new replies may have gone unannounced (this server lost its \
    notifications from other replicas, or the watcher fell behind); list the pending queue \
    and watch again";

/// Why a watch ends when its server shuts down.
const SHUTTING_DOWN: &str = "this server is shutting down; watch again (another replica, or \
    this one once it is back)";

/// How often an open watch reads its token again: a revoked token, or one that lost its
/// scope or site, ends its watches within this time after the revocation is in force.
const WATCH_RECHECK: Duration = Duration::from_millis(250);

/// One `WatchQueue` call: the new comments of every site, of which it tells the caller the
/// pending ones of its site, and whether the store still hears other replicas' commits.
struct Watch {
    queue: broadcast::Receiver<QueueEvent>,
    listing: Option<ListingEvents>,
    store: Arc<dyn Store>,
    vault: Vault,
    site: Site,
    /// The token it was opened with, read again every [`WATCH_RECHECK`].
    token: TokenDigest,
    recheck: tokio::time::Interval,
    closing: watch::Receiver<bool>,
    /// Counts it against its token's watches while it lives.
    _slot: WatchSlot,
}

impl Watch {
    /// The next pending reply of the site; an error, after which nothing more is told, once
    /// a reply may have been missed, the token no longer allows it, or the server shuts down.
    async fn next(&mut self) -> Option<Result<proto::WatchQueueResponse, Status>> {
        loop {
            let event = tokio::select! {
                _ = self.closing.wait_for(|closing| *closing) => {
                    return Some(Err(Status::unavailable(SHUTTING_DOWN)));
                }
                // A lost notification channel first: replies committed elsewhere during the
                // gap would never be told.
                Some(interrupted) = next_interruption(self.listing.as_mut()) => {
                    tracing::warn!(reason = interrupted, "a queue watch ends: replies may be missed");
                    return Some(Err(Status::unavailable(MISSED_REPLIES)));
                }
                _ = self.recheck.tick() => None,
                event = self.queue.recv() => Some(event),
            };
            let Some(event) = event else {
                if let Err(status) = self.still_allowed().await {
                    tracing::info!(code = ?status.code(), "a queue watch ends: its token no longer allows it");
                    return Some(Err(status));
                }
                continue;
            };
            let event = match event {
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "a queue watcher fell behind");
                    return Some(Err(Status::unavailable(MISSED_REPLIES)));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            if event.site != self.site.id || event.status != CommentStatus::Pending {
                continue;
            }
            match self.store.comment(event.comment).await {
                // Decided or deleted before we got to it: nothing to watch.
                Ok(Some(comment)) if comment.status == CommentStatus::Pending => {
                    return Some(Ok(proto::WatchQueueResponse {
                        item: Some(queue_item(&self.site, &comment, &self.vault)),
                    }));
                }
                Ok(_) => continue,
                Err(err) => return Some(Err(err.into())),
            }
        }
    }
}

impl Watch {
    /// Whether the watch's token still exists, and still covers its site with the `moderate`
    /// scope.
    async fn still_allowed(&self) -> Result<(), Status> {
        let credential = self
            .store
            .credential(&self.token.0)
            .await?
            .ok_or_else(|| Status::unauthenticated("this token was revoked"))?;
        if !credential.has_scope(Scope::Moderate) {
            return Err(Status::permission_denied(
                "this token no longer carries the `moderate` scope",
            ));
        }
        if !may_moderate(&credential, self.site.id) {
            return Err(Status::permission_denied(format!(
                "this token no longer covers site {:?}",
                self.site.name
            )));
        }
        Ok(())
    }
}

/// Resolves when the store stops hearing other replicas (or its watchers fell behind its
/// listing events); never for a store that has no other replicas to hear.
async fn next_interruption(listing: Option<&mut ListingEvents>) -> Option<&'static str> {
    let Some(listing) = listing else {
        return std::future::pending().await;
    };
    loop {
        match listing.events.recv().await {
            Ok(ListingEvent::Interrupted) => return Some("notifications interrupted"),
            Err(broadcast::error::RecvError::Lagged(_)) => return Some("listing events lagged"),
            Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
            Ok(_) => {}
        }
    }
}

#[tonic::async_trait]
impl Moderation for ModerationApi {
    async fn list_queue(
        &self,
        request: Request<proto::ListQueueRequest>,
    ) -> Result<Response<proto::ListQueueResponse>, Status> {
        let credential = caller_with_scope(self.store.as_ref(), &request, Scope::Moderate).await?;
        let req = request.into_inner();
        let site = moderated_site(self.store.as_ref(), &credential, &req.site).await?;
        let queue = match req.status {
            0 => CommentStatus::Pending,
            other => fields::comment_status("status", other)?,
        };
        let after = paging::decode_queue(&req.page_token)?;
        let size = paging::page_size(req.page_size, 50, 500);
        let article = match req.article.as_str() {
            "" => None,
            article => Some(fields::article(article)?),
        };
        let mut page = self
            .store
            .queue_page(site.id, queue, article.as_ref(), after, size + 1)
            .await?;
        let next_page_token =
            paging::next_token(&mut page, size, |last| paging::encode_queue(last.id));
        Ok(Response::new(proto::ListQueueResponse {
            items: page
                .iter()
                .map(|c| queue_item(&site, c, &self.vault))
                .collect(),
            next_page_token,
        }))
    }

    async fn get_comment(
        &self,
        request: Request<proto::GetCommentRequest>,
    ) -> Result<Response<proto::GetCommentResponse>, Status> {
        let credential = caller_with_scope(self.store.as_ref(), &request, Scope::Moderate).await?;
        let id = prefixes::one_comment(
            self.store.as_ref(),
            &credential,
            "id",
            &request.get_ref().id,
        )
        .await?;
        let not_found = || Status::not_found(format!("no comment {id}"));
        let comment = self
            .store
            .comment(id)
            .await?
            .filter(|c| may_moderate(&credential, c.site))
            .ok_or_else(not_found)?;
        let site = self
            .store
            .site_by_id(comment.site)
            .await?
            .ok_or_else(not_found)?;
        let history = self.store.history(id).await?;
        Ok(Response::new(proto::GetCommentResponse {
            comment: Some(queue_item(&site, &comment, &self.vault)),
            history: history.iter().map(audit_entry).collect(),
        }))
    }

    async fn moderate(
        &self,
        request: Request<proto::ModerateRequest>,
    ) -> Result<Response<proto::ModerateResponse>, Status> {
        let credential = caller_with_scope(self.store.as_ref(), &request, Scope::Moderate).await?;
        let req = request.into_inner();
        let action = fields::action(req.action)?;
        if req.ids.is_empty() {
            return Err(invalid_field("ids", "must name at least one comment"));
        }
        if req.ids.len() > MAX_IDS_PER_DECISION {
            return Err(invalid_field("ids", "must name at most 1000 comments"));
        }
        let expected = req
            .expected_status
            .map(|value| fields::comment_status("expected_status", value))
            .transpose()?;
        let note = fields::audit_note("note", &req.note)?;
        let mut results = Vec::with_capacity(req.ids.len());
        for raw_id in req.ids {
            let resolved = prefixes::comment_id(self.store.as_ref(), &credential, &raw_id).await?;
            // A start of an id is answered under the whole id it names.
            let answered = resolved.as_ref().map_or(raw_id, ToString::to_string);
            let result =
                |code: Code, message: String, to: Option<CommentStatus>| proto::ModerateResult {
                    id: answered.clone(),
                    code: code as i32,
                    message,
                    status: to.map_or(proto::CommentStatus::Unspecified, status).into(),
                };
            let id = match resolved {
                Ok(id) => id,
                Err(unresolved) => {
                    results.push(result(unresolved.code(), unresolved.describe(), None));
                    continue;
                }
            };
            let decision = Decision {
                comment: id,
                action,
                actor: &credential.prefix,
                note,
                expected,
            };
            let outcome = self.moderator.decide(&credential.sites, &decision).await;
            results.push(match outcome {
                // One failure must not hide the decisions already applied.
                Err(err) => {
                    let status = Status::from(err);
                    result(status.code(), status.message().to_owned(), None)
                }
                Ok(DecisionOutcome::Applied { from, to }) => {
                    metrics::record_decision(action.as_str());
                    tracing::info!(comment = %id, action = action.as_str(), %from, "decided");
                    result(Code::Ok, String::new(), to)
                }
                Ok(DecisionOutcome::NotFound) => {
                    result(Code::NotFound, format!("no comment {id}"), None)
                }
                Ok(DecisionOutcome::Conflict { actual }) => result(
                    Code::FailedPrecondition,
                    format!("the comment is {actual} now"),
                    Some(actual),
                ),
                Ok(DecisionOutcome::Unchanged { status }) => result(
                    Code::Ok,
                    format!("already {status}: nothing changed"),
                    Some(status),
                ),
            });
        }
        Ok(Response::new(proto::ModerateResponse { results }))
    }

    type WatchQueueStream = WatchStream;

    async fn watch_queue(
        &self,
        request: Request<proto::WatchQueueRequest>,
    ) -> Result<Response<Self::WatchQueueStream>, Status> {
        let credential = caller_with_scope(self.store.as_ref(), &request, Scope::Moderate).await?;
        let token = *request
            .extensions()
            .get::<TokenDigest>()
            .ok_or_else(|| Status::unauthenticated("missing credential"))?;
        let site =
            moderated_site(self.store.as_ref(), &credential, &request.get_ref().site).await?;
        if *self.closing.borrow() {
            return Err(Status::unavailable(SHUTTING_DOWN));
        }
        let slot = self.guard.open_watch(credential.id)?;
        let mut recheck = tokio::time::interval(WATCH_RECHECK);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Subscribe before answering: a reply committed after the caller sees
        // the response headers is never missed.
        let watch = Watch {
            queue: self.store.subscribe(),
            listing: self.store.listing_events(),
            store: Arc::clone(&self.store),
            vault: self.vault.clone(),
            site,
            token,
            recheck,
            closing: self.closing.clone(),
            _slot: slot,
        };
        if watch.listing.as_ref().is_some_and(|l| !l.listening) {
            return Err(Status::unavailable(MISSED_REPLIES));
        }
        Ok(Response::new(Box::pin(futures_util::stream::unfold(
            Some(watch),
            |watch| async move {
                let mut watch = watch?;
                let next = watch.next().await;
                // After an error the stream ends: what follows may have gaps.
                let more = matches!(next, Some(Ok(_)));
                next.map(|item| (item, more.then_some(watch)))
            },
        ))))
    }

    async fn get_policy(
        &self,
        request: Request<proto::GetPolicyRequest>,
    ) -> Result<Response<proto::GetPolicyResponse>, Status> {
        let credential = caller_with_scope(self.store.as_ref(), &request, Scope::Policy).await?;
        let site =
            moderated_site(self.store.as_ref(), &credential, &request.get_ref().site).await?;
        Ok(Response::new(proto::GetPolicyResponse {
            policy: Some(policy(&site.policy)),
        }))
    }

    async fn update_policy(
        &self,
        request: Request<proto::UpdatePolicyRequest>,
    ) -> Result<Response<proto::UpdatePolicyResponse>, Status> {
        let credential = caller_with_scope(self.store.as_ref(), &request, Scope::Policy).await?;
        let req = request.into_inner();
        let site = moderated_site(self.store.as_ref(), &credential, &req.site).await?;
        let update = req
            .policy
            .ok_or_else(|| invalid_field("policy", "is required"))?;
        // The update names only what it changes, and is merged into the policy as stored
        // when it is stored, so a change another moderator stored meanwhile is kept.
        let mut bad = Vec::new();
        let mut changed = String::new();
        let site = self
            .moderator
            .update_policy(site.id, &credential.prefix, &mut |stored| {
                bad.clear();
                match updated_policy(stored, update.clone()) {
                    Ok(Some((updated, fields))) => {
                        changed.clone_from(&fields);
                        Some((updated, fields))
                    }
                    Ok(None) => None,
                    Err(errors) => {
                        bad = errors;
                        None
                    }
                }
            })
            .await?;
        if !bad.is_empty() {
            return Err(bad_request("the policy has invalid fields", bad));
        }
        if !changed.is_empty() {
            tracing::info!(site = %site.name, changed = %changed, "policy changed");
        }
        Ok(Response::new(proto::UpdatePolicyResponse {
            policy: Some(policy(&site.policy)),
        }))
    }

    async fn try_policy(
        &self,
        request: Request<proto::TryPolicyRequest>,
    ) -> Result<Response<proto::TryPolicyResponse>, Status> {
        let credential = caller_with_scope(self.store.as_ref(), &request, Scope::Policy).await?;
        let req = request.into_inner();
        let site = moderated_site(self.store.as_ref(), &credential, &req.site).await?;
        let update = req
            .policy
            .ok_or_else(|| invalid_field("policy", "is required"))?;
        let days = fields::trial_days(req.days)?;
        let (proposed, changed) = match updated_policy(&site.policy, update) {
            Ok(Some((proposed, fields))) => (proposed, fields),
            Ok(None) => (site.policy.clone(), String::new()),
            Err(bad) => return Err(bad_request("the policy has invalid fields", bad)),
        };
        let started = Instant::now();
        let trial = self
            .submitter
            .try_policy(site.id, &site.policy, &proposed, days)
            .await?;
        tracing::info!(
            site = %site.name,
            days,
            changed = %changed,
            replayed = trial.replayed,
            unchanged = trial.unchanged,
            took_ms = started.elapsed().as_millis(),
            "policy tried"
        );
        Ok(Response::new(policy_trial(&trial, &changed)))
    }

    async fn erase_author(
        &self,
        request: Request<proto::EraseAuthorRequest>,
    ) -> Result<Response<proto::EraseAuthorResponse>, Status> {
        let credential = caller_with_scope(self.store.as_ref(), &request, Scope::Erase).await?;
        let req = request.into_inner();
        let site = moderated_site(self.store.as_ref(), &credential, &req.site).await?;
        let email = fields::author_email(&req.email)?;
        let author = self.moderator.author(site.id, &email.normalized());
        if req.dry_run {
            let comments = self.store.comments_by_author(site.id, &author).await?;
            return Ok(Response::new(proto::EraseAuthorResponse {
                comments_affected: comments.len() as u64,
            }));
        }
        let comments_affected = self
            .moderator
            .erase_author(site.id, &author, req.remove_bodies, &credential.prefix)
            .await?;
        tracing::info!(site = %site.name, comments = comments_affected, "author erased");
        Ok(Response::new(proto::EraseAuthorResponse {
            comments_affected,
        }))
    }

    async fn list_audit(
        &self,
        request: Request<proto::ListAuditRequest>,
    ) -> Result<Response<proto::ListAuditResponse>, Status> {
        let credential = caller_with_scope(self.store.as_ref(), &request, Scope::Moderate).await?;
        let req = request.into_inner();
        let site = moderated_site(self.store.as_ref(), &credential, &req.site).await?;
        let comment = match req.comment_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(id) => Some(
                prefixes::one_comment(self.store.as_ref(), &credential, "comment_id", id).await?,
            ),
        };
        let action = match req.action.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(action) => Some(fields::audit_action(action)?),
        };
        let before = paging::decode_audit(&req.page_token)?;
        let size = paging::page_size(req.page_size, 50, 500);
        let mut page = self
            .store
            .audit_page(site.id, comment, action, before, size + 1)
            .await?;
        let next_page_token =
            paging::next_token(&mut page, size, |last| paging::encode_audit(last.id));
        Ok(Response::new(proto::ListAuditResponse {
            entries: page.iter().map(audit_entry).collect(),
            next_page_token,
        }))
    }

    async fn reveal_email(
        &self,
        request: Request<proto::RevealEmailRequest>,
    ) -> Result<Response<proto::RevealEmailResponse>, Status> {
        let credential =
            caller_with_scope(self.store.as_ref(), &request, Scope::RevealEmail).await?;
        let req = request.into_inner();
        let id = prefixes::one_comment(self.store.as_ref(), &credential, "id", &req.id).await?;
        let reason = fields::audit_note("reason", &req.reason)?
            .ok_or_else(|| invalid_field("reason", "is required: say why the email is needed"))?;
        let email = self
            .moderator
            .reveal_email(
                id,
                |site| may_moderate(&credential, site),
                reason,
                &credential.prefix,
            )
            .await?;
        tracing::info!(comment = %id, "email revealed");
        Ok(Response::new(proto::RevealEmailResponse { email }))
    }

    async fn block(
        &self,
        request: Request<proto::BlockRequest>,
    ) -> Result<Response<proto::BlockResponse>, Status> {
        let credential = caller_with_scope(self.store.as_ref(), &request, Scope::Moderate).await?;
        let req = request.into_inner();
        let site = moderated_site(self.store.as_ref(), &credential, &req.site).await?;
        let kind = fields::block_kind(req.kind)?;
        let blocked = match (kind, req.email.trim().is_empty()) {
            (_, true) => fields::blocked(kind, &req.value)?,
            (BlockKind::Author, false) if req.value.trim().is_empty() => {
                // The answer names the author's hash, which the queue shows beside every
                // reply: naming an author by email would confirm a guessed address to any
                // moderator. Only those who may read or erase an author's data by email may.
                if !(credential.has_scope(Scope::RevealEmail) || credential.has_scope(Scope::Erase))
                {
                    return Err(Status::permission_denied(
                        "naming an author by email needs the `reveal-email` or `erase` scope; \
                         block by the author hash the queue shows instead, or ask the operator \
                         for a token with `replyguard token add --scopes moderate,reveal-email`",
                    ));
                }
                let email = fields::author_email(&req.email)?;
                Blocked::Author(self.moderator.author(site.id, &email.normalized()))
            }
            (BlockKind::Author, false) => {
                return Err(invalid_field(
                    "email",
                    "names the author instead of value; give one",
                ));
            }
            (_, false) => return Err(invalid_field("email", "is only for AUTHOR")),
        };
        let note = fields::audit_note("note", &req.note)?;
        let lifetime = BlockLifetime::parse(req.for_seconds)
            .map_err(|description| invalid_field("for_seconds", description))?;
        let outcome = self
            .moderator
            .block(
                &NewBlock {
                    site: site.id,
                    blocked: &blocked,
                    actor: &credential.prefix,
                    note,
                    expires_at: lifetime.map(|lifetime| lifetime.ends(store::now())),
                },
                req.reject_pending,
            )
            .await?;
        tracing::info!(
            site = %site.name,
            kind = %kind,
            added = outcome.added,
            rejected = outcome.rejected.len(),
            "blocked"
        );
        Ok(Response::new(proto::BlockResponse {
            entry: Some(block_entry(&outcome.entry)),
            already_blocked: !outcome.added,
            rejected_ids: outcome.rejected.iter().map(|id| id.to_string()).collect(),
        }))
    }

    async fn list_blocks(
        &self,
        request: Request<proto::ListBlocksRequest>,
    ) -> Result<Response<proto::ListBlocksResponse>, Status> {
        let credential = caller_with_scope(self.store.as_ref(), &request, Scope::Moderate).await?;
        let req = request.into_inner();
        let site = moderated_site(self.store.as_ref(), &credential, &req.site).await?;
        let after = paging::decode_block(&req.page_token)?;
        let size = paging::page_size(req.page_size, 100, 1000);
        let mut page = self
            .store
            .blocklist(site.id, after.as_ref(), size + 1)
            .await?;
        let next_page_token =
            paging::next_token(&mut page, size, |last| paging::encode_block(&last.blocked));
        Ok(Response::new(proto::ListBlocksResponse {
            entries: page.iter().map(block_entry).collect(),
            next_page_token,
        }))
    }

    async fn unblock(
        &self,
        request: Request<proto::UnblockRequest>,
    ) -> Result<Response<proto::UnblockResponse>, Status> {
        let credential = caller_with_scope(self.store.as_ref(), &request, Scope::Moderate).await?;
        let req = request.into_inner();
        let site = moderated_site(self.store.as_ref(), &credential, &req.site).await?;
        let kind = fields::block_kind(req.kind)?;
        let blocked = fields::blocked(kind, &req.value)?;
        let note = fields::audit_note("note", &req.note)?;
        let removed = self
            .moderator
            .unblock(&NewBlock {
                site: site.id,
                blocked: &blocked,
                actor: &credential.prefix,
                note,
                expires_at: None,
            })
            .await?;
        tracing::info!(site = %site.name, kind = %kind, removed, "unblocked");
        Ok(Response::new(proto::UnblockResponse { removed }))
    }

    async fn export_author(
        &self,
        request: Request<proto::ExportAuthorRequest>,
    ) -> Result<Response<proto::ExportAuthorResponse>, Status> {
        let credential = caller_with_scope(self.store.as_ref(), &request, Scope::Erase).await?;
        let req = request.into_inner();
        let site = moderated_site(self.store.as_ref(), &credential, &req.site).await?;
        let email = fields::author_email(&req.email)?;
        let author = self.moderator.author(site.id, &email.normalized());
        let stored = self
            .moderator
            .export_author(site.id, &author, &credential.prefix)
            .await?;
        let comments: Vec<proto::AuthorComment> = stored
            .iter()
            .map(|comment| author_comment(comment, &self.vault))
            .collect();
        let mail = self.store.author_mail(site.id, &author.0).await?;
        tracing::info!(site = %site.name, comments = comments.len(), "author exported");
        Ok(Response::new(proto::ExportAuthorResponse {
            site: site.name,
            comments,
            mail: Some(proto::AuthorMail {
                reader_state: mail.reader.unwrap_or_default(),
                confirmed_at: mail.confirmed_at.map(super::convert::timestamp),
                watched_comment_ids: mail.watched.iter().map(|c| c.to_string()).collect(),
                notices: u32::try_from(mail.notices).unwrap_or(u32::MAX),
                mails: u32::try_from(mail.mails).unwrap_or(u32::MAX),
            }),
        }))
    }

    async fn close_article(
        &self,
        request: Request<proto::CloseArticleRequest>,
    ) -> Result<Response<proto::CloseArticleResponse>, Status> {
        let credential = caller_with_scope(self.store.as_ref(), &request, Scope::Moderate).await?;
        let req = request.into_inner();
        let at = fields::time("close_at", req.close_at.as_ref())?;
        let changed = self
            .set_closed(&credential, &req.site, &req.article, &req.note, true, at)
            .await?;
        Ok(Response::new(proto::CloseArticleResponse {
            already_closed: !changed,
        }))
    }

    async fn reopen_article(
        &self,
        request: Request<proto::ReopenArticleRequest>,
    ) -> Result<Response<proto::ReopenArticleResponse>, Status> {
        let credential = caller_with_scope(self.store.as_ref(), &request, Scope::Moderate).await?;
        let req = request.into_inner();
        let reopened = self
            .set_closed(&credential, &req.site, &req.article, &req.note, false, None)
            .await?;
        Ok(Response::new(proto::ReopenArticleResponse { reopened }))
    }

    async fn list_reports(
        &self,
        request: Request<proto::ListReportsRequest>,
    ) -> Result<Response<proto::ListReportsResponse>, Status> {
        let credential = caller_with_scope(self.store.as_ref(), &request, Scope::Moderate).await?;
        let req = request.into_inner();
        let site = moderated_site(self.store.as_ref(), &credential, &req.site).await?;
        let after = paging::decode_queue(&req.page_token)?;
        let size = paging::page_size(req.page_size, 50, 200);
        let mut page = self
            .store
            .reported_comments(site.id, after, size + 1)
            .await?;
        let next_page_token =
            paging::next_token(&mut page, size, |last| paging::encode_queue(last.comment));
        Ok(Response::new(proto::ListReportsResponse {
            comments: page.iter().map(reported_comment).collect(),
            next_page_token,
        }))
    }

    async fn list_closed_articles(
        &self,
        request: Request<proto::ListClosedArticlesRequest>,
    ) -> Result<Response<proto::ListClosedArticlesResponse>, Status> {
        let credential = caller_with_scope(self.store.as_ref(), &request, Scope::Moderate).await?;
        let req = request.into_inner();
        let site = moderated_site(self.store.as_ref(), &credential, &req.site).await?;
        let after = paging::decode_closed(&req.page_token)?;
        let size = paging::page_size(req.page_size, 100, 1000);
        let mut page = self
            .store
            .closed_articles(site.id, after.as_deref(), size + 1)
            .await?;
        let next_page_token =
            paging::next_token(&mut page, size, |last| paging::encode_closed(&last.article));
        Ok(Response::new(proto::ListClosedArticlesResponse {
            articles: page.iter().map(closed_article).collect(),
            next_page_token,
        }))
    }
}

/// What [`updated_policy`] makes of an update.
pub(super) type PolicyUpdate = Result<Option<(Policy, String)>, Vec<(String, String)>>;

/// `update` merged into the `stored` policy and checked: the policy to store with the fields
/// it changes, joined for the log and the audit row; `None` when it changes nothing (and then
/// nothing is stored or audited); or every bad field, when nothing may be stored.
pub(super) fn updated_policy(stored: &Policy, update: proto::Policy) -> PolicyUpdate {
    let (updated, mut bad) = merge_policy(stored, update);
    bad.extend(
        updated
            .validate()
            .into_iter()
            .map(|(field, description)| (format!("policy.{field}"), description)),
    );
    if !bad.is_empty() {
        return Err(bad);
    }
    let fields = updated.changes_from(stored);
    Ok((!fields.is_empty()).then(|| (updated, fields.join(", "))))
}

impl ModerationApi {
    /// Closes an article or opens it again; false when it already was so.
    async fn set_closed(
        &self,
        credential: &Credential,
        site: &str,
        article: &str,
        note: &str,
        closed: bool,
        at: Option<DateTime<Utc>>,
    ) -> Result<bool, Status> {
        let site = moderated_site(self.store.as_ref(), credential, site).await?;
        let article = fields::article(article)?;
        let note = fields::audit_note("note", note)?;
        let changed = self
            .moderator
            .set_closed(&ArticleClosing {
                site: site.id,
                article: article.as_str(),
                closed,
                actor: &credential.prefix,
                note,
                at,
            })
            .await?;
        tracing::info!(site = %site.name, closed, changed, "article closed or reopened");
        Ok(changed)
    }
}
