//! Every credential parser on any text: bearer tokens, API keys and session
//! cookies are refused with an error, never a panic, and never accepted.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use rampart::auth::{ApiKeyStore, AuthConfig, JwtVerifier, SessionManager, looks_like_api_key};
use rampart::clock::SystemClock;
use rampart::config::Section;

struct Parts {
    jwt: JwtVerifier,
    keys: ApiKeyStore,
    sessions: SessionManager,
}

fn parts() -> &'static Parts {
    static PARTS: OnceLock<Parts> = OnceLock::new();
    PARTS.get_or_init(|| {
        let config = AuthConfig::from_value(serde_json::json!({
            "jwt": {"keys": [{"kid": "k", "algorithm": "HS256",
                              "secret": "a-fuzzing-secret-of-at-least-32-bytes"}],
                    "cache_capacity": 0},
            "api_keys": [{"id": "abcdefgh2345", "name": "fuzz",
                          "hash": format!("sha256:{}", "0".repeat(64))}],
            "session": {"secret": "a-session-secret-of-at-least-32-bytes"},
        }))
        .expect("valid");
        Parts {
            jwt: JwtVerifier::new(&config).expect("jwt"),
            keys: ApiKeyStore::new(&config),
            sessions: SessionManager::new(&config).expect("sessions"),
        }
    })
}

fuzz_target!(|text: &str| {
    let parts = parts();
    assert!(parts.jwt.verify(text).is_err());
    assert!(parts.keys.verify(text).is_err());
    assert!(parts.sessions.authenticate(text).is_err());
    let _ = looks_like_api_key(text);
});
