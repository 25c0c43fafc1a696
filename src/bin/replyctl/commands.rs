//! What each command does: build its requests, follow pages, hand the answers
//! to `output`.
//!
//! Arguments are checked before connecting, so a typo is reported as such even
//! when the server is down. Nothing here picks exit codes, and only `watch` writes to
//! stderr (what it is doing, so that stdout stays one item per line).

use std::{
    collections::HashSet,
    io::{self, BufRead, IsTerminal, Write},
    time::Duration,
};

use replyguard::proto::{
    Author, BlockKind, BlockRequest, ClientInfo, CloseArticleRequest, CommentStatus,
    EraseAuthorRequest, ExportAuthorRequest, GetCommentRequest, GetPolicyRequest, ListAuditRequest,
    ListBlocksRequest, ListClosedArticlesRequest, ListCommentsRequest, ListOrder, ListQueueRequest,
    ModerateRequest, ReopenArticleRequest, RevealEmailRequest, SubmitCommentRequest,
    TryPolicyRequest, UnblockRequest, UpdatePolicyRequest, WatchQueueRequest, WatchQueueResponse,
};
use tonic::{Code, Status, Streaming};

use crate::{
    bulk,
    cli::{
        ArticleArgs, AuditArgs, BlockCommand, BlockOptions, CloseArgs, Command, CommentsArgs,
        Decision, DecisionArgs, DomainScope, EntryKind, EraseArgs, ExportArgs, GlobalArgs,
        OutputFormat, PolicyCommand, PolicySetArgs, PolicyTryArgs, QueueArgs, RevealArgs, SiteArg,
        StatusArg, SubmitArgs, UnblockArgs,
    },
    client::{self, Clients},
    error::CliError,
    output::{self, emit},
    review,
};

/// The largest page `ListQueue` serves.
const MAX_QUEUE_PAGE: u32 = 500;

/// The largest page `ListComments` serves.
const MAX_COMMENTS_PAGE: u32 = 200;

/// The largest page `ListAudit` serves.
const MAX_AUDIT_PAGE: u32 = 500;

/// Runs one command against the server named in `global`.
pub async fn run(
    global: GlobalArgs,
    format: OutputFormat,
    command: Command,
) -> Result<(), CliError> {
    // What needs no server is done without one.
    match &command {
        Command::Completions { shell } => {
            return Ok(replyguard::tools::shell::completions(
                <crate::cli::Cli as clap::CommandFactory>::command(),
                *shell,
            )?);
        }
        Command::Man => {
            return Ok(replyguard::tools::shell::man(
                <crate::cli::Cli as clap::CommandFactory>::command(),
            )?);
        }
        _ => {}
    }
    // Everything that can be refused without the server is refused first.
    match &command {
        Command::Policy(PolicyCommand::Set(args)) => {
            args.update()
                .map_err(|message| CliError::PolicyValue("set", message))?;
        }
        Command::Policy(PolicyCommand::Try(args)) => {
            args.change
                .update()
                .map_err(|message| CliError::PolicyValue("try", message))?;
        }
        Command::Approve(args)
        | Command::Reject(args)
        | Command::Spam(args)
        | Command::Ham(args)
        | Command::Delete(args)
            if args.ids.is_empty() && !args.select.is_set() =>
        {
            return Err(CliError::NothingChosen);
        }
        _ => {}
    }

    if global.token.is_none() {
        return Err(CliError::NoToken);
    }
    let mut clients = client::connect(&global.endpoint, &global.tls, global.token.as_ref()).await?;
    match command {
        Command::Queue(args) => queue(&mut clients, format, args).await,
        Command::Show { id } => show(&mut clients, format, id).await,
        Command::Approve(args) => moderate(&mut clients, format, Decision::Approve, args).await,
        Command::Reject(args) => moderate(&mut clients, format, Decision::Reject, args).await,
        Command::Spam(args) => moderate(&mut clients, format, Decision::Spam, args).await,
        Command::Ham(args) => moderate(&mut clients, format, Decision::Ham, args).await,
        Command::Delete(args) => moderate(&mut clients, format, Decision::Delete, args).await,
        Command::Review(site) => review::review(&mut clients, format, site).await,
        Command::Watch(site) => watch(&mut clients, format, site).await,
        Command::Policy(PolicyCommand::Show(site)) => policy_show(&mut clients, format, site).await,
        Command::Policy(PolicyCommand::Set(args)) => policy_set(&mut clients, format, args).await,
        Command::Policy(PolicyCommand::Try(args)) => policy_try(&mut clients, format, args).await,
        Command::Erase(args) => erase(&mut clients, format, args).await,
        Command::Export(args) => export(&mut clients, args).await,
        Command::Reveal(args) => reveal(&mut clients, format, args).await,
        Command::Block(command) => block(&mut clients, format, command).await,
        Command::Blocks(site) => blocks(&mut clients, format, site).await,
        Command::Unblock(args) => unblock(&mut clients, format, args).await,
        Command::Close(args) => close(&mut clients, format, args).await,
        Command::Reopen(args) => reopen(&mut clients, format, args).await,
        Command::Closed(site) => closed_articles(&mut clients, format, site).await,
        Command::Reports(site) => reports(&mut clients, format, site).await,
        Command::Audit(args) => audit(&mut clients, format, args).await,
        Command::Submit(args) => submit(&mut clients, format, args).await,
        Command::Comments(args) => comments(&mut clients, format, args).await,
        Command::Webhook(command) => crate::webhooks::run(&mut clients, format, command).await,
        Command::Notify(command) => crate::notices::run(&mut clients, format, command).await,
        Command::Completions { .. } | Command::Man => Ok(()),
    }
}

