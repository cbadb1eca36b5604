//! The verification keys: those from configuration plus a JWKS file, each
//! pinned to one algorithm, with storm-safe reloading of the file.
//!
//! The file is read every `check_interval`, and on an unknown `kid` at most
//! once per `min_reload_interval`; its keys are replaced only when its
//! content (SHA-256) changed, whatever its size and modification time say.
//! A file that cannot be read or used is logged at `error` and counted
//! (`rampart_auth_jwks_reloads_total{outcome="error"}`); its keys are kept
//! for one more `check_interval` (a deployment may be halfway through
//! replacing it) and then, unless `drop_keys_when_unreadable = false`,
//! withdrawn: a deleted key file must not keep its keys valid forever.
//! Only a regular file of at most 1 MiB is read.

use std::collections::HashMap;
use std::fs;
use std::io::Read as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::Value;

use super::key::JwtKey;
use crate::auth::config::{JwksConfig, JwtConfig};
use crate::clock::Clock;
use crate::error::{Error, io_reason};

/// JWKS files larger than this are refused (a real one is a few KiB).
const MAX_JWKS_BYTES: u64 = 1024 * 1024;

/// One consistent set of keys. `generation` changes whenever the set does
/// (and only then), so cached verifications made under an older set are
/// not trusted.
#[derive(Debug)]
pub(crate) struct KeySet {
    pub(crate) generation: u64,
    by_kid: HashMap<String, Arc<JwtKey>>,
}

impl KeySet {
    fn new(generation: u64, keys: impl IntoIterator<Item = JwtKey>) -> KeySet {
        let by_kid = keys.into_iter().map(|k| (k.kid.clone(), Arc::new(k))).collect();
        KeySet { generation, by_kid }
    }

    /// The key a token names; a token without `kid` may only be used when
    /// exactly one key exists.
    pub(crate) fn find(&self, kid: Option<&str>) -> Option<&Arc<JwtKey>> {
        match kid {
            Some(kid) => self.by_kid.get(kid),
            None if self.by_kid.len() == 1 => self.by_kid.values().next(),
            None => None,
        }
    }
}

/// The current key set, and the JWKS file it is reloaded from.
#[derive(Debug)]
pub(crate) struct KeyRing {
    static_keys: Vec<JwtKey>,
    jwks: Option<JwksConfig>,
    current: RwLock<Arc<KeySet>>,
    clock: Arc<dyn Clock>,
    origin: Instant,
    /// When the file is next read, in nanoseconds since `origin`.
    next_check: AtomicU64,
    reload: Mutex<ReloadState>,
    reloads: AtomicU64,
}

#[derive(Debug, Default)]
struct ReloadState {
    /// The SHA-256 of the content the file's keys came from; `None` while
    /// no key of the file is in use.
    digest: Option<[u8; 32]>,
    /// Since when the file has failed to read, in a row.
    failing_since: Option<Instant>,
    last_forced: Option<Instant>,
}

impl KeyRing {
    pub(crate) fn new(config: &JwtConfig, clock: Arc<dyn Clock>) -> Result<KeyRing, Error> {
        let origin = clock.now();
        let ring = KeyRing {
            static_keys: config.keys.clone(),
            jwks: config.jwks.clone(),
            current: RwLock::new(Arc::new(KeySet::new(0, config.keys.iter().cloned()))),
            clock,
            origin,
            next_check: AtomicU64::new(0),
            reload: Mutex::new(ReloadState::default()),
            reloads: AtomicU64::new(0),
        };
        if let Some(jwks) = &ring.jwks {
            let (digest, keys) = read_jwks(jwks).map_err(ReadError::into_config_error)?;
            ring.reloads.fetch_add(1, Ordering::Relaxed);
            ring.install(keys, &mut lock(&ring.reload), Some(digest));
            ring.schedule_check(ring.clock.now(), jwks.check_interval);
        }
        Ok(ring)
    }

