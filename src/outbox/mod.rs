//! The outbox: writes to other systems that a transaction queued, delivered at least once by a
//! worker. A row is claimed with a lease (a worker that dies leaves it to the next); errors that
//! can heal are retried with backoff; the others, or a spent budget, mark the row `dead` with
//! the reason, and queue an `outbox.dead` event for the subscriptions that want one.
//!
//! Two deliverers share this loop: [`odoo::OdooDelivery`] (notes and activities) and
//! [`webhook::WebhookDelivery`] (callbacks and events); each worker claims only its own kinds.

pub mod note;
pub mod odoo;
pub mod webhook;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};

use crate::store::{self, FailedTry, OutboxRow, Store, StoreError};
use crate::webhook::Webhooks;

pub use odoo::{OdooDelivery, PENDING_REVIEW, REVIEW_DECISION, last_contact};

/// Rows delivered per round; shutdown is checked between rounds.
const BATCH: usize = 1;

/// How often a worker tries, and waits.
#[derive(Debug, Clone)]
pub struct Settings {
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub poll: Duration,
    /// How long a claimed row stays with its worker.
    pub lease: Duration,
}

impl Settings {
    /// From a config section's numbers (milliseconds); `lease` is how long one delivery may take.
    pub fn new(max_attempts: u32, backoff_ms: (u64, u64), poll_ms: u64, lease: Duration) -> Self {
        let (base, max) = backoff_ms;
        Self {
            max_attempts: max_attempts.max(1),
            backoff_base: Duration::from_millis(base),
            backoff_max: Duration::from_millis(max.max(base)),
            poll: Duration::from_millis(poll_ms.max(10)),
            lease,
        }
    }
}

/// Why a delivery did not finish.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Another worker took the row over (this one outlived its lease): it stops here.
    #[error("the row's lease passed to another worker")]
    LostClaim,
    /// Waits for something else first (another row, or the summary it reports on).
    #[error("waiting")]
    Waiting,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// May heal: tried again after the backoff (at least `at_least`), while the budget lasts.
    #[error("{reason}")]
    Retry {
        reason: String,
        at_least: Option<Duration>,
    },
    /// Will not heal: the row is dead now.
    #[error("{0}")]
    Permanent(String),
}

/// One kind of delivery: the outbox kinds it owns and how to deliver one row.
pub trait Deliver: Send + Sync + 'static {
    /// The prefix of the `kind`s this deliverer claims.
    const KINDS: &'static str;
    /// Delivers the row; the value is stored as the row's `result`.
    fn deliver(&self, row: &OutboxRow) -> impl Future<Output = Result<Value, Failure>> + Send;
    /// Housekeeping when a round found nothing due (the deliverer paces itself).
    fn idle(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

pub struct Worker<D> {
    store: Store,
    delivery: D,
    settings: Settings,
    webhooks: Arc<Webhooks>,
}

impl<D: Deliver> Worker<D> {
    pub fn new(store: Store, delivery: D, settings: Settings, webhooks: Arc<Webhooks>) -> Self {
        Self {
            store,
            delivery,
            settings,
            webhooks,
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
            let Some(row) = self
                .store
                .claim_outbox(D::KINDS, now, now + lease, 1)
                .await?
                .pop()
            else {
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
                    tracing::warn!(error = %e, kinds = D::KINDS, "outbox: could not read due rows");
                    true
                }
            };
            if idle {
                self.delivery.idle().await;
            }
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
        let result = self.delivery.deliver(row).await;
        let budget_left = u32::try_from(attempts).unwrap_or(u32::MAX) < self.settings.max_attempts;
        match result {
            Ok(result) => {
                tracing::info!(outbox_id = %row.id, kind = %row.kind, attempts, "outbox: delivered");
                self.store
                    .outbox_done(row.id, row.next_attempt_at, attempts, &result)
                    .await
                    .map(|_| ())
            }
            Err(Failure::Store(e)) => Err(e),
            Err(Failure::LostClaim) => {
                tracing::warn!(outbox_id = %row.id, "outbox: lease expired mid-delivery; left to the new owner");
                Ok(())
            }
            Err(Failure::Waiting) => {
                let wait = self.settings.poll.max(Duration::from_millis(200));
                let next =
                    store::now() + time::Duration::try_from(wait).unwrap_or(time::Duration::SECOND);
                self.store
                    .outbox_defer(row.id, row.next_attempt_at, next)
                    .await
                    .map(|_| ())
            }
            Err(Failure::Retry { reason, at_least }) if budget_left => {
                let wait = self.backoff(attempts).max(at_least.unwrap_or_default());
                tracing::warn!(outbox_id = %row.id, kind = %row.kind, attempts, error = %reason, retry_in_ms = wait.as_millis() as u64, "outbox: delivery failed; will retry");
                let next =
                    store::now() + time::Duration::try_from(wait).unwrap_or(time::Duration::MINUTE);
                let failed = FailedTry {
                    attempts,
                    error: &reason,
                    next_attempt_at: Some(next),
                };
                self.store
                    .outbox_failed(row.id, row.next_attempt_at, &failed, &[], None)
                    .await
                    .map(|_| ())
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::warn!(outbox_id = %row.id, kind = %row.kind, attempts, error = %reason, "outbox: giving up; row is dead");
                crate::metrics::count("exbrief_outbox_dead_total", &[("kind", &row.kind)], 1.0);
                // A dead `outbox.dead` event raises no further event: no loops.
                let on_dead = if row.kind == crate::webhook::EVENT
                    && row.payload.0["event"] == crate::webhook::OUTBOX_DEAD
                {
                    Vec::new()
                } else {
                    self.webhooks.events(
                        crate::webhook::OUTBOX_DEAD,
                        json!({"outbox_id": row.id, "kind": row.kind, "summary_id": row.summary_id,
                            "attempts": attempts, "last_error": reason,
                            "target": target_of(row)}),
                    )
                };
                let failed = FailedTry {
                    attempts,
                    error: &reason,
                    next_attempt_at: None,
                };
                self.store
                    .outbox_failed(
                        row.id,
                        row.next_attempt_at,
                        &failed,
                        &on_dead,
                        row.summary_id,
                    )
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
}

/// Where a row goes, in one line (for `exbrief outbox list`).
pub fn describe_target(row: &OutboxRow) -> String {
    let t = target_of(row);
    let p = &row.payload.0;
    match row.kind.as_str() {
        crate::webhook::EVENT => format!(
            "{} → {}",
            p["event"].as_str().unwrap_or("?"),
            t["subscription"].as_str().unwrap_or("?")
        ),
        crate::webhook::CALLBACK => t["callback_origin"].as_str().unwrap_or("?").to_owned(),
        _ => format!("{}/{}", t["model"].as_str().unwrap_or("?"), t["res_id"]),
    }
}

/// Where a row was going, for the `outbox.dead` event: an Odoo record, a subscription's name or
/// a callback's origin (never its path, which may carry a resume token).
fn target_of(row: &OutboxRow) -> Value {
    let p = &row.payload.0;
    match row.kind.as_str() {
        crate::webhook::EVENT => json!({"subscription": p["subscription"]}),
        crate::webhook::CALLBACK => {
            let origin = p["url"]
                .as_str()
                .and_then(|u| reqwest::Url::parse(u).ok())
                .map(|u| u.origin().ascii_serialization());
            json!({"callback_origin": origin})
        }
        _ => json!({"model": p["model"], "res_id": p["res_id"]}),
    }
}
