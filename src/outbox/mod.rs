//! The outbox worker: delivers the Odoo writes that a summary's transaction enqueued. A row is
//! claimed with a lease (a worker that dies leaves it to the next), each step's Odoo id is stored
//! as soon as Odoo answers, and before posting a step looks for the note or activity it may
//! already have made (by the marker its text carries), so a crash between Odoo's answer and the
//! commit never posts twice. Errors that can heal are retried with backoff; the others, or a
//! spent budget, mark the row `dead` with Odoo's reason.

pub mod note;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};

use crate::config::OdooConfig;
use crate::odoo::{Client, OdooError};
use crate::pipeline::document_of;
use crate::store::{self, OutboxRow, Store, StoreError};
use crate::vault::Vault;

/// A pending-review note plus a review activity on one Odoo record.
pub const PENDING_REVIEW: &str = "odoo.pending_review";
/// A reviewer's decision: the approved reply (or the rejection) noted, the activity done.
pub const REVIEW_DECISION: &str = "odoo.review_decision";

/// Rows delivered per round; shutdown is checked between rounds.
const BATCH: usize = 1;

#[derive(Debug, Clone)]
pub struct Settings {
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub poll: Duration,
    /// How long a claimed row stays with its worker.
    pub lease: Duration,
    pub review_url: String,
    pub default_reviewer: Option<i64>,
    pub send_on_approve: bool,
}

