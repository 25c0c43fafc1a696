//! Credentials: one tower layer checks every call before any handler runs.
//!
//! The layer also opens each call's tracing span with a request id. Handlers
//! then ask the named checks here, before anything else, whether the caller's
//! token carries the scope the call needs and which site it may touch; a
//! caller never reaches another site's data, whatever ids it sends.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use futures_util::future::BoxFuture;
use tonic::{Request, Status, body::Body};
use tower::{Layer, Service};
use tracing::Instrument;
use uuid::Uuid;

use crate::{
    ids::SiteId,
    metrics,
    moderation::Scope,
    privacy::token_digest,
    store::{Credential, Role, Site, Store},
};

use super::error::store_status;

const COMMENTS_PATH: &str = "/replyguard.v1.Comments/";
const MODERATION_PATH: &str = "/replyguard.v1.Moderation/";

/// Wraps the whole router: authenticates `Comments` and `Moderation` calls.
#[derive(Clone)]
pub struct AuthLayer {
    store: Arc<dyn Store>,
}

impl AuthLayer {
    pub fn new(store: Arc<dyn Store>) -> Self {
        AuthLayer { store }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            store: self.store.clone(),
        }
    }
}

/// The service [`AuthLayer`] makes.
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    store: Arc<dyn Store>,
}

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

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // The clone is not ready; the polled one goes into the future.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let store = self.store.clone();
        let path = request.uri().path();
        let role = if path.starts_with(COMMENTS_PATH) {
            Some(Role::Host)
        } else if path.starts_with(MODERATION_PATH) {
            Some(Role::Moderator)
        } else {
            None
        };
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
                if let Some(role) = role {
                    match authenticate(store.as_ref(), request.headers(), role).await {
                        Ok(credential) => {
                            tracing::Span::current().record("actor", credential.prefix.as_str());
                            request.extensions_mut().insert(credential);
                        }
                        Err(status) => {
                            tracing::info!(code = ?status.code(), "call refused");
                            let response = status.into_http();
                            record(&path, &response, started);
                            return Ok(response);
                        }
                    }
                }
                let response = inner.call(request).await?;
                record(&path, &response, started);
                Ok(response)
            }
            .instrument(span),
        )
    }
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

async fn authenticate(
    store: &dyn Store,
    headers: &http::HeaderMap,
    role: Role,
) -> Result<Credential, Status> {
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
            Status::unauthenticated("missing credential: send `authorization: Bearer <token>`")
        })?;
    let credential = store
        .credential(&token_digest(token))
        .await
        .map_err(store_status)?
        .ok_or_else(|| Status::unauthenticated("unknown or revoked credential"))?;
    if credential.role != role {
        return Err(Status::permission_denied(match role {
            Role::Host => "this service takes a site key",
            Role::Moderator => "this service takes a moderator token",
        }));
    }
    Ok(credential)
}

/// The credential the layer attached to a call.
pub fn caller<T>(request: &Request<T>) -> Result<Credential, Status> {
    request
        .extensions()
        .get::<Credential>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("missing credential"))
}

/// The caller, if their token carries `scope`; PERMISSION_DENIED naming the
/// missing scope otherwise. Every `Moderation` handler starts here.
pub fn caller_with_scope<T>(request: &Request<T>, scope: Scope) -> Result<Credential, Status> {
    let credential = caller(request)?;
    if !credential.has_scope(scope) {
        return Err(Status::permission_denied(format!(
            "this token lacks the `{scope}` scope; the operator can issue one with \
             `replyguard token add --scopes {scope},...`"
        )));
    }
    Ok(credential)
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
        .await
        .map_err(store_status)?
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
                .await
                .map_err(store_status)?
                .ok_or_else(|| Status::permission_denied("this token's site no longer exists")),
            _ => Err(super::error::invalid_field(
                "site",
                "is required: this token covers several sites",
            )),
        };
    }
    let site = store.site_by_name(name).await.map_err(store_status)?;
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
