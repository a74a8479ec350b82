//! `GET /metrics` in Prometheus' text format: review figures, outbox and review gauges read from
//! the database at scrape time, configured limits, and what `crate::metrics` recorded (requests,
//! model calls and tokens, retries, fallbacks, redactions, rate-limit refusals).

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

use crate::metrics::label_value as label;

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics (scope admin)",
    responses((status = 200, description = "Text exposition format", content_type = "text/plain"), (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The key lacks the scope", body = Problem, content_type = "application/problem+json"), (status = 429, description = "Rate limit", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []), ("api_key" = []))
)]
async fn metrics(State(state): State<AppState>) -> Response {
    let rows = match state.pipeline.store().decisions().await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "metrics: cannot read review decisions");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let mut decided: std::collections::BTreeMap<(String, String), u64> = Default::default();
    let mut cycle: std::collections::BTreeMap<String, (f64, u64)> = Default::default();
    let mut edits: std::collections::BTreeMap<String, (f64, u64)> = Default::default();
    for r in &rows {
        let version = r
            .prompt_version
            .clone()
            .unwrap_or_else(|| "none".to_owned());
        *decided
            .entry((r.decision.clone(), version.clone()))
            .or_default() += 1;
        let c = cycle.entry(r.event_type.clone()).or_default();
        c.0 += (r.decided_at - r.created_at).as_seconds_f64();
        c.1 += 1;
        if let Some(d) = r.edit_distance {
            let e = edits.entry(version).or_default();
            e.0 += d as f64;
            e.1 += 1;
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP exbrief_review_decisions_total Review decisions by outcome and customer-reply prompt version."
    );
    let _ = writeln!(out, "# TYPE exbrief_review_decisions_total counter");
    for ((decision, version), n) in &decided {
        let _ = writeln!(
            out,
            "exbrief_review_decisions_total{{decision=\"{}\",prompt_version=\"{}\"}} {n}",
            label(decision),
            label(version)
        );
    }
    let _ = writeln!(
        out,
        "# HELP exbrief_review_cycle_seconds Time from summary to decision, by event type."
    );
    let _ = writeln!(out, "# TYPE exbrief_review_cycle_seconds summary");
    for (event_type, (sum, count)) in &cycle {
        let t = label(event_type);
        let _ = writeln!(
            out,
            "exbrief_review_cycle_seconds_sum{{event_type=\"{t}\"}} {sum}"
        );
        let _ = writeln!(
            out,
            "exbrief_review_cycle_seconds_count{{event_type=\"{t}\"}} {count}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP exbrief_review_edit_distance_chars Characters changed between draft and approved reply, by prompt version."
    );
    let _ = writeln!(out, "# TYPE exbrief_review_edit_distance_chars summary");
    for (version, (sum, count)) in &edits {
        let v = label(version);
        let _ = writeln!(
            out,
            "exbrief_review_edit_distance_chars_sum{{prompt_version=\"{v}\"}} {sum}"
        );
        let _ = writeln!(
            out,
            "exbrief_review_edit_distance_chars_count{{prompt_version=\"{v}\"}} {count}"
        );
    }
    let store = state.pipeline.store();
    match (store.review_overview().await, store.outbox_stats().await) {
        (Ok((reviews, _)), Ok(outbox)) => {
            let _ = writeln!(out, "# HELP exbrief_reviews Summaries by review status.");
            let _ = writeln!(out, "# TYPE exbrief_reviews gauge");
            for (status, n) in &reviews {
                let _ = writeln!(out, "exbrief_reviews{{status=\"{}\"}} {n}", label(status));
            }
            let _ = writeln!(
                out,
                "# HELP exbrief_outbox_rows Odoo outbox rows by status (pending is the depth; dead need `exbrief outbox retry`)."
            );
            let _ = writeln!(out, "# TYPE exbrief_outbox_rows gauge");
            for (status, n, _) in &outbox {
                let _ = writeln!(
                    out,
                    "exbrief_outbox_rows{{status=\"{}\"}} {n}",
                    label(status)
                );
            }
            let _ = writeln!(
                out,
                "# HELP exbrief_outbox_attempts Delivery attempts made so far, by row status (attempts beyond the first are retries)."
            );
            let _ = writeln!(out, "# TYPE exbrief_outbox_attempts gauge");
            for (status, _, attempts) in &outbox {
                let _ = writeln!(
                    out,
                    "exbrief_outbox_attempts{{status=\"{}\"}} {attempts}",
                    label(status)
                );
            }
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "metrics: cannot read review or outbox figures");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    }
    let l = &state.limits;
    let _ = writeln!(out, "# HELP exbrief_limit Configured limits (0: none).");
    let _ = writeln!(out, "# TYPE exbrief_limit gauge");
    for (name, v) in [
        ("requests_per_minute", u64::from(l.requests_per_minute)),
        ("burst", u64::from(l.burst)),
        (
            "model_tokens_per_minute",
            u64::from(l.model_tokens_per_minute),
        ),
        ("daily_token_budget", l.daily_token_budget),
        ("max_messages", l.max_messages as u64),
        ("max_fact_values", l.max_fact_values as u64),
        ("max_string_chars", l.max_string_chars as u64),
        (
            "max_concurrent_model_calls",
            state.max_concurrent_model_calls as u64,
        ),
        (
            "max_summaries_in_progress",
            l.max_summaries_in_progress as u64,
        ),
    ] {
        let _ = writeln!(out, "exbrief_limit{{name=\"{name}\"}} {v}");
    }
    let (making, waiting) = state.pipeline.load();
    let _ = writeln!(
        out,
        "# HELP exbrief_summaries_in_progress Summaries being made now.\n\
         # TYPE exbrief_summaries_in_progress gauge\n\
         exbrief_summaries_in_progress {making}\n\
         # HELP exbrief_summaries_waiting Summarize requests waiting for their turn (limits.max_summaries_in_progress).\n\
         # TYPE exbrief_summaries_waiting gauge\n\
         exbrief_summaries_waiting {waiting}"
    );
    crate::metrics::render(&mut out);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
