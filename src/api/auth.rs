//! Credentials: one tower layer checks every call before any handler runs, within the
//! limits [`Guard`] keeps.
//!
//! The layer also opens each call's tracing span with a request id. Handlers
//! then ask the named checks here, before anything else, whether the caller's
//! token carries the scope the call needs and which site it may touch; a
//! caller never reaches another site's data, whatever ids it sends.

use std::{
    net::IpAddr,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use futures_util::future::BoxFuture;
use tonic::{
    Code, Request, Status,
    body::Body,
    transport::server::{TcpConnectInfo, TlsConnectInfo},
};
use tower::{Layer, Service};
use tracing::Instrument;
use uuid::Uuid;

use crate::{
    domain::Scope,
    ids::SiteId,
    metrics,
    privacy::{is_token_shaped, token_digest},
    store::{Credential, Role, Site, Store},
};

use super::{
    error::invalid_field,
    guard::{AuthFailure, COMMENTS_MAX_MESSAGE_BYTES, Guard, MODERATION_MAX_MESSAGE_BYTES, Peer},
};

const COMMENTS_PATH: &str = "/replyguard.v1.Comments/";
const MODERATION_PATH: &str = "/replyguard.v1.Moderation/";
const INTEGRATIONS_PATH: &str = "/replyguard.v1.Integrations/";
const HEALTH_PATH: &str = "/grpc.health.v1.Health/";

/// Wraps the whole router: authenticates `Comments` and `Moderation` calls, within the
/// server's limits.
#[derive(Clone)]
pub struct AuthLayer {
    store: Arc<dyn Store>,
    guard: Arc<Guard>,
}

impl AuthLayer {
    pub fn new(store: Arc<dyn Store>, guard: Arc<Guard>) -> Self {
        AuthLayer { store, guard }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            store: self.store.clone(),
            guard: self.guard.clone(),
        }
    }
}

/// The service [`AuthLayer`] makes.
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    store: Arc<dyn Store>,
    guard: Arc<Guard>,
}

/// The digest of the token that authenticated a call, for calls that read it again while
/// they last (`WatchQueue`).
#[derive(Clone, Copy)]
pub struct TokenDigest(pub [u8; 32]);

