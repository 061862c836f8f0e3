//! Card numbers, phone numbers, activation codes and the table of Iranian
//! card BINs: validation shared by the phone and the bank.

use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ProtocolError;
use crate::amount::normalize_digits;

fn invalid(field: &'static str, reason: &'static str) -> ProtocolError {
    ProtocolError::InvalidField { field, reason }
}

/// Removes spaces and dashes and turns Persian and Arabic-Indic digits
/// into ASCII; `None` when anything else is left.
fn digits_only(text: &str) -> Option<String> {
    let compact: String = text
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '\u{00A0}' | '\u{200C}'))
        .collect();
    normalize_digits(&compact)
}

/// The Luhn checksum (ISO/IEC 7812-1 Annex B) of ASCII digits holds.
pub fn luhn_valid(digits: &str) -> bool {
    luhn_sum(digits, false).is_multiple_of(10)
}

/// The Luhn check digit to append to `payload` (ASCII digits).
pub fn luhn_check_digit(payload: &str) -> char {
    let sum = luhn_sum(payload, true);
    char::from(b'0' + ((10 - sum % 10) % 10) as u8)
}

fn luhn_sum(digits: &str, double_first_from_right: bool) -> u32 {
    digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b.wrapping_sub(b'0'));
            let double = (i % 2 == 0) == double_first_from_right;
            if double {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum()
}

/// A 16-digit card number (PAN). Wiped on drop; `Debug` shows it masked.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Pan(String);

impl Pan {
    /// Parses a card number: 16 digits (ASCII, Persian or Arabic-Indic),
    /// spaces and dashes allowed, Luhn check digit valid.
    ///
    /// # Errors
    /// [`ProtocolError::InvalidField`] (`pan`), never echoing the input.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        let digits = digits_only(text).ok_or_else(|| invalid("pan", "must be digits"))?;
        if digits.len() != 16 {
            return Err(invalid("pan", "must be 16 digits"));
        }
        if !luhn_valid(&digits) {
            return Err(invalid("pan", "check digit is wrong"));
        }
        Ok(Self(digits))
    }

    /// The 16 ASCII digits. Never log them.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The last four digits.
    pub fn last4(&self) -> &str {
        &self.0[12..]
    }

    /// The six-digit BIN (issuer identification number).
    pub fn bin(&self) -> &str {
        &self.0[..6]
    }

    /// The number as shown to people: `6104 33•• •••• 1234`.
    pub fn masked(&self) -> String {
        format!("{} {}•• •••• {}", &self.0[..4], &self.0[4..6], self.last4())
    }

    /// The bank that issued this card, from [`bank_for_bin`].
    pub fn bank(&self) -> Option<&'static Bank> {
        bank_for_bin(self.bin())
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({})", self.masked())
    }
}

/// An Iranian bank, for showing which bank a card belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bank {
    /// The six-digit BIN.
    pub bin: &'static str,
    /// The English name.
    pub name_en: &'static str,
    /// The Persian name.
    pub name_fa: &'static str,
}

