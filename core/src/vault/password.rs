//! App password rules and normalisation.

use zeroize::Zeroizing;

use crate::error::WeakPasswordReason;

/// Fewest characters an app password may have.
pub const MIN_PASSWORD_CHARS: usize = 6;
/// Most characters an app password may have.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// Fewest digits a password made only of digits may have.
pub const MIN_DIGIT_ONLY_CHARS: usize = 8;

/// The embedded common-password list (one a line, `#` comments).
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// The bytes the KDF sees, the same for every way a customer may type the
/// password:
///
/// 1. Unicode NFC (UAX #15): a letter typed as base + combining mark is
///    the precomposed letter (`e` U+0301 → `é`; `و` U+0654 → `ؤ`).
/// 2. Persian (U+06F0–U+06F9) and Arabic-Indic (U+0660–U+0669) digits
///    become ASCII, so `۱۳۷۹۲۴۸۵` on a Persian keyboard and `13792485` on
///    a Latin one are the same password.
/// 3. The Arabic yeh ي (U+064A) and kaf ك (U+0643), which Arabic
///    keyboards (and some Persian ones) type, become the Persian ی
///    (U+06CC) and ک (U+06A9), so either keyboard's letter unlocks.
///
/// Nothing else is changed (no case folding, no trimming). Applied when a
/// password is set and at every unlock. Vaults made before steps 1 and 3
/// existed are still opened: see [`legacy_normalize`].
pub fn normalize(password: &str) -> Zeroizing<String> {
    use unicode_normalization::UnicodeNormalization;
    let mut out = Zeroizing::new(String::with_capacity(password.len()));
    for c in password.nfc() {
        out.push(map_char(c));
    }
    out
}

/// The normalisation of vaults made before NFC and letter unification
/// (digits only). [`Vault`](super::Vault) tries it when the current form
/// fails and differs, and then rewraps the slot under [`normalize`].
pub fn legacy_normalize(password: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(password.len()));
    for c in password.chars() {
        out.push(map_digit(c));
    }
    out
}

fn map_digit(c: char) -> char {
    match c {
        '\u{06F0}'..='\u{06F9}' => char::from(b'0' + (c as u32 - 0x06F0) as u8),
        '\u{0660}'..='\u{0669}' => char::from(b'0' + (c as u32 - 0x0660) as u8),
        other => other,
    }
}

fn map_char(c: char) -> char {
    match c {
        '\u{064A}' => '\u{06CC}',
        '\u{0643}' => '\u{06A9}',
        other => map_digit(other),
    }
}

/// The common-password list, each entry normalised and lower-cased, built
/// once.
fn common_passwords() -> &'static [Box<str>] {
    static LIST: std::sync::OnceLock<Vec<Box<str>>> = std::sync::OnceLock::new();
    LIST.get_or_init(|| {
        let mut v: Vec<Box<str>> = COMMON_PASSWORDS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| normalize(l).to_lowercase().into_boxed_str())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    })
}