impl Settings {
    pub fn from_config(c: &OdooConfig) -> Self {
        Self {
            max_attempts: c.max_attempts.max(1),
            backoff_base: Duration::from_millis(c.backoff_base_ms),
            backoff_max: Duration::from_millis(c.backoff_max_ms.max(c.backoff_base_ms)),
            poll: Duration::from_millis(c.poll_interval_ms.max(10)),
            // Four calls at most (a look-up and a write per step), and some slack.
            lease: Duration::from_secs(c.timeout_secs.max(1) * 4 + 2),
            review_url: c.review_url.clone(),
            default_reviewer: c.default_reviewer_id,
            send_on_approve: c.send_on_approve,
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    /// Another worker took the row over (this one outlived its lease): it stops here.
    #[error("the row's lease passed to another worker")]
    LostClaim,
    /// Waits for another row (the decision waits for its pending-review note).
    #[error("waiting for the pending-review note")]
    Waiting,
    #[error(transparent)]
    Odoo(#[from] OdooError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Payload(String),
}

/// When this process last talked to Odoo, and whether Odoo answered well (for `/readyz`).
static LAST_CONTACT: std::sync::Mutex<Option<(time::OffsetDateTime, bool)>> =
    std::sync::Mutex::new(None);

fn record_contact(ok: bool) {
    if let Ok(mut c) = LAST_CONTACT.lock() {
        *c = Some((store::now(), ok));
    }
}

/// The last Odoo contact of this process's worker: (when, whether it succeeded).
pub fn last_contact() -> Option<(time::OffsetDateTime, bool)> {
    LAST_CONTACT.lock().ok().and_then(|c| *c)
}

pub struct Worker {
    store: Store,
    odoo: Arc<Client>,
    settings: Settings,
    vault: Arc<Vault>,
}

impl Worker {
    pub fn new(store: Store, odoo: Arc<Client>, settings: Settings, vault: Arc<Vault>) -> Self {
        Self {
            store,
            odoo,
            settings,
            vault,
        }
    }

    /// Delivers the rows due now, once each; returns how many it handled.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let lease = time::Duration::try_from(self.settings.lease).unwrap_or(time::Duration::MINUTE);
        // One row per claim: a row's lease covers its own delivery only, so a later row of a
        // batch can never expire (and be claimed by another replica) while this worker is busy
        // with an earlier one.
        let mut done = 0;
        while done < BATCH {
            let now = store::now();
            let Some(row) = self.store.claim_outbox(now, now + lease, 1).await?.pop() else {
                break;
            };
            self.deliver(&row).await?;
            done += 1;
        }
        Ok(done)
    }

    /// Delivers until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let idle = match self.run_once().await {
                Ok(n) => n == 0,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox: could not read due rows");
                    true
                }
            };
            // Busy or idle, shutdown is looked at between rounds.
            let wait = if idle {
                self.settings.poll
            } else {
                Duration::ZERO
            };
            tokio::select! {
                biased;
                () = &mut shutdown => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn deliver(&self, row: &OutboxRow) -> Result<(), StoreError> {
        let attempts = row.attempts.saturating_add(1);
        let result = self.try_deliver(row).await;
        match &result {
            Ok(_) => record_contact(true),
            Err(DeliveryError::Odoo(_)) => record_contact(false),
            Err(_) => {}
        }
        match result {
            Ok(result) => {
                tracing::info!(outbox_id = %row.id, summary_id = %row.summary_id, attempts, "outbox: delivered to Odoo");
                self.store
                    .outbox_done(row.id, row.next_attempt_at, attempts, &result)
                    .await
                    .map(|_| ())
            }
            Err(DeliveryError::Store(e)) => Err(e),
            Err(DeliveryError::LostClaim) => {
                tracing::warn!(outbox_id = %row.id, "outbox: lease expired mid-delivery; left to the new owner");
                Ok(())
            }
            Err(DeliveryError::Waiting) => {
                let wait = self.settings.poll.max(Duration::from_millis(200));
                let next =
                    store::now() + time::Duration::try_from(wait).unwrap_or(time::Duration::SECOND);
                self.store
                    .outbox_defer(row.id, row.next_attempt_at, next)
                    .await
                    .map(|_| ())
            }
            Err(DeliveryError::Odoo(e))
                if e.retryable()
                    && u32::try_from(attempts).unwrap_or(u32::MAX) < self.settings.max_attempts =>
            {
                // Odoo may still be finishing a write it timed out on: give it time before the
                // retry looks for it, so the look-up finds it instead of posting again.
                let wait = match &e {
                    OdooError::Timeout(t) => self.backoff(attempts).max(*t * 2),
                    _ => self.backoff(attempts),
                };
                tracing::warn!(outbox_id = %row.id, attempts, error = %e, retry_in_ms = wait.as_millis() as u64, "outbox: Odoo call failed; will retry");
                let next =
                    store::now() + time::Duration::try_from(wait).unwrap_or(time::Duration::MINUTE);
                self.store
                    .outbox_failed(
                        row.id,
                        row.next_attempt_at,
                        attempts,
                        &e.to_string(),
                        Some(next),
                    )
                    .await
                    .map(|_| ())
            }
            Err(e) => {
                tracing::warn!(outbox_id = %row.id, attempts, error = %e, "outbox: giving up; row is dead");
                self.store
                    .outbox_failed(row.id, row.next_attempt_at, attempts, &e.to_string(), None)
                    .await
                    .map(|_| ())
            }
        }
    }

    /// Exponential backoff with jitter: half the step fixed, half random.
    fn backoff(&self, attempts: i32) -> Duration {
        let exp = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(0)
            .min(20);
        let step = self
            .settings
            .backoff_base
            .saturating_mul(1 << exp)
            .min(self.settings.backoff_max);
        let half = step / 2;
        let jitter = rand::rng().random_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter)
    }

    async fn try_deliver(&self, row: &OutboxRow) -> Result<Value, DeliveryError> {
        match row.kind.as_str() {
            PENDING_REVIEW => self.pending_review(row).await,
            REVIEW_DECISION => self.review_decision(row).await,
            other => Err(DeliveryError::Payload(format!(
                "unknown outbox kind `{other}`"
            ))),
        }
    }

