//! Configuration loading through the public API: layering, env nesting,
//! error messages that name the key and source but never the value, and
//! every production check.
// The files here hold every section, `[auth]` and `[audit]` included.
#![cfg(all(feature = "auth", feature = "audit"))]

use std::path::PathBuf;
use std::time::Duration;

use rampart::ErrorKind;
use rampart::config::{ConfigError, Loaded, Loader, Profile, Source};
use rampart::handler::ErrorFormat;

/// A value that must never appear in any message.
const CANARY: &str = "canary-Zq8yW3vT5-hunter2";

/// A loader that sees only the given variables, never the process environment.
fn loader(toml: &str, env: &[(&str, &str)]) -> Loader {
    Loader::new().toml_text("rampart.toml", toml).env_vars(env.iter().copied())
}

fn load(toml: &str, env: &[(&str, &str)]) -> Loaded {
    loader(toml, env).load().unwrap_or_else(|e| panic!("loads:\n{e}"))
}

fn fail(toml: &str, env: &[(&str, &str)]) -> ConfigError {
    match loader(toml, env).load() {
        Ok(_) => panic!("should not load:\n{toml}"),
        Err(err) => err,
    }
}

/// `(key, message)` of each problem.
fn problems(err: &ConfigError) -> Vec<(String, String)> {
    err.problems()
        .iter()
        .map(|p| {
            assert_eq!(p.kind(), ErrorKind::Configuration);
            (p.config_key().unwrap_or("").to_owned(), p.message().to_owned())
        })
        .collect()
}

fn source(loaded: &Loaded, key: &str) -> Source {
    loaded.settings().iter().find(|s| s.key == key).expect(key).source.clone()
}

const SECURE: &str = r#"
profile = "production"
secret_key = "0123456789abcdef0123456789abcdef-production"
[tls]
terminated_upstream = true
"#;

#[test]
fn env_overrides_file_overrides_defaults_and_each_value_knows_its_source() {
    let toml = "error_format = \"simple\"\n\n[rate_limit]\nrequests = 10\nwindow = \"30s\"\n";
    let loaded = load(toml, &[("RAMPART_RATE_LIMIT__WINDOW", "5s")]);
    let c = loaded.config();
    assert_eq!(c.error_format, ErrorFormat::Simple);
    assert_eq!(c.rate_limit.quota.requests(), 10);
    assert_eq!(c.rate_limit.quota.window().as_secs(), 5);
    assert_eq!(c.auth.jwt().lifetime().as_secs(), 86_400);

    let file = |line| Source::File { path: "rampart.toml".into(), line: Some(line) };
    assert_eq!(source(&loaded, "error_format"), file(1));
    assert_eq!(source(&loaded, "rate_limit.requests"), file(4));
    assert_eq!(
        source(&loaded, "rate_limit.window"),
        Source::Env { var: "RAMPART_RATE_LIMIT__WINDOW".into() }
    );
    assert_eq!(source(&loaded, "auth.jwt.lifetime"), Source::Default);
    let window = loaded.settings().iter().find(|s| s.key == "rate_limit.window").expect("listed");
    assert_eq!(window.value, "\"5s\"");
}

