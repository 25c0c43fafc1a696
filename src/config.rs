//! Settings: defaults, then environment, then flags (clap reads both).
//!
//! The secret key is wrapped so that it never prints, not even in `Debug`.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr};

use clap::Args;

use crate::{
    moderation::Retention,
    privacy::{PrivacyError, SecretKey, read_key_file},
    secret_files::{key_file_beside, sqlite_path},
    store::DEFAULT_POOL_SIZE,
    telemetry::LogFormat,
};

/// Days a reply keeps its IP address, user agent, referrer and idempotency key when not told
/// otherwise.
pub const DEFAULT_RETAIN_CLIENT_DAYS: u32 = 30;

/// KiB of approved threads and counts a server keeps in memory when not
/// told otherwise.
pub const DEFAULT_THREAD_CACHE_KIB: u32 = 16 * 1024;

/// The database when none is named: SQLite in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://replyguard.db";

/// Where the operator's commands and the server find the database.
#[derive(Args, Clone, Debug)]
pub struct DatabaseArgs {
    /// The database: `sqlite://PATH` or `postgres://...`.
    #[arg(
        long = "database",
        visible_alias = "database-url",
        env = "REPLYGUARD_DATABASE_URL",
        default_value = DEFAULT_DATABASE_URL
    )]
    pub url: String,
}

/// The deployment's secret key, as the server and every operator's command that seals or
/// opens emails take it: from the environment or a file, never from the command line (`ps`
/// shows a command line to every user); on SQLite, by default the key file beside the
/// database.
#[derive(Args, Clone, Debug, Default)]
pub struct SecretKeyArgs {
    /// 32 random bytes in standard base64; encrypts emails and signs tokens. From the
    /// environment only: the flag is refused.
    #[arg(
        long,
        env = "REPLYGUARD_SECRET_KEY",
        hide_env_values = true,
        hide = true
    )]
    pub secret_key: Option<Secret>,

    /// A file holding the secret key (as `replyguard key generate` writes it), readable by its
    /// owner only; or REPLYGUARD_SECRET_KEY in the environment. Neither on SQLite: the key file
    /// beside the database.
    #[arg(
        long,
        env = "REPLYGUARD_SECRET_KEY_FILE",
        value_name = "FILE",
        conflicts_with = "secret_key"
    )]
    pub secret_key_file: Option<PathBuf>,
}

impl SecretKeyArgs {
    /// The key given, from the environment or from its file (with the file's path); `None`
    /// when neither is given. A key file group or others may read is refused.
    pub fn given(&self) -> Result<Option<(SecretKey, Option<PathBuf>)>, PrivacyError> {
        match (&self.secret_key, &self.secret_key_file) {
            (Some(secret), _) => Ok(Some((SecretKey::from_base64(secret.expose())?, None))),
            (None, Some(path)) => Ok(Some((read_key_file(path)?, Some(path.clone())))),
            (None, None) => Ok(None),
        }
    }

    /// The file the key lives in: the one given, or, when no key is given, the one beside the
    /// SQLite database `database_url` names; `None` for a key from the environment, or none
    /// given for another database.
    pub fn key_file(&self, database_url: &str) -> Option<PathBuf> {
        match (&self.secret_key, &self.secret_key_file) {
            (Some(_), _) => None,
            (None, Some(path)) => Some(path.clone()),
            (None, None) => sqlite_path(database_url).map(|database| key_file_beside(&database)),
        }
    }
}

/// The settings of `replyguard serve`.
#[derive(Args, Clone, Debug)]
pub struct ServeSettings {
    /// The address the gRPC server listens on.
    #[arg(long, env = "REPLYGUARD_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// The most connections this server keeps open to PostgreSQL; several
    /// replicas together must stay below the server's `max_connections`.
    /// SQLite ignores it.
    #[arg(
        long,
        env = "REPLYGUARD_DATABASE_POOL_SIZE",
        default_value_t = DEFAULT_POOL_SIZE,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub database_pool_size: u32,

    #[command(flatten)]
    pub key: SecretKeyArgs,

