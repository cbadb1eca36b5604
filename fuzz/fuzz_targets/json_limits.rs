//! The JSON limits scan on any bytes: never a panic, and it agrees with the
//! parser on what it lets through.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart::validate::JsonLimits;

fuzz_target!(|data: &[u8]| {
    let strict = JsonLimits::default().max_depth(16).max_object_keys(64);
    let lenient = strict.allow_duplicate_keys();
    let parsed = strict.parse(data);
    let parsed_lenient = lenient.parse(data);
    match (&parsed, &parsed_lenient) {
        // Refusing duplicates only ever refuses more, and changes nothing else.
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Ok(_), Err(_)) => panic!("the strict scan accepted what the lenient one refused"),
        _ => {}
    }
    // The scan never calls well-formed JSON malformed: it refuses it only
    // for a limit.
    if serde_json::from_slice::<serde_json::Value>(data).is_ok()
        && let Err(err) = lenient.check(data)
    {
        let code = err.violations().first().map(|v| v.code.to_string());
        assert_ne!(code.as_deref(), Some("json_syntax"), "well-formed JSON called malformed");
    }
});
