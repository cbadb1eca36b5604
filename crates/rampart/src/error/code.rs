//! Stable machine-readable error codes, and the registry of every code rampart
//! itself emits.
//!
//! A code never changes once released: clients branch on it. The registry is
//! checked at compile time: two entries with the same code do not build. Every
//! entry is documented in `docs/ERRORS.md` (a test keeps the two in step).
//!
//! Applications define their own codes the same way:
//!
//! ```
//! use rampart::error::{Code, Error, ErrorKind};
//!
//! const ORDER_LIMIT: Code = Code::new("ORDER_LIMIT_REACHED");
//! let err = Error::business_rule("You can have at most 10 open orders").with_code(ORDER_LIMIT);
//! assert_eq!(err.code().as_str(), "ORDER_LIMIT_REACHED");
//! assert_eq!(err.kind(), ErrorKind::BusinessRule);
//! ```

use std::fmt;

use serde::{Serialize, Serializer};

use super::ErrorKind;

/// A stable error code such as `"VALIDATION_ERROR"`: upper-case ASCII letters,
/// digits and underscores, starting with a letter.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(&'static str);

impl Code {
    /// Makes a code. The format is checked when the constant is evaluated, so
    /// a malformed code in a `const` does not compile.
    ///
    /// # Panics
    /// When `code` is empty, longer than 64 bytes, or not of the form
    /// `[A-Z][A-Z0-9_]*`.
    pub const fn new(code: &'static str) -> Code {
        let bytes = code.as_bytes();
        assert!(!bytes.is_empty() && bytes.len() <= 64, "an error code has 1 to 64 characters");
        assert!(bytes[0].is_ascii_uppercase(), "an error code starts with an upper-case letter");
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            assert!(
                b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_',
                "an error code holds only A-Z, 0-9 and _"
            );
            i += 1;
        }
        Code(code)
    }

    /// The code as text.
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

/// One entry of the registry: a code, the kind that carries it, and what it means.
#[derive(Debug, Clone, Copy)]
pub struct CodeInfo {
    /// The code.
    pub code: Code,
    /// The kind of the errors that carry it (and so their HTTP status).
    pub kind: ErrorKind,
    /// What the code means, in one sentence.
    pub meaning: &'static str,
}

macro_rules! registry {
    ($($name:ident => $kind:ident, $meaning:literal;)*) => {
        $(
            #[doc = $meaning]
            pub const $name: Code = Code::new(stringify!($name));
        )*

        /// Every code rampart emits, with its kind and meaning.
        pub const REGISTRY: &[CodeInfo] = &[
            $(CodeInfo { code: $name, kind: ErrorKind::$kind, meaning: $meaning },)*
        ];
    };
}

