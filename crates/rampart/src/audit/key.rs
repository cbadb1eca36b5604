//! The HMAC key that seals the chain.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::{constant_time, hmac};
use secrecy::{ExposeSecret, SecretSlice};

use crate::error::{Error, io_reason};

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
    // Kept so the key is zeroed on drop; the HMAC keys below are what is used.
    _secret: SecretSlice<u8>,
    mac: hmac::Key,
    detail_mac: hmac::Key,
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
        let mac = hmac::Key::new(hmac::HMAC_SHA256, secret.expose_secret());
        let detail_key = hmac::sign(&mac, DETAIL_LABEL);
        let detail_mac = hmac::Key::new(hmac::HMAC_SHA256, detail_key.as_ref());
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

    /// A fresh HMAC-SHA256 keyed with the chain key.
    pub(crate) fn mac(&self) -> hmac::Context {
        hmac::Context::with_key(&self.inner.mac)
    }

    /// `hmac-sha256:<hex>` of a sensitive value, under the detail key.
    pub(crate) fn hash_detail(&self, value: &[u8]) -> String {
        format!("hmac-sha256:{}", hex::encode(hmac::sign(&self.inner.detail_mac, value)))
    }
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditKey").field("id", &self.inner.id).finish_non_exhaustive()
    }
}

/// Whether `mac` ends in `tag`, compared in constant time.
pub(crate) fn tag_matches(mac: hmac::Context, tag: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(mac.sign().as_ref(), tag).is_ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Records sealed before and after a change of HMAC implementation
    /// verify alike: these are HMAC-SHA256 as RFC 2104 defines it
    /// (computed apart, with Python's `hmac`).
    #[test]
    fn macs_are_standard_hmac_sha256() {
        let key = AuditKey::new("k1", b"0123456789abcdef0123456789abcdef".to_vec()).expect("key");
        let mut mac = key.mac();
        mac.update(b"prev");
        mac.update(b"{\"a\":1");
        mac.update(b"}");
        let chain = "016833d410f4c0021496364863a745518aa224a8a4b31be4e306baabb315d062";
        assert_eq!(hex::encode(mac.clone().sign()), chain);
        assert!(tag_matches(mac.clone(), &hex::decode(chain).expect("hex")));
        assert!(!tag_matches(mac, &[0; 32]));
        assert_eq!(
            key.hash_detail(b"rk_live_abc"),
            "hmac-sha256:6884078d37330751d46e1f9fbf3f9f95661c9bc6c78967139de93ef9d37624c7"
        );
    }
}
