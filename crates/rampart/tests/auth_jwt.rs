//! JWT verification: every attack the issue lists, performed.
#![cfg(feature = "auth")]
// The helpers take JSON by value so each case reads as one literal.
#![allow(clippy::needless_pass_by_value)]

mod support;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rampart::auth::{AuthConfig, JwtVerifier, TokenIssuer, require};
use rampart::clock::{Clock, FakeClock};
use rampart::config::Section;
use rampart::error::{Error, ErrorKind};
use serde_json::{Value, json};

const HS_SECRET: &str = "an-hs256-secret-that-is-long-enough-0123456789";
const RSA_PRIVATE: &str = include_str!("fixtures/auth/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("fixtures/auth/rsa_public.pem");
const RSA2_PRIVATE: &str = include_str!("fixtures/auth/rsa2_private.pem");
const EC_PRIVATE: &str = include_str!("fixtures/auth/ec_private.pem");
const EC_PUBLIC: &str = include_str!("fixtures/auth/ec_public.pem");
const ED_PRIVATE: &str = include_str!("fixtures/auth/ed_private.pem");
const ED_PUBLIC: &str = include_str!("fixtures/auth/ed_public.pem");

fn config(jwt: Value) -> AuthConfig {
    AuthConfig::from_value(json!({
        "jwt": jwt,
        "roles": { "clerk": ["orders:*"] },
    }))
    .expect("valid config")
}

fn all_keys() -> Value {
    json!({
        "keys": [
            { "kid": "hs", "algorithm": "HS256", "secret": HS_SECRET },
            { "kid": "rsa", "algorithm": "RS256", "public_key": RSA_PUBLIC },
            { "kid": "ec", "algorithm": "ES256", "public_key": EC_PUBLIC },
            { "kid": "ed", "algorithm": "EdDSA", "public_key": ED_PUBLIC },
        ],
        "issuers": ["https://issuer.example"],
        "audiences": ["orders-api"],
    })
}

fn verifier(jwt: Value, clock: &FakeClock) -> JwtVerifier {
    JwtVerifier::new(&config(jwt)).map(|v| v.clock(clock.clone())).expect("verifier")
}

fn now(clock: &FakeClock) -> u64 {
    clock.system_time().duration_since(UNIX_EPOCH).expect("after epoch").as_secs()
}

/// Valid claims for the `all_keys` configuration, with `extra` merged in
/// (a `null` removes a claim).
fn claims(clock: &FakeClock, extra: Value) -> Value {
    let t = now(clock);
    let mut claims = json!({
        "sub": "alice", "iss": "https://issuer.example", "aud": "orders-api",
        "iat": t, "exp": t + 600, "roles": ["clerk"], "permissions": ["reports:read"],
    });
    for (k, v) in extra.as_object().expect("object") {
        if v.is_null() {
            claims.as_object_mut().expect("object").remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("signs")
}

fn hs(claims: &Value) -> String {
    sign(Algorithm::HS256, Some("hs"), &EncodingKey::from_secret(HS_SECRET.as_bytes()), claims)
}

/// The one public answer to a token refused before its signature was verified.
const NOT_VERIFIED: &str = "The token could not be verified";

/// An HS256 token over the header and payload texts exactly as given
/// (serializers never write a key twice; an attacker does).
fn hs_raw(header: &str, payload: &str) -> String {
    let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    let sig = URL_SAFE_NO_PAD.encode(hmac_sha256(HS_SECRET.as_bytes(), message.as_bytes()));
    format!("{message}.{sig}")
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HS256 by hand, through jsonwebtoken's own signer, to forge tokens.
    let sig = jsonwebtoken::crypto::sign(message, &EncodingKey::from_secret(key), Algorithm::HS256)
        .expect("signs");
    URL_SAFE_NO_PAD.decode(sig).expect("base64")
}

#[track_caller]
fn assert_refused(result: Result<rampart::auth::Principal, Error>, code: &str) -> Error {
    let err = result.expect_err("must be refused");
    assert_eq!(err.kind(), ErrorKind::Authentication, "{err:?}");
    assert_eq!(err.code().as_str(), code, "{err:?}");
    assert_eq!(err.status().as_u16(), 401);
    let challenge = err.challenge().expect("a 401 carries a challenge");
    assert!(
        challenge.starts_with("Bearer realm=\"rampart\", error=\"invalid_token\""),
        "{challenge}"
    );
    err
}

#[test]
fn tokens_of_every_key_type_verify_and_carry_permissions() {
    let clock = FakeClock::new();
    let v = verifier(all_keys(), &clock);
    let c = claims(&clock, json!({}));
    let tokens = [
        hs(&c),
        sign(
            Algorithm::RS256,
            Some("rsa"),
            &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("pem"),
            &c,
        ),
        sign(
            Algorithm::ES256,
            Some("ec"),
            &EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).expect("pem"),
            &c,
        ),
        sign(
            Algorithm::EdDSA,
            Some("ed"),
            &EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).expect("pem"),
            &c,
        ),
    ];
    for token in tokens {
        let p = v.verify(&token).expect("valid token");
        assert_eq!(p.subject(), "alice");
        assert_eq!(p.roles(), ["clerk"]);
        assert!(p.has("orders:write"), "through the clerk role");
        assert!(p.has("reports:read"), "granted directly");
        assert!(p.authorize(&require("billing:read")).is_err());
        assert_eq!(p.claims()["iss"], "https://issuer.example");
    }
}

#[test]
fn alg_none_is_refused() {
    let clock = FakeClock::new();
    let v = verifier(all_keys(), &clock);
    let payload = b64(&claims(&clock, json!({})));
    for header in [
        json!({"alg": "none", "kid": "hs"}),
        json!({"alg": "none"}),
        json!({"alg": "None", "kid": "hs"}),
    ] {
        let h = b64(&header);
        assert_refused(v.verify(&format!("{h}.{payload}.")), "TOKEN_INVALID");
        assert_refused(v.verify(&format!("{h}.{payload}.c2ln")), "TOKEN_INVALID");
    }
    assert_eq!(v.signature_checks(), 0);
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_refused() {
    // The classic algorithm confusion: the verifier holds an RSA public key;
    // the attacker signs HS256 using that public key's PEM text as the secret.
    let clock = FakeClock::new();
    let only_rsa = json!({"keys": [{"kid": "rsa", "algorithm": "RS256", "public_key": RSA_PUBLIC}],
                          "issuers": ["https://issuer.example"], "audiences": ["orders-api"]});
    let c = claims(&clock, json!({"roles": ["admin"], "permissions": ["*"]}));
    for v in [verifier(all_keys(), &clock), verifier(only_rsa, &clock)] {
        for kid in [Some("rsa"), None] {
            let forged =
                sign(Algorithm::HS256, kid, &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()), &c);
            let err = v.verify(&forged).expect_err("forged");
            assert_eq!(err.code().as_str(), "TOKEN_INVALID");
        }
        // Refused on the header alone: no HMAC was computed with the public key.
        assert_eq!(v.signature_checks(), 0);
    }
    // And the configuration refuses a PEM used as an HS secret.
    let err = AuthConfig::from_value(json!({"jwt": {"keys": [
        {"kid": "x", "algorithm": "HS256", "secret": RSA_PUBLIC}]}}))
    .unwrap_err();
    assert_eq!(err.config_key(), Some("auth.jwt.keys[0].secret"));
}

#[test]
fn a_key_answers_only_to_its_own_algorithm() {
    let clock = FakeClock::new();
    let v = verifier(all_keys(), &clock);
    let c = claims(&clock, json!({}));
    let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("pem");
    // A genuine RSA signature, but PS256 / RS512 instead of the pinned RS256.
    for alg in [Algorithm::PS256, Algorithm::RS512] {
        assert_refused(v.verify(&sign(alg, Some("rsa"), &rsa, &c)), "TOKEN_INVALID");
    }
    // The HS key named, but HS512 instead of HS256.
    let hs512 =
        sign(Algorithm::HS512, Some("hs"), &EncodingKey::from_secret(HS_SECRET.as_bytes()), &c);
    assert_refused(v.verify(&hs512), "TOKEN_INVALID");
    assert_eq!(v.signature_checks(), 0);
}

#[test]
fn unknown_or_missing_kid_is_refused() {
    let clock = FakeClock::new();
    let v = verifier(all_keys(), &clock);
    let c = claims(&clock, json!({}));
    let key = EncodingKey::from_secret(HS_SECRET.as_bytes());
    assert_refused(v.verify(&sign(Algorithm::HS256, Some("nope"), &key, &c)), "TOKEN_INVALID");
    // Several keys: a token must say which.
    assert_refused(v.verify(&sign(Algorithm::HS256, None, &key, &c)), "TOKEN_INVALID");
    // One key: a token without kid uses it.
    let single = verifier(
        json!({"keys": [{"kid": "hs", "algorithm": "HS256", "secret": HS_SECRET}]}),
        &clock,
    );
    let c = claims(&clock, json!({"iss": null, "aud": null}));
    assert!(single.verify(&sign(Algorithm::HS256, None, &key, &c)).is_ok());
}

#[test]
fn time_claims_are_enforced_with_the_leeway() {
    let clock = FakeClock::new();
    let v = verifier(all_keys(), &clock);
    let t = now(&clock);
    let err =
        assert_refused(v.verify(&hs(&claims(&clock, json!({"exp": t - 31})))), "TOKEN_EXPIRED");
    assert!(err.challenge().expect("challenge").contains("expired"));
    assert!(
        v.verify(&hs(&claims(&clock, json!({"exp": t - 29})))).is_ok(),
        "within the 30 s leeway"
    );
    assert_refused(v.verify(&hs(&claims(&clock, json!({"nbf": t + 31})))), "TOKEN_NOT_YET_VALID");
    assert!(v.verify(&hs(&claims(&clock, json!({"nbf": t + 29})))).is_ok(), "within the leeway");
    // exp is required, and must be a number (not a string that looks like one).
    assert_refused(v.verify(&hs(&claims(&clock, json!({"exp": null})))), "TOKEN_INVALID");
    assert_refused(
        v.verify(&hs(&claims(&clock, json!({"exp": (t + 600).to_string()})))),
        "TOKEN_INVALID",
    );
    assert_refused(v.verify(&hs(&claims(&clock, json!({"nbf": "0"})))), "TOKEN_INVALID");
    // A configured leeway of zero is exact.
    let mut strict = all_keys();
    strict["leeway"] = json!("0s");
    let v = verifier(strict, &clock);
    assert_refused(v.verify(&hs(&claims(&clock, json!({"exp": t})))), "TOKEN_EXPIRED");
    assert!(v.verify(&hs(&claims(&clock, json!({"exp": t + 1})))).is_ok());
}

#[test]
fn issuer_audience_and_subject_are_checked() {
    let clock = FakeClock::new();
    let v = verifier(all_keys(), &clock);
    for bad in [
        json!({"iss": "https://evil.example"}),
        json!({"iss": null}),
        json!({"aud": "other-api"}),
        json!({"aud": ["other-api", "more"]}),
        json!({"aud": null}),
        json!({"aud": 7}),
        json!({"sub": null}),
        json!({"sub": ""}),
    ] {
        assert_refused(v.verify(&hs(&claims(&clock, bad.clone()))), "TOKEN_INVALID");
    }
    assert!(v.verify(&hs(&claims(&clock, json!({"aud": ["other-api", "orders-api"]})))).is_ok());
    // Without configured audiences, a token addressed to someone is not for us.
    let open = verifier(
        json!({"keys": [{"kid": "hs", "algorithm": "HS256", "secret": HS_SECRET}]}),
        &clock,
    );
    assert_refused(open.verify(&hs(&claims(&clock, json!({"iss": null})))), "TOKEN_INVALID");
    assert!(open.verify(&hs(&claims(&clock, json!({"iss": null, "aud": null})))).is_ok());
}

#[test]
fn tampered_truncated_and_garbage_tokens_are_refused() {
    let clock = FakeClock::new();
    let v = verifier(all_keys(), &clock);
    let token = hs(&claims(&clock, json!({})));
    let parts: Vec<&str> = token.split('.').collect();
    // Tampered payload: more permissions, same signature.
    let forged = b64(&claims(&clock, json!({"permissions": ["*"]})));
    assert_refused(v.verify(&format!("{}.{forged}.{}", parts[0], parts[2])), "TOKEN_INVALID");
    // Tampered header: another kid.
    let header = b64(&json!({"alg": "HS256", "kid": "hs", "typ": "JWT", "x": 1}));
    assert_refused(v.verify(&format!("{header}.{}.{}", parts[1], parts[2])), "TOKEN_INVALID");
    // A payload re-signed by hand with a wrong key.
    let message = format!("{}.{}", parts[0], forged);
    let sig = URL_SAFE_NO_PAD
        .encode(hmac_sha256(b"not-the-secret-not-the-secret-xx", message.as_bytes()));
    assert_refused(v.verify(&format!("{message}.{sig}")), "TOKEN_INVALID");
    // Truncations at every length, and garbage.
    for end in (0..token.len()).step_by(7) {
        assert!(v.verify(&token[..end]).is_err(), "prefix of {end} bytes");
    }
    for garbage in
        ["", "Bearer", "a.b.c", "...", "e30.e30.", "e30.e30.e30", "x.y.z.w", "\0.\0.\0", "ü.ü.ü"]
    {
        assert_refused(v.verify(garbage), "TOKEN_INVALID");
    }
    // The genuine token with characters outside base64url: padded, or in
    // standard base64's alphabet, in each part.
    assert_refused(v.verify(&format!("{token}=")), "TOKEN_INVALID");
    for part in 0..3 {
        let mut altered: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
        altered[part].insert(1, '+');
        assert_refused(v.verify(&altered.join(".")), "TOKEN_INVALID");
    }
    // A payload that is JSON but not an object, correctly signed.
    let h = b64(&json!({"alg": "HS256", "kid": "hs"}));
    let p = URL_SAFE_NO_PAD.encode("[1,2]");
    let sig =
        URL_SAFE_NO_PAD.encode(hmac_sha256(HS_SECRET.as_bytes(), format!("{h}.{p}").as_bytes()));
    assert_refused(v.verify(&format!("{h}.{p}.{sig}")), "TOKEN_INVALID");
    // Critical header extensions are not understood, so refused.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("hs".into());
    header.crit = Some(vec!["exp".into()]);
    let crit = jsonwebtoken::encode(
        &header,
        &claims(&clock, json!({})),
        &EncodingKey::from_secret(HS_SECRET.as_bytes()),
    )
    .expect("signs");
    assert_refused(v.verify(&crit), "TOKEN_INVALID");
}

#[test]
fn oversized_tokens_are_refused_before_any_decoding() {
    let clock = FakeClock::new();
    let v = verifier(all_keys(), &clock);
    let huge_claims = claims(&clock, json!({"pad": "x".repeat(1 << 20)}));
    let token = hs(&huge_claims);
    assert!(token.len() > 1 << 20);
    for _ in 0..100 {
        let err = assert_refused(v.verify(&token), "TOKEN_INVALID");
        assert_eq!(err.message(), NOT_VERIFIED);
    }
    // Refused on its length alone: no signature was ever computed.
    assert_eq!(v.signature_checks(), 0);
    // The bound is configurable, and a token just under it is verified.
    let mut roomy = all_keys();
    roomy["max_token_bytes"] = json!(65_536);
    let v = verifier(roomy, &clock);
    let big = hs(&claims(&clock, json!({"pad": "x".repeat(40_000)})));
    assert!(v.verify(&big).is_ok());
}

#[test]
fn the_cache_skips_the_signature_but_never_outlives_exp() {
    let clock = FakeClock::new();
    let v = verifier(all_keys(), &clock);
    let t = now(&clock);
    let token = hs(&claims(&clock, json!({"exp": t + 60})));
    assert!(v.verify(&token).is_ok());
    assert!(v.verify(&token).is_ok());
    assert_eq!(v.signature_checks(), 1, "the second check is a cache hit");
    clock.advance(Duration::from_secs(60 + 30));
    assert_refused(v.verify(&token), "TOKEN_EXPIRED");
    assert_eq!(v.signature_checks(), 1, "refused from the cache entry's own exp");
    // A token differing in one signature byte never hits the entry.
    let fresh = hs(&claims(&clock, json!({})));
    assert!(v.verify(&fresh).is_ok());
    let mut bytes = fresh.into_bytes();
    let last = bytes.len() - 2;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(bytes).expect("ascii");
    assert_refused(v.verify(&altered), "TOKEN_INVALID");
    // With the cache off every check verifies.
    let mut off = all_keys();
    off["cache_capacity"] = json!(0);
    let v = verifier(off, &clock);
    let token = hs(&claims(&clock, json!({})));
    for _ in 0..3 {
        assert!(v.verify(&token).is_ok());
    }
    assert_eq!(v.signature_checks(), 3);
}

#[test]
fn issued_tokens_verify_and_carry_what_was_asked() {
    let clock = FakeClock::new();
    let mut jwt = all_keys();
    jwt["lifetime"] = json!("1h");
    let config = config(jwt);
    let issuer = TokenIssuer::new(config.jwt(), Some("hs")).expect("issuer").clock(clock.clone());
    let v = JwtVerifier::new(&config).expect("verifier").clock(clock.clone());
    let token =
        issuer.issue("svc-7", &["orders:read".into()], &["clerk".into()], None).expect("token");
    let p = v.verify(&token).expect("valid");
    assert_eq!(p.subject(), "svc-7");
    assert!(p.has("orders:read") && p.has("orders:write"));
    assert_eq!(p.claims()["exp"].as_u64(), Some(now(&clock) + 3600));
    assert_eq!(p.claims()["aud"], "orders-api");
    assert!(p.credential_id().is_some_and(|jti| jti.len() == 32));
    let short = issuer.issue("svc-7", &[], &[], Some(Duration::from_secs(5))).expect("token");
    clock.advance(Duration::from_secs(36));
    assert_refused(v.verify(&short), "TOKEN_EXPIRED");
    assert!(v.verify(&token).is_ok());
    assert!(issuer.issue("", &[], &[], None).is_err());
    assert!(issuer.issue("alice\nadmin", &[], &[], None).is_err());
    assert!(issuer.issue(&"a".repeat(257), &[], &[], None).is_err());
    assert!(issuer.issue("x", &[], &[], Some(Duration::ZERO)).is_err());
    // Only HS keys sign; naming an RSA key is a configuration error.
    let err = TokenIssuer::new(config.jwt(), Some("rsa")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
}

fn jwk(private_pem: &str, kid: &str, alg: Option<&str>) -> Value {
    let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).expect("pem");
    let mut jwk =
        serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::RS256).expect("jwk"))
            .expect("json");
    jwk["kid"] = json!(kid);
    match alg {
        Some(alg) => jwk["alg"] = json!(alg),
        None => {
            jwk.as_object_mut().expect("object").remove("alg");
        }
    }
    jwk
}

