//! The `Comments` service: what an article host's backend calls.
//!
//! Nothing it answers may carry an author's email or any hash of it that is
//! not keyed: responses are built by `convert::public_comment` alone.

use std::{collections::HashMap, sync::Arc};

use tonic::{Request, Response, Status};

use super::{
    auth::{caller, host_site, host_site_id},
    convert::{public_comment, status, timestamp},
    error::{article_closed_status, bad_request, invalid_field},
    fields, paging,
    wire::{ListCommentsResponse, encode_comments},
};
use crate::{
    domain::{ArticleKey, RawReply, ReportOutcome, is_erased, parse_report_text, parse_reporter},
    ids::{CommentId, SiteId},
    privacy::{AuthorHash, Vault, author_view},
    proto::{self, comments_server::Comments},
    spam::form,
    store::{self, Store, ThreadCursor, ThreadOrder},
    submission::{EditRequest, Submitter},
};

const MAX_ARTICLES_PER_COUNT: usize = 500;

pub struct CommentsApi {
    store: Arc<dyn Store>,
    submitter: Submitter,
    /// Signs the form tokens of `PrepareForm` and the author tokens of `SubmitComment`.
    vault: Vault,
    /// Whether the server sends mail: a reader's wish to be told of answers is kept only then.
    mails: bool,
}

impl CommentsApi {
    pub fn new(store: Arc<dyn Store>, submitter: Submitter, vault: Vault) -> Self {
        CommentsApi {
            store,
            submitter,
            vault,
            mails: false,
        }
    }

    /// Keeps readers' wishes to be told of answers: the server sends mail.
    pub fn sending_mail(mut self, mails: bool) -> Self {
        self.mails = mails;
        self
    }
}

/// The reply a `SubmitComment` request carries, a missing author, client or form read as
/// empty fields.
pub(super) fn raw_reply(req: &proto::SubmitCommentRequest) -> RawReply<'_> {
    let author = req.author.as_ref();
    let client = req.client.as_ref();
    let form = req.form.as_ref();
    RawReply {
        article: &req.article,
        parent_id: &req.parent_id,
        author_name: author.map_or("", |a| &a.name),
        author_email: author.map_or("", |a| &a.email),
        author_website: author.map_or("", |a| &a.website),
        body: &req.body,
        ip: client.map_or("", |c| &c.ip),
        user_agent: client.map_or("", |c| &c.user_agent),
        referrer: client.map_or("", |c| &c.referrer),
        form_token: form.map_or("", |f| &f.token),
        honeypot: form.map_or("", |f| &f.honeypot),
        idempotency_key: &req.idempotency_key,
        reader_id: &req.reader_id,
    }
}

impl CommentsApi {
    /// The author an author token of `site` stands for: its comment's. `None` without a token,
    /// or when the comment is gone or its author erased.
    async fn token_author(&self, site: SiteId, token: &str) -> Result<Option<AuthorHash>, Status> {
        if token.is_empty() {
            return Ok(None);
        }
        let found = author_view::verify(self.vault.author_view_keys(), site, token, store::now())
            .map_err(|err| invalid_field("author_token", &err.to_string()))?;
        let comment = self.store.comment(found.comment).await?;
        Ok(comment
            .filter(|comment| comment.site == site && !is_erased(&comment.email_sealed))
            .and_then(|comment| <[u8; 32]>::try_from(comment.author_hash.as_slice()).ok())
            .map(AuthorHash))
    }
}

#[tonic::async_trait]
impl Comments for CommentsApi {
    async fn submit_comment(
        &self,
        request: Request<proto::SubmitCommentRequest>,
    ) -> Result<Response<proto::SubmitCommentResponse>, Status> {
        let credential = caller(&request)?;
        let site = host_site(self.store.as_ref(), &credential).await?;
        let req = request.into_inner();
        let published_at = fields::time("article_published_at", req.article_published_at.as_ref())?;
        let stored = self
            .submitter
            .submit(&site, &raw_reply(&req), published_at, &credential.prefix)
            .await?;
        let author_token = author_view::issue(
            self.vault.author_view_key(),
            site.id,
            stored.id,
            store::now(),
        );
        if req.notify_replies && self.mails {
            // The reply is stored and answered either way: a wish not kept is logged.
            if let Err(err) = self.submitter.watch_replies(&site, &stored).await {
                tracing::warn!(error = %err, comment = %stored.id, "cannot keep a reader's wish to be told of answers");
            }
        }
        Ok(Response::new(proto::SubmitCommentResponse {
            status: status(stored.status).into(),
            comment: Some(public_comment(&stored)),
            author_token,
        }))
    }

