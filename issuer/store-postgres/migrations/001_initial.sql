-- 001: the issuer's schema on PostgreSQL (issue 11): the final state of the
-- SQLite migrations 001 to 006 (issuer/migrations/), without `used_steps`
-- (replaced by `step_marks` in SQLite's 005) and without SQLite's first
-- `sms_outbox` (the development recorder, now `dev_sms_log`), plus the
-- durable SMS outbox.
--
-- Types: BYTEA for SQLite's BLOB, BIGINT for Unix-second times, counters
-- and steps, BOOLEAN for flags, BIGINT GENERATED ALWAYS AS IDENTITY for
-- integer ids. No plaintext PAN, seed or code is ever stored: PANs as an
-- HMAC for lookup plus a sealed copy, seeds sealed, codes and tokens as
-- HMACs.
--
-- The migration runner (not this file) creates and maintains
-- `schema_version`; this file only declares it.

-- The schema version the migration runner last applied: one row.
CREATE TABLE schema_version (
    version BIGINT NOT NULL
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE api_tokens (
    token_hash BYTEA PRIMARY KEY,
    role       TEXT NOT NULL CHECK (role IN ('atm', 'gateway', 'sms', 'ops')),
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE cards (
    id                TEXT PRIMARY KEY,
    pan_hash          BYTEA NOT NULL UNIQUE,
    pan_sealed        BYTEA NOT NULL,
    last4             TEXT NOT NULL,
    phone             TEXT NOT NULL,
    sms_enabled       BOOLEAN NOT NULL DEFAULT FALSE,
    seed_sealed       BYTEA,
    seed_generation   BIGINT NOT NULL DEFAULT 0,
    device_label      TEXT,
    device_public_key BYTEA,
    activated_at      BIGINT,
    drift_first       BIGINT NOT NULL DEFAULT 0,
    drift_second      BIGINT NOT NULL DEFAULT 0,
    failures          BIGINT NOT NULL DEFAULT 0,
    blocked_until     BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX cards_by_phone ON cards (phone);

CREATE TABLE activation_codes (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    card_id    TEXT NOT NULL REFERENCES cards (id),
    phone      TEXT NOT NULL,
    code_hash  BYTEA NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('pending', 'used', 'burned', 'superseded')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    closed_at  BIGINT
);
CREATE INDEX activation_codes_by_hash ON activation_codes (code_hash);
CREATE INDEX activation_codes_by_phone ON activation_codes (phone, state);
CREATE INDEX activation_codes_by_card ON activation_codes (card_id, state);

-- Wrong activation codes per phone since its last code was issued.
CREATE TABLE activation_failures (
    phone      TEXT PRIMARY KEY,
    failures   BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Audit trail of what the operations team asks about: enrollments,
-- activations, burns, blocks. Never a PAN or a code.
CREATE TABLE events (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      BIGINT NOT NULL,
    card_id TEXT,
    phone   TEXT,
    kind    TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_by_card ON events (card_id, id);

-- One-time second PINs sent by SMS (the SMS version and Harim requests,
-- issue 6), stored only as keyed hashes (HashDomain::OneTimeCode) that bind
-- the card, the channel and, for Harim, the amount and the payee.
CREATE TABLE one_time_codes (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    card_id    TEXT NOT NULL REFERENCES cards (id),
    channel    TEXT NOT NULL CHECK (channel IN ('sms', 'harim')),
    code_hash  BYTEA NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('pending', 'used', 'superseded')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    closed_at  BIGINT
);
CREATE INDEX one_time_codes_by_card ON one_time_codes (card_id, created_at);

-- One row per code sent (or asked for, for a card the bank does not know),
-- per subject: the card (by its PAN's keyed hash, so unknown card numbers
-- are limited alike) and the phone. Rows older than an hour are pruned.
CREATE TABLE otp_sends (
    channel TEXT NOT NULL CHECK (channel IN ('sms', 'harim')),
    subject BYTEA NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX otp_sends_by_subject ON otp_sends (channel, subject, at);

-- Replies to the short code that carry no code (help texts, "please
-- wait"): limited per phone, so nobody can make the bank text a number
-- without end.
CREATE TABLE sms_replies (
    phone TEXT NOT NULL,
    at    BIGINT NOT NULL
);
CREATE INDEX sms_replies_by_phone ON sms_replies (phone, at);

-- Verification failures of card numbers the bank does not know, by the
-- PAN's keyed hash (HashDomain::Pan): they count and block exactly as a
-- known card's do, so a gateway cannot tell the two apart and probing card
-- numbers is throttled.
CREATE TABLE probe_failures (
    pan_hash      BYTEA PRIMARY KEY,
    failures      BIGINT NOT NULL,
    blocked_until BIGINT NOT NULL DEFAULT 0,
    updated_at    BIGINT NOT NULL
);

-- One row per block of a card number's dynamic PINs (known or not), for
-- escalation: the third block within 24 hours lasts until an ops unblock
-- or a re-enrollment. Rows older than 24 hours are pruned.
CREATE TABLE verify_blocks (
    pan_hash BYTEA NOT NULL,
    at       BIGINT NOT NULL
);
CREATE INDEX verify_blocks_by_pan ON verify_blocks (pan_hash, at);

-- The merchant registry. The name a Harim SMS shows comes from here,
-- registered by the bank's operations team (PUT /v1/merchants/{payee_id}),
-- never from the payment gateway (docs/security.md, "Merchant names").
-- payee_id: the plain ASCII identifier bound into transaction PINs
-- (pooya_protocol::pin::normalize_payee); name: NFC, one script's letters
-- and digits, space, ZWNJ and . - ' & only.
CREATE TABLE merchants (
    payee_id   TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The highest time step accepted per card and PIN kind (RFC 6238 §5.2):
-- `first`, `second` (cap-bound) and `transaction` (transaction-bound; the
-- same key and steps as `second` but a different one-time password, so
-- each kind has its own mark). A code for a step at or below its kind's
-- mark is refused (`replayed`). The mark belongs to one seed: `generation`
-- is the card's `seed_generation` when it was set, and a mark of an older
-- generation (the card was activated again since) counts as no mark.
CREATE TABLE step_marks (
    card_id    TEXT NOT NULL REFERENCES cards (id),
    key        TEXT NOT NULL CHECK (key IN ('first', 'second', 'transaction')),
    generation BIGINT NOT NULL,
    step       BIGINT NOT NULL,
    PRIMARY KEY (card_id, key)
);

-- One row per counted verification failure of a card number (known or
-- not, by the PAN's keyed hash, as verify_blocks), since its last block:
-- the sliding failure window, which accepted payments do not reset. A
-- block deletes the card number's rows; rows older than the longest
-- allowed window (7 days) are pruned.
CREATE TABLE verify_failures (
    pan_hash BYTEA NOT NULL,
    at       BIGINT NOT NULL
);
CREATE INDEX verify_failures_by_pan ON verify_failures (pan_hash, at);

-- One row counting well-sealed activation guesses (activation v2) for
-- phones with no live activation code: they write nothing per phone (a
-- stranger guessing numbers leaves no rows behind), yet cost one write
-- like a counted guess.
CREATE TABLE activation_strangers (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    guesses    BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The durable SMS outbox (issue 11): every message written in the same
-- transaction as the state it reports; delivery workers claim rows
-- (FOR UPDATE SKIP LOCKED).
CREATE TABLE sms_outbox (
    -- Delivery order.
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Random 'msg_' + 32 hex; the sealed payload's associated-data context.
    message_id      TEXT NOT NULL UNIQUE,
    to_phone        TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN (
        'activation_code', 'sms_channel_enabled', 'phone_changed',
        'card_activated', 'card_blocked', 'card_blocked_last_warning',
        'card_blocked_until_lifted', 'sms_pin', 'sms_wait', 'sms_help',
        'harim_pin')),
    -- The message's JSON, sealed when it holds a code; NULL once delivered
    -- (wiped).
    payload         BYTEA,
    sealed          BOOLEAN NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    last_error      TEXT,
    gateway_ref     TEXT
);
CREATE INDEX sms_outbox_by_state ON sms_outbox (state, next_attempt_at, id);

-- What the development recorder sender "delivered": the messages tests and
-- the demo read back. Bodies sealed (context: to_phone).
CREATE TABLE dev_sms_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    to_phone    TEXT NOT NULL,
    sender      TEXT NOT NULL,
    body_sealed BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX dev_sms_log_by_phone ON dev_sms_log (to_phone, id);
