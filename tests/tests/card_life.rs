//! A card's life on the phone against a real issuer on 127.0.0.1 (issue
//! 13, item 2): removal tells the bank (or is kept and told at the next
//! sync, also after a reopen of the vault), and a sync learns the ATM's
//! deactivation, the bank's suspend and resume, and an activation on
//! another phone, so the phone refuses PINs the bank would refuse.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use pooya_core::hooks::{HostError, HttpResponse, Transport};
use pooya_core::protocol::card_request::AppStatus;
use pooya_core::{BankNotice, Phone};
use serde_json::{Value, json};

/// The phone's network, which the test can cut.
#[derive(Default)]
struct Switch {
    offline: AtomicBool,
    inner: HttpTransport,
}

impl Transport for Switch {
    fn post_json(&self, url: &str, body: &[u8], t: u64) -> Result<HttpResponse, HostError> {
        if self.offline.load(Ordering::SeqCst) {
            return Err(HostError::new("network unreachable"));
        }
        self.inner.post_json(url, body, t)
    }
}

fn activated(bank: &Bank, device: &Device, pan: &str, net: Arc<Switch>) -> (Phone, i64) {
    let mut phone = device.create(net);
    phone
        .add_issuer("bank", &bank.url(), &bank.key(), &bank.activation_key())
        .unwrap();
    let code = bank.enroll(pan);
    let added = phone.add_card("bank", &code, None).unwrap();
    (phone, added.card.id)
}

/// The bank's own route with a role token: `(status, body)`.
fn bank_post(bank: &Bank, path: &str, token: &str, body: &Value) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .post(format!("{}{path}", bank.url()))
        .header("Authorization", format!("Bearer {token}"))
        .send_json(body)
        .unwrap();
    (r.status().as_u16(), r.body_mut().read_json().unwrap())
}

/// What the bank's operators see of the card's app state.
fn change(bank: &Bank, route: &str, pan: &str) -> Value {
    let token = if route == "deactivate" {
        bank.init.tokens.atm.expose_secret().to_owned()
    } else {
        bank.init.tokens.ops.expose_secret().to_owned()
    };
    let (status, v) = bank_post(
        bank,
        &format!("/v1/cards/{route}"),
        &token,
        &json!({"pan": pan}),
    );
    assert_eq!(status, 200, "{route}: {v}");
    v
}

#[test]
fn removal_online_and_offline_with_the_retry_at_the_next_sync_after_a_reopen() {
    let bank = Bank::start(T0);
    let device = Device::new(T0);
    let net = Arc::new(Switch::default());
    let (p1, p2) = (pan(501), pan(502));
    let (mut phone, first) = activated(&bank, &device, &p1, net.clone());
    let second = phone
        .add_card("bank", &bank.enroll(&p2), None)
        .unwrap()
        .card
        .id;

    // Online: the bank is told and revokes the card's app at once.
    let r = phone.remove_card(first, PASSWORD).unwrap();
    assert_eq!(r.notice, BankNotice::Told(AppStatus::Revoked));
    assert_eq!(bank_status(&bank, &p1), "revoked");

    // Offline: removed here, pending, the bank still has it active.
    bank.clock.advance(120);
    device.clock.advance(120);
    net.offline.store(true, Ordering::SeqCst);
    let r = phone.remove_card(second, PASSWORD).unwrap();
    match &r.notice {
        BankNotice::Pending { reason } => assert_eq!(reason.code(), "network"),
        other => panic!("{other:?}"),
    }
    assert!(phone.cards().unwrap().is_empty());
    assert_eq!(phone.pending_removals().unwrap().len(), 1);
    assert_eq!(bank_status(&bank, &p2), "active");
    drop(phone);

    // The app restarts, the network is back: the sync tells the bank.
    net.offline.store(false, Ordering::SeqCst);
    let mut phone = device.reopen(net.clone());
    assert_eq!(phone.pending_removals().unwrap().len(), 1);
    let sync = phone.sync("bank").unwrap();
    assert_eq!(sync.removals.len(), 1);
    assert_eq!(
        sync.removals[0].notice,
        BankNotice::Told(AppStatus::Revoked)
    );
    assert!(phone.pending_removals().unwrap().is_empty());
    assert_eq!(bank_status(&bank, &p2), "revoked");
}

