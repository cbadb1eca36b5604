//! API keys: `rk_<id>_<secret><checksum>`, stored only as a hash.
//!
//! The public documentation is on [`ApiKeyStore`].

use std::collections::HashMap;
use std::fmt;

use crate::settings::Secret;
use subtle::ConstantTimeEq;

use super::config::AuthConfig;
use super::principal::{AuthMethod, Principal};
use super::{Failure, failure};
use crate::error::{Error, code};

const PREFIX: &str = "rk_";
const ID_LEN: usize = 12;
const SECRET_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
/// `rk_` + id + `_` + secret + checksum.
const KEY_LEN: usize = PREFIX.len() + ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ID_ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// The SHA-256 digest of an API key, as stored in configuration
/// (`sha256:<64 hex digits>`). Compared only in constant time.
#[derive(Clone)]
pub struct ApiKeyHash([u8; 32]);

impl ApiKeyHash {
    /// The hash of a whole key.
    pub fn of(key: &str) -> ApiKeyHash {
        ApiKeyHash(super::sha256(key.as_bytes()))
    }

    /// Parses `sha256:<64 hex digits>`.
    pub fn parse(text: &str) -> Option<ApiKeyHash> {
        let hex = text.strip_prefix("sha256:")?;
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(ApiKeyHash(out))
    }
}

impl ConstantTimeEq for ApiKeyHash {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.ct_eq(&other.0)
    }
}

impl fmt::Display for ApiKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ApiKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeyHash({self})")
    }
}

/// A freshly generated key: shown once, then only its hash is kept.
pub struct NewApiKey {
    id: String,
    key: Secret<String>,
    hash: ApiKeyHash,
}

impl NewApiKey {
    /// Generates a key from the operating system's random source.
    pub fn generate() -> Result<NewApiKey, Error> {
        let id = random_chars(ID_ALPHABET, ID_LEN)?;
        let secret = random_chars(BASE62, SECRET_LEN)?;
        let body = format!("{PREFIX}{id}_{secret}");
        let key = format!("{body}{}", checksum(&body));
        let hash = ApiKeyHash::of(&key);
        Ok(NewApiKey { id, key: key.into(), hash })
    }

    /// The key's public id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key itself: give it to its holder once, never log or store it.
    pub fn expose(&self) -> &str {
        self.key.expose()
    }

    /// The hash that goes in configuration.
    pub fn hash(&self) -> &ApiKeyHash {
        &self.hash
    }

    /// The `[[auth.api_keys]]` table to paste in the configuration file.
    pub fn config_entry(&self, name: &str, permissions: &[String], roles: &[String]) -> String {
        let list = |items: &[String]| {
            let quoted: Vec<String> = items.iter().map(|s| toml_string(s)).collect();
            format!("[{}]", quoted.join(", "))
        };
        format!(
            "[[auth.api_keys]]\nid = \"{}\"\nname = {}\nhash = \"{}\"\npermissions = {}\nroles = {}\n",
            self.id,
            toml_string(name),
            self.hash,
            list(permissions),
            list(roles)
        )
    }
}

impl fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApiKey").field("id", &self.id).finish_non_exhaustive()
    }
}

/// A TOML basic string (quotes, backslashes and control characters escaped).
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `len` characters drawn uniformly from `alphabet` (rejection sampling, so
/// no character is likelier than another).
fn random_chars(alphabet: &[u8], len: usize) -> Result<String, Error> {
    // The largest multiple of the alphabet size that fits in a byte.
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf)
            .map_err(|err| Error::internal(std::io::Error::other(err.to_string())))?;
        for &b in &buf {
            if usize::from(b) < limit && out.len() < len {
                out.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
            }
        }
    }
    Ok(out)
}

/// CRC-32 of `body` as 6 base62 characters.
fn checksum(body: &str) -> String {
    let mut n = u64::from(crc32fast::hash(body.as_bytes()));
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        // n % 62 < 62, so the index is in range.
        *slot = BASE62[usize::try_from(n % 62).unwrap_or(0)];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `id` is a well-formed key id.
pub(crate) fn parse_key_id(id: &str) -> Option<&str> {
    (id.len() == ID_LEN && id.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()))
        .then_some(id)
}

