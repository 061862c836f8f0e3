-- Pooya phone vault, schema version 1.
-- Every personal or secret value is an AEAD envelope (BLOB) sealed under
-- the vault's data key with associated data naming table, row id and
-- field (core/src/vault/envelope.rs). Only ids, the lockout counter and
-- key-slot KDF parameters are plain.

-- One row: the vault itself and the wrong-password counter.
CREATE TABLE vault_state (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    -- Envelope of a known constant under the data key: proves a key
    -- recovered from any slot is the right one.
    canary          BLOB,
    failed_attempts INTEGER NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    last_failure_at INTEGER NOT NULL DEFAULT 0 CHECK (last_failure_at >= 0),
    wiped           INTEGER NOT NULL DEFAULT 0 CHECK (wiped IN (0, 1)),
    -- SHA-256 over the three counter fields, to tell a damaged counter
    -- from a real one.
    state_check     BLOB NOT NULL
) STRICT;

-- Key slots: the data key wrapped once per way in. Slot 1 is the password
-- slot (always present), slot 2 the biometric slot.
CREATE TABLE key_slots (
    id              INTEGER PRIMARY KEY CHECK (id IN (1, 2)),
    kind            TEXT NOT NULL UNIQUE
                    CHECK ((id = 1 AND kind = 'password') OR (id = 2 AND kind = 'biometric')),
    -- Argon2id parameters and salt (password slot only).
    kdf_memory_kib  INTEGER,
    kdf_iterations  INTEGER,
    kdf_parallelism INTEGER,
    salt            BLOB,
    -- The device-binding secret sealed by the host's DeviceKeystore
    -- (password slot) or the data key sealed by the BiometricGate.
    host_blob       BLOB NOT NULL,
    -- Envelope of the data key under the Argon2id key (password slot).
    wrapped_key     BLOB,
    -- SHA-256 over all the fields above, to tell a damaged slot from a
    -- wrong password.
    checksum        BLOB NOT NULL
) STRICT;

-- One row: the customer's own data.
CREATE TABLE profile (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    phone           BLOB
) STRICT;

-- Issuer (bank) profiles: name, base URL, pinned Ed25519 key, time offset.
CREATE TABLE issuers (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    profile         BLOB NOT NULL
) STRICT;

-- Cards. `info` holds issuer, issuer card id, masked PAN, last four,
-- bank, policies and the time added; label and cap change on their own.
CREATE TABLE cards (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    info            BLOB NOT NULL,
    label           BLOB NOT NULL,
    cap             BLOB NOT NULL,
    seed            BLOB NOT NULL
) STRICT;
