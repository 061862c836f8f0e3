//! Transaction types and payment request URIs (docs/protocol.md, "Payment
//! request URIs"): what a payment page shows as a QR code so the phone can
//! show the customer what they are about to pay and make the PIN for
//! exactly that payment, with nothing typed by hand.
//!
//! `pooya:pay?amount=…&payee=…&name=…&type=…&expires=…` is a URI in the
//! sense of RFC 3986 §3 (scheme `pooya`, path `pay`, a query of
//! `name=value` pairs). Values are percent-encoded per RFC 3986 §2.1; the
//! parser is strict: every parameter exactly once, none unknown, decimal
//! numbers in canonical form, and a typed [`PaymentError`] with a stable
//! [`code`](PaymentError::code) for every refusal. [`PaymentRequest::to_uri`]
//! writes the one canonical form, and parsing it gives the same request.
//!
//! Pure: the expiry is checked against a time the caller passes
//! ([`PaymentRequest::check`]).

use core::fmt;
use core::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use unicode_normalization::is_nfc;

use crate::ProtocolError;
use crate::amount::{format_rials, format_rials_fa};
use crate::ids::normalize_device_label;
use crate::pin::normalize_payee;

/// The URI scheme (RFC 3986 §3.1; compared without regard to case).
pub const SCHEME: &str = "pooya";

/// The path of a payment request, version 1 of the grammar. A later
/// version with other parameters gets another path, so a version-1 parser
/// never half-understands it.
pub const PAY_PATH: &str = "pay";

/// Longest payment request URI the parser reads, in bytes. Every canonical
/// URI is shorter (at most 925 bytes: a 64-character name of 4-byte
/// characters, each byte percent-encoded), and a QR code holds it.
pub const MAX_URI_LEN: usize = 1024;

/// Longest payee name, in characters (the device-label bound,
/// [`crate::ids::DEVICE_LABEL_MAX_CHARS`]).
pub const MAX_PAYEE_NAME_CHARS: usize = crate::ids::DEVICE_LABEL_MAX_CHARS;

/// What [`PaymentRequest::to_uri`] percent-encodes: every byte except
/// RFC 3986 §2.3 unreserved characters (`ALPHA DIGIT - . _ ~`).
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The language of what the app shows.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// Persian (the default).
    #[default]
    Fa,
    /// English.
    En,
}

/// The type of a transaction (Central Bank of Iran rule of 1399/10/08: the
/// dynamic-PIN message names the transaction type, amount and payee).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxType {
    /// A purchase from a merchant (online shop, payment gateway).
    Purchase,
    /// A card-to-card transfer (کارت به کارت).
    Transfer,
    /// A bill payment (water, power, gas, phone; پرداخت قبض).
    Bill,
}

impl TxType {
    /// Every transaction type, in the order docs/protocol.md lists them.
    pub const ALL: [TxType; 3] = [TxType::Purchase, TxType::Transfer, TxType::Bill];

    /// The wire name: `purchase`, `transfer` or `bill` (the same as serde's).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Purchase => "purchase",
            Self::Transfer => "transfer",
            Self::Bill => "bill",
        }
    }

    /// Parses a wire name, exactly as [`as_str`](Self::as_str) writes it
    /// (lower case, no spaces).
    ///
    /// # Errors
    /// [`ProtocolError::InvalidField`] (`type`) for anything else.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == text)
            .ok_or(ProtocolError::InvalidField {
                field: "type",
                reason: "must be purchase, transfer or bill",
            })
    }

    /// The Persian name shown to the customer: خرید, کارت به کارت, پرداخت قبض.
    pub fn name_fa(self) -> &'static str {
        match self {
            Self::Purchase => "خرید",
            Self::Transfer => "کارت به کارت",
            Self::Bill => "پرداخت قبض",
        }
    }

    /// The English name shown to the customer: Purchase, Card-to-card
    /// transfer, Bill payment.
    pub fn name_en(self) -> &'static str {
        match self {
            Self::Purchase => "Purchase",
            Self::Transfer => "Card-to-card transfer",
            Self::Bill => "Bill payment",
        }
    }

    /// The name in `lang`.
    pub fn name(self, lang: Language) -> &'static str {
        match lang {
            Language::Fa => self.name_fa(),
            Language::En => self.name_en(),
        }
    }
}

