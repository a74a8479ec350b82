#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Review decisions: approve (with edits) or reject (with a reason), once; the Odoo side goes
//! through the outbox after the pending-review note.

mod support;

use std::time::Duration;

use exbrief::config::OdooApi;
use serde_json::{Value, json};
use support::fake_odoo::Mode;
use support::{Answer, Backend, Options, Reply, TestApp, spawn_app, until};

fn bundle(n: u32) -> Value {
    let mut b = support::fixture("01-receipt-delay-imported.json");
    b["event_id"] = json!(format!("review-test-{n}"));
    b
}

async fn decide(app: &TestApp, id: &str, body: Value) -> Answer {
    app.post_raw(
        &format!("/v1/reviews/{id}/decision"),
        Some("application/json"),
        body.to_string().into_bytes(),
        &[],
    )
    .await
}

fn with_odoo() -> Options {
    Options {
        odoo: Some(OdooApi::Json2),
        ..Options::default()
    }
}

async fn approving_an_edited_reply_notes_it_and_closes_the_activity(backend: Backend) {
    let app = spawn_app(backend, with_odoo()).await;
    let odoo = app.odoo.clone().unwrap();
    let r = app.summarize(&bundle(1)).await;
    let id = r.json["id"].as_str().unwrap().to_owned();
    until("the pending-review note", || odoo.activities().len() == 1).await;
    let edited = "Dear Dana,\n\nYour order ships Friday. <script>alert(1)</script>";
    let d = decide(
        &app,
        &id,
        json!({"decision": "approve", "reviewer": "anna@cs.example",
        "reply": edited, "comment": "shortened"}),
    )
    .await;
    assert_eq!(d.status, 200, "{}", d.json);
    assert_eq!(d.json["status"], "approved");
    assert_eq!(d.json["edited"], true);
    assert_eq!(d.json["final_reply"]["body"], edited);
    assert_eq!(
        app.get(&format!("/v1/summaries/{id}")).await.json["status"],
        "approved"
    );
    until("the approved note", || odoo.messages().len() == 2).await;
    let note = &odoo.messages()[1];
    assert_eq!(note.subtype_xmlid, "mail.mt_note");
    assert!(
        note.body
            .contains("<b>[APPROVED]</b> Approved reply · reviewed by anna@cs.example"),
        "{}",
        note.body
    );
    assert!(
        note.body
            .contains("Your order ships Friday. &lt;script&gt;alert(1)&lt;/script&gt;")
    );
    assert!(!note.body.contains("<script>"));
    until("the activity done", || odoo.done_activities().len() == 1).await;
    let (activity, feedback) = &odoo.done_activities()[0];
    assert_eq!(activity.summary, "Review AI draft");
    assert_eq!(feedback, "Approved by anna@cs.example: shortened");
    assert!(odoo.activities().is_empty());
    app.stop().await;
}

