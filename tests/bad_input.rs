#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Bad input gets a 4xx application/problem+json naming what is wrong, and never a 5xx.

mod support;

use proptest::prelude::*;
use serde_json::{Value, json};
use support::{Backend, Options, spawn_app};

fn minimal() -> Value {
    json!({
        "event_id": "evt-minimal-1",
        "event_type": "stockout_risk",
        "occurred_at": "2026-11-20T06:00:00Z",
        "source": {"system": "odoo", "model": "stock.quant", "res_id": 3}
    })
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

fn nested(depth: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..depth {
        v = json!([v]);
    }
    v
}

backend_tests! {
    each_bad_input_is_a_named_problem => each_bad_input_is_a_named_problem;
    a_minimal_bundle_is_enough => a_minimal_bundle_is_enough;
}

async fn a_minimal_bundle_is_enough(backend: Backend) {
    for model in [false, true] {
        let app = spawn_app(
            backend,
            Options {
                model,
                ..Options::default()
            },
        )
        .await;
        let r = app.summarize(&minimal()).await;
        assert_eq!(r.status, 200, "{}", r.json);
        let r = app
            .summarize(&with(
                with(minimal(), "event_id", json!("m2")),
                "reply_to",
                json!({"lang": "de_DE"}),
            ))
            .await;
        assert_eq!(r.status, 200, "{}", r.json);
        app.stop().await;
    }
}

async fn each_bad_input_is_a_named_problem(backend: Backend) {
    let app = spawn_app(backend, Options::default()).await;
    let json_ct = Some("application/json");
    // (what, content type, body, status, problem slug, text the detail or field must mention)
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "malformed JSON",
            json_ct,
            b"{\"event_id\": ".to_vec(),
            400,
            "malformed-json",
            "EOF",
        ),
        (
            "wrong content type",
            Some("text/plain"),
            serde_json::to_vec(&minimal()).unwrap(),
            415,
            "unsupported-media-type",
            "text/plain",
        ),
        (
            "no content type",
            None,
            serde_json::to_vec(&minimal()).unwrap(),
            415,
            "unsupported-media-type",
            "(none)",
        ),
        (
            "missing event_id",
            json_ct,
            serde_json::to_vec(&without(minimal(), "event_id")).unwrap(),
            422,
            "invalid-bundle",
            "event_id",
        ),
        (
            "over-long event_id",
            json_ct,
            serde_json::to_vec(&with(minimal(), "event_id", json!("e".repeat(201)))).unwrap(),
            422,
            "invalid-bundle",
            "201",
        ),
        (
            "empty event_id",
            json_ct,
            serde_json::to_vec(&with(minimal(), "event_id", json!(""))).unwrap(),
            422,
            "invalid-bundle",
            "event_id",
        ),
        (
            "unknown event_type",
            json_ct,
            serde_json::to_vec(&with(minimal(), "event_type", json!("meteor_strike"))).unwrap(),
            422,
            "invalid-bundle",
            "meteor_strike",
        ),
        (
            "unknown task",
            json_ct,
            serde_json::to_vec(&with(minimal(), "tasks", json!(["haiku"]))).unwrap(),
            422,
            "invalid-bundle",
            "haiku",
        ),
        (
            "empty tasks",
            json_ct,
            serde_json::to_vec(&with(minimal(), "tasks", json!([]))).unwrap(),
            422,
            "invalid-bundle",
            "at least one task",
        ),
        (
            "invalid occurred_at",
            json_ct,
            serde_json::to_vec(&with(minimal(), "occurred_at", json!("2026-13-45"))).unwrap(),
            422,
            "invalid-bundle",
            "occurred_at",
        ),
        (
            "invalid message date",
            json_ct,
            serde_json::to_vec(&with(
                minimal(),
                "messages",
                json!([{"role": "customer", "body": "hi", "sent_at": "friday"}]),
            ))
            .unwrap(),
            422,
            "invalid-bundle",
            "messages[0].sent_at",
        ),
        (
            "unknown field",
            json_ct,
            serde_json::to_vec(&with(minimal(), "taks", json!(["classification"]))).unwrap(),
            422,
            "invalid-bundle",
            "taks",
        ),
        (
            "unknown prompt version",
            json_ct,
            serde_json::to_vec(&with(
                minimal(),
                "prompt_versions",
                json!({"classification": "v99"}),
            ))
            .unwrap(),
            422,
            "invalid-bundle",
            "v99",
        ),
        (
            "not an object",
            json_ct,
            b"[1, 2, 3]".to_vec(),
            422,
            "invalid-bundle",
            "JSON object",
        ),
        (
            "too deep",
            json_ct,
            serde_json::to_vec(&with(minimal(), "facts", json!({"x": nested(70)}))).unwrap(),
            400,
            "too-deep",
            "64",
        ),
        (
            "invalid UTF-8",
            json_ct,
            b"{\"event_id\": \"\xff\xfe\"}".to_vec(),
            400,
            "invalid-utf8",
            "UTF-8",
        ),
        (
            "NUL in a string",
            json_ct,
            serde_json::to_vec(&with(
                minimal(),
                "messages",
                json!([{"role": "customer", "body": "a\u{0}b"}]),
            ))
            .unwrap(),
            422,
            "invalid-bundle",
            "messages[0].body",
        ),
        (
            "unknown policy",
            json_ct,
            serde_json::to_vec(&with(minimal(), "policy", json!("lenient"))).unwrap(),
            422,
            "invalid-bundle",
            "lenient",
        ),
        (
            "over the size limit",
            json_ct,
            serde_json::to_vec(&with(
                minimal(),
                "facts",
                json!({"blob": "x".repeat(1_100_000)}),
            ))
            .unwrap(),
            413,
            "body-too-large",
            "max_body_bytes",
        ),
    ];
    for (what, ct, body, status, kind, mention) in cases {
        let r = app.post_raw("/v1/summarize", ct, body, &[]).await;
        assert_eq!(r.status, status, "{what}: {}", r.json);
        assert_eq!(r.content_type, "application/problem+json", "{what}");
        assert_eq!(
            r.json["type"],
            format!("urn:exbrief:problem:{kind}"),
            "{what}: {}",
            r.json
        );
        assert_eq!(r.json["status"], status, "{what}");
        let text = format!("{} {}", r.json["detail"], r.json["field"]);
        assert!(text.contains(mention), "{what}: `{mention}` not in {text}");
    }
    let r = app
        .post_raw(
            "/v1/summarize",
            json_ct,
            serde_json::to_vec(&minimal()).unwrap(),
            &[("Idempotency-Key", "")],
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json["field"], "Idempotency-Key");
    let r = app.get("/v1/summaries/%FF").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.content_type, "application/problem+json");
    let r = app.get("/v1/summarize").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.content_type, "application/problem+json");
    // Nothing above was stored: a valid bundle with the same event_id is still new.
    let r = app.summarize(&minimal()).await;
    assert_eq!(r.status, 200);
    app.stop().await;
}