/// Checks a new app password, after [`normalize`]: 6 to 128 characters,
/// no control characters, not one character repeated, not a straight run
/// up or down (`123456`, `987654`, `abcdef`), at least 8 digits when it is
/// only digits, and not on the embedded common-password list (compared
/// ignoring case).
///
/// # Errors
/// The [`WeakPasswordReason`].
pub fn check_strength(password: &str) -> Result<(), WeakPasswordReason> {
    let norm = normalize(password);
    let chars: Zeroizing<Vec<char>> = Zeroizing::new(norm.chars().collect());
    if chars.len() < MIN_PASSWORD_CHARS {
        return Err(WeakPasswordReason::TooShort);
    }
    if chars.len() > MAX_PASSWORD_CHARS {
        return Err(WeakPasswordReason::TooLong);
    }
    if chars.iter().any(|c| c.is_control()) {
        return Err(WeakPasswordReason::ControlCharacter);
    }
    let lower: Zeroizing<Vec<u32>> = Zeroizing::new(
        chars
            .iter()
            .map(|c| c.to_lowercase().next().map_or(*c as u32, |l| l as u32))
            .collect(),
    );
    if lower.windows(2).all(|w| w[0] == w[1]) {
        return Err(WeakPasswordReason::AllSame);
    }
    let up = lower.windows(2).all(|w| w[0].checked_add(1) == Some(w[1]));
    let down = lower.windows(2).all(|w| w[0].checked_sub(1) == Some(w[1]));
    if up || down {
        return Err(WeakPasswordReason::Sequence);
    }
    if chars.len() < MIN_DIGIT_ONLY_CHARS && chars.iter().all(char::is_ascii_digit) {
        return Err(WeakPasswordReason::TooFewDigits);
    }
    let folded = Zeroizing::new(norm.to_lowercase());
    if common_passwords()
        .binary_search_by(|e| (**e).cmp(folded.as_str()))
        .is_ok()
    {
        return Err(WeakPasswordReason::Common);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use WeakPasswordReason::*;
    use proptest::prelude::*;

    #[test]
    fn table() {
        let cases: &[(&str, Result<(), WeakPasswordReason>)] = &[
            ("", Err(TooShort)),
            ("12345", Err(TooShort)),
            ("123456", Err(Sequence)),
            ("654321", Err(Sequence)),
            ("0123456789", Err(Sequence)),
            ("abcdefg", Err(Sequence)),
            ("AbCdEf", Err(Sequence)),
            ("111111", Err(AllSame)),
            ("aaaaaaaa", Err(AllSame)),
            ("۱۲۳۴۵۶", Err(Sequence)),
            ("۱۱۱۱۱۱", Err(AllSame)),
            ("12345\n", Err(ControlCharacter)),
            // Digits only (after digit normalisation): at least 8.
            ("137924", Err(TooFewDigits)),
            ("۱۳۷۹۲۴", Err(TooFewDigits)),
            ("1379248", Err(TooFewDigits)),
            ("١٣٧٩٢٤٨", Err(TooFewDigits)),
            ("13792485", Ok(())),
            ("۱۳۷۹۲۴۸۵", Ok(())),
            ("13792a", Ok(())),
            // The embedded common-password list, whatever the case or
            // keyboard.
            ("password", Err(Common)),
            ("PassWord", Err(Common)),
            ("qwerty123", Err(Common)),
            ("12341234", Err(Common)),
            ("۱۲۳۴۱۲۳۴", Err(Common)),
            ("iloveyou", Err(Common)),
            // "qwerty" and "password" typed on a Persian keyboard.
            ("ضصثقفغ", Err(Common)),
            ("حشسسصخقی", Err(Common)),
            // "یاعلی" with the Arabic ي is the same list entry.
            ("ياعلي۱۲۳", Err(Common)),
            ("یاعلی۱۲۳", Err(Common)),
            ("correct horse", Ok(())),
            ("رمز عبور من", Ok(())),
        ];
        for (pw, want) in cases {
            assert_eq!(check_strength(pw), *want, "{pw:?}");
        }
        assert_eq!(check_strength(&"x1".repeat(65)), Err(TooLong));
    }

    #[test]
    fn persian_and_arabic_letters_are_the_same_password() {
        // ي (U+064A) and ك (U+0643) from an Arabic keyboard become the
        // Persian ی (U+06CC) and ک (U+06A9).
        assert_eq!(&*normalize("\u{064A}\u{0643}"), "\u{06CC}\u{06A9}");
        assert_eq!(normalize("كتاب علي"), normalize("کتاب علی"));
        // NFC: a decomposed é (e + U+0301) is the composed é (U+00E9).
        assert_eq!(&*normalize("caf\u{0065}\u{0301}"), "caf\u{00E9}");
        // Hamza above as a combining mark composes too (U+0648 U+0654 →
        // U+0624).
        assert_eq!(&*normalize("\u{0648}\u{0654}"), "\u{0624}");
    }

    #[test]
    fn the_common_list_is_embedded_and_normalised() {
        let list = common_passwords();
        assert!(list.len() >= 200, "{}", list.len());
        for entry in list {
            assert_eq!(*normalize(entry), **entry);
            assert_eq!(entry.to_lowercase(), **entry);
        }
    }

    #[test]
    fn persian_digits_are_the_same_password() {
        assert_eq!(&*normalize("۱۳۷۹۲۴"), "137924");
        assert_eq!(&*normalize("١٣٧٩٢٤"), "137924");
        assert_eq!(&*normalize("pass۱"), "pass1");
    }

    proptest! {
        #[test]
        fn never_panics_and_short_is_refused(s in ".{0,140}") {
            let r = check_strength(&s);
            if normalize(&s).chars().count() < MIN_PASSWORD_CHARS {
                prop_assert_eq!(r, Err(TooShort));
            }
        }

        #[test]
        fn short_digit_strings_are_refused(d in "[0-9]{6,7}") {
            let r = check_strength(&d);
            prop_assert!(r == Err(TooFewDigits) || r == Err(Sequence) || r == Err(AllSame), "{:?}", r);
        }

        #[test]
        fn normalisation_is_idempotent(s in ".{0,40}") {
            let once = normalize(&s);
            prop_assert_eq!(&*normalize(&once), &*once);
        }

        #[test]
        fn runs_are_refused(start in 0x30u32..0x4000, len in 6usize..20, down in any::<bool>()) {
            let s: String = (0..len as u32)
                .filter_map(|i| char::from_u32(if down { start + 40 - i } else { start + i }))
                .collect();
            prop_assume!(s.chars().count() == len);
            // Persian and Arabic-Indic digits normalise to ASCII, which
            // breaks a run that crosses into them (start = 0x6E8 did).
            prop_assume!(*normalize(&s) == s);
            prop_assume!(s.chars().all(|c| !c.is_control() && c.to_lowercase().count() == 1 && c.to_lowercase().next() == Some(c)));
            prop_assert_eq!(check_strength(&s), Err(Sequence));
        }
    }
}