fn write_jwks(path: &std::path::Path, keys: &[Value]) {
    // Write then rename, as a deployment would, so a reader never sees half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, json!({"keys": keys}).to_string()).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

fn rs256(private_pem: &str, kid: &str, claims: &Value) -> String {
    sign(
        Algorithm::RS256,
        Some(kid),
        &EncodingKey::from_rsa_pem(private_pem.as_bytes()).expect("pem"),
        claims,
    )
}

#[test]
fn jwks_unknown_kid_reloads_at_most_once_per_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("jwks.json");
    write_jwks(&file, &[jwk(RSA_PRIVATE, "k1", Some("RS256"))]);
    let clock = FakeClock::new();
    let v = verifier(
        json!({"jwks": {"file": file, "check_interval": "1h", "min_reload_interval": "30s"}}),
        &clock,
    );
    assert_eq!(v.jwks_loads(), 1);
    let c = claims(&clock, json!({"iss": null, "aud": null}));
    assert!(v.verify(&rs256(RSA_PRIVATE, "k1", &c)).is_ok());

    // A storm of tokens naming unknown keys: one reload, however many.
    for i in 0..500 {
        let forged = rs256(RSA2_PRIVATE, &format!("ghost-{i}"), &c);
        assert_refused(v.verify(&forged), "TOKEN_INVALID");
    }
    assert_eq!(v.jwks_loads(), 2, "one reload for the whole storm");

    // The identity provider rotates in k2: within the interval it is not seen...
    write_jwks(
        &file,
        &[jwk(RSA_PRIVATE, "k1", Some("RS256")), jwk(RSA2_PRIVATE, "k2", Some("RS256"))],
    );
    let k2 = rs256(RSA2_PRIVATE, "k2", &c);
    assert_refused(v.verify(&k2), "TOKEN_INVALID");
    // ...and once the interval passed, the unknown kid loads it.
    clock.advance(Duration::from_secs(30));
    assert!(v.verify(&k2).is_ok());
    assert_eq!(v.jwks_loads(), 3);
}

