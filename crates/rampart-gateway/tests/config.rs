//! Black-box tests of `rampart config check` and `rampart config show`.

use std::path::PathBuf;
use std::process::{Command, Output};

const CANARY: &str = "canary-secret-Hq7Lx2Vb9";

struct TempFile(PathBuf);

impl TempFile {
    fn new(text: &str) -> TempFile {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!("rampart-gw-{}-{nanos}.toml", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, text).expect("written");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn rampart(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let Output { status, stdout, stderr } = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs");
    let text = |b: Vec<u8>| String::from_utf8(b).expect("utf-8 output");
    (status.code(), text(stdout), text(stderr))
}

const SECURE: &str = "secret_key = \"0123456789abcdef0123456789abcdef-production\"\n\
                      profile = \"production\"\n[tls]\nterminated_upstream = true\n";

#[test]
fn check_passes_a_sound_production_file_with_a_summary() {
    let file = TempFile::new(SECURE);
    let (code, out, err) = rampart(&["config", "check", file.path()], &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("valid for the production profile"), "{out}");
    assert!(out.contains("0 warnings"), "{out}");
    assert_eq!(err, "");
}

#[test]
fn check_fails_with_one_line_per_problem() {
    let file = TempFile::new(
        "secret_key = \"too-short\"\n[rate_limit]\nenabled = false\n\
         [cors]\nallowed_origins = [\"*\"]\nallow_credentials = true\n",
    );
    let (code, out, err) =
        rampart(&["config", "check", file.path(), "--profile", "production"], &[]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(out, "");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert!(lines[0].starts_with("secret_key: is shorter than 32 bytes"), "{err}");
    assert!(lines[0].ends_with(&format!("({}:1)", file.path())), "{err}");
    assert!(lines[1].starts_with("cors.allowed_origins: "), "{err}");
    assert!(lines[2].starts_with("rate_limit.enabled: "), "{err}");
    assert!(lines[3].starts_with("tls: "), "{err}");
    assert!(!err.contains("too-short"), "{err}");
}

#[test]
fn check_in_development_passes_and_prints_the_findings_as_warnings() {
    let file = TempFile::new("[rate_limit]\nenabled = false\n");
    let (code, out, err) = rampart(&["config", "check", file.path()], &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("valid for the development profile"), "{out}");
    assert!(out.contains("3 warnings"), "{out}");
    assert!(err.lines().all(|l| l.starts_with("warning: ")), "{err}");
    assert!(err.contains("warning: rate_limit.enabled: is false"), "{err}");
    // The profile from the environment makes the same file fail.
    let (code, ..) =
        rampart(&["config", "check", file.path()], &[("RAMPART_PROFILE", "production")]);
    assert_eq!(code, Some(1));
}

#[test]
fn check_never_echoes_a_mistyped_secret() {
    let file = TempFile::new(&format!("[rate_limit]\nwindow = \"{CANARY}\"\nrequets = 5\n"));
    let env =
        [("RAMPART_AUTH__JWT__LIFETIME", CANARY), ("RAMPART_CORS__ALLOW_CREDENTIALS", CANARY)];
    let (code, out, err) = rampart(&["config", "check", file.path()], &env);
    assert_eq!(code, Some(1));
    assert!(!out.contains(CANARY) && !err.contains(CANARY), "{out}{err}");
    // One problem per table at least (serde stops a table at its first).
    for key in ["rate_limit.requets", "auth.jwt.lifetime", "cors.allow_credentials"] {
        assert!(err.lines().any(|l| l.starts_with(&format!("{key}: "))), "{key}:\n{err}");
    }
    assert!(err.contains("(env RAMPART_AUTH__JWT__LIFETIME)"), "{err}");
}

#[test]
fn check_reads_the_files_the_configuration_names() {
    let missing = TempFile::new("[auth.jwt.jwks]\nfile = \"no/such/jwks.json\"\n");
    let (code, _, err) = rampart(&["config", "check", missing.path()], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        err.trim(),
        format!(
            "auth.jwt.jwks.file: cannot be read: No such file or directory ({}:2)",
            missing.path()
        )
    );
    let not_json = TempFile::new("{\"keys\": [");
    let broken = TempFile::new(&format!("[auth.jwt.jwks]\nfile = \"{}\"\n", not_json.path()));
    let (code, _, err) = rampart(&["config", "check", broken.path()], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.trim(), format!("auth.jwt.jwks.file: is not JSON ({}:2)", broken.path()));
    let empty = TempFile::new("{\"keys\": []}");
    let fine = TempFile::new(&format!("[auth.jwt.jwks]\nfile = \"{}\"\n", empty.path()));
    let (code, out, err) = rampart(&["config", "check", fine.path()], &[]);
    assert_eq!(code, Some(0), "{out}{err}");
}

/// Finding: `config check` needed several runs to see every problem: type
/// errors, then section validation, then production checks, then files.
/// One run reports them all, one line each.
#[test]
fn check_reports_every_problem_in_one_run() {
    let bad = "secret_key = 12345\n\
               [rate_limit]\nbackend = \"redis\"\nredis_url = \"tcp://not-redis\"\n\
               [[auth.jwt.keys]]\nkid = \"k1\"\nalgorithm = \"HS999\"\n\
               secret = \"an-hs256-secret-of-at-least-32-bytes!!\"\n\
               [auth.session]\nsecret = \"short\"\n";
    let file = TempFile::new(bad);
    let (code, out, err) = rampart(&["config", "check", file.path()], &[]);
    assert_eq!(code, Some(1), "{out}{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert!(lines[0].starts_with("secret_key: expected a string"), "{err}");
    // `rate_limit.redis_url`, or `rate_limit.backend` where Redis is not built in.
    assert!(lines[1].starts_with("rate_limit."), "{err}");
    assert!(lines[2].starts_with("auth.jwt.keys[0].algorithm: "), "{err}");
    assert!(lines[3].starts_with("auth.session.secret: "), "{err}");
    assert!(!err.contains("12345") && !err.contains("not-redis"), "{err}");

    // With the production checks and a missing JWKS file besides: six.
    let file = TempFile::new(&format!("{bad}[auth.jwt.jwks]\nfile = \"no/such/jwks.json\"\n"));
    let (code, out, err) =
        rampart(&["config", "check", file.path(), "--profile", "production"], &[]);
    assert_eq!(code, Some(1), "{out}{err}");
    let keys: Vec<&str> = err.lines().filter_map(|l| l.split(": ").next()).collect();
    assert_eq!(keys.len(), 6, "{err}");
    for key in ["secret_key", "auth.jwt.keys[0].algorithm", "auth.session.secret", "tls"] {
        assert!(keys.contains(&key), "{key}:\n{err}");
    }
    assert!(err.contains("auth.jwt.jwks.file: cannot be read"), "{err}");
}

#[test]
fn check_reports_a_missing_file() {
    let (code, _, err) = rampart(&["config", "check", "no/such/rampart.toml"], &[]);
    assert_eq!(code, Some(2), "could not run");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot read the configuration file no/such/rampart.toml"), "{err}");
}

#[test]
fn show_prints_every_value_with_its_source_and_masks_secrets() {
    let file = TempFile::new(&format!("secret_key = \"{CANARY}\"\n\n[rate_limit]\nrequests = 5\n"));
    let env = [("RAMPART_AUTH__JWT__LIFETIME", "1h"), ("MYAPP_RATE_LIMIT__WINDOW", "5s")];
    let (code, out, err) =
        rampart(&["config", "show", file.path(), "--env-prefix", "MYAPP_"], &env);
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.contains(CANARY) && !err.contains(CANARY), "{out}{err}");
    let line = |key: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key} in\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(line("secret_key"), format!("secret_key = \"******\" # {}:1", file.path()));
    assert_eq!(line("rate_limit.requests"), format!("rate_limit.requests = 5 # {}:4", file.path()));
    assert_eq!(
        line("rate_limit.window"),
        "rate_limit.window = \"5s\" # env MYAPP_RATE_LIMIT__WINDOW"
    );
    // RAMPART_ is not the prefix here, so the default stands.
    assert_eq!(line("auth.jwt.lifetime"), "auth.jwt.lifetime = \"24h\" # default");
    assert_eq!(line("max_input_size"), "max_input_size = \"1MiB\" # default");
}

#[test]
fn check_reads_a_json_file_and_names_the_applications_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rampart.json");
    std::fs::write(
        &path,
        "{\n  \"rate_limit\": {\"requests\": 5},\n  \"shop\": {\"currency\": \"EUR\"}\n}\n",
    )
    .expect("written");
    let file = path.to_str().expect("utf-8 path");
    let (code, out, err) = rampart(&["config", "check", file], &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("note: shop: not one of rampart's tables"), "{err}");
    let (code, out, _) = rampart(&["config", "show", file], &[]);
    assert_eq!(code, Some(0));
    assert!(
        out.lines().any(
            |l| l.starts_with("rate_limit.requests = 5") && l.ends_with(&format!("# {file}:2"))
        ),
        "{out}"
    );
    // The same errors as TOML's: key, why, file and line; never the value.
    std::fs::write(
        &path,
        format!("{{\n  \"rate_limit\": {{\n    \"requests\": \"{CANARY}\"\n  }}\n}}\n"),
    )
    .expect("written");
    let (code, _, err) = rampart(&["config", "check", file], &[]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err.trim_end(),
        format!(
            "rate_limit.requests: expected a whole number, 0 or more, found a string ({file}:3)"
        )
    );
}
