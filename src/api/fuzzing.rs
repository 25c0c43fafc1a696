//! The handlers' steps that need neither a credential nor the store, open to `replyguard fuzz`
//! (`tools::fuzz`): a request's bytes decoded and read as its handler reads them, page tokens
//! decoded and made, and a policy update merged and checked.
//!
//! Each step calls the functions the handlers call (`fields`, `paging`, `comments::raw_reply`,
//! `moderation::updated_policy`), so what the fuzzer finds here is what a caller could reach.
//! Nothing here is a way into the service: it answers what the step made of its input, never
//! more.

use prost::Message;
use tonic::Status;
use uuid::Uuid;

use super::{
    comments::raw_reply,
    fields,
    integrations::{deliveries_asked, new_endpoint, notice_asked},
    moderation::updated_policy,
    paging, wire,
};
use crate::{
    domain::{self, ArticleKey, BlockKind, Blocked},
    ids::{AuditId, CommentId, SiteId},
    privacy, proto,
    spam::Policy,
    store::{ThreadCursor, ThreadOrder},
    webhooks::Targets,
};

/// What a request's bytes came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// The bytes are not the message.
    Undecodable,
    /// The message decoded, and its handler would refuse a field.
    Refused,
    /// The message decoded, and every field its handler reads before the store read.
    Accepted,
}

impl From<Result<(), Status>> for Read {
    fn from(result: Result<(), Status>) -> Read {
        if result.is_ok() {
            Read::Accepted
        } else {
            Read::Refused
        }
    }
}

macro_rules! requests {
    ($($name:literal => $message:ty, $read:path;)*) => {
        /// Every message a client sends, by its RPC's name, and `ListCommentsResponse`, which
        /// `replyctl` decodes with the hand-written `wire` code.
        pub const MESSAGES: &[&str] = &[$($name),*];

        /// An encoded message of each kind in [`MESSAGES`], with every field at its default.
        pub fn empty_message(index: usize) -> Vec<u8> {
            let mut n = 0;
            $(
                if n == index {
                    return <$message>::default().encode_to_vec();
                }
                n += 1;
            )*
            let _ = n;
            Vec::new()
        }

        /// `bytes` decoded as the message `MESSAGES[index]` and read as its handler reads it.
        pub fn read_request(index: usize, bytes: &[u8]) -> Read {
            let mut n = 0;
            $(
                if n == index {
                    return match <$message>::decode(bytes) {
                        Ok(message) => $read(message),
                        Err(_) => Read::Undecodable,
                    };
                }
                n += 1;
            )*
            let _ = n;
            Read::Undecodable
        }
    };
}

