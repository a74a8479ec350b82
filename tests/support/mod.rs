//! Test harness: the real server on port 0 over a fresh database (SQLite file, or a PostgreSQL
//! database of its own when EXBRIEF_TEST_PG_URL is set), with a fake model at the network edge.
#![allow(dead_code)]

pub mod fake_llm;
pub mod fake_odoo;
pub mod receiver;

use std::path::PathBuf;
use std::sync::Arc;

use exbrief::config::{Config, OdooApi, OnFailure};
use exbrief::pipeline::Pipeline;
use serde_json::Value;
use sqlx::Connection;
use tokio::sync::oneshot;

#[allow(unused_imports)]
pub use fake_llm::{FakeLlm, Reply};
#[allow(unused_imports)]
pub use fake_odoo::FakeOdoo;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test body once per backend: SQLite always, PostgreSQL when EXBRIEF_TEST_PG_URL is set.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident => $body:path;)+) => {$(
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { $body(support::Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if std::env::var("EXBRIEF_TEST_PG_URL").is_err() {
                    eprintln!("EXBRIEF_TEST_PG_URL not set: PostgreSQL variant skipped");
                    return;
                }
                $body(support::Backend::Postgres).await
            }
        }
    )+};
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("fixtures").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

pub fn fixtures() -> Vec<(String, Value)> {
    let mut paths: Vec<_> = std::fs::read_dir(repo().join("fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect()
}

/// A fresh database that is dropped with the test.
pub struct TestDb {
    pub url: String,
    pg_admin: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                TestDb {
                    url,
                    pg_admin: None,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let admin = std::env::var("EXBRIEF_TEST_PG_URL").unwrap();
                let name = format!("exbrief_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                TestDb {
                    url: format!("{base}/{name}"),
                    pg_admin: Some((admin, name)),
                    _dir: None,
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg_admin.take() {
            // Drop runs inside the test's runtime; a thread with its own runtime can block on it.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut conn)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub fake: Option<FakeLlm>,
    pub odoo: Option<FakeOdoo>,
    pub pipeline: Arc<Pipeline>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    pub db: TestDb,
    /// An admin API key (`client` sends it on every request).
    pub admin_key: String,
    /// The `vault.key` the server runs with (the CLI needs it to verify checkpoints).
    pub vault_key: String,
}

pub struct Options {
    pub model: bool,
    pub on_failure: OnFailure,
    pub max_retries: u32,
    pub tweak: fn(&mut Config),
    /// Starts a fake Odoo speaking this API and points the outbox worker at it.
    pub odoo: Option<OdooApi>,
    /// `[webhooks]` (callback allow-list, subscriptions); timing is made fast for tests.
    pub webhooks: Option<exbrief::config::WebhooksConfig>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            model: false,
            on_failure: OnFailure::Fallback,
            max_retries: 2,
            tweak: |_| {},
            odoo: None,
            webhooks: None,
        }
    }
}

/// A fresh random vault key, as `vault.key` takes it.
pub fn test_vault_key() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub async fn spawn_app(backend: Backend, options: Options) -> TestApp {
    let db = TestDb::new(backend).await;
    let mut config = Config::default();
    config.database.url = db.url.clone();
    config.prompts.dir = repo().join("prompts");
    config.redaction.dir = repo().join("redaction");
    config.llm.on_failure = options.on_failure;
    config.llm.max_retries = options.max_retries;
    config.llm.backoff_base_ms = 10;
    config.llm.backoff_max_ms = 50;
    config.server.request_timeout_secs = 30;
    let vault_key = test_vault_key();
    config.vault.key = Some(vault_key.clone().into());
    let fake = if options.model {
        let (fake, base_url) = FakeLlm::start().await;
        config.llm.base_url = base_url;
        config.llm.model = "fake-model".to_owned();
        config.llm.api_key = Some("sk-test-key".to_owned().into());
        Some(fake)
    } else {
        None
    };
    let odoo = match options.odoo {
        Some(api) => {
            let (fake, url) = FakeOdoo::start().await;
            config.odoo.url = url;
            config.odoo.database = fake_odoo::DATABASE.to_owned();
            config.odoo.login = fake_odoo::LOGIN.to_owned();
            config.odoo.api_key = Some(fake_odoo::API_KEY.to_owned().into());
            config.odoo.api = api;
            config.odoo.timeout_secs = 1;
            config.odoo.backoff_base_ms = 20;
            config.odoo.backoff_max_ms = 100;
            config.odoo.poll_interval_ms = 20;
            config.odoo.default_reviewer_id = Some(5);
            config.odoo.review_url = "https://exbrief.example.com".to_owned();
            Some(fake)
        }
        None => None,
    };
    if let Some(w) = options.webhooks {
        config.webhooks = w;
        config.webhooks.backoff_base_ms = 20;
        config.webhooks.backoff_max_ms = 100;
        config.webhooks.poll_interval_ms = 20;
    }
    (options.tweak)(&mut config);
    let pipeline = exbrief::app::pipeline(&config).await.unwrap();
    // Every request of `client` carries an admin key; security tests use their own clients.
    let admin = exbrief::keys::create(
        pipeline.store(),
        pipeline.vault(),
        &exbrief::keys::Request {
            name: "test-admin".to_owned(),
            scopes: vec![exbrief::keys::Scope::Admin],
            policy: None,
            signed: false,
        },
    )
    .await
    .unwrap();
    let admin_key = exbrief::keys::reveal_once(&admin.secret).to_owned();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {admin_key}").parse().unwrap(),
    );
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let server_pipeline = Arc::clone(&pipeline);
    let server = tokio::spawn(async move {
        exbrief::app::serve(&config, server_pipeline, listener, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    TestApp {
        base: format!("http://{addr}"),
        client,
        admin_key,
        fake,
        odoo,
        pipeline,
        shutdown: Some(tx),
        server: Some(server),
        db,
        vault_key,
    }
}

pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub json: Value,
}

impl TestApp {
    pub fn fake(&self) -> &FakeLlm {
        self.fake.as_ref().unwrap()
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self.client.post(format!("{}{path}", self.base)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        answer(req.send().await.unwrap()).await
    }

    pub async fn summarize(&self, bundle: &Value) -> Answer {
        self.post_raw(
            "/v1/summarize",
            Some("application/json"),
            serde_json::to_vec(bundle).unwrap(),
            &[],
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Answer {
        answer(
            self.client
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Raw bytes of a GET (exports).
    pub async fn get_text(&self, path: &str) -> (u16, String, String) {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let ct = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, ct, res.text().await.unwrap())
    }

    /// Runs one SQL statement against the test database (tampering, in tests).
    pub async fn sql(&self, statement: &str) -> u64 {
        match self.pipeline.store() {
            exbrief::store::Store::Sqlite(pool) => sqlx::query(statement)
                .execute(pool)
                .await
                .unwrap()
                .rows_affected(),
            exbrief::store::Store::Postgres(pool) => sqlx::query(statement)
                .execute(pool)
                .await
                .unwrap()
                .rows_affected(),
        }
    }

    /// Every value of every column of every table, as text, labelled `table.column`.
    pub async fn dump(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        match self.pipeline.store() {
            exbrief::store::Store::Sqlite(pool) => {
                let tables: Vec<(String,)> = sqlx::query_as(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                )
                .fetch_all(pool)
                .await
                .unwrap();
                for (t,) in tables {
                    let cols: Vec<(String,)> =
                        sqlx::query_as(&format!("SELECT name FROM pragma_table_info('{t}')"))
                            .fetch_all(pool)
                            .await
                            .unwrap();
                    for (c,) in cols {
                        let vals: Vec<(Option<Vec<u8>>,)> =
                            sqlx::query_as(&format!("SELECT CAST(\"{c}\" AS BLOB) FROM \"{t}\""))
                                .fetch_all(pool)
                                .await
                                .unwrap();
                        for v in vals.into_iter().filter_map(|(v,)| v) {
                            out.push((
                                format!("{t}.{c}"),
                                String::from_utf8_lossy(&v).into_owned(),
                            ));
                        }
                    }
                }
            }
            exbrief::store::Store::Postgres(pool) => {
                let cols: Vec<(String, String)> = sqlx::query_as(
                    "SELECT table_name::text, column_name::text FROM information_schema.columns \
                     WHERE table_schema = 'public'",
                )
                .fetch_all(pool)
                .await
                .unwrap();
                for (t, c) in cols {
                    let vals: Vec<(Option<String>,)> =
                        sqlx::query_as(&format!("SELECT \"{c}\"::text FROM \"{t}\""))
                            .fetch_all(pool)
                            .await
                            .unwrap();
                    for (v,) in vals {
                        if let Some(v) = v {
                            out.push((format!("{t}.{c}"), v));
                        }
                    }
                }
            }
        }
        out
    }

    /// Stops the server (draining requests) and closes the pool before the database is dropped.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        self.pipeline.store().close().await;
    }
}

async fn answer(res: reqwest::Response) -> Answer {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = res.bytes().await.unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        content_type,
        headers,
        json,
    }
}

/// A new API key with these scopes (comma-separated); with `signed`, its signing secret too.
pub async fn key(app: &TestApp, scopes: &str, signed: bool) -> (String, Option<String>) {
    let k = exbrief::keys::create(
        app.pipeline.store(),
        app.pipeline.vault(),
        &exbrief::keys::Request {
            name: format!("test-{scopes}"),
            scopes: exbrief::keys::parse_scopes(scopes).unwrap(),
            policy: None,
            signed,
        },
    )
    .await
    .unwrap();
    (
        exbrief::keys::reveal_once(&k.secret).to_owned(),
        k.webhook_secret
            .as_ref()
            .map(|w| exbrief::keys::reveal_once(w).to_owned()),
    )
}

/// `X-Exbrief-Signature` as a client computes it (n8n's Crypto node: HMAC-SHA256, hex).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Asserts an RFC 9457 problem of this status and `type` slug.
pub fn problem(a: &Answer, status: u16, kind: &str) {
    assert_eq!(a.status, status, "{}", a.json);
    assert_eq!(a.content_type, "application/problem+json", "{}", a.json);
    assert_eq!(
        a.json["type"],
        format!("urn:exbrief:problem:{kind}"),
        "{}",
        a.json
    );
}

/// Polls until `done` holds (background workers deliver), failing the test after 15 s.
pub async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A claim of `key` as a request makes one (for tests that call the store directly).
pub fn claim(key: &str) -> exbrief::store::NewClaim {
    exbrief::store::NewClaim {
        id: uuid::Uuid::now_v7(),
        owner: uuid::Uuid::new_v4(),
        idempotency_key: key.into(),
        event_id: "e".into(),
        event_type: "receipt_delay".into(),
        request_sha256: "ab".into(),
        key_id: Some("k".into()),
        policy_version: "v".into(),
        policy_sha256: "cd".into(),
        lease_until_ms: 7,
        created_at: exbrief::store::now(),
        callback_url: None,
    }
}

/// A migrated PostgreSQL database of its own and a store on it (four connections); `None`, the
/// test skipped, without `EXBRIEF_TEST_PG_URL`.
pub async fn postgres_store() -> Option<(TestDb, exbrief::store::Store)> {
    if std::env::var("EXBRIEF_TEST_PG_URL").is_err() {
        eprintln!("EXBRIEF_TEST_PG_URL not set: skipped");
        return None;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let store = exbrief::store::Store::connect(&db.url, 4, 0).await.unwrap();
    store.migrate().await.unwrap();
    Some((db, store))
}

/// A prompt-log row of a summary, as the pipeline writes one (for tests that call the store).
pub fn log_row(summary_id: uuid::Uuid, tokens: i64) -> exbrief::store::NewPromptLog {
    use exbrief::store::json_text;
    exbrief::store::NewPromptLog {
        id: uuid::Uuid::now_v7(),
        created_at: exbrief::store::now(),
        request_id: "req".into(),
        key_id: Some("k1".into()),
        summary_id,
        event_id: "ev".into(),
        event_type: "receipt_delay".into(),
        task: "impact_summary".into(),
        attempt_kind: "primary".into(),
        template_version: "v1".into(),
        template_sha256: "ab".repeat(32),
        policy_version: "x".into(),
        policy_sha256: "cd".repeat(32),
        provider: "openai".into(),
        model: "m".into(),
        parameters: json_text(&serde_json::json!({"model": "m"})),
        messages: json_text(&serde_json::json!([{"content": "hi", "role": "user"}])),
        raw_response: None,
        parsed_output: None,
        prompt_tokens: None,
        completion_tokens: None,
        total_tokens: Some(tokens),
        latency_ms: 3,
        outcome: "ok".into(),
        error: None,
        redaction_counts: json_text(&serde_json::json!({})),
    }
}

/// A session of its own on PostgreSQL holding the chain's lock, as a replica appending to the
/// chain does; it is let go with `pg_advisory_unlock` or when the connection closes.
pub async fn hold_chain_lock(url: &str) -> sqlx::PgConnection {
    let mut holder = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(exbrief::store::CHAIN_LOCK)
        .execute(&mut holder)
        .await
        .unwrap();
    holder
}