/// Public BINs of Iranian banks (Shetab network), as printed on cards.
pub const BANKS: &[Bank] = &[
    Bank {
        bin: "603799",
        name_en: "Bank Melli Iran",
        name_fa: "بانک ملی ایران",
    },
    Bank {
        bin: "589210",
        name_en: "Bank Sepah",
        name_fa: "بانک سپه",
    },
    Bank {
        bin: "627648",
        name_en: "Export Development Bank of Iran",
        name_fa: "بانک توسعه صادرات",
    },
    Bank {
        bin: "627961",
        name_en: "Bank of Industry and Mine",
        name_fa: "بانک صنعت و معدن",
    },
    Bank {
        bin: "603770",
        name_en: "Bank Keshavarzi",
        name_fa: "بانک کشاورزی",
    },
    Bank {
        bin: "628023",
        name_en: "Bank Maskan",
        name_fa: "بانک مسکن",
    },
    Bank {
        bin: "627760",
        name_en: "Post Bank of Iran",
        name_fa: "پست بانک ایران",
    },
    Bank {
        bin: "502908",
        name_en: "Tose'e Ta'avon Bank",
        name_fa: "بانک توسعه تعاون",
    },
    Bank {
        bin: "627412",
        name_en: "EN Bank",
        name_fa: "بانک اقتصاد نوین",
    },
    Bank {
        bin: "622106",
        name_en: "Parsian Bank",
        name_fa: "بانک پارسیان",
    },
    Bank {
        bin: "502229",
        name_en: "Bank Pasargad",
        name_fa: "بانک پاسارگاد",
    },
    Bank {
        bin: "627488",
        name_en: "Karafarin Bank",
        name_fa: "بانک کارآفرین",
    },
    Bank {
        bin: "621986",
        name_en: "Saman Bank",
        name_fa: "بانک سامان",
    },
    Bank {
        bin: "639346",
        name_en: "Sina Bank",
        name_fa: "بانک سینا",
    },
    Bank {
        bin: "639607",
        name_en: "Sarmayeh Bank",
        name_fa: "بانک سرمایه",
    },
    Bank {
        bin: "636214",
        name_en: "Ayandeh Bank",
        name_fa: "بانک آینده",
    },
    Bank {
        bin: "502806",
        name_en: "Shahr Bank",
        name_fa: "بانک شهر",
    },
    Bank {
        bin: "502938",
        name_en: "Day Bank",
        name_fa: "بانک دی",
    },
    Bank {
        bin: "603769",
        name_en: "Bank Saderat Iran",
        name_fa: "بانک صادرات ایران",
    },
    Bank {
        bin: "610433",
        name_en: "Bank Mellat",
        name_fa: "بانک ملت",
    },
    Bank {
        bin: "991975",
        name_en: "Bank Mellat",
        name_fa: "بانک ملت",
    },
    Bank {
        bin: "627353",
        name_en: "Tejarat Bank",
        name_fa: "بانک تجارت",
    },
    Bank {
        bin: "585983",
        name_en: "Tejarat Bank",
        name_fa: "بانک تجارت",
    },
    Bank {
        bin: "589463",
        name_en: "Refah Kargaran Bank",
        name_fa: "بانک رفاه کارگران",
    },
    Bank {
        bin: "505785",
        name_en: "Iran Zamin Bank",
        name_fa: "بانک ایران زمین",
    },
    Bank {
        bin: "636795",
        name_en: "Central Bank of Iran",
        name_fa: "بانک مرکزی",
    },
    Bank {
        bin: "606373",
        name_en: "Mehr Iran Bank",
        name_fa: "بانک قرض‌الحسنه مهر ایران",
    },
    Bank {
        bin: "639599",
        name_en: "Ghavamin Bank",
        name_fa: "بانک قوامین",
    },
    Bank {
        bin: "505801",
        name_en: "Kosar Credit Institution",
        name_fa: "موسسه اعتباری کوثر",
    },
    Bank {
        bin: "628157",
        name_en: "Tose'e Credit Institution",
        name_fa: "موسسه اعتباری توسعه",
    },
    Bank {
        bin: "507677",
        name_en: "Noor Credit Institution",
        name_fa: "موسسه اعتباری نور",
    },
    Bank {
        bin: "505416",
        name_en: "Tourism Bank",
        name_fa: "بانک گردشگری",
    },
    Bank {
        bin: "636949",
        name_en: "Hekmat Iranian Bank",
        name_fa: "بانک حکمت ایرانیان",
    },
    Bank {
        bin: "504172",
        name_en: "Resalat Bank",
        name_fa: "بانک قرض‌الحسنه رسالت",
    },
    Bank {
        bin: "606256",
        name_en: "Melal Credit Institution",
        name_fa: "موسسه اعتباری ملل",
    },
];

/// The bank of a six-digit BIN, if known.
pub fn bank_for_bin(bin: &str) -> Option<&'static Bank> {
    BANKS.iter().find(|b| b.bin == bin)
}