    /// Moves the ring onto `clock`, keeping its schedule: the file was just
    /// read, so it is next read one `check_interval` from now.
    pub(crate) fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.origin = clock.now();
        self.clock = clock;
        let interval = self.jwks.as_ref().map_or(Duration::ZERO, |jwks| jwks.check_interval);
        self.next_check = AtomicU64::new(u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX));
    }

    /// How many times the JWKS file has been (re)read.
    pub(crate) fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// The current key set, after reading the JWKS file again when the
    /// check interval has passed (one caller reads; the others go on).
    pub(crate) fn current(&self) -> Arc<KeySet> {
        if let Some(jwks) = &self.jwks {
            let now = self.clock.now();
            if self.nanos(now) >= self.next_check.load(Ordering::Relaxed)
                && let Ok(mut state) = self.reload.try_lock()
            {
                self.schedule_check(now, jwks.check_interval);
                self.reload_file(jwks, &mut state, now, "interval");
            }
        }
        self.snapshot()
    }

    /// Called for a `kid` the current set lacks: re-reads the file, at most
    /// once per `min_reload_interval` however many unknown ids arrive, and
    /// returns the (possibly new) set.
    pub(crate) fn refresh_for_unknown_kid(&self) -> Arc<KeySet> {
        let Some(jwks) = &self.jwks else {
            return self.snapshot();
        };
        let mut state = lock(&self.reload);
        let now = self.clock.now();
        let due = state
            .last_forced
            .is_none_or(|last| now.saturating_duration_since(last) >= jwks.min_reload_interval);
        if due {
            state.last_forced = Some(now);
            self.reload_file(jwks, &mut state, now, "unknown_kid");
        }
        drop(state);
        self.snapshot()
    }

    fn snapshot(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(set) => Arc::clone(&set),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Reads the file; replaces its keys when its content changed, and
    /// withdraws them once it has failed for a whole `check_interval`.
    fn reload_file(
        &self,
        jwks: &JwksConfig,
        state: &mut ReloadState,
        now: Instant,
        trigger: &'static str,
    ) {
        let read = read_bounded(jwks).and_then(|text| {
            let digest = crate::auth::sha256(&text);
            if state.digest == Some(digest) {
                return Ok(None);
            }
            parse_jwks(&text, jwks.default_rsa_algorithm).map(|keys| Some((digest, keys)))
        });
        let outcome = match read {
            Ok(changed) => {
                self.reloads.fetch_add(1, Ordering::Relaxed);
                state.failing_since = None;
                match changed {
                    None => "unchanged",
                    Some((digest, keys)) => {
                        self.install(keys, state, Some(digest));
                        tracing::info!(target: "rampart::auth", trigger, "JWKS file reloaded");
                        "ok"
                    }
                }
            }
            Err(why) => {
                let since = *state.failing_since.get_or_insert(now);
                // A deployment may be halfway through replacing the file: its
                // keys last one more interval, then end (unless configured not to).
                let in_use = state.digest.is_some();
                let withdraw = jwks.drop_keys_when_unreadable
                    && in_use
                    && now.saturating_duration_since(since) >= jwks.check_interval;
                let keys = match (in_use, jwks.drop_keys_when_unreadable) {
                    (false, _) => "none of its keys is in use",
                    (true, false) => "its keys are kept: drop_keys_when_unreadable is false",
                    (true, true) if withdraw => "its keys are withdrawn",
                    (true, true) => "its keys are kept until one check_interval has passed",
                };
                tracing::error!(
                    target: "rampart::auth",
                    trigger,
                    error = %why.source,
                    withdrawn = withdraw,
                    "JWKS file {}; {keys}",
                    why.message,
                );
                if withdraw {
                    self.install(Vec::new(), state, None);
                }
                "error"
            }
        };
        metrics::counter!("rampart_auth_jwks_reloads_total", "outcome" => outcome, "trigger" => trigger)
            .increment(1);
    }

    fn install(&self, jwks_keys: Vec<JwtKey>, state: &mut ReloadState, digest: Option<[u8; 32]>) {
        state.digest = digest;
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let generation = guard.generation + 1;
        let static_kids: Vec<&str> = self.static_keys.iter().map(|k| k.kid.as_str()).collect();
        // A JWKS entry cannot replace a key pinned in the configuration.
        let from_file = jwks_keys.into_iter().filter(|k| !static_kids.contains(&k.kid.as_str()));
        *guard =
            Arc::new(KeySet::new(generation, self.static_keys.iter().cloned().chain(from_file)));
    }

    fn schedule_check(&self, now: Instant, interval: Duration) {
        let next =
            self.nanos(now).saturating_add(u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX));
        self.next_check.store(next, Ordering::Relaxed);
    }

    fn nanos(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }
}

fn lock(mutex: &Mutex<ReloadState>) -> std::sync::MutexGuard<'_, ReloadState> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

struct ReadError {
    message: &'static str,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl ReadError {
    /// The problem as `auth.jwt.jwks.file`'s configuration error.
    fn into_config_error(self) -> Error {
        let message = match self.source.downcast_ref::<std::io::Error>() {
            Some(io) => format!("{}: {}", self.message, io_reason(io)),
            None => self.message.to_owned(),
        };
        Error::configuration("auth.jwt.jwks.file", message).with_source(self.source)
    }
}

