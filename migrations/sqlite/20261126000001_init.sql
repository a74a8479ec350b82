-- exbrief schema, SQLite dialect. Keep in step with ../postgres.

CREATE TABLE summaries (
    id               BLOB PRIMARY KEY NOT NULL,
    idempotency_key  TEXT NOT NULL UNIQUE,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    request_sha256   TEXT NOT NULL,
    status           TEXT NOT NULL
        CHECK (status IN ('processing', 'pending_review', 'approved', 'rejected', 'failed')),
    -- While status = 'processing': until when the claiming request owns the key (unix ms).
    -- The claim token of the request producing it; only that request may complete or release it.
    owner            BLOB NOT NULL,
    lease_until_ms   INTEGER NOT NULL,
    key_id           TEXT,
    document         TEXT,
    policy_version   TEXT NOT NULL,
    policy_sha256    TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX summaries_event_id ON summaries (event_id);
CREATE INDEX summaries_status_created ON summaries (status, created_at);

CREATE TABLE prompt_log (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    id                 BLOB NOT NULL UNIQUE,
    created_at         TEXT NOT NULL,
    request_id         TEXT NOT NULL,
    key_id             TEXT,
    summary_id         BLOB NOT NULL,
    event_id           TEXT NOT NULL,
    event_type         TEXT NOT NULL,
    task               TEXT NOT NULL,
    attempt_kind       TEXT NOT NULL,
    template_version   TEXT NOT NULL,
    template_sha256    TEXT NOT NULL,
    policy_version     TEXT NOT NULL,
    policy_sha256      TEXT NOT NULL,
    provider           TEXT NOT NULL,
    model              TEXT NOT NULL,
    parameters         TEXT NOT NULL,
    messages           TEXT NOT NULL,
    raw_response       TEXT,
    parsed_output      TEXT,
    prompt_tokens      INTEGER,
    completion_tokens  INTEGER,
    total_tokens       INTEGER,
    latency_ms         INTEGER NOT NULL,
    outcome            TEXT NOT NULL,
    error              TEXT,
    redaction_counts   TEXT NOT NULL,
    prev_hash          TEXT NOT NULL,
    hash               TEXT NOT NULL UNIQUE
);
CREATE INDEX prompt_log_summary ON prompt_log (summary_id);
CREATE INDEX prompt_log_created ON prompt_log (created_at);

CREATE TABLE outbox (
    id               BLOB PRIMARY KEY NOT NULL,
    summary_id       BLOB NOT NULL REFERENCES summaries (id),
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'done', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT,
    result           TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
