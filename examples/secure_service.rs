//! An axum service behind rampart, from one configuration file: API keys, a
//! permission per route, a rate limit, a validated JSON body and an audit
//! trail; every failure answers in the configured format with a request id.
//! `cargo run --example secure_service`; the README has curl lines for it.
use std::{net::SocketAddr, sync::Arc};

use axum::{Extension, Json, Router, routing::post};
use rampart::audit::{AuditEvent, Auditor};
use rampart::auth::{Authenticator, Lockout, Principal, require};
use rampart::config::Loader;
use rampart::handler::ErrorHandler;
use rampart::http::auth::{AuthLayer, RequireLayer};
use rampart::http::{ClientIpLayer, RateLimitLayer, RenderErrorsLayer, RequestIdLayer};
use rampart::validate::Validated;
use tower::ServiceBuilder;

#[derive(serde::Deserialize, garde::Validate)]
struct NewOrder {
    #[garde(range(min = 1, max = 100))]
    quantity: u32,
}

async fn create(
    who: Principal,
    Extension(audit): Extension<Auditor>,
    order: Validated<Json<NewOrder>>,
) -> Result<String, rampart::Error> {
    let event = AuditEvent::new("order.created", "create").actor(who.subject());
    audit.record(event.detail("quantity", order.quantity)).await?;
    Ok(format!("{} ordered {}\n", who.subject(), order.quantity))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let loaded = Loader::new().file("examples/secure_service.toml").load()?;
    let config = loaded.config();
    let auditor = config.audit.as_ref().ok_or("no [audit] table")?.start()?;
    let lockout = Lockout::memory(config.auth.lockout())?.with_auditor(auditor.clone());
    let app = Router::new()
        .route("/orders", post(create).layer(RequireLayer::new(require("orders:write"))))
        .layer(
            ServiceBuilder::new()
                .layer(RequestIdLayer)
                .layer(RenderErrorsLayer::new(ErrorHandler::new(config.error_format)))
                .layer(ClientIpLayer::new(config.proxy.clone()))
                .layer(AuthLayer::new(Authenticator::new(&config.auth)?).lockout(Arc::new(lockout)))
                .layer(RateLimitLayer::from_settings(&config.rate_limit)?)
                .layer(Extension(auditor)),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://127.0.0.1:3000");
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
