#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The Odoo client against the fake Odoo, over both external APIs.

mod support;

use exbrief::config::{OdooApi, OdooConfig};
use exbrief::odoo::{Client, Kind, OdooError};
use serde_json::json;
use support::fake_odoo::{self, FakeOdoo, Mode};

fn config(url: &str, api: OdooApi) -> OdooConfig {
    OdooConfig {
        url: url.to_owned(),
        database: fake_odoo::DATABASE.to_owned(),
        login: fake_odoo::LOGIN.to_owned(),
        api_key: Some(fake_odoo::API_KEY.to_owned().into()),
        api,
        timeout_secs: 1,
        ..OdooConfig::default()
    }
}

fn kind(e: &OdooError) -> Option<Kind> {
    match e {
        OdooError::Odoo { kind, .. } => Some(*kind),
        _ => None,
    }
}

async fn happy_path(api: OdooApi) {
    let (fake, url) = FakeOdoo::start().await;
    let client = Client::new(&config(&url, api)).unwrap();
    let body = "<p><b>[PENDING REVIEW]</b> AI draft · exbrief 0190-abc</p>";
    let mid = client.post_note("sale.order", 42, body).await.unwrap();
    let deadline = time::macros::date!(2026 - 11 - 27);
    let aid = client
        .schedule_activity(
            "sale.order",
            42,
            "Review AI draft",
            "<p>see note</p>",
            Some(9),
            deadline,
        )
        .await
        .unwrap();
    assert_eq!(
        client
            .find_note("sale.order", 42, "exbrief 0190-abc")
            .await
            .unwrap(),
        Some(mid)
    );
    assert_eq!(
        client
            .find_note("sale.order", 43, "exbrief 0190-abc")
            .await
            .unwrap(),
        None
    );

    let messages = fake.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!((messages[0].id, messages[0].res_id), (mid, 42));
    assert!(
        messages[0].body_is_html,
        "without body_is_html Odoo escapes the tags"
    );
    assert_eq!(messages[0].subtype_xmlid, "mail.mt_note");
    let activities = fake.activities();
    assert_eq!(activities[0].id, aid);
    assert_eq!(activities[0].summary, "Review AI draft");
    assert_eq!(
        (activities[0].user_id, activities[0].date_deadline.as_str()),
        (Some(9), "2026-11-27")
    );

    let calls = fake.calls();
    match api {
        OdooApi::Json2 => {
            assert_eq!(calls.len(), 4);
            let post = &calls[0];
            assert_eq!(
                (post.model.as_str(), post.method.as_str()),
                ("sale.order", "message_post")
            );
            assert_eq!(post.body["ids"], json!([42]));
            assert_eq!(post.body["message_type"], "comment");
            let header = |name: &str| {
                post.headers
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            assert_eq!(
                header("authorization"),
                Some(format!("bearer {}", fake_odoo::API_KEY))
            );
            assert_eq!(
                header("x-odoo-database").as_deref(),
                Some(fake_odoo::DATABASE)
            );
        }
        OdooApi::Jsonrpc => {
            // authenticate once (it costs seconds on a real server), then execute_kw per call.
            let methods: Vec<&str> = calls.iter().map(|c| c.service_method.as_str()).collect();
            assert_eq!(
                methods,
                [
                    "common.authenticate",
                    "object.execute_kw",
                    "object.execute_kw",
                    "object.execute_kw",
                    "object.execute_kw"
                ]
            );
            let args = &calls[1].body["params"]["args"];
            assert_eq!(args[0], fake_odoo::DATABASE);
            assert_eq!(args[1], fake_odoo::UID);
            assert_eq!(
                (args[3].as_str(), args[4].as_str()),
                (Some("sale.order"), Some("message_post"))
            );
            assert_eq!(args[5], json!([[42]]));
            assert_eq!(args[6]["body_is_html"], true);
        }
    }
}

#[tokio::test]
async fn notes_and_activities_over_json2() {
    happy_path(OdooApi::Json2).await;
}

#[tokio::test]
async fn notes_and_activities_over_jsonrpc() {
    happy_path(OdooApi::Jsonrpc).await;
}

#[tokio::test]
async fn odoo_errors_become_typed_errors_without_the_traceback() {
    for api in [OdooApi::Json2, OdooApi::Jsonrpc] {
        let (fake, url) = FakeOdoo::start().await;
        let client = Client::new(&config(&url, api)).unwrap();
        let e = client
            .post_note("sale.order", fake_odoo::MISSING_ID, "<p>x</p>")
            .await
            .unwrap_err();
        assert_eq!(kind(&e), Some(Kind::Missing), "{api:?}: {e}");
        assert!(!e.retryable());
        let e = client
            .post_note("no.such.model", 1, "<p>x</p>")
            .await
            .unwrap_err();
        assert_eq!(kind(&e), Some(Kind::NotFound), "{api:?}: {e}");
        fake.set_mode(Mode::AccessDenied);
        let e = client
            .post_note("sale.order", 42, "<p>x</p>")
            .await
            .unwrap_err();
        assert_eq!(kind(&e), Some(Kind::Access), "{api:?}: {e}");
        let OdooError::Odoo { class, message, .. } = &e else {
            panic!()
        };
        assert_eq!(class, "odoo.exceptions.AccessError");
        assert!(message.starts_with("You are not allowed to modify 'sale.order' records."));
        assert!(!e.to_string().contains("Traceback"), "{e}");
        assert!(!e.retryable());

        // Odoo down behind its proxy: an HTML 503, which may heal.
        fake.set_mode(Mode::Down);
        let e = client
            .post_note("sale.order", 42, "<p>x</p>")
            .await
            .unwrap_err();
        assert!(
            matches!(e, OdooError::NotJson { status: 503 }),
            "{api:?}: {e}"
        );
        assert!(e.retryable());
        fake.set_mode(Mode::Hang);
        let e = client
            .post_note("sale.order", 42, "<p>x</p>")
            .await
            .unwrap_err();
        assert!(matches!(e, OdooError::Timeout(_)), "{api:?}: {e}");
        assert!(e.retryable());
    }
}

#[tokio::test]
async fn bad_credentials_and_unknown_databases() {
    let (_fake, url) = FakeOdoo::start().await;
    for api in [OdooApi::Json2, OdooApi::Jsonrpc] {
        let mut c = config(&url, api);
        c.api_key = Some("wrong".to_owned().into());
        let e = Client::new(&c)
            .unwrap()
            .post_note("sale.order", 42, "x")
            .await
            .unwrap_err();
        // JSON-2: 401 Unauthorized; JSON-RPC: authenticate answers `false`.
        assert_eq!(kind(&e), Some(Kind::Auth), "{api:?}: {e}");
        assert!(!e.retryable());
    }
    let mut c = config(&url, OdooApi::Json2);
    c.database = "no-such-db".to_owned();
    let e = Client::new(&c)
        .unwrap()
        .post_note("sale.order", 42, "x")
        .await
        .unwrap_err();
    assert!(matches!(e, OdooError::NotJson { status: 404 }), "{e}");
    assert!(
        Client::new(&OdooConfig::default()).is_err(),
        "no URL, no client"
    );
}
