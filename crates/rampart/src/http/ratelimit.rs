//! The rate-limit layer ([`RateLimitLayer`]).

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::MatchedPath;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use tower::{Layer, Service};

use super::client::client_addr;
use super::response::unlogged;
use super::{ResponseFuture, take_ready};
use crate::client::Identity;
use crate::clock::ceil_secs;
use crate::error::Error;
use crate::ratelimit::key::{KeyInputs, KeyPart, build_key};
use crate::ratelimit::settings::check_name;
use crate::ratelimit::{Decision, Limiter, Quota, RateLimitSettings, RateLimiter};

/// `RateLimit-Policy`.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The rate-limit layer: keys each request, asks a [`RateLimiter`], and
/// answers a denial with 429, `Retry-After` and the problem body.
///
/// Responses carry the fields of draft-ietf-httpapi-ratelimit-headers-10
/// (structured fields): `RateLimit-Policy: "default";q=100;w=60` (the quota:
/// `q` requests per `w` seconds) and `RateLimit: "default";r=42;t=17` (`r`
/// requests left, `t` seconds until the quota is whole again).
///
/// The client address is the one [`ClientIpLayer`](super::ClientIpLayer)
/// resolved (or the socket peer); without one, a key that needs the address
/// is a configuration error (500), never one shared bucket for everyone.
/// Routes are axum's matched route templates.
///
/// In shadow mode every request passes: would-be denials are logged (target
/// `rampart::ratelimit`) and counted, and no rate-limit fields are sent, so
/// clients do not slow down on a limit that is only being tried out.
///
/// Denials are counted (`rampart_ratelimit_decisions_total`) but not logged
/// one by one: a flood of 429s must not become a flood of log lines.
///
/// Built by [`from_settings`](RateLimitLayer::from_settings) from a section
/// with `enabled = false`, the layer lets every request through untouched:
/// no check, no fields, no count.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use rampart::http::RateLimitLayer;
/// use rampart::ratelimit::{MemoryLimiter, Quota};
/// use rampart::ratelimit::key::KeyPart;
///
/// let limiter = MemoryLimiter::new(Quota::new(100, Duration::from_secs(60))?);
/// let layer = RateLimitLayer::new(limiter)
///     .key(vec![KeyPart::Ip, KeyPart::Route])
///     .name("orders")?;
/// let app: Router = Router::new().route("/orders", get(|| async { "ok" })).layer(layer);
/// # let _ = app;
/// # Ok::<(), rampart::Error>(())
/// ```
pub struct RateLimitLayer<L> {
    shared: Arc<Shared<L>>,
}

struct Shared<L> {
    /// `rate_limit.enabled`: when false, requests pass untouched.
    enabled: bool,
    limiter: Arc<L>,
    key: Vec<KeyPart>,
    shadow: bool,
    name: String,
    policy: HeaderValue,
}

impl<L: RateLimiter> RateLimitLayer<L> {
    /// Limits by client IP, trusting no proxy, under the policy name
    /// `default`.
    pub fn new(limiter: L) -> RateLimitLayer<L> {
        let quota = limiter.quota();
        RateLimitLayer {
            shared: Arc::new(Shared {
                enabled: true,
                limiter: Arc::new(limiter),
                key: vec![KeyPart::Ip],
                shadow: false,
                policy: policy_value("default", &quota),
                name: "default".into(),
            }),
        }
    }

    fn with(mut self, f: impl FnOnce(&mut Shared<L>)) -> RateLimitLayer<L> {
        // Copies the settings if this layer was cloned; the limiter stays shared.
        f(Arc::make_mut(&mut self.shared));
        self
    }

    /// What requests are counted against (default: the client IP).
    #[must_use]
    pub fn key(self, parts: Vec<KeyPart>) -> RateLimitLayer<L> {
        self.with(|s| s.key = parts)
    }

    /// Decide and log, but let every request through.
    #[must_use]
    pub fn shadow(self, shadow: bool) -> RateLimitLayer<L> {
        self.with(|s| s.shadow = shadow)
    }

    /// The policy name in the rate-limit fields (default `default`).
    ///
    /// # Errors
    /// A configuration error (`rate_limit.name`) unless the name is 1 to 64
    /// letters, digits, `-`, `_` and `.`, as the settings require.
    pub fn name(self, name: &str) -> Result<RateLimitLayer<L>, Error> {
        check_name(name)?;
        Ok(self.with(|s| {
            s.policy = policy_value(name, &s.limiter.quota());
            name.clone_into(&mut s.name);
        }))
    }
}

