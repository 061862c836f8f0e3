-- 006: activation v2 (HPKE-sealed requests).
-- The issuer's P-256 activation key lives in `meta` (sealed under the
-- master key, made at init or at the first start after this migration).

-- One row counting well-sealed activation guesses for phones with no live
-- activation code: they write nothing per phone (a stranger guessing
-- numbers leaves no rows behind), yet cost one write like a counted guess.
CREATE TABLE activation_strangers (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    guesses    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
