//! Criterion benchmarks of the phone vault: open without unlock, unlock
//! with the default and the floor Argon2id parameters, list 100 cards, and
//! a second dynamic PIN from an unlocked vault, beside the protocol
//! crate's bare `second_pin` (same keys, same policy) measured in the same
//! run as the baseline.
//!
//! `cargo bench -p pooya-core --bench vault`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use pooya_core::protocol::ids::luhn_check_digit;
use pooya_core::protocol::{CardSeed, Pan, Policies, second_pin};
use pooya_core::testing::{ManualClock, MemoryKeystore};
use pooya_core::{KdfParams, NewCard, Vault, VaultConfig};

const TIME: u64 = 1_763_700_000;
const PASSWORD: &str = "bench-pass-1";

fn card(i: u32) -> NewCard {
    let payload = format!("610433{:09}", 100_000_000 + i);
    let pan = Pan::parse(&format!("{payload}{}", luhn_check_digit(&payload))).unwrap();
    let policies = Policies::default();
    NewCard::from_pan(
        "mellat",
        &format!("card-{i}"),
        &format!("Card {i}"),
        &pan,
        policies,
        20_000_000,
        CardSeed::from_bytes([i as u8; 32]),
    )
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    keystore: Arc<MemoryKeystore>,
    clock: Arc<ManualClock>,
    config: VaultConfig,
}

impl Fixture {
    fn new(kdf: KdfParams, cards: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.db");
        let keystore = Arc::new(MemoryKeystore::new());
        let clock = Arc::new(ManualClock::new(TIME));
        let config = VaultConfig::with_kdf(kdf);
        let mut v = Vault::create(
            &path,
            PASSWORD,
            keystore.clone(),
            None,
            clock.clone(),
            config.clone(),
        )
        .unwrap();
        for i in 0..cards {
            v.add_card(&card(i)).unwrap();
        }
        drop(v);
        Self {
            _dir: dir,
            path,
            keystore,
            clock,
            config,
        }
    }

    fn open(&self) -> Vault {
        Vault::open(
            &self.path,
            self.keystore.clone(),
            None,
            self.clock.clone(),
            self.config.clone(),
        )
        .unwrap()
    }
}

fn benches(c: &mut Criterion) {
    let floor = Fixture::new(KdfParams::FLOOR, 100);
    let default = Fixture::new(KdfParams::DEFAULT, 1);

    let mut g = c.benchmark_group("vault");
    g.bench_function("open_without_unlock_100_cards", |b| {
        b.iter(|| black_box(floor.open()))
    });

    let mut unlocked = floor.open();
    unlocked.unlock_with_password(PASSWORD).unwrap();
    let id = unlocked.cards().unwrap()[0].id;
    g.bench_function("list_100_cards", |b| {
        b.iter(|| black_box(unlocked.cards().unwrap()))
    });

    // One card read from storage and opened (3 envelopes, JSON): what the
    // first PIN of a card costs on top of the cached path below.
    g.bench_function("read_one_card_from_storage", |b| {
        b.iter(|| black_box(unlocked.card(black_box(id)).unwrap()))
    });

    // Baseline: the protocol crate's second PIN from keys already derived.
    let keys = CardSeed::from_bytes([0; 32]).derive_keys();
    let policies = Policies::default();
    g.bench_function("baseline_protocol_second_pin", |b| {
        b.iter(|| second_pin(black_box(&keys), &policies, 20_000_000, black_box(TIME)).unwrap())
    });
    // The same PIN through the vault: session check, cached card keys.
    g.bench_function("second_pin_from_unlocked_vault", |b| {
        b.iter(|| {
            let s = unlocked.card_secret(black_box(id)).unwrap();
            second_pin(&s.keys, &s.policies, s.cap, black_box(TIME)).unwrap()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("vault_unlock");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    let mut v = floor.open();
    g.bench_function("unlock_floor_19MiB_t2", |b| {
        b.iter(|| v.unlock_with_password(black_box(PASSWORD)).unwrap())
    });
    let mut v = default.open();
    g.bench_function("unlock_default_64MiB_t12", |b| {
        b.iter(|| v.unlock_with_password(black_box(PASSWORD)).unwrap())
    });
    g.finish();
}

criterion_group!(vault, benches);
criterion_main!(vault);