#[test]
fn jwks_changes_are_picked_up_and_removed_keys_stop_working_even_when_cached() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("jwks.json");
    write_jwks(&file, &[jwk(RSA_PRIVATE, "k1", Some("RS256")), jwk(RSA2_PRIVATE, "k2", None)]);
    let clock = FakeClock::new();
    let v = verifier(
        json!({"jwks": {"file": file, "check_interval": "10s", "default_rsa_algorithm": "RS256"}}),
        &clock,
    );
    let c = claims(&clock, json!({"iss": null, "aud": null}));
    let t1 = rs256(RSA_PRIVATE, "k1", &c);
    let t2 = rs256(RSA2_PRIVATE, "k2", &c);
    assert!(v.verify(&t1).is_ok());
    assert!(v.verify(&t2).is_ok(), "RSA key without alg takes default_rsa_algorithm");
    assert_eq!(v.signature_checks(), 2);

    // k1 is withdrawn (compromised). Make sure the file's stamp changes.
    std::thread::sleep(Duration::from_millis(20));
    write_jwks(
        &file,
        &[jwk(RSA2_PRIVATE, "k2", None), json!({"kty": "oct", "kid": "sneaky", "k": "c2VjcmV0"})],
    );
    clock.advance(Duration::from_secs(10));
    assert_refused(v.verify(&t1), "TOKEN_INVALID");
    assert!(v.verify(&t2).is_ok(), "re-verified under the new key set");
    assert_eq!(v.signature_checks(), 3, "the cached k2 entry predates the new key set");
    // The change was read once, and the now unknown k1 forced one re-read.
    assert_eq!(v.jwks_loads(), 3);

    // A broken file keeps the keys we have for one more check interval.
    std::fs::write(&file, "{ not json").expect("write");
    clock.advance(Duration::from_secs(10));
    assert!(v.verify(&t2).is_ok());
    assert_eq!(v.jwks_loads(), 3);

    // An oct key from the file is never accepted: HS secrets come only from config.
    let hs_forged =
        sign(Algorithm::HS256, Some("sneaky"), &EncodingKey::from_secret(b"secret"), &c);
    assert_refused(v.verify(&hs_forged), "TOKEN_INVALID");
}

