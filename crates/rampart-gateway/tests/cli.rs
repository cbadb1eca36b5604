//! Black-box tests of the `rampart` binary.

use std::process::Command;

fn rampart(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rampart")).args(args).output().expect("the binary runs")
}

#[test]
fn version_prints_name_and_version() {
    let out = rampart(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("rampart {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_describes_the_tool() {
    let out = rampart(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Usage: rampart"), "{text}");
    assert!(text.contains("--version"), "{text}");
}

#[test]
fn unknown_argument_is_a_usage_error() {
    let out = rampart(&["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
}

#[test]
fn apikey_new_prints_a_key_once_and_a_config_entry_that_accepts_it() {
    let out = rampart(&[
        "apikey",
        "new",
        "--name",
        "billing job",
        "--perm",
        "orders:read",
        "--perm",
        "invoices:*",
        "--role",
        "clerk",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let key = text
        .split_whitespace()
        .find(|w| w.starts_with("rk_"))
        .expect("the key is printed")
        .to_owned();
    assert!(rampart::auth::looks_like_api_key(&key), "{key}");
    assert_eq!(text.matches(key.as_str()).count(), 1, "shown once: {text}");
    let entry = &text[text.find("[[auth.api_keys]]").expect("config entry")..];
    assert!(entry.contains("name = \"billing job\""), "{entry}");
    assert!(entry.contains("permissions = [\"orders:read\", \"invoices:*\"]"), "{entry}");
    assert!(entry.contains("roles = [\"clerk\"]"), "{entry}");
    assert!(!entry.contains(&key[16..]), "the entry holds no secret");

    // The printed entry, as configuration, accepts the printed key.
    let field = |name: &str| {
        let line = entry.lines().find(|l| l.starts_with(&format!("{name} = "))).expect("field");
        line.split('"').nth(1).expect("quoted").to_owned()
    };
    let raw: rampart::auth::RawAuthConfig = serde_json::from_value(serde_json::json!({
        "roles": {"clerk": ["orders:write"]},
        "api_keys": [{"id": field("id"), "name": field("name"), "hash": field("hash"),
                      "permissions": ["orders:read", "invoices:*"], "roles": ["clerk"]}],
    }))
    .expect("raw");
    let store = rampart::auth::ApiKeyStore::new(&raw.validate().expect("valid"));
    let principal = store.verify(&key).expect("the key works");
    assert!(principal.has("invoices:send") && principal.has("orders:write"));
}

#[test]
fn apikey_new_refuses_bad_arguments() {
    let out = rampart(&["apikey", "new", "--name", "x", "--perm", "orders:*:read"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid permission"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("rk_"));
    let out = rampart(&["apikey", "new", "--name", ""]);
    assert_eq!(out.status.code(), Some(2));
    let out = rampart(&["apikey", "new"]);
    assert_eq!(out.status.code(), Some(2), "--name is required");
}
