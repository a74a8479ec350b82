//! Group commit for finished summaries. Every summary ends in the same write — its row, its
//! pseudonym map, its outbox rows and its prompt-log rows on the one hash chain — and the
//! chain puts those writes in a single file: SQLite has one writer, PostgreSQL replicas queue
//! on the chain's lock through each other's commit. One task per process takes whatever
//! summaries finished while the previous transaction ran and stores them together
//! ([`Store::write_many`]): one commit, one chain-head read and one prompt-log insert for
//! the lot. Under light load a batch is a single summary and nothing waits; under load the
//! batches grow instead of the queue.
//!
//! On SQLite the same task also inserts the claims that requests make before they call a
//! model, in the same transaction as the summaries: SQLite has one writer, and a claim of its
//! own commit per request (500 a second at 500 summaries/s) queued the summaries behind it
//! (issue 9). PostgreSQL claims are batched by a second task of the same kind: one statement
//! and one commit (which need not wait for its flush: see `store::insert_claims_pg`) for all
//! the claims that arrived while the previous one ran, instead of one per request, and apart
//! from the summaries so that a claim never waits for the chain's lock. Replicas still insert
//! their claims concurrently; a twin on another replica waits on the key's unique index until
//! this batch commits.
//!
//! A SQLite claim is answered as soon as it is inserted, before the summaries of its batch are
//! written and committed: a request waited for all of that before it could start, and the
//! claim was half of a summary's time in the store. Answering early is safe because this task
//! is the only writer: a later claim of the same key is inserted after this one, in this
//! transaction or a later one, and finds it; a twin that cannot read it yet (not committed)
//! sees [`Claim::Vanished`] and claims again. Nothing a request does before it stores its
//! summary can outrun the commit either — giving a claim back waits for the writer's lock. If
//! the transaction fails, each of its claims is inserted again on its own (an owner that lost
//! its row after all finds out when its summary is refused with `LostClaim`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

use crate::pipeline::TIMING;
use crate::store::{Claim, Finished, NewClaim, Store, StoreError};

type Reply = oneshot::Sender<Result<(), StoreError>>;
type ClaimReply = oneshot::Sender<Result<bool, StoreError>>;

/// What the writer task is asked to write.
#[derive(Debug)]
enum Job {
    /// A claim to insert; the answer is whether it was inserted.
    Claim(Box<NewClaim>, ClaimReply),
    Complete(Box<Finished>, Reply),
}

#[derive(Debug)]
pub struct Committer {
    store: Store,
    queue: OnceLock<mpsc::UnboundedSender<Job>>,
    /// PostgreSQL only: the claims' own writer task.
    claims: OnceLock<mpsc::UnboundedSender<Job>>,
    counts: Arc<Counts>,
}

/// Transactions that stored summaries, and the summaries they stored, since start (also
/// process metrics).
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
    pub fn new(store: Store) -> Self {
        Self {
            store,
            queue: OnceLock::new(),
            claims: OnceLock::new(),
            counts: Arc::default(),
        }
    }

    /// (transactions committed, summaries they stored) by this committer.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.counts.transactions.load(Ordering::Relaxed),
            self.counts.summaries.load(Ordering::Relaxed),
        )
    }

    fn queue(&self) -> &mpsc::UnboundedSender<Job> {
        self.task(&self.queue)
    }

    /// Where claims go: the summaries' writer on SQLite, their own on PostgreSQL.
    fn claims_queue(&self) -> &mpsc::UnboundedSender<Job> {
        match self.store {
            Store::Postgres(_) => self.task(&self.claims),
            Store::Sqlite(_) => self.queue(),
        }
    }

    fn task<'a>(
        &self,
        queue: &'a OnceLock<mpsc::UnboundedSender<Job>>,
    ) -> &'a mpsc::UnboundedSender<Job> {
        // The task starts with the first job, inside the runtime that serves it; it ends when
        // the committer is dropped.
        queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run(self.store.clone(), rx, Arc::clone(&self.counts)));
            tx
        })
    }

    /// Claims an idempotency key (see [`Store::claim`]) in the next transaction of the
    /// writer task that takes claims.
    pub async fn claim(&self, claim: &NewClaim) -> Result<Claim, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.claims_queue()
            .send(Job::Claim(Box::new(claim.clone()), reply))
            .map_err(|_| StoreError::WriterGone)?;
        let mut pending = Unanswered {
            answer: Some(answer),
            store: &self.store,
            claim: (claim.id, claim.owner),
        };
        let answer = match pending.answer.as_mut() {
            Some(answer) => answer.await,
            None => return Err(StoreError::WriterGone),
        };
        pending.answer = None;
        let inserted = answer.map_err(|_| StoreError::WriterGone)??;
        self.store.claimed(claim, inserted).await
    }

    /// Stores a finished summary with whatever others finished meanwhile. `LostClaim` when
    /// another request had taken its claim over (its prompt-log rows are kept).
    pub async fn complete(&self, finished: Finished) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue()
            .send(Job::Complete(Box::new(finished), reply))
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

