//! Amounts in whole Rials, the cap ladder, and Persian number formatting.

use serde::{Deserialize, Serialize};

use crate::{AmountError, ProtocolError};

/// Most tiers a cap ladder may have; keeps verification bounded.
pub const MAX_CAP_TIERS: usize = 8;

/// The default cap ladder in Rials (docs/protocol.md, "Cap ladder"):
/// 5, 20, 50, 100, 500 million and 2 billion Rials.
pub const DEFAULT_CAP_LADDER: [u64; 6] = [
    5_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    500_000_000,
    2_000_000_000,
];

fn digit_value(c: char) -> Option<u64> {
    match c {
        '0'..='9' => Some(u64::from(c) - u64::from('0')),
        // Extended Arabic-Indic (Persian) digits U+06F0–U+06F9.
        '\u{06F0}'..='\u{06F9}' => Some(u64::from(c) - 0x06F0),
        // Arabic-Indic digits U+0660–U+0669.
        '\u{0660}'..='\u{0669}' => Some(u64::from(c) - 0x0660),
        _ => None,
    }
}

fn is_separator(c: char) -> bool {
    // ASCII comma, ARABIC THOUSANDS SEPARATOR U+066C, ARABIC COMMA U+060C.
    matches!(c, ',' | '\u{066C}' | '\u{060C}')
}

/// Normalises a string of ASCII, Persian or Arabic-Indic digits to ASCII
/// digits; `None` when any other character appears.
pub fn normalize_digits(text: &str) -> Option<String> {
    text.chars()
        .map(|c| digit_value(c).and_then(|d| char::from_digit(d as u32, 10)))
        .collect()
}

/// Parses an amount of Rials: ASCII, Persian (۰–۹) or Arabic-Indic (٠–٩)
/// digits, optionally grouped in threes by `,`, `٬` or `،`, with spaces
/// around. Anything else is an error; the result is never a silent 0.
///
/// # Errors
/// An [`AmountError`] saying what is wrong.
pub fn parse_amount(text: &str) -> Result<u64, AmountError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(AmountError::Empty);
    }
    let lead = text.chars().take_while(|c| c.is_whitespace()).count();
    let mut value: u64 = 0;
    let mut group_len = 0usize; // digits since the last separator
    let mut seen_separator = false;
    for (i, c) in trimmed.chars().enumerate() {
        if let Some(d) = digit_value(c) {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(d))
                .ok_or(AmountError::Overflow)?;
            group_len += 1;
        } else if is_separator(c) {
            if seen_separator {
                if group_len != 3 {
                    return Err(AmountError::BadGrouping);
                }
            } else {
                if group_len == 0 || group_len > 3 {
                    return Err(AmountError::BadGrouping);
                }
            }
            seen_separator = true;
            group_len = 0;
        } else {
            return Err(AmountError::UnexpectedChar(lead + i));
        }
    }
    if seen_separator && group_len != 3 {
        return Err(AmountError::BadGrouping);
    }
    if value == 0 {
        return Err(AmountError::Zero);
    }
    Ok(value)
}

/// Writes an amount with Persian digits and `٬` thousands separators, as in
/// SMS texts: `1250000` → `۱٬۲۵۰٬۰۰۰`.
pub fn format_rials_fa(amount: u64) -> String {
    let ascii = amount.to_string();
    let mut out = String::with_capacity(ascii.len() * 3);
    let len = ascii.len();
    for (i, b) in ascii.bytes().enumerate() {
        if i > 0 && (len - i).is_multiple_of(3) {
            out.push('\u{066C}');
        }
        out.push(char::from_u32(0x06F0 + u32::from(b - b'0')).unwrap_or('?'));
    }
    out
}

