//! The hash chain: how records are sealed, and the checkpoint format.
//!
//! A record is one line of JSON, with its members in this order:
//!
//! ```text
//! {"seq":N,"prev":"<hex>","key_id":"<id>","time":"<RFC 3339, µs, UTC>","event_type":"..",
//!  "severity":"low|medium|high|critical","actor":".."|null,"action":"..","resource":".."|null,
//!  "outcome":"success|failure|denied|error","details":{..},"context":{..},"hash":"<hex>"}
//! ```
//!
//! (on one line, no white space between tokens, strings escaped as JSON,
//! `details` and `context` keys in byte order, nested objects too).
//!
//! - `seq` counts from 1 and never skips, across restarts and rotations.
//! - `prev` is the `hash` of the record before (64 zeros for seq 1).
//! - `hash = HMAC-SHA256(key, prev || canonical)` in lower-case hex, where
//!   `prev` is the 64 ASCII hex characters and `canonical` is **the line's
//!   own bytes with the final `,"hash":"..."` member removed** (so it ends
//!   `..."context":{..}}`). A verifier never re-serializes: it cuts the last
//!   75 bytes (`,"hash":"` + 64 hex + `"}`), appends `}`, and MACs.
//!
//! A checkpoint is one line `{"seq":N,"hash":"<hex>","time":"..","key_id":"..","mac":"<hex>"}`
//! vouching that record `seq` exists with that hash, with
//! `mac = HMAC-SHA256(key, "rampart-audit-checkpoint\n" || canonical)`,
//! `canonical` being the line without its final `,"mac":"..."` member.

use std::io::Write as _;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::event::PreparedEvent;
use super::key::{AuditKey, tag_matches};

/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The event type of the record a sink writes when it finds records it had
/// confirmed missing from its storage (fail-open); verification reports it.
pub(crate) const GAP_EVENT_TYPE: &str = "audit.gap";

const CHECKPOINT_LABEL: &[u8] = b"rampart-audit-checkpoint\n";

/// Where a chain stands: its last record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// The last record's `seq` (0 for an empty chain).
    pub seq: u64,
    /// The last record's `hash` ([`GENESIS`] for an empty chain).
    pub hash: String,
}

impl ChainHead {
    /// The head of an empty chain.
    pub fn empty() -> ChainHead {
        ChainHead { seq: 0, hash: GENESIS.to_owned() }
    }

    /// The head a stored record leaves, after checking its MAC with `key`.
    /// `None` if the line is not an authentic record.
    pub fn from_record(key: &AuditKey, line: &[u8]) -> Option<ChainHead> {
        let record = parse_record(key, line)?;
        record.authentic.then_some(ChainHead { seq: record.seq, hash: record.hash })
    }
}

/// One sealed record, as handed to a [`Sink`](super::sink::Sink).
#[derive(Debug, Clone)]
pub struct SealedRecord<'a> {
    pub(crate) seq: u64,
    pub(crate) hash: [u8; 64],
    pub(crate) event: &'a PreparedEvent,
    pub(crate) line: Vec<u8>,
}

impl SealedRecord<'_> {
    /// The sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The record's hash, in hex.
    pub fn hash(&self) -> &str {
        std::str::from_utf8(&self.hash).unwrap_or_default()
    }

    /// The event time (RFC 3339, UTC).
    pub fn time(&self) -> &str {
        &self.event.time
    }

    /// The event type.
    pub fn event_type(&self) -> &str {
        &self.event.event_type
    }

    /// The whole record line, without the newline.
    pub fn line(&self) -> &[u8] {
        &self.line
    }
}

/// Seals events onto a chain.
#[derive(Debug)]
pub(crate) struct Chain {
    key: AuditKey,
    seq: u64,
    prev: [u8; 64],
}

impl Chain {
    pub(crate) fn new(key: AuditKey, head: &ChainHead) -> Chain {
        let mut prev = [b'0'; 64];
        if head.hash.len() == 64 {
            prev.copy_from_slice(head.hash.as_bytes());
        }
        Chain { key, seq: head.seq, prev }
    }

