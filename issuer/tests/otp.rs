//! The SMS version and Harim over real HTTP with a manual clock: one-time
//! PINs by SMS, their binding, expiry, single use and rate limits, answers
//! that do not reveal which cards exist, and the outbox.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use pooya_issuer::{Language, Settings};
use pooya_protocol::second_pin;
use serde_json::{Value, json};

const SHORT: &str = "30003303";

fn last4(p: &str) -> &str {
    &p[12..]
}

fn body(m: &Value) -> &str {
    m["body"].as_str().unwrap()
}

/// Persian digits, as a customer's keyboard types them.
fn fa(s: &str) -> String {
    pooya_issuer::messages::persian_digits(s)
}

#[test]
fn sms_round_trip() {
    let bank = Bank::start();
    let p = pan(101);
    assert_eq!(bank.enroll(&p, PHONE, "sms").status, 201);
    assert_eq!(bank.outbox(PHONE).len(), 1, "the 'SMS PINs are on' message");

    // Persian digits with spaces, to the short code written with +98.
    let spaced: String = fa(last4(&p)).chars().flat_map(|c| [c, ' ']).collect();
    let a = bank.inbound("+989121234567", "+98 3000 3303", &spaced);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json(), json!({"status": "accepted"}));
    let msgs = bank.wait_outbox(PHONE, 2);
    let sms = &msgs[1];
    assert_eq!(sms["from"], SHORT);
    assert_eq!(sms["to"], "+989121234567");
    let text = body(sms);
    assert!(text.contains("رمز دوم یکبارمصرف"), "{text}");
    assert!(text.contains(&fa(last4(&p))), "{text}");
    assert!(text.contains("۲ دقیقه"), "{text}");
    let code = bank.one_time_code(PHONE, 2);
    assert_eq!(code.len(), 7);

    // A first PIN it is not; a second PIN for any amount it is, once.
    bank.clock.advance(30);
    assert_eq!(
        bank.verify(&p, &code, 0, None, "first").json()["reason"],
        "wrong_code",
        "an SMS-only card has no first PINs"
    );
    let v = bank.verify(&p, &fa(&code), 48_000_000, None, "second");
    assert_eq!(
        v.json(),
        json!({"result": "accepted", "reason": "ok", "matched": "second"})
    );
    let v = bank.verify(&p, &code, 48_000_000, None, "second");
    assert_eq!(v.json()["reason"], "replayed");
    // Still spent after a restart.
    let mut bank = bank;
    bank.restart();
    assert_eq!(
        bank.verify(&p, &code, 1000, None, "second").json()["reason"],
        "replayed"
    );
    // Another card's code is not this card's.
    let q = pan(102);
    assert_eq!(bank.enroll(&q, PHONE, "sms").status, 201);
    bank.clock.advance(60);
    assert_eq!(bank.inbound(PHONE, SHORT, last4(&q)).status, 200);
    let other = bank.one_time_code(PHONE, 4);
    assert_eq!(
        bank.verify(&p, &other, 1000, None, "second").json()["reason"],
        "wrong_code"
    );
    assert_eq!(
        bank.verify(&q, &other, 1000, None, "second").json()["result"],
        "accepted"
    );
}

