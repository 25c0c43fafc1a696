//! Mail end to end: a real SMTP server (aiosmtpd, `tests/data/smtp-sink.py`) started by each
//! test on a port of its own, the real server and its mail worker, on both backends. Each mail
//! is checked as it arrived: its envelope, its headers and its decoded text.

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::{Backend, Harness, TestSite, backend_tests, bearer, reply_by};
use replyguard::{
    domain::Scope,
    proto::{self, integrations_client::IntegrationsClient},
    spam::{Mode, Policy},
};
use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection, PgConnection, SqliteConnection};
use tokio::sync::mpsc;
use tonic::{Code, transport::Channel};

type Integrations =
    IntegrationsClient<tonic::service::interceptor::InterceptedService<Channel, common::Bearer>>;

const FROM: &str = "Comments <comments@news.example.com>";
const MODERATOR: &str = "desk@newsroom.example.net";
const READER: &str = "jane.private@example.org";

/// One message the SMTP server accepted.
#[derive(Debug)]
struct Received {
    json: Value,
}

impl Received {
    fn rcpt_tos(&self) -> Vec<String> {
        self.json["rcpt_tos"]
            .as_array()
            .expect("recipients")
            .iter()
            .map(|r| r.as_str().expect("a recipient").to_owned())
            .collect()
    }

    fn header(&self, name: &str) -> String {
        self.json["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .find(|pair| {
                pair[0]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .and_then(|pair| pair[1].as_str())
            .unwrap_or_else(|| panic!("no {name} header in {}", self.json))
            .to_owned()
    }

    fn text(&self) -> String {
        self.json["text"].as_str().expect("text").to_owned()
    }

    fn raw(&self) -> String {
        self.json["raw"].as_str().expect("raw").to_owned()
    }
}

/// aiosmtpd as a child process, its output read on a thread of its own; killed when dropped.
struct SmtpSink {
    port: u16,
    child: Child,
    heard: mpsc::UnboundedReceiver<String>,
}

impl SmtpSink {
    /// A sink on `port` (0 picks one).
    async fn start(port: u16) -> SmtpSink {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/smtp-sink.py");
        // Debian's python3-aiosmtpd is installed for the system's Python.
        let python = std::env::var("REPLYGUARD_TEST_PYTHON").unwrap_or("/usr/bin/python3".into());
        let mut child = Command::new(python)
            .arg(script)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the SMTP sink starts (apt-get install python3-aiosmtpd)");
        let stdout = child.stdout.take().expect("stdout");
        let (tell, mut heard) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tell.send(line).is_err() {
                    break;
                }
            }
        });
        let first = tokio::time::timeout(Duration::from_secs(20), heard.recv())
            .await
            .expect("the SMTP sink listens within 20 s")
            .expect("the SMTP sink runs (is python3-aiosmtpd installed?)");
        let port = first
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the sink said {first:?}"));
        SmtpSink { port, child, heard }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The next message, within 30 s.
    async fn next(&mut self, what: &str) -> Received {
        let line = tokio::time::timeout(Duration::from_secs(30), self.heard.recv())
            .await
            .unwrap_or_else(|_| panic!("no {what} within 30 s"))
            .expect("the sink runs");
        Received {
            json: serde_json::from_str(&line).expect("a JSON line"),
        }
    }

    /// Stops the server, and waits until its port is closed.
    async fn stop(self) {
        drop(self);
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server that sends mail through `smtp_url`.
async fn harness(backend: Backend, smtp_url: &str) -> Harness {
    let smtp_url = smtp_url.parse().expect("an SMTP URL");
    Harness::configured(backend, |settings| {
        settings.smtp_url = Some(smtp_url);
        settings.mail_from = Some(FROM.to_owned());
    })
    .await
}

async fn integrations(h: &Harness, token: &str) -> Integrations {
    let channel = Channel::from_shared(h.endpoint())
        .expect("endpoint")
        .connect()
        .await
        .expect("connects");
    IntegrationsClient::with_interceptor(channel, bearer(Some(token)))
}

/// A site that holds every reply for a moderator.
async fn moderated_site(h: &Harness) -> TestSite {
    h.site_with(
        "news.example.com",
        Policy {
            mode: Mode::ModerateAll,
            flood_interval_seconds: 0,
            ..Policy::default()
        },
    )
    .await
}

async fn add_notice(h: &Harness, site: &TestSite, email: &str, digest_minutes: u32) -> String {
    let token = h.moderator_token(&[site.id], &[Scope::Integrations]).await;
    integrations(h, &token)
        .await
        .add_notice(proto::AddNoticeRequest {
            email: email.to_owned(),
            events: vec!["comment.held".to_owned()],
            digest_minutes,
            ..Default::default()
        })
        .await
        .expect("add the notice")
        .into_inner()
        .notice
        .expect("the notice")
        .id
}

async fn submit(h: &Harness, site: &TestSite, text: &str, email: &str) -> String {
    let mut comments = h.comments(&site.site_key).await;
    common::submitted(&mut comments, reply_by("story", text, "Jane Reader", email))
        .await
        .0
}

/// One number read behind the store's back.
async fn scalar(h: &Harness, sql: &str) -> i64 {
    let sql = AssertSqlSafe(sql.to_owned());
    match h.db.backend {
        Backend::Sqlite => {
            let mut conn = SqliteConnection::connect(&h.db.url).await.expect("connect");
            sqlx::query_scalar(sql).fetch_one(&mut conn).await
        }
        Backend::Postgres => {
            let mut conn = PgConnection::connect(&h.db.url).await.expect("connect");
            sqlx::query_scalar(sql).fetch_one(&mut conn).await
        }
    }
    .expect("the query")
}

/// Waits, for up to 10 s, until `sql` counts `n`.
async fn until_counted(h: &Harness, sql: &str, n: i64) {
    let counted = async {
        while scalar(h, sql).await != n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), counted)
        .await
        .is_err()
    {
        panic!("{sql} counts {}, not {n}", scalar(h, sql).await);
    }
}

