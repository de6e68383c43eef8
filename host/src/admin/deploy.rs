//! The component API: list versions, deploy, roll back, change thresholds and samples.
//!
//! Every route needs a token. The operator token reaches every hospital; a hospital
//! token reaches only its own, and a request naming another hospital gets 403. A
//! deploy responds once the new version is live on this instance, and the response
//! reports how long validation and the whole change took.

// The helpers return the refusal itself as the error: one response per request, so the
// size of `Response` in a `Result` costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;

use super::{AppState, Scope, TokenQuery, authorize, unauthorized};
use crate::registry::validate::Sample;
use crate::registry::{ChangeError, HospitalState, Registry};
use crate::runtime::Role;

/// Builds the component API's routes, which accept uploads up to `max_upload_bytes`.
pub(super) fn routes(max_upload_bytes: usize) -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/hospitals", get(list))
        .route("/api/hospitals/{hospital}", get(show))
        .route(
            "/api/hospitals/{hospital}/components/{role}",
            post(deploy).layer(DefaultBodyLimit::max(max_upload_bytes)),
        )
        .route("/api/hospitals/{hospital}/rollback", post(rollback))
        .route("/api/hospitals/{hospital}/thresholds", put(thresholds))
        .route("/api/hospitals/{hospital}/samples", put(samples))
        .route(
            "/api/hospitals/{hospital}/shadow",
            get(shadow_status)
                .post(shadow_start)
                .delete(shadow_stop)
                .layer(DefaultBodyLimit::max(max_upload_bytes)),
        )
        .route(
            "/api/hospitals/{hospital}/shadow/promote",
            post(shadow_promote),
        )
        .route("/api/components/{sha256}", get(component))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

fn change_error(failure: ChangeError) -> Response {
    let status = match &failure {
        ChangeError::UnknownHospital(_) => StatusCode::NOT_FOUND,
        ChangeError::Rejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ChangeError::Conflict(_) => StatusCode::CONFLICT,
        ChangeError::Invalid(_) => StatusCode::BAD_REQUEST,
        ChangeError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, failure.to_string())
}

/// The caller's scope and name, or the response refusing it.
struct Caller {
    scope: Scope,
    name: String,
}

fn caller(app: &AppState, headers: &HeaderMap, query: &TokenQuery) -> Result<Caller, Response> {
    let Some((scope, digest)) = authorize(app, headers, query) else {
        return Err(unauthorized());
    };
    let prefix = &digest[..8];
    let name = match &scope {
        Scope::Operator => format!("operator:{prefix}"),
        Scope::Hospital(id) => format!("hospital:{id}:{prefix}"),
    };
    Ok(Caller { scope, name })
}

impl Caller {
    /// Refuses a hospital token acting on another hospital.
    fn may_act_on(&self, hospital: &str) -> Result<(), Response> {
        match self.scope.hospital() {
            Some(own) if own != hospital => Err(error(
                StatusCode::FORBIDDEN,
                format!(
                    "the token of hospital {own:?} may not read or change hospital {hospital:?}"
                ),
            )),
            _ => Ok(()),
        }
    }
}

fn registry(app: &AppState) -> Result<&Registry, Response> {
    app.registry.as_ref().ok_or_else(|| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "this host runs without a control topic, so components cannot change while it runs",
        )
    })
}

async fn list(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    let caller = match caller(&app, &headers, &query) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let registry = match registry(&app) {
        Ok(registry) => registry,
        Err(response) => return response,
    };
    let states: Vec<HospitalState> = registry
        .states()
        .into_values()
        .filter(|state| {
            caller
                .scope
                .hospital()
                .is_none_or(|own| own == state.hospital)
        })
        .collect();
    Json(states).into_response()
}

async fn show(
    State(app): State<AppState>,
    Path(hospital): Path<String>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    let result = (|| {
        let caller = caller(&app, &headers, &query)?;
        caller.may_act_on(&hospital)?;
        let registry = registry(&app)?;
        registry
            .state(&hospital)
            .ok_or_else(|| change_error(ChangeError::UnknownHospital(hospital.clone())))
    })();
    match result {
        Ok(state) => Json(state).into_response(),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
struct DeployQuery {
    token: Option<String>,
    label: Option<String>,
}

async fn deploy(
    State(app): State<AppState>,
    Path((hospital, role)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<DeployQuery>,
    body: Bytes,
) -> Response {
    let tokens = TokenQuery { token: query.token };
    let prepared = (|| {
        let caller = caller(&app, &headers, &tokens)?;
        caller.may_act_on(&hospital)?;
        let role: Role = role
            .parse()
            .map_err(|message: String| error(StatusCode::NOT_FOUND, message))?;
        Ok((caller, role, registry(&app)?.clone()))
    })();
    let (caller, role, registry) = match prepared {
        Ok(prepared) => prepared,
        Err(response) => return response,
    };
    match registry
        .deploy(&caller.name, &hospital, role, body.to_vec(), query.label)
        .await
    {
        Ok(report) => Json(report).into_response(),
        Err(failure) => change_error(failure),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackRequest {
    role: String,
    /// sha256 to go back to; the previous good version when absent.
    to: Option<String>,
}

async fn rollback(
    State(app): State<AppState>,
    Path(hospital): Path<String>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
    body: Bytes,
) -> Response {
    let prepared = (|| {
        let caller = caller(&app, &headers, &query)?;
        caller.may_act_on(&hospital)?;
        let request: RollbackRequest = serde_json::from_slice(&body).map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                format!("invalid rollback request: {e}: send {{\"role\": \"score\", \"to\": \"<sha256>\"}}"),
            )
        })?;
        let role: Role = request
            .role
            .parse()
            .map_err(|message: String| error(StatusCode::BAD_REQUEST, message))?;
        Ok((caller, role, request.to, registry(&app)?.clone()))
    })();
    let (caller, role, to, registry) = match prepared {
        Ok(prepared) => prepared,
        Err(response) => return response,
    };
    match registry
        .rollback(&caller.name, &hospital, role, to.as_deref())
        .await
    {
        Ok(report) => Json(report).into_response(),
        Err(failure) => change_error(failure),
    }
}

async fn thresholds(
    State(app): State<AppState>,
    Path(hospital): Path<String>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
    body: Bytes,
) -> Response {
    let prepared = (|| {
        let caller = caller(&app, &headers, &query)?;
        caller.may_act_on(&hospital)?;
        let patch: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                format!("invalid JSON: {e}: send an object such as {{\"model_probability\": 0.6}}"),
            )
        })?;
        Ok((caller, patch, registry(&app)?.clone()))
    })();
    let (caller, patch, registry) = match prepared {
        Ok(prepared) => prepared,
        Err(response) => return response,
    };
    match registry
        .set_thresholds(&caller.name, &hospital, patch)
        .await
    {
        Ok(report) => Json(report).into_response(),
        Err(failure) => change_error(failure),
    }
}

