//! Property tests of pooya-protocol: generation and verification agree,
//! bindings (cap, amount, payee, time) hold, codes keep their digits, and
//! no parser panics on arbitrary text.

use pooya_protocol::{
    CardSeed, Claim, OcraSuite, Outcome, Pan, Policies, first_pin, format_rials, format_rials_fa,
    normalize_activation_code, normalize_phone, parse_amount, second_pin, transaction_pin, verify,
};
use pooya_protocol::{Transaction, TxType};
use proptest::prelude::*;

fn policies_strategy() -> impl Strategy<Value = Policies> {
    (
        6u32..=8,
        6u32..=10,
        prop::sample::select(vec![30u64, 45, 60, 120, 300]),
        0u32..=2,
    )
        .prop_map(|(d1, d2, step, window)| {
            let mut p = Policies::default();
            p.first.digits = d1;
            p.second.digits = d2;
            p.first.step = step;
            p.second.step = step;
            p.first.window = window;
            p.second.window = window;
            p
        })
}

// Times up to year 2100, away from zero so a window never underflows.
const TIME: core::ops::Range<u64> = 1_000_000..4_102_444_800;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn second_pin_round_trip(seed in any::<[u8; 32]>(), time in TIME, tier_ix in 0usize..6,
                             frac in 1u64..=1000, policies in policies_strategy()) {
        let keys = CardSeed::from_bytes(seed).derive_keys();
        let tiers = policies.cap_ladder.tiers().to_vec();
        let tier = tiers[tier_ix % tiers.len()];
        let pin = second_pin(&keys, &policies, tier, time).unwrap();
        prop_assert_eq!(pin.code.len(), policies.second.digits as usize);
        prop_assert!(pin.code.bytes().all(|b| b.is_ascii_digit()));
        prop_assert!(pin.valid_from <= time && time < pin.valid_until);

        // Any amount up to the cap, any time inside the window: accepted.
        let amount = (tier * frac / 1000).max(1);
        let w = u64::from(policies.second.window) * policies.second.step;
        for t in [time, pin.valid_from.saturating_sub(w), pin.valid_until - 1 + w] {
            let out = verify(&keys, &policies, Claim::Second { amount }, &pin.code, t, 0).unwrap();
            prop_assert!(matches!(out, Outcome::Accepted(v) if v.tier == Some(tier) && v.step == pin.step));
        }
        // Above the cap: rejected.
        let out = verify(&keys, &policies, Claim::Second { amount: tier + 1 }, &pin.code, time, 0).unwrap();
        let rejected = matches!(out, Outcome::Rejected { .. });
        prop_assert!(rejected);
        // Outside the window: rejected.
        let late = pin.valid_until + w;
        let out = verify(&keys, &policies, Claim::Second { amount }, &pin.code, late, 0).unwrap();
        let rejected = matches!(out, Outcome::Rejected { .. });
        prop_assert!(rejected);
    }

    #[test]
    fn transaction_pin_round_trip(seed in any::<[u8; 32]>(), time in TIME, amount in 1u64..10_000_000_000,
                                  payee in " {0,2}[a-zA-Z0-9][a-zA-Z0-9._-]{0,39} {0,2}", other in "[a-z]{1,8}", policies in policies_strategy(),
                                  tx_type in prop::sample::select(TxType::ALL.to_vec()), other_type in prop::sample::select(TxType::ALL.to_vec())) {
        prop_assume!(!payee.trim().is_empty());
        let keys = CardSeed::from_bytes(seed).derive_keys();
        let claim = |t, amount, payee| Claim::Transaction(Transaction::new(t, amount, payee));
        let pin = transaction_pin(&keys, &policies, &Transaction::new(tx_type, amount, &payee), time).unwrap();
        prop_assert_eq!(pin.code.len(), policies.second.digits as usize);
        let ok = verify(&keys, &policies, claim(tx_type, amount, &payee), &pin.code, time, 0).unwrap();
        prop_assert!(matches!(ok, Outcome::Accepted(_)));
        let other_payee = format!("{}{other}", payee.trim());
        let no = verify(&keys, &policies, claim(tx_type, amount, &other_payee), &pin.code, time, 0).unwrap();
        let rejected = matches!(no, Outcome::Rejected { .. });
        prop_assert!(rejected);
        let no = verify(&keys, &policies, claim(tx_type, amount + 1, &payee), &pin.code, time, 0).unwrap();
        let rejected = matches!(no, Outcome::Rejected { .. });
        prop_assert!(rejected);
        if other_type != tx_type {
            let no = verify(&keys, &policies, claim(other_type, amount, &payee), &pin.code, time, 0).unwrap();
            let rejected = matches!(no, Outcome::Rejected { .. });
            prop_assert!(rejected);
        }
    }

    #[test]
    fn first_pin_round_trip(seed in any::<[u8; 32]>(), time in TIME, policies in policies_strategy()) {
        let keys = CardSeed::from_bytes(seed).derive_keys();
        let pin = first_pin(&keys, &policies, time).unwrap();
        prop_assert_eq!(pin.code.len(), policies.first.digits as usize);
        let ok = verify(&keys, &policies, Claim::First, &pin.code, time, 0).unwrap();
        prop_assert!(matches!(ok, Outcome::Accepted(v) if v.step == pin.step && v.drift == 0));
        let w = u64::from(policies.first.window) + 1;
        let no = verify(&keys, &policies, Claim::First, &pin.code, pin.valid_from + w * policies.first.step, 0).unwrap();
        let rejected = matches!(no, Outcome::Rejected { .. });
        prop_assert!(rejected);
    }

    #[test]
    fn parsers_never_panic(text in "\\PC{0,80}") {
        let _ = OcraSuite::parse(&text);
        let _ = parse_amount(&text);
        let _ = Pan::parse(&text);
        let _ = normalize_phone(&text);
        let _ = normalize_activation_code(&text);
    }

    #[test]
    fn suite_like_text_never_panics(text in "OCRA-1:HOTP-SHA(1|256|512)-[0-9]{1,2}:(C-)?Q[ANHX][0-9]{1,2}(-P[A-Z0-9]{3,7})?(-S[0-9]{1,4})?(-T[0-9]{1,3}[SMHX])?") {
        if let Ok(suite) = OcraSuite::parse(&text) {
            prop_assert_eq!(suite.as_str(), text.as_str());
        }
    }

    #[test]
    fn amounts_round_trip(amount in 1u64..=u64::MAX, pad in " {0,3}") {
        prop_assert_eq!(parse_amount(&format!("{pad}{}{pad}", format_rials(amount))), Ok(amount));
        prop_assert_eq!(parse_amount(&format_rials_fa(amount)), Ok(amount));
        prop_assert_eq!(parse_amount(&amount.to_string()), Ok(amount));
    }

    #[test]
    fn amount_like_text_is_never_silently_zero(text in "[0-9۰-۹٠-٩,٬،. +-]{0,30}") {
        if let Ok(v) = parse_amount(&text) {
            prop_assert!(v > 0);
        }
    }
}
