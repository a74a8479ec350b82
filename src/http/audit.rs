//! The compliance API over the audit chain: `GET /v1/audit/prompts` (filters, cursor),
//! `GET /v1/audit/prompts/{id}`, `GET /v1/audit/export?format=jsonl|csv&from=&to=` (streamed)
//! and `GET /v1/audit/verify`. Every call is itself recorded in the chain before it answers.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, Problem, RequestId};
use crate::audit::{self, Format};
use crate::keys::Caller;
use crate::store::{AuditFilter, StoreError};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(one))
        .routes(routes!(export))
        .routes(routes!(verify))
}

use super::problem::bad_query;

fn storage(e: StoreError) -> Problem {
    tracing::error!(error = %e, "audit storage failed");
    Problem::internal()
}

fn time_param(field: &str, v: &str) -> Result<OffsetDateTime, Problem> {
    OffsetDateTime::parse(v, &Rfc3339)
        .map_err(|_| bad_query(field, "an RFC 3339 time such as 2026-11-27T00:00:00Z"))
}

fn text_param(field: &str, v: String) -> Result<Option<String>, Problem> {
    if v.is_empty() || v.len() > 128 || v.chars().any(char::is_control) {
        return Err(bad_query(field, "1 to 128 printable characters"));
    }
    Ok(Some(v))
}

/// Parses the filters; `allowed` names the parameters this route takes.
fn filter(q: BTreeMap<String, String>, allowed: &[&str]) -> Result<AuditFilter, Problem> {
    let mut f = AuditFilter {
        limit: 50,
        ..AuditFilter::default()
    };
    for (k, v) in q {
        if !allowed.contains(&k.as_str()) {
            return Err(bad_query(&k, format!("unknown query parameter `{k}`")));
        }
        match k.as_str() {
            "from" => f.from = Some(time_param("from", &v)?),
            "to" => f.to = Some(time_param("to", &v)?),
            "kind" if ["model_call", "access", "checkpoint"].contains(&v.as_str()) => {
                f.kind = Some(v)
            }
            "kind" => return Err(bad_query("kind", "model_call, access or checkpoint")),
            "event_type" => f.event_type = text_param("event_type", v)?,
            "task" => f.task = text_param("task", v)?,
            "template_version" => f.template_version = text_param("template_version", v)?,
            "model" => f.model = text_param("model", v)?,
            "key_id" => f.key_id = text_param("key_id", v)?,
            "outcome" => f.outcome = text_param("outcome", v)?,
            "summary_id" => {
                f.summary_id =
                    Some(uuid::Uuid::parse_str(&v).map_err(|_| bad_query("summary_id", "a UUID"))?)
            }
            "cursor" => {
                f.after_seq = Some(
                    v.parse::<i64>()
                        .ok()
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| bad_query("cursor", "not a cursor this API returned"))?,
                )
            }
            "limit" => {
                f.limit = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=500).contains(n))
                    .ok_or_else(|| bad_query("limit", "an integer from 1 to 500"))?
            }
            _ => {}
        }
    }
    if let (Some(from), Some(to)) = (f.from, f.to)
        && from >= to
    {
        return Err(bad_query("to", "must be after `from`"));
    }
    Ok(f)
}

fn parameters(q: &BTreeMap<String, String>) -> Value {
    json!(q)
}

