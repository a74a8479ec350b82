#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The compliance log: every model call in one hash chain that `verify` recomputes (HTTP and
//! CLI), edits and removals caught and named, queries with filters and cursors, streamed
//! exports, access to the log recorded in the chain, retention with a signed checkpoint.

mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use exbrief::audit::{self, chain_hash};
use exbrief::vault::Vault;
use serde_json::{Value, json};
use support::{Backend, Options, Reply, TestApp, spawn_app};

fn bundle(name: &str, n: u32) -> Value {
    let mut b = support::fixture(name);
    b["event_id"] = json!(format!("audit-test-{n}"));
    b
}

async fn with_model(backend: Backend) -> TestApp {
    spawn_app(
        backend,
        Options {
            model: true,
            ..Options::default()
        },
    )
    .await
}

fn vault_of(app: &TestApp) -> Vault {
    use base64::Engine;
    let key: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(&app.vault_key)
        .unwrap()
        .try_into()
        .unwrap();
    Vault::new(&key, &[])
}

/// `exbrief audit …` against the test database, with the server's vault key.
fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_exbrief"))
        .args(["--database-url", &app.db.url, "audit"])
        .args(args)
        .env("EXBRIEF_VAULT__KEY", &app.vault_key)
        .env("USER", "auditor-test")
        .output()
        .unwrap()
}

/// Re-verifies an exported JSONL chain offline: what an auditor can do with the file alone.
fn verify_jsonl(text: &str) -> usize {
    let mut prev: Option<String> = None;
    let mut n = 0;
    for line in text.lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        let mut canonical = row.clone();
        let obj = canonical.as_object_mut().unwrap();
        for k in ["seq", "prev_hash", "hash"] {
            obj.remove(k);
        }
        if row["kind"] == "model_call" {
            obj.remove("kind");
        }
        let prev_hash = row["prev_hash"].as_str().unwrap();
        if let Some(p) = &prev {
            assert_eq!(p, prev_hash, "export breaks at seq {}", row["seq"]);
        }
        assert_eq!(
            chain_hash(prev_hash, &canonical),
            row["hash"].as_str().unwrap(),
            "row {} does not hash to its hash",
            row["seq"]
        );
        prev = Some(row["hash"].as_str().unwrap().to_owned());
        n += 1;
    }
    n
}

backend_tests! {
    every_call_is_chained_and_an_edit_or_a_removal_is_named => every_call_is_chained_and_an_edit_or_a_removal_is_named;
    concurrent_writers_keep_one_chain => concurrent_writers_keep_one_chain;
    queries_filter_and_page_in_chain_order => queries_filter_and_page_in_chain_order;
    exports_stream_the_range_and_verify_offline => exports_stream_the_range_and_verify_offline;
    retention_leaves_a_signed_checkpoint_the_chain_verifies_through => retention_leaves_a_signed_checkpoint_the_chain_verifies_through;
    pseudonym_maps_are_sealed_and_purged => pseudonym_maps_are_sealed_and_purged;
}

