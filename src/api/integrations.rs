//! The `Integrations` service: a site's webhook endpoints and their deliveries, and the
//! addresses mailed its events (notices), for tokens with the `integrations` scope.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    auth::{caller_with_scope, moderated_site},
    convert::timestamp,
    error::invalid_field,
    fields::{self, id},
};
use crate::{
    domain::{
        Delivery, DeliveryState, MAX_DIGEST_MINUTES, MailPages, NOTICE_EVENTS, Notice, Scope,
        Webhook, WebhookEvent, WebhookFormat,
    },
    privacy::{Vault, mask_email},
    proto::{self, integrations_server::Integrations},
    store::{Store, now},
    webhooks::{Targets, sign},
};

/// An endpoint as `AddWebhook` reads it, before it looks at the store.
pub(super) struct NewEndpoint<'r> {
    pub url: url::Url,
    /// Each at most once, at least one.
    pub events: Vec<WebhookEvent>,
    pub note: &'r str,
    pub format: WebhookFormat,
}

/// `AddWebhook`'s fields read and checked: the URL as far as it can be before it is resolved.
pub(super) fn new_endpoint<'r>(
    req: &'r proto::AddWebhookRequest,
    targets: &Targets,
) -> Result<NewEndpoint<'r>, Status> {
    let url = targets
        .check(&req.url)
        .map_err(|err| invalid_field("url", &err.to_string()))?;
    // Refused unread when longer than any list of events could be, and never echoed whole.
    if req.events.len() > 4 * WebhookEvent::ALL.len()
        || req.events.iter().any(|e| e.len() > MAX_EVENTS_TEXT)
    {
        return Err(invalid_field(
            "events",
            "is longer than any list of events; name each at most once",
        ));
    }
    let mut events = Vec::new();
    for name in req.events.iter().flat_map(|e| e.split(',')) {
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        let event = WebhookEvent::parse(name).ok_or_else(|| {
            let known: Vec<&str> = WebhookEvent::ALL.iter().map(|e| e.as_str()).collect();
            invalid_field(
                "events",
                &format!(
                    "names {name:?}, which is not an event; the events are {}",
                    known.join(", ")
                ),
            )
        })?;
        events.push(event);
    }
    events.sort();
    events.dedup();
    if events.is_empty() {
        return Err(invalid_field("events", "must name at least one event"));
    }
    // Read as every note is: PostgreSQL cannot store a NUL, and a note is shown to people.
    let note = fields::audit_note("note", &req.note)?.unwrap_or_default();
    let format = match proto::WebhookFormat::try_from(req.format) {
        Ok(proto::WebhookFormat::Unspecified | proto::WebhookFormat::Standard) => {
            WebhookFormat::Standard
        }
        Ok(proto::WebhookFormat::Slack) => WebhookFormat::Slack,
        Err(_) => return Err(invalid_field("format", "is not a format")),
    };
    Ok(NewEndpoint {
        url,
        events,
        note,
        format,
    })
}

/// `ListDeliveries`' fields: the endpoint, the page's start and its size.
pub(super) fn deliveries_asked(
    req: &proto::ListDeliveriesRequest,
) -> Result<(Option<Uuid>, Option<Uuid>, u32), Status> {
    let webhook = match req.webhook_id.trim() {
        "" => None,
        text => Some(id("webhook_id", text)?),
    };
    let after = match req.page_token.trim() {
        "" => None,
        text => Some(id("page_token", text)?),
    };
    let size = match req.page_size {
        0 => 50,
        n => n.min(500),
    };
    Ok((webhook, after, size))
}

/// `AddNotice`'s events: each of [`NOTICE_EVENTS`] at most once, at least one.
/// What an `AddNotice` asks for, read as the handler reads it before the store: the address
/// and the events; the digest's length checked.
pub(super) fn notice_asked(
    req: &proto::AddNoticeRequest,
) -> Result<(crate::domain::Email, Vec<WebhookEvent>), Status> {
    let email = fields::author_email(&req.email)?;
    let events = notice_events(&req.events)?;
    if req.digest_minutes > MAX_DIGEST_MINUTES {
        return Err(invalid_field(
            "digest_minutes",
            &format!("is at most {MAX_DIGEST_MINUTES} (a day)"),
        ));
    }
    Ok((email, events))
}

