//! Rendering of server answers: tables for people, JSON for scripts, each
//! written to stdout as one block by [`emit`].
//!
//! JSON mirrors the proto messages (snake_case field names, nested messages
//! nested) with statuses and verdicts as lowercase words, timestamps in RFC 3339
//! UTC and unset optional fields as `null`. Tables fit the terminal (or `COLUMNS`
//! where stdout is not one), wrapping long cells at words, and show local times
//! with their zone: `2026-12-07 10:17 +01:00`, `UTC` where the offset is zero.
//! Nothing here talks to the server or decides exit codes.

use std::io::{self, IsTerminal, Write};

use chrono::{DateTime, Local, SecondsFormat, Utc};
use comfy_table::{CellAlignment, ColumnConstraint, ContentArrangement, Table};
use prost_types::Timestamp;
use replyguard::proto::{
    Assessment, AuditEntry, AuthorComment, BlockEntry, BlockKind, BlockResponse, ClosedArticle,
    Comment, CommentStatus, ExportAuthorResponse, ModerateResult, Policy, QueueItem, RuleInfo,
    SpamReason, Verdict,
};
use serde_json::{Value, json};
use tonic::Code;

use crate::{
    cli::{Decision, OutputFormat},
    error::{CliError, code_name},
};

/// The fewest characters of an id a table shows; more where two shown ids start alike.
const SHORT_ID_CHARS: usize = 8;

/// Each id cut to its shortest start that no other of `ids` shares, which every command
/// takes in place of the whole id.
pub(crate) fn short_ids<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let ids: Vec<&str> = ids.into_iter().collect();
    replyguard::ids::short_ids(&ids, SHORT_ID_CHARS)
}

/// How many characters of a comment's text a list row shows.
const EXCERPT_CHARS: usize = 60;

/// Tables without borders, a line under the header only: easy to read and to
/// copy an id from.
const TABLE_STYLE: &str = "     ──            ";

/// Writes one block of output. Errors, a closed pipe included, are returned so
/// the caller can stop instead of panicking as `println!` would.
pub fn emit(text: &str) -> Result<(), CliError> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{text}")?;
    stdout.flush()?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Words and times shared by both formats.

/// A comment state as a lowercase word; `None` when unset.
pub fn status_word(status: i32) -> Option<&'static str> {
    match CommentStatus::try_from(status).ok()? {
        CommentStatus::Unspecified => None,
        CommentStatus::Pending => Some("pending"),
        CommentStatus::Approved => Some("approved"),
        CommentStatus::Spam => Some("spam"),
        CommentStatus::Rejected => Some("rejected"),
    }
}

/// A verdict as a lowercase word; `None` when unset.
fn verdict_word(verdict: i32) -> Option<&'static str> {
    match Verdict::try_from(verdict).ok()? {
        Verdict::Unspecified => None,
        Verdict::Approve => Some("approve"),
        Verdict::Hold => Some("hold"),
        Verdict::Spam => Some("spam"),
    }
}

fn datetime(timestamp: Option<&Timestamp>) -> Option<DateTime<Utc>> {
    let timestamp = timestamp?;
    DateTime::from_timestamp(timestamp.seconds, u32::try_from(timestamp.nanos).ok()?)
}

pub(crate) fn rfc3339(timestamp: Option<&Timestamp>) -> Value {
    datetime(timestamp).map_or(Value::Null, |time| {
        Value::String(time.to_rfc3339_opts(SecondsFormat::Millis, true))
    })
}

/// A time as tables show it: local, to the minute, with its zone.
pub(crate) fn table_time(timestamp: Option<&Timestamp>) -> String {
    local_time(timestamp, "%Y-%m-%d %H:%M")
}

/// A time as the audit log's table shows it: local, to the second, with its zone.
fn table_time_seconds(timestamp: Option<&Timestamp>) -> String {
    local_time(timestamp, "%Y-%m-%d %H:%M:%S")
}

fn local_time(timestamp: Option<&Timestamp>, format: &str) -> String {
    datetime(timestamp).map_or_else(
        || "-".to_owned(),
        |time| {
            let local = time.with_timezone(&Local);
            let zone = if local.offset().local_minus_utc() == 0 {
                "UTC".to_owned()
            } else {
                local.format("%:z").to_string()
            };
            format!("{} {zone}", local.format(format))
        },
    )
}

/// The width tables and texts fit: the terminal's, or `COLUMNS` where stdout is not a
/// terminal; `None` leaves them as wide as their content.
pub(crate) fn width() -> Option<u16> {
    if io::stdout().is_terminal()
        && let Ok((columns, _)) = crossterm::terminal::size()
        && columns > 0
    {
        return Some(columns);
    }
    std::env::var("COLUMNS")
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|columns| *columns > 0)
}

/// `text` in lines of at most `width` characters after `indent`, broken at spaces (a word
/// longer than a line is cut); each line starts with `indent`.
pub(crate) fn wrap(text: &str, indent: &str, width: Option<u16>) -> String {
    let room = width.map_or(usize::MAX, |width| {
        usize::from(width)
            .saturating_sub(indent.chars().count())
            .max(20)
    });
    let mut out = String::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        let mut used = 0;
        for word in paragraph.split_whitespace() {
            let mut word: Vec<char> = word.chars().collect();
            loop {
                let needed = word.len() + usize::from(used > 0);
                if used + needed <= room {
                    if used > 0 {
                        line.push(' ');
                    }
                    line.extend(word.iter());
                    used += needed;
                    break;
                }
                if used > 0 {
                    out.push_str(indent);
                    out.push_str(&line);
                    out.push('\n');
                    line.clear();
                    used = 0;
                    continue;
                }
                // A word longer than a whole line.
                let rest = word.split_off(room);
                out.push_str(indent);
                out.extend(word.iter());
                out.push('\n');
                word = rest;
            }
        }
        out.push_str(indent);
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Proto3 cannot tell an empty string from an unset one; for optional fields
/// `null` says "not given" more clearly than `""`.
fn optional(text: &str) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        Value::String(text.to_owned())
    }
}

