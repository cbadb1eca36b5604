//! `Validated<Json<T>>` over a real socket: 415, 413 (declared and streamed),
//! 400 for JSON bombs and broken rules, and the validated value otherwise.
#![cfg(feature = "http")]

use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Extension, Json, Router};
use garde::Validate;
use rampart::http::JsonBodyConfig;
use rampart::validate::{JsonLimits, Validated};
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
struct NewOrder {
    #[garde(range(min = 1, max = 100))]
    quantity: u32,
    #[garde(length(chars, min = 1, max = 16))]
    product_id: String,
    #[garde(skip)]
    #[allow(dead_code)]
    extra: Option<Value>,
}

async fn create(Validated { value: Json(order), .. }: Validated<Json<NewOrder>>) -> String {
    format!("{} x {}", order.quantity, order.product_id)
}

/// Serves the app on a free port; returns its address.
async fn serve(limits: JsonLimits) -> String {
    let app =
        Router::new().route("/orders", post(create)).layer(Extension(JsonBodyConfig::new(limits)));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("an address").to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Sends raw HTTP/1.1 bytes; returns the status and the body.
async fn send(addr: &str, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("the server accepts");
    stream.write_all(head.as_bytes()).await.expect("the head is sent");
    // The server may answer (413) and close before the whole body is sent.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

async fn post_json(addr: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let head = format!(
        "POST /orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    send(addr, &head, body).await
}

fn problem(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|err| panic!("not JSON ({err}): {body}"))
}

#[tokio::test]
async fn a_valid_body_reaches_the_handler() {
    let addr = serve(JsonLimits::default()).await;
    let (status, body) = post_json(
        &addr,
        "application/json; charset=utf-8",
        br#"{"quantity": 3, "productId": "p-1"}"#,
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "3 x p-1"));
}

#[tokio::test]
async fn broken_rules_and_wrong_types_are_400_with_pointers() {
    let addr = serve(JsonLimits::default()).await;
    let (status, body) =
        post_json(&addr, "application/json", br#"{"quantity": 0, "productId": ""}"#).await;
    assert_eq!(status, 400);
    let errors = &problem(&body)["errors"];
    assert_eq!(errors[0]["pointer"], "/productId");
    assert_eq!(errors[1]["pointer"], "/quantity");
    assert_eq!(errors[1]["code"], "range");

    let (status, body) =
        post_json(&addr, "application/json", br#"{"quantity": "CANARY", "productId": "p"}"#).await;
    assert_eq!(status, 400);
    assert_eq!(problem(&body)["errors"][0]["pointer"], "/quantity");
    assert!(!body.contains("CANARY"));

    let (status, body) = post_json(&addr, "application/json", b"{\"quantity\": 1,").await;
    assert_eq!(status, 400);
    assert_eq!(problem(&body)["errors"][0]["code"], "json_syntax");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let addr = serve(JsonLimits::default()).await;
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "application/jsonp"] {
        let (status, body) = post_json(&addr, content_type, br#"{"quantity": 1}"#).await;
        assert_eq!(status, 415, "{content_type}");
        assert_eq!(problem(&body)["code"], "UNSUPPORTED_MEDIA_TYPE");
    }
    let head = "POST /orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n";
    assert_eq!(send(&addr, head, b"{}").await.0, 415);
}

#[tokio::test]
async fn oversized_bodies_are_413_declared_or_streamed() {
    let addr = serve(JsonLimits::with_max_input_size(1024)).await;
    let big = format!(r#"{{"quantity": 1, "productId": "p", "extra": "{}"}}"#, "x".repeat(2_000));
    let (status, body) = post_json(&addr, "application/json", big.as_bytes()).await;
    assert_eq!(status, 413);
    assert_eq!(problem(&body)["code"], "PAYLOAD_TOO_LARGE");

    // No Content-Length: chunks are counted as they arrive.
    let head = "POST /orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut chunked = Vec::new();
    for chunk in big.as_bytes().chunks(256) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (status, _) = send(&addr, head, &chunked).await;
    assert_eq!(status, 413);

    // A lying Content-Length larger than the limit is refused before reading.
    let head = "POST /orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                Content-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n";
    assert_eq!(send(&addr, head, b"{}").await.0, 413);
}

#[tokio::test]
async fn json_bombs_are_refused_quickly() {
    let addr = serve(JsonLimits::with_max_input_size(8 << 20)).await;
    let nesting = "[".repeat(100_000);
    let mut keys = String::from("{");
    for i in 0..200_000 {
        keys.push_str(&format!("\"k{i}\":1,"));
    }
    keys.push_str("\"quantity\":1}");
    let long_array = format!("[{}1]", "1,".repeat(500_000));
    for (bomb, code) in
        [(nesting, "json_depth"), (keys, "json_object_keys"), (long_array, "json_array_length")]
    {
        let started = Instant::now();
        let (status, body) = post_json(&addr, "application/json", bomb.as_bytes()).await;
        assert_eq!(status, 400, "{code}");
        assert_eq!(problem(&body)["errors"][0]["code"], code);
        assert!(started.elapsed() < Duration::from_secs(5), "{code}: {:?}", started.elapsed());
    }
}
