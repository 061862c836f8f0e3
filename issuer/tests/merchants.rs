//! Issue 10, item 6: what the Harim SMS shows is what the customer pays.
//! Payee names come from the bank's merchant registry
//! (`PUT /v1/merchants/{payee_id}`, ops), which refuses names that could
//! fake a second amount, hide characters or imitate another merchant;
//! payee ids are plain ASCII; the SMS isolates the name and puts the amount
//! on its own line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use pooya_issuer::{Language, Settings};
use serde_json::{Value, json};

fn put_merchant(bank: &Bank, id: &str, name: &str, token: &str) -> Answer {
    let body = serde_json::to_vec(&json!({ "name": name })).unwrap();
    bank.client.raw(
        "PUT",
        &format!("/v1/merchants/{id}"),
        Some(token),
        Some("application/json"),
        Some(&body),
    )
}

fn harim(bank: &Bank, pan: &str, amount: u64, payee_id: &str) -> Answer {
    bank.client.post(
        "/v1/otp-requests",
        Some(bank.gateway()),
        &json!({"pan": pan, "amount": amount, "payee_id": payee_id, "type": "purchase"}),
    )
}

fn body(m: &Value) -> &str {
    m["body"].as_str().unwrap()
}

#[test]
fn the_registry_creates_updates_and_shows_merchants() {
    let bank = Bank::start();
    let a = put_merchant(&bank, "shop-1", "فروشگاه نمونه", bank.ops());
    assert_eq!(a.status, 201, "{}", a.body);
    let a = put_merchant(&bank, "shop-1", "کتاب\u{200C}فروشی نمونه", bank.ops());
    assert_eq!(a.status, 200, "{}", a.body);
    let g = bank.client.get("/v1/merchants/shop-1", Some(bank.ops()));
    assert_eq!(g.status, 200, "{}", g.body);
    assert_eq!(g.json()["name"], "کتاب\u{200C}فروشی نمونه");
    assert_eq!(g.json()["payee_id"], "shop-1");
    let g = bank.client.get("/v1/merchants/nobody", Some(bank.ops()));
    assert_eq!((g.status, g.error_code().as_str()), (404, "unknown_payee"));
    // Only operations may register merchants; a gateway may not name itself.
    let a = put_merchant(&bank, "shop-2", "Shop", bank.gateway());
    assert_eq!((a.status, a.error_code().as_str()), (403, "forbidden"));
    let a = put_merchant(&bank, "shop-2", "Shop", "nope");
    assert_eq!((a.status, a.error_code().as_str()), (401, "unauthorized"));
    // Latin names, digits and plain punctuation are fine.
    for good in [
        "Digikala",
        "Ali & Sons Co.",
        "Shop 24",
        "O'Neil-Market",
        "۲۴ ساعته",
    ] {
        let a = put_merchant(&bank, "shop-3", good, bank.ops());
        assert!(a.status == 200 || a.status == 201, "{good}: {}", a.body);
    }
}

#[test]
fn the_attack_names_are_refused() {
    let bank = Bank::start();
    for (name, code) in [
        // A line break to push a second amount onto its own line.
        (
            "دیجی\u{200C}کالا\u{2028}مبلغ واقعی: ۱٬۰۰۰ ریال",
            "invalid_merchant_name",
        ),
        ("Shop\u{2029}Amount: 1,000 Rials", "invalid_merchant_name"),
        ("Shop\nAmount: 1,000 Rials", "invalid_merchant_name"),
        // Guillemets and parentheses that fake a second amount.
        (
            "دیجی\u{200C}کالا» (مبلغ واقعی: ۱٬۰۰۰ ریال) «فروشگاه",
            "invalid_merchant_name",
        ),
        ("Shop (real amount: 1,000)", "invalid_merchant_name"),
        // Invisible and direction characters.
        ("Digi\u{200B}kala", "invalid_merchant_name"),
        ("Digi\u{2060}kala", "invalid_merchant_name"),
        ("Digi\u{00AD}kala", "invalid_merchant_name"),
        ("\u{202E}alakigiD", "invalid_merchant_name"),
        ("Digi\u{2066}kala\u{2069}", "invalid_merchant_name"),
        ("Digi\u{FEFF}kala", "invalid_merchant_name"),
        ("دیجی\u{200F}کالا", "invalid_merchant_name"),
        // Look-alikes from another script (UTS #39 mixed-script).
        ("Digik\u{0430}la", "mixed_script_merchant_name"),
        ("\u{0421}hop", "mixed_script_merchant_name"),
        ("دیجیkala", "mixed_script_merchant_name"),
        // Empty, blank, too long.
        ("", "invalid_merchant_name"),
        ("   ", "invalid_merchant_name"),
        (&"n".repeat(65), "invalid_merchant_name"),
    ] {
        let a = put_merchant(&bank, "shop-1", name, bank.ops());
        assert_eq!(
            (a.status, a.error_code()),
            (400, code.to_owned()),
            "{name:?}: {}",
            a.body
        );
    }
    assert_eq!(
        bank.client
            .get("/v1/merchants/shop-1", Some(bank.ops()))
            .status,
        404,
        "nothing was stored"
    );
}

