//! Liveness (`/healthz`: the server accepts requests) and readiness (`/readyz`: storage answers).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    summary = "Liveness: the server accepts requests",
    responses((status = 200, description = "Alive", body = Object))
)]
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the database answers with every migration applied; also says what is loaded and
/// when Odoo last answered (Odoo being down does not make exbrief unready: the outbox waits).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    summary = "Readiness: database, migrations, what is loaded, last Odoo contact",
    responses((status = 200, description = "Ready", body = Object), (status = 503, description = "Not ready", body = Object))
)]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let p = &state.pipeline;
    let store = p.store();
    let odoo = crate::outbox::last_contact()
        .map(|(at, ok)| json!({"at": crate::store::rfc3339(at), "ok": ok}));
    let loaded = json!({
        "prompt_versions": p.prompts().list().len(),
        "policies": p.policies().names(),
    });
    let (status, database) = match store.pending_migrations().await {
        Ok(0) => (
            StatusCode::OK,
            json!({"backend": store.backend(), "migrations": "applied"}),
        ),
        Ok(n) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"backend": store.backend(), "migrations": format!("{n} pending")}),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"backend": store.backend(), "error": "does not answer"}),
            )
        }
    };
    let ready = status == StatusCode::OK;
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else { "unavailable" },
            "database": database,
            "llm": p.llm().describe(),
            "loaded": loaded,
            "odoo_last_contact": odoo,
        })),
    )
}
