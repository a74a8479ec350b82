//! Odoo's external APIs: JSON-2 (`POST /json/2/<model>/<method>`, Odoo 19 and later) and
//! JSON-RPC (`POST /jsonrpc` with `execute_kw`, Odoo 16–18). Both answer the same calls; their
//! error shapes differ (JSON-RPC: HTTP 200 with `error.data.name`; JSON-2: real status codes and
//! a flat body), and both become one [`OdooError`] that carries Odoo's exception class and
//! message, never the server traceback in `debug`.

pub mod types;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};
use tokio::sync::OnceCell;

use crate::config::{OdooApi, OdooConfig};

/// What kind of failure Odoo reported; decides whether a retry can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Wrong login, password or API key (401, `AccessDenied`, `authenticate` → `false`).
    Auth,
    /// The user lacks the rights (403, `AccessError`).
    Access,
    /// The record does not exist (`MissingError`).
    Missing,
    /// Odoo refused the values (422, `ValidationError`, `UnprocessableEntity`).
    Validation,
    /// Unknown model or method (404 `NotFound`; `UserError` on JSON-RPC for an unknown model).
    NotFound,
    /// Any other business error (`UserError`).
    User,
    /// Anything else the server raised (500 and friends).
    Server,
}

#[derive(Debug, thiserror::Error)]
pub enum OdooError {
    #[error("Odoo {kind:?} error ({class}): {message}")]
    Odoo {
        kind: Kind,
        /// Odoo's exception class, e.g. `odoo.exceptions.AccessError`.
        class: String,
        message: String,
        /// The HTTP status (JSON-2) or none (JSON-RPC answers 200).
        status: Option<u16>,
    },
    #[error(
        "Odoo answered HTTP {status} without a JSON body (an unknown database gets an HTML page)"
    )]
    NotJson { status: u16 },
    #[error("Odoo is unreachable: {0}")]
    Transport(String),
    #[error("Odoo did not answer within {0:?}")]
    Timeout(Duration),
    #[error("unexpected answer from Odoo: {0}")]
    Protocol(String),
    #[error("Odoo write-back is not configured (odoo.url is empty)")]
    NotConfigured,
}

impl OdooError {
    /// Network trouble, timeouts and server errors may heal; rights, validation and missing
    /// records will not.
    pub fn retryable(&self) -> bool {
        match self {
            OdooError::Transport(_) | OdooError::Timeout(_) => true,
            OdooError::NotJson { status } => *status >= 500,
            OdooError::Odoo { kind, status, .. } => {
                *kind == Kind::Server && status.is_none_or(|s| s >= 500 || s == 429)
            }
            OdooError::Protocol(_) | OdooError::NotConfigured => false,
        }
    }

    fn from_body(status: Option<u16>, body: &Value) -> Self {
        let class = body["name"].as_str().unwrap_or("unknown").to_owned();
        let message = body["message"].as_str().unwrap_or("").to_owned();
        let kind = match class.as_str() {
            "odoo.exceptions.AccessDenied" | "werkzeug.exceptions.Unauthorized" => Kind::Auth,
            "odoo.exceptions.AccessError" => Kind::Access,
            "odoo.exceptions.MissingError" => Kind::Missing,
            "odoo.exceptions.ValidationError" | "werkzeug.exceptions.UnprocessableEntity" => {
                Kind::Validation
            }
            "werkzeug.exceptions.NotFound" => Kind::NotFound,
            // JSON-RPC reports an unknown model as a UserError naming it.
            "odoo.exceptions.UserError"
                if message.contains("does not exist") || message.contains("doesn't exist") =>
            {
                Kind::NotFound
            }
            "odoo.exceptions.UserError" => Kind::User,
            _ => match status {
                Some(401) => Kind::Auth,
                Some(403) => Kind::Access,
                Some(404) => Kind::NotFound,
                Some(422) => Kind::Validation,
                _ => Kind::Server,
            },
        };
        OdooError::Odoo {
            kind,
            class,
            message,
            status,
        }
    }
}

