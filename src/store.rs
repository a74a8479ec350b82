//! Storage: SQLite (embedded default) or PostgreSQL (several replicas), same schema, same SQL
//! where the dialects agree. Queries live here and nowhere else.

use std::str::FromStr;
use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::{Value, json};
use sqlx::postgres::{PgPoolOptions, Postgres};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::types::Json;
use sqlx::{PgPool, SqlitePool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit;
use crate::vault::Sealed;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("invalid database URL: {0}")]
    Url(String),
    /// The claim was taken over by another request (this one outlived its lease).
    #[error("the claim on this summary is held by another request")]
    LostClaim,
    /// The group-commit task is gone (only while the process shuts down).
    #[error("the summary writer has stopped")]
    WriterGone,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The database, whichever backend the URL names.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same code against whichever pool (or transaction) is in use.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

/// The chain head's hash, read in the caller's transaction (which holds the chain lock).
/// Runs `$body` (a macro taking the transaction's name) in one transaction on either backend,
/// committing when it returns; evaluates to the body's value.
macro_rules! in_transaction {
    ($self:expr, $body:ident) => {{
        match $self {
            Store::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let out = $body!(tx);
                tx.commit().await?;
                out
            }
            Store::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let out = $body!(tx);
                tx.commit().await?;
                out
            }
        }
    }};
}

macro_rules! chain_head {
    ($tx:ident) => {{
        let head: Option<(String,)> =
            sqlx::query_as("SELECT hash FROM prompt_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *$tx)
                .await?;
        head.map(|(h,)| h)
            .unwrap_or_else(|| audit::GENESIS.to_owned())
    }};
}

/// Queues outbox rows inside a transaction; `summary` is their summary (none for the callback of
/// a summary that failed and was released).
macro_rules! insert_outbox {
    ($tx:ident, $rows:expr, $summary:expr, $now:expr) => {{
        let rows: &[NewOutbox] = $rows;
        let summary: Option<Uuid> = $summary;
        for o in rows {
            sqlx::query(
                "INSERT INTO outbox (id, summary_id, kind, payload, status, attempts, \
                 next_attempt_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5)",
            )
            .bind(o.id)
            .bind(summary)
            .bind(&o.kind)
            .bind(JsonArg(&o.payload))
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        }
    }};
}

/// A claim's insert (a query for either backend): nothing when the idempotency key is taken.
macro_rules! insert_claim {
    ($c:expr) => {{
        let c: &NewClaim = $c;
        sqlx::query(
            "INSERT INTO summaries (id, idempotency_key, event_id, event_type, request_sha256, \
             status, owner, lease_until_ms, key_id, document, policy_version, policy_sha256, created_at, updated_at, callback_url) \
             VALUES ($1, $2, $3, $4, $5, 'processing', $11, $6, $7, NULL, $8, $9, $10, $10, $12) \
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(c.id)
        .bind(&c.idempotency_key)
        .bind(&c.event_id)
        .bind(&c.event_type)
        .bind(&c.request_sha256)
        .bind(c.lease_until_ms)
        .bind(&c.key_id)
        .bind(&c.policy_version)
        .bind(&c.policy_sha256)
        .bind(c.created_at)
        .bind(c.owner)
        .bind(&c.callback_url)
    }};
}

/// Claims inserted in a transaction, one prepared statement for each (a multi-row insert's text
/// would change with the batch's size, and each new text is compiled afresh): whether each was.
macro_rules! insert_claims {
    ($tx:ident, $claims:expr) => {{
        let claims: &[NewClaim] = $claims;
        let mut inserted = Vec::with_capacity(claims.len());
        for c in claims {
            inserted.push(insert_claim!(c).execute(&mut *$tx).await?.rows_affected() == 1);
        }
        inserted
    }};
}

/// Appends rows to the prompt-log chain inside the caller's transaction, which holds the chain
/// lock: one multi-row insert, so the lock is held for one round trip however many calls a
/// summary made. With `head = &mut guess`, `guess` is what the chain's head is believed to be
/// (the last hash this writer committed): the rows are chained onto it and inserted only if it
/// is the head — a check in the insert's own statement, so no round trip reads the head first
/// (issue 9) — and otherwise onto the head read afresh. Either way `guess` ends as the hash of
/// the last row inserted, for the caller to keep once the transaction has committed.
macro_rules! insert_logs {
    ($tx:ident, $logs:expr, $texts:expr) => {{
        let mut no_guess = None;
        insert_logs!($tx, $logs, $texts, head = &mut no_guess);
    }};
    ($tx:ident, $logs:expr, $texts:expr, head = $guess:expr) => {{
        let logs: &[&NewPromptLog] = $logs;
        let texts: &[String] = $texts;
        let guess: &mut Option<String> = $guess;
        if !logs.is_empty() {
            let chain = |mut prev: String| {
                let mut chained = Vec::with_capacity(logs.len());
                for (&l, text) in logs.iter().zip(texts) {
                    let hash = audit::chain_hash_text(&prev, text);
                    chained.push((l, std::mem::replace(&mut prev, hash.clone()), hash));
                }
                (chained, prev)
            };
            // The believed head first, if any; the head as read if that was not it.
            let mut guarded = guess.take();
            loop {
                let prev = match &guarded {
                    Some(head) => head.clone(),
                    None => chain_head!($tx),
                };
                let (chained, last) = chain(prev);
                let mut qb = sqlx::QueryBuilder::new(LOG_INSERT);
                if guarded.is_some() {
                    qb.push("SELECT * FROM (");
                }
                qb.push_values(chained.iter(), |mut b, (l, prev, hash)| {
                    b.push_bind(l.id)
                        .push_bind(l.created_at)
                        .push_bind(&l.request_id)
                        .push_bind(&l.key_id)
                        .push_bind(l.summary_id)
                        .push_bind(&l.event_id)
                        .push_bind(&l.event_type)
                        .push_bind(&l.task)
                        .push_bind(&l.attempt_kind)
                        .push_bind(&l.template_version)
                        .push_bind(&l.template_sha256)
                        .push_bind(&l.policy_version)
                        .push_bind(&l.policy_sha256)
                        .push_bind(&l.provider)
                        .push_bind(&l.model)
                        .push_bind(JsonArg(&*l.parameters))
                        .push_bind(JsonArg(&*l.messages))
                        .push_bind(l.raw_response.as_deref().map(JsonArg))
                        .push_bind(l.parsed_output.as_deref().map(JsonArg))
                        .push_bind(l.prompt_tokens)
                        .push_bind(l.completion_tokens)
                        .push_bind(l.total_tokens)
                        .push_bind(l.latency_ms)
                        .push_bind(&l.outcome)
                        .push_bind(&l.error)
                        .push_bind(JsonArg(&*l.redaction_counts))
                        .push_bind(prev.as_str())
                        .push_bind(hash.as_str());
                });
                if let Some(head) = &guarded {
                    qb.push(
                        ") AS v WHERE (SELECT hash FROM prompt_log ORDER BY seq DESC LIMIT 1) = ",
                    )
                    .push_bind(head.as_str());
                }
                let appended = qb.build().execute(&mut *$tx).await?.rows_affected() > 0;
                if appended || guarded.is_none() {
                    *guess = Some(last);
                    break;
                }
                guarded = None;
            }
        }
    }};
}

/// The start of a multi-row insert of prompt-log rows (see `insert_logs!`).
const LOG_INSERT: &str = "INSERT INTO prompt_log (id, created_at, request_id, key_id, summary_id, \
    event_id, event_type, task, attempt_kind, template_version, template_sha256, policy_version, \
    policy_sha256, provider, model, parameters, messages, raw_response, parsed_output, \
    prompt_tokens, completion_tokens, total_tokens, latency_ms, outcome, error, \
    redaction_counts, prev_hash, hash) ";

/// Appends one access or checkpoint entry after `prev`.
macro_rules! insert_entry {
    ($tx:ident, $prev:expr, $entry:expr) => {{
        let e: &NewAuditEntry = $entry;
        let prev: &str = $prev;
        let hash = audit::chain_hash(prev, &e.canonical());
        sqlx::query(
            "INSERT INTO prompt_log (id, kind, created_at, request_id, key_id, detail, prev_hash, \
             hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(e.id)
        .bind(e.kind)
        .bind(e.created_at)
        .bind(&e.request_id)
        .bind(&e.key_id)
        .bind(JsonArg(&e.detail))
        .bind(prev)
        .bind(&hash)
        .execute(&mut *$tx)
        .await?;
    }};
}

/// One stored summary (or a claim on its idempotency key while it is being made).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SummaryRow {
    pub id: Uuid,
    pub idempotency_key: String,
    pub event_id: String,
    pub request_sha256: String,
    pub status: String,
    pub lease_until_ms: i64,
    pub document: Option<Json<Value>>,
    pub created_at: OffsetDateTime,
    #[sqlx(flatten)]
    pub sealed: SealedColumns,
}

/// The summary's sealed pseudonym map, when one is stored and not yet purged.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct SealedColumns {
    pub vault_key_id: Option<String>,
    pub vault_nonce: Option<Vec<u8>>,
    pub vault_ciphertext: Option<Vec<u8>>,
}

impl SealedColumns {
    pub fn get(&self) -> Option<Sealed> {
        Some(Sealed {
            key_id: self.vault_key_id.clone()?,
            nonce: self.vault_nonce.clone()?,
            ciphertext: self.vault_ciphertext.clone()?,
        })
    }
}

const OUTBOX_COLUMNS: &str = "id, summary_id, kind, payload, status, attempts, next_attempt_at, \
                              last_error, result, created_at, updated_at";

/// One write to Odoo, as the outbox worker sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: Uuid,
    pub summary_id: Option<Uuid>,
    pub kind: String,
    pub payload: Json<Value>,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: OffsetDateTime,
    pub last_error: Option<String>,
    pub result: Option<Json<Value>>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A review decision as it is stored.
#[derive(Debug, Clone)]
pub struct NewDecision {
    pub id: Uuid,
    pub summary_id: Uuid,
    /// `approved` or `rejected`.
    pub decision: String,
    pub reviewer: String,
    pub comment: Option<String>,
    pub draft_reply: Option<Value>,
    pub final_reply: Option<Value>,
    pub edited: bool,
    /// The customer-reply template version the draft came from.
    pub prompt_version: Option<String>,
    /// Characters inserted, deleted or replaced between the draft and the approved reply.
    pub edit_distance: Option<i64>,
}

/// A summary as the review queue lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QueueRow {
    pub id: Uuid,
    pub event_id: String,
    pub event_type: String,
    pub status: String,
    pub severity: Option<String>,
    pub created_at: OffsetDateTime,
    pub document: Option<Json<Value>>,
    #[sqlx(flatten)]
    pub sealed: SealedColumns,
}

/// A stored decision with what the quality figures need.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DecisionRow {
    pub summary_id: Uuid,
    pub decision: String,
    pub reviewer: String,
    pub comment: Option<String>,
    pub final_reply: Option<Json<Value>>,
    pub edited: bool,
    pub decided_at: OffsetDateTime,
    pub prompt_version: Option<String>,
    pub edit_distance: Option<i64>,
    pub event_type: String,
    pub created_at: OffsetDateTime,
}

