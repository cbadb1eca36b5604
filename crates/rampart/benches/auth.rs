//! The cost of authenticating a request.
//!
//! `cargo bench -p rampart --bench auth -- --warm-up-time 1 --measurement-time 3`
//!
//! Side by side in one run: rampart's JWT verification (cache off and on)
//! and jsonwebtoken's bare `decode` of the same token (the anchor: the
//! signature plus its own claim checks, no key lookup, no principal), and
//! an API key check.

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rampart::auth::{ApiKeyStore, JwtVerifier, NewApiKey};
use rampart::config::Section;
use serde_json::{Value, json};

const HS_SECRET: &str = "an-hs256-secret-that-is-long-enough-0123456789";
const RSA_PRIVATE: &str = include_str!("../tests/fixtures/auth/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("../tests/fixtures/auth/rsa_public.pem");

fn verifier(cache_capacity: usize) -> JwtVerifier {
    let config = rampart::auth::AuthConfig::from_value(json!({
        "jwt": {
            "keys": [
                {"kid": "hs", "algorithm": "HS256", "secret": HS_SECRET},
                {"kid": "rsa", "algorithm": "RS256", "public_key": RSA_PUBLIC},
            ],
            "issuers": ["https://issuer.example"],
            "audiences": ["orders-api"],
            "cache_capacity": cache_capacity,
        },
        "roles": {"clerk": ["orders:*"]},
    }))
    .expect("valid");
    JwtVerifier::new(&config).expect("verifier")
}

/// A typical access token: subject, issuer, audience, times, a role and two permissions.
fn claims() -> Value {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("after epoch").as_secs();
    json!({
        "sub": "user-1234", "iss": "https://issuer.example", "aud": "orders-api",
        "iat": now, "nbf": now, "exp": now + 3600, "jti": "6f1c1c7e9b0a4d2e",
        "roles": ["clerk"], "permissions": ["reports:read", "invoices:read"],
    })
}

fn token(alg: Algorithm, kid: &str, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims(), key).expect("signs")
}

fn anchor_validation(alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.set_issuer(&["https://issuer.example"]);
    validation.set_audience(&["orders-api"]);
    validation.validate_nbf = true;
    validation.leeway = 30;
    validation
}

fn jwt(c: &mut Criterion) {
    let uncached = verifier(0);
    let cached = verifier(10_000);
    let hs = token(Algorithm::HS256, "hs", &EncodingKey::from_secret(HS_SECRET.as_bytes()));
    let rsa_key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("pem");
    let rs = token(Algorithm::RS256, "rsa", &rsa_key);
    assert!(uncached.verify(&hs).is_ok() && cached.verify(&hs).is_ok());
    assert!(uncached.verify(&rs).is_ok() && cached.verify(&rs).is_ok());

    let hs_key = DecodingKey::from_secret(HS_SECRET.as_bytes());
    let rs_key = DecodingKey::from_rsa_pem(RSA_PUBLIC.as_bytes()).expect("pem");
    let hs_validation = anchor_validation(Algorithm::HS256);
    let rs_validation = anchor_validation(Algorithm::RS256);
    assert!(jsonwebtoken::decode::<Value>(&hs, &hs_key, &hs_validation).is_ok());
    assert!(jsonwebtoken::decode::<Value>(&rs, &rs_key, &rs_validation).is_ok());

    let mut group = c.benchmark_group("jwt");
    group.bench_function("HS256 jsonwebtoken decode (anchor)", |b| {
        b.iter(|| jsonwebtoken::decode::<Value>(black_box(&hs), &hs_key, &hs_validation));
    });
    group.bench_function("HS256 rampart verify, uncached", |b| {
        b.iter(|| uncached.verify(black_box(&hs)));
    });
    group.bench_function("HS256 rampart verify, cached", |b| {
        b.iter(|| cached.verify(black_box(&hs)));
    });
    group.bench_function("RS256 jsonwebtoken decode (anchor)", |b| {
        b.iter(|| jsonwebtoken::decode::<Value>(black_box(&rs), &rs_key, &rs_validation));
    });
    group.bench_function("RS256 rampart verify, uncached", |b| {
        b.iter(|| uncached.verify(black_box(&rs)));
    });
    group.bench_function("RS256 rampart verify, cached", |b| {
        b.iter(|| cached.verify(black_box(&rs)));
    });
    group.finish();
}

fn api_key(c: &mut Criterion) {
    let key = NewApiKey::generate().expect("key");
    let others: Vec<NewApiKey> = (0..999).map(|_| NewApiKey::generate().expect("key")).collect();
    let entries: Vec<Value> = std::iter::once(&key)
        .chain(&others)
        .map(|k| json!({"id": k.id(), "name": "svc", "hash": k.hash().to_string(), "permissions": ["orders:read"]}))
        .collect();
    let config =
        rampart::auth::AuthConfig::from_value(json!({"api_keys": entries})).expect("valid");
    let store = ApiKeyStore::new(&config);
    assert!(store.verify(key.expose()).is_ok());
    let mut group = c.benchmark_group("api_key");
    group.bench_function("verify (1000 keys configured)", |b| {
        b.iter(|| store.verify(black_box(key.expose())));
    });
    group.finish();
}

criterion_group!(benches, jwt, api_key);
criterion_main!(benches);