fn read_error(
    message: &'static str,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> ReadError {
    ReadError { message, source: source.into() }
}

/// Checks that the JWKS file reads and parses, as the verifier will read it
/// (for `config check`, which reports it among the other problems).
pub(crate) fn check_jwks_file(jwks: &JwksConfig) -> Result<(), Error> {
    read_jwks(jwks).map(drop).map_err(ReadError::into_config_error)
}

/// Reads and parses the JWKS file; returns the SHA-256 of its content too.
fn read_jwks(jwks: &JwksConfig) -> Result<([u8; 32], Vec<JwtKey>), ReadError> {
    let text = read_bounded(jwks)?;
    let keys = parse_jwks(&text, jwks.default_rsa_algorithm)?;
    Ok((crate::auth::sha256(&text), keys))
}

/// The file's bytes, if it is a regular file of at most [`MAX_JWKS_BYTES`].
/// A device (`/dev/zero`) would be read without end, a FIFO would block
/// the request that happened to look: both are refused before opening.
fn read_bounded(jwks: &JwksConfig) -> Result<Vec<u8>, ReadError> {
    let meta = fs::metadata(&jwks.file).map_err(|err| read_error("cannot be read", err))?;
    if !meta.is_file() {
        return Err(read_error("is not a regular file", "not a regular file"));
    }
    let file = fs::File::open(&jwks.file).map_err(|err| read_error("cannot be read", err))?;
    let mut text = Vec::with_capacity(usize::try_from(meta.len().min(MAX_JWKS_BYTES)).unwrap_or(0));
    // One byte past the limit tells a file that grew since `metadata` apart.
    file.take(MAX_JWKS_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|err| read_error("cannot be read", err))?;
    if u64::try_from(text.len()).unwrap_or(u64::MAX) > MAX_JWKS_BYTES {
        return Err(read_error("is larger than 1 MiB", "JWKS file too large"));
    }
    Ok(text)
}

/// Parses a JWKS. Keys that cannot be used are skipped (and logged); a
/// file that is not a JWKS at all is an error.
fn parse_jwks(text: &[u8], default_rsa: Option<Algorithm>) -> Result<Vec<JwtKey>, ReadError> {
    let doc: Value = serde_json::from_slice(text).map_err(|err| read_error("is not JSON", err))?;
    let Some(entries) = doc.get("keys").and_then(Value::as_array) else {
        return Err(read_error("has no \"keys\" array", "not a JWKS"));
    };
    let mut keys = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        match jwk_key(entry, default_rsa) {
            Ok(key) => keys.push(key),
            Err(why) => {
                tracing::warn!(target: "rampart::auth", index = i, "JWKS key skipped: {why}");
            }
        }
    }
    Ok(keys)
}

/// One JWK as a pinned verification key. Symmetric (`oct`) keys are
/// refused: HS secrets come only from the configuration.
fn jwk_key(entry: &Value, default_rsa: Option<Algorithm>) -> Result<JwtKey, &'static str> {
    if entry.get("kty").and_then(Value::as_str) == Some("oct") {
        return Err("symmetric (oct) keys are not accepted from a JWKS file");
    }
    let jwk: Jwk = serde_json::from_value(entry.clone()).map_err(|_| "not a valid JWK")?;
    let kid = jwk.common.key_id.clone().filter(|k| !k.is_empty()).ok_or("no kid")?;
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return Err("not a signature key (use is not \"sig\")");
    }
    let declared = match jwk.common.key_algorithm {
        Some(alg) => Some(alg.to_string().parse::<Algorithm>().map_err(|_| "unsupported alg")?),
        None => None,
    };
    let (family, implied) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (AlgorithmFamily::Rsa, default_rsa),
        AlgorithmParameters::EllipticCurve(p) => (
            AlgorithmFamily::Ec,
            match p.curve {
                EllipticCurve::P256 => Some(Algorithm::ES256),
                EllipticCurve::P384 => Some(Algorithm::ES384),
                _ => return Err("unsupported curve"),
            },
        ),
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            (AlgorithmFamily::Ed, Some(Algorithm::EdDSA))
        }
        _ => return Err("unsupported key type"),
    };
    let algorithm = declared.or(implied).ok_or("no alg, and no default_rsa_algorithm")?;
    // The declared alg must fit the key material (an EC key cannot be RS256,
    // a P-256 key cannot be ES384).
    if algorithm.family() != family || (family == AlgorithmFamily::Ec && Some(algorithm) != implied)
    {
        return Err("alg does not match the key type");
    }
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| "key material is invalid")?;
    Ok(JwtKey { kid, algorithm, decoding, encoding: None, hmac: None })
}
