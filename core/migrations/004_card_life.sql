-- Pooya phone vault, schema version 4: a card's life on the phone (issue
-- 13, item 2; docs/phone.md, "A card's life on the phone").
--
-- `card_states`: the app state of a card as the bank last signed it
-- (sealed JSON: status and the bank time of the answer). No row: never
-- synced, taken as active. A card's row goes with the card (the trigger),
-- and card ids are never reused (AUTOINCREMENT), so a state can never
-- attach to another card.
--
-- `pending_removals`: cards removed on the phone while the bank could not
-- be told. `info` holds the issuer profile's name, the issuer's card id
-- and the time of the removal; `device_key` the card's DERIVED device key
-- (docs/protocol.md, "Card requests"), which proves the removal and
-- nothing else: never the seed, so no PIN can be made from it. A row is
-- deleted once the bank has been told.
--
-- IF NOT EXISTS: a file taken back to an earlier version by hand
-- (core/tests/hardening.rs does) keeps these; the schema check after the
-- migrations still refuses any other shape.
CREATE TABLE IF NOT EXISTS card_states (
    card_id         INTEGER PRIMARY KEY,
    state           BLOB NOT NULL
) STRICT;

CREATE TRIGGER IF NOT EXISTS card_states_follow_cards
AFTER DELETE ON cards
BEGIN
    DELETE FROM card_states WHERE card_id = OLD.id;
END;

CREATE TABLE IF NOT EXISTS pending_removals (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    info            BLOB NOT NULL,
    device_key      BLOB NOT NULL
) STRICT;
