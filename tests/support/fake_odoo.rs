//! An in-process Odoo that answers JSON-RPC (`/jsonrpc`) and JSON-2 (`/json/2/<model>/<method>`)
//! with the envelopes, status codes and error bodies recorded from a real Odoo 19
//! (shared/ODOO-API.md): JSON-RPC errors are HTTP 200 with `error.data.name`; JSON-2 errors use
//! real status codes and a flat body; an unknown database gets an HTML 404 page. It records
//! every call and can be told to be down, to hang, or to refuse access.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

pub const DATABASE: &str = "exbrief-test";
pub const LOGIN: &str = "ai-assistant";
pub const API_KEY: &str = "odoo-test-key-0123456789";
pub const UID: i64 = 7;
/// Records with this id do not exist.
pub const MISSING_ID: i64 = 4040;

const MODELS: &[&str] = &[
    "sale.order",
    "purchase.order",
    "account.move",
    "stock.picking",
    "helpdesk.ticket",
    "res.partner",
    "mail.message",
    "mail.activity",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// 503 with an HTML page, as a proxy in front of a stopped Odoo answers.
    Down,
    /// Never answers.
    Hang,
    /// Every write is refused with an AccessError.
    AccessDenied,
    /// Writes happen, but the answer never comes: what a caller sees when it dies (or times
    /// out) after Odoo did the work.
    HangAfterWrite,
}

#[derive(Debug, Clone)]
pub struct Call {
    /// `jsonrpc` or `json2`.
    pub transport: &'static str,
    pub service_method: String,
    pub model: String,
    pub method: String,
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub id: i64,
    pub model: String,
    pub res_id: i64,
    pub body: String,
    pub subtype_xmlid: String,
    pub body_is_html: bool,
}

#[derive(Debug, Clone)]
pub struct Activity {
    pub id: i64,
    pub model: String,
    pub res_id: i64,
    pub summary: String,
    pub note: String,
    pub user_id: Option<i64>,
    pub date_deadline: String,
}

struct Inner {
    mode: Mode,
    calls: Vec<Call>,
    messages: Vec<Message>,
    activities: Vec<Activity>,
    /// Activities marked done: (the activity, the feedback).
    done: Vec<(Activity, String)>,
    next_id: i64,
}

#[derive(Clone)]
pub struct FakeOdoo {
    inner: Arc<Mutex<Inner>>,
}

struct Failure {
    status: u16,
    name: &'static str,
    message: String,
}

impl FakeOdoo {
    pub async fn start() -> (Self, String) {
        let fake = FakeOdoo {
            inner: Arc::new(Mutex::new(Inner {
                mode: Mode::Normal,
                calls: Vec::new(),
                messages: Vec::new(),
                activities: Vec::new(),
                done: Vec::new(),
                next_id: 100,
            })),
        };
        let app = Router::new()
            .route("/jsonrpc", post(jsonrpc))
            .route("/json/2/{model}/{method}", post(json2))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (fake, format!("http://{addr}"))
    }

    pub fn set_mode(&self, mode: Mode) {
        self.inner.lock().unwrap().mode = mode;
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
    }

    pub fn messages(&self) -> Vec<Message> {
        self.inner.lock().unwrap().messages.clone()
    }

    /// Open activities (done ones leave this list, as in Odoo).
    pub fn activities(&self) -> Vec<Activity> {
        self.inner.lock().unwrap().activities.clone()
    }

    pub fn done_activities(&self) -> Vec<(Activity, String)> {
        self.inner.lock().unwrap().done.clone()
    }

