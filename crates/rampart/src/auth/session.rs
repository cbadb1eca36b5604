//! Browser sessions: an encrypted, authenticated `__Host-` cookie naming a
//! session the server keeps, with idle and absolute expiry, rotation on
//! privilege change, logout, and CSRF defence.
//!
//! The public documentation is on [`SessionManager`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::UNIX_EPOCH;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cookie::{Cookie, SameSite};
use http::Method;
use subtle::ConstantTimeEq;

use super::config::{AuthConfig, SessionConfig};
use super::permission::{PermissionSet, RoleMap};
use super::principal::{AuthMethod, Principal};
use super::{Failure, failure};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, ErrorKind, code};

/// The name of the readable cookie that carries the CSRF token for scripts.
pub const CSRF_COOKIE: &str = "__Host-csrf";
/// The request header that must echo the CSRF token on unsafe methods.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Issues, checks, rotates and ends sessions.
///
/// - The cookie holds only a random 256-bit session id, encrypted and
///   authenticated with AES-256-GCM (the cookie's name is bound in, so a
///   value moved to another cookie, edited, or made with another server's
///   key fails to open). Its key is derived (HKDF-SHA256) from
///   `auth.session.secret`. The sealed form is that of the `cookie` crate's
///   private jar, which earlier releases used: their cookies still open.
/// - Attributes: `Secure`, `HttpOnly`, `SameSite=Lax` (or `Strict`), `Path=/`
///   and no `Domain`, as the `__Host-` prefix requires.
/// - The server keeps each live session (subject, permissions, CSRF token,
///   sign-in time, last use). A cookie whose session the server no longer
///   has is refused: that is how logout, rotation and expiry make an old
///   cookie useless even if it was copied. Sessions live in this process's
///   memory, bounded by `max_sessions` in all and `max_sessions_per_subject`
///   for each subject (its oldest ends first, so one account cannot fill the
///   store): replicas behind a load balancer need sticky sessions.
/// - CSRF: a state-changing request (anything but GET, HEAD, OPTIONS,
///   TRACE) must carry the session's CSRF token in `X-CSRF-Token` (the
///   synchronizer-token pattern; the token is also set in a readable
///   `__Host-csrf` cookie for scripts), and, when `allowed_origins` is set,
///   an `Origin` that is listed (or none).
///
/// ```
/// use rampart::auth::{AuthConfig, PermissionSet, SessionManager};
/// use rampart::config::Section;
///
/// let config = AuthConfig::from_value(serde_json::json!({
///     "session": { "secret": "a-session-secret-of-at-least-32-bytes" }
/// })).unwrap();
/// let sessions = SessionManager::new(&config).unwrap();
///
/// let perms = PermissionSet::parse(["orders:read"]).unwrap();
/// let login = sessions.start("alice", vec![], perms).unwrap();
/// assert!(login.set_cookie().starts_with("__Host-session="));
/// assert!(login.set_cookie().contains("HttpOnly"));
///
/// let session = sessions.authenticate(login.cookie_value()).unwrap();
/// assert_eq!(session.principal().subject(), "alice");
///
/// sessions.end(&session);
/// assert!(sessions.authenticate(login.cookie_value()).is_err()); // replay after logout
/// ```
pub struct SessionManager {
    sealer: CookieSealer,
    config: SessionConfig,
    roles: RoleMap,
    store: Mutex<Store>,
    clock: Arc<dyn Clock>,
}

/// The live sessions, by id and by subject.
#[derive(Default)]
struct Store {
    records: HashMap<String, Record>,
    /// Each subject's session ids, oldest first.
    by_subject: HashMap<String, Vec<String>>,
}

impl Store {
    fn insert(&mut self, id: String, record: Record) {
        self.by_subject.entry(record.subject.clone()).or_default().push(id.clone());
        self.records.insert(id, record);
    }

