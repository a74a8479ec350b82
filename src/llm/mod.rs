//! Model providers and the policy around them: retries with backoff, `Retry-After`, one schema
//! repair, schema validation, and the offline fallback. Every try becomes an [`Attempt`] that the
//! pipeline writes to the prompt log.

mod http1;
mod offline;
mod openai;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use rand::Rng;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

pub use offline::{Facts, OfflineProvider};
pub use openai::OpenAiProvider;

use crate::bundle::Task;
use crate::config::{LlmConfig, OnFailure};
use crate::prompts::{ChatMessage, Rendered};

/// What a provider is asked for one task. `bundle` is the redacted bundle, never the original.
pub struct ModelRequest<'a> {
    pub task: Task,
    pub rendered: &'a Rendered,
    /// What the offline rules read from the redacted bundle (read once per summary, so that
    /// the bundle itself is not held while the model answers).
    pub facts: &'a Facts,
    pub language: &'a str,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

#[derive(Debug, Clone)]
pub struct ModelReply {
    /// The text the model answered (expected to be one JSON object).
    pub content: String,
    /// The whole response document as received.
    pub raw: Value,
    pub usage: Option<Usage>,
    pub model: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("model call timed out after {0:?}")]
    Timeout(Duration),
    #[error("transport error: {0}")]
    Transport(String),
    #[error("model endpoint answered HTTP {status}: {message}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("endpoint rejected the json_schema response format: {0}")]
    SchemaFormatUnsupported(String),
    #[error("unusable response: {0}")]
    BadResponse(String),
}

