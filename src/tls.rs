//! TLS with rustls: the server's certificate, taken up again when its files are renewed in place,
//! mutual TLS against a client CA, and the clients' channel to an `https://` endpoint.
//!
//! It never logs or prints key material: errors and log lines name files, never their contents.

use std::{
    fs, io,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant, SystemTime},
};

use clap::Args;
use futures_util::Stream;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Semaphore, mpsc},
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        self, RootCertStore, ServerConfig,
        crypto::{CryptoProvider, ring},
        server::{ClientHello, ResolvesServerCert, VerifierBuilderError, WebPkiClientVerifier},
        sign::CertifiedKey,
    },
    server::TlsStream,
};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::config::ServeSettings;

/// How long a client has to finish its handshake before its connection is closed.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often, at most, the certificate's files are looked at for a renewal.
const RENEWAL_CHECK: Duration = Duration::from_secs(1);

/// How long the accept loop waits after a failed `accept`, so that running out of file
/// descriptors does not spin it.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Connections whose handshake is done and that tonic has not taken yet.
const HANDSHAKEN_BACKLOG: usize = 64;

/// Why TLS could not be set up, naming the file or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{given} needs {missing} too: give both, or neither")]
    Unpaired {
        given: &'static str,
        missing: &'static str,
    },
    #[error("--tls-client-ca needs --tls-cert and --tls-key: mutual TLS is TLS first")]
    ClientCaWithoutTls,
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} holds no PEM certificate: {reason}", path.display())]
    NoCertificate { path: PathBuf, reason: String },
    #[error("{} holds no PEM private key: {reason}", path.display())]
    NoKey { path: PathBuf, reason: String },
    #[error(
        "the key in {} is not the key of the certificate in {}",
        key.display(),
        cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("the certificate in {} with the key in {}: {source}", cert.display(), key.display())]
    BadPair {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("{} is not a usable CA certificate: {source}", path.display())]
    BadCa {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("client certificates cannot be checked against {}: {source}", path.display())]
    ClientCa {
        path: PathBuf,
        source: VerifierBuilderError,
    },
    #[error("the TLS settings are for https:// endpoints, and {endpoint} is not one")]
    NotHttps { endpoint: String },
    #[error("TLS for {endpoint}: {source}")]
    Client {
        endpoint: String,
        source: tonic::transport::Error,
    },
}

/// The server's TLS, as its settings ask for it.
pub struct ServerTls {
    acceptor: TlsAcceptor,
}

impl ServerTls {
    /// TLS as `settings` ask for it: `None` when they give no certificate, so the server speaks
    /// plaintext. The files are read now, so that a missing or bad one stops the start.
    pub fn from_settings(settings: &ServeSettings) -> Result<Option<ServerTls>, TlsError> {
        let pair = paired(
            ("--tls-cert", &settings.tls_cert),
            ("--tls-key", &settings.tls_key),
        )?;
        let Some((cert, key)) = pair else {
            return match settings.tls_client_ca {
                Some(_) => Err(TlsError::ClientCaWithoutTls),
                None => Ok(None),
            };
        };
        let provider = provider();
        let resolver = RenewedCert::load(cert, key, Arc::clone(&provider))?;
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|source| TlsError::BadPair {
                cert: cert.clone(),
                key: key.clone(),
                source,
            })?;
        let builder = match &settings.tls_client_ca {
            Some(client_ca) => {
                let roots = read_roots(client_ca)?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|source| TlsError::ClientCa {
                            path: client_ca.clone(),
                            source,
                        })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(Arc::new(resolver));
        config.alpn_protocols = vec![b"h2".to_vec()];
        match &settings.tls_client_ca {
            Some(client_ca) => tracing::info!(
                cert = %cert.display(),
                client_ca = %client_ca.display(),
                "serving over mutual TLS: every client must show a certificate the client CA signed"
            ),
            None => tracing::info!(cert = %cert.display(), "serving over TLS"),
        }
        Ok(Some(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        }))
    }

    /// The connections `listener` accepts, each once its handshake is done. Every handshake
    /// runs in a task of its own with a deadline, so a slow client holds up no other; one that
    /// fails is dropped. The accept loop ends when the stream is dropped.
    pub fn incoming(
        &self,
        listener: TcpListener,
    ) -> impl Stream<Item = Result<TlsStream<TcpStream>, io::Error>> + Send + 'static {
        let (ready, handshaken) = mpsc::channel(HANDSHAKEN_BACKLOG);
        tokio::spawn(accept(listener, self.acceptor.clone(), ready));
        Box::pin(futures_util::stream::unfold(
            handshaken,
            |mut handshaken| async move {
                let stream = handshaken.recv().await?;
                Some((Ok(stream), handshaken))
            },
        ))
    }
}

