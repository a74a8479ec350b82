//! One typed configuration: defaults, then an optional TOML file, then `EXBRIEF_<SECTION>__<KEY>`
//! environment variables, then command-line overrides. Validated once at start.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::bundle::Task;

/// Environment variables are config keys when they look like `EXBRIEF_<SECTION>__<KEY>`.
/// Variables without a `__` (such as `EXBRIEF_TEST_PG_URL`) are not config and are ignored.
pub const ENV_PREFIX: &str = "EXBRIEF_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Toml { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub llm: LlmConfig,
    pub prompts: PromptsConfig,
    pub redaction: RedactionConfig,
    pub odoo: OdooConfig,
    pub review: ReviewConfig,
    pub vault: VaultConfig,
    pub retention: RetentionConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub webhooks: WebhooksConfig,
}

/// Outbound webhooks: asynchronous-summary callbacks and event subscriptions (issue 10).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// URL prefixes a bundle's `callback.url` may start with (scheme, host, port and a path
    /// prefix, e.g. `https://n8n.example.com/webhook-waiting/`). Empty: no callbacks.
    pub callback_allow: Vec<String>,
    /// Per delivery attempt.
    pub timeout_secs: u64,
    /// Tries per delivery before it is marked `dead` (and an `outbox.dead` event is sent).
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// How often the webhook worker looks for due deliveries when idle.
    pub poll_interval_ms: u64,
    pub subscriptions: Vec<Subscription>,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            callback_allow: Vec::new(),
            timeout_secs: 10,
            max_attempts: 8,
            backoff_base_ms: 1_000,
            backoff_max_ms: 300_000,
            poll_interval_ms: 500,
            subscriptions: Vec::new(),
        }
    }
}

/// One receiver of signed event POSTs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// Names the subscription in logs and in `exbrief outbox list`.
    pub name: String,
    pub url: String,
    /// Any of `summary.created`, `review.approved`, `review.rejected`, `outbox.dead`.
    pub events: Vec<String>,
    /// The HMAC key the receiver verifies `X-Exbrief-Signature` with.
    pub secret: SecretString,
}

/// API-key authentication and request signatures.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// No keys checked, every caller may do everything: local demos only (warned at every start).
    pub disabled: bool,
    /// A signed request older or newer than this is refused, and a signature is remembered this
    /// long to refuse its replay.
    pub signature_max_skew_secs: u64,
    /// How long a key's row is reused without reading it again: a revocation takes effect
    /// within this time. 0 reads the row on every request.
    pub key_cache_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            disabled: false,
            signature_max_skew_secs: 300,
            key_cache_ms: 1000,
        }
    }
}

/// Rate limits and budgets (per API key unless named global).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Requests per minute per key, refilled evenly; `burst` may arrive at once.
    pub requests_per_minute: u32,
    pub burst: u32,
    /// Global: model tokens per minute across all keys (prompt estimate + max completion);
    /// a call waits for its share, at most until its request times out. 0: no cap.
    pub model_tokens_per_minute: u32,
    /// Per key and UTC day: model tokens (as the provider counted them). 0: no budget.
    pub daily_token_budget: u64,
    /// A bundle with more messages, or more fact values, or a longer string is refused (422).
    pub max_messages: usize,
    pub max_fact_values: usize,
    pub max_string_chars: usize,
    /// Summaries being made at once (parsed, redacted, at the model, being stored); further
    /// requests wait their turn unread, so this bounds memory (~200 KB per summary made).
    /// With the model at latency L, throughput is at most this / L.
    pub max_summaries_in_progress: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            requests_per_minute: 600,
            burst: 60,
            model_tokens_per_minute: 0,
            daily_token_budget: 0,
            max_messages: 200,
            max_fact_values: 5_000,
            max_string_chars: 100_000,
            max_summaries_in_progress: crate::pipeline::DEFAULT_MAX_IN_PROGRESS,
        }
    }
}

