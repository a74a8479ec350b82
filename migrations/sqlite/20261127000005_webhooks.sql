-- Webhook deliveries (issue 10) share the outbox with the Odoo writes. A failed asynchronous
-- summary has no summary row left (its claim is released for a retry), yet its callback must
-- still be delivered: summary_id becomes optional. SQLite cannot drop NOT NULL, so the table is
-- rebuilt with its rows unchanged.
CREATE TABLE outbox_v2 (
    id               BLOB PRIMARY KEY NOT NULL,
    summary_id       BLOB REFERENCES summaries (id),
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
INSERT INTO outbox_v2 (id, summary_id, kind, payload, status, attempts, next_attempt_at,
                       last_error, result, created_at, updated_at)
SELECT id, summary_id, kind, payload, status, attempts, next_attempt_at,
       last_error, result, created_at, updated_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v2 RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_summary ON outbox (summary_id);
-- An asynchronous summary keeps where its callback goes while it is being made: if the process
-- making it dies (its lease runs out and nobody resends the request), another replica releases
-- the claim and tells the caller through that callback.
ALTER TABLE summaries ADD COLUMN callback_url TEXT;