requests! {
    "SubmitComment" => proto::SubmitCommentRequest, submit_comment;
    "ListComments" => proto::ListCommentsRequest, list_comments;
    "CountComments" => proto::CountCommentsRequest, count_comments;
    "PrepareForm" => proto::PrepareFormRequest, prepare_form;
    "ReportComment" => proto::ReportCommentRequest, report_comment;
    "EditComment" => proto::EditCommentRequest, edit_comment;
    "ListQueue" => proto::ListQueueRequest, list_queue;
    "GetComment" => proto::GetCommentRequest, get_comment;
    "Moderate" => proto::ModerateRequest, moderate;
    "WatchQueue" => proto::WatchQueueRequest, site_only;
    "GetPolicy" => proto::GetPolicyRequest, site_only;
    "UpdatePolicy" => proto::UpdatePolicyRequest, update_policy;
    "TryPolicy" => proto::TryPolicyRequest, try_policy;
    "EraseAuthor" => proto::EraseAuthorRequest, erase_author;
    "ListAudit" => proto::ListAuditRequest, list_audit;
    "RevealEmail" => proto::RevealEmailRequest, reveal_email;
    "Block" => proto::BlockRequest, block;
    "ListBlocks" => proto::ListBlocksRequest, list_blocks;
    "Unblock" => proto::UnblockRequest, unblock;
    "ExportAuthor" => proto::ExportAuthorRequest, export_author;
    "CloseArticle" => proto::CloseArticleRequest, close_article;
    "ReopenArticle" => proto::ReopenArticleRequest, reopen_article;
    "ListClosedArticles" => proto::ListClosedArticlesRequest, list_closed_articles;
    "ListReports" => proto::ListReportsRequest, list_reports;
    "AddWebhook" => proto::AddWebhookRequest, add_webhook;
    "ListWebhooks" => proto::ListWebhooksRequest, site_only;
    "RemoveWebhook" => proto::RemoveWebhookRequest, remove_webhook;
    "ListDeliveries" => proto::ListDeliveriesRequest, list_deliveries;
    "RedeliverWebhook" => proto::RedeliverWebhookRequest, redeliver_webhook;
    "AddNotice" => proto::AddNoticeRequest, add_notice;
    "ListNotices" => proto::ListNoticesRequest, site_only;
    "RemoveNotice" => proto::RemoveNoticeRequest, remove_notice;
    "SetMailPages" => proto::SetMailPagesRequest, set_mail_pages;
    "ConfirmEmail" => proto::ConfirmEmailRequest, confirm_email;
    "Unsubscribe" => proto::UnsubscribeRequest, unsubscribe;
    "ListCommentsResponse" => wire::ListCommentsResponse, list_comments_response;
}

fn submit_comment(req: proto::SubmitCommentRequest) -> Read {
    if fields::time("article_published_at", req.article_published_at.as_ref()).is_err() {
        return Read::Refused;
    }
    match domain::validate(&raw_reply(&req)) {
        Ok(reply) => {
            // What the pipeline then makes of it for the public.
            let public = privacy::mask_contacts(reply.body.as_str());
            privacy::render_html(&public);
            Read::Accepted
        }
        Err(_) => Read::Refused,
    }
}

fn list_comments(req: proto::ListCommentsRequest) -> Read {
    let read = || {
        fields::article(&req.article)?;
        fields::time("article_published_at", req.article_published_at.as_ref())?;
        let order = match proto::ListOrder::try_from(req.order) {
            Ok(proto::ListOrder::NewestFirst) => ThreadOrder::NewestFirst,
            Ok(_) => ThreadOrder::OldestFirst,
            Err(_) => return Err(Status::invalid_argument("order")),
        };
        paging::decode_thread(order, &req.page_token)?;
        paging::page_size(req.page_size, 50, 200);
        if !req.author_token.is_empty() {
            // Read as the handler reads it; no key of this harness signed it.
            privacy::author_view::verify(
                &[[0; 32]],
                SiteId::new(),
                &req.author_token,
                chrono::Utc::now(),
            )
            .map_err(|_| Status::invalid_argument("author_token"))?;
        }
        Ok(())
    };
    read().into()
}

fn count_comments(req: proto::CountCommentsRequest) -> Read {
    if req.articles.len() > 500 {
        return Read::Refused;
    }
    let keys = req.articles.iter().map(|a| ArticleKey::parse(a));
    if keys.fold(true, |ok, key| ok & key.is_ok()) {
        Read::Accepted
    } else {
        Read::Refused
    }
}

fn prepare_form(req: proto::PrepareFormRequest) -> Read {
    let read = || {
        fields::article(&req.article)?;
        fields::time("article_published_at", req.article_published_at.as_ref())?;
        Ok(())
    };
    read().into()
}

fn list_queue(req: proto::ListQueueRequest) -> Read {
    let read = || {
        if req.status != 0 {
            fields::comment_status("status", req.status)?;
        }
        paging::decode_queue(&req.page_token)?;
        paging::page_size(req.page_size, 50, 500);
        if !req.article.is_empty() {
            fields::article(&req.article)?;
        }
        Ok(())
    };
    read().into()
}

