//! RFC 9457 `application/problem+json` errors: a stable `type` per kind, a human `title`, and a
//! `detail` naming the field or limit. Internal errors are logged, never echoed.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::pipeline::PipelineError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem: `type` is `urn:exbrief:problem:<slug>` (the slugs are listed in the
/// API description).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// The JSON path of the offending field, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip)]
    retry_after: Option<u64>,
}

/// 422 `invalid-query`: a query parameter of a list or export route.
pub fn bad_query(field: &str, detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-query",
        "A query parameter is invalid",
        detail,
    )
    .with_field(field)
}

impl Problem {
    pub fn new(
        status: StatusCode,
        slug: &str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind: format!("urn:exbrief:problem:{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn malformed_json(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "The body is not valid JSON",
            detail,
        )
    }

    pub fn invalid_bundle(field: &str, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-bundle",
            "The exception bundle is invalid",
            detail,
        )
        .with_field(field)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn storage_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage-unavailable",
            "Storage unavailable",
            "the database did not answer; nothing was written, retry",
        )
        .with_retry_after(2)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the error was logged; retrying with the same event_id is safe",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

impl From<PipelineError> for Problem {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::Conflict { .. } => Problem::new(
                StatusCode::CONFLICT,
                "idempotency-conflict",
                "This event was already submitted with a different body",
                format!("{e}; send a new event_id (or Idempotency-Key) for a different bundle"),
            ),
            PipelineError::Prompt(p @ crate::prompts::PromptError::UnknownVersion { .. }) => {
                Problem::invalid_bundle("prompt_versions", p.to_string())
            }
            PipelineError::Policy(p @ crate::redact::PolicyError::Unknown(..)) => {
                Problem::invalid_bundle("policy", p.to_string())
            }
            PipelineError::Policy(p) => {
                tracing::error!(error = %p, "policy error");
                Problem::internal()
            }
            PipelineError::Prompt(p) => {
                tracing::error!(error = %p, "prompt rendering failed");
                Problem::internal()
            }
            PipelineError::ModelUnavailable(_) => {
                // The reason can quote model output; the prompt log has it, the log line must not.
                tracing::warn!("answering 503: model unavailable");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "model-unavailable",
                    "The language model is unavailable",
                    "the model gave no valid answer after retries; retry later with the same event_id",
                )
                .with_retry_after(30)
            }
            PipelineError::BudgetExhausted { .. } => {
                let now = time::OffsetDateTime::now_utc();
                let midnight = (now.date() + time::Duration::days(1))
                    .midnight()
                    .assume_utc();
                Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "budget-exhausted",
                    "The key's daily token budget is spent",
                    format!("{e}; it renews at 00:00 UTC. Stored summaries are still returned."),
                )
                .with_retry_after((midnight - now).whole_seconds().max(1) as u64)
            }
            PipelineError::StillProcessing { .. } => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "still-processing",
                "This event is still being processed",
                format!("{e}; retry later with the same event_id to receive the result"),
            )
            .with_retry_after(5),
            PipelineError::Store(err) => {
                tracing::error!(error = %err, "storage error");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage-unavailable",
                    "Storage is unavailable",
                    "nothing was stored; retry with the same event_id",
                )
                .with_retry_after(5)
            }
            PipelineError::Internal(err) => {
                tracing::error!(error = %err, "internal error");
                Problem::internal()
            }
        }
    }
}
