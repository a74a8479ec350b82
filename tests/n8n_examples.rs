#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The example n8n workflows in `examples/n8n/` against the real server: every HTTP Request
//! node names a route, method and headers that `/openapi.json` describes; every Code node runs
//! (under `tests/n8n/run_code_node.js`, n8n's Code-node globals in Node.js) and what it builds is
//! accepted by the server, signed as the Crypto node signs; the verifying Code nodes accept the
//! server's real deliveries and refuse altered ones; and every `$json.…` path an IF or send node
//! reads exists in the real documents.

mod support;

use std::process::Command;

use base64::Engine;
use exbrief::config::{Subscription, WebhooksConfig};
use serde_json::{Value, json};
use support::receiver::{Behaviour, Delivery, Receiver};
use support::{Backend, Options, TestApp, key, sign, spawn_app, until};

const WORKFLOWS: [&str; 3] = [
    "odoo-exception-to-exbrief.json",
    "review-decided.json",
    "async-summarize.json",
];

fn workflow(name: &str) -> Value {
    let path = support::repo().join("examples/n8n").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

fn node<'a>(w: &'a Value, name: &str) -> &'a Value {
    w["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no node {name}"))
}

/// Runs one Code node with n8n's globals; `Err` carries what it threw.
fn run_code(workflow: &str, node: &str, input: Value) -> Result<Value, String> {
    let dir = tempfile::tempdir().unwrap();
    let input_path = dir.path().join("input.json");
    std::fs::write(&input_path, input.to_string()).unwrap();
    let out = Command::new("node")
        .arg(support::repo().join("tests/n8n/run_code_node.js"))
        .arg(support::repo().join("examples/n8n").join(workflow))
        .arg(node)
        .arg(&input_path)
        .output()
        .expect("node (Node.js) must be installed to test the n8n Code nodes");
    match out.status.code() {
        Some(0) => Ok(serde_json::from_slice(&out.stdout).unwrap()),
        Some(1) => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        _ => panic!(
            "the harness failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Every `$json.a.b` path in an expression.
fn json_paths(expr: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for part in expr.split("$json.").skip(1) {
        let path: String = part
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            .collect();
        out.push(path.split('.').map(str::to_owned).collect());
    }
    out
}

fn resolve<'a>(v: &'a Value, path: &[String]) -> &'a Value {
    path.iter().fold(v, |v, k| &v[k.as_str()])
}

/// Every `$json.…` path the node's parameters read resolves to a value in `data`.
fn reads_exist(w: &Value, node_name: &str, data: &Value) {
    let params = node(w, node_name)["parameters"].to_string();
    let paths = json_paths(&params);
    assert!(!paths.is_empty(), "{node_name} reads nothing");
    for p in paths {
        let v = resolve(data, &p);
        assert!(
            !v.is_null(),
            "{node_name} reads $json.{} which the real data does not have: {data}",
            p.join(".")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_reference_only_routes_and_headers_that_exist() {
    let app = spawn_app(Backend::Sqlite, Options::default()).await;
    let api: Value = reqwest::get(format!("{}/openapi.json", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut requests = 0;
    for file in WORKFLOWS {
        let w = workflow(file);
        assert!(w["name"].is_string() && w["settings"].is_object(), "{file}");
        // `n8n import:workflow --input=FILE` (2.41.1) needs the id in the file.
        assert_eq!(w["id"].as_str().map(str::len), Some(16), "{file}: id");
        let nodes = w["nodes"].as_array().unwrap();
        let names: Vec<&str> = nodes.iter().map(|n| n["name"].as_str().unwrap()).collect();
        for n in nodes {
            for field in ["id", "type", "typeVersion", "position", "parameters"] {
                assert!(
                    !n[field].is_null(),
                    "{file}: node {} lacks {field}",
                    n["name"]
                );
            }
            assert!(
                n["type"].as_str().unwrap().starts_with("n8n-nodes-base."),
                "{file}: only built-in nodes: {}",
                n["type"]
            );
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{file}: node names repeat");
        for (from, outputs) in w["connections"].as_object().unwrap() {
            assert!(names.contains(&from.as_str()), "{file}: {from}");
            for out in outputs["main"].as_array().unwrap() {
                for c in out.as_array().unwrap() {
                    let to = c["node"].as_str().unwrap();
                    assert!(names.contains(&to), "{file}: connection to missing {to}");
                }
            }
        }
        for n in nodes
            .iter()
            .filter(|n| n["type"] == "n8n-nodes-base.httpRequest")
        {
            requests += 1;
            let p = &n["parameters"];
            let url = p["url"].as_str().unwrap();
            let path = url.rsplit("}}").next().unwrap();
            let method = p["method"].as_str().unwrap().to_ascii_lowercase();
            let op = &api["paths"][path][&method];
            assert!(op.is_object(), "{file}: {method} {path} is not a route");
            let known: Vec<String> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "header")
                .map(|p| p["name"].as_str().unwrap().to_ascii_lowercase())
                .collect();
            for h in p["headerParameters"]["parameters"].as_array().unwrap() {
                let name = h["name"].as_str().unwrap().to_ascii_lowercase();
                assert!(
                    known.contains(&name),
                    "{file}: header {name} is not one the route reads ({known:?})"
                );
            }
            // The signed string is sent as is (a JSON body would be serialised again).
            assert_eq!(p["contentType"], "raw", "{file}");
            assert_eq!(p["rawContentType"], "application/json", "{file}");
            assert_eq!(p["genericAuthType"], "httpHeaderAuth", "{file}");
            // n8n's limits: at most 5 tries, at most 5 s apart.
            assert_eq!(n["retryOnFail"], true, "{file}");
            assert!(n["maxTries"].as_u64().unwrap() <= 5);
            assert!(n["waitBetweenTries"].as_u64().unwrap() <= 5000);
        }
        for n in nodes.iter().filter(|n| n["type"] == "n8n-nodes-base.if") {
            for c in n["parameters"]["conditions"]["conditions"]
                .as_array()
                .unwrap()
            {
                let right = c["rightValue"].as_str().unwrap();
                let allowed: &[&str] = match c["leftValue"].as_str().unwrap() {
                    "={{ $json.classification.severity }}" => {
                        &["low", "medium", "high", "critical"]
                    }
                    "={{ $json.type }}" => &exbrief::webhook::EVENTS,
                    // A decision without a recipient goes to a person, not to the mailer.
                    "={{ $json.data.reply_to.email }}" => {
                        assert_eq!(c["operator"]["operation"], "notEmpty", "{file}");
                        &[""]
                    }
                    other => panic!("{file}: IF on {other}"),
                };
                assert!(allowed.contains(&right), "{file}: {right}");
            }
        }
    }
    assert_eq!(requests, 2, "workflows (a) and (c) call exbrief");
    app.stop().await;
}

/// A Webhook or Wait node's item for a POST it received with "Raw Body" on.
fn webhook_item(d: &Delivery) -> Value {
    let headers: serde_json::Map<String, Value> = d
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap())))
        .collect();
    json!({
        "json": {"headers": headers, "params": {}, "query": {}, "body": {}},
        "binary": {"data": {
            "data": base64::engine::general_purpose::STANDARD.encode(&d.body),
            "mimeType": d.header("content-type"),
        }},
    })
}

fn tampered(d: &Delivery) -> Delivery {
    let mut d = d.clone();
    let text = String::from_utf8(d.body.to_vec()).unwrap();
    d.body = text.replacen("\"id\"", "\"id\" ", 1).into_bytes().into();
    d
}

/// The HTTP Request node's send: the Build bundle output, signed as the Crypto node does
/// (HMAC-SHA256 hex of `t + "." + body` with the credential's secret), headers as configured.
async fn submit(app: &TestApp, k: &str, secret: &str, built: &Value) -> (u16, Value) {
    let body = built["body"].as_str().unwrap();
    let t = built["t"].as_i64().unwrap();
    let v1 = sign(secret, t, body.as_bytes());
    let res = reqwest::Client::new()
        .post(format!("{}/v1/summarize", app.base))
        .header("authorization", format!("Bearer {k}"))
        .header("content-type", "application/json")
        .header("x-exbrief-signature", v1)
        .header("idempotency-key", built["event_id"].as_str().unwrap())
        .header("connection", "close")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_nodes_work_against_the_real_server() {
    const WEBHOOK_SECRET: &str = "whsec_n8n_decisions_subscription";
    let (receiver, url) = Receiver::start(Behaviour::default()).await;
    let app = spawn_app(
        Backend::Sqlite,
        Options {
            webhooks: Some(WebhooksConfig {
                callback_allow: vec![format!("{url}/webhook-waiting/")],
                subscriptions: vec![Subscription {
                    name: "n8n-decisions".to_owned(),
                    url: format!("{url}/webhook/exbrief-decisions"),
                    events: vec!["review.approved".to_owned(), "review.rejected".to_owned()],
                    secret: WEBHOOK_SECRET.to_owned().into(),
                }],
                ..WebhooksConfig::default()
            }),
            ..Options::default()
        },
    )
    .await;
    let (k, secret) = key(&app, "summarize", true).await;
    let secret = secret.unwrap();

    // (a) Odoo's automation-rule webhook → Build bundle → signed submit → route by severity.
    let a = workflow(WORKFLOWS[0]);
    let odoo = json!({"items": [{"json": {"headers": {"content-type": "application/json"},
        "params": {}, "query": {}, "body": {
            "_model": "stock.picking", "_id": 214, "_name": "LYO/OUT/00214",
            "name": "LYO/OUT/00214", "write_date": "2026-11-12 05:30:00",
            "partner_id": [21, "Roulements Dupuis SARL"], "origin": "S00063",
            "scheduled_date": "2026-11-12 07:00:00", "date_deadline": "2026-11-13 16:00:00",
            "state": "confirmed", "picking_type_code": "outgoing"}}}]});
    let built = run_code(WORKFLOWS[0], "Build bundle", odoo.clone()).unwrap();
    let built = &built["items"][0]["json"];
    let (status, doc) = submit(&app, &k, &secret, built).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["event_type"], "allocation_failure");
    reads_exist(&a, "High or critical?", &doc);
    // The record unchanged, Odoo fires again: the same bytes, the same summary.
    let again = run_code(WORKFLOWS[0], "Build bundle", odoo).unwrap();
    assert_eq!(again["items"][0]["json"]["body"], built["body"]);
    let (status, twin) = submit(&app, &k, &secret, &again["items"][0]["json"]).await;
    assert_eq!((status, &twin["id"]), (200, &doc["id"]));
    // The error branch reads the problem exbrief answered.
    let mut bad: Value = serde_json::from_str(built["body"].as_str().unwrap()).unwrap();
    bad["event_type"] = json!("late_truck");
    bad["event_id"] = json!("n8n-example-bad");
    let bad = json!({"body": bad.to_string(), "event_id": "n8n-example-bad", "t": built["t"]});
    let (status, problem) = submit(&app, &k, &secret, &bad).await;
    assert_eq!(status, 422);
    let handled = run_code(
        WORKFLOWS[0],
        "Handle exbrief error",
        json!({"items": [{"json": {"error": {"message": format!("422 - {problem}"),
            "status": 422, "code": "ERR_BAD_REQUEST"}}}]}),
    )
    .unwrap();
    let h = &handled["items"][0]["json"];
    assert_eq!(h["status"], 422);
    assert_eq!(h["detail"], problem["detail"]);
    assert_eq!(h["retryable"], false);

    // (c) async: Build bundle with the Wait node's resume URL → 202 → the signed callback
    // resumes the Wait node → Verify callback signature → route by severity.
    let c = workflow(WORKFLOWS[2]);
    let resume = format!("{url}/webhook-waiting/77");
    let built = run_code(
        WORKFLOWS[2],
        "Build bundle",
        json!({"items": [{"json": {}}], "resumeUrl": resume, "executionId": "77"}),
    )
    .unwrap();
    let (status, accepted) = submit(&app, &k, &secret, &built["items"][0]["json"]).await;
    assert_eq!(status, 202, "{accepted}");
    until("the callback", || !receiver.deliveries().is_empty()).await;
    let callback = receiver.deliveries()[0].clone();
    assert_eq!(callback.path, "/webhook-waiting/77");
    let verify = |d: &Delivery| {
        run_code(
            WORKFLOWS[2],
            "Verify callback signature",
            json!({"items": [webhook_item(d)], "env": {"EXBRIEF_SIGNING_SECRET": secret},
                "nodes": {"Submit to exbrief": [{"json": accepted}]}}),
        )
    };
    let verified = verify(&callback).unwrap();
    let doc = &verified["items"][0]["json"];
    assert_eq!(doc["id"], accepted["id"]);
    reads_exist(&c, "High or critical?", doc);
    let refused = verify(&tampered(&callback)).unwrap_err();
    assert!(refused.contains("does not match"), "{refused}");

    // (b) a reviewer approves that summary → the decision webhook → Verify signature (once per
    // event id) → Approved? → Send reply.
    let b = workflow(WORKFLOWS[1]);
    let id = accepted["id"].as_str().unwrap();
    let decided = app
        .post_raw(
            &format!("/v1/reviews/{id}/decision"),
            Some("application/json"),
            json!({"decision": "approve", "reviewer": "anna@cs.example",
                "reply": "Guten Tag, die Lieferung kommt am Montag."})
            .to_string()
            .into_bytes(),
            &[],
        )
        .await;
    assert_eq!(decided.status, 200, "{}", decided.json);
    until("the decision webhook", || receiver.deliveries().len() == 2).await;
    let event = receiver.deliveries()[1].clone();
    let input = |d: &Delivery, seen: Value| {
        json!({"items": [webhook_item(d)], "env": {"EXBRIEF_WEBHOOK_SECRET": WEBHOOK_SECRET},
            "staticData": seen})
    };
    let first = run_code(WORKFLOWS[1], "Verify signature", input(&event, json!({}))).unwrap();
    let e = &first["items"][0]["json"];
    assert_eq!(e["type"], "review.approved");
    reads_exist(&b, "Approved?", e);
    reads_exist(&b, "Has recipient?", e);
    reads_exist(&b, "Send reply", e);
    assert_eq!(e["data"]["reply_to"]["email"], "einkauf@kunde.example");
    // A repeated delivery of the same event passes nothing on.
    let repeat = run_code(
        WORKFLOWS[1],
        "Verify signature",
        input(&event, first["staticData"].clone()),
    )
    .unwrap();
    assert_eq!(repeat["items"], json!([]));
    let refused = run_code(
        WORKFLOWS[1],
        "Verify signature",
        input(&tampered(&event), json!({})),
    )
    .unwrap_err();
    assert!(refused.contains("does not match"), "{refused}");
    let wrong = json!({"items": [webhook_item(&event)],
        "env": {"EXBRIEF_WEBHOOK_SECRET": "whsec_someone_else"}, "staticData": {}});
    assert!(run_code(WORKFLOWS[1], "Verify signature", wrong).is_err());
    app.stop().await;
}
