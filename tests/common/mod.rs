//! The test harness: a real server on port 0 over a real database of its own,
//! real tonic clients, and the real `replyctl` binary.
//!
//! Every test runs on both backends: [`backend_tests!`] turns each
//! `async fn name(backend: Backend)` into `sqlite::name` and `postgres::name`.
//! A PostgreSQL test gets a schema of its own in the `test` database and
//! drops it afterwards.
//!
//! The PostgreSQL half runs only when the tests were built with
//! `REPLYGUARD_REQUIRE_POSTGRES=1` (as in CI), which sets the cfg
//! `postgres_tests` (`build.rs`); without it, every PostgreSQL test is marked
//! `#[ignore]` with the reason, so the test runner's summary counts it as
//! ignored, never as passed. Once required, a PostgreSQL that cannot be
//! reached fails each of those tests with the reason.

#![allow(dead_code)]

pub mod cluster;
pub mod process;
pub mod proxy;
pub mod watcher;

use std::{path::PathBuf, process::Output, str::FromStr, sync::Arc, time::Duration};

use replyguard::{
    config::{Secret, ServeSettings},
    domain::Scope,
    ids::SiteId,
    privacy::SecretKey,
    proto::{self, comments_client::CommentsClient, moderation_client::ModerationClient},
    server::{self, RunningServer, StartError},
    spam::Policy,
    store::{self, Role, Store},
    tools::cli::{issue, issue_with_scopes},
};
use sqlx::{AssertSqlSafe, Connection, PgConnection, SqliteConnection, postgres::PgConnectOptions};
use tempfile::TempDir;
use tokio::sync::OnceCell;
use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};
use uuid::Uuid;

/// Where the PostgreSQL tests connect unless `REPLYGUARD_TEST_POSTGRES_URL`
/// names another database; each test makes its own schema there.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn name(backend: Backend)` once per backend, as
/// `sqlite::name` and `postgres::name`. Tests that block on a child process
/// need a runtime with spare threads: `backend_tests!(flavor = "multi_thread"; a, b)`.
// Not every test binary that shares this module runs on both backends.
#[allow(unused_macros)]
macro_rules! backend_tests {
    // Tests that need a program CI installs (an SMTP server, a terminal multiplexer): both
    // halves run where the PostgreSQL halves and the drills do, and are listed as ignored, with
    // `$needs` as the reason, by a fresh machine's `cargo test`.
    (needs = $needs:literal; flavor = $flavor:tt; $($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = $flavor)]
                #[cfg_attr(not(postgres_tests), ignore = $needs)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test(flavor = $flavor)]
                #[cfg_attr(not(postgres_tests), ignore = $needs)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await;
                }
            )+
        }
    };
    (flavor = $flavor:tt; $($name:ident),+ $(,)?) => {
        $crate::common::backend_tests!(@expand (flavor = $flavor) $($name),+);
    };
    ($($name:ident),+ $(,)?) => {
        $crate::common::backend_tests!(@expand () $($name),+);
    };
    (@expand $runtime:tt $($name:ident),+) => {
        mod sqlite {
            $(
                #[tokio::test $runtime]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test $runtime]
                #[cfg_attr(
                    not(postgres_tests),
                    ignore = "the PostgreSQL half: set REPLYGUARD_REQUIRE_POSTGRES=1 with PostgreSQL at 127.0.0.1:5432"
                )]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await;
                }
            )+
        }
    };
}
#[allow(unused_imports)]
pub(crate) use backend_tests;

