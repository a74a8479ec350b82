-- exbrief schema, PostgreSQL dialect. Keep in step with ../sqlite.

CREATE TABLE summaries (
    id               UUID PRIMARY KEY,
    idempotency_key  TEXT NOT NULL UNIQUE,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    request_sha256   TEXT NOT NULL,
    status           TEXT NOT NULL
        CHECK (status IN ('processing', 'pending_review', 'approved', 'rejected', 'failed')),
    -- While status = 'processing': until when the claiming request owns the key (unix ms).
    -- The claim token of the request producing it; only that request may complete or release it.
    owner            UUID NOT NULL,
    lease_until_ms   BIGINT NOT NULL,
    key_id           TEXT,
    document         JSONB,
    policy_version   TEXT NOT NULL,
    policy_sha256    TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX summaries_event_id ON summaries (event_id);
CREATE INDEX summaries_status_created ON summaries (status, created_at);

CREATE TABLE prompt_log (
    seq                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                 UUID NOT NULL UNIQUE,
    created_at         TIMESTAMPTZ NOT NULL,
    request_id         TEXT NOT NULL,
    key_id             TEXT,
    summary_id         UUID NOT NULL,
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
    parameters         JSONB NOT NULL,
    messages           JSONB NOT NULL,
    raw_response       JSONB,
    parsed_output      JSONB,
    prompt_tokens      BIGINT,
    completion_tokens  BIGINT,
    total_tokens       BIGINT,
    latency_ms         BIGINT NOT NULL,
    outcome            TEXT NOT NULL,
    error              TEXT,
    redaction_counts   JSONB NOT NULL,
    prev_hash          TEXT NOT NULL,
    hash               TEXT NOT NULL UNIQUE
);
CREATE INDEX prompt_log_summary ON prompt_log (summary_id);
CREATE INDEX prompt_log_created ON prompt_log (created_at);

CREATE TABLE outbox (
    id               UUID PRIMARY KEY,
    summary_id       UUID NOT NULL REFERENCES summaries (id),
    kind             TEXT NOT NULL,
    payload          JSONB NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'done', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    last_error       TEXT,
    result           JSONB,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