/// Filters of the review queue.
#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    pub status: Option<String>,
    pub event_type: Option<String>,
    pub severity: Option<String>,
    /// Only summaries after this id (ids are time-ordered UUIDv7).
    pub after: Option<Uuid>,
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    Done,
    /// The summary is no longer pending review: its current status.
    Conflict(String),
    NotFound,
}

/// What a request claims before it calls any model.
#[derive(Debug, Clone)]
pub struct NewClaim {
    pub id: Uuid,
    pub owner: Uuid,
    pub idempotency_key: String,
    pub event_id: String,
    pub event_type: String,
    pub request_sha256: String,
    pub key_id: Option<String>,
    pub policy_version: String,
    pub policy_sha256: String,
    pub lease_until_ms: i64,
    pub created_at: OffsetDateTime,
    /// Asynchronous mode: where the callback goes (kept so an orphaned claim can be reported).
    pub callback_url: Option<String>,
}

/// An asynchronous summary whose maker stopped: its claim, and whom to tell.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Orphan {
    pub id: Uuid,
    pub event_id: String,
    pub key_id: Option<String>,
    pub callback_url: String,
    pub lease_until_ms: i64,
}

/// One prompt-log row before it is chained. Field meanings: DESIGN.md, "Data at rest".
///
/// The JSON columns are held as their canonical text (keys sorted, compact — what serialising
/// a [`Value`] gives), written once when the row is made: a summary's rows wait for the
/// database with no JSON trees behind them, and neither the insert nor the chain hash copies
/// or re-serialises them ([`NewPromptLog::canonical_text`]).
#[derive(Debug, Clone)]
pub struct NewPromptLog {
    pub id: Uuid,
    pub created_at: OffsetDateTime,
    pub request_id: String,
    pub key_id: Option<String>,
    pub summary_id: Uuid,
    pub event_id: String,
    pub event_type: String,
    pub task: String,
    pub attempt_kind: String,
    pub template_version: String,
    pub template_sha256: String,
    pub policy_version: String,
    pub policy_sha256: String,
    pub provider: String,
    pub model: String,
    pub parameters: Box<RawValue>,
    pub messages: Box<RawValue>,
    pub raw_response: Option<Box<RawValue>>,
    pub parsed_output: Option<Box<RawValue>>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub latency_ms: i64,
    pub outcome: String,
    pub error: Option<String>,
    pub redaction_counts: Box<RawValue>,
}

/// The text of a JSON column: `value` serialised. Callers pass values whose objects serialise
/// with sorted keys (a [`Value`], a `BTreeMap`, or a struct written in key order), so the text
/// is canonical.
pub fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> Box<RawValue> {
    // `Box<RawValue>`'s default is `null`; the values passed here always serialise.
    serde_json::value::to_raw_value(value).unwrap_or_default()
}

/// A JSON value as a query argument: PostgreSQL's `json` (its text, as serde writes it), text on
/// SQLite. sqlx's `Json` binds `jsonb`, which the server parses into a tree on every insert,
/// even into a `json` column; exbrief's JSON columns are written once, read back whole and never
/// queried inside (migration `20261129000001_json_not_jsonb.sql`).
#[derive(Debug, Clone, Copy)]
pub struct JsonArg<T>(pub T);

/// PostgreSQL's `json` and `json[]` (pg_type.dat: 114 and 199).
const PG_JSON: sqlx::postgres::types::Oid = sqlx::postgres::types::Oid(114);
const PG_JSON_ARRAY: sqlx::postgres::types::Oid = sqlx::postgres::types::Oid(199);

impl<T> sqlx::Type<Postgres> for JsonArg<T> {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        sqlx::postgres::PgTypeInfo::with_oid(PG_JSON)
    }
}

impl<T> sqlx::postgres::PgHasArrayType for JsonArg<T> {
    fn array_type_info() -> sqlx::postgres::PgTypeInfo {
        sqlx::postgres::PgTypeInfo::with_oid(PG_JSON_ARRAY)
    }
}

impl<T: serde::Serialize> sqlx::Encode<'_, Postgres> for JsonArg<T> {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> std::result::Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        // `json`'s binary form is its text.
        serde_json::to_writer(&mut **buf, &self.0)?;
        Ok(sqlx::encode::IsNull::No)
    }
}

impl<T> sqlx::Type<sqlx::Sqlite> for JsonArg<T> {
    fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
        <str as sqlx::Type<sqlx::Sqlite>>::type_info()
    }
}

impl<'q, T: serde::Serialize> sqlx::Encode<'q, sqlx::Sqlite> for JsonArg<T> {
    fn encode_by_ref(
        &self,
        buf: &mut Vec<sqlx::sqlite::SqliteArgumentValue<'q>>,
    ) -> std::result::Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        sqlx::Encode::<sqlx::Sqlite>::encode(serde_json::to_string(&self.0)?, buf)
    }
}

/// [`NewPromptLog`]'s canonical JSON, borrowed: the same keys as [`ChainRow::canonical`] for a
/// model call, declared in sorted order so that serde writes them as a `Value` would.
#[derive(serde::Serialize)]
struct CanonicalLog<'a> {
    attempt_kind: &'a str,
    completion_tokens: Option<i64>,
    created_at: String,
    error: &'a Option<String>,
    event_id: &'a str,
    event_type: &'a str,
    id: Uuid,
    key_id: &'a Option<String>,
    latency_ms: i64,
    messages: &'a RawValue,
    model: &'a str,
    outcome: &'a str,
    parameters: &'a RawValue,
    parsed_output: Option<&'a RawValue>,
    policy_sha256: &'a str,
    policy_version: &'a str,
    prompt_tokens: Option<i64>,
    provider: &'a str,
    raw_response: Option<&'a RawValue>,
    redaction_counts: &'a RawValue,
    request_id: &'a str,
    summary_id: Uuid,
    task: &'a str,
    template_sha256: &'a str,
    template_version: &'a str,
    total_tokens: Option<i64>,
}

impl NewPromptLog {
    /// The canonical JSON the chain hash covers: every column but `seq`, `prev_hash` and
    /// `hash` — the same text as [`ChainRow::canonical`] gives once the row is stored.
    pub fn canonical_text(&self) -> String {
        serde_json::to_string(&CanonicalLog {
            attempt_kind: &self.attempt_kind,
            completion_tokens: self.completion_tokens,
            created_at: rfc3339(self.created_at),
            error: &self.error,
            event_id: &self.event_id,
            event_type: &self.event_type,
            id: self.id,
            key_id: &self.key_id,
            latency_ms: self.latency_ms,
            messages: &self.messages,
            model: &self.model,
            outcome: &self.outcome,
            parameters: &self.parameters,
            parsed_output: self.parsed_output.as_deref(),
            policy_sha256: &self.policy_sha256,
            policy_version: &self.policy_version,
            prompt_tokens: self.prompt_tokens,
            provider: &self.provider,
            raw_response: self.raw_response.as_deref(),
            redaction_counts: &self.redaction_counts,
            request_id: &self.request_id,
            summary_id: self.summary_id,
            task: &self.task,
            template_sha256: &self.template_sha256,
            template_version: &self.template_version,
            total_tokens: self.total_tokens,
        })
        .unwrap_or_default()
    }
}

/// Each row's canonical text, made before the transaction's first write so that the chain lock
/// is held only for hashing and the insert.
fn canonical_texts(logs: &[&NewPromptLog]) -> Vec<String> {
    logs.iter().map(|l| l.canonical_text()).collect()
}

/// A finished summary as [`Store::complete_many`] stores it: its document (as stored, with
/// pseudonym tokens), sealed map, prompt-log rows, outbox rows and the tokens its key spent.
#[derive(Debug, Clone)]
pub struct Finished {
    pub id: Uuid,
    /// The claim this request holds; another owner means the claim was taken over.
    pub owner: Uuid,
    pub document: Box<RawValue>,
    pub severity: Option<String>,
    pub sealed: Option<NewSealedMap>,
    pub logs: Vec<NewPromptLog>,
    pub outbox: Vec<NewOutbox>,
    pub usage: Option<KeyUsage>,
}

/// Model tokens a key spent on one UTC day (`limits.daily_token_budget`).
#[derive(Debug, Clone)]
pub struct KeyUsage {
    pub key_id: String,
    pub day: String,
    pub tokens: i64,
}

/// A summary's pseudonym map, sealed, and when retention deletes it.
#[derive(Debug, Clone)]
pub struct NewSealedMap {
    pub sealed: Sealed,
    pub expires_at: OffsetDateTime,
}

/// A write to Odoo that the outbox worker (issue #5) delivers.
#[derive(Debug, Clone)]
pub struct NewOutbox {
    pub id: Uuid,
    pub kind: String,
    pub payload: Value,
}

/// One failed delivery try: how many so far, why, and when again (`None`: never, it is dead).
#[derive(Debug, Clone, Copy)]
pub struct FailedTry<'a> {
    pub attempts: i32,
    pub error: &'a str,
    pub next_attempt_at: Option<OffsetDateTime>,
}

/// Outcome of trying to claim an idempotency key.
#[derive(Debug)]
pub enum Claim {
    /// This request owns the key and must produce the summary.
    Owned,
    /// Another request got there first; here is its row as it stands.
    Existing(Box<SummaryRow>),
    /// The row went away between our insert and our read (its owner released it): claim again.
    Vanished,
}

/// Timestamps at microsecond precision, the finest both backends keep, so hashes survive a
/// round trip through the database.
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Summary columns with the sealed map beside them (`s` is `summaries`).
const SUMMARY_COLUMNS: &str = "s.id, s.idempotency_key, s.event_id, s.request_sha256, s.status, \
     s.lease_until_ms, s.document, s.created_at, p.key_id AS vault_key_id, p.nonce AS vault_nonce, \
     p.ciphertext AS vault_ciphertext FROM summaries s \
     LEFT JOIN pseudonym_maps p ON p.summary_id = s.id";

const QUEUE_COLUMNS: &str = "s.id, s.event_id, s.event_type, s.status, s.severity, s.created_at, \
     s.document, p.key_id AS vault_key_id, p.nonce AS vault_nonce, \
     p.ciphertext AS vault_ciphertext FROM summaries s \
     LEFT JOIN pseudonym_maps p ON p.summary_id = s.id";

/// The page size of a SQLite database this process creates (an existing one keeps its own: SQLite
/// ignores the setting once a database in WAL mode has pages). Every commit rewrites whole pages:
/// the last leaf of each table and index it touches (sixteen to store a summary, five more for
/// its claim), most only a few rows fuller than before. At 4,096 bytes that rewriting was half
/// of the 177 KB written per summary at 500/s; at 1,024 a summary writes 99 KB
/// (`bench/stages.sh`, issue 9). Rows larger than a page (prompts, documents) cost the same
/// bytes either way, in more overflow pages; SQLite writes each page with its own calls, so the
/// CPU did not fall with the bytes.
const SQLITE_PAGE_SIZE: u32 = 1024;

