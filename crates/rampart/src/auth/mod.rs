//! Authentication and authorization: who is calling, and may they do this.
//!
//! - [`Principal`]: what a successful check yields; only this module can
//!   make one, so a handler that takes one cannot run unauthenticated.
//! - [`JwtVerifier`] / [`TokenIssuer`]: bearer JWTs with keys pinned to
//!   algorithms, JWKS files reloaded safely, a verified-token cache.
//! - [`ApiKeyStore`] / [`NewApiKey`]: `rk_...` keys stored as hashes.
//! - [`PermissionSet`], [`require`], [`any_of`], [`all_of`], [`RoleMap`]:
//!   permissions with wildcards, and roles.
//! - [`SessionManager`]: encrypted `__Host-` session cookies with idle and
//!   absolute expiry, rotation, logout and CSRF defence.
//! - [`Lockout`]: repeated failures per client and per credential lock
//!   them out for a growing time, through the rate-limit backend.
//!
//! Settings come from the `[auth]` table, validated once into an
//! [`AuthConfig`] (by the configuration loader, or
//! [`Section::from_value`](crate::config::Section::from_value)). Failures
//! are [`Error`]s: `Authentication` (401, with a `WWW-Authenticate`
//! challenge carrying an RFC 6750 error code), `Authorization` (403,
//! listing the required permissions).
//!
//! ```
//! use std::sync::Arc;
//! use rampart::auth::{ApiKeyStore, AuthConfig, NewApiKey, require};
//! use rampart::config::Section;
//!
//! let key = NewApiKey::generate().unwrap();
//! let config = AuthConfig::from_value(serde_json::json!({
//!     "roles": { "clerk": ["orders:*"] },
//!     "api_keys": [{ "id": key.id(), "name": "billing-job",
//!                    "hash": key.hash().to_string(), "roles": ["clerk"] }]
//! })).unwrap();
//! let keys = ApiKeyStore::new(&config);
//!
//! let principal = keys.verify(key.expose()).unwrap();
//! assert!(principal.authorize(&require("orders:write")).is_ok());
//! let denied = principal.authorize(&require("billing:refund")).unwrap_err();
//! assert_eq!(denied.status().as_u16(), 403);
//! ```

mod api_key;
mod authenticator;
mod config;
mod jwt;
mod lockout;
mod permission;
mod principal;
mod session;

pub use api_key::{ApiKeyHash, ApiKeyStore, NewApiKey, looks_like_api_key};
#[cfg(feature = "http")]
pub(crate) use authenticator::Presented;
pub use authenticator::{API_KEY_HEADER, Authenticated, Authenticator};
pub use config::{AuthConfig, JwtConfig, LockoutConfig, SessionConfig};
pub use jwt::{JwtVerifier, TokenIssuer};
pub use lockout::{LockKey, Lockout};
pub use permission::{Permission, PermissionSet, Requirement, RoleMap, all_of, any_of, require};
pub use principal::{AuthMethod, Principal};
pub use session::{CSRF_COOKIE, CSRF_HEADER, NewSession, Session, SessionManager};

use crate::error::{Code, Error};

/// The realm named in every challenge.
const REALM: &str = "rampart";

/// Why a credential was refused; the `reason` label of
/// `rampart_auth_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    Missing,
    TooLarge,
    Malformed,
    UnknownKey,
    WrongAlgorithm,
    BadSignature,
    BadClaim,
    Expired,
    NotYetValid,
    Revoked,
}

impl Failure {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Failure::Missing => "missing",
            Failure::TooLarge => "too_large",
            Failure::Malformed => "malformed",
            Failure::UnknownKey => "unknown_key",
            Failure::WrongAlgorithm => "wrong_algorithm",
            Failure::BadSignature => "bad_signature",
            Failure::BadClaim => "bad_claim",
            Failure::Expired => "expired",
            Failure::NotYetValid => "not_yet_valid",
            Failure::Revoked => "revoked",
        }
    }
}

/// An authentication failure: counted, and carrying the challenge a 401
/// needs. Bearer credentials (JWTs and API keys) get RFC 6750's
/// `error="invalid_token"`; `message` is a fixed sentence, safe to echo.
pub(crate) fn failure(
    method: AuthMethod,
    reason: Failure,
    code: Code,
    message: &'static str,
) -> Error {
    metrics::counter!(
        "rampart_auth_failures_total",
        "method" => method.as_str(),
        "reason" => reason.as_str()
    )
    .increment(1);
    tracing::debug!(target: "rampart::auth", method = method.as_str(), reason = reason.as_str(), "credential refused");
    let challenge = match method {
        AuthMethod::Jwt | AuthMethod::ApiKey => {
            format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{message}\""
            )
        }
        AuthMethod::Session => format!("Bearer realm=\"{REALM}\""),
    };
    Error::authentication(message).with_code(code).with_challenge(challenge)
}

/// The SHA-256 digest of `data`, by aws-lc (the crypto library JWTs are
/// verified with, so rampart carries one SHA-2 implementation).
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// No credentials at all: a bare challenge, as RFC 6750 section 3.1 asks.
pub fn credentials_required() -> Error {
    metrics::counter!("rampart_auth_failures_total", "method" => "none", "reason" => Failure::Missing.as_str())
        .increment(1);
    Error::authentication("Authentication is required")
        .with_code(crate::error::code::AUTHENTICATION_REQUIRED)
        .with_challenge(format!("Bearer realm=\"{REALM}\""))
}
