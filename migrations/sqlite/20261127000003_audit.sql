-- The prompt log becomes the audit chain: model calls, audit-access records and retention
-- checkpoints share one sequence and one hash chain (issue 7). Model-call columns are NULL on
-- the other kinds; `detail` holds what an access or a checkpoint records. SQLite cannot drop
-- NOT NULL, so the table is rebuilt with its rows, seq and hashes unchanged.
CREATE TABLE prompt_log_v2 (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    id                 BLOB NOT NULL UNIQUE,
    kind               TEXT NOT NULL DEFAULT 'model_call'
        CHECK (kind IN ('model_call', 'access', 'checkpoint')),
    created_at         TEXT NOT NULL,
    request_id         TEXT NOT NULL,
    key_id             TEXT,
    summary_id         BLOB,
    event_id           TEXT,
    event_type         TEXT,
    task               TEXT,
    attempt_kind       TEXT,
    template_version   TEXT,
    template_sha256    TEXT,
    policy_version     TEXT,
    policy_sha256      TEXT,
    provider           TEXT,
    model              TEXT,
    parameters         TEXT,
    messages           TEXT,
    raw_response       TEXT,
    parsed_output      TEXT,
    prompt_tokens      INTEGER,
    completion_tokens  INTEGER,
    total_tokens       INTEGER,
    latency_ms         INTEGER,
    outcome            TEXT,
    error              TEXT,
    redaction_counts   TEXT,
    detail             TEXT,
    prev_hash          TEXT NOT NULL,
    hash               TEXT NOT NULL UNIQUE,
    CHECK (kind <> 'model_call' OR (summary_id IS NOT NULL AND task IS NOT NULL
        AND messages IS NOT NULL AND outcome IS NOT NULL))
);
INSERT INTO prompt_log_v2 (seq, id, kind, created_at, request_id, key_id, summary_id, event_id,
    event_type, task, attempt_kind, template_version, template_sha256, policy_version,
    policy_sha256, provider, model, parameters, messages, raw_response, parsed_output,
    prompt_tokens, completion_tokens, total_tokens, latency_ms, outcome, error, redaction_counts,
    detail, prev_hash, hash)
SELECT seq, id, 'model_call', created_at, request_id, key_id, summary_id, event_id, event_type,
    task, attempt_kind, template_version, template_sha256, policy_version, policy_sha256,
    provider, model, parameters, messages, raw_response, parsed_output, prompt_tokens,
    completion_tokens, total_tokens, latency_ms, outcome, error, redaction_counts, NULL,
    prev_hash, hash
FROM prompt_log;
DROP TABLE prompt_log;
ALTER TABLE prompt_log_v2 RENAME TO prompt_log;
CREATE INDEX prompt_log_summary ON prompt_log (summary_id);
CREATE INDEX prompt_log_created ON prompt_log (created_at);
CREATE INDEX prompt_log_kind_seq ON prompt_log (kind, seq);

-- Pseudonym maps, sealed (AES-256-GCM, the summary id as associated data) and deleted by
-- retention after `expires_at`.
CREATE TABLE pseudonym_maps (
    summary_id  BLOB PRIMARY KEY NOT NULL REFERENCES summaries (id) ON DELETE CASCADE,
    key_id      TEXT NOT NULL,
    nonce       BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
CREATE INDEX pseudonym_maps_expires ON pseudonym_maps (expires_at);
