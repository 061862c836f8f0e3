//! Standard one-time-password accounts (the customer's ordinary 2FA
//! accounts, beside the bank cards): strict parsers of the two forms they
//! arrive in, and codes.
//!
//! - `otpauth://TYPE/LABEL?PARAMETERS`, Google's Key Uri Format (the de
//!   facto standard every authenticator reads): `TYPE` is `totp`
//!   (RFC 6238) or `hotp` (RFC 4226); `LABEL` is `issuer:account` or
//!   `account`, percent-encoded (RFC 3986 §2.1); parameters `secret`
//!   (required, base32 per RFC 4648 §6, padding optional, either case),
//!   `issuer`, `algorithm` (`SHA1` default, `SHA256`, `SHA512`), `digits`
//!   (6 default, 7, 8), `period` (TOTP, 30 default) and `counter` (HOTP,
//!   required). Unknown parameters (`image`, …) are ignored; a known one
//!   given twice, a malformed escape, a label issuer that differs from the
//!   `issuer` parameter, or a base32 secret that is not canonical (bad
//!   length, non-zero trailing bits) is refused.
//! - `otpauth-migration://offline?data=…`, Google Authenticator's export:
//!   standard base64 (RFC 4648 §4, padded) of a protobuf `MigrationPayload`
//!   (repeated `OtpParameters` in field 1: secret 1, name 2, issuer 3,
//!   algorithm 4, digits 5, type 6, counter 7), decoded here by hand with
//!   the protobuf wire format's rules (varints of at most 10 bytes,
//!   lengths inside the buffer, groups refused, unknown fields skipped).
//!
//! Secrets shorter than 80 bits are refused. RFC 4226 §4 (R6) asks for at
//! least 128 bits, but 80-bit secrets (16 base32 characters) are what many
//! services still hand out, and the customer cannot change them.

use core::fmt;

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::{HashAlgorithm, ProtocolError, SecretBytes};

/// Shortest secret accepted, in bytes (80 bits).
pub const MIN_SECRET_LEN: usize = 10;
/// Longest secret accepted, in bytes.
pub const MAX_SECRET_LEN: usize = 128;
/// Longest issuer or account name, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Longest TOTP period accepted, in seconds.
pub const MAX_PERIOD_SECS: u64 = 3600;
/// Longest URI accepted, in bytes (a migration QR code holds far less).
pub const MAX_URI_LEN: usize = 64 * 1024;
/// Most accounts in one migration payload.
pub const MAX_MIGRATION_ACCOUNTS: usize = 1000;

/// How an account's moving factor moves.
#[cfg_attr(
    feature = "uniffi",
    derive(uniffi::Enum),
    uniffi(name = "OtpAccountKind")
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtpKind {
    /// TOTP (RFC 6238): the factor is the time step of `period` seconds.
    Totp {
        /// The time step, seconds.
        period: u64,
    },
    /// HOTP (RFC 4226): the factor is a counter, advanced at each code.
    Hotp {
        /// The counter of the next code.
        counter: u64,
    },
}

/// One standard OTP account. The secret is wiped on drop; `Debug` leaves
/// it out.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpAccount {
    /// TOTP or HOTP, with its period or counter.
    pub kind: OtpKind,
    /// The service (`Example`); may be empty.
    pub issuer: String,
    /// The account at that service (`alice@example.com`); never empty.
    pub name: String,
    /// The HMAC hash.
    pub algorithm: HashAlgorithm,
    /// Digits of a code, 6–8.
    pub digits: u32,
    /// The shared secret.
    pub secret: SecretBytes,
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.expose_secret().ct_eq(other.expose_secret()).into()
    }
}

impl Eq for SecretBytes {}

impl fmt::Debug for OtpAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtpAccount")
            .field("kind", &self.kind)
            .field("issuer", &self.issuer)
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .finish_non_exhaustive()
    }
}

fn bad(field: &'static str, reason: &'static str) -> ProtocolError {
    ProtocolError::InvalidField { field, reason }
}

