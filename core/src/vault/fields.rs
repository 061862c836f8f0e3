//! The typed names of the vault's sealed fields.
//!
//! Every sealed value carries its place (table, row id, column) as AEAD
//! associated data (docs/security.md, "Envelope format"; [`super::envelope`]),
//! so the names below are part of the on-disk format: renaming one would
//! make every value already sealed under it fail to open. The vault names
//! a place only through [`Field::at`], so a misspelt table or column cannot
//! compile, and the test below pins each name to the schema.

use super::envelope::Place;

/// A table of the vault file that holds sealed fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// `vault_state`: the one row with the canary and the counter.
    VaultState,
    /// `key_slots`: the password and biometric slots.
    KeySlots,
    /// `profile`: the customer's own data.
    Profile,
    /// `issuers`: issuer (bank) profiles.
    Issuers,
    /// `cards`: bank cards.
    Cards,
    /// `accounts`: standard OTP accounts (schema version 3).
    Accounts,
    /// `card_states`: each card's app state as the bank last signed it
    /// (schema version 4).
    CardStates,
    /// `pending_removals`: removals the bank was not told of yet (schema
    /// version 4).
    PendingRemovals,
}

impl Table {
    /// The table's name in the schema and in associated data.
    pub const fn name(self) -> &'static str {
        match self {
            Self::VaultState => "vault_state",
            Self::KeySlots => "key_slots",
            Self::Profile => "profile",
            Self::Issuers => "issuers",
            Self::Cards => "cards",
            Self::Accounts => "accounts",
            Self::CardStates => "card_states",
            Self::PendingRemovals => "pending_removals",
        }
    }
}

/// A sealed column of the vault file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `vault_state.canary`: a known constant that proves a key is the
    /// data key.
    Canary,
    /// `key_slots.data_key`: the data key wrapped by the password slot
    /// (stored in the `wrapped_key` column; the associated data has always
    /// said `data_key`).
    SlotDataKey,
    /// `profile.phone`: the customer's phone number.
    Phone,
    /// `issuers.profile`: one issuer profile (JSON).
    IssuerProfile,
    /// `cards.info`: what rarely changes about a card (JSON).
    CardInfo,
    /// `cards.label`: the customer's label.
    CardLabel,
    /// `cards.cap`: the cap, 8 bytes big-endian.
    CardCap,
    /// `cards.seed`: the card's seed.
    CardSeed,
    /// `accounts.info`: a standard account's settings and names (JSON).
    AccountInfo,
    /// `accounts.secret`: its shared secret.
    AccountSecret,
    /// `accounts.counter`: its HOTP counter, 8 bytes big-endian.
    AccountCounter,
    /// `card_states.state`: a card's app state and when the bank said so
    /// (JSON); the row id is the card's.
    CardState,
    /// `pending_removals.info`: issuer, issuer card id, time removed
    /// (JSON).
    PendingRemovalInfo,
    /// `pending_removals.device_key`: the removed card's device key (never
    /// its seed).
    PendingRemovalKey,
}

impl Field {
    /// Every sealed field, for tests and the reseal pass.
    pub const ALL: [Self; 14] = [
        Self::Canary,
        Self::SlotDataKey,
        Self::Phone,
        Self::IssuerProfile,
        Self::CardInfo,
        Self::CardLabel,
        Self::CardCap,
        Self::CardSeed,
        Self::AccountInfo,
        Self::AccountSecret,
        Self::AccountCounter,
        Self::CardState,
        Self::PendingRemovalInfo,
        Self::PendingRemovalKey,
    ];

    /// The table the field is in.
    pub const fn table(self) -> Table {
        match self {
            Self::Canary => Table::VaultState,
            Self::SlotDataKey => Table::KeySlots,
            Self::Phone => Table::Profile,
            Self::IssuerProfile => Table::Issuers,
            Self::CardInfo | Self::CardLabel | Self::CardCap | Self::CardSeed => Table::Cards,
            Self::AccountInfo | Self::AccountSecret | Self::AccountCounter => Table::Accounts,
            Self::CardState => Table::CardStates,
            Self::PendingRemovalInfo | Self::PendingRemovalKey => Table::PendingRemovals,
        }
    }

    /// The field's name in associated data (also its column, except for
    /// [`Field::SlotDataKey`]).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Canary => "canary",
            Self::SlotDataKey => "data_key",
            Self::Phone => "phone",
            Self::IssuerProfile => "profile",
            Self::CardInfo => "info",
            Self::CardLabel => "label",
            Self::CardCap => "cap",
            Self::CardSeed => "seed",
            Self::AccountInfo => "info",
            Self::AccountSecret => "secret",
            Self::AccountCounter => "counter",
            Self::CardState => "state",
            Self::PendingRemovalInfo => "info",
            Self::PendingRemovalKey => "device_key",
        }
    }

    /// The column that stores the field.
    pub const fn column(self) -> &'static str {
        match self {
            Self::SlotDataKey => "wrapped_key",
            other => other.name(),
        }
    }

    /// The place of this field in row `row`: what its envelope's
    /// associated data names.
    pub fn at(self, row: i64) -> Place<'static> {
        Place::new(self.table().name(), row, self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_on_disk_ones() {
        // The associated data of every vault ever written: these strings
        // may never change.
        let expected = [
            ("vault_state", "canary"),
            ("key_slots", "data_key"),
            ("profile", "phone"),
            ("issuers", "profile"),
            ("cards", "info"),
            ("cards", "label"),
            ("cards", "cap"),
            ("cards", "seed"),
            ("accounts", "info"),
            ("accounts", "secret"),
            ("accounts", "counter"),
            ("card_states", "state"),
            ("pending_removals", "info"),
            ("pending_removals", "device_key"),
        ];
        for (f, (table, field)) in Field::ALL.into_iter().zip(expected) {
            assert_eq!(f.at(7), Place::new(table, 7, field), "{f:?}");
        }
    }

    #[test]
    fn every_field_is_a_column_of_the_schema() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut c).unwrap();
        for f in Field::ALL {
            let n: i64 = c
                .query_row(
                    "SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2 AND type = 'BLOB'",
                    [f.table().name(), f.column()],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(n, 1, "{f:?}");
        }
    }
}
