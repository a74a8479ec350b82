//! An in-process OpenAI-compatible chat-completions server that records every request and can be
//! scripted to be slow, answer 429/5xx with Retry-After, reject `json_schema`, or return
//! invalid JSON. Its success and error bodies have OpenAI's wire shape.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub enum Reply {
    /// A schema-valid answer for whichever task was asked.
    Valid,
    /// This text as the assistant's content.
    Content(String),
    /// An error status with OpenAI's error envelope and an optional Retry-After (seconds).
    Status(u16, Option<u64>),
    /// 400, as servers without structured-output support answer a `json_schema` request.
    RejectJsonSchema,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub body: Value,
    pub authorization: Option<String>,
    pub at: Instant,
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Reply>,
    /// Used once the script is empty.
    default: Option<Reply>,
    delay: Duration,
    requests: Vec<Recorded>,
    in_flight: usize,
    max_in_flight: usize,
}

#[derive(Clone, Default)]
pub struct FakeLlm {
    inner: Arc<Mutex<Inner>>,
}

impl FakeLlm {
    pub async fn start() -> (Self, String) {
        let fake = FakeLlm::default();
        let app = Router::new()
            .route("/v1/chat/completions", post(handle))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (fake, format!("http://{addr}/v1"))
    }

    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.lock().unwrap().script.extend(replies);
    }

    pub fn always(&self, reply: Reply) {
        self.inner.lock().unwrap().default = Some(reply);
    }

    pub fn set_delay(&self, delay: Duration) {
        self.inner.lock().unwrap().delay = delay;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// The most requests the fake was serving at one moment.
    pub fn max_in_flight(&self) -> usize {
        self.inner.lock().unwrap().max_in_flight
    }

    pub fn count(&self) -> usize {
        self.inner.lock().unwrap().requests.len()
    }
}

/// Which task a request is for: the json_schema name, else the system prompt's wording.
pub fn task_of(body: &Value) -> &'static str {
    if let Some(name) = body["response_format"]["json_schema"]["name"].as_str() {
        return match name {
            "impact_summary" => "impact_summary",
            "classification" => "classification",
            _ => "customer_reply",
        };
    }
    let system = body["messages"][0]["content"].as_str().unwrap_or("");
    if system.contains("impact summaries") {
        "impact_summary"
    } else if system.contains("You classify") {
        "classification"
    } else {
        "customer_reply"
    }
}

pub fn valid_output(task: &str) -> Value {
    match task {
        "impact_summary" => json!({"headline": "Model headline for [CUSTOMER_1]",
            "impacted_orders": [{"order_ref": "S00042", "customer_token": "[CUSTOMER_1]",
                "promised_date": "2026-11-22", "at_risk_qty": 40}],
            "customer_impact": "Model impact.", "financial_exposure_band": "1k–10k",
            "mitigation_options": ["one", "two"]}),
        "classification" => {
            json!({"category": "supplier_delay", "severity": "high", "priority": 2,
            "recommended_actions": ["expedite_replenishment"], "confidence": 0.8,
            "rationale": "Model rationale."})
        }
        _ => {
            json!({"subject": "Your order", "body": "Dear [PERSON_1],\n\nModel draft.\n\nRegards", "tone": "apologetic", "language": "en"})
        }
    }
}

async fn handle(
    State(fake): State<FakeLlm>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let (reply, delay) = {
        let mut inner = fake.inner.lock().unwrap();
        inner.requests.push(Recorded {
            body: body.clone(),
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            at: Instant::now(),
        });
        let reply = inner
            .script
            .pop_front()
            .or_else(|| inner.default.clone())
            .unwrap_or(Reply::Valid);
        inner.in_flight += 1;
        inner.max_in_flight = inner.max_in_flight.max(inner.in_flight);
        (reply, inner.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    fake.inner.lock().unwrap().in_flight -= 1;
    let task = task_of(&body);
    let content = match reply {
        Reply::Valid => valid_output(task).to_string(),
        Reply::Content(text) => text,
        Reply::Status(code, retry_after) => {
            let status = StatusCode::from_u16(code).unwrap();
            let kind = if code == 429 {
                "rate_limit_error"
            } else {
                "server_error"
            };
            let mut response = (
                status,
                Json(json!({"error": {"message": format!("fake {code}"), "type": kind, "param": null, "code": null}})),
            )
                .into_response();
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", secs.to_string().parse().unwrap());
            }
            return response;
        }
        Reply::RejectJsonSchema => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": {"message": "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.",
                    "type": "invalid_request_error", "param": "response_format", "code": null}})),
            )
                .into_response();
        }
    };
    Json(json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_764_000_000,
        "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": null},
                     "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160},
        "system_fingerprint": "fp_fake"
    }))
    .into_response()
}
