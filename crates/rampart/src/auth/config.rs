//! The `[auth]` section: the tables as written, validated by one function
//! into [`AuthConfig`].
//!
//! Errors name the key (`auth.jwt.keys[0].secret`) and why, never the value.
//!
//! ```
//! use rampart::auth::AuthConfig;
//! use rampart::config::Section;
//!
//! let config = AuthConfig::from_value(serde_json::json!({
//!     "jwt": { "keys": [{ "kid": "k1", "algorithm": "HS256",
//!                         "secret": "an-hs256-secret-of-at-least-32-bytes!" }],
//!              "lifetime": "1h" },
//!     "roles": { "clerk": ["orders:read", "orders:write"] }
//! })).unwrap();
//! assert!(config.roles().get("clerk").unwrap().grants("orders:write"));
//! assert_eq!(config.jwt().lifetime().as_secs(), 3600);
//!
//! let err = AuthConfig::from_value(serde_json::json!({
//!     "jwt": { "keys": [{ "kid": "k1", "algorithm": "HS256", "secret": "short-hunter2" }] }
//! })).unwrap_err();
//! assert_eq!(err.config_key(), Some("auth.jwt.keys[0].secret"));
//! assert!(!format!("{err:?}").contains("hunter2"));
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::{Algorithm, AlgorithmFamily};
use serde::Deserialize;

use super::api_key::{ApiKeyHash, parse_key_id};
use super::jwt::{JwtKey, RawJwtKey, algorithm, jwt_keys};
use super::permission::{PermissionSet, RoleMap};
use crate::error::Error;
use crate::settings::{
    ConfigError, MASK, Secret, Section, byte_size, duration, format_byte_size, format_duration,
    is_origin,
};

/// The longest `auth.jwt.lifetime`: tokens live at most this long, whatever
/// is asked.
pub(crate) const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);

/// `N` seconds: a field's default.
const fn secs<const N: u64>() -> Duration {
    Duration::from_secs(N)
}

/// `[auth]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAuthConfig {
    jwt: RawJwtConfig,
    /// `[[auth.api_keys]]`: one table per key, as `rampart apikey new` prints.
    api_keys: Vec<RawApiKey>,
    /// `[auth.roles]`: role name → permissions it grants.
    roles: BTreeMap<String, Vec<String>>,
    /// `[auth.session]`: browser sessions; absent means none.
    session: Option<RawSessionConfig>,
    lockout: RawLockoutConfig,
}

/// `[auth.jwt]` as written.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawJwtConfig {
    /// Keys given in the configuration itself.
    keys: Vec<RawJwtKey>,
    /// A JWKS file of public keys, reloaded when it changes.
    jwks: Option<RawJwks>,
    /// Accepted `iss` values; when set, tokens must carry one of them.
    issuers: Vec<String>,
    /// Accepted `aud` values; when set, tokens must name one of them.
    audiences: Vec<String>,
    /// How long an issued token is valid.
    #[serde(with = "duration")]
    lifetime: Duration,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(with = "duration")]
    leeway: Duration,
    /// Tokens longer than this are refused before any decoding.
    #[serde(with = "byte_size")]
    max_token_bytes: u64,
    /// Verified tokens remembered (0 turns the cache off).
    cache_capacity: usize,
}

impl Default for RawJwtConfig {
    fn default() -> RawJwtConfig {
        RawJwtConfig {
            keys: Vec::new(),
            jwks: None,
            issuers: Vec::new(),
            audiences: Vec::new(),
            lifetime: Duration::from_secs(24 * 3600),
            leeway: Duration::from_secs(30),
            max_token_bytes: 8192,
            cache_capacity: 10_000,
        }
    }
}

/// `[auth.jwt.jwks]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJwks {
    /// The JWKS file (`{"keys": [...]}`).
    file: PathBuf,
    /// How often the file is checked for changes.
    #[serde(default = "secs::<30>", with = "duration")]
    check_interval: Duration,
    /// An unknown `kid` re-reads the file at most once per this interval.
    #[serde(default = "secs::<30>", with = "duration")]
    min_reload_interval: Duration,
    /// The algorithm for RSA keys that carry no `alg` (otherwise skipped).
    #[serde(default)]
    default_rsa_algorithm: Option<String>,
    /// Whether the file's keys end once it has been missing or unusable for
    /// a whole `check_interval`; false keeps them until it reads again.
    #[serde(default = "yes")]
    drop_keys_when_unreadable: bool,
}

fn yes() -> bool {
    true
}

