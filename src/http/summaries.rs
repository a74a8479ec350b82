//! `POST /v1/summarize` and `GET /v1/summaries/{id}`.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, Problem, RequestId, body};
#[allow(unused_imports)]
use crate::bundle::Bundle;
use crate::bundle::EventId;
use crate::keys::Caller;
use crate::pipeline::SummarizeInput;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(summarize))
        .routes(routes!(summary))
}

#[utoipa::path(
    post,
    path = "/v1/summarize",
    tag = "summaries",
    summary = "Summarize an exception bundle (scope summarize)",
    request_body(content = Bundle, content_type = "application/json"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Replaces event_id as the idempotency key"), ("X-Exbrief-Signature" = Option<String>, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256> (keys made with --signed)"), ("Prefer" = Option<String>, Header, description = "respond-async: answer 202 at once (also implied by a callback in the bundle)")),
    responses((status = 200, description = "The summary document (stored; a repeat returns the same)", body = Object), (status = 202, description = "Accepted (asynchronous mode): {id, status, location}; Location names the summary; a callback gets the document when it is ready", body = Object), (status = 400, description = "Malformed JSON, invalid UTF-8 or too deep", body = Problem, content_type = "application/problem+json"), (status = 409, description = "Same key, different body", body = Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"), (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid bundle or over a limit", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The key lacks the scope", body = Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limit", body = Problem, content_type = "application/problem+json"), (status = 503, description = "Model unavailable, still processing, storage unavailable or timeout", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("api_key" = []))
)]
async fn summarize(
    State(state): State<AppState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, Problem> {
    // The body is read and parsed only once the summary has its turn: a request waiting in a
    // burst holds its connection, not a parsed bundle.
    let slot = state.pipeline.admit().await;
    let body = Bytes::from_request(request, &state).await;
    let (mut raw, mut bundle) = body::bundle(&headers, body, state.max_json_depth)?;
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
    let callback = match bundle.callback.take() {
        Some(c) => Some(callback_url(&state, &caller, c.url)?),
        None => None,
    };
    body::strip_callback(&mut raw);
    let respond_async = callback.is_some() || prefers_async(&headers);
    let input = SummarizeInput {
        raw,
        bundle,
        idempotency_key,
        request_id,
        key_id: caller.key_id.clone(),
        daily_token_budget: (state.limits.daily_token_budget > 0)
            .then_some(state.limits.daily_token_budget),
        callback,
        slot: Some(slot),
    };
    if !respond_async {
        let doc = state.pipeline.summarize(input).await?;
        return Ok(Json(doc).into_response());
    }
    let submitted = state
        .pipeline
        .submit(input, |e| {
            serde_json::to_value(Problem::from(e)).unwrap_or_default()
        })
        .await?;
    let location = format!("/v1/summaries/{}", submitted.id);
    let status = submitted
        .document
        .as_ref()
        .and_then(|d| d["status"].as_str())
        .unwrap_or("processing")
        .to_owned();
    Ok((
        StatusCode::ACCEPTED,
        [
            (header::LOCATION, location.clone()),
            (
                HeaderName::from_static("preference-applied"),
                "respond-async".to_owned(),
            ),
        ],
        Json(json!({"id": submitted.id, "status": status, "location": location})),
    )
        .into_response())
}

/// `Prefer: respond-async` (RFC 7240), in any of the header's comma-separated preferences.
fn prefers_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("respond-async"))
}

/// A bundle's `callback.url`, once it is under the allow-list and the key can sign for it.
fn callback_url(state: &AppState, caller: &Caller, url: String) -> Result<String, Problem> {
    state.pipeline.webhooks().allow.check(&url).map_err(|m| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "callback-not-allowed",
            "The callback URL is not allowed",
            m,
        )
        .with_field("callback.url")
    })?;
    if caller.webhook_secret.is_none() {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "callback-unsigned",
            "The callback cannot be signed",
            "callbacks are signed with the calling key's signing secret and this key has none: call with a key made by `exbrief keys create --signed`",
        )
        .with_field("callback.url"));
    }
    Ok(url)
}

#[utoipa::path(
    get,
    path = "/v1/summaries/{id}",
    tag = "summaries",
    summary = "One stored summary, restored for the reader (scope summarize)",
    params(("id" = String, Path, description = "Summary id (UUID)")),
    responses((status = 200, description = "The summary document", body = Object), (status = 404, description = "No such summary", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The key lacks the scope", body = Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limit", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("api_key" = []))
)]
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