impl Store {
    /// Connects (creating a SQLite file when missing) and applies pending migrations.
    /// `min_connections` are kept open when idle (opened in the background after the first).
    pub async fn connect(url: &str, max_connections: u32, min_connections: u32) -> Result<Self> {
        let store = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Url(e.to_string()))?
                .create_if_missing(true)
                .page_size(SQLITE_PAGE_SIZE)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                // Checkpoints run in the background (`checkpoint`), not in whichever write
                // happens to cross the threshold: an automatic checkpoint copies and syncs
                // megabytes inside a summary's commit, and every other writer waits behind it
                // (issue 9: p99 at 300/s was 10 ms with it, 5 ms without).
                .pragma("wal_autocheckpoint", "0");
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .min_connections(min_connections)
                // A SQLite connection is a file handle in this process: there is no link to go
                // stale, and the ping sqlx sends before handing one out is a round trip to the
                // connection's thread on every acquire.
                .test_before_acquire(false)
                .connect_with(options)
                .await?;
            Store::Sqlite(pool)
        } else {
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .min_connections(min_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            Store::Postgres(pool)
        };
        store.migrate().await?;
        Ok(store)
    }

    pub async fn migrate(&self) -> Result<()> {
        match self {
            Store::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
            Store::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// Migrations this binary knows that the database has not applied.
    pub async fn pending_migrations(&self) -> Result<usize> {
        let (known, applied): (usize, Vec<(i64,)>) = match self {
            Store::Sqlite(pool) => (
                sqlx::migrate!("./migrations/sqlite").migrations.len(),
                sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success")
                    .fetch_all(pool)
                    .await?,
            ),
            Store::Postgres(pool) => (
                sqlx::migrate!("./migrations/postgres").migrations.len(),
                sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success")
                    .fetch_all(pool)
                    .await?,
            ),
        };
        Ok(known.saturating_sub(applied.len()))
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// SQLite: copies the write-ahead log into the database without waiting for readers or
    /// blocking writers (`PRAGMA wal_checkpoint(PASSIVE)`); returns (frames in the log, frames
    /// copied). Once all are copied the next writer starts the log afresh. PostgreSQL: (0, 0).
    pub async fn checkpoint(&self) -> Result<(i64, i64)> {
        match self {
            Store::Sqlite(pool) => {
                let (_busy, log, copied): (i64, i64, i64) =
                    sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                        .fetch_one(pool)
                        .await?;
                Ok((log, copied))
            }
            Store::Postgres(_) => Ok((0, 0)),
        }
    }

    /// Runs [`Store::checkpoint`] every `every` until `stop` turns true (SQLite only; nothing
    /// to do on PostgreSQL).
    pub async fn checkpoints(self, every: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
        if matches!(self, Store::Postgres(_)) {
            return;
        }
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            match self.checkpoint().await {
                Ok((log, copied)) if copied < log => {
                    tracing::debug!(log, copied, "checkpoint left frames a reader still uses");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "checkpoint failed; it runs again"),
            }
        }
    }

    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }

    /// Inserts a `processing` row for the key unless one exists; the unique constraint decides.
    pub async fn claim(&self, c: &NewClaim) -> Result<Claim> {
        let inserted =
            on_pool!(self, pool => insert_claim!(c).execute(pool).await?.rows_affected());
        self.claimed(c, inserted == 1).await
    }

    /// What a claim attempt found once its insert is done: `inserted` means the key is ours;
    /// otherwise the row that holds it.
    pub async fn claimed(&self, c: &NewClaim, inserted: bool) -> Result<Claim> {
        if inserted {
            return Ok(Claim::Owned);
        }
        match self.summary_by_key(&c.idempotency_key).await? {
            Some(row) => Ok(Claim::Existing(Box::new(row))),
            None => Ok(Claim::Vanished),
        }
    }

    /// Takes over a claim whose owner's lease ran out (its process died). Exactly one caller wins.
    pub async fn take_over(
        &self,
        id: Uuid,
        old_lease_ms: i64,
        new_lease_ms: i64,
        owner: Uuid,
    ) -> Result<bool> {
        let sql = "UPDATE summaries SET lease_until_ms = $1, owner = $4 \
                   WHERE id = $2 AND status = 'processing' AND lease_until_ms = $3";
        let n = on_pool!(self, pool => sqlx::query(sql)
            .bind(new_lease_ms).bind(id).bind(old_lease_ms).bind(owner)
            .execute(pool).await?.rows_affected());
        Ok(n == 1)
    }

    /// Extends the owner's lease; false when the claim is no longer the owner's.
    pub async fn renew(&self, id: Uuid, owner: Uuid, lease_until_ms: i64) -> Result<bool> {
        let sql = "UPDATE summaries SET lease_until_ms = $1 \
                   WHERE id = $2 AND owner = $3 AND status = 'processing'";
        let n = on_pool!(self, pool => sqlx::query(sql)
            .bind(lease_until_ms).bind(id).bind(owner)
            .execute(pool).await?.rows_affected());
        Ok(n == 1)
    }

    pub async fn summary(&self, id: Uuid) -> Result<Option<SummaryRow>> {
        let sql = format!("SELECT {SUMMARY_COLUMNS} WHERE s.id = $1");
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, SummaryRow>(&sql).bind(id).fetch_optional(pool).await?),
        )
    }

    pub async fn summary_by_key(&self, key: &str) -> Result<Option<SummaryRow>> {
        let sql = format!("SELECT {SUMMARY_COLUMNS} WHERE s.idempotency_key = $1");
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, SummaryRow>(&sql).bind(key).fetch_optional(pool).await?),
        )
    }

    /// Stores one finished summary (see [`Store::complete_many`]); `LostClaim` when another
    /// request had taken its claim over (its prompt-log rows are kept all the same).
    pub async fn complete(&self, f: &Finished) -> Result<()> {
        match self.complete_many(std::slice::from_ref(f)).await?[..] {
            [true] => Ok(()),
            _ => Err(StoreError::LostClaim),
        }
    }

    /// Stores finished summaries in one transaction — one commit, one read of the chain head
    /// and one prompt-log insert however many there are (the group commit of
    /// [`crate::committer`]). Each comes back `true` when stored, `false` when its claim was
    /// taken over by another request: that summary's writes are skipped, its prompt-log rows
    /// (the model calls it made) are appended all the same.
    pub async fn complete_many(&self, batch: &[Finished]) -> Result<Vec<bool>> {
        Ok(self.write_many(&[], batch).await?.1)
    }

    /// The group commit's write: claims inserted (on SQLite; see [`crate::committer`]) and
    /// finished summaries stored in one transaction. Returns, for each claim, whether it was
    /// inserted (the key was free; otherwise [`Store::claimed`] reads who holds it) and, for
    /// each summary, what [`Store::complete_many`] returns.
    pub async fn write_many(
        &self,
        claims: &[NewClaim],
        batch: &[Finished],
    ) -> Result<(Vec<bool>, Vec<bool>)> {
        match self {
            Store::Sqlite(pool) => {
                write_sqlite(&mut *pool.acquire().await?, claims, batch, &mut |_| {}).await
            }
            Store::Postgres(pool) => {
                write_pg(&mut *pool.acquire().await?, claims, batch, &mut None).await
            }
        }
    }

    /// Resolves once [`Store::close`] has begun.
    pub async fn closing(&self) {
        on_pool!(self, pool => closing(pool).await)
    }

    /// [`Store::write_many`] for the group commit's task, which keeps `writer` between
    /// transactions. SQLite: a connection's page cache is dropped whenever another connection
    /// has committed since it last read, and a pooled connection taken afresh for each batch
    /// would read its pages again every time. PostgreSQL: under load every pooled connection
    /// is busy with claims and reads, and the one transaction that stores everyone's summaries
    /// queued for a connection behind them (issue 9). A failed write lets the connection go.
    ///
    /// On SQLite `claimed` is told which claims were inserted as soon as they are, before the
    /// summaries' writes and the commit (see [`crate::committer`] for why that is safe); on
    /// PostgreSQL, and when the writer does not keep a connection, once the transaction is committed.
    pub async fn write_many_on(
        &self,
        writer: &mut Option<Writer>,
        claims: &[NewClaim],
        batch: &[Finished],
        claimed: &mut (dyn FnMut(&[bool]) + Send),
    ) -> Result<(Vec<bool>, Vec<bool>)> {
        // Writer tasks keep a connection each only while the pool has one left for everyone
        // else: SQLite has one writer task, PostgreSQL two (summaries and claims).
        let keepers = match self {
            Store::Sqlite(_) => 1,
            Store::Postgres(_) => 2,
        };
        if on_pool!(self, pool => pool.options().get_max_connections()) <= keepers {
            let written = self.write_many(claims, batch).await?;
            claimed(&written.0);
            return Ok(written);
        }
        let conn = match (writer.take(), self) {
            (Some(conn), _) => conn,
            (None, Store::Sqlite(pool)) => Writer::Sqlite(pool.acquire().await?),
            (None, Store::Postgres(pool)) => Writer::Postgres(pool.acquire().await?, None),
        };
        let conn = writer.insert(conn);
        let written = match conn {
            Writer::Sqlite(conn) => write_sqlite(conn, claims, batch, claimed).await,
            Writer::Postgres(conn, head) => {
                write_pg(conn, claims, batch, head)
                    .await
                    .inspect(|(inserted, _)| {
                        claimed(inserted);
                    })
            }
        };
        if written.is_err() {
            *writer = None;
        }
        written
    }

    /// Records a review decision: the summary leaves `pending_review`, the decision row is
    /// written and the outbox rows queued, in one transaction. Only one decision per summary
    /// can win; the others get the status the summary already has.
    pub async fn decide(&self, d: &NewDecision, outbox: &[NewOutbox]) -> Result<Decided> {
        macro_rules! body {
            ($tx:ident) => {{
                let t = now();
                let moved = sqlx::query(
                    "UPDATE summaries SET status = $1, updated_at = $2 \
                     WHERE id = $3 AND status = 'pending_review'",
                )
                .bind(&d.decision)
                .bind(t)
                .bind(d.summary_id)
                .execute(&mut *$tx)
                .await?
                .rows_affected();
                if moved == 0 {
                    let current: Option<(String,)> =
                        sqlx::query_as("SELECT status FROM summaries WHERE id = $1")
                            .bind(d.summary_id)
                            .fetch_optional(&mut *$tx)
                            .await?;
                    return Ok(match current {
                        Some((status,)) => Decided::Conflict(status),
                        None => Decided::NotFound,
                    });
                }
                sqlx::query(
                    "INSERT INTO review_decisions (id, summary_id, decision, reviewer, comment, \
                     draft_reply, final_reply, edited, decided_at, prompt_version, edit_distance) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(d.id)
                .bind(d.summary_id)
                .bind(&d.decision)
                .bind(&d.reviewer)
                .bind(&d.comment)
                .bind(d.draft_reply.as_ref().map(JsonArg))
                .bind(d.final_reply.as_ref().map(JsonArg))
                .bind(d.edited)
                .bind(t)
                .bind(&d.prompt_version)
                .bind(d.edit_distance)
                .execute(&mut *$tx)
                .await?;
                insert_outbox!($tx, outbox, Some(d.summary_id), t);
            }};
        }
        in_transaction!(self, body);
        Ok(Decided::Done)
    }

    /// Summaries for the review queue, oldest first, never those still being made.
    pub async fn review_queue(&self, f: &QueueFilter) -> Result<Vec<QueueRow>> {
        let sql = format!(
            "SELECT {QUEUE_COLUMNS} WHERE s.status <> 'processing' \
             AND ($1 IS NULL OR s.status = $1) AND ($2 IS NULL OR s.event_type = $2) \
             AND ($3 IS NULL OR s.severity = $3) AND ($4 IS NULL OR s.id > $4) \
             ORDER BY s.id LIMIT $5"
        );
        Ok(on_pool!(self, pool => sqlx::query_as::<_, QueueRow>(&sql)
            .bind(&f.status).bind(&f.event_type).bind(&f.severity).bind(f.after).bind(f.limit)
            .fetch_all(pool).await?))
    }

    /// How many summaries are in each review status, and which event types occur.
    pub async fn review_overview(&self) -> Result<(Vec<(String, i64)>, Vec<String>)> {
        let counts: Vec<(String, i64)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT status, COUNT(*) FROM summaries WHERE status <> 'processing' GROUP BY status")
            .fetch_all(pool).await?);
        let types: Vec<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT DISTINCT event_type FROM summaries WHERE status <> 'processing' ORDER BY event_type")
            .fetch_all(pool).await?);
        Ok((counts, types.into_iter().map(|(t,)| t).collect()))
    }

    /// The review page's view: most severe first, then oldest; `limit` rows at most.
    pub async fn review_queue_by_severity(
        &self,
        status: &str,
        event_type: Option<&str>,
        limit: i64,
    ) -> Result<Vec<QueueRow>> {
        let sql = format!(
            "SELECT {QUEUE_COLUMNS} WHERE s.status = $1 AND ($2 IS NULL OR s.event_type = $2) \
             ORDER BY CASE s.severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 \
             WHEN 'medium' THEN 2 WHEN 'low' THEN 3 ELSE 4 END, s.id LIMIT $3"
        );
        Ok(on_pool!(self, pool => sqlx::query_as::<_, QueueRow>(&sql)
            .bind(status).bind(event_type).bind(limit).fetch_all(pool).await?))
    }

    const DECISION_COLUMNS: &str = "d.summary_id, d.decision, d.reviewer, d.comment, d.final_reply, \
        d.edited, d.decided_at, d.prompt_version, d.edit_distance, s.event_type, s.created_at";

    pub async fn decision(&self, summary_id: Uuid) -> Result<Option<DecisionRow>> {
        let sql = format!(
            "SELECT {} FROM review_decisions d JOIN summaries s ON s.id = d.summary_id \
             WHERE d.summary_id = $1",
            Self::DECISION_COLUMNS
        );
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, DecisionRow>(&sql).bind(summary_id).fetch_optional(pool).await?),
        )
    }

    /// Every decision, for the quality figures.
    pub async fn decisions(&self) -> Result<Vec<DecisionRow>> {
        let sql = format!(
            "SELECT {} FROM review_decisions d JOIN summaries s ON s.id = d.summary_id \
             ORDER BY d.decided_at",
            Self::DECISION_COLUMNS
        );
        Ok(on_pool!(self, pool => sqlx::query_as::<_, DecisionRow>(&sql).fetch_all(pool).await?))
    }

    /// The outbox row of `kind` for a summary, if any.
    pub async fn outbox_row(&self, summary_id: Uuid, kind: &str) -> Result<Option<OutboxRow>> {
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE summary_id = $1 AND kind = $2 \
             ORDER BY created_at LIMIT 1"
        );
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, OutboxRow>(&sql).bind(summary_id).bind(kind).fetch_optional(pool).await?),
        )
    }

    /// Puts a row back without spending a try (it waits for another row).
    pub async fn outbox_defer(
        &self,
        id: Uuid,
        claim: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool> {
        let sql = "UPDATE outbox SET next_attempt_at = $1, updated_at = $2 WHERE id = $3 \
                   AND status = 'pending' AND next_attempt_at = $4";
        let n = on_pool!(self, pool => sqlx::query(sql).bind(until).bind(now()).bind(id)
            .bind(claim).execute(pool).await?.rows_affected());
        Ok(n == 1)
    }

    /// Gives a claim back (the model failed and config says 503) while keeping the prompt-log
    /// rows of the failed tries. One transaction.
    pub async fn abandon(&self, id: Uuid, owner: Uuid, logs: &[NewPromptLog]) -> Result<()> {
        let logs: Vec<&NewPromptLog> = logs.iter().collect();
        let texts = canonical_texts(&logs);
        macro_rules! body {
            ($tx:ident) => {{
                sqlx::query(
                    "DELETE FROM summaries WHERE id = $1 AND owner = $2 AND status = 'processing'",
                )
                .bind(id)
                .bind(owner)
                .execute(&mut *$tx)
                .await?;
                insert_logs!($tx, &logs, &texts);
            }};
        }
        match self {
            Store::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                body!(tx);
                tx.commit().await?;
            }
            Store::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                lock_chain_pg(&mut tx).await?;
                body!(tx);
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Appends prompt-log rows on their own, in one transaction (`examples/seed_audit.rs` fills
    /// a chain with it).
    pub async fn append_logs(&self, logs: &[NewPromptLog]) -> Result<()> {
        if logs.is_empty() {
            return Ok(());
        }
        let logs: Vec<&NewPromptLog> = logs.iter().collect();
        let texts = canonical_texts(&logs);
        match self {
            Store::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                // A write first, so SQLite takes its write lock before the chain head is read.
                sqlx::query("UPDATE summaries SET updated_at = updated_at WHERE 0 = 1")
                    .execute(&mut *tx)
                    .await?;
                insert_logs!(tx, &logs, &texts);
                tx.commit().await?;
            }
            Store::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                lock_chain_pg(&mut tx).await?;
                insert_logs!(tx, &logs, &texts);
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// One page of the audit chain, in chain order.
    pub async fn audit_page(&self, f: &AuditFilter) -> Result<Vec<ChainRow>> {
        let sql = format!(
            "SELECT {CHAIN_COLUMNS} FROM prompt_log WHERE ($1 IS NULL OR kind = $1) \
             AND ($2 IS NULL OR created_at >= $2) AND ($3 IS NULL OR created_at < $3) \
             AND ($4 IS NULL OR event_type = $4) AND ($5 IS NULL OR task = $5) \
             AND ($6 IS NULL OR template_version = $6) AND ($7 IS NULL OR model = $7) \
             AND ($8 IS NULL OR key_id = $8) AND ($9 IS NULL OR outcome = $9) \
             AND ($10 IS NULL OR summary_id = $10) AND seq > $11 ORDER BY seq LIMIT $12"
        );
        Ok(on_pool!(self, pool => sqlx::query_as::<_, ChainRow>(&sql)
            .bind(&f.kind).bind(f.from).bind(f.to).bind(&f.event_type).bind(&f.task)
            .bind(&f.template_version).bind(&f.model).bind(&f.key_id).bind(&f.outcome)
            .bind(f.summary_id).bind(f.after_seq.unwrap_or(0)).bind(f.limit)
            .fetch_all(pool).await?))
    }

    /// One page of chain rows created in `[from, to)` after `after_seq`, for exports.
    pub async fn export_page(
        &self,
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<ExportRow>> {
        let json_cols = [
            "parameters",
            "messages",
            "raw_response",
            "parsed_output",
            "redaction_counts",
            "detail",
        ];
        let cast = |c: &str| -> String {
            match self {
                Store::Postgres(_) if json_cols.contains(&c) => format!("{c}::text AS {c}"),
                _ => c.to_owned(),
            }
        };
        let cols: Vec<String> = CHAIN_COLUMNS.split(',').map(|c| cast(c.trim())).collect();
        let sql = format!(
            "SELECT {} FROM prompt_log WHERE ($1 IS NULL OR created_at >= $1) \
             AND ($2 IS NULL OR created_at < $2) AND seq > $3 ORDER BY seq LIMIT $4",
            cols.join(", ")
        );
        Ok(on_pool!(self, pool => sqlx::query_as::<_, ExportRow>(&sql)
            .bind(from).bind(to).bind(after_seq).bind(limit).fetch_all(pool).await?))
    }

    pub async fn audit_row(&self, id: Uuid) -> Result<Option<ChainRow>> {
        let sql = format!("SELECT {CHAIN_COLUMNS} FROM prompt_log WHERE id = $1");
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, ChainRow>(&sql).bind(id).fetch_optional(pool).await?),
        )
    }

    /// Appends one access or checkpoint entry to the chain.
    pub async fn append_entry(&self, entry: &NewAuditEntry) -> Result<()> {
        match self {
            Store::Sqlite(pool) => {
                // IMMEDIATE takes the write lock before the head is read.
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let prev = chain_head!(tx);
                insert_entry!(tx, &prev, entry);
                tx.commit().await?;
            }
            Store::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                lock_chain_pg(&mut tx).await?;
                let prev = chain_head!(tx);
                insert_entry!(tx, &prev, entry);
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Removes the chain's rows from its start up to (not including) the first row created at
    /// or after `cutoff`, after appending the checkpoint `checkpoint(&purge)` makes for them;
    /// one transaction, under the chain lock. `None` when nothing is old enough.
    pub async fn purge_chain(
        &self,
        cutoff: OffsetDateTime,
        checkpoint: impl FnOnce(&Purge) -> NewAuditEntry,
    ) -> Result<Option<Purge>> {
        macro_rules! body {
            ($tx:ident) => {{
                let first_kept: Option<(i64,)> = sqlx::query_as(
                    "SELECT seq FROM prompt_log WHERE created_at >= $1 ORDER BY seq LIMIT 1",
                )
                .bind(cutoff)
                .fetch_optional(&mut *$tx)
                .await?;
                let last: Option<(i64, String)> = match first_kept {
                    Some((kept,)) => sqlx::query_as(
                        "SELECT seq, hash FROM prompt_log WHERE seq < $1 ORDER BY seq DESC LIMIT 1",
                    )
                    .bind(kept)
                    .fetch_optional(&mut *$tx)
                    .await?,
                    None => {
                        sqlx::query_as("SELECT seq, hash FROM prompt_log ORDER BY seq DESC LIMIT 1")
                            .fetch_optional(&mut *$tx)
                            .await?
                    }
                };
                let Some((through_seq, anchor_hash)) = last else {
                    return Ok(None);
                };
                let (rows,): (i64,) =
                    sqlx::query_as("SELECT COUNT(*) FROM prompt_log WHERE seq <= $1")
                        .bind(through_seq)
                        .fetch_one(&mut *$tx)
                        .await?;
                let purge = Purge {
                    through_seq,
                    rows,
                    anchor_hash,
                };
                // The checkpoint goes on the chain's head before the old rows go, so the head
                // is never a removed row.
                let prev = chain_head!($tx);
                insert_entry!($tx, &prev, &checkpoint(&purge));
                sqlx::query("DELETE FROM prompt_log WHERE seq <= $1")
                    .bind(through_seq)
                    .execute(&mut *$tx)
                    .await?;
                purge
            }};
        }
        let purge = match self {
            Store::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let p = body!(tx);
                tx.commit().await?;
                p
            }
            Store::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                lock_chain_pg(&mut tx).await?;
                let p = body!(tx);
                tx.commit().await?;
                p
            }
        };
        Ok(Some(purge))
    }

    /// Deletes sealed pseudonym maps whose time is up; returns how many.
    pub async fn purge_pseudonyms(&self, now: OffsetDateTime) -> Result<u64> {
        Ok(
            on_pool!(self, pool => sqlx::query("DELETE FROM pseudonym_maps WHERE expires_at <= $1")
            .bind(now).execute(pool).await?.rows_affected()),
        )
    }

    pub async fn insert_key(&self, k: &NewKey) -> Result<()> {
        on_pool!(self, pool => insert_key_q(k).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Inserts `k` only if no key was ever bootstrapped; true when this call did it. The marker
    /// row's primary key decides between replicas starting at once.
    pub async fn bootstrap_key(&self, k: &NewKey) -> Result<bool> {
        macro_rules! body {
            ($pool:ident) => {{
                let mut tx = $pool.begin().await?;
                let (existing,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM api_keys")
                    .fetch_one(&mut *tx)
                    .await?;
                if existing > 0 {
                    return Ok(false);
                }
                let won = sqlx::query(
                    "INSERT INTO bootstrap (what, done_at) VALUES ('admin_key', $1) \
                     ON CONFLICT (what) DO NOTHING",
                )
                .bind(k.created_at)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if won {
                    insert_key_q(k).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                won
            }};
        }
        Ok(match self {
            Store::Sqlite(pool) => body!(pool),
            Store::Postgres(pool) => body!(pool),
        })
    }

    pub async fn key(&self, id: &str) -> Result<Option<KeyRow>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, KeyRow>(&sql).bind(id).fetch_optional(pool).await?),
        )
    }

    pub async fn keys(&self) -> Result<Vec<KeyRow>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id");
        Ok(on_pool!(self, pool => sqlx::query_as::<_, KeyRow>(&sql).fetch_all(pool).await?))
    }

    /// Revokes a key that is not revoked yet; false when there is no such key.
    pub async fn revoke_key(&self, id: &str, at: OffsetDateTime) -> Result<bool> {
        let n = on_pool!(self, pool => sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
            .bind(at).bind(id).execute(pool).await?.rows_affected());
        Ok(n == 1)
    }

    /// Outbox rows per status with their delivery attempts.
    pub async fn outbox_stats(&self) -> Result<Vec<(String, i64, i64)>> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT status, COUNT(*), CAST(COALESCE(SUM(attempts), 0) AS BIGINT) FROM outbox GROUP BY status ORDER BY status")
            .fetch_all(pool).await?))
    }

    /// Records a request signature; false when it was already seen (a replay).
    pub async fn first_use_of_signature(
        &self,
        signature: &str,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let n = on_pool!(self, pool => sqlx::query(
            "INSERT INTO webhook_signatures (signature, seen_at) VALUES ($1, $2) \
             ON CONFLICT (signature) DO NOTHING")
            .bind(signature).bind(at).execute(pool).await?.rows_affected());
        Ok(n == 1)
    }

    pub async fn signature_used(&self, signature: &str) -> Result<bool> {
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT signature FROM webhook_signatures WHERE signature = $1")
            .bind(signature).fetch_optional(pool).await?);
        Ok(row.is_some())
    }

    /// Forgets signatures seen before `before` (they are outside the replay window).
    pub async fn forget_signatures(&self, before: OffsetDateTime) -> Result<u64> {
        Ok(
            on_pool!(self, pool => sqlx::query("DELETE FROM webhook_signatures WHERE seen_at < $1")
            .bind(before).execute(pool).await?.rows_affected()),
        )
    }

    /// A key's model tokens for `day` (`YYYY-MM-DD`, UTC).
    pub async fn usage(&self, key_id: &str, day: &str) -> Result<i64> {
        let row: Option<(i64,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT tokens FROM key_usage WHERE key_id = $1 AND day = $2")
            .bind(key_id).bind(day).fetch_optional(pool).await?);
        Ok(row.map(|(n,)| n).unwrap_or(0))
    }

    /// Prompt-log rows of one summary, oldest first (as JSON, for tests and the audit issue).
    pub async fn prompt_log_for(&self, summary_id: Uuid) -> Result<Vec<Value>> {
        let sql = "SELECT task, attempt_kind, provider, model, outcome, template_version, \
                   template_sha256, policy_version, policy_sha256, messages, prev_hash, hash \
                   FROM prompt_log WHERE summary_id = $1 ORDER BY seq";
        let rows: Vec<LogRow> = on_pool!(self, pool => sqlx::query_as::<_, LogRow>(sql).bind(summary_id).fetch_all(pool).await?);
        Ok(rows.into_iter().map(LogRow::into_json).collect())
    }

    /// Claims up to `limit` due outbox rows: each becomes due again only at `lease_until`, so a
    /// worker that dies mid-delivery leaves its rows to the next one. PostgreSQL skips rows
    /// another replica holds; SQLite has a single writer.
    pub async fn claim_outbox(
        &self,
        kind_prefix: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<OutboxRow>> {
        let kinds = format!("{kind_prefix}%");
        let rows = match self {
            Store::Postgres(pool) => {
                let sql = format!(
                    "UPDATE outbox SET next_attempt_at = $1, updated_at = $2 WHERE id IN \
                     (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $2 \
                     AND kind LIKE $4 ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING {OUTBOX_COLUMNS}"
                );
                sqlx::query_as::<_, OutboxRow>(&sql)
                    .bind(lease_until)
                    .bind(now)
                    .bind(limit)
                    .bind(&kinds)
                    .fetch_all(pool)
                    .await?
            }
            Store::Sqlite(pool) => {
                let sql = format!(
                    "UPDATE outbox SET next_attempt_at = $1, updated_at = $2 WHERE id IN \
                     (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $2 \
                     AND kind LIKE $4 ORDER BY next_attempt_at LIMIT $3) RETURNING {OUTBOX_COLUMNS}"
                );
                sqlx::query_as::<_, OutboxRow>(&sql)
                    .bind(lease_until)
                    .bind(now)
                    .bind(limit)
                    .bind(&kinds)
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(rows)
    }

    /// Records what has been done so far (the ids Odoo returned), keeping the row pending.
    /// `claim` is the lease the worker set when it claimed the row: a worker whose lease
    /// another has since taken over writes nothing (and learns it from `false`).
    pub async fn outbox_progress(
        &self,
        id: Uuid,
        claim: OffsetDateTime,
        result: &Value,
    ) -> Result<bool> {
        let sql = "UPDATE outbox SET result = $1, updated_at = $2 WHERE id = $3 \
                   AND status = 'pending' AND next_attempt_at = $4";
        let n = on_pool!(self, pool => sqlx::query(sql).bind(JsonArg(result)).bind(now()).bind(id)
            .bind(claim).execute(pool).await?.rows_affected());
        Ok(n == 1)
    }

    pub async fn outbox_done(
        &self,
        id: Uuid,
        claim: OffsetDateTime,
        attempts: i32,
        result: &Value,
    ) -> Result<bool> {
        let sql = "UPDATE outbox SET status = 'done', attempts = $1, result = $2, last_error = NULL, \
                   updated_at = $3 WHERE id = $4 AND status = 'pending' AND next_attempt_at = $5";
        let n = on_pool!(self, pool => sqlx::query(sql).bind(attempts).bind(JsonArg(result)).bind(now())
            .bind(id).bind(claim).execute(pool).await?.rows_affected());
        Ok(n == 1)
    }

    /// A failed try: again at `next_attempt_at`, or `dead` when `next_attempt_at` is `None`, in
    /// which case `on_dead` (the `outbox.dead` events) is queued in the same transaction.
    pub async fn outbox_failed(
        &self,
        id: Uuid,
        claim: OffsetDateTime,
        failed: &FailedTry<'_>,
        on_dead: &[NewOutbox],
        summary: Option<Uuid>,
    ) -> Result<bool> {
        let FailedTry {
            attempts,
            error,
            next_attempt_at,
        } = *failed;
        let t = now();
        let (status, next) = match next_attempt_at {
            Some(n) => ("pending", n),
            None => ("dead", t),
        };
        let follow: &[NewOutbox] = if next_attempt_at.is_none() {
            on_dead
        } else {
            &[]
        };
        macro_rules! body {
            ($tx:ident) => {{
                let n = sqlx::query(
                    "UPDATE outbox SET status = $1, attempts = $2, last_error = $3, \
                     next_attempt_at = $4, updated_at = $5 WHERE id = $6 \
                     AND status = 'pending' AND next_attempt_at = $7",
                )
                .bind(status)
                .bind(attempts)
                .bind(error)
                .bind(next)
                .bind(t)
                .bind(id)
                .bind(claim)
                .execute(&mut *$tx)
                .await?
                .rows_affected();
                if n == 1 {
                    insert_outbox!($tx, follow, summary, t);
                }
                n
            }};
        }
        let n = in_transaction!(self, body);
        Ok(n == 1)
    }

    /// Queues outbox rows on their own (the callback of a summary that failed).
    pub async fn enqueue(&self, rows: &[NewOutbox], summary: Option<Uuid>) -> Result<()> {
        let t = now();
        macro_rules! body {
            ($tx:ident) => {{
                insert_outbox!($tx, rows, summary, t);
            }};
        }
        in_transaction!(self, body);
        Ok(())
    }

    /// Asynchronous summaries whose claim expired before `before_ms` (their maker died and no
    /// one resent the request), oldest first.
    pub async fn orphans(&self, before_ms: i64, limit: i64) -> Result<Vec<Orphan>> {
        let sql = "SELECT id, event_id, key_id, callback_url, lease_until_ms FROM summaries \
                   WHERE status = 'processing' AND callback_url IS NOT NULL AND lease_until_ms < $1 \
                   ORDER BY lease_until_ms LIMIT $2";
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, Orphan>(sql).bind(before_ms).bind(limit).fetch_all(pool).await?),
        )
    }

    /// Releases an orphaned claim (unless someone took it over meanwhile) and queues `tell`
    /// (its failure callback) in the same transaction; false when it was taken over.
    pub async fn release_orphan(&self, o: &Orphan, tell: &NewOutbox) -> Result<bool> {
        let t = now();
        macro_rules! body {
            ($tx:ident) => {{
                let n = sqlx::query(
                    "DELETE FROM summaries WHERE id = $1 AND status = 'processing' \
                     AND lease_until_ms = $2",
                )
                .bind(o.id)
                .bind(o.lease_until_ms)
                .execute(&mut *$tx)
                .await?
                .rows_affected();
                if n == 1 {
                    insert_outbox!($tx, std::slice::from_ref(tell), None, t);
                }
                n
            }};
        }
        let n = in_transaction!(self, body);
        Ok(n == 1)
    }

    /// An outbox row by id.
    pub async fn outbox_by_id(&self, id: Uuid) -> Result<Option<OutboxRow>> {
        let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = $1");
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, OutboxRow>(&sql).bind(id).fetch_optional(pool).await?),
        )
    }

    /// Outbox rows, oldest first; only `dead` ones when asked.
    pub async fn outbox_list(&self, dead_only: bool) -> Result<Vec<OutboxRow>> {
        let filter = if dead_only {
            "WHERE status = 'dead'"
        } else {
            ""
        };
        let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox {filter} ORDER BY created_at");
        Ok(on_pool!(self, pool => sqlx::query_as::<_, OutboxRow>(&sql).fetch_all(pool).await?))
    }

    /// Makes one row (or every dead row) due now with a fresh budget; returns how many.
    pub async fn outbox_requeue(&self, id: Option<Uuid>) -> Result<u64> {
        let base = "UPDATE outbox SET status = 'pending', attempts = 0, last_error = NULL, \
                    next_attempt_at = $1, updated_at = $1 WHERE ";
        let t = now();
        let done = match id {
            Some(id) => {
                let sql = format!("{base}id = $2 AND status <> 'done'");
                on_pool!(self, pool => sqlx::query(&sql).bind(t).bind(id).execute(pool).await?.rows_affected())
            }
            None => {
                let sql = format!("{base}status = 'dead'");
                on_pool!(self, pool => sqlx::query(&sql).bind(t).execute(pool).await?.rows_affected())
            }
        };
        Ok(done)
    }

    pub async fn outbox_for(&self, summary_id: Uuid) -> Result<Vec<(String, String, Value)>> {
        let sql =
            "SELECT kind, status, payload FROM outbox WHERE summary_id = $1 ORDER BY created_at";
        let rows: Vec<(String, String, Json<Value>)> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(summary_id).fetch_all(pool).await?);
        Ok(rows.into_iter().map(|(k, s, p)| (k, s, p.0)).collect())
    }
}