/// The key that seals pseudonym maps at rest (AES-256-GCM) and signs retention checkpoints.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct VaultConfig {
    /// Base64 of 32 random bytes (`openssl rand -base64 32`). Unset with SQLite: a key file
    /// `<database file>.vault-key` is made on first start. Required with PostgreSQL.
    pub key: Option<SecretString>,
    /// Keys that sealed maps still stored: they open, they never seal. Drop one once
    /// `retention.pseudonym_days` have passed since it was replaced.
    pub previous_keys: Vec<SecretString>,
}

/// How long what is kept is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Sealed pseudonym maps are deleted this many days after their summary; afterwards the
    /// summary shows tokens where names were.
    pub pseudonym_days: u32,
    /// Prompt-log rows older than this are deleted, leaving a signed checkpoint so the rest of
    /// the chain still verifies. 0 keeps them forever.
    pub prompt_log_days: u32,
    /// How often the retention job runs.
    pub interval_minutes: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            pseudonym_days: 30,
            prompt_log_days: 400,
            interval_minutes: 60,
        }
    }
}

/// The review pages (`/review`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewConfig {
    /// What a reviewer types to sign in to the pages (API keys are for the API). Unset: the pages
    /// answer that review sign-in is not configured.
    pub secret: Option<SecretString>,
    /// Signs session cookies and CSRF tokens; set it when several replicas serve the pages
    /// (otherwise each process makes its own, and sessions end with the process).
    pub session_key: Option<SecretString>,
    pub session_minutes: u64,
    /// Adds `Secure` to the session cookie (serve the pages over HTTPS).
    pub secure_cookie: bool,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        Self {
            secret: None,
            session_key: None,
            session_minutes: 480,
            secure_cookie: false,
        }
    }
}

/// Which of Odoo's external APIs to speak.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OdooApi {
    /// `POST /json/2/<model>/<method>`, bearer API key: Odoo 19 and later.
    Json2,
    /// `POST /jsonrpc` with `execute_kw`: Odoo 16–18 (deprecated in 19, removed in 20).
    Jsonrpc,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OdooConfig {
    /// Base URL, e.g. `https://erp.example.com`. Empty: no write-back.
    pub url: String,
    pub database: String,
    /// The technical user's login (JSON-RPC authenticates with it; JSON-2 needs only the key).
    pub login: String,
    /// The technical user's API key (or password, JSON-RPC only).
    pub api_key: Option<SecretString>,
    pub api: OdooApi,
    /// Per call.
    pub timeout_secs: u64,
    /// Where exbrief's review pages are reachable for people in Odoo (the note links there);
    /// empty: no link.
    pub review_url: String,
    /// Odoo user id the review activity is assigned to when the bundle names none.
    pub default_reviewer_id: Option<i64>,
    /// Source models (`sale.order`, `purchase.order`…) whose record gets the write-back when a
    /// bundle from Odoo has no `write_back`.
    pub write_back_models: Vec<String>,
    /// Tries per outbox row before it is marked `dead`.
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// How often the worker looks for due rows when idle.
    pub poll_interval_ms: u64,
    /// On approval, also post the reply to the record's thread as a comment, which Odoo
    /// e-mails to the customer; otherwise the approved text is an internal note.
    pub send_on_approve: bool,
}

impl Default for OdooConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            database: String::new(),
            login: String::new(),
            api_key: None,
            api: OdooApi::Json2,
            timeout_secs: 30,
            review_url: String::new(),
            default_reviewer_id: None,
            write_back_models: Vec::new(),
            max_attempts: 8,
            backoff_base_ms: 2_000,
            backoff_max_ms: 300_000,
            poll_interval_ms: 1_000,
            send_on_approve: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Deepest JSON nesting accepted in a bundle.
    pub max_json_depth: usize,
    /// How long a request owns its event while producing it: a twin waits at most this long,
    /// and a retry may take over a claim whose owner died once it has passed.
    pub request_timeout_secs: u64,
    /// `human` or `json`.
    pub log_format: LogFormat,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 1024 * 1024,
            max_json_depth: 64,
            request_timeout_secs: 120,
            log_format: LogFormat::Human,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path` (created when missing) or `postgres://…`.
    pub url: String,
    pub max_connections: u32,
    /// Connections kept open even when idle (at most `max_connections`). Opening one under
    /// load costs a PostgreSQL backend start while requests wait for it.
    pub min_connections: Option<u32>,
}

