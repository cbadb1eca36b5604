//! Black-box tests of the `rampart` binary.

use std::process::Command;

use rampart::config::Section;

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
    assert_eq!(out.status.code(), Some(1), "invalid input");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
}

/// Finding: each command had its own exit statuses. One convention (0 done,
/// 1 invalid input or "no", 2 could not run), stated in every `--help`.
#[test]
fn every_command_states_the_one_exit_convention_in_its_help() {
    for command in [
        &[][..],
        &["config", "check"],
        &["config", "show"],
        &["apikey", "new"],
        &["token", "issue"],
        &["audit", "verify"],
    ] {
        let out = rampart(&[command, &["--help"]].concat());
        assert_eq!(out.status.code(), Some(0), "{command:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Exit status: 0"), "{command:?}:\n{help}");
        assert!(help.contains(", 1 ") && help.contains(", 2 "), "{command:?}:\n{help}");
    }
    // `config show` does not check, whatever `--profile` it loads with.
    let show = rampart(&["config", "show", "--help"]);
    assert!(!String::from_utf8_lossy(&show.stdout).contains("Check against"));
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
    let config = rampart::auth::AuthConfig::from_value(serde_json::json!({
        "roles": {"clerk": ["orders:write"]},
        "api_keys": [{"id": field("id"), "name": field("name"), "hash": field("hash"),
                      "permissions": ["orders:read", "invoices:*"], "roles": ["clerk"]}],
    }));
    let store = rampart::auth::ApiKeyStore::new(&config.expect("valid"));
    let principal = store.verify(&key).expect("the key works");
    assert!(principal.has("invoices:send") && principal.has("orders:write"));
}