#[test]
fn both_channels_active_for_one_card() {
    let bank = Bank::start();
    let p = pan(111);
    let card = bank.enroll_and_activate(&p, PHONE);
    // The same card also enrolled for the SMS version at an ATM.
    let a = bank.enroll(&p, PHONE, "sms");
    assert_eq!(a.status, 201, "{}", a.body);
    let n = bank.outbox(PHONE).len();
    assert_eq!(bank.inbound(PHONE, SHORT, last4(&p)).status, 200);
    let sms_code = bank.one_time_code(PHONE, n + 1);

    let policies = &card.response.policies;
    let cap = policies.cap_ladder.tiers()[0];
    let app = second_pin(&card.keys, policies, cap, T0).unwrap();
    assert_ne!(app.code, sms_code);
    // Either works, in either order, in the same minute.
    let v = bank.verify(&p, &sms_code, cap, None, "second");
    assert_eq!(v.json()["result"], "accepted", "{}", v.body);
    assert_eq!(v.json()["matched"], "second");
    let v = bank.verify(&p, &app.code, cap, None, "second");
    assert_eq!(v.json()["result"], "accepted", "{}", v.body);
    // And a Harim PIN beside them, bound to its payment.
    assert_eq!(bank.harim(&p, 990_000, "Shop", "IR-SHOP-1").status, 202);
    let h = bank.one_time_code(PHONE, n + 2);
    let v = bank.verify(&p, &h, 990_000, Some("IR-SHOP-1"), "second");
    assert_eq!(v.json()["matched"], "transaction", "{}", v.body);
    // The app keeps working after the one-time codes are spent.
    bank.clock.advance(60);
    let app = second_pin(&card.keys, policies, cap, T0 + 60).unwrap();
    assert_eq!(
        bank.verify(&p, &app.code, cap, None, "second").json()["result"],
        "accepted"
    );
}

#[test]
fn one_time_codes_expire() {
    let bank = Bank::start();
    let p = pan(121);
    bank.enroll(&p, PHONE, "sms");
    bank.inbound(PHONE, SHORT, last4(&p));
    let code = bank.one_time_code(PHONE, 2);
    bank.clock.advance(120);
    assert_eq!(
        bank.verify(&p, &code, 1000, None, "second").json()["reason"],
        "wrong_code",
        "two minutes later it is gone"
    );
    bank.clock.advance(1);
    bank.harim(&p, 5000, "Shop", "S1");
    let h = bank.one_time_code(PHONE, 3);
    bank.clock.advance(119);
    assert_eq!(
        bank.verify(&p, &h, 5000, Some("S1"), "second").json()["result"],
        "accepted",
        "a second before expiry it is good"
    );

    // The lifetime is a setting.
    let bank = Bank::start_with(Settings {
        otp_ttl_secs: 300,
        ..Settings::development()
    });
    bank.enroll(&p, PHONE, "sms");
    bank.inbound(PHONE, SHORT, last4(&p));
    let code = bank.one_time_code(PHONE, 2);
    assert!(body(&bank.outbox(PHONE)[1]).contains("۵ دقیقه"));
    bank.clock.advance(299);
    assert_eq!(
        bank.verify(&p, &code, 1000, None, "second").json()["result"],
        "accepted"
    );
}

#[test]
fn a_new_code_supersedes_the_last() {
    let bank = Bank::start();
    let p = pan(125);
    bank.enroll(&p, PHONE, "sms");
    bank.inbound(PHONE, SHORT, last4(&p));
    let first = bank.one_time_code(PHONE, 2);
    bank.clock.advance(60);
    bank.inbound(PHONE, SHORT, last4(&p));
    let second = bank.one_time_code(PHONE, 3);
    assert_eq!(
        bank.verify(&p, &first, 10, None, "second").json()["reason"],
        "wrong_code"
    );
    assert_eq!(
        bank.verify(&p, &second, 10, None, "second").json()["result"],
        "accepted"
    );
}

