//! The issuer's verification rules against a patient attacker (issue 10),
//! over real HTTP with a manual clock: a failure window that accepted
//! payments do not reset, the warning before a lasting block, replays
//! refused by a high-water mark, and dynamic linking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use pooya_issuer::{Language, Settings};
use pooya_protocol::{Transaction, TxType, first_pin, second_pin, transaction_pin};
use serde_json::Value;

const SHORT: &str = "30003303";

fn bodies(bank: &Bank, phone: &str) -> Vec<String> {
    bank.outbox(phone)
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until `phone` has `n` messages, then a little more, so a message
/// that should not come has had its chance.
fn settled_bodies(bank: &Bank, phone: &str, n: usize) -> Vec<String> {
    bank.wait_outbox(phone, n);
    std::thread::sleep(std::time::Duration::from_millis(300));
    bodies(bank, phone)
}

fn result(v: &Value) -> (String, String) {
    (
        v["result"].as_str().unwrap().to_owned(),
        v["reason"].as_str().unwrap().to_owned(),
    )
}

fn pair(result: &str, reason: &str) -> (String, String) {
    (result.to_owned(), reason.to_owned())
}

#[test]
fn sixteen_wrong_guesses_between_three_payments_block_the_card() {
    let bank = Bank::start();
    let p = pan(301);
    let card = bank.enroll_and_activate(&p, PHONE);
    let pol = card.response.policies.clone();
    let mut wrong = Vec::new();
    let mut good = Vec::new();
    for round in 0..4u64 {
        let t = T0 + round * 60;
        bank.clock.set(t);
        for _ in 0..4 {
            wrong.push(result(
                &bank.verify(&p, "00000000", 5, None, "second").json(),
            ));
        }
        if round < 3 {
            let code = first_pin(&card.keys, &pol, t).unwrap().code;
            good.push(result(&bank.verify(&p, &code, 0, None, "first").json()));
        }
    }
    // Never five in a row, but the tenth failure within 24 hours blocks.
    let mut expect = vec![pair("rejected", "wrong_code"); 10];
    expect.extend(vec![pair("blocked", "too_many_failures"); 6]);
    assert_eq!(wrong, expect);
    assert_eq!(
        good,
        vec![
            pair("accepted", "ok"),
            pair("accepted", "ok"),
            pair("blocked", "too_many_failures"),
        ]
    );
    // One block, one SMS (after the activation code and the activation
    // notice).
    let msgs = settled_bodies(&bank, PHONE, 3);
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert!(msgs[2].contains("مسدود"), "{}", msgs[2]);
    // The block is the ordinary one: a valid code works 15 minutes later.
    let t = T0 + 2 * 60 + 15 * 60;
    bank.clock.set(t);
    let code = first_pin(&card.keys, &pol, t).unwrap().code;
    assert_eq!(
        result(&bank.verify(&p, &code, 0, None, "first").json()),
        pair("accepted", "ok")
    );
}

#[test]
fn failures_older_than_the_window_are_forgotten() {
    let bank = Bank::start_with(Settings {
        failure_window_secs: 3600,
        ..Settings::development()
    });
    let p = pan(302);
    let card = bank.enroll_and_activate(&p, PHONE);
    let pol = card.response.policies.clone();
    // Nine failures, each round closed by a payment, then an hour passes:
    // nine more do not block; the tenth within the hour does.
    let mut t = T0;
    for n in [4, 4, 1] {
        bank.clock.set(t);
        for _ in 0..n {
            let v = bank.verify(&p, "00000000", 5, None, "second").json();
            assert_eq!(result(&v), pair("rejected", "wrong_code"));
        }
        let code = first_pin(&card.keys, &pol, t).unwrap().code;
        assert_eq!(
            result(&bank.verify(&p, &code, 0, None, "first").json()).0,
            "accepted"
        );
        t += 60;
    }
    t = T0 + 3600 + 121;
    for n in [4, 4, 1] {
        bank.clock.set(t);
        for _ in 0..n {
            let v = bank.verify(&p, "00000000", 5, None, "second").json();
            assert_eq!(result(&v), pair("rejected", "wrong_code"));
        }
        let code = first_pin(&card.keys, &pol, t).unwrap().code;
        assert_eq!(
            result(&bank.verify(&p, &code, 0, None, "first").json()).0,
            "accepted"
        );
        t += 60;
    }
    bank.clock.set(t);
    let v = bank.verify(&p, "00000000", 5, None, "second").json();
    assert_eq!(result(&v), pair("rejected", "wrong_code"));
    let v = bank.verify(&p, "00000000", 5, None, "second").json();
    assert_eq!(result(&v), pair("blocked", "too_many_failures"));
}

#[test]
fn the_block_before_a_lasting_one_warns_the_customer() {
    for lang in [Language::Fa, Language::En] {
        let bank = Bank::start_with(Settings {
            language: lang,
            ..Settings::development()
        });
        let p = pan(303);
        bank.enroll_and_activate(&p, PHONE);
        for b in 0..3u64 {
            bank.clock.set(T0 + b * 15 * 60);
            for _ in 0..5 {
                bank.verify(&p, "000000", 0, None, "first");
            }
        }
        // The activation code, the activation notice, then three blocks.
        let msgs = settled_bodies(&bank, PHONE, 5);
        assert_eq!(msgs.len(), 5, "{msgs:?}");
        let (warning, lasting) = match lang {
            Language::Fa => ("بار دیگر", "تا اطلاع بعدی"),
            Language::En => ("one more block", "until further notice"),
        };
        assert!(!msgs[2].contains(warning), "{}", msgs[2]);
        assert!(msgs[3].contains(warning), "{}", msgs[3]);
        assert!(!msgs[3].contains(lasting), "{}", msgs[3]);
        assert!(msgs[4].contains(lasting), "{}", msgs[4]);
    }
}

#[test]
fn an_older_unused_code_is_refused_after_a_newer_one() {
    let bank = Bank::start();
    let p = pan(304);
    let card = bank.enroll_and_activate(&p, PHONE);
    let pol = card.response.policies.clone();
    let t = T0 + 600;
    bank.clock.set(t);
    // First PINs: the next step's code (a phone a little ahead) is
    // accepted, then this step's, never used, is refused.
    let next = first_pin(&card.keys, &pol, t + pol.first.step)
        .unwrap()
        .code;
    let now = first_pin(&card.keys, &pol, t).unwrap().code;
    assert_eq!(
        result(&bank.verify(&p, &next, 0, None, "first").json()),
        pair("accepted", "ok")
    );
    assert_eq!(
        result(&bank.verify(&p, &now, 0, None, "first").json()),
        pair("rejected", "replayed")
    );
    // Cap-bound second PINs: the next step's accepted, this step's (another
    // tier, never used) refused.
    let tiers = pol.cap_ladder.tiers();
    let step = pol.second.step;
    let cap_next = second_pin(&card.keys, &pol, tiers[0], t + step)
        .unwrap()
        .code;
    let v = bank.verify(&p, &cap_next, tiers[0], None, "second").json();
    assert_eq!(v["matched"], "second", "{v}");
    let cap_now = second_pin(&card.keys, &pol, tiers[1], t).unwrap().code;
    assert_eq!(
        result(&bank.verify(&p, &cap_now, tiers[1], None, "second").json()),
        pair("rejected", "replayed")
    );
    // Transaction-bound PINs have their own mark (another one-time
    // password): this step's is good once, an older one not after it.
    let tx_now = transaction_pin(
        &card.keys,
        &pol,
        &Transaction::new(TxType::Purchase, 7000, "IR-SHOP-2"),
        t,
    )
    .unwrap()
    .code;
    let v = bank
        .verify(&p, &tx_now, 7000, Some("IR-SHOP-2"), "second")
        .json();
    assert_eq!(v["matched"], "transaction", "{v}");
    let tx_before = transaction_pin(
        &card.keys,
        &pol,
        &Transaction::new(TxType::Purchase, 5000, "IR-SHOP-1"),
        t - step,
    )
    .unwrap()
    .code;
    assert_eq!(
        result(
            &bank
                .verify(&p, &tx_before, 5000, Some("IR-SHOP-1"), "second")
                .json()
        ),
        pair("rejected", "replayed")
    );
    // Still refused after a restart.
    let mut bank = bank;
    bank.restart();
    let now2 = first_pin(&card.keys, &pol, t).unwrap().code;
    assert_eq!(
        result(&bank.verify(&p, &now2, 0, None, "first").json()),
        pair("rejected", "replayed")
    );
    // A re-activation (a new seed) starts a new mark: this step's code of
    // the new seed is accepted.
    let card = bank.enroll_and_activate(&p, PHONE);
    let fresh = first_pin(&card.keys, &pol, t).unwrap().code;
    assert_eq!(
        result(&bank.verify(&p, &fresh, 0, None, "first").json()),
        pair("accepted", "ok")
    );
}

#[test]
fn dynamic_linking_accepts_only_codes_bound_to_the_payment() {
    let bank = Bank::start_with(Settings {
        require_dynamic_linking: true,
        ..Settings::development()
    });
    let p = pan(305);
    let card = bank.enroll_and_activate(&p, PHONE);
    assert_eq!(bank.enroll(&p, PHONE, "sms").status, 201);
    let pol = card.response.policies.clone();
    let cap = pol.cap_ladder.tiers()[0];
    let t = T0;
    let cap_code = second_pin(&card.keys, &pol, cap, t).unwrap().code;
    // A cap-bound PIN for a payment naming a payee: refused, and spent, so
    // whoever captured it cannot use it elsewhere (not even without a
    // payee), and the answer says nothing more to a later caller.
    assert_eq!(
        result(
            &bank
                .verify(&p, &cap_code, cap, Some("IR-SHOP-1"), "second")
                .json()
        ),
        pair("rejected", "dynamic_linking_required")
    );
    for payee in [Some("IR-SHOP-1"), None] {
        assert_eq!(
            result(&bank.verify(&p, &cap_code, cap, payee, "second").json()),
            pair("rejected", "replayed"),
            "{payee:?}"
        );
    }
    // An SMS-version one-time PIN: refused as well.
    let n = bank.outbox(PHONE).len();
    assert_eq!(bank.inbound(PHONE, SHORT, &p[12..]).status, 200);
    let sms_code = bank.one_time_code(PHONE, n + 1);
    assert_eq!(
        result(
            &bank
                .verify(&p, &sms_code, cap, Some("IR-SHOP-1"), "second")
                .json()
        ),
        pair("rejected", "dynamic_linking_required")
    );
    // The transaction-bound PIN for this payment is accepted.
    let tx = transaction_pin(
        &card.keys,
        &pol,
        &Transaction::new(TxType::Purchase, cap, "IR-SHOP-1"),
        t,
    )
    .unwrap()
    .code;
    let v = bank
        .verify(&p, &tx, cap, Some("IR-SHOP-1"), "second")
        .json();
    assert_eq!(
        (result(&v), v["matched"].clone()),
        (pair("accepted", "ok"), "transaction".into())
    );
    // A Harim PIN for this payment is accepted.
    bank.clock.advance(60);
    assert_eq!(bank.harim(&p, 990_000, "Shop", "IR-SHOP-2").status, 202);
    let h = bank.one_time_code(PHONE, n + 2);
    let v = bank
        .verify(&p, &h, 990_000, Some("IR-SHOP-2"), "second")
        .json();
    assert_eq!(
        (result(&v), v["matched"].clone()),
        (pair("accepted", "ok"), "transaction".into())
    );
    // The refused SMS-version PIN was spent too; without a payee the rule
    // does not apply, and a fresh one works there.
    let v = bank.verify(&p, &sms_code, cap, None, "second").json();
    assert_eq!(result(&v), pair("rejected", "replayed"));
    bank.clock.advance(60);
    assert_eq!(bank.inbound(PHONE, SHORT, &p[12..]).status, 200);
    let fresh = bank.one_time_code(PHONE, n + 3);
    let v = bank.verify(&p, &fresh, cap, None, "second").json();
    assert_eq!(
        (result(&v), v["matched"].clone()),
        (pair("accepted", "ok"), "second".into())
    );
}

#[test]
fn dynamic_linking_above_an_amount() {
    let bank = Bank::start_with(Settings {
        dynamic_linking_above: Some(10_000_000),
        ..Settings::development()
    });
    let p = pan(306);
    let card = bank.enroll_and_activate(&p, PHONE);
    let pol = card.response.policies.clone();
    let tiers = pol.cap_ladder.tiers();
    let big = *tiers.iter().find(|&&c| c > 10_000_000).unwrap();
    let small = *tiers.iter().find(|&&c| c <= 10_000_000).unwrap();
    let t = T0;
    let code = second_pin(&card.keys, &pol, big, t).unwrap().code;
    assert_eq!(
        result(
            &bank
                .verify(&p, &code, big, Some("IR-SHOP-1"), "second")
                .json()
        ),
        pair("rejected", "dynamic_linking_required")
    );
    // (The refused code was spent: the next cap-bound PIN is a step later.)
    let t = t + 60;
    bank.clock.set(t);
    let code = second_pin(&card.keys, &pol, small, t).unwrap().code;
    assert_eq!(
        result(
            &bank
                .verify(&p, &code, small, Some("IR-SHOP-1"), "second")
                .json()
        ),
        pair("accepted", "ok")
    );
}

#[test]
fn without_dynamic_linking_a_cap_bound_pin_pays_a_named_payee() {
    let bank = Bank::start();
    let p = pan(307);
    let card = bank.enroll_and_activate(&p, PHONE);
    let pol = card.response.policies.clone();
    let cap = pol.cap_ladder.tiers()[0];
    let code = second_pin(&card.keys, &pol, cap, T0).unwrap().code;
    let v = bank
        .verify(&p, &code, cap, Some("IR-SHOP-1"), "second")
        .json();
    assert_eq!(
        (result(&v), v["matched"].clone()),
        (pair("accepted", "ok"), "second".into())
    );
}
