//! What a UI needs to read and show Pooya's inputs: amounts in Rials
//! (ASCII, Persian or Arabic-Indic digits), Iranian mobile numbers and
//! activation codes. Thin wrappers over `pooya_core::protocol`.

use pooya_core::protocol;

use crate::PooyaError;

/// Parses an amount of Rials as typed: ASCII, Persian (۰–۹) or
/// Arabic-Indic (٠–٩) digits, optionally grouped in threes by `,`, `٬` or
/// `،`, with spaces around (docs/protocol.md, "Amounts").
///
/// # Errors
/// [`PooyaError::InvalidAmount`] saying what is wrong; never a silent 0.
#[uniffi::export]
pub fn parse_amount(text: &str) -> Result<u64, PooyaError> {
    protocol::parse_amount(text).map_err(Into::into)
}

/// Writes an amount with Persian digits and `٬` separators, as in the
/// bank's SMS texts: `1250000` → `۱٬۲۵۰٬۰۰۰`.
#[uniffi::export]
pub fn format_rials_fa(amount: u64) -> String {
    protocol::format_rials_fa(amount)
}

/// Writes an amount with ASCII digits and `,` separators: `1,250,000`.
#[uniffi::export]
pub fn format_rials(amount: u64) -> String {
    protocol::format_rials(amount)
}

/// Normalises an Iranian mobile number to `+989XXXXXXXXX` (accepts `09…`,
/// `9…`, `+989…`, `989…`, `00989…`, Persian digits, spaces, dashes).
///
/// # Errors
/// [`PooyaError::InvalidInput`] with field `phone`.
#[uniffi::export]
pub fn normalize_phone(text: &str) -> Result<String, PooyaError> {
    protocol::normalize_phone(text).map_err(Into::into)
}

/// Normalises an activation code as typed (Persian digits, spaces and
/// dashes allowed) and checks its Luhn check digit (ISO/IEC 7812-1
/// Annex B), so a typo is caught before any network call.
///
/// # Errors
/// [`PooyaError::InvalidInput`] with field `code`.
#[uniffi::export]
pub fn normalize_activation_code(text: &str) -> Result<String, PooyaError> {
    protocol::normalize_activation_code(text).map_err(Into::into)
}

/// Joins a two-channel activation code: the part the ATM showed, then the
/// part the SMS carried (each as typed), checked as one code; the result
/// goes to `PooyaApp.addCard`.
///
/// # Errors
/// [`PooyaError::InvalidInput`] with field `code` (a part missing, or a
/// check digit that fails: one part was mistyped).
#[uniffi::export]
pub fn join_activation_code(atm_part: &str, sms_part: &str) -> Result<String, PooyaError> {
    protocol::join_activation_code(atm_part, sms_part).map_err(Into::into)
}

/// Groups a normalised activation code in fives for display:
/// `12345-67890`.
#[uniffi::export]
pub fn format_activation_code(code: &str) -> String {
    protocol::ids::format_activation_code(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AmountProblem;

    #[test]
    fn wrappers_delegate() {
        assert_eq!(parse_amount(" ۱٬۲۵۰٬۰۰۰ "), Ok(1_250_000));
        assert_eq!(
            parse_amount("12a"),
            Err(PooyaError::InvalidAmount {
                reason: AmountProblem::UnexpectedCharacter { position: 2 }
            })
        );
        assert_eq!(format_rials_fa(1_250_000), "۱٬۲۵۰٬۰۰۰");
        assert_eq!(format_rials(1_250_000), "1,250,000");
        assert_eq!(normalize_phone("۰۹۱۲ ۳۴۵ ۶۷۸۹"), Ok("+989123456789".into()));
        assert_eq!(normalize_phone("12").unwrap_err().code(), "invalid_input");
        assert_eq!(format_activation_code("1234567890"), "12345-67890");
    }
}
