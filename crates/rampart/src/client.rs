//! Who is calling: the client's address, found once through the trusted
//! proxies, and the identity a credential proved.
//!
//! The client address is the socket peer unless the peer is a trusted proxy
//! (the `[proxy]` section, [`ProxySettings`]); only then is the forwarding
//! header read, right to left, skipping trusted hops, and the first address
//! not trusted is the client. A client that writes its own
//! `X-Forwarded-For` or `Forwarded` header therefore changes nothing unless
//! it *is* a trusted proxy. Only the header the proxies are configured to
//! set is read ([`ForwardedHeader`]): a proxy that sets one passes the other
//! through untouched, and reading that one would let clients choose who
//! they are.
//!
//! Every part that keys on the client (rate limits, lockout, the block
//! list, the monitor) uses [`ip_key`], so IPv6 clients are one client per
//! /64: one host usually holds a whole /64, and keying single addresses
//! would hand it 2^64 fresh identities. With the `http` feature,
//! `rampart::http::ClientIpLayer` resolves the address once per request.
//!
//! ```
//! use std::net::IpAddr;
//! use http::HeaderMap;
//! use rampart::client::{ForwardedHeader, client_ip};
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

use std::net::{IpAddr, Ipv6Addr};

use http::HeaderMap;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::settings::Section;

/// The client's address, as resolved once per request (by
/// `rampart::http::ClientIpLayer`, or by a server that knows it): a request
/// extension every part that keys on the client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Which proxies are believed about the client's address (`[proxy]`).
///
/// ```toml
/// [proxy]
/// trusted_proxies = ["10.0.0.0/8"]       # CIDRs or addresses; default: none
/// forwarded_header = "x-forwarded-for"   # or "forwarded": what they set
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ProxySettings {
    /// Peers whose forwarding header is believed (default: none).
    pub trusted_proxies: Vec<IpNet>,
    /// The header they set.
    pub forwarded_header: ForwardedHeader,
}

impl ProxySettings {
    /// Believes `header` from `trusted_proxies`.
    pub fn new(trusted_proxies: Vec<IpNet>, forwarded_header: ForwardedHeader) -> ProxySettings {
        ProxySettings { trusted_proxies, forwarded_header }
    }

    /// The client behind `peer` (see [`client_ip`]).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        client_ip(peer, headers, &self.trusted_proxies, self.forwarded_header)
    }
}

use raw::RawProxySettings;

/// Private, so the raw table is public in name only.
mod raw {
    use serde::Deserialize;

    use super::ForwardedHeader;

    /// The `[proxy]` table as written.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct RawProxySettings {
        pub(super) trusted_proxies: Vec<String>,
        pub(super) forwarded_header: ForwardedHeader,
    }
}

impl Section for ProxySettings {
    const NAME: &'static str = "proxy";
    type Raw = RawProxySettings;

    fn from_raw(raw: RawProxySettings) -> Result<ProxySettings, Error> {
        let mut proxies = Vec::with_capacity(raw.trusted_proxies.len());
        for (i, text) in raw.trusted_proxies.iter().enumerate() {
            let key = format!("proxy.trusted_proxies[{i}]");
            match text.parse::<IpNet>().or_else(|_| text.parse::<IpAddr>().map(IpNet::from)) {
                Ok(net) if net != net.trunc() => {
                    return Err(Error::configuration(
                        key,
                        "has host bits set: write the network address, e.g. \"10.0.0.0/8\"",
                    ));
                }
                Ok(net) => proxies.push(net),
                Err(_) => {
                    return Err(Error::configuration(
                        key,
                        "is not an IP network: write a CIDR such as \"10.0.0.0/8\" or an address",
                    ));
                }
            }
        }
        Ok(ProxySettings { trusted_proxies: proxies, forwarded_header: raw.forwarded_header })
    }
}

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

/// Who a request was verified to be: put into the request's extensions by
/// whatever authenticated it (`AuthLayer`), read by the rate limit (a key
/// part the request lacks falls back to the client address, so nobody goes
/// unlimited by staying anonymous) and by the monitor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The authenticated subject.
    pub subject: Option<String>,
    /// The id (never the secret) of the API key used.
    pub api_key_id: Option<String>,
}

/// The client address as a key: IPv4 as it is, IPv4-mapped IPv6 as IPv4,
/// other IPv6 as its /64. Lockout and the block list key clients this way
/// too; key [`Monitor::observe`](crate::monitor::Monitor::observe) calls
/// with it, so a client cannot step around a limit by changing the low
/// bits of its IPv6 address.
///
/// ```
/// use rampart::client::ip_key;
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

pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
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
        assert_eq!(ip_key(ip("2001:db8:1:2:aaaa::1")), ip_key(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(ip_key(ip("2001:db8:1:2::1")), ip_key(ip("2001:db8:1:3::1")));
        assert_eq!(ip_key(ip("::ffff:198.51.100.7")), "198.51.100.7");
    }

    #[test]
    fn proxies_are_networks_without_host_bits() {
        let parse = |list: &[&str]| {
            let raw = RawProxySettings {
                trusted_proxies: list.iter().map(|s| (*s).to_owned()).collect(),
                forwarded_header: ForwardedHeader::default(),
            };
            ProxySettings::from_raw(raw)
        };
        let ok = parse(&["10.0.0.0/8", "::1"]).expect("valid");
        assert_eq!(ok.trusted_proxies, nets(&["10.0.0.0/8", "::1/128"]));
        for (bad, index) in [(&["10.0.0.1/8"][..], 0), (&["10.0.0.0/8", "proxy"][..], 1)] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.config_key(), Some(format!("proxy.trusted_proxies[{index}]").as_str()));
        }
    }
}
