//! Criterion benchmarks of PIN generation and verification, each beside a
//! bare `ring` HMAC-SHA256 over the same input measured in the same run.
//!
//! `cargo bench -p pooya-protocol --bench pins`
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pooya_protocol::{CardSeed, Claim, OcraInput, Policies, first_pin, second_pin, verify};
use ring::hmac;

const TIME: u64 = 1_763_700_000;

fn benches(c: &mut Criterion) {
    let keys = CardSeed::from_bytes([0x5a; 32]).derive_keys();
    let policies = Policies::default();
    let suite = policies.second_suite().unwrap();
    let step = TIME / 60;
    let msg = suite
        .message(&OcraInput {
            question: "20000000",
            timestep: Some(step),
            ..OcraInput::default()
        })
        .unwrap();

    let mut g = c.benchmark_group("protocol");
    // Lower bound: one HMAC-SHA256 from key bytes over the OCRA message of
    // a second PIN (key schedule included, as generation must do it).
    g.bench_function("bare_hmac_sha256_ocra_input", |b| {
        b.iter(|| {
            let key = hmac::Key::new(hmac::HMAC_SHA256, black_box(keys.second.expose_secret()));
            hmac::sign(&key, black_box(&msg))
        })
    });
    // The same over the 8-byte TOTP counter.
    g.bench_function("bare_hmac_sha256_totp_input", |b| {
        b.iter(|| {
            let key = hmac::Key::new(hmac::HMAC_SHA256, black_box(keys.first.expose_secret()));
            hmac::sign(&key, black_box(&step.to_be_bytes()))
        })
    });
    g.bench_function("first_pin_generate", |b| {
        b.iter(|| first_pin(black_box(&keys), &policies, black_box(TIME)).unwrap())
    });
    g.bench_function("second_pin_generate", |b| {
        b.iter(|| second_pin(black_box(&keys), &policies, 20_000_000, black_box(TIME)).unwrap())
    });
    // Worst case: a wrong code for the smallest amount, so every tier at
    // every step of the window is tried (18 candidates by default).
    g.bench_function("second_pin_verify_worst_case", |b| {
        b.iter(|| {
            verify(
                black_box(&keys),
                &policies,
                Claim::Second { amount: 1 },
                black_box("00000000"),
                TIME,
                0,
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(pins, benches);
criterion_main!(pins);