/// Decodes RFC 3986 percent escapes strictly: `%` must be followed by two
/// hex digits and the result must be UTF-8 without control characters.
fn percent_decode(field: &'static str, text: &str) -> Result<String, ProtocolError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| core::str::from_utf8(h).ok())
                .and_then(|h| {
                    u8::from_str_radix(h, 16)
                        .ok()
                        .filter(|_| !h.starts_with('+'))
                })
                .ok_or_else(|| bad(field, "malformed percent escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out).map_err(|_| bad(field, "not UTF-8"))?;
    if s.chars().any(char::is_control) {
        return Err(bad(field, "control character"));
    }
    Ok(s)
}

fn check_name(field: &'static str, s: &str) -> Result<(), ProtocolError> {
    if s.chars().any(char::is_control) {
        return Err(bad(field, "control character"));
    }
    if s.chars().count() > MAX_NAME_CHARS {
        return Err(bad(field, "too long"));
    }
    Ok(())
}

/// Decodes a base32 secret (RFC 4648 §6) strictly: letters of either case
/// and `2`–`7`, padding optional but correct when present, a length a
/// whole number of bytes encodes to, and zero trailing bits (so one secret
/// has one spelling). Spaces, common in secrets typed by hand, are not
/// accepted here: the caller removes them if it wants to.
///
/// # Errors
/// [`ProtocolError::InvalidField`] (`secret`).
pub fn decode_base32(text: &str) -> Result<SecretBytes, ProtocolError> {
    let upper = Zeroizing::new(text.to_ascii_uppercase());
    let unpadded = upper.trim_end_matches('=');
    let pad = upper.len() - unpadded.len();
    if pad > 0 && (!upper.len().is_multiple_of(8) || pad > 6) {
        return Err(bad("secret", "bad base32 padding"));
    }
    if !matches!(unpadded.len() % 8, 0 | 2 | 4 | 5 | 7) {
        return Err(bad("secret", "bad base32 length"));
    }
    if !unpadded
        .bytes()
        .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    {
        return Err(bad("secret", "not base32"));
    }
    let bytes = Zeroizing::new(
        base32::decode(base32::Alphabet::Rfc4648 { padding: false }, unpadded)
            .ok_or_else(|| bad("secret", "not base32"))?,
    );
    let again = Zeroizing::new(base32::encode(
        base32::Alphabet::Rfc4648 { padding: false },
        &bytes,
    ));
    if *again != unpadded {
        return Err(bad("secret", "non-zero trailing bits"));
    }
    if bytes.len() < MIN_SECRET_LEN {
        return Err(bad("secret", "shorter than 80 bits"));
    }
    if bytes.len() > MAX_SECRET_LEN {
        return Err(bad("secret", "too long"));
    }
    Ok(SecretBytes::new(bytes.to_vec()))
}

fn parse_algorithm(s: &str) -> Result<HashAlgorithm, ProtocolError> {
    match s.to_ascii_uppercase().as_str() {
        "SHA1" => Ok(HashAlgorithm::Sha1),
        "SHA256" => Ok(HashAlgorithm::Sha256),
        "SHA512" => Ok(HashAlgorithm::Sha512),
        _ => Err(bad("algorithm", "must be SHA1, SHA256 or SHA512")),
    }
}

fn algorithm_name(a: HashAlgorithm) -> &'static str {
    match a {
        HashAlgorithm::Sha1 => "SHA1",
        HashAlgorithm::Sha256 => "SHA256",
        HashAlgorithm::Sha512 => "SHA512",
    }
}

fn parse_decimal(field: &'static str, s: &str) -> Result<u64, ProtocolError> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(field, "not a decimal number"));
    }
    s.parse().map_err(|_| bad(field, "out of range"))
}

impl OtpAccount {
    /// Checks the fields every account must satisfy, however it arrived.
    ///
    /// # Errors
    /// [`ProtocolError::InvalidField`], [`ProtocolError::InvalidDigits`].
    pub fn validate(&self) -> Result<(), ProtocolError> {
        if self.name.trim().is_empty() {
            return Err(bad("name", "empty"));
        }
        check_name("name", &self.name)?;
        check_name("issuer", &self.issuer)?;
        if self.issuer.contains(':') {
            return Err(bad("issuer", "must not contain ':'"));
        }
        if !(6..=8).contains(&self.digits) {
            return Err(ProtocolError::InvalidDigits(self.digits));
        }
        let len = self.secret.expose_secret().len();
        if len < MIN_SECRET_LEN {
            return Err(bad("secret", "shorter than 80 bits"));
        }
        if len > MAX_SECRET_LEN {
            return Err(bad("secret", "too long"));
        }
        if let OtpKind::Totp { period } = self.kind
            && !(1..=MAX_PERIOD_SECS).contains(&period)
        {
            return Err(bad("period", "must be 1 to 3600 seconds"));
        }
        Ok(())
    }