/// One `[[auth.api_keys]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApiKey {
    /// The key's public id (the part after `rk_`).
    id: String,
    /// Who or what holds the key; becomes the principal's subject.
    name: String,
    /// `sha256:<64 hex digits>` of the whole key.
    hash: String,
    /// Permissions granted directly.
    #[serde(default)]
    permissions: Vec<String>,
    /// Roles granted.
    #[serde(default)]
    roles: Vec<String>,
}

/// `[auth.session]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSessionConfig {
    /// At least 32 bytes; the cookie encryption key is derived from it.
    secret: Secret<String>,
    /// The cookie name after the `__Host-` prefix.
    #[serde(default = "session_cookie_name")]
    cookie_name: String,
    /// "lax" or "strict".
    #[serde(default)]
    same_site: Option<String>,
    /// Lifetime from sign-in, whatever the activity.
    #[serde(default = "secs::<43200>", with = "duration")]
    absolute_timeout: Duration,
    /// Lifetime without requests.
    #[serde(default = "secs::<1800>", with = "duration")]
    idle_timeout: Duration,
    /// Origins allowed to send state-changing requests.
    #[serde(default)]
    allowed_origins: Vec<String>,
    /// Live sessions kept at most (default 100000).
    #[serde(default)]
    max_sessions: Option<usize>,
    /// Live sessions one subject keeps at most (default 16, at most
    /// `max_sessions`).
    #[serde(default)]
    max_sessions_per_subject: Option<usize>,
}

fn session_cookie_name() -> String {
    "session".to_owned()
}

/// `[auth.lockout]` as written.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawLockoutConfig {
    enabled: bool,
    /// Failures allowed per client or credential within `window`.
    max_failures: u32,
    #[serde(with = "duration")]
    window: Duration,
    /// The first lockout's length; each further lockout within `window`
    /// doubles it.
    #[serde(with = "duration")]
    base_lockout: Duration,
    #[serde(with = "duration")]
    max_lockout: Duration,
}

impl Default for RawLockoutConfig {
    fn default() -> RawLockoutConfig {
        let LockoutConfig { enabled, max_failures, window, base_lockout, max_lockout } =
            LockoutConfig::default();
        RawLockoutConfig { enabled, max_failures, window, base_lockout, max_lockout }
    }
}

/// Validated `[auth]` settings. Build the parts from it:
/// [`JwtVerifier::new`](super::JwtVerifier::new),
/// [`ApiKeyStore::new`](super::ApiKeyStore::new),
/// [`SessionManager::new`](super::SessionManager::new).
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub(crate) jwt: JwtConfig,
    pub(crate) api_keys: Vec<ApiKeyEntry>,
    pub(crate) roles: RoleMap,
    pub(crate) session: Option<SessionConfig>,
    pub(crate) lockout: LockoutConfig,
}

impl AuthConfig {
    /// The role map.
    pub fn roles(&self) -> &RoleMap {
        &self.roles
    }

    /// The JWT settings.
    pub fn jwt(&self) -> &JwtConfig {
        &self.jwt
    }

    /// The session settings, when sessions are configured.
    pub fn session(&self) -> Option<&SessionConfig> {
        self.session.as_ref()
    }

    /// The lockout settings.
    pub fn lockout(&self) -> &LockoutConfig {
        &self.lockout
    }
}

/// Validated `[auth.jwt]`.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub(crate) keys: Vec<JwtKey>,
    pub(crate) jwks: Option<JwksConfig>,
    pub(crate) issuers: Vec<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) lifetime: Duration,
    pub(crate) leeway: Duration,
    pub(crate) max_token_bytes: usize,
    pub(crate) cache_capacity: usize,
}

impl JwtConfig {
    /// Whether any key or JWKS file is configured.
    pub fn is_enabled(&self) -> bool {
        !self.keys.is_empty() || self.jwks.is_some()
    }

    /// How long an issued token is valid (`auth.jwt.lifetime`, default 24h).
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }
}

#[derive(Debug, Clone)]
pub(crate) struct JwksConfig {
    pub(crate) file: PathBuf,
    pub(crate) check_interval: Duration,
    pub(crate) min_reload_interval: Duration,
    pub(crate) default_rsa_algorithm: Option<Algorithm>,
    pub(crate) drop_keys_when_unreadable: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct ApiKeyEntry {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) hash: ApiKeyHash,
    pub(crate) permissions: PermissionSet,
    pub(crate) roles: Vec<String>,
}

