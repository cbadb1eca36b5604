//! The verification keys: those from configuration plus a JWKS file, each
//! pinned to one algorithm, with storm-safe reloading of the file.

use std::collections::HashMap;
use std::fs;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::Value;

use crate::auth::config::{JwksConfig, JwtConfig, JwtKey};
use crate::clock::Clock;
use crate::error::{Error, io_reason};

/// JWKS files larger than this are refused (a real one is a few KiB).
const MAX_JWKS_BYTES: u64 = 1024 * 1024;

/// One consistent set of keys. `generation` changes whenever the set does,
/// so cached verifications made under an older set are not trusted.
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
    /// When the file's stamp is next looked at, in nanoseconds since `origin`.
    next_check: AtomicU64,
    reload: Mutex<ReloadState>,
    reloads: AtomicU64,
}

#[derive(Debug, Default)]
struct ReloadState {
    stamp: Option<(SystemTime, u64)>,
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
            let (stamp, keys) = read_jwks(jwks).map_err(|why| {
                let message = match why.source.downcast_ref::<std::io::Error>() {
                    Some(io) => format!("{}: {}", why.message, io_reason(io)),
                    None => why.message.to_owned(),
                };
                Error::configuration("auth.jwt.jwks.file", message).with_source(why.source)
            })?;
            ring.install(keys, &mut lock(&ring.reload), stamp);
            ring.schedule_check(ring.clock.now(), jwks.check_interval);
        }
        Ok(ring)
    }

    /// How many times the JWKS file has been (re)read.
    pub(crate) fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// The current key set, after looking for a changed JWKS file when the
    /// check interval has passed (one caller looks; the others go on).
    pub(crate) fn current(&self) -> Arc<KeySet> {
        if let Some(jwks) = &self.jwks {
            let now = self.clock.now();
            if self.nanos(now) >= self.next_check.load(Ordering::Relaxed)
                && let Ok(mut state) = self.reload.try_lock()
            {
                self.schedule_check(now, jwks.check_interval);
                let stamp = file_stamp(jwks);
                if stamp.is_some() && stamp != state.stamp {
                    self.reload_file(jwks, &mut state, "changed");
                }
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
            self.reload_file(jwks, &mut state, "unknown_kid");
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

    fn reload_file(&self, jwks: &JwksConfig, state: &mut ReloadState, trigger: &'static str) {
        match read_jwks(jwks) {
            Ok((stamp, keys)) => {
                self.install(keys, state, stamp);
                metrics::counter!("rampart_auth_jwks_reloads_total", "outcome" => "ok", "trigger" => trigger)
                    .increment(1);
                tracing::info!(target: "rampart::auth", trigger, "JWKS file reloaded");
            }
            Err(why) => {
                // Keep serving the keys we have: a half-written or broken file
                // must not log everyone out.
                metrics::counter!("rampart_auth_jwks_reloads_total", "outcome" => "error", "trigger" => trigger)
                    .increment(1);
                tracing::error!(
                    target: "rampart::auth",
                    trigger,
                    error = %why.source,
                    "JWKS file could not be reloaded ({}); keeping the previous keys",
                    why.message
                );
            }
        }
    }

    fn install(
        &self,
        jwks_keys: Vec<JwtKey>,
        state: &mut ReloadState,
        stamp: Option<(SystemTime, u64)>,
    ) {
        self.reloads.fetch_add(1, Ordering::Relaxed);
        state.stamp = stamp;
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

fn file_stamp(jwks: &JwksConfig) -> Option<(SystemTime, u64)> {
    let meta = fs::metadata(&jwks.file).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

struct ReadError {
    message: &'static str,
    source: Box<dyn std::error::Error + Send + Sync>,
}

fn read_error(
    message: &'static str,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> ReadError {
    ReadError { message, source: source.into() }
}

type Stamped = (Option<(SystemTime, u64)>, Vec<JwtKey>);

/// Reads and parses the JWKS file. Keys that cannot be used are skipped
/// (and logged); a file that is not a JWKS at all is an error.
fn read_jwks(jwks: &JwksConfig) -> Result<Stamped, ReadError> {
    let stamp = file_stamp(jwks);
    if stamp.is_some_and(|(_, len)| len > MAX_JWKS_BYTES) {
        return Err(read_error("is larger than 1 MiB", "JWKS file too large"));
    }
    let text = fs::read(&jwks.file).map_err(|err| read_error("cannot be read", err))?;
    let doc: Value = serde_json::from_slice(&text).map_err(|err| read_error("is not JSON", err))?;
    let Some(entries) = doc.get("keys").and_then(Value::as_array) else {
        return Err(read_error("has no \"keys\" array", "not a JWKS"));
    };
    let mut keys = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        match jwk_key(entry, jwks.default_rsa_algorithm) {
            Ok(key) => keys.push(key),
            Err(why) => {
                tracing::warn!(target: "rampart::auth", index = i, "JWKS key skipped: {why}");
            }
        }
    }
    Ok((stamp, keys))
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
