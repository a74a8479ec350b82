//! The audit chain: every model call, every access to the log and every retention checkpoint
//! is one `prompt_log` row whose `hash` is sha256 over the previous row's hash and the row's
//! canonical JSON. Verification, queries, exports and retention live here.
//!
//! Concurrent writers: every append reads the head and inserts under one lock — SQLite's single
//! write transaction (`BEGIN IMMEDIATE`, or a write before the head is read), PostgreSQL's
//! transaction-scoped advisory lock shared by every replica — so the chain never forks and
//! `seq` order is chain order.

use axum::body::Bytes;
use futures::Stream;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::{self, AuditFilter, ExportRow, NewAuditEntry, Purge, Store, StoreError};
use crate::vault::Vault;

/// The hash that starts the chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Rows read per database round trip when walking or exporting the chain.
const PAGE: i64 = 500;

/// Rows per chunk of an export. A chunk of 500 rows was about 3 MB of encoded text, and the
/// allocator kept several such freed buffers for a while: the HTTP export's peak RSS was
/// 86–93 MiB (100,000 rows on SQLite), against issue 7's 100 MiB ceiling; 68–76 MiB now.
const EXPORT_PAGE: i64 = 100;

/// `sha256(prev_hash || "\n" || canonical_json(row))`, hex. `serde_json` objects keep keys
/// sorted, so serialising a `Value` is canonical for our purposes.
pub fn chain_hash(prev_hash: &str, row: &Value) -> String {
    chain_hash_text(prev_hash, &row.to_string())
}

/// [`chain_hash`] of a row already serialised canonically.
pub fn chain_hash_text(prev_hash: &str, canonical: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    pub seq: i64,
    pub id: Uuid,
    pub reason: String,
}

/// What `verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub rows: u64,
    pub first_seq: Option<i64>,
    pub head_seq: Option<i64>,
    /// Record it elsewhere now and then: a later verify that does not reach it proves a
    /// rewrite even by someone who recomputed every hash.
    pub head_hash: String,
    /// The signed retention checkpoint that vouches for the removed start of the chain.
    pub anchored_by_checkpoint: Option<i64>,
    pub first_break: Option<Break>,
}

/// The fields of a checkpoint that its signature covers.
fn checkpoint_message(detail: &Value) -> Vec<u8> {
    json!({
        "anchor_hash": detail["anchor_hash"], "cutoff": detail["cutoff"],
        "purged_rows": detail["purged_rows"], "purged_through_seq": detail["purged_through_seq"],
    })
    .to_string()
    .into_bytes()
}

fn checkpoint_signed(vault: &Vault, detail: &Value) -> bool {
    match (detail["key_id"].as_str(), detail["signature"].as_str()) {
        (Some(key), Some(sig)) => vault.checkpoint_signed(key, &checkpoint_message(detail), sig),
        _ => false,
    }
}

