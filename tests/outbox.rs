#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Odoo write-back end to end: a summary's transaction enqueues the write, the outbox worker
//! delivers a pending-review note and a review activity to the fake Odoo, over both APIs.

mod support;

use std::time::{Duration, Instant};

use exbrief::config::OdooApi;
use serde_json::{Value, json};
use support::fake_odoo::Mode;
use support::{Backend, Options, Reply, spawn_app};

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

/// Polls until `done` holds (the worker runs in the background), at most 10 s.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    // Fixed in Odoo, requeued by an operator: delivered.
    odoo.set_mode(Mode::Normal);
    assert_eq!(app.pipeline.store().outbox_requeue(None).await.unwrap(), 1);
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