async fn a_held_reply_is_mailed_to_the_moderator_with_what_decides_it(backend: Backend) {
    let mut sink = SmtpSink::start(0).await;
    let h = harness(backend, &sink.url()).await;
    let site = moderated_site(&h).await;
    add_notice(&h, &site, MODERATOR, 0).await;

    let id = submit(
        &h,
        &site,
        "Held until a moderator reads it; write to jane.private@example.org.",
        READER,
    )
    .await;
    let mail = sink.next("the notice").await;
    assert_eq!(mail.rcpt_tos(), [MODERATOR]);
    assert_eq!(mail.header("To"), MODERATOR);
    assert_eq!(mail.header("From"), FROM);
    assert_eq!(
        mail.header("Subject"),
        "[news.example.com] A reply waits for a moderator on story"
    );
    let text = mail.text();
    assert!(
        text.contains(
            "A reply on site \"news.example.com\", article \"story\", waits for a moderator."
        ),
        "{text}"
    );
    assert!(
        text.contains("Author:  Jane Reader (j•••@example.org)"),
        "{text}"
    );
    assert!(
        text.contains("Held:    by the site's policy, not by its score"),
        "why it waits: {text}"
    );
    assert!(
        text.contains("classifier: spam probability"),
        "the reasons: {text}"
    );
    assert!(text.contains(&format!("replyctl approve {id}")), "{text}");
    assert!(text.contains(&format!("replyctl spam {id}")), "{text}");
    // The author's address is nowhere in the mail: not in the text, not in a header.
    assert!(!mail.raw().contains(READER), "{}", mail.raw());
    assert!(!mail.raw().contains("jane.private"), "{}", mail.raw());

    // Sent once: the outbox row says so.
    until_counted(
        &h,
        "SELECT COUNT(*) FROM mail_outbox WHERE state = 'sent'",
        1,
    )
    .await;
    // No address is stored in the clear.
    for row in h.db.rows().await {
        assert!(!row.contains(MODERATOR), "{row}");
        assert!(!row.contains("newsroom.example.net"), "{row}");
    }
    sink.stop().await;
}