/// TLS handshakes in progress at once; each may take up to [`HANDSHAKE_TIMEOUT`].
const MAX_HANDSHAKES: usize = 256;

async fn accept(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<TlsStream<TcpStream>>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        // Past the bound, connections wait in the kernel's backlog: a crowd of clients that
        // never finish their handshake cannot grow the server's memory without end.
        let place = tokio::select! {
            place = Arc::clone(&handshakes).acquire_owned() => match place {
                Ok(place) => place,
                Err(_) => return,
            },
            () = ready.closed() => return,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = ready.closed() => return,
        };
        // Without TCP_NODELAY, a response's last small frame waits for the client's delayed
        // acknowledgement: about 40 ms per call on Linux.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        let handshake = handshake(stream, peer, acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            handshake.await;
            drop(place);
        });
    }
}

async fn handshake(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<TlsStream<TcpStream>>,
) {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => {
            // Fails only once the server has stopped taking connections.
            let _ = ready.send(stream).await;
        }
        // Scanners and clients that do not trust the certificate end here all the time.
        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

/// The server's certificate and key, read again when their files change: cert-manager and ACME
/// clients renew them in place. A renewal that cannot be read (a half-written file) keeps the
/// certificate served until then; connections made before a renewal keep theirs.
#[derive(Debug)]
struct RenewedCert {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Mutex<Current>,
}

#[derive(Debug)]
struct Current {
    certified: Arc<CertifiedKey>,
    /// The files as they were when last read: a renewal changes them.
    stamps: Option<[Stamp; 2]>,
    checked: Instant,
}

/// What tells that a file changed without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl RenewedCert {
    fn load(cert: &Path, key: &Path, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let stamps = stamps(cert, key).ok();
        let certified = certified_key(cert, key, &provider)?;
        Ok(RenewedCert {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider,
            current: Mutex::new(Current {
                certified: Arc::new(certified),
                stamps,
                checked: Instant::now(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The certificate to serve now, read again first if its files changed since they were last
    /// looked at, at most once every [`RENEWAL_CHECK`].
    fn certified(&self) -> Arc<CertifiedKey> {
        let seen = {
            let mut current = self.lock();
            if current.checked.elapsed() < RENEWAL_CHECK {
                return Arc::clone(&current.certified);
            }
            current.checked = Instant::now();
            current.stamps
        };
        let now = match stamps(&self.cert, &self.key) {
            Ok(now) => now,
            Err(error) => {
                tracing::warn!(
                    cert = %self.cert.display(),
                    key = %self.key.display(),
                    %error,
                    "cannot look at the TLS certificate's files; serving the one read before"
                );
                return Arc::clone(&self.lock().certified);
            }
        };
        if seen == Some(now) {
            return Arc::clone(&self.lock().certified);
        }
        let renewed = certified_key(&self.cert, &self.key, &self.provider);
        let mut current = self.lock();
        // Tried once per change: a half-written renewal changes the files again when it is done.
        current.stamps = Some(now);
        match renewed {
            Ok(renewed) => {
                current.certified = Arc::new(renewed);
                tracing::info!(cert = %self.cert.display(), "serving the renewed TLS certificate");
            }
            Err(error) => tracing::warn!(
                %error,
                "the TLS certificate's files changed but cannot be used; serving the one read before"
            ),
        }
        Arc::clone(&current.certified)
    }
}

impl ResolvesServerCert for RenewedCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.certified())
    }
}

/// The process's installed crypto provider, else *ring*: the one this build has (tonic's
/// `tls-ring`), as tonic itself chooses.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    // rustls deprecates *ring* for lacking post-quantum key exchange, which only aws-lc-rs
    // brings; this build does not link it.
    #[allow(deprecated)]
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(ring::default_provider()))
}

fn stamps(cert: &Path, key: &Path) -> io::Result<[Stamp; 2]> {
    let stamp = |path: &Path| {
        fs::metadata(path).map(|meta| Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
        })
    };
    Ok([stamp(cert)?, stamp(key)?])
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Two settings that go together: both, or neither.
fn paired<'a, T>(
    (first, a): (&'static str, &'a Option<T>),
    (second, b): (&'static str, &'a Option<T>),
) -> Result<Option<(&'a T, &'a T)>, TlsError> {
    match (a, b) {
        (Some(a), Some(b)) => Ok(Some((a, b))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(TlsError::Unpaired {
            given: first,
            missing: second,
        }),
        (None, Some(_)) => Err(TlsError::Unpaired {
            given: second,
            missing: first,
        }),
    }
}

/// The certificates of `pem`, read from `path`: at least one.
fn parse_certs(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let no_certificate = |reason: String| TlsError::NoCertificate {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| no_certificate(e.to_string()))?;
    if certs.is_empty() {
        return Err(no_certificate("no items found".to_owned()));
    }
    Ok(certs)
}

fn read_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in parse_certs(path, &read(path)?)? {
        roots.add(cert).map_err(|source| TlsError::BadCa {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(roots)
}

/// The certificate chain in `cert` with the key in `key`, shown to belong together.
fn certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    certified_pem(cert, &read(cert)?, key, &read(key)?, provider)
}

/// The chain in `cert_pem` (read from `cert`) with the key in `key_pem` (from `key`).
fn certified_pem(
    cert: &Path,
    cert_pem: &[u8],
    key: &Path,
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = parse_certs(cert, cert_pem)?;
    let private = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::NoKey {
        path: key.to_owned(),
        reason: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, private, provider).map_err(|source| match source {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
            cert: cert.to_owned(),
            key: key.to_owned(),
        },
        source => TlsError::BadPair {
            cert: cert.to_owned(),
            key: key.to_owned(),
            source,
        },
    })
}

/// How a client trusts an `https://` server and, for mutual TLS, shows who it is.
#[derive(Args, Clone, Debug, Default)]
pub struct ClientTls {
    /// The CA certificates (PEM) an https:// server's certificate must chain to; the system's
    /// roots when unset.
    #[arg(long, global = true, env = "REPLYGUARD_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,

    /// The certificate (PEM) to show a server that asks for one (mutual TLS); with
    /// --client-key.
    #[arg(
        long,
        global = true,
        env = "REPLYGUARD_CLIENT_CERT",
        value_name = "FILE"
    )]
    pub client_cert: Option<PathBuf>,

    /// The private key (PEM) of --client-cert.
    #[arg(
        long,
        global = true,
        env = "REPLYGUARD_CLIENT_KEY",
        value_name = "FILE"
    )]
    pub client_key: Option<PathBuf>,
}

