//! Webhook deliveries: an asynchronous summary's callback and the events of subscriptions. The
//! body is built from the stored rows when it is sent (the outbox holds ids only) and signed
//! like inbound requests: `X-Exbrief-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
//! t + "." + body)>`, with a fresh `t` per try. `X-Exbrief-Event-Id` (the outbox row's id) stays
//! the same across tries, so a receiver de-duplicates by it. Redirects are not followed: the
//! allow-list decides where a callback goes, not the receiver.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, USER_AGENT};
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Deliver, Failure, Settings};
use crate::config::WebhooksConfig;
use crate::pipeline::document_of;
use crate::store::{self, OutboxRow, Store};
use crate::vault::Vault;
use crate::webhook::{self, Webhooks};

pub const EVENT_HEADER: &str = "x-exbrief-event";
pub const EVENT_ID_HEADER: &str = "x-exbrief-event-id";

/// The worker's timing for webhooks.
pub fn settings(c: &WebhooksConfig) -> Settings {
    Settings::new(
        c.max_attempts,
        (c.backoff_base_ms, c.backoff_max_ms),
        c.poll_interval_ms,
        // One POST, and some slack.
        Duration::from_secs(c.timeout_secs.max(1) * 2 + 2),
    )
}

pub struct WebhookDelivery {
    store: Store,
    vault: Arc<Vault>,
    webhooks: Arc<Webhooks>,
    http: reqwest::Client,
    orphans: OrphanSweep,
}

/// Finds asynchronous summaries whose maker died (claim expired a whole lease ago, nobody resent
/// the request): the raw bundle is never stored, so the summary cannot be finished elsewhere;
/// the claim is released and the caller told through its callback, at most every `every`.
struct OrphanSweep {
    lease: Duration,
    every: Duration,
    last: std::sync::Mutex<Option<std::time::Instant>>,
}

