//! The security sections of the configuration: CORS, JWT lifetime, rate
//! limit, TLS. Each is a raw serde struct plus one validating function, as
//! every [`Section`] is.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Section;
use super::units::duration;
use crate::error::Error;

/// Which browser origins may call the API, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CorsSettings {
    /// Origins (`scheme://host[:port]`) allowed to make cross-origin calls;
    /// `"*"` allows any. Empty (the default) allows none.
    pub allowed_origins: Vec<String>,
    /// Methods allowed on cross-origin calls, upper case (`"*"` for any).
    pub allowed_methods: Vec<String>,
    /// Request headers allowed on cross-origin calls, lower case (`"*"` for any).
    pub allowed_headers: Vec<String>,
    /// Whether cross-origin calls may carry cookies and credentials.
    pub allow_credentials: bool,
}

impl CorsSettings {
    /// Whether any origin is allowed.
    pub fn allows_any_origin(&self) -> bool {
        self.allowed_origins.iter().any(|o| o == "*")
    }
}

/// The `[cors]` table as written.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawCorsSettings {
    allowed_origins: Vec<String>,
    allowed_methods: Vec<String>,
    allowed_headers: Vec<String>,
    allow_credentials: bool,
}

impl Default for RawCorsSettings {
    fn default() -> RawCorsSettings {
        RawCorsSettings {
            allowed_origins: Vec::new(),
            allowed_methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
                .map(Into::into)
                .into(),
            allowed_headers: ["authorization", "content-type"].map(Into::into).into(),
            allow_credentials: false,
        }
    }
}

impl Section for CorsSettings {
    type Raw = RawCorsSettings;

    fn from_raw(raw: RawCorsSettings) -> Result<CorsSettings, Error> {
        for (i, origin) in raw.allowed_origins.iter().enumerate() {
            if origin != "*" && !is_origin(origin) {
                return Err(Error::configuration(
                    format!("cors.allowed_origins[{i}]"),
                    "is not an origin: write scheme://host[:port] with no path, or \"*\"",
                ));
            }
        }
        for (i, method) in raw.allowed_methods.iter().enumerate() {
            let token = !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase());
            if method != "*" && !token {
                return Err(Error::configuration(
                    format!("cors.allowed_methods[{i}]"),
                    "is not an HTTP method: write it in upper case, e.g. \"GET\", or \"*\"",
                ));
            }
        }
        for (i, header) in raw.allowed_headers.iter().enumerate() {
            let name = http::HeaderName::from_bytes(header.as_bytes());
            if header != "*" && !name.is_ok_and(|n| n.as_str() == header) {
                return Err(Error::configuration(
                    format!("cors.allowed_headers[{i}]"),
                    "is not a header name: write it in lower case, e.g. \"content-type\", or \"*\"",
                ));
            }
        }
        Ok(CorsSettings {
            allowed_origins: raw.allowed_origins,
            allowed_methods: raw.allowed_methods,
            allowed_headers: raw.allowed_headers,
            allow_credentials: raw.allow_credentials,
        })
    }
}

/// `scheme://host[:port]`, as browsers send in `Origin`: no path, no query.
fn is_origin(text: &str) -> bool {
    let Ok(uri) = text.parse::<http::Uri>() else { return false };
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let bare = uri.authority().is_some_and(|a| !a.as_str().contains('@'))
        && matches!(uri.path(), "" | "/")
        && uri.query().is_none()
        && !text.ends_with('/');
    scheme_ok && bare
}

/// JSON Web Tokens issued by the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct JwtSettings {
    /// How long an issued token is valid (default 24 hours).
    #[serde(with = "duration")]
    pub lifetime: Duration,
}

/// The `[jwt]` table as written.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawJwtSettings {
    #[serde(with = "duration")]
    lifetime: Duration,
}

impl Default for RawJwtSettings {
    fn default() -> RawJwtSettings {
        RawJwtSettings { lifetime: Duration::from_secs(24 * 3600) }
    }
}

impl Section for JwtSettings {
    type Raw = RawJwtSettings;

    fn from_raw(raw: RawJwtSettings) -> Result<JwtSettings, Error> {
        if raw.lifetime < Duration::from_secs(1) {
            return Err(Error::configuration("jwt.lifetime", "must be at least 1s"));
        }
        Ok(JwtSettings { lifetime: raw.lifetime })
    }
}

/// TLS for the listener.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TlsSettings {
    /// The certificate chain (PEM). Set together with `key_path`.
    pub cert_path: Option<PathBuf>,
    /// The private key (PEM).
    pub key_path: Option<PathBuf>,
    /// A proxy in front terminates TLS, so the service itself may listen in
    /// plain HTTP even in production.
    pub terminated_upstream: bool,
}

impl TlsSettings {
    /// Whether the service itself serves TLS.
    pub fn enabled(&self) -> bool {
        self.cert_path.is_some()
    }
}

/// The `[tls]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawTlsSettings {
    cert_path: Option<PathBuf>,
    key_path: Option<PathBuf>,
    terminated_upstream: bool,
}

impl Section for TlsSettings {
    type Raw = RawTlsSettings;

    fn from_raw(raw: RawTlsSettings) -> Result<TlsSettings, Error> {
        match (&raw.cert_path, &raw.key_path) {
            (Some(_), None) => {
                return Err(Error::configuration("tls.key_path", "is required with tls.cert_path"));
            }
            (None, Some(_)) => {
                return Err(Error::configuration("tls.cert_path", "is required with tls.key_path"));
            }
            _ => {}
        }
        for (key, path) in [("tls.cert_path", &raw.cert_path), ("tls.key_path", &raw.key_path)] {
            if path.as_ref().is_some_and(|p| !p.is_file()) {
                return Err(Error::configuration(key, "names no readable file"));
            }
        }
        Ok(TlsSettings {
            cert_path: raw.cert_path,
            key_path: raw.key_path,
            terminated_upstream: raw.terminated_upstream,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_must_be_bare_origins() {
        for good in ["https://app.example.com", "http://localhost:3000"] {
            assert!(is_origin(good), "{good}");
        }
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://a.example/x",
            "ftp://a.example",
            "https://u:p@a.example",
            "",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
    }

    #[test]
    fn each_section_names_the_key_at_fault() {
        let raw = RawCorsSettings {
            allowed_methods: vec!["GET".into(), "get".into()],
            ..Default::default()
        };
        let err = CorsSettings::from_raw(raw).unwrap_err();
        assert_eq!(err.config_key(), Some("cors.allowed_methods[1]"));
        let raw =
            RawCorsSettings { allowed_headers: vec!["Content-Type".into()], ..Default::default() };
        assert_eq!(
            CorsSettings::from_raw(raw).unwrap_err().config_key(),
            Some("cors.allowed_headers[0]")
        );
        let raw = RawJwtSettings { lifetime: Duration::ZERO };
        assert_eq!(JwtSettings::from_raw(raw).unwrap_err().config_key(), Some("jwt.lifetime"));
        let raw = RawTlsSettings { cert_path: Some("cert.pem".into()), ..Default::default() };
        assert_eq!(TlsSettings::from_raw(raw).unwrap_err().config_key(), Some("tls.key_path"));
        let raw = RawTlsSettings {
            cert_path: Some("no/such/cert.pem".into()),
            key_path: Some("no/such/key.pem".into()),
            terminated_upstream: false,
        };
        assert_eq!(TlsSettings::from_raw(raw).unwrap_err().config_key(), Some("tls.cert_path"));
    }
}