impl FromStr for TxType {
    type Err = ProtocolError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Why a decimal number in a payment request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NumberError {
    /// No digits at all.
    #[error("empty")]
    Empty,
    /// A character other than an ASCII digit (signs, spaces, Persian
    /// digits, separators).
    #[error("only ASCII digits are allowed")]
    NotDigits,
    /// A leading zero (`0` alone is the only number that starts with 0).
    #[error("leading zero")]
    LeadingZero,
    /// More than `u64::MAX`.
    #[error("too large")]
    Overflow,
    /// Zero, where the number must be positive (the amount).
    #[error("must be greater than zero")]
    Zero,
}

impl NumberError {
    /// A stable code for the reason (docs/protocol.md, "Payment request
    /// URIs"; never renamed).
    pub fn code(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::NotDigits => "not_digits",
            Self::LeadingZero => "leading_zero",
            Self::Overflow => "overflow",
            Self::Zero => "zero",
        }
    }
}

/// Why a payment request was refused, by the parser, a constructor, or
/// [`PaymentRequest::check`].
///
/// Every variant has a stable [`code`](PaymentError::code); messages hold
/// no more of the input than a parameter's name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PaymentError {
    /// Not `pooya:pay?…` (another scheme, another path, or no query).
    #[error("not a payment request URI (pooya:pay?…)")]
    NotPaymentUri,
    /// Longer than [`MAX_URI_LEN`] bytes.
    #[error("payment request URI longer than {MAX_URI_LEN} bytes")]
    TooLong,
    /// A character RFC 3986 does not allow in a query value here (space,
    /// non-ASCII, `#`, a raw `+`), a `%` not followed by two hex digits, or
    /// percent-encoded bytes that are not UTF-8.
    #[error("invalid character or percent-encoding in the URI")]
    InvalidEncoding,
    /// A query part that is not `name=value`: empty (`&&`, a trailing `&`,
    /// an empty query), without `=`, or with a second `=`.
    #[error("query parts must be name=value")]
    MalformedParameter,
    /// A parameter name the grammar does not have.
    #[error("unknown parameter {0}")]
    UnknownParameter(String),
    /// A parameter given twice.
    #[error("parameter {0} given more than once")]
    DuplicateParameter(&'static str),
    /// A required parameter that is absent.
    #[error("parameter {0} is missing")]
    MissingParameter(&'static str),
    /// An amount that is not a canonical positive decimal number of Rials.
    #[error("invalid amount: {0}")]
    InvalidAmount(NumberError),
    /// An expiry that is not a canonical decimal number of Unix seconds.
    #[error("invalid expiry: {0}")]
    InvalidExpiry(NumberError),
    /// A payee id outside the grammar of [`normalize_payee`] (or with
    /// spaces around it).
    #[error("invalid payee: {0}")]
    InvalidPayee(&'static str),
    /// A payee name outside the rule of [`PayeeName::new`].
    #[error("invalid payee name: {0}")]
    InvalidPayeeName(&'static str),
    /// A transaction type other than `purchase`, `transfer`, `bill`.
    #[error("transaction type must be purchase, transfer or bill")]
    InvalidType,
    /// The request's expiry is not after the time of use.
    #[error("payment request expired at {expires_at} (now {now})")]
    Expired {
        /// The request's expiry, Unix seconds.
        expires_at: u64,
        /// The time it was checked at, Unix seconds.
        now: u64,
    },
}

impl PaymentError {
    /// A stable, machine-readable code (docs/protocol.md, "Payment request
    /// URIs"; never renamed).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotPaymentUri => "not_payment_uri",
            Self::TooLong => "uri_too_long",
            Self::InvalidEncoding => "invalid_encoding",
            Self::MalformedParameter => "malformed_parameter",
            Self::UnknownParameter(_) => "unknown_parameter",
            Self::DuplicateParameter(_) => "duplicate_parameter",
            Self::MissingParameter(_) => "missing_parameter",
            Self::InvalidAmount(_) => "invalid_amount",
            Self::InvalidExpiry(_) => "invalid_expiry",
            Self::InvalidPayee(_) => "invalid_payee",
            Self::InvalidPayeeName(_) => "invalid_payee_name",
            Self::InvalidType => "invalid_type",
            Self::Expired { .. } => "expired",
        }
    }
}

/// The payee's name as the payment page gives it: display only, never part
/// of what the PIN binds (the payee id is).
///
/// The rule is the device label's ([`normalize_device_label`]): 1 to
/// [`MAX_PAYEE_NAME_CHARS`] characters, each a letter or digit of any
/// script, a space, ZWNJ, ZWJ or one of `- _ . ' ’ + # /`, so no control,
/// format, bidirectional-override (UAX #9 §2) or line-break character can
/// reach the screen; in addition the name must already be trimmed and in
/// Unicode Normalization Form C (UAX #15), so one name has one encoding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PayeeName(String);

impl PayeeName {
    /// Checks and wraps a payee name.
    ///
    /// # Errors
    /// [`PaymentError::InvalidPayeeName`] saying what is wrong.
    pub fn new(name: &str) -> Result<Self, PaymentError> {
        let checked = match normalize_device_label(name) {
            Ok(checked) => checked,
            Err(ProtocolError::InvalidField { reason, .. }) => {
                return Err(PaymentError::InvalidPayeeName(reason));
            }
            Err(_) => return Err(PaymentError::InvalidPayeeName("invalid")),
        };
        if checked != name {
            return Err(PaymentError::InvalidPayeeName(
                "must not start or end with spaces",
            ));
        }
        if !is_nfc(name) {
            return Err(PaymentError::InvalidPayeeName(
                "must be in Unicode Normalization Form C",
            ));
        }
        Ok(Self(checked))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PayeeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The parameters, in canonical order.
#[derive(Clone, Copy)]
enum Param {
    Amount,
    Payee,
    Name,
    Type,
    Expires,
}

impl Param {
    const ALL: [Param; 5] = [
        Param::Amount,
        Param::Payee,
        Param::Name,
        Param::Type,
        Param::Expires,
    ];

    fn key(self) -> &'static str {
        match self {
            Self::Amount => "amount",
            Self::Payee => "payee",
            Self::Name => "name",
            Self::Type => "type",
            Self::Expires => "expires",
        }
    }
}

/// A payment request: what a payment page asks the customer to pay.
///
/// The fields are checked when built ([`new`](Self::new) or
/// [`parse`](Self::parse)), so every value has a canonical URI that parses
/// back to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PaymentRequest {
    amount: u64,
    payee: String,
    payee_name: PayeeName,
    tx_type: TxType,
    expires_at: u64,
}

impl PaymentRequest {
    /// Builds a request: `amount` in Rials (positive), the payee id (the
    /// grammar of [`normalize_payee`], without spaces around it), the
    /// payee's display name ([`PayeeName::new`]), the transaction type and
    /// the expiry in Unix seconds.
    ///
    /// # Errors
    /// [`PaymentError::InvalidAmount`] (zero),
    /// [`PaymentError::InvalidPayee`] or [`PaymentError::InvalidPayeeName`].
    pub fn new(
        amount: u64,
        payee: &str,
        payee_name: &str,
        tx_type: TxType,
        expires_at: u64,
    ) -> Result<Self, PaymentError> {
        if amount == 0 {
            return Err(PaymentError::InvalidAmount(NumberError::Zero));
        }
        Ok(Self {
            amount,
            payee: check_payee(payee)?,
            payee_name: PayeeName::new(payee_name)?,
            tx_type,
            expires_at,
        })
    }

    /// The amount in Rials.
    pub fn amount(&self) -> u64 {
        self.amount
    }

    /// The payee id (what the transaction-bound PIN binds).
    pub fn payee(&self) -> &str {
        &self.payee
    }

    /// The payee's display name.
    pub fn payee_name(&self) -> &PayeeName {
        &self.payee_name
    }

    /// The transaction type.
    pub fn tx_type(&self) -> TxType {
        self.tx_type
    }

    /// The expiry, Unix seconds: the request is good strictly before it.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// What a transaction-bound PIN for this request binds: its type,
    /// amount and payee id ([`crate::pin::transaction_question`]). The
    /// payee's display name and the expiry are not part of it.
    pub fn transaction(&self) -> crate::pin::Transaction<'_> {
        crate::pin::Transaction::new(self.tx_type, self.amount, &self.payee)
    }

    /// Parses a payment request URI (docs/protocol.md, "Payment request
    /// URIs", the ABNF there). Parameters may come in any order; each must
    /// appear exactly once.
    ///
    /// # Errors
    /// A [`PaymentError`] for the first thing wrong, in the order: length,
    /// scheme and path, characters and percent-encoding, then each query
    /// part from left to right (shape, name, repetition, value), then the
    /// missing parameters. The expiry is not compared with any clock here:
    /// that is [`check`](Self::check).
    pub fn parse(uri: &str) -> Result<Self, PaymentError> {
        if uri.len() > MAX_URI_LEN {
            return Err(PaymentError::TooLong);
        }
        let (scheme, rest) = uri.split_once(':').ok_or(PaymentError::NotPaymentUri)?;
        if !scheme.eq_ignore_ascii_case(SCHEME) {
            return Err(PaymentError::NotPaymentUri);
        }
        let query = rest
            .strip_prefix(PAY_PATH)
            .and_then(|r| r.strip_prefix('?'))
            .ok_or(PaymentError::NotPaymentUri)?;
        check_query_chars(query)?;

        let mut seen = [false; Param::ALL.len()];
        let mut amount = None;
        let mut payee = None;
        let mut name = None;
        let mut tx_type = None;
        let mut expires = None;
        for part in query.split('&') {
            let (key, value) = part
                .split_once('=')
                .ok_or(PaymentError::MalformedParameter)?;
            if key.is_empty() || value.contains('=') {
                return Err(PaymentError::MalformedParameter);
            }
            let param = Param::ALL
                .into_iter()
                .find(|p| p.key() == key)
                .ok_or_else(|| PaymentError::UnknownParameter(key.to_owned()))?;
            if core::mem::replace(&mut seen[param as usize], true) {
                return Err(PaymentError::DuplicateParameter(param.key()));
            }
            // Each value is checked as it comes, so the error reported is
            // the leftmost one.
            let value = decode(value)?;
            match param {
                Param::Amount => amount = Some(parse_amount_param(&value)?),
                Param::Payee => payee = Some(check_payee(&value)?),
                Param::Name => name = Some(PayeeName::new(&value)?),
                Param::Type => tx_type = Some(parse_type(&value)?),
                Param::Expires => {
                    expires = Some(canonical_u64(&value).map_err(PaymentError::InvalidExpiry)?);
                }
            }
        }
        let missing = |p: Param| PaymentError::MissingParameter(p.key());
        // Fields are evaluated in order: the first missing one in the
        // canonical order is reported.
        Ok(Self {
            amount: amount.ok_or_else(|| missing(Param::Amount))?,
            payee: payee.ok_or_else(|| missing(Param::Payee))?,
            payee_name: name.ok_or_else(|| missing(Param::Name))?,
            tx_type: tx_type.ok_or_else(|| missing(Param::Type))?,
            expires_at: expires.ok_or_else(|| missing(Param::Expires))?,
        })
    }

    /// The canonical URI: lower-case scheme, the parameters in the order
    /// `amount payee name type expires`, every byte of a value that is not
    /// RFC 3986 §2.3 unreserved percent-encoded with upper-case hex
    /// (RFC 3986 §2.1).
    pub fn to_uri(&self) -> String {
        let enc = |s: &str| utf8_percent_encode(s, ENCODE).to_string();
        format!(
            "{SCHEME}:{PAY_PATH}?amount={}&payee={}&name={}&type={}&expires={}",
            self.amount,
            enc(&self.payee),
            enc(self.payee_name.as_str()),
            self.tx_type.as_str(),
            self.expires_at,
        )
    }

    /// Checks the request at the time of use, `now` (Unix seconds, the
    /// bank's time as the phone knows it), and returns the seconds left.
    ///
    /// # Errors
    /// [`PaymentError::Expired`] when `now` is at or after the expiry.
    pub fn check(&self, now: u64) -> Result<u64, PaymentError> {
        match self.expires_at.checked_sub(now) {
            Some(left) if left > 0 => Ok(left),
            _ => Err(PaymentError::Expired {
                expires_at: self.expires_at,
                now,
            }),
        }
    }

    /// What the app shows for this request at `now`, in `lang`.
    ///
    /// # Errors
    /// [`PaymentError::Expired`] (see [`check`](Self::check)): an expired
    /// request is not shown as payable.
    pub fn display(&self, lang: Language, now: u64) -> Result<PaymentView, PaymentError> {
        let seconds_left = self.check(now)?;
        let amount_latin = format_rials(self.amount);
        let amount_fa = format_rials_fa(self.amount);
        let amount_text = match lang {
            Language::Fa => format!("{amount_fa} ریال"),
            Language::En => format!("{amount_latin} Rials"),
        };
        let time_left = format!("{}:{:02}", seconds_left / 60, seconds_left % 60);
        let time_left = match lang {
            Language::Fa => persian_digits(&time_left),
            Language::En => time_left,
        };
        Ok(PaymentView {
            amount: self.amount,
            amount_latin,
            amount_fa,
            amount_text,
            payee: self.payee.clone(),
            payee_name: self.payee_name.as_str().to_owned(),
            tx_type: self.tx_type,
            tx_type_name: self.tx_type.name(lang),
            seconds_left,
            time_left,
        })
    }
}