async fn a_mail_queued_a_week_ago_is_dropped_from_the_outbox_sent_or_not(backend: Backend) {
    let mut sink = SmtpSink::start(0).await;
    let mut h = harness(backend, &sink.url()).await;
    let site = moderated_site(&h).await;
    add_notice(&h, &site, MODERATOR, 0).await;
    submit(
        &h,
        &site,
        "Held, mailed, and forgotten a week later.",
        READER,
    )
    .await;
    sink.next("the notice").await;
    until_counted(
        &h,
        "SELECT COUNT(*) FROM mail_outbox WHERE state = 'sent'",
        1,
    )
    .await;
    submit(&h, &site, "Held and mailed today.", READER).await;
    sink.next("the second notice").await;
    until_counted(
        &h,
        "SELECT COUNT(*) FROM mail_outbox WHERE state = 'sent'",
        2,
    )
    .await;
    // A mail that is not sent (the SMTP server is gone) waits in the outbox.
    sink.stop().await;
    submit(&h, &site, "Held while the mail server is gone.", READER).await;
    until_counted(
        &h,
        "SELECT COUNT(*) FROM mail_outbox WHERE state = 'pending'",
        1,
    )
    .await;
    // A week passes for the first and for the one that waits.
    h.db.execute(
        "UPDATE mail_outbox SET created_at = '2000-01-01 00:00:00+00:00' \
         WHERE created_at = (SELECT MIN(created_at) FROM mail_outbox) OR state = 'pending'",
    )
    .await;
    // The retention sweep drops old mails, sent or not, as the server starts.
    h.restart().await;
    until_counted(&h, "SELECT COUNT(*) FROM mail_outbox", 1).await;
    assert_eq!(
        scalar(
            &h,
            "SELECT COUNT(*) FROM mail_outbox WHERE state = 'sent' \
             AND created_at > '2001-01-01 00:00:00+00:00'"
        )
        .await,
        1
    );
}