impl<S> Service<http::Request<Body>> for Authenticated<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The clone is not ready; the polled one goes into the future.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let store = self.store.clone();
        let guard = self.guard.clone();
        let path = request.uri().path();
        let span = tracing::info_span!(
            "rpc",
            method = %path,
            request_id = %request_id(&request),
            actor = tracing::field::Empty,
        );
        let path = path.to_owned();
        Box::pin(
            async move {
                let started = Instant::now();
                let response = guarded(store, guard, &path, request, inner).await?;
                record(&path, &response, started);
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// One call, within the server's limits: a place among the calls in flight (health checks
/// need none), the caller's credential, and the deadline around all of it.
async fn guarded<S>(
    store: Arc<dyn Store>,
    guard: Arc<Guard>,
    path: &str,
    mut request: http::Request<Body>,
    mut inner: S,
) -> Result<http::Response<Body>, S::Error>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
{
    let _place = if path.starts_with(HEALTH_PATH) {
        None
    } else {
        match guard.enter() {
            Ok(place) => Some(place),
            Err(status) => return Ok(status.into_http()),
        }
    };
    let deadline = guard.deadline(request.headers());
    let call = async {
        let role = if path.starts_with(COMMENTS_PATH) {
            Some(Role::Host)
        } else if path.starts_with(MODERATION_PATH) || path.starts_with(INTEGRATIONS_PATH) {
            Some(Role::Moderator)
        } else {
            None
        };
        if let Some(role) = role {
            let peer = Peer::of(remote_addr(&request));
            match authenticate(store.as_ref(), &guard, request.headers(), role, peer).await {
                Ok((credential, digest)) => {
                    tracing::Span::current().record("actor", credential.prefix.as_str());
                    request.extensions_mut().insert(credential);
                    request.extensions_mut().insert(TokenDigest(digest));
                }
                Err(status) => {
                    // Counted by the metrics; at info, a flood of forged tokens would flood the log.
                    tracing::debug!(code = ?status.code(), "call refused");
                    return Ok(status.into_http());
                }
            }
        }
        inner
            .call(request)
            .await
            .map(|response| sized(path, response))
    };
    match tokio::time::timeout(deadline, call).await {
        Ok(response) => response,
        Err(_) => {
            metrics::record_refused("deadline");
            Ok(Status::deadline_exceeded(format!(
                "the call did not finish within its deadline of {} ms",
                deadline.as_millis()
            ))
            .into_http())
        }
    }
}

/// tonic refuses a request larger than its service takes with `OUT_OF_RANGE` before
/// decoding it; gRPC names that `RESOURCE_EXHAUSTED`, and the caller is told the limit. No
/// handler answers `OUT_OF_RANGE` itself.
fn sized(path: &str, response: http::Response<Body>) -> http::Response<Body> {
    // Only a refusal before any work answers with its status in the headers; a handler's
    // answer carries it in the trailers.
    let too_large = Status::from_header_map(response.headers()).is_some_and(|status| {
        status.code() == Code::OutOfRange && status.message().contains("too large")
    });
    if !too_large {
        return response;
    }
    metrics::record_refused("message_size");
    let limit = if path.starts_with(MODERATION_PATH) {
        MODERATION_MAX_MESSAGE_BYTES
    } else {
        COMMENTS_MAX_MESSAGE_BYTES
    };
    Status::resource_exhausted(format!(
        "the request is larger than the {limit} bytes this service takes"
    ))
    .into_http()
}

/// The client's address, over TCP or TLS.
fn remote_addr(request: &http::Request<Body>) -> Option<IpAddr> {
    let extensions = request.extensions();
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|info| info.get_ref().remote_addr())
        })
        .map(|addr| addr.ip())
}

fn record(path: &str, response: &http::Response<Body>, started: Instant) {
    let status = response
        .headers()
        .get("grpc-status")
        .and_then(|value| value.to_str().ok());
    metrics::record_call(path, status, started.elapsed());
}

/// The caller's request id, or a new one; bounded so a header cannot bloat logs.
fn request_id(request: &http::Request<Body>) -> String {
    request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= 64)
        .map_or_else(|| Uuid::now_v7().to_string(), str::to_owned)
}

/// The caller's credential, and the digest it was found by. What no live token can be is
/// refused without a read: a token of the wrong shape, and while the address is over its
/// budget of unknown ones, any token this server has not seen succeed lately.
async fn authenticate(
    store: &dyn Store,
    guard: &Guard,
    headers: &http::HeaderMap,
    role: Role,
    peer: Peer,
) -> Result<(Credential, [u8; 32]), Status> {
    let failed = |reason: AuthFailure, status: Status| {
        metrics::record_auth_failure(reason.as_str());
        status
    };
    let token = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            failed(
                AuthFailure::Missing,
                Status::unauthenticated("missing credential: send `authorization: Bearer <token>`"),
            )
        })?;
    if !is_token_shaped(token) {
        return Err(failed(
            AuthFailure::Malformed,
            Status::unauthenticated(
                "malformed credential: a replyguard token is `rg_site_` or `rg_mod_` and 43 \
                 characters",
            ),
        ));
    }
    let digest = token_digest(token);
    let proven = guard.proven(&digest);
    if !proven {
        guard.may_look_up(peer)?;
    }
    // The store remembers a token it found unknown, so repeating one costs no read.
    let Some(credential) = store.credential(&digest).await? else {
        guard.looked_up_in_vain(peer);
        return Err(failed(
            AuthFailure::Unknown,
            Status::unauthenticated("unknown or revoked credential"),
        ));
    };
    if !proven {
        guard.remember_proven(digest);
    }
    if credential.role != role {
        return Err(failed(
            AuthFailure::WrongService,
            Status::permission_denied(match role {
                Role::Host => "this service takes a site key",
                Role::Moderator => "this service takes a moderator token",
            }),
        ));
    }
    guard.spend_call(&credential)?;
    if guard.use_to_record(credential.id) {
        // Only for `token list`: a call is not refused for want of this write.
        if let Err(err) = store.token_used(credential.id, chrono::Utc::now()).await {
            tracing::warn!(error = %err, "recording a token's use");
        }
    }
    Ok((credential, digest))
}