impl DatabaseConfig {
    /// `min_connections`, or the whole pool when unset.
    pub fn min_connections(&self) -> u32 {
        self.min_connections
            .unwrap_or(self.max_connections)
            .min(self.max_connections)
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://exbrief.db".to_owned(),
            max_connections: 8,
            min_connections: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    /// OpenAI-compatible base URL including `/v1`. Empty: the offline provider answers.
    pub base_url: String,
    pub api_key: Option<SecretString>,
    pub model: String,
    /// Per model call.
    pub timeout_secs: u64,
    /// Retries after the first try on timeouts, transport errors, 429 and 5xx.
    pub max_retries: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// Longest `Retry-After` honoured; a longer one is treated as "give up now".
    pub max_retry_after_secs: u64,
    /// Cap on model calls in flight across all requests of this process.
    pub max_concurrent: usize,
    pub structured_output: StructuredOutput,
    /// What happens when the model cannot produce a valid answer.
    pub on_failure: OnFailure,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            api_key: None,
            model: String::new(),
            timeout_secs: 30,
            max_retries: 2,
            backoff_base_ms: 250,
            backoff_max_ms: 8_000,
            max_retry_after_secs: 30,
            max_concurrent: 16,
            structured_output: StructuredOutput::Auto,
            on_failure: OnFailure::Fallback,
        }
    }
}

impl LlmConfig {
    pub fn is_configured(&self) -> bool {
        !self.base_url.trim().is_empty()
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

/// How the model is asked for JSON.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StructuredOutput {
    /// `json_schema`, falling back to `json_object` for the process when the endpoint rejects it.
    Auto,
    JsonSchema,
    JsonObject,
    /// No `response_format` at all (servers that reject the field); the schema is still enforced.
    None,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Answer with the offline provider, marked as such.
    Fallback,
    /// Answer 503 so the caller retries later with the same event_id.
    Error,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromptsConfig {
    pub dir: PathBuf,
    /// The `production` version per task; tasks not named use `v1`.
    pub production: BTreeMap<Task, String>,
    /// A candidate version per task that gets a deterministic share of event ids.
    pub canary: BTreeMap<Task, Canary>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    pub version: String,
    /// Fraction of event ids, 0 to 1.
    pub share: f64,
}

impl Default for PromptsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("prompts"),
            production: BTreeMap::new(),
            canary: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedactionConfig {
    /// Directory of policy files (`*.toml`) and the name gazetteer (`names/`).
    pub dir: PathBuf,
    /// Name of the policy applied when a request names none.
    pub policy: String,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("redaction"),
            policy: "default".to_owned(),
        }
    }
}