/// The card's app state as the bank's operators read it, for a card that
/// is active or revoked: resuming an active card changes nothing and
/// answers its state; a revoked one cannot be resumed (409
/// `card_revoked`).
fn bank_status(bank: &Bank, pan: &str) -> String {
    let (status, v) = bank_post(
        bank,
        "/v1/cards/resume",
        bank.init.tokens.ops.expose_secret(),
        &json!({"pan": pan}),
    );
    match status {
        200 => {
            assert_eq!(v["changed"], false, "{v}");
            v["status"].as_str().unwrap().to_owned()
        }
        409 => {
            assert_eq!(v["error"], "card_revoked", "{v}");
            "revoked".into()
        }
        other => panic!("{other}: {v}"),
    }
}

#[test]
fn sync_learns_the_atm_deactivation_a_suspension_and_its_end_and_another_phone() {
    let bank = Bank::start(T0);
    let device = Device::new(T0);
    let net = Arc::new(Switch::default());
    let (pa, pb) = (pan(511), pan(512));
    let (mut phone, a) = activated(&bank, &device, &pa, net.clone());
    let b = phone
        .add_card("bank", &bank.enroll(&pb), None)
        .unwrap()
        .card
        .id;
    let sync = phone.sync("bank").unwrap();
    assert!(sync.cards.iter().all(|c| c.status == AppStatus::Active));
    assert!(phone.first_pin(a).is_ok());

    // A lost phone: the customer deactivates card A at an ATM.
    change(&bank, "deactivate", &pa);
    // The bank suspends card B for now.
    change(&bank, "suspend", &pb);
    bank.clock.advance(30);
    device.clock.advance(30);
    let sync = phone.sync("bank").unwrap();
    let states: Vec<AppStatus> = sync.cards.iter().map(|c| c.status).collect();
    assert_eq!(states, [AppStatus::Revoked, AppStatus::Suspended]);
    assert_eq!(phone.card(a).unwrap().app_status, AppStatus::Revoked);
    assert_eq!(phone.first_pin(a).unwrap_err().code(), "card_revoked");
    assert_eq!(
        phone.second_pin(b, None).unwrap_err().code(),
        "card_suspended"
    );

    // Resumed: the next sync gives B its PINs back, and the bank takes them.
    change(&bank, "resume", &pb);
    bank.clock.advance(60);
    device.clock.advance(60);
    let sync = phone.sync("bank").unwrap();
    assert_eq!(sync.cards[1].status, AppStatus::Active);
    let pin = phone.first_pin(b).unwrap();
    assert!(bank.accepts(&pb, &pin.code, 0, None, "first"));

    // Card B activated on a second phone: the first phone's sync shows
    // other_device and refuses its PINs; the new phone's work.
    let device2 = Device::new({
        use pooya_issuer::Clock as _;
        bank.clock.now()
    });
    let mut phone2 = device2.create(Arc::new(HttpTransport));
    phone2
        .add_issuer("bank", &bank.url(), &bank.key(), &bank.activation_key())
        .unwrap();
    let b2 = phone2
        .add_card("bank", &bank.enroll(&pb), None)
        .unwrap()
        .card
        .id;
    bank.clock.advance(60);
    device.clock.advance(60);
    device2.clock.advance(60);
    let sync = phone.sync("bank").unwrap();
    assert_eq!(sync.cards[1].status, AppStatus::OtherDevice);
    assert_eq!(
        phone.first_pin(b).unwrap_err().code(),
        "card_on_other_device"
    );
    let pin = phone2.first_pin(b2).unwrap();
    assert!(bank.accepts(&pb, &pin.code, 0, None, "first"));
    // The states survive a reopen.
    drop(phone);
    let mut phone = device.reopen(net);
    assert_eq!(phone.first_pin(a).unwrap_err().code(), "card_revoked");
    assert_eq!(phone.card(b).unwrap().app_status, AppStatus::OtherDevice);
}
