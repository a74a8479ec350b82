#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Who gets in and what bad input gets: keys and scopes, signed requests (tampered, replayed,
//! stale), rate limits and budgets, hostile bodies, SQL and path tricks in every filter and id
//! — each answered with the right 4xx problem and nothing stored. Plus `/metrics`.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Answer, Backend, Options, TestApp, key, problem, sign, spawn_app};

fn bundle(n: u32) -> Value {
    let mut b = support::fixture("01-receipt-delay-imported.json");
    b["event_id"] = json!(format!("security-test-{n}"));
    b
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Answer {
    // A client without the admin key `app.client` carries.
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", app.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = res.bytes().await.unwrap();
    Answer {
        status,
        content_type,
        headers,
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// Nothing a refused request could have written: no summary, no model call.
async fn nothing_stored(app: &TestApp) {
    let reviews = app.get("/v1/reviews?limit=200").await;
    assert_eq!(
        reviews.json["items"].as_array().unwrap().len(),
        0,
        "{}",
        reviews.json
    );
    let calls = app.get("/v1/audit/prompts").await;
    assert_eq!(calls.json["items"].as_array().unwrap().len(), 0);
}

backend_tests! {
    keys_and_scopes_decide_who_gets_in => keys_and_scopes_decide_who_gets_in;
    signed_requests_refuse_tampering_replays_and_stale_clocks => signed_requests_refuse_tampering_replays_and_stale_clocks;
    rate_limits_and_budgets_answer_429 => rate_limits_and_budgets_answer_429;
    hostile_bodies_and_tricky_ids_get_4xx_and_store_nothing => hostile_bodies_and_tricky_ids_get_4xx_and_store_nothing;
    metrics_count_requests_model_calls_and_redactions => metrics_count_requests_model_calls_and_redactions;
}

async fn keys_and_scopes_decide_who_gets_in(backend: Backend) {
    let app = spawn_app(backend, Options::default()).await;
    let body = Some(bundle(1).to_string().into_bytes());
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;
    let none = send(&app, post.clone(), "/v1/summarize", &[], body.clone()).await;
    problem(&none, 401, "unauthorized");
    assert!(none.headers.get("www-authenticate").is_some());
    assert!(
        none.json["detail"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer")
    );
    let forged = format!("exb_{}_{}", "abcdefghijkl", "A".repeat(43));
    for bad in [forged.as_str(), "not-a-key", "exb_", ""] {
        let auth = format!("Bearer {bad}");
        let r = send(
            &app,
            post.clone(),
            "/v1/summarize",
            &[("authorization", &auth)],
            body.clone(),
        )
        .await;
        problem(&r, 401, "unauthorized");
    }
    let (reviewer, _) = key(&app, "review", false).await;
    let bearer = format!("Bearer {reviewer}");
    let r = send(
        &app,
        post.clone(),
        "/v1/summarize",
        &[("authorization", &bearer)],
        body.clone(),
    )
    .await;
    problem(&r, 403, "forbidden");
    assert!(r.json["detail"].as_str().unwrap().contains("`summarize`"));
    assert_eq!(
        send(
            &app,
            get.clone(),
            "/v1/reviews",
            &[("authorization", &bearer)],
            None
        )
        .await
        .status,
        200
    );
    problem(
        &send(
            &app,
            get.clone(),
            "/v1/audit/prompts",
            &[("x-api-key", &reviewer)],
            None,
        )
        .await,
        403,
        "forbidden",
    );
    problem(
        &send(
            &app,
            get.clone(),
            "/metrics",
            &[("x-api-key", &reviewer)],
            None,
        )
        .await,
        403,
        "forbidden",
    );
    // Health and readiness stay open for probes.
    assert_eq!(
        send(&app, get.clone(), "/healthz", &[], None).await.status,
        200
    );
    assert_eq!(
        send(&app, get.clone(), "/readyz", &[], None).await.status,
        200
    );
    nothing_stored(&app).await;

    // A summarize key works with either header until it is revoked.
    let (writer, _) = key(&app, "summarize", false).await;
    let r = send(
        &app,
        post.clone(),
        "/v1/summarize",
        &[("x-api-key", &writer)],
        body.clone(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let writer_id = writer.split('_').nth(1).unwrap().to_owned();
    exbrief::keys::revoke(app.pipeline.store(), &writer_id)
        .await
        .unwrap();
    // A key's row is reused for `auth.key_cache_ms`: the revocation holds once that has passed.
    let cache_ms = exbrief::config::Config::default().auth.key_cache_ms;
    tokio::time::sleep(std::time::Duration::from_millis(cache_ms + 100)).await;
    let r = send(
        &app,
        post.clone(),
        "/v1/summarize",
        &[("x-api-key", &writer)],
        body.clone(),
    )
    .await;
    problem(&r, 401, "unauthorized");
    assert!(r.json["detail"].as_str().unwrap().contains("revoked"));
    // The model calls are logged under the key that asked, and the audit access under the admin.
    let calls = app.get("/v1/audit/prompts").await.json["items"].clone();
    assert!(
        calls
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["key_id"] == writer_id.as_str())
    );
    let access = app.get("/v1/audit/prompts?kind=access").await.json["items"].clone();
    assert!(
        access[0]["detail"]["actor"]
            .as_str()
            .unwrap()
            .starts_with("key:")
    );
    // Only hashes are stored.
    let dump = app.dump().await;
    assert!(
        dump.iter()
            .all(|(_, v)| !v.contains(&writer) && !v.contains(&reviewer))
    );
    app.stop().await;
}

async fn signed_requests_refuse_tampering_replays_and_stale_clocks(backend: Backend) {
    let app = spawn_app(backend, Options::default()).await;
    let (k, secret) = key(&app, "summarize", true).await;
    let secret = secret.unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let body = serde_json::to_vec(&bundle(2)).unwrap();
    // n8n's shape: lower-case header names, Connection: close, compact JSON.
    let post = |sig: Option<String>, body: Vec<u8>| {
        let app = &app;
        let k = k.clone();
        async move {
            let mut h: Vec<(&str, String)> =
                vec![("x-api-key", k), ("connection", "close".to_owned())];
            if let Some(s) = sig {
                h.push(("x-exbrief-signature", s));
            }
            let h: Vec<(&str, &str)> = h.iter().map(|(a, b)| (*a, b.as_str())).collect();
            send(app, reqwest::Method::POST, "/v1/summarize", &h, Some(body)).await
        }
    };
    problem(&post(None, body.clone()).await, 401, "signature-missing");
    problem(
        &post(Some("v1=abc".to_owned()), body.clone()).await,
        401,
        "bad-signature",
    );
    let mut tampered = body.clone();
    let at = tampered.len() - 2;
    tampered[at] = b' ';
    problem(
        &post(Some(sign(&secret, now, &body)), tampered).await,
        401,
        "bad-signature",
    );
    problem(
        &post(Some(sign("whsec_wrong", now, &body)), body.clone()).await,
        401,
        "bad-signature",
    );
    let stale = post(Some(sign(&secret, now - 310, &body)), body.clone()).await;
    problem(&stale, 401, "signature-expired");
    assert!(stale.json["detail"].as_str().unwrap().contains("300 s"));
    problem(
        &post(Some(sign(&secret, now + 310, &body)), body.clone()).await,
        401,
        "signature-expired",
    );
    nothing_stored(&app).await;

    // A refused request does not spend its signature (n8n's Retry On Fail resends it as is).
    let invalid = br#"{"event_id": "x"}"#.to_vec();
    let sig = sign(&secret, now, &invalid);
    problem(
        &post(Some(sig.clone()), invalid.clone()).await,
        422,
        "invalid-bundle",
    );
    problem(&post(Some(sig), invalid).await, 422, "invalid-bundle");

    let good = sign(&secret, now, &body);
    let first = post(Some(good.clone()), body.clone()).await;
    assert_eq!(first.status, 200, "{}", first.json);
    // n8n resends the same bytes and signature when its own timeout fired after exbrief had
    // answered: on /v1/summarize that is an idempotent replay of the stored summary.
    let resent = post(Some(good), body.clone()).await;
    assert_eq!(resent.status, 200, "{}", resent.json);
    assert_eq!(resent.json["id"], first.json["id"]);
    // Signed again, the same bundle is an idempotent repeat: the same summary.
    let again = post(Some(sign(&secret, now + 1, &body)), body.clone()).await;
    assert_eq!(again.json["id"], first.json["id"]);
    let summaries = app
        .sql("UPDATE summaries SET updated_at = updated_at")
        .await;
    assert_eq!(summaries, 1, "a replay made a second summary");
    // Elsewhere a spent signature is refused.
    let dry = serde_json::to_vec(&bundle(3)).unwrap();
    let sig = sign(&secret, now, &dry);
    let redact = |sig: String, body: Vec<u8>| {
        let k = k.clone();
        let app = &app;
        async move {
            send(
                app,
                reqwest::Method::POST,
                "/v1/redact",
                &[("x-api-key", &k), ("x-exbrief-signature", &sig)],
                Some(body),
            )
            .await
        }
    };
    let ok = redact(sig.clone(), dry.clone()).await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    problem(&redact(sig, dry).await, 401, "signature-replayed");
    app.stop().await;
}

async fn rate_limits_and_budgets_answer_429(backend: Backend) {
    let app = spawn_app(
        backend,
        Options {
            model: true,
            tweak: |c| {
                c.limits.requests_per_minute = 6;
                c.limits.burst = 3;
                c.limits.daily_token_budget = 400;
            },
            ..Options::default()
        },
    )
    .await;
    let (k, _) = key(&app, "summarize", false).await;
    let mut answers = Vec::new();
    for n in 0..4 {
        let body = serde_json::to_vec(&bundle(10 + n)).unwrap();
        answers.push(
            send(
                &app,
                reqwest::Method::POST,
                "/v1/summarize",
                &[("x-api-key", &k)],
                Some(body),
            )
            .await,
        );
    }
    // Three calls of 160 tokens each: the first summary spends 480 of the 400-token budget.
    assert_eq!(answers[0].status, 200, "{}", answers[0].json);
    problem(&answers[1], 429, "budget-exhausted");
    assert!(answers[1].headers.get("retry-after").is_some());
    // The burst of 3 is spent: the fourth request waits for the bucket.
    problem(&answers[3], 429, "rate-limited");
    let wait: u64 = answers[3].headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&wait), "{wait}");
    // Another key has its own bucket; a stored summary is returned whatever the budget.
    let (other, _) = key(&app, "summarize", false).await;
    let body = serde_json::to_vec(&bundle(10)).unwrap();
    let replay = send(
        &app,
        reqwest::Method::POST,
        "/v1/summarize",
        &[("x-api-key", &other)],
        Some(body),
    )
    .await;
    assert_eq!(replay.status, 200, "{}", replay.json);
    assert_eq!(replay.json["id"], answers[0].json["id"]);
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", app.base))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("exbrief_rate_limited_total{limit=\"requests\"}"));
    assert!(metrics.contains("exbrief_rate_limited_total{limit=\"budget\"}"));
    assert!(metrics.contains("exbrief_limit{name=\"daily_token_budget\"} 400"));
    app.stop().await;
}

async fn hostile_bodies_and_tricky_ids_get_4xx_and_store_nothing(backend: Backend) {
    let app = spawn_app(
        backend,
        Options {
            tweak: |c| c.limits.max_string_chars = 5_000,
            ..Options::default()
        },
    )
    .await;
    let post = |body: Vec<u8>, ct: &'static str| {
        let app = &app;
        async move { app.post_raw("/v1/summarize", Some(ct), body, &[]).await }
    };
    let json_ct = "application/json";
    let mut deep = String::new();
    for _ in 0..10_000 {
        deep.push('[');
    }
    problem(&post(deep.into_bytes(), json_ct).await, 400, "too-deep");
    problem(
        &post(vec![b'{', 0xff, 0xfe, b'}'], json_ct).await,
        400,
        "invalid-utf8",
    );
    // Just over the limit: a body far larger is refused before it is all sent (a reset, not a
    // readable 413), which would make this test flaky.
    problem(
        &post(vec![b'x'; 1_100_000], json_ct).await,
        413,
        "body-too-large",
    );
    problem(
        &post(b"{}".to_vec(), "text/plain").await,
        415,
        "unsupported-media-type",
    );
    let mut huge = bundle(20);
    huge["messages"][0]["body"] = json!("a".repeat(6_000));
    let r = post(huge.to_string().into_bytes(), json_ct).await;
    problem(&r, 422, "bundle-too-large");
    assert_eq!(r.json["field"], "messages[0].body");
    let mut many = bundle(21);
    many["messages"] = json!(vec![json!({"role": "customer", "body": "hi"}); 201]);
    problem(
        &post(many.to_string().into_bytes(), json_ct).await,
        422,
        "bundle-too-large",
    );
    let mut nul = bundle(22);
    nul["messages"][0]["body"] = json!("before\u{0}after");
    problem(
        &post(nul.to_string().into_bytes(), json_ct).await,
        422,
        "invalid-bundle",
    );
    for key in ["__proto__", "constructor", "prototype"] {
        let mut p = bundle(23);
        p["facts"][key] = json!({"polluted": true});
        let r = post(p.to_string().into_bytes(), json_ct).await;
        problem(&r, 422, "invalid-bundle");
        assert_eq!(r.json["field"], format!("facts.{key}"));
    }
    // SQL metacharacters in every filter are data; tricky ids are simply not found.
    for q in [
        "status=pending_review%27%20OR%201%3D1--",
        "event_type=%27%3B%20DROP%20TABLE%20summaries%3B--",
        "severity=high%22%20OR%20%221%22%3D%221",
        "cursor=1%20OR%201%3D1",
    ] {
        let r = app.get(&format!("/v1/reviews?{q}")).await;
        assert!(r.status == 200 || r.status == 422, "{q}: {}", r.json);
        if r.status == 200 {
            assert_eq!(r.json["items"].as_array().unwrap().len(), 0);
        }
    }
    for path in [
        "/v1/summaries/..%2F..%2Fetc%2Fpasswd",
        "/v1/summaries/%27%20OR%20%271%27%3D%271",
        "/v1/reviews/..%2F..%2Fstats",
        "/v1/audit/prompts/%00",
    ] {
        let r = app.get(path).await;
        problem(&r, 404, "not-found");
    }
    let r = app
        .post_raw(
            "/v1/reviews/..%2Fx/decision",
            Some(json_ct),
            br#"{"decision":"approve","reviewer":"x"}"#.to_vec(),
            &[],
        )
        .await;
    problem(&r, 404, "not-found");
    nothing_stored(&app).await;
    app.stop().await;
}

async fn metrics_count_requests_model_calls_and_redactions(backend: Backend) {
    let app = spawn_app(
        backend,
        Options {
            model: true,
            ..Options::default()
        },
    )
    .await;
    assert_eq!(app.summarize(&bundle(30)).await.status, 200);
    let r = app.get("/readyz").await;
    assert_eq!(r.json["database"]["migrations"], "applied", "{}", r.json);
    assert!(r.json["loaded"]["prompt_versions"].as_u64().unwrap() >= 3);
    let text = reqwest::Client::new()
        .get(format!("{}/metrics", app.base))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "exbrief_http_requests_total{route=\"/v1/summarize\",method=\"POST\",status=\"200\"}",
        "exbrief_http_request_duration_seconds_bucket{route=\"/v1/summarize\",le=\"+Inf\"}",
        "exbrief_model_calls_total{provider=\"openai\",model=\"fake-model\",task=\"classification\",attempt_kind=\"first\",outcome=\"ok\"}",
        "exbrief_model_tokens_total{model=\"fake-model\",task=\"customer_reply\",kind=\"prompt\"}",
        "exbrief_model_call_duration_seconds_count{model=\"fake-model\",task=\"impact_summary\"}",
        "exbrief_redactions_total{class=\"customer_pii\"",
        "exbrief_reviews{status=\"pending_review\"} 1",
        "exbrief_limit{name=\"requests_per_minute\"} 600",
        "# TYPE exbrief_outbox_rows gauge",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
    // A migration the database lacks makes the service unready.
    app.sql(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .await;
    let r = app.get("/readyz").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json["database"]["migrations"], "1 pending");
    tokio::time::sleep(Duration::from_millis(1)).await;
    app.stop().await;
}

/// A request that outlives `server.request_timeout_secs` (plus a margin) gets a problem, and the
/// summary it started still completes for the retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_timeout_gets_503_and_the_retry_gets_the_summary() {
    let app = spawn_app(
        Backend::Sqlite,
        Options {
            model: true,
            tweak: |c| {
                c.server.request_timeout_secs = 1;
                c.llm.timeout_secs = 30;
            },
            ..Options::default()
        },
    )
    .await;
    app.fake().set_delay(Duration::from_millis(7_000));
    let r = app.summarize(&bundle(40)).await;
    problem(&r, 503, "request-timeout");
    assert!(r.headers.get("retry-after").is_some());
    app.fake().set_delay(Duration::from_millis(0));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let again = app.summarize(&bundle(40)).await;
    assert_eq!(again.status, 200, "{}", again.json);
    app.stop().await;
}
