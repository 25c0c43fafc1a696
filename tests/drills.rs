//! Fault drills on the real binary: what a crash or a full disk does to what was acknowledged.

mod common;

use std::{
    collections::HashSet,
    process::Child,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use common::{Moderation, bearer, cluster::Cluster, process, proxy::Proxy, reply};
use replyguard::proto::{
    self, comments_client::CommentsClient, moderation_client::ModerationClient,
};
use sqlx::{Connection, PgConnection};
use tokio::sync::mpsc;
use tonic::transport::Endpoint;
use tonic_types::StatusExt;

/// Acknowledged replies wanted before the kill: enough that submissions are in flight in
/// every writer's group when it lands.
const BEFORE_THE_KILL: usize = 200;

async fn connect(endpoint: &str) -> tonic::transport::Channel {
    Endpoint::from_shared(endpoint.to_owned())
        .expect("an endpoint")
        .connect()
        .await
        .expect("the server answers")
}

fn kill_9(mut child: Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("the server is gone");
}

/// `kill -9` while eight callers submit at once: every reply the server acknowledged is there
/// when it starts again on the same SQLite file, and nothing half-written stops it starting.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_server_keeps_every_reply_it_acknowledged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = format!("sqlite://{}", dir.path().join("replyguard.db").display());
    kill_drill(&database, &[]).await;
}

/// The same on PostgreSQL, with a cluster of the drill's own.
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(postgres_tests),
    ignore = "the PostgreSQL half: set REPLYGUARD_REQUIRE_POSTGRES=1 with PostgreSQL at 127.0.0.1:5432"
)]
async fn a_killed_server_keeps_every_reply_it_acknowledged_on_postgres() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let key = process::key_file(dir.path());
    kill_drill(&cluster.url(), &["--secret-key-file", &key]).await;
}

