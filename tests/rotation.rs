//! `replyguard key rotate`: a deployment moved to a new secret key keeps every author, text
//! and block it can, and the old key opens nothing the database holds.

mod common;

use std::path::{Path, PathBuf};

use common::{Backend, Harness, TestSite, approve, assessed, backend_tests, reply_by, submitted};
use replyguard::{
    config::{Secret, SecretKeyArgs},
    deployment::{KeyError, previous_key_file},
    domain::{CommentStatus, Scope, audit_action},
    ids::CommentId,
    privacy::{SecretKey, Vault, read_key_file, write_new_key_file},
    proto::{self, BlockKind},
    server::StartError,
    spam::{Mode, Policy},
    store::RekeyReport,
    tools::rotation::{self, KeyArgs, RotateArgs},
};

fn rules(assessment: &proto::Assessment) -> Vec<&str> {
    assessment.reasons.iter().map(|r| r.rule.as_str()).collect()
}

/// A site where every reply waits for a moderator, so only the rules under test decide.
async fn moderated_site(h: &Harness) -> TestSite {
    let policy = Policy {
        mode: Mode::ModerateAll,
        flood_interval_seconds: 0,
        min_form_seconds: 0,
        ..Policy::default()
    };
    h.site_with("news.example.com", policy).await
}

async fn block_email(h: &Harness, site: &TestSite, email: &str) {
    let token = h.moderator_token(&[site.id], &Scope::ALL).await;
    h.moderation(&token)
        .await
        .block(proto::BlockRequest {
            kind: BlockKind::Author.into(),
            email: email.to_owned(),
            note: "abuse".into(),
            ..Default::default()
        })
        .await
        .expect("block");
}

async fn stored(h: &Harness, id: &str) -> replyguard::store::StoredComment {
    let id: CommentId = id.parse().expect("id");
    h.store.comment(id).await.expect("read").expect("stored")
}

/// Stops the harness's server, as every replica is stopped before a rotation.
async fn stop(h: &mut Harness) {
    let server = h.server.take().expect("running");
    server.shutdown().await.expect("clean shutdown");
}

/// `replyguard key rotate` on the harness's database, given the current key (or the key file
/// beside a SQLite database, with `None`) and the file of the new one.
async fn rotate(
    h: &Harness,
    secret_key: Option<Secret>,
    new_key_file: Option<PathBuf>,
) -> Result<rotation::Rotated, String> {
    rotation::rotate(&RotateArgs {
        key: KeyArgs {
            database: h.settings.database.clone(),
            key: SecretKeyArgs {
                secret_key,
                secret_key_file: None,
            },
        },
        new_key_file,
    })
    .await
}

/// A new key, and a file holding it in `dir`.
fn new_key_in(dir: &Path) -> (SecretKey, PathBuf) {
    let key = SecretKey::generate();
    let file = dir.join("new.key");
    write_new_key_file(&file, &key).expect("the new key file");
    (key, file)
}

async fn prepare_form(h: &Harness, site: &TestSite, article: &str) -> String {
    h.comments(&site.site_key)
        .await
        .prepare_form(proto::PrepareFormRequest {
            article: article.to_owned(),
            ..Default::default()
        })
        .await
        .expect("a form")
        .into_inner()
        .token
}

fn with_form(
    mut request: proto::SubmitCommentRequest,
    token: String,
) -> proto::SubmitCommentRequest {
    request.form = Some(proto::FormInfo {
        token,
        honeypot: String::new(),
    });
    request
}

fn refused_for_the_key(started: Result<(), StartError>) {
    match started {
        Err(StartError::Key(KeyError::Wrong)) => {}
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(()) => panic!("started with the key the database was rotated away from"),
    }
}

