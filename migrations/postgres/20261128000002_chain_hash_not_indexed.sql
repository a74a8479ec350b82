-- The chain's `hash` column loses its unique index (issue 9). Nothing looks a row up by its
-- hash, and the index could never refuse a row: a hash covers the previous row's hash, so two
-- equal hashes need a fork with identical content, which the chain's lock already rules out
-- and `audit verify` would report. Its keys are random, so every prompt-log row dirtied a
-- page of its own: at 500 summaries/s that was the largest share of the write-ahead log after
-- the rows themselves.
ALTER TABLE prompt_log DROP CONSTRAINT prompt_log_hash_key;
