//! `pooya demo` runs every step (the app, the SMS version, Harim) against
//! its in-process bank and exits 0;
//! `--json` gives the same story as one document.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn demo_behaves_and_says_so() {
    let out = Command::new(env!("CARGO_BIN_EXE_pooya"))
        .arg("demo")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "activation code",
        "Argon2id at the accepted floor",
        "before any network call",
        "to the bank's activation key with HPKE",
        "every activation is announced by SMS",
        "rounded down",
        "above the cap): rejected (wrong_code)",
        "within the cap): accepted (second)",
        "rejected (replayed)",
        "IR-EVIL-99: rejected",
        "a card-to-card transfer (کارت به کارت)",
        "passed off as a purchase from IR-CARD-5022: rejected (wrong_code)",
        "the real transfer to IR-CARD-5022: accepted (transaction)",
        "the card now has both: the app and the SMS version",
        "a 7-digit one-time second PIN",
        "3,500,000 Rials with it: accepted (second)",
        "the same PIN again: rejected (replayed)",
        "۲٬۷۵۰٬۰۰۰ ریال",
        "the very same answer",
        "3,750,000 Rials: rejected (wrong_code)",
        "the real payment: accepted (transaction)",
        "the phone's camera reads pooya:pay?amount=4200000&payee=IR-SHOP-42&name=",
        "The phone shows: خرید · ۴٬۲۰۰٬۰۰۰ ریال · فروشگاه نمونه (IR-SHOP-42)",
        "Purchase · 4,200,000 Rials",
        "4,200,001 Rials instead: rejected (wrong_code)",
        "the QR payment: accepted (transaction)",
        "steps behaved as expected",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(!text.contains('✗'), "{text}");
}

#[test]
fn demo_json_lists_every_step() {
    let out = Command::new(env!("CARGO_BIN_EXE_pooya"))
        .args(["demo", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    let steps = v["steps"].as_array().unwrap();
    assert!(steps.len() >= 11);
    let titles: Vec<&str> = steps.iter().map(|s| s["title"].as_str().unwrap()).collect();
    assert!(titles.contains(&"The SMS version"), "{titles:?}");
    assert!(titles.iter().any(|t| t.starts_with("Harim")), "{titles:?}");
    assert!(
        titles.contains(&"A card-to-card transfer PIN"),
        "{titles:?}"
    );
    assert!(
        titles.contains(&"Scan and sign: a payment QR code"),
        "{titles:?}"
    );
    assert!(steps.iter().all(|s| s["ok"] == true));
}
