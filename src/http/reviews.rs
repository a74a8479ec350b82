//! `POST /v1/reviews/{id}/decision`: approve (with the reply as edited) or reject (with a reason).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::{AppState, Problem, body};
use crate::review::{self, DecisionInput, ReviewError, Verdict};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/reviews/{id}/decision", post(decision))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionRequest {
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
    match review::decide(state.pipeline.store(), id, input).await {
        Ok(v) => Ok(Json(v)),
        Err(ReviewError::NotFound) => Err(Problem::not_found("no summary has this id")),
        Err(e @ ReviewError::Conflict { .. }) => Err(Problem::new(
            StatusCode::CONFLICT,
            "review-conflict",
            "The draft was already decided",
            e.to_string(),
        )),
        Err(ReviewError::Invalid { field, message }) => Err(invalid(field, message)),
        Err(ReviewError::Store(e)) => {
            tracing::error!(error = %e, "storing a review decision failed");
            Err(Problem::internal())
        }
    }
}