    async fn review_decision(&self, row: &OutboxRow) -> Result<Value, DeliveryError> {
        let p = &row.payload.0;
        let (Some(model), Some(res_id)) = (p["model"].as_str(), p["res_id"].as_i64()) else {
            return Err(DeliveryError::Payload(
                "payload without model and res_id".to_owned(),
            ));
        };
        let pending = self
            .store
            .outbox_row(row.summary_id, PENDING_REVIEW)
            .await?;
        let activity = match pending.as_ref().map(|n| n.status.as_str()) {
            Some("done") => pending
                .as_ref()
                .and_then(|n| n.result.as_ref())
                .and_then(|r| r.0["activity_id"].as_i64()),
            // Dead after the note was posted (the activity failed): the decision still goes
            // on the record, without an activity to close.
            Some("dead")
                if pending
                    .as_ref()
                    .and_then(|n| n.result.as_ref())
                    .is_some_and(|r| r.0["message_id"].is_i64()) =>
            {
                pending
                    .as_ref()
                    .and_then(|n| n.result.as_ref())
                    .and_then(|r| r.0["activity_id"].as_i64())
            }
            Some("dead") => {
                return Err(DeliveryError::Payload(
                    "the pending-review note was never delivered".to_owned(),
                ));
            }
            Some(_) => return Err(DeliveryError::Waiting),
            None => None,
        };
        let summary_id = row.summary_id.to_string();
        let marker = note::decision_marker(&summary_id);
        let mut result = row
            .result
            .as_ref()
            .map(|r| r.0.clone())
            .unwrap_or_else(|| json!({}));
        let approved = p["decision"] == "approved";
        let send = approved && self.settings.send_on_approve && p["reply"].is_object();
        if result["message_id"].is_null() {
            let id = match self.odoo.find_note(model, res_id, &marker).await? {
                Some(id) => id,
                None => {
                    let (body, subtype) = if send {
                        (
                            note::customer_reply(&summary_id, &p["reply"]),
                            "mail.mt_comment",
                        )
                    } else {
                        (note::decision(&summary_id, p), "mail.mt_note")
                    };
                    self.odoo
                        .post_message(model, res_id, &body, subtype)
                        .await?
                }
            };
            result["message_id"] = json!(id);
            if !self
                .store
                .outbox_progress(row.id, row.next_attempt_at, &result)
                .await?
            {
                return Err(DeliveryError::LostClaim);
            }
        }
        if let Some(activity) = activity
            && result["activity_done"].is_null()
        {
            let reviewer = p["reviewer"].as_str().unwrap_or("a reviewer");
            let feedback = match (approved, p["comment"].as_str()) {
                (true, Some(c)) => format!("Approved by {reviewer}: {c}"),
                (true, None) => format!("Approved by {reviewer}"),
                (false, c) => format!("Rejected by {reviewer}: {}", c.unwrap_or("")),
            };
            match self.odoo.activity_feedback(activity, &feedback).await {
                // Done already: by an earlier try whose answer was lost, or by hand in Odoo.
                Ok(())
                | Err(OdooError::Odoo {
                    kind: crate::odoo::Kind::Missing,
                    ..
                }) => {}
                Err(e) => return Err(e.into()),
            }
            result["activity_done"] = json!(activity);
        }
        Ok(result)
    }

    async fn pending_review(&self, row: &OutboxRow) -> Result<Value, DeliveryError> {
        let p = &row.payload.0;
        let (Some(model), Some(res_id)) = (p["model"].as_str(), p["res_id"].as_i64()) else {
            return Err(DeliveryError::Payload(
                "payload without model and res_id".to_owned(),
            ));
        };
        let user = p["activity_user_id"]
            .as_i64()
            .or(self.settings.default_reviewer);
        let summary = self.store.summary(row.summary_id).await?.ok_or_else(|| {
            DeliveryError::Payload(format!("summary {} not found", row.summary_id))
        })?;
        let doc = document_of(&summary, &self.vault);
        let marker = note::marker(&row.summary_id.to_string());
        let mut result = row
            .result
            .as_ref()
            .map(|r| r.0.clone())
            .unwrap_or_else(|| json!({}));
        if result["message_id"].is_null() {
            let id = match self.odoo.find_note(model, res_id, &marker).await? {
                Some(id) => id,
                None => {
                    let body = note::pending_review(&doc, &self.settings.review_url);
                    self.odoo.post_note(model, res_id, &body).await?
                }
            };
            result["message_id"] = json!(id);
            if !self
                .store
                .outbox_progress(row.id, row.next_attempt_at, &result)
                .await?
            {
                return Err(DeliveryError::LostClaim);
            }
        }
        if result["activity_id"].is_null() {
            let id = match self.odoo.find_activity(model, res_id, &marker).await? {
                Some(id) => id,
                None => {
                    let deadline = note::deadline(
                        doc["classification"]["severity"].as_str(),
                        summary.created_at.date(),
                    );
                    self.odoo
                        .schedule_activity(
                            model,
                            res_id,
                            "Review AI draft",
                            &note::activity_note(&doc),
                            user,
                            deadline,
                        )
                        .await?
                }
            };
            result["activity_id"] = json!(id);
        }
        Ok(result)
    }
}
