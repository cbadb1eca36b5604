//! The production checks: settings that are fine on a laptop and dangerous
//! in front of real users. In the production profile each finding is an
//! error and loading fails; in development they are warnings.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{Config, DEVELOPMENT_SECRET_KEY, MIN_SECRET_KEY_LEN};
use crate::error::Error;

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
        ("audit.key_file", config.audit.as_ref().and_then(|audit| audit.key_file())),
        ("tls.key_path", config.tls.key_path.as_deref()),
    ];
    for (key, path) in key_files {
        found.extend(path.and_then(|path| key_file_open_to_others(key, path)));
    }
    for (i, net) in config.trusted_proxies.iter().enumerate() {
        if net.prefix_len() == 0 {
            found.push(Error::configuration(
                format!("trusted_proxies[{i}]"),
                "trusts every address, so any client can forge X-Forwarded-For",
            ));
        }
    }
    found
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
