#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! n8n against the real server: its exact request shape (lower-case headers, Connection: close,
//! the Crypto node's signature over the exact bytes, blind resends), asynchronous summaries
//! with signed callbacks, and subscription events — each delivered through the outbox to a
//! receiver that fails twice before accepting, and processed there once per event id.

mod support;

use std::time::{Duration, Instant};

use exbrief::config::{Subscription, WebhooksConfig};
use serde_json::{Value, json};
use support::receiver::{Behaviour, Delivery, Receiver};
use support::{Backend, Options, TestApp, key, problem, sign, spawn_app, until};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SUBSCRIPTION_SECRET: &str = "whsec_subscription_secret_for_tests";

backend_tests! {
    n8n_request_shape_and_blind_resends_get_one_summary => n8n_request_shape_and_blind_resends_get_one_summary;
    async_callback_arrives_signed_after_two_failures => async_callback_arrives_signed_after_two_failures;
    events_reach_subscribers_once_per_event_id => events_reach_subscribers_once_per_event_id;
    dead_deliveries_and_failed_summaries_are_reported => dead_deliveries_and_failed_summaries_are_reported;
    an_abandoned_async_summary_is_reported_through_its_callback => an_abandoned_async_summary_is_reported_through_its_callback;
}

fn bundle(n: u32) -> Value {
    let mut b = support::fixture("01-receipt-delay-imported.json");
    b["event_id"] = json!(format!("n8n-test-{n}"));
    b
}

fn webhooks(allow: &[String], subscriptions: Vec<Subscription>) -> Option<WebhooksConfig> {
    Some(WebhooksConfig {
        callback_allow: allow.to_vec(),
        timeout_secs: 1,
        max_attempts: 6,
        subscriptions,
        ..WebhooksConfig::default()
    })
}

/// The server with callbacks allowed under the receiver's `/webhook-waiting/` (n8n's resume URLs).
async fn with_callbacks_to(backend: Backend, receiver: &str) -> TestApp {
    spawn_app(
        backend,
        Options {
            webhooks: webhooks(&[format!("{receiver}/webhook-waiting/")], vec![]),
            ..Options::default()
        },
    )
    .await
}

fn subscription(name: &str, url: &str, events: &[&str]) -> Subscription {
    Subscription {
        name: name.to_owned(),
        url: url.to_owned(),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        secret: SUBSCRIPTION_SECRET.to_owned().into(),
    }
}

