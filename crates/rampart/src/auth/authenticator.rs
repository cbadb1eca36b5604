//! One front door for every credential a request may carry.
//!
//! Which credential is used, first match wins:
//!
//! 1. `Authorization: Bearer <credential>`: an API key when it starts with
//!    `rk_`, a JWT otherwise;
//! 2. `X-API-Key: <key>`;
//! 3. the session cookie, and then for state-changing methods the CSRF
//!    check.
//!
//! No credential at all is `AUTHENTICATION_REQUIRED` with a bare `Bearer`
//! challenge; any other scheme in `Authorization` is treated the same way.
//!
//! ```
//! use std::sync::Arc;
//! use http::{HeaderMap, HeaderValue, Method};
//! use rampart::auth::{Authenticator, NewApiKey, RawAuthConfig};
//! use rampart::clock::SystemClock;
//!
//! let key = NewApiKey::generate().unwrap();
//! let raw: RawAuthConfig = serde_json::from_value(serde_json::json!({
//!     "api_keys": [{ "id": key.id(), "name": "ci", "hash": key.hash().to_string() }]
//! })).unwrap();
//! let auth = Authenticator::new(&raw.validate().unwrap(), Arc::new(SystemClock)).unwrap();
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("x-api-key", HeaderValue::from_str(key.expose()).unwrap());
//! let found = auth.authenticate(&Method::GET, &headers).unwrap();
//! assert_eq!(found.principal().subject(), "ci");
//! assert!(auth.authenticate(&Method::GET, &HeaderMap::new()).is_err());
//! ```

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use http::header::{AUTHORIZATION, COOKIE, ORIGIN};
use http::{HeaderMap, Method};

use super::api_key::{ApiKeyStore, well_formed_id};
use super::config::AuthConfig;
use super::credentials_required;
use super::jwt::JwtVerifier;
use super::lockout::{LockKey, Lockout};
use super::principal::AuthMethod;
use super::principal::Principal;
use super::session::{CSRF_HEADER, Session, SessionManager};
use crate::clock::Clock;
use crate::error::{Error, ErrorKind};
use crate::ratelimit::RateLimiter;

/// The header an API key may come in instead of `Authorization`.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Checks whatever credential a request carries; see the [module docs](self).
/// Cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    jwt: Option<JwtVerifier>,
    api_keys: ApiKeyStore,
    sessions: Option<SessionManager>,
}

/// Who a request authenticated as, and the session when it used one.
#[derive(Debug, Clone)]
pub struct Authenticated {
    principal: Principal,
    session: Option<Session>,
}

impl Authenticated {
    /// The principal.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The session, for cookie-authenticated requests.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Both parts.
    pub fn into_parts(self) -> (Principal, Option<Session>) {
        (self.principal, self.session)
    }
}