    /// Parses an `otpauth://totp/…` or `otpauth://hotp/…` URI (see the
    /// module documentation for the grammar).
    ///
    /// # Errors
    /// [`ProtocolError::InvalidField`] naming the part refused,
    /// [`ProtocolError::InvalidDigits`].
    pub fn from_uri(uri: &str) -> Result<Self, ProtocolError> {
        if uri.len() > MAX_URI_LEN {
            return Err(bad("uri", "too long"));
        }
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| bad("uri", "not an otpauth URI"))?;
        if !scheme.eq_ignore_ascii_case("otpauth") {
            return Err(bad("uri", "not an otpauth URI"));
        }
        if rest.contains('#') {
            return Err(bad("uri", "must not have a fragment"));
        }
        let (path, query) = rest
            .split_once('?')
            .ok_or_else(|| bad("secret", "missing"))?;
        let (kind, label) = path
            .split_once('/')
            .ok_or_else(|| bad("label", "missing"))?;
        let hotp = if kind.eq_ignore_ascii_case("totp") {
            false
        } else if kind.eq_ignore_ascii_case("hotp") {
            true
        } else {
            return Err(bad("type", "must be totp or hotp"));
        };
        if label.contains('/') {
            return Err(bad("label", "must not contain '/'"));
        }
        let label = percent_decode("label", label)?;
        check_name("label", &label)?;
        let (label_issuer, name) = match label.split_once(':') {
            Some((i, n)) => (Some(i.to_owned()), n),
            None => (None, label.as_str()),
        };
        // The grammar allows spaces after the colon.
        let name = name.trim_start_matches(' ').to_owned();
        let mut secret = None;
        let mut issuer = None;
        let mut algorithm = None;
        let mut digits = None;
        let mut period = None;
        let mut counter = None;
        for pair in query.split('&') {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| bad("uri", "parameter without '='"))?;
            let slot = match k {
                "secret" => &mut secret,
                "issuer" => &mut issuer,
                "algorithm" => &mut algorithm,
                "digits" => &mut digits,
                "period" => &mut period,
                "counter" => &mut counter,
                _ => continue,
            };
            if slot.is_some() {
                return Err(bad("uri", "a parameter given twice"));
            }
            *slot = Some(Zeroizing::new(percent_decode("uri", v)?));
        }
        let secret = decode_base32(&secret.ok_or_else(|| bad("secret", "missing"))?)?;
        let issuer = match (label_issuer, issuer) {
            (Some(a), Some(b)) if a != *b => {
                return Err(bad("issuer", "label and parameter differ"));
            }
            (Some(a), _) => a,
            (None, Some(b)) => b.to_string(),
            (None, None) => String::new(),
        };
        let algorithm = algorithm
            .map(|a| parse_algorithm(&a))
            .transpose()?
            .unwrap_or(HashAlgorithm::Sha1);
        let digits = match digits {
            Some(d) => u32::try_from(parse_decimal("digits", &d)?)
                .map_err(|_| bad("digits", "out of range"))?,
            None => 6,
        };
        let kind = if hotp {
            if period.is_some() {
                return Err(bad("period", "not for hotp"));
            }
            OtpKind::Hotp {
                counter: parse_decimal(
                    "counter",
                    &counter.ok_or_else(|| bad("counter", "missing"))?,
                )?,
            }
        } else {
            if counter.is_some() {
                return Err(bad("counter", "not for totp"));
            }
            OtpKind::Totp {
                period: period
                    .map(|p| parse_decimal("period", &p))
                    .transpose()?
                    .unwrap_or(30),
            }
        };
        let account = Self {
            kind,
            issuer,
            name,
            algorithm,
            digits,
            secret,
        };
        account.validate()?;
        Ok(account)
    }

    /// The account as an `otpauth://` URI, every parameter explicit
    /// (what [`OtpAccount::from_uri`] reads back to the same account). It
    /// holds the secret: wiped on drop.
    pub fn to_uri(&self) -> Zeroizing<String> {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let secret = Zeroizing::new(base32::encode(
            base32::Alphabet::Rfc4648 { padding: false },
            self.secret.expose_secret(),
        ));
        let label = if self.issuer.is_empty() {
            enc(&self.name)
        } else {
            format!("{}:{}", enc(&self.issuer), enc(&self.name))
        };
        let (kind, factor) = match self.kind {
            OtpKind::Totp { period } => ("totp", format!("period={period}")),
            OtpKind::Hotp { counter } => ("hotp", format!("counter={counter}")),
        };
        let issuer = if self.issuer.is_empty() {
            String::new()
        } else {
            format!("&issuer={}", enc(&self.issuer))
        };
        Zeroizing::new(format!(
            "otpauth://{kind}/{label}?secret={}{issuer}&algorithm={}&digits={}&{factor}",
            secret.as_str(),
            algorithm_name(self.algorithm),
            self.digits
        ))
    }

    /// Parses a Google Authenticator export,
    /// `otpauth-migration://offline?data=…` (see the module
    /// documentation). Every account in it must be valid, or none is
    /// returned.
    ///
    /// # Errors
    /// [`ProtocolError::InvalidField`] (`migration` for the wrapping and
    /// the protobuf, or the account field refused),
    /// [`ProtocolError::InvalidDigits`].
    pub fn from_migration_uri(uri: &str) -> Result<Vec<Self>, ProtocolError> {
        if uri.len() > MAX_URI_LEN {
            return Err(bad("migration", "too long"));
        }
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| bad("migration", "not an otpauth-migration URI"))?;
        if !scheme.eq_ignore_ascii_case("otpauth-migration") {
            return Err(bad("migration", "not an otpauth-migration URI"));
        }
        let data = rest
            .strip_prefix("offline?data=")
            .ok_or_else(|| bad("migration", "must be offline?data=…"))?;
        if data.contains(['&', '#']) {
            return Err(bad("migration", "unexpected parameter"));
        }
        let data = Zeroizing::new(percent_decode("migration", data)?);
        let payload = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(data.as_bytes())
                .map_err(|_| bad("migration", "not base64"))?,
        );
        decode_migration_payload(&payload)
    }
}