/// The PostgreSQL database the tests make their schemas in.
pub fn postgres_admin_url() -> String {
    std::env::var("REPLYGUARD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// Fails the calling test, with the reason, when PostgreSQL cannot be reached: a test that
/// needs it runs only when it is required (`postgres_tests`), and then must not pass without it.
pub async fn require_postgres() {
    // One probe per test binary: when PostgreSQL is missing, every test
    // would otherwise wait for its own connection attempt to fail.
    static PROBE: OnceCell<Result<(), String>> = OnceCell::const_new();
    let Err(error) = PROBE.get_or_init(probe_postgres).await else {
        return;
    };
    let url = postgres_admin_url();
    let place = PgConnectOptions::from_str(&url)
        .map(|o| format!("{}:{}", o.get_host(), o.get_port()))
        .unwrap_or(url);
    panic!(
        "PostgreSQL at {place} is not reachable ({error}), and the tests were built with \
         REPLYGUARD_REQUIRE_POSTGRES=1, which runs their PostgreSQL half"
    );
}

async fn probe_postgres() -> Result<(), String> {
    let connect = async {
        let mut conn = admin_connection().await?;
        sqlx::query("SELECT 1").execute(&mut conn).await?;
        conn.close().await
    };
    match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err("no answer within 5 s".to_owned()),
    }
}

async fn admin_connection() -> Result<PgConnection, sqlx::Error> {
    PgConnection::connect(&postgres_admin_url()).await
}

/// A database of a test's own: a SQLite file in a temporary directory, or a
/// schema in PostgreSQL that is dropped with it.
pub struct TestDatabase {
    pub backend: Backend,
    /// What `REPLYGUARD_DATABASE_URL` would be.
    pub url: String,
    /// A temporary directory; the SQLite file and its key live in it.
    pub dir: TempDir,
    schema: Option<String>,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> TestDatabase {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => TestDatabase {
                backend,
                url: format!("sqlite://{}", dir.path().join("replyguard.db").display()),
                dir,
                schema: None,
            },
            Backend::Postgres => {
                require_postgres().await;
                let schema = format!("rg_{}", Uuid::now_v7().simple());
                let mut admin = admin_connection().await.expect("PostgreSQL connects");
                sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .execute(&mut admin)
                    .await
                    .expect("create the test schema");
                let _ = admin.close().await;
                TestDatabase {
                    backend,
                    url: schema_url(&schema),
                    dir,
                    schema: Some(schema),
                }
            }
        }
    }

    /// The SQLite file; only SQLite tests have one.
    pub fn sqlite_path(&self) -> PathBuf {
        assert_eq!(self.backend, Backend::Sqlite, "only SQLite keeps a file");
        self.dir.path().join("replyguard.db")
    }

    /// Ends every replica's `LISTEN` connection on this (PostgreSQL) database: they stop
    /// hearing each other until they listen again.
    pub async fn drop_notifications(&self) {
        self.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = current_schema() AND query LIKE 'LISTEN %' \
             AND pid <> pg_backend_pid()",
        )
        .await;
    }

    /// Runs one statement on the database behind the store's back.
    pub async fn execute(&self, sql: &str) {
        let statement = AssertSqlSafe(sql.to_owned());
        let done = match self.backend {
            Backend::Sqlite => match SqliteConnection::connect(&self.url).await {
                Ok(mut conn) => sqlx::query(statement).execute(&mut conn).await.map(drop),
                Err(err) => Err(err),
            },
            Backend::Postgres => match PgConnection::connect(&self.url).await {
                Ok(mut conn) => sqlx::query(statement).execute(&mut conn).await.map(drop),
                Err(err) => Err(err),
            },
        };
        if let Err(err) = done {
            panic!("{sql}: {err}");
        }
    }

    /// The audit rows of one action that name no comment, oldest first, read
    /// behind the store's back: `(site, actor, note)`.
    pub async fn site_audit(&self, action: &str) -> Vec<(Uuid, String, Option<String>)> {
        assert!(
            action
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-' || b == b'_'),
            "an action is a plain word"
        );
        let sql = format!(
            "SELECT site_id, actor, note FROM audit_log \
             WHERE action = '{action}' AND comment_id IS NULL ORDER BY id"
        );
        let rows = match self.backend {
            Backend::Sqlite => match SqliteConnection::connect(&self.url).await {
                Ok(mut conn) => {
                    sqlx::query_as(AssertSqlSafe(sql.clone()))
                        .fetch_all(&mut conn)
                        .await
                }
                Err(err) => Err(err),
            },
            Backend::Postgres => match PgConnection::connect(&self.url).await {
                Ok(mut conn) => {
                    sqlx::query_as(AssertSqlSafe(sql.clone()))
                        .fetch_all(&mut conn)
                        .await
                }
                Err(err) => Err(err),
            },
        };
        rows.unwrap_or_else(|err| panic!("{sql}: {err}"))
    }

    /// Every row of every table, as `table: row` lines in a stable order, read behind the
    /// store's back: what a command that must change nothing is compared by.
    pub async fn rows(&self) -> Vec<String> {
        let mut rows = Vec::new();
        match self.backend {
            Backend::Sqlite => {
                let mut conn = SqliteConnection::connect(&self.url).await.expect("connect");
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name",
                )
                .fetch_all(&mut conn)
                .await
                .expect("list the tables");
                for table in tables {
                    let columns: Vec<String> =
                        sqlx::query_scalar("SELECT name FROM pragma_table_info($1) ORDER BY cid")
                            .bind(&table)
                            .fetch_all(&mut conn)
                            .await
                            .expect("list the columns");
                    let row = columns
                        .iter()
                        .map(|column| format!("quote(\"{column}\")"))
                        .collect::<Vec<_>>()
                        .join(" || ',' || ");
                    let sql = format!("SELECT {row} FROM \"{table}\" ORDER BY 1");
                    let values: Vec<String> = sqlx::query_scalar(AssertSqlSafe(sql))
                        .fetch_all(&mut conn)
                        .await
                        .expect("read a table");
                    rows.extend(values.into_iter().map(|row| format!("{table}: {row}")));
                }
            }
            Backend::Postgres => {
                let schema = self.schema.as_deref().expect("a PostgreSQL database");
                let mut conn = PgConnection::connect(&self.url).await.expect("connect");
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = $1 ORDER BY table_name",
                )
                .bind(schema)
                .fetch_all(&mut conn)
                .await
                .expect("list the tables");
                for table in tables {
                    let sql = format!("SELECT t::text FROM \"{table}\" AS t ORDER BY 1");
                    let values: Vec<String> = sqlx::query_scalar(AssertSqlSafe(sql))
                        .fetch_all(&mut conn)
                        .await
                        .expect("read a table");
                    rows.extend(values.into_iter().map(|row| format!("{table}: {row}")));
                }
            }
        }
        rows
    }

    /// Fails, naming the rows added and removed, unless the database holds exactly the rows
    /// of `before` (from [`TestDatabase::rows`]).
    pub async fn assert_unchanged(&self, before: &[String]) {
        let after = self.rows().await;
        let added: Vec<&String> = after.iter().filter(|row| !before.contains(row)).collect();
        let removed: Vec<&String> = before.iter().filter(|row| !after.contains(row)).collect();
        assert!(
            added.is_empty() && removed.is_empty(),
            "the database changed: added {added:#?}, removed {removed:#?}"
        );
    }

    /// PostgreSQL: every value of every column of every table in the
    /// schema, as text; `bytea` values twice, as their bytes and in hex, so
    /// that a search finds a plain or hashed secret wherever it is stored.
    pub async fn postgres_dump(&self) -> String {
        let schema = self.schema.as_deref().expect("a PostgreSQL database");
        let mut conn = PgConnection::connect(&self.url).await.expect("connect");
        let columns: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text, data_type::text \
             FROM information_schema.columns WHERE table_schema = $1 \
             ORDER BY table_name, ordinal_position",
        )
        .bind(schema)
        .fetch_all(&mut conn)
        .await
        .expect("list the columns");
        assert!(!columns.is_empty(), "the schema has tables");
        let mut dump = String::new();
        for (table, column, data_type) in columns {
            let bytea = data_type == "bytea";
            let value = if bytea {
                format!("\"{column}\"")
            } else {
                format!("convert_to(\"{column}\"::text, 'UTF8')")
            };
            let values: Vec<Option<Vec<u8>>> =
                sqlx::query_scalar(AssertSqlSafe(format!("SELECT {value} FROM \"{table}\"")))
                    .fetch_all(&mut conn)
                    .await
                    .expect("read a column");
            for bytes in values.into_iter().flatten() {
                dump.push_str(&String::from_utf8_lossy(&bytes));
                dump.push('\n');
                if bytea {
                    dump.push_str(&hex::encode(&bytes));
                    dump.push('\n');
                }
            }
        }
        dump
    }
}