    fn remove(&mut self, id: &str) -> Option<Record> {
        let record = self.records.remove(id)?;
        if let Some(ids) = self.by_subject.get_mut(&record.subject) {
            ids.retain(|other| other != id);
            if ids.is_empty() {
                self.by_subject.remove(&record.subject);
            }
        }
        Some(record)
    }

    fn retain(&mut self, mut keep: impl FnMut(&Record) -> bool) {
        self.records.retain(|_, record| keep(record));
        let records = &self.records;
        self.by_subject.retain(|_, ids| {
            ids.retain(|id| records.contains_key(id));
            !ids.is_empty()
        });
    }

    /// Ends `subject`'s oldest session when it has `limit` or more.
    fn make_room_for(&mut self, subject: &str, limit: usize) {
        let ids = self.by_subject.get(subject);
        if let Some(oldest) = ids.filter(|ids| ids.len() >= limit).map(|ids| ids[0].clone()) {
            self.remove(&oldest);
        }
    }

    fn len(&self) -> usize {
        self.records.len()
    }
}

struct Record {
    subject: String,
    roles: Vec<String>,
    permissions: PermissionSet,
    csrf: String,
    created: u64,
    last_seen: u64,
}

/// A session that checked out for this request.
#[derive(Clone)]
pub struct Session {
    principal: Principal,
    id: String,
    csrf: String,
}

impl Session {
    /// Who the session belongs to.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The CSRF token scripts must echo in `X-CSRF-Token`.
    pub fn csrf_token(&self) -> &str {
        &self.csrf
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session").field("principal", &self.principal).finish_non_exhaustive()
    }
}

/// A session just started (or rotated): the cookies to set and the token to
/// hand to scripts.
pub struct NewSession {
    session: Session,
    cookie: Cookie<'static>,
    csrf_cookie: Cookie<'static>,
}

impl NewSession {
    /// The session itself.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The `Set-Cookie` value for the session cookie.
    pub fn set_cookie(&self) -> String {
        self.cookie.to_string()
    }

    /// The `Set-Cookie` value for the readable CSRF cookie.
    pub fn set_csrf_cookie(&self) -> String {
        self.csrf_cookie.to_string()
    }

    /// The encrypted cookie value, as the browser will send it back.
    pub fn cookie_value(&self) -> &str {
        self.cookie.value()
    }
}

impl fmt::Debug for NewSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSession").field("session", &self.session).finish_non_exhaustive()
    }
}

impl SessionManager {
    /// Builds the manager from `[auth.session]`; a configuration error if
    /// sessions are not configured.
    pub fn new(config: &AuthConfig) -> Result<SessionManager, Error> {
        let Some(session) = config.session.clone() else {
            return Err(Error::configuration("auth.session", "is not configured"));
        };
        Ok(SessionManager {
            sealer: CookieSealer::new(session.secret.expose().as_bytes())?,
            config: session,
            roles: config.roles.clone(),
            store: Mutex::new(Store::default()),
            clock: Arc::new(SystemClock),
        })
    }

