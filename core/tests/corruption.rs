//! Corruption: random byte flips, zeroed pages and truncations of a
//! closed vault file. Opening and unlocking must give a clear error or the
//! right data: never a panic, never a wrong seed, never a wrong PIN.
//!
//! 240 damaged files in a normal run; `POOYA_LONG=1` multiplies them by
//! 10. `POOYA_CORRUPT_SEED=<n>` replays a run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use pooya_core::protocol::{Policies, second_pin};
use pooya_core::testing::{FakeBiometricGate, ManualClock, MemoryKeystore};
use pooya_core::{CardId, CoreError, IssuerProfile, KdfParams, Vault, VaultConfig};

const DEVICE_KEY: [u8; 32] = [0x11; 32];
const BIO_KEY: [u8; 32] = [0x22; 32];
const CARDS: u32 = 4;

fn issuer() -> IssuerProfile {
    IssuerProfile {
        name: "mellat".into(),
        base_url: "https://dynpin.bank.example".into(),
        public_key: [7; 32],
        activation_key: Some(vec![4; 65]),
        time_offset_secs: 5,
        time_anchor: None,
    }
}

fn open(path: &std::path::Path) -> Result<Vault, CoreError> {
    Vault::open(
        path,
        Arc::new(MemoryKeystore::with_key(DEVICE_KEY)),
        Some(Arc::new(FakeBiometricGate::with_key(BIO_KEY))),
        Arc::new(ManualClock::new(T0)),
        VaultConfig::with_kdf(KdfParams::FLOOR),
    )
}

/// The right answers: card id → (label, expected second PIN).
struct Expected {
    cards: Vec<(CardId, String)>,
    pins: BTreeMap<CardId, String>,
}

/// Errors a damaged file may give. `WrongPassword` is not among them: a
/// damaged slot must not pass for a wrong password (and cost an attempt).
fn clear(e: &CoreError) -> bool {
    matches!(
        e,
        CoreError::VaultCorrupted | CoreError::NoVault | CoreError::VaultTooNew { .. }
    )
}

/// Opens and uses a damaged file; returns the name of the outcome.
fn exercise(path: &std::path::Path, want: &Expected) -> &'static str {
    let mut v = match open(path) {
        Ok(v) => v,
        Err(e) => {
            assert!(clear(&e), "open: {e:?}");
            return "open refused";
        }
    };
    if let Err(e) = v.unlock_with_password(PASSWORD) {
        assert!(clear(&e), "unlock: {e:?}");
        return "unlock refused";
    }
    let mut refused = false;
    match v.cards() {
        Ok(list) => {
            let got: Vec<_> = list.iter().map(|c| (c.id, c.label.clone())).collect();
            assert_eq!(got, want.cards, "card list");
        }
        Err(e) => {
            assert!(clear(&e), "cards: {e:?}");
            refused = true;
        }
    }
    for (&id, pin) in &want.pins {
        match v.card_secret(id) {
            Ok(s) => {
                let got = second_pin(&s.keys, &s.policies, s.cap, T0).unwrap();
                assert_eq!(&got.code, pin, "wrong PIN for card {id}");
            }
            Err(e) => {
                assert!(clear(&e), "card_secret: {e:?}");
                refused = true;
            }
        }
    }
    match v.phone() {
        Ok(p) => assert_eq!(p.as_deref(), Some("+989121234567")),
        Err(e) => {
            assert!(clear(&e), "phone: {e:?}");
            refused = true;
        }
    }
    match v.issuers() {
        Ok(list) => assert_eq!(list, vec![issuer()]),
        Err(e) => {
            assert!(clear(&e), "issuers: {e:?}");
            refused = true;
        }
    }
    v.lock();
    match v.unlock_with_biometrics() {
        Ok(()) => {}
        // A damaged biometric slot is dropped and reported as invalid.
        Err(e) => assert!(
            clear(&e) || e == CoreError::BiometricInvalidated,
            "biometrics: {e:?}"
        ),
    }
    if refused { "data refused" } else { "all right" }
}

#[test]
fn damaged_files_never_give_wrong_data() {
    let rounds = if long_run() { 2400 } else { 240 };
    let mut rng = Rng::from_env("POOYA_CORRUPT_SEED");

    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("original.db");
    let mut want = Expected {
        cards: Vec::new(),
        pins: BTreeMap::new(),
    };
    {
        let mut v = Vault::create(
            &original,
            PASSWORD,
            Arc::new(MemoryKeystore::with_key(DEVICE_KEY)),
            Some(Arc::new(FakeBiometricGate::with_key(BIO_KEY))),
            Arc::new(ManualClock::new(T0)),
            VaultConfig::with_kdf(KdfParams::FLOOR),
        )
        .unwrap();
        v.enable_biometrics(PASSWORD).unwrap();
        v.set_phone("09121234567").unwrap();
        v.add_issuer(&issuer()).unwrap();
        let cap = Policies::default().cap_ladder.tiers()[0];
        for i in 0..CARDS {
            let id = v.add_card(&new_card(i)).unwrap();
            want.cards.push((id, label(i)));
            let pin = second_pin(&seed(i).derive_keys(), &Policies::default(), cap, T0).unwrap();
            want.pins.insert(id, pin.code);
        }
    }
    // Closing the last connection checkpoints the WAL into the file.
    let wal = dir.path().join("original.db-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
    let bytes = std::fs::read(&original).unwrap();
    assert_eq!(exercise(&original, &want), "all right");

    let mut outcomes: BTreeMap<&str, u32> = BTreeMap::new();
    let path = dir.path().join("damaged.db");
    for round in 0..rounds {
        let mut damaged = bytes.clone();
        let how = match round % 4 {
            0 | 1 => {
                for _ in 0..=rng.below(4) {
                    let i = rng.below(damaged.len() as u64) as usize;
                    damaged[i] ^= 1 << rng.below(8);
                }
                "flip"
            }
            2 => {
                damaged.truncate(rng.below(bytes.len() as u64) as usize);
                "truncate"
            }
            _ => {
                let page = 4096;
                let p = rng.below((bytes.len() / page) as u64) as usize;
                let len = 1 + rng.below(page as u64) as usize;
                let start = p * page + rng.below((page - len + 1) as u64) as usize;
                damaged[start..start + len].fill(0);
                "zero"
            }
        };
        Vault::destroy(&path).unwrap();
        std::fs::write(&path, &damaged).unwrap();
        let outcome = exercise(&path, &want);
        *outcomes.entry(outcome).or_default() += 1;
        let _ = how;
    }
    println!("corruption test: {rounds} damaged files: {outcomes:?}");
    // The damage must actually be noticed most of the time.
    assert!(outcomes.get("all right").copied().unwrap_or(0) < rounds);
}
