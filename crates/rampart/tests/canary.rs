//! The canary test: known secrets planted through every path we know of
//! (configuration file and variables, a mistyped secret, error chains and
//! context notes, span fields, event fields, format arguments, `Debug`
//! output of every shape: `Some(..)`, newtypes, nested structs, header
//! pairs, `url::Url`; percent-encoded credentials; a URL password holding
//! `@`) must not appear in anything printed or logged.

mod support;

use std::fmt;

use rampart::config::Loader;
use rampart::error::Error;
use rampart::handler::{ErrorHandler, RequestContext};
use rampart::telemetry::{self, LogFormat, Settings};
use support::CapturedLogs;
use tracing_subscriber::layer::SubscriberExt;

const SECRET_KEY: &str = "canary-secret-key-6Yq2Lm9Xv4Tb8Rw1";
const PASSWORD: &str = "canary-pw-Kd83hZ";
const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.Y2FuYXJ5LXNpZ25hdHVyZQ";
const API_KEY: &str = "rk_canary01_Q8w7E6r5T4y3U2i1_x9";
const BEARER: &str = "canary-opaque-0123456789";
const PEM_BODY: &str = "MIIEcanaryPEMbody0123456789";
const DB_PASSWORD: &str = "canary-db-pw-77";
const MISTYPED: &str = "canary-mistyped-secret-41";

const OPTION_PASSWORD: &str = "canary-opt-pw-58Jd";
const NEWTYPE_TOKEN: &str = "canary-newtype-tok-Q2";
const NESTED_SECRET: &str = "canary-nested-secret-Vb3";
const HEADER_KEY: &str = "canary-hdr-key-8Hq";
const URL_PASSWORD: &str = "canary-url-pw-3Kx";
const SPAN_URL_PASSWORD: &str = "canary-span-url-pw-6Wn";
const CHAIN_PASSWORD: &str = "canary-chain-pw-7Yt";
const PCT_JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJwY3QiOiJjYW5hcnkifQ.cGN0LWNhbmFyeS1zaWc";
const PCT_PASSWORD: &str = "canary-pct-pw-4Lm";
const PCT_JSON_PASSWORD: &str = "canary-pct-json-9Qz";
const PCT_BEARER: &str = "canary-pct-bearer-0123456789";
const AT_PASSWORD_TAIL: &str = "w0rd-canary-tail";

const CANARIES: &[&str] = &[
    SECRET_KEY,
    PASSWORD,
    JWT,
    API_KEY,
    BEARER,
    PEM_BODY,
    DB_PASSWORD,
    MISTYPED,
    OPTION_PASSWORD,
    NEWTYPE_TOKEN,
    NESTED_SECRET,
    HEADER_KEY,
    URL_PASSWORD,
    SPAN_URL_PASSWORD,
    CHAIN_PASSWORD,
    PCT_JWT,
    PCT_PASSWORD,
    PCT_JSON_PASSWORD,
    PCT_BEARER,
    AT_PASSWORD_TAIL,
];

/// Debug shapes a credential hides in.
#[derive(Debug)]
#[expect(dead_code, reason = "read only through its Debug output")]
struct Account {
    user: &'static str,
    password: Option<String>,
    token: ApiToken,
    secret: Nested,
}

#[derive(Debug)]
#[expect(dead_code, reason = "read only through its Debug output")]
struct ApiToken(String);

#[derive(Debug)]
#[expect(dead_code, reason = "read only through its Debug output")]
struct Nested {
    key_id: u32,
    value: (String, Vec<u8>),
}

#[derive(Debug)]
struct Login {
    user: &'static str,
    password: String,
}

#[derive(Debug)]
struct Failure(String, Option<Box<Failure>>);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.1.as_deref().map(|e| e as _)
    }
}

