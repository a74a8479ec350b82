//! The review API: the queue (`GET /v1/reviews`), one draft (`GET /v1/reviews/{id}`), the
//! decision (`POST /v1/reviews/{id}/decision`) and the quality figures (`GET /v1/reviews/stats`).

use axum::body::Bytes;
use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, Problem, body};
use crate::review::{self, DecisionInput, ReviewError, Verdict};
use crate::store::QueueFilter;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(stats))
        .routes(routes!(one))
        .routes(routes!(decision))
}

use super::problem::bad_query;

fn review_problem(e: ReviewError) -> Problem {
    match e {
        ReviewError::NotFound => Problem::not_found("no summary has this id"),
        e @ ReviewError::Conflict { .. } => Problem::new(
            StatusCode::CONFLICT,
            "review-conflict",
            "The draft was already decided",
            e.to_string(),
        ),
        ReviewError::Invalid { field, message } => invalid(field, message),
        ReviewError::Store(e) => {
            tracing::error!(error = %e, "review storage failed");
            Problem::internal()
        }
    }
}

/// `GET /v1/reviews?status=&event_type=&severity=&cursor=&limit=`: oldest first.
#[utoipa::path(
    get,
    path = "/v1/reviews",
    tag = "reviews",
    summary = "The review queue, oldest first (scope review)",
    params(("status" = Option<String>, Query, description = "pending_review, approved or rejected"), ("event_type" = Option<String>, Query), ("severity" = Option<String>, Query, description = "low, medium, high or critical"), ("cursor" = Option<String>, Query), ("limit" = Option<i64>, Query, description = "1 to 200")),
    responses((status = 200, description = "A page of the queue and the next cursor", body = Object), (status = 422, description = "Invalid query parameter", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The key lacks the scope", body = Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limit", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("api_key" = []))
)]
async fn list(
    State(state): State<AppState>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let Query(q) = query.map_err(|e| bad_query("(query)", e.body_text()))?;
    let mut filter = QueueFilter {
        limit: 50,
        ..QueueFilter::default()
    };
    for (k, v) in q {
        match k.as_str() {
            "status" if ["pending_review", "approved", "rejected"].contains(&v.as_str()) => {
                filter.status = Some(v)
            }
            "status" => return Err(bad_query("status", "pending_review, approved or rejected")),
            "severity" if ["low", "medium", "high", "critical"].contains(&v.as_str()) => {
                filter.severity = Some(v)
            }
            "severity" => return Err(bad_query("severity", "low, medium, high or critical")),
            "event_type" if !v.is_empty() && v.len() <= 64 => filter.event_type = Some(v),
            "event_type" => return Err(bad_query("event_type", "1 to 64 characters")),
            "cursor" => {
                let id = uuid::Uuid::parse_str(&v)
                    .map_err(|_| bad_query("cursor", "not a cursor this API returned"))?;
                filter.after = Some(id);
            }
            "limit" => {
                filter.limit = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=200).contains(n))
                    .ok_or_else(|| bad_query("limit", "an integer from 1 to 200"))?;
            }
            other => {
                return Err(bad_query(
                    other,
                    format!("unknown query parameter `{other}`"),
                ));
            }
        }
    }
    review::queue(state.pipeline.store(), state.pipeline.vault(), filter)
        .await
        .map(Json)
        .map_err(review_problem)
}

#[utoipa::path(
    get,
    path = "/v1/reviews/{id}",
    tag = "reviews",
    summary = "One draft with key facts, findings, versions, decision and Odoo ids (scope review)",
    params(("id" = String, Path)),
    responses((status = 200, description = "The draft", body = Object), (status = 404, description = "No such summary", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The key lacks the scope", body = Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limit", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("api_key" = []))
)]
async fn one(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, Problem> {
    let Some(id) = id.ok().and_then(|Path(id)| uuid::Uuid::parse_str(&id).ok()) else {
        return Err(Problem::not_found("no summary has this id"));
    };
    review::detail(state.pipeline.store(), state.pipeline.vault(), id)
        .await
        .map(Json)
        .map_err(review_problem)
}

#[utoipa::path(
    get,
    path = "/v1/reviews/stats",
    tag = "reviews",
    summary = "Review quality figures (scope review)",
    responses((status = 200, description = "Cycle times, approval and edit figures", body = Object), (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The key lacks the scope", body = Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limit", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("api_key" = []))
)]
async fn stats(State(state): State<AppState>) -> Result<Json<Value>, Problem> {
    review::stats(state.pipeline.store())
        .await
        .map(Json)
        .map_err(review_problem)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DecisionRequest {
    /// `approve` or `reject`.
    decision: String,
    reviewer: String,
    #[serde(default)]
    reply: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    comment: Option<String>,
}

fn invalid(field: &str, detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-decision",
        "The decision is invalid",
        detail,
    )
    .with_field(field)
}

#[utoipa::path(
    post,
    path = "/v1/reviews/{id}/decision",
    tag = "reviews",
    summary = "Approve (with edits) or reject (with a reason), once (scope review)",
    params(("id" = String, Path)),
    request_body(content = DecisionRequest, content_type = "application/json"),
    responses((status = 200, description = "The decision", body = Object), (status = 404, description = "No such summary", body = Problem, content_type = "application/problem+json"), (status = 409, description = "Already decided", body = Problem, content_type = "application/problem+json"), (status = 422, description = "Invalid decision", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The key lacks the scope", body = Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limit", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("api_key" = []))
)]
async fn decision(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Problem> {
    let Some(id) = id.ok().and_then(|Path(id)| uuid::Uuid::parse_str(&id).ok()) else {
        return Err(Problem::not_found("no summary has this id"));
    };
    let raw = body::json(&headers, body, state.max_json_depth)?;
    let req: DecisionRequest = serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        invalid(&path, e.into_inner().to_string())
    })?;
    let verdict = match req.decision.as_str() {
        "approve" => Verdict::Approve,
        "reject" => Verdict::Reject,
        other => {
            return Err(invalid(
                "decision",
                format!("`{other}` is not approve or reject"),
            ));
        }
    };
    let input = DecisionInput {
        verdict,
        reviewer: req.reviewer,
        reply: req.reply,
        subject: req.subject,
        comment: req.comment,
    };
    review::decide(&state.pipeline, id, input)
        .await
        .map(Json)
        .map_err(review_problem)
}