pub(super) fn notice_events(events: &[String]) -> Result<Vec<WebhookEvent>, Status> {
    if events.len() > 4 * NOTICE_EVENTS.len() || events.iter().any(|e| e.len() > MAX_EVENTS_TEXT) {
        return Err(invalid_field(
            "events",
            "is longer than any list of events; name each at most once",
        ));
    }
    let mut wanted = Vec::new();
    for name in events.iter().flat_map(|e| e.split(',')) {
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        let event = WebhookEvent::parse(name)
            .filter(|event| NOTICE_EVENTS.contains(event))
            .ok_or_else(|| {
                let known: Vec<&str> = NOTICE_EVENTS.iter().map(|e| e.as_str()).collect();
                invalid_field(
                    "events",
                    &format!(
                        "names {name:?}, which is not an event mailed to moderators; they are {}",
                        known.join(", ")
                    ),
                )
            })?;
        wanted.push(event);
    }
    wanted.sort();
    wanted.dedup();
    if wanted.is_empty() {
        return Err(invalid_field("events", "must name at least one event"));
    }
    Ok(wanted)
}

/// The most notices one site may have: each held reply is a mail to each.
const MAX_NOTICES_PER_SITE: usize = 20;

/// The longest text of events one entry of `AddWebhookRequest.events` may hold: every event,
/// comma-separated and spaced, several times over.
const MAX_EVENTS_TEXT: usize = 1024;

/// The most endpoints one site may have: each event is a request to each.
const MAX_WEBHOOKS_PER_SITE: usize = 20;

pub struct IntegrationsApi {
    store: Arc<dyn Store>,
    vault: Vault,
    targets: Targets,
    /// Whether the server sends mail (`REPLYGUARD_SMTP_URL` is set).
    mails: bool,
}

impl IntegrationsApi {
    pub fn new(store: Arc<dyn Store>, vault: Vault, targets: Targets) -> Self {
        IntegrationsApi {
            store,
            vault,
            targets,
            mails: false,
        }
    }

    /// Lets notices be added: the server sends mail.
    pub fn sending_mail(mut self, mails: bool) -> Self {
        self.mails = mails;
        self
    }
}

fn webhook(webhook: &Webhook) -> proto::Webhook {
    proto::Webhook {
        id: webhook.id.to_string(),
        url: webhook.url.clone(),
        events: webhook
            .events
            .iter()
            .map(|e| e.as_str().to_owned())
            .collect(),
        note: webhook.note.clone(),
        format: match webhook.format {
            WebhookFormat::Standard => proto::WebhookFormat::Standard,
            WebhookFormat::Slack => proto::WebhookFormat::Slack,
        }
        .into(),
        created_at: Some(timestamp(webhook.created_at)),
        disabled_at: webhook.disabled_at.map(timestamp),
    }
}

/// A notice as the API shows it: its address masked.
fn notice(vault: &Vault, notice: &Notice) -> proto::Notice {
    proto::Notice {
        id: notice.id.to_string(),
        email: vault
            .decrypt_email(notice.site, &notice.email_sealed)
            .map(|email| mask_email(&email))
            .unwrap_or_default(),
        events: notice
            .events
            .iter()
            .map(|e| e.as_str().to_owned())
            .collect(),
        digest_minutes: notice.digest_minutes,
        created_at: Some(timestamp(notice.created_at)),
    }
}

fn delivery(delivery: &Delivery) -> proto::Delivery {
    proto::Delivery {
        id: delivery.id.to_string(),
        webhook_id: delivery.webhook.to_string(),
        event: delivery.event.clone(),
        comment_id: delivery.comment.map(|c| c.to_string()).unwrap_or_default(),
        article: delivery.article.clone(),
        state: match delivery.state {
            DeliveryState::Pending => proto::DeliveryState::Pending,
            DeliveryState::Delivered => proto::DeliveryState::Delivered,
            DeliveryState::Failed => proto::DeliveryState::Failed,
        }
        .into(),
        attempts: delivery.attempts,
        last_status: delivery.last_status.map(u32::from).unwrap_or_default(),
        last_error: delivery.last_error.clone().unwrap_or_default(),
        created_at: Some(timestamp(delivery.created_at)),
        next_attempt_at: (delivery.state == DeliveryState::Pending)
            .then(|| timestamp(delivery.next_attempt_at)),
    }
}