#[test]
fn jwks_keys_are_pinned_to_their_declared_alg() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("jwks.json");
    // A PS256 key: an RS256 signature by the same RSA key is refused.
    write_jwks(&file, &[jwk(RSA_PRIVATE, "k1", Some("PS256")), jwk(RSA2_PRIVATE, "noalg", None)]);
    let clock = FakeClock::new();
    let v = verifier(json!({"jwks": {"file": file}}), &clock);
    let c = claims(&clock, json!({"iss": null, "aud": null}));
    assert_refused(v.verify(&rs256(RSA_PRIVATE, "k1", &c)), "TOKEN_INVALID");
    let ps = sign(
        Algorithm::PS256,
        Some("k1"),
        &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("pem"),
        &c,
    );
    assert!(v.verify(&ps).is_ok());
    // Without alg and without a default, an RSA key is skipped, not guessed.
    assert_refused(v.verify(&rs256(RSA2_PRIVATE, "noalg", &c)), "TOKEN_INVALID");
}

#[test]
fn bad_settings_name_the_key_and_not_the_value() {
    let cases = [
        (
            json!({"keys": [{"kid": "a", "algorithm": "none", "secret": HS_SECRET}]}),
            "auth.jwt.keys[0].algorithm",
        ),
        (
            json!({"keys": [{"kid": "a", "algorithm": "HS512", "secret": HS_SECRET}]}),
            "auth.jwt.keys[0].secret",
        ),
        (
            json!({"keys": [{"kid": "a", "algorithm": "RS256", "secret": HS_SECRET}]}),
            "auth.jwt.keys[0].secret",
        ),
        (
            json!({"keys": [{"kid": "a", "algorithm": "RS256", "public_key": RSA_PRIVATE}]}),
            "auth.jwt.keys[0].public_key",
        ),
        (
            json!({"keys": [{"kid": "a", "algorithm": "ES256", "public_key": RSA_PUBLIC}]}),
            "auth.jwt.keys[0].public_key",
        ),
        (json!({"keys": [{"kid": "a", "algorithm": "RS256"}]}), "auth.jwt.keys[0]"),
        (
            json!({"keys": [{"kid": "a", "algorithm": "HS256", "secret": HS_SECRET},
                         {"kid": "a", "algorithm": "HS256", "secret": HS_SECRET}]}),
            "auth.jwt.keys[1].kid",
        ),
        (json!({"leeway": "forever"}), "auth.jwt.leeway"),
        (json!({"leeway": "1h"}), "auth.jwt.leeway"),
        (json!({"max_token_bytes": 10}), "auth.jwt.max_token_bytes"),
        (
            json!({"jwks": {"file": "x", "default_rsa_algorithm": "ES256"}}),
            "auth.jwt.jwks.default_rsa_algorithm",
        ),
    ];
    for (jwt, key) in cases {
        let err = AuthConfig::from_value(json!({"jwt": jwt})).expect_err(key);
        assert_eq!(err.kind(), ErrorKind::Configuration);
        assert_eq!(err.config_key(), Some(key), "{err:?}");
        let shown = format!("{err:?} {err}");
        assert!(!shown.contains(HS_SECRET) && !shown.contains("MII"), "{shown}");
    }
    // A JWKS file that does not exist fails when the configuration is read.
    let err = AuthConfig::from_value(json!({"jwt": {"jwks": {"file": "/nonexistent/jwks.json"}}}))
        .unwrap_err();
    assert_eq!(err.config_key(), Some("auth.jwt.jwks.file"));
}

