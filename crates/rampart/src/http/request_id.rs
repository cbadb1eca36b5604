//! The request id: what ties a client's problem response to the server's
//! log lines ([`RequestId`]).
//!
//! ```
//! use rampart::http::RequestId;
//!
//! assert_eq!(RequestId::parse("req-7f3a").map(|id| id.to_string()).as_deref(), Some("req-7f3a"));
//! // Only short, safe ids are taken from a client: no spaces, quotes or CR/LF
//! // that could forge a log line or a header.
//! assert!(RequestId::parse("a b").is_none());
//! assert!(RequestId::parse(&"x".repeat(129)).is_none());
//! ```

use std::fmt;
use std::sync::Arc;

use http::Request;

/// The header a request id travels in.
pub const REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// The longest request id accepted, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// A request id: 1 to [`MAX_REQUEST_ID_LEN`] ASCII letters, digits, `-`,
/// `_`, `.` and `:`. As a request extension it is the request's id for
/// every layer and log line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// `text` as a request id, if it is a well-formed one.
    pub fn parse(text: &str) -> Option<RequestId> {
        let safe = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':');
        let well_formed = (1..=MAX_REQUEST_ID_LEN).contains(&text.len()) && text.bytes().all(safe);
        well_formed.then(|| RequestId(Arc::from(text)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of `request`: the [`RequestId`] extension a layer set, or a
    /// well-formed `X-Request-Id` header.
    pub(crate) fn of<B>(request: &Request<B>) -> Option<RequestId> {
        if let Some(id) = request.extensions().get::<RequestId>() {
            return Some(id.clone());
        }
        let header = request.headers().get(REQUEST_ID)?.to_str().ok()?;
        RequestId::parse(header)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