/// Everything the scenario prints outside the logs.
fn scenario(printed: &mut Vec<String>) {
    // A configuration holding secrets, from a file and from variables.
    let toml = format!("secret_key = \"{SECRET_KEY}\"\n");
    let env =
        [("RAMPART_TELEMETRY__REDACT_FIELDS", "[\"ssn\"]"), ("RAMPART_SECRET_KEY", SECRET_KEY)];
    let loaded = Loader::new().toml_text("app.toml", toml).env_vars(env).load().expect("loads");
    let config = loaded.config();
    tracing::info!(?config, "loaded");
    tracing::info!("config: {config:?} {config:#?}");
    printed.push(format!("{config:?} {:?}", loaded.settings()));
    for s in loaded.settings() {
        tracing::debug!(key = %s.key, value = %s.value, source = %s.source, "setting");
    }

    // A secret typed into the wrong place: file and variable.
    for (toml, env) in [
        (format!("[rate_limit]\nrequests = \"{MISTYPED}\"\n"), vec![]),
        (String::new(), vec![("RAMPART_JWT__LIFETIME", MISTYPED)]),
        (format!("secret_kye = \"{MISTYPED}\"\n"), vec![]),
        (format!("secret_key = {MISTYPED}\n"), vec![]),
    ] {
        let err = Loader::new().toml_text("app.toml", toml).env_vars(env).load().expect_err("bad");
        tracing::error!(error = %err, "configuration refused");
        printed.push(format!("{err} {err:?}"));
        let err = Error::from(err);
        let problem = ErrorHandler::default().report(&err, &RequestContext::new());
        printed.push(problem.to_json());
    }

    // Error chains and context notes, reported through the handler.
    let deep = Failure(
        "query failed".into(),
        Some(Box::new(Failure(
            format!("connect to postgres://app:{DB_PASSWORD}@db:5432/orders refused"),
            Some(Box::new(Failure(format!("upstream said: Authorization: Bearer {BEARER}"), None))),
        ))),
    );
    let err =
        Error::internal(deep).context("loading orders").context(format!("retry with token={JWT}"));
    let span = tracing::info_span!("request", request_id = "r-1", api_key = API_KEY);
    let _entered = span.enter();
    let problem = ErrorHandler::default().report(&err, &RequestContext::new().request_id("r-1"));
    printed.push(problem.to_json());

    // Span fields, event fields, format arguments, Debug output.
    let inner = tracing::info_span!("auth", auth = %format!("Bearer {BEARER}"), user = "bob");
    let _inner = inner.enter();
    let login = Login { user: "bob", password: PASSWORD.into() };
    tracing::info!(password = PASSWORD, token = JWT, ssn = "123", "login attempt");
    tracing::info!(attempt = ?login, "attempt");
    tracing::warn!(
        "login for {} with password={} failed; key {API_KEY}",
        login.user,
        login.password
    );
    tracing::warn!(header = %format!("Bearer {BEARER}"), jwt_in_text = %format!("got {JWT} ok"));
    tracing::error!(
        key = %format!("-----BEGIN EC PRIVATE KEY-----\n{PEM_BODY}\n-----END EC PRIVATE KEY-----"),
        "key material"
    );
    tracing::error!(dsn = %format!("postgres://app:{DB_PASSWORD}@db/orders"), "pool failed");

    // Debug shapes, as a field and in the message, flat and pretty.
    let account = Account {
        user: "bob",
        password: Some(OPTION_PASSWORD.into()),
        token: ApiToken(NEWTYPE_TOKEN.into()),
        secret: Nested { key_id: 7, value: (NESTED_SECRET.into(), vec![1, 2]) },
    };
    tracing::info!(?account, "account loaded");
    tracing::info!("account: {account:?} / {account:#?}");
    let headers = vec![("accept", "*/*".to_owned()), ("x-api-key", HEADER_KEY.to_owned())];
    tracing::debug!(?headers, "upstream request");
    tracing::debug!("headers {headers:#?}");
    // A url::Url, as an event field and as a span field.
    let db = url::Url::parse(&format!("postgres://app:{URL_PASSWORD}@db/orders")).expect("url");
    tracing::info!(db = ?db, "connecting");
    let replica = url::Url::parse(&format!("postgres://app:{SPAN_URL_PASSWORD}@replica/orders"))
        .expect("url");
    let pool = tracing::info_span!("pool", db = ?replica);
    pool.in_scope(|| tracing::info!("pool ready"));
    // Percent-encoded credentials, and a URL password holding an `@`.
    tracing::info!(uri = %format!("/cb?next=%2Fa%3Ftoken%3D{PCT_JWT}&x=1"), "callback");
    tracing::info!(
        "form q=password%3D{PCT_PASSWORD}%26a%3D1 body=%7B%22password%22%3A%22{PCT_JSON_PASSWORD}%22%7D"
    );
    tracing::warn!(forwarded = %format!("h=Authorization%3A%20Bearer%20{PCT_BEARER}"));
    tracing::error!(cache = %format!("redis://:p4ss@{AT_PASSWORD_TAIL}@cache:6379/0"), "cache down");

    // An error whose source chain prints a Debug shape, through the handler.
    let config = Account {
        user: "svc",
        password: Some(CHAIN_PASSWORD.into()),
        token: ApiToken(NEWTYPE_TOKEN.into()),
        secret: Nested { key_id: 1, value: (NESTED_SECRET.into(), Vec::new()) },
    };
    let err = Error::internal(Failure(
        "connect failed".into(),
        Some(Box::new(Failure(format!("with {config:?}"), None))),
    ));
    let problem = ErrorHandler::default().report(&err, &RequestContext::new());
    printed.push(problem.to_json());
}

fn run(format: &str) -> (String, Vec<String>) {
    let toml = format!(
        "[telemetry]\nformat = \"{format}\"\nfilter = \"trace\"\nredact_fields = [\"ssn\"]\n"
    );
    let settings: Settings = Loader::new()
        .toml_text("t.toml", toml)
        .env_vars(None::<(String, String)>)
        .load()
        .expect("loads")
        .into_config()
        .telemetry;
    let logs = CapturedLogs::default();
    let subscriber = tracing_subscriber::registry().with(telemetry::layer(&settings, logs.clone()));
    let mut printed = Vec::new();
    support::with_subscriber(subscriber, || scenario(&mut printed));
    (logs.text(), printed)
}

#[test]
fn no_canary_escapes_in_json_or_text() {
    for format in ["json", "text"] {
        let (logs, printed) = run(format);
        // The scenario really logged: the handler's chain and the redactions are there.
        assert!(logs.lines().count() >= 30, "{logs}");
        assert!(logs.contains("[REDACTED]"), "{logs}");
        // The shapes were logged, their secrets replaced.
        for shown in ["x-api-key", "account loaded", "pool ready", "cache down", "connect failed"] {
            assert!(logs.contains(shown), "{format}: {shown} not logged:\n{logs}");
        }
        assert!(
            logs.contains("query failed: connect to postgres://app:[REDACTED]@db:5432"),
            "{logs}"
        );
        assert!(printed.iter().any(|p| p.contains("******")));
        for canary in CANARIES {
            assert!(!logs.contains(canary), "{format} log leaked {canary}:\n{logs}");
            for text in &printed {
                assert!(!text.contains(canary), "printed {canary}:\n{text}");
            }
        }
    }
    let (json, _) = run("json");
    assert!(json.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    assert_eq!(LogFormat::default(), LogFormat::Json);
}