async fn every_call_is_chained_and_an_edit_or_a_removal_is_named(backend: Backend) {
    let app = with_model(backend).await;
    // One retry (429) and one repair (invalid JSON) besides first tries: all are rows.
    app.fake().script([
        Reply::Status(429, Some(0)),
        Reply::Content("not json".to_owned()),
    ]);
    for (n, f) in ["01-receipt-delay-imported.json", "05-invoice-dispute.json"]
        .iter()
        .enumerate()
    {
        let r = app.summarize(&bundle(f, n as u32)).await;
        assert_eq!(r.status, 200, "{}", r.json);
    }
    let calls = app.fake().count();
    let page = app.get("/v1/audit/prompts?limit=500").await;
    assert_eq!(page.status, 200, "{}", page.json);
    let items = page.json["items"].as_array().unwrap();
    assert_eq!(items.len(), calls, "one row per model call");
    let kinds: BTreeSet<&str> = items
        .iter()
        .map(|i| i["attempt_kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.len() >= 2,
        "first tries and retries/repairs: {kinds:?}"
    );
    for i in items {
        for field in [
            "request_id",
            "template_version",
            "template_sha256",
            "policy_sha256",
            "model",
            "messages",
            "outcome",
            "latency_ms",
            "redaction_counts",
        ] {
            assert!(!i[field].is_null(), "{field} missing in {i}");
        }
    }

    let v = app.get("/v1/audit/verify").await;
    assert_eq!(v.json["ok"], true, "{}", v.json);
    assert_eq!(v.json["first_seq"], items[0]["seq"]);

    // An edit of a stored message is named by its row. The edit must change the value: the
    // retried call's row already says `error`, and which row comes third depends on how the
    // concurrent calls were scheduled.
    let target = items[2]["seq"].as_i64().unwrap();
    let n = app
        .sql(&format!(
            "UPDATE prompt_log SET outcome = CASE WHEN outcome = 'ok' THEN 'error' ELSE 'ok' END \
             WHERE seq = {target}"
        ))
        .await;
    assert_eq!(n, 1);
    let v = app.get("/v1/audit/verify").await;
    assert_eq!(v.json["ok"], false);
    assert_eq!(v.json["first_break"]["seq"], target, "{}", v.json);
    assert!(
        v.json["first_break"]["reason"]
            .as_str()
            .unwrap()
            .contains("edited")
    );
    // The CLI says the same and fails.
    let out = cli(&app, &["verify"]);
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["first_break"]["seq"], target);

    // A removed row is named by the row after it.
    let app2 = with_model(backend).await;
    for n in 0..2 {
        app2.summarize(&bundle("02-allocation-failure.json", n))
            .await;
    }
    let items = app2.get("/v1/audit/prompts").await.json["items"].clone();
    let gone = items[1]["seq"].as_i64().unwrap();
    app2.sql(&format!("DELETE FROM prompt_log WHERE seq = {gone}"))
        .await;
    let v = app2.get("/v1/audit/verify").await;
    assert_eq!(v.json["first_break"]["seq"], items[2]["seq"], "{}", v.json);
    assert!(
        v.json["first_break"]["reason"]
            .as_str()
            .unwrap()
            .contains("removed")
    );
    app.stop().await;
    app2.stop().await;
}

