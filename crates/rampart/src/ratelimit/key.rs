//! What a request is counted against: its client IP, API key id, subject,
//! route, or a combination.
//!
//! The client IP is the socket peer unless the peer is a trusted proxy; only
//! then is the forwarding header read, right to left, skipping trusted hops,
//! and the first address not trusted is the client. A client that writes its
//! own `X-Forwarded-For` or `Forwarded` header therefore changes nothing
//! unless it *is* a trusted proxy. Only the header the proxies are configured
//! to set is read ([`ForwardedHeader`]): a proxy that sets one passes the
//! other through untouched, and reading that one would let clients choose
//! their key.
//!
//! IPv6 clients are keyed by their /64: one host usually holds a whole /64,
//! and keying single addresses would hand it 2^64 fresh buckets.
//!
//! ```
//! use std::net::IpAddr;
//! use http::HeaderMap;
//! use rampart::ratelimit::key::{ForwardedHeader, client_ip};
//!
//! let trusted = vec!["10.0.0.0/8".parse().unwrap()];
//! let mut headers = HeaderMap::new();
//! headers.insert("x-forwarded-for", "198.51.100.7, 10.0.0.3".parse().unwrap());
//!
//! // Through our proxy: the client is the first untrusted hop.
//! let via_proxy: IpAddr = "10.0.0.2".parse().unwrap();
//! let ip = client_ip(via_proxy, &headers, &trusted, ForwardedHeader::XForwardedFor);
//! assert_eq!(ip.to_string(), "198.51.100.7");
//!
//! // Straight from the internet: the header is the client's own claim, ignored.
//! let direct: IpAddr = "203.0.113.5".parse().unwrap();
//! let ip = client_ip(direct, &headers, &trusted, ForwardedHeader::XForwardedFor);
//! assert_eq!(ip.to_string(), "203.0.113.5");
//! ```

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr};

use http::HeaderMap;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Which forwarding header the trusted proxies set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (the default).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// One component of a rate-limit key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPart {
    /// The client IP (IPv6 by /64).
    Ip,
    /// The id of the API key that authenticated the request.
    ApiKey,
    /// The authenticated subject.
    Subject,
    /// The matched route template (never the raw path, which the client
    /// could vary to get fresh buckets).
    Route,
}

/// Who a request claims to be, as far as the limiter is concerned: put into
/// the request's extensions by whatever authenticated it. A key part the
/// request lacks (an anonymous request keyed by subject) falls back to the
/// client IP, so nobody goes unlimited by staying anonymous.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The authenticated subject.
    pub subject: Option<String>,
    /// The id (never the secret) of the API key used.
    pub api_key_id: Option<String>,
}

/// What a key is built from.
#[derive(Debug, Clone, Copy)]
pub struct KeyInputs<'a> {
    /// The client IP, as found by [`client_ip`].
    pub client_ip: IpAddr,
    /// The matched route template, if any.
    pub route: Option<&'a str>,
    /// The request's identity, if any.
    pub identity: Option<&'a Identity>,
}

/// Builds the key for `inputs` from `parts`. Each part is written with its
/// length, so no subject or route can be crafted to collide with another
/// combination.
pub fn build_key(parts: &[KeyPart], inputs: &KeyInputs<'_>) -> String {
    let mut key = String::with_capacity(48);
    let identity = inputs.identity;
    for part in parts {
        let value = match part {
            KeyPart::Ip => None,
            KeyPart::ApiKey => identity.and_then(|id| id.api_key_id.as_deref()),
            KeyPart::Subject => identity.and_then(|id| id.subject.as_deref()),
            KeyPart::Route => Some(inputs.route.unwrap_or("")),
        };
        match value {
            Some(value) => {
                let tag = match part {
                    KeyPart::ApiKey => 'k',
                    KeyPart::Subject => 's',
                    _ => 'r',
                };
                let _ = write!(key, "{tag}{}:{value}", value.len());
            }
            // Ip, or a missing identity part: the client address stands in.
            None => {
                let ip = ip_key(inputs.client_ip);
                let _ = write!(key, "i{}:{ip}", ip.len());
            }
        }
    }
    key
}

