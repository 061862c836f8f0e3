//! The SMS texts the bank sends, in Persian (default) or English.
//!
//! Codes inside messages are ASCII digits so phones can offer to copy
//! them; amounts and counts in Persian text use Persian digits.

use pooya_protocol::normalize_activation_code;

use crate::settings::Language;

/// A message to a customer.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message<'a> {
    /// The activation code for the app, after "activate via app" at an ATM.
    ActivationCode {
        /// The code, grouped for reading (`12345-67890`).
        code: &'a str,
        /// Minutes it stays valid.
        minutes: u64,
        /// Last four digits of the card.
        last4: &'a str,
    },
    /// The card was enabled for the SMS channel.
    SmsChannelEnabled {
        /// Last four digits of the card.
        last4: &'a str,
        /// The short code to text.
        short_code: &'a str,
    },
    /// The card was enrolled for another phone number (sent to the old
    /// number).
    PhoneChanged {
        /// Last four digits of the card.
        last4: &'a str,
    },
    /// The card's dynamic PINs were blocked after repeated failures.
    CardBlocked {
        /// Last four digits of the card.
        last4: &'a str,
        /// Minutes the block lasts.
        minutes: u64,
    },
}

impl std::fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The activation code is a secret until spent.
        match self {
            Self::ActivationCode { .. } => f.write_str("Message::ActivationCode(<redacted>)"),
            Self::SmsChannelEnabled { .. } => f.write_str("Message::SmsChannelEnabled"),
            Self::PhoneChanged { .. } => f.write_str("Message::PhoneChanged"),
            Self::CardBlocked { .. } => f.write_str("Message::CardBlocked"),
        }
    }
}

/// Writes ASCII digits as Persian digits.
pub fn persian_digits(text: &str) -> String {
    text.chars()
        .map(|c| match c.to_digit(10) {
            Some(d) if c.is_ascii_digit() => char::from_u32(0x06F0 + d).unwrap_or(c),
            _ => c,
        })
        .collect()
}

impl Message<'_> {
    /// The text in `lang`.
    pub fn render(&self, lang: Language) -> String {
        match (self, lang) {
            (
                Self::ActivationCode {
                    code,
                    minutes,
                    last4,
                },
                Language::Fa,
            ) => format!(
                "بانک: کد فعال‌سازی رمز پویا برای کارت {}\n{code}\nاین کد تا {} دقیقه معتبر است. آن را به هیچ‌کس ندهید.",
                persian_digits(last4),
                persian_digits(&minutes.to_string())
            ),
            (
                Self::ActivationCode {
                    code,
                    minutes,
                    last4,
                },
                Language::En,
            ) => format!(
                "Bank: dynamic PIN activation code for card {last4}\n{code}\nValid for {minutes} minutes. Never share it."
            ),
            (Self::SmsChannelEnabled { last4, short_code }, Language::Fa) => format!(
                "بانک: رمز پویای پیامکی برای کارت {} فعال شد. برای دریافت رمز، چهار رقم آخر کارت را به {} پیامک کنید.",
                persian_digits(last4),
                persian_digits(short_code)
            ),
            (Self::SmsChannelEnabled { last4, short_code }, Language::En) => format!(
                "Bank: SMS dynamic PINs are on for card {last4}. To get a PIN, text the card's last four digits to {short_code}."
            ),
            (Self::PhoneChanged { last4 }, Language::Fa) => format!(
                "بانک: رمز پویای کارت {} برای شماره همراه دیگری ثبت شد. اگر این کار شما نبوده، فوراً با بانک تماس بگیرید.",
                persian_digits(last4)
            ),
            (Self::PhoneChanged { last4 }, Language::En) => format!(
                "Bank: dynamic PINs of card {last4} were registered to another mobile number. If this was not you, call the bank at once."
            ),
            (Self::CardBlocked { last4, minutes }, Language::Fa) => format!(
                "بانک: به دلیل چند رمز پویای نادرست پیاپی، رمز پویای کارت {} به مدت {} دقیقه مسدود شد. اگر این تلاش‌ها از شما نبوده، با بانک تماس بگیرید.",
                persian_digits(last4),
                persian_digits(&minutes.to_string())
            ),
            (Self::CardBlocked { last4, minutes }, Language::En) => format!(
                "Bank: after repeated wrong dynamic PINs, card {last4}'s dynamic PINs are blocked for {minutes} minutes. If this was not you, call the bank."
            ),
        }
    }
}

/// Finds the activation code in an SMS text (ASCII or Persian digits,
/// grouped with dashes): the first word that passes
/// [`normalize_activation_code`]. For tests and demos that play the
/// customer reading the SMS.
pub fn find_activation_code(body: &str) -> Option<String> {
    body.split(|c: char| c.is_whitespace())
        .map(|w| w.trim_matches(|c: char| !(c.is_numeric())))
        .filter(|w| w.chars().filter(|c| c.is_numeric()).count() >= 10)
        .find_map(|w| normalize_activation_code(w).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_render_and_code_is_found() {
        let m = Message::ActivationCode {
            code: "12345-67897",
            minutes: 15,
            last4: "0001",
        };
        let fa = m.render(Language::Fa);
        assert!(fa.contains("۱۵"));
        assert!(fa.contains("۰۰۰۱"));
        assert_eq!(find_activation_code(&fa).as_deref(), Some("1234567897"));
        let en = m.render(Language::En);
        assert!(en.contains("15 minutes"));
        assert_eq!(find_activation_code(&en).as_deref(), Some("1234567897"));
        assert!(!format!("{m:?}").contains("12345"));
        assert_eq!(find_activation_code("no code here 12345"), None);
        let b = Message::CardBlocked {
            last4: "0001",
            minutes: 15,
        };
        assert!(b.render(Language::Fa).contains("مسدود"));
        assert_eq!(persian_digits("a1b2"), "a۱b۲");
    }
}
