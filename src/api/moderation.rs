//! The `Moderation` service: what moderators call, through `replyctl`.
//!
//! Every handler first resolves which sites the caller's token covers; a
//! comment of any other site is answered as if it did not exist.

use std::{pin::Pin, sync::Arc};

use futures_util::{Stream, StreamExt};
use tokio_stream::wrappers::{BroadcastStream, errors::BroadcastStreamRecvError};
use tonic::{Code, Request, Response, Status};

use super::{
    auth::{caller, may_moderate, moderated_site},
    convert::{action_from, audit_entry, merge_policy, policy, queue_item, status, status_from},
    error::{bad_request, invalid_field, store_status},
    paging,
};
use crate::{
    ids::CommentId,
    metrics,
    moderation::{CommentStatus, Decision, DecisionOutcome},
    privacy::Vault,
    proto::{self, moderation_server::Moderation},
    store::Store,
};

const MAX_IDS_PER_DECISION: usize = 1000;

pub struct ModerationApi {
    store: Arc<dyn Store>,
    vault: Vault,
}

impl ModerationApi {
    pub fn new(store: Arc<dyn Store>, vault: Vault) -> Self {
        ModerationApi { store, vault }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<proto::WatchQueueResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Moderation for ModerationApi {
    async fn list_queue(
        &self,
        request: Request<proto::ListQueueRequest>,
    ) -> Result<Response<proto::ListQueueResponse>, Status> {
        let credential = caller(&request)?;
        let req = request.into_inner();
        let site = moderated_site(self.store.as_ref(), &credential, &req.site).await?;
        let queue = match req.status {
            0 => CommentStatus::Pending,
            other => status_from(other)
                .ok_or_else(|| invalid_field("status", "is not a known status"))?,
        };
        let after = paging::decode_queue(&req.page_token)?;
        let size = paging::page_size(req.page_size, 50, 500);
        let article = Some(req.article.as_str()).filter(|a| !a.is_empty());
        let mut page = self
            .store
            .queue_page(site.id, queue, article, after, size + 1)
            .await
            .map_err(store_status)?;
        let next_page_token = if page.len() > size as usize {
            page.truncate(size as usize);
            page.last()
                .map(|last| paging::encode_queue(last.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
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
        let credential = caller(&request)?;
        let id: CommentId = request
            .get_ref()
            .id
            .parse()
            .map_err(|_| invalid_field("id", "must be a comment id"))?;
        let not_found = || Status::not_found(format!("no comment {id}"));
        let comment = self
            .store
            .comment(id)
            .await
            .map_err(store_status)?
            .filter(|c| may_moderate(&credential, c.site))
            .ok_or_else(not_found)?;
        let site = self
            .store
            .site_by_id(comment.site)
            .await
            .map_err(store_status)?
            .ok_or_else(not_found)?;
        let history = self.store.history(id).await.map_err(store_status)?;
        Ok(Response::new(proto::GetCommentResponse {
            comment: Some(queue_item(&site, &comment, &self.vault)),
            history: history.iter().map(audit_entry).collect(),
        }))
    }

    async fn moderate(
        &self,
        request: Request<proto::ModerateRequest>,
    ) -> Result<Response<proto::ModerateResponse>, Status> {
        let credential = caller(&request)?;
        let req = request.into_inner();
        let action =
            action_from(req.action).ok_or_else(|| invalid_field("action", "is required"))?;
        if req.ids.is_empty() {
            return Err(invalid_field("ids", "must name at least one comment"));
        }
        if req.ids.len() > MAX_IDS_PER_DECISION {
            return Err(invalid_field("ids", "must name at most 1000 comments"));
        }
        let expected = match req.expected_status {
            None => None,
            Some(value) => Some(
                status_from(value)
                    .ok_or_else(|| invalid_field("expected_status", "is not a known status"))?,
            ),
        };
        let note = Some(req.note.trim()).filter(|n| !n.is_empty());
        // Refused on every backend alike: PostgreSQL cannot store NUL in text.
        if note.is_some_and(|n| n.chars().any(|c| c.is_control() && c != '\n' && c != '\t')) {
            return Err(invalid_field(
                "note",
                "must not contain control characters other than newlines and tabs",
            ));
        }
        let mut results = Vec::with_capacity(req.ids.len());
        for raw_id in req.ids {
            let result =
                |code: Code, message: String, to: Option<CommentStatus>| proto::ModerateResult {
                    id: raw_id.clone(),
                    code: code as i32,
                    message,
                    status: to.map_or(proto::CommentStatus::Unspecified, status).into(),
                };
            let Ok(id) = raw_id.parse::<CommentId>() else {
                results.push(result(
                    Code::InvalidArgument,
                    "not a comment id".to_owned(),
                    None,
                ));
                continue;
            };
            let decision = Decision {
                comment: id,
                action,
                actor: &credential.prefix,
                note,
                expected,
            };
            let outcome = self.store.decide(&credential.sites, &decision).await;
            results.push(match outcome {
                // One failure must not hide the decisions already applied.
                Err(err) => {
                    let status = store_status(err);
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
            });
        }
        Ok(Response::new(proto::ModerateResponse { results }))
    }

    type WatchQueueStream = WatchStream;

    async fn watch_queue(
        &self,
        request: Request<proto::WatchQueueRequest>,
    ) -> Result<Response<Self::WatchQueueStream>, Status> {
        let credential = caller(&request)?;
        let site =
            moderated_site(self.store.as_ref(), &credential, &request.get_ref().site).await?;
        // Subscribe before answering: a reply committed after the caller sees
        // the response headers is never missed.
        let events = BroadcastStream::new(self.store.subscribe());
        let store = Arc::clone(&self.store);
        let vault = self.vault.clone();
        let stream = events.filter_map(move |event| {
            let (store, vault, site) = (Arc::clone(&store), vault.clone(), site.clone());
            async move {
                let event = match event {
                    Ok(event) => event,
                    Err(BroadcastStreamRecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "a queue watcher fell behind");
                        return None;
                    }
                };
                if event.site != site.id || event.status != CommentStatus::Pending {
                    return None;
                }
                match store.comment(event.comment).await {
                    // Decided or deleted before we got to it: nothing to watch.
                    Ok(Some(comment)) if comment.status == CommentStatus::Pending => {
                        Some(Ok(proto::WatchQueueResponse {
                            item: Some(queue_item(&site, &comment, &vault)),
                        }))
                    }
                    Ok(_) => None,
                    Err(err) => Some(Err(store_status(err))),
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_policy(
        &self,
        request: Request<proto::GetPolicyRequest>,
    ) -> Result<Response<proto::GetPolicyResponse>, Status> {
        let credential = caller(&request)?;
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
        let credential = caller(&request)?;
        let req = request.into_inner();
        let site = moderated_site(self.store.as_ref(), &credential, &req.site).await?;
        let update = req
            .policy
            .ok_or_else(|| invalid_field("policy", "is required"))?;
        let (updated, mut bad) = merge_policy(&site.policy, update);
        bad.extend(
            updated
                .validate()
                .into_iter()
                .map(|(field, description)| (format!("policy.{field}"), description)),
        );
        if !bad.is_empty() {
            return Err(bad_request("the policy has invalid fields", bad));
        }
        let fields = updated.changes_from(&site.policy);
        if fields.is_empty() {
            // Nothing to store, and nothing to audit.
            return Ok(Response::new(proto::UpdatePolicyResponse {
                policy: Some(policy(&site.policy)),
            }));
        }
        let note = fields.join(", ");
        let site = self
            .store
            .update_policy(site.id, &updated, &credential.prefix, &note)
            .await
            .map_err(store_status)?;
        tracing::info!(site = %site.name, changed = %note, "policy changed");
        Ok(Response::new(proto::UpdatePolicyResponse {
            policy: Some(policy(&site.policy)),
        }))
    }

    async fn erase_author(
        &self,
        _request: Request<proto::EraseAuthorRequest>,
    ) -> Result<Response<proto::EraseAuthorResponse>, Status> {
        Err(Status::unimplemented(
            "erasing authors is not available yet",
        ))
    }
}