#[test]
fn env_nests_on_double_underscores_and_keeps_snake_case_names_whole() {
    let env = [
        ("RAMPART_RATE_LIMIT__REQUESTS", "7"),
        ("rampart_rate_limit__enabled", "false"),
        ("RAMPART_MAX_INPUT_SIZE", "2MiB"),
        ("RAMPART_ALLOWED_FILE_TYPES", r#"["pdf", "png"]"#),
        ("RAMPART_CORS__ALLOWED_ORIGINS", r#"["https://app.example.com"]"#),
        ("RAMPART_CORS__ALLOW_CREDENTIALS", "true"),
        // Digits stay text for a text setting: leading zeros are kept.
        ("RAMPART_SECRET_KEY", "000123456789012345678901234567890"),
        // Not ours: variables an orchestrator sets beside ours are left alone.
        ("RAMPART_PORT", "tcp://10.0.0.1:80"),
        ("OTHER_RATE_LIMIT__REQUESTS", "1"),
    ];
    let c = load("", &env).into_config();
    assert_eq!((c.rate_limit.quota.requests(), c.rate_limit.enabled), (7, false));
    assert_eq!(c.max_input_size, 2 << 20);
    assert_eq!(c.allowed_file_types, ["pdf", "png"]);
    assert_eq!(c.cors.allowed_origins, ["https://app.example.com"]);
    assert!(c.cors.allow_credentials);
    assert_eq!(c.secret_key.expose(), "000123456789012345678901234567890");
}

#[test]
fn the_prefix_is_configurable() {
    let c = Loader::new()
        .env_prefix("MYAPP_")
        .env_vars([("MYAPP_RATE_LIMIT__REQUESTS", "3"), ("RAMPART_RATE_LIMIT__REQUESTS", "9")])
        .load()
        .expect("loads")
        .into_config();
    assert_eq!(c.rate_limit.quota.requests(), 3);
}

#[test]
fn a_real_file_is_read_and_a_missing_one_is_an_error() {
    let path = temp_file("[auth.jwt]\nlifetime = \"1h\"\n");
    let c = Loader::new().file(&path).env_vars(None::<(String, String)>).load().expect("loads");
    assert_eq!(c.config().auth.jwt().lifetime().as_secs(), 3600);
    let file = path.display().to_string();
    assert_eq!(source(&c, "auth.jwt.lifetime"), Source::File { path: file, line: Some(2) });
    std::fs::remove_file(&path).expect("removed");

    let err = Loader::new().file(&path).load().expect_err("missing file");
    let msg = err.to_string();
    assert!(msg.starts_with("cannot read the configuration file"), "{msg}");
    assert!(msg.ends_with(": No such file or directory"), "{msg}");

    // Not text: said so, without quoting a byte of it.
    std::fs::write(&path, b"secret_key = \"\xff\xfe\"\n").expect("written");
    let msg = Loader::new().file(&path).load().expect_err("not UTF-8").to_string();
    assert!(msg.ends_with(": stream did not contain valid UTF-8"), "{msg}");
    std::fs::remove_file(&path).expect("removed");
}

#[test]
fn bad_toml_is_located_without_echoing_the_line() {
    let err = fail(&format!("profile = \"production\"\nsecret_key = {CANARY}\n"), &[]);
    let msg = err.to_string();
    assert!(msg.starts_with("rampart.toml:2:14: invalid TOML"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
    let err = fail(&format!("secret_key = \"{CANARY}\nx = 1\n"), &[]);
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn a_mistyped_secret_is_never_echoed() {
    // The secret typed into the wrong key, a wrong type, a wrong enum value,
    // an unknown key, by file and by variable.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case<'_>] = &[
        (
            &format!("[rate_limit]\nrequests = \"{CANARY}\"\n"),
            &[],
            "rate_limit.requests",
            "expected a whole number, 0 or more, found a string (rampart.toml:2)",
        ),
        (
            "",
            &[("RAMPART_RATE_LIMIT__WINDOW", CANARY)],
            "rate_limit.window",
            "invalid value: expected a duration such as \"500ms\", \"60s\" or \"24h\" \
             (env RAMPART_RATE_LIMIT__WINDOW)",
        ),
        (
            &format!("profile = \"{CANARY}\"\n"),
            &[],
            "profile",
            "must be one of: development, production (rampart.toml:1)",
        ),
        (
            &format!("secret_key = [\"{CANARY}\"]\n"),
            &[],
            "secret_key",
            "expected a string, found an array (rampart.toml:1)",
        ),
        (
            &format!("[cors]\nallowed_origins = [\"{CANARY}\"]\n"),
            &[],
            "cors.allowed_origins[0]",
            "is not an origin: write scheme://host[:port] with no path, or \"*\" (rampart.toml:2)",
        ),
        (
            &format!("[tls]\ncert_path = \"{CANARY}\"\nkey_path = \"{CANARY}\"\n"),
            &[],
            "tls.cert_path",
            "names no readable file (rampart.toml:2)",
        ),
        (
            &format!("max_input_size = \"{CANARY}\"\n"),
            &[],
            "max_input_size",
            "invalid value: expected a size such as \"1MiB\", \"512KiB\" or a number of bytes \
             (rampart.toml:1)",
        ),
        (
            &format!("[proxy]\ntrusted_proxies = [\"{CANARY}\"]\n"),
            &[],
            "proxy.trusted_proxies[0]",
            "is not an IP network: write a CIDR such as \"10.0.0.0/8\" or an address \
             (rampart.toml:2)",
        ),
    ];
    for (toml, env, key, why) in cases {
        let err = fail(toml, env);
        assert_eq!(problems(&err), [((*key).to_owned(), (*why).to_owned())], "{toml} {env:?}");
        let printed = format!("{err} {err:?}");
        let as_error = rampart::Error::from(err);
        let printed = format!("{printed} {as_error} {as_error:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}

#[test]
fn unknown_keys_are_errors_in_the_file_and_in_known_tables_of_the_env() {
    let err = fail("secret_kye = \"x\"\n[rate_limit]\nrequets = 5\n", &[]);
    let keys: Vec<String> = problems(&err).into_iter().map(|(k, _)| k).collect();
    assert!(keys.contains(&"secret_kye".to_owned()), "{keys:?}");
    let err = fail("", &[("RAMPART_RATE_LIMIT__REQUETS", "5")]);
    assert_eq!(problems(&err)[0].0, "rate_limit.requets");
    assert!(problems(&err)[0].1.ends_with("(env RAMPART_RATE_LIMIT__REQUETS)"), "{err}");
}

#[test]
fn values_out_of_range_are_errors() {
    for (toml, key) in [
        ("[rate_limit]\nrequests = 0\n", "rate_limit.requests"),
        ("[rate_limit]\nrequests = 5000000000\n", "rate_limit.requests"),
        ("[rate_limit]\nrequests = -1\n", "rate_limit.requests"),
        ("[rate_limit]\nwindow = \"0s\"\n", "rate_limit.window"),
        ("max_input_size = 0\n", "max_input_size"),
        ("[auth.jwt]\nlifetime = \"0s\"\n", "auth.jwt.lifetime"),
    ] {
        let err = fail(toml, &[]);
        assert_eq!(problems(&err)[0].0, key, "{toml}");
    }
}

#[test]
fn problems_in_several_tables_are_reported_together() {
    let err = fail(
        "[rate_limit]\nrequests = \"many\"\n[auth.jwt]\nlifetime = 5\n[cors]\nallowed_origins = \"x\"\n",
        &[],
    );
    let mut keys: Vec<String> = problems(&err).into_iter().map(|(k, _)| k).collect();
    keys.sort();
    assert_eq!(keys, ["auth.jwt.lifetime", "cors.allowed_origins", "rate_limit.requests"]);
    assert_eq!(err.to_string().lines().count(), 3);
}

#[test]
fn the_secure_example_passes_production() {
    let loaded = load(SECURE, &[]);
    assert_eq!(loaded.config().profile, Profile::Production);
    assert!(loaded.warnings().is_empty());
}

#[test]
fn each_production_check_refuses_its_setting_and_development_warns() {
    let base = "secret_key = \"0123456789abcdef0123456789abcdef-production\"\n";
    let cases = [
        (
            "[tls]\nterminated_upstream = true\n",
            "secret_key = \"short-key\"\n",
            "secret_key",
            "shorter than 32 bytes",
        ),
        ("[tls]\nterminated_upstream = true\n", "", "secret_key", "development default"),
        (
            "[tls]\nterminated_upstream = true\n[cors]\nallowed_origins = [\"*\"]\nallow_credentials = true\n",
            base,
            "cors.allowed_origins",
            "allows any origin",
        ),
        (
            "[tls]\nterminated_upstream = true\n[rate_limit]\nenabled = false\n",
            base,
            "rate_limit.enabled",
            "rate limiting is off",
        ),
        ("", base, "tls", "is not set up"),
        (
            "[proxy]\ntrusted_proxies = [\"10.0.0.0/8\", \"0.0.0.0/0\"]\n[tls]\nterminated_upstream = true\n",
            base,
            "proxy.trusted_proxies[1]",
            "trusts every address",
        ),
        (
            "[proxy]\ntrusted_proxies = [\"::/0\"]\n[tls]\nterminated_upstream = true\n",
            base,
            "proxy.trusted_proxies[0]",
            "trusts every address",
        ),
    ];
    for (tail, secret, key, why) in cases {
        // The secret line goes first so that tables below it do not swallow it.
        let toml = format!("{secret}{tail}");
        let dev = load(&toml, &[]);
        let warnings: Vec<_> =
            dev.warnings().iter().map(|w| w.config_key().unwrap_or("")).collect();
        assert_eq!(warnings, [key], "{toml}");

        let err = loader(&toml, &[]).profile(Profile::Production).load().expect_err(key);
        let found = problems(&err);
        assert_eq!(found.len(), 1, "{err}");
        assert_eq!(found[0].0, key);
        assert!(found[0].1.contains(why), "{err}");
        // The profile can come from the file or the environment as well.
        let env = [("RAMPART_PROFILE", "production")];
        assert!(loader(&toml, &env).load().is_err());
    }
}

#[test]
fn production_lists_every_problem_one_per_line() {
    let toml = "profile = \"production\"\n[proxy]\ntrusted_proxies = [\"0.0.0.0/0\"]\n\
                [cors]\nallowed_origins = [\"*\"]\nallow_credentials = true\n\
                [rate_limit]\nenabled = false\n";
    let err = fail(toml, &[]);
    let keys: Vec<String> = problems(&err).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "secret_key",
            "cors.allowed_origins",
            "rate_limit.enabled",
            "tls",
            "proxy.trusted_proxies[0]"
        ]
    );
    let text = err.to_string();
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(
        text.lines()
            .any(|l| l == "rate_limit.enabled: is false: rate limiting is off (rampart.toml:8)"),
        "{text}"
    );
}

#[test]
fn printing_the_config_masks_every_secret() {
    let toml = format!("secret_key = \"{CANARY}\"\n");
    let loaded = load(&toml, &[]);
    let c = loaded.config();
    let printed = format!(
        "{c:?} {c:#?} {} {:?}",
        serde_json::to_string(c).expect("serializes"),
        loaded.settings()
    );
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("******"));
    assert_eq!(c.secret_key.expose(), CANARY);
}

fn temp_file(text: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let path =
        std::env::temp_dir().join(format!("rampart-config-{}-{nanos}.toml", std::process::id()));
    std::fs::write(&path, text).expect("written");
    path
}

#[test]
fn the_example_in_config_md_passes_production_with_a_secret_key_from_the_environment() {
    let doc = include_str!("../../../docs/CONFIG.md");
    let start = doc.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = start + doc[start..].find("```").expect("closed");
    let example = &doc[start..end];
    let env = [("RAMPART_SECRET_KEY", "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=")];
    let loaded = loader(example, &env).profile(Profile::Production).load();
    let loaded = loaded.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.config().rate_limit.quota.requests(), 300);
    assert!(loaded.warnings().is_empty());
    // Without it, the example is refused: it carries no secret of its own.
    let err = loader(example, &[]).profile(Profile::Production).load().expect_err("no key");
    assert_eq!(problems(&err)[0].0, "secret_key");
}

/// Every example secret the documentation prints: TOML `secret_key`,
/// `secret` and `key` values in the Markdown files, and JSON `"secret"` and
/// `"key"` values in the crate's doc comments.
fn documented_secrets() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut texts = Vec::new();
    for dir in ["docs", "."] {
        for entry in std::fs::read_dir(root.join(dir)).expect("dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "md") {
                texts.push(std::fs::read_to_string(path).expect("read"));
            }
        }
    }
    let mut sources = vec![root.join("crates/rampart/src")];
    while let Some(dir) = sources.pop() {
        for entry in std::fs::read_dir(dir).expect("dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                sources.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(path).expect("read");
                let docs = text.lines().filter(|l| l.trim_start().starts_with("//"));
                texts.push(docs.collect::<Vec<_>>().join("\n"));
            }
        }
    }
    let mut found = Vec::new();
    for text in &texts {
        for marker in
            ["secret_key = \"", "secret = \"", "key = \"", "\"secret\": \"", "\"key\": \""]
        {
            for (at, _) in text.match_indices(marker) {
                let value = &text[at + marker.len()..];
                let value = &value[..value.find('"').unwrap_or(0)];
                if !value.is_empty() && !value.contains("...") && !found.iter().any(|f| f == value)
                {
                    found.push(value.to_owned());
                }
            }
        }
    }
    found
}

