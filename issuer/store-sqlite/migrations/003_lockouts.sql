-- 003: verification lockouts that escalate and that cover unknown card
-- numbers alike.

-- Verification failures of card numbers the bank does not know, by the
-- PAN's keyed hash (HashDomain::Pan): they count and block exactly as a
-- known card's do, so a gateway cannot tell the two apart and probing card
-- numbers is throttled.
CREATE TABLE probe_failures (
    pan_hash      BLOB PRIMARY KEY,
    failures      INTEGER NOT NULL,
    blocked_until INTEGER NOT NULL DEFAULT 0,
    updated_at    INTEGER NOT NULL
) WITHOUT ROWID;

-- One row per block of a card number's dynamic PINs (known or not), for
-- escalation: the third block within 24 hours lasts until an ops unblock
-- or a re-enrollment. Rows older than 24 hours are pruned.
CREATE TABLE verify_blocks (
    pan_hash BLOB NOT NULL,
    at       INTEGER NOT NULL
);
CREATE INDEX verify_blocks_by_pan ON verify_blocks (pan_hash, at);