/// The id of a well-formed key with a valid checksum: `None` for anything
/// else. Does not say whether the key is known or right.
pub(crate) fn well_formed_id(key: &str) -> Option<&str> {
    // ASCII first: every index below is then a character boundary.
    if key.len() != KEY_LEN || !key.is_ascii() || !key.starts_with(PREFIX) {
        return None;
    }
    let id = parse_key_id(key.get(PREFIX.len()..PREFIX.len() + ID_LEN)?)?;
    let (body, sum) = key.split_at(KEY_LEN - CHECKSUM_LEN);
    let secret = body.get(PREFIX.len() + ID_LEN + 1..)?;
    if body.as_bytes()[PREFIX.len() + ID_LEN] != b'_'
        || !secret.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return None;
    }
    (checksum(body) == sum).then_some(id)
}

/// Whether `text` looks like a rampart API key (right shape and checksum):
/// what a secret scanner or log redactor asks.
pub fn looks_like_api_key(text: &str) -> bool {
    well_formed_id(text).is_some()
}

struct StoredKey {
    hash: ApiKeyHash,
    principal: Principal,
}

/// The configured API keys, looked up by id.
///
/// # Format
///
/// ```text
/// rk_ 3kq8z1m0x7ab _ Vf3...(43)... 1aZ9Qe
/// │   │              │             └ checksum: CRC-32 (IEEE) of everything before it,
/// │   │              │               6 base62 characters, most significant first
/// │   │              └ secret: 43 base62 characters, uniformly random (256 bits)
/// │   └ id: 12 characters a-z 0-9, random; public, used to find the key
/// └ prefix
/// ```
///
/// 65 characters in all, matching `rk_[a-z0-9]{12}_[0-9A-Za-z]{49}`. base62 is
/// `0-9A-Za-z` in that order. The checksum lets a secret scanner (or rampart
/// itself, before any lookup) tell a real key from a random string without
/// asking the server, as GitHub's tokens do; it is not a secret and adds no
/// security.
///
/// # Storage and checking
///
/// The configuration holds `sha256:<hex>` of the whole key, never the key.
/// SHA-256 rather than HMAC: the secret has 256 random bits, so nobody can
/// guess a key from its hash whatever the hash's speed, and a plain hash
/// lets `rampart apikey new` print the config line without the server's key.
/// For the same reason a slow password hash (argon2, bcrypt) buys nothing
/// here: those slow down guessing of low-entropy passwords, and would cost
/// tens of milliseconds per request. The stored and computed digests are
/// compared in constant time ([`subtle`]); [`ApiKeyHash`] does not even
/// implement `==`, so no code path can compare them the fast way:
///
/// ```compile_fail
/// use rampart::auth::ApiKeyHash;
/// let a = ApiKeyHash::parse(&format!("sha256:{}", "0".repeat(64))).unwrap();
/// let b = a.clone();
/// assert!(a == b); // ApiKeyHash is not PartialEq: only constant-time comparison exists
/// ```
///
/// ```
/// use rampart::auth::{ApiKeyStore, NewApiKey};
/// use rampart::config::Loader;
///
/// let key = NewApiKey::generate().unwrap();
/// let entry = key.config_entry("ci", &["orders:read".to_owned()], &[]);
/// // Operators paste `entry` into the configuration file.
/// let loaded = Loader::new().toml_text("rampart.toml", entry).env_vars(None::<(String, String)>);
/// let store = ApiKeyStore::new(&loaded.load().unwrap().config().auth);
/// let principal = store.verify(key.expose()).unwrap();
/// assert_eq!(principal.subject(), "ci");
/// let (body, last) = key.expose().split_at(64);
/// let wrong = format!("{body}{}", if last == "x" { "y" } else { "x" });
/// assert!(store.verify(&wrong).is_err());
/// ```
pub struct ApiKeyStore {
    keys: HashMap<String, StoredKey>,
}

impl ApiKeyStore {
    /// The keys of `config`, with their roles resolved to permissions.
    pub fn new(config: &AuthConfig) -> ApiKeyStore {
        let keys = config
            .api_keys
            .iter()
            .map(|entry| {
                let permissions = config
                    .roles
                    .resolve(entry.permissions.clone(), entry.roles.iter().map(String::as_str));
                let principal = Principal::new(
                    entry.name.clone(),
                    entry.roles.clone(),
                    permissions,
                    AuthMethod::ApiKey,
                    Some(entry.id.clone()),
                    None,
                );
                (entry.id.clone(), StoredKey { hash: entry.hash.clone(), principal })
            })
            .collect();
        ApiKeyStore { keys }
    }

