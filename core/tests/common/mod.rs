//! Helpers shared by the vault's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use pooya_core::protocol::ids::luhn_check_digit;
use pooya_core::protocol::{CardSeed, Pan, Policies};
use pooya_core::testing::{FakeBiometricGate, ManualClock, MemoryKeystore};
use pooya_core::{KdfParams, NewCard, Vault, VaultConfig};

/// A fixed start time (2027-01-15).
pub const T0: u64 = 1_800_000_000;
/// The app password used by most tests.
pub const PASSWORD: &str = "kaj-47-mahi";

/// Test hooks, kept so the test can turn their knobs.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub keystore: Arc<MemoryKeystore>,
    pub gate: Arc<FakeBiometricGate>,
    pub clock: Arc<ManualClock>,
}

impl Env {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            keystore: Arc::new(MemoryKeystore::new()),
            gate: Arc::new(FakeBiometricGate::new()),
            clock: Arc::new(ManualClock::new(T0)),
        }
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("vault.db")
    }

    pub fn config() -> VaultConfig {
        VaultConfig::with_kdf(KdfParams::FLOOR)
    }

    pub fn create(&self) -> Vault {
        Vault::create(
            &self.path(),
            PASSWORD,
            self.keystore.clone(),
            Some(self.gate.clone()),
            self.clock.clone(),
            Self::config(),
        )
        .unwrap()
    }

    pub fn open(&self) -> Vault {
        self.open_at(&self.path()).unwrap()
    }

    pub fn open_at(&self, path: &Path) -> Result<Vault, pooya_core::CoreError> {
        Vault::open(
            path,
            self.keystore.clone(),
            Some(self.gate.clone()),
            self.clock.clone(),
            Self::config(),
        )
    }
}

/// A valid PAN for card `i` (BIN 610433, Bank Mellat).
pub fn pan(i: u32) -> Pan {
    let payload = format!("610433{:09}", 100_000_000 + i);
    let check = luhn_check_digit(&payload);
    Pan::parse(&format!("{payload}{check}")).unwrap()
}

/// A seed for card `i`, no byte run shared with other cards.
pub fn seed(i: u32) -> CardSeed {
    let mut b = [0u8; 32];
    for (j, x) in b.iter_mut().enumerate() {
        *x = (i as u8)
            .wrapping_mul(31)
            .wrapping_add((j as u8).wrapping_mul(7))
            ^ 0xA5;
    }
    b[0] = (i >> 8) as u8;
    b[1] = i as u8;
    CardSeed::from_bytes(b)
}

pub fn label(i: u32) -> String {
    format!("Salary card number {i}")
}

pub fn new_card(i: u32) -> NewCard {
    let policies = Policies::default();
    let cap = policies.cap_ladder.tiers()[0];
    NewCard::from_pan(
        "mellat",
        &format!("card-{i:04}"),
        &label(i),
        &pan(i),
        policies,
        cap,
        seed(i),
    )
}

/// Whether the long run was asked for (`POOYA_LONG=1`): ten times the
/// crash kills and corrupted files.
pub fn long_run() -> bool {
    std::env::var("POOYA_LONG").is_ok_and(|v| v == "1")
}

/// A small seeded generator (xorshift64*) for the randomized tests, so a
/// failing run can be repeated with its printed seed.
pub struct Rng(u64);

impl Rng {
    /// Seeded from the environment variable `var` when set, else from the
    /// clock; prints the seed so a failure can be replayed.
    pub fn from_env(var: &str) -> Self {
        let seed = std::env::var(var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        println!("{var}={seed}");
        Self(seed)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}