async fn queue(
    clients: &mut Clients,
    format: OutputFormat,
    args: QueueArgs,
) -> Result<(), CliError> {
    let limit = usize::try_from(args.limit).unwrap_or(usize::MAX);
    let status = CommentStatus::from(args.status);
    let mut items = Vec::new();
    let mut page_token = String::new();
    loop {
        let remaining = u32::try_from(limit - items.len()).unwrap_or(MAX_QUEUE_PAGE);
        let request = ListQueueRequest {
            site: args.site.name(),
            status: status as i32,
            article: args.article.clone().unwrap_or_default(),
            page_size: remaining.min(MAX_QUEUE_PAGE),
            page_token: page_token.clone(),
        };
        let page = clients
            .moderation
            .list_queue(request)
            .await
            .map_err(CliError::rpc("listing the queue"))?
            .into_inner();
        items.extend(page.items);
        // A repeated cursor would loop forever; treat it as the end.
        let stuck = page.next_page_token == page_token;
        page_token = page.next_page_token;
        if page_token.is_empty() || stuck || items.len() >= limit {
            break;
        }
    }
    let more = items.len() > limit || !page_token.is_empty();
    items.truncate(limit);
    let status_word = output::status_word(status as i32).unwrap_or("pending");
    emit(&output::queue(format, status_word, &items, more))
}

async fn show(clients: &mut Clients, format: OutputFormat, id: String) -> Result<(), CliError> {
    let what = format!("fetching comment {id}");
    let response = clients
        .moderation
        .get_comment(GetCommentRequest { id })
        .await
        .map_err(CliError::rpc(what))?
        .into_inner();
    let item = response.comment.unwrap_or_default();
    emit(&output::show(format, &item, &response.history))
}

