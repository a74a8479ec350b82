//! Fills a database's audit chain with N prompt-log rows for the export benchmark
//! (`bench/audit-export.sh`): the rows the offline pipeline writes for every fixture, copied
//! with fresh ids until N rows exist, chained as the service chains them.
//!
//!   cargo run --release --example seed_audit -- sqlite://bench.db 100000

use std::sync::Arc;

use exbrief::bundle::Bundle;
use exbrief::config::Config;
use exbrief::pipeline::SummarizeInput;
use exbrief::store::{AuditFilter, NewPromptLog, json_text};
use uuid::Uuid;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "sqlite://bench-audit.db".to_owned());
    let rows: usize = args
        .next()
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100_000);
    let mut config = Config::load(None)?;
    config.database.url = url;
    let pipeline: Arc<_> = exbrief::app::pipeline(&config).await?;
    let store = pipeline.store().clone();
    // Real rows first: every fixture through the offline pipeline.
    let mut paths: Vec<_> = std::fs::read_dir("fixtures")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for (i, p) in paths.iter().enumerate() {
        let mut raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p)?)?;
        raw["event_id"] = serde_json::json!(format!("seed-{i}-{}", Uuid::now_v7()));
        let bundle: Bundle = serde_json::from_value(raw.clone())?;
        pipeline
            .summarize(SummarizeInput {
                raw,
                bundle,
                idempotency_key: None,
                request_id: format!("seed-{i}"),
                key_id: Some("bench".to_owned()),
                daily_token_budget: None,
                callback: None,
                slot: None,
            })
            .await?;
    }
    let templates = store
        .audit_page(&AuditFilter {
            kind: Some("model_call".to_owned()),
            limit: 1000,
            ..AuditFilter::default()
        })
        .await?;
    anyhow::ensure!(
        !templates.is_empty(),
        "the pipeline wrote no prompt-log rows"
    );
    let mut written = templates.len();
    let mut batch = Vec::with_capacity(1000);
    while written < rows {
        let t = &templates[written % templates.len()];
        batch.push(NewPromptLog {
            id: Uuid::now_v7(),
            created_at: exbrief::store::now(),
            request_id: format!("seed-{written}"),
            key_id: t.key_id.clone(),
            summary_id: Uuid::now_v7(),
            event_id: format!("seed-event-{}", written / 3),
            event_type: t.event_type.clone().unwrap_or_default(),
            task: t.task.clone().unwrap_or_default(),
            attempt_kind: t.attempt_kind.clone().unwrap_or_default(),
            template_version: t.template_version.clone().unwrap_or_default(),
            template_sha256: t.template_sha256.clone().unwrap_or_default(),
            policy_version: t.policy_version.clone().unwrap_or_default(),
            policy_sha256: t.policy_sha256.clone().unwrap_or_default(),
            provider: t.provider.clone().unwrap_or_default(),
            model: t.model.clone().unwrap_or_default(),
            parameters: json_text(&t.parameters.as_ref().map(|j| &j.0)),
            messages: json_text(&t.messages.as_ref().map(|j| &j.0)),
            raw_response: t.raw_response.as_ref().map(|j| json_text(&j.0)),
            parsed_output: t.parsed_output.as_ref().map(|j| json_text(&j.0)),
            prompt_tokens: t.prompt_tokens,
            completion_tokens: t.completion_tokens,
            total_tokens: t.total_tokens,
            latency_ms: t.latency_ms.unwrap_or(0),
            outcome: t.outcome.clone().unwrap_or_default(),
            error: t.error.clone(),
            redaction_counts: json_text(&t.redaction_counts.as_ref().map(|j| &j.0)),
        });
        written += 1;
        if batch.len() == 1000 || written == rows {
            store.append_logs(&batch).await?;
            batch.clear();
        }
    }
    let avg: usize = templates
        .iter()
        .map(|t| t.to_json().to_string().len())
        .sum::<usize>()
        / templates.len();
    println!("{written} prompt-log rows (about {avg} bytes of JSON each)");
    store.close().await;
    Ok(())
}
