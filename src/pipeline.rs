//! The summarize use case: idempotency claim → redact → render → model → restore → one
//! transaction for the summary, its prompt log and its Odoo outbox rows.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;
use uuid::Uuid;

use crate::bundle::{Bundle, Task};
use crate::committer::Committer;
use crate::llm::{Attempt, AttemptKind, Facts, Llm, LlmError, ModelRequest, TaskResult};
use crate::prompts::{self, PromptError, Registry, TemplateRef};
use crate::redact::{
    Finding, Policies, PolicyError, PseudonymMap, Redacted, Redactor, leftover_masks,
};
use crate::store::{
    self, Claim, NewClaim, NewOutbox, NewPromptLog, NewSealedMap, Store, StoreError, SummaryRow,
};
use crate::vault::Vault;
use crate::webhook::Webhooks;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("event `{key}` was already submitted with a different body")]
    Conflict { key: String },
    #[error("{0}")]
    Prompt(#[from] PromptError),
    #[error("{0}")]
    Policy(#[from] PolicyError),
    #[error("{0}")]
    ModelUnavailable(String),
    #[error("event `{key}` is still being processed by another request")]
    StillProcessing { key: String },
    #[error("this key used {used} of its {budget} model tokens today (limits.daily_token_budget)")]
    BudgetExhausted { used: i64, budget: u64 },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// One summarize call as the HTTP layer hands it over.
#[derive(Debug)]
pub struct SummarizeInput {
    /// The document as the caller sent it (already checked to parse as a [`Bundle`]).
    pub raw: Value,
    pub bundle: Bundle,
    /// `Idempotency-Key` header; the event_id when absent.
    pub idempotency_key: Option<String>,
    pub request_id: String,
    pub key_id: Option<String>,
    /// Model tokens the key may spend per UTC day; checked only before new model calls, so a
    /// retry of a stored summary is answered whatever the budget.
    pub daily_token_budget: Option<u64>,
    /// Asynchronous mode with a callback: where the document goes when it is ready (already
    /// checked against the allow-list; signed with the key's signing secret). It is part of
    /// what the idempotency key stands for, but never part of what is redacted or sent to a
    /// model.
    pub callback: Option<String>,
    /// Its turn among the summaries being made (see [`Pipeline::admit`]); taken on the way in
    /// when the caller has none.
    pub slot: Option<Slot>,
}

/// A summary's turn to be made: at most `limits.max_summaries_in_progress` exist at once.
/// It is held until the summary is stored or has failed (in the background for asynchronous
/// requests), so that what a summary holds while it is made — the parsed and redacted
/// bundle, the prompts, the model connections — is bounded, whatever the number of requests
/// waiting; a request waiting for its turn holds only its connection and unread body.
#[derive(Debug)]
pub struct Slot(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

/// Summaries being made at once when the configuration does not say. 2,048 lets a burst of
/// 2,000 with the model at 2 s go to the model in one turn instead of two (SQLite 671–698/s
/// against 418/s at 1,024; the same burst sent straight to the fake model: 764–797/s) and peaked
/// at 287–298 MiB (SQLite and PostgreSQL) once a waiting summary held neither its redacted
/// bundle nor a request buffer twice its size; it leaves PostgreSQL ample room for 500/s against
/// a 500 ms model (~260 summaries in progress at once; at 256 they queued).
pub const DEFAULT_MAX_IN_PROGRESS: usize = 2048;

/// What an asynchronous submission learned: the summary's id, and its document when it was
/// already made.
#[derive(Debug)]
pub struct Submitted {
    pub id: Uuid,
    pub document: Option<Value>,
}

/// Turns a failure of an asynchronous summary into the problem document its callback carries.
pub type ProblemOf = fn(PipelineError) -> Value;

/// Where a claim attempt ended.
enum Step {
    Owned(Owned),
    /// Another request's row, with the same body: done, or still being made.
    Existing(Box<SummaryRow>),
}

/// What every path checks before it claims: the key, the body's hash, the templates and the
/// policy.
struct Prepared {
    key: String,
    request_sha256: String,
    templates: Vec<TemplateRef>,
    redactor: Arc<Redactor>,
}

/// Summaries being produced right now, so that shutdown can wait for them.
#[derive(Debug, Default)]
struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

pub struct Pipeline {
    store: Store,
    policies: Policies,
    prompts: Registry,
    llm: Llm,
    lease: Duration,
    in_flight: Arc<InFlight>,
    /// Odoo models whose records get the write-back when a bundle names no `write_back`.
    write_back_models: Vec<String>,
    vault: Arc<Vault>,
    pseudonym_days: u32,
    webhooks: Arc<Webhooks>,
    committer: Committer,
    slots: Arc<Semaphore>,
    max_in_progress: usize,
    waiting: AtomicUsize,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("llm", &self.llm)
            .finish_non_exhaustive()
    }
}

/// The claim a request holds while it produces a summary.
#[derive(Debug, Clone, Copy)]
struct Owned {
    id: Uuid,
    owner: Uuid,
    created_at: time::OffsetDateTime,
}

impl Pipeline {
    /// `lease` is how long a claim on an idempotency key lasts without renewal; the owner
    /// renews it while it works, so only a dead owner's claim can be taken over.
    pub fn new(
        store: Store,
        policies: Policies,
        prompts: Registry,
        llm: Llm,
        lease: Duration,
    ) -> Self {
        Self {
            committer: Committer::new(store.clone()),
            store,
            policies,
            prompts,
            llm,
            lease,
            in_flight: Arc::new(InFlight::default()),
            write_back_models: Vec::new(),
            vault: Arc::new(Vault::ephemeral()),
            pseudonym_days: 30,
            webhooks: Arc::default(),
            slots: Arc::new(Semaphore::new(DEFAULT_MAX_IN_PROGRESS)),
            max_in_progress: DEFAULT_MAX_IN_PROGRESS,
            waiting: AtomicUsize::new(0),
        }
    }

    /// How many summaries may be made at once (`limits.max_summaries_in_progress`).
    pub fn with_max_in_progress(mut self, n: usize) -> Self {
        self.slots = Arc::new(Semaphore::new(n));
        self.max_in_progress = n;
        self
    }

    /// Waits for a turn to make a summary. Callers that read the request only once admitted
    /// keep the queue cheap: a waiting request has not been read or parsed yet.
    pub async fn admit(&self) -> Slot {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        // The semaphore is never closed, so `acquire_owned` does not fail.
        let permit = Arc::clone(&self.slots).acquire_owned().await.ok();
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        Slot(permit)
    }

    /// (transactions, summaries stored by them) of the group commit.
    pub fn commits(&self) -> (u64, u64) {
        self.committer.counts()
    }

    /// (summaries being made, requests waiting for their turn).
    pub fn load(&self) -> (usize, usize) {
        let free = self.slots.available_permits();
        (
            self.max_in_progress.saturating_sub(free),
            self.waiting.load(Ordering::Acquire),
        )
    }

    /// Callbacks and event subscriptions.
    pub fn with_webhooks(mut self, webhooks: Arc<Webhooks>) -> Self {
        self.webhooks = webhooks;
        self
    }

    pub fn webhooks(&self) -> &Arc<Webhooks> {
        &self.webhooks
    }

    /// Seals pseudonym maps with `vault`, kept for `pseudonym_days`.
    pub fn with_vault(mut self, vault: Arc<Vault>, pseudonym_days: u32) -> Self {
        self.vault = vault;
        self.pseudonym_days = pseudonym_days;
        self
    }

    pub fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    /// Bundles from Odoo about these models get a write-back to their source record when they
    /// name none.
    pub fn with_default_write_back(mut self, models: Vec<String>) -> Self {
        self.write_back_models = models;
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn prompts(&self) -> &Registry {
        &self.prompts
    }

    pub fn llm(&self) -> &Llm {
        &self.llm
    }

    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    /// Waits (at most `limit`) until no summary is being produced.
    pub async fn drain(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let idle = self.in_flight.idle.notified();
            if self.in_flight.count.load(Ordering::Acquire) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline.into(), idle)
                .await
                .is_err()
            {
                tracing::warn!(
                    in_flight = self.in_flight.count.load(Ordering::Acquire),
                    "shutdown: summaries still in flight"
                );
                return;
            }
        }
    }

    /// Produces (or replays) the summary document for a bundle.
    pub async fn summarize(
        self: &Arc<Self>,
        mut input: SummarizeInput,
    ) -> Result<Value, PipelineError> {
        if input.slot.is_none() {
            input.slot = Some(self.admit().await);
        }
        let prepared = self.prepare(&input)?;
        let deadline = Instant::now() + self.lease;
        let mut wait = Duration::from_millis(20);
        loop {
            match self.claim(&input, &prepared).await? {
                Step::Owned(owned) => {
                    return self
                        .produce(owned, input, prepared.templates, prepared.redactor)
                        .await;
                }
                Step::Existing(row) if row.status != "processing" => {
                    return Ok(document_of(&row, &self.vault));
                }
                Step::Existing(_) => {}
            }
            // A twin request is producing this summary: wait for its result, sharing its calls.
            if Instant::now() >= deadline {
                return Err(PipelineError::StillProcessing { key: prepared.key });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(250));
        }
    }

    /// Asynchronous mode: claims the bundle and answers at once; the summary is made in the
    /// background and, with a callback, delivered through the outbox. A repeat of the same
    /// request finds the same summary (and queues nothing twice). When the background work
    /// fails, the claim is released (a retry starts afresh) and the callback carries
    /// `problem_of`'s document instead.
    pub async fn submit(
        self: &Arc<Self>,
        mut input: SummarizeInput,
        problem_of: ProblemOf,
    ) -> Result<Submitted, PipelineError> {
        if input.slot.is_none() {
            input.slot = Some(self.admit().await);
        }
        let prepared = self.prepare(&input)?;
        let owned = match self.claim(&input, &prepared).await? {
            Step::Owned(owned) => owned,
            Step::Existing(row) => {
                let document = (row.status != "processing").then(|| document_of(&row, &self.vault));
                return Ok(Submitted {
                    id: row.id,
                    document,
                });
            }
        };
        let this = Arc::clone(self);
        let id = owned.id;
        tokio::spawn(
            async move {
                let (callback, key_id, event_id) = (
                    input.callback.clone(),
                    input.key_id.clone(),
                    input.bundle.event_id.as_str().to_owned(),
                );
                let Err(e) = this
                    .produce(owned, input, prepared.templates, prepared.redactor)
                    .await
                else {
                    return;
                };
                // A request that took the claim over finishes the summary, and its callback.
                if matches!(e, PipelineError::StillProcessing { .. }) {
                    return;
                }
                tracing::warn!(summary_id = %id, error = %e, "asynchronous summary failed; claim released");
                if let Some(url) = callback {
                    let mut problem = problem_of(e);
                    problem["summary_id"] = json!(id);
                    problem["event_id"] = json!(event_id);
                    let row = Webhooks::callback(&url, key_id.as_deref(), Some(problem));
                    if let Err(e) = this.store.enqueue(&[row], None).await {
                        tracing::error!(summary_id = %id, error = %e, "could not queue the failure callback");
                    }
                }
            }
            .instrument(tracing::Span::current()),
        );
        Ok(Submitted { id, document: None })
    }

    fn prepare(&self, input: &SummarizeInput) -> Result<Prepared, PipelineError> {
        let key = input
            .idempotency_key
            .clone()
            .unwrap_or_else(|| input.bundle.event_id.as_str().to_owned());
        let mut hasher = Sha256::new();
        hasher.update(input.raw.to_string().as_bytes());
        if let Some(url) = &input.callback {
            hasher.update(b"\ncallback: ");
            hasher.update(url.as_bytes());
        }
        // The caller's mistakes are reported before anything is claimed.
        Ok(Prepared {
            key,
            request_sha256: hex::encode(hasher.finalize()),
            templates: self.templates(&input.bundle)?,
            redactor: Arc::clone(self.policies.get(input.bundle.policy.as_deref())?),
        })
    }

    /// One claim attempt: this request owns the key (budget checked), or another request's row
    /// with the same body is returned. A dead owner's claim is taken over.
    async fn claim(&self, input: &SummarizeInput, p: &Prepared) -> Result<Step, PipelineError> {
        loop {
            let claim = NewClaim {
                id: Uuid::now_v7(),
                owner: Uuid::new_v4(),
                idempotency_key: p.key.clone(),
                event_id: input.bundle.event_id.as_str().to_owned(),
                event_type: input.bundle.event_type.as_str().to_owned(),
                request_sha256: p.request_sha256.clone(),
                key_id: input.key_id.clone(),
                policy_version: p.redactor.policy().version.clone(),
                policy_sha256: p.redactor.policy().sha256.clone(),
                lease_until_ms: unix_ms() + self.lease.as_millis() as i64,
                created_at: store::now(),
                callback_url: input.callback.clone(),
            };
            let started = Instant::now();
            let claimed = self.committer.claim(&claim).await?;
            tracing::debug!(target: TIMING, claim_us = micros(started), "claim");
            let existing = match claimed {
                Claim::Owned => {
                    if let (Some(key_id), Some(budget)) = (&input.key_id, input.daily_token_budget)
                    {
                        let used = self.store.usage(key_id, &utc_day()).await?;
                        if used >= i64::try_from(budget).unwrap_or(i64::MAX) {
                            self.store.abandon(claim.id, claim.owner, &[]).await?;
                            crate::metrics::rate_limited("budget");
                            return Err(PipelineError::BudgetExhausted { used, budget });
                        }
                    }
                    return Ok(Step::Owned(Owned {
                        id: claim.id,
                        owner: claim.owner,
                        created_at: claim.created_at,
                    }));
                }
                Claim::Existing(row) => row,
                Claim::Vanished => continue,
            };
            if existing.request_sha256 != p.request_sha256 {
                return Err(PipelineError::Conflict { key: p.key.clone() });
            }
            if existing.status == "processing" && existing.lease_until_ms < unix_ms() {
                let owner = Uuid::new_v4();
                let new_lease = unix_ms() + self.lease.as_millis() as i64;
                if self
                    .store
                    .take_over(existing.id, existing.lease_until_ms, new_lease, owner)
                    .await?
                {
                    tracing::warn!(summary_id = %existing.id, "took over the claim of a dead request");
                    return Ok(Step::Owned(Owned {
                        id: existing.id,
                        owner,
                        created_at: existing.created_at,
                    }));
                }
            }
            return Ok(Step::Existing(existing));
        }
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<Value>, PipelineError> {
        Ok(self
            .store
            .summary(id)
            .await?
            .map(|row| document_of(&row, &self.vault)))
    }

    fn templates(&self, bundle: &Bundle) -> Result<Vec<TemplateRef>, PromptError> {
        bundle
            .selected_tasks()
            .into_iter()
            .map(|task| {
                self.prompts.resolve(
                    task,
                    bundle.prompt_versions.get(&task).map(String::as_str),
                    bundle.event_id.as_str(),
                )
            })
            .collect()
    }

    /// The owner's path. Runs in its own task so that a caller hanging up does not leave the
    /// claim half-done (the twin that retries gets the stored result); shutdown waits for it.
    async fn produce(
        self: &Arc<Self>,
        owned: Owned,
        input: SummarizeInput,
        templates: Vec<TemplateRef>,
        redactor: Arc<Redactor>,
    ) -> Result<Value, PipelineError> {
        self.in_flight.count.fetch_add(1, Ordering::AcqRel);
        let guard = InFlightGuard(Arc::clone(&self.in_flight));
        let this = Arc::clone(self);
        let work = async move {
            let _guard = guard;
            let renewal = this.renew_while_working(owned);
            let result = this.produce_inner(owned, input, templates, &redactor).await;
            renewal.abort();
            if result.is_err() {
                // Give the key back so that a retry can start afresh (no-op if already released).
                if let Err(e) = this.store.abandon(owned.id, owned.owner, &[]).await {
                    tracing::warn!(error = %e, "could not release the claim");
                }
            }
            result
        };
        let handle = tokio::spawn(work.instrument(tracing::Span::current()));
        match handle.await {
            Ok(result) => result,
            Err(e) => Err(PipelineError::Internal(format!("summary task failed: {e}"))),
        }
    }

    /// Extends the claim's lease every third of it until aborted.
    fn renew_while_working(&self, owned: Owned) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let lease = self.lease;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                let until = unix_ms() + lease.as_millis() as i64;
                match store.renew(owned.id, owned.owner, until).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => tracing::warn!(error = %e, "could not renew the claim"),
                }
            }
        })
    }

    async fn produce_inner(
        &self,
        owned: Owned,
        mut input: SummarizeInput,
        templates: Vec<TemplateRef>,
        redactor: &Redactor,
    ) -> Result<Value, PipelineError> {
        let id = owned.id;
        let started = Instant::now();
        // The caller's document is redacted in place, not copied. The typed copies of its facts
        // and messages (made to validate it) are dropped too: they would otherwise be held
        // through the model calls.
        let mut redacted = redactor.redact_owned(std::mem::take(&mut input.raw));
        let redact_us = micros(started);
        input.bundle.facts = Map::new();
        input.bundle.messages = Vec::new();
        let bundle = &input.bundle;
        let language = bundle.reply_language();
        // The template context is needed only to render; it is not kept across the model calls.
        let started = Instant::now();
        let rendered = {
            let context = prompts::context(&redacted.value, &language);
            templates
                .iter()
                .map(|t| self.prompts.render(t, &context))
                .collect::<Result<Vec<_>, _>>()?
        };
        let render_us = micros(started);
        // Past the prompts, the redacted bundle is needed only for what the offline rules read
        // (a fallback may need them) and the names the document's key facts show: both are
        // taken now, and the bundle is not held while the model answers.
        let facts = Facts::read(&redacted.value);
        let names = KeyNames::read(&redacted.value);
        redacted.value = Value::Null;
        let started = Instant::now();
        let runs = join_all(rendered.iter().map(|r| {
            let req = ModelRequest {
                task: r.template.task,
                rendered: r,
                facts: &facts,
                language: &language,
            };
            async move { self.llm.run(&req).await }
        }))
        .await;

        let model_us = micros(started);
        let started = Instant::now();
        let mut results: Vec<(TaskResult, &TemplateRef)> = Vec::new();
        let mut failed: Option<String> = None;
        // The attempts of tasks that failed; those of the others stay in their results.
        let mut failed_attempts: Vec<(&TemplateRef, Attempt)> = Vec::new();
        for (run, r) in runs.into_iter().zip(&rendered) {
            match run {
                Ok(result) => results.push((result, &r.template)),
                Err(LlmError::Unavailable {
                    reason,
                    attempts,
                    task,
                })
                | Err(LlmError::OfflineInvalid {
                    reason,
                    attempts,
                    task,
                }) => {
                    failed_attempts.extend(attempts.into_iter().map(|a| (&r.template, a)));
                    failed.get_or_insert(format!("{task}: {reason}"));
                }
            }
        }
        let all_attempts: Vec<(&TemplateRef, &Attempt)> = results
            .iter()
            .flat_map(|(result, t)| result.attempts.iter().map(move |a| (*t, a)))
            .chain(failed_attempts.iter().map(|(t, a)| (*t, a)))
            .collect();
        record_metrics(all_attempts.iter().map(|(_, a)| *a), &redacted);
        let logs: Vec<NewPromptLog> = all_attempts
            .iter()
            .map(|(t, a)| log_row(id, &input, redactor, &redacted, t, a))
            .collect();
        if let Some(reason) = failed {
            self.store.abandon(id, owned.owner, &logs).await?;
            tracing::warn!(summary_id = %id, "model unavailable; claim released");
            return Err(PipelineError::ModelUnavailable(reason));
        }
        let mut document = document(
            id,
            owned.created_at,
            bundle,
            redactor,
            &redacted,
            &names,
            &results,
        );
        let sealed = (!redacted.pseudonyms.is_empty()).then(|| NewSealedMap {
            sealed: seal_map(&self.vault, id, &redacted.pseudonyms),
            expires_at: store::now() + time::Duration::days(i64::from(self.pseudonym_days)),
        });
        let source = &bundle.source;
        let target = match &bundle.write_back {
            Some(wb) => Some((wb.model.as_str(), wb.res_id, wb.activity_user_id)),
            None if source.system == "odoo" && self.write_back_models.contains(&source.model) => {
                Some((source.model.as_str(), source.res_id, None))
            }
            None => None,
        };
        // Delivered by the outbox workers: a pending-review note plus a review activity, the
        // callback of an asynchronous request, and the `summary.created` events.
        let mut outbox: Vec<NewOutbox> = target
            .map(|(model, res_id, user)| NewOutbox {
                id: Uuid::now_v7(),
                kind: crate::outbox::PENDING_REVIEW.to_owned(),
                payload: json!({"model": model, "res_id": res_id,
                    "activity_user_id": user, "summary_id": id}),
            })
            .into_iter()
            .collect();
        if let Some(url) = &input.callback {
            outbox.push(Webhooks::callback(url, input.key_id.as_deref(), None));
        }
        outbox.extend(
            self.webhooks
                .events(crate::webhook::SUMMARY_CREATED, json!({"summary_id": id})),
        );
        let tokens: i64 = logs.iter().filter_map(|l| l.total_tokens).sum();
        let model_calls = logs.len();
        let finished = store::Finished {
            id,
            owner: owned.owner,
            document: store::json_text(&document),
            severity: document["classification"]["severity"]
                .as_str()
                .map(str::to_owned),
            sealed,
            logs,
            outbox,
            usage: input
                .key_id
                .clone()
                .filter(|_| tokens > 0)
                .map(|key_id| store::KeyUsage {
                    key_id,
                    day: utc_day(),
                    tokens,
                }),
        };
        let build_us = micros(started);
        // Once the rows are built only the document and the pseudonyms are needed: the prompts,
        // the model's answers and the redacted bundle are not held while the commit queues (in
        // a burst it queues behind thousands). Nor are the findings as JSON, the largest part of
        // the document: they are held as `Finding`s, which are smaller, and put back after.
        let tasks = results.len();
        drop(all_attempts);
        drop(failed_attempts);
        drop(results);
        drop(rendered);
        if let Some(r) = document["redaction"].as_object_mut() {
            r.remove("findings");
        }
        let Redacted {
            pseudonyms,
            findings,
            ..
        } = redacted;
        let started = Instant::now();
        let stored = self.committer.complete(finished).await;
        tracing::debug!(target: TIMING, redact_us, render_us, model_us, build_us,
            store_us = micros(started), "summary stages");
        match stored {
            Ok(()) => {}
            // Another request took the key over (our calls are in the log); it answers.
            Err(StoreError::LostClaim) => {
                return Err(PipelineError::StillProcessing {
                    key: bundle.event_id.as_str().to_owned(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(summary_id = %id, tasks, model_calls, "summary stored");
        document["redaction"]["findings"] = findings_json(&findings);
        Ok(reveal(document, Some(&pseudonyms)))
    }
}

/// Which classes each part of a document gets back when a person reads it: a customer reads
/// the reply, so only customer data comes back there.
const REVEALED: &[(&str, Option<&[&str]>)] = &[
    ("impact_summary", None),
    ("classification", None),
    ("draft_reply", Some(&["customer_pii"])),
    ("key_facts", None),
];

/// The document as it is stored: outputs as the model wrote them, with pseudonym tokens, and
/// key facts from the redacted bundle. No raw PII or prices are stored; [`reveal`] restores
/// them from the sealed map when a person reads the summary. An output with a token that
/// cannot be restored is flagged now, so the flag does not depend on when it is read.
fn document(
    id: Uuid,
    created_at: time::OffsetDateTime,
    bundle: &Bundle,
    redactor: &Redactor,
    redacted: &Redacted,
    names: &KeyNames,
    results: &[(TaskResult, &TemplateRef)],
) -> Value {
    let mut doc = json!({
        "id": id,
        "event_id": bundle.event_id,
        "event_type": bundle.event_type,
        "status": "pending_review",
        "impact_summary": null,
        "classification": null,
        "draft_reply": null,
        "created_at": store::rfc3339(created_at),
    });
    let mut tasks = Map::new();
    let mut attention: Vec<String> = Vec::new();
    for (result, template) in results {
        let field = match result.task {
            Task::ImpactSummary => "impact_summary",
            Task::Classification => "classification",
            Task::CustomerReply => "draft_reply",
        };
        let classes = REVEALED
            .iter()
            .find(|(f, _)| *f == field)
            .and_then(|(_, c)| *c);
        let restored = match redacted.pseudonyms.restore_value(&result.output, classes) {
            Ok(restored) => restored,
            Err(unresolved) => {
                attention.push(format!(
                    "{field}: placeholders that match no redacted value: {}",
                    unresolved.join(", ")
                ));
                result.output.clone()
            }
        };
        if result.task == Task::CustomerReply {
            let text = format!(
                "{} {}",
                restored["subject"].as_str().unwrap_or(""),
                restored["body"].as_str().unwrap_or("")
            );
            let masks = leftover_masks(&text);
            if !masks.is_empty() {
                attention.push(format!(
                    "draft_reply: redacted values a customer must not see: {}",
                    masks.join(", ")
                ));
            }
        }
        doc[field] = result.output.clone();
        let fell_back = result
            .attempts
            .iter()
            .any(|a| a.kind == AttemptKind::Fallback);
        tasks.insert(
            result.task.as_str().to_owned(),
            json!({
                "provider": result.provider,
                "model": result.model,
                "generated_by": if result.provider == "offline" { "offline" } else { "model" },
                "fallback": fell_back,
                "prompt_version": template.version,
                "prompt_sha256": template.sha256,
                "model_calls": result.attempts.len(),
            }),
        );
    }
    doc["tasks"] = Value::Object(tasks);
    doc["needs_attention"] = json!(attention);
    let policy = redactor.policy();
    doc["redaction"] = json!({
        "policy": policy.name,
        "policy_version": policy.version,
        "policy_sha256": policy.sha256,
        "counts": redacted.counts,
        "pseudonyms": redacted.pseudonyms.len(),
        // Where values were redacted (paths and character offsets, never the values).
        "findings": findings_json(&redacted.findings),
    });
    // What the reviewer needs to place the draft; names come back through `reveal`.
    let s = &bundle.source;
    doc["key_facts"] = json!({
        "source": {"system": s.system, "model": s.model, "res_id": s.res_id,
            "name": names.source},
        "occurred_at": store::rfc3339(bundle.occurred_at),
        "locale": bundle.locale,
        "reply_to": bundle.reply_to.as_ref().map(|rt| json!({"name": names.reply_to,
            "email": names.reply_to_email, "lang": rt.lang})),
        "write_back": bundle.write_back.as_ref().map(|w| json!({"model": w.model, "res_id": w.res_id})),
    });
    doc
}

/// The redacted names a document's key facts show (the source record's, the addressee's).
struct KeyNames {
    source: Value,
    reply_to: Value,
    reply_to_email: Value,
}

impl KeyNames {
    fn read(redacted: &Value) -> Self {
        Self {
            source: redacted["source"]["name"].clone(),
            reply_to: redacted["reply_to"]["name"].clone(),
            reply_to_email: redacted["reply_to"]["email"].clone(),
        }
    }
}

/// A document's `redaction.findings`: the first 500.
fn findings_json(findings: &[Finding]) -> Value {
    json!(findings.iter().take(500).collect::<Vec<_>>())
}

/// The document a person reads: tokens restored from the pseudonym map, each part only with
/// the classes it may show ([`REVEALED`]); a part whose tokens do not all resolve stays as
/// stored. Without the map (purged by retention) the tokens stay and the document says why.
pub fn reveal(mut doc: Value, map: Option<&PseudonymMap>) -> Value {
    match map {
        Some(map) => {
            for (field, classes) in REVEALED {
                if let Some(part) = doc.get(*field)
                    && let Ok(restored) = map.restore_value(part, *classes)
                {
                    doc[*field] = restored;
                }
            }
        }
        None if doc["redaction"]["pseudonyms"].as_u64().unwrap_or(0) > 0 => {
            if let Some(a) = doc["needs_attention"].as_array_mut() {
                a.push(json!(
                    "pseudonym map deleted by retention: names and values show as placeholders"
                ));
            }
        }
        None => {}
    }
    doc
}

/// The map sealed for storage, bound to its summary.
fn seal_map(vault: &Vault, id: Uuid, map: &PseudonymMap) -> crate::vault::Sealed {
    let plain = serde_json::to_vec(&map.entries()).unwrap_or_default();
    vault.seal(id.as_bytes(), &plain)
}

/// The stored map of a summary, opened; `None` when there is none or it does not open (which
/// is logged: a missing key or an altered row).
fn open_map(vault: &Vault, row: &SummaryRow) -> Option<PseudonymMap> {
    let sealed = row.sealed.get()?;
    match vault.open(row.id.as_bytes(), &sealed) {
        Ok(plain) => serde_json::from_slice::<Vec<(String, String, String)>>(&plain)
            .ok()
            .map(PseudonymMap::from_entries),
        Err(e) => {
            tracing::error!(summary_id = %row.id, error = %e, "pseudonym map does not open");
            None
        }
    }
}

fn log_row(
    summary_id: Uuid,
    input: &SummarizeInput,
    redactor: &Redactor,
    redacted: &Redacted,
    template: &TemplateRef,
    a: &Attempt,
) -> NewPromptLog {
    let started = a.started_at;
    let created_at = started
        .replace_nanosecond(started.nanosecond() / 1_000 * 1_000)
        .unwrap_or(started);
    let label = |v: Value| v.as_str().map(str::to_owned).unwrap_or_default();
    NewPromptLog {
        id: Uuid::now_v7(),
        created_at,
        request_id: input.request_id.clone(),
        key_id: input.key_id.clone(),
        summary_id,
        event_id: input.bundle.event_id.as_str().to_owned(),
        event_type: input.bundle.event_type.as_str().to_owned(),
        task: a.task.as_str().to_owned(),
        attempt_kind: label(json!(a.kind)),
        template_version: template.version.clone(),
        template_sha256: template.sha256.clone(),
        policy_version: redactor.policy().version.clone(),
        policy_sha256: redactor.policy().sha256.clone(),
        provider: a.provider.to_owned(),
        model: a.model.clone(),
        parameters: a.parameters.json.clone(),
        messages: store::json_text(&*a.messages),
        raw_response: a.raw_response.as_ref().map(store::json_text),
        parsed_output: a.parsed.as_ref().map(store::json_text),
        prompt_tokens: a.usage.as_ref().map(|u| u.prompt_tokens as i64),
        completion_tokens: a.usage.as_ref().map(|u| u.completion_tokens as i64),
        total_tokens: a.usage.as_ref().map(|u| u.total_tokens as i64),
        latency_ms: a.latency_ms as i64,
        outcome: label(json!(a.outcome)),
        error: a.error.clone(),
        redaction_counts: store::json_text(&redacted.counts),
    }
}

/// The stored document as a person reads it ([`reveal`]), with the row's current status
/// (reviews change it later).
pub fn document_of(row: &SummaryRow, vault: &Vault) -> Value {
    match &row.document {
        Some(doc) => {
            let mut doc = reveal(doc.0.clone(), open_map(vault, row).as_ref());
            doc["status"] = json!(row.status);
            doc
        }
        None => json!({"id": row.id, "event_id": row.event_id, "status": row.status,
            "created_at": store::rfc3339(row.created_at)}),
    }
}

/// Today in UTC as `YYYY-MM-DD`: the day of a key's token budget.
pub fn utc_day() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Model calls and redactions, counted for `/metrics`.
fn record_metrics<'a>(attempts: impl Iterator<Item = &'a Attempt>, redacted: &Redacted) {
    use crate::metrics::{count, observe};
    let label = |v: Value| v.as_str().map(str::to_owned).unwrap_or_default();
    for a in attempts {
        let (task, kind, outcome) = (
            a.task.as_str(),
            label(json!(a.kind)),
            label(json!(a.outcome)),
        );
        count(
            "exbrief_model_calls_total",
            &[
                ("provider", a.provider),
                ("model", &a.model),
                ("task", task),
                ("attempt_kind", &kind),
                ("outcome", &outcome),
            ],
            1.0,
        );
        observe(
            "exbrief_model_call_duration_seconds",
            &[("model", &a.model), ("task", task)],
            a.latency_ms as f64 / 1000.0,
        );
        if let Some(u) = &a.usage {
            for (k, n) in [
                ("prompt", u.prompt_tokens),
                ("completion", u.completion_tokens),
            ] {
                count(
                    "exbrief_model_tokens_total",
                    &[("model", &a.model), ("task", task), ("kind", k)],
                    n as f64,
                );
            }
        }
        match a.kind {
            AttemptKind::Retry | AttemptKind::Repair => {
                count("exbrief_model_retries_total", &[("task", task)], 1.0)
            }
            AttemptKind::Fallback => count("exbrief_model_fallbacks_total", &[("task", task)], 1.0),
            AttemptKind::First => {}
        }
    }
    for f in &redacted.findings {
        count(
            "exbrief_redactions_total",
            &[("class", &f.class), ("entity", &f.entity)],
            1.0,
        );
    }
}

/// Where each summary's stage timings go (debug level; `bench/stages.sh` reads them).
pub(crate) const TIMING: &str = "exbrief::timing";

fn micros(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

fn unix_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}
