//! The records [`crate::Phone`] returns: display data without secrets
//! (docs/phone.md, "FFI"). With the `uniffi` feature (pooya-ffi turns it
//! on) they derive `uniffi::Record` under the names the apps know
//! (`CardInfo`, `IssuerInfo`, `ActivatedCard`, `TimeSyncInfo`), so the FFI
//! returns them as they are instead of declaring them again.

use pooya_protocol::bank_for_bin;

use crate::vault::{CardId, CardRecord, IssuerProfile};

/// A card as the customer sees it: display data and cap, never the seed.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record), uniffi(name = "CardInfo"))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardView {
    /// Local id (what `CARD` means on the command line, besides the last
    /// four digits).
    pub id: CardId,
    /// The issuer profile's name.
    pub issuer: String,
    /// The customer's label.
    pub label: String,
    /// `6104 33•• •••• 1234`.
    pub masked_pan: String,
    /// The last four digits.
    pub last4: String,
    /// The bank's Persian name from the table of Iranian card BINs, or the
    /// issuer's name for the bank when the BIN is not in the table.
    pub bank_name_fa: String,
    /// The bank's English name from the BIN table, or the issuer's name.
    pub bank_name_en: String,
    /// The bank name the issuer signed at activation.
    pub issuer_bank_name: String,
    /// The current cap for second PINs, in Rials (a tier of `cap_ladder`).
    pub cap: u64,
    /// The issuer's cap tiers, smallest first.
    pub cap_ladder: Vec<u64>,
    /// Digits of first PINs.
    pub first_digits: u32,
    /// Digits of second PINs.
    pub second_digits: u32,
    /// When the card was added (phone clock, Unix seconds).
    pub added_at: u64,
    /// The card's app state as the bank last signed it (active before the
    /// first sync; docs/phone.md, "A card's life on the phone").
    pub app_status: pooya_protocol::card_request::AppStatus,
    /// The bank time of that answer; `None` before the first sync.
    pub status_checked_at: Option<u64>,
}

impl CardView {
    pub(crate) fn from_record(r: CardRecord) -> Self {
        // The BIN is in the clear in the masked number: `DDDD DD•• …`.
        let bin: String = r
            .masked_pan
            .chars()
            .filter(char::is_ascii_digit)
            .take(6)
            .collect();
        let bank = bank_for_bin(&bin);
        Self {
            id: r.id,
            bank_name_fa: bank.map_or_else(|| r.bank_name.clone(), |b| b.name_fa.to_owned()),
            bank_name_en: bank.map_or_else(|| r.bank_name.clone(), |b| b.name_en.to_owned()),
            issuer_bank_name: r.bank_name,
            cap: r.cap,
            cap_ladder: r.policies.cap_ladder.tiers().to_vec(),
            first_digits: r.policies.first.digits,
            second_digits: r.policies.second.digits,
            issuer: r.issuer,
            label: r.label,
            masked_pan: r.masked_pan,
            last4: r.last4,
            added_at: r.added_at,
            app_status: r.app_status,
            status_checked_at: r.status_checked_at,
        }
    }
}

/// An issuer profile as shown.
#[cfg_attr(
    feature = "uniffi",
    derive(uniffi::Record),
    uniffi(name = "IssuerInfo")
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerView {
    /// Unique name.
    pub name: String,
    /// Base URL of its API.
    pub base_url: String,
    /// The pinned Ed25519 public key, hex.
    #[cfg_attr(feature = "uniffi", uniffi(name = "public_key"))]
    pub public_key_hex: String,
    /// The pinned activation (HPKE, P-256) key, hex; `None` for a profile
    /// stored before activation v2 (add the issuer again to activate
    /// cards).
    #[cfg_attr(feature = "uniffi", uniffi(name = "activation_key"))]
    pub activation_key_hex: Option<String>,
    /// Issuer time minus phone time, seconds, measured at the last
    /// activation with this issuer (0 before the first).
    pub time_offset_secs: i64,
}

impl From<IssuerProfile> for IssuerView {
    fn from(p: IssuerProfile) -> Self {
        Self {
            name: p.name,
            base_url: p.base_url,
            public_key_hex: hex::encode(p.public_key),
            activation_key_hex: p.activation_key.as_ref().map(hex::encode),
            time_offset_secs: p.time_offset_secs,
        }
    }
}

/// What [`crate::Phone::add_card`] did.
#[cfg_attr(
    feature = "uniffi",
    derive(uniffi::Record),
    uniffi(name = "ActivatedCard")
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedCard {
    /// The card as stored.
    pub card: CardView,
    /// The local id of the card this activation replaced (the same issuer
    /// card activated again: its old seed no longer works at the bank).
    #[cfg_attr(feature = "uniffi", uniffi(name = "replaced_card_id"))]
    pub replaced: Option<CardId>,
    /// The issuer's time offset measured now, seconds.
    pub time_offset_secs: i64,
}

/// What [`crate::Phone::sync_time`] measured.
#[cfg_attr(
    feature = "uniffi",
    derive(uniffi::Record),
    uniffi(name = "TimeSyncInfo")
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeSync {
    /// The issuer profile's name.
    pub issuer: String,
    /// The issuer's signed time, Unix seconds.
    pub server_time: u64,
    /// Issuer time minus phone (wall clock) time now, seconds.
    pub time_offset_secs: i64,
    /// The offset before this sync.
    pub previous_offset_secs: i64,
    /// Whether the sync was recorded against the boot clock (so offline
    /// PINs ignore the wall clock until the device restarts).
    pub boot_anchored: bool,
}
