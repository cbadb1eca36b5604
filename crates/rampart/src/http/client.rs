//! Who is calling, resolved once: [`ClientIpLayer`] puts the client's
//! [`ClientAddr`] in the request extensions, believing forwarding headers
//! only from the trusted proxies ([`ProxySettings`]); every later layer
//! reads that one address.
//!
//! ```
//! use std::net::SocketAddr;
//! use axum::{Router, routing::get};
//! use rampart::client::{ClientAddr, ForwardedHeader, ProxySettings};
//! use rampart::http::ClientIpLayer;
//!
//! async fn whoami(axum::Extension(ClientAddr(ip)): axum::Extension<ClientAddr>) -> String {
//!     ip.to_string()
//! }
//!
//! let proxies = ProxySettings::new(vec!["10.0.0.0/8".parse()?], ForwardedHeader::XForwardedFor);
//! let app = Router::new().route("/", get(whoami)).layer(ClientIpLayer::new(proxies));
//! // The peer address comes from the connection: serve with connect info.
//! let service = app.into_make_service_with_connect_info::<SocketAddr>();
//! # let _ = service;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use http::{Extensions, Request};
use tower::{Layer, Service};

use crate::client::{ClientAddr, ProxySettings};
use crate::error::Error;

/// Resolves the client's address once per request and puts it in the
/// request extensions as a [`ClientAddr`], believing forwarding headers only
/// from the trusted proxies ([`ProxySettings`]).
///
/// The peer address comes from axum's `ConnectInfo<SocketAddr>` (serve
/// with `into_make_service_with_connect_info::<SocketAddr>()`). Without it
/// no [`ClientAddr`] is set, and every layer that needs one refuses the
/// request with a 500 problem and an error log naming that fix: counting
/// everyone as one client, or no one at all, would be worse.
#[derive(Debug, Clone, Default)]
pub struct ClientIpLayer {
    proxies: Arc<ProxySettings>,
}

impl ClientIpLayer {
    /// Believes forwarding headers as `proxies` says.
    pub fn new(proxies: ProxySettings) -> ClientIpLayer {
        ClientIpLayer { proxies: Arc::new(proxies) }
    }
}

impl<S> Layer<S> for ClientIpLayer {
    type Service = ClientIp<S>;

    fn layer(&self, inner: S) -> ClientIp<S> {
        ClientIp { inner, proxies: Arc::clone(&self.proxies) }
    }
}

/// The service [`ClientIpLayer`] makes.
#[derive(Debug, Clone)]
pub struct ClientIp<S> {
    inner: S,
    proxies: Arc<ProxySettings>,
}

impl<S, B> Service<Request<B>> for ClientIp<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> S::Future {
        let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        if let Some(peer) = peer {
            let client = self.proxies.client_ip(peer, request.headers());
            request.extensions_mut().insert(ClientAddr(client));
        }
        self.inner.call(request)
    }
}

/// The client's address for a layer that needs it: the [`ClientAddr`]
/// [`ClientIpLayer`] resolved or, without that layer, the socket peer (no
/// proxy is trusted then). Neither: a configuration error (500, logged at
/// `error` with the fix) rather than a check that silently does nothing.
pub(crate) fn client_addr(extensions: &Extensions) -> Result<IpAddr, Error> {
    if let Some(ClientAddr(ip)) = extensions.get::<ClientAddr>() {
        return Ok(*ip);
    }
    match extensions.get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => Ok(crate::client::canonical(peer.ip())),
        None => Err(Error::configuration(
            "proxy",
            "the client address is unknown: serve the app with \
             `into_make_service_with_connect_info::<SocketAddr>()` (and put \
             `ClientIpLayer` outside the layers that need it)",
        )),
    }
}
