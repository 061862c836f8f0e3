//! The phone's network calls as sans-IO steps (prepare → the host's
//! transport → finish), driven by hand against an issuer played here: a
//! signing `/v1/time` and a real sealed activation request it cannot open
//! (the activation's checks are in `activation.rs` and the e2e tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{Env, T0};
use pooya_core::hooks::{Clock, HostError, HttpResponse, Transport};
use pooya_core::protocol::time::{TimeAnswer, TimeRequest, time_signing_input};
use pooya_core::{AddCardRequest, ClockReading, CoreError, IssuerProfile, Phone, TimeSyncRequest};
use ring::signature::{Ed25519KeyPair, KeyPair};

/// The bank's clock is this far ahead of the phone's.
const BANK_AHEAD: u64 = 3_600;

/// Plays the issuer's `/v1/time`: signs the request's nonce with its
/// clock `T0 + BANK_AHEAD`, and counts calls.
struct TimeIssuer {
    key: Ed25519KeyPair,
    calls: AtomicU32,
}

impl TimeIssuer {
    fn new() -> Arc<Self> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        Arc::new(Self {
            key: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap(),
            calls: AtomicU32::new(0),
        })
    }

    fn public(&self) -> [u8; 32] {
        self.key.public_key().as_ref().try_into().unwrap()
    }

    /// The signed answer to `body` (a `TimeRequest`), at `server_time`.
    fn answer(&self, body: &[u8], server_time: u64) -> HttpResponse {
        let req: TimeRequest = serde_json::from_slice(body).unwrap();
        let nonce = hex::decode(&req.nonce).unwrap();
        let sig = self.key.sign(&time_signing_input(&nonce, server_time));
        let answer = TimeAnswer {
            nonce: req.nonce,
            server_time,
            signature: hex::encode(sig.as_ref()),
        };
        HttpResponse {
            status: 200,
            body: serde_json::to_vec(&answer).unwrap(),
        }
    }
}

impl Transport for TimeIssuer {
    fn post_json(&self, url: &str, body: &[u8], _: u64) -> Result<HttpResponse, HostError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        assert_eq!(url, "http://127.0.0.1:9/v1/time");
        Ok(self.answer(body, T0 + BANK_AHEAD))
    }
}

fn phone(env: &Env, bank: &Arc<TimeIssuer>) -> Phone {
    let mut p = Phone::new(env.create(), bank.clone(), "test phone").unwrap();
    p.vault_mut()
        .add_issuer(&IssuerProfile {
            name: "bank".into(),
            base_url: "http://127.0.0.1:9".into(),
            public_key: bank.public(),
            activation_key: None,
            time_offset_secs: 0,
            time_anchor: None,
        })
        .unwrap();
    p
}

fn offset(p: &mut Phone) -> i64 {
    p.vault_mut().issuer("bank").unwrap().time_offset_secs
}

#[test]
fn the_requests_can_be_awaited_on_another_thread() {
    fn send<T: Send + 'static>() {}
    send::<AddCardRequest>();
    send::<TimeSyncRequest>();
}

#[test]
fn a_time_sync_in_steps_measures_between_the_two_readings() {
    let env = Env::new();
    let bank = TimeIssuer::new();
    let mut p = phone(&env, &bank);

    let req = p.prepare_sync_time("bank").unwrap();
    assert_eq!(req.exchange.url, "http://127.0.0.1:9/v1/time");
    assert_eq!(req.exchange.timeout_ms, 15_000);
    assert_eq!(req.exchange.before, p.clock_reading());
    assert_eq!(req.exchange.before.wall_unix, T0);
    // Preparing sends nothing and stores nothing.
    assert_eq!(bank.calls.load(Ordering::SeqCst), 0);
    assert_eq!(offset(&mut p), 0);

    // The answer takes 4 s; the bank read its clock 2 s after sending.
    let answer = bank.answer(&req.exchange.body, T0 + 2 + BANK_AHEAD);
    env.clock.advance(4);
    let after = p.clock_reading();
    let got = p.finish_sync_time(req, answer, after).unwrap();
    assert_eq!(got.server_time, T0 + 2 + BANK_AHEAD);
    assert_eq!(got.time_offset_secs, BANK_AHEAD as i64);
    assert_eq!(got.previous_offset_secs, 0);
    assert!(got.boot_anchored);
    assert_eq!(offset(&mut p), BANK_AHEAD as i64);
    // The phone's clock set an hour wrong changes nothing now.
    env.clock.set(T0 + 4 + 3_600);
    if !p.vault().is_unlocked() {
        // (The idle lock runs on the wall clock.)
        p.vault_mut()
            .unlock_with_password(common::PASSWORD)
            .unwrap();
    }
    assert_eq!(p.issuer_time("bank").unwrap(), T0 + 4 + BANK_AHEAD);
}