impl Config {
    /// Defaults, then `file` (if any), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Same as [`Config::load`] with an explicit environment, for tests.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                text.parse::<toml::Table>().map_err(|e| ConfigError::Toml {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?
            }
            None => toml::Table::new(),
        };
        let mut vars: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k.contains("__"))
            .collect();
        vars.sort();
        for (var, value) in vars {
            apply_env(&mut table, &var, &value)?;
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                ConfigError::Invalid {
                    key: e.path().to_string(),
                    message: e.inner().message().to_owned(),
                }
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks cross-field rules; run again after command-line overrides.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            key: key.to_owned(),
            message: message.to_owned(),
        };
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.url",
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        if self
            .database
            .min_connections
            .is_some_and(|m| m > self.database.max_connections)
        {
            return Err(invalid(
                "database.min_connections",
                "must not exceed database.max_connections",
            ));
        }
        if self.server.max_body_bytes < 1024 {
            return Err(invalid("server.max_body_bytes", "must be at least 1024"));
        }
        if !(2..=128).contains(&self.server.max_json_depth) {
            return Err(invalid(
                "server.max_json_depth",
                "must be between 2 and 128",
            ));
        }
        if self.retention.pseudonym_days == 0 {
            return Err(invalid(
                "retention.pseudonym_days",
                "must be at least 1 (reviews need the names back)",
            ));
        }
        if self.limits.requests_per_minute == 0 || self.limits.burst == 0 {
            return Err(invalid(
                "limits.requests_per_minute",
                "and limits.burst must be at least 1",
            ));
        }
        if self.auth.signature_max_skew_secs == 0 {
            return Err(invalid(
                "auth.signature_max_skew_secs",
                "must be at least 1",
            ));
        }
        if self.retention.interval_minutes == 0 {
            return Err(invalid("retention.interval_minutes", "must be at least 1"));
        }
        let odoo = &self.odoo;
        if !odoo.url.is_empty() {
            if !(odoo.url.starts_with("http://") || odoo.url.starts_with("https://")) {
                return Err(invalid("odoo.url", "must start with http:// or https://"));
            }
            if odoo.api_key.is_none() {
                return Err(invalid("odoo.api_key", "is required when odoo.url is set"));
            }
            if odoo.database.is_empty() && odoo.api == OdooApi::Jsonrpc {
                return Err(invalid("odoo.database", "is required for the JSON-RPC API"));
            }
            if odoo.login.is_empty() && odoo.api == OdooApi::Jsonrpc {
                return Err(invalid("odoo.login", "is required for the JSON-RPC API"));
            }
        }
        if let Some(secret) = &self.review.secret
            && secret.expose_secret().trim().chars().count() < 8
        {
            return Err(invalid("review.secret", "must be at least 8 characters"));
        }
        if let Some(key) = &self.review.session_key
            && key.expose_secret().len() < 16
        {
            return Err(invalid("review.session_key", "must be at least 16 bytes"));
        }
        for (task, c) in &self.prompts.canary {
            if !(0.0..=1.0).contains(&c.share) {
                return Err(invalid(
                    &format!("prompts.canary.{task}.share"),
                    "must be between 0 and 1",
                ));
            }
        }
        if self.server.request_timeout_secs == 0 {
            return Err(invalid("server.request_timeout_secs", "must be at least 1"));
        }
        if self.llm.is_configured() {
            if !(self.llm.base_url.starts_with("http://")
                || self.llm.base_url.starts_with("https://"))
            {
                return Err(invalid(
                    "llm.base_url",
                    "must be an http:// or https:// URL",
                ));
            }
            if self.llm.model.trim().is_empty() {
                return Err(invalid("llm.model", "is required when llm.base_url is set"));
            }
        }
        self.webhooks.validate()?;
        if self.limits.max_summaries_in_progress == 0 {
            return Err(invalid(
                "limits.max_summaries_in_progress",
                "must be at least 1",
            ));
        }
        if self.llm.max_concurrent == 0 {
            return Err(invalid("llm.max_concurrent", "must be at least 1"));
        }
        if self.llm.timeout_secs == 0 {
            return Err(invalid("llm.timeout_secs", "must be at least 1"));
        }
        Ok(())
    }
}

