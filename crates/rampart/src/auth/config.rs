//! The `[auth]` settings: a serde raw form and its one validation into
//! [`AuthConfig`].
//!
//! Errors name the key (`auth.jwt.keys[0].secret`) and why, never the value.
//!
//! ```
//! use rampart::auth::RawAuthConfig;
//!
//! let raw: RawAuthConfig = serde_json::from_value(serde_json::json!({
//!     "jwt": { "keys": [{ "kid": "k1", "algorithm": "HS256",
//!                         "secret": "an-hs256-secret-of-at-least-32-bytes!" }] },
//!     "roles": { "clerk": ["orders:read", "orders:write"] }
//! })).unwrap();
//! let config = raw.validate().unwrap();
//! assert!(config.roles().get("clerk").unwrap().grants("orders:write"));
//!
//! let bad: RawAuthConfig = serde_json::from_value(serde_json::json!({
//!     "jwt": { "keys": [{ "kid": "k1", "algorithm": "HS256", "secret": "short-hunter2" }] }
//! })).unwrap();
//! let err = bad.validate().unwrap_err();
//! assert_eq!(err.config_key(), Some("auth.jwt.keys[0].secret"));
//! assert!(!format!("{err:?}").contains("hunter2"));
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::config::Secret;
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use serde::Deserialize;

use super::api_key::{ApiKeyHash, parse_key_id};
use super::permission::{PermissionSet, RoleMap};
use crate::error::{Error, io_reason};

/// `[auth]` as written in the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthConfig {
    /// `[auth.jwt]`.
    #[serde(default)]
    pub jwt: RawJwtConfig,
    /// `[[auth.api_keys]]`: one table per key, as `rampart apikey new` prints.
    #[serde(default)]
    pub api_keys: Vec<RawApiKey>,
    /// `[auth.roles]`: role name → permissions it grants.
    #[serde(default)]
    pub roles: BTreeMap<String, Vec<String>>,
    /// `[auth.session]`: browser sessions; absent means none.
    #[serde(default)]
    pub session: Option<RawSessionConfig>,
    /// `[auth.lockout]`.
    #[serde(default)]
    pub lockout: RawLockoutConfig,
}

/// `[auth.jwt]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwtConfig {
    /// Keys given in the configuration itself.
    #[serde(default)]
    pub keys: Vec<RawJwtKey>,
    /// A JWKS file of public keys, reloaded when it changes.
    #[serde(default)]
    pub jwks: Option<RawJwks>,
    /// Accepted `iss` values; when set, tokens must carry one of them.
    #[serde(default)]
    pub issuers: Vec<String>,
    /// Accepted `aud` values; when set, tokens must name one of them.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf` (default "30s", at most "5m").
    #[serde(default)]
    pub leeway: Option<String>,
    /// Tokens longer than this are refused before any decoding (default 8192).
    #[serde(default)]
    pub max_token_bytes: Option<usize>,
    /// Verified tokens remembered (default 10000; 0 turns the cache off).
    #[serde(default)]
    pub cache_capacity: Option<usize>,
}

/// One `[[auth.jwt.keys]]` entry: exactly one of `secret`, `public_key`,
/// `public_key_file`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwtKey {
    /// The key id tokens name in their `kid` header.
    pub kid: String,
    /// The one algorithm this key verifies: HS256/384/512, RS256/384/512,
    /// PS256/384/512, ES256/384, EdDSA.
    pub algorithm: String,
    /// The shared secret of an HS key.
    #[serde(default)]
    pub secret: Option<Secret<String>>,
    /// A PEM public key (RS, PS, ES, EdDSA).
    #[serde(default)]
    pub public_key: Option<String>,
    /// A file holding a PEM public key.
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
}

/// `[auth.jwt.jwks]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwks {
    /// The JWKS file (`{"keys": [...]}`).
    pub file: PathBuf,
    /// How often the file is checked for changes (default "30s").
    #[serde(default)]
    pub check_interval: Option<String>,
    /// An unknown `kid` re-reads the file at most once per this interval
    /// (default "30s").
    #[serde(default)]
    pub min_reload_interval: Option<String>,
    /// The algorithm for RSA keys that carry no `alg` (otherwise skipped).
    #[serde(default)]
    pub default_rsa_algorithm: Option<String>,
    /// Whether the file's keys end once it has been missing or unusable for
    /// a whole `check_interval` (default true); false keeps them until it
    /// reads again.
    #[serde(default)]
    pub drop_keys_when_unreadable: Option<bool>,
}

