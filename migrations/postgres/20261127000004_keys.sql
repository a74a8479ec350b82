-- API keys (issue 8): only the sha256 of a secret is stored; a key's webhook-signing secret is
-- sealed with the vault key (it must be read back to check signatures).
CREATE TABLE api_keys (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    secret_sha256       TEXT NOT NULL,
    scopes              TEXT NOT NULL,
    policy              TEXT,
    webhook_key_id      TEXT,
    webhook_nonce       BYTEA,
    webhook_ciphertext  BYTEA,
    created_at          TIMESTAMPTZ NOT NULL,
    revoked_at          TIMESTAMPTZ
);
-- One-time actions that several replicas may race to do (the first admin key).
CREATE TABLE bootstrap (
    what     TEXT PRIMARY KEY,
    done_at  TIMESTAMPTZ NOT NULL
);
-- Signatures seen inside the replay window: a second use is refused, across replicas.
CREATE TABLE webhook_signatures (
    signature  TEXT PRIMARY KEY,
    seen_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_signatures_seen ON webhook_signatures (seen_at);
-- Model tokens spent per key and UTC day, for the daily budget.
CREATE TABLE key_usage (
    key_id  TEXT NOT NULL,
    day     TEXT NOT NULL,
    tokens  BIGINT NOT NULL,
    PRIMARY KEY (key_id, day)
);
