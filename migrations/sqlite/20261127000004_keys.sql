-- API keys (issue 8): only the sha256 of a secret is stored; a key's webhook-signing secret is
-- sealed with the vault key (it must be read back to check signatures).
CREATE TABLE api_keys (
    id                  TEXT PRIMARY KEY NOT NULL,
    name                TEXT NOT NULL,
    secret_sha256       TEXT NOT NULL,
    scopes              TEXT NOT NULL,
    policy              TEXT,
    webhook_key_id      TEXT,
    webhook_nonce       BLOB,
    webhook_ciphertext  BLOB,
    created_at          TEXT NOT NULL,
    revoked_at          TEXT
);
-- One-time actions that several replicas may race to do (the first admin key).
CREATE TABLE bootstrap (
    what     TEXT PRIMARY KEY NOT NULL,
    done_at  TEXT NOT NULL
);
-- Signatures seen inside the replay window: a second use is refused, across replicas.
CREATE TABLE webhook_signatures (
    signature  TEXT PRIMARY KEY NOT NULL,
    seen_at    TEXT NOT NULL
);
CREATE INDEX webhook_signatures_seen ON webhook_signatures (seen_at);
-- Model tokens spent per key and UTC day, for the daily budget.
CREATE TABLE key_usage (
    key_id  TEXT NOT NULL,
    day     TEXT NOT NULL,
    tokens  INTEGER NOT NULL,
    PRIMARY KEY (key_id, day)
);