impl RateLimitLayer<Limiter> {
    /// The layer a `rate_limit` section describes; with `enabled = false`,
    /// a layer that lets every request through untouched.
    ///
    /// # Errors
    /// When the limiter cannot be built (see [`RateLimitSettings::limiter`])
    /// or the name is invalid (settings made by hand, not validated).
    pub fn from_settings(settings: &RateLimitSettings) -> Result<RateLimitLayer<Limiter>, Error> {
        let layer = RateLimitLayer::new(settings.limiter()?)
            .key(settings.key.clone())
            .shadow(settings.shadow)
            .name(&settings.name)?;
        Ok(layer.with(|s| s.enabled = settings.enabled))
    }
}

impl<L> Clone for RateLimitLayer<L> {
    fn clone(&self) -> Self {
        RateLimitLayer { shared: self.shared.clone() }
    }
}

impl<L> fmt::Debug for RateLimitLayer<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("enabled", &self.shared.enabled)
            .field("name", &self.shared.name)
            .field("key", &self.shared.key)
            .field("shadow", &self.shared.shadow)
            .finish_non_exhaustive()
    }
}

impl<S, L> Layer<S> for RateLimitLayer<L> {
    type Service = RateLimit<S, L>;

    fn layer(&self, inner: S) -> RateLimit<S, L> {
        RateLimit { inner, shared: self.shared.clone() }
    }
}

/// The service [`RateLimitLayer`] wraps around another.
pub struct RateLimit<S, L> {
    inner: S,
    shared: Arc<Shared<L>>,
}

impl<S: Clone, L> Clone for RateLimit<S, L> {
    fn clone(&self) -> Self {
        RateLimit { inner: self.inner.clone(), shared: self.shared.clone() }
    }
}

impl<S, L> fmt::Debug for RateLimit<S, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit").field("name", &self.shared.name).finish_non_exhaustive()
    }
}

impl<S, L, B> Service<Request<B>> for RateLimit<S, L>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send,
    L: RateLimiter + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let mut inner = take_ready(&mut self.inner);
        let shared = self.shared.clone();
        Box::pin(async move {
            if !shared.enabled {
                return inner.call(request).await;
            }
            let decision = match shared.key_of(&request) {
                Ok(key) => shared.limiter.check(&key, 1).await,
                Err(err) => Err(err),
            };
            let outcome = match (&decision, shared.shadow) {
                (Ok(d), _) if d.is_allowed() => "allowed",
                (_, true) => "shadow_denied",
                (Ok(_), false) => "denied",
                (Err(_), false) => "error",
            };
            metrics::counter!(
                "rampart_ratelimit_decisions_total",
                "policy" => shared.name.clone(),
                "outcome" => outcome
            )
            .increment(1);
            if shared.shadow {
                if outcome == "shadow_denied" {
                    tracing::info!(
                        target: crate::ratelimit::LOG_TARGET,
                        policy = %shared.name,
                        path = request.uri().path(),
                        retry_after_ms = decision.as_ref().ok().and_then(Decision::retry_after).map(|d| d.as_millis()),
                        error = decision.as_ref().err().map(|e| e.message().to_owned()),
                        "shadow mode: this request would have been refused"
                    );
                }
                return inner.call(request).await;
            }
            match decision {
                Ok(d @ Decision::Allowed { .. }) => {
                    let mut response = inner.call(request).await?;
                    shared.add_fields(response.headers_mut(), &d);
                    Ok(response)
                }
                Ok(d @ Decision::Denied { retry_after, .. }) => {
                    let mut response = unlogged(Error::rate_limited(retry_after));
                    shared.add_fields(response.headers_mut(), &d);
                    Ok(response)
                }
                Err(err) => Ok(err.into_response()),
            }
        })
    }
}

impl<L> Clone for Shared<L> {
    fn clone(&self) -> Self {
        Shared {
            enabled: self.enabled,
            limiter: self.limiter.clone(),
            key: self.key.clone(),
            shadow: self.shadow,
            name: self.name.clone(),
            policy: self.policy.clone(),
        }
    }
}

impl<L> Shared<L> {
    fn key_of<B>(&self, request: &Request<B>) -> Result<String, Error> {
        let needs_ip = self.key.iter().any(|part| *part != KeyPart::Route);
        let client_ip = if needs_ip {
            client_addr(request.extensions())?
        } else {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        };
        let inputs = KeyInputs {
            client_ip,
            route: request.extensions().get::<MatchedPath>().map(MatchedPath::as_str),
            identity: request.extensions().get::<Identity>(),
        };
        Ok(build_key(&self.key, &inputs))
    }

    fn add_fields(&self, headers: &mut HeaderMap, decision: &Decision) {
        headers.insert(RATELIMIT_POLICY, self.policy.clone());
        let value = format!(
            "\"{}\";r={};t={}",
            self.name,
            decision.remaining(),
            ceil_secs(decision.reset_after())
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(RATELIMIT, value);
        }
    }
}

fn policy_value(name: &str, quota: &Quota) -> HeaderValue {
    let value = format!("\"{name}\";q={};w={}", quota.requests(), ceil_secs(quota.window()).max(1));
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("\"default\""))
}
