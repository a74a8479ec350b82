#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Odoo write-back end to end: a summary's transaction enqueues the write, the outbox worker
//! delivers a pending-review note and a review activity to the fake Odoo, over both APIs.

mod support;

use std::time::{Duration, Instant};

use exbrief::config::OdooApi;
use serde_json::{Value, json};
use support::fake_odoo::Mode;
use support::{Backend, Options, Reply, spawn_app, until};

fn with_odoo(api: OdooApi) -> Options {
    Options {
        odoo: Some(api),
        ..Options::default()
    }
}

fn bundle(n: u32) -> Value {
    let mut b = support::fixture("01-receipt-delay-imported.json");
    b["event_id"] = json!(format!("outbox-test-{n}"));
    b
}

async fn rows(app: &support::TestApp) -> Vec<exbrief::store::OutboxRow> {
    app.pipeline.store().outbox_list(false).await.unwrap()
}

async fn note_and_activity_reach_odoo(backend: Backend, api: OdooApi) {
    let app = spawn_app(backend, with_odoo(api)).await;
    let odoo = app.odoo.clone().unwrap();
    let r = app.summarize(&bundle(1)).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let id = r.json["id"].as_str().unwrap().to_owned();
    until("the note and the activity", || {
        odoo.messages().len() == 1 && odoo.activities().len() == 1
    })
    .await;
    let note = &odoo.messages()[0];
    assert_eq!((note.model.as_str(), note.res_id), ("sale.order", 42));
    assert!(note.body_is_html && note.subtype_xmlid == "mail.mt_note");
    assert!(
        note.body
            .contains("<b>[PENDING REVIEW]</b> AI draft — pending review"),
        "{}",
        note.body
    );
    assert!(note.body.contains(&format!("exbrief {id}")));
    assert!(
        note.body
            .contains(&format!("https://exbrief.example.com/review/{id}"))
    );
    assert!(
        note.body
            .contains("Classification:</b> supplier_delay · severity critical · priority 1")
    );
    // The reviewer's copy: names restored, the redaction and prompt versions named.
    let contact = bundle(1)["reply_to"]["name"].as_str().unwrap().to_owned();
    assert!(
        note.body.contains(&format!("Dear {contact},")),
        "{}",
        note.body
    );
    assert!(note.body.contains("Redaction policy: default 2026.11.1"));
    let activity = &odoo.activities()[0];
    assert_eq!(activity.summary, "Review AI draft");
    assert_eq!(activity.user_id, Some(5));
    // Critical: due the day the summary was made.
    let created = &r.json["created_at"].as_str().unwrap()[..10];
    assert_eq!(activity.date_deadline, created);
    let start = Instant::now();
    loop {
        let rows = rows(&app).await;
        if rows[0].status == "done" {
            let result = &rows[0].result.as_ref().unwrap().0;
            assert_eq!(result["message_id"], note.id);
            assert_eq!(result["activity_id"], activity.id);
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop().await;
}

async fn over_json2(backend: Backend) {
    note_and_activity_reach_odoo(backend, OdooApi::Json2).await;
}

async fn over_jsonrpc(backend: Backend) {
    note_and_activity_reach_odoo(backend, OdooApi::Jsonrpc).await;
}

async fn odoo_down_then_back_posts_every_note_exactly_once(backend: Backend) {
    let app = spawn_app(backend, with_odoo(OdooApi::Json2)).await;
    let odoo = app.odoo.clone().unwrap();
    odoo.set_mode(Mode::Down);
    for n in 0..3 {
        assert_eq!(app.summarize(&bundle(n)).await.status, 200);
    }
    // The worker keeps trying while Odoo is down; nothing is lost.
    let start = Instant::now();
    loop {
        let rows = rows(&app).await;
        if rows.len() == 3
            && rows
                .iter()
                .all(|r| r.attempts >= 2 && r.status == "pending")
        {
            assert!(
                rows[0].last_error.as_deref().unwrap().contains("503"),
                "{:?}",
                rows[0].last_error
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(odoo.messages().is_empty());
    odoo.set_mode(Mode::Normal);
    until("three notes and activities", || {
        odoo.messages().len() == 3 && odoo.activities().len() == 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(odoo.messages().len(), 3, "exactly once");
    assert_eq!(odoo.activities().len(), 3);
    assert!(rows(&app).await.iter().all(|r| r.status == "done"));
    app.stop().await;
}

async fn an_access_error_goes_dead_with_odoos_reason(backend: Backend) {
    let app = spawn_app(backend, with_odoo(OdooApi::Jsonrpc)).await;
    let odoo = app.odoo.clone().unwrap();
    odoo.set_mode(Mode::AccessDenied);
    assert_eq!(app.summarize(&bundle(1)).await.status, 200);
    let start = Instant::now();
    let dead = loop {
        let rows = rows(&app).await;
        if rows[0].status == "dead" {
            break rows[0].clone();
        }
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // No retries for an error that will not heal, and no server traceback in the reason.
    assert_eq!(dead.attempts, 1);
    let reason = dead.last_error.unwrap();
    assert!(
        reason.contains("odoo.exceptions.AccessError") && reason.contains("not allowed to modify"),
        "{reason}"
    );
    assert!(!reason.contains("Traceback"));
    // The operator sees it with Odoo's reason…
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_exbrief"))
            .arg("--database-url")
            .arg(&app.db.url)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed = cli(&["outbox", "list", "--dead"]);
    assert!(listed.contains(&dead.id.to_string()), "{listed}");
    assert!(
        listed.contains("dead") && listed.contains("sale.order/42"),
        "{listed}"
    );
    assert!(
        listed.contains("not allowed to modify 'sale.order' records"),
        "{listed}"
    );
    // …fixes the rights in Odoo and requeues: delivered.
    odoo.set_mode(Mode::Normal);
    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_exbrief"))
        .arg("--database-url")
        .arg(&app.db.url)
        .args(["outbox", "retry", "01a2a000-0000-7000-8000-000000000000"])
        .output()
        .unwrap();
    assert!(!unknown.status.success(), "an unknown id is an error");
    assert!(cli(&["outbox", "retry", &dead.id.to_string()]).contains("1 row(s) due again"));
    until("the requeued note", || odoo.messages().len() == 1).await;
    app.stop().await;
}

async fn model_html_arrives_escaped(backend: Backend) {
    let app = spawn_app(
        backend,
        Options {
            model: true,
            odoo: Some(OdooApi::Json2),
            ..Options::default()
        },
    )
    .await;
    let odoo = app.odoo.clone().unwrap();
    app.fake().script([Reply::Content(
        json!({"headline": "<img src=x onerror=alert(1)> late", "impacted_orders": [],
            "customer_impact": "<script>steal()</script>", "financial_exposure_band": "unknown",
            "mitigation_options": ["<a href=\"javascript:x()\">call</a>"]})
        .to_string(),
    )]);
    let mut b = bundle(1);
    b["tasks"] = json!(["impact_summary"]);
    assert_eq!(app.summarize(&b).await.status, 200);
    until("the note", || odoo.messages().len() == 1).await;
    let body = &odoo.messages()[0].body;
    assert!(
        body.contains("&lt;img src=x onerror=alert(1)&gt; late"),
        "{body}"
    );
    assert!(body.contains("&lt;script&gt;steal()&lt;/script&gt;"));
    assert!(
        !body.contains("<img") && !body.contains("<script") && !body.contains("javascript:x()\"")
    );
    app.stop().await;
}

async fn an_answer_lost_after_odoo_wrote_does_not_post_twice(backend: Backend) {
    let app = spawn_app(backend, with_odoo(OdooApi::Json2)).await;
    let odoo = app.odoo.clone().unwrap();
    // Odoo stores the note, but its answer never arrives (as when the worker dies before it
    // can record the id): the retry must find that note, not post another.
    odoo.set_mode(Mode::HangAfterWrite);
    assert_eq!(app.summarize(&bundle(1)).await.status, 200);
    until("the first note", || odoo.messages().len() == 1).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    odoo.set_mode(Mode::Normal);
    until("the activity", || odoo.activities().len() == 1).await;
    let start = Instant::now();
    while rows(&app).await[0].status != "done" {
        assert!(start.elapsed() < Duration::from_secs(15));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(odoo.messages().len(), 1, "the note was posted once");
    assert_eq!(odoo.activities().len(), 1);
    let row = &rows(&app).await[0];
    assert_eq!(
        row.result.as_ref().unwrap().0["message_id"],
        odoo.messages()[0].id
    );
    app.stop().await;
}

async fn bundles_without_write_back_use_the_configured_models(backend: Backend) {
    let app = spawn_app(
        backend,
        Options {
            odoo: Some(OdooApi::Json2),
            tweak: |c| c.odoo.write_back_models = vec!["purchase.order".to_owned()],
            ..Options::default()
        },
    )
    .await;
    let odoo = app.odoo.clone().unwrap();
    let mut b = bundle(1);
    b.as_object_mut().unwrap().remove("write_back");
    assert_eq!(app.summarize(&b).await.status, 200);
    until("the note on the source record", || {
        odoo.messages().len() == 1
    })
    .await;
    let note = &odoo.messages()[0];
    assert_eq!((note.model.as_str(), note.res_id), ("purchase.order", 23));
    // The default reviewer gets the activity.
    until("the activity", || odoo.activities().len() == 1).await;
    assert_eq!(odoo.activities()[0].user_id, Some(5));
    // A source model not in the list gets nothing.
    let mut other = bundle(2);
    other.as_object_mut().unwrap().remove("write_back");
    other["source"]["model"] = json!("stock.picking");
    assert_eq!(app.summarize(&other).await.status, 200);
    assert_eq!(rows(&app).await.len(), 1);
    app.stop().await;
}

backend_tests! {
    pending_review_over_json2 => over_json2;
    pending_review_over_jsonrpc => over_jsonrpc;
    odoo_down_then_back_posts_every_note_exactly_once => odoo_down_then_back_posts_every_note_exactly_once;
    an_access_error_goes_dead_with_odoos_reason => an_access_error_goes_dead_with_odoos_reason;
    model_html_arrives_escaped => model_html_arrives_escaped;
    an_answer_lost_after_odoo_wrote_does_not_post_twice => an_answer_lost_after_odoo_wrote_does_not_post_twice;
    bundles_without_write_back_use_the_configured_models => bundles_without_write_back_use_the_configured_models;
}

/// The real binary, killed (SIGKILL) after Odoo stored the note but before the worker recorded
/// it, then started again on the same database: the note is not posted a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_delivery_and_restarted_posts_once() {
    let (odoo, url) = support::FakeOdoo::start().await;
    odoo.set_mode(Mode::HangAfterWrite);
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let db = format!("sqlite:{}/exbrief.db", dir.path().display());
    let start = || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_exbrief"));
        cmd.current_dir(support::repo());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("EXBRIEF_")) {
            cmd.env_remove(k);
        }
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("EXBRIEF_DATABASE__URL", &db)
            .env("EXBRIEF_ODOO__URL", &url)
            .env("EXBRIEF_ODOO__DATABASE", support::fake_odoo::DATABASE)
            .env("EXBRIEF_ODOO__API_KEY", support::fake_odoo::API_KEY)
            .env("EXBRIEF_ODOO__TIMEOUT_SECS", "1")
            .env("EXBRIEF_ODOO__POLL_INTERVAL_MS", "50")
            .env("EXBRIEF_ODOO__BACKOFF_BASE_MS", "50")
            .env("EXBRIEF_ODOO__BACKOFF_MAX_MS", "100")
            .env("EXBRIEF_LOG", "warn")
            // Keys are not this test's subject.
            .env("EXBRIEF_AUTH__DISABLED", "true")
            .stdout(std::process::Stdio::null());
        cmd.spawn().unwrap()
    };
    let client = reqwest::Client::new();
    let ready = |client: reqwest::Client, base: String| async move {
        let t = Instant::now();
        while client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .ok()
            != Some(200)
        {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "exbrief did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let mut first = start();
    ready(client.clone(), base.clone()).await;
    let r = client
        .post(format!("{base}/v1/summarize"))
        .json(&bundle(1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    until("Odoo to store the note", || odoo.messages().len() == 1).await;
    first.kill().unwrap();
    first.wait().unwrap();
    odoo.set_mode(Mode::Normal);
    let mut second = start();
    ready(client.clone(), base.clone()).await;
    // The dead process's claim expires (lease: 4 call timeouts + 2 s), then the new one delivers.
    let t = Instant::now();
    while odoo.activities().is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the restarted worker did not deliver"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(odoo.messages().len(), 1, "posted once");
    assert_eq!(odoo.activities().len(), 1);
}