#[derive(sqlx::FromRow)]
struct LogRow {
    task: String,
    attempt_kind: String,
    provider: String,
    model: String,
    outcome: String,
    template_version: String,
    template_sha256: String,
    policy_version: String,
    policy_sha256: String,
    messages: Json<Value>,
    prev_hash: String,
    hash: String,
}

impl LogRow {
    fn into_json(self) -> Value {
        json!({"task": self.task, "attempt_kind": self.attempt_kind, "provider": self.provider,
            "model": self.model, "outcome": self.outcome, "template_version": self.template_version,
            "template_sha256": self.template_sha256, "policy_version": self.policy_version,
            "policy_sha256": self.policy_sha256, "messages": self.messages.0,
            "prev_hash": self.prev_hash, "hash": self.hash})
    }
}

/// An audit-chain entry that is not a model call: an access to the log, a retention checkpoint.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub id: Uuid,
    /// `access` or `checkpoint`.
    pub kind: &'static str,
    pub created_at: OffsetDateTime,
    pub request_id: String,
    pub key_id: Option<String>,
    pub detail: Value,
}

impl NewAuditEntry {
    pub fn new(kind: &'static str, request_id: &str, key_id: Option<&str>, detail: Value) -> Self {
        Self {
            id: Uuid::now_v7(),
            kind,
            created_at: now(),
            request_id: request_id.to_owned(),
            key_id: key_id.map(str::to_owned),
            detail,
        }
    }

