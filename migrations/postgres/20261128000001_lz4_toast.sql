-- Large JSON values (summary documents, prompts, model responses, outbox payloads) are
-- compressed with lz4 instead of pglz when PostgreSQL was built with it (Debian's and the
-- official images are): pglz_compress was a fifth of the server's CPU at 500 summaries/s
-- (issue 9). Only values stored from now on change; either method reads back the same.
-- A server without lz4 keeps pglz.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE summaries ALTER COLUMN document SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE prompt_log ALTER COLUMN messages SET COMPRESSION lz4, '
        'ALTER COLUMN raw_response SET COMPRESSION lz4, '
        'ALTER COLUMN parsed_output SET COMPRESSION lz4, '
        'ALTER COLUMN detail SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE outbox ALTER COLUMN payload SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 is not available on this server: large values stay pglz-compressed';
END
$$;
