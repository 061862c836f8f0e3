-- A card's whole life (issue 13, item 2): the state of the card's app.
-- active: its app PINs work; suspended: refused until an ops resume;
-- revoked: refused until a new activation (which sets it active again).
-- The SMS version does not depend on it. Every change is an event.
ALTER TABLE cards ADD COLUMN app_status TEXT NOT NULL DEFAULT 'active'
    CHECK (app_status IN ('active', 'suspended', 'revoked'));
