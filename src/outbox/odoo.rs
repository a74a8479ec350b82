//! Odoo deliveries: a pending-review note plus a review activity per summary, and the
//! reviewer's decision on the same record. Each step's Odoo id is stored as soon as Odoo
//! answers, and before posting a step looks for the note or activity it may already have made
//! (by the marker its text carries), so a crash between Odoo's answer and the commit never
//! posts twice.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Deliver, Failure, Settings, note};
use crate::config::OdooConfig;
use crate::odoo::{Client, OdooError};
use crate::pipeline::document_of;
use crate::store::{self, OutboxRow, Store, StoreError};
use crate::vault::Vault;

/// A pending-review note plus a review activity on one Odoo record.
pub const PENDING_REVIEW: &str = "odoo.pending_review";
/// A reviewer's decision: the approved reply (or the rejection) noted, the activity done.
pub const REVIEW_DECISION: &str = "odoo.review_decision";

/// The worker's timing for Odoo.
pub fn settings(c: &OdooConfig) -> Settings {
    Settings::new(
        c.max_attempts,
        (c.backoff_base_ms, c.backoff_max_ms),
        c.poll_interval_ms,
        // Four calls at most (a look-up and a write per step), and some slack.
        Duration::from_secs(c.timeout_secs.max(1) * 4 + 2),
    )
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

impl From<DeliveryError> for Failure {
    fn from(e: DeliveryError) -> Self {
        match e {
            DeliveryError::LostClaim => Failure::LostClaim,
            DeliveryError::Waiting => Failure::Waiting,
            DeliveryError::Store(e) => Failure::Store(e),
            // Odoo may still be finishing a write it timed out on: give it time before the
            // retry looks for it, so the look-up finds it instead of posting again.
            DeliveryError::Odoo(e) if e.retryable() => Failure::Retry {
                at_least: match &e {
                    OdooError::Timeout(t) => Some(*t * 2),
                    _ => None,
                },
                reason: e.to_string(),
            },
            DeliveryError::Odoo(e) => Failure::Permanent(e.to_string()),
            DeliveryError::Payload(m) => Failure::Permanent(m),
        }
    }
}

/// When this process last talked to Odoo, and whether Odoo answered well (for `/readyz`).
static LAST_CONTACT: std::sync::Mutex<Option<(time::OffsetDateTime, bool)>> =
    std::sync::Mutex::new(None);

/// The last Odoo contact of this process's worker: (when, whether it succeeded).
pub fn last_contact() -> Option<(time::OffsetDateTime, bool)> {
    LAST_CONTACT.lock().ok().and_then(|c| *c)
}

pub struct OdooDelivery {
    store: Store,
    odoo: Arc<Client>,
    vault: Arc<Vault>,
    review_url: String,
    default_reviewer: Option<i64>,
    send_on_approve: bool,
}

impl Deliver for OdooDelivery {
    const KINDS: &'static str = "odoo.";

    async fn deliver(&self, row: &OutboxRow) -> Result<Value, Failure> {
        let done = match row.kind.as_str() {
            PENDING_REVIEW => self.pending_review(row).await,
            REVIEW_DECISION => self.review_decision(row).await,
            other => Err(DeliveryError::Payload(format!(
                "unknown outbox kind `{other}`"
            ))),
        };
        match &done {
            Ok(_) => record_contact(true),
            Err(DeliveryError::Odoo(_)) => record_contact(false),
            Err(_) => {}
        }
        done.map_err(Failure::from)
    }
}

fn record_contact(ok: bool) {
    if let Ok(mut c) = LAST_CONTACT.lock() {
        *c = Some((store::now(), ok));
    }
}

impl OdooDelivery {
    pub fn new(store: Store, odoo: Arc<Client>, c: &OdooConfig, vault: Arc<Vault>) -> Self {
        Self {
            store,
            odoo,
            vault,
            review_url: c.review_url.clone(),
            default_reviewer: c.default_reviewer_id,
            send_on_approve: c.send_on_approve,
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
            .outbox_row(summary_of(row)?, PENDING_REVIEW)
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
        let summary_id = summary_of(row)?.to_string();
        let marker = note::decision_marker(&summary_id);
        let mut result = row
            .result
            .as_ref()
            .map(|r| r.0.clone())
            .unwrap_or_else(|| json!({}));
        let approved = p["decision"] == "approved";
        let send = approved && self.send_on_approve && p["reply"].is_object();
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
        let user = p["activity_user_id"].as_i64().or(self.default_reviewer);
        let summary_id = summary_of(row)?;
        let summary = self
            .store
            .summary(summary_id)
            .await?
            .ok_or_else(|| DeliveryError::Payload(format!("summary {summary_id} not found")))?;
        let doc = document_of(&summary, &self.vault);
        let marker = note::marker(&summary_id.to_string());
        let mut result = row
            .result
            .as_ref()
            .map(|r| r.0.clone())
            .unwrap_or_else(|| json!({}));
        if result["message_id"].is_null() {
            let id = match self.odoo.find_note(model, res_id, &marker).await? {
                Some(id) => id,
                None => {
                    let body = note::pending_review(&doc, &self.review_url);
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

fn summary_of(row: &OutboxRow) -> Result<uuid::Uuid, DeliveryError> {
    row.summary_id
        .ok_or_else(|| DeliveryError::Payload("an Odoo write without a summary".to_owned()))
}
