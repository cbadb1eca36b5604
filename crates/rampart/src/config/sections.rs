//! The sections owned by no other module: CORS and TLS. Each is a raw
//! serde struct (public in name only: this module is private) plus one
//! validating function, as every [`Section`] is.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::settings::{Section, is_origin};

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
    const NAME: &'static str = "cors";
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
    const NAME: &'static str = "tls";
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
