//! `exbrief demo`: every bundle in a fixtures folder through the whole pipeline, in-process,
//! against a temporary SQLite database, printed for a person to read.

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::app::{self, StartError};
use crate::bundle::Bundle;
use crate::config::Config;
use crate::pipeline::SummarizeInput;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Start(#[from] StartError),
    #[error("{path}: {message}")]
    Fixture { path: String, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Runs the demo; returns how many fixtures produced a summary.
pub async fn run(
    mut config: Config,
    fixtures: &Path,
    out: &mut impl Write,
) -> Result<usize, DemoError> {
    let dir = tempfile::tempdir()?;
    config.database.url = format!("sqlite://{}", dir.path().join("demo.db").display());
    // The demo's database is thrown away with its directory; so is its vault key (no key file,
    // no warning about one).
    if config.vault.key.is_none() {
        use base64::Engine;
        let key: [u8; 32] = rand::random();
        config.vault.key = Some(base64::engine::general_purpose::STANDARD.encode(key).into());
    }
    let pipeline = app::pipeline(&config).await?;
    let mut paths: Vec<_> = std::fs::read_dir(fixtures)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    writeln!(
        out,
        "exbrief demo: {} bundles, model: {}\n",
        paths.len(),
        pipeline.llm().describe()
    )?;
    let mut done = 0;
    for path in &paths {
        let fixture_err = |message: String| DemoError::Fixture {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path)?;
        let raw: Value = serde_json::from_str(&text).map_err(|e| fixture_err(e.to_string()))?;
        let bundle = Bundle::from_value(&raw).map_err(|e| fixture_err(e.to_string()))?;
        let input = SummarizeInput {
            raw,
            bundle,
            idempotency_key: None,
            request_id: "demo".to_owned(),
            key_id: None,
            daily_token_budget: None,
            callback: None,
            slot: None,
        };
        let doc = pipeline
            .summarize(input)
            .await
            .map_err(|e| fixture_err(e.to_string()))?;
        print_doc(out, path, &doc)?;
        done += 1;
    }
    pipeline.store().close().await;
    writeln!(
        out,
        "{done} of {} bundles summarised; nothing left this machine unless an LLM is configured.",
        paths.len()
    )?;
    Ok(done)
}

fn print_doc(out: &mut impl Write, path: &Path, doc: &Value) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    writeln!(
        out,
        "━━ {name} ━━ {} ({})",
        s(&doc["event_id"]),
        s(&doc["event_type"])
    )?;
    writeln!(out, "status: {}   id: {}", s(&doc["status"]), s(&doc["id"]))?;
    let impact = &doc["impact_summary"];
    if !impact.is_null() {
        writeln!(
            out,
            "\nIMPACT  {}\n  {}\n  exposure: {}",
            s(&impact["headline"]),
            s(&impact["customer_impact"]),
            s(&impact["financial_exposure_band"])
        )?;
        for o in impact["impacted_orders"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "  - {} for {} promised {}",
                s(&o["order_ref"]),
                o["customer_token"].as_str().unwrap_or("?"),
                o["promised_date"].as_str().unwrap_or("?")
            )?;
        }
    }
    let c = &doc["classification"];
    if !c.is_null() {
        writeln!(
            out,
            "\nCLASSIFICATION  {} · severity {} · priority {} · confidence {}",
            s(&c["category"]),
            s(&c["severity"]),
            c["priority"],
            c["confidence"]
        )?;
        for a in c["recommended_actions"].as_array().into_iter().flatten() {
            writeln!(out, "  - {}", s(a))?;
        }
    }
    let r = &doc["draft_reply"];
    if !r.is_null() {
        writeln!(
            out,
            "\nDRAFT REPLY [{}, {}]  Subject: {}",
            s(&r["language"]),
            s(&r["tone"]),
            s(&r["subject"])
        )?;
        for line in s(&r["body"]).lines() {
            writeln!(out, "  | {line}")?;
        }
    }
    let counts = &doc["redaction"]["counts"];
    let by: Vec<String> = doc["tasks"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(t, v)| format!("{t}={}/{}", s(&v["provider"]), s(&v["prompt_version"])))
        .collect();
    writeln!(
        out,
        "\nredacted before any model saw it: customer_pii {}, pricing {}, hr {} · {}\n",
        counts["customer_pii"],
        counts["pricing"],
        counts["hr"],
        by.join(" ")
    )?;
    Ok(())
}