fn get_comment(req: proto::GetCommentRequest) -> Read {
    comment_ref(&req.id)
}

/// A comment named by its id or the start of one; which comment that is, the store says.
fn comment_ref(raw: &str) -> Read {
    if fields::comment_ref(raw).is_some() {
        Read::Accepted
    } else {
        Read::Refused
    }
}

fn moderate(req: proto::ModerateRequest) -> Read {
    let read = || {
        fields::action(req.action)?;
        if req.ids.is_empty() || req.ids.len() > 1000 {
            return Err(Status::invalid_argument("ids"));
        }
        req.expected_status
            .map(|value| fields::comment_status("expected_status", value))
            .transpose()?;
        fields::audit_note("note", &req.note)?;
        // Each id is answered on its own: a bad one does not refuse the call.
        for id in &req.ids {
            let _ = fields::comment_ref(id);
        }
        Ok(())
    };
    read().into()
}

/// A call that reads only its site's name, which the store resolves.
fn site_only<M>(_: M) -> Read {
    Read::Accepted
}

fn add_webhook(req: proto::AddWebhookRequest) -> Read {
    // As a deployment sets them by default: public https:// endpoints only.
    new_endpoint(&req, &Targets::default()).map(drop).into()
}

fn remove_webhook(req: proto::RemoveWebhookRequest) -> Read {
    fields::id("id", &req.id).map(drop).into()
}

fn list_deliveries(req: proto::ListDeliveriesRequest) -> Read {
    deliveries_asked(&req).map(drop).into()
}

fn redeliver_webhook(req: proto::RedeliverWebhookRequest) -> Read {
    fields::id("id", &req.id).map(drop).into()
}

fn add_notice(req: proto::AddNoticeRequest) -> Read {
    notice_asked(&req).map(drop).into()
}

fn remove_notice(req: proto::RemoveNoticeRequest) -> Read {
    fields::id("id", &req.id).map(drop).into()
}

fn set_mail_pages(req: proto::SetMailPagesRequest) -> Read {
    match (
        domain::MailPages::parse_url(&req.confirm_url),
        domain::MailPages::parse_url(&req.unsubscribe_url),
    ) {
        (Ok(_), Ok(_)) => Read::Accepted,
        _ => Read::Refused,
    }
}

fn confirm_email(req: proto::ConfirmEmailRequest) -> Read {
    mail_token(&req.token)
}

fn unsubscribe(req: proto::UnsubscribeRequest) -> Read {
    mail_token(&req.token)
}

/// A mail link's token as `Submitter::confirm_email` and `unsubscribe` read it before the store.
fn mail_token(token: &str) -> Read {
    let token = token.trim();
    if crate::submission::is_mail_token(token) {
        privacy::token_digest(token);
        Read::Accepted
    } else {
        Read::Refused
    }
}

fn update_policy(req: proto::UpdatePolicyRequest) -> Read {
    match req.policy {
        Some(update) => match updated_policy(&Policy::default(), update) {
            Ok(_) => Read::Accepted,
            Err(_) => Read::Refused,
        },
        None => Read::Refused,
    }
}

fn try_policy(req: proto::TryPolicyRequest) -> Read {
    if fields::trial_days(req.days).is_err() {
        return Read::Refused;
    }
    update_policy(proto::UpdatePolicyRequest {
        site: req.site,
        policy: req.policy,
    })
}

fn erase_author(req: proto::EraseAuthorRequest) -> Read {
    author_email(&req.email)
}

fn export_author(req: proto::ExportAuthorRequest) -> Read {
    author_email(&req.email)
}

fn author_email(raw: &str) -> Read {
    fields::author_email(raw)
        .map(|email| drop(email.normalized()))
        .into()
}

