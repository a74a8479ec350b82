-- One decision per summary (the unique key makes two reviewers deciding at once race to one
-- winner); the reply as drafted and as approved are both kept, so edits can be measured.
CREATE TABLE review_decisions (
    id           UUID PRIMARY KEY,
    summary_id   UUID NOT NULL UNIQUE REFERENCES summaries (id),
    decision     TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),
    reviewer     TEXT NOT NULL,
    comment      TEXT,
    draft_reply  JSONB,
    final_reply  JSONB,
    edited       BOOLEAN NOT NULL,
    decided_at   TIMESTAMPTZ NOT NULL
);
