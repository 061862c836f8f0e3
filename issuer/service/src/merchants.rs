//! The merchant registry (issue 10, item 6): the names Harim SMS messages
//! show, kept by the bank (`PUT /v1/merchants/{payee_id}`, ops role) and
//! never taken from a payment gateway, so what the SMS shows is who the
//! customer pays (docs/security.md, "Merchant names").
//!
//! A name is stored in Unicode Normalization Form C (UAX #15) and may hold
//! only the letters and digits of one script, Arabic (Persian) or Latin, as
//! single-script is defined in UTS #39 §5.1, plus space, ZWNJ (U+200C,
//! which Persian spelling needs) and `. - ' &`. Everything else is refused:
//! controls, format and bidirectional controls (UAX #9 §2), line and
//! paragraph separators, guillemets, parentheses, colons, and letters the
//! UTS #39 General Security Profile (§3.1) does not allow in identifiers.

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_script::{Script, UnicodeScript};
use unicode_security::{GeneralSecurityProfile, MixedScript};

use crate::error::{Field, PayeeAt, ServiceError};
use crate::service::Issuer;
use crate::store::Stored;

/// Longest merchant name, in characters (after NFC).
pub const MAX_MERCHANT_NAME_CHARS: usize = 64;

/// Punctuation a merchant name may hold besides letters and digits.
const NAME_PUNCTUATION: [char; 4] = ['.', '-', '\'', '&'];
/// The zero-width non-joiner of Persian spelling ("کتاب‌فروشی").
const ZWNJ: char = '\u{200C}';

/// Why a merchant name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// Empty or blank after trimming.
    Empty,
    /// Longer than [`MAX_MERCHANT_NAME_CHARS`].
    TooLong,
    /// A character outside letters, digits, space, ZWNJ and `. - ' &`.
    Character,
    /// Two spaces in a row, or a ZWNJ not between two letters.
    Spacing,
    /// Letters of a script other than Arabic or Latin.
    Script,
    /// Letters or digits of more than one script (UTS #39 §5.1).
    MixedScript,
}

impl NameError {
    /// The stable code (docs/issuer.md, "Errors").
    pub fn code(self) -> &'static str {
        match self {
            Self::MixedScript => "mixed_script_merchant_name",
            _ => "invalid_merchant_name",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::Empty => "name must not be empty",
            Self::TooLong => "name must be at most 64 characters",
            Self::Character => {
                "name may hold only letters, digits, space, ZWNJ and . - ' & \
                 (no line breaks, brackets, quotation marks, invisible or direction characters)"
            }
            Self::Spacing => "name may not hold two spaces in a row or a ZWNJ outside a word",
            Self::Script => "name must be written in Persian (Arabic script) or Latin letters",
            Self::MixedScript => {
                "name mixes letters or digits of more than one script (UTS #39 mixed-script)"
            }
        }
    }
}

impl From<NameError> for ServiceError {
    fn from(e: NameError) -> Self {
        let field = match e {
            NameError::MixedScript => Field::MerchantNameScript,
            _ => Field::MerchantName,
        };
        ServiceError::invalid(field, e.message())
    }
}

/// Checks and normalises a merchant name: NFC, trimmed of spaces, then the
/// rules of this module's documentation.
///
/// # Errors
/// The first [`NameError`] that applies.
pub fn check_merchant_name(name: &str) -> Result<String, NameError> {
    let nfc: String = name.nfc().collect();
    let n = nfc.trim_matches(' ');
    if n.is_empty() {
        return Err(NameError::Empty);
    }
    if n.chars().count() > MAX_MERCHANT_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    let chars: Vec<char> = n.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let word = |c: char| c.is_alphanumeric() && c.identifier_allowed();
        if word(c) || NAME_PUNCTUATION.contains(&c) {
            continue;
        }
        match c {
            ' ' if chars.get(i + 1) != Some(&' ') => {}
            ' ' => return Err(NameError::Spacing),
            ZWNJ => {
                let before = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
                let after = chars.get(i + 1).copied();
                if !(before.is_some_and(word) && after.is_some_and(word)) {
                    return Err(NameError::Spacing);
                }
            }
            _ => return Err(NameError::Character),
        }
    }
    // UTS #39 §5.1: the resolved script set of the letters and digits must
    // not be empty (Common and Inherited characters, such as ASCII digits
    // and the ZWNJ, go with any script).
    if !n.is_single_script() {
        return Err(NameError::MixedScript);
    }
    let alien = chars.iter().any(|c| {
        c.is_alphanumeric()
            && !matches!(
                c.script(),
                Script::Arabic | Script::Latin | Script::Common | Script::Inherited
            )
    });
    if alien {
        return Err(NameError::Script);
    }
    Ok(n.to_owned())
}