/// One `[[auth.api_keys]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiKey {
    /// The key's public id (the part after `rk_`).
    pub id: String,
    /// Who or what holds the key; becomes the principal's subject.
    pub name: String,
    /// `sha256:<64 hex digits>` of the whole key.
    pub hash: String,
    /// Permissions granted directly.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Roles granted.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// `[auth.session]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSessionConfig {
    /// At least 32 bytes; the cookie encryption key is derived from it.
    pub secret: Secret<String>,
    /// The cookie name after the `__Host-` prefix (default "session").
    #[serde(default)]
    pub cookie_name: Option<String>,
    /// "lax" (default) or "strict".
    #[serde(default)]
    pub same_site: Option<String>,
    /// Lifetime from sign-in, whatever the activity (default "12h").
    #[serde(default)]
    pub absolute_timeout: Option<String>,
    /// Lifetime without requests (default "30m").
    #[serde(default)]
    pub idle_timeout: Option<String>,
    /// Origins (`https://app.example.com`) allowed to send state-changing
    /// requests; a request whose `Origin` is not listed is refused.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Live sessions kept at most (default 100000); past it sign-ins fail.
    #[serde(default)]
    pub max_sessions: Option<usize>,
    /// Live sessions one subject keeps at most (default 16); a new sign-in
    /// past it ends that subject's oldest session.
    #[serde(default)]
    pub max_sessions_per_subject: Option<usize>,
}

/// `[auth.lockout]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLockoutConfig {
    /// On by default.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Failures allowed per client or credential within `window` (default 10).
    #[serde(default)]
    pub max_failures: Option<u32>,
    /// The window failures are counted in (default "5m").
    #[serde(default)]
    pub window: Option<String>,
    /// The first lockout's length (default "30s"); each further lockout
    /// within `window` doubles it.
    #[serde(default)]
    pub base_lockout: Option<String>,
    /// The longest lockout (default "15m").
    #[serde(default)]
    pub max_lockout: Option<String>,
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
    pub(crate) leeway: Duration,
    pub(crate) max_token_bytes: usize,
    pub(crate) cache_capacity: usize,
}

impl JwtConfig {
    /// Whether any key or JWKS file is configured.
    pub fn is_enabled(&self) -> bool {
        !self.keys.is_empty() || self.jwks.is_some()
    }
}

/// A key pinned to one algorithm.
#[derive(Clone)]
pub(crate) struct JwtKey {
    pub(crate) kid: String,
    pub(crate) algorithm: Algorithm,
    pub(crate) decoding: DecodingKey,
    /// HS keys can also sign (token issuing).
    pub(crate) encoding: Option<EncodingKey>,
    /// HS keys, prepared once: jsonwebtoken would derive the HMAC key for
    /// every token, which is a third of an uncached verification.
    pub(crate) hmac: Option<hmac::Key>,
}

impl JwtKey {
    /// Whether `signature` (base64url) signs `message` under this key.
    /// HMAC tags are compared in constant time by aws-lc.
    pub(crate) fn verify_signature(&self, message: &str, signature: &str) -> bool {
        let Some(key) = &self.hmac else {
            return matches!(
                jsonwebtoken::crypto::verify(
                    signature,
                    message.as_bytes(),
                    &self.decoding,
                    self.algorithm
                ),
                Ok(true)
            );
        };
        // The longest HMAC tag (HS512) is 64 bytes; a longer one is wrong anyway.
        let mut tag = [0u8; 64];
        match URL_SAFE_NO_PAD.decode_slice(signature, &mut tag) {
            Ok(len) => hmac::verify(key, message.as_bytes(), &tag[..len]).is_ok(),
            Err(_) => false,
        }
    }
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
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

/// `[auth]` as a section of the whole configuration. Loading also reads
/// the JWKS file, so a missing or broken one is reported with every other
/// problem (the verifier reads it again when it is built).
impl crate::config::Section for AuthConfig {
    type Raw = RawAuthConfig;