/// Decodes a protobuf `MigrationPayload` (the bytes inside an
/// `otpauth-migration` URI) into accounts.
///
/// # Errors
/// As [`OtpAccount::from_migration_uri`].
pub fn decode_migration_payload(payload: &[u8]) -> Result<Vec<OtpAccount>, ProtocolError> {
    let mut out = Vec::new();
    let mut r = Reader(payload);
    while let Some((field, value)) = r.next_field()? {
        if field == 1 {
            let Value::Bytes(bytes) = value else {
                return Err(bad("migration", "wrong wire type"));
            };
            if out.len() == MAX_MIGRATION_ACCOUNTS {
                return Err(bad("migration", "too many accounts"));
            }
            out.push(decode_otp_parameters(bytes)?);
        }
    }
    if out.is_empty() {
        return Err(bad("migration", "no accounts"));
    }
    Ok(out)
}

fn decode_otp_parameters(bytes: &[u8]) -> Result<OtpAccount, ProtocolError> {
    let mut secret = None;
    let mut name = String::new();
    let mut issuer = String::new();
    let (mut algorithm, mut digits, mut kind, mut counter) = (0u64, 0u64, 0u64, 0u64);
    let mut r = Reader(bytes);
    let text = |b: &[u8], field| {
        core::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| bad(field, "not UTF-8"))
    };
    while let Some((field, value)) = r.next_field()? {
        match (field, value) {
            (1, Value::Bytes(b)) => secret = Some(SecretBytes::new(b.to_vec())),
            (2, Value::Bytes(b)) => name = text(b, "name")?,
            (3, Value::Bytes(b)) => issuer = text(b, "issuer")?,
            (4, Value::Varint(v)) => algorithm = v,
            (5, Value::Varint(v)) => digits = v,
            (6, Value::Varint(v)) => kind = v,
            (7, Value::Varint(v)) => counter = v,
            (1..=7, _) => return Err(bad("migration", "wrong wire type")),
            _ => {}
        }
    }
    let algorithm = match algorithm {
        0 | 1 => HashAlgorithm::Sha1,
        2 => HashAlgorithm::Sha256,
        3 => HashAlgorithm::Sha512,
        _ => return Err(bad("algorithm", "must be SHA1, SHA256 or SHA512")),
    };
    let digits = match digits {
        0 | 1 => 6,
        2 => 8,
        _ => return Err(bad("digits", "must be 6 or 8")),
    };
    let kind = match kind {
        1 => OtpKind::Hotp { counter },
        2 => OtpKind::Totp { period: 30 },
        _ => return Err(bad("type", "must be totp or hotp")),
    };
    // Google writes the label ("Issuer:account") as the name.
    if !issuer.is_empty()
        && let Some(rest) = name.strip_prefix(issuer.as_str())
        && let Some(rest) = rest.strip_prefix(':')
    {
        name = rest.trim_start_matches(' ').to_owned();
    }
    let account = OtpAccount {
        kind,
        issuer,
        name,
        algorithm,
        digits,
        secret: secret.ok_or_else(|| bad("secret", "missing"))?,
    };
    account.validate()?;
    Ok(account)
}