    async fn list_comments(
        &self,
        request: Request<proto::ListCommentsRequest>,
    ) -> Result<Response<ListCommentsResponse>, Status> {
        let credential = caller(&request)?;
        let site = host_site_id(&credential)?;
        let req = request.into_inner();
        let article = fields::article(&req.article)?;
        let order = match proto::ListOrder::try_from(req.order) {
            Ok(proto::ListOrder::NewestFirst) => ThreadOrder::NewestFirst,
            Ok(_) => ThreadOrder::OldestFirst,
            Err(_) => return Err(invalid_field("order", "is not a known order")),
        };
        let after = paging::decode_thread(order, &req.page_token)?;
        let size = paging::page_size(req.page_size, 50, 200);
        let author = self.token_author(site, &req.author_token).await?;
        let next_cursor = |last: &store::StoredComment| {
            let cursor = ThreadCursor {
                root: last.root,
                path: last.path.clone(),
            };
            paging::encode_thread(order, &cursor)
        };
        // One row more than asked tells whether another page follows.
        let own_page;
        let page = match &author {
            Some(author) => {
                own_page = self
                    .store
                    .own_thread_page(site, &article, order, after.as_ref(), size + 1, author)
                    .await?;
                None
            }
            None => {
                own_page = Vec::new();
                Some(
                    self.store
                        .thread_page(site, &article, order, after.as_ref(), size + 1)
                        .await?,
                )
            }
        };
        let listed = page.as_ref().map_or(&own_page, |page| &page.comments);
        let (shown, next_page_token) = paging::split_page(listed, size, next_cursor);
        let total_count = self
            .store
            .count_approved(site, std::slice::from_ref(&article))
            .await?
            .get(article.as_str())
            .copied()
            .unwrap_or(0);
        let published_at = fields::time("article_published_at", req.article_published_at.as_ref())?;
        let closed = self
            .store
            .article_clock(site, &article)
            .await?
            .is_closed(store::now(), published_at);
        // A cached page is encoded by the first call that sends it; one author's is not kept.
        let comments = match &page {
            Some(page) => page
                .wire
                .get_or_init(|| encode_comments(shown.iter().map(public_comment)))
                .clone(),
            None => encode_comments(shown.iter().map(public_comment)),
        };
        Ok(Response::new(ListCommentsResponse::encoded(
            comments,
            next_page_token,
            total_count,
            closed,
        )))
    }

    async fn count_comments(
        &self,
        request: Request<proto::CountCommentsRequest>,
    ) -> Result<Response<proto::CountCommentsResponse>, Status> {
        let credential = caller(&request)?;
        let site = host_site_id(&credential)?;
        let articles = request.into_inner().articles;
        if articles.len() > MAX_ARTICLES_PER_COUNT {
            return Err(invalid_field("articles", "must name at most 500 articles"));
        }
        // Counted as submissions store them; answered under the keys the host sent.
        let mut keys = Vec::with_capacity(articles.len());
        let mut bad = Vec::new();
        for (i, article) in articles.iter().enumerate() {
            match ArticleKey::parse(article) {
                Ok(key) => keys.push(key),
                Err(description) => bad.push((format!("articles[{i}]"), description)),
            }
        }
        if !bad.is_empty() {
            return Err(bad_request("some articles are not article keys", bad));
        }
        let found = self.store.count_approved(site, &keys).await?;
        let counts: HashMap<String, u64> = articles
            .into_iter()
            .zip(keys)
            .map(|(article, key)| {
                let n = found.get(key.as_str()).copied().unwrap_or(0);
                (article, n)
            })
            .collect();
        Ok(Response::new(proto::CountCommentsResponse { counts }))
    }

