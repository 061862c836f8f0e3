-- 007: the durable SMS outbox (issue 11; docs/issuer.md, "SMS delivery").
-- The table of earlier builds held what the development recorder "sent";
-- it keeps that job under its own name.
ALTER TABLE sms_outbox RENAME TO dev_sms_log;
DROP INDEX sms_outbox_by_phone;
CREATE INDEX dev_sms_log_by_phone ON dev_sms_log (to_phone, id);

-- Every message, written in the same transaction as the state it reports;
-- each node's delivery worker claims due rows (leased until lease_until),
-- hands them to the SMS gateway and records the outcome. `payload` is the
-- message's JSON (pooya_issuer_service::outbox::Notice), sealed under the
-- master key when it holds a code (associated data: message_id), and NULL
-- once delivered or given up.
CREATE TABLE sms_outbox (
    id              INTEGER PRIMARY KEY,
    message_id      TEXT NOT NULL UNIQUE,
    to_phone        TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('activation_code', 'sms_channel_enabled',
                        'phone_changed', 'card_activated', 'card_blocked',
                        'card_blocked_last_warning', 'card_blocked_until_lifted', 'sms_pin',
                        'sms_wait', 'sms_help', 'harim_pin')),
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
CREATE INDEX sms_outbox_due ON sms_outbox (state, next_attempt_at, id);
