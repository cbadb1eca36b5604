//! What happened: the audit event and its canonical body.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::{Map, Value};

use super::key::AuditKey;
use crate::error::Severity;
use crate::settings::Secret;

/// How the audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It was done.
    Success,
    /// It was attempted and failed (bad credentials, invalid input...).
    Failure,
    /// It was refused by policy (missing permission, blocked client...).
    Denied,
    /// It broke on an unexpected error.
    Error,
}

/// One security-relevant event. Built with chained calls; `time` defaults to
/// the moment the [`Auditor`](super::Auditor) receives it, `severity` to
/// low, `outcome` to success.
///
/// ```
/// use rampart::audit::{AuditEvent, Outcome};
/// use rampart::Severity;
///
/// let event = AuditEvent::new("auth.login", "login")
///     .actor("alice")
///     .resource("session")
///     .outcome(Outcome::Failure)
///     .severity(Severity::Medium)
///     .detail("method", "password")
///     .sensitive_detail("api_key", "rk_live_abc")  // stored only as an HMAC
///     .context("request_id", "r-1");
/// assert!(!format!("{event:?}").contains("rk_live_abc"));
/// ```
#[derive(Clone)]
pub struct AuditEvent {
    pub(crate) time: Option<SystemTime>,
    pub(crate) event_type: String,
    pub(crate) severity: Severity,
    pub(crate) actor: Option<String>,
    pub(crate) action: String,
    pub(crate) resource: Option<String>,
    pub(crate) outcome: Outcome,
    pub(crate) details: BTreeMap<String, Value>,
    pub(crate) sensitive: Vec<(String, Secret<String>)>,
    pub(crate) context: BTreeMap<String, String>,
}

impl AuditEvent {
    /// An event of `event_type` (dotted, e.g. `auth.login`) for `action`.
    pub fn new(event_type: impl Into<String>, action: impl Into<String>) -> AuditEvent {
        AuditEvent {
            time: None,
            event_type: event_type.into(),
            severity: Severity::Low,
            actor: None,
            action: action.into(),
            resource: None,
            outcome: Outcome::Success,
            details: BTreeMap::new(),
            sensitive: Vec::new(),
            context: BTreeMap::new(),
        }
    }

    /// Sets when it happened (default: when the auditor receives it).
    #[must_use]
    pub fn time(mut self, time: SystemTime) -> AuditEvent {
        self.time = Some(time);
        self
    }

    /// Sets the severity.
    #[must_use]
    pub fn severity(mut self, severity: Severity) -> AuditEvent {
        self.severity = severity;
        self
    }

    /// Sets who acted (a subject, an API key id, a client address).
    #[must_use]
    pub fn actor(mut self, actor: impl Into<String>) -> AuditEvent {
        self.actor = Some(actor.into());
        self
    }

    /// Sets what was acted on.
    #[must_use]
    pub fn resource(mut self, resource: impl Into<String>) -> AuditEvent {
        self.resource = Some(resource.into());
        self
    }

    /// Sets the outcome.
    #[must_use]
    pub fn outcome(mut self, outcome: Outcome) -> AuditEvent {
        self.outcome = outcome;
        self
    }

    /// Adds a detail stored as given. Nested objects are stored with their
    /// keys sorted, so the record's bytes do not depend on insertion order.
    #[must_use]
    pub fn detail(mut self, key: impl Into<String>, value: impl Into<Value>) -> AuditEvent {
        self.details.insert(key.into(), sorted(value.into()));
        self
    }