#[test]
fn apikey_new_refuses_bad_arguments() {
    let out = rampart(&["apikey", "new", "--name", "x", "--perm", "orders:*:read"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid permission"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("rk_"));
    let out = rampart(&["apikey", "new", "--name", ""]);
    assert_eq!(out.status.code(), Some(1));
    let out = rampart(&["apikey", "new"]);
    assert_eq!(out.status.code(), Some(1), "--name is required");
}

/// Finding: `apikey new` printed text only. `--json` prints one object a
/// program can read, whose entry, as configuration, accepts its key.
#[test]
fn apikey_new_json_is_machine_readable() {
    let out = rampart(&["apikey", "new", "--name", "ci", "--perm", "orders:read", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let key = printed["key"].as_str().expect("key");
    assert!(rampart::auth::looks_like_api_key(key), "{key}");
    assert_eq!(
        (printed["name"].as_str(), printed["permissions"][0].as_str()),
        (Some("ci"), Some("orders:read"))
    );
    assert!(printed["config_entry"].as_str().is_some_and(|e| e.starts_with("[[auth.api_keys]]")));
    let config = rampart::auth::AuthConfig::from_value(serde_json::json!({
        "api_keys": [{"id": printed["id"], "name": printed["name"], "hash": printed["hash"],
                      "permissions": printed["permissions"], "roles": printed["roles"]}],
    }));
    let store = rampart::auth::ApiKeyStore::new(&config.expect("valid"));
    assert!(store.verify(key).expect("the key works").has("orders:read"));
}

const TOKEN_CONFIG: &str = r#"
[auth.jwt]
lifetime = "2h"
issuers = ["https://rampart.example"]
audiences = ["orders-api"]

[[auth.jwt.keys]]
kid = "main"
algorithm = "HS256"
secret = "a-token-signing-secret-of-32-bytes-or-more"
"#;

fn verify(config_text: &str, token: &str) -> Result<rampart::auth::Principal, rampart::Error> {
    let loaded = rampart::config::Loader::new()
        .toml_text("rampart.toml", config_text)
        .env_vars(Vec::<(String, String)>::new())
        .load()
        .expect("config loads");
    let verifier = rampart::auth::JwtVerifier::new(&loaded.config().auth).expect("verifier");
    verifier.verify(token)
}

#[test]
fn token_issue_prints_a_token_the_same_config_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("rampart.toml");
    std::fs::write(&file, TOKEN_CONFIG).expect("write");
    let path = file.to_str().expect("utf-8 path");
    let out = rampart(&[
        "token",
        "issue",
        "--config",
        path,
        "--sub",
        "ci-bot",
        "--perm",
        "orders:read",
        "--ttl",
        "15m",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).expect("utf-8").trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "{token}");
    let principal = verify(TOKEN_CONFIG, &token).expect("the issued token verifies");
    assert_eq!(principal.subject(), "ci-bot");
    assert!(principal.has("orders:read") && !principal.has("orders:write"));
    let claims = principal.claims();
    let ttl = claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat");
    assert_eq!(ttl, 15 * 60);
    assert_eq!(claims["iss"], "https://rampart.example");
    // Without --ttl, the configured auth.jwt.lifetime.
    let out = rampart(&["token", "issue", "--config", path, "--sub", "ci-bot"]);
    let token = String::from_utf8(out.stdout).expect("utf-8").trim().to_owned();
    let claims = verify(TOKEN_CONFIG, &token).expect("verifies").claims().clone();
    assert_eq!(
        claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat"),
        2 * 3600
    );
    // Another secret does not accept it.
    let other = TOKEN_CONFIG.replace("a-token-signing-secret", "another-signing-secret");
    assert!(verify(&other, &token).is_err());
}

#[test]
fn token_issue_explains_what_is_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("rampart.toml");
    std::fs::write(&file, "[auth.jwt]\nlifetime = \"1h\"\n").expect("write");
    let path = file.to_str().expect("utf-8 path");
    let out = rampart(&["token", "issue", "--config", path, "--sub", "x"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("auth.jwt.keys") && err.contains("no HS key"), "{err}");
    assert!(out.stdout.is_empty());
    // The lifetime's place before this release: refused, saying where it went.
    std::fs::write(&file, "[jwt]\nlifetime = \"1h\"\n").expect("write");
    let out = rampart(&["token", "issue", "--config", path, "--sub", "x"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("jwt: moved into [auth.jwt]: write auth.jwt.lifetime"), "{err}");
    assert!(err.trim_end().ends_with(&format!("({path}:1)")), "{err}");
    let out = rampart(&["token", "issue", "--config", path, "--sub", "x", "--ttl", "soon"]);
    assert_eq!(out.status.code(), Some(1), "invalid input");
    let missing = dir.path().join("missing.toml");
    let missing = missing.to_str().expect("utf-8 path");
    let out = rampart(&["token", "issue", "--config", missing, "--sub", "x"]);
    assert_eq!(out.status.code(), Some(2), "could not run");
}

/// Finding: `token issue --role` with a role the configuration does not
/// define issued a token granting nothing for it, silently.
#[test]
fn token_issue_refuses_a_role_the_config_does_not_define() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("rampart.toml");
    std::fs::write(&file, format!("{TOKEN_CONFIG}\n[auth.roles]\nclerk = [\"orders:*\"]\n"))
        .expect("write");
    let path = file.to_str().expect("utf-8 path");
    let issue =
        |role: &str| rampart(&["token", "issue", "--config", path, "--sub", "x", "--role", role]);
    let out = issue("clerk");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = issue("clark");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"clark\"") && err.contains("auth.roles"), "{err}");
}

/// Every command that reads a configuration loads it the one way
/// `config check` does: the same `--profile` and `--env-prefix`, the same
/// problems, one per line.
#[test]
fn token_issue_loads_the_configuration_as_config_check_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("rampart.toml");
    std::fs::write(&file, TOKEN_CONFIG).expect("write");
    let path = file.to_str().expect("utf-8 path");
    let issue = ["token", "issue", "--config", path, "--sub", "x", "--profile", "production"];
    let check = ["config", "check", path, "--profile", "production"];
    let (issued, checked) = (rampart(&issue), rampart(&check));
    assert_eq!((issued.status.code(), checked.status.code()), (Some(1), Some(1)));
    let problems = String::from_utf8_lossy(&checked.stderr).into_owned();
    assert!(problems.contains("secret_key: is the development default"), "{problems}");
    assert_eq!(String::from_utf8_lossy(&issued.stderr), problems);
    // A variable under another prefix, for both.
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["token", "issue", "--config", path, "--sub", "x", "--env-prefix", "MYAPP_"])
        .env_clear()
        .env("MYAPP_AUTH__JWT__LIFETIME", "soon")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("auth.jwt.lifetime: invalid value")
            && err.contains("(env MYAPP_AUTH__JWT__LIFETIME)"),
        "{err}"
    );
}
