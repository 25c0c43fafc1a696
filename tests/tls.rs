//! TLS: the server over rustls, mutual TLS, a certificate renewed in place, and `replyctl` over
//! https. A test CA and its certificates are made in a temporary directory for each test. Storage
//! plays no part, so SQLite alone serves.

mod common;

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use common::{Backend, Harness, TestDatabase};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use replyguard::{
    config::{Secret, ServeSettings},
    privacy::SecretKey,
    proto::{CountCommentsRequest, comments_client::CommentsClient},
    server::{self, StartError},
    tls::TlsError,
};
use tempfile::TempDir;
use tonic::{
    Request,
    metadata::{Ascii, MetadataValue},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// A certificate authority of a test's own.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate with its key, as PEM.
struct Issued {
    cert: String,
    key: String,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    fn server(&self, name: &str) -> Issued {
        self.issue(
            name,
            vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate.
    fn client(&self, name: &str) -> Issued {
        self.issue(name, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, name: &str, names: Vec<String>, usage: ExtendedKeyUsagePurpose) -> Issued {
        let mut params = CertificateParams::new(names).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// Where a test keeps its PEM files.
struct Files {
    dir: TempDir,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn write(&self, name: &str, pem: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, pem).expect("write a PEM file");
        path
    }

    /// Writes a certificate and its key as `NAME.crt` and `NAME.key`.
    fn write_issued(&self, name: &str, issued: &Issued) -> (PathBuf, PathBuf) {
        (
            self.write(&format!("{name}.crt"), &issued.cert),
            self.write(&format!("{name}.key"), &issued.key),
        )
    }
}

/// A server over TLS with `ca`'s certificate for localhost, mutual when `client_ca` is given.
async fn tls_server(files: &Files, ca: &TestCa, client_ca: Option<&TestCa>) -> Harness {
    let (cert, key) = files.write_issued("server", &ca.server("replyguard"));
    let client_ca = client_ca.map(|client_ca| files.write("client-ca.crt", &client_ca.pem()));
    Harness::configured(Backend::Sqlite, |settings| {
        settings.tls_cert = Some(cert);
        settings.tls_key = Some(key);
        settings.tls_client_ca = client_ca;
    })
    .await
}

/// A new connection to `endpoint` that trusts only `ca`, showing `identity` if given.
async fn connect(
    endpoint: &str,
    ca: &TestCa,
    identity: Option<&Issued>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca.pem()));
    if let Some(identity) = identity {
        tls = tls.identity(Identity::from_pem(&identity.cert, &identity.key));
    }
    Endpoint::from_shared(endpoint.to_owned())?
        .tls_config(tls)?
        .connect()
        .await
}

async fn health(channel: Channel) -> Result<(), tonic::Status> {
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .map(drop)
}

/// Connects as [`connect`] does and asks for the server's health: whether both worked. With
/// TLS 1.3 a server refuses a client's certificate after the client has finished its handshake,
/// so a refusal may show at the call rather than at the connection.
async fn served(endpoint: &str, ca: &TestCa, identity: Option<&Issued>) -> Result<(), String> {
    let channel = connect(endpoint, ca, identity)
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    health(channel).await.map_err(|e| format!("call: {e:?}"))
}

#[tokio::test]
async fn a_tls_server_answers_a_client_that_trusts_its_ca_and_refuses_plaintext() {
    let files = Files::new();
    let ca = TestCa::new("test CA");
    let h = tls_server(&files, &ca, None).await;
    let site = h.site("news.example.com").await;
    let endpoint = h.endpoint();
    assert!(endpoint.starts_with("https://"), "{endpoint}");

    let channel = connect(&endpoint, &ca, None).await.expect("connects");
    let token: MetadataValue<Ascii> = format!("Bearer {}", site.site_key).parse().expect("ascii");
    let mut comments = CommentsClient::with_interceptor(channel, move |mut req: Request<()>| {
        req.metadata_mut().insert("authorization", token.clone());
        Ok(req)
    });
    let counted = comments
        .count_comments(CountCommentsRequest {
            articles: vec!["story".to_owned()],
        })
        .await
        .expect("counted over TLS")
        .into_inner();
    assert_eq!(counted.counts.get("story"), Some(&0));

    let plaintext = endpoint.replacen("https://", "http://", 1);
    let answered = match Channel::from_shared(plaintext)
        .expect("endpoint")
        .connect()
        .await
    {
        Ok(channel) => health(channel).await.is_ok(),
        Err(_) => false,
    };
    assert!(!answered, "a plaintext client was served");
}

#[tokio::test]
async fn mutual_tls_serves_only_clients_with_a_certificate_the_client_ca_signed() {
    let files = Files::new();
    let ca = TestCa::new("server CA");
    let clients = TestCa::new("client CA");
    let stranger = TestCa::new("another CA");
    let h = tls_server(&files, &ca, Some(&clients)).await;
    let endpoint = h.endpoint();

    served(&endpoint, &ca, Some(&clients.client("moderator-desk")))
        .await
        .expect("a client with a certificate from the client CA is served");
    let without = served(&endpoint, &ca, None).await;
    assert!(
        without.is_err(),
        "a client without a certificate was served"
    );
    let foreign = served(&endpoint, &ca, Some(&stranger.client("intruder"))).await;
    assert!(
        foreign.is_err(),
        "a client with a certificate from another CA was served"
    );
}

/// cert-manager and ACME clients write the renewed certificate over the old files: calls on
/// connections made before go on without a failure, and new connections get the new
/// certificate, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_certificate_renewed_on_disk_is_served_to_new_connections_without_failing_a_call() {
    let files = Files::new();
    let old_ca = TestCa::new("old CA");
    let h = tls_server(&files, &old_ca, None).await;
    let endpoint = h.endpoint();

    let before = connect(&endpoint, &old_ca, None).await.expect("connects");
    let calls = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let caller = tokio::spawn({
        let (calls, failures, stop) = (calls.clone(), failures.clone(), stop.clone());
        async move {
            let mut client = HealthClient::new(before);
            while !stop.load(Ordering::Relaxed) {
                match client.check(HealthCheckRequest::default()).await {
                    Ok(_) => calls.fetch_add(1, Ordering::Relaxed),
                    Err(_) => failures.fetch_add(1, Ordering::Relaxed),
                };
            }
        }
    });

    let new_ca = TestCa::new("new CA");
    files.write_issued("server", &new_ca.server("replyguard renewed"));
    let calls_at_renewal = calls.load(Ordering::Relaxed);

    // The server looks at the files at most once a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    let renewed = loop {
        match served(&endpoint, &new_ca, None).await {
            Ok(()) => break Ok(()),
            Err(error) if Instant::now() > deadline => break Err(error),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    renewed.expect("a new connection gets the renewed certificate");
    let old = served(&endpoint, &old_ca, None).await;
    assert!(old.is_err(), "a new connection got the old certificate");

    let calls_at_reload = calls.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(10);
    while calls.load(Ordering::Relaxed) == calls_at_reload && Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::Relaxed);
    caller.await.expect("the caller ends");
    assert_eq!(failures.load(Ordering::Relaxed), 0, "calls failed");
    assert!(
        calls.load(Ordering::Relaxed) > calls_at_reload && calls_at_reload > calls_at_renewal,
        "the old connection kept calling through the renewal"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replyctl_reaches_an_https_server_whose_ca_it_is_given() {
    let files = Files::new();
    let ca = TestCa::new("test CA");
    let h = tls_server(&files, &ca, None).await;
    let site = h.site("news.example.com").await;
    let ca_file = files.write("ca.crt", &ca.pem());
    let ca_arg = ca_file.to_str().expect("a UTF-8 path");

    let output = h.replyctl(
        &site.mod_token,
        &["--ca-cert", ca_arg, "--output", "json", "queue"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The system's roots do not know the test CA: refused for that, in one line.
    let output = h.replyctl(&site.mod_token, &["--output", "json", "queue"]);
    assert_eq!(output.status.code(), Some(1), "served without the CA");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "replyctl: cannot connect to {}: invalid peer certificate: UnknownIssuer\n",
            h.endpoint()
        )
    );
}

#[tokio::test]
async fn a_tls_start_error_names_the_file_at_fault() {
    let files = Files::new();
    let ca = TestCa::new("test CA");
    let (cert, key) = files.write_issued("server", &ca.server("replyguard"));
    let (_, other_key) = files.write_issued("other", &ca.server("another"));
    let missing = files.dir.path().join("missing.key");

    let refused = |cert: &Path, key: &Path| {
        let (cert, key) = (cert.to_owned(), key.to_owned());
        async move {
            let db = TestDatabase::new(Backend::Sqlite).await;
            let mut settings = ServeSettings::new("127.0.0.1:0".parse().expect("addr"), &db.url);
            settings.key.secret_key = Some(Secret::from(&SecretKey::generate()));
            settings.tls_cert = Some(cert);
            settings.tls_key = Some(key);
            match server::start(&settings).await {
                Err(StartError::Tls(error)) => error,
                Err(other) => panic!("refused for another reason: {other}"),
                Ok(_) => panic!("started with a bad certificate or key"),
            }
        }
    };

    let error = refused(&cert, &missing).await;
    assert!(matches!(error, TlsError::Read { .. }), "{error:?}");
    assert!(error.to_string().contains("missing.key"), "{error}");

    let error = refused(&cert, &other_key).await;
    assert!(matches!(error, TlsError::KeyMismatch { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("other.key") && message.contains("server.crt"),
        "{message}"
    );

    let error = refused(&key, &key).await;
    assert!(matches!(error, TlsError::NoCertificate { .. }), "{error:?}");
    assert!(error.to_string().contains("server.key"), "{error}");
}

#[tokio::test]
async fn a_certificate_without_its_key_refuses_to_start() {
    let files = Files::new();
    let ca = TestCa::new("test CA");
    let (cert, _) = files.write_issued("server", &ca.server("replyguard"));
    let db = TestDatabase::new(Backend::Sqlite).await;
    let mut settings = ServeSettings::new("127.0.0.1:0".parse().expect("addr"), &db.url);
    settings.key.secret_key = Some(Secret::from(&SecretKey::generate()));
    settings.tls_cert = Some(cert);

    match server::start(&settings).await {
        Err(error @ StartError::Tls(TlsError::Unpaired { .. })) => assert!(
            error.to_string().contains("--tls-key"),
            "the message names the missing setting: {error}"
        ),
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("started with a certificate and no key"),
    }
}