impl FromStr for PaymentRequest {
    type Err = PaymentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// What the app shows for a payment request ([`PaymentRequest::display`]).
///
/// The payee name is right-to-left text when Persian; the host shows it in
/// its own bidi isolate (UAX #9 §2.7, FSI … PDI) beside the left-to-right
/// payee id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentView {
    /// The amount in Rials.
    pub amount: u64,
    /// The amount with ASCII digits and `,` separators: `1,250,000`.
    pub amount_latin: String,
    /// The amount with Persian digits and `٬` separators: `۱٬۲۵۰٬۰۰۰`.
    pub amount_fa: String,
    /// The amount with its unit in the chosen language: `۱٬۲۵۰٬۰۰۰ ریال`,
    /// `1,250,000 Rials`.
    pub amount_text: String,
    /// The payee id.
    pub payee: String,
    /// The payee's display name, as the page gave it.
    pub payee_name: String,
    /// The transaction type.
    pub tx_type: TxType,
    /// The transaction type's name in the chosen language.
    pub tx_type_name: &'static str,
    /// Seconds until the request expires (at least 1).
    pub seconds_left: u64,
    /// The time left as minutes:seconds in the chosen language's digits:
    /// `۴:۵۹`, `4:59`.
    pub time_left: String,
}

/// ASCII digits to Persian (U+06F0–U+06F9); everything else unchanged.
fn persian_digits(text: &str) -> String {
    text.chars()
        .map(|c| {
            c.to_digit(10)
                .and_then(|d| char::from_u32(0x06F0 + d))
                .unwrap_or(c)
        })
        .collect()
}

