//! Bearer JWT verification, with keys pinned to algorithms and a cache of
//! verified tokens; and HS token issuing ([`TokenIssuer`]).
//!
//! What a token must pass, in order (cheap checks first, so garbage costs
//! little):
//!
//! 1. at most `max_token_bytes` (default 8 KiB), three base64url parts:
//!    checked before any decoding or cryptography;
//! 2. a header naming a known `kid` (a token without `kid` is accepted only
//!    when exactly one key exists) and **exactly the algorithm that key is
//!    pinned to**: the header never chooses the key type, so `alg: none`,
//!    or HS256 signed with an RSA public key as the secret, fail here;
//!    a `crit` header is refused (no extension is understood);
//! 3. the signature;
//! 4. the claims: `exp` (required, a number), `nbf` (when present), `iss`
//!    and `aud` (when configured; a token with an `aud` is refused if no
//!    audience is configured, per RFC 7519), `sub` (required), each time
//!    claim with the configured leeway (default 30 s).
//!
//! A verified token is remembered (bounded cache, keyed by the SHA-256 of
//! the token, so only the identical token hits). A hit re-checks `exp` and
//! `nbf` against the clock, and is ignored once the key set changed (a JWKS
//! reload), so the cache never accepts what a full check would refuse.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use rampart::auth::{JwtVerifier, RawAuthConfig, TokenIssuer};
//! use rampart::clock::SystemClock;
//!
//! let raw: RawAuthConfig = serde_json::from_value(serde_json::json!({
//!     "jwt": { "keys": [{ "kid": "k1", "algorithm": "HS256",
//!                         "secret": "an-hs256-secret-of-at-least-32-bytes!" }] }
//! })).unwrap();
//! let config = raw.validate().unwrap();
//! let clock = Arc::new(SystemClock);
//! let issuer = TokenIssuer::new(config.jwt(), None, Duration::from_secs(3600), clock.clone()).unwrap();
//! let verifier = JwtVerifier::new(&config, clock).unwrap();
//!
//! let token = issuer.issue("alice", &["orders:read".into()], &[], None).unwrap();
//! let principal = verifier.verify(&token).unwrap();
//! assert_eq!(principal.subject(), "alice");
//! assert!(principal.has("orders:read"));
//!
//! let err = verifier.verify("not.a.token").unwrap_err();
//! assert_eq!(err.code().as_str(), "TOKEN_INVALID");
//! ```

mod issue;
mod keys;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use quick_cache::sync::Cache;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use issue::TokenIssuer;

use self::keys::KeyRing;
use super::config::AuthConfig;
use super::permission::{Permission, PermissionSet, RoleMap};
use super::principal::{AuthMethod, Principal};
use super::{Failure, failure};
use crate::clock::Clock;
use crate::error::{Code, Error, code};

/// Verifies bearer JWTs; see the [module documentation](self).
pub struct JwtVerifier {
    ring: KeyRing,
    rules: ClaimRules,
    roles: RoleMap,
    max_token_bytes: usize,
    cache: Option<Cache<[u8; 32], Arc<CachedToken>>>,
    clock: Arc<dyn Clock>,
    /// Signature checks performed (the expensive part), for tests and stats.
    signature_checks: AtomicU64,
}

struct ClaimRules {
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: u64,
}

struct CachedToken {
    principal: Principal,
    exp: u64,
    nbf: Option<u64>,
    generation: u64,
}

impl JwtVerifier {
    /// Builds a verifier from the `[auth.jwt]` settings (reading the JWKS
    /// file, if one is configured) and the role map.
    pub fn new(config: &AuthConfig, clock: Arc<dyn Clock>) -> Result<JwtVerifier, Error> {
        let jwt = &config.jwt;
        Ok(JwtVerifier {
            ring: KeyRing::new(jwt, Arc::clone(&clock))?,
            rules: ClaimRules {
                issuers: jwt.issuers.clone(),
                audiences: jwt.audiences.clone(),
                leeway: jwt.leeway.as_secs(),
            },
            roles: config.roles.clone(),
            max_token_bytes: jwt.max_token_bytes,
            cache: (jwt.cache_capacity > 0).then(|| Cache::new(jwt.cache_capacity)),
            clock,
            signature_checks: AtomicU64::new(0),
        })
    }