/// Validated `[auth.session]`.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub(crate) secret: Secret<String>,
    pub(crate) cookie_name: String,
    pub(crate) same_site_strict: bool,
    pub(crate) absolute_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) max_sessions: usize,
    pub(crate) max_sessions_per_subject: usize,
}

/// Validated `[auth.lockout]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockoutConfig {
    pub(crate) enabled: bool,
    pub(crate) max_failures: u32,
    pub(crate) window: Duration,
    pub(crate) base_lockout: Duration,
    pub(crate) max_lockout: Duration,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        LockoutConfig {
            enabled: true,
            max_failures: 10,
            window: Duration::from_secs(300),
            base_lockout: Duration::from_secs(30),
            max_lockout: Duration::from_secs(900),
        }
    }
}

/// `[auth]` as a section of the whole configuration. Validation also reads
/// the files the settings name (PEM key files, the JWKS file), so a missing
/// or broken one is reported with every other problem (the verifier reads
/// the JWKS file again when it is built).
impl Section for AuthConfig {
    const NAME: &'static str = "auth";
    type Raw = RawAuthConfig;

    /// Validates each table on its own, so every table's problem is
    /// reported at once; when several tables have problems, one error for
    /// them all, each problem in its source chain as a [`ConfigError`].
    fn from_raw(raw: RawAuthConfig) -> Result<AuthConfig, Error> {
        let mut problems = Vec::new();
        let mut roles = RoleMap::new();
        for (role, permissions) in &raw.roles {
            let set = permission_set(&format!("auth.roles.{role}"), permissions);
            // A role with a bad permission still exists for the keys naming it.
            roles.insert(role.clone(), keep(&mut problems, set).unwrap_or_else(PermissionSet::new));
        }
        let jwt = jwt_config(raw.jwt, &mut problems);
        let api_keys = keep(&mut problems, api_keys(raw.api_keys, &roles));
        let session = keep(&mut problems, raw.session.map(session_config).transpose());
        let lockout = keep(&mut problems, lockout_config(&raw.lockout));
        match (jwt, api_keys, session, lockout) {
            (Some(jwt), Some(api_keys), Some(session), Some(lockout)) if problems.is_empty() => {
                Ok(AuthConfig { jwt, api_keys, roles, session, lockout })
            }
            _ if problems.len() == 1 => Err(problems.remove(0)),
            _ => Err(ConfigError::new(problems).into()),
        }
    }
}

/// The value of a part that validated; a problem noted otherwise.
fn keep<T>(problems: &mut Vec<Error>, part: Result<T, Error>) -> Option<T> {
    part.map_err(|err| problems.push(err)).ok()
}

fn bad(key: impl Into<String>, why: &'static str) -> Error {
    Error::configuration(key, why)
}

fn permission_set(key: &str, permissions: &[String]) -> Result<PermissionSet, Error> {
    let mut set = PermissionSet::new();
    for (i, text) in permissions.iter().enumerate() {
        let permission = super::permission::Permission::parse(text).map_err(|err| {
            bad(format!("{key}[{i}]"), "is not a valid permission").with_source(err)
        })?;
        set.insert(permission);
    }
    Ok(set)
}

/// `[auth.jwt]`, noting each of its tables' problems (the JWKS file's too).
fn jwt_config(raw: RawJwtConfig, problems: &mut Vec<Error>) -> Option<JwtConfig> {
    let keys = keep(problems, jwt_keys(raw.keys));
    let jwks = keep(problems, raw.jwks.map(jwks_config).transpose());
    if let Some(Some(jwks)) = &jwks {
        keep(problems, super::jwt::check_jwks_file(jwks));
    }
    if raw.lifetime < Duration::from_secs(1) || raw.lifetime > MAX_TOKEN_LIFETIME {
        problems.push(bad("auth.jwt.lifetime", "must be between 1s and 366 days"));
    }
    if raw.leeway > Duration::from_secs(300) {
        problems.push(bad("auth.jwt.leeway", "must be at most 5 minutes"));
    }
    let max_token_bytes = match usize::try_from(raw.max_token_bytes) {
        Ok(bytes) if (256..=65_536).contains(&bytes) => bytes,
        _ => {
            problems.push(bad("auth.jwt.max_token_bytes", "must be between 256 and 65536"));
            0
        }
    };
    if raw.issuers.iter().any(String::is_empty) {
        problems.push(bad("auth.jwt.issuers", "must not hold an empty issuer"));
    }
    if raw.audiences.iter().any(String::is_empty) {
        problems.push(bad("auth.jwt.audiences", "must not hold an empty audience"));
    }
    Some(JwtConfig {
        keys: keys?,
        jwks: jwks?,
        issuers: raw.issuers,
        audiences: raw.audiences,
        lifetime: raw.lifetime,
        leeway: raw.leeway,
        max_token_bytes,
        cache_capacity: raw.cache_capacity,
    })
}