    /// How many keys are configured.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The id of a presented key when it is well formed and configured:
    /// what lockout counts a failure against (never an id nobody holds).
    pub(crate) fn known_id<'k>(&self, presented: &'k str) -> Option<&'k str> {
        well_formed_id(presented).filter(|id| self.keys.contains_key(*id))
    }

    /// Checks a presented key. Every failure is the same `API_KEY_INVALID`
    /// error, whatever went wrong, so the answer reveals nothing.
    pub fn verify(&self, presented: &str) -> Result<Principal, Error> {
        let Some(id) = well_formed_id(presented) else {
            return Err(invalid(Failure::Malformed));
        };
        let Some(stored) = self.keys.get(id) else {
            return Err(invalid(Failure::UnknownKey));
        };
        if !bool::from(ApiKeyHash::of(presented).ct_eq(&stored.hash)) {
            return Err(invalid(Failure::BadSignature));
        }
        metrics::counter!("rampart_auth_success_total", "method" => "api_key").increment(1);
        Ok(stored.principal.clone())
    }
}

impl fmt::Debug for ApiKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyStore").field("keys", &self.keys.len()).finish()
    }
}

fn invalid(reason: Failure) -> Error {
    failure(AuthMethod::ApiKey, reason, code::API_KEY_INVALID, "The API key is not valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape_and_a_valid_checksum() {
        let key = NewApiKey::generate().expect("random");
        let text = key.expose();
        assert_eq!(text.len(), KEY_LEN);
        assert_eq!(KEY_LEN, 65);
        assert!(text.starts_with("rk_"));
        assert_eq!(&text[3..15], key.id());
        assert_eq!(&text[15..16], "_");
        assert!(text[16..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(well_formed_id(text), Some(key.id()));
        assert!(looks_like_api_key(text));
        assert!(bool::from(ApiKeyHash::of(text).ct_eq(key.hash())));
        assert_ne!(NewApiKey::generate().expect("random").expose(), text);
    }

    #[test]
    fn any_single_character_change_breaks_the_checksum() {
        let key = NewApiKey::generate().expect("random");
        let text = key.expose();
        for i in 16..text.len() {
            let mut bytes = text.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'x' { b'y' } else { b'x' };
            let changed = String::from_utf8(bytes).expect("ascii");
            assert_eq!(well_formed_id(&changed), None, "position {i}");
        }
    }

    #[test]
    fn checksum_is_fixed_width_base62_of_crc32() {
        assert_eq!(checksum(""), "000000");
        let n = crc32fast::hash(b"rk_");
        let mut expected = String::new();
        let mut m = u64::from(n);
        for _ in 0..6 {
            expected.insert(0, char::from(BASE62[usize::try_from(m % 62).expect("small")]));
            m /= 62;
        }
        assert_eq!(checksum("rk_"), expected);
        assert_eq!(checksum("rk_").len(), 6);
    }

    #[test]
    fn hash_round_trips_through_text() {
        let hash = ApiKeyHash::of("x");
        let parsed = ApiKeyHash::parse(&hash.to_string()).expect("parses");
        assert!(bool::from(parsed.ct_eq(&hash)));
        assert!(ApiKeyHash::parse("sha256:zz").is_none());
        assert!(ApiKeyHash::parse(&format!("md5:{}", "0".repeat(64))).is_none());
        assert!(ApiKeyHash::parse(&format!("sha256:{}", "g".repeat(64))).is_none());
    }

    #[test]
    fn random_chars_use_the_whole_alphabet() {
        let s = random_chars(BASE62, 4000).expect("random");
        let distinct: std::collections::HashSet<char> = s.chars().collect();
        assert_eq!(distinct.len(), 62);
    }

    #[test]
    fn config_entry_escapes_names() {
        let key = NewApiKey::generate().expect("random");
        let entry = key.config_entry("a \"quoted\"\nname", &["orders:read".into()], &[]);
        assert!(entry.contains(r#"name = "a \"quoted\"\u000Aname""#), "{entry}");
        assert!(entry.contains("permissions = [\"orders:read\"]"));
        assert!(!entry.contains(key.expose()));
    }
}
