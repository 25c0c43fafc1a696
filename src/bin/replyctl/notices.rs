//! `replyctl notify …`: the addresses mailed a site's held replies, and how they print. An
//! address is typed once, to add it; from then on the server shows it masked.

use replyguard::proto::{
    AddNoticeRequest, ListNoticesRequest, Notice, RemoveNoticeRequest, SetMailPagesRequest,
};
use serde_json::{Value, json};

use crate::{
    cli::{NotifyCommand, OutputFormat},
    client::Clients,
    error::CliError,
    output::{emit, new_table, pretty, render, rfc3339, table_time},
};

pub async fn run(
    clients: &mut Clients,
    format: OutputFormat,
    command: NotifyCommand,
) -> Result<(), CliError> {
    let api = &mut clients.integrations;
    match command {
        NotifyCommand::Add {
            email,
            events,
            digest,
            site,
        } => {
            let added = api
                .add_notice(AddNoticeRequest {
                    site: site.name(),
                    email,
                    events: vec![events],
                    digest_minutes: digest.unwrap_or(0),
                })
                .await
                .map_err(CliError::rpc("adding the notice"))?
                .into_inner();
            let notice = added.notice.unwrap_or_default();
            emit(&match format {
                OutputFormat::Json => pretty(&json!({ "notice": notice_json(&notice) })),
                OutputFormat::Table => format!(
                    "Added notice {}: {} is mailed {}{}.",
                    notice.id,
                    notice.email,
                    notice.events.join(", "),
                    every(notice.digest_minutes)
                ),
            })
        }
        NotifyCommand::List(site) => {
            let listed = api
                .list_notices(ListNoticesRequest { site: site.name() })
                .await
                .map_err(CliError::rpc("listing the notices"))?
                .into_inner();
            emit(&notices_text(format, &listed.notices))
        }
        NotifyCommand::Remove { id, site } => {
            api.remove_notice(RemoveNoticeRequest {
                site: site.name(),
                id: id.clone(),
            })
            .await
            .map_err(CliError::rpc("removing the notice"))?;
            emit(&match format {
                OutputFormat::Json => pretty(&json!({ "removed": id })),
                OutputFormat::Table => format!("Removed notice {id}."),
            })
        }
        NotifyCommand::Pages {
            confirm,
            unsubscribe,
            site,
        } => {
            api.set_mail_pages(SetMailPagesRequest {
                site: site.name(),
                confirm_url: confirm.clone(),
                unsubscribe_url: unsubscribe.clone(),
            })
            .await
            .map_err(CliError::rpc("setting the mail pages"))?;
            emit(&match format {
                OutputFormat::Json => pretty(&json!({
                    "confirm_url": confirm,
                    "unsubscribe_url": unsubscribe,
                })),
                OutputFormat::Table => {
                    format!("Readers confirm at {confirm} and unsubscribe at {unsubscribe}.")
                }
            })
        }
    }
}

/// How often the mails go: `` for each reply, ` every 15 minutes` for a digest.
fn every(digest_minutes: u32) -> String {
    match digest_minutes {
        0 => " for each reply".to_owned(),
        1 => " in a digest every minute".to_owned(),
        n => format!(" in a digest every {n} minutes"),
    }
}

fn notice_json(notice: &Notice) -> Value {
    json!({
        "id": notice.id,
        "email": notice.email,
        "events": notice.events,
        "digest_minutes": notice.digest_minutes,
        "created_at": rfc3339(notice.created_at.as_ref()),
    })
}

fn notices_text(format: OutputFormat, notices: &[Notice]) -> String {
    if format == OutputFormat::Json {
        let notices: Vec<Value> = notices.iter().map(notice_json).collect();
        return pretty(&json!({ "notices": notices }));
    }
    if notices.is_empty() {
        return "No notice: add one with `replyctl notify add --email ADDRESS`.".to_owned();
    }
    let mut table = new_table(&["ID", "EMAIL", "EVENTS", "DIGEST", "ADDED"]);
    for notice in notices {
        table.add_row(vec![
            notice.id.clone(),
            notice.email.clone(),
            notice.events.join(", "),
            match notice.digest_minutes {
                0 => "each".to_owned(),
                n => format!("{n} min"),
            },
            table_time(notice.created_at.as_ref()),
        ]);
    }
    render(&table)
}
