//! Fault drills on the real binary: what a crash does to what was acknowledged.

mod common;

use std::{process::Child, time::Duration};

use common::{bearer, process, reply};
use replyguard::proto::{
    self, comments_client::CommentsClient, moderation_client::ModerationClient,
};
use tokio::sync::mpsc;
use tonic::transport::Endpoint;

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
    let (site_key, mod_token) = process::add_site(&database, "news.example.com");
    // No per-token rate: the drill's callers are one site key at full speed.
    let rate = [("REPLYGUARD_HOST_RATE", "0")];
    let (server, endpoint) = process::serve(&database, &[], &rate);

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

    let (server, endpoint) = process::serve(&database, &[], &rate);
    let mut moderation =
        ModerationClient::with_interceptor(connect(&endpoint).await, bearer(Some(&mod_token)));
    for id in &ids {
        let found = tokio::time::timeout(
            Duration::from_secs(10),
            moderation.get_comment(proto::GetCommentRequest { id: id.clone() }),
        )
        .await
        .expect("an answer")
        .unwrap_or_else(|status| panic!("acknowledged reply {id} is lost: {status:?}"));
        assert_eq!(
            found
                .into_inner()
                .comment
                .expect("the item")
                .comment
                .expect("the comment")
                .id,
            *id
        );
    }
    assert!(ids.len() >= BEFORE_THE_KILL);
    kill_9(server);
}
