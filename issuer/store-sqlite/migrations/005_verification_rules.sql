-- 005: verification rules that hold against a patient attacker (issue 10;
-- docs/issuer.md, "High-water marks" and "Failure window").

-- The highest time step accepted per card and PIN kind (RFC 6238 §5.2):
-- `first`, `second` (cap-bound) and `transaction` (transaction-bound; the
-- same key and steps as `second` but a different one-time password, so
-- each kind has its own mark). A code for a step at or below its kind's
-- mark is refused (`replayed`). The mark
-- belongs to one seed: `generation` is the card's `seed_generation` when
-- it was set, and a mark of an older generation (the card was activated
-- again since) counts as no mark.
CREATE TABLE step_marks (
    card_id    TEXT NOT NULL REFERENCES cards (id),
    key        TEXT NOT NULL CHECK (key IN ('first', 'second', 'transaction')),
    generation INTEGER NOT NULL,
    step       INTEGER NOT NULL,
    PRIMARY KEY (card_id, key)
) WITHOUT ROWID;

-- The steps spent before this migration become marks, so none of them,
-- and nothing older, is accepted after the upgrade.
INSERT INTO step_marks (card_id, key, generation, step)
SELECT u.card_id, u.kind, c.seed_generation, max(u.step)
FROM used_steps u JOIN cards c ON c.id = u.card_id
GROUP BY u.card_id, u.kind;

-- One row per counted verification failure of a card number (known or
-- not, by the PAN's keyed hash, as verify_blocks), since its last block:
-- the sliding failure window, which accepted payments do not reset. A
-- block deletes the card number's rows; rows older than the longest
-- allowed window (7 days) are pruned.
CREATE TABLE verify_failures (
    pan_hash BLOB NOT NULL,
    at       INTEGER NOT NULL
);
CREATE INDEX verify_failures_by_pan ON verify_failures (pan_hash, at);