    /// The key before `replyguard key rotate`; from the environment only, as the key.
    #[arg(
        long,
        env = "REPLYGUARD_PREVIOUS_SECRET_KEY",
        hide_env_values = true,
        hide = true
    )]
    pub previous_secret_key: Option<Secret>,

    /// A file holding the key before `replyguard key rotate` (or REPLYGUARD_PREVIOUS_SECRET_KEY
    /// in the environment), given for two days after it so that the form tokens of pages opened
    /// before are still accepted; nothing else is read under it. By default the `.previous`
    /// file the rotation left beside the key file.
    #[arg(
        long,
        env = "REPLYGUARD_PREVIOUS_SECRET_KEY_FILE",
        value_name = "FILE",
        conflicts_with = "previous_secret_key"
    )]
    pub previous_secret_key_file: Option<PathBuf>,

    /// Where to serve Prometheus metrics; off when unset.
    #[arg(long, env = "REPLYGUARD_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// How log lines are written.
    #[arg(long, env = "REPLYGUARD_LOG_FORMAT", value_enum, default_value_t)]
    pub log_format: LogFormat,

    /// Days after which a reply's IP address, user agent, referrer and
    /// idempotency key are dropped.
    #[arg(
        long,
        env = "REPLYGUARD_RETAIN_CLIENT_DAYS",
        value_name = "DAYS",
        default_value_t = DEFAULT_RETAIN_CLIENT_DAYS,
        value_parser = clap::value_parser!(u32).range(1..=36_500)
    )]
    pub retain_client_days: u32,

    /// Days after which a pending reply that nobody decided is rejected;
    /// pending replies wait for good when unset.
    #[arg(
        long,
        env = "REPLYGUARD_EXPIRE_PENDING_DAYS",
        value_name = "DAYS",
        value_parser = clap::value_parser!(u32).range(1..=36_500)
    )]
    pub expire_pending_days: Option<u32>,

    /// Days after which a reply in the spam queue is deleted, counted from
    /// when it became spam; spam is kept for good when unset.
    #[arg(
        long,
        env = "REPLYGUARD_DELETE_SPAM_DAYS",
        value_name = "DAYS",
        value_parser = clap::value_parser!(u32).range(1..=36_500)
    )]
    pub delete_spam_days: Option<u32>,

    /// KiB of approved thread pages and counts kept in memory for
    /// `ListComments` and `CountComments`; 0 reads every one from the
    /// database.
    #[arg(
        long,
        env = "REPLYGUARD_THREAD_CACHE_KIB",
        value_name = "KIB",
        default_value_t = DEFAULT_THREAD_CACHE_KIB,
        value_parser = clap::value_parser!(u32).range(0..=16 * 1024 * 1024)
    )]
    pub thread_cache_kib: u32,

    /// The server's certificate chain (PEM), leaf first: serves TLS, with --tls-key. Read
    /// again when the file changes, so a renewal needs no restart.
    #[arg(long, env = "REPLYGUARD_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "REPLYGUARD_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// A CA certificate (PEM): only clients showing a certificate it signed are served
    /// (mutual TLS). Needs --tls-cert and --tls-key.
    #[arg(long, env = "REPLYGUARD_TLS_CLIENT_CA", value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,

    /// Lets webhook endpoints be loopback, private or link-local addresses. Off by default:
    /// moderators supply endpoint URLs, and this keeps them off the service's own network.
    #[arg(long, env = "REPLYGUARD_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,

    /// Lets webhook endpoints be plain `http://` URLs, whose events anyone on the way can read.
    #[arg(long, env = "REPLYGUARD_WEBHOOK_ALLOW_HTTP")]
    pub webhook_allow_http: bool,

    /// Lets every site's moderator decisions also teach a model shared by the deployment's
    /// sites, which each reads as its prior beside the built-in one (counts of words and
    /// signs only: no author, address or text). Off by default: a site learns alone.
    #[arg(long, env = "REPLYGUARD_SHARED_LEARNING")]
    pub shared_learning: bool,

    /// The SMTP server mail is sent through: `smtp://host:587?tls=required` (STARTTLS;
    /// `?tls=opportunistic` where offered), `smtps://host:465`, plain `smtp://host:25`, with
    /// `user:password@` for credentials. No mail is sent when unset.
    #[arg(
        long,
        env = "REPLYGUARD_SMTP_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub smtp_url: Option<crate::mail::SmtpUrl>,

    /// Whom mail comes from: `comments@example.com` or `Comments <comments@example.com>`.
    /// Needed with --smtp-url.
    #[arg(long, env = "REPLYGUARD_MAIL_FROM", value_name = "ADDRESS")]
    pub mail_from: Option<String>,

    #[command(flatten)]
    pub limits: Limits,
}

