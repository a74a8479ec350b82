-- Webhook deliveries (issue 10) share the outbox with the Odoo writes. A failed asynchronous
-- summary has no summary row left (its claim is released for a retry), yet its callback must
-- still be delivered: summary_id becomes optional.
ALTER TABLE outbox ALTER COLUMN summary_id DROP NOT NULL;
CREATE INDEX outbox_summary ON outbox (summary_id);