/// The bundle's top-level fields.
const FIELDS: [&str; 11] = [
    "event_id",
    "event_type",
    "occurred_at",
    "source",
    "tasks",
    "facts",
    "messages",
    "reply_to",
    "write_back",
    "prompt_versions",
    "locale",
];

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        ".{0,6}\u{0}.{0,3}".prop_map(Value::String),
        "[0-9 +()-]{0,30}".prop_map(Value::String),
        prop::sample::select(vec![
            "receipt_delay",
            "2026-11-20T06:00:00Z",
            "impact_summary",
            "customer",
            "odoo",
            "v1"
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    ".{0,12}",
                    prop::sample::select([&FIELDS[..], &["role", "body", "name"]].concat())
                        .prop_map(str::to_owned)
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Either wholly arbitrary JSON, or a valid bundle with one field replaced by arbitrary JSON.
fn hostile_bundle() -> impl Strategy<Value = Value> {
    let fields = prop::sample::select(FIELDS.to_vec());
    prop_oneof![
        arbitrary_json(),
        (fields, arbitrary_json(), any::<u32>()).prop_map(|(field, value, n)| {
            let mut b = minimal();
            b["event_id"] = json!(format!("prop-{n}"));
            b[field] = value;
            b
        }),
    ]
}

#[test]
fn no_json_document_produces_a_server_error_on_sqlite() {
    no_json_document_produces_a_server_error(Backend::Sqlite);
}

#[test]
fn no_json_document_produces_a_server_error_on_postgres() {
    if std::env::var("EXBRIEF_TEST_PG_URL").is_err() {
        eprintln!("EXBRIEF_TEST_PG_URL not set: PostgreSQL variant skipped");
        return;
    }
    no_json_document_produces_a_server_error(Backend::Postgres);
}

fn no_json_document_produces_a_server_error(backend: Backend) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = rt.block_on(spawn_app(backend, Options::default()));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 200,
        ..ProptestConfig::default()
    });
    let result = runner.run(&hostile_bundle(), |doc| {
        let r = rt.block_on(app.summarize(&doc));
        prop_assert!(r.status < 500, "{} for {doc}: {}", r.status, r.json);
        if r.status >= 400 {
            prop_assert_eq!(r.content_type.as_str(), "application/problem+json");
        }
        Ok(())
    });
    rt.block_on(app.stop());
    result.unwrap();
}
