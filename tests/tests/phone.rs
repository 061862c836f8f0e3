//! The phone core (`pooya_core::Phone`) against a real issuer over HTTP
//! on 127.0.0.1: activation, caps, PINs the bank accepts and refuses,
//! tampered answers, a wrong pinned key, a phone clock ten minutes off,
//! two issuers in one vault, a restart, a second activation of a card.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::*;
use pooya_core::{CoreError, Phone};
use pooya_protocol::{PinKind, TxType};
use serde_json::{Value, json};

/// A phone with one issuer (`bank`) and one activated card.
fn activated(bank: &Bank, device: &Device, pan: &str) -> (Phone, i64) {
    let mut phone = device.create(Arc::new(HttpTransport));
    phone
        .add_issuer("bank", &bank.url(), &bank.key(), &bank.activation_key())
        .unwrap();
    let code = bank.enroll(pan);
    let added = phone.add_card("bank", &code, None).unwrap();
    (phone, added.card.id)
}

#[test]
fn activation_caps_and_pins_the_bank_accepts() {
    let bank = Bank::start(T0);
    let device = Device::new(T0);
    let mut phone = device.create(Arc::new(HttpTransport));
    // The phone number is set once.
    assert_eq!(
        phone.set_phone_number("09120000000").err(),
        Some(CoreError::PhoneAlreadySet)
    );
    let issuer = phone
        .add_issuer(
            "bank",
            &format!("{}/", bank.url()),
            &bank.key(),
            &bank.activation_key(),
        )
        .unwrap();
    assert_eq!(issuer.base_url, bank.url());

    let card_pan = pan(1);
    let code = bank.enroll(&card_pan);
    // As typed: Persian digits, grouped with dashes and spaces.
    let typed = persian(&format!(" {} - {} ", &code[..5], &code[5..]));
    let added = phone.add_card("bank", &typed, Some("Salary")).unwrap();
    let c = &added.card;
    assert_eq!(
        c.masked_pan,
        pooya_protocol::Pan::parse(&card_pan).unwrap().masked()
    );
    assert_eq!(c.last4, &card_pan[12..]);
    assert_eq!(c.bank_name_en, "Bank Mellat");
    assert_eq!(c.bank_name_fa, "بانک ملت");
    assert_eq!(c.label, "Salary");
    assert_eq!(c.cap, 5_000_000, "a new card starts at the lowest tier");
    assert_eq!(added.time_offset_secs, 0);
    assert_eq!(added.replaced, None);
    let id = c.id;

    // First PIN: accepted once.
    let first = phone.first_pin(id).unwrap();
    assert_eq!(first.kind, PinKind::First);
    assert_eq!(
        (first.valid_from, first.valid_until, first.seconds_left),
        (T0, T0 + 60, 60)
    );
    assert!(bank.accepts(&card_pan, &first.code, 0, None, "first"));
    assert_eq!(
        bank.verify(&card_pan, &first.code, 0, None, "first").1,
        "replayed"
    );

    // Caps: raising needs the password; between tiers rounds down.
    assert_eq!(
        phone.set_cap(id, 30_000_000, None).err(),
        Some(CoreError::PasswordRequired)
    );
    assert!(matches!(
        phone.set_cap(id, 30_000_000, Some("wrong password 1")),
        Err(CoreError::WrongPassword { .. })
    ));
    assert_eq!(phone.card(id).unwrap().cap, 5_000_000);
    let change = phone.set_cap(id, 30_000_000, Some(PASSWORD)).unwrap();
    assert_eq!(
        (change.previous, change.cap, change.rounded_down()),
        (5_000_000, 20_000_000, true)
    );
    assert_eq!(
        phone.set_cap(id, 1_000, None).err(),
        Some(CoreError::CapBelowLowestTier {
            lowest_tier: 5_000_000
        })
    );

    // Second PIN at the card's cap: above refused, within accepted, replay refused.
    let second = phone.second_pin(id, None).unwrap();
    assert_eq!(second.cap, Some(20_000_000));
    assert_eq!(
        bank.verify(&card_pan, &second.code, 20_000_001, None, "second")
            .1,
        "wrong_code"
    );
    assert!(bank.accepts(&card_pan, &second.code, 20_000_000, None, "second"));
    assert_eq!(
        bank.verify(&card_pan, &second.code, 1, None, "second").1,
        "replayed"
    );

    // A transaction-bound PIN: wrong payee and wrong amount refused.
    let tx = phone
        .transaction_pin(id, TxType::Purchase, 1_250_000, "IR-SHOP-42")
        .unwrap();
    assert_eq!(tx.amount, Some(1_250_000));
    // Named as another transaction type (a card-to-card transfer of the
    // same amount to the same payee): refused.
    assert_eq!(
        bank.verify_tx(
            &card_pan,
            &tx.code,
            1_250_000,
            "IR-SHOP-42",
            "transfer",
            "second"
        )
        .0,
        "rejected"
    );
    assert_eq!(
        bank.verify(&card_pan, &tx.code, 1_250_000, Some("IR-EVIL-99"), "second")
            .0,
        "rejected"
    );
    assert_eq!(
        bank.verify(&card_pan, &tx.code, 1_250_001, Some("IR-SHOP-42"), "second")
            .0,
        "rejected"
    );
    let (r, _, matched) = bank.verify(&card_pan, &tx.code, 1_250_000, Some("IR-SHOP-42"), "second");
    assert_eq!(
        (r.as_str(), matched.as_deref()),
        ("accepted", Some("transaction"))
    );
    assert_eq!(
        phone
            .transaction_pin(id, TxType::Transfer, 20_000_001, "IR-SHOP-42")
            .err(),
        Some(CoreError::AmountAboveCap { cap: 20_000_000 })
    );

    // Next step: a second PIN with a lower requested cap = min, rounded.
    bank.clock.advance(60);
    device.clock.advance(60);
    let low = phone.second_pin(id, Some(10_000_000)).unwrap();
    assert_eq!(
        (low.cap, low.requested_cap, low.cap_adjusted()),
        (Some(5_000_000), Some(10_000_000), true)
    );
    assert_eq!(
        bank.verify(&card_pan, &low.code, 5_000_001, None, "second")
            .0,
        "rejected"
    );
    assert!(bank.accepts(&card_pan, &low.code, 5_000_000, None, "second"));
    // Asking for more than the card's cap gives the card's cap.
    let high = phone.second_pin(id, Some(2_000_000_000)).unwrap();
    assert_eq!(high.cap, Some(20_000_000));
    // The generic entry point matches the specific ones.
    let again = phone
        .pin(id, PinKind::Second, Some(2_000_000_000), None)
        .unwrap();
    assert_eq!(again.code, high.code);

    // Lowering is free; cards by last four; rename; remove needs the password.
    assert_eq!(phone.set_cap(id, 5_000_000, None).unwrap().cap, 5_000_000);
    assert_eq!(phone.find_card(&persian(&card_pan[12..])).unwrap().id, id);
    assert_eq!(phone.find_card(&id.to_string()).unwrap().id, id);
    assert_eq!(phone.find_card("0000").err(), Some(CoreError::CardNotFound));
    assert_eq!(phone.rename_card(id, "Rent").unwrap().label, "Rent");
    assert!(matches!(
        phone.remove_card(id, "wrong password 1"),
        Err(CoreError::WrongPassword { .. })
    ));
    assert_eq!(phone.cards().unwrap().len(), 1);
    phone.remove_card(id, PASSWORD).unwrap();
    assert!(phone.cards().unwrap().is_empty());
}

