//! Who is calling: the value a successful authentication yields.
//!
//! The public documentation is on [`Principal`].

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use super::permission::{PermissionSet, Requirement};
use crate::error::Error;

/// How a principal proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// A bearer JWT.
    Jwt,
    /// A rampart API key.
    ApiKey,
    /// A browser session cookie.
    Session,
}

impl AuthMethod {
    /// A short lower-case name (`jwt`, `api_key`, `session`), as used in
    /// metrics and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Jwt => "jwt",
            AuthMethod::ApiKey => "api_key",
            AuthMethod::Session => "session",
        }
    }
}

/// An authenticated caller. Cheap to clone (one reference count).
///
/// A [`Principal`] has no public constructor: only `rampart::auth` makes one,
/// after a token, API key or session checked out. A handler that takes a
/// `Principal` therefore cannot run for an unauthenticated request: skipping
/// the check does not compile.
///
/// ```compile_fail
/// // Outside rampart::auth there is no way to make one.
/// let p = rampart::auth::Principal { subject: "root".into() };
/// ```
#[derive(Clone)]
pub struct Principal {
    inner: Arc<Inner>,
}

struct Inner {
    subject: String,
    roles: Vec<String>,
    permissions: PermissionSet,
    method: AuthMethod,
    /// The credential's own id: the JWT key id, the API key id, the session id.
    credential_id: Option<String>,
    /// The token's claims as sent (JWTs only), parsed into `claims` on first use:
    /// most requests never look at them, and building the map costs more
    /// than checking the signature.
    claims_json: Option<Vec<u8>>,
    claims: OnceLock<Map<String, Value>>,
}

impl Principal {
    /// Only `auth` makes principals, after a check succeeded.
    pub(crate) fn new(
        subject: String,
        roles: Vec<String>,
        permissions: PermissionSet,
        method: AuthMethod,
        credential_id: Option<String>,
        claims_json: Option<Vec<u8>>,
    ) -> Principal {
        Principal {
            inner: Arc::new(Inner {
                subject,
                roles,
                permissions,
                method,
                credential_id,
                claims_json,
                claims: OnceLock::new(),
            }),
        }
    }

    /// The subject: the JWT `sub`, the API key's name, the session's user.
    pub fn subject(&self) -> &str {
        &self.inner.subject
    }

    /// The roles the credential carried.
    pub fn roles(&self) -> &[String] {
        &self.inner.roles
    }

    /// Every permission granted, directly or through roles.
    pub fn permissions(&self) -> &PermissionSet {
        &self.inner.permissions
    }

    /// How the principal authenticated.
    pub fn method(&self) -> AuthMethod {
        self.inner.method
    }

    /// The id of the credential used (API key id, session id), if it has one.
    pub fn credential_id(&self) -> Option<&str> {
        self.inner.credential_id.as_deref()
    }

    /// The id of the API key used, for a principal an API key made.
    pub(crate) fn api_key_id(&self) -> Option<&str> {
        self.credential_id().filter(|_| self.method() == AuthMethod::ApiKey)
    }

    /// All claims of a JWT, exactly as verified (empty for other methods).
    pub fn claims(&self) -> &Map<String, Value> {
        self.inner.claims.get_or_init(|| {
            let Some(json) = self.inner.claims_json.as_deref() else {
                return Map::new();
            };
            // Verification read every value of this object as the map does,
            // nested far less deeply than serde_json's limit, and refused the
            // token otherwise (`auth::jwt`): this parse cannot fail. Should a
            // change ever break that, it must be loud, not an empty map.
            serde_json::from_slice(json).unwrap_or_else(|err| {
                tracing::error!(
                    target: "rampart::auth",
                    error = %err,
                    "BUG: the claims of a verified token do not parse"
                );
                Map::new()
            })
        })
    }

    /// Whether `permission` is granted.
    pub fn has(&self, permission: &str) -> bool {
        self.inner.permissions.grants(permission)
    }

    /// Checks a requirement: `Ok` or an Authorization error (403) listing
    /// what is missing.
    pub fn authorize(&self, requirement: &Requirement) -> Result<(), Error> {
        requirement.check(&self.inner.permissions)
    }
}

impl fmt::Debug for Principal {
    /// Claims may hold personal data: only their names are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("Principal")
            .field("subject", &inner.subject)
            .field("method", &inner.method)
            .field("roles", &inner.roles)
            .field("permissions", &inner.permissions)
            .field("credential_id", &inner.credential_id)
            .field("claims", &self.claims().keys().collect::<Vec<_>>())
            .finish()
    }
}