    /// Verifies `token` (without the `Bearer ` prefix).
    pub fn verify(&self, token: &str) -> Result<Principal, Error> {
        if token.len() > self.max_token_bytes {
            return Err(invalid(Failure::TooLarge, "The token is too large"));
        }
        let now = self.unix_now();
        let keys = self.ring.current();
        // Only the identical token hits: the cache never sees a near-miss.
        let digest: Option<[u8; 32]> = self.cache.as_ref().map(|_| Sha256::digest(token).into());
        if let (Some(cache), Some(digest)) = (&self.cache, &digest)
            && let Some(hit) = cache.get(digest)
            && hit.generation == keys.generation
        {
            if let Err(err) = self.rules.check_times(hit.exp, hit.nbf, now) {
                cache.remove(digest);
                return Err(err);
            }
            metrics::counter!("rampart_auth_jwt_cache_total", "result" => "hit").increment(1);
            metrics::counter!("rampart_auth_success_total", "method" => "jwt").increment(1);
            return Ok(hit.principal.clone());
        }
        let Some((message, signature)) = split(token) else {
            return Err(invalid(Failure::Malformed, "The token is malformed"));
        };

        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| invalid(Failure::Malformed, "The token header is malformed"))?;
        if header.crit.is_some() {
            return Err(invalid(Failure::Malformed, "The token has critical header extensions"));
        }
        let kid = header.kid.as_deref();
        let mut keys = keys;
        if keys.find(kid).is_none() && kid.is_some() {
            keys = self.ring.refresh_for_unknown_kid();
        }
        let Some(key) = keys.find(kid) else {
            return Err(invalid(Failure::UnknownKey, "The token's signing key is unknown"));
        };
        if header.alg != key.algorithm {
            return Err(invalid(
                Failure::WrongAlgorithm,
                "The token's algorithm is not allowed for its key",
            ));
        }
        self.signature_checks.fetch_add(1, Ordering::Relaxed);
        let good = jsonwebtoken::crypto::verify(
            signature,
            message.as_bytes(),
            &key.decoding,
            key.algorithm,
        );
        if !matches!(good, Ok(true)) {
            return Err(invalid(Failure::BadSignature, "The token's signature is invalid"));
        }
        let claims = decode_claims(message)?;
        let times = self.rules.check(&claims, now)?;
        let principal = self.principal(claims)?;
        if let (Some(cache), Some(digest)) = (&self.cache, digest) {
            metrics::counter!("rampart_auth_jwt_cache_total", "result" => "miss").increment(1);
            cache.insert(
                digest,
                Arc::new(CachedToken {
                    principal: principal.clone(),
                    exp: times.0,
                    nbf: times.1,
                    generation: keys.generation,
                }),
            );
        }
        metrics::counter!("rampart_auth_success_total", "method" => "jwt").increment(1);
        Ok(principal)
    }

    /// How many times the JWKS file has been read (0 without one).
    pub fn jwks_loads(&self) -> u64 {
        self.ring.reloads()
    }

    /// How many signatures have been checked (cache hits check none).
    pub fn signature_checks(&self) -> u64 {
        self.signature_checks.load(Ordering::Relaxed)
    }

    fn unix_now(&self) -> u64 {
        self.clock.system_time().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }

    fn principal(&self, claims: Map<String, Value>) -> Result<Principal, Error> {
        let Some(subject) = claims.get("sub").and_then(Value::as_str).filter(|s| !s.is_empty())
        else {
            return Err(invalid(Failure::BadClaim, "The token has no subject"));
        };
        let strings = |name: &str| -> Vec<String> {
            match claims.get(name) {
                Some(Value::Array(items)) => {
                    items.iter().filter_map(Value::as_str).map(str::to_owned).collect()
                }
                _ => Vec::new(),
            }
        };
        let roles = strings("roles");
        let mut granted = PermissionSet::new();
        let scope = claims.get("scope").and_then(Value::as_str).unwrap_or("");
        // Unparsable entries grant nothing rather than failing the token.
        for text in strings("permissions").iter().map(String::as_str).chain(scope.split(' ')) {
            if let Ok(permission) = Permission::parse(text) {
                granted.insert(permission);
            }
        }
        let permissions = self.roles.resolve(granted, roles.iter().map(String::as_str));
        let jti = claims.get("jti").and_then(Value::as_str).map(str::to_owned);
        Ok(Principal::new(subject.to_owned(), roles, permissions, AuthMethod::Jwt, jti, claims))
    }
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("keys", &self.ring)
            .field("max_token_bytes", &self.max_token_bytes)
            .field("cache", &self.cache.as_ref().map(Cache::capacity))
            .finish_non_exhaustive()
    }
}