/// Finding: a signed token with a custom claim nested 200 deep verified,
/// and then `Principal::claims()` was `{}`: serde_json's recursion limit,
/// its error turned into an empty map. Now one depth limit holds during
/// verification, and every value must read as the claim map reads it.
#[test]
fn claims_that_would_not_read_refuse_the_token_instead_of_vanishing() {
    let clock = FakeClock::new();
    let v = verifier(all_keys(), &clock);
    let base = claims(&clock, json!({})).to_string();
    let with = |claim: &str| format!("{},{claim}}}", &base[..base.len() - 1]);
    let header = r#"{"alg":"HS256","kid":"hs"}"#;
    let deep = format!("\"tenant\":{}1{}", "[".repeat(200), "]".repeat(200));
    for bad in [deep.as_str(), r#""big":1e400"#, r#""name":"\ud800""#] {
        let err = assert_refused(v.verify(&hs_raw(header, &with(bad))), "TOKEN_INVALID");
        assert_ne!(err.message(), NOT_VERIFIED, "the signature was good: {bad}");
    }
    // Nesting within the limit verifies, and every claim is there.
    let nested = format!("\"tenant\":{}\"acme\"{}", "[".repeat(10), "]".repeat(10));
    let p = v.verify(&hs_raw(header, &with(&nested))).expect("within the limit");
    let mut tenant = &p.claims()["tenant"];
    for _ in 0..10 {
        tenant = &tenant[0];
    }
    assert_eq!(tenant, "acme");
    assert_eq!(p.claims()["sub"], "alice");
}

