//! Wiring: config → store, redactor, prompt registry, model providers → pipeline → HTTP server.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::http::{self, AppState};
use crate::llm::Llm;
use crate::odoo;
use crate::outbox::webhook::WebhookDelivery;
use crate::outbox::{OdooDelivery, Worker};
use crate::pipeline::Pipeline;
use crate::prompts::{PromptError, Registry};
use crate::redact::{Policies, PolicyError};
use crate::store::{Store, StoreError};
use crate::vault::Vault;
use crate::webhook::Webhooks;

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
    #[error("odoo: {0}")]
    Odoo(String),
    #[error("webhooks: {0}")]
    Webhooks(String),
    #[error("vault: {0}")]
    Vault(#[from] crate::vault::VaultError),
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
        llm: Llm::from_config(&config.llm)
            .map_err(StartError::Llm)?
            .with_token_limit(config.limits.model_tokens_per_minute),
    })
}

pub async fn pipeline(config: &Config) -> Result<Arc<Pipeline>, StartError> {
    let parts = parts(config)?;
    let vault = Arc::new(Vault::from_config(&config.vault, &config.database.url)?);
    let store = Store::connect(
        &config.database.url,
        config.database.max_connections,
        config.database.min_connections(),
    )
    .await?;
    Ok(Arc::new(
        Pipeline::new(
            store,
            parts.policies,
            parts.prompts,
            parts.llm,
            Duration::from_secs(config.server.request_timeout_secs),
        )
        .with_default_write_back(config.odoo.write_back_models.clone())
        .with_vault(vault, config.retention.pseudonym_days)
        .with_webhooks(Arc::new(Webhooks::from_config(&config.webhooks)))
        .with_max_in_progress(config.limits.max_summaries_in_progress),
    ))
}

/// The Odoo outbox worker, when `odoo.url` is set.
pub fn outbox_worker(
    config: &Config,
    pipeline: &Pipeline,
) -> Result<Option<Worker<OdooDelivery>>, StartError> {
    if config.odoo.url.is_empty() {
        return Ok(None);
    }
    let client = odoo::Client::new(&config.odoo).map_err(|e| StartError::Odoo(e.to_string()))?;
    let store = pipeline.store().clone();
    Ok(Some(Worker::new(
        store.clone(),
        OdooDelivery::new(
            store,
            Arc::new(client),
            &config.odoo,
            Arc::clone(pipeline.vault()),
        ),
        crate::outbox::odoo::settings(&config.odoo),
        Arc::clone(pipeline.webhooks()),
    )))
}

/// The webhook worker: callbacks and subscription events.
pub fn webhook_worker(
    config: &Config,
    pipeline: &Pipeline,
) -> Result<Worker<WebhookDelivery>, StartError> {
    let store = pipeline.store().clone();
    let delivery = WebhookDelivery::new(
        store.clone(),
        Arc::clone(pipeline.vault()),
        Arc::clone(pipeline.webhooks()),
        &config.webhooks,
        Duration::from_secs(config.server.request_timeout_secs),
    )
    .map_err(|e| StartError::Webhooks(e.to_string()))?;
    Ok(Worker::new(
        store,
        delivery,
        crate::outbox::webhook::settings(&config.webhooks),
        Arc::clone(pipeline.webhooks()),
    ))
}