impl WebhooksConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: String, message: String| ConfigError::Invalid { key, message };
        for (i, prefix) in self.callback_allow.iter().enumerate() {
            crate::webhook::AllowList::parse_prefix(prefix)
                .map_err(|m| invalid(format!("webhooks.callback_allow[{i}]"), m))?;
        }
        if self.max_attempts == 0 || self.timeout_secs == 0 {
            return Err(invalid(
                "webhooks.max_attempts".to_owned(),
                "and webhooks.timeout_secs must be at least 1".to_owned(),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, sub) in self.subscriptions.iter().enumerate() {
            let key = |k: &str| format!("webhooks.subscriptions[{i}].{k}");
            if sub.name.trim().is_empty() || !names.insert(sub.name.as_str()) {
                return Err(invalid(
                    key("name"),
                    "must be non-empty and unique".to_owned(),
                ));
            }
            crate::webhook::AllowList::parse_prefix(&sub.url)
                .map_err(|m| invalid(key("url"), m))?;
            if sub.events.is_empty() {
                return Err(invalid(
                    key("events"),
                    "must name at least one event".to_owned(),
                ));
            }
            for e in &sub.events {
                if !crate::webhook::EVENTS.contains(&e.as_str()) {
                    return Err(invalid(
                        key("events"),
                        format!(
                            "`{e}` is not an event; use {}",
                            crate::webhook::EVENTS.join(", ")
                        ),
                    ));
                }
            }
            if sub.secret.expose_secret().len() < 16 {
                return Err(invalid(
                    key("secret"),
                    "must be at least 16 characters".to_owned(),
                ));
            }
        }
        Ok(())
    }
}

