//! Signed time against a real issuer on 127.0.0.1 (issue 13, item 1):
//! `/v1/time` answers, the phone's sync, PINs from the boot clock while
//! the user moves the wall clock, the fall-back after a restart, and
//! answers a network in the middle forged or replayed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use pooya_core::hooks::{HostError, HttpResponse, Transport};
use pooya_core::{CoreError, Phone, TimeSource};
use serde_json::Value;

fn activated(
    bank: &Bank,
    device: &Device,
    pan: &str,
    transport: Arc<dyn Transport>,
) -> (Phone, i64) {
    let mut phone = device.create(transport);
    phone
        .add_issuer("bank", &bank.url(), &bank.key(), &bank.activation_key())
        .unwrap();
    let code = bank.enroll(pan);
    let added = phone.add_card("bank", &code, None).unwrap();
    (phone, added.card.id)
}

fn get(url: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent.get(url).call().unwrap();
    (r.status().as_u16(), r.body_mut().read_json().unwrap())
}

#[test]
fn the_time_route_signs_the_nonce_and_the_time_under_its_own_label() {
    use ring::signature::{ED25519, UnparsedPublicKey};
    let bank = Bank::start(T0);
    let nonce = "00112233445566778899aabbccddeeff";
    let (status, v) = get(&format!("{}/v1/time?nonce={nonce}", bank.url()));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["server_time"], T0);
    assert_eq!(v["nonce"], nonce);
    let key = hex::decode(bank.key()).unwrap();
    let sig = hex::decode(v["signature"].as_str().unwrap()).unwrap();
    let input = pooya_protocol::time::time_signing_input(&hex::decode(nonce).unwrap(), T0);
    UnparsedPublicKey::new(&ED25519, &key)
        .verify(&input, &sig)
        .unwrap();
    // Not a bare signature of the time or the nonce.
    assert!(
        UnparsedPublicKey::new(&ED25519, &key)
            .verify(&T0.to_be_bytes(), &sig)
            .is_err()
    );
    // Bad nonces and queries have stable codes.
    for (query, code) in [
        ("?nonce=0011", "invalid_nonce"),
        ("?nonce=zz112233445566778899aabbccddeeff", "invalid_nonce"),
        ("", "invalid_query"),
        (
            "?nonce=00112233445566778899aabbccddeeff&x=1",
            "invalid_query",
        ),
    ] {
        let (status, v) = get(&format!("{}/v1/time{query}", bank.url()));
        assert_eq!(status, 400, "{query}: {v}");
        assert_eq!(v["error"], code, "{query}");
    }
}

#[test]
fn the_wall_clock_an_hour_ahead_changes_no_pin_until_a_restart() {
    let bank = Bank::start(T0);
    let device = Device::new(T0);
    let card_pan = pan(7);
    let (mut phone, id) = activated(&bank, &device, &card_pan, Arc::new(HttpTransport));
    let synced = phone.sync_time("bank").unwrap();
    assert_eq!(synced.server_time, T0);
    assert_eq!(synced.time_offset_secs, 0);
    assert!(synced.boot_anchored);

    // The customer's phone jumps an hour ahead (the old daylight-saving
    // rule); the boot clock does not move.
    device.clock.set(T0 + 3600);
    // A jump of the wall clock past the idle timeout locks the app.
    phone.vault_mut().unlock_with_password(PASSWORD).unwrap();
    let status = phone.time_status("bank").unwrap();
    assert_eq!(status.source, TimeSource::BootClock);
    assert_eq!(status.time, T0);
    assert_eq!(status.wall_clock_drift_secs, Some(3600));
    assert!(status.sync_advised, "an hour is more than a step");
    let first = phone.first_pin(id).unwrap();
    assert!(bank.accepts(&card_pan, &first.code, 0, None, "first"));
    let second = phone.second_pin(id, None).unwrap();
    assert!(bank.accepts(&card_pan, &second.code, 5_000_000, None, "second"));

    // Time passes on both clocks: the boot clock carries the bank time.
    device.clock.advance(120);
    bank.clock.set(T0 + 120);
    assert_eq!(phone.issuer_time("bank").unwrap(), T0 + 120);
    let first = phone.first_pin(id).unwrap();
    assert!(bank.accepts(&card_pan, &first.code, 0, None, "first"));

    // A restart: the boot clock says nothing of the old boot, so the wall
    // clock (an hour off) is all there is; the host is told to sync.
    device.clock.reboot("second-boot", 60);
    // A step later, so no PIN below is a replay of the one above.
    device.clock.advance(60);
    bank.clock.set(T0 + 180);
    let status = phone.time_status("bank").unwrap();
    assert_eq!(status.source, TimeSource::WallClock);
    assert_eq!(status.time, T0 + 3780);
    assert!(status.sync_advised);
    let first = phone.first_pin(id).unwrap();
    assert_eq!(
        bank.verify(&card_pan, &first.code, 0, None, "first").1,
        "wrong_code",
        "an hour off"
    );

    // Online again: one sync repairs it, with the wall clock still wrong.
    let synced = phone.sync_time("bank").unwrap();
    assert_eq!(synced.time_offset_secs, -3600);
    assert_eq!(synced.previous_offset_secs, 0);
    let status = phone.time_status("bank").unwrap();
    assert_eq!(status.source, TimeSource::BootClock);
    assert!(
        !status.sync_advised,
        "the offset now accounts for the wall clock"
    );
    let first = phone.first_pin(id).unwrap();
    assert!(bank.accepts(&card_pan, &first.code, 0, None, "first"));

    // The anchor is stored: a reopened vault (same boot) keeps using it.
    drop(phone);
    device.clock.set(T0 - 86_400);
    let mut phone = device.reopen(Arc::new(HttpTransport));
    assert_eq!(phone.issuer_time("bank").unwrap(), T0 + 180);
}