/// What one connection, one caller and one call may cost the server.
#[derive(Args, Clone, Debug)]
pub struct Limits {
    /// Calls one connection may have open at once (HTTP/2 streams).
    #[arg(
        long,
        env = "REPLYGUARD_MAX_STREAMS_PER_CONNECTION",
        value_name = "STREAMS",
        default_value_t = Limits::DEFAULT.max_streams_per_connection,
        value_parser = clap::value_parser!(u32).range(1..=10_000)
    )]
    pub max_streams_per_connection: u32,

    /// Calls the whole server works on at once; a call beyond them is refused at once with
    /// `RESOURCE_EXHAUSTED`, never queued. Open watches do not count.
    #[arg(
        long,
        env = "REPLYGUARD_MAX_CALLS_IN_FLIGHT",
        value_name = "CALLS",
        default_value_t = Limits::DEFAULT.max_calls_in_flight,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub max_calls_in_flight: u32,

    /// Seconds a call may take before it ends with `DEADLINE_EXCEEDED`; a shorter
    /// `grpc-timeout` sent by the caller wins. Open watches are not calls in this sense.
    #[arg(
        long,
        env = "REPLYGUARD_REQUEST_TIMEOUT_SECONDS",
        value_name = "SECONDS",
        default_value_t = Limits::DEFAULT.request_timeout_seconds,
        value_parser = clap::value_parser!(u32).range(1..=3_600)
    )]
    pub request_timeout_seconds: u32,

    /// Calls a second one site key may make, with bursts of twice as many; 0 for no limit.
    #[arg(
        long,
        env = "REPLYGUARD_HOST_RATE",
        value_name = "CALLS",
        default_value_t = Limits::DEFAULT.host_rate,
        value_parser = clap::value_parser!(u32).range(0..=10_000_000)
    )]
    pub host_rate: u32,

    /// Calls a second one moderator token may make, with bursts of twice as many; 0 for no
    /// limit.
    #[arg(
        long,
        env = "REPLYGUARD_MODERATOR_RATE",
        value_name = "CALLS",
        default_value_t = Limits::DEFAULT.moderator_rate,
        value_parser = clap::value_parser!(u32).range(0..=10_000_000)
    )]
    pub moderator_rate: u32,

    /// Calls a second with a missing, malformed or unknown credential that one client
    /// address may make, with bursts of twice as many; beyond them its calls that carry no
    /// credential this server knows are refused without a database read.
    #[arg(
        long,
        env = "REPLYGUARD_AUTH_FAILURE_RATE",
        value_name = "CALLS",
        default_value_t = Limits::DEFAULT.auth_failure_rate,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub auth_failure_rate: u32,

    /// `WatchQueue` streams one moderator token may hold open on this server.
    #[arg(
        long,
        env = "REPLYGUARD_MAX_WATCHES_PER_TOKEN",
        value_name = "WATCHES",
        default_value_t = Limits::DEFAULT.max_watches_per_token,
        value_parser = clap::value_parser!(u32).range(1..=1_000)
    )]
    pub max_watches_per_token: u32,

    /// Seconds the server waits, on SIGTERM, for calls in flight to finish before it exits
    /// regardless; open watches end at once with `UNAVAILABLE`.
    #[arg(
        long,
        env = "REPLYGUARD_SHUTDOWN_GRACE_SECONDS",
        value_name = "SECONDS",
        default_value_t = Limits::DEFAULT.shutdown_grace_seconds,
        value_parser = clap::value_parser!(u32).range(0..=3_600)
    )]
    pub shutdown_grace_seconds: u32,
}