/// Recomputes the chain from its first row to its head, one page at a time, and names the
/// first row that breaks it: a row whose content no longer matches its hash (edited), a row
/// whose `prev_hash` is not the previous row's hash (a row removed or inserted), a checkpoint
/// whose signature does not verify, or a start of chain that no signed checkpoint vouches for.
pub async fn verify(store: &Store, vault: &Vault) -> Result<Report, StoreError> {
    let mut report = Report {
        ok: true,
        rows: 0,
        first_seq: None,
        head_seq: None,
        head_hash: GENESIS.to_owned(),
        anchored_by_checkpoint: None,
        first_break: None,
    };
    // The first row's predecessor, when rows before it were removed by retention.
    let mut start: Option<(i64, Uuid, String)> = None;
    let mut prev: Option<String> = None;
    let mut after = 0;
    'walk: loop {
        let page = store
            .audit_page(&AuditFilter {
                after_seq: Some(after),
                limit: PAGE,
                ..AuditFilter::default()
            })
            .await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for row in &page {
            report.rows += 1;
            let broken = |reason: &str| Break {
                seq: row.seq,
                id: row.id,
                reason: reason.to_owned(),
            };
            match &prev {
                None => {
                    report.first_seq = Some(row.seq);
                    if row.prev_hash != GENESIS {
                        start = Some((row.seq, row.id, row.prev_hash.clone()));
                    }
                }
                Some(p) if *p != row.prev_hash => {
                    report.first_break = Some(broken(
                        "prev_hash is not the previous row's hash: a row was removed or inserted",
                    ));
                    break 'walk;
                }
                Some(_) => {}
            }
            if chain_hash(&row.prev_hash, &row.canonical()) != row.hash {
                report.first_break = Some(broken(
                    "the row's content does not match its hash: it was edited",
                ));
                break 'walk;
            }
            if row.kind == "checkpoint" {
                let detail = row.detail.as_ref().map(|d| d.0.clone()).unwrap_or_default();
                if !checkpoint_signed(vault, &detail) {
                    report.first_break = Some(broken(
                        "the checkpoint's signature does not verify with any configured vault key",
                    ));
                    break 'walk;
                }
                if let Some((_, _, anchor)) = &start
                    && detail["anchor_hash"].as_str() == Some(anchor.as_str())
                {
                    report.anchored_by_checkpoint = Some(row.seq);
                }
            }
            prev = Some(row.hash.clone());
            report.head_seq = Some(row.seq);
        }
    }
    if report.first_break.is_none()
        && report.anchored_by_checkpoint.is_none()
        && let Some((seq, id, _)) = start
    {
        report.first_break = Some(Break {
            seq,
            id,
            reason: "rows before this one were removed without a signed retention checkpoint"
                .to_owned(),
        });
    }
    report.head_hash = prev.unwrap_or_else(|| GENESIS.to_owned());
    report.ok = report.first_break.is_none();
    Ok(report)
}

