-- A card's whole life (issue 13, item 2): the state of the card's app.
-- active: its app PINs work; suspended: refused until an ops resume;
-- revoked: refused until a new activation (which sets it active again).
-- The SMS version does not depend on it. Every change is an event.
ALTER TABLE cards ADD COLUMN app_status TEXT NOT NULL DEFAULT 'active'
    CHECK (app_status IN ('active', 'suspended', 'revoked'));

-- The customer is told of each change (notice kind app_status_changed):
-- SQLite cannot alter a CHECK, so sms_outbox is rebuilt with the new kind
-- (the columns of 007; a migration that adds columns to sms_outbox before
-- this one must add them here too).
-- Dropping sms_outbox deletes its rows first, and with foreign keys on
-- (they are, and a migration's transaction cannot turn them off) that
-- cascades into sms_delivery_reports (008): the reports are kept aside and
-- put back.
CREATE TEMP TABLE sms_delivery_reports_009 AS SELECT * FROM sms_delivery_reports;
CREATE TABLE sms_outbox_009 (
    id              INTEGER PRIMARY KEY,
    message_id      TEXT NOT NULL UNIQUE,
    to_phone        TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('activation_code', 'sms_channel_enabled',
                        'phone_changed', 'card_activated', 'card_blocked',
                        'card_blocked_last_warning', 'card_blocked_until_lifted', 'sms_pin',
                        'sms_wait', 'sms_help', 'harim_pin', 'app_status_changed')),
    payload         BLOB,
    sealed          INTEGER NOT NULL CHECK (sealed IN (0, 1)),
    state           TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_error      TEXT,
    gateway_ref     TEXT
);
INSERT INTO sms_outbox_009 (id, message_id, to_phone, kind, payload, sealed, state, attempts,
    next_attempt_at, lease_until, created_at, delivered_at, last_error, gateway_ref)
SELECT id, message_id, to_phone, kind, payload, sealed, state, attempts,
    next_attempt_at, lease_until, created_at, delivered_at, last_error, gateway_ref
FROM sms_outbox;
DROP TABLE sms_outbox;
ALTER TABLE sms_outbox_009 RENAME TO sms_outbox;
INSERT INTO sms_delivery_reports (id, message_id, report, at)
SELECT id, message_id, report, at FROM sms_delivery_reports_009;
DROP TABLE sms_delivery_reports_009;
CREATE INDEX sms_outbox_due ON sms_outbox (state, next_attempt_at, id);
