//! Authentication and authorization as tower layers and axum extractors.
//!
//! [`AuthLayer`] authenticates every request through an
//! [`Authenticator`] and puts the [`Principal`] (and the [`Session`], for
//! cookie requests) in the request's extensions; a failure is answered by
//! the error handler (401 with `WWW-Authenticate`, 403 for CSRF); a refused
//! session cookie is also cleared (`Set-Cookie` with `Max-Age=0`). Handlers
//! then take `Principal` as an extractor: since only `rampart::auth` can
//! make one, a handler that takes it cannot run unauthenticated.
//! [`RequireLayer`] checks a permission requirement in front of a route
//! (403 listing what is missing). `AuthLayer` also puts the verified
//! [`Identity`] in the extensions, so a [`RateLimitLayer`](super::RateLimitLayer)
//! inside it can count per subject or API key; outside it, those key parts
//! fall back to the client address.
//!
//! With [`AuthLayer::lockout`], repeated failures lock the client (its
//! address as [`ClientIpLayer`](super::ClientIpLayer) resolved it) and the
//! credential out: 429 `AUTH_LOCKED_OUT` with `Retry-After`. See
//! [`Lockout`]. A lockout needs the client address: an app served without
//! `ConnectInfo` (plain
//! `axum::serve(listener, app)`) gets a 500 for every request and an error
//! log naming `into_make_service_with_connect_info::<SocketAddr>()`, rather
//! than failures no client is charged with, which would lock a credential's
//! holder out along with its guesser.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::{get, post}};
//! use rampart::auth::{AuthConfig, Authenticator, Principal, require};
//! use rampart::clock::SystemClock;
//! use rampart::config::Section;
//! use rampart::http::auth::{AuthLayer, RequireLayer};
//!
//! async fn me(principal: Principal) -> String {
//!     principal.subject().to_owned()
//! }
//!
//! async fn create_order(_principal: Principal) -> &'static str {
//!     "created"
//! }
//!
//! let config = AuthConfig::from_value(serde_json::json!({})).unwrap();
//! let auth = Authenticator::new(&config).unwrap();
//! let app: Router = Router::new()
//!     .route("/orders", post(create_order).layer(RequireLayer::new(require("orders:write"))))
//!     .route("/me", get(me))
//!     .layer(AuthLayer::new(auth));
//! # let _ = app;
//! ```

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::header::SET_COOKIE;
use http::request::Parts;
use http::{HeaderValue, Request};
use tower::{Layer, Service};

use super::client::client_addr;
use super::{RenderedError, ResponseFuture, take_ready};
use crate::auth::{
    Authenticator, Lockout, Presented, Principal, Requirement, Session, credentials_required,
};
use crate::client::Identity;
use crate::error::{Error, ErrorKind};

/// Authenticates every request; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct AuthLayer {
    authenticator: Authenticator,
    optional: bool,
    lockout: Option<Arc<Lockout>>,
}

impl AuthLayer {
    /// Every request must authenticate.
    pub fn new(authenticator: Authenticator) -> AuthLayer {
        AuthLayer { authenticator, optional: false, lockout: None }
    }

    /// Requests without any credential pass through without a principal
    /// (handlers may take `Option<Principal>`); a credential that is
    /// present but wrong is still refused.
    pub fn optional(authenticator: Authenticator) -> AuthLayer {
        AuthLayer { optional: true, ..AuthLayer::new(authenticator) }
    }

    /// Counts failures and refuses locked clients and credentials. The app
    /// must be served with `into_make_service_with_connect_info::<SocketAddr>()`
    /// (see the [module documentation](self)).
    #[must_use]
    pub fn lockout(mut self, lockout: Arc<Lockout>) -> AuthLayer {
        self.lockout = Some(lockout);
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth { inner, layer: self.clone() }
    }
}