/// Finding: the production profile accepted the placeholder secret printed
/// in CONFIG.md's own example. Every example secret of the documentation,
/// and every secret whose text is too regular to be random, is refused,
/// wherever a secret goes.
#[test]
fn production_refuses_documented_and_low_entropy_secrets() {
    let documented = documented_secrets();
    assert!(
        documented.iter().any(|s| s == "a-session-secret-of-at-least-32-bytes"),
        "the scan finds the session module's example: {documented:?}"
    );
    let weak = [
        // CONFIG.md's example until this release.
        "replace-me-with-32-or-more-random-bytes-0123456789".to_owned(),
        "x".repeat(40),
        "ab".repeat(20),
        "passwordpasswordpasswordpassword".to_owned(),
    ];
    for secret in documented.iter().chain(&weak) {
        let toml = format!("secret_key = \"{secret}\"\n[tls]\nterminated_upstream = true\n");
        let err = loader(&toml, &[]).profile(Profile::Production).load().expect_err(secret);
        let found = problems(&err);
        assert_eq!(found.len(), 1, "{err}");
        assert_eq!(found[0].0, "secret_key", "{err}");
        assert!(!err.to_string().contains(secret.as_str()), "{err}");
    }
    // The session secret and HS keys are checked the same way.
    let toml = "[tls]\nterminated_upstream = true\n\
                [auth.session]\nsecret = \"a-session-secret-of-at-least-32-bytes\"\n\
                [[auth.jwt.keys]]\nkid = \"k\"\nalgorithm = \"HS256\"\n\
                secret = \"abababababababababababababababab\"\n";
    let env = [("RAMPART_SECRET_KEY", "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=")];
    let err = loader(toml, &env).profile(Profile::Production).load().expect_err("weak");
    let keys: Vec<String> = problems(&err).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["auth.session.secret", "auth.jwt.keys[0].secret"], "{err}");
    // In development they are warnings.
    let loaded = load(toml, &env);
    assert_eq!(loaded.warnings().len(), 2, "{:?}", loaded.warnings());
}