/// Finding: `"tenant":"acme","tenant":"globex"` verified as `globex`,
/// though the docs say a claim named twice is refused. A key named twice
/// anywhere, in the payload or the header, refuses the token.
#[test]
fn a_key_named_twice_anywhere_refuses_the_token() {
    let clock = FakeClock::new();
    let v = verifier(all_keys(), &clock);
    let base = claims(&clock, json!({})).to_string();
    let with = |claim: &str| format!("{},{claim}}}", &base[..base.len() - 1]);
    let header = r#"{"alg":"HS256","kid":"hs"}"#;
    for payload in [
        with(r#""tenant":"acme","tenant":"globex""#),
        with(r#""tenant":"acme","\u0074enant":"globex""#),
        with(r#""org":{"id":1,"id":2}"#),
        with(r#""orgs":[{"id":1},{"id":2,"id":3}]"#),
        with(r#""sub":"mallory""#),
    ] {
        assert_refused(v.verify(&hs_raw(header, &payload)), "TOKEN_INVALID");
    }
    for header in [
        r#"{"alg":"HS256","kid":"hs","typ":"JWT","typ":"x"}"#,
        r#"{"alg":"HS256","kid":"hs","kid":"hs"}"#,
    ] {
        assert_refused(v.verify(&hs_raw(header, &base)), "TOKEN_INVALID");
    }
    // The same claims once each verify.
    let p = v.verify(&hs_raw(header, &with(r#""tenant":"acme""#))).expect("valid");
    assert_eq!(p.claims()["tenant"], "acme");
}

/// Finding: unsigned probes learned which key ids exist and which
/// algorithm each is pinned to from the 401's description. Every refusal
/// before the signature is verified now reads the same; which check failed
/// is only in the debug log (and the metric's `reason` label).
#[test]
fn refusals_before_the_signature_all_read_the_same() {
    let clock = FakeClock::new();
    let v = verifier(all_keys(), &clock);
    let c = claims(&clock, json!({}));
    let hs_key = EncodingKey::from_secret(HS_SECRET.as_bytes());
    let wrong_key = EncodingKey::from_secret(b"not-the-secret-not-the-secret-xx");
    let probes = [
        ("unknown_key", sign(Algorithm::HS256, Some("ghost"), &hs_key, &c)),
        ("wrong_algorithm", sign(Algorithm::HS384, Some("hs"), &hs_key, &c)),
        ("wrong_algorithm", sign(Algorithm::HS256, Some("rsa"), &hs_key, &c)),
        ("bad_signature", sign(Algorithm::HS256, Some("hs"), &wrong_key, &c)),
        ("malformed", "e30.e30.e30".to_owned()),
        ("too_large", hs(&claims(&clock, json!({"pad": "x".repeat(10_000)})))),
    ];
    let (answers, logs) = support::capture_json_logs(|| {
        probes.iter().map(|(_, token)| v.verify(token).expect_err("refused")).collect::<Vec<_>>()
    });
    for (err, (reason, _)) in answers.iter().zip(&probes) {
        assert_eq!(err.message(), NOT_VERIFIED, "{reason}");
        assert_eq!(err.code().as_str(), "TOKEN_INVALID");
        assert_eq!(err.challenge(), answers[0].challenge(), "{reason}");
    }
    let logged: Vec<Value> = logs
        .json_lines()
        .into_iter()
        .filter(|l| l["level"] == "DEBUG" && l["target"] == "rampart::auth")
        .map(|l| l["reason"].clone())
        .collect();
    let expected: Vec<Value> = probes.iter().map(|(reason, _)| json!(reason)).collect();
    assert_eq!(logged, expected, "{}", logs.text());
}

/// A verifier on a JWKS file, with the token cache on.
fn jwks_verifier(file: &std::path::Path, extra: Value, clock: &FakeClock) -> JwtVerifier {
    let mut jwks = json!({"file": file, "check_interval": "10s", "min_reload_interval": "1s"});
    for (k, v) in extra.as_object().expect("object") {
        jwks[k] = v.clone();
    }
    verifier(json!({"jwks": jwks}), clock)
}

/// Finding: a token naming an unknown kid re-read the unchanged JWKS file
/// and bumped the key-set generation, so every cached token was verified
/// again: one request flushed the cache. The set changes only when the
/// file's content does.
#[test]
fn an_unknown_kid_does_not_flush_the_token_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("jwks.json");
    write_jwks(&file, &[jwk(RSA_PRIVATE, "k1", Some("RS256"))]);
    let clock = FakeClock::new();
    let v = jwks_verifier(&file, json!({}), &clock);
    let c = claims(&clock, json!({"iss": null, "aud": null}));
    let token = rs256(RSA_PRIVATE, "k1", &c);
    assert!(v.verify(&token).is_ok());
    assert!(v.verify(&token).is_ok());
    assert_eq!(v.signature_checks(), 1);
    // The attack, repeated after each min_reload_interval: an unknown kid.
    for i in 0..3 {
        clock.advance(Duration::from_secs(1));
        assert_refused(v.verify(&rs256(RSA2_PRIVATE, &format!("ghost-{i}"), &c)), "TOKEN_INVALID");
        assert!(v.verify(&token).is_ok());
    }
    assert_eq!(v.jwks_loads(), 4, "the file was read for each unknown kid");
    assert_eq!(v.signature_checks(), 1, "the cached token was never verified again");
}

/// Finding: replacement was detected by modification time and size only, so
/// a file of the same size with its mtime preserved kept a withdrawn key
/// valid forever. The content is compared.
#[test]
fn a_replaced_jwks_file_is_noticed_whatever_its_size_and_mtime() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("jwks.json");
    write_jwks(&file, &[jwk(RSA_PRIVATE, "k1", Some("RS256")), jwk(RSA2_PRIVATE, "k2", None)]);
    let mtime = std::fs::metadata(&file).and_then(|m| m.modified()).expect("mtime");
    let size = std::fs::metadata(&file).expect("meta").len();
    let clock = FakeClock::new();
    let v = jwks_verifier(&file, json!({"default_rsa_algorithm": "RS256"}), &clock);
    let c = claims(&clock, json!({"iss": null, "aud": null}));
    let withdrawn = rs256(RSA_PRIVATE, "k1", &c);
    assert!(v.verify(&withdrawn).is_ok());
    // k1 is withdrawn: its kid renamed, same length, same key, same size,
    // and the old modification time put back.
    write_jwks(&file, &[jwk(RSA_PRIVATE, "x1", Some("RS256")), jwk(RSA2_PRIVATE, "k2", None)]);
    let replaced = std::fs::File::options().write(true).open(&file).expect("open");
    replaced.set_modified(mtime).expect("set mtime");
    drop(replaced);
    assert_eq!(std::fs::metadata(&file).expect("meta").len(), size);
    assert_eq!(std::fs::metadata(&file).and_then(|m| m.modified()).expect("mtime"), mtime);
    clock.advance(Duration::from_secs(10));
    assert_refused(v.verify(&withdrawn), "TOKEN_INVALID");
    assert!(v.verify(&rs256(RSA_PRIVATE, "x1", &c)).is_ok());
    assert!(v.verify(&rs256(RSA2_PRIVATE, "k2", &c)).is_ok());
}

/// Finding: a deleted JWKS file kept its keys valid forever. It is logged at
/// error level on every check, and one check_interval later its keys end
/// (unless `drop_keys_when_unreadable = false`).
#[test]
fn a_deleted_jwks_file_ends_its_keys_after_a_check_interval() {
    for drop_keys in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("jwks.json");
        write_jwks(&file, &[jwk(RSA_PRIVATE, "k1", Some("RS256"))]);
        let clock = FakeClock::new();
        let extra = json!({"drop_keys_when_unreadable": drop_keys});
        let v = jwks_verifier(&file, extra, &clock);
        let c = claims(&clock, json!({"iss": null, "aud": null}));
        let token = rs256(RSA_PRIVATE, "k1", &c);
        assert!(v.verify(&token).is_ok());
        std::fs::remove_file(&file).expect("delete");
        let (verdicts, logs) = support::capture_json_logs(|| {
            [10, 10, 10].map(|secs| {
                clock.advance(Duration::from_secs(secs));
                v.verify(&token).is_ok()
            })
        });
        let errors = logs
            .json_lines()
            .into_iter()
            .filter(|l| l["level"] == "ERROR" && l["trigger"] == "interval")
            .count();
        assert_eq!(errors, 3, "one error line per check: {}", logs.text());
        // Kept through the first failed check; then gone, or kept when asked.
        assert_eq!(verdicts, [true, !drop_keys, !drop_keys], "drop_keys = {drop_keys}");
        // The file comes back: so do its keys.
        write_jwks(&file, &[jwk(RSA_PRIVATE, "k1", Some("RS256"))]);
        clock.advance(Duration::from_secs(10));
        assert!(v.verify(&token).is_ok());
    }
}

/// Issue 20: a JWKS path naming a device (`/dev/zero`, read without end) or
/// a FIFO (which blocks the reader) is refused with a clear error, at start
/// and at a reload, as is a file over 1 MiB.
#[cfg(unix)]
#[test]
fn the_jwks_file_must_be_a_regular_file_of_at_most_1_mib() {
    use std::sync::mpsc;
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("jwks.fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success());
    // Each attempt runs on its own thread: a reader stuck on the FIFO must
    // fail the test, not hang it.
    let answered = |attempt: Box<dyn FnOnce() -> Result<(), Error> + Send>| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || tx.send(attempt()));
        rx.recv_timeout(Duration::from_secs(60)).expect("answered instead of hanging")
    };
    let start = |path: std::path::PathBuf| -> Box<dyn FnOnce() -> Result<(), Error> + Send> {
        Box::new(move || {
            // Loading the configuration reads the file, as the verifier does.
            let config = AuthConfig::from_value(json!({"jwt": {"jwks": {"file": path}}}))?;
            JwtVerifier::new(&config).map(|v| v.clock(FakeClock::new())).map(drop)
        })
    };
    let big = dir.path().join("big.json");
    std::fs::write(&big, format!("{{\"keys\": []}}{}", " ".repeat(1 << 20))).expect("write");
    for (path, why) in [
        (fifo.clone(), "is not a regular file"),
        ("/dev/zero".into(), "is not a regular file"),
        (dir.path().to_path_buf(), "is not a regular file"),
        (big, "is larger than 1 MiB"),
    ] {
        let err = answered(start(path.clone())).expect_err("refused");
        assert_eq!(err.config_key(), Some("auth.jwt.jwks.file"), "{path:?}");
        assert!(err.message().starts_with(why), "{path:?}: {}", err.message());
    }
    // At a reload: the file is replaced by the FIFO. The check does not
    // block, and the keys end one interval later as for any unreadable file.
    let file = dir.path().join("jwks.json");
    write_jwks(&file, &[jwk(RSA_PRIVATE, "k1", Some("RS256"))]);
    let clock = FakeClock::new();
    let v = Arc::new(jwks_verifier(&file, json!({}), &clock));
    let token = rs256(RSA_PRIVATE, "k1", &claims(&clock, json!({"iss": null, "aud": null})));
    std::fs::rename(&fifo, &file).expect("replaced by the FIFO");
    for expected_ok in [true, false] {
        clock.advance(Duration::from_secs(10));
        let (v, token) = (Arc::clone(&v), token.clone());
        let verdict = answered(Box::new(move || v.verify(&token).map(drop)));
        assert_eq!(verdict.is_ok(), expected_ok);
    }
}