    async fn hang_after_write(&self, method: &str) {
        let write = matches!(
            method,
            "message_post" | "activity_schedule" | "action_feedback" | "create" | "write"
        );
        if write && self.mode() == Mode::HangAfterWrite {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    }

    fn mode(&self) -> Mode {
        self.inner.lock().unwrap().mode
    }

    fn record(&self, call: Call) {
        self.inner.lock().unwrap().calls.push(call);
    }

    /// One ORM call, as both transports share it. `ids` are the record ids of a record method.
    fn execute(
        &self,
        model: &str,
        method: &str,
        ids: &[i64],
        kw: &Value,
    ) -> Result<Value, Failure> {
        if !MODELS.contains(&model) {
            return Err(Failure {
                status: 404,
                name: "werkzeug.exceptions.NotFound",
                message: format!("the model '{model}' does not exist"),
            });
        }
        let writes = matches!(
            method,
            "message_post" | "activity_schedule" | "action_feedback" | "create" | "write"
        );
        if writes && self.mode() == Mode::AccessDenied {
            return Err(Failure {
                status: 403,
                name: "odoo.exceptions.AccessError",
                message: format!(
                    "You are not allowed to modify '{model}' records.\n\nThis operation is allowed for the following groups:\n\t- Sales/User: Own Documents Only"
                ),
            });
        }
        if ids.contains(&MISSING_ID) {
            return Err(Failure {
                status: 404,
                name: "odoo.exceptions.MissingError",
                message: format!(
                    "Record does not exist or has been deleted.\n(Record: {model}({MISSING_ID},), User: {UID})"
                ),
            });
        }
        let mut inner = self.inner.lock().unwrap();
        match method {
            "message_post" => {
                let [res_id] = ids else {
                    return Err(unprocessable("message_post takes one record"));
                };
                // xmlids resolve to records; an unknown one is Odoo's ValueError.
                let subtype = kw["subtype_xmlid"].as_str().unwrap_or("mail.mt_comment");
                if !["mail.mt_note", "mail.mt_comment"].contains(&subtype) {
                    return Err(Failure {
                        status: 500,
                        name: "builtins.ValueError",
                        message: format!("External ID not found in the system: {subtype}"),
                    });
                }
                inner.next_id += 1;
                let id = inner.next_id;
                inner.messages.push(Message {
                    id,
                    model: model.to_owned(),
                    res_id: *res_id,
                    body: kw["body"].as_str().unwrap_or("").to_owned(),
                    subtype_xmlid: kw["subtype_xmlid"]
                        .as_str()
                        .unwrap_or("mail.mt_comment")
                        .to_owned(),
                    body_is_html: kw["body_is_html"] == json!(true),
                });
                Ok(json!([id]))
            }
            "activity_schedule" => {
                let [res_id] = ids else {
                    return Err(unprocessable("activity_schedule takes one record"));
                };
                if kw["act_type_xmlid"] != "mail.mail_activity_data_todo" {
                    return Err(Failure {
                        status: 422,
                        name: "odoo.exceptions.ValidationError",
                        message: "External ID not found in the system".to_owned(),
                    });
                }
                inner.next_id += 1;
                let id = inner.next_id;
                inner.activities.push(Activity {
                    id,
                    model: model.to_owned(),
                    res_id: *res_id,
                    summary: kw["summary"].as_str().unwrap_or("").to_owned(),
                    note: kw["note"].as_str().unwrap_or("").to_owned(),
                    user_id: kw["user_id"].as_i64(),
                    date_deadline: kw["date_deadline"].as_str().unwrap_or("").to_owned(),
                });
                Ok(json!([id]))
            }
            "search_read" if model == "mail.message" => {
                // Supports the domain the client sends: model, res_id, body ilike.
                let mut rows: Vec<&Message> = inner.messages.iter().collect();
                for clause in kw["domain"].as_array().into_iter().flatten() {
                    let (field, op, value) = (&clause[0], &clause[1], &clause[2]);
                    rows.retain(|m| match (field.as_str(), op.as_str()) {
                        (Some("model"), Some("=")) => value == m.model.as_str(),
                        (Some("res_id"), Some("=")) => value.as_i64() == Some(m.res_id),
                        (Some("body"), Some("ilike")) => m
                            .body
                            .to_lowercase()
                            .contains(&value.as_str().unwrap_or("").to_lowercase()),
                        _ => true,
                    });
                }
                let limit = kw["limit"].as_u64().unwrap_or(u64::MAX) as usize;
                Ok(Value::Array(
                    rows.into_iter()
                        .take(limit)
                        .map(|m| json!({"id": m.id}))
                        .collect(),
                ))
            }
            "action_feedback" if model == "mail.activity" => {
                let Some(pos) = inner.activities.iter().position(|a| ids.contains(&a.id)) else {
                    return Err(Failure {
                        status: 404,
                        name: "odoo.exceptions.MissingError",
                        message: "Record does not exist or has been deleted.".to_owned(),
                    });
                };
                let a = inner.activities.remove(pos);
                let feedback = kw["feedback"].as_str().unwrap_or("").to_owned();
                inner.done.push((a, feedback));
                Ok(json!(false))
            }
            "search_read" if model == "mail.activity" => {
                let mut rows: Vec<&Activity> = inner.activities.iter().collect();
                for clause in kw["domain"].as_array().into_iter().flatten() {
                    let (field, value) = (clause[0].as_str(), &clause[2]);
                    rows.retain(|a| match field {
                        Some("res_model") => value == a.model.as_str(),
                        Some("res_id") => value.as_i64() == Some(a.res_id),
                        Some("note") => a
                            .note
                            .to_lowercase()
                            .contains(&value.as_str().unwrap_or("").to_lowercase()),
                        _ => true,
                    });
                }
                let limit = kw["limit"].as_u64().unwrap_or(u64::MAX) as usize;
                Ok(Value::Array(
                    rows.into_iter()
                        .take(limit)
                        .map(|a| json!({"id": a.id}))
                        .collect(),
                ))
            }
            _ => Err(Failure {
                status: 404,
                name: "werkzeug.exceptions.NotFound",
                message: format!("The method '{method}' does not exist on the model '{model}'"),
            }),
        }
    }
}

fn unprocessable(message: &str) -> Failure {
    Failure {
        status: 422,
        name: "werkzeug.exceptions.UnprocessableEntity",
        message: message.to_owned(),
    }
}

const TRACEBACK: &str = "Traceback (most recent call last):\n  File \"/opt/odoo/odoo/http.py\", line 2554, in __call__\n    response = request._serve_db()\n";

fn headers_of(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect()
}

fn down_page() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Html("<html><body><h1>503 Service Unavailable</h1></body></html>"),
    )
        .into_response()
}