#[test]
fn a_dropped_or_refused_step_stores_nothing() {
    let env = Env::new();
    let bank = TimeIssuer::new();
    let mut p = phone(&env, &bank);

    // Cancelled: the request is dropped before an answer came.
    drop(p.prepare_sync_time("bank").unwrap());
    assert_eq!(offset(&mut p), 0);

    // The answer to another request (another nonce) is refused.
    let first = p.prepare_sync_time("bank").unwrap();
    let second = p.prepare_sync_time("bank").unwrap();
    let stale = bank.answer(&first.exchange.body, T0 + BANK_AHEAD);
    let after = p.clock_reading();
    assert_eq!(
        p.finish_sync_time(second, stale, after).unwrap_err(),
        CoreError::BadSignature
    );
    assert_eq!(offset(&mut p), 0);

    // The app locked while the request was out: the answer is not stored.
    let answer = bank.answer(&first.exchange.body, T0 + BANK_AHEAD);
    p.vault_mut().lock();
    let after = p.clock_reading();
    let e = p.finish_sync_time(first, answer, after).unwrap_err();
    assert_eq!(e.code(), "locked");
    p.vault_mut()
        .unlock_with_password(common::PASSWORD)
        .unwrap();
    assert_eq!(offset(&mut p), 0);

    // An error status is the issuer's error, typed.
    let req = p.prepare_sync_time("bank").unwrap();
    let after = p.clock_reading();
    let e = p
        .finish_sync_time(
            req,
            HttpResponse {
                status: 503,
                body: br#"{"error":"unavailable"}"#.to_vec(),
            },
            after,
        )
        .unwrap_err();
    assert_eq!(
        e,
        CoreError::IssuerError {
            status: 503,
            code: "unavailable".into()
        }
    );
    assert_eq!(
        p.prepare_sync_time("nobody").unwrap_err().code(),
        "issuer_not_found"
    );
}

#[test]
fn the_synchronous_call_is_the_steps_through_the_transport() {
    let env = Env::new();
    let bank = TimeIssuer::new();
    let mut p = phone(&env, &bank);
    let got = p.sync_time("bank").unwrap();
    assert_eq!(bank.calls.load(Ordering::SeqCst), 1);
    assert_eq!(got.time_offset_secs, BANK_AHEAD as i64);
    assert_eq!(offset(&mut p), BANK_AHEAD as i64);
}

#[test]
fn an_activation_request_is_sealed_and_its_debug_shows_no_secret() {
    let env = Env::new();
    let bank = TimeIssuer::new();
    let mut p = phone(&env, &bank);
    p.vault_mut().set_phone("09121234567").unwrap();
    let activation = pooya_core::protocol::activation::ActivationSecretKey::derive(&[7u8; 32]);
    let mut profile = p.vault_mut().issuer("bank").unwrap();
    profile.activation_key = Some(activation.public_key().to_vec());
    p.vault_mut().update_issuer(&profile).unwrap();

    let req = p
        .prepare_add_card("bank", "1234-5678-97", Some(" Salary "))
        .unwrap();
    assert_eq!(req.exchange.url, "http://127.0.0.1:9/v1/activations");
    assert_eq!(
        req.exchange.before,
        ClockReading {
            wall_unix: T0,
            boot: Clock::boot_time(&*env.clock),
        }
    );
    let body = String::from_utf8(req.exchange.body.clone()).unwrap();
    assert!(!body.contains("1234567897"), "{body}");
    let shown = format!("{req:?}");
    assert!(
        !shown.contains("1234567897") && !shown.contains("Salary"),
        "{shown}"
    );
    // The bank opens it (the test holds its activation key) and finds the code.
    let sealed: pooya_core::protocol::activation::SealedActivationRequest =
        serde_json::from_slice(&req.exchange.body).unwrap();
    let opened = pooya_core::protocol::activation::open_request(
        &activation,
        &hex::decode(&sealed.enc).unwrap(),
        &hex::decode(&sealed.sealed).unwrap(),
    )
    .unwrap();
    assert_eq!(opened.code, "1234567897");
    assert_eq!(opened.phone, "+989121234567");

    // A refusal from the bank: typed, nothing stored.
    let after = p.clock_reading();
    let e = p
        .finish_add_card(
            req,
            HttpResponse {
                status: 403,
                body: br#"{"error":"activation_refused"}"#.to_vec(),
            },
            after,
        )
        .unwrap_err();
    assert_eq!(e, CoreError::ActivationRefused);
    assert!(p.cards().unwrap().is_empty());
    // A typo is refused before anything is prepared.
    assert_eq!(
        p.prepare_add_card("bank", "1234567898", None)
            .unwrap_err()
            .code(),
        "invalid_activation_code"
    );
}