#[test]
fn every_module_section_loads_from_the_one_file_and_prints_masked() {
    let toml = format!(
        r#"
[rate_limit]
backend = "redis"
redis_url = "redis://:{CANARY}@127.0.0.1:6379"

[audit]
key = "{CANARY}-{CANARY}"
key_id = "k7"
[audit.file]
dir = "audit-dir"
fsync = "always"
[audit.postgres]
url = "postgres://audit:{CANARY}@db/app"

[monitor]
window = "30s"
[monitor.thresholds]
auth_failure = 4
"#
    );
    let loaded = load(&toml, &[("RAMPART_MONITOR__MAX_TRACKED", "500")]);
    let c = loaded.config();
    assert_eq!(c.audit.as_ref().expect("audit configured").key().id(), "k7");
    let value =
        |key: &str| loaded.settings().iter().find(|s| s.key == key).expect(key).value.clone();
    assert_eq!(value("audit.file.fsync"), "\"always\"");
    assert_eq!(value("monitor.window"), "\"30s\"");
    assert_eq!(value("monitor.thresholds.auth_failure"), "4");
    assert_eq!(value("monitor.max_tracked"), "500");
    assert_eq!(
        source(&loaded, "monitor.max_tracked"),
        Source::Env { var: "RAMPART_MONITOR__MAX_TRACKED".into() }
    );
    for key in ["audit.key", "audit.postgres.url", "rate_limit.redis_url"] {
        assert_eq!(value(key), "\"******\"", "{key}");
    }
    let printed = format!("{c:?}{:?}", loaded.settings());
    assert!(!printed.contains(CANARY), "{printed}");

    // Without an [audit] table there is no audit trail, and that is not an error.
    assert!(load("", &[]).config().audit.is_none());
}

#[test]
fn module_sections_report_their_own_keys_without_values() {
    let err = fail(&format!("[audit]\nkey = \"{CANARY}\"\n[audit.file]\ndir = \"d\"\n"), &[]);
    assert_eq!(problems(&err)[0].0, "audit.key");
    let err = fail(&format!("[monitor]\nwindow = \"{CANARY}\"\n"), &[]);
    assert_eq!(problems(&err)[0].0, "monitor.window");
    let err = fail("[audit.file]\ndir = \"d\"\nfsync = \"sometimes\"\n", &[]);
    assert!(problems(&err).iter().any(|(key, _)| key.starts_with("audit.")), "{err}");
    for problem in err.problems() {
        assert!(!problem.message().contains("sometimes"), "{}", problem.message());
    }
    assert!(!err.to_string().contains(CANARY));
}

#[test]
fn keys_in_arrays_of_tables_are_named_with_their_index_and_line() {
    let toml = format!(
        "[[auth.jwt.keys]]\nkid = \"a\"\nalgorithm = \"HS256\"\nsecret = \"{CANARY}\"\n\n\
         [[auth.jwt.keys]]\nkid = \"b\"\nalgorithm = \"HS256\"\nsecret = 12\n"
    );
    let err = fail(&toml, &[]);
    let (key, message) = &problems(&err)[0];
    assert_eq!(key, "auth.jwt.keys[1].secret");
    assert!(message.contains("rampart.toml:9"), "{message}");

    // A short secret in the first entry: only that value is masked, so the
    // message keeps its own words (the algorithm names) intact.
    let err =
        fail("[[auth.jwt.keys]]\nkid = \"a\"\nalgorithm = \"HS256\"\nsecret = \"HS2\"\n", &[]);
    let (key, message) = &problems(&err)[0];
    assert_eq!(key, "auth.jwt.keys[0].secret");
    assert!(
        message.contains("32 bytes for HS256") && message.contains("rampart.toml:4"),
        "{message}"
    );
    assert!(!err.to_string().contains(CANARY));
}

#[test]
fn every_problem_in_one_table_is_reported_not_only_the_first() {
    let toml = format!(
        "[rate_limit]\nrequests = \"{CANARY}\"\nwindow = 5\nbogus = 1\nburst = 0\n\
         [[auth.jwt.keys]]\nkid = \"a\"\nalgorithm = \"HS256\"\nsecret = 12\nextra = true\n"
    );
    let err = fail(&toml, &[]);
    let mut keys: Vec<String> = problems(&err).into_iter().map(|(key, _)| key).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "auth.jwt.keys[0].extra",
            "auth.jwt.keys[0].secret",
            "rate_limit.bogus",
            // A value of the right type but out of range, found by the
            // section's own validation in the same run.
            "rate_limit.burst",
            "rate_limit.requests",
            "rate_limit.window",
        ]
    );
    let text = err.to_string();
    assert!(text.contains("rate_limit.requests: expected a whole number, 0 or more, found a string (rampart.toml:2)"), "{text}");
    assert!(!text.contains(CANARY));
    // A required key that is missing is reported once, as missing.
    let err = fail("[[auth.jwt.keys]]\nkid = \"a\"\nsecret = 12\n", &[]);
    let keys: Vec<String> = problems(&err).into_iter().map(|(key, _)| key).collect();
    assert!(keys.contains(&"auth.jwt.keys[0].secret".to_owned()), "{err}");
}

/// The keys of the table at `path` (dotted; `keys[]` is an entry of an
/// array of tables), as the loader lists them when it refuses an unknown
/// one; `None` when `path` is not a table of named keys.
fn accepted_keys(path: &str) -> Option<Vec<String>> {
    let toml = match path.split_once("[]") {
        None if path.is_empty() => "zz_probe = 1\n".to_owned(),
        None => format!("[{path}]\nzz_probe = 1\n"),
        Some((array, "")) => format!("[[{array}]]\nzz_probe = 1\n"),
        Some((array, rest)) => format!("[[{array}]]\n[{array}{rest}]\nzz_probe = 1\n"),
    };
    let probe = match path {
        "" => "zz_probe".to_owned(),
        _ => format!("{}.zz_probe", path.replace("[]", "[0]")),
    };
    let err = loader(&toml, &[]).load().err()?;
    let problem = err.problems().iter().find(|p| p.config_key() == Some(probe.as_str()))?;
    let listed = problem.message().strip_prefix("is not a known key (expected one of: ")?;
    Some(listed.split(')').next()?.split(", ").map(str::to_owned).collect())
}