async fn notices_are_added_listed_and_removed_with_replyctl(backend: Backend) {
    let sink = SmtpSink::start(0).await;
    let h = harness(backend, &sink.url()).await;
    let site = moderated_site(&h).await;
    let token = h.moderator_token(&[site.id], &[Scope::Integrations]).await;

    let added = h.replyctl(
        &token,
        &[
            "--output",
            "json",
            "notify",
            "add",
            "--email",
            MODERATOR,
            "--events",
            "comment.held,comment.spam",
            "--digest",
            "15",
        ],
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let added: Value = serde_json::from_slice(&added.stdout).expect("json");
    let id = added["notice"]["id"].as_str().expect("an id").to_owned();
    assert_eq!(added["notice"]["email"], "d•••@newsroom.example.net");
    assert_eq!(
        added["notice"]["events"],
        serde_json::json!(["comment.held", "comment.spam"])
    );
    assert_eq!(added["notice"]["digest_minutes"], 15);

    let again = h.replyctl(&token, &["notify", "add", "--email", MODERATOR]);
    assert_eq!(again.status.code(), Some(1));
    let unknown = h.replyctl(
        &token,
        &[
            "notify",
            "add",
            "--email",
            "other@example.net",
            "--events",
            "comment.approved",
        ],
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("comment.held, comment.spam"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );

    let listed = h.replyctl(&token, &["--output", "table", "notify", "list"]);
    let table = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.status.success());
    assert!(table.contains(&id), "{table}");
    assert!(table.contains("d•••@newsroom.example.net"), "{table}");
    assert!(table.contains("15 min"), "{table}");
    assert!(!table.contains(MODERATOR), "{table}");

    let removed = h.replyctl(&token, &["notify", "remove", &id]);
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    let listed = h.replyctl(&token, &["--output", "json", "notify", "list"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).expect("json");
    assert_eq!(listed["notices"], serde_json::json!([]));
    let missing = h.replyctl(&token, &["notify", "remove", &id]);
    assert_eq!(missing.status.code(), Some(1));

    // Audited, without the address.
    let audit: Vec<String> =
        h.db.site_audit("notice_add")
            .await
            .into_iter()
            .chain(h.db.site_audit("notice_remove").await)
            .map(|(_, _, note)| note.unwrap_or_default())
            .collect();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert!(audit.iter().all(|note| note.contains(&id)), "{audit:?}");
    assert!(
        audit.iter().all(|note| !note.contains("newsroom")),
        "{audit:?}"
    );

    // A token without the scope is refused.
    let plain = h.replyctl(&site.mod_token, &["notify", "list"]);
    assert_eq!(plain.status.code(), Some(1));
    sink.stop().await;
}

async fn a_digest_gathers_held_replies_into_one_mail(backend: Backend) {
    let mut sink = SmtpSink::start(0).await;
    let h = harness(backend, &sink.url()).await;
    let site = moderated_site(&h).await;
    add_notice(&h, &site, MODERATOR, 15).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(submit(&h, &site, &format!("Held reply number {n}."), READER).await);
    }
    // All three wait for the first one's quarter of an hour, together.
    assert_eq!(
        scalar(
            &h,
            "SELECT COUNT(*) FROM mail_outbox WHERE state = 'pending' \
             AND next_attempt_at > created_at"
        )
        .await,
        3
    );
    assert_eq!(
        scalar(
            &h,
            "SELECT COUNT(DISTINCT next_attempt_at) FROM mail_outbox WHERE state = 'pending'"
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &h,
            "SELECT COUNT(*) FROM mail_outbox WHERE state = 'pending'"
        )
        .await,
        3
    );
    // The quarter of an hour passes.
    h.db.execute("UPDATE mail_outbox SET next_attempt_at = created_at")
        .await;
    let mail = sink.next("the digest").await;
    assert_eq!(mail.rcpt_tos(), [MODERATOR]);
    assert_eq!(
        mail.header("Subject"),
        "[news.example.com] 3 replies wait for a moderator"
    );
    let text = mail.text();
    for id in &ids {
        assert!(text.contains(&format!("replyctl approve {id}")), "{text}");
    }
    until_counted(
        &h,
        "SELECT COUNT(*) FROM mail_outbox WHERE state = 'sent'",
        3,
    )
    .await;
    sink.stop().await;
}

async fn mail_waits_while_the_smtp_server_is_down_and_goes_once_it_is_back(backend: Backend) {
    let sink = SmtpSink::start(0).await;
    let port = sink.port;
    let h = harness(backend, &sink.url()).await;
    let site = moderated_site(&h).await;
    add_notice(&h, &site, MODERATOR, 0).await;
    sink.stop().await;

    let id = submit(&h, &site, "Held while the mail server is down.", READER).await;
    let tried = async {
        while scalar(&h, "SELECT COALESCE(MAX(attempts), 0) FROM mail_outbox").await < 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), tried)
        .await
        .expect("a first attempt fails and is recorded");
    assert_eq!(
        scalar(
            &h,
            "SELECT COUNT(*) FROM mail_outbox WHERE state = 'pending'"
        )
        .await,
        1,
        "to be tried again"
    );

    let mut sink = SmtpSink::start(port).await;
    let mail = sink.next("the notice once the server is back").await;
    assert_eq!(mail.rcpt_tos(), [MODERATOR]);
    assert!(mail.text().contains(&id), "{}", mail.text());
    until_counted(
        &h,
        "SELECT COUNT(*) FROM mail_outbox WHERE state = 'sent'",
        1,
    )
    .await;
    assert_eq!(
        scalar(&h, "SELECT COUNT(*) FROM mail_outbox").await,
        1,
        "one mail, sent once"
    );
    sink.stop().await;
}

async fn a_server_that_never_answers_does_not_slow_a_submission(backend: Backend) {
    // Takes connections and says nothing: the SMTP greeting never comes.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("smtp://{}", silent.local_addr().expect("addr"));
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    let h = harness(backend, &url).await;
    let site = moderated_site(&h).await;
    add_notice(&h, &site, MODERATOR, 0).await;
    for n in 0..3 {
        let started = std::time::Instant::now();
        submit(
            &h,
            &site,
            &format!("Held reply {n} while SMTP hangs."),
            READER,
        )
        .await;
        // The SMTP timeout is 10 s; a submission that waited for mail would take that long.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "submission {n} took {:?}",
            started.elapsed()
        );
    }
    held.abort();
}

async fn notices_are_refused_when_the_server_sends_no_mail(backend: Backend) {
    let h = Harness::new(backend).await;
    let site = moderated_site(&h).await;
    let token = h.moderator_token(&[site.id], &[Scope::Integrations]).await;
    let refused = integrations(&h, &token)
        .await
        .add_notice(proto::AddNoticeRequest {
            email: MODERATOR.to_owned(),
            events: vec!["comment.held".to_owned()],
            ..Default::default()
        })
        .await
        .expect_err("no mail is sent");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("REPLYGUARD_SMTP_URL"),
        "{refused:?}"
    );
}