fn check_payee(payee: &str) -> Result<String, PaymentError> {
    match normalize_payee(payee) {
        Ok(p) if p == payee => Ok(p.to_owned()),
        Ok(_) => Err(PaymentError::InvalidPayee(
            "must not start or end with spaces",
        )),
        Err(ProtocolError::InvalidPayee(reason)) => Err(PaymentError::InvalidPayee(reason)),
        Err(_) => Err(PaymentError::InvalidPayee("invalid")),
    }
}

fn parse_type(text: &str) -> Result<TxType, PaymentError> {
    TxType::parse(text).map_err(|_| PaymentError::InvalidType)
}

fn parse_amount_param(text: &str) -> Result<u64, PaymentError> {
    match canonical_u64(text) {
        Ok(0) => Err(PaymentError::InvalidAmount(NumberError::Zero)),
        Ok(n) => Ok(n),
        Err(e) => Err(PaymentError::InvalidAmount(e)),
    }
}

/// A canonical decimal number: ASCII digits, no sign, no leading zero
/// (except `0` itself), at most `u64::MAX`.
fn canonical_u64(text: &str) -> Result<u64, NumberError> {
    if text.is_empty() {
        return Err(NumberError::Empty);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NumberError::NotDigits);
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(NumberError::LeadingZero);
    }
    text.parse::<u64>().map_err(|_| NumberError::Overflow)
}

