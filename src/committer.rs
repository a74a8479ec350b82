//! Group commit for finished summaries. Every summary ends in the same write — its row, its
//! pseudonym map, its outbox rows and its prompt-log rows on the one hash chain — and the
//! chain puts those writes in a single file: SQLite has one writer, PostgreSQL replicas queue
//! on the chain's lock through each other's commit. One task per process takes whatever
//! summaries finished while the previous transaction ran and stores them together
//! ([`Store::complete_many`]): one commit, one chain-head read and one prompt-log insert for
//! the lot. Under light load a batch is a single summary and nothing waits; under load the
//! batches grow instead of the queue.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::store::{Finished, Store, StoreError};

/// The most summaries one transaction stores.
const MAX_BATCH: usize = 64;

type Reply = oneshot::Sender<Result<(), StoreError>>;

#[derive(Debug)]
pub struct Committer {
    store: Store,
    queue: OnceLock<mpsc::UnboundedSender<(Finished, Reply)>>,
    counts: Arc<Counts>,
    gate: WriteGate,
}

/// SQLite's one writer, taken in this process before SQLite's own lock. A writer that finds
/// SQLite's lock held sleeps in SQLite's busy handler — 1, 2, 5, 10, 15, 20, 25 ms and on —
/// and at 500 summaries/s a claim waiting behind a batch slept into the tens of milliseconds
/// (issue 9: claim p99 18.5 ms, max 129 ms). Waiting here ends when the holder is done.
/// PostgreSQL writers do not share one lock: no gate.
#[derive(Debug, Clone, Default)]
pub struct WriteGate(Option<Arc<Mutex<()>>>);

impl WriteGate {
    pub fn for_store(store: &Store) -> Self {
        Self(matches!(store, Store::Sqlite(_)).then(Arc::default))
    }

    pub async fn enter(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.0 {
            Some(m) => Some(m.lock().await),
            None => None,
        }
    }
}

/// Transactions committed and summaries they stored, since start (also process metrics).
#[derive(Debug, Default)]
struct Counts {
    transactions: AtomicU64,
    summaries: AtomicU64,
}

impl Counts {
    fn committed(&self, summaries: u64) {
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.summaries.fetch_add(summaries, Ordering::Relaxed);
        crate::metrics::count("exbrief_store_commits_total", &[], 1.0);
        crate::metrics::count("exbrief_summaries_stored_total", &[], summaries as f64);
    }
}

impl Committer {
    /// `gate`: the one the process's other hot writes (claims) take too.
    pub fn new(store: Store, gate: WriteGate) -> Self {
        Self {
            store,
            queue: OnceLock::new(),
            counts: Arc::default(),
            gate,
        }
    }

    /// (transactions committed, summaries they stored) by this committer.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.counts.transactions.load(Ordering::Relaxed),
            self.counts.summaries.load(Ordering::Relaxed),
        )
    }

    /// Stores a finished summary with whatever others finished meanwhile. `LostClaim` when
    /// another request had taken its claim over (its prompt-log rows are kept).
    pub async fn complete(&self, finished: Finished) -> Result<(), StoreError> {
        // The task starts with the first summary, inside the runtime that serves it; it ends
        // when the committer is dropped.
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run(
                self.store.clone(),
                rx,
                Arc::clone(&self.counts),
                self.gate.clone(),
            ));
            tx
        });
        let (reply, answer) = oneshot::channel();
        queue
            .send((finished, reply))
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

async fn run(
    store: Store,
    mut queue: mpsc::UnboundedReceiver<(Finished, Reply)>,
    counts: Arc<Counts>,
    gate: WriteGate,
) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let (batch, replies): (Vec<Finished>, Vec<Reply>) = jobs.drain(..).unzip();
        let _writing = gate.enter().await;
        match store.complete_many(&batch).await {
            Ok(stored) => {
                counts.committed(stored.iter().filter(|s| **s).count() as u64);
                for (reply, stored) in replies.into_iter().zip(stored) {
                    let _ = reply.send(if stored {
                        Ok(())
                    } else {
                        Err(StoreError::LostClaim)
                    });
                }
            }
            // One summary's failure must not fail the others: each is tried on its own.
            Err(_) if batch.len() > 1 => {
                for (f, reply) in batch.iter().zip(replies) {
                    let result = store.complete(f).await;
                    if result.is_ok() {
                        counts.committed(1);
                    }
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(e));
                }
            }
        }
    }
}
