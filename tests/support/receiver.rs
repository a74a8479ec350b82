//! A webhook receiver as a careful n8n workflow is one: it records every delivery, can be told
//! to fail the first ones or to lose its first answer, and processes each event id once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;

#[derive(Debug, Clone)]
pub struct Delivery {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Delivery {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// How the receiver answers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Behaviour {
    /// The first this many deliveries get 500.
    pub fail_first: usize,
    /// After processing its first event, wait this long before answering (past the sender's
    /// timeout, the answer is lost and the sender tries again).
    pub stall_first_ack: Option<Duration>,
    /// Every delivery gets 500.
    pub always_fail: bool,
}

#[derive(Default)]
struct Inner {
    deliveries: Vec<Delivery>,
    processed: Vec<Delivery>,
    seen: HashSet<String>,
    stalled: bool,
}

#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Mutex<Inner>>,
    behaviour: Behaviour,
}

impl Receiver {
    /// Starts on 127.0.0.1; returns it and its base URL.
    pub async fn start(behaviour: Behaviour) -> (Self, String) {
        let receiver = Receiver {
            inner: Arc::default(),
            behaviour,
        };
        let app = Router::new()
            .fallback(post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (receiver, format!("http://{addr}"))
    }

    /// Every delivery, failed or not, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inner.lock().unwrap().deliveries.clone()
    }

    /// The deliveries it acted on: one per event id.
    pub fn processed(&self) -> Vec<Delivery> {
        self.inner.lock().unwrap().processed.clone()
    }
}

async fn receive(
    State(r): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let delivery = Delivery {
        path: uri.path().to_owned(),
        headers,
        body,
    };
    let stall = {
        let mut inner = r.inner.lock().unwrap();
        inner.deliveries.push(delivery.clone());
        if r.behaviour.always_fail || inner.deliveries.len() <= r.behaviour.fail_first {
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        let id = delivery.header("x-exbrief-event-id").to_owned();
        if !inner.seen.insert(id) {
            // A repeat of an event already acted on: acknowledged, not acted on again.
            return StatusCode::OK;
        }
        inner.processed.push(delivery);
        match r.behaviour.stall_first_ack {
            Some(d) if !inner.stalled => {
                inner.stalled = true;
                Some(d)
            }
            _ => None,
        }
    };
    if let Some(d) = stall {
        tokio::time::sleep(d).await;
    }
    StatusCode::OK
}