/// The admin URL with `search_path` set to `schema`, so that migrations
/// and tables land there; `application_name` lets the cleanup find its
/// sessions.
fn schema_url(schema: &str) -> String {
    let mut url = url::Url::parse(&postgres_admin_url()).expect("a PostgreSQL URL");
    url.query_pairs_mut()
        .append_pair("options", &format!("-c search_path={schema}"))
        .append_pair("application_name", schema);
    url.into()
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(schema) = self.schema.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot block on its own
        // futures; a short-lived runtime on another thread can.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| err.to_string())?;
            runtime.block_on(drop_schema(&schema))
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("could not drop a test schema: {err}"),
            Err(_) => eprintln!("could not drop a test schema: the cleanup panicked"),
        }
    }
}

async fn drop_schema(schema: &str) -> Result<(), String> {
    let mut admin = admin_connection().await.map_err(|err| err.to_string())?;
    // The server under test may still hold sessions (its runtime is paused
    // while this runs); end them so that none keeps a lock the drop needs.
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(schema)
    .execute(&mut admin)
    .await
    .map_err(|err| err.to_string())?;
    sqlx::query(AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .execute(&mut admin)
    .await
    .map_err(|err| format!("{schema}: {err}"))?;
    let _ = admin.close().await;
    Ok(())
}

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

/// Every item of the `status` queue, page by page (`page_size` a page).
pub async fn whole_queue(
    moderation: &mut Moderation,
    status: proto::CommentStatus,
    page_size: u32,
) -> Vec<proto::QueueItem> {
    let mut items = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = moderation
            .list_queue(proto::ListQueueRequest {
                status: status.into(),
                page_size,
                page_token,
                ..Default::default()
            })
            .await
            .expect("list the queue")
            .into_inner();
        items.extend(page.items);
        if page.next_page_token.is_empty() {
            return items;
        }
        page_token = page.next_page_token;
    }
}

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
    pub key: SecretKey,
    /// Last, so that it is dropped after the server and store that use it.
    pub db: TestDatabase,
}

