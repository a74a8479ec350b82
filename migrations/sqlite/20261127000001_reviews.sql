-- One decision per summary (the unique key makes two reviewers deciding at once race to one
-- winner); the reply as drafted and as approved are both kept, so edits can be measured.
CREATE TABLE review_decisions (
    id           BLOB PRIMARY KEY NOT NULL,
    summary_id   BLOB NOT NULL UNIQUE REFERENCES summaries (id),
    decision     TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),
    reviewer     TEXT NOT NULL,
    comment      TEXT,
    draft_reply  TEXT,
    final_reply  TEXT,
    edited       INTEGER NOT NULL,
    decided_at   TEXT NOT NULL
);