#[test]
fn payee_ids_are_plain_ascii() {
    let bank = Bank::start();
    for bad in [
        "shop%E2%80%AE1",
        "shop%20one",
        "-shop",
        "%D9%81%D8%B1%D9%88%D8%B4",
    ] {
        let a = put_merchant(&bank, bad, "Shop", bank.ops());
        assert_eq!(
            (a.status, a.error_code().as_str()),
            (400, "invalid_payee"),
            "{bad}"
        );
    }
    let long = "s".repeat(65);
    let a = put_merchant(&bank, &long, "Shop", bank.ops());
    assert_eq!((a.status, a.error_code().as_str()), (400, "invalid_payee"));
    let p = pan(1);
    for bad in ["shop\u{202E}1", "shop one", "فروشگاه", ""] {
        let a = harim(&bank, &p, 1000, bad);
        assert_eq!(
            (a.status, a.error_code().as_str()),
            (400, "invalid_payee"),
            "{bad:?}"
        );
        let v = bank.verify(&p, "1234567", 1000, Some(bad), "second");
        assert_eq!(
            (v.status, v.error_code().as_str()),
            (400, "invalid_payee"),
            "{bad:?}"
        );
    }
}

#[test]
fn a_harim_request_needs_a_registered_payee_and_takes_no_name() {
    let bank = Bank::start();
    let p = pan(1);
    bank.enroll_and_activate(&p, PHONE);
    let a = harim(&bank, &p, 1000, "shop-1");
    assert_eq!(
        (a.status, a.error_code().as_str()),
        (422, "unknown_payee"),
        "{}",
        a.body
    );
    // The gateway cannot supply the name shown to the customer.
    let a = bank.client.post(
        "/v1/otp-requests",
        Some(bank.gateway()),
        &json!({"pan": p, "amount": 1000, "payee_id": "shop-1", "type": "purchase", "payee_name": "Digikala"}),
    );
    assert_eq!(
        (a.status, a.error_code().as_str()),
        (400, "unknown_field"),
        "{}",
        a.body
    );
    // An unknown card with an unregistered payee: the same refusal (the
    // payee is checked before the card, so nothing about cards leaks).
    let a = harim(&bank, &pan(2), 1000, "shop-1");
    assert_eq!((a.status, a.error_code().as_str()), (422, "unknown_payee"));
}

#[test]
fn the_sms_isolates_the_name_and_puts_the_amount_on_its_own_line() {
    for lang in [Language::Fa, Language::En] {
        let bank = Bank::start_with(Settings {
            language: lang,
            ..Settings::development()
        });
        let p = pan(1);
        bank.enroll_and_activate(&p, PHONE);
        let before = bank.outbox(PHONE).len();
        assert_eq!(
            put_merchant(&bank, "shop-1", "فروشگاه نمونه", bank.ops()).status,
            201
        );
        let a = harim(&bank, &p, 1_234_500, "shop-1");
        assert_eq!(a.status, 202, "{}", a.body);
        let msgs = bank.wait_outbox(PHONE, before + 1);
        let text = body(msgs.last().unwrap());
        let lines: Vec<&str> = text.lines().collect();
        let (payee, amount) = match lang {
            Language::Fa => (
                "پذیرنده: \u{2068}فروشگاه نمونه\u{2069}".to_owned(),
                format!("مبلغ: {} ریال", pooya_protocol::format_rials_fa(1_234_500)),
            ),
            Language::En => (
                "Payee: \u{2068}فروشگاه نمونه\u{2069}".to_owned(),
                format!("Amount: {} Rials", pooya_protocol::format_rials(1_234_500)),
            ),
        };
        assert_eq!(lines.get(1), Some(&payee.as_str()), "{text}");
        assert_eq!(lines.get(2), Some(&amount.as_str()), "{text}");
        let code = pooya_issuer::messages::find_one_time_code(text).unwrap();
        assert_eq!(lines.get(3), Some(&code.as_str()), "{text}");
        // The amount appears once, and the code verifies for the registered
        // payee id.
        assert_eq!(text.matches(&amount).count(), 1);
        let v = bank.verify(&p, &code, 1_234_500, Some("shop-1"), "second");
        assert_eq!(v.json()["matched"], "transaction", "{}", v.body);
    }
}
