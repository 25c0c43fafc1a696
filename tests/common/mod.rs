//! The test harness: a real server on port 0 over a real database of its own,
//! real tonic clients, and the real `replyctl` binary.

#![allow(dead_code)]

use std::{path::PathBuf, process::Output, sync::Arc};

use replyguard::{
    config::{Secret, ServeSettings},
    ids::SiteId,
    operator::issue,
    privacy::SecretKey,
    proto::{self, comments_client::CommentsClient, moderation_client::ModerationClient},
    server::{self, RunningServer},
    spam::Policy,
    store::{self, Role, Store},
};
use tempfile::TempDir;
use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

/// Sends `authorization: Bearer <token>` with every call.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub type Comments = CommentsClient<InterceptedService<Channel, Bearer>>;
pub type Moderation = ModerationClient<InterceptedService<Channel, Bearer>>;

/// One site with its credentials.
#[derive(Clone)]
pub struct TestSite {
    pub id: SiteId,
    pub name: String,
    pub site_key: String,
    pub mod_token: String,
}

/// A server over a database of its own, torn down when dropped.
pub struct Harness {
    pub server: Option<RunningServer>,
    pub store: Arc<dyn Store>,
    pub settings: ServeSettings,
    pub dir: TempDir,
    pub key: SecretKey,
}

impl Harness {
    /// A server on a fresh SQLite file.
    pub async fn sqlite() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("replyguard.db").display());
        Harness::on(dir, url).await
    }

    async fn on(dir: TempDir, url: String) -> Harness {
        let key = SecretKey::generate();
        let mut settings = ServeSettings::new("127.0.0.1:0".parse().expect("addr"), url);
        settings.secret_key = Some(Secret::from(&key));
        let server = server::start(&settings).await.expect("server starts");
        let store = store::open(&settings.database.url)
            .await
            .expect("store opens");
        Harness {
            server: Some(server),
            store,
            settings,
            dir,
            key,
        }
    }

    pub fn endpoint(&self) -> String {
        self.server.as_ref().expect("running").endpoint()
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("replyguard.db")
    }

    /// Stops the server and starts a new one on the same database.
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
        let mut settings = self.settings.clone();
        settings.listen = "127.0.0.1:0".parse().expect("addr");
        self.server = Some(server::start(&settings).await.expect("server restarts"));
    }

    /// Creates a site with a site key and a moderator token.
    pub async fn site(&self, name: &str) -> TestSite {
        self.site_with(name, Policy::default()).await
    }

    pub async fn site_with(&self, name: &str, policy: Policy) -> TestSite {
        let site = self.store.create_site(name, &policy).await.expect("site");
        let (site_key, host) = issue(Role::Host, vec![site.id]);
        let (mod_token, moderator) = issue(Role::Moderator, vec![site.id]);
        self.store.insert_token(&host).await.expect("host token");
        self.store
            .insert_token(&moderator)
            .await
            .expect("mod token");
        TestSite {
            id: site.id,
            name: name.to_owned(),
            site_key,
            mod_token,
        }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(self.endpoint())
            .expect("endpoint")
            .connect()
            .await
            .expect("connects")
    }

    pub async fn comments(&self, token: &str) -> Comments {
        CommentsClient::with_interceptor(self.channel().await, bearer(Some(token)))
    }

    pub async fn comments_without_token(&self) -> Comments {
        CommentsClient::with_interceptor(self.channel().await, bearer(None))
    }

    pub async fn moderation(&self, token: &str) -> Moderation {
        ModerationClient::with_interceptor(self.channel().await, bearer(Some(token)))
    }

    /// Runs the real `replyctl` binary against this server.
    pub fn replyctl(&self, token: &str, args: &[&str]) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_replyctl"))
            .env("REPLYGUARD_ENDPOINT", self.endpoint())
            .env("REPLYGUARD_TOKEN", token)
            .args(args)
            .output()
            .expect("replyctl runs")
    }
}

fn bearer(token: Option<&str>) -> Bearer {
    Bearer(token.map(|t| format!("Bearer {t}").parse().expect("ascii token")))
}

/// A valid reply; tests change what they need.
pub fn reply(article: &str, body: &str) -> proto::SubmitCommentRequest {
    reply_by(article, body, "Jane Reader", "jane.reader@example.com")
}

/// A valid reply by a given author.
pub fn reply_by(article: &str, body: &str, name: &str, email: &str) -> proto::SubmitCommentRequest {
    proto::SubmitCommentRequest {
        article: article.to_owned(),
        author: Some(proto::Author {
            name: name.to_owned(),
            email: email.to_owned(),
            website: String::new(),
        }),
        body: body.to_owned(),
        client: Some(proto::ClientInfo {
            ip: "203.0.113.7".to_owned(),
            user_agent: "Mozilla/5.0".to_owned(),
            referrer: String::new(),
        }),
        ..Default::default()
    }
}

/// The `google.rpc.BadRequest` fields of an error, in order.
pub fn bad_fields(status: &Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|br| br.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// Decides on comments through the Moderation API; every id must succeed.
pub async fn decide(moderation: &mut Moderation, action: proto::ModerationAction, ids: &[String]) {
    let response = moderation
        .moderate(proto::ModerateRequest {
            ids: ids.to_vec(),
            action: action.into(),
            ..Default::default()
        })
        .await
        .expect("moderate")
        .into_inner();
    for result in response.results {
        assert_eq!(
            result.code, 0,
            "{action:?} {}: {}",
            result.id, result.message
        );
    }
}

/// Approves comments through the Moderation API.
pub async fn approve(moderation: &mut Moderation, ids: &[String]) {
    decide(moderation, proto::ModerationAction::Approve, ids).await;
}
