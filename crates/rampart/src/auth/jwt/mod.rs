//! Bearer JWT verification, with keys pinned to algorithms and a cache of
//! verified tokens; and HS token issuing ([`TokenIssuer`]).
//!
//! The public documentation is on [`JwtVerifier`].

mod claims;
mod issue;
mod key;
mod keys;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use base64::DecodeSliceError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use quick_cache::sync::Cache;

pub use issue::TokenIssuer;
pub(crate) use key::{JwtKey, RawJwtKey, algorithm, jwt_keys};
pub(crate) use keys::check_jwks_file;

use self::claims::{Audience, Header, Registered, Time};
use self::keys::KeyRing;
use super::config::AuthConfig;
use super::permission::{Permission, PermissionSet, RoleMap};
use super::principal::{AuthMethod, Principal};
use super::{Failure, failure};
use crate::clock::{Clock, SystemClock};
use crate::error::{Code, Error, code};

/// The one public answer to a token refused before its signature was
/// verified, whatever the reason.
const NOT_VERIFIED: &str = "The token could not be verified";

/// Verifies bearer JWTs.
///
/// What a token must pass, in order (cheap checks first, so garbage costs
/// little):
///
/// 1. at most `max_token_bytes` (default 8 KiB) and three non-empty parts,
///    checked before any decoding; each part must decode as base64url
///    before any cryptography runs;
/// 2. a header naming a known `kid` (a token without `kid` is accepted only
///    when exactly one key exists) and **exactly the algorithm that key is
///    pinned to**: the header never chooses the key type, so `alg: none`,
///    or HS256 signed with an RSA public key as the secret, fail here;
///    a `crit` header is refused (no extension is understood);
/// 3. the signature;
/// 4. the claims: a JSON object, every value of which must read as JSON
///    (a number out of range or a lone surrogate is refused, not skipped),
///    nested at most 16 levels deep, with no key named twice
///    anywhere (nor in the header): parsers disagree on which of two
///    values counts. Then `exp` (required, a number), `nbf` (when present),
///    `iss` and `aud` (when configured; a token with an `aud` is refused if
///    no audience is configured, per RFC 7519), `sub` (required), each time
///    claim with the configured leeway (default 30 s). What verifies is
///    exactly what [`Principal::claims`] returns.
///
/// Every refusal before the signature is verified (steps 1 to 3) answers
/// the same `TOKEN_INVALID` "The token could not be verified": an unsigned
/// probe learns nothing about which key ids exist or which algorithm each
/// is pinned to. Which check failed is in the `reason` label of
/// `rampart_auth_failures_total` and in a `debug` log line.
///
/// A verified token is remembered (bounded cache, keyed by the SHA-256 of
/// the token, so only the identical token hits). A hit re-checks `exp` and
/// `nbf` against the clock, and is ignored once the key set changed (a JWKS
/// reload), so the cache never accepts what a full check would refuse.
///
/// ```
/// use rampart::auth::{AuthConfig, JwtVerifier, TokenIssuer};
/// use rampart::config::Section;
///
/// let config = AuthConfig::from_value(serde_json::json!({
///     "jwt": { "keys": [{ "kid": "k1", "algorithm": "HS256",
///                         "secret": "an-hs256-secret-of-at-least-32-bytes!" }],
///              "lifetime": "1h" }
/// })).unwrap();
/// let issuer = TokenIssuer::new(config.jwt(), None).unwrap();
/// let verifier = JwtVerifier::new(&config).unwrap();
///
/// let token = issuer.issue("alice", &["orders:read".into()], &[], None).unwrap();
/// let principal = verifier.verify(&token).unwrap();
/// assert_eq!(principal.subject(), "alice");
/// assert!(principal.has("orders:read"));
///
/// let err = verifier.verify("not.a.token").unwrap_err();
/// assert_eq!(err.code().as_str(), "TOKEN_INVALID");
/// ```
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
    pub fn new(config: &AuthConfig) -> Result<JwtVerifier, Error> {
        let jwt = &config.jwt;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
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

    /// The clock `exp`, `nbf` and the JWKS file's checks are read against
    /// (default: the system clock). Set it before the first verification.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> JwtVerifier {
        self.clock = Arc::new(clock);
        self.ring.set_clock(Arc::clone(&self.clock));
        self
    }

    /// Verifies `token` (without the `Bearer ` prefix).
    pub fn verify(&self, token: &str) -> Result<Principal, Error> {
        self.verify_or_refuse(token).map_err(|refusal| refusal.error)
    }

    /// [`JwtVerifier::verify`], telling lockout whose token a refused one
    /// was when that is known: only when its signature was good.
    pub(crate) fn verify_or_refuse(&self, token: &str) -> Result<Principal, Refusal> {
        if token.len() > self.max_token_bytes {
            return Err(unverified(Failure::TooLarge).into());
        }
        let now = self.unix_now();
        let keys = self.ring.current();
        // Only the identical token hits: the cache never sees a near-miss.
        let digest = self.cache.as_ref().map(|_| crate::auth::sha256(token.as_bytes()));
        if let (Some(cache), Some(digest)) = (&self.cache, &digest)
            && let Some(hit) = cache.get(digest)
            && hit.generation == keys.generation
        {
            if let Err(error) = self.rules.check_times(hit.exp, hit.nbf, now) {
                cache.remove(digest);
                let subject = Some(hit.principal.subject().to_owned());
                return Err(Refusal { error, signed_subject: subject });
            }
            metrics::counter!("rampart_auth_jwt_cache_total", "result" => "hit").increment(1);
            metrics::counter!("rampart_auth_success_total", "method" => "jwt").increment(1);
            return Ok(hit.principal.clone());
        }
        let Some((message, signature)) = split(token) else {
            return Err(unverified(Failure::Malformed).into());
        };

        // Headers are small: decode into the stack, or the heap when one is not.
        let (header_b64, payload_b64) = message.split_once('.').unwrap_or_default();
        let mut header_buf = [0u8; 512];
        let header_heap;
        let header_json = match URL_SAFE_NO_PAD.decode_slice(header_b64, &mut header_buf) {
            Ok(len) => &header_buf[..len],
            Err(DecodeSliceError::OutputSliceTooSmall) => {
                header_heap = decode_part(header_b64).unwrap_or_default();
                &header_heap[..]
            }
            Err(DecodeSliceError::DecodeError(_)) => &[],
        };
        let header: Header<'_> =
            json_object(header_json).ok_or_else(|| unverified(Failure::Malformed))?;
        if header.crit {
            return Err(unverified(Failure::Malformed).into());
        }
        let kid = header.kid.as_deref();
        let mut keys = keys;
        if keys.find(kid).is_none() && kid.is_some() {
            keys = self.ring.refresh_for_unknown_kid();
        }
        let Some(key) = keys.find(kid) else {
            return Err(unverified(Failure::UnknownKey).into());
        };
        if header.alg != key.algorithm {
            return Err(unverified(Failure::WrongAlgorithm).into());
        }
        self.signature_checks.fetch_add(1, Ordering::Relaxed);
        if !key.verify_signature(message, signature) {
            return Err(unverified(Failure::BadSignature).into());
        }
        let claims_json = decode_part(payload_b64)
            .ok_or_else(|| invalid(Failure::Malformed, "The token payload is malformed"))?;
        let claims: Registered<'_> = json_object(&claims_json).ok_or_else(|| {
            invalid(
                Failure::Malformed,
                "The token's claims are not one JSON object of at most 16 levels naming each key once",
            )
        })?;
        let times = self.rules.check(&claims, now).map_err(|error| Refusal {
            error,
            signed_subject: claims.sub.as_str().filter(|s| !s.is_empty()).map(str::to_owned),
        })?;
        let grants = self.grants(&claims)?;
        drop(claims);
        let principal = grants.into_principal(claims_json);
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

    /// What a verified token grants.
    fn grants(&self, claims: &Registered<'_>) -> Result<Grants, Error> {
        let Some(subject) = claims.sub.as_str().filter(|s| !s.is_empty()) else {
            return Err(invalid(Failure::BadClaim, "The token has no subject"));
        };
        let roles: Vec<String> = claims.roles.0.iter().map(|r| r.to_string()).collect();
        let mut granted = PermissionSet::new();
        let scope = claims.scope.as_str().unwrap_or("");
        let listed = claims.permissions.0.iter().map(|p| &**p);
        // Unparsable entries grant nothing rather than failing the token.
        for text in listed.chain(scope.split(' ')).filter(|t| !t.is_empty()) {
            if let Ok(permission) = Permission::parse(text) {
                granted.insert(permission);
            }
        }
        let permissions = self.roles.resolve(granted, roles.iter().map(String::as_str));
        let jti = claims.jti.as_str().map(str::to_owned);
        Ok(Grants { subject: subject.to_owned(), roles, permissions, jti })
    }
}

