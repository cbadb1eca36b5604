//! What a request is counted against: its client address, API key id,
//! subject, route, or a combination ([`KeyPart`]), written so no value can
//! be crafted to collide with another combination.
//!
//! The client address and the identity come from [`crate::client`]: the
//! address as [`ip_key`] writes it (IPv6 by its /64), the identity only as
//! verified by authentication.
//!
//! ```
//! use rampart::client::Identity;
//! use rampart::ratelimit::key::{KeyInputs, KeyPart, build_key};
//!
//! let alice = Identity { subject: Some("alice".into()), api_key_id: None };
//! let inputs = KeyInputs {
//!     client_ip: "198.51.100.7".parse().unwrap(),
//!     route: Some("/orders"),
//!     identity: Some(&alice),
//! };
//! assert_eq!(build_key(&[KeyPart::Subject, KeyPart::Route], &inputs), "s5:alicer7:/orders");
//! // Anonymous: the subject part falls back to the client address.
//! let anonymous = KeyInputs { identity: None, ..inputs };
//! assert_eq!(build_key(&[KeyPart::Subject], &anonymous), "i12:198.51.100.7");
//! ```

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::client::{Identity, ip_key};

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

/// What a key is built from.
#[derive(Debug, Clone, Copy)]
pub struct KeyInputs<'a> {
    /// The client address, as found by [`crate::client::client_ip`].
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
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