fn jwks_config(jwks: RawJwks) -> Result<JwksConfig, Error> {
    let default_rsa_algorithm = match jwks.default_rsa_algorithm.as_deref() {
        None => None,
        Some(text) => {
            let key = "auth.jwt.jwks.default_rsa_algorithm";
            let alg = algorithm(key, text)?;
            if alg.family() != AlgorithmFamily::Rsa {
                return Err(bad(key, "must be an RSA algorithm (RS* or PS*)"));
            }
            Some(alg)
        }
    };
    Ok(JwksConfig {
        check_interval: jwks.check_interval,
        min_reload_interval: jwks.min_reload_interval,
        default_rsa_algorithm,
        drop_keys_when_unreadable: jwks.drop_keys_when_unreadable,
        file: jwks.file,
    })
}

fn api_keys(raw: Vec<RawApiKey>, roles: &RoleMap) -> Result<Vec<ApiKeyEntry>, Error> {
    let mut ids = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, key) in raw.into_iter().enumerate() {
        let path = format!("auth.api_keys[{i}]");
        if parse_key_id(&key.id).is_none() {
            return Err(bad(format!("{path}.id"), "is not an API key id (12 of a-z, 0-9)"));
        }
        if !ids.insert(key.id.clone()) {
            return Err(bad(format!("{path}.id"), "is used by another key"));
        }
        if key.name.is_empty() || key.name.len() > 128 {
            return Err(bad(format!("{path}.name"), "must have 1 to 128 characters"));
        }
        let hash = ApiKeyHash::parse(&key.hash)
            .ok_or_else(|| bad(format!("{path}.hash"), "is not \"sha256:\" and 64 hex digits"))?;
        // A misspelt role would grant nothing, silently.
        if let Some(j) = key.roles.iter().position(|role| roles.get(role).is_none()) {
            return Err(bad(format!("{path}.roles[{j}]"), "names no role defined in auth.roles"));
        }
        out.push(ApiKeyEntry {
            permissions: permission_set(&format!("{path}.permissions"), &key.permissions)?,
            id: key.id,
            name: key.name,
            hash,
            roles: key.roles,
        });
    }
    Ok(out)
}

fn session_config(raw: RawSessionConfig) -> Result<SessionConfig, Error> {
    if raw.secret.expose().len() < 32 {
        return Err(bad("auth.session.secret", "is shorter than 32 bytes"));
    }
    let name = raw.cookie_name;
    if name.is_empty()
        || name.len() > 64
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
    {
        return Err(bad("auth.session.cookie_name", "must be 1 to 64 of A-Z, a-z, 0-9, '_', '-'"));
    }
    let same_site_strict = match raw.same_site.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("lax") => false,
        Some("strict") => true,
        Some(_) => return Err(bad("auth.session.same_site", "must be \"lax\" or \"strict\"")),
    };
    let (absolute_timeout, idle_timeout) = (raw.absolute_timeout, raw.idle_timeout);
    if idle_timeout.is_zero() || absolute_timeout < idle_timeout {
        return Err(bad(
            "auth.session.idle_timeout",
            "must be more than zero and at most absolute_timeout",
        ));
    }
    for (i, origin) in raw.allowed_origins.iter().enumerate() {
        if !is_origin(origin) {
            return Err(bad(
                format!("auth.session.allowed_origins[{i}]"),
                "is not an origin such as \"https://app.example.com\"",
            ));
        }
    }
    let max_sessions = raw.max_sessions.unwrap_or(100_000);
    if max_sessions == 0 {
        return Err(bad("auth.session.max_sessions", "must be at least 1"));
    }
    let max_sessions_per_subject = raw.max_sessions_per_subject.unwrap_or(max_sessions.min(16));
    if max_sessions_per_subject == 0 || max_sessions_per_subject > max_sessions {
        return Err(bad(
            "auth.session.max_sessions_per_subject",
            "must be at least 1 and at most max_sessions",
        ));
    }
    Ok(SessionConfig {
        secret: raw.secret,
        cookie_name: format!("__Host-{name}"),
        same_site_strict,
        absolute_timeout,
        idle_timeout,
        allowed_origins: raw.allowed_origins,
        max_sessions,
        max_sessions_per_subject,
    })
}

