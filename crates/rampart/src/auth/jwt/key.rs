//! The configured verification keys (`[[auth.jwt.keys]]`): each pinned to
//! one algorithm, an HS key as a secret (which can also sign), any other as
//! a PEM public key. What makes a key acceptable lives here; the JWKS file's
//! keys are read in `keys.rs`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::str::FromStr;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use serde::Deserialize;

use crate::error::{Error, io_reason};
use crate::settings::Secret;

/// One `[[auth.jwt.keys]]` entry as written: exactly one of `secret`,
/// `public_key`, `public_key_file`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJwtKey {
    /// The key id tokens name in their `kid` header.
    kid: String,
    /// The one algorithm this key verifies: HS256/384/512, RS256/384/512,
    /// PS256/384/512, ES256/384, EdDSA.
    algorithm: String,
    /// The shared secret of an HS key.
    #[serde(default)]
    secret: Option<Secret<String>>,
    /// A PEM public key (RS, PS, ES, EdDSA).
    #[serde(default)]
    public_key: Option<String>,
    /// A file holding a PEM public key.
    #[serde(default)]
    public_key_file: Option<PathBuf>,
}

/// A key pinned to one algorithm.
#[derive(Clone)]
pub(crate) struct JwtKey {
    pub(crate) kid: String,
    pub(crate) algorithm: Algorithm,
    pub(crate) decoding: DecodingKey,
    /// HS keys can also sign (token issuing).
    pub(crate) encoding: Option<EncodingKey>,
    /// HS keys, prepared once: jsonwebtoken would derive the HMAC key for
    /// every token, which is a third of an uncached verification.
    pub(crate) hmac: Option<hmac::Key>,
}

impl JwtKey {
    /// Whether `signature` (base64url) signs `message` under this key.
    /// HMAC tags are compared in constant time by aws-lc.
    pub(crate) fn verify_signature(&self, message: &str, signature: &str) -> bool {
        let Some(key) = &self.hmac else {
            return matches!(
                jsonwebtoken::crypto::verify(
                    signature,
                    message.as_bytes(),
                    &self.decoding,
                    self.algorithm
                ),
                Ok(true)
            );
        };
        // The longest HMAC tag (HS512) is 64 bytes; a longer one is wrong anyway.
        let mut tag = [0u8; 64];
        match URL_SAFE_NO_PAD.decode_slice(signature, &mut tag) {
            Ok(len) => hmac::verify(key, message.as_bytes(), &tag[..len]).is_ok(),
            Err(_) => false,
        }
    }
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

fn bad(key: impl Into<String>, why: &'static str) -> Error {
    Error::configuration(key, why)
}

/// The algorithm named at `key`.
pub(crate) fn algorithm(key: &str, text: &str) -> Result<Algorithm, Error> {
    Algorithm::from_str(text).map_err(|_| {
        bad(key, "is not a supported algorithm (HS256/384/512, RS256/384/512, PS256/384/512, ES256/384, EdDSA)")
    })
}

/// The `[[auth.jwt.keys]]` entries, each checked; kids are unique.
pub(crate) fn jwt_keys(raw: Vec<RawJwtKey>) -> Result<Vec<JwtKey>, Error> {
    let mut keys = Vec::with_capacity(raw.len());
    let mut kids = HashSet::new();
    for (i, key) in raw.into_iter().enumerate() {
        let path = format!("auth.jwt.keys[{i}]");
        if key.kid.is_empty() || key.kid.len() > 128 {
            return Err(bad(format!("{path}.kid"), "must have 1 to 128 characters"));
        }
        if !kids.insert(key.kid.clone()) {
            return Err(bad(format!("{path}.kid"), "is used by another key"));
        }
        keys.push(jwt_key(&path, key)?);
    }
    Ok(keys)
}

/// The fewest secret bytes for an HS algorithm: the hash's output size
/// (RFC 7518, section 3.2).
fn min_hs_secret(algorithm: Algorithm) -> usize {
    match algorithm {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}

fn jwt_key(path: &str, key: RawJwtKey) -> Result<JwtKey, Error> {
    let alg = algorithm(&format!("{path}.algorithm"), &key.algorithm)?;
    let given = [key.secret.is_some(), key.public_key.is_some(), key.public_key_file.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(bad(path, "needs exactly one of secret, public_key, public_key_file"));
    }
    if alg.family() == AlgorithmFamily::Hmac {
        let Some(secret) = key.secret else {
            return Err(bad(format!("{path}.secret"), "is required for an HS algorithm"));
        };
        let bytes = secret.expose().as_bytes();
        if bytes.len() < min_hs_secret(alg) {
            return Err(bad(
                format!("{path}.secret"),
                "is shorter than the algorithm's hash (32 bytes for HS256, 48 for HS384, 64 for HS512)",
            ));
        }
        // A PEM block as an HMAC secret is the algorithm-confusion mistake.
        if secret.expose().contains("-----BEGIN") {
            return Err(bad(
                format!("{path}.secret"),
                "is a PEM key: an HS key needs a random secret",
            ));
        }
        return Ok(JwtKey {
            kid: key.kid,
            algorithm: alg,
            decoding: DecodingKey::from_secret(bytes),
            encoding: Some(EncodingKey::from_secret(bytes)),
            hmac: Some(hmac::Key::new(hmac_algorithm(alg), bytes)),
        });
    }
    if key.secret.is_some() {
        return Err(bad(format!("{path}.secret"), "is only for HS algorithms: give public_key"));
    }
    let (pem, pem_key) = match (key.public_key, key.public_key_file) {
        (Some(pem), _) => (pem.into_bytes(), format!("{path}.public_key")),
        (None, Some(file)) => {
            let pem_key = format!("{path}.public_key_file");
            let pem = std::fs::read(&file).map_err(|err| {
                let why = format!("cannot be read: {}", io_reason(&err));
                Error::configuration(pem_key.clone(), why)
            })?;
            (pem, pem_key)
        }
        (None, None) => return Err(bad(path, "needs public_key or public_key_file")),
    };
    Ok(JwtKey {
        kid: key.kid,
        algorithm: alg,
        decoding: public_key(&pem_key, alg, &pem)?,
        encoding: None,
        hmac: None,
    })
}

/// The HMAC of an HS algorithm.
fn hmac_algorithm(alg: Algorithm) -> hmac::Algorithm {
    match alg {
        Algorithm::HS384 => hmac::HMAC_SHA384,
        Algorithm::HS512 => hmac::HMAC_SHA512,
        _ => hmac::HMAC_SHA256,
    }
}

/// A PEM public key for `alg`'s family; private keys are refused.
fn public_key(key: &str, alg: Algorithm, pem: &[u8]) -> Result<DecodingKey, Error> {
    if pem.windows(11).any(|w| w == b"PRIVATE KEY") {
        return Err(bad(key, "holds a private key: give the public key only"));
    }
    let parsed = match alg.family() {
        AlgorithmFamily::Rsa => DecodingKey::from_rsa_pem(pem),
        AlgorithmFamily::Ec => DecodingKey::from_ec_pem(pem),
        AlgorithmFamily::Ed => DecodingKey::from_ed_pem(pem),
        AlgorithmFamily::Hmac => return Err(bad(key, "an HS algorithm takes a secret")),
    };
    parsed
        .map_err(|err| bad(key, "is not a PEM public key of the algorithm's type").with_source(err))
}