    /// What the chain hash covers. Model-call rows have no `kind` key (their shape predates the
    /// other kinds), so the two shapes cannot be mistaken for each other.
    pub fn canonical(&self) -> Value {
        json!({"kind": self.kind, "id": self.id, "created_at": rfc3339(self.created_at),
            "request_id": self.request_id, "key_id": self.key_id, "detail": self.detail})
    }
}

const CHAIN_COLUMNS: &str = "seq, id, kind, created_at, request_id, key_id, summary_id, \
    event_id, event_type, task, attempt_kind, template_version, template_sha256, policy_version, \
    policy_sha256, provider, model, parameters, messages, raw_response, parsed_output, \
    prompt_tokens, completion_tokens, total_tokens, latency_ms, outcome, error, redaction_counts, \
    detail, prev_hash, hash";

/// One row of the audit chain as stored; `J` is how its JSON columns are read: parsed
/// ([`ChainRow`], to verify and to answer queries) or as the database's text ([`ExportRow`], to
/// write exports without a parse and a re-serialisation).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChainRowOf<J> {
    pub seq: i64,
    pub id: Uuid,
    pub kind: String,
    pub created_at: OffsetDateTime,
    pub request_id: String,
    pub key_id: Option<String>,
    pub summary_id: Option<Uuid>,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub task: Option<String>,
    pub attempt_kind: Option<String>,
    pub template_version: Option<String>,
    pub template_sha256: Option<String>,
    pub policy_version: Option<String>,
    pub policy_sha256: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub parameters: Option<J>,
    pub messages: Option<J>,
    pub raw_response: Option<J>,
    pub parsed_output: Option<J>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub latency_ms: Option<i64>,
    pub outcome: Option<String>,
    pub error: Option<String>,
    pub redaction_counts: Option<J>,
    pub detail: Option<J>,
    pub prev_hash: String,
    pub hash: String,
}