/// What a receiver checks: the signature over the exact bytes with a fresh timestamp.
fn assert_signed(d: &Delivery, secret: &str) {
    let header = d.header("x-exbrief-signature");
    let t: i64 = header
        .strip_prefix("t=")
        .and_then(|r| r.split(',').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no timestamp in {header:?}"));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((now - t).abs() < 60, "stale signature t={t}");
    assert_eq!(
        header,
        sign(secret, t, &d.body),
        "signature does not verify"
    );
}

/// One HTTP/1.1 request written as n8n's HTTP Request node sends it: lower-case header names,
/// `connection: close`, the body bytes exactly as signed. Returns (status, headers, body).
async fn n8n_post(app: &TestApp, headers: &[(&str, String)], body: &[u8]) -> (u16, String, Value) {
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "POST /v1/summarize HTTP/1.1\r\nhost: {addr}\r\naccept: application/json,text/html,application/xhtml+xml,application/xml,text/*;q=0.9, image/*;q=0.8, */*;q=0.7\r\ncontent-type: application/json\r\nuser-agent: n8n\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("connection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    // The server closes the connection after its answer, as n8n asked.
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("the server did not close the connection")
        .unwrap();
    let text = String::from_utf8(answer).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let lower = head.to_ascii_lowercase();
    let body = if lower.contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    (
        status,
        lower,
        serde_json::from_str(&body).unwrap_or(Value::Null),
    )
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
}

async fn n8n_request_shape_and_blind_resends_get_one_summary(backend: Backend) {
    let app = spawn_app(backend, Options::default()).await;
    let (k, secret) = key(&app, "summarize", true).await;
    let secret = secret.unwrap();
    let mut b = bundle(1);
    b["messages"][0]["body"] = json!("Grüße von Jürgen Müller — Lieferung verspätet?");
    // JSON.stringify of the bundle: compact, non-ASCII as UTF-8; the Crypto node signs that
    // string and the HTTP Request node sends it as is (Raw or JSON body mode alike).
    let body = serde_json::to_string(&b).unwrap();
    let t = time::OffsetDateTime::now_utc().unix_timestamp();
    let headers = [
        ("authorization", format!("Bearer {k}")),
        ("x-exbrief-signature", sign(&secret, t, body.as_bytes())),
    ];
    let (status, head, first) = n8n_post(&app, &headers, body.as_bytes()).await;
    assert_eq!(status, 200, "{first}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert_eq!(first["status"], "pending_review");
    // Retry On Fail resends the same bytes and headers, e.g. after n8n's own timeout fired
    // while exbrief was answering: the same summary, nothing made twice.
    for _ in 0..2 {
        let (status, _, again) = n8n_post(&app, &headers, body.as_bytes()).await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["id"], first["id"]);
    }
    assert_eq!(
        app.sql("UPDATE summaries SET updated_at = updated_at")
            .await,
        1
    );
    // A non-retryable error says what the workflow builder has to change, and a blind resend
    // of it gets the same answer.
    let mut bad = b.clone();
    bad["event_type"] = json!("late_truck");
    bad["event_id"] = json!("n8n-test-bad");
    let bad = serde_json::to_string(&bad).unwrap();
    let headers = [
        ("authorization", format!("Bearer {k}")),
        ("x-exbrief-signature", sign(&secret, t, bad.as_bytes())),
    ];
    for _ in 0..2 {
        let (status, head, p) = n8n_post(&app, &headers, bad.as_bytes()).await;
        assert_eq!(status, 422, "{p}");
        assert!(head.contains("application/problem+json"));
        assert_eq!(p["field"], "event_type");
        assert!(
            p["detail"].as_str().unwrap().contains("receipt_delay"),
            "{p}"
        );
    }
    app.stop().await;
}

async fn async_callback_arrives_signed_after_two_failures(backend: Backend) {
    let (receiver, url) = Receiver::start(Behaviour {
        fail_first: 2,
        ..Behaviour::default()
    })
    .await;
    let app = with_callbacks_to(backend, &url).await;
    let (k, secret) = key(&app, "summarize", true).await;
    let secret = secret.unwrap();
    let mut b = bundle(2);
    b["callback"] = json!({"url": format!("{url}/webhook-waiting/4711")});
    let body = serde_json::to_string(&b).unwrap();
    let t = time::OffsetDateTime::now_utc().unix_timestamp();
    let headers = [
        ("authorization", format!("Bearer {k}")),
        ("x-exbrief-signature", sign(&secret, t, body.as_bytes())),
    ];
    let (status, head, accepted) = n8n_post(&app, &headers, body.as_bytes()).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();
    assert!(
        head.contains(&format!("location: /v1/summaries/{id}")),
        "{head}"
    );
    assert_eq!(accepted["location"], format!("/v1/summaries/{id}"));

    until("the callback to be accepted", || {
        receiver.processed().len() == 1
    })
    .await;
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 3, "two failures, then accepted");
    let event_id = deliveries[0].header("x-exbrief-event-id").to_owned();
    for d in &deliveries {
        assert_eq!(d.path, "/webhook-waiting/4711");
        assert_eq!(
            d.header("x-exbrief-event-id"),
            event_id,
            "one event id across tries"
        );
        assert_eq!(d.header("x-exbrief-event"), "summary.ready");
        assert_eq!(d.header("content-type"), "application/json");
        assert_signed(d, &secret);
    }
    // The same document the synchronous call returns, restored for its reader.
    let doc = deliveries[2].json();
    assert_eq!(doc["id"], id.as_str());
    let stored = app.get(&format!("/v1/summaries/{id}")).await;
    assert_eq!(stored.json, doc);
    assert!(doc["draft_reply"]["body"].is_string());
    assert!(doc.get("callback").is_none());

    // A blind resend of the accepted request: the same id, no second callback.
    let (status, _, again) = n8n_post(&app, &headers, body.as_bytes()).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["id"], id.as_str());
    assert_eq!(again["status"], "pending_review");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.deliveries().len(), 3);
    // The callback URL never reached a model or the prompt log.
    let log = app.get(&format!("/v1/audit/prompts?summary_id={id}")).await;
    assert!(
        !log.json.to_string().contains("webhook-waiting"),
        "{}",
        log.json
    );

    // The operator sees it in `exbrief outbox list`.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_exbrief"))
        .arg("--database-url")
        .arg(&app.db.url)
        .args(["outbox", "list"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    let line = listed
        .lines()
        .find(|l| l.contains("webhook.callback"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(line.contains(&event_id) && line.contains("done"), "{line}");
    assert!(line.contains(&url) && !line.contains("4711"), "{line}");

    // Without a callback, `Prefer: respond-async` answers 202 and the summary is polled.
    let plain = serde_json::to_string(&bundle(3)).unwrap();
    let headers = [
        ("authorization", format!("Bearer {k}")),
        ("x-exbrief-signature", sign(&secret, t, plain.as_bytes())),
        ("prefer", "respond-async".to_owned()),
    ];
    let (status, head, accepted) = n8n_post(&app, &headers, plain.as_bytes()).await;
    assert_eq!(status, 202, "{accepted}");
    assert!(head.contains("preference-applied: respond-async"), "{head}");
    let location = accepted["location"].as_str().unwrap().to_owned();
    let start = Instant::now();
    loop {
        let s = app.get(&location).await;
        if s.json["status"] == "pending_review" {
            assert!(s.json["impact_summary"].is_object());
            break;
        }
        assert_eq!(s.json["status"], "processing");
        assert!(start.elapsed() < Duration::from_secs(15));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Callbacks go only under the allow-list, and only for keys that can sign them.
    let before = app
        .sql("UPDATE summaries SET updated_at = updated_at")
        .await;
    for (n, target) in [
        (4, "http://169.254.169.254/latest/meta-data/".to_owned()),
        (5, format!("{url}/webhook/other")),
        (6, "file:///etc/passwd".to_owned()),
    ] {
        let mut b = bundle(n);
        b["callback"] = json!({"url": target});
        let r = app.summarize(&b).await;
        problem(&r, 422, "callback-not-allowed");
        assert_eq!(r.json["field"], "callback.url");
        let detail = r.json["detail"].as_str().unwrap();
        let why = if n == 6 {
            "http:// or https://"
        } else {
            "webhooks.callback_allow"
        };
        assert!(detail.contains(why), "{detail}");
    }
    let mut b = bundle(7);
    b["callback"] = json!({"url": format!("{url}/webhook-waiting/1")});
    let r = app.summarize(&b).await; // the admin key has no signing secret
    problem(&r, 422, "callback-unsigned");
    assert!(r.json["detail"].as_str().unwrap().contains("--signed"));
    assert_eq!(
        app.sql("UPDATE summaries SET updated_at = updated_at")
            .await,
        before
    );
    app.stop().await;
}

async fn events_reach_subscribers_once_per_event_id(backend: Backend) {
    let (receiver, url) = Receiver::start(Behaviour {
        fail_first: 2,
        // Its answer to the first accepted event comes after exbrief's 1 s timeout.
        stall_first_ack: Some(Duration::from_millis(1500)),
        ..Behaviour::default()
    })
    .await;
    let app = spawn_app(
        backend,
        Options {
            webhooks: webhooks(
                &[],
                vec![subscription(
                    "n8n-decisions",
                    &format!("{url}/webhook/exbrief"),
                    &["summary.created", "review.approved", "review.rejected"],
                )],
            ),
            ..Options::default()
        },
    )
    .await;
    let mut b = bundle(8);
    b["reply_to"] =
        json!({"name": "Jürgen Müller", "email": "j.mueller@kunde.example", "lang": "de_DE"});
    let s = app.summarize(&b).await;
    assert_eq!(s.status, 200, "{}", s.json);
    let id = s.json["id"].as_str().unwrap().to_owned();
    let d = app
        .post_raw(
            &format!("/v1/reviews/{id}/decision"),
            Some("application/json"),
            json!({"decision": "approve", "reviewer": "anna@cs.example", "reply": "Sehr geehrter Herr Müller, die Lieferung kommt am Freitag."}).to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(d.status, 200, "{}", d.json);
    until("both events processed", || receiver.processed().len() == 2).await;
    // Let any redelivery in flight land before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let processed = receiver.processed();
    let deliveries = receiver.deliveries();
    let ids: Vec<&str> = processed
        .iter()
        .map(|d| d.header("x-exbrief-event-id"))
        .collect();
    assert_ne!(ids[0], ids[1]);
    // Two failures, the stalled answer's redelivery: more deliveries than events, yet every
    // event was acted on exactly once.
    assert!(deliveries.len() >= 5, "{} deliveries", deliveries.len());
    let redelivered = deliveries
        .iter()
        .filter(|d| d.header("x-exbrief-event-id") == ids[0])
        .count();
    assert!(
        redelivered >= 2,
        "the lost answer was not followed by a redelivery"
    );
    for d in &deliveries {
        assert_signed(d, SUBSCRIPTION_SECRET);
        assert_eq!(d.path, "/webhook/exbrief");
        let e = d.json();
        assert_eq!(e["id"], d.header("x-exbrief-event-id"));
        assert_eq!(e["type"], d.header("x-exbrief-event"));
    }
    let created = processed
        .iter()
        .map(Delivery::json)
        .find(|e| e["type"] == "summary.created")
        .unwrap();
    assert_eq!(created["data"]["id"], id.as_str());
    let approved = processed
        .iter()
        .map(Delivery::json)
        .find(|e| e["type"] == "review.approved")
        .unwrap();
    let data = &approved["data"];
    assert_eq!(data["summary_id"], id.as_str());
    assert_eq!(data["decision"], "approved");
    assert_eq!(data["reviewer"], "anna@cs.example");
    assert_eq!(
        data["final_reply"]["body"],
        "Sehr geehrter Herr Müller, die Lieferung kommt am Freitag."
    );
    // The send step needs the recipient: restored for the workflow, never stored in clear.
    assert_eq!(data["reply_to"]["email"], "j.mueller@kunde.example");
    assert_eq!(data["source"]["model"], b["source"]["model"]);
    let dump = app.dump().await;
    assert!(
        !dump
            .iter()
            .any(|(_, row)| row.contains("j.mueller@kunde.example")),
        "the e-mail address was stored in clear"
    );
    app.stop().await;
}

async fn dead_deliveries_and_failed_summaries_are_reported(backend: Backend) {
    let (broken, broken_url) = Receiver::start(Behaviour {
        always_fail: true,
        ..Behaviour::default()
    })
    .await;
    let (ops, ops_url) = Receiver::start(Behaviour::default()).await;
    let app = spawn_app(
        backend,
        Options {
            model: true,
            on_failure: exbrief::config::OnFailure::Error,
            max_retries: 0,
            webhooks: webhooks(
                &[format!("{broken_url}/"), format!("{ops_url}/")],
                vec![subscription(
                    "ops",
                    &format!("{ops_url}/dead"),
                    &["outbox.dead"],
                )],
            ),
            tweak: |c| c.webhooks.max_attempts = 2,
            ..Options::default()
        },
    )
    .await;
    let (k, secret) = key(&app, "summarize", true).await;
    let secret = secret.unwrap();
    let post = |b: Value| {
        let app = &app;
        let (k, secret) = (k.clone(), secret.clone());
        async move {
            let body = serde_json::to_string(&b).unwrap();
            let t = time::OffsetDateTime::now_utc().unix_timestamp();
            let headers = [
                ("authorization", format!("Bearer {k}")),
                ("x-exbrief-signature", sign(&secret, t, body.as_bytes())),
            ];
            n8n_post(app, &headers, body.as_bytes()).await
        }
    };
    // A callback whose receiver never accepts: dead after the budget, and an event says so.
    let mut b = bundle(9);
    b["callback"] = json!({"url": format!("{broken_url}/hook/secret-token")});
    let (status, _, accepted) = post(b).await;
    assert_eq!(status, 202, "{accepted}");
    until("the outbox.dead event", || ops.processed().len() == 1).await;
    assert_eq!(broken.deliveries().len(), 2, "max_attempts = 2");
    let dead = ops.processed()[0].clone();
    assert_signed(&dead, SUBSCRIPTION_SECRET);
    let e = dead.json();
    assert_eq!(e["type"], "outbox.dead");
    assert_eq!(e["data"]["kind"], "webhook.callback");
    assert_eq!(e["data"]["summary_id"], accepted["id"]);
    assert_eq!(e["data"]["attempts"], 2);
    assert!(
        e["data"]["last_error"].as_str().unwrap().contains("500"),
        "{e}"
    );
    assert_eq!(e["data"]["target"]["callback_origin"], broken_url.as_str());
    assert!(
        !e.to_string().contains("secret-token"),
        "the callback path leaked: {e}"
    );
    // Counters are per process, and this test runs once per backend in one process.
    let metrics = app.get_text("/metrics").await.2;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("exbrief_outbox_dead_total{kind=\"webhook.callback\"} ")),
        "{metrics}"
    );

    // The model is down and config says fail: the callback carries the problem a synchronous
    // caller would have had, and the claim is released for a retry.
    app.fake().always(support::Reply::Status(500, None));
    let mut b = bundle(10);
    b["callback"] = json!({"url": format!("{ops_url}/wait/1")});
    let (status, _, accepted) = post(b.clone()).await;
    assert_eq!(status, 202, "{accepted}");
    until("the failure callback", || ops.processed().len() == 2).await;
    let failed = ops.processed()[1].clone();
    assert_eq!(failed.header("x-exbrief-event"), "summary.failed");
    assert_eq!(failed.header("content-type"), "application/problem+json");
    assert_signed(&failed, &secret);
    let p = failed.json();
    assert_eq!(p["type"], "urn:exbrief:problem:model-unavailable");
    assert_eq!(p["status"], 503);
    assert_eq!(p["summary_id"], accepted["id"]);
    assert_eq!(p["event_id"], "n8n-test-10");
    let gone = app
        .get(&format!(
            "/v1/summaries/{}",
            accepted["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(gone.status, 404);
    // The model is back: the same request, resent, makes the summary.
    app.fake().always(support::Reply::Valid);
    let (status, _, retried) = post(b).await;
    assert_eq!(status, 202, "{retried}");
    until("the summary callback", || ops.processed().len() == 3).await;
    assert_eq!(
        ops.processed()[2].header("x-exbrief-event"),
        "summary.ready"
    );
    app.stop().await;
}

async fn an_abandoned_async_summary_is_reported_through_its_callback(backend: Backend) {
    let (receiver, url) = Receiver::start(Behaviour::default()).await;
    let app = with_callbacks_to(backend, &url).await;
    let (k, secret) = key(&app, "summarize", true).await;
    let key_id = k.split('_').nth(1).unwrap().to_owned();
    // A replica accepted an asynchronous request and died: its claim expired two leases ago
    // (the test server's lease is 30 s) and nobody resent the request.
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let id = uuid::Uuid::now_v7();
    let claim = exbrief::store::NewClaim {
        id,
        owner: uuid::Uuid::new_v4(),
        idempotency_key: "n8n-test-orphan".to_owned(),
        event_id: "n8n-test-orphan".to_owned(),
        event_type: "receipt_delay".to_owned(),
        request_sha256: "0".repeat(64),
        key_id: Some(key_id),
        policy_version: "x".to_owned(),
        policy_sha256: "x".to_owned(),
        lease_until_ms: now_ms - 61_000,
        created_at: exbrief::store::now(),
        callback_url: Some(format!("{url}/webhook-waiting/99")),
    };
    app.pipeline.store().claim(&claim).await.unwrap();
    // A claim still inside its grace (expired, but less than a lease ago) is left alone.
    let mut young = claim.clone();
    young.id = uuid::Uuid::now_v7();
    young.idempotency_key = "n8n-test-young".to_owned();
    young.lease_until_ms = now_ms - 1_000;
    app.pipeline.store().claim(&young).await.unwrap();

    until("the abandoned summary's callback", || {
        receiver.processed().len() == 1
    })
    .await;
    let told = receiver.processed()[0].clone();
    assert_eq!(told.path, "/webhook-waiting/99");
    assert_eq!(told.header("x-exbrief-event"), "summary.failed");
    assert_signed(&told, &secret.unwrap());
    let p = told.json();
    assert_eq!(p["type"], "urn:exbrief:problem:summary-abandoned");
    assert_eq!(p["summary_id"], id.to_string());
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("resend the same request")
    );
    // The claim is released, so a resend starts afresh; the young one still stands.
    assert_eq!(app.get(&format!("/v1/summaries/{id}")).await.status, 404);
    assert_eq!(
        app.get(&format!("/v1/summaries/{}", young.id)).await.json["status"],
        "processing"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.deliveries().len(), 1, "told once");
    app.stop().await;
}