/// A protobuf field's value.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// A reader of the protobuf wire format
/// (protobuf.dev/programming-guides/encoding).
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ProtocolError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let (&b, rest) = self
                .0
                .split_first()
                .ok_or_else(|| bad("migration", "truncated varint"))?;
            self.0 = rest;
            if i == 9 && b > 1 {
                return Err(bad("migration", "varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("migration", "varint too long"))
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], ProtocolError> {
        let n = usize::try_from(n).map_err(|_| bad("migration", "truncated field"))?;
        if n > self.0.len() {
            return Err(bad("migration", "truncated field"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>, ProtocolError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 {
            return Err(bad("migration", "field number 0"));
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let n = self.varint()?;
                Value::Bytes(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            _ => return Err(bad("migration", "unsupported wire type")),
        };
        Ok(Some((field, value)))
    }
}

/// Encodes accounts as a protobuf `MigrationPayload` (version 1, one
/// batch): the inverse of [`decode_migration_payload`], for tests and for
/// moving accounts to another authenticator. Periods other than 30 s and
/// 7-digit codes have no encoding there and are refused.
///
/// # Errors
/// [`ProtocolError::InvalidField`] for an account the format cannot hold.
pub fn encode_migration_payload(accounts: &[OtpAccount]) -> Result<Vec<u8>, ProtocolError> {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
        varint(out, field << 3 | 2);
        varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }
    fn number(out: &mut Vec<u8>, field: u64, v: u64) {
        varint(out, field << 3);
        varint(out, v);
    }
    let mut out = Vec::new();
    for a in accounts {
        let mut p = Zeroizing::new(Vec::new());
        bytes(&mut p, 1, a.secret.expose_secret());
        bytes(&mut p, 2, a.name.as_bytes());
        bytes(&mut p, 3, a.issuer.as_bytes());
        let alg = match a.algorithm {
            HashAlgorithm::Sha1 => 1,
            HashAlgorithm::Sha256 => 2,
            HashAlgorithm::Sha512 => 3,
        };
        number(&mut p, 4, alg);
        let digits = match a.digits {
            6 => 1,
            8 => 2,
            _ => return Err(bad("digits", "must be 6 or 8 in a migration payload")),
        };
        number(&mut p, 5, digits);
        match a.kind {
            OtpKind::Hotp { counter } => {
                number(&mut p, 6, 1);
                number(&mut p, 7, counter);
            }
            OtpKind::Totp { period: 30 } => number(&mut p, 6, 2),
            OtpKind::Totp { .. } => {
                return Err(bad("period", "must be 30 s in a migration payload"));
            }
        }
        bytes(&mut out, 1, &p);
    }
    number(&mut out, 2, 1);
    number(&mut out, 3, 1);
    number(&mut out, 4, 0);
    Ok(out)
}

/// A code of a standard account and when it stops being the current one.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode {
    /// The code, ASCII digits, leading zeros kept.
    pub code: Zeroizing<String>,
    /// For TOTP: seconds until the next step (at least 1); `None` for HOTP.
    pub seconds_left: Option<u64>,
    /// For TOTP: the first second after the code's step.
    pub valid_until: Option<u64>,
    /// For HOTP: the counter the code was made with.
    pub counter: Option<u64>,
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtpCode")
            .field("seconds_left", &self.seconds_left)
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl OtpAccount {
    /// The code at `unix_time` (TOTP, RFC 6238 §4, through `totp-rs`) or
    /// for the current counter (HOTP, RFC 4226 §5.3; the caller advances
    /// the counter). Pure: the time is an argument.
    ///
    /// # Errors
    /// [`ProtocolError::InvalidField`], [`ProtocolError::InvalidDigits`]
    /// for an account that fails [`OtpAccount::validate`].
    pub fn code_at(&self, unix_time: u64) -> Result<OtpCode, ProtocolError> {
        self.validate()?;
        match self.kind {
            OtpKind::Totp { period } => {
                let algorithm = match self.algorithm {
                    HashAlgorithm::Sha1 => totp_rs::Algorithm::SHA1,
                    HashAlgorithm::Sha256 => totp_rs::Algorithm::SHA256,
                    HashAlgorithm::Sha512 => totp_rs::Algorithm::SHA512,
                };
                let digits = u8::try_from(self.digits)
                    .map_err(|_| ProtocolError::InvalidDigits(self.digits))?;
                // `validate` did the checks `build` would (digits 6–8, a
                // non-zero step); `build` itself also wants 128-bit secrets,
                // which 80-bit accounts in the field do not have.
                let totp = totp_rs::Builder::new()
                    .with_algorithm(algorithm)
                    .with_digits(digits)
                    .with_step_duration(period)
                    .with_skew(0)
                    .with_secret(self.secret.expose_secret())
                    .build_noncompliant();
                let code = Zeroizing::new(totp.generate(unix_time).to_string());
                let valid_until = (unix_time / period + 1).saturating_mul(period);
                Ok(OtpCode {
                    code,
                    seconds_left: Some(valid_until - unix_time),
                    valid_until: Some(valid_until),
                    counter: None,
                })
            }
            OtpKind::Hotp { counter } => Ok(OtpCode {
                code: Zeroizing::new(crate::hotp(
                    self.secret.expose_secret(),
                    counter,
                    self.digits,
                    self.algorithm,
                )?),
                seconds_left: None,
                valid_until: None,
                counter: Some(counter),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    /// RFC 4226 Appendix D's secret, "12345678901234567890", in base32.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    fn code(uri: &str, t: u64) -> String {
        OtpAccount::from_uri(uri)
            .unwrap()
            .code_at(t)
            .unwrap()
            .code
            .to_string()
    }

    #[test]
    fn rfc_vectors_through_uris() {
        // RFC 6238 Appendix B (SHA1, 8 digits) and RFC 4226 Appendix D.
        let t = format!("otpauth://totp/x?secret={RFC_SECRET}&digits=8");
        assert_eq!(code(&t, 59), "94287082");
        assert_eq!(code(&t, 1_111_111_109), "07081804");
        assert_eq!(code(&t, 20_000_000_000), "65353130");
        for (c, want) in [(0, "755224"), (1, "287082"), (9, "520489")] {
            let h = format!("otpauth://hotp/x?secret={RFC_SECRET}&counter={c}");
            assert_eq!(code(&h, 0), want);
        }
    }

    #[test]
    fn seconds_left() {
        let a = OtpAccount::from_uri(&format!("otpauth://totp/x?secret={RFC_SECRET}")).unwrap();
        let c = a.code_at(1_800_000_010).unwrap();
        assert_eq!(c.seconds_left, Some(20));
        assert_eq!(c.valid_until, Some(1_800_000_030));
    }

    #[test]
    fn a_full_uri() {
        let a = OtpAccount::from_uri(
            "otpauth://totp/ACME%20Co:john.doe@email.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&issuer=ACME%20Co&algorithm=SHA256&digits=7&period=60&image=x",
        )
        .unwrap();
        assert_eq!(a.issuer, "ACME Co");
        assert_eq!(a.name, "john.doe@email.com");
        assert_eq!(a.algorithm, HashAlgorithm::Sha256);
        assert_eq!(a.digits, 7);
        assert_eq!(a.kind, OtpKind::Totp { period: 60 });
        assert_eq!(OtpAccount::from_uri(&a.to_uri()).unwrap(), a);
    }

    #[test]
    fn refusals() {
        let s = RFC_SECRET;
        let cases: &[(String, &str)] = &[
            (format!("otpauth://totp/x?secret={s}&secret={s}"), "uri"),
            (format!("otpauth://totp/A:x?secret={s}&issuer=B"), "issuer"),
            (
                format!("otpauth://totp/x?secret={s}&algorithm=MD5"),
                "algorithm",
            ),
            (format!("otpauth://totp/x?secret={s}&period=0"), "period"),
            (format!("otpauth://totp/x?secret={s}&counter=1"), "counter"),
            (format!("otpauth://hotp/x?secret={s}"), "counter"),
            (format!("otpauth://hotp/x?secret={s}&counter=-1"), "counter"),
            (format!("otpauth://totp/x?secret={s}&digits=+6"), "digits"),
            (format!("otpauth://steam/x?secret={s}"), "type"),
            (format!("otpauth://totp/%zz?secret={s}"), "label"),
            (format!("otpauth://totp/?secret={s}"), "name"),
            (format!("otpauth://totp/x%0A?secret={s}"), "label"),
            (format!("http://totp/x?secret={s}"), "uri"),
            ("otpauth://totp/x?secret=GEZDGNBVGY3TQOJ1".into(), "secret"),
            ("otpauth://totp/x?secret=GEZDGNBVGY3TQOJ".into(), "secret"),
            (
                "otpauth://totp/x?secret=GEZDGNBVGY3TQOJQGF".into(),
                "secret",
            ),
            ("otpauth://totp/x?secret=GEZDGNBV".into(), "secret"),
            (
                "otpauth://totp/x?secret=GEZD%20GNBVGY3TQOJQ".into(),
                "secret",
            ),
            ("otpauth://totp/x".into(), "secret"),
        ];
        for (uri, field) in cases {
            match OtpAccount::from_uri(uri) {
                Err(ProtocolError::InvalidField { field: f, .. }) => assert_eq!(f, *field, "{uri}"),
                other => panic!("{uri}: {other:?}"),
            }
        }
        assert_eq!(
            OtpAccount::from_uri(&format!("otpauth://totp/x?secret={s}&digits=9")).unwrap_err(),
            ProtocolError::InvalidDigits(9)
        );
    }

    #[test]
    fn padding_and_case() {
        let a = OtpAccount::from_uri("otpauth://totp/x?secret=gezdgnbvgy3tqojq").unwrap();
        let b = OtpAccount::from_uri("otpauth://totp/x?secret=GEZDGNBVGY3TQOJQ").unwrap();
        assert_eq!(a, b);
        // 11 bytes: 18 characters, padded to 24.
        let c =
            OtpAccount::from_uri("otpauth://totp/x?secret=GEZDGNBVGY3TQOJQGE%3D%3D%3D%3D%3D%3D")
                .unwrap();
        assert_eq!(c.secret.expose_secret(), b"12345678901");
        assert!(OtpAccount::from_uri("otpauth://totp/x?secret=GEZDGNBVGY3TQOJQGE%3D%3D").is_err());
    }

    /// A payload as Google Authenticator writes it, built by hand from the
    /// wire format (field keys and lengths spelled out).
    #[test]
    fn a_migration_payload_by_hand() {
        let mut p = vec![0x0a, 10];
        p.extend_from_slice(b"1234567890"); // secret
        p.extend_from_slice(&[0x12, 9]);
        p.extend_from_slice(b"Acme:alic"); // name
        p.extend_from_slice(&[0x1a, 4]);
        p.extend_from_slice(b"Acme"); // issuer
        p.extend_from_slice(&[0x20, 1, 0x28, 1, 0x30, 2]); // SHA1, six, TOTP
        let mut payload = vec![0x0a, p.len() as u8];
        payload.extend_from_slice(&p);
        payload.extend_from_slice(&[0x10, 1, 0x18, 1, 0x20, 0, 0x28, 0x7b]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&payload);
        let uri = format!(
            "otpauth-migration://offline?data={}",
            percent_encoding::utf8_percent_encode(&b64, percent_encoding::NON_ALPHANUMERIC)
        );
        let accounts = OtpAccount::from_migration_uri(&uri).unwrap();
        assert_eq!(accounts.len(), 1);
        assert_eq!(accounts[0].issuer, "Acme");
        assert_eq!(accounts[0].name, "alic");
        assert_eq!(accounts[0].kind, OtpKind::Totp { period: 30 });
        assert_eq!(accounts[0].secret.expose_secret(), b"1234567890");
        // Cut anywhere inside the account: refused, never a panic.
        for n in 1..2 + p.len() {
            let r = decode_migration_payload(&payload[..n]);
            assert!(
                matches!(r, Err(ProtocolError::InvalidField { .. })),
                "prefix {n}"
            );
        }
        // Wire types 3 and 4 (groups) are refused.
        assert!(decode_migration_payload(&[0x0b]).is_err());
        assert!(OtpAccount::from_migration_uri("otpauth-migration://offline?data=%%%").is_err());
        assert!(OtpAccount::from_migration_uri("otpauth-migration://online?data=").is_err());
    }

    fn account() -> impl Strategy<Value = OtpAccount> {
        (
            prop::collection::vec(any::<u8>(), MIN_SECRET_LEN..64),
            "[a-zA-Z0-9 @.:%&=?/+-]{0,20}",
            "[a-zA-Z0-9 @.%&=?/+-]{1,20}",
            prop_oneof![
                Just(HashAlgorithm::Sha1),
                Just(HashAlgorithm::Sha256),
                Just(HashAlgorithm::Sha512)
            ],
            prop_oneof![Just(6u32), Just(8u32)],
            prop_oneof![
                any::<u64>().prop_map(|counter| OtpKind::Hotp { counter }),
                Just(OtpKind::Totp { period: 30 })
            ],
        )
            .prop_filter("a name must not be blank", |(_, _, n, ..)| {
                !n.trim().is_empty()
            })
            .prop_map(
                |(secret, issuer, name, algorithm, digits, kind)| OtpAccount {
                    kind,
                    issuer: issuer.replace(':', ""),
                    name,
                    algorithm,
                    digits,
                    secret: SecretBytes::new(secret),
                },
            )
    }

    proptest! {
        #[test]
        fn uris_round_trip(a in account()) {
            let mut a = a;
            // The account part loses leading spaces (the grammar's
            // optional space after the colon).
            a.name = a.name.trim_start_matches(' ').to_owned();
            prop_assume!(!a.name.trim().is_empty());
            prop_assert_eq!(OtpAccount::from_uri(&a.to_uri()).unwrap(), a);
        }

        #[test]
        fn migration_round_trips(v in prop::collection::vec(account(), 1..5)) {
            let payload = encode_migration_payload(&v).unwrap();
            let back = decode_migration_payload(&payload).unwrap();
            prop_assert_eq!(back.len(), v.len());
            for (a, b) in back.iter().zip(&v) {
                prop_assert_eq!(&a.secret, &b.secret);
                prop_assert_eq!(a.kind, b.kind);
                prop_assert_eq!(a.digits, b.digits);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
            let _ = OtpAccount::from_uri(&s);
            let _ = OtpAccount::from_migration_uri(&s);
            let _ = OtpAccount::from_uri(&format!("otpauth://totp/{s}"));
        }

        #[test]
        fn arbitrary_payloads_never_panic(b in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_migration_payload(&b);
        }

        #[test]
        fn base32_is_canonical(bytes in prop::collection::vec(any::<u8>(), MIN_SECRET_LEN..64)) {
            let text = base32::encode(base32::Alphabet::Rfc4648 { padding: false }, &bytes);
            prop_assert_eq!(decode_base32(&text).unwrap().expose_secret().to_vec(), bytes.clone());
            let padded = base32::encode(base32::Alphabet::Rfc4648 { padding: true }, &bytes);
            prop_assert_eq!(decode_base32(&padded).unwrap().expose_secret().to_vec(), bytes.clone());
        }
    }
}
