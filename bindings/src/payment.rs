//! Transaction types and payment QR codes (issue 13): the records and the
//! two calls of [`PooyaApp`] that turn a scanned `pooya:pay?…` URI into
//! what the app shows and the transaction-bound PIN for exactly it. Thin
//! wrappers over `pooya_core::Phone::{payment_view, payment_pin}`
//! (docs/phone.md, "Payment QR codes").

use pooya_core::protocol::PaymentView as CorePaymentView;
// The enums the protocol derives for the FFI (feature `uniffi`).
pub use pooya_core::protocol::{Language, TxType};

use crate::PooyaError;
use crate::vault::{PinInfo, PooyaApp};

/// What the app shows for a scanned payment request, before the customer
/// confirms. The payee name may be right-to-left: show it in its own bidi
/// isolate beside the payee id.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PaymentInfo {
    /// The amount in Rials.
    pub amount: u64,
    /// The amount with ASCII digits: `1,250,000`.
    pub amount_latin: String,
    /// The amount with Persian digits: `۱٬۲۵۰٬۰۰۰`.
    pub amount_fa: String,
    /// The amount with its unit in the chosen language.
    pub amount_text: String,
    /// The payee id (what the PIN binds).
    pub payee: String,
    /// The payee's display name, as the page gave it.
    pub payee_name: String,
    /// The transaction type.
    pub tx_type: TxType,
    /// The type's name in the chosen language.
    pub tx_type_name: String,
    /// Seconds until the request expires (bank time).
    pub seconds_left: u64,
    /// The time left as minutes:seconds in the language's digits.
    pub time_left: String,
}

impl From<CorePaymentView> for PaymentInfo {
    fn from(v: CorePaymentView) -> Self {
        Self {
            amount: v.amount,
            amount_latin: v.amount_latin,
            amount_fa: v.amount_fa,
            amount_text: v.amount_text,
            payee: v.payee,
            payee_name: v.payee_name,
            tx_type: v.tx_type,
            tx_type_name: v.tx_type_name.to_owned(),
            seconds_left: v.seconds_left,
            time_left: v.time_left,
        }
    }
}

#[uniffi::export]
impl PooyaApp {
    /// What to show for a scanned payment request URI (`pooya:pay?…`),
    /// in the bank time of card `card_id`'s issuer. Offline.
    ///
    /// # Errors
    /// `Locked`, `CardNotFound`, `InvalidPaymentRequest { reason }`,
    /// `PaymentRequestExpired { expires_at }`.
    pub fn payment_view(
        &self,
        card_id: i64,
        uri: String,
        language: Language,
    ) -> Result<PaymentInfo, PooyaError> {
        Ok(self
            .with_phone(|p| p.payment_view(card_id, &uri, language))?
            .into())
    }

    /// The transaction-bound PIN of card `card_id` for exactly the scanned
    /// request (its type, amount and payee id). Offline.
    ///
    /// # Errors
    /// As [`PooyaApp::payment_view`]; `AmountAboveCap { cap }`.
    pub fn payment_pin(&self, card_id: i64, uri: String) -> Result<PinInfo, PooyaError> {
        Ok(self.with_phone(|p| p.payment_pin(card_id, &uri))?.into())
    }
}
