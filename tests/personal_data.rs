//! A reader's personal data through its life: contact details typed into a
//! reply kept only sealed, exported on request, erased on request without a
//! trace in the database, and client details dropped (and undecided replies
//! expired) by the server's retention sweep.

mod common;

use common::{Backend, Harness, backend_tests, bad_fields, decide, reply_by};
use md5::Md5;
use replyguard::{
    domain::Scope,
    proto::{self, CommentStatus, ModerationAction},
    spam::{Mode, Policy},
};
use sha2::{Digest, Sha256};
use tonic::Code;

/// Every reply waits for a moderator; one person may post several at once
/// (these tests are about their data, not about flooding).
fn moderate_all() -> Policy {
    Policy {
        mode: Mode::ModerateAll,
        flood_interval_seconds: 0,
        ..Policy::default()
    }
}

const EMAIL: &str = "Private.Person.4412@Example.net";
const NAME: &str = "Pat Q. Personsworth";
const IP: &str = "198.51.100.223";
const USER_AGENT: &str = "PersonBrowser/9.1";
const WEBSITE: &str = "https://pat-personsworth.example/";
const REFERRER: &str = "https://news.example.com/?from=pat-personsworth";

/// A reply by the person whose data these tests follow.
fn by_the_person(article: &str, body: &str) -> proto::SubmitCommentRequest {
    let mut request = reply_by(article, body, NAME, EMAIL);
    if let Some(author) = request.author.as_mut() {
        author.website = WEBSITE.to_owned();
    }
    request.client = Some(proto::ClientInfo {
        ip: IP.to_owned(),
        user_agent: USER_AGENT.to_owned(),
        referrer: REFERRER.to_owned(),
    });
    request
}

async fn submit(comments: &mut common::Comments, request: proto::SubmitCommentRequest) -> String {
    common::submitted(comments, request).await.0
}

