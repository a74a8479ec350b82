//! The HTTP surface: router, request ids, body limits, problem+json errors.

mod audit;
pub mod auth;
mod body;
mod health;
mod metrics;
mod openapi;
pub mod pages;
mod problem;
mod redact;
mod reviews;
mod summaries;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

pub use problem::{PROBLEM_JSON, Problem};

use crate::keys::Scope;
use crate::pipeline::Pipeline;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    pub max_json_depth: usize,
    /// The review pages, when `review.secret` is set.
    pub pages: Option<Arc<pages::Pages>>,
    pub auth: Arc<auth::Auth>,
    pub limits: crate::config::LimitsConfig,
    pub max_concurrent_model_calls: usize,
    /// Past this an answer is 503 `request-timeout`; a summary being made still completes.
    pub request_timeout: std::time::Duration,
    /// The OpenAPI document, set once the router is built (it is made from the router).
    pub openapi: Arc<std::sync::OnceLock<serde_json::Value>>,
}

/// The request id of the current request (accepted from `X-Request-Id` or generated).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    // Each group's routes need one scope; unknown paths stay 404 without a key.
    let scoped = |r: OpenApiRouter<AppState>, scope: Scope| {
        r.route_layer(middleware::from_fn_with_state(
            (state.clone(), scope),
            auth::require,
        ))
    };
    // Every route goes through a documenting router, so the document lists them all.
    let (router, api) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(health::router())
        .merge(openapi::router())
        .merge(scoped(summaries::router(), Scope::Summarize))
        .merge(scoped(redact::router(), Scope::Summarize))
        .merge(scoped(reviews::router(), Scope::Review))
        .merge(pages::router())
        .merge(scoped(metrics::router(), Scope::Admin))
        .merge(scoped(audit::router(), Scope::Audit))
        .split_for_parts();
    let _ = state
        .openapi
        .set(serde_json::to_value(&api).unwrap_or_default());
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn_with_state(
            state.request_timeout,
            request_timeout,
        ))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

async fn not_found(method: Method) -> Problem {
    Problem::not_found(format!("no route for this {method} request"))
}

async fn method_not_allowed(method: Method) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        format!("{method} is not allowed on this path"),
    )
}

/// Bounds every request in time. Summaries run in their own task, so one cut off here still
/// completes and is stored; the retry with the same event_id receives it.
async fn request_timeout(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    req: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "request-timeout",
            "The request took too long",
            format!(
                "no answer within {} s (server.request_timeout_secs and a margin); a summary being made still completes: retry with the same event_id",
                limit.as_secs()
            ),
        )
        .with_retry_after(5)
        .into_response(),
    }
}

/// The route template of a path for metric labels: ids become `{id}`, and paths no route
/// answered are one label, so clients cannot grow the label set.
fn route_label(path: &str, status: StatusCode) -> String {
    if matches!(
        status,
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
    ) || path.len() > 200
    {
        return "unmatched".to_owned();
    }
    path.split('/')
        .map(|seg| {
            let looks_like_id = seg.len() >= 8 && seg.bytes().any(|b| b.is_ascii_digit())
                || uuid::Uuid::parse_str(seg).is_ok();
            if looks_like_id { "{id}" } else { seg }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Accepts a sane `X-Request-Id` or makes one, echoes it, and logs one line per request
/// (method, path, status, latency — never bodies).
async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut response = next.run(req).instrument(span.clone()).await;
    let route = route_label(&path, response.status());
    let status = response.status().as_u16().to_string();
    crate::metrics::count(
        "exbrief_http_requests_total",
        &[
            ("route", &route),
            ("method", method.as_str()),
            ("status", &status),
        ],
        1.0,
    );
    crate::metrics::observe(
        "exbrief_http_request_duration_seconds",
        &[("route", &route)],
        started.elapsed().as_secs_f64(),
    );
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_millis() as u64,
            "request done"
        );
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    response
}
