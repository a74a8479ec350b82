//! `POST /v1/redact`: a dry run of redaction — what a model would see, and where.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::{Extension, Json};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, Problem, body};
#[allow(unused_imports)]
use crate::bundle::Bundle;
use crate::keys::Caller;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(redact))
}

#[utoipa::path(
    post,
    path = "/v1/redact",
    tag = "summaries",
    summary = "Dry run of redaction: what a model would see, and where values were redacted (scope summarize)",
    request_body(content = Bundle, content_type = "application/json"),
    responses((status = 200, description = "Redacted bundle, counts and findings (never values)", body = Object), (status = 422, description = "Invalid bundle", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The key lacks the scope", body = Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limit", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("api_key" = []))
)]
async fn redact(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Problem> {
    let (mut raw, mut bundle) = body::bundle(&headers, body, state.max_json_depth)?;
    body::within_limits(&raw, &state.limits)?;
    body::apply_key_policy(&caller, &mut bundle)?;
    body::strip_callback(&mut raw);
    let redactor = state
        .pipeline
        .policies()
        .get(bundle.policy.as_deref())
        .map_err(|e| Problem::invalid_bundle("policy", e.to_string()))?;
    let r = redactor.redact(&raw);
    let policy = redactor.policy();
    Ok(Json(json!({
        "policy": policy.name,
        "policy_version": policy.version,
        "policy_sha256": policy.sha256,
        "counts": r.counts,
        "findings": r.findings,
        "bundle": r.value,
    })))
}
