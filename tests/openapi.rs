#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `/openapi.json` describes every route the server answers, and the server answers every
//! route it describes.

mod support;

use serde_json::Value;
use support::{Backend, Options, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_and_the_router_agree() {
    let app = spawn_app(Backend::Sqlite, Options::default()).await;
    let doc = reqwest::get(format!("{}/openapi.json", app.base))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let problem = &doc["components"]["schemas"]["Problem"];
    assert!(problem["properties"]["type"].is_object(), "{problem}");
    let bundle = &doc["components"]["schemas"]["Bundle"];
    let required: Vec<&str> = bundle["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for f in ["event_id", "event_type", "occurred_at", "source"] {
        assert!(required.contains(&f), "{required:?}");
    }
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let url = format!(
                "{}{}",
                app.base,
                path.replace("{id}", &uuid::Uuid::now_v7().to_string())
            );
            let req = match method.as_str() {
                "get" => app.client.get(&url),
                "post" => app
                    .client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body("{}"),
                other => panic!("unexpected method {other} on {path}"),
            };
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            // The router's fallbacks say "no route" / "not allowed on this path".
            assert!(
                !body.contains("no route for this")
                    && !body.contains("is not allowed on this path"),
                "{method} {path} is documented but not routed: {status} {body}"
            );
            if path.starts_with("/v1/") || path == "/metrics" {
                assert!(
                    op["security"].is_array(),
                    "{method} {path} names no security"
                );
                assert!(
                    op["responses"]["401"]["content"]["application/problem+json"].is_object(),
                    "{method} {path} does not document its 401 problem"
                );
            }
        }
    }
    let listed: Vec<String> = paths
        .iter()
        .flat_map(|(p, i)| {
            i.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{m} {p}"))
        })
        .collect();
    assert!(
        operations >= 23,
        "only {operations} operations documented: {listed:?}"
    );
    app.stop().await;
}

/// Routes may only be added through utoipa's documenting router (`.routes(routes!(…))`):
/// a plain `.route(…)` would serve a path the document does not list.
#[test]
fn every_route_is_added_through_the_documenting_router() {
    let mut stack = vec![support::repo().join("src/http")];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files += 1;
                let text = std::fs::read_to_string(&p).unwrap();
                for needle in [".route(", ".route_service(", ".nest(", ".nest_service("] {
                    assert!(!text.contains(needle), "{} uses {needle}", p.display());
                }
            }
        }
    }
    assert!(files >= 10);
}