    /// The clock sessions expire by (default: the system clock). Set it
    /// before the first session.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> SessionManager {
        self.clock = Arc::new(clock);
        self
    }

    /// The session cookie's name (`__Host-...`).
    pub fn cookie_name(&self) -> &str {
        &self.config.cookie_name
    }

    /// Signs `subject` in: a new session with `permissions` plus what
    /// `roles` grant. A subject with `max_sessions_per_subject` live
    /// sessions loses its oldest, so no one account can fill the store;
    /// past `max_sessions` live sessions in all it fails with `Unavailable`.
    pub fn start(
        &self,
        subject: &str,
        roles: Vec<String>,
        permissions: PermissionSet,
    ) -> Result<NewSession, Error> {
        let permissions = self.roles.resolve(permissions, roles.iter().map(String::as_str));
        let now = self.now();
        let id = random_hex()?;
        let csrf = random_hex()?;
        let record = Record {
            subject: subject.to_owned(),
            roles,
            permissions,
            csrf,
            created: now,
            last_seen: now,
        };
        let session = self.session(&id, &record);
        {
            let mut store = self.store();
            store.make_room_for(subject, self.config.max_sessions_per_subject);
            if store.len() >= self.config.max_sessions {
                store.retain(|r| !self.expired(r, now));
                if store.len() >= self.config.max_sessions {
                    return Err(Error::unavailable("Too many open sessions; try again later"));
                }
            }
            store.insert(id, record);
        }
        metrics::gauge!("rampart_auth_sessions").set(self.live_count());
        self.cookies(session)
    }

    /// Checks a session cookie's value. A valid one is marked as used now
    /// (for the idle timeout). The refusals are Authentication errors:
    ///
    /// - `SESSION_TAMPERED`: the value does not open (edited, moved from
    ///   another cookie, sealed with another key). Only this one can be an
    ///   attack, and only this one is fed to the monitor as a tampered cookie.
    /// - `SESSION_INVALID`: it opens, so this server issued it, but names no
    ///   live session: ended by logout, rotated away, evicted by
    ///   `max_sessions_per_subject`, or forgotten in a restart.
    /// - `SESSION_EXPIRED`: past its idle or absolute lifetime.
    ///
    /// The last two are what any browser holding an old cookie gets: an
    /// ordinary "sign in again", neither a failed attempt nor a signal.
    /// Answer every refusal with [`SessionManager::removal_cookie`]
    /// (`AuthLayer` does), so the browser stops sending the cookie.
    pub fn authenticate(&self, cookie_value: &str) -> Result<Session, Error> {
        let Some(id) = self.sealer.open(&self.config.cookie_name, cookie_value) else {
            return Err(failure(
                AuthMethod::Session,
                Failure::BadSignature,
                code::SESSION_TAMPERED,
                "The session cookie is not valid; sign in again",
            ));
        };
        let id = id.as_str();
        let now = self.now();
        let mut store = self.store();
        let Some(record) = store.records.get_mut(id) else {
            return Err(invalid(Failure::Revoked));
        };
        if self.expired(record, now) {
            store.remove(id);
            return Err(failure(
                AuthMethod::Session,
                Failure::Expired,
                code::SESSION_EXPIRED,
                "The session has expired",
            ));
        }
        record.last_seen = now;
        Ok(self.session(id, record))
    }

    /// Checks the CSRF defence for a request made with `session`: safe
    /// methods pass; others need `X-CSRF-Token` equal to the session's
    /// token and, when `allowed_origins` is set, a listed `Origin` (or none).
    pub fn check_csrf(
        &self,
        session: &Session,
        method: &Method,
        origin: Option<&str>,
        token: Option<&str>,
    ) -> Result<(), Error> {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE) {
            return Ok(());
        }
        if let Some(origin) = origin
            && !self.config.allowed_origins.is_empty()
            && !self.config.allowed_origins.iter().any(|o| o == origin)
        {
            return Err(csrf_rejected("The request came from an origin that is not allowed"));
        }
        let matches =
            token.is_some_and(|t| bool::from(t.as_bytes().ct_eq(session.csrf.as_bytes())));
        if !matches {
            return Err(csrf_rejected("The CSRF token is missing or wrong"));
        }
        Ok(())
    }

    /// Replaces `session` by a new one (new id, new CSRF token) with new
    /// privileges; the old cookie stops working at once. Call it on every
    /// privilege change (sign-in elevation, role change) so a session id
    /// fixed or seen before the change is worthless after it.
    pub fn rotate(
        &self,
        session: &Session,
        roles: Vec<String>,
        permissions: PermissionSet,
    ) -> Result<NewSession, Error> {
        let now = self.now();
        let removed = self.store().remove(&session.id);
        let Some(created) = removed.filter(|r| !self.expired(r, now)).map(|r| r.created) else {
            return Err(invalid(Failure::Revoked));
        };
        let started = self.start(session.principal.subject(), roles, permissions)?;
        // The absolute lifetime runs from the first sign-in, not the rotation.
        if let Some(record) = self.store().records.get_mut(&started.session.id) {
            record.created = created;
        }
        Ok(started)
    }

    /// Ends `session` (logout) and returns the `Set-Cookie` value that
    /// removes the cookie from the browser. The server forgets the session,
    /// so the old cookie is refused even if replayed.
    pub fn end(&self, session: &Session) -> String {
        self.store().remove(&session.id);
        metrics::gauge!("rampart_auth_sessions").set(self.live_count());
        self.removal_cookie()
    }

    /// The `Set-Cookie` value that removes the session cookie from the
    /// browser: the answer to a cookie that was refused.
    pub fn removal_cookie(&self) -> String {
        let mut removal = self.base_cookie(self.config.cookie_name.clone(), String::new());
        removal.make_removal();
        removal.to_string()
    }

    /// Forgets every expired session; returns how many remain.
    pub fn purge_expired(&self) -> usize {
        let now = self.now();
        let mut store = self.store();
        store.retain(|r| !self.expired(r, now));
        store.len()
    }

    fn expired(&self, record: &Record, now: u64) -> bool {
        now >= record.created.saturating_add(self.config.absolute_timeout.as_secs())
            || now >= record.last_seen.saturating_add(self.config.idle_timeout.as_secs())
    }

    fn session(&self, id: &str, record: &Record) -> Session {
        let principal = Principal::new(
            record.subject.clone(),
            record.roles.clone(),
            record.permissions.clone(),
            AuthMethod::Session,
            None,
            None,
        );
        Session { principal, id: id.to_owned(), csrf: record.csrf.clone() }
    }

    fn cookies(&self, session: Session) -> Result<NewSession, Error> {
        let sealed = self.sealer.seal(&self.config.cookie_name, &session.id)?;
        let cookie = self.base_cookie(self.config.cookie_name.clone(), sealed);
        let mut csrf_cookie = self.base_cookie(CSRF_COOKIE.to_owned(), session.csrf.clone());
        // Scripts read it to echo it in X-CSRF-Token; it grants nothing alone.
        csrf_cookie.set_http_only(false);
        Ok(NewSession { session, cookie, csrf_cookie })
    }

    fn base_cookie(&self, name: String, value: String) -> Cookie<'static> {
        let max_age = cookie::time::Duration::seconds(
            i64::try_from(self.config.absolute_timeout.as_secs()).unwrap_or(i64::MAX),
        );
        Cookie::build((name, value))
            .path("/")
            .secure(true)
            .http_only(true)
            .same_site(if self.config.same_site_strict { SameSite::Strict } else { SameSite::Lax })
            .max_age(max_age)
            .build()
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        match self.store.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn live_count(&self) -> f64 {
        // Session counts stay far below 2^52, where f64 stops being exact.
        #[allow(clippy::cast_precision_loss)]
        let n = self.store().len() as f64;
        n
    }

    fn now(&self) -> u64 {
        self.clock.system_time().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }
}