/// Every key the loader accepts: `(tables, leaves)`, arrays of tables as
/// `name[]` (their keys as `name[].key`).
fn every_accepted_key() -> (Vec<String>, Vec<String>) {
    let (mut tables, mut leaves) = (vec![String::new()], Vec::new());
    let mut pending = vec![String::new()];
    while let Some(table) = pending.pop() {
        for key in accepted_keys(&table).unwrap_or_else(|| panic!("{table:?} is a table")) {
            let path = if table.is_empty() { key } else { format!("{table}.{key}") };
            let array = format!("{path}[]");
            if accepted_keys(&path).is_some() {
                tables.push(path.clone());
                pending.push(path);
            } else if !path.contains("[]") && accepted_keys(&array).is_some() {
                tables.push(path);
                tables.push(array.clone());
                pending.push(array);
            } else {
                leaves.push(path);
            }
        }
    }
    (tables, leaves)
}

/// Finding: a blank line broke CONFIG.md's table of keys, and keys were
/// missing from it. Every key the loader accepts is in the table (one
/// unbroken table), and every key in it is accepted.
#[test]
fn config_md_documents_exactly_the_keys_the_loader_accepts() {
    let doc = include_str!("../../../docs/CONFIG.md");
    let section = doc.split("\n## Keys\n").nth(1).expect("a Keys section");
    let section = section.split("\n## ").next().expect("section text");
    let mut lines = section.lines().skip_while(|l| !l.starts_with("| key |"));
    let rows: Vec<&str> = lines.by_ref().take_while(|l| l.starts_with('|')).collect();
    assert!(rows.len() > 2, "no table of keys");
    let stray: Vec<&str> = lines.filter(|l| l.starts_with('|')).collect();
    assert!(stray.is_empty(), "rows after a break in the table: {stray:?}");
    let documented: Vec<String> = rows[2..]
        .iter()
        .flat_map(|row| {
            let first_cell = row.split('|').nth(1).unwrap_or("");
            first_cell.split('`').skip(1).step_by(2).map(str::to_owned).collect::<Vec<_>>()
        })
        .collect();
    let (tables, leaves) = every_accepted_key();
    let missing: Vec<&String> = leaves.iter().filter(|k| !documented.contains(k)).collect();
    assert!(missing.is_empty(), "accepted but not in docs/CONFIG.md: {missing:?}");
    let unknown: Vec<&String> =
        documented.iter().filter(|k| !leaves.contains(k) && !tables.contains(k)).collect();
    assert!(unknown.is_empty(), "in docs/CONFIG.md but not accepted: {unknown:?}");
}