/// A network in the middle: answers with another time, another nonce, or
/// a replay of an earlier answer.
struct Forger {
    edit: fn(&mut Value, &Value),
    earlier: std::sync::Mutex<Option<Value>>,
}

impl Transport for Forger {
    fn post_json(
        &self,
        url: &str,
        body: &[u8],
        timeout_ms: u64,
    ) -> Result<HttpResponse, HostError> {
        let mut got = HttpTransport.post_json(url, body, timeout_ms)?;
        if url.ends_with("/v1/time") {
            let mut v: Value = serde_json::from_slice(&got.body).unwrap();
            let earlier = self.earlier.lock().unwrap().replace(v.clone());
            if let Some(e) = earlier {
                (self.edit)(&mut v, &e);
            }
            got.body = serde_json::to_vec(&v).unwrap();
        }
        Ok(got)
    }
}

#[test]
fn forged_and_replayed_time_answers_are_refused_and_nothing_is_stored() {
    type Edit = fn(&mut Value, &Value);
    let cases: &[(&str, Edit, &str)] = &[
        (
            "an hour added",
            |v, _| v["server_time"] = (v["server_time"].as_u64().unwrap() + 3600).into(),
            "bad_signature",
        ),
        (
            "an earlier answer replayed",
            |v, e| *v = e.clone(),
            "bad_signature",
        ),
        (
            "the nonce echo edited",
            |v, e| v["nonce"] = e["nonce"].clone(),
            "bad_response",
        ),
        (
            "a signature cut short",
            |v, _| v["signature"] = "00".into(),
            "bad_response",
        ),
        ("an extra field", |v, _| v["x"] = 1.into(), "bad_response"),
    ];
    for (what, edit, code) in cases {
        let bank = Bank::start(T0);
        let device = Device::new(T0);
        let forger = Arc::new(Forger {
            edit: *edit,
            earlier: std::sync::Mutex::new(None),
        });
        let (mut phone, _) = activated(&bank, &device, &pan(8), forger);
        // The first sync passes untouched (and is remembered for replay).
        phone.sync_time("bank").unwrap();
        bank.clock.set(T0 + 100);
        device.clock.set(T0 + 7200);
        phone.vault_mut().unlock_with_password(PASSWORD).unwrap();
        let before = phone.issuers().unwrap();
        let err = phone.sync_time("bank").unwrap_err();
        assert_eq!(err.code(), *code, "{what}: {err}");
        assert_eq!(phone.issuers().unwrap(), before, "{what}");
    }
}

#[test]
fn sync_failures_are_typed() {
    let bank = Bank::start(T0);
    let device = Device::new(T0);
    let (mut phone, _) = activated(&bank, &device, &pan(9), Arc::new(HttpTransport));
    assert!(matches!(
        phone.sync_time("nobody"),
        Err(CoreError::IssuerNotFound)
    ));
    // Another bank's key pinned under this URL: the signature fails.
    let other = Bank::start(T0);
    phone
        .add_issuer(
            "impostor",
            &bank.url(),
            &other.key(),
            &other.activation_key(),
        )
        .unwrap();
    assert_eq!(
        phone.sync_time("impostor").unwrap_err().code(),
        "bad_signature"
    );
    // The bank gone: a network error.
    let url = bank.url();
    drop(bank);
    phone
        .add_issuer("gone", &url, &other.key(), &other.activation_key())
        .unwrap();
    assert_eq!(phone.sync_time("gone").unwrap_err().code(), "network");
}