async fn kill_drill(database: &str, args: &[&str]) {
    let (site_key, mod_token) = process::add_site(database, "news.example.com");
    // No per-token rate: the drill's callers are one site key at full speed, and it reads
    // back every reply at once.
    let rate = [
        ("REPLYGUARD_HOST_RATE", "0"),
        ("REPLYGUARD_MODERATOR_RATE", "0"),
    ];
    let (server, endpoint) = process::serve(database, args, &rate);

    let (acknowledged, mut heard) = mpsc::unbounded_channel();
    let channel = connect(&endpoint).await;
    let callers: Vec<_> = (0..8)
        .map(|caller| {
            let mut comments =
                CommentsClient::with_interceptor(channel.clone(), bearer(Some(&site_key)));
            let acknowledged = acknowledged.clone();
            tokio::spawn(async move {
                for n in 0.. {
                    let mut request = reply("story", &format!("Reply {n} of caller {caller}."));
                    request.idempotency_key = format!("{caller}-{n}");
                    // The first refusal is the kill (or a limit): the caller stops there.
                    let Ok(answer) = comments.submit_comment(request).await else {
                        return;
                    };
                    let id = answer.into_inner().comment.expect("the comment").id;
                    if acknowledged.send(id).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    drop(acknowledged);

    let mut ids = Vec::new();
    while ids.len() < BEFORE_THE_KILL {
        ids.push(heard.recv().await.expect("acknowledged replies"));
    }
    kill_9(server);
    for caller in callers {
        caller.await.expect("no caller panicked");
    }
    while let Ok(id) = heard.try_recv() {
        ids.push(id);
    }

    let (server, endpoint) = process::serve(database, args, &rate);
    let mut moderation =
        ModerationClient::with_interceptor(connect(&endpoint).await, bearer(Some(&mod_token)));
    assert_all_there(&mut moderation, &ids).await;
    assert!(ids.len() >= BEFORE_THE_KILL);
    kill_9(server);
}

/// Asks for each of `ids`: every one must be found.
async fn assert_all_there(moderation: &mut Moderation, ids: &[String]) {
    let mut lost = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        if let Err(status) = moderation
            .get_comment(proto::GetCommentRequest { id: id.clone() })
            .await
        {
            lost.push((n, id, status.code()));
        }
    }
    assert!(
        lost.is_empty(),
        "of {} acknowledged replies, these are lost: {lost:?}",
        ids.len()
    );
}

/// PostgreSQL crashes and comes back while eight callers submit, each retrying a refused reply
/// with its idempotency key as a host does: meanwhile they are told `UNAVAILABLE` and nothing
/// else, each key ends up as exactly one reply, every acknowledged reply is there, and the
/// server goes on without a restart, still holding its serving lock.
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(postgres_tests),
    ignore = "the PostgreSQL half: set REPLYGUARD_REQUIRE_POSTGRES=1 with PostgreSQL at 127.0.0.1:5432"
)]
async fn postgres_restarting_under_submissions_loses_and_doubles_nothing() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let key = process::key_file(dir.path());
    let args = ["--secret-key-file", key.as_str()];
    let database = cluster.url();
    let (site_key, mod_token) = process::add_site(&database, "news.example.com");
    let rate = [
        ("REPLYGUARD_HOST_RATE", "0"),
        ("REPLYGUARD_MODERATOR_RATE", "0"),
    ];
    let (server, endpoint) = process::serve(&database, &args, &rate);

    let channel = connect(&endpoint).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (acknowledged, mut heard) = mpsc::unbounded_channel();
    let callers: Vec<_> = (0..8)
        .map(|caller| {
            let mut comments =
                CommentsClient::with_interceptor(channel.clone(), bearer(Some(&site_key)));
            let (acknowledged, stop) = (acknowledged.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut refusals = 0_usize;
                for n in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        return refusals;
                    }
                    let mut request = reply("story", &format!("Reply {n} of caller {caller}."));
                    request.idempotency_key = format!("{caller}-{n}");
                    let id = loop {
                        match comments.submit_comment(request.clone()).await {
                            Ok(answer) => break answer.into_inner().comment.expect("comment").id,
                            Err(status) => {
                                assert_eq!(
                                    status.code(),
                                    tonic::Code::Unavailable,
                                    "a restart is told as UNAVAILABLE: {status:?}"
                                );
                                refusals += 1;
                                // A host's retry policy: a short pause, the same key.
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    };
                    let _ = acknowledged.send((request.idempotency_key, id));
                }
                refusals
            })
        })
        .collect();
    drop(acknowledged);

    let mut replies = Vec::new();
    while replies.len() < BEFORE_THE_KILL {
        replies.push(heard.recv().await.expect("acknowledged replies"));
    }
    cluster.crash();
    cluster.start_again();
    // As many again after the restart, through the same server.
    let after = replies.len() + BEFORE_THE_KILL;
    while replies.len() < after {
        replies.push(heard.recv().await.expect("acknowledged replies"));
    }
    stop.store(true, Ordering::SeqCst);
    let mut refusals = 0;
    for caller in callers {
        refusals += caller.await.expect("no caller panicked");
    }
    while let Ok(reply) = heard.try_recv() {
        replies.push(reply);
    }
    assert!(
        refusals > 0,
        "the restart was never seen: the drill tested nothing"
    );

    let mut moderation =
        ModerationClient::with_interceptor(connect(&endpoint).await, bearer(Some(&mod_token)));
    let ids: Vec<String> = replies.iter().map(|(_, id)| id.clone()).collect();
    assert_all_there(&mut moderation, &ids).await;
    let keys: HashSet<&str> = replies.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(keys.len(), replies.len(), "each key was acknowledged once");
    let mut db = PgConnection::connect(&database).await.expect("connect");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM comments")
        .fetch_one(&mut db)
        .await
        .expect("count");
    assert_eq!(
        stored as usize,
        replies.len(),
        "one reply per idempotency key, however often it was retried"
    );

    // The server marks the database as served again, on a new connection: a rotation is
    // refused.
    let held = async {
        loop {
            let holders: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_locks \
                 WHERE locktype = 'advisory' AND mode = 'ShareLock' AND granted",
            )
            .fetch_one(&mut db)
            .await
            .expect("read the locks");
            if holders > 0 {
                break;
            }
            common::poll_pause().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("the server takes its serving lock again after the restart");
    let new_dir = tempfile::tempdir().expect("temp dir");
    let new_key = process::key_file(new_dir.path());
    let rotation = std::process::Command::new(env!("CARGO_BIN_EXE_replyguard"))
        .args(["key", "rotate", "--database", &database])
        .args(args)
        .arg("--new-key-file")
        .arg(&new_key)
        .output()
        .expect("key rotate runs");
    assert!(!rotation.status.success(), "{rotation:?}");
    assert!(
        String::from_utf8_lossy(&rotation.stderr).contains("a replica is serving this database"),
        "{rotation:?}"
    );
    kill_9(server);
}

/// A tmpfs of `size` mounted on `dir` for as long as this lives: a disk that really fills.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, size: &str) -> SmallDisk {
        let mounted = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("mount runs");
        assert!(
            mounted.status.success(),
            "this drill mounts a small tmpfs and needs root (CI runs as root): {}",
            String::from_utf8_lossy(&mounted.stderr)
        );
        SmallDisk(dir.to_owned())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a server still holding files there must not keep the mount.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fills what is left of the disk holding `path`, then frees `leave` bytes of it.
fn fill_disk(path: &std::path::Path, leave: u64) -> std::fs::File {
    use std::io::Write;
    let mut ballast = std::fs::File::create(path).expect("ballast");
    let chunk = vec![0x5a_u8; 1 << 20];
    while ballast.write_all(&chunk).is_ok() {}
    let _ = ballast.flush();
    let len = ballast.metadata().expect("ballast size").len();
    ballast
        .set_len(len.saturating_sub(leave))
        .expect("free some");
    ballast
}

/// A long reply, so that a few hundred fill a megabyte.
fn long_reply(n: usize) -> proto::SubmitCommentRequest {
    let sentence = format!("Reply {n} says the council's budget vote deserves a closer look. ");
    let mut request = reply("story", &sentence.repeat(30));
    request.idempotency_key = format!("disk-{n}");
    request
}

/// SQLite on a full disk: writes fail with `UNAVAILABLE` and a message that says why, reads go
/// on, writes resume once space returns, and every acknowledged reply is there after a crash.
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(postgres_tests),
    ignore = "mounts a tmpfs, as root: runs with the rest of CI's environment, when built with \
              REPLYGUARD_REQUIRE_POSTGRES=1"
)]
async fn a_full_disk_refuses_writes_clearly_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let disk = SmallDisk::mount(dir.path(), "24m");
    let database = format!("sqlite://{}", dir.path().join("replyguard.db").display());
    let (site_key, mod_token) = process::add_site(&database, "news.example.com");
    let rate = [
        ("REPLYGUARD_HOST_RATE", "0"),
        ("REPLYGUARD_MODERATOR_RATE", "0"),
    ];
    let (server, endpoint) = process::serve(&database, &[], &rate);
    let channel = connect(&endpoint).await;
    let mut comments = CommentsClient::with_interceptor(channel.clone(), bearer(Some(&site_key)));
    let mut moderation = ModerationClient::with_interceptor(channel, bearer(Some(&mod_token)));
    let ballast_path = dir.path().join("ballast");
    let ballast = fill_disk(&ballast_path, 2 << 20);

    let mut acknowledged = Vec::new();
    let refusal = loop {
        assert!(acknowledged.len() < 20_000, "2 MB never filled up");
        match comments
            .submit_comment(long_reply(acknowledged.len()))
            .await
        {
            Ok(answer) => acknowledged.push(answer.into_inner().comment.expect("comment").id),
            Err(status) => break status,
        }
    };
    assert_eq!(refusal.code(), tonic::Code::Unavailable, "{refusal:?}");
    assert!(
        refusal.message().contains("out of disk space"),
        "{refusal:?}"
    );
    let details = refusal.get_error_details();
    assert_eq!(
        details.error_info().map(|info| info.reason.as_str()),
        Some("DISK_FULL"),
        "{refusal:?}"
    );
    assert!(!acknowledged.is_empty());
    // Reads go on while the disk is full, and a second write is refused the same way.
    moderation
        .get_comment(proto::GetCommentRequest {
            id: acknowledged[0].clone(),
        })
        .await
        .expect("reads go on");
    let again = comments
        .submit_comment(long_reply(acknowledged.len()))
        .await
        .expect_err("still full");
    assert_eq!(again.code(), tonic::Code::Unavailable, "{again:?}");
    // A moderator's decision is a write too: refused whole, per reply or as a call.
    let decision = moderation
        .moderate(proto::ModerateRequest {
            ids: vec![acknowledged[0].clone()],
            action: proto::ModerationAction::Reject.into(),
            ..Default::default()
        })
        .await;
    let refused = match decision {
        Err(status) => status.code(),
        Ok(answer) => tonic::Code::from(answer.into_inner().results[0].code),
    };
    assert_eq!(refused, tonic::Code::Unavailable);

    // Space returns: writes resume, with no restart.
    drop(ballast);
    std::fs::remove_file(&ballast_path).expect("free the disk");
    let resumed = comments
        .submit_comment(long_reply(acknowledged.len()))
        .await
        .expect("writes resume once space returns");
    acknowledged.push(resumed.into_inner().comment.expect("comment").id);
    common::decide(
        &mut moderation,
        proto::ModerationAction::Reject,
        &acknowledged[..1],
    )
    .await;

    kill_9(server);
    let (server, endpoint) = process::serve(&database, &[], &rate);
    moderation =
        ModerationClient::with_interceptor(connect(&endpoint).await, bearer(Some(&mod_token)));
    assert_all_there(&mut moderation, &acknowledged).await;
    let rejected = moderation
        .get_comment(proto::GetCommentRequest {
            id: acknowledged[0].clone(),
        })
        .await
        .expect("the first reply")
        .into_inner();
    assert_eq!(
        rejected
            .comment
            .and_then(|item| item.comment)
            .map(|c| c.status()),
        Some(proto::CommentStatus::Rejected),
        "the decision made once space returned is kept"
    );
    kill_9(server);
    drop(disk);
}