/// How often SQLite's write-ahead log is copied into the database (`Store::checkpoints`).
/// A checkpoint ends in an fsync of the database file, and writes to the log wait while the
/// filesystem commits it: the more a checkpoint copies, the longer every writer waits. At
/// 500 summaries/s (about 70 MB of log a second) request p99 was 51 ms checkpointing every
/// second, 17 ms every 250 ms, 13 ms every 100 ms, and worse again at 50 ms (19 ms) and 25 ms
/// (41 ms), where the fixed cost of each fsync dominates (`bench/stages.sh`, issue 9).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Connections the kernel keeps queued for exbrief before it accepts them. Tokio's default
/// (1,024) is smaller than the bursts a workflow can send: a connection beyond the queue has its
/// SYN dropped and waits a second for the retransmission. The kernel caps the figure at
/// `net.core.somaxconn` (4,096 by default since Linux 5.4).
pub const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with [`LISTEN_BACKLOG`].
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted server can take its port back at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
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
        pages: config
            .review
            .secret
            .is_some()
            .then(|| Arc::new(http::pages::Pages::new(&config.review))),
        limits: config.limits.clone(),
        max_concurrent_model_calls: config.llm.max_concurrent,
        // The pipeline answers `still-processing` at the request timeout itself; this is the
        // backstop for everything else.
        request_timeout: Duration::from_secs(config.server.request_timeout_secs + 5),
        openapi: Arc::default(),
        auth: Arc::new(http::auth::Auth::new(
            &config.auth,
            &config.limits,
            config.server.max_body_bytes,
        )),
    };
    if config.auth.disabled {
        tracing::warn!(
            "auth.disabled = true: every caller may do everything; for local demos only"
        );
    }
    let router = http::router(state, config.server.max_body_bytes);
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let mut stop_webhooks = stop_rx.clone();
    let worker = outbox_worker(config, &pipeline)?.map(|w| {
        tokio::spawn(w.run(async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        }))
    });
    // Without callbacks or subscriptions no webhook row can be made or delivered: no worker.
    let webhooks = pipeline
        .webhooks()
        .enabled()
        .then(|| webhook_worker(config, &pipeline))
        .transpose()?
        .map(|w| {
            tokio::spawn(w.run(async move {
                let _ = stop_webhooks.wait_for(|stop| *stop).await;
            }))
        });
    let retention = tokio::spawn(retention_job(
        pipeline.store().clone(),
        Arc::clone(pipeline.vault()),
        config.retention.clone(),
        Duration::from_secs(2 * config.auth.signature_max_skew_secs),
        stop_tx.subscribe(),
    ));
    let checkpoints = tokio::spawn(
        pipeline
            .store()
            .clone()
            .checkpoints(CHECKPOINT_EVERY, stop_tx.subscribe()),
    );
    // `into_make_service`: each connection gets a clone of the router (an `Arc`); serving the
    // `Router` itself re-applies its state per connection, rebuilding every route (issue 9's
    // heap profile: ~9 KB per open connection).
    axum::serve(listener, router.into_make_service())
        .with_graceful_shutdown(shutdown)
        .await?;
    let _ = stop_tx.send(true);
    if let Some(w) = worker {
        let _ = w.await;
    }
    if let Some(w) = webhooks {
        let _ = w.await;
    }
    let _ = retention.await;
    let _ = checkpoints.await;
    // Summaries whose callers hung up still finish before the pool closes.
    pipeline
        .drain(Duration::from_secs(config.server.request_timeout_secs))
        .await;
    pipeline.store().close().await;
    Ok(())
}

/// Applies retention (and clears spent request signatures) at start and every
/// `interval_minutes` until `stop`. Replicas may all run
/// it: purges serialise on the chain lock, and a second one finds nothing left to purge.
async fn retention_job(
    store: Store,
    vault: Arc<Vault>,
    config: crate::config::RetentionConfig,
    signature_window: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(Duration::from_secs(config.interval_minutes * 60));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let now = crate::store::now();
        // Spent signatures older than the skew window can never be replayed (their timestamps
        // are refused); they are cleared here rather than on every signed request.
        let window = time::Duration::try_from(signature_window).unwrap_or(time::Duration::HOUR);
        if let Err(e) = store.forget_signatures(now - window).await {
            tracing::warn!(error = %e, "could not clear spent signatures");
        }
        match crate::audit::retention(&store, &vault, config.prompt_log_days, now).await {
            Ok(run) => tracing::info!(
                pseudonym_maps = run.pseudonym_maps_deleted,
                prompt_log_rows = run.prompt_log_rows_deleted,
                "retention applied"
            ),
            Err(e) => tracing::warn!(error = %e, "retention failed; it runs again next interval"),
        }
    }
}
