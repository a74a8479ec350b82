//! Any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, llama.cpp's server, Ollama),
//! through async-openai with raw JSON requests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use futures::future::BoxFuture;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::http1::Http1;
use super::{ModelReply, ModelRequest, Parameters, Provider, ProviderError, Usage};
use crate::bundle::Task;
use crate::config::{LlmConfig, StructuredOutput};
use crate::prompts::ChatMessage;

/// A chat-completions request: the parameters (model, sampling, response format), the messages
/// and `stream: false`, as one JSON object.
#[derive(serde::Serialize)]
struct Body<'a> {
    #[serde(flatten)]
    parameters: &'a Value,
    messages: &'a [ChatMessage],
    stream: bool,
}

/// Which `response_format` a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Format {
    Schema,
    Object,
    Plain,
}

pub struct OpenAiProvider {
    client: Client<OpenAIConfig>,
    model: String,
    timeout: Duration,
    mode: StructuredOutput,
    /// Set once the endpoint has rejected `json_schema`; `auto` then asks for `json_object`.
    schema_unsupported: AtomicBool,
    permits: Arc<Semaphore>,
    /// Parameters per template (task, sha256) and format, built once: the JSON schema inside
    /// is the largest part of a request after the messages, and would otherwise be copied for
    /// every call and every prompt-log row.
    parameters: Mutex<HashMap<(Task, String, Format), Arc<Parameters>>>,
}

impl OpenAiProvider {
    pub fn new(cfg: &LlmConfig) -> Result<Self, String> {
        let key = cfg
            .api_key
            .as_ref()
            .map(|k| k.expose_secret().to_owned())
            // Local servers (vLLM, llama.cpp, Ollama) accept any key; the header must still exist.
            .unwrap_or_else(|| "none".to_owned());
        let config = OpenAIConfig::new()
            .with_api_base(cfg.base_url.trim_end_matches('/'))
            .with_api_key(key);
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout())
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let plain = (cfg.base_url.starts_with("http://") && !proxy_in_environment())
            .then(|| Arc::new(Http1::new(cfg.max_concurrent, Duration::from_secs(5))));
        let client = Client::with_config(config).with_http_service(StatusService { http, plain });
        Ok(Self {
            client,
            model: cfg.model.clone(),
            timeout: cfg.timeout(),
            mode: cfg.structured_output,
            schema_unsupported: AtomicBool::new(false),
            permits: Arc::new(Semaphore::new(cfg.max_concurrent)),
            parameters: Mutex::default(),
        })
    }

    fn format(&self) -> Format {
        match self.mode {
            StructuredOutput::JsonSchema => Format::Schema,
            StructuredOutput::Auto if !self.schema_unsupported.load(Ordering::Relaxed) => {
                Format::Schema
            }
            StructuredOutput::Auto | StructuredOutput::JsonObject => Format::Object,
            StructuredOutput::None => Format::Plain,
        }
    }

    fn build_parameters(&self, req: &ModelRequest<'_>, format: Format) -> Value {
        let meta = &req.rendered.meta;
        let mut p = json!({"model": self.model});
        if let Some(t) = meta.temperature {
            p["temperature"] = json!(t);
        }
        if let Some(t) = meta.max_tokens {
            p["max_tokens"] = json!(t);
        }
        if let Some(t) = meta.top_p {
            p["top_p"] = json!(t);
        }
        match format {
            Format::Schema => {
                p["response_format"] = json!({"type": "json_schema", "json_schema": {
                    "name": req.task.as_str(), "strict": true,
                    "schema": &*req.rendered.schema}});
            }
            Format::Object => p["response_format"] = json!({"type": "json_object"}),
            Format::Plain => {}
        }
        p
    }
}

impl Provider for OpenAiProvider {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn parameters(&self, req: &ModelRequest<'_>) -> Arc<Parameters> {
        let format = self.format();
        let key = (req.task, req.rendered.template.sha256.clone(), format);
        let mut cache = self
            .parameters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(
            cache
                .entry(key)
                .or_insert_with(|| Arc::new(Parameters::new(self.build_parameters(req, format)))),
        )
    }