/// Everything keyed moves to the new key in one step: emails and texts open under it alone, an
/// author keeps their record and their block, a block no reply maps is dropped and said so, the
/// idempotency keys go, and a form opened before the rotation still counts while the old key
/// is given as the previous one.
async fn a_rotation_moves_every_author_and_text_to_the_new_key(backend: Backend) {
    let mut h = Harness::new(backend).await;
    let site = moderated_site(&h).await;
    let mut moderation = h.moderation(&site.mod_token).await;
    let ann = |article: &str, body: &str| reply_by(article, body, "Ann", "Ann@Example.com");
    let (ann_first, ..) = assessed(&h, &site, ann("a", "A careful first reply.")).await;
    approve(&mut moderation, std::slice::from_ref(&ann_first)).await;
    let raw = "Write to me at ann.other@example.org any time.";
    let (ann_contact, ..) = assessed(&h, &site, ann("a", raw)).await;
    let (bob, ..) = assessed(
        &h,
        &site,
        reply_by("a", "Bob was here.", "Bob", "bob@example.com"),
    )
    .await;
    block_email(&h, &site, "bob@example.com").await;
    block_email(&h, &site, "cy@example.com").await;
    let mut keyed = reply_by("a", "Sent with a key.", "Eve", "eve@example.com");
    keyed.idempotency_key = "retry-1".into();
    let (keyed, _) = submitted(&mut h.comments(&site.site_key).await, keyed).await;
    let (dee, ..) = assessed(
        &h,
        &site,
        reply_by("a", "Soon gone.", "Dee", "dee@example.com"),
    )
    .await;
    let eraser = h.moderator_token(&[site.id], &Scope::ALL).await;
    h.moderation(&eraser)
        .await
        .erase_author(proto::EraseAuthorRequest {
            email: "dee@example.com".into(),
            ..Default::default()
        })
        .await
        .expect("erase");
    let erased = stored(&h, &dee).await;
    let email = Vault::new(&h.key)
        .decrypt_email(site.id, &stored(&h, &ann_contact).await.email_sealed)
        .expect("sealed under the old key");
    let form = prepare_form(&h, &site, "b").await;

    // Every replica stopped, then the rotation.
    stop(&mut h).await;
    let old = Secret::from(&h.key);
    let dir = tempfile::tempdir().expect("dir");
    let (new_key, new_file) = new_key_in(dir.path());
    let rotated = rotate(&h, Some(old.clone()), Some(new_file.clone()))
        .await
        .expect("rotates");
    assert_eq!(
        rotated.report,
        Some(RekeyReport {
            comments: 4,
            blocks_kept: 1,
            blocks_dropped: 1,
            idempotency_keys_dropped: 1,
        })
    );
    assert!(
        rotated.summary().contains("REPLYGUARD_PREVIOUS_SECRET_KEY"),
        "{}",
        rotated.summary()
    );

    // A second run with the old key is refused for it and changes nothing.
    let before = h.db.rows().await;
    let again = rotate(&h, Some(old.clone()), Some(new_file)).await;
    let refused = again.expect_err("rotated twice from one key");
    assert!(
        refused.contains("not the one this database was written with"),
        "{refused}"
    );
    h.db.assert_unchanged(&before).await;
    refused_for_the_key(
        h.restart_configured(|settings| settings.key.secret_key = Some(old.clone()))
            .await,
    );
    h.restart_configured(|settings| {
        settings.key.secret_key = Some(Secret::from(&new_key));
        settings.previous_secret_key = Some(old);
    })
    .await
    .expect("the new key starts");

    let (now, before) = (Vault::new(&new_key), Vault::new(&h.key));
    let contact = stored(&h, &ann_contact).await;
    assert_eq!(
        now.decrypt_email(site.id, &contact.email_sealed).ok(),
        Some(email.clone())
    );
    assert!(
        before
            .decrypt_email(site.id, &contact.email_sealed)
            .is_err()
    );
    assert_eq!(contact.raw_body(&now).ok().as_deref(), Some(raw));
    assert!(contact.raw_body(&before).is_err());
    assert_eq!(
        contact.author_hash,
        now.author_hash(site.id, "ann@example.com").0
    );
    assert_eq!(
        contact.avatar_seed,
        now.avatar_seed(site.id, "ann@example.com")
    );
    assert_eq!(stored(&h, &dee).await.author_hash, erased.author_hash);
    assert_eq!(stored(&h, &keyed).await.idempotency_key, None);
    let revealed = h
        .moderation(&eraser)
        .await
        .reveal_email(proto::RevealEmailRequest {
            id: ann_first,
            reason: "a complaint".into(),
        })
        .await
        .expect("reveal")
        .into_inner();
    assert_eq!(revealed.email, email);

    // Ann is still trusted, Bob still blocked; Cy, who never wrote, could not follow.
    let (_, _, back) = assessed(&h, &site, ann("c", "Back again.")).await;
    assert!(rules(&back).contains(&"history-trusted"), "{back:?}");
    let bob_again = with_form(reply_by("b", "Bob again.", "Bob", "bob@example.com"), form);
    let (_, _, bob_again) = assessed(&h, &site, bob_again).await;
    assert!(rules(&bob_again).contains(&"moderator-block"));
    assert!(
        !rules(&bob_again)
            .iter()
            .any(|rule| rule.starts_with("form-")),
        "a form opened before the rotation counts: {bob_again:?}"
    );
    let blocks = h
        .moderation(&site.mod_token)
        .await
        .list_blocks(proto::ListBlocksRequest::default())
        .await
        .expect("blocks")
        .into_inner()
        .entries;
    let values: Vec<&str> = blocks.iter().map(|entry| entry.value.as_str()).collect();
    assert_eq!(
        values,
        [now.author_hash(site.id, "bob@example.com").to_hex()]
    );
    let audit = h.db.site_audit(audit_action::KEY_ROTATE).await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    let note = audit[0].2.as_deref().unwrap_or_default();
    assert!(note.contains("replies sealed again: 4"), "{note}");
    assert!(note.contains("dropped: 1"), "{note}");
    assert_eq!(
        stored(&h, &bob).await.author_hash,
        now.author_hash(site.id, "bob@example.com").0
    );
}