impl Harness {
    /// A server on a fresh database of `backend`.
    pub async fn new(backend: Backend) -> Harness {
        Harness::configured(backend, |_| {}).await
    }

    /// A server on a fresh database of `backend`, with settings of its own.
    pub async fn configured(
        backend: Backend,
        configure: impl FnOnce(&mut ServeSettings),
    ) -> Harness {
        let db = TestDatabase::new(backend).await;
        let key = SecretKey::generate();
        let mut settings = ServeSettings::new("127.0.0.1:0".parse().expect("addr"), db.url.clone());
        settings.key.secret_key = Some(Secret::from(&key));
        configure(&mut settings);
        let server = server::start(&settings).await.expect("server starts");
        let store = store::open(&settings.database.url)
            .await
            .expect("store opens");
        Harness {
            server: Some(server),
            store,
            settings,
            key,
            db,
        }
    }

    pub fn endpoint(&self) -> String {
        self.server.as_ref().expect("running").endpoint()
    }

    /// The SQLite file; only SQLite harnesses have one.
    pub fn db_path(&self) -> PathBuf {
        self.db.sqlite_path()
    }

    /// Stops the server and starts a new one on the same database.
    pub async fn restart(&mut self) {
        self.restart_configured(|_| {})
            .await
            .expect("server restarts");
    }

