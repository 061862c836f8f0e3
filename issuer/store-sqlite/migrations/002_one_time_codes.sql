-- 002: one-time second PINs sent by SMS (the SMS version and Harim
-- requests, issue 6), and the rate limits on sending them.
-- Codes are stored only as keyed hashes (HashDomain::OneTimeCode) that bind
-- the card, the channel and, for Harim, the amount and the payee.

CREATE TABLE one_time_codes (
    id         INTEGER PRIMARY KEY,
    card_id    TEXT NOT NULL REFERENCES cards (id),
    channel    TEXT NOT NULL CHECK (channel IN ('sms', 'harim')),
    code_hash  BLOB NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('pending', 'used', 'superseded')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    closed_at  INTEGER
);
CREATE INDEX one_time_codes_by_card ON one_time_codes (card_id, created_at);

-- One row per code sent (or asked for, for a card the bank does not know),
-- per subject: the card (by its PAN's keyed hash, so unknown card numbers
-- are limited alike) and the phone. Rows older than an hour are pruned.
CREATE TABLE otp_sends (
    channel TEXT NOT NULL CHECK (channel IN ('sms', 'harim')),
    subject BLOB NOT NULL,
    at      INTEGER NOT NULL
);
CREATE INDEX otp_sends_by_subject ON otp_sends (channel, subject, at);

-- Replies to the short code that carry no code (help texts, "please
-- wait"): limited per phone, so nobody can make the bank text a number
-- without end.
CREATE TABLE sms_replies (
    phone TEXT NOT NULL,
    at    INTEGER NOT NULL
);
CREATE INDEX sms_replies_by_phone ON sms_replies (phone, at);