fn list_audit(req: proto::ListAuditRequest) -> Read {
    let read = || {
        match req.comment_id.as_deref().map(str::trim) {
            None | Some("") => {}
            Some(id) => drop(
                fields::comment_ref(id).ok_or_else(|| Status::invalid_argument("comment_id"))?,
            ),
        }
        match req.action.as_deref().map(str::trim) {
            None | Some("") => {}
            Some(action) => drop(fields::audit_action(action)?),
        }
        paging::decode_audit(&req.page_token)?;
        Ok(())
    };
    read().into()
}

fn reveal_email(req: proto::RevealEmailRequest) -> Read {
    let read = || {
        fields::comment_ref(&req.id).ok_or_else(|| Status::invalid_argument("id"))?;
        fields::audit_note("reason", &req.reason)?
            .ok_or_else(|| Status::invalid_argument("reason"))?;
        Ok(())
    };
    read().into()
}

fn block(req: proto::BlockRequest) -> Read {
    let read = || {
        let kind = fields::block_kind(req.kind)?;
        match (kind, req.email.trim().is_empty()) {
            (_, true) => drop(fields::blocked(kind, &req.value)?),
            (BlockKind::Author, false) if req.value.trim().is_empty() => {
                drop(fields::author_email(&req.email)?.normalized());
            }
            (_, false) => return Err(Status::invalid_argument("email")),
        }
        fields::audit_note("note", &req.note)?;
        domain::BlockLifetime::parse(req.for_seconds)
            .map_err(|_| Status::invalid_argument("for_seconds"))?;
        Ok(())
    };
    read().into()
}

fn report_comment(req: proto::ReportCommentRequest) -> Read {
    let read = || {
        fields::id("comment_id", &req.comment_id)?;
        fields::report_reason(req.reason)?;
        domain::parse_report_text(&req.text).map_err(|_| Status::invalid_argument("text"))?;
        domain::parse_reporter(&req.reporter).map_err(|_| Status::invalid_argument("reporter"))?;
        Ok(())
    };
    read().into()
}

fn edit_comment(req: proto::EditCommentRequest) -> Read {
    let read = || {
        fields::id("comment_id", &req.comment_id)?;
        fields::author_token(&req.author_token)?;
        // What the submitter then makes of the text, before it reads the store.
        let body =
            domain::CommentBody::parse(&req.body).map_err(|_| Status::invalid_argument("body"))?;
        privacy::render_html(&privacy::mask_contacts(body.as_str()));
        Ok(())
    };
    read().into()
}

fn list_reports(req: proto::ListReportsRequest) -> Read {
    paging::decode_queue(&req.page_token).map(drop).into()
}

fn list_blocks(req: proto::ListBlocksRequest) -> Read {
    paging::decode_block(&req.page_token).map(drop).into()
}

fn unblock(req: proto::UnblockRequest) -> Read {
    let read = || {
        let kind = fields::block_kind(req.kind)?;
        fields::blocked(kind, &req.value)?;
        fields::audit_note("note", &req.note)?;
        Ok(())
    };
    read().into()
}

fn close_article(req: proto::CloseArticleRequest) -> Read {
    if fields::time("close_at", req.close_at.as_ref()).is_err() {
        return Read::Refused;
    }
    closing(&req.article, &req.note)
}

fn reopen_article(req: proto::ReopenArticleRequest) -> Read {
    closing(&req.article, &req.note)
}

fn closing(article: &str, note: &str) -> Read {
    let read = || {
        fields::article(article)?;
        fields::audit_note("note", note)?;
        Ok(())
    };
    read().into()
}

fn list_closed_articles(req: proto::ListClosedArticlesRequest) -> Read {
    paging::decode_closed(&req.page_token).map(drop).into()
}

/// A response `replyctl` decodes: encoded again, it is the same length it says it is.
fn list_comments_response(response: wire::ListCommentsResponse) -> Read {
    let encoded = response.encode_to_vec();
    assert_eq!(
        encoded.len(),
        response.encoded_len(),
        "encoded_len is the length"
    );
    Read::Accepted
}

