//! A card's whole life over real HTTP on 127.0.0.1 (issue 13, item 2):
//! the ATM's deactivation of a lost phone, the bank's suspend, resume and
//! revoke, each audited and told by SMS; app PINs refused at once with a
//! clear reason while the SMS version keeps working; the device's removal
//! and status requests, proved with the card's device key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use pooya_issuer::Clock as _;
use pooya_protocol::card_request::{
    AppStatus, CardAction, answer_signing_input, not_found_signing_input, proof,
};
use pooya_protocol::first_pin;
use serde_json::{Value, json};

const SHORT: &str = "30003303";

fn change(bank: &Bank, route: &str, token: &str, pan: &str) -> Answer {
    bank.client.post(
        &format!("/v1/cards/{route}"),
        Some(token),
        &json!({ "pan": pan }),
    )
}

fn device(bank: &Bank, action: CardAction, card: &PhoneCard, time: u64) -> Answer {
    let route = match action {
        CardAction::Remove => "remove",
        CardAction::Status => "status",
    };
    let id = &card.response.card_id;
    let p = hex::encode(proof(&card.device_key, action, id, time));
    bank.client.post(
        &format!("/v1/cards/{route}"),
        None,
        &json!({"card_id": id, "time": time, "proof": p}),
    )
}

/// A fresh first PIN (one step later, so never a replay) and the bank's
/// verdict.
fn app_pin(bank: &Bank, card: &PhoneCard, pan: &str) -> Value {
    bank.clock.advance(60);
    let now = bank.clock.now();
    let pin = first_pin(&card.keys, &card.response.policies, now).unwrap();
    bank.verify(pan, &pin.code, 0, None, "first").json()
}

/// Whether a card answer's signature verifies, under the bank's public
/// key, over `input`.
fn answer_verifies(bank: &Bank, answer: &Value, input: &[u8]) -> bool {
    use ring::signature::{ED25519, UnparsedPublicKey};
    let key = hex::decode(&bank.init.issuer_public_key).unwrap();
    let sig = hex::decode(answer["signature"].as_str().unwrap()).unwrap();
    UnparsedPublicKey::new(&ED25519, &key)
        .verify(input, &sig)
        .is_ok()
}

fn last_sms(bank: &Bank) -> String {
    let msgs = bank.outbox(PHONE);
    msgs.last().unwrap()["body"].as_str().unwrap().to_owned()
}

#[test]
fn suspend_resume_revoke_and_the_atm_each_audited_told_and_enforced() {
    let bank = Bank::start();
    let p = pan(301);
    let card = bank.enroll_and_activate(&p, PHONE);
    // The SMS version too, on the same card.
    assert_eq!(bank.enroll(&p, PHONE, "sms").status, 201);
    assert_eq!(app_pin(&bank, &card, &p)["result"], "accepted");

    // Roles: the ATM may only deactivate, operations the rest.
    assert_eq!(
        change(&bank, "suspend", bank.atm(), &p).error_code(),
        "forbidden"
    );
    assert_eq!(
        change(&bank, "deactivate", bank.ops(), &p).error_code(),
        "forbidden"
    );
    assert_eq!(
        bank.client
            .post("/v1/cards/suspend", None, &json!({"pan": p}))
            .status,
        401
    );

    // Suspend: the app's PINs are refused at once, with the reason.
    let before = bank.outbox(PHONE).len();
    let a = change(&bank, "suspend", bank.ops(), &p);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.json(),
        json!({"card_id": card.response.card_id, "previous": "active", "status": "suspended", "changed": true})
    );
    assert_eq!(bank.outbox(PHONE).len(), before + 1, "the customer is told");
    assert!(last_sms(&bank).contains("معلق"), "{}", last_sms(&bank));
    assert_eq!(
        app_pin(&bank, &card, &p),
        json!({"result": "rejected", "reason": "card_suspended"})
    );
    // The SMS version keeps working.
    let n = bank.outbox(PHONE).len();
    assert_eq!(bank.inbound("+989121234567", SHORT, &p[12..]).status, 200);
    let code = bank.one_time_code(PHONE, n + 1);
    let v = bank.verify(&p, &code, 1_000_000, None, "second").json();
    assert_eq!(v["result"], "accepted", "{v}");
    // Suspending again changes nothing and sends nothing.
    let n = bank.outbox(PHONE).len();
    let a = change(&bank, "suspend", bank.ops(), &p).json();
    assert_eq!(a["changed"], false);
    assert_eq!(bank.outbox(PHONE).len(), n);

    // Resume: the app's PINs work again.
    let a = change(&bank, "resume", bank.ops(), &p).json();
    assert_eq!(
        (a["previous"].clone(), a["status"].clone()),
        (json!("suspended"), json!("active"))
    );
    assert_eq!(app_pin(&bank, &card, &p)["result"], "accepted");

    // A lost phone, at the ATM: revoked; the old phone's PINs are refused.
    let a = change(&bank, "deactivate", bank.atm(), &p);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["status"], "revoked");
    assert!(last_sms(&bank).contains("خودپرداز"), "{}", last_sms(&bank));
    assert_eq!(app_pin(&bank, &card, &p)["reason"], "card_revoked");
    // A revoked card is not resumed or suspended: a new activation is.
    for route in ["resume", "suspend"] {
        let a = change(&bank, route, bank.ops(), &p);
        assert_eq!(
            (a.status, a.error_code()),
            (409, "card_revoked".into()),
            "{route}"
        );
    }
    // The device asking learns it.
    let now = bank.clock.now();
    assert_eq!(
        device(&bank, CardAction::Status, &card, now).json()["status"],
        "revoked"
    );

    // Activating again (a new phone) makes the card active; the old
    // phone's proofs are now another device's.
    let again = bank.enroll_and_activate(&p, PHONE);
    assert_eq!(app_pin(&bank, &again, &p)["result"], "accepted");
    let now = bank.clock.now();
    assert_eq!(
        device(&bank, CardAction::Status, &again, now).json()["status"],
        "active"
    );
    assert_eq!(
        device(&bank, CardAction::Status, &card, now).json()["status"],
        "other_device"
    );
    assert_eq!(
        device(&bank, CardAction::Remove, &card, now).json()["status"],
        "other_device",
        "the old phone cannot remove the new one's card"
    );
    assert_eq!(app_pin(&bank, &again, &p)["result"], "accepted");

    // Unknown cards and bad input have stable codes.
    assert_eq!(
        change(&bank, "revoke", bank.ops(), &pan(399)).error_code(),
        "card_not_found"
    );
    assert_eq!(
        change(&bank, "revoke", bank.ops(), "1234").error_code(),
        "invalid_pan"
    );

    // Revoked by the bank.
    let a = change(&bank, "revoke", bank.ops(), &p).json();
    assert_eq!(a["status"], "revoked");
    assert_eq!(app_pin(&bank, &again, &p)["reason"], "card_revoked");
}