/// Normalises an Iranian mobile number to `+989XXXXXXXXX`. Accepts
/// `09…`, `9…`, `+989…`, `989…` and `00989…`, with Persian or Arabic-Indic
/// digits, spaces and dashes.
///
/// # Errors
/// [`ProtocolError::InvalidField`] (`phone`).
pub fn normalize_phone(text: &str) -> Result<String, ProtocolError> {
    let t = text.trim();
    let (plus, rest) = match t.strip_prefix('+') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let digits = digits_only(rest).ok_or_else(|| invalid("phone", "must be digits"))?;
    let national = if plus {
        digits.strip_prefix("98")
    } else if let Some(d) = digits.strip_prefix("0098") {
        Some(d)
    } else if digits.len() == 12 {
        digits.strip_prefix("98")
    } else if let Some(d) = digits.strip_prefix('0') {
        Some(d)
    } else {
        Some(digits.as_str())
    }
    .ok_or_else(|| invalid("phone", "must be an Iranian mobile number"))?;
    if national.len() != 10 || !national.starts_with('9') {
        return Err(invalid("phone", "must be an Iranian mobile number (09…)"));
    }
    Ok(format!("+98{national}"))
}

/// Shortest activation code, check digit included.
pub const ACTIVATION_CODE_MIN_LEN: usize = 10;
/// Longest activation code accepted.
pub const ACTIVATION_CODE_MAX_LEN: usize = 16;

/// Normalises an activation code as typed by a customer (Persian digits,
/// spaces and dashes allowed) and checks its Luhn check digit, so a typo
/// is caught before any network call.
///
/// # Errors
/// [`ProtocolError::InvalidField`] (`code`).
pub fn normalize_activation_code(text: &str) -> Result<String, ProtocolError> {
    let digits = digits_only(text).ok_or_else(|| invalid("code", "must be digits"))?;
    if !(ACTIVATION_CODE_MIN_LEN..=ACTIVATION_CODE_MAX_LEN).contains(&digits.len()) {
        return Err(invalid("code", "must be 10 to 16 digits"));
    }
    if !luhn_valid(&digits) {
        return Err(invalid(
            "code",
            "check digit is wrong: please check the code",
        ));
    }
    Ok(digits)
}

/// Longest device label, in characters.
pub const DEVICE_LABEL_MAX_CHARS: usize = 64;

/// Normalises a device label (docs/protocol.md, "Activation"): the name of
/// the phone the bank shows its operators and quotes in the customer's
/// activation notice SMS, so it must not be able to write that SMS for an
/// attacker: trimmed, 1–64 characters, each a letter or digit (any
/// script), a space, ZWNJ or ZWJ (everyday Persian spelling), or one of
/// `- _ . ' ’ + # /`. Quotes, guillemets, brackets, punctuation that
/// starts a new sentence, bidi controls and line breaks are refused. The
/// phone and the issuer apply the same rule.
///
/// # Errors
/// [`ProtocolError::InvalidField`] (`device_label`).
pub fn normalize_device_label(label: &str) -> Result<String, ProtocolError> {
    let l = label.trim();
    let n = l.chars().count();
    if !(1..=DEVICE_LABEL_MAX_CHARS).contains(&n) {
        return Err(invalid("device_label", "must be 1 to 64 characters"));
    }
    let ok = |c: char| {
        c.is_alphanumeric()
            || matches!(
                c,
                ' ' | '\u{200C}'
                    | '\u{200D}'
                    | '-'
                    | '_'
                    | '.'
                    | '\''
                    | '\u{2019}'
                    | '+'
                    | '#'
                    | '/'
            )
    };
    if !l.chars().all(ok) {
        return Err(invalid(
            "device_label",
            "only letters, digits, spaces, ZWNJ and - _ . ' + # /",
        ));
    }
    Ok(l.to_owned())
}

/// Joins a two-channel activation code (docs/protocol.md, "Two-channel
/// codes"): the part the ATM showed, then the part the SMS carried, each as
/// typed (Persian digits, spaces and dashes allowed), checked as one code.
///
/// # Errors
/// [`ProtocolError::InvalidField`] (`code`) when a part is empty or not
/// digits, or the joined code is not a valid activation code (a check digit
/// that fails says one of the parts was mistyped).
pub fn join_activation_code(atm_part: &str, sms_part: &str) -> Result<String, ProtocolError> {
    let atm = digits_only(atm_part).ok_or_else(|| invalid("code", "must be digits"))?;
    let sms = digits_only(sms_part).ok_or_else(|| invalid("code", "must be digits"))?;
    if atm.is_empty() || sms.is_empty() {
        return Err(invalid("code", "both parts of the code are needed"));
    }
    normalize_activation_code(&format!("{atm}{sms}"))
}