impl fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionManager")
            .field("cookie_name", &self.config.cookie_name)
            .field("live", &self.store().len())
            .finish_non_exhaustive()
    }
}

/// Seals session ids into cookie values: AES-256-GCM with a random nonce
/// and the cookie's name as associated data; the value is base64 (standard,
/// padded) of nonce, ciphertext and tag. Byte for byte the `cookie` crate's
/// private jar with `Key::derive_from`, so cookies sealed by it still open.
struct CookieSealer {
    key: LessSafeKey,
}

impl CookieSealer {
    /// The private jar's key expansion: HKDF-SHA256 expand (RFC 5869) of
    /// `secret`, taken as the pseudorandom key, into 64 bytes, the last 32
    /// of which are the encryption key: the second HMAC block.
    fn new(secret: &[u8]) -> Result<CookieSealer, Error> {
        const INFO: &[u8] = b"COOKIE;SIGNED:HMAC-SHA256;PRIVATE:AEAD-AES-256-GCM";
        let prk = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let mut first = hmac::Context::with_key(&prk);
        first.update(INFO);
        first.update(&[1]);
        let mut second = hmac::Context::with_key(&prk);
        second.update(first.sign().as_ref());
        second.update(INFO);
        second.update(&[2]);
        let key = UnboundKey::new(&AES_256_GCM, second.sign().as_ref())
            .map_err(|_| Error::internal(std::io::Error::other("cannot key AES-256-GCM")))?;
        Ok(CookieSealer { key: LessSafeKey::new(key) })
    }

