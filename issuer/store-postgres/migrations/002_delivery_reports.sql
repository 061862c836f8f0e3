-- Delivery reports of the SMS gateway (Kannel's dlr-url calls), one row per
-- report, against the outbox message they name. Pruned with their message.
CREATE TABLE sms_delivery_reports (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id TEXT NOT NULL REFERENCES sms_outbox (message_id) ON DELETE CASCADE,
    report     TEXT NOT NULL CHECK (report IN ('delivered', 'failed', 'buffered',
                   'smsc_submitted', 'smsc_rejected')),
    at         BIGINT NOT NULL
);
CREATE INDEX sms_delivery_reports_by_message ON sms_delivery_reports (message_id, id);