/// `header.payload` and `signature`, if the token has exactly three
/// non-empty base64url parts.
fn split(token: &str) -> Option<(&str, &str)> {
    let (message, signature) = token.rsplit_once('.')?;
    let (header, payload) = message.split_once('.')?;
    let b64url = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (b64url(header) && b64url(payload) && b64url(signature)).then_some((message, signature))
}

fn decode_claims(message: &str) -> Result<Map<String, Value>, Error> {
    let payload = message.split_once('.').map_or("", |(_, p)| p);
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| invalid(Failure::Malformed, "The token payload is malformed"))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| invalid(Failure::Malformed, "The token payload is not a JSON object"))
}

/// A NumericDate: a non-negative JSON number (fractions are cut off).
/// Anything else, strings included, is not a time.
fn numeric_date(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64().filter(|f| f.is_finite() && *f >= 0.0 && *f < 1.0e19).map(|f| {
                // In range and non-negative, checked just above.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let secs = f as u64;
                secs
            })
        }),
        _ => None,
    }
}

impl ClaimRules {
    /// Checks every claim; returns `(exp, nbf)` for the cache.
    fn check(&self, claims: &Map<String, Value>, now: u64) -> Result<(u64, Option<u64>), Error> {
        let exp = match claims.get("exp") {
            None => return Err(invalid(Failure::BadClaim, "The token has no expiry")),
            Some(v) => numeric_date(v)
                .ok_or_else(|| invalid(Failure::BadClaim, "The token's expiry is not a number"))?,
        };
        let nbf = match claims.get("nbf") {
            None => None,
            Some(v) => Some(
                numeric_date(v)
                    .ok_or_else(|| invalid(Failure::BadClaim, "The token's nbf is not a number"))?,
            ),
        };
        self.check_times(exp, nbf, now)?;
        if !self.issuers.is_empty() {
            let iss = claims.get("iss").and_then(Value::as_str);
            if !iss.is_some_and(|iss| self.issuers.iter().any(|i| i == iss)) {
                return Err(invalid(Failure::BadClaim, "The token's issuer is not accepted"));
            }
        }
        let aud: Vec<&str> = match claims.get("aud") {
            None => Vec::new(),
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => {
                let names: Vec<&str> = many.iter().filter_map(Value::as_str).collect();
                if names.len() != many.len() {
                    return Err(invalid(Failure::BadClaim, "The token's audience is malformed"));
                }
                names
            }
            Some(_) => return Err(invalid(Failure::BadClaim, "The token's audience is malformed")),
        };
        let aud_ok = if self.audiences.is_empty() {
            aud.is_empty()
        } else {
            aud.iter().any(|a| self.audiences.iter().any(|c| c == a))
        };
        if !aud_ok {
            return Err(invalid(Failure::BadClaim, "The token's audience is not accepted"));
        }
        Ok((exp, nbf))
    }

    fn check_times(&self, exp: u64, nbf: Option<u64>, now: u64) -> Result<(), Error> {
        if now >= exp.saturating_add(self.leeway) {
            return Err(rejected(Failure::Expired, code::TOKEN_EXPIRED, "The token has expired"));
        }
        if nbf.is_some_and(|nbf| nbf > now.saturating_add(self.leeway)) {
            return Err(rejected(
                Failure::NotYetValid,
                code::TOKEN_NOT_YET_VALID,
                "The token is not valid yet",
            ));
        }
        Ok(())
    }
}

fn invalid(reason: Failure, message: &'static str) -> Error {
    rejected(reason, code::TOKEN_INVALID, message)
}

fn rejected(reason: Failure, code: Code, message: &'static str) -> Error {
    failure(AuthMethod::Jwt, reason, code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_wants_three_nonempty_base64url_parts() {
        assert_eq!(split("a.b.c"), Some(("a.b", "c")));
        for bad in ["", "a.b", "a..c", ".b.c", "a.b.", "a.b.c.d", "a.b+.c", "a.b.c=", "a b.c.d"] {
            assert_eq!(split(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn numeric_dates_are_numbers_only() {
        assert_eq!(numeric_date(&serde_json::json!(10)), Some(10));
        assert_eq!(numeric_date(&serde_json::json!(10.9)), Some(10));
        assert_eq!(numeric_date(&serde_json::json!(-1)), None);
        assert_eq!(numeric_date(&serde_json::json!(-1.5)), None);
        assert_eq!(numeric_date(&serde_json::json!("10")), None);
        assert_eq!(numeric_date(&serde_json::json!(null)), None);
        assert_eq!(numeric_date(&serde_json::json!(1e300)), None);
    }
}