/// The credential the layer attached to a call.
pub fn caller<T>(request: &Request<T>) -> Result<Credential, Status> {
    request
        .extensions()
        .get::<Credential>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("missing credential"))
}

/// The caller, if their token carries `scope`; PERMISSION_DENIED otherwise, with the
/// operator's command that issues a token like this one with the scope added. Every
/// `Moderation` and `Integrations` handler starts here.
pub async fn caller_with_scope<T>(
    store: &dyn Store,
    request: &Request<T>,
    scope: Scope,
) -> Result<Credential, Status> {
    let credential = caller(request)?;
    if credential.has_scope(scope) {
        return Ok(credential);
    }
    let mut command = String::from("replyguard token add");
    for site in &credential.sites {
        if let Some(site) = store.site_by_id(*site).await? {
            command.push_str(&format!(" --site {}", site.name));
        }
    }
    let mut scopes = credential.scopes.clone();
    scopes.push(scope);
    scopes.sort();
    scopes.dedup();
    let scopes: Vec<String> = scopes.iter().map(ToString::to_string).collect();
    command.push_str(&format!(
        " --role {} --scopes {}",
        credential.role.as_str(),
        scopes.join(",")
    ));
    Err(Status::permission_denied(format!(
        "this token lacks the `{scope}` scope; the operator can issue one with `{command}`"
    )))
}

/// The id of the one site a site key belongs to: enough for reads, which
/// need no policy.
pub fn host_site_id(credential: &Credential) -> Result<SiteId, Status> {
    match credential.sites.as_slice() {
        [site] => Ok(*site),
        _ => Err(Status::permission_denied(
            "this key is not bound to one site",
        )),
    }
}

/// The one site a site key belongs to, with its policy.
pub async fn host_site(store: &dyn Store, credential: &Credential) -> Result<Site, Status> {
    let site = host_site_id(credential)?;
    store
        .site_by_id(site)
        .await?
        .ok_or_else(|| Status::permission_denied("this key's site no longer exists"))
}

/// The site a moderator names (or the only one their token covers), if the
/// token covers it.
pub async fn moderated_site(
    store: &dyn Store,
    credential: &Credential,
    name: &str,
) -> Result<Site, Status> {
    if name.is_empty() {
        return match credential.sites.as_slice() {
            [only] => store
                .site_by_id(*only)
                .await?
                .ok_or_else(|| Status::permission_denied("this token's site no longer exists")),
            sites => {
                let mut names = Vec::with_capacity(sites.len());
                for site in sites {
                    if let Some(site) = store.site_by_id(*site).await? {
                        names.push(site.name);
                    }
                }
                names.sort();
                Err(invalid_field(
                    "site",
                    &format!(
                        "is required: this token covers several sites ({})",
                        names.join(", ")
                    ),
                ))
            }
        };
    }
    let site = store.site_by_name(name).await?;
    match site {
        Some(site) if may_moderate(credential, site.id) => Ok(site),
        _ => Err(Status::permission_denied(format!(
            "this token does not cover site {name:?}"
        ))),
    }
}

/// Whether a moderator token covers a site.
pub fn may_moderate(credential: &Credential, site: SiteId) -> bool {
    credential.role == Role::Moderator && credential.sites.contains(&site)
}