/// `token` decoded as a page token of every listing; how many listings took it.
pub fn decode_page_tokens(token: &str) -> usize {
    [
        paging::decode_thread(ThreadOrder::OldestFirst, token).is_ok(),
        paging::decode_thread(ThreadOrder::NewestFirst, token).is_ok(),
        paging::decode_queue(token).is_ok(),
        paging::decode_audit(token).is_ok(),
        paging::decode_block(token).is_ok(),
        paging::decode_closed(token).is_ok(),
    ]
    .into_iter()
    .filter(|&taken| taken)
    .count()
}

/// Where a page ended, as each listing's token names it.
#[derive(Clone, Debug)]
pub enum PageEnd {
    /// The last comment of a thread's page: the thread's root and the comment's path of ids.
    Thread(ThreadOrder, Vec<Uuid>),
    Queue(Uuid),
    Audit(Uuid),
    Block(Blocked),
    Closed(String),
}

/// `end` made into its listing's token and read back: the same place, and no other listing's.
/// Panics when the token reads as anything else.
pub fn round_trip_page_token(end: &PageEnd) {
    let token = match end {
        PageEnd::Thread(order, ids) => {
            let path = ids
                .iter()
                .map(|id| id.simple().to_string())
                .collect::<Vec<_>>()
                .join(".");
            let root = CommentId(ids.first().copied().unwrap_or_default());
            let cursor = ThreadCursor { root, path };
            let token = paging::encode_thread(*order, &cursor);
            let decoded = paging::decode_thread(*order, &token).ok().flatten();
            if ids.is_empty() {
                assert!(
                    decoded.is_none(),
                    "a thread token without a path reads as none"
                );
            } else {
                assert_eq!(decoded, Some(cursor), "a thread token reads as its cursor");
            }
            token
        }
        PageEnd::Queue(id) => {
            let token = paging::encode_queue(CommentId(*id));
            let decoded = paging::decode_queue(&token).ok().flatten();
            assert_eq!(
                decoded,
                Some(CommentId(*id)),
                "a queue token reads as its id"
            );
            token
        }
        PageEnd::Audit(id) => {
            let token = paging::encode_audit(AuditId(*id));
            let decoded = paging::decode_audit(&token).ok().flatten();
            assert_eq!(
                decoded,
                Some(AuditId(*id)),
                "an audit token reads as its id"
            );
            token
        }
        PageEnd::Block(blocked) => {
            let token = paging::encode_block(blocked);
            let decoded = paging::decode_block(&token).ok().flatten();
            assert_eq!(
                decoded.as_ref(),
                Some(blocked),
                "a block token reads as its entry"
            );
            token
        }
        PageEnd::Closed(article) => {
            let token = paging::encode_closed(article);
            let decoded = paging::decode_closed(&token).ok().flatten();
            assert_eq!(
                decoded.as_ref(),
                Some(article),
                "a closed token reads as its key"
            );
            token
        }
    };
    decode_page_tokens(&token);
}

