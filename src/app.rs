//! Wiring: config → store, redactor, prompt registry, model providers → pipeline → HTTP server.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::http::{self, AppState};
use crate::llm::Llm;
use crate::pipeline::Pipeline;
use crate::prompts::{PromptError, Registry};
use crate::redact::{Policies, PolicyError};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("prompts: {0}")]
    Prompts(#[from] PromptError),
    #[error("llm: {0}")]
    Llm(String),
    #[error("redaction: {0}")]
    Policy(#[from] PolicyError),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Everything but the database: what `serve --check` validates.
pub struct Parts {
    pub policies: Policies,
    pub prompts: Registry,
    pub llm: Llm,
}

pub fn parts(config: &Config) -> Result<Parts, StartError> {
    Ok(Parts {
        policies: Policies::load(&config.redaction.dir, &config.redaction.policy)?,
        prompts: Registry::load(&config.prompts.dir, &config.prompts)?,
        llm: Llm::from_config(&config.llm).map_err(StartError::Llm)?,
    })
}

pub async fn pipeline(config: &Config) -> Result<Arc<Pipeline>, StartError> {
    let parts = parts(config)?;
    let store = Store::connect(&config.database.url, config.database.max_connections).await?;
    Ok(Arc::new(Pipeline::new(
        store,
        parts.policies,
        parts.prompts,
        parts.llm,
        Duration::from_secs(config.server.request_timeout_secs),
    )))
}

/// Serves until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    config: &Config,
    pipeline: Arc<Pipeline>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let state = AppState {
        pipeline: Arc::clone(&pipeline),
        max_json_depth: config.server.max_json_depth,
    };
    let router = http::router(state, config.server.max_body_bytes);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    // Summaries whose callers hung up still finish before the pool closes.
    pipeline
        .drain(Duration::from_secs(config.server.request_timeout_secs))
        .await;
    pipeline.store().close().await;
    Ok(())
}