pub type ChainRow = ChainRowOf<Json<Value>>;
pub type ExportRow = ChainRowOf<String>;

fn json_of(v: &Option<Json<Value>>) -> Value {
    v.as_ref().map(|j| j.0.clone()).unwrap_or(Value::Null)
}

impl ChainRow {
    /// The canonical JSON its hash covers, rebuilt from the stored columns.
    pub fn canonical(&self) -> Value {
        if self.kind == "model_call" {
            json!({
                "id": self.id, "created_at": rfc3339(self.created_at),
                "request_id": self.request_id, "key_id": self.key_id,
                "summary_id": self.summary_id, "event_id": self.event_id,
                "event_type": self.event_type, "task": self.task,
                "attempt_kind": self.attempt_kind, "template_version": self.template_version,
                "template_sha256": self.template_sha256, "policy_version": self.policy_version,
                "policy_sha256": self.policy_sha256, "provider": self.provider,
                "model": self.model, "parameters": json_of(&self.parameters),
                "messages": json_of(&self.messages), "raw_response": json_of(&self.raw_response),
                "parsed_output": json_of(&self.parsed_output),
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.total_tokens, "latency_ms": self.latency_ms,
                "outcome": self.outcome, "error": self.error,
                "redaction_counts": json_of(&self.redaction_counts),
            })
        } else {
            json!({"kind": self.kind, "id": self.id, "created_at": rfc3339(self.created_at),
                "request_id": self.request_id, "key_id": self.key_id,
                "detail": json_of(&self.detail)})
        }
    }

    /// Every column, for the query API and exports.
    pub fn to_json(&self) -> Value {
        let mut v = self.canonical();
        v["seq"] = json!(self.seq);
        v["kind"] = json!(self.kind);
        v["prev_hash"] = json!(self.prev_hash);
        v["hash"] = json!(self.hash);
        v
    }
}

/// Filters of the audit query API; every one optional. Rows come in chain order.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub kind: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    pub event_type: Option<String>,
    pub task: Option<String>,
    pub template_version: Option<String>,
    pub model: Option<String>,
    pub key_id: Option<String>,
    pub outcome: Option<String>,
    pub summary_id: Option<Uuid>,
    /// Only rows after this sequence number (the cursor).
    pub after_seq: Option<i64>,
    pub limit: i64,
}

/// What one retention run removed from the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purge {
    pub through_seq: i64,
    pub rows: i64,
    /// The hash of the last removed row: the first remaining row's `prev_hash`.
    pub anchor_hash: String,
}

/// An API key as it is stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub secret_sha256: String,
    pub scopes: String,
    pub policy: Option<String>,
    pub webhook_key_id: Option<String>,
    pub webhook_nonce: Option<Vec<u8>>,
    pub webhook_ciphertext: Option<Vec<u8>>,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// A key to store.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: String,
    pub name: String,
    pub secret_sha256: String,
    pub scopes: String,
    pub policy: Option<String>,
    pub webhook: Option<Sealed>,
    pub created_at: OffsetDateTime,
}

const KEY_COLUMNS: &str = "id, name, secret_sha256, scopes, policy, webhook_key_id, \
    webhook_nonce, webhook_ciphertext, created_at, revoked_at";

/// [`Store::write_many`] on SQLite, on the given connection.
async fn write_sqlite(
    conn: &mut sqlx::SqliteConnection,
    claims: &[NewClaim],
    batch: &[Finished],
    claimed: &mut (dyn FnMut(&[bool]) + Send),
) -> Result<(Vec<bool>, Vec<bool>)> {
    use sqlx::Connection;
    let now = now();
    let logs: Vec<&NewPromptLog> = batch.iter().flat_map(|f| &f.logs).collect();
    let mut tx = conn.begin().await?;
    let inserted = insert_claims!(tx, claims);
    claimed(&inserted);
    let texts = canonical_texts(&logs);
    let stored = complete_rows_sqlite(&mut tx, batch, now).await?;
    insert_logs!(tx, &logs, &texts);
    tx.commit().await?;
    Ok((inserted, stored))
}

/// [`Store::write_many`] on PostgreSQL, on the given connection. `head` is what the chain's
/// head is believed to be (`insert_logs!`); it is updated once the transaction has committed.
///
/// Few round trips (issue 9): claims alone are one statement without a transaction around it;
/// a batch of summaries is `BEGIN`, its rows with the chain lock taken at their end, the log
/// rows checked against the believed head, `COMMIT`.
async fn write_pg(
    conn: &mut sqlx::PgConnection,
    claims: &[NewClaim],
    batch: &[Finished],
    head: &mut Option<String>,
) -> Result<(Vec<bool>, Vec<bool>)> {
    use sqlx::Connection;
    if batch.is_empty() {
        return Ok((insert_claims_pg(conn, claims).await?, Vec::new()));
    }
    let now = now();
    let logs: Vec<&NewPromptLog> = batch.iter().flat_map(|f| &f.logs).collect();
    let mut tx = conn.begin().await?;
    let inserted = insert_claims!(tx, claims);
    let texts = canonical_texts(&logs);
    let stored = complete_rows_pg(&mut tx, batch, now, !logs.is_empty()).await?;
    let mut next = head.take();
    insert_logs!(tx, &logs, &texts, head = &mut next);
    tx.commit().await?;
    *head = next;
    Ok((inserted, stored))
}

