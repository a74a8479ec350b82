-- The review queue filters by severity; the quality figures need the prompt version a reply
-- came from and how far the reviewer edited it.
ALTER TABLE summaries ADD COLUMN severity TEXT;
ALTER TABLE review_decisions ADD COLUMN prompt_version TEXT;
ALTER TABLE review_decisions ADD COLUMN edit_distance BIGINT;