/// `EXBRIEF_LLM__BASE_URL=…` sets `llm.base_url`. Values are read as TOML scalars when they parse
/// as one (`8`, `true`), as strings otherwise.
fn apply_env(table: &mut toml::Table, var: &str, value: &str) -> Result<(), ConfigError> {
    let path: Vec<String> = var[ENV_PREFIX.len()..]
        .split("__")
        .map(str::to_ascii_lowercase)
        .collect();
    if path.iter().any(String::is_empty) {
        return Err(ConfigError::Env {
            var: var.to_owned(),
            message: "empty key segment".to_owned(),
        });
    }
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let (last, parents) = path.split_last().ok_or_else(|| ConfigError::Env {
        var: var.to_owned(),
        message: "no key".to_owned(),
    })?;
    let mut node = table;
    for key in parents {
        let entry = node
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = entry.as_table_mut().ok_or_else(|| ConfigError::Env {
            var: var.to_owned(),
            message: format!("`{key}` is not a section"),
        })?;
    }
    node.insert(last.clone(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn webhook_settings_are_checked_at_start_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let check = |toml: &str| {
            let path = dir.path().join("c.toml");
            std::fs::write(&path, toml).unwrap();
            Config::load_from(Some(&path), env(&[])).map(|_| ())
        };
        check(
            "[webhooks]\ncallback_allow = [\"http://n8n:5678/webhook-waiting/\"]\n\
             [[webhooks.subscriptions]]\nname = \"a\"\nurl = \"https://h.example/x\"\n\
             events = [\"review.approved\", \"outbox.dead\"]\nsecret = \"0123456789abcdef\"\n",
        )
        .unwrap();
        for (toml, key, says) in [
            (
                "[webhooks]\ncallback_allow = [\"ftp://h/\"]\n",
                "webhooks.callback_allow[0]",
                "http",
            ),
            (
                "[webhooks]\ncallback_allow = [\"http://u:p@h/\"]\n",
                "webhooks.callback_allow[0]",
                "password",
            ),
            (
                "[[webhooks.subscriptions]]\nname = \"a\"\nurl = \"https://h/\"\n\
                 events = [\"review.approve\"]\nsecret = \"0123456789abcdef\"\n",
                "webhooks.subscriptions[0].events",
                "review.approved",
            ),
            (
                "[[webhooks.subscriptions]]\nname = \"a\"\nurl = \"https://h/\"\n\
                 events = [\"outbox.dead\"]\nsecret = \"short\"\n",
                "webhooks.subscriptions[0].secret",
                "16",
            ),
        ] {
            let e = check(toml).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(says), "{toml}: {e}");
        }
    }

    #[test]
    fn the_example_file_is_valid_and_sets_what_the_defaults_set() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("exbrief.example.toml");
        let example = Config::load_from(Some(&path), env(&[])).unwrap();
        let defaults = Config::default();
        assert_eq!(
            example.retention.prompt_log_days,
            defaults.retention.prompt_log_days
        );
        assert_eq!(
            example.retention.pseudonym_days,
            defaults.retention.pseudonym_days
        );
        assert!(example.vault.key.is_none() && example.vault.previous_keys.is_empty());
        let zero = Config::load_from(None, env(&[("EXBRIEF_RETENTION__PSEUDONYM_DAYS", "0")]));
        assert!(
            zero.unwrap_err()
                .to_string()
                .contains("retention.pseudonym_days")
        );
    }

    #[test]
    fn the_pool_stays_open_unless_told_otherwise() {
        let c = Config::load_from(None, env(&[("EXBRIEF_DATABASE__MAX_CONNECTIONS", "12")]));
        assert_eq!(c.unwrap().database.min_connections(), 12);
        let c = Config::load_from(None, env(&[("EXBRIEF_DATABASE__MIN_CONNECTIONS", "2")]));
        assert_eq!(c.unwrap().database.min_connections(), 2);
        let e = Config::load_from(None, env(&[("EXBRIEF_DATABASE__MIN_CONNECTIONS", "9")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("database.min_connections"), "{e}");
    }

    #[test]
    fn no_file_and_no_env_gives_local_defaults() {
        let c = Config::load_from(None, env(&[])).unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database.url, "sqlite://exbrief.db");
        assert!(!c.llm.is_configured());
        assert_eq!(c.server.max_body_bytes, 1_048_576);
    }

    #[test]
    fn env_overrides_file_and_parses_scalars() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exbrief.toml");
        std::fs::write(
            &path,
            "[llm]\nbase_url = \"http://file\"\nmodel = \"m\"\nmax_retries = 5\n",
        )
        .unwrap();
        let c = Config::load_from(
            Some(&path),
            env(&[
                ("EXBRIEF_LLM__BASE_URL", "http://127.0.0.1:9/v1"),
                ("EXBRIEF_LLM__API_KEY", "sk-test"),
                ("EXBRIEF_SERVER__MAX_BODY_BYTES", "2048"),
                ("EXBRIEF_TEST_PG_URL", "postgres://ignored"),
                ("EXBRIEF_PROMPTS__PRODUCTION__CLASSIFICATION", "v1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.llm.base_url, "http://127.0.0.1:9/v1");
        assert_eq!(c.llm.max_retries, 5);
        assert_eq!(c.server.max_body_bytes, 2048);
        assert_eq!(c.llm.api_key.unwrap().expose_secret(), "sk-test");
        assert_eq!(c.prompts.production[&Task::Classification], "v1");
    }

    #[test]
    fn unknown_or_bad_keys_are_named() {
        let e = Config::load_from(None, env(&[("EXBRIEF_LLM__BASEURL", "x")])).unwrap_err();
        assert!(e.to_string().contains("baseurl"), "{e}");
        let e = Config::load_from(None, env(&[("EXBRIEF_SERVER__LISTEN", "nope")])).unwrap_err();
        assert!(e.to_string().contains("server.listen"), "{e}");
        let e = Config::load_from(None, env(&[("EXBRIEF_LLM__BASE_URL", "http://x")])).unwrap_err();
        assert!(e.to_string().contains("llm.model"), "{e}");
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Config::load_from(
            None,
            env(&[
                ("EXBRIEF_LLM__API_KEY", "sk-very-secret"),
                ("EXBRIEF_LLM__BASE_URL", "http://x/v1"),
                ("EXBRIEF_LLM__MODEL", "m"),
            ]),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("sk-very-secret"));
    }
}