async fn moderate(
    clients: &mut Clients,
    format: OutputFormat,
    decision: Decision,
    args: DecisionArgs,
) -> Result<(), CliError> {
    let (targets, expected) = if args.ids.is_empty() {
        let status = args.select.status.unwrap_or(StatusArg::Pending);
        let items = bulk::select(clients, &args.select, status).await?;
        if args.dry_run {
            emit(&output::queue(format, "selected", &items, false))?;
            eprintln!(
                "dry run: would {} {} comment(s)",
                decision.name(),
                items.len()
            );
            return Ok(());
        }
        let ids = items
            .iter()
            .filter_map(|item| item.comment.as_ref().map(|c| c.id.clone()))
            .collect();
        // Selected from a queue: decided only if still in it.
        (ids, Some(args.expect.unwrap_or(status)))
    } else {
        let ids = bulk::ids_from_args(args.ids)?;
        if args.dry_run {
            for id in &ids {
                emit(id)?;
            }
            eprintln!(
                "dry run: would {} {} comment(s)",
                decision.name(),
                ids.len()
            );
            return Ok(());
        }
        (ids, args.expect)
    };
    let total = targets.len();
    if total == 0 {
        eprintln!("nothing selected");
        return Ok(());
    }
    let what = match total {
        1 => format!("{} 1 comment", decision.name()),
        n => format!("{} {n} comments", decision.name()),
    };
    let progress = bulk::progress(total);
    let mut results = Vec::with_capacity(total);
    for chunk in targets.chunks(bulk::BATCH) {
        let request = ModerateRequest {
            ids: chunk.to_vec(),
            action: decision.action() as i32,
            note: args.note.clone().unwrap_or_default(),
            expected_status: expected.map(|status| CommentStatus::from(status) as i32),
        };
        let answered = clients
            .moderation
            .moderate(request)
            .await
            .map_err(CliError::rpc(what.clone()))?
            .into_inner()
            .results;
        progress.inc(answered.len() as u64);
        results.extend(answered);
    }
    progress.finish_and_clear();
    emit(&output::moderate(format, decision, &results))?;

    // An id the server did not answer for counts as failed, too.
    let succeeded = results.iter().filter(|result| result.code == 0).count();
    let failed = total.saturating_sub(succeeded);
    if failed > 0 {
        return Err(CliError::PartlyFailed {
            action: decision.name(),
            failed,
            total,
        });
    }
    Ok(())
}

async fn watch(clients: &mut Clients, format: OutputFormat, site: SiteArg) -> Result<(), CliError> {
    let what = "watching the queue";
    let mut stream = open_watch(clients, &site)
        .await
        .map_err(CliError::rpc(what))?;
    // On stderr, so that stdout stays one item per line for scripts.
    eprintln!("watching for new replies that need a moderator; Ctrl-C stops");
    // Installed only once the stream is open: until then Ctrl-C should end
    // the process the usual way.
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    // What has been told, so that a catch-up tells each reply once: the newest
    // id (ids sort by time), and the ids the last catch-up told.
    let mut newest: Option<String> = None;
    let mut caught_up: HashSet<String> = HashSet::new();
    let mut shown = Vec::new();
    loop {
        let message = tokio::select! {
            signal = &mut ctrl_c => {
                signal.map_err(CliError::Signal)?;
                return Ok(());
            }
            message = stream.message() => message,
        };
        match message {
            Ok(Some(response)) => {
                let Some(item) = response.item else { continue };
                let id = item
                    .comment
                    .as_ref()
                    .map(|c| c.id.clone())
                    .unwrap_or_default();
                if caught_up.remove(&id) {
                    continue;
                }
                emit(&output::watch_line(format, &item, &mut shown))?;
                if newest.as_ref().is_none_or(|newest| id > *newest) {
                    newest = Some(id);
                }
            }
            Ok(None) => return Ok(()),
            // The server may have missed announcing some replies: watch again,
            // then tell every pending reply newer than the last one told.
            Err(status) if status.code() == Code::Unavailable => {
                eprintln!("{}; catching up", status.message());
                stream = tokio::select! {
                    signal = &mut ctrl_c => {
                        signal.map_err(CliError::Signal)?;
                        return Ok(());
                    }
                    reopened = reopen_watch(clients, &site) => reopened.map_err(CliError::rpc(what))?,
                };
                caught_up = catch_up(clients, format, &site, newest.as_deref(), &mut shown).await?;
                if let Some(latest) = caught_up.iter().max()
                    && newest.as_ref().is_none_or(|newest| latest > newest)
                {
                    newest = Some(latest.clone());
                }
                eprintln!("watching again");
            }
            Err(status) => return Err(CliError::rpc(what)(status)),
        }
    }
}

async fn open_watch(
    clients: &mut Clients,
    site: &SiteArg,
) -> Result<Streaming<WatchQueueResponse>, Status> {
    Ok(clients
        .moderation
        .watch_queue(WatchQueueRequest { site: site.name() })
        .await?
        .into_inner())
}

/// How often, a second apart, a watch is tried again while the server is unavailable.
const WATCH_RETRIES: u32 = 60;