    fn from_raw(raw: RawAuthConfig) -> Result<AuthConfig, Error> {
        raw.validate_reading(true)
    }
}

impl RawAuthConfig {
    /// Validates every setting into an [`AuthConfig`]. Key files named in
    /// the settings are read here; the JWKS file is read when the verifier
    /// is built.
    ///
    /// # Errors
    /// The problem, naming its key; when several tables have problems, one
    /// error for them all, each problem in its source chain as a
    /// [`ConfigError`](crate::config::ConfigError).
    pub fn validate(self) -> Result<AuthConfig, Error> {
        self.validate_reading(false)
    }

    /// Validates each table on its own, so every table's problem is
    /// reported at once; with `read_jwks`, checks the JWKS file too.
    fn validate_reading(self, read_jwks: bool) -> Result<AuthConfig, Error> {
        let mut problems = Vec::new();
        let mut roles = RoleMap::new();
        for (role, permissions) in &self.roles {
            let set = permission_set(&format!("auth.roles.{role}"), permissions);
            // A role with a bad permission still exists for the keys naming it.
            roles.insert(role.clone(), keep(&mut problems, set).unwrap_or_else(PermissionSet::new));
        }
        let jwt = jwt_config(self.jwt, &mut problems, read_jwks);
        let api_keys = keep(&mut problems, api_keys(self.api_keys, &roles));
        let session = keep(&mut problems, self.session.map(session_config).transpose());
        let lockout = keep(&mut problems, lockout_config(&self.lockout));
        match (jwt, api_keys, session, lockout) {
            (Some(jwt), Some(api_keys), Some(session), Some(lockout)) if problems.is_empty() => {
                Ok(AuthConfig { jwt, api_keys, roles, session, lockout })
            }
            _ if problems.len() == 1 => Err(problems.remove(0)),
            _ => Err(crate::config::ConfigError::new(problems).into()),
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

fn duration(key: &str, raw: Option<&str>, default: Duration) -> Result<Duration, Error> {
    match raw {
        None => Ok(default),
        Some(text) => humantime::parse_duration(text.trim())
            .map_err(|_| bad(key, "is not a duration such as \"30s\", \"15m\" or \"24h\"")),
    }
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

fn algorithm(key: &str, text: &str) -> Result<Algorithm, Error> {
    Algorithm::from_str(text).map_err(|_| {
        bad(key, "is not a supported algorithm (HS256/384/512, RS256/384/512, PS256/384/512, ES256/384, EdDSA)")
    })
}

/// The fewest secret bytes for an HS algorithm: the hash's output size
/// (RFC 7518, section 3.2).
fn min_hs_secret(algorithm: Algorithm) -> usize {
    match algorithm {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}

/// `[auth.jwt]`, noting each of its tables' problems; with `read_jwks`,
/// the JWKS file's too.
fn jwt_config(raw: RawJwtConfig, problems: &mut Vec<Error>, read_jwks: bool) -> Option<JwtConfig> {
    let keys = keep(problems, jwt_keys(raw.keys));
    let jwks = keep(problems, raw.jwks.map(jwks_config).transpose());
    if read_jwks && let Some(Some(jwks)) = &jwks {
        keep(problems, super::jwt::check_jwks_file(jwks));
    }
    let leeway = keep(problems, leeway(raw.leeway.as_deref()));
    let max_token_bytes = raw.max_token_bytes.unwrap_or(8192);
    if !(256..=65_536).contains(&max_token_bytes) {
        problems.push(bad("auth.jwt.max_token_bytes", "must be between 256 and 65536"));
    }
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
        leeway: leeway?,
        max_token_bytes,
        cache_capacity: raw.cache_capacity.unwrap_or(10_000),
    })
}

fn jwt_keys(raw: Vec<RawJwtKey>) -> Result<Vec<JwtKey>, Error> {
    let mut keys = Vec::with_capacity(raw.len());
    let mut kids = HashSet::new();
    for (i, key) in raw.into_iter().enumerate() {
        let path = format!("auth.jwt.keys[{i}]");
        if key.kid.is_empty() || key.kid.len() > 128 {
            return Err(bad(format!("{path}.kid"), "must have 1 to 128 characters"));
        }
        if !kids.insert(key.kid.clone()) {
            return Err(bad(format!("{path}.kid"), "is used by another key"));
        }
        keys.push(jwt_key(&path, key)?);
    }
    Ok(keys)
}

fn jwks_config(jwks: RawJwks) -> Result<JwksConfig, Error> {
    Ok(JwksConfig {
        check_interval: duration(
            "auth.jwt.jwks.check_interval",
            jwks.check_interval.as_deref(),
            Duration::from_secs(30),
        )?,
        min_reload_interval: duration(
            "auth.jwt.jwks.min_reload_interval",
            jwks.min_reload_interval.as_deref(),
            Duration::from_secs(30),
        )?,
        default_rsa_algorithm: match jwks.default_rsa_algorithm.as_deref() {
            None => None,
            Some(text) => {
                let key = "auth.jwt.jwks.default_rsa_algorithm";
                let alg = algorithm(key, text)?;
                if alg.family() != AlgorithmFamily::Rsa {
                    return Err(bad(key, "must be an RSA algorithm (RS* or PS*)"));
                }
                Some(alg)
            }
        },
        drop_keys_when_unreadable: jwks.drop_keys_when_unreadable.unwrap_or(true),
        file: jwks.file,
    })
}

fn leeway(raw: Option<&str>) -> Result<Duration, Error> {
    let leeway = duration("auth.jwt.leeway", raw, Duration::from_secs(30))?;
    if leeway > Duration::from_secs(300) {
        return Err(bad("auth.jwt.leeway", "must be at most 5 minutes"));
    }
    Ok(leeway)
}

fn jwt_key(path: &str, key: RawJwtKey) -> Result<JwtKey, Error> {
    let alg = algorithm(&format!("{path}.algorithm"), &key.algorithm)?;
    let given = [key.secret.is_some(), key.public_key.is_some(), key.public_key_file.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(bad(path, "needs exactly one of secret, public_key, public_key_file"));
    }
    if alg.family() == AlgorithmFamily::Hmac {
        let Some(secret) = key.secret else {
            return Err(bad(format!("{path}.secret"), "is required for an HS algorithm"));
        };
        let bytes = secret.expose().as_bytes();
        if bytes.len() < min_hs_secret(alg) {
            return Err(bad(
                format!("{path}.secret"),
                "is shorter than the algorithm's hash (32 bytes for HS256, 48 for HS384, 64 for HS512)",
            ));
        }
        // A PEM block as an HMAC secret is the algorithm-confusion mistake.
        if secret.expose().contains("-----BEGIN") {
            return Err(bad(
                format!("{path}.secret"),
                "is a PEM key: an HS key needs a random secret",
            ));
        }
        return Ok(JwtKey {
            kid: key.kid,
            algorithm: alg,
            decoding: DecodingKey::from_secret(bytes),
            encoding: Some(EncodingKey::from_secret(bytes)),
            hmac: Some(hmac::Key::new(hmac_algorithm(alg), bytes)),
        });
    }
    if key.secret.is_some() {
        return Err(bad(format!("{path}.secret"), "is only for HS algorithms: give public_key"));
    }
    let (pem, pem_key) = match (key.public_key, key.public_key_file) {
        (Some(pem), _) => (pem.into_bytes(), format!("{path}.public_key")),
        (None, Some(file)) => {
            let pem_key = format!("{path}.public_key_file");
            let pem = std::fs::read(&file).map_err(|err| {
                let why = format!("cannot be read: {}", io_reason(&err));
                Error::configuration(pem_key.clone(), why)
            })?;
            (pem, pem_key)
        }
        (None, None) => return Err(bad(path, "needs public_key or public_key_file")),
    };
    Ok(JwtKey {
        kid: key.kid,
        algorithm: alg,
        decoding: public_key(&pem_key, alg, &pem)?,
        encoding: None,
        hmac: None,
    })
}

/// The HMAC of an HS algorithm.
fn hmac_algorithm(alg: Algorithm) -> hmac::Algorithm {
    match alg {
        Algorithm::HS384 => hmac::HMAC_SHA384,
        Algorithm::HS512 => hmac::HMAC_SHA512,
        _ => hmac::HMAC_SHA256,
    }
}

/// A PEM public key for `alg`'s family; private keys are refused.
fn public_key(key: &str, alg: Algorithm, pem: &[u8]) -> Result<DecodingKey, Error> {
    if pem.windows(11).any(|w| w == b"PRIVATE KEY") {
        return Err(bad(key, "holds a private key: give the public key only"));
    }
    let parsed = match alg.family() {
        AlgorithmFamily::Rsa => DecodingKey::from_rsa_pem(pem),
        AlgorithmFamily::Ec => DecodingKey::from_ec_pem(pem),
        AlgorithmFamily::Ed => DecodingKey::from_ed_pem(pem),
        AlgorithmFamily::Hmac => return Err(bad(key, "an HS algorithm takes a secret")),
    };
    parsed
        .map_err(|err| bad(key, "is not a PEM public key of the algorithm's type").with_source(err))
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
    let name = raw.cookie_name.unwrap_or_else(|| "session".to_owned());
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
    let absolute_timeout = duration(
        "auth.session.absolute_timeout",
        raw.absolute_timeout.as_deref(),
        Duration::from_secs(12 * 3600),
    )?;
    let idle_timeout = duration(
        "auth.session.idle_timeout",
        raw.idle_timeout.as_deref(),
        Duration::from_secs(1800),
    )?;
    if idle_timeout.is_zero() || absolute_timeout < idle_timeout {
        return Err(bad(
            "auth.session.idle_timeout",
            "must be more than zero and at most absolute_timeout",
        ));
    }
    for (i, origin) in raw.allowed_origins.iter().enumerate() {
        let ok = (origin.starts_with("https://") || origin.starts_with("http://"))
            && !origin.ends_with('/')
            && origin
                .split("://")
                .nth(1)
                .is_some_and(|host| !host.is_empty() && !host.contains('/'));
        if !ok {
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
    let default = LockoutConfig::default();
    let config = LockoutConfig {
        enabled: raw.enabled.unwrap_or(default.enabled),
        max_failures: raw.max_failures.unwrap_or(default.max_failures),
        window: duration("auth.lockout.window", raw.window.as_deref(), default.window)?,
        base_lockout: duration(
            "auth.lockout.base_lockout",
            raw.base_lockout.as_deref(),
            default.base_lockout,
        )?,
        max_lockout: duration(
            "auth.lockout.max_lockout",
            raw.max_lockout.as_deref(),
            default.max_lockout,
        )?,
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
        const MASK: &str = "******";
        let secs = |d: Duration| humantime::format_duration(d).to_string();
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
                "leeway": secs(self.jwt.leeway),
                "max_token_bytes": self.jwt.max_token_bytes,
                "cache_capacity": self.jwt.cache_capacity,
            },
            "api_keys": self.api_keys.iter().map(|k| serde_json::json!({
                "id": k.id, "name": k.name, "hash": k.hash.to_string(),
                "permissions": k.permissions.to_strings(), "roles": k.roles,
            })).collect::<Vec<_>>(),
            "roles": roles,
            "session": self.session.as_ref().map(|s| serde_json::json!({
                "secret": MASK,
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
        let raw: RawAuthConfig = serde_json::from_value(serde_json::json!({
            "jwt": {"keys": [{"kid": "k", "algorithm": "HS256", "secret": "canary-jwt-secret-0123456789-abcdef"}]},
            "session": {"secret": "canary-session-secret-0123456789-abc"},
            "roles": {"clerk": ["orders:*"]},
        }))
        .expect("raw");
        let config = raw.validate().expect("valid");
        let shown = format!("{} {config:?}", serde_json::to_string(&config).expect("serializes"));
        assert!(!shown.contains("canary"), "{shown}");
        assert!(shown.contains("******"));
        let value = serde_json::to_value(&config).expect("serializes");
        assert_eq!(value["jwt"]["keys"][0]["secret"], "******");
        assert_eq!(value["jwt"]["leeway"], "30s");
        assert_eq!(value["roles"]["clerk"][0], "orders:*");
    }
}
