//! Builds and runs the gRPC server; tests start it on port 0 the same way.
//!
//! [`start`] returns once the port is bound, with a handle that knows the
//! bound address and shuts the server down gracefully: in-flight calls finish.

use std::{
    fs::{File, OpenOptions, TryLockError},
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use tokio::{
    net::TcpListener,
    sync::{oneshot, watch},
    task::JoinHandle,
};
use tonic::transport::{Server, server::TcpIncoming};

use crate::{
    api::{
        CommentsApi, IntegrationsApi, ModerationApi,
        auth::AuthLayer,
        guard::{COMMENTS_MAX_MESSAGE_BYTES, Guard, MODERATION_MAX_MESSAGE_BYTES},
    },
    config::ServeSettings,
    deployment::{KeyError, check_key, previous_key, secret_key},
    metrics::MetricsServer,
    moderation::Sweeper,
    privacy::{KeptText, Vault, mask_contacts},
    proto::{
        self, comments_server::CommentsServer, integrations_server::IntegrationsServer,
        moderation_server::ModerationServer,
    },
    secret_files::{sqlite_path, with_suffix},
    spam::Assessor,
    store::{self, ServingMark, StoreError, StoreOptions},
    submission::Submitter,
    tls::{ServerTls, TlsError},
    webhooks::Worker,
};

/// The most bytes of headers a call may send: a token and a request id need a fraction.
const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Webhooks(String),
    #[error("{0}")]
    Mail(String),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(
        "another replyguard process is using {}: one server at a time serves a SQLite database, \
         and `replyguard key rotate` needs it stopped (several replicas need PostgreSQL)",
        database.display()
    )]
    InUse { database: PathBuf },
    #[error("cannot lock {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
}

/// A running server.
pub struct RunningServer {
    addr: SocketAddr,
    /// Tells open watches that the server is going away.
    closing: watch::Sender<bool>,
    /// How long shutting down waits for calls in flight.
    grace: Duration,
    /// Whether clients must speak TLS.
    tls: bool,
    /// Held until the server is shut down and dropped.
    _lock: Option<SqliteLock>,
    serving: Option<ServingMark>,
    metrics: Option<MetricsServer>,
    sweeper: Sweeper,
    /// The webhook worker; it stops when the server begins to close.
    webhooks: AbortOnDrop,
    /// The mail worker, when mail is sent; it stops when the server begins to close.
    mail: Option<AbortOnDrop>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl RunningServer {
    /// The address the server is bound to (the real port when asked for 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where metrics are served, when they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::addr)
    }

    /// `http://ADDR`, or `https://ADDR` when the server speaks TLS, for clients.
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Resolves once the retention sweep the server runs at start has
    /// finished.
    pub async fn swept(&self) {
        self.sweeper.swept().await;
    }

    /// Stops accepting calls, ends open watches with `UNAVAILABLE`, lets the calls in flight
    /// finish within the grace period, and returns; calls still open after it are dropped.
    pub async fn shutdown(self) -> Result<(), tonic::transport::Error> {
        let RunningServer {
            closing,
            grace,
            shutdown,
            mut task,
            metrics,
            sweeper,
            serving,
            mut webhooks,
            mail,
            ..
        } = self;
        sweeper.stop();
        closing.send_replace(true);
        let _ = shutdown.send(());
        // Both drain within the one grace period.
        let drained = async {
            let metrics = async {
                if let Some(metrics) = metrics {
                    metrics.shutdown().await;
                }
            };
            let webhooks = async {
                let _ = (&mut webhooks.0).await;
                if let Some(mut mail) = mail {
                    let _ = (&mut mail.0).await;
                }
            };
            tokio::join!(&mut task, metrics, webhooks).0
        };
        let served = match tokio::time::timeout(grace, drained).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => std::panic::resume_unwind(join.into_panic()),
            Err(_) => {
                tracing::warn!(
                    grace_seconds = grace.as_secs(),
                    "calls still open after the grace period are dropped"
                );
                task.abort();
                Ok(())
            }
        };
        if let Some(serving) = serving {
            serving.release().await;
        }
        served
    }
}

/// A task that ends with its owner: a server dropped without `shutdown` (a test's) leaves no
/// worker behind.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The lock a process holds on a SQLite database while it serves it or rotates its key: queue
/// watchers and the thread cache hear of changes through the one process that serves, and a
/// rotation must not race a server still sealing under the old key. An advisory lock (`flock`)
/// on `….db-lock` beside the database, which the system releases when the process ends,
/// however it ends.
pub struct SqliteLock {
    _file: File,
}

impl SqliteLock {
    /// Locks the SQLite database `database_url` names; `None` for other databases, which
    /// replicas share.
    pub fn take(database_url: &str) -> Result<Option<SqliteLock>, StartError> {
        let Some(database) = sqlite_path(database_url) else {
            return Ok(None);
        };
        let path = with_suffix(&database, "-lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| StartError::Lock {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Some(SqliteLock { _file: file })),
            Err(TryLockError::WouldBlock) => Err(StartError::InUse { database }),
            Err(TryLockError::Error(source)) => Err(StartError::Lock { path, source }),
        }
    }
}

