-- 001: the issuer's first schema.
-- No plaintext PAN, seed or code is ever stored: PANs as an HMAC for lookup
-- plus a sealed copy, seeds sealed, codes and tokens as HMACs.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE api_tokens (
    token_hash BLOB PRIMARY KEY,
    role       TEXT NOT NULL CHECK (role IN ('atm', 'gateway', 'sms', 'ops')),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) WITHOUT ROWID;

CREATE TABLE cards (
    id                TEXT PRIMARY KEY,
    pan_hash          BLOB NOT NULL UNIQUE,
    pan_sealed        BLOB NOT NULL,
    last4             TEXT NOT NULL,
    phone             TEXT NOT NULL,
    sms_enabled       INTEGER NOT NULL DEFAULT 0,
    seed_sealed       BLOB,
    seed_generation   INTEGER NOT NULL DEFAULT 0,
    device_label      TEXT,
    device_public_key BLOB,
    activated_at      INTEGER,
    drift_first       INTEGER NOT NULL DEFAULT 0,
    drift_second      INTEGER NOT NULL DEFAULT 0,
    failures          INTEGER NOT NULL DEFAULT 0,
    blocked_until     INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX cards_by_phone ON cards (phone);

CREATE TABLE activation_codes (
    id         INTEGER PRIMARY KEY,
    card_id    TEXT NOT NULL REFERENCES cards (id),
    phone      TEXT NOT NULL,
    code_hash  BLOB NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('pending', 'used', 'burned', 'superseded')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    closed_at  INTEGER
);
CREATE INDEX activation_codes_by_hash ON activation_codes (code_hash);
CREATE INDEX activation_codes_by_phone ON activation_codes (phone, state);
CREATE INDEX activation_codes_by_card ON activation_codes (card_id, state);

-- Wrong activation codes per phone since its last code was issued.
CREATE TABLE activation_failures (
    phone      TEXT PRIMARY KEY,
    failures   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- (card, kind, step) accepted once (RFC 6238 §5.2); rows past any
-- acceptable window are pruned.
CREATE TABLE used_steps (
    card_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    step       INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (card_id, kind, step)
) WITHOUT ROWID;

-- Messages handed to the default SMS sender; bodies sealed (they carry codes).
CREATE TABLE sms_outbox (
    id          INTEGER PRIMARY KEY,
    to_phone    TEXT NOT NULL,
    sender      TEXT NOT NULL,
    body_sealed BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX sms_outbox_by_phone ON sms_outbox (to_phone, id);

-- Audit trail of what the operations team asks about: enrollments,
-- activations, burns, blocks. Never a PAN or a code.
CREATE TABLE events (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    card_id TEXT,
    phone   TEXT,
    kind    TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_by_card ON events (card_id, id);