/// One POST, ready to sign and send.
struct Outgoing {
    url: String,
    secret: SecretString,
    event: String,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Deliver for WebhookDelivery {
    const KINDS: &'static str = webhook::KINDS;

    async fn deliver(&self, row: &OutboxRow) -> Result<Value, Failure> {
        let out = match row.kind.as_str() {
            webhook::CALLBACK => self.callback(row).await?,
            webhook::EVENT => self.event(row).await?,
            other => return Err(Failure::Permanent(format!("unknown outbox kind `{other}`"))),
        };
        self.post(row.id, out).await
    }

    async fn idle(&self) {
        let due = {
            let Ok(mut last) = self.orphans.last.lock() else {
                return;
            };
            let due = last.is_none_or(|t| t.elapsed() >= self.orphans.every);
            if due {
                *last = Some(std::time::Instant::now());
            }
            due
        };
        if due && let Err(e) = self.sweep_orphans().await {
            tracing::warn!(error = %e, "could not look for abandoned asynchronous summaries");
        }
    }
}

impl WebhookDelivery {
    /// `lease` is how long a summary's claim lasts without renewal (`server.request_timeout_secs`).
    pub fn new(
        store: Store,
        vault: Arc<Vault>,
        webhooks: Arc<Webhooks>,
        c: &WebhooksConfig,
        lease: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(c.timeout_secs.max(1)))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            store,
            vault,
            webhooks,
            http,
            orphans: OrphanSweep {
                lease,
                every: Duration::from_millis(c.poll_interval_ms.max(10) * 20)
                    .max(Duration::from_millis(200)),
                last: std::sync::Mutex::new(None),
            },
        })
    }

    /// Releases orphaned asynchronous claims and queues their failure callbacks.
    async fn sweep_orphans(&self) -> Result<(), crate::store::StoreError> {
        let lease = i64::try_from(self.orphans.lease.as_millis()).unwrap_or(i64::MAX / 2);
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let before = i64::try_from(now).unwrap_or(i64::MAX) - lease;
        for o in self.store.orphans(before, 50).await? {
            let problem = json!({
                "type": "urn:exbrief:problem:summary-abandoned",
                "title": "The summary was abandoned",
                "status": 503,
                "detail": "the server making this summary stopped before it finished; resend the same request to make it again",
                "summary_id": o.id,
                "event_id": o.event_id,
            });
            let tell = Webhooks::callback(&o.callback_url, o.key_id.as_deref(), Some(problem));
            if self.store.release_orphan(&o, &tell).await? {
                tracing::warn!(summary_id = %o.id, "asynchronous summary abandoned by its maker; claim released, caller told");
            }
        }
        Ok(())
    }

    async fn callback(&self, row: &OutboxRow) -> Result<Outgoing, Failure> {
        let p = &row.payload.0;
        let url = p["url"].as_str().unwrap_or_default();
        // The allow-list is checked again: an operator who removes a prefix stops its callbacks.
        self.webhooks
            .allow
            .check(url)
            .map_err(|m| Failure::Permanent(format!("callback refused: {m}")))?;
        let key_id = p["key_id"].as_str().unwrap_or_default();
        let secret = crate::keys::signing_secret(&self.store, &self.vault, key_id)
            .await?
            .ok_or_else(|| {
                Failure::Permanent(format!(
                    "key {key_id} is revoked or has no signing secret: the callback cannot be signed"
                ))
            })?;
        let (event, content_type, body) = if p["problem"].is_object() {
            (
                "summary.failed",
                "application/problem+json",
                p["problem"].clone(),
            )
        } else {
            (
                "summary.ready",
                "application/json",
                self.summary(row).await?,
            )
        };
        Ok(Outgoing {
            url: url.to_owned(),
            secret,
            event: event.to_owned(),
            content_type,
            body: serde_json::to_vec(&body).unwrap_or_default(),
        })
    }

    async fn event(&self, row: &OutboxRow) -> Result<Outgoing, Failure> {
        let p = &row.payload.0;
        let name = p["subscription"].as_str().unwrap_or_default();
        let sub = self.webhooks.subscription(name).ok_or_else(|| {
            Failure::Permanent(format!("subscription `{name}` is no longer configured"))
        })?;
        let event = p["event"].as_str().unwrap_or_default();
        let data = match event {
            webhook::SUMMARY_CREATED => self.summary(row).await?,
            webhook::REVIEW_APPROVED | webhook::REVIEW_REJECTED => self.decision(row).await?,
            _ => p["refs"].clone(),
        };
        let envelope = json!({"id": row.id, "type": event,
            "created_at": store::rfc3339(row.created_at), "data": data});
        Ok(Outgoing {
            url: sub.url.clone(),
            secret: sub.secret.clone(),
            event: event.to_owned(),
            content_type: "application/json",
            body: serde_json::to_vec(&envelope).unwrap_or_default(),
        })
    }

    /// The summary document as the synchronous call returns it (restored for its reader).
    async fn summary(&self, row: &OutboxRow) -> Result<Value, Failure> {
        let id = row
            .summary_id
            .ok_or_else(|| Failure::Permanent("a summary event without a summary".to_owned()))?;
        let summary = self
            .store
            .summary(id)
            .await?
            .ok_or_else(|| Failure::Permanent(format!("summary {id} not found")))?;
        if summary.status == "processing" {
            return Err(Failure::Waiting);
        }
        Ok(document_of(&summary, &self.vault))
    }

    /// What a workflow needs to act on a decision: the final reply and whom it goes to.
    async fn decision(&self, row: &OutboxRow) -> Result<Value, Failure> {
        let doc = self.summary(row).await?;
        let id = row.summary_id.unwrap_or_default();
        let d = self
            .store
            .decision(id)
            .await?
            .ok_or_else(|| Failure::Permanent(format!("summary {id} has no decision")))?;
        let facts = &doc["key_facts"];
        Ok(json!({
            "summary_id": id,
            "event_id": doc["event_id"],
            "event_type": doc["event_type"],
            "decision": d.decision,
            "reviewer": d.reviewer,
            "comment": d.comment,
            "final_reply": d.final_reply.map(|r| r.0),
            "edited": d.edited,
            "source": facts["source"],
            "reply_to": facts["reply_to"],
            "decided_at": store::rfc3339(d.decided_at),
        }))
    }

    async fn post(&self, event_id: Uuid, out: Outgoing) -> Result<Value, Failure> {
        let t = time::OffsetDateTime::now_utc().unix_timestamp();
        let sent = self
            .http
            .post(&out.url)
            .header(CONTENT_TYPE, out.content_type)
            .header(USER_AGENT, concat!("exbrief/", env!("CARGO_PKG_VERSION")))
            .header(EVENT_HEADER, &out.event)
            .header(EVENT_ID_HEADER, event_id.to_string())
            .header(
                crate::http::auth::SIGNATURE,
                webhook::signature(&out.secret, t, &out.body),
            )
            .body(out.body)
            .send()
            .await;
        let status = match sent {
            // The URL may carry a resume token: errors are reported without it.
            Err(e) => {
                return Err(Failure::Retry {
                    reason: format!("could not reach the receiver: {}", e.without_url()),
                    at_least: None,
                });
            }
            Ok(res) => res.status(),
        };
        if status.is_success() {
            Ok(json!({"status": status.as_u16(), "event": out.event}))
        } else if status == reqwest::StatusCode::GONE {
            Err(Failure::Permanent(
                "the receiver answered 410 Gone: it wants no more deliveries".to_owned(),
            ))
        } else if status.is_redirection() {
            Err(Failure::Retry {
                reason: format!("the receiver answered {status}; redirects are not followed"),
                at_least: None,
            })
        } else {
            Err(Failure::Retry {
                reason: format!("the receiver answered {status}"),
                at_least: None,
            })
        }
    }
}