async fn samples(
    State(app): State<AppState>,
    Path(hospital): Path<String>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
    body: Bytes,
) -> Response {
    let prepared = (|| {
        let caller = caller(&app, &headers, &query)?;
        caller.may_act_on(&hospital)?;
        let samples: Vec<Sample> = serde_json::from_slice(&body).map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                format!(
                    "invalid samples: {e}: send a list of {{\"payload\": \"...\", \"accept\": true}}"
                ),
            )
        })?;
        Ok((caller, samples, registry(&app)?.clone()))
    })();
    let (caller, samples, registry) = match prepared {
        Ok(prepared) => prepared,
        Err(response) => return response,
    };
    match registry.set_samples(&caller.name, &hospital, samples).await {
        Ok(report) => Json(report).into_response(),
        Err(failure) => change_error(failure),
    }
}

/// Returns the bytes of a component deployed by a hospital the caller may see.
async fn component(
    State(app): State<AppState>,
    Path(sha256): Path<String>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    let result = (|| {
        let caller = caller(&app, &headers, &query)?;
        let registry = registry(&app)?;
        let visible = registry.states().values().any(|state| {
            caller
                .scope
                .hospital()
                .is_none_or(|own| own == state.hospital)
                && state.versions.iter().any(|v| v.sha256 == sha256)
        });
        let not_found = || error(StatusCode::NOT_FOUND, format!("no component {sha256}"));
        if !visible {
            return Err(not_found());
        }
        registry.component_bytes(&sha256).ok_or_else(not_found)
    })();
    match result {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/wasm")], bytes).into_response(),
        Err(response) => response,
    }
}

/// The shadow candidate and how it compares with the active version on this instance.
async fn shadow_status(
    State(app): State<AppState>,
    Path(hospital): Path<String>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    let result = (|| {
        let caller = caller(&app, &headers, &query)?;
        caller.may_act_on(&hospital)?;
        let registry = registry(&app)?;
        let state = registry
            .state(&hospital)
            .ok_or_else(|| change_error(ChangeError::UnknownHospital(hospital.clone())))?;
        Ok(serde_json::json!({
            "hospital": hospital,
            "active_score_sha256": state.active.score,
            "shadow": state.shadow,
            "stats": registry.shadow_stats(&hospital),
            "stats_scope": "this host instance, since the candidate started here",
        }))
    })();
    match result {
        Ok(body) => Json(body).into_response(),
        Err(response) => response,
    }
}

async fn shadow_start(
    State(app): State<AppState>,
    Path(hospital): Path<String>,
    headers: HeaderMap,
    Query(query): Query<DeployQuery>,
    body: Bytes,
) -> Response {
    let tokens = TokenQuery { token: query.token };
    let prepared = (|| {
        let caller = caller(&app, &headers, &tokens)?;
        caller.may_act_on(&hospital)?;
        Ok((caller, registry(&app)?.clone()))
    })();
    let (caller, registry) = match prepared {
        Ok(prepared) => prepared,
        Err(response) => return response,
    };
    match registry
        .start_shadow(&caller.name, &hospital, body.to_vec(), query.label)
        .await
    {
        Ok(report) => Json(report).into_response(),
        Err(failure) => change_error(failure),
    }
}

async fn end_shadow(
    app: AppState,
    hospital: String,
    headers: HeaderMap,
    query: TokenQuery,
    promote: bool,
) -> Response {
    let prepared = (|| {
        let caller = caller(&app, &headers, &query)?;
        caller.may_act_on(&hospital)?;
        Ok((caller, registry(&app)?.clone()))
    })();
    let (caller, registry) = match prepared {
        Ok(prepared) => prepared,
        Err(response) => return response,
    };
    match registry.end_shadow(&caller.name, &hospital, promote).await {
        Ok(report) => Json(report).into_response(),
        Err(failure) => change_error(failure),
    }
}

async fn shadow_stop(
    State(app): State<AppState>,
    Path(hospital): Path<String>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    end_shadow(app, hospital, headers, query, false).await
}

async fn shadow_promote(
    State(app): State<AppState>,
    Path(hospital): Path<String>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    end_shadow(app, hospital, headers, query, true).await
}