    /// Adds a detail whose value is never stored: the record holds
    /// `hmac-sha256:<hex>` of it under a key derived from the audit key, so
    /// events about the same secret correlate and
    /// [`Auditor::hash_detail`](super::Auditor::hash_detail) finds them.
    #[must_use]
    pub fn sensitive_detail(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> AuditEvent {
        self.sensitive.push((key.into(), Secret::new(value.into())));
        self
    }

    /// Adds a context value (the scope's context is merged in when the
    /// event is recorded; values set here win).
    #[must_use]
    pub fn context(mut self, key: impl Into<String>, value: impl Into<String>) -> AuditEvent {
        self.context.insert(key.into(), value.into());
        self
    }

    /// Serializes the canonical body (`"time":...` to `"context":{...}`, no
    /// braces) after hashing sensitive details and merging `scope`.
    pub(crate) fn into_prepared(
        mut self,
        key: &AuditKey,
        now: SystemTime,
        scope: &BTreeMap<String, String>,
    ) -> PreparedEvent {
        for (name, value) in std::mem::take(&mut self.sensitive) {
            let digest = key.hash_detail(value.expose().as_bytes());
            self.details.insert(name, Value::String(digest));
        }
        for (name, value) in scope {
            self.context.entry(name.clone()).or_insert_with(|| value.clone());
        }
        let time = humantime::format_rfc3339_micros(self.time.unwrap_or(now)).to_string();
        let body = Body {
            time: &time,
            event_type: &self.event_type,
            severity: self.severity,
            actor: self.actor.as_deref(),
            action: &self.action,
            resource: self.resource.as_deref(),
            outcome: self.outcome,
            details: &self.details,
            context: &self.context,
        };
        let mut json = Vec::with_capacity(256);
        // Serializing plain strings and maps into a Vec cannot fail.
        if serde_json::to_writer(&mut json, &body).is_err() {
            json = b"{}".to_vec();
        }
        PreparedEvent { time, event_type: self.event_type, body: json }
    }
}

impl fmt::Debug for AuditEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditEvent")
            .field("event_type", &self.event_type)
            .field("severity", &self.severity)
            .field("actor", &self.actor)
            .field("action", &self.action)
            .field("resource", &self.resource)
            .field("outcome", &self.outcome)
            .field("details", &self.details)
            .field("sensitive", &self.sensitive.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

/// The canonical field order of the body: changing it changes every hash.
#[derive(Serialize)]
struct Body<'a> {
    time: &'a str,
    event_type: &'a str,
    severity: Severity,
    actor: Option<&'a str>,
    action: &'a str,
    resource: Option<&'a str>,
    outcome: Outcome,
    details: &'a BTreeMap<String, Value>,
    context: &'a BTreeMap<String, String>,
}

/// An event serialized and ready to be sealed into a chain.
#[derive(Debug)]
pub(crate) struct PreparedEvent {
    pub(crate) time: String,
    pub(crate) event_type: String,
    /// The canonical body, `{"time":...,"context":{...}}`.
    pub(crate) body: Vec<u8>,
}

impl PreparedEvent {
    /// The body's members, without the enclosing braces.
    pub(crate) fn members(&self) -> &[u8] {
        self.body.get(1..self.body.len().saturating_sub(1)).unwrap_or_default()
    }
}

/// `value` with every object's keys in byte order, recursively.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect::<Map<_, _>>())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key() -> AuditKey {
        AuditKey::new("k1", vec![7; 32]).expect("valid key")
    }

    #[test]
    fn body_has_the_documented_field_order_and_sorted_maps() {
        let event = AuditEvent::new("auth.login", "login")
            .time(SystemTime::UNIX_EPOCH + Duration::from_micros(1_500_000))
            .actor("alice")
            .outcome(Outcome::Denied)
            .detail("z", 1)
            .detail("a", serde_json::json!({"y": 1, "b": [{"d": 1, "c": 2}]}))
            .context("request_id", "r-1");
        let scope = BTreeMap::from([("tenant".to_owned(), "t".to_owned())]);
        let prepared = event.into_prepared(&key(), SystemTime::UNIX_EPOCH, &scope);
        assert_eq!(
            String::from_utf8(prepared.members().to_vec()).expect("utf-8"),
            r#""time":"1970-01-01T00:00:01.500000Z","event_type":"auth.login","severity":"low","actor":"alice","action":"login","resource":null,"outcome":"denied","details":{"a":{"b":[{"c":2,"d":1}],"y":1},"z":1},"context":{"request_id":"r-1","tenant":"t"}"#
        );
    }

    #[test]
    fn sensitive_details_are_stored_as_hmac_only() {
        let prepared = AuditEvent::new("apikey.use", "call")
            .sensitive_detail("api_key", "rk_live_secret")
            .into_prepared(&key(), SystemTime::UNIX_EPOCH, &BTreeMap::new());
        let body = String::from_utf8(prepared.body).expect("utf-8");
        assert!(!body.contains("rk_live_secret"), "{body}");
        let expected = key().hash_detail(b"rk_live_secret");
        assert!(body.contains(&format!(r#""api_key":"{expected}""#)), "{body}");
        assert_ne!(expected, key().hash_detail(b"rk_live_other"));
        let other_key = AuditKey::new("k2", vec![8; 32]).expect("valid key");
        assert_ne!(expected, other_key.hash_detail(b"rk_live_secret"));
    }

    #[test]
    fn explicit_context_wins_over_scope() {
        let scope = BTreeMap::from([("request_id".to_owned(), "outer".to_owned())]);
        let prepared = AuditEvent::new("x", "y").context("request_id", "inner").into_prepared(
            &key(),
            SystemTime::UNIX_EPOCH,
            &scope,
        );
        assert!(
            String::from_utf8(prepared.body).expect("utf-8").contains(r#""request_id":"inner""#)
        );
    }
}