/// A batch of claims as one statement of fixed text (arrays, however many claims) and its own
/// transaction: one round trip. Its commit need not wait for its WAL flush (`set_config(…,
/// true)` is `SET LOCAL`, for this statement's transaction alone): an answer built on a claim (a
/// stored summary) is committed later with a synchronous commit, and PostgreSQL flushes its log
/// in order, so that commit makes the claim durable too; a crash before then loses only claims
/// whose requests never got an answer. The rows are inserted in the batch's order, so of two
/// claims of one key the first wins, as it does in separate statements. Whether each was.
async fn insert_claims_pg(conn: &mut sqlx::PgConnection, claims: &[NewClaim]) -> Result<Vec<bool>> {
    if claims.is_empty() {
        return Ok(Vec::new());
    }
    let texts = |f: fn(&NewClaim) -> &str| column(claims, f);
    let inserted: Vec<(Uuid,)> = sqlx::query_as(
        "WITH unflushed AS (SELECT set_config('synchronous_commit', 'off', true)) \
         INSERT INTO summaries (id, idempotency_key, event_id, event_type, request_sha256, \
           status, owner, lease_until_ms, key_id, document, policy_version, policy_sha256, \
           created_at, updated_at, callback_url) \
         SELECT c.id, c.key, c.event_id, c.event_type, c.sha, 'processing', c.owner, c.lease, \
           c.key_id, NULL, c.policy_version, c.policy_sha256, c.created_at, c.created_at, \
           c.callback_url \
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::uuid[], \
             $7::bigint[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::text[]) \
           WITH ORDINALITY AS c (id, key, event_id, event_type, sha, owner, lease, key_id, \
             policy_version, policy_sha256, created_at, callback_url, n), unflushed \
         ORDER BY c.n \
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
    )
    .bind(column(claims, |c| c.id))
    .bind(texts(|c| &c.idempotency_key))
    .bind(texts(|c| &c.event_id))
    .bind(texts(|c| &c.event_type))
    .bind(texts(|c| &c.request_sha256))
    .bind(column(claims, |c| c.owner))
    .bind(column(claims, |c| c.lease_until_ms))
    .bind(column(claims, |c| c.key_id.as_deref()))
    .bind(texts(|c| &c.policy_version))
    .bind(texts(|c| &c.policy_sha256))
    .bind(column(claims, |c| c.created_at))
    .bind(column(claims, |c| c.callback_url.as_deref()))
    .fetch_all(conn)
    .await?;
    let inserted: std::collections::HashSet<Uuid> = inserted.into_iter().map(|(id,)| id).collect();
    Ok(claims.iter().map(|c| inserted.contains(&c.id)).collect())
}