/// `GET /v1/audit/prompts`: model calls by default (`kind=` for access records and
/// checkpoints), in chain order, `limit` per page, `next_cursor` while more remain.
#[utoipa::path(
    get,
    path = "/v1/audit/prompts",
    tag = "audit",
    summary = "The prompt log in chain order (scope audit)",
    params(("from" = Option<String>, Query, description = "RFC 3339"), ("to" = Option<String>, Query, description = "RFC 3339, exclusive"), ("kind" = Option<String>, Query, description = "model_call (default), access or checkpoint"), ("event_type" = Option<String>, Query), ("task" = Option<String>, Query), ("template_version" = Option<String>, Query), ("model" = Option<String>, Query), ("key_id" = Option<String>, Query), ("outcome" = Option<String>, Query), ("summary_id" = Option<String>, Query), ("cursor" = Option<String>, Query), ("limit" = Option<i64>, Query, description = "1 to 500")),
    responses((status = 200, description = "Rows and the next cursor", body = Object), (status = 422, description = "Invalid query parameter", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The key lacks the scope", body = Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limit", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("api_key" = []))
)]
async fn list(
    State(state): State<AppState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let Query(q) = query.map_err(|e| bad_query("(query)", e.body_text()))?;
    let params = parameters(&q);
    let mut f = filter(
        q,
        &[
            "from",
            "to",
            "kind",
            "event_type",
            "task",
            "template_version",
            "model",
            "key_id",
            "outcome",
            "summary_id",
            "cursor",
            "limit",
        ],
    )?;
    f.kind.get_or_insert_with(|| "model_call".to_owned());
    let store = state.pipeline.store();
    audit::record_access(
        store,
        &request_id,
        caller.key_id.as_deref(),
        &caller.actor(),
        "list",
        params,
    )
    .await
    .map_err(storage)?;
    let limit = f.limit;
    f.limit += 1;
    let mut rows = store.audit_page(&f).await.map_err(storage)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next = more
        .then(|| rows.last().map(|r| r.seq.to_string()))
        .flatten();
    Ok(Json(json!({
        "items": rows.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

#[utoipa::path(
    get,
    path = "/v1/audit/prompts/{id}",
    tag = "audit",
    summary = "One prompt-log row (scope audit)",
    params(("id" = String, Path)),
    responses((status = 200, description = "The row", body = Object), (status = 404, description = "No such row", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The key lacks the scope", body = Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limit", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("api_key" = []))
)]
async fn one(
    State(state): State<AppState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Extension(caller): Extension<Caller>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, Problem> {
    let Some(id) = id.ok().and_then(|Path(id)| uuid::Uuid::parse_str(&id).ok()) else {
        return Err(Problem::not_found("no prompt-log row has this id"));
    };
    let store = state.pipeline.store();
    audit::record_access(
        store,
        &request_id,
        caller.key_id.as_deref(),
        &caller.actor(),
        "get",
        json!({"id": id}),
    )
    .await
    .map_err(storage)?;
    match store.audit_row(id).await.map_err(storage)? {
        Some(row) => Ok(Json(row.to_json())),
        None => Err(Problem::not_found("no prompt-log row has this id")),
    }
}

/// `GET /v1/audit/export?format=jsonl|csv&from=&to=`: every chain row in the range, streamed
/// page by page.
#[utoipa::path(
    get,
    path = "/v1/audit/export",
    tag = "audit",
    summary = "The chain rows of a time range, streamed (scope audit)",
    params(("format" = Option<String>, Query, description = "jsonl (default) or csv"), ("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, description = "JSONL (one row per line); with format=csv, text/csv", content_type = "application/x-ndjson"), (status = 422, description = "Invalid query parameter", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The key lacks the scope", body = Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limit", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("api_key" = []))
)]
async fn export(
    State(state): State<AppState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(mut q) = query.map_err(|e| bad_query("(query)", e.body_text()))?;
    let params = parameters(&q);
    let format = match q.remove("format") {
        None => Format::Jsonl,
        Some(f) => Format::parse(&f).ok_or_else(|| bad_query("format", "jsonl or csv"))?,
    };
    let f = filter(q, &["from", "to"])?;
    let store = state.pipeline.store().clone();
    audit::record_access(
        &store,
        &request_id,
        caller.key_id.as_deref(),
        &caller.actor(),
        "export",
        params,
    )
    .await
    .map_err(storage)?;
    let ext = match format {
        Format::Jsonl => "jsonl",
        Format::Csv => "csv",
    };
    let stream = audit::export(store, format, f.from, f.to);
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"exbrief-audit.{ext}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `GET /v1/audit/verify`: recomputes the whole chain; 200 with `ok: false` and the first
/// break when it does not hold (the check ran; its finding is the answer).
#[utoipa::path(
    get,
    path = "/v1/audit/verify",
    tag = "audit",
    summary = "Recompute the hash chain and name the first row that breaks it (scope audit)",
    responses((status = 200, description = "The report (ok, rows, head hash, first break)", body = Object), (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The key lacks the scope", body = Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limit", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("api_key" = []))
)]
async fn verify(
    State(state): State<AppState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, Problem> {
    let store = state.pipeline.store();
    audit::record_access(
        store,
        &request_id,
        caller.key_id.as_deref(),
        &caller.actor(),
        "verify",
        json!({}),
    )
    .await
    .map_err(storage)?;
    let report = audit::verify(store, state.pipeline.vault())
        .await
        .map_err(storage)?;
    Ok(Json(json!(report)))
}