impl ClientTls {
    fn is_set(&self) -> bool {
        self.ca_cert.is_some() || self.client_cert.is_some() || self.client_key.is_some()
    }

    /// `endpoint` set up for its scheme: TLS with these settings for `https://`, as it is for
    /// `http://`. TLS settings given for an `http://` endpoint are refused rather than ignored,
    /// since whoever gave them expects TLS.
    pub fn configure(&self, endpoint: Endpoint) -> Result<Endpoint, TlsError> {
        let uri = endpoint.uri();
        let shown = uri.to_string();
        if uri.scheme_str() != Some("https") {
            return match self.is_set() {
                true => Err(TlsError::NotHttps { endpoint: shown }),
                false => Ok(endpoint),
            };
        }
        let mut config = ClientTlsConfig::new();
        config = match &self.ca_cert {
            Some(path) => {
                let pem = read(path)?;
                parse_certs(path, &pem)?;
                config.ca_certificate(Certificate::from_pem(pem))
            }
            None => config.with_native_roots(),
        };
        let identity = paired(
            ("--client-cert", &self.client_cert),
            ("--client-key", &self.client_key),
        )?;
        if let Some((cert, key)) = identity {
            let (cert_pem, key_pem) = (read(cert)?, read(key)?);
            certified_pem(cert, &cert_pem, key, &key_pem, &provider())?;
            config = config.identity(Identity::from_pem(cert_pem, key_pem));
        }
        endpoint
            .tls_config(config)
            .map_err(|source| TlsError::Client {
                endpoint: shown,
                source,
            })
    }
}