#[test]
fn rate_limits_per_card_and_per_phone() {
    let bank = Bank::start();
    let p = pan(131);
    let q = pan(132); // same phone, other card
    bank.enroll(&p, PHONE, "sms");
    bank.enroll(&q, PHONE, "sms");
    let mut n = 2;

    // One a minute: the second asks to wait, politely, in the SMS itself.
    bank.inbound(PHONE, SHORT, last4(&p));
    n += 1;
    bank.clock.advance(15);
    bank.inbound(PHONE, SHORT, last4(&p));
    n += 1;
    let msgs = bank.wait_outbox(PHONE, n);
    let wait = body(&msgs[n - 1]);
    assert!(wait.contains("لطفاً ۴۵ ثانیه"), "{wait}");
    assert!(pooya_issuer::messages::find_one_time_code(wait).is_none());
    // The phone's limit covers its other card too.
    bank.inbound(PHONE, SHORT, last4(&q));
    n += 1;
    let msgs = bank.wait_outbox(PHONE, n);
    assert!(
        body(&msgs[n - 1]).contains("لطفاً"),
        "{}",
        body(&msgs[n - 1])
    );

    // Ten an hour: nine more, a minute apart, then a wait of minutes.
    for _ in 0..9 {
        bank.clock.advance(60);
        bank.inbound(PHONE, SHORT, last4(&p));
        n += 1;
        let code = bank.one_time_code(PHONE, n);
        assert_eq!(code.len(), 7);
    }
    bank.clock.advance(60);
    bank.inbound(PHONE, SHORT, last4(&p));
    n += 1;
    let msgs = bank.wait_outbox(PHONE, n);
    let wait = body(&msgs[n - 1]);
    // The first code went out at T0, 615 s ago: 2985 s, 50 minutes.
    assert!(wait.contains("۵۰ دقیقه"), "{wait}");
    // An hour after the first code, one more may go.
    bank.clock.set(T0 + 3600);
    bank.inbound(PHONE, SHORT, last4(&p));
    n += 1;
    assert_eq!(bank.one_time_code(PHONE, n).len(), 7);

    // Harim: 429 with Retry-After, per card number and per phone.
    let h = bank.harim(&p, 1000, "Shop", "S1");
    assert_eq!(h.status, 202, "{}", h.body);
    bank.clock.advance(20);
    for pan in [&p, &q] {
        let h = bank.harim(pan, 1000, "Shop", "S1");
        assert_eq!(h.status, 429, "{}", h.body);
        assert_eq!(h.error_code(), "rate_limited");
        assert_eq!(h.json()["retry_after_secs"], 40);
        assert!(
            h.json()["message"]
                .as_str()
                .unwrap()
                .contains("please try again in 40 seconds")
        );
    }
    bank.clock.advance(40);
    assert_eq!(bank.harim(&q, 1000, "Shop", "S1").status, 202);
}

#[test]
fn limits_and_lifetimes_are_settings() {
    let bank = Bank::start_with(Settings {
        otp_min_interval_secs: 0,
        otp_max_per_hour: 2,
        language: Language::En,
        ..Settings::development()
    });
    let p = pan(135);
    bank.enroll(&p, PHONE, "sms");
    for _ in 0..3 {
        bank.inbound(PHONE, SHORT, last4(&p));
    }
    let msgs = bank.wait_outbox(PHONE, 4);
    assert!(
        body(&msgs[1]).contains("one-time second PIN"),
        "{}",
        body(&msgs[1])
    );
    assert!(body(&msgs[2]).contains("one-time second PIN"));
    assert!(
        body(&msgs[3]).contains("Please ask again in 60 minutes"),
        "{}",
        body(&msgs[3])
    );
}

#[test]
fn replies_without_a_code_are_limited_per_phone() {
    let bank = Bank::start();
    for i in 0..14 {
        let a = bank.inbound("09350000001", SHORT, &format!("hello {i}"));
        assert_eq!(a.json(), json!({"status": "accepted"}));
    }
    // A card's code after the help replies, as a marker that the queue
    // has been delivered up to here.
    let p = pan(138);
    bank.enroll(&p, PHONE, "sms");
    bank.inbound(PHONE, SHORT, last4(&p));
    bank.one_time_code(PHONE, 2);
    let msgs = bank.outbox("09350000001");
    assert_eq!(msgs.len(), 10, "ten help replies an hour, then silence");
    bank.clock.advance(3600);
    bank.inbound("09350000001", SHORT, "hello");
    assert_eq!(bank.wait_outbox("09350000001", 11).len(), 11);
}

