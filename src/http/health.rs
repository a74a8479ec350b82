//! Liveness (`/healthz`: the server accepts requests) and readiness (`/readyz`: storage answers).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let store = state.pipeline.store();
    match store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(
                json!({"status": "ready", "database": store.backend(), "llm": state.pipeline.llm().describe()}),
            ),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "database": store.backend()})),
            )
        }
    }
}