/// The credential a request presented, as far as it can be read without
/// checking it: what lockout counts failures against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Presented<'a> {
    Bearer(&'a str),
    ApiKey(&'a str),
    Session(&'a str),
    Nothing,
}

impl Authenticator {
    /// Builds every configured part: the JWT verifier when keys or a JWKS
    /// file are configured, the API keys, and sessions when configured.
    pub fn new(config: &AuthConfig, clock: Arc<dyn Clock>) -> Result<Authenticator, Error> {
        let jwt = if config.jwt.is_enabled() {
            Some(JwtVerifier::new(config, Arc::clone(&clock))?)
        } else {
            None
        };
        let sessions = match config.session {
            Some(_) => Some(SessionManager::new(config, clock)?),
            None => None,
        };
        Ok(Authenticator {
            inner: Arc::new(Inner { jwt, api_keys: ApiKeyStore::new(config), sessions }),
        })
    }

    /// The session manager, when sessions are configured (to sign in, rotate
    /// and sign out).
    pub fn sessions(&self) -> Option<&SessionManager> {
        self.inner.sessions.as_ref()
    }

    /// The JWT verifier, when JWTs are configured.
    pub fn jwt(&self) -> Option<&JwtVerifier> {
        self.inner.jwt.as_ref()
    }

    /// Authenticates a request from its method and headers.
    pub fn authenticate(
        &self,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<Authenticated, Error> {
        self.check(method, headers, &self.presented(headers))
    }

    /// Authenticates like [`Authenticator::authenticate`], under `lockout`:
    /// a locked client is refused before its credential is looked at; a
    /// failure counts against the client and the credential it claimed (an
    /// API key's id, a token's unverified `sub`); a success for a locked
    /// credential is refused too. Refusals are `AUTH_LOCKED_OUT` (429).
    pub async fn authenticate_guarded<L: RateLimiter>(
        &self,
        method: &Method,
        headers: &HeaderMap,
        client: Option<IpAddr>,
        lockout: &Lockout<L>,
    ) -> Result<Authenticated, Error> {
        let presented = self.presented(headers);
        self.guarded(method, headers, &presented, client, lockout).await
    }

    pub(crate) async fn guarded<L: RateLimiter>(
        &self,
        method: &Method,
        headers: &HeaderMap,
        presented: &Presented<'_>,
        client: Option<IpAddr>,
        lockout: &Lockout<L>,
    ) -> Result<Authenticated, Error> {
        if let Some(ip) = client {
            lockout.check(&[LockKey::Client(ip)]).await?;
        }
        match self.check(method, headers, presented) {
            Ok(found) => {
                let principal = found.principal();
                let id =
                    principal.credential_id().filter(|_| principal.method() == AuthMethod::ApiKey);
                let credential = id.unwrap_or_else(|| principal.subject());
                lockout.check(&[LockKey::Credential(credential)]).await?;
                Ok(found)
            }
            Err(err) => {
                // Only a presented credential that failed counts; a request
                // with none is not an attempt.
                if err.kind() == ErrorKind::Authentication && *presented != Presented::Nothing {
                    let claimed = presented.claimed_id();
                    let mut keys = Vec::with_capacity(2);
                    keys.extend(client.map(LockKey::Client));
                    keys.extend(claimed.as_deref().map(LockKey::Credential));
                    lockout.record_failure(&keys).await;
                }
                Err(err)
            }
        }
    }

    pub(crate) fn presented<'h>(&self, headers: &'h HeaderMap) -> Presented<'h> {
        if let Some(value) = headers.get(AUTHORIZATION) {
            let text = value.to_str().unwrap_or("");
            return match text.split_once(' ') {
                Some((scheme, credential)) if scheme.eq_ignore_ascii_case("bearer") => {
                    let credential = credential.trim();
                    if credential.starts_with("rk_") {
                        Presented::ApiKey(credential)
                    } else {
                        Presented::Bearer(credential)
                    }
                }
                _ => Presented::Nothing,
            };
        }
        if let Some(value) = headers.get(API_KEY_HEADER) {
            return Presented::ApiKey(value.to_str().unwrap_or("").trim());
        }
        if let Some(sessions) = &self.inner.sessions
            && let Some(value) = cookie_value(headers, sessions.cookie_name())
        {
            return Presented::Session(value);
        }
        Presented::Nothing
    }

    pub(crate) fn check(
        &self,
        method: &Method,
        headers: &HeaderMap,
        presented: &Presented<'_>,
    ) -> Result<Authenticated, Error> {
        let principal = match *presented {
            Presented::Nothing => return Err(credentials_required()),
            Presented::ApiKey(key) => self.inner.api_keys.verify(key)?,
            Presented::Bearer(token) => match &self.inner.jwt {
                Some(jwt) => jwt.verify(token)?,
                None => return Err(credentials_required()),
            },
            Presented::Session(value) => {
                let Some(sessions) = &self.inner.sessions else {
                    return Err(credentials_required());
                };
                let session = sessions.authenticate(value)?;
                let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
                sessions.check_csrf(
                    &session,
                    method,
                    header(ORIGIN.as_str()),
                    header(CSRF_HEADER),
                )?;
                return Ok(Authenticated {
                    principal: session.principal().clone(),
                    session: Some(session),
                });
            }
        };
        Ok(Authenticated { principal, session: None })
    }
}

impl Presented<'_> {
    /// The credential id the request claims, before any check: an API
    /// key's id (when well-formed), a JWT's `sub` (read without verifying;
    /// at most 128 bytes). Used only to count failures.
    pub(crate) fn claimed_id(&self) -> Option<String> {
        match *self {
            Presented::ApiKey(key) => well_formed_id(key).map(str::to_owned),
            Presented::Bearer(token) => {
                let payload = token.split('.').nth(1).filter(|p| p.len() <= 8192)?;
                let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
                let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
                let sub = claims.get("sub")?.as_str()?;
                (!sub.is_empty() && sub.len() <= 128).then(|| sub.to_owned())
            }
            Presented::Session(_) | Presented::Nothing => None,
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("jwt", &self.inner.jwt)
            .field("api_keys", &self.inner.api_keys)
            .field("sessions", &self.inner.sessions)
            .finish()
    }
}