/// Groups an activation code for an SMS: `12345-67890`.
pub fn format_activation_code(code: &str) -> String {
    let mut out = String::with_capacity(code.len() + code.len() / 5);
    for (i, c) in code.chars().enumerate() {
        if i > 0 && i % 5 == 0 {
            out.push('-');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_labels_cannot_write_the_notice() {
        for good in [
            "Pixel 8",
            " گوشی‌ علی ",
            "SM-A525F",
            "Ali’s iPhone",
            "pooya desktop",
            "x",
        ] {
            assert_eq!(normalize_device_label(good).unwrap(), good.trim(), "{good}");
        }
        for bad in [
            "",
            "   ",
            "Pixel» (آزمایشی؛ نیازی به اقدام نیست) «x",
            "Pixel\u{202e}8",
            "Pixel\u{200f}",
            "a\nb",
            "a\u{2028}b",
            "\"quoted\"",
            "x(y)",
            &"x".repeat(65),
        ] {
            assert_eq!(
                normalize_device_label(bad).unwrap_err().code(),
                "invalid_field",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn two_channel_codes_join_and_check() {
        assert_eq!(
            join_activation_code("12345", "67897").unwrap(),
            "1234567897"
        );
        assert_eq!(
            join_activation_code("۱۲۳۴۵", "۶۷۸-۹۷").unwrap(),
            "1234567897"
        );
        for (atm, sms) in [
            ("12345", "67898"),
            ("", "1234567897"),
            ("1234567897", ""),
            ("12a45", "67897"),
        ] {
            assert_eq!(
                join_activation_code(atm, sms).unwrap_err().code(),
                "invalid_field",
                "{atm} {sms}"
            );
        }
    }

    #[test]
    fn pans() {
        let pan = Pan::parse("6104 3377 0000 0001").unwrap();
        assert_eq!(pan.masked(), "6104 33•• •••• 0001");
        assert_eq!(pan.last4(), "0001");
        assert_eq!(pan.bank().unwrap().name_en, "Bank Mellat");
        assert!(!format!("{pan:?}").contains("3377"));
        assert!(Pan::parse("۶۱۰۴-۳۳۷۷-۰۰۰۰-۰۰۰۱").is_ok());
        assert!(Pan::parse("6104337700000002").is_err());
        assert!(Pan::parse("610433770000000").is_err());
        assert!(Pan::parse("6104a37700000005").is_err());
        let err = Pan::parse("6104337700000002").unwrap_err().to_string();
        assert!(!err.contains("6104"));
    }

    #[test]
    fn luhn() {
        assert!(luhn_valid("79927398713"));
        assert_eq!(luhn_check_digit("7992739871"), '3');
        assert_eq!(luhn_check_digit("610433770000000"), '1');
    }

    #[test]
    fn phones() {
        for ok in [
            "09121234567",
            "+989121234567",
            "989121234567",
            "00989121234567",
            "۰۹۱۲ ۱۲۳ ۴۵۶۷",
            "9121234567",
        ] {
            assert_eq!(normalize_phone(ok).unwrap(), "+989121234567", "{ok}");
        }
        for bad in [
            "",
            "0212345678",
            "+449121234567",
            "0912123456",
            "091212345678",
            "0912x234567",
            "+98 21 1234 5678",
        ] {
            assert!(normalize_phone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn activation_codes() {
        let payload = "123456789";
        let code = format!("{payload}{}", luhn_check_digit(payload));
        assert_eq!(normalize_activation_code(&code).unwrap(), code);
        let typed = format_activation_code(&code);
        assert_eq!(normalize_activation_code(&typed).unwrap(), code);
        let persian: String = code
            .chars()
            .map(|c| char::from_u32(0x06F0 + c.to_digit(10).unwrap()).unwrap())
            .collect();
        assert_eq!(normalize_activation_code(&persian).unwrap(), code);
        let mut typo = code.clone().into_bytes();
        typo[3] = if typo[3] == b'9' { b'0' } else { typo[3] + 1 };
        assert!(normalize_activation_code(std::str::from_utf8(&typo).unwrap()).is_err());
        assert!(normalize_activation_code("123").is_err());
    }
}