/// A database that answers late (50 ms each way, behind a proxy): calls end at their deadline,
/// and the work of the calls that gave up goes with them, so a call made next is not queued
/// behind it. The 128 abandoned submissions would hold the pool of four for most of a minute if
/// they ran on; the next call gets 12 s (the server's limit), of which it needs about 3 here.
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(postgres_tests),
    ignore = "the PostgreSQL half: set REPLYGUARD_REQUIRE_POSTGRES=1 with PostgreSQL at 127.0.0.1:5432"
)]
async fn a_slow_database_ends_calls_at_their_deadline_and_nothing_piles_up() {
    let cluster = Cluster::start();
    let proxy = Proxy::start(cluster.addr()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let key = process::key_file(dir.path());
    let (site_key, _) = process::add_site(&cluster.url(), "news.example.com");
    let mut through = url::Url::parse(&cluster.url()).expect("url");
    through.set_port(Some(proxy.addr().port())).expect("port");
    let env = [
        ("REPLYGUARD_HOST_RATE", "0"),
        ("REPLYGUARD_DATABASE_POOL_SIZE", "4"),
        ("REPLYGUARD_REQUEST_TIMEOUT_SECONDS", "12"),
    ];
    let (server, endpoint) = process::serve(through.as_str(), &["--secret-key-file", &key], &env);
    let comments =
        CommentsClient::with_interceptor(connect(&endpoint).await, bearer(Some(&site_key)));
    let submit = |n: usize, deadline: Duration| {
        let mut comments = comments.clone();
        async move {
            let mut request = tonic::Request::new(reply("story", &format!("Reply number {n}.")));
            request.set_timeout(deadline);
            comments.submit_comment(request).await
        }
    };
    submit(0, Duration::from_secs(15))
        .await
        .expect("a call while the database answers at once");

    proxy.slow_down(Duration::from_millis(50));
    let abandoned: Vec<_> = (1..=128)
        .map(|n| tokio::spawn(submit(n, Duration::from_millis(50))))
        .collect();
    for call in abandoned {
        let status = call
            .await
            .expect("no panic")
            .expect_err("a call cannot finish in 50 ms on this database");
        // tonic's client ends a call at its deadline itself, as `CANCELLED`; the server sees
        // the stream reset and drops the call's work.
        assert!(
            matches!(
                status.code(),
                tonic::Code::Cancelled | tonic::Code::DeadlineExceeded
            ),
            "{status:?}"
        );
    }
    // On a connection of its own: 128 streams reset at once may trip HTTP/2's guard against
    // rapid resets, whose GOAWAY ends the old connection, as a client expects it might.
    let mut fresh =
        CommentsClient::with_interceptor(connect(&endpoint).await, bearer(Some(&site_key)));
    let mut next = tonic::Request::new(reply("story", "Reply number 129."));
    next.set_timeout(Duration::from_secs(30));
    fresh
        .submit_comment(next)
        .await
        .expect("the next call is not queued behind the abandoned ones");

    // A caller that sets no deadline gets the server's own (REPLYGUARD_REQUEST_TIMEOUT_SECONDS),
    // here on a database so slow that a submission would take most of a minute.
    proxy.slow_down(Duration::from_secs(2));
    let status = fresh
        .submit_comment(reply("story", "A reply with no deadline of its own."))
        .await
        .expect_err("the server's deadline ends it");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    kill_9(server);
}