/// Why a credential was refused, and, for a token whose signature was good
/// but a claim was not (expired, wrong audience, ...), its subject: the only
/// case in which the subject is known to be the token's own, so the only one
/// lockout may count against it. A forged token names whomever its maker
/// likes.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) error: Error,
    pub(crate) signed_subject: Option<String>,
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Refusal {
        Refusal { error, signed_subject: None }
    }
}

/// A verified token's subject and grants, owned, so the principal can take
/// the claims text they were read from.
struct Grants {
    subject: String,
    roles: Vec<String>,
    permissions: PermissionSet,
    jti: Option<String>,
}

impl Grants {
    /// The principal; its claim map is built from `claims_json` when first asked for.
    fn into_principal(self, claims_json: Vec<u8>) -> Principal {
        let Grants { subject, roles, permissions, jti } = self;
        Principal::new(subject, roles, permissions, AuthMethod::Jwt, jti, Some(claims_json))
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
/// non-empty parts. Their characters are checked by the base64url decoding
/// of each part, which happens before any cryptography.
fn split(token: &str) -> Option<(&str, &str)> {
    let mut dots = memchr::memchr_iter(b'.', token.as_bytes());
    let (first, second) = (dots.next()?, dots.next()?);
    let parts_nonempty = first > 0 && second > first + 1 && second + 1 < token.len();
    (dots.next().is_none() && parts_nonempty).then(|| (&token[..second], &token[second + 1..]))
}

/// `json` read as `T`, if it is a JSON object. serde's derived structs
/// would also take an array, field by field: `[1, 2]` must not be a token.
fn json_object<'a, T: serde::Deserialize<'a>>(json: &'a [u8]) -> Option<T> {
    let first = json.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    // UTF-8 checked once for the whole text, not again for every string.
    serde_json::from_str(std::str::from_utf8(json).ok()?).ok()
}

/// One base64url part decoded; `None` if it is not base64url.
fn decode_part(part: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(part).ok()
}

impl ClaimRules {
    /// Checks every claim; returns `(exp, nbf)` for the cache.
    fn check(&self, claims: &Registered<'_>, now: u64) -> Result<(u64, Option<u64>), Error> {
        let exp = match claims.exp {
            Time::At(exp) => exp,
            Time::Absent => return Err(invalid(Failure::BadClaim, "The token has no expiry")),
            Time::Invalid => {
                return Err(invalid(Failure::BadClaim, "The token's expiry is not a number"));
            }
        };
        let nbf = match claims.nbf {
            Time::At(nbf) => Some(nbf),
            Time::Absent => None,
            Time::Invalid => {
                return Err(invalid(Failure::BadClaim, "The token's nbf is not a number"));
            }
        };
        self.check_times(exp, nbf, now)?;
        if !self.issuers.is_empty() {
            let iss = claims.iss.as_str();
            if !iss.is_some_and(|iss| self.issuers.iter().any(|i| i == iss)) {
                return Err(invalid(Failure::BadClaim, "The token's issuer is not accepted"));
            }
        }
        let aud: &[Cow<'_, str>] = match &claims.aud {
            Audience::Absent => &[],
            Audience::Names(names) => names,
            Audience::Invalid => {
                return Err(invalid(Failure::BadClaim, "The token's audience is malformed"));
            }
        };
        let aud_ok = if self.audiences.is_empty() {
            aud.is_empty()
        } else {
            aud.iter().any(|a| self.audiences.iter().any(|c| c == a.as_ref()))
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

/// A refusal before the signature was verified: the one public answer,
/// the reason only in the metric label and the debug log.
fn unverified(reason: Failure) -> Error {
    invalid(reason, NOT_VERIFIED)
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
    fn split_wants_three_nonempty_parts() {
        assert_eq!(split("a.b.c"), Some(("a.b", "c")));
        for bad in ["", "a.b", "a..c", ".b.c", "a.b.", "a.b.c.d", "..", "..."] {
            assert_eq!(split(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parts_that_are_not_base64url_do_not_decode() {
        for bad in ["ab+c", "ab/c", "abc=", "a b", "é", "\0"] {
            assert_eq!(decode_part(bad), None, "{bad:?}");
        }
        assert_eq!(decode_part("e30").as_deref(), Some(&b"{}"[..]));
    }

    #[test]
    fn header_and_claims_must_be_json_objects() {
        assert!(json_object::<Registered<'_>>(br#" {"exp": 1}"#).is_some());
        for not_object in [&b"[1, 2]"[..], b"\"x\"", b"1", b"", b"  "] {
            assert!(json_object::<Registered<'_>>(not_object).is_none());
        }
        assert!(json_object::<Header<'_>>(br#"["HS256", "k1"]"#).is_none());
    }
}