async fn concurrent_writers_keep_one_chain(backend: Backend) {
    let app = with_model(backend).await;
    app.fake().set_delay(Duration::from_millis(5));
    // A second process on the same database: a replica (PostgreSQL) or a CLI (SQLite).
    let other = exbrief::store::Store::connect(&app.db.url, 4, 0)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for n in 0..24 {
        let client = app.client.clone();
        let base = app.base.clone();
        let b = bundle("03-stockout-risk.json", 100 + n);
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(format!("{base}/v1/summarize"))
                .json(&b)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }));
        let client = app.client.clone();
        let base = app.base.clone();
        tasks.push(tokio::spawn(async move {
            let r = client
                .get(format!("{base}/v1/audit/prompts?limit=1"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }));
        let store = other.clone();
        tasks.push(tokio::spawn(async move {
            audit::record_access(
                &store,
                &format!("replica-{n}"),
                None,
                "replica",
                "list",
                json!({}),
            )
            .await
            .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = audit::verify(app.pipeline.store(), &vault_of(&app))
        .await
        .unwrap();
    assert!(report.ok, "{report:?}");
    // 24 summaries × 3 calls, 24 API accesses, 24 replica accesses.
    assert_eq!(report.rows, 24 * 3 + 24 + 24, "{report:?}");
    other.close().await;
    app.stop().await;
}

async fn queries_filter_and_page_in_chain_order(backend: Backend) {
    let app = with_model(backend).await;
    let fixtures = [
        "01-receipt-delay-imported.json",
        "05-invoice-dispute.json",
        "06-sla-breach-helpdesk.json",
    ];
    for (n, f) in fixtures.iter().enumerate() {
        assert_eq!(app.summarize(&bundle(f, n as u32)).await.status, 200);
    }
    let all = app.get("/v1/audit/prompts?limit=500").await.json["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(all.len(), 9);
    let event_type = all[3]["event_type"].as_str().unwrap().to_owned();
    let by_type = app
        .get(&format!("/v1/audit/prompts?event_type={event_type}"))
        .await
        .json["items"]
        .clone();
    let expected = all.iter().filter(|i| i["event_type"] == event_type).count();
    assert_eq!(by_type.as_array().unwrap().len(), expected);
    let tasks = app
        .get("/v1/audit/prompts?task=classification&model=fake-model&outcome=ok")
        .await;
    assert_eq!(tasks.status, 200, "{}", tasks.json);
    assert_eq!(
        tasks.json["items"].as_array().unwrap().len(),
        3,
        "{}",
        tasks.json
    );
    let version = all[0]["template_version"].as_str().unwrap();
    let task = all[0]["task"].as_str().unwrap();
    let v = app
        .get(&format!(
            "/v1/audit/prompts?task={task}&template_version={version}"
        ))
        .await;
    assert_eq!(v.json["items"].as_array().unwrap().len(), 3);
    // A time range: nothing before the first row, everything from it.
    let first = all[0]["created_at"].as_str().unwrap();
    let none = app
        .get(&format!("/v1/audit/prompts?to={}", urlencode(first)))
        .await;
    assert_eq!(
        none.json["items"].as_array().unwrap().len(),
        0,
        "{}",
        none.json
    );
    let from = app
        .get(&format!(
            "/v1/audit/prompts?from={}&limit=500",
            urlencode(first)
        ))
        .await;
    assert_eq!(from.json["items"].as_array().unwrap().len(), 9);

    // Pages of 2 cover every row once, in chain order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/audit/prompts?limit=2&cursor={c}"),
            None => "/v1/audit/prompts?limit=2".to_owned(),
        };
        let page = app.get(&path).await.json;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["seq"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let all_seq: Vec<i64> = all.iter().map(|i| i["seq"].as_i64().unwrap()).collect();
    assert_eq!(seen, all_seq);

    // One row by id; unknown ids and bad filters are problems; SQL in a filter is data.
    let id = all[4]["id"].as_str().unwrap();
    let one = app.get(&format!("/v1/audit/prompts/{id}")).await;
    assert_eq!(one.json["hash"], all[4]["hash"]);
    assert_eq!(one.json["messages"], all[4]["messages"]);
    let missing = app
        .get(&format!("/v1/audit/prompts/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.content_type, "application/problem+json");
    assert_eq!(
        app.get("/v1/audit/prompts/..%2F..%2Fetc%2Fpasswd")
            .await
            .status,
        404
    );
    for (q, field) in [
        ("from=yesterday", "from"),
        ("limit=0", "limit"),
        ("cursor=-4", "cursor"),
        ("kind=everything", "kind"),
        ("colour=red", "colour"),
        ("from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z", "to"),
    ] {
        let r = app.get(&format!("/v1/audit/prompts?{q}")).await;
        assert_eq!(r.status, 422, "{q}: {}", r.json);
        assert_eq!(r.content_type, "application/problem+json");
        assert_eq!(r.json["field"], field, "{q}");
    }
    let injected = app
        .get("/v1/audit/prompts?model=x%27%20OR%20%271%27%3D%271&event_type=%22%3B%20DROP%20TABLE%20prompt_log%3B--")
        .await;
    assert_eq!(injected.status, 200);
    assert_eq!(injected.json["items"].as_array().unwrap().len(), 0);

    // Every one of these reads is in the chain, with what was asked.
    let access = app
        .get("/v1/audit/prompts?kind=access&limit=500")
        .await
        .json["items"]
        .as_array()
        .unwrap()
        .clone();
    assert!(access.iter().any(|a| a["detail"]["operation"] == "list"
        && a["detail"]["parameters"]["event_type"] == event_type.as_str()));
    assert!(
        access
            .iter()
            .any(|a| a["detail"]["operation"] == "get" && a["detail"]["parameters"]["id"] == id)
    );
    assert!(
        access
            .iter()
            .all(|a| !a["request_id"].as_str().unwrap().is_empty())
    );
    let v = app.get("/v1/audit/verify").await;
    assert_eq!(v.json["ok"], true, "{}", v.json);
    app.stop().await;
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

/// Splits CSV into records, honouring quoted fields with commas, quotes and line breaks.
fn csv_records(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let (mut record, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) => quoted = true,
            (',', false) => record.push(std::mem::take(&mut field)),
            ('\r', false) => {}
            ('\n', false) => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (c, _) => field.push(c),
        }
    }
    records
}

async fn exports_stream_the_range_and_verify_offline(backend: Backend) {
    let app = with_model(backend).await;
    for n in 0..3 {
        app.summarize(&bundle("04-quality-hold.json", n)).await;
    }
    let (status, ct, jsonl) = app.get_text("/v1/audit/export?format=jsonl").await;
    // A line of the export is the row the query API returns.
    let api = app.get("/v1/audit/prompts?limit=1").await.json["items"][0].clone();
    let line: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(line, api);
    assert_eq!(status, 200);
    assert_eq!(ct, "application/x-ndjson");
    // 9 model calls and the export's own access record, written before it streams.
    assert_eq!(verify_jsonl(&jsonl), 10);
    let last: Value = serde_json::from_str(jsonl.lines().last().unwrap()).unwrap();
    assert_eq!(last["detail"]["operation"], "export");

    let (status, ct, csv) = app.get_text("/v1/audit/export?format=csv").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/csv"));
    let records = csv_records(&csv);
    assert_eq!(records[0][0], "seq");
    // Header, 9 model calls, and three access rows (two exports and one list).
    assert_eq!(records.len(), 1 + 12);
    assert!(records.iter().all(|r| r.len() == records[0].len()));
    let messages = records[0].iter().position(|c| c == "messages").unwrap();
    let first: Value = serde_json::from_str(&records[1][messages]).unwrap();
    assert!(first.is_array());

    // A range: from the fourth model call on.
    let rows: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let from = rows[3]["created_at"].as_str().unwrap();
    let (_, _, part) = app
        .get_text(&format!("/v1/audit/export?from={}", urlencode(from)))
        .await;
    let part_rows: Vec<Value> = part
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        part_rows
            .iter()
            .all(|r| r["created_at"].as_str().unwrap() >= from)
    );
    assert!(part_rows.len() < rows.len() + 2 && part_rows.len() >= 6);
    let bad = app.get("/v1/audit/export?format=xml").await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.json["field"], "format");

    // The CLI writes the same rows to a file and records who ran it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let out = cli(
        &app,
        &["export", "--format", "jsonl", file.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let n = verify_jsonl(&text);
    assert!(n >= 13, "{n}");
    assert!(text.lines().any(|l| {
        let row: Value = serde_json::from_str(l).unwrap();
        row["detail"]["actor"] == "cli:auditor-test"
    }));
    let csv_file = dir.path().join("audit.csv");
    let out = cli(
        &app,
        &[
            "export",
            "--format",
            "csv",
            "--from",
            "2000-01-01T00:00:00Z",
            "--to",
            "2000-01-02T00:00:00Z",
            csv_file.to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    assert_eq!(
        csv_records(&std::fs::read_to_string(&csv_file).unwrap()).len(),
        1
    );
    let out = cli(&app, &["export", "--from", "last week", "x.jsonl"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
    let out = cli(&app, &["verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    app.stop().await;
}

async fn retention_leaves_a_signed_checkpoint_the_chain_verifies_through(backend: Backend) {
    let app = with_model(backend).await;
    let store = app.pipeline.store().clone();
    let vault = vault_of(&app);
    for n in 0..2 {
        app.summarize(&bundle("01-receipt-delay-imported.json", n))
            .await;
    }
    // SQLite compares times as text: keep the batches well apart.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let cutoff = exbrief::store::now();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for n in 2..4 {
        app.summarize(&bundle("01-receipt-delay-imported.json", n))
            .await;
    }
    let before = audit::verify(&store, &vault).await.unwrap();
    assert!(before.ok);
    assert_eq!(before.rows, 12);

    // Rows older than one day before "now" = cutoff + 1 day: the first batch.
    let run = audit::retention(&store, &vault, 1, cutoff + time::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(run.prompt_log_rows_deleted, 6);
    let after = audit::verify(&store, &vault).await.unwrap();
    assert!(after.ok, "{after:?}");
    assert_eq!(after.rows, 6 + 1);
    assert_eq!(after.anchored_by_checkpoint, after.head_seq);
    assert_ne!(after.first_seq, before.first_seq);
    // Nothing more to purge at the same time: no second checkpoint.
    let again = audit::retention(&store, &vault, 1, cutoff + time::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(again.prompt_log_rows_deleted, 0);
    assert_eq!(audit::verify(&store, &vault).await.unwrap().rows, 7);

    // The checkpoint does not verify under another key.
    let stranger = Vault::new(&[42u8; 32], &[]);
    let forged = audit::verify(&store, &stranger).await.unwrap();
    assert!(forged.first_break.unwrap().reason.contains("signature"));
    // Removing the oldest remaining row leaves a start no checkpoint vouches for.
    let first = after.first_seq.unwrap();
    app.sql(&format!("DELETE FROM prompt_log WHERE seq = {first}"))
        .await;
    let broken = audit::verify(&store, &vault).await.unwrap();
    let b = broken.first_break.unwrap();
    assert!(
        b.reason.contains("without a signed retention checkpoint"),
        "{b:?}"
    );
    // The same check over HTTP and from the CLI.
    let v = app.get("/v1/audit/verify").await;
    assert_eq!(v.json["ok"], false);
    assert!(!cli(&app, &["verify"]).status.success());
    app.stop().await;
}

async fn pseudonym_maps_are_sealed_and_purged(backend: Backend) {
    let app = with_model(backend).await;
    let mut b = bundle("01-receipt-delay-imported.json", 1);
    b["reply_to"] =
        json!({"name": "Ingrid Vælstrøm", "email": "ingrid@seal.example", "lang": "en_US"});
    b["messages"] = json!([{"role": "customer", "author": "Ingrid Vælstrøm",
        "body": "Hello, Ingrid Vælstrøm here. Where is my order?"}]);
    let r = app.summarize(&b).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let id = r.json["id"].as_str().unwrap().to_owned();
    // The reader gets the names back; the database holds them sealed.
    assert!(
        r.json["draft_reply"]["body"]
            .as_str()
            .unwrap()
            .contains("Ingrid Vælstrøm"),
        "{}",
        r.json
    );
    let read = app.get(&format!("/v1/summaries/{id}")).await;
    assert_eq!(read.json["draft_reply"], r.json["draft_reply"]);
    assert_eq!(
        read.json["key_facts"]["reply_to"]["name"],
        "Ingrid Vælstrøm"
    );
    let dump = app.dump().await;
    assert!(dump.iter().any(|(c, _)| c == "pseudonym_maps.ciphertext"));
    for (column, value) in &dump {
        assert!(
            !value.contains("Vælstrøm") && !value.contains("Valstrom"),
            "{column} holds the name"
        );
    }
    // Retention deletes the map: the summary then shows placeholders and says why.
    let run = audit::retention(
        app.pipeline.store(),
        &vault_of(&app),
        0,
        exbrief::store::now() + time::Duration::days(31),
    )
    .await
    .unwrap();
    assert_eq!(run.pseudonym_maps_deleted, 1);
    let later = app.get(&format!("/v1/summaries/{id}")).await;
    assert!(
        later.json["draft_reply"]["body"]
            .as_str()
            .unwrap()
            .contains("[PERSON_1]")
    );
    assert!(
        later.json["needs_attention"]
            .to_string()
            .contains("retention")
    );
    app.stop().await;
}

/// A claim of `key` and its summary, on the writer's connection, which it gives back.
async fn claim_and_store(
    store: &exbrief::store::Store,
    mut writer: Option<exbrief::store::Writer>,
    key: &str,
) -> Option<exbrief::store::Writer> {
    let c = support::claim(key);
    store
        .write_many_on(&mut writer, std::slice::from_ref(&c), &[], &mut |_| {})
        .await
        .unwrap();
    let (_, stored) = store
        .write_many_on(&mut writer, &[], &[finished(&c)], &mut |_| {})
        .await
        .unwrap();
    assert_eq!(stored, [true]);
    writer
}

/// A finished summary with two prompt-log rows.
fn finished(c: &exbrief::store::NewClaim) -> exbrief::store::Finished {
    let log = |task: &str| exbrief::store::NewPromptLog {
        task: task.into(),
        ..support::log_row(c.id, 3)
    };
    exbrief::store::Finished {
        id: c.id,
        owner: c.owner,
        document: exbrief::store::json_text(&json!({"n": 1})),
        severity: None,
        sealed: None,
        logs: vec![log("impact_summary"), log("customer_reply")],
        outbox: Vec::new(),
        usage: None,
    }
}

/// The PostgreSQL summaries' writer chains its log rows onto the head it believes in, and onto
/// the head as read when that is not it (another writer appended, or the belief is wrong); its
/// rows statement takes the chain lock (it waits, seen in `pg_locks`, while another session
/// holds it). The chain verifies and holds every row. PostgreSQL only; skipped without
/// `EXBRIEF_TEST_PG_URL`.
#[tokio::test]
async fn a_postgres_writer_chains_onto_the_real_head_whatever_it_believes() {
    use exbrief::store::{CHAIN_LOCK, Writer};
    let Some((db, store)) = support::postgres_store().await else {
        return;
    };
    let vault = Vault::new(&[7; 32], &[]);
    let write = |writer: Option<Writer>, key: &str| {
        let (store, key) = (store.clone(), key.to_owned());
        async move { claim_and_store(&store, writer, &key).await }
    };
    let believed = |writer: &Option<Writer>| match writer {
        Some(Writer::Postgres(_, head)) => head.clone(),
        _ => None,
    };
    let mut writer = write(None, "first").await;
    let head = audit::verify(&store, &vault).await.unwrap().head_hash;
    assert_eq!(
        believed(&writer),
        Some(head),
        "it believes in what it wrote"
    );
    writer = write(writer, "second").await;
    // Another writer appends: the belief is stale.
    audit::record_access(&store, "req", None, "someone", "list", json!({}))
        .await
        .unwrap();
    writer = write(writer, "third").await;
    // A belief that was never the head.
    if let Some(Writer::Postgres(_, head)) = writer.as_mut() {
        *head = Some("0".repeat(64));
    }
    writer = write(writer, "fourth").await;
    let mut holder = support::hold_chain_lock(&db.url).await;
    let fifth = tokio::spawn(write(writer, "fifth"));
    let mut waited = 0;
    loop {
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
             AND classid = 0 AND objid = $1",
        )
        .bind(CHAIN_LOCK)
        .fetch_one(&mut holder)
        .await
        .unwrap();
        if waiting == 1 {
            break;
        }
        assert!(
            !fifth.is_finished(),
            "the batch was written without the chain lock"
        );
        assert!(waited < 500, "the writer never waited for the chain lock");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(CHAIN_LOCK)
        .execute(&mut holder)
        .await
        .unwrap();
    let writer = fifth.await.unwrap();
    let report = audit::verify(&store, &vault).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.rows, 5 * 2 + 1, "{report:?}");
    assert_eq!(believed(&writer), Some(report.head_hash));
    drop(writer);
    store.close().await;
}

/// PostgreSQL keeps exbrief's JSON values as `json`, the text as written (`jsonb` reorders keys
/// and adds spaces), the large ones lz4-compressed; a database whose columns are still `jsonb`
/// (before migration 20261129000001) is converted by it with its chain intact. PostgreSQL only;
/// skipped without `EXBRIEF_TEST_PG_URL`.
#[tokio::test]
async fn postgres_keeps_json_as_written_and_converts_an_older_database() {
    use exbrief::store::{JsonArg, Store};
    let Some((_db, store)) = support::postgres_store().await else {
        return;
    };
    let Store::Postgres(pool) = &store else {
        unreachable!()
    };
    let (ty, text): (String, String) = sqlx::query_as("SELECT pg_typeof($1)::text, $1::text")
        .bind(JsonArg(json!({"b": [1, 2], "a": "x"})))
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(
        (ty.as_str(), text.as_str()),
        ("json", r#"{"a":"x","b":[1,2]}"#)
    );

    drop(claim_and_store(&store, None, "json").await);
    let stored_text = || async {
        sqlx::query_as::<_, (String, String)>(
            "SELECT l.messages::text, s.document::text FROM prompt_log l \
             JOIN summaries s ON s.id = l.summary_id ORDER BY l.seq LIMIT 1",
        )
        .fetch_one(pool)
        .await
        .unwrap()
    };
    assert_eq!(
        stored_text().await,
        (
            r#"[{"content":"hi","role":"user"}]"#.to_owned(),
            r#"{"n":1}"#.to_owned()
        )
    );
    let columns = || async {
        sqlx::query_as::<_, (String, String, String)>(
            "SELECT attrelid::regclass::text || '.' || attname, format_type(atttypid, atttypmod), \
             attcompression::text FROM pg_attribute WHERE attrelid IN ('prompt_log'::regclass, \
             'summaries'::regclass, 'outbox'::regclass, 'review_decisions'::regclass) \
             AND attnum > 0 AND NOT attisdropped \
             AND format_type(atttypid, atttypmod) IN ('json', 'jsonb') ORDER BY 1",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    };
    let check = |cols: &[(String, String, String)]| {
        assert_eq!(cols.len(), 11, "{cols:?}");
        assert!(cols.iter().all(|(_, t, _)| t == "json"), "{cols:?}");
        let lz4: Vec<&str> = cols
            .iter()
            .filter(|(_, _, c)| c == "l")
            .map(|(n, _, _)| n.as_str())
            .collect();
        assert_eq!(
            lz4,
            [
                "outbox.payload",
                "prompt_log.detail",
                "prompt_log.messages",
                "prompt_log.parameters",
                "prompt_log.parsed_output",
                "prompt_log.raw_response",
                "summaries.document"
            ]
        );
    };
    let cols = columns().await;
    check(&cols);

    // The columns as a database migrated before 20261129000001 has them.
    for (name, _, _) in &cols {
        let (table, column) = name.split_once('.').unwrap();
        sqlx::query(&format!(
            "ALTER TABLE {table} ALTER COLUMN {column} TYPE jsonb USING {column}::jsonb"
        ))
        .execute(pool)
        .await
        .unwrap();
    }
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 20261129000001")
        .execute(pool)
        .await
        .unwrap();
    // jsonb's own order (shorter keys first) and spacing.
    assert_eq!(
        stored_text().await.0,
        r#"[{"role": "user", "content": "hi"}]"#
    );
    store.migrate().await.unwrap();
    check(&columns().await);
    let report = audit::verify(&store, &Vault::new(&[7; 32], &[]))
        .await
        .unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.rows, 2);
    store.close().await;
}