#[test]
fn check_digit_is_checked_before_any_network_call() {
    let bank = Bank::start(T0);
    let device = Device::new(T0);
    let counting = Arc::new(CountingTransport::default());
    let mut phone = device.create(counting.clone());
    phone
        .add_issuer("bank", &bank.url(), &bank.key(), &bank.activation_key())
        .unwrap();
    let code = bank.enroll(&pan(2));
    let mut digits: Vec<char> = code.chars().collect();
    digits[3] = if digits[3] == '1' { '2' } else { '1' };
    let typo: String = digits.into_iter().collect();
    for bad in [
        typo.as_str(),
        "12345",
        "12345678901234567",
        "12a4567897",
        "",
    ] {
        assert!(
            matches!(
                phone.add_card("bank", bad, None),
                Err(CoreError::InvalidActivationCode(_))
            ),
            "{bad}"
        );
    }
    assert_eq!(counting.calls.load(Ordering::SeqCst), 0);
    // The right code then works, in one call.
    phone.add_card("bank", &code, None).unwrap();
    assert_eq!(counting.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn tampered_answers_are_refused_and_nothing_is_stored() {
    let bank = Bank::start(T0);
    let device = Device::new(T0 + 120);
    let proxy = Arc::new(TamperingTransport::default());
    let mut phone = device.create(proxy.clone());
    phone
        .add_issuer("bank", &bank.url(), &bank.key(), &bank.activation_key())
        .unwrap();

    fn edit(f: impl Fn(&mut Value) + Send + Sync + 'static) -> Tamper {
        Box::new(move |status, mut v| {
            f(&mut v);
            (status, serde_json::to_vec(&v).unwrap())
        })
    }
    type Expect = fn(&CoreError) -> bool;
    let cases: Vec<(&str, Tamper, Expect)> = vec![
        (
            "flipped signature byte",
            edit(|v| {
                let s = v["signature"].as_str().unwrap();
                let flipped = if s.ends_with('0') { "1" } else { "0" };
                v["signature"] = json!(format!("{}{flipped}", &s[..s.len() - 1]));
            }),
            |e| *e == CoreError::BadSignature,
        ),
        (
            "another card number",
            edit(|v| {
                v["masked_pan"] = json!("6037 99•• •••• 9999");
                v["last4"] = json!("9999");
            }),
            |e| *e == CoreError::BadSignature,
        ),
        (
            "looser policies",
            edit(|v| v["policies"]["second"]["window"] = json!(2)),
            |e| *e == CoreError::BadSignature,
        ),
        (
            "a higher cap tier",
            edit(|v| v["policies"]["cap_ladder"][0] = json!(6_000_000)),
            |e| *e == CoreError::BadSignature,
        ),
        (
            "another server time",
            edit(|v| v["server_time"] = json!(v["server_time"].as_u64().unwrap() + 3600)),
            |e| *e == CoreError::BadSignature,
        ),
        (
            "another issuer key",
            edit(|v| v["issuer_ephemeral_public_key"] = json!("11".repeat(32))),
            |e| *e == CoreError::BadSignature,
        ),
        (
            "an unknown field",
            edit(|v| v["seed"] = json!("00".repeat(32))),
            |e| matches!(e, CoreError::BadResponse(_)),
        ),
        (
            "a missing field",
            edit(|v| {
                v.as_object_mut().unwrap().remove("policies");
            }),
            |e| matches!(e, CoreError::BadResponse(_)),
        ),
        (
            "not JSON",
            Box::new(|status, _| (status, b"<html>hello</html>".to_vec())),
            |e| matches!(e, CoreError::BadResponse(_)),
        ),
        (
            "an error status",
            Box::new(|_, _| (500, br#"{"error":"internal","message":"x"}"#.to_vec())),
            |e| matches!(e, CoreError::IssuerError { status: 500, .. }),
        ),
    ];
    for (n, (what, tamper, expected)) in cases.into_iter().enumerate() {
        let code = bank.enroll(&pan(100 + n as u64));
        proxy.set(Some(tamper));
        let err = phone.add_card("bank", &code, None).unwrap_err();
        assert!(expected(&err), "{what}: {err:?}");
        assert!(
            phone.cards().unwrap().is_empty(),
            "{what}: a card was stored"
        );
        assert_eq!(
            phone.issuers().unwrap()[0].time_offset_secs,
            0,
            "{what}: offset stored"
        );
        assert_eq!(phone.vault().status().unwrap().card_count, 0);
    }
    // Untouched, the next activation goes through and measures the offset.
    proxy.set(None);
    let code = bank.enroll(&pan(200));
    let added = phone.add_card("bank", &code, None).unwrap();
    assert_eq!(added.time_offset_secs, -120);
    assert_eq!(phone.issuers().unwrap()[0].time_offset_secs, -120);
}

#[test]
fn the_wrong_pinned_key_is_refused() {
    let bank = Bank::start(T0);
    let other = Bank::start(T0);
    let device = Device::new(T0);
    let mut phone = device.create(Arc::new(HttpTransport));
    // The bank's URL with another issuer's signing key pinned.
    phone
        .add_issuer("bank", &bank.url(), &other.key(), &bank.activation_key())
        .unwrap();
    let code = bank.enroll(&pan(3));
    assert_eq!(
        phone.add_card("bank", &code, None).err(),
        Some(CoreError::BadSignature)
    );
    assert!(phone.cards().unwrap().is_empty());
    // Another issuer's activation key: the request is sealed to it, and
    // this bank cannot open it (nor read the code in it).
    phone
        .add_issuer(
            "sealed-elsewhere",
            &bank.url(),
            &bank.key(),
            &other.activation_key(),
        )
        .unwrap();
    let code = bank.enroll(&pan(4));
    assert_eq!(
        phone.add_card("sealed-elsewhere", &code, None).err(),
        Some(CoreError::IssuerError {
            status: 400,
            code: "not_sealed_to_issuer".into()
        })
    );
    assert!(phone.cards().unwrap().is_empty());
    assert_eq!(
        phone
            .add_issuer("x", &bank.url(), "abcd", &bank.activation_key())
            .err(),
        Some(CoreError::InvalidField {
            field: "public_key",
            reason: "must be 64 hex digits (an Ed25519 public key)"
        })
    );
}

#[test]
fn a_phone_clock_ten_minutes_off_still_gives_accepted_codes() {
    for skew in [600i64, -600] {
        let bank = Bank::start(T0);
        let device = Device::new(T0.checked_add_signed(skew).unwrap());
        let card_pan = pan(4);
        let (mut phone, id) = activated(&bank, &device, &card_pan);
        assert_eq!(phone.issuers().unwrap()[0].time_offset_secs, -skew);
        assert_eq!(phone.issuer_time("bank").unwrap(), T0);

        let first = phone.first_pin(id).unwrap();
        assert_eq!(first.valid_from, T0, "the window is in bank time");
        assert!(
            bank.accepts(&card_pan, &first.code, 0, None, "first"),
            "skew {skew}"
        );
        let second = phone.second_pin(id, None).unwrap();
        assert!(
            bank.accepts(&card_pan, &second.code, 5_000_000, None, "second"),
            "skew {skew}"
        );
        let tx = phone
            .transaction_pin(id, TxType::Bill, 4_000_000, "IR-SHOP-42")
            .unwrap();
        assert_eq!(
            bank.verify_tx(
                &card_pan,
                &tx.code,
                4_000_000,
                "IR-SHOP-42",
                "bill",
                "second"
            )
            .0,
            "accepted",
            "skew {skew}"
        );

        // Control: the same card's code from the phone's own clock, without
        // the offset, is ten steps off and refused.
        let secret = phone.vault_mut().card_secret(id).unwrap();
        let raw =
            pooya_protocol::first_pin(&secret.keys, &secret.policies, device.clock_now()).unwrap();
        assert_eq!(
            bank.verify(&card_pan, &raw.code, 0, None, "first").1,
            "wrong_code",
            "skew {skew}"
        );
    }
}

#[test]
fn two_issuers_in_one_vault() {
    let mellat = Bank::start(T0);
    let other = Bank::start(T0 + 300);
    let device = Device::new(T0);
    let mut phone = device.create(Arc::new(HttpTransport));
    phone
        .add_issuer(
            "mellat",
            &mellat.url(),
            &mellat.key(),
            &mellat.activation_key(),
        )
        .unwrap();
    phone
        .add_issuer("other", &other.url(), &other.key(), &other.activation_key())
        .unwrap();
    assert_eq!(
        phone
            .add_issuer("other", &other.url(), &other.key(), &other.activation_key())
            .err(),
        Some(CoreError::IssuerExists)
    );
    let pan_a = pan(5);
    let pan_b = pan_with_bin("603799", 11); // a Bank Melli BIN
    let a = phone
        .add_card("mellat", &mellat.enroll(&pan_a), None)
        .unwrap();
    let b = phone
        .add_card("other", &other.enroll(&pan_b), None)
        .unwrap();
    assert_eq!((a.time_offset_secs, b.time_offset_secs), (0, 300));
    assert_eq!(b.card.bank_name_en, "Bank Melli Iran");
    let cards = phone.cards().unwrap();
    assert_eq!(cards.len(), 2);
    assert_eq!(
        (cards[0].issuer.as_str(), cards[1].issuer.as_str()),
        ("mellat", "other")
    );

    let pa = phone.second_pin(a.card.id, None).unwrap();
    let pb = phone.second_pin(b.card.id, None).unwrap();
    assert_eq!((pa.issuer_time, pb.issuer_time), (T0, T0 + 300));
    // Each bank knows only its card (and says no more than "wrong code"
    // about one it does not know).
    assert_eq!(
        other.verify(&pan_a, &pa.code, 1, None, "second").1,
        "wrong_code"
    );
    assert!(mellat.accepts(&pan_a, &pa.code, 1, None, "second"));
    assert!(other.accepts(&pan_b, &pb.code, 1, None, "second"));
}

#[test]
fn a_reopened_vault_and_a_restarted_bank_still_agree() {
    let mut bank = Bank::start(T0);
    let device = Device::new(T0 - 90);
    let card_pan = pan(6);
    let (phone, id) = activated(&bank, &device, &card_pan);
    drop(phone);
    bank.restart();
    bank.clock.advance(3600);
    device.clock.advance(3600);

    let mut phone = device.reopen(Arc::new(HttpTransport));
    assert_eq!(phone.issuers().unwrap()[0].time_offset_secs, 90);
    let card = phone.card(id).unwrap();
    assert_eq!(card.last4, &card_pan[12..]);
    let first = phone.first_pin(id).unwrap();
    assert!(bank.accepts(&card_pan, &first.code, 0, None, "first"));
    let second = phone.second_pin(id, None).unwrap();
    assert!(bank.accepts(&card_pan, &second.code, 5_000_000, None, "second"));
}

#[test]
fn activating_a_card_again_replaces_it() {
    let bank = Bank::start(T0);
    let device = Device::new(T0);
    let card_pan = pan(8);
    let (mut phone, id) = activated(&bank, &device, &card_pan);
    phone.rename_card(id, "Daily").unwrap();
    phone.set_cap(id, 50_000_000, Some(PASSWORD)).unwrap();
    let old = phone.first_pin(id).unwrap();

    let again = phone
        .add_card("bank", &bank.enroll(&card_pan), None)
        .unwrap();
    assert_eq!(again.replaced, Some(id));
    assert_eq!(phone.cards().unwrap().len(), 1);
    assert_eq!(
        (again.card.label.as_str(), again.card.cap),
        ("Daily", 50_000_000)
    );
    assert_eq!(phone.card(id).err(), Some(CoreError::CardNotFound));
    // The old seed is dead at the bank; the new one works.
    let new = phone.first_pin(again.card.id).unwrap();
    assert_ne!(old.code, new.code);
    assert_eq!(
        bank.verify(&card_pan, &old.code, 0, None, "first").0,
        "rejected"
    );
    assert!(bank.accepts(&card_pan, &new.code, 0, None, "first"));
}

#[test]
fn refusals_and_failures_are_typed() {
    let bank = Bank::start(T0);
    let device = Device::new(T0);
    // No phone number yet.
    let vault = pooya_core::Vault::create(
        &device.path(),
        PASSWORD,
        device.keystore.clone(),
        None,
        device.clock.clone(),
        pooya_core::VaultConfig::with_kdf(pooya_core::KdfParams::FLOOR),
    )
    .unwrap();
    let mut phone = Phone::new(vault, Arc::new(HttpTransport), "e2e").unwrap();
    phone
        .add_issuer("bank", &bank.url(), &bank.key(), &bank.activation_key())
        .unwrap();
    let code = bank.enroll(&pan(9));
    assert_eq!(
        phone.add_card("bank", &code, None).err(),
        Some(CoreError::PhoneNotSet)
    );
    phone.set_phone_number(PHONE).unwrap();
    assert_eq!(
        phone.add_card("nobody", &code, None).err(),
        Some(CoreError::IssuerNotFound)
    );

    // A well-formed code the bank never sent.
    let payload = "123456789";
    let fake = format!(
        "{payload}{}",
        pooya_protocol::ids::luhn_check_digit(payload)
    );
    assert_eq!(
        phone.add_card("bank", &fake, None).err(),
        Some(CoreError::ActivationRefused)
    );
    // The real code still works (one wrong guess does not burn it), once.
    phone.add_card("bank", &code, None).unwrap();
    assert_eq!(
        phone.add_card("bank", &code, None).err(),
        Some(CoreError::ActivationRefused)
    );

    // No bank listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    phone
        .add_issuer(
            "gone",
            &format!("http://127.0.0.1:{closed}"),
            &bank.key(),
            &bank.activation_key(),
        )
        .unwrap();
    assert!(matches!(
        phone.add_card("gone", &code, None),
        Err(CoreError::Network(_))
    ));
    assert_eq!(phone.cards().unwrap().len(), 1);

    // Locked: nothing works without the password.
    phone.vault_mut().lock();
    assert_eq!(phone.first_pin(1).err(), Some(CoreError::Locked));
    assert_eq!(
        phone.add_card("bank", &code, None).err(),
        Some(CoreError::Locked)
    );
}

#[test]
fn a_profile_from_before_activation_v2_is_upgraded_by_adding_the_issuer_again() {
    let bank = Bank::start(T0);
    let device = Device::new(T0);
    let mut phone = device.create(Arc::new(HttpTransport));
    let key = bank.key();
    let signing: [u8; 32] = (0..32)
        .map(|i| u8::from_str_radix(&key[2 * i..2 * i + 2], 16).unwrap())
        .collect::<Vec<u8>>()
        .try_into()
        .unwrap();
    let old = |name: &str, public_key: [u8; 32]| pooya_core::IssuerProfile {
        name: name.into(),
        base_url: bank.url(),
        public_key,
        activation_key: None,
        time_offset_secs: 7,
        time_anchor: None,
    };
    phone.vault_mut().add_issuer(&old("bank", signing)).unwrap();
    phone
        .vault_mut()
        .add_issuer(&old("other", [9; 32]))
        .unwrap();
    let code = bank.enroll(&pan(90));
    assert_eq!(
        phone.add_card("bank", &code, None).err(),
        Some(CoreError::ActivationKeyMissing)
    );
    // Adding it again with both keys upgrades it (same signing key).
    let i = phone
        .add_issuer("bank", &bank.url(), &bank.key(), &bank.activation_key())
        .unwrap();
    assert_eq!(
        i.activation_key_hex.as_deref(),
        Some(bank.activation_key().as_str())
    );
    assert_eq!(i.time_offset_secs, 7);
    phone.add_card("bank", &code, None).unwrap();
    // Once it has an activation key, or for another signing key, the name
    // is taken.
    for name in ["bank", "other"] {
        assert_eq!(
            phone
                .add_issuer(name, &bank.url(), &bank.key(), &bank.activation_key())
                .err(),
            Some(CoreError::IssuerExists),
            "{name}"
        );
    }
}