#[tonic::async_trait]
impl Integrations for IntegrationsApi {
    async fn add_webhook(
        &self,
        request: Request<proto::AddWebhookRequest>,
    ) -> Result<Response<proto::AddWebhookResponse>, Status> {
        let credential =
            caller_with_scope(self.store.as_ref(), &request, Scope::Integrations).await?;
        let req = request.into_inner();
        let site = moderated_site(self.store.as_ref(), &credential, &req.site).await?;
        let NewEndpoint {
            url,
            events,
            note,
            format,
        } = new_endpoint(&req, &self.targets)?;
        if self.store.webhooks(site.id).await?.len() >= MAX_WEBHOOKS_PER_SITE {
            return Err(Status::failed_precondition(format!(
                "site {:?} has {MAX_WEBHOOKS_PER_SITE} webhooks, the most it may have; remove one first",
                site.name
            )));
        }
        let added = Webhook {
            id: Uuid::now_v7(),
            site: site.id,
            url: url.to_string(),
            events,
            note: note.to_owned(),
            format,
            actor: credential.prefix.clone(),
            created_at: now(),
            disabled_at: None,
        };
        self.store.add_webhook(&added).await?;
        let secret = self.vault.webhook_secret(site.id, added.id);
        Ok(Response::new(proto::AddWebhookResponse {
            webhook: Some(webhook(&added)),
            secret: sign::secret_text(&secret),
        }))
    }

    async fn list_webhooks(
        &self,
        request: Request<proto::ListWebhooksRequest>,
    ) -> Result<Response<proto::ListWebhooksResponse>, Status> {
        let credential =
            caller_with_scope(self.store.as_ref(), &request, Scope::Integrations).await?;
        let site =
            moderated_site(self.store.as_ref(), &credential, &request.get_ref().site).await?;
        let webhooks = self.store.webhooks(site.id).await?;
        Ok(Response::new(proto::ListWebhooksResponse {
            webhooks: webhooks.iter().map(webhook).collect(),
        }))
    }

    async fn remove_webhook(
        &self,
        request: Request<proto::RemoveWebhookRequest>,
    ) -> Result<Response<proto::RemoveWebhookResponse>, Status> {
        let credential =
            caller_with_scope(self.store.as_ref(), &request, Scope::Integrations).await?;
        let req = request.into_inner();
        let site = moderated_site(self.store.as_ref(), &credential, &req.site).await?;
        let id = id("id", &req.id)?;
        if !self
            .store
            .remove_webhook(site.id, id, &credential.prefix)
            .await?
        {
            return Err(Status::not_found(format!(
                "site {:?} has no webhook {id}",
                site.name
            )));
        }
        Ok(Response::new(proto::RemoveWebhookResponse {}))
    }

    async fn list_deliveries(
        &self,
        request: Request<proto::ListDeliveriesRequest>,
    ) -> Result<Response<proto::ListDeliveriesResponse>, Status> {
        let credential =
            caller_with_scope(self.store.as_ref(), &request, Scope::Integrations).await?;
        let req = request.into_inner();
        let site = moderated_site(self.store.as_ref(), &credential, &req.site).await?;
        let (webhook, after, size) = deliveries_asked(&req)?;
        let mut deliveries = self
            .store
            .deliveries(site.id, webhook, req.failed_only, after, size + 1)
            .await?;
        let more = deliveries.len() > size as usize;
        deliveries.truncate(size as usize);
        let next_page_token = match deliveries.last() {
            Some(last) if more => last.id.to_string(),
            _ => String::new(),
        };
        Ok(Response::new(proto::ListDeliveriesResponse {
            deliveries: deliveries.iter().map(delivery).collect(),
            next_page_token,
        }))
    }

