//! A card's life on the phone through the FFI (issue 13, item 2;
//! docs/phone.md, "A card's life on the phone" and "FFI"): removing a card
//! tells the bank or keeps the removal pending, and `sync` learns each
//! card's signed state. Both are async (Kotlin `suspend fun`, Swift
//! `async`) over the host's [`crate::Transport`], in the core's prepare →
//! await → finish steps ([`PooyaApp::exchange`], `crate::network`).
//!
//! The records here only mirror the core's [`pooya_core::CardRemoval`] and
//! [`pooya_core::CardSync`]; what is told, retried and refused is decided in
//! `pooya_core::card_life`.

use pooya_core::protocol::card_request::AppStatus;

/// A card's app state as the bank last signed it (docs/protocol.md,
/// "Signed card answers"). A card never checked is `Active` with
/// `status_checked_at` `null` ([`crate::CardInfo`]): the core counts a
/// card as active until a sync says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CardAppStatus {
    /// PINs work.
    Active,
    /// The bank suspended the card's app for now: PINs are refused
    /// (`CardSuspended`) until a sync says it is active again.
    Suspended,
    /// The card's app was revoked (ATM deactivation, the bank, or removed
    /// on a phone): PINs are refused (`CardRevoked`); activate it again
    /// at an ATM.
    Revoked,
    /// The card was activated on another device since: PINs are refused
    /// (`CardOnOtherDevice`).
    OtherDevice,
}

impl From<AppStatus> for CardAppStatus {
    fn from(s: AppStatus) -> Self {
        match s {
            AppStatus::Active => Self::Active,
            AppStatus::Suspended => Self::Suspended,
            AppStatus::Revoked => Self::Revoked,
            AppStatus::OtherDevice => Self::OtherDevice,
        }
    }
}

#[cfg(test)]
mod tests {
    use pooya_core::CardView;

    use super::*;
    use crate::CardInfo;

    fn view(app_status: AppStatus, status_checked_at: Option<u64>) -> CardView {
        CardView {
            id: 7,
            issuer: "bank".into(),
            label: "salary".into(),
            masked_pan: "6104 33•• •••• 0050".into(),
            last4: "0050".into(),
            bank_name_fa: "ملت".into(),
            bank_name_en: "Mellat".into(),
            issuer_bank_name: "Mellat".into(),
            cap: 5_000_000,
            cap_ladder: vec![5_000_000],
            first_digits: 6,
            second_digits: 8,
            added_at: 1_800_000_000,
            app_status,
            status_checked_at,
        }
    }

    #[test]
    fn card_info_carries_the_signed_state() {
        let never = CardInfo::from(view(AppStatus::Active, None));
        assert_eq!(never.app_status, CardAppStatus::Active);
        assert_eq!(never.status_checked_at, None);
        let cases = [
            (AppStatus::Active, CardAppStatus::Active),
            (AppStatus::Suspended, CardAppStatus::Suspended),
            (AppStatus::Revoked, CardAppStatus::Revoked),
            (AppStatus::OtherDevice, CardAppStatus::OtherDevice),
        ];
        for (core, want) in cases {
            let info = CardInfo::from(view(core, Some(1_800_000_123)));
            assert_eq!(info.app_status, want, "{core:?}");
            assert_eq!(info.status_checked_at, Some(1_800_000_123));
            assert_eq!(info.id, 7);
        }
    }
}
