//! One front door for every credential a request may carry.
//!
//! The public documentation is on [`Authenticator`].

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use http::header::{AUTHORIZATION, COOKIE, ORIGIN};
use http::{HeaderMap, Method};

use super::api_key::ApiKeyStore;
use super::config::AuthConfig;
use super::credentials_required;
use super::jwt::{JwtVerifier, Refusal};
use super::lockout::{LockKey, Lockout};
use super::principal::Principal;
use super::session::{CSRF_HEADER, Session, SessionManager};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, ErrorKind, code};
use crate::ratelimit::RateLimiter;

/// Builds an [`Authenticator`]: [`Authenticator::builder`].
pub struct AuthenticatorBuilder<'a> {
    config: &'a AuthConfig,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for AuthenticatorBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticatorBuilder").field("clock", &self.clock).finish_non_exhaustive()
    }
}

impl AuthenticatorBuilder<'_> {
    /// The clock tokens and sessions are checked against (default: the
    /// system clock).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Builds every configured part.
    ///
    /// # Errors
    /// A configuration error when a part cannot be built (an unreadable
    /// JWKS file, a session secret too short).
    pub fn build(self) -> Result<Authenticator, Error> {
        let config = self.config;
        let jwt = match config.jwt.is_enabled() {
            true => Some(JwtVerifier::new(config)?.clock(Arc::clone(&self.clock))),
            false => None,
        };
        let sessions = match config.session {
            Some(_) => Some(SessionManager::new(config)?.clock(self.clock)),
            None => None,
        };
        Ok(Authenticator {
            inner: Arc::new(Inner { jwt, api_keys: ApiKeyStore::new(config), sessions }),
        })
    }
}

/// The header an API key may come in instead of `Authorization`.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Checks whatever credential a request carries. Cheap to clone.
///
/// Which credential is used, first match wins:
///
/// 1. `Authorization: Bearer <credential>`: an API key when it starts with
///    `rk_`, a JWT otherwise;
/// 2. `X-API-Key: <key>`;
/// 3. the session cookie, and then for state-changing methods the CSRF
///    check.
///
/// No credential at all is `AUTHENTICATION_REQUIRED` with a bare `Bearer`
/// challenge; any other scheme in `Authorization` is treated the same way.
///
/// ```
/// use http::{HeaderMap, HeaderValue, Method};
/// use rampart::auth::{AuthConfig, Authenticator, NewApiKey};
/// use rampart::config::Section;
///
/// let key = NewApiKey::generate().unwrap();
/// let config = AuthConfig::from_value(serde_json::json!({
///     "api_keys": [{ "id": key.id(), "name": "ci", "hash": key.hash().to_string() }]
/// })).unwrap();
/// let auth = Authenticator::new(&config).unwrap();
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-api-key", HeaderValue::from_str(key.expose()).unwrap());
/// let found = auth.authenticate(&Method::GET, &headers).unwrap();
/// assert_eq!(found.principal().subject(), "ci");
/// assert!(auth.authenticate(&Method::GET, &HeaderMap::new()).is_err());
/// ```
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
    /// Builds every configured part on the system clock: the JWT verifier
    /// when keys or a JWKS file are configured, the API keys, and sessions
    /// when configured.
    pub fn new(config: &AuthConfig) -> Result<Authenticator, Error> {
        Authenticator::builder(config).build()
    }

    /// Builds the authenticator in steps (to give it a clock).
    pub fn builder(config: &AuthConfig) -> AuthenticatorBuilder<'_> {
        AuthenticatorBuilder { config, clock: Arc::new(SystemClock) }
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
        self.check(method, headers, &self.presented(headers)).map_err(|refusal| refusal.error)
    }

    /// Authenticates like [`Authenticator::authenticate`], under `lockout`,
    /// for a request from `client`.
    ///
    /// A locked client is refused before its credential is looked at. A
    /// failure counts against the client and against the credential, when
    /// the credential is known to be the one meant: a configured API key's
    /// id, or the subject of a token whose signature was good (a forged
    /// token names whomever its maker likes, so its subject counts nothing).
    /// A failed attempt on a locked credential is refused as locked; the
    /// right credential passes a credential lock unless its client has been
    /// failing too ([`Lockout::check_holder`]). Refusals are
    /// `AUTH_LOCKED_OUT` (429) with `Retry-After`.
    ///
    /// The client address is required: failures no client can be charged
    /// with would lock the credential's holder out along with its guesser.
    /// A session cookie that opened but names no live session (expired,
    /// ended, forgotten) is not an attempt and counts nothing.
    pub async fn authenticate_guarded<L: RateLimiter>(
        &self,
        method: &Method,
        headers: &HeaderMap,
        client: IpAddr,
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
        client: IpAddr,
        lockout: &Lockout<L>,
    ) -> Result<Authenticated, Error> {
        lockout.check(&[LockKey::Client(client)]).await?;
        match self.check(method, headers, presented) {
            Ok(found) => {
                let principal = found.principal();
                let id = principal.api_key_id().unwrap_or_else(|| principal.subject());
                lockout.check_holder(&LockKey::Credential(id), Some(client)).await?;
                Ok(found)
            }
            // Only a presented credential that failed counts; a request
            // with none is not an attempt.
            Err(refusal) if refusal.error.kind() == ErrorKind::Authentication => {
                let credential = match *presented {
                    Presented::Nothing => return Err(refusal.error),
                    Presented::ApiKey(key) => self.inner.api_keys.known_id(key).map(str::to_owned),
                    Presented::Bearer(_) => refusal.signed_subject,
                    // A cookie that opens was issued here: an old one is
                    // not an attempt, only one that does not open is.
                    Presented::Session(_) if refusal.error.code() != code::SESSION_TAMPERED => {
                        return Err(refusal.error);
                    }
                    Presented::Session(_) => None,
                };
                let credential = credential.as_deref().map(LockKey::Credential);
                let locked = match credential {
                    Some(key) => lockout.check(&[key]).await,
                    None => Ok(()),
                };
                let mut keys = Vec::with_capacity(2);
                keys.push(LockKey::Client(client));
                keys.extend(credential);
                lockout.record_failure(&keys).await;
                locked?;
                Err(refusal.error)
            }
            Err(refusal) => Err(refusal.error),
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
    ) -> Result<Authenticated, Refusal> {
        let principal = match *presented {
            Presented::Nothing => return Err(credentials_required().into()),
            Presented::ApiKey(key) => self.inner.api_keys.verify(key)?,
            Presented::Bearer(token) => match &self.inner.jwt {
                Some(jwt) => jwt.verify_or_refuse(token)?,
                None => return Err(credentials_required().into()),
            },
            Presented::Session(value) => {
                let Some(sessions) = &self.inner.sessions else {
                    return Err(credentials_required().into());
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
