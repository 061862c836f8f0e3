//! The issuer's HTTP API over real HTTP on 127.0.0.1 (ephemeral ports):
//! enrollment, SMS, activation and verification, replay and lockout,
//! activation-code guessing, roles, bad input.

mod common;

use common::*;
use pooya_issuer::{Language, Settings};
use pooya_protocol::{Transaction, TxType, first_pin, second_pin, transaction_pin};
use ring::rand::SystemRandom;
use serde_json::json;

#[test]
fn enroll_sms_activate_verify() {
    let bank = Bank::start();
    let p = pan(1);
    let a = bank.enroll(&p, PHONE, "app");
    assert_eq!(a.status, 201, "{}", a.body);
    let e = a.json();
    assert_eq!(e["channel"], "app");
    assert_eq!(e["masked_pan"], masked(&p));
    assert_eq!(e["activation_expires_at"], T0 + 900);
    assert!(!a.body.contains(&p));

    // The SMS, in Persian by default, from the bank's number.
    let msgs = bank.outbox("+989121234567");
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["to"], "+989121234567");
    assert_eq!(msgs[0]["from"], "30003303");
    assert_eq!(msgs[0]["created_at"], T0);
    let body = msgs[0]["body"].as_str().unwrap();
    assert!(body.contains("کد فعال‌سازی"), "{body}");
    let code = bank.last_activation_code(PHONE);
    assert!(code.len() >= 10);
    assert!(pooya_protocol::normalize_activation_code(&code).is_ok());

    // The phone activates with a Persian-digit phone number.
    let phone = Phone::new();
    let (status, card) = phone.activate(&bank.client, "۰۹۱۲۱۲۳۴۵۶۷", &code, &bank.pinned());
    assert_eq!(status, 201);
    let card = card.unwrap();
    let r = &card.response;
    assert_eq!(r.masked_pan, masked(&p));
    assert_eq!(r.last4, &p[12..]);
    assert_eq!(r.bank_name, "بانک ملت");
    assert_eq!(r.server_time, T0);
    assert_eq!(r.policies, pooya_protocol::Policies::default());
    assert_eq!(e["card_id"], r.card_id.as_str());

    // The code is single use.
    let again = Phone::new().activate(&bank.client, PHONE, &code, &bank.pinned());
    assert_eq!(again.0, 403);

    let policies = &r.policies;
    let t = T0 + 10;
    bank.clock.set(t);
    // First PIN (ATM/POS).
    let first = first_pin(&card.keys, policies, t).unwrap();
    let v = bank.verify(&p, &first.code, 0, None, "first");
    assert_eq!(
        v.json(),
        json!({"result": "accepted", "reason": "ok", "matched": "first"})
    );
    let v = bank.verify(&p, &first.code, 0, None, "first");
    assert_eq!(v.json()["reason"], "replayed");

    // Second PIN bound to a cap: amounts up to the cap.
    let cap = policies.cap_ladder.tiers()[1];
    let second = second_pin(&card.keys, policies, cap, t).unwrap();
    let v = bank.verify(&p, &second.code, cap + 1, None, "second");
    assert_eq!(v.json()["result"], "rejected", "over the cap");
    let v = bank.verify(&p, &second.code, cap - 1, None, "second");
    assert_eq!(v.json()["result"], "accepted");
    assert_eq!(v.json()["matched"], "second");
    // Same step, other tier: still the same (card, kind, step).
    let other = second_pin(&card.keys, policies, policies.cap_ladder.tiers()[2], t).unwrap();
    assert_eq!(
        bank.verify(&p, &other.code, 5, None, "second").json()["reason"],
        "replayed"
    );

    // Transaction-bound PIN: exact amount and payee only.
    bank.clock.set(t + 60);
    let tx = transaction_pin(
        &card.keys,
        policies,
        &Transaction::new(TxType::Purchase, 1_250_000, "shop-42"),
        t + 60,
    )
    .unwrap();
    assert_eq!(
        bank.verify(&p, &tx.code, 1_250_001, Some("shop-42"), "second")
            .json()["result"],
        "rejected"
    );
    assert_eq!(
        bank.verify(&p, &tx.code, 1_250_000, Some("shop-43"), "second")
            .json()["result"],
        "rejected"
    );
    assert_eq!(
        bank.verify(&p, &tx.code, 1_250_000, None, "second").json()["result"],
        "rejected"
    );
    let v = bank.verify(&p, &tx.code, 1_250_000, Some("shop-42"), "second");
    assert_eq!(v.json()["result"], "accepted", "{}", v.body);
    assert_eq!(v.json()["matched"], "transaction");
    // A cap-bound PIN is also good with a payee.
    let s2 = second_pin(&card.keys, policies, cap, t + 60).unwrap();
    assert_eq!(
        bank.verify(&p, &s2.code, 100, Some("shop-42"), "second")
            .json()["matched"],
        "second"
    );

    // Unknown card: the answer of a known card with a wrong code.
    assert_eq!(
        bank.verify(&pan(999), "12345678", 5, None, "second").json(),
        json!({"result": "rejected", "reason": "wrong_code"})
    );

    // Metrics count what happened.
    let m = bank.client.get("/metrics", Some(bank.ops()));
    assert_eq!(m.status, 200);
    assert!(
        m.body
            .contains("pooya_issuer_verifications_total{result=\"accepted\"} 4"),
        "{}",
        m.body
    );
    assert!(
        m.body
            .contains("pooya_issuer_http_request_duration_seconds_bucket{route=\"/v1/verify\"")
    );
    assert_eq!(bank.client.get("/healthz", None).json()["status"], "ok");
}

