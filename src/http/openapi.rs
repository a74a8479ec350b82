//! `GET /openapi.json`: the OpenAPI 3.1 document, made from the handlers' annotations as the
//! router is built (utoipa), so a route cannot be served without being described.

use axum::Json;
use axum::extract::State;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, Problem};
use crate::bundle::Bundle;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "exbrief",
        description = "Governed LLM briefs for operational exceptions: summarize, review, audit. Errors are application/problem+json with type urn:exbrief:problem:<slug>: malformed-json, invalid-utf8, too-deep, body-too-large, unsupported-media-type, invalid-bundle, bundle-too-large, invalid-query, callback-not-allowed, callback-unsigned, idempotency-conflict, not-found, method-not-allowed, unauthorized, signature-missing, bad-signature, signature-expired, signature-replayed, forbidden, summary-abandoned (callbacks only), rate-limited, budget-exhausted, review-conflict, model-unavailable, still-processing, storage-unavailable, request-timeout, internal."
    ),
    components(schemas(Problem, Bundle)),
    modifiers(&Security),
    tags(
        (name = "summaries", description = "Exception bundles in, briefs out"),
        (name = "reviews", description = "The review queue and decisions"),
        (name = "audit", description = "The compliance log"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
        (name = "review pages", description = "HTML pages for reviewers"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        c.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))),
        );
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi))
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    summary = "This document",
    responses((status = 200, description = "OpenAPI 3.1", body = Object))
)]
async fn openapi(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.openapi.get().cloned().unwrap_or_default())
}