/// Whether `b` may stand unencoded in a value: RFC 3986 §3.4 `query`
/// characters except the delimiters `&` and `=` and the `+` that HTML form
/// encoding reads as a space.
fn is_value_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b','
                | b';'
                | b':'
                | b'@'
                | b'/'
                | b'?'
        )
}

/// Every byte of the query is a value byte, `&`, `=`, or a `%` with two hex
/// digits (RFC 3986 §2.1).
fn check_query_chars(query: &str) -> Result<(), PaymentError> {
    let bytes = query.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return Err(PaymentError::InvalidEncoding);
            }
            i += 3;
        } else if is_value_byte(b) || b == b'&' || b == b'=' {
            i += 1;
        } else {
            return Err(PaymentError::InvalidEncoding);
        }
    }
    Ok(())
}

/// Percent-decodes a value already checked by [`check_query_chars`]; the
/// bytes must be UTF-8.
fn decode(value: &str) -> Result<String, PaymentError> {
    percent_decode_str(value)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| PaymentError::InvalidEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_type_names_and_wire_form() {
        for t in TxType::ALL {
            assert_eq!(TxType::parse(t.as_str()), Ok(t));
            assert_eq!(t.as_str().parse::<TxType>(), Ok(t));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert_eq!(serde_json::from_str::<TxType>(&json).unwrap(), t);
        }
        assert_eq!(TxType::Transfer.name(Language::Fa), "کارت به کارت");
        assert_eq!(TxType::Bill.name(Language::Fa), "پرداخت قبض");
        assert_eq!(TxType::Purchase.name(Language::Fa), "خرید");
        assert_eq!(TxType::Purchase.name(Language::En), "Purchase");
        for bad in ["Purchase", " bill", "card_to_card", ""] {
            assert_eq!(TxType::parse(bad).unwrap_err().code(), "invalid_field");
        }
        assert!(serde_json::from_str::<TxType>("\"Bill\"").is_err());
    }

    #[test]
    fn canonical_numbers() {
        assert_eq!(canonical_u64("0"), Ok(0));
        assert_eq!(canonical_u64("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(
            canonical_u64("18446744073709551616"),
            Err(NumberError::Overflow)
        );
        assert_eq!(
            canonical_u64("99999999999999999999999"),
            Err(NumberError::Overflow)
        );
        assert_eq!(canonical_u64("007"), Err(NumberError::LeadingZero));
        assert_eq!(canonical_u64("+7"), Err(NumberError::NotDigits));
        assert_eq!(canonical_u64("۷"), Err(NumberError::NotDigits));
        assert_eq!(canonical_u64(""), Err(NumberError::Empty));
    }

    #[test]
    fn persian_digits_only_touch_ascii_digits() {
        assert_eq!(persian_digits("4:05"), "۴:۰۵");
        assert_eq!(persian_digits("۴a"), "۴a");
    }
}