#[test]
fn drift_is_tracked_from_accepted_steps() {
    let bank = Bank::start();
    let p = pan(2);
    let card = bank.enroll_and_activate(&p, PHONE);
    let pol = &card.response.policies;
    // The phone's clock runs one step ahead.
    let code = first_pin(&card.keys, pol, T0 + 60).unwrap();
    assert_eq!(
        bank.verify(&p, &code.code, 0, None, "first").json()["result"],
        "accepted"
    );
    // Two steps ahead is outside the window unless the drift was learned.
    let code = first_pin(&card.keys, pol, T0 + 120).unwrap();
    assert_eq!(
        bank.verify(&p, &code.code, 0, None, "first").json()["result"],
        "accepted"
    );
    // The second PIN's drift is separate: two steps ahead is refused.
    let code = second_pin(&card.keys, pol, pol.cap_ladder.tiers()[0], T0 + 120).unwrap();
    assert_eq!(
        bank.verify(&p, &code.code, 1, None, "second").json()["result"],
        "rejected"
    );
}

#[test]
fn two_hundred_concurrent_verifications_accept_once() {
    let bank = Bank::start();
    let p = pan(3);
    let card = bank.enroll_and_activate(&p, PHONE);
    let pol = &card.response.policies;
    let code = second_pin(&card.keys, pol, pol.cap_ladder.tiers()[0], T0)
        .unwrap()
        .code;
    let barrier = std::sync::Barrier::new(200);
    let results: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..200)
            .map(|_| {
                let client = Client::new(&bank.client.base);
                let (barrier, p, code, token) = (&barrier, &p, &code, bank.gateway());
                s.spawn(move || {
                    barrier.wait();
                    let a = client.post(
                        "/v1/verify",
                        Some(token),
                        &json!({"pan": p, "code": code, "amount": 1000, "kind": "second"}),
                    );
                    assert_eq!(a.status, 200, "{}", a.body);
                    a.json()["result"].as_str().unwrap().to_owned()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let accepted = results.iter().filter(|r| *r == "accepted").count();
    assert_eq!(accepted, 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| r == "accepted" || r == "rejected" || r == "blocked")
    );
}

#[test]
fn restart_between_acceptance_and_replay() {
    let mut bank = Bank::start();
    let p = pan(4);
    let card = bank.enroll_and_activate(&p, PHONE);
    let pol = card.response.policies.clone();
    let code = second_pin(&card.keys, &pol, pol.cap_ladder.tiers()[0], T0)
        .unwrap()
        .code;
    assert_eq!(
        bank.verify(&p, &code, 10, None, "second").json()["result"],
        "accepted"
    );
    bank.restart();
    let v = bank.verify(&p, &code, 10, None, "second");
    assert_eq!(v.json()["result"], "rejected");
    assert_eq!(v.json()["reason"], "replayed");
    // The card still works with a fresh code after the restart.
    bank.clock.set(T0 + 60);
    let code = second_pin(&card.keys, &pol, pol.cap_ladder.tiers()[0], T0 + 60)
        .unwrap()
        .code;
    assert_eq!(
        bank.verify(&p, &code, 10, None, "second").json()["result"],
        "accepted"
    );
}

#[test]
fn a_thousand_random_codes_block_the_card_after_five() {
    let bank = Bank::start();
    let p = pan(5);
    let card = bank.enroll_and_activate(&p, PHONE);
    let pol = card.response.policies.clone();
    let rng = SystemRandom::new();
    let codes: Vec<String> = (0..1000).map(|_| random_code(&rng, 8)).collect();
    let mut verdicts = Vec::new();
    // Eight clients at once.
    std::thread::scope(|s| {
        let handles: Vec<_> = codes
            .chunks(125)
            .map(|chunk| {
                let client = Client::new(&bank.client.base);
                let (p, token) = (&p, bank.gateway());
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|c| {
                            let a = client.post(
                                "/v1/verify",
                                Some(token),
                                &json!({"pan": p, "code": c, "amount": 1000, "kind": "second"}),
                            );
                            assert_eq!(a.status, 200, "{}", a.body);
                            a.json()["result"].as_str().unwrap().to_owned()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            verdicts.extend(h.join().unwrap());
        }
    });
    assert_eq!(verdicts.iter().filter(|v| *v == "accepted").count(), 0);
    assert_eq!(verdicts.iter().filter(|v| *v == "rejected").count(), 5);
    assert_eq!(verdicts.iter().filter(|v| *v == "blocked").count(), 995);

    // The customer got an SMS about the block (sent after the answer).
    let msgs = bank.wait_outbox(PHONE, 2);
    assert!(
        msgs.last().unwrap()["body"]
            .as_str()
            .unwrap()
            .contains("مسدود")
    );
    // A valid code is refused while blocked, and not spent.
    let good = second_pin(&card.keys, &pol, pol.cap_ladder.tiers()[0], T0)
        .unwrap()
        .code;
    let v = bank.verify(&p, &good, 1000, None, "second");
    assert_eq!(
        v.json(),
        json!({"result": "blocked", "reason": "too_many_failures"})
    );
    // 15 minutes later the block is over.
    bank.clock.set(T0 + 15 * 60);
    let good = second_pin(&card.keys, &pol, pol.cap_ladder.tiers()[0], T0 + 15 * 60)
        .unwrap()
        .code;
    assert_eq!(
        bank.verify(&p, &good, 1000, None, "second").json()["result"],
        "accepted"
    );
}

/// The verdicts of `n` wrong codes for `p`, one a second.
fn wrong_codes(bank: &Bank, p: &str, kind: &str, code: &str, n: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|_| {
            let a = bank.verify(p, code, 5, None, kind);
            assert_eq!(a.status, 200, "{}", a.body);
            a.json()
        })
        .collect()
}

#[test]
fn unknown_card_numbers_answer_as_known_cards_with_wrong_codes() {
    let bank = Bank::start();
    let known = pan(21);
    bank.enroll_and_activate(&known, PHONE);
    let sms_only = pan(22);
    assert_eq!(bank.enroll(&sms_only, "09127654321", "sms").status, 201);
    let unknown = pan(23);
    // Seven wrong codes each: five `wrong_code`, then `blocked`, whichever
    // the card (known with the app, known with only the SMS version and no
    // one-time PIN sent, unknown), the kind and the code length.
    let mut seen = Vec::new();
    for (i, kind) in ["second", "first"].iter().enumerate() {
        bank.clock.set(T0 + i as u64 * 3600);
        for p in [&known, &sms_only, &unknown] {
            seen.push(wrong_codes(&bank, p, kind, "00000000", 7));
        }
    }
    let want: Vec<serde_json::Value> = (0..7)
        .map(|i| {
            if i < 5 {
                json!({"result": "rejected", "reason": "wrong_code"})
            } else {
                json!({"result": "blocked", "reason": "too_many_failures"})
            }
        })
        .collect();
    for s in &seen {
        assert_eq!(s, &want);
    }
    // Unknown card numbers are blocked as long as known cards: 15 minutes.
    bank.clock.set(T0 + 3600 + 14 * 60);
    assert_eq!(
        wrong_codes(&bank, &unknown, "second", "1", 1)[0]["result"],
        "blocked"
    );
    bank.clock.set(T0 + 3600 + 15 * 60);
    assert_eq!(
        wrong_codes(&bank, &unknown, "second", "1", 1)[0]["result"],
        "rejected"
    );
    // Operators see the precise reason in the metrics.
    let m = bank.client.get("/metrics", Some(bank.ops()));
    assert!(
        m.body
            .contains("pooya_issuer_verifications_not_enrolled_total 21"),
        "{}",
        m.body
    );
}

#[test]
fn three_blocks_in_a_day_last_until_ops_unblock() {
    let bank = Bank::start();
    let p = pan(24);
    let card = bank.enroll_and_activate(&p, PHONE);
    let pol = card.response.policies.clone();
    let unknown = pan(25);
    let blocked = json!({"result": "blocked", "reason": "too_many_failures"});
    // Three blocks, 15 minutes apart, of a known and an unknown card.
    for b in 0..3u64 {
        bank.clock.set(T0 + b * 15 * 60);
        for q in [&p, &unknown] {
            let v = wrong_codes(&bank, q, "first", "000000", 6);
            assert_eq!(v[4]["result"], "rejected");
            assert_eq!(v[5], blocked);
        }
    }
    // A day later both are still blocked: a valid code is refused.
    let t = T0 + 2 * 24 * 3600;
    bank.clock.set(t);
    let good = first_pin(&card.keys, &pol, t).unwrap().code;
    assert_eq!(bank.verify(&p, &good, 0, None, "first").json(), blocked);
    assert_eq!(
        wrong_codes(&bank, &unknown, "first", "000000", 1)[0],
        blocked
    );
    // The customer was told each time; the third message says so.
    // (activation code, activation notice, then the three blocks)
    let msgs = bank.wait_outbox(PHONE, 5);
    let last = msgs[4]["body"].as_str().unwrap();
    assert!(last.contains("تا اطلاع بعدی"), "{last}");
    // Ops lift it (ops only; the card number is checked).
    let unblock = |q: &str, token: &str| {
        bank.client
            .post("/v1/cards/unblock", Some(token), &json!({"pan": q}))
    };
    assert_eq!(unblock(&p, bank.gateway()).status, 403);
    let a = unblock("1234", bank.ops());
    assert_eq!((a.status, a.error_code().as_str()), (400, "invalid_pan"));
    let a = unblock(&p, bank.ops());
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["card_id"], card.response.card_id);
    assert_eq!(a.json()["was_blocked"], true);
    assert_eq!(
        bank.verify(&p, &good, 0, None, "first").json()["result"],
        "accepted"
    );
    let a = unblock(&unknown, bank.ops());
    assert_eq!((a.status, a.error_code().as_str()), (404, "card_not_found"));
    assert_eq!(
        wrong_codes(&bank, &unknown, "first", "000000", 1)[0]["reason"],
        "wrong_code"
    );
    // The history went with the block: the next block is 15 minutes.
    let t = t + 120;
    bank.clock.set(t);
    wrong_codes(&bank, &p, "first", "000000", 5);
    bank.clock.set(t + 15 * 60);
    let good = first_pin(&card.keys, &pol, t + 15 * 60).unwrap().code;
    assert_eq!(
        bank.verify(&p, &good, 0, None, "first").json()["result"],
        "accepted"
    );
}

#[test]
fn blocks_spread_over_more_than_a_day_do_not_escalate_and_reenrollment_lifts() {
    let bank = Bank::start();
    let p = pan(26);
    let card = bank.enroll_and_activate(&p, PHONE);
    let pol = card.response.policies.clone();
    // Blocks at 0, 15 minutes, and 24 hours: never three within a day.
    for t in [T0, T0 + 15 * 60, T0 + 24 * 3600] {
        bank.clock.set(t);
        assert_eq!(
            wrong_codes(&bank, &p, "first", "000000", 6)[5]["result"],
            "blocked"
        );
    }
    let t = T0 + 24 * 3600 + 15 * 60;
    bank.clock.set(t);
    let good = first_pin(&card.keys, &pol, t).unwrap().code;
    assert_eq!(
        bank.verify(&p, &good, 0, None, "first").json()["result"],
        "accepted"
    );
    // Two more, with the one at 24 hours three within a day: blocked until
    // lifted; re-enrollment at an ATM lifts it too.
    for i in 0..2 {
        bank.clock.set(t + 60 + i * 15 * 60);
        wrong_codes(&bank, &p, "first", "000000", 5);
    }
    let t = t + 3 * 24 * 3600;
    bank.clock.set(t);
    let card = {
        let good = first_pin(&card.keys, &pol, t).unwrap().code;
        assert_eq!(
            bank.verify(&p, &good, 0, None, "first").json()["result"],
            "blocked"
        );
        // The five block messages are out before the new activation code.
        // (activation code, activation notice, then the five blocks)
        let msgs = bank.wait_outbox(PHONE, 7);
        assert!(
            msgs[6]["body"].as_str().unwrap().contains("تا اطلاع بعدی"),
            "{msgs:?}"
        );
        bank.enroll_and_activate(&p, PHONE)
    };
    let good = first_pin(&card.keys, &pol, t).unwrap().code;
    assert_eq!(
        bank.verify(&p, &good, 0, None, "first").json()["result"],
        "accepted"
    );
}

#[test]
fn failures_must_be_consecutive() {
    // Twelve failures in three minutes: under a failure window wide enough
    // not to block (the window has its own tests in tests/rules.rs).
    let bank = Bank::start_with(Settings {
        failure_window_max: 13,
        ..Settings::development()
    });
    let p = pan(6);
    let card = bank.enroll_and_activate(&p, PHONE);
    let pol = card.response.policies.clone();
    for i in 0..3u64 {
        let t = T0 + i * 60;
        bank.clock.set(t);
        for _ in 0..4 {
            assert_eq!(
                bank.verify(&p, "00000000", 5, None, "second").json()["result"],
                "rejected"
            );
        }
        let good = first_pin(&card.keys, &pol, t).unwrap().code;
        assert_eq!(
            bank.verify(&p, &good, 0, None, "first").json()["result"],
            "accepted"
        );
    }
}

#[test]
fn activation_code_guessing_burns_after_five() {
    let bank = Bank::start();
    let p = pan(7);
    assert_eq!(bank.enroll(&p, PHONE, "app").status, 201);
    let code = bank.last_activation_code(PHONE);
    let rng = SystemRandom::new();
    let mut refusals = Vec::new();
    for _ in 0..5 {
        let payload = random_code(&rng, 9);
        let mut guess = format!(
            "{payload}{}",
            pooya_protocol::ids::luhn_check_digit(&payload)
        );
        if guess == code {
            guess = "1234567897".into();
        }
        let a = bank.client.post(
            "/v1/activations",
            None,
            &sealed_json(&bank, &json!({"phone": PHONE, "code": guess, "device_public_key": Phone::new().public_hex(), "device_label": "x"})),
        );
        assert_eq!(a.status, 403);
        refusals.push(a.body);
    }
    // The right code no longer works: burned.
    let (status, _) = Phone::new().activate(&bank.client, PHONE, &code, &bank.pinned());
    assert_eq!(status, 403);
    // An unknown phone gets the very same answer.
    let a = bank.client.post(
        "/v1/activations",
        None,
        &sealed_json(&bank, &json!({"phone": "09350000000", "code": code, "device_public_key": Phone::new().public_hex(), "device_label": "x"})),
    );
    assert_eq!(a.status, 403);
    assert!(refusals.iter().all(|r| *r == a.body));
    assert_eq!(a.error_code(), "activation_refused");
    // A new enrollment at the ATM issues a working code.
    assert_eq!(bank.enroll(&p, PHONE, "app").status, 201);
    let code2 = bank.last_activation_code(PHONE);
    let (status, _) = Phone::new().activate(&bank.client, PHONE, &code2, &bank.pinned());
    assert_eq!(status, 201);
}

/// A wrong activation guess for `phone` (never `avoid`): the status.
fn wrong_activation(bank: &Bank, phone: &str, avoid: &[&str]) -> u16 {
    let mut n = 0u64;
    let guess = loop {
        let payload = format!("{:09}", 123_456_789 + n);
        let g = format!(
            "{payload}{}",
            pooya_protocol::ids::luhn_check_digit(&payload)
        );
        if !avoid.contains(&g.as_str()) {
            break g;
        }
        n += 1;
    };
    bank.client
        .post(
            "/v1/activations",
            None,
            &sealed_json(bank, &json!({"phone": phone, "code": guess, "device_public_key": Phone::new().public_hex(), "device_label": "x"})),
        )
        .status
}

#[test]
fn a_new_enrollment_does_not_renew_the_guesses_at_another_pending_code() {
    let bank = Bank::start();
    assert_eq!(bank.enroll(&pan(27), PHONE, "app").status, 201);
    let first = bank.last_activation_code(PHONE);
    for _ in 0..4 {
        assert_eq!(wrong_activation(&bank, PHONE, &[&first]), 403);
    }
    // Another card for the same phone while the first code is pending:
    // the four failures still count, so the fifth burns both codes.
    assert_eq!(bank.enroll(&pan(28), PHONE, "app").status, 201);
    let second = bank.last_activation_code(PHONE);
    assert_eq!(wrong_activation(&bank, PHONE, &[&first, &second]), 403);
    for code in [&first, &second] {
        let (status, _) = Phone::new().activate(&bank.client, PHONE, code, &bank.pinned());
        assert_eq!(status, 403);
    }
    // With no code left live, a new enrollment starts a fresh budget.
    assert_eq!(bank.enroll(&pan(28), PHONE, "app").status, 201);
    let third = bank.last_activation_code(PHONE);
    assert_eq!(wrong_activation(&bank, PHONE, &[&third]), 403);
    let (status, _) = Phone::new().activate(&bank.client, PHONE, &third, &bank.pinned());
    assert_eq!(status, 201);
}

#[test]
fn activation_codes_expire_and_are_superseded() {
    let bank = Bank::start();
    let p = pan(8);
    assert_eq!(bank.enroll(&p, PHONE, "app").status, 201);
    let old = bank.last_activation_code(PHONE);
    assert_eq!(bank.enroll(&p, PHONE, "app").status, 201);
    let new = bank.last_activation_code(PHONE);
    let (status, _) = Phone::new().activate(&bank.client, PHONE, &old, &bank.pinned());
    assert_eq!(status, 403, "superseded");
    bank.clock.set(T0 + 15 * 60);
    let (status, _) = Phone::new().activate(&bank.client, PHONE, &new, &bank.pinned());
    assert_eq!(status, 403, "expired");
}

#[test]
fn moving_a_card_to_another_phone_tells_the_old_one() {
    let bank = Bank::start();
    let p = pan(11);
    let card = bank.enroll_and_activate(&p, PHONE);
    assert_eq!(bank.enroll(&p, "09351112233", "app").status, 201);
    let old = bank.outbox(PHONE);
    assert!(
        old.last().unwrap()["body"]
            .as_str()
            .unwrap()
            .contains("شماره همراه دیگری")
    );
    // The new phone's code activates a new device; the old seed stops working.
    let code = bank.last_activation_code("09351112233");
    let (status, new_card) =
        Phone::new().activate(&bank.client, "09351112233", &code, &bank.pinned());
    assert_eq!(status, 201);
    let pol = &card.response.policies;
    let old_pin = first_pin(&card.keys, pol, T0).unwrap().code;
    assert_eq!(
        bank.verify(&p, &old_pin, 0, None, "first").json()["result"],
        "rejected"
    );
    let new_pin = first_pin(&new_card.unwrap().keys, pol, T0).unwrap().code;
    assert_eq!(
        bank.verify(&p, &new_pin, 0, None, "first").json()["result"],
        "accepted"
    );
}

#[test]
fn sms_channel_enrollment_and_english() {
    let settings = Settings {
        language: Language::En,
        ..Settings::development()
    };
    let bank = Bank::start_with(settings);
    let p = pan(9);
    let a = bank.enroll(&p, "+989121234567", "sms");
    assert_eq!(a.status, 201, "{}", a.body);
    assert!(a.json().get("activation_expires_at").is_none());
    let msgs = bank.outbox(PHONE);
    let body = msgs[0]["body"].as_str().unwrap();
    assert!(
        body.contains("text the card's last four digits to 30003303"),
        "{body}"
    );
    // No app seed and no one-time code sent yet: nothing verifies, and
    // the answer is a wrong code's.
    assert_eq!(
        bank.verify(&p, "1234567", 5, None, "second").json(),
        json!({"result": "rejected", "reason": "wrong_code"})
    );
    // English bank names after activation.
    let card = bank.enroll_and_activate(&p, PHONE);
    assert_eq!(card.response.bank_name, "Bank Mellat");
    // Only this phone's messages.
    assert!(bank.outbox("09120000000").is_empty());
}

#[test]
fn every_role_on_every_route() {
    let bank = Bank::start();
    let routes: [(&str, &str, Option<&str>); 7] = [
        ("POST", "/v1/enrollments", Some("atm")),
        ("POST", "/v1/cards/unblock", Some("ops")),
        ("POST", "/v1/verify", Some("gateway")),
        ("POST", "/v1/otp-requests", Some("gateway")),
        ("POST", "/v1/sms/inbound", Some("sms")),
        ("GET", "/v1/sms/outbox", Some("ops")),
        ("GET", "/metrics", Some("ops")),
    ];
    let body = br#"{}"#;
    for (method, path, role) in routes {
        for token in [None, Some("nonsense"), Some("pya_ops_0000")] {
            let a = bank
                .client
                .raw(method, path, token, Some("application/json"), Some(body));
            assert_eq!(a.status, 401, "{method} {path} {token:?}");
            assert_eq!(a.error_code(), "unauthorized");
        }
        for r in pooya_issuer::Role::ALL {
            let t = bank.init.tokens.get(r).expose_secret();
            let a = bank
                .client
                .raw(method, path, Some(t), Some("application/json"), Some(body));
            if Some(r.as_str()) == role {
                assert!(
                    a.status != 401 && a.status != 403,
                    "{method} {path} {r:?}: {}",
                    a.status
                );
            } else {
                assert_eq!(a.status, 403, "{method} {path} {r:?}");
                assert_eq!(a.error_code(), "forbidden");
            }
        }
    }
    // Public routes answer anyone.
    for token in [None, Some(bank.atm()), Some(bank.gateway())] {
        let a = bank.client.raw(
            "POST",
            "/v1/activations",
            token,
            Some("application/json"),
            Some(body),
        );
        assert_eq!(a.status, 400, "{}", a.body);
        assert_eq!(bank.client.get("/healthz", token).status, 200);
    }
    // A malformed Authorization header is a 401 too.
    let a = bank.client.raw(
        "POST",
        "/v1/verify",
        None,
        Some("application/json"),
        Some(body),
    );
    assert_eq!(a.status, 401);
}

#[test]
fn bad_input_gets_stable_4xx_codes() {
    let bank = Bank::start();
    let p = pan(10);
    let card = bank.enroll_and_activate(&p, PHONE);
    let gw = Some(bank.gateway());
    let c = &bank.client;
    // (method, path, content type, body, status, error code)
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/v1/verify",
            Some("application/json"),
            b"{".to_vec(),
            400,
            "invalid_json",
        ),
        (
            "POST",
            "/v1/verify",
            Some("application/json"),
            b"".to_vec(),
            400,
            "invalid_json",
        ),
        (
            "POST",
            "/v1/verify",
            Some("text/plain"),
            br#"{}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/v1/verify",
            None,
            br#"{}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/v1/verify",
            Some("application/json"),
            vec![b' '; 20_000],
            413,
            "payload_too_large",
        ),
        (
            "POST",
            "/v1/verify",
            Some("application/json"),
            br#"{"pan":"x","code":"1","amount":1,"kind":"second","extra":1}"#.to_vec(),
            400,
            "unknown_field",
        ),
        (
            "POST",
            "/v1/verify",
            Some("application/json"),
            br#"{"code":"1","amount":1,"kind":"second"}"#.to_vec(),
            400,
            "missing_field",
        ),
        (
            "POST",
            "/v1/verify",
            Some("application/json"),
            br#"{"pan":"x","code":"1","amount":-1,"kind":"second"}"#.to_vec(),
            400,
            "invalid_field",
        ),
        (
            "POST",
            "/v1/verify",
            Some("application/json"),
            br#"{"pan":"x","code":"1","amount":1,"kind":"third"}"#.to_vec(),
            400,
            "invalid_field",
        ),
        (
            "POST",
            "/v1/verify",
            Some("application/json"),
            br#"[1,2]"#.to_vec(),
            400,
            "invalid_field",
        ),
        (
            "POST",
            "/v1/verify",
            Some("application/json"),
            br#"{"pan":"6104337700000002","code":"12345678","amount":1,"kind":"second"}"#.to_vec(),
            400,
            "invalid_pan",
        ),
        (
            "POST",
            "/v1/verify",
            Some("application/json"),
            format!(r#"{{"pan":"{p}","code":"12ab5678","amount":1,"kind":"second"}}"#).into_bytes(),
            400,
            "invalid_code",
        ),
        (
            "POST",
            "/v1/verify",
            Some("application/json"),
            format!(r#"{{"pan":"{p}","code":"","amount":1,"kind":"second"}}"#).into_bytes(),
            400,
            "invalid_code",
        ),
        (
            "POST",
            "/v1/verify",
            Some("application/json"),
            format!(r#"{{"pan":"{p}","code":"12345678","amount":0,"kind":"second"}}"#).into_bytes(),
            400,
            "invalid_amount",
        ),
        (
            "POST",
            "/v1/verify",
            Some("application/json"),
            format!(r#"{{"pan":"{p}","code":"123456","amount":0,"kind":"first","payee":"x"}}"#)
                .into_bytes(),
            400,
            "invalid_payee",
        ),
        (
            "POST",
            "/v1/verify",
            Some("application/json"),
            format!(r#"{{"pan":"{p}","code":"12345678","amount":5,"kind":"second","payee":"  "}}"#)
                .into_bytes(),
            400,
            "invalid_payee",
        ),
        // Transaction types (issue 13): a payee needs its type, a type
        // needs a payee, and only the three wire names are types.
        (
            "POST",
            "/v1/verify",
            Some("application/json"),
            format!(r#"{{"pan":"{p}","code":"12345678","amount":5,"kind":"second","payee":"S1"}}"#)
                .into_bytes(),
            400,
            "missing_type",
        ),
        (
            "POST",
            "/v1/verify",
            Some("application/json"),
            format!(r#"{{"pan":"{p}","code":"12345678","amount":5,"kind":"second","type":"bill"}}"#)
                .into_bytes(),
            400,
            "invalid_type",
        ),
        (
            "POST",
            "/v1/verify",
            Some("application/json"),
            format!(r#"{{"pan":"{p}","code":"123456","amount":0,"kind":"first","type":"purchase"}}"#)
                .into_bytes(),
            400,
            "invalid_type",
        ),
        (
            "POST",
            "/v1/verify",
            Some("application/json"),
            format!(
                r#"{{"pan":"{p}","code":"12345678","amount":5,"kind":"second","payee":"S1","type":"gift"}}"#
            )
            .into_bytes(),
            400,
            "invalid_type",
        ),
        ("GET", "/v1/verify", None, vec![], 405, "method_not_allowed"),
        ("GET", "/nowhere", None, vec![], 404, "not_found"),
        (
            "GET",
            "/v1/sms/outbox?phone=123",
            None,
            vec![],
            400,
            "invalid_phone",
        ),
        (
            "GET",
            "/v1/sms/outbox?who=1",
            None,
            vec![],
            400,
            "invalid_query",
        ),
    ];
    for (method, path, ct, body, status, code) in cases {
        let token = if path.starts_with("/v1/sms") {
            Some(bank.ops())
        } else {
            gw
        };
        let a = c.raw(method, path, token, ct, Some(&body));
        assert_eq!(
            (a.status, a.error_code().as_str()),
            (status, code),
            "{method} {path} {}",
            String::from_utf8_lossy(&body[..body.len().min(80)])
        );
    }
    // Malformed codes were not counted as failures: the card is not blocked.
    let good = first_pin(&card.keys, &card.response.policies, T0)
        .unwrap()
        .code;
    assert_eq!(
        bank.verify(&p, &good, 0, None, "first").json()["result"],
        "accepted"
    );

    let atm = Some(bank.atm());
    for (body, code) in [
        (
            json!({"pan": "6104337700000002", "phone": PHONE, "channel": "app"}),
            "invalid_pan",
        ),
        (
            json!({"pan": p, "phone": "02112345678", "channel": "app"}),
            "invalid_phone",
        ),
        (
            json!({"pan": p, "phone": PHONE, "channel": "fax"}),
            "invalid_field",
        ),
    ] {
        let a = c.post("/v1/enrollments", atm, &body);
        assert_eq!((a.status, a.error_code().as_str()), (400, code), "{body}");
    }
    let key = Phone::new().public_hex();
    for (body, code) in [
        (
            json!({"phone": PHONE, "code": "1234567890", "device_public_key": key, "device_label": "x"}),
            "invalid_code",
        ),
        (
            json!({"phone": PHONE, "code": "12345", "device_public_key": key, "device_label": "x"}),
            "invalid_code",
        ),
        (
            json!({"phone": "12", "code": "1234567897", "device_public_key": key, "device_label": "x"}),
            "invalid_phone",
        ),
        (
            json!({"phone": PHONE, "code": "1234567897", "device_public_key": "zz", "device_label": "x"}),
            "invalid_device_key",
        ),
        (
            json!({"phone": PHONE, "code": "1234567897", "device_public_key": "00", "device_label": "x"}),
            "invalid_device_key",
        ),
        (
            json!({"phone": PHONE, "code": "1234567897", "device_public_key": "00".repeat(32), "device_label": "x"}),
            "invalid_device_key",
        ),
        (
            json!({"phone": PHONE, "code": "1234567897", "device_public_key": key, "device_label": ""}),
            "invalid_device_label",
        ),
        (
            json!({"phone": PHONE, "code": "1234567897", "device_public_key": key, "device_label": "a\u{7}"}),
            "invalid_device_label",
        ),
        (
            json!({"phone": PHONE, "code": "1234567897", "device_public_key": key, "device_label": "x".repeat(65)}),
            "invalid_device_label",
        ),
    ] {
        let a = c.post("/v1/activations", None, &sealed_json(&bank, &body));
        assert_eq!((a.status, a.error_code().as_str()), (400, code), "{body}");
    }
    // Requests that are not sealed to this issuer: the old readable form,
    // another issuer's key, tampered or truncated ciphertexts.
    let other = Bank::start();
    let fields = json!({"phone": PHONE, "code": "1234567897", "device_public_key": key, "device_label": "x"});
    let good = sealed_json(&bank, &fields);
    let flip = |hex_text: &str, at: usize| {
        let mut b = hex::decode(hex_text).unwrap();
        b[at] ^= 1;
        hex::encode(b)
    };
    let enc = good["enc"].as_str().unwrap();
    let sealed = good["sealed"].as_str().unwrap();
    for (body, code) in [
        (fields.clone(), "unknown_field"),
        (sealed_json(&other, &fields), "not_sealed_to_issuer"),
        (
            json!({"enc": enc, "sealed": flip(sealed, 3)}),
            "not_sealed_to_issuer",
        ),
        (
            json!({"enc": flip(enc, 30), "sealed": sealed}),
            "not_sealed_to_issuer",
        ),
        (
            json!({"enc": enc, "sealed": &sealed[..sealed.len() - 2]}),
            "not_sealed_to_issuer",
        ),
        (
            json!({"enc": &enc[..64], "sealed": sealed}),
            "not_sealed_to_issuer",
        ),
        (json!({"enc": enc, "sealed": "zz"}), "not_sealed_to_issuer"),
    ] {
        let a = c.post("/v1/activations", None, &body);
        assert_eq!((a.status, a.error_code().as_str()), (400, code), "{body}");
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn bank() -> &'static Bank {
        static BANK: std::sync::OnceLock<Bank> = std::sync::OnceLock::new();
        BANK.get_or_init(Bank::start)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// No body, however malformed, gets anything but a 4xx (or a
        /// verdict) from any JSON route.
        #[test]
        fn arbitrary_bodies_never_5xx(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            route in 0usize..3,
        ) {
            let b = bank();
            let (path, token) = [
                ("/v1/verify", Some(b.gateway())),
                ("/v1/enrollments", Some(b.atm())),
                ("/v1/activations", None),
            ][route];
            let a = b.client.raw("POST", path, token, Some("application/json"), Some(&bytes));
            prop_assert!((400..500).contains(&a.status), "{} {}", a.status, a.body);
            prop_assert!(!a.error_code().is_empty());
        }

        /// Structurally valid verification requests with arbitrary field
        /// values get a verdict or a 4xx, never a 5xx.
        #[test]
        fn arbitrary_fields_never_5xx(
            pan_text in "\\PC{0,24}",
            code in "[0-9۰-۹a ]{0,20}",
            amount in any::<u64>(),
            payee in proptest::option::of("\\PC{0,140}"),
            first in any::<bool>(),
        ) {
            let b = bank();
            let mut body = json!({"pan": pan_text, "code": code, "amount": amount, "kind": if first { "first" } else { "second" }});
            if let Some(p) = payee { body["payee"] = json!(p); }
            let a = b.client.post("/v1/verify", Some(b.gateway()), &body);
            prop_assert!(a.status == 200 || (400..500).contains(&a.status), "{} {}", a.status, a.body);
        }
    }
}

/// Rows in `table` of the bank's database.
#[allow(clippy::unwrap_used)]
fn rows(bank: &Bank, table: &str) -> i64 {
    if let Ok(url) = std::fs::read_to_string(bank.dir.path().join("test-database-url")) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        return rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
                .await
                .unwrap()
                .get::<_, i64>(0)
        });
    }
    let c = rusqlite::Connection::open_with_flags(
        bank.dir.path().join("issuer.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn activation_guesses_for_strangers_write_no_rows() {
    let bank = Bank::start();
    // 2,000 well-sealed guesses, each for another random phone number with
    // no live code: no row per phone is added.
    let rng = SystemRandom::new();
    let key = Phone::new().public_hex();
    let mut answers = std::collections::HashSet::new();
    for _ in 0..2000 {
        let phone = format!("0912{}", random_code(&rng, 7));
        let payload = random_code(&rng, 9);
        let guess = format!(
            "{payload}{}",
            pooya_protocol::ids::luhn_check_digit(&payload)
        );
        let a = bank.client.post(
            "/v1/activations",
            None,
            &sealed_json(
                &bank,
                &json!({"phone": phone, "code": guess, "device_public_key": key, "device_label": "x"}),
            ),
        );
        answers.insert((a.status, a.body));
    }
    assert_eq!(rows(&bank, "activation_failures"), 0);
    assert_eq!(rows(&bank, "activation_strangers"), 1);
    // A phone with a live code is counted, and its wrong guess is answered
    // exactly as a stranger's.
    assert_eq!(bank.enroll(&pan(40), PHONE, "app").status, 201);
    let code = bank.last_activation_code(PHONE);
    assert_eq!(wrong_activation(&bank, PHONE, &[&code]), 403);
    assert_eq!(rows(&bank, "activation_failures"), 1);
    let a = bank.client.post(
        "/v1/activations",
        None,
        &sealed_json(
            &bank,
            &json!({"phone": PHONE, "code": "1234567897", "device_public_key": key, "device_label": "x"}),
        ),
    );
    answers.insert((a.status, a.body));
    assert_eq!(answers.len(), 1, "{answers:?}");
    // The live code's budget stays bounded: four more wrong guesses burn it.
    for _ in 0..3 {
        assert_eq!(wrong_activation(&bank, PHONE, &[&code]), 403);
    }
    let (status, _) = Phone::new().activate(&bank.client, PHONE, &code, &bank.pinned());
    assert_eq!(status, 403);
}

#[test]
fn two_channel_codes_need_both_parts() {
    let bank = Bank::start_with(Settings {
        activation_code_split: true,
        ..Settings::development()
    });
    let p = pan(41);
    let a = bank.enroll(&p, PHONE, "app");
    assert_eq!(a.status, 201, "{}", a.body);
    let atm = a.json()["activation_code_atm_part"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(atm.len(), 5);
    // The SMS carries only the rest, and says the ATM showed the first part.
    let sms = bank.outbox(PHONE);
    let body = sms.last().unwrap()["body"].as_str().unwrap().to_owned();
    assert!(body.contains("بخش اول"), "{body}");
    assert!(!body.contains(&atm), "{body}");
    let tail: String = body
        .split_whitespace()
        .find(|w| w.len() == 5 && w.bytes().all(|b| b.is_ascii_digit()))
        .unwrap()
        .to_owned();
    assert!(pooya_issuer::messages::find_activation_code(&body).is_none());
    // The SMS part alone is not a code; both together activate.
    assert!(pooya_protocol::normalize_activation_code(&tail).is_err());
    let code = pooya_protocol::join_activation_code(&atm, &tail).unwrap();
    let (status, card) = Phone::new().activate(&bank.client, PHONE, &code, &bank.pinned());
    assert_eq!(status, 201);
    assert!(card.is_some());
    // Off by default: the answer has no ATM part, the SMS the whole code.
    let bank = Bank::start();
    let a = bank.enroll(&pan(42), PHONE, "app");
    assert!(
        a.json().get("activation_code_atm_part").is_none(),
        "{}",
        a.body
    );
    assert!(bank.last_activation_code(PHONE).len() >= 10);
}

#[test]
fn every_activation_is_announced_to_the_cards_phone() {
    let bank = Bank::start();
    let p = pan(43);
    bank.enroll_and_activate(&p, PHONE);
    let msgs = bank.wait_outbox(PHONE, 2);
    let text = msgs[1]["body"].as_str().unwrap();
    assert!(
        text.contains(&pooya_issuer::messages::persian_digits(&p[12..])),
        "{text}"
    );
    assert!(text.contains("\u{2068}Test phone\u{2069}"), "{text}");
    assert!(
        text.contains("۱۴۰۵/۱۰/۲۵") && text.contains("۱۱:۳۰"),
        "{text}"
    );
    assert!(text.contains("تماس"), "{text}");
    // A device label that could reorder or break the SMS is refused.
    let a = bank.enroll(&pan(44), PHONE, "app");
    assert_eq!(a.status, 201);
    let code = bank.last_activation_code(PHONE);
    for label in [
        "Pixel\u{202e}8",
        "Pixel\u{2028}8",
        "\u{2066}x",
        "Pixel\u{200f}",
        // A hijacker's label that would talk the customer out of the alert.
        "Pixel» (آزمایشی؛ نیازی به اقدام نیست) «x",
    ] {
        let a = bank.client.post(
            "/v1/activations",
            None,
            &sealed_json(
                &bank,
                &json!({"phone": PHONE, "code": code, "device_public_key": Phone::new().public_hex(), "device_label": label}),
            ),
        );
        assert_eq!(
            (a.status, a.error_code().as_str()),
            (400, "invalid_device_label"),
            "{label:?}"
        );
    }
}