    /// The seq of the last record sealed.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    pub(crate) fn seal<'a>(&mut self, event: &'a PreparedEvent) -> SealedRecord<'a> {
        let seq = self.seq + 1;
        let mut line = Vec::with_capacity(event.body.len() + 200);
        line.extend_from_slice(b"{\"seq\":");
        // Writing into a Vec cannot fail.
        let _ = write!(line, "{seq}");
        line.extend_from_slice(b",\"prev\":\"");
        line.extend_from_slice(&self.prev);
        line.extend_from_slice(b"\",\"key_id\":\"");
        line.extend_from_slice(self.key.id().as_bytes());
        line.extend_from_slice(b"\",");
        line.extend_from_slice(event.members());
        let mut mac = self.key.mac();
        mac.update(&self.prev);
        mac.update(&line);
        mac.update(b"}");
        let mut hash = [0u8; 64];
        // 32 bytes always fit 64 hex digits.
        let _ = hex::encode_to_slice(mac.sign(), &mut hash);
        line.extend_from_slice(b",\"hash\":\"");
        line.extend_from_slice(&hash);
        line.extend_from_slice(b"\"}");
        self.seq = seq;
        self.prev = hash;
        SealedRecord { seq, hash, event, line }
    }

    /// Where the chain stands: the last record sealed.
    pub(crate) fn head(&self) -> ChainHead {
        ChainHead { seq: self.seq, hash: String::from_utf8_lossy(&self.prev).into_owned() }
    }

    /// A checkpoint vouching for the last record sealed.
    pub(crate) fn checkpoint(&self, now: SystemTime) -> Checkpoint {
        Checkpoint::new(&self.key, &self.head(), now)
    }
}

/// A signed statement that record `seq` exists with `hash`.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub(crate) seq: u64,
    pub(crate) hash: String,
    pub(crate) time: String,
    pub(crate) line: Vec<u8>,
}

#[derive(Serialize)]
struct CheckpointBody<'a> {
    seq: u64,
    hash: &'a str,
    time: &'a str,
    key_id: &'a str,
}

impl Checkpoint {
    fn new(key: &AuditKey, head: &ChainHead, now: SystemTime) -> Checkpoint {
        let time = humantime::format_rfc3339_micros(now).to_string();
        let body =
            CheckpointBody { seq: head.seq, hash: &head.hash, time: &time, key_id: key.id() };
        let mut line = serde_json::to_vec(&body).unwrap_or_default();
        let mut mac = key.mac();
        mac.update(CHECKPOINT_LABEL);
        mac.update(&line);
        let tag = hex::encode(mac.sign());
        line.pop();
        line.extend_from_slice(b",\"mac\":\"");
        line.extend_from_slice(tag.as_bytes());
        line.extend_from_slice(b"\"}");
        Checkpoint { seq: head.seq, hash: head.hash.clone(), time, line }
    }

    /// The seq vouched for.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The hash vouched for.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// When it was made (RFC 3339, UTC).
    pub fn time(&self) -> &str {
        &self.time
    }

    /// The whole checkpoint line, without the newline.
    pub fn line(&self) -> &[u8] {
        &self.line
    }
}

/// A record line taken apart.
#[derive(Debug)]
pub(crate) struct ParsedRecord {
    pub(crate) seq: u64,
    pub(crate) prev: String,
    pub(crate) hash: String,
    pub(crate) authentic: bool,
}

#[derive(Deserialize)]
struct RecordHead {
    seq: u64,
    prev: String,
}

