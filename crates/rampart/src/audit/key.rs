//! The HMAC key that seals the chain.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

use crate::error::{Error, io_reason};

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The shortest key accepted, in bytes.
pub const MIN_KEY_LEN: usize = 32;

/// The largest key file read, in bytes: a key, not a document (and never a
/// device that does not end, such as `/dev/zero`).
const MAX_KEY_FILE: u64 = 4096;

/// Domain label for the key that HMACs sensitive detail values, so a detail
/// digest can never be replayed as a record hash.
const DETAIL_LABEL: &[u8] = b"rampart-audit-detail-v1";

/// An audit key: secret bytes and a public id (`key_id`, written into every
/// record so a verifier knows which key to use).
///
/// Neither `Debug` nor anything else prints the secret.
///
/// ```
/// use rampart::audit::AuditKey;
///
/// let key = AuditKey::new("k1", b"0123456789abcdef0123456789abcdef".to_vec()).unwrap();
/// assert_eq!(key.id(), "k1");
/// assert!(!format!("{key:?}").contains("0123"));
/// assert!(AuditKey::new("k1", b"short".to_vec()).is_err());
/// ```
#[derive(Clone)]
pub struct AuditKey {
    inner: Arc<KeyInner>,
}

struct KeyInner {
    id: String,
    // Kept so the key is zeroed on drop; the keyed MAC states below are what is used.
    _secret: SecretSlice<u8>,
    mac: HmacSha256,
    detail_mac: HmacSha256,
}

impl AuditKey {
    /// Makes a key from secret bytes (at least [`MIN_KEY_LEN`]) and its id
    /// (1 to 64 characters of `[A-Za-z0-9._-]`).
    pub fn new(id: impl Into<String>, secret: Vec<u8>) -> Result<AuditKey, Error> {
        let id = id.into();
        check_key_id(&id).map_err(|why| Error::configuration("audit.key_id", why))?;
        if secret.len() < MIN_KEY_LEN {
            return Err(Error::configuration("audit.key", "is shorter than 32 bytes"));
        }
        let secret = SecretSlice::from(secret);
        let mac = HmacSha256::new_from_slice(secret.expose_secret())
            .map_err(|_| Error::configuration("audit.key", "cannot key HMAC-SHA256"))?;
        let mut derive = mac.clone();
        derive.update(DETAIL_LABEL);
        let detail_key = derive.finalize().into_bytes();
        let detail_mac = HmacSha256::new_from_slice(&detail_key)
            .map_err(|_| Error::configuration("audit.key", "cannot key HMAC-SHA256"))?;
        Ok(AuditKey { inner: Arc::new(KeyInner { id, _secret: secret, mac, detail_mac }) })
    }

    /// Reads a key file: its bytes, with trailing white space (a final
    /// newline) removed, are the key. The file must be a regular file of at
    /// most 4 KiB. Errors name `key_path` and never the content.
    pub fn from_file(
        id: impl Into<String>,
        path: &Path,
        key_path: &str,
    ) -> Result<AuditKey, Error> {
        let mut bytes = crate::files::read_capped(path, MAX_KEY_FILE).map_err(|err| {
            Error::configuration(
                key_path.to_owned(),
                format!("cannot read the key file: {}", io_reason(&err)),
            )
        })?;
        while bytes.last().is_some_and(u8::is_ascii_whitespace) {
            bytes.pop();
        }
        AuditKey::new(id, bytes).map_err(|err| {
            if err.config_key() == Some("audit.key") {
                Error::configuration(
                    key_path.to_owned(),
                    "the key in the file is shorter than 32 bytes",
                )
            } else {
                err
            }
        })
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// A fresh MAC keyed with the chain key.
    pub(crate) fn mac(&self) -> HmacSha256 {
        self.inner.mac.clone()
    }

    /// `hmac-sha256:<hex>` of a sensitive value, under the detail key.
    pub(crate) fn hash_detail(&self, value: &[u8]) -> String {
        let mut mac = self.inner.detail_mac.clone();
        mac.update(value);
        format!("hmac-sha256:{}", hex::encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditKey").field("id", &self.inner.id).finish_non_exhaustive()
    }
}

fn check_key_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() || id.len() > 64 {
        return Err("must have 1 to 64 characters");
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err("may hold only letters, digits, '.', '_' and '-'");
    }
    Ok(())
}
