//! The summarize use case: idempotency claim → redact → render → model → restore → one
//! transaction for the summary, its prompt log and its Odoo outbox rows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tracing::Instrument;
use uuid::Uuid;

use crate::bundle::{Bundle, Task};
use crate::llm::{Attempt, Llm, LlmError, ModelRequest, TaskResult};
use crate::prompts::{self, PromptError, Registry, TemplateRef};
use crate::redact::{Redacted, Redactor};
use crate::store::{self, Claim, NewClaim, NewOutbox, NewPromptLog, Store, StoreError, SummaryRow};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("event `{key}` was already submitted with a different body")]
    Conflict { key: String },
    #[error("{0}")]
    Prompt(#[from] PromptError),
    #[error("{0}")]
    ModelUnavailable(String),
    #[error("event `{key}` is still being processed by another request")]
    StillProcessing { key: String },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// One summarize call as the HTTP layer hands it over.
#[derive(Debug, Clone)]
pub struct SummarizeInput {
    /// The document as the caller sent it (already checked to parse as a [`Bundle`]).
    pub raw: Value,
    pub bundle: Bundle,
    /// `Idempotency-Key` header; the event_id when absent.
    pub idempotency_key: Option<String>,
    pub request_id: String,
    pub key_id: Option<String>,
}

pub struct Pipeline {
    store: Store,
    redactor: Redactor,
    prompts: Registry,
    llm: Llm,
    lease: Duration,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("llm", &self.llm)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// `lease` is how long a request owns an idempotency key before a retry may take it over.
    pub fn new(
        store: Store,
        redactor: Redactor,
        prompts: Registry,
        llm: Llm,
        lease: Duration,
    ) -> Self {
        Self {
            store,
            redactor,
            prompts,
            llm,
            lease,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn llm(&self) -> &Llm {
        &self.llm
    }

    /// Produces (or replays) the summary document for a bundle.
    pub async fn summarize(
        self: &Arc<Self>,
        input: SummarizeInput,
    ) -> Result<Value, PipelineError> {
        let key = input
            .idempotency_key
            .clone()
            .unwrap_or_else(|| input.bundle.event_id.as_str().to_owned());
        let request_sha256 = hex::encode(Sha256::digest(input.raw.to_string().as_bytes()));
        // A bad pinned version is the caller's error: report it before claiming anything.
        let templates = self.templates(&input.bundle)?;
        let deadline = Instant::now() + self.lease;
        let mut wait = Duration::from_millis(20);
        loop {
            let claim = NewClaim {
                id: Uuid::now_v7(),
                idempotency_key: key.clone(),
                event_id: input.bundle.event_id.as_str().to_owned(),
                event_type: input.bundle.event_type.as_str().to_owned(),
                request_sha256: request_sha256.clone(),
                key_id: input.key_id.clone(),
                policy_version: self.redactor.policy().version.clone(),
                policy_sha256: self.redactor.policy_sha256().to_owned(),
                lease_until_ms: unix_ms() + self.lease.as_millis() as i64,
                created_at: store::now(),
            };
            let existing = match self.store.claim(&claim).await? {
                Claim::Owned => {
                    return self
                        .produce(claim.id, claim.created_at, input, templates)
                        .await;
                }
                Claim::Existing(row) => row,
            };
            if existing.status != "gone" {
                if existing.request_sha256 != request_sha256 {
                    return Err(PipelineError::Conflict { key });
                }
                if existing.status != "processing" {
                    return Ok(document_of(&existing));
                }
                if existing.lease_until_ms < unix_ms() {
                    let new_lease = unix_ms() + self.lease.as_millis() as i64;
                    if self
                        .store
                        .take_over(existing.id, existing.lease_until_ms, new_lease)
                        .await?
                    {
                        tracing::warn!(summary_id = %existing.id, "took over an expired claim");
                        return self
                            .produce(existing.id, existing.created_at, input, templates)
                            .await;
                    }
                }
            }
            // A twin request is producing this summary: wait for its result, sharing its calls.
            if Instant::now() >= deadline {
                return Err(PipelineError::StillProcessing { key });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(250));
        }
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<Value>, PipelineError> {
        Ok(self.store.summary(id).await?.map(|row| document_of(&row)))
    }

    fn templates(&self, bundle: &Bundle) -> Result<Vec<TemplateRef>, PromptError> {
        bundle
            .selected_tasks()
            .into_iter()
            .map(|task| {
                self.prompts
                    .resolve(task, bundle.prompt_versions.get(&task).map(String::as_str))
            })
            .collect()
    }

    /// The owner's path. Runs in its own task so that a caller hanging up does not leave the
    /// claim half-done: the twin that retries gets the stored result.
    async fn produce(
        self: &Arc<Self>,
        id: Uuid,
        created_at: time::OffsetDateTime,
        input: SummarizeInput,
        templates: Vec<TemplateRef>,
    ) -> Result<Value, PipelineError> {
        let this = Arc::clone(self);
        let work = async move { this.produce_inner(id, created_at, input, templates).await };
        let handle = tokio::spawn(work.instrument(tracing::Span::current()));
        match handle.await {
            Ok(result) => result,
            Err(e) => Err(PipelineError::Internal(format!("summary task failed: {e}"))),
        }
    }

    async fn produce_inner(
        &self,
        id: Uuid,
        created_at: time::OffsetDateTime,
        input: SummarizeInput,
        templates: Vec<TemplateRef>,
    ) -> Result<Value, PipelineError> {
        let bundle = &input.bundle;
        let redacted = self.redactor.redact(&input.raw);
        let language = bundle.reply_language();
        let context = prompts::context(&redacted.value, &language);
        let rendered = templates
            .iter()
            .map(|t| self.prompts.render(t, &context))
            .collect::<Result<Vec<_>, _>>()?;
        let runs = join_all(rendered.iter().map(|r| {
            let req = ModelRequest {
                task: r.template.task,
                rendered: r,
                bundle: &redacted.value,
                language: &language,
            };
            async move { self.llm.run(&req).await }
        }))
        .await;

        let mut results: Vec<TaskResult> = Vec::new();
        let mut failed: Option<String> = None;
        let mut all_attempts: Vec<(TemplateRef, Attempt)> = Vec::new();
        for (run, r) in runs.into_iter().zip(&rendered) {
            match run {
                Ok(result) => {
                    all_attempts.extend(
                        result
                            .attempts
                            .iter()
                            .cloned()
                            .map(|a| (r.template.clone(), a)),
                    );
                    results.push(result);
                }
                Err(LlmError::Unavailable {
                    reason,
                    attempts,
                    task,
                }) => {
                    all_attempts.extend(attempts.into_iter().map(|a| (r.template.clone(), a)));
                    failed.get_or_insert(format!("{task}: {reason}"));
                }
                Err(e @ LlmError::OfflineInvalid { .. }) => {
                    failed.get_or_insert(e.to_string());
                }
            }
        }
        let logs: Vec<NewPromptLog> = all_attempts
            .iter()
            .map(|(t, a)| self.log_row(id, &input, &redacted, t, a))
            .collect();
        if let Some(reason) = failed {
            self.store.abandon(id, &logs).await?;
            tracing::warn!(summary_id = %id, "model unavailable; claim released");
            return Err(PipelineError::ModelUnavailable(reason));
        }
        let document = self.document(id, created_at, bundle, &redacted, &results, &templates);
        let outbox: Vec<NewOutbox> = bundle
            .write_back
            .as_ref()
            .map(|wb| NewOutbox {
                id: Uuid::now_v7(),
                // Delivered by the Odoo outbox worker (issue #5): a pending-review note plus a
                // review activity on this record.
                kind: "odoo.pending_review".to_owned(),
                payload: json!({"model": wb.model, "res_id": wb.res_id,
                    "activity_user_id": wb.activity_user_id, "summary_id": id}),
            })
            .into_iter()
            .collect();
        self.store.complete(id, &document, &logs, &outbox).await?;
        tracing::info!(summary_id = %id, tasks = results.len(), model_calls = logs.len(), "summary stored");
        Ok(document)
    }

    fn document(
        &self,
        id: Uuid,
        created_at: time::OffsetDateTime,
        bundle: &Bundle,
        redacted: &Redacted,
        results: &[TaskResult],
        templates: &[TemplateRef],
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
        for (result, template) in results.iter().zip(templates) {
            // Readers of the summary may see the real names; masked values stay masked.
            let mut output = result.output.clone();
            redacted.pseudonyms.restore_value(&mut output);
            let field = match result.task {
                Task::ImpactSummary => "impact_summary",
                Task::Classification => "classification",
                Task::CustomerReply => "draft_reply",
            };
            doc[field] = output;
            let fell_back = result
                .attempts
                .iter()
                .any(|a| a.kind == crate::llm::AttemptKind::Fallback);
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
        let mut counts = json!({"customer_pii": 0, "pricing": 0, "hr": 0});
        for (class, n) in redacted.counts_json() {
            counts[class] = json!(n);
        }
        doc["redaction"] = json!({
            "policy": self.redactor.policy().name,
            "policy_version": self.redactor.policy().version,
            "policy_sha256": self.redactor.policy_sha256(),
            "counts": counts,
        });
        doc
    }

    fn log_row(
        &self,
        summary_id: Uuid,
        input: &SummarizeInput,
        redacted: &Redacted,
        template: &TemplateRef,
        a: &Attempt,
    ) -> NewPromptLog {
        let started = a.started_at;
        let created_at = started
            .replace_nanosecond(started.nanosecond() / 1_000 * 1_000)
            .unwrap_or(started);
        NewPromptLog {
            id: Uuid::now_v7(),
            created_at,
            request_id: input.request_id.clone(),
            key_id: input.key_id.clone(),
            summary_id,
            event_id: input.bundle.event_id.as_str().to_owned(),
            event_type: input.bundle.event_type.as_str().to_owned(),
            task: a.task.as_str().to_owned(),
            attempt_kind: serde_json::to_value(a.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            template_version: template.version.clone(),
            template_sha256: template.sha256.clone(),
            policy_version: self.redactor.policy().version.clone(),
            policy_sha256: self.redactor.policy_sha256().to_owned(),
            provider: a.provider.to_owned(),
            model: a.model.clone(),
            parameters: a.parameters.clone(),
            messages: json!(a.messages),
            raw_response: a.raw_response.clone(),
            parsed_output: a.parsed.clone(),
            prompt_tokens: a.usage.as_ref().map(|u| u.prompt_tokens as i64),
            completion_tokens: a.usage.as_ref().map(|u| u.completion_tokens as i64),
            total_tokens: a.usage.as_ref().map(|u| u.total_tokens as i64),
            latency_ms: a.latency_ms as i64,
            outcome: serde_json::to_value(a.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            error: a.error.clone(),
            redaction_counts: json!(redacted.counts_json()),
        }
    }
}

/// The stored document, with the row's current status (reviews change it later).
fn document_of(row: &SummaryRow) -> Value {
    match &row.document {
        Some(doc) => {
            let mut doc = doc.0.clone();
            doc["status"] = json!(row.status);
            doc
        }
        None => json!({"id": row.id, "event_id": row.event_id, "status": row.status,
            "created_at": store::rfc3339(row.created_at)}),
    }
}

fn unix_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}
