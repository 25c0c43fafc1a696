//! The connection to the server and the credential every call carries.
//!
//! The token goes into request metadata and nowhere else: never into an error
//! message, a log line or output.

use std::time::Duration;

use replyguard::{
    proto::{
        comments_client::CommentsClient, integrations_client::IntegrationsClient,
        moderation_client::ModerationClient,
    },
    tls::ClientTls,
};
use tonic::{
    Request, Status,
    metadata::{AsciiMetadataValue, errors::InvalidMetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint},
};

use crate::{cli::Token, error::CliError};

/// How long to wait for the server to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Pings on an idle connection, so `watch` notices a server that went away
/// instead of waiting forever.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// A client of either service, authenticated with the same token.
pub type Authed = InterceptedService<Channel, Bearer>;

/// Both services' clients over one connection.
pub struct Clients {
    pub comments: CommentsClient<Authed>,
    pub moderation: ModerationClient<Authed>,
    pub integrations: IntegrationsClient<Authed>,
}

/// Connects to `endpoint`, over TLS as `tls` says for `https://`, and prepares clients that send
/// `token` on every call.
pub async fn connect(
    endpoint: &str,
    tls: &ClientTls,
    token: Option<&Token>,
) -> Result<Clients, CliError> {
    let bearer = Bearer::new(token).map_err(|_| CliError::BadToken)?;
    let target =
        Endpoint::from_shared(endpoint.to_owned()).map_err(|source| CliError::Connect {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    let channel = tls
        .configure(target)?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_while_idle(true)
        .connect()
        .await
        .map_err(|source| CliError::Connect {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    Ok(Clients {
        comments: CommentsClient::with_interceptor(channel.clone(), bearer.clone()),
        integrations: IntegrationsClient::with_interceptor(channel.clone(), bearer.clone()),
        moderation: ModerationClient::with_interceptor(channel, bearer),
    })
}

/// Adds `authorization: Bearer <token>` to every request.
#[derive(Clone)]
pub struct Bearer(Option<AsciiMetadataValue>);

impl Bearer {
    fn new(token: Option<&Token>) -> Result<Self, InvalidMetadataValue> {
        let Some(token) = token else {
            // Without a token the server answers UNAUTHENTICATED, which says
            // more than a client-side guess would.
            return Ok(Self(None));
        };
        let mut value = AsciiMetadataValue::try_from(format!("Bearer {}", token.expose()))?;
        // Keeps the value out of the HTTP/2 header compression table and out
        // of `Debug` output.
        value.set_sensitive(true);
        Ok(Self(Some(value)))
    }
}

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