/// A form opened before the rotation is judged forged once the previous key is no longer
/// given: the grace lasts only as long as the operator gives it.
async fn without_the_previous_key_a_form_of_the_old_key_is_forged(backend: Backend) {
    let mut h = Harness::new(backend).await;
    let site = moderated_site(&h).await;
    let form = prepare_form(&h, &site, "b").await;
    stop(&mut h).await;
    let dir = tempfile::tempdir().expect("dir");
    let (new_key, new_file) = new_key_in(dir.path());
    rotate(&h, Some(Secret::from(&h.key)), Some(new_file))
        .await
        .expect("rotates");
    h.restart_configured(|settings| settings.key.secret_key = Some(Secret::from(&new_key)))
        .await
        .expect("the new key starts");

    let late = with_form(
        reply_by("b", "An old page.", "Fay", "fay@example.com"),
        form,
    );
    let (_, _, late) = assessed(&h, &site, late).await;
    assert!(rules(&late).contains(&"form-token-invalid"), "{late:?}");
}

/// A key given as a file (`--secret-key-file`) is rotated in place, as the key file beside a
/// SQLite database is: the new key takes its place, the old one stays beside it as `.previous`,
/// and a server given the file reads both, so the forms of pages opened before still pass.
async fn a_key_file_given_by_name_is_replaced_and_the_old_key_kept_beside_it(backend: Backend) {
    let mut h = Harness::new(backend).await;
    let site = moderated_site(&h).await;
    let form = prepare_form(&h, &site, "b").await;
    stop(&mut h).await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("deployment.key");
    write_new_key_file(&file, &h.key).expect("the key file");

    let rotated = rotation::rotate(&RotateArgs {
        key: KeyArgs {
            database: h.settings.database.clone(),
            key: SecretKeyArgs {
                secret_key: None,
                secret_key_file: Some(file.clone()),
            },
        },
        new_key_file: None,
    })
    .await
    .expect("rotates");
    assert_eq!(rotated.key_file.as_deref(), Some(file.as_path()));
    let previous = read_key_file(&previous_key_file(&file)).expect("the old key beside it");
    assert_eq!(previous.to_base64(), h.key.to_base64());
    let new_key = read_key_file(&file).expect("the new key in its place");
    assert_ne!(new_key.to_base64(), h.key.to_base64());

    h.restart_configured(|settings| {
        settings.key.secret_key = None;
        settings.key.secret_key_file = Some(file.clone());
    })
    .await
    .expect("starts with the rotated file");
    let late = with_form(
        reply_by("b", "An old page.", "Fay", "fay@example.com"),
        form,
    );
    let (_, _, late) = assessed(&h, &site, late).await;
    assert!(!rules(&late).contains(&"form-token-invalid"), "{late:?}");
}