/// Opens the watch again, retrying once a second while the server answers UNAVAILABLE (its
/// notifications are not back yet); any other answer is final.
async fn reopen_watch(
    clients: &mut Clients,
    site: &SiteArg,
) -> Result<Streaming<WatchQueueResponse>, Status> {
    let mut tries = 1;
    loop {
        match open_watch(clients, site).await {
            Err(status) if status.code() == Code::Unavailable && tries < WATCH_RETRIES => {
                tries += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            opened => return opened,
        }
    }
}

/// Tells every pending reply newer than `newest` (every one, when nothing was told yet), and
/// returns their ids.
async fn catch_up(
    clients: &mut Clients,
    format: OutputFormat,
    site: &SiteArg,
    newest: Option<&str>,
    shown: &mut Vec<String>,
) -> Result<HashSet<String>, CliError> {
    let mut told = HashSet::new();
    let mut page_token = String::new();
    loop {
        let page = clients
            .moderation
            .list_queue(ListQueueRequest {
                site: site.name(),
                status: CommentStatus::Pending as i32,
                page_size: MAX_QUEUE_PAGE,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .map_err(CliError::rpc("catching up with the queue"))?
            .into_inner();
        for item in page.items {
            let id = item
                .comment
                .as_ref()
                .map(|c| c.id.clone())
                .unwrap_or_default();
            if newest.is_none_or(|newest| id.as_str() > newest) {
                emit(&output::watch_line(format, &item, shown))?;
                told.insert(id);
            }
        }
        // A repeated cursor would loop forever; treat it as the end.
        let stuck = page.next_page_token == page_token;
        page_token = page.next_page_token;
        if page_token.is_empty() || stuck {
            return Ok(told);
        }
    }
}

async fn policy_show(
    clients: &mut Clients,
    format: OutputFormat,
    site: SiteArg,
) -> Result<(), CliError> {
    let policy = clients
        .moderation
        .get_policy(GetPolicyRequest { site: site.name() })
        .await
        .map_err(CliError::rpc("fetching the policy"))?
        .into_inner()
        .policy
        .unwrap_or_default();
    emit(&output::policy(format, &policy))
}

async fn policy_try(
    clients: &mut Clients,
    format: OutputFormat,
    args: PolicyTryArgs,
) -> Result<(), CliError> {
    let update = args
        .change
        .update()
        .map_err(|message| CliError::PolicyValue("try", message))?;
    let key = args.change.key.name();
    let request = TryPolicyRequest {
        site: args.change.site.name(),
        policy: Some(update),
        days: args.days,
    };
    let trial = clients
        .moderation
        .try_policy(request)
        .await
        .map_err(CliError::rpc(format!(
            "trying {key} {:?}",
            args.change.value
        )))?
        .into_inner();
    emit(&output::policy_trial(
        format,
        &key,
        args.change.value.trim(),
        args.days,
        &trial,
    ))
}

async fn policy_set(
    clients: &mut Clients,
    format: OutputFormat,
    args: PolicySetArgs,
) -> Result<(), CliError> {
    let update = args
        .update()
        .map_err(|message| CliError::PolicyValue("set", message))?;
    let key = args.key.name();
    let before = clients
        .moderation
        .get_policy(GetPolicyRequest {
            site: args.site.name(),
        })
        .await
        .map_err(CliError::rpc("fetching the policy"))?
        .into_inner()
        .policy
        .unwrap_or_default();
    let now = output::policy_value(&before, &key).unwrap_or_else(|| "not set".to_owned());
    let request = UpdatePolicyRequest {
        site: args.site.name(),
        policy: Some(update),
    };
    let after = clients
        .moderation
        .update_policy(request)
        .await
        .map_err(CliError::rpc(format!(
            "setting {key} to {:?} (it is {now} now)",
            args.value
        )))?
        .into_inner()
        .policy
        .unwrap_or_default();
    emit(&output::policy_changed(format, &key, &before, &after))
}

async fn erase(
    clients: &mut Clients,
    format: OutputFormat,
    args: EraseArgs,
) -> Result<(), CliError> {
    let request = |dry_run: bool| EraseAuthorRequest {
        site: args.site.name(),
        email: args.email.clone(),
        remove_bodies: args.remove_bodies,
        dry_run,
    };
    // A person at a terminal is asked, with the count, before anything changes.
    let ask = !args.dry_run && !args.yes && io::stdin().is_terminal() && io::stderr().is_terminal();
    if args.dry_run || ask {
        let affected = clients
            .moderation
            .erase_author(request(true))
            .await
            .map_err(CliError::rpc("counting the author's comments"))?
            .into_inner()
            .comments_affected;
        if args.dry_run {
            return emit(&output::erase_dry_run(format, affected));
        }
        let what = if args.remove_bodies {
            "erase (text removed)"
        } else {
            "anonymise"
        };
        let question = match affected {
            0 => "This author has no comments here; record an erasure anyway? [y/N] ".to_owned(),
            1 => format!("{what} 1 comment of this author, for good? [y/N] "),
            n => format!("{what} {n} comments of this author, for good? [y/N] "),
        };
        if !confirm(&question)? {
            eprintln!("nothing erased");
            return Ok(());
        }
    }
    let affected = clients
        .moderation
        .erase_author(request(false))
        .await
        .map_err(CliError::rpc("erasing the author"))?
        .into_inner()
        .comments_affected;
    emit(&output::erased(format, affected))
}

/// Asks `question` on stderr; true only for an answer of y or yes.
fn confirm(question: &str) -> Result<bool, CliError> {
    let mut stderr = io::stderr().lock();
    write!(stderr, "{question}")?;
    stderr.flush()?;
    let mut answer = String::new();
    io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

async fn export(clients: &mut Clients, args: ExportArgs) -> Result<(), CliError> {
    let request = ExportAuthorRequest {
        site: args.site.name(),
        email: args.email.clone(),
    };
    let export = clients
        .moderation
        .export_author(request)
        .await
        .map_err(CliError::rpc("exporting the author"))?
        .into_inner();
    // Always JSON: it is the data handed to the person who asked for it.
    emit(&output::export(&args.email, &export))
}

async fn reveal(
    clients: &mut Clients,
    format: OutputFormat,
    args: RevealArgs,
) -> Result<(), CliError> {
    let what = format!("revealing the email of {}", args.id);
    let email = clients
        .moderation
        .reveal_email(RevealEmailRequest {
            id: args.id.clone(),
            reason: args.reason,
        })
        .await
        .map_err(CliError::rpc(what))?
        .into_inner()
        .email;
    emit(&output::revealed(format, &args.id, &email))
}

async fn block(
    clients: &mut Clients,
    format: OutputFormat,
    command: BlockCommand,
) -> Result<(), CliError> {
    let request =
        |kind: BlockKind, value: String, email: String, options: &BlockOptions| BlockRequest {
            site: options.site.name(),
            kind: kind as i32,
            value,
            email,
            reject_pending: options.reject_pending,
            note: options.note.clone().unwrap_or_default(),
            for_seconds: options.lifetime.map_or(0, |lifetime| lifetime.as_secs()),
        };
    let requests = match command {
        BlockCommand::Author {
            hash,
            email,
            options,
        } => vec![request(
            BlockKind::Author,
            hash.unwrap_or_default(),
            email.unwrap_or_default(),
            &options,
        )],
        BlockCommand::Ip { address, options } => {
            vec![request(BlockKind::Ip, address, String::new(), &options)]
        }
        BlockCommand::Domain {
            domain,
            only,
            options,
        } => {
            let kinds: &[BlockKind] = match only {
                Some(DomainScope::Email) => &[BlockKind::EmailDomain],
                Some(DomainScope::Website) => &[BlockKind::WebsiteDomain],
                None => &[BlockKind::EmailDomain, BlockKind::WebsiteDomain],
            };
            kinds
                .iter()
                .map(|kind| request(*kind, domain.clone(), String::new(), &options))
                .collect()
        }
    };
    let mut answers = Vec::with_capacity(requests.len());
    for request in requests {
        let answer = clients
            .moderation
            .block(request)
            .await
            .map_err(CliError::rpc("blocking"))?
            .into_inner();
        answers.push(answer);
    }
    emit(&output::blocked(format, &answers))
}

/// Every entry, a page at a time.
async fn blocks(
    clients: &mut Clients,
    format: OutputFormat,
    site: SiteArg,
) -> Result<(), CliError> {
    let mut entries = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = clients
            .moderation
            .list_blocks(ListBlocksRequest {
                site: site.name(),
                page_size: 1000,
                page_token,
            })
            .await
            .map_err(CliError::rpc("listing the blocklist"))?
            .into_inner();
        entries.extend(page.entries);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    emit(&output::blocks(format, &entries))
}

async fn reports(
    clients: &mut Clients,
    format: OutputFormat,
    site: SiteArg,
) -> Result<(), CliError> {
    let mut reported = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = clients
            .moderation
            .list_reports(replyguard::proto::ListReportsRequest {
                site: site.name(),
                page_size: 200,
                page_token,
            })
            .await
            .map_err(CliError::rpc("listing reported comments"))?
            .into_inner();
        reported.extend(page.comments);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    emit(&output::reports(format, &reported))
}

async fn unblock(
    clients: &mut Clients,
    format: OutputFormat,
    args: UnblockArgs,
) -> Result<(), CliError> {
    let kinds: &[BlockKind] = match (args.kind, args.only) {
        (EntryKind::Author, _) => &[BlockKind::Author],
        (EntryKind::Ip, _) => &[BlockKind::Ip],
        (EntryKind::Domain, Some(DomainScope::Email)) | (EntryKind::EmailDomain, _) => {
            &[BlockKind::EmailDomain]
        }
        (EntryKind::Domain, Some(DomainScope::Website)) | (EntryKind::WebsiteDomain, _) => {
            &[BlockKind::WebsiteDomain]
        }
        (EntryKind::Domain, None) => &[BlockKind::EmailDomain, BlockKind::WebsiteDomain],
    };
    let mut removed = Vec::with_capacity(kinds.len());
    for kind in kinds {
        let answer = clients
            .moderation
            .unblock(UnblockRequest {
                site: args.site.name(),
                kind: *kind as i32,
                value: args.value.clone(),
                note: args.note.clone().unwrap_or_default(),
            })
            .await
            .map_err(CliError::rpc("unblocking"))?
            .into_inner();
        removed.push((*kind as i32, answer.removed));
    }
    if removed.iter().any(|(_, removed)| *removed) {
        return emit(&output::unblocked(format, &args.value, &removed));
    }
    if format == OutputFormat::Json {
        emit(&output::unblocked(format, &args.value, &removed))?;
    }
    let kind = match args.kind {
        EntryKind::Domain if kinds.len() == 2 => "domain".to_owned(),
        _ => output::block_kind_word(kinds[0] as i32)
            .unwrap_or("-")
            .to_owned(),
    };
    Err(CliError::NotBlocked {
        kind,
        value: args.value,
    })
}

async fn closed_articles(
    clients: &mut Clients,
    format: OutputFormat,
    site: SiteArg,
) -> Result<(), CliError> {
    let mut articles = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = clients
            .moderation
            .list_closed_articles(ListClosedArticlesRequest {
                site: site.name(),
                page_size: 1000,
                page_token,
            })
            .await
            .map_err(CliError::rpc("listing the closed articles"))?
            .into_inner();
        articles.extend(page.articles);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    emit(&output::closed_articles(format, &articles))
}

/// `close`: now, or from a time on.
async fn close(
    clients: &mut Clients,
    format: OutputFormat,
    args: CloseArgs,
) -> Result<(), CliError> {
    let at = args.at.or(args.within);
    let article = args.article.article;
    let request = CloseArticleRequest {
        site: args.article.site.name(),
        article: article.clone(),
        note: args.article.note.unwrap_or_default(),
        close_at: at.map(|at| prost_types::Timestamp {
            seconds: at.timestamp(),
            nanos: 0,
        }),
    };
    let answer = clients
        .moderation
        .close_article(request)
        .await
        .map_err(CliError::rpc(format!("closing {article}")))?;
    let changed = !answer.into_inner().already_closed;
    emit(&output::closed(format, &article, true, changed, at))
}

/// `reopen`.
async fn reopen(
    clients: &mut Clients,
    format: OutputFormat,
    args: ArticleArgs,
) -> Result<(), CliError> {
    let article = args.article;
    let request = ReopenArticleRequest {
        site: args.site.name(),
        article: article.clone(),
        note: args.note.unwrap_or_default(),
    };
    let answer = clients
        .moderation
        .reopen_article(request)
        .await
        .map_err(CliError::rpc(format!("reopening {article}")))?;
    let changed = answer.into_inner().reopened;
    emit(&output::closed(format, &article, false, changed, None))
}

async fn audit(
    clients: &mut Clients,
    format: OutputFormat,
    args: AuditArgs,
) -> Result<(), CliError> {
    let limit = usize::try_from(args.limit).unwrap_or(usize::MAX);
    let mut entries = Vec::new();
    let mut page_token = String::new();
    loop {
        let remaining = u32::try_from(limit - entries.len()).unwrap_or(MAX_AUDIT_PAGE);
        let request = ListAuditRequest {
            site: args.site.name(),
            comment_id: args.comment.clone(),
            action: args.action.clone(),
            page_size: remaining.min(MAX_AUDIT_PAGE),
            page_token: page_token.clone(),
        };
        let page = clients
            .moderation
            .list_audit(request)
            .await
            .map_err(CliError::rpc("listing the audit log"))?
            .into_inner();
        entries.extend(page.entries);
        // A repeated cursor would loop forever; treat it as the end.
        let stuck = page.next_page_token == page_token;
        page_token = page.next_page_token;
        if page_token.is_empty() || stuck || entries.len() >= limit {
            break;
        }
    }
    let more = entries.len() > limit || !page_token.is_empty();
    entries.truncate(limit);
    emit(&output::audit(format, &entries, more))
}

async fn submit(
    clients: &mut Clients,
    format: OutputFormat,
    args: SubmitArgs,
) -> Result<(), CliError> {
    let request = SubmitCommentRequest {
        article: args.article,
        parent_id: args.parent.unwrap_or_default(),
        author: Some(Author {
            name: args.name,
            email: args.email,
            website: args.website.unwrap_or_default(),
        }),
        body: args.text,
        client: args.ip.map(|ip| ClientInfo {
            ip,
            ..ClientInfo::default()
        }),
        form: None,
        idempotency_key: String::new(),
        notify_replies: false,
        reader_id: args.reader.unwrap_or_default(),
        article_published_at: args.published_at.map(|at| prost_types::Timestamp {
            seconds: at.timestamp(),
            nanos: 0,
        }),
    };
    let response = clients
        .comments
        .submit_comment(request)
        .await
        .map_err(CliError::rpc("submitting the comment"))?
        .into_inner();
    let comment = response.comment.unwrap_or_default();
    emit(&output::submitted(format, &comment, response.status))
}

async fn comments(
    clients: &mut Clients,
    format: OutputFormat,
    args: CommentsArgs,
) -> Result<(), CliError> {
    let what = format!("listing the comments of {}", args.article);
    let limit = usize::try_from(args.limit).unwrap_or(usize::MAX);
    let order = if args.newest {
        ListOrder::NewestFirst
    } else {
        ListOrder::OldestFirst
    };
    let mut comments = Vec::new();
    let mut total;
    let mut closed;
    let mut page_token = String::new();
    loop {
        let remaining = u32::try_from(limit - comments.len()).unwrap_or(MAX_COMMENTS_PAGE);
        let request = ListCommentsRequest {
            article: args.article.clone(),
            page_size: remaining.min(MAX_COMMENTS_PAGE),
            page_token: page_token.clone(),
            order: order as i32,
            ..ListCommentsRequest::default()
        };
        let page = clients
            .comments
            .list_comments(request)
            .await
            .map_err(CliError::rpc(what.clone()))?
            .into_inner();
        comments.extend(page.comments);
        total = page.total_count;
        closed = page.closed;
        // A repeated cursor would loop forever; treat it as the end.
        let stuck = page.next_page_token == page_token;
        page_token = page.next_page_token;
        if page_token.is_empty() || stuck || comments.len() >= limit {
            break;
        }
    }
    let more = comments.len() > limit || !page_token.is_empty();
    comments.truncate(limit);
    emit(&output::comments(
        format,
        &args.article,
        &comments,
        total,
        closed,
        more,
    ))
}
