//! The backing services the tests rely on answer, speaking their protocols.
//! Under `CI=true` these fail when a service is missing; elsewhere they skip.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn connect(url: &str) -> TcpStream {
    let addr = support::tcp_address(url).expect("a URL with a host");
    let stream = TcpStream::connect(addr).expect("the service answers");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout set");
    stream
}

#[test]
fn redis_answers_ping() {
    let Some(url) = support::redis_url() else { return };
    let mut stream = connect(&url);
    stream.write_all(b"*1\r\n$4\r\nPING\r\n").expect("sent");
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).expect("a reply");
    assert_eq!(&reply, b"+PONG\r\n");
}

#[test]
fn postgres_answers_an_ssl_request() {
    let Some(url) = support::database_url() else { return };
    let mut stream = connect(&url);
    // SSLRequest: length 8, code 80877103. The server answers one byte, 'S' or 'N'.
    stream.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]).expect("sent");
    let mut reply = [0u8; 1];
    stream.read_exact(&mut reply).expect("a reply");
    assert!(matches!(&reply, b"S" | b"N"), "unexpected reply {reply:?}");
}
