//! The validated JSON body extractor, `Validated<Json<T>>`.
//!
//! It answers, through the error handler:
//!
//! - **415** when the `Content-Type` is not JSON (`application/json` or
//!   `application/*+json`);
//! - **413** when the body is larger than the limit: refused on its
//!   `Content-Length` before reading, and while reading a body of unknown
//!   length, which is never buffered past the limit;
//! - **400** for malformed JSON, a JSON limit crossed (depth, keys per
//!   object, items per array, string length, checked before parsing), a
//!   value of the wrong type, or a garde rule broken, every violation
//!   located by a JSON Pointer with the member names the client sent.
//!
//! The limits come from a [`JsonBodyConfig`] request extension (the default
//! when there is none: 1 MiB and [`JsonLimits::default`]).
//!
//! ```
//! use axum::{Extension, Json, Router, routing::post};
//! use garde::Validate;
//! use rampart::http::JsonBodyConfig;
//! use rampart::validate::{JsonLimits, Validated};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize, Validate)]
//! #[serde(rename_all = "camelCase")]
//! struct NewOrder {
//!     #[garde(range(min = 1, max = 100))]
//!     quantity: u32,
//!     #[garde(length(chars, min = 1, max = 64))]
//!     product_id: String,
//! }
//!
//! // Only the extractor makes a `Validated`: the handler cannot get an unchecked order.
//! async fn create(Validated { value: Json(order), .. }: Validated<Json<NewOrder>>) -> String {
//!     format!("{} x {}", order.quantity, order.product_id)
//! }
//!
//! // `max_input_size` from the configuration.
//! let max_input_size = 64 * 1024;
//! let app: Router = Router::new()
//!     .route("/orders", post(create))
//!     .layer(Extension(JsonBodyConfig::new(JsonLimits::with_max_input_size(max_input_size))));
//! # let _ = app;
//! ```

use axum::Json;
use axum::extract::{FromRequest, Request};
use http::{HeaderMap, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::validate::rules::MaxInputSize;
use crate::validate::{JsonLimits, SensitiveFields, Validated, violation_error};

/// How [`Validated<Json<T>>`](Validated) reads bodies: the JSON limits (whose size
/// limit is the body limit) and the fields whose violations say nothing
/// about their value. Install it with `axum::Extension`.
#[derive(Debug, Clone, Default)]
pub struct JsonBodyConfig {
    limits: JsonLimits,
    sensitive: SensitiveFields,
}

impl JsonBodyConfig {
    /// Bodies within `limits`, with the default sensitive fields.
    pub fn new(limits: JsonLimits) -> JsonBodyConfig {
        JsonBodyConfig { limits, sensitive: SensitiveFields::default() }
    }

    /// Replaces the sensitive fields.
    #[must_use]
    pub fn sensitive(mut self, sensitive: SensitiveFields) -> JsonBodyConfig {
        self.sensitive = sensitive;
        self
    }
}

impl<S, T> FromRequest<S> for Validated<Json<T>>
where
    S: Send + Sync,
    T: DeserializeOwned + garde::Validate,
    T::Context: Default,
{
    type Rejection = Error;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let config = req.extensions().get::<JsonBodyConfig>().cloned().unwrap_or_default();
        if !is_json(req.headers()) {
            return Err(Error::unsupported_media_type(
                "The body must be JSON (Content-Type: application/json)",
            ));
        }
        let max = MaxInputSize::new(config.limits.size_limit());
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| usize::try_from(len).map_or(true, |len| len > max.bytes())) {
            return Err(max.exceeded());
        }
        let body = Limited::new(req.into_body(), max.bytes()).collect().await.map_err(|err| {
            if err.downcast_ref::<LengthLimitError>().is_some() {
                max.exceeded()
            } else {
                violation_error("", "body", "could not be read completely").with_source(err)
            }
        })?;
        let value = Validated::<T>::from_json(&body.to_bytes(), &config.limits, &config.sensitive)?;
        Ok(value.map(Json))
    }
}

/// `application/json` or `application/<anything>+json`, parameters allowed.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence
        .strip_prefix("application/")
        .is_some_and(|sub| sub == "json" || (sub.ends_with("+json") && !sub.contains('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types_are_recognised() {
        let with = |ct: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, ct.parse().unwrap());
            is_json(&headers)
        };
        for ok in
            ["application/json", "Application/JSON; charset=utf-8", "application/problem+json"]
        {
            assert!(with(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/jsonp",
            "text/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/json/evil",
            "",
        ] {
            assert!(!with(bad), "{bad}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }
}