#[test]
fn harim_codes_are_bound_to_amount_and_payee() {
    let bank = Bank::start();
    let p = pan(141);
    bank.enroll(&p, PHONE, "sms");
    let a = bank.harim(&p, 1_250_000, "فروشگاه نمونه", "IR-SHOP-42");
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(
        a.json(),
        json!({"status": "requested", "expires_at": T0 + 120, "valid_for_secs": 120})
    );
    let msgs = bank.wait_outbox(PHONE, 2);
    let text = body(&msgs[1]);
    assert!(text.contains("۱٬۲۵۰٬۰۰۰ ریال"), "{text}");
    assert!(text.contains("\u{2068}فروشگاه نمونه\u{2069}"), "{text}");
    assert!(text.contains("۲ دقیقه"), "{text}");
    assert!(text.contains(&fa(last4(&p))), "{text}");
    let code = bank.one_time_code(PHONE, 2);

    for (amount, payee) in [
        (1_250_001, Some("IR-SHOP-42")),
        (1_249_999, Some("IR-SHOP-42")),
        (1_250_000, Some("IR-SHOP-43")),
        (1_250_000, None),
    ] {
        let v = bank.verify(&p, &code, amount, payee, "second");
        assert_eq!(
            v.json(),
            json!({"result": "rejected", "reason": "wrong_code"}),
            "{amount} {payee:?}"
        );
    }
    let v = bank.verify(&p, &code, 1_250_000, Some(" IR-SHOP-42 "), "second");
    assert_eq!(
        v.json(),
        json!({"result": "accepted", "reason": "ok", "matched": "transaction"})
    );
    let v = bank.verify(&p, &code, 1_250_000, Some("IR-SHOP-42"), "second");
    assert_eq!(v.json()["reason"], "replayed");

    // A transfer: the SMS names it, and only a transfer verifies.
    let r = pan(143);
    bank.enroll(&r, "09121112222", "sms");
    let a = bank.harim_tx(&r, 3_000_000, "Ali", "IR-CARD-5022", "transfer");
    assert_eq!(a.status, 202, "{}", a.body);
    let msgs = bank.wait_outbox("09121112222", 2);
    let text = body(&msgs[1]);
    assert!(
        text.starts_with("بانک: رمز پویای کارت به کارت با کارت "),
        "{text}"
    );
    assert!(text.contains("اگر این کارت به کارت از شما نیست"), "{text}");
    let t = bank.one_time_code("09121112222", 2);
    let v = bank.verify(&r, &t, 3_000_000, Some("IR-CARD-5022"), "second");
    assert_eq!(
        v.json()["reason"],
        "wrong_code",
        "as a purchase: {}",
        v.body
    );
    let v = bank.verify_tx(&r, &t, 3_000_000, "IR-CARD-5022", "transfer");
    assert_eq!(v.json()["matched"], "transaction", "{}", v.body);

    // Harim also serves app-only cards: the bank knows their phone.
    let q = pan(142);
    bank.enroll_and_activate(&q, "09127654321");
    assert_eq!(bank.harim(&q, 7000, "Shop", "S7").status, 202);
    // (activation code, activation notice, then the Harim PIN)
    let c = bank.one_time_code("09127654321", 3);
    assert_eq!(
        bank.verify(&q, &c, 7000, Some("S7"), "second").json()["matched"],
        "transaction"
    );
}

#[test]
fn wrong_guesses_at_one_time_codes_block_the_card() {
    let bank = Bank::start();
    let p = pan(145);
    bank.enroll(&p, PHONE, "sms");
    bank.inbound(PHONE, SHORT, last4(&p));
    let code = bank.one_time_code(PHONE, 2);
    let wrong = if code == "0000000" {
        "1111111"
    } else {
        "0000000"
    };
    for _ in 0..5 {
        assert_eq!(
            bank.verify(&p, wrong, 10, None, "second").json()["result"],
            "rejected"
        );
    }
    assert_eq!(
        bank.verify(&p, &code, 10, None, "second").json(),
        json!({"result": "blocked", "reason": "too_many_failures"})
    );
    let msgs = bank.wait_outbox(PHONE, 3);
    assert!(body(&msgs[2]).contains("مسدود"));
}