/// The service [`AuthLayer`] makes.
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S, B> Service<Request<B>> for Auth<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let mut inner = take_ready(&mut self.inner);
        let layer = self.layer.clone();
        Box::pin(async move {
            let auth = &layer.authenticator;
            let presented = auth.presented(request.headers());
            if layer.optional && presented == Presented::Nothing {
                return inner.call(request).await;
            }
            let checked = match layer.lockout.as_deref().filter(|lockout| lockout.is_enabled()) {
                None => auth
                    .check(request.method(), request.headers(), &presented)
                    .map_err(|refusal| refusal.error),
                Some(lockout) => match client_addr(request.extensions()) {
                    Ok(client) => {
                        let (method, headers) = (request.method(), request.headers());
                        auth.guarded(method, headers, &presented, client, lockout).await
                    }
                    Err(err) => Err(err),
                },
            };
            match checked {
                Ok(found) => {
                    let (principal, session) = found.into_parts();
                    // What a rate limit inside this layer keys on (verified, not claimed).
                    let identity = Identity {
                        subject: Some(principal.subject().to_owned()),
                        api_key_id: principal.api_key_id().map(str::to_owned),
                    };
                    request.extensions_mut().insert(identity.clone());
                    request.extensions_mut().insert(principal);
                    if let Some(session) = session {
                        request.extensions_mut().insert(session);
                    }
                    let mut response = inner.call(request).await?;
                    // A refusal further in is this subject's: the monitor counts it so.
                    if response.extensions().get::<RenderedError>().is_some() {
                        response.extensions_mut().insert(identity);
                    }
                    Ok(response)
                }
                Err(err) => {
                    // A refused session cookie is cleared, so a browser holding
                    // an old one stops sending it.
                    let clear = matches!(presented, Presented::Session(_))
                        && err.kind() == ErrorKind::Authentication;
                    let mut response = err.into_response();
                    if clear
                        && let Some(sessions) = auth.sessions()
                        && let Ok(removal) = HeaderValue::from_str(&sessions.removal_cookie())
                    {
                        response.headers_mut().append(SET_COOKIE, removal);
                    }
                    Ok(response)
                }
            }
        })
    }
}

/// Checks a [`Requirement`] against the request's principal: 401 when
/// there is none, 403 listing the missing permissions when it falls short.
#[derive(Debug, Clone)]
pub struct RequireLayer {
    requirement: Arc<Requirement>,
}

impl RequireLayer {
    /// Requires `requirement` (from [`require`](crate::auth::require),
    /// [`all_of`](crate::auth::all_of) or [`any_of`](crate::auth::any_of)).
    pub fn new(requirement: Requirement) -> RequireLayer {
        RequireLayer { requirement: Arc::new(requirement) }
    }
}

impl<S> Layer<S> for RequireLayer {
    type Service = Require<S>;

    fn layer(&self, inner: S) -> Require<S> {
        Require { inner, requirement: Arc::clone(&self.requirement) }
    }
}

/// The service [`RequireLayer`] makes.
#[derive(Debug, Clone)]
pub struct Require<S> {
    inner: S,
    requirement: Arc<Requirement>,
}

impl<S, B> Service<Request<B>> for Require<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let verdict = match request.extensions().get::<Principal>() {
            None => Err(credentials_required()),
            Some(principal) => principal.authorize(&self.requirement),
        };
        match verdict {
            Ok(()) => {
                let mut inner = take_ready(&mut self.inner);
                Box::pin(async move { inner.call(request).await })
            }
            Err(err) => Box::pin(async move { Ok(err.into_response()) }),
        }
    }
}

/// The authenticated principal; a 401 when [`AuthLayer`] did not put one
/// in the request.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Principal, Error> {
        parts.extensions.get::<Principal>().cloned().ok_or_else(credentials_required)
    }
}

/// The principal when there is one (behind [`AuthLayer::optional`]).
impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Principal>, Infallible> {
        Ok(parts.extensions.get::<Principal>().cloned())
    }
}

/// The session of a cookie-authenticated request (to rotate or end it); a
/// 401 for requests that did not use one.
impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Session, Error> {
        parts.extensions.get::<Session>().cloned().ok_or_else(credentials_required)
    }
}
