//! The admin HTTP server: health, readiness, Prometheus metrics and the live dashboard.
//!
//! It listens on 127.0.0.1 by default. `/healthz` and `/readyz` are open, for
//! orchestrators; `/metrics` carries no patient data and is open too. The dashboard shows
//! patient data, so it and its API need a token: the operator token sees every hospital,
//! a hospital token only its own. Tokens are kept as sha256 digests and never logged.

mod auth;
mod deploy;
pub mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::Stream;
use futures::StreamExt;
use serde::Deserialize;
use tokio_stream::wrappers::BroadcastStream;

pub use auth::{Scope, TokenStore, digest};

use crate::registry::Registry;
use crate::telemetry::Telemetry;

/// The dashboard page, served as is; it reads `/api/state` and `/api/events`.
const DASHBOARD_HTML: &str = include_str!("dashboard.html");

#[derive(Clone)]
struct AppState {
    telemetry: Arc<Telemetry>,
    tokens: Arc<TokenStore>,
    registry: Option<Registry>,
}

/// Builds the router. The component API responds only when a `registry` is given.
pub fn router(
    telemetry: Arc<Telemetry>,
    tokens: Arc<TokenStore>,
    registry: Option<Registry>,
) -> Router {
    let max_upload = registry.as_ref().map_or(1 << 20, |registry| {
        registry.config().max_component_bytes + (1 << 20)
    });
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/", get(|| async { Html(DASHBOARD_HTML) }))
        .route("/api/state", get(state))
        .route("/api/events", get(events))
        .merge(deploy::routes(max_upload))
        .with_state(AppState {
            telemetry,
            tokens,
            registry,
        })
}

/// Binds `listen` and serves plain HTTP until the task is dropped; returns the bound address.
///
/// # Errors
///
/// Fails when the address cannot be bound, naming it.
pub async fn serve(
    listen: SocketAddr,
    telemetry: Arc<Telemetry>,
    tokens: Arc<TokenStore>,
    registry: Option<Registry>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    serve_with_tls(listen, None, telemetry, tokens, registry).await
}

/// Binds `listen` and serves HTTPS with `tls`, or plain HTTP without it, until the task is
/// dropped; returns the bound address.
///
/// # Errors
///
/// Fails when the address cannot be bound, naming it.
pub async fn serve_with_tls(
    listen: SocketAddr,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    telemetry: Arc<Telemetry>,
    tokens: Arc<TokenStore>,
    registry: Option<Registry>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| {
            anyhow::anyhow!(
                "failed to bind the admin server to {listen}: {error}: choose another with --listen"
            )
        })?;
    let address = listener.local_addr()?;
    let app = router(telemetry, tokens, registry);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let task = match tls {
        Some(config) => tokio::spawn(tls::accept_loop(listener, config, app)),
        None => tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "admin server stopped");
            }
        }),
    };
    tracing::info!(scheme, %address, "admin server listening");
    Ok((address, task))
}

async fn readyz(State(app): State<AppState>) -> Response {
    let consuming = app.telemetry.is_consuming();
    let components = app.telemetry.components_loaded();
    // A failing metrics store degrades the host but does not make it unready: scoring and
    // Kafka outputs go on, and the sink drops and counts what it cannot keep.
    let influx = app.telemetry.influx().map(|sink| sink.counters());
    let body = serde_json::json!({
        "consuming": consuming,
        "components_loaded": components,
        "influxdb": influx,
    });
    let status = if consuming && components {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(app): State<AppState>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    (
        [(header::CONTENT_TYPE, content_type)],
        app.telemetry.metrics.render(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Finds the scope and digest of the request's token; `None` means 401.
fn authorize(app: &AppState, headers: &HeaderMap, query: &TokenQuery) -> Option<(Scope, String)> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            // The scheme name is case-insensitive in HTTP.
            let (scheme, token) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then_some(token.trim())
        });
    let token = bearer.or(query.token.as_deref())?;
    let scope = app.tokens.scope_of(token)?;
    Some((scope, digest(token)))
}

fn unauthorized() -> Response {
    let message = "missing or invalid token: open the URL that `cardiowatch up` printed, \
                   or send `Authorization: Bearer <token>`\n";
    (StatusCode::UNAUTHORIZED, message).into_response()
}

async fn state(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    let Some((scope, _)) = authorize(&app, &headers, &query) else {
        return unauthorized();
    };
    let counters = app.telemetry.stats.snapshot();
    Json(app.telemetry.dashboard.snapshot(scope.hospital(), counters)).into_response()
}

async fn events(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    let Some((scope, _)) = authorize(&app, &headers, &query) else {
        return unauthorized();
    };
    Sse::new(event_stream(&app, scope))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn event_stream(
    app: &AppState,
    scope: Scope,
) -> impl Stream<Item = Result<Event, Infallible>> + use<> {
    BroadcastStream::new(app.telemetry.dashboard.subscribe()).filter_map(move |event| {
        let scope = scope.clone();
        async move {
            let event = event.ok()?;
            if scope
                .hospital()
                .is_some_and(|only| only != event.hospital())
            {
                return None;
            }
            let data = serde_json::to_string(&event).ok()?;
            Some(Ok(Event::default().data(data)))
        }
    })
}
