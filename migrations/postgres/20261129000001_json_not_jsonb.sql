-- JSON values exbrief writes once and reads back whole (prompts, model responses, summary
-- documents, outbox payloads, review replies, audit details) are stored as `json`, the text as
-- written and checked, instead of `jsonb`, which parses every value into a tree on insert and
-- prints it back on every read; no query looks inside them. At 500 summaries/s the server spent
-- a sixth of its CPU parsing them (issue 9). The tables are rewritten once, here.
ALTER TABLE prompt_log
    ALTER COLUMN parameters TYPE json USING parameters::json,
    ALTER COLUMN messages TYPE json USING messages::json,
    ALTER COLUMN raw_response TYPE json USING raw_response::json,
    ALTER COLUMN parsed_output TYPE json USING parsed_output::json,
    ALTER COLUMN redaction_counts TYPE json USING redaction_counts::json,
    ALTER COLUMN detail TYPE json USING detail::json;
ALTER TABLE summaries ALTER COLUMN document TYPE json USING document::json;
ALTER TABLE outbox
    ALTER COLUMN payload TYPE json USING payload::json,
    ALTER COLUMN result TYPE json USING result::json;
ALTER TABLE review_decisions
    ALTER COLUMN draft_reply TYPE json USING draft_reply::json,
    ALTER COLUMN final_reply TYPE json USING final_reply::json;
-- A new type drops a column's compression setting: lz4 again, where the server has it
-- (20261128000001_lz4_toast.sql), for the large values and now the parameters too.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE summaries ALTER COLUMN document SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE prompt_log ALTER COLUMN messages SET COMPRESSION lz4, '
        'ALTER COLUMN parameters SET COMPRESSION lz4, '
        'ALTER COLUMN raw_response SET COMPRESSION lz4, '
        'ALTER COLUMN parsed_output SET COMPRESSION lz4, '
        'ALTER COLUMN detail SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE outbox ALTER COLUMN payload SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 is not available on this server: large values stay pglz-compressed';
END
$$;