/// Records an access to the audit log in the chain itself: who (key id, or the CLI's user),
/// which operation, with which parameters.
pub async fn record_access(
    store: &Store,
    request_id: &str,
    key_id: Option<&str>,
    actor: &str,
    operation: &str,
    parameters: Value,
) -> Result<(), StoreError> {
    store
        .append_entry(&NewAuditEntry::new(
            "access",
            request_id,
            key_id,
            json!({"actor": actor, "operation": operation, "parameters": parameters}),
        ))
        .await
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

impl Format {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "jsonl" => Some(Self::Jsonl),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jsonl => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// The CSV columns, in order. JSON columns are written as compact JSON text.
const CSV_COLUMNS: &[&str] = &[
    "seq",
    "id",
    "kind",
    "created_at",
    "request_id",
    "key_id",
    "summary_id",
    "event_id",
    "event_type",
    "task",
    "attempt_kind",
    "template_version",
    "template_sha256",
    "policy_version",
    "policy_sha256",
    "provider",
    "model",
    "parameters",
    "messages",
    "raw_response",
    "parsed_output",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "latency_ms",
    "outcome",
    "error",
    "redaction_counts",
    "detail",
    "prev_hash",
    "hash",
];

/// One exported value.
enum Cell<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
    /// JSON text as the database holds it, written as is.
    Json(Option<&'a str>),
}

/// The columns of a row, in [`CSV_COLUMNS`] order.
fn cells(r: &ExportRow) -> [Cell<'_>; 31] {
    fn t(v: &Option<String>) -> Option<&str> {
        v.as_deref()
    }
    use Cell::{Int, Json, Text};
    [
        Int(Some(r.seq)),
        Text(None), // id, written from `ids` below
        Text(Some(&r.kind)),
        Text(None), // created_at
        Text(Some(&r.request_id)),
        Text(t(&r.key_id)),
        Text(None), // summary_id
        Text(t(&r.event_id)),
        Text(t(&r.event_type)),
        Text(t(&r.task)),
        Text(t(&r.attempt_kind)),
        Text(t(&r.template_version)),
        Text(t(&r.template_sha256)),
        Text(t(&r.policy_version)),
        Text(t(&r.policy_sha256)),
        Text(t(&r.provider)),
        Text(t(&r.model)),
        Json(t(&r.parameters)),
        Json(t(&r.messages)),
        Json(t(&r.raw_response)),
        Json(t(&r.parsed_output)),
        Int(r.prompt_tokens),
        Int(r.completion_tokens),
        Int(r.total_tokens),
        Int(r.latency_ms),
        Text(t(&r.outcome)),
        Text(t(&r.error)),
        Json(t(&r.redaction_counts)),
        Json(t(&r.detail)),
        Text(Some(&r.prev_hash)),
        Text(Some(&r.hash)),
    ]
}

/// Columns a JSONL line carries besides `seq`, `kind`, `prev_hash` and `hash`: exactly the
/// keys of the row's canonical JSON, so a line re-verifies offline.
const ACCESS_KEYS: &[&str] = &["id", "created_at", "request_id", "key_id", "detail"];

/// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled. Values are
/// written exactly (no spreadsheet-formula defusing): the export is evidence, and the JSONL
/// form is the one to re-verify.
fn csv_text(out: &mut Vec<u8>, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

fn json_text(out: &mut Vec<u8>, text: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

fn encode(format: Format, rows: &[ExportRow]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 4096);
    for row in rows {
        let (id, created, summary) = (
            row.id.to_string(),
            store::rfc3339(row.created_at),
            row.summary_id.map(|s| s.to_string()),
        );
        let mut cells = cells(row);
        cells[1] = Cell::Text(Some(&id));
        cells[3] = Cell::Text(Some(&created));
        cells[6] = Cell::Text(summary.as_deref());
        match format {
            Format::Jsonl => {
                out.push(b'{');
                let mut first = true;
                for (name, cell) in CSV_COLUMNS.iter().zip(&cells) {
                    let wanted = if row.kind == "model_call" {
                        *name != "detail"
                    } else {
                        ["seq", "kind", "prev_hash", "hash"].contains(name)
                            || ACCESS_KEYS.contains(name)
                    };
                    if !wanted {
                        continue;
                    }
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    json_text(&mut out, name);
                    out.push(b':');
                    match cell {
                        Cell::Int(Some(n)) => out.extend_from_slice(n.to_string().as_bytes()),
                        Cell::Text(Some(t)) => json_text(&mut out, t),
                        Cell::Json(Some(j)) => out.extend_from_slice(j.as_bytes()),
                        _ => out.extend_from_slice(b"null"),
                    }
                }
                out.extend_from_slice(b"}\n");
            }
            Format::Csv => {
                for (i, cell) in cells.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    match cell {
                        Cell::Int(Some(n)) => out.extend_from_slice(n.to_string().as_bytes()),
                        Cell::Text(Some(t)) | Cell::Json(Some(t)) => csv_text(&mut out, t),
                        _ => {}
                    }
                }
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out
}

/// The chain rows created in `[from, to)`, encoded, one page per chunk: memory stays at one
/// page whatever the range holds.
pub fn export(
    store: Store,
    format: Format,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
) -> impl Stream<Item = Result<Bytes, StoreError>> + Send + 'static {
    let header = match format {
        Format::Csv => Some(format!("{}\r\n", CSV_COLUMNS.join(","))),
        Format::Jsonl => None,
    };
    let state = (store, Some(0i64), header);
    futures::stream::unfold(state, move |(store, after, header)| async move {
        if let Some(h) = header {
            return Some((Ok(Bytes::from(h)), (store, after, None)));
        }
        let after = after?;
        match store.export_page(from, to, after, EXPORT_PAGE).await {
            Ok(rows) if rows.is_empty() => None,
            Ok(rows) => {
                let next = (rows.len() as i64 == EXPORT_PAGE).then(|| rows[rows.len() - 1].seq);
                Some((Ok(Bytes::from(encode(format, &rows))), (store, next, None)))
            }
            Err(e) => Some((Err(e), (store, None, None))),
        }
    })
}

/// What one retention run did.
#[derive(Debug, Clone, Serialize)]
pub struct RetentionRun {
    pub pseudonym_maps_deleted: u64,
    pub prompt_log_rows_deleted: i64,
    pub checkpoint_through_seq: Option<i64>,
}

/// Deletes sealed pseudonym maps past their time and, when `prompt_log_days` is not 0, the
/// chain's rows older than that, leaving a checkpoint signed with the vault key.
pub async fn retention(
    store: &Store,
    vault: &Vault,
    prompt_log_days: u32,
    now: OffsetDateTime,
) -> Result<RetentionRun, StoreError> {
    let pseudonym_maps_deleted = store.purge_pseudonyms(now).await?;
    let mut run = RetentionRun {
        pseudonym_maps_deleted,
        prompt_log_rows_deleted: 0,
        checkpoint_through_seq: None,
    };
    if prompt_log_days == 0 {
        return Ok(run);
    }
    let cutoff = now - time::Duration::days(i64::from(prompt_log_days));
    let purge = store
        .purge_chain(cutoff, |p: &Purge| {
            let mut detail = json!({
                "purged_through_seq": p.through_seq, "purged_rows": p.rows,
                "anchor_hash": p.anchor_hash, "cutoff": store::rfc3339(cutoff),
            });
            let (key_id, signature) = vault.sign_checkpoint(&checkpoint_message(&detail));
            detail["key_id"] = json!(key_id);
            detail["signature"] = json!(signature);
            NewAuditEntry::new("checkpoint", "retention", None, detail)
        })
        .await?;
    if let Some(p) = purge {
        run.prompt_log_rows_deleted = p.rows;
        run.checkpoint_through_seq = Some(p.through_seq);
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_change_changes_the_hash() {
        let row = serde_json::json!({"b": 1, "a": "x"});
        let h = chain_hash(GENESIS, &row);
        assert_eq!(
            h,
            chain_hash(GENESIS, &serde_json::json!({"a": "x", "b": 1}))
        );
        assert_ne!(
            h,
            chain_hash(GENESIS, &serde_json::json!({"a": "y", "b": 1}))
        );
        assert_ne!(h, chain_hash(&h, &row));
    }

    #[test]
    fn csv_quotes_what_needs_quoting_and_nothing_else() {
        let mut out = Vec::new();
        for v in ["plain", "a,b", "say \"hi\"\nbye", "{\"k\":1}"] {
            csv_text(&mut out, v);
            out.push(b'|');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "plain|\"a,b\"|\"say \"\"hi\"\"\nbye\"|\"{\"\"k\"\":1}\"|"
        );
    }

    /// An export reads the chain a chunk at a time: every row comes once and in order, whether
    /// the rows fill their last chunk exactly or not.
    #[tokio::test]
    async fn an_export_crosses_its_chunks_without_losing_or_repeating_a_row() {
        use futures::StreamExt;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("e.db").display());
        let store = Store::connect(&url, 2, 0).await.unwrap();
        let mut written = 0;
        for total in [2 * EXPORT_PAGE, 2 * EXPORT_PAGE + 7] {
            while written < total {
                let entry = NewAuditEntry::new("access", "r", None, json!({"n": written}));
                store.append_entry(&entry).await.unwrap();
                written += 1;
            }
            let chunks: Vec<Bytes> = export(store.clone(), Format::Jsonl, None, None)
                .map(|c| c.unwrap())
                .collect()
                .await;
            assert_eq!(chunks.len() as i64, (total + EXPORT_PAGE - 1) / EXPORT_PAGE);
            let seqs: Vec<i64> = chunks
                .iter()
                .flat_map(|c| std::str::from_utf8(c).unwrap().lines())
                .map(|l| {
                    serde_json::from_str::<Value>(l).unwrap()["seq"]
                        .as_i64()
                        .unwrap()
                })
                .collect();
            assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
        }
        store.close().await;
    }

    #[test]
    fn a_checkpoint_signature_covers_its_fields() {
        let vault = Vault::new(&[3u8; 32], &[]);
        let mut detail = json!({"purged_through_seq": 10, "purged_rows": 10,
            "anchor_hash": "ab", "cutoff": "2026-01-01T00:00:00Z"});
        let (k, s) = vault.sign_checkpoint(&checkpoint_message(&detail));
        detail["key_id"] = json!(k);
        detail["signature"] = json!(s);
        assert!(checkpoint_signed(&vault, &detail));
        detail["purged_rows"] = json!(9);
        assert!(!checkpoint_signed(&vault, &detail));
    }
}
