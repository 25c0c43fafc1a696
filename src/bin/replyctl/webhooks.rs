//! `replyctl webhook …`: a site's webhook endpoints and their deliveries, and how they print.

use replyguard::proto::{
    AddWebhookRequest, AddWebhookResponse, Delivery, DeliveryState, ListDeliveriesRequest,
    ListWebhooksRequest, RedeliverWebhookRequest, RemoveWebhookRequest, Webhook, WebhookFormat,
};
use serde_json::{Value, json};

use crate::{
    cli::{OutputFormat, WebhookCommand, WebhookFormatArg},
    client::Clients,
    error::CliError,
    output::{emit, new_table, pretty, render, rfc3339, table_time},
};

pub async fn run(
    clients: &mut Clients,
    format: OutputFormat,
    command: WebhookCommand,
) -> Result<(), CliError> {
    let api = &mut clients.integrations;
    match command {
        WebhookCommand::Add {
            url,
            events,
            note,
            format: shape,
            site,
        } => {
            let added = api
                .add_webhook(AddWebhookRequest {
                    site: site.name(),
                    url,
                    events: vec![events],
                    note: note.unwrap_or_default(),
                    format: match shape {
                        WebhookFormatArg::Standard => WebhookFormat::Standard,
                        WebhookFormatArg::Slack => WebhookFormat::Slack,
                    }
                    .into(),
                })
                .await
                .map_err(CliError::rpc("adding the webhook"))?
                .into_inner();
            emit(&added_text(format, &added))
        }
        WebhookCommand::List(site) => {
            let listed = api
                .list_webhooks(ListWebhooksRequest { site: site.name() })
                .await
                .map_err(CliError::rpc("listing the webhooks"))?
                .into_inner();
            emit(&webhooks_text(format, &listed.webhooks))
        }
        WebhookCommand::Remove { id, site } => {
            api.remove_webhook(RemoveWebhookRequest {
                site: site.name(),
                id: id.clone(),
            })
            .await
            .map_err(CliError::rpc("removing the webhook"))?;
            emit(&match format {
                OutputFormat::Json => pretty(&json!({ "removed": id })),
                OutputFormat::Table => format!("Removed webhook {id}."),
            })
        }
        WebhookCommand::Deliveries {
            webhook,
            failed,
            site,
        } => {
            let mut deliveries = Vec::new();
            let mut page_token = String::new();
            // The newest 500 at most: enough to see what is going on.
            while deliveries.len() < 500 {
                let page = api
                    .list_deliveries(ListDeliveriesRequest {
                        site: site.name(),
                        webhook_id: webhook.clone().unwrap_or_default(),
                        failed_only: failed,
                        page_size: 100,
                        page_token,
                    })
                    .await
                    .map_err(CliError::rpc("listing the deliveries"))?
                    .into_inner();
                deliveries.extend(page.deliveries);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            emit(&deliveries_text(format, &deliveries))
        }
        WebhookCommand::Redeliver { id, site } => {
            let again = api
                .redeliver_webhook(RedeliverWebhookRequest {
                    site: site.name(),
                    id,
                })
                .await
                .map_err(CliError::rpc("redelivering"))?
                .into_inner();
            let delivery = again.delivery.unwrap_or_default();
            emit(&match format {
                OutputFormat::Json => pretty(&delivery_json(&delivery)),
                OutputFormat::Table => format!(
                    "Delivery {} ({}) will be sent again now.",
                    delivery.id, delivery.event
                ),
            })
        }
    }
}

fn webhook_json(webhook: &Webhook) -> Value {
    json!({
        "id": webhook.id,
        "url": webhook.url,
        "events": webhook.events,
        "note": webhook.note,
        "format": format_name(webhook.format()),
        "created_at": rfc3339(webhook.created_at.as_ref()),
        "disabled_at": rfc3339(webhook.disabled_at.as_ref()),
    })
}

fn format_name(format: WebhookFormat) -> &'static str {
    match format {
        WebhookFormat::Slack => "slack",
        _ => "standard",
    }
}

fn added_text(format: OutputFormat, added: &AddWebhookResponse) -> String {
    let webhook = added.webhook.clone().unwrap_or_default();
    match format {
        OutputFormat::Json => pretty(&json!({
            "webhook": webhook_json(&webhook),
            "secret": added.secret,
        })),
        OutputFormat::Table => format!(
            "Added webhook {} for {}.\nSigning secret (shown once; give it to the receiver): {}",
            webhook.id,
            webhook.events.join(", "),
            added.secret
        ),
    }
}

fn webhooks_text(format: OutputFormat, webhooks: &[Webhook]) -> String {
    if format == OutputFormat::Json {
        let webhooks: Vec<Value> = webhooks.iter().map(webhook_json).collect();
        return pretty(&json!({ "webhooks": webhooks }));
    }
    if webhooks.is_empty() {
        return "No webhook: add one with `replyctl webhook add URL --events …`.".to_owned();
    }
    let mut table = new_table(&["ID", "URL", "EVENTS", "FORMAT", "STATE", "NOTE"]);
    for webhook in webhooks {
        table.add_row(vec![
            webhook.id.clone(),
            webhook.url.clone(),
            webhook.events.join(", "),
            format_name(webhook.format()).to_owned(),
            match &webhook.disabled_at {
                Some(_) => format!("disabled {}", table_time(webhook.disabled_at.as_ref())),
                None => "active".to_owned(),
            },
            webhook.note.clone(),
        ]);
    }
    render(&table)
}

fn state_name(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Pending => "pending",
        DeliveryState::Delivered => "delivered",
        DeliveryState::Failed => "failed",
        DeliveryState::Unspecified => "unknown",
    }
}

fn delivery_json(delivery: &Delivery) -> Value {
    json!({
        "id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "event": delivery.event,
        "comment_id": delivery.comment_id,
        "article": delivery.article,
        "state": state_name(delivery.state()),
        "attempts": delivery.attempts,
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "created_at": rfc3339(delivery.created_at.as_ref()),
        "next_attempt_at": rfc3339(delivery.next_attempt_at.as_ref()),
    })
}

fn deliveries_text(format: OutputFormat, deliveries: &[Delivery]) -> String {
    if format == OutputFormat::Json {
        let deliveries: Vec<Value> = deliveries.iter().map(delivery_json).collect();
        return pretty(&json!({ "deliveries": deliveries }));
    }
    if deliveries.is_empty() {
        return "No delivery.".to_owned();
    }
    let mut table = new_table(&["ID", "EVENT", "STATE", "TRIES", "LAST", "AT"]);
    for delivery in deliveries {
        let last = match (delivery.last_status, delivery.last_error.as_str()) {
            (0, "") => String::new(),
            (0, error) => error.to_owned(),
            (status, "") => status.to_string(),
            (status, error) => format!("{status}: {error}"),
        };
        table.add_row(vec![
            delivery.id.clone(),
            delivery.event.clone(),
            state_name(delivery.state()).to_owned(),
            delivery.attempts.to_string(),
            last,
            table_time(delivery.created_at.as_ref()),
        ]);
    }
    render(&table)
}