#[test]
fn the_phone_removes_its_card_with_a_proof_only_it_can_make() {
    let bank = Bank::start();
    let p = pan(302);
    let card = bank.enroll_and_activate(&p, PHONE);
    let now = bank.clock.now();

    // A proof for the other action, a stale time, bad fields.
    let id = card.response.card_id.clone();
    let status_proof = hex::encode(proof(&card.device_key, CardAction::Status, &id, now));
    let a = bank.client.post(
        "/v1/cards/remove",
        None,
        &json!({"card_id": id, "time": now, "proof": status_proof}),
    );
    assert_eq!(
        a.json()["status"],
        "other_device",
        "a status proof removes nothing"
    );
    assert_eq!(app_pin(&bank, &card, &p)["result"], "accepted");
    let a = device(&bank, CardAction::Remove, &card, bank.clock.now() - 301);
    assert_eq!((a.status, a.error_code()), (400, "stale_request".into()));
    for (body, code) in [
        (
            json!({"card_id": id, "time": now, "proof": "00"}),
            "invalid_proof",
        ),
        (
            json!({"card_id": "", "time": now, "proof": "00".repeat(32)}),
            "invalid_card_id",
        ),
        (
            json!({"card_id": "crd_nobody", "time": now, "proof": "00".repeat(32)}),
            "card_not_found",
        ),
        (json!({"card_id": id, "time": now}), "missing_field"),
    ] {
        let a = bank.client.post("/v1/cards/remove", None, &body);
        assert_eq!(a.error_code(), code, "{body}: {}", a.body);
    }

    // An unknown card's 404 is signed over the request, so a phone can
    // tell it from one a network made up (docs/protocol.md, "Signed card
    // answers"); for another request or the other action it does not
    // verify.
    for action in [CardAction::Remove, CardAction::Status] {
        let route = if action == CardAction::Remove {
            "remove"
        } else {
            "status"
        };
        let sent = [0x5a; 32];
        let a = bank.client.post(
            &format!("/v1/cards/{route}"),
            None,
            &json!({"card_id": "crd_nobody", "time": now, "proof": hex::encode(sent)}),
        );
        assert_eq!((a.status, a.error_code()), (404, "card_not_found".into()));
        let v = a.json();
        assert!(answer_verifies(
            &bank,
            &v,
            &not_found_signing_input(action, "crd_nobody", now, &sent)
        ));
        let other = match action {
            CardAction::Remove => CardAction::Status,
            CardAction::Status => CardAction::Remove,
        };
        assert!(!answer_verifies(
            &bank,
            &v,
            &not_found_signing_input(other, "crd_nobody", now, &sent)
        ));
        assert!(!answer_verifies(
            &bank,
            &v,
            &not_found_signing_input(action, "crd_nobody", now + 1, &sent)
        ));
    }

    // The real removal: revoked at once, told by SMS, audited.
    let before = bank.outbox(PHONE).len();
    let now = bank.clock.now();
    let a = device(&bank, CardAction::Remove, &card, now);
    assert_eq!(a.status, 200, "{}", a.body);
    let v = a.json();
    assert_eq!(
        (&v["card_id"], &v["status"]),
        (&json!(id), &json!("revoked"))
    );
    // Signed under the answer label over this request's time and proof.
    let sent = proof(&card.device_key, CardAction::Remove, &id, now);
    let signed = |status, time, proof: &[u8; 32]| {
        answer_signing_input(CardAction::Remove, &id, status, time, proof)
    };
    assert!(answer_verifies(
        &bank,
        &v,
        &signed(AppStatus::Revoked, now, &sent)
    ));
    assert!(!answer_verifies(
        &bank,
        &v,
        &signed(AppStatus::Active, now, &sent)
    ));
    assert!(!answer_verifies(
        &bank,
        &v,
        &signed(AppStatus::Revoked, now + 1, &sent)
    ));
    assert!(!answer_verifies(
        &bank,
        &v,
        &signed(AppStatus::Revoked, now, &[0; 32])
    ));
    assert_eq!(bank.outbox(PHONE).len(), before + 1);
    assert!(last_sms(&bank).contains("حذف"), "{}", last_sms(&bank));
    assert_eq!(app_pin(&bank, &card, &p)["reason"], "card_revoked");
    // Again (a retry after a lost answer): the same answer, no second SMS.
    let a = device(&bank, CardAction::Remove, &card, bank.clock.now());
    assert_eq!(a.json()["status"], "revoked");
    assert_eq!(bank.outbox(PHONE).len(), before + 1);
}