/// Everything the database holds, lowercased: the SQLite file with its
/// write-ahead log and shared memory, or every column of every PostgreSQL
/// table.
async fn database_text(h: &Harness) -> String {
    let text = match h.db.backend {
        Backend::Sqlite => {
            let mut bytes = Vec::new();
            for suffix in ["", "-wal", "-shm"] {
                let path = format!("{}{suffix}", h.db_path().display());
                if let Ok(content) = std::fs::read(&path) {
                    bytes.extend(content);
                }
            }
            assert!(bytes.len() > 4096, "the database was read");
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Backend::Postgres => h.db.postgres_dump().await,
    };
    text.to_lowercase()
}

/// Every trace of the person a database could hold: their email, its local
/// part and unkeyed hashes of it, their name, address, browser and website.
fn traces() -> Vec<String> {
    let mut traces: Vec<String> = [
        EMAIL,
        "private.person",
        NAME,
        "personsworth",
        IP,
        USER_AGENT,
        "pat-personsworth",
    ]
    .iter()
    .map(|t| t.to_lowercase())
    .collect();
    for variant in [EMAIL.to_owned(), EMAIL.to_lowercase()] {
        traces.push(hex::encode(Md5::digest(variant.as_bytes())));
        traces.push(hex::encode(Sha256::digest(variant.as_bytes())));
    }
    traces
}

/// The person's export, on the moderator's one site.
async fn export_the_person(moderation: &mut common::Moderation) -> proto::ExportAuthorResponse {
    moderation
        .export_author(proto::ExportAuthorRequest {
            email: EMAIL.into(),
            ..Default::default()
        })
        .await
        .expect("export")
        .into_inner()
}

async fn erasing_an_author_leaves_no_trace_of_them_in_the_database(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let mut comments = h.comments(&site.site_key).await;
    let first = submit(
        &mut comments,
        by_the_person("story", "First thoughts on this."),
    )
    .await;
    let reply = {
        let mut moderation = h.moderation(&site.mod_token).await;
        decide(
            &mut moderation,
            ModerationAction::Approve,
            std::slice::from_ref(&first),
        )
        .await;
        let mut request = by_the_person("story", "And a follow-up.");
        request.parent_id = first.clone();
        submit(&mut comments, request).await
    };
    submit(
        &mut comments,
        by_the_person("other-story", "Elsewhere too."),
    )
    .await;
    let bystander = submit(
        &mut comments,
        reply_by("story", "I disagree.", "Bystander", "bystander@example.org"),
    )
    .await;

    let before = database_text(&h).await;
    for trace in [NAME, IP, USER_AGENT] {
        assert!(
            before.contains(&trace.to_lowercase()),
            "{trace} is stored before the erasure, so the search can find it"
        );
    }

    let eraser = h
        .moderator_token(&[site.id], &[Scope::Moderate, Scope::Erase])
        .await;
    let mut moderation = h.moderation(&eraser).await;
    let erased = moderation
        .erase_author(proto::EraseAuthorRequest {
            email: "  private.person.4412@EXAMPLE.net ".into(),
            ..Default::default()
        })
        .await
        .expect("erase")
        .into_inner();
    assert_eq!(erased.comments_affected, 3);

    let after = database_text(&h).await;
    for trace in traces() {
        assert!(
            !after.contains(&trace),
            "{trace:?} is still in the database"
        );
    }
    assert!(after.contains("bystander"), "other authors are kept");

    // The comments stay in their thread, anonymised.
    let item = moderation
        .get_comment(proto::GetCommentRequest { id: reply.clone() })
        .await
        .expect("kept")
        .into_inner()
        .comment
        .expect("item");
    let comment = item.comment.expect("comment");
    assert_eq!(comment.author_name, "Anonymous");
    assert_eq!(comment.parent_id, first);
    assert_eq!(comment.body, "And a follow-up.");
    assert_eq!(item.masked_email, "");
    assert_eq!(item.ip, "");
    assert_eq!(item.user_agent, "");
    assert_eq!(comment.author_website, "");
    assert_eq!(comment.avatar_seed, "");
    let public = comments
        .list_comments(proto::ListCommentsRequest {
            article: "story".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(public.comments[0].author_name, "Anonymous");
    assert_eq!(public.comments[0].body, "First thoughts on this.");
    let other = moderation
        .get_comment(proto::GetCommentRequest { id: bystander })
        .await
        .expect("kept")
        .into_inner()
        .comment
        .expect("item");
    assert_eq!(other.masked_email, "b•••@example.org");

    // One audit row, with the count and without the email.
    let log = moderation
        .list_audit(proto::ListAuditRequest::default())
        .await
        .expect("audit")
        .into_inner()
        .entries;
    let erasures: Vec<&proto::AuditEntry> =
        log.iter().filter(|e| e.action == "erase_author").collect();
    assert_eq!(erasures.len(), 1);
    assert_eq!(erasures[0].note, "3 comments anonymised, text kept");
    assert_eq!(
        erasures[0].actor,
        eraser.chars().take(15).collect::<String>()
    );
}

async fn erasing_with_remove_bodies_replaces_the_text_and_nothing_is_left_to_reveal(
    backend: Backend,
) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let mut comments = h.comments(&site.site_key).await;
    let id = submit(&mut comments, by_the_person("story", "Pat's secret plans.")).await;
    let token = h.moderator_token(&[site.id], &Scope::ALL).await;
    let mut moderation = h.moderation(&token).await;
    let erased = moderation
        .erase_author(proto::EraseAuthorRequest {
            email: EMAIL.into(),
            remove_bodies: true,
            ..Default::default()
        })
        .await
        .expect("erase")
        .into_inner();
    assert_eq!(erased.comments_affected, 1);

    let item = moderation
        .get_comment(proto::GetCommentRequest { id: id.clone() })
        .await
        .expect("kept")
        .into_inner()
        .comment
        .expect("item");
    assert_eq!(item.raw_body, "[removed]");
    assert_eq!(item.comment.expect("comment").body, "[removed]");
    let status = moderation
        .reveal_email(proto::RevealEmailRequest {
            id,
            reason: "a complaint".into(),
        })
        .await
        .expect_err("nothing to reveal");
    assert_eq!(status.code(), Code::FailedPrecondition);
    let export = export_the_person(&mut moderation).await;
    assert!(
        export.comments.is_empty(),
        "nothing links to the person any more"
    );
    let again = moderation
        .erase_author(proto::EraseAuthorRequest {
            email: EMAIL.into(),
            ..Default::default()
        })
        .await
        .expect("erase again")
        .into_inner();
    assert_eq!(again.comments_affected, 0);
}

async fn an_export_holds_every_comment_and_personal_datum_of_the_author(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let other = h.site_with("other.example.com", moderate_all()).await;
    let mut comments = h.comments(&site.site_key).await;
    let first = submit(
        &mut comments,
        by_the_person("story", "Mail me: pat@example.net"),
    )
    .await;
    let second = submit(&mut comments, by_the_person("story-2", "Second.")).await;
    submit(
        &mut comments,
        reply_by(
            "story",
            "Someone else.",
            "Bystander",
            "bystander@example.org",
        ),
    )
    .await;
    submit(
        &mut h.comments(&other.site_key).await,
        by_the_person("story", "On another site."),
    )
    .await;

    let token = h
        .moderator_token(&[site.id, other.id], &[Scope::Erase, Scope::Moderate])
        .await;
    let mut moderation = h.moderation(&token).await;
    let export = moderation
        .export_author(proto::ExportAuthorRequest {
            site: site.name.clone(),
            email: EMAIL.to_lowercase(),
        })
        .await
        .expect("export")
        .into_inner();
    assert_eq!(export.site, "news.example.com");
    let ids: Vec<&str> = export.comments.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [first.as_str(), second.as_str()],
        "oldest first, this site only"
    );
    let one = &export.comments[0];
    assert_eq!(one.email, "Private.Person.4412@example.net");
    assert_eq!(one.author_name, NAME);
    assert_eq!(one.website, WEBSITE);
    assert_eq!(one.ip, IP);
    assert_eq!(one.user_agent, USER_AGENT);
    assert_eq!(one.referrer, REFERRER);
    assert_eq!(one.body, "Mail me: pat@example.net", "the text as written");
    assert_eq!(one.article, "story");
    assert_eq!(one.status(), CommentStatus::Pending);

    let log = moderation
        .list_audit(proto::ListAuditRequest {
            site: site.name.clone(),
            ..Default::default()
        })
        .await
        .expect("audit")
        .into_inner()
        .entries;
    let exports: Vec<&proto::AuditEntry> =
        log.iter().filter(|e| e.action == "export_author").collect();
    assert_eq!(exports.len(), 1);
    assert_eq!(exports[0].note, "2 comments");
    assert!(!exports[0].note.to_lowercase().contains("private.person"));

    let status = moderation
        .export_author(proto::ExportAuthorRequest {
            site: String::new(),
            email: EMAIL.into(),
        })
        .await
        .expect_err("two sites: which one?");
    assert_eq!(common::bad_fields(&status), ["site"]);
}

/// Moves one reply's `column` (`created_at` or `updated_at`) `days` back, behind the store's
/// back. On SQLite with `secure_delete`, as the server writes, so that the old row is not left
/// in the file by this update.
async fn set_back(h: &Harness, column: &str, id: &str, days: u32) {
    let sql = match h.db.backend {
        Backend::Sqlite => format!(
            "PRAGMA secure_delete = ON; UPDATE comments SET {column} = \
             strftime('%Y-%m-%dT%H:%M:%f+00:00', {column}, '-{days} days') \
             WHERE id = X'{}'",
            id.replace('-', "")
        ),
        Backend::Postgres => format!(
            "UPDATE comments SET {column} = {column} - interval '{days} days' WHERE id = '{id}'"
        ),
    };
    h.db.execute(&sql).await;
}

/// Starts the server again with the harness's settings and waits for its first sweep.
async fn restart_and_sweep(h: &mut Harness) {
    h.restart().await;
    let server = h.server.as_ref().expect("running");
    tokio::time::timeout(std::time::Duration::from_secs(30), server.swept())
        .await
        .expect("the first sweep ends");
}

async fn the_server_drops_old_client_details_and_expires_old_replies_when_it_starts(
    backend: Backend,
) {
    let mut h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let mut comments = h.comments(&site.site_key).await;
    let old = submit(&mut comments, by_the_person("story", "Long ago.")).await;
    let recent = submit(&mut comments, by_the_person("story", "Just now.")).await;
    set_back(&h, "created_at", &old, 40).await;

    h.settings.retain_client_days = 30;
    h.settings.expire_pending_days = Some(20);
    restart_and_sweep(&mut h).await;

    let mut moderation = h.moderation(&site.mod_token).await;
    let get = |id: &str| proto::GetCommentRequest { id: id.to_owned() };
    let swept = moderation
        .get_comment(get(&old))
        .await
        .expect("kept")
        .into_inner();
    let item = swept.comment.expect("item");
    assert_eq!(
        item.comment.expect("comment").status(),
        CommentStatus::Rejected
    );
    assert_eq!((item.ip.as_str(), item.user_agent.as_str()), ("", ""));
    let last = swept.history.last().expect("history");
    assert_eq!(
        (
            last.action.as_str(),
            last.actor.as_str(),
            last.note.as_str()
        ),
        ("expire", "system", "expired")
    );
    assert_eq!(last.from_status(), CommentStatus::Pending);
    assert_eq!(last.to_status(), CommentStatus::Rejected);

    let kept = moderation
        .get_comment(get(&recent))
        .await
        .expect("kept")
        .into_inner()
        .comment
        .expect("item");
    assert_eq!(
        kept.comment.expect("comment").status(),
        CommentStatus::Pending
    );
    assert_eq!(kept.ip, IP);
    assert_eq!(kept.user_agent, USER_AGENT);
}

/// Spam sits in the spam queue for `--delete-spam-days` from when it became
/// spam, then the sweep deletes it; the audit log keeps its record.
async fn the_server_deletes_spam_that_sat_long_enough_when_it_starts(backend: Backend) {
    let mut h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let mut comments = h.comments(&site.site_key).await;
    let old = submit(&mut comments, by_the_person("story", "Cheap pills.")).await;
    let recent = submit(&mut comments, by_the_person("story", "Cheap watches.")).await;
    let mut moderation = h.moderation(&site.mod_token).await;
    decide(
        &mut moderation,
        ModerationAction::MarkSpam,
        &[old.clone(), recent.clone()],
    )
    .await;
    set_back(&h, "updated_at", &old, 20).await;

    h.settings.delete_spam_days = Some(15);
    restart_and_sweep(&mut h).await;

    let mut moderation = h.moderation(&site.mod_token).await;
    let get = |id: &str| proto::GetCommentRequest { id: id.to_owned() };
    let gone = moderation
        .get_comment(get(&old))
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);
    let kept = moderation
        .get_comment(get(&recent))
        .await
        .expect("fifteen days from being marked")
        .into_inner()
        .comment
        .expect("item");
    assert_eq!(kept.comment.expect("comment").status(), CommentStatus::Spam);

    let log = moderation
        .list_audit(proto::ListAuditRequest {
            site: site.name.clone(),
            comment_id: Some(old.clone()),
            ..Default::default()
        })
        .await
        .expect("audit")
        .into_inner()
        .entries;
    let actions: Vec<(&str, &str, &str)> = log
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str(), e.note.as_str()))
        .collect();
    assert!(
        actions.contains(&("delete", "system", "spam retention")),
        "{actions:?}"
    );
    let text = database_text(&h).await;
    assert!(text.contains("cheap watches"), "the database was read");
    assert!(!text.contains("cheap pills"), "gone from the files too");
}

