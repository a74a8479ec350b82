//! `POST /v1/summarize` and `GET /v1/summaries/{id}`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::Value;

use super::{AppState, Problem, RequestId, body};
use crate::bundle::EventId;
use crate::keys::Caller;
use crate::pipeline::SummarizeInput;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/summarize", post(summarize))
        .route("/v1/summaries/{id}", get(summary))
}

async fn summarize(
    State(state): State<AppState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Problem> {
    let (raw, mut bundle) = body::bundle(&headers, body, state.max_json_depth)?;
    body::within_limits(&raw, &state.limits)?;
    body::apply_key_policy(&caller, &mut bundle)?;
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let text = v.to_str().map_err(|_| {
                Problem::invalid_bundle("Idempotency-Key", "header must be visible ASCII")
            })?;
            let key = EventId::parse(text).map_err(|m| {
                Problem::invalid_bundle("Idempotency-Key", format!("Idempotency-Key {m}"))
            })?;
            Some(key.as_str().to_owned())
        }
    };
    let input = SummarizeInput {
        raw,
        bundle,
        idempotency_key,
        request_id,
        key_id: caller.key_id.clone(),
        daily_token_budget: (state.limits.daily_token_budget > 0)
            .then_some(state.limits.daily_token_budget),
    };
    let doc = state.pipeline.summarize(input).await?;
    Ok(Json(doc))
}

async fn summary(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, Problem> {
    let Some(uuid) = id.ok().and_then(|Path(id)| uuid::Uuid::parse_str(&id).ok()) else {
        return Err(Problem::not_found("no summary has this id"));
    };
    match state.pipeline.get(uuid).await? {
        Some(doc) => Ok(Json(doc)),
        None => Err(Problem::not_found("no summary has this id")),
    }
}