/// The client address as a key: IPv4 as it is, IPv4-mapped IPv6 as IPv4,
/// other IPv6 as its /64. Lockout and the block list key clients this way
/// too; key [`Monitor::observe`](crate::monitor::Monitor::observe) calls
/// with it, so a client cannot step around a limit by changing the low
/// bits of its IPv6 address.
///
/// ```
/// use rampart::ratelimit::key::ip_key;
///
/// assert_eq!(ip_key("2001:db8::1".parse().unwrap()), "2001:db8::/64");
/// assert_eq!(ip_key("::ffff:203.0.113.9".parse().unwrap()), "203.0.113.9");
/// ```
pub fn ip_key(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", Ipv6Addr::from(prefix))
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client's address: `peer` unless `peer` is in `trusted`, in which case
/// the `header` hops are walked right to left and the first address not in
/// `trusted` is the client (the leftmost if every hop is trusted). A hop that
/// does not parse ends the walk at the last trusted address: a proxy that
/// forwards garbage does not get to pick someone else's key.
pub fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[IpNet],
    header: ForwardedHeader,
) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(&canonical(ip)));
    let peer = canonical(peer);
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = match header {
        ForwardedHeader::XForwardedFor => headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect(),
        ForwardedHeader::Forwarded => headers
            .get_all("forwarded")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(forwarded_for)
            .collect(),
    };
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else { break };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// The `for=` value of one RFC 7239 element (`""` when absent).
fn forwarded_for(element: &str) -> &str {
    element
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
        .map_or("", |(_, value)| value.trim())
}