/// Splits `line` into (canonical without its closing brace, 64-hex value)
/// if it ends with `,"<name>":"<64 hex>"}`.
fn split_tag<'a>(line: &'a [u8], name: &str) -> Option<(&'a [u8], &'a str)> {
    let suffix_len = name.len() + 5 + 64 + 2;
    let cut = line.len().checked_sub(suffix_len)?;
    let (head, tail) = line.split_at(cut);
    let tail = std::str::from_utf8(tail).ok()?;
    let value = tail.strip_prefix(&format!(",\"{name}\":\""))?.strip_suffix("\"}")?;
    (value.len() == 64 && value.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then_some((head, value))
}

/// Parses a record line and checks its MAC; `None` if it is not a record at all.
pub(crate) fn parse_record(key: &AuditKey, line: &[u8]) -> Option<ParsedRecord> {
    let (head, hash) = split_tag(line, "hash")?;
    let mut canonical = Vec::with_capacity(head.len() + 1);
    canonical.extend_from_slice(head);
    canonical.push(b'}');
    let fields: RecordHead = serde_json::from_slice(&canonical).ok()?;
    let mut mac = key.mac();
    mac.update(fields.prev.as_bytes());
    mac.update(&canonical);
    let authentic = hex::decode(hash).is_ok_and(|tag| tag_matches(mac, &tag));
    Some(ParsedRecord { seq: fields.seq, prev: fields.prev, hash: hash.to_owned(), authentic })
}

#[derive(Deserialize)]
struct CheckpointFields {
    seq: u64,
    hash: String,
    time: String,
}

/// Parses a checkpoint line; `None` unless it is well formed and its MAC holds.
pub(crate) fn parse_checkpoint(key: &AuditKey, line: &[u8]) -> Option<Checkpoint> {
    let (head, tag) = split_tag(line, "mac")?;
    let mut canonical = Vec::with_capacity(head.len() + 1);
    canonical.extend_from_slice(head);
    canonical.push(b'}');
    let mut mac = key.mac();
    mac.update(CHECKPOINT_LABEL);
    mac.update(&canonical);
    hex::decode(tag).ok().filter(|tag| tag_matches(mac, tag))?;
    let fields: CheckpointFields = serde_json::from_slice(&canonical).ok()?;
    Some(Checkpoint { seq: fields.seq, hash: fields.hash, time: fields.time, line: line.to_vec() })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::audit::AuditEvent;

    #[test]
    fn a_sealed_record_verifies_by_its_documented_recipe() {
        let key = AuditKey::new("k1", vec![1; 32]).expect("key");
        let mut chain = Chain::new(key.clone(), &ChainHead::empty());
        let event =
            AuditEvent::new("t", "a").into_prepared(&key, SystemTime::UNIX_EPOCH, &BTreeMap::new());
        let first = chain.seal(&event);
        let second = chain.seal(&event);
        assert_eq!(first.seq, 1);
        assert_eq!(second.seq, 2);
        // The documented recipe, spelled out by hand.
        let line = &second.line;
        let mut canonical = line[..line.len() - 75].to_vec();
        canonical.push(b'}');
        let mut mac = key.mac();
        mac.update(&first.hash);
        mac.update(&canonical);
        assert_eq!(hex::encode(mac.sign()), second.hash());
        let text = String::from_utf8(line.clone()).expect("utf-8");
        assert!(
            text.starts_with(&format!(
                r#"{{"seq":2,"prev":"{}","key_id":"k1","time":"#,
                first.hash()
            ))
        );
        let parsed = parse_record(&key, line).expect("parses");
        assert!(parsed.authentic);
        assert_eq!(parsed.prev, first.hash());
    }

    #[test]
    fn a_checkpoint_is_signed() {
        let key = AuditKey::new("k1", vec![1; 32]).expect("key");
        let head = ChainHead { seq: 9, hash: "ab".repeat(32) };
        let cp = Checkpoint::new(&key, &head, SystemTime::UNIX_EPOCH);
        let parsed = parse_checkpoint(&key, &cp.line).expect("authentic");
        assert_eq!((parsed.seq, parsed.hash.as_str()), (9, head.hash.as_str()));
        let forged = String::from_utf8(cp.line).expect("utf-8").replace("\"seq\":9", "\"seq\":8");
        assert!(parse_checkpoint(&key, forged.as_bytes()).is_none());
        let other = AuditKey::new("k1", vec![2; 32]).expect("key");
        assert!(
            parse_checkpoint(&other, Checkpoint::new(&key, &head, SystemTime::UNIX_EPOCH).line())
                .is_none()
        );
    }
}
