//! The configuration loader on any TOML text: an error or a configuration,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart::config::Loader;

fuzz_target!(|text: &str| {
    let loaded = Loader::new()
        .toml_text("fuzz.toml", text)
        .env_vars(std::iter::empty::<(String, String)>())
        .load();
    if let Err(err) = loaded {
        assert!(!err.to_string().is_empty());
    }
});