/// An address out of one hop: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`,
/// `[2001:db8::1]:80`, any of them quoted.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    let host = match hop.strip_prefix('[') {
        Some(rest) => rest.split_once(']')?.0,
        None => hop.rsplit_once(':')?.0,
    };
    host.parse::<IpAddr>().ok().map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn headers(name: &'static str, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(name, v.parse().unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn attack_spoofed_x_forwarded_for_from_an_untrusted_peer_is_ignored() {
        let trusted = nets(&["10.0.0.0/8"]);
        let spoof = headers("x-forwarded-for", &["1.1.1.1", "10.0.0.1"]);
        let got = client_ip(ip("203.0.113.66"), &spoof, &trusted, ForwardedHeader::XForwardedFor);
        assert_eq!(got, ip("203.0.113.66"));
        // With no trusted proxies at all, headers never count.
        let got = client_ip(ip("10.0.0.1"), &spoof, &[], ForwardedHeader::XForwardedFor);
        assert_eq!(got, ip("10.0.0.1"));
    }

    #[test]
    fn attack_spoofed_forwarded_from_an_untrusted_peer_is_ignored() {
        let trusted = nets(&["10.0.0.0/8"]);
        let spoof = headers("forwarded", &["for=1.1.1.1"]);
        let got = client_ip(ip("203.0.113.66"), &spoof, &trusted, ForwardedHeader::Forwarded);
        assert_eq!(got, ip("203.0.113.66"));
    }

    #[test]
    fn attack_a_client_prepending_hops_behind_a_trusted_proxy_gets_its_real_address() {
        // The client sent "X-Forwarded-For: 1.1.1.1"; our proxy appended the
        // address it saw. Walking from the right stops at that one.
        let trusted = nets(&["10.0.0.0/8"]);
        let h = headers("x-forwarded-for", &["1.1.1.1, 198.51.100.7"]);
        let got = client_ip(ip("10.1.2.3"), &h, &trusted, ForwardedHeader::XForwardedFor);
        assert_eq!(got, ip("198.51.100.7"));
    }

    #[test]
    fn attack_the_header_the_proxies_do_not_set_is_never_read() {
        // Proxies set X-Forwarded-For and pass the client's Forwarded through.
        let trusted = nets(&["10.0.0.0/8"]);
        let mut h = headers("x-forwarded-for", &["198.51.100.7"]);
        h.append("forwarded", "for=1.1.1.1".parse().unwrap());
        let got = client_ip(ip("10.0.0.9"), &h, &trusted, ForwardedHeader::XForwardedFor);
        assert_eq!(got, ip("198.51.100.7"));
    }

    #[test]
    fn several_trusted_hops_and_header_lines_are_walked() {
        let trusted = nets(&["10.0.0.0/8", "192.168.0.0/16"]);
        let h = headers("x-forwarded-for", &["198.51.100.7, 192.168.1.1", "10.0.0.5"]);
        let got = client_ip(ip("10.0.0.9"), &h, &trusted, ForwardedHeader::XForwardedFor);
        assert_eq!(got, ip("198.51.100.7"));
        // All hops trusted: the leftmost.
        let h = headers("x-forwarded-for", &["192.168.1.1, 10.0.0.5"]);
        let got = client_ip(ip("10.0.0.9"), &h, &trusted, ForwardedHeader::XForwardedFor);
        assert_eq!(got, ip("192.168.1.1"));
    }

    #[test]
    fn forwarded_elements_in_every_form() {
        let trusted = nets(&["10.0.0.0/8"]);
        for (value, want) in [
            ("for=198.51.100.7;proto=https", "198.51.100.7"),
            ("for=\"198.51.100.7:4711\"", "198.51.100.7"),
            ("For=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
            ("for=198.51.100.7, for=10.0.0.3;by=10.0.0.9", "198.51.100.7"),
        ] {
            let h = headers("forwarded", &[value]);
            let got = client_ip(ip("10.0.0.2"), &h, &trusted, ForwardedHeader::Forwarded);
            assert_eq!(got, ip(want), "{value}");
        }
    }

    #[test]
    fn garbage_and_obfuscated_hops_stop_at_the_last_trusted_address() {
        let trusted = nets(&["10.0.0.0/8"]);
        for value in ["for=unknown", "for=_hidden", "for="] {
            let h = headers("forwarded", &[value]);
            let got = client_ip(ip("10.0.0.2"), &h, &trusted, ForwardedHeader::Forwarded);
            assert_eq!(got, ip("10.0.0.2"), "{value}");
        }
        let h = headers("x-forwarded-for", &["198.51.100.7, not-an-ip, 10.0.0.3"]);
        let got = client_ip(ip("10.0.0.2"), &h, &trusted, ForwardedHeader::XForwardedFor);
        assert_eq!(got, ip("10.0.0.3"));
    }

    #[test]
    fn ipv6_clients_share_their_64_and_mapped_ipv4_is_ipv4() {
        let key = |addr: &str| {
            build_key(
                &[KeyPart::Ip],
                &KeyInputs { client_ip: ip(addr), route: None, identity: None },
            )
        };
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:198.51.100.7"), key("198.51.100.7"));
    }

    #[test]
    fn combined_keys_cannot_be_forged_by_a_crafted_subject() {
        let parts = [KeyPart::Subject, KeyPart::Route];
        let a = Identity { subject: Some("alice".into()), api_key_id: None };
        let b = Identity { subject: Some("alice:r8:/orders".into()), api_key_id: None };
        let ka = build_key(
            &parts,
            &KeyInputs { client_ip: ip("1.2.3.4"), route: Some("/orders"), identity: Some(&a) },
        );
        let kb = build_key(
            &parts,
            &KeyInputs { client_ip: ip("1.2.3.4"), route: Some(""), identity: Some(&b) },
        );
        assert_ne!(ka, kb);
    }

    #[test]
    fn anonymous_requests_keyed_by_subject_fall_back_to_their_ip() {
        let parts = [KeyPart::Subject];
        let anon = |addr| {
            build_key(&parts, &KeyInputs { client_ip: ip(addr), route: None, identity: None })
        };
        assert_ne!(anon("1.2.3.4"), anon("1.2.3.5"));
        assert!(anon("1.2.3.4").contains("1.2.3.4"));
    }
}
