-- A card's whole life (issue 13, item 2): the state of the card's app.
-- active: its app PINs work; suspended: refused until an ops resume;
-- revoked: refused until a new activation (which sets it active again).
-- The SMS version does not depend on it. Every change is an event.
ALTER TABLE cards ADD COLUMN app_status TEXT NOT NULL DEFAULT 'active'
    CHECK (app_status IN ('active', 'suspended', 'revoked'));

-- The customer is told of each change (notice kind app_status_changed).
ALTER TABLE sms_outbox DROP CONSTRAINT sms_outbox_kind_check;
ALTER TABLE sms_outbox ADD CONSTRAINT sms_outbox_kind_check CHECK (kind IN (
    'activation_code', 'sms_channel_enabled', 'phone_changed',
    'card_activated', 'card_blocked', 'card_blocked_last_warning',
    'card_blocked_until_lifted', 'sms_pin', 'sms_wait', 'sms_help',
    'harim_pin', 'app_status_changed'));