async fn jsonrpc(
    State(fake): State<FakeOdoo>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    match fake.mode() {
        Mode::Down => return down_page(),
        Mode::Hang => tokio::time::sleep(Duration::from_secs(3600)).await,
        _ => {}
    }
    let id = body["id"].clone();
    let params = &body["params"];
    let (service, method, args) = (
        params["service"].as_str().unwrap_or(""),
        params["method"].as_str().unwrap_or(""),
        &params["args"],
    );
    let mut call = Call {
        transport: "jsonrpc",
        service_method: format!("{service}.{method}"),
        model: String::new(),
        method: String::new(),
        body: body.clone(),
        headers: headers_of(&headers),
    };
    let error = |name: &str, message: &str| {
        Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": 200, "message": "Odoo Server Error",
            "data": {"name": name, "message": message, "arguments": [message], "context": {},
                     "debug": TRACEBACK}}}))
        .into_response()
    };
    let result = match (service, method) {
        ("common", "version") => {
            json!({"server_version": "19.0", "server_version_info": [19, 0, 0, "final", 0, ""],
            "server_serie": "19.0", "protocol_version": 1})
        }
        ("common", "authenticate") => {
            let ok = args[0] == DATABASE && args[1] == LOGIN && args[2] == API_KEY;
            fake.record(call);
            return Json(json!({"jsonrpc": "2.0", "id": id, "result": if ok { json!(UID) } else { json!(false) }}))
                .into_response();
        }
        ("object", "execute_kw") => {
            let (db, uid, key) = (&args[0], &args[1], &args[2]);
            let (model, method) = (
                args[3].as_str().unwrap_or(""),
                args[4].as_str().unwrap_or(""),
            );
            call.model = model.to_owned();
            call.method = method.to_owned();
            fake.record(call);
            if db != DATABASE || uid != &json!(UID) || key != API_KEY {
                return error("odoo.exceptions.AccessDenied", "Access Denied");
            }
            if !MODELS.contains(&model) {
                // JSON-RPC names an unknown model in a UserError.
                return error(
                    "odoo.exceptions.UserError",
                    &format!("Object {model} doesn't exist"),
                );
            }
            let ids: Vec<i64> = args[5][0]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default();
            let kw = args.get(6).cloned().unwrap_or(json!({}));
            match fake.execute(model, method, &ids, &kw) {
                Ok(v) => {
                    fake.hang_after_write(method).await;
                    v
                }
                Err(f) => return error(f.name, &f.message),
            }
        }
        _ => return error("builtins.KeyError", &format!("'{service}.{method}'")),
    };
    Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}

async fn json2(
    State(fake): State<FakeOdoo>,
    Path((model, method)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    match fake.mode() {
        Mode::Down => return down_page(),
        Mode::Hang => tokio::time::sleep(Duration::from_secs(3600)).await,
        _ => {}
    }
    fake.record(Call {
        transport: "json2",
        service_method: String::new(),
        model: model.clone(),
        method: method.clone(),
        body: body.clone(),
        headers: headers_of(&headers),
    });
    let flat = |status: u16, name: &str, message: &str| {
        (
            StatusCode::from_u16(status).unwrap(),
            Json(
                json!({"name": name, "message": message, "arguments": [message], "context": {},
                "debug": TRACEBACK}),
            ),
        )
            .into_response()
    };
    let db = headers.get("x-odoo-database").and_then(|v| v.to_str().ok());
    if db.is_some_and(|d| d != DATABASE) {
        return (
            StatusCode::NOT_FOUND,
            Html("<!DOCTYPE html><html><title>404: Not Found</title></html>"),
        )
            .into_response();
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    match auth {
        None => {
            return flat(
                401,
                "werkzeug.exceptions.Unauthorized",
                "User not authenticated, use an API Key with a Bearer Authorization header.",
            );
        }
        Some(a) if !a.to_ascii_lowercase().starts_with("bearer ") || a[7..] != *API_KEY => {
            return flat(401, "werkzeug.exceptions.Unauthorized", "Invalid apikey");
        }
        _ => {}
    }
    let ids: Vec<i64> = body["ids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    match fake.execute(&model, &method, &ids, &body) {
        Ok(v) => {
            fake.hang_after_write(&method).await;
            Json(v).into_response()
        }
        Err(f) => flat(f.status, f.name, &f.message),
    }
}