/// A rotation beside a running server would race it: the server would go on sealing under the
/// old key. While one serves, the rotation is refused and changes nothing (SQLite: the file's
/// lock; PostgreSQL: the serving lock each replica holds shared); once it stops, it goes through.
async fn a_rotation_is_refused_while_a_server_serves(backend: Backend) {
    let mut h = Harness::new(backend).await;
    let before = h.store.key_check().await.expect("read");
    let dir = tempfile::tempdir().expect("dir");
    let (_, new_file) = new_key_in(dir.path());
    let old = Some(Secret::from(&h.key));

    let refused = rotate(&h, old.clone(), Some(new_file.clone())).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|message| message.contains("stop")),
        "{refused:?}"
    );
    assert_eq!(h.store.key_check().await.expect("read"), before);

    stop(&mut h).await;
    rotate(&h, old, Some(new_file))
        .await
        .expect("rotates once the server has stopped");
}

/// `replyguard` as an operator runs it, with `args`, `key` and the harness's database.
fn run_replyguard(h: &Harness, key: &SecretKey, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_replyguard"))
        .env_remove("REPLYGUARD_DATABASE_URL")
        .env("REPLYGUARD_SECRET_KEY", key.to_base64())
        .args(args)
        .args(["--database", &h.settings.database.url])
        .output()
        .expect("replyguard runs")
}