    async fn report_comment(
        &self,
        request: Request<proto::ReportCommentRequest>,
    ) -> Result<Response<proto::ReportCommentResponse>, Status> {
        let credential = caller(&request)?;
        let site = host_site(self.store.as_ref(), &credential).await?;
        let req = request.into_inner();
        let comment = CommentId(fields::id("comment_id", &req.comment_id)?);
        let reason = fields::report_reason(req.reason)?;
        let text = parse_report_text(&req.text).map_err(|why| invalid_field("text", why))?;
        let reporter =
            parse_reporter(&req.reporter).map_err(|why| invalid_field("reporter", why))?;
        let outcome = self
            .submitter
            .report(&site, comment, reporter, reason, text, &credential.prefix)
            .await?;
        match outcome {
            ReportOutcome::NotFound => Err(Status::not_found("no such comment")),
            ReportOutcome::Stored { added, held } => {
                tracing::info!(comment = %comment, reason = reason.as_str(), added, held, "reported");
                Ok(Response::new(proto::ReportCommentResponse {
                    counted: added,
                }))
            }
        }
    }

    async fn edit_comment(
        &self,
        request: Request<proto::EditCommentRequest>,
    ) -> Result<Response<proto::EditCommentResponse>, Status> {
        let credential = caller(&request)?;
        let site = host_site(self.store.as_ref(), &credential).await?;
        let req = request.into_inner();
        let comment = CommentId(fields::id("comment_id", &req.comment_id)?);
        let token = author_view::verify(
            self.vault.author_view_keys(),
            site.id,
            fields::author_token(&req.author_token)?,
            store::now(),
        )
        .map_err(|err| invalid_field("author_token", &err.to_string()))?;
        let edited = self
            .submitter
            .edit(
                &site,
                &EditRequest {
                    comment,
                    token_comment: token.comment,
                    body: &req.body,
                    actor: &credential.prefix,
                },
            )
            .await?;
        Ok(Response::new(proto::EditCommentResponse {
            status: status(edited.comment.status).into(),
            comment: Some(public_comment(&edited.comment)),
            changed: edited.changed,
        }))
    }

    async fn prepare_form(
        &self,
        request: Request<proto::PrepareFormRequest>,
    ) -> Result<Response<proto::PrepareFormResponse>, Status> {
        let credential = caller(&request)?;
        let site = host_site_id(&credential)?;
        let req = request.get_ref();
        let article = fields::article(&req.article)?;
        let published_at = fields::time("article_published_at", req.article_published_at.as_ref())?;
        let clock = self.store.article_clock(site, &article).await?;
        if clock.is_closed(store::now(), published_at) {
            return Err(article_closed_status());
        }
        let (token, expires_at) =
            form::issue(self.vault.form_key(), site, article.as_str(), store::now());
        Ok(Response::new(proto::PrepareFormResponse {
            token,
            expires_at: Some(timestamp(expires_at)),
        }))
    }

    async fn confirm_email(
        &self,
        request: Request<proto::ConfirmEmailRequest>,
    ) -> Result<Response<proto::ConfirmEmailResponse>, Status> {
        let credential = caller(&request)?;
        let site = host_site_id(&credential)?;
        if !self
            .submitter
            .confirm_email(site, request.get_ref().token.trim())
            .await?
        {
            return Err(Status::not_found("no such confirmation token"));
        }
        Ok(Response::new(proto::ConfirmEmailResponse {}))
    }

    async fn unsubscribe(
        &self,
        request: Request<proto::UnsubscribeRequest>,
    ) -> Result<Response<proto::UnsubscribeResponse>, Status> {
        let credential = caller(&request)?;
        let site = host_site_id(&credential)?;
        if !self
            .submitter
            .unsubscribe(site, request.get_ref().token.trim())
            .await?
        {
            return Err(Status::not_found("no such unsubscribe token"));
        }
        Ok(Response::new(proto::UnsubscribeResponse {}))
    }
}
