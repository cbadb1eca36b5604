//! Issuing tokens signed with a configured HS key.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, AlgorithmFamily, EncodingKey, Header};
use serde_json::{Map, Value, json};

use crate::auth::config::{JwtConfig, MAX_TOKEN_LIFETIME};
use crate::clock::{Clock, SystemClock};
use crate::error::Error;

/// Signs tokens with an HS key from `[auth.jwt.keys]`, valid for the
/// configured lifetime (`auth.jwt.lifetime`), that the same configuration's
/// [`JwtVerifier`](super::JwtVerifier) accepts.
pub struct TokenIssuer {
    kid: String,
    algorithm: Algorithm,
    key: EncodingKey,
    lifetime: Duration,
    issuer: Option<String>,
    audience: Option<String>,
    clock: Arc<dyn Clock>,
}

impl TokenIssuer {
    /// Uses the HS key named `kid`, or the only HS key when `kid` is `None`.
    /// Each token lives `auth.jwt.lifetime` unless [`issue`](Self::issue) is
    /// given another. The issuer and audience are the first configured ones,
    /// if any.
    pub fn new(config: &JwtConfig, kid: Option<&str>) -> Result<TokenIssuer, Error> {
        let mut hs = config.keys.iter().filter(|k| k.algorithm.family() == AlgorithmFamily::Hmac);
        let key = match kid {
            Some(kid) => hs.find(|k| k.kid == kid).ok_or_else(|| {
                Error::configuration("auth.jwt.keys", "has no HS key with the requested kid")
            })?,
            None => match (hs.next(), hs.next()) {
                (Some(only), None) => only,
                (None, _) => {
                    return Err(Error::configuration(
                        "auth.jwt.keys",
                        "has no HS key to sign with",
                    ));
                }
                (Some(_), Some(_)) => {
                    return Err(Error::configuration(
                        "auth.jwt.keys",
                        "has several HS keys: name one by kid",
                    ));
                }
            },
        };
        let Some(encoding) = key.encoding.clone() else {
            return Err(Error::configuration("auth.jwt.keys", "the HS key cannot sign"));
        };
        Ok(TokenIssuer {
            kid: key.kid.clone(),
            algorithm: key.algorithm,
            key: encoding,
            lifetime: config.lifetime,
            issuer: config.issuers.first().cloned(),
            audience: config.audiences.first().cloned(),
            clock: Arc::new(SystemClock),
        })
    }

    /// The clock `iat`, `nbf` and `exp` are read from (default: the system
    /// clock).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> TokenIssuer {
        self.clock = Arc::new(clock);
        self
    }

    /// Issues a token for `subject` with `permissions` and `roles`, valid for
    /// `ttl` (or the configured lifetime). Carries `iat`, `nbf`, `exp`, a
    /// random `jti`, and `iss` / `aud` when configured.
    pub fn issue(
        &self,
        subject: &str,
        permissions: &[String],
        roles: &[String],
        ttl: Option<Duration>,
    ) -> Result<String, Error> {
        // A subject ends up in logs and audit records: keep it one plain line.
        if subject.is_empty() || subject.len() > MAX_SUBJECT_BYTES {
            return Err(Error::validation("The subject must have 1 to 256 bytes"));
        }
        if subject.chars().any(char::is_control) {
            return Err(Error::validation("The subject must not contain control characters"));
        }
        let ttl = ttl.unwrap_or(self.lifetime);
        check_lifetime(ttl)?;
        let now = self.clock.system_time().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut jti = [0u8; 16];
        getrandom::fill(&mut jti)
            .map_err(|err| Error::internal(std::io::Error::other(err.to_string())))?;
        let mut claims = Map::new();
        claims.insert("sub".into(), subject.into());
        claims.insert("iat".into(), now.into());
        claims.insert("nbf".into(), now.into());
        claims.insert("exp".into(), now.saturating_add(ttl.as_secs()).into());
        claims.insert(
            "jti".into(),
            jti.iter().map(|b| format!("{b:02x}")).collect::<String>().into(),
        );
        if let Some(iss) = &self.issuer {
            claims.insert("iss".into(), iss.as_str().into());
        }
        if let Some(aud) = &self.audience {
            claims.insert("aud".into(), aud.as_str().into());
        }
        if !permissions.is_empty() {
            claims.insert("permissions".into(), json!(permissions));
        }
        if !roles.is_empty() {
            claims.insert("roles".into(), json!(roles));
        }
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &Value::Object(claims), &self.key).map_err(Error::internal)
    }
}

/// The longest subject issued.
const MAX_SUBJECT_BYTES: usize = 256;

fn check_lifetime(ttl: Duration) -> Result<(), Error> {
    if ttl < Duration::from_secs(1) || ttl > MAX_TOKEN_LIFETIME {
        return Err(Error::validation("A token lifetime must be between 1 second and 366 days"));
    }
    Ok(())
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}