impl ProviderError {
    fn retryable(&self) -> bool {
        match self {
            ProviderError::Timeout(_) | ProviderError::Transport(_) => true,
            ProviderError::Status { status, .. } => *status == 429 || *status >= 500,
            ProviderError::SchemaFormatUnsupported(_) => true,
            ProviderError::BadResponse(_) => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A model backend. Object-safe so that the pipeline holds `Arc<dyn Provider>`.
pub trait Provider: Send + Sync {
    /// `openai` for any OpenAI-compatible endpoint, `offline` for the rule-based one.
    fn name(&self) -> &'static str;
    fn model(&self) -> &str;
    /// The request parameters as sent (everything but the messages), for the request and the
    /// prompt log; shared, since they are the same for every call with one template.
    fn parameters(&self, req: &ModelRequest<'_>) -> Arc<Parameters>;
    fn complete<'a>(
        &'a self,
        req: &'a ModelRequest<'a>,
        parameters: &'a Parameters,
        messages: &'a [ChatMessage],
    ) -> BoxFuture<'a, Result<ModelReply, ProviderError>>;
}

/// A call's parameters and their JSON, written once: providers cache them per template, and
/// every call's prompt-log row carries the JSON. (The messages are written for each call's
/// request and again for its log row: written once and kept, they would be held through the
/// model's wait beside the request's own bytes, 14 KB more per summary in flight.)
#[derive(Debug)]
pub struct Parameters {
    pub value: Value,
    pub json: Box<serde_json::value::RawValue>,
}

impl Parameters {
    pub fn new(value: Value) -> Self {
        // `Box<RawValue>`'s default is `null`; a JSON value always serialises.
        let json = serde_json::value::to_raw_value(&value).unwrap_or_default();
        Self { value, json }
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AttemptKind {
    First,
    Retry,
    Repair,
    Fallback,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Error,
    InvalidOutput,
}

/// One model call, as the prompt log records it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub task: Task,
    pub kind: AttemptKind,
    pub provider: &'static str,
    pub model: String,
    pub parameters: Arc<Parameters>,
    pub messages: Arc<Vec<ChatMessage>>,
    pub started_at: OffsetDateTime,
    pub latency_ms: u64,
    pub raw_response: Option<Value>,
    pub parsed: Option<Value>,
    pub usage: Option<Usage>,
    pub outcome: Outcome,
    pub error: Option<String>,
}

/// The validated result of one task.
#[derive(Debug, Clone)]
pub struct TaskResult {
    pub task: Task,
    pub output: Value,
    pub provider: &'static str,
    pub model: String,
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The model failed and config says not to fall back. Carries the tries for the prompt log.
    #[error("the model could not produce a valid {task} ({reason})")]
    Unavailable {
        task: Task,
        reason: String,
        attempts: Vec<Attempt>,
    },
    #[error("the offline provider produced output that breaks the {task} schema: {reason}")]
    OfflineInvalid {
        task: Task,
        reason: String,
        /// The tries before the fallback, for the prompt log.
        attempts: Vec<Attempt>,
    },
}

/// The model side of the pipeline: an optional remote provider and the offline one.
pub struct Llm {
    primary: Option<Arc<dyn Provider>>,
    offline: OfflineProvider,
    max_retries: u32,
    backoff_base: Duration,
    backoff_max: Duration,
    max_retry_after: Duration,
    on_failure: OnFailure,
    /// Global model tokens per minute (`limits.model_tokens_per_minute`), when capped.
    tokens: Option<Arc<governor::DefaultDirectRateLimiter>>,
    token_quota: u32,
}

impl std::fmt::Debug for Llm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llm")
            .field(
                "primary",
                &self
                    .primary
                    .as_ref()
                    .map(|p| (p.name(), p.model().to_owned())),
            )
            .finish_non_exhaustive()
    }
}

impl Llm {
    pub fn from_config(cfg: &LlmConfig) -> Result<Self, String> {
        let primary: Option<Arc<dyn Provider>> = if cfg.is_configured() {
            Some(Arc::new(OpenAiProvider::new(cfg)?))
        } else {
            None
        };
        Ok(Self {
            primary,
            offline: OfflineProvider,
            max_retries: cfg.max_retries,
            backoff_base: Duration::from_millis(cfg.backoff_base_ms),
            backoff_max: Duration::from_millis(cfg.backoff_max_ms),
            max_retry_after: Duration::from_secs(cfg.max_retry_after_secs),
            on_failure: cfg.on_failure,
            tokens: None,
            token_quota: 0,
        })
    }

    /// Caps model tokens per minute across every request of this process; 0 leaves it open.
    pub fn with_token_limit(mut self, per_minute: u32) -> Self {
        if let Some(n) = std::num::NonZeroU32::new(per_minute) {
            self.tokens = Some(Arc::new(governor::RateLimiter::direct(
                governor::Quota::per_minute(n),
            )));
            self.token_quota = per_minute;
        }
        self
    }

    /// Waits until the token budget of this minute has room for the call about to be made:
    /// a flood queues here instead of burning the provider's quota.
    async fn spend_tokens(&self, messages: &[ChatMessage], max_tokens: Option<u64>) {
        let Some(limiter) = &self.tokens else { return };
        let chars: usize = messages.iter().map(|m| m.content.len()).sum();
        let estimate = (chars / 4) as u64 + max_tokens.unwrap_or(1024);
        let n = std::num::NonZeroU32::new(estimate.clamp(1, u64::from(self.token_quota)) as u32)
            .unwrap_or(std::num::NonZeroU32::MIN);
        if limiter.check_n(n).is_ok_and(|r| r.is_ok()) {
            return;
        }
        crate::metrics::rate_limited("tokens");
        let _ = limiter.until_n_ready(n).await;
    }

    /// `offline` or `openai:<model>`, for logs and health output.
    pub fn describe(&self) -> String {
        match &self.primary {
            Some(p) => format!("{}:{}", p.name(), p.model()),
            None => "offline".to_owned(),
        }
    }

    /// Runs one task to a schema-valid output, or fails per `on_failure`.
    pub async fn run(&self, req: &ModelRequest<'_>) -> Result<TaskResult, LlmError> {
        let mut attempts = Vec::new();
        let Some(primary) = &self.primary else {
            return self.offline(req, AttemptKind::First, attempts).await;
        };
        let validator = Some(&*req.rendered.validator);
        let mut messages = Arc::clone(&req.rendered.messages);
        let mut kind = AttemptKind::First;
        let mut retries = 0u32;
        let mut repaired = false;
        let mut downgraded = false;
        let reason = loop {
            let parameters = primary.parameters(req);
            self.spend_tokens(&messages, parameters.value["max_tokens"].as_u64())
                .await;
            let started_at = OffsetDateTime::now_utc();
            let clock = Instant::now();
            let result = primary.complete(req, &parameters, &messages).await;
            let mut attempt = Attempt {
                task: req.task,
                kind,
                provider: primary.name(),
                model: primary.model().to_owned(),
                parameters,
                messages: Arc::clone(&messages),
                started_at,
                latency_ms: clock.elapsed().as_millis() as u64,
                raw_response: None,
                parsed: None,
                usage: None,
                outcome: Outcome::Error,
                error: None,
            };
            match result {
                Ok(reply) => {
                    attempt.raw_response = Some(reply.raw.clone());
                    attempt.usage = reply.usage.clone();
                    attempt.model = reply.model.clone();
                    match parse_and_validate(&reply.content, validator) {
                        Ok(output) => {
                            attempt.parsed = Some(output.clone());
                            attempt.outcome = Outcome::Ok;
                            let model = attempt.model.clone();
                            attempts.push(attempt);
                            return Ok(TaskResult {
                                task: req.task,
                                output,
                                provider: primary.name(),
                                model,
                                attempts,
                            });
                        }
                        Err(problem) => {
                            attempt.outcome = Outcome::InvalidOutput;
                            attempt.error = Some(problem.clone());
                            attempts.push(attempt);
                            if repaired {
                                break format!("invalid output after repair: {problem}");
                            }
                            repaired = true;
                            kind = AttemptKind::Repair;
                            let repair = Arc::make_mut(&mut messages);
                            repair.push(ChatMessage {
                                role: "assistant",
                                content: reply.content,
                            });
                            repair.push(ChatMessage {
                                role: "user",
                                content: format!(
                                    "Your previous answer was not valid: {problem}. Answer again with exactly one JSON object that follows the schema, and nothing else."
                                ),
                            });
                        }
                    }
                }
                Err(e) => {
                    attempt.error = Some(e.to_string());
                    attempts.push(attempt);
                    if matches!(e, ProviderError::SchemaFormatUnsupported(_)) && !downgraded {
                        // The provider switched itself to json_object; try again at once.
                        downgraded = true;
                        kind = AttemptKind::Retry;
                        continue;
                    }
                    if !e.retryable() || retries >= self.max_retries {
                        break e.to_string();
                    }
                    let wait = match e.retry_after() {
                        Some(ra) if ra > self.max_retry_after => {
                            break format!(
                                "{e}; Retry-After {ra:?} exceeds the configured maximum"
                            );
                        }
                        Some(ra) => ra,
                        None => self.backoff(retries),
                    };
                    retries += 1;
                    kind = AttemptKind::Retry;
                    tracing::warn!(task = %req.task, retry = retries, wait_ms = wait.as_millis() as u64, error = %short(&e), "model call failed; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        };
        tracing::warn!(task = %req.task, attempts = attempts.len(), "model gave no valid answer");
        match self.on_failure {
            OnFailure::Fallback => self.offline(req, AttemptKind::Fallback, attempts).await,
            OnFailure::Error => Err(LlmError::Unavailable {
                task: req.task,
                reason,
                attempts,
            }),
        }
    }

    /// Exponential backoff with full jitter: uniform in [0, min(max, base·2^n)].
    fn backoff(&self, retry: u32) -> Duration {
        let cap = self
            .backoff_base
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.backoff_max);
        let ms = cap.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(0..=ms))
    }

    async fn offline(
        &self,
        req: &ModelRequest<'_>,
        kind: AttemptKind,
        mut attempts: Vec<Attempt>,
    ) -> Result<TaskResult, LlmError> {
        let started_at = OffsetDateTime::now_utc();
        let clock = Instant::now();
        let parameters = self.offline.parameters(req);
        let reply = self
            .offline
            .complete(req, &parameters, &req.rendered.messages)
            .await;
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) => {
                return Err(LlmError::OfflineInvalid {
                    task: req.task,
                    reason: e.to_string(),
                    attempts,
                });
            }
        };
        let validator = Some(&*req.rendered.validator);
        let output = match parse_and_validate(&reply.content, validator) {
            Ok(output) => output,
            Err(reason) => {
                return Err(LlmError::OfflineInvalid {
                    task: req.task,
                    reason,
                    attempts,
                });
            }
        };
        attempts.push(Attempt {
            task: req.task,
            kind,
            provider: self.offline.name(),
            model: self.offline.model().to_owned(),
            parameters,
            messages: Arc::clone(&req.rendered.messages),
            started_at,
            latency_ms: clock.elapsed().as_millis() as u64,
            raw_response: Some(reply.raw),
            parsed: Some(output.clone()),
            usage: None,
            outcome: Outcome::Ok,
            error: None,
        });
        Ok(TaskResult {
            task: req.task,
            output,
            provider: self.offline.name(),
            model: self.offline.model().to_owned(),
            attempts,
        })
    }
}

/// Parses the model's text as JSON (tolerating a Markdown code fence) and checks the schema.
fn parse_and_validate(
    content: &str,
    validator: Option<&jsonschema::Validator>,
) -> Result<Value, String> {
    let trimmed = content.trim();
    let unfenced = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|s| s.strip_suffix("```"))
        .unwrap_or(trimmed);
    let value: Value =
        serde_json::from_str(unfenced).map_err(|e| format!("not valid JSON ({e})"))?;
    if let Some(v) = validator {
        let errors: Vec<String> = v
            .iter_errors(&value)
            .take(3)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if !errors.is_empty() {
            return Err(format!("schema violation: {}", errors.join("; ")));
        }
    }
    Ok(value)
}

/// Error text for logs: the kind and status only, never response bodies.
fn short(e: &ProviderError) -> String {
    match e {
        ProviderError::Timeout(d) => format!("timeout after {d:?}"),
        ProviderError::Transport(_) => "transport error".to_owned(),
        ProviderError::Status { status, .. } => format!("HTTP {status}"),
        ProviderError::SchemaFormatUnsupported(_) => "json_schema unsupported".to_owned(),
        ProviderError::BadResponse(_) => "bad response".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fenced_json_is_accepted_and_schema_enforced() {
        let schema = serde_json::json!({"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}});
        let v = jsonschema::validator_for(&schema).unwrap();
        assert!(parse_and_validate("```json\n{\"a\": \"x\"}\n```", Some(&v)).is_ok());
        assert!(
            parse_and_validate("{\"a\": 1}", Some(&v))
                .unwrap_err()
                .contains("schema")
        );
        assert!(
            parse_and_validate("not json", Some(&v))
                .unwrap_err()
                .contains("JSON")
        );
    }

    #[test]
    fn backoff_stays_under_the_cap() {
        let llm = Llm::from_config(&LlmConfig {
            backoff_base_ms: 100,
            backoff_max_ms: 1000,
            ..LlmConfig::default()
        })
        .unwrap();
        for n in 0..20 {
            assert!(llm.backoff(n) <= Duration::from_millis(1000));
        }
    }
}

#[cfg(test)]
mod token_limit_tests {
    use super::*;

    fn message(chars: usize) -> ChatMessage {
        ChatMessage {
            role: "user",
            content: "x".repeat(chars),
        }
    }

    #[tokio::test]
    async fn a_call_waits_when_the_minute_has_no_tokens_left() {
        let cfg = LlmConfig::default();
        let llm = Llm::from_config(&cfg).unwrap().with_token_limit(1_000);
        // 400 characters ≈ 100 tokens, plus 500 for the answer: 600 of the minute's 1,000.
        let messages = [message(400)];
        let call = || llm.spend_tokens(&messages, Some(500));
        tokio::time::timeout(Duration::from_millis(200), call())
            .await
            .expect("the first call fits");
        // The second needs 600 more; 1,000 per minute refill about 17 a second.
        assert!(
            tokio::time::timeout(Duration::from_millis(300), call())
                .await
                .is_err(),
            "the second call should wait for the bucket"
        );
        let open = Llm::from_config(&cfg).unwrap().with_token_limit(0);
        for _ in 0..5 {
            tokio::time::timeout(
                Duration::from_millis(50),
                open.spend_tokens(&messages, Some(500)),
            )
            .await
            .expect("no limit configured");
        }
    }
}