/// [`run_replyguard`], which must succeed.
fn replyguard(h: &Harness, key: &SecretKey, args: &[&str]) -> std::process::Output {
    let output = run_replyguard(h, key, args);
    assert!(
        output.status.success(),
        "replyguard {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The real binary, on more replies than one batch holds: every reply, whatever its queue,
/// opens under the new key afterwards, and `key check` tells the new key from the old.
async fn the_binary_rotates_more_replies_than_a_batch_holds(backend: Backend) {
    const REPLIES: usize = 1234;
    let mut h = Harness::new(backend).await;
    let site = h.site("seeded.example.com").await;
    replyguard(
        &h,
        &h.key,
        &[
            "seed",
            "--site",
            &site.name,
            "--replies",
            &REPLIES.to_string(),
        ],
    );
    stop(&mut h).await;
    let dir = tempfile::tempdir().expect("dir");
    let (new_key, new_file) = new_key_in(dir.path());

    let output = replyguard(
        &h,
        &h.key,
        &[
            "key",
            "rotate",
            "--new-key-file",
            &new_file.to_string_lossy(),
        ],
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains(&format!("sealed {REPLIES} replies again")),
        "{printed}"
    );

    let checked = replyguard(&h, &new_key, &["key", "check"]);
    assert!(String::from_utf8_lossy(&checked.stdout).contains("is the one"));
    let refused = run_replyguard(&h, &h.key, &["key", "check"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not the one"));

    let (now, before) = (Vault::new(&new_key), Vault::new(&h.key));
    let mut opened = 0;
    for status in [
        CommentStatus::Pending,
        CommentStatus::Approved,
        CommentStatus::Spam,
        CommentStatus::Rejected,
    ] {
        let mut after = None;
        loop {
            let page = h
                .store
                .queue_page(site.id, status, None, after, 500)
                .await
                .expect("a page");
            for comment in &page {
                let email = now.decrypt_email(site.id, &comment.email_sealed);
                assert!(email.is_ok(), "{} does not open", comment.id);
                assert!(
                    before
                        .decrypt_email(site.id, &comment.email_sealed)
                        .is_err()
                );
                opened += 1;
            }
            match page.last() {
                Some(last) => after = Some(last.id),
                None => break,
            }
        }
    }
    assert_eq!(opened, REPLIES);
}

backend_tests!(
    a_rotation_moves_every_author_and_text_to_the_new_key,
    without_the_previous_key_a_form_of_the_old_key_is_forged,
    a_rotation_is_refused_while_a_server_serves,
    the_binary_rotates_more_replies_than_a_batch_holds,
    a_key_file_given_by_name_is_replaced_and_the_old_key_kept_beside_it,
);

/// On the SQLite default the key file is the key: the rotation makes the new one, puts it in
/// the file's place once the database is committed, and keeps the old one beside it, which
/// the server reads to accept the forms of pages opened before.
#[tokio::test]
async fn a_sqlite_key_file_is_replaced_and_the_old_key_kept_beside_it() {
    let mut h =
        Harness::configured(Backend::Sqlite, |settings| settings.key.secret_key = None).await;
    let site = moderated_site(&h).await;
    let (id, ..) = assessed(
        &h,
        &site,
        reply_by("a", "Under the key file.", "Ann", "ann@example.com"),
    )
    .await;
    let key_file = h.db_path().with_extension("key");
    let old = std::fs::read_to_string(&key_file).expect("the key file");
    stop(&mut h).await;

    let rotated = rotate(&h, None, None).await.expect("rotates");
    assert_eq!(rotated.key_file.as_deref(), Some(key_file.as_path()));
    let previous = previous_key_file(&key_file);
    assert_eq!(
        std::fs::read_to_string(&previous).expect("the old key"),
        old
    );
    let new_key = SecretKey::from_base64(&std::fs::read_to_string(&key_file).expect("the new key"))
        .expect("a key");
    let entries = std::fs::read_dir(key_file.parent().expect("dir"))
        .expect("list")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().contains(".key"))
        .count();
    assert_eq!(
        entries, 2,
        "only the key file and the previous one are left"
    );

    h.restart_configured(|_| {})
        .await
        .expect("starts with its new key file");
    let comment = stored(&h, &id).await;
    assert_eq!(
        Vault::new(&new_key)
            .decrypt_email(site.id, &comment.email_sealed)
            .ok()
            .as_deref(),
        Some("ann@example.com")
    );
}

/// A rotation cut short after the database committed leaves the new key beside the key file:
/// the server refuses the old key, and running the rotation again puts the new one in place
/// without touching the database again.
#[tokio::test]
async fn a_rotation_cut_short_after_its_commit_is_finished_by_running_it_again() {
    let mut h =
        Harness::configured(Backend::Sqlite, |settings| settings.key.secret_key = None).await;
    let site = moderated_site(&h).await;
    assessed(
        &h,
        &site,
        reply_by("a", "Under the key file.", "Ann", "ann@example.com"),
    )
    .await;
    stop(&mut h).await;
    let key_file = h.db_path().with_extension("key");
    let old = replyguard::privacy::read_key_file(&key_file).expect("the key");
    // The state a crash between the commit and the renames leaves.
    let new_key = SecretKey::generate();
    let next = key_file.with_extension("key.next");
    write_new_key_file(&next, &new_key).expect("the new key beside");
    h.store
        .rekey(&replyguard::privacy::Rekeying::new(&old, &new_key))
        .await
        .expect("the database moves");
    refused_for_the_key(h.restart_configured(|_| {}).await);

    let rotated = rotate(&h, None, None).await.expect("finishes");
    assert!(rotated.report.is_none(), "the database moved once");
    assert!(!next.exists());
    h.restart_configured(|_| {})
        .await
        .expect("starts with the new key file");
    assert_eq!(
        h.store.key_check().await.expect("read").as_deref(),
        Some(&Vault::new(&new_key).key_check()[..])
    );
}

/// A new key beside the key file that the database is not under may be another rotation's,
/// running now: it is left alone, and this rotation refused.
#[tokio::test]
async fn a_new_key_the_database_is_not_under_is_left_alone() {
    let mut h =
        Harness::configured(Backend::Sqlite, |settings| settings.key.secret_key = None).await;
    stop(&mut h).await;
    let key_file = h.db_path().with_extension("key");
    let old = replyguard::privacy::read_key_file(&key_file).expect("the key");
    let next = key_file.with_extension("key.next");
    write_new_key_file(&next, &SecretKey::generate()).expect("another rotation's key");

    let refused = rotate(&h, None, None).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|message| message.contains("another rotation is running")),
        "{refused:?}"
    );
    assert!(next.exists());
    assert_eq!(
        h.store.key_check().await.expect("read").as_deref(),
        Some(&Vault::new(&old).key_check()[..])
    );
}

/// Checking a key against a backup that is not there says so, and makes no database there.
#[tokio::test]
async fn checking_a_key_against_a_missing_sqlite_file_creates_none() {
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("restored.db");
    let checked = rotation::check(&KeyArgs {
        database: replyguard::config::DatabaseArgs {
            url: format!("sqlite://{}", missing.display()),
        },
        key: SecretKeyArgs {
            secret_key: Some(Secret::from(&SecretKey::generate())),
            secret_key_file: None,
        },
    })
    .await;
    assert!(
        checked
            .as_ref()
            .is_err_and(|message| message.contains("no database")),
        "{checked:?}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
}
