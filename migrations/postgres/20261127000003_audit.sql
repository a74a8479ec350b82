-- The prompt log becomes the audit chain: model calls, audit-access records and retention
-- checkpoints share one sequence and one hash chain (issue 7). Model-call columns are NULL on
-- the other kinds; `detail` holds what an access or a checkpoint records.
ALTER TABLE prompt_log
    ADD COLUMN kind TEXT NOT NULL DEFAULT 'model_call'
        CHECK (kind IN ('model_call', 'access', 'checkpoint')),
    ADD COLUMN detail JSONB,
    ALTER COLUMN summary_id DROP NOT NULL,
    ALTER COLUMN event_id DROP NOT NULL,
    ALTER COLUMN event_type DROP NOT NULL,
    ALTER COLUMN task DROP NOT NULL,
    ALTER COLUMN attempt_kind DROP NOT NULL,
    ALTER COLUMN template_version DROP NOT NULL,
    ALTER COLUMN template_sha256 DROP NOT NULL,
    ALTER COLUMN policy_version DROP NOT NULL,
    ALTER COLUMN policy_sha256 DROP NOT NULL,
    ALTER COLUMN provider DROP NOT NULL,
    ALTER COLUMN model DROP NOT NULL,
    ALTER COLUMN parameters DROP NOT NULL,
    ALTER COLUMN messages DROP NOT NULL,
    ALTER COLUMN latency_ms DROP NOT NULL,
    ALTER COLUMN outcome DROP NOT NULL,
    ALTER COLUMN redaction_counts DROP NOT NULL,
    ADD CONSTRAINT prompt_log_model_call_complete CHECK (kind <> 'model_call' OR (
        summary_id IS NOT NULL AND task IS NOT NULL AND messages IS NOT NULL
        AND outcome IS NOT NULL));
CREATE INDEX prompt_log_kind_seq ON prompt_log (kind, seq);

-- Pseudonym maps, sealed (AES-256-GCM, the summary id as associated data) and deleted by
-- retention after `expires_at`.
CREATE TABLE pseudonym_maps (
    summary_id  UUID PRIMARY KEY REFERENCES summaries (id) ON DELETE CASCADE,
    key_id      TEXT NOT NULL,
    nonce       BYTEA NOT NULL,
    ciphertext  BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX pseudonym_maps_expires ON pseudonym_maps (expires_at);