/// What the person typed for readers to reach them: in the text, and, from
/// their mail client, in the referrer and the user agent.
const TYPED_EMAIL: &str = "pat.reach.me@example.org";
const TYPED_PHONE: &str = "020 7946 0958";

fn with_typed_contacts(article: &str) -> (proto::SubmitCommentRequest, String) {
    let text = format!("Write to {TYPED_EMAIL} or call {TYPED_PHONE} about the flood.");
    let mut request = by_the_person(article, &text);
    if let Some(client) = request.client.as_mut() {
        client.referrer = format!("https://mail.example.com/open?to={TYPED_EMAIL}");
        client.user_agent = format!("MailReader/3.0 (+mailto:{TYPED_EMAIL})");
    }
    (request, text)
}

async fn raw_body(moderation: &mut common::Moderation, id: &str) -> String {
    moderation
        .get_comment(proto::GetCommentRequest { id: id.to_owned() })
        .await
        .expect("get")
        .into_inner()
        .comment
        .expect("item")
        .raw_body
}

async fn contacts_typed_anywhere_in_a_reply_are_kept_only_sealed(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let mut comments = h.comments(&site.site_key).await;
    let (request, text) = with_typed_contacts("story");
    let stored = comments
        .submit_comment(request.clone())
        .await
        .expect("submit")
        .into_inner()
        .comment
        .expect("comment");
    let public = "Write to [email hidden] or call [phone hidden] about the flood.";
    assert_eq!(stored.body, public);

    // Moderators, and the person's export, have the text as written.
    let token = h.moderator_token(&[site.id], &Scope::ALL).await;
    let mut moderation = h.moderation(&token).await;
    assert_eq!(raw_body(&mut moderation, &stored.id).await, text);
    let export = export_the_person(&mut moderation).await;
    let exported = &export.comments[0];
    assert_eq!(exported.body, text);
    assert_eq!(
        exported.referrer,
        "https://mail.example.com/open?to=[email hidden]"
    );
    assert_eq!(
        exported.user_agent,
        "MailReader/3.0 (+mailto:[email hidden])"
    );

    // The same text again is a repeat, though only its masked form is kept in the clear.
    let repeat = comments
        .submit_comment(request)
        .await
        .expect_err("a repeat");
    assert_eq!(repeat.code(), Code::AlreadyExists);

    // A name and a website are shown to every reader, so they may not hold an address.
    let mut named = by_the_person("story", "Another thought.");
    if let Some(author) = named.author.as_mut() {
        author.name = format!("Pat <{TYPED_EMAIL}>");
        author.website = format!("https://pat.example/?contact={TYPED_EMAIL}");
    }
    let refused = comments.submit_comment(named).await.expect_err("refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&refused), ["author.name", "author.website"]);

    // A host's idempotency key is only compared, so whatever the host put in it is kept hashed.
    let mut keyed = by_the_person("story", "Another thought.");
    keyed.idempotency_key = format!("{TYPED_EMAIL}/reply-2");
    let first = submit(&mut comments, keyed.clone()).await;
    assert_eq!(
        submit(&mut comments, keyed).await,
        first,
        "the retry is answered"
    );

    let stored_text = database_text(&h).await;
    assert!(
        stored_text.contains("[email hidden] or call [phone hidden]"),
        "the search reads the stored text"
    );
    for contact in [TYPED_EMAIL, TYPED_PHONE, "pat.reach.me"] {
        assert!(
            !stored_text.contains(contact),
            "{contact:?} is in the database in the clear"
        );
    }

    // Erased, the text keeps only its public form: nothing sealed is left to open.
    moderation
        .erase_author(proto::EraseAuthorRequest {
            email: EMAIL.into(),
            ..Default::default()
        })
        .await
        .expect("erase");
    assert_eq!(raw_body(&mut moderation, &stored.id).await, public);
}

async fn texts_an_earlier_release_kept_are_sealed_and_masked_again_when_the_server_starts(
    backend: Backend,
) {
    let mut h = Harness::new(backend).await;
    let site = h.site_with("news.example.com", moderate_all()).await;
    let mut comments = h.comments(&site.site_key).await;
    let (request, text) = with_typed_contacts("story");
    let id = submit(&mut comments, request).await;
    let glued = "Mail me at _ann.reader@example.org_ about it.";
    let missed = submit(
        &mut comments,
        reply_by("story", glued, "Ann Reader", "ann@example.com"),
    )
    .await;
    // As releases before sealing kept them: the raw text in the clear, nothing sealed; and an
    // address glued to an underscore, which the earlier masking let through to the public
    // text. Migration 0005 lists such texts for a new check.
    h.db.execute(&format!(
        "UPDATE comments SET body = '{text}', body_sealed = NULL WHERE body LIKE 'Write to%'"
    ))
    .await;
    h.db.execute(&format!(
        "UPDATE comments SET body = '{glued}', body_public = '{glued}', \
         body_html = '<p>{glued}</p>', body_sealed = NULL WHERE body LIKE 'Mail me%'"
    ))
    .await;
    h.db.execute(
        "INSERT INTO texts_to_check (comment_id) SELECT id FROM comments WHERE body LIKE '%@%'",
    )
    .await;
    let before = database_text(&h).await;
    for contact in [TYPED_EMAIL, "ann.reader@example.org"] {
        assert!(before.contains(contact), "{contact} is in the clear before");
    }

    h.restart().await;

    let token = h.moderator_token(&[site.id], &Scope::ALL).await;
    let mut moderation = h.moderation(&token).await;
    assert_eq!(raw_body(&mut moderation, &id).await, text);
    let item = moderation
        .get_comment(proto::GetCommentRequest { id: missed })
        .await
        .expect("get")
        .into_inner()
        .comment
        .expect("item");
    assert_eq!(item.raw_body, glued);
    let public = item.comment.expect("comment");
    assert_eq!(public.body, "Mail me at [email hidden] about it.");
    assert!(
        !public.body_html.contains("ann.reader"),
        "{}",
        public.body_html
    );
    let stored_text = database_text(&h).await;
    assert!(stored_text.contains("[email hidden] or call [phone hidden]"));
    for contact in [TYPED_EMAIL, TYPED_PHONE, "ann.reader@example.org"] {
        assert!(
            !stored_text.contains(contact),
            "{contact:?} is still in the database in the clear"
        );
    }
}

backend_tests!(
    erasing_an_author_leaves_no_trace_of_them_in_the_database,
    erasing_with_remove_bodies_replaces_the_text_and_nothing_is_left_to_reveal,
    an_export_holds_every_comment_and_personal_datum_of_the_author,
    the_server_drops_old_client_details_and_expires_old_replies_when_it_starts,
    the_server_deletes_spam_that_sat_long_enough_when_it_starts,
    contacts_typed_anywhere_in_a_reply_are_kept_only_sealed,
    texts_an_earlier_release_kept_are_sealed_and_masked_again_when_the_server_starts,
);
