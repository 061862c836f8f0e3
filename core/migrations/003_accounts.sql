-- Pooya phone vault, schema version 3: standard OTP accounts (issue 13,
-- item 5), the customer's ordinary 2FA accounts beside the bank cards.
-- Sealed like cards (core/src/vault/fields.rs): `info` holds type,
-- issuer, account name, algorithm, digits, period and the time added;
-- `secret` the shared secret; `counter` the HOTP counter of the next code
-- (8 bytes big-endian; 0 for TOTP), rewritten before each HOTP code is
-- shown. IF NOT EXISTS: a file taken back to an earlier version by hand
-- (core/tests/hardening.rs does) keeps this table; the schema check after
-- the migrations still refuses any other shape.
CREATE TABLE IF NOT EXISTS accounts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    info            BLOB NOT NULL,
    secret          BLOB NOT NULL,
    counter         BLOB NOT NULL
) STRICT;