const CONFIRM_PAGE: &str = "https://news.example.com/comments/confirm?token={token}";
const UNSUBSCRIBE_PAGE: &str = "https://news.example.com/comments/unsubscribe?token={token}";
const ANSWERER: &str = "sam.answers@example.net";

/// Sets the site's mail pages with replyctl.
fn set_pages(h: &Harness, token: &str) {
    let set = h.replyctl(
        token,
        &[
            "notify",
            "pages",
            "--confirm",
            CONFIRM_PAGE,
            "--unsubscribe",
            UNSUBSCRIBE_PAGE,
        ],
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
}

/// The token at the end of the first line of `text` that holds `page`'s start.
fn token_in(text: &str, page: &str) -> String {
    let start = page.split("{token}").next().expect("a start");
    let at = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {text}"));
    text[at + start.len()..]
        .split(|c: char| c.is_whitespace() || c == '>')
        .next()
        .expect("a token")
        .to_owned()
}

async fn answer(h: &Harness, site: &TestSite, parent: &str, text: &str, email: &str) -> String {
    let mut request = reply_by("story", text, "Sam Answer", email);
    request.parent_id = parent.to_owned();
    common::submitted(&mut h.comments(&site.site_key).await, request)
        .await
        .0
}

async fn a_reader_who_confirms_is_mailed_approved_answers_until_they_unsubscribe(backend: Backend) {
    let mut sink = SmtpSink::start(0).await;
    let h = harness(backend, &sink.url()).await;
    let site = moderated_site(&h).await;
    let token = h.moderator_token(&[site.id], &[Scope::Integrations]).await;
    set_pages(&h, &token);
    let mut moderation = h.moderation(&site.mod_token).await;
    let mut comments = h.comments(&site.site_key).await;

    let mut wish = reply_by(
        "story",
        "Tell me when someone answers.",
        "Jane Reader",
        READER,
    );
    wish.notify_replies = true;
    let (yours, _) = common::submitted(&mut comments, wish.clone()).await;
    let confirm = sink.next("the confirmation").await;
    assert_eq!(confirm.rcpt_tos(), [READER]);
    assert_eq!(confirm.header("To"), READER);
    assert_eq!(
        confirm.header("Subject"),
        "[news.example.com] Confirm your address for answers to your reply"
    );
    let link_token = token_in(&confirm.text(), CONFIRM_PAGE);
    assert!(link_token.starts_with("rg_mail_"), "{}", confirm.text());
    // A second wish within the day sends no second confirmation.
    wish.body = "And this one too, please.".to_owned();
    common::submitted(&mut comments, wish).await;
    assert_eq!(
        scalar(
            &h,
            "SELECT COUNT(*) FROM mail_outbox WHERE kind = 'confirm'"
        )
        .await,
        1
    );
    common::approve(&mut moderation, std::slice::from_ref(&yours)).await;

    // Not confirmed yet: an approved answer is not mailed.
    let early = answer(
        &h,
        &site,
        &yours,
        "An answer before the confirmation.",
        ANSWERER,
    )
    .await;
    common::approve(&mut moderation, std::slice::from_ref(&early)).await;
    assert_eq!(
        scalar(&h, "SELECT COUNT(*) FROM mail_outbox WHERE kind = 'answer'").await,
        0
    );

    let unknown = comments
        .confirm_email(proto::ConfirmEmailRequest {
            token: format!("rg_mail_{}", "A".repeat(43)),
        })
        .await
        .expect_err("an unknown token");
    assert_eq!(unknown.code(), Code::NotFound);
    comments
        .confirm_email(proto::ConfirmEmailRequest {
            token: link_token.clone(),
        })
        .await
        .expect("confirm");

    // Held, nothing; approved by a moderator, the reader hears of it.
    let later = answer(&h, &site, &yours, "Here is an answer, Jane.", ANSWERER).await;
    assert_eq!(
        scalar(&h, "SELECT COUNT(*) FROM mail_outbox WHERE kind = 'answer'").await,
        0
    );
    common::approve(&mut moderation, std::slice::from_ref(&later)).await;
    let told = sink.next("the answer").await;
    assert_eq!(told.rcpt_tos(), [READER]);
    assert_eq!(told.header("To"), READER);
    assert_eq!(
        told.header("Subject"),
        "[news.example.com] Sam Answer answered your reply"
    );
    let text = told.text();
    assert!(text.contains("  > Here is an answer, Jane."), "{text}");
    assert!(text.contains("  > Tell me when someone answers."), "{text}");
    let unsubscribe = UNSUBSCRIBE_PAGE.replace("{token}", &link_token);
    assert!(text.contains(&unsubscribe), "{text}");
    assert_eq!(told.header("List-Unsubscribe"), format!("<{unsubscribe}>"));
    assert_eq!(
        told.header("List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );
    // Never the answerer's address, nor the moderator's.
    for mail in [&confirm, &told] {
        assert!(!mail.raw().contains(ANSWERER), "{}", mail.raw());
        assert!(!mail.raw().contains("example.net"), "{}", mail.raw());
    }

    // The reader's own answer to their reply is not mailed to them.
    let own = {
        let mut request = reply_by("story", "Answering myself.", "Jane Reader", READER);
        request.parent_id = yours.clone();
        common::submitted(&mut comments, request).await.0
    };
    common::approve(&mut moderation, std::slice::from_ref(&own)).await;

    comments
        .unsubscribe(proto::UnsubscribeRequest {
            token: link_token.clone(),
        })
        .await
        .expect("unsubscribe");
    let after = answer(&h, &site, &yours, "Nobody hears of this one.", ANSWERER).await;
    common::approve(&mut moderation, std::slice::from_ref(&after)).await;
    assert_eq!(
        scalar(&h, "SELECT COUNT(*) FROM mail_outbox WHERE kind = 'answer'").await,
        1,
        "only the answer after the confirmation and before the unsubscription"
    );

    // A day later the reader asks again: a new confirmation, with a new token; the old
    // links no longer confirm anything.
    h.db.execute("UPDATE mail_outbox SET created_at = '2000-01-01 00:00:00+00:00'")
        .await;
    let mut again = reply_by("story", "Tell me of answers again.", "Jane Reader", READER);
    again.notify_replies = true;
    common::submitted(&mut comments, again).await;
    let reconfirm = sink.next("the second confirmation").await;
    assert_eq!(reconfirm.rcpt_tos(), [READER]);
    let new_token = token_in(&reconfirm.text(), CONFIRM_PAGE);
    assert_ne!(new_token, link_token);
    let stale = comments
        .confirm_email(proto::ConfirmEmailRequest {
            token: link_token.clone(),
        })
        .await
        .expect_err("the first confirmation's token");
    assert_eq!(stale.code(), Code::NotFound);
    comments
        .confirm_email(proto::ConfirmEmailRequest {
            token: new_token.clone(),
        })
        .await
        .expect("confirm again");

    for row in h.db.rows().await {
        assert!(!row.contains(READER), "{row}");
        assert!(!row.contains(&link_token), "{row}");
        assert!(!row.contains(&new_token), "{row}");
    }
    sink.stop().await;
}

async fn an_answer_approved_as_it_comes_is_mailed_at_once(backend: Backend) {
    let mut sink = SmtpSink::start(0).await;
    let h = harness(backend, &sink.url()).await;
    let site = h.site_without_flood_limit("news.example.com").await;
    let token = h.moderator_token(&[site.id], &[Scope::Integrations]).await;
    set_pages(&h, &token);
    let mut comments = h.comments(&site.site_key).await;
    let mut wish = reply_by("story", "Tell me of answers.", "Jane Reader", READER);
    wish.notify_replies = true;
    let (yours, status) = common::submitted(&mut comments, wish).await;
    assert_eq!(status, proto::CommentStatus::Approved);
    let confirm = sink.next("the confirmation").await;
    comments
        .confirm_email(proto::ConfirmEmailRequest {
            token: token_in(&confirm.text(), CONFIRM_PAGE),
        })
        .await
        .expect("confirm");
    answer(
        &h,
        &site,
        &yours,
        "An answer, approved as it came.",
        ANSWERER,
    )
    .await;
    let told = sink.next("the answer").await;
    assert_eq!(told.rcpt_tos(), [READER]);
    assert!(told.text().contains("An answer, approved as it came."));
    sink.stop().await;
}

async fn erasure_removes_an_address_kept_for_mail_and_export_lists_it_first(backend: Backend) {
    let mut sink = SmtpSink::start(0).await;
    let h = harness(backend, &sink.url()).await;
    let site = h.site_without_flood_limit("news.example.com").await;
    let token = h.moderator_token(&[site.id], &[Scope::Integrations]).await;
    set_pages(&h, &token);
    // The reader is also told of held replies, as a moderator would be.
    add_notice(&h, &site, READER, 0).await;
    let mut comments = h.comments(&site.site_key).await;
    let mut wish = reply_by("story", "Tell me of answers.", "Jane Reader", READER);
    wish.notify_replies = true;
    let (yours, _) = common::submitted(&mut comments, wish).await;
    let confirm = sink.next("the confirmation").await;
    comments
        .confirm_email(proto::ConfirmEmailRequest {
            token: token_in(&confirm.text(), CONFIRM_PAGE),
        })
        .await
        .expect("confirm");

    let eraser = h.moderator_token(&[site.id], &[Scope::Erase]).await;
    let mut moderation = h.moderation(&eraser).await;
    let export = async |moderation: &mut common::Moderation| {
        moderation
            .export_author(proto::ExportAuthorRequest {
                email: READER.to_owned(),
                ..Default::default()
            })
            .await
            .expect("export")
            .into_inner()
            .mail
            .expect("the mail part")
    };
    let kept = export(&mut moderation).await;
    assert_eq!(kept.reader_state, "confirmed");
    assert!(kept.confirmed_at.is_some());
    assert_eq!(kept.watched_comment_ids, std::slice::from_ref(&yours));
    assert_eq!(kept.notices, 1);
    assert_eq!(kept.mails, 1, "the confirmation");

    moderation
        .erase_author(proto::EraseAuthorRequest {
            email: READER.to_owned(),
            ..Default::default()
        })
        .await
        .expect("erase");
    for table in [
        "mail_readers",
        "reply_watches",
        "mail_notices",
        "mail_outbox",
    ] {
        assert_eq!(
            scalar(&h, &format!("SELECT COUNT(*) FROM {table}")).await,
            0,
            "{table}"
        );
    }
    assert_eq!(export(&mut moderation).await, proto::AuthorMail::default());
    // An answer to the erased reply is mailed to no one.
    answer(&h, &site, &yours, "Too late to be told.", ANSWERER).await;
    assert_eq!(scalar(&h, "SELECT COUNT(*) FROM mail_outbox").await, 0);
    sink.stop().await;
}

async fn a_confirmed_address_is_trusted_from_its_first_reply(backend: Backend) {
    let mut sink = SmtpSink::start(0).await;
    let h = harness(backend, &sink.url()).await;
    let site = moderated_site(&h).await;
    let token = h.moderator_token(&[site.id], &[Scope::Integrations]).await;
    set_pages(&h, &token);
    let mut comments = h.comments(&site.site_key).await;
    let mut wish = reply_by("story", "Tell me of answers.", "Jane Reader", READER);
    wish.notify_replies = true;
    common::submitted(&mut comments, wish).await;
    let trusted = |assessment: &proto::Assessment| {
        assessment
            .reasons
            .iter()
            .find(|r| r.rule == "history-trusted")
            .map(|r| r.reason.clone())
    };
    // Before the confirmation, a reader with no decided reply is not trusted.
    let (_, _, before) = common::assessed(
        &h,
        &site,
        reply_by("story", "A second thought.", "Jane Reader", READER),
    )
    .await;
    assert_eq!(trusted(&before), None);
    let confirm = sink.next("the confirmation").await;
    comments
        .confirm_email(proto::ConfirmEmailRequest {
            token: token_in(&confirm.text(), CONFIRM_PAGE),
        })
        .await
        .expect("confirm");
    let (_, _, after) = common::assessed(
        &h,
        &site,
        reply_by("story", "A third thought.", "Jane Reader", READER),
    )
    .await;
    assert_eq!(
        trusted(&after).as_deref(),
        Some("address confirmed by mail; 0 earlier replies approved")
    );
    sink.stop().await;
}

async fn a_key_rotation_keeps_every_address_kept_for_mail(backend: Backend) {
    use replyguard::{
        config::{Secret, SecretKeyArgs},
        privacy::{SecretKey, write_new_key_file},
        tools::rotation::{self, KeyArgs, RotateArgs},
    };
    let mut sink = SmtpSink::start(0).await;
    let mut h = harness(backend, &sink.url()).await;
    let site = moderated_site(&h).await;
    let token = h.moderator_token(&[site.id], &[Scope::Integrations]).await;
    set_pages(&h, &token);
    add_notice(&h, &site, MODERATOR, 0).await;
    let mut wish = reply_by("story", "Tell me of answers.", "Jane Reader", READER);
    wish.notify_replies = true;
    let (yours, _) = common::submitted(&mut h.comments(&site.site_key).await, wish).await;
    // The notice of the reader's held reply, and the confirmation, in either order.
    let mut link_token = String::new();
    for _ in 0..2 {
        let mail = sink.next("the notice or the confirmation").await;
        if mail.rcpt_tos() == [READER] {
            link_token = token_in(&mail.text(), CONFIRM_PAGE);
        }
    }
    h.comments(&site.site_key)
        .await
        .confirm_email(proto::ConfirmEmailRequest {
            token: link_token.clone(),
        })
        .await
        .expect("confirm");

    // Every replica stopped, then the rotation.
    let server = h.server.take().expect("running");
    server.shutdown().await.expect("clean shutdown");
    let dir = tempfile::tempdir().expect("dir");
    let new_key = SecretKey::generate();
    let new_file = dir.path().join("new.key");
    write_new_key_file(&new_file, &new_key).expect("the new key file");
    rotation::rotate(&RotateArgs {
        key: KeyArgs {
            database: h.settings.database.clone(),
            key: SecretKeyArgs {
                secret_key: Some(Secret::from(&h.key)),
                secret_key_file: None,
            },
        },
        new_key_file: Some(new_file),
    })
    .await
    .expect("rotates");
    h.restart_configured(|settings| settings.key.secret_key = Some(Secret::from(&new_key)))
        .await
        .expect("serves under the new key");

    // The moderator's notice opens under the new key.
    let mut moderation = h.moderation(&site.mod_token).await;
    common::approve(&mut moderation, std::slice::from_ref(&yours)).await;
    let held = answer(&h, &site, &yours, "An answer after the rotation.", ANSWERER).await;
    let notice = sink.next("the notice after the rotation").await;
    assert_eq!(notice.rcpt_tos(), [MODERATOR]);
    // The reader is still found by their reply's author and still confirmed, and their link
    // is the one they were sent.
    common::approve(&mut moderation, &[held]).await;
    let told = sink.next("the answer after the rotation").await;
    assert_eq!(told.rcpt_tos(), [READER]);
    assert_eq!(
        token_in(&told.text(), UNSUBSCRIBE_PAGE),
        link_token,
        "{}",
        told.text()
    );
    h.comments(&site.site_key)
        .await
        .unsubscribe(proto::UnsubscribeRequest { token: link_token })
        .await
        .expect("unsubscribe with the link sent before the rotation");
    sink.stop().await;
}

backend_tests!(
    needs = "needs an SMTP server (python3-aiosmtpd), as CI has: set REPLYGUARD_REQUIRE_POSTGRES=1 \
             with it and PostgreSQL at hand";
    flavor = "multi_thread";
    a_held_reply_is_mailed_to_the_moderator_with_what_decides_it,
    notices_are_added_listed_and_removed_with_replyctl,
    a_digest_gathers_held_replies_into_one_mail,
    mail_waits_while_the_smtp_server_is_down_and_goes_once_it_is_back,
    a_server_that_never_answers_does_not_slow_a_submission,
    notices_are_refused_when_the_server_sends_no_mail,
    a_reader_who_confirms_is_mailed_approved_answers_until_they_unsubscribe,
    an_answer_approved_as_it_comes_is_mailed_at_once,
    erasure_removes_an_address_kept_for_mail_and_export_lists_it_first,
    a_confirmed_address_is_trusted_from_its_first_reply,
    a_mail_queued_a_week_ago_is_dropped_from_the_outbox_sent_or_not,
    a_key_rotation_keeps_every_address_kept_for_mail,
);