/// A claim sent to the writer whose answer the request has not received. A request dropped
/// while it waits (its client hung up) would leave behind a `processing` row that nobody works
/// on, which a retry of the same key waits on until its lease runs out: the claim is given back
/// once written.
struct Unanswered<'a> {
    answer: Option<oneshot::Receiver<Result<bool, StoreError>>>,
    store: &'a Store,
    claim: (uuid::Uuid, uuid::Uuid),
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        let (Some(answer), Ok(runtime)) =
            (self.answer.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let store = self.store.clone();
        let (id, owner) = self.claim;
        runtime.spawn(async move {
            if let Ok(Ok(true)) = answer.await
                && let Err(e) = store.abandon(id, owner, &[]).await
            {
                tracing::warn!(error = %e, "could not give back the claim of a request that went away");
            }
        });
    }
}

/// The most jobs one transaction writes.
const MAX_BATCH: usize = 64;

async fn run(store: Store, mut queue: mpsc::UnboundedReceiver<Job>, counts: Arc<Counts>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    // The connection every transaction is written on (see `Store::write_many_on`).
    let mut writer = None;
    // One future for the task's life, not one per batch.
    let closing = store.closing();
    tokio::pin!(closing);
    let mut closed = false;
    loop {
        let received = tokio::select! {
            n = queue.recv_many(&mut jobs, MAX_BATCH) => n,
            // Closing the pool waits for every connection to come back, the writer's too; a
            // closed pool gives out no new one.
            () = &mut closing, if !closed => {
                closed = true;
                writer = None;
                continue;
            }
        };
        if received == 0 {
            break;
        }
        let (mut claims, mut claim_replies) = (Vec::new(), Vec::<Option<ClaimReply>>::new());
        let (mut batch, mut replies) = (Vec::new(), Vec::new());
        for job in jobs.drain(..) {
            match job {
                Job::Claim(c, reply) => {
                    claims.push(*c);
                    claim_replies.push(Some(reply));
                }
                Job::Complete(f, reply) => {
                    batch.push(*f);
                    replies.push(reply);
                }
            }
        }
        // What the claims answered early were told (empty when none was).
        let mut early = Vec::new();
        let mut answer_claims = |inserted: &[bool]| {
            early = inserted.to_vec();
            for (reply, inserted) in claim_replies.iter_mut().zip(inserted) {
                if let Some(reply) = reply.take() {
                    let _ = reply.send(Ok(*inserted));
                }
            }
        };
        let started = std::time::Instant::now();
        let written = store
            .write_many_on(&mut writer, &claims, &batch, &mut answer_claims)
            .await;
        // How long each transaction took (`bench/stages.sh`), claims alone apart: on PostgreSQL
        // they are another task's, without the chain or a flush wait.
        let batch_us = started.elapsed().as_micros() as u64;
        if batch.is_empty() {
            tracing::debug!(target: TIMING, claims_batch_us = batch_us, claims = claims.len(), "claims written");
        } else {
            tracing::debug!(target: TIMING, store_batch_us = batch_us, summaries = batch.len(),
                claims = claims.len(), "summaries stored");
        }
        let answered_early = !early.is_empty();
        match written {
            Ok((_, stored)) => {
                if !stored.is_empty() {
                    counts.committed(stored.iter().filter(|s| **s).count() as u64);
                }
                for (reply, stored) in replies.into_iter().zip(stored) {
                    let _ = reply.send(if stored {
                        Ok(())
                    } else {
                        Err(StoreError::LostClaim)
                    });
                }
            }
            // One job's failure must not fail the others: each is tried on its own. A claim
            // answered "inserted" before the failure is inserted again for the request that now
            // holds it; one answered "taken" is not (its request reads the key's row instead).
            Err(_) if claims.len() + batch.len() > 1 || answered_early => {
                for (i, (c, reply)) in claims.iter().zip(claim_replies).enumerate() {
                    if reply.is_none() && !early[i] {
                        continue;
                    }
                    let result = store.write_many(std::slice::from_ref(c), &[]).await;
                    let inserted = result.map(|(inserted, _)| inserted == [true]);
                    match reply {
                        Some(reply) => {
                            let _ = reply.send(inserted);
                        }
                        None if !matches!(inserted, Ok(true)) => {
                            tracing::warn!(summary_id = %c.id, "a claim answered before its \
                                transaction failed could not be inserted again; its summary will be refused");
                        }
                        None => {}
                    }
                }
                for (f, reply) in batch.iter().zip(replies) {
                    let result = store.complete(f).await;
                    if result.is_ok() {
                        counts.committed(1);
                    }
                    let _ = reply.send(result);
                }
            }
            // A lone job gets its own error.
            Err(e) => {
                if let Some(Some(reply)) = claim_replies.into_iter().next() {
                    let _ = reply.send(Err(e));
                } else if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn claim(key: &str) -> NewClaim {
        NewClaim {
            id: uuid::Uuid::now_v7(),
            owner: uuid::Uuid::new_v4(),
            idempotency_key: key.into(),
            event_id: "e".into(),
            event_type: "receipt_delay".into(),
            request_sha256: "ab".into(),
            key_id: None,
            policy_version: "v".into(),
            policy_sha256: "cd".into(),
            lease_until_ms: 0,
            created_at: crate::store::now(),
            callback_url: None,
        }
    }

    async fn sqlite(dir: &tempfile::TempDir, connections: u32) -> Store {
        let path = dir.path().join("w.db");
        Store::connect(&format!("sqlite://{}", path.display()), connections, 0)
            .await
            .unwrap()
    }

    /// A request that goes away while its claim waits for the writer leaves no row behind: a
    /// retry of the same key owns it at once instead of waiting for a lease to run out.
    #[tokio::test]
    async fn a_claim_whose_request_went_away_is_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite(&dir, 4).await;
        let committer = Committer::new(store.clone());
        let gone = claim("k");
        // Polled exactly once: the job is queued, and on this single-threaded runtime the writer
        // cannot run before the request is dropped. (A zero timeout raced the writer against
        // the timer's next tick and failed CI when the writer won.)
        let mut request = Box::pin(committer.claim(&gone));
        assert!(
            poll_once(&mut request).await.is_pending(),
            "the claim was answered before the drop"
        );
        drop(request);
        // A later claim is answered once the dropped one's transaction is committed.
        assert!(matches!(
            committer.claim(&claim("other")).await,
            Ok(Claim::Owned)
        ));
        let mut waited = 0;
        while store.summary(gone.id).await.unwrap().is_some() && waited < 250 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            waited += 1;
        }
        assert!(store.summary(gone.id).await.unwrap().is_none());
        assert!(matches!(
            committer.claim(&claim("k")).await,
            Ok(Claim::Owned)
        ));
    }

    fn finished(c: &NewClaim, outbox: Vec<crate::store::NewOutbox>) -> Finished {
        Finished {
            id: c.id,
            owner: c.owner,
            document: crate::store::json_text(&serde_json::json!({"n": 1})),
            severity: None,
            sealed: None,
            logs: Vec::new(),
            outbox,
            usage: None,
        }
    }

    /// Polls a future exactly once (on this single-threaded runtime, the writer cannot run in
    /// between): a job is queued without the writer taking it yet.
    async fn poll_once<F: Future>(f: &mut std::pin::Pin<Box<F>>) -> std::task::Poll<F::Output> {
        std::future::poll_fn(|cx| std::task::Poll::Ready(f.as_mut().poll(cx))).await
    }

    /// A SQLite claim is answered once inserted, before its transaction commits: another
    /// connection cannot see the row yet when the request has its answer.
    #[tokio::test]
    async fn a_claim_is_answered_before_its_batch_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite(&dir, 4).await;
        let path = dir.path().join("w.db");
        let early = claim("early");
        let mut seen_by_another_connection = None;
        let mut claimed = |inserted: &[bool]| {
            assert_eq!(inserted, [true]);
            // Another connection, on a thread and runtime of its own: the writer's
            // transaction is open while this callback runs.
            let url = format!("sqlite://{}", path.display());
            seen_by_another_connection = Some(
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        let other = Store::connect(&url, 1, 0).await.unwrap();
                        let n = other.summary_by_key("early").await.unwrap().is_some();
                        other.close().await;
                        n
                    })
                })
                .join()
                .unwrap(),
            );
        };
        let mut writer = None;
        store
            .write_many_on(&mut writer, std::slice::from_ref(&early), &[], &mut claimed)
            .await
            .unwrap();
        assert_eq!(seen_by_another_connection, Some(false));
        assert!(store.summary_by_key("early").await.unwrap().is_some());
    }

    /// A batch whose transaction fails after its claims were answered inserts those claims
    /// again, on their own: the request already working under one still has its row, and the
    /// summary that failed gets its own error.
    #[tokio::test]
    async fn a_failed_batch_inserts_its_answered_claims_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite(&dir, 4).await;
        let committer = Committer::new(store.clone());
        let owned = claim("owned");
        assert!(matches!(committer.claim(&owned).await, Ok(Claim::Owned)));
        // Two outbox rows with one id: the summary's writes fail, and the transaction with them.
        let row = crate::store::NewOutbox {
            id: uuid::Uuid::now_v7(),
            kind: "summary.created".into(),
            payload: serde_json::json!({}),
        };
        let failing = finished(&owned, vec![row.clone(), row]);
        let fresh = claim("fresh");
        let mut completion = Box::pin(committer.complete(failing));
        let mut claiming = Box::pin(committer.claim(&fresh));
        assert!(poll_once(&mut completion).await.is_pending());
        assert!(poll_once(&mut claiming).await.is_pending());
        assert!(matches!(claiming.await, Ok(Claim::Owned)));
        let refused = completion.await;
        assert!(
            matches!(refused, Err(StoreError::Database(_))),
            "the failing summary gets its own error: {refused:?}"
        );
        let row = store.summary_by_key("fresh").await.unwrap();
        assert_eq!(
            row.map(|r| (r.id, r.status)),
            Some((fresh.id, "processing".to_owned()))
        );
        // The request that owns the fresh claim stores its summary under it.
        committer
            .complete(finished(&fresh, Vec::new()))
            .await
            .unwrap();
        assert_eq!(
            store.summary(fresh.id).await.unwrap().unwrap().status,
            "pending_review"
        );
    }

    /// With a pool of one connection the writer does not keep it: the request's own reads
    /// (here the row a taken key is held by) get it between transactions.
    #[tokio::test]
    async fn a_pool_of_one_is_not_kept_by_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite(&dir, 1).await;
        let committer = Committer::new(store.clone());
        assert!(matches!(
            committer.claim(&claim("k")).await,
            Ok(Claim::Owned)
        ));
        let again = tokio::time::timeout(Duration::from_secs(5), committer.claim(&claim("k")))
            .await
            .expect("the read of the existing row got a connection");
        assert!(matches!(again, Ok(Claim::Existing(_))));
    }

    /// The writer keeps its SQLite connection between transactions and lets it go when the
    /// pool closes: without the release, closing the pool waits for the writer's connection
    /// for as long as the committer lives. (Whether the `-wal` file is gone afterwards is not
    /// asked: SQLite removes it from the connection that finds itself the last to close, the
    /// pool's connections close at once on sqlx's threads after `close` returns and can each
    /// see another still open, and the file stayed twice in `.ci/run` under load, once after
    /// a 20 s wait; an idle connection elsewhere does not keep it either, so it says nothing
    /// about the writer.)
    #[tokio::test]
    async fn the_writer_lets_its_connection_go_when_the_store_closes() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite(&dir, 4).await;
        let committer = Committer::new(store.clone());
        let claim = claim("k");
        assert!(matches!(committer.claim(&claim).await, Ok(Claim::Owned)));
        assert!(matches!(
            committer.claim(&claim).await,
            Ok(Claim::Existing(_))
        ));
        let wal = dir.path().join("w.db-wal");
        assert!(wal.exists());
        // Closing the pool waits for every connection, the writer's too.
        tokio::time::timeout(Duration::from_secs(10), store.close())
            .await
            .expect("the pool closes while the committer lives");
        // The committer is still alive; a job after the close fails instead of hanging.
        assert!(committer.claim(&claim).await.is_err());
    }
}
