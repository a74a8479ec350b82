//! `POST /v1/redact`: a dry run of redaction — what a model would see, and where.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use super::{AppState, Problem, body};
use crate::keys::Caller;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/redact", post(redact))
}

async fn redact(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Problem> {
    let (raw, mut bundle) = body::bundle(&headers, body, state.max_json_depth)?;
    body::within_limits(&raw, &state.limits)?;
    body::apply_key_policy(&caller, &mut bundle)?;
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