/// Writes an amount with ASCII digits and `,` separators: `1,250,000`.
pub fn format_rials(amount: u64) -> String {
    let ascii = amount.to_string();
    let mut out = String::with_capacity(ascii.len() + ascii.len() / 3);
    let len = ascii.len();
    for (i, c) in ascii.chars().enumerate() {
        if i > 0 && (len - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The issuer's cap ladder: a short, strictly increasing list of positive
/// Rial amounts. A second dynamic PIN is bound to one of these tiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<u64>", into = "Vec<u64>")]
pub struct CapLadder(Vec<u64>);

impl CapLadder {
    /// Checks and wraps a ladder.
    ///
    /// # Errors
    /// [`ProtocolError::InvalidCapLadder`] when empty, longer than
    /// [`MAX_CAP_TIERS`], not strictly increasing, or containing zero.
    pub fn new(tiers: Vec<u64>) -> Result<Self, ProtocolError> {
        if tiers.is_empty() {
            return Err(ProtocolError::InvalidCapLadder("empty"));
        }
        if tiers.len() > MAX_CAP_TIERS {
            return Err(ProtocolError::InvalidCapLadder("more than 8 tiers"));
        }
        if tiers.first() == Some(&0) {
            return Err(ProtocolError::InvalidCapLadder("a tier of zero"));
        }
        if tiers.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ProtocolError::InvalidCapLadder("not strictly increasing"));
        }
        // RFC 6287 §5.1: a QN question is the number's hex digits padded
        // on the right, so tiers whose ratio is a power of 16 give one
        // question, and a PIN for the lower cap would pay up to the higher
        // (docs/protocol.md, "Questions").
        let collide = |low: u64, high: u64| {
            let mut t = low;
            while let Some(next) = t.checked_mul(16) {
                if next == high {
                    return true;
                }
                if next > high {
                    break;
                }
                t = next;
            }
            false
        };
        for (i, &low) in tiers.iter().enumerate() {
            if tiers[i + 1..].iter().any(|&high| collide(low, high)) {
                return Err(ProtocolError::InvalidCapLadder(
                    "two tiers a power of 16 apart share one OCRA question",
                ));
            }
        }
        Ok(Self(tiers))
    }

    /// The tiers, smallest first.
    pub fn tiers(&self) -> &[u64] {
        &self.0
    }

    /// The largest tier.
    pub fn max(&self) -> u64 {
        self.0.last().copied().unwrap_or(0)
    }

    /// The tiers at or above `amount`: the only caps a payment of `amount`
    /// can be verified against.
    pub fn tiers_covering(&self, amount: u64) -> &[u64] {
        let start = self.0.partition_point(|&t| t < amount);
        &self.0[start..]
    }

    /// The largest tier not above `amount` (rounding a requested cap down),
    /// or `None` when `amount` is below the smallest tier.
    pub fn round_down(&self, amount: u64) -> Option<u64> {
        let end = self.0.partition_point(|&t| t <= amount);
        end.checked_sub(1).map(|i| self.0[i])
    }

    /// Whether `amount` is exactly a tier.
    pub fn contains(&self, amount: u64) -> bool {
        self.0.binary_search(&amount).is_ok()
    }
}

impl Default for CapLadder {
    fn default() -> Self {
        Self(DEFAULT_CAP_LADDER.to_vec())
    }
}

impl TryFrom<Vec<u64>> for CapLadder {
    type Error = ProtocolError;
    fn try_from(v: Vec<u64>) -> Result<Self, Self::Error> {
        Self::new(v)
    }
}

impl From<CapLadder> for Vec<u64> {
    fn from(l: CapLadder) -> Self {
        l.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_scripts_and_separators() {
        let ok = [
            ("1250000", 1_250_000),
            ("  1,250,000 ", 1_250_000),
            ("۱٬۲۵۰٬۰۰۰", 1_250_000),
            ("١٬٢٥٠٬٠٠٠", 1_250_000),
            ("۱،۲۵۰،۰۰۰", 1_250_000),
            ("12,345", 12_345),
            ("۵۰۰۰", 5000),
            ("007", 7),
            ("18446744073709551615", u64::MAX),
        ];
        for (text, want) in ok {
            assert_eq!(parse_amount(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        use AmountError::*;
        let bad = [
            ("", Empty),
            ("   ", Empty),
            ("0", Zero),
            ("۰", Zero),
            ("-5", UnexpectedChar(0)),
            ("1.5", UnexpectedChar(1)),
            ("12a", UnexpectedChar(2)),
            ("1 000", UnexpectedChar(1)),
            ("  x", UnexpectedChar(2)),
            ("1,00", BadGrouping),
            ("1,0000", BadGrouping),
            (",100", BadGrouping),
            ("1000,000", BadGrouping),
            ("100,", BadGrouping),
            ("1,,000", BadGrouping),
            ("18446744073709551616", Overflow),
            ("+5", UnexpectedChar(0)),
        ];
        for (text, want) in bad {
            assert_eq!(parse_amount(text), Err(want), "{text:?}");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(format_rials_fa(1_250_000), "۱٬۲۵۰٬۰۰۰");
        assert_eq!(format_rials_fa(999), "۹۹۹");
        assert_eq!(format_rials(1_250_000), "1,250,000");
        assert_eq!(format_rials(100_000), "100,000");
        assert_eq!(parse_amount(&format_rials_fa(123_456_789)), Ok(123_456_789));
    }

    #[test]
    fn tiers_a_power_of_sixteen_apart_are_refused() {
        // RFC 6287 QN questions are the number in hex padded on the right,
        // so 1,250,000 (0x1312D0) and 20,000,000 (0x1312D00) are the same
        // question: a PIN for the lower cap would pay up to the higher.
        for tiers in [
            vec![1_250_000, 20_000_000],
            vec![5, 80],
            vec![3, 7, 768],
            vec![1_000_000, 2_000_000, 16_000_000],
        ] {
            assert_eq!(
                CapLadder::new(tiers.clone()),
                Err(ProtocolError::InvalidCapLadder(
                    "two tiers a power of 16 apart share one OCRA question"
                )),
                "{tiers:?}"
            );
        }
        assert!(CapLadder::new(vec![5, 40, 160]).is_ok());
        assert!(CapLadder::new(DEFAULT_CAP_LADDER.to_vec()).is_ok());
        let json = serde_json::to_string(&[1_250_000u64, 20_000_000]).unwrap();
        assert!(serde_json::from_str::<CapLadder>(&json).is_err());
    }

    #[test]
    fn ladder_rules() {
        assert!(CapLadder::new(vec![]).is_err());
        assert!(CapLadder::new(vec![0, 5]).is_err());
        assert!(CapLadder::new(vec![5, 5]).is_err());
        assert!(CapLadder::new(vec![5, 4]).is_err());
        assert!(CapLadder::new((1..=9).collect()).is_err());
        let l = CapLadder::new(vec![10, 20, 30]).unwrap();
        assert_eq!(l.tiers_covering(15), &[20, 30]);
        assert_eq!(l.tiers_covering(20), &[20, 30]);
        assert_eq!(l.tiers_covering(31), &[] as &[u64]);
        assert_eq!(l.round_down(25), Some(20));
        assert_eq!(l.round_down(30), Some(30));
        assert_eq!(l.round_down(9), None);
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(json, "[10,20,30]");
        assert!(serde_json::from_str::<CapLadder>("[3,2]").is_err());
    }
}