async fn a_rejection_needs_a_reason_and_closes_the_activity(backend: Backend) {
    let app = spawn_app(backend, with_odoo()).await;
    let odoo = app.odoo.clone().unwrap();
    let id = app.summarize(&bundle(1)).await.json["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = decide(&app, &id, json!({"decision": "reject", "reviewer": "anna"})).await;
    assert_eq!(d.status, 422, "{}", d.json);
    assert_eq!(d.json["type"], "urn:exbrief:problem:invalid-decision");
    assert_eq!(d.json["field"], "comment");
    let d = decide(
        &app,
        &id,
        json!({"decision": "reject", "reviewer": "anna",
        "comment": "wrong order <b>S00045</b>"}),
    )
    .await;
    assert_eq!(d.status, 200, "{}", d.json);
    assert_eq!(d.json["status"], "rejected");
    until("the rejection", || {
        odoo.messages().len() == 2 && odoo.done_activities().len() == 1
    })
    .await;
    let note = &odoo.messages()[1];
    assert!(
        note.body.contains(
            "[REJECTED]</b> AI draft rejected by anna: wrong order &lt;b&gt;S00045&lt;/b&gt;"
        ),
        "{}",
        note.body
    );
    assert_eq!(
        odoo.done_activities()[0].1,
        "Rejected by anna: wrong order <b>S00045</b>"
    );
    app.stop().await;
}

async fn a_draft_is_decided_once(backend: Backend) {
    let app = spawn_app(backend, Options::default()).await;
    let id = app.summarize(&bundle(1)).await.json["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let approve = json!({"decision": "approve", "reviewer": "anna"});
    assert_eq!(decide(&app, &id, approve.clone()).await.status, 200);
    let again = decide(&app, &id, approve.clone()).await;
    assert_eq!(again.status, 409, "{}", again.json);
    assert_eq!(again.json["type"], "urn:exbrief:problem:review-conflict");
    assert!(again.content_type.starts_with("application/problem+json"));
    let reject = decide(
        &app,
        &id,
        json!({"decision": "reject", "reviewer": "bo", "comment": "x"}),
    )
    .await;
    assert_eq!(reject.status, 409);
    // Nothing to send to Odoo: the bundle's write-back is queued, no Odoo is configured, and
    // the decision row waits behind the note.
    assert_eq!(
        decide(
            &app,
            "01a2a000-0000-7000-8000-000000000000",
            approve.clone()
        )
        .await
        .status,
        404
    );
    let bad = decide(&app, &id, json!({"decision": "maybe", "reviewer": "anna"})).await;
    assert_eq!(
        (bad.status, bad.json["field"].as_str()),
        (422, Some("decision"))
    );
    let typo = decide(&app, &id, json!({"decison": "approve", "reviewer": "anna"})).await;
    assert_eq!(typo.status, 422, "{}", typo.json);
    // Two reviewers at once: exactly one wins.
    let id2 = app.summarize(&bundle(2)).await.json["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (a, b) = tokio::join!(
        decide(
            &app,
            &id2,
            json!({"decision": "approve", "reviewer": "anna"})
        ),
        decide(
            &app,
            &id2,
            json!({"decision": "reject", "reviewer": "bo", "comment": "no"})
        )
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} / {}", a.json, b.json);
    app.stop().await;
}

async fn send_on_approve_posts_the_reply_to_the_customer_thread(backend: Backend) {
    let app = spawn_app(
        backend,
        Options {
            odoo: Some(OdooApi::Jsonrpc),
            tweak: |c| c.odoo.send_on_approve = true,
            ..Options::default()
        },
    )
    .await;
    let odoo = app.odoo.clone().unwrap();
    let id = app.summarize(&bundle(1)).await.json["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = decide(
        &app,
        &id,
        json!({"decision": "approve", "reviewer": "anna"}),
    )
    .await;
    assert_eq!(d.status, 200);
    assert_eq!(d.json["edited"], false);
    until("the customer message", || odoo.messages().len() == 2).await;
    let sent = &odoo.messages()[1];
    assert_eq!(sent.subtype_xmlid, "mail.mt_comment");
    let draft = d.json["final_reply"]["body"].as_str().unwrap();
    let first_line = draft.lines().next().unwrap();
    assert!(sent.body.contains(first_line), "{}", sent.body);
    assert!(!sent.body.contains("[APPROVED]") && !sent.body.contains("PENDING"));
    until("the activity done", || odoo.done_activities().len() == 1).await;
    app.stop().await;
}

async fn a_decision_waits_for_its_pending_review_note(backend: Backend) {
    let app = spawn_app(backend, with_odoo()).await;
    let odoo = app.odoo.clone().unwrap();
    odoo.set_mode(Mode::Down);
    let id = app.summarize(&bundle(1)).await.json["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = decide(
        &app,
        &id,
        json!({"decision": "approve", "reviewer": "anna"}),
    )
    .await;
    assert_eq!(d.status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    odoo.set_mode(Mode::Normal);
    until("note, decision and feedback", || {
        odoo.messages().len() == 2 && odoo.done_activities().len() == 1
    })
    .await;
    let m = odoo.messages();
    assert!(m[0].body.contains("[PENDING REVIEW]") && m[1].body.contains("[APPROVED]"));
    app.stop().await;
}

fn fixture(name: &str, n: u32) -> Value {
    let mut b = support::fixture(name);
    b["event_id"] = json!(format!("queue-test-{n}"));
    b
}

async fn the_queue_pages_filters_and_shows_one_draft_whole(backend: Backend) {
    let app = spawn_app(backend, Options::default()).await;
    let names = [
        "01-receipt-delay-imported.json",
        "02-allocation-failure.json",
        "05-invoice-dispute.json",
        "06-sla-breach-helpdesk.json",
        "10-receipt-delay-german.json",
    ];
    let mut ids = Vec::new();
    for (n, name) in names.iter().enumerate() {
        let r = app.summarize(&fixture(name, n as u32)).await;
        ids.push(r.json["id"].as_str().unwrap().to_owned());
    }
    // Pages of two, oldest first, until the cursor runs out.
    let mut seen = Vec::new();
    let mut path = "/v1/reviews?limit=2".to_owned();
    loop {
        let page = app.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.json);
        let items = page.json["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match page.json["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/reviews?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let first = &app.get("/v1/reviews?limit=1").await.json["items"][0];
    assert_eq!(first["status"], "pending_review");
    assert_eq!(first["severity"], "critical");
    assert!(
        first["headline"]
            .as_str()
            .unwrap()
            .starts_with("Delayed purchase receipt")
    );
    // Filters.
    let count = |json: &Value| json["items"].as_array().unwrap().len();
    assert_eq!(
        count(&app.get("/v1/reviews?event_type=invoice_dispute").await.json),
        1
    );
    let critical = app.get("/v1/reviews?severity=critical").await.json;
    assert!(
        critical["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["severity"] == "critical")
    );
    for bad in [
        "limit=0",
        "limit=x",
        "status=done",
        "severity=urgent",
        "cursor=nope",
        "sort=age",
    ] {
        let r = app.get(&format!("/v1/reviews?{bad}")).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.json);
        assert_eq!(r.json["type"], "urn:exbrief:problem:invalid-query");
    }
    // One draft, whole: key facts, outputs, findings without values, versions.
    let one = app.get(&format!("/v1/reviews/{}", ids[0])).await;
    assert_eq!(one.status, 200);
    let d = &one.json;
    let original = support::fixture(names[0]);
    assert_eq!(d["key_facts"]["source"]["name"], original["source"]["name"]);
    assert_eq!(
        d["key_facts"]["reply_to"]["name"],
        original["reply_to"]["name"]
    );
    assert!(
        d["draft_reply"]["body"]
            .as_str()
            .unwrap()
            .contains(original["reply_to"]["name"].as_str().unwrap())
    );
    assert_eq!(d["tasks"]["customer_reply"]["prompt_version"], "v1");
    assert_eq!(d["redaction"]["policy_version"], "2026.11.1");
    let findings = d["redaction"]["findings"].as_array().unwrap();
    assert!(findings.len() > 5);
    let customer = original["facts"]["customer"]["name"].as_str().unwrap();
    assert!(
        !d["redaction"].to_string().contains(customer),
        "findings carry no values"
    );
    assert!(d["decision"].is_null());
    assert_eq!(
        d["odoo"]["pending_review"]["status"], "pending",
        "{}",
        d["odoo"]
    );
    // Decisions, then the quality figures.
    let draft = d["draft_reply"]["body"].as_str().unwrap().to_owned();
    let edited = draft.replacen("Dear", "Hello", 1);
    for (i, body) in [
        (
            0,
            json!({"decision": "approve", "reviewer": "anna", "reply": edited}),
        ),
        (1, json!({"decision": "approve", "reviewer": "anna"})),
        (
            2,
            json!({"decision": "reject", "reviewer": "bo", "comment": "wrong customer"}),
        ),
    ] {
        assert_eq!(decide(&app, &ids[i], body).await.status, 200);
    }
    let d = app.get(&format!("/v1/reviews/{}", ids[0])).await.json;
    assert_eq!(d["status"], "approved");
    assert_eq!(d["decision"]["final_reply"]["body"], edited.as_str());
    let distance = exbrief::review::edit_distance(&draft, &edited) as f64;
    assert_eq!(d["decision"]["edit_distance"], distance as i64);
    assert_eq!(count(&app.get("/v1/reviews?status=approved").await.json), 2);
    let stats = app.get("/v1/reviews/stats").await;
    assert_eq!(stats.status, 200);
    let v1 = &stats.json["by_customer_reply_prompt_version"]["v1"];
    assert_eq!(
        (v1["approved"].as_u64(), v1["rejected"].as_u64()),
        (Some(2), Some(1))
    );
    assert!((v1["approval_rate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(v1["edited_share"], 0.5);
    assert_eq!(v1["mean_edit_distance"], distance / 2.0);
    assert_eq!(stats.json["decided"], 3);
    assert_eq!(
        stats.json["cycle_time_by_event_type"]["receipt_delay"]["decided"],
        1
    );
    assert!(
        stats.json["cycle_time_by_event_type"]["receipt_delay"]["median_seconds"]
            .as_f64()
            .unwrap()
            >= 0.0
    );
    // The same figures for Prometheus.
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    let ct = metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(
            "exbrief_review_decisions_total{decision=\"approved\",prompt_version=\"v1\"} 2"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "exbrief_review_decisions_total{decision=\"rejected\",prompt_version=\"v1\"} 1"
        )
    );
    assert!(text.contains("exbrief_review_cycle_seconds_count{event_type=\"receipt_delay\"} 1"));
    assert!(text.contains(&format!(
        "exbrief_review_edit_distance_chars_sum{{prompt_version=\"v1\"}} {distance}"
    )));
    app.stop().await;
}

async fn a_reply_with_placeholders_cannot_be_approved_as_is(backend: Backend) {
    let app = spawn_app(
        backend,
        Options {
            model: true,
            ..Options::default()
        },
    )
    .await;
    app.fake().script([Reply::Content(
        json!({"subject": "Your order", "body": "Dear [PERSON_1], [CUSTOMER_9] will pay [PRICE].",
            "tone": "firm", "language": "en"})
        .to_string(),
    )]);
    let mut b = bundle(1);
    b["tasks"] = json!(["customer_reply"]);
    let r = app.summarize(&b).await;
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.json["needs_attention"].as_array().unwrap().len(),
        2,
        "{}",
        r.json
    );
    let d = decide(
        &app,
        &id,
        json!({"decision": "approve", "reviewer": "anna"}),
    )
    .await;
    assert_eq!(d.status, 422, "{}", d.json);
    assert_eq!(d.json["field"], "reply");
    assert!(
        d.json["detail"]
            .as_str()
            .unwrap()
            .contains("[CUSTOMER_9], [PRICE]"),
        "{}",
        d.json
    );
    let d = decide(
        &app,
        &id,
        json!({"decision": "approve", "reviewer": "anna",
        "reply": "Dear Jo Rivera, we have corrected the invoice."}),
    )
    .await;
    assert_eq!(d.status, 200, "{}", d.json);
    app.stop().await;
}

backend_tests! {
    a_reply_with_placeholders_cannot_be_approved_as_is => a_reply_with_placeholders_cannot_be_approved_as_is;
    the_queue_pages_filters_and_shows_one_draft_whole => the_queue_pages_filters_and_shows_one_draft_whole;
    approving_an_edited_reply_notes_it_and_closes_the_activity => approving_an_edited_reply_notes_it_and_closes_the_activity;
    a_rejection_needs_a_reason_and_closes_the_activity => a_rejection_needs_a_reason_and_closes_the_activity;
    a_draft_is_decided_once => a_draft_is_decided_once;
    send_on_approve_posts_the_reply_to_the_customer_thread => send_on_approve_posts_the_reply_to_the_customer_thread;
    a_decision_waits_for_its_pending_review_note => a_decision_waits_for_its_pending_review_note;
}
