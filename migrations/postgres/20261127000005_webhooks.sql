-- Webhook deliveries (issue 10) share the outbox with the Odoo writes. A failed asynchronous
-- summary has no summary row left (its claim is released for a retry), yet its callback must
-- still be delivered: summary_id becomes optional.
ALTER TABLE outbox ALTER COLUMN summary_id DROP NOT NULL;
CREATE INDEX outbox_summary ON outbox (summary_id);
-- An asynchronous summary keeps where its callback goes while it is being made: if the process
-- making it dies (its lease runs out and nobody resends the request), another replica releases
-- the claim and tells the caller through that callback.
ALTER TABLE summaries ADD COLUMN callback_url TEXT;