fn lockout_config(raw: &RawLockoutConfig) -> Result<LockoutConfig, Error> {
    let config = LockoutConfig {
        enabled: raw.enabled,
        max_failures: raw.max_failures,
        window: raw.window,
        base_lockout: raw.base_lockout,
        max_lockout: raw.max_lockout,
    };
    if config.max_failures == 0 {
        return Err(bad("auth.lockout.max_failures", "must be at least 1"));
    }
    if config.window.is_zero() {
        return Err(bad("auth.lockout.window", "must be more than zero"));
    }
    if config.base_lockout.is_zero() || config.max_lockout < config.base_lockout {
        return Err(bad(
            "auth.lockout.max_lockout",
            "must be at least base_lockout, which must be more than zero",
        ));
    }
    Ok(config)
}

/// The effective settings as `config show` prints them: every secret as
/// `******`, keys by id and algorithm, key material never.
impl serde::Serialize for AuthConfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let secs = format_duration;
        let keys: Vec<serde_json::Value> = self
            .jwt
            .keys
            .iter()
            .map(|k| {
                let material = if k.encoding.is_some() { "secret" } else { "public_key" };
                serde_json::json!({"kid": k.kid, "algorithm": format!("{:?}", k.algorithm), material: MASK})
            })
            .collect();
        let roles: BTreeMap<&String, Vec<String>> =
            self.roles.iter().map(|(role, set)| (role, set.to_strings())).collect();
        let value = serde_json::json!({
            "jwt": {
                "keys": keys,
                "jwks": self.jwt.jwks.as_ref().map(|j| serde_json::json!({
                    "file": j.file,
                    "check_interval": secs(j.check_interval),
                    "min_reload_interval": secs(j.min_reload_interval),
                    "default_rsa_algorithm": j.default_rsa_algorithm.map(|a| format!("{a:?}")),
                    "drop_keys_when_unreadable": j.drop_keys_when_unreadable,
                })),
                "issuers": self.jwt.issuers,
                "audiences": self.jwt.audiences,
                "lifetime": secs(self.jwt.lifetime),
                "leeway": secs(self.jwt.leeway),
                "max_token_bytes": format_byte_size(self.jwt.max_token_bytes as u64),
                "cache_capacity": self.jwt.cache_capacity,
            },
            "api_keys": self.api_keys.iter().map(|k| serde_json::json!({
                "id": k.id, "name": k.name, "hash": k.hash.to_string(),
                "permissions": k.permissions.to_strings(), "roles": k.roles,
            })).collect::<Vec<_>>(),
            "roles": roles,
            "session": self.session.as_ref().map(|s| serde_json::json!({
                "secret": s.secret,
                "cookie_name": s.cookie_name,
                "same_site": if s.same_site_strict { "strict" } else { "lax" },
                "absolute_timeout": secs(s.absolute_timeout),
                "idle_timeout": secs(s.idle_timeout),
                "allowed_origins": s.allowed_origins,
                "max_sessions": s.max_sessions,
                "max_sessions_per_subject": s.max_sessions_per_subject,
            })),
            "lockout": {
                "enabled": self.lockout.enabled,
                "max_failures": self.lockout.max_failures,
                "window": secs(self.lockout.window),
                "base_lockout": secs(self.lockout.base_lockout),
                "max_lockout": secs(self.lockout.max_lockout),
            },
        });
        value.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printing_the_settings_shows_no_secret() {
        let config = AuthConfig::from_value(serde_json::json!({
            "jwt": {"keys": [{"kid": "k", "algorithm": "HS256", "secret": "canary-jwt-secret-0123456789-abcdef"}]},
            "session": {"secret": "canary-session-secret-0123456789-abc"},
            "roles": {"clerk": ["orders:*"]},
        }))
        .expect("valid");
        let shown = format!("{} {config:?}", serde_json::to_string(&config).expect("serializes"));
        assert!(!shown.contains("canary"), "{shown}");
        assert!(shown.contains("******"));
        let value = serde_json::to_value(&config).expect("serializes");
        assert_eq!(value["jwt"]["keys"][0]["secret"], "******");
        assert_eq!(value["jwt"]["leeway"], "30s");
        assert_eq!(value["jwt"]["lifetime"], "24h");
        assert_eq!(value["session"]["secret"], MASK);
        assert_eq!(value["roles"]["clerk"][0], "orders:*");
    }
}
