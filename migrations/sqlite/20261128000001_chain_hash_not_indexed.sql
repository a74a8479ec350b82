-- The chain's `hash` column loses its unique index (issue 9). Nothing looks a row up by its
-- hash, and the index could never refuse a row: a hash covers the previous row's hash, so two
-- equal hashes need a fork with identical content, which SQLite's single writer already rules
-- out and `audit verify` would report. Its keys are random, so every prompt-log row dirtied a
-- page of its own, written to the log and again by the checkpoint: 40 KB of the 240 KB written
-- per summary at 300 summaries/s. SQLite cannot drop a constraint's index, so the table is
-- rebuilt; the AUTOINCREMENT counter is carried over so that no `seq` is ever reused.
CREATE TABLE prompt_log_v3 (
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
    hash               TEXT NOT NULL,
    CHECK (kind <> 'model_call' OR (summary_id IS NOT NULL AND task IS NOT NULL
        AND messages IS NOT NULL AND outcome IS NOT NULL))
);
INSERT INTO prompt_log_v3 SELECT seq, id, kind, created_at, request_id, key_id, summary_id,
    event_id, event_type, task, attempt_kind, template_version, template_sha256, policy_version,
    policy_sha256, provider, model, parameters, messages, raw_response, parsed_output,
    prompt_tokens, completion_tokens, total_tokens, latency_ms, outcome, error, redaction_counts,
    detail, prev_hash, hash
FROM prompt_log ORDER BY seq;
DELETE FROM sqlite_sequence WHERE name = 'prompt_log_v3';
INSERT INTO sqlite_sequence (name, seq) SELECT 'prompt_log_v3', seq FROM sqlite_sequence
    WHERE name = 'prompt_log';
DROP TABLE prompt_log;
ALTER TABLE prompt_log_v3 RENAME TO prompt_log;
CREATE INDEX prompt_log_summary ON prompt_log (summary_id);
CREATE INDEX prompt_log_created ON prompt_log (created_at);
CREATE INDEX prompt_log_kind_seq ON prompt_log (kind, seq);