/// Resolves once `pool` has begun closing. sqlx's close event can miss a close that lands
/// between its check of the pool and its listening: the pool is looked at again every so often.
async fn closing<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) {
    while !pool.is_closed() {
        tokio::select! {
            () = pool.close_event() => return,
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// The connection the group commit keeps between its transactions
/// ([`Store::write_many_on`]).
#[derive(Debug)]
pub enum Writer {
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    /// With the hash this writer last appended to the chain: the head it believes in.
    Postgres(sqlx::pool::PoolConnection<Postgres>, Option<String>),
}

/// A batch's summary rows, sealed maps, outbox rows and token usage on SQLite. Returns, per
/// summary, whether its claim still held; a lost claim's rows are skipped.
///
/// Each summary is one query of several statements, so one hand-over to sqlx's SQLite thread
/// instead of one per row (the update, the map, each outbox row, the usage). The rows go in
/// first, each under the update's own condition (the summary still `processing` under this
/// owner); the update comes last and its `RETURNING` row says whether the claim held. The first
/// of these statements takes SQLite's write lock (a write statement does, whether or not it
/// writes a row), so nothing else writes in between, and the chain head, read after them, cannot
/// be forked by another writer.
async fn complete_rows_sqlite(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    batch: &[Finished],
    now: OffsetDateTime,
) -> Result<Vec<bool>> {
    let tx = &mut **tx;
    let mut stored = Vec::with_capacity(batch.len());
    for f in batch {
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new("");
        let ours = |qb: &mut sqlx::QueryBuilder<'_, sqlx::Sqlite>| {
            qb.push(" WHERE EXISTS (SELECT 1 FROM summaries WHERE id = ")
                .push_bind(f.id)
                .push(" AND owner = ")
                .push_bind(f.owner)
                .push(" AND status = 'processing')");
        };
        if let Some(m) = &f.sealed {
            qb.push(
                "INSERT INTO pseudonym_maps (summary_id, key_id, nonce, ciphertext, created_at, \
                 expires_at) SELECT ",
            );
            let mut values = qb.separated(", ");
            values
                .push_bind(f.id)
                .push_bind(&m.sealed.key_id)
                .push_bind(&m.sealed.nonce)
                .push_bind(&m.sealed.ciphertext)
                .push_bind(now)
                .push_bind(m.expires_at);
            ours(&mut qb);
            qb.push("; ");
        }
        for o in &f.outbox {
            qb.push(
                "INSERT INTO outbox (id, summary_id, kind, payload, status, attempts, \
                 next_attempt_at, created_at, updated_at) SELECT ",
            );
            let mut values = qb.separated(", ");
            values
                .push_bind(o.id)
                .push_bind(f.id)
                .push_bind(&o.kind)
                .push_bind(JsonArg(&o.payload))
                .push_bind("pending")
                .push_bind(0_i64)
                .push_bind(now)
                .push_bind(now)
                .push_bind(now);
            ours(&mut qb);
            qb.push("; ");
        }
        // A key's tokens are counted with the summaries they paid for, once per key and day.
        if let Some(u) = &f.usage {
            qb.push("INSERT INTO key_usage (key_id, day, tokens) SELECT ");
            qb.separated(", ")
                .push_bind(&u.key_id)
                .push_bind(&u.day)
                .push_bind(u.tokens);
            // The select's `WHERE` also keeps SQLite from reading `ON CONFLICT` as a join's.
            ours(&mut qb);
            qb.push(
                " ON CONFLICT (key_id, day) DO UPDATE SET tokens = key_usage.tokens + \
                 excluded.tokens; ",
            );
        }
        qb.push("UPDATE summaries SET status = 'pending_review', document = ")
            .push_bind(JsonArg(&*f.document))
            .push(", updated_at = ")
            .push_bind(now)
            .push(", severity = ")
            .push_bind(f.severity.as_deref())
            .push(" WHERE id = ")
            .push_bind(f.id)
            .push(" AND owner = ")
            .push_bind(f.owner)
            .push(" AND status = 'processing' RETURNING 1");
        let rows = qb.build().fetch_all(&mut *tx).await?;
        stored.push(rows.len() == 1);
    }
    Ok(stored)
}

/// A batch's summary rows, sealed maps, outbox rows and token usage on PostgreSQL, in one
/// statement (data-modifying CTEs over the batch as arrays): the batch's round trips do not
/// grow with its size. Maps, outbox rows and usage are written only for summaries whose claim
/// still held. Returns, per summary, whether it did.
async fn complete_rows_pg(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    batch: &[Finished],
    now: OffsetDateTime,
    lock_chain: bool,
) -> Result<Vec<bool>> {
    let maps: Vec<(Uuid, &NewSealedMap)> = batch
        .iter()
        .filter_map(|f| f.sealed.as_ref().map(|m| (f.id, m)))
        .collect();
    let outbox: Vec<(Uuid, &NewOutbox)> = batch
        .iter()
        .flat_map(|f| f.outbox.iter().map(move |o| (f.id, o)))
        .collect();
    let usage: Vec<(Uuid, &KeyUsage)> = batch
        .iter()
        .filter_map(|f| f.usage.as_ref().map(|u| (f.id, u)))
        .collect();
    // The chain lock is taken at the end of the batch's rows (an `Append` runs its parts in
    // order), so replicas wait on each other only for the chain's own rows and the commit, and
    // without a round trip of its own; the next statement's snapshot is taken once it is held.
    let updated: Vec<(Option<Uuid>,)> = sqlx::query_as(
        "WITH done AS ( \
           UPDATE summaries AS s SET status = 'pending_review', document = v.document, \
             updated_at = $5, severity = v.severity \
           FROM UNNEST($1::uuid[], $2::uuid[], $3::json[], $4::text[]) \
             AS v (id, owner, document, severity) \
           WHERE s.id = v.id AND s.owner = v.owner AND s.status = 'processing' \
           RETURNING s.id), \
         maps AS ( \
           INSERT INTO pseudonym_maps (summary_id, key_id, nonce, ciphertext, created_at, \
             expires_at) \
           SELECT m.summary_id, m.key_id, m.nonce, m.ciphertext, $5, m.expires_at \
           FROM UNNEST($6::uuid[], $7::text[], $8::bytea[], $9::bytea[], $10::timestamptz[]) \
             AS m (summary_id, key_id, nonce, ciphertext, expires_at) \
           WHERE m.summary_id IN (SELECT id FROM done)), \
         queued AS ( \
           INSERT INTO outbox (id, summary_id, kind, payload, status, attempts, \
             next_attempt_at, created_at, updated_at) \
           SELECT o.id, o.summary_id, o.kind, o.payload, 'pending', 0, $5, $5, $5 \
           FROM UNNEST($11::uuid[], $12::uuid[], $13::text[], $14::json[]) \
             AS o (id, summary_id, kind, payload) \
           WHERE o.summary_id IN (SELECT id FROM done)), \
         spent AS ( \
           INSERT INTO key_usage (key_id, day, tokens) \
           SELECT u.key_id, u.day, SUM(u.tokens) \
           FROM UNNEST($15::uuid[], $16::text[], $17::text[], $18::bigint[]) \
             AS u (summary_id, key_id, day, tokens) \
           WHERE u.summary_id IN (SELECT id FROM done) \
           GROUP BY u.key_id, u.day \
           ON CONFLICT (key_id, day) DO UPDATE SET tokens = key_usage.tokens + excluded.tokens) \
         SELECT id FROM done \
         UNION ALL SELECT NULL FROM (SELECT pg_advisory_xact_lock($19)) AS chain WHERE $20",
    )
    .bind(column(batch, |f| f.id))
    .bind(column(batch, |f| f.owner))
    .bind(column(batch, |f| JsonArg(&*f.document)))
    .bind(column(batch, |f| f.severity.as_deref()))
    .bind(now)
    .bind(column(&maps, |(id, _)| *id))
    .bind(column(&maps, |(_, m)| m.sealed.key_id.as_str()))
    .bind(column(&maps, |(_, m)| m.sealed.nonce.as_slice()))
    .bind(column(&maps, |(_, m)| m.sealed.ciphertext.as_slice()))
    .bind(column(&maps, |(_, m)| m.expires_at))
    .bind(column(&outbox, |(_, o)| o.id))
    .bind(column(&outbox, |(id, _)| *id))
    .bind(column(&outbox, |(_, o)| o.kind.as_str()))
    .bind(column(&outbox, |(_, o)| JsonArg(&o.payload)))
    .bind(column(&usage, |(id, _)| *id))
    .bind(column(&usage, |(_, u)| u.key_id.as_str()))
    .bind(column(&usage, |(_, u)| u.day.as_str()))
    .bind(column(&usage, |(_, u)| u.tokens))
    .bind(CHAIN_LOCK)
    .bind(lock_chain)
    .fetch_all(&mut **tx)
    .await?;
    let mut updated: std::collections::HashSet<Uuid> =
        updated.into_iter().filter_map(|(id,)| id).collect();
    // A summary listed twice is stored once, as the row-by-row path would.
    Ok(batch.iter().map(|f| updated.remove(&f.id)).collect())
}

/// One column of a batch, as the array a PostgreSQL `UNNEST` takes.
fn column<'a, T, U>(rows: &'a [T], value: impl Fn(&'a T) -> U) -> Vec<U> {
    rows.iter().map(value).collect()
}

/// The advisory-lock key under which PostgreSQL replicas append to the chain.
pub const CHAIN_LOCK: i64 = 7355608;

/// Replicas on PostgreSQL serialise chain appends with a transaction-scoped advisory lock.
async fn lock_chain_pg(tx: &mut sqlx::Transaction<'_, Postgres>) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CHAIN_LOCK)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn insert_key_q<'q, DB: sqlx::Database>(
    k: &'q NewKey,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<Vec<u8>>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    OffsetDateTime: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(
        "INSERT INTO api_keys (id, name, secret_sha256, scopes, policy, webhook_key_id, \
         webhook_nonce, webhook_ciphertext, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(k.id.clone())
    .bind(k.name.clone())
    .bind(k.secret_sha256.clone())
    .bind(k.scopes.clone())
    .bind(k.policy.clone())
    .bind(k.webhook.as_ref().map(|w| w.key_id.clone()))
    .bind(k.webhook.as_ref().map(|w| w.nonce.clone()))
    .bind(k.webhook.as_ref().map(|w| w.ciphertext.clone()))
    .bind(k.created_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(optional: bool) -> NewPromptLog {
        let some = |s: &str| optional.then(|| s.to_owned());
        NewPromptLog {
            id: Uuid::now_v7(),
            created_at: now(),
            request_id: "req \"1\"".into(),
            key_id: some("key-1"),
            summary_id: Uuid::now_v7(),
            event_id: "ev-ü".into(),
            event_type: "receipt_delay".into(),
            task: "customer_reply".into(),
            attempt_kind: "repair".into(),
            template_version: "v2".into(),
            template_sha256: "ab".repeat(32),
            policy_version: "2026.11".into(),
            policy_sha256: "cd".repeat(32),
            provider: "openai".into(),
            model: "m".into(),
            parameters: json_text(&json!({"model": "m", "temperature": 0.2,
                "response_format": {"type": "json_schema", "json_schema": {"strict": true}}})),
            messages: json_text(&[crate::prompts::ChatMessage {
                role: "user",
                content: "<b>\n\u{2028}".into(),
            }]),
            raw_response: optional.then(|| json_text(&json!({"choices": [], "id": 1}))),
            parsed_output: optional.then(|| json_text(&json!({"b": 1, "a": [null]}))),
            prompt_tokens: optional.then_some(9),
            completion_tokens: None,
            total_tokens: optional.then_some(-1),
            latency_ms: 12,
            outcome: "ok".into(),
            error: some("x\ty"),
            redaction_counts: json_text(&std::collections::BTreeMap::from([("pricing", 2)])),
        }
    }

    /// The borrowed canonical form hashes exactly what a `Value` built from the same row (as
    /// `ChainRow::canonical` does after a round trip) serialises to.
    #[test]
    fn canonical_text_is_the_value_form() {
        for optional in [true, false] {
            let r = row(optional);
            let parse = |raw: &RawValue| serde_json::from_str::<Value>(raw.get()).unwrap();
            let expected = json!({
                "id": r.id, "created_at": rfc3339(r.created_at), "request_id": r.request_id,
                "key_id": r.key_id, "summary_id": r.summary_id, "event_id": r.event_id,
                "event_type": r.event_type, "task": r.task, "attempt_kind": r.attempt_kind,
                "template_version": r.template_version, "template_sha256": r.template_sha256,
                "policy_version": r.policy_version, "policy_sha256": r.policy_sha256,
                "provider": r.provider, "model": r.model, "parameters": parse(&r.parameters),
                "messages": parse(&r.messages),
                "raw_response": r.raw_response.as_deref().map(parse),
                "parsed_output": r.parsed_output.as_deref().map(parse),
                "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
                "total_tokens": r.total_tokens, "latency_ms": r.latency_ms,
                "outcome": r.outcome, "error": r.error,
                "redaction_counts": parse(&r.redaction_counts),
            });
            assert_eq!(r.canonical_text(), expected.to_string());
        }
    }

    #[tokio::test]
    async fn the_pool_opens_min_connections_and_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("p.db").display());
        let store = Store::connect(&url, 4, 3).await.unwrap();
        let Store::Sqlite(pool) = &store else {
            unreachable!()
        };
        // The first connection opens with the pool; the others in the background.
        for _ in 0..200 {
            if pool.size() >= 3 && pool.num_idle() >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!((pool.size(), pool.num_idle()), (3, 3));
        store.close().await;
        let lazy = Store::connect(&url, 4, 0).await.unwrap();
        let Store::Sqlite(pool) = &lazy else {
            unreachable!()
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(pool.size(), 1);
        lazy.close().await;
    }

    /// A new database gets small pages; one made with SQLite's default 4 KB pages (every
    /// database before this setting) keeps them, migrates and stores as before.
    #[tokio::test]
    async fn sqlite_new_databases_get_small_pages_and_old_ones_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        async fn page_size(store: &Store) -> i64 {
            let Store::Sqlite(pool) = store else {
                unreachable!()
            };
            let (size,): (i64,) = sqlx::query_as("PRAGMA page_size")
                .fetch_one(pool)
                .await
                .unwrap();
            size
        }
        let new = Store::connect(
            &format!("sqlite://{}", dir.path().join("new.db").display()),
            2,
            0,
        )
        .await
        .unwrap();
        assert_eq!(page_size(&new).await, i64::from(SQLITE_PAGE_SIZE));
        new.close().await;

        let old_path = dir.path().join("old.db");
        let old_url = format!("sqlite://{}", old_path.display());
        {
            use sqlx::Connection;
            let mut conn = sqlx::SqliteConnection::connect_with(
                &SqliteConnectOptions::from_str(&old_url)
                    .unwrap()
                    .create_if_missing(true)
                    .page_size(4096)
                    .journal_mode(SqliteJournalMode::Wal),
            )
            .await
            .unwrap();
            sqlx::query("CREATE TABLE made_before (x INTEGER)")
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
        let old = Store::connect(&old_url, 2, 0).await.unwrap();
        assert_eq!(page_size(&old).await, 4096);
        assert_eq!(old.pending_migrations().await.unwrap(), 0);
        let Store::Sqlite(pool) = &old else {
            unreachable!()
        };
        sqlx::query("INSERT INTO made_before VALUES (1)")
            .execute(pool)
            .await
            .unwrap();
        old.close().await;
    }

    /// Writes stay in the write-ahead log until `checkpoint` copies them (no automatic
    /// checkpoint inside a writer's commit); then the database file holds them.
    #[tokio::test]
    async fn sqlite_checkpoints_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let store = Store::connect(&format!("sqlite://{}", path.display()), 2, 0)
            .await
            .unwrap();
        let Store::Sqlite(pool) = &store else {
            unreachable!()
        };
        let (auto,): (i64,) = sqlx::query_as("PRAGMA wal_autocheckpoint")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(auto, 0);
        let (log, copied) = store.checkpoint().await.unwrap();
        assert_eq!(log, copied);
        let before = std::fs::metadata(&path).unwrap().len();
        sqlx::query("CREATE TABLE filler (b BLOB)")
            .execute(pool)
            .await
            .unwrap();
        // 1,500 pages' worth, past SQLite's default automatic threshold of 1,000.
        sqlx::query(
            "INSERT INTO filler SELECT randomblob(4000) FROM \
             (WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1500) \
             SELECT i FROM c)",
        )
        .execute(pool)
        .await
        .unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), before);
        let (log, copied) = store.checkpoint().await.unwrap();
        assert!(log >= 1500, "{log} frames");
        assert_eq!(copied, log);
        assert!(std::fs::metadata(&path).unwrap().len() >= before + 1500 * 4000);
        store.close().await;
    }

    /// The migration that drops the chain hash's unique index (20261128…): rows, their order
    /// and the AUTOINCREMENT counter survive (a `seq` freed at the top is not reused), the
    /// three indexes come back, and no index covers `hash` any more.
    #[tokio::test]
    async fn dropping_the_hash_index_keeps_the_chain_and_its_counter() {
        const VERSION: i64 = 20261128000001;
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::from_str(&format!(
            "sqlite://{}",
            dir.path().join("m.db").display()
        ))
        .unwrap()
        .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        let all = sqlx::migrate!("./migrations/sqlite");
        let mut before = sqlx::migrate!("./migrations/sqlite");
        before.migrations = all
            .migrations
            .iter()
            .filter(|m| m.version < VERSION)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        assert!(before.migrations.len() < all.migrations.len());
        before.run(&pool).await.unwrap();
        let insert = |seq: Option<i64>, hash: &'static str| {
            sqlx::query(
                "INSERT INTO prompt_log (seq, id, kind, created_at, request_id, prev_hash, hash) \
                 VALUES ($1, $2, 'access', '2026-11-28T00:00:00Z', 'r', 'p', $3)",
            )
            .bind(seq)
            .bind(Uuid::now_v7())
            .bind(hash)
        };
        for (seq, hash) in [(1, "h1"), (2, "h2"), (3, "h3")] {
            insert(Some(seq), hash).execute(&pool).await.unwrap();
        }
        assert!(insert(None, "h1").execute(&pool).await.is_err());
        sqlx::query("DELETE FROM prompt_log WHERE seq = 3")
            .execute(&pool)
            .await
            .unwrap();
        all.run(&pool).await.unwrap();
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM prompt_log ORDER BY seq")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(rows, [(1, "h1".to_owned()), (2, "h2".to_owned())]);
        let next = insert(None, "h1").execute(&pool).await.unwrap();
        assert_eq!(next.last_insert_rowid(), 4);
        let indexed: Vec<(String, String)> = sqlx::query_as(
            "SELECT il.name, ii.name FROM pragma_index_list('prompt_log') il \
             JOIN pragma_index_info(il.name) ii ORDER BY il.name, ii.seqno",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(
            indexed.iter().all(|(_, column)| column != "hash"),
            "{indexed:?}"
        );
        for index in [
            "prompt_log_created",
            "prompt_log_kind_seq",
            "prompt_log_summary",
        ] {
            assert!(
                indexed.iter().any(|(name, _)| name == index),
                "{index} missing"
            );
        }
        pool.close().await;
    }
}