impl Limits {
    /// The limits when none is set.
    pub const DEFAULT: Limits = Limits {
        max_streams_per_connection: 100,
        max_calls_in_flight: 512,
        request_timeout_seconds: 30,
        host_rate: 1_000,
        moderator_rate: 100,
        auth_failure_rate: 20,
        max_watches_per_token: 4,
        shutdown_grace_seconds: 10,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

impl ServeSettings {
    /// Settings for a server on `listen` over `database_url`, all else default.
    pub fn new(listen: SocketAddr, database_url: impl Into<String>) -> Self {
        ServeSettings {
            listen,
            database: DatabaseArgs {
                url: database_url.into(),
            },
            database_pool_size: DEFAULT_POOL_SIZE,
            key: SecretKeyArgs::default(),
            previous_secret_key: None,
            previous_secret_key_file: None,
            metrics_listen: None,
            log_format: LogFormat::Human,
            retain_client_days: DEFAULT_RETAIN_CLIENT_DAYS,
            expire_pending_days: None,
            delete_spam_days: None,
            thread_cache_kib: DEFAULT_THREAD_CACHE_KIB,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            webhook_allow_private: false,
            webhook_allow_http: false,
            shared_learning: false,
            smtp_url: None,
            mail_from: None,
            limits: Limits::default(),
        }
    }

    /// Where mail goes and whom it comes from; `None` when no mail is sent. An SMTP server
    /// without a sender is an error, as is a sender without a server.
    pub fn mail(&self) -> Result<Option<crate::mail::MailSettings>, String> {
        match (&self.smtp_url, &self.mail_from) {
            (None, None) => Ok(None),
            (Some(smtp_url), Some(from)) => Ok(Some(crate::mail::MailSettings {
                smtp_url: smtp_url.clone(),
                from: from.clone(),
            })),
            (Some(_), None) => Err(
                "REPLYGUARD_SMTP_URL is set but REPLYGUARD_MAIL_FROM is not: mail needs a sender"
                    .to_owned(),
            ),
            (None, Some(_)) => Err(
                "REPLYGUARD_MAIL_FROM is set but REPLYGUARD_SMTP_URL is not: mail needs a server"
                    .to_owned(),
            ),
        }
    }

    /// Where webhook endpoints may point.
    pub fn webhook_targets(&self) -> crate::webhooks::Targets {
        crate::webhooks::Targets {
            allow_private: self.webhook_allow_private,
            allow_http: self.webhook_allow_http,
        }
    }

    /// The thread cache's budget in bytes.
    pub fn thread_cache_bytes(&self) -> usize {
        usize::try_from(self.thread_cache_kib)
            .unwrap_or(usize::MAX)
            .saturating_mul(1024)
    }

    /// What the server keeps, and for how long.
    pub fn retention(&self) -> Retention {
        Retention {
            client_details_days: self.retain_client_days,
            expire_pending_days: self.expire_pending_days,
            delete_spam_days: self.delete_spam_days,
        }
    }
}

/// A secret setting: parsed like a string, printed as `(redacted)`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&SecretKey> for Secret {
    fn from(key: &SecretKey) -> Self {
        Secret(key.to_base64())
    }
}

/// The settings that carry a secret: clap reads them from the environment or the command line
/// alike, and only the environment keeps them out of `ps`.
pub const SECRET_SETTINGS: [(&str, &str, &str); 2] = [
    ("secret_key", "--secret-key", "REPLYGUARD_SECRET_KEY"),
    (
        "previous_secret_key",
        "--previous-secret-key",
        "REPLYGUARD_PREVIOUS_SECRET_KEY",
    ),
];

impl FromStr for Secret {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let secret = Secret("hunter2".to_owned());
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
