//! App password rules and normalisation.

use zeroize::Zeroizing;

use crate::error::WeakPasswordReason;

/// Fewest characters an app password may have.
pub const MIN_PASSWORD_CHARS: usize = 6;
/// Most characters an app password may have.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// The bytes the KDF sees: the password with Persian (U+06F0–U+06F9) and
/// Arabic-Indic (U+0660–U+0669) digits mapped to ASCII, so `۱۳۷۹۲۴` typed
/// on a Persian keyboard and `137924` typed on a Latin one are the same
/// password. Nothing else is changed.
pub fn normalize(password: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(password.len()));
    for c in password.chars() {
        let mapped = match c {
            '\u{06F0}'..='\u{06F9}' => char::from(b'0' + (c as u32 - 0x06F0) as u8),
            '\u{0660}'..='\u{0669}' => char::from(b'0' + (c as u32 - 0x0660) as u8),
            other => other,
        };
        out.push(mapped);
    }
    out
}

/// Checks a new app password: 6 to 128 characters, no control
/// characters, not one character repeated, not a straight run up or down
/// (`123456`, `987654`, `abcdef`), compared after [`normalize`].
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
            ("137924", Ok(())),
            ("۱۳۷۹۲۴", Ok(())),
            ("123457", Ok(())),
            ("correct horse", Ok(())),
            ("رمز عبور من", Ok(())),
        ];
        for (pw, want) in cases {
            assert_eq!(check_strength(pw), *want, "{pw:?}");
        }
        assert_eq!(check_strength(&"x1".repeat(65)), Err(TooLong));
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
            if s.chars().count() < MIN_PASSWORD_CHARS {
                prop_assert_eq!(r, Err(TooShort));
            }
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