    fn seal(&self, name: &str, value: &str) -> Result<String, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .map_err(|err| Error::internal(std::io::Error::other(err.to_string())))?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + value.len() + AES_256_GCM.tag_len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(value.as_bytes());
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut sealed[NONCE_LEN..],
            )
            .map_err(|_| Error::internal(std::io::Error::other("cannot seal a session cookie")))?;
        sealed.extend_from_slice(tag.as_ref());
        Ok(BASE64.encode(sealed))
    }

    /// The value sealed into `cookie_value` under the cookie's `name`, if
    /// it opens.
    fn open(&self, name: &str, cookie_value: &str) -> Option<String> {
        let mut data = BASE64.decode(cookie_value).ok()?;
        if data.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = data.split_at_mut(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let plain = self.key.open_in_place(nonce, Aad::from(name.as_bytes()), sealed).ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

fn random_hex() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|err| Error::internal(std::io::Error::other(err.to_string())))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn invalid(reason: Failure) -> Error {
    failure(
        AuthMethod::Session,
        reason,
        code::SESSION_INVALID,
        "The session is not valid; sign in again",
    )
}

fn csrf_rejected(message: &'static str) -> Error {
    metrics::counter!("rampart_auth_csrf_rejections_total").increment(1);
    Error::new(ErrorKind::Authorization, message).with_code(code::CSRF_REJECTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a-session-secret-of-at-least-32-bytes";
    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// A cookie sealed by the `cookie` crate's private jar (0.18, with
    /// `Key::derive_from(SECRET)`), as earlier releases of rampart issued.
    const SEALED_BY_COOKIE_CRATE: &str = "t7jBuRfuaBgCNQLnSnH79KYznPbyhQ/ZKF3pjmx4Yc7E72JYGPLduJ7QtoJhz4ZmRYe3XY5yf5K38YvyzbmqeCAu9wxmMdRpL45IJAoVar58IPq2er9Kfl6Eurs=";

    #[test]
    fn cookies_sealed_by_the_cookie_crate_still_open() {
        let sealer = CookieSealer::new(SECRET).expect("sealer");
        assert_eq!(sealer.open("__Host-session", SEALED_BY_COOKIE_CRATE).as_deref(), Some(ID));
    }

    #[test]
    fn a_sealed_value_opens_only_under_its_name_key_and_bytes() {
        let sealer = CookieSealer::new(SECRET).expect("sealer");
        let sealed = sealer.seal("__Host-session", ID).expect("seal");
        assert_ne!(sealed, sealer.seal("__Host-session", ID).expect("seal"), "a fresh nonce");
        assert_eq!(sealer.open("__Host-session", &sealed).as_deref(), Some(ID));
        assert_eq!(sealer.open("__Host-other", &sealed), None, "moved to another cookie");
        let other = CookieSealer::new(b"another-session-secret-of-32-bytes!!").expect("sealer");
        assert_eq!(other.open("__Host-session", &sealed), None, "another server's key");
        let mut bytes = BASE64.decode(&sealed).expect("base64");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(sealer.open("__Host-session", &BASE64.encode(&bytes)), None, "edited");
        for junk in ["", "AAAA", "not base64!", &BASE64.encode([0u8; NONCE_LEN])] {
            assert_eq!(sealer.open("__Host-session", junk), None, "{junk:?}");
        }
    }
}
