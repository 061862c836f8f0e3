//! The SMS texts the bank sends, in Persian (default) or English.
//!
//! Codes inside messages are ASCII digits so phones can offer to copy
//! them; amounts and counts in Persian text use Persian digits.

use pooya_protocol::{TxType, normalize_activation_code};

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
        /// `code` is only the code's second part: the first was shown at
        /// the ATM (two-channel codes).
        split: bool,
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
    /// The card's dynamic PINs were blocked, and the next block within a
    /// day will last until lifted: the warning PSD2 RTS Art. 4 asks for
    /// before a block that lasts.
    CardBlockedLastWarning {
        /// Last four digits of the card.
        last4: &'a str,
        /// Minutes this block lasts.
        minutes: u64,
    },
    /// The card's dynamic PINs were blocked again, the third time in a
    /// day: until the bank lifts the block or the card is re-enrolled.
    CardBlockedUntilLifted {
        /// Last four digits of the card.
        last4: &'a str,
    },
    /// A one-time second PIN, the SMS version's answer to the last four
    /// digits of a card.
    SmsPin {
        /// The code (ASCII digits).
        code: &'a str,
        /// Last four digits of the card.
        last4: &'a str,
        /// Minutes it stays valid (rounded up).
        minutes: u64,
        /// When it expires, Unix seconds (shown as Tehran time).
        expires_at: u64,
    },
    /// A one-time PIN for one payment, asked for on a payment page
    /// (Harim).
    HarimPin {
        /// The code (ASCII digits).
        code: &'a str,
        /// Last four digits of the card.
        last4: &'a str,
        /// The amount in Rials.
        amount: u64,
        /// The transaction type, named on the first line (Central Bank of
        /// Iran rule of 1399/10/08: type, amount and payee).
        tx_type: TxType,
        /// The payee's name from the bank's merchant registry
        /// (`crate::merchants`); shown isolated (U+2068…U+2069, UAX #9
        /// §2.7) on its own line, with the amount on the next.
        payee_name: &'a str,
        /// Minutes it stays valid (rounded up).
        minutes: u64,
        /// When it expires, Unix seconds (shown as Tehran time).
        expires_at: u64,
    },
    /// The short code's answer to anything it cannot serve: how to use
    /// it. Says nothing about which cards or numbers the bank knows.
    SmsHelp {
        /// The short code.
        short_code: &'a str,
    },
    /// A card was activated on a device (sent to the card's registered
    /// phone after every activation).
    CardActivated {
        /// Last four digits of the card.
        last4: &'a str,
        /// The device label the phone sent (no bidi or line-break
        /// characters; shown isolated).
        device_label: &'a str,
        /// When, Unix seconds (shown as Tehran time).
        at: u64,
    },
    /// A card's app state changed (issue 13, item 2).
    AppStatusChanged {
        /// Last four digits of the card.
        last4: &'a str,
        /// Who changed it.
        cause: crate::store::StatusCause,
    },
    /// The short code's answer when codes were sent too recently or too
    /// often.
    SmsWait {
        /// Seconds until a new code can be sent.
        seconds: u64,
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
            Self::CardBlockedUntilLifted { .. } => f.write_str("Message::CardBlockedUntilLifted"),
            Self::CardBlockedLastWarning { .. } => f.write_str("Message::CardBlockedLastWarning"),
            Self::SmsPin { .. } => f.write_str("Message::SmsPin(<redacted>)"),
            Self::HarimPin { .. } => f.write_str("Message::HarimPin(<redacted>)"),
            Self::SmsHelp { .. } => f.write_str("Message::SmsHelp"),
            Self::SmsWait { .. } => f.write_str("Message::SmsWait"),
            Self::CardActivated { .. } => f.write_str("Message::CardActivated"),
            Self::AppStatusChanged { .. } => f.write_str("Message::AppStatusChanged"),
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

/// Tehran's offset from UTC: +03:30, no daylight saving since 2022.
const TEHRAN_OFFSET_SECS: u64 = 3 * 3600 + 30 * 60;

/// Tehran time (UTC+03:30, no daylight saving since 2022) of a Unix time,
/// `HH:MM:SS`.
pub fn tehran_time(unix: u64) -> String {
    let t = (unix + TEHRAN_OFFSET_SECS) % 86_400;
    format!("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A Gregorian date to the Solar Hijri (Jalali) calendar of Iran, by the
/// 33-year arithmetic cycle (exact for 1300–1500 AP, which covers every
/// date the bank sends).
fn jalali_from_gregorian(gy: i64, gm: i64, gd: i64) -> (i64, i64, i64) {
    const BEFORE_MONTH: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let gy2 = if gm > 2 { gy + 1 } else { gy };
    let mut days = 355_666 + 365 * gy + (gy2 + 3) / 4 - (gy2 + 99) / 100
        + (gy2 + 399) / 400
        + gd
        + BEFORE_MONTH[((gm - 1).clamp(0, 11)) as usize];
    let mut jy = -1595 + 33 * (days / 12_053);
    days %= 12_053;
    jy += 4 * (days / 1461);
    days %= 1461;
    if days > 365 {
        jy += (days - 1) / 365;
        days = (days - 1) % 365;
    }
    let (jm, jd) = if days < 186 {
        (1 + days / 31, 1 + days % 31)
    } else {
        (7 + (days - 186) / 30, 1 + (days - 186) % 30)
    };
    (jy, jm, jd)
}

/// Tehran date and time of a Unix time: (`YYYY/MM/DD` in the Solar Hijri
/// calendar, `YYYY-MM-DD` Gregorian, `HH:MM`).
pub fn tehran_datetime(unix: u64) -> (String, String, String) {
    let local = (unix + TEHRAN_OFFSET_SECS) as i64;
    let (y, m, d) = civil_from_days(local.div_euclid(86_400));
    let (jy, jm, jd) = jalali_from_gregorian(y, m, d);
    let t = local.rem_euclid(86_400);
    (
        format!("{jy:04}/{jm:02}/{jd:02}"),
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}", t / 3600, t / 60 % 60),
    )
}

/// "N seconds" or "N minutes" for a wait, in `lang`.
fn wait_text(seconds: u64, lang: Language) -> String {
    match (seconds < 90, lang) {
        (true, Language::Fa) => format!("{} ثانیه", persian_digits(&seconds.to_string())),
        (false, Language::Fa) => {
            format!(
                "{} دقیقه",
                persian_digits(&seconds.div_ceil(60).to_string())
            )
        }
        (true, Language::En) => format!("{seconds} seconds"),
        (false, Language::En) => format!("{} minutes", seconds.div_ceil(60)),
    }
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
                    split: true,
                },
                Language::Fa,
            ) => format!(
                "بانک: بخش دوم کد فعال‌سازی رمز پویا برای کارت {}\n{code}\nبخش اول را خودپرداز نشان داد؛ هر دو را در برنامه وارد کنید. این کد تا {} دقیقه معتبر است. آن را به هیچ‌کس ندهید.",
                persian_digits(last4),
                persian_digits(&minutes.to_string())
            ),
            (
                Self::ActivationCode {
                    code,
                    minutes,
                    last4,
                    split: true,
                },
                Language::En,
            ) => format!(
                "Bank: second part of the dynamic PIN activation code for card {last4}\n{code}\nThe ATM showed the first part; enter both in the app. Valid for {minutes} minutes. Never share it."
            ),
            (
                Self::ActivationCode {
                    code,
                    minutes,
                    last4,
                    split: false,
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
                    split: false,
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
            (Self::CardBlockedLastWarning { last4, minutes }, Language::Fa) => format!(
                "بانک: به دلیل رمزهای پویای نادرست، رمز پویای کارت {} به مدت {} دقیقه مسدود شد. اگر تا ۲۴ ساعت آینده یک بار دیگر مسدود شود، تا رفع آن توسط بانک مسدود می‌ماند. اگر این تلاش‌ها از شما نبوده، با بانک تماس بگیرید.",
                persian_digits(last4),
                persian_digits(&minutes.to_string())
            ),
            (Self::CardBlockedLastWarning { last4, minutes }, Language::En) => format!(
                "Bank: after wrong dynamic PINs, card {last4}'s dynamic PINs are blocked for {minutes} minutes. After one more block within 24 hours they stay blocked until the bank lifts the block. If this was not you, call the bank."
            ),
            (Self::AppStatusChanged { last4, cause }, Language::Fa) => {
                use crate::store::StatusCause;
                let l = persian_digits(last4);
                match cause {
                    StatusCause::AtmDeactivation => format!(
                        "بانک: رمز پویای برنامه برای کارت {l} به درخواست شما در خودپرداز غیرفعال شد. برنامه روی گوشی قبلی دیگر رمز معتبر نمی‌سازد. برای فعال‌سازی دوباره به خودپرداز مراجعه کنید."
                    ),
                    StatusCause::OpsSuspend => format!(
                        "بانک: رمز پویای برنامه برای کارت {l} موقتاً معلق شد. رمز پویای پیامکی، اگر فعال باشد، کار می‌کند. برای اطلاع بیشتر با بانک تماس بگیرید."
                    ),
                    StatusCause::OpsResume => {
                        format!("بانک: رمز پویای برنامه برای کارت {l} دوباره فعال شد.")
                    }
                    StatusCause::OpsRevoke => format!(
                        "بانک: رمز پویای برنامه برای کارت {l} توسط بانک لغو شد. برای فعال‌سازی دوباره به خودپرداز مراجعه کنید. اگر این درخواست شما نبوده، با بانک تماس بگیرید."
                    ),
                    StatusCause::RemovedOnPhone => format!(
                        "بانک: کارت {l} از برنامه رمز پویا روی گوشی شما حذف شد. اگر این کار شما نبوده، فوراً با بانک تماس بگیرید."
                    ),
                }
            }
            (Self::AppStatusChanged { last4, cause }, Language::En) => {
                use crate::store::StatusCause;
                match cause {
                    StatusCause::AtmDeactivation => format!(
                        "Bank: app dynamic PINs for card {last4} were turned off at your request at an ATM. The app on the old phone no longer makes valid PINs. Activate again at an ATM."
                    ),
                    StatusCause::OpsSuspend => format!(
                        "Bank: app dynamic PINs for card {last4} are suspended for now. SMS dynamic PINs, if on, still work. Call the bank to learn more."
                    ),
                    StatusCause::OpsResume => {
                        format!("Bank: app dynamic PINs for card {last4} work again.")
                    }
                    StatusCause::OpsRevoke => format!(
                        "Bank: the bank revoked app dynamic PINs for card {last4}. Activate again at an ATM. If you did not ask for this, call the bank."
                    ),
                    StatusCause::RemovedOnPhone => format!(
                        "Bank: card {last4} was removed from the dynamic PIN app on your phone. If this was not you, call the bank at once."
                    ),
                }
            }
            (Self::CardBlockedUntilLifted { last4 }, Language::Fa) => format!(
                "بانک: به دلیل رمزهای پویای نادرست پیاپی، رمز پویای کارت {} تا اطلاع بعدی مسدود شد. برای رفع آن با بانک تماس بگیرید یا کارت را در خودپرداز دوباره ثبت کنید.",
                persian_digits(last4)
            ),
            (Self::CardBlockedUntilLifted { last4 }, Language::En) => format!(
                "Bank: after repeated wrong dynamic PINs, card {last4}'s dynamic PINs are blocked until further notice. Call the bank, or enroll the card again at an ATM, to lift the block."
            ),
            (
                Self::SmsPin {
                    code,
                    last4,
                    minutes,
                    expires_at,
                },
                Language::Fa,
            ) => format!(
                "بانک: رمز دوم یکبارمصرف کارت {}\n{code}\nتا {} دقیقه (ساعت {}) معتبر است. آن را به هیچ‌کس ندهید.",
                persian_digits(last4),
                persian_digits(&minutes.to_string()),
                persian_digits(&tehran_time(*expires_at))
            ),
            (
                Self::SmsPin {
                    code,
                    last4,
                    minutes,
                    expires_at,
                },
                Language::En,
            ) => format!(
                "Bank: one-time second PIN for card {last4}\n{code}\nValid for {minutes} minutes (until {} Tehran time). Never share it.",
                tehran_time(*expires_at)
            ),
            (
                Self::HarimPin {
                    code,
                    last4,
                    amount,
                    tx_type,
                    payee_name,
                    minutes,
                    expires_at,
                },
                Language::Fa,
            ) => format!(
                "بانک: رمز پویای {} با کارت {}\nپذیرنده: \u{2068}{payee_name}\u{2069}\nمبلغ: {} ریال\n{code}\nتا {} دقیقه (ساعت {}) معتبر است. اگر این {} از شما نیست، رمز را وارد نکنید.",
                tx_type.name_fa(),
                persian_digits(last4),
                pooya_protocol::format_rials_fa(*amount),
                persian_digits(&minutes.to_string()),
                persian_digits(&tehran_time(*expires_at)),
                tx_type.name_fa(),
            ),
            (
                Self::HarimPin {
                    code,
                    last4,
                    amount,
                    tx_type,
                    payee_name,
                    minutes,
                    expires_at,
                },
                Language::En,
            ) => format!(
                "Bank: dynamic PIN for {} with card {last4}\nPayee: \u{2068}{payee_name}\u{2069}\nAmount: {} Rials\n{code}\nValid for {minutes} minutes (until {} Tehran time). If this {} is not yours, do not enter it.",
                harim_en(*tx_type),
                pooya_protocol::format_rials(*amount),
                tehran_time(*expires_at),
                tx_type.name_en().to_lowercase(),
            ),
            (Self::SmsHelp { short_code }, Language::Fa) => format!(
                "بانک: برای دریافت رمز دوم یکبارمصرف، چهار رقم آخر کارتی را که در خودپرداز برای رمز پیامکی ثبت کرده‌اید از همان شماره همراه به {} پیامک کنید.",
                persian_digits(short_code)
            ),
            (Self::SmsHelp { short_code }, Language::En) => format!(
                "Bank: to get a one-time second PIN, text the last four digits of a card registered for SMS PINs at an ATM to {short_code} from the same mobile number."
            ),
            (
                Self::CardActivated {
                    last4,
                    device_label,
                    at,
                },
                Language::Fa,
            ) => {
                let (jalali, _, time) = tehran_datetime(*at);
                format!(
                    "بانک: رمز پویای کارت {} در تاریخ {} ساعت {} روی دستگاه «\u{2068}{device_label}\u{2069}» فعال شد.\nاگر این کار شما نبوده، فوراً با بانک تماس بگیرید یا کارت را در خودپرداز دوباره ثبت کنید تا آن دستگاه از کار بیفتد.",
                    persian_digits(last4),
                    persian_digits(&jalali),
                    persian_digits(&time)
                )
            }
            (
                Self::CardActivated {
                    last4,
                    device_label,
                    at,
                },
                Language::En,
            ) => {
                let (_, date, time) = tehran_datetime(*at);
                format!(
                    "Bank: dynamic PINs of card {last4} were activated on the device \"\u{2068}{device_label}\u{2069}\" on {date} at {time} Tehran time.\nIf this was not you, call the bank at once, or enroll the card again at an ATM to cut that device off."
                )
            }
            (Self::SmsWait { seconds }, Language::Fa) => format!(
                "بانک: رمز به‌تازگی برای شما فرستاده شده است. لطفاً {} دیگر دوباره درخواست کنید.",
                wait_text(*seconds, Language::Fa)
            ),
            (Self::SmsWait { seconds }, Language::En) => format!(
                "Bank: a PIN was sent to you a moment ago. Please ask again in {}.",
                wait_text(*seconds, Language::En)
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

/// Finds the one-time PIN in an SMS text from the SMS version or Harim:
/// the first word of exactly seven ASCII digits. For tests and demos that
/// play the customer reading the SMS.
pub fn find_one_time_code(body: &str) -> Option<String> {
    body.split(|c: char| c.is_whitespace())
        .find(|w| w.len() == 7 && w.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
}

/// How the one-time PIN messages (SMS version and Harim) begin, in every
/// language: the fixed text before the first value.
const ONE_TIME_PIN_PREFIXES: [&str; 2] = [
    "بانک: رمز دوم یکبارمصرف کارت ",
    "Bank: one-time second PIN for card ",
];

/// The English phrase of a Harim SMS's first line: "a purchase", "a
/// card-to-card transfer", "a bill payment".
fn harim_en(t: TxType) -> &'static str {
    match t {
        TxType::Purchase => "a purchase",
        TxType::Transfer => "a card-to-card transfer",
        TxType::Bill => "a bill payment",
    }
}

/// Is `body` an SMS-version or Harim one-time PIN message (and so never an
/// activation code)? For the demo page's outbox panel, which shows only
/// these.
pub fn is_one_time_pin_message(body: &str) -> bool {
    ONE_TIME_PIN_PREFIXES.iter().any(|p| body.starts_with(p))
        || TxType::ALL.into_iter().any(|t| {
            // A Harim PIN's first line, as `render` writes it.
            body.strip_prefix("بانک: رمز پویای ")
                .and_then(|r| r.strip_prefix(t.name_fa()))
                .is_some_and(|r| r.starts_with(" با کارت "))
                || body
                    .strip_prefix("Bank: dynamic PIN for ")
                    .and_then(|r| r.strip_prefix(harim_en(t)))
                    .is_some_and(|r| r.starts_with(" with card "))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tehran_dates_in_both_calendars() {
        // (Unix time, Solar Hijri, Gregorian, time) in Tehran.
        let cases = [
            (1_764_590_400, "1404/09/10", "2025-12-01", "15:30"),
            (1_796_126_400, "1405/09/10", "2026-12-01", "15:30"),
            (1_774_038_600, "1405/01/01", "2026-03-21", "00:00"),
            (1_742_502_540, "1403/12/30", "2025-03-20", "23:59"),
            (1_742_502_600, "1404/01/01", "2025-03-21", "00:00"),
            (1_710_880_200, "1403/01/01", "2024-03-20", "00:00"),
            (1_609_101_000, "1399/10/08", "2020-12-28", "00:00"),
        ];
        for (unix, jalali, gregorian, time) in cases {
            let got = tehran_datetime(unix);
            assert_eq!(
                (got.0.as_str(), got.1.as_str(), got.2.as_str()),
                (jalali, gregorian, time),
                "{unix}"
            );
        }
    }

    #[test]
    fn the_activation_notice_names_card_device_and_time_and_isolates_the_label() {
        let m = Message::CardActivated {
            last4: "0001",
            device_label: "Pixel 8",
            at: 1_796_126_400,
        };
        let fa = m.render(Language::Fa);
        assert!(
            fa.contains("۰۰۰۱") && fa.contains("۱۴۰۵/۰۹/۱۰") && fa.contains("۱۵:۳۰"),
            "{fa}"
        );
        assert!(fa.contains("\u{2068}Pixel 8\u{2069}"), "{fa}");
        let en = m.render(Language::En);
        assert!(
            en.contains("card 0001") && en.contains("2026-12-01 at 15:30"),
            "{en}"
        );
        assert!(
            en.contains("\u{2068}Pixel 8\u{2069}") && en.contains("not you"),
            "{en}"
        );
    }

    #[test]
    fn only_one_time_pin_messages_classify_as_such() {
        for lang in [Language::Fa, Language::En] {
            let pins = [
                Message::SmsPin {
                    code: "1234567",
                    last4: "0001",
                    minutes: 2,
                    expires_at: 1_763_700_120,
                },
                Message::HarimPin {
                    code: "1234567",
                    last4: "0001",
                    amount: 1000,
                    tx_type: TxType::Bill,
                    payee_name: "Bank: one-time",
                    minutes: 2,
                    expires_at: 1_763_700_120,
                },
            ];
            for m in pins {
                assert!(is_one_time_pin_message(&m.render(lang)), "{m:?}");
            }
            let others = [
                Message::ActivationCode {
                    code: "12345-67890",
                    minutes: 10,
                    last4: "0001",
                    split: false,
                },
                Message::ActivationCode {
                    code: "67890",
                    minutes: 10,
                    last4: "0001",
                    split: true,
                },
                Message::CardActivated {
                    last4: "0001",
                    device_label: "Pixel",
                    at: 1_763_700_120,
                },
                Message::SmsChannelEnabled {
                    last4: "0001",
                    short_code: "30003303",
                },
                Message::PhoneChanged { last4: "0001" },
                Message::CardBlocked {
                    last4: "0001",
                    minutes: 15,
                },
                Message::SmsHelp {
                    short_code: "30003303",
                },
                Message::SmsWait { seconds: 30 },
                Message::CardBlockedUntilLifted { last4: "0001" },
                Message::CardBlockedLastWarning {
                    last4: "0001",
                    minutes: 15,
                },
            ];
            for m in others {
                assert!(!is_one_time_pin_message(&m.render(lang)), "{m:?}");
            }
        }
    }

    #[test]
    fn messages_render_and_code_is_found() {
        let m = Message::ActivationCode {
            code: "12345-67897",
            minutes: 15,
            last4: "0001",
            split: false,
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

    #[test]
    fn one_time_pin_messages() {
        let m = Message::SmsPin {
            code: "1234567",
            last4: "0001",
            minutes: 2,
            expires_at: 1_800_000_120,
        };
        let fa = m.render(Language::Fa);
        assert!(fa.contains("۰۰۰۱") && fa.contains("۲ دقیقه"), "{fa}");
        assert_eq!(find_one_time_code(&fa).as_deref(), Some("1234567"));
        assert!(!format!("{m:?}").contains("1234567"));
        // 1_800_000_120 is 2027-01-15 08:02:00 UTC, 11:32:00 in Tehran.
        assert_eq!(tehran_time(1_800_000_120), "11:32:00");
        assert!(fa.contains("۱۱:۳۲:۰۰"), "{fa}");
        let h = Message::HarimPin {
            code: "7654321",
            last4: "0001",
            amount: 1_250_000,
            tx_type: TxType::Purchase,
            payee_name: "Shop",
            minutes: 2,
            expires_at: 1_800_000_120,
        };
        let fa = h.render(Language::Fa);
        let lines: Vec<&str> = fa.lines().collect();
        assert_eq!(lines[1], "پذیرنده: \u{2068}Shop\u{2069}", "{fa}");
        assert_eq!(lines[2], "مبلغ: ۱٬۲۵۰٬۰۰۰ ریال", "{fa}");
        assert_eq!(lines[3], "7654321", "{fa}");
        assert_eq!(find_one_time_code(&fa).as_deref(), Some("7654321"));
        let en = h.render(Language::En);
        let lines: Vec<&str> = en.lines().collect();
        assert_eq!(lines[1], "Payee: \u{2068}Shop\u{2069}", "{en}");
        assert_eq!(lines[2], "Amount: 1,250,000 Rials", "{en}");
        assert!(en.contains("11:32:00"), "{en}");
        assert!(!format!("{h:?}").contains("7654321"));
        assert_eq!(lines[0], "Bank: dynamic PIN for a purchase with card 0001");
        // Each transaction type is named on the first line, in both
        // languages (Central Bank rule of 1399/10/08).
        for (t, fa_line, en_line) in [
            (
                TxType::Purchase,
                "بانک: رمز پویای خرید با کارت ۰۰۰۱",
                "Bank: dynamic PIN for a purchase with card 0001",
            ),
            (
                TxType::Transfer,
                "بانک: رمز پویای کارت به کارت با کارت ۰۰۰۱",
                "Bank: dynamic PIN for a card-to-card transfer with card 0001",
            ),
            (
                TxType::Bill,
                "بانک: رمز پویای پرداخت قبض با کارت ۰۰۰۱",
                "Bank: dynamic PIN for a bill payment with card 0001",
            ),
        ] {
            let m = Message::HarimPin {
                code: "7654321",
                last4: "0001",
                amount: 1_250_000,
                tx_type: t,
                payee_name: "Shop",
                minutes: 2,
                expires_at: 1_800_000_120,
            };
            let fa = m.render(Language::Fa);
            let en = m.render(Language::En);
            assert_eq!(fa.lines().next(), Some(fa_line), "{fa}");
            assert_eq!(en.lines().next(), Some(en_line), "{en}");
            assert!(
                fa.contains(&format!("اگر این {} از شما نیست", t.name_fa())),
                "{fa}"
            );
            assert!(is_one_time_pin_message(&fa) && is_one_time_pin_message(&en));
        }
        let help = Message::SmsHelp {
            short_code: "30003303",
        }
        .render(Language::Fa);
        assert!(help.contains("۳۰۰۰۳۳۰۳"));
        assert_eq!(find_one_time_code(&help), None);
        let wait = Message::SmsWait { seconds: 45 }.render(Language::En);
        assert!(wait.contains("45 seconds"), "{wait}");
        let wait = Message::SmsWait { seconds: 1800 }.render(Language::Fa);
        assert!(wait.contains("۳۰ دقیقه"), "{wait}");
    }
}