    /// Stops the server and starts a new one on the same database, with the harness's
    /// settings as `configure` changes them.
    pub async fn restart_configured(
        &mut self,
        configure: impl FnOnce(&mut ServeSettings),
    ) -> Result<(), StartError> {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
        let mut settings = self.settings.clone();
        settings.listen = "127.0.0.1:0".parse().expect("addr");
        configure(&mut settings);
        // A child process that another test of this binary is starting holds a copy of every
        // open file, the SQLite lock file too, from its fork until its exec: the lock this
        // process let go of may stay taken for that moment.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let server = loop {
            match server::start(&settings).await {
                Err(StartError::InUse { .. }) if tokio::time::Instant::now() < deadline => {
                    poll_pause().await;
                }
                started => break started?,
            }
        };
        self.server = Some(server);
        Ok(())
    }

    /// Starts another server on the same database and key: a replica.
    pub async fn replica(&self) -> RunningServer {
        let mut settings = self.settings.clone();
        settings.listen = "127.0.0.1:0".parse().expect("addr");
        server::start(&settings).await.expect("replica starts")
    }

    /// Creates a site with a site key and a moderator token.
    pub async fn site(&self, name: &str) -> TestSite {
        self.site_with(name, Policy::default()).await
    }

    /// Creates a site whose authors and addresses may reply as often as they like, for tests
    /// that send several replies from one of them.
    pub async fn site_without_flood_limit(&self, name: &str) -> TestSite {
        let policy = Policy {
            flood_interval_seconds: 0,
            ..Policy::default()
        };
        self.site_with(name, policy).await
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

    /// A moderator token for `sites` that carries exactly `scopes`.
    pub async fn moderator_token(&self, sites: &[SiteId], scopes: &[Scope]) -> String {
        let (token, record) = issue_with_scopes(Role::Moderator, sites.to_vec(), scopes.to_vec());
        self.store
            .insert_token(&record)
            .await
            .expect("moderator token");
        token
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(self.endpoint())
            .expect("endpoint")
            .connect()
            .await
            .expect("connects")
    }

    /// A `Comments` client of any server, such as a replica.
    pub async fn comments_at(server: &RunningServer, token: &str) -> Comments {
        let channel = Channel::from_shared(server.endpoint())
            .expect("endpoint")
            .connect()
            .await
            .expect("connects");
        CommentsClient::with_interceptor(channel, bearer(Some(token)))
    }

    /// A `Moderation` client of any server, such as a replica.
    pub async fn moderation_at(server: &RunningServer, token: &str) -> Moderation {
        let channel = Channel::from_shared(server.endpoint())
            .expect("endpoint")
            .connect()
            .await
            .expect("connects");
        ModerationClient::with_interceptor(channel, bearer(Some(token)))
    }

    pub async fn comments(&self, token: &str) -> Comments {
        CommentsClient::with_interceptor(self.channel().await, bearer(Some(token)))
    }

    pub async fn comments_without_token(&self) -> Comments {
        CommentsClient::with_interceptor(self.channel().await, bearer(None))
    }

    /// A `WatchQueue` stream of the one site `token` moderates.
    pub async fn watch(&self, token: &str) -> tonic::Streaming<proto::WatchQueueResponse> {
        self.moderation(token)
            .await
            .watch_queue(proto::WatchQueueRequest::default())
            .await
            .expect("watch the queue")
            .into_inner()
    }

    pub async fn moderation(&self, token: &str) -> Moderation {
        ModerationClient::with_interceptor(self.channel().await, bearer(Some(token)))
    }

    /// Runs the real `replyctl` binary against this server, its tables as wide as their
    /// content whatever `COLUMNS` the tests run with.
    pub fn replyctl(&self, token: &str, args: &[&str]) -> Output {
        self.replyctl_with(token, &[], args)
    }

    /// Runs the real `replyctl` binary against this server with `env` set.
    pub fn replyctl_with(&self, token: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_replyctl"))
            .env("REPLYGUARD_ENDPOINT", self.endpoint())
            .env("REPLYGUARD_TOKEN", token)
            .env_remove("COLUMNS")
            .envs(env.iter().copied())
            .args(args)
            .output()
            .expect("replyctl runs")
    }
}

pub fn bearer(token: Option<&str>) -> Bearer {
    Bearer(token.map(|t| format!("Bearer {t}").parse().expect("ascii token")))
}

/// A valid reply by "Jane Reader"; each call comes from an address and an
/// email of its own (`jane.reader+N@example.com`), so that only tests about
/// flooding or an author's history meet those rules.
pub fn reply(article: &str, body: &str) -> proto::SubmitCommentRequest {
    let n = next_reader();
    reply_by(
        article,
        body,
        "Jane Reader",
        &format!("jane.reader+{n}@example.com"),
    )
}

/// Submits a reply that must be accepted; returns the stored comment's id and its status.
pub async fn submitted(
    comments: &mut Comments,
    request: proto::SubmitCommentRequest,
) -> (String, proto::CommentStatus) {
    let response = comments
        .submit_comment(request)
        .await
        .expect("submit")
        .into_inner();
    let status = response.status();
    (response.comment.expect("comment").id, status)
}

/// Submits a reply as the site's host; returns the stored comment's id, its status and its
/// assessment as a moderator sees it.
pub async fn assessed(
    h: &Harness,
    site: &TestSite,
    req: proto::SubmitCommentRequest,
) -> (String, proto::CommentStatus, proto::Assessment) {
    let (id, status) = submitted(&mut h.comments(&site.site_key).await, req).await;
    let item = h
        .moderation(&site.mod_token)
        .await
        .get_comment(proto::GetCommentRequest { id: id.clone() })
        .await
        .expect("get")
        .into_inner()
        .comment
        .expect("item");
    (id, status, item.assessment.expect("assessment"))
}

/// A valid reply by a given author, from an address of its own.
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
            ip: format!("2001:db8::{:x}", next_reader()),
            user_agent: "Mozilla/5.0".to_owned(),
            referrer: String::new(),
        }),
        ..Default::default()
    }
}

fn next_reader() -> u64 {
    static READERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    READERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
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
    // One result per id, in order: a missing one is a decision that was never applied.
    let answered: Vec<&str> = response.results.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(answered, ids, "{action:?}: every id gets its result");
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

/// The pause between two reads of something another replica changes, so that a test polling
/// for it stays within the server's per-token rate (`REPLYGUARD_HOST_RATE`).
pub async fn poll_pause() {
    tokio::time::sleep(Duration::from_millis(2)).await;
}