registry! {
    VALIDATION_ERROR => Validation, "The input failed validation; `errors` lists each violation.";
    BUSINESS_RULE_VIOLATION => BusinessRule, "The input is well-formed but breaks a business rule.";
    PAYLOAD_TOO_LARGE => PayloadTooLarge, "The request body or input exceeds the configured size limit.";
    UNSUPPORTED_MEDIA_TYPE => UnsupportedMediaType, "The request body is not in a media type the endpoint accepts (e.g. not JSON).";
    NOT_FOUND => NotFound, "The resource does not exist.";
    CONFLICT => Conflict, "The operation conflicts with the current state of the resource.";
    AUTHENTICATION_FAILED => Authentication, "Credentials are missing or invalid.";
    AUTHENTICATION_REQUIRED => Authentication, "No credentials were presented; `WWW-Authenticate` says which scheme to use.";
    TOKEN_INVALID => Authentication, "The bearer token is malformed, too large, signed with an unknown key or algorithm, badly signed, or has a wrong or missing claim.";
    TOKEN_EXPIRED => Authentication, "The bearer token has expired (`exp` is past, allowing for the configured leeway).";
    TOKEN_NOT_YET_VALID => Authentication, "The bearer token is not valid yet (`nbf` is in the future, allowing for the configured leeway).";
    API_KEY_INVALID => Authentication, "The API key is malformed, fails its checksum, is unknown, or its secret is wrong.";
    SESSION_TAMPERED => Authentication, "The session cookie does not open: it was edited, moved from another cookie, or sealed with another key (counted as tampering by the monitor).";
    SESSION_INVALID => Authentication, "The session cookie names no live session (ended by logout, rotated away, or forgotten by the server); sign in again.";
    SESSION_EXPIRED => Authentication, "The session passed its idle or absolute lifetime; sign in again.";
    CSRF_REJECTED => Authorization, "A state-changing request on a session lacked the CSRF token or came from a foreign origin.";
    AUTH_LOCKED_OUT => RateLimited, "Too many failed authentications from this client or for this credential; retry after `Retry-After`.";
    PERMISSION_DENIED => Authorization, "The caller lacks a required permission; `required_permissions` lists them.";
    RATE_LIMITED => RateLimited, "Too many requests; retry after the time in `Retry-After`.";
    EXTERNAL_SERVICE_ERROR => ExternalService, "A dependency failed or answered with an error.";
    TIMEOUT => Timeout, "An operation did not complete in time.";
    SERVICE_UNAVAILABLE => Unavailable, "The service or a dependency is temporarily unavailable.";
    CONFIGURATION_ERROR => Configuration, "The service is misconfigured (details only in the server log).";
    INTERNAL_ERROR => Internal, "An unexpected error occurred (details only in the server log).";
    AUDIT_UNAVAILABLE => Unavailable, "The operation needs an audit record and no audit sink could write one in time (fail-closed policy).";
    CLIENT_BLOCKED => RateLimited, "The client is blocked for a while after suspicious activity; retry after the time in `Retry-After`.";
    RATE_LIMIT_UNAVAILABLE => Unavailable, "The shared rate limiter does not answer and its policy is to fail closed; retry after `Retry-After`.";
    RATE_LIMIT_COST_EXCEEDS_BURST => BusinessRule, "The request costs more than the rate limit ever admits at once.";
    RETRIES_EXHAUSTED => ExternalService, "A dependency kept failing through every allowed retry; `attempts` says how many were made.";
    RETRY_DEADLINE_EXCEEDED => ExternalService, "A dependency failed and the next retry would not have finished before the deadline.";
    RETRY_BUDGET_EXHAUSTED => ExternalService, "A dependency is failing so often that its retry budget is spent; the call was not retried.";
    CIRCUIT_OPEN => Unavailable, "A dependency's circuit breaker is open; retry after the time in `Retry-After`.";
}

/// Looks a code up in the registry.
pub fn lookup(code: &str) -> Option<&'static CodeInfo> {
    REGISTRY.iter().find(|info| info.code.as_str() == code)
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether no code appears twice; evaluated at compile time below.
const fn all_unique(registry: &[CodeInfo]) -> bool {
    let mut i = 0;
    while i < registry.len() {
        let mut j = i + 1;
        while j < registry.len() {
            if str_eq(registry[i].code.as_str(), registry[j].code.as_str()) {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

const _: () = assert!(all_unique(REGISTRY), "an error code appears twice in the registry");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniqueness_check_detects_a_duplicate() {
        let dup = [
            CodeInfo { code: NOT_FOUND, kind: ErrorKind::NotFound, meaning: "" },
            CodeInfo { code: CONFLICT, kind: ErrorKind::Conflict, meaning: "" },
            CodeInfo { code: Code::new("NOT_FOUND"), kind: ErrorKind::NotFound, meaning: "" },
        ];
        assert!(!all_unique(&dup));
        assert!(all_unique(&dup[..2]));
        assert!(all_unique(REGISTRY));
    }

    #[test]
    fn every_kind_default_code_is_registered_under_that_kind() {
        for kind in ErrorKind::ALL {
            let info = lookup(kind.default_code().as_str()).expect("registered");
            assert_eq!(info.kind, kind);
        }
    }

    #[test]
    #[should_panic(expected = "only A-Z")]
    fn malformed_code_is_refused() {
        let _ = Code::new("LOWER_case");
    }

    #[test]
    fn errors_md_documents_every_code_with_its_status() {
        let doc = include_str!("../../../../docs/ERRORS.md");
        for info in REGISTRY {
            let row = doc
                .lines()
                .find(|line| line.starts_with(&format!("| `{}` |", info.code)))
                .unwrap_or_else(|| panic!("docs/ERRORS.md has no row for {}", info.code));
            let status = info.kind.status().as_u16().to_string();
            assert!(
                row.contains(&format!("| {status} |")),
                "docs/ERRORS.md row for {} does not give status {status}: {row}",
                info.code
            );
        }
    }
}