/// `conf/app.toml` under a temporary directory, with `toml` in it and a key
/// file `conf/audit.key` of the given mode.
fn config_dir(toml: &str, key_mode: u32) -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    let conf = tmp.path().join("conf");
    std::fs::create_dir_all(conf.join("keys")).expect("dirs");
    let key = conf.join("audit.key");
    std::fs::write(&key, "audit-key-audit-key-audit-key-audit-key\n").expect("key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(key_mode)).expect("chmod");
    std::fs::copy("tests/fixtures/auth/ec_public.pem", conf.join("keys/ec.pem")).expect("pem");
    std::fs::write(conf.join("jwks.json"), r#"{"keys": []}"#).expect("jwks");
    std::fs::write(conf.join("app.toml"), toml).expect("config");
    (tmp, conf)
}

#[test]
fn relative_paths_are_relative_to_the_config_file_not_the_working_directory() {
    let toml = "[audit]\nkey_file = \"audit.key\"\n[audit.file]\ndir = \"trail\"\n\
                checkpoints = \"../witness/cps.jsonl\"\n\
                [[auth.jwt.keys]]\nkid = \"ec\"\nalgorithm = \"ES256\"\npublic_key_file = \"keys/ec.pem\"\n\
                [auth.jwt.jwks]\nfile = \"jwks.json\"\n";
    let (_tmp, conf) = config_dir(toml, 0o600);
    // The working directory is elsewhere (the crate's), and holds none of these files.
    let loaded = Loader::new()
        .file(conf.join("app.toml"))
        .env_vars(None::<(String, String)>)
        .load()
        .unwrap_or_else(|e| panic!("{e}"));
    let value =
        |key: &str| loaded.settings().iter().find(|s| s.key == key).expect(key).value.clone();
    let under = |path: &str| format!("{:?}", conf.join(path).display().to_string());
    assert_eq!(value("audit.key_file"), under("audit.key"));
    assert_eq!(value("audit.file.dir"), under("trail"));
    assert_eq!(value("audit.file.checkpoints"), under("../witness/cps.jsonl"));
    // Values from the environment stay as given: relative to the working directory.
    let loaded = Loader::new()
        .file(conf.join("app.toml"))
        .env_vars([("RAMPART_AUDIT__FILE__DIR", "from-env")])
        .load()
        .unwrap_or_else(|e| panic!("{e}"));
    let dir =
        loaded.settings().iter().find(|s| s.key == "audit.file.dir").expect("dir").value.clone();
    assert_eq!(dir, "\"from-env\"");
}

#[test]
fn a_key_file_open_to_other_users_is_a_warning_and_refused_in_production() {
    let toml =
        format!("{SECURE}[audit]\nkey_file = \"audit.key\"\n[audit.file]\ndir = \"trail\"\n");
    for mode in [0o644, 0o640, 0o604, 0o660] {
        let (_tmp, conf) = config_dir(&toml, mode);
        let file = || Loader::new().file(conf.join("app.toml")).env_vars(None::<(String, String)>);
        let err = file().load().expect_err("production refuses");
        let found = problems(&err);
        assert_eq!(found.len(), 1, "{err}");
        assert_eq!(found[0].0, "audit.key_file");
        assert!(found[0].1.contains("open to other users"), "{err}");
        let dev = file().profile(Profile::Development).load().expect("development loads");
        let warned: Vec<_> = dev.warnings().iter().filter_map(|w| w.config_key()).collect();
        assert_eq!(warned, ["audit.key_file"], "{mode:o}");
    }
    let (_tmp, conf) = config_dir(&toml, 0o600);
    let loaded =
        Loader::new().file(conf.join("app.toml")).env_vars(None::<(String, String)>).load();
    assert!(loaded.unwrap_or_else(|e| panic!("{e}")).warnings().is_empty());
}

/// Finding: a secret printed four ways (`config::Secret`'s `******`,
/// secrecy's `SecretBox<str>([REDACTED])`, a hand-made `RedisUrl`, and a
/// Redis limiter builder that printed its URL, password and all). Every
/// secret of every section is one `Secret`: `******` in `Debug`, in
/// serialization and in `config show`.
#[test]
fn every_sections_secret_prints_as_the_one_mask() {
    let toml = format!(
        "secret_key = \"{CANARY}-0\"\n\
         [rate_limit]\nbackend = \"redis\"\nredis_url = \"redis://:{CANARY}-1@127.0.0.1:6379\"\n\
         [audit]\nkey = \"{CANARY}-2-{CANARY}\"\n[audit.file]\ndir = \"audit-dir\"\n\
         [audit.postgres]\nurl = \"postgres://audit:{CANARY}-3@db/app\"\n\
         [auth.session]\nsecret = \"{CANARY}-4-{CANARY}\"\n\
         [[auth.jwt.keys]]\nkid = \"k\"\nalgorithm = \"HS256\"\nsecret = \"{CANARY}-5-{CANARY}\"\n"
    );
    let loaded = load(&toml, &[]);
    let c = loaded.config();
    let debug = format!("{c:?}");
    let json = serde_json::to_string(c).expect("serializes");
    for printed in [&debug, &json, &format!("{:?}", loaded.settings())] {
        assert!(!printed.contains(CANARY), "{printed}");
        assert!(!printed.contains("REDACTED"), "one mask, not secrecy's: {printed}");
    }
    // Each secret's place shows the mask.
    for field in ["secret_key: ******", "url: ******"] {
        assert!(debug.contains(field), "{field} in {debug}");
    }
    let value = |key: &str| {
        loaded
            .settings()
            .iter()
            .find(|s| s.key == key)
            .unwrap_or_else(|| panic!("{key}"))
            .value
            .clone()
    };
    for key in [
        "secret_key",
        "rate_limit.redis_url",
        "audit.key",
        "audit.postgres.url",
        "auth.session.secret",
    ] {
        assert_eq!(value(key), "\"******\"", "{key}");
    }
    let limiter = c.rate_limit.limiter().expect("a lazy Redis limiter");
    assert!(!format!("{limiter:?}").contains(CANARY));
    #[cfg(feature = "redis")]
    {
        let quota = rampart::ratelimit::Quota::new(5, Duration::from_secs(1)).expect("quota");
        let url = format!("redis://:{CANARY}@h");
        let builder = rampart::ratelimit::RedisLimiter::builder(&url, quota);
        assert!(!format!("{builder:?}").contains(CANARY), "{builder:?}");
    }
}

/// Finding: `auth.session.allowed_origins` (the CSRF check) had its own
/// origin rule, which took `https://user:password@host`; `cors` refused it.
/// One rule now: a bare `scheme://host[:port]`.
#[test]
fn an_origin_with_user_information_is_refused_by_the_csrf_origins_as_by_cors() {
    for (table, key) in
        [("auth.session", "auth.session.allowed_origins[1]"), ("cors", "cors.allowed_origins[1]")]
    {
        let secret = if table == "auth.session" {
            "secret = \"a-session-secret-for-the-origin-test-0123\"\n"
        } else {
            ""
        };
        let toml = format!(
            "[{table}]\n{secret}allowed_origins = [\"https://app.example.com\", \"https://u:p@app.example.com\"]\n"
        );
        let err = fail(&toml, &[]);
        let found = problems(&err);
        assert_eq!(found.len(), 1, "{err}");
        assert_eq!(found[0].0, key, "{err}");
        assert!(!err.to_string().contains("u:p@"), "{err}");
        // Paths and a trailing slash are refused alike.
        let toml = format!(
            "[{table}]\n{secret}allowed_origins = [\"https://a.example\", \"https://a.example/\"]\n"
        );
        assert_eq!(problems(&fail(&toml, &[]))[0].0, key);
    }
}

/// `[jwt] lifetime` is now `auth.jwt.lifetime`: the new key works from the
/// file and the environment, and the old one, in the file or a variable,
/// is an error that says where it went (never silently ignored).
#[test]
fn the_jwt_lifetime_moved_into_auth_jwt_and_the_old_key_says_so() {
    let loaded = load("[auth.jwt]\nlifetime = \"2h\"\n", &[]);
    assert_eq!(loaded.config().auth.jwt().lifetime().as_secs(), 7200);
    assert_eq!(
        source(&loaded, "auth.jwt.lifetime"),
        Source::File { path: "rampart.toml".into(), line: Some(2) }
    );
    let loaded = load("", &[("RAMPART_AUTH__JWT__LIFETIME", "15m")]);
    assert_eq!(loaded.config().auth.jwt().lifetime().as_secs(), 900);

    let moved = "moved into [auth.jwt]: write auth.jwt.lifetime instead of jwt.lifetime";
    let err = fail("[rate_limit]\nrequests = 5\n\n[jwt]\nlifetime = \"1h\"\n", &[]);
    assert_eq!(problems(&err), [("jwt".to_owned(), format!("{moved} (rampart.toml:4)"))]);
    let err = fail("", &[("RAMPART_JWT__LIFETIME", "1h")]);
    assert_eq!(
        problems(&err),
        [("jwt".to_owned(), format!("{moved} (env RAMPART_JWT__LIFETIME)"))]
    );
    // Out of range, it names the new key.
    for lifetime in ["0s", "400d"] {
        let err = fail(&format!("[auth.jwt]\nlifetime = \"{lifetime}\"\n"), &[]);
        assert_eq!(problems(&err)[0].0, "auth.jwt.lifetime");
    }
}

/// Retry and circuit-breaker settings are sections: read from the file and
/// the environment, validated with the rest, listed by `config show`, and
/// the defaults of the policies and breakers built for outbound calls.
#[test]
fn retry_and_circuit_breaker_are_sections_of_the_configuration() {
    let toml = "[retry]\nmax_retries = 1\nbase_delay = \"5ms\"\nmax_elapsed = \"none\"\n\
                [circuit_breaker]\nwindow_size = 10\nminimum_calls = 2\nslow_call_duration = \"2s\"\n";
    let loaded = load(toml, &[("RAMPART_RETRY__JITTER", "none")]);
    let c = loaded.config();
    assert_eq!(c.retry.max_retries, 1);
    assert_eq!(c.retry.max_elapsed, None);
    assert_eq!(c.retry.jitter, rampart::resilience::Jitter::None);
    assert_eq!(c.circuit_breaker.slow_call_duration, Some(Duration::from_secs(2)));
    let value =
        |key: &str| loaded.settings().iter().find(|s| s.key == key).expect(key).value.clone();
    assert_eq!(value("retry.max_elapsed"), "\"none\"");
    assert_eq!(value("retry.base_delay"), "\"5ms\"");
    assert_eq!(value("circuit_breaker.open_for"), "\"30s\"");
    assert_eq!(
        source(&loaded, "retry.jitter"),
        Source::Env { var: "RAMPART_RETRY__JITTER".into() }
    );

    // The policy built from the section retries as configured.
    let policy = c.retry.builder("payments").expect("builder").build().expect("policy");
    let mut calls = 0;
    let out: Result<(), rampart::Error> = policy.retry(|| {
        calls += 1;
        Err(rampart::Error::unavailable("down"))
    });
    assert_eq!((out.unwrap_err().attempts(), calls), (Some(2), 2));
    let breaker = c.circuit_breaker.builder("payments").build().expect("breaker");
    assert_eq!(breaker.state(), rampart::resilience::CircuitState::Closed);

    let err = fail(
        "[retry]\nbase_delay = \"20s\"\nmax_delay = \"1s\"\nfactor = 0.5\n\
         [circuit_breaker]\nminimum_calls = 0\nopen_for = \"soon\"\n",
        &[],
    );
    let keys: Vec<String> = problems(&err).into_iter().map(|(key, _)| key).collect();
    assert_eq!(
        keys,
        ["circuit_breaker.open_for", "retry.base_delay", "circuit_breaker.minimum_calls"],
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("retry.base_delay: must not be longer than retry.max_delay (rampart.toml:2)"),
        "{err}"
    );
}

/// Finding: the application's own table in the same file was refused
/// (`deny_unknown_fields` at the top level). Now it is read, untyped or as a
/// registered section; unknown keys inside rampart's tables, stray top-level
/// values and near misses of rampart's table names stay errors.
#[test]
fn an_applications_tables_are_readable_beside_rampart_s() {
    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Shop {
        currency: String,
        vat: u32,
    }
    let toml = "[rate_limit]\nrequests = 5\n\n[shop]\ncurrency = \"EUR\"\nvat = 20\n\n\
                [shop.payments]\nprovider = \"acme\"\n";
    let loaded = load(toml, &[]);
    assert_eq!(loaded.config().rate_limit.quota.requests(), 5);
    assert_eq!(loaded.extra_tables().collect::<Vec<_>>(), ["shop"]);
    #[derive(Debug, serde::Deserialize)]
    struct ShopFile {
        #[serde(flatten)]
        shop: Shop,
        payments: std::collections::BTreeMap<String, String>,
    }
    let shop: ShopFile = loaded.extra("shop").expect("reads").expect("present");
    assert_eq!(shop.shop, Shop { currency: "EUR".into(), vat: 20 });
    assert_eq!(shop.payments["provider"], "acme");
    assert!(loaded.extra::<Shop>("orders").expect("absent is fine").is_none());
    // Not listed by config show: rampart cannot tell an application's secrets.
    assert!(!loaded.settings().iter().any(|s| s.key.starts_with("shop")));
    // Read as the wrong type: the key and the line, never the value.
    let err = load(&format!("[shop]\ncurrency = \"EUR\"\nvat = \"{CANARY}\"\n"), &[])
        .extra::<Shop>("shop")
        .expect_err("vat is not a number");
    assert_eq!(
        problems(&err),
        [(
            "shop.vat".to_owned(),
            "expected a whole number, 0 or more, found a string (rampart.toml:3)".to_owned()
        )]
    );

    // Still errors: an unknown key inside rampart's table, a stray value at
    // the top, a near miss of rampart's table names (with the line).
    let err = fail(
        "secret_kye = \"x\"\n[rate_limit]\nrequets = 5\n[audits]\nkey = \"k\"\n[Rate_Limit]\nx = 1\n",
        &[],
    );
    let found = problems(&err);
    let keys: Vec<&str> = found.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(keys, ["rate_limit.requets", "Rate_Limit", "audits", "secret_kye"], "{err}");
    assert!(found[2].1.starts_with("is not a known key: did you mean audit?"), "{err}");
    assert!(found[2].1.ends_with("(rampart.toml:4)"), "{err}");
}

/// The application's own section, registered: validated with rampart's,
/// overridden by variables, listed (masked) by `config show`.
#[test]
fn a_registered_section_is_loaded_like_rampart_s_own() {
    use rampart::Error;
    use rampart::config::{Secret, Section};

    #[derive(Debug, Clone, serde::Serialize)]
    struct Shop {
        currency: String,
        api_token: Secret<String>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct RawShop {
        currency: String,
        api_token: Secret<String>,
    }
    impl Default for RawShop {
        fn default() -> RawShop {
            RawShop { currency: "EUR".into(), api_token: Secret::new(String::new()) }
        }
    }
    impl Section for Shop {
        const NAME: &'static str = "shop";
        type Raw = RawShop;
        fn from_raw(raw: RawShop) -> Result<Shop, Error> {
            if raw.currency.len() != 3 {
                return Err(Error::configuration("shop.currency", "must be an ISO 4217 code"));
            }
            Ok(Shop { currency: raw.currency, api_token: raw.api_token })
        }
    }
    let toml = format!("[shop]\ncurrency = \"GBP\"\napi_token = \"{CANARY}\"\n");
    let loaded = loader(&toml, &[("RAMPART_SHOP__CURRENCY", "USD")])
        .section::<Shop>()
        .load()
        .expect("loads");
    let shop = loaded.section::<Shop>().expect("registered");
    assert_eq!((shop.currency.as_str(), shop.api_token.expose().as_str()), ("USD", CANARY));
    assert!(loaded.extra_tables().next().is_none(), "a registered table is not extra");
    let setting = |key: &str| loaded.settings().iter().find(|s| s.key == key).expect(key).clone();
    assert_eq!(
        setting("shop.currency").source,
        Source::Env { var: "RAMPART_SHOP__CURRENCY".into() }
    );
    assert_eq!(setting("shop.api_token").value, "\"******\"");
    // Its problems are reported with rampart's, each with its line.
    let err = loader("[shop]\ncurrency = \"EURO\"\nbogus = 1\n[rate_limit]\nrequests = 0\n", &[])
        .section::<Shop>()
        .load()
        .expect_err("three problems");
    let keys: Vec<String> = problems(&err).into_iter().map(|(key, _)| key).collect();
    assert_eq!(keys, ["rate_limit.requests", "shop.bogus", "shop.currency"], "{err}");
    assert!(
        err.to_string().contains(
            "shop.bogus: is not a known key (expected one of: currency, api_token) (rampart.toml:3)"
        ),
        "{err}"
    );
    let err = loader("[shop]\ncurrency = \"EURO\"\n", &[])
        .section::<Shop>()
        .load()
        .expect_err("bad code");
    assert_eq!(
        problems(&err),
        [("shop.currency".to_owned(), "must be an ISO 4217 code (rampart.toml:2)".to_owned())]
    );
}

/// A JSON file is read as the TOML one is, and its problems carry the same
/// keys, the file and the line.
#[test]
fn a_json_file_gives_the_same_settings_and_the_same_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rampart.json");
    std::fs::write(
        &path,
        format!(
            "{{\n  \"error_format\": \"simple\",\n  \"rate_limit\": {{\n    \"requests\": \"{CANARY}\",\n    \
             \"requets\": 5\n  }},\n  \"auth\": {{\"jwt\": {{\"keys\": [\n    {{\"kid\": \"a\", \"algorithm\": \"HS256\", \"secret\": 12}}\n  ]}}}}\n}}\n"
        ),
    )
    .expect("written");
    let file = path.display().to_string();
    let err = Loader::new()
        .file(&path)
        .env_vars(None::<(String, String)>)
        .load()
        .expect_err("bad values");
    let mut found = problems(&err);
    found.sort();
    assert_eq!(
        found,
        [
            (
                "auth.jwt.keys[0].secret".to_owned(),
                format!("expected a string, found an integer ({file}:8)")
            ),
            (
                "rate_limit.requests".to_owned(),
                format!("expected a whole number, 0 or more, found a string ({file}:4)")
            ),
            (
                "rate_limit.requets".to_owned(),
                format!(
                    "is not a known key (expected one of: enabled, requests, window, burst, name, key, shadow, max_keys, backend, redis_url, redis_key_prefix, timeout, failure_policy, replicas, probe_interval) ({file}:5)"
                )
            ),
        ]
    );
    assert!(!err.to_string().contains(CANARY));

    std::fs::write(
        &path,
        "{\n  \"error_format\": \"simple\",\n  \"rate_limit\": {\"requests\": 7}\n}\n",
    )
    .expect("written");
    let loaded =
        Loader::new().file(&path).env_vars(None::<(String, String)>).load().expect("loads");
    assert_eq!(loaded.config().error_format, ErrorFormat::Simple);
    assert_eq!(loaded.config().rate_limit.quota.requests(), 7);
    assert_eq!(
        source(&loaded, "rate_limit.requests"),
        Source::File { path: file.clone(), line: Some(3) }
    );

    // A syntax error: its position, never the text.
    std::fs::write(&path, format!("{{\n  \"secret_key\": {CANARY}\n}}\n")).expect("written");
    let err = Loader::new().file(&path).load().expect_err("bad JSON").to_string();
    assert!(err.starts_with(&format!("{file}:2:17: invalid JSON: expected value")), "{err}");
    assert!(!err.contains(CANARY), "{err}");
    // Inline JSON, too.
    let err = Loader::new()
        .json_text("inline.json", "{\"max_input_size\": 0}")
        .env_vars(None::<(String, String)>)
        .load()
        .expect_err("zero");
    assert_eq!(
        problems(&err),
        [("max_input_size".to_owned(), "must be at least 1 byte (inline.json:1)".to_owned())]
    );
}

/// `RUST_LOG`, when set and not empty, replaces `telemetry.filter`, over
/// the file and `RAMPART_TELEMETRY__FILTER`; `config show` names it.
#[test]
fn rust_log_replaces_the_configured_log_filter() {
    let toml = "[telemetry]\nfilter = \"warn\"\n";
    let filter = |env: &[(&str, &str)]| {
        let loaded = load(toml, env);
        (loaded.config().telemetry.filter.clone(), source(&loaded, "telemetry.filter"))
    };
    let file = Source::File { path: "rampart.toml".into(), line: Some(2) };
    assert_eq!(filter(&[]), ("warn".to_owned(), file.clone()));
    let prefixed = ("RAMPART_TELEMETRY__FILTER", "error");
    assert_eq!(filter(&[prefixed]).0, "error");
    let rust_log = ("RUST_LOG", "debug,hyper=info");
    for env in [&[rust_log][..], &[prefixed, rust_log], &[rust_log, prefixed]] {
        assert_eq!(
            filter(env),
            ("debug,hyper=info".to_owned(), Source::Env { var: "RUST_LOG".into() }),
            "{env:?}"
        );
    }
    // Set but empty is not set.
    assert_eq!(filter(&[("RUST_LOG", "")]), ("warn".to_owned(), file));
    // Not a filter: said so, naming the variable.
    let err = fail(toml, &[("RUST_LOG", "info,app=loud")]);
    assert_eq!(problems(&err)[0].0, "telemetry.filter");
    assert!(problems(&err)[0].1.ends_with("(env RUST_LOG)"), "{err}");
}