#[test]
fn enumeration_attempts_get_identical_answers() {
    let bank = Bank::start();
    let known = pan(151);
    let unknown = pan(152);
    bank.enroll(&known, PHONE, "sms");

    // Harim: same status, same body, byte for byte; then the same 429.
    let a = bank.harim(&known, 5000, "Shop", "S1");
    let b = bank.harim(&unknown, 5000, "Shop", "S1");
    assert_eq!((a.status, &a.body), (b.status, &b.body));
    bank.clock.advance(10);
    let a = bank.harim(&known, 5000, "Shop", "S1");
    let b = bank.harim(&unknown, 5000, "Shop", "S1");
    assert_eq!(a.status, 429);
    assert_eq!((a.status, &a.body), (b.status, &b.body));

    // The short code: unknown number, unknown card, a card that is not
    // SMS-enabled, other text: the same answer and the same help SMS.
    let app_only = pan(153);
    bank.enroll(&app_only, "09351111111", "app");
    let cases = [
        ("09350000000", last4(&known).to_owned()), // unknown number
        ("09121234567", "9999".to_owned()),        // unknown card
        ("09351111111", last4(&app_only).to_owned()), // app only
        ("09121234567", "hi".to_owned()),          // other text
        ("09121234567", format!("{} 5", last4(&known))),
    ];
    let mut replies = Vec::new();
    for (from, text) in &cases {
        let before = bank.outbox(from).len();
        let a = bank.inbound(from, SHORT, text);
        assert_eq!(
            (a.status, a.body.as_str()),
            (200, r#"{"status":"accepted"}"#)
        );
        let msgs = bank.wait_outbox(from, before + 1);
        replies.push(body(&msgs[before]).to_owned());
    }
    assert!(replies.iter().all(|r| r == &replies[0]), "{replies:#?}");
    assert!(replies[0].contains("۳۰۰۰۳۳۰۳"), "{}", replies[0]);

    // Verify tells nothing either: an unknown card's answer is a wrong
    // code's, before and after a Harim request.
    assert_eq!(
        bank.verify(&unknown, "1234567", 5000, Some("S1"), "second")
            .json(),
        json!({"result": "rejected", "reason": "wrong_code"})
    );
}

#[test]
fn the_outbox_shows_only_what_was_sent() {
    let bank = Bank::start();
    let known = pan(161);
    bank.enroll(&known, PHONE, "sms");
    // Nothing is sent for: an unknown card, a rate-limited request, a
    // message to another number, a malformed request.
    assert_eq!(bank.harim(&pan(162), 5000, "Shop", "S1").status, 202);
    assert_eq!(bank.harim(&known, 5000, "Shop", "S1").status, 202);
    assert_eq!(bank.harim(&known, 5000, "Shop", "S1").status, 429);
    let a = bank.inbound(PHONE, "10001000", last4(&known));
    assert_eq!(a.json(), json!({"status": "ignored"}));
    assert_eq!(bank.harim(&known, 0, "Shop", "S1").status, 400);
    // A marker delivered after all of those.
    bank.clock.advance(60);
    bank.inbound(PHONE, SHORT, last4(&known));
    bank.one_time_code(PHONE, 3);
    let all = bank.client.get("/v1/sms/outbox", Some(bank.ops()));
    let msgs = all.json()["messages"].as_array().unwrap().clone();
    assert_eq!(msgs.len(), 3, "{msgs:#?}");
    assert!(body(&msgs[0]).contains("فعال شد"));
    assert!(body(&msgs[1]).contains("۵٬۰۰۰ ریال"));
    assert!(body(&msgs[2]).contains("رمز دوم یکبارمصرف"));
    assert!(msgs.iter().all(|m| m["to"] == "+989121234567"));
    // Codes were never in an answer, only in the SMS.
    let code = bank.one_time_code(PHONE, 3);
    assert!(!a.body.contains(&code));
}

#[test]
fn static_second_pins_are_never_accepted() {
    let bank = Bank::start();
    let p = pan(171);
    // There is no way to give a card a fixed second PIN.
    let a = bank.client.post(
        "/v1/enrollments",
        Some(bank.atm()),
        &json!({"pan": p, "phone": PHONE, "channel": "sms", "second_pin": "12345"}),
    );
    assert_eq!((a.status, a.error_code().as_str()), (400, "unknown_field"));
    let card = bank.enroll_and_activate(&p, PHONE);
    bank.enroll(&p, PHONE, "sms");
    // The card's old fixed second PIN (five digits, as static second PINs
    // were), and codes a customer may have kept, tried on four days:
    // never accepted.
    let cap = card.response.policies.cap_ladder.tiers()[0];
    let old_app = second_pin(&card.keys, &card.response.policies, cap, T0).unwrap();
    bank.inbound(PHONE, SHORT, last4(&p));
    // (activation code, activation notice, SMS version on, the PIN)
    let sms_code = bank.one_time_code(PHONE, 4);
    assert_eq!(
        bank.verify(&p, &sms_code, cap, None, "second").json()["result"],
        "accepted"
    );
    for day in 1..=4u64 {
        bank.clock.set(T0 + day * 86_400);
        for code in ["12345", "1234", &sms_code, &old_app.code] {
            let v = bank.verify(&p, code, cap, None, "second");
            assert_eq!(v.json()["result"], "rejected", "day {day}: {code}");
        }
        // A fresh app code is accepted, which also resets the failures.
        let t = T0 + day * 86_400;
        let fresh = second_pin(&card.keys, &card.response.policies, cap, t).unwrap();
        assert_eq!(
            bank.verify(&p, &fresh.code, cap, None, "second").json()["result"],
            "accepted"
        );
    }
}

#[test]
fn bad_requests_get_stable_codes() {
    let bank = Bank::start();
    bank.register_merchant("S", "Shop");
    let p = pan(181);
    for (body, code) in [
        (
            json!({"pan": "123", "amount": 5, "payee_id": "S", "type": "purchase"}),
            "invalid_pan",
        ),
        (
            json!({"pan": p, "amount": 0, "payee_id": "S", "type": "purchase"}),
            "invalid_amount",
        ),
        (
            json!({"pan": p, "amount": -1, "payee_id": "S", "type": "purchase"}),
            "invalid_field",
        ),
        (
            json!({"pan": p, "amount": 5, "payee_id": " ", "type": "purchase"}),
            "invalid_payee",
        ),
        // Transaction types (issue 13): required, and one of three names.
        (
            json!({"pan": p, "amount": 5, "payee_id": "S"}),
            "missing_type",
        ),
        (
            json!({"pan": p, "amount": 5, "payee_id": "S", "type": "Purchase"}),
            "invalid_type",
        ),
        (
            json!({"pan": p, "amount": 5, "payee_id": "S", "type": "card_to_card"}),
            "invalid_type",
        ),
        (
            json!({"pan": p, "amount": 5, "payee_id": "S", "type": 1}),
            "invalid_field",
        ),
        (json!({"pan": p, "amount": 5}), "missing_field"),
        (
            json!({"pan": p, "amount": 5, "payee_id": "S", "type": "bill", "x": 1}),
            "unknown_field",
        ),
    ] {
        let a = bank
            .client
            .post("/v1/otp-requests", Some(bank.gateway()), &body);
        assert_eq!((a.status, a.error_code()), (400, code.to_owned()), "{body}");
    }
    for (body, code) in [
        (
            json!({"from": "12345", "to": SHORT, "body": "0001"}),
            "invalid_phone",
        ),
        (json!({"from": PHONE, "to": SHORT}), "missing_field"),
        (
            json!({"from": PHONE, "to": SHORT, "body": "1", "at": 1}),
            "unknown_field",
        ),
    ] {
        let a = bank.client.post("/v1/sms/inbound", Some(bank.sms()), &body);
        assert_eq!((a.status, a.error_code()), (400, code.to_owned()), "{body}");
    }
    // Roles: the SMS centre only for inbound, gateways only for Harim.
    let a = bank.client.post(
        "/v1/sms/inbound",
        Some(bank.gateway()),
        &json!({"from": PHONE, "to": SHORT, "body": "0001"}),
    );
    assert_eq!(a.status, 403);
    let a = bank.client.post(
        "/v1/otp-requests",
        Some(bank.sms()),
        &json!({"pan": p, "amount": 5, "payee_id": "S", "type": "purchase"}),
    );
    assert_eq!(a.status, 403);
}
