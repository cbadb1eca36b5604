//! The client address of a request, as every layer that keys on it finds it.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use http::Request;
use ipnet::IpNet;

use crate::error::Error;
use crate::ratelimit::key::{ForwardedHeader, client_ip};

/// The client's address: the socket peer from axum's
/// `ConnectInfo<SocketAddr>`, or what a trusted proxy forwarded (see
/// [`client_ip`]).
///
/// Without `ConnectInfo` nobody can be told apart, and a layer that counts
/// per client would either count everyone as one or no one at all: that is a
/// configuration error (500, logged at `error` naming the fix) against
/// `setting`, the key that asked for the address.
pub(crate) fn client_address<B>(
    request: &Request<B>,
    trusted_proxies: &[IpNet],
    header: ForwardedHeader,
    setting: &str,
) -> Result<IpAddr, Error> {
    match request.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => {
            Ok(client_ip(peer.ip(), request.headers(), trusted_proxies, header))
        }
        None => Err(Error::configuration(
            setting,
            "the client address is unknown: serve the app with \
             `into_make_service_with_connect_info::<SocketAddr>()`",
        )),
    }
}