    async fn redeliver_webhook(
        &self,
        request: Request<proto::RedeliverWebhookRequest>,
    ) -> Result<Response<proto::RedeliverWebhookResponse>, Status> {
        let credential =
            caller_with_scope(self.store.as_ref(), &request, Scope::Integrations).await?;
        let req = request.into_inner();
        let site = moderated_site(self.store.as_ref(), &credential, &req.site).await?;
        let id = id("id", &req.id)?;
        let redelivered = self
            .store
            .redeliver(site.id, id, &credential.prefix)
            .await?
            .ok_or_else(|| {
                Status::not_found(format!("site {:?} has no delivery {id}", site.name))
            })?;
        Ok(Response::new(proto::RedeliverWebhookResponse {
            delivery: Some(delivery(&redelivered)),
        }))
    }

    async fn add_notice(
        &self,
        request: Request<proto::AddNoticeRequest>,
    ) -> Result<Response<proto::AddNoticeResponse>, Status> {
        let credential =
            caller_with_scope(self.store.as_ref(), &request, Scope::Integrations).await?;
        let req = request.into_inner();
        let site = moderated_site(self.store.as_ref(), &credential, &req.site).await?;
        if !self.mails {
            return Err(Status::failed_precondition(
                "this server sends no mail: its operator sets REPLYGUARD_SMTP_URL and \
                 REPLYGUARD_MAIL_FROM first",
            ));
        }
        let (email, events) = notice_asked(&req)?;
        if self.store.notices(site.id).await?.len() >= MAX_NOTICES_PER_SITE {
            return Err(Status::failed_precondition(format!(
                "site {:?} has {MAX_NOTICES_PER_SITE} notices, the most it may have; remove one first",
                site.name
            )));
        }
        let normalized = email.normalized();
        let added = Notice {
            id: Uuid::now_v7(),
            site: site.id,
            email_sealed: self.vault.encrypt_email(site.id, email.as_str()),
            email_hash: self.vault.author_hash(site.id, &normalized).0.to_vec(),
            events,
            digest_minutes: req.digest_minutes,
            actor: credential.prefix.clone(),
            created_at: now(),
        };
        self.store.add_notice(&added).await?;
        Ok(Response::new(proto::AddNoticeResponse {
            notice: Some(notice(&self.vault, &added)),
        }))
    }

    async fn list_notices(
        &self,
        request: Request<proto::ListNoticesRequest>,
    ) -> Result<Response<proto::ListNoticesResponse>, Status> {
        let credential =
            caller_with_scope(self.store.as_ref(), &request, Scope::Integrations).await?;
        let site =
            moderated_site(self.store.as_ref(), &credential, &request.get_ref().site).await?;
        let notices = self.store.notices(site.id).await?;
        Ok(Response::new(proto::ListNoticesResponse {
            notices: notices.iter().map(|n| notice(&self.vault, n)).collect(),
        }))
    }

    async fn remove_notice(
        &self,
        request: Request<proto::RemoveNoticeRequest>,
    ) -> Result<Response<proto::RemoveNoticeResponse>, Status> {
        let credential =
            caller_with_scope(self.store.as_ref(), &request, Scope::Integrations).await?;
        let req = request.into_inner();
        let site = moderated_site(self.store.as_ref(), &credential, &req.site).await?;
        let id = id("id", &req.id)?;
        if !self
            .store
            .remove_notice(site.id, id, &credential.prefix)
            .await?
        {
            return Err(Status::not_found(format!(
                "site {:?} has no notice {id}",
                site.name
            )));
        }
        Ok(Response::new(proto::RemoveNoticeResponse {}))
    }

    async fn set_mail_pages(
        &self,
        request: Request<proto::SetMailPagesRequest>,
    ) -> Result<Response<proto::SetMailPagesResponse>, Status> {
        let credential =
            caller_with_scope(self.store.as_ref(), &request, Scope::Integrations).await?;
        let req = request.into_inner();
        let site = moderated_site(self.store.as_ref(), &credential, &req.site).await?;
        let pages = MailPages {
            confirm_url: MailPages::parse_url(&req.confirm_url)
                .map_err(|why| invalid_field("confirm_url", &why))?,
            unsubscribe_url: MailPages::parse_url(&req.unsubscribe_url)
                .map_err(|why| invalid_field("unsubscribe_url", &why))?,
        };
        self.store
            .set_mail_pages(site.id, &pages, &credential.prefix)
            .await?;
        Ok(Response::new(proto::SetMailPagesResponse {}))
    }
}
