//! The production checks: settings that are fine on a laptop and dangerous
//! in front of real users. In the production profile each finding is an
//! error and loading fails; in development they are warnings.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{Config, DEVELOPMENT_SECRET_KEY, MIN_SECRET_KEY_LEN};
use crate::error::Error;

/// Secrets printed in rampart's documentation and examples: anyone may have
/// read them, so none is a secret. (A test finds every example secret in
/// the documentation and checks that it is refused.)
const DOCUMENTED_SECRETS: &[&str] = &[
    DEVELOPMENT_SECRET_KEY,
    // docs/CONFIG.md's example, up to this release.
    "replace-me-with-32-or-more-random-bytes-0123456789",
    // The auth and session module examples.
    "an-hs256-secret-of-at-least-32-bytes!",
    "a-session-secret-of-at-least-32-bytes",
    // The audit module example.
    "0123456789abcdef0123456789abcdef",
];

/// The fewest bits a secret's text must be able to hold.
const MIN_SECRET_BITS: f64 = 128.0;

/// Every insecure setting in `config`, one error per problem.
pub(super) fn findings(config: &Config) -> Vec<Error> {
    let mut found = Vec::new();
    let key = config.secret_key.expose();
    if key == DEVELOPMENT_SECRET_KEY {
        found.push(Error::configuration(
            "secret_key",
            "is the development default: set a random key of at least 32 bytes",
        ));
    } else if key.len() < MIN_SECRET_KEY_LEN {
        found.push(Error::configuration(
            "secret_key",
            format!(
                "is shorter than {MIN_SECRET_KEY_LEN} bytes: set a random key of at least 32 bytes"
            ),
        ));
    }
    // Every secret, the key unless refused above already.
    let secret_key = found.is_empty().then(|| ("secret_key".to_owned(), key.as_bytes()));
    #[cfg(feature = "auth")]
    let auth_secrets = {
        let session = config
            .auth
            .session
            .iter()
            .map(|s| ("auth.session.secret".to_owned(), s.secret.expose().as_bytes()));
        let hs_keys = config.auth.jwt.keys.iter().enumerate().filter_map(|(i, k)| {
            Some((format!("auth.jwt.keys[{i}].secret"), k.encoding.as_ref()?.as_bytes()))
        });
        session.chain(hs_keys)
    };
    #[cfg(not(feature = "auth"))]
    let auth_secrets = std::iter::empty::<(String, &[u8])>();
    for (name, secret) in secret_key.into_iter().chain(auth_secrets) {
        if let Some(why) = weakness(secret) {
            found.push(Error::configuration(name, why));
        }
    }
    if config.cors.allows_any_origin() && config.cors.allow_credentials {
        found.push(Error::configuration(
            "cors.allowed_origins",
            "allows any origin (\"*\") while cors.allow_credentials is true: list the origins",
        ));
    }
    if !config.rate_limit.enabled {
        found.push(Error::configuration("rate_limit.enabled", "is false: rate limiting is off"));
    }
    if !config.tls.enabled() && !config.tls.terminated_upstream {
        found.push(Error::configuration(
            "tls",
            "is not set up: set tls.cert_path and tls.key_path, or tls.terminated_upstream = true \
             when a proxy in front terminates TLS",
        ));
    }
    let key_files = [
        #[cfg(feature = "audit")]
        ("audit.key_file", config.audit.as_ref().and_then(|audit| audit.key_file())),
        ("tls.key_path", config.tls.key_path.as_deref()),
    ];
    for (key, path) in key_files {
        found.extend(path.and_then(|path| key_file_open_to_others(key, path)));
    }
    for (i, net) in config.proxy.trusted_proxies.iter().enumerate() {
        if net.prefix_len() == 0 {
            found.push(Error::configuration(
                format!("proxy.trusted_proxies[{i}]"),
                "trusts every address, so any client can forge X-Forwarded-For",
            ));
        }
    }
    found
}

/// Why `secret` cannot serve as a secret in production, if it cannot: it
/// is printed in the documentation, or its text has too little variety to
/// hold [`MIN_SECRET_BITS`]: `length × log2(distinct bytes)` is the most
/// any text of that length and alphabet can hold, so a random secret of
/// the documented size passes whatever its alphabet (hex, base64), and
/// `aaaa...`, `abab...` or `passwordpassword...` do not.
fn weakness(secret: &[u8]) -> Option<String> {
    if DOCUMENTED_SECRETS.iter().any(|example| example.as_bytes() == secret) {
        return Some(
            "is an example from rampart's documentation, known to anyone: set a random secret"
                .to_owned(),
        );
    }
    let mut seen = [false; 256];
    for &byte in secret {
        seen[usize::from(byte)] = true;
    }
    let distinct = seen.iter().filter(|s| **s).count();
    // Both counts are far below 2^52, where f64 stops being exact.
    #[allow(clippy::cast_precision_loss)]
    let bits = secret.len() as f64 * (distinct as f64).log2();
    (bits < MIN_SECRET_BITS).then(|| {
        format!(
            "has too little variety to be random ({distinct} distinct bytes, at most {} bits): \
             set a random secret, e.g. `openssl rand -base64 48`",
            bits.floor()
        )
    })
}

/// A finding for a secret key file that users other than its owner may
/// read or change: a warning in development, refused in production.
fn key_file_open_to_others(key: &str, path: &Path) -> Option<Error> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        Error::configuration(
            key,
            format!("names a key file open to other users (mode {mode:o}): chmod 600 it"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_secrets_pass_and_patterns_do_not() {
        // 32 random bytes as hex and as base64: what operators generate.
        let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let base64 = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=";
        for random in [hex, base64, "0123456789abcdef0123456789abcdef-production"] {
            assert_eq!(weakness(random.as_bytes()), None, "{random}");
        }
        for weak in [
            "a".repeat(64),
            "ab".repeat(32),
            "passwordpasswordpasswordpassword".to_owned(),
            "12345678901234567890123456789012".to_owned(),
        ] {
            assert!(weakness(weak.as_bytes()).is_some_and(|w| w.contains("variety")), "{weak}");
        }
        for example in DOCUMENTED_SECRETS {
            assert!(weakness(example.as_bytes()).is_some_and(|w| w.contains("documentation")));
        }
    }
}