/// A client for one Odoo database as one technical user.
pub struct Client {
    http: reqwest::Client,
    base: String,
    database: String,
    login: String,
    key: String,
    api: OdooApi,
    timeout: Duration,
    /// JSON-RPC only: `authenticate` hashes the password (1–3 s), so it runs once.
    uid: OnceCell<i64>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("odoo::Client")
            .field("base", &self.base)
            .field("database", &self.database)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(config: &OdooConfig) -> Result<Self, OdooError> {
        if config.url.is_empty() {
            return Err(OdooError::NotConfigured);
        }
        let timeout = Duration::from_secs(config.timeout_secs.max(1));
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| OdooError::Transport(e.to_string()))?;
        Ok(Self {
            http,
            base: config.url.trim_end_matches('/').to_owned(),
            database: config.database.clone(),
            login: config.login.clone(),
            key: config
                .api_key
                .as_ref()
                .map(|k| k.expose_secret().to_owned())
                .unwrap_or_default(),
            api: config.api,
            timeout,
            uid: OnceCell::new(),
            next_id: AtomicU64::new(1),
        })
    }

    /// Calls `model.method` with record `ids` (for record methods) and named arguments.
    pub async fn call(
        &self,
        model: &str,
        method: &str,
        ids: Option<&[i64]>,
        kwargs: Map<String, Value>,
    ) -> Result<Value, OdooError> {
        match self.api {
            OdooApi::Json2 => {
                let mut body = kwargs;
                if let Some(ids) = ids {
                    body.insert("ids".to_owned(), json!(ids));
                }
                self.json2(model, method, Value::Object(body)).await
            }
            OdooApi::Jsonrpc => {
                let uid = self.uid().await?;
                let args = match ids {
                    Some(ids) => json!([ids]),
                    None => json!([]),
                };
                self.jsonrpc(
                    "object",
                    "execute_kw",
                    json!([self.database, uid, self.key, model, method, args, kwargs]),
                )
                .await
            }
        }
    }

    /// Posts an internal note (HTML) on a record; returns the `mail.message` id.
    pub async fn post_note(
        &self,
        model: &str,
        res_id: i64,
        body_html: &str,
    ) -> Result<i64, OdooError> {
        self.post_message(model, res_id, body_html, "mail.mt_note")
            .await
    }

    /// Posts a message with a subtype: `mail.mt_note` (internal) or `mail.mt_comment` (to the
    /// record's followers, which Odoo e-mails to the customer).
    pub async fn post_message(
        &self,
        model: &str,
        res_id: i64,
        body_html: &str,
        subtype_xmlid: &str,
    ) -> Result<i64, OdooError> {
        let mut kw = Map::new();
        kw.insert("body".to_owned(), json!(body_html));
        // Without it Odoo 17+ escapes the HTML and the note shows raw tags.
        kw.insert("body_is_html".to_owned(), json!(true));
        kw.insert("message_type".to_owned(), json!("comment"));
        kw.insert("subtype_xmlid".to_owned(), json!(subtype_xmlid));
        let v = self
            .call(model, "message_post", Some(&[res_id]), kw)
            .await?;
        first_id(&v)
    }

    /// Marks an activity done with feedback (Odoo then removes it and logs the feedback in the
    /// chatter).
    pub async fn activity_feedback(
        &self,
        activity_id: i64,
        feedback: &str,
    ) -> Result<(), OdooError> {
        let mut kw = Map::new();
        kw.insert("feedback".to_owned(), json!(feedback));
        self.call("mail.activity", "action_feedback", Some(&[activity_id]), kw)
            .await
            .map(|_| ())
    }

    /// Schedules a To-Do activity on a record; returns the `mail.activity` id.
    pub async fn schedule_activity(
        &self,
        model: &str,
        res_id: i64,
        summary: &str,
        note_html: &str,
        user_id: Option<i64>,
        deadline: time::Date,
    ) -> Result<i64, OdooError> {
        let mut kw = Map::new();
        kw.insert(
            "act_type_xmlid".to_owned(),
            json!("mail.mail_activity_data_todo"),
        );
        kw.insert("summary".to_owned(), json!(summary));
        kw.insert("note".to_owned(), json!(note_html));
        kw.insert(
            "date_deadline".to_owned(),
            json!(types::date_string(deadline)),
        );
        if let Some(u) = user_id {
            kw.insert("user_id".to_owned(), json!(u));
        }
        let v = self
            .call(model, "activity_schedule", Some(&[res_id]), kw)
            .await?;
        first_id(&v)
    }

    /// The id of a message on the record whose body contains `marker`, if any: how a retry after
    /// a crash finds the note it already posted.
    pub async fn find_note(
        &self,
        model: &str,
        res_id: i64,
        marker: &str,
    ) -> Result<Option<i64>, OdooError> {
        let mut kw = Map::new();
        kw.insert(
            "domain".to_owned(),
            json!([
                ["model", "=", model],
                ["res_id", "=", res_id],
                ["body", "ilike", marker]
            ]),
        );
        kw.insert("fields".to_owned(), json!(["id"]));
        kw.insert("limit".to_owned(), json!(1));
        let v = self.call("mail.message", "search_read", None, kw).await?;
        Ok(v.as_array()
            .and_then(|rows| rows.first())
            .and_then(|r| r["id"].as_i64()))
    }

    /// The id of an activity on the record whose note contains `marker`, if any.
    pub async fn find_activity(
        &self,
        model: &str,
        res_id: i64,
        marker: &str,
    ) -> Result<Option<i64>, OdooError> {
        let mut kw = Map::new();
        kw.insert(
            "domain".to_owned(),
            json!([
                ["res_model", "=", model],
                ["res_id", "=", res_id],
                ["note", "ilike", marker]
            ]),
        );
        kw.insert("fields".to_owned(), json!(["id"]));
        kw.insert("limit".to_owned(), json!(1));
        let v = self.call("mail.activity", "search_read", None, kw).await?;
        Ok(v.as_array()
            .and_then(|rows| rows.first())
            .and_then(|r| r["id"].as_i64()))
    }

    async fn uid(&self) -> Result<i64, OdooError> {
        self.uid
            .get_or_try_init(|| async {
                let v = self
                    .jsonrpc(
                        "common",
                        "authenticate",
                        json!([self.database, self.login, self.key, {}]),
                    )
                    .await?;
                match v {
                    Value::Number(n) => n
                        .as_i64()
                        .ok_or_else(|| OdooError::Protocol(format!("uid {n}"))),
                    // A wrong login or key is `false`, not an error.
                    Value::Bool(false) => Err(OdooError::Odoo {
                        kind: Kind::Auth,
                        class: "authenticate".to_owned(),
                        message: "wrong login, password or API key".to_owned(),
                        status: None,
                    }),
                    other => Err(OdooError::Protocol(format!(
                        "authenticate answered {other}"
                    ))),
                }
            })
            .await
            .copied()
    }

    async fn jsonrpc(&self, service: &str, method: &str, args: Value) -> Result<Value, OdooError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "method": "call", "id": id,
            "params": {"service": service, "method": method, "args": args}});
        let (status, answer) = self
            .post(&format!("{}/jsonrpc", self.base), &body, false)
            .await?;
        let answer = answer.ok_or(OdooError::NotJson { status })?;
        if let Some(err) = answer.get("error") {
            return Err(OdooError::from_body(None, &err["data"]));
        }
        if status != 200 {
            return Err(OdooError::NotJson { status });
        }
        answer
            .get("result")
            .cloned()
            .ok_or_else(|| OdooError::Protocol("no result in the JSON-RPC answer".to_owned()))
    }

    async fn json2(&self, model: &str, method: &str, body: Value) -> Result<Value, OdooError> {
        let url = format!("{}/json/2/{model}/{method}", self.base);
        let (status, answer) = self.post(&url, &body, true).await?;
        match (status, answer) {
            (200..=299, Some(v)) => Ok(v),
            (200..=299, None) => Err(OdooError::Protocol("a non-JSON success".to_owned())),
            (status, Some(v)) if v.get("name").is_some() => {
                Err(OdooError::from_body(Some(status), &v))
            }
            (status, _) => Err(OdooError::NotJson { status }),
        }
    }

    /// POSTs JSON; the answer's body parsed as JSON when it is JSON.
    async fn post(
        &self,
        url: &str,
        body: &Value,
        bearer: bool,
    ) -> Result<(u16, Option<Value>), OdooError> {
        let mut req = self.http.post(url).json(body);
        if bearer {
            req = req.header("Authorization", format!("bearer {}", self.key));
            if !self.database.is_empty() {
                req = req.header("X-Odoo-Database", &self.database);
            }
        }
        let resp = req.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| self.transport(e))?;
        Ok((status, serde_json::from_slice(&bytes).ok()))
    }

    fn transport(&self, e: reqwest::Error) -> OdooError {
        if e.is_timeout() {
            OdooError::Timeout(self.timeout)
        } else {
            OdooError::Transport(e.to_string())
        }
    }
}

/// `message_post`, `create` and `activity_schedule` answer `[id]` (a recordset as ids) or, for a
/// single `create` over JSON-RPC, the bare id.
fn first_id(v: &Value) -> Result<i64, OdooError> {
    v.as_i64()
        .or_else(|| v.as_array().and_then(|a| a.first()).and_then(Value::as_i64))
        .ok_or_else(|| OdooError::Protocol(format!("expected an id, got {v}")))
}