/// A score or weight without trailing zeros: `3`, `1.5`, `0.25`.
fn number(value: f64) -> String {
    let text = format!("{value:.2}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// The start of a text on one line, for list rows.
fn excerpt(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= EXCERPT_CHARS {
        flat
    } else {
        let mut short: String = flat.chars().take(EXCERPT_CHARS - 1).collect();
        short.push('…');
        short
    }
}

fn dash_if_empty(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

/// A table whose header row is `header`; [`render`] fits it to [`width`].
pub(crate) fn new_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(TABLE_STYLE).set_header(header.to_vec());
    table
}

/// The longest word a column keeps whole when it must wrap; a longer one (a URL) is cut.
const MAX_WHOLE_WORD: usize = 30;

/// Sets each column's width so the table fits `width`, where it would not as it is: every
/// column gets at least its longest word (or all of its content, for [`keep_whole`]
/// columns), and the room left goes to the columns that want more, a share each.
fn fit(table: &mut Table, width: u16) {
    let count = table.column_iter().count();
    if count == 0 {
        return;
    }
    let mut wanted = vec![0usize; count];
    let mut least = vec![0usize; count];
    let whole: Vec<bool> = table
        .column_iter()
        .map(|column| column.constraint() == Some(&ColumnConstraint::ContentWidth))
        .collect();
    for index in 0..count {
        for cell in table.column_cells_with_header_iter(index).flatten() {
            for line in cell.content().lines() {
                let line_width = line.chars().count();
                wanted[index] = wanted[index].max(line_width);
                let word = if whole[index] {
                    line_width
                } else {
                    line.split_whitespace()
                        .map(|word| word.chars().count().min(MAX_WHOLE_WORD))
                        .max()
                        .unwrap_or(0)
                };
                least[index] = least[index].max(word);
            }
        }
    }
    // Borders and padding: a space at each edge, one between columns, one each side of a cell.
    let room = usize::from(width).saturating_sub(1 + 3 * count);
    if wanted.iter().sum::<usize>() <= room {
        return;
    }
    // Where even the longest words do not fit, the widest columns that may wrap give up
    // a character at a time, cutting their longest words, before the table overflows.
    while least.iter().sum::<usize>() > room {
        let widest = (0..count)
            .filter(|&i| !whole[i] && least[i] > 1)
            .max_by_key(|&i| least[i]);
        match widest {
            Some(i) => least[i] -= 1,
            None => break,
        }
    }
    let mut widths = least.clone();
    let mut spare = room.saturating_sub(widths.iter().sum());
    while spare > 0 {
        let hungry: Vec<usize> = (0..count).filter(|&i| widths[i] < wanted[i]).collect();
        if hungry.is_empty() {
            break;
        }
        let share = (spare / hungry.len()).max(1);
        for i in hungry {
            let more = share.min(wanted[i] - widths[i]).min(spare);
            widths[i] += more;
            spare -= more;
        }
    }
    table.set_content_arrangement(ContentArrangement::Dynamic);
    table.set_width(width);
    for (column, width) in table.column_iter_mut().zip(widths) {
        let fixed = u16::try_from(width + 2).unwrap_or(u16::MAX);
        column.set_constraint(ColumnConstraint::Absolute(comfy_table::Width::Fixed(fixed)));
    }
}

/// Columns that are never wrapped: ids and one-word states.
pub(crate) fn keep_whole(table: &mut Table, columns: &[usize]) {
    for &index in columns {
        if let Some(column) = table.column_mut(index) {
            column.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
}

/// The reasons that weigh most towards spam, counted ones only: `links 2, caps 1.5, …`.
fn top_reasons(assessment: &Assessment) -> String {
    const SHOWN: usize = 3;
    let mut counted: Vec<&SpamReason> = assessment
        .reasons
        .iter()
        .filter(|reason| !reason.log_only && reason.weight > 0.0)
        .collect();
    counted.sort_by(|a, b| b.weight.total_cmp(&a.weight));
    if counted.is_empty() {
        return "-".to_owned();
    }
    let mut words: Vec<String> = counted
        .iter()
        .take(SHOWN)
        .map(|reason| format!("{} {}", reason.rule, number(reason.weight)))
        .collect();
    if counted.len() > SHOWN {
        words.push("…".to_owned());
    }
    words.join(", ")
}

/// The table as text, fitted to [`width`] when there is one.
pub(crate) fn render(table: &Table) -> String {
    match width() {
        Some(width) => {
            let mut fitted = table.clone();
            fit(&mut fitted, width);
            fitted.trim_fmt()
        }
        None => table.trim_fmt(),
    }
}

pub(crate) fn pretty(value: &Value) -> String {
    // Serialising a `Value` cannot fail: its map keys are always strings.
    serde_json::to_string_pretty(value).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// JSON converters, one per proto message that is printed.

/// A `Comment` as JSON.
pub fn comment_json(comment: &Comment) -> Value {
    json!({
        "id": comment.id,
        "article": comment.article,
        "parent_id": optional(&comment.parent_id),
        "author_name": comment.author_name,
        "author_website": optional(&comment.author_website),
        "avatar_seed": comment.avatar_seed,
        "body": comment.body,
        "body_html": comment.body_html,
        "created_at": rfc3339(comment.created_at.as_ref()),
        "depth": comment.depth,
        "status": status_word(comment.status),
    })
}

/// A `SpamReason` as JSON.
pub fn reason_json(reason: &SpamReason) -> Value {
    json!({
        "rule": reason.rule,
        "weight": reason.weight,
        "reason": reason.reason,
        "log_only": reason.log_only,
    })
}

/// An `Assessment` as JSON.
pub fn assessment_json(assessment: &Assessment) -> Value {
    json!({
        "score": assessment.score,
        "verdict": verdict_word(assessment.verdict),
        "reasons": assessment.reasons.iter().map(reason_json).collect::<Vec<_>>(),
    })
}

/// A `QueueItem` as JSON.
pub fn queue_item_json(item: &QueueItem) -> Value {
    json!({
        "comment": item.comment.as_ref().map(comment_json),
        "site": item.site,
        "masked_email": item.masked_email,
        "author_hash": item.author_hash,
        "raw_body": item.raw_body,
        "ip": optional(&item.ip),
        "user_agent": optional(&item.user_agent),
        "assessment": item.assessment.as_ref().map(assessment_json),
        "updated_at": rfc3339(item.updated_at.as_ref()),
    })
}

/// An `AuditEntry` as JSON.
pub fn audit_json(entry: &AuditEntry) -> Value {
    json!({
        "id": entry.id,
        "comment_id": optional(&entry.comment_id),
        "action": entry.action,
        "actor": entry.actor,
        "note": optional(&entry.note),
        "from_status": status_word(entry.from_status),
        "to_status": status_word(entry.to_status),
        "created_at": rfc3339(entry.created_at.as_ref()),
    })
}

/// A block kind as the word `replyctl block` and the server's audit notes use.
pub(crate) fn block_kind_word(kind: i32) -> Option<&'static str> {
    match BlockKind::try_from(kind).ok()? {
        BlockKind::Unspecified => None,
        BlockKind::Author => Some("author"),
        BlockKind::Ip => Some("ip"),
        BlockKind::EmailDomain => Some("email-domain"),
        BlockKind::WebsiteDomain => Some("website-domain"),
    }
}

/// A `BlockResponse` as JSON.
pub fn block_json(answer: &BlockResponse) -> Value {
    let mut json = block_entry_json(&answer.entry.clone().unwrap_or_default());
    json["already_blocked"] = json!(answer.already_blocked);
    json["rejected_ids"] = json!(answer.rejected_ids);
    json
}

/// A `BlockEntry` as JSON.
fn block_entry_json(entry: &BlockEntry) -> Value {
    json!({
        "kind": block_kind_word(entry.kind),
        "value": entry.value,
        "actor": entry.actor,
        "created_at": rfc3339(entry.created_at.as_ref()),
        "note": entry.note,
        "expires_at": rfc3339(entry.expires_at.as_ref()),
        "hits": entry.hits,
        "last_hit_at": rfc3339(entry.last_hit_at.as_ref()),
    })
}

/// An `AuthorComment` as JSON.
pub fn author_comment_json(comment: &AuthorComment) -> Value {
    json!({
        "id": comment.id,
        "article": comment.article,
        "parent_id": optional(&comment.parent_id),
        "status": status_word(comment.status),
        "created_at": rfc3339(comment.created_at.as_ref()),
        "author_name": comment.author_name,
        "email": comment.email,
        "website": optional(&comment.website),
        "body": comment.body,
        "ip": optional(&comment.ip),
        "user_agent": optional(&comment.user_agent),
        "referrer": optional(&comment.referrer),
    })
}

/// A `ModerateResult` as JSON; `code` is the gRPC code's name and `ok` saves
/// scripts from comparing it.
pub fn moderate_result_json(result: &ModerateResult) -> Value {
    let code = Code::from_i32(result.code);
    json!({
        "id": result.id,
        "ok": code == Code::Ok,
        "code": code_name(code),
        "message": optional(&result.message),
        "status": status_word(result.status),
    })
}

/// A `Policy` as JSON.
pub fn policy_json(policy: &Policy) -> Value {
    json!({
        "mode": policy.mode,
        "hold_threshold": policy.hold_threshold,
        "spam_threshold": policy.spam_threshold,
        "max_links": policy.max_links,
        "flood_interval_seconds": policy.flood_interval_seconds,
        "min_form_seconds": policy.min_form_seconds,
        "require_form_token": policy.require_form_token,
        "hold_new_authors": policy.hold_new_authors,
        "report_hold": policy.report_hold,
        "edit_window_seconds": policy.edit_window_seconds,
        "close_after_days": policy.close_after_days,
        "auto_block_spam": policy.auto_block_spam,
        "auto_block_window_minutes": policy.auto_block_window_minutes,
        "auto_block_hours": policy.auto_block_hours,
        "blocked_terms": policy.blocked_terms,
        "moderation_terms": policy.moderation_terms,
        "blocked_ips": policy.blocked_ips,
        "blocked_email_domains": policy.blocked_email_domains,
        "blocked_websites": policy.blocked_websites,
        "allowed_scripts": policy.allowed_scripts,
        // Sorted by name: the proto map has no order.
        "rules": policy
            .rules
            .iter()
            .map(|(name, setting)| {
                let setting = json!({ "state": setting.state, "weight": setting.weight });
                (name.clone(), setting)
            })
            .collect::<std::collections::BTreeMap<_, _>>(),
        "rules_in_force": policy.rules_in_force.iter().map(rule_json).collect::<Vec<_>>(),
    })
}

/// A `RuleInfo` as JSON.
pub fn rule_json(rule: &RuleInfo) -> Value {
    json!({
        "name": rule.name,
        "state": rule.state,
        "weight": rule.weight,
        "default_weight": rule.default_weight,
        "about": rule.about,
    })
}

// ---------------------------------------------------------------------------
// Whole command outputs.

/// `queue`: the items, and whether the queue has more than were fetched.
pub fn queue(format: OutputFormat, status: &str, items: &[QueueItem], more: bool) -> String {
    if format == OutputFormat::Json {
        return pretty(&json!({
            "items": items.iter().map(queue_item_json).collect::<Vec<_>>(),
            "more": more,
        }));
    }
    if items.is_empty() {
        return format!("The {status} queue is empty.");
    }
    let mut table = new_table(&["ID", "RECEIVED", "ARTICLE", "AUTHOR", "SCORE", "TEXT"]);
    let ids = short_ids(
        items
            .iter()
            .map(|item| item.comment.as_ref().map_or("", |c| c.id.as_str())),
    );
    for (item, id) in items.iter().zip(ids) {
        let comment = item.comment.clone().unwrap_or_default();
        let assessment = item.assessment.clone().unwrap_or_default();
        let text = if item.raw_body.is_empty() {
            &comment.body
        } else {
            &item.raw_body
        };
        table.add_row(vec![
            id,
            table_time(comment.created_at.as_ref()),
            comment.article.clone(),
            format!(
                "{} <{}>",
                comment.author_name,
                dash_if_empty(&item.masked_email)
            ),
            format!(
                "{} {}: {}",
                number(assessment.score),
                verdict_word(assessment.verdict).unwrap_or("-"),
                top_reasons(&assessment)
            ),
            excerpt(text),
        ]);
    }
    keep_whole(&mut table, &[0]);
    let mut out = render(&table);
    if more {
        out.push_str(&format!(
            "\n(first {} shown; raise --limit for more)",
            items.len()
        ));
    }
    out
}

/// `show`: one comment as a moderator sees it, with reasons and history.
pub fn show(format: OutputFormat, item: &QueueItem, history: &[AuditEntry]) -> String {
    if format == OutputFormat::Json {
        return pretty(&json!({
            "comment": queue_item_json(item),
            "history": history.iter().map(audit_json).collect::<Vec<_>>(),
        }));
    }
    let comment = item.comment.clone().unwrap_or_default();
    let assessment = item.assessment.clone().unwrap_or_default();

    let mut about = Table::new();
    about.load_preset(comfy_table::presets::NOTHING);
    let rows: [(&str, String); 15] = [
        ("id", comment.id.clone()),
        ("site", item.site.clone()),
        ("article", comment.article.clone()),
        ("reply to", dash_if_empty(&comment.parent_id).to_owned()),
        (
            "status",
            status_word(comment.status).unwrap_or("-").to_owned(),
        ),
        ("author", comment.author_name.clone()),
        ("author hash", dash_if_empty(&item.author_hash).to_owned()),
        ("email", dash_if_empty(&item.masked_email).to_owned()),
        ("website", dash_if_empty(&comment.author_website).to_owned()),
        ("ip", dash_if_empty(&item.ip).to_owned()),
        ("user agent", dash_if_empty(&item.user_agent).to_owned()),
        ("received", table_time(comment.created_at.as_ref())),
        ("updated", table_time(item.updated_at.as_ref())),
        ("score", number(assessment.score)),
        (
            "verdict",
            verdict_word(assessment.verdict).unwrap_or("-").to_owned(),
        ),
    ];
    for (key, value) in rows {
        about.add_row(vec![format!("{key}:"), value]);
    }

    let mut out = render(&about);
    out.push_str("\n\nText:\n");
    let text = if item.raw_body.is_empty() {
        &comment.body
    } else {
        &item.raw_body
    };
    out.push_str(&wrap(text, "  ", width()));

    out.push_str("\nSpam reasons:\n");
    if assessment.reasons.is_empty() {
        out.push_str("  none\n");
    } else {
        let mut reasons = new_table(&["RULE", "WEIGHT", "REASON"]);
        for reason in &assessment.reasons {
            let mut why = reason.reason.clone();
            if reason.log_only {
                why.push_str(" (log only, not counted)");
            }
            reasons.add_row(vec![reason.rule.clone(), number(reason.weight), why]);
        }
        align_right(&mut reasons, 1);
        keep_whole(&mut reasons, &[0, 1]);
        out.push_str(&render(&reasons));
        out.push('\n');
    }

    out.push_str("\nHistory:\n");
    if history.is_empty() {
        out.push_str("  none");
    } else {
        let mut log = new_table(&["WHEN", "ACTION", "BY", "CHANGE", "NOTE"]);
        for entry in history {
            log.add_row(vec![
                table_time(entry.created_at.as_ref()),
                entry.action.clone(),
                entry.actor.clone(),
                change(entry),
                dash_if_empty(&entry.note).to_owned(),
            ]);
        }
        out.push_str(&render(&log));
    }
    out
}

/// `approve`, `reject`, `spam`, `ham`, `delete`: one row per requested id.
pub fn moderate(format: OutputFormat, decision: Decision, results: &[ModerateResult]) -> String {
    if format == OutputFormat::Json {
        return pretty(&json!({
            "action": decision.name(),
            "results": results.iter().map(moderate_result_json).collect::<Vec<_>>(),
        }));
    }
    let mut table = new_table(&["ID", "RESULT", "STATUS", "MESSAGE"]);
    let ids = short_ids(results.iter().map(|result| result.id.as_str()));
    for (result, id) in results.iter().zip(ids) {
        let code = Code::from_i32(result.code);
        let outcome = if code == Code::Ok {
            "ok"
        } else {
            code_name(code)
        };
        let status = match (code, decision) {
            (Code::Ok, Decision::Delete) => "deleted",
            _ => status_word(result.status).unwrap_or("-"),
        };
        table.add_row(vec![
            id,
            outcome.to_owned(),
            status.to_owned(),
            dash_if_empty(&result.message).to_owned(),
        ]);
    }
    keep_whole(&mut table, &[0, 1, 2]);
    render(&table)
}

/// `submit`: the new comment's id and the status it was given.
pub fn submitted(format: OutputFormat, comment: &Comment, status: i32) -> String {
    if format == OutputFormat::Json {
        return pretty(&json!({
            "comment": comment_json(comment),
            "status": status_word(status),
        }));
    }
    format!("{}  {}", comment.id, status_word(status).unwrap_or("-"))
}

/// `comments`: an article's approved comments, replies indented under their
/// parents.
pub fn comments(
    format: OutputFormat,
    article: &str,
    comments: &[Comment],
    total: u64,
    closed: bool,
    more: bool,
) -> String {
    if format == OutputFormat::Json {
        return pretty(&json!({
            "article": article,
            "total_count": total,
            "closed": closed,
            "comments": comments.iter().map(comment_json).collect::<Vec<_>>(),
            "more": more,
        }));
    }
    let closed_note = if closed {
        "; closed to new replies"
    } else {
        ""
    };
    if comments.is_empty() {
        return format!("No approved comments on {article}{closed_note}.");
    }
    let mut table = new_table(&["ID", "POSTED", "AUTHOR", "TEXT"]);
    // Only the author column is indented, so ids and times stay aligned.
    let ids = short_ids(comments.iter().map(|comment| comment.id.as_str()));
    for (comment, id) in comments.iter().zip(ids) {
        let indent = "  ".repeat(usize::try_from(comment.depth).unwrap_or(0));
        let marker = if comment.depth > 0 { "↳ " } else { "" };
        table.add_row(vec![
            id,
            table_time(comment.created_at.as_ref()),
            format!("{indent}{marker}{}", comment.author_name),
            excerpt(&comment.body),
        ]);
    }
    keep_whole(&mut table, &[0]);
    let mut out = render(&table);
    out.push_str(&format!(
        "\n{} of {total} approved comments shown{closed_note}",
        comments.len()
    ));
    out
}

/// `closed`: the site's closed articles, by key.
pub fn closed_articles(format: OutputFormat, articles: &[ClosedArticle]) -> String {
    if format == OutputFormat::Json {
        let articles: Vec<Value> = articles
            .iter()
            .map(|closed| {
                json!({
                    "article": closed.article,
                    "actor": closed.actor,
                    "closed_at": rfc3339(closed.closed_at.as_ref()),
                    "note": closed.note,
                })
            })
            .collect();
        return pretty(&json!({ "articles": articles }));
    }
    if articles.is_empty() {
        return "No article is closed.".to_owned();
    }
    // A close made ahead of time shows the time it takes effect.
    let mut table = new_table(&["ARTICLE", "BY", "CLOSED FROM", "NOTE"]);
    for closed in articles {
        table.add_row(vec![
            closed.article.clone(),
            closed.actor.clone(),
            table_time(closed.closed_at.as_ref()),
            or_dash_text(&closed.note),
        ]);
    }
    render(&table)
}

/// `close` and `reopen`: what changed; `at` is when a close takes effect, if not now.
pub fn closed(
    format: OutputFormat,
    article: &str,
    closed: bool,
    changed: bool,
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> String {
    let ahead = at.filter(|at| *at > chrono::Utc::now());
    if format == OutputFormat::Json {
        let closes_at = ahead.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        return pretty(&json!({
            "article": article,
            "closed": closed,
            "changed": changed,
            "closes_at": closes_at,
        }));
    }
    match (closed, changed, ahead) {
        (true, true, Some(at)) => {
            let at = table_time(Some(&prost_types::Timestamp {
                seconds: at.timestamp(),
                nanos: 0,
            }));
            format!("{article} closes to new replies at {at}.")
        }
        (true, true, None) => format!("Closed {article} to new replies."),
        (true, false, _) => format!("{article} was closed already; nothing changed."),
        (false, true, _) => format!("Opened {article} to new replies again."),
        (false, false, _) => format!("{article} was not closed; nothing changed."),
    }
}

/// `policy show` and `policy set`: the whole policy, keyed as `policy set`
/// takes it, then every rule in force.
pub fn policy(format: OutputFormat, policy: &Policy) -> String {
    if format == OutputFormat::Json {
        return pretty(&policy_json(policy));
    }
    let mut table = new_table(&["KEY", "VALUE"]);
    keep_whole(&mut table, &[0]);
    table.add_rows(
        policy_settings(policy)
            .into_iter()
            .map(|(key, value)| vec![key.to_owned(), value]),
    );
    let mut out = render(&table);
    if !policy.rules_in_force.is_empty() {
        let mut rules = new_table(&["RULE", "STATE", "WEIGHT", "DEFAULT", "WHAT IT LOOKS FOR"]);
        for rule in &policy.rules_in_force {
            rules.add_row(vec![
                rule.name.clone(),
                rule.state.clone(),
                number(rule.weight),
                number(rule.default_weight),
                rule.about.clone(),
            ]);
        }
        align_right(&mut rules, 2);
        align_right(&mut rules, 3);
        keep_whole(&mut rules, &[0, 1, 2, 3]);
        out.push_str("\n\nRules (change one with `policy set rule.NAME VALUE`):\n");
        out.push_str(&render(&rules));
    }
    out
}

/// Every setting as `policy set` takes it, with its value as `policy show` prints it.
fn policy_settings(policy: &Policy) -> Vec<(&'static str, String)> {
    fn or_dash<T: ToString>(value: Option<T>) -> String {
        value.map_or_else(|| "-".to_owned(), |value| value.to_string())
    }
    let terms = |terms: &[String]| {
        if terms.is_empty() {
            "-".to_owned()
        } else {
            terms.join(", ")
        }
    };
    vec![
        ("mode", or_dash(policy.mode.as_deref())),
        ("hold-threshold", or_dash(policy.hold_threshold.map(number))),
        ("spam-threshold", or_dash(policy.spam_threshold.map(number))),
        ("max-links", or_dash(policy.max_links)),
        (
            "flood-interval-seconds",
            or_dash(policy.flood_interval_seconds),
        ),
        ("min-form-seconds", or_dash(policy.min_form_seconds)),
        ("require-form-token", or_dash(policy.require_form_token)),
        ("hold-new-authors", or_dash(policy.hold_new_authors)),
        ("report-hold", or_dash(policy.report_hold)),
        ("edit-window-seconds", or_dash(policy.edit_window_seconds)),
        ("close-after-days", or_dash(policy.close_after_days)),
        ("auto-block-spam", or_dash(policy.auto_block_spam)),
        (
            "auto-block-window-minutes",
            or_dash(policy.auto_block_window_minutes),
        ),
        ("auto-block-hours", or_dash(policy.auto_block_hours)),
        ("blocked-terms", terms(&policy.blocked_terms)),
        ("moderation-terms", terms(&policy.moderation_terms)),
        ("blocked-ips", terms(&policy.blocked_ips)),
        (
            "blocked-email-domains",
            terms(&policy.blocked_email_domains),
        ),
        ("blocked-websites", terms(&policy.blocked_websites)),
        ("allowed-scripts", terms(&policy.allowed_scripts)),
    ]
}

/// `policy try`: what the change would move, per status change with the latest examples.
pub fn policy_trial(
    format: OutputFormat,
    key: &str,
    value: &str,
    days: u32,
    trial: &replyguard::proto::TryPolicyResponse,
) -> String {
    let word = |status: i32| status_word(status).unwrap_or("-");
    let counts = |counts: &[replyguard::proto::StatusCount]| {
        counts
            .iter()
            .map(|c| format!("{} {}", word(c.status), c.count))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if format == OutputFormat::Json {
        let moves: Vec<Value> = trial
            .moves
            .iter()
            .map(|m| {
                let now: serde_json::Map<String, Value> = m
                    .now
                    .iter()
                    .map(|c| (word(c.status).to_owned(), json!(c.count)))
                    .collect();
                let examples: Vec<Value> = m
                    .examples
                    .iter()
                    .map(|e| {
                        json!({
                            "comment_id": e.comment_id,
                            "article": e.article,
                            "created_at": rfc3339(e.created_at.as_ref()),
                            "excerpt": e.excerpt,
                            "status": word(e.status),
                            "score_before": e.score_before,
                            "score_after": e.score_after,
                            "rules": e.rules,
                        })
                    })
                    .collect();
                json!({
                    "from": word(m.from),
                    "to": word(m.to),
                    "count": m.count,
                    "now": now,
                    "examples": examples,
                })
            })
            .collect();
        return pretty(&json!({
            "key": key,
            "value": value,
            "days": days,
            "since": rfc3339(trial.since.as_ref()),
            "changed": trial.changed,
            "replayed": trial.replayed,
            "unchanged": trial.unchanged,
            "skipped": trial.skipped,
            "moves": moves,
        }));
    }
    let moved: u64 = trial.moves.iter().map(|m| m.count).sum();
    let mut out = format!(
        "{key} {value}: {} replies since {} replayed; {} would keep their status, {moved} would \
         move{}.",
        trial.replayed,
        table_time(trial.since.as_ref()),
        trial.unchanged,
        match trial.skipped {
            0 => String::new(),
            n => format!(" ({n} could not be replayed)"),
        }
    );
    if trial.changed.is_empty() {
        out.push_str(" The change changes nothing in the policy.");
    }
    if trial.moves.is_empty() {
        return out;
    }
    let mut table = new_table(&["FROM", "TO", "REPLIES", "NOW"]);
    for m in &trial.moves {
        table.add_row(vec![
            word(m.from).to_owned(),
            word(m.to).to_owned(),
            m.count.to_string(),
            counts(&m.now),
        ]);
    }
    align_right(&mut table, 2);
    out.push_str("\n\n");
    out.push_str(&render(&table));
    for m in &trial.moves {
        out.push_str(&format!(
            "\n\n{} → {}, the latest:",
            word(m.from),
            word(m.to)
        ));
        let mut examples = new_table(&["ID", "ARTICLE", "RECEIVED", "SCORE", "RULES", "TEXT"]);
        let ids = short_ids(m.examples.iter().map(|e| e.comment_id.as_str()));
        for (example, id) in m.examples.iter().zip(ids) {
            examples.add_row(vec![
                id,
                example.article.clone(),
                table_time(example.created_at.as_ref()),
                format!(
                    "{} → {}",
                    number(example.score_before),
                    number(example.score_after)
                ),
                or_dash_text(&example.rules.join(", ")),
                example.excerpt.clone(),
            ]);
        }
        out.push('\n');
        out.push_str(&render(&examples));
    }
    out
}

/// Every setting and rule of a policy, keyed as `policy set` takes them: `max-links`,
/// `rule.links` (its state and weight).
fn policy_values(policy: &Policy) -> Vec<(String, String)> {
    let mut values: Vec<(String, String)> = policy_settings(policy)
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
    values.extend(policy.rules_in_force.iter().map(|rule| {
        (
            format!("rule.{}", rule.name),
            format!("{}:{}", rule.state, number(rule.weight)),
        )
    }));
    values
}

/// The current value of one key of `policy set`; `None` for a rule the policy does not have.
pub fn policy_value(policy: &Policy, key: &str) -> Option<String> {
    policy_values(policy)
        .into_iter()
        .find(|(known, _)| known == key)
        .map(|(_, value)| value)
}

/// `policy set`: what changed, one `key: before → after` line each; in JSON the whole policy
/// as it now is.
pub fn policy_changed(format: OutputFormat, key: &str, before: &Policy, after: &Policy) -> String {
    if format == OutputFormat::Json {
        return pretty(&policy_json(after));
    }
    let old = policy_values(before);
    let lines: Vec<String> = policy_values(after)
        .into_iter()
        .filter_map(|(name, value)| {
            let was = old
                .iter()
                .find(|(known, _)| *known == name)
                .map_or("-", |(_, was)| was.as_str());
            (was != value).then(|| format!("{name}: {was} → {value}"))
        })
        .collect();
    if lines.is_empty() {
        let now = policy_value(after, key).unwrap_or_else(|| "-".to_owned());
        return format!("{key} is {now} already; nothing changed.");
    }
    lines.join("\n")
}

/// `erase`: how many comments were affected.
pub fn erased(format: OutputFormat, affected: u64) -> String {
    if format == OutputFormat::Json {
        return pretty(&json!({ "comments_affected": affected }));
    }
    match affected {
        1 => "1 comment erased or anonymised.".to_owned(),
        n => format!("{n} comments erased or anonymised."),
    }
}

/// `erase --dry-run`: how many comments would be affected.
pub fn erase_dry_run(format: OutputFormat, affected: u64) -> String {
    if format == OutputFormat::Json {
        return pretty(&json!({ "comments_affected": affected, "dry_run": true }));
    }
    match affected {
        1 => "dry run: 1 comment would be erased or anonymised; nothing changed.".to_owned(),
        n => format!("dry run: {n} comments would be erased or anonymised; nothing changed."),
    }
}

/// `export`: always JSON, the person's data as the service holds it.
pub fn export(email: &str, export: &ExportAuthorResponse) -> String {
    pretty(&json!({
        "site": export.site,
        "email": email,
        "comments": export.comments.iter().map(author_comment_json).collect::<Vec<_>>(),
    }))
}

/// `reveal`: the email alone, so that `$(replyctl reveal …)` is just the address.
pub fn revealed(format: OutputFormat, id: &str, email: &str) -> String {
    if format == OutputFormat::Json {
        return pretty(&json!({ "id": id, "email": email }));
    }
    email.to_owned()
}

/// `block`: one row per entry, with the replies it rejected.
pub fn blocked(format: OutputFormat, answers: &[BlockResponse]) -> String {
    if format == OutputFormat::Json {
        return pretty(&json!({
            "entries": answers.iter().map(block_json).collect::<Vec<_>>(),
        }));
    }
    let mut table = new_table(&["KIND", "VALUE", "RESULT", "REJECTED"]);
    for answer in answers {
        let entry = answer.entry.clone().unwrap_or_default();
        let result = if answer.already_blocked {
            "already blocked"
        } else {
            "blocked"
        };
        table.add_row(vec![
            block_kind_word(entry.kind).unwrap_or("-").to_owned(),
            entry.value,
            result.to_owned(),
            answer.rejected_ids.len().to_string(),
        ]);
    }
    align_right(&mut table, 3);
    render(&table)
}

/// A report reason as `ReportComment` takes it and `reports` shows it.
fn report_reason_word(reason: i32) -> &'static str {
    use replyguard::proto::ReportReason;
    match ReportReason::try_from(reason) {
        Ok(ReportReason::Spam) => "spam",
        Ok(ReportReason::Abuse) => "abuse",
        Ok(ReportReason::OffTopic) => "off-topic",
        Ok(ReportReason::PersonalData) => "personal-data",
        Ok(ReportReason::Illegal) => "illegal",
        Ok(ReportReason::Unspecified) | Err(_) => "-",
    }
}

/// `reports`: a site's reported comments, by id.
pub fn reports(format: OutputFormat, reported: &[replyguard::proto::ReportedComment]) -> String {
    if format == OutputFormat::Json {
        let comments: Vec<Value> = reported
            .iter()
            .map(|c| {
                let reasons: serde_json::Map<String, Value> = c
                    .reasons
                    .iter()
                    .map(|r| (report_reason_word(r.reason).to_owned(), json!(r.count)))
                    .collect();
                json!({
                    "comment_id": c.comment_id,
                    "article": c.article,
                    "status": status_word(c.status),
                    "author_name": c.author_name,
                    "body": c.body,
                    "reports": c.reports,
                    "reasons": reasons,
                    "texts": c.texts,
                    "last_reported_at": rfc3339(c.last_reported_at.as_ref()),
                })
            })
            .collect();
        return pretty(&json!({ "comments": comments }));
    }
    if reported.is_empty() {
        return "No comment is reported.".to_owned();
    }
    let mut table = new_table(&["ID", "ARTICLE", "STATUS", "REPORTS", "WHY", "LAST", "TEXT"]);
    for c in reported {
        let why: Vec<String> = c
            .reasons
            .iter()
            .map(|r| format!("{} {}", report_reason_word(r.reason), r.count))
            .collect();
        table.add_row(vec![
            c.comment_id.clone(),
            c.article.clone(),
            status_word(c.status).unwrap_or("-").to_owned(),
            c.reports.to_string(),
            why.join(", "),
            table_time(c.last_reported_at.as_ref()),
            excerpt(&c.body),
        ]);
    }
    render(&table)
}

/// A text, or `-` for none.
fn or_dash_text(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

/// `blocks`: a site's blocklist, by kind and then value.
pub fn blocks(format: OutputFormat, entries: &[BlockEntry]) -> String {
    if format == OutputFormat::Json {
        return pretty(&json!({
            "entries": entries.iter().map(block_entry_json).collect::<Vec<_>>(),
        }));
    }
    if entries.is_empty() {
        return "The blocklist is empty.".to_owned();
    }
    let mut table = new_table(&[
        "KIND", "VALUE", "BY", "SINCE", "UNTIL", "HITS", "LAST HIT", "NOTE",
    ]);
    for entry in entries {
        table.add_row(vec![
            block_kind_word(entry.kind).unwrap_or("-").to_owned(),
            entry.value.clone(),
            entry.actor.clone(),
            table_time(entry.created_at.as_ref()),
            table_time(entry.expires_at.as_ref()),
            entry.hits.to_string(),
            table_time(entry.last_hit_at.as_ref()),
            or_dash_text(&entry.note),
        ]);
    }
    render(&table)
}

/// `unblock`: which entries of `value` were taken off, each as `(kind, removed)`.
pub fn unblocked(format: OutputFormat, value: &str, removed: &[(i32, bool)]) -> String {
    if format == OutputFormat::Json {
        let entries: Vec<Value> = removed
            .iter()
            .map(|(kind, removed)| {
                json!({ "kind": block_kind_word(*kind), "value": value, "removed": removed })
            })
            .collect();
        return pretty(&json!({
            "value": value,
            "removed": removed.iter().any(|(_, removed)| *removed),
            "entries": entries,
        }));
    }
    removed
        .iter()
        .map(|(kind, removed)| {
            let kind = block_kind_word(*kind).unwrap_or("-");
            if *removed {
                format!("Unblocked {kind} {value}.")
            } else {
                format!("{kind} {value} was not on the blocklist.")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `audit`: newest first, one row per entry.
pub fn audit(format: OutputFormat, entries: &[AuditEntry], more: bool) -> String {
    if format == OutputFormat::Json {
        return pretty(&json!({
            "entries": entries.iter().map(audit_json).collect::<Vec<_>>(),
            "more": more,
        }));
    }
    if entries.is_empty() {
        return "The audit log is empty.".to_owned();
    }
    let mut table = new_table(&["WHEN", "ACTION", "BY", "COMMENT", "CHANGE", "NOTE"]);
    let comments = short_ids(
        entries
            .iter()
            .map(|entry| entry.comment_id.as_str())
            .filter(|id| !id.is_empty()),
    );
    let mut comments = comments.into_iter();
    for entry in entries {
        let comment = if entry.comment_id.is_empty() {
            "-".to_owned()
        } else {
            comments.next().unwrap_or_default()
        };
        table.add_row(vec![
            table_time_seconds(entry.created_at.as_ref()),
            entry.action.clone(),
            entry.actor.clone(),
            comment,
            change(entry),
            dash_if_empty(&entry.note).to_owned(),
        ]);
    }
    keep_whole(&mut table, &[2, 3]);
    let mut out = render(&table);
    if more {
        out.push_str(&format!(
            "\n(newest {} shown; raise --limit for more)",
            entries.len()
        ));
    }
    out
}

/// `pending → approved`, `→ pending` or `-`.
fn change(entry: &AuditEntry) -> String {
    match (status_word(entry.from_status), status_word(entry.to_status)) {
        (Some(from), Some(to)) => format!("{from} → {to}"),
        (None, Some(to)) => format!("→ {to}"),
        (Some(from), None) => format!("{from} →"),
        (None, None) => "-".to_owned(),
    }
}

/// `watch`: one line per new item, written as soon as it arrives; in JSON mode
/// one compact object per line. `shown` holds the ids told before, so that each line's
/// short id differs from theirs.
pub fn watch_line(format: OutputFormat, item: &QueueItem, shown: &mut Vec<String>) -> String {
    if format == OutputFormat::Json {
        return queue_item_json(item).to_string();
    }
    let comment = item.comment.clone().unwrap_or_default();
    shown.push(comment.id.clone());
    let id = short_ids(shown.iter().map(String::as_str))
        .pop()
        .unwrap_or_default();
    let assessment = item.assessment.clone().unwrap_or_default();
    let text = if item.raw_body.is_empty() {
        &comment.body
    } else {
        &item.raw_body
    };
    format!(
        "{}  {}  {}  score {} ({}: {})  {}  {} <{}>  {}",
        table_time(comment.created_at.as_ref()),
        id,
        status_word(comment.status).unwrap_or("-"),
        number(assessment.score),
        verdict_word(assessment.verdict).unwrap_or("-"),
        top_reasons(&assessment),
        comment.article,
        comment.author_name,
        dash_if_empty(&item.masked_email),
        excerpt(text),
    )
}

fn align_right(table: &mut Table, column: usize) {
    if let Some(column) = table.column_mut(column) {
        column.set_cell_alignment(CellAlignment::Right);
    }
}