    fn complete<'a>(
        &'a self,
        _req: &'a ModelRequest<'a>,
        parameters: &'a Parameters,
        messages: &'a [ChatMessage],
    ) -> BoxFuture<'a, Result<ModelReply, ProviderError>> {
        Box::pin(async move {
            // Serialised here, to a string of its own size: async-openai copies a raw value in
            // one write, so the bytes it holds for the whole call are no larger than the
            // request (its own serialisation of the fields grew a buffer by doubling).
            let body = serde_json::value::to_raw_value(&Body {
                parameters: &parameters.value,
                messages,
                stream: false,
            })
            .map_err(|e| ProviderError::Transport(format!("failed to serialize request: {e}")))?;
            let asked_for_schema = parameters.value["response_format"]["type"] == "json_schema";
            let _permit =
                self.permits.acquire().await.map_err(|_| {
                    ProviderError::Transport("model call limiter closed".to_owned())
                })?;
            let chat = self.client.chat();
            let call = chat.create_byot::<_, Value>(body);
            let raw = match tokio::time::timeout(self.timeout, call).await {
                Err(_) => return Err(ProviderError::Timeout(self.timeout)),
                Ok(Ok(raw)) => raw,
                Ok(Err(e)) => {
                    let e = map_error(e);
                    if let ProviderError::Status {
                        status: 400 | 422,
                        message,
                        ..
                    } = &e
                    {
                        let m = message.to_ascii_lowercase();
                        if asked_for_schema
                            && self.mode == StructuredOutput::Auto
                            && (m.contains("response_format") || m.contains("schema"))
                        {
                            if !self.schema_unsupported.swap(true, Ordering::Relaxed) {
                                tracing::warn!(
                                    "the model endpoint rejected json_schema; using json_object from now on"
                                );
                            }
                            return Err(ProviderError::SchemaFormatUnsupported(message.clone()));
                        }
                    }
                    return Err(e);
                }
            };
            let content = raw["choices"][0]["message"]["content"]
                .as_str()
                .ok_or_else(|| {
                    ProviderError::BadResponse("no choices[0].message.content".to_owned())
                })?
                .to_owned();
            let usage = raw.get("usage").and_then(|u| {
                Some(Usage {
                    prompt_tokens: u.get("prompt_tokens")?.as_u64()?,
                    completion_tokens: u.get("completion_tokens")?.as_u64().unwrap_or(0),
                    total_tokens: u.get("total_tokens")?.as_u64().unwrap_or(0),
                })
            });
            let model = raw["model"].as_str().unwrap_or(&self.model).to_owned();
            Ok(ModelReply {
                content,
                raw,
                usage,
                model,
            })
        })
    }
}

/// A non-2xx answer, with what async-openai's own error would drop: the `Retry-After` header.
#[derive(Debug, thiserror::Error)]
#[error("HTTP {status}: {message}")]
struct UpstreamStatus {
    status: u16,
    retry_after: Option<Duration>,
    message: String,
}

fn map_error(e: OpenAIError) -> ProviderError {
    match e {
        OpenAIError::Boxed(inner) => match inner.downcast::<UpstreamStatus>() {
            Ok(s) => ProviderError::Status {
                status: s.status,
                retry_after: s.retry_after,
                message: s.message,
            },
            Err(other) => ProviderError::Transport(other.to_string()),
        },
        OpenAIError::Reqwest(e) if e.is_timeout() => ProviderError::Timeout(Duration::ZERO),
        OpenAIError::Reqwest(e) => ProviderError::Transport(e.to_string()),
        OpenAIError::ApiError(api) => ProviderError::Status {
            status: api.status_code.as_u16(),
            retry_after: None,
            message: api.api_error.message,
        },
        OpenAIError::JSONDeserialize(e, _) => ProviderError::BadResponse(e.to_string()),
        other => ProviderError::Transport(other.to_string()),
    }
}

/// Whether reqwest would send plain-http requests through a proxy (it reads these variables).
fn proxy_in_environment() -> bool {
    ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()))
}

/// The transport under async-openai: [`Http1`] for a plain-http endpoint, reqwest otherwise; a
/// non-success status becomes an [`UpstreamStatus`] carrying `Retry-After` and the error
/// message, so that our retry policy (not the client library's) decides, and every try is
/// visible to the prompt log.
#[derive(Clone)]
struct StatusService {
    http: reqwest::Client,
    plain: Option<Arc<Http1>>,
}

impl tower::Service<HttpRequestFactory> for StatusService {
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = BoxFuture<'static, Result<reqwest::Response, OpenAIError>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, factory: HttpRequestFactory) -> Self::Future {
        let http = self.http.clone();
        let plain = self.plain.clone();
        Box::pin(async move {
            let request = factory.build().await?;
            // The factory holds the request's bytes for a resend; this service never resends
            // (the pipeline's retry policy does, through a new call), so they go now rather
            // than stay through the model's wait.
            drop(factory);
            let response = match plain {
                Some(plain) => plain
                    .send(request)
                    .await
                    .map(reqwest::Response::from)
                    .map_err(|e| OpenAIError::Boxed(Box::new(e)))?,
                None => http.execute(request).await?,
            };
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| body.chars().take(300).collect());
            Err(OpenAIError::Boxed(Box::new(UpstreamStatus {
                status: status.as_u16(),
                retry_after,
                message,
            })))
        })
    }
}