/// Binds the listeners, opens the database and starts serving. The ports come first, so that a
/// port in use leaves nothing behind: no database, lock or key file.
pub async fn start(settings: &ServeSettings) -> Result<RunningServer, StartError> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: settings.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: settings.listen,
        source,
    })?;
    let metrics = match settings.metrics_listen {
        Some(addr) => Some(
            crate::metrics::serve(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })?,
        ),
        None => None,
    };
    let lock = SqliteLock::take(&settings.database.url)?;
    let key = secret_key(settings)?;
    let options = StoreOptions {
        max_connections: settings.database_pool_size,
        caches: Some(settings.thread_cache_bytes()),
        ..StoreOptions::default()
    };
    let store = store::open_with(&settings.database.url, &options).await?;
    // Marked before the key is checked, so a rotation running now is waited for and its new
    // key check seen.
    let serving = store.mark_serving().await?;
    let mut vault = check_key(store.as_ref(), &key).await?;
    if let Some(previous) = previous_key(settings)? {
        vault = Vault::with_previous(key.key(), &previous);
    }
    let kept = store
        .keep_texts_again(&|site, comment, raw| {
            KeptText::new(&vault, site, comment, raw, mask_contacts(raw))
        })
        .await?;
    if kept > 0 {
        tracing::info!(
            replies = kept,
            "stored texts of an earlier release as this one keeps them"
        );
    }

    let tls = ServerTls::from_settings(settings)?;
    let serves_tls = tls.is_some();

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<CommentsServer<CommentsApi>>()
        .await;
    health_reporter
        .set_serving::<ModerationServer<ModerationApi>>()
        .await;
    health_reporter
        .set_serving::<IntegrationsServer<IntegrationsApi>>()
        .await;
    let reflecting = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection = reflecting().build_v1()?;
    // The older protocol too, which grpcui, older grpcurl and Postman builds still ask for.
    let reflection_alpha = reflecting().build_v1alpha()?;

    let sweeper = Sweeper::start(Arc::clone(&store), settings.retention());
    let submitter = Submitter::new(store.clone(), vault.clone(), Assessor::default())
        .reading_shared(settings.shared_learning);
    let guard = Guard::new(&settings.limits);
    let (closing, closing_seen) = watch::channel(false);
    let mail_settings = settings.mail().map_err(StartError::Mail)?;
    let comments = CommentsApi::new(store.clone(), submitter.clone(), vault.clone())
        .sending_mail(mail_settings.is_some());
    let integrations =
        IntegrationsApi::new(store.clone(), vault.clone(), settings.webhook_targets());
    let webhooks = Worker::new(store.clone(), vault.clone(), settings.webhook_targets())
        .map_err(StartError::Webhooks)?
        .spawn(closing_seen.clone());
    let webhooks = AbortOnDrop(webhooks);
    let integrations = integrations.sending_mail(mail_settings.is_some());
    let mail = match mail_settings {
        Some(mail) => Some(AbortOnDrop(
            crate::mail::Worker::new(store.clone(), vault.clone(), &mail)
                .map_err(StartError::Mail)?
                .spawn(closing_seen.clone()),
        )),
        None => None,
    };
    let moderation = ModerationApi::new(
        store.clone(),
        vault,
        submitter,
        Arc::clone(&guard),
        closing_seen,
    )
    .sharing_lessons(settings.shared_learning);

    let (shutdown, on_shutdown) = oneshot::channel::<()>();
    let router = Server::builder()
        // Keeps idle `WatchQueue` streams alive through proxies, and finds
        // dead peers.
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_concurrent_streams(settings.limits.max_streams_per_connection)
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        .layer(AuthLayer::new(Arc::clone(&store), guard))
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(
            CommentsServer::new(comments).max_decoding_message_size(COMMENTS_MAX_MESSAGE_BYTES),
        )
        .add_service(
            ModerationServer::new(moderation)
                .max_decoding_message_size(MODERATION_MAX_MESSAGE_BYTES),
        )
        .add_service(IntegrationsServer::new(integrations));
    let task = tokio::spawn(async move {
        let signal = async move {
            let _ = on_shutdown.await;
            // Tell load balancers first, then drain.
            health_reporter
                .set_not_serving::<CommentsServer<CommentsApi>>()
                .await;
            health_reporter
                .set_not_serving::<ModerationServer<ModerationApi>>()
                .await;
            health_reporter
                .set_not_serving::<IntegrationsServer<IntegrationsApi>>()
                .await;
            health_reporter
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
        };
        match tls {
            Some(tls) => {
                router
                    .serve_with_incoming_shutdown(tls.incoming(listener), signal)
                    .await
            }
            None => {
                // Without TCP_NODELAY, a response's last small frame waits for the
                // client's delayed acknowledgement: about 40 ms per call on Linux.
                let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
                router.serve_with_incoming_shutdown(incoming, signal).await
            }
        }
    });
    tracing::info!(%addr, database = %redact_url(&settings.database.url), "replyguard is serving");
    Ok(RunningServer {
        addr,
        closing,
        grace: Duration::from_secs(u64::from(settings.limits.shutdown_grace_seconds)),
        tls: serves_tls,
        _lock: lock,
        serving,
        metrics,
        sweeper,
        webhooks,
        mail,
        shutdown,
        task,
    })
}

/// A database URL without its password, for logs.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