/// `PUT /v1/merchants/{payee_id}` body.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MerchantRequest {
    /// The name Harim messages show for this payee.
    pub name: String,
}

/// A registered merchant, as `GET` and `PUT /v1/merchants/{payee_id}`
/// answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Merchant {
    /// The payee identifier bound into transaction PINs.
    pub payee_id: String,
    /// The registered name (NFC).
    pub name: String,
    /// When it was first registered, Unix seconds.
    pub created_at: u64,
    /// When its name was last set, Unix seconds.
    pub updated_at: u64,
}

/// A payee id from a path or body, normalised, or `invalid_payee`.
pub(crate) fn payee_id(raw: &str) -> Result<String, ServiceError> {
    pooya_protocol::pin::normalize_payee(raw)
        .map(str::to_owned)
        .map_err(|e| ServiceError::protocol(Field::Payee, &e))
}

impl Issuer {
    /// `PUT /v1/merchants/{payee_id}`: registers or renames a merchant.
    ///
    /// # Errors
    /// `invalid_payee`, `invalid_merchant_name`,
    /// `mixed_script_merchant_name`, or a storage failure.
    pub async fn put_merchant(
        &self,
        raw_id: &str,
        req: MerchantRequest,
    ) -> Result<(Stored, Merchant), ServiceError> {
        let id = payee_id(raw_id)?;
        let name = check_merchant_name(&req.name)?;
        let at = i64::try_from(self.now()).unwrap_or(i64::MAX);
        let (stored, merchant) = self.store.put_merchant(&id, &name, at).await?;
        tracing::info!(payee_id = %merchant.payee_id, ?stored, "merchant registered");
        Ok((stored, merchant))
    }

    /// `GET /v1/merchants/{payee_id}`.
    ///
    /// # Errors
    /// `invalid_payee`, `unknown_payee`, or a storage failure.
    pub async fn get_merchant(&self, raw_id: &str) -> Result<Merchant, ServiceError> {
        let id = payee_id(raw_id)?;
        self.store
            .merchant(&id)
            .await?
            .ok_or(ServiceError::UnknownPayee(PayeeAt::Path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_nfc_and_trimmed() {
        // "é" as e + U+0301 composes to U+00E9.
        assert_eq!(check_merchant_name(" Cafe\u{301} ").unwrap(), "Caf\u{e9}");
        for good in [
            "فروشگاه نمونه",
            "کتاب\u{200C}فروشی",
            "۲۴ ساعته",
            "فروشگاه 24",
            "Ali & Sons Co.",
            "O'Neil-Market",
            "Digikala",
        ] {
            assert_eq!(check_merchant_name(good).unwrap(), good, "{good:?}");
        }
    }

    #[test]
    fn refused_names_and_their_reasons() {
        use NameError::*;
        for (name, want) in [
            ("", Empty),
            ("   ", Empty),
            ("Shop\u{2028}x", Character),
            ("Shop\u{2029}x", Character),
            ("Shop\r\nx", Character),
            ("«Shop»", Character),
            ("Shop (1,000)", Character),
            ("Shop: 1000", Character),
            ("Shop\u{200B}", Character),
            ("Sh\u{00AD}op", Character),
            ("Sh\u{2060}op", Character),
            ("Sh\u{200D}op", Character),
            ("\u{202E}pohS", Character),
            ("\u{2067}pohS\u{2069}", Character),
            ("Sh\u{FEFF}op", Character),
            ("فروشگاه\u{061C}", Character),
            ("Shop\u{0007}", Character),
            ("Shop  24", Spacing),
            ("\u{200C}کتاب", Spacing),
            ("کتاب \u{200C}فروشی", Spacing),
            ("Digik\u{0430}la", MixedScript),
            ("دیجیkala", MixedScript),
            ("Shop ۲۴", MixedScript),
            ("Сбербанк", Script),
            ("銀行", Script),
        ] {
            assert_eq!(check_merchant_name(name), Err(want), "{name:?}");
        }
        assert_eq!(
            check_merchant_name(&"n".repeat(65)),
            Err(NameError::TooLong)
        );
        assert_eq!(check_merchant_name(&"n".repeat(64)).unwrap().len(), 64);
        assert_eq!(MixedScript.code(), "mixed_script_merchant_name");
        assert_eq!(Character.code(), "invalid_merchant_name");
    }
}