/// `update` merged into `stored` and checked as `UpdatePolicy` does: the policy that would be
/// stored (`None` when nothing changes), or how many fields are bad.
pub fn update_policy_of(stored: &Policy, update: proto::Policy) -> Result<Option<Policy>, usize> {
    match updated_policy(stored, update) {
        Ok(changed) => Ok(changed.map(|(policy, _)| policy)),
        Err(bad) => Err(bad.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(name: &str, message: impl Message) -> Read {
        let index = MESSAGES.iter().position(|m| *m == name).expect(name);
        read_request(index, &message.encode_to_vec())
    }

    #[test]
    fn mail_requests_are_read_as_their_handlers_read_them() {
        let notice = proto::AddNoticeRequest {
            email: "desk@newsroom.example.net".to_owned(),
            events: vec!["comment.held".to_owned()],
            digest_minutes: 30,
            ..Default::default()
        };
        assert_eq!(read("AddNotice", notice.clone()), Read::Accepted);
        for refused in [
            proto::AddNoticeRequest {
                email: "not an address".to_owned(),
                ..notice.clone()
            },
            proto::AddNoticeRequest {
                events: vec!["comment.approved".to_owned()],
                ..notice.clone()
            },
            proto::AddNoticeRequest {
                digest_minutes: 100_000,
                ..notice.clone()
            },
        ] {
            assert_eq!(read("AddNotice", refused), Read::Refused);
        }
        let pages = proto::SetMailPagesRequest {
            confirm_url: "https://news.example.com/confirm?t={token}".to_owned(),
            unsubscribe_url: "https://news.example.com/stop?t={token}".to_owned(),
            ..Default::default()
        };
        assert_eq!(read("SetMailPages", pages.clone()), Read::Accepted);
        let no_place = proto::SetMailPagesRequest {
            unsubscribe_url: "https://news.example.com/stop".to_owned(),
            ..pages
        };
        assert_eq!(read("SetMailPages", no_place), Read::Refused);
        let token = format!("rg_mail_{}", "a".repeat(43));
        assert_eq!(
            read("ConfirmEmail", proto::ConfirmEmailRequest { token }),
            Read::Accepted
        );
        let made_up = "rg_mail_short".to_owned();
        assert_eq!(
            read("Unsubscribe", proto::UnsubscribeRequest { token: made_up }),
            Read::Refused
        );
    }

    #[test]
    fn a_webhook_is_read_as_add_webhook_reads_it() {
        let valid = proto::AddWebhookRequest {
            url: "https://hooks.example.com/in".to_owned(),
            events: vec!["comment.held, comment.spam".to_owned()],
            ..Default::default()
        };
        assert_eq!(read("AddWebhook", valid.clone()), Read::Accepted);
        for refused in [
            proto::AddWebhookRequest {
                url: "https://127.0.0.1/in".to_owned(),
                ..valid.clone()
            },
            proto::AddWebhookRequest {
                url: "http://hooks.example.com/in".to_owned(),
                ..valid.clone()
            },
            proto::AddWebhookRequest {
                events: vec!["comment.held,nope".to_owned()],
                ..valid.clone()
            },
            proto::AddWebhookRequest {
                events: vec![" , ".to_owned()],
                ..valid.clone()
            },
            proto::AddWebhookRequest {
                note: "a\0b".to_owned(),
                ..valid.clone()
            },
            proto::AddWebhookRequest {
                format: 9,
                ..valid.clone()
            },
            proto::AddWebhookRequest {
                events: vec![format!("comment.held,{}", "x".repeat(2_000))],
                ..valid.clone()
            },
            proto::AddWebhookRequest {
                events: vec!["comment.held".to_owned(); 100],
                ..valid.clone()
            },
        ] {
            assert_eq!(
                read("AddWebhook", refused.clone()),
                Read::Refused,
                "{refused:?}"
            );
        }
    }

    #[test]
    fn deliveries_and_endpoint_ids_are_read_as_their_handlers_read_them() {
        let id = Uuid::now_v7().to_string();
        let asked = proto::ListDeliveriesRequest {
            webhook_id: id.clone(),
            page_token: id.clone(),
            ..Default::default()
        };
        assert_eq!(read("ListDeliveries", asked.clone()), Read::Accepted);
        let bad_page = proto::ListDeliveriesRequest {
            page_token: "not an id".to_owned(),
            ..asked
        };
        assert_eq!(read("ListDeliveries", bad_page), Read::Refused);
        for name in ["RemoveWebhook", "RedeliverWebhook"] {
            let good = proto::RemoveWebhookRequest {
                id: id.clone(),
                ..Default::default()
            };
            assert_eq!(read(name, good), Read::Accepted, "{name}");
            let bad = proto::RemoveWebhookRequest {
                id: "42".to_owned(),
                ..Default::default()
            };
            assert_eq!(read(name, bad), Read::Refused, "{name}");
        }
    }
}
