//! The sanitizers on any text: never a panic, and their promises hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart::sanitize::{
    clean, escape, escape_like, file_name, neutralize, quote_identifier, safe_join,
};

fuzz_target!(|text: &str| {
    let escaped = escape(text);
    assert!(!escaped.contains(['<', '>', '"', '\'']));
    let neutral = neutralize(text);
    assert!(!neutral.chars().any(|c| c == '\n' || c == '\r'));
    let _ = clean(text);
    if let Ok(name) = file_name(text) {
        assert!(!name.contains(['/', '\\', '\0']) && name != "." && name != "..");
    }
    let root = std::env::temp_dir().join("rampart-fuzz-root");
    if let Ok(joined) = safe_join(&root, text) {
        assert!(joined.starts_with(&root), "{joined:?}");
    }
    let _ = quote_identifier(text);
    let _ = escape_like(text);
});
